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

/**
 * KvWatcherFuncs:
 * @stop: the server stops: end at once, with a last word when @now is
 *   %FALSE, else closing the connection without one (the stop's wait ran
 *   out)
 * @tick: (nullable): once a second while the watcher lasts, for
 *   heartbeats; @now is g_get_monotonic_time()
 *
 * What the server asks of an answer that waits for changes: a watch
 * stream or a long-polling read.
 */
typedef struct
{
  void (*stop) (gpointer watcher,
                gboolean now);
  void (*tick) (gpointer watcher,
                gint64   now);
} KvWatcherFuncs;

void     kv_server_add_watcher    (KvServer             *self,
                                   gpointer              watcher,
                                   const KvWatcherFuncs *funcs);
void     kv_server_remove_watcher (KvServer             *self,
                                   gpointer              watcher);
gboolean kv_server_is_stopping    (KvServer             *self);
void     kv_server_exclude_from_durations (SoupServerMessage *msg);

G_END_DECLS
