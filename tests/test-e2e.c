/* test-e2e.c: the seed post's curl session against the built daemon
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "kv-test-utils.h"

/* Each step is a curl invocation from the post and exactly what it prints.
 * "@" in an argument stands for http://127.0.0.1:PORT. The post shows each
 * GET's value on a line of its own; curl prints the value as stored, with
 * no newline, and the shell prompt follows it. */
typedef struct
{
  const char *args[8];
  const char *output;
} Step;

static const Step seed_session[] = {
  { { "-X", "PUT", "-d", "Nairobi", "@/kv/kenya:capital" }, "" },
  { { "-X", "PUT", "-d", "Kampala", "@/kv/uganda:capital" }, "" },
  { { "-X", "PUT", "-d", "Dar es Salaam", "@/kv/tanzania:capital" }, "" },
  { { "-X", "PUT", "-d", "Dodoma", "@/kv/tanzania:capital" }, "" },
  { { "@/kv/kenya:capital" }, "Nairobi" },
  { { "@/kv/tanzania:capital" }, "Dodoma" },
  { { "-X", "DELETE", "@/kv/tanzania:capital" }, "" },
  { { "@/kv/tanzania:capital" }, "key not found\n" },
  /* The post's closing exercise. */
  { { "-X", "PUT", "-d", "", "@/kv/kenya:capital" }, "value cannot be empty\n" },
  { { "-X", "PUT", "-d", "foo", "@/kv/" }, "key cannot be empty\n" },
};

/* A few of the v1 API's features, as a curl user drives them. */
static const Step api_session[] = {
  { { "-X", "PUT", "-H", "If-None-Match: *", "-d", "Nairobi", "@/kv/kenya:capital" }, "" },
  { { "-X", "PUT", "-H", "If-None-Match: *", "-d", "Mombasa", "@/kv/kenya:capital" },
    "precondition failed\n" },
  { { "-X", "PUT", "-H", "If-Match: \"1\"", "-d", "Nairobi!", "@/kv/kenya:capital" }, "" },
  { { "-H", "If-None-Match: \"2\"", "-w", "%{http_code}", "@/kv/kenya:capital" }, "304" },
  { { "-X", "PUT", "-d", "Kampala", "@/kv/uganda:capital?ttl=1h" }, "" },
  { { "-d", "x", "-X", "PUT", "@/kv/uganda:capital?ttl=soon" }, "invalid ttl\n" },
  { { "@/keys?prefix=k" }, "kenya:capital\n" },
  { { "@/keys?limit=1&format=json" }, "{\"keys\":[\"kenya:capital\"],\"next\":\"kenya:capital\"}\n" },
  { { "-H", "Accept: application/json", "@/kv/tanzania:capital" },
    "{\"error\":\"key not found\",\"status\":404}\n" },
  { { "@/healthz" }, "ok\n" },
};

static void
run_step (const Step *step,
          guint16     port)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GBytes) out = NULL;
  g_autofree char *err = NULL;
  int status;

  g_ptr_array_add (argv, g_strdup ("curl"));
  g_ptr_array_add (argv, g_strdup ("--silent"));
  for (gsize i = 0; step->args[i] != NULL; i++)
    {
      const char *arg = step->args[i];

      if (arg[0] == '@')
        g_ptr_array_add (argv, g_strdup_printf ("http://127.0.0.1:%u%s", port, arg + 1));
      else
        g_ptr_array_add (argv, g_strdup (arg));
    }
  g_ptr_array_add (argv, NULL);

  out = kv_test_run ((const char * const *) argv->pdata, &status, &err);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (err, ==, "");
  g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out),
                   step->output, strlen (step->output));
}

static void
test_seed_session (void)
{
  g_autofree char *curl = g_find_program_in_path ("curl");
  KvTestDaemon *daemon;

  g_test_summary ("Every curl command of the seed post prints exactly what the post shows");

  if (curl == NULL)
    {
      g_test_skip ("curl is not installed");
      return;
    }

  daemon = kv_test_daemon_start (NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (seed_session); i++)
    run_step (&seed_session[i], kv_test_daemon_get_port (daemon));
  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static void
test_api_session (void)
{
  g_autofree char *curl = g_find_program_in_path ("curl");
  KvTestDaemon *daemon;

  g_test_summary ("Preconditions, expiry, listing and JSON errors from plain curl");

  if (curl == NULL)
    {
      g_test_skip ("curl is not installed");
      return;
    }

  daemon = kv_test_daemon_start (NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (api_session); i++)
    run_step (&api_session[i], kv_test_daemon_get_port (daemon));
  g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
}

static guint
count_threads_named (GSubprocess *process,
                     const char  *name)
{
  g_autofree char *dir_path = g_strdup_printf ("/proc/%s/task",
                                               g_subprocess_get_identifier (process));
  g_autoptr(GDir) dir = g_dir_open (dir_path, 0, NULL);
  const char *tid;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((tid = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *comm_path = g_build_filename (dir_path, tid, "comm", NULL);
      g_autofree char *comm = NULL;

      if (g_file_get_contents (comm_path, &comm, NULL, NULL) &&
          g_str_equal (g_strchomp (comm), name))
        n++;
    }

  return n;
}

static void
test_threads (void)
{
  const guint counts[] = { 1, 3 };
  g_autofree char *curl = g_find_program_in_path ("curl");

  g_test_summary ("--threads N serves from N threads: the main one and N-1 workers, each "
                  "answering the connections handed to it, all on one store");

  if (curl == NULL)
    {
      g_test_skip ("curl is not installed");
      return;
    }

  for (gsize c = 0; c < G_N_ELEMENTS (counts); c++)
    {
      g_autofree char *arg = g_strdup_printf ("--threads=%u", counts[c]);
      const char *args[] = { arg, NULL };
      KvTestDaemon *daemon = kv_test_daemon_start (args);
      guint16 port = kv_test_daemon_get_port (daemon);

      g_assert_cmpuint (count_threads_named (kv_test_daemon_get_subprocess (daemon), "kv-worker"),
                        ==, counts[c] - 1);

      /* Each curl is a connection of its own: round-robin sends them to
       * every thread, and every thread sees every other's writes. */
      for (guint i = 0; i < 2 * counts[c]; i++)
        {
          g_autofree char *key = g_strdup_printf ("k%u", i);
          g_autofree char *prev = g_strdup_printf ("k%u", i == 0 ? 0 : i - 1);
          Step put = { { "-X", "PUT", "-d", key, NULL }, "" };
          Step get = { { NULL }, NULL };
          g_autofree char *put_path = g_strconcat ("@/kv/", key, NULL);
          g_autofree char *get_path = g_strconcat ("@/kv/", prev, NULL);

          put.args[4] = put_path;
          get.args[0] = get_path;
          get.output = prev;
          run_step (&put, port);
          run_step (&get, port);
        }

      g_assert_cmpint (kv_test_daemon_stop (daemon), ==, 0);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/e2e/seed-session", test_seed_session);
  g_test_add_func ("/kv/e2e/api-session", test_api_session);
  g_test_add_func ("/kv/e2e/threads", test_threads);

  return g_test_run ();
}
