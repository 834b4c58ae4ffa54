/* kv-worker.c: a KvServer in a thread of its own
 *
 * SPDX-License-Identifier: MIT
 *
 * libsoup's per-request cost bounds what one thread can serve, so the
 * daemon runs one SoupServer per core: each worker has a thread, a
 * GMainContext and a KvServer of its own, all sharing one KvStorage (whose
 * readers never block each other) and one KvStats. The listener in the main
 * thread hands connections to the workers in turn.
 *
 * Everything a worker's server does happens in the worker's thread: it is
 * created, fed connections, stopped and finalized there.
 */
#include "config.h"

#include "kv-worker.h"

struct _KvWorker
{
  GObject parent_instance;

  KvStorage *storage;   /* (owned) */
  KvStats *stats;       /* (owned) */
  KvLimits limits;      /* for the server to start with */
  KvAccessPolicy *policy; /* (owned) likewise */

  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  KvServer *server;     /* (owned): touched only in the worker's thread */

  GMutex lock;
  GCond cond;
  gboolean ready;
  guint n_connections;  /* (atomic) */
  guint abandoned;      /* set when the server stops */
  GError *stop_error;   /* (owned) (nullable): likewise */

  /* The server's stop is cancelled in the worker's thread, never in the
   * caller's: a GCancellableSource disposed in one thread while another is
   * still in g_cancellable_cancel() leaks (GLib before 2.84,
   * GNOME/glib#3448). */
  GCancellable *stop_cancellable;  /* (owned): the server's */
  gulong stop_cancelled_id;        /* on the caller's cancellable */
};

G_DEFINE_FINAL_TYPE (KvWorker, kv_worker, G_TYPE_OBJECT)

static gpointer
worker_thread (gpointer data)
{
  KvWorker *self = data;

  g_main_context_push_thread_default (self->context);

  self->server = kv_server_new (self->storage, self->stats, &self->limits, self->policy);

  g_mutex_lock (&self->lock);
  self->ready = TRUE;
  g_cond_signal (&self->cond);
  g_mutex_unlock (&self->lock);

  g_main_loop_run (self->loop);

  /* What is ready runs while the server is still there: libsoup 3.2.3
   * leaves an unpaused message's idle behind when its connection goes, and
   * it would run on freed memory after. */
  while (g_main_context_iteration (self->context, FALSE))
    ;
  g_clear_object (&self->server);
  /* Let what the server left behind (closing connections) run down. */
  while (g_main_context_iteration (self->context, FALSE))
    ;

  g_main_context_pop_thread_default (self->context);
  return NULL;
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
kv_worker_finalize (GObject *object)
{
  KvWorker *self = KV_WORKER (object);

  g_main_context_invoke (self->context, quit_loop, self->loop);
  g_thread_join (self->thread);

  g_main_loop_unref (self->loop);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_clear_object (&self->storage);
  g_clear_object (&self->policy);
  g_clear_object (&self->stats);
  g_clear_error (&self->stop_error);
  g_clear_object (&self->stop_cancellable);

  G_OBJECT_CLASS (kv_worker_parent_class)->finalize (object);
}

static void
kv_worker_class_init (KvWorkerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kv_worker_finalize;
}

static void
kv_worker_init (KvWorker *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->stop_cancellable = g_cancellable_new ();
}

/**
 * kv_worker_new:
 * @storage: the store, shared with every other worker
 * @stats: the counters, shared with every other worker
 * @limits: the limits of every request
 * @policy: (nullable): who may ask, as for kv_server_new()
 *
 * Starts a thread running a #KvServer, and returns once the server exists.
 *
 * Returns: (transfer full): the worker
 */
KvWorker *
kv_worker_new (KvStorage      *storage,
               KvStats        *stats,
               const KvLimits *limits,
               KvAccessPolicy *policy)
{
  KvWorker *self;

  g_return_val_if_fail (KV_IS_STORAGE (storage), NULL);
  g_return_val_if_fail (KV_IS_STATS (stats), NULL);
  g_return_val_if_fail (limits != NULL, NULL);
  g_return_val_if_fail (policy == NULL || KV_IS_ACCESS_POLICY (policy), NULL);

  self = g_object_new (KV_TYPE_WORKER, NULL);
  self->storage = g_object_ref (storage);
  self->stats = g_object_ref (stats);
  self->limits = *limits;
  self->policy = policy != NULL ? g_object_ref (policy) : NULL;
  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
  self->thread = g_thread_new ("kv-worker", worker_thread, self);

  g_mutex_lock (&self->lock);
  while (!self->ready)
    g_cond_wait (&self->cond, &self->lock);
  g_mutex_unlock (&self->lock);

  return self;
}

/* Runs in the worker's thread, for each connection the listener hands us. */
static void
on_connection (GSocket  *socket,
               gpointer  user_data)
{
  KvWorker *self = user_data;
  g_autoptr(GError) error = NULL;

  g_atomic_int_inc (&self->n_connections);
  if (self->server == NULL ||
      !kv_server_accept_connection (self->server, socket, &error))
    g_debug ("Dropping a connection: %s", error != NULL ? error->message : "stopping");
}

/**
 * kv_worker_attach:
 * @self: a #KvWorker
 * @listener: the listener to take connections from
 *
 * Makes @self one of the targets @listener hands connections to. The
 * listener must be closed before @self is finalized.
 */
void
kv_worker_attach (KvWorker   *self,
                  KvListener *listener)
{
  g_return_if_fail (KV_IS_WORKER (self));
  g_return_if_fail (KV_IS_LISTENER (listener));

  kv_listener_add_target (listener, self->context, on_connection, self, NULL);
}

typedef struct
{
  /* (unowned): finalizing the worker runs the thread's pending sources,
   * this one included, before the thread ends; and a reference dropped
   * in the worker's thread could not join it. */
  KvWorker *worker;
  KvLimits limits;
  KvAccessPolicy *policy;       /* (owned) (nullable) */
} Settings;

static void
settings_free (gpointer data)
{
  Settings *settings = data;

  g_clear_object (&settings->policy);
  g_free (settings);
}

/* Runs in the worker's thread. */
static gboolean
apply_settings (gpointer data)
{
  Settings *settings = data;
  KvServer *server = settings->worker->server;

  if (server != NULL)
    {
      kv_server_set_limits (server, &settings->limits);
      if (settings->policy != NULL)
        kv_server_set_policy (server, settings->policy);
    }
  return G_SOURCE_REMOVE;
}

/**
 * kv_worker_reconfigure:
 * @self: a #KvWorker
 * @limits: new limits
 * @policy: (nullable): a new policy, or %NULL to keep the one in force
 *
 * Hands new settings to the worker's server, which applies them in its
 * own thread from its next request on.
 */
void
kv_worker_reconfigure (KvWorker       *self,
                       const KvLimits *limits,
                       KvAccessPolicy *policy)
{
  Settings *settings;

  g_return_if_fail (KV_IS_WORKER (self));
  g_return_if_fail (limits != NULL);

  settings = g_new0 (Settings, 1);
  settings->worker = self;
  settings->limits = *limits;
  settings->policy = policy != NULL ? g_object_ref (policy) : NULL;
  g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, apply_settings, settings,
                              settings_free);
}

