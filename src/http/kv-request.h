/* kv-request.h: reading what a request asks for, without side effects
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "storage/kv-condition.h"

G_BEGIN_DECLS

/* A stored Content-Type is kept to a sane length. */
#define KV_REQUEST_MAX_MEDIA_TYPE_LENGTH 255

/* Deeper than any request body needs, shallow enough for json-glib's
 * recursive parser. */
#define KV_REQUEST_MAX_JSON_DEPTH 8

gboolean kv_request_is_read_method     (const char         *method);
guint    kv_request_decode_key         (const char         *raw,
                                        gsize               max_key_size,
                                        char               *key);
guint    kv_request_check_key          (const char         *key,
                                        gsize               len,
                                        gsize               max_key_size);
gboolean kv_request_parse_ttl          (const char         *text,
                                        gint64             *usec);
gboolean kv_request_parse_condition    (SoupMessageHeaders *headers,
                                        KvCondition        *condition);
gboolean kv_request_parse_media_type   (const char         *text);
gboolean kv_request_parse_prefer_wait  (const char         *prefer,
                                        guint              *seconds);
gboolean kv_request_parse_limit        (const char         *text,
                                        guint               default_limit,
                                        guint               max_limit,
                                        guint              *limit);
gboolean kv_request_query_has_name     (const char         *query,
                                        const char         *name);
GBytes  *kv_request_decode_base64      (const char         *text);
gboolean kv_request_json_has_only     (JsonObject         *object,
                                       const char * const *allowed);
gboolean kv_request_json_get_string   (JsonObject         *object,
                                       const char         *name,
                                       const char        **value);
gboolean kv_request_load_json          (JsonParser         *parser,
                                        const char         *data,
                                        gsize               len,
                                        const char        **problem);

G_END_DECLS
