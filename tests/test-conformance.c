/* test-conformance.c: what real clients found, against a real server
 *
 * SPDX-License-Identifier: MIT
 *
 * Each case is a defect that Python, Go, Node, curl and hostile local
 * clients found, checked on the wire (raw sockets), where a client
 * library would hide it.
 */
#include "config.h"

#include <string.h>

#include "kv-test-raw.h"
#include "kv-test-utils.h"

#define H "Host: 127.0.0.1\r\n"

typedef KvTestFixture Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  kv_test_fixture_setup (fixture, NULL);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  kv_test_fixture_teardown (fixture);
}

static guint16
port (Fixture *fixture)
{
  return kv_test_server_get_port (fixture->server);
}

static KvRawResponse *
request (Fixture    *fixture,
         const char *text)
{
  return kv_raw_request (port (fixture), text);
}

static void
put (Fixture    *fixture,
     const char *key,
     const char *value)
{
  g_autofree char *path = g_strconcat ("/kv/", key, NULL);
  g_autoptr(KvRawResponse) r = kv_raw_simple (port (fixture), "PUT", path, value);

  g_assert_cmpuint (r->status, ==, 200);
}

static void
test_not_modified_length (Fixture       *fixture,
                          gconstpointer  user_data)
{
  g_autoptr(KvRawResponse) get = NULL;
  g_autoptr(KvRawResponse) not_modified = NULL;
  g_autofree char *text = NULL;
  const char *length;

  g_test_summary ("A 304 sends no length but the value's (RFC 9110 §8.6), never 0");

  put (fixture, "v", "hello");
  get = kv_raw_simple (port (fixture), "GET", "/kv/v", NULL);
  g_assert_cmpuint (get->status, ==, 200);

  text = g_strdup_printf ("GET /kv/v HTTP/1.1\r\n" H "If-None-Match: %s\r\n\r\n",
                          kv_raw_response_header (get, "etag"));
  not_modified = request (fixture, text);
  g_assert_cmpuint (not_modified->status, ==, 304);
  length = kv_raw_response_header (not_modified, "content-length");
  if (length != NULL)
    g_assert_cmpstr (length, ==, "5");
  g_assert_cmpuint (g_bytes_get_size (not_modified->body), ==, 0);
}

static void
test_read_if_match (Fixture       *fixture,
                    gconstpointer  user_data)
{
  const struct
  {
    const char *method;
    const char *if_match;
    guint status;
  } cases[] = {
    { "GET", "\"999\"", 412 },
    { "HEAD", "\"999\"", 412 },
    { "GET", "W/\"1\"", 412 },   /* If-Match compares strongly */
    { "GET", "\"1\"", 200 },
    { "HEAD", "\"5\", \"1\"", 200 },
    { "GET", "*", 200 },
  };

  g_test_summary ("GET and HEAD with an If-Match that does not match answer 412 "
                  "(RFC 9110 §13.1.1); a missing key stays 404");

  put (fixture, "m", "value");
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strdup_printf ("%s /kv/m HTTP/1.1\r\n" H "If-Match: %s\r\n\r\n",
                                               cases[i].method, cases[i].if_match);
      g_autoptr(GSocket) socket = kv_raw_connect (port (fixture));
      g_autoptr(KvRawResponse) r = NULL;

      kv_raw_send_string (socket, text);
      r = kv_raw_read_response (socket, g_str_equal (cases[i].method, "HEAD"), 5000);
      g_test_message ("%s If-Match: %s", cases[i].method, cases[i].if_match);
      g_assert_cmpuint (r->status, ==, cases[i].status);
      g_assert_cmpstr (kv_raw_response_header (r, "etag"), ==, "\"1\"");
      if (cases[i].status == 412 && g_str_equal (cases[i].method, "GET"))
        g_assert_true (kv_raw_response_body_is (r, "precondition failed\n"));
    }

  {
    g_autoptr(KvRawResponse) missing =
      request (fixture, "GET /kv/absent HTTP/1.1\r\n" H "If-Match: \"1\"\r\n\r\n");

    g_assert_cmpuint (missing->status, ==, 404);
  }
}

