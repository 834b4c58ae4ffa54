/* kv-test-utils.c: real servers and daemons for the test suites
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>

#include "http/kv-response.h"
#include "storage/kv-map-storage.h"
#include "kv-test-utils.h"

struct _KvTestServer
{
  KvStorage *storage;
  KvConfig *config;
  GSocket *socket;              /* (nullable) */
  KvAccessPolicy *policy;
  KvStats *stats;
  KvWorker *worker;
  guint16 port;

  /* The listener accepts in a thread of its own, as the daemon's main
   * thread does, while the test's thread blocks in its clients. */
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  KvListener *listener;
  GError *error;
  GMutex lock;
  GCond cond;
  gboolean ready;
};

static gboolean
listen_here (KvTestServer  *ts,
             GError       **error)
{
  g_autoptr(GBytes) forbidden = NULL;
  g_autoptr(GSocketAddress) address = NULL;

  forbidden = kv_response_build_refusal (SOUP_STATUS_FORBIDDEN, "forbidden", NULL, NULL, FALSE);
  ts->listener = kv_listener_new (kv_config_get_max_connections (ts->config), forbidden);
  if (ts->socket != NULL)
    {
      address = g_socket_get_local_address (ts->socket, error);
      return address != NULL && kv_access_policy_check_address (ts->policy, address, error) &&
             kv_listener_add_socket (ts->listener, ts->socket, error);
    }

  address = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  return kv_listener_add_address (ts->listener, address, error) != NULL;
}

static gpointer
listener_thread (gpointer data)
{
  KvTestServer *ts = data;

  g_main_context_push_thread_default (ts->context);

  if (listen_here (ts, &ts->error))
    {
      ts->port = kv_listener_get_port (ts->listener);
      kv_worker_attach (ts->worker, ts->listener);
    }

  g_mutex_lock (&ts->lock);
  ts->ready = TRUE;
  g_cond_signal (&ts->cond);
  g_mutex_unlock (&ts->lock);

  if (ts->error == NULL)
    g_main_loop_run (ts->loop);

  /* Nothing may be on its way to the worker once we are done. */
  kv_listener_close (ts->listener);
  g_assert_finalize_object (g_steal_pointer (&ts->listener));
  while (g_main_context_iteration (ts->context, FALSE))
    ;
  g_main_context_pop_thread_default (ts->context);
  return NULL;
}

static void kv_test_server_free (KvTestServer *ts);

/**
 * kv_test_server_start_full:
 * @storage: the store to serve
 * @config: (nullable): settings, or %NULL for the defaults
 * @socket: (nullable): a listening socket to serve, or %NULL for
 *   127.0.0.1 on a free port
 * @error: return location for a #GError
 *
 * Builds what the daemon builds, on a smaller scale: an access policy, a
 * listener in a thread of its own, and one KvWorker serving what it
 * accepts, so that tests can use blocking clients.
 *
 * Returns: (transfer full) (nullable): a running server, or %NULL if the
 *   settings refuse to listen where asked
 */
KvTestServer *
kv_test_server_start_full (KvStorage  *storage,
                           KvConfig   *config,
                           GSocket    *socket,
                           GError    **error)
{
  KvTestServer *ts;
  KvLimits limits;

  ts = g_new0 (KvTestServer, 1);
  ts->storage = g_object_ref (storage);
  ts->config = config != NULL ? g_object_ref (config) : kv_config_new ();
  ts->socket = socket != NULL ? g_object_ref (socket) : NULL;
  g_mutex_init (&ts->lock);
  g_cond_init (&ts->cond);

  ts->policy = kv_access_policy_new (kv_config_get_token_file (ts->config),
                                     kv_config_get_allow_origin (ts->config), error);
  if (ts->policy == NULL)
    {
      kv_test_server_free (ts);
      return NULL;
    }

  kv_config_get_limits (ts->config, &limits);
  ts->stats = kv_stats_new ();
  ts->worker = kv_worker_new (storage, ts->stats, &limits, ts->policy);

  ts->context = g_main_context_new ();
  ts->loop = g_main_loop_new (ts->context, FALSE);
  ts->thread = g_thread_new ("kv-test-listener", listener_thread, ts);
  g_mutex_lock (&ts->lock);
  while (!ts->ready)
    g_cond_wait (&ts->cond, &ts->lock);
  g_mutex_unlock (&ts->lock);

  if (ts->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&ts->error));
      kv_test_server_free (ts);
      return NULL;
    }

  return ts;
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
kv_test_server_free (KvTestServer *ts)
{
  if (ts->thread != NULL)
    {
      g_main_context_invoke (ts->context, quit_loop, ts->loop);
      g_thread_join (ts->thread);
      g_main_loop_unref (ts->loop);
      g_main_context_unref (ts->context);
    }
  /* The worker, and with it its server, must not be kept alive by
   * anything but us. */
  if (ts->worker != NULL)
    g_assert_finalize_object (g_steal_pointer (&ts->worker));
  g_clear_object (&ts->policy);
  g_clear_object (&ts->stats);
  g_clear_object (&ts->socket);
  g_object_unref (ts->config);
  g_object_unref (ts->storage);
  g_mutex_clear (&ts->lock);
  g_cond_clear (&ts->cond);
  g_free (ts);
}

