/* kv-listener.h: crafty-kv's own accept loop
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * KvListenerFunc:
 * @connection: (transfer none): a newly accepted connection; take a
 *   reference to keep it
 * @user_data: the data given to kv_listener_add_target()
 *
 * Receives each connection, in the main context of its target.
 */
typedef void (*KvListenerFunc) (GSocket  *connection,
                                gpointer  user_data);

#define KV_TYPE_LISTENER (kv_listener_get_type ())
G_DECLARE_FINAL_TYPE (KvListener, kv_listener, KV, LISTENER, GObject)

KvListener     *kv_listener_new               (guint            max_connections,
                                               GBytes          *forbidden);
void            kv_listener_set_max_connections (KvListener    *self,
                                               guint            max_connections);
gboolean        kv_listener_add_socket        (KvListener      *self,
                                               GSocket         *socket,
                                               GError         **error);
GSocket        *kv_listener_add_address       (KvListener      *self,
                                               GSocketAddress  *address,
                                               GError         **error);
void            kv_listener_add_target        (KvListener      *self,
                                               GMainContext    *context,
                                               KvListenerFunc   func,
                                               gpointer         user_data,
                                               GDestroyNotify   notify);
void            kv_listener_close             (KvListener      *self);
GPtrArray      *kv_listener_get_sockets       (KvListener      *self);
guint16         kv_listener_get_port          (KvListener      *self);
guint           kv_listener_get_n_connections (KvListener      *self);
guint           kv_listener_get_max_connections (KvListener    *self);

/**
 * KvListenerProgress:
 * @KV_LISTENER_PROGRESS_FRESH: accepted, no byte of a request yet
 * @KV_LISTENER_PROGRESS_IDLE: between two requests
 * @KV_LISTENER_PROGRESS_READING: reading a request's headers
 * @KV_LISTENER_PROGRESS_BUSY: a request is being read or answered
 *
 * How far a connection has come, for choosing which to shed.
 */
typedef enum
{
  KV_LISTENER_PROGRESS_FRESH,
  KV_LISTENER_PROGRESS_IDLE,
  KV_LISTENER_PROGRESS_READING,
  KV_LISTENER_PROGRESS_BUSY,
} KvListenerProgress;

typedef struct _KvListenerSlot KvListenerSlot;

typedef void (*KvListenerShedFunc) (GObject *owner);

KvListenerSlot *kv_listener_get_slot          (GSocket            *connection);
void            kv_listener_slot_set_owner    (KvListenerSlot     *slot,
                                               GObject            *owner,
                                               KvListenerShedFunc  shed);
void            kv_listener_slot_set_progress (KvListenerSlot     *slot,
                                               KvListenerProgress  progress);

G_END_DECLS