static void
test_accept (Fixture       *fixture,
             gconstpointer  user_data)
{
  const struct
  {
    const char *accept;
    gboolean json;
  } cases[] = {
    { "application/json", TRUE },
    { "APPLICATION/JSON", TRUE },
    { "Application/Json; charset=utf-8", TRUE },
    { "text/html, application/json;q=0.5", TRUE },
    { "application/json; Q=0.1", TRUE },
    { "application/json;q=0", FALSE },
    { "application/json; q=0.0", FALSE },
    { "text/plain, application/json;q=0", FALSE },
    { "*/*", FALSE },
    { "application/jsonx", FALSE },
  };

  g_test_summary ("Media types in Accept are case-insensitive and q=0 means “not this "
                  "type”, for handler errors and refusals alike");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      /* One error from a handler, one written on the raw socket. */
      g_autofree char *missing = g_strdup_printf ("GET /kv/absent HTTP/1.1\r\n" H
                                                  "Accept: %s\r\n\r\n", cases[i].accept);
      g_autofree char *too_large = g_strdup_printf ("PUT /kv/big HTTP/1.1\r\n" H
                                                    "Accept: %s\r\n"
                                                    "Content-Length: 99999999\r\n\r\n",
                                                    cases[i].accept);
      g_autoptr(KvRawResponse) r404 = request (fixture, missing);
      g_autoptr(KvRawResponse) r413 = request (fixture, too_large);

      g_test_message ("Accept: %s", cases[i].accept);
      g_assert_cmpuint (r404->status, ==, 404);
      g_assert_cmpuint (r413->status, ==, 413);
      if (cases[i].json)
        {
          g_assert_cmpstr (kv_raw_response_header (r404, "content-type"), ==, "application/json");
          g_assert_cmpstr (kv_raw_response_header (r413, "content-type"), ==, "application/json");
          g_assert_true (kv_raw_response_body_is (r404,
                                                  "{\"error\":\"key not found\",\"status\":404}\n"));
          g_assert_true (kv_raw_response_body_is (r413,
                                                  "{\"error\":\"value too large\",\"status\":413}\n"));
        }
      else
        {
          g_assert_true (kv_raw_response_body_is (r404, "key not found\n"));
          g_assert_true (kv_raw_response_body_is (r413, "value too large\n"));
        }
    }
}

static void
test_media_types (Fixture       *fixture,
                  gconstpointer  user_data)
{
  const struct
  {
    const char *type;
    guint status;
  } cases[] = {
    { "text/plain;\tcharset=utf-8", 200 },
    { "text/plain ; charset=utf-8", 200 },
    { "text/plain;charset=\"utf-8\"", 200 },
    { "application/vnd.example+json", 200 },
    { "text/plain;", 200 },
    { "image/png", 200 },
    { "///", 400 },
    { "text", 400 },
    { "text/", 400 },
    { "/plain", 400 },
    { "text/plain; charset", 400 },
    { "text/plain; charset=", 400 },
    { "text/plain; charset=\"utf-8", 400 },
    { "text/pl ain", 400 },
    { "text/plain, text/html", 400 },
  };

  g_test_summary ("Content-Type is read by RFC 9110's media-type grammar: what parses is "
                  "stored, what does not is 400 “invalid content type”");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strdup_printf ("PUT /kv/t HTTP/1.1\r\n" H
                                               "Content-Type: %s\r\nContent-Length: 1\r\n\r\nx",
                                               cases[i].type);
      g_autoptr(KvRawResponse) r = request (fixture, text);

      g_test_message ("Content-Type: %s", cases[i].type);
      g_assert_cmpuint (r->status, ==, cases[i].status);
      if (cases[i].status == 200)
        {
          g_autoptr(KvRawResponse) get = kv_raw_simple (port (fixture), "GET", "/kv/t", NULL);

          g_assert_cmpstr (kv_raw_response_header (get, "content-type"), ==, cases[i].type);
        }
      else
        g_assert_true (kv_raw_response_body_is (r, "invalid content type\n"));
    }
}

