/* test-reload.c: the built crafty-kv reloading its settings on SIGHUP
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>

#include "kv-test-raw.h"
#include "kv-test-utils.h"

/* Starts @daemon with @args and @envp, adding --port-file, and waits until
 * it is ready; returns the port it listens on. */
static guint16
start (KvTestDaemon       *daemon,
       const char * const *args,
       const char * const *envp)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *port_file = kv_test_daemon_build_path (daemon, "port");
  g_autofree char *contents = NULL;
  g_autofree char *ready = NULL;
  g_autoptr(GError) error = NULL;
  guint16 port;

  g_ptr_array_add (argv, g_strdup (kv_test_daemon_path ()));
  g_ptr_array_add (argv, g_strconcat ("--port-file=", port_file, NULL));
  for (gsize i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  kv_test_daemon_spawn (daemon, (const char * const *) argv->pdata, envp);
  ready = kv_test_daemon_wait_notify (daemon, "READY=1", 10 * 1000);
  g_assert_nonnull (ready);

  g_file_get_contents (port_file, &contents, NULL, &error);
  g_assert_no_error (error);
  port = g_ascii_strtoull (contents, NULL, 10);
  g_assert_cmpuint (port, !=, 0);

  return port;
}

/* Sends SIGHUP and waits for the reload to end, as systemd would:
 * RELOADING=1, then READY=1. A daemon that SIGHUP kills sends neither. */
static void
reload (KvTestDaemon *daemon)
{
  g_autofree char *reloading = NULL;
  g_autofree char *ready = NULL;

  kv_test_daemon_signal (daemon, SIGHUP);
  reloading = kv_test_daemon_wait_notify (daemon, "RELOADING=1", 5 * 1000);
  g_assert_nonnull (reloading);
  ready = kv_test_daemon_wait_notify (daemon, "READY=1", 5 * 1000);
  g_assert_nonnull (ready);
}

static void
write_file (const char *path,
            const char *contents)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  /* Only its owner may read a token file; mode 0600 suits the others. */
  g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
  g_assert_no_error (error);
}

/* What the daemon logged since the last call; @offset keeps the place. */
static char *
dup_new_log (KvTestDaemon *daemon,
             gsize        *offset)
{
  g_autofree char *log = kv_test_daemon_dup_log (daemon);
  gsize len = strlen (log);
  char *fresh;

  g_assert_cmpuint (len, >=, *offset);
  fresh = g_strdup (log + *offset);
  *offset = len;

  return fresh;
}

/* The one line of @log that holds @needle, or %NULL. */
static char *
find_line (const char *log,
           const char *needle)
{
  g_auto(GStrv) lines = g_strsplit (log, "\n", -1);
  char *found = NULL;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (strstr (lines[i], needle) == NULL)
        continue;
      g_assert_null (found);
      found = g_strdup (lines[i]);
    }

  return found;
}

/* One request on a fresh connection; @token, when given, as the bearer
 * token. Returns the status. */
static guint
request (guint16     port,
         const char *method,
         const char *key,
         const char *value,
         const char *token)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(KvRawResponse) response = NULL;

  g_string_append_printf (text, "%s /kv/%s HTTP/1.1\r\nHost: localhost\r\n", method, key);
  if (token != NULL)
    g_string_append_printf (text, "Authorization: Bearer %s\r\n", token);
  if (value != NULL)
    g_string_append_printf (text, "Content-Length: %zu\r\n\r\n%s", strlen (value), value);
  else
    g_string_append (text, "\r\n");

  response = kv_raw_request (port, text->str);
  return response->status;
}

/* A PUT of @size bytes under @key. */
static guint
put_size (guint16     port,
          const char *key,
          gsize       size)
{
  g_autofree char *value = g_strnfill (size, 'v');

  return request (port, "PUT", key, value, NULL);
}

/* Each request on a fresh connection goes to the next thread: asking as
 * many times as there are threads asks every one of them. */
