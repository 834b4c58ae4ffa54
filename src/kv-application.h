/* kv-application.h: the crafty-kv daemon
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Reverse DNS, as GApplication and D-Bus want it. */
#define KV_APPLICATION_ID "io.github.craftykv.CraftyKv"

#define KV_TYPE_APPLICATION (kv_application_get_type ())
G_DECLARE_FINAL_TYPE (KvApplication, kv_application, KV, APPLICATION, GApplication)

KvApplication *kv_application_new             (void);
int            kv_application_get_exit_status (KvApplication *self);

G_END_DECLS
