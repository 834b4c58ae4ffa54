/* kv-connection.c: one client connection, as the transport keeps it
 *
 * SPDX-License-Identifier: MIT
 *
 * What libsoup is handed for each accepted socket, and what crafty-kv
 * keeps about it: the deadline of the request being read, the body bytes
 * counted so far, the strict framing filter every byte goes through, and
 * the libsoup 3.2 workarounds below. A connection rides on the remote
 * address given to libsoup, the only object of ours a SoupServerMessage
 * gives back, which lives exactly as long as libsoup's connection.
 *
 * A request refused before its body is read is taken away from libsoup
 * (soup_server_message_steal_connection()) and answered by a KvRefusal:
 * that is the only way with libsoup 3.2 not to read the body when the
 * client did not send "Expect: 100-continue", and never to send
 * "100 Continue" for a body that will be refused.
 *
 * libsoup 3.2.3 leaks the connection (and its file descriptor) of a
 * keep-alive client that closes, or times out, between two requests: the
 * message waiting for the next request has nobody to report its end to.
 * So between requests the connection tells its KvRequestFilter, which
 * keeps such an end from libsoup and says so; the connection is then
 * taken away from libsoup through the last message answered, and closed.
 */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "kv-connection.h"
#include "kv-listener.h"
#include "kv-request-filter.h"
#include "kv-socket-stream.h"
#include "kv-transport-private.h"

struct _KvConnection
{
  GObject parent_instance;

  KvTransport *transport;       /* (owned) */
  GList *link;                  /* in the transport's connections */
  GSocket *socket;              /* (owned) */
  KvListenerSlot *slot;         /* (nullable) lives as long as @socket */
  KvConnectionPeer peer;
  char *local_host;             /* (owned) (nullable) the address reached */
  GSocketAddress *local;        /* (owned) for libsoup */
  GSocketAddress *remote;       /* (owned) (nullable) it owns us once libsoup has it */
  KvRequestFilter *filter;      /* (owned) */
  GIOStream *stream;            /* (owned) (nullable) until libsoup has it */

  SoupServerMessage *current;   /* (weak) the request being read */
  SoupServerMessage *last;      /* (owned) (nullable) while idle */
  gulong last_disconnected_id;
  gint64 deadline;              /* for the request being read, or 0 */
  guint64 body_bytes;
  guint64 max_body;             /* for the request being read */
  const char *too_large;        /* (unowned) the refusal past it */

  /* A call to the store while the request is paused, and the watch for
   * the client going away meanwhile, set up once the call takes long. */
  GCancellable *call;           /* (owned) (nullable) */
  GCancellable *spare;          /* (owned) (nullable) for the next call */
  gint64 call_since;
  GSource *hangup_watch;        /* (owned) (nullable) */

  /* An answer that streams until the server ends it, on a connection
   * taken from libsoup, whose client the transport's sweep looks for. */
  gboolean taken;
  KvConnectionFunc hung_up;     /* (nullable) while it streams */
  gpointer hung_up_data;

  GSource *refusal;             /* (owned) (nullable) a refusal waiting to be made */
  guint refused_status;         /* 0 for a hang-up */
  const char *refused_text;
};

G_DEFINE_FINAL_TYPE (KvConnection, kv_connection, G_TYPE_OBJECT)

static GQuark connection_quark;

static void
end_idle (KvConnection *self)
{
  if (self->filter != NULL)
    kv_request_filter_set_idle_deadline (self->filter, 0);
  if (self->last != NULL)
    {
      g_clear_signal_handler (&self->last_disconnected_id, self->last);
      g_clear_object (&self->last);
    }
}

static void
clear_call (KvConnection *self)
{
  if (self->hangup_watch != NULL)
    {
      g_source_destroy (self->hangup_watch);
      g_clear_pointer (&self->hangup_watch, g_source_unref);
    }
  /* One cancellable serves call after call, until one is cancelled: an
   * object made and finalized per request costs GLib's global locks. */
  if (self->call != NULL && self->spare == NULL && !g_cancellable_is_cancelled (self->call))
    self->spare = g_steal_pointer (&self->call);
  g_clear_object (&self->call);
}