#define N_THREADS 3
#define THREADS_ARG "--threads=3"

static void
assert_status (guint16     port,
               const char *method,
               const char *token,
               guint       status)
{
  for (guint i = 0; i < N_THREADS; i++)
    g_assert_cmpuint (request (port, method, "k", strcmp (method, "PUT") == 0 ? "v" : NULL,
                               token), ==, status);
}

static void
assert_put_size (guint16     port,
                 const char *key,
                 gsize       size,
                 guint       status)
{
  for (guint i = 0; i < N_THREADS; i++)
    g_assert_cmpuint (put_size (port, key, size), ==, status);
}

static void
test_survives (void)
{
  KvTestDaemon *daemon = kv_test_daemon_start (NULL);
  guint16 port = kv_test_daemon_get_port (daemon);
  g_autofree char *log = NULL;
  g_autoptr(KvRawResponse) response = NULL;

  g_test_summary ("SIGHUP does not end crafty-kv: the data it holds survives, and it "
                  "goes on serving");

  g_assert_cmpuint (request (port, "PUT", "kenya:capital", "Nairobi", NULL), ==, 200);

  reload (daemon);
  reload (daemon);

  g_assert_nonnull (g_subprocess_get_identifier (kv_test_daemon_get_subprocess (daemon)));
  response = kv_raw_simple (port, "GET", "/kv/kenya:capital", NULL);
  g_assert_cmpuint (response->status, ==, 200);
  g_assert_true (kv_raw_response_body_is (response, "Nairobi"));

  log = kv_test_daemon_dup_log (daemon);
  g_assert_nonnull (strstr (log, "Reloaded the settings from the command line alone: "
                                 "no setting changed"));

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static void
test_notify (void)
{
  KvTestDaemon *daemon = kv_test_daemon_start (NULL);
  g_autofree char *reloading = NULL;
  g_autofree char *ready = NULL;
  g_auto(GStrv) lines = NULL;
  gint64 before, after, stamp = 0;

  g_test_summary ("A reload sends RELOADING=1 with MONOTONIC_USEC= (as Type=notify-reload "
                  "wants), then READY=1 with a STATUS=, to NOTIFY_SOCKET");

  before = g_get_monotonic_time ();
  kv_test_daemon_signal (daemon, SIGHUP);
  reloading = kv_test_daemon_wait_notify (daemon, "RELOADING=1", 5 * 1000);
  g_assert_nonnull (reloading);
  ready = kv_test_daemon_wait_notify (daemon, "READY=1", 5 * 1000);
  g_assert_nonnull (ready);
  after = g_get_monotonic_time ();

  /* The same clock as ours: CLOCK_MONOTONIC, in microseconds. */
  lines = g_strsplit (reloading, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (g_str_has_prefix (lines[i], "MONOTONIC_USEC="))
        g_assert_true (g_ascii_string_to_signed (lines[i] + strlen ("MONOTONIC_USEC="), 10,
                                                 0, G_MAXINT64, &stamp, NULL));
    }
  g_assert_cmpint (stamp, >=, before);
  g_assert_cmpint (stamp, <=, after);
  g_assert_null (strstr (reloading, "READY=1"));

  g_assert_nonnull (strstr (ready, "\nSTATUS=Keys: 0, requests served: "));

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static void
test_limits (void)
{
  KvTestDaemon *daemon = kv_test_daemon_new ();
  g_autofree char *path = kv_test_daemon_build_path (daemon, "crafty-kv.conf");
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  const char *args[] = { "--port=0", config_arg, "--max-key-size=16", THREADS_ARG, NULL };
  g_autofree char *log = NULL;
  g_autofree char *summary = NULL;
  gsize offset = 0;
  guint16 port;

  g_test_summary ("A lower max-value-size in the key file applies on SIGHUP, on every "
                  "thread; a setting given on the command line still overrides the file");

  write_file (path, "[server]\nmax-value-size=100\n");
  port = start (daemon, args, NULL);

  assert_put_size (port, "k", 50, 200);
  assert_put_size (port, "k", 101, 413);
  assert_put_size (port, "0123456789abcdef", 1, 200);
  assert_put_size (port, "0123456789abcdefg", 1, 414);

  write_file (path, "[server]\nmax-value-size=10\nmax-key-size=4\n");
  reload (daemon);

  assert_put_size (port, "k", 50, 413);
  assert_put_size (port, "k", 10, 200);
  /* --max-key-size=16 still, not the file's 4. */
  assert_put_size (port, "0123456789abcdef", 1, 200);
  assert_put_size (port, "0123456789abcdefg", 1, 414);

  log = dup_new_log (daemon, &offset);
  summary = find_line (log, "Reloaded the settings from ");
  g_assert_nonnull (summary);
  g_assert_nonnull (strstr (summary, path));
  g_assert_nonnull (strstr (summary, "max-value-size 100 → 10"));
  g_assert_null (strstr (summary, "max-key-size"));

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static void
test_max_connections (void)
{
  KvTestDaemon *daemon = kv_test_daemon_new ();
  g_autofree char *path = kv_test_daemon_build_path (daemon, "crafty-kv.conf");
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  const char *args[] = { "--port=0", config_arg, NULL };
  const char *get = "GET /kv/a HTTP/1.1\r\nHost: localhost\r\n\r\n";
  g_autoptr(GSocket) first = NULL;
  g_autoptr(GSocket) second = NULL;
  g_autoptr(GSocket) third = NULL;
  g_autoptr(KvRawResponse) response = NULL;
  guint16 port;

  g_test_summary ("A new max-connections applies on SIGHUP: past it, the connection idle "
                  "the longest makes room for a newcomer");

  write_file (path, "[server]\nmax-connections=2\n");
  port = start (daemon, args, NULL);

  /* Two kept alive, then idle: within the limit, both stay open. */
  first = kv_raw_connect (port);
  kv_raw_send_string (first, get);
  response = kv_raw_read_response (first, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 404);
  g_clear_pointer (&response, kv_raw_response_free);
  second = kv_raw_connect (port);
  kv_raw_send_string (second, get);
  response = kv_raw_read_response (second, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 404);
  g_clear_pointer (&response, kv_raw_response_free);
  g_assert_false (kv_raw_wait_closed (first, 200));

  write_file (path, "[server]\nmax-connections=1\n");
  reload (daemon);

  third = kv_raw_connect (port);
  kv_raw_send_string (third, get);
  response = kv_raw_read_response (third, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 404);
  g_assert_true (kv_raw_wait_closed (first, 5000));

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static void
test_invalid (void)
{
  const struct
  {
    const char *contents;
    const char *where;   /* after the path */
  } cases[] = {
    { "[server]\nmax-value-size=10\nprot=1\n", ":3: unknown key “prot”" },
    { "[server]\nmax-value-size=ten\n", ":2: invalid value “ten” for max-value-size" },
    { "[server]\nmax-value-size=10\n[client]\n", ":3: unknown group [client]" },
    { "max-value-size=10\n", ": " },
    { "[server]\nmax-value-size=10\naddress=nowhere\n", "invalid address “nowhere”" },
  };
  KvTestDaemon *daemon = kv_test_daemon_new ();
  g_autofree char *path = kv_test_daemon_build_path (daemon, "crafty-kv.conf");
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  const char *args[] = { "--port=0", config_arg, THREADS_ARG, NULL };
  gsize offset = 0;
  guint16 port;

  g_test_summary ("On SIGHUP, a key file that does not load (bad syntax, an unknown key or "
                  "group, a bad value) is logged in one line naming the file and line, and "
                  "every running setting stays");

  write_file (path, "[server]\nmax-value-size=100\n");
  port = start (daemon, args, NULL);
  assert_put_size (port, "k", 50, 200);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *log = NULL;
      g_autofree char *line = NULL;
      g_autofree char *where = NULL;

      g_test_message ("%s", cases[i].contents);
      write_file (path, cases[i].contents);
      reload (daemon);

      log = dup_new_log (daemon, &offset);
      line = find_line (log, "Reload refused");
      g_assert_nonnull (line);
      if (g_str_has_prefix (cases[i].where, ":"))
        {
          where = g_strconcat (path, cases[i].where, NULL);
          g_assert_nonnull (strstr (line, where));
        }
      else
        g_assert_nonnull (strstr (line, cases[i].where));
      g_assert_null (strstr (log, "Reloaded"));

      /* max-value-size=10 was not taken. */
      assert_put_size (port, "k", 50, 200);
    }

  /* The daemon is none the worse: a good file is taken. */
  write_file (path, "[server]\nmax-value-size=10\n");
  reload (daemon);
  assert_put_size (port, "k", 50, 413);

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static void
test_restart_needed (void)
{
  KvTestDaemon *daemon = kv_test_daemon_new ();
  g_autofree char *path = kv_test_daemon_build_path (daemon, "crafty-kv.conf");
  g_autofree char *port_path = kv_test_daemon_build_path (daemon, "port");
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  const char *args[] = { config_arg, NULL };
  g_autofree char *contents = NULL;
  g_autofree char *log = NULL;
  g_autofree char *port_line = NULL;
  g_autofree char *threads_line = NULL;
  g_autofree char *summary = NULL;
  g_autofree char *port_text = NULL;
  g_autofree char *port_file = NULL;
  g_autoptr(GError) error = NULL;
  gsize offset = 0;
  guint16 port, new_port;

  g_test_summary ("On SIGHUP, a new port (or threads) is logged as needing a restart and "
                  "crafty-kv keeps serving on the port it has; the other settings apply");

  write_file (path, "[server]\nport=0\nthreads=2\n");
  port = start (daemon, args, NULL);
  g_assert_cmpuint (request (port, "PUT", "k", "before", NULL), ==, 200);

  /* A port that is surely not the running one. */
  new_port = port == G_MAXUINT16 ? port - 1 : port + 1;
  contents = g_strdup_printf ("[server]\nport=%u\nthreads=3\nmax-value-size=10\n", new_port);
  write_file (path, contents);
  reload (daemon);

  log = dup_new_log (daemon, &offset);
  port_text = g_strdup_printf ("port needs a restart to change from 0 to %u", new_port);
  port_line = find_line (log, "port needs a restart");
  g_assert_nonnull (port_line);
  g_assert_nonnull (strstr (port_line, port_text));
  threads_line = find_line (log, "threads needs a restart");
  g_assert_nonnull (threads_line);
  g_assert_nonnull (strstr (threads_line, "from 2 to 3"));
  summary = find_line (log, "Reloaded the settings from ");
  g_assert_nonnull (summary);
  g_assert_nonnull (strstr (summary, "max-value-size 1048576 → 10"));
  g_assert_null (strstr (summary, "port "));

  /* Still the old port, in the port file as well. */
  g_assert_cmpuint (request (port, "GET", "k", NULL, NULL), ==, 200);
  g_assert_cmpuint (put_size (port, "k", 50), ==, 413);
  g_file_get_contents (port_path, &port_file, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_ascii_strtoull (port_file, NULL, 10), ==, port);

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static void
test_token (void)
{
  KvTestDaemon *daemon = kv_test_daemon_new ();
  g_autofree char *path = kv_test_daemon_build_path (daemon, "crafty-kv.conf");
  g_autofree char *token_path = kv_test_daemon_build_path (daemon, "token");
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  g_autofree char *with_token = g_strdup_printf ("[server]\ntoken-file=%s\n", token_path);
  const char *args[] = { "--port=0", config_arg, THREADS_ARG, NULL };
  g_autofree char *log = NULL;
  g_autofree char *line = NULL;
  gsize offset = 0;
  guint16 port;

  g_test_summary ("On SIGHUP, a new token file applies (401 without its token), a token "
                  "file of the same name is read again, and one that cannot be used leaves "
                  "the running token in force");

  write_file (path, "[server]\n");
  port = start (daemon, args, NULL);
  g_assert_cmpuint (request (port, "PUT", "k", "v", NULL), ==, 200);

  write_file (token_path, "first-token\n");
  write_file (path, with_token);
  reload (daemon);
  assert_status (port, "GET", NULL, 401);
  assert_status (port, "GET", "wrong", 401);
  assert_status (port, "GET", "first-token", 200);
  log = dup_new_log (daemon, &offset);
  line = find_line (log, "Reloaded the settings from ");
  g_assert_nonnull (line);
  g_assert_nonnull (strstr (line, "token-file none → "));
  g_clear_pointer (&log, g_free);
  g_clear_pointer (&line, g_free);

  /* Two tokens on a line: not a token file; the first token stays. */
  write_file (token_path, "second token\n");
  reload (daemon);
  log = dup_new_log (daemon, &offset);
  line = find_line (log, "Reload refused");
  g_assert_nonnull (line);
  g_assert_nonnull (strstr (line, token_path));
  assert_status (port, "GET", NULL, 401);
  assert_status (port, "GET", "first-token", 200);

  /* A new token in the same file. */
  write_file (token_path, "second-token\n");
  reload (daemon);
  g_clear_pointer (&log, g_free);
  g_clear_pointer (&line, g_free);
  log = dup_new_log (daemon, &offset);
  line = find_line (log, "Reloaded the settings from ");
  g_assert_nonnull (line);
  g_assert_nonnull (strstr (line, "no setting changed; token read again from "));
  assert_status (port, "GET", "first-token", 401);
  assert_status (port, "GET", "second-token", 200);

  /* On the loopback, the token can go. */
  write_file (path, "[server]\n");
  reload (daemon);
  assert_status (port, "GET", NULL, 200);

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static void
test_token_required (void)
{
  KvTestDaemon *daemon = kv_test_daemon_new ();
  g_autofree char *path = kv_test_daemon_build_path (daemon, "crafty-kv.conf");
  g_autofree char *token_path = kv_test_daemon_build_path (daemon, "token");
  g_autofree char *config_arg = g_strconcat ("--config=", path, NULL);
  g_autofree char *with_token = g_strdup_printf ("[server]\ntoken-file=%s\n", token_path);
  const char *args[] = { "--port=0", "--address=0.0.0.0", config_arg, NULL };
  g_autofree char *log = NULL;
  g_autofree char *line = NULL;
  gsize offset = 0;
  guint16 port;

  g_test_summary ("On SIGHUP, a key file without a token is refused while crafty-kv listens "
                  "beyond the loopback, and the token stays required");

  write_file (token_path, "the-token\n");
  write_file (path, with_token);
  port = start (daemon, args, NULL);
  g_assert_cmpuint (request (port, "PUT", "k", "v", NULL), ==, 401);
  g_assert_cmpuint (request (port, "PUT", "k", "v", "the-token"), ==, 200);

  write_file (path, "[server]\n");
  reload (daemon);

  log = dup_new_log (daemon, &offset);
  line = find_line (log, "Reload refused");
  g_assert_nonnull (line);
  g_assert_nonnull (strstr (line, "refusing to listen on 0.0.0.0"));
  g_assert_cmpuint (request (port, "GET", "k", NULL, NULL), ==, 401);
  g_assert_cmpuint (request (port, "GET", "k", NULL, "the-token"), ==, 200);

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static void
test_xdg (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("crafty-kv-xdg-XXXXXX", &error);
  g_autofree char *home = g_build_filename (dir, "home", NULL);
  g_autofree char *first = g_build_filename (dir, "first", NULL);
  g_autofree char *second = g_build_filename (dir, "second", NULL);
  g_autofree char *first_file = g_build_filename (first, "crafty-kv", "crafty-kv.conf", NULL);
  g_autofree char *second_file = g_build_filename (second, "crafty-kv", "crafty-kv.conf", NULL);
  g_autofree char *home_env = g_strconcat ("XDG_CONFIG_HOME=", home, NULL);
  g_autofree char *dirs_env = g_strconcat ("XDG_CONFIG_DIRS=", first, ":", second, NULL);
  const char *envp[] = { home_env, dirs_env, NULL };
  const char *args[] = { "--port=0", THREADS_ARG, NULL };
  g_autofree char *log = NULL;
  g_autofree char *summary = NULL;
  KvTestDaemon *daemon;
  gsize offset = 0;
  guint16 port;

  g_test_summary ("SIGHUP reads again the key file found in $XDG_CONFIG_DIRS at start, "
                  "even once a file of higher precedence appears");

  g_assert_no_error (error);
  g_assert_cmpint (g_mkdir_with_parents (home, 0700), ==, 0);
  write_file (second_file, "[server]\nmax-value-size=100\n");

  daemon = kv_test_daemon_new ();
  port = start (daemon, args, envp);
  assert_put_size (port, "k", 50, 200);
  assert_put_size (port, "k", 101, 413);

  write_file (second_file, "[server]\nmax-value-size=10\n");
  write_file (first_file, "[server]\nmax-value-size=1000\n");
  reload (daemon);
  assert_put_size (port, "k", 50, 413);

  log = dup_new_log (daemon, &offset);
  summary = find_line (log, "Reloaded the settings from ");
  g_assert_nonnull (summary);
  g_assert_nonnull (strstr (summary, second_file));

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
  kv_test_remove_tree (dir);
}

static void
test_xdg_late (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("crafty-kv-xdg-XXXXXX", &error);
  g_autofree char *home = g_build_filename (dir, "home", NULL);
  g_autofree char *system = g_build_filename (dir, "system", NULL);
  g_autofree char *file = g_build_filename (home, "crafty-kv", "crafty-kv.conf", NULL);
  g_autofree char *home_env = g_strconcat ("XDG_CONFIG_HOME=", home, NULL);
  g_autofree char *dirs_env = g_strconcat ("XDG_CONFIG_DIRS=", system, NULL);
  const char *envp[] = { home_env, dirs_env, NULL };
  const char *args[] = { "--port=0", NULL };
  KvTestDaemon *daemon;
  guint16 port;

  g_test_summary ("After a start without a key file, SIGHUP reads one created since");

  g_assert_no_error (error);
  daemon = kv_test_daemon_new ();
  port = start (daemon, args, envp);
  g_assert_cmpuint (put_size (port, "k", 50), ==, 200);

  write_file (file, "[server]\nmax-value-size=10\n");
  reload (daemon);
  g_assert_cmpuint (put_size (port, "k", 50), ==, 413);

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
  kv_test_remove_tree (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/reload/survives", test_survives);
  g_test_add_func ("/kv/reload/notify", test_notify);
  g_test_add_func ("/kv/reload/limits", test_limits);
  g_test_add_func ("/kv/reload/max-connections", test_max_connections);
  g_test_add_func ("/kv/reload/invalid", test_invalid);
  g_test_add_func ("/kv/reload/restart-needed", test_restart_needed);
  g_test_add_func ("/kv/reload/token", test_token);
  g_test_add_func ("/kv/reload/token-required", test_token_required);
  g_test_add_func ("/kv/reload/xdg", test_xdg);
  g_test_add_func ("/kv/reload/xdg-late", test_xdg_late);

  return g_test_run ();
}
