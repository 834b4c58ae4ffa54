/* bare-soup.c: the floor for build-aux/bench
 *
 * The least a libsoup 3 server can do to answer GET /kv/{key}: one
 * SoupServer, one handler, one GHashTable lookup, the value sent as the
 * GBytes it is stored in. It is filled at start-up with --keys keys named as
 * kv-load names them ("key:000000000042"), each with a --value-size value,
 * so crafty-kv's GET path can be measured against it in the same run.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <libsoup/soup.h>

#define KV_PREFIX "/kv/"

static void
handle_kv (SoupServer        *server,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query,
           gpointer           user_data)
{
  GHashTable *table = user_data;
  const char *method = soup_server_message_get_method (msg);
  GBytes *value;

  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
      return;
    }

  value = g_hash_table_lookup (table, path + strlen (KV_PREFIX));
  if (value == NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "key not found\n", strlen ("key not found\n"));
      return;
    }

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Content-Type", "text/plain");
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), value);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static GHashTable *
fill_table (guint64 n_keys,
            gsize   value_size)
{
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal,
                                             g_free, (GDestroyNotify) g_bytes_unref);
  g_autofree char *value = g_malloc (value_size);
  gsize i;

  for (i = 0; i < value_size; i++)
    value[i] = (char) ('a' + i % 26);

  /* A separate allocation per key and per value, as a first version of a
   * store would do. */
  for (i = 0; i < n_keys; i++)
    g_hash_table_insert (table,
                         g_strdup_printf ("key:%012" G_GUINT64_FORMAT, (guint64) i),
                         g_bytes_new (value, value_size));

  return table;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GHashTable) table = NULL;
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *address_string = g_strdup ("127.0.0.1");
  g_autofree char *port_file = NULL;
  gint port = 0;
  gint64 n_keys = 1000;
  gint value_size = 100;
  const GOptionEntry entries[] = {
    { "address", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_STRING, &address_string,
      "Address to listen on (default 127.0.0.1)", "ADDRESS" },
    { "port", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_INT, &port,
      "TCP port, 0 for any free one", "PORT" },
    { "port-file", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_FILENAME, &port_file,
      "Write the bound port to FILE", "FILE" },
    { "keys", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_INT64, &n_keys,
      "Number of keys to serve (default 1000)", "N" },
    { "value-size", 0, G_OPTION_FLAG_NONE, G_OPTION_ARG_INT, &value_size,
      "Bytes per value (default 100)", "N" },
    G_OPTION_ENTRY_NULL
  };
  GSList *uris;

  context = g_option_context_new ("- a minimal libsoup key-value reader");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bare-soup: %s\n", error->message);
      return 2;
    }
  if (port < 0 || port > 65535 || n_keys < 0 || value_size < 1)
    {
      g_printerr ("bare-soup: invalid --port, --keys or --value-size\n");
      return 2;
    }

  table = fill_table ((guint64) n_keys, (gsize) value_size);

  server = soup_server_new ("server-header", "bare-soup ", NULL);
  soup_server_add_handler (server, KV_PREFIX, handle_kv, table, NULL);

  inet = g_inet_address_new_from_string (address_string);
  if (inet == NULL)
    {
      g_printerr ("bare-soup: invalid address %s\n", address_string);
      return 2;
    }
  address = g_inet_socket_address_new (inet, (guint16) port);
  if (!soup_server_listen (server, address, 0, &error))
    {
      g_printerr ("bare-soup: %s\n", error->message);
      return 1;
    }

  uris = soup_server_get_uris (server);
  if (port_file != NULL && uris != NULL)
    {
      g_autofree char *contents = g_strdup_printf ("%d\n", g_uri_get_port (uris->data));

      if (!g_file_set_contents (port_file, contents, -1, &error))
        {
          g_printerr ("bare-soup: %s\n", error->message);
          return 1;
        }
    }
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  loop = g_main_loop_new (NULL, FALSE);
  g_main_loop_run (loop);

  return 0;
}
