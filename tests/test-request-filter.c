/* test-request-filter.c: KvRequestFilter on its own, however the bytes
 * are split into reads
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "http/kv-response.h"
#include "net/kv-request-filter.h"

#define H "Host: localhost\r\n"

typedef struct
{
  guint status;
  char *text;
  guint times;
  gboolean wants_json;
} Refusal;

static void
on_refused (KvRequestFilter *filter,
            guint            status,
            const char      *text,
            gpointer         data)
{
  Refusal *refusal = data;

  refusal->status = status;
  g_free (refusal->text);
  refusal->text = g_strdup (text);
  refusal->times++;
  refusal->wants_json = kv_request_filter_get_wants_json (filter);
}

/* Reads @input through a filter, @block bytes at a time at most; returns
 * what came through. */
static GBytes *
pass (const char *input,
      gsize       len,
      gsize       block,
      Refusal    *refusal)
{
  g_autoptr(GInputStream) base = g_memory_input_stream_new_from_data (input, len, NULL);
  g_autoptr(KvRequestFilter) filter = kv_request_filter_new (base, 1024, 10);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  guint8 buffer[4096];

  g_signal_connect (filter, "refused", G_CALLBACK (on_refused), refusal);

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (filter),
                                                           buffer, block, NULL, &error);
      if (n == 0)
        break;
      if (n < 0)
        {
          /* Refused: blocked for ever, and not readable. */
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          g_assert_false (g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (filter)));
          break;
        }
      g_byte_array_append (out, buffer, n);
    }

  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static const char *valid =
  "\r\nGET /kv/a HTTP/1.1\r\n" H "\r\n"
  "PUT /kv/b HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
  "PUT /kv/c HTTP/1.1\r\n" H "Transfer-Encoding: Chunked\r\n\r\n"
  "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n000\r\n\r\n"
  "DELETE /kv/c HTTP/1.0\r\nX-Empty:\r\nX-Tab:\tvalue\t\r\n\r\n"
  /* What an EventSource sends when it resumes a watch. */
  "GET /watch?prefix=a%2Fb&since=3 HTTP/1.1\r\n" H "Accept: text/event-stream\r\n"
  "Cache-Control: no-cache\r\nLast-Event-ID: 7\r\n\r\n"
  "OPTIONS * HTTP/1.1\r\n" H "\r\n";

static void
test_valid (void)
{
  gsize len = strlen (valid);

  g_test_summary ("Well-formed pipelined requests pass through untouched, whatever the "
                  "size of the reads");

  for (gsize block = 1; block <= len; block++)
    {
      Refusal refusal = { 0, };
      g_autoptr(GBytes) out = pass (valid, len, block, &refusal);

      g_assert_cmpuint (refusal.times, ==, 0);
      g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out), valid, len);
    }
}

typedef struct
{
  const char *input;
  gsize len;
  gsize fine;          /* bytes let through: the offset of the refused byte */
  guint status;
} Refused;

/* The text and its length, NUL bytes included. */
#define REQ(text) text, sizeof (text) - 1
#define AT(text) (sizeof (text) - 1)

