/* test-cli.c: crafty-kv's command line
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "kv-test-utils.h"

static char *
run_daemon (const char * const *args,
            int                *status,
            char              **err)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GBytes) out = NULL;

  g_ptr_array_add (argv, (gpointer) kv_test_daemon_path ());
  for (gsize i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  out = kv_test_run ((const char * const *) argv->pdata, status, err);
  return g_strndup (g_bytes_get_size (out) > 0 ? g_bytes_get_data (out, NULL) : "",
                    g_bytes_get_size (out));
}

static void
test_help (void)
{
  const char *args[] = { "--help", NULL };
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;
  int status;

  g_test_summary ("--help lists every option and exits 0");

  out = run_daemon (args, &status, &err);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, "Usage:"));
  g_assert_nonnull (strstr (out, "--address"));
  g_assert_nonnull (strstr (out, "--port"));
  g_assert_nonnull (strstr (out, "--port-file"));
  g_assert_nonnull (strstr (out, "--version"));
}

static void
test_version (void)
{
  const char *args[] = { "--version", NULL };
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;
  int status;

  g_test_summary ("--version prints the name and version and exits 0");

  out = run_daemon (args, &status, &err);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, PACKAGE_NAME " " VERSION "\n");
}

static void
assert_refused (const char * const *args,
                const char         *message)
{
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;
  int status;

  out = run_daemon (args, &status, &err);
  g_assert_cmpint (status, !=, 0);
  g_assert_cmpstr (out, ==, "");
  /* One clear line, no crash and no GLib critical. */
  g_assert_nonnull (strstr (err, message));
  g_assert_null (strstr (err, "CRITICAL"));
  g_assert_cmpuint (strlen (err), >, 0);
  g_assert_true (strchr (err, '\n') == err + strlen (err) - 1);
}

static void
test_bad_options (void)
{
  const char *unknown[] = { "--frobnicate", NULL };
  const char *not_a_number[] = { "--port=abc", NULL };
  const char *too_big[] = { "--port=65536", NULL };
  const char *negative[] = { "--port=-1", NULL };
  const char *bad_address[] = { "--address=localhost.invalid", NULL };

  g_test_summary ("A bad option or option value is refused with one line and a non-zero exit");

  assert_refused (unknown, "--frobnicate");
  assert_refused (not_a_number, "abc");
  assert_refused (too_big, "65536");
  assert_refused (negative, "-1");
  assert_refused (bad_address, "localhost.invalid");
}

static void
test_port_in_use (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autofree char *port_arg = NULL;
  const char *args[3] = { NULL, NULL, NULL };

  g_test_summary ("A port already in use ends the process with a clear error");

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (socket, any, FALSE, &error);
  g_assert_no_error (error);
  g_socket_listen (socket, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);

  port_arg = g_strdup_printf ("--port=%u",
                              g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  args[0] = port_arg;
  assert_refused (args, "Address already in use");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/cli/help", test_help);
  g_test_add_func ("/kv/cli/version", test_version);
  g_test_add_func ("/kv/cli/bad-options", test_bad_options);
  g_test_add_func ("/kv/cli/port-in-use", test_port_in_use);

  return g_test_run ();
}
