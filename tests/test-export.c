/* test-export.c: GET /export and POST /import, backup and restore
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <json-glib/json-glib.h>

#include "kv-test-raw.h"
#include "kv-test-slow-storage.h"
#include "kv-test-utils.h"
#include "storage/kv-map-storage.h"

#define MAX_IMPORT_SIZE 4096
#define MAX_PENDING_OUTPUT (256 * 1024)

typedef KvTestFixture Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  kv_test_fixture_setup (fixture, NULL);
}

static void
fixture_setup_small (Fixture       *fixture,
                     gconstpointer  user_data)
{
  g_autoptr(KvConfig) config = kv_config_new ();

  g_object_set (config, "max-import-size", (guint64) MAX_IMPORT_SIZE,
                "max-value-size", (guint64) 64, NULL);
  kv_test_fixture_setup (fixture, config);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  kv_test_fixture_teardown (fixture);
}

/* ---- Helpers ---- */

static void
put (KvStorage    *storage,
     const char   *key,
     const void   *value,
     gsize         len,
     const char   *content_type,
     gint64        ttl)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_bytes_new (value, len);
  g_autoptr(KvEntry) entry = NULL;
  KvSetOptions options = { content_type, ttl > 0 ? KV_TTL_SET : KV_TTL_NONE, ttl, NULL };

  entry = kv_storage_set (storage, key, bytes, &options, &error);
  g_assert_no_error (error);
}

static void
put_text (KvStorage  *storage,
          const char *key,
          const char *value)
{
  put (storage, key, value, strlen (value), NULL, 0);
}

static KvTestResponse *
export (KvTestServer *server,
        const char   *method)
{
  g_autoptr(SoupSession) session = kv_test_session_new ();
  g_autofree char *uri = kv_test_server_uri (server, "/export");

  return kv_test_request (session, method, uri, NULL, NULL);
}

static KvTestResponse *
import (KvTestServer *server,
        const char   *query,
        const char   *body,
        gsize         len,
        gboolean      json)
{
  g_autoptr(SoupSession) session = kv_test_session_new ();
  g_autofree char *path = g_strconcat ("/import", query, NULL);
  g_autofree char *uri = kv_test_server_uri (server, path);
  g_autoptr(GBytes) bytes = g_bytes_new (body, len);
  const char *headers[] = { "Content-Type", "application/x-ndjson",
                            json ? "Accept" : NULL, "application/json", NULL };

  return kv_test_request (session, "POST", uri, headers, bytes);
}

static KvTestResponse *
import_text (KvTestServer *server,
             const char   *query,
             const char   *body)
{
  return import (server, query, body, strlen (body), FALSE);
}

static char *
body_text (KvTestResponse *r)
{
  gsize len;
  const char *data = g_bytes_get_data (r->body, &len);

  return g_strndup (data, len);
}

/* The lines of an export, each parsed. */
static GPtrArray *
parse_lines (KvTestResponse *r)
{
  g_autofree char *text = body_text (r);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  GPtrArray *objects = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  guint n = g_strv_length (lines);

  /* Every line ends with a newline. */
  g_assert_cmpuint (n, >, 0);
  g_assert_cmpstr (lines[n - 1], ==, "");
  for (guint i = 0; i + 1 < n; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;

      json_parser_load_from_data (parser, lines[i], -1, &error);
      g_assert_no_error (error);
      g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
      g_ptr_array_add (objects, json_node_copy (json_parser_get_root (parser)));
    }
  return objects;
}

static JsonObject *
line_at (GPtrArray *lines,
         guint      i)
{
  return json_node_get_object (g_ptr_array_index (lines, i));
}

static guint64
header_number (KvTestResponse *r,
               const char     *name)
{
  const char *text = kv_test_response_header (r, name);

  g_assert_nonnull (text);
  return g_ascii_strtoull (text, NULL, 10);
}

static guint64
revision_of (KvStorage *storage)
{
  KvStorageInfo info;

  kv_storage_get_info (storage, &info);
  return info.revision;
}

/* ---- Export ---- */

