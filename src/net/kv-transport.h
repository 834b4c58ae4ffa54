/* kv-transport.h: the connections one server serves in one thread
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <libsoup/soup.h>

#include "kv-connection.h"

G_BEGIN_DECLS

/**
 * KvTransportLimits:
 * @max_body_size: the largest request body accepted, in bytes
 * @max_header_size: the largest header block, in bytes
 * @max_headers: the most header fields in one request
 * @request_timeout: seconds a request may take to arrive, headers and body
 * @idle_timeout: seconds a keep-alive connection may stay silent
 */
typedef struct
{
  guint64 max_body_size;
  guint max_header_size;
  guint max_headers;
  guint request_timeout;
  guint idle_timeout;
} KvTransportLimits;

/**
 * KvRefusalBuilder:
 * @status: an HTTP error status
 * @text: the error's stable text
 * @extra_header: (nullable): one more header line
 * @request_headers: (nullable): the request's headers, if they were read
 * @head: whether the request was a HEAD
 *
 * Makes the whole answer the transport writes on the raw socket when it
 * refuses a request: the layer that writes every other answer provides it.
 *
 * Returns: (transfer full): the bytes to send
 */
typedef GBytes *(*KvRefusalBuilder) (guint               status,
                                     const char         *text,
                                     const char         *extra_header,
                                     SoupMessageHeaders *request_headers,
                                     gboolean            head);

#define KV_TYPE_TRANSPORT (kv_transport_get_type ())
G_DECLARE_FINAL_TYPE (KvTransport, kv_transport, KV, TRANSPORT, GObject)

KvTransport  *kv_transport_new             (const KvTransportLimits *limits,
                                            KvRefusalBuilder         build_refusal);
void          kv_transport_set_limits      (KvTransport             *self,
                                            const KvTransportLimits *limits);
KvConnection *kv_transport_add             (KvTransport             *self,
                                            GSocket                 *socket,
                                            GError                 **error);
void          kv_transport_close_idle      (KvTransport             *self);
void          kv_transport_flush_async     (KvTransport             *self,
                                            GCancellable            *cancellable,
                                            GAsyncReadyCallback      callback,
                                            gpointer                 user_data);
gboolean      kv_transport_flush_finish    (KvTransport             *self,
                                            GAsyncResult            *result,
                                            GError                 **error);

G_END_DECLS
