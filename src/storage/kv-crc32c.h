/* kv-crc32c.h: CRC-32C (Castagnoli), the checksum of log and snapshot frames
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

guint32 kv_crc32c (guint32       crc,
                   gconstpointer data,
                   gsize         len);

G_END_DECLS
