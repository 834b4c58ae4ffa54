/* kv-resource-status.c: /healthz, /stats and /metrics, the server's own
 * state
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "kv-call.h"
#include "kv-metrics.h"
#include "kv-request.h"
#include "kv-resources.h"
#include "kv-response.h"

static gboolean
check_method (SoupServerMessage *msg)
{
  if (kv_request_is_read_method (soup_server_message_get_method (msg)))
    return TRUE;

  kv_resource_method_not_allowed (msg, KV_RESOURCE_READ_METHODS);
  return FALSE;
}

static guint64
uptime_seconds (KvStats *stats)
{
  return (g_get_monotonic_time () - kv_stats_get_start_time (stats)) / G_USEC_PER_SEC;
}

/**
 * kv_resource_health:
 *
 * Answers GET and HEAD on /healthz with "ok".
 */
void
kv_resource_health (KvServer          *server,
                    SoupServerMessage *msg,
                    const char        *path,
                    GHashTable        *query)
{
  if (check_method (msg))
    kv_response_text (msg, KV_TEXT_PLAIN, g_strdup ("ok\n"));
}

static void
answer_stats (SoupServerMessage   *msg,
              KvStats             *stats,
              const KvStorageInfo *info)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
#define MEMBER(name, value) \
  json_builder_set_member_name (builder, name); \
  json_builder_add_int_value (builder, value)
  MEMBER ("keys", info->keys);
  MEMBER ("value_bytes", info->value_bytes);
  MEMBER ("revision", info->revision);
  MEMBER ("expired", info->expired);
  MEMBER ("uptime_seconds", uptime_seconds (stats));
  for (KvStat stat = 0; stat < KV_N_STATS; stat++)
    {
      MEMBER (kv_stat_get_name (stat), kv_stats_get (stats, stat));
    }
  MEMBER ("watchers", kv_stats_get_watchers (stats));
  MEMBER ("watch_history_changes", info->history_changes);
  MEMBER ("watch_history_bytes", info->history_bytes);
  MEMBER ("watch_history_oldest_revision", info->history_oldest);
  /* Only a store with a data directory has these. */
  if (info->durable)
    {
      g_autoptr(GEnumClass) modes = g_type_class_ref (KV_TYPE_FSYNC_MODE);

      json_builder_set_member_name (builder, "fsync");
      json_builder_add_string_value (builder, g_enum_get_value (modes, info->fsync)->value_nick);
      MEMBER ("log_bytes", info->disk.log_bytes);
      MEMBER ("snapshot_revision", info->disk.snapshot_revision);
      json_builder_set_member_name (builder, "snapshot_time");
      if (info->disk.snapshot_time != 0)
        {
          g_autofree char *stamp = kv_response_format_timestamp (info->disk.snapshot_time);

          json_builder_add_string_value (builder, stamp);
        }
      else
        json_builder_add_null_value (builder);
      MEMBER ("snapshot_bytes", info->disk.snapshot_bytes);
      MEMBER ("snapshots", info->disk.snapshots);
      MEMBER ("fsyncs", info->disk.fsyncs);
      MEMBER ("fsync_usec", info->disk.fsync_usec);
      MEMBER ("fsync_max_usec", info->disk.fsync_max_usec);
    }
#undef MEMBER
  json_builder_end_object (builder);

  kv_response_json (msg, builder);
}

static void
answer_metrics (SoupServerMessage   *msg,
                KvStats             *stats,
                const KvStorageInfo *info)
{
  g_autoptr(GString) out = g_string_new (NULL);

  kv_metrics_render (out, stats, info, kv_stats_get_open_connections (stats));
  kv_response_text (msg, "text/plain; version=0.0.4; charset=utf-8",
                    g_string_free (g_steal_pointer (&out), FALSE));
}

typedef void (*AnswerFunc) (SoupServerMessage   *msg,
                            KvStats             *stats,
                            const KvStorageInfo *info);

static void
on_info (GObject      *source,
         GAsyncResult *res,
         gpointer      data)
{
  KvCall *call = data;
  AnswerFunc answer = (AnswerFunc) kv_call_get_data (call);
  g_autoptr(GError) error = NULL;
  KvStorageInfo info;

  if (kv_storage_info_finish (KV_STORAGE (source), res, &info, &error))
    answer (kv_call_get_message (call), kv_server_get_stats (kv_call_get_server (call)), &info);
  else
    kv_response_error (kv_call_get_message (call), kv_response_status_for_error (error),
                       error->message);
  kv_call_end (call);
}

static void
ask_info (KvServer          *server,
          SoupServerMessage *msg,
          AnswerFunc         answer)
{
  KvCall *call;

  if (!check_method (msg))
    return;

  call = kv_call_begin (server, msg);
  kv_call_set_data (call, (gpointer) answer, NULL);
  kv_storage_info_async (kv_server_get_storage (server), kv_call_get_cancellable (call),
                         on_info, call);
  kv_call_dispatched (call);
}

/**
 * kv_resource_stats:
 *
 * Answers GET and HEAD on /stats with the store's figures and the request
 * counters, as JSON.
 */
void
kv_resource_stats (KvServer          *server,
                   SoupServerMessage *msg,
                   const char        *path,
                   GHashTable        *query)
{
  ask_info (server, msg, answer_stats);
}

/**
 * kv_resource_metrics:
 *
 * Answers GET and HEAD on /metrics in the Prometheus text exposition
 * format, version 0.0.4.
 */
void
kv_resource_metrics (KvServer          *server,
                     SoupServerMessage *msg,
                     const char        *path,
                     GHashTable        *query)
{
  ask_info (server, msg, answer_metrics);
}
