/* test-service.c: the built crafty-kv as a service: socket activation with
 * systemd-socket-activate, readiness and status on NOTIFY_SOCKET, the
 * watchdog, logging, and the Unix socket driven with curl
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>

#include "kv-test-utils.h"

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/* The listening sockets that process @pid holds, sorted, each as
 * ADDRESS:PORT or unix:PATH; read from /proc, as ss(8) does. */
static GPtrArray *
list_listening_sockets (const char *pid)
{
  g_autoptr(GPtrArray) listening = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) inodes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *fd_dir_path = g_build_filename ("/proc", pid, "fd", NULL);
  const char *tables[] = { "tcp", "tcp6", "unix" };
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) fd_dir = NULL;
  const char *name;

  fd_dir = g_dir_open (fd_dir_path, 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (fd_dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (fd_dir_path, name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      if (target != NULL && g_str_has_prefix (target, "socket:["))
        g_hash_table_add (inodes, g_strndup (target + strlen ("socket:["),
                                             strlen (target) - strlen ("socket:[]")));
    }

  for (guint t = 0; t < G_N_ELEMENTS (tables); t++)
    {
      g_autofree char *path = g_build_filename ("/proc", pid, "net", tables[t], NULL);
      g_autofree char *contents = NULL;
      g_auto(GStrv) lines = NULL;

      g_file_get_contents (path, &contents, NULL, &error);
      g_assert_no_error (error);
      lines = g_strsplit (contents, "\n", -1);

      for (guint i = 1; lines[i] != NULL && lines[i][0] != '\0'; i++)
        {
          g_auto(GStrv) fields = g_strsplit_set (g_strstrip (lines[i]), " ", -1);
          g_autoptr(GPtrArray) words = g_ptr_array_new ();

          for (guint f = 0; fields[f] != NULL; f++)
            if (fields[f][0] != '\0')
              g_ptr_array_add (words, fields[f]);

          if (t < 2)
            {
              /* sl local_address rem_address st ... inode: st 0A is LISTEN. */
              const char *local = words->pdata[1];
              guint32 address;
              guint port;

              if (!g_str_equal (words->pdata[3], "0A") ||
                  !g_hash_table_contains (inodes, words->pdata[9]))
                continue;

              port = g_ascii_strtoull (strchr (local, ':') + 1, NULL, 16);
              if (t == 0)
                {
                  /* The address as the kernel holds it, printed as a host
                   * integer. */
                  address = g_ascii_strtoull (local, NULL, 16);
                  g_ptr_array_add (listening,
                                   g_strdup_printf ("%u.%u.%u.%u:%u", address & 0xff,
                                                    (address >> 8) & 0xff,
                                                    (address >> 16) & 0xff, address >> 24,
                                                    port));
                }
              else
                g_ptr_array_add (listening, g_strdup_printf ("tcp6:%u", port));
            }
          else
            {
              /* Num RefCount Protocol Flags Type St Inode Path: flag
               * 00010000 is a listening socket. */
              const char *socket_path = words->len > 7 ? words->pdata[7] : "";

              if (!g_str_equal (words->pdata[3], "00010000") ||
                  !g_hash_table_contains (inodes, words->pdata[6]))
                continue;

              g_ptr_array_add (listening, g_strconcat ("unix:", socket_path, NULL));
            }
        }
    }

  g_ptr_array_sort (listening, compare_strings);
  g_ptr_array_add (listening, NULL);
  return g_steal_pointer (&listening);
}

/* Runs curl with @args, where "@" at the start of an argument stands for
 * @base (http://127.0.0.1:PORT, or http://localhost after --unix-socket),
 * and checks it prints exactly @output. */
static void
assert_curl (const char * const *args,
             const char         *base,
             const char         *output)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GBytes) out = NULL;
  g_autofree char *err = NULL;
  int status;

  g_ptr_array_add (argv, g_strdup ("curl"));
  g_ptr_array_add (argv, g_strdup ("--silent"));
  g_ptr_array_add (argv, g_strdup ("--show-error"));
  for (gsize i = 0; args[i] != NULL; i++)
    {
      if (args[i][0] == '@')
        g_ptr_array_add (argv, g_strconcat (base, args[i] + 1, NULL));
      else
        g_ptr_array_add (argv, g_strdup (args[i]));
    }
  g_ptr_array_add (argv, NULL);

  out = kv_test_run ((const char * const *) argv->pdata, &status, &err);
  g_assert_cmpstr (err, ==, "");
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out),
                   output, strlen (output));
}

