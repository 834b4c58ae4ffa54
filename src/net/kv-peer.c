/* kv-peer.c: who is at the other end of a local connection
 *
 * SPDX-License-Identifier: MIT
 *
 * A Unix socket tells its peer's credentials (SO_PEERCRED). A TCP
 * connection over the loopback does not, but both of its ends live in this
 * kernel: the sock_diag netlink interface looks up the peer's socket by its
 * four-tuple and reports the uid that created it. Unprivileged processes
 * may ask, which is how ss(8) shows every user's sockets.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>

#include "kv-peer.h"

/* A lookup that takes longer than this means the kernel is not answering. */
#define NETLINK_TIMEOUT_US (G_USEC_PER_SEC / 2)

static gboolean
set_errno_error (GError     **error,
                 int          errsv,
                 const char  *what)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
               "%s: %s", what, g_strerror (errsv));
  return FALSE;
}

/* Fills @addr (network order, as inet_diag wants it) from @inet. */
static void
copy_address (__be32       addr[4],
              GInetAddress *inet)
{
  memset (addr, 0, sizeof (__be32) * 4);
  memcpy (addr, g_inet_address_to_bytes (inet), g_inet_address_get_native_size (inet));
}

/**
 * kv_peer_open_diag:
 * @error: return location for a #GError
 *
 * Opens a sock_diag socket for kv_peer_get_uid() to reuse, so that a
 * lookup needs no new file descriptor (not even when the process has run
 * out of them) and costs two system calls.
 *
 * Returns: the file descriptor, or -1 on error
 */
int
kv_peer_open_diag (GError **error)
{
  struct timeval timeout = { 0, NETLINK_TIMEOUT_US };
  int fd = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

  if (fd < 0)
    {
      set_errno_error (error, errno, "cannot open a sock_diag socket");
      return -1;
    }
  if (setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0)
    {
      int errsv = errno;
      close (fd);
      set_errno_error (error, errsv, "cannot set up a sock_diag socket");
      return -1;
    }

  return fd;
}

/* Asks the kernel for the uid owning the TCP socket whose own end is
 * @peer and whose other end is @local: that is the client's socket of a
 * connection we accepted. */
static gboolean
lookup_tcp_owner (int                  fd,
                  GInetSocketAddress  *local,
                  GInetSocketAddress  *peer,
                  uid_t               *uid,
                  GError             **error)
{
  static guint sequence;
  GInetAddress *local_inet = g_inet_socket_address_get_address (local);
  GInetAddress *peer_inet = g_inet_socket_address_get_address (peer);
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  struct
  {
    struct nlmsghdr header;
    struct inet_diag_req_v2 request;
  } query;
  union
  {
    struct nlmsghdr header;
    char bytes[8192];
  } reply;

  if (g_inet_address_get_family (local_inet) != g_inet_address_get_family (peer_inet))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "the two ends of the connection differ in address family");
      return FALSE;
    }

  memset (&query, 0, sizeof query);
  query.header.nlmsg_len = sizeof query;
  query.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  /* No NLM_F_DUMP: an exact lookup of one socket, not a list of them all. */
  query.header.nlmsg_flags = NLM_F_REQUEST;
  query.header.nlmsg_seq = g_atomic_int_add (&sequence, 1) + 1;
  query.request.sdiag_family =
    g_inet_address_get_family (peer_inet) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
  query.request.sdiag_protocol = IPPROTO_TCP;
  query.request.idiag_states = ~0U;
  query.request.id.idiag_sport = g_htons (g_inet_socket_address_get_port (peer));
  query.request.id.idiag_dport = g_htons (g_inet_socket_address_get_port (local));
  copy_address (query.request.id.idiag_src, peer_inet);
  copy_address (query.request.id.idiag_dst, local_inet);
  query.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  query.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  if (sendto (fd, &query, sizeof query, 0, (struct sockaddr *) &kernel, sizeof kernel) < 0)
    return set_errno_error (error, errno, "cannot query sock_diag");

  for (;;)
    {
      ssize_t received;
      guint len;

      do
        received = recv (fd, &reply, sizeof reply, 0);
      while (received < 0 && errno == EINTR);
      if (received < 0)
        return set_errno_error (error, errno, "no answer from sock_diag");
      len = received;

      for (struct nlmsghdr *h = &reply.header; NLMSG_OK (h, len); h = NLMSG_NEXT (h, len))
        {
          const struct inet_diag_msg *msg = NLMSG_DATA (h);

          /* A late answer to an earlier lookup that timed out. */
          if (h->nlmsg_seq != query.header.nlmsg_seq)
            continue;

          if (h->nlmsg_type == NLMSG_ERROR &&
              h->nlmsg_len >= NLMSG_LENGTH (sizeof (struct nlmsgerr)))
            {
              const struct nlmsgerr *err = NLMSG_DATA (h);

              /* ENOENT: the peer is gone already. */
              return set_errno_error (error, -err->error, "sock_diag lookup failed");
            }

          /* The answer must be the socket we asked about. */
          if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
              h->nlmsg_len < NLMSG_LENGTH (sizeof *msg) ||
              msg->id.idiag_sport != query.request.id.idiag_sport ||
              msg->id.idiag_dport != query.request.id.idiag_dport ||
              memcmp (msg->id.idiag_src, query.request.id.idiag_src,
                      sizeof msg->id.idiag_src) != 0 ||
              memcmp (msg->id.idiag_dst, query.request.id.idiag_dst,
                      sizeof msg->id.idiag_dst) != 0)
            goto unexpected;

          *uid = msg->idiag_uid;
          return TRUE;
        }
    }

