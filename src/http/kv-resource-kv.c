/* kv-resource-kv.c: /kv/{key}, one value
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "kv-call.h"
#include "kv-request.h"
#include "kv-resources.h"
#include "kv-response.h"
#include "kv-server-private.h"
#include "storage/kv-entry.h"

static void
reply_storage_error (KvServer          *server,
                     SoupServerMessage *msg,
                     const GError      *error)
{
  if (g_error_matches (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_PRECONDITION_FAILED))
    kv_stats_add (kv_server_get_stats (server), KV_STAT_PRECONDITION_FAILURES, 1);

  kv_response_error (msg, kv_response_status_for_error (error), error->message);
}

static void
answer_get (KvServer          *server,
            SoupServerMessage *msg,
            KvEntry           *entry,
            gint64             expires_at,
            const GError      *error)
{
  g_autoptr(GBytes) value = NULL;
  KvStats *stats = kv_server_get_stats (server);
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  const char *if_match;
  const char *if_none_match;
  const char *content_type;

  if (entry == NULL)
    {
      /* Preconditions only apply to a request that would succeed without
       * them (RFC 9110 §13.2.1): a missing key is 404 whatever they say. */
      if (g_error_matches (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_NOT_FOUND))
        kv_stats_add (stats, KV_STAT_MISSES, 1);
      reply_storage_error (server, msg, error);
      return;
    }
  kv_stats_add (stats, KV_STAT_HITS, 1);

  /* If-Match first, with the strong comparison, then If-None-Match with
   * the weak one (RFC 9110 §13.2.2). */
  if_match = soup_message_headers_get_list (request_headers, "If-Match");
  if (if_match != NULL)
    {
      KvMatch match;

      if (!kv_match_parse (&match, if_match))
        {
          kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid precondition");
          return;
        }
      if (!kv_match_contains (&match, kv_entry_get_revision (entry), FALSE))
        {
          kv_stats_add (stats, KV_STAT_PRECONDITION_FAILURES, 1);
          kv_response_set_etag (headers, kv_entry_get_revision (entry));
          kv_response_error (msg, SOUP_STATUS_PRECONDITION_FAILED, "precondition failed");
          return;
        }
    }

  kv_response_set_etag (headers, kv_entry_get_revision (entry));
  if (expires_at != 0)
    {
      g_autofree char *stamp = kv_response_format_timestamp (expires_at);
      soup_message_headers_replace (headers, "KV-Expires-At", stamp);
    }

  if_none_match = soup_message_headers_get_list (request_headers, "If-None-Match");
  if (if_none_match != NULL)
    {
      KvMatch match;

      if (kv_match_parse (&match, if_none_match) &&
          kv_match_contains (&match, kv_entry_get_revision (entry), TRUE))
        {
          /* A 304 must not send a length other than the value's (RFC 9110
           * §8.6): libsoup would send the empty body's 0. */
          soup_message_headers_set_content_length (headers, kv_entry_get_value_size (entry));
          soup_server_message_set_status (msg, SOUP_STATUS_NOT_MODIFIED, NULL);
          return;
        }
    }

  /* libsoup 3.2 answers Range requests by itself, and a list of ranges can
   * make it repeat the value many times over: always send the whole value. */
  soup_message_headers_remove (request_headers, "Range");

  content_type = kv_entry_get_content_type (entry);
  if (content_type == NULL)
    content_type = kv_entry_get_is_utf8 (entry) ? KV_TEXT_PLAIN : KV_OCTET_STREAM;
  soup_message_headers_replace (headers, "Content-Type", content_type);
  soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");

  value = kv_entry_get_value (entry);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), value);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
on_got (GObject      *source,
        GAsyncResult *result,
        gpointer      data)
{
  KvCall *call = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(KvEntry) entry = NULL;
  gint64 expires_at = 0;

  entry = kv_storage_get_finish (KV_STORAGE (source), result, &expires_at, &error);
  answer_get (kv_call_get_server (call), kv_call_get_message (call), entry, expires_at, error);
  kv_call_end (call);
}

/* Whether a GET of @entry would be answered 304: If-Match (if any) holds
 * and If-None-Match names its tag. */
