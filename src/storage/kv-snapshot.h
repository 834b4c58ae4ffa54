/* kv-snapshot.h: a store's entries at one revision, in one file
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "storage/kv-dump.h"
#include "storage/kv-record.h"

G_BEGIN_DECLS

/**
 * KvSnapshotEntryFunc:
 * @entry: one entry, as a put at the entry's own revision
 * @user_data: the data given to kv_snapshot_load()
 */
typedef void (*KvSnapshotEntryFunc) (const KvRecordChange *entry,
                                     gpointer              user_data);

gboolean kv_snapshot_write (int                   dir_fd,
                            const char           *name,
                            KvDump               *dump,
                            guint64              *size,
                            GError              **error);
gboolean kv_snapshot_load  (const char           *path,
                            KvSnapshotEntryFunc   func,
                            gpointer              user_data,
                            guint64              *revision,
                            gint64               *created,
                            GError              **error);

G_END_DECLS
