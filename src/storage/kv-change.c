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
  gint64 expires_at; /* when that entry expires, wall-clock µs, or 0 */
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
 * @expires_at: for a put, when the entry expires, in microseconds since
 *   the Unix epoch, or 0 if it does not
 *
 * Returns: (transfer full): the change
 */
KvChange *
kv_change_new (KvChangeKind  kind,
               guint64       revision,
               const char   *key,
               gsize         key_len,
               KvEntry      *entry,
               gint64        expires_at)
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
  self->expires_at = entry != NULL ? expires_at : 0;
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


/**
 * kv_change_get_expires_at:
 *
 * Returns: for a put, when its entry expires, in microseconds since the
 *   Unix epoch; 0 if it does not, and for other changes
 */
gint64
kv_change_get_expires_at (const KvChange *self)
{
  return self->expires_at;
}

/**
 * kv_change_get_size:
 *
 * What keeping the change costs, its entry's key and value included
 * (the store may share them while the entry is live): for a history of
 * changes to count the memory it holds.
 *
 * Returns: the size in bytes
 */
gsize
kv_change_get_size (const KvChange *self)
{
  gsize size = sizeof *self + strlen (self->key) + 1;

  if (self->entry != NULL)
    {
      gsize key_len;

      kv_entry_peek_key (self->entry, &key_len);
      size += 32 + key_len + kv_entry_get_value_size (self->entry);
    }

  return size;
}
