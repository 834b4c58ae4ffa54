/* test-record.c: the frames of the log and snapshots, read back whole, cut
 * short and damaged; the log's group commit
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <glib/gstdio.h>

#include "storage/kv-crc32c.h"
#include "storage/kv-log.h"
#include "storage/kv-record.h"
#include "kv-test-utils.h"

static void
test_crc32c (void)
{
  const char *check = "123456789";
  g_autofree guint8 *zeros = g_malloc0 (32);

  g_test_summary ("CRC-32C gives the polynomial's check value and the published value for "
                  "32 zero bytes, whole or in pieces");

  g_assert_cmphex (kv_crc32c (0, check, 9), ==, 0xe3069283);
  g_assert_cmphex (kv_crc32c (kv_crc32c (0, check, 4), check + 4, 5), ==, 0xe3069283);
  g_assert_cmphex (kv_crc32c (0, zeros, 32), ==, 0x8a9136aa);
}

/* Two commits: a put with a type and an expiry, then a delete and a clear. */
static GByteArray *
two_commits (gsize *first_end)
{
  GByteArray *out = g_byte_array_new ();
  g_autoptr(KvEntry) entry = kv_entry_new ("key", 3, "value", 5, "text/plain", 7, NULL);
  gsize start;

  start = kv_record_begin (out, KV_RECORD_COMMIT);
  kv_record_append_varint (out, 7);
  kv_record_append_varint (out, 1234);
  kv_record_append_change (out, KV_CHANGE_PUT, entry, 1796000000000000);
  kv_record_end (out, start);
  *first_end = out->len;

  start = kv_record_begin (out, KV_RECORD_COMMIT);
  kv_record_append_varint (out, G_MAXUINT64);
  kv_record_append_varint (out, 0);
  kv_record_append_change (out, KV_CHANGE_DELETE, entry, 0);
  kv_record_append_change (out, KV_CHANGE_CLEAR, NULL, 0);
  kv_record_end (out, start);

  return out;
}

static void
test_round_trip (void)
{
  gsize first_end;
  g_autoptr(GByteArray) frames = two_commits (&first_end);
  KvFrameReader reader;
  KvRecordType type;
  KvPayload payload;
  KvRecordChange change;
  guint64 revision, time;

  g_test_summary ("Commits read back as they were written: revisions up to 2^64-1, puts "
                  "with their value, type and expiry, deletes and clears");

  kv_frame_reader_init (&reader, frames->data, frames->len);
  g_assert_cmpint (kv_frame_reader_next (&reader, &type, &payload), ==, KV_FRAME_OK);
  g_assert_cmpint (type, ==, KV_RECORD_COMMIT);
  g_assert_cmpuint (reader.offset, ==, first_end);
  g_assert_true (kv_payload_read_varint (&payload, &revision));
  g_assert_true (kv_payload_read_varint (&payload, &time));
  g_assert_cmpuint (revision, ==, 7);
  g_assert_cmpuint (time, ==, 1234);
  g_assert_true (kv_payload_read_change (&payload, revision, &change));
  g_assert_cmpint (change.kind, ==, KV_CHANGE_PUT);
  g_assert_cmpmem (change.key, change.key_len, "key", 3);
  g_assert_cmpmem (change.value, change.value_len, "value", 5);
  g_assert_cmpmem (change.content_type, change.content_type_len, "text/plain", 10);
  g_assert_cmpint (change.expires_at, ==, 1796000000000000);
  g_assert_cmpuint (change.revision, ==, 7);
  g_assert_true (payload.p == payload.end);

  g_assert_cmpint (kv_frame_reader_next (&reader, &type, &payload), ==, KV_FRAME_OK);
  g_assert_true (kv_payload_read_varint (&payload, &revision));
  g_assert_cmpuint (revision, ==, G_MAXUINT64);
  g_assert_true (kv_payload_read_varint (&payload, &time));
  g_assert_true (kv_payload_read_change (&payload, revision, &change));
  g_assert_cmpint (change.kind, ==, KV_CHANGE_DELETE);
  g_assert_cmpmem (change.key, change.key_len, "key", 3);
  g_assert_true (kv_payload_read_change (&payload, revision, &change));
  g_assert_cmpint (change.kind, ==, KV_CHANGE_CLEAR);
  g_assert_null (change.key);
  g_assert_false (kv_payload_read_change (&payload, revision, &change));

  g_assert_cmpint (kv_frame_reader_next (&reader, &type, &payload), ==, KV_FRAME_END);
}

static void
test_cut_short (void)
{
  gsize first_end;
  g_autoptr(GByteArray) frames = two_commits (&first_end);

  g_test_summary ("A file cut anywhere inside its last frame ends in a torn frame at that "
                  "frame's start, never in damage nor in a frame read from the cut bytes");

  for (gsize cut = first_end + 1; cut < frames->len; cut++)
    {
      KvFrameReader reader;
      KvRecordType type;
      KvPayload payload;

      kv_frame_reader_init (&reader, frames->data, cut);
      g_assert_cmpint (kv_frame_reader_next (&reader, &type, &payload), ==, KV_FRAME_OK);
      g_assert_cmpint (kv_frame_reader_next (&reader, &type, &payload), ==, KV_FRAME_TORN);
      g_assert_cmpuint (reader.offset, ==, first_end);
    }
}

