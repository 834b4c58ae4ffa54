/* test-listing.c: listings streamed within bounds, however clients read
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <json-glib/json-glib.h>

#include "kv-test-raw.h"
#include "kv-test-utils.h"

#define N_KEYS 10000
#define KEY_SIZE 1000
#define MAX_PENDING_OUTPUT (512 * 1024)
#define N_READERS 20

typedef KvTestFixture Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(KvConfig) config = kv_config_new ();

  g_object_set (config, "max-pending-output", (guint64) MAX_PENDING_OUTPUT, NULL);
  kv_test_fixture_setup (fixture, config);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  kv_test_fixture_teardown (fixture);
}

static char *
make_key (guint i)
{
  char *key = g_malloc (KEY_SIZE + 1);

  memset (key, 'k', KEY_SIZE);
  g_snprintf (key, KEY_SIZE + 1, "%06u", i);
  key[6] = 'k';
  key[KEY_SIZE] = '\0';
  return key;
}

static void
load (Fixture *fixture)
{
  for (guint start = 0; start < N_KEYS; start += 500)
    {
      g_autoptr(GString) body = g_string_new ("{\"ops\": [");
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(KvTestResponse) r = NULL;

      for (guint i = start; i < start + 500; i++)
        {
          g_autofree char *key = make_key (i);

          g_string_append_printf (body, "%s{\"op\": \"put\", \"key\": \"%s\", \"value\": \"v\"}",
                                  i > start ? "," : "", key);
        }
      g_string_append (body, "]}");
      bytes = g_bytes_new (body->str, body->len);
      r = kv_test_fixture_request_full (fixture, "POST", "/txn", NULL, bytes);
      g_assert_cmpuint (r->status, ==, 200);
    }
}

/* Reads a whole answer; the number of lines of its body. */
static guint
read_all_lines (GSocket *socket)
{
  g_autoptr(KvRawResponse) response = kv_raw_read_response (socket, FALSE, 30000);
  gsize len;
  const char *body;
  guint lines = 0;

  g_assert_cmpuint (response->status, ==, 200);
  body = g_bytes_get_data (response->body, &len);
  for (gsize i = 0; i < len; i++)
    if (body[i] == '\n')
      lines++;
  return lines;
}

static GSocket *
ask_listing (guint16 port)
{
  GSocket *socket = kv_raw_connect (port);

  /* A small window, so that the kernel does not take in the whole answer
   * for a client that does not read. */
  g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, 4096, NULL);
  kv_raw_send_string (socket, "GET /keys?limit=10000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  return socket;
}

static void
test_slow_readers (Fixture       *fixture,
                   gconstpointer  user_data)
{
  KvStats *stats = kv_test_server_get_stats (fixture->server);
  guint16 port = kv_test_server_get_port (fixture->server);
  g_autoptr(GPtrArray) readers = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(KvRawResponse) health = NULL;
  guint64 most = 0;
  gint64 deadline;

  g_test_summary ("Clients that ask for 10 MB listings and do not read make the server hold "
                  "no more than max-pending-output, and it goes on answering; once they are "
                  "gone, nothing is held");

  load (fixture);
  for (guint i = 0; i < N_READERS; i++)
    g_ptr_array_add (readers, ask_listing (port));

  deadline = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < deadline)
    {
      guint64 held = kv_stats_get_pending_output (stats);

      g_assert_cmpuint (held, <=, MAX_PENDING_OUTPUT);
      most = MAX (most, held);
      g_usleep (10 * 1000);
    }
  g_test_message ("at most %" G_GUINT64_FORMAT " bytes held", most);

  health = kv_raw_simple (port, "GET", "/healthz", NULL);
  g_assert_cmpuint (health->status, ==, 200);

  /* Gone, the clients leave nothing held. */
  g_ptr_array_set_size (readers, 0);
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (kv_stats_get_pending_output (stats) > 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (kv_stats_get_pending_output (stats), ==, 0);
}

static void
test_busy (Fixture       *fixture,
           gconstpointer  user_data)
{
  KvStats *stats = kv_test_server_get_stats (fixture->server);
  guint16 port = kv_test_server_get_port (fixture->server);
  g_autoptr(GPtrArray) hogs = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(KvRawResponse) busy = NULL;
  gint64 deadline;

  g_test_summary ("While streamed answers hold max-pending-output, a new listing is 503 "
                  "“server busy” with Retry-After");

  load (fixture);
  /* Clients that stop reading, more than there is room for. */
  for (guint i = 0; i < 10; i++)
    g_ptr_array_add (hogs, ask_listing (port));
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (kv_stats_get_pending_output (stats) == 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (kv_stats_get_pending_output (stats), >, 0);

  busy = kv_raw_simple (port, "GET", "/keys?limit=10000", NULL);
  g_assert_cmpuint (busy->status, ==, 503);
  g_assert_cmpstr (kv_raw_response_header (busy, "retry-after"), ==, "1");
  g_assert_true (kv_raw_response_body_is (busy, "server busy\n"));
}

static void
test_streamed_whole (Fixture       *fixture,
                     gconstpointer  user_data)
{
  KvStats *stats = kv_test_server_get_stats (fixture->server);
  guint16 port = kv_test_server_get_port (fixture->server);
  g_autoptr(GSocket) text = NULL;
  g_autoptr(KvTestResponse) json = NULL;
  const char *json_accept[] = { "Accept", "application/json", NULL };
  gint64 deadline;

  g_test_summary ("A streamed listing holds every key, in order, and lets go of what it "
                  "held once read");

  load (fixture);

  text = kv_raw_connect (port);
  kv_raw_send_string (text, "GET /keys?limit=10000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  g_assert_cmpuint (read_all_lines (text), ==, N_KEYS);

  json = kv_test_fixture_request_full (fixture, "GET", "/keys?limit=2000", json_accept, NULL);
  g_assert_cmpuint (json->status, ==, 200);
  {
    g_autoptr(JsonParser) parser = json_parser_new ();
    g_autoptr(GError) error = NULL;
    g_autofree char *last = make_key (1999);
    JsonObject *object;

    json_parser_load_from_data (parser, g_bytes_get_data (json->body, NULL),
                                g_bytes_get_size (json->body), &error);
    g_assert_no_error (error);
    object = json_node_get_object (json_parser_get_root (parser));
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (object, "keys")), ==,
                      2000);
    g_assert_cmpstr (json_object_get_string_member (object, "next"), ==, last);
  }

  /* A HEAD gets a GET's headers, and holds nothing. */
  {
    g_autoptr(GSocket) head = kv_raw_connect (port);
    g_autoptr(KvRawResponse) r = NULL;

    kv_raw_send_string (head, "HEAD /keys?limit=10000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    r = kv_raw_read_response (head, TRUE, 5000);
    g_assert_cmpuint (r->status, ==, 200);
    g_assert_cmpstr (kv_raw_response_header (r, "transfer-encoding"), ==, "chunked");
    g_assert_cmpstr (kv_raw_response_header (r, "content-type"), ==, "text/plain; charset=utf-8");
  }

  deadline = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
  while (kv_stats_get_pending_output (stats) > 0 && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  g_assert_cmpuint (kv_stats_get_pending_output (stats), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add ("/kv/listing/slow-readers", Fixture, NULL, fixture_setup, test_slow_readers,
              fixture_teardown);
  g_test_add ("/kv/listing/streamed-whole", Fixture, NULL, fixture_setup, test_streamed_whole,
              fixture_teardown);
  g_test_add ("/kv/listing/busy", Fixture, NULL, fixture_setup, test_busy, fixture_teardown);

  return g_test_run ();
}
