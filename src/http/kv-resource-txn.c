/* kv-resource-txn.c: /txn, several operations all or nothing
 *
 * SPDX-License-Identifier: MIT
 *
 * POST /txn with {"ops": [{"op": "put", "key": "a", "value": "…"}, …]}.
 * The body is checked whole before anything is applied: its nesting, its
 * object members (a duplicate is refused, where json-glib would keep the
 * last; see kv_request_load_json()), each operation's fields with the same rules as the single-key
 * API (kv-request.c). Then the operations go to the store as one KvTxn.
 */
#include "config.h"

#include <string.h>

#include "kv-call.h"
#include "kv-request.h"
#include "kv-resources.h"
#include "kv-response.h"

typedef struct
{
  guint status;
  const char *text;
  gint64 op;
} Problem;

static gboolean
problem (Problem    *p,
         guint       status,
         const char *text,
         gint64      op)
{
  p->status = status;
  p->text = text;
  p->op = op;
  return FALSE;
}

/* "if_match": a revision (a number, or its digits as a string) or "*";
 * "if_none_match": "*". */
static gboolean
parse_condition (JsonObject  *object,
                 KvCondition *condition)
{
  JsonNode *if_match = json_object_get_member (object, "if_match");
  const char *if_none_match;

  memset (condition, 0, sizeof *condition);
  if (if_match != NULL)
    {
      gint64 revision = -1;

      if (JSON_NODE_HOLDS_VALUE (if_match) && json_node_get_value_type (if_match) == G_TYPE_INT64)
        revision = json_node_get_int (if_match);
      else if (JSON_NODE_HOLDS_VALUE (if_match) &&
               json_node_get_value_type (if_match) == G_TYPE_STRING)
        {
          const char *text = json_node_get_string (if_match);
          guint64 n;

          if (g_str_equal (text, "*"))
            condition->if_match.kind = KV_MATCH_ANY;
          else if (g_ascii_isdigit (text[0]) &&
                   g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT64, &n, NULL))
            revision = n;
          else
            return FALSE;
        }
      else
        return FALSE;

      if (condition->if_match.kind != KV_MATCH_ANY)
        {
          if (revision < 1)
            return FALSE;
          condition->if_match.kind = KV_MATCH_LIST;
          condition->if_match.n_revisions = 1;
          condition->if_match.revisions[0] = revision;
        }
    }

  if (!kv_request_json_get_string (object, "if_none_match", &if_none_match))
    return FALSE;
  if (if_none_match != NULL)
    {
      if (!g_str_equal (if_none_match, "*"))
        return FALSE;
      condition->if_none_match.kind = KV_MATCH_ANY;
    }

  return TRUE;
}

static gboolean
parse_key (KvServer    *server,
           JsonObject  *object,
           const char  *name,
           guint        index,
           const char **key,
           Problem     *p)
{
  if (!kv_request_json_get_string (object, name, key) || *key == NULL)
    return problem (p, SOUP_STATUS_BAD_REQUEST, g_str_equal (name, "key") ? "key required"
                                                                          : "prefix required",
                    index);
  if (g_str_equal (name, "key"))
    {
      guint status = kv_request_check_key (*key, strlen (*key),
                                           kv_server_get_limits (server)->max_key_size);

      if (status == SOUP_STATUS_REQUEST_URI_TOO_LONG)
        return problem (p, SOUP_STATUS_BAD_REQUEST, "key too long", index);
      if (status != 0)
        return problem (p, SOUP_STATUS_BAD_REQUEST, "invalid key", index);
    }
  return TRUE;
}

static gboolean
parse_put (KvServer   *server,
           JsonObject *object,
           guint       index,
           const char *key,
           KvTxn      *txn,
           Problem    *p)
{
  static const char * const allowed[] = {
    "op", "key", "value", "value_base64", "content_type", "ttl", "keepttl", "if_match",
    "if_none_match", NULL
  };
  g_autoptr(GBytes) value = NULL;
  const char *text, *base64, *content_type, *ttl;
  KvCondition condition;
  KvSetOptions options = { NULL, KV_TTL_NONE, 0, &condition };
  JsonNode *keepttl;

  if (!kv_request_json_has_only (object, allowed))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "unknown member", index);
  if (!kv_request_json_get_string (object, "value", &text) || !kv_request_json_get_string (object, "value_base64", &base64))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "invalid value", index);
  if ((text == NULL) == (base64 == NULL))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "one of value and value_base64 required", index);
  if (text != NULL)
    value = g_bytes_new (text, strlen (text));
  else if ((value = kv_request_decode_base64 (base64)) == NULL)
    return problem (p, SOUP_STATUS_BAD_REQUEST, "invalid base64", index);
  if (g_bytes_get_size (value) == 0)
    return problem (p, SOUP_STATUS_BAD_REQUEST, "value cannot be empty", index);
  if (g_bytes_get_size (value) > kv_server_get_limits (server)->max_value_size)
    return problem (p, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "value too large", index);

  if (!kv_request_json_get_string (object, "content_type", &content_type) ||
      (content_type != NULL && !kv_request_parse_media_type (content_type)))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "invalid content type", index);
  options.content_type = content_type;

  keepttl = json_object_get_member (object, "keepttl");
  if (!kv_request_json_get_string (object, "ttl", &ttl) ||
      (keepttl != NULL && (!JSON_NODE_HOLDS_VALUE (keepttl) ||
                           json_node_get_value_type (keepttl) != G_TYPE_BOOLEAN)) ||
      (ttl != NULL && keepttl != NULL))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "invalid ttl", index);
  if (ttl != NULL)
    {
      if (!kv_request_parse_ttl (ttl, &options.ttl))
        return problem (p, SOUP_STATUS_BAD_REQUEST, "invalid ttl", index);
      options.ttl_mode = KV_TTL_SET;
    }
  else if (keepttl != NULL && json_node_get_boolean (keepttl))
    options.ttl_mode = KV_TTL_KEEP;

  if (!parse_condition (object, &condition))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "invalid precondition", index);

  kv_txn_add_put (txn, key, value, &options);
  return TRUE;
}

