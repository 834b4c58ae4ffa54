/* test-config.c: KvConfig, from defaults, key files and options
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#include <glib/gstdio.h>

#include "kv-config.h"

typedef struct
{
  KvConfig *config;
  char *dir;
  char *path;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  fixture->config = kv_config_new ();
  fixture->dir = g_dir_make_tmp ("crafty-kv-config-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->path = g_build_filename (fixture->dir, "crafty-kv.conf", NULL);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_unlink (fixture->path);
  g_rmdir (fixture->dir);
  g_free (fixture->path);
  g_free (fixture->dir);
  g_assert_finalize_object (fixture->config);
}

static void
write_file (Fixture    *fixture,
            const char *contents)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (fixture->path, contents, -1, &error);
  g_assert_no_error (error);
}

static GVariantDict *
options_new (const char *first_name,
             ...)
{
  GVariantDict *options = g_variant_dict_new (NULL);
  const char *name;
  va_list args;

  /* Pairs of option name and value, as GApplication hands string options
   * over. */
  va_start (args, first_name);
  for (name = first_name; name != NULL; name = va_arg (args, const char *))
    g_variant_dict_insert (options, name, "s", va_arg (args, const char *));
  va_end (args);

  return options;
}

static void
test_defaults (Fixture       *fixture,
               gconstpointer  user_data)
{
  KvLimits limits;

  g_test_summary ("Every setting has the default that --help and the man page document");

  g_assert_cmpstr (kv_config_get_address (fixture->config), ==, "127.0.0.1");
  g_assert_cmpuint (kv_config_get_port (fixture->config), ==, 8888);
  g_assert_null (kv_config_get_port_file (fixture->config));
  g_assert_null (kv_config_get_unix_socket (fixture->config));
  g_assert_cmpuint (kv_config_get_max_value_size (fixture->config), ==, 1024 * 1024);
  g_assert_cmpuint (kv_config_get_max_key_size (fixture->config), ==, 1024);
  g_assert_cmpuint (kv_config_get_shutdown_timeout (fixture->config), ==, 5);
  kv_config_get_limits (fixture->config, &limits);
  g_assert_cmpuint (limits.max_import_size, ==, G_GUINT64_CONSTANT (1) << 30);
  g_assert_cmpuint (limits.max_watchers, ==, 256);
  g_assert_cmpuint (limits.watch_heartbeat, ==, 15);
  g_assert_cmpuint (limits.watch_buffer, ==, 1024 * 1024);
  g_assert_cmpuint (limits.max_wait, ==, 300);
  g_assert_cmpuint (kv_config_get_watch_history (fixture->config), ==, 10000);
  g_assert_cmpuint (kv_config_get_watch_history_size (fixture->config), ==, 64 * 1024 * 1024);
}

static void
test_file (Fixture       *fixture,
           gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  g_test_summary ("A key file sets every setting it names, and leaves the others alone");

  write_file (fixture,
              "# a comment\n"
              "[server]\n"
              "address = ::1\n"
              "unix-socket=/run/kv.sock\n"
              "shutdown-timeout=0\n"
              "max-key-size=10\n");
  g_assert_true (kv_config_load_file (fixture->config, fixture->path, &error));
  g_assert_no_error (error);

  g_assert_cmpstr (kv_config_get_address (fixture->config), ==, "::1");
  g_assert_cmpstr (kv_config_get_unix_socket (fixture->config), ==, "/run/kv.sock");
  g_assert_cmpuint (kv_config_get_shutdown_timeout (fixture->config), ==, 0);
  g_assert_cmpuint (kv_config_get_max_key_size (fixture->config), ==, 10);
  g_assert_cmpuint (kv_config_get_port (fixture->config), ==, 8888);
  g_assert_cmpuint (kv_config_get_max_value_size (fixture->config), ==, 1024 * 1024);
}

static void
test_precedence (Fixture       *fixture,
                 gconstpointer  user_data)
{
  g_autoptr(GVariantDict) options = NULL;
  g_autoptr(GError) error = NULL;

  g_test_summary ("The command line overrides the key file, setting by setting");

  write_file (fixture,
              "[server]\n"
              "port=1234\n"
              "shutdown-timeout=9\n"
              "unix-socket=/run/kv.sock\n");
  g_assert_true (kv_config_load_file (fixture->config, fixture->path, &error));
  g_assert_no_error (error);

  options = options_new ("port", "4321", "unix-socket", "", NULL);
  g_assert_true (kv_config_apply_options (fixture->config, options, &error));
  g_assert_no_error (error);

  g_assert_cmpuint (kv_config_get_port (fixture->config), ==, 4321);
  g_assert_cmpuint (kv_config_get_shutdown_timeout (fixture->config), ==, 9);
  /* An empty value on the command line takes back the file's socket. */
  g_assert_null (kv_config_get_unix_socket (fixture->config));
}

