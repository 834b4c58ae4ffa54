/* kv-response.h: the one writer of every answer
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

#define KV_TEXT_PLAIN "text/plain; charset=utf-8"
#define KV_OCTET_STREAM "application/octet-stream"
#define KV_JSON "application/json"
#define KV_NDJSON "application/x-ndjson"

/* RFC 6585 and RFC 9110; libsoup 3.2 knows neither by name. */
#define KV_STATUS_HEADER_FIELDS_TOO_LARGE 431

guint     kv_response_status_for_error (const GError       *error);
gboolean  kv_response_wants_json       (SoupMessageHeaders *request_headers);
void      kv_response_error            (SoupServerMessage  *msg,
                                        guint               status,
                                        const char         *text);
void      kv_response_error_at         (SoupServerMessage  *msg,
                                        guint               status,
                                        const char         *text,
                                        gint64              op);
void      kv_response_error_with       (SoupServerMessage  *msg,
                                        guint               status,
                                        const char         *text,
                                        const char         *member,
                                        gint64              value);
void      kv_response_error_revision   (SoupServerMessage  *msg,
                                        guint               status,
                                        const char         *text,
                                        guint64             oldest);
void      kv_response_text             (SoupServerMessage  *msg,
                                        const char         *content_type,
                                        char               *text);
void      kv_response_json             (SoupServerMessage  *msg,
                                        JsonBuilder        *builder);
char     *kv_response_format_timestamp (gint64              usec);
void      kv_response_append_json_string (GString          *out,
                                          const char       *text,
                                          gsize             len);
void      kv_response_append_json_chars (GString          *out,
                                         const char       *text,
                                         gsize             len);
void      kv_response_set_etag         (SoupMessageHeaders *headers,
                                        guint64             revision);
GBytes   *kv_response_build_stream_head (SoupServerMessage *msg,
                                         const char        *content_type);
GBytes   *kv_response_build_refusal    (guint               status,
                                        const char         *text,
                                        const char         *extra_header,
                                        SoupMessageHeaders *request_headers,
                                        gboolean            head);

G_END_DECLS
