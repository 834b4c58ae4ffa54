/* kv-resource-watch.c: /watch, the store's changes as Server-Sent Events
 *
 * SPDX-License-Identifier: MIT
 *
 * GET /watch[?prefix=P|?key=K][&values=1][&since=REV] subscribes to the
 * store's changes and writes each as an event (text/event-stream), for
 * curl -N and browsers' EventSource alike:
 *
 *   event: put
 *   id: 7
 *   data: {"key":"a","revision":7,"size":5,"content_type":"text/plain"}
 *
 * The stream begins with a block of its own, "id: R", R being the
 * revision it starts from: every change after R follows, none lost, none
 * twice. The events of a transaction share its revision, and only the
 * last of them carries the id: a client cut off in the middle of one
 * resumes from the revision before and gets the whole transaction again.
 * With since=REV (or Last-Event-ID, which an EventSource sends when it
 * reconnects) the changes after REV come first, from the store's
 * history; a revision the history no longer has is 410.
 *
 * Once subscribed, the stream takes its connection from libsoup
 * (kv_connection_take_stream()) and writes the answer itself, a chunk per
 * revision, without blocking: an idle stream is then no source of any
 * main loop, where libsoup would keep a paused message in each turn of
 * it. What the kernel does not take waits here, up to watch-buffer bytes;
 * past that the stream drops what it has not begun and ends with an
 * overflow event whose id is the last revision it wrote whole, from which
 * the client resumes. A stream that has written nothing for
 * watch-heartbeat seconds writes a comment; one whose client takes
 * nothing for as long as any answer may make no progress is closed. A
 * stop ends every stream at once with a shutdown event, and closes the
 * one whose client does not read. Anything the client sends on the
 * connection ends the stream.
 */
#include "config.h"

#include <string.h>

#include "kv-request.h"
#include "kv-resources.h"
#include "kv-response.h"
#include "kv-server-private.h"

#define KV_EVENT_STREAM "text/event-stream"

/* How long a stop lets a stream write its shutdown event to a client
 * that reads slowly, before it closes the connection. */
#define STOP_GRACE_MS 1000

typedef enum
{
  END_NONE,
  END_OVERFLOW,
  END_SHUTDOWN,
} End;

typedef struct
{
  GBytes *bytes;                /* (owned) framed */
  guint64 id;                   /* the revision it ends, or 0 */
} Chunk;

typedef struct
{
  KvServer *server;             /* (unowned) it ends us before it goes */
  SoupServerMessage *msg;       /* (owned) (nullable) until the connection is taken */
  KvConnection *connection;     /* (owned) */
  GIOStream *stream;            /* (owned) (nullable) once taken */
  GPollableOutputStream *out;   /* (unowned) its output */
  gboolean chunked;             /* HTTP/1.1; an HTTP/1.0 answer ends with the connection */
  char *key;                    /* (owned) (nullable) */
  char *prefix;                 /* (owned) (nullable) */
  guint64 since;                /* or KV_REVISION_NOW */
  gboolean values;
  gboolean counted;             /* holds a watcher's place */

  gboolean in_handler;          /* the handler has not returned yet */
  gboolean subscribing;         /* the store has not answered yet */
  gboolean failed;              /* it refused, and the answer says why */
  gboolean paused;              /* the message waits for a store that answers later */
  guint subscription;
  gboolean registered;          /* with the server, for stops and ticks */

  GString *revision;            /* events of the revision being delivered, not framed */
  GQueue chunks;                /* (element-type Chunk) (owned) not written yet */
  gsize offset;                 /* how much of the first one is */
  gsize pending;                /* bytes waiting */
  guint64 written_id;           /* the last revision written whole */
  End end;
  gboolean ended;               /* the last chunk is queued */
  gint64 last_queued;           /* monotonic, for heartbeats */
  gint64 last_progress;         /* when the kernel last took something */
  GSource *writable;            /* (owned) (nullable) while the kernel takes nothing */
  GSource *grace;               /* (owned) (nullable) a stop waiting for a slow client */
} Watch;

