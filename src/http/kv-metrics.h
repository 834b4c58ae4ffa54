/* kv-metrics.h: the Prometheus exposition of /metrics
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

#include "http/kv-stats.h"
#include "storage/kv-storage.h"

G_BEGIN_DECLS

void kv_metrics_render (GString             *out,
                        KvStats             *stats,
                        const KvStorageInfo *info,
                        guint                open_connections);

G_END_DECLS
