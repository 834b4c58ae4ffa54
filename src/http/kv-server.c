/* kv-server.c: the HTTP front end of a KvStorage
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "net/kv-guard.h"
#include "kv-metrics.h"
#include "kv-server.h"

#define KV_PREFIX "/kv/"
#define TEXT_PLAIN "text/plain; charset=utf-8"
#define OCTET_STREAM "application/octet-stream"
#define JSON_TYPE "application/json"
#define KEY_METHODS "GET, HEAD, PUT, DELETE"
#define READ_METHODS "GET, HEAD"

/* Key listing */
#define DEFAULT_LIST_LIMIT 1000
#define MAX_LIST_LIMIT 10000

/* A stored Content-Type is kept to a sane length and character set. */
#define MAX_CONTENT_TYPE_LENGTH 255

/* Longest time to live: about 31 years, far from overflowing a deadline. */
#define MAX_TTL_USEC (G_GINT64_CONSTANT (1000000000) * G_USEC_PER_SEC)

struct _KvServer
{
  GObject parent_instance;

  KvStorage *storage;   /* (owned) */
  KvConfig *config;     /* (owned) */
  KvStats *stats;       /* (owned) */
  SoupServer *soup;     /* (owned) */

  /* Requests in flight, and the graceful stop that waits for them. */
  GHashTable *in_flight;    /* (element-type SoupServerMessage gsize) (owned) weak refs: starts */
  guint n_in_flight;        /* (atomic): its size, for other threads to read */
  GTask *stop_task;         /* (owned) (nullable) */
  GSource *stop_cancelled;  /* (owned) (nullable) */

  /* Limits, read once from the config: they are on every request's path. */
  gsize max_value_size;
  gsize max_key_size;

  /* The transport: see kv_server_accept_connection(). */
  KvGuard *guard;               /* (owned) */
  KvListener *listener;         /* (owned) (nullable) until listening */
  GSocket *keepalive_peer;      /* (owned) (nullable) */
};

enum {
  PROP_0,
  PROP_STORAGE,
  PROP_CONFIG,
  PROP_STATS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (KvServer, kv_server, G_TYPE_OBJECT)

static void track_requests   (KvServer *self);
static void untrack_requests (KvServer *self);

/**
 * kv_server_status_for_error:
 * @error: an error from the storage layer
 *
 * Returns: the HTTP status that reports @error to a client
 */
guint
kv_server_status_for_error (const GError *error)
{
  if (error->domain == KV_STORAGE_ERROR)
    {
      switch ((KvStorageError) error->code)
        {
        case KV_STORAGE_ERROR_NOT_FOUND:
          return SOUP_STATUS_NOT_FOUND;
        case KV_STORAGE_ERROR_INVALID_ARGUMENT:
          return SOUP_STATUS_BAD_REQUEST;
        case KV_STORAGE_ERROR_PRECONDITION_FAILED:
          return SOUP_STATUS_PRECONDITION_FAILED;
        }
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE))
    return SOUP_STATUS_INSUFFICIENT_STORAGE;

  return SOUP_STATUS_INTERNAL_SERVER_ERROR;
}

/* Whether the client listed application/json in Accept (with a q above 0). */
static gboolean
accepts_json (SoupServerMessage *msg)
{
  const char *accept = soup_message_headers_get_list (soup_server_message_get_request_headers (msg),
                                                      "Accept");
  g_auto(GStrv) ranges = NULL;

  if (accept == NULL || strstr (accept, JSON_TYPE) == NULL)
    return FALSE;

  ranges = g_strsplit (accept, ",", -1);
  for (guint i = 0; ranges[i] != NULL; i++)
    {
      g_auto(GStrv) params = g_strsplit (ranges[i], ";", -1);
      gboolean refused = FALSE;

      if (g_ascii_strcasecmp (g_strstrip (params[0]), JSON_TYPE) != 0)
        continue;
      for (guint j = 1; params[j] != NULL; j++)
        {
          const char *param = g_strstrip (params[j]);

          if (g_ascii_strncasecmp (param, "q=", 2) == 0 && g_ascii_strtod (param + 2, NULL) <= 0)
            refused = TRUE;
        }
      if (!refused)
        return TRUE;
    }

  return FALSE;
}

static void
set_body_json (SoupServerMessage *msg,
               JsonBuilder       *builder)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  gsize len;
  char *text;

  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &len);
  /* A final newline, like every other body, for the terminal's sake. */
  text = g_realloc (text, len + 2);
  text[len++] = '\n';
  text[len] = '\0';
  soup_server_message_set_response (msg, JSON_TYPE, SOUP_MEMORY_TAKE, text, len);
}

/* Every error answer goes through here: one line of plain text, or the
 * same text as JSON for clients that ask for JSON. */
