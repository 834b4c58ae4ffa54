/* test-stop.c: the built crafty-kv stopping on SIGTERM and SIGINT with
 * requests in flight
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "kv-test-utils.h"

#define N_CLIENTS 32

/* Clients are plain blocking sockets, so that a test can send half a
 * request and decide when to send the rest. */
static GSocket *
client_connect (guint16   port,
                GError  **error)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, port);
  g_autoptr(GSocket) socket = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         error);
  if (socket == NULL)
    return NULL;
  /* A test that waits this long has failed. */
  g_socket_set_timeout (socket, 10);
  if (!g_socket_connect (socket, address, NULL, error))
    return NULL;

  return g_steal_pointer (&socket);
}

static void
client_send (GSocket    *client,
             const char *text)
{
  g_autoptr(GError) error = NULL;
  gsize len = strlen (text);

  g_assert_cmpint (g_socket_send (client, text, len, NULL, &error), ==, len);
  g_assert_no_error (error);
}

typedef struct
{
  guint status;
  gboolean close;
  char *body;
} Response;

static void
response_free (Response *response)
{
  g_free (response->body);
  g_free (response);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Response, response_free)

/* Reads one response; %NULL when the connection ends before one came. */
static Response *
client_receive (GSocket *client)
{
  g_autoptr(GString) data = g_string_new (NULL);
  g_autoptr(Response) response = g_new0 (Response, 1);
  g_auto(GStrv) lines = NULL;
  gsize header_len, body_len = 0;
  const char *end;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      char buffer[4096];
      gssize len;

      end = strstr (data->str, "\r\n\r\n");
      if (end != NULL)
        {
          header_len = end + 4 - data->str;
          if (data->len >= header_len + body_len)
            break;
        }

      len = g_socket_receive (client, buffer, sizeof buffer, NULL, &error);
      if (len < 0 && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
        g_assert_no_error (error);
      if (len <= 0)
        {
          /* Refused before being read: nothing at all came back. */
          g_assert_cmpuint (data->len, ==, 0);
          return NULL;
        }
      g_string_append_len (data, buffer, len);

      end = strstr (data->str, "\r\n\r\n");
      if (end != NULL)
        {
          const char *length = strstr (data->str, "\r\nContent-Length: ");

          g_assert_true (length != NULL && length < end);
          body_len = g_ascii_strtoull (length + strlen ("\r\nContent-Length: "), NULL, 10);
        }
    }

  lines = g_strsplit (data->str, "\r\n", -1);
  g_assert_true (g_str_has_prefix (lines[0], "HTTP/1.1 "));
  response->status = g_ascii_strtoull (lines[0] + strlen ("HTTP/1.1 "), NULL, 10);
  response->close = strstr (data->str, "\r\nConnection: close\r\n") != NULL;
  response->body = g_strndup (data->str + header_len, body_len);

  return g_steal_pointer (&response);
}

static void
assert_response (GSocket    *client,
                 guint       status,
                 const char *body)
{
  g_autoptr(Response) response = client_receive (client);

  g_assert_nonnull (response);
  g_assert_cmpuint (response->status, ==, status);
  g_assert_cmpstr (response->body, ==, body);
}

static char *
put_request (const char *key,
             const char *value)
{
  return g_strdup_printf ("PUT /kv/%s HTTP/1.1\r\n"
                          "Host: 127.0.0.1\r\n"
                          "Content-Length: %zu\r\n"
                          "\r\n%s", key, strlen (value), value);
}

/* Sends a PUT's headers and @sent bytes of its body, once the server has
 * read the headers: its 100 Continue says so. The request is then surely
 * in flight. */
static void
start_put (GSocket    *client,
           const char *key,
           const char *value,
           gsize       sent)
{
  g_autofree char *headers = NULL;
  g_autofree char *body = g_strndup (value, sent);
  g_autoptr(GString) interim = g_string_new (NULL);

  headers = g_strdup_printf ("PUT /kv/%s HTTP/1.1\r\n"
                             "Host: 127.0.0.1\r\n"
                             "Content-Length: %zu\r\n"
                             "Expect: 100-continue\r\n"
                             "\r\n", key, strlen (value));
  client_send (client, headers);

  /* Byte by byte: nothing after the interim response's end is ours. */
  while (!g_str_has_suffix (interim->str, "\r\n\r\n"))
    {
      g_autoptr(GError) error = NULL;
      char c;

      g_assert_cmpint (g_socket_receive (client, &c, 1, NULL, &error), ==, 1);
      g_assert_no_error (error);
      g_string_append_c (interim, c);
    }
  g_assert_true (g_str_has_prefix (interim->str, "HTTP/1.1 100 Continue\r\n"));

  client_send (client, body);
}

static void
assert_refused (guint16 port)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) client = client_connect (port, &error);

  g_assert_null (client);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
}

