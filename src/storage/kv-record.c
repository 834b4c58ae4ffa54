/* kv-record.c: the frames that the log and snapshots are made of
 *
 * SPDX-License-Identifier: MIT
 *
 * Numbers inside a payload are LEB128 varints and strings are a varint
 * length then the bytes, so that a 16-byte key with a 100-byte value costs
 * about 6 bytes more on disk than in the store's own accounting.
 *
 * Reading tells a torn frame — the tail of a file cut short by a crash —
 * from a damaged one. Only the last frame of a file can be torn: a header
 * cut short, a header of zeros (space the file system allocated but never
 * wrote), or a payload that runs past the end of the file or fails its
 * checksum with nothing after it. A frame that fails its checksum with
 * more bytes after it is damage, as is a header that fails its own
 * checksum and is not all zeros: a length that cannot be trusted must not
 * make the reader skip what follows.
 */
#include "config.h"

#include <string.h>

#include "kv-crc32c.h"
#include "kv-record.h"

static void
put_u32 (guint8  *p,
         guint32  v)
{
  p[0] = v;
  p[1] = v >> 8;
  p[2] = v >> 16;
  p[3] = v >> 24;
}

static guint32
get_u32 (const guint8 *p)
{
  return p[0] | p[1] << 8 | p[2] << 16 | (guint32) p[3] << 24;
}

/**
 * kv_record_begin:
 * @out: where frames are built
 * @type: the type of the frame
 *
 * Starts a frame at the end of @out; kv_record_end() finishes it.
 *
 * Returns: where the frame starts, for kv_record_end()
 */
gsize
kv_record_begin (GByteArray   *out,
                 KvRecordType  type)
{
  gsize start = out->len;
  guint8 t = type;

  g_byte_array_set_size (out, start + KV_FRAME_HEADER_SIZE);
  g_byte_array_append (out, &t, 1);
  return start;
}

/**
 * kv_record_end:
 * @out: where the frame was built
 * @start: what kv_record_begin() returned
 *
 * Fills in the frame's header: its length and checksums.
 */
void
kv_record_end (GByteArray *out,
               gsize       start)
{
  guint8 *header = out->data + start;
  gsize len = out->len - start - KV_FRAME_HEADER_SIZE;

  g_assert (len <= G_MAXUINT32);
  put_u32 (header, len);
  put_u32 (header + 4, kv_crc32c (0, header + KV_FRAME_HEADER_SIZE, len));
  put_u32 (header + 8, kv_crc32c (0, header, 8));
}

void
kv_record_append_varint (GByteArray *out,
                         guint64     value)
{
  guint8 buf[10];
  guint n = 0;

  do
    {
      buf[n] = value & 0x7f;
      value >>= 7;
      if (value != 0)
        buf[n] |= 0x80;
      n++;
    }
  while (value != 0);

  g_byte_array_append (out, buf, n);
}

void
kv_record_append_string (GByteArray    *out,
                         gconstpointer  data,
                         gsize          len)
{
  kv_record_append_varint (out, len);
  if (len > 0)
    g_byte_array_append (out, data, len);
}

static void
append_value (GByteArray    *out,
              const KvEntry *entry,
              gint64         expires_at)
{
  const char *content_type = kv_entry_get_content_type (entry);
  gsize value_len;
  gconstpointer value = kv_entry_peek_value (entry, &value_len);

  kv_record_append_string (out, value, value_len);
  kv_record_append_string (out, content_type, content_type != NULL ? strlen (content_type) : 0);
  kv_record_append_varint (out, expires_at > 0 ? expires_at : 0);
}

/**
 * kv_record_append_change:
 * @out: a commit frame being built
 * @kind: the change
 * @entry: (nullable): the entry put, or the one deleted or expired; %NULL
 *   for a clear
 * @expires_at: when a put entry expires, wall-clock µs, or 0
 *
 * Adds one change to a commit; its revision is the commit's.
 */
void
kv_record_append_change (GByteArray    *out,
                         KvChangeKind   kind,
                         const KvEntry *entry,
                         gint64         expires_at)
{
  guint8 k = kind;

  g_byte_array_append (out, &k, 1);
  if (kind == KV_CHANGE_CLEAR)
    return;

  {
    gsize key_len;
    const char *key = kv_entry_peek_key (entry, &key_len);

    kv_record_append_string (out, key, key_len);
  }
  if (kind == KV_CHANGE_PUT)
    append_value (out, entry, expires_at);
}

/**
 * kv_record_append_entry:
 * @out: a snapshot frame being built
 * @entry: a live entry
 * @expires_at: when it expires, wall-clock µs, or 0
 *
 * Adds one entry, with its own revision, to a snapshot.
 */
void
kv_record_append_entry (GByteArray    *out,
                        const KvEntry *entry,
                        gint64         expires_at)
{
  gsize key_len;
  const char *key = kv_entry_peek_key (entry, &key_len);

  kv_record_append_string (out, key, key_len);
  append_value (out, entry, expires_at);
  kv_record_append_varint (out, kv_entry_get_revision (entry));
}

void
kv_frame_reader_init (KvFrameReader *self,
                      gconstpointer  data,
                      gsize          len)
{
  self->data = data;
  self->len = len;
  self->offset = 0;
}

