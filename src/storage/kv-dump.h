/* kv-dump.h: every live entry of a store, as of one revision
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-entry.h"

G_BEGIN_DECLS

#define KV_TYPE_DUMP (kv_dump_get_type ())

typedef struct _KvDump KvDump;

GType     kv_dump_get_type      (void) G_GNUC_CONST;
KvDump   *kv_dump_new           (guint          reserved);
KvDump   *kv_dump_ref           (KvDump        *self);
void      kv_dump_unref         (KvDump        *self);
void      kv_dump_add           (KvDump        *self,
                                 KvEntry       *entry,
                                 gint64         expires_at);
void      kv_dump_set_revision  (KvDump        *self,
                                 guint64        revision);
guint64   kv_dump_get_revision  (const KvDump  *self);
guint     kv_dump_get_n_entries (const KvDump  *self);
KvEntry  *kv_dump_peek_entry    (const KvDump  *self,
                                 guint          index,
                                 gint64        *expires_at);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvDump, kv_dump_unref)

G_END_DECLS
