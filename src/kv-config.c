/* kv-config.c: every setting of crafty-kv, from defaults, a key file and
 * the command line
 *
 * SPDX-License-Identifier: MIT
 *
 * Each setting is a property of KvConfig. The property is the single place
 * that gives a setting its name, type, range, default and description: the
 * command-line options and the key-file keys are both derived from it, so a
 * new setting is one new property.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <glib/gi18n.h>

#include "kv-config.h"

#include "storage/kv-change-hub.h"
#include "storage/kv-entry.h"

struct _KvConfig
{
  GObject parent_instance;

  char *address;
  guint port;
  char *port_file;
  char *unix_socket;
  guint64 max_value_size;
  guint max_key_size;
  guint shutdown_timeout;
  guint threads;
  guint max_connections;
  guint max_header_size;
  guint max_headers;
  guint request_timeout;
  guint idle_timeout;
  guint max_txn_ops;
  guint64 max_txn_size;
  guint64 max_pending_output;
  guint64 max_import_size;
  guint max_watchers;
  guint watch_heartbeat;
  guint64 watch_buffer;
  guint watch_history;
  guint64 watch_history_size;
  guint max_wait;
  char *token_file;
  char **allow_origin;
  char *data_dir;
  KvFsyncMode fsync;
  guint64 snapshot_log_size;
};

enum {
  PROP_0,
  PROP_ADDRESS,
  PROP_PORT,
  PROP_PORT_FILE,
  PROP_UNIX_SOCKET,
  PROP_MAX_VALUE_SIZE,
  PROP_MAX_KEY_SIZE,
  PROP_SHUTDOWN_TIMEOUT,
  PROP_THREADS,
  PROP_MAX_CONNECTIONS,
  PROP_MAX_HEADER_SIZE,
  PROP_MAX_HEADERS,
  PROP_REQUEST_TIMEOUT,
  PROP_IDLE_TIMEOUT,
  PROP_MAX_TXN_OPS,
  PROP_MAX_TXN_SIZE,
  PROP_MAX_PENDING_OUTPUT,
  PROP_MAX_IMPORT_SIZE,
  PROP_MAX_WATCHERS,
  PROP_WATCH_HEARTBEAT,
  PROP_WATCH_BUFFER,
  PROP_WATCH_HISTORY,
  PROP_WATCH_HISTORY_SIZE,
  PROP_MAX_WAIT,
  PROP_TOKEN_FILE,
  PROP_ALLOW_ORIGIN,
  PROP_DATA_DIR,
  PROP_WORKING_DIR,
  PROP_FSYNC,
  PROP_SNAPSHOT_LOG_SIZE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_QUARK (kv-config-error-quark, kv_config_error)

G_DEFINE_FINAL_TYPE (KvConfig, kv_config, G_TYPE_OBJECT)

static void
kv_config_finalize (GObject *object)
{
  KvConfig *self = KV_CONFIG (object);

  g_free (self->address);
  g_free (self->port_file);
  g_free (self->unix_socket);
  g_free (self->token_file);
  g_strfreev (self->allow_origin);
  g_free (self->data_dir);

  G_OBJECT_CLASS (kv_config_parent_class)->finalize (object);
}

static void
kv_config_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  KvConfig *self = KV_CONFIG (object);

  switch (prop_id)
    {
    case PROP_ADDRESS:
      g_value_set_string (value, self->address);
      break;
    case PROP_PORT:
      g_value_set_uint (value, self->port);
      break;
    case PROP_PORT_FILE:
      g_value_set_string (value, self->port_file);
      break;
    case PROP_UNIX_SOCKET:
      g_value_set_string (value, self->unix_socket);
      break;
    case PROP_MAX_VALUE_SIZE:
      g_value_set_uint64 (value, self->max_value_size);
      break;
    case PROP_MAX_KEY_SIZE:
      g_value_set_uint (value, self->max_key_size);
      break;
    case PROP_SHUTDOWN_TIMEOUT:
      g_value_set_uint (value, self->shutdown_timeout);
      break;
    case PROP_THREADS:
      g_value_set_uint (value, self->threads);
      break;
    case PROP_DATA_DIR:
    case PROP_WORKING_DIR:
      g_value_set_string (value, self->data_dir);
      break;
    case PROP_FSYNC:
      g_value_set_enum (value, self->fsync);
      break;
    case PROP_SNAPSHOT_LOG_SIZE:
      g_value_set_uint64 (value, self->snapshot_log_size);
      break;
    case PROP_MAX_CONNECTIONS:
      g_value_set_uint (value, self->max_connections);
      break;
    case PROP_MAX_HEADER_SIZE:
      g_value_set_uint (value, self->max_header_size);
      break;
    case PROP_MAX_HEADERS:
      g_value_set_uint (value, self->max_headers);
      break;
    case PROP_REQUEST_TIMEOUT:
      g_value_set_uint (value, self->request_timeout);
      break;
    case PROP_IDLE_TIMEOUT:
      g_value_set_uint (value, self->idle_timeout);
      break;
    case PROP_MAX_TXN_OPS:
      g_value_set_uint (value, self->max_txn_ops);
      break;
    case PROP_MAX_TXN_SIZE:
      g_value_set_uint64 (value, self->max_txn_size);
      break;
    case PROP_MAX_PENDING_OUTPUT:
      g_value_set_uint64 (value, self->max_pending_output);
      break;
    case PROP_MAX_IMPORT_SIZE:
      g_value_set_uint64 (value, self->max_import_size);
      break;
    case PROP_MAX_WATCHERS:
      g_value_set_uint (value, self->max_watchers);
      break;
    case PROP_WATCH_HEARTBEAT:
      g_value_set_uint (value, self->watch_heartbeat);
      break;
    case PROP_WATCH_BUFFER:
      g_value_set_uint64 (value, self->watch_buffer);
      break;
    case PROP_WATCH_HISTORY:
      g_value_set_uint (value, self->watch_history);
      break;
    case PROP_WATCH_HISTORY_SIZE:
      g_value_set_uint64 (value, self->watch_history_size);
      break;
    case PROP_MAX_WAIT:
      g_value_set_uint (value, self->max_wait);
      break;
    case PROP_TOKEN_FILE:
      g_value_set_string (value, self->token_file);
      break;
    case PROP_ALLOW_ORIGIN:
      g_value_set_boxed (value, self->allow_origin);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_config_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  KvConfig *self = KV_CONFIG (object);

  switch (prop_id)
    {
    case PROP_ADDRESS:
      g_free (self->address);
      self->address = g_value_dup_string (value);
      break;
    case PROP_PORT:
      self->port = g_value_get_uint (value);
      break;
    case PROP_PORT_FILE:
      g_free (self->port_file);
      self->port_file = g_value_dup_string (value);
      break;
    case PROP_UNIX_SOCKET:
      g_free (self->unix_socket);
      self->unix_socket = g_value_dup_string (value);
      break;
    case PROP_MAX_VALUE_SIZE:
      self->max_value_size = g_value_get_uint64 (value);
      break;
    case PROP_MAX_KEY_SIZE:
      self->max_key_size = g_value_get_uint (value);
      break;
    case PROP_SHUTDOWN_TIMEOUT:
      self->shutdown_timeout = g_value_get_uint (value);
      break;
    case PROP_THREADS:
      self->threads = g_value_get_uint (value);
      break;
    case PROP_DATA_DIR:
    case PROP_WORKING_DIR:
      g_free (self->data_dir);
      self->data_dir = g_value_dup_string (value);
      break;
    case PROP_FSYNC:
      self->fsync = g_value_get_enum (value);
      break;
    case PROP_SNAPSHOT_LOG_SIZE:
      self->snapshot_log_size = g_value_get_uint64 (value);
      break;
    case PROP_MAX_CONNECTIONS:
      self->max_connections = g_value_get_uint (value);
      break;
    case PROP_MAX_HEADER_SIZE:
      self->max_header_size = g_value_get_uint (value);
      break;
    case PROP_MAX_HEADERS:
      self->max_headers = g_value_get_uint (value);
      break;
    case PROP_REQUEST_TIMEOUT:
      self->request_timeout = g_value_get_uint (value);
      break;
    case PROP_IDLE_TIMEOUT:
      self->idle_timeout = g_value_get_uint (value);
      break;
    case PROP_MAX_TXN_OPS:
      self->max_txn_ops = g_value_get_uint (value);
      break;
    case PROP_MAX_TXN_SIZE:
      self->max_txn_size = g_value_get_uint64 (value);
      break;
    case PROP_MAX_PENDING_OUTPUT:
      self->max_pending_output = g_value_get_uint64 (value);
      break;
    case PROP_MAX_IMPORT_SIZE:
      self->max_import_size = g_value_get_uint64 (value);
      break;
    case PROP_MAX_WATCHERS:
      self->max_watchers = g_value_get_uint (value);
      break;
    case PROP_WATCH_HEARTBEAT:
      self->watch_heartbeat = g_value_get_uint (value);
      break;
    case PROP_WATCH_BUFFER:
      self->watch_buffer = g_value_get_uint64 (value);
      break;
    case PROP_WATCH_HISTORY:
      self->watch_history = g_value_get_uint (value);
      break;
    case PROP_WATCH_HISTORY_SIZE:
      self->watch_history_size = g_value_get_uint64 (value);
      break;
    case PROP_MAX_WAIT:
      self->max_wait = g_value_get_uint (value);
      break;
    case PROP_TOKEN_FILE:
      g_free (self->token_file);
      self->token_file = g_value_dup_string (value);
      break;
    case PROP_ALLOW_ORIGIN:
      g_strfreev (self->allow_origin);
      self->allow_origin = g_value_dup_boxed (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

#define SETTING (G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS)
/* The sockets and threads are made once, at start: a reload cannot change
 * the settings they come from. */
