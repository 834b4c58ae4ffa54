/* kv-change.c: one change to a store, as its subscribers see it
 *
 * SPDX-License-Identifier: MIT
 *
 * Immutable once made, and reference-counted, so that one change reaches
 * every subscriber, in its own thread, without a copy.
 */
#include "config.h"

#include <string.h>

#include "kv-change.h"

struct _KvChange
{
  gint ref_count;
  KvChangeKind kind;
  guint64 revision;
  KvEntry *entry;   /* (owned) (nullable): the new entry of a put */
  char key[];       /* empty for a clear */
};

G_DEFINE_BOXED_TYPE (KvChange, kv_change, kv_change_ref, kv_change_unref)

/**
 * kv_change_new:
 * @kind: what happened
 * @revision: the revision that made it
 * @key: (nullable): the key, or %NULL for a clear
 * @key_len: its length
 * @entry: (nullable): for a put, the entry stored
 *
 * Returns: (transfer full): the change
 */
KvChange *
kv_change_new (KvChangeKind  kind,
               guint64       revision,
               const char   *key,
               gsize         key_len,
               KvEntry      *entry)
{
  KvChange *self;

  g_return_val_if_fail (key != NULL || kind == KV_CHANGE_CLEAR, NULL);
  g_return_val_if_fail (entry != NULL || kind != KV_CHANGE_PUT, NULL);

  if (key == NULL)
    key_len = 0;
  self = g_malloc (sizeof *self + key_len + 1);
  self->ref_count = 1;
  self->kind = kind;
  self->revision = revision;
  self->entry = entry != NULL ? kv_entry_ref (entry) : NULL;
  if (key_len > 0)
    memcpy (self->key, key, key_len);
  self->key[key_len] = '\0';

  return self;
}

KvChange *
kv_change_ref (KvChange *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
kv_change_unref (KvChange *self)
{
  g_return_if_fail (self != NULL);

  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;
  g_clear_pointer (&self->entry, kv_entry_unref);
  g_free (self);
}

KvChangeKind
kv_change_get_kind (const KvChange *self)
{
  return self->kind;
}

guint64
kv_change_get_revision (const KvChange *self)
{
  return self->revision;
}

/**
 * kv_change_get_key:
 *
 * Returns: (nullable): the key, or %NULL for a clear
 */
const char *
kv_change_get_key (const KvChange *self)
{
  return self->kind == KV_CHANGE_CLEAR ? NULL : self->key;
}

/**
 * kv_change_get_entry:
 *
 * Returns: (transfer none) (nullable): the entry a put stored
 */
KvEntry *
kv_change_get_entry (const KvChange *self)
{
  return self->entry;
}

