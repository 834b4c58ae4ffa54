/* test-hostile.c: raw bytes no well-behaved client sends, against a real
 * server
 *
 * SPDX-License-Identifier: MIT
 *
 * Every case gets the documented answer, or a close, within a bound; and
 * afterwards the server still serves a normal PUT and GET, and has given
 * back every connection slot (a per-connection leak fails the teardown).
 */
#include "config.h"

#include <string.h>

#include "storage/kv-map-storage.h"
#include "kv-test-raw.h"
#include "kv-test-sse.h"
#include "kv-test-utils.h"

#define MAX_VALUE_SIZE 4096
#define MAX_CONNECTIONS 16
/* request-timeout and idle-timeout, in seconds. */
#define TIMEOUT_S 1
/* How much later than a deadline its effect may be seen. */
#define SLACK_MS 1500

typedef struct
{
  KvStorage *storage;
  KvTestServer *server;
  guint16 port;
} Fixture;

static void
start_server_full (Fixture *fixture,
                   guint    max_connections,
                   guint    timeout_s)
{
  g_autoptr(KvConfig) config = g_object_new (KV_TYPE_CONFIG,
                                             "max-value-size", (guint64) MAX_VALUE_SIZE,
                                             "max-connections", max_connections,
                                             "request-timeout", timeout_s,
                                             "idle-timeout", timeout_s,
                                             NULL);

  fixture->storage = KV_STORAGE (kv_map_storage_new ());
  fixture->server = kv_test_server_start_with_config (fixture->storage, config);
  fixture->port = kv_test_server_get_port (fixture->server);
}

static void
start_server (Fixture *fixture,
              guint    max_connections)
{
  start_server_full (fixture, max_connections, TIMEOUT_S);
}

/* For tricklers that must still be trickling when shed, however slow the
 * build (sanitizers, valgrind): a deadline far off. */
static void
fixture_setup_patient (Fixture       *fixture,
                       gconstpointer  user_data)
{
  start_server_full (fixture, MAX_CONNECTIONS, 30);
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  start_server (fixture, MAX_CONNECTIONS);
}

/* For clients that hang up without waiting: the server may not have
 * accepted (and counted) them yet when the next one connects. */
static void
fixture_setup_roomy (Fixture       *fixture,
                     gconstpointer  user_data)
{
  start_server (fixture, 10000);
}

static guint
open_connections (Fixture *fixture)
{
  return kv_listener_get_n_connections (kv_test_server_get_listener (fixture->server));
}

/* Every connection the test opened is closed by now on our side; the
 * server must let go of each of them soon. */
