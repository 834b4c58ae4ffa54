/* test-access.c: only the owner gets in
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>

#include "access/kv-access-policy.h"
#include "storage/kv-map-storage.h"
#include "net/kv-peer.h"
#include "kv-test-raw.h"
#include "kv-test-utils.h"

#define TOKEN "s3cr3t-t0ken-for-tests"

/* ---- A server in a thread of its own, on a socket of the test's ---- */

typedef struct
{
  KvStorage *storage;
  KvConfig *config;
  GSocket *socket;        /* (nullable): else 127.0.0.1, any port */
  char *dir;              /* (nullable): holds the token file or the socket */
  KvTestServer *server;
  guint16 port;
  GError *error;          /* from listening */
} Fixture;

/* Starts the server; FALSE (and f->error) if it refused to listen. */
static gboolean
start (Fixture *f)
{
  f->server = kv_test_server_start_full (f->storage, f->config, f->socket, &f->error);
  if (f->server != NULL)
    f->port = kv_test_server_get_port (f->server);

  return f->error == NULL;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  f->storage = KV_STORAGE (kv_map_storage_new ());
  f->config = kv_config_new ();
  f->dir = g_dir_make_tmp ("crafty-kv-access-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  user_data)
{
  g_clear_pointer (&f->server, kv_test_server_stop);
  g_clear_error (&f->error);
  g_clear_object (&f->socket);
  kv_test_remove_tree (f->dir);
  g_free (f->dir);
  g_object_unref (f->config);
  g_assert_finalize_object (f->storage);
}

static char *
write_token_file (Fixture *f,
                  int      mode)
{
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (f->dir, "token", NULL);

  g_file_set_contents (path, TOKEN "\n", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, mode), ==, 0);

  return path;
}

static void
put_value (guint16 port)
{
  g_autoptr(KvRawResponse) put = kv_raw_simple (port, "PUT", "/kv/secret", "owner's value");

  g_assert_cmpuint (put->status, ==, 200);
}

/* ---- curl, as us and as somebody else ---- */

static gboolean
can_run_as_nobody (void)
{
  g_autofree char *runuser = g_find_program_in_path ("runuser");
  g_autofree char *curl = g_find_program_in_path ("curl");

  if (curl == NULL)
    {
      g_test_skip ("curl is not installed");
      return FALSE;
    }
  if (runuser == NULL)
    {
      g_test_skip ("runuser is not installed: cannot act as another user");
      return FALSE;
    }
  if (geteuid () != 0)
    {
      g_test_skip ("runuser needs root: cannot act as another user");
      return FALSE;
    }
  return TRUE;
}

/* Runs curl (as nobody when @as_nobody) and returns the body followed by
 * a line with the status. */
static char *
curl (gboolean            as_nobody,
      const char * const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GBytes) out = NULL;
  g_autofree char *err = NULL;
  int status;

  if (as_nobody)
    {
      g_ptr_array_add (argv, (gpointer) "runuser");
      g_ptr_array_add (argv, (gpointer) "-u");
      g_ptr_array_add (argv, (gpointer) "nobody");
      g_ptr_array_add (argv, (gpointer) "--");
    }
  g_ptr_array_add (argv, (gpointer) "curl");
  /* No ~/.curlrc: nobody's home is not ours. */
  g_ptr_array_add (argv, (gpointer) "-q");
  g_ptr_array_add (argv, (gpointer) "-sS");
  g_ptr_array_add (argv, (gpointer) "-w");
  g_ptr_array_add (argv, (gpointer) "%{http_code}\n");
  for (gsize i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  out = kv_test_run ((const char * const *) argv->pdata, &status, &err);
  g_assert_cmpint (status, ==, 0);
  return g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
}

static void
test_loopback_other_user (Fixture       *f,
                          gconstpointer  user_data)
{
  g_autofree char *url = NULL;
  g_autofree char *theirs = NULL;
  g_autofree char *ours = NULL;

  g_test_summary ("Over the loopback, another local user gets 403 “forbidden”, the owner "
                  "gets the value");

  if (!can_run_as_nobody ())
    return;
  g_assert_true (start (f));
  put_value (f->port);

  url = g_strdup_printf ("http://127.0.0.1:%u/kv/secret", f->port);
  theirs = curl (TRUE, (const char *[]) { url, NULL });
  g_assert_cmpstr (theirs, ==, "forbidden\n403\n");
  ours = curl (FALSE, (const char *[]) { url, NULL });
  g_assert_cmpstr (ours, ==, "owner's value200\n");
}

static void
test_other_user_takes_no_slot (Fixture       *f,
                               gconstpointer  user_data)
{
  const char *script =
    "import socket, sys, time\n"
    "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
    "print('connected', flush=True)\n"
    "time.sleep(5)\n";
  /* Debian's, which any user may run (the PATH may lead to a private one). */
  const char *python = "/usr/bin/python3";
  g_autofree char *port = NULL;
  g_autoptr(GPtrArray) others = g_ptr_array_new_with_free_func (g_object_unref);

  g_test_summary ("Another user's connections are refused before they count: while they "
                  "are open, the owner's connections are served even with a single slot");

  if (!can_run_as_nobody ())
    return;
  if (!g_file_test (python, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("python3 is not installed: no client to hold connections open");
      return;
    }

  g_object_set (f->config, "max-connections", 1, NULL);
  g_assert_true (start (f));
  port = g_strdup_printf ("%u", f->port);

  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSubprocessLauncher) launcher =
        g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
      GSubprocess *other;
      g_autoptr(GDataInputStream) out = NULL;
      g_autofree char *line = NULL;

      /* Somewhere nobody may be. */
      g_subprocess_launcher_set_cwd (launcher, "/");
      other = g_subprocess_launcher_spawn (launcher, &error, "runuser", "-u", "nobody", "--",
                                           python, "-c", script, port, NULL);

      g_assert_no_error (error);
      out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (other));
      line = g_data_input_stream_read_line (out, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (line, ==, "connected");
      g_ptr_array_add (others, other);
    }

  /* Five connections of another user are open, and the one slot is free. */
  g_assert_cmpuint (kv_listener_get_n_connections (kv_test_server_get_listener (f->server)), ==,
                    0);
  for (guint i = 0; i < 10; i++)
    {
      KvListener *listener = kv_test_server_get_listener (f->server);
      gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC;
      g_autoptr(KvRawResponse) r = NULL;

      /* Our own last connection takes the server a moment to let go of. */
      while (kv_listener_get_n_connections (listener) > 0 && g_get_monotonic_time () < deadline)
        g_usleep (1000);
      r = kv_raw_simple (f->port, "GET", "/kv/absent", NULL);
      g_assert_cmpuint (r->status, ==, 404);
    }

  for (guint i = 0; i < others->len; i++)
    g_subprocess_force_exit (g_ptr_array_index (others, i));
}

