/* test-durability.c: the built crafty-kv with --data-dir: restarts after
 * SIGTERM and SIGKILL, SIGKILL under load, torn and damaged logs, a full
 * disk, snapshots under load, the directory lock
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "kv-test-utils.h"

typedef struct
{
  char *data_dir;
  KvTestDaemon *daemon;
  SoupSession *session;
  char *mounted;   /* (nullable): a tmpfs to take down */
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *base = g_dir_make_tmp ("crafty-kv-data-XXXXXX", &error);

  g_assert_no_error (error);
  /* The daemon creates it. */
  fixture->data_dir = g_build_filename (base, "store", NULL);
  fixture->session = kv_test_session_new ();
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autofree char *base = g_path_get_dirname (fixture->data_dir);

  g_clear_pointer (&fixture->daemon, kv_test_daemon_free);
  g_clear_object (&fixture->session);
  if (fixture->mounted != NULL)
    umount2 (fixture->mounted, MNT_DETACH);
  g_clear_pointer (&fixture->mounted, g_free);
  kv_test_remove_tree (base);
  g_free (fixture->data_dir);
}

/* Starts crafty-kv on the fixture's data directory, with @args after it. */
static void
start (Fixture    *fixture,
       const char *first_arg,
       ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  va_list ap;

  g_assert_null (fixture->daemon);
  g_ptr_array_add (args, g_strconcat ("--data-dir=", fixture->data_dir, NULL));
  va_start (ap, first_arg);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (args, g_strdup (arg));
  va_end (ap);
  g_ptr_array_add (args, NULL);

  fixture->daemon = kv_test_daemon_start ((const char * const *) args->pdata);
}

static void
kill_daemon (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;

  kv_test_daemon_signal (fixture->daemon, SIGKILL);
  g_subprocess_wait (kv_test_daemon_get_subprocess (fixture->daemon), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&fixture->daemon, kv_test_daemon_free);
}

static void
stop_daemon (Fixture *fixture)
{
  g_assert_cmpint (kv_test_daemon_stop (g_steal_pointer (&fixture->daemon)), ==, 0);
}

static char *
uri (Fixture    *fixture,
     const char *path)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s", kv_test_daemon_get_port (fixture->daemon),
                          path);
}

static KvTestResponse *
request (Fixture            *fixture,
         const char         *method,
         const char         *path,
         const char * const *headers,
         const char         *body)
{
  g_autofree char *target = uri (fixture, path);
  g_autoptr(GBytes) bytes = body != NULL ? g_bytes_new (body, strlen (body)) : NULL;

  return kv_test_request (fixture->session, method, target, headers, bytes);
}

static char *
body_text (KvTestResponse *response)
{
  gsize len;
  const char *data = g_bytes_get_data (response->body, &len);

  return g_strndup (data, len);
}

/* PUTs @value and returns the new ETag. */
static char *
put (Fixture    *fixture,
     const char *path,
     const char *value)
{
  g_autoptr(KvTestResponse) response = request (fixture, "PUT", path, NULL, value);

  g_assert_cmpuint (response->status, ==, 200);
  return g_strdup (kv_test_response_header (response, "ETag"));
}

static void
assert_value (Fixture    *fixture,
              const char *key,
              const char *value)
{
  g_autofree char *path = g_strconcat ("/kv/", key, NULL);
  g_autoptr(KvTestResponse) response = request (fixture, "GET", path, NULL, NULL);
  g_autofree char *text = body_text (response);

  if (value == NULL)
    {
      g_assert_cmpuint (response->status, ==, 404);
      return;
    }
  g_assert_cmpuint (response->status, ==, 200);
  g_assert_cmpstr (text, ==, value);
}

