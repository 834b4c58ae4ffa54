/* kv-response.c: the one writer of every answer
 *
 * SPDX-License-Identifier: MIT
 *
 * Every answer crafty-kv gives goes through here, whether libsoup sends
 * it or the transport writes it on the raw socket (a refusal before the
 * body is read): errors are one line of text, or {"error":…,"status":…}
 * for a client whose Accept asks for JSON; every body carries nosniff.
 */
#include "config.h"

#include <string.h>

#include "kv-response.h"
#include "storage/kv-storage.h"

/**
 * kv_response_status_for_error:
 * @error: an error from the storage layer
 *
 * Returns: the HTTP status that reports @error to a client
 */
guint
kv_response_status_for_error (const GError *error)
{
  if (error->domain == KV_STORAGE_ERROR)
    {
      switch ((KvStorageError) error->code)
        {
        case KV_STORAGE_ERROR_NOT_FOUND:
          return SOUP_STATUS_NOT_FOUND;
        case KV_STORAGE_ERROR_INVALID_ARGUMENT:
          return SOUP_STATUS_BAD_REQUEST;
        case KV_STORAGE_ERROR_PRECONDITION_FAILED:
          return SOUP_STATUS_PRECONDITION_FAILED;
        case KV_STORAGE_ERROR_INSUFFICIENT_STORAGE:
          return SOUP_STATUS_INSUFFICIENT_STORAGE;
        case KV_STORAGE_ERROR_COMPACTED:
          return SOUP_STATUS_GONE;
        }
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE))
    return SOUP_STATUS_INSUFFICIENT_STORAGE;

  return SOUP_STATUS_INTERNAL_SERVER_ERROR;
}

/* The q of one media range's parameters, 1 when it has none (RFC 9110
 * §12.4.2); parameter names are case-insensitive. */
static double
range_quality (const char *params,
               const char *end)
{
  const char *p = params;

  while (p < end)
    {
      const char *next = memchr (p, ';', end - p);
      const char *stop = next != NULL ? next : end;

      while (p < stop && (*p == ' ' || *p == '\t' || *p == ';'))
        p++;
      if (stop - p >= 2 && g_ascii_tolower (p[0]) == 'q' && p[1] == '=')
        {
          g_autofree char *value = g_strndup (p + 2, stop - p - 2);

          return g_ascii_strtod (value, NULL);
        }
      p = next != NULL ? next + 1 : end;
    }

  return 1;
}

/**
 * kv_response_wants_json:
 * @request_headers: (nullable): the request's headers, if they were read
 *
 * Whether the client listed application/json in Accept with a q above 0.
 * Media types are case-insensitive; q=0 means "not this type".
 *
 * Returns: %TRUE if answers to this request should be JSON
 */
gboolean
kv_response_wants_json (SoupMessageHeaders *request_headers)
{
  const char *accept = request_headers != NULL
                       ? soup_message_headers_get_list (request_headers, "Accept") : NULL;
  const char *p = accept;

  if (accept == NULL)
    return FALSE;

  while (*p != '\0')
    {
      const char *end = strchr (p, ',');
      const char *type_end;

      if (end == NULL)
        end = p + strlen (p);
      while (p < end && (*p == ' ' || *p == '\t'))
        p++;
      type_end = p;
      while (type_end < end && *type_end != ';' && *type_end != ' ' && *type_end != '\t')
        type_end++;

      if (type_end - p == (int) strlen (KV_JSON) &&
          g_ascii_strncasecmp (p, KV_JSON, type_end - p) == 0 &&
          range_quality (type_end, end) > 0)
        return TRUE;

      p = *end == ',' ? end + 1 : end;
    }

  return FALSE;
}

/* The body of an error: @text and a newline, or the same as JSON; @member
 * names what it is about (an operation, a line), @value its number, when
 * @member is not NULL. */
static char *
dup_error_body (guint       status,
                const char *text,
                const char *member,
                gint64      value,
                gboolean    json,
                gsize      *len)
{
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonGenerator) generator = NULL;
  g_autoptr(JsonNode) root = NULL;
  char *body;

  if (!json)
    {
      body = member != NULL ? g_strdup_printf ("%s %" G_GINT64_FORMAT ": %s\n", member, value, text)
                            : g_strconcat (text, "\n", NULL);
      *len = strlen (body);
      return body;
    }

  builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, text);
  json_builder_set_member_name (builder, "status");
  json_builder_add_int_value (builder, status);
  if (member != NULL)
    {
      json_builder_set_member_name (builder, member);
      json_builder_add_int_value (builder, value);
    }
  json_builder_end_object (builder);

  generator = json_generator_new ();
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  body = json_generator_to_data (generator, len);
  /* A final newline, like every other body, for the terminal's sake. */
  body = g_realloc (body, *len + 2);
  body[(*len)++] = '\n';
  body[*len] = '\0';
  return body;
}

static void
set_nosniff (SoupServerMessage *msg)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "X-Content-Type-Options", "nosniff");
}

/**
 * kv_response_error:
 * @msg: the request
 * @status: an HTTP error status
 * @text: the error's stable text, one line of ASCII
 *
 * Answers @msg with an error: @text as a line of plain text, or as JSON
 * for a client that asks for it.
 */
