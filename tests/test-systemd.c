/* test-systemd.c: the socket activation, notification and watchdog
 * protocols of kv-systemd.c, in process
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>

#include "kv-systemd.h"

/* A datagram socket of the test's own, standing in for the service
 * manager's. */
typedef struct
{
  char *dir;
  GSocket *socket;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  fixture->dir = g_dir_make_tmp ("crafty-kv-systemd-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM,
                                  G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);

  g_unsetenv ("NOTIFY_SOCKET");
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autofree char *path = g_build_filename (fixture->dir, "notify", NULL);

  g_unsetenv ("NOTIFY_SOCKET");
  g_assert_finalize_object (fixture->socket);
  g_unlink (path);
  g_rmdir (fixture->dir);
  g_free (fixture->dir);
}

static void
bind_socket (Fixture        *fixture,
             GSocketAddress *address)
{
  g_autoptr(GError) error = NULL;

  g_socket_bind (fixture->socket, address, FALSE, &error);
  g_assert_no_error (error);
}

static void
assert_received (Fixture    *fixture,
                 const char *expected)
{
  g_autoptr(GError) error = NULL;
  char buffer[1024];
  gssize len;

  g_assert_true (g_socket_condition_timed_wait (fixture->socket, G_IO_IN, 5 * G_USEC_PER_SEC,
                                                NULL, &error));
  len = g_socket_receive (fixture->socket, buffer, sizeof buffer, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buffer, len, expected, strlen (expected));
}

static void
test_notify_none (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  g_test_summary ("Without NOTIFY_SOCKET, notifying succeeds and does nothing");

  g_assert_false (kv_systemd_has_notify_socket ());
  g_assert_true (kv_systemd_notify ("READY=1", &error));
  g_assert_no_error (error);

  g_setenv ("NOTIFY_SOCKET", "", TRUE);
  g_assert_false (kv_systemd_has_notify_socket ());
  g_assert_true (kv_systemd_notify ("READY=1", &error));
  g_assert_no_error (error);
}

static void
test_notify_path (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autofree char *path = g_build_filename (fixture->dir, "notify", NULL);
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GError) error = NULL;

  g_test_summary ("A notification is one datagram to the NOTIFY_SOCKET path");

  bind_socket (fixture, address);
  g_setenv ("NOTIFY_SOCKET", path, TRUE);
  g_assert_true (kv_systemd_has_notify_socket ());

  g_assert_true (kv_systemd_notify ("READY=1\nSTATUS=Serving", &error));
  g_assert_no_error (error);
  assert_received (fixture, "READY=1\nSTATUS=Serving");

  g_assert_true (kv_systemd_notify ("STOPPING=1", &error));
  g_assert_no_error (error);
  assert_received (fixture, "STOPPING=1");
}

static void
test_notify_abstract (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autofree char *name = g_strdup_printf ("crafty-kv-test-%d-%u", getpid (), g_random_int ());
  g_autofree char *variable = g_strconcat ("@", name, NULL);
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GError) error = NULL;

  g_test_summary ("NOTIFY_SOCKET=@NAME is a socket in the abstract namespace");

  address = g_unix_socket_address_new_with_type (name, -1, G_UNIX_SOCKET_ADDRESS_ABSTRACT);
  bind_socket (fixture, address);
  g_setenv ("NOTIFY_SOCKET", variable, TRUE);

  g_assert_true (kv_systemd_notify ("WATCHDOG=1", &error));
  g_assert_no_error (error);
  assert_received (fixture, "WATCHDOG=1");
}

