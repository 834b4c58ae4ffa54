/* kv-server.c: the HTTP front end of a KvStorage
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

  /* Requests in flight, and the graceful stop that waits for them. */
  GHashTable *in_flight;    /* (element-type SoupServerMessage) (owned) weak refs */
  guint64 n_served;
  GTask *stop_task;         /* (owned) (nullable) */
  GSource *stop_cancelled;  /* (owned) (nullable) */

  /* Limits, read once from the config: they are on every request's path. */
  gsize max_value_size;
  gsize max_key_size;
};

enum {
  PROP_0,
  PROP_STORAGE,
  PROP_CONFIG,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (KvServer, kv_server, G_TYPE_OBJECT)

static void track_requests   (KvServer *self);
static void untrack_requests (KvServer *self);

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

  track_requests (self);
}

static void
kv_server_dispose (GObject *object)
{
  KvServer *self = KV_SERVER (object);

  untrack_requests (self);

  if (self->soup != NULL)
    {
      soup_server_disconnect (self->soup);
      g_clear_object (&self->soup);
    }
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
 * context of the caller.
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
  return soup_server_listen (self->soup, sockaddr, 0, error);
}

/**
 * kv_server_get_port:
 *
 * Returns: the port of the first listener, or 0 when not listening
 */
guint16
kv_server_get_port (KvServer *self)
{
  g_autoslist(GUri) uris = NULL;

  g_return_val_if_fail (KV_IS_SERVER (self), 0);

  uris = soup_server_get_uris (self->soup);
  if (uris == NULL)
    return 0;

  return g_uri_get_port (uris->data);
}

/* Sockets of the caller's own: passed by systemd, or a Unix socket. */

/**
 * kv_server_listen_socket:
 * @self: a #KvServer
 * @socket: a bound, listening stream socket, TCP or Unix
 * @error: return location for a #GError
 *
 * Starts accepting connections on @socket, in the thread-default main
 * context of the caller.
 *
 * Returns: %TRUE on success
 */
gboolean
kv_server_listen_socket (KvServer  *self,
                         GSocket   *socket,
                         GError   **error)
{
  g_return_val_if_fail (KV_IS_SERVER (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return soup_server_listen_socket (self->soup, socket, 0, error);
}

/* Requests in flight and the graceful stop.
 *
 * SoupServer::request-started comes when a connection is accepted (for its
 * first request) and when the first bytes of each later request arrive, so
 * an idle keep-alive connection holds no request. Neither request-finished
 * nor request-aborted follows a request cut off before its request line
 * was read, though: a weak reference on each message sees it go, whatever
 * became of it. */

static void complete_stop (KvServer *self,
                           gboolean  drained);

/* libsoup closes a connection once a response that says so is sent: no
 * client sends another request on it while the server stops. */
static void
close_after_response (SoupServerMessage *msg)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Connection", "close");
}

static void
request_gone (gpointer  data,
              GObject  *where_the_message_was)
{
  KvServer *self = data;

  g_hash_table_remove (self->in_flight, where_the_message_was);
  if (self->stop_task != NULL && g_hash_table_size (self->in_flight) == 0)
    complete_stop (self, TRUE);
}

static void
on_request_started (SoupServer        *soup,
                    SoupServerMessage *msg,
                    gpointer           user_data)
{
  KvServer *self = user_data;

  if (g_hash_table_add (self->in_flight, msg))
    g_object_weak_ref (G_OBJECT (msg), request_gone, self);

  if (self->stop_task != NULL)
    close_after_response (msg);
}

static void
on_request_finished (SoupServer        *soup,
                     SoupServerMessage *msg,
                     gpointer           user_data)
{
  KvServer *self = user_data;

  self->n_served++;

  /* A line per request only when G_MESSAGES_DEBUG asks for it, and no
   * formatting otherwise: this is on every request's path. */
  if (!g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN))
    g_debug ("%s %s %u", soup_server_message_get_method (msg),
             g_uri_get_path (soup_server_message_get_uri (msg)),
             soup_server_message_get_status (msg));
}