#define NEEDS_RESTART (1 << G_PARAM_USER_SHIFT)
#define RESTART_SETTING (SETTING | NEEDS_RESTART)

static void
kv_config_class_init (KvConfigClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = kv_config_finalize;
  object_class->get_property = kv_config_get_property;
  object_class->set_property = kv_config_set_property;

  /* The nick is the option's argument name and the blurb its --help line;
   * both are marked for translation and translated when shown. */
  properties[PROP_ADDRESS] =
    g_param_spec_string ("address", N_("ADDRESS"),
                         N_("Listen on ADDRESS, an IPv4 or IPv6 address (default: 127.0.0.1)"),
                         "127.0.0.1", RESTART_SETTING);
  properties[PROP_PORT] =
    g_param_spec_uint ("port", N_("PORT"),
                       N_("Listen on TCP port PORT; 0 picks a free port (default: 8888)"),
                       0, G_MAXUINT16, 8888, RESTART_SETTING);
  properties[PROP_PORT_FILE] =
    g_param_spec_string ("port-file", N_("FILE"),
                         N_("Write the bound port to FILE once listening"),
                         NULL, RESTART_SETTING);
  properties[PROP_UNIX_SOCKET] =
    g_param_spec_string ("unix-socket", N_("PATH"),
                         N_("Listen on the Unix socket PATH (mode 0600) instead of TCP"),
                         NULL, RESTART_SETTING);
  properties[PROP_MAX_VALUE_SIZE] =
    g_param_spec_uint64 ("max-value-size", N_("BYTES"),
                         N_("Refuse values larger than BYTES (default: 1048576)"),
                         1, G_MAXUINT32, 1024 * 1024, SETTING);
  properties[PROP_MAX_KEY_SIZE] =
    g_param_spec_uint ("max-key-size", N_("BYTES"),
                       N_("Refuse keys longer than BYTES (default: 1024)"),
                       1, KV_ENTRY_MAX_KEY_SIZE, 1024, SETTING);
  properties[PROP_SHUTDOWN_TIMEOUT] =
    g_param_spec_uint ("shutdown-timeout", N_("SECONDS"),
                       N_("On SIGTERM or SIGINT, let requests in flight finish for up to "
                          "SECONDS (default: 5)"),
                       0, 3600, 5, SETTING);
  properties[PROP_THREADS] =
    g_param_spec_uint ("threads", N_("N"),
                       N_("Serve from N threads, each with its own HTTP server; 0 means one "
                          "per CPU (default: 0)"),
                       0, 256, 0, RESTART_SETTING);
  /* The limits below bound what one client can hold: a connection slot, a
   * header block, the time a request may take to arrive. */
  properties[PROP_MAX_CONNECTIONS] =
    g_param_spec_uint ("max-connections", N_("N"),
                       N_("Close new connections at once while N are open (default: 512)"),
                       1, 1000000, 512, SETTING);
  /* libsoup itself stops at 64 KiB, with no answer. */
  properties[PROP_MAX_HEADER_SIZE] =
    g_param_spec_uint ("max-header-size", N_("BYTES"),
                       N_("Refuse requests whose request line and headers take more than BYTES "
                          "(default: 16384)"),
                       1024, 65536, 16384, SETTING);
  properties[PROP_MAX_HEADERS] =
    g_param_spec_uint ("max-headers", N_("N"),
                       N_("Refuse requests with more than N header fields (default: 100)"),
                       1, 10000, 100, SETTING);
  properties[PROP_REQUEST_TIMEOUT] =
    g_param_spec_uint ("request-timeout", N_("SECONDS"),
                       N_("Cut off a client that takes longer than SECONDS to send a request's "
                          "headers and body (default: 10)"),
                       1, 3600, 10, SETTING);
  properties[PROP_IDLE_TIMEOUT] =
    g_param_spec_uint ("idle-timeout", N_("SECONDS"),
                       N_("Close a connection that stays idle, or makes no progress, for SECONDS "
                          "(default: 30)"),
                       1, 86400, 30, SETTING);
  properties[PROP_MAX_TXN_OPS] =
    g_param_spec_uint ("max-txn-ops", N_("N"),
                       N_("Refuse transactions of more than N operations (default: 10000)"),
                       1, 1000000, 10000, SETTING);
  properties[PROP_MAX_TXN_SIZE] =
    g_param_spec_uint64 ("max-txn-size", N_("BYTES"),
                         N_("Refuse transaction bodies larger than BYTES (default: 16777216)"),
                         1024, G_MAXUINT32, 16 * 1024 * 1024, SETTING);
  properties[PROP_MAX_PENDING_OUTPUT] =
    g_param_spec_uint64 ("max-pending-output", N_("BYTES"),
                         N_("Hold at most BYTES of streamed answers for clients that have not read "
                            "them, all connections together (default: 67108864)"),
                         256 * 1024, G_MAXINT64, 64 * 1024 * 1024, SETTING);
  /* What an import holds before it applies anything: about its body. */
  properties[PROP_MAX_IMPORT_SIZE] =
    g_param_spec_uint64 ("max-import-size", N_("BYTES"),
                         N_("Refuse imports (POST /import) larger than BYTES (default: "
                            "1073741824)"),
                         1024, G_MAXINT64, G_GUINT64_CONSTANT (1024) * 1024 * 1024, SETTING);
  /* Watch streams and long-polling reads: what each may hold, and for how
   * long a read may wait. */
  properties[PROP_MAX_WATCHERS] =
    g_param_spec_uint ("max-watchers", N_("N"),
                       N_("Refuse new watch streams and long-polling reads with 503 while N are "
                          "open (default: 256)"),
                       1, 1000000, 256, SETTING);
  properties[PROP_WATCH_HEARTBEAT] =
    g_param_spec_uint ("watch-heartbeat", N_("SECONDS"),
                       N_("Send a comment on a watch stream that has sent nothing for SECONDS "
                          "(default: 15)"),
                       1, 3600, 15, SETTING);
  properties[PROP_WATCH_BUFFER] =
    g_param_spec_uint64 ("watch-buffer", N_("BYTES"),
                         N_("End a watch stream with an overflow event once BYTES of events wait "
                            "for its client to read them (default: 1048576)"),
                         4096, G_MAXUINT32, 1024 * 1024, SETTING);
  properties[PROP_WATCH_HISTORY] =
    g_param_spec_uint ("watch-history", N_("N"),
                       N_("Keep the latest N changes for watches that resume from a past "
                          "revision; 0 keeps none (default: 10000)"),
                       0, 10000000, KV_CHANGE_HUB_DEFAULT_HISTORY, SETTING);
  properties[PROP_WATCH_HISTORY_SIZE] =
    g_param_spec_uint64 ("watch-history-size", N_("BYTES"),
                         N_("Keep at most BYTES of changes, values included, for watches that "
                            "resume (default: 67108864)"),
                         4096, G_MAXINT64, KV_CHANGE_HUB_DEFAULT_HISTORY_SIZE, SETTING);
  properties[PROP_MAX_WAIT] =
    g_param_spec_uint ("max-wait", N_("SECONDS"),
                       N_("Let a long-polling read (Prefer: wait=N) wait SECONDS at most; 0 "
                          "answers at once (default: 300)"),
                       0, 86400, 300, SETTING);
  properties[PROP_TOKEN_FILE] =
    g_param_spec_string ("token-file", N_("FILE"),
                         N_("Require “Authorization: Bearer TOKEN” on every TCP connection, "
                            "TOKEN being the content of FILE (mode 0600); needed to listen on a "
                            "non-loopback address"),
                         NULL, SETTING);
  properties[PROP_ALLOW_ORIGIN] =
    g_param_spec_boxed ("allow-origin", N_("ORIGIN"),
                        N_("Accept browser requests from ORIGIN, e.g. http://localhost:3000 "
                           "(repeatable; default: none, requests with an Origin are refused)"),
                        G_TYPE_STRV, SETTING);

  /* Durability: where the store lives, and when its log reaches the disk. */
  properties[PROP_DATA_DIR] =
    g_param_spec_string ("data-dir", N_("DIR"),
                         N_("Keep the store in DIR (a log and snapshots), created if missing; "
                            "without it, the store is in memory only"),
                         NULL, RESTART_SETTING);
  properties[PROP_WORKING_DIR] =
    g_param_spec_string ("working-dir", N_("DIR"),
                         N_("Another name for --data-dir"),
                         NULL, RESTART_SETTING);
  properties[PROP_FSYNC] =
    g_param_spec_enum ("fsync", N_("WHEN"),
                       N_("Sync the log to disk “always” (before answering a write), "
                          "“everysec” or “no” (default: everysec)"),
                       KV_TYPE_FSYNC_MODE, KV_FSYNC_EVERYSEC, RESTART_SETTING);
  properties[PROP_SNAPSHOT_LOG_SIZE] =
    g_param_spec_uint64 ("snapshot-log-size", N_("BYTES"),
                         N_("Write a snapshot once the log is larger than BYTES and than twice "
                            "the live data (default: 67108864)"),
                         4096, G_MAXINT64, 64 * 1024 * 1024, RESTART_SETTING);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
kv_config_init (KvConfig *self)
{
}

/**
 * kv_config_new:
 *
 * Returns: (transfer full): the default settings
 */
KvConfig *
kv_config_new (void)
{
  return g_object_new (KV_TYPE_CONFIG, NULL);
}

static GOptionArg
option_arg_for (GParamSpec *pspec)
{
  switch (G_TYPE_FUNDAMENTAL (pspec->value_type))
    {
    case G_TYPE_BOOLEAN:
      return G_OPTION_ARG_NONE;
    case G_TYPE_STRING:
      return G_OPTION_ARG_STRING;
    case G_TYPE_BOXED:
      return G_OPTION_ARG_STRING_ARRAY;
    case G_TYPE_DOUBLE:
      return G_OPTION_ARG_DOUBLE;
    default:
      /* Integers are parsed by us, so that a bad value gets the same error
       * on the command line as in the key file. */
      return G_OPTION_ARG_STRING;
    }
}

/**
 * kv_config_dup_option_entries:
 *
 * Returns: (transfer full) (array zero-terminated=1): one option entry per
 *   setting, with no arg_data, for g_application_add_main_option_entries();
 *   free with g_free()
 */
GOptionEntry *
kv_config_dup_option_entries (void)
{
  GOptionEntry *entries = g_new0 (GOptionEntry, N_PROPS);
  /* The property specs exist once the class does. */
  g_autoptr(GTypeClass) klass G_GNUC_UNUSED = g_type_class_ref (KV_TYPE_CONFIG);

  for (guint i = 1; i < N_PROPS; i++)
    {
      GParamSpec *pspec = properties[i];
      GOptionArg arg = option_arg_for (pspec);

      entries[i - 1] = (GOptionEntry) {
        .long_name = g_param_spec_get_name (pspec),
        .arg = arg,
        .description = g_param_spec_get_blurb (pspec),
        .arg_description = arg == G_OPTION_ARG_NONE ? NULL : g_param_spec_get_nick (pspec),
      };
    }

  return entries;
}

/* Parses @text into @value for @pspec, checking the range. */
static gboolean
parse_value (GParamSpec  *pspec,
             const char  *text,
             GValue      *value,
             GError     **error)
{
  g_value_init (value, pspec->value_type);

  switch (G_TYPE_FUNDAMENTAL (pspec->value_type))
    {
    case G_TYPE_STRING:
      g_value_set_string (value, text);
      return TRUE;

    case G_TYPE_ENUM:
      {
        g_autoptr(GEnumClass) klass = g_type_class_ref (pspec->value_type);
        GEnumValue *found = g_enum_get_value_by_nick (klass, text);

        if (found == NULL)
          {
            g_autoptr(GString) nicks = g_string_new (NULL);

            for (guint i = 0; i < klass->n_values; i++)
              g_string_append_printf (nicks, "%s%s", i > 0 ? ", " : "",
                                      klass->values[i].value_nick);
            g_set_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_INVALID_VALUE,
                         _("invalid value “%s” for %s: must be one of %s"),
                         text, g_param_spec_get_name (pspec), nicks->str);
            g_value_unset (value);
            return FALSE;
          }
        g_value_set_enum (value, found->value);
        return TRUE;
      }

    case G_TYPE_BOOLEAN:
      if (g_strcmp0 (text, "true") == 0)
        g_value_set_boolean (value, TRUE);
      else if (g_strcmp0 (text, "false") == 0)
        g_value_set_boolean (value, FALSE);
      else
        break;
      return TRUE;

    case G_TYPE_DOUBLE:
      {
        char *end = NULL;
        double d;

        errno = 0;
        d = g_ascii_strtod (text, &end);
        if (errno != 0 || end == text || *end != '\0')
          break;
        g_value_set_double (value, d);
        /* Validation clamps into the range and says whether it had to. */
        if (g_param_value_validate (pspec, value))
          goto out_of_range;
        return TRUE;
      }

    case G_TYPE_UINT:
    case G_TYPE_UINT64:
    case G_TYPE_INT:
    case G_TYPE_INT64:
      {
        guint64 n;

        /* Plain decimal digits only: no sign, no spaces, no 0x. */
        if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64, &n, NULL))
          break;
        if (pspec->value_type == G_TYPE_UINT)
          {
            GParamSpecUInt *u = G_PARAM_SPEC_UINT (pspec);
            if (n < u->minimum || n > u->maximum)
              goto out_of_range;
            g_value_set_uint (value, n);
          }
        else if (pspec->value_type == G_TYPE_UINT64)
          {
            GParamSpecUInt64 *u = G_PARAM_SPEC_UINT64 (pspec);
            if (n < u->minimum || n > u->maximum)
              goto out_of_range;
            g_value_set_uint64 (value, n);
          }
        else if (pspec->value_type == G_TYPE_INT)
          {
            GParamSpecInt *s = G_PARAM_SPEC_INT (pspec);
            if (n > (guint64) s->maximum || (gint64) n < s->minimum)
              goto out_of_range;
            g_value_set_int (value, n);
          }
        else
          {
            GParamSpecInt64 *s = G_PARAM_SPEC_INT64 (pspec);
            if (n > (guint64) s->maximum || (gint64) n < s->minimum)
              goto out_of_range;
            g_value_set_int64 (value, n);
          }
        return TRUE;
      }

    default:
      g_assert_not_reached ();
    }

  g_set_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_INVALID_VALUE,
               _("invalid value “%s” for %s"), text, g_param_spec_get_name (pspec));
  g_value_unset (value);
  return FALSE;

