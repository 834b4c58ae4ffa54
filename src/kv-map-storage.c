/* kv-map-storage.c: a KvStorage held in memory
 *
 * SPDX-License-Identifier: MIT
 *
 * A GHashTable used as a set of KvEntry (each entry carries its own key),
 * under a GRWLock: readers share the lock, writers take it alone and only
 * for a pointer swap, since entries are built before the lock is taken.
 */
#include "config.h"

#include <string.h>

#include "kv-entry-private.h"
#include "kv-map-storage.h"

struct _KvMapStorage
{
  GObject parent_instance;

  GRWLock lock;
  GHashTable *entries; /* (element-type KvEntry) (owned) */
  guint64 revision;
};

static void kv_map_storage_iface_init (KvStorageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (KvMapStorage, kv_map_storage, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (KV_TYPE_STORAGE, kv_map_storage_iface_init))

static gboolean
check_key (const char  *key,
           gsize       *key_len,
           GError     **error)
{
  *key_len = strlen (key);
  if (*key_len == 0 || *key_len > KV_ENTRY_MAX_KEY_SIZE)
    {
      g_set_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_INVALID_ARGUMENT,
                   "key must be 1 to %d bytes long", KV_ENTRY_MAX_KEY_SIZE);
      return FALSE;
    }

  return TRUE;
}

static KvEntry *
kv_map_storage_set (KvStorage   *storage,
                    const char  *key,
                    GBytes      *value,
                    GError     **error)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockWriterLocker) locker = NULL;
  gconstpointer data;
  gsize key_len, value_len;
  KvEntry *entry;

  if (!check_key (key, &key_len, error))
    return NULL;

  data = g_bytes_get_data (value, &value_len);
  entry = kv_entry_new (key, key_len, data, value_len, NULL, 0);

  locker = g_rw_lock_writer_locker_new (&self->lock);
  /* Revisions are taken under the lock so that they order the writes. */
  kv_entry_set_revision (entry, ++self->revision);
  g_hash_table_add (self->entries, entry);

  return kv_entry_ref (entry);
}

static KvEntry *
lookup_locked (KvMapStorage *self,
               const char   *key,
               gsize         key_len)
{
  KvEntry *probe = g_alloca (kv_entry_probe_size (key_len));

  kv_entry_init_probe (probe, key, key_len);
  return g_hash_table_lookup (self->entries, probe);
}

static KvEntry *
kv_map_storage_get (KvStorage   *storage,
                    const char  *key,
                    GError     **error)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockReaderLocker) locker = NULL;
  gsize key_len;
  KvEntry *entry;

  if (!check_key (key, &key_len, error))
    return NULL;

  locker = g_rw_lock_reader_locker_new (&self->lock);
  entry = lookup_locked (self, key, key_len);
  if (entry == NULL)
    {
      g_set_error_literal (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_NOT_FOUND,
                           "key not found");
      return NULL;
    }

  return kv_entry_ref (entry);
}

static gboolean
kv_map_storage_delete (KvStorage   *storage,
                       const char  *key,
                       GError     **error)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockWriterLocker) locker = NULL;
  gsize key_len;
  KvEntry *entry;

  if (!check_key (key, &key_len, error))
    return FALSE;

  locker = g_rw_lock_writer_locker_new (&self->lock);
  entry = lookup_locked (self, key, key_len);
  if (entry != NULL)
    {
      self->revision++;
      g_hash_table_remove (self->entries, entry);
    }

  return TRUE;
}

static void
kv_map_storage_iface_init (KvStorageInterface *iface)
{
  iface->set = kv_map_storage_set;
  iface->get = kv_map_storage_get;
  iface->delete = kv_map_storage_delete;
}

static void
kv_map_storage_finalize (GObject *object)
{
  KvMapStorage *self = KV_MAP_STORAGE (object);

  g_hash_table_unref (self->entries);
  g_rw_lock_clear (&self->lock);

  G_OBJECT_CLASS (kv_map_storage_parent_class)->finalize (object);
}

static void
kv_map_storage_class_init (KvMapStorageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kv_map_storage_finalize;
}

static void
kv_map_storage_init (KvMapStorage *self)
{
  g_rw_lock_init (&self->lock);
  self->entries = g_hash_table_new_full (kv_entry_hash, kv_entry_equal,
                                         (GDestroyNotify) kv_entry_unref, NULL);
}

/**
 * kv_map_storage_new:
 *
 * Returns: (transfer full): a new, empty in-memory store
 */
KvMapStorage *
kv_map_storage_new (void)
{
  return g_object_new (KV_TYPE_MAP_STORAGE, NULL);
}

/**
 * kv_map_storage_get_n_keys:
 * @self: a #KvMapStorage
 *
 * Returns: how many keys the store holds
 */
guint
kv_map_storage_get_n_keys (KvMapStorage *self)
{
  g_autoptr(GRWLockReaderLocker) locker = NULL;

  g_return_val_if_fail (KV_IS_MAP_STORAGE (self), 0);

  locker = g_rw_lock_reader_locker_new (&self->lock);
  return g_hash_table_size (self->entries);
}