static void
assert_load_error (Fixture    *fixture,
                   const char *contents,
                   int         code,
                   guint       line,
                   const char *detail)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *where = g_strdup_printf ("%s:%u: ", fixture->path, line);

  write_file (fixture, contents);
  g_assert_false (kv_config_load_file (fixture->config, fixture->path, &error));
  g_assert_error (error, KV_CONFIG_ERROR, code);
  g_assert_true (g_str_has_prefix (error->message, where));
  g_assert_nonnull (strstr (error->message, detail));
  g_assert_null (strchr (error->message, '\n'));
}

static void
test_unknown_key (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_test_summary ("An unknown key or group is an error naming the file and line");

  assert_load_error (fixture, "[server]\n# port=1\n\nprot=1\n",
                     KV_CONFIG_ERROR_UNKNOWN_KEY, 4, "prot");
  assert_load_error (fixture, "[server]\nport=1\n[client]\nport=2\n",
                     KV_CONFIG_ERROR_UNKNOWN_KEY, 3, "[client]");
  /* Options that are not settings are not keys either. */
  assert_load_error (fixture, "[server]\nconfig=/etc/passwd\n",
                     KV_CONFIG_ERROR_UNKNOWN_KEY, 2, "config");
}

static void
test_bad_value (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_test_summary ("A value that does not parse or is out of range is an error naming "
                  "the file and line");

  assert_load_error (fixture, "[server]\naddress=::1\nport=http\n",
                     KV_CONFIG_ERROR_INVALID_VALUE, 3, "“http” for port");
  assert_load_error (fixture, "[server]\nport=65536\n",
                     KV_CONFIG_ERROR_INVALID_VALUE, 2, "0–65535");
  assert_load_error (fixture, "[server]\nshutdown-timeout=-1\n",
                     KV_CONFIG_ERROR_INVALID_VALUE, 2, "shutdown-timeout");
  assert_load_error (fixture, "[server]\nshutdown-timeout=3601\n",
                     KV_CONFIG_ERROR_INVALID_VALUE, 2, "0–3600");
  assert_load_error (fixture, "[server]\nmax-value-size=0\n",
                     KV_CONFIG_ERROR_INVALID_VALUE, 2, "max-value-size");
}

static void
test_bad_syntax (Fixture       *fixture,
                 gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  g_test_summary ("A file that is not a key file is an error naming the file");

  write_file (fixture, "port=1\n");
  g_assert_false (kv_config_load_file (fixture->config, fixture->path, &error));
  g_assert_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_INVALID_VALUE);
  g_assert_true (g_str_has_prefix (error->message, fixture->path));
}

static void
test_bad_option (Fixture       *fixture,
                 gconstpointer  user_data)
{
  g_autoptr(GVariantDict) options = options_new ("shutdown-timeout", "soon", NULL);
  g_autoptr(GError) error = NULL;

  g_test_summary ("A bad option value is an error naming the option");

  g_assert_false (kv_config_apply_options (fixture->config, options, &error));
  g_assert_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_INVALID_VALUE);
  g_assert_true (g_str_has_prefix (error->message, "--shutdown-timeout: "));
  g_assert_cmpuint (kv_config_get_shutdown_timeout (fixture->config), ==, 5);
}

static void
test_option_entries (void)
{
  g_autofree GOptionEntry *entries = kv_config_dup_option_entries ();
  g_autoptr(GTypeClass) type_class = g_type_class_ref (KV_TYPE_CONFIG);
  GObjectClass *klass = G_OBJECT_CLASS (type_class);
  g_autofree GParamSpec **pspecs = NULL;
  guint n_properties, n_entries = 0;

  g_test_summary ("Every setting is a command-line option, with an argument name and "
                  "a description");

  for (GOptionEntry *entry = entries; entry->long_name != NULL; entry++)
    {
      g_assert_nonnull (g_object_class_find_property (klass, entry->long_name));
      g_assert_nonnull (entry->description);
      g_assert_nonnull (entry->arg_description);
      n_entries++;
    }
  pspecs = g_object_class_list_properties (klass, &n_properties);
  g_assert_cmpuint (n_entries, ==, n_properties);
}

static void
write_path (const char *path,
            const char *contents)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static void
