/* kv-snapshot.c: a store's entries at one revision, in one file
 *
 * SPDX-License-Identifier: MIT
 *
 * A header frame (format, revision, time), frames of entries in key
 * order, and an end frame that repeats the revision and counts the
 * entries: a snapshot without its end frame is not one. It is written
 * under a temporary name, synced, renamed into place and the directory
 * synced, so that its name only ever points at a whole file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kv-snapshot.h"

/* Entries per frame are bounded by size: a damaged frame names a small
 * part of the file. */
#define FRAME_SIZE (64 * 1024)
#define FLUSH_SIZE (1024 * 1024)

static gboolean
flush (int          fd,
       GByteArray  *buffer,
       guint64     *size,
       GError     **error)
{
  const guint8 *p = buffer->data;
  gsize left = buffer->len;

  while (left > 0)
    {
      gssize n = write (fd, p, left);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       "cannot write a snapshot: %s", g_strerror (saved));
          return FALSE;
        }
      p += n;
      left -= n;
    }

  *size += buffer->len;
  g_byte_array_set_size (buffer, 0);
  return TRUE;
}

static gboolean
write_frames (int          fd,
              KvDump      *dump,
              guint64     *size,
              GError     **error)
{
  g_autoptr(GByteArray) buffer = g_byte_array_sized_new (FLUSH_SIZE + FRAME_SIZE);
  guint n = kv_dump_get_n_entries (dump);
  gsize start;

  start = kv_record_begin (buffer, KV_RECORD_SNAPSHOT_HEADER);
  kv_record_append_string (buffer, KV_RECORD_SNAPSHOT_MAGIC, strlen (KV_RECORD_SNAPSHOT_MAGIC));
  kv_record_append_varint (buffer, KV_RECORD_FORMAT_VERSION);
  kv_record_append_varint (buffer, kv_dump_get_revision (dump));
  kv_record_append_varint (buffer, g_get_real_time ());
  kv_record_append_varint (buffer, n);
  kv_record_end (buffer, start);

  for (guint i = 0; i < n;)
    {
      start = kv_record_begin (buffer, KV_RECORD_SNAPSHOT_ENTRIES);
      do
        {
          gint64 expires_at;
          KvEntry *entry = kv_dump_peek_entry (dump, i++, &expires_at);

          kv_record_append_entry (buffer, entry, expires_at);
        }
      while (i < n && buffer->len - start < FRAME_SIZE);
      kv_record_end (buffer, start);

      if (buffer->len >= FLUSH_SIZE && !flush (fd, buffer, size, error))
        return FALSE;
    }

  start = kv_record_begin (buffer, KV_RECORD_SNAPSHOT_END);
  kv_record_append_varint (buffer, kv_dump_get_revision (dump));
  kv_record_append_varint (buffer, n);
  kv_record_end (buffer, start);

  return flush (fd, buffer, size, error);
}

/**
 * kv_snapshot_write:
 * @dir_fd: the data directory
 * @name: the snapshot's file name there
 * @dump: what to write
 * @size: (out): the size of the file written
 * @error: return location for a #GError
 *
 * Writes @dump to @name atomically and durably. Blocks: call it from a
 * thread of its own.
 *
 * Returns: %TRUE once @name is on disk; on failure nothing is left behind
 */
gboolean
kv_snapshot_write (int          dir_fd,
                   const char  *name,
                   KvDump      *dump,
                   guint64     *size,
                   GError     **error)
{
  g_autofree char *tmp = g_strconcat (name, ".tmp", NULL);
  int fd;

  *size = 0;
  fd = openat (dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot create %s: %s", tmp, g_strerror (saved));
      return FALSE;
    }

  if (!write_frames (fd, dump, size, error))
    goto fail;
  if (fdatasync (fd) < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot sync %s: %s", tmp, g_strerror (saved));
      goto fail;
    }
  close (fd);
  fd = -1;

  if (renameat (dir_fd, tmp, dir_fd, name) < 0 || fsync (dir_fd) < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot put %s in place: %s", name, g_strerror (saved));
      goto fail;
    }

  return TRUE;

fail:
  if (fd >= 0)
    close (fd);
  unlinkat (dir_fd, tmp, 0);
  return FALSE;
}

static gboolean
damaged (const char  *path,
         gsize        offset,
         const char  *what,
         GError     **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               "%s is damaged at offset %" G_GSIZE_FORMAT ": %s", path, offset, what);
  return FALSE;
}

/**
 * kv_snapshot_load:
 * @path: a snapshot file
 * @func: called with each entry, in key order
 * @user_data: data for @func
 * @revision: (out): the revision the snapshot was taken at
 * @created: (out): when it was written, wall-clock µs
 * @error: return location for a #GError
 *
 * Reads a snapshot back. Any damage, a missing end included, is an error
 * naming the file and the offset.
 *
 * Returns: %TRUE if the whole snapshot was read
 */
gboolean
kv_snapshot_load (const char           *path,
                  KvSnapshotEntryFunc   func,
                  gpointer              user_data,
                  guint64              *revision,
                  gint64               *created,
                  GError              **error)
{
  g_autoptr(GMappedFile) file = NULL;
  KvFrameReader reader;
  KvRecordType type;
  KvPayload payload;
  guint64 version, rev, time, count, end_rev, end_count, seen = 0;

  file = g_mapped_file_new (path, FALSE, error);
  if (file == NULL)
    return FALSE;

  kv_frame_reader_init (&reader, g_mapped_file_get_contents (file),
                        g_mapped_file_get_length (file));
  if (kv_frame_reader_next (&reader, &type, &payload) != KV_FRAME_OK ||
      type != KV_RECORD_SNAPSHOT_HEADER ||
      !kv_payload_read_magic (&payload, KV_RECORD_SNAPSHOT_MAGIC, &version) ||
      !kv_payload_read_varint (&payload, &rev) ||
      !kv_payload_read_varint (&payload, &time) ||
      !kv_payload_read_varint (&payload, &count))
    return damaged (path, 0, "not a crafty-kv snapshot", error);
  if (version != KV_RECORD_FORMAT_VERSION)
    return damaged (path, 0, "a snapshot format this version does not read", error);

  for (;;)
    {
      gsize offset = reader.offset;
      KvFrameStatus status = kv_frame_reader_next (&reader, &type, &payload);

      if (status == KV_FRAME_END)
        return damaged (path, offset, "the snapshot ends before its last frame", error);
      if (status != KV_FRAME_OK)
        return damaged (path, offset, "a frame fails its checksum", error);

      if (type == KV_RECORD_SNAPSHOT_END)
        {
          if (!kv_payload_read_varint (&payload, &end_rev) ||
              !kv_payload_read_varint (&payload, &end_count) ||
              end_rev != rev || end_count != count || seen != count)
            return damaged (path, offset, "the end frame does not match the snapshot", error);
          if (reader.offset != reader.len)
            return damaged (path, reader.offset, "bytes after the end frame", error);
          break;
        }
      if (type != KV_RECORD_SNAPSHOT_ENTRIES)
        return damaged (path, offset, "an unknown frame", error);

      while (payload.p < payload.end)
        {
          KvRecordChange entry;

          if (!kv_payload_read_entry (&payload, &entry))
            return damaged (path, offset, "an entry that cannot be read", error);
          func (&entry, user_data);
          seen++;
        }
    }

  *revision = rev;
  *created = time;
  return TRUE;
}
