/* kv-server.h: the HTTP front end of a KvStorage
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <libsoup/soup.h>

#include "access/kv-access-policy.h"
#include "http/kv-limits.h"
#include "http/kv-stats.h"
#include "storage/kv-storage.h"

G_BEGIN_DECLS

#define KV_TYPE_SERVER (kv_server_get_type ())
G_DECLARE_FINAL_TYPE (KvServer, kv_server, KV, SERVER, GObject)

KvServer       *kv_server_new               (KvStorage      *storage,
                                             KvStats        *stats,
                                             const KvLimits *limits,
                                             KvAccessPolicy *policy);
KvStorage      *kv_server_get_storage       (KvServer       *self);
KvStats        *kv_server_get_stats         (KvServer       *self);
const KvLimits *kv_server_get_limits        (KvServer       *self);
void            kv_server_set_limits        (KvServer       *self,
                                             const KvLimits *limits);
void            kv_server_set_policy        (KvServer       *self,
                                             KvAccessPolicy *policy);
SoupServer     *kv_server_get_soup_server   (KvServer       *self);
gboolean        kv_server_accept_connection (KvServer       *self,
                                             GSocket        *socket,
                                             GError        **error);
void            kv_server_stop_async        (KvServer            *self,
                                             GCancellable        *cancellable,
                                             GAsyncReadyCallback  callback,
                                             gpointer             user_data);
gboolean        kv_server_stop_finish       (KvServer      *self,
                                             GAsyncResult  *result,
                                             GError       **error);
guint           kv_server_get_n_requests_in_flight (KvServer *self);
guint64         kv_server_get_n_requests_served    (KvServer *self);

G_END_DECLS
