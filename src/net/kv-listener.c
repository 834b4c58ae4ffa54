/* kv-listener.c: crafty-kv's own accept loop
 *
 * SPDX-License-Identifier: MIT
 *
 * libsoup 3.2's own listener stops accepting for good after one failed
 * accept() (EMFILE under a connection flood is enough), and leaks the
 * GSocket of every connection it accepts. KvListener accepts connections
 * itself and hands each one to a target: today the KvServer of the main
 * thread, later possibly several, each in its own thread and main context,
 * served in turn.
 *
 * Before a connection counts, the listener asks who is at the other end:
 * over a Unix socket or the loopback only the user running crafty-kv gets
 * in, anyone else is answered 403 and closed without taking a slot, so
 * that another user's connections cannot crowd the owner out. When every
 * slot is taken, the connection that has made the least progress (idle
 * between requests, then silent since it connected, then the one that has
 * been trickling its headers the longest) is shed to make room, rather
 * than the newcomer refused; only when every connection is busy with a
 * request is the newcomer closed.
 *
 * A KvListener is used from the thread of the main context it was created
 * in; connections are delivered in their target's context and may be
 * released from any thread.
 */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "kv-listener.h"
#include "kv-peer.h"
#include "kv-refusal.h"

/* Connections taken per wake-up, so that a flood on one socket cannot
 * starve everything else on the main context. */
#define ACCEPT_BATCH 64
/* How long to pause accepting when the process or the system is out of
 * file descriptors or memory: long enough for connections to end, short
 * enough that clients barely notice. */
#define BACKOFF_MS 100
#define LISTEN_BACKLOG SOMAXCONN
#define WARN_INTERVAL_US (60 * G_USEC_PER_SEC)

/* How much of a refused peer's request is read and thrown away. */
#define FORBIDDEN_DRAIN (64 * 1024)

/* The open connections outlive the listener: each holds a reference and
 * gives its slot back when its socket is freed, wherever and whenever that
 * happens. */
typedef struct
{
  int open;                     /* (atomic) */
  GMutex lock;
  GQueue slots;                 /* (element-type KvListenerSlot): under @lock */
} Slots;

struct _KvListenerSlot
{
  Slots *pool;                  /* (owned) */
  GList link;                   /* in @pool's slots, under its lock */
  int progress;                 /* (atomic) KvListenerProgress */
  int since_ms;                 /* (atomic) monotonic ms (wrapping) of the last change */
  /* Set once by the connection's owner, read under the pool's lock. */
  GMainContext *context;        /* (owned) (nullable) */
  GWeakRef owner;
  KvListenerShedFunc shed;
  gboolean shedding;
};

typedef struct
{
  GMainContext *context;
  KvListenerFunc func;
  gpointer user_data;
  GDestroyNotify notify;
} Target;

/* A connection on its way to a target, which may outlive the listener. */
typedef struct
{
  Target *target;       /* (owned) */
  GSocket *connection;  /* (owned) */
} Handoff;

struct _KvListener
{
  GObject parent_instance;

  GMainContext *context;  /* (owned): where the accept loop runs */
  GPtrArray *sockets;     /* (element-type GSocket) (owned): listening */
  GPtrArray *sources;     /* (element-type GSource) (owned): one per socket */
  GPtrArray *targets;     /* (element-type Target) (owned) */
  guint next_target;
  guint max_connections;
  Slots *slots;           /* (owned) */
  GBytes *forbidden;      /* (owned) the answer to another user */
  GHashTable *refusals;   /* (element-type KvRefusal) (owned) running */
  int diag_fd;            /* for kv_peer_get_uid(), or -1 */
  uid_t uid;
  gboolean warned_peer_lookup;
  GSource *backoff;       /* (owned) (nullable) */
  gint64 warned_at;       /* when a shortage was last logged */
  gboolean closed;
};