static void
test_refused (void)
{
  const Refused cases[] = {
    { REQ ("GET /kv/a HTTP/1.1\n"),
      AT ("GET /kv/a HTTP/1.1"), 400 },
    { REQ ("GET /kv/a HTTP/1.1\r" H), AT ("GET /kv/a HTTP/1.1\r"), 400 },
    /* Framed soundly, but refused: at the end of the header block. */
    { REQ ("GET /kv/a HTTP/3.0\r\n\r\n"),
      AT ("GET /kv/a HTTP/3.0\r\n\r"), 505 },
    { REQ ("GET /kv/a\0 HTTP/1.1\r\n"),
      AT ("GET /kv/a"), 400 },
    { REQ ("GET /kv/a HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 1\r\n\r\n"),
      AT ("GET /kv/a HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 1\r\n\r"), 400 },
    { REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
      AT ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r"),
      400 },
    { REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n"),
      AT ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r"), 501 },
    { REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3zz\r\n"),
      AT ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3zz\r"), 400 },
    { REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabcd"),
      AT ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n3\r\nabc"), 400 },
    { REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n\r\n"),
      AT ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n0\r\n"), 400 },
    /* The second request is refused, the first passes whole. */
    { REQ ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 3\r\n\r\n"
           "abcGET /kv/a HTTP/1.1\r\n" H "X : 1\r\n"),
      AT ("PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 3\r\n\r\n"
          "abcGET /kv/a HTTP/1.1\r\n" H "X : 1\r"),
      400 },
    /* Framed soundly but refused, then broken framing: refused at once,
     * with the first problem's status. */
    { REQ ("GET /kv/a HTTP/3.0\r\nX : 1\r\n\r\n"),
      AT ("GET /kv/a HTTP/3.0\r\nX : 1\r"), 505 },
    { REQ ("GET /kv/a%zz HTTP/1.1\r\n" H "X-A: b\r\n  c\r\n\r\n"),
      AT ("GET /kv/a%zz HTTP/1.1\r\n" H "X-A: b\r\n  c\r"), 400 },
    /* Two problems at the end of the headers: the first one found. */
    { REQ ("GET / HTTP/1.1\r\nExpect: nothing\r\nHost: a b\r\n\r\n"),
      AT ("GET / HTTP/1.1\r\nExpect: nothing\r\nHost: a b\r\n\r"), 417 },
    { REQ ("GET /%zz HTTP/1.1\r\nExpect: nothing\r\n\r\n"),
      AT ("GET /%zz HTTP/1.1\r\nExpect: nothing\r\n\r"), 400 },
    /* Eleven headers, with a limit of ten. */
    { REQ ("GET / HTTP/1.1\r\na:\r\nb:\r\nc:\r\nd:\r\ne:\r\nf:\r\ng:\r\nh:\r\ni:\r\nj:\r\nk:\r\n"),
      AT ("GET / HTTP/1.1\r\na:\r\nb:\r\nc:\r\nd:\r\ne:\r\nf:\r\ng:\r\nh:\r\ni:\r\nj:\r\nk:\r"),
      431 },
  };

  g_test_summary ("The first unacceptable byte stops the stream: everything before it "
                  "passes, then reads block and “refused” tells the answer, once");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *input = cases[i].input;
      gsize len = cases[i].len;

      for (gsize block = 1; block <= 64; block++)
        {
          Refusal refusal = { 0, };
          g_autoptr(GBytes) out = pass (input, len, block, &refusal);

          g_assert_cmpuint (refusal.times, ==, 1);
          g_assert_cmpuint (refusal.status, ==, cases[i].status);
          g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out),
                           input, cases[i].fine);
          g_free (refusal.text);
        }
    }
}

static void
test_header_size (void)
{
  g_autoptr(GString) input = g_string_new ("GET /");
  Refusal refusal = { 0, };
  g_autoptr(GBytes) out = NULL;

  g_test_summary ("A request line and headers over max-header-size are refused with 431");

  while (input->len < 2000)
    g_string_append_c (input, 'k');
  out = pass (input->str, input->len, 100, &refusal);
  g_assert_cmpuint (refusal.status, ==, 431);
  g_assert_cmpstr (refusal.text, ==, "headers too large");
  g_assert_cmpuint (g_bytes_get_size (out), ==, 1024);
  g_free (refusal.text);
}

/* Block sizes to split each request of the tables below into. */
static const gsize blocks[] = { 1, 2, 3, 5, 16, G_MAXSIZE };

static void
assert_passes (const char *request)
{
  gsize len = strlen (request);
  g_autofree char *escaped = g_strescape (request, NULL);

  g_test_message ("Passes: %s", escaped);
  for (gsize i = 0; i < G_N_ELEMENTS (blocks); i++)
    {
      Refusal refusal = { 0, };
      g_autoptr(GBytes) out = pass (request, len, MIN (blocks[i], 4096), &refusal);

      g_assert_cmpuint (refusal.times, ==, 0);
      g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out), request, len);
    }
}

/* A soundly framed request is refused at the LF that ends its header
 * block: libsoup never has the whole block. */
static void
assert_refused_at_end (const char *request,
                       guint       status)
{
  const char *end = strstr (request, "\r\n\r\n");
  g_autofree char *escaped = g_strescape (request, NULL);

  g_test_message ("Refused with %u: %s", status, escaped);
  g_assert_nonnull (end);
  for (gsize i = 0; i < G_N_ELEMENTS (blocks); i++)
    {
      Refusal refusal = { 0, };
      g_autoptr(GBytes) out = pass (request, strlen (request), MIN (blocks[i], 4096), &refusal);

      g_assert_cmpuint (refusal.times, ==, 1);
      g_assert_cmpuint (refusal.status, ==, status);
      g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out),
                       request, end + 3 - request);
      g_free (refusal.text);
    }
}

