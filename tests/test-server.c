/* test-server.c: the HTTP API against a real SoupServer on port 0
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "storage/kv-map-storage.h"
#include "kv-test-utils.h"

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

static void
test_put_get (Fixture       *fixture,
              gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) put = NULL;
  g_autoptr(KvTestResponse) get = NULL;

  g_test_summary ("PUT answers 200 with no body; GET answers the stored bytes exactly");

  put = kv_test_fixture_request (fixture, "PUT", "/kv/kenya:capital", "Nairobi");
  kv_test_assert_response (put, 200, "");
  get = kv_test_fixture_request (fixture, "GET", "/kv/kenya:capital", NULL);
  kv_test_assert_response (get, 200, "Nairobi");
}

static void
test_put_overwrite (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) r1 = NULL;
  g_autoptr(KvTestResponse) r2 = NULL;
  g_autoptr(KvTestResponse) get = NULL;

  g_test_summary ("A second PUT replaces the value");

  r1 = kv_test_fixture_request (fixture, "PUT", "/kv/tanzania:capital", "Dar es Salaam");
  kv_test_assert_response (r1, 200, "");
  r2 = kv_test_fixture_request (fixture, "PUT", "/kv/tanzania:capital", "Dodoma");
  kv_test_assert_response (r2, 200, "");
  get = kv_test_fixture_request (fixture, "GET", "/kv/tanzania:capital", NULL);
  kv_test_assert_response (get, 200, "Dodoma");
}

static void
test_get_missing (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) get = NULL;

  g_test_summary ("GET of an absent key answers 404 “key not found”");

  get = kv_test_fixture_request (fixture, "GET", "/kv/nowhere", NULL);
  kv_test_assert_response (get, 404, "key not found\n");
  g_assert_cmpstr (soup_message_headers_get_content_type (get->headers, NULL), ==, "text/plain");
}

static void
test_delete (Fixture       *fixture,
             gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) put = NULL;
  g_autoptr(KvTestResponse) del = NULL;
  g_autoptr(KvTestResponse) del_again = NULL;
  g_autoptr(KvTestResponse) get = NULL;

  g_test_summary ("DELETE answers 200 whether or not the key was there");

  put = kv_test_fixture_request (fixture, "PUT", "/kv/uganda:capital", "Kampala");
  kv_test_assert_response (put, 200, "");
  del = kv_test_fixture_request (fixture, "DELETE", "/kv/uganda:capital", NULL);
  kv_test_assert_response (del, 200, "");
  get = kv_test_fixture_request (fixture, "GET", "/kv/uganda:capital", NULL);
  kv_test_assert_response (get, 404, "key not found\n");
  del_again = kv_test_fixture_request (fixture, "DELETE", "/kv/uganda:capital", NULL);
  kv_test_assert_response (del_again, 200, "");
}

static void
test_put_empty_value (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) put = NULL;
  g_autoptr(KvTestResponse) get = NULL;

  g_test_summary ("PUT with an empty body answers 400 and stores nothing");

  put = kv_test_fixture_request (fixture, "PUT", "/kv/kenya:capital", "");
  kv_test_assert_response (put, 400, "value cannot be empty\n");
  get = kv_test_fixture_request (fixture, "GET", "/kv/kenya:capital", NULL);
  kv_test_assert_response (get, 404, "key not found\n");
}

static void
test_empty_key (Fixture       *fixture,
                gconstpointer  user_data)
{
  const char *methods[] = { "PUT", "GET", "DELETE", "POST", "HEAD" };

  g_test_summary ("Every method on /kv/ answers 400 “key cannot be empty”");

  for (gsize i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, methods[i], "/kv/", "foo");
      gboolean head = g_str_equal (methods[i], "HEAD");

      kv_test_assert_response (r, 400, head ? "" : "key cannot be empty\n");
    }
}

static void
test_method_not_allowed (Fixture       *fixture,
                         gconstpointer  user_data)
{
  const char *methods[] = { "POST", "PATCH", "OPTIONS" };

  g_test_summary ("Other methods on a key answer 405 with an Allow header");

  for (gsize i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, methods[i], "/kv/kenya:capital", "x");

      kv_test_assert_response (r, 405, "method not allowed\n");
      g_assert_cmpstr (kv_test_response_header (r, "Allow"), ==,
                       "GET, HEAD, PUT, DELETE");
    }
}

static void
test_head (Fixture       *fixture,
           gconstpointer  user_data)
{
  g_autoptr(KvTestResponse) put = NULL;
  g_autoptr(KvTestResponse) head = NULL;

  g_test_summary ("HEAD answers like GET, without a body");

  put = kv_test_fixture_request (fixture, "PUT", "/kv/k", "Nairobi");
  head = kv_test_fixture_request (fixture, "HEAD", "/kv/k", NULL);
  kv_test_assert_response (head, 200, "");
  g_assert_cmpint (soup_message_headers_get_content_length (head->headers), ==, 7);
}

static void
test_outside_prefix (Fixture       *fixture,
                     gconstpointer  user_data)
{
  const char *paths[] = { "/", "/kv", "/kvx/a", "/other/kv/a", "/KV/a" };

  g_test_summary ("Any path outside /kv/ answers 404 “not found”");

  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, "GET", paths[i], NULL);

      kv_test_assert_response (r, 404, "not found\n");
    }
}

static void
test_range_ignored (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvTestResponse) put = NULL;
  g_autofree char *uri = kv_test_server_uri (fixture->server, "/kv/k");
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GBytes) body = NULL;

  g_test_summary ("A Range header is ignored: the whole value comes back once");

  put = kv_test_fixture_request (fixture, "PUT", "/kv/k", "0123456789");
  soup_message_headers_append (soup_message_get_request_headers (msg), "Range",
                               "bytes=0-,0-,0-,0-,0-,0-");
  body = soup_session_send_and_read (fixture->session, msg, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_cmpmem (g_bytes_get_data (body, NULL), g_bytes_get_size (body), "0123456789", 10);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) \
  g_test_add ("/kv/server/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("put-get", test_put_get);
  ADD ("put-overwrite", test_put_overwrite);
  ADD ("get-missing", test_get_missing);
  ADD ("delete", test_delete);
  ADD ("put/empty-value", test_put_empty_value);
  ADD ("empty-key", test_empty_key);
  ADD ("method-not-allowed", test_method_not_allowed);
  ADD ("head", test_head);
  ADD ("outside-prefix", test_outside_prefix);
  ADD ("range-ignored", test_range_ignored);
#undef ADD

  return g_test_run ();
}
