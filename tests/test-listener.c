/* test-listener.c: crafty-kv's own accept loop
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <sys/resource.h>

#include "net/kv-listener.h"
#include "storage/kv-map-storage.h"
#include "kv-test-raw.h"
#include "http/kv-response.h"
#include "kv-test-utils.h"
#include "kv-worker.h"

static void
test_out_of_descriptors (void)
{
  struct rlimit low = { 32, 32 };
  KvTestDaemon *daemon;
  g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  guint16 port;
  guint answered = 0;
  gint64 deadline;
  GPid pid;

  g_test_summary ("A connection flood past the file descriptor limit (EMFILE) pauses "
                  "accepting; once connections end, new ones are served again");

  daemon = kv_test_daemon_start ((const char *[]) { "--max-connections=1000", NULL });
  port = kv_test_daemon_get_port (daemon);

  /* A limit that a flood of 60 connections exceeds; libsoup 3.2's own
   * listener would stop accepting for good. Set on the running daemon,
   * not inherited: valgrind fakes the limits of the process it runs. */
  pid = atoi (g_subprocess_get_identifier (kv_test_daemon_get_subprocess (daemon)));
  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, &low, NULL), ==, 0);

  for (guint i = 0; i < 60; i++)
    {
      GSocket *socket = kv_raw_connect (port);

      kv_raw_send_string (socket, "GET /kv/a HTTP/1.1\r\nHost: localhost\r\n\r\n");
      g_ptr_array_add (held, socket);
    }
  /* Those that could be accepted are answered by now. */
  g_usleep (500 * 1000);
  for (guint i = 0; i < held->len; i++)
    {
      g_autoptr(KvRawResponse) response =
        kv_raw_read_response (g_ptr_array_index (held, i), FALSE, 10);

      if (response->status == 404)
        answered++;
    }
  g_test_message ("%u of %u connections answered while out of descriptors", answered, held->len);
  g_assert_cmpuint (answered, >, 0);
  g_assert_cmpuint (answered, <, held->len);

  /* Let them all go: the backlog is taken, then new connections. */
  g_ptr_array_set_size (held, 0);
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  for (guint served = 0; served < 20; )
    {
      g_autoptr(KvRawResponse) response = kv_raw_simple (port, "GET", "/kv/a", NULL);

      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      if (response->status == 404)
        served++;
    }

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

/* ---- One listener, two servers, two threads ---- */

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

typedef struct
{
  GMainContext *context;
  GMainLoop *loop;
  KvListener *listener;
  guint16 port;
  KvWorker **workers;
  guint n_workers;
  GMutex lock;
  GCond cond;
  gboolean ready;
} Acceptor;

static gpointer
acceptor_thread (gpointer data)
{
  Acceptor *a = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GBytes) forbidden = NULL;
  GSocket *socket;

  g_main_context_push_thread_default (a->context);
  forbidden = kv_response_build_refusal (403, "forbidden", NULL, NULL, FALSE);
  a->listener = kv_listener_new (64, forbidden);
  socket = kv_listener_add_address (a->listener, address, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  a->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  for (guint i = 0; i < a->n_workers; i++)
    kv_worker_attach (a->workers[i], a->listener);

  g_mutex_lock (&a->lock);
  a->ready = TRUE;
  g_cond_signal (&a->cond);
  g_mutex_unlock (&a->lock);

  g_main_loop_run (a->loop);

  g_assert_finalize_object (g_steal_pointer (&a->listener));
  g_main_context_pop_thread_default (a->context);
  return NULL;
}

static void
wait_ready (GMutex   *lock,
            GCond    *cond,
            gboolean *ready)
{
  g_mutex_lock (lock);
  while (!*ready)
    g_cond_wait (cond, lock);
  g_mutex_unlock (lock);
}

static void
test_two_servers (void)
{
  g_autoptr(KvStorage) storage = KV_STORAGE (kv_map_storage_new ());
  g_autoptr(KvConfig) config = kv_config_new ();
  g_autoptr(KvStats) stats = kv_stats_new ();
  KvWorker *workers[2];
  Acceptor acceptor = { 0, };
  gint64 deadline;
  GThread *acceptor_id;
  KvLimits limits;

  g_test_summary ("One listener feeds two KvWorkers in turn, each a KvServer in its own "
                  "thread and main context, sharing one store and one set of counters");

  kv_config_get_limits (config, &limits);
  for (guint i = 0; i < G_N_ELEMENTS (workers); i++)
    workers[i] = kv_worker_new (storage, stats, &limits, NULL);

  acceptor.context = g_main_context_new ();
  acceptor.loop = g_main_loop_new (acceptor.context, FALSE);
  acceptor.workers = workers;
  acceptor.n_workers = G_N_ELEMENTS (workers);
  g_mutex_init (&acceptor.lock);
  g_cond_init (&acceptor.cond);
  acceptor_id = g_thread_new ("kv-acceptor", acceptor_thread, &acceptor);
  wait_ready (&acceptor.lock, &acceptor.cond, &acceptor.ready);

  for (guint i = 0; i < 20; i++)
    {
      g_autofree char *value = g_strdup_printf ("value %u", i);
      g_autoptr(KvRawResponse) put = kv_raw_simple (acceptor.port, "PUT", "/kv/shared", value);
      g_autoptr(KvRawResponse) get = kv_raw_simple (acceptor.port, "GET", "/kv/shared", NULL);

      g_assert_cmpuint (put->status, ==, 200);
      g_assert_cmpuint (get->status, ==, 200);
      g_assert_true (kv_raw_response_body_is (get, value));
    }

  /* Round-robin: each served half, and every request was answered. */
  g_assert_cmpuint (kv_worker_get_n_connections (workers[0]), ==, 20);
  g_assert_cmpuint (kv_worker_get_n_connections (workers[1]), ==, 20);
  g_assert_cmpuint (kv_stats_get (stats, KV_STAT_CONNECTIONS), ==, 40);
  /* A server counts a request once it has finished writing the answer,
   * which may be just after the client has read it. */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (kv_stats_get (stats, KV_STAT_REQUESTS) < 40 && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  g_assert_cmpuint (kv_stats_get (stats, KV_STAT_REQUESTS), ==, 40);

  g_main_context_invoke (acceptor.context, quit_loop, acceptor.loop);
  g_thread_join (acceptor_id);
  g_main_loop_unref (acceptor.loop);
  g_main_context_unref (acceptor.context);
  g_mutex_clear (&acceptor.lock);
  g_cond_clear (&acceptor.cond);

  /* The listener is gone: nothing refers to the workers any more. */
  for (guint i = 0; i < G_N_ELEMENTS (workers); i++)
    g_assert_finalize_object (workers[i]);
}

static void
test_not_listening (void)
{
  g_autoptr(GBytes) forbidden = kv_response_build_refusal (403, "forbidden", NULL, NULL, FALSE);
  g_autoptr(KvListener) listener = kv_listener_new (1, forbidden);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) error = NULL;

  g_test_summary ("A socket that is not listening is refused");

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                         &error);
  g_assert_no_error (error);
  g_assert_false (kv_listener_add_socket (listener, socket, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_assert_cmpuint (kv_listener_get_sockets (listener)->len, ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/listener/out-of-descriptors", test_out_of_descriptors);
  g_test_add_func ("/kv/listener/two-servers", test_two_servers);
  g_test_add_func ("/kv/listener/not-listening", test_not_listening);

  return g_test_run ();
}
