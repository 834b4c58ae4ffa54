/* test-api.c: HTTP API v1 against a real SoupServer on port 0
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "storage/kv-map-storage.h"
#include "kv-test-raw.h"
#include "kv-test-utils.h"

/* Small limits, so that the edges are cheap to reach. */
#define MAX_VALUE_SIZE (2 * 1024 * 1024)
#define MAX_KEY_SIZE 64

typedef KvTestFixture Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(KvConfig) config = kv_config_new ();

  g_object_set (config,
                "max-value-size", (guint64) MAX_VALUE_SIZE,
                "max-key-size", (guint) MAX_KEY_SIZE,
                NULL);
  kv_test_fixture_setup (fixture, config);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  kv_test_fixture_teardown (fixture);
}

static void
put_ok (Fixture    *fixture,
        const char *path,
        const char *body)
{
  g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, "PUT", path, body);

  kv_test_assert_response (r, 200, "");
}

static guint64
etag_revision (KvTestResponse *r)
{
  const char *etag = kv_test_response_header (r, "ETag");
  g_autofree char *digits = NULL;
  guint64 revision;

  g_assert_nonnull (etag);
  g_assert_true (g_str_has_prefix (etag, "\"") && g_str_has_suffix (etag, "\""));
  digits = g_strndup (etag + 1, strlen (etag) - 2);
  g_assert_true (g_ascii_string_to_unsigned (digits, 10, 1, G_MAXUINT64, &revision, NULL));
  return revision;
}

static JsonNode *
parse_json (KvTestResponse *r)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (r->body, &len);

  g_assert_cmpstr (soup_message_headers_get_content_type (r->headers, NULL), ==, "application/json");
  json_parser_load_from_data (parser, data, len, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

/* Values and keys */

static void
test_binary_round_trip (Fixture       *fixture,
                        gconstpointer  user_data)
{
  const char *headers[] = { "Content-Type", "application/octet-stream", NULL };
  g_autoptr(GBytes) value = NULL;
  g_autoptr(KvTestResponse) put = NULL;
  g_autoptr(KvTestResponse) get = NULL;
  guint8 *data = g_malloc (1024 * 1024);

  g_test_summary ("A 1 MiB random binary value round-trips bit-exactly");

  for (gsize i = 0; i < 1024 * 1024; i += 4)
    *(guint32 *) (data + i) = g_test_rand_int ();
  value = g_bytes_new_take (data, 1024 * 1024);

  put = kv_test_fixture_request_full (fixture, "PUT", "/kv/blob", headers, value);
  kv_test_assert_response (put, 200, "");
  get = kv_test_fixture_request (fixture, "GET", "/kv/blob", NULL);
  g_assert_cmpuint (get->status, ==, 200);
  g_assert_true (g_bytes_equal (get->body, value));
  g_assert_cmpstr (kv_test_response_header (get, "Content-Type"), ==, "application/octet-stream");
}

static void
test_value_too_large (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autoptr(GBytes) big = g_bytes_new_take (g_malloc0 (MAX_VALUE_SIZE + 1), MAX_VALUE_SIZE + 1);
  g_autoptr(GBytes) max = g_bytes_new_take (g_malloc0 (MAX_VALUE_SIZE), MAX_VALUE_SIZE);
  g_autoptr(KvTestResponse) refused = NULL;
  g_autoptr(KvTestResponse) get = NULL;
  g_autoptr(KvTestResponse) accepted = NULL;

  g_test_summary ("A value over --max-value-size is refused with 413 and not stored");

  refused = kv_test_fixture_request_full (fixture, "PUT", "/kv/big", NULL, big);
  kv_test_assert_response (refused, 413, "value too large\n");
  get = kv_test_fixture_request (fixture, "GET", "/kv/big", NULL);
  kv_test_assert_response (get, 404, "key not found\n");
  accepted = kv_test_fixture_request_full (fixture, "PUT", "/kv/big", NULL, max);
  kv_test_assert_response (accepted, 200, "");
}

static void
test_value_too_large_early (Fixture       *fixture,
                            gconstpointer  user_data)
{
  const char *expect[] = { "Expect: 100-continue\r\n", "" };

  g_test_summary ("A Content-Length over the limit is refused before the body is read: a "
                  "client that announces 1 GB and sends nothing gets 413, with or without "
                  "Expect: 100-continue, and never 100 Continue");

  for (gsize i = 0; i < G_N_ELEMENTS (expect); i++)
    {
      g_autofree char *request = g_strdup_printf ("PUT /kv/big HTTP/1.1\r\n"
                                                  "Host: 127.0.0.1\r\n"
                                                  "Content-Length: 1000000000\r\n"
                                                  "%s\r\n", expect[i]);
      g_autoptr(KvRawResponse) answer = NULL;

      g_test_message ("with%s Expect", i == 0 ? "" : "out");
      /* The first status line read is the answer: a 100 would fail here. */
      answer = kv_raw_request (kv_test_server_get_port (fixture->server), request);
      g_assert_cmpuint (answer->status, ==, 413);
      g_assert_cmpstr (kv_raw_response_header (answer, "connection"), ==, "close");
      g_assert_true (kv_raw_response_body_is (answer, "value too large\n"));
    }
}

static void
test_encoded_slash (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) plain = NULL;
  g_autoptr(KvTestResponse) encoded = NULL;
  g_autoptr(KvTestResponse) percent = NULL;
  g_autoptr(KvTestResponse) list = NULL;

  g_test_summary ("The key is the path after /kv/, percent-decoded once: a%2Fb and a/b "
                  "both name the key “a/b”, a%252Fb names “a%2Fb”, and dot segments that "
                  "libsoup would refuse are ordinary keys");

  put_ok (fixture, "/kv/a%2Fb", "encoded");
  plain = kv_test_fixture_request (fixture, "GET", "/kv/a/b", NULL);
  kv_test_assert_response (plain, 200, "encoded");

  put_ok (fixture, "/kv/a%252Fb", "percent");
  encoded = kv_test_fixture_request (fixture, "GET", "/kv/a%2Fb", NULL);
  kv_test_assert_response (encoded, 200, "encoded");
  percent = kv_test_fixture_request (fixture, "GET", "/kv/a%252Fb", NULL);
  kv_test_assert_response (percent, 200, "percent");

  put_ok (fixture, "/kv/x%2F..%2Fy", "dots");
  list = kv_test_fixture_request (fixture, "GET", "/keys", NULL);
  kv_test_assert_response (list, 200, "a%2Fb\na/b\nx/../y\n");
}

