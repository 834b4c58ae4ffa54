/* kv-entry.h: one stored key-value pair
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define KV_TYPE_ENTRY (kv_entry_get_type ())

/* The longest key an entry can hold; key lengths are stored in 14 bits. */
#define KV_ENTRY_MAX_KEY_SIZE 16383

typedef struct _KvEntry KvEntry;

GType         kv_entry_get_type         (void) G_GNUC_CONST;

KvEntry      *kv_entry_new              (const char *key,
                                         gsize       key_len,
                                         const void *value,
                                         gsize       value_len,
                                         const char *content_type,
                                         guint64     revision,
                                         GError    **error);
KvEntry      *kv_entry_ref              (KvEntry    *self);
void          kv_entry_unref            (KvEntry    *self);

const char   *kv_entry_peek_key         (const KvEntry *self,
                                         gsize         *key_len);
char         *kv_entry_dup_key          (const KvEntry *self);
gconstpointer kv_entry_peek_value       (const KvEntry *self,
                                         gsize         *value_len);
GBytes       *kv_entry_get_value        (KvEntry       *self);
gsize         kv_entry_get_value_size   (const KvEntry *self);
const char   *kv_entry_get_content_type (const KvEntry *self);
guint64       kv_entry_get_revision     (const KvEntry *self);
gboolean      kv_entry_get_is_utf8      (const KvEntry *self);
gboolean      kv_entry_get_has_ttl      (const KvEntry *self);
void          kv_entry_set_has_ttl      (KvEntry       *self,
                                         gboolean       has_ttl);

guint         kv_entry_hash             (gconstpointer  entry);
gboolean      kv_entry_equal            (gconstpointer  a,
                                         gconstpointer  b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvEntry, kv_entry_unref)

G_END_DECLS
