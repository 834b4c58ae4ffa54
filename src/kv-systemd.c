/* kv-systemd.c: systemd's socket activation, notification and watchdog
 * protocols, spoken without libsystemd
 *
 * SPDX-License-Identifier: MIT
 *
 * The protocols are those of sd_listen_fds(3), sd_notify(3) and
 * sd_watchdog_enabled(3): a few environment variables and datagrams, which
 * GIO speaks well enough that the daemon needs no libsystemd.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gi18n.h>

#include "kv-systemd.h"

/* Passed descriptors start right after standard input, output and error. */
#define LISTEN_FDS_START 3

static gboolean
parse_env_number (const char  *name,
                  guint64      max,
                  guint64     *number,
                  GError     **error)
{
  const char *text = g_getenv (name);

  if (text == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("%s is missing from the environment"), name);
      return FALSE;
    }

  if (!g_ascii_string_to_unsigned (text, 10, 0, max, number, NULL))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("invalid %s=%s in the environment"), name, text);
      return FALSE;
    }

  return TRUE;
}

static GSocket *
socket_for_fd (int      fd,
               GError **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) local_error = NULL;
  int listening = 0;

  /* Nothing the daemon starts should inherit its listeners. */
  if (fcntl (fd, F_SETFD, FD_CLOEXEC) < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   _("passed file descriptor %d: %s"), fd, g_strerror (saved_errno));
      return NULL;
    }

  socket = g_socket_new_from_fd (fd, &local_error);
  if (socket == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("passed file descriptor %d: %s"), fd, local_error->message);
      return NULL;
    }

  /* A socket unit with Accept=yes would pass a connection, not a listener. */
  if (g_socket_get_socket_type (socket) != G_SOCKET_TYPE_STREAM ||
      !g_socket_get_option (socket, SOL_SOCKET, SO_ACCEPTCONN, &listening, NULL) ||
      !listening)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("passed file descriptor %d is not a listening stream socket"), fd);
      return NULL;
    }

  return g_steal_pointer (&socket);
}

/**
 * kv_systemd_take_listen_sockets:
 * @names: (out) (optional) (transfer full): the name of each socket, from
 *   `FileDescriptorName=` of the socket unit
 * @error: return location for a #GError
 *
 * Adopts the listening sockets that the service manager passed to this
 * process (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`), and removes those
 * variables from the environment so that they are taken only once.
 *
 * Returns: (transfer full) (element-type GSocket): the passed sockets, none
 *   when the process was not socket-activated; %NULL on error
 */
GPtrArray *
kv_systemd_take_listen_sockets (char   ***names,
                                GError  **error)
{
  g_autoptr(GPtrArray) sockets = g_ptr_array_new_with_free_func (g_object_unref);
  g_auto(GStrv) fd_names = NULL;
  const char *names_text;
  guint64 pid, n_fds;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (names != NULL)
    *names = NULL;

  if (g_getenv ("LISTEN_PID") == NULL)
    return g_steal_pointer (&sockets);

  if (!parse_env_number ("LISTEN_PID", G_MAXINT, &pid, error) ||
      !parse_env_number ("LISTEN_FDS", G_MAXINT - LISTEN_FDS_START, &n_fds, error))
    return NULL;

  names_text = g_getenv ("LISTEN_FDNAMES");
  if (names_text != NULL)
    fd_names = g_strsplit (names_text, ":", -1);

  g_unsetenv ("LISTEN_PID");
  g_unsetenv ("LISTEN_FDS");
  g_unsetenv ("LISTEN_FDNAMES");

  /* The variables were meant for another process, e.g. our parent. */
  if (pid != (guint64) getpid ())
    return g_steal_pointer (&sockets);

  if (fd_names != NULL && g_strv_length (fd_names) != n_fds)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("LISTEN_FDNAMES names %u sockets but LISTEN_FDS=%u"),
                   g_strv_length (fd_names), (guint) n_fds);
      return NULL;
    }

  for (guint i = 0; i < n_fds; i++)
    {
      GSocket *socket = socket_for_fd (LISTEN_FDS_START + i, error);

      if (socket == NULL)
        return NULL;
      g_ptr_array_add (sockets, socket);
    }

  if (names != NULL)
    {
      if (fd_names == NULL)
        {
          /* What systemd itself calls an unnamed descriptor. */
          fd_names = g_new0 (char *, n_fds + 1);
          for (guint i = 0; i < n_fds; i++)
            fd_names[i] = g_strdup ("unknown");
        }
      *names = g_steal_pointer (&fd_names);
    }

  return g_steal_pointer (&sockets);
}