static void
chunk_free (gpointer data)
{
  Chunk *chunk = data;

  g_bytes_unref (chunk->bytes);
  g_free (chunk);
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
unsubscribe (Watch *self)
{
  if (self->subscription != 0)
    kv_storage_unsubscribe (kv_server_get_storage (self->server), self->subscription);
  self->subscription = 0;
}

static void
watch_free (Watch *self)
{
  unsubscribe (self);
  if (self->registered)
    kv_server_remove_watcher (self->server, self);
  if (self->counted)
    kv_stats_end_watch (kv_server_get_stats (self->server));
  clear_source (&self->writable);
  clear_source (&self->grace);
  g_queue_clear_full (&self->chunks, chunk_free);
  if (self->revision != NULL)
    g_string_free (self->revision, TRUE);
  g_clear_object (&self->msg);
  g_clear_object (&self->connection);
  g_free (self->key);
  g_free (self->prefix);
  g_free (self);
}

/* ---- Formatting ---- */

static const char * const event_names[] = {
  [KV_CHANGE_PUT] = "put",
  [KV_CHANGE_DELETE] = "delete",
  [KV_CHANGE_EXPIRE] = "expire",
  [KV_CHANGE_CLEAR] = "clear",
};

static void
append_value (GString *out,
              KvEntry *entry)
{
  gsize len;
  gconstpointer value = kv_entry_peek_value (entry, &len);

  if (kv_entry_get_is_utf8 (entry))
    {
      g_string_append (out, ",\"value\":");
      kv_response_append_json_string (out, value, len);
    }
  else
    {
      g_autofree char *base64 = g_base64_encode (value, len);

      g_string_append_printf (out, ",\"value_base64\":\"%s\"", base64);
    }
}

static GBytes *
format_event (KvChange *change,
              gboolean  with_id,
              gboolean  values)
{
  GString *out = g_string_sized_new (160);
  const char *key = kv_change_get_key (change);
  KvEntry *entry = kv_change_get_entry (change);
  guint64 revision = kv_change_get_revision (change);

  g_string_append_printf (out, "event: %s\n", event_names[kv_change_get_kind (change)]);
  if (with_id)
    g_string_append_printf (out, "id: %" G_GUINT64_FORMAT "\n", revision);
  g_string_append (out, "data: {");
  if (key != NULL)
    {
      g_string_append (out, "\"key\":");
      kv_response_append_json_string (out, key, strlen (key));
      g_string_append_c (out, ',');
    }
  g_string_append_printf (out, "\"revision\":%" G_GUINT64_FORMAT, revision);
  if (entry != NULL)
    {
      const char *content_type = kv_entry_get_content_type (entry);
      gint64 expires_at = kv_change_get_expires_at (change);

      g_string_append_printf (out, ",\"size\":%" G_GSIZE_FORMAT, kv_entry_get_value_size (entry));
      if (content_type != NULL)
        {
          g_string_append (out, ",\"content_type\":");
          kv_response_append_json_string (out, content_type, strlen (content_type));
        }
      if (expires_at != 0)
        {
          g_autofree char *stamp = kv_response_format_timestamp (expires_at);

          g_string_append_printf (out, ",\"expires_at\":\"%s\"", stamp);
        }
      if (values)
        append_value (out, entry);
    }
  g_string_append (out, "}\n\n");

  return g_string_free_to_bytes (out);
}

/* The watchers of one thread get one change after another: the last
 * event made is most often the next one wanted. */
typedef struct
{
  KvChange *change;
  gboolean with_id;
  gboolean values;
  GBytes *bytes;
} LastEvent;

static void
last_event_free (gpointer data)
{
  LastEvent *last = data;

  g_clear_pointer (&last->change, kv_change_unref);
  g_clear_pointer (&last->bytes, g_bytes_unref);
  g_free (last);
}

static GPrivate last_event = G_PRIVATE_INIT (last_event_free);

static GBytes *
get_event (KvChange *change,
           gboolean  with_id,
           gboolean  values)
{
  LastEvent *last = g_private_get (&last_event);

  if (last == NULL)
    {
      last = g_new0 (LastEvent, 1);
      g_private_set (&last_event, last);
    }
  if (last->change != change || last->with_id != with_id || last->values != values)
    {
      g_clear_pointer (&last->change, kv_change_unref);
      g_clear_pointer (&last->bytes, g_bytes_unref);
      last->change = kv_change_ref (change);
      last->with_id = with_id;
      last->values = values;
      last->bytes = format_event (change, with_id, values);
    }

  return g_bytes_ref (last->bytes);
}

static GString *
format_end (const char *name,
            guint64     revision)
{
  GString *out = g_string_new (NULL);

  g_string_printf (out, "event: %s\nid: %" G_GUINT64_FORMAT "\ndata: {\"revision\":%"
                   G_GUINT64_FORMAT "}\n\n", name, revision, revision);
  return out;
}

/* ---- The stream ---- */

/* Ends the stream and its connection, after what was written. */
static void
close_stream (Watch *self)
{
  kv_stats_add (kv_server_get_stats (self->server), KV_STAT_REQUESTS, 1);
  kv_connection_close_stream (self->connection, g_steal_pointer (&self->stream));
  watch_free (self);
}

/* The client went away, or does not read: the connection is closed with
 * what the kernel has, and the stream goes. */
static void
hang_up (Watch *self)
{
  g_debug ("Closing a watch stream at revision %" G_GUINT64_FORMAT, self->written_id);
  close_stream (self);
}

static gboolean write_pending (Watch *self);

static gboolean
on_writable (GObject  *stream,
             gpointer  data)
{
  Watch *self = data;

  g_clear_pointer (&self->writable, g_source_unref);
  write_pending (self);
  return G_SOURCE_REMOVE;
}

/* Writes what the kernel takes now; waits for it to take more, or ends
 * the stream after its last chunk. Returns FALSE when @self is gone. */
static gboolean
write_pending (Watch *self)
{
  Chunk *chunk;

  while ((chunk = g_queue_peek_head (&self->chunks)) != NULL)
    {
      g_autoptr(GError) error = NULL;
      gsize len;
      const guint8 *data = g_bytes_get_data (chunk->bytes, &len);
      gssize n = g_pollable_output_stream_write_nonblocking (self->out, data + self->offset,
                                                             len - self->offset, NULL, &error);

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (self->writable == NULL)
            {
              self->writable = g_pollable_output_stream_create_source (self->out, NULL);
              g_source_set_callback (self->writable, G_SOURCE_FUNC (on_writable), self, NULL);
              g_source_attach (self->writable, g_main_context_get_thread_default ());
            }
          return TRUE;
        }
      if (n < 0)
        {
          g_debug ("A watch stream cannot be written: %s", error->message);
          hang_up (self);
          return FALSE;
        }

      self->last_progress = g_get_monotonic_time ();
      self->offset += n;
      self->pending -= n;
      if (self->offset < len)
        continue;
      if (chunk->id != 0)
        self->written_id = chunk->id;
      self->offset = 0;
      chunk_free (g_queue_pop_head (&self->chunks));
    }

  if (self->ended)
    {
      close_stream (self);
      return FALSE;
    }
  return TRUE;
}