#define ARGS(...) ((const char * const[]) { __VA_ARGS__, NULL })

static gboolean
have_programs (const char * const *programs)
{
  for (gsize i = 0; programs[i] != NULL; i++)
    {
      g_autofree char *path = g_find_program_in_path (programs[i]);

      if (path == NULL)
        {
          g_autofree char *message = g_strdup_printf ("%s is not installed", programs[i]);
          g_test_skip (message);
          return FALSE;
        }
    }

  return TRUE;
}

static guint16
pick_free_port (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GSocket) socket = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         &error);
  g_assert_no_error (error);
  g_socket_bind (socket, any_port, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);

  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* Connects to 127.0.0.1:@port, trying again while nothing listens yet. */
static void
wait_for_listener (guint16 port)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, port);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr(GSocket) socket = NULL;
      g_autoptr(GError) error = NULL;

      socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                             &error);
      g_assert_no_error (error);
      if (g_socket_connect (socket, address, NULL, &error))
        return;
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
      g_usleep (10 * 1000);
    }

  g_assert_not_reached ();
}

static void
test_socket_activation (void)
{
  KvTestDaemon *daemon = NULL;
  g_autofree char *unix_path = NULL;
  g_autofree char *own_path = NULL;
  g_autofree char *listen_tcp = NULL;
  g_autofree char *listen_unix = NULL;
  g_autofree char *setenv_notify = NULL;
  g_autofree char *unix_socket_arg = NULL;
  g_autofree char *base = NULL;
  g_autofree char *expected_tcp = NULL;
  g_autofree char *expected_unix = NULL;
  g_autofree char *ready = NULL;
  g_autofree char *log = NULL;
  g_autofree char *expected_log = NULL;
  g_autoptr(GPtrArray) listening = NULL;
  guint16 port;

  g_test_summary ("Started by systemd-socket-activate, crafty-kv answers on the passed "
                  "sockets and opens no other");

  if (!have_programs (ARGS ("systemd-socket-activate", "curl")))
    return;

  daemon = kv_test_daemon_new ();
  unix_path = kv_test_daemon_build_path (daemon, "passed.sock");
  own_path = kv_test_daemon_build_path (daemon, "own.sock");
  port = pick_free_port ();
  listen_tcp = g_strdup_printf ("--listen=127.0.0.1:%u", port);
  listen_unix = g_strconcat ("--listen=", unix_path, NULL);
  /* systemd-socket-activate passes on only a few variables of its own. */
  setenv_notify = g_strconcat ("--setenv=NOTIFY_SOCKET=",
                               kv_test_daemon_get_notify_path (daemon), NULL);
  unix_socket_arg = g_strconcat ("--unix-socket=", own_path, NULL);

  /* Its own settings would have it listen elsewhere: passed sockets win. */
  kv_test_daemon_spawn (daemon,
                        ARGS ("systemd-socket-activate", listen_tcp, listen_unix,
                              "--fdname=web:local", setenv_notify,
                              kv_test_daemon_path (), "--port=0", unix_socket_arg),
                        NULL);

  /* The first connection makes systemd-socket-activate start crafty-kv. */
  wait_for_listener (port);
  ready = kv_test_daemon_wait_notify (daemon, "READY=1", 10 * 1000);
  g_assert_nonnull (ready);

  base = g_strdup_printf ("http://127.0.0.1:%u", port);
  assert_curl (ARGS ("-X", "PUT", "-d", "Nairobi", "@/kv/kenya:capital"), base, "");
  assert_curl (ARGS ("--unix-socket", unix_path, "http://localhost/kv/kenya:capital"), base,
               "Nairobi");

  /* systemd-socket-activate execs crafty-kv: one process. */
  listening = list_listening_sockets (g_subprocess_get_identifier (
                                        kv_test_daemon_get_subprocess (daemon)));
  expected_tcp = g_strdup_printf ("127.0.0.1:%u", port);
  expected_unix = g_strconcat ("unix:", unix_path, NULL);
  g_assert_cmpstrv ((const char * const *) listening->pdata,
                    ((const char * const[]) { expected_tcp, expected_unix, NULL }));
  g_assert_false (g_file_test (own_path, G_FILE_TEST_EXISTS));

  kv_test_daemon_signal (daemon, SIGTERM);
  g_assert_cmpint (kv_test_daemon_wait (daemon), ==, 0);

  log = kv_test_daemon_dup_log (daemon);
  expected_log = g_strdup_printf ("Listening on http://127.0.0.1:%u/ (web), unix:%s (local), "
                                  "passed by systemd\n", port, unix_path);
  g_assert_nonnull (strstr (log, expected_log));
  /* The socket file belongs to whoever made it, not to crafty-kv. */
  g_assert_true (g_file_test (unix_path, G_FILE_TEST_EXISTS));

  kv_test_daemon_free (daemon);
}

