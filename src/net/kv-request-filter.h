/* kv-request-filter.h: strict HTTP/1.1 request framing, checked on the
 * bytes before libsoup reads them
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define KV_TYPE_REQUEST_FILTER (kv_request_filter_get_type ())
G_DECLARE_FINAL_TYPE (KvRequestFilter, kv_request_filter, KV, REQUEST_FILTER, GFilterInputStream)

KvRequestFilter *kv_request_filter_new               (GInputStream    *base_stream,
                                                      guint            max_header_size,
                                                      guint            max_headers);
void             kv_request_filter_set_idle_deadline (KvRequestFilter *self,
                                                      gint64           deadline);
gboolean         kv_request_filter_get_wants_json    (KvRequestFilter *self);

G_END_DECLS
