/* kv-storage.h: the interface every key-value storage implements
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "storage/kv-change-hub.h"
#include "storage/kv-condition.h"
#include "storage/kv-data-dir.h"
#include "storage/kv-dump.h"
#include "storage/kv-entry.h"
#include "storage/kv-log.h"
#include "storage/kv-txn.h"

G_BEGIN_DECLS

#define KV_STORAGE_ERROR (kv_storage_error_quark ())

/**
 * KvStorageError:
 * @KV_STORAGE_ERROR_NOT_FOUND: the key is not in the store
 * @KV_STORAGE_ERROR_INVALID_ARGUMENT: a key or value the store cannot hold
 * @KV_STORAGE_ERROR_PRECONDITION_FAILED: a #KvCondition did not hold; nothing
 *   was changed
 * @KV_STORAGE_ERROR_INSUFFICIENT_STORAGE: the change could not be made
 *   durable (a full disk, an I/O error); nothing was changed
 * @KV_STORAGE_ERROR_COMPACTED: a subscription cannot start after the
 *   revision asked for: the changes after it are no longer in the
 *   history, or it is ahead of the store
 *
 * Errors from #KvStorage operations.
 */
typedef enum
{
  KV_STORAGE_ERROR_NOT_FOUND,
  KV_STORAGE_ERROR_INVALID_ARGUMENT,
  KV_STORAGE_ERROR_PRECONDITION_FAILED,
  KV_STORAGE_ERROR_INSUFFICIENT_STORAGE,
  KV_STORAGE_ERROR_COMPACTED,
} KvStorageError;

GQuark kv_storage_error_quark (void);

/**
 * KvStorageInfo:
 * @keys: entries held, including expired ones not yet reclaimed
 * @value_bytes: total size of the values held
 * @revision: the store's revision: that of its latest write
 * @expired: entries removed because they expired, since creation
 * @history_changes: changes held for subscriptions that start from a
 *   past revision
 * @history_bytes: the memory they take
 * @history_oldest: the oldest revision such a subscription can start after
 * @durable: whether the store keeps its data on disk; the fields below are
 *   0 if not
 * @fsync: when its log reaches the disk
 * @disk: its log, snapshots and syncs
 */
typedef struct
{
  guint64 keys;
  guint64 value_bytes;
  guint64 revision;
  guint64 expired;
  guint64 history_changes;
  guint64 history_bytes;
  guint64 history_oldest;
  gboolean durable;
  KvFsyncMode fsync;
  KvDataDirInfo disk;
} KvStorageInfo;

#define KV_TYPE_STORAGE (kv_storage_get_type ())
G_DECLARE_INTERFACE (KvStorage, kv_storage, KV, STORAGE, GObject)

/**
 * KvStorageInterface:
 * @get: looks a key up
 * @apply: applies a transaction, all or nothing, at one revision: the one
 *   way to write, so that every change has one commit point
 * @list: lists keys in byte order
 * @count: counts the keys with a prefix
 * @get_info: sizes and counters
 * @subscribe: delivers the changes after a revision (those in the history,
 *   then every new one), in revision order, in a main context of the
 *   caller's choosing
 * @unsubscribe: ends a subscription
 * @get_async: as @get, completing later
 * @get_finish: the result of @get_async
 * @apply_async: as @apply, completing later
 * @apply_finish: the result of @apply_async
 * @list_async: as @list, completing later
 * @list_finish: the result of @list_async
 * @info_async: as @get_info, completing later
 * @info_finish: the result of @info_async
 * @dump: every live entry, as of one revision
 * @dump_async: as @dump, completing later
 * @dump_finish: the result of @dump_async
 * @subscribe_async: as @subscribe, completing later
 * @subscribe_finish: the result of @subscribe_async
 *
 * Implementations must be safe to call from any thread. A store that
 * answers over the network implements the asynchronous calls; the
 * defaults run the synchronous ones and call the callback at once, in
 * the call: a caller must expect its callback either then or later, in
 * its thread-default main context.
 */
struct _KvStorageInterface
{
  GTypeInterface g_iface;

  KvEntry     *(*get)         (KvStorage           *self,
                               const char          *key,
                               gint64              *expires_at,
                               GError             **error);
  KvTxnResult *(*apply)       (KvStorage           *self,
                               KvTxn               *txn,
                               guint               *failed_op,
                               GError             **error);
  GPtrArray   *(*list)        (KvStorage           *self,
                               const char          *prefix,
                               const char          *after,
                               guint                limit,
                               gboolean            *more);
  guint64      (*count)       (KvStorage           *self,
                               const char          *prefix);
  void         (*get_info)    (KvStorage           *self,
                               KvStorageInfo       *info);
  guint        (*subscribe)   (KvStorage                *self,
                               GMainContext             *context,
                               const KvSubscribeOptions *options,
                               KvChangeFunc              func,
                               gpointer                  user_data,
                               GDestroyNotify            notify,
                               KvHistoryInfo            *info,
                               GError                  **error);
  void         (*unsubscribe) (KvStorage           *self,
                               guint                id);

