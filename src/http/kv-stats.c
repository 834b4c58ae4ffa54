/* kv-stats.c: request counters shared by every worker
 *
 * SPDX-License-Identifier: MIT
 *
 * Plain relaxed atomics: counters are read rarely and must never make a
 * request wait for a lock.
 */
#include "config.h"

#include "kv-stats.h"

struct _KvStats
{
  GObject parent_instance;

  gint64 start_time; /* monotonic */
  guint64 counters[KV_N_STATS];
};

G_DEFINE_FINAL_TYPE (KvStats, kv_stats, G_TYPE_OBJECT)

static const struct
{
  const char *name;
  const char *help;
} stat_info[KV_N_STATS] = {
  [KV_STAT_GETS] = { "gets", "GET and HEAD requests for a key" },
  [KV_STAT_HITS] = { "hits", "Key lookups that found the key" },
  [KV_STAT_MISSES] = { "misses", "Key lookups that did not find the key" },
  [KV_STAT_PUTS] = { "puts", "Values stored" },
  [KV_STAT_DELETES] = { "deletes", "Successful DELETE requests" },
  [KV_STAT_PRECONDITION_FAILURES] = { "precondition_failures", "Writes refused because a precondition failed" },
  [KV_STAT_CONNECTIONS] = { "connections", "Connections accepted" },
  [KV_STAT_REQUESTS] = { "requests", "Requests answered" },
};

static void
kv_stats_class_init (KvStatsClass *klass)
{
}

static void
kv_stats_init (KvStats *self)
{
  self->start_time = g_get_monotonic_time ();
}

/**
 * kv_stats_new:
 *
 * Returns: (transfer full): counters, all zero, with the uptime starting now
 */
KvStats *
kv_stats_new (void)
{
  return g_object_new (KV_TYPE_STATS, NULL);
}

void
kv_stats_add (KvStats *self,
              KvStat   stat,
              guint64  n)
{
  __atomic_fetch_add (&self->counters[stat], n, __ATOMIC_RELAXED);
}

guint64
kv_stats_get (KvStats *self,
              KvStat   stat)
{
  g_return_val_if_fail (KV_IS_STATS (self), 0);
  g_return_val_if_fail (stat < KV_N_STATS, 0);

  return __atomic_load_n (&self->counters[stat], __ATOMIC_RELAXED);
}

/**
 * kv_stats_get_start_time:
 *
 * Returns: when the counters started, in g_get_monotonic_time() microseconds
 */
gint64
kv_stats_get_start_time (KvStats *self)
{
  g_return_val_if_fail (KV_IS_STATS (self), 0);

  return self->start_time;
}

/**
 * kv_stat_get_name:
 *
 * Returns: the counter's name in /stats, and in /metrics after the
 *   `crafty_kv_` prefix
 */
const char *
kv_stat_get_name (KvStat stat)
{
  g_return_val_if_fail (stat < KV_N_STATS, NULL);
  return stat_info[stat].name;
}

const char *
kv_stat_get_help (KvStat stat)
{
  g_return_val_if_fail (stat < KV_N_STATS, NULL);
  return stat_info[stat].help;
}
