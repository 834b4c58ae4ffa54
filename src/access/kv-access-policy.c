/* kv-access-policy.c: who may ask, request by request
 *
 * SPDX-License-Identifier: MIT
 *
 * The transport has already let in only the owner over a Unix socket or
 * the loopback. What is left is asked of each request once its headers
 * are in, the way libsoup asks a SoupAuthDomain: does the authority it
 * names belong to this host (a page whose DNS name was rebound to
 * 127.0.0.1 names another), does it carry the bearer token, and may the
 * page it comes from (Origin) use the store.
 *
 * A policy never changes once made, so that every worker thread can share
 * one; a new key file makes a new policy.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "kv-access-policy.h"

#define DIGEST_SIZE 32

struct _KvAccessPolicy
{
  GObject parent_instance;

  gboolean have_token;
  guint8 token_digest[DIGEST_SIZE];
  char **allow_origin;          /* (owned) (nullable) */
};

G_DEFINE_QUARK (kv-access-error-quark, kv_access_error)

G_DEFINE_FINAL_TYPE (KvAccessPolicy, kv_access_policy, G_TYPE_OBJECT)

static void
kv_access_policy_finalize (GObject *object)
{
  KvAccessPolicy *self = KV_ACCESS_POLICY (object);

  memset (self->token_digest, 0, sizeof self->token_digest);
  g_strfreev (self->allow_origin);

  G_OBJECT_CLASS (kv_access_policy_parent_class)->finalize (object);
}

static void
kv_access_policy_class_init (KvAccessPolicyClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = kv_access_policy_finalize;
}

static void
kv_access_policy_init (KvAccessPolicy *self)
{
}

static void
sha256 (const char *text,
        gsize       len,
        guint8      digest[DIGEST_SIZE])
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  gsize digest_len = DIGEST_SIZE;

  g_checksum_update (checksum, (const guchar *) text, len);
  g_checksum_get_digest (checksum, digest, &digest_len);
}

static gboolean
load_token (KvAccessPolicy  *self,
            const char      *path,
            GError         **error)
{
  g_autofree char *contents = NULL;
  g_autofree char *display = g_filename_display_name (path);
  GStatBuf st;
  gsize len;

  if (g_stat (path, &st) != 0)
    {
      int errsv = errno;
      g_set_error (error, KV_ACCESS_ERROR, KV_ACCESS_ERROR_BAD_TOKEN_FILE,
                   _("cannot read the token file %s: %s"), display, g_strerror (errsv));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode) || (st.st_mode & 077) != 0)
    {
      g_set_error (error, KV_ACCESS_ERROR, KV_ACCESS_ERROR_BAD_TOKEN_FILE,
                   _("the token file %s must be a regular file that only its owner can read "
                     "(chmod 600)"), display);
      return FALSE;
    }
  if (!g_file_get_contents (path, &contents, &len, error))
    return FALSE;

  /* One line; the newline an editor adds is not part of the token. */
  g_strchomp (contents);
  len = strlen (contents);
  if (len == 0 || strpbrk (contents, " \t\r\n") != NULL)
    {
      g_set_error (error, KV_ACCESS_ERROR, KV_ACCESS_ERROR_BAD_TOKEN_FILE,
                   _("the token file %s must hold one token: one line, no spaces"), display);
      return FALSE;
    }

  /* Only a digest is kept, so that the token is not in memory for long. */
  sha256 (contents, len, self->token_digest);
  memset (contents, 0, len);
  self->have_token = TRUE;
  return TRUE;
}

/**
 * kv_access_policy_new:
 * @token_file: (nullable): a file holding the bearer token every TCP
 *   request must carry, or %NULL for none
 * @allow_origin: (nullable) (array zero-terminated=1): the origins whose
 *   pages may use the store, or %NULL for none
 * @error: return location for a #GError
 *
 * Reads the token file now: a policy never changes afterwards.
 *
 * Returns: (transfer full) (nullable): a policy, or %NULL if the token
 *   file is unusable
 */
KvAccessPolicy *
kv_access_policy_new (const char         *token_file,
                      const char * const *allow_origin,
                      GError            **error)
{
  g_autoptr(KvAccessPolicy) self = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_object_new (KV_TYPE_ACCESS_POLICY, NULL);
  self->allow_origin = g_strdupv ((char **) allow_origin);
  if (token_file != NULL && !load_token (self, token_file, error))
    return NULL;

  return g_steal_pointer (&self);
}

