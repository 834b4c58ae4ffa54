/* test-request.c: request parsing and the response writer, without a
 * server
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "http/kv-request.h"
#include "http/kv-response.h"

static void
test_decode_key (void)
{
  const struct
  {
    const char *raw;
    const char *key;
    guint status;
  } cases[] = {
    { "a", "a", 0 },
    { "a%2Fb", "a/b", 0 },
    { "a/b", "a/b", 0 },
    { "%252F", "%2F", 0 },
    { "caf%C3%A9", "café", 0 },
    { "%2e%2E", "..", 0 },
    { "a%00b", NULL, 400 },
    { "a%zz", NULL, 400 },
    { "a%2", NULL, 400 },
    { "%FF", NULL, 400 },
    { "a%0Ab", NULL, 400 },
    { "0123456789", "0123456789", 0 },
    { "01234567890", NULL, 414 },
  };
  char key[11 + 1];

  g_test_summary ("Keys are percent-decoded without allocating, and must be UTF-8 "
                  "without control characters, within the size limit");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint status = kv_request_decode_key (cases[i].raw, 10, key);

      g_test_message ("%s", cases[i].raw);
      g_assert_cmpuint (status, ==, cases[i].status);
      if (status == 0)
        g_assert_cmpstr (key, ==, cases[i].key);
    }
}

static void
test_ttl (void)
{
  const struct
  {
    const char *text;
    gboolean valid;
    gint64 usec;
  } cases[] = {
    { "30", TRUE, 30 * G_USEC_PER_SEC },
    { "30s", TRUE, 30 * G_USEC_PER_SEC },
    { "1500ms", TRUE, 1500 * 1000 },
    { "5m", TRUE, 300 * G_USEC_PER_SEC },
    { "2h", TRUE, G_GINT64_CONSTANT (7200) * G_USEC_PER_SEC },
    { "0", FALSE, 0 },
    { "", FALSE, 0 },
    { "s", FALSE, 0 },
    { "-5", FALSE, 0 },
    { "5d", FALSE, 0 },
    { "5 s", FALSE, 0 },
    { "1000000000000000", FALSE, 0 },
    { "999999999999h", FALSE, 0 },
  };

  g_test_summary ("A time to live is a positive whole number and a unit");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gint64 usec = 0;

      g_test_message ("%s", cases[i].text);
      g_assert_cmpint (kv_request_parse_ttl (cases[i].text, &usec), ==, cases[i].valid);
      if (cases[i].valid)
        g_assert_cmpint (usec, ==, cases[i].usec);
    }
}

static void
test_media_type (void)
{
  const struct
  {
    const char *text;
    gboolean valid;
  } cases[] = {
    { "text/plain", TRUE },
    { "text/plain;\tcharset=utf-8", TRUE },
    { "text/plain ;charset=utf-8 ", TRUE },
    { "text/plain; charset=\"utf\\\"8\"", TRUE },
    { "text/plain;;", TRUE },
    { "a/b;c=d;e=f", TRUE },
    { "///", FALSE },
    { "", FALSE },
    { "text", FALSE },
    { "text/", FALSE },
    { "te xt/plain", FALSE },
    { "text/plain; c", FALSE },
    { "text/plain; c=", FALSE },
    { "text/plain; c=\"open", FALSE },
    { "text/plain; c=a b", FALSE },
    { "text/plain\x01", FALSE },
  };
  GString *too_long = g_string_new ("a/");

  g_test_summary ("Media types follow RFC 9110's grammar and a length limit");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("%s", cases[i].text);
      g_assert_cmpint (kv_request_parse_media_type (cases[i].text), ==, cases[i].valid);
    }

  while (too_long->len <= KV_REQUEST_MAX_MEDIA_TYPE_LENGTH)
    g_string_append_c (too_long, 'b');
  g_assert_false (kv_request_parse_media_type (too_long->str));
  g_string_truncate (too_long, KV_REQUEST_MAX_MEDIA_TYPE_LENGTH);
  g_assert_true (kv_request_parse_media_type (too_long->str));
  g_string_free (too_long, TRUE);
}

static void
test_limit_and_query (void)
{
  guint limit = 0;

  g_test_summary ("Page sizes and names without values in a query");

  g_assert_true (kv_request_parse_limit (NULL, 1000, 10000, &limit));
  g_assert_cmpuint (limit, ==, 1000);
  g_assert_true (kv_request_parse_limit ("10000", 1000, 10000, &limit));
  g_assert_cmpuint (limit, ==, 10000);
  g_assert_false (kv_request_parse_limit ("10001", 1000, 10000, &limit));
  g_assert_false (kv_request_parse_limit ("0", 1000, 10000, &limit));
  g_assert_false (kv_request_parse_limit ("+5", 1000, 10000, &limit));
  g_assert_false (kv_request_parse_limit ("5x", 1000, 10000, &limit));

  g_assert_true (kv_request_query_has_name ("keepttl", "keepttl"));
  g_assert_true (kv_request_query_has_name ("a=1&keepttl", "keepttl"));
  g_assert_true (kv_request_query_has_name ("keepttl=1&a", "keepttl"));
  g_assert_false (kv_request_query_has_name ("keepttlx", "keepttl"));
  g_assert_false (kv_request_query_has_name ("a=keepttl", "keepttl"));
  g_assert_false (kv_request_query_has_name (NULL, "keepttl"));
}

static void
test_condition (void)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  KvCondition condition;

  g_test_summary ("If-Match and If-None-Match are read together");

  g_assert_true (kv_request_parse_condition (headers, &condition));
  g_assert_true (kv_condition_is_empty (&condition));

  soup_message_headers_append (headers, "If-Match", "\"3\", W/\"4\"");
  soup_message_headers_append (headers, "If-None-Match", "*");
  g_assert_true (kv_request_parse_condition (headers, &condition));
  g_assert_cmpint (condition.if_match.kind, ==, KV_MATCH_LIST);
  g_assert_cmpuint (condition.if_match.n_revisions, ==, 2);
  g_assert_true (kv_match_contains (&condition.if_match, 3, FALSE));
  g_assert_false (kv_match_contains (&condition.if_match, 4, FALSE));
  g_assert_cmpint (condition.if_none_match.kind, ==, KV_MATCH_ANY);

  soup_message_headers_replace (headers, "If-Match", "3");
  g_assert_false (kv_request_parse_condition (headers, &condition));
}

static void
test_wants_json (void)
{
  const struct
  {
    const char *accept;
    gboolean json;
  } cases[] = {
    { NULL, FALSE },
    { "application/json", TRUE },
    { "APPLICATION/JSON", TRUE },
    { " application/json ;q=1", TRUE },
    { "text/html,application/json;q=0.001", TRUE },
    { "application/json;q=0", FALSE },
    { "application/json;Q=0.000", FALSE },
    { "application/json;charset=utf-8;q=0", FALSE },
    { "application/json-seq", FALSE },
    { "*/*", FALSE },
    { "", FALSE },
  };

  g_test_summary ("Accept: case-insensitive media types, q=0 refuses");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(SoupMessageHeaders) headers =
        soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);

      if (cases[i].accept != NULL)
        soup_message_headers_append (headers, "Accept", cases[i].accept);
      g_test_message ("Accept: %s", cases[i].accept);
      g_assert_cmpint (kv_response_wants_json (headers), ==, cases[i].json);
    }
  g_assert_false (kv_response_wants_json (NULL));
}

