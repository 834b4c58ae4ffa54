/* kv-server.c: the HTTP front end of a KvStorage
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "kv-guard.h"
#include "kv-server.h"

#define KV_PREFIX "/kv/"
#define TEXT_PLAIN "text/plain; charset=utf-8"
#define ALLOWED_METHODS "GET, HEAD, PUT, DELETE"

struct _KvServer
{
  GObject parent_instance;

  KvStorage *storage;   /* (owned) */
  KvConfig *config;     /* (owned) */
  SoupServer *soup;     /* (owned) */

  /* Limits, read once from the config: they are on every request's path. */
  gsize max_value_size;
  gsize max_key_size;

  /* The transport: see kv_server_accept_connection(). */
  KvGuard *guard;               /* (owned) */
  KvListener *listener;         /* (owned) (nullable) until listening */
  GSocket *keepalive_peer;      /* (owned) (nullable) */
};

enum {
  PROP_0,
  PROP_STORAGE,
  PROP_CONFIG,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (KvServer, kv_server, G_TYPE_OBJECT)

/**
 * kv_server_status_for_error:
 * @error: an error from the storage layer
 *
 * Returns: the HTTP status that reports @error to a client
 */
guint
kv_server_status_for_error (const GError *error)
{
  if (error->domain == KV_STORAGE_ERROR)
    {
      switch ((KvStorageError) error->code)
        {
        case KV_STORAGE_ERROR_NOT_FOUND:
          return SOUP_STATUS_NOT_FOUND;
        case KV_STORAGE_ERROR_INVALID_ARGUMENT:
          return SOUP_STATUS_BAD_REQUEST;
        }
    }

  return SOUP_STATUS_INTERNAL_SERVER_ERROR;
}

/* Error bodies are one line of plain text, as a curl user reads them. */
static void
reply_error (SoupServerMessage *msg,
             guint              status,
             const char        *text)
{
  g_autofree char *body = g_strconcat (text, "\n", NULL);
  gsize len = strlen (body);

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "X-Content-Type-Options", "nosniff");
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, TEXT_PLAIN, SOUP_MEMORY_TAKE,
                                    g_steal_pointer (&body), len);
}

static void
reply_storage_error (SoupServerMessage *msg,
                     const GError      *error)
{
  reply_error (msg, kv_server_status_for_error (error), error->message);
}

static void
handle_get (KvServer          *self,
            SoupServerMessage *msg,
            const char        *key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvEntry) entry = NULL;
  g_autoptr(GBytes) value = NULL;
  SoupMessageHeaders *headers;
  const char *content_type;

  entry = kv_storage_get (self->storage, key, &error);
  if (entry == NULL)
    {
      reply_storage_error (msg, error);
      return;
    }

  /* libsoup 3.2 answers Range requests by itself, and a list of ranges can
   * make it repeat the value many times over: always send the whole value. */
  soup_message_headers_remove (soup_server_message_get_request_headers (msg), "Range");

  headers = soup_server_message_get_response_headers (msg);
  content_type = kv_entry_get_content_type (entry);
  soup_message_headers_replace (headers, "Content-Type",
                                content_type != NULL ? content_type : TEXT_PLAIN);
  soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");

  value = kv_entry_get_value (entry);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), value);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
handle_put (KvServer          *self,
            SoupServerMessage *msg,
            const char        *key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) value = NULL;
  g_autoptr(KvEntry) entry = NULL;

  value = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  if (g_bytes_get_size (value) == 0)
    {
      reply_error (msg, SOUP_STATUS_BAD_REQUEST, "value cannot be empty");
      return;
    }

  entry = kv_storage_set (self->storage, key, value, &error);
  if (entry == NULL)
    {
      reply_storage_error (msg, error);
      return;
    }

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
handle_delete (KvServer          *self,
               SoupServerMessage *msg,
               const char        *key)
{
  g_autoptr(GError) error = NULL;

  if (!kv_storage_delete (self->storage, key, &error))
    {
      reply_storage_error (msg, error);
      return;
    }

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
handle_kv (SoupServer        *server,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query,
           gpointer           user_data)
{
  KvServer *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  const char *key = path + strlen (KV_PREFIX);

  if (*key == '\0')
    reply_error (msg, SOUP_STATUS_BAD_REQUEST, "key cannot be empty");
  else if (method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD)
    handle_get (self, msg, key);
  else if (method == SOUP_METHOD_PUT)
    handle_put (self, msg, key);
  else if (method == SOUP_METHOD_DELETE)
    handle_delete (self, msg, key);
  else
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Allow", ALLOWED_METHODS);
      reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method not allowed");
    }
}

static void
handle_not_found (SoupServer        *server,
                  SoupServerMessage *msg,
                  const char        *path,
                  GHashTable        *query,
                  gpointer           user_data)
{
  reply_error (msg, SOUP_STATUS_NOT_FOUND, "not found");
}