static guint
count_lines (const char *text)
{
  guint n = 0;

  for (const char *p = text; *p != '\0'; p++)
    n += *p == '\n';

  return n;
}

static void
test_readiness (void)
{
  KvTestDaemon *daemon = NULL;
  g_autofree char *port_file = NULL;
  g_autofree char *port_arg = NULL;
  g_autofree char *ready = NULL;
  g_autofree char *status = NULL;
  g_autofree char *stopping = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *base = NULL;
  g_autofree char *log = NULL;
  g_autoptr(GError) error = NULL;

  g_test_summary ("READY=1 comes once crafty-kv listens, STATUS= follows the requests, "
                  "STOPPING=1 comes on SIGTERM; one log line for the start and one for "
                  "the stop");

  if (!have_programs (ARGS ("curl")))
    return;

  daemon = kv_test_daemon_new ();
  port_file = kv_test_daemon_build_path (daemon, "port");
  port_arg = g_strconcat ("--port-file=", port_file, NULL);
  kv_test_daemon_spawn (daemon, ARGS (kv_test_daemon_path (), "--port=0", port_arg), NULL);

  ready = kv_test_daemon_wait_notify (daemon, "READY=1", 10 * 1000);
  g_assert_cmpstr (ready, ==, "READY=1\nSTATUS=Keys: 0, requests served: 0");

  /* Ready means listening: the port is known and a request is answered. */
  g_file_get_contents (port_file, &contents, NULL, &error);
  g_assert_no_error (error);
  base = g_strdup_printf ("http://127.0.0.1:%u", (guint) g_ascii_strtoull (contents, NULL, 10));
  assert_curl (ARGS ("-X", "PUT", "-d", "Kampala", "@/kv/uganda:capital"), base, "");

  status = kv_test_daemon_wait_notify (daemon, "STATUS=", 5 * 1000);
  g_assert_cmpstr (status, ==, "STATUS=Keys: 1, requests served: 1");

  kv_test_daemon_signal (daemon, SIGTERM);
  stopping = kv_test_daemon_wait_notify (daemon, "STOPPING=1", 5 * 1000);
  g_assert_cmpstr (stopping, ==, "STOPPING=1\nSTATUS=Stopping, requests in flight: 0");
  g_assert_cmpint (kv_test_daemon_wait (daemon), ==, 0);

  /* Nothing per request without G_MESSAGES_DEBUG. */
  log = kv_test_daemon_dup_log (daemon);
  g_assert_cmpuint (count_lines (log), ==, 2);
  g_assert_nonnull (strstr (log, "Listening on http://127.0.0.1:"));
  g_assert_nonnull (strstr (log, "Stopped gracefully after SIGTERM; requests served: 1, "
                                 "abandoned: 0\n"));

  kv_test_daemon_free (daemon);
}

static void
test_debug_log (void)
{
  KvTestDaemon *daemon = NULL;
  g_autofree char *base = NULL;
  g_autofree char *log = NULL;

  g_test_summary ("With G_MESSAGES_DEBUG=crafty-kv, each request is logged");

  if (!have_programs (ARGS ("curl")))
    return;

  g_setenv ("G_MESSAGES_DEBUG", "crafty-kv", TRUE);
  daemon = kv_test_daemon_start (NULL);
  g_unsetenv ("G_MESSAGES_DEBUG");

  base = g_strdup_printf ("http://127.0.0.1:%u", kv_test_daemon_get_port (daemon));
  assert_curl (ARGS ("@/kv/absent"), base, "key not found\n");
  kv_test_daemon_signal (daemon, SIGTERM);
  g_assert_cmpint (kv_test_daemon_wait (daemon), ==, 0);

  log = kv_test_daemon_dup_log (daemon);
  g_assert_nonnull (strstr (log, "GET /kv/absent 404\n"));
  kv_test_daemon_free (daemon);
}