static void
assert_no_connection_left (Fixture *fixture)
{
  gint64 deadline = g_get_monotonic_time () + 3 * G_USEC_PER_SEC;

  while (open_connections (fixture) > 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (open_connections (fixture), ==, 0);
}

/* Connections the client closed take the server a moment to let go of:
 * wait for a free slot, so that a new connection is not refused. */
static void
wait_for_free_slot (Fixture *fixture)
{
  gint64 deadline = g_get_monotonic_time () + 3 * G_USEC_PER_SEC;

  while (open_connections (fixture) >= MAX_CONNECTIONS && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  g_assert_cmpuint (open_connections (fixture), <, MAX_CONNECTIONS);
}

static void
wait_for_open_connections (Fixture *fixture,
                           guint    n)
{
  gint64 deadline = g_get_monotonic_time () + 3 * G_USEC_PER_SEC;

  while (open_connections (fixture) != n && g_get_monotonic_time () < deadline)
    g_usleep (1000);
  g_assert_cmpuint (open_connections (fixture), ==, n);
}

static void
assert_still_serves (Fixture *fixture)
{
  g_autoptr(KvRawResponse) put = kv_raw_simple (fixture->port, "PUT", "/kv/after", "still here");
  g_autoptr(KvRawResponse) get = kv_raw_simple (fixture->port, "GET", "/kv/after", NULL);

  g_assert_cmpuint (put->status, ==, 200);
  g_assert_cmpuint (get->status, ==, 200);
  g_assert_true (kv_raw_response_body_is (get, "still here"));
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  assert_still_serves (fixture);
  assert_no_connection_left (fixture);
  kv_test_server_stop (fixture->server);
  g_assert_finalize_object (fixture->storage);
}

/* ---- One request, one answer ---- */

typedef struct
{
  const char *name;
  const char *summary;
  const char *request;
  gsize len;
  guint status;        /* 0: closed without an answer */
  const char *body;    /* NULL: not checked */
  gboolean closes;     /* the server closes the connection after answering */
  const char *content_type;  /* NULL: not checked; else nosniff is checked too */
} Case;

#define H "Host: localhost\r\n"
/* The request and its length, NUL bytes included. */
#define REQ(s) s, sizeof (s) - 1
#define BAD "bad request\n"
#define TOO_LARGE "value too large\n"
#define TEXT "text/plain; charset=utf-8"

static const Case cases[] = {
  /* Malformed request lines. */
  { "line/garbage", "Not a request line", REQ ("GARBAGE\r\n\r\n"), 400, NULL, TRUE },
  { "line/no-version", "A request line without a version",
    REQ ("GET /kv/a\r\n\r\n"), 400, NULL, TRUE },
  { "line/http-0.9", "HTTP/0.9", REQ ("GET /kv/a HTTP/0.9\r\n\r\n"), 505, NULL, TRUE },
  { "line/http-2", "HTTP/2.0 in an HTTP/1 request line",
    REQ ("GET /kv/a HTTP/2.0\r\n" H "\r\n"), 505, NULL, TRUE },
  { "line/lower-case", "A lower-case protocol name",
    REQ ("GET /kv/a http/1.1\r\n" H "\r\n"), 400, NULL, TRUE },
  { "line/nul", "A NUL byte in the request line",
    REQ ("GET /kv/a\0 HTTP/1.1\r\n" H "\r\n"), 400, NULL, TRUE },
  { "line/bare-cr", "A bare CR ending the request line",
    REQ ("GET /kv/a HTTP/1.1\r" H "\r\n"), 400, NULL, TRUE },
  { "line/only-crlf", "Empty lines only, and then nothing: the deadline",
    REQ ("\r\n\r\n"), 408, "request timeout\n", TRUE },
  { "line/truncated", "A request line cut off by the end of the stream",
    REQ ("GET /kv/a HT"), 400, NULL, TRUE },
  /* Malformed and oversized headers. */
  { "header/nul", "A NUL byte in a header value",
    REQ ("GET /kv/a HTTP/1.1\r\n" H "X-A: a\0b\r\n\r\n"), 400, NULL, TRUE },
  { "header/no-host", "HTTP/1.1 without Host",
    REQ ("GET /kv/a HTTP/1.1\r\n\r\n"), 400, NULL, TRUE },
  { "header/host-slash", "A Host with a slash",
    REQ ("GET /kv/a HTTP/1.1\r\nHost: local/host\r\n\r\n"), 400, NULL, TRUE },
  { "header/truncated", "Headers cut off by the end of the stream",
    REQ ("GET /kv/a HTTP/1.1\r\nHost: loc"), 400, NULL, TRUE },
  { "header/te-unknown", "A transfer coding other than chunked",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n"), 501, NULL, TRUE },
  /* Each shape of request smuggling. */
  { "smuggle/cl-twice", "Content-Length twice, same value",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
    400, BAD, TRUE },
  { "smuggle/cl-differ", "Content-Length twice, two values",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc"),
    400, BAD, TRUE },
  { "smuggle/cl-plus", "A signed Content-Length",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: +3\r\n\r\nabc"), 400, BAD, TRUE },
  { "smuggle/cl-minus", "A negative Content-Length",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\nabc"), 400, BAD, TRUE },
  /* libsoup refuses these two itself, with an empty body. */
  { "smuggle/cl-hex", "A hexadecimal Content-Length",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 0x3\r\n\r\nabc"), 400, NULL, TRUE },
  { "smuggle/cl-trailing", "Digits and then letters",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 3abc\r\n\r\nabc"), 400, NULL, TRUE },
  { "smuggle/cl-empty", "An empty Content-Length",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length:\r\n\r\nabc"), 400, BAD, TRUE },
  { "smuggle/cl-list", "A list as Content-Length",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 3, 3\r\n\r\nabc"), 400, NULL, TRUE },
  { "smuggle/te-cl", "Transfer-Encoding with Content-Length",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\n"
         "abc\r\n0\r\n\r\n"), 400, BAD, TRUE },
  { "smuggle/cl-te", "Content-Length before Transfer-Encoding",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n"
         "abc\r\n0\r\n\r\n"), 400, BAD, TRUE },
  { "smuggle/te-identity-cl", "An identity coding with Content-Length",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc"),
    501, "not implemented\n", TRUE },
  { "smuggle/te-twice", "Transfer-Encoding twice",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
         "\r\n3\r\nabc\r\n0\r\n\r\n"), 400, BAD, TRUE },
  { "smuggle/host-twice", "Host twice",
    REQ ("GET /kv/a HTTP/1.1\r\n" H "Host: evil.example\r\n\r\n"), 400, BAD, TRUE },
  /* Framing that libsoup 3.2 reads leniently, and KvRequestFilter not. */
  { "strict/line-bare-lf", "A request line ended by a bare LF",
    REQ ("GET /kv/a HTTP/1.1\n" H "\r\n"), 400, BAD, TRUE },
  { "strict/line-double-space", "Two spaces in the request line",
    REQ ("GET  /kv/a HTTP/1.1\r\n" H "\r\n"), 400, BAD, TRUE },
  { "strict/line-tab", "Tabs in the request line",
    REQ ("GET\t/kv/a\tHTTP/1.1\r\n" H "\r\n"), 400, BAD, TRUE },
  { "strict/http-1.2", "HTTP/1.2", REQ ("GET /kv/a HTTP/1.2\r\n" H "\r\n"), 505, NULL, TRUE },
  { "strict/leading-crlf", "One empty line before the request is allowed",
    REQ ("\r\nGET /kv/a HTTP/1.1\r\n" H "\r\n"), 404, "key not found\n", FALSE },
  { "strict/header-bare-lf", "A header line ended by a bare LF",
    REQ ("GET /kv/a HTTP/1.1\r\nHost: localhost\n\r\n"), 400, BAD, TRUE },
  { "strict/header-no-colon", "A header line without a colon",
    REQ ("GET /kv/a HTTP/1.1\r\n" H "NoColon\r\n\r\n"), 400, BAD, TRUE },
  { "strict/header-space-colon", "Whitespace between a header's name and colon",
    REQ ("GET /kv/a HTTP/1.1\r\n" H "X-A : b\r\n\r\n"), 400, BAD, TRUE },
  { "strict/header-obs-fold", "A header folded over two lines",
    REQ ("GET /kv/a HTTP/1.1\r\n" H "X-A: b\r\n  c\r\n\r\n"), 400, BAD, TRUE },
  { "strict/cl-space-colon", "“Content-Length :”",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length : 3\r\n\r\nabc"), 400, BAD, TRUE },
  { "strict/te-space-colon", "“Transfer-Encoding :”",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    400, BAD, TRUE },
  { "strict/te-list", "A list of transfer codings",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n"
         "0\r\n\r\n"), 501, "not implemented\n", TRUE },
  /* Bad chunk sizes and chunk framing. */
  { "chunk/size-junk", "A chunk size followed by junk",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3zz\r\nabc\r\n0\r\n\r\n"),
    400, BAD, TRUE },
  { "chunk/size-not-hex", "A chunk size that is not hexadecimal",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
    400, BAD, TRUE },
  { "chunk/size-negative", "A negative chunk size",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n"),
    400, BAD, TRUE },
  { "chunk/size-0x", "A chunk size with 0x",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n"),
    400, BAD, TRUE },
  { "chunk/size-empty", "An empty chunk-size line",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n"),
    400, BAD, TRUE },
  { "chunk/size-overflow", "A chunk size of 64 bits",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"
         "abc\r\n0\r\n\r\n"), 400, BAD, TRUE },
  { "chunk/size-long-line", "A chunk-size line over 128 bytes",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n"
         "3;e=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nabc\r\n0\r\n"
         "\r\n"), 400, BAD, TRUE },
  { "chunk/size-bare-lf", "Chunk lines ended by bare LFs",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n"),
    400, BAD, TRUE },
  { "chunk/data-overrun", "More chunk data than its size",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n"),
    400, BAD, TRUE },
  { "chunk/trailer", "A trailer after the last chunk",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
         "X-T: 1\r\n\r\n"), 400, BAD, TRUE },
  { "chunk/extension", "Chunk extensions are fine",
    REQ ("PUT /kv/ext HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n"
         "0\r\n\r\n"), 200, "", FALSE },
  /* Too large, decided before the body is read. */
  { "size/cl-over", "A Content-Length over max-value-size, no body sent",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 4097\r\n\r\n"), 413, TOO_LARGE, TRUE },
  { "size/cl-huge", "A Content-Length past 64 bits",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 99999999999999999999999\r\n\r\n"),
    413, TOO_LARGE, TRUE },
  { "size/expect", "Expect: 100-continue and a Content-Length over the limit: no 100",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n"),
    413, TOO_LARGE, TRUE },
  { "size/post", "Any method and path is bounded",
    REQ ("POST /elsewhere HTTP/1.1\r\n" H "Content-Length: 1000000\r\n\r\n"),
    413, TOO_LARGE, TRUE },
  { "size/json", "A client that asks for JSON gets its error in JSON",
    REQ ("PUT /kv/a HTTP/1.1\r\n" H "Accept: text/html, application/json;q=0.9\r\n"
         "Content-Length: 5000\r\n\r\n"),
    413, "{\"error\":\"value too large\",\"status\":413}\n", TRUE },
  /* Keys. */
  { "key/pct-invalid", "Invalid percent-encoding in a key",
    REQ ("GET /kv/%ZZ HTTP/1.1\r\n" H "\r\n"), 400, NULL, FALSE },
  { "key/pct-nul", "%00 in a key",
    REQ ("PUT /kv/a%00b HTTP/1.1\r\n" H "Content-Length: 1\r\n\r\nx"), 400, NULL, FALSE },
  { "key/pct-truncated", "A % at the end of a key",
    REQ ("GET /kv/a% HTTP/1.1\r\n" H "\r\n"), 400, NULL, FALSE },
  /* What libsoup 3.2.3 refuses itself once it has the headers, with an
   * empty body: KvRequestFilter refuses it first. */
  { "target/pct-invalid", "A % not followed by two hex digits, in the path",
    REQ ("GET /kv/a%zz HTTP/1.1\r\n" H "\r\n"), 400, BAD, TRUE, TEXT },
  { "target/pct-invalid-query", "A % not followed by two hex digits, in the query",
    REQ ("GET /kv/a?x=%z HTTP/1.1\r\n" H "\r\n"), 400, BAD, TRUE, TEXT },
  { "target/pct-invalid-http-1.0", "Bad percent-encoding in an HTTP/1.0 request without Host",
    REQ ("GET /kv/a%zz HTTP/1.0\r\n\r\n"), 400, BAD, TRUE, TEXT },
  { "target/relative", "A target neither /…, http://… nor *",
    REQ ("GET kv/a HTTP/1.1\r\n" H "\r\n"), 400, BAD, TRUE, TEXT },
  { "target/absolute-invalid", "An absolute-form target that is no valid URI",
    REQ ("GET http://[::1 HTTP/1.1\r\n" H "\r\n"), 400, BAD, TRUE, TEXT },
  { "target/absolute-https", "An absolute-form target for https on plain HTTP",
    REQ ("GET https://localhost/kv/a HTTP/1.1\r\n" H "\r\n"), 400, BAD, TRUE, TEXT },
  { "target/absolute", "An absolute-form target for this host is served",
    REQ ("GET http://localhost/kv/a HTTP/1.1\r\n" H "\r\n"), 404, "key not found\n", FALSE,
    TEXT },
  { "target/asterisk-get", "* is for OPTIONS only",
    REQ ("GET * HTTP/1.1\r\n" H "\r\n"), 400, BAD, TRUE, TEXT },
  { "target/asterisk-no-host", "OPTIONS * without Host",
    REQ ("OPTIONS * HTTP/1.0\r\n\r\n"), 400, BAD, TRUE, TEXT },
  { "target/connect", "CONNECT: crafty-kv is no proxy",
    REQ ("CONNECT localhost:8888 HTTP/1.1\r\n" H "\r\n"), 400, BAD, TRUE, TEXT },
  { "header/no-host-body", "HTTP/1.1 without Host gets the documented body",
    REQ ("GET /kv/a HTTP/1.1\r\n\r\n"), 400, BAD, TRUE, TEXT },
  { "header/no-host-http-1.0", "HTTP/1.0 without Host is served",
    REQ ("GET /kv/a HTTP/1.0\r\n\r\n"), 404, "key not found\n", FALSE, TEXT },
  { "header/host-slash-body", "A Host with a slash gets the documented body",
    REQ ("GET /kv/a HTTP/1.1\r\nHost: local/host\r\n\r\n"), 400, BAD, TRUE, TEXT },
  { "header/host-space", "A Host with a space",
    REQ ("GET /kv/a HTTP/1.1\r\nHost: local host\r\n\r\n"), 400, BAD, TRUE, TEXT },
  { "header/host-userinfo", "A Host with userinfo",
    REQ ("GET /kv/a HTTP/1.1\r\nHost: user@localhost\r\n\r\n"), 400, BAD, TRUE, TEXT },
  { "header/host-port-range", "A Host whose port is past 65535",
    REQ ("GET /kv/a HTTP/1.1\r\nHost: localhost:99999\r\n\r\n"), 400, BAD, TRUE, TEXT },
  { "header/host-ipv6-open", "A Host with an unclosed IPv6 literal",
    REQ ("GET /kv/a HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400, BAD, TRUE, TEXT },
  { "header/host-empty", "An empty Host",
    REQ ("GET /kv/a HTTP/1.1\r\nHost:\r\n\r\n"), 400, BAD, TRUE, TEXT },
  { "header/expect-unknown", "An expectation other than 100-continue",
    REQ ("GET /kv/a HTTP/1.1\r\n" H "Expect: something\r\n\r\n"), 417,
    "expectation failed\n", TRUE, TEXT },
  { "header/value/truncated", "Headers cut off get the documented body",
    REQ ("GET /kv/a HTTP/1.1\r\nHost: loc"), 400, BAD, TRUE, TEXT },
  { "line/target/truncated", "A request line cut off gets the documented body",
    REQ ("GET /kv/a HT"), 400, BAD, TRUE, TEXT },
  /* Cut off in the body: nothing is stored, the connection ends. */
  { "body/truncated", "A body shorter than its Content-Length",
    REQ ("PUT /kv/cut HTTP/1.1\r\n" H "Content-Length: 10\r\n\r\nabc"), 0, NULL, TRUE },
  { "body/truncated-chunk", "A chunk cut off by the end of the stream",
    REQ ("PUT /kv/cut HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\r\nab"), 0, NULL, TRUE },
};

static void
test_case (Fixture       *fixture,
           gconstpointer  user_data)
{
  const Case *c = user_data;
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) response = NULL;
  g_autoptr(KvRawResponse) get = NULL;

  g_test_summary (c->summary);

  kv_raw_send (socket, c->request, c->len);
  /* A request cut short ends with the end of the stream. */
  if (c->status == 0 || g_str_has_suffix (c->name, "/truncated"))
    g_socket_shutdown (socket, FALSE, TRUE, NULL);

  response = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, c->status);
  if (c->body != NULL)
    g_assert_true (kv_raw_response_body_is (response, c->body));
  if (c->content_type != NULL)
    {
      g_assert_cmpstr (kv_raw_response_header (response, "Content-Type"), ==, c->content_type);
      g_assert_cmpstr (kv_raw_response_header (response, "X-Content-Type-Options"), ==, "nosniff");
    }
  if (c->closes)
    g_assert_true (kv_raw_wait_closed (socket, 2000));

  /* Nothing of a refused or cut-off request was stored. */
  get = kv_raw_simple (fixture->port, "GET", "/kv/cut", NULL);
  g_assert_cmpuint (get->status, ==, 404);
  g_clear_pointer (&get, kv_raw_response_free);
  get = kv_raw_simple (fixture->port, "GET", "/kv/a", NULL);
  g_assert_cmpuint (get->status, ==, 404);
}

/* ---- Cases that need more than one write ---- */

static void
test_oversized_header_block (Fixture       *fixture,
                             gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(GString) request = g_string_new ("GET /kv/a HTTP/1.1\r\n" H "X-Big: ");
  g_autoptr(KvRawResponse) response = NULL;

  g_test_summary ("A header block over max-header-size gets 431 before libsoup sees it all");

  for (guint i = 0; i < 70000; i++)
    g_string_append_c (request, 'b');
  g_string_append (request, "\r\n\r\n");
  kv_raw_send (socket, request->str, request->len);

  response = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 431);
  g_assert_true (kv_raw_response_body_is (response, "headers too large\n"));
}

static void
test_oversized_request_line (Fixture       *fixture,
                             gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(GString) request = g_string_new ("GET /kv/");
  g_autoptr(KvRawResponse) response = NULL;

  g_test_summary ("A 100 KiB request line gets 431");

  for (guint i = 0; i < 100000; i++)
    g_string_append_c (request, 'k');
  g_string_append (request, " HTTP/1.1\r\n" H "\r\n");
  kv_raw_send (socket, request->str, request->len);

  response = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 431);
}

static void
test_too_many_headers (Fixture       *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(GString) request = g_string_new ("GET /kv/a HTTP/1.1\r\n" H);
  g_autoptr(GString) fine = g_string_new ("GET /kv/a HTTP/1.1\r\n" H);
  g_autoptr(KvRawResponse) refused = NULL;
  g_autoptr(KvRawResponse) accepted = NULL;

  g_test_summary ("More than max-headers header fields answer 431; max-headers is fine");

  for (guint i = 0; i < 1000; i++)
    g_string_append_printf (request, "X-%u: y\r\n", i);
  g_string_append (request, "\r\n");
  refused = kv_raw_request (fixture->port, request->str);
  g_assert_cmpuint (refused->status, ==, 431);
  g_assert_true (kv_raw_response_body_is (refused, "too many headers\n"));

  /* Host and 99 more make the default limit of 100. */
  for (guint i = 0; i < 99; i++)
    g_string_append_printf (fine, "X-%u: y\r\n", i);
  g_string_append (fine, "\r\n");
  accepted = kv_raw_request (fixture->port, fine->str);
  g_assert_cmpuint (accepted->status, ==, 404);
}

static void
test_expect_continue_refused (Fixture       *fixture,
                              gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) response = NULL;

  g_test_summary ("A body that will be refused never gets “100 Continue”");

  kv_raw_send_string (socket, "PUT /kv/a HTTP/1.1\r\n" H "Expect: 100-continue\r\n"
                      "Content-Length: 5000\r\n\r\n");
  response = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 413);
  g_assert_cmpstr (kv_raw_response_header (response, "Connection"), ==, "close");
  g_assert_true (kv_raw_wait_closed (socket, 2000));
}