static guint64
stat_number (Fixture    *fixture,
             const char *member)
{
  g_autoptr(KvTestResponse) response = request (fixture, "GET", "/stats", NULL, NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *text = body_text (response);
  JsonObject *object;

  g_assert_cmpuint (response->status, ==, 200);
  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_true (json_object_has_member (object, member));
  return json_object_get_int_member (object, member);
}

/* Every key, value, type, expiry and revision, one line each, in key order:
 * what the store holds, to compare across a restart. */
static char *
describe_store (Fixture *fixture)
{
  g_autoptr(KvTestResponse) keys = request (fixture, "GET", "/keys", NULL, NULL);
  g_autofree char *listing = body_text (keys);
  g_auto(GStrv) lines = g_strsplit (listing, "\n", -1);
  g_autoptr(GString) out = g_string_new (NULL);

  g_assert_cmpuint (keys->status, ==, 200);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autofree char *escaped = NULL;
      g_autofree char *path = NULL;
      g_autoptr(KvTestResponse) got = NULL;
      g_autofree char *value = NULL;

      if (*lines[i] == '\0')
        continue;
      escaped = g_uri_escape_string (lines[i], NULL, FALSE);
      path = g_strconcat ("/kv/", escaped, NULL);
      got = request (fixture, "GET", path, NULL, NULL);
      g_assert_cmpuint (got->status, ==, 200);
      value = body_text (got);
      g_string_append_printf (out, "%s=%s etag=%s type=%s expires=%s\n", lines[i], value,
                              kv_test_response_header (got, "ETag"),
                              kv_test_response_header (got, "Content-Type"),
                              kv_test_response_header (got, "KV-Expires-At"));
    }

  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
test_restart (Fixture       *fixture,
              gconstpointer  user_data)
{
  int signum = GPOINTER_TO_INT (user_data);
  const char *json[] = { "Content-Type", "application/json", NULL };
  const char *txn_body =
    "{\"ops\":[{\"op\":\"put\",\"key\":\"t/1\",\"value\":\"one\"},"
    "{\"op\":\"put\",\"key\":\"t/2\",\"value\":\"two\"},{\"op\":\"delete\",\"key\":\"gone\"}]}";
  g_autofree char *etag = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autoptr(KvTestResponse) response = NULL;
  guint64 revision;

  g_test_summary ("After SIGTERM or SIGKILL and a restart on the same data directory, "
                  "every acknowledged write is there with its ETag, content type and "
                  "expiry, deletes stay deleted, revisions go on, and an If-Match from "
                  "before the restart still matches");

  start (fixture, NULL);
  g_free (put (fixture, "/kv/a", "first"));
  etag = put (fixture, "/kv/a", "second");
  response = request (fixture, "PUT", "/kv/typed", json, "{\"x\":1}");
  g_assert_cmpuint (response->status, ==, 200);
  g_clear_pointer (&response, kv_test_response_free);
  g_free (put (fixture, "/kv/later?ttl=1h", "lives"));
  g_free (put (fixture, "/kv/soon?ttl=300ms", "goes"));
  g_free (put (fixture, "/kv/gone", "x"));
  response = request (fixture, "POST", "/txn", json, txn_body);
  g_assert_cmpuint (response->status, ==, 200);
  g_clear_pointer (&response, kv_test_response_free);
  g_free (put (fixture, "/kv/deleted", "x"));
  response = request (fixture, "DELETE", "/kv/deleted", NULL, NULL);
  g_assert_cmpuint (response->status, ==, 200);
  g_clear_pointer (&response, kv_test_response_free);

  /* The 300 ms key expires (a change of its own) before the stop. */
  g_usleep (700 * 1000);
  assert_value (fixture, "soon", NULL);
  before = describe_store (fixture);
  revision = stat_number (fixture, "revision");
  /* Nine writes and the expiry. */
  g_assert_cmpuint (revision, ==, 10);

  if (signum == SIGKILL)
    kill_daemon (fixture);
  else
    stop_daemon (fixture);

  start (fixture, NULL);
  after = describe_store (fixture);
  g_assert_cmpstr (after, ==, before);
  g_assert_cmpuint (stat_number (fixture, "revision"), ==, revision);
  assert_value (fixture, "gone", NULL);
  assert_value (fixture, "deleted", NULL);
  assert_value (fixture, "t/2", "two");
  /* The deadline came back with the key. */
  g_assert_null (strstr (after, "later=lives etag=\"4\" type=text/plain; charset=utf-8 expires=(null)"));
  g_assert_nonnull (strstr (after, "later=lives etag=\"4\""));

  {
    const char *if_match[] = { "If-Match", etag, NULL };

    response = request (fixture, "PUT", "/kv/a", if_match, "third");
    g_assert_cmpuint (response->status, ==, 200);
    /* The next revision after those before the restart. */
    g_assert_cmpstr (kv_test_response_header (response, "ETag"), ==, "\"11\"");
  }
}

static void
test_expired_while_down (Fixture       *fixture,
                         gconstpointer  user_data)
{
  g_test_summary ("A key whose TTL ran out while crafty-kv was down is gone after the "
                  "restart; one still to expire keeps its deadline");

  start (fixture, NULL);
  g_free (put (fixture, "/kv/short?ttl=1s", "x"));
  g_free (put (fixture, "/kv/long?ttl=1h", "y"));
  kill_daemon (fixture);
  g_usleep (1200 * 1000);

  start (fixture, NULL);
  assert_value (fixture, "short", NULL);
  assert_value (fixture, "long", "y");
  g_assert_cmpuint (stat_number (fixture, "keys"), ==, 1);
}

/* ---- SIGKILL under load ---- */

typedef struct
{
  guint16 port;
  guint id;
  gboolean txn;          /* writes transactions of 4 puts */
  gint *stop;
  guint attempted;       /* writes sent: the last may or may not be there */
  guint acknowledged;    /* writes answered 200, in order */
} Writer;

static gpointer
writer_run (gpointer data)
{
  Writer *writer = data;
  g_autoptr(SoupSession) session = kv_test_session_new ();

  while (!g_atomic_int_get (writer->stop))
    {
      g_autofree char *target = NULL;
      g_autofree char *body = NULL;
      g_autoptr(SoupMessage) msg = NULL;
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(GBytes) reply = NULL;
      g_autoptr(GError) error = NULL;
      guint n = writer->attempted;

      if (writer->txn)
        {
          target = g_strdup_printf ("http://127.0.0.1:%u/txn", writer->port);
          body = g_strdup_printf ("{\"ops\":[{\"op\":\"put\",\"key\":\"tx/%u/a\",\"value\":\"%u\"},"
                                  "{\"op\":\"put\",\"key\":\"tx/%u/b\",\"value\":\"%u\"},"
                                  "{\"op\":\"put\",\"key\":\"tx/%u/c\",\"value\":\"%u\"},"
                                  "{\"op\":\"put\",\"key\":\"tx/%u/d\",\"value\":\"%u\"}]}",
                                  n, n, n, n, n, n, n, n);
        }
      else
        {
          target = g_strdup_printf ("http://127.0.0.1:%u/kv/w%u/%u", writer->port, writer->id, n);
          body = g_strdup_printf ("value-%u-%u", writer->id, n);
        }
      msg = soup_message_new (writer->txn ? "POST" : "PUT", target);
      {
        gsize len = strlen (body);

        bytes = g_bytes_new_take (g_steal_pointer (&body), len);
      }
      soup_message_set_request_body_from_bytes (msg, writer->txn ? "application/json"
                                                                 : "application/octet-stream",
                                                bytes);
      writer->attempted = n + 1;
      reply = soup_session_send_and_read (session, msg, NULL, &error);
      if (error != NULL)
        break;
      g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
      writer->acknowledged = n + 1;
    }

  return NULL;
}

static void
test_kill_under_load (Fixture       *fixture,
                      gconstpointer  user_data)
{
  Writer writers[17];
  GThread *threads[17];
  gint stop = 0;

  g_test_summary ("SIGKILL in the middle of 16 clients writing distinct keys and one "
                  "writing transactions: after a restart every acknowledged write is "
                  "there, no transaction is there in part, and nothing that was never "
                  "sent appears");

  start (fixture, "--threads=2", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (writers); i++)
    {
      writers[i] = (Writer) {
        .port = kv_test_daemon_get_port (fixture->daemon), .id = i,
        .txn = i == 16, .stop = &stop,
      };
      threads[i] = g_thread_new ("writer", writer_run, &writers[i]);
    }

  g_usleep (600 * 1000);
  kill_daemon (fixture);
  g_atomic_int_set (&stop, 1);
  for (guint i = 0; i < G_N_ELEMENTS (writers); i++)
    g_thread_join (threads[i]);

  start (fixture, NULL);
  for (guint i = 0; i < 16; i++)
    {
      Writer *w = &writers[i];

      g_assert_cmpuint (w->acknowledged, >, 0);
      for (guint n = 0; n < w->acknowledged; n++)
        {
          g_autofree char *key = g_strdup_printf ("w%u/%u", i, n);
          g_autofree char *value = g_strdup_printf ("value-%u-%u", i, n);

          assert_value (fixture, key, value);
        }
      /* In flight at the kill: either there, whole, or not. */
      for (guint n = w->acknowledged; n < w->attempted; n++)
        {
          g_autofree char *path = g_strdup_printf ("/kv/w%u/%u", i, n);
          g_autoptr(KvTestResponse) response = request (fixture, "GET", path, NULL, NULL);

          g_assert_true (response->status == 200 || response->status == 404);
        }
      {
        g_autofree char *prefix = g_strdup_printf ("/keys?prefix=w%u/&count", i);
        g_autoptr(KvTestResponse) response = request (fixture, "GET", prefix, NULL, NULL);
        g_autofree char *count = body_text (response);
        guint64 n = g_ascii_strtoull (count, NULL, 10);

        g_assert_cmpuint (n, >=, w->acknowledged);
        g_assert_cmpuint (n, <=, w->attempted);
      }
    }

  g_assert_cmpuint (writers[16].acknowledged, >, 0);
  for (guint n = 0; n < writers[16].attempted; n++)
    {
      const char *parts[] = { "a", "b", "c", "d" };
      guint found = 0;

      for (guint p = 0; p < G_N_ELEMENTS (parts); p++)
        {
          g_autofree char *path = g_strdup_printf ("/kv/tx/%u/%s", n, parts[p]);
          g_autoptr(KvTestResponse) response = request (fixture, "GET", path, NULL, NULL);

          found += response->status == 200;
        }
      if (n < writers[16].acknowledged)
        g_assert_cmpuint (found, ==, 4);
      else
        g_assert_true (found == 0 || found == 4);
    }
}

/* ---- Torn and damaged logs ---- */

static char *
only_log (Fixture *fixture)
{
  g_autoptr(GDir) dir = g_dir_open (fixture->data_dir, 0, NULL);
  const char *name;
  char *found = NULL;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, "log-"))
      {
        g_assert_null (found);
        found = g_build_filename (fixture->data_dir, name, NULL);
      }
  g_assert_nonnull (found);
  return found;
}

