/* test-txn.c: transactions, prefix deletes, counting and /clear over HTTP
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "kv-test-raw.h"
#include "kv-test-utils.h"

#define MAX_VALUE_SIZE 1024

typedef KvTestFixture Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(KvConfig) config = kv_config_new ();

  g_object_set (config, "max-value-size", (guint64) MAX_VALUE_SIZE, NULL);
  kv_test_fixture_setup (fixture, config);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  kv_test_fixture_teardown (fixture);
}

static KvTestResponse *
post (Fixture    *fixture,
      const char *body)
{
  const char *json[] = { "Accept", "application/json", NULL };
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

  return kv_test_fixture_request_full (fixture, "POST", "/txn", json, bytes);
}

static JsonObject *
parse (KvTestResponse *r,
       JsonNode      **root)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (r->body, &len);

  json_parser_load_from_data (parser, data, len, &error);
  g_assert_no_error (error);
  *root = json_node_copy (json_parser_get_root (parser));
  return json_node_get_object (*root);
}

static JsonObject *
result_at (JsonObject *body,
           guint       index)
{
  return json_array_get_object_element (json_object_get_array_member (body, "results"), index);
}

static void
test_apply (Fixture       *fixture,
            gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) seed = kv_test_fixture_request (fixture, "PUT", "/kv/c", "old");
  g_autoptr(KvTestResponse) r = NULL;
  g_autoptr(KvTestResponse) binary = NULL;
  g_autoptr(KvTestResponse) text = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *body;

  g_test_summary ("A transaction applies every operation at one revision and answers one "
                  "result per operation");

  r = post (fixture,
            "{\"ops\": ["
            "{\"op\": \"put\", \"key\": \"a\", \"value\": \"héllo\", \"content_type\": \"text/x-a\"},"
            "{\"op\": \"put\", \"key\": \"b\", \"value_base64\": \"AP8=\", \"ttl\": \"1h\"},"
            "{\"op\": \"get\", \"key\": \"a\"},"
            "{\"op\": \"get\", \"key\": \"b\"},"
            "{\"op\": \"delete\", \"key\": \"c\", \"if_match\": \"1\"},"
            "{\"op\": \"get\", \"key\": \"c\"},"
            "{\"op\": \"delete_prefix\", \"prefix\": \"nothing/\"}"
            "]}");
  g_assert_cmpuint (r->status, ==, 200);
  body = parse (r, &root);
  g_assert_cmpint (json_object_get_int_member (body, "revision"), ==, 2);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (body, "results")), ==, 7);
  g_assert_cmpint (json_object_get_int_member (result_at (body, 0), "revision"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (result_at (body, 1), "revision"), ==, 2);
  g_assert_true (json_object_has_member (result_at (body, 1), "expires_at"));
  g_assert_true (json_object_get_boolean_member (result_at (body, 2), "found"));
  g_assert_cmpstr (json_object_get_string_member (result_at (body, 2), "value"), ==, "héllo");
  g_assert_cmpstr (json_object_get_string_member (result_at (body, 2), "content_type"), ==,
                   "text/x-a");
  g_assert_cmpstr (json_object_get_string_member (result_at (body, 3), "value_base64"), ==,
                   "AP8=");
  g_assert_cmpint (json_object_get_int_member (result_at (body, 4), "deleted"), ==, 1);
  g_assert_false (json_object_get_boolean_member (result_at (body, 5), "found"));
  g_assert_cmpint (json_object_get_int_member (result_at (body, 6), "deleted"), ==, 0);

  binary = kv_test_fixture_request (fixture, "GET", "/kv/b", NULL);
  g_assert_cmpuint (binary->status, ==, 200);
  g_assert_cmpmem (g_bytes_get_data (binary->body, NULL), g_bytes_get_size (binary->body),
                   "\x00\xff", 2);
  text = kv_test_fixture_request (fixture, "GET", "/kv/a", NULL);
  g_assert_cmpstr (kv_test_response_header (text, "ETag"), ==, "\"2\"");
}

static void
test_conflict (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) seed = kv_test_fixture_request (fixture, "PUT", "/kv/x", "1");
  g_autoptr(KvTestResponse) r = NULL;
  g_autoptr(KvTestResponse) after = NULL;
  g_autoptr(KvTestResponse) missing = NULL;

  g_test_summary ("A failed condition answers 409 with the first failed operation's index, "
                  "and applies nothing");

  r = post (fixture,
            "{\"ops\": ["
            "{\"op\": \"put\", \"key\": \"y\", \"value\": \"new\"},"
            "{\"op\": \"put\", \"key\": \"x\", \"value\": \"2\", \"if_none_match\": \"*\"},"
            "{\"op\": \"delete\", \"key\": \"x\", \"if_match\": 99}"
            "]}");
  kv_test_assert_response (r, 409, "{\"error\":\"precondition failed\",\"status\":409,\"op\":1}\n");

  after = kv_test_fixture_request (fixture, "GET", "/kv/x", NULL);
  kv_test_assert_response (after, 200, "1");
  g_assert_cmpstr (kv_test_response_header (after, "ETag"), ==, "\"1\"");
  missing = kv_test_fixture_request (fixture, "GET", "/kv/y", NULL);
  g_assert_cmpuint (missing->status, ==, 404);
}

static void
test_hostile_bodies (Fixture       *fixture,
                     gconstpointer  user_data)
{
  g_autoptr(GString) deep = g_string_new ("{\"ops\": [");
  g_autoptr(GString) many = g_string_new ("{\"ops\": [");
  g_autoptr(GString) huge = g_string_new ("{\"ops\": [{\"op\": \"put\", \"key\": \"k\", \"value\": \"");
  const struct
  {
    const char *name;
    const char *body;
    guint status;
    const char *error;
  } cases[] = {
    { "not JSON", "ops", 400, "invalid JSON" },
    { "empty", "", 400, "invalid JSON" },
    { "an assignment", "var x = {\"ops\": []}", 400, "invalid JSON" },
    { "not an object", "[]", 400, "body must be an object" },
    { "no ops", "{\"ops\": []}", 400, "no operations" },
    { "ops not an array", "{\"ops\": {}}", 400, "body must be {\"ops\": [...]}" },
    { "another member", "{\"ops\": [], \"x\": 1}", 400, "body must be {\"ops\": [...]}" },
    { "duplicate member",
      "{\"ops\": [{\"op\": \"get\", \"key\": \"a\", \"key\": \"b\"}]}", 400, "duplicate member" },
    { "op not an object", "{\"ops\": [1]}", 400, "op 0: operation must be an object" },
    { "unknown op", "{\"ops\": [{\"op\": \"get\", \"key\": \"a\"}, {\"op\": \"frob\"}]}",
      400, "op 1: unknown op" },
    { "wrong type of key", "{\"ops\": [{\"op\": \"get\", \"key\": 5}]}", 400, "op 0: key required" },
    { "no key", "{\"ops\": [{\"op\": \"delete\"}]}", 400, "op 0: key required" },
    { "empty key", "{\"ops\": [{\"op\": \"delete\", \"key\": \"\"}]}", 400, "op 0: invalid key" },
    { "control character in key", "{\"ops\": [{\"op\": \"get\", \"key\": \"a\\u0001\"}]}",
      400, "op 0: invalid key" },
    { "unknown member", "{\"ops\": [{\"op\": \"get\", \"key\": \"a\", \"ttl\": \"1s\"}]}",
      400, "op 0: unknown member" },
    { "no value", "{\"ops\": [{\"op\": \"put\", \"key\": \"a\"}]}",
      400, "op 0: one of value and value_base64 required" },
    { "two values",
      "{\"ops\": [{\"op\": \"put\", \"key\": \"a\", \"value\": \"x\", \"value_base64\": \"eA==\"}]}",
      400, "op 0: one of value and value_base64 required" },
    { "empty value", "{\"ops\": [{\"op\": \"put\", \"key\": \"a\", \"value\": \"\"}]}",
      400, "op 0: value cannot be empty" },
    { "bad base64", "{\"ops\": [{\"op\": \"put\", \"key\": \"a\", \"value_base64\": \"eA=x\"}]}",
      400, "op 0: invalid base64" },
    { "base64 with a space",
      "{\"ops\": [{\"op\": \"put\", \"key\": \"a\", \"value_base64\": \"eA= =\"}]}",
      400, "op 0: invalid base64" },
    { "invalid UTF-8 in value", "{\"ops\": [{\"op\": \"put\", \"key\": \"a\", \"value\": \"\xc3\x28\"}]}",
      400, "invalid JSON" },
    { "value of the wrong type", "{\"ops\": [{\"op\": \"put\", \"key\": \"a\", \"value\": 1}]}",
      400, "op 0: invalid value" },
    { "bad ttl", "{\"ops\": [{\"op\": \"put\", \"key\": \"a\", \"value\": \"x\", \"ttl\": \"soon\"}]}",
      400, "op 0: invalid ttl" },
    { "bad content type",
      "{\"ops\": [{\"op\": \"put\", \"key\": \"a\", \"value\": \"x\", \"content_type\": \"///\"}]}",
      400, "op 0: invalid content type" },
    { "bad condition", "{\"ops\": [{\"op\": \"delete\", \"key\": \"a\", \"if_match\": \"x\"}]}",
      400, "op 0: invalid precondition" },
    { "bad if_none_match",
      "{\"ops\": [{\"op\": \"delete\", \"key\": \"a\", \"if_none_match\": \"3\"}]}",
      400, "op 0: invalid precondition" },
    { "deep nesting", NULL, 400, "invalid JSON" },
    { "10,001 operations", NULL, 400, "too many operations" },
    { "a value over the limit", NULL, 413, "op 0: value too large" },
  };

  g_test_summary ("Hostile and malformed bodies each get their 4xx, naming the operation, "
                  "and change nothing");

  for (guint i = 0; i < 10000; i++)
    g_string_append (deep, "[");
  for (guint i = 0; i < 10001; i++)
    g_string_append_printf (many, "%s{\"op\": \"get\", \"key\": \"k\"}", i > 0 ? "," : "");
  g_string_append (many, "]}");
  for (guint i = 0; i < MAX_VALUE_SIZE + 1; i++)
    g_string_append_c (huge, 'x');
  g_string_append (huge, "\"}]}");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *body = cases[i].body;
      g_autoptr(KvTestResponse) r = NULL;
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *text = NULL;
      JsonObject *error;

      if (body == NULL)
        body = g_str_equal (cases[i].name, "deep nesting") ? deep->str
             : g_str_equal (cases[i].name, "10,001 operations") ? many->str : huge->str;
      g_test_message ("%s", cases[i].name);
      r = post (fixture, body);
      g_assert_cmpuint (r->status, ==, cases[i].status);
      error = parse (r, &root);
      if (g_str_has_prefix (cases[i].error, "op "))
        {
          guint op = g_ascii_strtoull (cases[i].error + 3, NULL, 10);

          g_assert_cmpstr (json_object_get_string_member (error, "error"), ==,
                           strchr (cases[i].error, ':') + 2);
          g_assert_cmpint (json_object_get_int_member (error, "op"), ==, op);
        }
      else
        {
          g_assert_cmpstr (json_object_get_string_member (error, "error"), ==, cases[i].error);
          g_assert_false (json_object_has_member (error, "op"));
        }
    }

  {
    g_autoptr(KvTestResponse) count = kv_test_fixture_request (fixture, "GET", "/keys?count",
                                                               NULL);
    kv_test_assert_response (count, 200, "0\n");
  }
}

static void
test_too_large (Fixture       *fixture,
                gconstpointer  user_data)
{
  guint16 port = kv_test_server_get_port (fixture->server);
  g_autoptr(KvRawResponse) r = kv_raw_request (port, "POST /txn HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                     "Content-Length: 16777217\r\n\r\n");
  g_autoptr(KvRawResponse) method = kv_raw_simple (port, "GET", "/txn", NULL);

  g_test_summary ("A transaction over max-txn-size is 413 before its body is read; /txn "
                  "takes only POST");

  g_assert_cmpuint (r->status, ==, 413);
  g_assert_true (kv_raw_response_body_is (r, "value too large\n"));
  g_assert_cmpuint (method->status, ==, 405);
  g_assert_cmpstr (kv_raw_response_header (method, "allow"), ==, "POST");
}

static void
test_prefix_count_clear (Fixture       *fixture,
                         gconstpointer  user_data)
{
  const char *keys[] = { "a", "a/1", "a/2", "a/3", "b" };
  const char *json[] = { "Accept", "application/json", NULL };
  g_autoptr(KvTestResponse) count = NULL;
  g_autoptr(KvTestResponse) count_json = NULL;
  g_autoptr(KvTestResponse) deleted = NULL;
  g_autoptr(KvTestResponse) bare = NULL;
  g_autoptr(KvTestResponse) left = NULL;
  g_autoptr(KvTestResponse) clear = NULL;
  g_autoptr(KvTestResponse) clear_get = NULL;
  g_autoptr(KvTestResponse) empty = NULL;

  g_test_summary ("DELETE /keys?prefix=P deletes a prefix at one revision, ?count counts, "
                  "DELETE /clear empties the store");

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autofree char *path = g_strconcat ("/kv/", keys[i], NULL);
      g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, "PUT", path, "v");

      g_assert_cmpuint (r->status, ==, 200);
    }

  count = kv_test_fixture_request (fixture, "GET", "/keys?prefix=a/&count", NULL);
  kv_test_assert_response (count, 200, "3\n");
  count_json = kv_test_fixture_request_full (fixture, "GET", "/keys?count", json, NULL);
  kv_test_assert_response (count_json, 200, "{\"count\":5}\n");

  deleted = kv_test_fixture_request (fixture, "DELETE", "/keys?prefix=a/", NULL);
  kv_test_assert_response (deleted, 200, "3\n");
  g_assert_cmpstr (kv_test_response_header (deleted, "KV-Revision"), ==, "6");
  bare = kv_test_fixture_request (fixture, "DELETE", "/keys", NULL);
  kv_test_assert_response (bare, 400, "prefix required\n");
  left = kv_test_fixture_request (fixture, "GET", "/keys", NULL);
  kv_test_assert_response (left, 200, "a\nb\n");

  clear_get = kv_test_fixture_request (fixture, "GET", "/clear", NULL);
  kv_test_assert_response (clear_get, 405, "method not allowed\n");
  g_assert_cmpstr (kv_test_response_header (clear_get, "Allow"), ==, "DELETE");
  clear = kv_test_fixture_request (fixture, "DELETE", "/clear", NULL);
  kv_test_assert_response (clear, 200, "");
  g_assert_cmpstr (kv_test_response_header (clear, "KV-Revision"), ==, "7");
  empty = kv_test_fixture_request (fixture, "GET", "/keys?count", NULL);
  kv_test_assert_response (empty, 200, "0\n");
}

/* ---- Concurrency ---- */

