/* kv-request-filter.c: strict HTTP/1.1 request framing, checked on the
 * bytes before libsoup reads them
 *
 * SPDX-License-Identifier: MIT
 *
 * libsoup 3.2 reads requests leniently: a chunk size of "3zz" is 3, a
 * header line without a colon is skipped, anything after a chunk's data
 * up to the next newline is ignored, a bare LF ends a line. Worse, a
 * Transfer-Encoding it does not know or a Content-Length it cannot parse
 * leaks the request's path (up to 64 KiB), before any handler could
 * refuse the sender. Every byte of a connection passes through this
 * filter first, which follows the framing of each request (RFC 9112) and
 * accepts only what is unambiguous:
 *
 * - lines end with CRLF; no bare CR or LF, no NUL, no control characters
 *   outside header values, no obs-fold, no whitespace before a header's
 *   colon;
 * - a request line of method, target and HTTP/1.0 or HTTP/1.1;
 * - at most one Content-Length (digits only), at most one
 *   Transfer-Encoding (only "chunked"), never both, at most one Host;
 * - header blocks within max-header-size bytes and max-headers fields;
 * - chunk-size lines of hex digits (and extensions) within 128 bytes,
 *   CRLF right after each chunk's data, and no trailers (libsoup 3.2 would
 *   take the first trailer line for the end of the body).
 *
 * It also refuses what libsoup 3.2.3 itself would refuse once it has the
 * header block, before any handler runs, with an answer that has no body
 * (soup_headers_parse_request(), then the URI it builds with g_uri_parse()
 * from the target, or from Host and the target):
 *
 * - a target that is not "/…", "http://…" with a valid authority, or "*"
 *   for OPTIONS (and a Host with it); any CONNECT;
 * - a '%' in the target not followed by two hex digits;
 * - HTTP/1.1 without Host; a Host that is not a reg-name (without
 *   percent-encoding), an IPv4 address or an [IPv6 address], with an
 *   optional port up to 65535; an empty one;
 * - an Expect other than one "100-continue" (417);
 * - a request line or headers cut off by the end of the stream.
 *
 * What it accepts, libsoup frames the same way. At the first byte it
 * refuses, it lets libsoup have the bytes before it, then stops: reads
 * would block for ever, and the "refused" signal says which answer the
 * request deserves (its handler must not touch libsoup at once: it is
 * emitted from within libsoup's read). A request whose header block can
 * still be framed (its version, target, Host, Expect, Content-Length or
 * Transfer-Encoding is what is refused) is refused at the LF that ends
 * the block, so that by then whether its Accept asks for JSON is known
 * (kv_request_filter_get_wants_json()); libsoup never has the whole block.
 */
#include "config.h"

#include <string.h>
#include <libsoup/soup.h>

#include "kv-request-filter.h"

/* libsoup reads a chunk-size line into 128 bytes. */
#define CHUNK_LINE_MAX 128
/* RFC 6585; libsoup 3.2 has no name for it. */
#define STATUS_HEADER_FIELDS_TOO_LARGE 431
/* Chunk sizes above 2^60 would turn negative in libsoup's goffset. */
#define CHUNK_SIZE_DIGITS_MAX 15
/* The longest IPv6 address in text, IPv4 tail included. */
#define IPV6_ADDRESS_MAX 45

typedef enum
{
  STATE_REQUEST_LINE,
  STATE_HEADER_LINE,
  STATE_BODY,
  STATE_CHUNK_SIZE,
  STATE_CHUNK_DATA,
  STATE_CHUNK_END,
  STATE_LAST_CHUNK_END,
} State;

struct _KvRequestFilter
{
  GFilterInputStream parent_instance;

  guint max_header_size;
  guint max_headers;

  State state;
  gboolean cr;                  /* the last byte was a CR */
  GByteArray *line;             /* (owned) the line so far, without CRLF */

  /* The request being read. */
  gboolean seen_request_line;
  gsize header_bytes;
  guint n_headers;
  gboolean has_length;
  gboolean chunked;
  gboolean has_host;
  gboolean has_expect;
  gboolean needs_host;          /* HTTP/1.1, or a target of "*" */
  gboolean wants_json;          /* an Accept asks for application/json */
  guint64 left;                 /* bytes of the body or chunk still to come */