static void
test_expect_continue_accepted (Fixture       *fixture,
                               gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) go_on = NULL;
  g_autoptr(KvRawResponse) done = NULL;
  g_autoptr(KvRawResponse) get = NULL;

  g_test_summary ("A body within the limit gets “100 Continue”, then is stored");

  kv_raw_send_string (socket, "PUT /kv/e HTTP/1.1\r\n" H "Expect: 100-continue\r\n"
                      "Content-Length: 4096\r\n\r\n");
  go_on = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (go_on->status, ==, 100);
  for (guint i = 0; i < 4096 / 16; i++)
    kv_raw_send_string (socket, "0123456789abcdef");
  done = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (done->status, ==, 200);

  get = kv_raw_simple (fixture->port, "GET", "/kv/e", NULL);
  g_assert_cmpuint (g_bytes_get_size (get->body), ==, 4096);
}

static void
test_large_body_without_expect (Fixture       *fixture,
                                gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) response = NULL;
  char block[8192];
  guint sent = 0;
  gint64 start = g_get_monotonic_time ();

  g_test_summary ("A client that sends a 100 MB body after a too large Content-Length "
                  "gets 413 without the server reading it all");

  memset (block, 'x', sizeof block);
  kv_raw_send_string (socket, "PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 100000000\r\n\r\n");
  /* Send until the server stops reading: it drains a little, then closes. */
  while (sent < 100000000 / sizeof block && kv_raw_send (socket, block, sizeof block))
    sent++;
  g_assert_cmpuint (sent, <, 100000000 / sizeof block);

  response = kv_raw_read_response (socket, FALSE, 5000);
  /* The answer was written before the close; a reset may discard it on
   * our side, which is what draining makes unlikely, not impossible. */
  if (response->status != 0)
    g_assert_cmpuint (response->status, ==, 413);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_USEC_PER_SEC);
}

