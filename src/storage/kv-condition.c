/* kv-condition.c: preconditions on a write (RFC 9110 If-Match and
 * If-None-Match)
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "kv-condition.h"

static const char *
skip_ows (const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/**
 * kv_match_parse:
 * @match: (out): where to store the result
 * @header: (nullable): an If-Match or If-None-Match header value
 *
 * Parses `*` or a comma-separated list of entity tags. Tags that are not
 * ours (not a decimal revision) are kept out of the list, so they never
 * match, as RFC 9110 wants for unknown tags.
 *
 * Returns: %FALSE if @header is not a valid entity-tag list
 */
gboolean
kv_match_parse (KvMatch    *match,
                const char *header)
{
  const char *p;

  *match = (KvMatch) { .kind = KV_MATCH_NONE };
  if (header == NULL)
    return TRUE;

  p = skip_ows (header);
  if (*p == '*' && *skip_ows (p + 1) == '\0')
    {
      match->kind = KV_MATCH_ANY;
      return TRUE;
    }

  match->kind = KV_MATCH_LIST;
  for (;;)
    {
      gboolean weak = FALSE;
      gboolean ours = TRUE;
      guint64 revision = 0;

      p = skip_ows (p);
      if (*p == ',')
        {
          p++;
          continue;
        }
      if (*p == '\0')
        break;

      if (p[0] == 'W' && p[1] == '/')
        {
          weak = TRUE;
          p += 2;
        }
      if (*p++ != '"')
        return FALSE;
      if (*p == '"')
        ours = FALSE;
      for (; *p != '"'; p++)
        {
          /* etagc: any visible character but DQUOTE */
          if (*p == '\0' || (guchar) *p < 0x21 || *p == 0x7f)
            return FALSE;
          if (!g_ascii_isdigit (*p) || revision > (G_MAXUINT64 - 9) / 10)
            ours = FALSE;
          else
            revision = revision * 10 + (*p - '0');
        }
      p++;

      if (ours && match->n_revisions < KV_MATCH_MAX_REVISIONS)
        {
          if (weak)
            match->weak_mask |= G_GUINT64_CONSTANT (1) << match->n_revisions;
          match->revisions[match->n_revisions++] = revision;
        }
      else if (ours)
        return FALSE;

      p = skip_ows (p);
      if (*p != ',' && *p != '\0')
        return FALSE;
    }

  return TRUE;
}

/**
 * kv_match_contains:
 * @match: a parsed match
 * @revision: the revision of an existing entry
 * @weak_comparison: whether weak tags count (If-None-Match) or not (If-Match)
 *
 * Returns: whether @match names @revision
 */
gboolean
kv_match_contains (const KvMatch *match,
                   guint64        revision,
                   gboolean       weak_comparison)
{
  if (match->kind == KV_MATCH_ANY)
    return TRUE;

  for (guint i = 0; i < match->n_revisions; i++)
    {
      gboolean weak = (match->weak_mask >> i) & 1;

      if (match->revisions[i] == revision && (weak_comparison || !weak))
        return TRUE;
    }

  return FALSE;
}

gboolean
kv_condition_is_empty (const KvCondition *condition)
{
  return condition == NULL ||
         (condition->if_match.kind == KV_MATCH_NONE &&
          condition->if_none_match.kind == KV_MATCH_NONE);
}

/**
 * kv_condition_check:
 * @condition: (nullable): the precondition
 * @current: (nullable): the live entry, or %NULL if there is none
 *
 * Returns: whether a write may go ahead
 */
gboolean
kv_condition_check (const KvCondition *condition,
                    const KvEntry     *current)
{
  if (condition == NULL)
    return TRUE;

  if (condition->if_match.kind != KV_MATCH_NONE &&
      (current == NULL ||
       !kv_match_contains (&condition->if_match, kv_entry_get_revision (current), FALSE)))
    return FALSE;

  if (condition->if_none_match.kind != KV_MATCH_NONE && current != NULL &&
      kv_match_contains (&condition->if_none_match, kv_entry_get_revision (current), TRUE))
    return FALSE;

  return TRUE;
}