static void
reply_error (SoupServerMessage *msg,
             guint              status,
             const char        *text)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "X-Content-Type-Options", "nosniff");
  soup_server_message_set_status (msg, status, NULL);

  if (accepts_json (msg))
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "error");
      json_builder_add_string_value (builder, text);
      json_builder_set_member_name (builder, "status");
      json_builder_add_int_value (builder, status);
      json_builder_end_object (builder);
      set_body_json (msg, builder);
    }
  else
    {
      g_autofree char *body = g_strconcat (text, "\n", NULL);
      gsize len = strlen (body);

      soup_server_message_set_response (msg, TEXT_PLAIN, SOUP_MEMORY_TAKE,
                                        g_steal_pointer (&body), len);
    }
}

static void
reply_storage_error (KvServer          *self,
                     SoupServerMessage *msg,
                     const GError      *error)
{
  if (g_error_matches (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_PRECONDITION_FAILED))
    kv_stats_add (self->stats, KV_STAT_PRECONDITION_FAILURES, 1);

  reply_error (msg, kv_server_status_for_error (error), error->message);
}

static void
reply_method_not_allowed (SoupServerMessage *msg,
                          const char        *allowed)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Allow", allowed);
  reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method not allowed");
}

static void
reply_text (SoupServerMessage *msg,
            const char        *content_type,
            char              *text)
{
  gsize len = strlen (text);

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "X-Content-Type-Options", "nosniff");
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_TAKE, text, len);
}

static gboolean
is_read_method (const char *method)
{
  return method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD;
}

/* Percent-decodes the raw path after /kv/ into @key, a buffer of
 * KV_ENTRY_MAX_KEY_SIZE + 1 bytes, without allocating: this is on every
 * request's path. Returns the HTTP status to answer with when the key is
 * not acceptable, else 0. */
static guint
decode_key (const char *raw,
            gsize       max_key_size,
            char       *key)
{
  gsize len = 0;

  for (const char *p = raw; *p != '\0'; p++)
    {
      char c = *p;

      if (c == '%')
        {
          int hi = g_ascii_xdigit_value (p[1]);
          int lo = hi >= 0 ? g_ascii_xdigit_value (p[2]) : -1;

          if (lo < 0 || (hi == 0 && lo == 0))
            return SOUP_STATUS_BAD_REQUEST;
          c = (char) (hi << 4 | lo);
          p += 2;
        }
      if (len == max_key_size)
        return SOUP_STATUS_REQUEST_URI_TOO_LONG;
      key[len++] = c;
    }
  key[len] = '\0';

  if (!g_utf8_validate_len (key, len, NULL))
    return SOUP_STATUS_BAD_REQUEST;
  for (const char *p = key; *p != '\0'; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      return SOUP_STATUS_BAD_REQUEST;

  return 0;
}

static void
set_etag (SoupMessageHeaders *headers,
          const KvEntry      *entry)
{
  char etag[24];
  char *p = etag + sizeof etag;
  guint64 revision = kv_entry_get_revision (entry);

  /* Digits from the end, without printf: this is on every GET's path. */
  *--p = '\0';
  *--p = '"';
  do
    *--p = '0' + revision % 10;
  while ((revision /= 10) != 0);
  *--p = '"';

  soup_message_headers_replace (headers, "ETag", p);
}

/* RFC 3339, UTC, with milliseconds. */
static char *
format_timestamp (gint64 usec)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc (usec / G_USEC_PER_SEC);
  g_autofree char *seconds = g_date_time_format (time, "%Y-%m-%dT%H:%M:%S");

  return g_strdup_printf ("%s.%03dZ", seconds, (int) (usec % G_USEC_PER_SEC / 1000));
}

static gboolean
parse_condition (SoupServerMessage *msg,
                 KvCondition       *condition)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);

  return kv_match_parse (&condition->if_match, soup_message_headers_get_list (headers, "If-Match")) &&
         kv_match_parse (&condition->if_none_match,
                         soup_message_headers_get_list (headers, "If-None-Match"));
}

static void
handle_get (KvServer          *self,
            SoupServerMessage *msg,
            const char        *key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvEntry) entry = NULL;
  g_autoptr(GBytes) value = NULL;
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  const char *if_none_match;
  const char *content_type;
  gint64 expires_at;

  kv_stats_add (self->stats, KV_STAT_GETS, 1);

  entry = kv_storage_get (self->storage, key, &expires_at, &error);
  if (entry == NULL)
    {
      kv_stats_add (self->stats, KV_STAT_MISSES, 1);
      reply_storage_error (self, msg, error);
      return;
    }
  kv_stats_add (self->stats, KV_STAT_HITS, 1);

  set_etag (headers, entry);
  if (expires_at != 0)
    {
      g_autofree char *stamp = format_timestamp (expires_at);
      soup_message_headers_replace (headers, "KV-Expires-At", stamp);
    }

  if_none_match = soup_message_headers_get_list (request_headers, "If-None-Match");
  if (if_none_match != NULL)
    {
      KvMatch match;

      if (kv_match_parse (&match, if_none_match) &&
          kv_match_contains (&match, kv_entry_get_revision (entry), TRUE))
        {
          soup_server_message_set_status (msg, SOUP_STATUS_NOT_MODIFIED, NULL);
          return;
        }
    }

  /* libsoup 3.2 answers Range requests by itself, and a list of ranges can
   * make it repeat the value many times over: always send the whole value. */
  soup_message_headers_remove (request_headers, "Range");

  content_type = kv_entry_get_content_type (entry);
  if (content_type == NULL)
    content_type = kv_entry_get_is_utf8 (entry) ? TEXT_PLAIN : OCTET_STREAM;
  soup_message_headers_replace (headers, "Content-Type", content_type);
  soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");

  value = kv_entry_get_value (entry);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), value);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

