/* test-data.c: the files crafty-kv installs besides itself: the systemd
 * units and the man page
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "kv-config.h"
#include "kv-test-utils.h"

/* systemd-analyze --user needs a runtime directory and looks for the
 * user's units: test-local ones. */
typedef struct
{
  char *runtime_dir;
  char *man_dir;
  GPtrArray *env;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  const char *man_page = g_getenv ("KV_TEST_MAN_PAGE");
  g_autofree char *man = g_find_program_in_path ("man");

  fixture->runtime_dir = g_dir_make_tmp ("crafty-kv-runtime-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->env = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (fixture->env, g_strconcat ("XDG_RUNTIME_DIR=", fixture->runtime_dir, NULL));
  /* The user's own unit directories empty and out of the way, and the
   * system's where a session has them (GLib's isolated test directories
   * are not directories to systemd). */
  g_ptr_array_add (fixture->env, g_strconcat ("XDG_CONFIG_HOME=", fixture->runtime_dir,
                                              "/config", NULL));
  g_ptr_array_add (fixture->env, g_strconcat ("XDG_DATA_HOME=", fixture->runtime_dir,
                                              "/data", NULL));
  g_ptr_array_add (fixture->env, g_strdup ("XDG_CONFIG_DIRS=/etc/xdg"));
  g_ptr_array_add (fixture->env, g_strdup ("XDG_DATA_DIRS=/usr/local/share:/usr/share"));

  /* Documentation=man:crafty-kv(1) is checked with man(1): show it the
   * built page. */
  if (man_page != NULL && man != NULL)
    {
      g_autofree char *man1 = NULL;
      g_autofree char *link = NULL;

      fixture->man_dir = g_dir_make_tmp ("crafty-kv-man-XXXXXX", &error);
      g_assert_no_error (error);
      man1 = g_build_filename (fixture->man_dir, "man1", NULL);
      link = g_build_filename (man1, "crafty-kv.1", NULL);
      g_assert_cmpint (g_mkdir (man1, 0700), ==, 0);
      g_assert_cmpint (symlink (man_page, link), ==, 0);
      g_ptr_array_add (fixture->env, g_strconcat ("MANPATH=", fixture->man_dir, NULL));
    }
  g_ptr_array_add (fixture->env, NULL);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  if (fixture->man_dir != NULL)
    {
      kv_test_remove_tree (fixture->man_dir);
      g_free (fixture->man_dir);
    }
  kv_test_remove_tree (fixture->runtime_dir);
  g_free (fixture->runtime_dir);
  g_ptr_array_unref (fixture->env);
}

static gboolean
have_systemd_analyze (void)
{
  g_autofree char *path = g_find_program_in_path ("systemd-analyze");

  if (path == NULL)
    g_test_skip ("systemd-analyze is not installed");

  return path != NULL;
}

/* The units as installed, except that ExecStart= runs the built daemon. */
static char *
build_unit_path (const char *name)
{
  const char *dir = g_getenv ("KV_TEST_UNITS_DIR");

  g_assert_nonnull (dir);
  return g_build_filename (dir, name, NULL);
}

static int
run_analyze (Fixture             *fixture,
             const char * const  *argv,
             char               **output)
{
  g_autoptr(GBytes) out = NULL;
  g_autofree char *err = NULL;
  int status;

  out = kv_test_run_with_env (argv, (const char * const *) fixture->env->pdata, &status, &err);
  *output = g_strdup_printf ("%.*s%s", (int) g_bytes_get_size (out),
                             (const char *) g_bytes_get_data (out, NULL), err);

  return status;
}

static void
test_verify (Fixture       *fixture,
             gconstpointer  user_data)
{
  g_autofree char *socket_unit = build_unit_path ("crafty-kv.socket");
  g_autofree char *service_unit = build_unit_path ("crafty-kv.service");
  const char *man = fixture->man_dir != NULL ? "--man=yes" : "--man=no";
  g_autofree char *output = NULL;

  g_test_summary ("systemd-analyze --user verify passes on the socket and service units, "
                  "with no warning");

  if (!have_systemd_analyze ())
    return;
  if (fixture->man_dir == NULL)
    g_test_message ("The man page was not built, or man(1) is missing: Documentation= "
                    "goes unchecked");

  g_assert_cmpint (run_analyze (fixture,
                                (const char *[]) { "systemd-analyze", "--user", "verify", man,
                                                   socket_unit, service_unit, NULL },
                                &output), ==, 0);
  g_assert_cmpstr (output, ==, "");
}

static void
test_verify_fails (Fixture       *fixture,
                   gconstpointer  user_data)
{
  g_autofree char *service_unit = build_unit_path ("crafty-kv.service");
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *broken_unit = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *output = NULL;
  g_autoptr(GString) broken = NULL;

  g_test_summary ("The verification does fail on a unit whose ExecStart= is not there");

  if (!have_systemd_analyze ())
    return;

  g_file_get_contents (service_unit, &contents, NULL, &error);
  g_assert_no_error (error);
  broken = g_string_new (contents);
  g_assert_cmpuint (g_string_replace (broken, "/crafty-kv --", "/no-such-crafty-kv --", 1), ==, 1);

  dir = g_dir_make_tmp ("crafty-kv-units-XXXXXX", &error);
  g_assert_no_error (error);
  broken_unit = g_build_filename (dir, "crafty-kv.service", NULL);
  g_file_set_contents (broken_unit, broken->str, -1, &error);
  g_assert_no_error (error);

  g_assert_cmpint (run_analyze (fixture,
                                (const char *[]) { "systemd-analyze", "--user", "verify",
                                                   "--man=no", broken_unit, NULL },
                                &output), !=, 0);
  g_assert_nonnull (strstr (output, "no-such-crafty-kv"));

  g_unlink (broken_unit);
  g_rmdir (dir);
}

/* The exposure level README states, as systemd-analyze's --threshold
 * counts it: tenths. */
#define EXPOSURE_THRESHOLD "35"

static void
test_security (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autofree char *service_unit = build_unit_path ("crafty-kv.service");
  g_autofree char *output = NULL;
  g_autofree char *stricter_output = NULL;

  g_test_summary ("systemd-analyze --user security rates the service at most 3.5, as "
                  "README says");

  if (!have_systemd_analyze ())
    return;

  g_assert_cmpint (run_analyze (fixture,
                                (const char *[]) { "systemd-analyze", "--user", "security",
                                                   "--offline=true",
                                                   "--threshold=" EXPOSURE_THRESHOLD,
                                                   service_unit, NULL },
                                &output), ==, 0);
  g_assert_nonnull (strstr (output, "Overall exposure level for crafty-kv.service: 3.5 OK"));

  /* The threshold is a real bound: one tenth less fails. */
  g_assert_cmpint (run_analyze (fixture,
                                (const char *[]) { "systemd-analyze", "--user", "security",
                                                   "--offline=true", "--threshold=34",
                                                   service_unit, NULL },
                                &stricter_output), !=, 0);
}

/* Each option in --help has its entry in the man page. */
static void
test_man_page (void)
{
  g_autofree char *source = g_test_build_filename (G_TEST_DIST, "..", "data",
                                                   "crafty-kv.1.scd", NULL);
  g_autofree GOptionEntry *entries = kv_config_dup_option_entries ();
  const char *others[] = { "config", "version", "help" };
  g_autoptr(GError) error = NULL;
  g_autofree char *page = NULL;

  g_test_summary ("The man page describes every option and configuration key");

  g_file_get_contents (source, &page, NULL, &error);
  g_assert_no_error (error);

  for (GOptionEntry *entry = entries; entry->long_name != NULL; entry++)
    {
      g_autofree char *option = g_strdup_printf ("\n*--%s* _%s_\n\t", entry->long_name,
                                                 entry->arg_description);
      g_autofree char *key = g_strdup_printf ("\n%s=", entry->long_name);

      if (strstr (page, option) == NULL)
        g_error ("crafty-kv.1.scd does not describe --%s", entry->long_name);
      if (strstr (page, key) == NULL)
        g_error ("crafty-kv.1.scd does not show the configuration key %s", entry->long_name);
    }

  for (guint i = 0; i < G_N_ELEMENTS (others); i++)
    {
      g_autofree char *option = g_strdup_printf ("*--%s*", others[i]);

      g_assert_nonnull (strstr (page, option));
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add ("/kv/data/units/verify", Fixture, NULL, fixture_setup, test_verify,
              fixture_teardown);
  g_test_add ("/kv/data/units/verify-fails", Fixture, NULL, fixture_setup, test_verify_fails,
              fixture_teardown);
  g_test_add ("/kv/data/units/security", Fixture, NULL, fixture_setup, test_security,
              fixture_teardown);
  g_test_add_func ("/kv/data/man-page", test_man_page);

  return g_test_run ();
}
