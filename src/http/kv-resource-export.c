/* kv-resource-export.c: /export, every entry at one revision
 *
 * SPDX-License-Identifier: MIT
 *
 * GET /export takes one dump of the store (kv_storage_dump_async(): a
 * reference to each live entry, under the store's read lock, at one
 * revision) and writes it out as NDJSON, one entry a line, with the
 * fields /txn answers with:
 *
 *   {"key":"a","value":"…","content_type":"…","expires_at":"…","revision":7}
 *
 * ("value_base64" for a value that is not UTF-8; "content_type" and
 * "expires_at" only when there is one). Entries are immutable, so writes
 * go on meanwhile and the export still shows the store as it was at its
 * KV-Revision. The answer goes out through a KvChunkStream, about 64 KiB
 * at a time as the client reads it; a long value is written in pieces, so
 * that a chunk stays within the room it reserved, whatever the values.
 */
#include "config.h"

#include <string.h>

#include "kv-call.h"
#include "kv-chunk-stream.h"
#include "kv-request.h"
#include "kv-resources.h"
#include "kv-response.h"

/* A chunk is handed over once it holds this much. */
#define CHUNK_BYTES (64 * 1024)

/* What a chunk can take: CHUNK_BYTES, then at most one key (JSON doubles
 * a quote or a backslash), or the end of a line, past it. A GString of
 * CHUNK_ROOM - 1 bytes allocates CHUNK_ROOM exactly. */
#define CHUNK_ROOM (2 * CHUNK_BYTES)
G_STATIC_ASSERT (CHUNK_BYTES + 2 * KV_ENTRY_MAX_KEY_SIZE + 2 * KV_REQUEST_MAX_MEDIA_TYPE_LENGTH +
                 256 < CHUNK_ROOM);

typedef struct
{
  KvChunkStream *stream;        /* (unowned) it owns us */
  KvDump *dump;                 /* (owned) (nullable) until it is taken */
  guint index;                  /* the entry being written */
  gboolean in_value;            /* its line is begun */
  gsize offset;                 /* how much of its value is written */
  gint base64_state;
  gint base64_save;
} Export;

static void
export_free (gpointer data)
{
  Export *self = data;

  g_clear_pointer (&self->dump, kv_dump_unref);
  g_free (self);
}

static void
begin_line (GString       *chunk,
            const KvEntry *entry)
{
  gsize key_len;
  const char *key = kv_entry_peek_key (entry, &key_len);

  g_string_append (chunk, "{\"key\":");
  kv_response_append_json_string (chunk, key, key_len);
  g_string_append (chunk, kv_entry_get_is_utf8 (entry) ? ",\"value\":\"" : ",\"value_base64\":\"");
}

static void
end_line (GString       *chunk,
          const KvEntry *entry,
          gint64         expires_at)
{
  const char *content_type = kv_entry_get_content_type (entry);

  g_string_append_c (chunk, '"');
  if (content_type != NULL)
    {
      g_string_append (chunk, ",\"content_type\":");
      kv_response_append_json_string (chunk, content_type, strlen (content_type));
    }
  if (expires_at != 0)
    {
      g_autofree char *stamp = kv_response_format_timestamp (expires_at);

      g_string_append_printf (chunk, ",\"expires_at\":\"%s\"", stamp);
    }
  g_string_append_printf (chunk, ",\"revision\":%" G_GUINT64_FORMAT "}\n",
                          kv_entry_get_revision (entry));
}

/* Writes the next part of the entry at self->index: the beginning of its
 * line, or a piece of its value that keeps the chunk within CHUNK_BYTES
 * (and the end of the line after the last piece). */
