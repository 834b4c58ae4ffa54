/* test-watch.c: watch streams and long-polling reads, against the built
 * daemon, with curl and with many raw clients at once
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <json-glib/json-glib.h>

#include "kv-test-raw.h"
#include "kv-test-sse.h"
#include "kv-test-utils.h"

/* No test here waits for time to pass but to let a deadline or a wait go
 * by; these only keep a broken server from hanging the test. */
#define READ_TIMEOUT_MS (30 * 1000)

/* AddressSanitizer keeps what is freed in quarantine: the daemon's
 * resident memory says nothing then. */
#if defined(__SANITIZE_ADDRESS__)
#define MEASURES_MEMORY FALSE
#else
#define MEASURES_MEMORY TRUE
#endif

typedef struct
{
  KvTestDaemon *daemon;
  SoupSession *session;
} Fixture;

static void
fixture_start (Fixture            *fixture,
               const char * const *args)
{
  fixture->daemon = kv_test_daemon_start (args);
  fixture->session = kv_test_session_new ();
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_clear_object (&fixture->session);
  if (fixture->daemon != NULL)
    g_assert_cmpint (kv_test_daemon_stop (fixture->daemon), ==, 0);
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

static void
put (Fixture    *fixture,
     const char *path,
     const char *value)
{
  g_autoptr(KvTestResponse) response = request (fixture, "PUT", path, NULL, value);

  g_assert_cmpuint (response->status, ==, 200);
}

/* A member of /stats. */
static gint64
get_stat (Fixture    *fixture,
          const char *name)
{
  g_autoptr(KvTestResponse) response = request (fixture, "GET", "/stats", NULL, NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (response->body, &len);

  json_parser_load_from_data (parser, data, len, &error);
  g_assert_no_error (error);
  return json_object_get_int_member (json_node_get_object (json_parser_get_root (parser)), name);
}

/* Waits for a member of /stats to reach @value: what the server does
 * after a client has gone is not seen by the client. */
static void
wait_for_stat (Fixture    *fixture,
               const char *name,
               gint64      value)
{
  gint64 deadline = g_get_monotonic_time () + READ_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

  while (get_stat (fixture, name) != value)
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("/stats never had %s %" G_GINT64_FORMAT, name, value);
      g_usleep (20 * 1000);
    }
}

/* Once the connections of a burst have closed, what the daemon keeps. */
static void
wait_for_connections (Fixture *fixture,
                      guint    n)
{
  gint64 deadline = g_get_monotonic_time () + READ_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

  for (;;)
    {
      g_autoptr(KvTestResponse) response = request (fixture, "GET", "/metrics", NULL, NULL);
      g_autofree char *text = g_strndup (g_bytes_get_data (response->body, NULL),
                                         g_bytes_get_size (response->body));
      const char *line = strstr (text, "\ncrafty_kv_open_connections ");

      g_assert_nonnull (line);
      if (g_ascii_strtoull (line + strlen ("\ncrafty_kv_open_connections "), NULL, 10) <= n)
        return;
      if (g_get_monotonic_time () > deadline)
        g_error ("the daemon never had %u connections or fewer", n);
      g_usleep (20 * 1000);
    }
}

static guint64
daemon_rss_kb (Fixture *fixture)
{
  const char *pid = g_subprocess_get_identifier (kv_test_daemon_get_subprocess (fixture->daemon));
  g_autofree char *path = g_strdup_printf ("/proc/%s/status", pid);
  g_autofree char *contents = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  line = strstr (contents, "VmRSS:");
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen ("VmRSS:"), NULL, 10);
}

/* ---- curl -N as the client ---- */

typedef struct
{
  GSubprocess *process;
  GDataInputStream *out;
} Curl;

static Curl *
curl_watch (Fixture            *fixture,
            const char         *path,
            const char * const *headers)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  Curl *curl = g_new0 (Curl, 1);

  g_ptr_array_add (argv, g_strdup ("curl"));
  g_ptr_array_add (argv, g_strdup ("-sN"));
  for (gsize i = 0; headers != NULL && headers[i] != NULL; i++)
    {
      g_ptr_array_add (argv, g_strdup ("-H"));
      g_ptr_array_add (argv, g_strdup (headers[i]));
    }
  g_ptr_array_add (argv, uri (fixture, path));
  g_ptr_array_add (argv, NULL);

  curl->process = g_subprocess_newv ((const char * const *) argv->pdata,
                                     G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  curl->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (curl->process));
  return curl;
}

/* The next block curl printed, its lines joined by newlines; NULL once
 * curl has nothing more. */
static char *
curl_next (Curl *curl)
{
  g_autoptr(GString) block = g_string_new (NULL);

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *line = g_data_input_stream_read_line_utf8 (curl->out, NULL, NULL, &error);

      g_assert_no_error (error);
      if (line == NULL)
        return block->len > 0 ? g_string_free (g_steal_pointer (&block), FALSE) : NULL;
      if (*line == '\0')
        {
          if (block->len > 0)
            return g_string_free (g_steal_pointer (&block), FALSE);
          continue;
        }
      if (block->len > 0)
        g_string_append_c (block, '\n');
      g_string_append (block, line);
    }
}

