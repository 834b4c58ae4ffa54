/* kv-application.c: the crafty-kv daemon
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gi18n.h>
#include <glib-unix.h>

#include "kv-application.h"
#include "kv-config.h"
#include "http/kv-response.h"
#include "http/kv-server.h"
#include "kv-systemd.h"
#include "kv-worker.h"
#include "net/kv-listener.h"
#include "storage/kv-map-storage.h"

struct _KvApplication
{
  GApplication parent_instance;

  /* What the application builds, in this order: settings, the store, the
   * access policy, the listener, then the servers that share the store. */
  KvConfig *config;
  KvStorage *storage;
  KvAccessPolicy *policy;
  KvListener *listener;
  KvServer *server;     /* the main thread's */
  GPtrArray *workers;   /* (element-type KvWorker): threads beside the main one */
  guint sigint_id;
  guint sigterm_id;
  guint sighup_id;
  int exit_status;

  /* What the settings come from, kept for reloads: the key file read at
   * start (or none), and the command line. */
  char *config_path;
  GVariantDict *options;

  /* The Unix socket file this process created, removed when it stops. */
  char *unix_socket_path;
  dev_t unix_socket_dev;
  ino_t unix_socket_ino;

  guint watchdog_id;
  guint status_id;
  guint64 status_requests;
  gboolean notify_failed;

  /* Set once a signal has started a graceful stop. */
  GCancellable *stop_cancellable;
  const char *stop_signal;
  guint stop_pending;
  guint stop_abandoned;
  guint stop_timeout_id;
  gboolean stop_timed_out;
  gboolean stop_forced;
};

G_DEFINE_FINAL_TYPE (KvApplication, kv_application, G_TYPE_APPLICATION)

/* Errors are one line on standard error for a person at a terminal; under
 * systemd they go to the journal as warnings, with GLib's fields. @what
 * says what failed, unless @error says it already. */
static void
fail (KvApplication *self,
      const char    *what,
      const GError  *error)
{
  g_autofree char *message = NULL;

  message = what != NULL ? g_strdup_printf ("%s: %s", what, error->message)
                         : g_strdup (error->message);

  if (g_log_writer_is_journald (fileno (stderr)))
    g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "MESSAGE", "%s", message);
  else
    g_printerr ("%s: %s\n", g_get_prgname (), message);

  self->exit_status = EXIT_FAILURE;
}

/* Notifications are best effort: the service goes on without them, and a
 * broken NOTIFY_SOCKET is reported once, not at every watchdog ping. */
static void
notify (KvApplication *self,
        const char    *state)
{
  g_autoptr(GError) error = NULL;

  if (!kv_systemd_notify (state, &error) && !self->notify_failed)
    {
      g_warning ("Cannot notify the service manager: %s", error->message);
      self->notify_failed = TRUE;
    }
}

static char *
dup_status (KvApplication *self)
{
  KvStorageInfo info;

  kv_storage_get_info (self->storage, &info);
  return g_strdup_printf ("STATUS=Keys: %" G_GUINT64_FORMAT
                          ", requests served: %" G_GUINT64_FORMAT,
                          info.keys, kv_server_get_n_requests_served (self->server));
}

/* STATUS= follows the requests of every thread, at most once a second, and
 * is not sent again while the server is idle. */
static gboolean
send_status (gpointer user_data)
{
  KvApplication *self = user_data;
  guint64 requests = kv_server_get_n_requests_served (self->server);
  g_autofree char *status = NULL;

  if (requests == self->status_requests)
    return G_SOURCE_CONTINUE;

  self->status_requests = requests;
  status = dup_status (self);
  notify (self, status);

  return G_SOURCE_CONTINUE;
}

static gboolean
on_watchdog (gpointer user_data)
{
  notify (user_data, "WATCHDOG=1");

  return G_SOURCE_CONTINUE;
}

/* A Unix socket file left behind by a process that died is replaced; one
 * that a live process listens on, or any other kind of file, is not
 * touched. */