static gboolean
is_not_modified (SoupMessageHeaders *request_headers,
                 const KvEntry      *entry)
{
  const char *if_match = soup_message_headers_get_list (request_headers, "If-Match");
  const char *if_none_match = soup_message_headers_get_list (request_headers, "If-None-Match");
  KvMatch match;

  if (if_match != NULL &&
      (!kv_match_parse (&match, if_match) ||
       !kv_match_contains (&match, kv_entry_get_revision (entry), FALSE)))
    return FALSE;

  return if_none_match != NULL && kv_match_parse (&match, if_none_match) &&
         kv_match_contains (&match, kv_entry_get_revision (entry), TRUE);
}

/* ---- Long-polling reads ----
 *
 * A GET with If-None-Match and Prefer: wait=N whose answer would be 304
 * waits instead, until its key changes (then it is answered as a GET
 * anew: 200 with the new value, or 404) or N seconds pass (304). The
 * subscription to the key is made before the key is read, so that no
 * change falls between the two; only a change to that key wakes it. A
 * stop answers it 304 at once. */

typedef struct
{
  KvCall *call;                 /* (unowned) it owns us */
  char *key;                    /* (owned) */
  guint wait;                   /* seconds, as applied */
  guint subscription;
  gboolean counted;             /* holds a watcher's place */
  gboolean waiting;             /* registered with the server */
  gboolean reading;             /* a get is under way after a change */
  KvEntry *entry;               /* (owned) (nullable) what a 304 is about */
  gint64 expires_at;
  GSource *timeout;             /* (owned) (nullable) */
  GSource *cancelled;           /* (owned) (nullable) */
} Poll;

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* Lets go of everything but the call, which the answer ends. */
static void
poll_release (Poll *self)
{
  KvServer *server = kv_call_get_server (self->call);

  if (self->subscription != 0)
    kv_storage_unsubscribe (kv_server_get_storage (server), self->subscription);
  self->subscription = 0;
  if (self->waiting)
    kv_server_remove_watcher (server, self);
  self->waiting = FALSE;
  if (self->counted)
    kv_stats_end_watch (kv_server_get_stats (server));
  self->counted = FALSE;
  clear_source (&self->timeout);
  clear_source (&self->cancelled);
}

static void
poll_free (gpointer data)
{
  Poll *self = data;

  poll_release (self);
  g_clear_pointer (&self->entry, kv_entry_unref);
  g_free (self->key);
  g_free (self);
}

static void
set_preference_applied (Poll *self)
{
  SoupServerMessage *msg = kv_call_get_message (self->call);
  g_autofree char *applied = g_strdup_printf ("wait=%u", self->wait);

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Preference-Applied", applied);
}

/* Nothing changed within the wait: the 304 it would have had. */
static void
answer_unchanged (Poll *self)
{
  KvCall *call = self->call;

  poll_release (self);
  set_preference_applied (self);
  answer_get (kv_call_get_server (call), kv_call_get_message (call), self->entry,
              self->expires_at, NULL);
  kv_call_end (call);
}

static gboolean
on_poll_timeout (gpointer data)
{
  Poll *self = data;

  g_clear_pointer (&self->timeout, g_source_unref);
  answer_unchanged (self);
  return G_SOURCE_REMOVE;
}

/* The client went away: nobody to answer. */
static gboolean
on_poll_cancelled (GCancellable *cancellable,
                   gpointer      data)
{
  Poll *self = data;

  g_clear_pointer (&self->cancelled, g_source_unref);
  poll_release (self);
  kv_call_end (self->call);
  return G_SOURCE_REMOVE;
}

static void
poll_stop (gpointer watcher,
           gboolean now)
{
  Poll *self = watcher;

  /* A read under way answers soon enough. */
  if (!self->reading)
    answer_unchanged (self);
}

static const KvWatcherFuncs poll_funcs = { poll_stop, NULL };

static void on_poll_got (GObject      *source,
                         GAsyncResult *result,
                         gpointer      data);

static void
on_poll_change (KvChange *change,
                gboolean  last,
                gpointer  data)
{
  Poll *self = data;

  if (!self->waiting || self->reading)
    return;
  self->reading = TRUE;
  kv_storage_get_async (kv_server_get_storage (kv_call_get_server (self->call)), self->key,
                        kv_call_get_cancellable (self->call), on_poll_got, self);
}

