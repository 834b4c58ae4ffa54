/* kv-log.c: the append-only log of a data directory
 *
 * SPDX-License-Identifier: MIT
 *
 * The store appends each commit's frame with write(2) at its commit point,
 * before the commit is answered: once write(2) returns, the bytes are the
 * kernel's, and a SIGKILL cannot take them. Reaching the disk is the sync
 * thread's job, so that no writer waits on fdatasync(2) holding the store's
 * lock: once a second for "everysec"; for "always", as soon as a commit
 * waits on it, and every commit that arrived meanwhile shares that one
 * fdatasync (group commit).
 *
 * Positions in the log are log sequence numbers (LSNs): bytes appended
 * since the log was opened, across segments. When the store starts a new
 * segment, the old one is handed to the sync thread, which syncs and
 * closes it, and syncs the directory that now names the new one.
 *
 * A failed append is cut back off the file, so that the log holds whole
 * frames only, and the commit is refused. A failed fdatasync is not
 * retried: after one, Linux may report later ones as clean though the
 * pages were dropped, so the log refuses every later append instead.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "kv-log.h"
#include "kv-record.h"

G_DEFINE_ENUM_TYPE (KvFsyncMode, kv_fsync_mode,
                    G_DEFINE_ENUM_VALUE (KV_FSYNC_NO, "no"),
                    G_DEFINE_ENUM_VALUE (KV_FSYNC_EVERYSEC, "everysec"),
                    G_DEFINE_ENUM_VALUE (KV_FSYNC_ALWAYS, "always"))

typedef struct
{
  guint64 lsn;
  KvLogSyncedFunc func;
  gpointer user_data;
} Waiter;

struct _KvLog
{
  int dir_fd;           /* (unowned) */
  KvFsyncMode mode;

  /* Only the appending thread (the store's writer) uses these. */
  int fd;
  gsize segment_size;

  GMutex lock;
  GCond cond;           /* the sync thread waits on it */
  GCond synced_cond;    /* kv_log_wait_synced() waits on it */
  guint64 written;      /* LSN of the end of what was appended */
  guint64 synced;       /* LSN up to which the disk has it */
  int sync_fd;          /* the segment the sync thread syncs */
  GArray *retired;      /* (element-type int): old segments to sync and close */
  gboolean sync_dir;
  GQueue waiters;       /* (element-type Waiter) */
  guint blocked;        /* threads in kv_log_wait_synced() */
  GError *failure;      /* a failed fdatasync: sticky */
  gboolean stopping;
  guint64 fsyncs;
  guint64 fsync_usec;
  guint64 fsync_max_usec;
  GThread *thread;
};

/* Syncs what was appended up to now; called with the lock held, which it
 * drops around the system calls. */
