/* kv-connection.h: one client connection, as the transport keeps it
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

/**
 * KvConnectionPeer:
 * @KV_CONNECTION_PEER_UNIX: over a Unix socket
 * @KV_CONNECTION_PEER_LOOPBACK: over TCP on the loopback
 * @KV_CONNECTION_PEER_REMOTE: over TCP from anywhere else
 */
typedef enum
{
  KV_CONNECTION_PEER_UNIX,
  KV_CONNECTION_PEER_LOOPBACK,
  KV_CONNECTION_PEER_REMOTE,
} KvConnectionPeer;

#define KV_TYPE_CONNECTION (kv_connection_get_type ())
G_DECLARE_FINAL_TYPE (KvConnection, kv_connection, KV, CONNECTION, GObject)

/**
 * KvConnectionFunc:
 * @connection: the connection
 * @user_data: the data given with the function
 *
 * Tells of something that happened to @connection.
 */
typedef void (*KvConnectionFunc) (KvConnection *connection,
                                  gpointer      user_data);

KvConnection     *kv_connection_from_message       (SoupServerMessage *msg);
gboolean          kv_connection_serve              (KvConnection      *self,
                                                    SoupServer        *soup,
                                                    GError           **error);
KvConnectionPeer  kv_connection_get_peer           (KvConnection      *self);
const char       *kv_connection_get_local_host     (KvConnection      *self);
void              kv_connection_request_started    (KvConnection      *self,
                                                    SoupServerMessage *msg);
void              kv_connection_headers_accepted   (KvConnection      *self,
                                                    SoupServerMessage *msg,
                                                    guint64            max_body,
                                                    const char        *too_large);
void              kv_connection_restart_deadline   (KvConnection      *self);
void              kv_connection_request_done       (KvConnection      *self,
                                                    SoupServerMessage *msg);
GCancellable     *kv_connection_call_started       (KvConnection      *self);
void              kv_connection_call_done          (KvConnection      *self);
GIOStream        *kv_connection_take_stream        (KvConnection      *self,
                                                    SoupServerMessage *msg,
                                                    KvConnectionFunc   hung_up,
                                                    gpointer           user_data);
void              kv_connection_close_stream       (KvConnection      *self,
                                                    GIOStream         *stream);
void              kv_connection_refuse             (KvConnection      *self,
                                                    SoupServerMessage *msg,
                                                    guint              status,
                                                    const char        *text,
                                                    const char        *extra_header);

G_END_DECLS
