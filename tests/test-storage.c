/* test-storage.c: the KvStorage contract, run against every storage type
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "storage/kv-map-storage.h"

typedef struct
{
  KvStorage *storage;
} Fixture;

/* The test's data is the GType of the storage under test: every
 * implementation passes the same contract. */
static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  GType type = GPOINTER_TO_SIZE (user_data);

  fixture->storage = g_object_new (type, NULL);
  g_assert_true (KV_IS_STORAGE (fixture->storage));
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_assert_finalize_object (fixture->storage);
}

static void
assert_value (KvStorage  *storage,
              const char *key,
              const void *expected,
              gsize       expected_len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvEntry) entry = kv_storage_get (storage, key, NULL, &error);
  g_autoptr(GBytes) value = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (entry);
  value = kv_entry_get_value (entry);
  g_assert_cmpmem (g_bytes_get_data (value, NULL), g_bytes_get_size (value),
                   expected, expected_len);
}

static KvEntry *
set_string (KvStorage  *storage,
            const char *key,
            const char *value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_bytes_new (value, strlen (value));
  KvEntry *entry = kv_storage_set (storage, key, bytes, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (entry);
  return entry;
}

static void
test_set_get (Fixture       *fixture,
              gconstpointer  user_data)
{
  g_autoptr(KvEntry) entry = NULL;
  gsize len;

  g_test_summary ("A stored value is returned as it was stored, with its key");

  entry = set_string (fixture->storage, "kenya:capital", "Nairobi");
  g_assert_cmpmem (kv_entry_peek_key (entry, &len), len, "kenya:capital", 13);
  assert_value (fixture->storage, "kenya:capital", "Nairobi", 7);
}

static void
test_overwrite (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autoptr(KvEntry) first = NULL;
  g_autoptr(KvEntry) second = NULL;
  gconstpointer old_value;
  gsize old_len;

  g_test_summary ("A second set replaces the value and takes a later revision");

  first = set_string (fixture->storage, "tanzania:capital", "Dar es Salaam");
  second = set_string (fixture->storage, "tanzania:capital", "Dodoma");
  assert_value (fixture->storage, "tanzania:capital", "Dodoma", 6);
  g_assert_cmpuint (kv_entry_get_revision (second), >, kv_entry_get_revision (first));

  /* The old entry stays valid for whoever still holds it. */
  assert_value (fixture->storage, "tanzania:capital", "Dodoma", 6);
  old_value = kv_entry_peek_value (first, &old_len);
  g_assert_cmpmem (old_value, old_len, "Dar es Salaam", 13);
}

static void
test_get_missing (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvEntry) entry = NULL;

  g_test_summary ("Getting an absent key fails with NOT_FOUND");

  entry = kv_storage_get (fixture->storage, "nowhere", NULL, &error);
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_NOT_FOUND);
  g_assert_null (entry);
}

static void
test_delete (Fixture       *fixture,
             gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvEntry) entry = NULL;

  g_test_summary ("Delete removes a key, and deleting an absent key succeeds");

  g_clear_pointer (&entry, kv_entry_unref);
  entry = set_string (fixture->storage, "uganda:capital", "Kampala");
  g_assert_true (kv_storage_delete (fixture->storage, "uganda:capital", NULL, &error));
  g_assert_no_error (error);
  g_clear_pointer (&entry, kv_entry_unref);

  entry = kv_storage_get (fixture->storage, "uganda:capital", NULL, &error);
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (kv_storage_delete (fixture->storage, "uganda:capital", NULL, &error));
  g_assert_no_error (error);
}

static void
test_binary (Fixture       *fixture,
             gconstpointer  user_data)
{
  static const guint8 value[] = { 0, 1, 0xff, 0, '\n', 0x80, 0 };
  g_autoptr(GBytes) bytes = g_bytes_new_static (value, sizeof value);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvEntry) entry = NULL;

  g_test_summary ("Values with NUL bytes and high bytes round-trip exactly");

  entry = kv_storage_set (fixture->storage, "bin", bytes, NULL, &error);
  g_assert_no_error (error);
  assert_value (fixture->storage, "bin", value, sizeof value);
}

