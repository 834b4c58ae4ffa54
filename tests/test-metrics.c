/* test-metrics.c: the request duration histogram and /metrics as Prometheus
 * reads it
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <locale.h>
#include <string.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "http/kv-metrics.h"
#include "kv-test-utils.h"

#define DURATION "crafty_kv_request_duration_seconds"
#define GET_2XX "method=\"GET\",code=\"2xx\""
#define OTHER_4XX "method=\"other\",code=\"4xx\""

/* The bucket bounds as Prometheus client libraries write them. */
static const char * const bucket_labels[KV_STATS_N_DURATION_BUCKETS] = {
  "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
  "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
};

typedef KvTestFixture Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  kv_test_fixture_setup (fixture, NULL);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  kv_test_fixture_teardown (fixture);
}

/* The samples of an exposition, by series (the name and its labels as
 * written), with their values as written; @types, if given, gets the type
 * of each family. */
static GHashTable *
parse_samples (const char *text,
               GHashTable *types)
{
  GHashTable *samples = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  g_assert_true (g_str_has_suffix (text, "\n"));
  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      const char *space;
      g_autofree char *series = NULL;

      if (g_str_has_prefix (lines[i], "# TYPE "))
        {
          g_auto(GStrv) words = g_strsplit (lines[i], " ", 4);

          g_assert_cmpuint (g_strv_length (words), ==, 4);
          if (types != NULL)
            g_hash_table_insert (types, g_strdup (words[2]), g_strdup (words[3]));
          continue;
        }
      if (lines[i][0] == '#')
        continue;

      /* No label value here holds a space: the value is after the last. */
      space = strrchr (lines[i], ' ');
      g_assert_nonnull (space);
      series = g_strndup (lines[i], space - lines[i]);
      g_assert_false (g_hash_table_contains (samples, series));
      g_hash_table_insert (samples, g_steal_pointer (&series), g_strdup (space + 1));
    }

  return samples;
}

static guint64
sample_uint (GHashTable *samples,
             const char *series)
{
  const char *text = g_hash_table_lookup (samples, series);
  g_autoptr(GError) error = NULL;
  guint64 value;

  g_assert_nonnull (text);
  g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64, &value, &error);
  g_assert_no_error (error);

  return value;
}

static double
sample_double (GHashTable *samples,
               const char *series)
{
  const char *text = g_hash_table_lookup (samples, series);
  char *end;
  double value;

  g_assert_nonnull (text);
  value = g_ascii_strtod (text, &end);
  g_assert_cmpstr (end, ==, "");

  return value;
}

/* The value of the histogram's series @suffix (_bucket, _sum or _count)
 * with @labels. */
static guint64
duration_uint (GHashTable *samples,
               const char *suffix,
               const char *labels)
{
  g_autofree char *series = g_strdup_printf (DURATION "%s{%s}", suffix, labels);

  return sample_uint (samples, series);
}

static char *
render (KvStats *stats)
{
  GString *out = g_string_new (NULL);
  KvStorageInfo info = { 0 };

  kv_metrics_render (out, stats, &info, 0);
  return g_string_free (out, FALSE);
}

