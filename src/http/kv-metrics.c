/* kv-metrics.c: the Prometheus exposition of /metrics
 *
 * SPDX-License-Identifier: MIT
 *
 * Text format 0.0.4, as `promtool check metrics` wants it: a HELP and a
 * TYPE line before each metric family, counters named *_total, base units.
 * No floating point: seconds are written from integer microseconds, which
 * keeps them exact and out of reach of the locale's decimal comma.
 */
#include "config.h"

#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libsoup/soup.h>

#include "kv-metrics.h"

#define PREFIX "crafty_kv_"

static void
append_header (GString    *out,
               const char *name,
               const char *type,
               const char *help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Microseconds as decimal seconds, exactly and with no trailing zeros, as
 * the client libraries write bucket bounds: 0.00025, 1, 2.5. */
static void
append_seconds (GString *out,
                guint64  usec)
{
  guint64 fraction = usec % G_USEC_PER_SEC;
  int digits = 6;

  g_string_append_printf (out, "%" G_GUINT64_FORMAT, usec / G_USEC_PER_SEC);
  if (fraction == 0)
    return;
  for (; fraction % 10 == 0; fraction /= 10)
    digits--;
  g_string_append_printf (out, ".%0*" G_GUINT64_FORMAT, digits, fraction);
}

static void
append_uint_metric (GString    *out,
                    const char *name,
                    const char *type,
                    const char *help,
                    guint64     value)
{
  append_header (out, name, type, help);
  g_string_append_printf (out, "%s %" G_GUINT64_FORMAT "\n", name, value);
}

static void
append_seconds_metric (GString    *out,
                       const char *name,
                       const char *type,
                       const char *help,
                       guint64     usec)
{
  append_header (out, name, type, help);
  g_string_append_printf (out, "%s ", name);
  append_seconds (out, usec);
  g_string_append_c (out, '\n');
}

/* A label value, quoted, with the three escapes the format has. */
static void
append_label_value (GString    *out,
                    const char *value)
{
  g_string_append_c (out, '"');
  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p == '\\' || *p == '"')
        g_string_append_c (out, '\\');
      if (*p == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
}

static void
append_existing (GString             *out,
                 KvStats             *stats,
                 const KvStorageInfo *info)
{
  guint64 uptime = (g_get_monotonic_time () - kv_stats_get_start_time (stats)) / G_USEC_PER_SEC;

  append_uint_metric (out, PREFIX "keys", "gauge",
                      "Entries held, including expired ones not yet reclaimed", info->keys);
  append_uint_metric (out, PREFIX "value_bytes", "gauge", "Total size of the values held",
                      info->value_bytes);
  /* The current revision: a level to read, not something to take a rate of. */
  append_uint_metric (out, PREFIX "revision", "gauge", "Revision of the latest write",
                      info->revision);
  append_uint_metric (out, PREFIX "uptime_seconds", "gauge", "Seconds since the server started",
                      uptime);
  append_uint_metric (out, PREFIX "expired_total", "counter",
                      "Entries removed because they expired", info->expired);
  for (KvStat stat = 0; stat < KV_N_STATS; stat++)
    {
      g_autofree char *name = g_strconcat (PREFIX, kv_stat_get_name (stat), "_total", NULL);

      append_uint_metric (out, name, "counter", kv_stat_get_help (stat),
                          kv_stats_get (stats, stat));
    }
}

/* Only for a store with a data directory. */
static void
append_durability (GString             *out,
                   const KvStorageInfo *info)
{
  const char *fsync = PREFIX "fsync_duration_seconds";

  append_uint_metric (out, PREFIX "log_bytes", "gauge", "Size of the log on disk",
                      info->disk.log_bytes);
  append_uint_metric (out, PREFIX "snapshot_revision", "gauge",
                      "Revision of the last snapshot, 0 if none", info->disk.snapshot_revision);
  append_header (out, PREFIX "snapshot_timestamp_seconds", "gauge",
                 "When the last snapshot was written, in seconds since the epoch, 0 if none");
  g_string_append (out, PREFIX "snapshot_timestamp_seconds ");
  append_seconds (out, info->disk.snapshot_time);
  g_string_append_c (out, '\n');
  append_uint_metric (out, PREFIX "snapshot_bytes", "gauge", "Size of the last snapshot",
                      info->disk.snapshot_bytes);
  append_uint_metric (out, PREFIX "snapshots_total", "counter",
                      "Snapshots written since the server started", info->disk.snapshots);
  append_header (out, fsync, "summary", "Seconds each sync of the log took");
  g_string_append_printf (out, "%s_sum ", fsync);
  append_seconds (out, info->disk.fsync_usec);
  g_string_append_printf (out, "\n%s_count %" G_GUINT64_FORMAT "\n", fsync, info->disk.fsyncs);
  append_seconds_metric (out, PREFIX "fsync_max_seconds", "gauge",
                         "The longest sync of the log since the server started",
                         info->disk.fsync_max_usec);
}

static void
append_build_info (GString *out)
{
  g_autofree char *glib_version =
    g_strdup_printf ("%u.%u.%u", glib_major_version, glib_minor_version, glib_micro_version);
  g_autofree char *soup_version =
    g_strdup_printf ("%u.%u.%u", soup_get_major_version (), soup_get_minor_version (),
                     soup_get_micro_version ());

  append_header (out, PREFIX "build_info", "gauge",
                 "Always 1: the labels say which versions are running");
  g_string_append (out, PREFIX "build_info{version=");
  append_label_value (out, VERSION);
  g_string_append (out, ",glib_version=");
  append_label_value (out, glib_version);
  g_string_append (out, ",libsoup_version=");
  append_label_value (out, soup_version);
  g_string_append (out, "} 1\n");
}

/* Only the series that have counted a request: 7 methods × 5 classes × 19
 * lines each would be mostly zeros. */
static void
append_request_durations (GString *out,
                          KvStats *stats)
{
  const char *name = PREFIX "request_duration_seconds";

  append_header (out, name, "histogram",
                 "Seconds from the start of a request to the end of its response, by method "
                 "and status class");

  for (KvStatsMethod method = 0; method < KV_STATS_N_METHODS; method++)
    {
      for (guint status_class = 1; status_class <= KV_STATS_N_STATUS_CLASSES; status_class++)
        {
          guint64 buckets[KV_STATS_N_DURATION_BUCKETS];
          guint64 sum_usec;
          guint64 count;
          g_autofree char *labels = NULL;

          count = kv_stats_get_request_durations (stats, method, status_class, buckets, &sum_usec);
          if (count == 0)
            continue;

          labels = g_strdup_printf ("method=\"%s\",code=\"%uxx\"",
                                    kv_stats_method_get_name (method), status_class);
          for (guint i = 0; i < KV_STATS_N_DURATION_BUCKETS; i++)
            {
              gint64 bound = kv_stats_get_duration_bound (i);

              g_string_append_printf (out, "%s_bucket{%s,le=\"", name, labels);
              if (bound == G_MAXINT64)
                g_string_append (out, "+Inf");
              else
                append_seconds (out, bound);
              g_string_append_printf (out, "\"} %" G_GUINT64_FORMAT "\n", buckets[i]);
            }
          g_string_append_printf (out, "%s_sum{%s} ", name, labels);
          append_seconds (out, sum_usec);
          g_string_append_printf (out, "\n%s_count{%s} %" G_GUINT64_FORMAT "\n", name, labels,
                                  count);
        }
    }
}

/* /proc/self/stat: CPU time in clock ticks, virtual size in bytes and
 * resident size in pages. */
static gboolean
read_proc_stat (guint64 *cpu_ticks,
                guint64 *virtual_bytes,
                guint64 *resident_pages)
{
  g_autofree char *contents = NULL;
  g_auto(GStrv) fields = NULL;
  const char *end_of_name;

  if (!g_file_get_contents ("/proc/self/stat", &contents, NULL, NULL))
    return FALSE;

  /* The second field, the command name in parentheses, may itself hold
   * spaces and parentheses: count the fields from after its last ')'. There
   * fields[0] is the third field, the state. */
  end_of_name = strrchr (contents, ')');
  if (end_of_name == NULL || end_of_name[1] != ' ')
    return FALSE;
  fields = g_strsplit (end_of_name + 2, " ", 23);
  if (g_strv_length (fields) < 22)
    return FALSE;

  /* utime and stime (fields 14, 15), vsize (23), rss (24) */
  *cpu_ticks = g_ascii_strtoull (fields[11], NULL, 10) + g_ascii_strtoull (fields[12], NULL, 10);
  *virtual_bytes = g_ascii_strtoull (fields[20], NULL, 10);
  *resident_pages = g_ascii_strtoull (fields[21], NULL, 10);

  return TRUE;
}

/* Counting the descriptor this reads through, as other exporters do. */
static gboolean
count_open_fds (guint64 *n_fds)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);

  if (dir == NULL)
    return FALSE;

  *n_fds = 0;
  while (g_dir_read_name (dir) != NULL)
    (*n_fds)++;

  return TRUE;
}