static void
test_target (void)
{
  const char *accepted[] = {
    "GET / HTTP/1.1\r\n" H "\r\n",
    "GET /kv/a%20b%2Fc%2fd HTTP/1.1\r\n" H "\r\n",
    "GET /kv/a?x=%41&y=%7e#%42 HTTP/1.1\r\n" H "\r\n",
    /* With raw paths, these reach the handlers, which judge the key. */
    "GET /kv/a%00b HTTP/1.1\r\n" H "\r\n",
    "GET /kv/x%2F..%2Fy HTTP/1.1\r\n" H "\r\n",
    "GET http://localhost/kv/a HTTP/1.1\r\n" H "\r\n",
    "GET HTTP://LOCALHOST:8888/kv/a?x HTTP/1.1\r\n" H "\r\n",
    "GET http://127.0.0.1 HTTP/1.1\r\n" H "\r\n",
    "GET http://[::1]:8888/kv/a HTTP/1.1\r\n" H "\r\n",
    "GET http://localhost:?x HTTP/1.1\r\n" H "\r\n",
    "GET http://localhost/kv/a HTTP/1.0\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\n" H "\r\n",
    "OPTIONS * HTTP/1.0\r\n" H "\r\n",
    /* Methods are case-sensitive: this one is no CONNECT to libsoup. */
    "connect /kv/a HTTP/1.1\r\n" H "\r\n",
  };
  const char *refused[] = {
    "GET /kv/a%zz HTTP/1.1\r\n" H "\r\n",
    "GET /kv/a% HTTP/1.1\r\n" H "\r\n",
    "GET /kv/a%2 HTTP/1.1\r\n" H "\r\n",
    "GET /kv/%g0 HTTP/1.1\r\n" H "\r\n",
    "GET /kv/a%%41 HTTP/1.1\r\n" H "\r\n",
    "GET /kv/a?x=%zz HTTP/1.1\r\n" H "\r\n",
    "GET /kv/a#%z HTTP/1.1\r\n" H "\r\n",
    "GET /kv/a%zz HTTP/1.0\r\n\r\n",
    "GET kv/a HTTP/1.1\r\n" H "\r\n",
    "GET http://[::1 HTTP/1.1\r\n" H "\r\n",
    "GET http://[::1]x/ HTTP/1.1\r\n" H "\r\n",
    "GET http:///kv/a HTTP/1.1\r\n" H "\r\n",
    "GET http://user@localhost/kv/a HTTP/1.1\r\n" H "\r\n",
    "GET http://localhost:99999/ HTTP/1.1\r\n" H "\r\n",
    "GET http://localhost/kv/a%zz HTTP/1.1\r\n" H "\r\n",
    "GET http:/kv/a HTTP/1.1\r\n" H "\r\n",
    "GET https://localhost/kv/a HTTP/1.1\r\n" H "\r\n",
    "GET ftp://localhost/ HTTP/1.1\r\n" H "\r\n",
    "GET * HTTP/1.1\r\n" H "\r\n",
    "options * HTTP/1.1\r\n" H "\r\n",
    "OPTIONS * HTTP/1.0\r\n\r\n",
    "CONNECT localhost:8888 HTTP/1.1\r\n" H "\r\n",
    "CONNECT /kv/a HTTP/1.1\r\n" H "\r\n",
  };

  g_test_summary ("A target is /…, http://… with a valid authority, or * for OPTIONS with a "
                  "Host, and every % in it is followed by two hex digits: else 400, at the "
                  "end of the headers");

  for (gsize i = 0; i < G_N_ELEMENTS (accepted); i++)
    assert_passes (accepted[i]);
  for (gsize i = 0; i < G_N_ELEMENTS (refused); i++)
    assert_refused_at_end (refused[i], 400);
}

