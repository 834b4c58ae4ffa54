/* kv-peer.h: who is at the other end of a local connection
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <sys/types.h>
#include <gio/gio.h>

G_BEGIN_DECLS

gboolean kv_peer_get_uid (GSocket  *socket,
                          uid_t    *uid,
                          GError  **error);

G_END_DECLS