static void
clear_stream (KvConnection *self)
{
  self->hung_up = NULL;
  self->hung_up_data = NULL;
}

static void
kv_connection_finalize (GObject *object)
{
  KvConnection *self = KV_CONNECTION (object);

  clear_stream (self);
  clear_call (self);
  g_clear_object (&self->spare);
  end_idle (self);
  if (self->refusal != NULL)
    {
      g_source_destroy (self->refusal);
      g_source_unref (self->refusal);
    }
  if (self->filter != NULL)
    g_signal_handlers_disconnect_by_data (self->filter, self);
  g_clear_object (&self->filter);
  g_clear_object (&self->stream);
  g_clear_weak_pointer (&self->current);
  g_clear_object (&self->local);
  g_object_unref (self->socket);
  g_free (self->local_host);
  kv_transport_forget (self->transport, self->link);
  g_object_unref (self->transport);

  G_OBJECT_CLASS (kv_connection_parent_class)->finalize (object);
}

static void
kv_connection_class_init (KvConnectionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = kv_connection_finalize;

  connection_quark = g_quark_from_static_string ("kv-connection");
}

static void
kv_connection_init (KvConnection *self)
{
}

/* Takes @msg's connection away from libsoup and closes it, answering
 * with @response first when there is one. Holding @msg holds libsoup's
 * connection, and so @self, until then; @self may be gone after. */
static void
steal_and_close (KvConnection      *self,
                 SoupServerMessage *msg,
                 GBytes            *response)
{
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(KvTransport) transport = g_object_ref (self->transport);
  g_autoptr(GSocket) socket = g_object_ref (self->socket);

  /* A call to the store for it will find nobody to answer. */
  if (self->call != NULL)
    g_cancellable_cancel (self->call);
  g_object_ref (msg);
  /* libsoup stops reading and writing this connection at once. */
  stream = soup_server_message_steal_connection (msg);
  kv_transport_close_socket (transport, socket, stream, response);
  g_object_unref (msg);
}

/**
 * kv_connection_refuse:
 * @self: a #KvConnection
 * @msg: its request being read
 * @status: an HTTP error status
 * @text: the error's stable text
 * @extra_header: (nullable): one more header line
 *
 * Answers @msg with an error without reading any more of it, and closes
 * the connection. @self may be gone when this returns.
 */
void
kv_connection_refuse (KvConnection      *self,
                      SoupServerMessage *msg,
                      guint              status,
                      const char        *text,
                      const char        *extra_header)
{
  g_autoptr(GBytes) response = NULL;

  g_return_if_fail (KV_IS_CONNECTION (self));

  g_debug ("Refusing a request: %u %s", status, text);

  self->deadline = 0;
  response = kv_transport_build_refusal (self->transport, status, text, extra_header,
                                         soup_server_message_get_request_headers (msg),
                                         soup_server_message_get_method (msg) == SOUP_METHOD_HEAD);
  steal_and_close (self, msg, response);
}

static void
on_last_disconnected (SoupServerMessage *msg,
                      gpointer           data)
{
  /* libsoup closed the connection itself: nothing left to watch. */
  end_idle (data);
}

/* What libsoup decides after the response (it keeps this private). */
static gboolean
is_keepalive (SoupServerMessage *msg)
{
  SoupMessageHeaders *request = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *response = soup_server_message_get_response_headers (msg);

  if (soup_message_headers_header_contains (request, "Connection", "close") ||
      soup_message_headers_header_contains (response, "Connection", "close"))
    return FALSE;
  if (soup_server_message_get_http_version (msg) == SOUP_HTTP_1_0)
    return soup_message_headers_header_contains (request, "Connection", "keep-alive");
  return TRUE;
}