static void
test_invalid_keys (Fixture       *fixture,
                   gconstpointer  user_data)
{
  const char *invalid[] = {
    "/kv/%FF", "/kv/a%C3", "/kv/%00", "/kv/a%01b", "/kv/%7F", "/kv/%C2%85",
  };
  /* Escapes that no URI parser lets a client send: raw bytes, then. */
  const char *malformed[] = { "/kv/%ZZ", "/kv/%", "/kv/a%2", "/kv/%0" };
  g_autofree char *long_key = g_strnfill (MAX_KEY_SIZE + 1, 'k');
  g_autofree char *max_key = g_strnfill (MAX_KEY_SIZE, 'k');
  g_autofree char *long_path = g_strconcat ("/kv/", long_key, NULL);
  g_autofree char *max_path = g_strconcat ("/kv/", max_key, NULL);
  g_autoptr(KvTestResponse) too_long = NULL;
  g_autoptr(KvTestResponse) too_long_encoded = NULL;
  g_autoptr(KvTestResponse) keys = NULL;

  g_test_summary ("Keys that are not UTF-8, hold control characters or bad escapes are 400 "
                  "“invalid key”; keys over --max-key-size are 414 “key too long”");

  for (gsize i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, "PUT", invalid[i], "x");

      g_test_message ("PUT %s", invalid[i]);
      kv_test_assert_response (r, 400, "invalid key\n");
    }

  for (gsize i = 0; i < G_N_ELEMENTS (malformed); i++)
    {
      g_autofree char *raw = g_strdup_printf ("PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                              "Content-Length: 1\r\nConnection: close\r\n\r\nx",
                                              malformed[i]);
      g_autoptr(KvRawResponse) answer = NULL;

      /* libsoup's request-line parser refuses these itself, before any
       * handler runs, with an empty 400. */
      g_test_message ("PUT %s", malformed[i]);
      answer = kv_raw_request (kv_test_server_get_port (fixture->server), raw);
      g_assert_cmpuint (answer->status, ==, 400);
    }

  too_long = kv_test_fixture_request (fixture, "PUT", long_path, "x");
  kv_test_assert_response (too_long, 414, "key too long\n");
  /* The limit counts decoded bytes: 64 × "é" is 128 bytes. */
  {
    g_autoptr(GString) path = g_string_new ("/kv/");
    for (guint i = 0; i < MAX_KEY_SIZE / 2 + 1; i++)
      g_string_append (path, "%C3%A9");
    too_long_encoded = kv_test_fixture_request (fixture, "GET", path->str, NULL);
    kv_test_assert_response (too_long_encoded, 414, "key too long\n");
  }
  put_ok (fixture, max_path, "x");
  put_ok (fixture, "/kv/caf%C3%A9%20au%20lait", "utf-8");

  keys = kv_test_fixture_request (fixture, "GET", "/keys", NULL);
  g_assert_cmpuint (keys->status, ==, 200);
  g_assert_nonnull (strstr (g_bytes_get_data (keys->body, NULL), "café au lait\n"));
}