static void
test_watchdog (void)
{
  KvTestDaemon *daemon = kv_test_daemon_new ();
  g_autofree char *ready = NULL;
  g_autofree char *log = NULL;

  g_test_summary ("With WATCHDOG_USEC, WATCHDOG=1 comes at half the interval");

  /* The interval is read from the daemon's debug log rather than timed, so
   * that a loaded machine cannot fail the test. */
  g_setenv ("G_MESSAGES_DEBUG", "crafty-kv", TRUE);
  kv_test_daemon_spawn (daemon, ARGS (kv_test_daemon_path (), "--port=0"),
                        ARGS ("WATCHDOG_USEC=200000"));
  g_unsetenv ("G_MESSAGES_DEBUG");
  ready = kv_test_daemon_wait_notify (daemon, "READY=1", 10 * 1000);
  g_assert_nonnull (ready);

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *ping = kv_test_daemon_wait_notify (daemon, "WATCHDOG=1", 10 * 1000);
      g_assert_cmpstr (ping, ==, "WATCHDOG=1");
    }

  kv_test_daemon_signal (daemon, SIGTERM);
  g_assert_cmpint (kv_test_daemon_wait (daemon), ==, 0);
  log = kv_test_daemon_dup_log (daemon);
  g_assert_nonnull (strstr (log, "Watchdog: pinging every 100 ms"));
  kv_test_daemon_free (daemon);
}

static void
test_watchdog_other_pid (void)
{
  KvTestDaemon *daemon = kv_test_daemon_new ();
  g_autofree char *ready = NULL;
  g_autofree char *ping = NULL;

  g_test_summary ("A watchdog meant for another process sends no pings");

  kv_test_daemon_spawn (daemon, ARGS (kv_test_daemon_path (), "--port=0"),
                        ARGS ("WATCHDOG_USEC=100000", "WATCHDOG_PID=1"));
  ready = kv_test_daemon_wait_notify (daemon, "READY=1", 10 * 1000);
  g_assert_nonnull (ready);
  ping = kv_test_daemon_wait_notify (daemon, "WATCHDOG=1", 300);
  g_assert_null (ping);

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static void
make_stale_socket (const char *path)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) error = NULL;

  /* Bound, then closed without being removed, as by a process that died. */
  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                         &error);
  g_assert_no_error (error);
  g_socket_bind (socket, address, FALSE, &error);
  g_assert_no_error (error);
}

static void
test_unix_socket (void)
{
  KvTestDaemon *daemon = NULL;
  g_autofree char *path = NULL;
  g_autofree char *arg = NULL;
  g_autofree char *ready = NULL;
  g_autofree char *expected = NULL;
  g_autoptr(GPtrArray) listening = NULL;
  struct stat st;

  g_test_summary ("--unix-socket replaces a stale socket file with one of mode 0600, "
                  "serves curl on it and nothing else, and removes it on exit");

  if (!have_programs (ARGS ("curl")))
    return;

  daemon = kv_test_daemon_new ();
  path = kv_test_daemon_build_path (daemon, "kv.sock");
  arg = g_strconcat ("--unix-socket=", path, NULL);
  make_stale_socket (path);

  kv_test_daemon_spawn (daemon, ARGS (kv_test_daemon_path (), arg), NULL);
  ready = kv_test_daemon_wait_notify (daemon, "READY=1", 10 * 1000);
  g_assert_nonnull (ready);

  g_assert_cmpint (g_lstat (path, &st), ==, 0);
  g_assert_true (S_ISSOCK (st.st_mode));
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);

  /* The seed's session, over the socket. */
  assert_curl (ARGS ("--unix-socket", path, "-X", "PUT", "-d", "Dar es Salaam",
                     "@/kv/tanzania:capital"), "http://localhost", "");
  assert_curl (ARGS ("--unix-socket", path, "-X", "PUT", "-d", "Dodoma",
                     "@/kv/tanzania:capital"), "http://localhost", "");
  assert_curl (ARGS ("--unix-socket", path, "@/kv/tanzania:capital"), "http://localhost",
               "Dodoma");
  assert_curl (ARGS ("--unix-socket", path, "-X", "DELETE", "@/kv/tanzania:capital"),
               "http://localhost", "");
  assert_curl (ARGS ("--unix-socket", path, "@/kv/tanzania:capital"), "http://localhost",
               "key not found\n");

  listening = list_listening_sockets (g_subprocess_get_identifier (
                                        kv_test_daemon_get_subprocess (daemon)));
  expected = g_strconcat ("unix:", path, NULL);
  g_assert_cmpstrv ((const char * const *) listening->pdata,
                    ((const char * const[]) { expected, NULL }));

  kv_test_daemon_signal (daemon, SIGTERM);
  g_assert_cmpint (kv_test_daemon_wait (daemon), ==, 0);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));

  kv_test_daemon_free (daemon);
}

