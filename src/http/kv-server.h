/* kv-server.h: the HTTP front end of a KvStorage
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <libsoup/soup.h>

#include "kv-config.h"
#include "net/kv-listener.h"
#include "http/kv-stats.h"
#include "storage/kv-storage.h"

G_BEGIN_DECLS

#define KV_TYPE_SERVER (kv_server_get_type ())
G_DECLARE_FINAL_TYPE (KvServer, kv_server, KV, SERVER, GObject)

KvServer   *kv_server_new             (KvStorage   *storage,
                                       KvConfig    *config);
KvServer   *kv_server_new_full        (KvStorage   *storage,
                                       KvConfig    *config,
                                       KvStats     *stats);
KvStorage  *kv_server_get_storage     (KvServer    *self);
KvStats    *kv_server_get_stats       (KvServer    *self);
SoupServer *kv_server_get_soup_server (KvServer    *self);
gboolean    kv_server_listen          (KvServer    *self,
                                       const char  *address,
                                       guint16      port,
                                       GError     **error);
guint16     kv_server_get_port        (KvServer    *self);

gboolean    kv_server_listen_socket   (KvServer    *self,
                                       GSocket     *socket,
                                       GError     **error);
gboolean    kv_server_accept_connection (KvServer  *self,
                                         GSocket   *socket,
                                         GError   **error);
KvListener *kv_server_get_listener    (KvServer    *self);

void        kv_server_stop_async      (KvServer            *self,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
gboolean    kv_server_stop_finish     (KvServer      *self,
                                       GAsyncResult  *result,
                                       GError       **error);
guint       kv_server_get_n_requests_in_flight (KvServer *self);
guint64     kv_server_get_n_requests_served    (KvServer *self);

guint       kv_server_status_for_error (const GError *error);

G_END_DECLS
