/* kv-load.c: a closed-loop load generator and bulk loader for build-aux/bench
 *
 * Speaks just enough of three protocols to time GET and SET of fixed-size
 * values: HTTP/1.1 (crafty-kv's /kv/ API), memcached's text protocol and
 * Redis's RESP. One thread and one epoll set drive every connection; each
 * connection keeps --depth requests in flight (1 = wait for each answer, as
 * wrk and redis-benchmark do), so the numbers compare with theirs.
 *
 * Keys are PREFIX followed by a zero-padded number, --key-size bytes in all
 * ("key:000000000042" by default): random in [0, --keys) or, with
 * --sequential START, each number once from START on (bulk loading, or new
 * keys on every request).
 *
 * It prints one line of key=value pairs:
 *   requests=… seconds=… rps=… p50_us=… p99_us=… hits=… misses=… errors=…
 * hits/misses are GETs that found or missed their key (SETs count as hits
 * when stored); errors are answers of any other kind.
 *
 * Helpers for the script: --free-port prints a TCP port that was free a
 * moment ago; --wait-port PORT waits until something accepts connections on
 * it; --wait-ready PORT waits until the server there answers a request
 * (a server may accept connections before it has loaded its data).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* memmem */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 256
#define MAX_CONNECTIONS 4096
/* Latencies are counted in 1 µs buckets up to one second (the last bucket
 * takes everything slower). */
#define HIST_BUCKETS 1000000

typedef enum {
  PROTO_HTTP,
  PROTO_MEMCACHE,
  PROTO_REDIS,
} Protocol;

typedef enum {
  OP_GET,
  OP_SET,
} Op;

typedef enum {
  OUTCOME_HIT,
  OUTCOME_MISS,
  OUTCOME_ERROR,
} Outcome;

typedef struct {
  char *data;
  size_t len;
  size_t off;   /* write side: bytes already sent */
  size_t cap;
} Buffer;

typedef struct {
  int fd;
  Buffer out;
  Buffer in;
  unsigned inflight;
  unsigned head;                  /* oldest entry of sent_at */
  double sent_at[MAX_DEPTH];      /* a ring, in request order */
  uint64_t rng;
  int want_out;
} Conn;

static struct {
  Protocol protocol;
  Op op;
  const char *host;
  int port;
  const char *prefix;
  size_t key_size;
  uint64_t keys;
  int sequential;
  uint64_t next_seq;
  uint64_t requests;   /* 0: run for duration */
  double duration;
  unsigned connections;
  unsigned depth;
  size_t value_size;
  double timeout;
  char *value;
  char host_header[300];
} cfg = {
  .protocol = PROTO_HTTP,
  .op = OP_GET,
  .host = "127.0.0.1",
  .port = 0,
  .prefix = "key:",
  .key_size = 16,
  .keys = 1000,
  .duration = 5.0,
  .connections = 32,
  .depth = 1,
  .value_size = 100,
  .timeout = 600.0,
};

static uint32_t hist[HIST_BUCKETS];
static uint64_t issued, completed, hits, misses, errors;

static void die (const char *format, ...) __attribute__ ((format (printf, 1, 2), noreturn));

static void
die (const char *format,
     ...)
{
  va_list args;

  fputs ("kv-load: ", stderr);
  va_start (args, format);
  vfprintf (stderr, format, args);
  va_end (args);
  fputc ('\n', stderr);
  exit (2);
}

static double
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t
next_random (Conn *c)
{
  /* xorshift64*: enough to spread keys, and cheap. */
  c->rng ^= c->rng >> 12;
  c->rng ^= c->rng << 25;
  c->rng ^= c->rng >> 27;
  return c->rng * 0x2545F4914F6CDD1DULL;
}

static void
buffer_reserve (Buffer *b,
                size_t  extra)
{
  if (b->len + extra <= b->cap)
    return;
  while (b->len + extra > b->cap)
    b->cap = b->cap ? b->cap * 2 : 4096;
  b->data = realloc (b->data, b->cap);
  if (b->data == NULL)
    die ("out of memory");
}

static void
buffer_append (Buffer     *b,
               const char *data,
               size_t      len)
{
  buffer_reserve (b, len);
  memcpy (b->data + b->len, data, len);
  b->len += len;
}

