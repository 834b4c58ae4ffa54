/* kv-access-policy.h: who may ask, request by request
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

#define KV_ACCESS_ERROR (kv_access_error_quark ())

/**
 * KvAccessError:
 * @KV_ACCESS_ERROR_TOKEN_REQUIRED: listening beyond this host needs a token
 * @KV_ACCESS_ERROR_BAD_TOKEN_FILE: the token file is unreadable, shared or
 *   malformed
 */
typedef enum
{
  KV_ACCESS_ERROR_TOKEN_REQUIRED,
  KV_ACCESS_ERROR_BAD_TOKEN_FILE,
} KvAccessError;

GQuark kv_access_error_quark (void);

/**
 * KvAccessPeer:
 * @KV_ACCESS_PEER_UNIX: a Unix socket: the owner only, checked on accept
 * @KV_ACCESS_PEER_LOOPBACK: TCP over the loopback: the owner only, a
 *   loopback authority, and the bearer token when there is one
 * @KV_ACCESS_PEER_REMOTE: any other TCP: the bearer token
 *
 * Where a request comes from, as the transport knows it.
 */
typedef enum
{
  KV_ACCESS_PEER_UNIX,
  KV_ACCESS_PEER_LOOPBACK,
  KV_ACCESS_PEER_REMOTE,
} KvAccessPeer;

/**
 * KvAccessDenial:
 * @status: the HTTP status to answer with
 * @text: the error's stable text
 * @header: (nullable): one more response header line, e.g.
 *   "WWW-Authenticate: Bearer"
 */
typedef struct
{
  guint status;
  const char *text;
  const char *header;
} KvAccessDenial;

/* The methods and headers a cross-origin page may use. */
#define KV_ACCESS_CORS_HEADERS "Authorization, Content-Type, If-Match, If-None-Match"

#define KV_TYPE_ACCESS_POLICY (kv_access_policy_get_type ())
G_DECLARE_FINAL_TYPE (KvAccessPolicy, kv_access_policy, KV, ACCESS_POLICY, GObject)

KvAccessPolicy *kv_access_policy_new            (const char         *token_file,
                                                 const char * const *allow_origin,
                                                 GError            **error);
gboolean        kv_access_policy_has_token      (KvAccessPolicy     *self);
gboolean        kv_access_policy_check_address  (KvAccessPolicy     *self,
                                                 GSocketAddress     *address,
                                                 GError            **error);
gboolean        kv_access_policy_accepts        (KvAccessPolicy     *self,
                                                 SoupServerMessage  *msg,
                                                 KvAccessPeer        peer,
                                                 const char         *local_host,
                                                 KvAccessDenial     *denial);
gboolean        kv_access_policy_add_cors       (KvAccessPolicy     *self,
                                                 SoupServerMessage  *msg,
                                                 const char         *methods);

G_END_DECLS