static gboolean
all_zero (const guint8 *p,
          gsize         len)
{
  for (gsize i = 0; i < len; i++)
    if (p[i] != 0)
      return FALSE;
  return TRUE;
}

/**
 * kv_frame_reader_next:
 * @self: a #KvFrameReader
 * @type: (out): the frame's type
 * @payload: (out): the rest of its payload
 *
 * Reads the frame at @self->offset. On %KV_FRAME_OK the offset moves past
 * it; on any other status it stays at the frame that failed.
 *
 * Returns: whether a frame was read, the file ended cleanly, or it ends in
 *   a torn frame, or a frame is damaged
 */
KvFrameStatus
kv_frame_reader_next (KvFrameReader *self,
                      KvRecordType  *type,
                      KvPayload     *payload)
{
  const guint8 *header = self->data + self->offset;
  gsize left = self->len - self->offset;
  guint32 len;

  if (left == 0)
    return KV_FRAME_END;
  if (left < KV_FRAME_HEADER_SIZE)
    return KV_FRAME_TORN;
  if (kv_crc32c (0, header, 8) != get_u32 (header + 8))
    return all_zero (header, left) ? KV_FRAME_TORN : KV_FRAME_DAMAGED;

  len = get_u32 (header);
  if (len > left - KV_FRAME_HEADER_SIZE)
    return KV_FRAME_TORN;
  if (len == 0)
    return KV_FRAME_DAMAGED;
  if (kv_crc32c (0, header + KV_FRAME_HEADER_SIZE, len) != get_u32 (header + 4))
    return len == left - KV_FRAME_HEADER_SIZE ? KV_FRAME_TORN : KV_FRAME_DAMAGED;

  *type = header[KV_FRAME_HEADER_SIZE];
  payload->p = header + KV_FRAME_HEADER_SIZE + 1;
  payload->end = header + KV_FRAME_HEADER_SIZE + len;
  self->offset += KV_FRAME_HEADER_SIZE + len;
  return KV_FRAME_OK;
}

gboolean
kv_payload_read_varint (KvPayload *self,
                        guint64   *value)
{
  guint64 v = 0;

  for (guint shift = 0; shift < 64 && self->p < self->end; shift += 7)
    {
      guint8 b = *self->p++;

      v |= (guint64) (b & 0x7f) << shift;
      if ((b & 0x80) == 0)
        {
          *value = v;
          return TRUE;
        }
    }

  return FALSE;
}

gboolean
kv_payload_read_string (KvPayload     *self,
                        const guint8 **data,
                        gsize         *len)
{
  guint64 n;

  if (!kv_payload_read_varint (self, &n) || n > (guint64) (self->end - self->p))
    return FALSE;
  *data = self->p;
  *len = n;
  self->p += n;
  return TRUE;
}

/**
 * kv_payload_read_magic:
 * @self: the rest of a header frame's payload
 * @magic: the string that starts the file's header
 * @version: (out): the format version that follows it
 *
 * Returns: %FALSE if the payload does not start with @magic and a version
 */
gboolean
kv_payload_read_magic (KvPayload  *self,
                       const char *magic,
                       guint64    *version)
{
  const guint8 *found;
  gsize len;

  return kv_payload_read_string (self, &found, &len) &&
         len == strlen (magic) && memcmp (found, magic, len) == 0 &&
         kv_payload_read_varint (self, version);
}

static gboolean
read_value (KvPayload      *self,
            KvRecordChange *change)
{
  guint64 expires_at;

  if (!kv_payload_read_string (self, &change->value, &change->value_len) ||
      !kv_payload_read_string (self, (const guint8 **) &change->content_type,
                               &change->content_type_len) ||
      !kv_payload_read_varint (self, &expires_at) || expires_at > G_MAXINT64)
    return FALSE;
  change->expires_at = expires_at;
  return TRUE;
}

/**
 * kv_payload_read_change:
 * @self: the rest of a commit's payload, not empty
 * @revision: the commit's revision
 * @change: (out): the next change
 *
 * Returns: %FALSE if the payload does not hold a whole change
 */
gboolean
kv_payload_read_change (KvPayload      *self,
                        guint64         revision,
                        KvRecordChange *change)
{
  memset (change, 0, sizeof *change);
  change->revision = revision;
  if (self->p == self->end)
    return FALSE;
  change->kind = *self->p++;

  switch (change->kind)
    {
    case KV_CHANGE_CLEAR:
      return TRUE;
    case KV_CHANGE_DELETE:
    case KV_CHANGE_EXPIRE:
      return kv_payload_read_string (self, (const guint8 **) &change->key, &change->key_len);
    case KV_CHANGE_PUT:
      return kv_payload_read_string (self, (const guint8 **) &change->key, &change->key_len) &&
             read_value (self, change);
    default:
      return FALSE;
    }
}

/**
 * kv_payload_read_entry:
 * @self: the rest of a snapshot frame's payload, not empty
 * @change: (out): the next entry, as a put at its own revision
 *
 * Returns: %FALSE if the payload does not hold a whole entry
 */
gboolean
kv_payload_read_entry (KvPayload      *self,
                       KvRecordChange *change)
{
  memset (change, 0, sizeof *change);
  change->kind = KV_CHANGE_PUT;
  return kv_payload_read_string (self, (const guint8 **) &change->key, &change->key_len) &&
         read_value (self, change) &&
         kv_payload_read_varint (self, &change->revision);
}
