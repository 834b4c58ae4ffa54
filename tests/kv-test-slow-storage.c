/* kv-test-slow-storage.c: a store that answers some keys late
 *
 * SPDX-License-Identifier: MIT
 *
 * The real KvMapStorage behind the interface, except that the answer to
 * an asynchronous call about a key starting with "slow" comes after a
 * delay, in the caller's main context, as a store across the network
 * would answer: so that tests can see a server keep serving others while
 * one call waits, and see the call cancelled when its client goes away.
 */
#include "config.h"

#include <string.h>

#include "kv-test-slow-storage.h"
#include "storage/kv-map-storage.h"

struct _KvTestSlowStorage
{
  GObject parent_instance;

  KvStorage *inner;     /* (owned) */
  guint delay_ms;
  guint n_cancelled;    /* (atomic) */
  guint n_pending;      /* (atomic) */
};

static void kv_test_slow_storage_iface_init (KvStorageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (KvTestSlowStorage, kv_test_slow_storage, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (KV_TYPE_STORAGE,
                                                      kv_test_slow_storage_iface_init))

static KvStorageInterface *inner_iface;

#define INNER(self) (KV_TEST_SLOW_STORAGE (self)->inner)

static KvEntry *
slow_get (KvStorage *self, const char *key, gint64 *expires_at, GError **error)
{
  return kv_storage_get (INNER (self), key, expires_at, error);
}

static KvTxnResult *
slow_apply (KvStorage *self, KvTxn *txn, guint *failed_op, GError **error)
{
  return kv_storage_apply (INNER (self), txn, failed_op, error);
}

static GPtrArray *
slow_list (KvStorage *self, const char *prefix, const char *after, guint limit, gboolean *more)
{
  return kv_storage_list (INNER (self), prefix, after, limit, more);
}

static guint64
slow_count (KvStorage *self, const char *prefix)
{
  return kv_storage_count (INNER (self), prefix);
}

static void
slow_get_info (KvStorage *self, KvStorageInfo *info)
{
  kv_storage_get_info (INNER (self), info);
}

static guint
slow_subscribe (KvStorage *self, GMainContext *context, const KvSubscribeOptions *options,
                KvChangeFunc func, gpointer user_data, GDestroyNotify notify, KvHistoryInfo *info,
                GError **error)
{
  return kv_storage_subscribe (INNER (self), context, options, func, user_data, notify, info,
                               error);
}

static void
slow_unsubscribe (KvStorage *self, guint id)
{
  kv_storage_unsubscribe (INNER (self), id);
}

typedef struct
{
  KvTestSlowStorage *self;
  char *key;
  KvTxn *txn;
} Pending;

static void
pending_free (gpointer data)
{
  Pending *pending = data;

  g_free (pending->key);
  g_clear_pointer (&pending->txn, kv_txn_unref);
  g_free (pending);
}

/* Runs the real call once the delay is over, unless cancelled. */
static gboolean
on_delay_over (gpointer data)
{
  GTask *task = data;
  Pending *pending = g_task_get_task_data (task);
  KvTestSlowStorage *self = pending->self;
  GError *error = NULL;

  g_atomic_int_dec_and_test (&self->n_pending);
  if (g_task_return_error_if_cancelled (task))
    {
      g_atomic_int_inc (&self->n_cancelled);
      return G_SOURCE_REMOVE;
    }

  if (pending->txn != NULL)
    {
      guint failed = 0;
      KvTxnResult *result = kv_storage_apply (self->inner, pending->txn, &failed, &error);

      if (result == NULL)
        g_task_return_error (task, error);
      else
        g_task_return_pointer (task, result, (GDestroyNotify) kv_txn_result_unref);
    }
  else
    {
      KvEntry *entry = kv_storage_get (self->inner, pending->key, NULL, &error);

      if (entry == NULL)
        g_task_return_error (task, error);
      else
        g_task_return_pointer (task, entry, (GDestroyNotify) kv_entry_unref);
    }
  return G_SOURCE_REMOVE;
}

static gboolean
is_slow (const char *key)
{
  return g_str_has_prefix (key, "slow");
}

static void
delay (KvTestSlowStorage *self,
       GTask             *task)
{
  GSource *source = g_timeout_source_new (self->delay_ms);

  g_atomic_int_inc (&self->n_pending);
  g_source_set_callback (source, on_delay_over, task, g_object_unref);
  g_source_attach (source, g_task_get_context (task));
  g_source_unref (source);
}

static void
slow_get_async (KvStorage *storage, const char *key, GCancellable *cancellable,
                GAsyncReadyCallback callback, gpointer user_data)
{
  KvTestSlowStorage *self = KV_TEST_SLOW_STORAGE (storage);
  GTask *task;
  Pending *pending;

  if (!is_slow (key))
    {
      inner_iface->get_async (storage, key, cancellable, callback, user_data);
      return;
    }

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, slow_get_async);
  pending = g_new0 (Pending, 1);
  pending->self = self;
  pending->key = g_strdup (key);
  g_task_set_task_data (task, pending, pending_free);
  delay (self, task);
}

static KvEntry *
slow_get_finish (KvStorage *storage, GAsyncResult *result, gint64 *expires_at, GError **error)
{
  if (!g_async_result_is_tagged (result, slow_get_async))
    return inner_iface->get_finish (storage, result, expires_at, error);
  *expires_at = 0;
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
slow_apply_async (KvStorage *storage, KvTxn *txn, GCancellable *cancellable,
                  GAsyncReadyCallback callback, gpointer user_data)
{
  KvTestSlowStorage *self = KV_TEST_SLOW_STORAGE (storage);
  GTask *task;
  Pending *pending;

  if (!is_slow (kv_txn_get_op (txn, 0)->key))
    {
      inner_iface->apply_async (storage, txn, cancellable, callback, user_data);
      return;
    }

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, slow_apply_async);
  pending = g_new0 (Pending, 1);
  pending->self = self;
  pending->txn = kv_txn_ref (txn);
  g_task_set_task_data (task, pending, pending_free);
  delay (self, task);
}