static void
test_content_type (Fixture       *fixture,
                   gconstpointer  user_data)
{
  const char *png[] = { "Content-Type", "image/png", NULL };
  const char *bad[] = { "Content-Type", "text/plain\x01", NULL };
  static const guint8 binary[] = { 0x89, 'P', 'N', 'G', 0, 0xff };
  g_autoptr(GBytes) png_bytes = g_bytes_new_static (binary, sizeof binary);
  g_autoptr(KvTestResponse) typed = NULL;
  g_autoptr(KvTestResponse) head = NULL;
  g_autoptr(KvTestResponse) form = NULL;
  g_autoptr(KvTestResponse) untyped_binary = NULL;
  g_autoptr(KvTestResponse) refused = NULL;

  g_test_summary ("PUT keeps its Content-Type unless it is curl -d's form type; untyped "
                  "values are text/plain when UTF-8 and application/octet-stream otherwise");

  g_clear_pointer (&typed, kv_test_response_free);
  typed = kv_test_fixture_request_full (fixture, "PUT", "/kv/logo", png, png_bytes);
  kv_test_assert_response (typed, 200, "");
  g_clear_pointer (&typed, kv_test_response_free);
  typed = kv_test_fixture_request (fixture, "GET", "/kv/logo", NULL);
  g_assert_cmpstr (kv_test_response_header (typed, "Content-Type"), ==, "image/png");
  g_assert_cmpstr (kv_test_response_header (typed, "X-Content-Type-Options"), ==, "nosniff");

  head = kv_test_fixture_request (fixture, "HEAD", "/kv/logo", NULL);
  kv_test_assert_response (head, 200, "");
  g_assert_cmpstr (kv_test_response_header (head, "Content-Type"), ==, "image/png");
  g_assert_cmpint (soup_message_headers_get_content_length (head->headers), ==, sizeof binary);
  g_assert_cmpstr (kv_test_response_header (head, "ETag"), ==,
                   kv_test_response_header (typed, "ETag"));

  put_ok (fixture, "/kv/text", "Nairobi");
  form = kv_test_fixture_request (fixture, "GET", "/kv/text", NULL);
  g_assert_cmpstr (kv_test_response_header (form, "Content-Type"), ==, "text/plain; charset=utf-8");

  {
    g_autoptr(KvTestResponse) put = kv_test_fixture_request_full (fixture, "PUT", "/kv/bin", NULL, png_bytes);
    kv_test_assert_response (put, 200, "");
  }
  untyped_binary = kv_test_fixture_request (fixture, "GET", "/kv/bin", NULL);
  g_assert_cmpstr (kv_test_response_header (untyped_binary, "Content-Type"), ==,
                   "application/octet-stream");

  refused = kv_test_fixture_request_full (fixture, "PUT", "/kv/bad", bad, png_bytes);
  kv_test_assert_response (refused, 400, "invalid content type\n");
}

/* Revisions and preconditions */

static void
test_etags (Fixture       *fixture,
            gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) put1 = NULL;
  g_autoptr(KvTestResponse) put2 = NULL;
  g_autoptr(KvTestResponse) other = NULL;
  g_autoptr(KvTestResponse) get = NULL;

  g_test_summary ("Every write takes the next revision; answers carry it as the ETag");

  put1 = kv_test_fixture_request (fixture, "PUT", "/kv/k", "one");
  put2 = kv_test_fixture_request (fixture, "PUT", "/kv/k", "two");
  other = kv_test_fixture_request (fixture, "PUT", "/kv/other", "x");
  g_assert_cmpuint (etag_revision (put2), ==, etag_revision (put1) + 1);
  g_assert_cmpuint (etag_revision (other), ==, etag_revision (put2) + 1);

  get = kv_test_fixture_request (fixture, "GET", "/kv/k", NULL);
  g_assert_cmpuint (etag_revision (get), ==, etag_revision (put2));
}

