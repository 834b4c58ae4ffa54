/* kv-resource-import.c: /import, restoring what /export wrote
 *
 * SPDX-License-Identifier: MIT
 *
 * POST /import?mode=merge|replace takes NDJSON, one entry a line, as
 * GET /export writes it. The body is read as it arrives (libsoup keeps
 * none of it) and each line is checked with the rules of /txn's puts;
 * the entries are held, packed, in blocks, which take no more room than
 * the lines did. Nothing is applied until every line has passed: a bad
 * line is 400 naming it, and the rest of the body is read and thrown
 * away. Then the entries go to the store through kv_storage_apply_async(),
 * as transactions of at most BATCH_ENTRIES entries (and about
 * max-txn-size bytes), one per main loop iteration so that the thread
 * goes on serving its other connections; replace clears the store in the
 * first of them. Each batch is atomic, the import as a whole is not.
 *
 * The body may be as large as max-import-size. Rather than within one
 * request timeout, it must arrive at a rate: every IMPORT_PROGRESS_BYTES
 * give the request the request timeout again.
 */
#include "config.h"

#include <string.h>

#include "kv-call.h"
#include "kv-request.h"
#include "kv-resources.h"
#include "kv-response.h"
#include "net/kv-connection.h"

/* The most entries in one transaction. */
#define BATCH_ENTRIES 1000

/* How much of the body starts the request's deadline over. */
#define IMPORT_PROGRESS_BYTES (1024 * 1024)

/* Entries are packed into blocks of this size (larger for a large one). */
#define BLOCK_BYTES (1024 * 1024)

/* A packed entry: its head, then the key, a NUL, the value, and the
 * content type and a NUL if it has one. */
#define HEAD_BYTES (2 + 4 + 1 + 8)

typedef struct
{
  KvServer *server;             /* (owned) */
  gboolean replace;
  gulong got_chunk_id;

  /* Reading */
  JsonParser *parser;           /* (owned) */
  GString *line;                /* (owned) the line being read */
  gsize max_line;
  guint64 n_lines;
  guint64 body_bytes;
  guint64 next_progress;
  guint status;                 /* of the first bad line, or 0 */
  const char *problem;
  guint64 problem_line;

  /* The entries, packed */
  GPtrArray *blocks;            /* (element-type GBytes) (owned) full ones */
  guint8 *block;                /* (owned) (nullable) being filled */
  gsize block_len;
  gsize block_size;
  guint64 n_entries;
  guint64 n_skipped;

  /* Applying */
  KvCall *call;                 /* (unowned) it owns us then */
  guint next_block;
  gsize next_offset;
  gboolean begun;               /* a batch went to the store */
  guint batch_puts;
  guint64 n_imported;
  guint64 revision;
  GSource *next_batch;          /* (owned) (nullable) */
} Import;

static void
import_free (gpointer data)
{
  Import *self = data;

  if (self->next_batch != NULL)
    {
      g_source_destroy (self->next_batch);
      g_source_unref (self->next_batch);
    }
  g_ptr_array_unref (self->blocks);
  g_free (self->block);
  g_string_free (self->line, TRUE);
  g_object_unref (self->parser);
  g_object_unref (self->server);
  g_free (self);
}

static Import *
import_new (KvServer *server,
            gboolean  replace)
{
  const KvLimits *limits = kv_server_get_limits (server);
  Import *self = g_new0 (Import, 1);

  self->server = g_object_ref (server);
  self->replace = replace;
  self->parser = json_parser_new_immutable ();
  self->line = g_string_new (NULL);
  /* The longest line a valid entry can take, every character of it
   * written as \uXXXX, and some room for white space. */
  self->max_line = 6 * (limits->max_key_size + limits->max_value_size +
                        KV_REQUEST_MAX_MEDIA_TYPE_LENGTH) + 4096;
  self->next_progress = IMPORT_PROGRESS_BYTES;
  self->blocks = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  return self;
}

static void
drop_entries (Import *self)
{
  g_ptr_array_set_size (self->blocks, 0);
  g_clear_pointer (&self->block, g_free);
  self->block_len = self->block_size = 0;
}

