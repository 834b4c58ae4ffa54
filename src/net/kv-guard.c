/* kv-guard.c: who may connect, and what a request may look like
 *
 * SPDX-License-Identifier: MIT
 *
 * KvGuard stands between the sockets and libsoup. It admits each accepted
 * connection (only the user running crafty-kv gets in over a Unix socket
 * or the loopback; anyone else is answered 403 before libsoup reads a
 * byte), gives it deadlines, passes its bytes through a KvRequestFilter
 * (strict framing), and checks each request's headers as soon as libsoup
 * has parsed them, before any body is read: Host, Origin, the token, the
 * size of the body.
 *
 * A request it refuses is taken away from libsoup
 * (soup_server_message_steal_connection()) and answered here: the answer,
 * "Connection: close", a shutdown of our sending side, a short drain of
 * what the client still sends (so that closing does not reset the
 * connection before the client has read the answer), and a close. That is
 * the only way with libsoup 3.2 not to read the body of a refused request
 * when the client did not send "Expect: 100-continue", and never to send
 * "100 Continue" for a body that will be refused.
 *
 * libsoup 3.2.3 leaks the connection (and its file descriptor) of a
 * keep-alive client that closes, or times out, between two requests: the
 * message waiting for the next request has nobody to report its end to.
 * So between requests the guard tells the connection's KvRequestFilter,
 * which keeps such an end from libsoup and says so; the guard then takes
 * the connection away from libsoup through the last message it answered,
 * and closes it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "kv-guard.h"
#include "net/kv-peer.h"
#include "net/kv-request-filter.h"
#include "net/kv-socket-stream.h"

/* How long a refused client has to read its answer before we close. */
#define LINGER_MS 1000
/* How much of a refused request we read and throw away meanwhile, past
 * max-value-size: enough for a client that writes its whole body before it
 * reads (libsoup's own client does) to get its answer. */
#define DRAIN_EXTRA (1024 * 1024)
#define DRAIN_BLOCK (16 * 1024)

/* How often request deadlines are checked: a timer per request would cost
 * more than the request itself. */
#define SWEEP_MS 250

/* RFC 6585; libsoup 3.2 has no name for it. */
#define STATUS_HEADER_FIELDS_TOO_LARGE 431

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define CORS_METHODS "GET, HEAD, PUT, DELETE"
#define CORS_HEADERS "Authorization, Content-Type, If-Match, If-None-Match"

typedef enum
{
  PEER_UNIX,      /* a Unix socket: the owner only */
  PEER_LOOPBACK,  /* TCP over the loopback: the owner only, loopback Host,
                   * and the bearer token when there is one */
  PEER_REMOTE,    /* any other TCP: the bearer token */
} PeerKind;

/* One per connection, attached to the remote address we hand libsoup:
 * that object is the only thing of ours a SoupServerMessage gives back,
 * and it lives exactly as long as libsoup's connection. */
typedef struct
{
  KvGuard *guard;               /* (owned) */
  GSocket *socket;              /* (owned) */
  PeerKind kind;
  char *local_host;             /* (owned) the address the client reached */
  SoupServerMessage *current;   /* (weak) the request being read */
  SoupServerMessage *last;      /* (owned) (nullable) while idle */
  gulong last_disconnected_id;
  GList link;                   /* in the guard's connections */
  gint64 deadline;              /* for the request being read, or 0 */
  guint64 body_bytes;
  KvRequestFilter *filter;      /* (owned) */
  gulong refused_id;
  gulong hung_up_id;
  GSource *refusal;             /* (owned) (nullable) answering a refused request,
                                 * or closing a connection that hung up */
  guint refused_status;
  const char *refused_text;
} Connection;

/* A connection being answered and closed by us rather than libsoup. */
typedef struct
{
  KvGuard *guard;               /* (unowned) it finishes us when disposed */
  GSocket *socket;              /* (owned) */
  GIOStream *stream;            /* (owned) (nullable) what libsoup gave back */
  GBytes *response;             /* (owned) */
  gsize written;
  gsize drained;
  gboolean shut_down;
  GSource *io;                  /* (owned) (nullable) */
  GSource *deadline;            /* (owned) */
} Closing;

struct _KvGuard
{
  GObject parent_instance;

  KvConfig *config;             /* (owned) */
  GMainContext *context;        /* (owned) */
  uid_t uid;

  /* Read once from the config: they are on every request's path. */
  guint64 max_value_size;
  guint max_header_size;
  guint max_headers;
  guint request_timeout_ms;
  guint idle_timeout_s;
  char **allow_origin;          /* (owned) (nullable) */

  gboolean token_loaded;
  gboolean have_token;
  guint8 token_digest[32];