static void
track_requests (KvServer *self)
{
  self->in_flight = g_hash_table_new (NULL, NULL);
  g_signal_connect (self->soup, "request-started", G_CALLBACK (on_request_started), self);
  g_signal_connect (self->soup, "request-finished", G_CALLBACK (on_request_finished), self);
}

static void
untrack_requests (KvServer *self)
{
  GHashTableIter iter;
  gpointer msg;

  if (self->in_flight == NULL)
    return;

  g_signal_handlers_disconnect_by_func (self->soup, on_request_started, self);
  g_signal_handlers_disconnect_by_func (self->soup, on_request_finished, self);

  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, &msg, NULL))
    g_object_weak_unref (msg, request_gone, self);
  g_clear_pointer (&self->in_flight, g_hash_table_unref);
}

/* libsoup 3.2 cannot close its listeners but keep the connections:
 * soup_server_disconnect() closes both. Put an unconnected socket in place
 * of each listening descriptor instead. The listening socket is released
 * (one that systemd passed stays open in the service manager, which queues
 * new connections for the next start), and the listener's watch sees a
 * hang-up on the placeholder, fails to accept and removes itself. */
static void
stop_listening (KvServer *self)
{
  g_autoptr(GSList) listeners = soup_server_get_listeners (self->soup);

  for (GSList *l = listeners; l != NULL; l = l->next)
    {
      int fd = g_socket_get_fd (l->data);
      int placeholder = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

      if (placeholder < 0 || dup3 (placeholder, fd, O_CLOEXEC) < 0)
        g_warning ("Cannot stop listening on file descriptor %d: %s", fd, g_strerror (errno));
      if (placeholder >= 0)
        close (placeholder);
    }
}

static gboolean
on_stop_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  complete_stop (user_data, FALSE);

  return G_SOURCE_REMOVE;
}

static void
complete_stop (KvServer *self,
               gboolean  drained)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->stop_task);

  if (self->stop_cancelled != NULL)
    {
      g_source_destroy (self->stop_cancelled);
      g_clear_pointer (&self->stop_cancelled, g_source_unref);
    }

  if (drained || !g_task_return_error_if_cancelled (task))
    g_task_return_boolean (task, TRUE);
}

/**
 * kv_server_stop_async:
 * @self: a #KvServer
 * @cancellable: (nullable): cancel to stop waiting for requests in flight
 * @callback: called once the server has stopped
 * @user_data: data for @callback
 *
 * Stops accepting connections, then waits until every request that was
 * being read or answered has been answered. Connections close after their
 * current response. Cancelling @cancellable ends the wait at once.
 */
void
kv_server_stop_async (KvServer            *self,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GHashTableIter iter;
  gpointer msg;

  g_return_if_fail (KV_IS_SERVER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kv_server_stop_async);

  if (self->stop_task != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The server is already stopping");
      return;
    }

  stop_listening (self);

  if (g_hash_table_size (self->in_flight) == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, &msg, NULL))
    close_after_response (msg);

  self->stop_task = g_steal_pointer (&task);
  if (cancellable != NULL)
    {
      self->stop_cancelled = g_cancellable_source_new (cancellable);
      g_source_set_callback (self->stop_cancelled, G_SOURCE_FUNC (on_stop_cancelled), self, NULL);
      g_source_attach (self->stop_cancelled, g_task_get_context (self->stop_task));
    }
}

/**
 * kv_server_stop_finish:
 * @self: a #KvServer
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE once every request was answered; %FALSE with
 *   %G_IO_ERROR_CANCELLED when the wait was cut short
 */
gboolean
kv_server_stop_finish (KvServer      *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == kv_server_stop_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * kv_server_get_n_requests_in_flight:
 *
 * Returns: how many requests are being read or answered
 */
guint
kv_server_get_n_requests_in_flight (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), 0);

  return g_hash_table_size (self->in_flight);
}

/**
 * kv_server_get_n_requests_served:
 *
 * Returns: how many responses were sent in full since the server started
 */
guint64
kv_server_get_n_requests_served (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), 0);

  return self->n_served;
}
