/* kv-test-sse.c: a client of Server-Sent Events over a raw socket, many
 * at once if need be
 *
 * SPDX-License-Identifier: MIT
 *
 * Sends one GET, then reads what comes as it comes: the response's head,
 * a chunked body, and the blocks of the event stream in it. Reads never
 * block unless asked to wait, so that a test can keep a thousand streams
 * in one poll loop.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "kv-test-raw.h"
#include "kv-test-sse.h"

struct _KvSseClient
{
  GSocket *socket;
  GByteArray *raw;              /* read, not parsed yet */
  gboolean head_done;
  guint status;
  GHashTable *headers;          /* lower-case name → value */
  gboolean chunked;
  enum { CHUNK_SIZE, CHUNK_DATA, CHUNK_END } chunk_state;
  guint64 chunk_left;           /* of the chunk being read */
  gboolean ended;               /* the last chunk came */
  gboolean closed;
  GString *body;                /* the whole body so far */
  gsize parsed;                 /* how much of it made blocks */
  GQueue blocks;                /* (element-type KvSseBlock) */
};

void
kv_sse_block_free (KvSseBlock *block)
{
  g_free (block->event);
  g_free (block->id);
  g_free (block->data);
  g_free (block->comment);
  g_free (block);
}

/**
 * kv_sse_client_new:
 * @port: the server's port on 127.0.0.1
 * @target: the request's target, such as "/watch?prefix=a"
 * @headers: (nullable) (array zero-terminated=1): more header lines
 *
 * Returns: (transfer full): a client whose request is sent
 */
KvSseClient *
kv_sse_client_new (guint16             port,
                   const char         *target,
                   const char * const *headers)
{
  KvSseClient *self = g_new0 (KvSseClient, 1);
  g_autoptr(GString) request = g_string_new (NULL);

  self->socket = kv_raw_connect (port);
  self->raw = g_byte_array_new ();
  self->headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->body = g_string_new (NULL);
  g_queue_init (&self->blocks);

  g_string_printf (request, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", target);
  for (gsize i = 0; headers != NULL && headers[i] != NULL; i++)
    g_string_append_printf (request, "%s\r\n", headers[i]);
  g_string_append (request, "\r\n");
  g_assert_true (kv_raw_send (self->socket, request->str, request->len));

  return self;
}

void
kv_sse_client_free (KvSseClient *self)
{
  g_socket_close (self->socket, NULL);
  g_object_unref (self->socket);
  g_byte_array_unref (self->raw);
  g_hash_table_unref (self->headers);
  g_string_free (self->body, TRUE);
  g_queue_clear_full (&self->blocks, (GDestroyNotify) kv_sse_block_free);
  g_free (self);
}

GSocket *
kv_sse_client_get_socket (KvSseClient *self)
{
  return self->socket;
}

static gboolean
parse_head (KvSseClient *self)
{
  const char *data = (const char *) self->raw->data;
  const char *end = self->raw->len > 0 ? g_strstr_len (data, self->raw->len, "\r\n\r\n")
                                       : NULL;
  g_auto(GStrv) lines = NULL;
  g_autofree char *head = NULL;
  const char *encoding;

  if (self->raw->len == 0 || end == NULL)
    return FALSE;

  head = g_strndup (data, end - data);
  lines = g_strsplit (head, "\r\n", -1);
  g_assert_true (g_str_has_prefix (lines[0], "HTTP/1.1 "));
  self->status = g_ascii_strtoull (lines[0] + strlen ("HTTP/1.1 "), NULL, 10);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      const char *colon = strchr (lines[i], ':');

      g_assert_nonnull (colon);
      g_hash_table_insert (self->headers, g_ascii_strdown (lines[i], colon - lines[i]),
                           g_strstrip (g_strdup (colon + 1)));
    }
  g_byte_array_remove_range (self->raw, 0, end + 4 - data);
  self->head_done = TRUE;
  encoding = g_hash_table_lookup (self->headers, "transfer-encoding");
  self->chunked = encoding != NULL && g_ascii_strcasecmp (encoding, "chunked") == 0;
  return TRUE;
}

