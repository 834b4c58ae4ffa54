/* kv-key-stream.h: a listing written as the client reads it
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "kv-server.h"

G_BEGIN_DECLS

void kv_key_stream_start (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *prefix,
                          const char        *after,
                          guint              limit,
                          gboolean           json);

G_END_DECLS