static void
curl_assert_next (Curl       *curl,
                  const char *expected)
{
  g_autofree char *block = curl_next (curl);

  g_assert_cmpstr (block, ==, expected);
}

static void
curl_free (Curl *curl)
{
  g_subprocess_force_exit (curl->process);
  g_subprocess_wait (curl->process, NULL, NULL);
  g_object_unref (curl->out);
  g_object_unref (curl->process);
  g_free (curl);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Curl, curl_free)

/* curl -s -i, run to the end. */
static char *
curl_run (Fixture            *fixture,
          const char         *path,
          const char * const *headers,
          GSubprocess       **process)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) child = NULL;
  g_autofree char *out = NULL;

  g_ptr_array_add (argv, g_strdup ("curl"));
  g_ptr_array_add (argv, g_strdup ("-si"));
  for (gsize i = 0; headers != NULL && headers[i] != NULL; i++)
    {
      g_ptr_array_add (argv, g_strdup ("-H"));
      g_ptr_array_add (argv, g_strdup (headers[i]));
    }
  g_ptr_array_add (argv, uri (fixture, path));
  g_ptr_array_add (argv, NULL);

  child = g_subprocess_newv ((const char * const *) argv->pdata, G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                             &error);
  g_assert_no_error (error);
  if (process != NULL)
    {
      *process = g_steal_pointer (&child);
      return NULL;
    }
  g_subprocess_communicate_utf8 (child, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&out);
}

static char *
curl_finish (GSubprocess *process)
{
  g_autoptr(GError) error = NULL;
  char *out = NULL;

  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  return out;
}

/* "HTTP/1.1 200 OK\r\nA: b\r\n…\r\n\r\nbody" → the status, a header and
 * the body. */
static guint
curl_status (const char *out)
{
  g_assert_true (g_str_has_prefix (out, "HTTP/1.1 "));
  return g_ascii_strtoull (out + strlen ("HTTP/1.1 "), NULL, 10);
}

static char *
curl_header (const char *out,
             const char *name)
{
  g_auto(GStrv) lines = g_strsplit (out, "\r\n", -1);

  for (guint i = 1; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      const char *colon = strchr (lines[i], ':');

      if (colon != NULL && (gsize) (colon - lines[i]) == strlen (name) &&
          g_ascii_strncasecmp (lines[i], name, colon - lines[i]) == 0)
        return g_strstrip (g_strdup (colon + 1));
    }
  return NULL;
}

static const char *
curl_body (const char *out)
{
  const char *body = strstr (out, "\r\n\r\n");

  g_assert_nonnull (body);
  return body + 4;
}

/* ---- The tests ---- */

