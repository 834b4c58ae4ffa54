/* kv-config.h: every setting of crafty-kv, from defaults, a key file and
 * the command line
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "http/kv-limits.h"
#include "storage/kv-log.h"

G_BEGIN_DECLS

#define KV_CONFIG_GROUP "server"

#define KV_CONFIG_ERROR (kv_config_error_quark ())

/**
 * KvConfigError:
 * @KV_CONFIG_ERROR_UNKNOWN_KEY: the key file names a setting that does not exist
 * @KV_CONFIG_ERROR_INVALID_VALUE: a value cannot be parsed or is out of range
 *
 * Errors from loading settings.
 */
typedef enum
{
  KV_CONFIG_ERROR_UNKNOWN_KEY,
  KV_CONFIG_ERROR_INVALID_VALUE,
} KvConfigError;

GQuark kv_config_error_quark (void);

#define KV_TYPE_CONFIG (kv_config_get_type ())
G_DECLARE_FINAL_TYPE (KvConfig, kv_config, KV, CONFIG, GObject)

KvConfig     *kv_config_new                 (void);

GOptionEntry *kv_config_dup_option_entries  (void);
gboolean      kv_config_apply_options       (KvConfig      *self,
                                             GVariantDict  *options,
                                             GError       **error);
gboolean      kv_config_load_file           (KvConfig      *self,
                                             const char    *path,
                                             GError       **error);
char         *kv_config_find_file           (void);
gboolean      kv_config_check               (KvConfig      *self,
                                             GError       **error);

gboolean      kv_config_needs_restart       (const char    *name);
GStrv         kv_config_list_changes        (KvConfig      *self,
                                             KvConfig      *other);
char         *kv_config_dup_value_text      (KvConfig      *self,
                                             const char    *name);
void          kv_config_copy_setting        (KvConfig      *self,
                                             KvConfig      *from,
                                             const char    *name);

const char   *kv_config_get_address         (KvConfig *self);
guint16       kv_config_get_port            (KvConfig *self);
const char   *kv_config_get_port_file       (KvConfig *self);
const char   *kv_config_get_unix_socket     (KvConfig *self);
gsize         kv_config_get_max_value_size  (KvConfig *self);
gsize         kv_config_get_max_key_size    (KvConfig *self);
guint         kv_config_get_shutdown_timeout (KvConfig *self);
guint         kv_config_get_threads         (KvConfig *self);
guint         kv_config_get_max_connections (KvConfig *self);
guint         kv_config_get_max_header_size (KvConfig *self);
guint         kv_config_get_max_headers     (KvConfig *self);
guint         kv_config_get_request_timeout (KvConfig *self);
guint         kv_config_get_idle_timeout    (KvConfig *self);
const char   *kv_config_get_token_file      (KvConfig *self);
const char * const *kv_config_get_allow_origin (KvConfig *self);
const char   *kv_config_get_data_dir        (KvConfig *self);
KvFsyncMode   kv_config_get_fsync           (KvConfig *self);
guint64       kv_config_get_snapshot_log_size (KvConfig *self);
guint         kv_config_get_watch_history   (KvConfig *self);
guint64       kv_config_get_watch_history_size (KvConfig *self);
void          kv_config_get_limits          (KvConfig      *self,
                                             KvLimits      *limits);

G_END_DECLS