static gboolean
remove_stale_socket (const char      *path,
                     GSocketAddress  *address,
                     GError         **error)
{
  g_autoptr(GSocket) probe = NULL;
  g_autoptr(GError) local_error = NULL;
  struct stat st;

  if (lstat (path, &st) < 0)
    {
      int saved_errno = errno;

      if (saved_errno == ENOENT)
        return TRUE;
      g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                           g_strerror (saved_errno));
      return FALSE;
    }

  if (!S_ISSOCK (st.st_mode))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                           _("the file exists and is not a socket"));
      return FALSE;
    }

  probe = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                        error);
  if (probe == NULL)
    return FALSE;

  if (g_socket_connect (probe, address, NULL, &local_error))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                           _("another process is listening on it"));
      return FALSE;
    }

  if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  if (unlink (path) < 0 && errno != ENOENT)
    {
      int saved_errno = errno;

      g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                           g_strerror (saved_errno));
      return FALSE;
    }

  return TRUE;
}

static void
remove_unix_socket (KvApplication *self)
{
  struct stat st;

  if (self->unix_socket_path == NULL)
    return;

  /* Only the file this process made: another instance may have replaced
   * it since. */
  if (lstat (self->unix_socket_path, &st) == 0 &&
      st.st_dev == self->unix_socket_dev && st.st_ino == self->unix_socket_ino)
    unlink (self->unix_socket_path);

  g_clear_pointer (&self->unix_socket_path, g_free);
}

static GSocket *
open_unix_socket (KvApplication  *self,
                  const char     *path,
                  GError        **error)
{
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocket) socket = NULL;
  struct stat st;
  mode_t old_umask;
  gboolean bound;

  if (strlen (path) >= sizeof (((struct sockaddr_un *) NULL)->sun_path))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
                   _("the path is longer than %u bytes"),
                   (guint) sizeof (((struct sockaddr_un *) NULL)->sun_path) - 1);
      return NULL;
    }

  address = g_unix_socket_address_new (path);
  if (!remove_stale_socket (path, address, error))
    return NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                         error);
  if (socket == NULL)
    return NULL;

  /* Mode 0600 from the start: a chmod() after bind() would leave a moment
   * in which other users could connect. */
  old_umask = umask (0177);
  bound = g_socket_bind (socket, address, FALSE, error);
  umask (old_umask);
  if (!bound)
    return NULL;

  if (lstat (path, &st) == 0)
    {
      self->unix_socket_path = g_strdup (path);
      self->unix_socket_dev = st.st_dev;
      self->unix_socket_ino = st.st_ino;
    }

  if (!g_socket_listen (socket, error))
    return NULL;

  return g_steal_pointer (&socket);
}

static GSocket *
open_tcp_socket (const char  *address,
                 guint16      port,
                 GError     **error)
{
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string (address);
  g_autoptr(GSocketAddress) sockaddr = NULL;
  g_autoptr(GSocket) socket = NULL;

  /* handle_local_options() has checked the address already. */
  g_assert (inet != NULL);

  sockaddr = g_inet_socket_address_new (inet, port);
  socket = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL ||
      !g_socket_bind (socket, sockaddr, TRUE, error) ||
      !g_socket_listen (socket, error))
    return NULL;

  return g_steal_pointer (&socket);
}

/* Where to listen, the first that applies: the sockets systemd passed, the
 * Unix socket, the TCP address. @names gets a name for each socket that
 * systemd passed. */
static GPtrArray *
open_listen_sockets (KvApplication   *self,
                     char          ***names,
                     GError         **error)
{
  g_autoptr(GPtrArray) sockets = NULL;
  g_autoptr(GError) local_error = NULL;
  const char *unix_path = kv_config_get_unix_socket (self->config);
  const char *address = kv_config_get_address (self->config);
  guint16 port = kv_config_get_port (self->config);
  GSocket *socket;

  sockets = kv_systemd_take_listen_sockets (names, &local_error);
  if (sockets == NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                  _("cannot use the sockets passed by systemd: "));
      return NULL;
    }
  if (sockets->len > 0)
    return g_steal_pointer (&sockets);

  if (unix_path != NULL)
    {
      socket = open_unix_socket (self, unix_path, &local_error);
      if (socket == NULL)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                      _("cannot listen on the Unix socket %s: "), unix_path);
          return NULL;
        }
    }
  else
    {
      socket = open_tcp_socket (address, port, &local_error);
      if (socket == NULL)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                      _("cannot listen on %s port %u: "), address, port);
          return NULL;
        }
    }

  g_ptr_array_add (sockets, socket);
  return g_steal_pointer (&sockets);
}