static void
test_chunked_over_limit (Fixture       *fixture,
                         gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) response = NULL;
  g_autoptr(KvRawResponse) get = NULL;
  g_autofree char *chunk = NULL;
  char data[1024];
  guint sent = 0;

  g_test_summary ("A chunked body is cut off with 413 as soon as it passes max-value-size");

  memset (data, 'c', sizeof data);
  chunk = g_strdup_printf ("400\r\n%.*s\r\n", (int) sizeof data, data);
  kv_raw_send_string (socket, "PUT /kv/chunky HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n");
  while (sent < 100000 && kv_raw_send_string (socket, chunk))
    sent++;
  /* Cut off after a few kilobytes, not after 100 MB. */
  g_assert_cmpuint (sent, <, 100000);

  response = kv_raw_read_response (socket, FALSE, 5000);
  if (response->status != 0)
    {
      g_assert_cmpuint (response->status, ==, 413);
      g_assert_true (kv_raw_response_body_is (response, TOO_LARGE));
    }

  get = kv_raw_simple (fixture->port, "GET", "/kv/chunky", NULL);
  g_assert_cmpuint (get->status, ==, 404);
}

static void
test_chunked_within_limit (Fixture       *fixture,
                           gconstpointer  user_data)
{
  g_autoptr(KvRawResponse) put = NULL;
  g_autoptr(KvRawResponse) get = NULL;

  g_test_summary ("A chunked body of exactly max-value-size is stored");

  {
    g_autoptr(GString) request = g_string_new ("PUT /kv/chunky HTTP/1.1\r\n" H
                                               "Transfer-Encoding: chunked\r\n\r\n");
    for (guint i = 0; i < 4; i++)
      {
        g_string_append (request, "400\r\n");
        for (guint j = 0; j < 1024; j++)
          g_string_append_c (request, 'a' + i);
        g_string_append (request, "\r\n");
      }
    g_string_append (request, "0\r\n\r\n");
    put = kv_raw_request (fixture->port, request->str);
  }
  g_assert_cmpuint (put->status, ==, 200);

  get = kv_raw_simple (fixture->port, "GET", "/kv/chunky", NULL);
  g_assert_cmpuint (get->status, ==, 200);
  g_assert_cmpuint (g_bytes_get_size (get->body), ==, MAX_VALUE_SIZE);
}