static void
queue_bytes (Watch   *self,
             GBytes  *bytes,
             guint64  id)
{
  Chunk *chunk = g_new (Chunk, 1);

  chunk->bytes = bytes;
  chunk->id = id;
  g_queue_push_tail (&self->chunks, chunk);
  self->pending += g_bytes_get_size (bytes);
  self->last_queued = g_get_monotonic_time ();
}

/* Queues @text as one chunk of the body. */
static void
queue_text (Watch      *self,
            const char *text,
            gsize       len,
            guint64     id)
{
  GString *framed = g_string_sized_new (len + 16);

  if (self->chunked)
    g_string_append_printf (framed, "%" G_GSIZE_MODIFIER "x\r\n", len);
  g_string_append_len (framed, text, len);
  if (self->chunked)
    g_string_append (framed, "\r\n");
  queue_bytes (self, g_string_free_to_bytes (framed), id);
}

/* Drops what was not begun: an event cut in two would run into the next
 * one for the client's parser. */
static void
drop_unwritten (Watch *self)
{
  Chunk *begun = self->offset > 0 ? g_queue_pop_head (&self->chunks) : NULL;

  g_queue_clear_full (&self->chunks, chunk_free);
  self->pending = 0;
  if (begun != NULL)
    {
      g_queue_push_head (&self->chunks, begun);
      self->pending = g_bytes_get_size (begun->bytes) - self->offset;
    }
  g_string_truncate (self->revision, 0);
}

