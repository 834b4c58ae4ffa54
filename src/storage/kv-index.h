/* kv-index.h: the entries of a store, in key order
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-entry.h"

G_BEGIN_DECLS

typedef struct _KvIndex KvIndex;

/**
 * KvIndexIter:
 *
 * A position in a #KvIndex, allocated on the stack. It stays valid until an
 * entry is inserted into or removed from the index; replacing an entry
 * keeps it valid.
 */
typedef struct _KvIndexIter KvIndexIter;

struct _KvIndexIter
{
  /*< private >*/
  gpointer dummy1;
  gpointer dummy2;
  guint dummy3;
  guint dummy4;
};

KvIndex  *kv_index_new             (void);
void      kv_index_free            (KvIndex       *self);

void      kv_index_insert          (KvIndex       *self,
                                    KvEntry       *entry);
void      kv_index_replace         (KvIndex       *self,
                                    KvEntry       *old_entry,
                                    KvEntry       *new_entry);
void      kv_index_remove          (KvIndex       *self,
                                    const KvEntry *entry);

guint     kv_index_get_size        (KvIndex       *self);
gsize     kv_index_get_memory      (KvIndex       *self);

void      kv_index_iter_init_after (KvIndexIter   *iter,
                                    KvIndex       *self,
                                    const char    *key,
                                    gsize          key_len,
                                    gboolean       inclusive);
KvEntry  *kv_index_iter_next       (KvIndexIter   *iter);

gboolean  kv_index_check           (KvIndex       *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvIndex, kv_index_free)

G_END_DECLS
