/* kv-test-raw.c: an HTTP client that speaks raw bytes, for tests that
 * must send what no well-behaved client would
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "kv-test-raw.h"

/* Bytes read past the end of one response belong to the next one. */
#define PENDING_KEY "kv-raw-pending"

void
kv_raw_response_free (KvRawResponse *response)
{
  g_clear_pointer (&response->headers, g_hash_table_unref);
  g_clear_pointer (&response->body, g_bytes_unref);
  g_free (response->raw_head);
  g_free (response);
}

const char *
kv_raw_response_header (KvRawResponse *response,
                        const char    *name)
{
  g_autofree char *lower = g_ascii_strdown (name, -1);

  return response->headers != NULL ? g_hash_table_lookup (response->headers, lower) : NULL;
}

gboolean
kv_raw_response_body_is (KvRawResponse *response,
                         const char    *text)
{
  gsize len = response->body != NULL ? g_bytes_get_size (response->body) : 0;

  return len == strlen (text) && (len == 0 || memcmp (g_bytes_get_data (response->body, NULL),
                                                      text, len) == 0);
}

GSocket *
kv_raw_connect_address (GSocketAddress *address)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = NULL;

  socket = g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  /* A server whose queue is full must fail the test, not hang it. */
  g_socket_set_blocking (socket, FALSE);
  if (!g_socket_connect (socket, address, NULL, &error))
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
      g_clear_error (&error);
      g_socket_condition_timed_wait (socket, G_IO_OUT, 10 * G_USEC_PER_SEC, NULL, &error);
      g_assert_no_error (error);
      g_socket_check_connect_result (socket, &error);
      g_assert_no_error (error);
    }
  g_object_set_data_full (G_OBJECT (socket), PENDING_KEY, g_byte_array_new (),
                          (GDestroyNotify) g_byte_array_unref);

  return g_steal_pointer (&socket);
}

GSocket *
kv_raw_connect (guint16 port)
{
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string ("127.0.0.1", port);

  return kv_raw_connect_address (address);
}

/* Sends all of @data; FALSE if the server closed the connection first,
 * which hostile requests are allowed to provoke. */
gboolean
kv_raw_send (GSocket    *socket,
             const void *data,
             gsize       len)
{
  gsize sent = 0;

  while (sent < len)
    {
      g_autoptr(GError) error = NULL;
      gssize n;

      if (!g_socket_condition_timed_wait (socket, G_IO_OUT, 5 * G_USEC_PER_SEC, NULL, &error))
        return FALSE;
      n = g_socket_send (socket, (const char *) data + sent, len - sent, NULL, &error);
      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            continue;
          return FALSE;
        }
      sent += n;
    }

  return TRUE;
}

gboolean
kv_raw_send_string (GSocket    *socket,
                    const char *text)
{
  return kv_raw_send (socket, text, strlen (text));
}

/* Reads more into @buffer; FALSE at the end of the stream, on a reset or
 * past @deadline. */
static gboolean
read_more (GSocket    *socket,
           GByteArray *buffer,
           gint64      deadline)
{
  char block[16384];

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gint64 left = deadline - g_get_monotonic_time ();
      gssize n;

      if (left <= 0)
        return FALSE;
      if (!g_socket_condition_timed_wait (socket, G_IO_IN, left, NULL, &error))
        return FALSE;
      n = g_socket_receive (socket, block, sizeof block, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        continue;
      if (n <= 0)
        return FALSE;
      g_byte_array_append (buffer, (const guint8 *) block, n);
      return TRUE;
    }
}

static gssize
find (GByteArray *buffer,
      const char *needle)
{
  gsize len = strlen (needle);

  for (gsize i = 0; i + len <= buffer->len; i++)
    if (memcmp (buffer->data + i, needle, len) == 0)
      return i;
  return -1;
}

/* Takes @len bytes off the front of @buffer. */
static GBytes *
take (GByteArray *buffer,
      gsize       len)
{
  GBytes *bytes = g_bytes_new (buffer->data, len);

  g_byte_array_remove_range (buffer, 0, len);
  return bytes;
}

static gboolean
read_chunked (GSocket    *socket,
              GByteArray *buffer,
              GByteArray *body,
              gint64      deadline)
{
  for (;;)
    {
      gssize eol;
      guint64 size;
      g_autofree char *line = NULL;

      while ((eol = find (buffer, "\r\n")) < 0)
        if (!read_more (socket, buffer, deadline))
          return FALSE;
      line = g_strndup ((const char *) buffer->data, eol);
      g_byte_array_remove_range (buffer, 0, eol + 2);
      size = g_ascii_strtoull (line, NULL, 16);
      while (buffer->len < size + 2)
        if (!read_more (socket, buffer, deadline))
          return FALSE;
      g_byte_array_append (body, buffer->data, size);
      g_byte_array_remove_range (buffer, 0, size + 2);
      if (size == 0)
        return TRUE;
    }
}

