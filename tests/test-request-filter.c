/* test-request-filter.c: KvRequestFilter on its own, however the bytes
 * are split into reads
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "net/kv-request-filter.h"

#define H "Host: localhost\r\n"

typedef struct
{
  guint status;
  char *text;
  guint times;
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
    { REQ ("GET /kv/a HTTP/3.0\r\n"),
      AT ("GET /kv/a HTTP/3.0\r"), 505 },
    { REQ ("GET /kv/a\0 HTTP/1.1\r\n"),
      AT ("GET /kv/a"), 400 },
    { REQ ("GET /kv/a HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 1\r\n"),
      AT ("GET /kv/a HTTP/1.1\r\n" H "Content-Length: 1\r\nContent-Length: 1\r"), 400 },
    { REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
      AT ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r"),
      400 },
    { REQ ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n"),
      AT ("PUT /kv/a HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r"), 501 },
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

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/request-filter/valid", test_valid);
  g_test_add_func ("/kv/request-filter/refused", test_refused);
  g_test_add_func ("/kv/request-filter/header-size", test_header_size);

  return g_test_run ();
}
