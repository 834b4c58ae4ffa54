/* kv-log.h: the append-only log of a data directory
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * KvFsyncMode:
 * @KV_FSYNC_NO: the kernel writes the log out when it sees fit
 * @KV_FSYNC_EVERYSEC: the log is synced once a second
 * @KV_FSYNC_ALWAYS: a write is answered once the log holding it is synced
 *
 * When the log reaches the disk. A write is in the log, and so survives
 * the process being killed, before it is answered, whatever the mode; the
 * mode says what a power cut can take.
 */
typedef enum
{
  KV_FSYNC_NO,
  KV_FSYNC_EVERYSEC,
  KV_FSYNC_ALWAYS,
} KvFsyncMode;

#define KV_TYPE_FSYNC_MODE (kv_fsync_mode_get_type ())
GType kv_fsync_mode_get_type (void) G_GNUC_CONST;

/**
 * KvLogSyncedFunc:
 * @error: (nullable): why the log could not be synced, or %NULL
 * @user_data: the data given to kv_log_when_synced()
 *
 * Called from the log's sync thread, or in the call.
 */
typedef void (*KvLogSyncedFunc) (const GError *error,
                                 gpointer      user_data);

typedef struct _KvLog KvLog;

KvLog      *kv_log_new            (int               dir_fd,
                                   KvFsyncMode       mode);
void        kv_log_free           (KvLog            *self);
KvFsyncMode kv_log_get_mode       (KvLog            *self);
gboolean    kv_log_open_segment   (KvLog            *self,
                                   const char       *name,
                                   gboolean          create,
                                   guint64           base_revision,
                                   gsize             valid_size,
                                   GError          **error);
gboolean    kv_log_append         (KvLog            *self,
                                   const guint8     *data,
                                   gsize             len,
                                   guint64          *lsn,
                                   GError          **error);
void        kv_log_when_synced    (KvLog            *self,
                                   guint64           lsn,
                                   KvLogSyncedFunc   func,
                                   gpointer          user_data);
gboolean    kv_log_wait_synced    (KvLog            *self,
                                   guint64           lsn,
                                   GError          **error);
gsize       kv_log_get_segment_size (KvLog          *self);
void        kv_log_get_stats      (KvLog            *self,
                                   guint64          *fsyncs,
                                   guint64          *fsync_usec,
                                   guint64          *fsync_max_usec);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvLog, kv_log_free)

G_END_DECLS
