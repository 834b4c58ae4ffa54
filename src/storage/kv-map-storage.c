/* kv-map-storage.c: a KvStorage held in memory
 *
 * SPDX-License-Identifier: MIT
 *
 * A GHashTable used as a set of KvEntry (each entry carries its own key),
 * under a GRWLock: readers share the lock, writers take it alone and only
 * for a pointer swap, since entries are built before the lock is taken.
 * Beside it, a KvIndex keeps the same entries in key order, for listings,
 * counts and prefix deletes at O(log n + what they return).
 *
 * Every mutation goes through one commit point, under the write lock:
 * transactions (single-key writes are transactions of one operation) and
 * expiries. It takes the revision, and publishes each change to the
 * KvChangeHub, in revision order.
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
#include "kv-index.h"
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
  KvIndex *index;        /* the same entries, in key order */
  GHashTable *expiries;  /* (element-type KvEntry Expiry): entries with a TTL */
  GTree *deadlines;      /* (element-type Expiry): the same, by deadline */
  guint64 revision;
  guint64 value_bytes;
  guint64 expired;
  KvChangeHub *changes;  /* (owned) */

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
 * reference; out of the ordered index too unless @replaced_by takes its
 * place there. The caller accounts for the revision. */
static void
remove_full_locked (KvMapStorage *self,
                    KvEntry      *entry,
                    KvEntry      *replaced_by)
{
  if (replaced_by != NULL)
    kv_index_replace (self->index, entry, replaced_by);
  else
    kv_index_remove (self->index, entry);

  if (kv_entry_get_has_ttl (entry))
    {
      Expiry *expiry = g_hash_table_lookup (self->expiries, entry);

      g_tree_remove (self->deadlines, expiry);
      g_hash_table_remove (self->expiries, entry);
    }

  self->value_bytes -= kv_entry_get_value_size (entry);
  g_hash_table_remove (self->entries, entry);
}

static void
remove_locked (KvMapStorage *self,
               KvEntry      *entry)
{
  remove_full_locked (self, entry, NULL);
}

static void
publish_locked (KvMapStorage *self,
                KvChangeKind  kind,
                guint64       revision,
                KvEntry      *entry)
{
  g_autoptr(KvChange) change = NULL;
  gsize key_len = 0;
  const char *key = entry != NULL ? kv_entry_peek_key (entry, &key_len) : NULL;

  /* Nobody listening: no change to make. */
  if (!kv_change_hub_has_subscribers (self->changes))
    return;

  change = kv_change_new (kind, revision, key, key_len, kind == KV_CHANGE_PUT ? entry : NULL);
  kv_change_hub_publish (self->changes, change);
}

