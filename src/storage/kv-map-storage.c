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
 *
 * Opened on a data directory, the store is durable: the commit point
 * appends each commit's changes to the log (KvDataDir, KvLog) before it
 * is answered, and publishes them only once they are there. A commit the
 * log refuses (a full disk) is undone, each operation's earlier state put
 * back, so that a refused write changes nothing. A snapshot thread writes
 * the entries out, from a dump taken under the read lock, once the log
 * has outgrown them.
 */
#include "config.h"

#include <string.h>

#include "storage/kv-entry-private.h"
#include "kv-data-dir.h"
#include "kv-index.h"
#include "kv-map-storage.h"
#include "kv-record.h"
#include "kv-result.h"

/* Entries reclaimed per write-lock hold, and how often the sweeper looks. */
#define SWEEP_BATCH 64
#define SWEEP_INTERVAL_USEC (100 * 1000)

typedef struct
{
  gint64 deadline;   /* monotonic time, microseconds */
  gint64 wall;       /* the same on the wall clock, as clients are told it */
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
  guint64 key_bytes;
  guint64 expired;
  KvChangeHub *changes;  /* (owned) */

  /* Durability, when opened on a data directory */
  KvDataDir *data_dir;   /* (nullable) (owned) */
  KvLog *log;            /* (nullable) (unowned): the data directory's */
  GByteArray *record;    /* a commit's frame, built under the write lock */
  gboolean log_failing;  /* to warn once per episode */
  GThread *snapshotter;
  gboolean snapshot_requested;  /* under sweeper_lock */

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

static gsize
entry_key_size (const KvEntry *entry)
{
  gsize len;

  kv_entry_peek_key (entry, &len);
  return len;
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

static const Expiry *
lookup_expiry_locked (KvMapStorage  *self,
                      const KvEntry *entry)
{
  return kv_entry_get_has_ttl (entry) ? g_hash_table_lookup (self->expiries, entry) : NULL;
}

/* When @entry expires, monotonic time, or 0. */
static gint64
deadline_locked (KvMapStorage  *self,
                 const KvEntry *entry)
{
  const Expiry *expiry = lookup_expiry_locked (self, entry);

  return expiry != NULL ? expiry->deadline : 0;
}

/* The same on the wall clock, or 0: kept from when the TTL was set, so
 * that every answer, and the log, give the same instant. */
static gint64
expires_at_locked (KvMapStorage  *self,
                   const KvEntry *entry)
{
  const Expiry *expiry = lookup_expiry_locked (self, entry);

  return expiry != NULL ? expiry->wall : 0;
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
  self->key_bytes -= entry_key_size (entry);
  g_hash_table_remove (self->entries, entry);
}

static void
remove_locked (KvMapStorage *self,
               KvEntry      *entry)
{
  remove_full_locked (self, entry, NULL);
}

/* What one operation changed, to put back if the log refuses the commit. */
typedef struct
{
  KvEntry *before;        /* (owned) (nullable): what the key held */
  gint64 before_deadline;
  gint64 before_wall;
  KvEntry *after;         /* (unowned) (nullable): what took its place */
  /* A clear keeps the whole store it replaced. */
  GHashTable *entries;
  KvIndex *index;
  GHashTable *expiries;
  GTree *deadlines;
  guint64 value_bytes;
  guint64 key_bytes;
} Undo;

/* One commit under way at the commit point. */
typedef struct
{
  guint64 revision;
  gint64 now;             /* monotonic */
  gint64 wall_now;
  GByteArray *record;     /* (nullable): the frame for the log */
  gsize record_start;
  GArray *undo;           /* (element-type Undo) (nullable): with a log only */
  GPtrArray *published;   /* (element-type KvChange) (nullable): for subscribers */
} Commit;

static void
commit_begin (KvMapStorage *self,
              Commit       *commit,
              guint64       revision,
              gint64        now)
{
  commit->revision = revision;
  commit->now = now;
  commit->wall_now = 0;
  commit->record = NULL;
  commit->undo = NULL;
  commit->published = NULL;

  if (self->log != NULL)
    {
      commit->wall_now = g_get_real_time ();
      commit->record = self->record;
      g_byte_array_set_size (commit->record, 0);
      commit->record_start = kv_record_begin (commit->record, KV_RECORD_COMMIT);
      kv_record_append_varint (commit->record, revision);
      kv_record_append_varint (commit->record, commit->wall_now);
      commit->undo = g_array_new (FALSE, TRUE, sizeof (Undo));
    }
  if (kv_change_hub_wants_changes (self->changes))
    commit->published = g_ptr_array_new_with_free_func ((GDestroyNotify) kv_change_unref);
}

/* Records one change: in the log's frame, and for subscribers. */
static void
commit_add (Commit       *commit,
            KvChangeKind  kind,
            KvEntry      *entry,
            gint64        expires_at)
{
  if (commit->record != NULL)
    kv_record_append_change (commit->record, kind, entry, expires_at);
  if (commit->published != NULL)
    {
      gsize key_len = 0;
      const char *key = entry != NULL ? kv_entry_peek_key (entry, &key_len) : NULL;

      g_ptr_array_add (commit->published,
                       kv_change_new (kind, commit->revision, key, key_len,
                                      kind == KV_CHANGE_PUT ? entry : NULL, expires_at));
    }
}

static void
commit_add_undo (KvMapStorage *self,
                 Commit       *commit,
                 KvEntry      *before,
                 KvEntry      *after)
{
  Undo undo = { 0 };

  if (commit->undo == NULL)
    return;
  undo.before = before != NULL ? kv_entry_ref (before) : NULL;
  undo.before_deadline = before != NULL ? deadline_locked (self, before) : 0;
  undo.before_wall = before != NULL ? expires_at_locked (self, before) : 0;
  undo.after = after;
  g_array_append_val (commit->undo, undo);
}

static void
set_deadline_locked (KvMapStorage *self,
                     KvEntry      *entry,
                     gint64        deadline,
                     gint64        wall)
{
  Expiry *expiry = g_new (Expiry, 1);

  expiry->deadline = deadline;
  expiry->wall = wall;
  expiry->entry = entry;
  kv_entry_set_has_ttl (entry, TRUE);
  g_hash_table_insert (self->expiries, entry, expiry);
  g_tree_insert (self->deadlines, expiry, expiry);
}

static void
insert_locked (KvMapStorage *self,
               KvEntry      *entry,
               gint64        deadline,
               gint64        wall)
{
  kv_index_insert (self->index, entry);
  self->value_bytes += kv_entry_get_value_size (entry);
  self->key_bytes += entry_key_size (entry);
  g_hash_table_add (self->entries, kv_entry_ref (entry));
  kv_entry_set_has_ttl (entry, FALSE);
  if (deadline != 0)
    set_deadline_locked (self, entry, deadline, wall);
}

static void
free_store (GHashTable *entries,
            KvIndex    *index,
            GHashTable *expiries,
            GTree      *deadlines)
{
  g_tree_destroy (deadlines);
  g_hash_table_unref (expiries);
  kv_index_free (index);
  g_hash_table_unref (entries);
}

/* Ends a commit: once the log has its frame, publishes its changes;
 * else puts back what it changed and fails. */
static gboolean
commit_end (KvMapStorage  *self,
            Commit        *commit,
            gboolean       changed,
            guint64       *lsn,
            GError       **error)
{
  g_autoptr(GError) local_error = NULL;
  gboolean ok = TRUE;

  *lsn = 0;
  if (changed && commit->record != NULL)
    {
      kv_record_end (commit->record, commit->record_start);
      ok = kv_log_append (self->log, commit->record->data, commit->record->len, lsn,
                          &local_error);
      /* One large commit should not keep its buffer for good. */
      if (commit->record->len > 1024 * 1024)
        {
          g_byte_array_unref (self->record);
          self->record = g_byte_array_new ();
        }
    }

  if (commit->undo != NULL)
    {
      for (guint i = commit->undo->len; i-- > 0;)
        {
          Undo *undo = &g_array_index (commit->undo, Undo, i);

          if (!ok && undo->entries != NULL)
            {
              free_store (self->entries, self->index, self->expiries, self->deadlines);
              self->entries = undo->entries;
              self->index = undo->index;
              self->expiries = undo->expiries;
              self->deadlines = undo->deadlines;
              self->value_bytes = undo->value_bytes;
              self->key_bytes = undo->key_bytes;
            }
          else if (undo->entries != NULL)
            free_store (undo->entries, undo->index, undo->expiries, undo->deadlines);
          else if (!ok)
            {
              if (undo->after != NULL)
                remove_locked (self, undo->after);
              if (undo->before != NULL)
                insert_locked (self, undo->before, undo->before_deadline, undo->before_wall);
            }
          g_clear_pointer (&undo->before, kv_entry_unref);
        }
      g_array_unref (commit->undo);
    }

  if (!ok)
    {
      if (!self->log_failing)
        g_warning ("Refusing writes: %s", local_error->message);
      self->log_failing = TRUE;
      g_clear_pointer (&commit->published, g_ptr_array_unref);
      g_set_error_literal (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_INSUFFICIENT_STORAGE,
                           "insufficient storage");
      return FALSE;
    }

  if (changed && self->log_failing)
    {
      g_message ("Writes are logged again");
      self->log_failing = FALSE;
    }
  /* Every commit, so that the hub knows the revision even when it wants
   * no change. */
  if (changed)
    kv_change_hub_publish (self->changes, commit->revision,
                           commit->published != NULL ? (KvChange **) commit->published->pdata
                                                     : NULL,
                           commit->published != NULL ? commit->published->len : 0);
  g_clear_pointer (&commit->published, g_ptr_array_unref);

  return TRUE;
}

/* Asks the snapshot thread for a snapshot once the log has outgrown the
 * live data. At the commit point, so that the new log segment starts
 * exactly after this commit. */
static void
maybe_snapshot_locked (KvMapStorage *self)
{
  g_autoptr(GError) error = NULL;

  if (self->data_dir == NULL ||
      !kv_data_dir_wants_snapshot (self->data_dir, self->value_bytes + self->key_bytes))
    return;

  if (!kv_data_dir_begin_snapshot (self->data_dir, self->revision, &error))
    {
      g_warning ("Cannot start a snapshot: %s", error->message);
      return;
    }

  g_mutex_lock (&self->sweeper_lock);
  self->snapshot_requested = TRUE;
  g_cond_broadcast (&self->sweeper_cond);
  g_mutex_unlock (&self->sweeper_lock);
}

/* An expiry is a write of its own: it takes a revision. With a log, it
 * happens only once logged; an expired entry is absent to readers
 * meanwhile. */
static gboolean
expire_locked (KvMapStorage *self,
               KvEntry      *entry,
               gint64        now)
{
  g_autoptr(KvEntry) gone = kv_entry_ref (entry);
  Commit commit;
  guint64 lsn;

  commit_begin (self, &commit, self->revision + 1, now);
  commit_add_undo (self, &commit, entry, NULL);
  remove_locked (self, entry);
  commit_add (&commit, KV_CHANGE_EXPIRE, gone, 0);
  if (!commit_end (self, &commit, TRUE, &lsn, NULL))
    return FALSE;

  self->revision++;
  self->expired++;
  maybe_snapshot_locked (self);
  return TRUE;
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
      expire_locked (self, entry, now);
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

static void
delete_locked (KvMapStorage *self,
               Commit       *commit,
               KvEntry      *entry)
{
  g_autoptr(KvEntry) gone = kv_entry_ref (entry);

  commit_add_undo (self, commit, entry, NULL);
  remove_locked (self, entry);
  commit_add (commit, KV_CHANGE_DELETE, gone, 0);
}

/* Applies one operation whose precondition held. Returns whether it
 * changed anything. */
static gboolean
apply_op_locked (KvMapStorage *self,
                 Commit       *commit,
                 const KvOp   *op,
                 KvEntry      *built,
                 KvOpResult   *result)
{
  gint64 now = commit->now;
  gsize key_len = strlen (op->key);
  KvEntry *present = op->kind == KV_OP_DELETE_PREFIX || op->kind == KV_OP_CLEAR
                     ? NULL : lookup_locked (self, op->key, key_len);
  /* Expired keys were reclaimed before the transaction; one whose time
   * ran out since is absent, yet still in the table and the index. */
  KvEntry *current = present != NULL && !is_expired_locked (self, present, now) ? present : NULL;
  gint64 deadline = 0, wall = 0;

  result->kind = op->kind;

  switch (op->kind)
    {
    case KV_OP_GET:
      if (current != NULL)
        {
          result->entry = kv_entry_ref (current);
          result->expires_at = expires_at_locked (self, current);
        }
      return FALSE;

    case KV_OP_PUT:
      if (op->ttl_mode == KV_TTL_SET)
        {
          deadline = now + op->ttl;
          wall = g_get_real_time () + op->ttl;
        }
      else if (op->ttl_mode == KV_TTL_KEEP && current != NULL)
        {
          deadline = deadline_locked (self, current);
          wall = expires_at_locked (self, current);
        }
      commit_add_undo (self, commit, present, built);
      /* The new entry takes the old one's place in the ordered index. */
      if (present != NULL)
        remove_full_locked (self, present, built);
      else
        kv_index_insert (self->index, built);

      kv_entry_set_revision (built, commit->revision);
      self->value_bytes += kv_entry_get_value_size (built);
      self->key_bytes += key_len;
      g_hash_table_add (self->entries, kv_entry_ref (built));
      if (deadline != 0)
        {
          set_deadline_locked (self, built, deadline, wall);
          result->expires_at = wall;
        }
      result->entry = kv_entry_ref (built);
      commit_add (commit, KV_CHANGE_PUT, built, wall);
      return TRUE;

    case KV_OP_DELETE:
      if (current == NULL)
        return FALSE;
      delete_locked (self, commit, current);
      result->n_deleted = 1;
      return TRUE;

    case KV_OP_DELETE_PREFIX:
      {
        g_autoptr(GPtrArray) matches = match_prefix_locked (self, op->key, now);

        for (guint i = 0; i < matches->len; i++)
          delete_locked (self, commit, g_ptr_array_index (matches, i));
        result->n_deleted = matches->len;
        return matches->len > 0;
      }

    case KV_OP_CLEAR:
      result->n_deleted = g_hash_table_size (self->entries);
      if (commit->undo != NULL)
        {
          Undo undo = {
            .entries = self->entries, .index = self->index, .expiries = self->expiries,
            .deadlines = self->deadlines, .value_bytes = self->value_bytes,
            .key_bytes = self->key_bytes,
          };

          g_array_append_val (commit->undo, undo);
        }
      else
        free_store (self->entries, self->index, self->expiries, self->deadlines);
      self->entries = g_hash_table_new_full (kv_entry_hash, kv_entry_equal,
                                             (GDestroyNotify) kv_entry_unref, NULL);
      self->expiries = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
      self->deadlines = g_tree_new_full (expiry_compare, NULL, NULL, NULL);
      self->index = kv_index_new ();
      self->value_bytes = 0;
      self->key_bytes = 0;
      /* One change, even for an empty store: a clear is a write. */
      commit_add (commit, KV_CHANGE_CLEAR, NULL, 0);
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

/* The commit point. @lsn is where the commit ends in the log, 0 if it was
 * not logged. */
static KvTxnResult *
commit_txn (KvMapStorage  *self,
            KvTxn         *txn,
            guint         *failed_op,
            guint64       *lsn,
            GError       **error)
{
  g_autoptr(GRWLockWriterLocker) locker = NULL;
  g_autoptr(GPtrArray) built = NULL;
  g_autoptr(KvTxnResult) result = NULL;
  guint n_ops = kv_txn_get_n_ops (txn);
  gboolean changed = FALSE;
  Commit commit;
  gint64 now;

  *lsn = 0;

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
      KvEntry *present;

      if (kv_condition_is_empty (&op->condition))
        continue;
      /* An expiry the log refused leaves the entry in place: it is
       * absent all the same. */
      present = lookup_locked (self, op->key, strlen (op->key));
      if (present != NULL && is_expired_locked (self, present, now))
        present = NULL;
      if (!kv_condition_check (&op->condition, present))
        {
          *failed_op = i;
          precondition_failed (error);
          return NULL;
        }
    }

  /* Revisions are taken under the lock so that they order the writes. */
  commit_begin (self, &commit, self->revision + 1, now);
  for (guint i = 0; i < n_ops; i++)
    changed |= apply_op_locked (self, &commit, kv_txn_get_op (txn, i),
                                g_ptr_array_index (built, i), kv_txn_result_get (result, i));
  if (!commit_end (self, &commit, changed, lsn, error))
    return NULL;

  if (changed)
    {
      self->revision = commit.revision;
      maybe_snapshot_locked (self);
    }
  kv_txn_result_set_revision (result, self->revision);

  return g_steal_pointer (&result);
}

static KvTxnResult *
kv_map_storage_apply (KvStorage  *storage,
                      KvTxn      *txn,
                      guint      *failed_op,
                      GError    **error)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(KvTxnResult) result = NULL;
  g_autoptr(GError) sync_error = NULL;
  guint64 lsn;

  result = commit_txn (self, txn, failed_op, &lsn, error);
  if (result == NULL)
    return NULL;

  if (lsn != 0 && kv_log_get_mode (self->log) == KV_FSYNC_ALWAYS &&
      !kv_log_wait_synced (self->log, lsn, &sync_error))
    {
      g_set_error_literal (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_INSUFFICIENT_STORAGE,
                           "insufficient storage");
      return NULL;
    }

  return g_steal_pointer (&result);
}

static KvStorageInterface *parent_iface;

static void
on_synced (const GError *error,
           gpointer      user_data)
{
  GTask *task = user_data;

  /* In the log's sync thread: GTask answers in the caller's context. */
  if (error != NULL)
    g_task_return_new_error (task, KV_STORAGE_ERROR, KV_STORAGE_ERROR_INSUFFICIENT_STORAGE,
                             "insufficient storage");
  else
    g_task_return_pointer (task, kv_txn_result_ref (g_task_get_task_data (task)),
                           (GDestroyNotify) kv_txn_result_unref);
  g_object_unref (task);
}

/* With fsync=always, a commit is answered once the log is synced, and the
 * calling thread serves other requests meanwhile: those commits share the
 * next fdatasync. */
static void
kv_map_storage_apply_async (KvStorage           *storage,
                            KvTxn               *txn,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvTxnResult) result = NULL;
  KvResult *ready;
  GTask *task;
  guint failed_op = 0;
  guint64 lsn;

  if (self->log == NULL || kv_log_get_mode (self->log) != KV_FSYNC_ALWAYS)
    {
      parent_iface->apply_async (storage, txn, cancellable, callback, user_data);
      return;
    }

  result = commit_txn (self, txn, &failed_op, &lsn, &error);
  if (result != NULL && lsn != 0)
    {
      task = g_task_new (self, cancellable, callback, user_data);
      g_task_set_source_tag (task, kv_map_storage_apply_async);
      g_task_set_task_data (task, g_steal_pointer (&result), (GDestroyNotify) kv_txn_result_unref);
      kv_log_when_synced (self->log, lsn, on_synced, task);
      return;
    }

  /* Refused, or nothing to log: answered at once, as by the default. */
  ready = kv_result_new (self, kv_map_storage_apply_async, user_data);
  if (result == NULL)
    {
      kv_result_set_index (ready, failed_op);
      kv_result_set_error (ready, g_steal_pointer (&error));
    }
  else
    kv_result_set_pointer (ready, g_steal_pointer (&result), (GDestroyNotify) kv_txn_result_unref);
  if (callback != NULL)
    callback (G_OBJECT (self), G_ASYNC_RESULT (ready), user_data);
  g_object_unref (ready);
}

static KvTxnResult *
kv_map_storage_apply_finish (KvStorage     *storage,
                             GAsyncResult  *result,
                             guint         *failed_op,
                             GError       **error)
{
  if (G_IS_TASK (result))
    {
      *failed_op = 0;
      return g_task_propagate_pointer (G_TASK (result), error);
    }
  if (g_async_result_is_tagged (result, kv_map_storage_apply_async))
    {
      *failed_op = kv_result_get_index (KV_RESULT (result));
      return kv_result_propagate_pointer (KV_RESULT (result), error);
    }

  return parent_iface->apply_finish (storage, result, failed_op, error);
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
        *expires_at = expires_at_locked (self, entry);
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
kv_map_storage_subscribe (KvStorage                *storage,
                          GMainContext             *context,
                          const KvSubscribeOptions *options,
                          KvChangeFunc              func,
                          gpointer                  user_data,
                          GDestroyNotify            notify,
                          KvHistoryInfo            *info,
                          GError                  **error)
{
  guint id = kv_change_hub_subscribe (KV_MAP_STORAGE (storage)->changes, context, options, func,
                                      user_data, notify, info);

  if (id == 0)
    g_set_error_literal (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_COMPACTED,
                         options->since < info->oldest ? "revision compacted"
                                                       : "revision ahead of the store");
  return id;
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
  KvHistoryInfo history;

  *info = (KvStorageInfo) { 0 };
  info->keys = g_hash_table_size (self->entries);
  info->value_bytes = self->value_bytes;
  info->revision = self->revision;
  info->expired = self->expired;
  info->durable = self->data_dir != NULL;
  kv_change_hub_get_history_info (self->changes, &history);
  info->history_changes = history.n_changes;
  info->history_bytes = history.bytes;
  info->history_oldest = history.oldest;
  if (self->data_dir != NULL)
    {
      kv_data_dir_get_info (self->data_dir, &info->disk);
      info->fsync = kv_log_get_mode (self->log);
    }
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

      if (!expire_locked (self, expiry->entry, now))
        break;
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

static KvDump *
kv_map_storage_dump (KvStorage *storage)
{
  KvMapStorage *self = KV_MAP_STORAGE (storage);
  g_autoptr(GRWLockReaderLocker) locker G_GNUC_UNUSED = g_rw_lock_reader_locker_new (&self->lock);
  KvDump *dump = kv_dump_new (g_hash_table_size (self->entries));
  gint64 now = g_get_monotonic_time ();
  KvIndexIter iter;
  KvEntry *entry;

  kv_index_iter_init_after (&iter, self->index, "", 0, TRUE);
  while ((entry = kv_index_iter_next (&iter)) != NULL)
    {
      if (!is_expired_locked (self, entry, now))
        kv_dump_add (dump, entry, expires_at_locked (self, entry));
    }
  kv_dump_set_revision (dump, self->revision);

  return dump;
}

static void
kv_map_storage_iface_init (KvStorageInterface *iface)
{
  /* The defaults, for what only fsync=always answers later. */
  parent_iface = g_new (KvStorageInterface, 1);
  *parent_iface = *iface;

  iface->get = kv_map_storage_get;
  iface->apply = kv_map_storage_apply;
  iface->list = kv_map_storage_list;
  iface->count = kv_map_storage_count;
  iface->get_info = kv_map_storage_get_info;
  iface->subscribe = kv_map_storage_subscribe;
  iface->unsubscribe = kv_map_storage_unsubscribe;
  iface->dump = kv_map_storage_dump;
  iface->apply_async = kv_map_storage_apply_async;
  iface->apply_finish = kv_map_storage_apply_finish;
}

static void
kv_map_storage_finalize (GObject *object)
{
  KvMapStorage *self = KV_MAP_STORAGE (object);

  g_mutex_lock (&self->sweeper_lock);
  self->stopping = TRUE;
  g_cond_broadcast (&self->sweeper_cond);
  g_mutex_unlock (&self->sweeper_lock);
  g_thread_join (self->sweeper);
  if (self->snapshotter != NULL)
    g_thread_join (self->snapshotter);
  g_mutex_clear (&self->sweeper_lock);
  g_cond_clear (&self->sweeper_cond);

  g_tree_unref (self->deadlines);
  g_hash_table_unref (self->expiries);
  kv_index_free (self->index);
  g_hash_table_unref (self->entries);
  /* Last: its log is synced and closed whatever the fsync mode. */
  g_clear_pointer (&self->data_dir, kv_data_dir_free);
  g_clear_pointer (&self->record, g_byte_array_unref);
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

/**
 * kv_map_storage_set_history:
 * @self: a #KvMapStorage
 * @max_changes: the most changes to keep for subscriptions that start
 *   from a past revision; 0 keeps none
 * @max_bytes: the most memory they may take, their entries included
 *
 * Bounds the store's history; the oldest revisions go first. By
 * default it keeps %KV_CHANGE_HUB_DEFAULT_HISTORY changes within
 * %KV_CHANGE_HUB_DEFAULT_HISTORY_SIZE bytes.
 */
void
kv_map_storage_set_history (KvMapStorage *self,
                            guint         max_changes,
                            guint64       max_bytes)
{
  g_return_if_fail (KV_IS_MAP_STORAGE (self));

  kv_change_hub_set_history_limits (self->changes, max_changes, max_bytes);
}

static gpointer
snapshot_thread (gpointer data)
{
  KvMapStorage *self = data;

  g_mutex_lock (&self->sweeper_lock);
  while (!self->stopping)
    {
      g_autoptr(KvDump) dump = NULL;
      g_autoptr(GError) error = NULL;

      if (!self->snapshot_requested)
        {
          g_cond_wait (&self->sweeper_cond, &self->sweeper_lock);
          continue;
        }
      self->snapshot_requested = FALSE;
      g_mutex_unlock (&self->sweeper_lock);

      /* References under the read lock; the writing, outside it. */
      dump = kv_map_storage_dump (KV_STORAGE (self));
      if (!kv_data_dir_write_snapshot (self->data_dir, dump, &error))
        g_warning ("Cannot write a snapshot: %s", error->message);
      else
        g_debug ("Wrote a snapshot of %u entries at revision %" G_GUINT64_FORMAT,
                 kv_dump_get_n_entries (dump), kv_dump_get_revision (dump));

      g_mutex_lock (&self->sweeper_lock);
    }
  g_mutex_unlock (&self->sweeper_lock);

  return NULL;
}

typedef struct
{
  KvMapStorage *self;
  gint64 now;
  gint64 wall_now;
  guint64 dropped;
} Load;

static void
clear_locked (KvMapStorage *self)
{
  free_store (self->entries, self->index, self->expiries, self->deadlines);
  self->entries = g_hash_table_new_full (kv_entry_hash, kv_entry_equal,
                                         (GDestroyNotify) kv_entry_unref, NULL);
  self->expiries = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  self->deadlines = g_tree_new_full (expiry_compare, NULL, NULL, NULL);
  self->index = kv_index_new ();
  self->value_bytes = 0;
  self->key_bytes = 0;
}

/* Replays one change read back from the data directory. */
static void
load_change (const KvRecordChange *change,
             gpointer              data)
{
  Load *load = data;
  KvMapStorage *self = load->self;
  KvEntry *present = change->key != NULL ? lookup_locked (self, change->key, change->key_len)
                                         : NULL;
  g_autoptr(KvEntry) entry = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *content_type = NULL;

  switch (change->kind)
    {
    case KV_CHANGE_PUT:
      /* Expired while the daemon was down: as good as deleted. */
      if (change->expires_at != 0 && change->expires_at <= load->wall_now)
        {
          if (present != NULL)
            remove_locked (self, present);
          load->dropped++;
          break;
        }
      if (change->content_type_len > 0)
        content_type = g_strndup (change->content_type, change->content_type_len);
      entry = kv_entry_new (change->key, change->key_len, change->value, change->value_len,
                            content_type, change->revision, &error);
      if (entry == NULL)
        {
          g_warning ("Dropping a logged entry: %s", error->message);
          break;
        }
      if (present != NULL)
        remove_locked (self, present);
      insert_locked (self, entry, change->expires_at == 0 ? 0 :
                     load->now + (change->expires_at - load->wall_now), change->expires_at);
      break;

    case KV_CHANGE_DELETE:
    case KV_CHANGE_EXPIRE:
      if (present != NULL)
        remove_locked (self, present);
      break;

    case KV_CHANGE_CLEAR:
      clear_locked (self);
      break;

    default:
      break;
    }
}

/**
 * kv_map_storage_open:
 * @data_dir: the directory that holds the store, created if missing
 * @fsync: when the log reaches the disk
 * @snapshot_log_size: write a snapshot once the log is larger than this
 *   and than twice the live data
 * @error: return location for a #GError
 *
 * Opens a durable store: loads what @data_dir holds, then logs every
 * change there. The directory stays locked for this store.
 *
 * Returns: (transfer full): the store, or %NULL with @error set
 */
KvMapStorage *
kv_map_storage_open (const char   *data_dir,
                     KvFsyncMode   fsync,
                     guint64       snapshot_log_size,
                     GError      **error)
{
  g_autoptr(KvMapStorage) self = NULL;
  g_autoptr(KvDataDir) dir = NULL;
  Load load;
  guint64 revision;
  gint64 start = g_get_monotonic_time ();

  g_return_val_if_fail (data_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  dir = kv_data_dir_open (data_dir, fsync, snapshot_log_size, error);
  if (dir == NULL)
    return NULL;

  self = kv_map_storage_new ();
  g_rw_lock_writer_lock (&self->lock);
  load = (Load) { self, g_get_monotonic_time (), g_get_real_time (), 0 };
  if (!kv_data_dir_load (dir, load_change, &load, &revision, error))
    {
      g_rw_lock_writer_unlock (&self->lock);
      return NULL;
    }
  self->revision = revision;
  /* The history starts here: what came before is on disk only. */
  kv_change_hub_set_revision (self->changes, revision);
  /* Before the sweeper can get the lock: its expiries are logged too. */
  self->data_dir = g_steal_pointer (&dir);
  self->log = kv_data_dir_get_log (self->data_dir);
  self->record = g_byte_array_new ();
  g_rw_lock_writer_unlock (&self->lock);

  self->snapshotter = g_thread_new ("kv-snapshot", snapshot_thread, self);
  g_message ("Loaded %u keys at revision %" G_GUINT64_FORMAT " from %s in %.3f s",
             g_hash_table_size (self->entries), revision, data_dir,
             (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);

  return g_steal_pointer (&self);
}
