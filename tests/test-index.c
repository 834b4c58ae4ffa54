/* test-index.c: KvIndex keeps entries in key order through any sequence
 * of insertions, replacements and removals
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "storage/kv-index.h"

/* The index's share of the store's memory budget. Leaves of 253 pointers
 * in 2040 bytes cost a little over 8 bytes a key when full; keys in random
 * order must leave them most of the way full. */
#define FULL_BYTES_PER_KEY 8.3
#define RANDOM_BYTES_PER_KEY 10.0

static KvEntry *
entry_new (const char *key,
           gsize       key_len)
{
  g_autoptr(GError) error = NULL;
  KvEntry *entry = kv_entry_new (key, key_len, NULL, 0, NULL, 0, &error);

  g_assert_no_error (error);
  g_assert_nonnull (entry);
  return entry;
}

/* Keys that sort as their numbers do. */
static KvEntry *
entry_new_number (guint n)
{
  g_autofree char *key = g_strdup_printf ("key:%08u", n);

  return entry_new (key, strlen (key));
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
assert_key (const KvEntry *entry,
            const char    *expected,
            gsize          expected_len)
{
  gsize len;
  const char *key;

  g_assert_nonnull (entry);
  key = kv_entry_peek_key (entry, &len);
  g_assert_cmpmem (key, len, expected, expected_len);
}

/* Iterates from @start and expects the keys of @expected, in order, then
 * the end. */
static void
assert_iter (KvIndex            *index,
             const char         *start,
             gboolean            inclusive,
             const char * const *expected)
{
  KvIndexIter iter;

  kv_index_iter_init_after (&iter, index, start, start != NULL ? strlen (start) : 0, inclusive);
  for (gsize i = 0; expected[i] != NULL; i++)
    assert_key (kv_index_iter_next (&iter), expected[i], strlen (expected[i]));
  g_assert_null (kv_index_iter_next (&iter));
  g_assert_null (kv_index_iter_next (&iter));
}

/* The index holds exactly the entries of @reference, in its order. */
static void
assert_same (KvIndex *index,
             GTree   *reference)
{
  KvIndexIter iter;
  GTreeNode *node;

  g_assert_true (kv_index_check (index));
  g_assert_cmpuint (kv_index_get_size (index), ==, g_tree_nnodes (reference));

  kv_index_iter_init_after (&iter, index, NULL, 0, TRUE);
  for (node = g_tree_node_first (reference); node != NULL; node = g_tree_node_next (node))
    g_assert_true (kv_index_iter_next (&iter) == g_tree_node_key (node));
  g_assert_null (kv_index_iter_next (&iter));
}

static void
test_empty (void)
{
  g_autoptr(KvIndex) index = kv_index_new ();
  const char *none[] = { NULL };

  g_test_summary ("An empty index has no entries from anywhere, and costs one node");

  g_assert_cmpuint (kv_index_get_size (index), ==, 0);
  g_assert_cmpuint (kv_index_get_memory (index), >, 0);
  g_assert_cmpuint (kv_index_get_memory (index), <=, 4096);
  g_assert_true (kv_index_check (index));
  assert_iter (index, NULL, TRUE, none);
  assert_iter (index, NULL, FALSE, none);
  assert_iter (index, "", TRUE, none);
  assert_iter (index, "a", FALSE, none);
  assert_iter (index, "\xff", TRUE, none);
}

static void
test_one_key (void)
{
  g_autoptr(KvEntry) entry = entry_new ("m", 1);
  g_autoptr(KvEntry) again = entry_new ("m", 1);
  g_autoptr(KvIndex) index = kv_index_new ();
  const char *m[] = { "m", NULL };
  const char *none[] = { NULL };
  KvIndexIter iter;

  g_test_summary ("One key is found from before it and at it, inclusive, and not after it");

  kv_index_insert (index, entry);
  g_assert_cmpuint (kv_index_get_size (index), ==, 1);
  g_assert_true (kv_index_check (index));

  assert_iter (index, NULL, FALSE, m);
  assert_iter (index, "", FALSE, m);
  assert_iter (index, "a", FALSE, m);
  assert_iter (index, "m", TRUE, m);
  assert_iter (index, "m", FALSE, none);
  assert_iter (index, "m\x01", TRUE, none);
  assert_iter (index, "z", TRUE, none);

  kv_index_replace (index, entry, again);
  kv_index_iter_init_after (&iter, index, "m", 1, TRUE);
  g_assert_true (kv_index_iter_next (&iter) == again);

  kv_index_remove (index, again);
  g_assert_cmpuint (kv_index_get_size (index), ==, 0);
  g_assert_true (kv_index_check (index));
  assert_iter (index, NULL, TRUE, none);
}

static void
insert_keys (KvIndex            *index,
             GPtrArray          *entries,
             const char * const *keys)
{
  for (gsize i = 0; keys[i] != NULL; i++)
    {
      KvEntry *entry = entry_new (keys[i], strlen (keys[i]));

      g_ptr_array_add (entries, entry);
      kv_index_insert (index, entry);
    }
  g_assert_true (kv_index_check (index));
}

static void
test_prefixes (void)
{
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) kv_entry_unref);
  g_autoptr(KvIndex) index = kv_index_new ();
  const char *keys[] = { "abc", "b", "ab", "a", "aa", "abcd", "aaa", NULL };
  const char *all[] = { "a", "aa", "aaa", "ab", "abc", "abcd", "b", NULL };
  const char *after_a[] = { "aa", "aaa", "ab", "abc", "abcd", "b", NULL };
  const char *from_ab[] = { "ab", "abc", "abcd", "b", NULL };
  const char *after_abc[] = { "abcd", "b", NULL };
  const char *after_abcd[] = { "b", NULL };

  g_test_summary ("A key sorts before the keys it is a prefix of, and after shorter ones");

  insert_keys (index, entries, keys);
  assert_iter (index, NULL, TRUE, all);
  assert_iter (index, "a", TRUE, all);
  assert_iter (index, "a", FALSE, after_a);
  assert_iter (index, "aab", TRUE, from_ab);
  assert_iter (index, "ab", TRUE, from_ab);
  assert_iter (index, "aaaa", FALSE, from_ab);
  assert_iter (index, "abc", FALSE, after_abc);
  assert_iter (index, "abcd", FALSE, after_abcd);
  assert_iter (index, "abcc", FALSE, after_abc);
}

