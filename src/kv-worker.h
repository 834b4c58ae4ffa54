/* kv-worker.h: a KvServer in a thread of its own
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "net/kv-listener.h"
#include "http/kv-server.h"

G_BEGIN_DECLS

#define KV_TYPE_WORKER (kv_worker_get_type ())
G_DECLARE_FINAL_TYPE (KvWorker, kv_worker, KV, WORKER, GObject)

KvWorker *kv_worker_new          (KvStorage            *storage,
                                  KvStats              *stats,
                                  const KvLimits       *limits,
                                  KvAccessPolicy       *policy);
void      kv_worker_reconfigure  (KvWorker             *self,
                                  const KvLimits       *limits,
                                  KvAccessPolicy       *policy);
void      kv_worker_attach       (KvWorker             *self,
                                  KvListener           *listener);
guint     kv_worker_get_n_connections (KvWorker           *self);
guint     kv_worker_get_n_requests_in_flight (KvWorker *self);
guint     kv_worker_get_n_requests_abandoned (KvWorker *self);
void      kv_worker_stop_async   (KvWorker             *self,
                                  GCancellable         *cancellable,
                                  GAsyncReadyCallback   callback,
                                  gpointer              user_data);
gboolean  kv_worker_stop_finish  (KvWorker             *self,
                                  GAsyncResult         *result,
                                  GError              **error);

G_END_DECLS