static void
test_events (Fixture       *fixture,
             gconstpointer  user_data)
{
  const char * const args[] = { "--threads=2", NULL };
  g_autoptr(Curl) prefix = NULL;
  g_autoptr(Curl) key = NULL;
  g_autoptr(KvTestResponse) txn = NULL;
  g_autoptr(KvTestResponse) deleted = NULL;
  g_autoptr(KvTestResponse) cleared = NULL;
  g_autofree char *block = NULL;

  g_test_summary ("curl -N on /watch?prefix= and ?key= while another client puts, deletes, lets "
                  "a key expire, runs a transaction, deletes a prefix and clears: exactly those "
                  "events, in order, with their revisions as ids, a transaction's on its last "
                  "event");

  fixture_start (fixture, args);
  prefix = curl_watch (fixture, "/watch?prefix=cart/", NULL);
  key = curl_watch (fixture, "/watch?key=cart/1", NULL);
  /* The stream begins with the revision it starts from. */
  curl_assert_next (prefix, "id: 0");
  curl_assert_next (key, "id: 0");

  put (fixture, "/kv/cart/1", "apple");                 /* 1 */
  put (fixture, "/kv/other", "x");                      /* 2 */
  g_clear_pointer (&deleted, kv_test_response_free);
  deleted = request (fixture, "DELETE", "/kv/cart/1", NULL, NULL);  /* 3 */
  put (fixture, "/kv/cart/t?ttl=1s", "token");          /* 4, then 5 when it expires */

  curl_assert_next (prefix, "event: put\nid: 1\ndata: {\"key\":\"cart/1\",\"revision\":1,"
                            "\"size\":5}");
  curl_assert_next (prefix, "event: delete\nid: 3\ndata: {\"key\":\"cart/1\",\"revision\":3}");
  block = curl_next (prefix);
  g_assert_true (g_str_has_prefix (block, "event: put\nid: 4\ndata: {\"key\":\"cart/t\","
                                          "\"revision\":4,\"size\":5,\"expires_at\":\""));
  g_assert_true (g_str_has_suffix (block, "Z\"}"));
  curl_assert_next (prefix, "event: expire\nid: 5\ndata: {\"key\":\"cart/t\",\"revision\":5}");

  txn = request (fixture, "POST", "/txn", NULL,
                 "{\"ops\": [{\"op\": \"put\", \"key\": \"cart/1\", \"value\": \"pear\"},"
                 " {\"op\": \"put\", \"key\": \"cart/2\", \"value\": \"fig\","
                 "  \"content_type\": \"text/x-fruit\"},"
                 " {\"op\": \"put\", \"key\": \"elsewhere\", \"value\": \"z\"}]}");   /* 6 */
  g_assert_cmpuint (txn->status, ==, 200);
  curl_assert_next (prefix, "event: put\ndata: {\"key\":\"cart/1\",\"revision\":6,\"size\":4}");
  curl_assert_next (prefix, "event: put\nid: 6\ndata: {\"key\":\"cart/2\",\"revision\":6,"
                            "\"size\":3,\"content_type\":\"text/x-fruit\"}");

  g_clear_pointer (&deleted, kv_test_response_free);
  deleted = request (fixture, "DELETE", "/keys?prefix=cart/", NULL, NULL);  /* 7 */
  g_assert_cmpuint (deleted->status, ==, 200);
  curl_assert_next (prefix, "event: delete\ndata: {\"key\":\"cart/1\",\"revision\":7}");
  curl_assert_next (prefix, "event: delete\nid: 7\ndata: {\"key\":\"cart/2\",\"revision\":7}");
  cleared = request (fixture, "DELETE", "/clear", NULL, NULL);               /* 8 */
  g_assert_cmpuint (cleared->status, ==, 200);
  curl_assert_next (prefix, "event: clear\nid: 8\ndata: {\"revision\":8}");

  /* The key's own stream saw only its changes, each the last of its
   * revision for it, and the clear. */
  curl_assert_next (key, "event: put\nid: 1\ndata: {\"key\":\"cart/1\",\"revision\":1,\"size\":5}");
  curl_assert_next (key, "event: delete\nid: 3\ndata: {\"key\":\"cart/1\",\"revision\":3}");
  curl_assert_next (key, "event: put\nid: 6\ndata: {\"key\":\"cart/1\",\"revision\":6,\"size\":4}");
  curl_assert_next (key, "event: delete\nid: 7\ndata: {\"key\":\"cart/1\",\"revision\":7}");
  curl_assert_next (key, "event: clear\nid: 8\ndata: {\"revision\":8}");

  g_assert_cmpint (get_stat (fixture, "watchers"), ==, 2);
  g_assert_cmpint (get_stat (fixture, "watches"), ==, 2);
  g_assert_cmpint (get_stat (fixture, "watch_events"), ==, 14);
}

static void
test_values (Fixture       *fixture,
             gconstpointer  user_data)
{
  g_autoptr(Curl) curl = NULL;
  g_autoptr(KvTestResponse) binary = NULL;
  const char * const png[] = { "Content-Type", "image/png", NULL };
  g_autoptr(GBytes) bytes = g_bytes_new_static ("\211PNG\r\n\032\n", 8);
  g_autofree char *target = NULL;

  g_test_summary ("With values=1 an event carries the value: as text when it is UTF-8, else "
                  "in base64");

  fixture_start (fixture, NULL);
  curl = curl_watch (fixture, "/watch?values=1", NULL);
  curl_assert_next (curl, "id: 0");

  put (fixture, "/kv/greeting", "hello \"world\"\n");
  target = uri (fixture, "/kv/logo");
  binary = kv_test_request (fixture->session, "PUT", target, png, bytes);
  g_assert_cmpuint (binary->status, ==, 200);

  curl_assert_next (curl, "event: put\nid: 1\ndata: {\"key\":\"greeting\",\"revision\":1,"
                          "\"size\":14,\"value\":\"hello \\\"world\\\"\\u000a\"}");
  curl_assert_next (curl, "event: put\nid: 2\ndata: {\"key\":\"logo\",\"revision\":2,\"size\":8,"
                          "\"content_type\":\"image/png\",\"value_base64\":\"iVBORw0KGgo=\"}");
}