out_of_range:
  {
    g_autofree char *range = NULL;

    if (G_IS_PARAM_SPEC_UINT (pspec))
      range = g_strdup_printf ("%u–%u", G_PARAM_SPEC_UINT (pspec)->minimum,
                               G_PARAM_SPEC_UINT (pspec)->maximum);
    else if (G_IS_PARAM_SPEC_UINT64 (pspec))
      range = g_strdup_printf ("%" G_GUINT64_FORMAT "–%" G_GUINT64_FORMAT,
                               G_PARAM_SPEC_UINT64 (pspec)->minimum,
                               G_PARAM_SPEC_UINT64 (pspec)->maximum);
    else if (G_IS_PARAM_SPEC_INT (pspec))
      range = g_strdup_printf ("%d–%d", G_PARAM_SPEC_INT (pspec)->minimum,
                               G_PARAM_SPEC_INT (pspec)->maximum);
    else if (G_IS_PARAM_SPEC_INT64 (pspec))
      range = g_strdup_printf ("%" G_GINT64_FORMAT "–%" G_GINT64_FORMAT,
                               G_PARAM_SPEC_INT64 (pspec)->minimum,
                               G_PARAM_SPEC_INT64 (pspec)->maximum);
    else
      range = g_strdup_printf ("%g–%g", G_PARAM_SPEC_DOUBLE (pspec)->minimum,
                               G_PARAM_SPEC_DOUBLE (pspec)->maximum);

    g_set_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_INVALID_VALUE,
                 _("invalid value “%s” for %s: must be in the range %s"),
                 text, g_param_spec_get_name (pspec), range);
    g_value_unset (value);
    return FALSE;
  }
}

