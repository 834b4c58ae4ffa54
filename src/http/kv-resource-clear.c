/* kv-resource-clear.c: /clear, emptying the store
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "kv-call.h"
#include "kv-resources.h"
#include "kv-response.h"

static void
on_cleared (GObject      *source,
            GAsyncResult *res,
            gpointer      data)
{
  KvCall *call = data;
  SoupServerMessage *msg = kv_call_get_message (call);
  g_autoptr(KvTxnResult) result = NULL;
  g_autoptr(GError) error = NULL;
  char text[24];

  result = kv_storage_apply_finish (KV_STORAGE (source), res, NULL, &error);
  if (result == NULL)
    {
      kv_response_error (msg, kv_response_status_for_error (error), error->message);
      kv_call_end (call);
      return;
    }

  kv_stats_add (kv_server_get_stats (kv_call_get_server (call)), KV_STAT_DELETES,
                kv_txn_result_get (result, 0)->n_deleted);
  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, kv_txn_result_get_revision (result));
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "KV-Revision", text);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  kv_call_end (call);
}

/**
 * kv_resource_clear:
 *
 * Answers DELETE /clear: empties the store, as one change; 200 with
 * KV-Revision.
 */
void
kv_resource_clear (KvServer          *server,
                   SoupServerMessage *msg,
                   const char        *path,
                   GHashTable        *query)
{
  g_autoptr(KvTxn) txn = NULL;
  KvCall *call;

  if (soup_server_message_get_method (msg) != SOUP_METHOD_DELETE)
    {
      kv_resource_method_not_allowed (msg, "DELETE");
      return;
    }

  txn = kv_txn_new ();
  kv_txn_add_clear (txn);
  call = kv_call_begin (server, msg);
  kv_storage_apply_async (kv_server_get_storage (server), txn, kv_call_get_cancellable (call),
                          on_cleared, call);
  kv_call_dispatched (call);
}
