/* kv-change-hub.c: a store's changes, delivered to each subscriber in its
 * own main context, and the history of the latest ones
 *
 * SPDX-License-Identifier: MIT
 *
 * A store publishes each commit's changes at its one commit point, under
 * its write lock, so commits reach the hub in revision order whichever
 * thread made them (a worker writing, the sweeper expiring). The hub
 * keeps them in a history (the latest max-changes changes, within
 * max-bytes, whole revisions at a time), and appends each to the queue of
 * every subscriber whose key or prefix it matches; there a subscriber
 * starting from an earlier revision finds the changes it missed. Nothing
 * is lost and nothing is delivered twice: a subscription's replay and its
 * first new changes are taken under the same lock as publishing.
 *
 * The subscribers of one main context share one source, a mailbox: a
 * publish wakes each context once, however many of its subscribers the
 * changes reach, and a context with a thousand subscribers iterates one
 * source, not a thousand. Subscribers are indexed by key and by prefix,
 * so that a change costs nothing for those it does not concern. A
 * subscriber whose context does not run accumulates its changes (a
 * consumer with a bound must keep its own, as watch streams do).
 */
#include "config.h"

#include <string.h>

#include "kv-change-hub.h"

/* Marks the end of a revision in a subscriber's queue. */
static const char end_of_revision;
#define END_OF_REVISION ((gpointer) &end_of_revision)

typedef struct _Mailbox Mailbox;

typedef struct
{
  gint ref_count;               /* the hub's, its mailbox's while ready, a dispatch's */
  guint id;
  gint removed;                 /* (atomic) */
  Mailbox *mailbox;             /* (unowned) valid while subscribed */
  GQueue queue;                 /* KvChange (owned) and END_OF_REVISION, under the hub's lock */
  gboolean ready;               /* in its mailbox's ready queue, under the hub's lock */
  gboolean pushed;              /* got a change of the commit being published */
  char *key;                    /* (owned) (nullable) */
  char *prefix;                 /* (owned) (nullable) */
  KvChangeFunc func;
  gpointer user_data;
  GDestroyNotify notify;
} Subscriber;

struct _Mailbox
{
  GSource source;
  GMutex *lock;                 /* (unowned) the hub's */
  GMainContext *context;        /* (unowned) where it is attached */
  GQueue ready;                 /* (element-type Subscriber) (owned) with changes queued */
  guint n_subscribers;
};

typedef struct
{
  guint length;
  guint count;
} PrefixLength;

struct _KvChangeHub
{
  GMutex lock;
  GHashTable *subscribers;      /* id → Subscriber (owned) */
  GPtrArray *everything;        /* (element-type Subscriber) (unowned) no key, no prefix */
  GHashTable *by_key;           /* key → GPtrArray of Subscriber (unowned) */
  GHashTable *by_prefix;        /* prefix → GPtrArray of Subscriber (unowned) */
  GArray *prefix_lengths;       /* (element-type PrefixLength) of by_prefix's keys */
  GString *probe;               /* a key cut to each prefix length, while publishing */
  GHashTable *mailboxes;        /* GMainContext → Mailbox (owned) */
  GPtrArray *pushed;            /* Subscriber (unowned) reached by the commit being published */
  guint next_id;
  gint n_subscribers;           /* (atomic) */

  GQueue history;               /* (element-type KvChange) (owned) oldest first */
  guint64 history_bytes;
  guint max_changes;
  guint64 max_bytes;
  gint keeps_history;           /* (atomic) max_changes > 0 */
  guint64 oldest;               /* every change after it is in the history */
  guint64 revision;             /* the latest change's */
};

static Subscriber *
subscriber_ref (Subscriber *subscriber)
{
  g_atomic_int_inc (&subscriber->ref_count);
  return subscriber;
}

static void
clear_queue (GQueue *queue)
{
  gpointer item;

  while ((item = g_queue_pop_head (queue)) != NULL)
    if (item != END_OF_REVISION)
      kv_change_unref (item);
}