void
kv_response_error (SoupServerMessage *msg,
                   guint              status,
                   const char        *text)
{
  kv_response_error_at (msg, status, text, -1);
}

/**
 * kv_response_error_at:
 * @msg: the request
 * @status: an HTTP error status
 * @text: the error's stable text
 * @op: the index of the operation of a transaction the error is about, or
 *   -1 for none
 *
 * As kv_response_error(), naming the operation: "op 3: invalid key", or
 * {"error":"invalid key","status":400,"op":3}.
 */
void
kv_response_error_at (SoupServerMessage *msg,
                      guint              status,
                      const char        *text,
                      gint64             op)
{
  kv_response_error_with (msg, status, text, op >= 0 ? "op" : NULL, op);
}

/**
 * kv_response_error_with:
 * @msg: the request
 * @status: an HTTP error status
 * @text: the error's stable text
 * @member: (nullable): what the error is about ("op", "line"…), or %NULL
 * @value: its number
 *
 * As kv_response_error(), with a number: "line 3: invalid JSON", or
 * {"error":"invalid JSON","status":400,"line":3}.
 */
void
kv_response_error_with (SoupServerMessage *msg,
                        guint              status,
                        const char        *text,
                        const char        *member,
                        gint64             value)
{
  gboolean json = kv_response_wants_json (soup_server_message_get_request_headers (msg));
  gsize len;
  char *body = dup_error_body (status, text, member, value, json, &len);

  set_nosniff (msg);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, json ? KV_JSON : KV_TEXT_PLAIN, SOUP_MEMORY_TAKE,
                                    body, len);
}

/**
 * kv_response_error_revision:
 * @msg: the request
 * @status: an HTTP error status
 * @text: the error's stable text
 * @oldest: the oldest revision a watch can start from
 *
 * As kv_response_error(), for a watch that asks for a revision the history
 * does not have: the oldest it has goes in KV-Oldest-Revision, and in the
 * JSON body as "oldest_revision".
 */
void
kv_response_error_revision (SoupServerMessage *msg,
                            guint              status,
                            const char        *text,
                            guint64            oldest)
{
  gboolean json = kv_response_wants_json (soup_server_message_get_request_headers (msg));
  gsize len;
  char *body = dup_error_body (status, text, json ? "oldest_revision" : NULL, oldest, json, &len);
  char value[24];

  g_snprintf (value, sizeof value, "%" G_GUINT64_FORMAT, oldest);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "KV-Oldest-Revision", value);
  set_nosniff (msg);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, json ? KV_JSON : KV_TEXT_PLAIN, SOUP_MEMORY_TAKE,
                                    body, len);
}

/**
 * kv_response_text:
 * @msg: the request
 * @content_type: the body's media type
 * @text: (transfer full): the body, NUL-terminated
 *
 * Answers @msg with 200 and @text.
 */
void
kv_response_text (SoupServerMessage *msg,
                  const char        *content_type,
                  char              *text)
{
  gsize len = strlen (text);

  set_nosniff (msg);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_TAKE, text, len);
}

/**
 * kv_response_json:
 * @msg: the request
 * @builder: a builder holding the whole answer
 *
 * Answers @msg with 200 and the JSON @builder built, and a newline.
 */
void
kv_response_json (SoupServerMessage *msg,
                  JsonBuilder       *builder)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  gsize len;
  char *text;

  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &len);
  text = g_realloc (text, len + 2);
  text[len++] = '\n';
  text[len] = '\0';

  set_nosniff (msg);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, KV_JSON, SOUP_MEMORY_TAKE, text, len);
}

/**
 * kv_response_append_json_string:
 * @out: where to write
 * @text: UTF-8 text
 * @len: its length in bytes
 *
 * Appends @text as a JSON string, quotes included: for answers too large
 * or too frequent to go through a JsonBuilder tree.
 */
void
kv_response_append_json_string (GString    *out,
                                const char *text,
                                gsize       len)
{
  g_string_append_c (out, '"');
  kv_response_append_json_chars (out, text, len);
  g_string_append_c (out, '"');
}

/**
 * kv_response_append_json_chars:
 * @out: where to write
 * @text: UTF-8 text, or a piece of it cut anywhere
 * @len: its length in bytes
 *
 * Appends @text escaped as inside a JSON string, without the quotes: a
 * long string can be written piece by piece. Each byte is escaped on its
 * own, so a piece may end in the middle of a character.
 */
void
kv_response_append_json_chars (GString    *out,
                               const char *text,
                               gsize       len)
{
  for (gsize i = 0; i < len; i++)
    {
      guchar c = text[i];

      if (c == '"' || c == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, c);
        }
      else if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, c);
    }
}

/**
 * kv_response_format_timestamp:
 * @usec: microseconds since the Unix epoch
 *
 * Returns: (transfer full): the time in RFC 3339, UTC, with milliseconds,
 *   as KV-Expires-At and transactions give it
 */
