/* test-readme.c: README.md's console sessions, run in order against the
 * built daemon
 *
 * SPDX-License-Identifier: MIT
 */

/* The rules (README's Development section repeats them):
 *
 * - A session is a fenced block whose opening fence starts a line and
 *   whose info string is exactly `console`. Other fences (`sh`, `ini`,
 *   `text`, …) are never run.
 * - In a session, a line that starts with "$ " is a command; a command
 *   whose line ends with a backslash goes on over the next line. The lines
 *   up to the next command or the end of the block are what it prints.
 * - Standard output and error together must be, byte for byte, the lines
 *   shown, each followed by a newline. curl prints a value as stored, with
 *   no newline after it; output that does not end in a newline is compared
 *   as if one followed it. The exit status is not compared.
 * - One crafty-kv, started with its default options but a free port,
 *   serves every session; `127.0.0.1:8888` and `localhost:8888` name it,
 *   in commands and in output. `crafty-kv` on PATH is the built one.
 * - A command that a test must not run (sudo, systemctl, build-aux/…, see
 *   refused_commands) fails the case instead.
 * - Each command runs as `/bin/sh -c COMMAND`, with no input, in one
 *   directory that every session shares (a file a session creates is there
 *   for the sessions after it), in the C.UTF-8 locale, with a home
 *   directory of its own. What it leaves running in the background is
 *   ended with it.
 * - curl shows no progress meter, as when it writes to a terminal.
 * - Each session is the test case /readme/ANCHOR/N: ANCHOR is the anchor
 *   of the nearest heading above it (as GitHub makes it, ASCII only, with
 *   -1, -2… for repeated headings), N counts the sessions under that
 *   heading. A case run alone (-p) first runs the sessions before it.
 * - A mismatch fails the case and shows the command and both outputs; the
 *   session's later commands still run.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include <glib-unix.h>

#include "kv-test-utils.h"

/* A command that has not finished by then is ended, with all it started. */
#define COMMAND_TIMEOUT_SECONDS 30

/* Commands that a test must not run, because they change the machine or
 * take minutes: a console block that starts one fails instead. README has
 * them in sh blocks. */
static const char * const refused_commands[] = {
  "sudo", "systemctl", "journalctl", "meson install", "build-aux/",
};

typedef struct
{
  guint line;       /* in README.md */
  GString *text;    /* what /bin/sh -c runs */
  GString *output;  /* the lines shown after it, each with its newline */
} Command;

typedef struct _Session Session;

typedef struct
{
  Session *session;
  guint index;      /* in the session's blocks */
  guint line;       /* of the opening fence */
  char *name;       /* the test case */
  GPtrArray *commands;
} Block;

struct _Session
{
  GPtrArray *blocks;
  guint next_block; /* the first block that has not run yet */
  KvTestDaemon *daemon;
  char *work_dir;
};

static void
command_free (Command *command)
{
  g_string_free (command->text, TRUE);
  g_string_free (command->output, TRUE);
  g_free (command);
}

static void
block_free (Block *block)
{
  g_ptr_array_unref (block->commands);
  g_free (block->name);
  g_free (block);
}

/* The number of fence characters that open a fence on @line, or 0 if it
 * opens none; *@info is what follows them, stripped. */
static gsize
fence_open_length (const char  *line,
                   char        *fence_char,
                   char       **info)
{
  gsize n = 0;

  if (line[0] != '`' && line[0] != '~')
    return 0;

  while (line[n] == line[0])
    n++;
  if (n < 3)
    return 0;

  *fence_char = line[0];
  *info = g_strstrip (g_strdup (line + n));
  return n;
}

static gboolean
is_fence_close (const char *line,
                char        fence_char,
                gsize       fence_length)
{
  gsize n = 0;

  while (line[n] == fence_char)
    n++;
  if (n < fence_length)
    return FALSE;
  for (; line[n] != '\0'; n++)
    {
      if (!g_ascii_isspace (line[n]))
        return FALSE;
    }

  return TRUE;
}

/* The heading's anchor as GitHub makes it: lower case, spaces to hyphens,
 * punctuation dropped; here only ASCII letters and digits are kept. */
static char *
heading_anchor (const char *heading)
{
  GString *anchor = g_string_new (NULL);

  for (const char *p = heading; *p != '\0'; p++)
    {
      if (g_ascii_isalnum (*p) || *p == '-' || *p == '_')
        g_string_append_c (anchor, g_ascii_tolower (*p));
      else if (*p == ' ')
        g_string_append_c (anchor, '-');
    }
  if (anchor->len == 0)
    g_string_append (anchor, "section");

  return g_string_free (anchor, FALSE);
}