/* Queues the last word, then the end of the body. Returns FALSE when
 * @self is gone. */
static gboolean
end_stream (Watch *self,
            End    end)
{
  g_autoptr(GString) last = NULL;

  self->end = end;
  drop_unwritten (self);
  unsubscribe (self);
  /* What is begun goes first: its revision is then written whole. */
  last = format_end (end == END_OVERFLOW ? "overflow" : "shutdown",
                     self->offset > 0 && ((Chunk *) g_queue_peek_head (&self->chunks))->id != 0
                     ? ((Chunk *) g_queue_peek_head (&self->chunks))->id : self->written_id);
  queue_text (self, last->str, last->len, 0);
  if (self->chunked)
    queue_bytes (self, g_bytes_new_static ("0\r\n\r\n", 5), 0);
  self->ended = TRUE;
  return write_pending (self);
}

static void
on_change (KvChange *change,
           gboolean  last,
           gpointer  data)
{
  Watch *self = data;
  g_autoptr(GBytes) event = NULL;
  gsize begun, len;
  const char *text;

  if (self->end != END_NONE)
    return;

  event = get_event (change, last, self->values);
  text = g_bytes_get_data (event, &len);
  kv_stats_add (kv_server_get_stats (self->server), KV_STAT_WATCH_EVENTS, 1);
  g_string_append_len (self->revision, text, len);
  if (!last)
    return;

  /* A revision's events go out together, as one chunk: one write. */
  begun = self->offset > 0
          ? g_bytes_get_size (((Chunk *) g_queue_peek_head (&self->chunks))->bytes) - self->offset
          : 0;
  if (self->pending - begun >= kv_server_get_limits (self->server)->watch_buffer)
    {
      /* The client has not read what waits: it has its place to resume
       * from in the overflow event, and the stream ends. The chunk being
       * written does not count: a value can be larger than the buffer. */
      g_debug ("A watch stream overflows at revision %" G_GUINT64_FORMAT, self->written_id);
      kv_stats_add (kv_server_get_stats (self->server), KV_STAT_WATCH_OVERFLOWS, 1);
      end_stream (self, END_OVERFLOW);
      return;
    }
  queue_text (self, self->revision->str, self->revision->len, kv_change_get_revision (change));
  g_string_truncate (self->revision, 0);
  write_pending (self);
}

static void
on_hung_up (KvConnection *connection,
            gpointer      data)
{
  hang_up (data);
}

static gboolean
on_grace_over (gpointer data)
{
  Watch *self = data;

  g_clear_pointer (&self->grace, g_source_unref);
  hang_up (self);
  return G_SOURCE_REMOVE;
}

static void
stop (gpointer watcher,
      gboolean now)
{
  Watch *self = watcher;

  if (now)
    {
      hang_up (self);
      return;
    }
  if (self->ended || !end_stream (self, END_SHUTDOWN))
    return;

  /* The kernel has not taken it all: a client that reads gets it soon,
   * one that does not is closed. */
  self->grace = g_timeout_source_new (STOP_GRACE_MS);
  g_source_set_callback (self->grace, on_grace_over, self, NULL);
  g_source_attach (self->grace, g_main_context_get_thread_default ());
}