/* As a client would write the socket's address: a URI, or unix:PATH. */
static char *
describe_socket (GSocket *socket)
{
  g_autoptr(GSocketAddress) address = g_socket_get_local_address (socket, NULL);

  if (G_IS_INET_SOCKET_ADDRESS (address))
    {
      GInetSocketAddress *inet_address = G_INET_SOCKET_ADDRESS (address);
      GInetAddress *inet = g_inet_socket_address_get_address (inet_address);
      g_autofree char *host = g_inet_address_to_string (inet);
      gboolean v6 = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6;

      return g_strdup_printf ("http://%s%s%s:%u/", v6 ? "[" : "", host, v6 ? "]" : "",
                              g_inet_socket_address_get_port (inet_address));
    }

  if (G_IS_UNIX_SOCKET_ADDRESS (address))
    {
      GUnixSocketAddress *unix_address = G_UNIX_SOCKET_ADDRESS (address);
      gboolean abstract = g_unix_socket_address_get_address_type (unix_address) !=
                          G_UNIX_SOCKET_ADDRESS_PATH;

      return g_strdup_printf ("unix:%s%.*s", abstract ? "@" : "",
                              (int) g_unix_socket_address_get_path_len (unix_address),
                              g_unix_socket_address_get_path (unix_address));
    }

  return g_strdup ("an unknown kind of socket");
}

static gboolean
write_port_file (KvApplication  *self,
                 GPtrArray      *sockets,
                 GError        **error)
{
  const char *port_file = kv_config_get_port_file (self->config);

  if (port_file == NULL)
    return TRUE;

  /* The first TCP socket's port; a Unix socket has none. */
  for (guint i = 0; i < sockets->len; i++)
    {
      g_autoptr(GSocketAddress) address = g_socket_get_local_address (sockets->pdata[i], error);
      g_autofree char *contents = NULL;

      if (address == NULL)
        return FALSE;
      if (!G_IS_INET_SOCKET_ADDRESS (address))
        continue;

      contents = g_strdup_printf ("%u\n",
                                  g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address)));
      return g_file_set_contents (port_file, contents, -1, error);
    }

  return TRUE;
}

static void
stop_done (KvApplication *self)
{
  const char *how;

  if (--self->stop_pending > 0)
    return;

  g_clear_handle_id (&self->stop_timeout_id, g_source_remove);

  if (self->stop_forced)
    {
      how = "at once on a second signal";
      self->exit_status = EXIT_FAILURE;
    }
  else if (self->stop_timed_out)
    how = "when the shutdown timeout ran out";
  else
    how = "gracefully";

  g_message ("Stopped %s after %s; requests served: %" G_GUINT64_FORMAT ", abandoned: %u",
             how, self->stop_signal, kv_server_get_n_requests_served (self->server),
             self->stop_abandoned);

  g_application_quit (G_APPLICATION (self));
}

static void
on_server_stopped (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  KvApplication *self = user_data;

  if (!kv_server_stop_finish (KV_SERVER (source), result, NULL))
    self->stop_abandoned += kv_server_get_n_requests_in_flight (KV_SERVER (source));

  stop_done (self);
}

static void
on_worker_stopped (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  KvApplication *self = user_data;
  g_autoptr(GError) error = NULL;

  if (!kv_worker_stop_finish (KV_WORKER (source), result, &error))
    self->stop_abandoned += kv_worker_get_n_requests_abandoned (KV_WORKER (source));

  stop_done (self);
}

