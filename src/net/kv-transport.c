/* kv-transport.c: the connections one server serves in one thread
 *
 * SPDX-License-Identifier: MIT
 *
 * A KvTransport makes a KvConnection of each socket its server accepts,
 * sweeps their request deadlines, and keeps the refusals (answers written
 * on the raw socket, and lingering closes) running until they are done.
 * Everything happens in the thread-default main context it was made in.
 */
#include "config.h"

#include "kv-refusal.h"
#include "kv-transport-private.h"

/* How often request deadlines are checked: a timer per request would cost
 * more than the request itself. */
#define SWEEP_MS 250
/* How much of a refused request we read and throw away before closing,
 * past the largest body: enough for a client that writes its whole body
 * before it reads (libsoup's own client does) to get its answer. */
#define DRAIN_EXTRA (1024 * 1024)

struct _KvTransport
{
  GObject parent_instance;

  KvTransportLimits limits;
  KvRefusalBuilder build_refusal;
  GMainContext *context;        /* (owned) */
  GQueue connections;           /* (element-type KvConnection) (unowned) */
  GHashTable *refusals;         /* (element-type KvRefusal) (owned) running */
  GSource *sweeper;             /* (owned) (nullable) while there are connections */
  GTask *flush_task;            /* (owned) (nullable) */
  GSource *flush_cancelled;     /* (owned) (nullable) */
};

G_DEFINE_FINAL_TYPE (KvTransport, kv_transport, G_TYPE_OBJECT)

static void complete_flush (KvTransport *self);

static void
kv_transport_dispose (GObject *object)
{
  KvTransport *self = KV_TRANSPORT (object);

  /* Nothing may be left on the main context once we are gone. */
  if (self->refusals != NULL)
    {
      g_autoptr(GHashTable) refusals = g_steal_pointer (&self->refusals);

      kv_refusal_close_all (refusals);
    }
  complete_flush (self);
  if (self->sweeper != NULL)
    {
      g_source_destroy (self->sweeper);
      g_clear_pointer (&self->sweeper, g_source_unref);
    }

  G_OBJECT_CLASS (kv_transport_parent_class)->dispose (object);
}

static void
kv_transport_finalize (GObject *object)
{
  KvTransport *self = KV_TRANSPORT (object);

  g_main_context_unref (self->context);

  G_OBJECT_CLASS (kv_transport_parent_class)->finalize (object);
}

static void
kv_transport_class_init (KvTransportClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kv_transport_dispose;
  object_class->finalize = kv_transport_finalize;
}

static void
kv_transport_init (KvTransport *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->refusals = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  g_queue_init (&self->connections);
}

/**
 * kv_transport_new:
 * @limits: the limits of every connection
 * @build_refusal: makes the answers the transport writes by itself
 *
 * Creates a transport whose timers run in the thread-default main context
 * of the caller, which must be the one its SoupServer runs in.
 *
 * Returns: (transfer full): a new transport
 */
KvTransport *
kv_transport_new (const KvTransportLimits *limits,
                  KvRefusalBuilder         build_refusal)
{
  KvTransport *self;

  g_return_val_if_fail (limits != NULL, NULL);
  g_return_val_if_fail (build_refusal != NULL, NULL);

  self = g_object_new (KV_TYPE_TRANSPORT, NULL);
  self->limits = *limits;
  self->build_refusal = build_refusal;

  return self;
}

/**
 * kv_transport_set_limits:
 * @self: a #KvTransport
 * @limits: new limits
 *
 * Applies @limits from the next request on; a request being read keeps
 * the deadline it started with.
 */
void
kv_transport_set_limits (KvTransport             *self,
                         const KvTransportLimits *limits)
{
  g_return_if_fail (KV_IS_TRANSPORT (self));
  g_return_if_fail (limits != NULL);

  self->limits = *limits;
}

/**
 * kv_transport_add:
 * @self: a #KvTransport
 * @socket: a newly accepted connection whose peer may talk to us
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the connection to hand to libsoup,
 *   or %NULL if @socket is unusable
 */
KvConnection *
kv_transport_add (KvTransport  *self,
                  GSocket      *socket,
                  GError      **error)
{
  GList *link;
  KvConnection *connection;

  g_return_val_if_fail (KV_IS_TRANSPORT (self), NULL);
  g_return_val_if_fail (G_IS_SOCKET (socket), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  link = g_list_alloc ();
  g_queue_push_tail_link (&self->connections, link);
  connection = kv_connection_new (self, socket, link, error);

  return connection;
}

/**
 * kv_transport_close_idle:
 * @self: a #KvTransport
 *
 * Closes every connection that is between two requests, for a stop;
 * connections with a request in flight close after their answer.
 */
void
kv_transport_close_idle (KvTransport *self)
{
  g_autoptr(GPtrArray) connections = g_ptr_array_new_with_free_func (g_object_unref);

  g_return_if_fail (KV_IS_TRANSPORT (self));

  /* Closing one connection may free it: hold them all meanwhile. */
  for (GList *l = self->connections.head; l != NULL; l = l->next)
    g_ptr_array_add (connections, g_object_ref (l->data));
  for (guint i = 0; i < connections->len; i++)
    kv_connection_close_if_idle (g_ptr_array_index (connections, i));
}

static void
complete_flush (KvTransport *self)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->flush_task);

  if (task == NULL)
    return;
  if (self->flush_cancelled != NULL)
    {
      g_source_destroy (self->flush_cancelled);
      g_clear_pointer (&self->flush_cancelled, g_source_unref);
    }
  if (!g_task_return_error_if_cancelled (task))
    g_task_return_boolean (task, TRUE);
}