#define N_KEYS 4
#define N_WRITES 300
#define N_CLIENTS 16

typedef struct
{
  Fixture *fixture;
  gboolean *done;
  guint torn;
  guint reads;
} Reader;

static gpointer
read_all_keys (gpointer data)
{
  Reader *reader = data;
  g_autoptr(SoupSession) session = kv_test_session_new ();
  g_autofree char *uri = kv_test_server_uri (reader->fixture->server, "/txn");
  const char *body = "{\"ops\": [{\"op\": \"get\", \"key\": \"t0\"}, {\"op\": \"get\", \"key\": \"t1\"},"
                     " {\"op\": \"get\", \"key\": \"t2\"}, {\"op\": \"get\", \"key\": \"t3\"}]}";
  g_autoptr(GBytes) bytes = g_bytes_new_static (body, strlen (body));

  while (!g_atomic_int_get (reader->done))
    {
      g_autoptr(KvTestResponse) r = kv_test_request (session, "POST", uri, NULL, bytes);
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = parse (r, &root);
      const char *first = NULL;

      g_assert_cmpuint (r->status, ==, 200);
      for (guint i = 0; i < N_KEYS; i++)
        {
          JsonObject *result = result_at (object, i);
          const char *value = json_object_get_boolean_member (result, "found")
                              ? json_object_get_string_member (result, "value") : "";

          if (i == 0)
            first = value;
          else if (g_strcmp0 (first, value) != 0)
            reader->torn++;
        }
      reader->reads++;
    }
  return NULL;
}

