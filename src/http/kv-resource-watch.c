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
 * The events go out through a KvChunkStream, a chunk at a time as the
 * client reads them. Those the client has not read yet wait here, up to
 * watch-buffer bytes; past that the stream drops them and ends with an
 * overflow event whose id is the last revision handed to libsoup, from
 * which the client resumes. A stream that has sent nothing for
 * watch-heartbeat seconds sends a comment. A stop ends every stream at
 * once with a shutdown event, and closes the one whose client does not
 * read. Anything the client sends on the connection ends the stream.
 */
#include "config.h"

#include <string.h>

#include "kv-chunk-stream.h"
#include "kv-request.h"
#include "kv-resources.h"
#include "kv-response.h"
#include "kv-server-private.h"

#define KV_EVENT_STREAM "text/event-stream"

/* What one chunk takes at most, reserved in max-pending-output for the
 * whole stream: the events waiting beyond it are bounded by
 * watch-buffer. */
#define CHUNK_BYTES (16 * 1024)

/* How long a stop lets the chunk being written go out before the
 * shutdown event, before it closes the connection of a client that does
 * not read. */
#define STOP_GRACE_MS 1000

typedef enum
{
  END_NONE,
  END_OVERFLOW,
  END_SHUTDOWN,
} End;

typedef struct
{
  GBytes *bytes;                /* (owned) */
  guint64 id;                   /* the revision this event ends, or 0 */
} Event;

typedef struct
{
  KvServer *server;             /* (unowned) the stream holds it */
  SoupServerMessage *msg;       /* (unowned) likewise */
  KvConnection *connection;     /* (owned) (nullable) */
  KvChunkStream *stream;        /* (unowned) (nullable) it owns us, once it asks */
  char *key;                    /* (owned) (nullable) */
  char *prefix;                 /* (owned) (nullable) */
  guint64 since;                /* or KV_REVISION_NOW */
  gboolean values;
  gboolean counted;             /* holds a watcher's place */

  gboolean subscribing;
  guint subscription;
  gboolean registered;          /* with the server, for stops and ticks */

  GQueue events;                /* (element-type Event) (owned) not handed to libsoup yet */
  gsize offset;                 /* how much of the first one was */
  gsize pending;                /* bytes waiting */
  guint64 handed_id;            /* the last revision handed to libsoup whole */
  End end;
  gboolean ended;               /* the last chunk is handed */
  gint64 last_handed;           /* monotonic, for heartbeats */

  gulong gone_id;               /* on the stream's cancellable: the message finished */
  GSource *gone;                /* (owned) (nullable) acting on it */
  GSource *grace;               /* (owned) (nullable) a stop waiting for a chunk */
} Watch;

