/* kv-resource-clear.c: /clear, emptying the store
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "kv-resources.h"
#include "kv-response.h"

/**
 * kv_resource_clear:
 *
 * Answers DELETE /clear: empties the store, 200 with KV-Revision.
 */
void
kv_resource_clear (KvServer          *server,
                   SoupServerMessage *msg,
                   const char        *path,
                   GHashTable        *query)
{
  g_autoptr(GError) error = NULL;
  guint64 revision = 0;
  guint64 n;
  char text[24];

  if (soup_server_message_get_method (msg) != SOUP_METHOD_DELETE)
    {
      kv_resource_method_not_allowed (msg, "DELETE");
      return;
    }

  n = kv_storage_clear (kv_server_get_storage (server), &revision, &error);
  if (error != NULL)
    {
      kv_response_error (msg, kv_response_status_for_error (error), error->message);
      return;
    }

  kv_stats_add (kv_server_get_stats (server), KV_STAT_DELETES, n);
  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, revision);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "KV-Revision", text);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}