/* "30", "30s", "1500ms", "5m", "2h": a positive whole number and a unit. */
static gboolean
parse_ttl (const char *text,
           gint64     *usec)
{
  static const struct { const char *suffix; gint64 usec; } units[] = {
    { "ms", 1000 },
    { "s", G_USEC_PER_SEC },
    { "m", 60 * G_USEC_PER_SEC },
    { "h", G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC },
    { "", G_USEC_PER_SEC },
  };
  const char *end = text;
  guint64 n;

  while (g_ascii_isdigit (*end))
    end++;
  if (end == text || end - text > 15)
    return FALSE;
  n = g_ascii_strtoull (text, NULL, 10);

  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    {
      if (strcmp (end, units[i].suffix) != 0)
        continue;
      if (n == 0 || n > (guint64) (MAX_TTL_USEC / units[i].usec))
        return FALSE;
      *usec = n * units[i].usec;
      return TRUE;
    }

  return FALSE;
}

/* soup_form_decode() drops a name with no "=", as in ?keepttl: look at
 * the raw query for it. */
static gboolean
query_has_name (SoupServerMessage *msg,
                const char        *name)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  gsize len = strlen (name);

  for (const char *p = query; p != NULL; p = strchr (p, '&'))
    {
      if (*p == '&')
        p++;
      if (strncmp (p, name, len) == 0 && (p[len] == '\0' || p[len] == '&' || p[len] == '='))
        return TRUE;
    }

  return FALSE;
}

static gboolean
is_acceptable_content_type (const char *content_type)
{
  gsize len = strlen (content_type);

  if (len == 0 || len > MAX_CONTENT_TYPE_LENGTH)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isprint (content_type[i]))
      return FALSE;

  return TRUE;
}

static void
handle_put (KvServer          *self,
            SoupServerMessage *msg,
            const char        *key,
            GHashTable        *query)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) value = NULL;
  g_autoptr(KvEntry) entry = NULL;
  KvCondition condition;
  KvSetOptions options = { NULL, KV_TTL_NONE, 0, &condition };
  const char *ttl = query != NULL ? g_hash_table_lookup (query, "ttl") : NULL;
  gboolean keepttl = query_has_name (msg, "keepttl");
  const char *content_type;

  value = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  if (g_bytes_get_size (value) > self->max_value_size)
    {
      reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "value too large");
      return;
    }
  if (g_bytes_get_size (value) == 0)
    {
      reply_error (msg, SOUP_STATUS_BAD_REQUEST, "value cannot be empty");
      return;
    }

  if (ttl != NULL && keepttl)
    {
      reply_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid ttl");
      return;
    }
  if (ttl != NULL)
    {
      if (!parse_ttl (ttl, &options.ttl))
        {
          reply_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid ttl");
          return;
        }
      options.ttl_mode = KV_TTL_SET;
    }
  else if (keepttl)
    options.ttl_mode = KV_TTL_KEEP;

  /* curl -d sends a form type that says nothing about the value. */
  content_type = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                               "Content-Type");
  if (content_type != NULL &&
      g_ascii_strcasecmp (content_type, "application/x-www-form-urlencoded") != 0)
    {
      if (!is_acceptable_content_type (content_type))
        {
          reply_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid content type");
          return;
        }
      options.content_type = content_type;
    }

  if (!parse_condition (msg, &condition))
    {
      reply_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid precondition");
      return;
    }

  entry = kv_storage_set (self->storage, key, value, &options, &error);
  if (entry == NULL)
    {
      reply_storage_error (self, msg, error);
      return;
    }

  kv_stats_add (self->stats, KV_STAT_PUTS, 1);
  set_etag (soup_server_message_get_response_headers (msg), entry);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