static void
test_if_match (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) put = NULL;
  g_autoptr(KvTestResponse) stale = NULL;
  g_autoptr(KvTestResponse) fresh = NULL;
  g_autoptr(KvTestResponse) listed = NULL;
  g_autoptr(KvTestResponse) get = NULL;
  g_autoptr(KvTestResponse) star_absent = NULL;
  g_autoptr(KvTestResponse) weak = NULL;
  g_autoptr(GBytes) body = g_bytes_new_static ("new", 3);
  g_autofree char *current = NULL;
  g_autofree char *list = NULL;

  g_test_summary ("If-Match: a stale revision gets 412 and changes nothing; the current "
                  "one, or a list holding it, succeeds; * needs the key to exist");

  put = kv_test_fixture_request (fixture, "PUT", "/kv/k", "old");
  current = g_strdup (kv_test_response_header (put, "ETag"));

  {
    const char *h[] = { "If-Match", "\"999\"", NULL };
    stale = kv_test_fixture_request_full (fixture, "PUT", "/kv/k", h, body);
    kv_test_assert_response (stale, 412, "precondition failed\n");
  }
  get = kv_test_fixture_request (fixture, "GET", "/kv/k", NULL);
  kv_test_assert_response (get, 200, "old");

  {
    /* A weak tag never matches If-Match, which compares strongly. */
    g_autofree char *weak_tag = g_strconcat ("W/", current, NULL);
    const char *h[] = { "If-Match", weak_tag, NULL };
    weak = kv_test_fixture_request_full (fixture, "PUT", "/kv/k", h, body);
    kv_test_assert_response (weak, 412, "precondition failed\n");
  }

  list = g_strdup_printf ("\"1000\", %s, \"abc\"", current);
  {
    const char *h[] = { "If-Match", list, NULL };
    listed = kv_test_fixture_request_full (fixture, "PUT", "/kv/k", h, body);
    kv_test_assert_response (listed, 200, "");
  }
  {
    const char *h[] = { "If-Match", current, NULL };
    fresh = kv_test_fixture_request_full (fixture, "DELETE", "/kv/k", h, NULL);
    kv_test_assert_response (fresh, 412, "precondition failed\n");
  }
  {
    const char *h[] = { "If-Match", "*", NULL };
    star_absent = kv_test_fixture_request_full (fixture, "PUT", "/kv/absent", h, body);
    kv_test_assert_response (star_absent, 412, "precondition failed\n");
  }
}

static void
test_if_none_match (Fixture       *fixture,
                    gconstpointer  user_data)
{
  const char *create_only[] = { "If-None-Match", "*", NULL };
  g_autoptr(GBytes) body = g_bytes_new_static ("v", 1);
  g_autoptr(KvTestResponse) created = NULL;
  g_autoptr(KvTestResponse) again = NULL;
  g_autoptr(KvTestResponse) not_modified = NULL;
  g_autoptr(KvTestResponse) modified = NULL;
  g_autoptr(KvTestResponse) bad = NULL;
  g_autofree char *etag = NULL;

  g_test_summary ("If-None-Match: * creates only; a GET whose tag matches gets 304, no body");

  created = kv_test_fixture_request_full (fixture, "PUT", "/kv/once", create_only, body);
  kv_test_assert_response (created, 200, "");
  again = kv_test_fixture_request_full (fixture, "PUT", "/kv/once", create_only, body);
  kv_test_assert_response (again, 412, "precondition failed\n");

  etag = g_strdup (kv_test_response_header (created, "ETag"));
  {
    const char *h[] = { "If-None-Match", etag, NULL };
    not_modified = kv_test_fixture_request_full (fixture, "GET", "/kv/once", h, NULL);
    kv_test_assert_response (not_modified, 304, "");
    g_assert_cmpstr (kv_test_response_header (not_modified, "ETag"), ==, etag);
  }
  /* A fresh store: this was its first write. */
  g_assert_cmpstr (etag, ==, "\"1\"");
  {
    const char *h[] = { "If-None-Match", "\"12345\", \"99\"", NULL };
    modified = kv_test_fixture_request_full (fixture, "GET", "/kv/once", h, NULL);
    kv_test_assert_response (modified, 200, "v");
  }
  {
    /* If-None-Match compares weakly: W/"1" names revision 1 too. */
    const char *h[] = { "If-None-Match", "\"7\", W/\"1\"", NULL };
    g_autoptr(KvTestResponse) weak = kv_test_fixture_request_full (fixture, "GET", "/kv/once", h, NULL);
    kv_test_assert_response (weak, 304, "");
  }
  {
    const char *h[] = { "If-Match", "not-a-tag", NULL };
    bad = kv_test_fixture_request_full (fixture, "PUT", "/kv/once", h, body);
    kv_test_assert_response (bad, 400, "invalid precondition\n");
  }
}

/* Lets both racers go at the same moment. */
typedef struct
{
  GMutex lock;
  GCond cond;
  guint waiting;
} Gate;

static void
gate_wait (Gate  *gate,
           guint  n)
{
  g_mutex_lock (&gate->lock);
  if (++gate->waiting == n)
    g_cond_broadcast (&gate->cond);
  while (gate->waiting < n)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
}

typedef struct
{
  Fixture *fixture;
  const char *etag;
  Gate *start;
  guint status;
} Racer;

static gpointer
racer_run (gpointer data)
{
  Racer *racer = data;
  g_autoptr(SoupSession) session = kv_test_session_new ();
  g_autofree char *uri = kv_test_server_uri (racer->fixture->server, "/kv/contended");
  g_autoptr(GBytes) body = g_bytes_new_static ("mine", 4);
  const char *h[] = { "If-Match", racer->etag, NULL };
  g_autoptr(KvTestResponse) r = NULL;

  gate_wait (racer->start, 2);
  r = kv_test_request (session, "PUT", uri, h, body);
  racer->status = r->status;

  return NULL;
}