static void
test_unix_other_user (Fixture       *f,
                      gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *path = g_build_filename (f->dir, "socket", NULL);
  g_autofree char *theirs = NULL;
  g_autofree char *ours = NULL;
  const char *url = "http://localhost/kv/secret";

  g_test_summary ("Over a Unix socket that anyone may open, another user gets 403, the "
                  "owner gets the value");

  if (!can_run_as_nobody ())
    return;

  f->socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                            G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  address = g_unix_socket_address_new (path);
  g_socket_bind (f->socket, address, FALSE, &error);
  g_assert_no_error (error);
  g_socket_listen (f->socket, &error);
  g_assert_no_error (error);
  /* The file system would stop them first; here only the guard can. */
  g_assert_cmpint (g_chmod (f->dir, 0755), ==, 0);
  g_assert_cmpint (g_chmod (path, 0777), ==, 0);
  g_assert_true (start (f));

  {
    g_autoptr(GSocket) socket = kv_raw_connect_address (address);
    g_autoptr(KvRawResponse) put = NULL;

    kv_raw_send_string (socket, "PUT /kv/secret HTTP/1.1\r\nHost: localhost\r\n"
                        "Content-Length: 13\r\n\r\nowner's value");
    put = kv_raw_read_response (socket, FALSE, 5000);
    g_assert_cmpuint (put->status, ==, 200);
  }

  theirs = curl (TRUE, (const char *[]) { "--unix-socket", path, url, NULL });
  g_assert_cmpstr (theirs, ==, "forbidden\n403\n");
  ours = curl (FALSE, (const char *[]) { "--unix-socket", path, url, NULL });
  g_assert_cmpstr (ours, ==, "owner's value200\n");
}