static goffset
file_size (const char *path)
{
  GStatBuf st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  return st.st_size;
}

static void
test_torn_tail (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autofree char *log = NULL;
  g_autofree char *contents = NULL;
  gsize len;
  goffset before_last, end;
  g_autoptr(GError) error = NULL;

  g_test_summary ("A log cut at every byte offset inside its last record, as a crash "
                  "while writing leaves it: crafty-kv starts every time, with a warning, "
                  "and loses that record only");

  start (fixture, NULL);
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *path = g_strdup_printf ("/kv/k%u", i);

      g_free (put (fixture, path, "value"));
    }
  log = only_log (fixture);
  before_last = file_size (log);
  g_free (put (fixture, "/kv/last", "the last value"));
  end = file_size (log);
  g_assert_cmpint (end, >, before_last);
  kill_daemon (fixture);

  g_file_get_contents (log, &contents, &len, &error);
  g_assert_no_error (error);
  g_assert_cmpint (len, ==, end);

  for (goffset cut = before_last; cut < end; cut++)
    {
      g_autofree char *said = NULL;

      g_file_set_contents (log, contents, cut, &error);
      g_assert_no_error (error);

      start (fixture, NULL);
      assert_value (fixture, "k3", "value");
      assert_value (fixture, "last", NULL);
      g_assert_cmpuint (stat_number (fixture, "revision"), ==, 4);
      said = kv_test_daemon_dup_log (fixture->daemon);
      if (cut > before_last)
        g_assert_nonnull (strstr (said, "torn"));
      /* The torn bytes are gone: a write goes after the last whole one. */
      g_free (put (fixture, "/kv/after", "x"));
      kill_daemon (fixture);
      g_assert_cmpint (file_size (log), >, before_last);
    }
}