/**
 * kv_test_server_start_with_config:
 * @storage: the store to serve
 * @config: (nullable): settings, or %NULL for the defaults
 *
 * Returns: (transfer full): a running server on 127.0.0.1
 */
KvTestServer *
kv_test_server_start_with_config (KvStorage *storage,
                                  KvConfig  *config)
{
  g_autoptr(GError) error = NULL;
  KvTestServer *ts = kv_test_server_start_full (storage, config, NULL, &error);

  g_assert_no_error (error);
  return ts;
}

KvTestServer *
kv_test_server_start (KvStorage *storage)
{
  return kv_test_server_start_with_config (storage, NULL);
}

void
kv_test_server_stop (KvTestServer *ts)
{
  kv_test_server_free (ts);
}

KvListener *
kv_test_server_get_listener (KvTestServer *ts)
{
  return ts->listener;
}

KvStats *
kv_test_server_get_stats (KvTestServer *ts)
{
  return ts->stats;
}

KvWorker *
kv_test_server_get_worker (KvTestServer *ts)
{
  return ts->worker;
}

guint16
kv_test_server_get_port (KvTestServer *ts)
{
  return ts->port;
}

char *
kv_test_server_uri (KvTestServer *ts,
                    const char   *path)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s", ts->port, path);
}

/**
 * kv_test_session_new:
 *
 * Returns: (transfer full): a client session that uses no proxy: the tests
 *   talk to loopback only, and a proxy resolver would want GSettings schemas
 *   that an isolated test environment lacks
 */
SoupSession *
kv_test_session_new (void)
{
  return soup_session_new_with_options ("proxy-resolver", NULL, NULL);
}

/**
 * kv_test_request:
 * @session: a session from kv_test_session_new()
 * @method: the HTTP method
 * @uri: the full URI
 * @headers: (nullable) (array zero-terminated=1): request headers as
 *   name, value, name, value, …
 * @body: (nullable): the request body, sent as form data like curl -d does
 *   unless @headers name a Content-Type
 *
 * Returns: (transfer full): the response
 */
KvTestResponse *
kv_test_request (SoupSession        *session,
                 const char         *method,
                 const char         *uri,
                 const char * const *headers,
                 GBytes             *body)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  SoupMessageHeaders *request_headers;
  KvTestResponse *response = g_new0 (KvTestResponse, 1);

  g_assert_nonnull (msg);
  request_headers = soup_message_get_request_headers (msg);
  if (body != NULL)
    soup_message_set_request_body_from_bytes (msg, "application/x-www-form-urlencoded", body);
  for (gsize i = 0; headers != NULL && headers[i] != NULL; i += 2)
    soup_message_headers_replace (request_headers, headers[i], headers[i + 1]);

  response->body = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  response->status = soup_message_get_status (msg);
  response->headers = soup_message_headers_ref (soup_message_get_response_headers (msg));

  return response;
}

void
kv_test_response_free (KvTestResponse *response)
{
  g_clear_pointer (&response->headers, soup_message_headers_unref);
  g_clear_pointer (&response->body, g_bytes_unref);
  g_free (response);
}

const char *
kv_test_response_header (KvTestResponse *response,
                         const char     *name)
{
  return soup_message_headers_get_one (response->headers, name);
}