static void
buffer_printf (Buffer     *b,
               const char *format,
               ...) __attribute__ ((format (printf, 2, 3)));

static void
buffer_printf (Buffer     *b,
               const char *format,
               ...)
{
  va_list args;
  int n;

  buffer_reserve (b, 256);
  va_start (args, format);
  n = vsnprintf (b->data + b->len, b->cap - b->len, format, args);
  va_end (args);
  if (n < 0)
    die ("formatting a request failed");
  if ((size_t) n >= b->cap - b->len)
    {
      buffer_reserve (b, (size_t) n + 1);
      va_start (args, format);
      vsnprintf (b->data + b->len, b->cap - b->len, format, args);
      va_end (args);
    }
  b->len += (size_t) n;
}

/* Writes the key for @number into @key (at least cfg.key_size + 1 bytes). */
static void
format_key (char     *key,
            uint64_t  number)
{
  size_t prefix_len = strlen (cfg.prefix);
  int width = cfg.key_size > prefix_len ? (int) (cfg.key_size - prefix_len) : 1;

  snprintf (key, cfg.key_size + 32, "%s%0*llu", cfg.prefix, width,
            (unsigned long long) number);
}

static void
append_request (Conn *c)
{
  char key[128];
  uint64_t number;
  size_t key_len;

  if (cfg.sequential)
    number = cfg.next_seq++;
  else
    number = next_random (c) % cfg.keys;
  format_key (key, number);
  key_len = strlen (key);

  switch (cfg.protocol)
    {
    case PROTO_HTTP:
      if (cfg.op == OP_GET)
        buffer_printf (&c->out, "GET /kv/%s HTTP/1.1\r\nHost: %s\r\n\r\n",
                       key, cfg.host_header);
      else
        {
          buffer_printf (&c->out,
                         "PUT /kv/%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n\r\n",
                         key, cfg.host_header, cfg.value_size);
          buffer_append (&c->out, cfg.value, cfg.value_size);
        }
      break;

    case PROTO_MEMCACHE:
      if (cfg.op == OP_GET)
        buffer_printf (&c->out, "get %s\r\n", key);
      else
        {
          buffer_printf (&c->out, "set %s 0 0 %zu\r\n", key, cfg.value_size);
          buffer_append (&c->out, cfg.value, cfg.value_size);
          buffer_append (&c->out, "\r\n", 2);
        }
      break;

    case PROTO_REDIS:
      if (cfg.op == OP_GET)
        buffer_printf (&c->out, "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", key_len, key);
      else
        {
          buffer_printf (&c->out, "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%zu\r\n",
                         key_len, key, cfg.value_size);
          buffer_append (&c->out, cfg.value, cfg.value_size);
          buffer_append (&c->out, "\r\n", 2);
        }
      break;
    }
}

static const char *
find_crlf (const char *data,
           size_t      len)
{
  const char *p = memchr (data, '\n', len);

  return (p != NULL && p > data && p[-1] == '\r') ? p - 1 : NULL;
}

/* Finds @name (lower case, with its colon) at the start of a header line in
 * the header block [@head, @end) and returns the start of its value. */
static const char *
find_header (const char *head,
             const char *end,
             const char *name)
{
  size_t name_len = strlen (name);
  const char *line = memchr (head, '\n', (size_t) (end - head));

  while (line != NULL && line + 1 < end)
    {
      line++;
      if ((size_t) (end - line) > name_len && strncasecmp (line, name, name_len) == 0)
        return line + name_len;
      line = memchr (line, '\n', (size_t) (end - line));
    }
  return NULL;
}

/* Returns the length of the first complete reply in [@data, @data + @len),
 * 0 when more bytes are needed; sets @outcome. */