char *
kv_response_format_timestamp (gint64 usec)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc (usec / G_USEC_PER_SEC);
  g_autofree char *seconds = g_date_time_format (time, "%Y-%m-%dT%H:%M:%S");

  return g_strdup_printf ("%s.%03dZ", seconds, (int) (usec % G_USEC_PER_SEC / 1000));
}

/**
 * kv_response_set_etag:
 * @headers: response headers
 * @revision: the revision the answer is about
 *
 * Sets a strong ETag, "@revision".
 */
void
kv_response_set_etag (SoupMessageHeaders *headers,
                      guint64             revision)
{
  char etag[24];
  char *p = etag + sizeof etag;

  /* Digits from the end, without printf: this is on every GET's path. */
  *--p = '\0';
  *--p = '"';
  do
    *--p = '0' + revision % 10;
  while ((revision /= 10) != 0);
  *--p = '"';

  soup_message_headers_replace (headers, "ETag", p);
}

/**
 * kv_response_build_stream_head:
 * @msg: the request, the headers of its answer set
 * @content_type: the stream's media type
 *
 * Builds the status line and headers of a 200 answer that is written on
 * a connection taken from libsoup, as it goes (a watch stream): the
 * headers set on @msg (CORS's among them), and those libsoup would add,
 * chunked for HTTP/1.1 (an HTTP/1.0 answer ends with the connection),
 * with "Connection: close" and nosniff.
 *
 * Returns: (transfer full): the bytes to send before the body
 */
GBytes *
kv_response_build_stream_head (SoupServerMessage *msg,
                               const char        *content_type)
{
  static const char * const ours[] = {
    "Content-Type", "Content-Length", "Transfer-Encoding", "Connection",
    "X-Content-Type-Options", "Server", "Date", NULL,
  };
  gboolean http_1_0 = soup_server_message_get_http_version (msg) == SOUP_HTTP_1_0;
  GString *head = g_string_new (http_1_0 ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.1 200 OK\r\n");
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *date = soup_date_time_to_string (now, SOUP_DATE_HTTP);
  SoupMessageHeadersIter iter;
  const char *name, *value;

  g_string_append (head, "Server: " PACKAGE_NAME "/" VERSION "\r\n");
  g_string_append_printf (head, "Date: %s\r\n", date);
  soup_message_headers_iter_init (&iter, soup_server_message_get_response_headers (msg));
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      gboolean skip = FALSE;

      for (gsize i = 0; ours[i] != NULL && !skip; i++)
        skip = g_ascii_strcasecmp (name, ours[i]) == 0;
      if (!skip)
        g_string_append_printf (head, "%s: %s\r\n", name, value);
    }
  g_string_append_printf (head, "Content-Type: %s\r\n", content_type);
  g_string_append (head, "X-Content-Type-Options: nosniff\r\n");
  if (!http_1_0)
    g_string_append (head, "Transfer-Encoding: chunked\r\n");
  g_string_append (head, "Connection: close\r\n\r\n");

  return g_string_free_to_bytes (head);
}

/* libsoup 3.2 knows neither 421 nor 431 by name. */
static const char *
status_phrase (guint status)
{
  switch (status)
    {
    case SOUP_STATUS_MISDIRECTED_REQUEST:
      return "Misdirected Request";
    case KV_STATUS_HEADER_FIELDS_TOO_LARGE:
      return "Request Header Fields Too Large";
    default:
      return soup_status_get_phrase (status);
    }
}

/**
 * kv_response_build_refusal:
 * @status: an HTTP error status
 * @text: the error's stable text
 * @extra_header: (nullable): one more header line, without CRLF
 * @request_headers: (nullable): the request's headers, if they were read
 * @head: whether the request was a HEAD, whose answer has no body
 *
 * Builds a whole HTTP/1.1 answer for the transport to write on the raw
 * socket, with "Connection: close": the same status, headers and body
 * kv_response_error() would give.
 *
 * Returns: (transfer full): the bytes to send
 */
GBytes *
kv_response_build_refusal (guint               status,
                           const char         *text,
                           const char         *extra_header,
                           SoupMessageHeaders *request_headers,
                           gboolean            head)
{
  GString *response = g_string_new (NULL);
  gboolean json = kv_response_wants_json (request_headers);
  g_autofree char *body = NULL;
  gsize len;

  body = dup_error_body (status, text, NULL, 0, json, &len);

  g_string_append_printf (response, "HTTP/1.1 %u %s\r\n", status, status_phrase (status));
  g_string_append (response, "Server: " PACKAGE_NAME "/" VERSION "\r\n");
  g_string_append (response, "Connection: close\r\n");
  g_string_append_printf (response, "Content-Type: %s\r\n", json ? KV_JSON : KV_TEXT_PLAIN);
  g_string_append (response, "X-Content-Type-Options: nosniff\r\n");
  g_string_append_printf (response, "Content-Length: %" G_GSIZE_FORMAT "\r\n", len);
  if (extra_header != NULL)
    g_string_append_printf (response, "%s\r\n", extra_header);
  g_string_append (response, "\r\n");
  if (!head)
    g_string_append_len (response, body, len);

  return g_string_free_to_bytes (response);
}