static void
subscriber_unref (Subscriber *subscriber)
{
  if (!g_atomic_int_dec_and_test (&subscriber->ref_count))
    return;

  clear_queue (&subscriber->queue);
  if (subscriber->notify != NULL)
    subscriber->notify (subscriber->user_data);
  g_free (subscriber->key);
  g_free (subscriber->prefix);
  g_free (subscriber);
}

typedef struct
{
  Subscriber *subscriber;       /* (owned) */
  GQueue changes;
} Delivery;

static gboolean
mailbox_dispatch (GSource     *source,
                  GSourceFunc  callback,
                  gpointer     data)
{
  Mailbox *mailbox = (Mailbox *) source;
  g_autoptr(GArray) deliveries = g_array_new (FALSE, FALSE, sizeof (Delivery));
  Subscriber *subscriber;

  g_source_set_ready_time (source, -1);

  /* Each subscriber's queue is taken with the ready list, so that what a
   * publish adds meanwhile makes it ready again, for the next dispatch. */
  g_mutex_lock (mailbox->lock);
  while ((subscriber = g_queue_pop_head (&mailbox->ready)) != NULL)
    {
      Delivery delivery = { subscriber, subscriber->queue };

      subscriber->ready = FALSE;
      g_queue_init (&subscriber->queue);
      g_array_append_val (deliveries, delivery);
    }
  g_mutex_unlock (mailbox->lock);

  for (guint i = 0; i < deliveries->len; i++)
    {
      Delivery *delivery = &g_array_index (deliveries, Delivery, i);
      gpointer item;

      while ((item = g_queue_pop_head (&delivery->changes)) != NULL)
        {
          gboolean last;

          if (item == END_OF_REVISION)
            continue;
          last = g_queue_peek_head (&delivery->changes) == END_OF_REVISION;
          /* A subscriber may unsubscribe from its own callback: drop the
           * rest. */
          if (!g_atomic_int_get (&delivery->subscriber->removed))
            delivery->subscriber->func (item, last, delivery->subscriber->user_data);
          kv_change_unref (item);
        }
      subscriber_unref (delivery->subscriber);
    }

  return G_SOURCE_CONTINUE;
}

static void
mailbox_finalize (GSource *source)
{
  Mailbox *mailbox = (Mailbox *) source;

  g_queue_clear_full (&mailbox->ready, (GDestroyNotify) subscriber_unref);
}

static GSourceFuncs mailbox_funcs = {
  .dispatch = mailbox_dispatch,
  .finalize = mailbox_finalize,
};

static void
mailbox_release (gpointer data)
{
  GSource *source = data;

  g_source_destroy (source);
  g_source_unref (source);
}

/**
 * kv_change_hub_new:
 *
 * Returns: (transfer full): a hub with no subscriber, keeping a history of
 *   %KV_CHANGE_HUB_DEFAULT_HISTORY changes from revision 0 on
 */
KvChangeHub *
kv_change_hub_new (void)
{
  KvChangeHub *self = g_new0 (KvChangeHub, 1);

  g_mutex_init (&self->lock);
  self->subscribers = g_hash_table_new_full (NULL, NULL, NULL,
                                             (GDestroyNotify) subscriber_unref);
  self->everything = g_ptr_array_new ();
  self->by_key = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) g_ptr_array_unref);
  self->by_prefix = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) g_ptr_array_unref);
  self->prefix_lengths = g_array_new (FALSE, FALSE, sizeof (PrefixLength));
  self->probe = g_string_new (NULL);
  self->mailboxes = g_hash_table_new_full (NULL, NULL, NULL, mailbox_release);
  self->pushed = g_ptr_array_new ();
  self->next_id = 1;
  g_queue_init (&self->history);
  self->max_changes = KV_CHANGE_HUB_DEFAULT_HISTORY;
  self->max_bytes = KV_CHANGE_HUB_DEFAULT_HISTORY_SIZE;
  self->keeps_history = TRUE;

  return self;
}