static void
test_pipelined (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);

  g_test_summary ("Three requests in one write get three answers, in order");

  kv_raw_send_string (socket,
                      "PUT /kv/p HTTP/1.1\r\n" H "Content-Length: 3\r\n\r\none"
                      "GET /kv/p HTTP/1.1\r\n" H "\r\n"
                      "DELETE /kv/p HTTP/1.1\r\n" H "\r\n");
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(KvRawResponse) response = kv_raw_read_response (socket, FALSE, 5000);

      g_assert_cmpuint (response->status, ==, 200);
      if (i == 1)
        g_assert_true (kv_raw_response_body_is (response, "one"));
    }
}

static void
test_options_asterisk (Fixture       *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) response = NULL;

  g_test_summary ("“OPTIONS * HTTP/1.1” with a Host is answered 204 with Allow");

  kv_raw_send_string (socket, "OPTIONS * HTTP/1.1\r\n" H "\r\n");
  response = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 204);
  g_assert_nonnull (kv_raw_response_header (response, "Allow"));
  g_assert_nonnull (strstr (kv_raw_response_header (response, "Allow"), "GET"));
}

/* ---- Slow and silent clients ---- */

static gint64
elapsed_ms (gint64 start)
{
  return (g_get_monotonic_time () - start) / 1000;
}

