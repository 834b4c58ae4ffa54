/* kv-call.h: a request paused while the store answers
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "kv-server.h"

G_BEGIN_DECLS

typedef struct _KvCall KvCall;

KvCall            *kv_call_begin           (KvServer          *server,
                                            SoupServerMessage *msg);
KvServer          *kv_call_get_server      (KvCall            *self);
SoupServerMessage *kv_call_get_message     (KvCall            *self);
GCancellable      *kv_call_get_cancellable (KvCall            *self);
void               kv_call_set_data        (KvCall            *self,
                                            gpointer           data,
                                            GDestroyNotify     notify);
gpointer           kv_call_get_data        (KvCall            *self);
void               kv_call_dispatched      (KvCall            *self);
void               kv_call_end             (KvCall            *self);

G_END_DECLS