handle_delete (KvServer          *self,
               SoupServerMessage *msg,
               const char        *key)
{
  g_autoptr(GError) error = NULL;
  KvCondition condition;

  if (!parse_condition (msg, &condition))
    {
      reply_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid precondition");
      return;
    }

  if (!kv_storage_delete (self->storage, key, &condition, &error))
    {
      reply_storage_error (self, msg, error);
      return;
    }

  kv_stats_add (self->stats, KV_STAT_DELETES, 1);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
handle_kv (SoupServer        *server,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query,
           gpointer           user_data)
{
  KvServer *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  char key[KV_ENTRY_MAX_KEY_SIZE + 1];
  guint status;

  /* raw-paths is on: the key is decoded here, so that %2F stays part of a
   * key instead of becoming a path separator. */
  if (path[strlen (KV_PREFIX)] == '\0')
    {
      reply_error (msg, SOUP_STATUS_BAD_REQUEST, "key cannot be empty");
      return;
    }
  status = decode_key (path + strlen (KV_PREFIX), self->max_key_size, key);
  if (status == SOUP_STATUS_REQUEST_URI_TOO_LONG)
    reply_error (msg, status, "key too long");
  else if (status != 0)
    reply_error (msg, status, "invalid key");
  else if (is_read_method (method))
    handle_get (self, msg, key);
  else if (method == SOUP_METHOD_PUT)
    handle_put (self, msg, key, query);
  else if (method == SOUP_METHOD_DELETE)
    handle_delete (self, msg, key);
  else
    reply_method_not_allowed (msg, KEY_METHODS);
}

static gboolean
parse_limit (const char *text,
             guint      *limit)
{
  guint64 n;

  if (text == NULL)
    {
      *limit = DEFAULT_LIST_LIMIT;
      return TRUE;
    }
  if (!g_ascii_string_to_unsigned (text, 10, 1, MAX_LIST_LIMIT, &n, NULL) ||
      !g_ascii_isdigit (text[0]))
    return FALSE;

  *limit = n;
  return TRUE;
}

static void
handle_keys (KvServer          *self,
             SoupServerMessage *msg,
             GHashTable        *query)
{
  const char *prefix = query != NULL ? g_hash_table_lookup (query, "prefix") : NULL;
  const char *after = query != NULL ? g_hash_table_lookup (query, "after") : NULL;
  const char *format = query != NULL ? g_hash_table_lookup (query, "format") : NULL;
  const char *limit_text = query != NULL ? g_hash_table_lookup (query, "limit") : NULL;
  g_autoptr(GPtrArray) keys = NULL;
  gboolean json, more;
  guint limit;

  if (!parse_limit (limit_text, &limit))
    {
      reply_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid limit");
      return;
    }
  if (format != NULL && !g_str_equal (format, "json") && !g_str_equal (format, "text"))
    {
      reply_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid format");
      return;
    }
  json = format != NULL ? g_str_equal (format, "json") : accepts_json (msg);

  keys = kv_storage_list (self->storage, prefix, after, limit, &more);

  if (json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "keys");
      json_builder_begin_array (builder);
      for (guint i = 0; i < keys->len; i++)
        json_builder_add_string_value (builder, g_ptr_array_index (keys, i));
      json_builder_end_array (builder);
      json_builder_set_member_name (builder, "next");
      if (more && keys->len > 0)
        json_builder_add_string_value (builder, g_ptr_array_index (keys, keys->len - 1));
      else
        json_builder_add_null_value (builder);
      json_builder_end_object (builder);

      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      set_body_json (msg, builder);
    }
  else
    {
      /* Keys hold no control characters, so a newline ends each one. */
      g_autoptr(GString) body = g_string_new (NULL);

      for (guint i = 0; i < keys->len; i++)
        {
          g_string_append (body, g_ptr_array_index (keys, i));
          g_string_append_c (body, '\n');
        }
      reply_text (msg, TEXT_PLAIN, g_string_free (g_steal_pointer (&body), FALSE));
    }
}

static guint64
uptime_seconds (KvServer *self)
{
  return (g_get_monotonic_time () - kv_stats_get_start_time (self->stats)) / G_USEC_PER_SEC;
}

static void
handle_stats (KvServer          *self,
              SoupServerMessage *msg)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  KvStorageInfo info;

  kv_storage_get_info (self->storage, &info);

  json_builder_begin_object (builder);
#define MEMBER(name, value) \
  json_builder_set_member_name (builder, name); \
  json_builder_add_int_value (builder, value)
  MEMBER ("keys", info.keys);
  MEMBER ("value_bytes", info.value_bytes);
  MEMBER ("revision", info.revision);
  MEMBER ("expired", info.expired);
  MEMBER ("uptime_seconds", uptime_seconds (self));
  for (KvStat stat = 0; stat < KV_N_STATS; stat++)
    {
      MEMBER (kv_stat_get_name (stat), kv_stats_get (self->stats, stat));
    }
#undef MEMBER
  json_builder_end_object (builder);

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  set_body_json (msg, builder);
}

