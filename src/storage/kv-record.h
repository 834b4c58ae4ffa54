/* kv-record.h: the frames that the log and snapshots are made of
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-change.h"
#include "storage/kv-entry.h"

G_BEGIN_DECLS

/* A frame is a 12-byte header, then its payload: the payload's length, the
 * CRC-32C of the payload, and the CRC-32C of those 8 bytes, all little
 * endian. The payload's first byte is its type. */
#define KV_FRAME_HEADER_SIZE 12

typedef enum
{
  KV_RECORD_LOG_HEADER = 1,
  KV_RECORD_COMMIT = 2,
  KV_RECORD_SNAPSHOT_HEADER = 3,
  KV_RECORD_SNAPSHOT_ENTRIES = 4,
  KV_RECORD_SNAPSHOT_END = 5,
} KvRecordType;

#define KV_RECORD_FORMAT_VERSION 1
/* What the header frame of each kind of file starts with. */
#define KV_RECORD_LOG_MAGIC "crafty-kv log"
#define KV_RECORD_SNAPSHOT_MAGIC "crafty-kv snapshot"

/* Writing */
gsize    kv_record_begin         (GByteArray    *out,
                                  KvRecordType   type);
void     kv_record_end           (GByteArray    *out,
                                  gsize          start);
void     kv_record_append_varint (GByteArray    *out,
                                  guint64        value);
void     kv_record_append_string (GByteArray    *out,
                                  gconstpointer  data,
                                  gsize          len);
void     kv_record_append_change (GByteArray    *out,
                                  KvChangeKind   kind,
                                  const KvEntry *entry,
                                  gint64         expires_at);
void     kv_record_append_entry  (GByteArray    *out,
                                  const KvEntry *entry,
                                  gint64         expires_at);

/**
 * KvRecordChange:
 * @kind: what changed
 * @key: (nullable): the key, not NUL-terminated; %NULL for a clear
 * @key_len: its length
 * @value: a put's value
 * @value_len: its length
 * @content_type: a put's media type, not NUL-terminated
 * @content_type_len: its length, 0 for none
 * @expires_at: when a put's entry expires, wall-clock µs, or 0
 * @revision: the revision of the change (of the entry, in a snapshot)
 *
 * One change read back from a frame; it points into the frame's bytes.
 */
typedef struct
{
  KvChangeKind kind;
  const char *key;
  gsize key_len;
  const guint8 *value;
  gsize value_len;
  const char *content_type;
  gsize content_type_len;
  gint64 expires_at;
  guint64 revision;
} KvRecordChange;

/* Reading */
typedef enum
{
  KV_FRAME_OK,
  KV_FRAME_END,
  KV_FRAME_TORN,
  KV_FRAME_DAMAGED,
} KvFrameStatus;

typedef struct
{
  const guint8 *p;
  const guint8 *end;
} KvPayload;

typedef struct
{
  const guint8 *data;
  gsize len;
  gsize offset;   /* of the next frame, or of the frame that failed */
} KvFrameReader;

void          kv_frame_reader_init    (KvFrameReader  *self,
                                       gconstpointer   data,
                                       gsize           len);
KvFrameStatus kv_frame_reader_next    (KvFrameReader  *self,
                                       KvRecordType   *type,
                                       KvPayload      *payload);

gboolean      kv_payload_read_varint  (KvPayload      *self,
                                       guint64        *value);
gboolean      kv_payload_read_string  (KvPayload      *self,
                                       const guint8  **data,
                                       gsize          *len);
gboolean      kv_payload_read_magic   (KvPayload      *self,
                                       const char     *magic,
                                       guint64        *version);
gboolean      kv_payload_read_change  (KvPayload      *self,
                                       guint64         revision,
                                       KvRecordChange *change);
gboolean      kv_payload_read_entry   (KvPayload      *self,
                                       KvRecordChange *change);

G_END_DECLS
