/* kv-peer.h: who is at the other end of a local connection
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <sys/types.h>
#include <gio/gio.h>

G_BEGIN_DECLS

int      kv_peer_open_diag (GError  **error);
gboolean kv_peer_get_uid   (GSocket  *socket,
                            int       diag_fd,
                            uid_t    *uid,
                            GError  **error);

G_END_DECLS