static void
tick (gpointer watcher,
      gint64   now)
{
  Watch *self = watcher;
  const KvLimits *limits = kv_server_get_limits (self->server);
  gint64 stalled = (gint64) (MAX (limits->idle_timeout, limits->request_timeout) + 1) *
                   G_USEC_PER_SEC;

  /* As any answer that makes no progress. */
  if (self->pending > 0)
    {
      if (now - self->last_progress >= stalled)
        hang_up (self);
      return;
    }
  if (self->ended || now - self->last_queued < limits->watch_heartbeat * G_USEC_PER_SEC)
    return;

  queue_text (self, ": heartbeat\n\n", strlen (": heartbeat\n\n"), 0);
  write_pending (self);
}

static const KvWatcherFuncs watcher_funcs = { stop, tick };

/* Subscribed: the answer begins, on the connection taken from libsoup;
 * the caller writes it. */
static void
begin (Watch         *self,
       KvHistoryInfo *history)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (self->msg);
  char text[32];
  int len;

  /* Every change after this revision follows. */
  self->written_id = self->since != KV_REVISION_NOW ? self->since : history->revision;
  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, history->revision);
  soup_message_headers_replace (headers, "KV-Revision", text);
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  self->chunked = soup_server_message_get_http_version (self->msg) != SOUP_HTTP_1_0;
  queue_bytes (self, kv_response_build_stream_head (self->msg, KV_EVENT_STREAM), 0);
  len = g_snprintf (text, sizeof text, "id: %" G_GUINT64_FORMAT "\n\n", self->written_id);
  queue_text (self, text, len, 0);

  self->stream = kv_connection_take_stream (self->connection, self->msg, on_hung_up, self);
  self->out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (self->stream));
  g_clear_object (&self->msg);
  self->last_progress = g_get_monotonic_time ();

  kv_stats_add (kv_server_get_stats (self->server), KV_STAT_WATCHES, 1);
  kv_server_add_watcher (self->server, self, &watcher_funcs);
  self->registered = TRUE;
}

static void
on_subscribed (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  Watch *self = data;
  g_autoptr(GError) error = NULL;
  KvHistoryInfo history = { 0 };
  char text[24];

  self->subscribing = FALSE;
  self->subscription = kv_storage_subscribe_finish (KV_STORAGE (source), result, &history,
                                                    &error);
  if (self->subscription != 0 && kv_server_is_stopping (self->server))
    {
      unsubscribe (self);
      g_set_error_literal (&error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "shutting down");
    }
  if (self->subscription == 0)
    {
      if (g_error_matches (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_COMPACTED))
        {
          g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, history.revision);
          soup_message_headers_replace (soup_server_message_get_response_headers (self->msg),
                                        "KV-Revision", text);
          kv_response_error_revision (self->msg, SOUP_STATUS_GONE, error->message,
                                      history.oldest);
        }
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          soup_message_headers_replace (soup_server_message_get_response_headers (self->msg),
                                        "Retry-After", "1");
          kv_response_error (self->msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "shutting down");
        }
      else
        kv_response_error (self->msg, kv_response_status_for_error (error), error->message);
      /* The handler, if it has not returned, frees us. */
      self->failed = TRUE;
      if (self->in_handler)
        return;
      if (self->paused)
        soup_server_message_unpause (self->msg);
      watch_free (self);
      return;
    }

  begin (self, &history);
  if (!self->in_handler)
    write_pending (self);
}

/* A revision as a query or Last-Event-ID gives it: decimal digits. */
static gboolean
parse_revision (const char *text,
                guint64    *revision)
{
  return g_ascii_string_to_unsigned (text, 10, 0, KV_REVISION_NOW - 1, revision, NULL);
}