static void
test_resume (Fixture       *fixture,
             gconstpointer  user_data)
{
  const char * const args[] = { "--watch-history=5", NULL };
  const char * const from_2[] = { "Last-Event-ID: 2", NULL };
  const char * const json[] = { "Accept", "application/json", NULL };
  g_autoptr(Curl) first = NULL;
  g_autoptr(Curl) again = NULL;
  g_autoptr(Curl) since = NULL;
  g_autoptr(KvTestResponse) gone = NULL;
  g_autoptr(KvTestResponse) gone_json = NULL;
  g_autoptr(KvTestResponse) ahead = NULL;
  g_autoptr(KvTestResponse) bad = NULL;
  g_autoptr(KvTestResponse) deleted = NULL;

  g_test_summary ("A stream resumed with Last-Event-ID (or since=) after a disconnect gets "
                  "exactly the changes it missed, then the new ones; a revision older than the "
                  "history is 410 with KV-Oldest-Revision, in text or JSON");

  fixture_start (fixture, args);
  first = curl_watch (fixture, "/watch", NULL);
  curl_assert_next (first, "id: 0");
  put (fixture, "/kv/a", "1");                          /* 1 */
  put (fixture, "/kv/b", "2");                          /* 2 */
  curl_assert_next (first, "event: put\nid: 1\ndata: {\"key\":\"a\",\"revision\":1,\"size\":1}");
  curl_assert_next (first, "event: put\nid: 2\ndata: {\"key\":\"b\",\"revision\":2,\"size\":1}");
  g_clear_pointer (&first, curl_free);

  put (fixture, "/kv/c", "3");                          /* 3 */
  deleted = request (fixture, "DELETE", "/kv/a", NULL, NULL);  /* 4 */

  again = curl_watch (fixture, "/watch", from_2);
  curl_assert_next (again, "id: 2");
  curl_assert_next (again, "event: put\nid: 3\ndata: {\"key\":\"c\",\"revision\":3,\"size\":1}");
  curl_assert_next (again, "event: delete\nid: 4\ndata: {\"key\":\"a\",\"revision\":4}");
  put (fixture, "/kv/d", "4");                          /* 5 */
  curl_assert_next (again, "event: put\nid: 5\ndata: {\"key\":\"d\",\"revision\":5,\"size\":1}");

  /* Last-Event-ID, when there is one, wins over since. */
  since = curl_watch (fixture, "/watch?since=0&prefix=d", (const char * const[]) {
                        "Last-Event-ID: 4", NULL });
  curl_assert_next (since, "id: 4");
  curl_assert_next (since, "event: put\nid: 5\ndata: {\"key\":\"d\",\"revision\":5,\"size\":1}");

  /* Five changes kept: 6 to 10, after 5. */
  for (guint i = 0; i < 5; i++)
    put (fixture, "/kv/e", "5");
  gone = request (fixture, "GET", "/watch?since=2", NULL, NULL);
  g_assert_cmpuint (gone->status, ==, 410);
  g_assert_cmpstr (kv_test_response_header (gone, "KV-Oldest-Revision"), ==, "5");
  g_assert_cmpstr (kv_test_response_header (gone, "KV-Revision"), ==, "10");
  kv_test_assert_response (gone, 410, "revision compacted\n");
  gone_json = request (fixture, "GET", "/watch", (const char * const[]) {
                         "Last-Event-ID", "4", "Accept", "application/json", NULL }, NULL);
  kv_test_assert_response (gone_json, 410,
                           "{\"error\":\"revision compacted\",\"status\":410,"
                           "\"oldest_revision\":5}\n");
  g_assert_cmpstr (kv_test_response_header (gone_json, "Content-Type"), ==, "application/json");
  ahead = request (fixture, "GET", "/watch?since=11", json, NULL);
  kv_test_assert_response (ahead, 410,
                           "{\"error\":\"revision ahead of the store\",\"status\":410,"
                           "\"oldest_revision\":5}\n");
  bad = request (fixture, "GET", "/watch?since=-1", NULL, NULL);
  kv_test_assert_response (bad, 400, "invalid since\n");
  g_clear_pointer (&bad, kv_test_response_free);
  bad = request (fixture, "GET", "/watch", (const char * const[]) { "Last-Event-ID", "x", NULL },
                 NULL);
  kv_test_assert_response (bad, 400, "invalid Last-Event-ID\n");
  g_clear_pointer (&bad, kv_test_response_free);
  bad = request (fixture, "GET", "/watch?key=a&prefix=b", NULL, NULL);
  kv_test_assert_response (bad, 400, "key and prefix together\n");
  g_clear_pointer (&bad, kv_test_response_free);
  bad = request (fixture, "GET", "/watch?values=yes", NULL, NULL);
  kv_test_assert_response (bad, 400, "invalid values\n");
  g_clear_pointer (&bad, kv_test_response_free);
  bad = request (fixture, "POST", "/watch", NULL, "x");
  kv_test_assert_response (bad, 405, "method not allowed\n");
  g_assert_cmpstr (kv_test_response_header (bad, "Allow"), ==, "GET, HEAD");
}