static void
test_histogram_buckets (void)
{
  g_autoptr(KvStats) stats = kv_stats_new ();
  /* Each exactly at a bound, or just past it; a negative one counts as 0. */
  const gint64 durations[] = { 0, 100, -5, 101, 250, 10000000, 10000001 };
  guint64 expected[KV_STATS_N_DURATION_BUCKETS] = { 0 };
  guint64 buckets[KV_STATS_N_DURATION_BUCKETS];
  guint64 count, sum_usec;

  g_test_summary ("A request is counted in the first bucket whose bound it does not exceed; "
                  "the buckets read back cumulative, the last one being the count");

  for (guint i = 0; i < KV_STATS_N_DURATION_BUCKETS - 1; i++)
    g_assert_cmpint (kv_stats_get_duration_bound (i), <, kv_stats_get_duration_bound (i + 1));
  g_assert_cmpint (kv_stats_get_duration_bound (0), ==, 100);
  g_assert_cmpint (kv_stats_get_duration_bound (KV_STATS_N_DURATION_BUCKETS - 2), ==,
                   10 * G_USEC_PER_SEC);
  g_assert_cmpint (kv_stats_get_duration_bound (KV_STATS_N_DURATION_BUCKETS - 1), ==, G_MAXINT64);

  for (gsize i = 0; i < G_N_ELEMENTS (durations); i++)
    kv_stats_record_request (stats, "GET", 200, durations[i]);

  /* 0, 100 and -5 in the first bucket; 101 and 250 in the second; 10 s in
   * the last bounded one; just over 10 s only in +Inf. */
  for (guint i = 0; i < KV_STATS_N_DURATION_BUCKETS; i++)
    expected[i] = i < 1 ? 3 : i < KV_STATS_N_DURATION_BUCKETS - 2 ? 5 :
                  i < KV_STATS_N_DURATION_BUCKETS - 1 ? 6 : 7;

  count = kv_stats_get_request_durations (stats, KV_STATS_METHOD_GET, 2, buckets, &sum_usec);
  g_assert_cmpuint (count, ==, G_N_ELEMENTS (durations));
  g_assert_cmpmem (buckets, sizeof buckets, expected, sizeof expected);
  g_assert_cmpuint (sum_usec, ==, 0 + 100 + 0 + 101 + 250 + 10000000 + 10000001);

  /* Nothing leaks into another series. */
  count = kv_stats_get_request_durations (stats, KV_STATS_METHOD_HEAD, 2, buckets, &sum_usec);
  g_assert_cmpuint (count, ==, 0);
  g_assert_cmpuint (buckets[KV_STATS_N_DURATION_BUCKETS - 1], ==, 0);
  g_assert_cmpuint (sum_usec, ==, 0);
}

static void
test_histogram_status_classes (void)
{
  g_autoptr(KvStats) stats = kv_stats_new ();
  const guint statuses[] = { 100, 101, 200, 204, 299, 301, 404, 412, 500, 503, 599 };
  const guint ignored[] = { 0, 99, 600, 1000 };
  const guint64 per_class[KV_STATS_N_STATUS_CLASSES] = { 2, 3, 1, 2, 3 };
  guint64 buckets[KV_STATS_N_DURATION_BUCKETS];

  g_test_summary ("Statuses are counted by class, 1xx to 5xx; a status outside 100 to 599 is "
                  "not counted");

  for (gsize i = 0; i < G_N_ELEMENTS (statuses); i++)
    kv_stats_record_request (stats, "PUT", statuses[i], 1000);
  for (gsize i = 0; i < G_N_ELEMENTS (ignored); i++)
    kv_stats_record_request (stats, "PUT", ignored[i], 1000);

  for (guint status_class = 1; status_class <= KV_STATS_N_STATUS_CLASSES; status_class++)
    {
      guint64 sum_usec;
      guint64 count = kv_stats_get_request_durations (stats, KV_STATS_METHOD_PUT, status_class,
                                                      buckets, &sum_usec);

      g_test_message ("%uxx", status_class);
      g_assert_cmpuint (count, ==, per_class[status_class - 1]);
      g_assert_cmpuint (sum_usec, ==, 1000 * per_class[status_class - 1]);
    }
}

static void
test_histogram_methods (void)
{
  g_autoptr(KvStats) stats = kv_stats_new ();
  const char *others[] = { "PATCH", "get", "GETS", "", "BREW", NULL };
  guint64 buckets[KV_STATS_N_DURATION_BUCKETS];

  g_test_summary ("The six methods the API knows have a series each; any other, including "
                  "one that differs only in case, counts as “other”");

  for (KvStatsMethod method = 0; method < KV_STATS_METHOD_OTHER; method++)
    {
      /* One request for GET, two for HEAD, …: each lands in its own series. */
      for (guint i = 0; i <= method; i++)
        kv_stats_record_request (stats, kv_stats_method_get_name (method), 204, 50);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (others); i++)
    kv_stats_record_request (stats, others[i], 204, 50);

  g_assert_cmpstr (kv_stats_method_get_name (KV_STATS_METHOD_OTHER), ==, "other");
  for (KvStatsMethod method = 0; method < KV_STATS_N_METHODS; method++)
    {
      guint64 expected = method == KV_STATS_METHOD_OTHER ? G_N_ELEMENTS (others) : method + 1;

      g_test_message ("%s", kv_stats_method_get_name (method));
      g_assert_cmpuint (kv_stats_get_request_durations (stats, method, 2, buckets, NULL), ==,
                        expected);
    }
}

