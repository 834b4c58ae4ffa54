/* kv-storage.h: the interface every key-value storage implements
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "kv-entry.h"

G_BEGIN_DECLS

#define KV_STORAGE_ERROR (kv_storage_error_quark ())

/**
 * KvStorageError:
 * @KV_STORAGE_ERROR_NOT_FOUND: the key is not in the store
 * @KV_STORAGE_ERROR_INVALID_ARGUMENT: a key or value the store cannot hold
 *
 * Errors from #KvStorage operations.
 */
typedef enum
{
  KV_STORAGE_ERROR_NOT_FOUND,
  KV_STORAGE_ERROR_INVALID_ARGUMENT,
} KvStorageError;

GQuark kv_storage_error_quark (void);

#define KV_TYPE_STORAGE (kv_storage_get_type ())
G_DECLARE_INTERFACE (KvStorage, kv_storage, KV, STORAGE, GObject)

/**
 * KvStorageInterface:
 * @set: stores @value under @key, replacing any earlier value
 * @get: looks @key up
 * @delete: removes @key; removing an absent key is not an error
 *
 * Implementations must be safe to call from any thread.
 */
struct _KvStorageInterface
{
  GTypeInterface g_iface;

  KvEntry  *(*set)    (KvStorage   *self,
                       const char  *key,
                       GBytes      *value,
                       GError     **error);
  KvEntry  *(*get)    (KvStorage   *self,
                       const char  *key,
                       GError     **error);
  gboolean  (*delete) (KvStorage   *self,
                       const char  *key,
                       GError     **error);
};

KvEntry  *kv_storage_set    (KvStorage   *self,
                             const char  *key,
                             GBytes      *value,
                             GError     **error);
KvEntry  *kv_storage_get    (KvStorage   *self,
                             const char  *key,
                             GError     **error);
gboolean  kv_storage_delete (KvStorage   *self,
                             const char  *key,
                             GError     **error);

G_END_DECLS
