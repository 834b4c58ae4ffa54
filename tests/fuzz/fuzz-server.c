/* fuzz-server.c: arbitrary bytes from a client, into a real KvServer
 *
 * SPDX-License-Identifier: MIT
 *
 * A libFuzzer target. Each input is what one client sends on one
 * connection, through a socket pair, to a KvServer with small limits
 * running on this thread's main context; whatever the server answers is
 * read and thrown away. Besides the sanitizers' findings, it aborts when
 * the server does not let go of the connection after the client hung up.
 *
 * A watch stream (or a long-polling read) never ends on its own: the
 * client's end of the stream is what ends it, found by the transport's
 * sweep a few times a second, and the heartbeat, buffer and wait are
 * small so that all of their paths are reached within an input.
 */
#include "config.h"

#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>

#include "storage/kv-map-storage.h"
#include "http/kv-server.h"
#include "kv-config.h"

/* Past this, a connection the client closed is stuck: a bug. */
#define RELEASE_TIMEOUT_US (3 * G_USEC_PER_SEC)

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static KvLimits limits;
static KvAccessPolicy *policy;

static GLogWriterOutput
quiet_writer (GLogLevelFlags   level,
              const GLogField *fields,
              gsize            n_fields,
              gpointer         user_data)
{
  /* Warnings and criticals are bugs: let them be seen and abort. */
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    {
      g_log_writer_standard_streams (level, fields, n_fields, user_data);
      abort ();
    }
  return G_LOG_WRITER_HANDLED;
}

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  const char *origins[] = { "http://allowed.example", NULL };

  g_autoptr(KvConfig) config = NULL;

  g_log_set_writer_func (quiet_writer, NULL, NULL);
  config = g_object_new (KV_TYPE_CONFIG,
                         "max-value-size", (guint64) 4096,
                         "max-key-size", 256,
                         "max-header-size", 4096,
                         "max-headers", 20,
                         "request-timeout", 1,
                         "idle-timeout", 1,
                         "watch-heartbeat", 1,
                         "watch-buffer", (guint64) 4096,
                         "max-watchers", 4,
                         "max-wait", 1,
                         "allow-origin", origins,
                         NULL);
  kv_config_get_limits (config, &limits);
  policy = kv_access_policy_new (NULL, origins, NULL);
  return 0;
}

static void
on_socket_gone (gpointer  data,
                GObject  *where_the_object_was)
{
  *(gboolean *) data = TRUE;
}

/* Reads whatever the server sent; FALSE once it has closed. */
static gboolean
drain (int fd)
{
  char buffer[16384];

  for (;;)
    {
      ssize_t n = recv (fd, buffer, sizeof buffer, MSG_DONTWAIT);

      if (n > 0)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return TRUE;
      return FALSE;
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(KvStorage) storage = KV_STORAGE (kv_map_storage_new ());
  g_autoptr(KvServer) server = kv_server_new (storage, NULL, &limits, policy);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) error = NULL;
  gboolean released = FALSE;
  gboolean open = TRUE;
  size_t sent = 0;
  gint64 deadline;
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
    abort ();

  socket = g_socket_new_from_fd (fds[0], &error);
  g_assert_no_error (error);
  g_object_weak_ref (G_OBJECT (socket), on_socket_gone, &released);
  kv_server_accept_connection (server, socket, &error);
  g_assert_no_error (error);
  g_clear_object (&socket);

  /* Send it all, letting the server read and answer as it goes. */
  deadline = g_get_monotonic_time () + RELEASE_TIMEOUT_US;
  while (sent < size && open && g_get_monotonic_time () < deadline)
    {
      ssize_t n = send (fds[1], data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

      if (n > 0)
        sent += n;
      else if (n < 0 && errno != EAGAIN && errno != EINTR)
        break;
      open = drain (fds[1]);
      g_main_context_iteration (NULL, FALSE);
    }
  shutdown (fds[1], SHUT_WR);

  /* Let the server finish answering, then hang up. */
  while (open && g_get_monotonic_time () < deadline)
    {
      open = drain (fds[1]);
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (100);
    }
  close (fds[1]);

  while (!released && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (100);
  if (!released)
    {
      g_printerr ("The server did not let go of a connection the client closed\n");
      abort ();
    }

  g_clear_object (&server);
  while (g_main_context_iteration (NULL, FALSE))
    ;

  return 0;
}