static gboolean
on_flush_cancelled (GCancellable *cancellable,
                    gpointer      data)
{
  complete_flush (data);
  return G_SOURCE_REMOVE;
}

/**
 * kv_transport_flush_async:
 * @self: a #KvTransport
 * @cancellable: (nullable): cancel to stop waiting
 * @callback: called once no connection is being closed any more
 * @user_data: data for @callback
 *
 * Waits until every answer written by the transport has been sent and
 * every connection it closes is closed: each takes a second at most.
 */
void
kv_transport_flush_async (KvTransport         *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (KV_IS_TRANSPORT (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kv_transport_flush_async);

  if (self->flush_task != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING, "Already flushing");
      return;
    }
  if (self->refusals == NULL || g_hash_table_size (self->refusals) == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  self->flush_task = g_steal_pointer (&task);
  if (cancellable != NULL)
    {
      self->flush_cancelled = g_cancellable_source_new (cancellable);
      g_source_set_callback (self->flush_cancelled, G_SOURCE_FUNC (on_flush_cancelled), self,
                             NULL);
      g_source_attach (self->flush_cancelled, self->context);
    }
}

/**
 * kv_transport_flush_finish:
 * @self: a #KvTransport
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE once flushed; %FALSE with %G_IO_ERROR_CANCELLED when the
 *   wait was cut short
 */
gboolean
kv_transport_flush_finish (KvTransport   *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- For KvConnection and KvSocketStream ---- */

const KvTransportLimits *
kv_transport_get_limits (KvTransport *self)
{
  return &self->limits;
}

GMainContext *
kv_transport_get_context (KvTransport *self)
{
  return self->context;
}

GBytes *
kv_transport_build_refusal (KvTransport        *self,
                            guint               status,
                            const char         *text,
                            const char         *extra_header,
                            SoupMessageHeaders *request_headers,
                            gboolean            head)
{
  return self->build_refusal (status, text, extra_header, request_headers, head);
}

/* The refusal may end after we are gone: we are held weakly. */
static void
on_refusal_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      data)
{
  GWeakRef *weak = data;
  g_autoptr(KvTransport) self = g_weak_ref_get (weak);

  kv_refusal_run_finish (KV_REFUSAL (source), result, NULL);
  if (self != NULL && self->refusals != NULL)
    {
      g_hash_table_remove (self->refusals, source);
      if (g_hash_table_size (self->refusals) == 0)
        complete_flush (self);
    }
  g_weak_ref_clear (weak);
  g_free (weak);
}

/* Sends @response (if any) on @socket, then shuts down, drains and
 * closes; @stream, when libsoup gave one back, is closed with it. */
void
kv_transport_close_socket (KvTransport *self,
                           GSocket     *socket,
                           GIOStream   *stream,
                           GBytes      *response)
{
  KvRefusal *refusal;
  GWeakRef *weak;

  if (self->refusals == NULL)
    {
      /* Disposed: close at once. */
      if (stream != NULL)
        g_io_stream_close (stream, NULL, NULL);
      g_socket_close (socket, NULL);
      return;
    }

  refusal = kv_refusal_new (socket, stream, response,
                            self->limits.max_body_size + DRAIN_EXTRA);
  g_hash_table_add (self->refusals, refusal);
  weak = g_new0 (GWeakRef, 1);
  g_weak_ref_init (weak, self);
  kv_refusal_run_async (refusal, on_refusal_done, weak);
}

static gboolean
on_sweep (gpointer data)
{
  KvTransport *self = data;
  g_autoptr(GPtrArray) connections = g_ptr_array_new_with_free_func (g_object_unref);
  gint64 now = g_get_monotonic_time ();

  if (g_queue_is_empty (&self->connections))
    {
      g_clear_pointer (&self->sweeper, g_source_unref);
      return G_SOURCE_REMOVE;
    }

  /* Refusing one connection may free it: hold them all meanwhile. */
  for (GList *l = self->connections.head; l != NULL; l = l->next)
    g_ptr_array_add (connections, g_object_ref (l->data));
  for (guint i = 0; i < connections->len; i++)
    {
      KvConnection *connection = g_ptr_array_index (connections, i);

      if (!kv_connection_check_deadline (connection, now))
        {
          kv_connection_check_call (connection, now);
          kv_connection_check_stream (connection);
        }
    }

  return G_SOURCE_CONTINUE;
}

void
kv_transport_watch_deadline (KvTransport *self)
{
  if (self->sweeper != NULL || self->refusals == NULL)
    return;

  self->sweeper = g_timeout_source_new (SWEEP_MS);
  g_source_set_callback (self->sweeper, on_sweep, self, NULL);
  g_source_attach (self->sweeper, self->context);
}

void
kv_transport_forget (KvTransport *self,
                     GList       *link)
{
  g_queue_delete_link (&self->connections, link);
}
