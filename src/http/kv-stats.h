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
 * @KV_STAT_WATCHES: watch streams begun
 * @KV_STAT_WATCH_EVENTS: events sent on watch streams
 * @KV_STAT_WATCH_OVERFLOWS: watch streams ended because their client did
 *   not read
 * @KV_STAT_LONG_POLLS: reads that waited for a change (Prefer: wait)
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
  KV_STAT_WATCHES,
  KV_STAT_WATCH_EVENTS,
  KV_STAT_WATCH_OVERFLOWS,
  KV_STAT_LONG_POLLS,
  KV_N_STATS
} KvStat;

/**
 * KvStatsMethod:
 * @KV_STATS_METHOD_GET: GET
 * @KV_STATS_METHOD_HEAD: HEAD
 * @KV_STATS_METHOD_PUT: PUT
 * @KV_STATS_METHOD_DELETE: DELETE
 * @KV_STATS_METHOD_POST: POST
 * @KV_STATS_METHOD_OPTIONS: OPTIONS
 * @KV_STATS_METHOD_OTHER: any other method
 *
 * The methods request durations are counted by: a fixed set, so that a
 * client cannot make new series.
 */
typedef enum
{
  KV_STATS_METHOD_GET,
  KV_STATS_METHOD_HEAD,
  KV_STATS_METHOD_PUT,
  KV_STATS_METHOD_DELETE,
  KV_STATS_METHOD_POST,
  KV_STATS_METHOD_OPTIONS,
  KV_STATS_METHOD_OTHER,
  KV_STATS_N_METHODS
} KvStatsMethod;

/* Status classes 1xx to 5xx. */
#define KV_STATS_N_STATUS_CLASSES 5

/* Request duration buckets: 16 upper bounds from 100 µs to 10 s, then one
 * without a bound (+Inf). */
#define KV_STATS_N_DURATION_BUCKETS 17

#define KV_TYPE_STATS (kv_stats_get_type ())
G_DECLARE_FINAL_TYPE (KvStats, kv_stats, KV, STATS, GObject)

KvStats    *kv_stats_new             (void);
void        kv_stats_add             (KvStats *self,
                                      KvStat   stat,
                                      guint64  n);
guint64     kv_stats_get             (KvStats *self,
                                      KvStat   stat);
gint64      kv_stats_get_start_time  (KvStats *self);
gint64      kv_stats_get_start_real_time (KvStats *self);
void        kv_stats_add_open_connections (KvStats *self,
                                           int      delta);
guint       kv_stats_get_open_connections (KvStats *self);
gboolean    kv_stats_reserve_output  (KvStats *self,
                                      gsize    bytes,
                                      guint64  max);
void        kv_stats_release_output  (KvStats *self,
                                      gsize    bytes);
guint64     kv_stats_get_pending_output (KvStats *self);
gboolean    kv_stats_begin_watch     (KvStats *self,
                                      guint    max);
void        kv_stats_end_watch       (KvStats *self);
guint       kv_stats_get_watchers    (KvStats *self);

void        kv_stats_record_request  (KvStats    *self,
                                      const char *method,
                                      guint       status,
                                      gint64      duration_usec);
guint64     kv_stats_get_request_durations (KvStats       *self,
                                            KvStatsMethod  method,
                                            guint          status_class,
                                            guint64        buckets[KV_STATS_N_DURATION_BUCKETS],
                                            guint64       *sum_usec);
gint64      kv_stats_get_duration_bound (guint bucket);
const char *kv_stats_method_get_name (KvStatsMethod method);

const char *kv_stat_get_name         (KvStat   stat);
const char *kv_stat_get_help         (KvStat   stat);

G_END_DECLS
