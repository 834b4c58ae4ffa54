/* kv-application.c: the crafty-kv daemon
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <glib/gi18n.h>
#include <glib-unix.h>

#include "kv-application.h"
#include "kv-config.h"
#include "kv-map-storage.h"
#include "kv-server.h"

struct _KvApplication
{
  GApplication parent_instance;

  KvConfig *config;
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
  const char *port_file = kv_config_get_port_file (self->config);
  g_autofree char *contents = NULL;

  if (port_file == NULL)
    return TRUE;

  contents = g_strdup_printf ("%u\n", kv_server_get_port (self->server));
  return g_file_set_contents (port_file, contents, -1, error);
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
  const char *address = kv_config_get_address (self->config);
  guint16 port = kv_config_get_port (self->config);

  G_APPLICATION_CLASS (kv_application_parent_class)->startup (application);

  self->storage = KV_STORAGE (kv_map_storage_new ());
  self->server = kv_server_new (self->storage, self->config);

  if (!kv_server_listen (self->server, address, port, &error))
    {
      what = g_strdup_printf (_("cannot listen on %s port %u"), address, port);
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
             strchr (address, ':') ? "[" : "", address, strchr (address, ':') ? "]" : "",
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

/* The key file: --config FILE, or else the user's crafty-kv.conf when it
 * exists. */
static gboolean
load_config_file (KvApplication  *self,
                  GVariantDict   *options,
                  GError        **error)
{
  g_autofree char *path = NULL;

  if (!g_variant_dict_lookup (options, "config", "^ay", &path))
    {
      path = g_build_filename (g_get_user_config_dir (), PACKAGE_NAME, PACKAGE_NAME ".conf", NULL);
      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        return TRUE;
    }

  return kv_config_load_file (self->config, path, error);
}

static int
kv_application_handle_local_options (GApplication *application,
                                     GVariantDict *options)
{
  KvApplication *self = KV_APPLICATION (application);
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GError) error = NULL;
  const char *address;

  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("%s %s\n", PACKAGE_NAME, VERSION);
      return EXIT_SUCCESS;
    }

  /* The key file first, so that the command line overrides it. */
  if (!load_config_file (self, options, &error) ||
      !kv_config_apply_options (self->config, options, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return EXIT_FAILURE;
    }

  address = kv_config_get_address (self->config);
  inet = g_inet_address_new_from_string (address);
  if (inet == NULL)
    {
      g_printerr (_("%s: invalid address “%s”: must be an IPv4 or IPv6 address\n"),
                  g_get_prgname (), address);
      return EXIT_FAILURE;
    }

  return -1;
}

static void
kv_application_finalize (GObject *object)
{
  KvApplication *self = KV_APPLICATION (object);

  g_clear_object (&self->config);

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
    { "config", 'c', G_OPTION_FLAG_NONE, G_OPTION_ARG_FILENAME, NULL,
      N_("Read settings from FILE (default: $XDG_CONFIG_HOME/crafty-kv/crafty-kv.conf)"),
      N_("FILE") },
    { "version", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_NONE, NULL,
      N_("Print the version and exit"), NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autofree GOptionEntry *settings = kv_config_dup_option_entries ();

  self->config = kv_config_new ();

  g_application_add_main_option_entries (G_APPLICATION (self), settings);
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
