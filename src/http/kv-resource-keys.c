/* kv-resource-keys.c: /keys, listing keys in byte order
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "kv-request.h"
#include "kv-resources.h"
#include "kv-response.h"

#define DEFAULT_LIST_LIMIT 1000
#define MAX_LIST_LIMIT 10000

/**
 * kv_resource_keys:
 *
 * Answers GET and HEAD on /keys?prefix=P&after=K&limit=N[&format=json]:
 * one key a line, or {"keys": […], "next": K or null} in JSON.
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
  g_autoptr(GPtrArray) keys = NULL;
  gboolean json, more;
  guint limit;

  if (!kv_request_is_read_method (soup_server_message_get_method (msg)))
    {
      kv_resource_method_not_allowed (msg, KV_RESOURCE_READ_METHODS);
      return;
    }
  if (!kv_request_parse_limit (limit_text, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, &limit))
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid limit");
      return;
    }
  if (format != NULL && !g_str_equal (format, "json") && !g_str_equal (format, "text"))
    {
      kv_response_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid format");
      return;
    }
  json = format != NULL ? g_str_equal (format, "json")
                        : kv_response_wants_json (soup_server_message_get_request_headers (msg));

  keys = kv_storage_list (kv_server_get_storage (server), prefix, after, limit, &more);

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

      kv_response_json (msg, builder);
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
      kv_response_text (msg, KV_TEXT_PLAIN, g_string_free (g_steal_pointer (&body), FALSE));
    }
}
