/* kv-server.c: the HTTP front end of a KvStorage
 *
 * SPDX-License-Identifier: MIT
 *
 * A KvServer is a SoupServer, its handlers, the requests in flight and a
 * graceful stop. The way through a request goes one way, and so do the
 * calls: the listener accepts a socket and the server hands it to its
 * transport (net), which makes the connection libsoup reads; once the
 * request's headers are in, the access policy (access) says whether it
 * may be served; then libsoup calls the resource's handler (http), which
 * asks the store (storage) and answers through the response writer.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kv-request.h"
#include "kv-resources.h"
#include "kv-response.h"
#include "kv-server.h"
#include "kv-server-private.h"
#include "net/kv-transport.h"

struct _KvServer
{
  GObject parent_instance;

  KvStorage *storage;           /* (owned) */
  KvStats *stats;               /* (owned) */
  KvLimits limits;
  KvAccessPolicy *policy;       /* (owned) */
  SoupServer *soup;             /* (owned) */
  KvTransport *transport;       /* (owned) */
  GSocket *keepalive_peer;      /* (owned) (nullable) */

  /* Requests in flight, and the graceful stop that waits for them. */
  GHashTable *in_flight;        /* (element-type SoupServerMessage gint64) (owned): weak refs,
                                 * and when each request started */
  guint n_in_flight;            /* (atomic): its size, for other threads to read */
  GTask *stop_task;             /* (owned) (nullable) */
  GSource *stop_cancelled;      /* (owned) (nullable) */
  GSource *stop_drained;        /* (owned) (nullable) */

  /* Requests paused while the store answers. */
  GHashTable *calls;            /* (element-type SoupServerMessage KvCall) */

  /* Watch streams and long-polling reads, ended at once by a stop. */
  GHashTable *watchers;         /* (element-type gpointer KvWatcherFuncs) (unowned) */
  GSource *tick;                /* (owned) (nullable) once a second while there are some */
};

G_DEFINE_FINAL_TYPE (KvServer, kv_server, G_TYPE_OBJECT)

/* On a message whose duration says how long it waited, not how long it
 * took: a watch stream, a long-polling read. */
static GQuark waits_quark;

/* Everything outside /kv/ that has an answer. */
static const struct
{
  const char *path;
  KvResourceFunc func;
} routes[] = {
  { "/keys", kv_resource_keys },
  { "/txn", kv_resource_txn },
  { "/clear", kv_resource_clear },
  { "/export", kv_resource_export },
  { "/import", kv_resource_import },
  { "/healthz", kv_resource_health },
  { "/stats", kv_resource_stats },
  { "/metrics", kv_resource_metrics },
  { "/watch", kv_resource_watch },
};

void
kv_resource_method_not_allowed (SoupServerMessage *msg,
                                const char        *allowed)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Allow", allowed);
  kv_response_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method not allowed");
}

static void
handle_kv (SoupServer        *soup,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query,
           gpointer           user_data)
{
  kv_resource_kv (user_data, msg, path, query);
}

static void
handle_other (SoupServer        *soup,
              SoupServerMessage *msg,
              const char        *path,
              GHashTable        *query,
              gpointer           user_data)
{
  for (gsize i = 0; i < G_N_ELEMENTS (routes); i++)
    if (g_str_equal (path, routes[i].path))
      {
        routes[i].func (user_data, msg, path, query);
        return;
      }

  kv_response_error (msg, SOUP_STATUS_NOT_FOUND, "not found");
}

/* ---- Each request's headers ---- */

static KvAccessPeer
access_peer (KvConnection *connection)
{
  switch (kv_connection_get_peer (connection))
    {
    case KV_CONNECTION_PEER_UNIX:
      return KV_ACCESS_PEER_UNIX;
    case KV_CONNECTION_PEER_LOOPBACK:
      return KV_ACCESS_PEER_LOOPBACK;
    case KV_CONNECTION_PEER_REMOTE:
    default:
      return KV_ACCESS_PEER_REMOTE;
    }
}

/* As soon as libsoup has parsed the headers, before any body is read:
 * who asks, then what it would cost. */