static void
test_export_entries (Fixture       *fixture,
                     gconstpointer  user_data)
{
  static const guint8 png[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  g_autoptr(KvTestResponse) r = NULL;
  g_autoptr(KvTestResponse) head = NULL;
  g_autoptr(KvTestResponse) post = NULL;
  g_autoptr(KvTestResponse) empty = NULL;
  g_autoptr(GPtrArray) lines = NULL;
  g_autoptr(GDateTime) expires = NULL;
  g_autofree char *text = NULL;
  gint64 before = g_get_real_time ();
  JsonObject *session;

  g_test_summary ("GET /export writes one line per entry in key order, with the fields /txn "
                  "answers with: value or value_base64, content_type and expires_at when "
                  "set, the revision; KV-Revision; HEAD gives the headers");

  empty = export (fixture->server, "GET");
  kv_test_assert_response (empty, 200, "");
  g_assert_cmpstr (kv_test_response_header (empty, "KV-Revision"), ==, "0");

  put_text (fixture->storage, "text", "caf\xc3\xa9 \"quoted\" \\ \n\x01");
  put (fixture->storage, "logo", png, sizeof png, "image/png", 0);
  put (fixture->storage, "typed", "{}", 2, "application/json; charset=\"utf-8\"", 0);
  put (fixture->storage, "session", "token", 5, NULL, G_TIME_SPAN_HOUR);
  put_text (fixture->storage, "a/\"key\"", "1");

  r = export (fixture->server, "GET");
  g_assert_cmpuint (r->status, ==, 200);
  g_assert_cmpstr (kv_test_response_header (r, "Content-Type"), ==, "application/x-ndjson");
  g_assert_cmpstr (kv_test_response_header (r, "X-Content-Type-Options"), ==, "nosniff");
  g_assert_cmpstr (kv_test_response_header (r, "Transfer-Encoding"), ==, "chunked");
  g_assert_cmpstr (kv_test_response_header (r, "KV-Revision"), ==, "5");

  /* Byte for byte, but the deadline. */
  text = body_text (r);
  g_assert_true (g_str_has_prefix (
    text,
    "{\"key\":\"a/\\\"key\\\"\",\"value\":\"1\",\"revision\":5}\n"
    "{\"key\":\"logo\",\"value_base64\":\"iVBORw0KGgo=\",\"content_type\":\"image/png\","
    "\"revision\":2}\n"
    "{\"key\":\"session\",\"value\":\"token\",\"expires_at\":\""));
  g_assert_true (g_str_has_suffix (
    text,
    "\",\"revision\":4}\n"
    "{\"key\":\"text\",\"value\":\"caf\xc3\xa9 \\\"quoted\\\" \\\\ \\u000a\\u0001\","
    "\"revision\":1}\n"
    "{\"key\":\"typed\",\"value\":\"{}\",\"content_type\":\"application/json; "
    "charset=\\\"utf-8\\\"\",\"revision\":3}\n"));

  lines = parse_lines (r);
  g_assert_cmpuint (lines->len, ==, 5);
  session = line_at (lines, 2);
  expires = g_date_time_new_from_iso8601 (json_object_get_string_member (session, "expires_at"),
                                          NULL);
  g_assert_nonnull (expires);
  g_assert_cmpint (g_date_time_to_unix (expires), >=, before / G_USEC_PER_SEC + 3600 - 1);
  g_assert_cmpint (g_date_time_to_unix (expires), <=, g_get_real_time () / G_USEC_PER_SEC + 3600);
  g_assert_true (g_str_has_suffix (json_object_get_string_member (session, "expires_at"), "Z"));
  g_assert_cmpstr (json_object_get_string_member (line_at (lines, 3), "value"), ==,
                   "caf\xc3\xa9 \"quoted\" \\ \n\x01");

  head = export (fixture->server, "HEAD");
  kv_test_assert_response (head, 200, "");
  g_assert_cmpstr (kv_test_response_header (head, "Content-Type"), ==, "application/x-ndjson");
  g_assert_cmpstr (kv_test_response_header (head, "KV-Revision"), ==, "5");

  post = export (fixture->server, "POST");
  kv_test_assert_response (post, 405, "method not allowed\n");
  g_assert_cmpstr (kv_test_response_header (post, "Allow"), ==, "GET, HEAD");
}

/* Values that do not fit one chunk come out whole, and so do many keys. */
static void
test_export_large (Fixture       *fixture,
                   gconstpointer  user_data)
{
  const gsize size = 1024 * 1024;
  g_autofree guint8 *binary = g_malloc (size);
  g_autofree char *text = g_malloc (size + 1);
  g_autoptr(KvTestResponse) r = NULL;
  g_autoptr(GPtrArray) lines = NULL;
  g_autofree guchar *decoded = NULL;
  gsize decoded_len;
  GRand *rand = g_rand_new_with_seed (7);

  g_test_summary ("An export of values larger than a chunk, and of thousands of keys, "
                  "gives every value back whole");

  for (gsize i = 0; i < size; i++)
    {
      binary[i] = g_rand_int_range (rand, 0, 256);
      /* Escaped and plain, one byte or six. */
      text[i] = "ab\"\\\n\x01 z"[g_rand_int_range (rand, 0, 8)];
    }
  text[size] = '\0';
  binary[0] = 0xff;  /* not UTF-8 */
  g_rand_free (rand);

  put (fixture->storage, "big/binary", binary, size, NULL, 0);
  put_text (fixture->storage, "big/text", text);
  for (guint i = 0; i < 5000; i++)
    {
      g_autofree char *key = g_strdup_printf ("k/%05u", i);

      put_text (fixture->storage, key, key);
    }

  r = export (fixture->server, "GET");
  g_assert_cmpuint (r->status, ==, 200);
  lines = parse_lines (r);
  g_assert_cmpuint (lines->len, ==, 5002);

  g_assert_cmpstr (json_object_get_string_member (line_at (lines, 0), "key"), ==, "big/binary");
  decoded = g_base64_decode (json_object_get_string_member (line_at (lines, 0), "value_base64"),
                             &decoded_len);
  g_assert_cmpmem (decoded, decoded_len, binary, size);
  g_assert_cmpstr (json_object_get_string_member (line_at (lines, 1), "value"), ==, text);
  for (guint i = 0; i < 5000; i++)
    {
      g_autofree char *key = g_strdup_printf ("k/%05u", i);

      g_assert_cmpstr (json_object_get_string_member (line_at (lines, i + 2), "key"), ==, key);
    }
}

/* ---- An export while writes go on ---- */

#define N_KEYS 20000
#define N_WRITTEN_KEYS 64

typedef struct
{
  guint64 revision;
  guint key;
  char *value;  /* (nullable) a delete */
} Write;

typedef struct
{
  KvStorage *storage;
  GArray *writes;       /* (element-type Write) */
  gint stop;            /* (atomic) */
  gint n_writes;        /* (atomic) */
} Writer;

static char *
key_name (guint i)
{
  return g_strdup_printf ("key/%05u", i);
}

static gpointer
writer_thread (gpointer data)
{
  Writer *writer = data;
  GRand *rand = g_rand_new_with_seed (42);

  while (!g_atomic_int_get (&writer->stop))
    {
      guint key = g_rand_int_range (rand, 0, N_WRITTEN_KEYS);
      g_autofree char *name = key_name (key);
      g_autoptr(KvTxn) txn = kv_txn_new ();
      g_autoptr(KvTxnResult) result = NULL;
      g_autoptr(GError) error = NULL;
      Write write = { 0, key, NULL };

      if (g_rand_int_range (rand, 0, 4) == 0)
        kv_txn_add_delete (txn, name, NULL);
      else
        {
          g_autoptr(GBytes) value = NULL;

          write.value = g_strdup_printf ("v%d", g_atomic_int_get (&writer->n_writes));
          value = g_bytes_new (write.value, strlen (write.value));
          kv_txn_add_put (txn, name, value, NULL);
        }
      result = kv_storage_apply (writer->storage, txn, NULL, &error);
      g_assert_no_error (error);
      if (write.value == NULL && kv_txn_result_get (result, 0)->n_deleted == 0)
        continue;
      write.revision = kv_txn_result_get_revision (result);
      g_array_append_val (writer->writes, write);
      g_atomic_int_inc (&writer->n_writes);
    }

  g_rand_free (rand);
  return NULL;
}

static void
write_clear (gpointer data)
{
  g_free (((Write *) data)->value);
}

static void
test_export_consistent (Fixture       *fixture,
                        gconstpointer  user_data)
{
  g_autoptr(GHashTable) expected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(KvTestResponse) r = NULL;
  g_autoptr(GPtrArray) lines = NULL;
  Writer writer = { fixture->storage, NULL, FALSE, 0 };
  GThread *thread;
  guint64 revision;
  guint64 n_after = 0;

  g_test_summary ("An export taken while another thread writes shows exactly the store at "
                  "its KV-Revision: every write up to it, none after");

  for (guint i = 0; i < N_KEYS; i++)
    {
      g_autofree char *name = key_name (i);

      put_text (fixture->storage, name, "initial");
      g_hash_table_insert (expected, g_steal_pointer (&name), g_strdup ("initial"));
    }

  writer.writes = g_array_new (FALSE, FALSE, sizeof (Write));
  g_array_set_clear_func (writer.writes, write_clear);
  thread = g_thread_new ("writer", writer_thread, &writer);
  while (g_atomic_int_get (&writer.n_writes) < 1000)
    g_usleep (1000);
  r = export (fixture->server, "GET");
  /* Writes go on while the export is read. */
  g_atomic_int_set (&writer.stop, TRUE);
  g_thread_join (thread);

  g_assert_cmpuint (r->status, ==, 200);
  revision = header_number (r, "KV-Revision");
  g_assert_cmpuint (revision, >, N_KEYS);

  for (guint i = 0; i < writer.writes->len; i++)
    {
      Write *write = &g_array_index (writer.writes, Write, i);
      g_autofree char *name = key_name (write->key);

      if (write->revision > revision)
        {
          n_after++;
          continue;
        }
      if (write->value != NULL)
        g_hash_table_insert (expected, g_steal_pointer (&name), g_strdup (write->value));
      else
        g_hash_table_remove (expected, name);
    }
  g_test_message ("%u writes, %" G_GUINT64_FORMAT " after the export's revision",
                  writer.writes->len, n_after);
  g_assert_cmpuint (n_after, >, 0);

  lines = parse_lines (r);
  g_assert_cmpuint (lines->len, ==, g_hash_table_size (expected));
  for (guint i = 0; i < lines->len; i++)
    {
      JsonObject *line = line_at (lines, i);
      const char *key = json_object_get_string_member (line, "key");

      g_assert_cmpstr (json_object_get_string_member (line, "value"), ==,
                       g_hash_table_lookup (expected, key));
      g_assert_cmpint (json_object_get_int_member (line, "revision"), <=, revision);
    }
  g_array_unref (writer.writes);
}

/* ---- Busy ---- */

static void
fixture_setup_busy (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autoptr(KvConfig) config = kv_config_new ();

  g_object_set (config, "max-pending-output", (guint64) MAX_PENDING_OUTPUT, NULL);
  kv_test_fixture_setup (fixture, config);
}

static void
test_export_busy (Fixture       *fixture,
                  gconstpointer  user_data)
{
  KvStats *stats = kv_test_server_get_stats (fixture->server);
  guint16 port = kv_test_server_get_port (fixture->server);
  g_autoptr(GPtrArray) hogs = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(KvRawResponse) busy = NULL;
  g_autofree char *value = g_strnfill (1000, 'v');
  gint64 deadline;

  g_test_summary ("Exports that are not read hold max-pending-output at most; past it an "
                  "export is 503 “server busy”; once their clients are gone, nothing is held");

  for (guint i = 0; i < 4000; i++)
    {
      g_autofree char *key = key_name (i);

      put_text (fixture->storage, key, value);
    }

  for (guint i = 0; i < 4; i++)
    {
      GSocket *socket = kv_raw_connect (port);

      g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, 4096, NULL);
      kv_raw_send_string (socket, "GET /export HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      g_ptr_array_add (hogs, socket);
    }
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (kv_stats_get_pending_output (stats) == 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (kv_stats_get_pending_output (stats), >, 0);
  g_assert_cmpuint (kv_stats_get_pending_output (stats), <=, MAX_PENDING_OUTPUT);

  busy = kv_raw_simple (port, "GET", "/export", NULL);
  g_assert_cmpuint (busy->status, ==, 503);
  g_assert_cmpstr (kv_raw_response_header (busy, "retry-after"), ==, "1");
  g_assert_true (kv_raw_response_body_is (busy, "server busy\n"));

  g_ptr_array_set_size (hogs, 0);
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (kv_stats_get_pending_output (stats) > 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (kv_stats_get_pending_output (stats), ==, 0);
}

/* ---- Import ---- */

/* What a store holds, as an export without revisions and deadlines. */
static char *
dump_text (KvTestServer *server,
           gboolean      keep_expiry)
{
  g_autoptr(KvTestResponse) r = export (server, "GET");
  g_autoptr(GPtrArray) lines = NULL;
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  GString *text = g_string_new (NULL);

  g_assert_cmpuint (r->status, ==, 200);
  lines = parse_lines (r);
  for (guint i = 0; i < lines->len; i++)
    {
      JsonNode *node = g_ptr_array_index (lines, i);
      JsonObject *line = json_node_get_object (node);
      g_autofree char *one = NULL;

      json_object_remove_member (line, "revision");
      if (json_object_has_member (line, "expires_at"))
        {
          json_object_remove_member (line, "expires_at");
          if (keep_expiry)
            json_object_set_boolean_member (line, "expires", TRUE);
        }
      json_generator_set_root (generator, node);
      one = json_generator_to_data (generator, NULL);
      g_string_append_printf (text, "%s\n", one);
    }

  return g_string_free (text, FALSE);
}

static gint64
timestamp_ms (JsonObject *line)
{
  g_autoptr(GDateTime) time =
    g_date_time_new_from_iso8601 (json_object_get_string_member (line, "expires_at"), NULL);

  g_assert_nonnull (time);
  return g_date_time_to_unix (time) * 1000 + g_date_time_get_microsecond (time) / 1000;
}

static void
test_round_trip (Fixture       *fixture,
                 gconstpointer  user_data)
{
  static const guint8 binary[] = { 0, 1, 2, 0xfe, 0xff, '\n', '"' };
  g_autoptr(KvStorage) other_storage = KV_STORAGE (kv_map_storage_new ());
  KvTestServer *other = kv_test_server_start (other_storage);
  g_autoptr(KvTestResponse) exported = NULL;
  g_autoptr(KvTestResponse) imported = NULL;
  g_autoptr(KvTestResponse) again = NULL;
  g_autoptr(GPtrArray) original = NULL;
  g_autoptr(GPtrArray) copy = NULL;
  g_autofree char *big = g_strnfill (300 * 1024, 'x');
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  g_test_summary ("What one server exports, a fresh one imports: its export is the same "
                  "but for the revisions, which are its own");

  put (fixture->storage, "binary", binary, sizeof binary, "application/octet-stream", 0);
  put_text (fixture->storage, "text", "Nairobi\n\t\"é\"");
  put (fixture->storage, "typed", "<p/>", 4, "text/html; charset=utf-8", 0);
  put (fixture->storage, "expiring", "soon", 4, NULL, 10 * G_TIME_SPAN_MINUTE);
  put_text (fixture->storage, "big", big);
  /* Batches and chunks, several of each. */
  for (guint i = 0; i < 3500; i++)
    {
      g_autofree char *key = g_strdup_printf ("many/%04u", i);

      put_text (fixture->storage, key, key);
    }

  exported = export (fixture->server, "GET");
  g_assert_cmpuint (exported->status, ==, 200);
  imported = import (other, "", g_bytes_get_data (exported->body, NULL),
                     g_bytes_get_size (exported->body), TRUE);
  /* In four batches, at revisions of its own. */
  kv_test_assert_response (imported, 200, "{\"imported\":3505,\"skipped\":0,\"revision\":4}\n");
  g_assert_cmpstr (kv_test_response_header (imported, "KV-Revision"), ==, "4");
  g_assert_cmpuint (revision_of (other_storage), ==, 4);

  before = dump_text (fixture->server, TRUE);
  after = dump_text (other, TRUE);
  g_assert_cmpstr (after, ==, before);

  /* The deadline survives, a little later at most: a time to live is
   * counted from when the store applies it, after its batch is built. */
  again = export (other, "GET");
  original = parse_lines (exported);
  copy = parse_lines (again);
  g_assert_cmpuint (copy->len, ==, original->len);
  for (guint i = 0; i < copy->len; i++)
    {
      JsonObject *line = line_at (copy, i);

      g_assert_cmpint (json_object_get_int_member (line, "revision"), <=, 4);
      if (json_object_has_member (line, "expires_at"))
        {
          gint64 later = timestamp_ms (line) - timestamp_ms (line_at (original, i));

          g_assert_cmpint (later, >=, -2);
          g_assert_cmpint (later, <=, 1000);
        }
    }

  kv_test_server_stop (other);
}

static void
test_merge_replace (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) merge = NULL;
  g_autoptr(KvTestResponse) replace = NULL;
  g_autoptr(KvTestResponse) explicit_merge = NULL;
  g_autoptr(KvTestResponse) empty = NULL;
  g_autoptr(KvTestResponse) empty_replace = NULL;
  g_autofree char *merged = NULL;
  g_autofree char *replaced = NULL;
  const char *lines = "{\"key\":\"b\",\"value\":\"20\",\"revision\":99}\n"
                      "\n"
                      "{\"key\":\"c\",\"value_base64\":\"MzA=\",\"content_type\":\"text/x\"}";

  g_test_summary ("An import merges into the store by default, or with mode=replace takes "
                  "its place; revisions in the lines are ignored, blank lines too, and the "
                  "last line needs no newline");

  put_text (fixture->storage, "a", "1");
  put_text (fixture->storage, "b", "2");

  merge = import_text (fixture->server, "", lines);
  kv_test_assert_response (merge, 200, "imported 2, skipped 0, revision 3\n");
  g_assert_cmpstr (kv_test_response_header (merge, "KV-Revision"), ==, "3");
  merged = dump_text (fixture->server, FALSE);
  g_assert_cmpstr (merged, ==,
                   "{\"key\":\"a\",\"value\":\"1\"}\n"
                   "{\"key\":\"b\",\"value\":\"20\"}\n"
                   "{\"key\":\"c\",\"value\":\"30\",\"content_type\":\"text/x\"}\n");

  explicit_merge = import_text (fixture->server, "?mode=merge", "{\"key\":\"d\",\"value\":\"4\"}");
  kv_test_assert_response (explicit_merge, 200, "imported 1, skipped 0, revision 4\n");

  replace = import_text (fixture->server, "?mode=replace", lines);
  kv_test_assert_response (replace, 200, "imported 2, skipped 0, revision 5\n");
  replaced = dump_text (fixture->server, FALSE);
  g_assert_cmpstr (replaced, ==,
                   "{\"key\":\"b\",\"value\":\"20\"}\n"
                   "{\"key\":\"c\",\"value\":\"30\",\"content_type\":\"text/x\"}\n");

  /* Nothing to import: the store as it is, at its revision. */
  empty = import_text (fixture->server, "", "");
  kv_test_assert_response (empty, 200, "imported 0, skipped 0, revision 5\n");
  empty_replace = import (fixture->server, "?mode=replace", "\n\n", 2, TRUE);
  kv_test_assert_response (empty_replace, 200,
                           "{\"imported\":0,\"skipped\":0,\"revision\":6}\n");
  g_assert_cmpuint (kv_storage_count (fixture->storage, NULL), ==, 0);
}

static void
test_bad_line (Fixture       *fixture,
               gconstpointer  user_data)
{
  const struct
  {
    const char *line;
    guint status;
    const char *error;
  } cases[] = {
    { "{\"key\":\"x\"", 400, "invalid JSON" },
    { "[1]", 400, "line must be an object" },
    { "\"text\"", 400, "line must be an object" },
    { "{\"key\":\"x\",\"value\":\"1\",\"ttl\":\"5s\"}", 400, "unknown member" },
    { "{\"key\":\"x\",\"value\":\"1\",\"value\":\"2\"}", 400, "duplicate member" },
    { "{\"value\":\"1\"}", 400, "key required" },
    { "{\"key\":\"\",\"value\":\"1\"}", 400, "invalid key" },
    { "{\"key\":\"a\\u0001b\",\"value\":\"1\"}", 400, "invalid key" },
    { "{\"key\":\"a\\u0000b\",\"value\":\"1\"}", 400, "invalid JSON" },
    { "{\"key\":7,\"value\":\"1\"}", 400, "key required" },
    { "{\"key\":\"x\"}", 400, "one of value and value_base64 required" },
    { "{\"key\":\"x\",\"value\":\"1\",\"value_base64\":\"MQ==\"}", 400,
      "one of value and value_base64 required" },
    { "{\"key\":\"x\",\"value\":1}", 400, "invalid value" },
    { "{\"key\":\"x\",\"value\":\"\"}", 400, "value cannot be empty" },
    { "{\"key\":\"x\",\"value_base64\":\"M Q==\"}", 400, "invalid base64" },
    { "{\"key\":\"x\",\"value\":\"1\",\"content_type\":\"no type\"}", 400,
      "invalid content type" },
    { "{\"key\":\"x\",\"value\":\"1\",\"expires_at\":\"tomorrow\"}", 400, "invalid expires_at" },
    { "{\"key\":\"x\",\"value\":\"1\",\"expires_at\":\"2030-01-01T00:00:00\"}", 400,
      "invalid expires_at" },
    { "{\"key\":\"x\",\"value\":\"1\",\"revision\":\"7\"}", 400, "invalid revision" },
    { "{\"key\":\"x\",\"value\":\"1\",\"revision\":-1}", 400, "invalid revision" },
  };
  g_autofree char *before = NULL;
  guint64 revision;

  g_test_summary ("A bad line is refused, naming its number, with the rules of /txn's "
                  "puts; nothing of the import is applied, however many lines passed");

  put_text (fixture->storage, "x", "kept");
  before = dump_text (fixture->server, TRUE);
  revision = revision_of (fixture->storage);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"key\":\"a\",\"value\":\"1\"}\n"
                                               "\n"
                                               "{\"key\":\"x\",\"value\":\"changed\"}\n"
                                               "%s\n"
                                               "{\"key\":\"b\",\"value\":\"2\"}\n",
                                               cases[i].line);
      g_autofree char *text = g_strdup_printf ("line 4: %s\n", cases[i].error);
      g_autofree char *json = g_strdup_printf ("{\"error\":\"%s\",\"status\":%u,\"line\":4}\n",
                                               cases[i].error, cases[i].status);
      g_autoptr(KvTestResponse) r = import_text (fixture->server, "", body);
      g_autoptr(KvTestResponse) r_json = import (fixture->server, "?mode=replace", body,
                                                 strlen (body), TRUE);
      g_autofree char *after = NULL;

      g_test_message ("%s", cases[i].line);
      kv_test_assert_response (r, cases[i].status, text);
      kv_test_assert_response (r_json, cases[i].status, json);
      g_assert_cmpstr (kv_test_response_header (r_json, "Content-Type"), ==, "application/json");
      after = dump_text (fixture->server, TRUE);
      g_assert_cmpstr (after, ==, before);
      g_assert_cmpuint (revision_of (fixture->storage), ==, revision);
    }
}

