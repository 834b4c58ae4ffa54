/* kv-request.c: reading what a request asks for, without side effects
 *
 * SPDX-License-Identifier: MIT
 *
 * Pure functions over strings and headers, shared by every resource (and
 * by anything else that carries the same fields, such as a transaction's
 * operations), each with unit tests of its own in tests/test-request.c.
 */
#include "config.h"

#include <string.h>

#include "kv-request.h"

/* Longest time to live: about 31 years, far from overflowing a deadline. */
#define MAX_TTL_USEC (G_GINT64_CONSTANT (1000000000) * G_USEC_PER_SEC)

/**
 * kv_request_is_read_method:
 * @method: an interned method, as libsoup gives it
 *
 * Returns: whether @method is GET or HEAD
 */
gboolean
kv_request_is_read_method (const char *method)
{
  return method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD;
}

/**
 * kv_request_decode_key:
 * @raw: the raw path after /kv/, percent-encoded
 * @max_key_size: the longest key accepted, in bytes
 * @key: a buffer of at least @max_key_size + 1 bytes
 *
 * Percent-decodes @raw into @key without allocating: this is on every
 * request's path. A key is UTF-8 without control characters.
 *
 * Returns: 0 when @key holds the key, else the HTTP status to answer
 *   with: 414 when it is too long, 400 when it is not a valid key
 */
guint
kv_request_decode_key (const char *raw,
                       gsize       max_key_size,
                       char       *key)
{
  gsize len = 0;

  for (const char *p = raw; *p != '\0'; p++)
    {
      char c = *p;

      if (c == '%')
        {
          int hi = g_ascii_xdigit_value (p[1]);
          int lo = hi >= 0 ? g_ascii_xdigit_value (p[2]) : -1;

          if (lo < 0 || (hi == 0 && lo == 0))
            return SOUP_STATUS_BAD_REQUEST;
          c = (char) (hi << 4 | lo);
          p += 2;
        }
      if (len == max_key_size)
        return SOUP_STATUS_REQUEST_URI_TOO_LONG;
      key[len++] = c;
    }
  key[len] = '\0';

  return kv_request_check_key (key, len, max_key_size);
}

/**
 * kv_request_check_key:
 * @key: a decoded key
 * @len: its length in bytes
 * @max_key_size: the longest key accepted
 *
 * The rule for every key, however it arrived: 1 to @max_key_size bytes of
 * UTF-8 without control characters (so NUL is not in it).
 *
 * Returns: 0 for a valid key, else 400, or 414 when it is too long
 */