static gboolean
on_stop_timeout (gpointer user_data)
{
  KvApplication *self = user_data;

  self->stop_timeout_id = 0;
  self->stop_timed_out = TRUE;
  g_cancellable_cancel (self->stop_cancellable);

  return G_SOURCE_REMOVE;
}

/* The first signal stops accepting and lets the requests in flight finish,
 * for up to the shutdown timeout; a second one stops waiting. */
static void
stop (KvApplication *self,
      const char    *signal_name)
{
  g_autofree char *state = NULL;
  guint timeout;
  guint in_flight;

  if (self->stop_cancellable != NULL)
    {
      self->stop_forced = TRUE;
      g_cancellable_cancel (self->stop_cancellable);
      return;
    }

  self->stop_signal = signal_name;
  self->stop_cancellable = g_cancellable_new ();
  g_clear_handle_id (&self->status_id, g_source_remove);

  /* No new connection from now on. One that systemd passed stays open in
   * the service manager, which queues new connections for the next
   * start. Then every thread drains its own requests; the last one to
   * finish ends the process. */
  kv_listener_close (self->listener);
  self->stop_pending = 1 + self->workers->len;
  kv_server_stop_async (self->server, self->stop_cancellable, on_server_stopped, self);
  for (guint i = 0; i < self->workers->len; i++)
    kv_worker_stop_async (g_ptr_array_index (self->workers, i), self->stop_cancellable,
                          on_worker_stopped, self);
  remove_unix_socket (self);

  in_flight = kv_server_get_n_requests_in_flight (self->server);
  for (guint i = 0; i < self->workers->len; i++)
    in_flight += kv_worker_get_n_requests_in_flight (g_ptr_array_index (self->workers, i));
  state = g_strdup_printf ("STOPPING=1\nSTATUS=Stopping, requests in flight: %u", in_flight);
  notify (self, state);

  timeout = kv_config_get_shutdown_timeout (self->config);
  self->stop_timeout_id = g_timeout_add (timeout * 1000, on_stop_timeout, self);
}

static gboolean
on_sigterm (gpointer user_data)
{
  stop (user_data, "SIGTERM");

  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigint (gpointer user_data)
{
  stop (user_data, "SIGINT");

  return G_SOURCE_CONTINUE;
}

/* Defaults, then the key file, then the command line: at start and on
 * every reload, so that the command line keeps overriding the file. */
static KvConfig *
build_config (const char    *path,
              GVariantDict  *options,
              GError       **error)
{
  g_autoptr(KvConfig) config = kv_config_new ();

  if ((path != NULL && !kv_config_load_file (config, path, error)) ||
      !kv_config_apply_options (config, options, error) ||
      !kv_config_check (config, error))
    return NULL;

  return g_steal_pointer (&config);
}

/* Everything a reload changes, it changes on every thread, or nothing
 * at all: a new file that does not load, a token file that cannot be
 * used, or a policy that would expose a listening socket without a token
 * leaves every running setting as it was. */
static gboolean
reload (KvApplication  *self,
        GError        **error)
{
  g_autoptr(KvConfig) config = NULL;
  g_autoptr(KvAccessPolicy) policy = NULL;
  g_autoptr(GPtrArray) changed = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) summary = g_string_new (NULL);
  g_auto(GStrv) changes = NULL;
  GPtrArray *sockets;
  KvLimits limits;

  /* Once a file has been read, that file stays the one; after a start
   * without one, a file created since is found. */
  if (self->config_path == NULL)
    self->config_path = kv_config_find_file ();

  config = build_config (self->config_path, self->options, error);
  if (config == NULL)
    return FALSE;

  policy = kv_access_policy_new (kv_config_get_token_file (config),
                                 kv_config_get_allow_origin (config), error);
  if (policy == NULL)
    return FALSE;

  sockets = kv_listener_get_sockets (self->listener);
  for (guint i = 0; i < sockets->len; i++)
    {
      g_autoptr(GSocketAddress) address = g_socket_get_local_address (sockets->pdata[i], error);

      if (address == NULL || !kv_access_policy_check_address (policy, address, error))
        return FALSE;
    }

  changes = kv_config_list_changes (self->config, config);
  for (guint i = 0; changes[i] != NULL; i++)
    {
      g_autofree char *before = kv_config_dup_value_text (self->config, changes[i]);
      g_autofree char *after = kv_config_dup_value_text (config, changes[i]);

      if (kv_config_needs_restart (changes[i]))
        {
          g_message ("Reload: %s needs a restart to change from %s to %s; still %s",
                     changes[i], before, after, before);
          kv_config_copy_setting (config, self->config, changes[i]);
        }
      else
        g_ptr_array_add (changed, g_strdup_printf ("%s %s → %s", changes[i], before, after));
    }

  /* The main server here, the workers in their own threads, each from
   * its next request on. */
  kv_config_get_limits (config, &limits);
  kv_server_set_limits (self->server, &limits);
  kv_server_set_policy (self->server, policy);
  for (guint i = 0; i < self->workers->len; i++)
    kv_worker_reconfigure (g_ptr_array_index (self->workers, i), &limits, policy);
  kv_listener_set_max_connections (self->listener, kv_config_get_max_connections (config));
  kv_map_storage_set_history (KV_MAP_STORAGE (self->storage), kv_config_get_watch_history (config),
                              kv_config_get_watch_history_size (config));
  g_set_object (&self->policy, policy);
  g_set_object (&self->config, config);

  if (changed->len == 0)
    g_string_append (summary, "no setting changed");
  for (guint i = 0; i < changed->len; i++)
    g_string_append_printf (summary, "%s%s", i > 0 ? ", " : "", (char *) changed->pdata[i]);
  /* A token file of the same name may hold a new token. */
  if (kv_config_get_token_file (config) != NULL &&
      !g_strv_contains ((const char * const *) changes, "token-file"))
    g_string_append_printf (summary, "; token read again from %s",
                            kv_config_get_token_file (config));
  g_message ("Reloaded the settings from %s: %s",
             self->config_path != NULL ? self->config_path : "the command line alone",
             summary->str);

  return TRUE;
}