/**
 * kv_config_apply_options:
 * @self: a #KvConfig
 * @options: the options as parsed by GApplication
 * @error: return location for a #GError
 *
 * Sets every setting given on the command line, overriding the key file.
 *
 * Returns: %TRUE if every option value was valid
 */
gboolean
kv_config_apply_options (KvConfig      *self,
                         GVariantDict  *options,
                         GError       **error)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), FALSE);

  for (guint i = 1; i < N_PROPS; i++)
    {
      GParamSpec *pspec = properties[i];
      const char *name = g_param_spec_get_name (pspec);
      g_autoptr(GVariant) v = g_variant_dict_lookup_value (options, name, NULL);
      g_auto(GValue) value = G_VALUE_INIT;

      if (v == NULL)
        continue;

      if (g_variant_is_of_type (v, G_VARIANT_TYPE_BOOLEAN))
        {
          g_value_init (&value, G_TYPE_BOOLEAN);
          g_value_set_boolean (&value, g_variant_get_boolean (v));
        }
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE_DOUBLE))
        {
          g_autofree char *text = g_strdup_printf ("%g", g_variant_get_double (v));

          if (!parse_value (pspec, text, &value, error))
            return FALSE;
        }
      else if (g_variant_is_of_type (v, G_VARIANT_TYPE_STRING_ARRAY))
        {
          g_value_init (&value, G_TYPE_STRV);
          g_value_take_boxed (&value, g_variant_dup_strv (v, NULL));
        }
      else if (!parse_value (pspec, g_variant_get_string (v, NULL), &value, error))
        {
          g_prefix_error (error, "--%s: ", name);
          return FALSE;
        }

      g_object_set_property (G_OBJECT (self), name, &value);
    }

  return TRUE;
}

