/* kv-chunk-stream.c: a chunked answer written as the client reads it
 *
 * SPDX-License-Identifier: MIT
 *
 * What a listing or an export shares. A long answer built whole would be
 * held for a client that asks and does not read: 200 such clients of a
 * 10 MiB answer would hold 2 GB. So the answer is made a chunk at a time:
 * the stream hands libsoup one chunk, and asks its producer for the next
 * only once libsoup has written it to the socket, so that a connection
 * holds one chunk at most. What all connections may hold together is
 * capped by max-pending-output: each stream reserves room for its one
 * chunk in the shared KvStats when it begins, and keeps it to its end, so
 * that a stream under way never waits for others (a client reading one
 * answer while it holds others unread would wait for ever); an answer for
 * which there is no room is 503.
 */
#include "config.h"

#include "kv-chunk-stream.h"
#include "kv-response.h"

struct _KvChunkStream
{
  KvServer *server;             /* (owned) */
  SoupServerMessage *msg;       /* (owned) */
  GCancellable *cancellable;    /* (owned) */
  const char *content_type;     /* (unowned) static */
  KvChunkStreamNext next_func;
  gpointer user_data;
  GDestroyNotify notify;
  gboolean started;             /* the status and headers are set */
  gboolean done;                /* the last chunk is appended, or it failed */
  gboolean gone;                /* the message is finished, answered or not */
  gboolean asking;              /* the producer owes a chunk */
  gsize reserved;               /* room held in the shared KvStats */
  GSource *next;                /* (owned) (nullable) asking for the next chunk */
  gulong wrote_chunk_id;
  gulong finished_id;
};

static void
chunk_stream_free (KvChunkStream *self)
{
  KvStats *stats = kv_server_get_stats (self->server);

  if (self->reserved > 0)
    kv_stats_release_output (stats, self->reserved);
  if (self->next != NULL)
    {
      g_source_destroy (self->next);
      g_source_unref (self->next);
    }
  g_clear_signal_handler (&self->wrote_chunk_id, self->msg);
  g_clear_signal_handler (&self->finished_id, self->msg);
  if (self->notify != NULL)
    self->notify (self->user_data);
  g_object_unref (self->cancellable);
  g_object_unref (self->msg);
  g_object_unref (self->server);
  g_free (self);
}

/* Frees the stream once neither libsoup nor the producer will call it. */
static gboolean
maybe_free (KvChunkStream *self)
{
  if (!self->gone || self->asking)
    return FALSE;

  chunk_stream_free (self);
  return TRUE;
}

static void
ask (KvChunkStream *self)
{
  self->asking = TRUE;
  self->next_func (self, self->user_data);
}

static void
on_finished (SoupServerMessage *msg,
             gpointer           data)
{
  KvChunkStream *self = data;

  self->gone = TRUE;
  g_cancellable_cancel (self->cancellable);
  maybe_free (self);
}

static gboolean
on_next (gpointer data)
{
  KvChunkStream *self = data;

  g_clear_pointer (&self->next, g_source_unref);
  ask (self);
  return G_SOURCE_REMOVE;
}

static void
on_wrote_chunk (SoupServerMessage *msg,
                gpointer           data)
{
  KvChunkStream *self = data;

  /* libsoup wrote everything it had: get more once it has paused for
   * want of it (the producer may answer within the call). */
  if (!self->done && !self->asking && self->next == NULL)
    {
      self->next = g_idle_source_new ();
      g_source_set_callback (self->next, on_next, self, NULL);
      g_source_attach (self->next, g_main_context_get_thread_default ());
    }
}

/**
 * kv_chunk_stream_add:
 * @self: the stream whose producer was asked for a chunk
 * @chunk: (transfer full): the next bytes of the answer, maybe none
 * @last: whether they end it
 *
 * Hands @chunk to libsoup. The first one sends the status and headers:
 * set the headers of your own before. @self, and the producer's data with
 * it, may be gone when this returns.
 */