enum {
  PROP_0,
  PROP_MAX_CONNECTIONS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (KvListener, kv_listener, G_TYPE_OBJECT)

static GQuark slot_quark;

static void
slots_clear (gpointer data)
{
  Slots *slots = data;

  g_mutex_clear (&slots->lock);
}

static int
now_ms (void)
{
  return (int) (guint) (g_get_monotonic_time () / 1000);
}

static void
slot_free (gpointer data)
{
  KvListenerSlot *slot = data;

  g_weak_ref_clear (&slot->owner);
  g_clear_pointer (&slot->context, g_main_context_unref);
  g_atomic_rc_box_release_full (slot->pool, slots_clear);
}

static void
slot_release (gpointer data)
{
  KvListenerSlot *slot = data;
  Slots *pool = slot->pool;

  g_mutex_lock (&pool->lock);
  g_queue_unlink (&pool->slots, &slot->link);
  g_mutex_unlock (&pool->lock);
  g_atomic_int_add (&pool->open, -1);
  g_atomic_rc_box_release_full (slot, slot_free);
}

/* Lower is shed first. */
static int
shed_rank (int progress)
{
  switch (progress)
    {
    case KV_LISTENER_PROGRESS_IDLE:
      return 0;
    case KV_LISTENER_PROGRESS_FRESH:
      return 1;
    case KV_LISTENER_PROGRESS_READING:
      return 2;
    default:
      return G_MAXINT;
    }
}

typedef struct
{
  KvListenerSlot *slot;         /* (owned) */
} Shedding;

static void
shedding_free (gpointer data)
{
  Shedding *shedding = data;

  g_atomic_rc_box_release_full (shedding->slot, slot_free);
  g_free (shedding);
}

static gboolean
shed_in_owner_context (gpointer data)
{
  Shedding *shedding = data;
  g_autoptr(GObject) owner = g_weak_ref_get (&shedding->slot->owner);

  if (owner != NULL)
    shedding->slot->shed (owner);
  return G_SOURCE_REMOVE;
}

/* Every slot is taken: asks the owner of the connection that has made the
 * least progress to close it. Returns FALSE when every one is busy. */
static gboolean
shed_one (KvListener *self)
{
  Slots *pool = self->slots;
  KvListenerSlot *victim = NULL;
  int victim_rank = G_MAXINT;
  int victim_age = 0;
  int now = now_ms ();
  Shedding *shedding;

  g_mutex_lock (&pool->lock);
  for (GList *l = pool->slots.head; l != NULL; l = l->next)
    {
      KvListenerSlot *slot = l->data;
      int rank = shed_rank (g_atomic_int_get (&slot->progress));
      int age = now - g_atomic_int_get (&slot->since_ms);

      if (slot->shedding || slot->shed == NULL || rank == G_MAXINT)
        continue;
      if (rank < victim_rank || (rank == victim_rank && age > victim_age))
        {
          victim = slot;
          victim_rank = rank;
          victim_age = age;
        }
    }
  if (victim != NULL)
    {
      victim->shedding = TRUE;
      victim = g_atomic_rc_box_acquire (victim);
    }
  g_mutex_unlock (&pool->lock);

  if (victim == NULL)
    return FALSE;

  g_debug ("Shedding a connection to make room (progress %d, %d ms)", victim_rank, victim_age);
  shedding = g_new0 (Shedding, 1);
  shedding->slot = victim;
  g_main_context_invoke_full (victim->context, G_PRIORITY_HIGH, shed_in_owner_context,
                              shedding, shedding_free);
  return TRUE;
}

static void
target_clear (gpointer data)
{
  Target *target = data;

  if (target->notify != NULL)
    target->notify (target->user_data);
  g_main_context_unref (target->context);
}

static void
target_release (gpointer data)
{
  g_atomic_rc_box_release_full (data, target_clear);
}

static void
handoff_free (gpointer data)
{
  Handoff *handoff = data;

  g_object_unref (handoff->connection);
  target_release (handoff->target);
  g_free (handoff);
}

static gboolean
deliver (gpointer data)
{
  Handoff *handoff = data;

  handoff->target->func (handoff->connection, handoff->target->user_data);
  return G_SOURCE_REMOVE;
}

/* The refusal may end after we are gone: we are held weakly. */
static void
on_refusal_done (GObject      *source,
                 GAsyncResult *result,
                 gpointer      data)
{
  GWeakRef *weak = data;
  g_autoptr(KvListener) self = g_weak_ref_get (weak);

  kv_refusal_run_finish (KV_REFUSAL (source), result, NULL);
  if (self != NULL && self->refusals != NULL)
    g_hash_table_remove (self->refusals, source);
  g_weak_ref_clear (weak);
  g_free (weak);
}

/* Over a Unix socket or the loopback, whether the peer runs as the user
 * we run as. */
static gboolean
peer_is_owner (KvListener *self,
               GSocket    *connection)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) local = g_socket_get_local_address (connection, NULL);
  uid_t uid;

  /* Off the loopback, the bearer token says who may ask. */
  if (G_IS_INET_SOCKET_ADDRESS (local) &&
      !g_inet_address_get_is_loopback (
        g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local))))
    return TRUE;

  if (self->diag_fd < 0 && g_socket_get_family (connection) != G_SOCKET_FAMILY_UNIX)
    self->diag_fd = kv_peer_open_diag (NULL);

  if (!kv_peer_get_uid (connection, self->diag_fd, &uid, &error))
    {
      /* Whoever it is, we cannot tell: refuse rather than guess. */
      if (!self->warned_peer_lookup)
        g_warning ("Cannot tell which user is connecting (%s); refusing such connections",
                   error->message);
      self->warned_peer_lookup = TRUE;
      return FALSE;
    }

  if (uid != self->uid)
    {
      g_debug ("Refusing a connection from uid %u", (guint) uid);
      return FALSE;
    }

  return TRUE;
}