static void
test_damage (Fixture       *fixture,
             gconstpointer  user_data)
{
  g_autofree char *log = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *after = NULL;
  g_autofree char *lock = NULL;
  g_autofree char *flipped_path = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *err = NULL;
  gsize len, after_len;
  goffset middle;
  int status;

  g_test_summary ("A flipped byte in a record with more after it is a clear error naming "
                  "the file and offset, a non-zero exit, and the files untouched");

  start (fixture, NULL);
  g_free (put (fixture, "/kv/one", "1"));
  log = only_log (fixture);
  middle = file_size (log);
  g_free (put (fixture, "/kv/two", "2222222222"));
  g_free (put (fixture, "/kv/three", "3"));
  kill_daemon (fixture);

  g_file_get_contents (log, &contents, &len, &error);
  g_assert_no_error (error);
  /* Inside the second record's payload, past its header. */
  contents[middle + 16] ^= 0x20;
  g_file_set_contents (log, contents, len, &error);
  g_assert_no_error (error);

  g_ptr_array_add (argv, g_strdup (kv_test_daemon_path ()));
  g_ptr_array_add (argv, g_strdup ("--port=0"));
  g_ptr_array_add (argv, g_strconcat ("--data-dir=", fixture->data_dir, NULL));
  g_ptr_array_add (argv, NULL);
  g_bytes_unref (kv_test_run ((const char * const *) argv->pdata, &status, &err));
  g_assert_cmpint (status, !=, 0);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, log));
  g_assert_nonnull (strstr (err, "damaged at offset"));
  {
    g_autofree char *offset = g_strdup_printf ("offset %" G_GOFFSET_FORMAT ":", middle);

    g_assert_nonnull (strstr (err, offset));
  }
  /* One line. */
  g_assert_cmpint (strchr (err, '\n') - err, ==, (int) strlen (err) - 1);

  g_file_get_contents (log, &after, &after_len, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (after, after_len, contents, len);
}