static void
test_if_match_race (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_test_summary ("Two clients PUT with the same If-Match at once: exactly one wins");

  for (guint round = 0; round < 50; round++)
    {
      g_autoptr(KvTestResponse) put = kv_test_fixture_request (fixture, "PUT", "/kv/contended", "base");
      g_autofree char *etag = g_strdup (kv_test_response_header (put, "ETag"));
      Gate start;
      Racer racers[2] = { { fixture, etag, &start, 0 }, { fixture, etag, &start, 0 } };
      GThread *threads[2];

      g_mutex_init (&start.lock);
      g_cond_init (&start.cond);
      start.waiting = 0;

      for (guint i = 0; i < 2; i++)
        threads[i] = g_thread_new ("racer", racer_run, &racers[i]);
      for (guint i = 0; i < 2; i++)
        g_thread_join (threads[i]);
      g_mutex_clear (&start.lock);
      g_cond_clear (&start.cond);

      g_assert_true ((racers[0].status == 200 && racers[1].status == 412) ||
                     (racers[0].status == 412 && racers[1].status == 200));
    }
}

/* Expiry */

static guint64
stats_member (Fixture    *fixture,
              const char *name)
{
  g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, "GET", "/stats", NULL);
  g_autoptr(JsonNode) root = parse_json (r);

  return json_object_get_int_member (json_node_get_object (root), name);
}

static void
test_ttl_expiry (Fixture       *fixture,
                 gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) put = NULL;
  g_autoptr(KvTestResponse) get = NULL;
  g_autoptr(KvTestResponse) gone = NULL;
  g_autoptr(GDateTime) expires = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr(GTimeZone) utc = g_time_zone_new_utc ();
  const char *stamp;
  gint64 deadline;

  g_test_summary ("An entry with ?ttl= is gone when it expires, shows KV-Expires-At until "
                  "then, and the sweep reclaims it (/stats keys drops)");

  put = kv_test_fixture_request (fixture, "PUT", "/kv/session?ttl=300ms", "token");
  kv_test_assert_response (put, 200, "");
  g_assert_cmpuint (stats_member (fixture, "keys"), ==, 1);

  get = kv_test_fixture_request (fixture, "GET", "/kv/session", NULL);
  kv_test_assert_response (get, 200, "token");
  stamp = kv_test_response_header (get, "KV-Expires-At");
  g_assert_nonnull (stamp);
  g_assert_true (g_str_has_suffix (stamp, "Z"));
  g_assert_cmpuint (strlen (stamp), ==, strlen ("2026-01-01T00:00:00.000Z"));
  expires = g_date_time_new_from_iso8601 (stamp, utc);
  g_assert_nonnull (expires);
  g_assert_cmpint (g_date_time_difference (expires, now), >, 0);
  g_assert_cmpint (g_date_time_difference (expires, now), <=, 2 * G_USEC_PER_SEC);

  /* Wait for the expiry and then for the sweep, bounded. */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (stats_member (fixture, "keys") != 0 && g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  g_assert_cmpuint (stats_member (fixture, "keys"), ==, 0);
  g_assert_cmpuint (stats_member (fixture, "expired"), ==, 1);
  g_assert_cmpuint (stats_member (fixture, "value_bytes"), ==, 0);

  gone = kv_test_fixture_request (fixture, "GET", "/kv/session", NULL);
  kv_test_assert_response (gone, 404, "key not found\n");
}

static void
test_ttl_options (Fixture       *fixture,
                  gconstpointer  user_data)
{
  const char *bad[] = { "", "0", "-5", "1.5s", "10d", "abc", "5 s", "99999999999999999999" };
  const char *good[] = { "30", "30s", "1500ms", "5m", "2h" };
  g_autoptr(KvTestResponse) first = NULL;
  g_autoptr(KvTestResponse) kept = NULL;
  g_autoptr(KvTestResponse) cleared = NULL;
  g_autoptr(KvTestResponse) both = NULL;
  g_autofree char *stamp = NULL;

  g_test_summary ("ttl takes seconds or ms/s/m/h; a bad ttl is 400; a PUT without ttl "
                  "clears it and ?keepttl keeps it");

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *path = g_strdup_printf ("/kv/t?ttl=%s", bad[i]);
      g_autofree char *escaped = g_uri_escape_string (path, "/?=", FALSE);
      g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, "PUT", escaped, "v");

      g_test_message ("ttl=%s", bad[i]);
      kv_test_assert_response (r, 400, "invalid ttl\n");
    }
  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *path = g_strdup_printf ("/kv/t?ttl=%s", good[i]);
      put_ok (fixture, path, "v");
    }

  put_ok (fixture, "/kv/t?ttl=1h", "v1");
  first = kv_test_fixture_request (fixture, "GET", "/kv/t", NULL);
  stamp = g_strdup (kv_test_response_header (first, "KV-Expires-At"));
  g_assert_nonnull (stamp);

  put_ok (fixture, "/kv/t?keepttl", "v2");
  kept = kv_test_fixture_request (fixture, "GET", "/kv/t", NULL);
  kv_test_assert_response (kept, 200, "v2");
  g_assert_cmpstr (kv_test_response_header (kept, "KV-Expires-At"), ==, stamp);

  put_ok (fixture, "/kv/t", "v3");
  cleared = kv_test_fixture_request (fixture, "GET", "/kv/t", NULL);
  kv_test_assert_response (cleared, 200, "v3");
  g_assert_null (kv_test_response_header (cleared, "KV-Expires-At"));

  both = kv_test_fixture_request (fixture, "PUT", "/kv/t?ttl=5s&keepttl", "v");
  kv_test_assert_response (both, 400, "invalid ttl\n");
}