static void
test_histogram_render (void)
{
  g_autoptr(KvStats) stats = kv_stats_new ();
  g_autoptr(GHashTable) types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GHashTable) samples = NULL;
  g_autofree char *text = NULL;
  guint n_series = 0;
  struct
  {
    const char *labels;
    guint64 count;
    const char *sum;
  } series[] = {
    { "method=\"GET\",code=\"2xx\"", 3, "0.00035" },
    { "method=\"other\",code=\"4xx\"", 1, "12.5" },
    { "method=\"OPTIONS\",code=\"1xx\"", 1, "0" },
  };

  g_test_summary ("/metrics writes each series that counted a request as cumulative _bucket "
                  "lines from le=\"0.0001\" to le=\"+Inf\", then _sum in seconds and _count");

  kv_stats_record_request (stats, "GET", 200, 50);
  kv_stats_record_request (stats, "GET", 204, 100);
  kv_stats_record_request (stats, "GET", 200, 200);
  kv_stats_record_request (stats, "PROPFIND", 405, 12500000);
  kv_stats_record_request (stats, "OPTIONS", 100, 0);

  text = render (stats);
  samples = parse_samples (text, types);
  g_assert_cmpstr (g_hash_table_lookup (types, DURATION), ==, "histogram");

  for (gsize s = 0; s < G_N_ELEMENTS (series); s++)
    {
      g_autofree char *sum = g_strdup_printf (DURATION "_sum{%s}", series[s].labels);
      g_autofree char *count = g_strdup_printf (DURATION "_count{%s}", series[s].labels);
      guint64 previous = 0;

      g_test_message ("%s", series[s].labels);
      for (guint i = 0; i < KV_STATS_N_DURATION_BUCKETS; i++)
        {
          g_autofree char *bucket = g_strdup_printf (DURATION "_bucket{%s,le=\"%s\"}",
                                                     series[s].labels, bucket_labels[i]);
          guint64 value = sample_uint (samples, bucket);

          g_assert_cmpuint (value, >=, previous);
          previous = value;
        }
      g_assert_cmpuint (previous, ==, series[s].count);
      g_assert_cmpuint (sample_uint (samples, count), ==, series[s].count);
      g_assert_cmpstr (g_hash_table_lookup (samples, sum), ==, series[s].sum);
    }

  /* The first GET series in detail: 50 and 100 µs in the first bucket, 200
   * µs in the second. */
  g_assert_cmpuint (duration_uint (samples, "_bucket", GET_2XX ",le=\"0.0001\""), ==, 2);
  g_assert_cmpuint (duration_uint (samples, "_bucket", GET_2XX ",le=\"0.00025\""), ==, 3);
  g_assert_cmpuint (duration_uint (samples, "_bucket", OTHER_4XX ",le=\"10\""), ==, 0);

  /* Only those series: 19 lines each. */
  {
    GHashTableIter iter;
    const char *name;

    g_hash_table_iter_init (&iter, samples);
    while (g_hash_table_iter_next (&iter, (gpointer *) &name, NULL))
      {
        if (g_str_has_prefix (name, DURATION))
          n_series++;
      }
  }
  g_assert_cmpuint (n_series, ==, G_N_ELEMENTS (series) * (KV_STATS_N_DURATION_BUCKETS + 2));
}

static void
test_render_locale (void)
{
  g_autoptr(KvStats) stats = kv_stats_new ();
  g_autoptr(GHashTable) samples = NULL;
  g_autofree char *text = NULL;
  g_autofree char *saved = g_strdup (setlocale (LC_NUMERIC, NULL));
  GHashTableIter iter;
  const char *value;

  g_test_summary ("Seconds are written with a decimal point in a locale whose separator is a "
                  "comma");

  if (setlocale (LC_NUMERIC, "de_DE.UTF-8") == NULL)
    {
      g_test_skip ("The de_DE.UTF-8 locale is not installed");
      return;
    }

  kv_stats_record_request (stats, "GET", 200, 1500000);
  text = render (stats);
  setlocale (LC_NUMERIC, saved);

  samples = parse_samples (text, NULL);
  g_assert_cmpstr (g_hash_table_lookup (samples, DURATION "_sum{" GET_2XX "}"), ==, "1.5");
  g_assert_cmpuint (duration_uint (samples, "_bucket", GET_2XX ",le=\"2.5\""), ==, 1);
  g_hash_table_iter_init (&iter, samples);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &value))
    g_assert_null (strchr (value, ','));
}