/* ---- The directory itself ---- */

static void
test_lock (Fixture       *fixture,
           gconstpointer  user_data)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *err = NULL;
  int status;

  g_test_summary ("A second crafty-kv on the same data directory refuses to start");

  start (fixture, NULL);
  g_ptr_array_add (argv, g_strdup (kv_test_daemon_path ()));
  g_ptr_array_add (argv, g_strdup ("--port=0"));
  g_ptr_array_add (argv, g_strconcat ("--working-dir=", fixture->data_dir, NULL));
  g_ptr_array_add (argv, NULL);
  g_bytes_unref (kv_test_run ((const char * const *) argv->pdata, &status, &err));
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (err, "is in use by another process"));
  /* The first goes on. */
  g_free (put (fixture, "/kv/k", "v"));
}

static void
test_bad_dir (Fixture       *fixture,
              gconstpointer  user_data)
{
  g_autofree char *base = g_path_get_dirname (fixture->data_dir);
  g_autofree char *file = g_build_filename (base, "plain-file", NULL);
  g_autofree char *under_file = g_build_filename (file, "store", NULL);
  const char *paths[] = { under_file, "/proc/crafty-kv-store" };
  g_autoptr(GError) error = NULL;

  g_test_summary ("A data directory that cannot be created or written is a one-line error "
                  "and a non-zero exit");

  g_file_set_contents (file, "not a directory", -1, &error);
  g_assert_no_error (error);

  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autofree char *arg = g_strconcat ("--data-dir=", paths[i], NULL);
      const char *argv[] = { kv_test_daemon_path (), "--port=0", arg, NULL };
      g_autofree char *err = NULL;
      int status;

      g_bytes_unref (kv_test_run (argv, &status, &err));
      g_test_message ("%s", err);
      g_assert_cmpint (status, !=, 0);
      g_assert_nonnull (strstr (err, "data directory"));
      g_assert_nonnull (strstr (err, paths[i]));
      g_assert_cmpint (strchr (err, '\n') - err, ==, (int) strlen (err) - 1);
    }
}

