/* test-async.c: a store that answers late holds up no one but its caller
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "kv-test-raw.h"
#include "kv-test-slow-storage.h"
#include "kv-test-sse.h"
#include "kv-test-utils.h"

#define DELAY_MS 800

typedef struct
{
  KvTestSlowStorage *storage;
  KvTestServer *server;
  guint16 port;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  fixture->storage = kv_test_slow_storage_new (DELAY_MS);
  /* One worker: every connection below is served by the same thread. */
  fixture->server = kv_test_server_start (KV_STORAGE (fixture->storage));
  fixture->port = kv_test_server_get_port (fixture->server);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  kv_test_server_stop (fixture->server);
  g_assert_finalize_object (fixture->storage);
}

/* The store has a call under way, within a few seconds. */
static void
wait_pending (Fixture *fixture)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (kv_test_slow_storage_get_n_pending (fixture->storage) == 0 &&
         g_get_monotonic_time () < deadline)
    g_usleep (1000);
  g_assert_cmpuint (kv_test_slow_storage_get_n_pending (fixture->storage), ==, 1);
}

static void
test_others_go_on (Fixture       *fixture,
                   gconstpointer  user_data)
{
  g_autoptr(GSocket) slow = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) put = NULL;
  g_autoptr(KvRawResponse) answer = NULL;

  g_test_summary ("While one request waits for the store, the same worker answers others, "
                  "and the waiting one gets its answer afterwards");

  put = kv_raw_simple (fixture->port, "PUT", "/kv/slow", "late");
  g_assert_cmpuint (put->status, ==, 200);

  kv_raw_send_string (slow, "GET /kv/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  /* The slow call is under way in the store, and stays so while ... */
  wait_pending (fixture);

  /* ... twenty other requests are answered on other connections. */
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(KvRawResponse) fast = kv_raw_simple (fixture->port, "PUT", "/kv/fast", "now");

      g_assert_cmpuint (fast->status, ==, 200);
    }
  g_assert_cmpuint (kv_test_slow_storage_get_n_pending (fixture->storage), ==, 1);

  answer = kv_raw_read_response (slow, FALSE, 5000);
  g_assert_cmpuint (answer->status, ==, 200);
  g_assert_true (kv_raw_response_body_is (answer, "late"));
}

static void
test_cancelled_when_gone (Fixture       *fixture,
                          gconstpointer  user_data)
{
  g_autoptr(GSocket) gone = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) after = NULL;
  gint64 deadline;

  g_test_summary ("A call whose client goes away is cancelled, and the server goes on");

  kv_raw_send_string (gone, "PUT /kv/slow-put HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Content-Length: 4\r\n\r\nlost");
  wait_pending (fixture);
  g_socket_close (gone, NULL);

  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (kv_test_slow_storage_get_n_cancelled (fixture->storage) == 0 &&
         g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (kv_test_slow_storage_get_n_cancelled (fixture->storage), ==, 1);

  /* Nothing was applied, and the server answers. */
  after = kv_raw_simple (fixture->port, "GET", "/kv/slow-put", NULL);
  g_assert_cmpuint (after->status, ==, 404);
}

static void
test_watch_later (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autoptr(KvSseClient) watch = NULL;
  g_autoptr(KvSseBlock) block = NULL;
  g_autoptr(KvRawResponse) put = NULL;
  g_autoptr(KvRawResponse) gone = NULL;

  g_test_summary ("A watch whose subscription the store makes later waits for it, then "
                  "streams; one the store refuses later is answered 410");

  watch = kv_sse_client_new (fixture->port, "/watch?key=slow-w", NULL);
  block = kv_sse_client_next (watch, 5000);
  g_assert_nonnull (block);
  g_assert_cmpuint (kv_sse_client_get_status (watch), ==, 200);
  g_assert_cmpstr (block->id, ==, "0");
  g_clear_pointer (&block, kv_sse_block_free);

  put = kv_raw_simple (fixture->port, "PUT", "/kv/slow-w", "v");
  g_assert_cmpuint (put->status, ==, 200);
  block = kv_sse_client_next (watch, 5000);
  g_assert_nonnull (block);
  g_assert_cmpstr (block->event, ==, "put");
  g_assert_cmpstr (block->id, ==, "1");

  gone = kv_raw_simple (fixture->port, "GET", "/watch?prefix=slow&since=7", NULL);
  g_assert_cmpuint (gone->status, ==, 410);
  g_assert_true (kv_raw_response_body_is (gone, "revision ahead of the store\n"));
  g_assert_cmpstr (kv_raw_response_header (gone, "KV-Oldest-Revision"), ==, "0");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add ("/kv/async/others-go-on", Fixture, NULL, fixture_setup, test_others_go_on,
              fixture_teardown);
  g_test_add ("/kv/async/watch-later", Fixture, NULL, fixture_setup, test_watch_later,
              fixture_teardown);
  g_test_add ("/kv/async/cancelled-when-gone", Fixture, NULL, fixture_setup,
              test_cancelled_when_gone, fixture_teardown);

  return g_test_run ();
}
