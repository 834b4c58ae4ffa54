/* kv-storage.h: the interface every key-value storage implements
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "storage/kv-condition.h"
#include "storage/kv-entry.h"

G_BEGIN_DECLS

#define KV_STORAGE_ERROR (kv_storage_error_quark ())

/**
 * KvStorageError:
 * @KV_STORAGE_ERROR_NOT_FOUND: the key is not in the store
 * @KV_STORAGE_ERROR_INVALID_ARGUMENT: a key or value the store cannot hold
 * @KV_STORAGE_ERROR_PRECONDITION_FAILED: a #KvCondition did not hold; nothing
 *   was changed
 *
 * Errors from #KvStorage operations.
 */
typedef enum
{
  KV_STORAGE_ERROR_NOT_FOUND,
  KV_STORAGE_ERROR_INVALID_ARGUMENT,
  KV_STORAGE_ERROR_PRECONDITION_FAILED,
} KvStorageError;

GQuark kv_storage_error_quark (void);

/**
 * KvTtlMode:
 * @KV_TTL_NONE: the entry never expires (an earlier TTL is cleared)
 * @KV_TTL_SET: the entry expires after #KvSetOptions.ttl
 * @KV_TTL_KEEP: the entry keeps the expiry time of the entry it replaces
 */
typedef enum
{
  KV_TTL_NONE,
  KV_TTL_SET,
  KV_TTL_KEEP,
} KvTtlMode;

/**
 * KvSetOptions:
 * @content_type: (nullable): the media type to store with the value
 * @ttl_mode: how the entry expires
 * @ttl: time to live in microseconds, for %KV_TTL_SET
 * @condition: (nullable): precondition on the entry being replaced
 */
typedef struct
{
  const char *content_type;
  KvTtlMode ttl_mode;
  gint64 ttl;
  const KvCondition *condition;
} KvSetOptions;

/**
 * KvStorageInfo:
 * @keys: entries held, including expired ones not yet reclaimed
 * @value_bytes: total size of the values held
 * @revision: the store's revision: that of its latest write
 * @expired: entries removed because they expired, since creation
 */
typedef struct
{
  guint64 keys;
  guint64 value_bytes;
  guint64 revision;
  guint64 expired;
} KvStorageInfo;

#define KV_TYPE_STORAGE (kv_storage_get_type ())
G_DECLARE_INTERFACE (KvStorage, kv_storage, KV, STORAGE, GObject)

/**
 * KvStorageInterface:
 * @set: stores a value, subject to options
 * @get: looks a key up
 * @delete: removes a key, subject to a condition
 * @list: lists keys in byte order
 * @get_info: sizes and counters
 *
 * Implementations must be safe to call from any thread.
 */
struct _KvStorageInterface
{
  GTypeInterface g_iface;

  KvEntry   *(*set)      (KvStorage           *self,
                          const char          *key,
                          GBytes              *value,
                          const KvSetOptions  *options,
                          GError             **error);
  KvEntry   *(*get)      (KvStorage           *self,
                          const char          *key,
                          gint64              *expires_at,
                          GError             **error);
  gboolean   (*delete)   (KvStorage           *self,
                          const char          *key,
                          const KvCondition   *condition,
                          GError             **error);
  GPtrArray *(*list)     (KvStorage           *self,
                          const char          *prefix,
                          const char          *after,
                          guint                limit,
                          gboolean            *more);
  void       (*get_info) (KvStorage           *self,
                          KvStorageInfo       *info);
};

KvEntry   *kv_storage_set      (KvStorage           *self,
                                const char          *key,
                                GBytes              *value,
                                const KvSetOptions  *options,
                                GError             **error);
KvEntry   *kv_storage_get      (KvStorage           *self,
                                const char          *key,
                                gint64              *expires_at,
                                GError             **error);
gboolean   kv_storage_delete   (KvStorage           *self,
                                const char          *key,
                                const KvCondition   *condition,
                                GError             **error);
GPtrArray *kv_storage_list     (KvStorage           *self,
                                const char          *prefix,
                                const char          *after,
                                guint                limit,
                                gboolean            *more);
void       kv_storage_get_info (KvStorage           *self,
                                KvStorageInfo       *info);

G_END_DECLS