static void
event_free (gpointer data)
{
  Event *event = data;

  g_bytes_unref (event->bytes);
  g_free (event);
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

/* The bytes of the event libsoup has begun, still to hand it. */
static gsize
begun_bytes (Watch *self)
{
  Event *first = g_queue_peek_head (&self->events);

  return self->offset > 0 ? g_bytes_get_size (first->bytes) - self->offset : 0;
}

/* Drops what was not begun: an event cut in two would run into the next
 * one for the client's parser. */
static void
drop_events (Watch *self)
{
  Event *begun = self->offset > 0 ? g_queue_pop_head (&self->events) : NULL;

  g_queue_clear_full (&self->events, event_free);
  self->pending = 0;
  if (begun != NULL)
    {
      g_queue_push_head (&self->events, begun);
      self->pending = g_bytes_get_size (begun->bytes) - self->offset;
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
watch_free (gpointer data)
{
  Watch *self = data;

  unsubscribe (self);
  if (self->registered)
    kv_server_remove_watcher (self->server, self);
  if (self->connection != NULL)
    {
      kv_connection_stream_done (self->connection);
      g_object_unref (self->connection);
    }
  if (self->counted)
    kv_stats_end_watch (kv_server_get_stats (self->server));
  if (self->gone_id != 0)
    g_cancellable_disconnect (kv_chunk_stream_get_cancellable (self->stream), self->gone_id);
  clear_source (&self->gone);
  clear_source (&self->grace);
  g_queue_clear_full (&self->events, event_free);
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

static void
queue_event (Watch    *self,
             GBytes   *bytes,
             guint64   id,
             gboolean  first)
{
  Event *event = g_new (Event, 1);

  event->bytes = bytes;
  event->id = id;
  if (first)
    g_queue_push_head (&self->events, event);
  else
    g_queue_push_tail (&self->events, event);
  self->pending += g_bytes_get_size (bytes);
}

/* Hands the next chunk to the stream, which asked for it: events, or the
 * last word. @self may be gone when this returns. */
static void
hand (Watch *self)
{
  GString *chunk;
  Event *event;

  if (self->subscribing || self->ended || !kv_chunk_stream_is_asking (self->stream))
    return;

  if (self->pending == 0)
    {
      if (self->end == END_NONE)
        return;
      /* Whatever was not handed is dropped: the client resumes from the
       * last revision it will have had. */
      self->ended = TRUE;
      chunk = format_end (self->end == END_OVERFLOW ? "overflow" : "shutdown", self->handed_id);
      clear_source (&self->grace);
      if (self->connection != NULL)
        kv_connection_stream_done (self->connection);
      kv_chunk_stream_add (self->stream, chunk, TRUE);
      return;
    }

  chunk = g_string_sized_new (MIN (self->pending, CHUNK_BYTES));
  while (chunk->len < CHUNK_BYTES && (event = g_queue_peek_head (&self->events)) != NULL)
    {
      gsize len;
      const char *data = g_bytes_get_data (event->bytes, &len);
      gsize piece = MIN (len - self->offset, CHUNK_BYTES - chunk->len);

      g_string_append_len (chunk, data + self->offset, piece);
      self->offset += piece;
      self->pending -= piece;
      if (self->offset < len)
        break;
      if (event->id != 0)
        self->handed_id = event->id;
      self->offset = 0;
      event_free (g_queue_pop_head (&self->events));
    }
  self->last_handed = g_get_monotonic_time ();
  kv_chunk_stream_add (self->stream, chunk, FALSE);
}

static void
on_change (KvChange *change,
           gboolean  last,
           gpointer  data)
{
  Watch *self = data;

  if (self->end != END_NONE)
    return;

  /* The client has not read what waits: it has its place to resume from
   * in the overflow event, and the stream ends. An event libsoup has begun
   * does not count: a value can be larger than the buffer. */
  if (self->pending - begun_bytes (self) >= kv_server_get_limits (self->server)->watch_buffer)
    {
      g_debug ("A watch stream overflows at revision %" G_GUINT64_FORMAT, self->handed_id);
      kv_stats_add (kv_server_get_stats (self->server), KV_STAT_WATCH_OVERFLOWS, 1);
      self->end = END_OVERFLOW;
      drop_events (self);
      unsubscribe (self);
      hand (self);
      return;
    }

  queue_event (self, get_event (change, last, self->values),
               last ? kv_change_get_revision (change) : 0, FALSE);
  kv_stats_add (kv_server_get_stats (self->server), KV_STAT_WATCH_EVENTS, 1);
  hand (self);
}

/* The client went away, or does not read while the server stops: the
 * connection is closed and the stream goes with it. */
static void
hang_up (Watch *self)
{
  KvChunkStream *stream = self->stream;

  unsubscribe (self);
  self->ended = TRUE;
  if (self->connection != NULL)
    {
      g_autoptr(KvConnection) connection = g_object_ref (self->connection);

      kv_connection_hang_up (connection, self->msg);
    }
  kv_chunk_stream_abandon (stream);
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
  g_debug ("Closing a watch stream whose client does not read");
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
  if (self->end == END_SHUTDOWN || self->ended)
    return;

  self->end = END_SHUTDOWN;
  drop_events (self);
  unsubscribe (self);
  if (kv_chunk_stream_is_asking (self->stream))
    {
      hand (self);
      return;
    }
  /* A chunk is on its way: the shutdown event follows it, unless the
   * client does not read. */
  self->grace = g_timeout_source_new (STOP_GRACE_MS);
  g_source_set_callback (self->grace, on_grace_over, self, NULL);
  g_source_attach (self->grace, g_main_context_get_thread_default ());
}

static void
tick (gpointer watcher,
      gint64   now)
{
  Watch *self = watcher;
  guint heartbeat = kv_server_get_limits (self->server)->watch_heartbeat;

  if (self->end != END_NONE || self->ended || !kv_chunk_stream_is_asking (self->stream) ||
      now - self->last_handed < heartbeat * G_USEC_PER_SEC)
    return;

  self->last_handed = now;
  kv_chunk_stream_add (self->stream, g_string_new (": heartbeat\n\n"), FALSE);
}

static const KvWatcherFuncs watcher_funcs = { stop, tick };

/* The message is finished while the stream waits for events: let the
 * stream go. */
static gboolean
on_gone (gpointer data)
{
  Watch *self = data;
  g_autoptr(GError) error = NULL;

  g_clear_pointer (&self->gone, g_source_unref);
  unsubscribe (self);
  if (kv_chunk_stream_is_asking (self->stream) && !self->subscribing)
    {
      g_cancellable_set_error_if_cancelled (kv_chunk_stream_get_cancellable (self->stream),
                                            &error);
      kv_chunk_stream_fail (self->stream, error);
    }
  return G_SOURCE_REMOVE;
}

/* In libsoup's finished signal: act once it has returned. A handler
 * rather than a source, which every turn of the main loop would look at
 * for each of a thousand streams. */
static void
on_cancelled (GCancellable *cancellable,
              gpointer      data)
{
  Watch *self = data;

  if (self->gone != NULL)
    return;
  self->gone = g_idle_source_new ();
  g_source_set_callback (self->gone, on_gone, self, NULL);
  g_source_attach (self->gone, g_main_context_get_thread_default ());
}

static void
on_subscribed (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  Watch *self = data;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (self->msg);
  g_autoptr(GError) error = NULL;
  KvHistoryInfo history = { 0 };
  char text[24];

  self->subscribing = FALSE;
  self->subscription = kv_storage_subscribe_finish (KV_STORAGE (source), result, &history,
                                                    &error);
  if (self->subscription == 0)
    {
      if (g_error_matches (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_COMPACTED))
        {
          g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, history.revision);
          soup_message_headers_replace (headers, "KV-Revision", text);
          kv_response_error_revision (self->msg, SOUP_STATUS_GONE, error->message,
                                      history.oldest);
          kv_chunk_stream_end_answered (self->stream);
        }
      else
        kv_chunk_stream_fail (self->stream, error);
      return;
    }
  if (g_cancellable_set_error_if_cancelled (kv_chunk_stream_get_cancellable (self->stream),
                                            &error))
    {
      kv_chunk_stream_fail (self->stream, error);
      return;
    }

  /* Every change after this revision follows. */
  self->handed_id = self->since != KV_REVISION_NOW ? self->since : history.revision;
  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, history.revision);
  soup_message_headers_replace (headers, "KV-Revision", text);
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  /* A stream that ends (an overflow, a stop) ends its connection. */
  soup_message_headers_replace (headers, "Connection", "close");

  kv_stats_add (kv_server_get_stats (self->server), KV_STAT_WATCHES, 1);
  kv_server_add_watcher (self->server, self, &watcher_funcs);
  self->registered = TRUE;
  if (self->connection != NULL)
    kv_connection_stream_started (self->connection, on_hung_up, self);

  self->last_handed = g_get_monotonic_time ();
  self->ended = FALSE;
  if (kv_server_is_stopping (self->server))
    {
      self->end = END_SHUTDOWN;
      drop_events (self);
      unsubscribe (self);
    }
  /* The revision it starts from comes first: it is where an EventSource
   * resumes from if nothing else comes. */
  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, self->handed_id);
  queue_event (self, g_bytes_new_take (g_strconcat ("id: ", text, "\n\n", NULL),
                                       strlen (text) + strlen ("id: \n\n")),
               self->handed_id, TRUE);
  hand (self);
}

static void
next (KvChunkStream *stream,
      gpointer       data)
{
  Watch *self = data;
  KvSubscribeOptions options;

  if (self->stream != NULL)
    {
      hand (self);
      return;
    }

  /* The subscription is made when the answer can begin. */
  self->stream = stream;
  self->gone_id = g_cancellable_connect (kv_chunk_stream_get_cancellable (stream),
                                         G_CALLBACK (on_cancelled), self, NULL);

  options = (KvSubscribeOptions) { self->since, self->key, self->prefix };
  self->subscribing = TRUE;
  kv_storage_subscribe_async (kv_server_get_storage (self->server), NULL, &options, on_change,
                              self, NULL, NULL, on_subscribed, self);
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
  self->msg = msg;
  self->connection = connection != NULL ? g_object_ref (connection) : NULL;
  self->key = g_strdup (key);
  self->prefix = g_strdup (prefix);
  self->since = revision;
  self->values = values != NULL && g_str_equal (values, "1");
  self->ended = TRUE;           /* until the stream begins */
  g_queue_init (&self->events);
  kv_server_exclude_from_durations (msg);

  kv_chunk_stream_start (server, msg, CHUNK_BYTES, KV_EVENT_STREAM, next, self, watch_free);
}