  GQueue closings;              /* (element-type Closing) */
  GQueue connections;           /* (element-type Connection) */
  GSource *sweeper;             /* (owned) (nullable) while there are connections */
  int diag_fd;                  /* for kv_peer_get_uid(), or -1 */
  gboolean warned_peer_lookup;
};

enum {
  PROP_0,
  PROP_CONFIG,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_QUARK (kv-guard-error-quark, kv_guard_error)

static GQuark connection_quark;

G_DEFINE_FINAL_TYPE (KvGuard, kv_guard, G_TYPE_OBJECT)

/* ---- Answering and closing by ourselves ---- */

static void closing_step (Closing *closing);

static void
closing_finish (Closing *closing)
{
  if (closing->io != NULL)
    {
      g_source_destroy (closing->io);
      g_source_unref (closing->io);
    }
  if (closing->deadline != NULL)
    {
      g_source_destroy (closing->deadline);
      g_source_unref (closing->deadline);
    }
  g_queue_remove (&closing->guard->closings, closing);

  /* Closing libsoup's stream closes our socket under it. */
  if (closing->stream != NULL)
    g_io_stream_close (closing->stream, NULL, NULL);
  g_socket_close (closing->socket, NULL);

  g_clear_object (&closing->stream);
  g_object_unref (closing->socket);
  g_clear_pointer (&closing->response, g_bytes_unref);
  g_free (closing);
}

static gboolean
on_closing_deadline (gpointer data)
{
  closing_finish (data);
  return G_SOURCE_REMOVE;
}

static gboolean
on_closing_ready (GSocket      *socket,
                  GIOCondition  condition,
                  gpointer      data)
{
  Closing *closing = data;

  g_clear_pointer (&closing->io, g_source_unref);
  closing_step (closing);

  return G_SOURCE_REMOVE;
}

static void
closing_wait (Closing      *closing,
              GIOCondition  condition)
{
  closing->io = g_socket_create_source (closing->socket, condition, NULL);
  g_source_set_callback (closing->io, G_SOURCE_FUNC (on_closing_ready), closing, NULL);
  g_source_attach (closing->io, closing->guard->context);
}

static void
closing_step (Closing *closing)
{
  gsize len;
  const char *data = g_bytes_get_data (closing->response, &len);
  char buffer[DRAIN_BLOCK];

  while (closing->written < len)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send_with_blocking (closing->socket, data + closing->written,
                                              len - closing->written, FALSE, NULL, &error);
      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            closing_wait (closing, G_IO_OUT);
          else
            closing_finish (closing);
          return;
        }
      closing->written += n;
    }

  if (!closing->shut_down)
    {
      /* The client sees the end of our answer. */
      g_socket_shutdown (closing->socket, FALSE, TRUE, NULL);
      closing->shut_down = TRUE;
    }

  while (closing->drained < closing->guard->max_value_size + DRAIN_EXTRA)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive_with_blocking (closing->socket, buffer, sizeof buffer,
                                                 FALSE, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          closing_wait (closing, G_IO_IN);
          return;
        }
      if (n <= 0)
        break;
      closing->drained += n;
    }

  closing_finish (closing);
}

/* Sends @response (if any) on @socket and closes it; @stream, when libsoup
 * gave one back, is closed with it. */
static void
closing_start (KvGuard   *self,
               GSocket   *socket,
               GIOStream *stream,
               GBytes    *response)
{
  Closing *closing = g_new0 (Closing, 1);

  closing->guard = self;
  closing->socket = g_object_ref (socket);
  closing->stream = stream != NULL ? g_object_ref (stream) : NULL;
  closing->response = response != NULL ? g_bytes_ref (response) : g_bytes_new (NULL, 0);
  g_queue_push_tail (&self->closings, closing);

  if (response == NULL)
    {
      /* Nothing to say: an idle client is simply let go. */
      closing_finish (closing);
      return;
    }

  closing->deadline = g_timeout_source_new (LINGER_MS);
  g_source_set_callback (closing->deadline, on_closing_deadline, closing, NULL);
  g_source_attach (closing->deadline, self->context);

  closing_step (closing);
}

/* libsoup 3.2 knows neither 421 nor 431 by name. */
static const char *
status_phrase (guint status)
{
  switch (status)
    {
    case SOUP_STATUS_MISDIRECTED_REQUEST:
      return "Misdirected Request";
    case STATUS_HEADER_FIELDS_TOO_LARGE:
      return "Request Header Fields Too Large";
    default:
      return soup_status_get_phrase (status);
    }
}

/* Whether the client asked for errors in JSON (the API's convention). */
static gboolean
wants_json (SoupMessageHeaders *request_headers)
{
  const char *accept = request_headers != NULL
                       ? soup_message_headers_get_list (request_headers, "Accept") : NULL;
  g_auto(GStrv) types = NULL;

  if (accept == NULL)
    return FALSE;

  types = g_strsplit (accept, ",", -1);
  for (gsize i = 0; types[i] != NULL; i++)
    {
      char *parameters = strchr (types[i], ';');

      if (parameters != NULL)
        *parameters = '\0';
      if (g_ascii_strcasecmp (g_strstrip (types[i]), "application/json") == 0)
        return TRUE;
    }
  return FALSE;
}