static void
test_long_poll (Fixture       *fixture,
                gconstpointer  user_data)
{
  const char * const args[] = { "--max-wait=10", NULL };
  const char * const waits[] = { "If-None-Match: \"1\"", "Prefer: wait=300", NULL };
  g_autoptr(GSubprocess) waiting = NULL;
  g_autofree char *out = NULL;
  g_autofree char *applied = NULL;
  g_autofree char *etag = NULL;
  g_autoptr(KvTestResponse) deleted = NULL;

  g_test_summary ("GET /kv/{key} with If-None-Match and Prefer: wait=N waits until that key "
                  "changes (200 with the new value, 404 once it is deleted) and no other, or "
                  "N seconds (304), at most max-wait, with Preference-Applied");

  fixture_start (fixture, args);
  put (fixture, "/kv/k", "v1");                          /* 1 */

  /* A tag that does not match is answered at once. */
  out = curl_run (fixture, "/kv/k", (const char * const[]) {
                    "If-None-Match: \"7\"", "Prefer: wait=300", NULL }, NULL);
  g_assert_cmpuint (curl_status (out), ==, 200);
  g_assert_cmpstr (curl_body (out), ==, "v1");
  applied = curl_header (out, "Preference-Applied");
  g_assert_null (applied);
  g_clear_pointer (&out, g_free);

  curl_run (fixture, "/kv/k", waits, &waiting);
  wait_for_stat (fixture, "watchers", 1);
  put (fixture, "/kv/other", "x");                       /* 2: not k */
  g_assert_cmpint (get_stat (fixture, "watchers"), ==, 1);
  put (fixture, "/kv/k", "v2");                          /* 3 */
  out = curl_finish (waiting);
  g_assert_cmpuint (curl_status (out), ==, 200);
  g_assert_cmpstr (curl_body (out), ==, "v2");
  etag = curl_header (out, "ETag");
  g_assert_cmpstr (etag, ==, "\"3\"");
  applied = curl_header (out, "Preference-Applied");
  g_assert_cmpstr (applied, ==, "wait=10");
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&applied, g_free);
  g_clear_object (&waiting);

  /* Nothing changes: 304 once the wait is over. */
  out = curl_run (fixture, "/kv/k", (const char * const[]) {
                    "If-None-Match: \"3\"", "Prefer: wait=1", NULL }, NULL);
  g_assert_cmpuint (curl_status (out), ==, 304);
  applied = curl_header (out, "Preference-Applied");
  g_assert_cmpstr (applied, ==, "wait=1");
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&applied, g_free);

  /* Deleted meanwhile: 404. */
  curl_run (fixture, "/kv/k", (const char * const[]) {
              "If-None-Match: \"3\"", "Prefer: wait=300", NULL }, &waiting);
  wait_for_stat (fixture, "watchers", 1);
  deleted = request (fixture, "DELETE", "/kv/k", NULL, NULL);
  out = curl_finish (waiting);
  g_assert_cmpuint (curl_status (out), ==, 404);
  g_assert_cmpstr (curl_body (out), ==, "key not found\n");
  applied = curl_header (out, "Preference-Applied");
  g_assert_cmpstr (applied, ==, "wait=10");

  g_assert_cmpint (get_stat (fixture, "long_polls"), ==, 3);
  wait_for_stat (fixture, "watchers", 0);
}

static void
test_max_watchers (Fixture       *fixture,
                   gconstpointer  user_data)
{
  const char * const args[] = { "--max-watchers=2", NULL };
  g_autoptr(KvSseClient) first = NULL;
  g_autoptr(KvSseClient) second = NULL;
  g_autoptr(KvSseClient) third = NULL;
  g_autoptr(KvSseBlock) block = NULL;
  g_autoptr(KvTestResponse) refused = NULL;
  g_autoptr(KvTestResponse) poll = NULL;
  guint16 port;

  g_test_summary ("Beyond max-watchers, a new watch or long-polling read is 503 with "
                  "Retry-After; a client that goes away gives its place back");

  fixture_start (fixture, args);
  port = kv_test_daemon_get_port (fixture->daemon);
  put (fixture, "/kv/k", "v");
  first = kv_sse_client_new (port, "/watch", NULL);
  second = kv_sse_client_new (port, "/watch?key=k", NULL);
  block = kv_sse_client_next (first, READ_TIMEOUT_MS);
  g_assert_cmpstr (block->id, ==, "1");
  g_clear_pointer (&block, kv_sse_block_free);
  block = kv_sse_client_next (second, READ_TIMEOUT_MS);
  g_assert_cmpstr (block->id, ==, "1");
  g_clear_pointer (&block, kv_sse_block_free);

  refused = request (fixture, "GET", "/watch", NULL, NULL);
  kv_test_assert_response (refused, 503, "too many watchers\n");
  g_assert_cmpstr (kv_test_response_header (refused, "Retry-After"), ==, "1");
  poll = request (fixture, "GET", "/kv/k", (const char * const[]) {
                    "If-None-Match", "\"1\"", "Prefer", "wait=60", NULL }, NULL);
  kv_test_assert_response (poll, 503, "too many watchers\n");

  g_clear_pointer (&first, kv_sse_client_free);
  wait_for_stat (fixture, "watchers", 1);
  third = kv_sse_client_new (port, "/watch", NULL);
  block = kv_sse_client_next (third, READ_TIMEOUT_MS);
  g_assert_cmpuint (kv_sse_client_get_status (third), ==, 200);
  g_assert_cmpstr (block->id, ==, "1");
}