  void         (*get_async)    (KvStorage           *self,
                                const char          *key,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data);
  KvEntry     *(*get_finish)   (KvStorage           *self,
                                GAsyncResult        *result,
                                gint64              *expires_at,
                                GError             **error);
  void         (*apply_async)  (KvStorage           *self,
                                KvTxn               *txn,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data);
  KvTxnResult *(*apply_finish) (KvStorage           *self,
                                GAsyncResult        *result,
                                guint               *failed_op,
                                GError             **error);
  void         (*list_async)   (KvStorage           *self,
                                const char          *prefix,
                                const char          *after,
                                guint                limit,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data);
  GPtrArray   *(*list_finish)  (KvStorage           *self,
                                GAsyncResult        *result,
                                gboolean            *more,
                                GError             **error);
  void         (*info_async)   (KvStorage           *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data);
  gboolean     (*info_finish)  (KvStorage           *self,
                                GAsyncResult        *result,
                                KvStorageInfo       *info,
                                GError             **error);
  KvDump      *(*dump)         (KvStorage           *self);
  void         (*dump_async)   (KvStorage           *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data);
  KvDump      *(*dump_finish)  (KvStorage           *self,
                                GAsyncResult        *result,
                                GError             **error);
  void         (*subscribe_async)  (KvStorage                *self,
                                    GMainContext             *context,
                                    const KvSubscribeOptions *options,
                                    KvChangeFunc              func,
                                    gpointer                  user_data,
                                    GDestroyNotify            notify,
                                    GCancellable             *cancellable,
                                    GAsyncReadyCallback       callback,
                                    gpointer                  callback_data);
  guint        (*subscribe_finish) (KvStorage                *self,
                                    GAsyncResult             *result,
                                    KvHistoryInfo            *info,
                                    GError                  **error);
};

KvEntry     *kv_storage_get          (KvStorage           *self,
                                      const char          *key,
                                      gint64              *expires_at,
                                      GError             **error);
KvTxnResult *kv_storage_apply        (KvStorage           *self,
                                      KvTxn               *txn,
                                      guint               *failed_op,
                                      GError             **error);
KvEntry     *kv_storage_set          (KvStorage           *self,
                                      const char          *key,
                                      GBytes              *value,
                                      const KvSetOptions  *options,
                                      GError             **error);
gboolean     kv_storage_delete       (KvStorage           *self,
                                      const char          *key,
                                      const KvCondition   *condition,
                                      GError             **error);
guint64      kv_storage_delete_prefix (KvStorage          *self,
                                       const char         *prefix,
                                       guint64            *revision,
                                       GError            **error);
guint64      kv_storage_clear        (KvStorage           *self,
                                      guint64             *revision,
                                      GError             **error);
GPtrArray   *kv_storage_list         (KvStorage           *self,
                                      const char          *prefix,
                                      const char          *after,
                                      guint                limit,
                                      gboolean            *more);
guint64      kv_storage_count        (KvStorage           *self,
                                      const char          *prefix);
void         kv_storage_get_info     (KvStorage           *self,
                                      KvStorageInfo       *info);
guint        kv_storage_subscribe    (KvStorage                *self,
                                      GMainContext             *context,
                                      const KvSubscribeOptions *options,
                                      KvChangeFunc              func,
                                      gpointer                  user_data,
                                      GDestroyNotify            notify,
                                      KvHistoryInfo            *info,
                                      GError                  **error);
void         kv_storage_unsubscribe  (KvStorage           *self,
                                      guint                id);

void         kv_storage_get_async    (KvStorage           *self,
                                      const char          *key,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);
KvEntry     *kv_storage_get_finish   (KvStorage           *self,
                                      GAsyncResult        *result,
                                      gint64              *expires_at,
                                      GError             **error);
void         kv_storage_apply_async  (KvStorage           *self,
                                      KvTxn               *txn,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);
KvTxnResult *kv_storage_apply_finish (KvStorage           *self,
                                      GAsyncResult        *result,
                                      guint               *failed_op,
                                      GError             **error);
void         kv_storage_list_async   (KvStorage           *self,
                                      const char          *prefix,
                                      const char          *after,
                                      guint                limit,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);
GPtrArray   *kv_storage_list_finish  (KvStorage           *self,
                                      GAsyncResult        *result,
                                      gboolean            *more,
                                      GError             **error);
void         kv_storage_info_async   (KvStorage           *self,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);
gboolean     kv_storage_info_finish  (KvStorage           *self,
                                      GAsyncResult        *result,
                                      KvStorageInfo       *info,
                                      GError             **error);
KvDump      *kv_storage_dump         (KvStorage           *self);
void         kv_storage_dump_async   (KvStorage           *self,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);
KvDump      *kv_storage_dump_finish  (KvStorage           *self,
                                      GAsyncResult        *result,
                                      GError             **error);
void         kv_storage_subscribe_async  (KvStorage                *self,
                                          GMainContext             *context,
                                          const KvSubscribeOptions *options,
                                          KvChangeFunc              func,
                                          gpointer                  user_data,
                                          GDestroyNotify            notify,
                                          GCancellable             *cancellable,
                                          GAsyncReadyCallback       callback,
                                          gpointer                  callback_data);
guint        kv_storage_subscribe_finish (KvStorage                *self,
                                          GAsyncResult             *result,
                                          KvHistoryInfo            *info,
                                          GError                  **error);

G_END_DECLS
