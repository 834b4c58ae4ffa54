/* kv-change-hub.h: a store's changes, delivered to each subscriber in its
 * own main context
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-change.h"

G_BEGIN_DECLS

/**
 * KvChangeFunc:
 * @change: a change, in revision order after the one before
 * @user_data: the subscriber's data
 *
 * Receives one change, in the subscriber's main context.
 */
typedef void (*KvChangeFunc) (KvChange *change,
                              gpointer  user_data);

typedef struct _KvChangeHub KvChangeHub;

KvChangeHub *kv_change_hub_new         (void);
void         kv_change_hub_free        (KvChangeHub    *self);
guint        kv_change_hub_subscribe   (KvChangeHub    *self,
                                        GMainContext   *context,
                                        KvChangeFunc    func,
                                        gpointer        user_data,
                                        GDestroyNotify  notify);
void         kv_change_hub_unsubscribe (KvChangeHub    *self,
                                        guint           id);
gboolean     kv_change_hub_has_subscribers (KvChangeHub *self);
void         kv_change_hub_publish     (KvChangeHub    *self,
                                        KvChange       *change);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvChangeHub, kv_change_hub_free)

G_END_DECLS