static void
test_value_too_large (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autofree char *value = g_strnfill (65, 'v');
  g_autofree char *body = g_strdup_printf ("{\"key\":\"a\",\"value\":\"1\"}\n"
                                           "{\"key\":\"b\",\"value\":\"%s\"}\n", value);
  g_autofree char *long_key = g_strnfill (2000, 'k');
  g_autofree char *long_line = g_strdup_printf ("{\"key\":\"%s\",\"value\":\"1\"}", long_key);
  g_autoptr(KvTestResponse) r = import_text (fixture->server, "", body);
  g_autoptr(KvTestResponse) key = import_text (fixture->server, "", long_line);

  g_test_summary ("A value over max-value-size is 413 naming its line, a key over "
                  "max-key-size 400; nothing is applied");

  kv_test_assert_response (r, 413, "line 2: value too large\n");
  kv_test_assert_response (key, 400, "line 1: key too long\n");
  g_assert_cmpuint (kv_storage_count (fixture->storage, NULL), ==, 0);
}

static void
test_too_large (Fixture       *fixture,
                gconstpointer  user_data)
{
  guint16 port = kv_test_server_get_port (fixture->server);
  g_autoptr(GString) body = g_string_new (NULL);
  g_autoptr(GString) chunked = g_string_new ("POST /import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                             "Content-Type: application/x-ndjson\r\n"
                                             "Accept: application/json\r\n"
                                             "Transfer-Encoding: chunked\r\n\r\n");
  g_autoptr(KvRawResponse) announced = NULL;
  g_autoptr(KvRawResponse) grown = NULL;
  g_autoptr(KvRawResponse) health = NULL;
  g_autoptr(KvTestResponse) fits = NULL;
  g_autofree char *request = NULL;

  g_test_summary ("An import over max-import-size is 413 “import too large”: before its "
                  "body is read when Content-Length says so, else as it arrives; nothing is "
                  "applied");

  request = g_strdup_printf ("POST /import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Content-Type: application/x-ndjson\r\n"
                             "Content-Length: %u\r\n\r\n", MAX_IMPORT_SIZE + 1);
  announced = kv_raw_request (port, request);
  g_assert_cmpuint (announced->status, ==, 413);
  g_assert_true (kv_raw_response_body_is (announced, "import too large\n"));

  for (guint i = 0; body->len <= MAX_IMPORT_SIZE; i++)
    g_string_append_printf (body, "{\"key\":\"k%u\",\"value\":\"v\"}\n", i);
  g_string_append_printf (chunked, "%zx\r\n%s\r\n0\r\n\r\n", body->len, body->str);
  grown = kv_raw_request (port, chunked->str);
  g_assert_cmpuint (grown->status, ==, 413);
  g_assert_true (kv_raw_response_body_is (grown, "{\"error\":\"import too large\",\"status\":413}\n"));
  g_assert_cmpuint (kv_storage_count (fixture->storage, NULL), ==, 0);

  /* Within the limit, the same lines go in. */
  g_string_truncate (body, MAX_IMPORT_SIZE / 2);
  g_string_truncate (body, strrchr (body->str, '\n') + 1 - body->str);
  fits = import_text (fixture->server, "", body->str);
  g_assert_cmpuint (fits->status, ==, 200);
  g_assert_cmpuint (kv_storage_count (fixture->storage, NULL), >, 0);

  health = kv_raw_simple (port, "GET", "/healthz", NULL);
  g_assert_cmpuint (health->status, ==, 200);
}