/**
 * kv_worker_get_n_connections:
 *
 * Returns: how many connections the listener handed to this worker
 */
guint
kv_worker_get_n_connections (KvWorker *self)
{
  g_return_val_if_fail (KV_IS_WORKER (self), 0);

  return g_atomic_int_get (&self->n_connections);
}

/**
 * kv_worker_get_n_requests_in_flight:
 *
 * Returns: how many requests the worker's server is reading or answering
 */
guint
kv_worker_get_n_requests_in_flight (KvWorker *self)
{
  g_return_val_if_fail (KV_IS_WORKER (self), 0);

  /* The server exists from kv_worker_new() until the thread ends. */
  return self->server != NULL ? kv_server_get_n_requests_in_flight (self->server) : 0;
}

/**
 * kv_worker_get_n_requests_abandoned:
 *
 * Returns: how many requests were still in flight when a stop was cut
 *   short; known once kv_worker_stop_async() has finished
 */
guint
kv_worker_get_n_requests_abandoned (KvWorker *self)
{
  g_return_val_if_fail (KV_IS_WORKER (self), 0);

  return self->abandoned;
}

/* Runs in the caller's main context. */
static gboolean
return_stop (gpointer data)
{
  g_autoptr(GTask) task = data;
  KvWorker *self = g_task_get_source_object (task);

  g_cancellable_disconnect (g_task_get_cancellable (task), self->stop_cancelled_id);
  self->stop_cancelled_id = 0;

  if (self->stop_error != NULL)
    g_task_return_error (task, g_steal_pointer (&self->stop_error));
  else
    g_task_return_boolean (task, TRUE);

  return G_SOURCE_REMOVE;
}

/* Runs in the worker's thread. */
static void
on_server_stopped (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;
  KvWorker *self = g_task_get_source_object (task);

  if (!kv_server_stop_finish (KV_SERVER (source), result, &self->stop_error))
    self->abandoned = kv_server_get_n_requests_in_flight (KV_SERVER (source));

  /* The task, and its reference to the worker, are let go of in the
   * caller's thread: were the worker's last reference dropped here,
   * finalize would have to join the very thread it runs in. */
  g_main_context_invoke (g_task_get_context (task), return_stop, task);
}

static gboolean
start_stop (gpointer user_data)
{
  GTask *task = user_data;
  KvWorker *self = g_task_get_source_object (task);

  kv_server_stop_async (self->server, self->stop_cancellable, on_server_stopped, task);

  return G_SOURCE_REMOVE;
}

/* Runs in the worker's thread. */
static gboolean
cancel_stop (gpointer user_data)
{
  KvWorker *self = user_data;

  g_cancellable_cancel (self->stop_cancellable);

  return G_SOURCE_REMOVE;
}

/* Runs in whichever thread cancels the caller's cancellable. */
static void
on_stop_cancel_requested (GCancellable *cancellable,
                          gpointer      user_data)
{
  KvWorker *self = user_data;

  /* Always queued: the worker's loop owns its context. */
  g_main_context_invoke (self->context, cancel_stop, self);
}

/**
 * kv_worker_stop_async:
 * @self: a #KvWorker
 * @cancellable: (nullable): cancel to stop waiting for requests in flight
 * @callback: called, in the caller's main context, once the server stopped
 * @user_data: data for @callback
 *
 * Stops the worker's server as kv_server_stop_async() does, in the
 * worker's thread.
 */
void
kv_worker_stop_async (KvWorker            *self,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (KV_IS_WORKER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kv_worker_stop_async);
  g_main_context_invoke (self->context, start_stop, task);
  /* Runs on_stop_cancel_requested() at once if it is cancelled already. */
  if (cancellable != NULL)
    self->stop_cancelled_id = g_cancellable_connect (cancellable,
                                                     G_CALLBACK (on_stop_cancel_requested),
                                                     self, NULL);
}

gboolean
kv_worker_stop_finish (KvWorker      *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