/* The heading's text if @line is an ATX heading (`## Using it`), else
 * NULL. */
static char *
heading_text (const char *line)
{
  gsize level = 0;
  char *text;
  gsize len;

  while (line[level] == '#')
    level++;
  if (level == 0 || level > 6 || (line[level] != ' ' && line[level] != '\0'))
    return NULL;

  text = g_strstrip (g_strdup (line + level));
  /* A closing sequence of #s is not part of the heading. */
  len = strlen (text);
  while (len > 0 && text[len - 1] == '#')
    text[--len] = '\0';

  return g_strchomp (text);
}

static GPtrArray *
parse_readme (Session    *session,
              const char *contents)
{
  g_auto(GStrv) lines = g_strsplit (contents, "\n", -1);
  g_autoptr(GHashTable) anchors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *section = g_strdup ("top");
  GPtrArray *blocks = g_ptr_array_new_with_free_func ((GDestroyNotify) block_free);
  guint n_in_section = 0;
  gsize fence_length = 0;   /* of the fence we are in, 0 outside fences */
  guint fence_line = 0;
  char fence_char = '`';
  Block *block = NULL;      /* the console block we are in */
  Command *command = NULL;  /* the command whose output follows */

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      g_autofree char *info = NULL;
      g_autofree char *heading = NULL;

      if (fence_length > 0)
        {
          if (is_fence_close (line, fence_char, fence_length))
            {
              fence_length = 0;
              block = NULL;
              command = NULL;
            }
          else if (block != NULL && g_str_has_prefix (line, "$ "))
            {
              command = g_new0 (Command, 1);
              command->line = i + 1;
              command->text = g_string_new (line + 2);
              command->output = g_string_new (NULL);
              while (g_str_has_suffix (command->text->str, "\\") && lines[i + 1] != NULL &&
                     !is_fence_close (lines[i + 1], fence_char, fence_length))
                {
                  i++;
                  g_string_append_printf (command->text, "\n%s", lines[i]);
                }
              g_ptr_array_add (block->commands, command);
            }
          else if (block != NULL && command == NULL)
            {
              g_error ("README.md:%u: a console block starts with a command, a line "
                       "starting with “$ ”", i + 1);
            }
          else if (block != NULL)
            {
              g_string_append_printf (command->output, "%s\n", line);
            }
          continue;
        }

      fence_length = fence_open_length (line, &fence_char, &info);
      if (fence_length > 0)
        {
          fence_line = i + 1;
          if (g_str_equal (info, "console"))
            {
              block = g_new0 (Block, 1);
              block->session = session;
              block->index = blocks->len;
              block->line = i + 1;
              block->name = g_strdup_printf ("/readme/%s/%u", section, ++n_in_section);
              block->commands = g_ptr_array_new_with_free_func ((GDestroyNotify) command_free);
              g_ptr_array_add (blocks, block);
            }
          continue;
        }

      heading = heading_text (line);
      if (heading != NULL)
        {
          g_autofree char *anchor = heading_anchor (heading);
          guint seen = GPOINTER_TO_UINT (g_hash_table_lookup (anchors, anchor));

          g_free (section);
          section = seen == 0 ? g_strdup (anchor) : g_strdup_printf ("%s-%u", anchor, seen);
          g_hash_table_insert (anchors, g_steal_pointer (&anchor), GUINT_TO_POINTER (seen + 1));
          n_in_section = 0;
        }
    }

  if (fence_length > 0)
    g_error ("README.md:%u: this fence is never closed", fence_line);

  return blocks;
}

/* @text with the documented address replaced by the daemon's. */
static char *
rewrite_address (const char *text,
                 guint16     port)
{
  GString *rewritten = g_string_new (text);
  g_autofree char *ip = g_strdup_printf ("127.0.0.1:%u", port);
  g_autofree char *name = g_strdup_printf ("localhost:%u", port);

  g_string_replace (rewritten, "127.0.0.1:8888", ip, 0);
  g_string_replace (rewritten, "localhost:8888", name, 0);

  return g_string_free (rewritten, FALSE);
}

/* Its own process group, so that whatever a command starts can be ended
 * with it. */
static void
start_process_group (gpointer data)
{
  setpgid (0, 0);
}

/* Runs @text with /bin/sh -c in @work_dir and ends what it left running.
 * Returns (transfer full) what it printed, or %NULL if it did not finish
 * in time; *@wait_status is its wait status. */