/**
 * kv_access_policy_has_token:
 *
 * Returns: whether requests over TCP must carry a bearer token
 */
gboolean
kv_access_policy_has_token (KvAccessPolicy *self)
{
  g_return_val_if_fail (KV_IS_ACCESS_POLICY (self), FALSE);

  return self->have_token;
}

/**
 * kv_access_policy_check_address:
 * @self: a #KvAccessPolicy
 * @address: an address about to be listened on
 * @error: return location for a #GError
 *
 * Refuses to expose the store beyond this host without a token: an
 * address that is neither a Unix socket nor the loopback needs one.
 *
 * Returns: %TRUE if listening on @address is allowed
 */
gboolean
kv_access_policy_check_address (KvAccessPolicy  *self,
                                GSocketAddress  *address,
                                GError         **error)
{
  GInetAddress *inet;
  g_autofree char *text = NULL;

  g_return_val_if_fail (KV_IS_ACCESS_POLICY (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET_ADDRESS (address), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!G_IS_INET_SOCKET_ADDRESS (address))
    return TRUE;

  inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address));
  if (g_inet_address_get_is_loopback (inet) || self->have_token)
    return TRUE;

  text = g_inet_address_to_string (inet);
  g_set_error (error, KV_ACCESS_ERROR, KV_ACCESS_ERROR_TOKEN_REQUIRED,
               _("refusing to listen on %s, which is not a loopback address, without "
                 "--token-file: anyone who can reach it could read and change every value"),
               text);
  return FALSE;
}

/* Whether @host (a name or an address literal, brackets and port
 * removed) is this host's loopback: localhost, 127.0.0.1, ::1 or the
 * address the client connected to. */
static gboolean
is_loopback_name (const char *host,
                  gsize       len,
                  const char *local_host)
{
  return (len == 9 && g_ascii_strncasecmp (host, "localhost", len) == 0) ||
         (len == 9 && memcmp (host, "127.0.0.1", len) == 0) ||
         (len == 3 && memcmp (host, "::1", len) == 0) ||
         (local_host != NULL && strlen (local_host) == len &&
          g_ascii_strncasecmp (host, local_host, len) == 0);
}

static gboolean
is_digits (const char *s)
{
  if (*s == '\0')
    return FALSE;
  for (; *s != '\0'; s++)
    if (!g_ascii_isdigit (*s))
      return FALSE;
  return TRUE;
}

/* A Host header: a name or address, then an optional :port. */
static gboolean
host_header_is_loopback (const char *host,
                         const char *local_host)
{
  const char *name = host;
  const char *port;
  gsize len;

  if (host[0] == '[')
    {
      const char *end = strchr (host, ']');

      if (end == NULL)
        return FALSE;
      name = host + 1;
      len = end - name;
      port = end + 1;
    }
  else
    {
      port = strchr (host, ':');
      if (port == NULL)
        port = host + strlen (host);
      len = port - host;
    }

  if (*port != '\0' && (*port != ':' || !is_digits (port + 1)))
    return FALSE;

  return is_loopback_name (name, len, local_host);
}

/* Compares digests rather than tokens, in time that does not depend on
 * where they differ, so that neither the token's length nor its content
 * leaks through timing. */
static gboolean
token_matches (KvAccessPolicy *self,
               const char     *authorization)
{
  guint8 digest[DIGEST_SIZE];
  guint8 diff = 0;
  const char *token;

  if (!self->have_token || authorization == NULL ||
      g_ascii_strncasecmp (authorization, "Bearer ", 7) != 0)
    return FALSE;

  token = authorization + 7;
  while (*token == ' ')
    token++;
  sha256 (token, strlen (token), digest);
  for (gsize i = 0; i < sizeof digest; i++)
    diff |= digest[i] ^ self->token_digest[i];

  return diff == 0;
}

static const char *
allowed_origin (KvAccessPolicy *self,
                const char     *origin)
{
  for (gsize i = 0; self->allow_origin != NULL && self->allow_origin[i] != NULL; i++)
    if (g_ascii_strcasecmp (origin, self->allow_origin[i]) == 0)
      return self->allow_origin[i];
  return NULL;
}