static gboolean
on_refusal (gpointer data)
{
  KvConnection *self = data;
  g_autoptr(SoupServerMessage) msg = NULL;

  g_clear_pointer (&self->refusal, g_source_unref);

  /* Any message of the connection can take it away from libsoup: the one
   * being read, or while between requests the last one answered. */
  if (self->current != NULL)
    msg = g_object_ref (self->current);
  else if (self->last != NULL)
    {
      msg = g_steal_pointer (&self->last);
      g_clear_signal_handler (&self->last_disconnected_id, msg);
    }
  end_idle (self);

  if (msg == NULL)
    return G_SOURCE_REMOVE;

  if (self->refused_status != 0)
    {
      /* libsoup has parsed nothing of the refused request (@msg may even
       * be the one before it): the filter knows what its Accept asked. */
      g_autoptr(SoupMessageHeaders) headers =
        soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
      g_autoptr(GBytes) response = NULL;

      if (kv_request_filter_get_wants_json (self->filter))
        soup_message_headers_append (headers, "Accept", "application/json");
      g_debug ("Refusing a request: %u %s", self->refused_status, self->refused_text);
      self->deadline = 0;
      response = kv_transport_build_refusal (self->transport, self->refused_status,
                                             self->refused_text, NULL, headers, FALSE);
      steal_and_close (self, msg, response);
    }
  else
    {
      g_debug ("Closing a connection between two requests");
      steal_and_close (self, msg, NULL);
    }

  return G_SOURCE_REMOVE;
}

/* We are inside libsoup's read: act once it has returned. */
static void
schedule_refusal (KvConnection *self,
                  guint         status,
                  const char   *text)
{
  if (self->refusal != NULL)
    return;

  self->refused_status = status;
  self->refused_text = text;
  self->refusal = g_idle_source_new ();
  g_source_set_priority (self->refusal, G_PRIORITY_HIGH);
  g_source_set_callback (self->refusal, on_refusal, self, NULL);
  g_source_attach (self->refusal, kv_transport_get_context (self->transport));
}

static void
on_refused (KvRequestFilter *filter,
            guint            status,
            const char      *text,
            gpointer         data)
{
  schedule_refusal (data, status, text);
}

static void
on_hung_up (KvRequestFilter *filter,
            gpointer         data)
{
  schedule_refusal (data, 0, NULL);
}

/* Every slot is taken and the listener chose us to make room. */
static void
shed (GObject *owner)
{
  KvConnection *self = KV_CONNECTION (owner);

  if (self->current != NULL)
    kv_connection_refuse (self, self->current, SOUP_STATUS_SERVICE_UNAVAILABLE,
                          "too many connections", "Retry-After: 1");
  else if (self->last != NULL)
    kv_connection_close_if_idle (self);
  else
    g_socket_shutdown (self->socket, TRUE, TRUE, NULL);  /* libsoup sees the end */
}

/* Our state rides on an address of our own: the one from the socket is
 * cached by the socket, which we hold. */
static GSocketAddress *
copy_address (GSocketAddress  *address,
              GError         **error)
{
  gssize size = g_socket_address_get_native_size (address);
  g_autofree guint8 *native = g_malloc (MAX (size, 1));

  if (size <= 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "the peer's address cannot be copied");
      return NULL;
    }
  if (!g_socket_address_to_native (address, native, size, error))
    return NULL;

  return g_socket_address_new_from_native (native, size);
}