static void
test_host (void)
{
  const char *accepted[] = {
    "localhost", "LOCALHOST:8888", "127.0.0.1", "127.0.0.1:0", "[::1]", "[::1]:8888",
    "[::ffff:127.0.0.1]:80", "localhost:", "localhost:00080", "evil.example",
    "a-b_c~d!$&'()*+,;=", "  localhost \t",
  };
  const char *refused[] = {
    "", ":8888", "local/host", "local host", "a@localhost", "loc%61lhost", "localhost?",
    "local#host", "[::1", "[::1]x", "[::1]:x", "[127.0.0.1]", "[v1.fe]", "[fe80::1%25lo]",
    "[::1::2]", "[]", "localhost:http", "localhost:65536", "localhost:99999999999999999999",
    "localhost:8888:8888", "loc\001host", "h\303\266st", "loc\177host",
  };

  g_test_summary ("HTTP/1.1 needs a Host; a Host is a reg-name, an IPv4 address or an [IPv6 "
                  "address], with an optional port up to 65535: else 400, at the end of the "
                  "headers");

  for (gsize i = 0; i < G_N_ELEMENTS (accepted); i++)
    {
      g_autofree char *request = g_strdup_printf ("GET /kv/a HTTP/1.1\r\nHost:%s\r\n\r\n",
                                                  accepted[i]);
      assert_passes (request);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autofree char *request = g_strdup_printf ("GET /kv/a HTTP/1.1\r\nHost: %s\r\n\r\n",
                                                  refused[i]);
      g_autofree char *request_1_0 = g_strdup_printf ("GET /kv/a HTTP/1.0\r\nHost: %s\r\n\r\n",
                                                      refused[i]);
      assert_refused_at_end (request, 400);
      assert_refused_at_end (request_1_0, 400);
    }

  assert_passes ("GET /kv/a HTTP/1.0\r\n\r\n");
  assert_refused_at_end ("GET /kv/a HTTP/1.1\r\n\r\n", 400);
  assert_refused_at_end ("GET /kv/a HTTP/1.1\r\nX-Host: localhost\r\n\r\n", 400);
  assert_refused_at_end ("GET /kv/a HTTP/1.1\r\n" H H "\r\n", 400);
}

static void
test_expect (void)
{
  g_test_summary ("An Expect other than one 100-continue is 417, at the end of the headers");

  assert_passes ("PUT /kv/a HTTP/1.1\r\n" H "Expect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
  assert_passes ("PUT /kv/a HTTP/1.1\r\n" H "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\nx");
  assert_refused_at_end ("GET /kv/a HTTP/1.1\r\n" H "Expect: foo\r\n\r\n", 417);
  assert_refused_at_end ("GET /kv/a HTTP/1.1\r\n" H "Expect:\r\n\r\n", 417);
  assert_refused_at_end ("GET /kv/a HTTP/1.1\r\n" H "Expect: 100-continue, foo\r\n\r\n", 417);
  assert_refused_at_end ("GET /kv/a HTTP/1.1\r\n" H "Expect: 100-continue\r\n"
                         "Expect: 100-continue\r\n\r\n", 417);
}

static void
test_cut_off (void)
{
  const struct
  {
    const char *input;
    guint status;
  } cut[] = {
    { "\r", 400 },
    { "GET /kv/a HT", 400 },
    { "GET /kv/a HTTP/1.1\r\n", 400 },
    { "GET /kv/a HTTP/1.1\r\nHost: loc", 400 },
    { "GET /kv/a HTTP/1.1\r\n" H "\r", 400 },
    { "\r\nGET /kv/a HTTP/1.1\r\n" H "\r\n" "GET /kv/b", 400 },
    /* A refusal waiting for the end of the headers is told at the end
     * of the stream. */
    { "GET /kv/a HTTP/3.0\r\n" H, 505 },
  };
  const char *whole[] = {
    "",
    "\r\n",
    "GET /kv/a HTTP/1.1\r\n" H "\r\n",
    /* A body cut off: libsoup closes the connection without an answer. */
    "PUT /kv/a HTTP/1.1\r\n" H "Content-Length: 10\r\n\r\nabc",
    "PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n5\r\nab",
  };

  g_test_summary ("A stream that ends inside a request line or header block is refused "
                  "with 400 at its end, every byte passed; elsewhere its end passes");

  for (gsize i = 0; i < G_N_ELEMENTS (cut); i++)
    {
      gsize len = strlen (cut[i].input);

      for (gsize j = 0; j < G_N_ELEMENTS (blocks); j++)
        {
          Refusal refusal = { 0, };
          g_autoptr(GBytes) out = pass (cut[i].input, len, MIN (blocks[j], 4096), &refusal);

          g_assert_cmpuint (refusal.times, ==, 1);
          g_assert_cmpuint (refusal.status, ==, cut[i].status);
          g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out),
                           cut[i].input, len);
          g_free (refusal.text);
        }
    }
  for (gsize i = 0; i < G_N_ELEMENTS (whole); i++)
    assert_passes (whole[i]);
}

