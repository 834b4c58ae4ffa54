/* kv-storage.c: the interface every key-value storage implements
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "kv-result.h"
#include "kv-storage.h"

G_DEFINE_QUARK (kv-storage-error-quark, kv_storage_error)

G_DEFINE_INTERFACE (KvStorage, kv_storage, G_TYPE_OBJECT)

/* ---- Default asynchronous calls: the synchronous ones, whose answer the
 * callback gets at once, in the call (KvResult), for a store that never
 * waits. Callers are written for a callback that runs either in the call
 * or later. ---- */

typedef struct
{
  KvEntry *entry;
  gint64 expires_at;
} GetResult;

static void
get_result_free (gpointer data)
{
  GetResult *result = data;

  g_clear_pointer (&result->entry, kv_entry_unref);
  g_free (result);
}

static void
complete (KvStorage           *self,
          KvResult            *result,
          GAsyncReadyCallback  callback)
{
  if (callback != NULL)
    callback (G_OBJECT (self), G_ASYNC_RESULT (result), g_async_result_get_user_data (G_ASYNC_RESULT (result)));
  g_object_unref (result);
}

static void
default_get_async (KvStorage           *self,
                   const char          *key,
                   GCancellable        *cancellable,
                   GAsyncReadyCallback  callback,
                   gpointer             user_data)
{
  KvResult *result = kv_result_new (self, default_get_async, user_data);
  GError *error = NULL;
  GetResult *got = g_new0 (GetResult, 1);

  got->entry = KV_STORAGE_GET_IFACE (self)->get (self, key, &got->expires_at, &error);
  if (got->entry == NULL)
    {
      get_result_free (got);
      kv_result_set_error (result, error);
    }
  else
    kv_result_set_pointer (result, got, get_result_free);
  complete (self, result, callback);
}

static KvEntry *
default_get_finish (KvStorage     *self,
                    GAsyncResult  *result,
                    gint64        *expires_at,
                    GError       **error)
{
  GetResult *got = kv_result_propagate_pointer (KV_RESULT (result), error);
  KvEntry *entry;

  if (got == NULL)
    return NULL;
  *expires_at = got->expires_at;
  entry = g_steal_pointer (&got->entry);
  get_result_free (got);
  return entry;
}

static void
default_apply_async (KvStorage           *self,
                     KvTxn               *txn,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  KvResult *result = kv_result_new (self, default_apply_async, user_data);
  GError *error = NULL;
  KvTxnResult *applied;
  guint failed_op = 0;

  applied = KV_STORAGE_GET_IFACE (self)->apply (self, txn, &failed_op, &error);
  if (applied == NULL)
    {
      kv_result_set_index (result, failed_op);
      kv_result_set_error (result, error);
    }
  else
    kv_result_set_pointer (result, applied, (GDestroyNotify) kv_txn_result_unref);
  complete (self, result, callback);
}

static KvTxnResult *
default_apply_finish (KvStorage     *self,
                      GAsyncResult  *result,
                      guint         *failed_op,
                      GError       **error)
{
  *failed_op = kv_result_get_index (KV_RESULT (result));
  return kv_result_propagate_pointer (KV_RESULT (result), error);
}

typedef struct
{
  GPtrArray *keys;
  gboolean more;
} ListResult;

static void
list_result_free (gpointer data)
{
  ListResult *result = data;

  g_clear_pointer (&result->keys, g_ptr_array_unref);
  g_free (result);
}

static void
default_list_async (KvStorage           *self,
                    const char          *prefix,
                    const char          *after,
                    guint                limit,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  KvResult *result = kv_result_new (self, default_list_async, user_data);
  ListResult *listed = g_new0 (ListResult, 1);

  listed->keys = KV_STORAGE_GET_IFACE (self)->list (self, prefix, after, limit, &listed->more);
  kv_result_set_pointer (result, listed, list_result_free);
  complete (self, result, callback);
}

static GPtrArray *
default_list_finish (KvStorage     *self,
                     GAsyncResult  *result,
                     gboolean      *more,
                     GError       **error)
{
  ListResult *listed = kv_result_propagate_pointer (KV_RESULT (result), error);
  GPtrArray *keys;

  if (listed == NULL)
    return NULL;
  *more = listed->more;
  keys = g_steal_pointer (&listed->keys);
  list_result_free (listed);
  return keys;
}