/* Takes the chunks' data out of the raw bytes. */
static void
parse_body (KvSseClient *self)
{
  while (!self->ended)
    {
      const char *data = (const char *) self->raw->data;
      const char *end;
      gsize n;

      if (self->raw->len == 0)
        return;
      if (!self->chunked)
        {
          g_string_append_len (self->body, data, self->raw->len);
          g_byte_array_set_size (self->raw, 0);
          return;
        }

      switch (self->chunk_state)
        {
        case CHUNK_SIZE:
          end = self->raw->len > 0 ? g_strstr_len (data, self->raw->len, "\r\n") : NULL;
          if (end == NULL)
            return;
          self->chunk_left = g_ascii_strtoull (data, NULL, 16);
          g_byte_array_remove_range (self->raw, 0, end + 2 - data);
          self->chunk_state = CHUNK_DATA;
          /* The last chunk: what follows is an empty trailer. */
          if (self->chunk_left == 0)
            self->ended = TRUE;
          break;

        case CHUNK_DATA:
          n = MIN (self->chunk_left, self->raw->len);
          if (n == 0)
            return;
          g_string_append_len (self->body, data, n);
          g_byte_array_remove_range (self->raw, 0, n);
          self->chunk_left -= n;
          if (self->chunk_left == 0)
            self->chunk_state = CHUNK_END;
          break;

        case CHUNK_END:
          if (self->raw->len < 2)
            return;
          g_assert_true (data[0] == '\r' && data[1] == '\n');
          g_byte_array_remove_range (self->raw, 0, 2);
          self->chunk_state = CHUNK_SIZE;
          break;
        }
    }
}

static void
parse_blocks (KvSseClient *self)
{
  for (;;)
    {
      const char *start = self->body->str + self->parsed;
      const char *end = strstr (start, "\n\n");
      g_auto(GStrv) lines = NULL;
      g_autofree char *text = NULL;
      KvSseBlock *block;

      if (end == NULL)
        return;
      text = g_strndup (start, end - start);
      self->parsed += end + 2 - start;
      lines = g_strsplit (text, "\n", -1);
      block = g_new0 (KvSseBlock, 1);
      for (guint i = 0; lines[i] != NULL; i++)
        {
          const char *line = lines[i];
          char **field = NULL;
          const char *value;

          if (line[0] == ':')
            field = &block->comment;
          else if (g_str_has_prefix (line, "event:"))
            field = &block->event;
          else if (g_str_has_prefix (line, "id:"))
            field = &block->id;
          else if (g_str_has_prefix (line, "data:"))
            field = &block->data;
          else
            g_error ("unexpected line in an event stream: %s", line);
          value = strchr (line, ':') + 1;
          if (*value == ' ')
            value++;
          /* A field twice in a block: a stream the tests do not expect. */
          g_assert_null (*field);
          *field = g_strdup (value);
        }
      g_queue_push_tail (&self->blocks, block);
    }
}

/**
 * kv_sse_client_feed:
 * @self: a client
 *
 * Reads what the socket has now, without waiting.
 *
 * Returns: %FALSE once the server has closed the connection
 */
gboolean
kv_sse_client_feed (KvSseClient *self)
{
  guint8 buffer[65536];

  while (!self->closed)
    {
      gssize n = g_socket_receive (self->socket, (char *) buffer, sizeof buffer, NULL, NULL);

      if (n > 0)
        g_byte_array_append (self->raw, buffer, n);
      else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      else
        self->closed = TRUE;
    }

  if (!self->head_done)
    parse_head (self);
  if (self->head_done)
    {
      parse_body (self);
      parse_blocks (self);
    }
  return !self->closed;
}

/**
 * kv_sse_client_pop:
 *
 * Returns: (transfer full) (nullable): the next block read, if any
 */
KvSseBlock *
kv_sse_client_pop (KvSseClient *self)
{
  return g_queue_pop_head (&self->blocks);
}

/**
 * kv_sse_client_next:
 * @self: a client
 * @timeout_ms: how long to wait for it
 *
 * Returns: (transfer full) (nullable): the next block, or %NULL if the
 *   stream ended, or none came in time
 */
KvSseBlock *
kv_sse_client_next (KvSseClient *self,
                    guint        timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * G_TIME_SPAN_MILLISECOND;

  while (g_queue_is_empty (&self->blocks))
    {
      gint64 left = deadline - g_get_monotonic_time ();

      if (!kv_sse_client_feed (self) || self->ended || left <= 0)
        break;
      if (!g_queue_is_empty (&self->blocks))
        break;
      g_socket_condition_timed_wait (self->socket, G_IO_IN, left, NULL, NULL);
    }

  return kv_sse_client_pop (self);
}

/**
 * kv_sse_client_get_status:
 *
 * Returns: the response's status, or 0 before its head has come
 */
guint
kv_sse_client_get_status (KvSseClient *self)
{
  return self->status;
}

const char *
kv_sse_client_get_header (KvSseClient *self,
                          const char  *name)
{
  g_autofree char *lower = g_ascii_strdown (name, -1);

  return g_hash_table_lookup (self->headers, lower);
}

gboolean
kv_sse_client_is_closed (KvSseClient *self)
{
  return self->closed;
}

/**
 * kv_sse_client_has_ended:
 *
 * Returns: whether the last chunk of the body came
 */
gboolean
kv_sse_client_has_ended (KvSseClient *self)
{
  return self->ended;
}

/**
 * kv_sse_client_get_body:
 *
 * Returns: the body as read so far, for an answer that is not a stream
 */
const char *
kv_sse_client_get_body (KvSseClient *self)
{
  return self->body->str;
}