/* The process_* metrics every Prometheus client library exports. Any that
 * cannot be read (no /proc) are left out. */
static void
append_process (GString *out,
                KvStats *stats)
{
  guint64 cpu_ticks, virtual_bytes, resident_pages, n_fds;
  struct rlimit limit;
  long ticks_per_second = sysconf (_SC_CLK_TCK);
  long page_size = sysconf (_SC_PAGESIZE);

  if (read_proc_stat (&cpu_ticks, &virtual_bytes, &resident_pages) &&
      ticks_per_second > 0 && page_size > 0)
    {
      append_seconds_metric (out, "process_cpu_seconds_total", "counter",
                             "Total user and system CPU time spent in seconds",
                             cpu_ticks * G_USEC_PER_SEC / ticks_per_second);
      append_uint_metric (out, "process_virtual_memory_bytes", "gauge",
                          "Virtual memory size in bytes", virtual_bytes);
      append_uint_metric (out, "process_resident_memory_bytes", "gauge",
                          "Resident memory size in bytes", resident_pages * page_size);
    }

  if (count_open_fds (&n_fds))
    append_uint_metric (out, "process_open_fds", "gauge", "Number of open file descriptors",
                        n_fds);

  if (getrlimit (RLIMIT_NOFILE, &limit) == 0)
    append_uint_metric (out, "process_max_fds", "gauge",
                        "Maximum number of open file descriptors", limit.rlim_cur);

  /* When the counters started rather than when the process did: this is
   * what tells Prometheus that they went back to zero. */
  append_seconds_metric (out, "process_start_time_seconds", "gauge",
                         "Start time of the process since unix epoch in seconds",
                         MAX (kv_stats_get_start_real_time (stats), 0));
}