/* SIGHUP, which `systemctl reload` sends, reloads the settings, telling
 * the service manager when the reload starts and ends. */
static gboolean
on_sighup (gpointer user_data)
{
  KvApplication *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *reloading = NULL;
  g_autofree char *status = NULL;
  g_autofree char *ready = NULL;

  if (self->stop_cancellable != NULL)
    {
      g_message ("Ignoring SIGHUP while stopping");
      return G_SOURCE_CONTINUE;
    }

  /* systemd 253 and later (Type=notify-reload) want the time the reload
   * began, on CLOCK_MONOTONIC; earlier ones ignore it. */
  reloading = g_strdup_printf ("RELOADING=1\nSTATUS=Reloading the settings\n"
                               "MONOTONIC_USEC=%" G_GINT64_FORMAT, g_get_monotonic_time ());
  notify (self, reloading);

  if (!reload (self, &error))
    g_warning ("Reload refused, the running settings stay: %s", error->message);

  status = dup_status (self);
  ready = g_strconcat ("READY=1\n", status, NULL);
  notify (self, ready);

  return G_SOURCE_CONTINUE;
}

static void
on_connection (GSocket  *socket,
               gpointer  user_data)
{
  KvApplication *self = user_data;
  g_autoptr(GError) error = NULL;

  if (self->server == NULL || !kv_server_accept_connection (self->server, socket, &error))
    g_debug ("Dropping a connection: %s", error != NULL ? error->message : "stopping");
}

