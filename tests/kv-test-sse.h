/* kv-test-sse.h: a client of Server-Sent Events over a raw socket, many
 * at once if need be
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* One block of the stream, up to its blank line: an event, an id alone,
 * or a comment. Fields it does not have are NULL. */
typedef struct
{
  char *event;
  char *id;
  char *data;
  char *comment;
} KvSseBlock;

void kv_sse_block_free (KvSseBlock *block);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvSseBlock, kv_sse_block_free)

typedef struct _KvSseClient KvSseClient;

KvSseClient *kv_sse_client_new        (guint16             port,
                                       const char         *target,
                                       const char * const *headers);
void         kv_sse_client_free       (KvSseClient        *self);
GSocket     *kv_sse_client_get_socket (KvSseClient        *self);
gboolean     kv_sse_client_feed       (KvSseClient        *self);
KvSseBlock  *kv_sse_client_pop        (KvSseClient        *self);
KvSseBlock  *kv_sse_client_next       (KvSseClient        *self,
                                       guint               timeout_ms);
guint        kv_sse_client_get_status (KvSseClient        *self);
const char  *kv_sse_client_get_header (KvSseClient        *self,
                                       const char         *name);
gboolean     kv_sse_client_is_closed  (KvSseClient        *self);
gboolean     kv_sse_client_has_ended  (KvSseClient        *self);
const char  *kv_sse_client_get_body   (KvSseClient        *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvSseClient, kv_sse_client_free)

G_END_DECLS
