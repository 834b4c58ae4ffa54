/* test-cli.c: crafty-kv's command line
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <locale.h>
#include <string.h>
#include <glib/gstdio.h>

#include "kv-config.h"
#include "kv-test-utils.h"

static char *
run_daemon_with_env (const char * const *args,
                     const char * const *envp,
                     int                *status,
                     char              **err)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GBytes) out = NULL;

  g_ptr_array_add (argv, (gpointer) kv_test_daemon_path ());
  for (gsize i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  out = kv_test_run_with_env ((const char * const *) argv->pdata, envp, status, err);
  return g_strndup (g_bytes_get_size (out) > 0 ? g_bytes_get_data (out, NULL) : "",
                    g_bytes_get_size (out));
}

static void assert_refused (const char * const *args,
                            const char         *message);

static char *
run_daemon (const char * const *args,
            int                *status,
            char              **err)
{
  return run_daemon_with_env (args, NULL, status, err);
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
  g_assert_nonnull (strstr (out, "--unix-socket=PATH"));
  g_assert_nonnull (strstr (out, "--shutdown-timeout=SECONDS"));
  g_assert_nonnull (strstr (out, "--config"));
  g_assert_nonnull (strstr (out, "--version"));
}

static void
test_help_no_gapplication (void)
{
  const char *help[] = { "--help", NULL };
  const char *help_all[] = { "--help-all", NULL };
  const char *service[] = { "--gapplication-service", NULL };
  const char * const *helps[] = { help, help_all };

  g_test_summary ("--help lists crafty-kv's options only, none of GApplication's, which "
                  "crafty-kv does not take either");

  for (gsize i = 0; i < G_N_ELEMENTS (helps); i++)
    {
      g_autofree char *err = NULL;
      g_autofree char *out = NULL;
      g_autofree char *lower = NULL;
      int status;

      out = run_daemon (helps[i], &status, &err);
      g_assert_cmpint (status, ==, 0);
      g_assert_nonnull (strstr (out, "--config"));
      lower = g_ascii_strdown (out, -1);
      g_assert_null (strstr (lower, "gapplication"));
    }

  assert_refused (service, "--gapplication-service");
}

static gboolean
have_locale (const char *name)
{
  locale_t locale = newlocale (LC_ALL_MASK, name, (locale_t) 0);

  if (locale == (locale_t) 0)
    return FALSE;

  freelocale (locale);
  return TRUE;
}

static void
test_help_translated (void)
{
  const char *args[] = { "--help", NULL };
  /* LANGUAGE would take precedence over LC_ALL. */
  const char *envp[] = { "LC_ALL=de_DE.UTF-8", "LANGUAGE", NULL };
  g_autofree GOptionEntry *entries = kv_config_dup_option_entries ();
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;
  int status;

  g_test_summary ("--help in German shows the German translation of every line of "
                  "crafty-kv's own");

  /* build-aux/test generates the locale when it is missing. */
  if (!have_locale ("de_DE.UTF-8"))
    {
      g_test_skip ("The de_DE.UTF-8 locale is not available");
      return;
    }

  out = run_daemon_with_env (args, envp, &status, &err);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (err, ==, "");

  g_assert_nonnull (strstr (out, "Ein Schlüssel-Wert-Speicher im Arbeitsspeicher, "
                                 "bereitgestellt über HTTP."));
  g_assert_nonnull (strstr (out, "--address=ADRESSE"));
  g_assert_nonnull (strstr (out, "Auf ADRESSE lauschen, einer IPv4- oder IPv6-Adresse"));
  g_assert_nonnull (strstr (out, "--unix-socket=PFAD"));
  g_assert_nonnull (strstr (out, "--config=DATEI"));

  /* No description is left in English: a new setting needs its
   * translation. */
  for (GOptionEntry *entry = entries; entry->long_name != NULL; entry++)
    {
      if (strstr (out, entry->description) != NULL)
        g_error ("--help in German shows “%s” untranslated", entry->description);
    }
  g_assert_null (strstr (out, "Print the version and exit"));
  g_assert_null (strstr (out, "Read settings from FILE"));
}