static void
test_working_dir (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autofree char *arg = g_strconcat ("--working-dir=", fixture->data_dir, NULL);
  const char *args[] = { arg, NULL };

  g_test_summary ("--working-dir is another name for --data-dir");

  fixture->daemon = kv_test_daemon_start (args);
  g_free (put (fixture, "/kv/k", "kept"));
  stop_daemon (fixture);
  start (fixture, NULL);
  assert_value (fixture, "k", "kept");
}

/* ---- fsync=always ---- */

static void
test_fsync_always (Fixture       *fixture,
                   gconstpointer  user_data)
{
  Writer writers[8];
  GThread *threads[8];
  gint stop = 0;
  guint64 fsyncs;

  g_test_summary ("With --fsync=always, every write is synced before it is answered: the "
                  "sync count grows with the writes, and after SIGKILL every acknowledged "
                  "write is there");

  start (fixture, "--fsync=always", NULL);
  fsyncs = stat_number (fixture, "fsyncs");
  g_free (put (fixture, "/kv/k", "v"));
  g_assert_cmpuint (stat_number (fixture, "fsyncs"), >, fsyncs);

  for (guint i = 0; i < G_N_ELEMENTS (writers); i++)
    {
      writers[i] = (Writer) {
        .port = kv_test_daemon_get_port (fixture->daemon), .id = i, .stop = &stop,
      };
      threads[i] = g_thread_new ("writer", writer_run, &writers[i]);
    }
  g_usleep (300 * 1000);
  kill_daemon (fixture);
  g_atomic_int_set (&stop, 1);
  for (guint i = 0; i < G_N_ELEMENTS (writers); i++)
    g_thread_join (threads[i]);

  start (fixture, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (writers); i++)
    for (guint n = 0; n < writers[i].acknowledged; n++)
      {
        g_autofree char *key = g_strdup_printf ("w%u/%u", i, n);
        g_autofree char *value = g_strdup_printf ("value-%u-%u", i, n);

        assert_value (fixture, key, value);
      }
}

static void
test_stats (Fixture       *fixture,
            gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) metrics = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *path = NULL;
  g_autofree char *command = NULL;
  g_autofree char *promtool = g_find_program_in_path ("promtool");
  g_autofree char *err = NULL;
  int status;

  g_test_summary ("/stats and /metrics show the log's size, the last snapshot and the syncs "
                  "of a durable store, and promtool accepts the metrics");

  start (fixture, "--snapshot-log-size=4096", "--fsync=always", NULL);
  for (guint i = 0; i < 100; i++)
    {
      g_autofree char *key = g_strdup_printf ("/kv/key-%u", i % 10);

      g_free (put (fixture, key, "a value of some forty bytes, more or less"));
    }
  g_assert_cmpuint (stat_number (fixture, "log_bytes"), >, 0);
  g_assert_cmpuint (stat_number (fixture, "fsyncs"), >=, 100);
  g_assert_cmpuint (stat_number (fixture, "snapshots"), >=, 1);
  g_assert_cmpuint (stat_number (fixture, "snapshot_revision"), >, 0);
  g_assert_cmpuint (stat_number (fixture, "snapshot_bytes"), >, 0);

  metrics = request (fixture, "GET", "/metrics", NULL, NULL);
  text = body_text (metrics);
  g_assert_nonnull (strstr (text, "\ncrafty_kv_log_bytes "));
  g_assert_nonnull (strstr (text, "\ncrafty_kv_snapshot_revision "));
  g_assert_nonnull (strstr (text, "\ncrafty_kv_fsync_duration_seconds_count "));

  if (promtool == NULL)
    {
      g_test_skip ("promtool is not installed (Debian package prometheus)");
      return;
    }
  path = g_build_filename (fixture->data_dir, "..", "metrics.txt", NULL);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  command = g_strdup_printf ("'%s' check metrics < '%s'", promtool, path);
  {
    const char *argv[] = { "/bin/sh", "-c", command, NULL };

    g_bytes_unref (kv_test_run (argv, &status, &err));
  }
  g_test_message ("%s", err);
  g_assert_cmpint (status, ==, 0);
}

