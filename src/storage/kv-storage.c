/* kv-storage.c: the interface every key-value storage implements
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "kv-storage.h"

G_DEFINE_QUARK (kv-storage-error-quark, kv_storage_error)

G_DEFINE_INTERFACE (KvStorage, kv_storage, G_TYPE_OBJECT)

static void
kv_storage_default_init (KvStorageInterface *iface)
{
}

/**
 * kv_storage_set:
 * @self: a #KvStorage
 * @key: a non-empty key
 * @value: the value to store
 * @options: (nullable): content type, expiry and precondition; %NULL for
 *   an unconditional write of an untyped value that never expires
 * @error: return location for a #GError
 *
 * Stores @value under @key, replacing whatever @key held. When a
 * precondition fails, nothing changes and @error is
 * %KV_STORAGE_ERROR_PRECONDITION_FAILED.
 *
 * Returns: (transfer full): the new entry, or %NULL with @error set
 */
KvEntry *
kv_storage_set (KvStorage           *self,
                const char          *key,
                GBytes              *value,
                const KvSetOptions  *options,
                GError             **error)
{
  static const KvSetOptions defaults = { NULL, KV_TTL_NONE, 0, NULL };

  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (value != NULL, NULL);
  g_return_val_if_fail (options == NULL || options->ttl_mode != KV_TTL_SET || options->ttl > 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return KV_STORAGE_GET_IFACE (self)->set (self, key, value,
                                           options != NULL ? options : &defaults, error);
}

/**
 * kv_storage_get:
 * @self: a #KvStorage
 * @key: the key to look up
 * @expires_at: (out) (optional): when the entry expires, in microseconds
 *   since the Unix epoch, or 0 if it does not
 * @error: return location for a #GError
 *
 * An entry whose time to live has passed is not found, even before its
 * memory is reclaimed.
 *
 * Returns: (transfer full): the entry for @key, or %NULL with
 *   %KV_STORAGE_ERROR_NOT_FOUND
 */
KvEntry *
kv_storage_get (KvStorage   *self,
                const char  *key,
                gint64      *expires_at,
                GError     **error)
{
  gint64 dummy;

  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return KV_STORAGE_GET_IFACE (self)->get (self, key, expires_at ? expires_at : &dummy, error);
}

/**
 * kv_storage_delete:
 * @self: a #KvStorage
 * @key: the key to remove
 * @condition: (nullable): precondition on the entry being removed
 * @error: return location for a #GError
 *
 * Removes @key. Removing a key that is not there succeeds, unless
 * @condition requires it to exist.
 *
 * Returns: %TRUE on success
 */
gboolean
kv_storage_delete (KvStorage          *self,
                   const char         *key,
                   const KvCondition  *condition,
                   GError            **error)
{
  g_return_val_if_fail (KV_IS_STORAGE (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return KV_STORAGE_GET_IFACE (self)->delete (self, key, condition, error);
}

/**
 * kv_storage_list:
 * @self: a #KvStorage
 * @prefix: (nullable): only keys that start with @prefix
 * @after: (nullable): only keys that sort strictly after @after
 * @limit: the most keys to return
 * @more: (out) (optional): set to whether more keys match after the last
 *   one returned
 *
 * Lists live keys in byte order.
 *
 * Returns: (transfer full) (element-type utf8): the keys
 */
GPtrArray *
kv_storage_list (KvStorage  *self,
                 const char *prefix,
                 const char *after,
                 guint       limit,
                 gboolean   *more)
{
  gboolean dummy;

  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);

  return KV_STORAGE_GET_IFACE (self)->list (self, prefix ? prefix : "", after, limit,
                                            more ? more : &dummy);
}

/**
 * kv_storage_get_info:
 * @self: a #KvStorage
 * @info: (out caller-allocates): where to store sizes and counters
 */
void
kv_storage_get_info (KvStorage     *self,
                     KvStorageInfo *info)
{
  g_return_if_fail (KV_IS_STORAGE (self));
  g_return_if_fail (info != NULL);

  KV_STORAGE_GET_IFACE (self)->get_info (self, info);
}
