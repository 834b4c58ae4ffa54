/* kv-entry.c: one stored key-value pair
 *
 * SPDX-License-Identifier: MIT
 *
 * An entry is a single allocation: a 20-byte header, then the key bytes
 * (not NUL-terminated), then the value bytes. Keeping everything in one
 * block is what makes the store smaller per key than memcached or Redis:
 * 16-byte keys with 100-byte values fit a 144-byte malloc chunk.
 *
 * Entries are immutable once in the table (except for the TTL flag, which
 * only the storage changes, under its write lock) and reference-counted, so
 * a reader can take a reference under the read lock and send the value
 * after releasing it, without copying.
 */
#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include "storage/kv-entry-private.h"

#define KEY_LEN_MASK 0x3fff
#define HAS_TTL_FLAG 0x8000
/* Checked once when the entry is made, so that a GET need not. */
#define IS_UTF8_FLAG 0x4000

struct _KvEntry
{
  guint64 revision;
  gint ref_count;
  guint32 value_len;
  guint16 key_len_and_flags;
  guint16 content_type_id;
  char data[];
} G_GNUC_MAY_ALIAS;

G_DEFINE_BOXED_TYPE (KvEntry, kv_entry, kv_entry_ref, kv_entry_unref)

/* Content types are interned into a small table and referred to by index, so
 * an entry spends two bytes on its type instead of a pointer. Index 0 means
 * "no type stored". */
static GMutex content_types_lock;
static GPtrArray *content_types;
static GHashTable *content_type_ids;

#define MAX_CONTENT_TYPES G_MAXUINT16

static gboolean
content_type_intern (const char  *content_type,
                     guint16     *result,
                     GError     **error)
{
  gpointer id;
  gboolean ok = TRUE;

  *result = 0;
  if (content_type == NULL || *content_type == '\0')
    return TRUE;

  g_mutex_lock (&content_types_lock);
  if (content_types == NULL)
    {
      content_types = g_ptr_array_new ();
      g_ptr_array_add (content_types, NULL);
      content_type_ids = g_hash_table_new (g_str_hash, g_str_equal);
    }

  if (g_hash_table_lookup_extended (content_type_ids, content_type, NULL, &id))
    *result = GPOINTER_TO_UINT (id);
  else if (content_types->len <= MAX_CONTENT_TYPES)
    {
      const char *interned = g_intern_string (content_type);

      *result = content_types->len;
      g_ptr_array_add (content_types, (gpointer) interned);
      g_hash_table_insert (content_type_ids, (gpointer) interned, GUINT_TO_POINTER (*result));
    }
  else
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                   "too many distinct content types (at most %u)", MAX_CONTENT_TYPES);
      ok = FALSE;
    }
  g_mutex_unlock (&content_types_lock);

  return ok;
}

static const char *
content_type_lookup (guint16 id)
{
  const char *result;

  if (id == 0)
    return NULL;

  g_mutex_lock (&content_types_lock);
  result = g_ptr_array_index (content_types, id);
  g_mutex_unlock (&content_types_lock);

  return result;
}

/**
 * kv_entry_new:
 * @key: the key bytes
 * @key_len: length of @key, at most %KV_ENTRY_MAX_KEY_SIZE
 * @value: (array length=value_len): the value bytes
 * @value_len: length of @value
 * @content_type: (nullable): the stored media type
 * @revision: the store revision of the write that created this entry
 * @error: return location for a #GError
 *
 * Fails only when @content_type would be one distinct type too many.
 *
 * Returns: (transfer full): a new entry holding copies of @key and @value
 */
KvEntry *
kv_entry_new (const char *key,
              gsize       key_len,
              const void *value,
              gsize       value_len,
              const char *content_type,
              guint64     revision,
              GError    **error)
{
  KvEntry *self;
  guint16 content_type_id;

  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (key_len <= KV_ENTRY_MAX_KEY_SIZE, NULL);
  g_return_val_if_fail (value != NULL || value_len == 0, NULL);
  g_return_val_if_fail (value_len <= G_MAXUINT32, NULL);

  if (!content_type_intern (content_type, &content_type_id, error))
    return NULL;

  self = g_malloc (offsetof (KvEntry, data) + key_len + value_len);
  self->revision = revision;
  self->ref_count = 1;
  self->value_len = value_len;
  self->key_len_and_flags = key_len;
  if (value_len == 0 || g_utf8_validate_len (value, value_len, NULL))
    self->key_len_and_flags |= IS_UTF8_FLAG;
  self->content_type_id = content_type_id;
  memcpy (self->data, key, key_len);
  if (value_len > 0)
    memcpy (self->data + key_len, value, value_len);

  return self;
}