static void
test_error_translated (void)
{
  const char *args[] = { "--address=nowhere", NULL };
  const char *envp[] = { "LC_ALL=de_DE.UTF-8", "LANGUAGE", NULL };
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;
  int status;

  g_test_summary ("Errors are translated too");

  if (!have_locale ("de_DE.UTF-8"))
    {
      g_test_skip ("The de_DE.UTF-8 locale is not available");
      return;
    }

  out = run_daemon_with_env (args, envp, &status, &err);
  g_assert_cmpint (status, ==, 1);
  g_assert_cmpstr (err, ==, "crafty-kv: ungültige Adresse „nowhere“: muss eine IPv4- oder "
                            "IPv6-Adresse sein\n");
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
assert_refused_with_env (const char * const *args,
                         const char * const *envp,
                         const char         *message)
{
  g_autofree char *err = NULL;
  g_autofree char *out = NULL;
  int status;

  out = run_daemon_with_env (args, envp, &status, &err);
  g_assert_cmpint (status, !=, 0);
  g_assert_cmpstr (out, ==, "");
  /* One clear line, no crash and no GLib critical. */
  g_assert_nonnull (strstr (err, message));
  g_assert_null (strstr (err, "CRITICAL"));
  g_assert_cmpuint (strlen (err), >, 0);
  g_assert_true (strchr (err, '\n') == err + strlen (err) - 1);
}

static void
assert_refused (const char * const *args,
                const char         *message)
{
  assert_refused_with_env (args, NULL, message);
}

static void
test_bad_options (void)
{
  const char *unknown[] = { "--frobnicate", NULL };
  const char *not_a_number[] = { "--port=abc", NULL };
  const char *too_big[] = { "--port=65536", NULL };
  const char *negative[] = { "--port=-1", NULL };
  const char *bad_address[] = { "--address=localhost.invalid", NULL };
  /* The bad address makes a daemon that let the argument through exit. */
  const char *argument[] = { "--address=nowhere", "stray", NULL };

  g_test_summary ("A bad option or option value is refused with one line and a non-zero exit");

  assert_refused (unknown, "--frobnicate");
  assert_refused (not_a_number, "abc");
  assert_refused (too_big, "65536");
  assert_refused (negative, "-1");
  assert_refused (bad_address, "localhost.invalid");
  assert_refused (argument, "unexpected argument “stray”");
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

static void
write_file (const char *path,
            const char *contents)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static void
test_config_errors (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("crafty-kv-test-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "crafty-kv.conf", NULL);
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  g_autofree char *missing_arg = g_strconcat ("--config=", dir, "/missing.conf", NULL);
  g_autofree char *unknown_key = g_strdup_printf ("%s:3: unknown key “prot”", path);
  g_autofree char *bad_value = g_strdup_printf ("%s:2: invalid value “-5” for shutdown-timeout",
                                                path);
  const char *with_config[] = { config_arg, NULL };
  const char *with_missing[] = { missing_arg, NULL };

  g_test_summary ("A bad configuration file ends the process with one line naming the "
                  "file and line, and a non-zero exit");

  g_assert_no_error (error);

  write_file (path, "[server]\naddress=127.0.0.1\nprot=8080\n");
  assert_refused (with_config, unknown_key);

  write_file (path, "[server]\nshutdown-timeout=-5\n");
  assert_refused (with_config, bad_value);

  assert_refused (with_missing, "missing.conf");

  g_unlink (path);
  g_rmdir (dir);
}

static void
test_config_default_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("crafty-kv-test-XXXXXX", &error);
  g_autofree char *subdir = g_build_filename (dir, "crafty-kv", NULL);
  g_autofree char *path = g_build_filename (subdir, "crafty-kv.conf", NULL);
  g_autofree char *message = g_strdup_printf ("%s:2: invalid value “many” for max-key-size",
                                              path);
  g_autofree char *config_home = g_strconcat ("XDG_CONFIG_HOME=", dir, NULL);
  const char *envp[] = { config_home, NULL };
  const char *no_args[] = { NULL };

  g_test_summary ("Without --config, $XDG_CONFIG_HOME/crafty-kv/crafty-kv.conf is read");

  g_assert_no_error (error);
  write_file (path, "[server]\nmax-key-size=many\n");
  assert_refused_with_env (no_args, envp, message);

  g_unlink (path);
  g_rmdir (subdir);
  g_rmdir (dir);
}

static void
test_config_search_order (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("crafty-kv-test-XXXXXX", &error);
  g_autofree char *home = g_build_filename (dir, "home", NULL);
  g_autofree char *first = g_build_filename (dir, "first", NULL);
  g_autofree char *second = g_build_filename (dir, "second", NULL);
  g_autofree char *home_file = g_build_filename (home, "crafty-kv", "crafty-kv.conf", NULL);
  g_autofree char *first_file = g_build_filename (first, "crafty-kv", "crafty-kv.conf", NULL);
  g_autofree char *second_file = g_build_filename (second, "crafty-kv", "crafty-kv.conf", NULL);
  g_autofree char *given_file = g_build_filename (dir, "given.conf", NULL);
  g_autofree char *config_arg = g_strconcat ("--config=", given_file, NULL);
  g_autofree char *home_env = g_strconcat ("XDG_CONFIG_HOME=", home, NULL);
  g_autofree char *dirs_env = g_strconcat ("XDG_CONFIG_DIRS=", first, ":", second, NULL);
  const char *envp[] = { home_env, dirs_env, NULL };
  /* A bad address as well: a daemon that read no file must exit too,
   * rather than serve and hang the test. */
  const char *no_args[] = { "--address=nowhere", NULL };
  const char *with_config[] = { config_arg, "--address=nowhere", NULL };
  const struct
  {
    const char *path;
    const char * const *args;
  } order[] = {
    { given_file, with_config },
    { home_file, no_args },
    { first_file, no_args },
    { second_file, no_args },
  };

  g_test_summary ("The key file is --config FILE, else crafty-kv/crafty-kv.conf in "
                  "$XDG_CONFIG_HOME, else in the first of $XDG_CONFIG_DIRS that has one");

  g_assert_no_error (error);

  /* Each file is broken in its own way, so that the error tells which one
   * was read. */
  for (gsize i = 0; i < G_N_ELEMENTS (order); i++)
    {
      g_autofree char *contents = g_strdup_printf ("[server]\nmax-key-size=%zu-%zu\n", i, i);

      write_file (order[i].path, contents);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (order); i++)
    {
      g_autofree char *message = g_strdup_printf ("%s:2: invalid value “%zu-%zu” for "
                                                  "max-key-size", order[i].path, i, i);

      assert_refused_with_env (order[i].args, envp, message);
      /* The next one is read once this one is gone. */
      if (i > 0)
        g_unlink (order[i].path);
    }

  kv_test_remove_tree (dir);
}

static void
test_config_overridden (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("crafty-kv-test-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "crafty-kv.conf", NULL);
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  const char *args[] = { config_arg, "--address=127.0.0.1", NULL };
  KvTestDaemon *daemon;

  g_test_summary ("The command line overrides the configuration file");

  g_assert_no_error (error);

  /* Either setting from the file alone would stop the daemon from starting:
   * kv_test_daemon_start() gives --port=0, and --address here. */
  write_file (path, "[server]\naddress=not an address\nport=1\n");
  daemon = kv_test_daemon_start (args);
  g_assert_cmpuint (kv_test_daemon_get_port (daemon), !=, 1);
  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);

  g_unlink (path);
  g_rmdir (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/cli/help", test_help);
  g_test_add_func ("/kv/cli/help/no-gapplication", test_help_no_gapplication);
  g_test_add_func ("/kv/cli/help/translated", test_help_translated);
  g_test_add_func ("/kv/cli/error-translated", test_error_translated);
  g_test_add_func ("/kv/cli/version", test_version);
  g_test_add_func ("/kv/cli/bad-options", test_bad_options);
  g_test_add_func ("/kv/cli/port-in-use", test_port_in_use);
  g_test_add_func ("/kv/cli/config/errors", test_config_errors);
  g_test_add_func ("/kv/cli/config/default-file", test_config_default_file);
  g_test_add_func ("/kv/cli/config/search-order", test_config_search_order);
  g_test_add_func ("/kv/cli/config/overridden", test_config_overridden);

  return g_test_run ();
}