/* An expiry is a write of its own: it takes a revision. */
static void
expire_locked (KvMapStorage *self,
               KvEntry      *entry)
{
  g_autoptr(KvEntry) gone = kv_entry_ref (entry);

  remove_locked (self, entry);
  self->revision++;
  self->expired++;
  publish_locked (self, KV_CHANGE_EXPIRE, self->revision, gone);
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

static void
set_deadline_locked (KvMapStorage *self,
                     KvEntry      *entry,
                     gint64        deadline)
{
  Expiry *expiry = g_new (Expiry, 1);

  expiry->deadline = deadline;
  expiry->entry = entry;
  kv_entry_set_has_ttl (entry, TRUE);
  g_hash_table_insert (self->expiries, entry, expiry);
  g_tree_insert (self->deadlines, expiry, expiry);
}

/* The live keys with @prefix, referenced, in key order. */
static GPtrArray *
match_prefix_locked (KvMapStorage *self,
                     const char   *prefix,
                     gint64        now)
{
  GPtrArray *matches = g_ptr_array_new_with_free_func ((GDestroyNotify) kv_entry_unref);
  gsize prefix_len = strlen (prefix);
  KvIndexIter iter;
  KvEntry *entry;

  kv_index_iter_init_after (&iter, self->index, prefix, prefix_len, TRUE);
  while ((entry = kv_index_iter_next (&iter)) != NULL)
    {
      gsize len;
      const char *key = kv_entry_peek_key (entry, &len);

      if (len < prefix_len || memcmp (key, prefix, prefix_len) != 0)
        break;
      if (!is_expired_locked (self, entry, now))
        g_ptr_array_add (matches, kv_entry_ref (entry));
    }

  return matches;
}

/* Applies one operation whose precondition held, at @revision. Returns
 * whether it changed anything. */
static gboolean
apply_op_locked (KvMapStorage *self,
                 const KvOp   *op,
                 KvEntry      *built,
                 KvOpResult   *result,
                 guint64       revision,
                 gint64        now)
{
  gsize key_len = strlen (op->key);
  KvEntry *present = op->kind == KV_OP_DELETE_PREFIX || op->kind == KV_OP_CLEAR
                     ? NULL : lookup_locked (self, op->key, key_len);
  /* Expired keys were reclaimed before the transaction; one whose time
   * ran out since is absent, yet still in the table and the index. */
  KvEntry *current = present != NULL && !is_expired_locked (self, present, now) ? present : NULL;
  gint64 deadline = 0;

  result->kind = op->kind;

  switch (op->kind)
    {
    case KV_OP_GET:
      if (current != NULL)
        {
          result->entry = kv_entry_ref (current);
          deadline = deadline_locked (self, current);
          if (deadline != 0)
            result->expires_at = g_get_real_time () + (deadline - now);
        }
      return FALSE;

    case KV_OP_PUT:
      if (op->ttl_mode == KV_TTL_SET)
        deadline = now + op->ttl;
      else if (op->ttl_mode == KV_TTL_KEEP && current != NULL)
        deadline = deadline_locked (self, current);
      /* The new entry takes the old one's place in the ordered index. */
      if (present != NULL)
        remove_full_locked (self, present, built);
      else
        kv_index_insert (self->index, built);

      kv_entry_set_revision (built, revision);
      self->value_bytes += kv_entry_get_value_size (built);
      g_hash_table_add (self->entries, kv_entry_ref (built));
      if (deadline != 0)
        {
          set_deadline_locked (self, built, deadline);
          result->expires_at = g_get_real_time () + (deadline - now);
        }
      result->entry = kv_entry_ref (built);
      publish_locked (self, KV_CHANGE_PUT, revision, built);
      return TRUE;

    case KV_OP_DELETE:
      if (current == NULL)
        return FALSE;
      {
        g_autoptr(KvEntry) gone = kv_entry_ref (current);

        remove_locked (self, current);
        result->n_deleted = 1;
        publish_locked (self, KV_CHANGE_DELETE, revision, gone);
      }
      return TRUE;

    case KV_OP_DELETE_PREFIX:
      {
        g_autoptr(GPtrArray) matches = match_prefix_locked (self, op->key, now);

        for (guint i = 0; i < matches->len; i++)
          {
            KvEntry *gone = g_ptr_array_index (matches, i);

            remove_locked (self, gone);
            publish_locked (self, KV_CHANGE_DELETE, revision, gone);
          }
        result->n_deleted = matches->len;
        return matches->len > 0;
      }

    case KV_OP_CLEAR:
      result->n_deleted = g_hash_table_size (self->entries);
      g_tree_destroy (self->deadlines);
      self->deadlines = g_tree_new_full (expiry_compare, NULL, NULL, NULL);
      g_hash_table_remove_all (self->expiries);
      kv_index_free (self->index);
      self->index = kv_index_new ();
      g_hash_table_remove_all (self->entries);
      self->value_bytes = 0;
      /* One change, even for an empty store: a clear is a write. */
      publish_locked (self, KV_CHANGE_CLEAR, revision, NULL);
      return TRUE;

    default:
      g_assert_not_reached ();
    }
}

static void
entry_unref0 (gpointer entry)
{
  if (entry != NULL)
    kv_entry_unref (entry);
}

static KvTxnResult *
kv_map_storage_apply (KvStorage  *storage,
                      KvTxn      *txn,
                      guint      *failed_op,
                      GError    **error)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockWriterLocker) locker = NULL;
  g_autoptr(GPtrArray) built = NULL;
  g_autoptr(KvTxnResult) result = NULL;
  guint n_ops = kv_txn_get_n_ops (txn);
  gboolean changed = FALSE;
  guint64 revision;
  gint64 now;

  /* Everything that can fail but a precondition fails here, before the
   * lock: keys are checked and the entries to store are built. */
  built = g_ptr_array_new_full (n_ops, entry_unref0);
  for (guint i = 0; i < n_ops; i++)
    {
      const KvOp *op = kv_txn_get_op (txn, i);
      KvEntry *entry = NULL;
      gsize key_len;

      if (op->kind != KV_OP_DELETE_PREFIX && op->kind != KV_OP_CLEAR &&
          !check_key (op->key, &key_len, error))
        return NULL;
      if (op->kind == KV_OP_PUT)
        {
          gsize value_len;
          gconstpointer data = g_bytes_get_data (op->value, &value_len);

          entry = kv_entry_new (op->key, key_len, data, value_len, op->content_type, 0, error);
          if (entry == NULL)
            return NULL;
        }
      g_ptr_array_add (built, entry);
    }

  result = kv_txn_result_new (n_ops);
  locker = g_rw_lock_writer_locker_new (&self->lock);
  now = g_get_monotonic_time ();

  /* Keys that have expired go first, each at a revision of its own, so
   * that preconditions see the store as readers do. */
  for (guint i = 0; i < n_ops; i++)
    {
      const KvOp *op = kv_txn_get_op (txn, i);

      if (op->kind != KV_OP_DELETE_PREFIX && op->kind != KV_OP_CLEAR)
        lookup_live_locked (self, op->key, strlen (op->key), now);
    }

  for (guint i = 0; i < n_ops; i++)
    {
      const KvOp *op = kv_txn_get_op (txn, i);

      if (kv_condition_is_empty (&op->condition))
        continue;
      if (!kv_condition_check (&op->condition, lookup_locked (self, op->key, strlen (op->key))))
        {
          *failed_op = i;
          precondition_failed (error);
          return NULL;
        }
    }

  /* Revisions are taken under the lock so that they order the writes. */
  revision = self->revision + 1;
  for (guint i = 0; i < n_ops; i++)
    changed |= apply_op_locked (self, kv_txn_get_op (txn, i), g_ptr_array_index (built, i),
                                kv_txn_result_get (result, i), revision, now);
  if (changed)
    self->revision = revision;
  kv_txn_result_set_revision (result, self->revision);

  return g_steal_pointer (&result);
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