static void
default_info_async (KvStorage           *self,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  KvResult *result = kv_result_new (self, default_info_async, user_data);
  KvStorageInfo *info = g_new0 (KvStorageInfo, 1);

  KV_STORAGE_GET_IFACE (self)->get_info (self, info);
  kv_result_set_pointer (result, info, g_free);
  complete (self, result, callback);
}

static gboolean
default_info_finish (KvStorage      *self,
                     GAsyncResult   *result,
                     KvStorageInfo  *info,
                     GError        **error)
{
  g_autofree KvStorageInfo *got = kv_result_propagate_pointer (KV_RESULT (result), error);

  if (got == NULL)
    return FALSE;
  *info = *got;
  return TRUE;
}

static void
default_dump_async (KvStorage           *self,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  KvResult *result = kv_result_new (self, default_dump_async, user_data);

  kv_result_set_pointer (result, KV_STORAGE_GET_IFACE (self)->dump (self),
                         (GDestroyNotify) kv_dump_unref);
  complete (self, result, callback);
}

static KvDump *
default_dump_finish (KvStorage     *self,
                     GAsyncResult  *result,
                     GError       **error)
{
  return kv_result_propagate_pointer (KV_RESULT (result), error);
}

typedef struct
{
  guint id;
  KvHistoryInfo info;
  GError *error;                /* a refusal comes with the history's bounds */
} SubscribeResult;

static void
subscribe_result_free (gpointer data)
{
  SubscribeResult *result = data;

  g_clear_error (&result->error);
  g_free (result);
}

static void
default_subscribe_async (KvStorage                *self,
                         GMainContext             *context,
                         const KvSubscribeOptions *options,
                         KvChangeFunc              func,
                         gpointer                  user_data,
                         GDestroyNotify            notify,
                         GCancellable             *cancellable,
                         GAsyncReadyCallback       callback,
                         gpointer                  callback_data)
{
  KvResult *result = kv_result_new (self, default_subscribe_async, callback_data);
  SubscribeResult *subscribed = g_new0 (SubscribeResult, 1);

  subscribed->id = KV_STORAGE_GET_IFACE (self)->subscribe (self, context, options, func,
                                                           user_data, notify,
                                                           &subscribed->info,
                                                           &subscribed->error);
  kv_result_set_pointer (result, subscribed, subscribe_result_free);
  complete (self, result, callback);
}

static guint
default_subscribe_finish (KvStorage      *self,
                          GAsyncResult   *result,
                          KvHistoryInfo  *info,
                          GError        **error)
{
  SubscribeResult *subscribed = kv_result_propagate_pointer (KV_RESULT (result), error);
  guint id;

  if (subscribed == NULL)
    return 0;
  *info = subscribed->info;
  if (subscribed->error != NULL)
    g_propagate_error (error, g_steal_pointer (&subscribed->error));
  id = subscribed->id;
  subscribe_result_free (subscribed);
  return id;
}

static void
kv_storage_default_init (KvStorageInterface *iface)
{
  iface->get_async = default_get_async;
  iface->get_finish = default_get_finish;
  iface->apply_async = default_apply_async;
  iface->apply_finish = default_apply_finish;
  iface->list_async = default_list_async;
  iface->list_finish = default_list_finish;
  iface->info_async = default_info_async;
  iface->info_finish = default_info_finish;
  iface->dump_async = default_dump_async;
  iface->dump_finish = default_dump_finish;
  iface->subscribe_async = default_subscribe_async;
  iface->subscribe_finish = default_subscribe_finish;
}

/**
 * kv_storage_apply:
 * @self: a #KvStorage
 * @txn: the operations
 * @failed_op: (out) (optional): on %KV_STORAGE_ERROR_PRECONDITION_FAILED,
 *   the index of the first operation whose precondition failed
 * @error: return location for a #GError
 *
 * Checks every operation's precondition against the store as it is, then
 * applies the operations in order, all at one new revision; when a
 * precondition fails, nothing changes.
 *
 * Returns: (transfer full): one result per operation, or %NULL with @error
 */
KvTxnResult *
kv_storage_apply (KvStorage  *self,
                  KvTxn      *txn,
                  guint      *failed_op,
                  GError    **error)
{
  guint dummy;

  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);
  g_return_val_if_fail (txn != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return KV_STORAGE_GET_IFACE (self)->apply (self, txn, failed_op ? failed_op : &dummy, error);
}

