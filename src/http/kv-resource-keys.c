/* kv-resource-keys.c: /keys, listing keys in byte order
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "kv-call.h"
#include "kv-key-stream.h"
#include "kv-request.h"
#include "kv-resources.h"
#include "kv-response.h"

#define DEFAULT_LIST_LIMIT 1000
#define MAX_LIST_LIMIT 10000

static gboolean
wants_json (SoupServerMessage *msg,
            const char        *format)
{
  return format != NULL ? g_str_equal (format, "json")
                        : kv_response_wants_json (soup_server_message_get_request_headers (msg));
}

static void
reply_number (SoupServerMessage *msg,
              gboolean           json,
              const char        *name,
              guint64            n)
{
  if (json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, name);
      json_builder_add_int_value (builder, n);
      json_builder_end_object (builder);
      kv_response_json (msg, builder);
    }
  else
    kv_response_text (msg, KV_TEXT_PLAIN, g_strdup_printf ("%" G_GUINT64_FORMAT "\n", n));
}

typedef struct
{
  gboolean json;
} KeysCall;

static void
on_deleted (GObject      *source,
            GAsyncResult *res,
            gpointer      data)
{
  KvCall *call = data;
  KeysCall *keys = kv_call_get_data (call);
  SoupServerMessage *msg = kv_call_get_message (call);
  g_autoptr(KvTxnResult) result = NULL;
  g_autoptr(GError) error = NULL;
  guint64 n;
  char text[24];

  result = kv_storage_apply_finish (KV_STORAGE (source), res, NULL, &error);
  if (result == NULL)
    {
      kv_response_error (msg, kv_response_status_for_error (error), error->message);
      kv_call_end (call);
      return;
    }

  n = kv_txn_result_get (result, 0)->n_deleted;
  kv_stats_add (kv_server_get_stats (kv_call_get_server (call)), KV_STAT_DELETES, n);
  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, kv_txn_result_get_revision (result));
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "KV-Revision", text);
  reply_number (msg, keys->json, "deleted", n);
  kv_call_end (call);
}

/* DELETE /keys?prefix=P: every key with the prefix, at one revision. The
 * prefix must be given, even if empty: a bare DELETE /keys is refused
 * rather than taken to mean everything (DELETE /clear says that). */
static void
delete_prefix (KvServer          *server,
               SoupServerMessage *msg,
               const char        *prefix,
               gboolean           json)
{
  g_autoptr(KvTxn) txn = NULL;
  KeysCall *keys;
  KvCall *call;

  if (prefix == NULL)
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "prefix required");
      return;
    }

  txn = kv_txn_new ();
  kv_txn_add_delete_prefix (txn, prefix);
  call = kv_call_begin (server, msg);
  keys = g_new0 (KeysCall, 1);
  keys->json = json;
  kv_call_set_data (call, keys, g_free);
  kv_storage_apply_async (kv_server_get_storage (server), txn, kv_call_get_cancellable (call),
                          on_deleted, call);
  kv_call_dispatched (call);
}

/**
 * kv_resource_keys:
 *
 * Answers GET and HEAD on /keys?prefix=P&after=K&limit=N[&format=json]:
 * one key a line, or {"keys": […], "next": K or null} in JSON; with
 * &count, the number of keys only. DELETE /keys?prefix=P deletes them.
 */
void
kv_resource_keys (KvServer          *server,
                  SoupServerMessage *msg,
                  const char        *path,
                  GHashTable        *query)
{
  const char *prefix = query != NULL ? g_hash_table_lookup (query, "prefix") : NULL;
  const char *after = query != NULL ? g_hash_table_lookup (query, "after") : NULL;
  const char *format = query != NULL ? g_hash_table_lookup (query, "format") : NULL;
  const char *limit_text = query != NULL ? g_hash_table_lookup (query, "limit") : NULL;
  const char *method = soup_server_message_get_method (msg);
  gboolean json;
  guint limit;

  if (format != NULL && !g_str_equal (format, "json") && !g_str_equal (format, "text"))
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid format");
      return;
    }
  if (method == SOUP_METHOD_DELETE)
    {
      delete_prefix (server, msg, prefix, wants_json (msg, format));
      return;
    }
  if (!kv_request_is_read_method (method))
    {
      kv_resource_method_not_allowed (msg, "GET, HEAD, DELETE");
      return;
    }
  if (kv_request_query_has_name (g_uri_get_query (soup_server_message_get_uri (msg)), "count"))
    {
      reply_number (msg, wants_json (msg, format), "count",
                    kv_storage_count (kv_server_get_storage (server), prefix));
      return;
    }
  if (!kv_request_parse_limit (limit_text, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, &limit))
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid limit");
      return;
    }
  json = wants_json (msg, format);

  /* A HEAD gets the headers a GET would: its keys are never read. */
  if (method == SOUP_METHOD_HEAD)
    {
      SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

      soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      soup_message_headers_replace (headers, "Content-Type", json ? KV_JSON : KV_TEXT_PLAIN);
      soup_message_headers_replace (headers, "X-Content-Type-Options", "nosniff");
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      return;
    }

  kv_key_stream_start (server, msg, prefix, after, limit, json);
}