static gboolean
parse_op (KvServer *server,
          JsonNode *node,
          guint     index,
          KvTxn    *txn,
          Problem  *p)
{
  static const char * const keyed[] = { "op", "key", "if_match", "if_none_match", NULL };
  static const char * const prefixed[] = { "op", "prefix", NULL };
  JsonObject *object;
  const char *op, *key;
  KvCondition condition;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "operation must be an object", index);
  object = json_node_get_object (node);
  if (!kv_request_json_get_string (object, "op", &op) || op == NULL)
    return problem (p, SOUP_STATUS_BAD_REQUEST, "op required", index);

  if (g_str_equal (op, "delete_prefix"))
    {
      if (!kv_request_json_has_only (object, prefixed))
        return problem (p, SOUP_STATUS_BAD_REQUEST, "unknown member", index);
      if (!parse_key (server, object, "prefix", index, &key, p))
        return FALSE;
      kv_txn_add_delete_prefix (txn, key);
      return TRUE;
    }

  if (!g_str_equal (op, "get") && !g_str_equal (op, "put") && !g_str_equal (op, "delete"))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "unknown op", index);
  if (!parse_key (server, object, "key", index, &key, p))
    return FALSE;
  if (g_str_equal (op, "put"))
    return parse_put (server, object, index, key, txn, p);

  if (!kv_request_json_has_only (object, keyed))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "unknown member", index);
  if (!parse_condition (object, &condition))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "invalid precondition", index);
  if (g_str_equal (op, "get"))
    kv_txn_add_get (txn, key, &condition);
  else
    kv_txn_add_delete (txn, key, &condition);
  return TRUE;
}

static KvTxn *
parse_body (KvServer   *server,
            GBytes     *body,
            Problem    *p)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(KvTxn) txn = kv_txn_new ();
  gsize len;
  const char *data = g_bytes_get_data (body, &len);
  JsonNode *root;
  JsonObject *object;
  JsonNode *ops;
  JsonArray *array;
  const char *text;
  guint n_ops;

  if (len == 0)
    return problem (p, SOUP_STATUS_BAD_REQUEST, "invalid JSON", -1), NULL;
  if (!kv_request_load_json (parser, data, len, &text))
    return problem (p, SOUP_STATUS_BAD_REQUEST, text, -1), NULL;

  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return problem (p, SOUP_STATUS_BAD_REQUEST, "body must be an object", -1), NULL;
  object = json_node_get_object (root);
  ops = json_object_get_member (object, "ops");
  if (ops == NULL || !JSON_NODE_HOLDS_ARRAY (ops) || json_object_get_size (object) != 1)
    return problem (p, SOUP_STATUS_BAD_REQUEST, "body must be {\"ops\": [...]}", -1), NULL;

  array = json_node_get_array (ops);
  n_ops = json_array_get_length (array);
  if (n_ops == 0)
    return problem (p, SOUP_STATUS_BAD_REQUEST, "no operations", -1), NULL;
  if (n_ops > kv_server_get_limits (server)->max_txn_ops)
    return problem (p, SOUP_STATUS_BAD_REQUEST, "too many operations", -1), NULL;

  for (guint i = 0; i < n_ops; i++)
    if (!parse_op (server, json_array_get_element (array, i), i, txn, p))
      return NULL;

  return g_steal_pointer (&txn);
}

/* The answer is written straight into text: a JsonBuilder tree of a
 * thousand results costs more than applying them. */