/**
 * kv_resource_watch:
 *
 * Answers GET /watch with a stream of events, one per change; HEAD with
 * its headers. 400 for a bad key, values, since or Last-Event-ID, or both
 * a key and a prefix; 410 with KV-Oldest-Revision for a revision the
 * history does not have; 503 beyond max-watchers, when max-pending-output
 * has no room, or while the server stops.
 */
void
kv_resource_watch (KvServer          *server,
                   SoupServerMessage *msg,
                   const char        *path,
                   GHashTable        *query)
{
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  const char *method = soup_server_message_get_method (msg);
  const char *key = query != NULL ? g_hash_table_lookup (query, "key") : NULL;
  const char *prefix = query != NULL ? g_hash_table_lookup (query, "prefix") : NULL;
  const char *values = query != NULL ? g_hash_table_lookup (query, "values") : NULL;
  const char *since = query != NULL ? g_hash_table_lookup (query, "since") : NULL;
  const char *last_event_id = soup_message_headers_get_one (request_headers, "Last-Event-ID");
  KvConnection *connection = kv_connection_from_message (msg);
  guint64 revision = KV_REVISION_NOW;
  KvSubscribeOptions options;
  Watch *self;
  guint status;

  if (!kv_request_is_read_method (method))
    {
      kv_resource_method_not_allowed (msg, KV_RESOURCE_READ_METHODS);
      return;
    }
  if (key != NULL && prefix != NULL)
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "key and prefix together");
      return;
    }
  if (key != NULL &&
      (status = kv_request_check_key (key, strlen (key),
                                      kv_server_get_limits (server)->max_key_size)) != 0)
    {
      kv_response_error (msg, status, status == SOUP_STATUS_REQUEST_URI_TOO_LONG
                                      ? "key too long" : "invalid key");
      return;
    }
  if (values != NULL && !g_str_equal (values, "0") && !g_str_equal (values, "1"))
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid values");
      return;
    }
  /* What an EventSource sends when it reconnects is the latest word. */
  if (last_event_id != NULL && *last_event_id != '\0')
    {
      if (!parse_revision (last_event_id, &revision))
        {
          kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid Last-Event-ID");
          return;
        }
    }
  else if (since != NULL && !parse_revision (since, &revision))
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid since");
      return;
    }

  if (method == SOUP_METHOD_HEAD)
    {
      SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

      soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      soup_message_headers_replace (headers, "Content-Type", KV_EVENT_STREAM);
      soup_message_headers_replace (headers, "Cache-Control", "no-store");
      soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      return;
    }

  /* Only a connection of our transport can be taken from libsoup. */
  if (connection == NULL)
    {
      kv_response_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal error");
      return;
    }
  if (kv_server_is_stopping (server))
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", "1");
      kv_response_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "shutting down");
      return;
    }
  if (!kv_stats_begin_watch (kv_server_get_stats (server),
                             kv_server_get_limits (server)->max_watchers))
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Retry-After", "1");
      kv_response_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "too many watchers");
      return;
    }

  self = g_new0 (Watch, 1);
  self->counted = TRUE;
  self->server = server;
  self->msg = g_object_ref (msg);
  self->connection = g_object_ref (connection);
  self->key = g_strdup (key);
  self->prefix = g_strdup (prefix);
  self->since = revision;
  self->values = values != NULL && g_str_equal (values, "1");
  self->revision = g_string_new (NULL);
  g_queue_init (&self->chunks);

  options = (KvSubscribeOptions) { self->since, self->key, self->prefix };
  self->in_handler = TRUE;
  self->subscribing = TRUE;
  kv_storage_subscribe_async (kv_server_get_storage (server), NULL, &options, on_change, self,
                              NULL, NULL, on_subscribed, self);
  self->in_handler = FALSE;
  if (self->failed)
    watch_free (self);
  else if (self->subscribing)
    {
      /* A store that answers later: the message waits for it. */
      self->paused = TRUE;
      soup_server_message_pause (msg);
    }
  else
    write_pending (self);
}