/* The Prometheus text exposition format, version 0.0.4. */
static void
handle_metrics (KvServer          *self,
                SoupServerMessage *msg)
{
  g_autoptr(GString) out = g_string_new (NULL);
  KvStorageInfo info;

  kv_storage_get_info (self->storage, &info);
  /* Each thread's server answers /metrics, but only the application sees
   * every connection. */
  kv_metrics_render (out, self->stats, &info, 0);

  reply_text (msg, "text/plain; version=0.0.4; charset=utf-8",
              g_string_free (g_steal_pointer (&out), FALSE));
}

/* Everything outside /kv/: a few fixed paths, else 404. */
static void
handle_other (SoupServer        *server,
              SoupServerMessage *msg,
              const char        *path,
              GHashTable        *query,
              gpointer           user_data)
{
  KvServer *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  gboolean known = g_str_equal (path, "/keys") || g_str_equal (path, "/healthz") ||
                   g_str_equal (path, "/stats") || g_str_equal (path, "/metrics");

  if (!known)
    reply_error (msg, SOUP_STATUS_NOT_FOUND, "not found");
  else if (!is_read_method (method))
    reply_method_not_allowed (msg, READ_METHODS);
  else if (g_str_equal (path, "/keys"))
    handle_keys (self, msg, query);
  else if (g_str_equal (path, "/healthz"))
    reply_text (msg, TEXT_PLAIN, g_strdup ("ok\n"));
  else if (g_str_equal (path, "/stats"))
    handle_stats (self, msg);
  else
    handle_metrics (self, msg);
}

static void setup_transport (KvServer *self);
static void teardown_transport (KvServer *self);
static KvListener *ensure_listener (KvServer *self);

static void
kv_server_constructed (GObject *object)
{
  KvServer *self = KV_SERVER (object);

  G_OBJECT_CLASS (kv_server_parent_class)->constructed (object);

  g_assert (self->storage != NULL);

  if (self->config == NULL)
    self->config = kv_config_new ();
  self->max_value_size = kv_config_get_max_value_size (self->config);
  self->max_key_size = kv_config_get_max_key_size (self->config);

  if (self->stats == NULL)
    self->stats = kv_stats_new ();

  self->soup = soup_server_new ("server-header", PACKAGE_NAME "/" VERSION " ",
                                "raw-paths", TRUE,
                                NULL);
  /* Handler paths are matched as raw prefixes: "/kv" would also take "/kvx". */
  soup_server_add_handler (self->soup, KV_PREFIX, handle_kv, self, NULL);
  soup_server_add_handler (self->soup, NULL, handle_other, self, NULL);

  track_requests (self);
  setup_transport (self);
}

static void
kv_server_dispose (GObject *object)
{
  KvServer *self = KV_SERVER (object);

  untrack_requests (self);
  teardown_transport (self);

  if (self->soup != NULL)
    {
      soup_server_disconnect (self->soup);
      g_clear_object (&self->soup);
    }
  g_clear_object (&self->keepalive_peer);
  g_clear_object (&self->storage);
  g_clear_object (&self->config);
  g_clear_object (&self->stats);

  G_OBJECT_CLASS (kv_server_parent_class)->dispose (object);
}

static void
kv_server_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  KvServer *self = KV_SERVER (object);

  switch (prop_id)
    {
    case PROP_STORAGE:
      g_value_set_object (value, self->storage);
      break;
    case PROP_CONFIG:
      g_value_set_object (value, self->config);
      break;
    case PROP_STATS:
      g_value_set_object (value, self->stats);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_server_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  KvServer *self = KV_SERVER (object);

  switch (prop_id)
    {
    case PROP_STORAGE:
      self->storage = g_value_dup_object (value);
      break;
    case PROP_CONFIG:
      self->config = g_value_dup_object (value);
      break;
    case PROP_STATS:
      self->stats = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_server_class_init (KvServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = kv_server_constructed;
  object_class->dispose = kv_server_dispose;
  object_class->get_property = kv_server_get_property;
  object_class->set_property = kv_server_set_property;

  /**
   * KvServer:storage:
   *
   * The store that requests read and write.
   */
  properties[PROP_STORAGE] =
    g_param_spec_object ("storage", NULL, NULL,
                         KV_TYPE_STORAGE,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * KvServer:config:
   *
   * The settings, limits among them; the defaults when %NULL.
   */
  properties[PROP_CONFIG] =
    g_param_spec_object ("config", NULL, NULL,
                         KV_TYPE_CONFIG,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * KvServer:stats:
   *
   * The request counters; servers that share a store share these too.
   */
  properties[PROP_STATS] =
    g_param_spec_object ("stats", NULL, NULL,
                         KV_TYPE_STATS,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
kv_server_init (KvServer *self)
{
}

/**
 * kv_server_new:
 * @storage: the store to serve
 * @config: (nullable): the settings, or %NULL for the defaults
 *
 * Returns: (transfer full): a server that is not listening yet
 */
KvServer *
kv_server_new (KvStorage *storage,
               KvConfig  *config)
{
  return kv_server_new_full (storage, config, NULL);
}

/**
 * kv_server_new_full:
 * @storage: the store to serve
 * @config: (nullable): the settings, or %NULL for the defaults
 * @stats: (nullable): counters shared with other servers of @storage, or
 *   %NULL for counters of its own
 *
 * Returns: (transfer full): a server that is not listening yet
 */
KvServer *
kv_server_new_full (KvStorage *storage,
                    KvConfig  *config,
                    KvStats   *stats)
{
  g_return_val_if_fail (KV_IS_STORAGE (storage), NULL);
  g_return_val_if_fail (config == NULL || KV_IS_CONFIG (config), NULL);
  g_return_val_if_fail (stats == NULL || KV_IS_STATS (stats), NULL);

  return g_object_new (KV_TYPE_SERVER, "storage", storage, "config", config, "stats", stats, NULL);
}

/**
 * kv_server_get_storage:
 *
 * Returns: (transfer none): the store this server serves
 */
KvStorage *
kv_server_get_storage (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), NULL);

  return self->storage;
}

/**
 * kv_server_get_stats:
 *
 * Returns: (transfer none): the request counters
 */
KvStats *
kv_server_get_stats (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), NULL);

  return self->stats;
}

/**
 * kv_server_get_soup_server:
 *
 * Returns: (transfer none): the underlying #SoupServer
 */
SoupServer *
kv_server_get_soup_server (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), NULL);

  return self->soup;
}