static void
on_poll_got (GObject      *source,
             GAsyncResult *result,
             gpointer      data)
{
  Poll *self = data;
  KvCall *call = self->call;
  KvServer *server = kv_call_get_server (call);
  SoupServerMessage *msg = kv_call_get_message (call);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvEntry) entry = NULL;
  gint64 expires_at = 0;

  self->reading = FALSE;
  entry = kv_storage_get_finish (KV_STORAGE (source), result, &expires_at, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  if (entry != NULL && is_not_modified (soup_server_message_get_request_headers (msg), entry) &&
      !kv_server_is_stopping (server))
    {
      g_clear_pointer (&self->entry, kv_entry_unref);
      self->entry = g_steal_pointer (&entry);
      self->expires_at = expires_at;
      if (self->waiting)
        return;

      if (!kv_stats_begin_watch (kv_server_get_stats (server),
                                 kv_server_get_limits (server)->max_watchers))
        {
          poll_release (self);
          soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                        "Retry-After", "1");
          kv_response_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "too many watchers");
          kv_call_end (call);
          return;
        }
      self->counted = TRUE;
      self->waiting = TRUE;
      kv_server_add_watcher (server, self, &poll_funcs);
      kv_server_exclude_from_durations (msg);
      kv_stats_add (kv_server_get_stats (server), KV_STAT_LONG_POLLS, 1);
      self->timeout = g_timeout_source_new ((guint64) self->wait * 1000 > G_MAXUINT
                                            ? G_MAXUINT : self->wait * 1000);
      g_source_set_callback (self->timeout, on_poll_timeout, self, NULL);
      g_source_attach (self->timeout, g_main_context_get_thread_default ());
      self->cancelled = g_cancellable_source_new (kv_call_get_cancellable (call));
      g_source_set_callback (self->cancelled, G_SOURCE_FUNC (on_poll_cancelled), self, NULL);
      g_source_attach (self->cancelled, g_main_context_get_thread_default ());
      return;
    }

  /* Changed, at once or since: answered as any GET. */
  if (self->waiting)
    set_preference_applied (self);
  poll_release (self);
  answer_get (server, msg, entry, expires_at, error);
  kv_call_end (call);
}

static void
on_poll_subscribed (GObject      *source,
                    GAsyncResult *result,
                    gpointer      data)
{
  Poll *self = data;
  g_autoptr(GError) error = NULL;

  self->subscription = kv_storage_subscribe_finish (KV_STORAGE (source), result, NULL, &error);
  if (self->subscription == 0)
    {
      kv_response_error (kv_call_get_message (self->call), kv_response_status_for_error (error),
                         error->message);
      kv_call_end (self->call);
      return;
    }

  kv_storage_get_async (KV_STORAGE (source), self->key, kv_call_get_cancellable (self->call),
                        on_poll_got, self);
}

/* The wait a GET asks for, within max-wait; 0 for none. */
static guint
wait_asked (KvServer          *server,
            SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  guint wait;

  if (soup_message_headers_get_one (headers, "If-None-Match") == NULL ||
      !kv_request_parse_prefer_wait (soup_message_headers_get_list (headers, "Prefer"), &wait) ||
      kv_server_is_stopping (server))
    return 0;

  return MIN (wait, kv_server_get_limits (server)->max_wait);
}

static void
handle_get (KvServer          *server,
            SoupServerMessage *msg,
            const char        *key)
{
  KvCall *call;
  guint wait = wait_asked (server, msg);

  kv_stats_add (kv_server_get_stats (server), KV_STAT_GETS, 1);
  call = kv_call_begin (server, msg);
  if (wait > 0)
    {
      Poll *poll = g_new0 (Poll, 1);
      KvSubscribeOptions options = { KV_REVISION_NOW, key, NULL };

      poll->call = call;
      poll->key = g_strdup (key);
      poll->wait = wait;
      kv_call_set_data (call, poll, poll_free);
      kv_storage_subscribe_async (kv_server_get_storage (server), NULL, &options, on_poll_change,
                                  poll, NULL, kv_call_get_cancellable (call), on_poll_subscribed,
                                  poll);
    }
  else
    kv_storage_get_async (kv_server_get_storage (server), key, kv_call_get_cancellable (call),
                          on_got, call);
  kv_call_dispatched (call);
}

/* A put or a delete: a transaction of one operation. */
static void
on_applied (GObject      *source,
            GAsyncResult *result,
            gpointer      data)
{
  KvCall *call = data;
  KvServer *server = kv_call_get_server (call);
  SoupServerMessage *msg = kv_call_get_message (call);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvTxnResult) applied = NULL;
  const KvOpResult *op;

  applied = kv_storage_apply_finish (KV_STORAGE (source), result, NULL, &error);
  if (applied == NULL)
    {
      reply_storage_error (server, msg, error);
      kv_call_end (call);
      return;
    }

  op = kv_txn_result_get (applied, 0);
  if (op->kind == KV_OP_PUT)
    {
      kv_stats_add (kv_server_get_stats (server), KV_STAT_PUTS, 1);
      kv_response_set_etag (soup_server_message_get_response_headers (msg),
                            kv_entry_get_revision (op->entry));
    }
  else
    kv_stats_add (kv_server_get_stats (server), KV_STAT_DELETES, 1);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  kv_call_end (call);
}