/* A whole HTTP/1.1 answer, with "Connection: close". The body is @text
 * and a newline, or {"error": @text, "status": @status} when the request
 * (if it got as far as its headers) asked for JSON. @text is one of our
 * own plain ASCII phrases: nothing to escape. */
static GBytes *
build_response (guint               status,
                const char         *text,
                const char         *extra_header,
                SoupMessageHeaders *request_headers,
                gboolean            head)
{
  GString *response = g_string_new (NULL);
  g_autofree char *body = NULL;
  gboolean json = wants_json (request_headers);

  if (json)
    body = g_strdup_printf ("{\"error\": \"%s\", \"status\": %u}", text, status);
  else
    body = g_strconcat (text, "\n", NULL);

  g_string_append_printf (response, "HTTP/1.1 %u %s\r\n", status, status_phrase (status));
  g_string_append (response, "Server: " PACKAGE_NAME "/" VERSION "\r\n");
  g_string_append (response, "Connection: close\r\n");
  g_string_append_printf (response, "Content-Type: %s\r\n", json ? "application/json" : TEXT_PLAIN);
  g_string_append (response, "X-Content-Type-Options: nosniff\r\n");
  g_string_append_printf (response, "Content-Length: %" G_GSIZE_FORMAT "\r\n", strlen (body));
  if (extra_header != NULL)
    g_string_append_printf (response, "%s\r\n", extra_header);
  g_string_append (response, "\r\n");
  if (!head)
    g_string_append (response, body);

  return g_string_free_to_bytes (response);
}

/* ---- Connections ---- */

static void
connection_clear_deadline (Connection *c)
{
  c->deadline = 0;
}

static void
connection_end_idle (Connection *c)
{
  if (c->filter != NULL)
    kv_request_filter_set_idle_deadline (c->filter, 0);
  if (c->last != NULL)
    {
      g_clear_signal_handler (&c->last_disconnected_id, c->last);
      g_clear_object (&c->last);
    }
}

static void
connection_free (gpointer data)
{
  Connection *c = data;

  connection_end_idle (c);
  g_queue_unlink (&c->guard->connections, &c->link);
  if (c->refusal != NULL)
    {
      g_source_destroy (c->refusal);
      g_source_unref (c->refusal);
    }
  if (c->filter != NULL)
    {
      g_clear_signal_handler (&c->refused_id, c->filter);
      g_clear_signal_handler (&c->hung_up_id, c->filter);
    }
  g_clear_object (&c->filter);
  g_clear_weak_pointer (&c->current);
  g_object_unref (c->socket);
  g_free (c->local_host);
  g_object_unref (c->guard);
  g_free (c);
}

static Connection *
connection_of (SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);

  return remote != NULL ? g_object_get_qdata (G_OBJECT (remote), connection_quark) : NULL;
}

/* Answers @msg ourselves with @status and @text, and closes the
 * connection without reading any more of the request. */
static void
reject (Connection        *c,
        SoupServerMessage *msg,
        guint              status,
        const char        *text,
        const char        *extra_header)
{
  g_autoptr(GBytes) response = NULL;
  g_autoptr(GIOStream) stream = NULL;
  gboolean head = soup_server_message_get_method (msg) == SOUP_METHOD_HEAD;

  g_debug ("Refusing a request: %u %s", status, text);

  connection_clear_deadline (c);
  response = build_response (status, text, extra_header,
                             soup_server_message_get_request_headers (msg), head);

  /* Holding @msg holds libsoup's connection, and so @c, until we are
   * done; the caller must not use @c after. */
  g_object_ref (msg);
  /* libsoup stops reading and writing this connection at once. */
  stream = soup_server_message_steal_connection (msg);
  closing_start (c->guard, c->socket, stream, response);
  g_object_unref (msg);
}

