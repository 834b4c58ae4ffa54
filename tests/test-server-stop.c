/* test-server-stop.c: KvServer on sockets of the caller's, its count of
 * requests in flight and its graceful stop, in process
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "http/kv-response.h"
#include "http/kv-server.h"
#include "kv-config.h"
#include "net/kv-listener.h"
#include "storage/kv-map-storage.h"

/* The server runs in the test's main context, which the test iterates
 * while its clients, plain blocking sockets, wait. */
typedef struct
{
  KvStorage *storage;
  KvServer *server;
  KvListener *listener;
  GSocketAddress *address;
  GAsyncResult *stop_result;
} Fixture;

/* What the daemon's listener does with each connection it accepts. */
static void
on_connection (GSocket  *socket,
               gpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  kv_server_accept_connection (user_data, socket, &error);
  g_assert_no_error (error);
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(KvConfig) config = kv_config_new ();
  g_autoptr(GBytes) forbidden = kv_response_build_refusal (403, "forbidden", NULL, NULL, FALSE);
  KvLimits limits;

  kv_config_get_limits (config, &limits);
  fixture->storage = KV_STORAGE (kv_map_storage_new ());
  fixture->server = kv_server_new (fixture->storage, NULL, &limits, NULL);
  fixture->listener = kv_listener_new (kv_config_get_max_connections (config), forbidden);
  kv_listener_add_target (fixture->listener, NULL, on_connection, fixture->server, NULL);

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         &error);
  g_assert_no_error (error);
  g_socket_bind (socket, any_port, TRUE, &error);
  g_assert_no_error (error);
  g_socket_listen (socket, &error);
  g_assert_no_error (error);
  fixture->address = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);

  g_assert_true (kv_listener_add_socket (fixture->listener, socket, &error));
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_clear_object (&fixture->stop_result);
  g_assert_finalize_object (fixture->listener);
  g_assert_finalize_object (fixture->server);
  g_assert_finalize_object (fixture->storage);
  g_object_unref (fixture->address);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static GSocket *
client_connect (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) client = NULL;

  client = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         &error);
  g_assert_no_error (error);
  g_socket_connect (client, fixture->address, NULL, &error);
  g_assert_no_error (error);

  return g_steal_pointer (&client);
}

static void
client_send (GSocket    *client,
             const char *text)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_socket_send (client, text, strlen (text), NULL, &error), ==, strlen (text));
  g_assert_no_error (error);
}

/* Everything the server sends until it closes the connection. */
static char *
client_read_all (Fixture *fixture,
                 GSocket *client)
{
  g_autoptr(GString) response = g_string_new (NULL);

  g_socket_set_blocking (client, FALSE);
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      char buffer[1024];
      gssize len = g_socket_receive (client, buffer, sizeof buffer, NULL, &error);

      if (len == 0)
        break;
      if (len > 0)
        g_string_append_len (response, buffer, len);
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        g_main_context_iteration (NULL, TRUE);
      else
        g_assert_no_error (error);
    }

  return g_string_free (g_steal_pointer (&response), FALSE);
}

/* As the daemon stops: no new connection, then the server drains. */
static void on_stopped (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data);

static void
start_stop (Fixture      *fixture,
            GCancellable *cancellable)
{
  kv_listener_close (fixture->listener);
  kv_server_stop_async (fixture->server, cancellable, on_stopped, fixture);
}

static void
iterate_until_in_flight (Fixture *fixture,
                         guint    n)
{
  while (kv_server_get_n_requests_in_flight (fixture->server) != n)
    g_main_context_iteration (NULL, TRUE);
}

static void
iterate_until_served (Fixture *fixture,
                      guint    n)
{
  while (kv_server_get_n_requests_served (fixture->server) != n)
    g_main_context_iteration (NULL, TRUE);
}

static void
on_stopped (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Fixture *fixture = user_data;

  fixture->stop_result = g_object_ref (result);
  g_main_context_wakeup (NULL);
}