static void
apply_one (KvServer          *server,
           SoupServerMessage *msg,
           KvTxn             *txn)
{
  KvCall *call = kv_call_begin (server, msg);

  kv_storage_apply_async (kv_server_get_storage (server), txn, kv_call_get_cancellable (call),
                          on_applied, call);
  kv_call_dispatched (call);
}

static void
handle_put (KvServer          *server,
            SoupServerMessage *msg,
            const char        *key,
            GHashTable        *query)
{
  g_autoptr(GBytes) value = NULL;
  g_autoptr(KvTxn) txn = NULL;
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  KvCondition condition;
  KvSetOptions options = { NULL, KV_TTL_NONE, 0, &condition };
  const char *ttl = query != NULL ? g_hash_table_lookup (query, "ttl") : NULL;
  gboolean keepttl = kv_request_query_has_name (g_uri_get_query (soup_server_message_get_uri (msg)),
                                                "keepttl");
  const char *content_type;

  value = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  if (g_bytes_get_size (value) > kv_server_get_limits (server)->max_value_size)
    {
      kv_response_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "value too large");
      return;
    }
  if (g_bytes_get_size (value) == 0)
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "value cannot be empty");
      return;
    }

  if (ttl != NULL && keepttl)
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid ttl");
      return;
    }
  if (ttl != NULL)
    {
      if (!kv_request_parse_ttl (ttl, &options.ttl))
        {
          kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid ttl");
          return;
        }
      options.ttl_mode = KV_TTL_SET;
    }
  else if (keepttl)
    options.ttl_mode = KV_TTL_KEEP;

  /* curl -d sends a form type that says nothing about the value. */
  content_type = soup_message_headers_get_one (request_headers, "Content-Type");
  if (content_type != NULL &&
      g_ascii_strcasecmp (content_type, "application/x-www-form-urlencoded") != 0)
    {
      if (!kv_request_parse_media_type (content_type))
        {
          kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid content type");
          return;
        }
      options.content_type = content_type;
    }

  if (!kv_request_parse_condition (request_headers, &condition))
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid precondition");
      return;
    }

  txn = kv_txn_new ();
  kv_txn_add_put (txn, key, value, &options);
  apply_one (server, msg, txn);
}

static void
handle_delete (KvServer          *server,
               SoupServerMessage *msg,
               const char        *key)
{
  g_autoptr(KvTxn) txn = NULL;
  KvCondition condition;

  if (!kv_request_parse_condition (soup_server_message_get_request_headers (msg), &condition))
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid precondition");
      return;
    }

  txn = kv_txn_new ();
  kv_txn_add_delete (txn, key, &condition);
  apply_one (server, msg, txn);
}

/**
 * kv_resource_kv:
 *
 * Answers GET, HEAD, PUT and DELETE on /kv/{key}. The server runs with
 * raw-paths on: the key is decoded here, so that %2F cannot become a path
 * separator before the key is read.
 */
void
kv_resource_kv (KvServer          *server,
                SoupServerMessage *msg,
                const char        *path,
                GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  const char *raw = path + strlen (KV_RESOURCE_KV_PREFIX);
  char key[KV_ENTRY_MAX_KEY_SIZE + 1];
  guint status;

  if (*raw == '\0')
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "key cannot be empty");
      return;
    }

  status = kv_request_decode_key (raw, kv_server_get_limits (server)->max_key_size, key);
  if (status == SOUP_STATUS_REQUEST_URI_TOO_LONG)
    kv_response_error (msg, status, "key too long");
  else if (status != 0)
    kv_response_error (msg, status, "invalid key");
  else if (kv_request_is_read_method (method))
    handle_get (server, msg, key);
  else if (method == SOUP_METHOD_PUT)
    handle_put (server, msg, key, query);
  else if (method == SOUP_METHOD_DELETE)
    handle_delete (server, msg, key);
  else
    kv_resource_method_not_allowed (msg, KV_RESOURCE_KV_METHODS);
}