static void
test_expired (Fixture       *fixture,
              gconstpointer  user_data)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr(GDateTime) later = g_date_time_add_minutes (now, 10);
  g_autofree char *stamp = g_date_time_format_iso8601 (later);
  g_autofree char *body = g_strdup_printf (
    "{\"key\":\"gone\",\"value\":\"1\",\"expires_at\":\"2020-01-01T00:00:00.000Z\"}\n"
    "{\"key\":\"kept\",\"value\":\"2\",\"expires_at\":\"%s\"}\n"
    "{\"key\":\"forever\",\"value\":\"3\"}\n", stamp);
  g_autoptr(KvTestResponse) r = import (fixture->server, "", body, strlen (body), TRUE);
  g_autoptr(KvTestResponse) get = kv_test_fixture_request (fixture, "GET", "/kv/kept", NULL);
  g_autoptr(KvTestResponse) gone = kv_test_fixture_request (fixture, "GET", "/kv/gone", NULL);
  g_autoptr(GDateTime) expires = NULL;

  g_test_summary ("An entry whose expires_at is past is skipped; one that expires later "
                  "keeps its deadline");

  kv_test_assert_response (r, 200, "{\"imported\":2,\"skipped\":1,\"revision\":1}\n");
  kv_test_assert_response (get, 200, "2");
  expires = g_date_time_new_from_iso8601 (kv_test_response_header (get, "KV-Expires-At"), NULL);
  g_assert_nonnull (expires);
  g_assert_cmpint (ABS (g_date_time_difference (expires, later)), <, 2 * G_TIME_SPAN_SECOND);
  g_assert_cmpuint (gone->status, ==, 404);
}

