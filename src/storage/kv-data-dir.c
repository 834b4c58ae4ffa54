/* kv-data-dir.c: where a store keeps its log and snapshots
 *
 * SPDX-License-Identifier: MIT
 *
 * The directory holds:
 *   LOCK                      held with flock(2) while a daemon uses it
 *   snapshot-<revision>       every entry as of <revision>
 *   log-<revision>            the commits after <revision>, one frame each
 * Revisions are written as 20 digits, so that names sort in order.
 *
 * A snapshot starts by opening a new log segment at the store's revision;
 * the entries are then dumped, at that revision or a later one, and
 * written out. Once the snapshot is in place, every segment before the
 * new one and the older snapshot are deleted. Loading takes the newest
 * snapshot, then the commits after its revision from the segments: a
 * commit the snapshot holds already is skipped, so it does not matter
 * that the new segment starts before the dump.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "kv-data-dir.h"
#include "kv-snapshot.h"

#define LOCK_NAME "LOCK"
#define LOG_PREFIX "log-"
#define SNAPSHOT_PREFIX "snapshot-"
/* After a failed snapshot, wait before trying again. */
#define RETRY_USEC (10 * G_USEC_PER_SEC)

struct _KvDataDir
{
  char *path;
  int dir_fd;
  int lock_fd;
  guint64 snapshot_log_size;
  KvLog *log;

  GMutex lock;            /* the fields below */
  GPtrArray *segments;    /* (element-type utf8): oldest first; the last is appended to */
  guint64 retired_bytes;  /* the size of all segments but the last */
  char *snapshot;         /* (nullable): the newest snapshot's name */
  guint64 snapshot_bytes;
  guint64 snapshot_revision;
  gint64 snapshot_time;
  guint64 snapshots;

  gint64 retry_after;     /* after a failed snapshot, none before this */

  gint snapshotting;      /* (atomic) */
};

typedef struct
{
  guint64 revision;
  char *name;
} File;

static void
file_clear (gpointer data)
{
  g_free (((File *) data)->name);
}

static int
file_compare (gconstpointer a,
              gconstpointer b)
{
  const File *fa = a, *fb = b;

  return fa->revision < fb->revision ? -1 : fa->revision > fb->revision;
}

static char *
file_name (const char *prefix,
           guint64     revision)
{
  return g_strdup_printf ("%s%020" G_GUINT64_FORMAT, prefix, revision);
}

/* The revision in a name made by file_name(), or FALSE for other names. */
static gboolean
parse_name (const char *name,
            const char *prefix,
            guint64    *revision)
{
  const char *digits;

  if (!g_str_has_prefix (name, prefix))
    return FALSE;
  digits = name + strlen (prefix);
  return strlen (digits) == 20 &&
         g_ascii_string_to_unsigned (digits, 10, 0, G_MAXUINT64, revision, NULL);
}

static void
set_errno_error (GError     **error,
                 int          saved,
                 const char  *what,
                 const char  *path)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s %s: %s", what, path,
               g_strerror (saved));
}

/**
 * kv_data_dir_open:
 * @path: the directory, created if missing (mode 0700)
 * @mode: when the log reaches the disk
 * @snapshot_log_size: write a snapshot once the log is larger than this
 *   and than twice the live data
 * @error: return location for a #GError
 *
 * Takes the directory for this process: a second one gets an error.
 *
 * Returns: (transfer full): the directory, or %NULL with @error set
 */
