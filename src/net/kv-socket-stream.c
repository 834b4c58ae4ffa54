/* kv-socket-stream.c: a socket's streams, with its requests read through a
 * KvRequestFilter
 *
 * SPDX-License-Identifier: MIT
 *
 * What libsoup is given for a connection: reads come from a filter over
 * the socket, writes go to the socket, and closing closes the socket, as
 * closing a GSocketConnection does. (GSimpleIOStream leaves the socket
 * open; GTcpWrapperConnection takes no Unix socket.)
 *
 * When libsoup closes a connection that the client may still be writing
 * to (a pipelined request after a "Connection: close" answer), the close
 * must not reset it: a reset can destroy the answer before the client
 * reads it. So the transport gets a duplicate of the socket to shut down,
 * drain and close gently, while libsoup's side is closed as usual.
 */
#include "config.h"

#include <unistd.h>

#include "kv-socket-stream.h"
#include "kv-transport-private.h"

struct _KvSocketStream
{
  GIOStream parent_instance;

  GSocketConnection *connection;  /* (owned) */
  GInputStream *input_stream;     /* (owned) */
  GWeakRef transport;             /* KvTransport, which lingers on closes */
};

G_DEFINE_FINAL_TYPE (KvSocketStream, kv_socket_stream, G_TYPE_IO_STREAM)

static GInputStream *
kv_socket_stream_get_input_stream (GIOStream *stream)
{
  return KV_SOCKET_STREAM (stream)->input_stream;
}

static GOutputStream *
kv_socket_stream_get_output_stream (GIOStream *stream)
{
  return g_io_stream_get_output_stream (G_IO_STREAM (KV_SOCKET_STREAM (stream)->connection));
}

static gboolean
kv_socket_stream_close (GIOStream     *stream,
                        GCancellable  *cancellable,
                        GError       **error)
{
  KvSocketStream *self = KV_SOCKET_STREAM (stream);
  GSocket *socket = g_socket_connection_get_socket (self->connection);
  g_autoptr(KvTransport) transport = g_weak_ref_get (&self->transport);

  g_input_stream_close (self->input_stream, cancellable, NULL);
  if (transport != NULL && !g_socket_is_closed (socket))
    {
      int fd = dup (g_socket_get_fd (socket));
      g_autoptr(GSocket) twin = fd >= 0 ? g_socket_new_from_fd (fd, NULL) : NULL;

      if (twin != NULL)
        kv_transport_close_socket (transport, twin, NULL, NULL);
      else if (fd >= 0)
        close (fd);
    }
  return g_io_stream_close (G_IO_STREAM (self->connection), cancellable, error);
}

static void
kv_socket_stream_finalize (GObject *object)
{
  KvSocketStream *self = KV_SOCKET_STREAM (object);

  g_object_unref (self->input_stream);
  g_object_unref (self->connection);
  g_weak_ref_clear (&self->transport);

  G_OBJECT_CLASS (kv_socket_stream_parent_class)->finalize (object);
}

static void
kv_socket_stream_class_init (KvSocketStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->finalize = kv_socket_stream_finalize;
  stream_class->get_input_stream = kv_socket_stream_get_input_stream;
  stream_class->get_output_stream = kv_socket_stream_get_output_stream;
  stream_class->close_fn = kv_socket_stream_close;
}

static void
kv_socket_stream_init (KvSocketStream *self)
{
}

/**
 * kv_socket_stream_new:
 * @connection: a connection
 * @input_stream: what to read instead of @connection's input stream,
 *   usually a filter over it
 * @transport: (nullable): the transport that closes connections gently
 *
 * Returns: (transfer full): a stream that reads @input_stream, writes to
 *   @connection and closes @connection when closed
 */
KvSocketStream *
kv_socket_stream_new (GSocketConnection *connection,
                      GInputStream      *input_stream,
                      KvTransport       *transport)
{
  KvSocketStream *self;

  g_return_val_if_fail (G_IS_SOCKET_CONNECTION (connection), NULL);
  g_return_val_if_fail (G_IS_INPUT_STREAM (input_stream), NULL);

  self = g_object_new (KV_TYPE_SOCKET_STREAM, NULL);
  self->connection = g_object_ref (connection);
  self->input_stream = g_object_ref (input_stream);
  g_weak_ref_init (&self->transport, transport);

  return self;
}