static void
test_refused (Fixture       *fixture,
              gconstpointer  user_data)
{
  guint16 port = kv_test_server_get_port (fixture->server);
  g_autoptr(KvRawResponse) form = NULL;
  g_autoptr(KvRawResponse) form_json = NULL;
  g_autoptr(KvRawResponse) mode = NULL;
  g_autoptr(KvRawResponse) get = NULL;
  g_autoptr(KvRawResponse) no_type = NULL;
  g_autoptr(KvTestResponse) parameters = NULL;
  g_autoptr(GBytes) bytes = NULL;
  const char *with_parameters[] = { "Content-Type", "Application/X-NDJSON; charset=utf-8", NULL };
  const char *line = "{\"key\":\"a\",\"value\":\"1\"}\n";

  g_test_summary ("An import of another media type is 415, with a mode other than merge "
                  "or replace 400, both before its body is read; without a Content-Type it "
                  "is NDJSON; /import takes only POST");

  /* What curl -d sends. */
  form = kv_raw_request (port, "POST /import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/x-www-form-urlencoded\r\n"
                               "Content-Length: 24\r\n\r\n"
                               "{\"key\":\"a\",\"value\":\"1\"}");
  g_assert_cmpuint (form->status, ==, 415);
  g_assert_true (kv_raw_response_body_is (form, "unsupported media type\n"));
  form_json = kv_raw_request (port, "POST /import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    "Content-Type: application/json\r\n"
                                    "Accept: application/json\r\n"
                                    "Content-Length: 1000\r\n\r\n");
  g_assert_cmpuint (form_json->status, ==, 415);
  g_assert_true (kv_raw_response_body_is (form_json,
                                          "{\"error\":\"unsupported media type\",\"status\":415}\n"));
  mode = kv_raw_request (port, "POST /import?mode=overwrite HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/x-ndjson\r\n"
                               "Content-Length: 1000\r\n\r\n");
  g_assert_cmpuint (mode->status, ==, 400);
  g_assert_true (kv_raw_response_body_is (mode, "invalid mode\n"));
  get = kv_raw_simple (port, "GET", "/import", NULL);
  g_assert_cmpuint (get->status, ==, 405);
  g_assert_cmpstr (kv_raw_response_header (get, "allow"), ==, "POST");
  g_assert_cmpuint (kv_storage_count (fixture->storage, NULL), ==, 0);

  no_type = kv_raw_simple (port, "POST", "/import", line);
  g_assert_cmpuint (no_type->status, ==, 200);
  g_assert_true (kv_raw_response_body_is (no_type, "imported 1, skipped 0, revision 1\n"));

  bytes = g_bytes_new (line, strlen (line));
  parameters = kv_test_fixture_request_full (fixture, "POST", "/import", with_parameters, bytes);
  kv_test_assert_response (parameters, 200, "imported 1, skipped 0, revision 2\n");
}