KvDataDir *
kv_data_dir_open (const char  *path,
                  KvFsyncMode  mode,
                  guint64      snapshot_log_size,
                  GError     **error)
{
  g_autoptr(KvDataDir) self = g_new0 (KvDataDir, 1);
  g_autofree char *pid = NULL;

  self->path = g_strdup (path);
  self->dir_fd = -1;
  self->lock_fd = -1;
  self->snapshot_log_size = snapshot_log_size;
  g_mutex_init (&self->lock);
  self->segments = g_ptr_array_new_with_free_func (g_free);

  if (g_mkdir_with_parents (path, 0700) < 0)
    {
      set_errno_error (error, errno, "cannot create the data directory", path);
      return NULL;
    }
  self->dir_fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (self->dir_fd < 0)
    {
      set_errno_error (error, errno, "cannot open the data directory", path);
      return NULL;
    }
  if (faccessat (self->dir_fd, ".", W_OK, AT_EACCESS) < 0)
    {
      set_errno_error (error, errno, "cannot write to the data directory", path);
      return NULL;
    }
  self->lock_fd = openat (self->dir_fd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (self->lock_fd < 0)
    {
      set_errno_error (error, errno, "cannot write to the data directory", path);
      return NULL;
    }
  if (flock (self->lock_fd, LOCK_EX | LOCK_NB) < 0)
    {
      char holder[32] = "";
      gssize n = pread (self->lock_fd, holder, sizeof holder - 1, 0);

      holder[MAX (n, 0)] = '\0';
      g_strstrip (holder);
      if (errno == EWOULDBLOCK || errno == EAGAIN)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY,
                     "the data directory %s is in use by another process%s%s%s", path,
                     *holder != '\0' ? " (" : "", holder, *holder != '\0' ? ")" : "");
      else
        set_errno_error (error, errno, "cannot lock the data directory", path);
      return NULL;
    }

  pid = g_strdup_printf ("%d\n", (int) getpid ());
  if (ftruncate (self->lock_fd, 0) < 0 ||
      pwrite (self->lock_fd, pid, strlen (pid), 0) != (gssize) strlen (pid))
    {
      set_errno_error (error, errno, "cannot write to the data directory", path);
      return NULL;
    }

  self->log = kv_log_new (self->dir_fd, mode);
  return g_steal_pointer (&self);
}

/**
 * kv_data_dir_free:
 * @self: a #KvDataDir
 *
 * Syncs and closes the log, and lets the directory go.
 */
void
kv_data_dir_free (KvDataDir *self)
{
  g_clear_pointer (&self->log, kv_log_free);
  if (self->lock_fd >= 0)
    close (self->lock_fd);
  if (self->dir_fd >= 0)
    close (self->dir_fd);
  g_ptr_array_unref (self->segments);
  g_free (self->snapshot);
  g_mutex_clear (&self->lock);
  g_free (self->path);
  g_free (self);
}

static gboolean
damaged (const char  *path,
         gsize        offset,
         const char  *what,
         GError     **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               "%s is damaged at offset %" G_GSIZE_FORMAT ": %s; no file was changed",
               path, offset, what);
  return FALSE;
}

typedef struct
{
  KvDataDirLoadFunc func;
  gpointer user_data;
} Loader;

static void
load_entry (const KvRecordChange *entry,
            gpointer              data)
{
  Loader *loader = data;

  loader->func (entry, loader->user_data);
}

/* Replays one segment's commits after @revision. Sets @valid_size to the
 * end of its last whole frame; a torn frame is allowed at the end of the
 * last segment only. */