static void
test_silent_client (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) response = NULL;
  gint64 start = g_get_monotonic_time ();

  g_test_summary ("A client that connects and says nothing gets 408 at request-timeout");

  response = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 408);
  g_assert_true (kv_raw_response_body_is (response, "request timeout\n"));
  g_assert_cmpint (elapsed_ms (start), >=, TIMEOUT_S * 1000 - 100);
  g_assert_cmpint (elapsed_ms (start), <, TIMEOUT_S * 1000 + SLACK_MS);
  g_assert_true (kv_raw_wait_closed (socket, 2000));
}

/* Sends @text a byte every 100 ms until the server stops the client;
 * returns when it did, in ms. */
static gint64
trickle (GSocket    *socket,
         const char *text)
{
  gint64 start = g_get_monotonic_time ();

  for (const char *p = text; *p != '\0'; p++)
    {
      if (!kv_raw_send (socket, p, 1))
        break;
      if (g_socket_condition_check (socket, G_IO_IN) != 0)
        break;
      g_usleep (100 * 1000);
    }

  return elapsed_ms (start);
}

static void
test_trickled_headers (Fixture       *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) response = NULL;
  gint64 took;

  g_test_summary ("Headers trickled a byte at a time are cut off with 408");

  took = trickle (socket, "GET /kv/a HTTP/1.1\r\nHost: localhost\r\n"
                          "X-Slow: 1\r\nX-Slower: 2\r\n\r\n");
  g_assert_cmpint (took, <, TIMEOUT_S * 1000 + SLACK_MS);
  response = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 408);
  g_assert_true (kv_raw_wait_closed (socket, 2000));
}

static void
test_trickled_body (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) response = NULL;
  g_autoptr(KvRawResponse) get = NULL;
  gint64 took;

  g_test_summary ("A body trickled a byte at a time is cut off with 408, and not stored");

  kv_raw_send_string (socket, "PUT /kv/slow HTTP/1.1\r\n" H "Content-Length: 40\r\n\r\n");
  took = trickle (socket, "0123456789012345678901234567890123456789");
  g_assert_cmpint (took, <, TIMEOUT_S * 1000 + SLACK_MS);
  response = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 408);

  get = kv_raw_simple (fixture->port, "GET", "/kv/slow", NULL);
  g_assert_cmpuint (get->status, ==, 404);
}

static void
test_slow_reader (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(GString) value = g_string_new (NULL);
  g_autoptr(KvRawResponse) put = NULL;
  gint64 deadline;

  g_test_summary ("A client that asks for megabytes and reads none of them is cut off once "
                  "the answer makes no progress for idle-timeout");

  while (value->len < MAX_VALUE_SIZE)
    g_string_append_c (value, 'v');
  put = kv_raw_simple (fixture->port, "PUT", "/kv/big", value->str);
  g_assert_cmpuint (put->status, ==, 200);

  /* 16 MB of answers: more than the socket buffers hold. */
  for (guint i = 0; i < 4000; i++)
    if (!kv_raw_send_string (socket, "GET /kv/big HTTP/1.1\r\n" H "\r\n"))
      break;

  /* The server writes until the buffers are full, which takes a while
   * under valgrind, then stalls for idle-timeout plus one second. */
  deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (open_connections (fixture) > 0 && g_get_monotonic_time () < deadline)
    g_usleep (50 * 1000);
  g_assert_cmpuint (open_connections (fixture), ==, 0);
}

static void
test_idle_keepalive (Fixture       *fixture,
                     gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  gint64 start;

  g_test_summary ("A keep-alive connection is kept between requests, and closed when idle "
                  "for idle-timeout");

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(KvRawResponse) response = NULL;

      kv_raw_send_string (socket, "GET /kv/a HTTP/1.1\r\n" H "\r\n");
      response = kv_raw_read_response (socket, FALSE, 5000);
      g_assert_cmpuint (response->status, ==, 404);
    }

  start = g_get_monotonic_time ();
  g_assert_true (kv_raw_wait_closed (socket, TIMEOUT_S * 1000 + SLACK_MS));
  g_assert_cmpint (elapsed_ms (start), >=, TIMEOUT_S * 1000 - 100);
}

static void
test_trickled_next_request (Fixture       *fixture,
                            gconstpointer  user_data)
{
  g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);
  g_autoptr(KvRawResponse) first = NULL;
  gint64 took;

  g_test_summary ("On a kept connection, a next request trickled without ever ending its "
                  "first line is cut off at idle-timeout");

  kv_raw_send_string (socket, "GET /kv/a HTTP/1.1\r\n" H "\r\n");
  first = kv_raw_read_response (socket, FALSE, 5000);
  g_assert_cmpuint (first->status, ==, 404);

  took = trickle (socket, "GET /kv/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                          "aaaaaaaaaaaaaaaaaaaaaaaaa");
  g_assert_cmpint (took, <, TIMEOUT_S * 1000 + SLACK_MS);
  g_assert_true (kv_raw_wait_closed (socket, 2000));
}

static void
test_idle_close_by_client (Fixture       *fixture,
                           gconstpointer  user_data)
{
  g_test_summary ("Keep-alive connections that the client closes between requests are all "
                  "let go (libsoup 3.2.3 leaks them)");

  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(GSocket) socket = NULL;
      g_autoptr(KvRawResponse) response = NULL;

      wait_for_free_slot (fixture);
      socket = kv_raw_connect (fixture->port);
      kv_raw_send_string (socket, "GET /kv/a HTTP/1.1\r\n" H "\r\n");
      response = kv_raw_read_response (socket, FALSE, 5000);
      g_assert_cmpuint (response->status, ==, 404);
    }

  /* Well before idle-timeout. */
  assert_no_connection_left (fixture);
}

