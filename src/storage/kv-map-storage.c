/* kv-map-storage.c: a KvStorage held in memory
 *
 * SPDX-License-Identifier: MIT
 *
 * A GHashTable used as a set of KvEntry (each entry carries its own key),
 * under a GRWLock: readers share the lock, writers take it alone and only
 * for a pointer swap, since entries are built before the lock is taken.
 *
 * Expiry lives beside the table, only for entries that have a TTL: a map
 * from entry to its deadline, and a tree of deadlines in order. Readers
 * treat an entry past its deadline as absent at once; a sweeper thread
 * reclaims expired entries a small batch per write-lock hold, so writers
 * never wait long behind it.
 */
#include "config.h"

#include <string.h>

#include "storage/kv-entry-private.h"
#include "kv-map-storage.h"

/* Entries reclaimed per write-lock hold, and how often the sweeper looks. */
#define SWEEP_BATCH 64
#define SWEEP_INTERVAL_USEC (100 * 1000)

typedef struct
{
  gint64 deadline;   /* monotonic time, microseconds */
  KvEntry *entry;    /* (unowned): the table owns it */
} Expiry;

struct _KvMapStorage
{
  GObject parent_instance;

  GRWLock lock;
  GHashTable *entries;   /* (element-type KvEntry) (owned) */
  GHashTable *expiries;  /* (element-type KvEntry Expiry): entries with a TTL */
  GTree *deadlines;      /* (element-type Expiry): the same, by deadline */
  guint64 revision;
  guint64 value_bytes;
  guint64 expired;

  /* The sweeper */
  GThread *sweeper;
  GMutex sweeper_lock;
  GCond sweeper_cond;
  gboolean stopping;
};

static void kv_map_storage_iface_init (KvStorageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (KvMapStorage, kv_map_storage, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (KV_TYPE_STORAGE, kv_map_storage_iface_init))

static int
expiry_compare (gconstpointer a,
                gconstpointer b,
                gpointer      user_data)
{
  const Expiry *ea = a, *eb = b;

  if (ea->deadline != eb->deadline)
    return ea->deadline < eb->deadline ? -1 : 1;
  /* Ties are broken by address: every entry is in the tree once. */
  return ea->entry < eb->entry ? -1 : (ea->entry > eb->entry ? 1 : 0);
}

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
lookup_locked (KvMapStorage *self,
               const char   *key,
               gsize         key_len)
{
  KvEntry *probe = g_alloca (kv_entry_probe_size (key_len));

  kv_entry_init_probe (probe, key, key_len);
  return g_hash_table_lookup (self->entries, probe);
}

static gint64
deadline_locked (KvMapStorage  *self,
                 const KvEntry *entry)
{
  const Expiry *expiry;

  if (!kv_entry_get_has_ttl (entry))
    return 0;

  expiry = g_hash_table_lookup (self->expiries, entry);
  return expiry->deadline;
}

static gboolean
is_expired_locked (KvMapStorage  *self,
                   const KvEntry *entry,
                   gint64         now)
{
  gint64 deadline = deadline_locked (self, entry);

  return deadline != 0 && deadline <= now;
}

/* Takes @entry out of the table and the expiry index, dropping the table's
 * reference. The caller accounts for the revision. */
static void
remove_locked (KvMapStorage *self,
               KvEntry      *entry)
{
  if (kv_entry_get_has_ttl (entry))
    {
      Expiry *expiry = g_hash_table_lookup (self->expiries, entry);

      g_tree_remove (self->deadlines, expiry);
      g_hash_table_remove (self->expiries, entry);
    }

  self->value_bytes -= kv_entry_get_value_size (entry);
  g_hash_table_remove (self->entries, entry);
}

/* An expiry is a write of its own: it takes a revision. */
static void
expire_locked (KvMapStorage *self,
               KvEntry      *entry)
{
  remove_locked (self, entry);
  self->revision++;
  self->expired++;
}

/* Returns the live entry for a key, reclaiming it first if it has expired. */
static KvEntry *
lookup_live_locked (KvMapStorage *self,
                    const char   *key,
                    gsize         key_len,
                    gint64        now)
{
  KvEntry *entry = lookup_locked (self, key, key_len);

  if (entry != NULL && is_expired_locked (self, entry, now))
    {
      expire_locked (self, entry);
      return NULL;
    }

  return entry;
}

static void
precondition_failed (GError **error)
{
  g_set_error_literal (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_PRECONDITION_FAILED,
                       "precondition failed");
}

static KvEntry *
kv_map_storage_set (KvStorage           *storage,
                    const char          *key,
                    GBytes              *value,
                    const KvSetOptions  *options,
                    GError             **error)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockWriterLocker) locker = NULL;
  gconstpointer data;
  gsize key_len, value_len;
  KvEntry *entry, *current;
  gint64 now = g_get_monotonic_time ();
  gint64 deadline = 0;

  if (!check_key (key, &key_len, error))
    return NULL;

  data = g_bytes_get_data (value, &value_len);
  entry = kv_entry_new (key, key_len, data, value_len, options->content_type, 0, error);
  if (entry == NULL)
    return NULL;

  locker = g_rw_lock_writer_locker_new (&self->lock);

  current = lookup_live_locked (self, key, key_len, now);
  if (!kv_condition_check (options->condition, current))
    {
      g_clear_pointer (&locker, g_rw_lock_writer_locker_free);
      kv_entry_unref (entry);
      precondition_failed (error);
      return NULL;
    }

  if (options->ttl_mode == KV_TTL_SET)
    deadline = now + options->ttl;
  else if (options->ttl_mode == KV_TTL_KEEP && current != NULL)
    deadline = deadline_locked (self, current);

  if (current != NULL)
    remove_locked (self, current);

  /* Revisions are taken under the lock so that they order the writes. */
  kv_entry_set_revision (entry, ++self->revision);
  self->value_bytes += value_len;
  g_hash_table_add (self->entries, entry);

  if (deadline != 0)
    {
      Expiry *expiry = g_new (Expiry, 1);

      expiry->deadline = deadline;
      expiry->entry = entry;
      kv_entry_set_has_ttl (entry, TRUE);
      g_hash_table_insert (self->expiries, entry, expiry);
      g_tree_insert (self->deadlines, expiry, expiry);
    }

  return kv_entry_ref (entry);
}

