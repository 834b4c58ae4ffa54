/* kv-refusal.h: an answer written on the raw socket, then a clean close
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define KV_TYPE_REFUSAL (kv_refusal_get_type ())
G_DECLARE_FINAL_TYPE (KvRefusal, kv_refusal, KV, REFUSAL, GObject)

KvRefusal *kv_refusal_new          (GSocket              *socket,
                                    GIOStream            *stream,
                                    GBytes               *response,
                                    guint64               drain_limit);
void       kv_refusal_run_async    (KvRefusal            *self,
                                    GAsyncReadyCallback   callback,
                                    gpointer              user_data);
gboolean   kv_refusal_run_finish   (KvRefusal            *self,
                                    GAsyncResult         *result,
                                    GError              **error);
void       kv_refusal_close        (KvRefusal            *self);
void       kv_refusal_close_all    (GHashTable           *refusals);

G_END_DECLS