void
kv_change_hub_free (KvChangeHub *self)
{
  /* Subscribers first: their mailboxes go with the last of each. */
  g_hash_table_remove_all (self->subscribers);
  g_hash_table_unref (self->mailboxes);
  g_hash_table_unref (self->subscribers);
  g_ptr_array_unref (self->everything);
  g_hash_table_unref (self->by_key);
  g_hash_table_unref (self->by_prefix);
  g_array_unref (self->prefix_lengths);
  g_string_free (self->probe, TRUE);
  g_ptr_array_unref (self->pushed);
  g_queue_clear_full (&self->history, (GDestroyNotify) kv_change_unref);
  g_mutex_clear (&self->lock);
  g_free (self);
}

/**
 * kv_change_hub_set_revision:
 * @self: a #KvChangeHub
 * @revision: the store's revision
 *
 * For a store that starts at @revision (loaded from disk) before
 * publishing anything: its history starts there.
 */
void
kv_change_hub_set_revision (KvChangeHub *self,
                            guint64      revision)
{
  g_mutex_lock (&self->lock);
  g_warn_if_fail (g_queue_is_empty (&self->history));
  self->revision = self->oldest = revision;
  g_mutex_unlock (&self->lock);
}

/* Drops the oldest revisions, whole, until the history is within bounds. */
static void
trim_history_locked (KvChangeHub *self)
{
  while (!g_queue_is_empty (&self->history) &&
         (self->history.length > self->max_changes || self->history_bytes > self->max_bytes))
    {
      guint64 revision = kv_change_get_revision (g_queue_peek_head (&self->history));
      KvChange *change;

      while ((change = g_queue_peek_head (&self->history)) != NULL &&
             kv_change_get_revision (change) == revision)
        {
          g_queue_pop_head (&self->history);
          self->history_bytes -= kv_change_get_size (change);
          kv_change_unref (change);
        }
      self->oldest = revision;
    }
}

/**
 * kv_change_hub_set_history_limits:
 * @self: a #KvChangeHub
 * @max_changes: the most changes to keep; 0 keeps none
 * @max_bytes: the most memory they may take
 *
 * Bounds the history; the oldest revisions go first, whole.
 */
void
kv_change_hub_set_history_limits (KvChangeHub *self,
                                  guint        max_changes,
                                  guint64      max_bytes)
{
  g_mutex_lock (&self->lock);
  self->max_changes = max_changes;
  self->max_bytes = max_bytes;
  g_atomic_int_set (&self->keeps_history, max_changes > 0);
  trim_history_locked (self);
  g_mutex_unlock (&self->lock);
}

static void
get_history_info_locked (KvChangeHub   *self,
                         KvHistoryInfo *info)
{
  info->n_changes = self->history.length;
  info->bytes = self->history_bytes;
  info->oldest = self->oldest;
  info->revision = self->revision;
}

/**
 * kv_change_hub_get_history_info:
 * @self: a #KvChangeHub
 * @info: (out caller-allocates): what the history holds
 */
void
kv_change_hub_get_history_info (KvChangeHub   *self,
                                KvHistoryInfo *info)
{
  g_mutex_lock (&self->lock);
  get_history_info_locked (self, info);
  g_mutex_unlock (&self->lock);
}

/* Queues @change for @subscriber, in the commit being published or the
 * replay being made. */
static void
push_locked (KvChangeHub *self,
             Subscriber  *subscriber,
             KvChange    *change)
{
  g_queue_push_tail (&subscriber->queue, kv_change_ref (change));
  if (!subscriber->pushed)
    {
      subscriber->pushed = TRUE;
      g_ptr_array_add (self->pushed, subscriber);
    }
}

static void
push_all_locked (KvChangeHub *self,
                 GPtrArray   *subscribers,
                 KvChange    *change)
{
  for (guint i = 0; i < subscribers->len; i++)
    push_locked (self, g_ptr_array_index (subscribers, i), change);
}