static void
refuse (KvListener *self,
        GSocket    *connection)
{
  KvRefusal *refusal = kv_refusal_new (connection, NULL, self->forbidden, FORBIDDEN_DRAIN);
  GWeakRef *weak;

  g_socket_set_blocking (connection, FALSE);
  g_hash_table_add (self->refusals, refusal);
  weak = g_new0 (GWeakRef, 1);
  g_weak_ref_init (weak, self);
  kv_refusal_run_async (refusal, on_refusal_done, weak);
}

static void
hand_off (KvListener *self,
          GSocket    *connection)
{
  Handoff *handoff;
  Target *target;
  KvListenerSlot *slot;

  if (self->targets->len == 0)
    {
      g_socket_close (connection, NULL);
      return;
    }

  /* The server never sees a byte from another user. */
  if (!peer_is_owner (self, connection))
    {
      refuse (self, connection);
      return;
    }

  if ((guint) g_atomic_int_get (&self->slots->open) >= self->max_connections &&
      !shed_one (self))
    {
      /* Every connection is busy: closing at once is the cheapest answer,
       * and the client learns at once that it should come back later. */
      g_debug ("Refusing a connection: %u open", (guint) g_atomic_int_get (&self->slots->open));
      g_socket_close (connection, NULL);
      return;
    }

  slot = g_atomic_rc_box_new0 (KvListenerSlot);
  slot->pool = g_atomic_rc_box_acquire (self->slots);
  slot->link.data = slot;
  slot->progress = KV_LISTENER_PROGRESS_FRESH;
  slot->since_ms = now_ms ();
  g_weak_ref_init (&slot->owner, NULL);
  g_mutex_lock (&self->slots->lock);
  g_queue_push_tail_link (&self->slots->slots, &slot->link);
  g_mutex_unlock (&self->slots->lock);
  g_atomic_int_inc (&self->slots->open);
  g_object_set_qdata_full (G_OBJECT (connection), slot_quark, slot, slot_release);

  target = g_ptr_array_index (self->targets, self->next_target);
  self->next_target = (self->next_target + 1) % self->targets->len;

  handoff = g_new0 (Handoff, 1);
  handoff->target = g_atomic_rc_box_acquire (target);
  handoff->connection = g_object_ref (connection);
  /* Runs at once when the target shares our context. */
  g_main_context_invoke_full (target->context, G_PRIORITY_DEFAULT, deliver, handoff, handoff_free);
}

static void stop_accepting (KvListener *self);
static void start_accepting (KvListener *self);

static gboolean
on_backoff_over (gpointer data)
{
  KvListener *self = data;

  g_clear_pointer (&self->backoff, g_source_unref);
  start_accepting (self);

  return G_SOURCE_REMOVE;
}

static void
back_off (KvListener   *self,
          const GError *error)
{
  if (self->backoff != NULL)
    return;

  /* Not every BACKOFF_MS while a shortage lasts. */
  if (self->warned_at == 0 || g_get_monotonic_time () - self->warned_at > WARN_INTERVAL_US)
    {
      g_warning ("Cannot accept connections: %s; trying again every %u ms",
                 error->message, BACKOFF_MS);
      self->warned_at = g_get_monotonic_time ();
    }

  stop_accepting (self);
  self->backoff = g_timeout_source_new (BACKOFF_MS);
  g_source_set_callback (self->backoff, on_backoff_over, self, NULL);
  g_source_attach (self->backoff, self->context);
}