static void
on_got_headers (SoupServerMessage *msg,
                gpointer           data)
{
  KvServer *self = data;
  KvConnection *connection = kv_connection_from_message (msg);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  KvAccessDenial denial;
  const char *path;
  const char *too_large = "value too large";
  guint64 max_body;

  if (connection == NULL)
    return;

  if (!kv_access_policy_accepts (self->policy, msg, access_peer (connection),
                                 kv_connection_get_local_host (connection), &denial))
    {
      kv_connection_refuse (connection, msg, denial.status, denial.text, denial.header);
      return;
    }

  /* A transaction or an import carries many values; everything else one
   * at most. */
  path = g_uri_get_path (soup_server_message_get_uri (msg));
  if (g_str_equal (path, "/txn"))
    max_body = self->limits.max_txn_size;
  else if (g_str_equal (path, "/import"))
    {
      max_body = self->limits.max_import_size;
      too_large = "import too large";
    }
  else
    max_body = self->limits.max_value_size;

  /* KvRequestFilter let through one Content-Length of digits at most. */
  if ((guint64) soup_message_headers_get_content_length (headers) > max_body)
    {
      kv_connection_refuse (connection, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, too_large,
                            NULL);
      return;
    }

  if (g_str_equal (path, "/import") && soup_server_message_get_method (msg) == SOUP_METHOD_POST &&
      soup_server_message_get_status (msg) == 0 &&
      !kv_resource_import_begin (self, msg, connection))
    return;

  if (soup_server_message_is_options_ping (msg))
    {
      /* "OPTIONS *" asks what the server as a whole offers. */
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Allow", KV_RESOURCE_KV_METHODS);
      soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
    }
  else
    kv_access_policy_add_cors (self->policy, msg, KV_RESOURCE_KV_METHODS);

  /* libsoup answers at once and skips the body when a status is set by
   * now and the client waits for "100 Continue"; the client may send the
   * body anyway, which KvRequestFilter would count as the body and libsoup
   * read as the next request. End the connection after this answer. */
  if (soup_message_headers_get_expectations (headers) & SOUP_EXPECTATION_CONTINUE &&
      soup_server_message_get_status (msg) != 0)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                  "Connection", "close");

  kv_connection_headers_accepted (connection, msg, max_body, too_large);
}

/* ---- Requests in flight and the graceful stop ----
 *
 * SoupServer::request-started comes when a connection is accepted (for its
 * first request) and when the first bytes of each later request arrive, so
 * an idle keep-alive connection holds no request. A request ends with
 * request-finished or request-aborted (its message may live on: the
 * connection keeps the last one while idle). Neither follows a request cut
 * off before its request line was read, though: a weak reference on each
 * message sees it go, whatever became of it. */

static void check_drained (KvServer *self);

/* libsoup closes a connection once a response that says so is sent: no
 * client sends another request on it while the server stops. */
static void
close_after_response (SoupServerMessage *msg)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Connection", "close");
}

static void
request_ended (KvServer *self,
               gpointer  msg)
{
  if (!g_hash_table_remove (self->in_flight, msg))
    return;
  g_atomic_int_set (&self->n_in_flight, g_hash_table_size (self->in_flight));
  if (self->stop_task != NULL)
    check_drained (self);
}

static void
request_gone (gpointer  data,
              GObject  *where_the_message_was)
{
  request_ended (data, where_the_message_was);
}

static void
on_request_started (SoupServer        *soup,
                    SoupServerMessage *msg,
                    gpointer           user_data)
{
  KvServer *self = user_data;
  KvConnection *connection = kv_connection_from_message (msg);

  if (g_hash_table_insert (self->in_flight, msg, GSIZE_TO_POINTER (g_get_monotonic_time ())))
    {
      g_object_weak_ref (G_OBJECT (msg), request_gone, self);
      g_atomic_int_set (&self->n_in_flight, g_hash_table_size (self->in_flight));
    }

  if (self->stop_task != NULL)
    close_after_response (msg);

  if (connection != NULL)
    {
      kv_connection_request_started (connection, msg);
      /* SoupServer connected its own got-headers handler just before:
       * early handlers run first, and must not change anything. */
      g_signal_connect (msg, "got-headers", G_CALLBACK (on_got_headers), self);
    }
}

void
kv_server_add_call (KvServer          *self,
                    SoupServerMessage *msg,
                    KvCall            *call)
{
  g_hash_table_insert (self->calls, msg, call);
}