test_find_file (void)
{
  const char * const *system_dirs = g_get_system_config_dirs ();
  g_autofree char *user = g_build_filename (g_get_user_config_dir (), "crafty-kv",
                                            "crafty-kv.conf", NULL);
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  g_autofree char *found = NULL;

  g_test_summary ("The key file is crafty-kv/crafty-kv.conf in $XDG_CONFIG_HOME, else in "
                  "the first of $XDG_CONFIG_DIRS that has one");

  /* GLib's isolated directories give two system ones. */
  g_assert_nonnull (system_dirs[0]);
  g_assert_nonnull (system_dirs[1]);
  first = g_build_filename (system_dirs[0], "crafty-kv", "crafty-kv.conf", NULL);
  second = g_build_filename (system_dirs[1], "crafty-kv", "crafty-kv.conf", NULL);

  g_assert_null (kv_config_find_file ());

  write_path (second, "[server]\n");
  found = kv_config_find_file ();
  g_assert_cmpstr (found, ==, second);
  g_clear_pointer (&found, g_free);

  write_path (first, "[server]\n");
  found = kv_config_find_file ();
  g_assert_cmpstr (found, ==, first);
  g_clear_pointer (&found, g_free);

  write_path (user, "[server]\n");
  found = kv_config_find_file ();
  g_assert_cmpstr (found, ==, user);
  g_clear_pointer (&found, g_free);

  /* Found even when it cannot be read: loading it then says why. */
  g_assert_cmpint (g_chmod (user, 0), ==, 0);
  found = kv_config_find_file ();
  g_assert_cmpstr (found, ==, user);

  g_unlink (user);
  g_unlink (first);
  g_unlink (second);
}

static void
test_check (Fixture       *fixture,
            gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  g_test_summary ("The address is checked once the file and the command line have both "
                  "had their say");

  g_assert_true (kv_config_check (fixture->config, &error));
  g_assert_no_error (error);

  g_object_set (fixture->config, "address", "localhost", NULL);
  g_assert_false (kv_config_check (fixture->config, &error));
  g_assert_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_INVALID_VALUE);
  g_assert_nonnull (strstr (error->message, "“localhost”"));
  g_clear_error (&error);

  g_object_set (fixture->config, "address", "::1", NULL);
  g_assert_true (kv_config_check (fixture->config, &error));
  g_assert_no_error (error);
}

static void
test_changes (Fixture       *fixture,
              gconstpointer  user_data)
{
  g_autoptr(KvConfig) other = kv_config_new ();
  const char *origins[] = { "http://a", "http://b", NULL };
  const char *no_origins[] = { NULL };
  g_auto(GStrv) changes = NULL;
  g_autofree char *text = NULL;

  g_test_summary ("Two sets of settings are compared setting by setting, none and empty "
                  "being the same, for a reload to tell what it changes");

  changes = kv_config_list_changes (fixture->config, other);
  g_assert_cmpuint (g_strv_length (changes), ==, 0);
  g_clear_pointer (&changes, g_strfreev);

  /* Empty is none, for a string and a list alike. */
  g_object_set (other, "unix-socket", "", "allow-origin", no_origins, NULL);
  changes = kv_config_list_changes (fixture->config, other);
  g_assert_cmpuint (g_strv_length (changes), ==, 0);
  g_clear_pointer (&changes, g_strfreev);

  g_object_set (other,
                "port", 9000,
                "max-value-size", (guint64) 10,
                "token-file", "/t",
                "allow-origin", origins,
                NULL);
  changes = kv_config_list_changes (fixture->config, other);
  g_assert_cmpstrv (changes, ((const char * const []) {
    "port", "max-value-size", "token-file", "allow-origin", NULL }));

  text = kv_config_dup_value_text (other, "max-value-size");
  g_assert_cmpstr (text, ==, "10");
  g_clear_pointer (&text, g_free);
  text = kv_config_dup_value_text (other, "allow-origin");
  g_assert_cmpstr (text, ==, "http://a;http://b");
  g_clear_pointer (&text, g_free);
  text = kv_config_dup_value_text (fixture->config, "token-file");
  g_assert_cmpstr (text, ==, "none");
  g_clear_pointer (&text, g_free);

  kv_config_copy_setting (other, fixture->config, "port");
  g_assert_cmpuint (kv_config_get_port (other), ==, 8888);
}