static KvTxnResult *
slow_apply_finish (KvStorage *storage, GAsyncResult *result, guint *failed_op, GError **error)
{
  /* The calls that were not slow are the default's. */
  if (!g_async_result_is_tagged (result, slow_apply_async))
    return inner_iface->apply_finish (storage, result, failed_op, error);
  *failed_op = 0;
  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct
{
  KvTestSlowStorage *self;
  GMainContext *context;        /* (owned) (nullable) */
  KvSubscribeOptions options;   /* its strings owned */
  KvChangeFunc func;
  gpointer user_data;
  GDestroyNotify notify;
  guint id;
  KvHistoryInfo info;
} Subscribing;

static void
subscribing_free (gpointer data)
{
  Subscribing *s = data;

  g_clear_pointer (&s->context, g_main_context_unref);
  g_free ((char *) s->options.key);
  g_free ((char *) s->options.prefix);
  g_free (s);
}

static gboolean
on_subscribe_delay_over (gpointer data)
{
  GTask *task = data;
  Subscribing *s = g_task_get_task_data (task);
  GError *error = NULL;

  g_atomic_int_dec_and_test (&s->self->n_pending);
  s->id = kv_storage_subscribe (s->self->inner, s->context, &s->options, s->func, s->user_data,
                                s->notify, &s->info, &error);
  if (s->id == 0)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
  return G_SOURCE_REMOVE;
}

/* Subscriptions to a slow key or prefix are made after the delay. */
static void
slow_subscribe_async (KvStorage *storage, GMainContext *context,
                      const KvSubscribeOptions *options, KvChangeFunc func, gpointer user_data,
                      GDestroyNotify notify, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer callback_data)
{
  KvTestSlowStorage *self = KV_TEST_SLOW_STORAGE (storage);
  const char *what = options == NULL ? NULL : options->key != NULL ? options->key : options->prefix;
  Subscribing *s;
  GTask *task;
  GSource *source;

  if (what == NULL || !is_slow (what))
    {
      inner_iface->subscribe_async (storage, context, options, func, user_data, notify,
                                    cancellable, callback, callback_data);
      return;
    }

  task = g_task_new (self, cancellable, callback, callback_data);
  g_task_set_source_tag (task, slow_subscribe_async);
  s = g_new0 (Subscribing, 1);
  s->self = self;
  s->context = context != NULL ? g_main_context_ref (context) : NULL;
  s->options = *options;
  s->options.key = g_strdup (options->key);
  s->options.prefix = g_strdup (options->prefix);
  s->func = func;
  s->user_data = user_data;
  s->notify = notify;
  g_task_set_task_data (task, s, subscribing_free);

  g_atomic_int_inc (&self->n_pending);
  source = g_timeout_source_new (self->delay_ms);
  g_source_set_callback (source, on_subscribe_delay_over, task, g_object_unref);
  g_source_attach (source, g_task_get_context (task));
  g_source_unref (source);
}

static guint
slow_subscribe_finish (KvStorage *storage, GAsyncResult *result, KvHistoryInfo *info,
                       GError **error)
{
  Subscribing *s;

  if (!g_async_result_is_tagged (result, slow_subscribe_async))
    return inner_iface->subscribe_finish (storage, result, info, error);
  s = g_task_get_task_data (G_TASK (result));
  *info = s->info;
  if (!g_task_propagate_boolean (G_TASK (result), error))
    return 0;
  return s->id;
}

static KvDump *
slow_dump (KvStorage *self)
{
  return kv_storage_dump (INNER (self));
}

static void
kv_test_slow_storage_iface_init (KvStorageInterface *iface)
{
  /* The defaults, for the calls that are not slow. */
  inner_iface = g_new0 (KvStorageInterface, 1);
  *inner_iface = *iface;

  iface->get = slow_get;
  iface->apply = slow_apply;
  iface->list = slow_list;
  iface->count = slow_count;
  iface->get_info = slow_get_info;
  iface->subscribe = slow_subscribe;
  iface->unsubscribe = slow_unsubscribe;
  iface->dump = slow_dump;
  iface->get_async = slow_get_async;
  iface->get_finish = slow_get_finish;
  iface->apply_async = slow_apply_async;
  iface->apply_finish = slow_apply_finish;
  iface->subscribe_async = slow_subscribe_async;
  iface->subscribe_finish = slow_subscribe_finish;
}

static void
kv_test_slow_storage_finalize (GObject *object)
{
  g_clear_object (&KV_TEST_SLOW_STORAGE (object)->inner);

  G_OBJECT_CLASS (kv_test_slow_storage_parent_class)->finalize (object);
}

static void
kv_test_slow_storage_class_init (KvTestSlowStorageClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = kv_test_slow_storage_finalize;
}

static void
kv_test_slow_storage_init (KvTestSlowStorage *self)
{
  self->inner = KV_STORAGE (kv_map_storage_new ());
}

KvTestSlowStorage *
kv_test_slow_storage_new (guint delay_ms)
{
  KvTestSlowStorage *self = g_object_new (KV_TYPE_TEST_SLOW_STORAGE, NULL);

  self->delay_ms = delay_ms;
  return self;
}

guint
kv_test_slow_storage_get_n_cancelled (KvTestSlowStorage *self)
{
  return g_atomic_int_get (&self->n_cancelled);
}

guint
kv_test_slow_storage_get_n_pending (KvTestSlowStorage *self)
{
  return g_atomic_int_get (&self->n_pending);
}