static void
test_refusal (void)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GBytes) text = NULL;
  g_autoptr(GBytes) json = NULL;
  g_autoptr(GBytes) head = NULL;
  const char *expected_text =
    "HTTP/1.1 421 Misdirected Request\r\n"
    "Server: " PACKAGE_NAME "/" VERSION "\r\n"
    "Connection: close\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Content-Length: 20\r\n"
    "\r\n"
    "misdirected request\n";
  const char *expected_json_tail =
    "Content-Length: 38\r\n"
    "WWW-Authenticate: Bearer\r\n"
    "\r\n"
    "{\"error\":\"unauthorized\",\"status\":401}\n";

  g_test_summary ("Refusals written on the raw socket are the answers libsoup would send "
                  "for the same error");

  text = kv_response_build_refusal (421, "misdirected request", NULL, NULL, FALSE);
  g_assert_cmpmem (g_bytes_get_data (text, NULL), g_bytes_get_size (text),
                   expected_text, strlen (expected_text));

  soup_message_headers_append (headers, "Accept", "application/json");
  json = kv_response_build_refusal (401, "unauthorized", "WWW-Authenticate: Bearer", headers,
                                    FALSE);
  g_assert_cmpuint (g_bytes_get_size (json), >, strlen (expected_json_tail));
  g_assert_cmpmem ((const char *) g_bytes_get_data (json, NULL) +
                   g_bytes_get_size (json) - strlen (expected_json_tail),
                   strlen (expected_json_tail), expected_json_tail, strlen (expected_json_tail));

  /* A HEAD gets the headers only. */
  head = kv_response_build_refusal (421, "misdirected request", NULL, NULL, TRUE);
  g_assert_cmpuint (g_bytes_get_size (head), ==, strlen (expected_text) - 20);
}

static void
test_base64 (void)
{
  const struct
  {
    const char *text;
    const char *bytes;  /* NULL: refused */
  } cases[] = {
    { "YQ==", "a" },
    { "YWI=", "ab" },
    { "YWJj", "abc" },
    { "", NULL },
    { "YQ", NULL },
    { "YQ=a", NULL },
    { "Y===", NULL },
    { "=YQ=", NULL },
    { "YW Jj", NULL },
    { "YW\nJj", NULL },
    { "YW-j", NULL },
  };

  g_test_summary ("Base64 is RFC 4648 with padding, strictly: nothing skipped");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) bytes = kv_request_decode_base64 (cases[i].text);

      if (cases[i].bytes == NULL)
        g_assert_null (bytes);
      else
        g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                         cases[i].bytes, strlen (cases[i].bytes));
    }
}