static void
test_zero_tail (void)
{
  gsize first_end;
  g_autoptr(GByteArray) frames = two_commits (&first_end);
  KvFrameReader reader;
  KvRecordType type;
  KvPayload payload;

  g_test_summary ("Zeros after the last frame, space a file system allocated but never "
                  "wrote, read as a torn frame");

  g_byte_array_set_size (frames, first_end);
  g_byte_array_set_size (frames, first_end + 4096);
  memset (frames->data + first_end, 0, 4096);
  kv_frame_reader_init (&reader, frames->data, frames->len);
  g_assert_cmpint (kv_frame_reader_next (&reader, &type, &payload), ==, KV_FRAME_OK);
  g_assert_cmpint (kv_frame_reader_next (&reader, &type, &payload), ==, KV_FRAME_TORN);
}

static void
test_flipped (void)
{
  gsize first_end;
  g_autoptr(GByteArray) frames = two_commits (&first_end);

  g_test_summary ("A bit flipped anywhere in a frame with another after it is damage: never "
                  "read as a frame, never taken for a torn end");

  for (gsize i = 0; i < first_end; i++)
    for (guint bit = 0; bit < 8; bit++)
      {
        g_autoptr(GByteArray) copy = g_byte_array_sized_new (frames->len);
        KvFrameReader reader;
        KvRecordType type;
        KvPayload payload;

        g_byte_array_append (copy, frames->data, frames->len);
        copy->data[i] ^= 1 << bit;
        kv_frame_reader_init (&reader, copy->data, copy->len);
        g_assert_cmpint (kv_frame_reader_next (&reader, &type, &payload), ==, KV_FRAME_DAMAGED);
        g_assert_cmpuint (reader.offset, ==, 0);
      }
}

/* ---- The log ---- */

typedef struct
{
  KvLog *log;
  GMutex *append_lock;
  guint n;
  gboolean ok;
} Appender;

static gpointer
appender_run (gpointer data)
{
  Appender *appender = data;
  guint8 frame[64];

  appender->ok = TRUE;
  memset (frame, 'x', sizeof frame);
  for (guint i = 0; i < appender->n; i++)
    {
      g_autoptr(GError) error = NULL;
      guint64 lsn;

      /* The store appends under its write lock: one appender at a time. */
      g_mutex_lock (appender->append_lock);
      appender->ok &= kv_log_append (appender->log, frame, sizeof frame, &lsn, &error);
      g_mutex_unlock (appender->append_lock);
      appender->ok &= kv_log_wait_synced (appender->log, lsn, &error);
      g_assert_no_error (error);
    }

  return NULL;
}

static void
test_group_commit (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("kv-log-XXXXXX", &error);
  g_autofree char *path = NULL;
  Appender appenders[8];
  GThread *threads[8];
  GMutex append_lock;
  KvLog *log;
  guint64 fsyncs, usec, max_usec;
  gsize segment;
  int dir_fd;
  GStatBuf st;

  g_test_summary ("With fsync=always, threads that append and wait are each answered once "
                  "the disk has their bytes, and the log holds every byte appended");

  g_assert_no_error (error);
  dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_assert_cmpint (dir_fd, >=, 0);
  g_mutex_init (&append_lock);

  log = kv_log_new (dir_fd, KV_FSYNC_ALWAYS);
  g_assert_true (kv_log_open_segment (log, "log-00000000000000000000", TRUE, 0, 0, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (appenders); i++)
    {
      appenders[i] = (Appender) { log, &append_lock, 50, FALSE };
      threads[i] = g_thread_new ("appender", appender_run, &appenders[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (appenders); i++)
    {
      g_thread_join (threads[i]);
      g_assert_true (appenders[i].ok);
    }

  kv_log_get_stats (log, &fsyncs, &usec, &max_usec);
  g_test_message ("%" G_GUINT64_FORMAT " syncs for 400 appends", fsyncs);
  g_assert_cmpuint (fsyncs, >, 0);
  g_assert_cmpuint (fsyncs, <=, 400 + 1);
  segment = kv_log_get_segment_size (log);
  g_assert_cmpuint (segment, >, 400 * 64);
  kv_log_free (log);

  path = g_build_filename (dir, "log-00000000000000000000", NULL);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, segment);
  close (dir_fd);
  g_mutex_clear (&append_lock);
  kv_test_remove_tree (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/kv/record/crc32c", test_crc32c);
  g_test_add_func ("/kv/record/round-trip", test_round_trip);
  g_test_add_func ("/kv/record/cut-short", test_cut_short);
  g_test_add_func ("/kv/record/zero-tail", test_zero_tail);
  g_test_add_func ("/kv/record/flipped", test_flipped);
  g_test_add_func ("/kv/log/group-commit", test_group_commit);

  return g_test_run ();
}