unexpected:
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "sock_diag did not describe the peer's socket");
  return FALSE;
}

/**
 * kv_peer_get_uid:
 * @socket: a connected Unix or TCP socket
 * @diag_fd: a socket from kv_peer_open_diag(), or -1 to open one for this
 *   lookup only
 * @uid: (out): return location for the uid of the peer
 * @error: return location for a #GError
 *
 * Finds the user at the other end of @socket. That is the peer's
 * credentials for a Unix socket, and the owner of the peer's socket for a
 * TCP connection whose both ends are on this host (the loopback).
 *
 * Returns: %TRUE if the peer's uid is known
 */
gboolean
kv_peer_get_uid (GSocket  *socket,
                 int       diag_fd,
                 uid_t    *uid,
                 GError  **error)
{
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GSocketAddress) peer = NULL;

  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (uid != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (g_socket_get_family (socket) == G_SOCKET_FAMILY_UNIX)
    {
      g_autoptr(GCredentials) credentials = g_socket_get_credentials (socket, error);
      uid_t peer_uid;

      if (credentials == NULL)
        return FALSE;
      peer_uid = g_credentials_get_unix_user (credentials, error);
      if (peer_uid == (uid_t) -1)
        return FALSE;
      *uid = peer_uid;
      return TRUE;
    }

  local = g_socket_get_local_address (socket, error);
  if (local == NULL)
    return FALSE;
  peer = g_socket_get_remote_address (socket, error);
  if (peer == NULL)
    return FALSE;

  if (!G_IS_INET_SOCKET_ADDRESS (local) || !G_IS_INET_SOCKET_ADDRESS (peer) ||
      g_socket_get_socket_type (socket) != G_SOCKET_TYPE_STREAM)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "not a Unix socket nor a TCP connection");
      return FALSE;
    }

  if (diag_fd < 0)
    {
      gboolean found;
      int fd = kv_peer_open_diag (error);

      if (fd < 0)
        return FALSE;
      found = lookup_tcp_owner (fd, G_INET_SOCKET_ADDRESS (local), G_INET_SOCKET_ADDRESS (peer),
                                uid, error);
      close (fd);
      return found;
    }

  return lookup_tcp_owner (diag_fd, G_INET_SOCKET_ADDRESS (local), G_INET_SOCKET_ADDRESS (peer),
                           uid, error);
}