static void
test_binary_order (void)
{
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) kv_entry_unref);
  g_autoptr(KvIndex) index = kv_index_new ();
  const char *keys[] = { "\xff", "\x80", "z", "\x01", "\x7f", "\xff\xff", "\xc3\xa9", "\x80\x01", NULL };
  const char *all[] = { "\x01", "z", "\x7f", "\x80", "\x80\x01", "\xc3\xa9", "\xff", "\xff\xff", NULL };
  const char *after_7f[] = { "\x80", "\x80\x01", "\xc3\xa9", "\xff", "\xff\xff", NULL };
  const char *after_ff[] = { "\xff\xff", NULL };

  g_test_summary ("Bytes from 0x80 up sort after ASCII, as unsigned bytes");

  insert_keys (index, entries, keys);
  assert_iter (index, NULL, TRUE, all);
  assert_iter (index, "\x7f", FALSE, after_7f);
  assert_iter (index, "\x7f\xff", TRUE, after_7f);
  assert_iter (index, "\xff", FALSE, after_ff);
}

typedef enum
{
  ORDER_ASCENDING,
  ORDER_DESCENDING,
  ORDER_RANDOM,
} Order;

/* The numbers below @n in @order, drawn from @rand when random. */
static guint *
numbers_new (guint  n,
             Order  order,
             GRand *rand)
{
  guint *numbers = g_new (guint, n);

  for (guint i = 0; i < n; i++)
    numbers[i] = order == ORDER_DESCENDING ? n - 1 - i : i;
  if (order == ORDER_RANDOM)
    for (guint i = n - 1; i > 0; i--)
      {
        guint j = g_rand_int_range (rand, 0, i + 1);
        guint tmp = numbers[i];

        numbers[i] = numbers[j];
        numbers[j] = tmp;
      }

  return numbers;
}

typedef struct
{
  Order insert_order;
  Order remove_order;
  double max_bytes_per_key;
} LoadTest;