void
kv_test_assert_response (KvTestResponse *response,
                         guint           status,
                         const char     *body)
{
  g_assert_cmpuint (response->status, ==, status);
  g_assert_cmpmem (g_bytes_get_data (response->body, NULL), g_bytes_get_size (response->body),
                   body, strlen (body));
}

/**
 * kv_test_fixture_setup:
 * @fixture: the fixture to fill in
 * @config: (nullable): settings for the server, or %NULL for the defaults
 */
void
kv_test_fixture_setup (KvTestFixture *fixture,
                       KvConfig      *config)
{
  fixture->storage = KV_STORAGE (kv_map_storage_new ());
  fixture->server = kv_test_server_start_with_config (fixture->storage, config);
  fixture->session = kv_test_session_new ();
}

/* Nothing may outlive the test: each object's last reference is ours. */
void
kv_test_fixture_teardown (KvTestFixture *fixture)
{
  /* A connection the session is closing may hold it until its idle runs. */
  soup_session_abort (fixture->session);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_finalize_object (fixture->session);
  kv_test_server_stop (fixture->server);
  g_assert_finalize_object (fixture->storage);
}

/**
 * kv_test_fixture_request_full:
 * @path: the path (and query) on the fixture's server
 *
 * As kv_test_request().
 *
 * Returns: (transfer full): the response
 */
KvTestResponse *
kv_test_fixture_request_full (KvTestFixture      *fixture,
                              const char         *method,
                              const char         *path,
                              const char * const *headers,
                              GBytes             *body)
{
  g_autofree char *uri = kv_test_server_uri (fixture->server, path);

  return kv_test_request (fixture->session, method, uri, headers, body);
}

/**
 * kv_test_fixture_request:
 * @body: (nullable): a body, sent as curl -d sends it
 *
 * Returns: (transfer full): the response
 */
KvTestResponse *
kv_test_fixture_request (KvTestFixture *fixture,
                         const char    *method,
                         const char    *path,
                         const char    *body)
{
  g_autoptr(GBytes) bytes = body != NULL ? g_bytes_new (body, strlen (body)) : NULL;

  return kv_test_fixture_request_full (fixture, method, path, NULL, bytes);
}

struct _KvTestDaemon
{
  GSubprocess *process;
  char *dir;          /* a directory of its own, removed with it */
  char *notify_path;
  GSocket *notify;    /* its NOTIFY_SOCKET */
  guint16 port;
};

const char *
kv_test_daemon_path (void)
{
  const char *path = g_getenv ("CRAFTY_KV");

  if (path == NULL)
    g_error ("CRAFTY_KV must name the crafty-kv executable under test");

  return path;
}

/**
 * kv_test_daemon_new:
 *
 * Sets up a directory and a `NOTIFY_SOCKET` for a daemon, which
 * kv_test_daemon_spawn() then starts.
 *
 * Returns: (transfer full): a daemon that is not running yet
 */
KvTestDaemon *
kv_test_daemon_new (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  KvTestDaemon *daemon = g_new0 (KvTestDaemon, 1);

  daemon->dir = g_dir_make_tmp ("crafty-kv-test-XXXXXX", &error);
  g_assert_no_error (error);

  daemon->notify_path = g_build_filename (daemon->dir, "notify", NULL);
  address = g_unix_socket_address_new (daemon->notify_path);
  daemon->notify = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM,
                                 G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  g_socket_bind (daemon->notify, address, FALSE, &error);
  g_assert_no_error (error);

  return daemon;
}

/**
 * kv_test_daemon_build_path:
 *
 * Returns: (transfer full): the path of @name in the daemon's directory
 */
char *
kv_test_daemon_build_path (KvTestDaemon *daemon,
                           const char   *name)
{
  return g_build_filename (daemon->dir, name, NULL);
}

const char *
kv_test_daemon_get_notify_path (KvTestDaemon *daemon)
{
  return daemon->notify_path;
}

/* A failed assertion aborts the test; its daemon must not outlive it. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/**
 * kv_test_daemon_spawn:
 * @daemon: a daemon from kv_test_daemon_new()
 * @argv: the command line: crafty-kv and its arguments, or a program that
 *   runs crafty-kv
 * @envp: (nullable): `NAME=VALUE` strings to add to the environment
 *
 * Starts @argv with `NOTIFY_SOCKET` set (see kv_test_daemon_wait_notify())
 * and its output kept in a file (see kv_test_daemon_dup_log()). Does not
 * wait for anything.
 */