/* GKeyFile does not say where a key or group is; find its line for error
 * messages. @name is a key, or a group when @is_group. */
static guint
find_line (const char *contents,
           const char *name,
           gboolean    is_group)
{
  g_auto(GStrv) lines = g_strsplit (contents, "\n", -1);
  gsize name_len = strlen (name);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];

      while (g_ascii_isspace (*line))
        line++;
      if (is_group)
        {
          if (line[0] == '[' && strncmp (line + 1, name, name_len) == 0 &&
              line[name_len + 1] == ']')
            return i + 1;
        }
      else if (strncmp (line, name, name_len) == 0)
        {
          const char *rest = line + name_len;
          while (*rest == ' ' || *rest == '\t')
            rest++;
          if (*rest == '=')
            return i + 1;
        }
    }

  return 0;
}

/**
 * kv_config_load_file:
 * @self: a #KvConfig
 * @path: a key file with a `[server]` group
 * @error: return location for a #GError
 *
 * Sets every setting that @path gives. Errors name the file and line.
 *
 * Returns: %TRUE on success
 */
gboolean
kv_config_load_file (KvConfig    *self,
                     const char  *path,
                     GError     **error)
{
  g_autoptr(GKeyFile) key_file = g_key_file_new ();
  g_autoptr(GError) local_error = NULL;
  g_autofree char *contents = NULL;
  g_auto(GStrv) groups = NULL;
  g_auto(GStrv) keys = NULL;
  gsize len;

  g_return_val_if_fail (KV_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);

  if (!g_file_get_contents (path, &contents, &len, error) ||
      !g_key_file_load_from_data (key_file, contents, len, G_KEY_FILE_NONE, &local_error))
    {
      if (local_error != NULL)
        g_set_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_INVALID_VALUE,
                     "%s: %s", path, local_error->message);
      return FALSE;
    }

  groups = g_key_file_get_groups (key_file, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      if (g_strcmp0 (groups[i], KV_CONFIG_GROUP) != 0)
        {
          g_set_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_UNKNOWN_KEY,
                       _("%s:%u: unknown group [%s]; settings go in [%s]"),
                       path, find_line (contents, groups[i], TRUE), groups[i], KV_CONFIG_GROUP);
          return FALSE;
        }
    }

  keys = g_key_file_get_keys (key_file, KV_CONFIG_GROUP, NULL, NULL);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (self), keys[i]);
      g_auto(GValue) value = G_VALUE_INIT;
      g_autofree char *text = NULL;

      if (pspec == NULL)
        {
          g_set_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_UNKNOWN_KEY,
                       _("%s:%u: unknown key “%s”"), path, find_line (contents, keys[i], FALSE), keys[i]);
          return FALSE;
        }

      if (pspec->value_type == G_TYPE_STRV)
        {
          g_auto(GStrv) list = g_key_file_get_string_list (key_file, KV_CONFIG_GROUP, keys[i],
                                                           NULL, NULL);
          g_value_init (&value, G_TYPE_STRV);
          g_value_take_boxed (&value, g_steal_pointer (&list));
        }
      else
        {
          g_autoptr(GError) value_error = NULL;

          text = g_key_file_get_string (key_file, KV_CONFIG_GROUP, keys[i], NULL);
          if (!parse_value (pspec, text, &value, &value_error))
            {
              g_set_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_INVALID_VALUE,
                           "%s:%u: %s", path, find_line (contents, keys[i], FALSE), value_error->message);
              return FALSE;
            }
        }

      g_object_set_property (G_OBJECT (self), keys[i], &value);
    }

  return TRUE;
}