static void
test_wants_json (void)
{
  const struct
  {
    const char *accept;
    gboolean json;
  } cases[] = {
    { "application/json", TRUE },
    { "APPLICATION/Json", TRUE },
    { "text/html, application/json;q=0.9", TRUE },
    { "text/plain;q=0, application/json;q=0.5, ", TRUE },
    { " , ,application/json", TRUE },
    { "application/json; q=0.001", TRUE },
    { "application/json;q= 0.5", TRUE },
    { "application/json;q=1e-3", TRUE },
    { "application/json;charset=utf-8", TRUE },
    { "application/json;q=0", FALSE },
    { "application/json;q=0.000", FALSE },
    { "application/json ;q=0", FALSE },
    { "application/json;Q=0", FALSE },
    { "application/json;q=", FALSE },
    { "application/json;q=abc", FALSE },
    { "application/json;q=-1", FALSE },
    { "application/json;charset=utf-8;q=0", FALSE },
    { "application/json;q=0;q=1", FALSE },
    { "application/json;q=0 , text/plain", FALSE },
    { "*/*", FALSE },
    { "application/*", FALSE },
    { "application/jsonx", FALSE },
    { "text/plain", FALSE },
    { "", FALSE },
  };

  g_test_summary ("A refused request's Accept is read as kv_response_wants_json() reads "
                  "it once libsoup has parsed it, wherever it is in the header block");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(SoupMessageHeaders) headers = NULL;
      g_autofree char *request = g_strdup_printf ("GET /kv/a%%zz HTTP/1.1\r\nAccept: %s\r\n"
                                                  H "\r\n", cases[i].accept);
      Refusal refusal = { 0, };
      g_autoptr(GBytes) out = NULL;

      g_test_message ("Accept: %s", cases[i].accept);
      headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
      soup_message_headers_append (headers, "Accept", cases[i].accept);
      g_assert_cmpint (kv_response_wants_json (headers), ==, cases[i].json);

      out = pass (request, strlen (request), 3, &refusal);
      g_assert_cmpuint (refusal.times, ==, 1);
      g_assert_cmpint (refusal.wants_json, ==, cases[i].json);
      g_free (refusal.text);
    }

  {
    /* Two fields make one list; after the Host that is refused. */
    const char *request = "GET /kv/a HTTP/1.1\r\nAccept: text/plain\r\nHost: a/b\r\n"
                          "Accept: application/json\r\n\r\n";
    Refusal refusal = { 0, };
    g_autoptr(GBytes) out = pass (request, strlen (request), 7, &refusal);

    g_assert_cmpuint (refusal.status, ==, 400);
    g_assert_true (refusal.wants_json);
    g_free (refusal.text);
  }
  {
    /* Each request has its own. */
    const char *request = "GET /kv/a HTTP/1.1\r\n" H "Accept: application/json\r\n\r\n"
                          "GET /kv/%zz HTTP/1.1\r\n" H "\r\n";
    Refusal refusal = { 0, };
    g_autoptr(GBytes) out = pass (request, strlen (request), 7, &refusal);

    g_assert_cmpuint (refusal.status, ==, 400);
    g_assert_false (refusal.wants_json);
    g_free (refusal.text);
  }
  {
    /* Refused before its Accept could be read: broken framing. */
    const char *request = "GET /kv/a HTTP/1.1\r\n" H "X : 1\r\nAccept: application/json\r\n\r\n";
    Refusal refusal = { 0, };
    g_autoptr(GBytes) out = pass (request, strlen (request), 7, &refusal);

    g_assert_cmpuint (refusal.status, ==, 400);
    g_assert_false (refusal.wants_json);
    g_free (refusal.text);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/request-filter/valid", test_valid);
  g_test_add_func ("/kv/request-filter/refused", test_refused);
  g_test_add_func ("/kv/request-filter/header-size", test_header_size);
  g_test_add_func ("/kv/request-filter/target", test_target);
  g_test_add_func ("/kv/request-filter/host", test_host);
  g_test_add_func ("/kv/request-filter/expect", test_expect);
  g_test_add_func ("/kv/request-filter/cut-off", test_cut_off);
  g_test_add_func ("/kv/request-filter/wants-json", test_wants_json);

  return g_test_run ();
}