/* The service manager's notification socket: a path, or an abstract name
 * written with a leading "@". */
static GSocketAddress *
notify_address (GError **error)
{
  const char *path = g_getenv ("NOTIFY_SOCKET");

  if (path == NULL || *path == '\0')
    return NULL;

  if (path[0] == '@')
    return g_unix_socket_address_new_with_type (path + 1, -1, G_UNIX_SOCKET_ADDRESS_ABSTRACT);
  if (path[0] == '/')
    return g_unix_socket_address_new (path);

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
               "NOTIFY_SOCKET=%s is not a Unix socket path", path);
  return NULL;
}

/**
 * kv_systemd_has_notify_socket:
 *
 * Returns: whether a service manager waits for notifications
 */
gboolean
kv_systemd_has_notify_socket (void)
{
  const char *path = g_getenv ("NOTIFY_SOCKET");

  return path != NULL && *path != '\0';
}

/**
 * kv_systemd_notify:
 * @state: newline-separated assignments, such as `READY=1`
 * @error: return location for a #GError
 *
 * Sends @state to the service manager in one datagram, as sd_notify()
 * does. Without `NOTIFY_SOCKET` there is no one to tell, and this succeeds
 * doing nothing.
 *
 * Returns: %TRUE if the datagram was sent or need not be
 */
gboolean
kv_systemd_notify (const char  *state,
                   GError     **error)
{
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) local_error = NULL;
  gsize len;
  gssize sent;

  g_return_val_if_fail (state != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  address = notify_address (&local_error);
  if (address == NULL)
    {
      if (local_error == NULL)
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM,
                         G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return FALSE;

  /* A manager that stopped reading must not stall the main loop. */
  g_socket_set_blocking (socket, FALSE);

  len = strlen (state);
  sent = g_socket_send_to (socket, address, state, len, NULL, error);
  if (sent < 0)
    return FALSE;
  if ((gsize) sent != len)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "sent %" G_GSSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes to NOTIFY_SOCKET",
                   sent, len);
      return FALSE;
    }

  return TRUE;
}

/**
 * kv_systemd_get_watchdog_usec:
 *
 * Reads `WATCHDOG_USEC` and `WATCHDOG_PID`, which the service manager sets
 * when the unit has `WatchdogSec=`.
 *
 * Returns: the watchdog interval in microseconds: `WATCHDOG=1` must be sent
 *   more often than that; 0 when there is no watchdog for this process
 */
guint64
kv_systemd_get_watchdog_usec (void)
{
  const char *usec_text = g_getenv ("WATCHDOG_USEC");
  const char *pid_text = g_getenv ("WATCHDOG_PID");
  guint64 usec, pid;

  if (usec_text == NULL ||
      !g_ascii_string_to_unsigned (usec_text, 10, 1, G_MAXUINT64, &usec, NULL))
    return 0;

  /* Without WATCHDOG_PID the watchdog is ours, as sd_watchdog_enabled()
   * reads it. */
  if (pid_text != NULL &&
      (!g_ascii_string_to_unsigned (pid_text, 10, 1, G_MAXINT, &pid, NULL) ||
       pid != (guint64) getpid ()))
    return 0;

  return usec;
}