static GBytes *
run_shell (const char *text,
           const char *work_dir,
           int        *wait_status)
{
  const char *argv[] = { "/bin/sh", "-c", text, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GByteArray) output = g_byte_array_new ();
  gint64 deadline = g_get_monotonic_time () + COMMAND_TIMEOUT_SECONDS * G_TIME_SPAN_SECOND;
  gboolean timed_out = FALSE;
  int fds[2];
  GPid pid;

  /* Standard output and error share one pipe, so that they interleave as
   * on a terminal. */
  g_unix_open_pipe (fds, FD_CLOEXEC, &error);
  g_assert_no_error (error);
  /* Not reaped by GLib: until we wait for it, its pid, and so its process
   * group's, cannot be given to another process. */
  g_spawn_async_with_pipes_and_fds (work_dir, argv, NULL,
                                    G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDIN_FROM_DEV_NULL,
                                    start_process_group, NULL, -1, fds[1], fds[1], NULL, NULL, 0,
                                    &pid, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  close (fds[1]);

  for (;;)
    {
      GPollFD poll_fd = { fds[0], G_IO_IN | G_IO_HUP | G_IO_ERR, 0 };
      gint64 remaining = deadline - g_get_monotonic_time ();
      guint8 buffer[4096];
      gssize len;

      if (remaining <= 0)
        {
          timed_out = TRUE;
          break;
        }
      if (g_poll (&poll_fd, 1, (remaining + 999) / 1000) <= 0)
        continue;

      len = read (fds[0], buffer, sizeof buffer);
      if (len < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (len, >=, 0);
      if (len == 0)
        break;
      g_byte_array_append (output, buffer, len);
    }
  close (fds[0]);

  kill (-pid, SIGKILL);
  g_assert_cmpint (waitpid (pid, wait_status, 0), ==, pid);

  if (timed_out)
    return NULL;

  return g_byte_array_free_to_bytes (g_steal_pointer (&output));
}

static char *
describe_status (int wait_status)
{
  if (WIFEXITED (wait_status))
    return g_strdup_printf ("exit status %d", WEXITSTATUS (wait_status));
  if (WIFSIGNALED (wait_status))
    return g_strdup_printf ("killed by signal %d", WTERMSIG (wait_status));

  return g_strdup_printf ("wait status %d", wait_status);
}

static gboolean
is_refused (const char *text)
{
  for (gsize i = 0; i < G_N_ELEMENTS (refused_commands); i++)
    {
      const char *refused = refused_commands[i];
      gsize len = strlen (refused);

      if (strncmp (text, refused, len) == 0 &&
          (refused[len - 1] == '/' || text[len] == ' ' || text[len] == '\0'))
        return TRUE;
    }

  return FALSE;
}

static void
run_command (Session       *session,
             const Block   *block,
             const Command *command)
{
  guint16 port = kv_test_daemon_get_port (session->daemon);
  g_autofree char *text = rewrite_address (command->text->str, port);
  g_autofree char *expected = rewrite_address (command->output->str, port);
  g_autoptr(GBytes) output = NULL;
  g_autoptr(GString) actual = NULL;
  g_autofree char *status = NULL;
  g_autofree char *expected_escaped = NULL;
  g_autofree char *actual_escaped = NULL;
  const char *data;
  gsize len;
  int wait_status = 0;

  if (is_refused (command->text->str))
    {
      g_test_fail_printf ("README.md:%u: `%s` cannot run in a test: it belongs in an sh block",
                          command->line, command->text->str);
      return;
    }

  output = run_shell (text, session->work_dir, &wait_status);
  if (output == NULL)
    {
      g_test_fail_printf ("README.md:%u: `%s` did not finish within %d seconds", command->line,
                          text, COMMAND_TIMEOUT_SECONDS);
      return;
    }

  data = g_bytes_get_data (output, &len);
  actual = g_string_new_len (data, len);
  if (actual->len > 0 && actual->str[actual->len - 1] != '\n')
    g_string_append_c (actual, '\n');

  if (actual->len == strlen (expected) && memcmp (actual->str, expected, actual->len) == 0)
    return;

  /* Both as shown, and escaped, for what does not show: a carriage
   * return, a missing or extra newline. */
  status = describe_status (wait_status);
  expected_escaped = g_strescape (expected, NULL);
  actual_escaped = g_strescape (actual->str, NULL);
  g_test_message ("README.md:%u, in the block at line %u:\n$ %s\nexpected:\n%s"
                  "actual (%s):\n%sexpected \"%s\"\nactual   \"%s\"",
                  command->line, block->line, text, expected, status, actual->str,
                  expected_escaped, actual_escaped);
  g_test_fail_printf ("README.md:%u: `%s` printed something else than README shows",
                      command->line, text);
}

static void
test_block (gconstpointer data)
{
  const Block *block = data;
  Session *session = block->session;

  g_test_summary ("Each command of a console block of README.md, run after all the blocks "
                  "before it, prints what the block shows");

  if (session->daemon == NULL)
    {
      g_test_skip ("curl is not installed (build-aux/test installs it)");
      return;
    }

  /* Alone (-p), a block still finds what the blocks before it leave. */
  while (session->next_block <= block->index)
    {
      const Block *next = g_ptr_array_index (session->blocks, session->next_block++);

      for (guint i = 0; i < next->commands->len; i++)
        run_command (session, next, g_ptr_array_index (next->commands, i));
    }
}

static void
test_daemon_stops (gconstpointer data)
{
  Session *session = (Session *) data;

  g_test_summary ("After README's sessions, crafty-kv stops as it should: SIGTERM, exit 0");

  if (session->daemon == NULL)
    {
      g_test_skip ("curl is not installed (build-aux/test installs it)");
      return;
    }

  g_assert_cmpint (kv_test_daemon_stop (g_steal_pointer (&session->daemon)), ==, 0);
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (!g_file_test (child, G_FILE_TEST_IS_SYMLINK) && g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

/* What every command and the daemon run with. Called before any thread
 * exists, as g_setenv() must be. */
static void
set_up_environment (const char *scratch_dir)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *home = g_build_filename (scratch_dir, "home", NULL);
  g_autofree char *config = g_build_filename (home, ".config", NULL);
  g_autofree char *curlrc = g_build_filename (home, ".curlrc", NULL);
  g_autofree char *daemon_dir = g_path_get_dirname (kv_test_daemon_path ());
  g_autofree char *path = g_strjoin (":", daemon_dir, g_getenv ("PATH"), NULL);

  g_assert_cmpint (g_mkdir_with_parents (config, 0700), ==, 0);
  /* Writing to a pipe, curl would show a progress meter on standard
   * error; writing to a terminal, as in README, it shows none. */
  g_file_set_contents (curlrc, "no-progress-meter\n", -1, &error);
  g_assert_no_error (error);

  /* The user's own settings, of the daemon or of curl, stay out. */
  g_setenv ("HOME", home, TRUE);
  g_setenv ("XDG_CONFIG_HOME", config, TRUE);
  g_setenv ("CURL_HOME", home, TRUE);
  g_setenv ("no_proxy", "*", TRUE);
  g_setenv ("LC_ALL", "C.UTF-8", TRUE);
  g_setenv ("PATH", path, TRUE);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *readme = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *curl = NULL;
  g_autofree char *scratch_dir = NULL;
  Session session = { NULL, 0, NULL, NULL };
  int status;

  g_test_init (&argc, &argv, NULL);

  readme = g_test_build_filename (G_TEST_DIST, "..", "README.md", NULL);
  g_file_get_contents (readme, &contents, NULL, &error);
  g_assert_no_error (error);
  session.blocks = parse_readme (&session, contents);
  g_assert_cmpuint (session.blocks->len, >, 0);
  for (guint i = 0; i < session.blocks->len; i++)
    {
      const Block *block = g_ptr_array_index (session.blocks, i);

      g_test_add_data_func (block->name, block, test_block);
    }
  g_test_add_data_func ("/daemon/stops", &session, test_daemon_stops);

  scratch_dir = g_dir_make_tmp ("crafty-kv-readme-XXXXXX", &error);
  g_assert_no_error (error);
  session.work_dir = g_build_filename (scratch_dir, "work", NULL);
  g_assert_cmpint (g_mkdir (session.work_dir, 0700), ==, 0);
  set_up_environment (scratch_dir);

  curl = g_find_program_in_path ("curl");
  if (curl != NULL)
    session.daemon = kv_test_daemon_start (NULL);

  /* A failure aborts the run (GTest's default) and leaves the directory
   * as the sessions left it. */
  g_test_message ("The sessions run in %s", session.work_dir);
  status = g_test_run ();

  /* Still running if -p left /daemon/stops out. */
  g_clear_pointer (&session.daemon, kv_test_daemon_free);
  remove_tree (scratch_dir);
  g_ptr_array_unref (session.blocks);
  g_free (session.work_dir);

  return status;
}