  guint pending_status;         /* to refuse at the end of the headers, or 0 */
  const char *pending_text;
  guint refused_status;         /* 0 while everything is fine */
  const char *refused_text;
  gboolean frozen;

  gint64 idle_deadline;         /* 0 unless between two requests */
  gboolean hung_up;
};

enum {
  PROP_0,
  PROP_MAX_HEADER_SIZE,
  PROP_MAX_HEADERS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_REFUSED,
  SIGNAL_HUNG_UP,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void kv_request_filter_pollable_iface_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (KvRequestFilter, kv_request_filter, G_TYPE_FILTER_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      kv_request_filter_pollable_iface_init))

/* ---- The parser ---- */

/* Refuses at this byte: what follows cannot be framed. A problem found
 * earlier in the request is still the one told. */
static gboolean
refuse (KvRequestFilter *self,
        guint            status,
        const char      *text)
{
  if (self->pending_status != 0)
    {
      status = self->pending_status;
      text = self->pending_text;
    }
  self->refused_status = status;
  self->refused_text = text;
  return FALSE;
}

/* Refuses at the end of the header block, which can still be framed: by
 * then the request's Accept is known. The first problem found is told. */
static gboolean
refuse_later (KvRequestFilter *self,
              guint            status,
              const char      *text)
{
  if (self->pending_status == 0)
    {
      self->pending_status = status;
      self->pending_text = text;
    }
  return TRUE;
}

static void
begin_request (KvRequestFilter *self)
{
  self->state = STATE_REQUEST_LINE;
  self->seen_request_line = FALSE;
  self->header_bytes = 0;
  self->n_headers = 0;
  self->has_length = FALSE;
  self->chunked = FALSE;
  self->has_host = FALSE;
  self->has_expect = FALSE;
  self->needs_host = FALSE;
  self->wants_json = FALSE;
  self->left = 0;
  self->pending_status = 0;
  self->pending_text = NULL;
}

