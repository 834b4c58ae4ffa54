/* kv-map-storage.h: a KvStorage held in memory
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-log.h"
#include "storage/kv-storage.h"

G_BEGIN_DECLS

#define KV_TYPE_MAP_STORAGE (kv_map_storage_get_type ())
G_DECLARE_FINAL_TYPE (KvMapStorage, kv_map_storage, KV, MAP_STORAGE, GObject)

KvMapStorage *kv_map_storage_new    (void);
KvMapStorage *kv_map_storage_open   (const char   *data_dir,
                                     KvFsyncMode   fsync,
                                     guint64       snapshot_log_size,
                                     GError      **error);
guint         kv_map_storage_expire (KvMapStorage *self,
                                     guint         max_entries);
void          kv_map_storage_set_history (KvMapStorage *self,
                                          guint         max_changes,
                                          guint64       max_bytes);

G_END_DECLS
