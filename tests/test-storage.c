/* test-storage.c: the KvStorage contract, run against every storage type
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <glib/gstdio.h>

#include "storage/kv-map-storage.h"
#include "kv-test-utils.h"

typedef struct
{
  KvStorage *storage;
  char *data_dir;   /* (nullable): where a durable store lives */
} Fixture;

/* What a test runs on: every implementation passes the same contract, and
 * the in-memory store passes it again on a data directory. */
typedef struct
{
  const char *name;
  GType type;
  gboolean durable;
} Kind;

static KvStorage *
open_durable (const char *data_dir)
{
  g_autoptr(GError) error = NULL;
  /* A snapshot at every few KiB of log, so that reopening goes through
   * snapshots as well as logs. */
  KvMapStorage *storage = kv_map_storage_open (data_dir, KV_FSYNC_NO, 4096, &error);

  g_assert_no_error (error);
  return KV_STORAGE (storage);
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  user_data)
{
  const Kind *kind = user_data;

  if (kind->durable)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *base = g_dir_make_tmp ("kv-storage-XXXXXX", &error);

      g_assert_no_error (error);
      fixture->data_dir = g_build_filename (base, "store", NULL);
      fixture->storage = open_durable (fixture->data_dir);
    }
  else
    fixture->storage = g_object_new (kind->type, NULL);
  g_assert_true (KV_IS_STORAGE (fixture->storage));
}