void
kv_server_remove_call (KvServer          *self,
                       SoupServerMessage *msg)
{
  g_hash_table_remove (self->calls, msg);
}

static void
abandon_call (KvServer          *self,
              SoupServerMessage *msg)
{
  KvCall *call = g_hash_table_lookup (self->calls, msg);

  if (call != NULL)
    {
      g_hash_table_remove (self->calls, msg);
      kv_call_abandon (call);
    }
}

/* Answered, or its connection went: the message itself may live on. */
static void
on_request_aborted (SoupServer        *soup,
                    SoupServerMessage *msg,
                    gpointer           user_data)
{
  KvServer *self = user_data;
  KvConnection *connection = kv_connection_from_message (msg);

  abandon_call (self, msg);

  if (connection != NULL)
    kv_connection_request_done (connection, msg);

  if (g_hash_table_contains (self->in_flight, msg))
    {
      g_object_weak_unref (G_OBJECT (msg), request_gone, self);
      request_ended (self, msg);
    }
}

static void
on_request_finished (SoupServer        *soup,
                     SoupServerMessage *msg,
                     gpointer           user_data)
{
  KvServer *self = user_data;
  gpointer started;

  kv_stats_add (self->stats, KV_STAT_REQUESTS, 1);
  /* From its first byte (for a connection's first request, from accept)
   * to the end of its answer. */
  if (g_hash_table_lookup_extended (self->in_flight, msg, NULL, &started) &&
      g_object_get_qdata (G_OBJECT (msg), waits_quark) == NULL)
    kv_stats_record_request (self->stats, soup_server_message_get_method (msg),
                             soup_server_message_get_status (msg),
                             g_get_monotonic_time () - (gint64) GPOINTER_TO_SIZE (started));
  on_request_aborted (soup, msg, user_data);

  /* A line per request only when G_MESSAGES_DEBUG asks for it, and no
   * formatting otherwise: this is on every request's path. */
  if (!g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN))
    g_debug ("%s %s %u", soup_server_message_get_method (msg),
             g_uri_get_path (soup_server_message_get_uri (msg)),
             soup_server_message_get_status (msg));
}

static void
untrack_requests (KvServer *self)
{
  GHashTableIter iter;
  gpointer msg;

  if (self->in_flight == NULL)
    return;

  g_signal_handlers_disconnect_by_data (self->soup, self);

  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, &msg, NULL))
    g_object_weak_unref (msg, request_gone, self);
  g_clear_pointer (&self->in_flight, g_hash_table_unref);
  g_atomic_int_set (&self->n_in_flight, 0);
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* ---- Watch streams and long-polling reads ---- */

/* A watcher may end, and go, when told anything: tell a copy. */
static GPtrArray *
list_watchers (KvServer *self)
{
  GPtrArray *watchers = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer watcher;

  g_hash_table_iter_init (&iter, self->watchers);
  while (g_hash_table_iter_next (&iter, &watcher, NULL))
    g_ptr_array_add (watchers, watcher);
  return watchers;
}

static gboolean
on_tick (gpointer data)
{
  KvServer *self = data;
  g_autoptr(GPtrArray) watchers = list_watchers (self);
  gint64 now = g_get_monotonic_time ();

  for (guint i = 0; i < watchers->len; i++)
    {
      const KvWatcherFuncs *funcs = g_hash_table_lookup (self->watchers, watchers->pdata[i]);

      if (funcs != NULL && funcs->tick != NULL)
        funcs->tick (watchers->pdata[i], now);
    }

  return G_SOURCE_CONTINUE;
}

/**
 * kv_server_add_watcher:
 * @self: a #KvServer
 * @watcher: an answer that waits for changes
 * @funcs: (not nullable): how to end it, a static table
 *
 * Until kv_server_remove_watcher(), a stop ends @watcher at once rather
 * than waiting for it, and @funcs' tick runs once a second.
 */
void
kv_server_add_watcher (KvServer             *self,
                       gpointer              watcher,
                       const KvWatcherFuncs *funcs)
{
  g_hash_table_insert (self->watchers, watcher, (gpointer) funcs);
  if (funcs->tick != NULL && self->tick == NULL)
    {
      self->tick = g_timeout_source_new_seconds (1);
      g_source_set_callback (self->tick, on_tick, self, NULL);
      g_source_attach (self->tick, g_main_context_get_thread_default ());
    }
}

