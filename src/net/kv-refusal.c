/* kv-refusal.c: an answer written on the raw socket, then a clean close
 *
 * SPDX-License-Identifier: MIT
 *
 * A connection that crafty-kv ends by itself — a request refused before
 * its body was read, a peer turned away before libsoup saw a byte, a
 * connection closed while the client's next request is already on its
 * way — must not be reset: closing a socket with unread input makes the
 * kernel send RST, and a client that gets RST may lose the answer it has
 * not read yet. So a refusal sends its answer (if any), shuts down our
 * sending side so that the client sees the answer end, reads and throws
 * away what the client still sends, up to a limit and for at most
 * LINGER_MS, and only then closes.
 */
#include "config.h"

#include "kv-refusal.h"

/* How long a refused client has to read its answer before we close. */
#define LINGER_MS 1000
#define DRAIN_BLOCK (16 * 1024)

struct _KvRefusal
{
  GObject parent_instance;

  GSocket *socket;              /* (owned) */
  GIOStream *stream;            /* (owned) (nullable) what libsoup gave back */
  GBytes *response;             /* (owned) (nullable) */
  guint64 drain_limit;
  gsize written;
  guint64 drained;
  gboolean shut_down;
  gboolean closed;
  GMainContext *context;        /* (owned) */
  GSource *io;                  /* (owned) (nullable) */
  GSource *deadline;            /* (owned) (nullable) */
  GTask *task;                  /* (owned) (nullable) while running */
};

G_DEFINE_FINAL_TYPE (KvRefusal, kv_refusal, G_TYPE_OBJECT)

static void step (KvRefusal *self);

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
kv_refusal_dispose (GObject *object)
{
  kv_refusal_close (KV_REFUSAL (object));

  G_OBJECT_CLASS (kv_refusal_parent_class)->dispose (object);
}

static void
kv_refusal_finalize (GObject *object)
{
  KvRefusal *self = KV_REFUSAL (object);

  g_clear_object (&self->stream);
  g_clear_object (&self->socket);
  g_clear_pointer (&self->response, g_bytes_unref);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (kv_refusal_parent_class)->finalize (object);
}

static void
kv_refusal_class_init (KvRefusalClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kv_refusal_dispose;
  object_class->finalize = kv_refusal_finalize;
}

static void
kv_refusal_init (KvRefusal *self)
{
  self->context = g_main_context_ref_thread_default ();
}

/**
 * kv_refusal_new:
 * @socket: the connection
 * @stream: (nullable): the stream libsoup gave back when the connection
 *   was taken from it; closed with @socket
 * @response: (nullable): a whole HTTP answer to send first, or %NULL
 * @drain_limit: how much of what the client still sends to read and
 *   throw away before closing
 *
 * Returns: (transfer full): a refusal that does nothing until run
 */
KvRefusal *
kv_refusal_new (GSocket   *socket,
                GIOStream *stream,
                GBytes    *response,
                guint64    drain_limit)
{
  KvRefusal *self;

  g_return_val_if_fail (G_IS_SOCKET (socket), NULL);
  g_return_val_if_fail (stream == NULL || G_IS_IO_STREAM (stream), NULL);

  self = g_object_new (KV_TYPE_REFUSAL, NULL);
  self->socket = g_object_ref (socket);
  self->stream = stream != NULL ? g_object_ref (stream) : NULL;
  self->response = response != NULL ? g_bytes_ref (response) : NULL;
  self->drain_limit = drain_limit;

  return self;
}

/**
 * kv_refusal_close:
 * @self: a #KvRefusal
 *
 * Closes the connection now, whatever is left to send or drain, and
 * completes a run in progress.
 */
void
kv_refusal_close (KvRefusal *self)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (KV_IS_REFUSAL (self));

  if (self->closed)
    return;
  self->closed = TRUE;

  clear_source (&self->io);
  clear_source (&self->deadline);

  /* The socket first: libsoup's stream, closed after, then has nothing
   * left to close gently. */
  g_socket_close (self->socket, NULL);
  if (self->stream != NULL)
    g_io_stream_close (self->stream, NULL, NULL);

  task = g_steal_pointer (&self->task);
  if (task != NULL)
    g_task_return_boolean (task, TRUE);
}

static gboolean
on_deadline (gpointer data)
{
  KvRefusal *self = data;

  g_clear_pointer (&self->deadline, g_source_unref);
  kv_refusal_close (self);

  return G_SOURCE_REMOVE;
}

static gboolean
on_ready (GSocket      *socket,
          GIOCondition  condition,
          gpointer      data)
{
  KvRefusal *self = data;

  g_clear_pointer (&self->io, g_source_unref);
  step (self);

  return G_SOURCE_REMOVE;
}

static void
wait_for (KvRefusal    *self,
          GIOCondition  condition)
{
  self->io = g_socket_create_source (self->socket, condition, NULL);
  g_source_set_callback (self->io, G_SOURCE_FUNC (on_ready), self, NULL);
  g_source_attach (self->io, self->context);
}

static void
step (KvRefusal *self)
{
  gsize len = 0;
  const char *data = self->response != NULL ? g_bytes_get_data (self->response, &len) : NULL;
  char buffer[DRAIN_BLOCK];

  while (self->written < len)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send_with_blocking (self->socket, data + self->written,
                                              len - self->written, FALSE, NULL, &error);
      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            wait_for (self, G_IO_OUT);
          else
            kv_refusal_close (self);
          return;
        }
      self->written += n;
    }

  if (!self->shut_down)
    {
      /* The client sees the end of our answer. */
      g_socket_shutdown (self->socket, FALSE, TRUE, NULL);
      self->shut_down = TRUE;
    }

  while (self->drained < self->drain_limit)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive_with_blocking (self->socket, buffer, sizeof buffer,
                                                 FALSE, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          wait_for (self, G_IO_IN);
          return;
        }
      if (n <= 0)
        break;
      self->drained += n;
    }

  kv_refusal_close (self);
}

/**
 * kv_refusal_run_async:
 * @self: a #KvRefusal
 * @callback: called once the connection is closed
 * @user_data: data for @callback
 *
 * Sends the answer, shuts down, drains and closes, in the thread-default
 * main context @self was created in; within about a second whatever the
 * client does.
 */
void
kv_refusal_run_async (KvRefusal           *self,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_return_if_fail (KV_IS_REFUSAL (self));
  g_return_if_fail (self->task == NULL && !self->closed);

  self->task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (self->task, kv_refusal_run_async);

  self->deadline = g_timeout_source_new (LINGER_MS);
  g_source_set_callback (self->deadline, on_deadline, self, NULL);
  g_source_attach (self->deadline, self->context);

  step (self);
}

/**
 * kv_refusal_run_finish:
 * @self: a #KvRefusal
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE; the connection is closed
 */
gboolean
kv_refusal_run_finish (KvRefusal     *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * kv_refusal_close_all:
 * @refusals: (element-type KvRefusal): a set of running refusals, which
 *   owns them
 *
 * Closes every refusal in @refusals and empties it: for an owner that is
 * going away and may leave nothing on its main context.
 */
void
kv_refusal_close_all (GHashTable *refusals)
{
  g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer refusal;

  g_hash_table_iter_init (&iter, refusals);
  while (g_hash_table_iter_next (&iter, &refusal, NULL))
    g_ptr_array_add (all, g_object_ref (refusal));
  g_hash_table_remove_all (refusals);

  for (guint i = 0; i < all->len; i++)
    kv_refusal_close (g_ptr_array_index (all, i));
}
