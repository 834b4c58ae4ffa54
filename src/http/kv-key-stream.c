/* kv-key-stream.c: a listing written as the client reads it
 *
 * SPDX-License-Identifier: MIT
 *
 * A page of 10,000 keys of a kilobyte each is 10 MiB: built whole, 200
 * clients that ask and do not read would hold 2 GB. So a listing asks the
 * store for a few keys at a time (about 64 KiB of them), hands libsoup one
 * chunk of them, and asks for the next only once libsoup has written it to
 * the socket: a connection holds one chunk at most. What all connections
 * may hold together is capped by max-pending-output: each listing reserves
 * room for its one chunk in the shared KvStats when it begins, and keeps
 * it to its end, so that a listing under way never waits for others (a
 * client reading one listing while it holds others unread would wait for
 * ever); a listing for which there is no room is 503.
 */
#include "config.h"

#include <string.h>

#include "kv-key-stream.h"
#include "kv-response.h"
#include "net/kv-connection.h"

/* What one chunk holds at most, give or take a key. */
#define CHUNK_BYTES (64 * 1024)

typedef struct
{
  KvServer *server;             /* (owned) */
  SoupServerMessage *msg;       /* (owned) */
  GCancellable *cancellable;    /* (owned) */
  char *prefix;                 /* (owned) */
  char *last;                   /* (owned) (nullable) where the next keys start */
  guint remaining;
  gboolean json;
  gboolean started;             /* the status and headers are set */
  gboolean done;                /* the last chunk is appended */
  gboolean gone;                /* the message is finished, answered or not */
  gboolean asking;              /* a call to the store is under way */
  guint n_keys;
  GString *chunk;               /* (owned) (nullable) being handed over */
  gsize reserved;               /* room held in the shared KvStats */
  GSource *next;               /* (owned) (nullable) asking for the next chunk */
  gulong wrote_chunk_id;
  gulong finished_id;
} KeyStream;

static void ask (KeyStream *self);

static void
key_stream_free (KeyStream *self)
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
  if (self->chunk != NULL)
    g_string_free (self->chunk, TRUE);
  g_free (self->prefix);
  g_free (self->last);
  g_object_unref (self->cancellable);
  g_object_unref (self->msg);
  g_object_unref (self->server);
  g_free (self);
}

/* Frees the stream once neither libsoup nor the store will call it. */
static void
maybe_free (KeyStream *self)
{
  if (self->gone && !self->asking)
    key_stream_free (self);
}

static void
on_finished (SoupServerMessage *msg,
             gpointer           data)
{
  KeyStream *self = data;

  self->gone = TRUE;
  g_cancellable_cancel (self->cancellable);
  maybe_free (self);
}

/* Hands the chunk to libsoup. */
static void
offer (KeyStream *self)
{
  SoupMessageBody *body = soup_server_message_get_response_body (self->msg);
  gsize len = self->chunk->len;

  if (!self->started)
    {
      SoupMessageHeaders *headers = soup_server_message_get_response_headers (self->msg);

      self->started = TRUE;
      soup_server_message_set_status (self->msg, SOUP_STATUS_OK, NULL);
      soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      soup_message_headers_replace (headers, "Content-Type", self->json ? KV_JSON : KV_TEXT_PLAIN);
      soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");
      /* What was written is let go of. */
      soup_message_body_set_accumulate (body, FALSE);
    }

  soup_message_body_append_take (body, (guchar *) g_string_free (g_steal_pointer (&self->chunk),
                                                                 FALSE), len);
  if (self->done)
    soup_message_body_complete (body);
  soup_server_message_unpause (self->msg);
}

static gboolean
on_next (gpointer data)
{
  KeyStream *self = data;

  g_clear_pointer (&self->next, g_source_unref);
  ask (self);
  return G_SOURCE_REMOVE;
}

static void
on_wrote_chunk (SoupServerMessage *msg,
                gpointer           data)
{
  KeyStream *self = data;

  /* libsoup wrote everything it had: get more once it has paused for
   * want of it (the store may answer within the call). */
  if (!self->done && !self->asking && self->next == NULL)
    {
      self->next = g_idle_source_new ();
      g_source_set_callback (self->next, on_next, self, NULL);
      g_source_attach (self->next, g_main_context_get_thread_default ());
    }
}