/**
 * kv_raw_read_response:
 * @socket: a connection from kv_raw_connect()
 * @head: whether the request was HEAD (no body follows)
 * @timeout_ms: how long to wait for the whole response
 *
 * Returns: (transfer full): the response, with status 0 if the connection
 *   ended before a whole status line and headers
 */
KvRawResponse *
kv_raw_read_response (GSocket  *socket,
                      gboolean  head,
                      guint     timeout_ms)
{
  GByteArray *buffer = g_object_get_data (G_OBJECT (socket), PENDING_KEY);
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;
  KvRawResponse *response = g_new0 (KvRawResponse, 1);
  g_auto(GStrv) lines = NULL;
  const char *length;
  const char *encoding;
  gssize end;

  while ((end = find (buffer, "\r\n\r\n")) < 0)
    if (!read_more (socket, buffer, deadline))
      return response;

  response->raw_head = g_strndup ((const char *) buffer->data, end);
  g_byte_array_remove_range (buffer, 0, end + 4);
  lines = g_strsplit (response->raw_head, "\r\n", -1);
  g_assert_true (g_str_has_prefix (lines[0], "HTTP/1."));
  response->status = g_ascii_strtoull (lines[0] + strlen ("HTTP/1.x "), NULL, 10);
  response->headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (gsize i = 1; lines[i] != NULL; i++)
    {
      const char *colon = strchr (lines[i], ':');
      const char *value;

      g_assert_nonnull (colon);
      for (value = colon + 1; *value == ' '; value++)
        ;
      g_hash_table_replace (response->headers, g_ascii_strdown (lines[i], colon - lines[i]),
                            g_strdup (value));
    }

  length = kv_raw_response_header (response, "Content-Length");
  encoding = kv_raw_response_header (response, "Transfer-Encoding");
  if (head || response->status < 200 || response->status == 204 || response->status == 304)
    response->body = g_bytes_new (NULL, 0);
  else if (encoding != NULL && g_ascii_strcasecmp (encoding, "chunked") == 0)
    {
      g_autoptr(GByteArray) body = g_byte_array_new ();

      if (read_chunked (socket, buffer, body, deadline))
        response->body = g_byte_array_free_to_bytes (g_steal_pointer (&body));
    }
  else if (length != NULL)
    {
      guint64 n = g_ascii_strtoull (length, NULL, 10);

      while (buffer->len < n)
        if (!read_more (socket, buffer, deadline))
          break;
      if (buffer->len >= n)
        response->body = take (buffer, n);
    }
  else
    {
      while (read_more (socket, buffer, deadline))
        ;
      response->body = take (buffer, buffer->len);
    }

  /* A cut-off body is no response at all. */
  if (response->body == NULL)
    response->status = 0;

  return response;
}

/**
 * kv_raw_wait_closed:
 * @socket: a connection
 * @timeout_ms: how long to wait
 *
 * Reads and throws away whatever comes until the server closes.
 *
 * Returns: %TRUE if the server closed (or reset) the connection in time
 */
gboolean
kv_raw_wait_closed (GSocket *socket,
                    guint    timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;
  char block[16384];

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gint64 left = deadline - g_get_monotonic_time ();
      gssize n;

      if (left <= 0)
        return FALSE;
      if (!g_socket_condition_timed_wait (socket, G_IO_IN, left, NULL, &error))
        return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ? FALSE : TRUE;
      n = g_socket_receive (socket, block, sizeof block, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        continue;
      if (n <= 0)
        return TRUE;
    }
}

/**
 * kv_raw_request:
 * @port: the server's port on 127.0.0.1
 * @request: the bytes to send, as they are
 *
 * Returns: (transfer full): the first response, or one with status 0 if
 *   the server closed the connection without answering
 */
KvRawResponse *
kv_raw_request (guint16     port,
                const char *request)
{
  g_autoptr(GSocket) socket = kv_raw_connect (port);

  kv_raw_send_string (socket, request);
  return kv_raw_read_response (socket, g_str_has_prefix (request, "HEAD "), 5000);
}

/* A well-formed request on a fresh connection. */
KvRawResponse *
kv_raw_simple (guint16     port,
               const char *method,
               const char *path,
               const char *body)
{
  g_autofree char *request = NULL;

  if (body != NULL)
    request = g_strdup_printf ("%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n%s",
                               method, path, strlen (body), body);
  else
    request = g_strdup_printf ("%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n", method, path);

  return kv_raw_request (port, request);
}

/* How many file descriptors this process has open. */
guint
kv_test_count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;

  /* Not the one g_dir_open() holds. */
  return n - 1;
}