static void
sync_locked (KvLog *self)
{
  g_autoptr(GArray) retired = g_steal_pointer (&self->retired);
  g_autoptr(GError) error = NULL;
  guint64 target = self->written;
  gboolean sync_dir = self->sync_dir;
  int fd = self->sync_fd;
  GQueue done = G_QUEUE_INIT;
  gint64 start, elapsed;
  GList *l;

  self->retired = g_array_new (FALSE, FALSE, sizeof (int));
  self->sync_dir = FALSE;
  g_mutex_unlock (&self->lock);

  start = g_get_monotonic_time ();
  for (guint i = 0; i < retired->len; i++)
    {
      int old = g_array_index (retired, int, i);

      if (fdatasync (old) < 0 && error == NULL)
        error = g_error_new (G_IO_ERROR, g_io_error_from_errno (errno),
                             "cannot sync the log: %s", g_strerror (errno));
      close (old);
    }
  if (sync_dir && fsync (self->dir_fd) < 0 && error == NULL)
    error = g_error_new (G_IO_ERROR, g_io_error_from_errno (errno),
                         "cannot sync the data directory: %s", g_strerror (errno));
  if (fd >= 0 && fdatasync (fd) < 0 && error == NULL)
    error = g_error_new (G_IO_ERROR, g_io_error_from_errno (errno),
                         "cannot sync the log: %s", g_strerror (errno));
  elapsed = g_get_monotonic_time () - start;

  g_mutex_lock (&self->lock);
  self->fsyncs++;
  self->fsync_usec += elapsed;
  self->fsync_max_usec = MAX (self->fsync_max_usec, (guint64) elapsed);
  if (error != NULL && self->failure == NULL)
    {
      g_warning ("%s; refusing writes from now on", error->message);
      self->failure = g_steal_pointer (&error);
    }
  if (self->failure == NULL)
    self->synced = MAX (self->synced, target);

  for (l = self->waiters.head; l != NULL;)
    {
      GList *next = l->next;
      Waiter *waiter = l->data;

      if (self->failure != NULL || waiter->lsn <= self->synced)
        {
          g_queue_unlink (&self->waiters, l);
          g_queue_push_tail_link (&done, l);
        }
      l = next;
    }
  g_cond_broadcast (&self->synced_cond);

  if (done.length > 0)
    {
      g_autoptr(GError) failure = self->failure != NULL ? g_error_copy (self->failure) : NULL;

      g_mutex_unlock (&self->lock);
      while ((l = g_queue_pop_head_link (&done)) != NULL)
        {
          Waiter *waiter = l->data;

          waiter->func (failure, waiter->user_data);
          g_free (waiter);
          g_list_free_1 (l);
        }
      g_mutex_lock (&self->lock);
    }
}

static gpointer
sync_thread (gpointer data)
{
  KvLog *self = data;
  gint64 next = g_get_monotonic_time () + G_USEC_PER_SEC;

  g_mutex_lock (&self->lock);
  while (!self->stopping)
    {
      /* Always due: a commit or a thread waiting on the disk, a segment
       * being retired, a directory that names a new one. Those that come
       * in while a sync runs go together in the next (group commit). */
      gboolean due = self->waiters.length > 0 || self->blocked > 0 ||
                     self->retired->len > 0 || self->sync_dir;
      gint64 now = g_get_monotonic_time ();

      if (self->mode == KV_FSYNC_EVERYSEC && now >= next && self->written > self->synced)
        due = TRUE;

      if (!due || self->failure != NULL)
        {
          /* Appends do not wake this thread unless someone waits. */
          if (self->mode == KV_FSYNC_EVERYSEC && self->failure == NULL)
            g_cond_wait_until (&self->cond, &self->lock, MAX (next, now + 1000));
          else
            g_cond_wait (&self->cond, &self->lock);
          if (g_get_monotonic_time () >= next && self->written == self->synced)
            next = g_get_monotonic_time () + G_USEC_PER_SEC;
          continue;
        }

      sync_locked (self);
      if (g_get_monotonic_time () >= next)
        next = g_get_monotonic_time () + G_USEC_PER_SEC;
    }
  g_mutex_unlock (&self->lock);

  return NULL;
}

/**
 * kv_log_new:
 * @dir_fd: the data directory, open for as long as the log
 * @mode: when to sync
 *
 * Returns: (transfer full): a log with no segment open yet
 */
KvLog *
kv_log_new (int         dir_fd,
            KvFsyncMode mode)
{
  KvLog *self = g_new0 (KvLog, 1);

  self->dir_fd = dir_fd;
  self->mode = mode;
  self->fd = -1;
  self->sync_fd = -1;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_cond_init (&self->synced_cond);
  self->retired = g_array_new (FALSE, FALSE, sizeof (int));
  self->thread = g_thread_new ("kv-log-sync", sync_thread, self);
  return self;
}

/**
 * kv_log_free:
 * @self: a #KvLog
 *
 * Syncs everything appended, whatever the mode, then closes the log: a
 * graceful stop loses nothing even to a later power cut.
 */