static void
kv_application_startup (GApplication *application)
{
  KvApplication *self = KV_APPLICATION (application);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) sockets = NULL;
  g_autoptr(GPtrArray) where = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GBytes) forbidden = NULL;
  g_auto(GStrv) names = NULL;
  g_autofree char *listening = NULL;
  g_autofree char *ready = NULL;
  KvLimits limits;
  guint64 watchdog_usec;

  G_APPLICATION_CLASS (kv_application_parent_class)->startup (application);

  kv_config_get_limits (self->config, &limits);
  if (kv_config_get_data_dir (self->config) != NULL)
    {
      /* Loaded before listening: the first request sees the whole store. */
      KvMapStorage *storage = kv_map_storage_open (kv_config_get_data_dir (self->config),
                                                   kv_config_get_fsync (self->config),
                                                   kv_config_get_snapshot_log_size (self->config),
                                                   &error);

      if (storage == NULL)
        {
          fail (self, NULL, error);
          return;
        }
      self->storage = KV_STORAGE (storage);
    }
  else
    self->storage = KV_STORAGE (kv_map_storage_new ());
  kv_map_storage_set_history (KV_MAP_STORAGE (self->storage),
                              kv_config_get_watch_history (self->config),
                              kv_config_get_watch_history_size (self->config));
  self->policy = kv_access_policy_new (kv_config_get_token_file (self->config),
                                       kv_config_get_allow_origin (self->config), &error);
  if (self->policy == NULL)
    {
      fail (self, NULL, error);
      return;
    }

  /* The answer to another user's connection is the same every time. */
  forbidden = kv_response_build_refusal (SOUP_STATUS_FORBIDDEN, "forbidden", NULL, NULL, FALSE);
  self->listener = kv_listener_new (kv_config_get_max_connections (self->config), forbidden);

  sockets = open_listen_sockets (self, &names, &error);
  if (sockets == NULL)
    {
      fail (self, NULL, error);
      return;
    }

  for (guint i = 0; i < sockets->len; i++)
    {
      GSocket *socket = sockets->pdata[i];
      g_autofree char *description = describe_socket (socket);
      g_autoptr(GSocketAddress) address = g_socket_get_local_address (socket, &error);

      if (address == NULL ||
          !kv_access_policy_check_address (self->policy, address, &error) ||
          !kv_listener_add_socket (self->listener, socket, &error))
        {
          g_autofree char *what = g_strdup_printf (_("cannot listen on %s"), description);

          fail (self, what, error);
          return;
        }

      if (names != NULL)
        g_ptr_array_add (where, g_strdup_printf ("%s (%s)", description, names[i]));
      else
        g_ptr_array_add (where, g_steal_pointer (&description));
    }

  /* The main thread accepts and serves; each further thread serves the
   * connections the listener hands it in turn. */
  self->server = kv_server_new (self->storage, NULL, &limits, self->policy);
  kv_listener_add_target (self->listener, NULL, on_connection, self, NULL);
  for (guint i = 1; i < kv_config_get_threads (self->config); i++)
    {
      KvWorker *worker = kv_worker_new (self->storage, kv_server_get_stats (self->server),
                                        &limits, self->policy);

      kv_worker_attach (worker, self->listener);
      g_ptr_array_add (self->workers, worker);
    }

  if (!write_port_file (self, sockets, &error))
    {
      fail (self, _("cannot write the port file"), error);
      return;
    }

  self->sigint_id = g_unix_signal_add (SIGINT, on_sigint, self);
  self->sigterm_id = g_unix_signal_add (SIGTERM, on_sigterm, self);
  self->sighup_id = g_unix_signal_add (SIGHUP, on_sighup, self);

  g_ptr_array_add (where, NULL);
  listening = g_strjoinv (", ", (char **) where->pdata);
  g_message ("Listening on %s%s", listening, names != NULL ? ", passed by systemd" : "");

  if (kv_systemd_has_notify_socket ())
    {
      g_autofree char *status = dup_status (self);

      ready = g_strconcat ("READY=1\n", status, NULL);
      notify (self, ready);
      self->status_id = g_timeout_add_seconds (1, send_status, self);
    }

  /* Pings at half the interval, so that one late ping is not fatal. */
  watchdog_usec = kv_systemd_get_watchdog_usec ();
  if (watchdog_usec > 0)
    {
      guint interval_ms = MAX (MIN (watchdog_usec / 2000, G_MAXUINT), 1);

      g_debug ("Watchdog: pinging every %u ms", interval_ms);
      self->watchdog_id = g_timeout_add (interval_ms, on_watchdog, self);
    }

  /* A daemon has no window to keep it alive: hold until a signal arrives. */
  g_application_hold (application);
}