/* ---- The request deadline ---- */

static void
fixture_setup_deadline (Fixture       *fixture,
                        gconstpointer  user_data)
{
  g_autoptr(KvConfig) config = kv_config_new ();

  g_object_set (config, "request-timeout", 1, NULL);
  kv_test_fixture_setup (fixture, config);
}

static void
test_deadline (Fixture       *fixture,
               gconstpointer  user_data)
{
  guint16 port = kv_test_server_get_port (fixture->server);
  g_autoptr(GString) body = g_string_new (NULL);
  g_autoptr(GSocket) steady = kv_raw_connect (port);
  g_autoptr(GSocket) trickle = kv_raw_connect (port);
  g_autoptr(KvRawResponse) done = NULL;
  g_autoptr(KvRawResponse) cut = NULL;
  g_autofree char *value = g_strnfill (1000, 'v');
  g_autofree char *head = NULL;
  g_autofree char *expected = NULL;
  const gsize piece = 1200 * 1024;
  guint n = 0;

  g_test_summary ("A large import may take longer than the request timeout to arrive, as "
                  "long as each MiB comes within it; one that trickles is cut off with 408");

  while (body->len < 4 * piece)
    g_string_append_printf (body, "{\"key\":\"k/%05u\",\"value\":\"%s\"}\n", n++, value);
  head = g_strdup_printf ("POST /import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: application/x-ndjson\r\n"
                          "Content-Length: %zu\r\n\r\n", body->len);

  /* About 2.4 s in all, each MiB within 0.6 s. */
  kv_raw_send_string (steady, head);
  for (gsize sent = 0; sent < body->len; sent += piece)
    {
      kv_raw_send (steady, body->str + sent, MIN (piece, body->len - sent));
      if (sent + piece < body->len)
        g_usleep (600 * 1000);
    }
  done = kv_raw_read_response (steady, FALSE, 10000);
  expected = g_strdup_printf ("imported %u, skipped 0, revision %u\n", n, (n + 999) / 1000);
  g_assert_cmpuint (done->status, ==, 200);
  g_assert_true (kv_raw_response_body_is (done, expected));

  kv_raw_send_string (trickle, head);
  kv_raw_send (trickle, body->str, 1000);
  cut = kv_raw_read_response (trickle, FALSE, 5000);
  g_assert_cmpuint (cut->status, ==, 408);
  g_assert_true (kv_raw_response_body_is (cut, "request timeout\n"));
}