static KvEntry *
kv_map_storage_get (KvStorage   *storage,
                    const char  *key,
                    gint64      *expires_at,
                    GError     **error)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockReaderLocker) locker = NULL;
  gsize key_len;
  KvEntry *entry;
  gint64 deadline = 0;

  *expires_at = 0;
  if (!check_key (key, &key_len, error))
    return NULL;

  locker = g_rw_lock_reader_locker_new (&self->lock);
  entry = lookup_locked (self, key, key_len);
  if (entry != NULL && kv_entry_get_has_ttl (entry))
    {
      gint64 now = g_get_monotonic_time ();

      deadline = deadline_locked (self, entry);
      if (deadline <= now)
        entry = NULL;
      else
        *expires_at = g_get_real_time () + (deadline - now);
    }

  if (entry == NULL)
    {
      g_set_error_literal (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_NOT_FOUND,
                           "key not found");
      return NULL;
    }

  return kv_entry_ref (entry);
}

static gboolean
kv_map_storage_delete (KvStorage          *storage,
                       const char         *key,
                       const KvCondition  *condition,
                       GError            **error)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockWriterLocker) locker = NULL;
  gsize key_len;
  KvEntry *entry;

  if (!check_key (key, &key_len, error))
    return FALSE;

  locker = g_rw_lock_writer_locker_new (&self->lock);
  entry = lookup_live_locked (self, key, key_len, g_get_monotonic_time ());
  if (!kv_condition_check (condition, entry))
    {
      precondition_failed (error);
      return FALSE;
    }

  if (entry != NULL)
    {
      remove_locked (self, entry);
      self->revision++;
    }

  return TRUE;
}

static int
compare_entry_keys (gconstpointer a,
                    gconstpointer b)
{
  const KvEntry *ea = *(KvEntry * const *) a;
  const KvEntry *eb = *(KvEntry * const *) b;
  gsize la, lb;
  const char *ka = kv_entry_peek_key (ea, &la);
  const char *kb = kv_entry_peek_key (eb, &lb);
  int cmp = memcmp (ka, kb, MIN (la, lb));

  if (cmp != 0)
    return cmp;
  return la < lb ? -1 : (la > lb ? 1 : 0);
}

/* Byte-order comparison of an entry's key with a C string. */
static int
compare_key (const KvEntry *entry,
             const char    *key,
             gsize          len)
{
  gsize entry_len;
  const char *entry_key = kv_entry_peek_key (entry, &entry_len);
  int cmp = memcmp (entry_key, key, MIN (entry_len, len));

  if (cmp != 0)
    return cmp;
  return entry_len < len ? -1 : (entry_len > len ? 1 : 0);
}

