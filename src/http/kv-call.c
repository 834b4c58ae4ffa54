/* kv-call.c: a request paused while the store answers
 *
 * SPDX-License-Identifier: MIT
 *
 * A handler that asks the store answers in the store's callback, and
 * pauses its message only if the callback has not run by the time the
 * call returns (the in-memory store answers within the call), so that a
 * store answering over the network never holds up the other connections
 * of its thread, and the one in memory costs no pause. The call's cancellable
 * is cancelled when the client goes away meanwhile (the connection
 * watches for it when a call takes long, and closes the connection), or
 * when the connection is taken from libsoup: the answer then goes
 * nowhere, and the message stays paused for libsoup to drop.
 */
#include "config.h"

#include "kv-call.h"
#include "kv-server-private.h"
#include "net/kv-connection.h"

struct _KvCall
{
  gint ref_count;               /* the handler's, and the store's until it answers */
  gboolean answered;
  gboolean paused;
  KvServer *server;             /* (owned) */
  SoupServerMessage *msg;       /* (owned) */
  GCancellable *cancellable;    /* (owned) */
  KvConnection *connection;     /* (owned) (nullable) */
  gpointer data;
  GDestroyNotify notify;
  gboolean abandoned;           /* libsoup is done with the message */
};

static void
kv_call_free (KvCall *self)
{
  if (self->notify != NULL)
    self->notify (self->data);
  g_object_unref (self->cancellable);
  g_object_unref (self->msg);
  g_object_unref (self->server);
  g_free (self);
}

static void
kv_call_unref (KvCall *self)
{
  if (--self->ref_count == 0)
    kv_call_free (self);
}

/**
 * kv_call_begin:
 * @server: the server
 * @msg: the request
 *
 * To be followed by the call to the store, whose callback ends with
 * kv_call_end(), then by kv_call_dispatched(), whichever comes first.
 *
 * Returns: (transfer full): the call
 */
KvCall *
kv_call_begin (KvServer          *server,
               SoupServerMessage *msg)
{
  KvCall *self = g_new0 (KvCall, 1);
  KvConnection *connection = kv_connection_from_message (msg);

  self->ref_count = 2;
  self->server = g_object_ref (server);
  self->msg = g_object_ref (msg);
  if (connection != NULL)
    {
      self->connection = g_object_ref (connection);
      self->cancellable = kv_connection_call_started (connection);
    }
  else
    self->cancellable = g_cancellable_new ();
  kv_server_add_call (server, msg, self);

  return self;
}

/**
 * kv_call_dispatched:
 * @self: (transfer full): a #KvCall whose call to the store was made
 *
 * Pauses the message if the store has not answered yet: the in-memory
 * store answers within the call, and then nothing waits.
 */
void
kv_call_dispatched (KvCall *self)
{
  if (!self->answered)
    {
      self->paused = TRUE;
      soup_server_message_pause (self->msg);
    }
  kv_call_unref (self);
}

/* The message's connection went, or the server: nothing to answer, and
 * libsoup must not be asked to write. */
void
kv_call_abandon (KvCall *self)
{
  self->abandoned = TRUE;
  g_cancellable_cancel (self->cancellable);
}

KvServer *
kv_call_get_server (KvCall *self)
{
  return self->server;
}

SoupServerMessage *
kv_call_get_message (KvCall *self)
{
  return self->msg;
}

/**
 * kv_call_get_cancellable:
 *
 * Returns: (transfer none): cancelled when the client has gone away
 */
GCancellable *
kv_call_get_cancellable (KvCall *self)
{
  return self->cancellable;
}

/**
 * kv_call_set_data:
 * @self: a #KvCall
 * @data: what the handler keeps until the answer
 * @notify: (nullable): frees @data at kv_call_end()
 */
void
kv_call_set_data (KvCall         *self,
                  gpointer        data,
                  GDestroyNotify  notify)
{
  self->data = data;
  self->notify = notify;
}

gpointer
kv_call_get_data (KvCall *self)
{
  return self->data;
}

/**
 * kv_call_end:
 * @self: (transfer full): a #KvCall
 *
 * Sends the answer the handler set on the message.
 */
void
kv_call_end (KvCall *self)
{
  self->answered = TRUE;
  if (self->connection != NULL)
    {
      kv_connection_call_done (self->connection);
      g_clear_object (&self->connection);
    }

  /* Cancelled: the connection was taken from libsoup, or is gone. */
  if (!self->abandoned)
    {
      kv_server_remove_call (self->server, self->msg);
      if (self->paused && !g_cancellable_is_cancelled (self->cancellable))
        soup_server_message_unpause (self->msg);
    }
  kv_call_unref (self);
}