/* Listing */

static GPtrArray *
list_json (Fixture    *fixture,
           const char *query,
           char      **next)
{
  g_autofree char *path = g_strconcat ("/keys?format=json&", query, NULL);
  g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, "GET", path, NULL);
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;
  JsonArray *keys;
  GPtrArray *result = g_ptr_array_new_with_free_func (g_free);

  g_assert_cmpuint (r->status, ==, 200);
  root = parse_json (r);
  object = json_node_get_object (root);
  keys = json_object_get_array_member (object, "keys");
  for (guint i = 0; i < json_array_get_length (keys); i++)
    g_ptr_array_add (result, g_strdup (json_array_get_string_element (keys, i)));

  g_assert_true (json_object_has_member (object, "next"));
  *next = json_object_get_null_member (object, "next")
            ? NULL : g_strdup (json_object_get_string_member (object, "next"));
  return result;
}

static void
test_list_pages (Fixture       *fixture,
                 gconstpointer  user_data)
{
  const char *keys[] = { "ab", "a0", "b", "a/", "a", "a/b", "aa", "B", "a-z", "é" };
  const char *expected[] = { "a", "a-z", "a/", "a/b", "a0", "aa", "ab" };
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *after = NULL;
  guint pages = 0;

  g_test_summary ("Listing with a prefix pages through keys in byte order, with keys that "
                  "sort near each other, until next is null");

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autofree char *escaped = g_uri_escape_string (keys[i], NULL, FALSE);
      g_autofree char *path = g_strconcat ("/kv/", escaped, NULL);
      put_ok (fixture, path, keys[i]);
    }

  do
    {
      g_autofree char *escaped = after ? g_uri_escape_string (after, NULL, FALSE) : NULL;
      g_autofree char *query = g_strdup_printf ("prefix=a&limit=2%s%s",
                                                escaped ? "&after=" : "", escaped ? escaped : "");
      g_autoptr(GPtrArray) page = NULL;
      char *next = NULL;

      page = list_json (fixture, query, &next);
      g_assert_cmpuint (page->len, <=, 2);
      for (guint i = 0; i < page->len; i++)
        g_ptr_array_add (seen, g_strdup (g_ptr_array_index (page, i)));
      if (next != NULL)
        g_assert_cmpstr (next, ==, g_ptr_array_index (page, page->len - 1));
      g_free (after);
      after = next;
      pages++;
      g_assert_cmpuint (pages, <=, 10);
    }
  while (after != NULL);

  g_assert_cmpuint (pages, ==, 4);
  g_assert_cmpuint (seen->len, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < seen->len; i++)
    g_assert_cmpstr (g_ptr_array_index (seen, i), ==, expected[i]);
}

static void
test_list_text_and_errors (Fixture       *fixture,
                           gconstpointer  user_data)
{
  const char *accept_json[] = { "Accept", "application/json", NULL };
  const char *bad[] = {
    "/keys?limit=0", "/keys?limit=10001", "/keys?limit=abc", "/keys?limit=-1", "/keys?limit=+5",
  };
  g_autoptr(KvTestResponse) text = NULL;
  g_autoptr(KvTestResponse) all = NULL;
  g_autoptr(KvTestResponse) json = NULL;
  g_autoptr(KvTestResponse) bad_format = NULL;
  g_autoptr(KvTestResponse) post = NULL;
  g_autoptr(JsonNode) root = NULL;

  g_test_summary ("Listing is one key per line by default, JSON on Accept; bad limits and "
                  "formats are 400");

  put_ok (fixture, "/kv/kenya:capital", "Nairobi");
  put_ok (fixture, "/kv/uganda:capital", "Kampala");
  put_ok (fixture, "/kv/tanzania:capital", "Dodoma");

  text = kv_test_fixture_request (fixture, "GET", "/keys?prefix=tanzania", NULL);
  kv_test_assert_response (text, 200, "tanzania:capital\n");
  all = kv_test_fixture_request (fixture, "GET", "/keys", NULL);
  kv_test_assert_response (all, 200, "kenya:capital\ntanzania:capital\nuganda:capital\n");

  json = kv_test_fixture_request_full (fixture, "GET", "/keys?limit=10000", accept_json, NULL);
  root = parse_json (json);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (json_node_get_object (root), "keys")), ==, 3);
  g_assert_true (json_object_get_null_member (json_node_get_object (root), "next"));

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, "GET", bad[i], NULL);
      kv_test_assert_response (r, 400, "invalid limit\n");
    }
  bad_format = kv_test_fixture_request (fixture, "GET", "/keys?format=xml", NULL);
  kv_test_assert_response (bad_format, 400, "invalid format\n");
  post = kv_test_fixture_request (fixture, "POST", "/keys", "x");
  kv_test_assert_response (post, 405, "method not allowed\n");
  g_assert_cmpstr (kv_test_response_header (post, "Allow"), ==, "GET, HEAD, DELETE");
}