/**
 * kv_storage_set:
 * @self: a #KvStorage
 * @key: a non-empty key
 * @value: the value to store
 * @options: (nullable): content type, expiry and precondition; %NULL for
 *   an unconditional write of an untyped value that never expires
 * @error: return location for a #GError
 *
 * Stores @value under @key, replacing whatever @key held: a transaction of
 * one put. When a precondition fails, nothing changes and @error is
 * %KV_STORAGE_ERROR_PRECONDITION_FAILED.
 *
 * Returns: (transfer full): the new entry, or %NULL with @error set
 */
KvEntry *
kv_storage_set (KvStorage           *self,
                const char          *key,
                GBytes              *value,
                const KvSetOptions  *options,
                GError             **error)
{
  g_autoptr(KvTxn) txn = NULL;
  g_autoptr(KvTxnResult) result = NULL;

  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (value != NULL, NULL);
  g_return_val_if_fail (options == NULL || options->ttl_mode != KV_TTL_SET || options->ttl > 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  txn = kv_txn_new ();
  kv_txn_add_put (txn, key, value, options);
  result = kv_storage_apply (self, txn, NULL, error);
  if (result == NULL)
    return NULL;

  return kv_entry_ref (kv_txn_result_get (result, 0)->entry);
}

/**
 * kv_storage_get:
 * @self: a #KvStorage
 * @key: the key to look up
 * @expires_at: (out) (optional): when the entry expires, in microseconds
 *   since the Unix epoch, or 0 if it does not
 * @error: return location for a #GError
 *
 * An entry whose time to live has passed is not found, even before its
 * memory is reclaimed.
 *
 * Returns: (transfer full): the entry for @key, or %NULL with
 *   %KV_STORAGE_ERROR_NOT_FOUND
 */
KvEntry *
kv_storage_get (KvStorage   *self,
                const char  *key,
                gint64      *expires_at,
                GError     **error)
{
  gint64 dummy;

  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return KV_STORAGE_GET_IFACE (self)->get (self, key, expires_at ? expires_at : &dummy, error);
}

/**
 * kv_storage_delete:
 * @self: a #KvStorage
 * @key: the key to remove
 * @condition: (nullable): precondition on the entry being removed
 * @error: return location for a #GError
 *
 * Removes @key: a transaction of one delete. Removing a key that is not
 * there succeeds, unless @condition requires it to exist.
 *
 * Returns: %TRUE on success
 */
gboolean
kv_storage_delete (KvStorage          *self,
                   const char         *key,
                   const KvCondition  *condition,
                   GError            **error)
{
  g_autoptr(KvTxn) txn = NULL;
  g_autoptr(KvTxnResult) result = NULL;

  g_return_val_if_fail (KV_IS_STORAGE (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  txn = kv_txn_new ();
  kv_txn_add_delete (txn, key, condition);
  result = kv_storage_apply (self, txn, NULL, error);

  return result != NULL;
}

static guint64
apply_deletion (KvStorage  *self,
                KvTxn      *txn,
                guint64    *revision,
                GError    **error)
{
  g_autoptr(KvTxnResult) result = kv_storage_apply (self, txn, NULL, error);

  if (result == NULL)
    return 0;
  if (revision != NULL)
    *revision = kv_txn_result_get_revision (result);
  return kv_txn_result_get (result, 0)->n_deleted;
}

/**
 * kv_storage_delete_prefix:
 * @self: a #KvStorage
 * @prefix: deletes every key that starts with it
 * @revision: (out) (optional): the revision of the deletion
 * @error: return location for a #GError
 *
 * Deletes every key with @prefix at one revision.
 *
 * Returns: how many keys went
 */
guint64
kv_storage_delete_prefix (KvStorage  *self,
                          const char *prefix,
                          guint64    *revision,
                          GError    **error)
{
  g_autoptr(KvTxn) txn = NULL;

  g_return_val_if_fail (KV_IS_STORAGE (self), 0);
  g_return_val_if_fail (prefix != NULL, 0);

  txn = kv_txn_new ();
  kv_txn_add_delete_prefix (txn, prefix);
  return apply_deletion (self, txn, revision, error);
}

/**
 * kv_storage_clear:
 * @self: a #KvStorage
 * @revision: (out) (optional): the revision of the clear
 * @error: return location for a #GError
 *
 * Deletes every key, as one change.
 *
 * Returns: how many keys went
 */
guint64
kv_storage_clear (KvStorage  *self,
                  guint64    *revision,
                  GError    **error)
{
  g_autoptr(KvTxn) txn = NULL;

  g_return_val_if_fail (KV_IS_STORAGE (self), 0);

  txn = kv_txn_new ();
  kv_txn_add_clear (txn);
  return apply_deletion (self, txn, revision, error);
}

/**
 * kv_storage_list:
 * @self: a #KvStorage
 * @prefix: (nullable): only keys that start with @prefix
 * @after: (nullable): only keys that sort strictly after @after
 * @limit: the most keys to return
 * @more: (out) (optional): set to whether more keys match after the last
 *   one returned
 *
 * Lists live keys in byte order.
 *
 * Returns: (transfer full) (element-type utf8): the keys
 */
GPtrArray *
kv_storage_list (KvStorage  *self,
                 const char *prefix,
                 const char *after,
                 guint       limit,
                 gboolean   *more)
{
  gboolean dummy;

  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);

  return KV_STORAGE_GET_IFACE (self)->list (self, prefix ? prefix : "", after, limit,
                                            more ? more : &dummy);
}

/**
 * kv_storage_get_info:
 * @self: a #KvStorage
 * @info: (out caller-allocates): where to store sizes and counters
 */
void
kv_storage_get_info (KvStorage     *self,
                     KvStorageInfo *info)
{
  g_return_if_fail (KV_IS_STORAGE (self));
  g_return_if_fail (info != NULL);

  KV_STORAGE_GET_IFACE (self)->get_info (self, info);
}

/**
 * kv_storage_count:
 * @self: a #KvStorage
 * @prefix: (nullable): only keys that start with @prefix
 *
 * Returns: how many live keys start with @prefix
 */
guint64
kv_storage_count (KvStorage  *self,
                  const char *prefix)
{
  g_return_val_if_fail (KV_IS_STORAGE (self), 0);

  return KV_STORAGE_GET_IFACE (self)->count (self, prefix ? prefix : "");
}

/**
 * kv_storage_subscribe:
 * @self: a #KvStorage
 * @context: (nullable): where @func runs, or %NULL for the thread-default
 *   main context of the caller
 * @options: (nullable): the revision to start after, and the key or
 *   prefix to follow; %NULL for every change from now on
 * @func: receives the changes
 * @user_data: data for @func
 * @notify: (nullable): frees @user_data once unsubscribed
 * @info: (out caller-allocates) (optional): the store's history as the
 *   subscription starts (or is refused): the revision the new changes
 *   come after, and the oldest one a subscription can start after
 * @error: return location for a #GError
 *
 * Every change to the store that @options select — puts, deletes,
 * expiries, clears, whichever thread made them — reaches @func in
 * revision order, none lost and none twice; the changes of one
 * transaction carry its one revision. With a revision to start after,
 * the changes after it come first, from the store's history, taken at
 * the same instant as the subscription. When the history no longer has
 * them (or the revision is ahead of the store), the subscription is
 * refused with %KV_STORAGE_ERROR_COMPACTED, and @user_data stays the
 * caller's.
 *
 * Returns: the subscription's id, or 0 with @error set
 */
guint
kv_storage_subscribe (KvStorage                *self,
                      GMainContext             *context,
                      const KvSubscribeOptions *options,
                      KvChangeFunc              func,
                      gpointer                  user_data,
                      GDestroyNotify            notify,
                      KvHistoryInfo            *info,
                      GError                  **error)
{
  KvHistoryInfo dummy;

  g_return_val_if_fail (KV_IS_STORAGE (self), 0);
  g_return_val_if_fail (func != NULL, 0);
  g_return_val_if_fail (options == NULL || options->key == NULL || options->prefix == NULL, 0);
  g_return_val_if_fail (error == NULL || *error == NULL, 0);

  return KV_STORAGE_GET_IFACE (self)->subscribe (self, context, options, func, user_data,
                                                 notify, info != NULL ? info : &dummy, error);
}

/**
 * kv_storage_unsubscribe:
 * @self: a #KvStorage
 * @id: what kv_storage_subscribe() returned
 *
 * Called in the subscription's context, no change reaches it after.
 */
void
kv_storage_unsubscribe (KvStorage *self,
                        guint      id)
{
  g_return_if_fail (KV_IS_STORAGE (self));

  KV_STORAGE_GET_IFACE (self)->unsubscribe (self, id);
}

/**
 * kv_storage_get_async:
 * @self: a #KvStorage
 * @key: the key to look up; copied
 * @cancellable: (nullable): cancel when the answer is no longer wanted
 * @callback: called in the caller's thread-default main context, maybe
 *   before this returns
 * @user_data: data for @callback
 *
 * As kv_storage_get(), completing later.
 */
void
kv_storage_get_async (KvStorage           *self,
                      const char          *key,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_return_if_fail (KV_IS_STORAGE (self));
  g_return_if_fail (key != NULL);

  KV_STORAGE_GET_IFACE (self)->get_async (self, key, cancellable, callback, user_data);
}

/**
 * kv_storage_get_finish:
 * @self: a #KvStorage
 * @result: the result passed to the callback
 * @expires_at: (out) (optional): as for kv_storage_get()
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the entry, or %NULL with @error
 */
KvEntry *
kv_storage_get_finish (KvStorage     *self,
                       GAsyncResult  *result,
                       gint64        *expires_at,
                       GError       **error)
{
  gint64 dummy;

  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return KV_STORAGE_GET_IFACE (self)->get_finish (self, result,
                                                  expires_at ? expires_at : &dummy, error);
}

/**
 * kv_storage_apply_async:
 * @self: a #KvStorage
 * @txn: the operations; referenced until done
 * @cancellable: (nullable): cancel when the answer is no longer wanted;
 *   a transaction already sent may still apply
 * @callback: called in the caller's thread-default main context, maybe
 *   before this returns
 * @user_data: data for @callback
 *
 * As kv_storage_apply(), completing later.
 */
void
kv_storage_apply_async (KvStorage           *self,
                        KvTxn               *txn,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_return_if_fail (KV_IS_STORAGE (self));
  g_return_if_fail (txn != NULL);

  KV_STORAGE_GET_IFACE (self)->apply_async (self, txn, cancellable, callback, user_data);
}

/**
 * kv_storage_apply_finish:
 * @self: a #KvStorage
 * @result: the result passed to the callback
 * @failed_op: (out) (optional): as for kv_storage_apply()
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the results, or %NULL with @error
 */
KvTxnResult *
kv_storage_apply_finish (KvStorage     *self,
                         GAsyncResult  *result,
                         guint         *failed_op,
                         GError       **error)
{
  guint dummy;

  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return KV_STORAGE_GET_IFACE (self)->apply_finish (self, result,
                                                    failed_op ? failed_op : &dummy, error);
}

/**
 * kv_storage_list_async:
 * @self: a #KvStorage
 * @prefix: (nullable): as for kv_storage_list(); copied
 * @after: (nullable): likewise
 * @limit: likewise
 * @cancellable: (nullable): cancel when the answer is no longer wanted
 * @callback: called in the caller's thread-default main context, maybe
 *   before this returns
 * @user_data: data for @callback
 *
 * As kv_storage_list(), completing later.
 */
void
kv_storage_list_async (KvStorage           *self,
                       const char          *prefix,
                       const char          *after,
                       guint                limit,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_return_if_fail (KV_IS_STORAGE (self));

  KV_STORAGE_GET_IFACE (self)->list_async (self, prefix ? prefix : "", after, limit,
                                           cancellable, callback, user_data);
}

/**
 * kv_storage_list_finish:
 * @self: a #KvStorage
 * @result: the result passed to the callback
 * @more: (out) (optional): as for kv_storage_list()
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (element-type utf8): the keys, or %NULL with
 *   @error
 */
GPtrArray *
kv_storage_list_finish (KvStorage     *self,
                        GAsyncResult  *result,
                        gboolean      *more,
                        GError       **error)
{
  gboolean dummy;

  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return KV_STORAGE_GET_IFACE (self)->list_finish (self, result, more ? more : &dummy, error);
}

/**
 * kv_storage_info_async:
 * @self: a #KvStorage
 * @cancellable: (nullable): cancel when the answer is no longer wanted
 * @callback: called in the caller's thread-default main context, maybe
 *   before this returns
 * @user_data: data for @callback
 *
 * As kv_storage_get_info(), completing later.
 */
void
kv_storage_info_async (KvStorage           *self,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_return_if_fail (KV_IS_STORAGE (self));

  KV_STORAGE_GET_IFACE (self)->info_async (self, cancellable, callback, user_data);
}

/**
 * kv_storage_info_finish:
 * @self: a #KvStorage
 * @result: the result passed to the callback
 * @info: (out caller-allocates): sizes and counters
 * @error: return location for a #GError
 *
 * Returns: %TRUE with @info filled in
 */
gboolean
kv_storage_info_finish (KvStorage      *self,
                        GAsyncResult   *result,
                        KvStorageInfo  *info,
                        GError        **error)
{
  g_return_val_if_fail (KV_IS_STORAGE (self), FALSE);
  g_return_val_if_fail (info != NULL, FALSE);

  return KV_STORAGE_GET_IFACE (self)->info_finish (self, result, info, error);
}

/**
 * kv_storage_dump:
 * @self: a #KvStorage
 *
 * Takes every live entry, in key order, with its expiry, as of one
 * revision: what a snapshot or an export writes out, consistent while
 * writes go on.
 *
 * Returns: (transfer full): the entries
 */
KvDump *
kv_storage_dump (KvStorage *self)
{
  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);

  return KV_STORAGE_GET_IFACE (self)->dump (self);
}

/**
 * kv_storage_dump_async:
 * @self: a #KvStorage
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the dump
 * @user_data: data for @callback
 *
 * As kv_storage_dump(), completing later.
 */
void
kv_storage_dump_async (KvStorage           *self,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_return_if_fail (KV_IS_STORAGE (self));

  KV_STORAGE_GET_IFACE (self)->dump_async (self, cancellable, callback, user_data);
}

/**
 * kv_storage_dump_finish:
 * @self: a #KvStorage
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the dump, or %NULL with @error set
 */
KvDump *
kv_storage_dump_finish (KvStorage     *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);

  return KV_STORAGE_GET_IFACE (self)->dump_finish (self, result, error);
}

