/* kv-test-raw.h: an HTTP client that speaks raw bytes, for tests that
 * must send what no well-behaved client would
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* A response as read off the wire; status 0 means the server closed the
 * connection (or reset it) before a status line. */
typedef struct
{
  guint status;
  GHashTable *headers;  /* lower-case name → last value */
  GBytes *body;
  char *raw_head;       /* the status line and headers, as sent */
} KvRawResponse;

void           kv_raw_response_free     (KvRawResponse *response);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvRawResponse, kv_raw_response_free)

const char    *kv_raw_response_header   (KvRawResponse *response,
                                         const char    *name);
gboolean       kv_raw_response_body_is  (KvRawResponse *response,
                                         const char    *text);

GSocket       *kv_raw_connect           (guint16        port);
GSocket       *kv_raw_connect_address   (GSocketAddress *address);
gboolean       kv_raw_send              (GSocket       *socket,
                                         const void    *data,
                                         gsize          len);
gboolean       kv_raw_send_string       (GSocket       *socket,
                                         const char    *text);
KvRawResponse *kv_raw_read_response     (GSocket       *socket,
                                         gboolean       head,
                                         guint          timeout_ms);
gboolean       kv_raw_wait_closed       (GSocket       *socket,
                                         guint          timeout_ms);

KvRawResponse *kv_raw_request           (guint16        port,
                                         const char    *request);
KvRawResponse *kv_raw_simple            (guint16        port,
                                         const char    *method,
                                         const char    *path,
                                         const char    *body);

guint          kv_test_count_fds        (void);

G_END_DECLS
