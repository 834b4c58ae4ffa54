/* kv-txn.c: operations applied all or nothing, at one revision
 *
 * SPDX-License-Identifier: MIT
 *
 * A transaction is a list of operations, each with its own precondition.
 * A store checks every precondition against the state before the
 * transaction, then applies the operations in order (a get sees the puts
 * before it), all at one new revision, or, when a precondition fails,
 * changes nothing. Single-key writes are one-operation transactions.
 */
#include "config.h"

#include "kv-txn.h"

struct _KvTxn
{
  gint ref_count;
  GArray *ops;      /* (element-type KvOp) (owned) */
};

struct _KvTxnResult
{
  gint ref_count;
  guint64 revision;
  GArray *results;  /* (element-type KvOpResult) (owned) */
};

G_DEFINE_BOXED_TYPE (KvTxn, kv_txn, kv_txn_ref, kv_txn_unref)
G_DEFINE_BOXED_TYPE (KvTxnResult, kv_txn_result, kv_txn_result_ref, kv_txn_result_unref)

static void
op_clear (gpointer data)
{
  KvOp *op = data;

  g_free (op->key);
  g_clear_pointer (&op->value, g_bytes_unref);
  g_free (op->content_type);
}

static void
op_result_clear (gpointer data)
{
  KvOpResult *result = data;

  g_clear_pointer (&result->entry, kv_entry_unref);
}

/**
 * kv_txn_new:
 *
 * Returns: (transfer full): an empty transaction
 */
KvTxn *
kv_txn_new (void)
{
  KvTxn *self = g_new0 (KvTxn, 1);

  self->ref_count = 1;
  self->ops = g_array_new (FALSE, TRUE, sizeof (KvOp));
  g_array_set_clear_func (self->ops, op_clear);

  return self;
}

KvTxn *
kv_txn_ref (KvTxn *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
kv_txn_unref (KvTxn *self)
{
  g_return_if_fail (self != NULL);

  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;
  g_array_unref (self->ops);
  g_free (self);
}

static KvOp *
add (KvTxn             *self,
     KvOpKind           kind,
     const char        *key,
     const KvCondition *condition)
{
  KvOp op = { kind, g_strdup (key), NULL, NULL, KV_TTL_NONE, 0, { { 0 }, { 0 } } };

  if (condition != NULL)
    op.condition = *condition;
  g_array_append_val (self->ops, op);

  return &g_array_index (self->ops, KvOp, self->ops->len - 1);
}

/**
 * kv_txn_add_get:
 * @self: a #KvTxn
 * @key: the key to read
 * @condition: (nullable): what must hold of it
 */
void
kv_txn_add_get (KvTxn             *self,
                const char        *key,
                const KvCondition *condition)
{
  g_return_if_fail (self != NULL && key != NULL);

  add (self, KV_OP_GET, key, condition);
}

/**
 * kv_txn_add_put:
 * @self: a #KvTxn
 * @key: the key to store under
 * @value: the value
 * @options: (nullable): content type, expiry and precondition
 */
void
kv_txn_add_put (KvTxn              *self,
                const char         *key,
                GBytes             *value,
                const KvSetOptions *options)
{
  KvOp *op;

  g_return_if_fail (self != NULL && key != NULL && value != NULL);
  g_return_if_fail (options == NULL || options->ttl_mode != KV_TTL_SET || options->ttl > 0);

  op = add (self, KV_OP_PUT, key, options != NULL ? options->condition : NULL);
  op->value = g_bytes_ref (value);
  if (options != NULL)
    {
      op->content_type = g_strdup (options->content_type);
      op->ttl_mode = options->ttl_mode;
      op->ttl = options->ttl;
    }
}

/**
 * kv_txn_add_delete:
 * @self: a #KvTxn
 * @key: the key to delete
 * @condition: (nullable): what must hold of it
 */
void
kv_txn_add_delete (KvTxn             *self,
                   const char        *key,
                   const KvCondition *condition)
{
  g_return_if_fail (self != NULL && key != NULL);

  add (self, KV_OP_DELETE, key, condition);
}

/**
 * kv_txn_add_delete_prefix:
 * @self: a #KvTxn
 * @prefix: deletes every key that starts with it ("" for all of them)
 */
void
kv_txn_add_delete_prefix (KvTxn      *self,
                          const char *prefix)
{
  g_return_if_fail (self != NULL && prefix != NULL);

  add (self, KV_OP_DELETE_PREFIX, prefix, NULL);
}

/**
 * kv_txn_add_clear:
 * @self: a #KvTxn
 *
 * Deletes every key, as one change of kind %KV_CHANGE_CLEAR.
 */
void
kv_txn_add_clear (KvTxn *self)
{
  g_return_if_fail (self != NULL);

  add (self, KV_OP_CLEAR, "", NULL);
}

guint
kv_txn_get_n_ops (KvTxn *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->ops->len;
}

/**
 * kv_txn_get_op:
 *
 * Returns: (transfer none): the @index-th operation
 */
const KvOp *
kv_txn_get_op (KvTxn *self,
               guint  index)
{
  g_return_val_if_fail (self != NULL && index < self->ops->len, NULL);

  return &g_array_index (self->ops, KvOp, index);
}

/**
 * kv_txn_result_new:
 * @n_ops: the transaction's number of operations
 *
 * For stores: one empty result per operation.
 *
 * Returns: (transfer full): a result
 */
KvTxnResult *
kv_txn_result_new (guint n_ops)
{
  KvTxnResult *self = g_new0 (KvTxnResult, 1);

  self->ref_count = 1;
  self->results = g_array_sized_new (FALSE, TRUE, sizeof (KvOpResult), n_ops);
  g_array_set_clear_func (self->results, op_result_clear);
  g_array_set_size (self->results, n_ops);

  return self;
}

KvTxnResult *
kv_txn_result_ref (KvTxnResult *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
kv_txn_result_unref (KvTxnResult *self)
{
  g_return_if_fail (self != NULL);

  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;
  g_array_unref (self->results);
  g_free (self);
}

void
kv_txn_result_set_revision (KvTxnResult *self,
                            guint64      revision)
{
  self->revision = revision;
}

/**
 * kv_txn_result_get_revision:
 *
 * Returns: the revision the transaction was applied at: a new one when it
 *   changed anything, else the store's revision it read
 */
guint64
kv_txn_result_get_revision (KvTxnResult *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->revision;
}

guint
kv_txn_result_get_n_results (KvTxnResult *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->results->len;
}

/**
 * kv_txn_result_get:
 *
 * Returns: (transfer none): the result of the @index-th operation
 */
KvOpResult *
kv_txn_result_get (KvTxnResult *self,
                   guint        index)
{
  g_return_val_if_fail (self != NULL && index < self->results->len, NULL);

  return &g_array_index (self->results, KvOpResult, index);
}