/* Health and statistics */

static void
test_healthz (Fixture       *fixture,
              gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) r = NULL;

  g_test_summary ("/healthz answers ok");

  r = kv_test_fixture_request (fixture, "GET", "/healthz", NULL);
  kv_test_assert_response (r, 200, "ok\n");
}

static void
test_stats (Fixture       *fixture,
            gconstpointer  user_data)
{
  const char *members[] = {
    "keys", "value_bytes", "revision", "uptime_seconds", "gets", "hits", "misses", "puts",
    "deletes", "expired", "precondition_failures", "connections",
  };
  const char *must_exist[] = { "If-Match", "*", NULL };
  g_autoptr(KvTestResponse) r = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *stats;

  g_test_summary ("/stats counts keys, bytes, revisions and requests since start");

  put_ok (fixture, "/kv/a", "12345");
  put_ok (fixture, "/kv/b", "678");
  put_ok (fixture, "/kv/a", "1234567");
  {
    g_autoptr(KvTestResponse) hit = kv_test_fixture_request (fixture, "GET", "/kv/a", NULL);
    g_autoptr(KvTestResponse) miss = kv_test_fixture_request (fixture, "GET", "/kv/zzz", NULL);
    g_autoptr(KvTestResponse) del = kv_test_fixture_request (fixture, "DELETE", "/kv/b", NULL);
    g_autoptr(KvTestResponse) failed = kv_test_fixture_request_full (fixture, "DELETE", "/kv/b", must_exist, NULL);
  }

  r = kv_test_fixture_request (fixture, "GET", "/stats", NULL);
  root = parse_json (r);
  stats = json_node_get_object (root);
  for (gsize i = 0; i < G_N_ELEMENTS (members); i++)
    g_assert_true (json_object_has_member (stats, members[i]));

  g_assert_cmpint (json_object_get_int_member (stats, "keys"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "value_bytes"), ==, 7);
  g_assert_cmpint (json_object_get_int_member (stats, "revision"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (stats, "gets"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (stats, "hits"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "misses"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "puts"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (stats, "deletes"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "precondition_failures"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (stats, "connections"), >=, 1);
}

static void
test_metrics (Fixture       *fixture,
              gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) r = NULL;
  g_autoptr(GHashTable) samples = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) typed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) helped = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto(GStrv) lines = NULL;
  g_autofree char *body = NULL;

  g_test_summary ("/metrics is Prometheus text format 0.0.4: HELP and TYPE before each "
                  "crafty_kv_ sample, values that agree with the requests made");

  put_ok (fixture, "/kv/a", "12345");
  {
    g_autoptr(KvTestResponse) miss = kv_test_fixture_request (fixture, "GET", "/kv/zzz", NULL);
  }

  r = kv_test_fixture_request (fixture, "GET", "/metrics", NULL);
  g_assert_cmpuint (r->status, ==, 200);
  g_assert_cmpstr (kv_test_response_header (r, "Content-Type"), ==,
                   "text/plain; version=0.0.4; charset=utf-8");
  body = g_strndup (g_bytes_get_data (r->body, NULL), g_bytes_get_size (r->body));
  g_assert_true (g_str_has_suffix (body, "\n"));

  lines = g_strsplit (body, "\n", -1);
  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      g_auto(GStrv) words = g_strsplit (lines[i], " ", 4);

      if (g_str_has_prefix (lines[i], "# HELP "))
        {
          g_assert_nonnull (words[2]);
          g_assert_nonnull (words[3]);
          g_hash_table_add (helped, g_strdup (words[2]));
        }
      else if (g_str_has_prefix (lines[i], "# TYPE "))
        {
          g_assert_true (g_strv_contains ((const char *[]) { "counter", "gauge", "histogram", NULL },
                                          words[3]));
          g_hash_table_add (typed, g_strdup (words[2]));
        }
      else
        {
          guint64 value;

          /* Labelled samples and process_* are test-metrics' to check. */
          if (strchr (words[0], '{') != NULL || !g_str_has_prefix (words[0], "crafty_kv_"))
            continue;
          g_assert_cmpuint (g_strv_length (words), ==, 2);
          g_assert_true (g_hash_table_contains (helped, words[0]));
          g_assert_true (g_hash_table_contains (typed, words[0]));
          g_assert_true (g_ascii_string_to_unsigned (words[1], 10, 0, G_MAXUINT64, &value, NULL));
          g_hash_table_insert (samples, g_strdup (words[0]), GSIZE_TO_POINTER (value));
        }
    }

  g_assert_cmpuint (GPOINTER_TO_SIZE (g_hash_table_lookup (samples, "crafty_kv_keys")), ==, 1);
  g_assert_cmpuint (GPOINTER_TO_SIZE (g_hash_table_lookup (samples, "crafty_kv_value_bytes")), ==, 5);
  g_assert_cmpuint (GPOINTER_TO_SIZE (g_hash_table_lookup (samples, "crafty_kv_puts_total")), ==, 1);
  g_assert_cmpuint (GPOINTER_TO_SIZE (g_hash_table_lookup (samples, "crafty_kv_misses_total")), ==, 1);
  g_assert_true (g_hash_table_contains (samples, "crafty_kv_precondition_failures_total"));
  g_assert_true (g_hash_table_contains (samples, "crafty_kv_expired_total"));
  g_assert_true (g_hash_table_contains (samples, "crafty_kv_connections_total"));
}

