/* kv-chunk-stream.h: a chunked answer written as the client reads it
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "kv-server.h"

G_BEGIN_DECLS

typedef struct _KvChunkStream KvChunkStream;

/**
 * KvChunkStreamNext:
 * @stream: the stream
 * @user_data: what kv_chunk_stream_start() was given
 *
 * Asks for the next chunk, to be given with kv_chunk_stream_add() or
 * kv_chunk_stream_fail(), at once or later, once.
 */
typedef void (*KvChunkStreamNext) (KvChunkStream *stream,
                                   gpointer       user_data);

gboolean           kv_chunk_stream_start           (KvServer          *server,
                                                    SoupServerMessage *msg,
                                                    gsize              room,
                                                    const char        *content_type,
                                                    KvChunkStreamNext  next,
                                                    gpointer           user_data,
                                                    GDestroyNotify     notify);
KvServer          *kv_chunk_stream_get_server      (KvChunkStream     *self);
SoupServerMessage *kv_chunk_stream_get_message     (KvChunkStream     *self);
GCancellable      *kv_chunk_stream_get_cancellable (KvChunkStream     *self);
void               kv_chunk_stream_add             (KvChunkStream     *self,
                                                    GString           *chunk,
                                                    gboolean           last);
void               kv_chunk_stream_fail            (KvChunkStream     *self,
                                                    const GError      *error);

G_END_DECLS