static void
test_atomic_reads (Fixture       *fixture,
                   gconstpointer  user_data)
{
  gboolean done = FALSE;
  Reader readers[2] = { { fixture, &done, 0, 0 }, { fixture, &done, 0, 0 } };
  GThread *threads[2];

  g_test_summary ("A reader that gets every key of a transaction never sees part of it");

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("reader", read_all_keys, &readers[i]);

  for (guint w = 0; w < N_WRITES; w++)
    {
      g_autoptr(GString) body = g_string_new ("{\"ops\": [");
      g_autoptr(KvTestResponse) r = NULL;

      for (guint i = 0; i < N_KEYS; i++)
        g_string_append_printf (body, "%s{\"op\": \"put\", \"key\": \"t%u\", \"value\": \"%u\"}",
                                i > 0 ? "," : "", i, w);
      g_string_append (body, "]}");
      r = post (fixture, body->str);
      g_assert_cmpuint (r->status, ==, 200);
    }

  g_atomic_int_set (&done, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpuint (readers[i].torn, ==, 0);
      g_assert_cmpuint (readers[i].reads, >, 0);
    }
}

typedef struct
{
  Fixture *fixture;
  guint id;
  GArray *wins;    /* (element-type guint64): revisions this client won from */
} Contender;

static gpointer
contend (gpointer data)
{
  Contender *c = data;
  g_autoptr(SoupSession) session = kv_test_session_new ();
  g_autofree char *txn_uri = kv_test_server_uri (c->fixture->server, "/txn");
  g_autofree char *key_uri = kv_test_server_uri (c->fixture->server, "/kv/counter");

  for (guint round = 0; round < 40; round++)
    {
      g_autoptr(KvTestResponse) current = kv_test_request (session, "GET", key_uri, NULL, NULL);
      const char *etag = kv_test_response_header (current, "ETag");
      guint64 revision = g_ascii_strtoull (etag + 1, NULL, 10);
      g_autofree char *body = NULL;
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(KvTestResponse) r = NULL;

      body = g_strdup_printf ("{\"ops\": [{\"op\": \"put\", \"key\": \"counter\", \"value\": "
                              "\"%u\", \"if_match\": %" G_GUINT64_FORMAT "},"
                              "{\"op\": \"put\", \"key\": \"log/%" G_GUINT64_FORMAT "\", "
                              "\"value\": \"%u\", \"if_none_match\": \"*\"}]}",
                              c->id, revision, revision, c->id);
      bytes = g_bytes_new (body, strlen (body));
      r = kv_test_request (session, "POST", txn_uri, NULL, bytes);
      g_assert_true (r->status == 200 || r->status == 409);
      if (r->status == 200)
        g_array_append_val (c->wins, revision);
    }
  return NULL;
}