static gboolean
load_segment (const char         *path,
              gboolean            last,
              guint64             after,
              guint64            *revision,
              gsize              *valid_size,
              gboolean           *headless,
              KvDataDirLoadFunc   func,
              gpointer            user_data,
              GError            **error)
{
  g_autoptr(GMappedFile) file = NULL;
  KvFrameReader reader;
  KvRecordType type;
  KvPayload payload;
  guint64 version, base, last_commit = 0;
  KvFrameStatus status;

  *headless = FALSE;
  file = g_mapped_file_new (path, FALSE, error);
  if (file == NULL)
    return FALSE;
  kv_frame_reader_init (&reader, g_mapped_file_get_contents (file),
                        g_mapped_file_get_length (file));

  status = kv_frame_reader_next (&reader, &type, &payload);
  if ((status == KV_FRAME_TORN || status == KV_FRAME_END) && last)
    {
      /* Cut off while it was being created: nothing was ever in it. */
      g_warning ("%s: the log segment has no whole header; starting it again", path);
      *headless = TRUE;
      *valid_size = 0;
      return TRUE;
    }
  if (status != KV_FRAME_OK || type != KV_RECORD_LOG_HEADER ||
      !kv_payload_read_magic (&payload, KV_RECORD_LOG_MAGIC, &version) ||
      !kv_payload_read_varint (&payload, &base))
    return damaged (path, 0, "not a crafty-kv log", error);
  if (version != KV_RECORD_FORMAT_VERSION)
    return damaged (path, 0, "a log format this version does not read", error);

  for (;;)
    {
      gsize offset = reader.offset;
      guint64 commit, time;

      status = kv_frame_reader_next (&reader, &type, &payload);
      if (status == KV_FRAME_END)
        break;
      if (status == KV_FRAME_TORN && last)
        {
          g_warning ("%s: cut off a torn record at offset %" G_GSIZE_FORMAT " (%" G_GSIZE_FORMAT
                     " bytes), left by a crash while it was written",
                     path, offset, reader.len - offset);
          break;
        }
      if (status != KV_FRAME_OK)
        return damaged (path, offset, "a record fails its checksum", error);
      if (type != KV_RECORD_COMMIT ||
          !kv_payload_read_varint (&payload, &commit) ||
          !kv_payload_read_varint (&payload, &time))
        return damaged (path, offset, "a record that is not a commit", error);
      if (commit <= last_commit || commit <= base)
        return damaged (path, offset, "revisions out of order", error);
      last_commit = commit;
      if (commit <= after)
        continue;

      while (payload.p < payload.end)
        {
          KvRecordChange change;

          if (!kv_payload_read_change (&payload, commit, &change))
            return damaged (path, offset, "a change that cannot be read", error);
          func (&change, user_data);
        }
      *revision = MAX (*revision, commit);
    }

  *valid_size = reader.offset;
  return TRUE;
}

static guint64
file_size (int         dir_fd,
           const char *name)
{
  struct stat st;

  return fstatat (dir_fd, name, &st, 0) == 0 ? (guint64) st.st_size : 0;
}

/**
 * kv_data_dir_load:
 * @self: a #KvDataDir
 * @func: called with every entry of the newest snapshot, then every change
 *   logged after it, in order
 * @user_data: data for @func
 * @revision: (out): the revision of the last change loaded
 * @error: return location for a #GError
 *
 * Loads the store and opens the log for appending. A torn last record is
 * cut off, with a warning; any other damage is an error naming the file
 * and the offset, and then no file is changed.
 *
 * Returns: %TRUE if everything was loaded
 */