void
kv_test_daemon_spawn (KvTestDaemon       *daemon,
                      const char * const *argv,
                      const char * const *envp)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree char *log_path = kv_test_daemon_build_path (daemon, "log");

  g_assert_null (daemon->process);

  /* GLib logs debug lines to standard output, the rest to standard error:
   * keep both, in order, and out of the test's TAP output. */
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_setenv (launcher, "NOTIFY_SOCKET", daemon->notify_path, TRUE);
  for (gsize i = 0; envp != NULL && envp[i] != NULL; i++)
    {
      g_auto(GStrv) pair = g_strsplit (envp[i], "=", 2);

      g_assert_nonnull (pair[1]);
      g_subprocess_launcher_setenv (launcher, pair[0], pair[1], TRUE);
    }
  g_subprocess_launcher_set_stdout_file_path (launcher, log_path);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);

  daemon->process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
}

/**
 * kv_test_daemon_start:
 * @extra_args: (nullable): more arguments for crafty-kv
 *
 * Starts crafty-kv on a free port and waits until it is ready.
 *
 * Returns: (transfer full): the running daemon
 */
KvTestDaemon *
kv_test_daemon_start (const char * const *extra_args)
{
  KvTestDaemon *daemon = kv_test_daemon_new ();
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *port_file = kv_test_daemon_build_path (daemon, "port");
  g_autofree char *contents = NULL;
  g_autofree char *ready = NULL;
  g_autoptr(GError) error = NULL;

  g_ptr_array_add (argv, g_strdup (kv_test_daemon_path ()));
  g_ptr_array_add (argv, g_strdup ("--port=0"));
  g_ptr_array_add (argv, g_strconcat ("--port-file=", port_file, NULL));
  for (gsize i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (extra_args[i]));
  g_ptr_array_add (argv, NULL);

  kv_test_daemon_spawn (daemon, (const char * const *) argv->pdata, NULL);

  ready = kv_test_daemon_wait_notify (daemon, "READY=1", 10 * 1000);
  g_assert_nonnull (ready);

  /* crafty-kv writes it before it sends READY=1. */
  g_file_get_contents (port_file, &contents, NULL, &error);
  g_assert_no_error (error);
  daemon->port = g_ascii_strtoull (contents, NULL, 10);
  g_assert_cmpuint (daemon->port, !=, 0);

  return daemon;
}

static gboolean
has_assignment (const char *state,
                const char *assignment)
{
  g_auto(GStrv) lines = g_strsplit (state, "\n", -1);
  gboolean prefix = g_str_has_suffix (assignment, "=");

  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (prefix ? g_str_has_prefix (lines[i], assignment) : g_str_equal (lines[i], assignment))
        return TRUE;
    }

  return FALSE;
}

/**
 * kv_test_daemon_wait_notify:
 * @daemon: a running daemon
 * @assignment: a line to wait for, such as `READY=1`; or a variable name
 *   and `=`, such as `STATUS=`, for any value
 * @timeout_ms: how long to wait
 *
 * Reads the datagrams the daemon sent to its `NOTIFY_SOCKET`, and drops
 * them, until one has @assignment among its lines.
 *
 * Returns: (transfer full) (nullable): that datagram, or %NULL if none came
 *   in time
 */
char *
kv_test_daemon_wait_notify (KvTestDaemon *daemon,
                            const char   *assignment,
                            guint         timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gint64 remaining = deadline - g_get_monotonic_time ();
      char buffer[4096];
      gssize len;

      if (remaining <= 0 ||
          !g_socket_condition_timed_wait (daemon->notify, G_IO_IN, remaining, NULL, &error))
        return NULL;

      len = g_socket_receive (daemon->notify, buffer, sizeof buffer - 1, NULL, &error);
      g_assert_no_error (error);
      buffer[len] = '\0';

      if (has_assignment (buffer, assignment))
        return g_strdup (buffer);
    }
}

guint16
kv_test_daemon_get_port (KvTestDaemon *daemon)
{
  return daemon->port;
}

GSubprocess *
kv_test_daemon_get_subprocess (KvTestDaemon *daemon)
{
  return daemon->process;
}