/**
 * kv_server_listen:
 * @self: a #KvServer
 * @address: an IPv4 or IPv6 address literal
 * @port: a TCP port, or 0 for any free one
 * @error: return location for a #GError
 *
 * Starts listening on @address and @port, in the thread-default main
 * context of the caller. A non-loopback @address needs a token file.
 *
 * Returns: %TRUE on success
 */
gboolean
kv_server_listen (KvServer    *self,
                  const char  *address,
                  guint16      port,
                  GError     **error)
{
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) sockaddr = NULL;

  g_return_val_if_fail (KV_IS_SERVER (self), FALSE);
  g_return_val_if_fail (address != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  inet = g_inet_address_new_from_string (address);
  if (inet == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "“%s” is not an IP address", address);
      return FALSE;
    }

  sockaddr = g_inet_socket_address_new (inet, port);
  if (!kv_guard_check_address (self->guard, sockaddr, error))
    return FALSE;

  return kv_listener_add_address (ensure_listener (self), sockaddr, error) != NULL;
}

/**
 * kv_server_get_port:
 *
 * Returns: the port of the first TCP listener, or 0 when there is none
 */
guint16
kv_server_get_port (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), 0);

  /* Not soup_server_get_uris(): libsoup's only listener is the one of
   * setup_transport(), and it is not an IP socket. */
  return self->listener != NULL ? kv_listener_get_port (self->listener) : 0;
}

/* ---- The transport ----
 *
 * Connections are accepted by a KvListener, admitted by a KvGuard, and only
 * then handed to libsoup with soup_server_accept_iostream(). The guard
 * checks each request's headers before libsoup reads a body. */

static void
on_connection (GSocket  *socket,
               gpointer  user_data)
{
  KvServer *self = user_data;
  g_autoptr(GError) error = NULL;

  if (!kv_server_accept_connection (self, socket, &error))
    g_debug ("Dropping a connection: %s", error->message);
}

static KvListener *
ensure_listener (KvServer *self)
{
  if (self->listener == NULL)
    {
      self->listener = kv_listener_new (kv_config_get_max_connections (self->config));
      /* Our own main context: each connection is handed over at once,
       * none is left on its way when we are disposed. */
      kv_listener_add_target (self->listener, NULL, on_connection, self, NULL);
    }

  return self->listener;
}

static void
setup_transport (KvServer *self)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) end = NULL;
  int fds[2];

  self->guard = kv_guard_new (self->config);

  /* libsoup 3.2 keeps a connection open after a response only while the
   * SoupServer has a listener of its own (request_finished() checks for
   * one), and we accept connections ourselves. Give it a listener that can
   * never accept anything: one end of a socket pair whose other end we
   * hold and never write to, so that it never becomes readable. */
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    {
      g_warning ("Cannot keep connections alive: %s", g_strerror (errno));
      return;
    }
  end = g_socket_new_from_fd (fds[0], &error);
  if (end == NULL)
    {
      close (fds[0]);
      close (fds[1]);
    }
  else
    {
      self->keepalive_peer = g_socket_new_from_fd (fds[1], &error);
      if (self->keepalive_peer == NULL)
        close (fds[1]);
    }
  if (error == NULL)
    soup_server_listen_socket (self->soup, end, 0, &error);
  if (error != NULL)
    g_warning ("Cannot keep connections alive: %s", error->message);
}

static void
teardown_transport (KvServer *self)
{
  if (self->listener != NULL)
    {
      kv_listener_close (self->listener);
      g_clear_object (&self->listener);
    }
  if (self->guard != NULL)
    {
      /* Connections still being answered and closed by the guard are
       * closed now: nothing of ours may stay on the main context. */
      g_object_run_dispose (G_OBJECT (self->guard));
      g_clear_object (&self->guard);
    }
}