static void
finish_block (Import *self)
{
  if (self->block == NULL)
    return;
  /* Shrinking in place: what is held is what the entries take. */
  g_ptr_array_add (self->blocks, g_bytes_new_take (g_realloc (self->block, self->block_len),
                                                   self->block_len));
  self->block = NULL;
  self->block_len = self->block_size = 0;
}

static void
hold_entry (Import     *self,
            const char *key,
            GBytes     *value,
            const char *content_type,
            gint64      expires_at)
{
  guint16 key_len = strlen (key);
  gsize value_len;
  gconstpointer value_data = g_bytes_get_data (value, &value_len);
  guint32 value_len32 = value_len;
  guint8 type_len = content_type != NULL ? strlen (content_type) : 0;
  gsize size = HEAD_BYTES + key_len + 1 + value_len + (type_len > 0 ? type_len + 1 : 0);
  guint8 *p;

  if (self->block == NULL || self->block_len + size > self->block_size)
    {
      finish_block (self);
      self->block_size = MAX (BLOCK_BYTES, size);
      self->block = g_malloc (self->block_size);
    }

  p = self->block + self->block_len;
  memcpy (p, &key_len, 2);
  memcpy (p + 2, &value_len32, 4);
  p[6] = type_len;
  memcpy (p + 7, &expires_at, 8);
  p += HEAD_BYTES;
  memcpy (p, key, key_len + 1);
  p += key_len + 1;
  if (value_len > 0)
    memcpy (p, value_data, value_len);
  p += value_len;
  if (type_len > 0)
    memcpy (p, content_type, type_len + 1);
  self->block_len += size;
  self->n_entries++;
}

static gboolean
refuse_line (Import     *self,
             guint       status,
             const char *text)
{
  self->status = status;
  self->problem = text;
  self->problem_line = self->n_lines;
  /* Nothing of it will be applied: let go of it now. */
  drop_entries (self);
  return FALSE;
}

static const char * const entry_members[] = {
  "key", "value", "value_base64", "content_type", "expires_at", "revision", NULL
};

/* An RFC 3339 timestamp, as export writes it, in microseconds. */
static gboolean
parse_timestamp (const char *text,
                 gint64     *usec)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_iso8601 (text, NULL);

  if (time == NULL)
    return FALSE;
  *usec = g_date_time_to_unix (time) * G_USEC_PER_SEC + g_date_time_get_microsecond (time);
  return TRUE;
}

static gboolean
read_line (Import     *self,
           const char *data,
           gsize       len)
{
  const KvLimits *limits = kv_server_get_limits (self->server);
  g_autoptr(GBytes) value = NULL;
  const char *problem;
  const char *key, *text, *base64, *content_type, *expires_at;
  JsonObject *object;
  JsonNode *root, *revision;
  gint64 deadline = 0;
  guint status;
  gsize i;

  self->n_lines++;
  for (i = 0; i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r'); i++)
    ;
  if (i == len)
    return TRUE;

  if (!kv_request_load_json (self->parser, data, len, &problem))
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, problem);
  root = json_parser_get_root (self->parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "line must be an object");
  object = json_node_get_object (root);
  if (!kv_request_json_has_only (object, entry_members))
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "unknown member");

  if (!kv_request_json_get_string (object, "key", &key) || key == NULL)
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "key required");
  status = kv_request_check_key (key, strlen (key), limits->max_key_size);
  if (status == SOUP_STATUS_REQUEST_URI_TOO_LONG)
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "key too long");
  if (status != 0)
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "invalid key");

  if (!kv_request_json_get_string (object, "value", &text) || !kv_request_json_get_string (object, "value_base64", &base64))
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "invalid value");
  if ((text == NULL) == (base64 == NULL))
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "one of value and value_base64 required");
  if (text != NULL)
    value = g_bytes_new (text, strlen (text));
  else if ((value = kv_request_decode_base64 (base64)) == NULL)
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "invalid base64");
  if (g_bytes_get_size (value) == 0)
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "value cannot be empty");
  if (g_bytes_get_size (value) > limits->max_value_size)
    return refuse_line (self, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "value too large");

  if (!kv_request_json_get_string (object, "content_type", &content_type) ||
      (content_type != NULL && !kv_request_parse_media_type (content_type)))
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "invalid content type");

  if (!kv_request_json_get_string (object, "expires_at", &expires_at) ||
      (expires_at != NULL && !parse_timestamp (expires_at, &deadline)))
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "invalid expires_at");

  /* Imported entries get revisions of their own: this one only has to be
   * what an export writes. */
  revision = json_object_get_member (object, "revision");
  if (revision != NULL &&
      (!JSON_NODE_HOLDS_VALUE (revision) || json_node_get_value_type (revision) != G_TYPE_INT64 ||
       json_node_get_int (revision) < 0))
    return refuse_line (self, SOUP_STATUS_BAD_REQUEST, "invalid revision");

  if (expires_at != NULL && deadline <= g_get_real_time ())
    {
      self->n_skipped++;
      return TRUE;
    }

  hold_entry (self, key, value, content_type, expires_at != NULL ? deadline : 0);
  return TRUE;
}