/* Ends the revision for every subscriber it reached, and wakes their
 * mailboxes. */
static void
end_revision_locked (KvChangeHub *self)
{
  for (guint i = 0; i < self->pushed->len; i++)
    {
      Subscriber *subscriber = g_ptr_array_index (self->pushed, i);
      Mailbox *mailbox = subscriber->mailbox;

      subscriber->pushed = FALSE;
      g_queue_push_tail (&subscriber->queue, END_OF_REVISION);
      if (subscriber->ready)
        continue;
      subscriber->ready = TRUE;
      g_queue_push_tail (&mailbox->ready, subscriber_ref (subscriber));
      /* Thread-safe, and wakes the mailbox's context. */
      if (mailbox->ready.length == 1)
        g_source_set_ready_time ((GSource *) mailbox, 0);
    }
  g_ptr_array_set_size (self->pushed, 0);
}

static gboolean
matches (const Subscriber *subscriber,
         const char       *key)
{
  if (key == NULL)
    return TRUE;
  if (subscriber->key != NULL)
    return strcmp (subscriber->key, key) == 0;
  if (subscriber->prefix != NULL)
    return g_str_has_prefix (key, subscriber->prefix);
  return TRUE;
}

static void
route_locked (KvChangeHub *self,
              KvChange    *change)
{
  const char *key = kv_change_get_key (change);
  GPtrArray *subscribers;
  gsize key_len;

  /* A clear concerns every key. */
  if (key == NULL)
    {
      GHashTableIter iter;
      gpointer subscriber;

      g_hash_table_iter_init (&iter, self->subscribers);
      while (g_hash_table_iter_next (&iter, NULL, &subscriber))
        push_locked (self, subscriber, change);
      return;
    }

  push_all_locked (self, self->everything, change);
  if (g_hash_table_size (self->by_key) > 0 &&
      (subscribers = g_hash_table_lookup (self->by_key, key)) != NULL)
    push_all_locked (self, subscribers, change);

  if (self->prefix_lengths->len == 0)
    return;
  /* One lookup per length that some prefix has. */
  key_len = strlen (key);
  g_string_assign (self->probe, key);
  for (guint i = 0; i < self->prefix_lengths->len; i++)
    {
      guint length = g_array_index (self->prefix_lengths, PrefixLength, i).length;

      if (length > key_len)
        continue;
      self->probe->str[length] = '\0';
      subscribers = g_hash_table_lookup (self->by_prefix, self->probe->str);
      self->probe->str[length] = key[length];
      if (subscribers != NULL)
        push_all_locked (self, subscribers, change);
    }
}

/**
 * kv_change_hub_publish:
 * @self: a #KvChangeHub
 * @revision: the revision of a commit, the store's latest
 * @changes: (array length=n_changes): its changes, if the hub wants them
 * @n_changes: how many
 *
 * To be called at the store's commit point, under its write lock, for
 * every commit, so that every subscriber sees changes in revision order.
 */
void
kv_change_hub_publish (KvChangeHub      *self,
                       guint64           revision,
                       KvChange * const *changes,
                       guint             n_changes)
{
  g_mutex_lock (&self->lock);
  for (guint i = 0; i < n_changes; i++)
    {
      if (self->max_changes > 0)
        {
          g_queue_push_tail (&self->history, kv_change_ref (changes[i]));
          self->history_bytes += kv_change_get_size (changes[i]);
        }
      if (g_hash_table_size (self->subscribers) > 0)
        route_locked (self, changes[i]);
    }
  self->revision = revision;
  end_revision_locked (self);
  if (self->max_changes == 0)
    self->oldest = revision;
  trim_history_locked (self);
  g_mutex_unlock (&self->lock);
}