static void
assert_refused (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) client = NULL;

  client = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         &error);
  g_assert_no_error (error);
  g_assert_false (g_socket_connect (client, fixture->address, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
}

static void
test_listen_socket (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autoptr(GSocket) client = client_connect (fixture);
  g_autofree char *response = NULL;

  g_test_summary ("The server answers on a socket that the caller made");

  client_send (client, "GET /kv/absent HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  response = client_read_all (fixture, client);
  g_assert_true (g_str_has_prefix (response, "HTTP/1.1 404 Not Found\r\n"));
  g_assert_true (g_str_has_suffix (response, "\r\n\r\nkey not found\n"));
  g_assert_cmpuint (kv_server_get_n_requests_served (fixture->server), ==, 1);
}

static void
test_in_flight (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autoptr(GSocket) idle = NULL;
  g_autoptr(GSocket) cut = NULL;
  g_autoptr(GError) error = NULL;
  char buffer[1024];

  g_test_summary ("A request is in flight from its first byte until it is answered or "
                  "its connection goes, even when cut before its request line");

  /* A connection's first request counts from the moment it is accepted. */
  idle = client_connect (fixture);
  iterate_until_in_flight (fixture, 1);

  /* Answered, and the connection kept alive: nothing in flight. */
  client_send (idle, "PUT /kv/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\r\nx");
  iterate_until_served (fixture, 1);
  iterate_until_in_flight (fixture, 0);
  g_assert_cmpint (g_socket_receive (idle, buffer, sizeof buffer, NULL, &error), >, 0);
  g_assert_no_error (error);
  g_assert_cmpuint (kv_server_get_n_requests_served (fixture->server), ==, 1);

  /* libsoup 3.2 emits neither request-finished nor request-aborted for a
   * request whose request line never came. */
  cut = client_connect (fixture);
  client_send (cut, "GET /kv/a HT");
  iterate_until_in_flight (fixture, 1);
  g_socket_close (cut, &error);
  g_assert_no_error (error);
  iterate_until_in_flight (fixture, 0);
  g_assert_cmpuint (kv_server_get_n_requests_served (fixture->server), ==, 1);
}

static void
test_stop_idle (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autoptr(GSocket) idle = client_connect (fixture);
  g_autoptr(GError) error = NULL;
  char buffer[1024];

  g_test_summary ("With nothing in flight, a stop completes at once, whatever keep-alive "
                  "connections are open");

  client_send (idle, "GET /kv/a HTTP/1.1\r\nHost: localhost\r\n\r\n");
  iterate_until_served (fixture, 1);
  iterate_until_in_flight (fixture, 0);
  g_assert_cmpint (g_socket_receive (idle, buffer, sizeof buffer, NULL, &error), >, 0);

  start_stop (fixture, NULL);
  while (fixture->stop_result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (kv_server_stop_finish (fixture->server, fixture->stop_result, &error));
  g_assert_no_error (error);
  assert_refused (fixture);
}

static void
test_stop_waits (Fixture       *fixture,
                 gconstpointer  user_data)
{
  g_autoptr(GSocket) reading = client_connect (fixture);
  g_autoptr(GSocket) answered = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *response = NULL;

  g_test_summary ("A stop refuses new connections at once, and completes when the "
                  "requests in flight have been answered");

  client_send (reading, "PUT /kv/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\n\r\nhal");
  iterate_until_in_flight (fixture, 1);

  start_stop (fixture, NULL);
  assert_refused (fixture);
  for (guint i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_null (fixture->stop_result);

  client_send (reading, "f-a");
  response = client_read_all (fixture, reading);
  g_assert_true (g_str_has_prefix (response, "HTTP/1.1 200 OK\r\n"));
  /* The connection closes after the answer: no more requests on it. */
  g_assert_nonnull (strstr (response, "\r\nConnection: close\r\n"));

  while (fixture->stop_result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (kv_server_stop_finish (fixture->server, fixture->stop_result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (kv_server_get_n_requests_served (fixture->server), ==, 1);
}

static void
test_stop_cancelled (Fixture       *fixture,
                     gconstpointer  user_data)
{
  g_autoptr(GSocket) stuck = client_connect (fixture);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;

  g_test_summary ("Cancelling a stop ends the wait for requests in flight");

  client_send (stuck, "GET /kv/a HTTP/1.1\r\n");
  iterate_until_in_flight (fixture, 1);

  start_stop (fixture, cancellable);
  g_cancellable_cancel (cancellable);
  while (fixture->stop_result == NULL)
    g_main_context_iteration (NULL, TRUE);

  g_assert_false (kv_server_stop_finish (fixture->server, fixture->stop_result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (kv_server_get_n_requests_in_flight (fixture->server), ==, 1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add ("/kv/server/listen-socket", Fixture, NULL, fixture_setup, test_listen_socket,
              fixture_teardown);
  g_test_add ("/kv/server/in-flight", Fixture, NULL, fixture_setup, test_in_flight,
              fixture_teardown);
  g_test_add ("/kv/server/stop/idle", Fixture, NULL, fixture_setup, test_stop_idle,
              fixture_teardown);
  g_test_add ("/kv/server/stop/waits", Fixture, NULL, fixture_setup, test_stop_waits,
              fixture_teardown);
  g_test_add ("/kv/server/stop/cancelled", Fixture, NULL, fixture_setup, test_stop_cancelled,
              fixture_teardown);

  return g_test_run ();
}
