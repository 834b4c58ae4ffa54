/* kv-entry-private.h: stack-allocated lookup keys for the entry set
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-entry.h"

G_BEGIN_DECLS

/* Bytes needed for a probe entry that holds a key of @key_len bytes. */
gsize     kv_entry_probe_size (gsize       key_len);
KvEntry  *kv_entry_init_probe (gpointer    buffer,
                               const char *key,
                               gsize       key_len);

/* Only the storage that owns an entry changes these, under its write lock,
 * before any reader can see the entry. */
void      kv_entry_set_revision (KvEntry    *self,
                                 guint64     revision);

G_END_DECLS
