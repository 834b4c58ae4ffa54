/* kv-stats.c: request counters shared by every worker
 *
 * SPDX-License-Identifier: MIT
 *
 * Plain relaxed atomics: counters are read rarely and must never make a
 * request wait for a lock. The request durations are a histogram per method
 * and status class, in fixed arrays: recording one is two atomic additions.
 */
#include "config.h"

#include "kv-stats.h"

struct _KvStats
{
  GObject parent_instance;

  gint64 start_time;      /* monotonic */
  gint64 start_real_time; /* wall clock */
  guint64 counters[KV_N_STATS];
  int open_connections;   /* (atomic) */
  int watchers;           /* (atomic) watch streams and waiting reads */
  GMutex output_lock;
  guint64 pending_output; /* bytes of streamed answers not sent yet, under output_lock */

  /* Each request is counted in one bucket only, the first whose bound it
   * does not exceed: the cumulative counts are summed up when read. */
  guint64 durations[KV_STATS_N_METHODS][KV_STATS_N_STATUS_CLASSES][KV_STATS_N_DURATION_BUCKETS];
  guint64 duration_sums[KV_STATS_N_METHODS][KV_STATS_N_STATUS_CLASSES]; /* µs */
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
  [KV_STAT_WATCHES] = { "watches", "Watch streams begun" },
  [KV_STAT_WATCH_EVENTS] = { "watch_events", "Events sent on watch streams" },
  [KV_STAT_WATCH_OVERFLOWS] = { "watch_overflows", "Watch streams ended because their client did not read" },
  [KV_STAT_LONG_POLLS] = { "long_polls", "Reads that waited for a change of their key" },
};

/* In microseconds: 100 µs, 250 µs, 500 µs, 1 ms, … 10 s. */
static const gint64 duration_bounds[KV_STATS_N_DURATION_BUCKETS - 1] = {
  100, 250, 500,
  1000, 2500, 5000,
  10000, 25000, 50000,
  100000, 250000, 500000,
  1000000, 2500000, 5000000,
  10000000,
};

static const char * const method_names[KV_STATS_N_METHODS] = {
  [KV_STATS_METHOD_GET] = "GET",
  [KV_STATS_METHOD_HEAD] = "HEAD",
  [KV_STATS_METHOD_PUT] = "PUT",
  [KV_STATS_METHOD_DELETE] = "DELETE",
  [KV_STATS_METHOD_POST] = "POST",
  [KV_STATS_METHOD_OPTIONS] = "OPTIONS",
  [KV_STATS_METHOD_OTHER] = "other",
};

static void
kv_stats_finalize (GObject *object)
{
  g_mutex_clear (&KV_STATS (object)->output_lock);

  G_OBJECT_CLASS (kv_stats_parent_class)->finalize (object);
}

static void
kv_stats_class_init (KvStatsClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = kv_stats_finalize;
}