static void
kv_application_activate (GApplication *application)
{
  /* Everything happens in startup; activation has nothing to show. */
}

static void
kv_application_shutdown (GApplication *application)
{
  KvApplication *self = KV_APPLICATION (application);

  g_clear_handle_id (&self->sigint_id, g_source_remove);
  g_clear_handle_id (&self->sigterm_id, g_source_remove);
  g_clear_handle_id (&self->sighup_id, g_source_remove);
  g_clear_handle_id (&self->watchdog_id, g_source_remove);
  g_clear_handle_id (&self->status_id, g_source_remove);
  g_clear_handle_id (&self->stop_timeout_id, g_source_remove);
  g_clear_object (&self->stop_cancellable);
  remove_unix_socket (self);
  /* The listener first: nothing is on its way to a server any more. */
  if (self->listener != NULL)
    kv_listener_close (self->listener);
  g_clear_object (&self->listener);
  /* What is ready runs while the server is still there (see the same in
   * kv-worker.c: libsoup 3.2.3 can leave an idle behind a connection). */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&self->server);
  g_ptr_array_set_size (self->workers, 0);
  g_clear_object (&self->policy);
  g_clear_object (&self->storage);

  G_APPLICATION_CLASS (kv_application_parent_class)->shutdown (application);
}

/* The key file is --config FILE, or else the first crafty-kv.conf that
 * the XDG base directory lookup finds. */
static int
handle_options (KvApplication *self,
                GVariantDict  *options)
{
  g_autoptr(GError) error = NULL;

  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("%s %s\n", PACKAGE_NAME, VERSION);
      return EXIT_SUCCESS;
    }

  if (!g_variant_dict_lookup (options, "config", "^ay", &self->config_path))
    self->config_path = kv_config_find_file ();

  self->config = build_config (self->config_path, options, &error);
  if (self->config == NULL)
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return EXIT_FAILURE;
    }

  self->options = g_variant_dict_ref (options);
  return -1;
}

/* Where GOption stores the value of one option. */
typedef union
{
  gboolean flag;
  char *string;
  char **strv;
  double number;
} OptionValue;

/* Parses the command line into the dictionary that GApplication would
 * hand to handle-local-options, with crafty-kv's options only. */
static GVariantDict *
parse_command_line (char   ***arguments,
                    GError  **error)
{
  const GOptionEntry own_entries[] = {
    { "config", 'c', G_OPTION_FLAG_NONE, G_OPTION_ARG_FILENAME, NULL,
      N_("Read settings from FILE (default: the first crafty-kv/crafty-kv.conf found in "
         "$XDG_CONFIG_HOME, then in each of $XDG_CONFIG_DIRS)"),
      N_("FILE") },
    { "version", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_NONE, NULL,
      N_("Print the version and exit"), NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autofree GOptionEntry *settings = kv_config_dup_option_entries ();
  g_autoptr(GArray) entries = g_array_new (TRUE, TRUE, sizeof (GOptionEntry));
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariantDict) options = g_variant_dict_new (NULL);
  g_autofree OptionValue *values = NULL;
  gboolean parsed;

  for (const GOptionEntry *entry = settings; entry->long_name != NULL; entry++)
    g_array_append_vals (entries, entry, 1);
  for (const GOptionEntry *entry = own_entries; entry->long_name != NULL; entry++)
    g_array_append_vals (entries, entry, 1);

  values = g_new0 (OptionValue, entries->len);
  for (guint i = 0; i < entries->len; i++)
    {
      GOptionEntry *entry = &g_array_index (entries, GOptionEntry, i);

      entry->arg_data = &values[i];
      /* Any number can be given: only NaN tells that none was. */
      if (entry->arg == G_OPTION_ARG_DOUBLE)
        values[i].number = NAN;
    }

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, _("An in-memory key-value store served over HTTP."));
  g_option_context_add_main_entries (context, (GOptionEntry *) entries->data, GETTEXT_PACKAGE);
  parsed = g_option_context_parse_strv (context, arguments, error);

  for (guint i = 0; i < entries->len; i++)
    {
      const GOptionEntry *entry = &g_array_index (entries, GOptionEntry, i);
      OptionValue *value = &values[i];

      switch (entry->arg)
        {
        case G_OPTION_ARG_NONE:
          if (value->flag)
            g_variant_dict_insert (options, entry->long_name, "b", TRUE);
          break;
        case G_OPTION_ARG_STRING:
          if (value->string != NULL)
            g_variant_dict_insert (options, entry->long_name, "s", value->string);
          g_free (value->string);
          break;
        case G_OPTION_ARG_FILENAME:
          if (value->string != NULL)
            g_variant_dict_insert (options, entry->long_name, "^ay", value->string);
          g_free (value->string);
          break;
        case G_OPTION_ARG_STRING_ARRAY:
          if (value->strv != NULL)
            g_variant_dict_insert (options, entry->long_name, "^as", value->strv);
          g_strfreev (value->strv);
          break;
        case G_OPTION_ARG_DOUBLE:
          if (!isnan (value->number))
            g_variant_dict_insert (options, entry->long_name, "d", value->number);
          break;
        default:
          g_assert_not_reached ();
        }
    }

  if (!parsed)
    return NULL;

  /* crafty-kv takes no file or other argument. */
  if ((*arguments)[0] != NULL && (*arguments)[1] != NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   _("unexpected argument “%s”"), (*arguments)[1]);
      return NULL;
    }

  return g_steal_pointer (&options);
}