static void
test_heartbeat (Fixture       *fixture,
                gconstpointer  user_data)
{
  const char * const args[] = { "--watch-heartbeat=1", "--idle-timeout=1",
                                "--request-timeout=1", NULL };
  g_autoptr(KvSseClient) client = NULL;
  g_autoptr(KvSseBlock) block = NULL;

  g_test_summary ("An idle stream gets a comment after watch-heartbeat seconds, and outlives "
                  "the request and idle timeouts");

  fixture_start (fixture, args);
  client = kv_sse_client_new (kv_test_daemon_get_port (fixture->daemon), "/watch", NULL);
  block = kv_sse_client_next (client, READ_TIMEOUT_MS);
  g_assert_cmpstr (block->id, ==, "0");
  g_clear_pointer (&block, kv_sse_block_free);
  for (guint i = 0; i < 3; i++)
    {
      block = kv_sse_client_next (client, READ_TIMEOUT_MS);
      g_assert_nonnull (block);
      g_assert_cmpstr (block->comment, ==, "heartbeat");
      g_assert_null (block->event);
      g_clear_pointer (&block, kv_sse_block_free);
    }
  /* Past both timeouts, the stream still delivers. */
  put (fixture, "/kv/k", "v");
  do
    {
      g_clear_pointer (&block, kv_sse_block_free);
      block = kv_sse_client_next (client, READ_TIMEOUT_MS);
      g_assert_nonnull (block);
    }
  while (block->comment != NULL);
  g_assert_cmpstr (block->event, ==, "put");
  g_assert_cmpstr (block->id, ==, "1");
}

#define SLOW_READERS 20
#define SLOW_WRITES 300
#define SLOW_VALUE (64 * 1024)

static void
test_overflow (Fixture       *fixture,
               gconstpointer  user_data)
{
  const char * const args[] = { "--watch-buffer=65536", "--watch-history-size=1048576", NULL };
  KvSseClient *readers[SLOW_READERS];
  g_autofree char *value = g_strnfill (SLOW_VALUE, 'v');
  guint64 before, after;
  guint16 port;

  g_test_summary ("Clients that do not read end with an overflow event whose id is the last "
                  "revision they were sent whole, the events before it complete; the server "
                  "holds a bounded amount for them meanwhile");

  fixture_start (fixture, args);
  port = kv_test_daemon_get_port (fixture->daemon);
  /* What the kernel holds for them, a few MB each, is not the server's. */
  for (guint i = 0; i < SLOW_READERS; i++)
    readers[i] = kv_sse_client_new (port, "/watch?values=1", NULL);
  wait_for_stat (fixture, "watches", SLOW_READERS);
  before = daemon_rss_kb (fixture);

  /* 19 MB of events for each reader, none read. */
  for (guint i = 0; i < SLOW_WRITES; i++)
    {
      g_autofree char *path = g_strdup_printf ("/kv/k%u", i % 10);

      put (fixture, path, value);
    }
  after = daemon_rss_kb (fixture);
  g_test_message ("RSS %" G_GUINT64_FORMAT " kB before, %" G_GUINT64_FORMAT " kB after %u MB "
                  "of events for each of %u readers", before, after,
                  SLOW_WRITES * SLOW_VALUE / (1024 * 1024), SLOW_READERS);
  /* Each holds about two buffers at most, and a value in flight; all of
   * it would be 380 MB. */
  if (MEASURES_MEMORY)
    g_assert_cmpuint (after, <, before + 64 * 1024);
  g_assert_cmpint (get_stat (fixture, "watch_overflows"), ==, SLOW_READERS);

  for (guint i = 0; i < SLOW_READERS; i++)
    {
      guint64 last_id = 0;
      KvSseBlock *block;
      gboolean overflowed = FALSE;

      while ((block = kv_sse_client_next (readers[i], READ_TIMEOUT_MS)) != NULL)
        {
          g_assert_false (overflowed);
          g_assert_nonnull (block->id);
          if (g_strcmp0 (block->event, "overflow") == 0)
            {
              g_autofree char *data = g_strdup_printf ("{\"revision\":%" G_GUINT64_FORMAT "}",
                                                       last_id);

              g_assert_cmpuint (g_ascii_strtoull (block->id, NULL, 10), ==, last_id);
              g_assert_cmpstr (block->data, ==, data);
              overflowed = TRUE;
            }
          else if (block->event != NULL)
            {
              /* Every change, whole, from the first on. */
              g_assert_cmpuint (g_ascii_strtoull (block->id, NULL, 10), ==, last_id + 1);
              g_assert_true (g_str_has_suffix (block->data, "vvvv\"}"));
              last_id++;
            }
          kv_sse_block_free (block);
        }
      g_assert_true (overflowed);
      g_assert_true (kv_sse_client_has_ended (readers[i]));
      g_assert_cmpuint (last_id, <, SLOW_WRITES);
      kv_sse_client_free (readers[i]);
    }
}

#define FAN_WATCHERS 1000
#define FAN_PREFIXES 10
#define FAN_WRITES 10000

typedef struct
{
  guint16 port;
  guint round;
} Writer;