static void
test_absolute_form (Fixture       *fixture,
                    gconstpointer  user_data)
{
  const struct
  {
    const char *request;
    guint status;
  } cases[] = {
    { "GET http://evil.example/kv/a HTTP/1.1\r\n" H "\r\n", 421 },
    { "GET http://evil.example:80/kv/a HTTP/1.1\r\n" H "\r\n", 421 },
    { "GET http://127.0.0.1.evil.example/kv/a HTTP/1.1\r\n" H "\r\n", 421 },
    { "GET http://127.0.0.1/kv/a HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421 },
    { "GET http://127.0.0.1/kv/a HTTP/1.1\r\n" H "\r\n", 404 },
    { "GET http://localhost:8888/kv/a HTTP/1.1\r\nHost: localhost\r\n\r\n", 404 },
    { "GET http://[::1]/kv/a HTTP/1.1\r\n" H "\r\n", 404 },
  };

  g_test_summary ("An absolute-form target's authority is checked as Host is "
                  "(RFC 9112 §3.2.2)");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(KvRawResponse) r = request (fixture, cases[i].request);

      g_test_message ("%s", cases[i].request);
      g_assert_cmpuint (r->status, ==, cases[i].status);
      if (r->status == 421)
        g_assert_true (kv_raw_response_body_is (r, "misdirected request\n"));
    }
}

static void
test_unparsable (Fixture       *fixture,
                 gconstpointer  user_data)
{
  /* Each with its headers still to come. */
  const char *requests[] = {
    "GET /kv/a%zz HTTP/1.1\r\n" H,
    "GET /kv/a HTTP/1.1\r\n",
    "GET http://[::1 HTTP/1.1\r\n" H,
    "GET /kv/a HTTP/1.1\r\n" H H,
  };

  g_test_summary ("Requests libsoup would answer with a bare 400 get the documented body, "
                  "in JSON when asked");

  for (gsize i = 0; i < G_N_ELEMENTS (requests); i++)
    {
      g_autofree char *text = g_strconcat (requests[i], "\r\n", NULL);
      g_autofree char *json = g_strconcat (requests[i], "Accept: application/json\r\n\r\n", NULL);
      g_autoptr(KvRawResponse) r = request (fixture, text);
      g_autoptr(KvRawResponse) j = request (fixture, json);

      g_test_message ("%s", text);
      g_assert_cmpuint (r->status, ==, 400);
      g_assert_cmpstr (kv_raw_response_header (r, "content-type"), ==,
                       "text/plain; charset=utf-8");
      g_assert_true (kv_raw_response_body_is (r, "bad request\n"));
      g_assert_cmpuint (j->status, ==, 400);
      g_assert_cmpstr (kv_raw_response_header (j, "content-type"), ==, "application/json");
      g_assert_true (kv_raw_response_body_is (j, "{\"error\":\"bad request\",\"status\":400}\n"));
    }
}

static void
test_options_star (Fixture       *fixture,
                   gconstpointer  user_data)
{
  g_autoptr(KvRawResponse) r = request (fixture, "OPTIONS * HTTP/1.1\r\n" H "\r\n");

  g_test_summary ("“OPTIONS *” says what the server offers");

  g_assert_cmpuint (r->status, ==, 204);
  g_assert_cmpstr (kv_raw_response_header (r, "allow"), ==, "GET, HEAD, PUT, DELETE");
  g_assert_null (kv_raw_response_header (r, "content-length"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) \
  g_test_add ("/kv/conformance/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("not-modified/length", test_not_modified_length);
  ADD ("if-match/read", test_read_if_match);
  ADD ("accept", test_accept);
  ADD ("content-type/grammar", test_media_types);
  ADD ("target/absolute-form", test_absolute_form);
  ADD ("options-star", test_options_star);
  ADD ("unparsable", test_unparsable);
#undef ADD

  return g_test_run ();
}
