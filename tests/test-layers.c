/* test-layers.c: calls go one way, as the source folders say
 *
 * SPDX-License-Identifier: MIT
 *
 * A request goes net → access → http → storage. The http layer drives the
 * others (as SoupServer drives its connections and auth domains); net,
 * access and storage include nothing of any other layer, so nothing below
 * can call back up. Checked on the sources, so that a stray include fails
 * here rather than in review.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

typedef struct
{
  const char *folder;
  const char *may_include[5];   /* other layers' folders, NULL-terminated */
} Layer;

static const Layer layers[] = {
  { "storage", { NULL } },
  { "net", { NULL } },
  { "access", { NULL } },
  { "http", { "access", "net", "storage", NULL } },
};

static gboolean
is_allowed (const Layer *layer,
            const char  *folder)
{
  if (g_str_equal (folder, layer->folder))
    return TRUE;
  for (gsize i = 0; layer->may_include[i] != NULL; i++)
    if (g_str_equal (folder, layer->may_include[i]))
      return TRUE;
  return FALSE;
}

/* The folder of an include, or "" for one of the top (kv-config.h…). */
static char *
include_folder (const char *line)
{
  const char *start = strchr (line, '"');
  const char *slash;

  if (start == NULL)
    return NULL;
  start++;
  slash = strchr (start, '/');
  if (slash == NULL || strchr (start, '"') < slash)
    return g_str_has_prefix (start, "config.h\"") ? NULL : g_strdup ("");
  return g_strndup (start, slash - start);
}

static void
test_layer (gconstpointer data)
{
  const Layer *layer = data;
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "..", "src", layer->folder, NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint files = 0;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *contents = NULL;
      g_auto(GStrv) lines = NULL;

      if (!g_str_has_suffix (name, ".c") && !g_str_has_suffix (name, ".h"))
        continue;
      path = g_build_filename (dir, name, NULL);
      g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
      files++;

      lines = g_strsplit (contents, "\n", -1);
      for (gsize i = 0; lines[i] != NULL; i++)
        {
          g_autofree char *folder = NULL;

          if (!g_str_has_prefix (lines[i], "#include \""))
            continue;
          folder = include_folder (lines[i]);
          if (folder == NULL)
            continue;
          /* Without a folder: a file beside this one, or one of the top's
           * (kv-config.h, kv-worker.h…), which no layer may use. */
          if (*folder == '\0')
            {
              const char *file = lines[i] + strlen ("#include \"");
              g_autofree char *base = g_strndup (file, strcspn (file, "\""));
              g_autofree char *sibling = g_build_filename (dir, base, NULL);

              if (!g_file_test (sibling, G_FILE_TEST_EXISTS))
                g_error ("src/%s/%s:%zu includes %s from the top: the %s layer may not",
                         layer->folder, name, i + 1, base, layer->folder);
              continue;
            }
          if (!is_allowed (layer, folder))
            g_error ("src/%s/%s:%zu: “%s”: the %s layer may not include %s/",
                     layer->folder, name, i + 1, lines[i], layer->folder, folder);
        }
    }

  g_assert_cmpuint (files, >, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (layers); i++)
    {
      g_autofree char *path = g_strdup_printf ("/kv/layers/%s", layers[i].folder);

      g_test_add_data_func (path, &layers[i], test_layer);
    }

  return g_test_run ();
}