void
kv_server_remove_watcher (KvServer *self,
                          gpointer  watcher)
{
  if (self->watchers == NULL)
    return;
  g_hash_table_remove (self->watchers, watcher);
  if (g_hash_table_size (self->watchers) == 0)
    clear_source (&self->tick);
}

/**
 * kv_server_exclude_from_durations:
 * @msg: a request whose answer waits for changes
 *
 * Leaves @msg out of the request duration histogram, which would
 * otherwise count how long it waited.
 */
void
kv_server_exclude_from_durations (SoupServerMessage *msg)
{
  g_object_set_qdata (G_OBJECT (msg), waits_quark, GINT_TO_POINTER (TRUE));
}

/**
 * kv_server_is_stopping:
 *
 * Returns: whether a stop has begun: no new watcher should wait
 */
gboolean
kv_server_is_stopping (KvServer *self)
{
  return self->stop_task != NULL;
}

/* Each watcher removes itself, maybe at once. */
static void
stop_watchers (KvServer *self,
               gboolean  now)
{
  g_autoptr(GPtrArray) watchers = NULL;

  if (self->watchers == NULL)
    return;
  watchers = list_watchers (self);
  for (guint i = 0; i < watchers->len; i++)
    {
      const KvWatcherFuncs *funcs = g_hash_table_lookup (self->watchers, watchers->pdata[i]);

      if (funcs != NULL)
        funcs->stop (watchers->pdata[i], now);
    }
}

static void
complete_stop (KvServer *self,
               gboolean  drained)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->stop_task);

  clear_source (&self->stop_cancelled);
  clear_source (&self->stop_drained);
  /* The wait ran out: what still waits for changes is cut off. */
  if (!drained)
    stop_watchers (self, TRUE);

  if (task == NULL)
    return;
  if (drained || !g_task_return_error_if_cancelled (task))
    g_task_return_boolean (task, TRUE);
}

static void
on_flushed (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(KvServer) self = user_data;

  if (kv_transport_flush_finish (KV_TRANSPORT (source), result, NULL))
    complete_stop (self, TRUE);
}

/* Once every request is answered, the connections libsoup is closing (and
 * those left idle) are closed gently: a client's next request, already on
 * its way, is drained rather than met with a reset. */
static gboolean
on_drained (gpointer user_data)
{
  KvServer *self = user_data;

  g_clear_pointer (&self->stop_drained, g_source_unref);
  kv_transport_close_idle (self->transport);
  kv_transport_flush_async (self->transport, g_task_get_cancellable (self->stop_task),
                            on_flushed, g_object_ref (self));

  return G_SOURCE_REMOVE;
}

static void
check_drained (KvServer *self)
{
  if (g_hash_table_size (self->in_flight) > 0 || self->stop_drained != NULL)
    return;

  /* After libsoup is done with the request that ended: it closes that
   * connection once we return. */
  self->stop_drained = g_idle_source_new ();
  g_source_set_callback (self->stop_drained, on_drained, self, NULL);
  g_source_attach (self->stop_drained, g_task_get_context (self->stop_task));
}

static gboolean
on_stop_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  complete_stop (user_data, FALSE);

  return G_SOURCE_REMOVE;
}

/**
 * kv_server_stop_async:
 * @self: a #KvServer
 * @cancellable: (nullable): cancel to stop waiting for requests in flight
 * @callback: called once the server has stopped
 * @user_data: data for @callback
 *
 * Waits until every request that was being read or answered has been
 * answered, and the connections are closed. Each connection closes after
 * its current response; idle ones close at once. Cancelling @cancellable
 * ends the wait at once. The listener that feeds the server is the
 * caller's to close.
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

  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, &msg, NULL))
    close_after_response (msg);

  self->stop_task = g_steal_pointer (&task);
  /* Watch streams and long-polling reads would wait for changes: they end
   * now, each with a last answer. */
  stop_watchers (self, FALSE);
  if (cancellable != NULL)
    {
      self->stop_cancelled = g_cancellable_source_new (cancellable);
      g_source_set_callback (self->stop_cancelled, G_SOURCE_FUNC (on_stop_cancelled), self, NULL);
      g_source_attach (self->stop_cancelled, g_task_get_context (self->stop_task));
    }
  check_drained (self);
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