static const LoadTest load_ascending = { ORDER_ASCENDING, ORDER_ASCENDING, FULL_BYTES_PER_KEY };
static const LoadTest load_descending = { ORDER_DESCENDING, ORDER_DESCENDING, FULL_BYTES_PER_KEY };
static const LoadTest load_random = { ORDER_RANDOM, ORDER_RANDOM, RANDOM_BYTES_PER_KEY };

#define LOAD_KEYS 100000
#define LOAD_CHECK_EVERY 5000

static void
test_load (gconstpointer data)
{
  const LoadTest *load = data;
  g_autoptr(GRand) rand = g_rand_new_with_seed (2024);
  g_autoptr(GPtrArray) entries = g_ptr_array_new_full (LOAD_KEYS, (GDestroyNotify) kv_entry_unref);
  g_autoptr(KvIndex) index = kv_index_new ();
  g_autoptr(KvIndex) empty = kv_index_new ();
  g_autofree guint *inserts = numbers_new (LOAD_KEYS, load->insert_order, rand);
  g_autofree guint *removals = numbers_new (LOAD_KEYS, load->remove_order, rand);
  double bytes_per_key;
  KvIndexIter iter;

  g_test_summary ("Bulk loads fill the leaves, iterate in order, and empty out to one leaf");

  for (guint i = 0; i < LOAD_KEYS; i++)
    g_ptr_array_add (entries, entry_new_number (i));

  for (guint i = 0; i < LOAD_KEYS; i++)
    kv_index_insert (index, g_ptr_array_index (entries, inserts[i]));
  g_assert_true (kv_index_check (index));
  g_assert_cmpuint (kv_index_get_size (index), ==, LOAD_KEYS);

  bytes_per_key = (double) kv_index_get_memory (index) / LOAD_KEYS;
  g_test_message ("%.2f bytes per key", bytes_per_key);
  g_assert_cmpfloat (bytes_per_key, <=, load->max_bytes_per_key);

  kv_index_iter_init_after (&iter, index, NULL, 0, TRUE);
  for (guint i = 0; i < LOAD_KEYS; i++)
    g_assert_true (kv_index_iter_next (&iter) == g_ptr_array_index (entries, i));
  g_assert_null (kv_index_iter_next (&iter));

  /* From each key, exclusive and inclusive, in steps that cross leaves. */
  for (guint i = 0; i < LOAD_KEYS; i += 97)
    {
      gsize len;
      const char *key = kv_entry_peek_key (g_ptr_array_index (entries, i), &len);

      kv_index_iter_init_after (&iter, index, key, len, TRUE);
      g_assert_true (kv_index_iter_next (&iter) == g_ptr_array_index (entries, i));
      kv_index_iter_init_after (&iter, index, key, len, FALSE);
      g_assert_true (kv_index_iter_next (&iter) ==
                     (i + 1 < LOAD_KEYS ? g_ptr_array_index (entries, i + 1) : NULL));
    }

  for (guint i = 0; i < LOAD_KEYS; i++)
    {
      kv_index_remove (index, g_ptr_array_index (entries, removals[i]));
      if (i % LOAD_CHECK_EVERY == 0)
        g_assert_true (kv_index_check (index));
    }
  g_assert_true (kv_index_check (index));
  g_assert_cmpuint (kv_index_get_size (index), ==, 0);
  kv_index_iter_init_after (&iter, index, NULL, 0, TRUE);
  g_assert_null (kv_index_iter_next (&iter));
  g_assert_cmpuint (kv_index_get_memory (index), ==, kv_index_get_memory (empty));
}

