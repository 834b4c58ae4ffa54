/* kv-change-hub.c: a store's changes, delivered to each subscriber in its
 * own main context
 *
 * SPDX-License-Identifier: MIT
 *
 * A store publishes each change at its one commit point, under its write
 * lock, so changes reach the hub in revision order whichever thread made
 * them (a worker writing, the sweeper expiring). The hub appends each to
 * every subscriber's queue and wakes the subscriber's main context; there
 * a source hands the queued changes over in order. Nothing is lost and
 * nothing is delivered twice; a subscriber that stops iterating its
 * context accumulates its changes (a consumer with a bound must keep its
 * own, as watch streams will).
 */
#include "config.h"

#include "kv-change-hub.h"

typedef struct
{
  GSource source;
  guint id;
  GQueue queue;                 /* (element-type KvChange) (owned): under the hub's lock */
  KvChangeFunc func;
  gpointer user_data;
  GDestroyNotify notify;
} Subscriber;

struct _KvChangeHub
{
  GMutex lock;
  GPtrArray *subscribers;       /* (element-type Subscriber) (owned) */
  guint next_id;
  int n_subscribers;            /* (atomic): for a publish without the lock */
};

static gboolean
subscriber_dispatch (GSource     *source,
                     GSourceFunc  callback,
                     gpointer     data)
{
  Subscriber *subscriber = (Subscriber *) source;
  GMutex *lock = data;
  GQueue ready = G_QUEUE_INIT;
  KvChange *change;

  g_source_set_ready_time (source, -1);

  g_mutex_lock (lock);
  ready = subscriber->queue;
  g_queue_init (&subscriber->queue);
  g_mutex_unlock (lock);

  while ((change = g_queue_pop_head (&ready)) != NULL)
    {
      /* A subscriber may unsubscribe from its own callback: drop the rest. */
      if (!g_source_is_destroyed (source))
        subscriber->func (change, subscriber->user_data);
      kv_change_unref (change);
    }

  return G_SOURCE_CONTINUE;
}

static void
subscriber_finalize (GSource *source)
{
  Subscriber *subscriber = (Subscriber *) source;

  g_queue_clear_full (&subscriber->queue, (GDestroyNotify) kv_change_unref);
  if (subscriber->notify != NULL)
    subscriber->notify (subscriber->user_data);
}

static GSourceFuncs subscriber_funcs = {
  .dispatch = subscriber_dispatch,
  .finalize = subscriber_finalize,
};

static void
subscriber_release (gpointer data)
{
  GSource *source = data;

  g_source_destroy (source);
  g_source_unref (source);
}

/**
 * kv_change_hub_new:
 *
 * Returns: (transfer full): a hub with no subscriber
 */
KvChangeHub *
kv_change_hub_new (void)
{
  KvChangeHub *self = g_new0 (KvChangeHub, 1);

  g_mutex_init (&self->lock);
  self->subscribers = g_ptr_array_new_with_free_func (subscriber_release);
  self->next_id = 1;

  return self;
}

void
kv_change_hub_free (KvChangeHub *self)
{
  g_ptr_array_unref (self->subscribers);
  g_mutex_clear (&self->lock);
  g_free (self);
}

/**
 * kv_change_hub_subscribe:
 * @self: a #KvChangeHub
 * @context: (nullable): where @func runs, or %NULL for the thread-default
 *   main context of the caller
 * @func: receives every change published from now on, in order
 * @user_data: data for @func
 * @notify: (nullable): frees @user_data once unsubscribed
 *
 * Returns: the subscription's id, for kv_change_hub_unsubscribe()
 */
guint
kv_change_hub_subscribe (KvChangeHub    *self,
                         GMainContext   *context,
                         KvChangeFunc    func,
                         gpointer        user_data,
                         GDestroyNotify  notify)
{
  GSource *source = g_source_new (&subscriber_funcs, sizeof (Subscriber));
  Subscriber *subscriber = (Subscriber *) source;
  g_autoptr(GMainContext) owned = NULL;
  guint id;

  if (context == NULL)
    context = owned = g_main_context_ref_thread_default ();

  g_queue_init (&subscriber->queue);
  subscriber->func = func;
  subscriber->user_data = user_data;
  subscriber->notify = notify;
  g_source_set_callback (source, NULL, &self->lock, NULL);
  g_source_set_name (source, "KvChangeHub subscriber");
  g_source_set_ready_time (source, -1);

  g_mutex_lock (&self->lock);
  id = subscriber->id = self->next_id++;
  g_ptr_array_add (self->subscribers, source);
  g_atomic_int_inc (&self->n_subscribers);
  g_mutex_unlock (&self->lock);

  g_source_attach (source, context);
  return id;
}

/**
 * kv_change_hub_unsubscribe:
 * @self: a #KvChangeHub
 * @id: what kv_change_hub_subscribe() returned
 *
 * No change is delivered to the subscription after this returns, when
 * called from the subscription's own main context.
 */
void
kv_change_hub_unsubscribe (KvChangeHub *self,
                           guint        id)
{
  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->subscribers->len; i++)
    {
      Subscriber *subscriber = g_ptr_array_index (self->subscribers, i);

      if (subscriber->id == id)
        {
          /* The source may be dispatching in its thread: destroying it
           * from under the lock is safe, its queue goes with it. */
          g_ptr_array_remove_index_fast (self->subscribers, i);
          g_atomic_int_dec_and_test (&self->n_subscribers);
          break;
        }
    }
  g_mutex_unlock (&self->lock);
}

/**
 * kv_change_hub_has_subscribers:
 *
 * Returns: whether publishing would reach anyone; a store may skip making
 *   changes when not
 */
gboolean
kv_change_hub_has_subscribers (KvChangeHub *self)
{
  return g_atomic_int_get (&self->n_subscribers) > 0;
}

/**
 * kv_change_hub_publish:
 * @self: a #KvChangeHub
 * @change: the latest change
 *
 * To be called at the store's commit point, under its write lock, so that
 * every subscriber sees changes in revision order.
 */
void
kv_change_hub_publish (KvChangeHub *self,
                       KvChange    *change)
{
  if (g_atomic_int_get (&self->n_subscribers) == 0)
    return;

  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->subscribers->len; i++)
    {
      Subscriber *subscriber = g_ptr_array_index (self->subscribers, i);

      g_queue_push_tail (&subscriber->queue, kv_change_ref (change));
      /* Thread-safe, and wakes the subscriber's context. */
      g_source_set_ready_time ((GSource *) subscriber, 0);
    }
  g_mutex_unlock (&self->lock);
}
