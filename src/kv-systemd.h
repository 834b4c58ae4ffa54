/* kv-systemd.h: systemd's socket activation, notification and watchdog
 * protocols, spoken without libsystemd
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

GPtrArray *kv_systemd_take_listen_sockets (char     ***names,
                                           GError   **error);

gboolean   kv_systemd_has_notify_socket   (void);
gboolean   kv_systemd_notify              (const char  *state,
                                           GError     **error);

guint64    kv_systemd_get_watchdog_usec   (void);

G_END_DECLS
