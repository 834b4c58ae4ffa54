/* index-memory.c: what KvIndex costs per key, and how fast it pages
 *
 * Builds an index over KEYS entries (1,000,000 by default) with 16-byte
 * keys and 100-byte values, once inserting in key order and once in random
 * order, with the entries allocated in the order they are inserted, as a
 * store fills. For each it prints:
 *
 *   - bytes per key, as kv_index_get_memory() counts them and as the
 *     process's resident memory grows while the index is built;
 *   - the time to build it;
 *   - the median and 99th percentile time of a page of 1,000 keys from a
 *     random key: the index alone (seek, then read each key in place), and
 *     as a listing makes it (each key copied out into a GPtrArray);
 *   - the median time of a full scan by pages of 1,000, each page sought
 *     from the last key of the one before, as a client paging through a
 *     listing does;
 *   - bytes per key after removing a random half of the keys.
 *
 * A GTree over the random-order entries gives the comparison.
 *
 * Usage: index-memory [KEYS]
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/kv-index.h"

#define KEY_FORMAT "key:%012u"   /* 16 bytes */
#define VALUE_SIZE 100
#define PAGE 1000
#define PAGE_RUNS 1001
#define SCAN_RUNS 5

static gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

/* Resident memory, after giving back what malloc holds free. */
static gsize
resident_bytes (void)
{
  g_autofree char *statm = NULL;
  g_auto(GStrv) fields = NULL;

  malloc_trim (0);
  if (!g_file_get_contents ("/proc/self/statm", &statm, NULL, NULL))
    g_error ("cannot read /proc/self/statm");
  fields = g_strsplit (statm, " ", 0);
  return g_ascii_strtoull (fields[1], NULL, 10) * sysconf (_SC_PAGESIZE);
}

static int
compare_doubles (gconstpointer a,
                 gconstpointer b)
{
  double da = *(const double *) a, db = *(const double *) b;

  return da < db ? -1 : (da > db ? 1 : 0);
}

/* Sorts @samples and returns the value at @fraction of the way. */
static double
percentile (double *samples,
            guint   n,
            double  fraction)
{
  qsort (samples, n, sizeof (double), compare_doubles);
  return samples[MIN (n - 1, (guint) (fraction * n))];
}

static int
compare_entries (gconstpointer a,
                 gconstpointer b,
                 gpointer      user_data)
{
  gsize la, lb;
  const char *ka = kv_entry_peek_key (a, &la);
  const char *kb = kv_entry_peek_key (b, &lb);
  int cmp = memcmp (ka, kb, MIN (la, lb));

  if (cmp != 0)
    return cmp;
  return la < lb ? -1 : (la > lb ? 1 : 0);
}

static void
shuffle (guint *numbers,
         guint  n,
         GRand *rand)
{
  for (guint i = n - 1; i > 0; i--)
    {
      guint j = g_rand_int_range (rand, 0, i + 1);
      guint tmp = numbers[i];

      numbers[i] = numbers[j];
      numbers[j] = tmp;
    }
}

/* The entries for keys numbered 0 to @n - 1, allocated in @order. */
static KvEntry **
entries_new (const guint *order,
             guint        n)
{
  KvEntry **entries = g_new (KvEntry *, n);
  char value[VALUE_SIZE];

  memset (value, 'v', sizeof value);
  for (guint i = 0; i < n; i++)
    {
      char key[32];
      int len = g_snprintf (key, sizeof key, KEY_FORMAT, order[i]);

      entries[order[i]] = kv_entry_new (key, len, value, sizeof value, NULL, 1, NULL);
    }

  return entries;
}

static void
entries_free (KvEntry **entries,
              guint     n)
{
  for (guint i = 0; i < n; i++)
    kv_entry_unref (entries[i]);
  g_free (entries);
}

/* One page from @key (exclusive); returns the last entry, or NULL if the
 * page came out short. With @copy, the keys are copied out as
 * kv_storage_list() returns them. */
static KvEntry *
read_page (KvIndex    *index,
           const char *key,
           gsize       key_len,
           gboolean    copy,
           guint      *n_read)
{
  g_autoptr(GPtrArray) keys = copy ? g_ptr_array_new_full (PAGE, g_free) : NULL;
  KvIndexIter iter;
  KvEntry *entry = NULL, *last = NULL;
  guint n = 0;
  volatile guint sink = 0;

  kv_index_iter_init_after (&iter, index, key, key_len, FALSE);
  while (n < PAGE && (entry = kv_index_iter_next (&iter)) != NULL)
    {
      gsize len;
      const char *k = kv_entry_peek_key (entry, &len);

      if (copy)
        g_ptr_array_add (keys, kv_entry_dup_key (entry));
      else
        sink += len + (guchar) k[len - 1];
      last = entry;
      n++;
    }

  *n_read += n;
  return n == PAGE ? last : NULL;
}