static gboolean
is_tchar (guint8 c)
{
  return g_ascii_isalnum (c) || (c != '\0' && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

static gboolean
is_ows (guint8 c)
{
  return c == ' ' || c == '\t';
}

/* RFC 3986: unreserved and sub-delims, the characters of a reg-name
 * besides percent-encoding. */
static gboolean
is_reg_name_char (guint8 c)
{
  return g_ascii_isalnum (c) || (c != '\0' && strchr ("-._~!$&'()*+,;=", c) != NULL);
}

/* Whether @s is the authority of an http URI as g_uri_parse() takes it,
 * and as RFC 9110 wants it: a host that is not empty, then an optional
 * port up to 65535. No userinfo, no percent-encoding. */
static gboolean
authority_is_valid (const char *s,
                    gsize       len)
{
  gsize i = 0;
  guint port = 0;

  if (len > 0 && s[0] == '[')
    {
      char address[IPV6_ADDRESS_MAX + 1];
      gsize n = 0;

      /* Only an IPv6 address: GLib knows no IPvFuture, and a zone needs
       * percent-encoding. */
      for (i = 1; i < len && s[i] != ']'; i++)
        {
          if (n == IPV6_ADDRESS_MAX || !(g_ascii_isxdigit (s[i]) || s[i] == ':' || s[i] == '.'))
            return FALSE;
          address[n++] = s[i];
        }
      if (i == len)
        return FALSE;
      address[n] = '\0';
      if (memchr (address, ':', n) == NULL || !g_hostname_is_ip_address (address))
        return FALSE;
      i++;
    }
  else
    {
      while (i < len && s[i] != ':')
        {
          if (!is_reg_name_char (s[i]))
            return FALSE;
          i++;
        }
      if (i == 0)
        return FALSE;
    }

  if (i == len)
    return TRUE;
  if (s[i] != ':')
    return FALSE;
  /* An empty port is allowed (RFC 3986, and GLib). */
  for (i++; i < len; i++)
    {
      if (!g_ascii_isdigit (s[i]))
        return FALSE;
      port = port * 10 + (s[i] - '0');
      if (port > 65535)
        return FALSE;
    }
  return TRUE;
}

/* GLib refuses a '%' not followed by two hex digits anywhere in the path,
 * the query or the fragment. */
static gboolean
percent_encoding_is_valid (const char *s,
                           gsize       len)
{
  const char *end = s + len;
  const char *p = s;

  while ((p = memchr (p, '%', end - p)) != NULL)
    {
      if (end - p < 3 || !g_ascii_isxdigit (p[1]) || !g_ascii_isxdigit (p[2]))
        return FALSE;
      p += 3;
    }
  return TRUE;
}

static gboolean
is_method (const char *method,
           gsize       len,
           const char *expected)
{
  /* Methods are case-sensitive. */
  return len == strlen (expected) && memcmp (method, expected, len) == 0;
}

/* The request target's forms libsoup 3.2.3 can make a URI of (RFC 9112,
 * 3.2): origin-form, absolute-form for http, and asterisk-form, which
 * only OPTIONS may use. libsoup reads CONNECT's target as an authority,
 * and refuses any other; crafty-kv is no proxy. */
static gboolean
target_is_valid (KvRequestFilter *self,
                 const char      *method,
                 gsize            method_len,
                 const char      *target,
                 gsize            len)
{
  gsize start = 0;

  if (is_method (method, method_len, "CONNECT"))
    return FALSE;

  if (len == 1 && target[0] == '*')
    {
      /* libsoup needs a Host to make a URI of it. */
      self->needs_host = TRUE;
      return is_method (method, method_len, "OPTIONS");
    }

  if (target[0] != '/')
    {
      gsize authority = strlen ("http://");

      if (len < authority || g_ascii_strncasecmp (target, "http://", authority) != 0)
        return FALSE;
      start = authority;
      while (start < len && target[start] != '/' && target[start] != '?' && target[start] != '#')
        start++;
      if (!authority_is_valid (target + authority, start - authority))
        return FALSE;
    }

  return percent_encoding_is_valid (target + start, len - start);
}

static gboolean
parse_request_line (KvRequestFilter *self,
                    const char      *line,
                    gsize            len)
{
  gsize i = 0;
  gsize method_len;
  gsize target;
  gsize target_len;
  const char *version;

  while (i < len && is_tchar (line[i]))
    i++;
  if (i == 0 || i >= len || line[i] != ' ')
    return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");
  method_len = i;
  target = ++i;
  while (i < len && line[i] > ' ' && line[i] < 0x7f)
    i++;
  if (i == target || i >= len || line[i] != ' ')
    return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");
  target_len = i - target;

  version = line + i + 1;
  len -= i + 1;
  if (len == 8 && memcmp (version, "HTTP/1.1", 8) == 0)
    self->needs_host = TRUE;
  else if (len == 8 && memcmp (version, "HTTP/1.0", 8) == 0)
    ;
  else if (len == 8 && memcmp (version, "HTTP/", 5) == 0 && g_ascii_isdigit (version[5]) &&
           version[6] == '.' && g_ascii_isdigit (version[7]))
    refuse_later (self, SOUP_STATUS_HTTP_VERSION_NOT_SUPPORTED, "http version not supported");
  else
    return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");

  if (!target_is_valid (self, line, method_len, line + target, target_len))
    refuse_later (self, SOUP_STATUS_BAD_REQUEST, "bad request");

  return TRUE;
}

static gboolean
name_is (const char *name,
         gsize       len,
         const char *expected)
{
  return len == strlen (expected) && g_ascii_strncasecmp (name, expected, len) == 0;
}

/* The q of one media range's parameters, 1 without one: as
 * kv_response_wants_json() reads it. @params lies in a NUL-terminated
 * line, and g_ascii_strtod() stops at the ';' or ',' that ends it. */
static double
media_range_quality (const char *params,
                     const char *end)
{
  const char *p = params;

  while (p < end)
    {
      const char *next = memchr (p, ';', end - p);
      const char *stop = next != NULL ? next : end;

      while (p < stop && (is_ows (*p) || *p == ';'))
        p++;
      if (stop - p >= 2 && g_ascii_tolower (p[0]) == 'q' && p[1] == '=')
        return stop - p == 2 ? 0 : g_ascii_strtod (p + 2, NULL);
      p = next != NULL ? next + 1 : end;
    }

  return 1;
}

/* Whether an Accept field value lists application/json with a q above
 * 0, as kv_response_wants_json() decides it for requests libsoup has
 * parsed. */
static gboolean
accept_lists_json (const char *value,
                   gsize       len)
{
  const char *p = value;
  const char *value_end = value + len;

  while (p < value_end)
    {
      const char *end = memchr (p, ',', value_end - p);
      const char *type_end;

      if (end == NULL)
        end = value_end;
      while (p < end && is_ows (*p))
        p++;
      type_end = p;
      while (type_end < end && *type_end != ';' && !is_ows (*type_end))
        type_end++;

      if (name_is (p, type_end - p, "application/json") && media_range_quality (type_end, end) > 0)
        return TRUE;

      p = end < value_end ? end + 1 : end;
    }

  return FALSE;
}

static gboolean
parse_header_line (KvRequestFilter *self,
                   const char      *line,
                   gsize            len)
{
  gsize name_len = 0;
  const char *value;
  gsize value_len;

  if (is_ows (line[0]))
    return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");  /* obs-fold */

  while (name_len < len && is_tchar (line[name_len]))
    name_len++;
  if (name_len == 0 || name_len >= len || line[name_len] != ':')
    return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");

  value = line + name_len + 1;
  value_len = len - name_len - 1;
  while (value_len > 0 && is_ows (value[0]))
    value++, value_len--;
  while (value_len > 0 && is_ows (value[value_len - 1]))
    value_len--;

  if (++self->n_headers > self->max_headers)
    return refuse (self, STATUS_HEADER_FIELDS_TOO_LARGE, "too many headers");

  if (name_is (line, name_len, "Content-Length"))
    {
      if (self->has_length || value_len == 0)
        return refuse_later (self, SOUP_STATUS_BAD_REQUEST, "bad request");
      self->has_length = TRUE;
      self->left = 0;
      for (gsize i = 0; i < value_len; i++)
        {
          if (!g_ascii_isdigit (value[i]))
            return refuse_later (self, SOUP_STATUS_BAD_REQUEST, "bad request");
          /* Too large to count is too large to accept: the guard says
           * so (413) before the body. */
          if (self->left > (G_MAXUINT64 - 9) / 10)
            self->left = G_MAXUINT64;
          else
            self->left = self->left * 10 + (value[i] - '0');
        }
    }
  else if (name_is (line, name_len, "Transfer-Encoding"))
    {
      if (self->chunked)
        return refuse_later (self, SOUP_STATUS_BAD_REQUEST, "bad request");
      if (value_len != 7 || g_ascii_strncasecmp (value, "chunked", 7) != 0)
        return refuse_later (self, SOUP_STATUS_NOT_IMPLEMENTED, "not implemented");
      self->chunked = TRUE;
    }
  else if (name_is (line, name_len, "Host"))
    {
      /* libsoup makes the request's URI of "http://", Host and the
       * target. */
      if (self->has_host || !authority_is_valid (value, value_len))
        refuse_later (self, SOUP_STATUS_BAD_REQUEST, "bad request");
      self->has_host = TRUE;
    }
  else if (name_is (line, name_len, "Expect"))
    {
      /* libsoup answers any other expectation with 417 itself, and reads
       * two fields as a list. */
      if (self->has_expect || value_len != 12 ||
          g_ascii_strncasecmp (value, "100-continue", 12) != 0)
        refuse_later (self, SOUP_STATUS_EXPECTATION_FAILED, "expectation failed");
      self->has_expect = TRUE;
    }
  else if (name_is (line, name_len, "Accept"))
    {
      if (!self->wants_json)
        self->wants_json = accept_lists_json (value, value_len);
    }

  return TRUE;
}

static gboolean
end_of_headers (KvRequestFilter *self)
{
  if (self->chunked && self->has_length)
    refuse_later (self, SOUP_STATUS_BAD_REQUEST, "bad request");
  if (self->needs_host && !self->has_host)
    refuse_later (self, SOUP_STATUS_BAD_REQUEST, "bad request");
  /* The whole header block is in, short of this LF: libsoup has not
   * parsed a byte of it. */
  if (self->pending_status != 0)
    return refuse (self, self->pending_status, self->pending_text);

  if (self->chunked)
    self->state = STATE_CHUNK_SIZE;
  else if (self->left > 0)
    self->state = STATE_BODY;
  else
    begin_request (self);

  return TRUE;
}

static gboolean
parse_chunk_size (KvRequestFilter *self,
                  const char      *line,
                  gsize            len)
{
  gsize i = 0;

  self->left = 0;
  while (i < len && g_ascii_isxdigit (line[i]))
    {
      if (i == CHUNK_SIZE_DIGITS_MAX)
        return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");
      self->left = self->left * 16 + g_ascii_xdigit_value (line[i]);
      i++;
    }
  if (i == 0)
    return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");

  /* Chunk extensions are allowed, and ignored. */
  while (i < len && is_ows (line[i]))
    i++;
  if (i < len && line[i] != ';')
    return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");

  self->state = self->left > 0 ? STATE_CHUNK_DATA : STATE_LAST_CHUNK_END;
  return TRUE;
}

static gboolean
end_of_line (KvRequestFilter *self)
{
  const char *line;
  gsize len = self->line->len;
  gboolean ok = TRUE;

  /* NUL-terminated, for g_ascii_strtod(). */
  g_byte_array_append (self->line, (const guint8 *) "", 1);
  line = (const char *) self->line->data;

  switch (self->state)
    {
    case STATE_REQUEST_LINE:
      /* Empty lines before a request are allowed (RFC 9112, 2.2). */
      if (len > 0)
        {
          ok = parse_request_line (self, line, len);
          self->state = STATE_HEADER_LINE;
        }
      break;
    case STATE_HEADER_LINE:
      ok = len > 0 ? parse_header_line (self, line, len) : end_of_headers (self);
      break;
    case STATE_CHUNK_SIZE:
      ok = parse_chunk_size (self, line, len);
      break;
    case STATE_BODY:
    case STATE_CHUNK_DATA:
    case STATE_CHUNK_END:
    case STATE_LAST_CHUNK_END:
    default:
      g_assert_not_reached ();
    }

  g_byte_array_set_size (self->line, 0);
  return ok;
}

static gboolean
take_line_byte (KvRequestFilter *self,
                guint8           c)
{
  if (self->state == STATE_CHUNK_SIZE)
    {
      if (self->line->len + 2 >= CHUNK_LINE_MAX)
        return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");
    }
  else if (++self->header_bytes > self->max_header_size)
    return refuse (self, STATUS_HEADER_FIELDS_TOO_LARGE, "headers too large");

  if (self->cr)
    {
      self->cr = FALSE;
      if (c != '\n')
        return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");
      return end_of_line (self);
    }
  if (c == '\r')
    {
      self->cr = TRUE;
      return TRUE;
    }
  /* A bare LF, or a NUL. Other control characters are refused by the
   * request line's and the header names' own checks; in a header's value,
   * RFC 9110 lets them be kept, and the handlers judge. */
  if (c == '\n' || c == '\0')
    return refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");

  g_byte_array_append (self->line, &c, 1);
  return TRUE;
}

/* How many more ordinary bytes the line may take before its limit. */
static gsize
line_room (KvRequestFilter *self)
{
  if (self->state == STATE_CHUNK_SIZE)
    return self->line->len + 2 < CHUNK_LINE_MAX ? CHUNK_LINE_MAX - 2 - self->line->len : 0;

  if (self->header_bytes >= self->max_header_size)
    return 0;
  return self->max_header_size - self->header_bytes;
}

/* Returns how many bytes of @data are fine; fewer than @len once a byte
 * is refused. */
static gsize
feed (KvRequestFilter *self,
      const guint8    *data,
      gsize            len)
{
  gsize i = 0;

  while (i < len)
    {
      switch (self->state)
        {
        case STATE_BODY:
        case STATE_CHUNK_DATA:
          {
            gsize n = MIN (self->left, len - i);

            i += n;
            self->left -= n;
            if (self->left == 0)
              {
                if (self->state == STATE_BODY)
                  begin_request (self);
                else
                  self->state = STATE_CHUNK_END;
              }
            break;
          }

        case STATE_CHUNK_END:
        case STATE_LAST_CHUNK_END:
          /* Exactly CRLF: no data past the chunk's size, no trailers. */
          if (data[i] != (self->cr ? '\n' : '\r'))
            {
              refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");
              return i;
            }
          self->cr = !self->cr;
          i++;
          if (!self->cr)
            {
              if (self->state == STATE_CHUNK_END)
                self->state = STATE_CHUNK_SIZE;
              else
                begin_request (self);
            }
          break;

        case STATE_REQUEST_LINE:
        case STATE_HEADER_LINE:
        case STATE_CHUNK_SIZE:
        default:
          {
            /* Ordinary bytes join the line in one piece, as far as the
             * limits allow; take_line_byte() judges the others. */
            gsize room = line_room (self);
            gsize run = 0;

            while (!self->cr && run < room && i + run < len &&
                   data[i + run] != '\r' && data[i + run] != '\n' && data[i + run] != '\0')
              run++;
            if (run > 0)
              {
                g_byte_array_append (self->line, data + i, run);
                if (self->state != STATE_CHUNK_SIZE)
                  self->header_bytes += run;
                i += run;
                break;
              }
            if (!take_line_byte (self, data[i]))
              return i;
            i++;
            break;
          }
        }
    }

  return len;
}

/* ---- The stream ---- */

static void
freeze (KvRequestFilter *self)
{
  if (self->frozen)
    return;

  self->frozen = TRUE;
  g_signal_emit (self, signals[SIGNAL_REFUSED], 0, self->refused_status, self->refused_text);
}

static gssize
frozen_read (KvRequestFilter  *self,
             GIOErrorEnum      code,
             GError          **error)
{
  freeze (self);
  g_set_error_literal (error, G_IO_ERROR, code, "refused request");
  return -1;
}

/* Whether the stream ending now would cut a request line or header
 * block short: libsoup would answer that itself, without a body. */
static gboolean
is_inside_headers (KvRequestFilter *self)
{
  return self->state == STATE_HEADER_LINE ||
         (self->state == STATE_REQUEST_LINE && (self->line->len > 0 || self->cr));
}

/* Passes on the fine part of the @n bytes just read into @buffer. */
static gssize
filter_read (KvRequestFilter  *self,
             void             *buffer,
             gssize            n,
             GIOErrorEnum      code,
             GError          **error)
{
  gsize fine;

  if (n == 0 && is_inside_headers (self))
    {
      refuse (self, SOUP_STATUS_BAD_REQUEST, "bad request");
      return frozen_read (self, code, error);
    }
  if (n <= 0)
    return n;

  fine = feed (self, buffer, n);
  if (fine == 0)
    return frozen_read (self, code, error);

  return fine;
}

static GInputStream *
base_stream (KvRequestFilter *self)
{
  return g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (self));
}

static gssize
kv_request_filter_read (GInputStream  *stream,
                        void          *buffer,
                        gsize          count,
                        GCancellable  *cancellable,
                        GError       **error)
{
  KvRequestFilter *self = KV_REQUEST_FILTER (stream);
  gssize n;

  /* A blocking read would wait for ever: fail instead. */
  if (self->refused_status != 0)
    return frozen_read (self, G_IO_ERROR_INVALID_DATA, error);

  n = g_input_stream_read (base_stream (self), buffer, count, cancellable, error);
  return filter_read (self, buffer, n, G_IO_ERROR_INVALID_DATA, error);
}

static gboolean
kv_request_filter_can_poll (GPollableInputStream *stream)
{
  KvRequestFilter *self = KV_REQUEST_FILTER (stream);

  return G_IS_POLLABLE_INPUT_STREAM (base_stream (self)) &&
         g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (base_stream (self)));
}