/* Takes in the next bytes of the body. */
static void
feed (Import     *self,
      const char *data,
      gsize       len)
{
  const char *end = data + len;

  while (self->status == 0 && data < end)
    {
      const char *newline = memchr (data, '\n', end - data);
      const char *stop = newline != NULL ? newline : end;

      if (self->line->len + (stop - data) > self->max_line)
        {
          self->n_lines++;
          refuse_line (self, SOUP_STATUS_BAD_REQUEST, "line too long");
          return;
        }
      if (newline == NULL)
        {
          g_string_append_len (self->line, data, end - data);
          return;
        }

      if (self->line->len == 0)
        read_line (self, data, newline - data);
      else
        {
          g_string_append_len (self->line, data, newline - data);
          read_line (self, self->line->str, self->line->len);
          g_string_truncate (self->line, 0);
        }
      data = newline + 1;
    }
}

static void
on_got_chunk (SoupServerMessage *msg,
              GBytes            *chunk,
              gpointer           data)
{
  Import *self = data;
  gsize len;
  const char *bytes = g_bytes_get_data (chunk, &len);

  self->body_bytes += len;
  if (self->body_bytes >= self->next_progress)
    {
      KvConnection *connection = kv_connection_from_message (msg);

      if (connection != NULL)
        kv_connection_restart_deadline (connection);
      self->next_progress = self->body_bytes + IMPORT_PROGRESS_BYTES;
    }

  feed (self, bytes, len);
}

/* ---- Applying ---- */

static void apply_batch (Import *self);

static void
answer (Import *self)
{
  SoupServerMessage *msg = kv_call_get_message (self->call);
  char text[24];

  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, self->revision);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "KV-Revision", text);
  if (kv_response_wants_json (soup_server_message_get_request_headers (msg)))
    kv_response_text (msg, KV_JSON,
                      g_strdup_printf ("{\"imported\":%" G_GUINT64_FORMAT ",\"skipped\":%"
                                       G_GUINT64_FORMAT ",\"revision\":%" G_GUINT64_FORMAT "}\n",
                                       self->n_imported, self->n_skipped, self->revision));
  else
    kv_response_text (msg, KV_TEXT_PLAIN,
                      g_strdup_printf ("imported %" G_GUINT64_FORMAT ", skipped %"
                                       G_GUINT64_FORMAT ", revision %" G_GUINT64_FORMAT "\n",
                                       self->n_imported, self->n_skipped, self->revision));
}

static gboolean
on_next_batch (gpointer data)
{
  Import *self = data;

  g_clear_pointer (&self->next_batch, g_source_unref);
  /* The client went away, or the server: the batches so far stay. */
  if (g_cancellable_is_cancelled (kv_call_get_cancellable (self->call)))
    kv_call_end (self->call);
  else
    apply_batch (self);
  return G_SOURCE_REMOVE;
}

static gboolean
all_taken (Import *self)
{
  return self->next_block == self->blocks->len;
}