/* Made by kv_transport_add(). */
KvConnection *
kv_connection_new (KvTransport  *transport,
                   GSocket      *socket,
                   GList        *link,
                   GError      **error)
{
  const KvTransportLimits *limits = kv_transport_get_limits (transport);
  g_autoptr(KvConnection) self = NULL;
  g_autoptr(GSocketAddress) remote = NULL;
  g_autoptr(GSocketAddress) socket_remote = NULL;
  g_autoptr(GSocketConnection) connection = NULL;

  self = g_object_new (KV_TYPE_CONNECTION, NULL);
  self->transport = g_object_ref (transport);
  self->link = link;
  link->data = self;
  self->socket = g_object_ref (socket);
  self->slot = kv_listener_get_slot (socket);
  kv_listener_slot_set_owner (self->slot, G_OBJECT (self), shed);

  self->local = g_socket_get_local_address (socket, error);
  if (self->local == NULL)
    return NULL;
  socket_remote = g_socket_get_remote_address (socket, error);
  if (socket_remote == NULL)
    return NULL;
  remote = copy_address (socket_remote, error);
  if (remote == NULL)
    return NULL;

  if (!G_IS_INET_SOCKET_ADDRESS (self->local))
    self->peer = KV_CONNECTION_PEER_UNIX;
  else
    {
      GInetAddress *inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (self->local));

      self->peer = g_inet_address_get_is_loopback (inet) ? KV_CONNECTION_PEER_LOOPBACK
                                                          : KV_CONNECTION_PEER_REMOTE;
      self->local_host = g_inet_address_to_string (inet);
    }

  /* libsoup reads and writes without blocking anyway; our own reads must
   * not wait either. */
  g_socket_set_blocking (socket, FALSE);
  /* No progress in either direction for this long ends the connection:
   * between requests through KvRequestFilter, while answering through
   * libsoup's own error. Longer than the request deadline, which answers
   * 408, and than the idle deadline, which KvRequestFilter checks as bytes
   * come. */
  g_socket_set_timeout (socket, MAX (limits->idle_timeout, limits->request_timeout) + 1);
  if (self->peer != KV_CONNECTION_PEER_UNIX)
    g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);

  if (self->peer == KV_CONNECTION_PEER_UNIX)
    {
      /* libsoup 3.2 takes the local address for an IP address when an
       * HTTP/1.0 request has no Host; give it one. */
      g_clear_object (&self->local);
      self->local = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
    }

  /* libsoup reads the requests through the filter. */
  connection = g_socket_connection_factory_create_connection (socket);
  self->filter = kv_request_filter_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                                        limits->max_header_size, limits->max_headers);
  g_signal_connect (self->filter, "refused", G_CALLBACK (on_refused), self);
  g_signal_connect (self->filter, "hung-up", G_CALLBACK (on_hung_up), self);
  self->stream = G_IO_STREAM (kv_socket_stream_new (connection, G_INPUT_STREAM (self->filter),
                                                    transport));

  /* The address owns us from now on; we hold it until libsoup does. */
  g_object_set_qdata_full (G_OBJECT (remote), connection_quark, g_object_ref (self),
                           g_object_unref);
  self->remote = g_steal_pointer (&remote);

  return g_steal_pointer (&self);
}

/**
 * kv_connection_from_message:
 * @msg: a request libsoup read from one of our connections
 *
 * Returns: (transfer none) (nullable): the connection @msg came on
 */
KvConnection *
kv_connection_from_message (SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);

  return remote != NULL ? g_object_get_qdata (G_OBJECT (remote), connection_quark) : NULL;
}

/**
 * kv_connection_serve:
 * @self: a new #KvConnection
 * @soup: the server that reads its requests
 * @error: return location for a #GError
 *
 * Hands the connection to libsoup, once.
 *
 * Returns: %FALSE if libsoup would not take it
 */
gboolean
kv_connection_serve (KvConnection  *self,
                     SoupServer    *soup,
                     GError       **error)
{
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(GSocketAddress) remote = NULL;

  g_return_val_if_fail (KV_IS_CONNECTION (self), FALSE);
  g_return_val_if_fail (self->stream != NULL, FALSE);

  stream = g_steal_pointer (&self->stream);
  /* From here on the address lives as long as libsoup's connection, and
   * so do we: the reference that made us is libsoup's. */
  remote = g_steal_pointer (&self->remote);
  return soup_server_accept_iostream (soup, stream, self->local, remote, error);
}