static void
test_conditional_race (Fixture       *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) seed = kv_test_fixture_request (fixture, "PUT", "/kv/counter", "0");
  g_autoptr(GHashTable) winners = g_hash_table_new (g_int64_hash, g_int64_equal);
  Contender contenders[N_CLIENTS];
  GThread *threads[N_CLIENTS];
  guint total = 0;

  g_test_summary ("Conditional transactions from 16 clients on one key never both win from "
                  "the same revision");

  for (guint i = 0; i < N_CLIENTS; i++)
    {
      contenders[i] = (Contender) { fixture, i, g_array_new (FALSE, FALSE, sizeof (guint64)) };
      threads[i] = g_thread_new ("contender", contend, &contenders[i]);
    }
  for (guint i = 0; i < N_CLIENTS; i++)
    {
      g_thread_join (threads[i]);
      for (guint j = 0; j < contenders[i].wins->len; j++)
        {
          guint64 *revision = &g_array_index (contenders[i].wins, guint64, j);

          g_assert_false (g_hash_table_contains (winners, revision));
          g_hash_table_add (winners, revision);
          total++;
        }
    }
  g_assert_cmpuint (total, >, 0);

  {
    g_autofree char *prefix = g_strdup ("/keys?prefix=log/&count");
    g_autoptr(KvTestResponse) count = kv_test_fixture_request (fixture, "GET", prefix, NULL);
    g_autofree char *expected = g_strdup_printf ("%u\n", total);

    kv_test_assert_response (count, 200, expected);
  }

  for (guint i = 0; i < N_CLIENTS; i++)
    g_array_unref (contenders[i].wins);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) \
  g_test_add ("/kv/txn/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("apply", test_apply);
  ADD ("conflict", test_conflict);
  ADD ("hostile-bodies", test_hostile_bodies);
  ADD ("too-large", test_too_large);
  ADD ("prefix-count-clear", test_prefix_count_clear);
  ADD ("atomic-reads", test_atomic_reads);
  ADD ("conditional-race", test_conditional_race);
#undef ADD

  return g_test_run ();
}
