/* kv-change-hub.h: a store's changes, delivered to each subscriber in its
 * own main context, and the history of the latest ones
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-change.h"

G_BEGIN_DECLS

/* As a subscription's since: from now on, with no history. */
#define KV_REVISION_NOW G_MAXUINT64

/* The history a store keeps unless told otherwise. */
#define KV_CHANGE_HUB_DEFAULT_HISTORY 10000
#define KV_CHANGE_HUB_DEFAULT_HISTORY_SIZE (64 * 1024 * 1024)

/**
 * KvChangeFunc:
 * @change: a change, in revision order after the one before
 * @last: whether it is the last change of its revision that this
 *   subscription gets (a transaction's changes share one revision)
 * @user_data: the subscriber's data
 *
 * Receives one change, in the subscriber's main context.
 */
typedef void (*KvChangeFunc) (KvChange *change,
                              gboolean  last,
                              gpointer  user_data);

/**
 * KvSubscribeOptions:
 * @since: deliver every change after this revision first, from the
 *   history, then every new one; %KV_REVISION_NOW for the new ones only
 * @key: (nullable): only the changes to this key
 * @prefix: (nullable): only the changes to keys that start with this
 *
 * Which changes a subscription gets. A clear changes every key: it
 * reaches every subscription. @key and @prefix are not both set.
 */
typedef struct
{
  guint64 since;
  const char *key;
  const char *prefix;
} KvSubscribeOptions;

/**
 * KvHistoryInfo:
 * @n_changes: changes held
 * @bytes: the memory they take, their entries' keys and values included
 * @oldest: the oldest revision a subscription can start after
 * @revision: the revision of the latest change published
 */
typedef struct
{
  guint n_changes;
  guint64 bytes;
  guint64 oldest;
  guint64 revision;
} KvHistoryInfo;

typedef struct _KvChangeHub KvChangeHub;

KvChangeHub *kv_change_hub_new         (void);
void         kv_change_hub_free        (KvChangeHub              *self);
void         kv_change_hub_set_revision (KvChangeHub             *self,
                                         guint64                  revision);
void         kv_change_hub_set_history_limits (KvChangeHub       *self,
                                               guint              max_changes,
                                               guint64            max_bytes);
void         kv_change_hub_get_history_info (KvChangeHub         *self,
                                             KvHistoryInfo       *info);
guint        kv_change_hub_subscribe   (KvChangeHub              *self,
                                        GMainContext             *context,
                                        const KvSubscribeOptions *options,
                                        KvChangeFunc              func,
                                        gpointer                  user_data,
                                        GDestroyNotify            notify,
                                        KvHistoryInfo            *info);
void         kv_change_hub_unsubscribe (KvChangeHub              *self,
                                        guint                     id);
gboolean     kv_change_hub_wants_changes (KvChangeHub            *self);
void         kv_change_hub_publish     (KvChangeHub              *self,
                                        guint64                   revision,
                                        KvChange * const         *changes,
                                        guint                     n_changes);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvChangeHub, kv_change_hub_free)

G_END_DECLS