static void
kv_stats_init (KvStats *self)
{
  self->start_time = g_get_monotonic_time ();
  self->start_real_time = g_get_real_time ();
  g_mutex_init (&self->output_lock);
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
 * kv_stats_get_start_real_time:
 *
 * Returns: when the counters started, in g_get_real_time() microseconds
 */
gint64
kv_stats_get_start_real_time (KvStats *self)
{
  g_return_val_if_fail (KV_IS_STATS (self), 0);

  return self->start_real_time;
}

/**
 * kv_stats_add_open_connections:
 * @self: a #KvStats
 * @delta: +1 for a connection served from now on, -1 for one that closed
 *
 * Safe to call from any thread.
 */
void
kv_stats_add_open_connections (KvStats *self,
                               int      delta)
{
  g_return_if_fail (KV_IS_STATS (self));

  g_atomic_int_add (&self->open_connections, delta);
}

/**
 * kv_stats_get_open_connections:
 *
 * Returns: how many connections the servers sharing @self serve now
 */
guint
kv_stats_get_open_connections (KvStats *self)
{
  g_return_val_if_fail (KV_IS_STATS (self), 0);

  return MAX (g_atomic_int_get (&self->open_connections), 0);
}

/**
 * kv_stats_reserve_output:
 * @self: a #KvStats
 * @bytes: the size of a piece of an answer about to be held
 * @max: the most all servers sharing @self may hold
 *
 * Streamed answers (listings) hold one piece at a time per connection,
 * and reserve room for it while they last; this caps what they hold
 * together, however many clients do not read.
 * Safe to call from any thread.
 *
 * Returns: %TRUE if @bytes may be held, to be given back with
 *   kv_stats_release_output() once sent
 */
gboolean
kv_stats_reserve_output (KvStats *self,
                         gsize    bytes,
                         guint64  max)
{
  gboolean ok;

  g_return_val_if_fail (KV_IS_STATS (self), FALSE);

  /* Once per streamed answer, not per request: a lock is cheap. */
  g_mutex_lock (&self->output_lock);
  ok = self->pending_output + bytes <= max;
  if (ok)
    self->pending_output += bytes;
  g_mutex_unlock (&self->output_lock);

  return ok;
}

void
kv_stats_release_output (KvStats *self,
                         gsize    bytes)
{
  g_return_if_fail (KV_IS_STATS (self));

  g_mutex_lock (&self->output_lock);
  g_assert (self->pending_output >= bytes);
  self->pending_output -= bytes;
  g_mutex_unlock (&self->output_lock);
}

/**
 * kv_stats_get_pending_output:
 *
 * Returns: bytes of streamed answers held, not sent yet
 */
guint64
kv_stats_get_pending_output (KvStats *self)
{
  guint64 held;

  g_return_val_if_fail (KV_IS_STATS (self), 0);

  g_mutex_lock (&self->output_lock);
  held = self->pending_output;
  g_mutex_unlock (&self->output_lock);

  return held;
}

/**
 * kv_stats_begin_watch:
 * @self: a #KvStats
 * @max: the most watchers all servers sharing @self may have
 *
 * Takes a watcher's place: a watch stream or a read waiting for a change.
 * Safe to call from any thread.
 *
 * Returns: %TRUE if there was room, to be given back with
 *   kv_stats_end_watch()
 */
gboolean
kv_stats_begin_watch (KvStats *self,
                      guint    max)
{
  int n;

  g_return_val_if_fail (KV_IS_STATS (self), FALSE);

  do
    {
      n = g_atomic_int_get (&self->watchers);
      if ((guint) n >= max)
        return FALSE;
    }
  while (!g_atomic_int_compare_and_exchange (&self->watchers, n, n + 1));

  return TRUE;
}

void
kv_stats_end_watch (KvStats *self)
{
  g_return_if_fail (KV_IS_STATS (self));

  g_atomic_int_add (&self->watchers, -1);
}

/**
 * kv_stats_get_watchers:
 *
 * Returns: the watch streams and waiting reads open now
 */
guint
kv_stats_get_watchers (KvStats *self)
{
  g_return_val_if_fail (KV_IS_STATS (self), 0);

  return MAX (g_atomic_int_get (&self->watchers), 0);
}

static KvStatsMethod
method_from_string (const char *method)
{
  for (KvStatsMethod m = 0; m < KV_STATS_METHOD_OTHER; m++)
    {
      if (g_strcmp0 (method, method_names[m]) == 0)
        return m;
    }

  return KV_STATS_METHOD_OTHER;
}

/**
 * kv_stats_record_request:
 * @self: a #KvStats
 * @method: (nullable): the request method; one outside #KvStatsMethod counts
 *   as %KV_STATS_METHOD_OTHER
 * @status: the response status; one outside 100 to 599 is not counted
 * @duration_usec: how long the request took; a negative one counts as 0
 *
 * Adds a request to the duration histogram. Safe from any thread; takes no
 * lock and allocates nothing, since every request calls it.
 */
void
kv_stats_record_request (KvStats    *self,
                         const char *method,
                         guint       status,
                         gint64      duration_usec)
{
  KvStatsMethod m;
  guint status_class;
  guint bucket = 0;

  if (status < 100 || status > 599)
    return;

  m = method_from_string (method);
  status_class = status / 100 - 1;
  duration_usec = MAX (duration_usec, 0);
  while (bucket < G_N_ELEMENTS (duration_bounds) && duration_usec > duration_bounds[bucket])
    bucket++;

  __atomic_fetch_add (&self->durations[m][status_class][bucket], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add (&self->duration_sums[m][status_class], (guint64) duration_usec,
                      __ATOMIC_RELAXED);
}

/**
 * kv_stats_get_request_durations:
 * @self: a #KvStats
 * @method: the method
 * @status_class: 1 to 5, for 1xx to 5xx
 * @buckets: (out caller-allocates) (array fixed-size=17): the cumulative
 *   count of each bucket, as Prometheus has them: requests that took at most
 *   kv_stats_get_duration_bound()
 * @sum_usec: (out) (optional): the total duration of those requests
 *
 * A request recorded meanwhile may be in the sum and not in the buckets, or
 * the other way round; the count is always that of the last bucket.
 *
 * Returns: how many requests were recorded
 */
guint64
kv_stats_get_request_durations (KvStats       *self,
                                KvStatsMethod  method,
                                guint          status_class,
                                guint64        buckets[KV_STATS_N_DURATION_BUCKETS],
                                guint64       *sum_usec)
{
  guint64 count = 0;

  g_return_val_if_fail (KV_IS_STATS (self), 0);
  g_return_val_if_fail (method < KV_STATS_N_METHODS, 0);
  g_return_val_if_fail (status_class >= 1 && status_class <= KV_STATS_N_STATUS_CLASSES, 0);
  g_return_val_if_fail (buckets != NULL, 0);

  for (guint i = 0; i < KV_STATS_N_DURATION_BUCKETS; i++)
    {
      count += __atomic_load_n (&self->durations[method][status_class - 1][i], __ATOMIC_RELAXED);
      buckets[i] = count;
    }
  if (sum_usec != NULL)
    *sum_usec = __atomic_load_n (&self->duration_sums[method][status_class - 1], __ATOMIC_RELAXED);

  return count;
}

/**
 * kv_stats_get_duration_bound:
 * @bucket: a bucket, below %KV_STATS_N_DURATION_BUCKETS
 *
 * Returns: the longest duration the bucket counts, in microseconds;
 *   %G_MAXINT64 for the last one (+Inf)
 */
gint64
kv_stats_get_duration_bound (guint bucket)
{
  g_return_val_if_fail (bucket < KV_STATS_N_DURATION_BUCKETS, G_MAXINT64);

  return bucket < G_N_ELEMENTS (duration_bounds) ? duration_bounds[bucket] : G_MAXINT64;
}

/**
 * kv_stats_method_get_name:
 *
 * Returns: the method as it is spelt in requests, or "other"
 */
const char *
kv_stats_method_get_name (KvStatsMethod method)
{
  g_return_val_if_fail (method < KV_STATS_N_METHODS, NULL);
  return method_names[method];
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