static void
test_needs_restart (void)
{
  const char *restart[] = { "address", "port", "port-file", "unix-socket", "threads", "data-dir",
                            "working-dir", "fsync", "snapshot-log-size" };
  g_autoptr(GTypeClass) type_class = g_type_class_ref (KV_TYPE_CONFIG);
  g_autofree GParamSpec **pspecs = NULL;
  guint n_properties;

  g_test_summary ("What the sockets, threads and store are made from needs a restart to change; "
                  "every other setting a reload applies");

  pspecs = g_object_class_list_properties (G_OBJECT_CLASS (type_class), &n_properties);
  for (guint i = 0; i < n_properties; i++)
    {
      const char *name = g_param_spec_get_name (pspecs[i]);
      gboolean expected = FALSE;

      for (gsize j = 0; j < G_N_ELEMENTS (restart); j++)
        expected |= g_str_equal (name, restart[j]);

      g_test_message ("%s", name);
      g_assert_cmpint (kv_config_needs_restart (name), ==, expected);
    }
}

/* The shipped example, data/crafty-kv.conf, shows every setting with its
 * default, commented out. */
static void
test_example_file (Fixture       *fixture,
                   gconstpointer  user_data)
{
  g_autofree char *example = g_test_build_filename (G_TEST_DIST, "..", "data",
                                                    "crafty-kv.conf", NULL);
  g_autoptr(GTypeClass) type_class = g_type_class_ref (KV_TYPE_CONFIG);
  g_autoptr(GString) uncommented = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autofree GParamSpec **pspecs = NULL;
  g_auto(GStrv) lines = NULL;
  guint n_properties;

  g_test_summary ("The example configuration loads, and names every setting with its "
                  "default");

  g_file_get_contents (example, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (kv_config_load_file (fixture->config, example, &error));
  g_assert_no_error (error);

  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];

      if (line[0] == '#' && g_ascii_islower (line[1]) && strchr (line, '=') != NULL)
        line++;
      g_string_append_printf (uncommented, "%s\n", line);
    }
  write_file (fixture, uncommented->str);
  g_assert_true (kv_config_load_file (fixture->config, fixture->path, &error));
  g_assert_no_error (error);

  pspecs = g_object_class_list_properties (G_OBJECT_CLASS (type_class), &n_properties);
  for (guint i = 0; i < n_properties; i++)
    {
      const char *name = g_param_spec_get_name (pspecs[i]);
      g_autofree char *key = g_strdup_printf ("\n#%s=", name);
      g_auto(GValue) value = G_VALUE_INIT;

      if (strstr (contents, key) == NULL)
        g_error ("data/crafty-kv.conf does not show %s", name);

      /* Settings with no default (a file, a list) show an example value
       * instead. */
      if ((G_IS_PARAM_SPEC_STRING (pspecs[i]) &&
           G_PARAM_SPEC_STRING (pspecs[i])->default_value == NULL) ||
          G_IS_PARAM_SPEC_BOXED (pspecs[i]))
        continue;

      g_value_init (&value, pspecs[i]->value_type);
      g_object_get_property (G_OBJECT (fixture->config), name, &value);
      if (!g_param_value_defaults (pspecs[i], &value))
        g_error ("data/crafty-kv.conf shows %s with a value that is not its default", name);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add ("/kv/config/defaults", Fixture, NULL, fixture_setup, test_defaults,
              fixture_teardown);
  g_test_add ("/kv/config/file", Fixture, NULL, fixture_setup, test_file, fixture_teardown);
  g_test_add ("/kv/config/precedence", Fixture, NULL, fixture_setup, test_precedence,
              fixture_teardown);
  g_test_add ("/kv/config/unknown-key", Fixture, NULL, fixture_setup, test_unknown_key,
              fixture_teardown);
  g_test_add ("/kv/config/bad-value", Fixture, NULL, fixture_setup, test_bad_value,
              fixture_teardown);
  g_test_add ("/kv/config/bad-syntax", Fixture, NULL, fixture_setup, test_bad_syntax,
              fixture_teardown);
  g_test_add ("/kv/config/bad-option", Fixture, NULL, fixture_setup, test_bad_option,
              fixture_teardown);
  g_test_add_func ("/kv/config/option-entries", test_option_entries);
  g_test_add_func ("/kv/config/find-file", test_find_file);
  g_test_add ("/kv/config/check", Fixture, NULL, fixture_setup, test_check, fixture_teardown);
  g_test_add ("/kv/config/changes", Fixture, NULL, fixture_setup, test_changes,
              fixture_teardown);
  g_test_add_func ("/kv/config/needs-restart", test_needs_restart);
  g_test_add ("/kv/config/example-file", Fixture, NULL, fixture_setup, test_example_file,
              fixture_teardown);

  return g_test_run ();
}