/**
 * kv_server_listen_socket:
 * @self: a #KvServer
 * @socket: a socket that is already listening, e.g. passed by systemd
 * @error: return location for a #GError
 *
 * Starts accepting connections on @socket. A socket bound to a
 * non-loopback address needs a token file.
 *
 * Returns: %TRUE on success
 */
gboolean
kv_server_listen_socket (KvServer  *self,
                         GSocket   *socket,
                         GError   **error)
{
  g_autoptr(GSocketAddress) address = NULL;

  g_return_val_if_fail (KV_IS_SERVER (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  address = g_socket_get_local_address (socket, error);
  if (address == NULL || !kv_guard_check_address (self->guard, address, error))
    return FALSE;

  return kv_listener_add_socket (ensure_listener (self), socket, error);
}

/**
 * kv_server_get_listener:
 *
 * Returns: (transfer none) (nullable): the listener of kv_server_listen()
 *   and kv_server_listen_socket(), or %NULL before either was called
 */
KvListener *
kv_server_get_listener (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), NULL);

  return self->listener;
}

/**
 * kv_server_accept_connection:
 * @self: a #KvServer
 * @socket: a newly accepted connection
 * @error: return location for a #GError
 *
 * Serves @socket: the guard decides whether its peer may talk to us, and
 * libsoup reads its requests. Must be called in the main context @self was
 * created in; a KvListener feeding several servers, each in its own
 * thread, calls it there.
 *
 * Returns: %FALSE if @socket could not be served; it is closed then
 */
gboolean
kv_server_accept_connection (KvServer  *self,
                             GSocket   *socket,
                             GError   **error)
{
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GSocketAddress) remote = NULL;

  g_return_val_if_fail (KV_IS_SERVER (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!kv_guard_admit (self->guard, socket, &stream, &local, &remote, error))
    {
      g_socket_close (socket, NULL);
      return FALSE;
    }
  if (stream == NULL)
    return TRUE;  /* turned away: the guard answers and closes */

  kv_stats_add (self->stats, KV_STAT_CONNECTIONS, 1);
  return soup_server_accept_iostream (self->soup, stream, local, remote, error);
}

/* Requests in flight and the graceful stop.
 *
 * SoupServer::request-started comes when a connection is accepted (for its
 * first request) and when the first bytes of each later request arrive, so
 * an idle keep-alive connection holds no request. A request ends with
 * request-finished or request-aborted (its message may live on: KvGuard
 * keeps the last one of an idle connection). Neither follows a request cut
 * off before its request line was read, though: a weak reference on each
 * message sees it go, whatever became of it. */

static void complete_stop (KvServer *self,
                           gboolean  drained);

/* libsoup closes a connection once a response that says so is sent: no
 * client sends another request on it while the server stops. */
static void
close_after_response (SoupServerMessage *msg)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Connection", "close");
}

static void
request_ended (KvServer *self,
               gpointer  msg)
{
  if (!g_hash_table_remove (self->in_flight, msg))
    return;
  g_atomic_int_set (&self->n_in_flight, g_hash_table_size (self->in_flight));
  if (self->stop_task != NULL && g_hash_table_size (self->in_flight) == 0)
    complete_stop (self, TRUE);
}

static void
request_gone (gpointer  data,
              GObject  *where_the_message_was)
{
  request_ended (data, where_the_message_was);
}

static void
on_tracked_request_started (SoupServer        *soup,
                            SoupServerMessage *msg,
                            gpointer           user_data)
{
  KvServer *self = user_data;

  if (g_hash_table_insert (self->in_flight, msg, GSIZE_TO_POINTER (g_get_monotonic_time ())))
    {
      g_object_weak_ref (G_OBJECT (msg), request_gone, self);
      g_atomic_int_set (&self->n_in_flight, g_hash_table_size (self->in_flight));
    }

  if (self->stop_task != NULL)
    close_after_response (msg);

  if (self->guard != NULL)
    kv_guard_request_started (self->guard, msg);
}

/* Answered, or its connection went: the message itself may live on (the
 * guard keeps the last one of an idle connection, to take the connection
 * back from libsoup when it must). */
static void
on_tracked_request_aborted (SoupServer        *soup,
                            SoupServerMessage *msg,
                            gpointer           user_data)
{
  KvServer *self = user_data;

  if (g_hash_table_contains (self->in_flight, msg))
    {
      g_object_weak_unref (G_OBJECT (msg), request_gone, self);
      request_ended (self, msg);
    }

  if (self->guard != NULL)
    kv_guard_request_done (self->guard, msg);
}