/* ---- Floods ---- */

/* ---- Watch streams: long answers that no deadline ends ---- */

static void
test_watch_deadlines (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autoptr(KvSseClient) client = kv_sse_client_new (fixture->port, "/watch", NULL);
  g_autoptr(KvSseBlock) block = NULL;
  g_autoptr(KvRawResponse) put = NULL;

  g_test_summary ("A watch stream outlives the request and idle deadlines, silent as it is, "
                  "and still delivers after them");

  block = kv_sse_client_next (client, 5000);
  g_assert_cmpstr (block->id, ==, "0");
  g_clear_pointer (&block, kv_sse_block_free);

  /* Both deadlines, and the socket's timeout past them, go by. */
  g_usleep ((2 * TIMEOUT_S + 1) * G_USEC_PER_SEC + SLACK_MS * 1000);
  g_assert_true (kv_sse_client_feed (client));
  put = kv_raw_simple (fixture->port, "PUT", "/kv/late", "v");
  g_assert_cmpuint (put->status, ==, 200);
  block = kv_sse_client_next (client, 5000);
  g_assert_nonnull (block);
  g_assert_cmpstr (block->event, ==, "put");
  g_assert_cmpstr (block->id, ==, "1");

  g_clear_pointer (&client, kv_sse_client_free);
  assert_no_connection_left (fixture);
}

static void
test_watch_then_request (Fixture       *fixture,
                         gconstpointer  user_data)
{
  g_autoptr(KvSseClient) client = kv_sse_client_new (fixture->port, "/watch?key=k", NULL);
  g_autoptr(KvSseBlock) block = NULL;

  g_test_summary ("A request sent behind a watch stream, which never ends on its own, ends the "
                  "stream and its connection, which gives its slot back");

  block = kv_sse_client_next (client, 5000);
  g_assert_cmpstr (block->id, ==, "0");
  kv_raw_send_string (kv_sse_client_get_socket (client), "GET /kv/k HTTP/1.1\r\n" H "\r\n");
  g_assert_null (kv_sse_client_next (client, 5000));
  g_assert_true (kv_sse_client_is_closed (client));

  g_clear_pointer (&client, kv_sse_client_free);
  assert_no_connection_left (fixture);
  assert_still_serves (fixture);
}

static void
test_watch_connection_limit (Fixture       *fixture,
                             gconstpointer  user_data)
{
  g_autoptr(GPtrArray) streams = g_ptr_array_new_with_free_func ((GDestroyNotify) kv_sse_client_free);

  g_test_summary ("Watch streams count against max-connections, and are never shed: with "
                  "every slot a stream, a newcomer is closed at once; once they go, "
                  "connections are served again");

  for (guint i = 0; i < MAX_CONNECTIONS; i++)
    {
      KvSseClient *client = kv_sse_client_new (fixture->port, "/watch", NULL);
      g_autoptr(KvSseBlock) block = kv_sse_client_next (client, 5000);

      g_assert_cmpstr (block->id, ==, "0");
      g_ptr_array_add (streams, client);
    }
  wait_for_open_connections (fixture, MAX_CONNECTIONS);

  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);

      g_assert_true (kv_raw_wait_closed (socket, 1000));
    }
  for (guint i = 0; i < streams->len; i++)
    g_assert_true (kv_sse_client_feed (g_ptr_array_index (streams, i)));

  g_ptr_array_set_size (streams, 0);
  assert_no_connection_left (fixture);
  assert_still_serves (fixture);
}

static void
test_flood (Fixture       *fixture,
            gconstpointer  user_data)
{
  g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  gint64 start;

  g_test_summary ("Past max-connections, while every connection is busy with a request, new "
                  "connections are closed at once; once the others end, connections are "
                  "served again");

  for (guint i = 0; i < MAX_CONNECTIONS; i++)
    {
      GSocket *socket = kv_raw_connect (fixture->port);
      g_autoptr(KvRawResponse) go_on = NULL;

      /* Busy: the server has read its headers (it says "100 Continue"),
       * its body is still to come. */
      kv_raw_send_string (socket, "PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 10\r\n"
                                  "Expect: 100-continue\r\n\r\n");
      go_on = kv_raw_read_response (socket, TRUE, 5000);
      g_assert_cmpuint (go_on->status, ==, 100);
      kv_raw_send_string (socket, "ab");
      g_ptr_array_add (held, socket);
    }
  wait_for_open_connections (fixture, MAX_CONNECTIONS);

  for (guint i = 0; i < 50; i++)
    {
      g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);

      start = g_get_monotonic_time ();
      g_assert_true (kv_raw_wait_closed (socket, 1000));
      g_assert_cmpint (elapsed_ms (start), <, 500);
    }
  g_assert_cmpuint (open_connections (fixture), ==, MAX_CONNECTIONS);

  g_ptr_array_set_size (held, 0);
  assert_no_connection_left (fixture);
}

static void
test_flood_sheds_idle (Fixture       *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GSocket) newcomer = NULL;
  g_autoptr(KvRawResponse) response = NULL;
  guint closed = 0;

  g_test_summary ("Past max-connections, a newcomer is served and the connection that has "
                  "been idle the longest is closed to make room");

  for (guint i = 0; i < MAX_CONNECTIONS; i++)
    {
      GSocket *socket = kv_raw_connect (fixture->port);
      g_autoptr(KvRawResponse) answer = NULL;

      /* Answered, and kept alive: idle from then on. */
      kv_raw_send_string (socket, "GET /kv/a HTTP/1.1\r\n" H "\r\n");
      answer = kv_raw_read_response (socket, FALSE, 5000);
      g_assert_cmpuint (answer->status, ==, 404);
      g_ptr_array_add (held, socket);
    }
  g_assert_cmpuint (open_connections (fixture), ==, MAX_CONNECTIONS);

  newcomer = kv_raw_connect (fixture->port);
  kv_raw_send_string (newcomer, "GET /kv/a HTTP/1.1\r\n" H "\r\n");
  response = kv_raw_read_response (newcomer, FALSE, 5000);
  g_assert_cmpuint (response->status, ==, 404);

  /* The oldest idle connection went, and only it. */
  g_assert_true (kv_raw_wait_closed (g_ptr_array_index (held, 0), 2000));
  for (guint i = 1; i < held->len; i++)
    if (kv_raw_wait_closed (g_ptr_array_index (held, i), 10))
      closed++;
  g_assert_cmpuint (closed, ==, 0);

  g_ptr_array_set_size (held, 0);
}