static void
test_replace (void)
{
  g_autoptr(GPtrArray) entries = g_ptr_array_new_full (LOAD_KEYS, (GDestroyNotify) kv_entry_unref);
  g_autoptr(KvIndex) index = kv_index_new ();
  KvIndexIter iter;

  g_test_summary ("Replacing every entry, separators included, leaves no pointer to the old ones");

  for (guint i = 0; i < LOAD_KEYS; i++)
    {
      g_ptr_array_add (entries, entry_new_number (i));
      kv_index_insert (index, g_ptr_array_index (entries, i));
    }

  for (guint i = 0; i < LOAD_KEYS; i++)
    {
      KvEntry *old_entry = g_ptr_array_index (entries, i);
      gsize len;
      const char *key = kv_entry_peek_key (old_entry, &len);
      KvEntry *new_entry = entry_new (key, len);

      kv_index_replace (index, old_entry, new_entry);
      /* The old entry is gone: sanitizers and MALLOC_CHECK_ catch any use. */
      g_ptr_array_index (entries, i) = new_entry;
      kv_entry_unref (old_entry);
    }

  g_assert_true (kv_index_check (index));
  kv_index_iter_init_after (&iter, index, NULL, 0, TRUE);
  for (guint i = 0; i < LOAD_KEYS; i++)
    g_assert_true (kv_index_iter_next (&iter) == g_ptr_array_index (entries, i));
  g_assert_null (kv_index_iter_next (&iter));
}

/* Three full leaves of even numbers. */
#define LONE_LEAVES 3
#define LONE_KEYS (LONE_LEAVES * 253)

static void
test_lone_entry (gconstpointer data)
{
  gboolean shrink_right = GPOINTER_TO_INT (data);
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) kv_entry_unref);
  g_autoptr(KvEntry) lone = entry_new_number (2 * 252 + 1);
  g_autoptr(KvIndex) index = kv_index_new ();
  KvIndexIter iter;
  gsize memory, len;
  const char *key;

  g_test_summary ("Removing the only entry of a leaf between two others hands its separator on");

  for (guint i = 0; i < LONE_KEYS; i++)
    {
      g_ptr_array_add (entries, entry_new_number (2 * i));
      kv_index_insert (index, g_ptr_array_index (entries, i));
    }

  /* After the first leaf's last key: the first leaf is full, and so is the
   * second, so the new key gets a leaf of its own. */
  memory = kv_index_get_memory (index);
  kv_index_insert (index, lone);
  g_assert_true (kv_index_check (index));
  g_assert_cmpuint (kv_index_get_memory (index), >, memory);

  /* With the right leaf smaller, the emptied leaf merges with it rather
   * than with the left one. */
  if (shrink_right)
    for (guint i = 0; i < 10; i++)
      {
        kv_index_remove (index, g_ptr_array_index (entries, 253 + 1));
        g_ptr_array_remove_index (entries, 253 + 1);
      }

  kv_index_remove (index, lone);
  g_assert_cmpuint (kv_index_get_memory (index), ==, memory);
  g_assert_true (kv_index_check (index));

  key = kv_entry_peek_key (g_ptr_array_index (entries, 252), &len);
  kv_index_iter_init_after (&iter, index, key, len, FALSE);
  g_assert_true (kv_index_iter_next (&iter) == g_ptr_array_index (entries, 253));
  kv_index_iter_init_after (&iter, index, NULL, 0, TRUE);
  for (guint i = 0; i < entries->len; i++)
    g_assert_true (kv_index_iter_next (&iter) == g_ptr_array_index (entries, i));
  g_assert_null (kv_index_iter_next (&iter));
}

/* A few bytes, so that random keys share prefixes, repeat, and have bytes
 * on both sides of 0x80. */
static const char key_bytes[] = { 'a', 'b', 'c', '\x01', '\x7f', '\x80', '\xfe', '\xff' };
#define RANDOM_KEY_MAX 12

static gsize
random_key (GRand *rand,
            char  *buffer)
{
  gsize len = g_rand_int_range (rand, 1, RANDOM_KEY_MAX + 1);

  for (gsize i = 0; i < len; i++)
    buffer[i] = key_bytes[g_rand_int_range (rand, 0, G_N_ELEMENTS (key_bytes))];

  return len;
}

/* An entry of @reference near a random key, or NULL if it is empty. */
static KvEntry *
pick_entry (GTree *reference,
            GRand *rand)
{
  char key[RANDOM_KEY_MAX];
  gsize len = random_key (rand, key);
  g_autoptr(KvEntry) probe = entry_new (key, len);
  GTreeNode *node = g_tree_lower_bound (reference, probe);

  if (node == NULL)
    node = g_tree_node_first (reference);
  return node != NULL ? g_tree_node_key (node) : NULL;
}

typedef struct
{
  guint ops;        /* 0: until the index is empty */
  guint insert;     /* percentages; the rest are iterations */
  guint replace;
  guint remove;
} Phase;

