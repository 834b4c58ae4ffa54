/* watch-fanout.c: how long one write takes to reach many watchers, for
 * bench/watch-fanout.sh
 *
 * SPDX-License-Identifier: MIT
 *
 *   watch-fanout --target kv|etcd --port PORT --watchers N [--rounds R]
 *                [--key KEY] [--idle]
 *
 * Opens N watch streams of KEY, on crafty-kv (GET /watch?key=KEY, Server-
 * Sent Events) or on etcd's JSON gateway (POST /v3/watch, a create_request
 * for KEY), and waits until every one is established. Then, R times, it
 * writes KEY once on a connection of its own (PUT /kv/KEY, or POST
 * /v3/kv/put) and measures the time from sending the write until the last
 * watcher has the event, and until the median one has it. It prints one
 * line:
 *
 *   watchers=N rounds=R p50_us=… p99_us=… median_p50_us=…
 *
 * p50 and p99 are over the rounds, of the time the last watcher took;
 * median_p50 is the p50 of each round's median watcher. A few rounds
 * before those measured warm both sides up.
 *
 * With --idle it only opens the N streams, prints "ready" once they are
 * established, and holds them, reading what comes, until its standard
 * input ends: watchers of a key that nobody writes, while something else
 * measures the server.
 *
 * One thread, epoll, no library: what it costs stays off the server's CPU
 * when pinned apart.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARM_UP_ROUNDS 3
#define TIMEOUT_S 60

typedef enum { TARGET_KV, TARGET_ETCD } Target;

typedef struct
{
  int fd;
  int established;
  unsigned long events;         /* writes it has seen */
  char tail[32];                /* the end of what came, for a match across reads */
  size_t tail_len;
  double seen_at;               /* when it saw the current round's write */
} Watcher;

static void
die (const char *format,
     ...)
{
  va_list args;

  va_start (args, format);
  fputs ("watch-fanout: ", stderr);
  vfprintf (stderr, format, args);
  fputc ('\n', stderr);
  va_end (args);
  exit (1);
}