static void
on_last_disconnected (SoupServerMessage *msg,
                      gpointer           data)
{
  Connection *c = data;

  /* libsoup closed the connection itself: nothing left to watch. */
  connection_end_idle (c);
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

static void
connection_begin_idle (Connection        *c,
                       SoupServerMessage *msg)
{
  connection_end_idle (c);
  if (g_socket_is_closed (c->socket) || !is_keepalive (msg))
    return;

  /* Any message of the connection can take it away from libsoup: keep
   * this one until the next request starts. */
  c->last = g_object_ref (msg);
  c->last_disconnected_id = g_signal_connect (msg, "disconnected",
                                              G_CALLBACK (on_last_disconnected), c);

  /* Silence is ended by the socket's timeout; a next request trickled
   * without ever ending its first line, by this deadline. */
  kv_request_filter_set_idle_deadline (c->filter, g_get_monotonic_time () +
                                       c->guard->idle_timeout_s * G_USEC_PER_SEC);
}

static gboolean
on_refusal (gpointer data)
{
  Connection *c = data;
  g_autoptr(SoupServerMessage) msg = NULL;

  g_clear_pointer (&c->refusal, g_source_unref);

  /* Any message of the connection can take it away from libsoup: the one
   * being read, or while between requests the last one answered. */
  if (c->current != NULL)
    msg = g_object_ref (c->current);
  else if (c->last != NULL)
    {
      msg = g_steal_pointer (&c->last);
      g_clear_signal_handler (&c->last_disconnected_id, msg);
    }
  connection_end_idle (c);

  if (msg == NULL)
    return G_SOURCE_REMOVE;

  if (c->refused_status != 0)
    {
      reject (c, msg, c->refused_status, c->refused_text, NULL);
    }
  else
    {
      /* Hung up: nothing to answer. @c may be freed once @msg is. */
      g_autoptr(GIOStream) stream = NULL;
      KvGuard *guard = c->guard;
      g_autoptr(GSocket) socket = g_object_ref (c->socket);

      g_debug ("Closing a connection between two requests");
      stream = soup_server_message_steal_connection (msg);
      closing_start (guard, socket, stream, NULL);
    }

  return G_SOURCE_REMOVE;
}

/* We are inside libsoup's read: act once it has returned. */
static void
schedule_refusal (Connection *c,
                  guint       status,
                  const char *text)
{
  if (c->refusal != NULL)
    return;

  c->refused_status = status;
  c->refused_text = text;
  c->refusal = g_idle_source_new ();
  g_source_set_priority (c->refusal, G_PRIORITY_HIGH);
  g_source_set_callback (c->refusal, on_refusal, c, NULL);
  g_source_attach (c->refusal, c->guard->context);
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

/* ---- Requests ---- */

static gboolean
on_sweep (gpointer data)
{
  KvGuard *self = data;
  g_autoptr(GPtrArray) late = g_ptr_array_new ();
  gint64 now = g_get_monotonic_time ();

  if (g_queue_is_empty (&self->connections))
    {
      g_clear_pointer (&self->sweeper, g_source_unref);
      return G_SOURCE_REMOVE;
    }

  for (GList *l = self->connections.head; l != NULL; l = l->next)
    {
      Connection *c = l->data;

      if (c->deadline != 0 && now >= c->deadline && c->current != NULL)
        g_ptr_array_add (late, c);
    }

  /* Refusing one connection may free it, and only it. */
  for (guint i = 0; i < late->len; i++)
    {
      Connection *c = g_ptr_array_index (late, i);

      reject (c, c->current, SOUP_STATUS_REQUEST_TIMEOUT, "request timeout", NULL);
    }

  return G_SOURCE_CONTINUE;
}

static void
connection_set_deadline (Connection *c,
                         gint64      deadline)
{
  KvGuard *self = c->guard;

  c->deadline = deadline;
  if (self->sweeper == NULL)
    {
      self->sweeper = g_timeout_source_new (SWEEP_MS);
      g_source_set_callback (self->sweeper, on_sweep, self, NULL);
      g_source_attach (self->sweeper, self->context);
    }
}

static gboolean
is_digits (const char *s)
{
  if (*s == '\0')
    return FALSE;
  for (; *s != '\0'; s++)
    if (!g_ascii_isdigit (*s))
      return FALSE;
  return TRUE;
}

/* Whether @host, a Host header, names the loopback: localhost, 127.0.0.1,
 * [::1] or the address the client connected to, with or without a port. */
static gboolean
host_is_loopback (const char *host,
                  const char *local_host)
{
  g_autofree char *name = NULL;
  const char *port = NULL;

  if (host[0] == '[')
    {
      const char *end = strchr (host, ']');

      if (end == NULL)
        return FALSE;
      name = g_strndup (host, end - host + 1);
      port = end + 1;
    }
  else
    {
      const char *colon = strchr (host, ':');

      name = colon != NULL ? g_strndup (host, colon - host) : g_strdup (host);
      port = colon != NULL ? colon : host + strlen (host);
    }

  if (*port == ':' && !is_digits (port + 1))
    return FALSE;
  if (*port != '\0' && *port != ':')
    return FALSE;

  return g_ascii_strcasecmp (name, "localhost") == 0 ||
         g_str_equal (name, "127.0.0.1") ||
         g_str_equal (name, "[::1]") ||
         (local_host != NULL && g_ascii_strcasecmp (name, local_host) == 0);
}

static void
sha256 (const char *text,
        gsize       len,
        guint8      digest[32])
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  gsize digest_len = 32;

  g_checksum_update (checksum, (const guchar *) text, len);
  g_checksum_get_digest (checksum, digest, &digest_len);
}

/* Compares digests rather than tokens, in time that does not depend on
 * where they differ, so that neither the token's length nor its content
 * leaks through timing. */
static gboolean
token_matches (KvGuard    *self,
               const char *authorization)
{
  guint8 digest[32];
  guint8 diff = 0;
  const char *token;

  if (!self->have_token || authorization == NULL ||
      g_ascii_strncasecmp (authorization, "Bearer ", 7) != 0)
    return FALSE;

  token = authorization + 7;
  while (*token == ' ')
    token++;
  sha256 (token, strlen (token), digest);
  for (gsize i = 0; i < sizeof digest; i++)
    diff |= digest[i] ^ self->token_digest[i];

  return diff == 0;
}

static const char *
allowed_origin (KvGuard    *self,
                const char *origin)
{
  for (gsize i = 0; self->allow_origin != NULL && self->allow_origin[i] != NULL; i++)
    if (g_ascii_strcasecmp (origin, self->allow_origin[i]) == 0)
      return self->allow_origin[i];
  return NULL;
}

static void
on_got_chunk (SoupServerMessage *msg,
              GBytes            *chunk,
              gpointer           data)
{
  Connection *c = data;

  /* A chunked body announces no length: count it as it arrives, so that
   * no more than the limit and one read block is ever held. */
  c->body_bytes += g_bytes_get_size (chunk);
  if (c->body_bytes > c->guard->max_value_size)
    reject (c, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "value too large", NULL);
}

static void
on_got_body (SoupServerMessage *msg,
             gpointer           data)
{
  Connection *c = data;

  /* The whole request is in: the deadline is met. Writing the answer is
   * bounded by the socket's timeout. */
  connection_clear_deadline (c);
}

static void
on_got_headers (SoupServerMessage *msg,
                gpointer           data)
{
  Connection *c = data;
  KvGuard *self = c->guard;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *response_headers = soup_server_message_get_response_headers (msg);
  const char *host;
  const char *origin;
  const char *allowed = NULL;
  /* KvRequestFilter let through one Content-Length of digits at most. */
  guint64 length = soup_message_headers_get_content_length (headers);

  /* Who asks first. */
  host = soup_message_headers_get_one (headers, "Host");
  if (c->kind == PEER_LOOPBACK && host != NULL && !host_is_loopback (host, c->local_host))
    {
      /* A browser led here by a rebound DNS name. */
      reject (c, msg, SOUP_STATUS_MISDIRECTED_REQUEST, "misdirected request", NULL);
      return;
    }
  /* With a token, every TCP request carries it, loopback or not; without
   * one, only the loopback is listened on (kv_guard_check_address()). */
  if (c->kind != PEER_UNIX && (self->have_token || c->kind == PEER_REMOTE) &&
      !token_matches (self, soup_message_headers_get_one (headers, "Authorization")))
    {
      reject (c, msg, SOUP_STATUS_UNAUTHORIZED, "unauthorized", "WWW-Authenticate: Bearer");
      return;
    }
  origin = soup_message_headers_get_one (headers, "Origin");
  if (origin != NULL && (allowed = allowed_origin (self, origin)) == NULL)
    {
      reject (c, msg, SOUP_STATUS_FORBIDDEN, "forbidden", NULL);
      return;
    }

  /* Then what it would cost. */
  if (length > self->max_value_size)
    {
      reject (c, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "value too large", NULL);
      return;
    }

  /* libsoup answers at once and skips the body when a status is set by
   * now and the client waits for "100 Continue"; the client may send the
   * body anyway, which KvRequestFilter would count as the body and libsoup
   * read as the next request. End the connection after this answer. */
  if (soup_message_headers_get_expectations (headers) & SOUP_EXPECTATION_CONTINUE &&
      soup_server_message_get_status (msg) != 0)
    soup_message_headers_replace (response_headers, "Connection", "close");

  /* Watch the body only when there is one: most requests have none. */
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CHUNKED)
    {
      g_signal_connect (msg, "got-chunk", G_CALLBACK (on_got_chunk), c);
      g_signal_connect (msg, "got-body", G_CALLBACK (on_got_body), c);
    }
  else if (length > 0)
    g_signal_connect (msg, "got-body", G_CALLBACK (on_got_body), c);
  else
    connection_clear_deadline (c);

  if (allowed != NULL)
    {
      soup_message_headers_replace (response_headers, "Access-Control-Allow-Origin", allowed);
      soup_message_headers_append (response_headers, "Vary", "Origin");
      if (soup_server_message_get_method (msg) == SOUP_METHOD_OPTIONS &&
          soup_message_headers_get_one (headers, "Access-Control-Request-Method") != NULL)
        {
          /* A preflight: answered here, no handler runs. */
          soup_message_headers_replace (response_headers, "Access-Control-Allow-Methods",
                                        CORS_METHODS);
          soup_message_headers_replace (response_headers, "Access-Control-Allow-Headers",
                                        CORS_HEADERS);
          soup_message_headers_replace (response_headers, "Access-Control-Max-Age", "600");
          soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
          if (soup_message_headers_get_expectations (headers) & SOUP_EXPECTATION_CONTINUE)
            soup_message_headers_replace (response_headers, "Connection", "close");
        }
    }
}