void
kv_test_daemon_signal (KvTestDaemon *daemon,
                       int           signum)
{
  g_subprocess_send_signal (daemon->process, signum);
}

/**
 * kv_test_daemon_wait:
 *
 * Waits for the daemon to exit, which it must do normally.
 *
 * Returns: its exit status
 */
int
kv_test_daemon_wait (KvTestDaemon *daemon)
{
  g_autoptr(GError) error = NULL;

  g_subprocess_wait (daemon->process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (daemon->process));

  return g_subprocess_get_exit_status (daemon->process);
}

/**
 * kv_test_daemon_dup_log:
 *
 * Returns: (transfer full): what the daemon wrote to standard output and
 *   error so far
 */
char *
kv_test_daemon_dup_log (KvTestDaemon *daemon)
{
  g_autofree char *path = kv_test_daemon_build_path (daemon, "log");
  g_autoptr(GError) error = NULL;
  char *contents = NULL;

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);

  return contents;
}

/**
 * kv_test_daemon_free:
 *
 * Kills the daemon if it still runs, and removes its directory.
 */
void
kv_test_daemon_free (KvTestDaemon *daemon)
{
  g_autoptr(GDir) dir = NULL;
  const char *name;

  if (daemon->process != NULL && g_subprocess_get_identifier (daemon->process) != NULL)
    {
      g_subprocess_force_exit (daemon->process);
      g_subprocess_wait (daemon->process, NULL, NULL);
    }

  /* What the daemon said helps to understand a failure. */
  if (g_test_failed ())
    {
      g_autofree char *log = kv_test_daemon_dup_log (daemon);
      g_test_message ("crafty-kv said: %s", log);
    }

  g_clear_object (&daemon->notify);
  dir = g_dir_open (daemon->dir, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = kv_test_daemon_build_path (daemon, name);
      g_unlink (path);
    }
  g_rmdir (daemon->dir);

  g_clear_object (&daemon->process);
  g_free (daemon->notify_path);
  g_free (daemon->dir);
  g_free (daemon);
}

/**
 * kv_test_daemon_stop:
 *
 * Sends SIGTERM, waits for the daemon to exit and frees it.
 *
 * Returns: its exit status
 */
int
kv_test_daemon_stop (KvTestDaemon *daemon)
{
  int status;

  kv_test_daemon_signal (daemon, SIGTERM);
  status = kv_test_daemon_wait (daemon);
  kv_test_daemon_free (daemon);

  return status;
}

static char *
bytes_to_string (GBytes *bytes)
{
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  return len > 0 ? g_strndup (data, len) : g_strdup ("");
}

/**
 * kv_test_run_with_env:
 * @argv: a command line
 * @envp: (nullable): `NAME=VALUE` strings to add to the environment, or
 *   `NAME` alone to remove it
 * @exit_status: (out) (optional): the exit status, or -1 if it did not exit
 * @standard_error: (out) (optional) (transfer full): what it wrote there
 *
 * Runs @argv to completion.
 *
 * Returns: (transfer full): its standard output
 */
GBytes *
kv_test_run_with_env (const char * const *argv,
                      const char * const *envp,
                      int                *exit_status,
                      char              **standard_error)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GBytes) out = NULL;
  g_autoptr(GBytes) err = NULL;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  for (gsize i = 0; envp != NULL && envp[i] != NULL; i++)
    {
      g_auto(GStrv) pair = g_strsplit (envp[i], "=", 2);

      if (pair[1] != NULL)
        g_subprocess_launcher_setenv (launcher, pair[0], pair[1], TRUE);
      else
        g_subprocess_launcher_unsetenv (launcher, pair[0]);
    }

  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate (process, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);

  if (exit_status != NULL)
    *exit_status = g_subprocess_get_if_exited (process) ? g_subprocess_get_exit_status (process) : -1;
  if (standard_error != NULL)
    *standard_error = bytes_to_string (err);

  return g_steal_pointer (&out);
}

GBytes *
kv_test_run (const char * const *argv,
             int                *exit_status,
             char              **standard_error)
{
  return kv_test_run_with_env (argv, NULL, exit_status, standard_error);
}

/**
 * kv_test_remove_tree:
 * @path: a directory
 *
 * Removes @path and everything below it; a symbolic link is removed, not
 * followed.
 */
void
kv_test_remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        kv_test_remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}