/* Byte-order comparison of two keys. */
static int
compare_keys (const char *a,
              gsize       a_len,
              const char *b,
              gsize       b_len)
{
  int cmp = memcmp (a, b, MIN (a_len, b_len));

  if (cmp != 0)
    return cmp;
  return a_len < b_len ? -1 : (a_len > b_len ? 1 : 0);
}

static GPtrArray *
kv_map_storage_list (KvStorage  *storage,
                     const char *prefix,
                     const char *after,
                     guint       limit,
                     gboolean   *more)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockReaderLocker) locker = NULL;
  GPtrArray *keys = g_ptr_array_new_full (MIN (limit, 1024), g_free);
  gsize prefix_len = strlen (prefix);
  gsize after_len = after != NULL ? strlen (after) : 0;
  gint64 now = g_get_monotonic_time ();
  KvIndexIter iter;
  KvEntry *entry;

  *more = FALSE;
  locker = g_rw_lock_reader_locker_new (&self->lock);

  /* From the first key after @after, or else the first with @prefix:
   * whichever comes later. */
  if (after != NULL && compare_keys (after, after_len, prefix, prefix_len) >= 0)
    kv_index_iter_init_after (&iter, self->index, after, after_len, FALSE);
  else
    kv_index_iter_init_after (&iter, self->index, prefix, prefix_len, TRUE);

  while ((entry = kv_index_iter_next (&iter)) != NULL)
    {
      gsize len;
      const char *key = kv_entry_peek_key (entry, &len);

      if (len < prefix_len || memcmp (key, prefix, prefix_len) != 0)
        break;
      if (is_expired_locked (self, entry, now))
        continue;
      if (keys->len == limit)
        {
          *more = TRUE;
          break;
        }
      g_ptr_array_add (keys, g_strndup (key, len));
    }

  return keys;
}