static void
test_peer_uid (Fixture       *f,
               gconstpointer  user_data)
{
  const char *addresses[] = { "127.0.0.1", "::1" };

  g_test_summary ("sock_diag tells the uid of a loopback peer, over IPv4 and IPv6");

  for (gsize i = 0; i < G_N_ELEMENTS (addresses); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string (addresses[i], 0);
      g_autoptr(GSocketAddress) bound = NULL;
      g_autoptr(GSocket) listener = NULL;
      g_autoptr(GSocket) client = NULL;
      g_autoptr(GSocket) accepted = NULL;
      uid_t uid = (uid_t) -1;

      listener = g_socket_new (g_socket_address_get_family (any), G_SOCKET_TYPE_STREAM,
                               G_SOCKET_PROTOCOL_DEFAULT, &error);
      g_assert_no_error (error);
      if (!g_socket_bind (listener, any, TRUE, &error))
        {
          /* No IPv6 loopback on this machine. */
          g_test_message ("Not testing %s: %s", addresses[i], error->message);
          continue;
        }
      g_socket_listen (listener, &error);
      g_assert_no_error (error);
      bound = g_socket_get_local_address (listener, &error);
      g_assert_no_error (error);

      client = kv_raw_connect_address (bound);
      accepted = g_socket_accept (listener, NULL, &error);
      g_assert_no_error (error);

      kv_peer_get_uid (accepted, -1, &uid, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (uid, ==, geteuid ());
    }
}

/* ---- Browsers ---- */

static void
test_host (Fixture       *f,
           gconstpointer  user_data)
{
  const char *allowed[] = {
    "localhost", "LOCALHOST", "localhost:%u", "127.0.0.1", "127.0.0.1:%u", "[::1]",
    "[::1]:%u",
  };
  const char *refused[] = {
    "evil.example", "evil.example:%u", "localhost.evil.example", "127.0.0.1.nip.io",
    "[::2]:%u", "", "10.0.0.1",
    /* Not even well-formed: libsoup may refuse them first, with 400. */
    "localhost:http", "[::1]x", "localhost:%u:%u",
  };

  g_test_summary ("A loopback listener answers only Host values naming the loopback; "
                  "others get 421 (DNS rebinding)");

  g_assert_true (start (f));
  put_value (f->port);

  for (gsize i = 0; i < G_N_ELEMENTS (allowed) + G_N_ELEMENTS (refused); i++)
    {
      gboolean ok = i < G_N_ELEMENTS (allowed);
      const char *format = ok ? allowed[i] : refused[i - G_N_ELEMENTS (allowed)];
      g_autofree char *host = NULL;
      g_autofree char *request = NULL;
      g_autoptr(KvRawResponse) response = NULL;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
      host = g_strdup_printf (format, f->port, f->port);
#pragma GCC diagnostic pop
      request = g_strdup_printf ("GET /kv/secret HTTP/1.1\r\nHost: %s\r\n\r\n", host);
      response = kv_raw_request (f->port, request);
      g_test_message ("Host: %s -> %u", host, response->status);
      if (ok)
        {
          g_assert_cmpuint (response->status, ==, 200);
        }
      else
        {
          if (response->status != 400)
            {
              g_assert_cmpuint (response->status, ==, 421);
              g_assert_true (kv_raw_response_body_is (response, "misdirected request\n"));
            }
        }
    }
}

static void
test_origin_refused (Fixture       *f,
                     gconstpointer  user_data)
{
  g_autoptr(KvRawResponse) plain = NULL;
  g_autoptr(KvRawResponse) browser = NULL;
  g_autoptr(KvRawResponse) preflight = NULL;

  g_test_summary ("By default a request with an Origin is 403, and no CORS header is ever "
                  "sent");

  g_assert_true (start (f));
  put_value (f->port);

  plain = kv_raw_simple (f->port, "GET", "/kv/secret", NULL);
  g_assert_cmpuint (plain->status, ==, 200);
  g_assert_null (kv_raw_response_header (plain, "Access-Control-Allow-Origin"));

  browser = kv_raw_request (f->port, "GET /kv/secret HTTP/1.1\r\nHost: localhost\r\n"
                            "Origin: http://localhost:3000\r\n\r\n");
  g_assert_cmpuint (browser->status, ==, 403);
  g_assert_true (kv_raw_response_body_is (browser, "forbidden\n"));
  g_assert_null (kv_raw_response_header (browser, "Access-Control-Allow-Origin"));

  preflight = kv_raw_request (f->port, "OPTIONS /kv/secret HTTP/1.1\r\nHost: localhost\r\n"
                              "Origin: http://localhost:3000\r\n"
                              "Access-Control-Request-Method: PUT\r\n\r\n");
  g_assert_cmpuint (preflight->status, ==, 403);
}

static void
test_origin_allowed (Fixture       *f,
                     gconstpointer  user_data)
{
  const char *origins[] = { "http://localhost:3000", NULL };
  g_autoptr(KvRawResponse) allowed = NULL;
  g_autoptr(KvRawResponse) other = NULL;
  g_autoptr(KvRawResponse) preflight = NULL;

  g_test_summary ("--allow-origin lets that origin in, with CORS headers and preflights; "
                  "other origins stay out");

  g_object_set (f->config, "allow-origin", origins, NULL);
  g_assert_true (start (f));
  put_value (f->port);

  allowed = kv_raw_request (f->port, "GET /kv/secret HTTP/1.1\r\nHost: localhost\r\n"
                            "Origin: http://localhost:3000\r\n\r\n");
  g_assert_cmpuint (allowed->status, ==, 200);
  g_assert_cmpstr (kv_raw_response_header (allowed, "Access-Control-Allow-Origin"), ==,
                   "http://localhost:3000");
  g_assert_cmpstr (kv_raw_response_header (allowed, "Vary"), ==, "Origin");

  other = kv_raw_request (f->port, "GET /kv/secret HTTP/1.1\r\nHost: localhost\r\n"
                          "Origin: http://localhost:3001\r\n\r\n");
  g_assert_cmpuint (other->status, ==, 403);

  preflight = kv_raw_request (f->port, "OPTIONS /kv/secret HTTP/1.1\r\nHost: localhost\r\n"
                              "Origin: http://localhost:3000\r\n"
                              "Access-Control-Request-Method: PUT\r\n\r\n");
  g_assert_cmpuint (preflight->status, ==, 204);
  g_assert_cmpstr (kv_raw_response_header (preflight, "Access-Control-Allow-Origin"), ==,
                   "http://localhost:3000");
  g_assert_nonnull (strstr (kv_raw_response_header (preflight, "Access-Control-Allow-Methods"),
                            "PUT"));
}

/* ---- The bearer token ---- */

static void
test_token (Fixture       *f,
            gconstpointer  user_data)
{
  g_autofree char *path = write_token_file (f, 0600);
  const struct
  {
    const char *authorization;
    guint status;
  } cases[] = {
    { NULL, 401 },
    { "Bearer", 401 },
    { "Bearer ", 401 },
    { "Bearer wrong", 401 },
    { "Bearer " TOKEN "x", 401 },
    { "Bearer s3cr3t", 401 },
    { "Basic " TOKEN, 401 },
    { TOKEN, 401 },
    { "Bearer " TOKEN, 200 },
    { "bearer " TOKEN, 200 },
  };

  g_test_summary ("With --token-file, a request needs “Authorization: Bearer TOKEN”; "
                  "without it or with another token, 401 and WWW-Authenticate: Bearer");

  g_object_set (f->config, "token-file", path, NULL);
  g_assert_true (start (f));

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *request = NULL;
      g_autoptr(KvRawResponse) response = NULL;

      request = g_strdup_printf ("PUT /kv/t HTTP/1.1\r\nHost: localhost\r\n%s%s%s"
                                 "Content-Length: 1\r\n\r\nx",
                                 cases[i].authorization != NULL ? "Authorization: " : "",
                                 cases[i].authorization != NULL ? cases[i].authorization : "",
                                 cases[i].authorization != NULL ? "\r\n" : "");
      response = kv_raw_request (f->port, request);
      g_test_message ("Authorization: %s -> %u",
                      cases[i].authorization != NULL ? cases[i].authorization : "(none)",
                      response->status);
      g_assert_cmpuint (response->status, ==, cases[i].status);
      if (cases[i].status == 401)
        {
          g_assert_cmpstr (kv_raw_response_header (response, "WWW-Authenticate"), ==, "Bearer");
          g_assert_true (kv_raw_response_body_is (response, "unauthorized\n"));
        }
    }
}

