/* kv-application.c: the crafty-kv daemon
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <glib/gi18n.h>
#include <glib-unix.h>

#include "kv-application.h"
#include "kv-map-storage.h"
#include "kv-server.h"

#define DEFAULT_ADDRESS "127.0.0.1"
#define DEFAULT_PORT 8888

struct _KvApplication
{
  GApplication parent_instance;

  /* Options */
  char *address;
  int port;
  char *port_file;

  KvStorage *storage;
  KvServer *server;
  guint sigint_id;
  guint sigterm_id;
  int exit_status;
};

G_DEFINE_FINAL_TYPE (KvApplication, kv_application, G_TYPE_APPLICATION)

static gboolean
on_quit_signal (gpointer user_data)
{
  KvApplication *self = user_data;

  g_message ("Stopping");
  g_application_quit (G_APPLICATION (self));

  return G_SOURCE_CONTINUE;
}

static gboolean
write_port_file (KvApplication  *self,
                 GError        **error)
{
  g_autofree char *contents = NULL;

  if (self->port_file == NULL)
    return TRUE;

  contents = g_strdup_printf ("%u\n", kv_server_get_port (self->server));
  return g_file_set_contents (self->port_file, contents, -1, error);
}

static void
fail (KvApplication *self,
      const char    *what,
      const GError  *error)
{
  g_printerr ("%s: %s: %s\n", g_get_prgname (), what, error->message);
  self->exit_status = EXIT_FAILURE;
}

static void
kv_application_startup (GApplication *application)
{
  KvApplication *self = KV_APPLICATION (application);
  g_autoptr(GError) error = NULL;
  g_autofree char *what = NULL;

  G_APPLICATION_CLASS (kv_application_parent_class)->startup (application);

  self->storage = KV_STORAGE (kv_map_storage_new ());
  self->server = kv_server_new (self->storage);

  if (!kv_server_listen (self->server, self->address, self->port, &error))
    {
      what = g_strdup_printf (_("cannot listen on %s port %d"), self->address, self->port);
      fail (self, what, error);
      return;
    }

  if (!write_port_file (self, &error))
    {
      fail (self, _("cannot write the port file"), error);
      return;
    }

  self->sigint_id = g_unix_signal_add (SIGINT, on_quit_signal, self);
  self->sigterm_id = g_unix_signal_add (SIGTERM, on_quit_signal, self);

  g_message ("Listening on http://%s%s%s:%u/",
             strchr (self->address, ':') ? "[" : "", self->address,
             strchr (self->address, ':') ? "]" : "",
             kv_server_get_port (self->server));

  /* A daemon has no window to keep it alive: hold until a signal arrives. */
  g_application_hold (application);
}

static void
kv_application_activate (GApplication *application)
{
  /* Everything happens in startup; activation has nothing to show. */
}

static void
kv_application_shutdown (GApplication *application)
{
  KvApplication *self = KV_APPLICATION (application);

  g_clear_handle_id (&self->sigint_id, g_source_remove);
  g_clear_handle_id (&self->sigterm_id, g_source_remove);
  g_clear_object (&self->server);
  g_clear_object (&self->storage);

  G_APPLICATION_CLASS (kv_application_parent_class)->shutdown (application);
}

static int
kv_application_handle_local_options (GApplication *application,
                                     GVariantDict *options)
{
  KvApplication *self = KV_APPLICATION (application);
  g_autoptr(GInetAddress) inet = NULL;

  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("%s %s\n", PACKAGE_NAME, VERSION);
      return EXIT_SUCCESS;
    }

  if (self->port < 0 || self->port > G_MAXUINT16)
    {
      g_printerr (_("%s: invalid port %d: must be between 0 and 65535\n"),
                  g_get_prgname (), self->port);
      return EXIT_FAILURE;
    }

  inet = g_inet_address_new_from_string (self->address);
  if (inet == NULL)
    {
      g_printerr (_("%s: invalid address “%s”: must be an IPv4 or IPv6 address\n"),
                  g_get_prgname (), self->address);
      return EXIT_FAILURE;
    }

  return -1;
}

static void
kv_application_finalize (GObject *object)
{
  KvApplication *self = KV_APPLICATION (object);

  g_free (self->address);
  g_free (self->port_file);

  G_OBJECT_CLASS (kv_application_parent_class)->finalize (object);
}

static void
kv_application_class_init (KvApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  object_class->finalize = kv_application_finalize;
  app_class->startup = kv_application_startup;
  app_class->activate = kv_application_activate;
  app_class->shutdown = kv_application_shutdown;
  app_class->handle_local_options = kv_application_handle_local_options;
}

static void
kv_application_init (KvApplication *self)
{
  const GOptionEntry entries[] = {
    { "address", 'a', G_OPTION_FLAG_NONE, G_OPTION_ARG_STRING, &self->address,
      N_("Listen on ADDRESS (default: 127.0.0.1)"), N_("ADDRESS") },
    { "port", 'p', G_OPTION_FLAG_NONE, G_OPTION_ARG_INT, &self->port,
      N_("Listen on PORT; 0 picks a free port (default: 8888)"), N_("PORT") },
    { "port-file", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_FILENAME, &self->port_file,
      N_("Write the port to FILE once listening"), N_("FILE") },
    { "version", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_NONE, NULL,
      N_("Print the version and exit"), NULL },
    G_OPTION_ENTRY_NULL
  };

  self->address = g_strdup (DEFAULT_ADDRESS);
  self->port = DEFAULT_PORT;

  g_application_add_main_option_entries (G_APPLICATION (self), entries);
  g_application_set_option_context_summary (G_APPLICATION (self),
                                            _("An in-memory key-value store served over HTTP."));
}

/**
 * kv_application_new:
 *
 * Returns: (transfer full): the daemon
 */
KvApplication *
kv_application_new (void)
{
  return g_object_new (KV_TYPE_APPLICATION,
                       "application-id", "org.example.CraftyKv",
                       "flags", G_APPLICATION_NON_UNIQUE,
                       NULL);
}

/**
 * kv_application_get_exit_status:
 *
 * Returns: the status the process should exit with once
 *   g_application_run() has returned
 */
int
kv_application_get_exit_status (KvApplication *self)
{
  g_return_val_if_fail (KV_IS_APPLICATION (self), EXIT_FAILURE);

  return self->exit_status;
}