/**
 * kv_config_find_file:
 *
 * Looks for `crafty-kv/crafty-kv.conf` in the user's configuration
 * directory, then in each of the system's (`$XDG_CONFIG_HOME`, then
 * `$XDG_CONFIG_DIRS`), as the XDG base directory specification orders
 * them.
 *
 * Returns: (transfer full) (nullable): the path of the first that exists,
 *   or %NULL when there is none
 */
char *
kv_config_find_file (void)
{
  const char * const *system_dirs = g_get_system_config_dirs ();
  g_autofree char *path = NULL;

  /* Existing is enough: a file that cannot be read must be an error, not
   * a reason to fall back on the next one. */
  path = g_build_filename (g_get_user_config_dir (), PACKAGE_NAME, PACKAGE_NAME ".conf", NULL);
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&path);

  for (gsize i = 0; system_dirs[i] != NULL; i++)
    {
      g_free (path);
      path = g_build_filename (system_dirs[i], PACKAGE_NAME, PACKAGE_NAME ".conf", NULL);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&path);
    }

  return NULL;
}

/**
 * kv_config_check:
 * @self: a #KvConfig
 * @error: return location for a #GError
 *
 * Checks what no single value can: the settings as the key file and the
 * command line left them together.
 *
 * Returns: %TRUE if crafty-kv can run with @self
 */