static void
on_keys (GObject      *source,
         GAsyncResult *res,
         gpointer      data)
{
  KeyStream *self = data;
  g_autoptr(GPtrArray) keys = NULL;
  g_autoptr(GError) error = NULL;
  gboolean more = FALSE;

  self->asking = FALSE;
  keys = kv_storage_list_finish (KV_STORAGE (source), res, &more, &error);
  if (self->gone)
    {
      maybe_free (self);
      return;
    }
  if (keys == NULL)
    {
      if (!self->started)
        {
          kv_response_error (self->msg, kv_response_status_for_error (error), error->message);
          soup_server_message_unpause (self->msg);
        }
      else
        {
          /* Too late for a status: end the body short, and the client
           * sees the listing cut off. */
          soup_message_body_complete (soup_server_message_get_response_body (self->msg));
          soup_server_message_unpause (self->msg);
        }
      return;
    }

  self->chunk = g_string_sized_new (CHUNK_BYTES + 1024);
  if (!self->started && self->json)
    g_string_append (self->chunk, "{\"keys\":[");
  for (guint i = 0; i < keys->len; i++)
    {
      const char *key = g_ptr_array_index (keys, i);

      if (self->json)
        {
          if (self->n_keys > 0)
            g_string_append_c (self->chunk, ',');
          kv_response_append_json_string (self->chunk, key, strlen (key));
        }
      else
        {
          g_string_append (self->chunk, key);
          g_string_append_c (self->chunk, '\n');
        }
      self->n_keys++;
    }
  self->remaining -= keys->len;
  if (keys->len > 0)
    {
      g_free (self->last);
      self->last = g_strdup (g_ptr_array_index (keys, keys->len - 1));
    }

  self->done = self->remaining == 0 || !more;
  if (self->done && self->json)
    {
      g_string_append (self->chunk, "],\"next\":");
      /* More keys than the page: the next page starts after the last. */
      if (more && self->n_keys > 0)
        kv_response_append_json_string (self->chunk, self->last, strlen (self->last));
      else
        g_string_append (self->chunk, "null");
      g_string_append (self->chunk, "}\n");
    }

  offer (self);
}

static void
ask (KeyStream *self)
{
  guint max_key = MAX (kv_server_get_limits (self->server)->max_key_size, 16);
  guint n = MIN (self->remaining, MAX (CHUNK_BYTES / max_key, 1));

  self->asking = TRUE;
  kv_storage_list_async (kv_server_get_storage (self->server), self->prefix, self->last, n,
                         self->cancellable, on_keys, self);
}

/**
 * kv_key_stream_start:
 * @server: the server
 * @msg: a GET of /keys, paused until the first chunk is ready
 * @prefix: (nullable): only keys with it
 * @after: (nullable): only keys after it
 * @limit: the most keys
 * @json: whether the answer is JSON
 *
 * Answers @msg with the keys, chunk by chunk, as the client reads them.
 */
void
kv_key_stream_start (KvServer          *server,
                     SoupServerMessage *msg,
                     const char        *prefix,
                     const char        *after,
                     guint              limit,
                     gboolean           json)
{
  const KvLimits *limits = kv_server_get_limits (server);
  /* One chunk: its keys (JSON doubles a quote or a backslash) and its
   * frame. */
  gsize room = 2 * (CHUNK_BYTES + limits->max_key_size) + 256;
  KeyStream *self;

  if (!kv_stats_reserve_output (kv_server_get_stats (server), room,
                                limits->max_pending_output))
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", "1");
      kv_response_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "server busy");
      return;
    }

  self = g_new0 (KeyStream, 1);
  self->reserved = room;
  self->server = g_object_ref (server);
  self->msg = g_object_ref (msg);
  self->cancellable = g_cancellable_new ();
  self->prefix = g_strdup (prefix != NULL ? prefix : "");
  self->last = g_strdup (after);
  self->remaining = limit;
  self->json = json;
  self->wrote_chunk_id = g_signal_connect (msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), self);
  self->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_finished), self);

  soup_server_message_pause (msg);
  ask (self);
}