static void
test_graceful (void)
{
  const char *args[] = { "--shutdown-timeout=30", NULL };
  KvTestDaemon *daemon = kv_test_daemon_start (args);
  guint16 port = kv_test_daemon_get_port (daemon);
  GSocket *clients[N_CLIENTS];
  g_autofree char *stopping = NULL;
  g_autofree char *log = NULL;
  g_autofree char *expected_log = NULL;
  gint64 signalled;

  g_test_summary ("On SIGTERM, crafty-kv refuses new connections, answers every request "
                  "it was reading, with writes visible to later reads, and exits 0 as "
                  "soon as they are done");

  /* Every client has one answered request behind it, so its connection is
   * surely accepted, and then half a request in flight: even clients half
   * a PUT of a new value, odd ones half a GET of the key their even
   * neighbour writes. The GETs' bytes are read while the PUTs hold the
   * server up, at the latest. */
  for (guint i = 0; i < N_CLIENTS; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *key = g_strdup_printf ("key-%u", i - i % 2);
      g_autofree char *put = put_request (key, "before");

      clients[i] = client_connect (port, &error);
      g_assert_no_error (error);
      client_send (clients[i], put);
      assert_response (clients[i], 200, "");
    }
  for (guint i = 0; i < N_CLIENTS; i += 2)
    {
      g_autofree char *key = g_strdup_printf ("key-%u", i);
      g_autofree char *get = g_strdup_printf ("GET /kv/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n", key);

      start_put (clients[i], key, "after-the-signal", 5);
      client_send (clients[i + 1], get);
    }

  kv_test_daemon_signal (daemon, SIGTERM);
  signalled = g_get_monotonic_time ();
  stopping = kv_test_daemon_wait_notify (daemon, "STOPPING=1", 10 * 1000);
  g_assert_nonnull (stopping);
  assert_refused (port);

  /* The writers finish first, then the readers: each read sees the write. */
  for (guint i = 0; i < N_CLIENTS; i += 2)
    {
      g_autoptr(Response) response = NULL;

      client_send (clients[i], "-the-signal");
      response = client_receive (clients[i]);
      g_assert_nonnull (response);
      g_assert_cmpuint (response->status, ==, 200);
      g_assert_true (response->close);
    }
  for (guint i = 1; i < N_CLIENTS; i += 2)
    {
      g_autoptr(Response) response = NULL;

      client_send (clients[i], "\r\n");
      response = client_receive (clients[i]);
      g_assert_nonnull (response);
      g_assert_cmpuint (response->status, ==, 200);
      g_assert_cmpstr (response->body, ==, "after-the-signal");
      g_assert_true (response->close);
    }

  g_assert_cmpint (kv_test_daemon_wait (daemon), ==, 0);
  /* It did not wait for the 30 s timeout. */
  g_assert_cmpint (g_get_monotonic_time () - signalled, <, 10 * G_USEC_PER_SEC);

  /* Every request it read was answered: as many as the clients got. */
  log = kv_test_daemon_dup_log (daemon);
  expected_log = g_strdup_printf ("Stopped gracefully after SIGTERM; requests served: %u, "
                                  "abandoned: 0\n", 2 * N_CLIENTS);
  g_assert_nonnull (strstr (log, expected_log));

  for (guint i = 0; i < N_CLIENTS; i++)
    g_object_unref (clients[i]);
  kv_test_daemon_free (daemon);
}

static void
test_idle_connections (void)
{
  KvTestDaemon *daemon = kv_test_daemon_start (NULL);
  g_autoptr(GSocket) idle = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *put = put_request ("k", "v");
  g_autofree char *log = NULL;
  char buffer[16];

  g_test_summary ("Idle keep-alive connections do not hold up a stop, and are closed");

  idle = client_connect (kv_test_daemon_get_port (daemon), &error);
  g_assert_no_error (error);
  client_send (idle, put);
  assert_response (idle, 200, "");

  kv_test_daemon_signal (daemon, SIGINT);
  g_assert_cmpint (kv_test_daemon_wait (daemon), ==, 0);
  g_assert_cmpint (g_socket_receive (idle, buffer, sizeof buffer, NULL, &error), ==, 0);
  g_assert_no_error (error);

  log = kv_test_daemon_dup_log (daemon);
  g_assert_nonnull (strstr (log, "Stopped gracefully after SIGINT; requests served: 1, "
                                 "abandoned: 0\n"));
  kv_test_daemon_free (daemon);
}

static void
test_timeout (void)
{
  const char *args[] = { "--shutdown-timeout=1", NULL };
  KvTestDaemon *daemon = kv_test_daemon_start (args);
  g_autoptr(GSocket) stuck = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *log = NULL;
  gint64 signalled;

  g_test_summary ("A request that does not finish is abandoned after --shutdown-timeout, "
                  "and crafty-kv exits 0");

  stuck = client_connect (kv_test_daemon_get_port (daemon), &error);
  g_assert_no_error (error);
  start_put (stuck, "k", "never-finished", 5);

  kv_test_daemon_signal (daemon, SIGTERM);
  signalled = g_get_monotonic_time ();
  g_assert_cmpint (kv_test_daemon_wait (daemon), ==, 0);
  g_assert_cmpint (g_get_monotonic_time () - signalled, >=, 900 * G_TIME_SPAN_MILLISECOND);
  g_assert_null (client_receive (stuck));

  log = kv_test_daemon_dup_log (daemon);
  g_assert_nonnull (strstr (log, "Stopped when the shutdown timeout ran out after SIGTERM; "
                                 "requests served: 0, abandoned: 1\n"));
  kv_test_daemon_free (daemon);
}