static gboolean
on_incoming (GSocket      *socket,
             GIOCondition  condition,
             gpointer      data)
{
  KvListener *self = data;

  for (guint i = 0; i < ACCEPT_BATCH; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) connection = g_socket_accept (socket, NULL, &error);

      if (connection != NULL)
        {
          hand_off (self, connection);
          continue;
        }

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        break;

      /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or a connection that went away
       * before we took it: none of them is a reason to stop listening. */
      back_off (self, error);
      break;
    }

  return G_SOURCE_CONTINUE;
}

static void
stop_accepting (KvListener *self)
{
  for (guint i = 0; i < self->sources->len; i++)
    g_source_destroy (g_ptr_array_index (self->sources, i));
  g_ptr_array_set_size (self->sources, 0);
}

static void
watch_socket (KvListener *self,
              GSocket    *socket)
{
  GSource *source = g_socket_create_source (socket, G_IO_IN, NULL);

  g_source_set_callback (source, G_SOURCE_FUNC (on_incoming), self, NULL);
  g_source_attach (source, self->context);
  g_ptr_array_add (self->sources, source);
}

static void
start_accepting (KvListener *self)
{
  stop_accepting (self);
  if (self->closed)
    return;
  for (guint i = 0; i < self->sockets->len; i++)
    watch_socket (self, g_ptr_array_index (self->sockets, i));
}

static void
kv_listener_dispose (GObject *object)
{
  KvListener *self = KV_LISTENER (object);

  kv_listener_close (self);
  g_ptr_array_set_size (self->targets, 0);
  if (self->refusals != NULL)
    {
      g_autoptr(GHashTable) refusals = g_steal_pointer (&self->refusals);

      kv_refusal_close_all (refusals);
    }

  G_OBJECT_CLASS (kv_listener_parent_class)->dispose (object);
}

static void
kv_listener_finalize (GObject *object)
{
  KvListener *self = KV_LISTENER (object);

  g_ptr_array_unref (self->sources);
  g_ptr_array_unref (self->sockets);
  g_ptr_array_unref (self->targets);
  g_atomic_rc_box_release_full (self->slots, slots_clear);
  g_clear_pointer (&self->forbidden, g_bytes_unref);
  if (self->diag_fd >= 0)
    close (self->diag_fd);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (kv_listener_parent_class)->finalize (object);
}