static void
on_request_started (SoupServer        *server,
                    SoupServerMessage *msg,
                    gpointer           data)
{
  Connection *c = connection_of (msg);

  if (c == NULL)
    return;

  connection_end_idle (c);
  g_set_weak_pointer (&c->current, msg);
  c->body_bytes = 0;

  /* SoupServer connected its own got-headers handler just before: early
   * handlers run first, and must not change anything. */
  g_signal_connect (msg, "got-headers", G_CALLBACK (on_got_headers), c);

  connection_set_deadline (c, g_get_monotonic_time () +
                              c->guard->request_timeout_ms * (gint64) 1000);
}

static void
on_request_done (SoupServer        *server,
                 SoupServerMessage *msg,
                 gpointer           data)
{
  Connection *c = connection_of (msg);

  if (c == NULL)
    return;

  connection_clear_deadline (c);
  if (c->current == msg)
    g_clear_weak_pointer (&c->current);
  connection_begin_idle (c, msg);
}

/* ---- The guard ---- */

static void
kv_guard_constructed (GObject *object)
{
  KvGuard *self = KV_GUARD (object);

  G_OBJECT_CLASS (kv_guard_parent_class)->constructed (object);

  if (self->config == NULL)
    self->config = kv_config_new ();

  self->max_value_size = kv_config_get_max_value_size (self->config);
  self->max_header_size = kv_config_get_max_header_size (self->config);
  self->max_headers = kv_config_get_max_headers (self->config);
  self->request_timeout_ms = kv_config_get_request_timeout (self->config) * 1000;
  self->idle_timeout_s = kv_config_get_idle_timeout (self->config);
  self->allow_origin = g_strdupv ((char **) kv_config_get_allow_origin (self->config));
}