void
kv_log_free (KvLog *self)
{
  g_mutex_lock (&self->lock);
  self->stopping = TRUE;
  g_cond_signal (&self->cond);
  g_mutex_unlock (&self->lock);
  g_thread_join (self->thread);

  g_mutex_lock (&self->lock);
  if (self->failure == NULL)
    sync_locked (self);
  /* Whoever still waits hears of the failure. */
  while (self->waiters.length > 0)
    {
      Waiter *waiter = g_queue_pop_head (&self->waiters);
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED,
                                                     "the log was closed");

      waiter->func (error, waiter->user_data);
      g_free (waiter);
    }
  g_mutex_unlock (&self->lock);

  if (self->fd >= 0)
    close (self->fd);
  g_array_unref (self->retired);
  g_clear_error (&self->failure);
  g_cond_clear (&self->synced_cond);
  g_cond_clear (&self->cond);
  g_mutex_clear (&self->lock);
  g_free (self);
}

KvFsyncMode
kv_log_get_mode (KvLog *self)
{
  return self->mode;
}

static gboolean
write_all (int            fd,
           const guint8  *data,
           gsize          len,
           GError       **error)
{
  while (len > 0)
    {
      gssize n = write (fd, data, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       "cannot write to the log: %s", g_strerror (saved));
          return FALSE;
        }
      data += n;
      len -= n;
    }

  return TRUE;
}

/**
 * kv_log_open_segment:
 * @self: a #KvLog
 * @name: the segment's file name in the data directory
 * @create: whether to start a new segment (else to append to @name)
 * @base_revision: for a new segment, the revision its records follow
 * @valid_size: for an existing segment, how much of it holds whole
 *   frames: a torn frame after it is cut off
 * @error: return location for a #GError
 *
 * Makes @name the segment that appends go to. The segment it replaces is
 * synced and closed by the sync thread.
 *
 * Returns: %TRUE on success; on failure the current segment stays
 */
gboolean
kv_log_open_segment (KvLog       *self,
                     const char  *name,
                     gboolean     create,
                     guint64      base_revision,
                     gsize        valid_size,
                     GError     **error)
{
  int fd;
  gsize size = valid_size;

  fd = openat (self->dir_fd, name,
               O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot open %s: %s", name, g_strerror (saved));
      return FALSE;
    }

  if (create)
    {
      g_autoptr(GByteArray) header = g_byte_array_new ();
      gsize start = kv_record_begin (header, KV_RECORD_LOG_HEADER);

      kv_record_append_string (header, KV_RECORD_LOG_MAGIC, strlen (KV_RECORD_LOG_MAGIC));
      kv_record_append_varint (header, KV_RECORD_FORMAT_VERSION);
      kv_record_append_varint (header, base_revision);
      kv_record_end (header, start);
      if (!write_all (fd, header->data, header->len, error))
        {
          close (fd);
          unlinkat (self->dir_fd, name, 0);
          return FALSE;
        }
      size = header->len;
    }
  else if (ftruncate (fd, valid_size) < 0 || lseek (fd, valid_size, SEEK_SET) < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot cut %s at %" G_GSIZE_FORMAT ": %s", name, valid_size,
                   g_strerror (saved));
      close (fd);
      return FALSE;
    }

  g_mutex_lock (&self->lock);
  if (self->fd >= 0)
    g_array_append_val (self->retired, self->fd);
  self->fd = fd;
  self->sync_fd = fd;
  self->segment_size = size;
  self->written += create ? size : 0;
  self->sync_dir = TRUE;
  g_cond_signal (&self->cond);
  g_mutex_unlock (&self->lock);

  return TRUE;
}