static void
test_token_file_mode (Fixture       *f,
                      gconstpointer  user_data)
{
  g_autofree char *path = write_token_file (f, 0644);

  g_test_summary ("A token file that others can read is refused at start");

  g_object_set (f->config, "token-file", path, NULL);
  g_assert_false (start (f));
  g_assert_error (f->error, KV_ACCESS_ERROR, KV_ACCESS_ERROR_BAD_TOKEN_FILE);
  g_assert_cmpuint (f->port, ==, 0);
}

static void
test_non_loopback_needs_token (Fixture       *f,
                               gconstpointer  user_data)
{
  const struct
  {
    const char *address;
    gboolean loopback;
  } cases[] = {
    { "127.0.0.1", TRUE }, { "127.0.0.2", TRUE }, { "::1", TRUE },
    { "0.0.0.0", FALSE }, { "::", FALSE }, { "192.0.2.1", FALSE }, { "2001:db8::1", FALSE },
  };
  g_autoptr(KvAccessPolicy) guard = kv_access_policy_new (NULL, NULL, NULL);
  g_autofree char *path = write_token_file (f, 0600);
  g_autoptr(KvAccessPolicy) token_guard = kv_access_policy_new (path, NULL, NULL);
  g_autoptr(GSocketAddress) unix_address = g_unix_socket_address_new ("/nonexistent");
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string ("0.0.0.0", 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = NULL;

  g_test_summary ("Listening on a non-loopback address without a token is refused, before "
                  "anything is bound; a Unix socket or the loopback need none");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GSocketAddress) address =
        g_inet_socket_address_new_from_string (cases[i].address, 0);
      g_autoptr(GError) local_error = NULL;

      g_assert_true (kv_access_policy_check_address (token_guard, address, NULL));
      if (cases[i].loopback)
        {
          g_assert_true (kv_access_policy_check_address (guard, address, &local_error));
          g_assert_no_error (local_error);
        }
      else
        {
          g_assert_false (kv_access_policy_check_address (guard, address, &local_error));
          g_assert_error (local_error, KV_ACCESS_ERROR, KV_ACCESS_ERROR_TOKEN_REQUIRED);
        }
    }
  g_assert_true (kv_access_policy_check_address (guard, unix_address, NULL));

  /* Nothing is accepted on a socket that is refused. */
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, any, TRUE, &error) && g_socket_listen (socket, &error));
  f->socket = g_steal_pointer (&socket);
  g_assert_false (start (f));
  g_assert_error (f->error, KV_ACCESS_ERROR, KV_ACCESS_ERROR_TOKEN_REQUIRED);
  g_assert_cmpuint (f->port, ==, 0);
}

