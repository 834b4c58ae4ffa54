/* kv-transport-private.h: what a KvConnection asks of its transport
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "kv-transport.h"

G_BEGIN_DECLS

const KvTransportLimits *kv_transport_get_limits     (KvTransport        *self);
GMainContext            *kv_transport_get_context    (KvTransport        *self);
GBytes                  *kv_transport_build_refusal  (KvTransport        *self,
                                                      guint               status,
                                                      const char         *text,
                                                      const char         *extra_header,
                                                      SoupMessageHeaders *request_headers,
                                                      gboolean            head);
void                     kv_transport_close_socket   (KvTransport        *self,
                                                      GSocket            *socket,
                                                      GIOStream          *stream,
                                                      GBytes             *response);
void                     kv_transport_watch_deadline (KvTransport        *self);
void                     kv_transport_forget         (KvTransport        *self,
                                                      GList              *link);

/* The connection's side of the same bargain. */
KvConnection *kv_connection_new            (KvTransport   *transport,
                                            GSocket       *socket,
                                            GList         *link,
                                            GError       **error);
gboolean      kv_connection_check_deadline (KvConnection  *self,
                                            gint64         now);
void          kv_connection_close_if_idle  (KvConnection  *self);
void          kv_connection_check_call     (KvConnection  *self,
                                            gint64         now);
void          kv_connection_check_stream   (KvConnection  *self);

G_END_DECLS