static gboolean
deny (KvAccessDenial *denial,
      guint           status,
      const char     *text,
      const char     *header)
{
  denial->status = status;
  denial->text = text;
  denial->header = header;
  return FALSE;
}

/**
 * kv_access_policy_accepts:
 * @self: a #KvAccessPolicy
 * @msg: a request whose headers have been read
 * @peer: where it comes from
 * @local_host: (nullable): for a loopback peer, the address the client
 *   connected to, as a host name without brackets
 * @denial: (out caller-allocates): what to answer when the request is
 *   refused
 *
 * Asks whether @msg may be served: its authority (the Host header, and
 * the target's own when it is in absolute form, RFC 9112 §3.2.2) must be
 * this host's for a loopback peer; every TCP request carries the bearer
 * token when there is one, and every request off the loopback; an Origin
 * must be one of the allowed ones.
 *
 * Returns: %TRUE if @msg may go on
 */
gboolean
kv_access_policy_accepts (KvAccessPolicy    *self,
                          SoupServerMessage *msg,
                          KvAccessPeer       peer,
                          const char        *local_host,
                          KvAccessDenial    *denial)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *host;
  const char *origin;

  g_return_val_if_fail (KV_IS_ACCESS_POLICY (self), FALSE);
  g_return_val_if_fail (denial != NULL, FALSE);

  if (peer == KV_ACCESS_PEER_LOOPBACK)
    {
      /* libsoup builds the URI from the target when it is absolute and
       * from Host otherwise: both must name this host. */
      GUri *uri = soup_server_message_get_uri (msg);
      const char *uri_host = uri != NULL ? g_uri_get_host (uri) : NULL;

      host = soup_message_headers_get_one (headers, "Host");
      if ((host != NULL && !host_header_is_loopback (host, local_host)) ||
          (uri_host != NULL && !is_loopback_name (uri_host, strlen (uri_host), local_host)))
        {
          /* A browser led here by a rebound DNS name, or a proxy's request. */
          return deny (denial, SOUP_STATUS_MISDIRECTED_REQUEST, "misdirected request", NULL);
        }
    }

  if (peer != KV_ACCESS_PEER_UNIX && (self->have_token || peer == KV_ACCESS_PEER_REMOTE) &&
      !token_matches (self, soup_message_headers_get_one (headers, "Authorization")))
    return deny (denial, SOUP_STATUS_UNAUTHORIZED, "unauthorized", "WWW-Authenticate: Bearer");

  origin = soup_message_headers_get_one (headers, "Origin");
  if (origin != NULL && allowed_origin (self, origin) == NULL)
    return deny (denial, SOUP_STATUS_FORBIDDEN, "forbidden", NULL);

  return TRUE;
}

/**
 * kv_access_policy_add_cors:
 * @self: a #KvAccessPolicy
 * @msg: a request that kv_access_policy_accepts() let through
 * @methods: the methods the store offers, for a preflight's answer
 *
 * Adds the CORS response headers for an allowed Origin, and answers a
 * preflight (OPTIONS with Access-Control-Request-Method) with 204.
 *
 * Returns: %TRUE if @msg was a preflight and has its answer
 */
gboolean
kv_access_policy_add_cors (KvAccessPolicy    *self,
                           SoupServerMessage *msg,
                           const char        *methods)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *response_headers = soup_server_message_get_response_headers (msg);
  const char *origin = soup_message_headers_get_one (headers, "Origin");
  const char *allowed;

  g_return_val_if_fail (KV_IS_ACCESS_POLICY (self), FALSE);

  if (origin == NULL || (allowed = allowed_origin (self, origin)) == NULL)
    return FALSE;

  soup_message_headers_replace (response_headers, "Access-Control-Allow-Origin", allowed);
  soup_message_headers_append (response_headers, "Vary", "Origin");
  if (soup_server_message_get_method (msg) != SOUP_METHOD_OPTIONS ||
      soup_message_headers_get_one (headers, "Access-Control-Request-Method") == NULL)
    return FALSE;

  soup_message_headers_replace (response_headers, "Access-Control-Allow-Methods", methods);
  soup_message_headers_replace (response_headers, "Access-Control-Allow-Headers",
                                KV_ACCESS_CORS_HEADERS);
  soup_message_headers_replace (response_headers, "Access-Control-Max-Age", "600");
  soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
  return TRUE;
}