static void
add_prefix_length_locked (KvChangeHub *self,
                          guint        length,
                          int          delta)
{
  for (guint i = 0; i < self->prefix_lengths->len; i++)
    {
      PrefixLength *p = &g_array_index (self->prefix_lengths, PrefixLength, i);

      if (p->length == length)
        {
          p->count += delta;
          if (p->count == 0)
            g_array_remove_index_fast (self->prefix_lengths, i);
          return;
        }
    }

  g_return_if_fail (delta > 0);
  g_array_append_val (self->prefix_lengths, ((PrefixLength) { length, delta }));
}

static void
index_locked (KvChangeHub *self,
              Subscriber  *subscriber)
{
  GHashTable *table = subscriber->key != NULL ? self->by_key : self->by_prefix;
  const char *match = subscriber->key != NULL ? subscriber->key : subscriber->prefix;
  GPtrArray *list;

  if (match == NULL)
    {
      g_ptr_array_add (self->everything, subscriber);
      return;
    }

  list = g_hash_table_lookup (table, match);
  if (list == NULL)
    {
      list = g_ptr_array_new ();
      g_hash_table_insert (table, g_strdup (match), list);
      if (table == self->by_prefix)
        add_prefix_length_locked (self, strlen (match), 1);
    }
  g_ptr_array_add (list, subscriber);
}

static void
unindex_locked (KvChangeHub *self,
                Subscriber  *subscriber)
{
  GHashTable *table = subscriber->key != NULL ? self->by_key : self->by_prefix;
  const char *match = subscriber->key != NULL ? subscriber->key : subscriber->prefix;
  GPtrArray *list;

  if (match == NULL)
    {
      g_ptr_array_remove_fast (self->everything, subscriber);
      return;
    }

  list = g_hash_table_lookup (table, match);
  g_ptr_array_remove_fast (list, subscriber);
  if (list->len == 0)
    {
      if (table == self->by_prefix)
        add_prefix_length_locked (self, strlen (match), -1);
      g_hash_table_remove (table, match);
    }
}

static Mailbox *
get_mailbox_locked (KvChangeHub  *self,
                    GMainContext *context)
{
  Mailbox *mailbox = g_hash_table_lookup (self->mailboxes, context);

  if (mailbox == NULL)
    {
      mailbox = (Mailbox *) g_source_new (&mailbox_funcs, sizeof (Mailbox));
      mailbox->lock = &self->lock;
      mailbox->context = context;
      g_queue_init (&mailbox->ready);
      g_source_set_name ((GSource *) mailbox, "KvChangeHub mailbox");
      g_source_set_ready_time ((GSource *) mailbox, -1);
      g_source_attach ((GSource *) mailbox, context);
      g_hash_table_insert (self->mailboxes, context, mailbox);
    }
  mailbox->n_subscribers++;

  return mailbox;
}

/* Queues every change after @since that @subscriber matches, a revision
 * at a time. */
static void
replay_locked (KvChangeHub *self,
               Subscriber  *subscriber,
               guint64      since)
{
  GList *l = self->history.tail;
  guint64 revision = 0;

  while (l != NULL && kv_change_get_revision (l->data) > since)
    l = l->prev;
  l = l != NULL ? l->next : self->history.head;

  for (; l != NULL; l = l->next)
    {
      KvChange *change = l->data;

      if (kv_change_get_revision (change) != revision)
        {
          end_revision_locked (self);
          revision = kv_change_get_revision (change);
        }
      if (matches (subscriber, kv_change_get_key (change)))
        push_locked (self, subscriber, change);
    }
  end_revision_locked (self);
}

/**
 * kv_change_hub_subscribe:
 * @self: a #KvChangeHub
 * @context: (nullable): where @func runs, or %NULL for the thread-default
 *   main context of the caller
 * @options: (nullable): where to start and what to get; %NULL for every
 *   change from now on
 * @func: receives the changes, in order
 * @user_data: data for @func
 * @notify: (nullable): frees @user_data once unsubscribed
 * @info: (out caller-allocates) (optional): the history as the
 *   subscription starts: its revision is the last one the subscription
 *   does not get as a new change
 *
 * Returns: the subscription's id, for kv_change_hub_unsubscribe(); or 0,
 *   taking nothing, when the history cannot start after @options' since:
 *   it is older than @info's oldest, or newer than its revision
 */