static void
assert_refused (const char *path,
                const char *message)
{
  g_autofree char *arg = g_strconcat ("--unix-socket=", path, NULL);
  g_autoptr(GBytes) out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *expected = NULL;
  int status;

  out = kv_test_run (ARGS (kv_test_daemon_path (), arg), &status, &err);
  g_assert_cmpint (status, ==, 1);
  expected = g_strdup_printf ("crafty-kv: cannot listen on the Unix socket %s: %s\n",
                              path, message);
  g_assert_cmpstr (err, ==, expected);
}

static void
test_unix_socket_refused (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("crafty-kv-test-XXXXXX", &error);
  g_autofree char *live_path = g_build_filename (dir, "live.sock", NULL);
  g_autofree char *file_path = g_build_filename (dir, "file", NULL);
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (live_path);
  g_autoptr(GSocket) live = NULL;
  g_autofree char *contents = NULL;

  g_test_summary ("A Unix socket path where a process listens, or that is another kind "
                  "of file, is left alone, with an error");

  g_assert_no_error (error);
  live = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                       &error);
  g_assert_no_error (error);
  g_socket_bind (live, address, FALSE, &error);
  g_assert_no_error (error);
  g_socket_listen (live, &error);
  g_assert_no_error (error);
  assert_refused (live_path, "another process is listening on it");
  g_assert_true (g_file_test (live_path, G_FILE_TEST_EXISTS));

  g_file_set_contents (file_path, "precious", -1, &error);
  g_assert_no_error (error);
  assert_refused (file_path, "the file exists and is not a socket");
  g_file_get_contents (file_path, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (contents, ==, "precious");

  g_unlink (live_path);
  g_unlink (file_path);
  g_rmdir (dir);
}

static void
test_unix_socket_from_config (void)
{
  KvTestDaemon *daemon = NULL;
  g_autofree char *path = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *config = NULL;
  g_autofree char *config_arg = NULL;
  g_autofree char *ready = NULL;
  g_autoptr(GError) error = NULL;

  g_test_summary ("The key file's unix-socket is used, and the command line overrides "
                  "the file's other settings");

  if (!have_programs (ARGS ("curl")))
    return;

  daemon = kv_test_daemon_new ();
  path = kv_test_daemon_build_path (daemon, "kv.sock");
  config_path = kv_test_daemon_build_path (daemon, "crafty-kv.conf");
  config = g_strdup_printf ("[server]\n"
                            "unix-socket=%s\n"
                            "address=not an address\n", path);
  g_file_set_contents (config_path, config, -1, &error);
  g_assert_no_error (error);
  config_arg = g_strconcat ("--config=", config_path, NULL);

  kv_test_daemon_spawn (daemon, ARGS (kv_test_daemon_path (), config_arg,
                                      "--address=127.0.0.1"), NULL);
  ready = kv_test_daemon_wait_notify (daemon, "READY=1", 10 * 1000);
  g_assert_nonnull (ready);
  assert_curl (ARGS ("--unix-socket", path, "-X", "PUT", "-d", "x", "@/kv/k"),
               "http://localhost", "");

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/service/socket-activation", test_socket_activation);
  g_test_add_func ("/kv/service/readiness", test_readiness);
  g_test_add_func ("/kv/service/debug-log", test_debug_log);
  g_test_add_func ("/kv/service/watchdog", test_watchdog);
  g_test_add_func ("/kv/service/watchdog/other-pid", test_watchdog_other_pid);
  g_test_add_func ("/kv/service/unix-socket", test_unix_socket);
  g_test_add_func ("/kv/service/unix-socket/refused", test_unix_socket_refused);
  g_test_add_func ("/kv/service/unix-socket/from-config", test_unix_socket_from_config);

  return g_test_run ();
}
