/* kv-data-dir.h: where a store keeps its log and snapshots
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "storage/kv-dump.h"
#include "storage/kv-log.h"
#include "storage/kv-record.h"

G_BEGIN_DECLS

/**
 * KvDataDirLoadFunc:
 * @change: a snapshot entry (as a put) or a logged change, in order
 * @user_data: the data given to kv_data_dir_load()
 */
typedef void (*KvDataDirLoadFunc) (const KvRecordChange *change,
                                   gpointer              user_data);

/**
 * KvDataDirInfo:
 * @log_bytes: the size of the log segments on disk
 * @snapshot_bytes: the size of the last snapshot
 * @snapshot_revision: the revision of the last snapshot, 0 if none
 * @snapshot_time: when it was written, wall-clock µs, 0 if none
 * @snapshots: snapshots written since the store was opened
 * @fsyncs: fdatasync calls made by the log
 * @fsync_usec: the time they took, together
 * @fsync_max_usec: the longest of them
 */
typedef struct
{
  guint64 log_bytes;
  guint64 snapshot_bytes;
  guint64 snapshot_revision;
  gint64 snapshot_time;
  guint64 snapshots;
  guint64 fsyncs;
  guint64 fsync_usec;
  guint64 fsync_max_usec;
} KvDataDirInfo;

typedef struct _KvDataDir KvDataDir;

KvDataDir *kv_data_dir_open           (const char         *path,
                                       KvFsyncMode         mode,
                                       guint64             snapshot_log_size,
                                       GError            **error);
void       kv_data_dir_free           (KvDataDir          *self);
gboolean   kv_data_dir_load           (KvDataDir          *self,
                                       KvDataDirLoadFunc   func,
                                       gpointer            user_data,
                                       guint64            *revision,
                                       GError            **error);
KvLog     *kv_data_dir_get_log        (KvDataDir          *self);
gboolean   kv_data_dir_wants_snapshot (KvDataDir          *self,
                                       guint64             live_bytes);
gboolean   kv_data_dir_begin_snapshot (KvDataDir          *self,
                                       guint64             revision,
                                       GError            **error);
gboolean   kv_data_dir_write_snapshot (KvDataDir          *self,
                                       KvDump             *dump,
                                       GError            **error);
void       kv_data_dir_get_info       (KvDataDir          *self,
                                       KvDataDirInfo      *info);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvDataDir, kv_data_dir_free)

G_END_DECLS
