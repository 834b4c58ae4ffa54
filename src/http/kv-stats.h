/* kv-stats.h: request counters shared by every worker
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * KvStat:
 * @KV_STAT_GETS: GET and HEAD requests for a key
 * @KV_STAT_HITS: of those, found
 * @KV_STAT_MISSES: of those, not found
 * @KV_STAT_PUTS: values stored
 * @KV_STAT_DELETES: successful DELETE requests
 * @KV_STAT_PRECONDITION_FAILURES: writes refused with 412
 * @KV_STAT_CONNECTIONS: connections accepted
 * @KV_STAT_REQUESTS: requests answered
 */
typedef enum
{
  KV_STAT_GETS,
  KV_STAT_HITS,
  KV_STAT_MISSES,
  KV_STAT_PUTS,
  KV_STAT_DELETES,
  KV_STAT_PRECONDITION_FAILURES,
  KV_STAT_CONNECTIONS,
  KV_STAT_REQUESTS,
  KV_N_STATS
} KvStat;

#define KV_TYPE_STATS (kv_stats_get_type ())
G_DECLARE_FINAL_TYPE (KvStats, kv_stats, KV, STATS, GObject)

KvStats    *kv_stats_new             (void);
void        kv_stats_add             (KvStats *self,
                                      KvStat   stat,
                                      guint64  n);
guint64     kv_stats_get             (KvStats *self,
                                      KvStat   stat);
gint64      kv_stats_get_start_time  (KvStats *self);

const char *kv_stat_get_name         (KvStat   stat);
const char *kv_stat_get_help         (KvStat   stat);

G_END_DECLS