/**
 * kv_connection_get_peer:
 *
 * Returns: how the client reached us
 */
KvConnectionPeer
kv_connection_get_peer (KvConnection *self)
{
  g_return_val_if_fail (KV_IS_CONNECTION (self), KV_CONNECTION_PEER_REMOTE);

  return self->peer;
}

/**
 * kv_connection_get_local_host:
 *
 * Returns: (nullable): the IP address the client connected to, without
 *   brackets, or %NULL on a Unix socket
 */
const char *
kv_connection_get_local_host (KvConnection *self)
{
  g_return_val_if_fail (KV_IS_CONNECTION (self), NULL);

  return self->local_host;
}

/**
 * kv_connection_request_started:
 * @self: a #KvConnection
 * @msg: a request whose headers are about to be read
 *
 * Starts the request's deadline. To be called from the server's
 * #SoupServer::request-started handler.
 */
void
kv_connection_request_started (KvConnection      *self,
                               SoupServerMessage *msg)
{
  const KvTransportLimits *limits;

  g_return_if_fail (KV_IS_CONNECTION (self));

  limits = kv_transport_get_limits (self->transport);
  end_idle (self);
  g_set_weak_pointer (&self->current, msg);
  kv_listener_slot_set_progress (self->slot, KV_LISTENER_PROGRESS_READING);
  self->body_bytes = 0;
  self->deadline = g_get_monotonic_time () + limits->request_timeout * G_USEC_PER_SEC;
  kv_transport_watch_deadline (self->transport);
}

static void
on_got_chunk (SoupServerMessage *msg,
              GBytes            *chunk,
              gpointer           data)
{
  KvConnection *self = data;

  /* A chunked body announces no length: count it as it arrives, so that
   * no more than the limit and one read block is ever held. */
  self->body_bytes += g_bytes_get_size (chunk);
  if (self->body_bytes > self->max_body)
    kv_connection_refuse (self, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, self->too_large,
                          NULL);
}

static void
on_got_body (SoupServerMessage *msg,
             gpointer           data)
{
  KvConnection *self = data;

  /* The whole request is in: the deadline is met. Writing the answer is
   * bounded by the socket's timeout. */
  self->deadline = 0;
}

/**
 * kv_connection_headers_accepted:
 * @self: a #KvConnection
 * @msg: a request whose headers passed every check
 * @max_body: the largest body this request may have
 * @too_large: the error's stable text past it, a static string
 *
 * Watches the body, when there is one, until it is all in: a chunked body
 * is counted against the limit as it arrives. Without a body the
 * request's deadline is met.
 */
void
kv_connection_headers_accepted (KvConnection      *self,
                                SoupServerMessage *msg,
                                guint64            max_body,
                                const char        *too_large)
{
  SoupMessageHeaders *headers;

  g_return_if_fail (KV_IS_CONNECTION (self));

  self->max_body = max_body;
  self->too_large = too_large;
  headers = soup_server_message_get_request_headers (msg);
  kv_listener_slot_set_progress (self->slot, KV_LISTENER_PROGRESS_BUSY);
  /* Most requests have no body: no handler for them. */
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CHUNKED)
    {
      g_signal_connect (msg, "got-chunk", G_CALLBACK (on_got_chunk), self);
      g_signal_connect (msg, "got-body", G_CALLBACK (on_got_body), self);
    }
  else if (soup_message_headers_get_content_length (headers) > 0)
    g_signal_connect (msg, "got-body", G_CALLBACK (on_got_body), self);
  else
    self->deadline = 0;
}

/**
 * kv_connection_restart_deadline:
 * @self: a #KvConnection
 *
 * The body being read has made the progress its server asks of it: the
 * request has the request timeout again, from now. A server that lets a
 * large body arrive at a minimum rate, rather than within one deadline,
 * calls this every so many bytes. Nothing changes once the request is in.
 */