void
kv_chunk_stream_add (KvChunkStream *self,
                     GString       *chunk,
                     gboolean       last)
{
  SoupMessageBody *body;
  gsize len = chunk->len;

  g_return_if_fail (self->asking);

  self->asking = FALSE;
  if (self->gone)
    {
      g_string_free (chunk, TRUE);
      maybe_free (self);
      return;
    }

  body = soup_server_message_get_response_body (self->msg);
  if (!self->started)
    {
      SoupMessageHeaders *headers = soup_server_message_get_response_headers (self->msg);

      self->started = TRUE;
      soup_server_message_set_status (self->msg, SOUP_STATUS_OK, NULL);
      soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      soup_message_headers_replace (headers, "Content-Type", self->content_type);
      soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");
      /* What was written is let go of. */
      soup_message_body_set_accumulate (body, FALSE);
    }

  self->done = last;
  soup_message_body_append_take (body, (guchar *) g_string_free (chunk, FALSE), len);
  if (last)
    soup_message_body_complete (body);
  soup_server_message_unpause (self->msg);
}

/**
 * kv_chunk_stream_fail:
 * @self: the stream whose producer was asked for a chunk
 * @error: why there is none
 *
 * Answers with the error, if no chunk went out yet; else ends the body
 * short, and the client sees the answer cut off. @self, and the
 * producer's data with it, may be gone when this returns.
 */
void
kv_chunk_stream_fail (KvChunkStream *self,
                      const GError  *error)
{
  g_return_if_fail (self->asking);

  self->asking = FALSE;
  if (maybe_free (self))
    return;

  self->done = TRUE;
  if (!self->started)
    kv_response_error (self->msg, kv_response_status_for_error (error), error->message);
  else
    soup_message_body_complete (soup_server_message_get_response_body (self->msg));
  soup_server_message_unpause (self->msg);
}

KvServer *
kv_chunk_stream_get_server (KvChunkStream *self)
{
  return self->server;
}

SoupServerMessage *
kv_chunk_stream_get_message (KvChunkStream *self)
{
  return self->msg;
}

/**
 * kv_chunk_stream_get_cancellable:
 *
 * Returns: (transfer none): cancelled once the message is finished, when
 *   no chunk is wanted any more
 */
GCancellable *
kv_chunk_stream_get_cancellable (KvChunkStream *self)
{
  return self->cancellable;
}

/**
 * kv_chunk_stream_start:
 * @server: the server
 * @msg: the request to answer, paused until the first chunk is ready
 * @room: the most bytes one chunk can take, reserved for the whole answer
 * @content_type: (not nullable): the answer's media type, a static string
 * @next: asks the producer for the next chunk; the first time, from here
 * @user_data: the producer's data
 * @notify: (nullable): frees @user_data with the stream
 *
 * Answers @msg with 200 and the chunks the producer gives, one at a time,
 * as the client reads them; or with 503 "server busy" and Retry-After
 * when max-pending-output has no @room left, and then @user_data is freed
 * at once.
 *
 * Returns: %TRUE if the answer is under way
 */
gboolean
kv_chunk_stream_start (KvServer          *server,
                       SoupServerMessage *msg,
                       gsize              room,
                       const char        *content_type,
                       KvChunkStreamNext  next,
                       gpointer           user_data,
                       GDestroyNotify     notify)
{
  const KvLimits *limits = kv_server_get_limits (server);
  KvChunkStream *self;

  if (!kv_stats_reserve_output (kv_server_get_stats (server), room,
                                limits->max_pending_output))
    {
      if (notify != NULL)
        notify (user_data);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", "1");
      kv_response_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "server busy");
      return FALSE;
    }

  self = g_new0 (KvChunkStream, 1);
  self->reserved = room;
  self->server = g_object_ref (server);
  self->msg = g_object_ref (msg);
  self->cancellable = g_cancellable_new ();
  self->content_type = content_type;
  self->next_func = next;
  self->user_data = user_data;
  self->notify = notify;
  self->wrote_chunk_id = g_signal_connect (msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), self);
  self->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_finished), self);

  soup_server_message_pause (msg);
  ask (self);
  return TRUE;
}
