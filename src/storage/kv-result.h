/* kv-result.h: the result of an asynchronous call that was ready at once
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define KV_TYPE_RESULT (kv_result_get_type ())
G_DECLARE_FINAL_TYPE (KvResult, kv_result, KV, RESULT, GObject)

KvResult *kv_result_new               (gpointer        source_object,
                                       gpointer        source_tag,
                                       gpointer        user_data);
void      kv_result_set_pointer       (KvResult       *self,
                                       gpointer        pointer,
                                       GDestroyNotify  destroy);
void      kv_result_set_error         (KvResult       *self,
                                       GError         *error);
void      kv_result_set_index         (KvResult       *self,
                                       guint           index);
guint     kv_result_get_index         (KvResult       *self);
gpointer  kv_result_propagate_pointer (KvResult       *self,
                                       GError        **error);

G_END_DECLS
