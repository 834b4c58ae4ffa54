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
 * @error: return location for a #GError
 *
 * Stores @value under @key, replacing whatever @key held.
 *
 * Returns: (transfer full): the new entry, or %NULL with @error set
 */
KvEntry *
kv_storage_set (KvStorage   *self,
                const char  *key,
                GBytes      *value,
                GError     **error)
{
  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (value != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return KV_STORAGE_GET_IFACE (self)->set (self, key, value, error);
}

/**
 * kv_storage_get:
 * @self: a #KvStorage
 * @key: the key to look up
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the entry for @key, or %NULL with
 *   %KV_STORAGE_ERROR_NOT_FOUND
 */
KvEntry *
kv_storage_get (KvStorage   *self,
                const char  *key,
                GError     **error)
{
  g_return_val_if_fail (KV_IS_STORAGE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return KV_STORAGE_GET_IFACE (self)->get (self, key, error);
}

/**
 * kv_storage_delete:
 * @self: a #KvStorage
 * @key: the key to remove
 * @error: return location for a #GError
 *
 * Removes @key. Removing a key that is not there succeeds.
 *
 * Returns: %TRUE on success
 */
gboolean
kv_storage_delete (KvStorage   *self,
                   const char  *key,
                   GError     **error)
{
  g_return_val_if_fail (KV_IS_STORAGE (self), FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return KV_STORAGE_GET_IFACE (self)->delete (self, key, error);
}