static void
on_applied (GObject      *source,
            GAsyncResult *res,
            gpointer      data)
{
  Import *self = data;
  KvStats *stats = kv_server_get_stats (self->server);
  g_autoptr(KvTxnResult) result = NULL;
  g_autoptr(GError) error = NULL;

  result = kv_storage_apply_finish (KV_STORAGE (source), res, NULL, &error);
  if (result == NULL)
    {
      /* Nobody waits for an answer when the call was cancelled. */
      if (!g_cancellable_is_cancelled (kv_call_get_cancellable (self->call)))
        kv_response_error_with (kv_call_get_message (self->call),
                                kv_response_status_for_error (error), error->message,
                                "imported", self->n_imported);
      kv_call_end (self->call);
      return;
    }

  if (self->replace && !self->begun)
    kv_stats_add (stats, KV_STAT_DELETES, kv_txn_result_get (result, 0)->n_deleted);
  kv_stats_add (stats, KV_STAT_PUTS, self->batch_puts);
  self->begun = TRUE;
  self->n_imported += self->batch_puts;
  self->revision = kv_txn_result_get_revision (result);

  if (all_taken (self))
    {
      answer (self);
      kv_call_end (self->call);
      return;
    }

  /* The next batch in the next main loop iteration: the connections
   * this thread serves get their turn meanwhile. */
  self->next_batch = g_idle_source_new ();
  g_source_set_priority (self->next_batch, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->next_batch, on_next_batch, self, NULL);
  g_source_attach (self->next_batch, g_main_context_get_thread_default ());
}

/* The next transaction: the entries from where the last one stopped, at
 * most BATCH_ENTRIES of them and about max-txn-size bytes, those that
 * have expired since they were read left out. */
static KvTxn *
build_batch (Import *self)
{
  guint64 max_bytes = kv_server_get_limits (self->server)->max_txn_size;
  KvTxn *txn = kv_txn_new ();
  gint64 now = g_get_real_time ();
  guint64 bytes = 0;

  if (self->replace && !self->begun)
    kv_txn_add_clear (txn);

  self->batch_puts = 0;
  while (!all_taken (self) && self->batch_puts < BATCH_ENTRIES && bytes < max_bytes)
    {
      GBytes *block = g_ptr_array_index (self->blocks, self->next_block);
      gsize block_len;
      const guint8 *p = g_bytes_get_data (block, &block_len);
      guint16 key_len;
      guint32 value_len;
      guint8 type_len;
      gint64 expires_at;
      const char *key;
      gsize value_offset;
      KvSetOptions options = { NULL, KV_TTL_NONE, 0, NULL };
      g_autoptr(GBytes) value = NULL;

      p += self->next_offset;
      memcpy (&key_len, p, 2);
      memcpy (&value_len, p + 2, 4);
      type_len = p[6];
      memcpy (&expires_at, p + 7, 8);
      key = (const char *) p + HEAD_BYTES;
      value_offset = self->next_offset + HEAD_BYTES + key_len + 1;
      if (type_len > 0)
        options.content_type = key + key_len + 1 + value_len;
      self->next_offset = value_offset + value_len + (type_len > 0 ? type_len + 1 : 0);

      if (expires_at != 0 && expires_at <= now)
        self->n_skipped++;
      else
        {
          if (expires_at != 0)
            {
              options.ttl_mode = KV_TTL_SET;
              options.ttl = expires_at - now;
            }
          value = g_bytes_new_from_bytes (block, value_offset, value_len);
          kv_txn_add_put (txn, key, value, &options);
          self->batch_puts++;
          bytes += key_len + value_len;
        }

      if (self->next_offset == block_len)
        {
          /* Its entries are in transactions, which hold what they need. */
          g_clear_pointer (&g_ptr_array_index (self->blocks, self->next_block), g_bytes_unref);
          self->next_block++;
          self->next_offset = 0;
        }
    }

  return txn;
}

static void
apply_batch (Import *self)
{
  g_autoptr(KvTxn) txn = build_batch (self);

  kv_storage_apply_async (kv_server_get_storage (self->server), txn,
                          kv_call_get_cancellable (self->call), on_applied, self);
}

/* ---- The resource ---- */

static GQuark
import_quark (void)
{
  return g_quark_from_static_string ("kv-import");
}

/* An import's body is the NDJSON export writes; none at all is fine too.
 * curl -d sends a form type, having taken the newlines out of a file. */