void
kv_connection_restart_deadline (KvConnection *self)
{
  g_return_if_fail (KV_IS_CONNECTION (self));

  if (self->deadline != 0)
    self->deadline = g_get_monotonic_time () +
                     kv_transport_get_limits (self->transport)->request_timeout * G_USEC_PER_SEC;
}

/**
 * kv_connection_request_done:
 * @self: a #KvConnection
 * @msg: a request that was answered or aborted
 *
 * To be called from the server's #SoupServer::request-finished and
 * #SoupServer::request-aborted handlers (a 500 answer counts as aborted,
 * yet the connection may be kept). A kept connection is idle until the
 * next request starts.
 */
void
kv_connection_request_done (KvConnection      *self,
                            SoupServerMessage *msg)
{
  g_return_if_fail (KV_IS_CONNECTION (self));

  self->deadline = 0;
  if (self->current == msg)
    g_clear_weak_pointer (&self->current);
  kv_listener_slot_set_progress (self->slot, KV_LISTENER_PROGRESS_IDLE);

  end_idle (self);
  if (g_socket_is_closed (self->socket) || !is_keepalive (msg))
    return;

  /* Any message of the connection can take it away from libsoup: keep
   * this one until the next request starts. */
  self->last = g_object_ref (msg);
  self->last_disconnected_id = g_signal_connect (msg, "disconnected",
                                                 G_CALLBACK (on_last_disconnected), self);

  /* Silence is ended by the socket's timeout; a next request trickled
   * without ever ending its first line, by this deadline. */
  kv_request_filter_set_idle_deadline (self->filter, g_get_monotonic_time () +
                                       kv_transport_get_limits (self->transport)->idle_timeout *
                                       G_USEC_PER_SEC);
}

/* For the transport's sweep: refuses a request past its deadline. @self
 * may be gone after a TRUE return. */
gboolean
kv_connection_check_deadline (KvConnection *self,
                              gint64        now)
{
  if (self->deadline == 0 || now < self->deadline || self->current == NULL)
    return FALSE;

  kv_connection_refuse (self, self->current, SOUP_STATUS_REQUEST_TIMEOUT, "request timeout",
                        NULL);
  return TRUE;
}

/**
 * kv_connection_call_started:
 * @self: a #KvConnection
 *
 * The request being answered waits for the store.
 *
 * Returns: (transfer full): cancelled if the client goes away before the
 *   answer, or the connection is taken from libsoup
 */
GCancellable *
kv_connection_call_started (KvConnection *self)
{
  g_return_val_if_fail (KV_IS_CONNECTION (self), NULL);

  clear_call (self);
  self->call = self->spare != NULL ? g_steal_pointer (&self->spare) : g_cancellable_new ();
  self->call_since = g_get_monotonic_time ();
  kv_transport_watch_deadline (self->transport);

  return g_object_ref (self->call);
}

/**
 * kv_connection_call_done:
 * @self: a #KvConnection
 *
 * The store has answered.
 */
void
kv_connection_call_done (KvConnection *self)
{
  g_return_if_fail (KV_IS_CONNECTION (self));

  clear_call (self);
}

