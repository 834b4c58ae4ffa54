/* kv-change.h: one change to a store, as its subscribers see it
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-entry.h"

G_BEGIN_DECLS

/**
 * KvChangeKind:
 * @KV_CHANGE_PUT: a value was stored under the key
 * @KV_CHANGE_DELETE: the key was deleted
 * @KV_CHANGE_EXPIRE: the key's time to live ran out
 * @KV_CHANGE_CLEAR: every key was deleted at once; the change has no key
 */
typedef enum
{
  KV_CHANGE_PUT,
  KV_CHANGE_DELETE,
  KV_CHANGE_EXPIRE,
  KV_CHANGE_CLEAR,
} KvChangeKind;

#define KV_TYPE_CHANGE (kv_change_get_type ())

typedef struct _KvChange KvChange;

GType         kv_change_get_type     (void) G_GNUC_CONST;
KvChange     *kv_change_new          (KvChangeKind    kind,
                                      guint64         revision,
                                      const char     *key,
                                      gsize           key_len,
                                      KvEntry        *entry,
                                      gint64          expires_at);
KvChange     *kv_change_ref          (KvChange       *self);
void          kv_change_unref        (KvChange       *self);
KvChangeKind  kv_change_get_kind     (const KvChange *self);
guint64       kv_change_get_revision (const KvChange *self);
const char   *kv_change_get_key      (const KvChange *self);
KvEntry      *kv_change_get_entry    (const KvChange *self);
gint64        kv_change_get_expires_at (const KvChange *self);
gsize         kv_change_get_size     (const KvChange *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvChange, kv_change_unref)

G_END_DECLS