static void
test_keys_are_distinct (Fixture       *fixture,
                        gconstpointer  user_data)
{
  const char *keys[] = { "a", "a/", "a0", "ab", "A", "a ", "é" };

  g_test_summary ("Keys that differ in any byte hold separate values");

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    kv_entry_unref (set_string (fixture->storage, keys[i], keys[i]));
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    assert_value (fixture->storage, keys[i], keys[i], strlen (keys[i]));
}

static void
test_empty_key (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_bytes_new_static ("x", 1);
  g_autoptr(KvEntry) entry = NULL;

  g_test_summary ("The empty key is refused with INVALID_ARGUMENT");

  entry = kv_storage_set (fixture->storage, "", bytes, NULL, &error);
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_INVALID_ARGUMENT);
  g_assert_null (entry);
}

static void
test_conditions (Fixture       *fixture,
                 gconstpointer  user_data)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static ("v", 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvEntry) first = NULL;
  g_autoptr(KvEntry) second = NULL;
  g_autoptr(KvEntry) refused = NULL;
  KvCondition create_only = { .if_none_match = { .kind = KV_MATCH_ANY } };
  KvCondition must_exist = { .if_match = { .kind = KV_MATCH_ANY } };
  KvCondition stale = { 0 };
  KvSetOptions options = { NULL, KV_TTL_NONE, 0, &create_only };
  KvStorageInfo info;

  g_test_summary ("Preconditions are checked against the live entry; a failed one "
                  "changes nothing and takes no revision");

  first = kv_storage_set (fixture->storage, "k", bytes, &options, &error);
  g_assert_no_error (error);
  refused = kv_storage_set (fixture->storage, "k", bytes, &options, &error);
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_PRECONDITION_FAILED);
  g_assert_null (refused);
  g_clear_error (&error);

  g_assert_true (kv_match_parse (&stale.if_match, "\"12\", \"13\""));
  g_assert_false (kv_storage_delete (fixture->storage, "k", &stale, &error));
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_PRECONDITION_FAILED);
  g_clear_error (&error);

  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (info.revision, ==, kv_entry_get_revision (first));
  g_assert_cmpuint (info.keys, ==, 1);

  options.condition = &must_exist;
  second = kv_storage_set (fixture->storage, "k", bytes, &options, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (kv_entry_get_revision (second), ==, kv_entry_get_revision (first) + 1);

  g_assert_true (kv_storage_delete (fixture->storage, "k", &must_exist, &error));
  g_assert_no_error (error);
  g_assert_false (kv_storage_delete (fixture->storage, "k", &must_exist, &error));
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_PRECONDITION_FAILED);
}

static void
test_match_parse (void)
{
  KvMatch match;

  g_test_summary ("If-Match and If-None-Match values parse as RFC 9110 entity-tag lists");

  g_assert_true (kv_match_parse (&match, " * "));
  g_assert_cmpint (match.kind, ==, KV_MATCH_ANY);
  g_assert_true (kv_match_parse (&match, "\"1\",W/\"2\" , \"x\", \"\""));
  g_assert_cmpint (match.kind, ==, KV_MATCH_LIST);
  g_assert_cmpuint (match.n_revisions, ==, 2);
  g_assert_true (kv_match_contains (&match, 1, FALSE));
  g_assert_false (kv_match_contains (&match, 2, FALSE));
  g_assert_true (kv_match_contains (&match, 2, TRUE));
  g_assert_false (kv_match_contains (&match, 3, TRUE));

  g_assert_false (kv_match_parse (&match, "1"));
  g_assert_false (kv_match_parse (&match, "\"1"));
  g_assert_false (kv_match_parse (&match, "\"1\" \"2\""));
  g_assert_false (kv_match_parse (&match, "*, \"1\""));
}