static gboolean
kv_request_filter_is_readable (GPollableInputStream *stream)
{
  KvRequestFilter *self = KV_REQUEST_FILTER (stream);

  if (self->frozen || self->hung_up)
    return FALSE;
  /* A refusal is waiting for the next read to be told. */
  if (self->refused_status != 0)
    return TRUE;

  return g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (base_stream (self)));
}

static GSource *
kv_request_filter_create_source (GPollableInputStream *stream,
                                 GCancellable         *cancellable)
{
  KvRequestFilter *self = KV_REQUEST_FILTER (stream);
  g_autoptr(GSource) child = NULL;

  /* The usual case, once per read that would block: the socket's own
   * source, without a layer of ours around it. libsoup wraps it in its
   * own pollable source, whose callback is the one that runs. */
  if (!self->frozen && !self->hung_up && self->refused_status == 0)
    return g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (base_stream (self)),
                                                  cancellable);

  /* A refusal waiting for the next read to be told: ready at once.
   * Frozen or hung up: no child, a source that never fires. */
  if (!self->frozen && !self->hung_up)
    child = g_timeout_source_new (0);

  return g_pollable_source_new_full (stream, child, cancellable);
}

static gssize
hang_up (KvRequestFilter  *self,
         GError          **error)
{
  self->hung_up = TRUE;
  g_signal_emit (self, signals[SIGNAL_HUNG_UP], 0);
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "hung up");
  return -1;
}