/* ---- The object ---- */

static KvTransportLimits
transport_limits (const KvLimits *limits)
{
  return (KvTransportLimits) {
    .max_body_size = MAX (limits->max_value_size, limits->max_txn_size),
    .max_header_size = limits->max_header_size,
    .max_headers = limits->max_headers,
    .request_timeout = limits->request_timeout,
    .idle_timeout = limits->idle_timeout,
  };
}

/* libsoup 3.2 keeps a connection open after a response only while the
 * SoupServer has a listener of its own (request_finished() checks for
 * one), and we accept connections ourselves. Give it a listener that can
 * never accept anything: one end of a socket pair whose other end we hold
 * and never write to, so that it never becomes readable. */
static void
keep_connections_alive (KvServer *self)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) end = NULL;
  int fds[2];

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
kv_server_dispose (GObject *object)
{
  KvServer *self = KV_SERVER (object);

  complete_stop (self, FALSE);
  stop_watchers (self, TRUE);
  clear_source (&self->tick);
  g_clear_pointer (&self->watchers, g_hash_table_unref);
  if (self->calls != NULL)
    {
      GHashTableIter iter;
      gpointer call;

      /* Their answers, when the store gives them, go nowhere. */
      g_hash_table_iter_init (&iter, self->calls);
      while (g_hash_table_iter_next (&iter, NULL, &call))
        kv_call_abandon (call);
      g_clear_pointer (&self->calls, g_hash_table_unref);
    }
  untrack_requests (self);
  if (self->soup != NULL)
    {
      soup_server_disconnect (self->soup);
      g_clear_object (&self->soup);
    }
  /* Connections still being answered and closed by the transport are
   * closed now: nothing of ours may stay on the main context. */
  if (self->transport != NULL)
    {
      g_object_run_dispose (G_OBJECT (self->transport));
      g_clear_object (&self->transport);
    }
  g_clear_object (&self->keepalive_peer);
  g_clear_object (&self->storage);
  g_clear_object (&self->stats);
  g_clear_object (&self->policy);

  G_OBJECT_CLASS (kv_server_parent_class)->dispose (object);
}

static void
kv_server_class_init (KvServerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = kv_server_dispose;

  waits_quark = g_quark_from_static_string ("kv-server-waits");
}

static void
kv_server_init (KvServer *self)
{
}

/**
 * kv_server_new:
 * @storage: the store to serve
 * @stats: (nullable): counters shared with other servers of @storage, or
 *   %NULL for counters of its own
 * @limits: the limits of every request
 * @policy: (nullable): who may ask; %NULL lets in only the owner on the
 *   loopback or a Unix socket, without a token or other origins
 *
 * Creates a server whose sources run in the thread-default main context
 * of the caller: every call on it must be made there.
 *
 * Returns: (transfer full): a server with no connection yet
 */
KvServer *
kv_server_new (KvStorage      *storage,
               KvStats        *stats,
               const KvLimits *limits,
               KvAccessPolicy *policy)
{
  KvServer *self;
  KvTransportLimits net_limits;

  g_return_val_if_fail (KV_IS_STORAGE (storage), NULL);
  g_return_val_if_fail (stats == NULL || KV_IS_STATS (stats), NULL);
  g_return_val_if_fail (limits != NULL, NULL);
  g_return_val_if_fail (policy == NULL || KV_IS_ACCESS_POLICY (policy), NULL);

  self = g_object_new (KV_TYPE_SERVER, NULL);
  self->storage = g_object_ref (storage);
  self->stats = stats != NULL ? g_object_ref (stats) : kv_stats_new ();
  self->limits = *limits;
  self->policy = policy != NULL ? g_object_ref (policy) : kv_access_policy_new (NULL, NULL, NULL);

  self->soup = soup_server_new ("server-header", PACKAGE_NAME "/" VERSION " ",
                                "raw-paths", TRUE,
                                NULL);
  soup_server_add_handler (self->soup, KV_RESOURCE_KV_PREFIX, handle_kv, self, NULL);
  soup_server_add_handler (self->soup, NULL, handle_other, self, NULL);

  /* One handler per signal: every emission and handler takes GLib's
   * signal lock, which all threads share. */
  self->in_flight = g_hash_table_new (NULL, NULL);
  self->calls = g_hash_table_new (NULL, NULL);
  self->watchers = g_hash_table_new (NULL, NULL);
  g_signal_connect (self->soup, "request-started", G_CALLBACK (on_request_started), self);
  g_signal_connect (self->soup, "request-finished", G_CALLBACK (on_request_finished), self);
  g_signal_connect (self->soup, "request-aborted", G_CALLBACK (on_request_aborted), self);

  net_limits = transport_limits (limits);
  self->transport = kv_transport_new (&net_limits, kv_response_build_refusal);
  keep_connections_alive (self);

  return self;
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
 * kv_server_get_stats:
 *
 * Returns: (transfer none): the request counters
 */
KvStats *
kv_server_get_stats (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), NULL);

  return self->stats;
}