KvEntry *
kv_entry_ref (KvEntry *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
kv_entry_unref (KvEntry *self)
{
  g_return_if_fail (self != NULL);

  if (g_atomic_int_dec_and_test (&self->ref_count))
    g_free (self);
}

/**
 * kv_entry_peek_key:
 * @key_len: (out): length of the key
 *
 * Returns: the key bytes; they are not NUL-terminated
 */
const char *
kv_entry_peek_key (const KvEntry *self,
                   gsize         *key_len)
{
  *key_len = self->key_len_and_flags & KEY_LEN_MASK;
  return self->data;
}

/**
 * kv_entry_dup_key:
 *
 * Returns: (transfer full): the key as a NUL-terminated string
 */
char *
kv_entry_dup_key (const KvEntry *self)
{
  return g_strndup (self->data, self->key_len_and_flags & KEY_LEN_MASK);
}

gconstpointer
kv_entry_peek_value (const KvEntry *self,
                     gsize         *value_len)
{
  *value_len = self->value_len;
  return self->data + (self->key_len_and_flags & KEY_LEN_MASK);
}

/**
 * kv_entry_get_value:
 *
 * Returns: (transfer full): the value, sharing the entry's memory; the
 *   bytes keep the entry alive
 */
GBytes *
kv_entry_get_value (KvEntry *self)
{
  gsize len;
  gconstpointer data = kv_entry_peek_value (self, &len);

  return g_bytes_new_with_free_func (data, len,
                                     (GDestroyNotify) kv_entry_unref,
                                     kv_entry_ref (self));
}

gsize
kv_entry_get_value_size (const KvEntry *self)
{
  return self->value_len;
}

const char *
kv_entry_get_content_type (const KvEntry *self)
{
  return content_type_lookup (self->content_type_id);
}

guint64
kv_entry_get_revision (const KvEntry *self)
{
  return self->revision;
}

void
kv_entry_set_revision (KvEntry *self,
                       guint64  revision)
{
  self->revision = revision;
}

gboolean
kv_entry_get_is_utf8 (const KvEntry *self)
{
  return (self->key_len_and_flags & IS_UTF8_FLAG) != 0;
}

gboolean
kv_entry_get_has_ttl (const KvEntry *self)
{
  return (self->key_len_and_flags & HAS_TTL_FLAG) != 0;
}

void
kv_entry_set_has_ttl (KvEntry  *self,
                      gboolean  has_ttl)
{
  if (has_ttl)
    self->key_len_and_flags |= HAS_TTL_FLAG;
  else
    self->key_len_and_flags &= ~HAS_TTL_FLAG;
}

/* FNV-1a over the key bytes, seeded per process so that nobody can
 * precompute keys that collide in the table. */
guint
kv_entry_hash (gconstpointer entry)
{
  static guint32 seed;
  const KvEntry *self = entry;
  gsize len = self->key_len_and_flags & KEY_LEN_MASK;
  guint32 h;

  if (G_UNLIKELY (g_atomic_int_get (&seed) == 0))
    g_atomic_int_compare_and_exchange (&seed, 0, g_random_int () | 1);

  h = 2166136261u ^ (guint32) g_atomic_int_get (&seed);
  for (gsize i = 0; i < len; i++)
    {
      h ^= (guchar) self->data[i];
      h *= 16777619u;
    }

  return h;
}

gboolean
kv_entry_equal (gconstpointer a,
                gconstpointer b)
{
  const KvEntry *ea = a, *eb = b;
  gsize la = ea->key_len_and_flags & KEY_LEN_MASK;
  gsize lb = eb->key_len_and_flags & KEY_LEN_MASK;

  return la == lb && memcmp (ea->data, eb->data, la) == 0;
}

gsize
kv_entry_probe_size (gsize key_len)
{
  return offsetof (KvEntry, data) + key_len;
}

/* A probe is a header and a key, enough for kv_entry_hash() and
 * kv_entry_equal(): it lets the entry set be searched by key. */
KvEntry *
kv_entry_init_probe (gpointer    buffer,
                     const char *key,
                     gsize       key_len)
{
  KvEntry *probe = buffer;

  g_return_val_if_fail (key_len <= KV_ENTRY_MAX_KEY_SIZE, NULL);

  memset (probe, 0, offsetof (KvEntry, data));
  probe->key_len_and_flags = key_len;
  memcpy (probe->data, key, key_len);

  return probe;
}