static double
now_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
connect_to (int port)
{
  struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons (port) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;

  if (fd < 0)
    die ("socket: %s", strerror (errno));
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (connect (fd, (struct sockaddr *) &address, sizeof address) < 0)
    die ("connect: %s", strerror (errno));
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void
send_all (int         fd,
          const char *data,
          size_t      len)
{
  while (len > 0)
    {
      ssize_t n = send (fd, data, len, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        die ("send: %s", strerror (errno));
      data += n;
      len -= n;
    }
}

static void
base64 (const char *in,
        char       *out)
{
  static const char digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t len = strlen (in);
  size_t i;

  for (i = 0; i + 2 < len; i += 3)
    {
      unsigned v = (unsigned char) in[i] << 16 | (unsigned char) in[i + 1] << 8 |
                   (unsigned char) in[i + 2];

      *out++ = digits[v >> 18];
      *out++ = digits[(v >> 12) & 63];
      *out++ = digits[(v >> 6) & 63];
      *out++ = digits[v & 63];
    }
  if (i < len)
    {
      unsigned v = (unsigned char) in[i] << 16 | (i + 1 < len ? (unsigned char) in[i + 1] << 8 : 0);

      *out++ = digits[v >> 18];
      *out++ = digits[(v >> 12) & 63];
      *out++ = i + 1 < len ? digits[(v >> 6) & 63] : '=';
      *out++ = '=';
    }
  *out = '\0';
}

/* Counts @pattern in what came, a match split across two reads included. */
static unsigned
count_matches (Watcher    *w,
               const char *data,
               size_t      len,
               const char *pattern)
{
  size_t plen = strlen (pattern);
  char joined[sizeof w->tail + 65536];
  size_t n = 0;
  unsigned count = 0;

  memcpy (joined, w->tail, w->tail_len);
  memcpy (joined + w->tail_len, data, len);
  n = w->tail_len + len;

  for (const char *p = joined; (p = memmem (p, joined + n - p, pattern, plen)) != NULL; p += plen)
    {
      /* A match that lies wholly in the kept tail was counted before. */
      if ((size_t) (p - joined) + plen > w->tail_len)
        count++;
    }

  w->tail_len = n < plen - 1 ? n : plen - 1;
  memcpy (w->tail, joined + n - w->tail_len, w->tail_len);
  return count;
}

static int
compare_doubles (const void *a,
                 const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static double
percentile (double *values,
            size_t  n,
            double  p)
{
  size_t i;

  qsort (values, n, sizeof *values, compare_doubles);
  i = (size_t) (p / 100 * (n - 1) + 0.5);
  return values[i < n ? i : n - 1];
}

/* Reads the answer to a write: a head and a Content-Length body. */
static void
read_answer (int fd)
{
  char buffer[8192];
  size_t have = 0;

  for (;;)
    {
      ssize_t n = recv (fd, buffer + have, sizeof buffer - 1 - have, 0);
      char *end, *length;

      if (n <= 0)
        die ("the write's answer: %s", n == 0 ? "connection closed" : strerror (errno));
      have += n;
      buffer[have] = '\0';
      end = strstr (buffer, "\r\n\r\n");
      if (end == NULL)
        continue;
      if (strncmp (buffer, "HTTP/1.1 200", 12) != 0)
        die ("the write was answered %.*s", (int) (strchr (buffer, '\r') - buffer), buffer);
      length = strcasestr (buffer, "\r\ncontent-length:");
      if (length == NULL || (size_t) (end + 4 - buffer) + strtoul (length + 17, NULL, 10) <= have)
        return;
    }
}

int
main (int   argc,
      char *argv[])
{
  Target target = TARGET_KV;
  int port = 0, n_watchers = 0, rounds = 50, idle = 0;
  const char *key = "watched";
  char key64[256], value64[64], request[1024];
  const char *ready_pattern, *event_pattern;
  Watcher *watchers;
  double *last, *median, *seen;
  int epoll_fd, writer, established = 0;
  char buffer[65536];

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--target") == 0 && i + 1 < argc)
        {
          i++;
          if (strcmp (argv[i], "kv") == 0)
            target = TARGET_KV;
          else if (strcmp (argv[i], "etcd") == 0)
            target = TARGET_ETCD;
          else
            die ("--target takes kv or etcd");
        }
      else if (strcmp (argv[i], "--port") == 0 && i + 1 < argc)
        port = atoi (argv[++i]);
      else if (strcmp (argv[i], "--watchers") == 0 && i + 1 < argc)
        n_watchers = atoi (argv[++i]);
      else if (strcmp (argv[i], "--rounds") == 0 && i + 1 < argc)
        rounds = atoi (argv[++i]);
      else if (strcmp (argv[i], "--key") == 0 && i + 1 < argc)
        key = argv[++i];
      else if (strcmp (argv[i], "--idle") == 0)
        idle = 1;
      else
        die ("usage: watch-fanout --target kv|etcd --port PORT --watchers N [--rounds R] "
             "[--key KEY] [--idle]");
    }
  if (port <= 0 || n_watchers <= 0 || rounds <= 0 || strlen (key) > 100)
    die ("--port, --watchers and --rounds take positive numbers; --key at most 100 bytes");

  base64 (key, key64);
  if (target == TARGET_KV)
    {
      snprintf (request, sizeof request, "GET /watch?key=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                key);
      ready_pattern = "id: ";
      event_pattern = "event: put";
    }
  else
    {
      char body[512];

      snprintf (body, sizeof body, "{\"create_request\":{\"key\":\"%s\"}}", key64);
      snprintf (request, sizeof request,
                "POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: %zu\r\n\r\n%s", strlen (body), body);
      ready_pattern = "\"created\":true";
      event_pattern = "\"events\"";
    }

  watchers = calloc (n_watchers, sizeof *watchers);
  last = calloc (rounds, sizeof *last);
  median = calloc (rounds, sizeof *median);
  seen = calloc (n_watchers, sizeof *seen);
  epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
  for (int i = 0; i < n_watchers; i++)
    {
      struct epoll_event event = { .events = EPOLLIN, .data.u32 = i };

      watchers[i].fd = connect_to (port);
      send_all (watchers[i].fd, request, strlen (request));
      epoll_ctl (epoll_fd, EPOLL_CTL_ADD, watchers[i].fd, &event);
    }

  /* Every stream established, and the rounds after that. */
  writer = idle ? -1 : connect_to (port);
  for (int round = -WARM_UP_ROUNDS - 1; round < rounds; round++)
    {
      double start = 0, deadline;
      int done = 0;

      if (round >= -WARM_UP_ROUNDS)
        {
          char value[32];

          snprintf (value, sizeof value, "%d", round + WARM_UP_ROUNDS);
          if (target == TARGET_KV)
            snprintf (request, sizeof request,
                      "PUT /kv/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n%s",
                      key, strlen (value), value);
          else
            {
              char body[512];

              base64 (value, value64);
              snprintf (body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", key64, value64);
              snprintf (request, sizeof request,
                        "POST /v3/kv/put HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                        strlen (body), body);
            }
          start = now_us ();
          send_all (writer, request, strlen (request));
        }

      deadline = now_us () + TIMEOUT_S * 1e6;
      while (round < -WARM_UP_ROUNDS ? established < n_watchers : done < n_watchers)
        {
          struct epoll_event events[256];
          int n = epoll_wait (epoll_fd, events, 256, 1000);

          if (now_us () > deadline)
            die ("timed out: %d of %d streams established, %d of %d have the write",
                 established, n_watchers, done, n_watchers);
          for (int e = 0; e < n; e++)
            {
              Watcher *w = &watchers[events[e].data.u32];
              ssize_t len = recv (w->fd, buffer, sizeof buffer, MSG_DONTWAIT);
              double t = now_us ();

              if (len == 0)
                die ("the server closed a stream");
              if (len < 0)
                continue;
              if (!w->established)
                {
                  if (count_matches (w, buffer, len, ready_pattern) > 0)
                    {
                      w->established = 1;
                      w->tail_len = 0;
                      established++;
                    }
                  continue;
                }
              w->events += count_matches (w, buffer, len, event_pattern);
              if (round >= -WARM_UP_ROUNDS &&
                  w->events >= (unsigned long) (round + WARM_UP_ROUNDS + 1) && w->seen_at < start)
                {
                  w->seen_at = t;
                  done++;
                }
            }
        }

      if (round < -WARM_UP_ROUNDS)
        {
          if (idle)
            break;
          continue;
        }
      read_answer (writer);
      if (round >= 0)
        {
          for (int i = 0; i < n_watchers; i++)
            seen[i] = watchers[i].seen_at - start;
          last[round] = percentile (seen, n_watchers, 100);
          median[round] = percentile (seen, n_watchers, 50);
        }
      usleep (20 * 1000);
    }

  if (idle)
    {
      struct pollfd in = { .fd = 0, .events = POLLIN };

      printf ("ready\n");
      fflush (stdout);
      /* Heartbeats and nothing else, until told to go. */
      for (;;)
        {
          struct epoll_event events[256];
          int n = epoll_wait (epoll_fd, events, 256, 200);

          for (int e = 0; e < n; e++)
            if (recv (watchers[events[e].data.u32].fd, buffer, sizeof buffer, MSG_DONTWAIT) == 0)
              die ("the server closed a stream");
          if (poll (&in, 1, 0) > 0 && read (0, buffer, sizeof buffer) <= 0)
            break;
        }
      return 0;
    }

  printf ("watchers=%d rounds=%d p50_us=%.0f p99_us=%.0f median_p50_us=%.0f\n", n_watchers,
          rounds, percentile (last, rounds, 50), percentile (last, rounds, 99),
          percentile (median, rounds, 50));
  return 0;
}
