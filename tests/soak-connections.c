/* soak-connections.c: RSS and open files of the daemon over many
 * connections
 *
 * SPDX-License-Identifier: MIT
 *
 * A benchmark, not a test of the default suite (meson test --benchmark,
 * or run it directly): it starts the built crafty-kv, makes
 * KV_SOAK_CONNECTIONS connections (default 100000) of every kind one after
 * the other, samples the daemon's resident memory and file descriptors
 * every tenth of the way, and fails if either grows past the warm-up.
 * The default suite has its own per-connection leak checks (test-hostile).
 */
#include "config.h"

#include <string.h>

#include "kv-test-raw.h"
#include "kv-test-utils.h"

/* Allocator caches and hash tables reach their size in the first tenth;
 * what grows after that, grows with the number of connections. */
#define RSS_SLACK_KB 1024

static const char *requests[] = {
  "PUT /kv/soak-%u HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nvalue",
  "GET /kv/soak-%u HTTP/1.1\r\nHost: localhost\r\n\r\n",
  /* Kept alive for a second request, then closed by us while idle. */
  "GET /kv/soak-%u HTTP/1.1\r\nHost: localhost\r\n\r\n"
  "GET /kv/soak-%u HTTP/1.1\r\nHost: localhost\r\n\r\n",
  "DELETE /kv/soak-%u HTTP/1.1\r\nHost: localhost\r\n\r\n",
  /* Refused by the guard (413) and by the filter (400). */
  "PUT /kv/soak-%u HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999\r\n\r\n",
  "PUT /kv/soak-%u HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3zz\r\n",
  /* Refused by libsoup. */
  "GARBAGE %u\r\n\r\n",
};

static guint
read_status_kb (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", pid);
  g_autofree char *contents = NULL;
  const char *line;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  line = strstr (contents, "VmRSS:");
  return line != NULL ? g_ascii_strtoull (line + strlen ("VmRSS:"), NULL, 10) : 0;
}

static guint
count_fds (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

static void
test_soak (void)
{
  const char *env = g_getenv ("KV_SOAK_CONNECTIONS");
  guint total = env != NULL ? g_ascii_strtoull (env, NULL, 10) : 100000;
  KvTestDaemon *daemon = kv_test_daemon_start ((const char *[]) { "--max-connections=64", NULL });
  GPid pid = atoi (g_subprocess_get_identifier (kv_test_daemon_get_subprocess (daemon)));
  guint16 port = kv_test_daemon_get_port (daemon);
  guint step = MAX (total / 10, 1);
  guint base_rss = 0;
  guint base_fds = 0;
  gint64 start = g_get_monotonic_time ();

  g_test_summary ("The daemon's resident memory and open files stay flat over many "
                  "connections of every kind");

  g_test_message ("%10s %10s %8s %10s", "connections", "RSS (kB)", "fds", "conn/s");
  for (guint i = 1; i <= total; i++)
    {
      const char *format = requests[i % G_N_ELEMENTS (requests)];
      g_autofree char *request = NULL;
      g_autoptr(GSocket) socket = kv_raw_connect (port);
      g_autoptr(KvRawResponse) response = NULL;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
      request = g_strdup_printf (format, i % 100, i % 100);
#pragma GCC diagnostic pop
      kv_raw_send_string (socket, request);
      response = kv_raw_read_response (socket, FALSE, 5000);
      g_assert_cmpuint (response->status, !=, 0);
      if (strstr (request, "\r\n\r\nGET") != NULL)
        {
          g_autoptr(KvRawResponse) second = kv_raw_read_response (socket, FALSE, 5000);
          g_assert_cmpuint (second->status, !=, 0);
        }

      if (i % step == 0)
        {
          guint rss;
          guint fds;

          /* Let the daemon finish closing what we hung up on. */
          g_usleep (200 * 1000);
          rss = read_status_kb (pid);
          fds = count_fds (pid);
          g_test_message ("%10u %10u %8u %10.0f", i, rss, fds,
                          i / ((g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC));
          if (i == step)
            {
              base_rss = rss;
              base_fds = fds;
            }
          else
            {
              g_assert_cmpuint (fds, <=, base_fds);
              g_assert_cmpuint (rss, <=, base_rss + RSS_SLACK_KB);
            }
        }
    }

  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/soak/connections", test_soak);

  return g_test_run ();
}
