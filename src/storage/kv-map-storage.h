/* kv-map-storage.h: a KvStorage held in memory
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-storage.h"

G_BEGIN_DECLS

#define KV_TYPE_MAP_STORAGE (kv_map_storage_get_type ())
G_DECLARE_FINAL_TYPE (KvMapStorage, kv_map_storage, KV, MAP_STORAGE, GObject)

KvMapStorage *kv_map_storage_new    (void);
guint         kv_map_storage_expire (KvMapStorage *self,
                                     guint         max_entries);

G_END_DECLS