static const Phase phases[] = {
  /* Grows past 50,000 keys, which takes three levels and splits inner
   * nodes; then churns; then drains, which merges them. */
  { 120000, 80, 5, 5 },
  { 30000, 35, 15, 35 },
  { 0, 5, 10, 75 },
};

#define DEFAULT_SEED 20240611
#define MAX_ITER_STEPS 600
#define COMPARE_EVERY 10000

typedef struct
{
  guint inserts;
  guint replaces;
  guint removes;
  guint iterations;
} Counts;

static void
random_insert (KvIndex *index,
               GTree   *reference,
               GRand   *rand,
               Counts  *counts)
{
  char key[RANDOM_KEY_MAX];
  gsize len = random_key (rand, key);
  KvEntry *entry = entry_new (key, len);
  KvEntry *current = g_tree_lookup (reference, entry);

  /* The store replaces an existing key, and so does the test. */
  if (current != NULL)
    {
      kv_index_replace (index, current, entry);
      g_tree_replace (reference, entry, entry);
      counts->replaces++;
      return;
    }

  kv_index_insert (index, entry);
  g_tree_insert (reference, entry, entry);
  counts->inserts++;
}

static void
random_replace (KvIndex *index,
                GTree   *reference,
                GRand   *rand,
                Counts  *counts)
{
  KvEntry *current = pick_entry (reference, rand);
  KvEntry *entry;
  const char *key;
  gsize len;

  if (current == NULL)
    return;

  key = kv_entry_peek_key (current, &len);
  entry = entry_new (key, len);
  kv_index_replace (index, current, entry);
  /* Frees the current entry: the index must not point to it any more. */
  g_tree_replace (reference, entry, entry);
  counts->replaces++;
}

static void
random_remove (KvIndex *index,
               GTree   *reference,
               GRand   *rand,
               Counts  *counts)
{
  KvEntry *current = pick_entry (reference, rand);

  if (current == NULL)
    return;

  kv_index_remove (index, current);
  g_tree_remove (reference, current);
  counts->removes++;
}

/* From a random key or an existing one, inclusive or not, some steps. */
static void
random_iteration (KvIndex *index,
                  GTree   *reference,
                  GRand   *rand,
                  Counts  *counts)
{
  char buffer[RANDOM_KEY_MAX];
  g_autoptr(KvEntry) probe = NULL;
  KvEntry *existing = NULL;
  gboolean inclusive = g_rand_boolean (rand);
  guint steps = g_rand_int_range (rand, 0, MAX_ITER_STEPS);
  const char *key;
  gsize len;
  GTreeNode *node;
  KvIndexIter iter;

  if (g_rand_boolean (rand))
    existing = pick_entry (reference, rand);
  if (existing != NULL)
    key = kv_entry_peek_key (existing, &len);
  else
    {
      len = random_key (rand, buffer);
      key = buffer;
    }

  probe = entry_new (key, len);
  node = inclusive ? g_tree_lower_bound (reference, probe) : g_tree_upper_bound (reference, probe);
  kv_index_iter_init_after (&iter, index, key, len, inclusive);
  for (guint i = 0; i < steps; i++)
    {
      KvEntry *entry = kv_index_iter_next (&iter);

      g_assert_true (entry == (node != NULL ? g_tree_node_key (node) : NULL));
      if (node == NULL)
        break;
      node = g_tree_node_next (node);
    }
  counts->iterations++;
}

static guint
get_seed (void)
{
  const char *seed = g_getenv ("KV_TEST_SEED");

  return seed != NULL ? (guint) g_ascii_strtoull (seed, NULL, 10) : DEFAULT_SEED;
}

