/* kv-server-private.h: what a KvCall asks of its server
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "kv-call.h"

G_BEGIN_DECLS

void kv_server_add_call    (KvServer          *self,
                            SoupServerMessage *msg,
                            KvCall            *call);
void kv_server_remove_call (KvServer          *self,
                            SoupServerMessage *msg);

/* The server's side: the message's connection is gone, or the server. */
void kv_call_abandon       (KvCall            *call);

G_END_DECLS
