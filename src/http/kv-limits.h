/* kv-limits.h: the limits a server applies to every request
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * KvLimits:
 * @max_value_size: the largest value (request body) accepted, in bytes
 * @max_key_size: the longest key accepted, in bytes
 * @max_header_size: the largest request line and header block, in bytes
 * @max_headers: the most header fields in one request
 * @request_timeout: seconds a request may take to arrive
 * @idle_timeout: seconds a keep-alive connection may stay silent
 * @max_txn_ops: the most operations in one transaction
 * @max_txn_size: the largest transaction body, in bytes
 * @max_pending_output: the most bytes of streamed answers (listings) held
 *   for clients that have not read them yet, all connections together
 * @max_import_size: the largest import body, in bytes
 * @max_watchers: the most watch streams and long-polling reads open at
 *   once, all connections together
 * @watch_heartbeat: seconds after which a watch stream that has sent
 *   nothing sends a comment
 * @watch_buffer: the most bytes of events a watch stream holds for a
 *   client that has not read them, before it ends with an overflow
 * @max_wait: the most seconds a long-polling read may wait
 *
 * Plain values, copied by whoever keeps them: a server can be given new
 * ones while it runs (on SIGHUP).
 */
typedef struct
{
  guint64 max_value_size;
  guint max_key_size;
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
  guint max_wait;
} KvLimits;

G_END_DECLS