/**
 * kv_metrics_render:
 * @out: where to append the exposition
 * @stats: the counters
 * @info: the store's sizes and counters
 * @open_connections: how many connections are open
 *
 * Appends every metric of /metrics to @out, in the Prometheus text format
 * 0.0.4: the store's and the request counters, then the open connections,
 * the build, the request duration histogram and the process.
 */
void
kv_metrics_render (GString             *out,
                   KvStats             *stats,
                   const KvStorageInfo *info,
                   guint                open_connections)
{
  g_return_if_fail (out != NULL);
  g_return_if_fail (KV_IS_STATS (stats));
  g_return_if_fail (info != NULL);

  append_existing (out, stats, info);
  if (info->durable)
    append_durability (out, info);
  append_uint_metric (out, PREFIX "open_connections", "gauge", "Connections open now",
                      open_connections);
  append_uint_metric (out, PREFIX "watchers", "gauge",
                      "Watch streams and reads waiting for a change, open now",
                      kv_stats_get_watchers (stats));
  append_uint_metric (out, PREFIX "watch_history_changes", "gauge",
                      "Changes kept for watches that resume from a past revision",
                      info->history_changes);
  append_uint_metric (out, PREFIX "watch_history_bytes", "gauge",
                      "Memory those changes take, their keys and values included",
                      info->history_bytes);
  append_uint_metric (out, PREFIX "watch_history_oldest_revision", "gauge",
                      "The oldest revision a watch can resume from", info->history_oldest);
  append_build_info (out);
  append_request_durations (out, stats);
  append_process (out, stats);
}