static void
test_randomized (void)
{
  guint seed = get_seed ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
  g_autoptr(GTree) reference = g_tree_new_full (compare_entries, NULL,
                                                (GDestroyNotify) kv_entry_unref, NULL);
  g_autoptr(KvIndex) index = kv_index_new ();
  Counts counts = { 0 };
  guint total = 0, most = 0;

  g_test_summary ("Random insertions, replacements, removals and iterations agree with a GTree");
  g_test_message ("seed %u (KV_TEST_SEED sets another)", seed);

  for (gsize p = 0; p < G_N_ELEMENTS (phases); p++)
    {
      const Phase *phase = &phases[p];

      for (guint i = 0; phase->ops == 0 ? g_tree_nnodes (reference) > 0 : i < phase->ops; i++)
        {
          guint roll = g_rand_int_range (rand, 0, 100);

          if (roll < phase->insert)
            random_insert (index, reference, rand, &counts);
          else if (roll < phase->insert + phase->replace)
            random_replace (index, reference, rand, &counts);
          else if (roll < phase->insert + phase->replace + phase->remove)
            random_remove (index, reference, rand, &counts);
          else
            random_iteration (index, reference, rand, &counts);

          most = MAX (most, (guint) g_tree_nnodes (reference));
          if (++total % COMPARE_EVERY == 0)
            assert_same (index, reference);
        }

      assert_same (index, reference);
      g_test_message ("phase %" G_GSIZE_FORMAT ": %d keys, %.2f index bytes per key",
                      p + 1, g_tree_nnodes (reference),
                      (double) kv_index_get_memory (index) / MAX (1, g_tree_nnodes (reference)));
    }

  g_test_message ("%u operations: %u insertions, %u replacements, %u removals, "
                  "%u iterations; at most %u keys",
                  total, counts.inserts, counts.replaces, counts.removes, counts.iterations, most);
  g_assert_cmpuint (total, >=, 100000);
  g_assert_cmpuint (kv_index_get_size (index), ==, 0);
}

static void
test_stale_iter (void)
{
  g_test_summary ("An iterator used after an insertion fails loudly instead of reading freed nodes");

  if (g_test_subprocess ())
    {
      g_autoptr(KvEntry) a = entry_new ("a", 1);
      g_autoptr(KvEntry) b = entry_new ("b", 1);
      g_autoptr(KvIndex) index = kv_index_new ();
      KvIndexIter iter;

      kv_index_insert (index, a);
      kv_index_iter_init_after (&iter, index, NULL, 0, TRUE);
      kv_index_insert (index, b);
      kv_index_iter_next (&iter);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*stamp*");
}

static void
test_duplicate (void)
{
  g_test_summary ("Inserting a key that is already in the index is a programming error");

  if (g_test_subprocess ())
    {
      g_autoptr(KvEntry) a = entry_new ("a", 1);
      g_autoptr(KvEntry) again = entry_new ("a", 1);
      g_autoptr(KvIndex) index = kv_index_new ();

      kv_index_insert (index, a);
      kv_index_insert (index, again);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*kv_index_insert*");
}

static void
test_remove_other (void)
{
  g_test_summary ("Removing an entry that is not the one indexed for its key is a programming error");

  if (g_test_subprocess ())
    {
      g_autoptr(KvEntry) a = entry_new ("a", 1);
      g_autoptr(KvEntry) other = entry_new ("a", 1);
      g_autoptr(KvIndex) index = kv_index_new ();

      kv_index_insert (index, a);
      kv_index_remove (index, other);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*kv_index_remove*");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/kv/index/empty", test_empty);
  g_test_add_func ("/kv/index/one-key", test_one_key);
  g_test_add_func ("/kv/index/prefixes", test_prefixes);
  g_test_add_func ("/kv/index/binary-order", test_binary_order);
  g_test_add_data_func ("/kv/index/load/ascending", &load_ascending, test_load);
  g_test_add_data_func ("/kv/index/load/descending", &load_descending, test_load);
  g_test_add_data_func ("/kv/index/load/random", &load_random, test_load);
  g_test_add_func ("/kv/index/replace", test_replace);
  g_test_add_data_func ("/kv/index/lone-entry/merge-left", GINT_TO_POINTER (FALSE),
                        test_lone_entry);
  g_test_add_data_func ("/kv/index/lone-entry/merge-right", GINT_TO_POINTER (TRUE),
                        test_lone_entry);
  g_test_add_func ("/kv/index/randomized", test_randomized);
  g_test_add_func ("/kv/index/misuse/stale-iter", test_stale_iter);
  g_test_add_func ("/kv/index/misuse/duplicate", test_duplicate);
  g_test_add_func ("/kv/index/misuse/remove-other", test_remove_other);

  return g_test_run ();
}