guint
kv_change_hub_subscribe (KvChangeHub              *self,
                         GMainContext             *context,
                         const KvSubscribeOptions *options,
                         KvChangeFunc              func,
                         gpointer                  user_data,
                         GDestroyNotify            notify,
                         KvHistoryInfo            *info)
{
  g_autoptr(GMainContext) owned = NULL;
  guint64 since = options != NULL ? options->since : KV_REVISION_NOW;
  Subscriber *subscriber;
  KvHistoryInfo dummy;
  guint id;

  g_return_val_if_fail (func != NULL, 0);
  g_return_val_if_fail (options == NULL || options->key == NULL || options->prefix == NULL, 0);

  if (info == NULL)
    info = &dummy;
  if (context == NULL)
    context = owned = g_main_context_ref_thread_default ();

  g_mutex_lock (&self->lock);
  get_history_info_locked (self, info);
  if (since != KV_REVISION_NOW && (since < self->oldest || since > self->revision))
    {
      g_mutex_unlock (&self->lock);
      return 0;
    }

  subscriber = g_new0 (Subscriber, 1);
  subscriber->ref_count = 1;
  g_queue_init (&subscriber->queue);
  subscriber->func = func;
  subscriber->user_data = user_data;
  subscriber->notify = notify;
  if (options != NULL && options->key != NULL)
    subscriber->key = g_strdup (options->key);
  else if (options != NULL && options->prefix != NULL && options->prefix[0] != '\0')
    subscriber->prefix = g_strdup (options->prefix);
  subscriber->mailbox = get_mailbox_locked (self, context);
  id = subscriber->id = self->next_id++;

  if (since != KV_REVISION_NOW)
    replay_locked (self, subscriber, since);
  g_hash_table_insert (self->subscribers, GUINT_TO_POINTER (id), subscriber);
  index_locked (self, subscriber);
  g_atomic_int_inc (&self->n_subscribers);
  g_mutex_unlock (&self->lock);

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
  GQueue queue = G_QUEUE_INIT;
  GQueue ready = G_QUEUE_INIT;
  Mailbox *gone = NULL;
  Subscriber *subscriber;

  g_mutex_lock (&self->lock);
  if (!g_hash_table_steal_extended (self->subscribers, GUINT_TO_POINTER (id), NULL,
                                    (gpointer *) &subscriber))
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  unindex_locked (self, subscriber);
  g_atomic_int_set (&subscriber->removed, TRUE);
  queue = subscriber->queue;
  g_queue_init (&subscriber->queue);
  if (--subscriber->mailbox->n_subscribers == 0)
    {
      gone = subscriber->mailbox;
      g_hash_table_steal (self->mailboxes, gone->context);
      ready = gone->ready;
      g_queue_init (&gone->ready);
    }
  subscriber->mailbox = NULL;
  g_atomic_int_dec_and_test (&self->n_subscribers);
  g_mutex_unlock (&self->lock);

  /* Outside the lock: the last reference to a subscriber runs its
   * notify. The source may be dispatching in its own thread meanwhile:
   * it holds what it took. */
  clear_queue (&queue);
  if (gone != NULL)
    {
      g_queue_clear_full (&ready, (GDestroyNotify) subscriber_unref);
      mailbox_release (gone);
    }
  subscriber_unref (subscriber);
}

/**
 * kv_change_hub_wants_changes:
 *
 * Returns: whether publishing would reach anyone or be kept; a store may
 *   skip making changes when not
 */
gboolean
kv_change_hub_wants_changes (KvChangeHub *self)
{
  return g_atomic_int_get (&self->n_subscribers) > 0 || g_atomic_int_get (&self->keeps_history);
}