static void
append_entry (GString          *out,
              const KvOpResult *result)
{
  gsize len;
  gconstpointer value = kv_entry_peek_value (result->entry, &len);
  const char *content_type = kv_entry_get_content_type (result->entry);

  if (kv_entry_get_is_utf8 (result->entry))
    {
      g_string_append (out, ",\"value\":");
      kv_response_append_json_string (out, value, len);
    }
  else
    {
      g_autofree char *text = g_base64_encode (value, len);

      g_string_append_printf (out, ",\"value_base64\":\"%s\"", text);
    }
  if (content_type != NULL)
    {
      g_string_append (out, ",\"content_type\":");
      kv_response_append_json_string (out, content_type, strlen (content_type));
    }
}

static void
append_result (GString          *out,
               const KvOpResult *result)
{
  static const char * const names[] = { "get", "put", "delete", "delete_prefix", "clear" };

  g_string_append_printf (out, "{\"op\":\"%s\"", names[result->kind]);
  switch (result->kind)
    {
    case KV_OP_GET:
      g_string_append (out, result->entry != NULL ? ",\"found\":true" : ",\"found\":false");
      if (result->entry != NULL)
        append_entry (out, result);
      G_GNUC_FALLTHROUGH;
    case KV_OP_PUT:
      if (result->entry != NULL)
        g_string_append_printf (out, ",\"revision\":%" G_GUINT64_FORMAT,
                                kv_entry_get_revision (result->entry));
      if (result->expires_at != 0)
        {
          g_autofree char *stamp = kv_response_format_timestamp (result->expires_at);

          g_string_append_printf (out, ",\"expires_at\":\"%s\"", stamp);
        }
      break;
    case KV_OP_DELETE:
    case KV_OP_DELETE_PREFIX:
    case KV_OP_CLEAR:
      g_string_append_printf (out, ",\"deleted\":%" G_GUINT64_FORMAT, result->n_deleted);
      break;
    }
  g_string_append_c (out, '}');
}

static void
count_ops (KvStats     *stats,
           KvTxnResult *result)
{
  for (guint i = 0; i < kv_txn_result_get_n_results (result); i++)
    {
      const KvOpResult *r = kv_txn_result_get (result, i);

      if (r->kind == KV_OP_GET)
        {
          kv_stats_add (stats, KV_STAT_GETS, 1);
          kv_stats_add (stats, r->entry != NULL ? KV_STAT_HITS : KV_STAT_MISSES, 1);
        }
      else if (r->kind == KV_OP_PUT)
        kv_stats_add (stats, KV_STAT_PUTS, 1);
      else if (r->n_deleted > 0)
        kv_stats_add (stats, KV_STAT_DELETES, r->n_deleted);
    }
}

static void
on_applied (GObject      *source,
            GAsyncResult *res,
            gpointer      data)
{
  KvCall *call = data;
  KvServer *server = kv_call_get_server (call);
  SoupServerMessage *msg = kv_call_get_message (call);
  g_autoptr(KvTxnResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) out = NULL;
  guint failed = 0;

  result = kv_storage_apply_finish (KV_STORAGE (source), res, &failed, &error);
  if (result == NULL)
    {
      if (g_error_matches (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_PRECONDITION_FAILED))
        {
          kv_stats_add (kv_server_get_stats (server), KV_STAT_PRECONDITION_FAILURES, 1);
          kv_response_error_at (msg, SOUP_STATUS_CONFLICT, "precondition failed", failed);
        }
      else
        kv_response_error (msg, kv_response_status_for_error (error), error->message);
      kv_call_end (call);
      return;
    }
  count_ops (kv_server_get_stats (server), result);

  out = g_string_sized_new (64 * kv_txn_result_get_n_results (result) + 64);
  g_string_append_printf (out, "{\"revision\":%" G_GUINT64_FORMAT ",\"results\":[",
                          kv_txn_result_get_revision (result));
  for (guint i = 0; i < kv_txn_result_get_n_results (result); i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      append_result (out, kv_txn_result_get (result, i));
    }
  g_string_append (out, "]}\n");

  kv_response_text (msg, KV_JSON, g_string_free (g_steal_pointer (&out), FALSE));
  kv_call_end (call);
}

/**
 * kv_resource_txn:
 *
 * Answers POST /txn: 200 with {"revision": N, "results": […]}, 409 naming
 * the first operation whose condition failed, 400 naming the malformed
 * one.
 */
void
kv_resource_txn (KvServer          *server,
                 SoupServerMessage *msg,
                 const char        *path,
                 GHashTable        *query)
{
  g_autoptr(GBytes) body = NULL;
  g_autoptr(KvTxn) txn = NULL;
  Problem p = { 0, NULL, -1 };
  KvCall *call;

  if (soup_server_message_get_method (msg) != SOUP_METHOD_POST)
    {
      kv_resource_method_not_allowed (msg, "POST");
      return;
    }

  body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  txn = parse_body (server, body, &p);
  if (txn == NULL)
    {
      kv_response_error_at (msg, p.status, p.text, p.op);
      return;
    }

  call = kv_call_begin (server, msg);
  kv_storage_apply_async (kv_server_get_storage (server), txn, kv_call_get_cancellable (call),
                          on_applied, call);
  kv_call_dispatched (call);
}
