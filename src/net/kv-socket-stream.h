/* kv-socket-stream.h: a socket's streams, with its requests read through a
 * KvRequestFilter
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _KvTransport KvTransport;

#define KV_TYPE_SOCKET_STREAM (kv_socket_stream_get_type ())
G_DECLARE_FINAL_TYPE (KvSocketStream, kv_socket_stream, KV, SOCKET_STREAM, GIOStream)

KvSocketStream *kv_socket_stream_new (GSocketConnection *connection,
                                      GInputStream      *input_stream,
                                      KvTransport       *transport);

G_END_DECLS