/* Errors */

static void
test_json_errors (Fixture       *fixture,
                  gconstpointer  user_data)
{
  const char *json[] = { "Accept", "application/json", NULL };
  const char *json_stale[] = { "Accept", "text/html, application/json;q=0.9", "If-Match", "\"77\"", NULL };
  const char *json_refused[] = { "Accept", "application/json;q=0", NULL };
  g_autoptr(GBytes) big = g_bytes_new_take (g_malloc0 (MAX_VALUE_SIZE + 1), MAX_VALUE_SIZE + 1);
  g_autoptr(GBytes) small = g_bytes_new_static ("x", 1);
  struct { const char *method, *path; const char * const *headers; GBytes *body; guint status; const char *text; } cases[] = {
    { "GET", "/kv/missing", json, NULL, 404, "key not found" },
    { "GET", "/nowhere", json, NULL, 404, "not found" },
    { "POST", "/kv/k", json, small, 405, "method not allowed" },
    { "PUT", "/kv/k", json_stale, small, 412, "precondition failed" },
    { "PUT", "/kv/k", json, big, 413, "value too large" },
    { "PUT", "/kv/", json, small, 400, "key cannot be empty" },
    { "PUT", "/kv/%FF", json, small, 400, "invalid key" },
  };
  g_autoptr(KvTestResponse) plain = NULL;

  g_test_summary ("Clients that accept JSON get every error as {\"error\", \"status\"}");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(KvTestResponse) r = kv_test_fixture_request_full (fixture, cases[i].method, cases[i].path,
                                                  cases[i].headers, cases[i].body);
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object;

      g_test_message ("%s %s", cases[i].method, cases[i].path);
      g_assert_cmpuint (r->status, ==, cases[i].status);
      root = parse_json (r);
      object = json_node_get_object (root);
      g_assert_cmpstr (json_object_get_string_member (object, "error"), ==, cases[i].text);
      g_assert_cmpint (json_object_get_int_member (object, "status"), ==, cases[i].status);
      g_assert_cmpuint (json_object_get_size (object), ==, 2);
    }

  plain = kv_test_fixture_request_full (fixture, "GET", "/kv/missing", json_refused, NULL);
  kv_test_assert_response (plain, 404, "key not found\n");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) \
  g_test_add ("/kv/api/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("value/binary-round-trip", test_binary_round_trip);
  ADD ("value/too-large", test_value_too_large);
  ADD ("value/content-type", test_content_type);
  ADD ("value/too-large-early", test_value_too_large_early);
  ADD ("key/encoded-slash", test_encoded_slash);
  ADD ("key/invalid", test_invalid_keys);
  ADD ("precondition/etags", test_etags);
  ADD ("precondition/if-match", test_if_match);
  ADD ("precondition/if-none-match", test_if_none_match);
  ADD ("precondition/race", test_if_match_race);
  ADD ("ttl/expiry", test_ttl_expiry);
  ADD ("ttl/options", test_ttl_options);
  ADD ("list/pages", test_list_pages);
  ADD ("list/text-and-errors", test_list_text_and_errors);
  ADD ("healthz", test_healthz);
  ADD ("stats", test_stats);
  ADD ("metrics", test_metrics);
  ADD ("errors/json", test_json_errors);
#undef ADD

  return g_test_run ();
}