static gboolean
on_hangup_watch (GSocket      *socket,
                 GIOCondition  condition,
                 gpointer      data)
{
  KvConnection *self = data;
  char byte;
  gssize n = recv (g_socket_get_fd (socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT);

  g_clear_pointer (&self->hangup_watch, g_source_unref);
  /* The end of the stream, or an error: nobody waits for the answer. A
   * byte is a pipelined request: the client is there. */
  if ((n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) && self->current != NULL)
    {
      /* libsoup, its message paused, would not notice: close it here. */
      g_debug ("The client went away while the store answered");
      steal_and_close (self, self->current, NULL);
    }

  return G_SOURCE_REMOVE;
}

/* For the transport's sweep: a call that takes long gets a watch for the
 * client going away; a quick one (the in-memory store's) never costs one. */
void
kv_connection_check_call (KvConnection *self,
                          gint64        now)
{
  if (self->call == NULL || self->hangup_watch != NULL ||
      g_cancellable_is_cancelled (self->call) || now - self->call_since < 100 * 1000)
    return;

  self->hangup_watch = g_socket_create_source (self->socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (self->hangup_watch, G_SOURCE_FUNC (on_hangup_watch), self, NULL);
  g_source_attach (self->hangup_watch, kv_transport_get_context (self->transport));
}

/**
 * kv_connection_take_stream:
 * @self: a #KvConnection
 * @msg: its request being answered, whose answer is not begun
 * @hung_up: called once, in the connection's main context, when the
 *   client goes away (the end of the stream, or an error) or sends
 *   anything more, which a stream never answers
 * @user_data: data for @hung_up
 *
 * Takes the connection from libsoup, for an answer that goes on until
 * the server ends it (a watch), written by the caller. libsoup says
 * nothing more of @msg. A message libsoup keeps paused between two pieces
 * of an answer is a source that every turn of the main loop looks at: a
 * thousand idle streams would slow every other request of their thread.
 * Taken, an idle stream costs nothing: no deadline applies to it, and the
 * transport's sweep looks at its socket a few times a second for a client
 * that went away. The connection keeps its slot until
 * kv_connection_close_stream().
 *
 * Returns: (transfer full): the connection's stream, to write the answer
 *   on
 */
GIOStream *
kv_connection_take_stream (KvConnection      *self,
                           SoupServerMessage *msg,
                           KvConnectionFunc   hung_up,
                           gpointer           user_data)
{
  GIOStream *stream;

  g_return_val_if_fail (KV_IS_CONNECTION (self), NULL);
  g_return_val_if_fail (hung_up != NULL, NULL);

  /* libsoup's connection owns us: stay for the stream. */
  g_object_ref (self);
  g_object_ref (msg);
  self->deadline = 0;
  end_idle (self);
  stream = soup_server_message_steal_connection (msg);
  g_object_unref (msg);
  g_clear_weak_pointer (&self->current);
  kv_listener_slot_set_progress (self->slot, KV_LISTENER_PROGRESS_BUSY);
  self->hung_up = hung_up;
  self->hung_up_data = user_data;
  self->taken = TRUE;
  kv_transport_watch_deadline (self->transport);

  return stream;
}

/**
 * kv_connection_close_stream:
 * @self: a #KvConnection whose stream was taken
 * @stream: (transfer full): that stream
 *
 * Ends the connection after what was written on @stream: gently, what
 * the client still sends drained rather than met with a reset. @self may
 * be gone when this returns.
 */
void
kv_connection_close_stream (KvConnection *self,
                            GIOStream    *stream)
{
  g_return_if_fail (KV_IS_CONNECTION (self));
  g_return_if_fail (self->taken);

  clear_stream (self);
  self->taken = FALSE;
  kv_transport_close_socket (self->transport, self->socket, stream, NULL);
  g_object_unref (stream);
  g_object_unref (self);
}

/* For the transport's sweep: a stream whose client has hung up, failed
 * or sent more is told. @self may be gone after. */
void
kv_connection_check_stream (KvConnection *self)
{
  KvConnectionFunc hung_up = self->hung_up;
  gpointer hung_up_data = self->hung_up_data;
  char byte;
  gssize n;

  if (hung_up == NULL)
    return;
  n = recv (g_socket_get_fd (self->socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;

  g_debug ("The client of a stream hung up or sent more");
  clear_stream (self);
  hung_up (self, hung_up_data);
}

/* For a stop: a connection between two requests is closed now, the
 * client's next request (if already sent) drained rather than reset. */
void
kv_connection_close_if_idle (KvConnection *self)
{
  g_autoptr(SoupServerMessage) msg = NULL;

  if (self->current != NULL || self->last == NULL)
    return;

  msg = g_steal_pointer (&self->last);
  g_clear_signal_handler (&self->last_disconnected_id, msg);
  end_idle (self);
  steal_and_close (self, msg, NULL);
}