guint
kv_request_check_key (const char *key,
                      gsize       len,
                      gsize       max_key_size)
{
  if (len == 0)
    return SOUP_STATUS_BAD_REQUEST;
  if (len > max_key_size)
    return SOUP_STATUS_REQUEST_URI_TOO_LONG;
  if (!g_utf8_validate_len (key, len, NULL))
    return SOUP_STATUS_BAD_REQUEST;
  for (const char *p = key; p < key + len; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      return SOUP_STATUS_BAD_REQUEST;

  return 0;
}

/**
 * kv_request_parse_ttl:
 * @text: "30", "30s", "1500ms", "5m" or "2h"
 * @usec: (out): the time to live in microseconds
 *
 * A positive whole number and an optional unit (seconds by default).
 *
 * Returns: %TRUE if @text is a valid time to live
 */
gboolean
kv_request_parse_ttl (const char *text,
                      gint64     *usec)
{
  static const struct { const char *suffix; gint64 usec; } units[] = {
    { "ms", 1000 },
    { "s", G_USEC_PER_SEC },
    { "m", 60 * G_USEC_PER_SEC },
    { "h", G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC },
    { "", G_USEC_PER_SEC },
  };
  const char *end = text;
  guint64 n;

  while (g_ascii_isdigit (*end))
    end++;
  if (end == text || end - text > 15)
    return FALSE;
  n = g_ascii_strtoull (text, NULL, 10);

  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    {
      if (strcmp (end, units[i].suffix) != 0)
        continue;
      if (n == 0 || n > (guint64) (MAX_TTL_USEC / units[i].usec))
        return FALSE;
      *usec = n * units[i].usec;
      return TRUE;
    }

  return FALSE;
}

/**
 * kv_request_parse_condition:
 * @headers: a request's headers
 * @condition: (out caller-allocates): its If-Match and If-None-Match
 *
 * Returns: %FALSE if either header is malformed
 */
gboolean
kv_request_parse_condition (SoupMessageHeaders *headers,
                            KvCondition        *condition)
{
  return kv_match_parse (&condition->if_match, soup_message_headers_get_list (headers, "If-Match")) &&
         kv_match_parse (&condition->if_none_match,
                         soup_message_headers_get_list (headers, "If-None-Match"));
}

static gboolean
is_tchar (char c)
{
  return g_ascii_isalnum (c) || (c != '\0' && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *
skip_token (const char *p)
{
  while (is_tchar (*p))
    p++;
  return p;
}

static const char *
skip_ows (const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE; NULL if @p
 * does not start one. */
static const char *
skip_quoted_string (const char *p)
{
  if (*p++ != '"')
    return NULL;
  for (; *p != '"'; p++)
    {
      guchar c = *p;

      if (c == '\\')
        {
          c = *++p;
          if (c != '\t' && (c < 0x20 || c == 0x7f))
            return NULL;
        }
      else if (c != '\t' && (c < 0x20 || c == 0x7f))
        return NULL;
    }
  return p + 1;
}

/**
 * kv_request_parse_media_type:
 * @text: a Content-Type value
 *
 * Checks @text against RFC 9110's grammar, `type "/" subtype *( OWS ";"
 * OWS parameter )` with `parameter = token "=" ( token / quoted-string )`,
 * and a length of at most %KV_REQUEST_MAX_MEDIA_TYPE_LENGTH bytes.
 *
 * Returns: %TRUE if @text is a media type that can be stored
 */
gboolean
kv_request_parse_media_type (const char *text)
{
  const char *p = text;
  const char *end;

  if (strlen (text) > KV_REQUEST_MAX_MEDIA_TYPE_LENGTH)
    return FALSE;

  end = skip_token (p);
  if (end == p || *end != '/')
    return FALSE;
  p = end + 1;
  end = skip_token (p);
  if (end == p)
    return FALSE;
  p = end;

  for (;;)
    {
      p = skip_ows (p);
      if (*p == '\0')
        return TRUE;
      if (*p++ != ';')
        return FALSE;
      p = skip_ows (p);
      /* RFC 9110 allows an empty parameter after a semicolon. */
      if (*p == '\0' || *p == ';')
        continue;
      end = skip_token (p);
      if (end == p || *end != '=')
        return FALSE;
      p = end + 1;
      end = *p == '"' ? skip_quoted_string (p) : skip_token (p);
      if (end == NULL || end == p)
        return FALSE;
      p = end;
    }
}

/**
 * kv_request_parse_prefer_wait:
 * @prefer: (nullable): the request's Prefer fields, as one list
 * @seconds: (out): the wait asked for
 *
 * Finds the "wait" preference of RFC 7240 §4.3 (`wait=10`, or
 * `wait="10"`) among the others (`respond-async, wait=10; x=y`). Names
 * are case-insensitive; the first valid wait counts. A preference is only
 * that: one that cannot be parsed is ignored, as are those of other
 * names.
 *
 * Returns: %TRUE with @seconds set if a wait of whole seconds is asked
 *   for
 */
gboolean
kv_request_parse_prefer_wait (const char *prefer,
                              guint      *seconds)
{
  const char *p = prefer;

  if (prefer == NULL)
    return FALSE;

  while (*p != '\0')
    {
      const char *name, *end;

      p = skip_ows (p);
      name = p;
      end = skip_token (p);
      p = skip_ows (end);
      if (end - name == 4 && g_ascii_strncasecmp (name, "wait", 4) == 0 && *p == '=')
        {
          const char *value = skip_ows (p + 1);
          gboolean quoted = *value == '"';
          const char *digits = quoted ? value + 1 : value;
          const char *stop = digits;
          gboolean valid;

          while (g_ascii_isdigit (*stop))
            stop++;
          valid = stop > digits && stop - digits <= 10 && (!quoted || *stop == '"');
          if (quoted && *stop == '"')
            stop++;
          stop = skip_ows (stop);
          if (valid && (*stop == '\0' || *stop == ',' || *stop == ';'))
            {
              *seconds = MIN (g_ascii_strtoull (digits, NULL, 10), G_MAXUINT);
              return TRUE;
            }
        }
      /* On to the next preference, past its parameters. */
      while (*p != '\0' && *p != ',')
        {
          if (*p == '"')
            {
              const char *after = skip_quoted_string (p);

              if (after == NULL)
                return FALSE;
              p = after;
            }
          else
            p++;
        }
      if (*p == ',')
        p++;
    }

  return FALSE;
}

/**
 * kv_request_parse_limit:
 * @text: (nullable): a page size from a query, or %NULL for the default
 * @default_limit: what %NULL means
 * @max_limit: the largest page size accepted
 * @limit: (out): the page size
 *
 * Returns: %TRUE if @text is a whole number from 1 to @max_limit
 */
gboolean
kv_request_parse_limit (const char *text,
                        guint       default_limit,
                        guint       max_limit,
                        guint      *limit)
{
  guint64 n;

  if (text == NULL)
    {
      *limit = default_limit;
      return TRUE;
    }
  if (!g_ascii_isdigit (text[0]) ||
      !g_ascii_string_to_unsigned (text, 10, 1, max_limit, &n, NULL))
    return FALSE;

  *limit = n;
  return TRUE;
}

/**
 * kv_request_query_has_name:
 * @query: (nullable): a raw query string
 * @name: a parameter name
 *
 * soup_form_decode() drops a name with no "=", as in ?keepttl: this looks
 * at the raw query for it.
 *
 * Returns: whether @query names @name, with or without a value
 */
gboolean
kv_request_query_has_name (const char *query,
                           const char *name)
{
  gsize len = strlen (name);

  for (const char *p = query; p != NULL; p = strchr (p, '&'))
    {
      if (*p == '&')
        p++;
      if (strncmp (p, name, len) == 0 && (p[len] == '\0' || p[len] == '&' || p[len] == '='))
        return TRUE;
    }

  return FALSE;
}

/**
 * kv_request_decode_base64:
 * @text: RFC 4648 base64, padding included
 *
 * Strict, where g_base64_decode() skips what it does not know.
 *
 * Returns: (transfer full) (nullable): the bytes, or %NULL if @text is
 *   empty or not base64
 */
GBytes *
kv_request_decode_base64 (const char *text)
{
  gsize len = strlen (text);
  gsize out_len;
  guchar *out;

  if (len == 0 || len % 4 != 0)
    return NULL;
  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];

      if (c == '=')
        {
          if (i < len - 2 || (i == len - 2 && text[len - 1] != '='))
            return NULL;
        }
      else if (!g_ascii_isalnum (c) && c != '+' && c != '/')
        return NULL;
    }

  out = g_base64_decode (text, &out_len);
  return g_bytes_new_take (out, out_len);
}

/* Nesting outside strings, before json-glib recurses into it; and the
 * members, one per colon outside strings, to tell duplicates after. A
 * \u0000 in a string is refused: json-glib would end the string there. */
static gboolean
scan_json (const char *data,
           gsize       len,
           guint64    *members)
{
  gboolean in_string = FALSE;
  guint depth = 0;

  *members = 0;
  for (gsize i = 0; i < len; i++)
    {
      char c = data[i];

      if (in_string)
        {
          if (c == '\\' && len - i >= 6 && memcmp (data + i + 1, "u0000", 5) == 0)
            return FALSE;
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if (c == ':')
        (*members)++;
      else if (c == '[' || c == '{')
        {
          if (++depth > KV_REQUEST_MAX_JSON_DEPTH)
            return FALSE;
        }
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }

  return TRUE;
}

/* json-glib keeps the last of duplicate members: what the objects hold
 * falls short of what the text has. */
static guint64
count_members (JsonNode *node)
{
  guint64 n = 0;

  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *object = json_node_get_object (node);
      JsonObjectIter iter;
      JsonNode *member;

      n = json_object_get_size (object);
      json_object_iter_init (&iter, object);
      while (json_object_iter_next (&iter, NULL, &member))
        n += count_members (member);
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        n += count_members (json_array_get_element (array, i));
    }

  return n;
}

/**
 * kv_request_load_json:
 * @parser: the parser to load @data into
 * @data: (array length=len): JSON text from a request
 * @len: its length in bytes
 * @problem: (out) (optional): the error's stable text, when it fails
 *
 * Loads @data into @parser, more strictly than json-glib 1.6 alone: no
 * more than %KV_REQUEST_MAX_JSON_DEPTH levels of nesting (checked before
 * json-glib recurses into it), no `var x =` assignment, no member twice in
 * an object (json-glib would keep the last), no `\u0000` in a string
 * (json-glib would cut the string short there).
 *
 * Returns: %TRUE if json_parser_get_root() now gives the value, which is
 *   %NULL for white space only; %FALSE with "invalid JSON" or "duplicate
 *   member"
 */
gboolean
kv_request_load_json (JsonParser  *parser,
                      const char  *data,
                      gsize        len,
                      const char **problem)
{
  const char *unused;
  guint64 members;
  JsonNode *root;

  if (problem == NULL)
    problem = &unused;

  if (!scan_json (data, len, &members) ||
      !json_parser_load_from_data (parser, data, len, NULL) ||
      json_parser_has_assignment (parser, NULL))
    {
      *problem = "invalid JSON";
      return FALSE;
    }

  root = json_parser_get_root (parser);
  if (root != NULL && count_members (root) != members)
    {
      *problem = "duplicate member";
      return FALSE;
    }

  return TRUE;
}

/**
 * kv_request_json_has_only:
 * @object: a JSON object from a request
 * @allowed: (array zero-terminated=1): the member names it may have
 *
 * Returns: %TRUE if every member of @object is one of @allowed
 */
gboolean
kv_request_json_has_only (JsonObject         *object,
                          const char * const *allowed)
{
  g_autoptr(GList) names = json_object_get_members (object);

  for (GList *l = names; l != NULL; l = l->next)
    if (!g_strv_contains (allowed, l->data))
      return FALSE;
  return TRUE;
}

/**
 * kv_request_json_get_string:
 * @object: a JSON object from a request
 * @name: a member name
 * @value: (out) (transfer none) (nullable): the string, or %NULL when absent
 *
 * Returns: %FALSE if the member is there and not a string
 */
gboolean
kv_request_json_get_string (JsonObject  *object,
                            const char  *name,
                            const char **value)
{
  JsonNode *node = json_object_get_member (object, name);

  *value = NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return FALSE;
  *value = json_node_get_string (node);
  return TRUE;
}