static void
on_tracked_request_finished (SoupServer        *soup,
                             SoupServerMessage *msg,
                             gpointer           user_data)
{
  KvServer *self = user_data;

  kv_stats_add (self->stats, KV_STAT_REQUESTS, 1);
  kv_stats_record_request (self->stats, soup_server_message_get_method (msg),
                           soup_server_message_get_status (msg),
                           (gsize) g_get_monotonic_time () -
                           GPOINTER_TO_SIZE (g_hash_table_lookup (self->in_flight, msg)));
  on_tracked_request_aborted (soup, msg, user_data);

  /* A line per request only when G_MESSAGES_DEBUG asks for it, and no
   * formatting otherwise: this is on every request's path. */
  if (!g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN))
    g_debug ("%s %s %u", soup_server_message_get_method (msg),
             g_uri_get_path (soup_server_message_get_uri (msg)),
             soup_server_message_get_status (msg));
}

static void
track_requests (KvServer *self)
{
  self->in_flight = g_hash_table_new (NULL, NULL);
  g_signal_connect (self->soup, "request-started",
                    G_CALLBACK (on_tracked_request_started), self);
  g_signal_connect (self->soup, "request-finished",
                    G_CALLBACK (on_tracked_request_finished), self);
  g_signal_connect (self->soup, "request-aborted",
                    G_CALLBACK (on_tracked_request_aborted), self);
}

static void
untrack_requests (KvServer *self)
{
  GHashTableIter iter;
  gpointer msg;

  if (self->in_flight == NULL)
    return;

  g_signal_handlers_disconnect_by_func (self->soup, on_tracked_request_started, self);
  g_signal_handlers_disconnect_by_func (self->soup, on_tracked_request_finished, self);
  g_signal_handlers_disconnect_by_func (self->soup, on_tracked_request_aborted, self);

  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, &msg, NULL))
    g_object_weak_unref (msg, request_gone, self);
  g_clear_pointer (&self->in_flight, g_hash_table_unref);
  g_atomic_int_set (&self->n_in_flight, 0);
}

/* Closes the listening sockets; connections already accepted go on. One
 * that systemd passed stays open in the service manager, which queues new
 * connections for the next start. */
static void
stop_listening (KvServer *self)
{
  if (self->listener != NULL)
    kv_listener_close (self->listener);
}

static gboolean
on_stop_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  complete_stop (user_data, FALSE);

  return G_SOURCE_REMOVE;
}

static void
complete_stop (KvServer *self,
               gboolean  drained)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->stop_task);

  if (self->stop_cancelled != NULL)
    {
      g_source_destroy (self->stop_cancelled);
      g_clear_pointer (&self->stop_cancelled, g_source_unref);
    }

  if (drained || !g_task_return_error_if_cancelled (task))
    g_task_return_boolean (task, TRUE);
}

/**
 * kv_server_stop_async:
 * @self: a #KvServer
 * @cancellable: (nullable): cancel to stop waiting for requests in flight
 * @callback: called once the server has stopped
 * @user_data: data for @callback
 *
 * Stops accepting connections, then waits until every request that was
 * being read or answered has been answered. Connections close after their
 * current response. Cancelling @cancellable ends the wait at once.
 */
void
kv_server_stop_async (KvServer            *self,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GHashTableIter iter;
  gpointer msg;

  g_return_if_fail (KV_IS_SERVER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, kv_server_stop_async);

  if (self->stop_task != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The server is already stopping");
      return;
    }

  stop_listening (self);

  if (g_hash_table_size (self->in_flight) == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  g_hash_table_iter_init (&iter, self->in_flight);
  while (g_hash_table_iter_next (&iter, &msg, NULL))
    close_after_response (msg);

  self->stop_task = g_steal_pointer (&task);
  if (cancellable != NULL)
    {
      self->stop_cancelled = g_cancellable_source_new (cancellable);
      g_source_set_callback (self->stop_cancelled, G_SOURCE_FUNC (on_stop_cancelled), self, NULL);
      g_source_attach (self->stop_cancelled, g_task_get_context (self->stop_task));
    }
}

/**
 * kv_server_stop_finish:
 * @self: a #KvServer
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE once every request was answered; %FALSE with
 *   %G_IO_ERROR_CANCELLED when the wait was cut short
 */
gboolean
kv_server_stop_finish (KvServer      *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == kv_server_stop_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * kv_server_get_n_requests_in_flight:
 *
 * Safe to call from any thread.
 *
 * Returns: how many requests are being read or answered
 */
guint
kv_server_get_n_requests_in_flight (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), 0);

  return g_atomic_int_get (&self->n_in_flight);
}

/**
 * kv_server_get_n_requests_served:
 *
 * Returns: how many responses were sent in full since the server started,
 *   by this server and by those that share its #KvStats
 */
guint64
kv_server_get_n_requests_served (KvServer *self)
{
  g_return_val_if_fail (KV_IS_SERVER (self), 0);

  return kv_stats_get (self->stats, KV_STAT_REQUESTS);
}
