/* kv-key-stream.c: a listing written as the client reads it
 *
 * SPDX-License-Identifier: MIT
 *
 * A page of 10,000 keys of a kilobyte each is 10 MiB: so a listing asks
 * the store for a few keys at a time (about 64 KiB of them) and hands
 * them to a KvChunkStream, which asks for the next ones once the client
 * has read them, within max-pending-output.
 */
#include "config.h"

#include <string.h>

#include "kv-chunk-stream.h"
#include "kv-key-stream.h"
#include "kv-response.h"

/* What one chunk holds at most, give or take a key. */
#define CHUNK_BYTES (64 * 1024)

typedef struct
{
  KvChunkStream *stream;        /* (unowned) it owns us */
  char *prefix;                 /* (owned) */
  char *last;                   /* (owned) (nullable) where the next keys start */
  guint remaining;
  gboolean json;
  gboolean begun;               /* a chunk went out */
  guint n_keys;
} KeyStream;

static void
key_stream_free (gpointer data)
{
  KeyStream *self = data;

  g_free (self->prefix);
  g_free (self->last);
  g_free (self);
}

static void
on_keys (GObject      *source,
         GAsyncResult *res,
         gpointer      data)
{
  KeyStream *self = data;
  g_autoptr(GPtrArray) keys = NULL;
  g_autoptr(GError) error = NULL;
  GString *chunk;
  gboolean more = FALSE;
  gboolean done;

  keys = kv_storage_list_finish (KV_STORAGE (source), res, &more, &error);
  if (keys == NULL)
    {
      kv_chunk_stream_fail (self->stream, error);
      return;
    }

  chunk = g_string_sized_new (CHUNK_BYTES + 1024);
  if (!self->begun && self->json)
    g_string_append (chunk, "{\"keys\":[");
  self->begun = TRUE;
  for (guint i = 0; i < keys->len; i++)
    {
      const char *key = g_ptr_array_index (keys, i);

      if (self->json)
        {
          if (self->n_keys > 0)
            g_string_append_c (chunk, ',');
          kv_response_append_json_string (chunk, key, strlen (key));
        }
      else
        {
          g_string_append (chunk, key);
          g_string_append_c (chunk, '\n');
        }
      self->n_keys++;
    }
  self->remaining -= keys->len;
  if (keys->len > 0)
    {
      g_free (self->last);
      self->last = g_strdup (g_ptr_array_index (keys, keys->len - 1));
    }

  done = self->remaining == 0 || !more;
  if (done && self->json)
    {
      g_string_append (chunk, "],\"next\":");
      /* More keys than the page: the next page starts after the last. */
      if (more && self->n_keys > 0)
        kv_response_append_json_string (chunk, self->last, strlen (self->last));
      else
        g_string_append (chunk, "null");
      g_string_append (chunk, "}\n");
    }

  kv_chunk_stream_add (self->stream, chunk, done);
}

static void
ask (KvChunkStream *stream,
     gpointer       data)
{
  KeyStream *self = data;
  KvServer *server = kv_chunk_stream_get_server (stream);
  guint max_key = MAX (kv_server_get_limits (server)->max_key_size, 16);
  guint n = MIN (self->remaining, MAX (CHUNK_BYTES / max_key, 1));

  self->stream = stream;
  kv_storage_list_async (kv_server_get_storage (server), self->prefix, self->last, n,
                         kv_chunk_stream_get_cancellable (stream), on_keys, self);
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
  KeyStream *self = g_new0 (KeyStream, 1);

  self->prefix = g_strdup (prefix != NULL ? prefix : "");
  self->last = g_strdup (after);
  self->remaining = limit;
  self->json = json;
  kv_chunk_stream_start (server, msg, room, json ? KV_JSON : KV_TEXT_PLAIN, ask, self,
                         key_stream_free);
}