static void
test_second_signal (void)
{
  const char *args[] = { "--shutdown-timeout=60", "--threads=2", NULL };
  KvTestDaemon *daemon = kv_test_daemon_start (args);
  g_autoptr(GSocket) stuck = NULL;
  g_autoptr(GSocket) stuck_on_worker = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *stopping = NULL;
  g_autofree char *log = NULL;
  gint64 signalled;

  g_test_summary ("A second signal during a graceful stop exits at once, with status 1; "
                  "requests in flight on every thread are counted");

  /* Two connections: the listener hands one to each of the two threads. */
  stuck = client_connect (kv_test_daemon_get_port (daemon), &error);
  g_assert_no_error (error);
  start_put (stuck, "k", "never-finished", 5);
  stuck_on_worker = client_connect (kv_test_daemon_get_port (daemon), &error);
  g_assert_no_error (error);
  start_put (stuck_on_worker, "j", "never-finished", 5);

  kv_test_daemon_signal (daemon, SIGTERM);
  stopping = kv_test_daemon_wait_notify (daemon, "STOPPING=1", 10 * 1000);
  g_assert_cmpstr (stopping, ==, "STOPPING=1\nSTATUS=Stopping, requests in flight: 2");

  kv_test_daemon_signal (daemon, SIGINT);
  signalled = g_get_monotonic_time ();
  g_assert_cmpint (kv_test_daemon_wait (daemon), ==, 1);
  g_assert_cmpint (g_get_monotonic_time () - signalled, <, 5 * G_USEC_PER_SEC);
  g_assert_null (client_receive (stuck));
  g_assert_null (client_receive (stuck_on_worker));

  log = kv_test_daemon_dup_log (daemon);
  g_assert_nonnull (strstr (log, "Stopped at once on a second signal after SIGTERM; "
                                 "requests served: 0, abandoned: 2\n"));
  kv_test_daemon_free (daemon);
}

/* What comes after the last response: TRUE for the end of the stream,
 * FALSE for a reset. */
static gboolean
client_ends_cleanly (GSocket *client)
{
  g_autoptr(GError) error = NULL;
  char buffer[256];
  gssize len = g_socket_receive (client, buffer, sizeof buffer, NULL, &error);

  if (len < 0)
    g_test_message ("After the last answer: %s", error->message);
  return len == 0;
}

static void
test_pipelined (void)
{
  const char *args[] = { "--threads=1", NULL };
  KvTestDaemon *daemon = kv_test_daemon_start (args);
  g_autoptr(GSocket) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) pipelined = g_string_new (NULL);
  g_autoptr(Response) answer = NULL;
  g_autofree char *stopping = NULL;
  g_autofree char *log = NULL;
  g_autofree char *served = NULL;
  guint answered = 0;

  g_test_summary ("On SIGTERM, of requests pipelined on one connection, the one in flight "
                  "is answered with “Connection: close”, and the connection then ends "
                  "cleanly, not with a reset; the stop's log counts what was answered");

  client = client_connect (kv_test_daemon_get_port (daemon), &error);
  g_assert_no_error (error);
  start_put (client, "k", "hello", 2);

  kv_test_daemon_signal (daemon, SIGTERM);
  stopping = kv_test_daemon_wait_notify (daemon, "STOPPING=1", 10 * 1000);
  g_assert_nonnull (stopping);

  /* The rest of the PUT, and more requests behind it in the same write. */
  g_string_append (pipelined, "llo");
  for (guint i = 0; i < 20; i++)
    g_string_append (pipelined, "GET /kv/k HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  client_send (client, pipelined->str);

  answer = client_receive (client);
  g_assert_nonnull (answer);
  g_assert_cmpuint (answer->status, ==, 200);
  g_assert_true (answer->close);
  answered++;
  g_assert_true (client_ends_cleanly (client));

  g_assert_cmpint (kv_test_daemon_wait (daemon), ==, 0);
  log = kv_test_daemon_dup_log (daemon);
  served = g_strdup_printf ("Stopped gracefully after SIGTERM; requests served: %u, "
                            "abandoned: 0\n", answered);
  g_assert_nonnull (strstr (log, served));
  kv_test_daemon_free (daemon);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/stop/graceful", test_graceful);
  g_test_add_func ("/kv/stop/idle-connections", test_idle_connections);
  g_test_add_func ("/kv/stop/timeout", test_timeout);
  g_test_add_func ("/kv/stop/second-signal", test_second_signal);
  g_test_add_func ("/kv/stop/pipelined", test_pipelined);

  return g_test_run ();
}