static gssize
kv_request_filter_read_nonblocking (GPollableInputStream  *stream,
                                    void                  *buffer,
                                    gsize                  count,
                                    GError               **error)
{
  KvRequestFilter *self = KV_REQUEST_FILTER (stream);
  g_autoptr(GError) local_error = NULL;
  gssize n;

  /* Everything before the refused byte has been read: stop here. */
  if (self->refused_status != 0)
    return frozen_read (self, G_IO_ERROR_WOULD_BLOCK, error);
  if (self->hung_up)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "hung up");
      return -1;
    }
  if (self->idle_deadline != 0 && g_get_monotonic_time () >= self->idle_deadline)
    return hang_up (self, error);

  n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (base_stream (self)),
                                                buffer, count, NULL, &local_error);

  /* Between two requests, libsoup 3.2.3 must not see the end of the
   * stream, a reset or a timeout: it would leave the connection open for
   * ever. */
  if (self->idle_deadline != 0 &&
      (n == 0 || (n < 0 && !g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))))
    return hang_up (self, error);

  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return -1;
    }
  return filter_read (self, buffer, n, G_IO_ERROR_WOULD_BLOCK, error);
}

static void
kv_request_filter_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = kv_request_filter_can_poll;
  iface->is_readable = kv_request_filter_is_readable;
  iface->create_source = kv_request_filter_create_source;
  iface->read_nonblocking = kv_request_filter_read_nonblocking;
}