static void
write_some (Export  *self,
            GString *chunk)
{
  gint64 expires_at;
  KvEntry *entry = kv_dump_peek_entry (self->dump, self->index, &expires_at);
  gsize len;
  const guchar *value = kv_entry_peek_value (entry, &len);
  gsize room = CHUNK_BYTES - chunk->len;
  gsize piece;

  if (!self->in_value)
    {
      begin_line (chunk, entry);
      self->in_value = TRUE;
      self->offset = 0;
      self->base64_state = 0;
      self->base64_save = 0;
      return;
    }

  if (kv_entry_get_is_utf8 (entry))
    {
      /* An escaped byte takes six at most. */
      piece = MIN (len - self->offset, MAX (room / 6, 1));
      kv_response_append_json_chars (chunk, (const char *) value + self->offset, piece);
    }
  else
    {
      gsize old_len = chunk->len;
      gsize written;

      piece = MIN (len - self->offset, MAX (room / 4 * 3, 3));
      /* What g_base64_encode_step() may write. */
      g_string_set_size (chunk, old_len + (piece / 3 + 1) * 4 + 4);
      written = g_base64_encode_step (value + self->offset, piece, FALSE, chunk->str + old_len,
                                      &self->base64_state, &self->base64_save);
      if (self->offset + piece == len)
        written += g_base64_encode_close (FALSE, chunk->str + old_len + written,
                                          &self->base64_state, &self->base64_save);
      g_string_set_size (chunk, old_len + written);
    }

  self->offset += piece;
  if (self->offset == len)
    {
      end_line (chunk, entry, expires_at);
      self->in_value = FALSE;
      self->index++;
    }
}

static void
write_chunk (Export *self)
{
  GString *chunk = g_string_sized_new (CHUNK_ROOM - 1);
  guint n = kv_dump_get_n_entries (self->dump);

  while (chunk->len < CHUNK_BYTES && self->index < n)
    write_some (self, chunk);
  kv_chunk_stream_add (self->stream, chunk, self->index == n);
}

static void
on_dump (GObject      *source,
         GAsyncResult *res,
         gpointer      data)
{
  Export *self = data;
  g_autoptr(GError) error = NULL;
  char text[24];

  self->dump = kv_storage_dump_finish (KV_STORAGE (source), res, &error);
  if (self->dump == NULL)
    {
      kv_chunk_stream_fail (self->stream, error);
      return;
    }

  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, kv_dump_get_revision (self->dump));
  soup_message_headers_replace (
    soup_server_message_get_response_headers (kv_chunk_stream_get_message (self->stream)),
    "KV-Revision", text);
  write_chunk (self);
}

static void
next (KvChunkStream *stream,
      gpointer       data)
{
  Export *self = data;

  /* The dump is taken when the answer can begin, not before: a server
   * too busy to send it holds none. */
  if (self->dump == NULL)
    {
      self->stream = stream;
      kv_storage_dump_async (kv_server_get_storage (kv_chunk_stream_get_server (stream)),
                             kv_chunk_stream_get_cancellable (stream), on_dump, self);
      return;
    }

  write_chunk (self);
}

/* A HEAD: the headers of the GET, the revision it would be at, no dump. */
static void
on_info (GObject      *source,
         GAsyncResult *res,
         gpointer      data)
{
  KvCall *call = data;
  SoupServerMessage *msg = kv_call_get_message (call);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autoptr(GError) error = NULL;
  KvStorageInfo info;
  char text[24];

  if (!kv_storage_info_finish (KV_STORAGE (source), res, &info, &error))
    {
      kv_response_error (msg, kv_response_status_for_error (error), error->message);
      kv_call_end (call);
      return;
    }

  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, info.revision);
  soup_message_headers_replace (headers, "KV-Revision", text);
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  soup_message_headers_replace (headers, "Content-Type", KV_NDJSON);
  soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  kv_call_end (call);
}

/**
 * kv_resource_export:
 *
 * Answers GET /export: 200, every live entry in key order, one JSON object
 * a line, at the revision KV-Revision gives; 503 "server busy" when
 * max-pending-output has no room for it. HEAD answers the headers.
 */
void
kv_resource_export (KvServer          *server,
                    SoupServerMessage *msg,
                    const char        *path,
                    GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);

  if (method == SOUP_METHOD_HEAD)
    {
      KvCall *call = kv_call_begin (server, msg);

      kv_storage_info_async (kv_server_get_storage (server), kv_call_get_cancellable (call),
                             on_info, call);
      kv_call_dispatched (call);
      return;
    }
  if (method != SOUP_METHOD_GET)
    {
      kv_resource_method_not_allowed (msg, KV_RESOURCE_READ_METHODS);
      return;
    }

  kv_chunk_stream_start (server, msg, CHUNK_ROOM, KV_NDJSON, next, g_new0 (Export, 1),
                         export_free);
}