gboolean
kv_data_dir_load (KvDataDir          *self,
                  KvDataDirLoadFunc   func,
                  gpointer            user_data,
                  guint64            *revision,
                  GError            **error)
{
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GArray) logs = g_array_new (FALSE, FALSE, sizeof (File));
  g_autoptr(GArray) snapshots = g_array_new (FALSE, FALSE, sizeof (File));
  g_autoptr(GPtrArray) leftovers = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *active = NULL;
  Loader loader = { func, user_data };
  const char *name;
  guint64 snapshot_revision = 0;
  gsize valid_size = 0;
  gboolean headless = FALSE;

  g_array_set_clear_func (logs, file_clear);
  g_array_set_clear_func (snapshots, file_clear);
  *revision = 0;

  dir = g_dir_open (self->path, 0, error);
  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      File file = { 0, NULL };

      if (parse_name (name, LOG_PREFIX, &file.revision))
        {
          file.name = g_strdup (name);
          g_array_append_val (logs, file);
        }
      else if (parse_name (name, SNAPSHOT_PREFIX, &file.revision))
        {
          file.name = g_strdup (name);
          g_array_append_val (snapshots, file);
        }
      else if (g_str_has_prefix (name, SNAPSHOT_PREFIX) && g_str_has_suffix (name, ".tmp"))
        g_ptr_array_add (leftovers, g_strdup (name));
    }
  g_array_sort (logs, file_compare);
  g_array_sort (snapshots, file_compare);

  if (snapshots->len > 0)
    {
      File *newest = &g_array_index (snapshots, File, snapshots->len - 1);
      g_autofree char *path = g_build_filename (self->path, newest->name, NULL);
      gint64 created;

      if (!kv_snapshot_load (path, load_entry, &loader, &snapshot_revision, &created, error))
        return FALSE;
      *revision = snapshot_revision;
      self->snapshot = g_strdup (newest->name);
      self->snapshot_revision = snapshot_revision;
      self->snapshot_time = created;
      self->snapshot_bytes = file_size (self->dir_fd, newest->name);
      /* Older ones are left from a crash before they were deleted. */
      for (guint i = 0; i + 1 < snapshots->len; i++)
        g_ptr_array_add (leftovers, g_strdup (g_array_index (snapshots, File, i).name));
    }

  for (guint i = 0; i < logs->len; i++)
    {
      File *log = &g_array_index (logs, File, i);
      gboolean last = i + 1 == logs->len;
      g_autofree char *path = NULL;

      g_ptr_array_add (self->segments, g_strdup (log->name));
      /* A segment followed by one that starts within the snapshot holds
       * nothing the snapshot does not. */
      if (!last && g_array_index (logs, File, i + 1).revision <= snapshot_revision)
        continue;

      path = g_build_filename (self->path, log->name, NULL);
      if (!load_segment (path, last, snapshot_revision, revision, &valid_size, &headless,
                         func, user_data, error))
        return FALSE;
    }

  /* Everything read: only now is anything changed. */
  for (guint i = 0; i < leftovers->len; i++)
    unlinkat (self->dir_fd, leftovers->pdata[i], 0);

  if (self->segments->len > 0 && headless)
    {
      unlinkat (self->dir_fd, g_ptr_array_index (self->segments, self->segments->len - 1), 0);
      g_ptr_array_remove_index (self->segments, self->segments->len - 1);
    }
  for (guint i = 0; i + 1 < self->segments->len; i++)
    self->retired_bytes += file_size (self->dir_fd, self->segments->pdata[i]);

  if (self->segments->len > 0 && !headless)
    return kv_log_open_segment (self->log, g_ptr_array_index (self->segments,
                                                              self->segments->len - 1),
                                FALSE, 0, valid_size, error);

  active = file_name (LOG_PREFIX, *revision);
  if (!kv_log_open_segment (self->log, active, TRUE, *revision, 0, error))
    return FALSE;
  g_ptr_array_add (self->segments, g_steal_pointer (&active));
  return TRUE;
}

/**
 * kv_data_dir_get_log:
 * @self: a loaded #KvDataDir
 *
 * Returns: (transfer none): the log that commits are appended to
 */
KvLog *
kv_data_dir_get_log (KvDataDir *self)
{
  return self->log;
}

/**
 * kv_data_dir_wants_snapshot:
 * @self: a #KvDataDir
 * @live_bytes: the size of the live keys and values
 *
 * Only the appending thread may ask.
 *
 * Returns: whether the log has outgrown the live data enough for a
 *   snapshot, and none is being written
 */
gboolean
kv_data_dir_wants_snapshot (KvDataDir *self,
                            guint64    live_bytes)
{
  guint64 log_bytes = self->retired_bytes + kv_log_get_segment_size (self->log);
  gboolean retry;

  if (log_bytes <= MAX (self->snapshot_log_size, 2 * live_bytes) ||
      g_atomic_int_get (&self->snapshotting))
    return FALSE;

  g_mutex_lock (&self->lock);
  retry = g_get_monotonic_time () >= self->retry_after;
  g_mutex_unlock (&self->lock);
  return retry;
}

/* A snapshot that failed (a full disk, say) is not tried again at once:
 * each try starts a log segment and dumps the store. */
static void
snapshot_failed (KvDataDir *self)
{
  g_mutex_lock (&self->lock);
  self->retry_after = g_get_monotonic_time () + RETRY_USEC;
  g_mutex_unlock (&self->lock);
  g_atomic_int_set (&self->snapshotting, FALSE);
}