static void
kv_listener_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  KvListener *self = KV_LISTENER (object);

  switch (prop_id)
    {
    case PROP_MAX_CONNECTIONS:
      g_value_set_uint (value, self->max_connections);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_listener_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  KvListener *self = KV_LISTENER (object);

  switch (prop_id)
    {
    case PROP_MAX_CONNECTIONS:
      self->max_connections = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_listener_class_init (KvListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = kv_listener_dispose;
  object_class->finalize = kv_listener_finalize;
  object_class->get_property = kv_listener_get_property;
  object_class->set_property = kv_listener_set_property;

  slot_quark = g_quark_from_static_string ("kv-listener-slot");

  /**
   * KvListener:max-connections:
   *
   * How many accepted connections may be open at once; beyond it, new
   * connections are closed as soon as they are accepted.
   */
  properties[PROP_MAX_CONNECTIONS] =
    g_param_spec_uint ("max-connections", NULL, NULL,
                       1, G_MAXUINT, 512,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
kv_listener_init (KvListener *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->sockets = g_ptr_array_new_with_free_func (g_object_unref);
  self->sources = g_ptr_array_new_with_free_func ((GDestroyNotify) g_source_unref);
  self->targets = g_ptr_array_new_with_free_func (target_release);
  self->slots = g_atomic_rc_box_new0 (Slots);
  g_mutex_init (&self->slots->lock);
  g_queue_init (&self->slots->slots);
  self->refusals = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->diag_fd = -1;
  self->uid = geteuid ();
}

/**
 * kv_listener_new:
 * @max_connections: how many connections may be open at once
 * @forbidden: the whole HTTP answer sent to a peer that is not the owner
 *
 * Creates a listener whose accept loop runs in the thread-default main
 * context of the caller.
 *
 * Returns: (transfer full): a listener with no socket yet
 */
KvListener *
kv_listener_new (guint   max_connections,
                 GBytes *forbidden)
{
  KvListener *self;

  g_return_val_if_fail (max_connections > 0, NULL);
  g_return_val_if_fail (forbidden != NULL, NULL);

  self = g_object_new (KV_TYPE_LISTENER, "max-connections", max_connections, NULL);
  self->forbidden = g_bytes_ref (forbidden);
  return self;
}

/**
 * kv_listener_set_max_connections:
 * @self: a #KvListener
 * @max_connections: how many connections may be open at once
 *
 * Applies to connections accepted from now on.
 */
void
kv_listener_set_max_connections (KvListener *self,
                                 guint       max_connections)
{
  g_return_if_fail (KV_IS_LISTENER (self));
  g_return_if_fail (max_connections > 0);

  self->max_connections = max_connections;
}

/**
 * kv_listener_get_slot:
 * @connection: a connection
 *
 * Returns: (transfer none) (nullable): the slot @connection holds, for as
 *   long as @connection lives, or %NULL if no listener accepted it
 */
KvListenerSlot *
kv_listener_get_slot (GSocket *connection)
{
  g_return_val_if_fail (G_IS_SOCKET (connection), NULL);

  return g_object_get_qdata (G_OBJECT (connection), slot_quark);
}

/**
 * kv_listener_slot_set_owner:
 * @slot: (nullable): a connection's slot
 * @owner: what serves the connection, held weakly
 * @shed: called in the thread-default main context of the caller, with
 *   @owner, when the connection should be closed to make room
 *
 * To be called once, in the thread that serves the connection.
 */
void
kv_listener_slot_set_owner (KvListenerSlot     *slot,
                            GObject            *owner,
                            KvListenerShedFunc  shed)
{
  if (slot == NULL)
    return;

  g_mutex_lock (&slot->pool->lock);
  slot->context = g_main_context_ref_thread_default ();
  g_weak_ref_set (&slot->owner, owner);
  slot->shed = shed;
  g_mutex_unlock (&slot->pool->lock);
}

/**
 * kv_listener_slot_set_progress:
 * @slot: (nullable): a connection's slot
 * @progress: where the connection is now
 *
 * Cheap enough for every request: what a shed chooses by.
 */
void
kv_listener_slot_set_progress (KvListenerSlot     *slot,
                               KvListenerProgress  progress)
{
  if (slot == NULL)
    return;

  g_atomic_int_set (&slot->since_ms, now_ms ());
  g_atomic_int_set (&slot->progress, progress);
}

/**
 * kv_listener_add_socket:
 * @self: a #KvListener
 * @socket: a socket that is already listening, e.g. one passed by systemd
 * @error: return location for a #GError
 *
 * Starts accepting connections on @socket.
 *
 * Returns: %TRUE on success
 */
gboolean
kv_listener_add_socket (KvListener  *self,
                        GSocket     *socket,
                        GError     **error)
{
  int listening = 0;

  g_return_val_if_fail (KV_IS_LISTENER (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_return_val_if_fail (!self->closed, FALSE);

  if (!g_socket_get_option (socket, SOL_SOCKET, SO_ACCEPTCONN, &listening, error))
    return FALSE;
  if (!listening)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "the socket is not listening");
      return FALSE;
    }

  /* A flood must wait in the kernel's queue, not be turned away by it:
   * listen again with a longer backlog (GSocket's default is 10), which
   * Linux allows on a socket that is listening already; GSocket does not. */
  if (listen (g_socket_get_fd (socket), LISTEN_BACKLOG) < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "cannot listen: %s", g_strerror (errsv));
      return FALSE;
    }

  /* accept() must say EAGAIN rather than wait. */
  g_socket_set_blocking (socket, FALSE);
  g_ptr_array_add (self->sockets, g_object_ref (socket));
  if (self->backoff == NULL)
    watch_socket (self, socket);

  return TRUE;
}

/**
 * kv_listener_add_address:
 * @self: a #KvListener
 * @address: an address to bind to, with port 0 for any free port
 * @error: return location for a #GError
 *
 * Creates a socket listening on @address and starts accepting on it.
 *
 * Returns: (transfer none): the listening socket, or %NULL on error
 */
GSocket *
kv_listener_add_address (KvListener      *self,
                         GSocketAddress  *address,
                         GError         **error)
{
  g_autoptr(GSocket) socket = NULL;
  GSocketFamily family;

  g_return_val_if_fail (KV_IS_LISTENER (self), NULL);
  g_return_val_if_fail (G_IS_SOCKET_ADDRESS (address), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  family = g_socket_address_get_family (address);
  socket = g_socket_new (family, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return NULL;

  /* An IPv6 address means only that address, not IPv4 as well. */
  if (family == G_SOCKET_FAMILY_IPV6 &&
      !g_socket_set_option (socket, IPPROTO_IPV6, IPV6_V6ONLY, TRUE, error))
    return NULL;

  g_socket_set_listen_backlog (socket, LISTEN_BACKLOG);
  if (!g_socket_bind (socket, address, TRUE, error) ||
      !g_socket_listen (socket, error) ||
      !kv_listener_add_socket (self, socket, error))
    return NULL;

  return socket;
}

/**
 * kv_listener_add_target:
 * @self: a #KvListener
 * @context: (nullable): the main context in which @func runs, or %NULL for
 *   the listener's own
 * @func: receives each accepted connection
 * @user_data: data for @func
 * @notify: (nullable): frees @user_data once the listener is disposed and
 *   no connection is on its way to @func any more; it may run in the
 *   thread of @context
 *
 * Adds a receiver of connections. With several targets, connections go to
 * each in turn.
 */
void
kv_listener_add_target (KvListener     *self,
                        GMainContext   *context,
                        KvListenerFunc  func,
                        gpointer        user_data,
                        GDestroyNotify  notify)
{
  Target *target;

  g_return_if_fail (KV_IS_LISTENER (self));
  g_return_if_fail (func != NULL);

  target = g_atomic_rc_box_new0 (Target);
  target->context = g_main_context_ref (context != NULL ? context : self->context);
  target->func = func;
  target->user_data = user_data;
  target->notify = notify;
  g_ptr_array_add (self->targets, target);
}

/**
 * kv_listener_close:
 * @self: a #KvListener
 *
 * Stops accepting and closes the listening sockets. Connections already
 * accepted are not affected.
 */
void
kv_listener_close (KvListener *self)
{
  g_return_if_fail (KV_IS_LISTENER (self));

  self->closed = TRUE;
  stop_accepting (self);
  if (self->backoff != NULL)
    {
      g_source_destroy (self->backoff);
      g_clear_pointer (&self->backoff, g_source_unref);
    }
  for (guint i = 0; i < self->sockets->len; i++)
    g_socket_close (g_ptr_array_index (self->sockets, i), NULL);
  g_ptr_array_set_size (self->sockets, 0);
}

/**
 * kv_listener_get_sockets:
 *
 * Returns: (transfer none) (element-type GSocket): the listening sockets
 */
GPtrArray *
kv_listener_get_sockets (KvListener *self)
{
  g_return_val_if_fail (KV_IS_LISTENER (self), NULL);

  return self->sockets;
}

/**
 * kv_listener_get_port:
 *
 * Returns: the port of the first TCP socket, or 0 when there is none
 */
guint16
kv_listener_get_port (KvListener *self)
{
  g_return_val_if_fail (KV_IS_LISTENER (self), 0);

  for (guint i = 0; i < self->sockets->len; i++)
    {
      g_autoptr(GSocketAddress) address =
        g_socket_get_local_address (g_ptr_array_index (self->sockets, i), NULL);

      if (G_IS_INET_SOCKET_ADDRESS (address))
        return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));
    }

  return 0;
}

/**
 * kv_listener_get_n_connections:
 *
 * Returns: how many accepted connections are open; may be called from any
 *   thread
 */
guint
kv_listener_get_n_connections (KvListener *self)
{
  g_return_val_if_fail (KV_IS_LISTENER (self), 0);

  return g_atomic_int_get (&self->slots->open);
}

guint
kv_listener_get_max_connections (KvListener *self)
{
  g_return_val_if_fail (KV_IS_LISTENER (self), 0);

  return self->max_connections;
}