static void
test_daemon_refuses_exposure (void)
{
  const char *argv[] = { NULL, "--address", "0.0.0.0", "--port", "0", NULL };
  g_autoptr(GBytes) out = NULL;
  g_autofree char *err = NULL;
  int status;

  g_test_summary ("crafty-kv --address 0.0.0.0 without --token-file exits with a clear "
                  "one-line error");

  argv[0] = kv_test_daemon_path ();
  out = kv_test_run (argv, &status, &err);
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (err, "not a loopback address"));
  g_assert_nonnull (strstr (err, "--token-file"));
  g_assert_true (strchr (err, '\n') == err + strlen (err) - 1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) \
  g_test_add ("/kv/access/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("loopback/other-user", test_loopback_other_user);
  ADD ("loopback/peer-uid", test_peer_uid);
  ADD ("unix/other-user", test_unix_other_user);
  ADD ("loopback/other-user-takes-no-slot", test_other_user_takes_no_slot);
  ADD ("browser/host", test_host);
  ADD ("browser/origin-refused", test_origin_refused);
  ADD ("browser/origin-allowed", test_origin_allowed);
  ADD ("token/required", test_token);
  ADD ("token/file-mode", test_token_file_mode);
  ADD ("token/non-loopback", test_non_loopback_needs_token);
#undef ADD
  g_test_add_func ("/kv/access/token/daemon-refuses", test_daemon_refuses_exposure);

  return g_test_run ();
}
