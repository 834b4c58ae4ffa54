/* kv-test-slow-storage.h: a store that answers some keys late
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-storage.h"

G_BEGIN_DECLS

#define KV_TYPE_TEST_SLOW_STORAGE (kv_test_slow_storage_get_type ())
G_DECLARE_FINAL_TYPE (KvTestSlowStorage, kv_test_slow_storage, KV, TEST_SLOW_STORAGE, GObject)

KvTestSlowStorage *kv_test_slow_storage_new             (guint              delay_ms);
guint              kv_test_slow_storage_get_n_cancelled (KvTestSlowStorage *self);
guint              kv_test_slow_storage_get_n_pending   (KvTestSlowStorage *self);

G_END_DECLS