static void
test_load_json (void)
{
  const struct
  {
    const char *text;
    const char *problem;  /* NULL: loaded */
  } cases[] = {
    { "{\"a\": 1, \"b\": {\"c\": \"x:y\"}}", NULL },
    { "  ", NULL },
    { "{\"a\": 1, \"a\": 2}", "duplicate member" },
    { "{\"a\": {\"b\": 1, \"b\": 1}}", "duplicate member" },
    { "[[[[[[[[1]]]]]]]]", NULL },
    { "[[[[[[[[[1]]]]]]]]]", "invalid JSON" },
    { "\"[[[[[[[[[\"", NULL },
    { "var x = {}", "invalid JSON" },
    { "{\"a\": }", "invalid JSON" },
    { "{\"a\": \"x\\u0000y\"}", "invalid JSON" },
    { "{\"a\": \"x\\\\u0000y\"}", NULL },
    { "{\"a\": \"x\\u00e9\"}", NULL },
  };

  g_test_summary ("JSON bodies are loaded strictly: bounded nesting, no assignment, no "
                  "duplicate member");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new_immutable ();
      const char *problem = NULL;
      gboolean loaded = kv_request_load_json (parser, cases[i].text, strlen (cases[i].text),
                                              &problem);

      g_assert_cmpint (loaded, ==, cases[i].problem == NULL);
      if (!loaded)
        g_assert_cmpstr (problem, ==, cases[i].problem);
    }
}

static void
test_json_chars (void)
{
  const char text[] = "a\"b\\c\n\x01é";
  g_autoptr(GString) whole = g_string_new (NULL);
  g_autoptr(GString) pieces = g_string_new ("\"");

  g_test_summary ("A JSON string written piece by piece, cut anywhere, is the string "
                  "written whole");

  kv_response_append_json_string (whole, text, strlen (text));
  g_assert_cmpstr (whole->str, ==, "\"a\\\"b\\\\c\\u000a\\u0001é\"");
  for (gsize i = 0; i < strlen (text); i += 3)
    kv_response_append_json_chars (pieces, text + i, MIN (3, strlen (text) - i));
  g_string_append_c (pieces, '"');
  g_assert_cmpstr (pieces->str, ==, whole->str);
}

static void
test_prefer_wait (void)
{
  static const struct
  {
    const char *prefer;
    gboolean found;
    guint seconds;
  } cases[] = {
    { "wait=10", TRUE, 10 },
    { "WAIT=10", TRUE, 10 },
    { "wait = 7", TRUE, 7 },
    { "wait=\"30\"", TRUE, 30 },
    { "respond-async, wait=5", TRUE, 5 },
    { "wait=5; foo=bar", TRUE, 5 },
    { "handling=lenient; x=\"a,wait=9\", wait=4", TRUE, 4 },
    { "wait=0", TRUE, 0 },
    { "wait=99999999999", FALSE, 0 },
    { "wait=4294967295", TRUE, G_MAXUINT },
    { "wait=-1", FALSE, 0 },
    { "wait=1.5", FALSE, 0 },
    { "wait=ten", FALSE, 0 },
    { "wait=\"3", FALSE, 0 },
    { "wait", FALSE, 0 },
    { "waiting=3", FALSE, 0 },
    { "return=minimal", FALSE, 0 },
    { "", FALSE, 0 },
    { "wait=abc, wait=6", TRUE, 6 },
    { "x=\"unterminated, wait=3", FALSE, 0 },
  };

  g_test_summary ("Prefer: wait=N is found among other preferences, quoted or not, and one that "
                  "is not a whole number of seconds is ignored");

  g_assert_false (kv_request_parse_prefer_wait (NULL, &(guint) { 0 }));
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint seconds = 12345;
      gboolean found = kv_request_parse_prefer_wait (cases[i].prefer, &seconds);

      g_test_message ("%s", cases[i].prefer);
      g_assert_cmpint (found, ==, cases[i].found);
      if (found)
        g_assert_cmpuint (seconds, ==, cases[i].seconds);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/kv/request/key", test_decode_key);
  g_test_add_func ("/kv/request/ttl", test_ttl);
  g_test_add_func ("/kv/request/media-type", test_media_type);
  g_test_add_func ("/kv/request/limit-and-query", test_limit_and_query);
  g_test_add_func ("/kv/request/prefer-wait", test_prefer_wait);
  g_test_add_func ("/kv/request/condition", test_condition);
  g_test_add_func ("/kv/request/base64", test_base64);
  g_test_add_func ("/kv/request/load-json", test_load_json);
  g_test_add_func ("/kv/response/wants-json", test_wants_json);
  g_test_add_func ("/kv/response/refusal", test_refusal);
  g_test_add_func ("/kv/response/json-chars", test_json_chars);

  return g_test_run ();
}