static gboolean
is_ndjson (const char *content_type)
{
  g_autofree char *type = NULL;
  const char *semicolon;

  if (content_type == NULL)
    return TRUE;
  semicolon = strchr (content_type, ';');
  type = semicolon != NULL ? g_strndup (content_type, semicolon - content_type)
                           : g_strdup (content_type);
  return g_ascii_strcasecmp (g_strstrip (type), KV_NDJSON) == 0;
}

static gboolean
parse_mode (const char *query,
            gboolean   *replace)
{
  g_autoptr(GHashTable) form = query != NULL ? soup_form_decode (query) : NULL;
  const char *mode = form != NULL ? g_hash_table_lookup (form, "mode") : NULL;

  *replace = g_strcmp0 (mode, "replace") == 0;
  return mode == NULL || *replace || g_str_equal (mode, "merge");
}

/**
 * kv_resource_import_begin:
 * @server: the server
 * @msg: a POST of /import whose headers are in, and passed every check
 * @connection: the connection it came on
 *
 * Before the body is read: refuses, at once, a body that is not NDJSON
 * (415) or a mode that is not merge or replace (400); else reads the body
 * as it arrives, for kv_resource_import() to apply once it is in.
 *
 * Returns: %FALSE if @msg was refused, and @connection may be gone
 */
gboolean
kv_resource_import_begin (KvServer          *server,
                          SoupServerMessage *msg,
                          KvConnection      *connection)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  gboolean replace;
  Import *self;

  if (!is_ndjson (soup_message_headers_get_one (headers, "Content-Type")))
    {
      kv_connection_refuse (connection, msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
                            "unsupported media type", NULL);
      return FALSE;
    }
  if (!parse_mode (g_uri_get_query (soup_server_message_get_uri (msg)), &replace))
    {
      kv_connection_refuse (connection, msg, SOUP_STATUS_BAD_REQUEST, "invalid mode", NULL);
      return FALSE;
    }

  self = import_new (server, replace);
  /* Read as it arrives: libsoup keeps none of it. */
  soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
  self->got_chunk_id = g_signal_connect (msg, "got-chunk", G_CALLBACK (on_got_chunk), self);
  g_object_set_qdata_full (G_OBJECT (msg), import_quark (), self, import_free);
  return TRUE;
}

/**
 * kv_resource_import:
 *
 * Answers POST /import?mode=merge|replace, once its body is in: 200 with
 * how many entries were imported and skipped (expired) and the revision
 * of the last batch, as text or JSON; 400 or 413 naming the first bad
 * line, with nothing applied; the store's error after a batch failed,
 * naming how many entries went in before it.
 */
void
kv_resource_import (KvServer          *server,
                    SoupServerMessage *msg,
                    const char        *path,
                    GHashTable        *query)
{
  Import *self;

  if (soup_server_message_get_method (msg) != SOUP_METHOD_POST)
    {
      kv_resource_method_not_allowed (msg, "POST");
      return;
    }

  self = g_object_steal_qdata (G_OBJECT (msg), import_quark ());
  if (self != NULL)
    g_clear_signal_handler (&self->got_chunk_id, msg);
  else
    {
      /* A message that did not come through a KvConnection (it is read
       * whole): the same checks, then the same reading. */
      g_autoptr(GBytes) body = NULL;
      gboolean replace;
      gsize len;
      const char *data;

      if (!is_ndjson (soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                    "Content-Type")))
        {
          kv_response_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, "unsupported media type");
          return;
        }
      if (!parse_mode (g_uri_get_query (soup_server_message_get_uri (msg)), &replace))
        {
          kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid mode");
          return;
        }
      self = import_new (server, replace);
      body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
      data = g_bytes_get_data (body, &len);
      feed (self, data, len);
    }

  /* The last line may have no newline. */
  if (self->status == 0 && self->line->len > 0)
    read_line (self, self->line->str, self->line->len);
  if (self->status != 0)
    {
      kv_response_error_with (msg, self->status, self->problem, "line", self->problem_line);
      import_free (self);
      return;
    }
  finish_block (self);

  self->call = kv_call_begin (server, msg);
  kv_call_set_data (self->call, self, import_free);
  apply_batch (self);
  kv_call_dispatched (self->call);
}