gboolean
kv_config_check (KvConfig  *self,
                 GError   **error)
{
  g_autoptr(GInetAddress) inet = NULL;

  g_return_val_if_fail (KV_IS_CONFIG (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* The file may name an address that the command line replaces. */
  inet = g_inet_address_new_from_string (self->address);
  if (inet == NULL)
    {
      g_set_error (error, KV_CONFIG_ERROR, KV_CONFIG_ERROR_INVALID_VALUE,
                   _("invalid address “%s”: must be an IPv4 or IPv6 address"), self->address);
      return FALSE;
    }

  return TRUE;
}

static GParamSpec *
find_setting (const char *name)
{
  g_autoptr(GTypeClass) klass G_GNUC_UNUSED = g_type_class_ref (KV_TYPE_CONFIG);

  for (guint i = 1; i < N_PROPS; i++)
    {
      if (g_strcmp0 (g_param_spec_get_name (properties[i]), name) == 0)
        return properties[i];
    }

  return NULL;
}

/**
 * kv_config_needs_restart:
 * @name: the name of a setting
 *
 * Returns: %TRUE if a running crafty-kv cannot apply a new value of @name
 *   (the address, port, port file, Unix socket and threads), %FALSE if a
 *   reload applies it
 */
gboolean
kv_config_needs_restart (const char *name)
{
  GParamSpec *pspec = find_setting (name);

  g_return_val_if_fail (pspec != NULL, FALSE);

  return (pspec->flags & NEEDS_RESTART) != 0;
}

/* An empty string or list means none, as the getters say. */
static gboolean
values_equal (GParamSpec   *pspec,
              const GValue *a,
              const GValue *b)
{
  if (G_VALUE_HOLDS (a, G_TYPE_STRV))
    {
      const char * const *x = g_value_get_boxed (a);
      const char * const *y = g_value_get_boxed (b);

      if (x == NULL || y == NULL)
        return (x == NULL || *x == NULL) && (y == NULL || *y == NULL);
      return g_strv_equal (x, y);
    }

  if (G_VALUE_HOLDS_STRING (a))
    {
      const char *x = g_value_get_string (a);
      const char *y = g_value_get_string (b);

      return g_strcmp0 (x != NULL ? x : "", y != NULL ? y : "") == 0;
    }

  return g_param_values_cmp (pspec, a, b) == 0;
}

/**
 * kv_config_list_changes:
 * @self: a #KvConfig
 * @other: another #KvConfig
 *
 * Returns: (transfer full): the names of the settings whose values differ
 *   between @self and @other, in the order of `--help`
 */
GStrv
kv_config_list_changes (KvConfig *self,
                        KvConfig *other)
{
  g_autoptr(GStrvBuilder) names = g_strv_builder_new ();

  g_return_val_if_fail (KV_IS_CONFIG (self), NULL);
  g_return_val_if_fail (KV_IS_CONFIG (other), NULL);

  for (guint i = 1; i < N_PROPS; i++)
    {
      const char *name = g_param_spec_get_name (properties[i]);
      g_auto(GValue) a = G_VALUE_INIT;
      g_auto(GValue) b = G_VALUE_INIT;

      g_value_init (&a, properties[i]->value_type);
      g_value_init (&b, properties[i]->value_type);
      g_object_get_property (G_OBJECT (self), name, &a);
      g_object_get_property (G_OBJECT (other), name, &b);
      if (!values_equal (properties[i], &a, &b))
        g_strv_builder_add (names, name);
    }

  return g_strv_builder_end (names);
}

/**
 * kv_config_dup_value_text:
 * @self: a #KvConfig
 * @name: the name of a setting
 *
 * Returns: (transfer full): the value of @name as a key file would give
 *   it, or `none` when it has none; for log lines
 */
char *
kv_config_dup_value_text (KvConfig   *self,
                          const char *name)
{
  GParamSpec *pspec = find_setting (name);
  g_auto(GValue) value = G_VALUE_INIT;
  g_auto(GValue) text = G_VALUE_INIT;

  g_return_val_if_fail (KV_IS_CONFIG (self), NULL);
  g_return_val_if_fail (pspec != NULL, NULL);

  g_value_init (&value, pspec->value_type);
  g_object_get_property (G_OBJECT (self), name, &value);

  if (G_VALUE_HOLDS (&value, G_TYPE_STRV))
    {
      const char * const *list = g_value_get_boxed (&value);

      if (list == NULL || *list == NULL)
        return g_strdup ("none");
      return g_strjoinv (";", (char **) list);
    }

  if (G_VALUE_HOLDS_STRING (&value))
    {
      const char *string = g_value_get_string (&value);

      return g_strdup (string != NULL && *string != '\0' ? string : "none");
    }

  if (G_VALUE_HOLDS_ENUM (&value))
    {
      g_autoptr(GEnumClass) klass = g_type_class_ref (pspec->value_type);
      GEnumValue *found = g_enum_get_value (klass, g_value_get_enum (&value));

      return g_strdup (found != NULL ? found->value_nick : "none");
    }

  g_value_init (&text, G_TYPE_STRING);
  g_value_transform (&value, &text);
  return g_value_dup_string (&text);
}

/**
 * kv_config_copy_setting:
 * @self: a #KvConfig
 * @from: the #KvConfig to copy from
 * @name: the name of a setting
 *
 * Gives @name in @self the value it has in @from.
 */
void
kv_config_copy_setting (KvConfig   *self,
                        KvConfig   *from,
                        const char *name)
{
  GParamSpec *pspec = find_setting (name);
  g_auto(GValue) value = G_VALUE_INIT;

  g_return_if_fail (KV_IS_CONFIG (self));
  g_return_if_fail (KV_IS_CONFIG (from));
  g_return_if_fail (pspec != NULL);

  g_value_init (&value, pspec->value_type);
  g_object_get_property (G_OBJECT (from), name, &value);
  g_object_set_property (G_OBJECT (self), name, &value);
}

const char *
kv_config_get_address (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), NULL);
  return self->address;
}

