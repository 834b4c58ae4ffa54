/* kv-guard.h: who may connect, and what a request may look like
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <libsoup/soup.h>

#include "kv-config.h"

G_BEGIN_DECLS

#define KV_GUARD_ERROR (kv_guard_error_quark ())

/**
 * KvGuardError:
 * @KV_GUARD_ERROR_TOKEN_REQUIRED: listening on a non-loopback address
 *   needs a token file
 * @KV_GUARD_ERROR_BAD_TOKEN_FILE: the token file cannot be used
 *
 * Errors from setting up the guard.
 */
typedef enum
{
  KV_GUARD_ERROR_TOKEN_REQUIRED,
  KV_GUARD_ERROR_BAD_TOKEN_FILE,
} KvGuardError;

GQuark kv_guard_error_quark (void);

#define KV_TYPE_GUARD (kv_guard_get_type ())
G_DECLARE_FINAL_TYPE (KvGuard, kv_guard, KV, GUARD, GObject)

KvGuard  *kv_guard_new           (KvConfig        *config);
gboolean  kv_guard_check_address (KvGuard         *self,
                                  GSocketAddress  *address,
                                  GError         **error);
void      kv_guard_request_started (KvGuard           *self,
                                    SoupServerMessage *msg);
void      kv_guard_request_done    (KvGuard           *self,
                                    SoupServerMessage *msg);
gboolean  kv_guard_admit         (KvGuard         *self,
                                  GSocket         *socket,
                                  GIOStream      **stream,
                                  GSocketAddress **local,
                                  GSocketAddress **remote,
                                  GError         **error);

G_END_DECLS