static GPtrArray *
kv_map_storage_list (KvStorage  *storage,
                     const char *prefix,
                     const char *after,
                     guint       limit,
                     gboolean   *more)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GPtrArray) matches = g_ptr_array_new_with_free_func ((GDestroyNotify) kv_entry_unref);
  GPtrArray *keys;
  gsize prefix_len = strlen (prefix);
  gsize after_len = after != NULL ? strlen (after) : 0;
  GHashTableIter iter;
  gpointer entry;
  gint64 now = g_get_monotonic_time ();

  /* Only the copying out of references happens under the read lock; the
   * sort, which costs most, happens after it, so writers are not held up. */
  {
    g_autoptr(GRWLockReaderLocker) locker G_GNUC_UNUSED =
      g_rw_lock_reader_locker_new (&self->lock);

    g_hash_table_iter_init (&iter, self->entries);
    while (g_hash_table_iter_next (&iter, &entry, NULL))
      {
        gsize len;
        const char *key = kv_entry_peek_key (entry, &len);

        if (len < prefix_len || memcmp (key, prefix, prefix_len) != 0)
          continue;
        if (after != NULL && compare_key (entry, after, after_len) <= 0)
          continue;
        if (is_expired_locked (self, entry, now))
          continue;
        g_ptr_array_add (matches, kv_entry_ref (entry));
      }
  }

  g_ptr_array_sort (matches, compare_entry_keys);

  *more = matches->len > limit;
  keys = g_ptr_array_new_full (MIN (matches->len, limit), g_free);
  for (guint i = 0; i < matches->len && i < limit; i++)
    g_ptr_array_add (keys, kv_entry_dup_key (g_ptr_array_index (matches, i)));

  return keys;
}

static void
kv_map_storage_get_info (KvStorage     *storage,
                         KvStorageInfo *info)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockReaderLocker) locker G_GNUC_UNUSED = g_rw_lock_reader_locker_new (&self->lock);

  info->keys = g_hash_table_size (self->entries);
  info->value_bytes = self->value_bytes;
  info->revision = self->revision;
  info->expired = self->expired;
}

/**
 * kv_map_storage_expire:
 * @self: a #KvMapStorage
 * @max_entries: the most entries to reclaim
 *
 * Reclaims up to @max_entries expired entries, holding the write lock only
 * for that batch. The sweeper thread calls this; so may tests.
 *
 * Returns: how many entries were reclaimed
 */
guint
kv_map_storage_expire (KvMapStorage *self,
                       guint         max_entries)
{
  g_autoptr(GRWLockWriterLocker) locker = NULL;
  gint64 now = g_get_monotonic_time ();
  guint n = 0;

  g_return_val_if_fail (KV_IS_MAP_STORAGE (self), 0);

  locker = g_rw_lock_writer_locker_new (&self->lock);
  while (n < max_entries)
    {
      GTreeNode *first = g_tree_node_first (self->deadlines);
      Expiry *expiry;

      if (first == NULL)
        break;
      expiry = g_tree_node_key (first);
      if (expiry->deadline > now)
        break;

      expire_locked (self, expiry->entry);
      n++;
    }

  return n;
}

static gpointer
sweeper_thread (gpointer data)
{
  KvMapStorage *self = data;

  g_mutex_lock (&self->sweeper_lock);
  while (!self->stopping)
    {
      gint64 wake = g_get_monotonic_time () + SWEEP_INTERVAL_USEC;

      g_cond_wait_until (&self->sweeper_cond, &self->sweeper_lock, wake);
      if (self->stopping)
        break;

      g_mutex_unlock (&self->sweeper_lock);
      /* Batch after batch, letting other writers in between. */
      while (kv_map_storage_expire (self, SWEEP_BATCH) == SWEEP_BATCH)
        ;
      g_mutex_lock (&self->sweeper_lock);
    }
  g_mutex_unlock (&self->sweeper_lock);

  return NULL;
}

static void
kv_map_storage_iface_init (KvStorageInterface *iface)
{
  iface->set = kv_map_storage_set;
  iface->get = kv_map_storage_get;
  iface->delete = kv_map_storage_delete;
  iface->list = kv_map_storage_list;
  iface->get_info = kv_map_storage_get_info;
}

static void
kv_map_storage_finalize (GObject *object)
{
  KvMapStorage *self = KV_MAP_STORAGE (object);

  g_mutex_lock (&self->sweeper_lock);
  self->stopping = TRUE;
  g_cond_signal (&self->sweeper_cond);
  g_mutex_unlock (&self->sweeper_lock);
  g_thread_join (self->sweeper);
  g_mutex_clear (&self->sweeper_lock);
  g_cond_clear (&self->sweeper_cond);

  g_tree_unref (self->deadlines);
  g_hash_table_unref (self->expiries);
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
  self->expiries = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  self->deadlines = g_tree_new_full (expiry_compare, NULL, NULL, NULL);

  g_mutex_init (&self->sweeper_lock);
  g_cond_init (&self->sweeper_cond);
  /* The thread holds no reference: finalize stops and joins it. */
  self->sweeper = g_thread_new ("kv-sweeper", sweeper_thread, self);
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