guint16
kv_config_get_port (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);
  return self->port;
}

const char *
kv_config_get_port_file (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), NULL);
  return self->port_file;
}

/**
 * kv_config_get_unix_socket:
 *
 * Returns: (nullable): the path of the Unix socket to listen on, or %NULL
 *   to listen on TCP
 */
const char *
kv_config_get_unix_socket (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), NULL);

  /* An empty value, e.g. --unix-socket= over a key file, means none. */
  if (self->unix_socket == NULL || *self->unix_socket == '\0')
    return NULL;

  return self->unix_socket;
}

gsize
kv_config_get_max_value_size (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);
  return self->max_value_size;
}

gsize
kv_config_get_max_key_size (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);
  return self->max_key_size;
}

/**
 * kv_config_get_shutdown_timeout:
 *
 * Returns: how many seconds a graceful stop waits for requests in flight
 */
guint
kv_config_get_shutdown_timeout (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);
  return self->shutdown_timeout;
}

/**
 * kv_config_get_threads:
 *
 * Returns: how many threads serve requests: the setting, or the number of
 *   CPUs when it is 0
 */
guint
kv_config_get_threads (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 1);
  return self->threads != 0 ? self->threads : MAX (g_get_num_processors (), 1);
}

guint
kv_config_get_max_connections (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);
  return self->max_connections;
}

guint
kv_config_get_max_header_size (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);
  return self->max_header_size;
}

guint
kv_config_get_max_headers (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);
  return self->max_headers;
}

/**
 * kv_config_get_request_timeout:
 *
 * Returns: the seconds a client has to send a request's headers and body
 */
guint
kv_config_get_request_timeout (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);
  return self->request_timeout;
}

/**
 * kv_config_get_idle_timeout:
 *
 * Returns: the seconds a connection may stay idle between requests, or make
 *   no progress while a response is written
 */
guint
kv_config_get_idle_timeout (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);
  return self->idle_timeout;
}

/**
 * kv_config_get_token_file:
 *
 * Returns: (nullable): the file holding the bearer token, or %NULL for none
 */
const char *
kv_config_get_token_file (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), NULL);

  /* An empty value, e.g. token-file= in a key file, means none. */
  if (self->token_file == NULL || *self->token_file == '\0')
    return NULL;

  return self->token_file;
}

/**
 * kv_config_get_allow_origin:
 *
 * Returns: (transfer none) (array zero-terminated=1) (nullable): the origins
 *   whose browser requests are accepted
 */
const char * const *
kv_config_get_allow_origin (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), NULL);
  return (const char * const *) self->allow_origin;
}

/**
 * kv_config_get_data_dir:
 * @self: a #KvConfig
 *
 * Returns: (nullable): where the store lives, or %NULL if in memory only
 */
const char *
kv_config_get_data_dir (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), NULL);

  return self->data_dir != NULL && *self->data_dir != '\0' ? self->data_dir : NULL;
}

KvFsyncMode
kv_config_get_fsync (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), KV_FSYNC_EVERYSEC);

  return self->fsync;
}

guint64
kv_config_get_snapshot_log_size (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);

  return self->snapshot_log_size;
}

/**
 * kv_config_get_watch_history:
 *
 * Returns: how many of the latest changes the store keeps for watches
 *   that resume
 */
guint
kv_config_get_watch_history (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);

  return self->watch_history;
}

/**
 * kv_config_get_watch_history_size:
 *
 * Returns: the most memory those changes may take
 */
guint64
kv_config_get_watch_history_size (KvConfig *self)
{
  g_return_val_if_fail (KV_IS_CONFIG (self), 0);

  return self->watch_history_size;
}

/**
 * kv_config_get_limits:
 * @self: a #KvConfig
 * @limits: (out caller-allocates): the limits every request is held to
 */
void
kv_config_get_limits (KvConfig *self,
                      KvLimits *limits)
{
  g_return_if_fail (KV_IS_CONFIG (self));
  g_return_if_fail (limits != NULL);

  *limits = (KvLimits) {
    .max_value_size = self->max_value_size,
    .max_key_size = self->max_key_size,
    .max_header_size = self->max_header_size,
    .max_headers = self->max_headers,
    .request_timeout = self->request_timeout,
    .idle_timeout = self->idle_timeout,
    .max_txn_ops = self->max_txn_ops,
    .max_txn_size = self->max_txn_size,
    .max_pending_output = self->max_pending_output,
    .max_import_size = self->max_import_size,
    .max_watchers = self->max_watchers,
    .watch_heartbeat = self->watch_heartbeat,
    .watch_buffer = self->watch_buffer,
    .max_wait = self->max_wait,
  };
}
