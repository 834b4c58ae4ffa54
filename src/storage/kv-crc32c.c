/* kv-crc32c.c: CRC-32C (Castagnoli), the checksum of log and snapshot frames
 *
 * SPDX-License-Identifier: MIT
 *
 * The polynomial of iSCSI, ext4 and etcd's WAL, which detects more of the
 * burst errors a torn write leaves than zlib's. Eight bytes a step
 * ("slicing by 8"), so that checking a snapshot on start-up costs far
 * less than parsing it.
 */
#include "config.h"

#include "kv-crc32c.h"

#define POLY 0x82f63b78u  /* reflected */

static guint32 table[8][256];

static gpointer
init_table (gpointer data)
{
  for (guint i = 0; i < 256; i++)
    {
      guint32 c = i;

      for (guint k = 0; k < 8; k++)
        c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
      table[0][i] = c;
    }
  for (guint i = 0; i < 256; i++)
    for (guint t = 1; t < 8; t++)
      table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];

  return NULL;
}

/**
 * kv_crc32c:
 * @crc: the CRC of what came before, or 0
 * @data: (array length=len): bytes
 * @len: how many
 *
 * Returns: the CRC-32C of what came before followed by @data
 */
guint32
kv_crc32c (guint32       crc,
           gconstpointer data,
           gsize         len)
{
  static GOnce once = G_ONCE_INIT;
  const guint8 *p = data;

  g_once (&once, init_table, NULL);

  crc = ~crc;
  while (len >= 8)
    {
      guint32 lo = (p[0] | p[1] << 8 | p[2] << 16 | (guint32) p[3] << 24) ^ crc;
      guint32 hi = p[4] | p[5] << 8 | p[6] << 16 | (guint32) p[7] << 24;

      crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
            table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
            table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
      p += 8;
      len -= 8;
    }
  while (len-- > 0)
    crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];

  return ~crc;
}