static gpointer
fan_writer (gpointer data)
{
  Writer *writer = data;
  g_autoptr(SoupSession) session = kv_test_session_new ();

  for (guint i = 0; i < FAN_WRITES; i++)
    {
      g_autofree char *target = g_strdup_printf ("http://127.0.0.1:%u/kv/p%u/k%u", writer->port,
                                                 i % FAN_PREFIXES, i);
      g_autofree char *text = g_strdup_printf ("%u.%u", writer->round, i);
      g_autoptr(GBytes) value = g_bytes_new (text, strlen (text));
      g_autoptr(KvTestResponse) response = kv_test_request (session, "PUT", target, NULL, value);

      g_assert_cmpuint (response->status, ==, 200);
    }
  return NULL;
}

typedef struct
{
  KvSseClient *client;
  guint prefix;
  guint64 next;                 /* the revision of the next event expected */
  guint received;
} FanWatcher;

/* 1,000 watchers of ten prefixes, 10,000 writes: each must get the 1,000
 * of its prefix, in order, whole. */
static void
fan_round (Fixture *fixture,
           guint    round,
           guint64  start,
           guint64 *with_watchers)
{
  guint16 port = kv_test_daemon_get_port (fixture->daemon);
  g_autofree FanWatcher *watchers = g_new0 (FanWatcher, FAN_WATCHERS);
  g_autofree GPollFD *fds = g_new0 (GPollFD, FAN_WATCHERS);
  Writer writer = { port, round };
  GThread *thread;
  guint done = 0;
  gint64 deadline;

  for (guint i = 0; i < FAN_WATCHERS; i++)
    {
      g_autofree char *target = g_strdup_printf ("/watch?prefix=p%u/", i % FAN_PREFIXES);

      watchers[i].client = kv_sse_client_new (port, target, NULL);
      watchers[i].prefix = i % FAN_PREFIXES;
      /* Revision start + 1 + j is write j, of prefix j % 10. */
      watchers[i].next = start + 1 + watchers[i].prefix;
      fds[i].fd = g_socket_get_fd (kv_sse_client_get_socket (watchers[i].client));
      fds[i].events = G_IO_IN;
    }
  wait_for_stat (fixture, "watchers", FAN_WATCHERS);

  thread = g_thread_new ("writer", fan_writer, &writer);
  /* Only against a hang: a sanitized daemon takes minutes. */
  deadline = g_get_monotonic_time () + 600 * G_USEC_PER_SEC;
  while (done < FAN_WATCHERS)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      /* Let events gather: a read per event would cost this side more
       * than the server's write. */
      g_usleep (2000);
      g_poll (fds, FAN_WATCHERS, 1000);
      for (guint i = 0; i < FAN_WATCHERS; i++)
        {
          FanWatcher *w = &watchers[i];
          KvSseBlock *block;

          if (!(fds[i].revents & G_IO_IN))
            continue;
          g_assert_true (kv_sse_client_feed (w->client));
          while ((block = kv_sse_client_pop (w->client)) != NULL)
            {
              if (block->event != NULL)
                {
                  guint64 write = w->next - start - 1;
                  g_autofree char *id = g_strdup_printf ("%" G_GUINT64_FORMAT, w->next);
                  g_autofree char *value = g_strdup_printf ("%u.%" G_GUINT64_FORMAT, round, write);
                  g_autofree char *data = g_strdup_printf (
                    "{\"key\":\"p%u/k%" G_GUINT64_FORMAT "\",\"revision\":%" G_GUINT64_FORMAT
                    ",\"size\":%" G_GSIZE_FORMAT "}", w->prefix, write, w->next, strlen (value));

                  g_assert_cmpstr (block->event, ==, "put");
                  g_assert_cmpstr (block->id, ==, id);
                  g_assert_cmpstr (block->data, ==, data);
                  w->next += FAN_PREFIXES;
                  if (++w->received == FAN_WRITES / FAN_PREFIXES)
                    done++;
                }
              kv_sse_block_free (block);
            }
        }
    }
  g_thread_join (thread);
  *with_watchers = daemon_rss_kb (fixture);

  for (guint i = 0; i < FAN_WATCHERS; i++)
    kv_sse_client_free (watchers[i].client);
  wait_for_stat (fixture, "watchers", 0);
  /* Ours, of /metrics. */
  wait_for_connections (fixture, 1);
}