/**
 * kv_storage_subscribe_async:
 * @self: a #KvStorage
 * @context: (nullable): as for kv_storage_subscribe()
 * @options: (nullable): likewise; copied
 * @func: likewise
 * @user_data: likewise
 * @notify: (nullable): likewise
 * @cancellable: (nullable): a #GCancellable
 * @callback: called in the caller's thread-default main context, maybe
 *   before this returns, with the subscription made or refused
 * @callback_data: data for @callback
 *
 * As kv_storage_subscribe(), completing later.
 */
void
kv_storage_subscribe_async (KvStorage                *self,
                            GMainContext             *context,
                            const KvSubscribeOptions *options,
                            KvChangeFunc              func,
                            gpointer                  user_data,
                            GDestroyNotify            notify,
                            GCancellable             *cancellable,
                            GAsyncReadyCallback       callback,
                            gpointer                  callback_data)
{
  g_return_if_fail (KV_IS_STORAGE (self));
  g_return_if_fail (func != NULL);
  g_return_if_fail (options == NULL || options->key == NULL || options->prefix == NULL);

  KV_STORAGE_GET_IFACE (self)->subscribe_async (self, context, options, func, user_data, notify,
                                                cancellable, callback, callback_data);
}

/**
 * kv_storage_subscribe_finish:
 * @self: a #KvStorage
 * @result: the result passed to the callback
 * @info: (out caller-allocates) (optional): as for kv_storage_subscribe()
 * @error: return location for a #GError
 *
 * Returns: the subscription's id, or 0 with @error set
 */
guint
kv_storage_subscribe_finish (KvStorage      *self,
                             GAsyncResult   *result,
                             KvHistoryInfo  *info,
                             GError        **error)
{
  KvHistoryInfo dummy;

  g_return_val_if_fail (KV_IS_STORAGE (self), 0);
  g_return_val_if_fail (error == NULL || *error == NULL, 0);

  return KV_STORAGE_GET_IFACE (self)->subscribe_finish (self, result,
                                                        info != NULL ? info : &dummy, error);
}
