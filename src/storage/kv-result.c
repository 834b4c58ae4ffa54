/* kv-result.c: the result of an asynchronous call that was ready at once
 *
 * SPDX-License-Identifier: MIT
 *
 * The in-memory store answers every call before it returns. Through a
 * GTask the answer would still wait for an idle of the main context, a
 * source made and destroyed on every request; a KvResult lets the
 * asynchronous call hand its callback the answer at once, in the call,
 * and callers are written for either.
 */
#include "config.h"

#include "kv-result.h"

struct _KvResult
{
  GObject parent_instance;

  GObject *source_object;       /* (owned) (nullable) */
  gpointer source_tag;
  gpointer user_data;
  gpointer pointer;             /* (owned) */
  GDestroyNotify destroy;
  GError *error;                /* (owned) (nullable) */
  guint index;
};

static void kv_result_async_result_iface_init (GAsyncResultIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (KvResult, kv_result, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT,
                                                      kv_result_async_result_iface_init))

static gpointer
kv_result_get_user_data (GAsyncResult *result)
{
  return KV_RESULT (result)->user_data;
}

static GObject *
kv_result_get_source_object (GAsyncResult *result)
{
  KvResult *self = KV_RESULT (result);

  return self->source_object != NULL ? g_object_ref (self->source_object) : NULL;
}

static gboolean
kv_result_is_tagged (GAsyncResult *result,
                     gpointer      source_tag)
{
  return KV_RESULT (result)->source_tag == source_tag;
}

static void
kv_result_async_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_user_data = kv_result_get_user_data;
  iface->get_source_object = kv_result_get_source_object;
  iface->is_tagged = kv_result_is_tagged;
}

static void
kv_result_finalize (GObject *object)
{
  KvResult *self = KV_RESULT (object);

  if (self->pointer != NULL && self->destroy != NULL)
    self->destroy (self->pointer);
  g_clear_error (&self->error);
  g_clear_object (&self->source_object);

  G_OBJECT_CLASS (kv_result_parent_class)->finalize (object);
}

static void
kv_result_class_init (KvResultClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = kv_result_finalize;
}

static void
kv_result_init (KvResult *self)
{
}

/**
 * kv_result_new:
 * @source_object: (nullable): the object the call was made on
 * @source_tag: the call's _async function, to check in _finish
 * @user_data: the callback's data
 *
 * Returns: (transfer full): a result to hand to the callback at once
 */
KvResult *
kv_result_new (gpointer source_object,
               gpointer source_tag,
               gpointer user_data)
{
  KvResult *self = g_object_new (KV_TYPE_RESULT, NULL);

  self->source_object = source_object != NULL ? g_object_ref (source_object) : NULL;
  self->source_tag = source_tag;
  self->user_data = user_data;
  return self;
}

/**
 * kv_result_set_pointer:
 * @self: a #KvResult
 * @pointer: (transfer full): the answer
 * @destroy: (nullable): frees it if nobody takes it
 */
void
kv_result_set_pointer (KvResult       *self,
                       gpointer        pointer,
                       GDestroyNotify  destroy)
{
  g_return_if_fail (KV_IS_RESULT (self));

  self->pointer = pointer;
  self->destroy = destroy;
}

/**
 * kv_result_set_error:
 * @self: a #KvResult
 * @error: (transfer full): the call's error
 */
void
kv_result_set_error (KvResult *self,
                     GError   *error)
{
  g_return_if_fail (KV_IS_RESULT (self));

  self->error = error;
}

/* A number beside the answer, such as the operation that failed. */
void
kv_result_set_index (KvResult *self,
                     guint     index)
{
  self->index = index;
}

guint
kv_result_get_index (KvResult *self)
{
  return self->index;
}

/**
 * kv_result_propagate_pointer:
 * @self: a #KvResult
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the answer, once, or %NULL with
 *   @error
 */
gpointer
kv_result_propagate_pointer (KvResult  *self,
                             GError   **error)
{
  g_return_val_if_fail (KV_IS_RESULT (self), NULL);

  if (self->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->error));
      return NULL;
    }
  return g_steal_pointer (&self->pointer);
}
