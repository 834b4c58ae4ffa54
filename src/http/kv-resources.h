/* kv-resources.h: the server's resources, one file each
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "kv-server.h"
#include "net/kv-connection.h"

G_BEGIN_DECLS

/* What each resource answers to, for Allow and for CORS preflights. */
#define KV_RESOURCE_KV_METHODS "GET, HEAD, PUT, DELETE"
#define KV_RESOURCE_READ_METHODS "GET, HEAD"

/* The prefix of the key-value resource; libsoup matches handler paths as
 * raw prefixes, so "/kv" would also take "/kvx". */
#define KV_RESOURCE_KV_PREFIX "/kv/"

typedef void (*KvResourceFunc) (KvServer          *server,
                                SoupServerMessage *msg,
                                const char        *path,
                                GHashTable        *query);

void kv_resource_kv      (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *path,
                          GHashTable        *query);
void kv_resource_keys    (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *path,
                          GHashTable        *query);
void kv_resource_txn     (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *path,
                          GHashTable        *query);
void kv_resource_clear   (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *path,
                          GHashTable        *query);
void kv_resource_export  (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *path,
                          GHashTable        *query);
void kv_resource_import  (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *path,
                          GHashTable        *query);
void kv_resource_health  (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *path,
                          GHashTable        *query);
void kv_resource_stats   (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *path,
                          GHashTable        *query);
void kv_resource_metrics (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *path,
                          GHashTable        *query);
void kv_resource_watch   (KvServer          *server,
                          SoupServerMessage *msg,
                          const char        *path,
                          GHashTable        *query);

/* Before the body is read: an import reads it as it arrives. */
gboolean kv_resource_import_begin (KvServer          *server,
                                   SoupServerMessage *msg,
                                   KvConnection      *connection);

/* Shared by the resources. */
void kv_resource_method_not_allowed (SoupServerMessage *msg,
                                     const char        *allowed);

G_END_DECLS