static size_t
parse_http (const char *data,
            size_t      len,
            Outcome    *outcome)
{
  const char *end = memmem (data, len, "\r\n\r\n", 4);
  const char *value;
  size_t head_len;
  unsigned long long body_len = 0;
  int status;

  if (end == NULL)
    return 0;
  head_len = (size_t) (end - data) + 4;

  if (len < 12 || strncmp (data, "HTTP/1.", 7) != 0)
    die ("not an HTTP answer: %.40s", data);
  status = atoi (data + 9);

  if (find_header (data, end, "transfer-encoding:") != NULL)
    die ("chunked answers are not supported");
  value = find_header (data, end, "content-length:");
  if (value != NULL)
    body_len = strtoull (value, NULL, 10);
  if (len < head_len + body_len)
    return 0;

  if (status >= 200 && status < 300)
    *outcome = OUTCOME_HIT;
  else if (status == 404 && cfg.op == OP_GET)
    *outcome = OUTCOME_MISS;
  else
    *outcome = OUTCOME_ERROR;

  return head_len + body_len;
}

static size_t
parse_memcache (const char *data,
                size_t      len,
                Outcome    *outcome)
{
  const char *eol = find_crlf (data, len);
  size_t line_len;

  if (eol == NULL)
    return 0;
  line_len = (size_t) (eol - data) + 2;

  if (strncmp (data, "VALUE ", 6) == 0)
    {
      const char *last_space = eol;
      unsigned long long bytes;
      size_t total;

      while (last_space > data && last_space[-1] != ' ')
        last_space--;
      bytes = strtoull (last_space, NULL, 10);
      total = line_len + bytes + 2 + 5;
      if (len < total)
        return 0;
      if (memcmp (data + total - 5, "END\r\n", 5) != 0)
        die ("one value per get was expected");
      *outcome = OUTCOME_HIT;
      return total;
    }

  if (line_len == 5 && strncmp (data, "END", 3) == 0)
    *outcome = OUTCOME_MISS;
  else if (strncmp (data, "STORED\r\n", 8) == 0)
    *outcome = OUTCOME_HIT;
  else
    *outcome = OUTCOME_ERROR;
  return line_len;
}

static size_t
parse_redis (const char *data,
             size_t      len,
             Outcome    *outcome)
{
  const char *eol = find_crlf (data, len);
  size_t line_len;

  if (eol == NULL)
    return 0;
  line_len = (size_t) (eol - data) + 2;

  switch (data[0])
    {
    case '$':
      {
        long long bytes = strtoll (data + 1, NULL, 10);

        if (bytes < 0)
          {
            *outcome = OUTCOME_MISS;
            return line_len;
          }
        if (len < line_len + (size_t) bytes + 2)
          return 0;
        *outcome = OUTCOME_HIT;
        return line_len + (size_t) bytes + 2;
      }
    case '+':
      *outcome = OUTCOME_HIT;
      return line_len;
    default:
      *outcome = OUTCOME_ERROR;
      return line_len;
    }
}

static size_t
parse_reply (const char *data,
             size_t      len,
             Outcome    *outcome)
{
  switch (cfg.protocol)
    {
    case PROTO_HTTP:
      return parse_http (data, len, outcome);
    case PROTO_MEMCACHE:
      return parse_memcache (data, len, outcome);
    case PROTO_REDIS:
      return parse_redis (data, len, outcome);
    }
  return 0;
}

static int
may_issue (double t,
           double end_time)
{
  if (cfg.requests > 0)
    return issued < cfg.requests;
  return t < end_time;
}

static void
record (double latency,
        Outcome outcome)
{
  double us = latency * 1e6;
  size_t bucket = us < 0 ? 0 : (us >= HIST_BUCKETS - 1 ? HIST_BUCKETS - 1 : (size_t) us);

  hist[bucket]++;
  completed++;
  switch (outcome)
    {
    case OUTCOME_HIT:
      hits++;
      break;
    case OUTCOME_MISS:
      misses++;
      break;
    case OUTCOME_ERROR:
      errors++;
      break;
    }
}

static double
percentile (double p)
{
  uint64_t wanted = (uint64_t) (p / 100.0 * completed + 0.5);
  uint64_t seen = 0;
  size_t i;

  if (wanted == 0)
    wanted = 1;
  for (i = 0; i < HIST_BUCKETS; i++)
    {
      seen += hist[i];
      if (seen >= wanted)
        return i + 0.5;   /* the middle of the 1 µs bucket */
    }
  return HIST_BUCKETS;
}