static void
test_flood_sheds_trickler (Fixture       *fixture,
                           gconstpointer  user_data)
{
  g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(KvRawResponse) shed = NULL;

  g_test_summary ("Past max-connections with every slot taken by clients trickling their "
                  "headers, each newcomer is served and the oldest trickler gets 503");

  for (guint i = 0; i < MAX_CONNECTIONS; i++)
    {
      GSocket *socket = kv_raw_connect (fixture->port);

      /* A request line and no end of headers. */
      kv_raw_send_string (socket, "GET /kv/a HTTP/1.1\r\n" H);
      g_ptr_array_add (held, socket);
      g_usleep (2000);
    }
  wait_for_open_connections (fixture, MAX_CONNECTIONS);

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(KvRawResponse) r = kv_raw_simple (fixture->port, "GET", "/kv/a", NULL);

      g_assert_cmpuint (r->status, ==, 404);
    }

  /* The first trickler, which had been at it the longest, made room. */
  shed = kv_raw_read_response (g_ptr_array_index (held, 0), FALSE, 2000);
  g_assert_cmpuint (shed->status, ==, 503);
  g_assert_cmpstr (kv_raw_response_header (shed, "retry-after"), ==, "1");
  g_assert_true (kv_raw_response_body_is (shed, "too many connections\n"));

  g_ptr_array_set_size (held, 0);
}

static void
test_no_leak (Fixture       *fixture,
              gconstpointer  user_data)
{
  const char *requests[] = {
    "GET /kv/a HTTP/1.1\r\n" H "\r\n",
    "PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 1\r\n\r\nx",
    "PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 99999\r\n\r\n",
    "PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    "GARBAGE\r\n\r\n",
    "GET /kv/a HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    "GET /kv/a HTTP/1.1\r\n" H "Origin: http://evil.example\r\n\r\n",
    "GET /kv/a HTTP/1.1\r\n" H,
    "",
  };
  guint fds;

  g_test_summary ("A thousand connections of every kind leave no file descriptor and no "
                  "connection slot behind");

  /* Warm up whatever is created once. */
  kv_raw_response_free (kv_raw_simple (fixture->port, "GET", "/kv/a", NULL));
  assert_no_connection_left (fixture);
  fds = kv_test_count_fds ();

  for (guint i = 0; i < 1000; i++)
    {
      g_autoptr(GSocket) socket = kv_raw_connect (fixture->port);

      const char *request = requests[i % G_N_ELEMENTS (requests)];

      kv_raw_send_string (socket, request);
      /* Half of those that get an answer read it; the others hang up
       * at once, some before the server has even seen the request. */
      if (i % 2 == 0 && g_str_has_suffix (request, "\r\n\r\n"))
        {
          g_autoptr(KvRawResponse) response = kv_raw_read_response (socket, FALSE, 5000);

          if (response->status == 0)
            g_test_message ("No answer to: %s", request);
          g_assert_cmpuint (response->status, !=, 0);
        }
    }

  assert_no_connection_left (fixture);
  g_assert_cmpuint (kv_test_count_fds (), ==, fds);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strconcat ("/kv/hostile/", cases[i].name, NULL);

      g_test_add (path, Fixture, &cases[i], fixture_setup, test_case, fixture_teardown);
    }

#define ADD(path, func) \
  g_test_add ("/kv/hostile/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("header/oversized-block", test_oversized_header_block);
  ADD ("line/oversized", test_oversized_request_line);
  ADD ("header/too-many", test_too_many_headers);
  ADD ("size/expect-refused", test_expect_continue_refused);
  ADD ("size/expect-accepted", test_expect_continue_accepted);
  ADD ("size/large-body", test_large_body_without_expect);
  ADD ("chunked/over-limit", test_chunked_over_limit);
  ADD ("chunked/within-limit", test_chunked_within_limit);
  ADD ("pipelined", test_pipelined);
  ADD ("target/options-asterisk", test_options_asterisk);
  ADD ("slow/silent", test_silent_client);
  ADD ("slow/headers", test_trickled_headers);
  ADD ("slow/body", test_trickled_body);
  ADD ("slow/next-request", test_trickled_next_request);
  ADD ("slow/reader", test_slow_reader);
  ADD ("idle/timeout", test_idle_keepalive);
  ADD ("idle/closed-by-client", test_idle_close_by_client);
  ADD ("watch/deadlines", test_watch_deadlines);
  ADD ("watch/then-request", test_watch_then_request);
  ADD ("watch/connection-limit", test_watch_connection_limit);
  ADD ("flood/max-connections", test_flood);
  ADD ("flood/sheds-idle", test_flood_sheds_idle);
  g_test_add ("/kv/hostile/flood/sheds-trickler", Fixture, NULL, fixture_setup_patient,
              test_flood_sheds_trickler, fixture_teardown);
  g_test_add ("/kv/hostile/flood/no-leak", Fixture, NULL, fixture_setup_roomy, test_no_leak,
              fixture_teardown);
#undef ADD

  return g_test_run ();
}