static void setup_transport (KvServer *self);
static void teardown_transport (KvServer *self);
static KvListener *ensure_listener (KvServer *self);

static void
kv_server_constructed (GObject *object)
{
  KvServer *self = KV_SERVER (object);

  G_OBJECT_CLASS (kv_server_parent_class)->constructed (object);

  g_assert (self->storage != NULL);

  if (self->config == NULL)
    self->config = kv_config_new ();
  self->max_value_size = kv_config_get_max_value_size (self->config);
  self->max_key_size = kv_config_get_max_key_size (self->config);

  self->soup = soup_server_new ("server-header", PACKAGE_NAME "/" VERSION " ", NULL);
  /* Handler paths are matched as raw prefixes: "/kv" would also take "/kvx". */
  soup_server_add_handler (self->soup, KV_PREFIX, handle_kv, self, NULL);
  soup_server_add_handler (self->soup, NULL, handle_not_found, self, NULL);

  setup_transport (self);
}

static void
kv_server_dispose (GObject *object)
{
  KvServer *self = KV_SERVER (object);

  teardown_transport (self);
  if (self->soup != NULL)
    {
      soup_server_disconnect (self->soup);
      g_clear_object (&self->soup);
    }
  g_clear_object (&self->keepalive_peer);
  g_clear_object (&self->storage);
  g_clear_object (&self->config);

  G_OBJECT_CLASS (kv_server_parent_class)->dispose (object);
}

static void
kv_server_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  KvServer *self = KV_SERVER (object);

  switch (prop_id)
    {
    case PROP_STORAGE:
      g_value_set_object (value, self->storage);
      break;
    case PROP_CONFIG:
      g_value_set_object (value, self->config);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_server_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  KvServer *self = KV_SERVER (object);

  switch (prop_id)
    {
    case PROP_STORAGE:
      self->storage = g_value_dup_object (value);
      break;
    case PROP_CONFIG:
      self->config = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_server_class_init (KvServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = kv_server_constructed;
  object_class->dispose = kv_server_dispose;
  object_class->get_property = kv_server_get_property;
  object_class->set_property = kv_server_set_property;

  /**
   * KvServer:storage:
   *
   * The store that requests read and write.
   */
  properties[PROP_STORAGE] =
    g_param_spec_object ("storage", NULL, NULL,
                         KV_TYPE_STORAGE,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * KvServer:config:
   *
   * The settings, limits among them; the defaults when %NULL.
   */
  properties[PROP_CONFIG] =
    g_param_spec_object ("config", NULL, NULL,
                         KV_TYPE_CONFIG,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
kv_server_init (KvServer *self)
{
}

/**
 * kv_server_new:
 * @storage: the store to serve
 * @config: (nullable): the settings, or %NULL for the defaults
 *
 * Returns: (transfer full): a server that is not listening yet
 */
KvServer *
kv_server_new (KvStorage *storage,
               KvConfig  *config)
{
  g_return_val_if_fail (KV_IS_STORAGE (storage), NULL);
  g_return_val_if_fail (config == NULL || KV_IS_CONFIG (config), NULL);

  return g_object_new (KV_TYPE_SERVER, "storage", storage, "config", config, NULL);
}

/**
 * kv_server_get_storage:
 *
 * Returns: (transfer none): the store this server serves
 */
KvStorage *
kv_server_get_storage (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), NULL);

  return self->storage;
}

/**
 * kv_server_get_soup_server:
 *
 * Returns: (transfer none): the underlying #SoupServer
 */
SoupServer *
kv_server_get_soup_server (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), NULL);

  return self->soup;
}

/**
 * kv_server_listen:
 * @self: a #KvServer
 * @address: an IPv4 or IPv6 address literal
 * @port: a TCP port, or 0 for any free one
 * @error: return location for a #GError
 *
 * Starts listening on @address and @port, in the thread-default main
 * context of the caller. A non-loopback @address needs a token file.
 *
 * Returns: %TRUE on success
 */
gboolean
kv_server_listen (KvServer    *self,
                  const char  *address,
                  guint16      port,
                  GError     **error)
{
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) sockaddr = NULL;

  g_return_val_if_fail (KV_IS_SERVER (self), FALSE);
  g_return_val_if_fail (address != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  inet = g_inet_address_new_from_string (address);
  if (inet == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "“%s” is not an IP address", address);
      return FALSE;
    }

  sockaddr = g_inet_socket_address_new (inet, port);
  if (!kv_guard_check_address (self->guard, sockaddr, error))
    return FALSE;

  return kv_listener_add_address (ensure_listener (self), sockaddr, error) != NULL;
}

/**
 * kv_server_get_port:
 *
 * Returns: the port of the first TCP listener, or 0 when there is none
 */