static void
time_pages (KvIndex   *index,
            KvEntry  **entries,
            guint      n_keys,
            gboolean   copy,
            GRand     *rand,
            double    *median_us,
            double    *p99_us)
{
  double samples[PAGE_RUNS];

  for (guint run = 0; run < PAGE_RUNS; run++)
    {
      KvEntry *from = entries[g_rand_int_range (rand, 0, n_keys)];
      gsize len;
      const char *key = kv_entry_peek_key (from, &len);
      guint n = 0;
      gint64 start = now_ns ();

      read_page (index, key, len, copy, &n);
      samples[run] = (now_ns () - start) / 1000.0;
    }

  *p99_us = percentile (samples, PAGE_RUNS, 0.99);
  *median_us = percentile (samples, PAGE_RUNS, 0.5);
}

/* Pages through everything, each page from a copy of the last key of the
 * page before, as a client sends it back. */
static double
time_scan (KvIndex *index,
           guint    n_keys)
{
  double samples[SCAN_RUNS];

  for (guint run = 0; run < SCAN_RUNS; run++)
    {
      g_autofree char *after = NULL;
      gsize after_len = 0;
      guint n = 0;
      gint64 start = now_ns ();

      for (;;)
        {
          KvEntry *last = read_page (index, after, after_len, TRUE, &n);

          if (last == NULL)
            break;
          g_free (after);
          after = kv_entry_dup_key (last);
          after_len = strlen (after);
        }

      samples[run] = (now_ns () - start) / 1e6;
      if (n != n_keys)
        g_error ("the scan found %u keys of %u", n, n_keys);
    }

  return percentile (samples, SCAN_RUNS, 0.5);
}

static void
measure_index (const char *name,
               guint      *order,
               guint       n_keys,
               GRand      *rand)
{
  KvEntry **entries = entries_new (order, n_keys);
  KvIndex *index;
  gsize rss_before, rss_after, index_bytes;
  gint64 start;
  double build_ms, page_us, page_p99_us, list_us, list_p99_us, scan_ms, half_bytes;

  rss_before = resident_bytes ();
  start = now_ns ();
  index = kv_index_new ();
  for (guint i = 0; i < n_keys; i++)
    kv_index_insert (index, entries[order[i]]);
  build_ms = (now_ns () - start) / 1e6;
  rss_after = resident_bytes ();
  index_bytes = kv_index_get_memory (index);

  if (!kv_index_check (index))
    g_error ("the index is broken");

  time_pages (index, entries, n_keys, FALSE, rand, &page_us, &page_p99_us);
  time_pages (index, entries, n_keys, TRUE, rand, &list_us, &list_p99_us);
  scan_ms = time_scan (index, n_keys);

  shuffle (order, n_keys, rand);
  for (guint i = 0; i < n_keys / 2; i++)
    kv_index_remove (index, entries[order[i]]);
  half_bytes = (double) kv_index_get_memory (index) / kv_index_get_size (index);

  printf ("%s: %.2f bytes per key counted, %.2f by resident memory; built in %.0f ms\n"
          "  a page of %d from a random key: %.1f µs (p99 %.1f) in the index, "
          "%.1f µs (p99 %.1f) copying the keys out\n"
          "  a full scan by pages of %d: %.0f ms (median of %d)\n"
          "  after removing a random half: %.2f bytes per key\n",
          name, (double) index_bytes / n_keys, (double) (rss_after - rss_before) / n_keys, build_ms,
          PAGE, page_us, page_p99_us, list_us, list_p99_us,
          PAGE, scan_ms, SCAN_RUNS, half_bytes);

  kv_index_free (index);
  entries_free (entries, n_keys);
}

/* The structure the index replaces, for comparison. */
static void
measure_gtree (const guint *order,
               guint        n_keys)
{
  KvEntry **entries = entries_new (order, n_keys);
  GTree *tree;
  gsize rss_before, rss_after;
  gint64 start;
  double build_ms;

  rss_before = resident_bytes ();
  start = now_ns ();
  tree = g_tree_new_full (compare_entries, NULL, NULL, NULL);
  for (guint i = 0; i < n_keys; i++)
    g_tree_insert (tree, entries[order[i]], entries[order[i]]);
  build_ms = (now_ns () - start) / 1e6;
  rss_after = resident_bytes ();

  printf ("GTree in random order: %.2f bytes per key by resident memory; built in %.0f ms\n",
          (double) (rss_after - rss_before) / n_keys, build_ms);

  g_tree_unref (tree);
  entries_free (entries, n_keys);
}

int
main (int   argc,
      char *argv[])
{
  guint n_keys = argc > 1 ? (guint) g_ascii_strtoull (argv[1], NULL, 10) : 1000000;
  g_autoptr(GRand) rand = g_rand_new_with_seed (42);
  g_autofree guint *order = g_new (guint, n_keys);

  for (guint i = 0; i < n_keys; i++)
    order[i] = i;

  printf ("%u keys of 16 bytes, values of %d bytes\n", n_keys, VALUE_SIZE);
  measure_index ("in key order", order, n_keys, rand);

  for (guint i = 0; i < n_keys; i++)
    order[i] = i;
  shuffle (order, n_keys, rand);
  measure_index ("in random order", order, n_keys, rand);

  shuffle (order, n_keys, rand);
  measure_gtree (order, n_keys);

  return 0;
}