/* GApplication's own command line would list --gapplication-service and
 * --help-gapplication in --help, although crafty-kv is no D-Bus service:
 * this does what GApplication does (parse, handle the local options,
 * register, activate), with crafty-kv's options only. */
static gboolean
kv_application_local_command_line (GApplication   *application,
                                   char         ***arguments,
                                   int            *exit_status)
{
  KvApplication *self = KV_APPLICATION (application);
  g_autoptr(GVariantDict) options = NULL;
  g_autoptr(GError) error = NULL;

  options = parse_command_line (arguments, &error);
  if (options == NULL)
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      *exit_status = EXIT_FAILURE;
      return TRUE;
    }

  *exit_status = handle_options (self, options);
  if (*exit_status >= 0)
    return TRUE;

  /* Registering emits startup, where the daemon starts listening. */
  if (!g_application_register (application, NULL, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      *exit_status = EXIT_FAILURE;
      return TRUE;
    }

  g_application_activate (application);
  *exit_status = EXIT_SUCCESS;
  return TRUE;
}

static void
kv_application_finalize (GObject *object)
{
  KvApplication *self = KV_APPLICATION (object);

  g_clear_object (&self->config);
  g_clear_pointer (&self->options, g_variant_dict_unref);
  g_clear_pointer (&self->config_path, g_free);
  g_clear_pointer (&self->workers, g_ptr_array_unref);

  G_OBJECT_CLASS (kv_application_parent_class)->finalize (object);
}

static void
kv_application_class_init (KvApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  object_class->finalize = kv_application_finalize;
  app_class->local_command_line = kv_application_local_command_line;
  app_class->startup = kv_application_startup;
  app_class->activate = kv_application_activate;
  app_class->shutdown = kv_application_shutdown;
}

static void
kv_application_init (KvApplication *self)
{
  self->workers = g_ptr_array_new_with_free_func (g_object_unref);
}

/**
 * kv_application_new:
 *
 * Returns: (transfer full): the daemon
 */
KvApplication *
kv_application_new (void)
{
  return g_object_new (KV_TYPE_APPLICATION,
                       "application-id", KV_APPLICATION_ID,
                       "flags", G_APPLICATION_NON_UNIQUE,
                       NULL);
}

/**
 * kv_application_get_exit_status:
 *
 * Returns: the status the process should exit with once
 *   g_application_run() has returned
 */
int
kv_application_get_exit_status (KvApplication *self)
{
  g_return_val_if_fail (KV_IS_APPLICATION (self), EXIT_FAILURE);

  return self->exit_status;
}