guint16
kv_server_get_port (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), 0);

  /* Not soup_server_get_uris(): libsoup's only listener is the one of
   * setup_transport(), and it is not an IP socket. */
  return self->listener != NULL ? kv_listener_get_port (self->listener) : 0;
}

/* ---- The transport ----
 *
 * Connections are accepted by a KvListener, admitted by a KvGuard, and only
 * then handed to libsoup with soup_server_accept_iostream(). The guard
 * checks each request's headers before libsoup reads a body. */

static void
on_connection (GSocket  *socket,
               gpointer  user_data)
{
  KvServer *self = user_data;
  g_autoptr(GError) error = NULL;

  if (!kv_server_accept_connection (self, socket, &error))
    g_debug ("Dropping a connection: %s", error->message);
}

static KvListener *
ensure_listener (KvServer *self)
{
  if (self->listener == NULL)
    {
      self->listener = kv_listener_new (kv_config_get_max_connections (self->config));
      /* Our own main context: each connection is handed over at once,
       * none is left on its way when we are disposed. */
      kv_listener_add_target (self->listener, NULL, on_connection, self, NULL);
    }

  return self->listener;
}

static void
setup_transport (KvServer *self)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) end = NULL;
  int fds[2];

  self->guard = kv_guard_new (self->config);
  kv_guard_watch (self->guard, self->soup);

  /* libsoup 3.2 keeps a connection open after a response only while the
   * SoupServer has a listener of its own (request_finished() checks for
   * one), and we accept connections ourselves. Give it a listener that can
   * never accept anything: one end of a socket pair whose other end we
   * hold and never write to, so that it never becomes readable. */
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    {
      g_warning ("Cannot keep connections alive: %s", g_strerror (errno));
      return;
    }
  end = g_socket_new_from_fd (fds[0], &error);
  if (end == NULL)
    {
      close (fds[0]);
      close (fds[1]);
    }
  else
    {
      self->keepalive_peer = g_socket_new_from_fd (fds[1], &error);
      if (self->keepalive_peer == NULL)
        close (fds[1]);
    }
  if (error == NULL)
    soup_server_listen_socket (self->soup, end, 0, &error);
  if (error != NULL)
    g_warning ("Cannot keep connections alive: %s", error->message);
}

static void
teardown_transport (KvServer *self)
{
  if (self->listener != NULL)
    {
      kv_listener_close (self->listener);
      g_clear_object (&self->listener);
    }
  if (self->guard != NULL)
    {
      /* Connections still being answered and closed by the guard are
       * closed now: nothing of ours may stay on the main context. */
      g_object_run_dispose (G_OBJECT (self->guard));
      g_clear_object (&self->guard);
    }
}

/**
 * kv_server_listen_socket:
 * @self: a #KvServer
 * @socket: a socket that is already listening, e.g. passed by systemd
 * @error: return location for a #GError
 *
 * Starts accepting connections on @socket. A socket bound to a
 * non-loopback address needs a token file.
 *
 * Returns: %TRUE on success
 */
gboolean
kv_server_listen_socket (KvServer  *self,
                         GSocket   *socket,
                         GError   **error)
{
  g_autoptr(GSocketAddress) address = NULL;

  g_return_val_if_fail (KV_IS_SERVER (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  address = g_socket_get_local_address (socket, error);
  if (address == NULL || !kv_guard_check_address (self->guard, address, error))
    return FALSE;

  return kv_listener_add_socket (ensure_listener (self), socket, error);
}

/**
 * kv_server_get_listener:
 *
 * Returns: (transfer none) (nullable): the listener of kv_server_listen()
 *   and kv_server_listen_socket(), or %NULL before either was called
 */
KvListener *
kv_server_get_listener (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), NULL);

  return self->listener;
}

/**
 * kv_server_accept_connection:
 * @self: a #KvServer
 * @socket: a newly accepted connection
 * @error: return location for a #GError
 *
 * Serves @socket: the guard decides whether its peer may talk to us, and
 * libsoup reads its requests. Must be called in the main context @self was
 * created in; a KvListener feeding several servers, each in its own
 * thread, calls it there.
 *
 * Returns: %FALSE if @socket could not be served; it is closed then
 */
gboolean
kv_server_accept_connection (KvServer  *self,
                             GSocket   *socket,
                             GError   **error)
{
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GSocketAddress) remote = NULL;

  g_return_val_if_fail (KV_IS_SERVER (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!kv_guard_admit (self->guard, socket, &stream, &local, &remote, error))
    {
      g_socket_close (socket, NULL);
      return FALSE;
    }
  if (stream == NULL)
    return TRUE;  /* turned away: the guard answers and closes */

  return soup_server_accept_iostream (self->soup, stream, local, remote, error);
}