/**
 * kv_server_get_limits:
 *
 * Returns: (transfer none): the limits every request is held to
 */
const KvLimits *
kv_server_get_limits (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), NULL);

  return &self->limits;
}

/**
 * kv_server_set_limits:
 * @self: a #KvServer
 * @limits: new limits
 *
 * Applies @limits from the next request on (a new key file on SIGHUP).
 */
void
kv_server_set_limits (KvServer       *self,
                      const KvLimits *limits)
{
  KvTransportLimits net_limits;

  g_return_if_fail (KV_IS_SERVER (self));
  g_return_if_fail (limits != NULL);

  self->limits = *limits;
  net_limits = transport_limits (limits);
  kv_transport_set_limits (self->transport, &net_limits);
}

/**
 * kv_server_set_policy:
 * @self: a #KvServer
 * @policy: the new policy
 *
 * Applies @policy from the next request on.
 */
void
kv_server_set_policy (KvServer       *self,
                      KvAccessPolicy *policy)
{
  g_return_if_fail (KV_IS_SERVER (self));
  g_return_if_fail (KV_IS_ACCESS_POLICY (policy));

  g_set_object (&self->policy, policy);
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

/* A connection ends when libsoup lets go of it, in the server's thread. */
static void
on_connection_gone (gpointer  data,
                    GObject  *where_the_connection_was)
{
  g_autoptr(KvStats) stats = data;

  kv_stats_add_open_connections (stats, -1);
}

/**
 * kv_server_accept_connection:
 * @self: a #KvServer
 * @socket: a newly accepted connection whose peer may talk to us
 * @error: return location for a #GError
 *
 * Serves @socket: the transport makes a connection of it and libsoup reads
 * its requests. A KvListener feeding several servers, each in its own
 * thread, calls this in the server's thread.
 *
 * Returns: %FALSE if @socket could not be served; it is closed then
 */
gboolean
kv_server_accept_connection (KvServer  *self,
                             GSocket   *socket,
                             GError   **error)
{
  g_autoptr(KvConnection) connection = NULL;

  g_return_val_if_fail (KV_IS_SERVER (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  connection = kv_transport_add (self->transport, socket, error);
  if (connection == NULL)
    {
      g_socket_close (socket, NULL);
      return FALSE;
    }

  kv_stats_add (self->stats, KV_STAT_CONNECTIONS, 1);
  kv_stats_add_open_connections (self->stats, 1);
  g_object_weak_ref (G_OBJECT (connection), on_connection_gone, g_object_ref (self->stats));
  return kv_connection_serve (connection, self->soup, error);
}

/**
 * kv_server_get_n_requests_in_flight:
 *
 * Safe to call from any thread.
 *
 * Returns: how many requests are being read or answered
 */
guint
kv_server_get_n_requests_in_flight (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), 0);

  return g_atomic_int_get (&self->n_in_flight);
}

/**
 * kv_server_get_n_requests_served:
 *
 * Returns: how many responses were sent in full since the server started,
 *   by this server and by those that share its #KvStats
 */
guint64
kv_server_get_n_requests_served (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), 0);

  return kv_stats_get (self->stats, KV_STAT_REQUESTS);
}
