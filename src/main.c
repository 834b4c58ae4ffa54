/* main.c: crafty-kv's entry point
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <locale.h>
#include <glib/gi18n.h>

#include "kv-application.h"

int
main (int   argc,
      char *argv[])
{
  g_autoptr(KvApplication) app = NULL;
  const char *localedir;
  int status;

  /* The build tree has the translations in a directory of its own: the
   * tests point there, the installed daemon uses LOCALEDIR. */
  localedir = g_getenv ("CRAFTY_KV_LOCALEDIR");
  if (localedir == NULL || *localedir == '\0')
    localedir = LOCALEDIR;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, localedir);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  g_set_prgname ("crafty-kv");

  app = kv_application_new ();
  status = g_application_run (G_APPLICATION (app), argc, argv);

  return status != EXIT_SUCCESS ? status : kv_application_get_exit_status (app);
}