static void
test_notify_errors (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autofree char *path = g_build_filename (fixture->dir, "nobody-listens", NULL);
  g_autoptr(GError) error = NULL;

  g_test_summary ("An unsupported or unreachable NOTIFY_SOCKET is an error");

  g_setenv ("NOTIFY_SOCKET", "vsock:2:1234", TRUE);
  g_assert_false (kv_systemd_notify ("READY=1", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  g_setenv ("NOTIFY_SOCKET", path, TRUE);
  g_assert_false (kv_systemd_notify ("READY=1", &error));
  g_assert_nonnull (error);
}

static void
test_listen_none (void)
{
  g_autoptr(GPtrArray) sockets = NULL;
  g_auto(GStrv) names = NULL;
  g_autoptr(GError) error = NULL;

  g_test_summary ("Without LISTEN_PID, no sockets were passed");

  g_unsetenv ("LISTEN_PID");
  g_unsetenv ("LISTEN_FDS");
  sockets = kv_systemd_take_listen_sockets (&names, &error);
  g_assert_no_error (error);
  g_assert_nonnull (sockets);
  g_assert_cmpuint (sockets->len, ==, 0);
  g_assert_null (names);
}

static void
test_listen_other_pid (void)
{
  g_autoptr(GPtrArray) sockets = NULL;
  g_autoptr(GError) error = NULL;

  g_test_summary ("Sockets passed to another process are not ours, and the variables go");

  g_setenv ("LISTEN_PID", "1", TRUE);
  g_setenv ("LISTEN_FDS", "1", TRUE);
  g_setenv ("LISTEN_FDNAMES", "web", TRUE);
  sockets = kv_systemd_take_listen_sockets (NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (sockets->len, ==, 0);
  g_assert_null (g_getenv ("LISTEN_PID"));
  g_assert_null (g_getenv ("LISTEN_FDS"));
  g_assert_null (g_getenv ("LISTEN_FDNAMES"));
}

static void
assert_listen_error (const char *pid,
                     const char *fds,
                     const char *names,
                     const char *detail)
{
  g_autoptr(GPtrArray) sockets = NULL;
  g_autoptr(GError) error = NULL;

  g_setenv ("LISTEN_PID", pid, TRUE);
  if (fds != NULL)
    g_setenv ("LISTEN_FDS", fds, TRUE);
  else
    g_unsetenv ("LISTEN_FDS");
  if (names != NULL)
    g_setenv ("LISTEN_FDNAMES", names, TRUE);
  else
    g_unsetenv ("LISTEN_FDNAMES");

  sockets = kv_systemd_take_listen_sockets (NULL, &error);
  g_assert_null (sockets);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, detail));
}

static void
test_listen_invalid (void)
{
  g_autofree char *pid = g_strdup_printf ("%d", getpid ());

  g_test_summary ("Variables that do not follow sd_listen_fds(3) are errors");

  assert_listen_error ("one", "1", NULL, "LISTEN_PID=one");
  assert_listen_error (pid, NULL, NULL, "LISTEN_FDS");
  assert_listen_error (pid, "-1", NULL, "LISTEN_FDS=-1");
  assert_listen_error (pid, "1", "web:local", "LISTEN_FDNAMES");

  g_unsetenv ("LISTEN_PID");
  g_unsetenv ("LISTEN_FDS");
  g_unsetenv ("LISTEN_FDNAMES");
}

/* In a subprocess of its own: the test puts sockets at descriptors 3 and
 * up, as the service manager does. */
static void
test_listen_adopt (void)
{
  g_autoptr(GPtrArray) sockets = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;
  g_autofree char *pid = NULL;
  g_autoptr(GInetAddress) loopback = NULL;
  g_autoptr(GSocketAddress) any_port = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *name = NULL;
  g_autoptr(GSocket) tcp = NULL;
  g_autoptr(GSocket) unix_socket = NULL;
  int tcp_fd, unix_fd;
  int pair[2];

  if (!g_test_subprocess ())
    {
      g_test_summary ("Passed listening sockets are adopted with their names, and not "
                      "inherited further");
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      return;
    }

  loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  any_port = g_inet_socket_address_new (loopback, 0);
  tcp = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (tcp, any_port, TRUE, &error);
  g_assert_no_error (error);
  g_socket_listen (tcp, &error);
  g_assert_no_error (error);

  /* An abstract socket leaves no file behind. */
  name = g_strdup_printf ("crafty-kv-test-adopt-%d", getpid ());
  address = g_unix_socket_address_new_with_type (name, -1, G_UNIX_SOCKET_ADDRESS_ABSTRACT);
  unix_socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                              G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  g_socket_bind (unix_socket, address, FALSE, &error);
  g_assert_no_error (error);
  g_socket_listen (unix_socket, &error);
  g_assert_no_error (error);

  /* Move both to 3 and 4 by way of descriptors out of the way, in case
   * the sockets were made at 3 or 4. dup2() leaves FD_CLOEXEC unset, as
   * the manager passes them. */
  tcp_fd = fcntl (g_socket_get_fd (tcp), F_DUPFD_CLOEXEC, 10);
  unix_fd = fcntl (g_socket_get_fd (unix_socket), F_DUPFD_CLOEXEC, 10);
  g_clear_object (&tcp);
  g_clear_object (&unix_socket);
  g_assert_cmpint (dup2 (tcp_fd, 3), ==, 3);
  g_assert_cmpint (dup2 (unix_fd, 4), ==, 4);
  close (tcp_fd);
  close (unix_fd);
  g_assert_cmpint (fcntl (3, F_GETFD) & FD_CLOEXEC, ==, 0);
  g_assert_cmpint (fcntl (4, F_GETFD) & FD_CLOEXEC, ==, 0);

  pid = g_strdup_printf ("%d", getpid ());
  g_setenv ("LISTEN_PID", pid, TRUE);
  g_setenv ("LISTEN_FDS", "2", TRUE);
  g_setenv ("LISTEN_FDNAMES", "web:local", TRUE);

  sockets = kv_systemd_take_listen_sockets (&names, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (sockets->len, ==, 2);
  g_assert_cmpint (g_socket_get_fd (sockets->pdata[0]), ==, 3);
  g_assert_cmpint (g_socket_get_fd (sockets->pdata[1]), ==, 4);
  g_assert_cmpint (g_socket_get_family (sockets->pdata[0]), ==, G_SOCKET_FAMILY_IPV4);
  g_assert_cmpint (g_socket_get_family (sockets->pdata[1]), ==, G_SOCKET_FAMILY_UNIX);
  g_assert_cmpstrv (names, ((const char * const[]) { "web", "local", NULL }));
  g_assert_cmpint (fcntl (3, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
  g_assert_cmpint (fcntl (4, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
  g_assert_null (g_getenv ("LISTEN_PID"));
  g_assert_null (g_getenv ("LISTEN_FDS"));
  g_assert_null (g_getenv ("LISTEN_FDNAMES"));

  /* A connection is one, not a listener, as Accept=yes would pass. */
  g_clear_pointer (&sockets, g_ptr_array_unref);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, pair), ==, 0);
  g_assert_cmpint (dup2 (pair[0], 3), ==, 3);
  g_setenv ("LISTEN_PID", pid, TRUE);
  g_setenv ("LISTEN_FDS", "1", TRUE);
  sockets = kv_systemd_take_listen_sockets (NULL, &error);
  g_assert_null (sockets);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "not a listening stream socket"));
}

static void
test_watchdog (void)
{
  g_autofree char *pid = g_strdup_printf ("%d", getpid ());
  g_autofree char *other_pid = g_strdup_printf ("%d", getpid () + 1);

  g_test_summary ("WATCHDOG_USEC counts only when WATCHDOG_PID is absent or ours");

  g_unsetenv ("WATCHDOG_USEC");
  g_unsetenv ("WATCHDOG_PID");
  g_assert_cmpuint (kv_systemd_get_watchdog_usec (), ==, 0);

  g_setenv ("WATCHDOG_USEC", "30000000", TRUE);
  g_assert_cmpuint (kv_systemd_get_watchdog_usec (), ==, 30000000);

  g_setenv ("WATCHDOG_PID", pid, TRUE);
  g_assert_cmpuint (kv_systemd_get_watchdog_usec (), ==, 30000000);

  g_setenv ("WATCHDOG_PID", other_pid, TRUE);
  g_assert_cmpuint (kv_systemd_get_watchdog_usec (), ==, 0);

  g_setenv ("WATCHDOG_PID", pid, TRUE);
  g_setenv ("WATCHDOG_USEC", "soon", TRUE);
  g_assert_cmpuint (kv_systemd_get_watchdog_usec (), ==, 0);
  g_setenv ("WATCHDOG_USEC", "0", TRUE);
  g_assert_cmpuint (kv_systemd_get_watchdog_usec (), ==, 0);

  g_unsetenv ("WATCHDOG_USEC");
  g_unsetenv ("WATCHDOG_PID");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add ("/kv/systemd/notify/none", Fixture, NULL, fixture_setup, test_notify_none,
              fixture_teardown);
  g_test_add ("/kv/systemd/notify/path", Fixture, NULL, fixture_setup, test_notify_path,
              fixture_teardown);
  g_test_add ("/kv/systemd/notify/abstract", Fixture, NULL, fixture_setup,
              test_notify_abstract, fixture_teardown);
  g_test_add ("/kv/systemd/notify/errors", Fixture, NULL, fixture_setup, test_notify_errors,
              fixture_teardown);
  g_test_add_func ("/kv/systemd/listen/none", test_listen_none);
  g_test_add_func ("/kv/systemd/listen/other-pid", test_listen_other_pid);
  g_test_add_func ("/kv/systemd/listen/invalid", test_listen_invalid);
  g_test_add_func ("/kv/systemd/listen/adopt", test_listen_adopt);
  g_test_add_func ("/kv/systemd/watchdog", test_watchdog);

  return g_test_run ();
}