static guint64
kv_map_storage_count (KvStorage  *storage,
                      const char *prefix)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockReaderLocker) locker G_GNUC_UNUSED = g_rw_lock_reader_locker_new (&self->lock);
  gsize prefix_len = strlen (prefix);
  gint64 now = g_get_monotonic_time ();
  KvIndexIter iter;
  KvEntry *entry;
  guint64 n = 0;

  /* Every key: the table knows, less what has expired. */
  if (prefix_len == 0 && g_tree_nnodes (self->deadlines) == 0)
    return g_hash_table_size (self->entries);

  kv_index_iter_init_after (&iter, self->index, prefix, prefix_len, TRUE);
  while ((entry = kv_index_iter_next (&iter)) != NULL)
    {
      gsize len;
      const char *key = kv_entry_peek_key (entry, &len);

      if (len < prefix_len || memcmp (key, prefix, prefix_len) != 0)
        break;
      if (!is_expired_locked (self, entry, now))
        n++;
    }

  return n;
}

static guint
kv_map_storage_subscribe (KvStorage      *storage,
                          GMainContext   *context,
                          KvChangeFunc    func,
                          gpointer        user_data,
                          GDestroyNotify  notify)
{
  return kv_change_hub_subscribe (KV_MAP_STORAGE (storage)->changes, context, func, user_data,
                                  notify);
}

static void
kv_map_storage_unsubscribe (KvStorage *storage,
                            guint      id)
{
  kv_change_hub_unsubscribe (KV_MAP_STORAGE (storage)->changes, id);
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

/* Deadlines are monotonic inside the store; a dump, like the log, keeps
 * them on the wall clock, which is what survives a restart. */
static gint64
wall_deadline (gint64 deadline,
               gint64 now,
               gint64 wall_now)
{
  return deadline == 0 ? 0 : wall_now + (deadline - now);
}

static KvDump *
kv_map_storage_dump (KvStorage *storage)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockReaderLocker) locker G_GNUC_UNUSED = g_rw_lock_reader_locker_new (&self->lock);
  KvDump *dump = kv_dump_new (g_hash_table_size (self->entries));
  gint64 now = g_get_monotonic_time ();
  gint64 wall_now = g_get_real_time ();
  KvIndexIter iter;
  KvEntry *entry;

  kv_index_iter_init_after (&iter, self->index, "", 0, TRUE);
  while ((entry = kv_index_iter_next (&iter)) != NULL)
    {
      gint64 deadline = deadline_locked (self, entry);

      if (deadline == 0 || deadline > now)
        kv_dump_add (dump, entry, wall_deadline (deadline, now, wall_now));
    }
  kv_dump_set_revision (dump, self->revision);

  return dump;
}

static void
kv_map_storage_iface_init (KvStorageInterface *iface)
{
  iface->get = kv_map_storage_get;
  iface->apply = kv_map_storage_apply;
  iface->list = kv_map_storage_list;
  iface->count = kv_map_storage_count;
  iface->get_info = kv_map_storage_get_info;
  iface->subscribe = kv_map_storage_subscribe;
  iface->unsubscribe = kv_map_storage_unsubscribe;
  iface->dump = kv_map_storage_dump;
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
  kv_index_free (self->index);
  g_hash_table_unref (self->entries);
  kv_change_hub_free (self->changes);
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
  self->changes = kv_change_hub_new ();
  self->index = kv_index_new ();

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