/* Every entry of @dump, with its revision, type and expiry, as text. */
static char *
describe_dump (KvDump *dump)
{
  GString *out = g_string_new (NULL);

  g_string_append_printf (out, "revision %" G_GUINT64_FORMAT "\n", kv_dump_get_revision (dump));
  for (guint i = 0; i < kv_dump_get_n_entries (dump); i++)
    {
      gint64 expires_at;
      KvEntry *entry = kv_dump_peek_entry (dump, i, &expires_at);
      g_autofree char *key = kv_entry_dup_key (entry);
      gsize len;
      gconstpointer value = kv_entry_peek_value (entry, &len);
      g_autofree char *hex = g_compute_checksum_for_data (G_CHECKSUM_SHA1, value, len);

      /* Deadlines go through the wall clock and back: to the 10 ms. */
      g_string_append_printf (out, "%s %s %" G_GUINT64_FORMAT " %s %" G_GINT64_FORMAT "\n", key,
                              hex, kv_entry_get_revision (entry),
                              kv_entry_get_content_type (entry), expires_at / 10000);
    }

  return g_string_free (out, FALSE);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autoptr(KvDump) dump = NULL;
  g_autoptr(KvDump) reloaded_dump = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *base = NULL;

  if (fixture->data_dir == NULL)
    {
      g_assert_finalize_object (fixture->storage);
      return;
    }

  /* Whatever the test left, a reopened store holds the same. */
  dump = kv_storage_dump (fixture->storage);
  g_assert_finalize_object (fixture->storage);
  fixture->storage = open_durable (fixture->data_dir);
  reloaded_dump = kv_storage_dump (fixture->storage);
  before = describe_dump (dump);
  after = describe_dump (reloaded_dump);
  g_assert_cmpstr (after, ==, before);
  g_assert_finalize_object (fixture->storage);

  base = g_path_get_dirname (fixture->data_dir);
  kv_test_remove_tree (base);
  g_free (fixture->data_dir);
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


static GBytes *
bytes (const char *text)
{
  return g_bytes_new (text, strlen (text));
}

static void
test_txn (Fixture       *fixture,
          gconstpointer  user_data)
{
  g_autoptr(KvTxn) txn = kv_txn_new ();
  g_autoptr(KvTxn) failing = kv_txn_new ();
  g_autoptr(KvTxnResult) result = NULL;
  g_autoptr(KvTxnResult) none = NULL;
  g_autoptr(GBytes) one = bytes ("1");
  g_autoptr(GBytes) two = bytes ("2");
  g_autoptr(GError) error = NULL;
  KvCondition absent = { .if_none_match = { .kind = KV_MATCH_ANY } };
  KvCondition stale = { .if_match = { .kind = KV_MATCH_LIST, .n_revisions = 1,
                                      .revisions = { 999 } } };
  KvSetOptions create = { NULL, KV_TTL_NONE, 0, &absent };
  KvStorageInfo info;
  guint failed = G_MAXUINT;
  guint64 revision;

  g_test_summary ("A transaction's operations apply in order at one revision, or, when a "
                  "precondition fails, not at all");

  kv_entry_unref (kv_storage_set (fixture->storage, "c", one, NULL, NULL));
  kv_storage_get_info (fixture->storage, &info);
  revision = info.revision;

  kv_txn_add_put (txn, "a", one, &create);
  kv_txn_add_put (txn, "b", two, NULL);
  kv_txn_add_get (txn, "a", NULL);
  kv_txn_add_delete (txn, "c", NULL);
  kv_txn_add_get (txn, "c", NULL);
  result = kv_storage_apply (fixture->storage, txn, &failed, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (kv_txn_result_get_revision (result), ==, revision + 1);
  g_assert_cmpuint (kv_txn_result_get_n_results (result), ==, 5);
  g_assert_cmpuint (kv_entry_get_revision (kv_txn_result_get (result, 0)->entry), ==, revision + 1);
  g_assert_cmpuint (kv_entry_get_revision (kv_txn_result_get (result, 1)->entry), ==, revision + 1);
  /* A get sees the puts before it. */
  g_assert_nonnull (kv_txn_result_get (result, 2)->entry);
  g_assert_cmpuint (kv_txn_result_get (result, 3)->n_deleted, ==, 1);
  g_assert_null (kv_txn_result_get (result, 4)->entry);
  assert_value (fixture->storage, "b", "2", 1);

  /* The first put would pass, the second precondition fails: nothing. */
  kv_txn_add_put (failing, "d", one, NULL);
  kv_txn_add_delete (failing, "b", &stale);
  kv_txn_add_put (failing, "a", two, &create);
  none = kv_storage_apply (fixture->storage, failing, &failed, &error);
  g_assert_null (none);
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_PRECONDITION_FAILED);
  g_assert_cmpuint (failed, ==, 1);
  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (info.revision, ==, revision + 1);
  g_assert_cmpuint (info.keys, ==, 2);
  assert_value (fixture->storage, "a", "1", 1);
}

static void
test_delete_prefix_and_clear (Fixture       *fixture,
                              gconstpointer  user_data)
{
  const char *keys[] = { "a", "a/", "a/b", "a/c", "ab", "b" };
  g_autoptr(GBytes) value = bytes ("v");
  g_autoptr(GError) error = NULL;
  KvStorageInfo info;
  guint64 revision = 0;

  g_test_summary ("A prefix is deleted at one revision, and so is everything by a clear");

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    kv_entry_unref (kv_storage_set (fixture->storage, keys[i], value, NULL, NULL));

  g_assert_cmpuint (kv_storage_count (fixture->storage, "a/"), ==, 3);
  g_assert_cmpuint (kv_storage_count (fixture->storage, ""), ==, 6);
  g_assert_cmpuint (kv_storage_count (fixture->storage, "zz"), ==, 0);

  g_assert_cmpuint (kv_storage_delete_prefix (fixture->storage, "a/", &revision, &error), ==, 3);
  g_assert_no_error (error);
  g_assert_cmpuint (revision, ==, G_N_ELEMENTS (keys) + 1);
  g_assert_cmpuint (kv_storage_count (fixture->storage, "a"), ==, 2);

  /* Nothing to delete: no new revision. */
  g_assert_cmpuint (kv_storage_delete_prefix (fixture->storage, "a/", &revision, &error), ==, 0);
  g_assert_cmpuint (revision, ==, G_N_ELEMENTS (keys) + 1);

  g_assert_cmpuint (kv_storage_clear (fixture->storage, &revision, &error), ==, 3);
  g_assert_no_error (error);
  g_assert_cmpuint (revision, ==, G_N_ELEMENTS (keys) + 2);
  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (info.keys, ==, 0);
  g_assert_cmpuint (info.value_bytes, ==, 0);
}


static void
on_async_done (GObject      *source,
               GAsyncResult *result,
               gpointer      data)
{
  *(GAsyncResult **) data = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

static void
test_async (Fixture       *fixture,
            gconstpointer  user_data)
{
  g_autoptr(KvTxn) txn = kv_txn_new ();
  g_autoptr(KvTxnResult) applied = NULL;
  g_autoptr(KvEntry) entry = NULL;
  g_autoptr(GPtrArray) keys = NULL;
  g_autoptr(GBytes) value = bytes ("v");
  g_autoptr(GError) error = NULL;
  GAsyncResult *apply_result = NULL, *get_result = NULL, *miss_result = NULL;
  GAsyncResult *list_result = NULL, *info_result = NULL;
  char key[] = "async-key";
  KvStorageInfo info;
  gboolean more = TRUE;

  g_test_summary ("The asynchronous calls answer in the caller's thread (the in-memory "
                  "store within the call), and copy what they are given");

  kv_txn_add_put (txn, key, value, NULL);
  kv_storage_apply_async (fixture->storage, txn, NULL, on_async_done, &apply_result);
  applied = kv_storage_apply_finish (fixture->storage, wait_result (&apply_result), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (kv_txn_result_get_revision (applied), ==, 1);

  kv_storage_get_async (fixture->storage, key, NULL, on_async_done, &get_result);
  /* The key was on the caller's stack: the call has its own copy. */
  memset (key, 'x', strlen (key));
  kv_storage_get_async (fixture->storage, "missing", NULL, on_async_done, &miss_result);
  entry = kv_storage_get_finish (fixture->storage, wait_result (&get_result), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (kv_entry_get_revision (entry), ==, 1);
  g_assert_null (kv_storage_get_finish (fixture->storage, wait_result (&miss_result), NULL,
                                        &error));
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_NOT_FOUND);

  kv_storage_list_async (fixture->storage, "async", NULL, 10, NULL, on_async_done, &list_result);
  keys = kv_storage_list_finish (fixture->storage, wait_result (&list_result), &more, NULL);
  g_assert_cmpuint (keys->len, ==, 1);
  g_assert_false (more);

  kv_storage_info_async (fixture->storage, NULL, on_async_done, &info_result);
  g_assert_true (kv_storage_info_finish (fixture->storage, wait_result (&info_result), &info,
                                         NULL));
  g_assert_cmpuint (info.keys, ==, 1);

  g_object_unref (apply_result);
  g_object_unref (get_result);
  g_object_unref (miss_result);
  g_object_unref (list_result);
  g_object_unref (info_result);
}

/* ---- The change feed ---- */

#define FEED_WRITERS 4
#define FEED_WRITES 2000

static void
assert_dump_key (KvDump     *dump,
                 guint       index,
                 gint64     *expires_at,
                 const char *key)
{
  g_autofree char *found = kv_entry_dup_key (kv_dump_peek_entry (dump, index, expires_at));

  g_assert_cmpstr (found, ==, key);
}

static void
test_dump (Fixture       *fixture,
           gconstpointer  user_data)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static ("v", 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvDump) dump = NULL;
  g_autoptr(KvDump) async_dump = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  KvSetOptions ttl = { "text/plain", KV_TTL_SET, 60 * G_USEC_PER_SEC, NULL };
  KvSetOptions gone = { NULL, KV_TTL_SET, 1, NULL };
  const char *keys[] = { "b", "a", "c/1", "c" };
  gint64 expires_at;
  KvStorageInfo info;

  g_test_summary ("A dump holds every live entry in key order with its expiry on the wall "
                  "clock, at the store's revision, and stays as it was while writes go on");

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    kv_entry_unref (kv_storage_set (fixture->storage, keys[i], bytes,
                                    i == 1 ? &ttl : NULL, &error));
  g_assert_no_error (error);
  /* Expired by the time the dump is taken: not in it. */
  kv_entry_unref (kv_storage_set (fixture->storage, "d", bytes, &gone, &error));
  g_assert_no_error (error);
  g_usleep (1000);

  dump = kv_storage_dump (fixture->storage);
  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (kv_dump_get_revision (dump), ==, info.revision);
  g_assert_cmpuint (kv_dump_get_n_entries (dump), ==, 4);
  assert_dump_key (dump, 0, &expires_at, "a");
  g_assert_cmpint (expires_at, >, g_get_real_time () + 50 * G_USEC_PER_SEC);
  g_assert_cmpint (expires_at, <=, g_get_real_time () + 60 * G_USEC_PER_SEC);
  g_assert_cmpstr (kv_entry_get_content_type (kv_dump_peek_entry (dump, 0, NULL)), ==,
                   "text/plain");
  assert_dump_key (dump, 1, &expires_at, "b");
  g_assert_cmpint (expires_at, ==, 0);
  assert_dump_key (dump, 2, NULL, "c");
  assert_dump_key (dump, 3, NULL, "c/1");

  /* Later writes do not show through. */
  g_assert_true (kv_storage_delete (fixture->storage, "a", NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (kv_dump_get_n_entries (dump), ==, 4);
  assert_dump_key (dump, 0, NULL, "a");

  kv_storage_dump_async (fixture->storage, NULL, on_async_done, &result);
  async_dump = kv_storage_dump_finish (fixture->storage, wait_result (&result), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (kv_dump_get_n_entries (async_dump), ==, 3);
  g_assert_cmpuint (kv_dump_get_revision (async_dump), ==, kv_dump_get_revision (dump) + 1);
}

typedef struct
{
  KvStorage *storage;
  GMainContext *context;
  GMainLoop *loop;
  GPtrArray *changes;   /* (element-type KvChange) */
  guint64 expected;     /* changes to wait for, in the feed's thread */
  guint64 target;       /* what the test then waits for */
  GMutex lock;
  GCond cond;
  gboolean subscribed;
  guint id;
} Feed;

static void
on_change (KvChange *change,
           gboolean  last,
           gpointer  data)
{
  Feed *feed = data;

  /* Delivered in the subscriber's own thread. */
  g_assert_true (g_main_context_is_owner (feed->context));
  g_ptr_array_add (feed->changes, kv_change_ref (change));
  if (feed->changes->len == feed->expected)
    g_main_loop_quit (feed->loop);
}

/* In the feed's thread: it may have every change already. */
static gboolean
wait_for_target (gpointer data)
{
  Feed *feed = data;

  feed->expected = feed->target;
  if (feed->changes->len >= feed->expected)
    g_main_loop_quit (feed->loop);
  return G_SOURCE_REMOVE;
}

static gpointer
feed_thread (gpointer data)
{
  Feed *feed = data;

  g_main_context_push_thread_default (feed->context);
  feed->id = kv_storage_subscribe (feed->storage, NULL, NULL, on_change, feed, NULL, NULL, NULL);
  g_mutex_lock (&feed->lock);
  feed->subscribed = TRUE;
  g_cond_signal (&feed->cond);
  g_mutex_unlock (&feed->lock);

  g_main_loop_run (feed->loop);
  kv_storage_unsubscribe (feed->storage, feed->id);
  g_main_context_pop_thread_default (feed->context);
  return NULL;
}

typedef struct
{
  KvStorage *storage;
  guint index;
} FeedWriter;

static gpointer
feed_writer (gpointer data)
{
  FeedWriter *w = data;
  g_autoptr(GBytes) value = bytes ("v");
  KvSetOptions short_ttl = { NULL, KV_TTL_SET, 1000, NULL };

  for (guint i = 0; i < FEED_WRITES; i++)
    {
      g_autofree char *key = g_strdup_printf ("w%u/%u", w->index, i % 50);

      /* Puts, some with a millisecond to live for the sweeper, and deletes. */
      if (i % 5 == 4)
        g_assert_true (kv_storage_delete (w->storage, key, NULL, NULL));
      else
        kv_entry_unref (kv_storage_set (w->storage, key, value, i % 7 == 0 ? &short_ttl : NULL,
                                        NULL));
    }
  return NULL;
}

static void
test_change_feed (Fixture       *fixture,
                  gconstpointer  user_data)
{
  Feed feeds[2];
  GThread *feed_threads[2];
  FeedWriter writers[FEED_WRITERS];
  GThread *writer_threads[FEED_WRITERS];
  KvStorageInfo info;
  guint64 last = 0;
  gint64 deadline;

  g_test_summary ("Two subscribers, each in its own thread's context, receive every change "
                  "that writers on four threads and the sweeper make: complete, in revision "
                  "order, and the same for both");

  for (guint i = 0; i < G_N_ELEMENTS (feeds); i++)
    {
      feeds[i] = (Feed) { fixture->storage, g_main_context_new (), NULL,
                          g_ptr_array_new_with_free_func ((GDestroyNotify) kv_change_unref),
                          G_MAXUINT64 };
      feeds[i].loop = g_main_loop_new (feeds[i].context, FALSE);
      g_mutex_init (&feeds[i].lock);
      g_cond_init (&feeds[i].cond);
      feed_threads[i] = g_thread_new ("feed", feed_thread, &feeds[i]);
      g_mutex_lock (&feeds[i].lock);
      while (!feeds[i].subscribed)
        g_cond_wait (&feeds[i].cond, &feeds[i].lock);
      g_mutex_unlock (&feeds[i].lock);
    }

  for (guint i = 0; i < FEED_WRITERS; i++)
    {
      writers[i] = (FeedWriter) { fixture->storage, i };
      writer_threads[i] = g_thread_new ("writer", feed_writer, &writers[i]);
    }
  for (guint i = 0; i < FEED_WRITERS; i++)
    g_thread_join (writer_threads[i]);

  /* Let every key with a TTL expire, and the sweeper reclaim them. */
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  do
    {
      g_usleep (50 * 1000);
      kv_storage_get_info (fixture->storage, &info);
    }
  while (kv_storage_count (fixture->storage, "") != info.keys &&
         g_get_monotonic_time () < deadline);
  g_usleep (300 * 1000);
  kv_storage_get_info (fixture->storage, &info);

  /* Every revision is one change here: no transaction of several ops. */
  for (guint i = 0; i < G_N_ELEMENTS (feeds); i++)
    {
      feeds[i].target = info.revision;
      g_main_context_invoke (feeds[i].context, wait_for_target, &feeds[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (feeds); i++)
    g_thread_join (feed_threads[i]);

  g_assert_cmpuint (feeds[0].changes->len, ==, info.revision);
  g_assert_cmpuint (feeds[1].changes->len, ==, info.revision);
  for (guint i = 0; i < feeds[0].changes->len; i++)
    {
      KvChange *a = g_ptr_array_index (feeds[0].changes, i);
      KvChange *b = g_ptr_array_index (feeds[1].changes, i);

      g_assert_cmpuint (kv_change_get_revision (a), ==, last + 1);
      last = kv_change_get_revision (a);
      g_assert_true (a == b);
    }
  g_assert_cmpuint (info.expired, >, 0);

  for (guint i = 0; i < G_N_ELEMENTS (feeds); i++)
    {
      g_ptr_array_unref (feeds[i].changes);
      g_main_loop_unref (feeds[i].loop);
      g_main_context_unref (feeds[i].context);
      g_mutex_clear (&feeds[i].lock);
      g_cond_clear (&feeds[i].cond);
    }
}

/* ---- The history and subscriptions that start from a past revision ---- */

/* What a subscription got, one change a line: "put a 3 ." where the dot
 * marks the last change of its revision. */
typedef struct
{
  GString *log;
  guint64 last_revision;
  guint n;
  guint64 *revisions;           /* (nullable) every revision, in order */
} Collector;

static void
on_collect (KvChange *change,
            gboolean  last,
            gpointer  data)
{
  Collector *collector = data;
  static const char * const kinds[] = { "put", "delete", "expire", "clear" };
  const char *key = kv_change_get_key (change);

  g_string_append_printf (collector->log, "%s %s %" G_GUINT64_FORMAT "%s\n",
                          kinds[kv_change_get_kind (change)], key != NULL ? key : "-",
                          kv_change_get_revision (change), last ? " ." : "");
  collector->last_revision = kv_change_get_revision (change);
  if (collector->revisions != NULL)
    collector->revisions[collector->n] = kv_change_get_revision (change);
  collector->n++;
}

/* Subscribes in the test's thread, whose context the test iterates. */
static guint
collect_from (KvStorage   *storage,
              Collector   *collector,
              guint64      since,
              const char  *key,
              const char  *prefix,
              GError     **error)
{
  KvSubscribeOptions options = { since, key, prefix };

  collector->log = g_string_new (NULL);
  return kv_storage_subscribe (storage, NULL, &options, on_collect, collector, NULL, NULL, error);
}

static char *
collected (Collector *collector)
{
  while (g_main_context_iteration (g_main_context_get_thread_default (), FALSE))
    ;
  return g_string_free (g_steal_pointer (&collector->log), FALSE);
}

static void
write_history (KvStorage *storage)
{
  g_autoptr(GBytes) value = bytes ("v");
  g_autoptr(KvTxn) txn = kv_txn_new ();
  g_autoptr(KvTxnResult) result = NULL;
  KvSetOptions brief = { NULL, KV_TTL_SET, 1000, NULL };
  KvStorageInfo info;
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  kv_entry_unref (kv_storage_set (storage, "a", value, NULL, NULL));          /* 1 */
  kv_entry_unref (kv_storage_set (storage, "b", value, NULL, NULL));          /* 2 */
  kv_txn_add_put (txn, "c", value, NULL);                                     /* 3 */
  kv_txn_add_put (txn, "d/x", value, NULL);
  kv_txn_add_delete (txn, "a", NULL);
  result = kv_storage_apply (storage, txn, NULL, NULL);
  g_assert_nonnull (result);
  g_assert_true (kv_storage_delete (storage, "b", NULL, NULL));                /* 4 */
  kv_entry_unref (kv_storage_set (storage, "d/y", value, &brief, NULL));       /* 5 */
  /* 6: the sweeper, or this, expires it. */
  do
    {
      g_usleep (2000);
      kv_map_storage_expire (KV_MAP_STORAGE (storage), 10);
      kv_storage_get_info (storage, &info);
    }
  while (info.revision < 6 && g_get_monotonic_time () < deadline);
  g_assert_cmpuint (info.revision, ==, 6);
  kv_storage_clear (storage, NULL, NULL);                                     /* 7 */
}

static void
test_history (Fixture       *fixture,
              gconstpointer  user_data)
{
  g_autoptr(GBytes) value = bytes ("v");
  g_autoptr(GMainContext) context = g_main_context_new ();
  Collector all = { 0 }, after = { 0 }, now = { 0 };
  g_autofree char *log = NULL;
  guint ids[3];
  KvStorageInfo info;

  g_test_summary ("A subscription that starts after a past revision gets every change after "
                  "it from the history, each transaction at its one revision, then the new "
                  "ones, in one sequence");

  g_main_context_push_thread_default (context);
  write_history (fixture->storage);
  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (info.history_changes, ==, 9);
  g_assert_cmpuint (info.history_oldest, ==, 0);
  g_assert_cmpuint (info.history_bytes, >, 9 * 16);

  ids[0] = collect_from (fixture->storage, &all, 0, NULL, NULL, NULL);
  ids[1] = collect_from (fixture->storage, &after, 3, NULL, NULL, NULL);
  ids[2] = collect_from (fixture->storage, &now, KV_REVISION_NOW, NULL, NULL, NULL);
  g_assert_cmpuint (ids[0], !=, 0);
  g_assert_cmpuint (ids[1], !=, 0);
  kv_entry_unref (kv_storage_set (fixture->storage, "e", value, NULL, NULL));  /* 8 */

  log = collected (&all);
  g_assert_cmpstr (log, ==,
                   "put a 1 .\n"
                   "put b 2 .\n"
                   "put c 3\n"
                   "put d/x 3\n"
                   "delete a 3 .\n"
                   "delete b 4 .\n"
                   "put d/y 5 .\n"
                   "expire d/y 6 .\n"
                   "clear - 7 .\n"
                   "put e 8 .\n");
  g_clear_pointer (&log, g_free);
  log = collected (&after);
  g_assert_cmpstr (log, ==,
                   "delete b 4 .\n"
                   "put d/y 5 .\n"
                   "expire d/y 6 .\n"
                   "clear - 7 .\n"
                   "put e 8 .\n");
  g_clear_pointer (&log, g_free);
  log = collected (&now);
  g_assert_cmpstr (log, ==, "put e 8 .\n");

  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    kv_storage_unsubscribe (fixture->storage, ids[i]);
  g_main_context_pop_thread_default (context);
}

static void
test_history_filters (Fixture       *fixture,
                      gconstpointer  user_data)
{
  g_autoptr(GBytes) value = bytes ("v");
  g_autoptr(GMainContext) context = g_main_context_new ();
  Collector key = { 0 }, prefix = { 0 }, live = { 0 };
  g_autofree char *log = NULL;
  guint ids[3];

  g_test_summary ("A subscription to a key or a prefix gets only their changes and every clear, "
                  "its last change of each revision marked as such, from the history and new");

  g_main_context_push_thread_default (context);
  write_history (fixture->storage);

  ids[0] = collect_from (fixture->storage, &key, 0, "a", NULL, NULL);
  ids[1] = collect_from (fixture->storage, &prefix, 0, NULL, "d/", NULL);
  ids[2] = collect_from (fixture->storage, &live, KV_REVISION_NOW, NULL, "d/", NULL);
  kv_entry_unref (kv_storage_set (fixture->storage, "a", value, NULL, NULL));     /* 8 */
  kv_entry_unref (kv_storage_set (fixture->storage, "d/z", value, NULL, NULL));   /* 9 */
  kv_entry_unref (kv_storage_set (fixture->storage, "d", value, NULL, NULL));     /* 10 */

  log = collected (&key);
  g_assert_cmpstr (log, ==, "put a 1 .\ndelete a 3 .\nclear - 7 .\nput a 8 .\n");
  g_clear_pointer (&log, g_free);
  log = collected (&prefix);
  g_assert_cmpstr (log, ==,
                   "put d/x 3 .\nput d/y 5 .\nexpire d/y 6 .\nclear - 7 .\nput d/z 9 .\n");
  g_clear_pointer (&log, g_free);
  log = collected (&live);
  g_assert_cmpstr (log, ==, "put d/z 9 .\n");

  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    kv_storage_unsubscribe (fixture->storage, ids[i]);
  g_main_context_pop_thread_default (context);
}

static void
test_history_limits (Fixture       *fixture,
                     gconstpointer  user_data)
{
  g_autoptr(GBytes) value = bytes ("v");
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  Collector collector = { 0 };
  g_autofree char *log = NULL;
  KvHistoryInfo history;
  KvStorageInfo info;
  guint id;

  g_test_summary ("The history keeps the latest changes, whole revisions, within its count and "
                  "size; a subscription after a revision it no longer has, or one ahead of the "
                  "store, is refused and told the oldest it can start after");

  g_main_context_push_thread_default (context);
  write_history (fixture->storage);

  id = kv_storage_subscribe (fixture->storage, NULL, &(KvSubscribeOptions) { 8, NULL, NULL },
                             on_collect, &collector, NULL, &history, &error);
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_COMPACTED);
  g_assert_cmpstr (error->message, ==, "revision ahead of the store");
  g_assert_cmpuint (id, ==, 0);
  g_assert_cmpuint (history.revision, ==, 7);
  g_clear_error (&error);

  /* Three changes at most: revision 3's three go whole, with 1, 2 and 4. */
  kv_map_storage_set_history (KV_MAP_STORAGE (fixture->storage), 3, G_MAXUINT64);
  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (info.history_changes, ==, 3);
  g_assert_cmpuint (info.history_oldest, ==, 4);
  id = kv_storage_subscribe (fixture->storage, NULL, &(KvSubscribeOptions) { 3, NULL, NULL },
                             on_collect, &collector, NULL, &history, &error);
  g_assert_error (error, KV_STORAGE_ERROR, KV_STORAGE_ERROR_COMPACTED);
  g_assert_cmpstr (error->message, ==, "revision compacted");
  g_assert_cmpuint (id, ==, 0);
  g_assert_cmpuint (history.oldest, ==, 4);
  g_clear_error (&error);

  id = collect_from (fixture->storage, &collector, 4, NULL, NULL, &error);
  g_assert_no_error (error);
  log = collected (&collector);
  g_assert_cmpstr (log, ==, "put d/y 5 .\nexpire d/y 6 .\nclear - 7 .\n");
  kv_storage_unsubscribe (fixture->storage, id);

  /* One byte: nothing fits, and the oldest is the latest. */
  kv_map_storage_set_history (KV_MAP_STORAGE (fixture->storage), 10, 1);
  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (info.history_changes, ==, 0);
  g_assert_cmpuint (info.history_bytes, ==, 0);
  g_assert_cmpuint (info.history_oldest, ==, 7);

  /* None kept at all. */
  kv_map_storage_set_history (KV_MAP_STORAGE (fixture->storage), 0, G_MAXUINT64);
  kv_entry_unref (kv_storage_set (fixture->storage, "a", value, NULL, NULL));
  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (info.history_changes, ==, 0);
  g_assert_cmpuint (info.history_oldest, ==, 8);
  g_assert_cmpuint (kv_storage_subscribe (fixture->storage, NULL,
                                          &(KvSubscribeOptions) { 7, NULL, NULL }, on_collect,
                                          &collector, NULL, NULL, NULL), ==, 0);
  g_main_context_pop_thread_default (context);
}

#define RESUME_WRITES 20000
#define RESUMERS 8

typedef struct
{
  KvStorage *storage;
  gint done;
} ResumeWriter;

static gpointer
resume_writer (gpointer data)
{
  ResumeWriter *w = data;
  g_autoptr(GBytes) value = bytes ("v");

  for (guint i = 0; i < RESUME_WRITES; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i % 100);

      kv_entry_unref (kv_storage_set (w->storage, key, value, NULL, NULL));
    }
  g_atomic_int_set (&w->done, TRUE);
  return NULL;
}

static void
test_history_resume_while_writing (Fixture       *fixture,
                                   gconstpointer  user_data)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  ResumeWriter writer = { fixture->storage, FALSE };
  Collector collectors[RESUMERS] = { { 0 } };
  guint64 since[RESUMERS];
  guint ids[RESUMERS];
  GThread *thread;
  KvStorageInfo info;

  g_test_summary ("Subscriptions that start from a past revision while another thread writes "
                  "get every revision after it exactly once, in order: the replay and the new "
                  "changes meet without a gap or an overlap");

  g_main_context_push_thread_default (context);
  thread = g_thread_new ("writer", resume_writer, &writer);
  for (guint i = 0; i < RESUMERS; i++)
    {
      g_autoptr(GError) error = NULL;

      /* Spread over the writes, each from a little before the store's
       * revision of the moment. */
      g_usleep (2000 + g_random_int_range (0, 3000));
      kv_storage_get_info (fixture->storage, &info);
      since[i] = info.revision > 50 ? info.revision - 50 : 0;
      collectors[i].revisions = g_new0 (guint64, RESUME_WRITES + 1);
      ids[i] = collect_from (fixture->storage, &collectors[i], since[i], NULL, NULL, &error);
      g_assert_no_error (error);
      g_main_context_iteration (context, FALSE);
    }
  g_thread_join (thread);
  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (info.revision, ==, RESUME_WRITES);

  for (guint i = 0; i < RESUMERS; i++)
    {
      g_autofree char *log = collected (&collectors[i]);

      g_assert_cmpuint (collectors[i].n, ==, RESUME_WRITES - since[i]);
      for (guint j = 0; j < collectors[i].n; j++)
        g_assert_cmpuint (collectors[i].revisions[j], ==, since[i] + 1 + j);
      kv_storage_unsubscribe (fixture->storage, ids[i]);
      g_free (collectors[i].revisions);
    }
  g_main_context_pop_thread_default (context);
}

static void
test_history_reopen (Fixture       *fixture,
                     gconstpointer  user_data)
{
  g_autoptr(GBytes) value = bytes ("v");
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  Collector collector = { 0 };
  g_autofree char *log = NULL;
  KvStorageInfo info;
  guint id;

  g_test_summary ("A durable store reopened keeps no history from before: a subscription can "
                  "start after the revision it was loaded at, not before");

  g_main_context_push_thread_default (context);
  for (guint i = 0; i < 3; i++)
    kv_entry_unref (kv_storage_set (fixture->storage, "a", value, NULL, NULL));
  g_assert_finalize_object (fixture->storage);
  fixture->storage = open_durable (fixture->data_dir);

  kv_storage_get_info (fixture->storage, &info);
  g_assert_cmpuint (info.revision, ==, 3);
  g_assert_cmpuint (info.history_oldest, ==, 3);
  g_assert_cmpuint (kv_storage_subscribe (fixture->storage, NULL,
                                          &(KvSubscribeOptions) { 2, NULL, NULL }, on_collect,
                                          &collector, NULL, NULL, NULL), ==, 0);
  id = collect_from (fixture->storage, &collector, 3, NULL, NULL, &error);
  g_assert_no_error (error);
  kv_entry_unref (kv_storage_set (fixture->storage, "a", value, NULL, NULL));
  log = collected (&collector);
  g_assert_cmpstr (log, ==, "put a 4 .\n");
  kv_storage_unsubscribe (fixture->storage, id);
  g_main_context_pop_thread_default (context);
}

int
main (int   argc,
      char *argv[])
{
  static Kind kinds[] = {
    { "KvMapStorage", 0, FALSE },
    { "KvMapStorage-durable", 0, TRUE },
  };
  static Kind memory = { "KvMapStorage", 0, FALSE };

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  kinds[0].type = kinds[1].type = memory.type = KV_TYPE_MAP_STORAGE;

  for (gsize i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      gconstpointer type = &kinds[i];
      const char *name = kinds[i].name;

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
      ADD ("txn", test_txn);
      ADD ("delete-prefix-and-clear", test_delete_prefix_and_clear);
      ADD ("change-feed", test_change_feed);
      ADD ("async", test_async);
      ADD ("dump", test_dump);
      ADD ("history", test_history);
      ADD ("history-filters", test_history_filters);
      ADD ("history-limits", test_history_limits);
      ADD ("history-resume-while-writing", test_history_resume_while_writing);
      if (kinds[i].durable)
        ADD ("history-reopen", test_history_reopen);
#undef ADD
    }

  /* What only the in-memory store has. */
  g_test_add ("/kv/storage/KvMapStorage/expire-batches", Fixture,
              &memory, fixture_setup, test_expire_batches, fixture_teardown);
  g_test_add_func ("/kv/storage/match-parse", test_match_parse);

  return g_test_run ();
}