static void
kv_request_filter_finalize (GObject *object)
{
  KvRequestFilter *self = KV_REQUEST_FILTER (object);

  g_byte_array_unref (self->line);

  G_OBJECT_CLASS (kv_request_filter_parent_class)->finalize (object);
}

static void
kv_request_filter_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  KvRequestFilter *self = KV_REQUEST_FILTER (object);

  switch (prop_id)
    {
    case PROP_MAX_HEADER_SIZE:
      g_value_set_uint (value, self->max_header_size);
      break;
    case PROP_MAX_HEADERS:
      g_value_set_uint (value, self->max_headers);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_request_filter_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  KvRequestFilter *self = KV_REQUEST_FILTER (object);

  switch (prop_id)
    {
    case PROP_MAX_HEADER_SIZE:
      self->max_header_size = g_value_get_uint (value);
      break;
    case PROP_MAX_HEADERS:
      self->max_headers = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
kv_request_filter_class_init (KvRequestFilterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = kv_request_filter_finalize;
  object_class->get_property = kv_request_filter_get_property;
  object_class->set_property = kv_request_filter_set_property;
  stream_class->read_fn = kv_request_filter_read;

  /**
   * KvRequestFilter:max-header-size:
   *
   * The most bytes a request line and its headers may take.
   */
  properties[PROP_MAX_HEADER_SIZE] =
    g_param_spec_uint ("max-header-size", NULL, NULL,
                       64, 64 * 1024, 16 * 1024,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * KvRequestFilter:max-headers:
   *
   * The most header fields a request may have.
   */
  properties[PROP_MAX_HEADERS] =
    g_param_spec_uint ("max-headers", NULL, NULL,
                       1, G_MAXUINT, 100,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * KvRequestFilter::refused:
   * @filter: the filter
   * @status: the HTTP status the refused request deserves
   * @text: (type utf8): a short reason, for the answer's body; a static
   *   string
   *
   * Emitted once, when libsoup tries to read past the last acceptable
   * byte, or to read the end of a stream that cuts a request line or
   * header block short. The stream blocks for ever afterwards. Emitted
   * from within libsoup's read: answer from an idle callback.
   */
  signals[SIGNAL_REFUSED] =
    g_signal_new ("refused", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE);

  /**
   * KvRequestFilter::hung-up:
   * @filter: the filter
   *
   * Emitted once, when between two requests (see
   * kv_request_filter_set_idle_deadline()) the stream ended, failed or
   * timed out, or the idle deadline passed. Reads block for ever
   * afterwards. Emitted from within libsoup's read: act from an idle
   * callback.
   */
  signals[SIGNAL_HUNG_UP] =
    g_signal_new ("hung-up", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL,
                  G_TYPE_NONE, 0);
}

static void
kv_request_filter_init (KvRequestFilter *self)
{
  self->line = g_byte_array_new ();
  begin_request (self);
}

/**
 * kv_request_filter_new:
 * @base_stream: a pollable stream of requests, e.g. a socket's
 * @max_header_size: the most bytes a request's line and headers may take
 * @max_headers: the most header fields a request may have
 *
 * Returns: (transfer full): a stream of the requests of @base_stream, up
 *   to the first refused byte
 */
KvRequestFilter *
kv_request_filter_new (GInputStream *base_stream,
                       guint         max_header_size,
                       guint         max_headers)
{
  g_return_val_if_fail (G_IS_POLLABLE_INPUT_STREAM (base_stream), NULL);

  return g_object_new (KV_TYPE_REQUEST_FILTER,
                       "base-stream", base_stream,
                       "max-header-size", max_header_size,
                       "max-headers", max_headers,
                       NULL);
}

/**
 * kv_request_filter_set_idle_deadline:
 * @self: a #KvRequestFilter
 * @deadline: a g_get_monotonic_time() by which the next request must have
 *   started, or 0 while a request is being read or answered
 *
 * Tells the filter that the connection is between two requests, and how
 * long it may stay so. Meanwhile the end of the stream, a read error or
 * timeout, or a read past @deadline are kept from libsoup (which would
 * leak the connection) and emit #KvRequestFilter::hung-up instead.
 */
void
kv_request_filter_set_idle_deadline (KvRequestFilter *self,
                                     gint64           deadline)
{
  g_return_if_fail (KV_IS_REQUEST_FILTER (self));

  self->idle_deadline = deadline;
}

/**
 * kv_request_filter_get_wants_json:
 * @self: a #KvRequestFilter
 *
 * Whether the Accept fields of the request being read, as far as it was
 * read, list application/json with a q above 0. A request the filter
 * refuses has not been parsed by libsoup, whose request headers are then
 * empty: this tells the refusal's answer how to speak. Each refusal but
 * those of broken framing or of the limits comes at the end of the
 * request's header block, once all its Accept fields are known.
 *
 * Returns: %TRUE if the request's errors should be answered in JSON
 */
gboolean
kv_request_filter_get_wants_json (KvRequestFilter *self)
{
  g_return_val_if_fail (KV_IS_REQUEST_FILTER (self), FALSE);

  return self->wants_json;
}