static void
kv_guard_dispose (GObject *object)
{
  KvGuard *self = KV_GUARD (object);

  /* Nothing may be left on the main context once we are gone. */
  while (!g_queue_is_empty (&self->closings))
    closing_finish (g_queue_peek_head (&self->closings));
  if (self->sweeper != NULL)
    {
      g_source_destroy (self->sweeper);
      g_clear_pointer (&self->sweeper, g_source_unref);
    }

  G_OBJECT_CLASS (kv_guard_parent_class)->dispose (object);
}

static void
kv_guard_finalize (GObject *object)
{
  KvGuard *self = KV_GUARD (object);

  g_clear_object (&self->config);
  g_strfreev (self->allow_origin);
  if (self->diag_fd >= 0)
    close (self->diag_fd);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (kv_guard_parent_class)->finalize (object);
}

static void
kv_guard_get_property (GObject    *object,
                       guint       prop_id,
                       GValue     *value,
                       GParamSpec *pspec)
{
  KvGuard *self = KV_GUARD (object);

  switch (prop_id)
    {
    case PROP_CONFIG:
      g_value_set_object (value, self->config);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_guard_set_property (GObject      *object,
                       guint         prop_id,
                       const GValue *value,
                       GParamSpec   *pspec)
{
  KvGuard *self = KV_GUARD (object);

  switch (prop_id)
    {
    case PROP_CONFIG:
      self->config = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_guard_class_init (KvGuardClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = kv_guard_constructed;
  object_class->dispose = kv_guard_dispose;
  object_class->finalize = kv_guard_finalize;
  object_class->get_property = kv_guard_get_property;
  object_class->set_property = kv_guard_set_property;

  connection_quark = g_quark_from_static_string ("kv-guard-connection");

  /**
   * KvGuard:config:
   *
   * The limits, the token file and the allowed origins.
   */
  properties[PROP_CONFIG] =
    g_param_spec_object ("config", NULL, NULL,
                         KV_TYPE_CONFIG,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
kv_guard_init (KvGuard *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->uid = geteuid ();
  self->diag_fd = -1;
  g_queue_init (&self->closings);
  g_queue_init (&self->connections);
}

/**
 * kv_guard_new:
 * @config: (nullable): the settings, or %NULL for the defaults
 *
 * Creates a guard whose timers run in the thread-default main context of
 * the caller, which must be the one its SoupServer runs in.
 *
 * Returns: (transfer full): a new guard
 */
KvGuard *
kv_guard_new (KvConfig *config)
{
  g_return_val_if_fail (config == NULL || KV_IS_CONFIG (config), NULL);

  return g_object_new (KV_TYPE_GUARD, "config", config, NULL);
}

static gboolean
load_token (KvGuard  *self,
            GError  **error)
{
  const char *path = kv_config_get_token_file (self->config);
  g_autofree char *contents = NULL;
  g_autofree char *display = NULL;
  GStatBuf st;
  gsize len;

  if (self->token_loaded)
    return TRUE;
  if (path == NULL)
    {
      self->token_loaded = TRUE;
      return TRUE;
    }

  display = g_filename_display_name (path);
  if (g_stat (path, &st) != 0)
    {
      int errsv = errno;
      g_set_error (error, KV_GUARD_ERROR, KV_GUARD_ERROR_BAD_TOKEN_FILE,
                   _("cannot read the token file %s: %s"), display, g_strerror (errsv));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode) || (st.st_mode & 077) != 0)
    {
      g_set_error (error, KV_GUARD_ERROR, KV_GUARD_ERROR_BAD_TOKEN_FILE,
                   _("the token file %s must be a regular file that only its owner can read "
                     "(chmod 600)"), display);
      return FALSE;
    }
  if (!g_file_get_contents (path, &contents, &len, error))
    return FALSE;

  /* One line; the newline an editor adds is not part of the token. */
  g_strchomp (contents);
  len = strlen (contents);
  if (len == 0 || strpbrk (contents, " \t\r\n") != NULL)
    {
      g_set_error (error, KV_GUARD_ERROR, KV_GUARD_ERROR_BAD_TOKEN_FILE,
                   _("the token file %s must hold one token: one line, no spaces"), display);
      return FALSE;
    }

  sha256 (contents, len, self->token_digest);
  memset (contents, 0, len);
  self->have_token = TRUE;
  self->token_loaded = TRUE;
  return TRUE;
}

/**
 * kv_guard_check_address:
 * @self: a #KvGuard
 * @address: an address about to be listened on
 * @error: return location for a #GError
 *
 * Refuses to expose the store beyond this host without a token: listening
 * on an address that is neither a Unix socket nor the loopback requires
 * the token file. Reads the token file, when there is one.
 *
 * Returns: %TRUE if listening on @address is allowed
 */
gboolean
kv_guard_check_address (KvGuard         *self,
                        GSocketAddress  *address,
                        GError         **error)
{
  GInetAddress *inet;

  g_return_val_if_fail (KV_IS_GUARD (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET_ADDRESS (address), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!load_token (self, error))
    return FALSE;

  if (!G_IS_INET_SOCKET_ADDRESS (address))
    return TRUE;

  inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address));
  if (g_inet_address_get_is_loopback (inet) || self->have_token)
    return TRUE;

  {
    g_autofree char *text = g_inet_address_to_string (inet);

    g_set_error (error, KV_GUARD_ERROR, KV_GUARD_ERROR_TOKEN_REQUIRED,
                 _("refusing to listen on %s, which is not a loopback address, without "
                   "--token-file: anyone who can reach it could read and change every value"),
                 text);
    return FALSE;
  }
}

/**
 * kv_guard_request_started:
 * @self: a #KvGuard
 * @msg: a request whose headers are about to be read
 *
 * To be called from the server's #SoupServer::request-started handler: one
 * handler per signal, since every emission and handler takes GLib's signal
 * lock, which all threads share.
 */
void
kv_guard_request_started (KvGuard           *self,
                          SoupServerMessage *msg)
{
  on_request_started (NULL, msg, self);
}

/**
 * kv_guard_request_done:
 * @self: a #KvGuard
 * @msg: a request that was answered or aborted
 *
 * To be called from the server's #SoupServer::request-finished and
 * #SoupServer::request-aborted handlers (a 500 answer counts as aborted,
 * yet the connection may be kept).
 */
void
kv_guard_request_done (KvGuard           *self,
                       SoupServerMessage *msg)
{
  on_request_done (NULL, msg, self);
}

static gboolean
peer_is_owner (KvGuard *self,
               GSocket *socket)
{
  g_autoptr(GError) error = NULL;
  uid_t uid;

  if (self->diag_fd < 0 && g_socket_get_family (socket) != G_SOCKET_FAMILY_UNIX)
    self->diag_fd = kv_peer_open_diag (NULL);

  if (!kv_peer_get_uid (socket, self->diag_fd, &uid, &error))
    {
      /* Whoever it is, we cannot tell: refuse rather than guess. */
      if (!self->warned_peer_lookup)
        g_warning ("Cannot tell which user is connecting (%s); refusing such connections",
                   error->message);
      self->warned_peer_lookup = TRUE;
      return FALSE;
    }

  if (uid != self->uid)
    {
      g_debug ("Refusing a connection from uid %u", (guint) uid);
      return FALSE;
    }

  return TRUE;
}

/**
 * kv_guard_admit:
 * @self: a #KvGuard
 * @socket: a newly accepted connection
 * @stream: (out) (transfer full) (nullable): the stream to hand to
 *   soup_server_accept_iostream(), or %NULL when the guard turned the peer
 *   away (it answers and closes the connection itself)
 * @local: (out) (transfer full) (optional): the local address for libsoup
 * @remote: (out) (transfer full) (optional): the remote address for
 *   libsoup, which carries the guard's state of the connection
 * @error: return location for a #GError
 *
 * Decides whether the peer of @socket may talk to the server at all, and
 * sets its deadlines.
 *
 * Returns: %FALSE if @socket is unusable
 */
gboolean
kv_guard_admit (KvGuard         *self,
                GSocket         *socket,
                GIOStream      **stream,
                GSocketAddress **local,
                GSocketAddress **remote,
                GError         **error)
{
  g_autoptr(GSocketAddress) local_address = NULL;
  g_autoptr(GSocketAddress) remote_address = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  Connection *c;
  PeerKind kind;

  g_return_val_if_fail (KV_IS_GUARD (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (stream != NULL && local != NULL && remote != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  *stream = NULL;
  local_address = g_socket_get_local_address (socket, error);
  if (local_address == NULL)
    return FALSE;
  remote_address = g_socket_get_remote_address (socket, error);
  if (remote_address == NULL)
    return FALSE;

  if (!G_IS_INET_SOCKET_ADDRESS (local_address))
    kind = PEER_UNIX;
  else if (g_inet_address_get_is_loopback (
             g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local_address))))
    kind = PEER_LOOPBACK;
  else
    kind = PEER_REMOTE;

  if (kind != PEER_REMOTE && !peer_is_owner (self, socket))
    {
      g_autoptr(GBytes) response =
        build_response (SOUP_STATUS_FORBIDDEN, "forbidden", NULL, NULL, FALSE);

      /* libsoup never sees a byte from another user. */
      closing_start (self, socket, NULL, response);
      return TRUE;
    }

  /* libsoup reads and writes without blocking anyway; our own reads must
   * not wait either. */
  g_socket_set_blocking (socket, FALSE);
  /* No progress in either direction for this long ends the connection:
   * between requests through KvRequestFilter, while answering through
   * libsoup's own error. Longer than the request deadline, which answers
   * 408, and than the idle deadline, which KvRequestFilter checks as bytes
   * come. */
  g_socket_set_timeout (socket, MAX (self->idle_timeout_s, self->request_timeout_ms / 1000) + 1);
  if (kind != PEER_UNIX)
    g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);

  c = g_new0 (Connection, 1);
  c->link.data = c;
  g_queue_push_tail_link (&self->connections, &c->link);
  c->guard = g_object_ref (self);
  c->socket = g_object_ref (socket);
  c->kind = kind;
  if (kind == PEER_LOOPBACK)
    {
      GInetAddress *inet =
        g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local_address));
      g_autofree char *text = g_inet_address_to_string (inet);

      c->local_host = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6
                      ? g_strdup_printf ("[%s]", text) : g_steal_pointer (&text);
    }
  /* Our state rides on an address of our own: the one from the socket is
   * cached by the socket, which the state holds. */
  {
    gssize size = g_socket_address_get_native_size (remote_address);
    g_autofree guint8 *native = g_malloc (MAX (size, 1));

    if (size <= 0 || !g_socket_address_to_native (remote_address, native, size, error))
      {
        if (size <= 0)
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               "the peer's address cannot be copied");
        connection_free (c);
        return FALSE;
      }
    g_clear_object (&remote_address);
    remote_address = g_socket_address_new_from_native (native, size);
  }
  g_object_set_qdata_full (G_OBJECT (remote_address), connection_quark, c, connection_free);

  if (kind == PEER_UNIX)
    {
      /* libsoup 3.2 takes the local address for an IP address when an
       * HTTP/1.0 request has no Host; give it one. */
      g_clear_object (&local_address);
      local_address = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
    }

  /* libsoup reads the requests through the filter. */
  connection = g_socket_connection_factory_create_connection (socket);
  c->filter = kv_request_filter_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                                     self->max_header_size, self->max_headers);
  c->refused_id = g_signal_connect (c->filter, "refused", G_CALLBACK (on_refused), c);
  c->hung_up_id = g_signal_connect (c->filter, "hung-up", G_CALLBACK (on_hung_up), c);
  *stream = G_IO_STREAM (kv_socket_stream_new (connection, G_INPUT_STREAM (c->filter)));
  *local = g_steal_pointer (&local_address);
  *remote = g_steal_pointer (&remote_address);
  return TRUE;
}
