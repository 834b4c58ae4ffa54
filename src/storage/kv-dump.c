/* kv-dump.c: every live entry of a store, as of one revision
 *
 * SPDX-License-Identifier: MIT
 *
 * What a snapshot and an export write out. The store takes a reference to
 * each entry under its read lock, which costs 16 bytes an entry and no
 * copy; entries are immutable, so the dump can then be written out at
 * leisure while writers go on.
 */
#include "config.h"

#include "kv-dump.h"

struct _KvDump
{
  gint ref_count;
  guint64 revision;
  GPtrArray *entries;   /* (element-type KvEntry) (owned) */
  GArray *expires_at;   /* (element-type gint64): wall clock, µs; 0: never */
};

G_DEFINE_BOXED_TYPE (KvDump, kv_dump, kv_dump_ref, kv_dump_unref)

/**
 * kv_dump_new:
 * @reserved: how many entries to make room for
 *
 * Returns: (transfer full): an empty dump at revision 0
 */
KvDump *
kv_dump_new (guint reserved)
{
  KvDump *self = g_new0 (KvDump, 1);

  self->ref_count = 1;
  self->entries = g_ptr_array_new_full (reserved, (GDestroyNotify) kv_entry_unref);
  self->expires_at = g_array_sized_new (FALSE, FALSE, sizeof (gint64), reserved);
  return self;
}

KvDump *
kv_dump_ref (KvDump *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
kv_dump_unref (KvDump *self)
{
  g_return_if_fail (self != NULL);

  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;
  g_ptr_array_unref (self->entries);
  g_array_unref (self->expires_at);
  g_free (self);
}

/**
 * kv_dump_add:
 * @self: a #KvDump
 * @entry: a live entry, referenced by the dump
 * @expires_at: when @entry expires, wall-clock microseconds, or 0
 */
void
kv_dump_add (KvDump  *self,
             KvEntry *entry,
             gint64   expires_at)
{
  g_ptr_array_add (self->entries, kv_entry_ref (entry));
  g_array_append_val (self->expires_at, expires_at);
}

void
kv_dump_set_revision (KvDump  *self,
                      guint64  revision)
{
  self->revision = revision;
}

/**
 * kv_dump_get_revision:
 * @self: a #KvDump
 *
 * Returns: the revision the dump was taken at: that of the store's latest
 *   write then
 */
guint64
kv_dump_get_revision (const KvDump *self)
{
  return self->revision;
}

guint
kv_dump_get_n_entries (const KvDump *self)
{
  return self->entries->len;
}

/**
 * kv_dump_peek_entry:
 * @self: a #KvDump
 * @index: below kv_dump_get_n_entries()
 * @expires_at: (out) (optional): when the entry expires, wall-clock
 *   microseconds, or 0 if never
 *
 * Returns: (transfer none): the entry, in key order
 */
KvEntry *
kv_dump_peek_entry (const KvDump *self,
                    guint         index,
                    gint64       *expires_at)
{
  g_return_val_if_fail (index < self->entries->len, NULL);

  if (expires_at != NULL)
    *expires_at = g_array_index (self->expires_at, gint64, index);
  return g_ptr_array_index (self->entries, index);
}