static void
test_ttl (Fixture       *fixture,
          gconstpointer  user_data)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static ("v", 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvEntry) entry = NULL;
  g_autoptr(KvEntry) kept = NULL;
  g_autoptr(KvEntry) gone = NULL;
  KvSetOptions ttl = { NULL, KV_TTL_SET, 150 * 1000, NULL };
  KvSetOptions keep = { NULL, KV_TTL_KEEP, 0, NULL };
  KvStorageInfo info;
  gint64 expires_at, kept_expires_at, deadline;

  g_test_summary ("An entry with a TTL reads as absent once it expires, keepttl keeps the "
                  "deadline, and expiry reclaims the entry and counts it");

  entry = kv_storage_set (fixture->storage, "k", bytes, &ttl, &error);
  g_assert_no_error (error);
  g_clear_pointer (&entry, kv_entry_unref);
  entry = kv_storage_get (fixture->storage, "k", &expires_at, &error);
  g_assert_no_error (error);
  g_assert_cmpint (expires_at, >, g_get_real_time ());
  g_assert_cmpint (expires_at, <=, g_get_real_time () + 150 * 1000);

  kept = kv_storage_set (fixture->storage, "k", bytes, &keep, &error);
  g_assert_no_error (error);
  g_clear_pointer (&kept, kv_entry_unref);
  kept = kv_storage_get (fixture->storage, "k", &kept_expires_at, &error);
  g_assert_no_error (error);
  /* The same monotonic deadline, seen through the wall clock. */
  g_assert_cmpint (ABS (kept_expires_at - expires_at), <, 50 * 1000);

  g_usleep (200 * 1000);
  gone = kv_storage_get (fixture->storage, "k", NULL, &error);
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_NOT_FOUND);
  g_assert_null (gone);

  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  do
    {
      kv_map_storage_expire (KV_MAP_STORAGE (fixture->storage), 64);
      kv_storage_get_info (fixture->storage, &info);
    }
  while (info.keys != 0 && g_get_monotonic_time () < deadline);

  g_assert_cmpuint (info.keys, ==, 0);
  g_assert_cmpuint (info.expired, ==, 1);
  g_assert_cmpuint (info.value_bytes, ==, 0);
  /* Two sets and one expiry: three writes. */
  g_assert_cmpuint (info.revision, ==, 3);
}

static void
test_expire_batches (Fixture       *fixture,
                     gconstpointer  user_data)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static ("v", 1);
  KvSetOptions ttl = { NULL, KV_TTL_SET, 1000, NULL };
  KvStorageInfo info;
  guint reclaimed = 0;

  g_test_summary ("Expiry reclaims at most the batch size per call");

  for (guint i = 0; i < 200; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);
      kv_entry_unref (kv_storage_set (fixture->storage, key, bytes, &ttl, NULL));
    }
  g_usleep (5 * 1000);

  for (guint n; (n = kv_map_storage_expire (KV_MAP_STORAGE (fixture->storage), 64)) > 0;)
    {
      g_assert_cmpuint (n, <=, 64);
      reclaimed += n;
    }
  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (info.keys, ==, 0);
  g_assert_cmpuint (info.expired, ==, 200);
  /* The sweeper thread may have taken some first. */
  g_assert_cmpuint (reclaimed, <=, 200);
}

static void
test_list (Fixture       *fixture,
           gconstpointer  user_data)
{
  const char *keys[] = { "b", "a0", "a", "ab", "a/", "A", "é", "a/b" };
  g_autoptr(GPtrArray) page1 = NULL;
  g_autoptr(GPtrArray) page2 = NULL;
  g_autoptr(GPtrArray) all = NULL;
  gboolean more;

  g_test_summary ("Listing returns keys in byte order, after a key, up to a limit");

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    kv_entry_unref (set_string (fixture->storage, keys[i], "v"));

  page1 = kv_storage_list (fixture->storage, "a", NULL, 3, &more);
  g_assert_true (more);
  g_assert_cmpuint (page1->len, ==, 3);
  g_assert_cmpstr (g_ptr_array_index (page1, 0), ==, "a");
  g_assert_cmpstr (g_ptr_array_index (page1, 1), ==, "a/");
  g_assert_cmpstr (g_ptr_array_index (page1, 2), ==, "a/b");

  page2 = kv_storage_list (fixture->storage, "a", "a/b", 3, &more);
  g_assert_false (more);
  g_assert_cmpuint (page2->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (page2, 0), ==, "a0");
  g_assert_cmpstr (g_ptr_array_index (page2, 1), ==, "ab");

  all = kv_storage_list (fixture->storage, NULL, NULL, 100, &more);
  g_assert_false (more);
  g_assert_cmpuint (all->len, ==, G_N_ELEMENTS (keys));
  g_assert_cmpstr (g_ptr_array_index (all, 0), ==, "A");
  g_assert_cmpstr (g_ptr_array_index (all, all->len - 1), ==, "é");
}