/* Runs `promtool check metrics` on @text; returns its exit status and, in
 * @output, what it printed. */
static int
run_promtool (const char  *promtool,
              const char  *text,
              char       **output)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;

  g_assert_cmpint (g_mkdir_with_parents (g_get_user_cache_dir (), 0700), ==, 0);
  path = g_build_filename (g_get_user_cache_dir (), "metrics.txt", NULL);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_stdin_file_path (launcher, path);
  process = g_subprocess_launcher_spawn (launcher, &error, promtool, "check", "metrics", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, output, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_unlink (path);

  return g_subprocess_get_exit_status (process);
}

static void
test_server_promtool (Fixture       *fixture,
                      gconstpointer  user_data)
{
  const struct
  {
    const char *method, *path, *body;
    guint status;
  } requests[] = {
    { "PUT", "/kv/a", "12345", 200 },
    { "GET", "/kv/a", NULL, 200 },
    { "HEAD", "/kv/a", NULL, 200 },
    { "GET", "/kv/missing", NULL, 404 },
    { "POST", "/kv/a", "x", 405 },
    { "PATCH", "/kv/a", "x", 405 },
    { "DELETE", "/kv/a", NULL, 200 },
    { "GET", "/nowhere", NULL, 404 },
  };
  g_autofree char *promtool = g_find_program_in_path ("promtool");
  g_autoptr(KvTestResponse) stats = NULL;
  g_autoptr(KvTestResponse) metrics = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GHashTable) samples = NULL;
  g_autofree char *text = NULL;
  g_autofree char *output = NULL;
  g_autofree char *build_info = NULL;
  guint64 n_requests = G_N_ELEMENTS (requests) + 1;  /* and /stats */
  guint64 n_counted = 0;
  double now = g_get_real_time () / (double) G_USEC_PER_SEC;
  double start_time;
  double put_seconds;
  int status;
  GHashTableIter iter;
  const char *name;

  g_test_summary ("`promtool check metrics` finds nothing to say about a real server's "
                  "/metrics, which has the build, the process and every request made");

  if (promtool == NULL)
    {
      g_test_skip ("promtool is not installed (Debian's prometheus package has it)");
      return;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (requests); i++)
    {
      g_autoptr(KvTestResponse) r = kv_test_fixture_request (fixture, requests[i].method,
                                                             requests[i].path, requests[i].body);

      g_test_message ("%s %s", requests[i].method, requests[i].path);
      g_assert_cmpuint (r->status, ==, requests[i].status);
    }

  /* /stats is as it was. */
  stats = kv_test_fixture_request (fixture, "GET", "/stats", NULL);
  g_assert_cmpuint (stats->status, ==, 200);
  root = json_from_string (g_bytes_get_data (stats->body, NULL), &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (root), "puts"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (root), "requests"), ==,
                   G_N_ELEMENTS (requests));

  metrics = kv_test_fixture_request (fixture, "GET", "/metrics", NULL);
  g_assert_cmpuint (metrics->status, ==, 200);
  g_assert_cmpstr (kv_test_response_header (metrics, "Content-Type"), ==,
                   "text/plain; version=0.0.4; charset=utf-8");
  text = g_strndup (g_bytes_get_data (metrics->body, NULL), g_bytes_get_size (metrics->body));

  status = run_promtool (promtool, text, &output);
  g_assert_cmpstr (output, ==, "");
  g_assert_cmpint (status, ==, 0);

  samples = parse_samples (text, types);

  build_info = g_strdup_printf ("crafty_kv_build_info{version=\"%s\",glib_version=\"%u.%u.%u\","
                                "libsoup_version=\"%u.%u.%u\"}",
                                VERSION, glib_major_version, glib_minor_version,
                                glib_micro_version, soup_get_major_version (),
                                soup_get_minor_version (), soup_get_micro_version ());
  g_assert_cmpuint (sample_uint (samples, build_info), ==, 1);
  g_assert_cmpstr (g_hash_table_lookup (types, "crafty_kv_build_info"), ==, "gauge");

  g_assert_cmpstr (g_hash_table_lookup (types, "crafty_kv_revision"), ==, "gauge");
  g_assert_cmpuint (sample_uint (samples, "crafty_kv_revision"), >=, 1);
  g_assert_cmpuint (sample_uint (samples, "crafty_kv_puts_total"), ==, 1);
  g_assert_cmpuint (sample_uint (samples, "crafty_kv_requests_total"), >=, n_requests);
  g_assert_true (g_hash_table_contains (samples, "crafty_kv_open_connections"));
  g_assert_cmpstr (g_hash_table_lookup (types, "crafty_kv_open_connections"), ==, "gauge");

  g_assert_cmpuint (sample_uint (samples, "process_resident_memory_bytes"), >, 0);
  g_assert_cmpuint (sample_uint (samples, "process_virtual_memory_bytes"), >=,
                    sample_uint (samples, "process_resident_memory_bytes"));
  g_assert_cmpuint (sample_uint (samples, "process_open_fds"), >, 0);
  g_assert_cmpuint (sample_uint (samples, "process_max_fds"), >=,
                    sample_uint (samples, "process_open_fds"));
  g_assert_cmpfloat (sample_double (samples, "process_cpu_seconds_total"), >=, 0);
  g_assert_cmpstr (g_hash_table_lookup (types, "process_cpu_seconds_total"), ==, "counter");
  /* The server's counters started with this test. */
  start_time = sample_double (samples, "process_start_time_seconds");
  g_assert_cmpfloat (start_time, <=, g_get_real_time () / (double) G_USEC_PER_SEC);
  g_assert_cmpfloat (start_time, >=, now - 60);

  /* Every request answered before /metrics, in its series. */
  g_hash_table_iter_init (&iter, samples);
  while (g_hash_table_iter_next (&iter, (gpointer *) &name, NULL))
    {
      if (g_str_has_prefix (name, DURATION "_count{"))
        n_counted += sample_uint (samples, name);
    }
  g_assert_cmpuint (n_counted, >=, n_requests);
  g_assert_cmpuint (duration_uint (samples, "_count", "method=\"PUT\",code=\"2xx\""), ==, 1);
  g_assert_cmpuint (duration_uint (samples, "_count", GET_2XX), ==, 2);
  g_assert_cmpuint (duration_uint (samples, "_count", "method=\"GET\",code=\"4xx\""), ==, 2);
  g_assert_cmpuint (duration_uint (samples, "_count", "method=\"HEAD\",code=\"2xx\""), ==, 1);
  g_assert_cmpuint (duration_uint (samples, "_count", "method=\"DELETE\",code=\"2xx\""), ==, 1);
  g_assert_cmpuint (duration_uint (samples, "_count", "method=\"POST\",code=\"4xx\""), ==, 1);
  g_assert_cmpuint (duration_uint (samples, "_count", OTHER_4XX), ==, 1);
  g_assert_cmpuint (duration_uint (samples, "_bucket", OTHER_4XX ",le=\"+Inf\""), ==, 1);
  /* The PUT took some time, and no more than the test so far. */
  put_seconds = sample_double (samples, DURATION "_sum{method=\"PUT\",code=\"2xx\"}");
  g_assert_cmpfloat (put_seconds, >, 0);
  g_assert_cmpfloat (put_seconds, <=, g_get_real_time () / (double) G_USEC_PER_SEC - now);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/metrics/histogram/buckets", test_histogram_buckets);
  g_test_add_func ("/kv/metrics/histogram/status-classes", test_histogram_status_classes);
  g_test_add_func ("/kv/metrics/histogram/methods", test_histogram_methods);
  g_test_add_func ("/kv/metrics/histogram/render", test_histogram_render);
  g_test_add_func ("/kv/metrics/render/locale", test_render_locale);
  g_test_add ("/kv/metrics/server/promtool", Fixture, NULL, fixture_setup, test_server_promtool,
              fixture_teardown);

  return g_test_run ();
}