/**
 * kv_data_dir_begin_snapshot:
 * @self: a #KvDataDir
 * @revision: the store's revision
 * @error: return location for a #GError
 *
 * Starts a new log segment after @revision, for the snapshot that
 * kv_data_dir_write_snapshot() then writes. Called at the commit point, so
 * that no commit falls between.
 *
 * Returns: %TRUE if the snapshot can go ahead
 */
gboolean
kv_data_dir_begin_snapshot (KvDataDir  *self,
                            guint64     revision,
                            GError    **error)
{
  g_autofree char *name = file_name (LOG_PREFIX, revision);
  gsize old_size = kv_log_get_segment_size (self->log);

  if (!kv_log_open_segment (self->log, name, TRUE, revision, 0, error))
    {
      snapshot_failed (self);
      return FALSE;
    }

  g_mutex_lock (&self->lock);
  self->retired_bytes += old_size;
  g_ptr_array_add (self->segments, g_steal_pointer (&name));
  g_mutex_unlock (&self->lock);
  g_atomic_int_set (&self->snapshotting, TRUE);
  return TRUE;
}

/**
 * kv_data_dir_write_snapshot:
 * @self: a #KvDataDir
 * @dump: the store's entries, dumped after kv_data_dir_begin_snapshot()
 * @error: return location for a #GError
 *
 * Writes the snapshot, then deletes the segments and snapshot it makes
 * unneeded. Blocks: call it from a thread of its own.
 *
 * Returns: %TRUE once the snapshot is in place
 */
gboolean
kv_data_dir_write_snapshot (KvDataDir  *self,
                            KvDump     *dump,
                            GError    **error)
{
  g_autofree char *name = file_name (SNAPSHOT_PREFIX, kv_dump_get_revision (dump));
  g_autofree char *old = NULL;
  g_autoptr(GPtrArray) unneeded = g_ptr_array_new_with_free_func (g_free);
  guint64 size;

  if (!kv_snapshot_write (self->dir_fd, name, dump, &size, error))
    {
      snapshot_failed (self);
      return FALSE;
    }

  g_mutex_lock (&self->lock);
  while (self->segments->len > 1)
    g_ptr_array_add (unneeded, g_ptr_array_steal_index (self->segments, 0));
  self->retired_bytes = 0;
  if (g_strcmp0 (self->snapshot, name) != 0)
    old = g_steal_pointer (&self->snapshot);
  g_clear_pointer (&self->snapshot, g_free);
  self->snapshot = g_steal_pointer (&name);
  self->snapshot_bytes = size;
  self->snapshot_revision = kv_dump_get_revision (dump);
  self->snapshot_time = g_get_real_time ();
  self->snapshots++;
  g_mutex_unlock (&self->lock);

  for (guint i = 0; i < unneeded->len; i++)
    unlinkat (self->dir_fd, unneeded->pdata[i], 0);
  if (old != NULL)
    unlinkat (self->dir_fd, old, 0);

  g_atomic_int_set (&self->snapshotting, FALSE);
  return TRUE;
}

/**
 * kv_data_dir_get_info:
 * @self: a #KvDataDir
 * @info: (out caller-allocates): sizes and counters
 *
 * The log's size is only exact for a caller that holds off appends.
 */
void
kv_data_dir_get_info (KvDataDir     *self,
                      KvDataDirInfo *info)
{
  g_mutex_lock (&self->lock);
  info->log_bytes = self->retired_bytes + kv_log_get_segment_size (self->log);
  info->snapshot_bytes = self->snapshot_bytes;
  info->snapshot_revision = self->snapshot_revision;
  info->snapshot_time = self->snapshot_time;
  info->snapshots = self->snapshots;
  g_mutex_unlock (&self->lock);
  kv_log_get_stats (self->log, &info->fsyncs, &info->fsync_usec, &info->fsync_max_usec);
}
