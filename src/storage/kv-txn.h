/* kv-txn.h: operations applied all or nothing, at one revision
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "storage/kv-condition.h"
#include "storage/kv-entry.h"

G_BEGIN_DECLS

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
 * KvOpKind:
 * @KV_OP_GET: reads a key
 * @KV_OP_PUT: stores a value
 * @KV_OP_DELETE: deletes a key
 * @KV_OP_DELETE_PREFIX: deletes every key with a prefix
 * @KV_OP_CLEAR: deletes every key, as one change
 */
typedef enum
{
  KV_OP_GET,
  KV_OP_PUT,
  KV_OP_DELETE,
  KV_OP_DELETE_PREFIX,
  KV_OP_CLEAR,
} KvOpKind;

/**
 * KvOp:
 * @kind: what the operation does
 * @key: the key, or the prefix of %KV_OP_DELETE_PREFIX (empty for a clear)
 * @value: (nullable): the value of a put
 * @content_type: (nullable): the media type of a put
 * @ttl_mode: how a put's entry expires
 * @ttl: a put's time to live, for %KV_TTL_SET
 * @condition: what must hold of the key before the transaction
 *
 * One operation of a #KvTxn, as it was added.
 */
typedef struct
{
  KvOpKind kind;
  char *key;
  GBytes *value;
  char *content_type;
  KvTtlMode ttl_mode;
  gint64 ttl;
  KvCondition condition;
} KvOp;

/**
 * KvOpResult:
 * @kind: the operation's kind
 * @entry: (nullable): what a get found, or the entry a put stored
 * @expires_at: for @entry, when it expires (microseconds since the Unix
 *   epoch), or 0
 * @n_deleted: how many keys a delete or a clear removed
 */
typedef struct
{
  KvOpKind kind;
  KvEntry *entry;
  gint64 expires_at;
  guint64 n_deleted;
} KvOpResult;

typedef struct _KvTxn KvTxn;
typedef struct _KvTxnResult KvTxnResult;

#define KV_TYPE_TXN (kv_txn_get_type ())
#define KV_TYPE_TXN_RESULT (kv_txn_result_get_type ())

GType        kv_txn_get_type          (void) G_GNUC_CONST;
KvTxn       *kv_txn_new               (void);
KvTxn       *kv_txn_ref               (KvTxn              *self);
void         kv_txn_unref             (KvTxn              *self);
void         kv_txn_add_get           (KvTxn              *self,
                                       const char         *key,
                                       const KvCondition  *condition);
void         kv_txn_add_put           (KvTxn              *self,
                                       const char         *key,
                                       GBytes             *value,
                                       const KvSetOptions *options);
void         kv_txn_add_delete        (KvTxn              *self,
                                       const char         *key,
                                       const KvCondition  *condition);
void         kv_txn_add_delete_prefix (KvTxn              *self,
                                       const char         *prefix);
void         kv_txn_add_clear         (KvTxn              *self);
guint        kv_txn_get_n_ops         (KvTxn              *self);
const KvOp  *kv_txn_get_op            (KvTxn              *self,
                                       guint               index);

GType              kv_txn_result_get_type      (void) G_GNUC_CONST;
KvTxnResult       *kv_txn_result_new           (guint         n_ops);
KvTxnResult       *kv_txn_result_ref           (KvTxnResult  *self);
void               kv_txn_result_unref         (KvTxnResult  *self);
void               kv_txn_result_set_revision  (KvTxnResult  *self,
                                                guint64       revision);
guint64            kv_txn_result_get_revision  (KvTxnResult  *self);
guint              kv_txn_result_get_n_results (KvTxnResult  *self);
KvOpResult        *kv_txn_result_get           (KvTxnResult  *self,
                                                guint         index);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvTxn, kv_txn_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvTxnResult, kv_txn_result_unref)

G_END_DECLS
