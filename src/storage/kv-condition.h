/* kv-condition.h: preconditions on a write (RFC 9110 If-Match and
 * If-None-Match)
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "storage/kv-entry.h"

G_BEGIN_DECLS

/**
 * KvMatchKind:
 * @KV_MATCH_NONE: no header: anything matches
 * @KV_MATCH_ANY: `*`: any existing entry
 * @KV_MATCH_LIST: one of a list of revisions
 */
typedef enum
{
  KV_MATCH_NONE,
  KV_MATCH_ANY,
  KV_MATCH_LIST,
} KvMatchKind;

/* The most entity tags one header may list. */
#define KV_MATCH_MAX_REVISIONS 16

typedef struct
{
  KvMatchKind kind;
  guint n_revisions;
  guint64 revisions[KV_MATCH_MAX_REVISIONS];
  /* Weak tags (W/"…") match for If-None-Match only. */
  guint64 weak_mask;
} KvMatch;

/**
 * KvCondition:
 * @if_match: the entry must exist and, for a list, have one of its revisions
 * @if_none_match: the entry must not exist (`*`) or not have any of the
 *   listed revisions
 *
 * A precondition, checked by the storage under its write lock so that two
 * writers with the same expectation cannot both succeed.
 */
typedef struct
{
  KvMatch if_match;
  KvMatch if_none_match;
} KvCondition;

gboolean kv_match_parse            (KvMatch           *match,
                                    const char        *header);
gboolean kv_match_contains         (const KvMatch     *match,
                                    guint64            revision,
                                    gboolean           weak_comparison);
gboolean kv_condition_is_empty     (const KvCondition *condition);
gboolean kv_condition_check        (const KvCondition *condition,
                                    const KvEntry     *current);

G_END_DECLS