static void
update_events (int   epfd,
               Conn *c)
{
  int want_out = c->out.off < c->out.len;
  struct epoll_event ev = { 0 };

  if (want_out == c->want_out)
    return;
  ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
  ev.data.ptr = c;
  if (epoll_ctl (epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
    die ("epoll_ctl: %s", strerror (errno));
  c->want_out = want_out;
}

static void
flush (int   epfd,
       Conn *c)
{
  while (c->out.off < c->out.len)
    {
      ssize_t n = send (c->fd, c->out.data + c->out.off, c->out.len - c->out.off,
                        MSG_NOSIGNAL);
      if (n < 0)
        {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          if (errno == EINTR)
            continue;
          die ("send: %s", strerror (errno));
        }
      c->out.off += (size_t) n;
    }
  if (c->out.off == c->out.len)
    c->out.off = c->out.len = 0;
  update_events (epfd, c);
}

static void
top_up (int    epfd,
        Conn  *c,
        double t,
        double end_time)
{
  int added = 0;

  while (c->inflight < cfg.depth && may_issue (t, end_time))
    {
      append_request (c);
      c->sent_at[(c->head + c->inflight) % MAX_DEPTH] = t;
      c->inflight++;
      issued++;
      added = 1;
    }
  if (added)
    flush (epfd, c);
}

static void
on_readable (Conn  *c,
             double t)
{
  for (;;)
    {
      ssize_t n;

      buffer_reserve (&c->in, 16384);
      n = recv (c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
      if (n < 0)
        {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          if (errno == EINTR)
            continue;
          die ("recv: %s", strerror (errno));
        }
      if (n == 0)
        die ("the server closed a connection (%llu answers so far)",
             (unsigned long long) completed);
      c->in.len += (size_t) n;
      if (c->in.len < c->in.cap)
        break;
    }

  while (c->in.off < c->in.len)
    {
      Outcome outcome;
      size_t used = parse_reply (c->in.data + c->in.off, c->in.len - c->in.off, &outcome);

      if (used == 0)
        break;
      if (c->inflight == 0)
        die ("an answer to no request");
      record (t - c->sent_at[c->head], outcome);
      c->head = (c->head + 1) % MAX_DEPTH;
      c->inflight--;
      c->in.off += used;
    }

  if (c->in.off == c->in.len)
    c->in.off = c->in.len = 0;
  else if (c->in.off > 0)
    {
      memmove (c->in.data, c->in.data + c->in.off, c->in.len - c->in.off);
      c->in.len -= c->in.off;
      c->in.off = 0;
    }
}

static int
fcntl_nonblock (int fd)
{
  int flags = fcntl (fd, F_GETFL);

  return flags < 0 ? -1 : fcntl (fd, F_SETFL, flags | O_NONBLOCK);
}

static int
connect_to (const char *host,
            int         port)
{
  struct sockaddr_in addr = { 0 };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    die ("socket: %s", strerror (errno));
  addr.sin_family = AF_INET;
  addr.sin_port = htons ((uint16_t) port);
  if (inet_pton (AF_INET, host, &addr.sin_addr) != 1)
    die ("“%s” is not an IPv4 address", host);
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

static int
run_load (void)
{
  Conn *conns;
  int epfd;
  unsigned i;
  double start, end_time, deadline, last = 0;
  uint64_t inflight_total;
  struct epoll_event events[256];

  conns = calloc (cfg.connections, sizeof *conns);
  if (conns == NULL)
    die ("out of memory");
  cfg.value = malloc (cfg.value_size);
  if (cfg.value == NULL)
    die ("out of memory");
  for (i = 0; i < cfg.value_size; i++)
    cfg.value[i] = (char) ('a' + i % 26);
  snprintf (cfg.host_header, sizeof cfg.host_header, "%s:%d", cfg.host, cfg.port);

  epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (epfd < 0)
    die ("epoll_create1: %s", strerror (errno));

  for (i = 0; i < cfg.connections; i++)
    {
      Conn *c = &conns[i];
      struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
      int one = 1;

      c->fd = connect_to (cfg.host, cfg.port);
      if (c->fd < 0)
        die ("cannot connect to %s:%d: %s", cfg.host, cfg.port, strerror (errno));
      setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (fcntl_nonblock (c->fd) < 0)
        die ("fcntl: %s", strerror (errno));
      if (epoll_ctl (epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die ("epoll_ctl: %s", strerror (errno));
      c->rng = 0x9E3779B97F4A7C15ULL * (i + 1) ^ (uint64_t) (now () * 1e9);
      if (c->rng == 0)
        c->rng = 1;
    }

  start = now ();
  end_time = start + cfg.duration;
  deadline = start + cfg.timeout;
  for (i = 0; i < cfg.connections; i++)
    top_up (epfd, &conns[i], start, end_time);

  for (;;)
    {
      int n, j;
      double t;

      inflight_total = 0;
      for (i = 0; i < cfg.connections; i++)
        inflight_total += conns[i].inflight;
      t = now ();
      if (inflight_total == 0 && !may_issue (t, end_time))
        break;
      if (t > deadline)
        die ("gave up after %.0f s with %llu answers", cfg.timeout,
             (unsigned long long) completed);

      n = epoll_wait (epfd, events, 256, 1000);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          die ("epoll_wait: %s", strerror (errno));
        }
      t = now ();
      for (j = 0; j < n; j++)
        {
          Conn *c = events[j].data.ptr;

          if (events[j].events & (EPOLLERR | EPOLLHUP) && !(events[j].events & EPOLLIN))
            die ("a connection failed");
          if (events[j].events & EPOLLOUT)
            flush (epfd, c);
          if (events[j].events & EPOLLIN)
            {
              on_readable (c, t);
              last = t;
            }
          top_up (epfd, c, t, end_time);
        }
    }

  if (last <= start)
    last = now ();
  printf ("requests=%llu seconds=%.3f rps=%.1f p50_us=%.1f p99_us=%.1f "
          "hits=%llu misses=%llu errors=%llu\n",
          (unsigned long long) completed, last - start,
          completed / (last - start), percentile (50), percentile (99),
          (unsigned long long) hits, (unsigned long long) misses,
          (unsigned long long) errors);

  for (i = 0; i < cfg.connections; i++)
    close (conns[i].fd);
  close (epfd);
  return errors > 0 ? 1 : 0;
}

static int
free_port (void)
{
  struct sockaddr_in addr = { 0 };
  socklen_t len = sizeof addr;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    die ("socket: %s", strerror (errno));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0 ||
      getsockname (fd, (struct sockaddr *) &addr, &len) < 0)
    die ("cannot find a free port: %s", strerror (errno));
  printf ("%d\n", ntohs (addr.sin_port));
  close (fd);
  return 0;
}

/* Polls every 200 µs: start-up times are measured with this. Gives up at
 * once when @pid (if not 0), the server, has gone. */
static int
wait_port (int   port,
           pid_t pid)
{
  double deadline = now () + cfg.timeout;
  struct timespec pause = { 0, 200000 };

  while (now () < deadline)
    {
      int fd = connect_to (cfg.host, port);

      if (fd >= 0)
        {
          close (fd);
          return 0;
        }
      if (pid > 0 && kill (pid, 0) < 0 && errno == ESRCH)
        {
          fprintf (stderr, "kv-load: process %d exited before port %d answered\n",
                   (int) pid, port);
          return 1;
        }
      nanosleep (&pause, NULL);
    }
  fprintf (stderr, "kv-load: nothing answered on port %d within %.1f s\n",
           port, cfg.timeout);
  return 1;
}

/* Polls every 200 µs, as wait_port(), until a request on a new connection
 * gets the answer of a server that is ready: 200 to GET /healthz, +PONG to
 * PING (Redis answers -LOADING while it loads its files), VERSION to
 * memcached's version. Start-up times after loading data are measured with
 * this. */
static int
wait_ready (int   port,
            pid_t pid)
{
  double deadline = now () + cfg.timeout;
  struct timespec pause = { 0, 200000 };
  char request[400];
  const char *expect = NULL;
  size_t expect_len;

  switch (cfg.protocol)
    {
    case PROTO_HTTP:
      snprintf (request, sizeof request,
                "GET /healthz HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n",
                cfg.host, port);
      expect = "HTTP/1.1 200";
      break;
    case PROTO_REDIS:
      snprintf (request, sizeof request, "PING\r\n");
      expect = "+PONG";
      break;
    case PROTO_MEMCACHE:
      snprintf (request, sizeof request, "version\r\n");
      expect = "VERSION";
      break;
    }
  expect_len = strlen (expect);

  while (now () < deadline)
    {
      int fd = connect_to (cfg.host, port);

      if (fd >= 0)
        {
          struct timeval wait = { 1, 0 };
          char answer[64];
          size_t got = 0, sent = 0, len = strlen (request);

          setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
          setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof wait);
          while (sent < len)
            {
              ssize_t n = send (fd, request + sent, len - sent, MSG_NOSIGNAL);

              if (n <= 0)
                break;
              sent += (size_t) n;
            }
          while (sent == len && got < expect_len)
            {
              ssize_t n = read (fd, answer + got, sizeof answer - got);

              if (n <= 0)
                break;
              got += (size_t) n;
            }
          close (fd);
          if (got >= expect_len && memcmp (answer, expect, expect_len) == 0)
            return 0;
        }
      if (pid > 0 && kill (pid, 0) < 0 && errno == ESRCH)
        {
          fprintf (stderr, "kv-load: process %d exited before port %d was ready\n",
                   (int) pid, port);
          return 1;
        }
      nanosleep (&pause, NULL);
    }
  fprintf (stderr, "kv-load: nothing ready on port %d within %.1f s\n",
           port, cfg.timeout);
  return 1;
}

static void
usage (FILE *out)
{
  fputs ("Usage: kv-load [OPTION]...\n"
         "  --protocol http|memcache|redis   (default http)\n"
         "  --host ADDRESS --port PORT        IPv4 server (default 127.0.0.1)\n"
         "  --op get|set                      (default get; set is PUT in HTTP)\n"
         "  --prefix P --key-size N           keys are P + zero-padded number, N bytes\n"
         "  --keys N                          random keys in [0, N) (default 1000)\n"
         "  --sequential START                keys START, START+1, … instead\n"
         "  --requests N | --duration SEC     how much to send (default 5 s)\n"
         "  --connections N --depth N         (default 32 and 1)\n"
         "  --value-size N                    bytes per value (default 100)\n"
         "  --timeout SEC                     give up after SEC (default 600)\n"
         "  --free-port                       print a free TCP port and exit\n"
         "  --wait-port PORT [--pid PID]      wait until PORT accepts connections\n"
         "                                    (or until process PID has exited)\n"
         "  --wait-ready PORT [--pid PID]     wait until the server on PORT answers\n"
         "                                    that it is ready (--protocol says how)\n",
         out);
}

static unsigned long long
parse_number (const char *arg,
              const char *option)
{
  char *end;
  unsigned long long value;

  errno = 0;
  value = strtoull (arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0')
    die ("invalid value for --%s: %s", option, arg);
  return value;
}

int
main (int    argc,
      char **argv)
{
  enum {
    OPT_PROTOCOL = 256, OPT_HOST, OPT_PORT, OPT_OP, OPT_PREFIX, OPT_KEY_SIZE,
    OPT_KEYS, OPT_SEQUENTIAL, OPT_REQUESTS, OPT_DURATION, OPT_CONNECTIONS,
    OPT_DEPTH, OPT_VALUE_SIZE, OPT_TIMEOUT, OPT_FREE_PORT, OPT_WAIT_PORT,
    OPT_WAIT_READY, OPT_PID, OPT_HELP,
  };
  static const struct option options[] = {
    { "protocol", required_argument, NULL, OPT_PROTOCOL },
    { "host", required_argument, NULL, OPT_HOST },
    { "port", required_argument, NULL, OPT_PORT },
    { "op", required_argument, NULL, OPT_OP },
    { "prefix", required_argument, NULL, OPT_PREFIX },
    { "key-size", required_argument, NULL, OPT_KEY_SIZE },
    { "keys", required_argument, NULL, OPT_KEYS },
    { "sequential", required_argument, NULL, OPT_SEQUENTIAL },
    { "requests", required_argument, NULL, OPT_REQUESTS },
    { "duration", required_argument, NULL, OPT_DURATION },
    { "connections", required_argument, NULL, OPT_CONNECTIONS },
    { "depth", required_argument, NULL, OPT_DEPTH },
    { "value-size", required_argument, NULL, OPT_VALUE_SIZE },
    { "timeout", required_argument, NULL, OPT_TIMEOUT },
    { "free-port", no_argument, NULL, OPT_FREE_PORT },
    { "wait-port", required_argument, NULL, OPT_WAIT_PORT },
    { "wait-ready", required_argument, NULL, OPT_WAIT_READY },
    { "pid", required_argument, NULL, OPT_PID },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
  };
  int opt;
  int wait_for = 0;
  int ready_for = 0;
  pid_t wait_pid = 0;

  while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1)
    {
      switch (opt)
        {
        case OPT_PROTOCOL:
          if (strcmp (optarg, "http") == 0)
            cfg.protocol = PROTO_HTTP;
          else if (strcmp (optarg, "memcache") == 0)
            cfg.protocol = PROTO_MEMCACHE;
          else if (strcmp (optarg, "redis") == 0)
            cfg.protocol = PROTO_REDIS;
          else
            die ("unknown protocol: %s", optarg);
          break;
        case OPT_HOST:
          cfg.host = optarg;
          break;
        case OPT_PORT:
          cfg.port = (int) parse_number (optarg, "port");
          break;
        case OPT_OP:
          if (strcmp (optarg, "get") == 0)
            cfg.op = OP_GET;
          else if (strcmp (optarg, "set") == 0)
            cfg.op = OP_SET;
          else
            die ("unknown operation: %s", optarg);
          break;
        case OPT_PREFIX:
          cfg.prefix = optarg;
          break;
        case OPT_KEY_SIZE:
          cfg.key_size = parse_number (optarg, "key-size");
          if (cfg.key_size < 1 || cfg.key_size > 64)
            die ("--key-size must be between 1 and 64");
          break;
        case OPT_KEYS:
          cfg.keys = parse_number (optarg, "keys");
          if (cfg.keys == 0)
            die ("--keys must be at least 1");
          break;
        case OPT_SEQUENTIAL:
          cfg.sequential = 1;
          cfg.next_seq = parse_number (optarg, "sequential");
          break;
        case OPT_REQUESTS:
          cfg.requests = parse_number (optarg, "requests");
          break;
        case OPT_DURATION:
          cfg.duration = strtod (optarg, NULL);
          if (!(cfg.duration > 0))
            die ("invalid value for --duration: %s", optarg);
          break;
        case OPT_CONNECTIONS:
          cfg.connections = (unsigned) parse_number (optarg, "connections");
          if (cfg.connections < 1 || cfg.connections > MAX_CONNECTIONS)
            die ("--connections must be between 1 and %d", MAX_CONNECTIONS);
          break;
        case OPT_DEPTH:
          cfg.depth = (unsigned) parse_number (optarg, "depth");
          if (cfg.depth < 1 || cfg.depth > MAX_DEPTH)
            die ("--depth must be between 1 and %d", MAX_DEPTH);
          break;
        case OPT_VALUE_SIZE:
          cfg.value_size = parse_number (optarg, "value-size");
          if (cfg.value_size < 1 || cfg.value_size > 1 << 20)
            die ("--value-size must be between 1 and 1048576");
          break;
        case OPT_TIMEOUT:
          cfg.timeout = strtod (optarg, NULL);
          if (!(cfg.timeout > 0))
            die ("invalid value for --timeout: %s", optarg);
          break;
        case OPT_FREE_PORT:
          return free_port ();
        case OPT_WAIT_PORT:
          wait_for = (int) parse_number (optarg, "wait-port");
          break;
        case OPT_WAIT_READY:
          ready_for = (int) parse_number (optarg, "wait-ready");
          break;
        case OPT_PID:
          wait_pid = (pid_t) parse_number (optarg, "pid");
          break;
        case OPT_HELP:
          usage (stdout);
          return 0;
        default:
          usage (stderr);
          return 2;
        }
    }
  if (optind < argc)
    die ("unexpected argument: %s", argv[optind]);

  if (wait_for > 0)
    return wait_port (wait_for, wait_pid);
  if (ready_for > 0)
    return wait_ready (ready_for, wait_pid);
  if (cfg.port <= 0 || cfg.port > 65535)
    die ("--port is required");
  return run_load ();
}