/* ---- The store answering later, and failing ---- */

static void
fixture_setup_slow (Fixture       *fixture,
                    gconstpointer  user_data)
{
  fixture->storage = KV_STORAGE (kv_test_slow_storage_new (20));
  fixture->server = kv_test_server_start (fixture->storage);
  fixture->session = kv_test_session_new ();
}

typedef struct
{
  KvTestServer *server;
  GString *body;
  KvTestResponse *response;
} Importer;

static gpointer
import_thread (gpointer data)
{
  Importer *importer = data;

  g_atomic_pointer_set (&importer->response,
                        import (importer->server, "?mode=replace", importer->body->str,
                                importer->body->len, FALSE));
  return NULL;
}

static void
test_slow_store (Fixture       *fixture,
                 gconstpointer  user_data)
{
  guint16 port = kv_test_server_get_port (fixture->server);
  Importer importer = { fixture->server, g_string_new (NULL), NULL };
  guint n_health = 0;
  GThread *thread;

  g_test_summary ("With a store that answers later, an import applies batch after batch, "
                  "and the server goes on answering others meanwhile");

  /* "slow…" keys: each batch waits for the store. */
  for (guint i = 0; i < 2500; i++)
    g_string_append_printf (importer.body, "{\"key\":\"slow/%04u\",\"value\":\"%u\"}\n", i, i);
  put_text (fixture->storage, "slow/old", "gone after");

  thread = g_thread_new ("importer", import_thread, &importer);
  while (g_atomic_pointer_get (&importer.response) == NULL)
    {
      g_autoptr(KvRawResponse) health = kv_raw_simple (port, "GET", "/healthz", NULL);

      g_assert_cmpuint (health->status, ==, 200);
      n_health++;
      g_usleep (5 * 1000);
    }
  g_thread_join (thread);
  g_test_message ("%u health checks answered meanwhile", n_health);

  /* A clear and 1,000 entries, then 1,000, then 500. */
  kv_test_assert_response (importer.response, 200, "imported 2500, skipped 0, revision 4\n");
  g_assert_cmpuint (kv_storage_count (fixture->storage, NULL), ==, 2500);
  kv_test_response_free (importer.response);
  g_string_free (importer.body, TRUE);
}

static void
fixture_setup_slower (Fixture       *fixture,
                      gconstpointer  user_data)
{
  fixture->storage = KV_STORAGE (kv_test_slow_storage_new (100));
  fixture->server = kv_test_server_start (fixture->storage);
  fixture->session = kv_test_session_new ();
}