/* Concurrency: every thread writes values that name the writer and a
 * sequence number; a reader must only ever see a value some writer wrote. */
#define N_THREADS 8
#define N_KEYS 4
#define N_ROUNDS 20000

typedef struct
{
  KvStorage *storage;
  guint id;
  guint bad_reads;
} Worker;

static gpointer
worker_run (gpointer data)
{
  Worker *w = data;
  GRand *rand = g_rand_new_with_seed (w->id);

  for (guint i = 0; i < N_ROUNDS; i++)
    {
      char key[16];
      guint op = g_rand_int_range (rand, 0, 10);

      g_snprintf (key, sizeof key, "k%d", g_rand_int_range (rand, 0, N_KEYS));

      if (op < 4)
        {
          g_autofree char *value = g_strdup_printf ("w%u:%u:%s", w->id, i, key);
          g_autoptr(GBytes) bytes = g_bytes_new_take (value, strlen (value));
          g_autoptr(KvEntry) entry = kv_storage_set (w->storage, key, bytes, NULL, NULL);

          g_steal_pointer (&value);
          g_assert_nonnull (entry);
        }
      else if (op < 9)
        {
          g_autoptr(KvEntry) entry = kv_storage_get (w->storage, key, NULL, NULL);
          g_autofree char *value = NULL;
          guint writer, seq;
          char suffix[16];
          gsize len;

          if (entry == NULL)
            continue;

          value = g_strndup (kv_entry_peek_value (entry, &len), kv_entry_get_value_size (entry));
          if (sscanf (value, "w%u:%u:%15s", &writer, &seq, suffix) != 3 ||
              writer >= N_THREADS || seq >= N_ROUNDS || strcmp (suffix, key) != 0)
            w->bad_reads++;
        }
      else
        g_assert_true (kv_storage_delete (w->storage, key, NULL, NULL));
    }

  g_rand_free (rand);
  return NULL;
}

static void
test_concurrency (Fixture       *fixture,
                  gconstpointer  user_data)
{
  Worker workers[N_THREADS];
  GThread *threads[N_THREADS];

  g_test_summary ("Eight threads mixing set, get and delete on shared keys only "
                  "ever read values that some thread wrote to that key");

  for (guint i = 0; i < N_THREADS; i++)
    {
      workers[i] = (Worker) { fixture->storage, i, 0 };
      threads[i] = g_thread_new ("worker", worker_run, &workers[i]);
    }
  for (guint i = 0; i < N_THREADS; i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpuint (workers[i].bad_reads, ==, 0);
    }
}

int
main (int   argc,
      char *argv[])
{
  GType types[1];

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  types[0] = KV_TYPE_MAP_STORAGE;

  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    {
      gconstpointer type = GSIZE_TO_POINTER (types[i]);
      const char *name = g_type_name (types[i]);

#define ADD(path, func) \
  G_STMT_START { \
    g_autofree char *test_path = g_strdup_printf ("/kv/storage/%s/%s", name, path); \
    g_test_add (test_path, Fixture, type, fixture_setup, func, fixture_teardown); \
  } G_STMT_END
      ADD ("set-get", test_set_get);
      ADD ("overwrite", test_overwrite);
      ADD ("get-missing", test_get_missing);
      ADD ("delete", test_delete);
      ADD ("binary", test_binary);
      ADD ("keys-are-distinct", test_keys_are_distinct);
      ADD ("empty-key", test_empty_key);
      ADD ("conditions", test_conditions);
      ADD ("ttl", test_ttl);
      ADD ("list", test_list);
      ADD ("concurrency", test_concurrency);
#undef ADD
    }

  /* What only the in-memory store has. */
  g_test_add ("/kv/storage/KvMapStorage/expire-batches", Fixture,
              GSIZE_TO_POINTER (KV_TYPE_MAP_STORAGE), fixture_setup, test_expire_batches,
              fixture_teardown);
  g_test_add_func ("/kv/storage/match-parse", test_match_parse);

  return g_test_run ();
}