static void
test_fan_out (Fixture       *fixture,
              gconstpointer  user_data)
{
  const char * const args[] = { "--threads=2", "--max-connections=1100", "--max-watchers=1000",
                                NULL };
  struct rlimit limit;
  guint64 before, during[2], after[2];

  g_test_summary ("1,000 watchers on two worker threads and 10,000 writes, twice: every watcher "
                  "gets every event of its prefix, in order; the daemon's resident memory grows "
                  "by a few KB a watcher, and comes back to the same level with the next 1,000");

  /* Both ends of 1,000 connections, here and in the daemon, which
   * inherits the limit. */
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  if (limit.rlim_max < FAN_WATCHERS + 200)
    {
      g_test_skip ("RLIMIT_NOFILE is too low for 1,000 connections");
      return;
    }
  limit.rlim_cur = limit.rlim_max;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);

  fixture_start (fixture, args);
  /* The store at its size, and its history holding the writes before
   * the last ones for a while. */
  fan_writer (&(Writer) { kv_test_daemon_get_port (fixture->daemon), 0 });
  fan_writer (&(Writer) { kv_test_daemon_get_port (fixture->daemon), 1 });
  before = daemon_rss_kb (fixture);
  fan_round (fixture, 2, 2 * FAN_WRITES, &during[0]);
  after[0] = daemon_rss_kb (fixture);
  /* Once is enough to check the events. */
  if (!MEASURES_MEMORY)
    return;
  fan_round (fixture, 3, 3 * FAN_WRITES, &during[1]);
  after[1] = daemon_rss_kb (fixture);
  g_test_message ("RSS %" G_GUINT64_FORMAT " kB before; %" G_GUINT64_FORMAT " kB with 1,000 "
                  "watchers, %" G_GUINT64_FORMAT " kB once they left; again %" G_GUINT64_FORMAT
                  " kB and %" G_GUINT64_FORMAT " kB", before, during[0], after[0], during[1],
                  after[1]);
  /* A watcher takes a few KB. What the writes made meanwhile lives on
   * among the pages the watchers had, so not all of them go back to the
   * system; but the next 1,000 find their memory again, and take no
   * more. */
  if (MEASURES_MEMORY)
    {
      g_assert_cmpuint (during[0], <, before + 16 * 1024);
      g_assert_cmpuint (during[1], <, during[0] + 2 * 1024);
      g_assert_cmpuint (after[1], <, after[0] + 2 * 1024);
    }
}

#define STOP_STREAMS 100

static void
test_sigterm (Fixture       *fixture,
              gconstpointer  user_data)
{
  const char * const args[] = { "--threads=2", "--shutdown-timeout=60", NULL };
  KvSseClient *streams[STOP_STREAMS];
  g_autoptr(KvSseClient) poll = NULL;
  g_autofree char *log = NULL;
  guint16 port;

  g_test_summary ("SIGTERM with 100 open streams and a long-polling read: each stream ends at "
                  "once with a shutdown event and a clean close, the read with 304, and the "
                  "daemon stops gracefully, without waiting for its shutdown timeout");

  fixture_start (fixture, args);
  port = kv_test_daemon_get_port (fixture->daemon);
  put (fixture, "/kv/k", "v");
  for (guint i = 0; i < STOP_STREAMS; i++)
    {
      g_autoptr(KvSseBlock) block = NULL;

      streams[i] = kv_sse_client_new (port, i % 2 ? "/watch" : "/watch?key=k", NULL);
      block = kv_sse_client_next (streams[i], READ_TIMEOUT_MS);
      g_assert_cmpstr (block->id, ==, "1");
    }
  poll = kv_sse_client_new (port, "/kv/k", (const char * const[]) {
                              "If-None-Match: \"1\"", "Prefer: wait=300", NULL });
  wait_for_stat (fixture, "watchers", STOP_STREAMS + 1);

  kv_test_daemon_signal (fixture->daemon, SIGTERM);
  for (guint i = 0; i < STOP_STREAMS; i++)
    {
      g_autoptr(KvSseBlock) block = kv_sse_client_next (streams[i], READ_TIMEOUT_MS);

      g_assert_nonnull (block);
      g_assert_cmpstr (block->event, ==, "shutdown");
      g_assert_cmpstr (block->id, ==, "1");
      g_assert_cmpstr (block->data, ==, "{\"revision\":1}");
      g_assert_null (kv_sse_client_next (streams[i], READ_TIMEOUT_MS));
      g_assert_true (kv_sse_client_has_ended (streams[i]));
      g_assert_true (kv_raw_wait_closed (kv_sse_client_get_socket (streams[i]), READ_TIMEOUT_MS));
      kv_sse_client_free (streams[i]);
    }
  /* Read to the close. */
  g_assert_null (kv_sse_client_next (poll, READ_TIMEOUT_MS));
  g_assert_true (kv_sse_client_is_closed (poll));
  g_assert_cmpuint (kv_sse_client_get_status (poll), ==, 304);

  g_assert_cmpint (kv_test_daemon_wait (fixture->daemon), ==, 0);
  log = kv_test_daemon_dup_log (fixture->daemon);
  g_assert_nonnull (strstr (log, "Stopped gracefully after SIGTERM"));
  kv_test_daemon_free (g_steal_pointer (&fixture->daemon));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) \
  g_test_add ("/watch/" path, Fixture, NULL, NULL, func, fixture_teardown)
  ADD ("events", test_events);
  ADD ("values", test_values);
  ADD ("resume", test_resume);
  ADD ("long-poll", test_long_poll);
  ADD ("max-watchers", test_max_watchers);
  ADD ("heartbeat", test_heartbeat);
  ADD ("overflow", test_overflow);
  ADD ("fan-out", test_fan_out);
  ADD ("sigterm", test_sigterm);
#undef ADD

  return g_test_run ();
}