static void
test_client_gone (Fixture       *fixture,
                  gconstpointer  user_data)
{
  KvTestSlowStorage *slow = KV_TEST_SLOW_STORAGE (fixture->storage);
  guint16 port = kv_test_server_get_port (fixture->server);
  g_autoptr(GString) body = g_string_new (NULL);
  g_autoptr(GSocket) socket = kv_raw_connect (port);
  g_autoptr(KvRawResponse) health = NULL;
  g_autofree char *head = NULL;
  guint64 n;
  gint64 deadline;

  g_test_summary ("An import whose client goes away stops after the batch being applied; "
                  "the batches before it stay, and nothing is left behind");

  for (guint i = 0; i < 10000; i++)
    g_string_append_printf (body, "{\"key\":\"slow/%05u\",\"value\":\"%u\"}\n", i, i);
  head = g_strdup_printf ("POST /import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: application/x-ndjson\r\n"
                          "Content-Length: %zu\r\n\r\n", body->len);
  kv_raw_send_string (socket, head);
  kv_raw_send (socket, body->str, body->len);

  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (kv_storage_count (fixture->storage, NULL) == 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (kv_storage_count (fixture->storage, NULL), >, 0);
  g_socket_close (socket, NULL);

  /* The batch under way when the server sees it is cancelled. */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (kv_test_slow_storage_get_n_cancelled (slow) == 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (kv_test_slow_storage_get_n_cancelled (slow), ==, 1);
  n = kv_storage_count (fixture->storage, NULL);
  g_usleep (300 * 1000);
  g_assert_cmpuint (kv_storage_count (fixture->storage, NULL), ==, n);
  g_assert_cmpuint (n % 1000, ==, 0);
  g_assert_cmpuint (n, <, 10000);
  g_assert_cmpuint (kv_test_slow_storage_get_n_pending (slow), ==, 0);

  health = kv_raw_simple (port, "GET", "/healthz", NULL);
  g_assert_cmpuint (health->status, ==, 200);
}

/* A store whose disk fills up after so many writes. */
#define KV_TYPE_TEST_FULL_STORAGE (kv_test_full_storage_get_type ())
G_DECLARE_FINAL_TYPE (KvTestFullStorage, kv_test_full_storage, KV, TEST_FULL_STORAGE, GObject)

struct _KvTestFullStorage
{
  GObject parent_instance;

  KvStorage *inner;     /* (owned) */
  gint applies_left;    /* (atomic) */
};

static void kv_test_full_storage_iface_init (KvStorageInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (KvTestFullStorage, kv_test_full_storage, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (KV_TYPE_STORAGE,
                                                      kv_test_full_storage_iface_init))

#define INNER(self) (KV_TEST_FULL_STORAGE (self)->inner)

static KvEntry *
full_get (KvStorage *self, const char *key, gint64 *expires_at, GError **error)
{
  return kv_storage_get (INNER (self), key, expires_at, error);
}

static KvTxnResult *
full_apply (KvStorage *self, KvTxn *txn, guint *failed_op, GError **error)
{
  if (g_atomic_int_add (&KV_TEST_FULL_STORAGE (self)->applies_left, -1) <= 0)
    {
      g_set_error_literal (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_INSUFFICIENT_STORAGE,
                           "insufficient storage");
      return NULL;
    }
  return kv_storage_apply (INNER (self), txn, failed_op, error);
}

static GPtrArray *
full_list (KvStorage *self, const char *prefix, const char *after, guint limit, gboolean *more)
{
  return kv_storage_list (INNER (self), prefix, after, limit, more);
}

static guint64
full_count (KvStorage *self, const char *prefix)
{
  return kv_storage_count (INNER (self), prefix);
}

static void
full_get_info (KvStorage *self, KvStorageInfo *info)
{
  kv_storage_get_info (INNER (self), info);
}

static guint
full_subscribe (KvStorage *self, GMainContext *context, const KvSubscribeOptions *options,
                KvChangeFunc func, gpointer user_data, GDestroyNotify notify, KvHistoryInfo *info,
                GError **error)
{
  return kv_storage_subscribe (INNER (self), context, options, func, user_data, notify, info,
                               error);
}

static void
full_unsubscribe (KvStorage *self, guint id)
{
  kv_storage_unsubscribe (INNER (self), id);
}

static KvDump *
full_dump (KvStorage *self)
{
  return kv_storage_dump (INNER (self));
}

static void
kv_test_full_storage_iface_init (KvStorageInterface *iface)
{
  iface->get = full_get;
  iface->apply = full_apply;
  iface->list = full_list;
  iface->count = full_count;
  iface->get_info = full_get_info;
  iface->subscribe = full_subscribe;
  iface->unsubscribe = full_unsubscribe;
  iface->dump = full_dump;
}

static void
kv_test_full_storage_finalize (GObject *object)
{
  g_object_unref (KV_TEST_FULL_STORAGE (object)->inner);

  G_OBJECT_CLASS (kv_test_full_storage_parent_class)->finalize (object);
}

static void
kv_test_full_storage_class_init (KvTestFullStorageClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = kv_test_full_storage_finalize;
}

static void
kv_test_full_storage_init (KvTestFullStorage *self)
{
  self->inner = KV_STORAGE (kv_map_storage_new ());
  self->applies_left = 2;
}

static void
fixture_setup_full (Fixture       *fixture,
                    gconstpointer  user_data)
{
  fixture->storage = g_object_new (KV_TYPE_TEST_FULL_STORAGE, NULL);
  fixture->server = kv_test_server_start (fixture->storage);
  fixture->session = kv_test_session_new ();
}

static void
test_storage_full (Fixture       *fixture,
                   gconstpointer  user_data)
{
  g_autoptr(GString) body = g_string_new (NULL);
  g_autoptr(KvTestResponse) r = NULL;
  g_autoptr(KvTestResponse) r_json = NULL;

  g_test_summary ("When the store fails in the middle of an import, the answer is its error "
                  "(507), naming how many entries went in before it");

  for (guint i = 0; i < 3000; i++)
    g_string_append_printf (body, "{\"key\":\"k/%04u\",\"value\":\"%u\"}\n", i, i);

  r = import_text (fixture->server, "", body->str);
  kv_test_assert_response (r, 507, "imported 2000: insufficient storage\n");
  g_assert_cmpuint (kv_storage_count (fixture->storage, NULL), ==, 2000);

  r_json = import (fixture->server, "", body->str, body->len, TRUE);
  kv_test_assert_response (r_json, 507,
                           "{\"error\":\"insufficient storage\",\"status\":507,\"imported\":0}\n");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add ("/kv/export/entries", Fixture, NULL, fixture_setup, test_export_entries,
              fixture_teardown);
  g_test_add ("/kv/export/large", Fixture, NULL, fixture_setup, test_export_large,
              fixture_teardown);
  g_test_add ("/kv/export/consistent", Fixture, NULL, fixture_setup, test_export_consistent,
              fixture_teardown);
  g_test_add ("/kv/export/busy", Fixture, NULL, fixture_setup_busy, test_export_busy,
              fixture_teardown);
  g_test_add ("/kv/import/round-trip", Fixture, NULL, fixture_setup, test_round_trip,
              fixture_teardown);
  g_test_add ("/kv/import/merge-replace", Fixture, NULL, fixture_setup, test_merge_replace,
              fixture_teardown);
  g_test_add ("/kv/import/bad-line", Fixture, NULL, fixture_setup, test_bad_line,
              fixture_teardown);
  g_test_add ("/kv/import/value-too-large", Fixture, NULL, fixture_setup_small,
              test_value_too_large, fixture_teardown);
  g_test_add ("/kv/import/too-large", Fixture, NULL, fixture_setup_small, test_too_large,
              fixture_teardown);
  g_test_add ("/kv/import/expired", Fixture, NULL, fixture_setup, test_expired,
              fixture_teardown);
  g_test_add ("/kv/import/refused", Fixture, NULL, fixture_setup, test_refused,
              fixture_teardown);
  g_test_add ("/kv/import/slow-store", Fixture, NULL, fixture_setup_slow, test_slow_store,
              fixture_teardown);
  g_test_add ("/kv/import/storage-full", Fixture, NULL, fixture_setup_full, test_storage_full,
              fixture_teardown);
  g_test_add ("/kv/import/client-gone", Fixture, NULL, fixture_setup_slower, test_client_gone,
              fixture_teardown);
  g_test_add ("/kv/import/deadline", Fixture, NULL, fixture_setup_deadline, test_deadline,
              fixture_teardown);

  return g_test_run ();
}