/* GET /export: every entry at one revision, as NDJSON. */
static char *
export_store (Fixture *fixture)
{
  g_autoptr(KvTestResponse) response = request (fixture, "GET", "/export", NULL, NULL);
  g_autofree char *body = body_text (response);

  g_assert_cmpuint (response->status, ==, 200);
  return g_strdup_printf ("KV-Revision: %s\n%s", kv_test_response_header (response, "KV-Revision"),
                          body);
}

/* ---- Snapshots ---- */

static guint
count_files (const char *dir_path,
             const char *prefix)
{
  g_autoptr(GDir) dir = g_dir_open (dir_path, 0, NULL);
  const char *name;
  guint n = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    n += g_str_has_prefix (name, prefix) && !g_str_has_suffix (name, ".tmp");
  return n;
}

static void
test_snapshot_under_load (Fixture       *fixture,
                          gconstpointer  user_data)
{
  Writer writers[4];
  GThread *threads[4];
  gint stop = 0;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  gint64 deadline;

  g_test_summary ("With a small --snapshot-log-size, snapshots are written while writes go "
                  "on; the older log and snapshots are deleted; a restart from the snapshot "
                  "and the log after it gives the same store");

  start (fixture, "--snapshot-log-size=4096", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (writers); i++)
    {
      writers[i] = (Writer) {
        .port = kv_test_daemon_get_port (fixture->daemon), .id = i, .stop = &stop,
      };
      threads[i] = g_thread_new ("writer", writer_run, &writers[i]);
    }

  deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (stat_number (fixture, "snapshots") < 3 && g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  g_atomic_int_set (&stop, 1);
  for (guint i = 0; i < G_N_ELEMENTS (writers); i++)
    {
      g_thread_join (threads[i]);
      /* No write failed or waited out while snapshots were written. */
      g_assert_cmpuint (writers[i].acknowledged, ==, writers[i].attempted);
    }
  g_assert_cmpuint (stat_number (fixture, "snapshots"), >=, 3);
  g_assert_cmpuint (stat_number (fixture, "snapshot_revision"), >, 0);

  /* Let a snapshot being written finish, then look at the files. */
  g_usleep (200 * 1000);
  g_assert_cmpuint (count_files (fixture->data_dir, "snapshot-"), ==, 1);
  g_assert_cmpuint (count_files (fixture->data_dir, "log-"), <=, 2);

  before = export_store (fixture);
  kill_daemon (fixture);
  start (fixture, NULL);
  after = export_store (fixture);
  g_assert_cmpstr (after, ==, before);
}

/* ---- A full disk ---- */

static void
test_full_disk (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autofree char *mount_point = g_path_get_dirname (fixture->data_dir);
  g_autofree char *filler = NULL;
  g_autofree char *fill = NULL;
  g_autofree char *value = g_strnfill (4000, 'v');
  const char *accept_json[] = { "Accept", "application/json", NULL };
  const char *json[] = { "Content-Type", "application/json", NULL };
  g_autoptr(KvTestResponse) response = NULL;
  g_autoptr(GError) error = NULL;
  guint stored = 0;

  g_test_summary ("On a full file system a write is answered 507 and changes nothing, a "
                  "transaction as a whole; reads go on; writes work again once there is "
                  "space, and everything acknowledged survives a restart");

  if (getuid () != 0)
    {
      g_test_skip ("mounting a small tmpfs needs root");
      return;
    }
  if (mount ("crafty-kv-test", mount_point, "tmpfs", 0, "size=256k,mode=0700") < 0)
    {
      g_autofree char *why = g_strdup_printf ("cannot mount a tmpfs: %s", g_strerror (errno));

      g_test_skip (why);
      return;
    }
  fixture->mounted = g_strdup (mount_point);

  start (fixture, NULL);
  /* Leave less room than the writes below need. */
  filler = g_build_filename (mount_point, "filler", NULL);
  fill = g_strnfill (200 * 1024, 'f');
  g_file_set_contents (filler, fill, -1, &error);
  g_assert_no_error (error);

  for (;;)
    {
      g_autofree char *path = g_strdup_printf ("/kv/fill/%u", stored);

      g_clear_pointer (&response, kv_test_response_free);
      response = request (fixture, "PUT", path, accept_json, value);
      if (response->status != 200)
        break;
      stored++;
      g_assert_cmpuint (stored, <, 100);
    }
  g_assert_cmpuint (response->status, ==, 507);
  {
    g_autofree char *text = body_text (response);

    g_assert_cmpstr (text, ==, "{\"error\":\"insufficient storage\",\"status\":507}\n");
  }

  /* Nothing of the refused write, nor of a refused transaction, is there. */
  {
    g_autofree char *refused = g_strdup_printf ("fill/%u", stored);
    g_autofree char *txn = g_strdup_printf (
      "{\"ops\":[{\"op\":\"delete\",\"key\":\"fill/0\"},{\"op\":\"put\",\"key\":\"new\",\"value\":\"%s\"}]}",
      value);

    assert_value (fixture, refused, NULL);
    g_clear_pointer (&response, kv_test_response_free);
    response = request (fixture, "POST", "/txn", json, txn);
    g_assert_cmpuint (response->status, ==, 507);
    assert_value (fixture, "new", NULL);
    assert_value (fixture, "fill/0", value);

    /* A refused overwrite leaves the old value, and its revision. */
    g_clear_pointer (&response, kv_test_response_free);
    {
      g_autofree char *other = g_strnfill (4000, 'o');

      response = request (fixture, "PUT", "/kv/fill/1", NULL, other);
    }
    g_assert_cmpuint (response->status, ==, 507);
    assert_value (fixture, "fill/1", value);
  }
  g_assert_cmpuint (stat_number (fixture, "keys"), ==, stored);

  /* Space again: writes go on. */
  g_assert_cmpint (g_unlink (filler), ==, 0);
  g_free (put (fixture, "/kv/new", "after"));
  kill_daemon (fixture);

  start (fixture, NULL);
  assert_value (fixture, "new", "after");
  for (guint i = 0; i < stored; i++)
    {
      g_autofree char *key = g_strdup_printf ("fill/%u", i);

      assert_value (fixture, key, value);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, data, func) \
  g_test_add ("/kv/durability/" path, Fixture, data, fixture_setup, func, fixture_teardown)
  ADD ("restart/sigterm", GINT_TO_POINTER (SIGTERM), test_restart);
  ADD ("restart/sigkill", GINT_TO_POINTER (SIGKILL), test_restart);
  ADD ("restart/expired-while-down", NULL, test_expired_while_down);
  ADD ("kill-under-load", NULL, test_kill_under_load);
  ADD ("torn-tail", NULL, test_torn_tail);
  ADD ("damage", NULL, test_damage);
  ADD ("lock", NULL, test_lock);
  ADD ("bad-dir", NULL, test_bad_dir);
  ADD ("working-dir", NULL, test_working_dir);
  ADD ("fsync-always", NULL, test_fsync_always);
  ADD ("stats", NULL, test_stats);
  ADD ("snapshot-under-load", NULL, test_snapshot_under_load);
  ADD ("full-disk", NULL, test_full_disk);
#undef ADD

  return g_test_run ();
}