/**
 * kv_log_append:
 * @self: a #KvLog with a segment open
 * @data: (array length=len): whole frames
 * @len: their length
 * @lsn: (out): the LSN of their end, for kv_log_when_synced()
 * @error: return location for a #GError
 *
 * Appends @data to the segment. Only one thread appends at a time: the
 * store calls this at its commit point.
 *
 * Returns: %TRUE once the kernel has the bytes; on failure the segment is
 *   as it was
 */
gboolean
kv_log_append (KvLog         *self,
               const guint8  *data,
               gsize          len,
               guint64       *lsn,
               GError       **error)
{
  g_mutex_lock (&self->lock);
  if (self->failure != NULL)
    {
      g_propagate_error (error, g_error_copy (self->failure));
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  g_mutex_unlock (&self->lock);

  if (!write_all (self->fd, data, len, error))
    {
      /* No partial frame stays behind; if even this fails, the torn frame
       * is cut off at the next start. */
      if (ftruncate (self->fd, self->segment_size) < 0 ||
          lseek (self->fd, self->segment_size, SEEK_SET) < 0)
        g_warning ("Cannot cut the log back after a failed write: %s", g_strerror (errno));
      return FALSE;
    }

  self->segment_size += len;
  g_mutex_lock (&self->lock);
  self->written += len;
  *lsn = self->written;
  g_mutex_unlock (&self->lock);

  return TRUE;
}

/**
 * kv_log_when_synced:
 * @self: a #KvLog
 * @lsn: an LSN from kv_log_append()
 * @func: called once the disk has the log up to @lsn, or it cannot
 * @user_data: data for @func
 *
 * @func runs in the sync thread, or in the call if @lsn is synced already.
 */
void
kv_log_when_synced (KvLog           *self,
                    guint64          lsn,
                    KvLogSyncedFunc  func,
                    gpointer         user_data)
{
  g_autoptr(GError) failure = NULL;
  gboolean now;

  g_mutex_lock (&self->lock);
  now = self->failure != NULL || lsn <= self->synced;
  if (self->failure != NULL)
    failure = g_error_copy (self->failure);
  if (!now)
    {
      Waiter *waiter = g_new (Waiter, 1);

      waiter->lsn = lsn;
      waiter->func = func;
      waiter->user_data = user_data;
      g_queue_push_tail (&self->waiters, waiter);
      g_cond_signal (&self->cond);
    }
  g_mutex_unlock (&self->lock);

  if (now)
    func (failure, user_data);
}

/**
 * kv_log_wait_synced:
 * @self: a #KvLog
 * @lsn: an LSN from kv_log_append()
 * @error: return location for a #GError
 *
 * Blocks until the disk has the log up to @lsn.
 *
 * Returns: %FALSE if the log could not be synced
 */
gboolean
kv_log_wait_synced (KvLog   *self,
                    guint64  lsn,
                    GError **error)
{
  gboolean ok;

  g_mutex_lock (&self->lock);
  self->blocked++;
  while (self->synced < lsn && self->failure == NULL && !self->stopping)
    {
      g_cond_signal (&self->cond);
      g_cond_wait (&self->synced_cond, &self->lock);
    }
  self->blocked--;
  ok = self->failure == NULL && self->synced >= lsn;
  if (!ok)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                         self->failure != NULL ? self->failure->message : "the log was closed");
  g_mutex_unlock (&self->lock);

  return ok;
}

/**
 * kv_log_get_segment_size:
 * @self: a #KvLog
 *
 * Only the appending thread may ask.
 *
 * Returns: the size of the segment appends go to
 */
gsize
kv_log_get_segment_size (KvLog *self)
{
  return self->segment_size;
}

void
kv_log_get_stats (KvLog   *self,
                  guint64 *fsyncs,
                  guint64 *fsync_usec,
                  guint64 *fsync_max_usec)
{
  g_mutex_lock (&self->lock);
  *fsyncs = self->fsyncs;
  *fsync_usec = self->fsync_usec;
  *fsync_max_usec = self->fsync_max_usec;
  g_mutex_unlock (&self->lock);
}
