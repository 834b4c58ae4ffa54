/* test-user-service.c: the units as installed, under a real systemd user
 * manager: socket activation, systemctl status, and the data across
 * restarts of the service
 *
 * SPDX-License-Identifier: MIT
 */

/* The machine need not have booted with systemd. As root, the test gives a
 * user manager what it looks for, in namespaces of its own, so that
 * nothing else on the machine sees any of it:
 *
 * - Mount, PID and network namespaces, held by `unshare … sleep infinity`.
 *   In them: a tmpfs over /run with an empty /run/systemd/system (what
 *   sd_booted() checks) and the user's /run/user/UID; /etc/passwd and
 *   /etc/group with the test's user added; lo up, so that the socket
 *   unit's own address is free whatever listens on the machine's.
 * - A cgroup SLICE/user@UID.service in each hierarchy systemd uses, owned
 *   by the user: the manager creates its init.scope and its units' cgroups
 *   below it.
 * - The user exists only in the mount namespace, with an id that no
 *   account of the machine has and a home in the test's directory. Its
 *   ~/.config/systemd/user holds the units as meson installs them, with
 *   ExecStart= naming a copy of the built daemon that it can run.
 *
 * Then `systemd --user` runs as that user, and everything the test does,
 * it does as that user through systemctl --user and curl: crafty-kv
 * refuses loopback clients of other users.
 *
 * The namespace holder dies with the test (PR_SET_PDEATHSIG), and when the
 * first process of a PID namespace dies, the kernel kills all the others:
 * the manager and its services cannot outlive the test, even one that
 * aborts or is killed. What such a test leaves, its empty cgroups and its
 * directory, the next run removes. A step the machine refuses (not root, no systemd,
 * a cgroup it may not create, namespaces it cannot make) skips the test,
 * saying why.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <glib/gstdio.h>

#include "kv-test-utils.h"

#define ARGS(...) ((const char * const[]) { __VA_ARGS__, NULL })

#define USER_NAME "crafty-kv-test"
/* Both followed by the test's pid. */
#define SLICE_PREFIX "crafty-kv-test-"
#define DIR_PREFIX "crafty-kv-user-service-"
/* How long the manager and the units may take to start or stop. */
#define TIMEOUT_MS (10 * 1000)

/* Run as root in the new namespaces; $1 and $2 are the user's ids, $3 the
 * test's directory. It prints "ready" once done, then holds them. */
static const char holder_script[] =
  "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
  "mount -t tmpfs -o mode=0755 tmpfs /run\n"
  "mkdir -p /run/systemd/system /run/user\n"
  "mkdir -m 0700 \"/run/user/$1\"\n"
  "chown \"$1:$2\" \"/run/user/$1\"\n"
  "mount --bind \"$3/passwd\" /etc/passwd\n"
  "mount --bind \"$3/group\" /etc/group\n"
  "ip link set lo up\n"
  "echo ready\n"
  "exec sleep infinity\n";

/* Run as root in the namespaces: joins the cgroups named before "--",
 * then runs the rest. */
static const char join_cgroups_script[] =
  "while [ \"$1\" != -- ]; do echo $$ > \"$1\"; shift; done\n"
  "shift\n"
  "exec \"$@\"\n";

typedef struct
{
  gboolean ready;         /* everything set up: the manager runs */
  char *dir;              /* the test's, searchable by the user */
  char *home;
  char *bindir;
  char *log_path;         /* what the manager prints */
  char *base;             /* http://ADDRESS of the socket unit */
  uid_t uid;
  gid_t gid;
  char *runtime_dir;
  GPtrArray *slices;      /* the SLICE cgroup in each hierarchy */
  GPtrArray *cgroups;     /* their user@UID.service */
  GSubprocess *holder;    /* unshare */
  char *ns_pid;           /* the holder's child: the namespaces' first process */
  GSubprocess *manager;   /* nsenter, whose child is systemd --user */
} Fixture;

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static char *
bytes_to_string (GBytes *bytes)
{
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);

  return g_strndup (size > 0 ? data : "", size);
}

/* TAP takes one line per message. */
static void
message_lines (const char *prefix,
               const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      g_test_message ("%s%s", prefix, lines[i]);
}

/* Skips with @reason and what a program printed about it, on one line. */
static void
skip_saying (const char *reason,
             const char *output)
{
  g_autofree char *details = g_strstrip (g_strdelimit (g_strdup (output), "\n", ' '));
  g_autofree char *message = g_strdup_printf ("%s: %s", reason, details);

  g_test_skip (message);
}

static gboolean
have_programs (const char * const *programs)
{
  for (gsize i = 0; programs[i] != NULL; i++)
    {
      g_autofree char *path = g_find_program_in_path (programs[i]);

      if (path == NULL)
        {
          g_autofree char *message = g_strdup_printf ("%s is not installed", programs[i]);
          g_test_skip (message);
          return FALSE;
        }
    }

  return TRUE;
}

static const char *
find_systemd (void)
{
  const char *candidates[] = { "/usr/lib/systemd/systemd", "/lib/systemd/systemd" };

  for (guint i = 0; i < G_N_ELEMENTS (candidates); i++)
    if (g_file_test (candidates[i], G_FILE_TEST_IS_EXECUTABLE))
      return candidates[i];

  return NULL;
}

static gboolean
is_file_system (const char *path,
                unsigned long type)
{
  struct statfs fs;

  return statfs (path, &fs) == 0 && (unsigned long) fs.f_type == type;
}

/* The hierarchies that systemd uses: the unified one alone, or, on a
 * hybrid or legacy layout, the unified one if mounted and the v1
 * name=systemd one. NULL if neither. */
static GPtrArray *
find_cgroup_hierarchies (void)
{
  g_autoptr(GPtrArray) hierarchies = g_ptr_array_new ();

  if (is_file_system ("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC))
    {
      g_ptr_array_add (hierarchies, (gpointer) "/sys/fs/cgroup");
      return g_steal_pointer (&hierarchies);
    }
  if (!is_file_system ("/sys/fs/cgroup/systemd", CGROUP_SUPER_MAGIC))
    return NULL;
  if (is_file_system ("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC))
    g_ptr_array_add (hierarchies, (gpointer) "/sys/fs/cgroup/unified");
  g_ptr_array_add (hierarchies, (gpointer) "/sys/fs/cgroup/systemd");

  return g_steal_pointer (&hierarchies);
}

/* Removes the cgroup @path and those below it. A cgroup's files go with
 * its directory; one that still has processes cannot be removed. */
static gboolean
remove_cgroup (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_cgroup (child);
    }

  return g_rmdir (path) == 0 || errno == ENOENT;
}

/* Whether @name is @prefix and the pid of a test that is gone. */
static gboolean
is_stale (const char *name,
          const char *prefix)
{
  guint64 pid;

  if (!g_str_has_prefix (name, prefix))
    return FALSE;
  pid = g_ascii_strtoull (name + strlen (prefix), NULL, 10);

  return pid > 0 && pid < G_MAXINT && kill ((pid_t) pid, 0) != 0 && errno == ESRCH;
}

/* A test that was killed leaves its cgroups behind, empty: remove those
 * whose test is gone. */
static void
remove_stale_cgroups (const char *hierarchy)
{
  g_autoptr(GDir) dir = g_dir_open (hierarchy, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (hierarchy, name, NULL);

      if (is_stale (name, SLICE_PREFIX) && g_str_has_suffix (name, ".slice"))
        remove_cgroup (path);
    }
}

/* A test that was killed leaves its directory too, with the user's home
 * in it. */
static void
remove_stale_dirs (void)
{
  g_autoptr(GDir) dir = g_dir_open (g_get_tmp_dir (), 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (g_get_tmp_dir (), name, NULL);

      if (is_stale (name, DIR_PREFIX) && g_file_test (path, G_FILE_TEST_IS_DIR) &&
          !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        kv_test_remove_tree (path);
    }
}

static gboolean
chown_to_user (Fixture    *f,
               const char *path)
{
  return lchown (path, f->uid, f->gid) == 0;
}

/* The user must reach its home, in the test's directory. */
static gboolean
is_searchable_by_others (const char *path)
{
  g_autofree char *dir = g_strdup (path);

  for (;;)
    {
      struct stat st;
      g_autofree char *parent = NULL;

      if (g_stat (dir, &st) != 0 || (st.st_mode & S_IXOTH) == 0)
        return FALSE;
      parent = g_path_get_dirname (dir);
      if (g_str_equal (parent, dir))
        return TRUE;
      g_free (dir);
      dir = g_steal_pointer (&parent);
    }
}

/* An id that no account and no group of the machine has; from 59000, at
 * the top of the range of ordinary accounts, far from where useradd
 * starts. */
static gboolean
pick_free_id (uid_t *uid,
              gid_t *gid)
{
  for (guint id = 59000; id < 60000; id++)
    {
      if (getpwuid (id) == NULL && getgrgid (id) == NULL)
        {
          *uid = id;
          *gid = id;
          return TRUE;
        }
    }

  return FALSE;
}

/* The system's file with @line added, for the mount namespace. */
static void
write_with_line (const char *source,
                 const char *line,
                 const char *target)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *with_line = NULL;

  g_file_get_contents (source, &contents, NULL, &error);
  g_assert_no_error (error);
  with_line = g_strdup_printf ("%s%s%s\n", contents,
                               g_str_has_suffix (contents, "\n") || contents[0] == '\0' ? "" : "\n",
                               line);
  g_file_set_contents (target, with_line, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (target, 0644), ==, 0);
}

static void
make_user_dir (Fixture    *f,
               const char *path,
               int         mode)
{
  g_assert_cmpint (g_mkdir (path, mode), ==, 0);
  g_assert_true (chown_to_user (f, path));
}

static void
write_user_file (Fixture    *f,
                 const char *path,
                 const char *contents)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, 0644), ==, 0);
  g_assert_true (chown_to_user (f, path));
}

/* The units as meson installs them, with the daemon in @f->bindir. */
static void
install_units (Fixture *f)
{
  g_autofree char *service_in = g_test_build_filename (G_TEST_DIST, "..", "data",
                                                       "crafty-kv.service.in", NULL);
  g_autofree char *socket_path = g_test_build_filename (G_TEST_DIST, "..", "data",
                                                        "crafty-kv.socket", NULL);
  g_autofree char *config = g_build_filename (f->home, ".config", NULL);
  g_autofree char *config_systemd = g_build_filename (config, "systemd", NULL);
  g_autofree char *unit_dir = g_build_filename (config_systemd, "user", NULL);
  g_autofree char *service_target = g_build_filename (unit_dir, "crafty-kv.service", NULL);
  g_autofree char *socket_target = g_build_filename (unit_dir, "crafty-kv.socket", NULL);
  g_autoptr(GKeyFile) socket_unit = g_key_file_new ();
  g_autoptr(GString) service = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *socket_contents = NULL;
  g_autofree char *address = NULL;

  g_file_get_contents (service_in, &contents, NULL, &error);
  g_assert_no_error (error);
  service = g_string_new (contents);
  g_assert_cmpuint (g_string_replace (service, "@bindir@", f->bindir, 0), >=, 1);

  g_file_get_contents (socket_path, &socket_contents, NULL, &error);
  g_assert_no_error (error);
  g_key_file_load_from_data (socket_unit, socket_contents, -1, G_KEY_FILE_NONE, &error);
  g_assert_no_error (error);
  address = g_key_file_get_string (socket_unit, "Socket", "ListenStream", &error);
  g_assert_no_error (error);
  f->base = g_strconcat ("http://", address, NULL);

  make_user_dir (f, config, 0755);
  make_user_dir (f, config_systemd, 0755);
  make_user_dir (f, unit_dir, 0755);
  write_user_file (f, service_target, service->str);
  write_user_file (f, socket_target, socket_contents);
}

/* The built daemon where the user can run it. */
static void
install_daemon (Fixture *f)
{
  g_autofree char *prefix = g_build_filename (f->dir, "prefix", NULL);
  g_autofree char *target = NULL;
  g_autoptr(GFile) source = g_file_new_for_path (kv_test_daemon_path ());
  g_autoptr(GFile) copy = NULL;
  g_autoptr(GError) error = NULL;

  f->bindir = g_build_filename (prefix, "bin", NULL);
  target = g_build_filename (f->bindir, "crafty-kv", NULL);
  g_assert_cmpint (g_mkdir (prefix, 0755), ==, 0);
  g_assert_cmpint (g_mkdir (f->bindir, 0755), ==, 0);
  copy = g_file_new_for_path (target);
  g_file_copy (source, copy, G_FILE_COPY_NONE, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (target, 0755), ==, 0);
}

/* Creates SLICE/user@UID.service in each hierarchy, owned by the user. */
static gboolean
make_cgroups (Fixture *f)
{
  g_autoptr(GPtrArray) hierarchies = find_cgroup_hierarchies ();
  g_autofree char *slice = g_strdup_printf (SLICE_PREFIX "%d.slice", (int) getpid ());
  g_autofree char *service = g_strdup_printf ("user@%u.service", (guint) f->uid);

  if (hierarchies == NULL)
    {
      g_test_skip ("No cgroup hierarchy that systemd can use is mounted at /sys/fs/cgroup");
      return FALSE;
    }

  for (guint i = 0; i < hierarchies->len; i++)
    {
      const char *hierarchy = hierarchies->pdata[i];
      g_autofree char *slice_path = g_build_filename (hierarchy, slice, NULL);
      g_autofree char *service_path = g_build_filename (slice_path, service, NULL);
      g_autoptr(GDir) dir = NULL;
      const char *name;

      remove_stale_cgroups (hierarchy);
      /* Left empty by an earlier test process with our pid. */
      remove_cgroup (slice_path);
      if (g_mkdir (slice_path, 0755) != 0)
        {
          int saved_errno = errno;
          g_autofree char *message = g_strdup_printf ("Cannot create a cgroup in %s: %s",
                                                      hierarchy, g_strerror (saved_errno));
          g_test_skip (message);
          return FALSE;
        }
      g_ptr_array_add (f->slices, g_strdup (slice_path));
      g_assert_cmpint (g_mkdir (service_path, 0755), ==, 0);
      g_ptr_array_add (f->cgroups, g_strdup (service_path));

      /* Delegated: the directory and its files are the user's. */
      g_assert_true (chown_to_user (f, service_path));
      dir = g_dir_open (service_path, 0, NULL);
      g_assert_nonnull (dir);
      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *file = g_build_filename (service_path, name, NULL);

          if (!chown_to_user (f, file))
            {
              int saved_errno = errno;
              g_autofree char *message = g_strdup_printf ("Cannot give %s to the user: %s",
                                                          file, g_strerror (saved_errno));
              g_test_skip (message);
              return FALSE;
            }
        }
    }

  return TRUE;
}

/* Starts the namespace holder and waits until the namespaces are ready. */
static gboolean
start_holder (Fixture *f)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(GString) output = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *uid = g_strdup_printf ("%u", (guint) f->uid);
  g_autofree char *gid = g_strdup_printf ("%u", (guint) f->gid);
  g_autofree char *children_path = NULL;
  g_autofree char *children = NULL;
  const char *holder_pid;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->holder = g_subprocess_launcher_spawnv (launcher,
                                            ARGS ("unshare", "--mount", "--propagation=private",
                                                  "--pid", "--fork", "--kill-child",
                                                  "--mount-proc", "--net", "--",
                                                  "sh", "-ec", holder_script, "sh", uid, gid,
                                                  f->dir),
                                            &error);
  g_assert_no_error (error);

  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->holder));
  for (;;)
    {
      g_autofree char *line = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);

      g_assert_no_error (error);
      if (line == NULL)
        {
          g_subprocess_wait (f->holder, NULL, NULL);
          g_clear_object (&f->holder);
          skip_saying ("Cannot set up mount, PID and network namespaces", output->str);
          return FALSE;
        }
      if (g_str_equal (line, "ready"))
        break;
      g_string_append_printf (output, "%s\n", line);
    }

  holder_pid = g_subprocess_get_identifier (f->holder);
  children_path = g_build_filename ("/proc", holder_pid, "task", holder_pid, "children", NULL);
  g_file_get_contents (children_path, &children, NULL, &error);
  g_assert_no_error (error);
  f->ns_pid = g_strdup (g_strstrip (children));
  g_assert_cmpstr (f->ns_pid, !=, "");

  return TRUE;
}

/* The environment of everything run as the user. */
static void
add_user_command (Fixture            *f,
                  GPtrArray          *argv,
                  const char * const *command)
{
  g_ptr_array_add (argv, g_strdup ("setpriv"));
  g_ptr_array_add (argv, g_strdup_printf ("--reuid=%u", (guint) f->uid));
  g_ptr_array_add (argv, g_strdup_printf ("--regid=%u", (guint) f->gid));
  g_ptr_array_add (argv, g_strdup ("--clear-groups"));
  g_ptr_array_add (argv, g_strdup ("--"));
  g_ptr_array_add (argv, g_strdup ("env"));
  g_ptr_array_add (argv, g_strdup ("-i"));
  g_ptr_array_add (argv, g_strconcat ("HOME=", f->home, NULL));
  g_ptr_array_add (argv, g_strdup ("USER=" USER_NAME));
  g_ptr_array_add (argv, g_strdup ("LOGNAME=" USER_NAME));
  g_ptr_array_add (argv, g_strconcat ("XDG_RUNTIME_DIR=", f->runtime_dir, NULL));
  g_ptr_array_add (argv, g_strdup ("PATH=/usr/local/bin:/usr/bin:/bin"));
  g_ptr_array_add (argv, g_strdup ("LC_ALL=C.UTF-8"));
  for (gsize i = 0; command[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (command[i]));
}

static GPtrArray *
build_in_namespaces (Fixture *f)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (argv, g_strdup ("nsenter"));
  g_ptr_array_add (argv, g_strconcat ("--target=", f->ns_pid, NULL));
  g_ptr_array_add (argv, g_strdup ("--mount"));
  g_ptr_array_add (argv, g_strdup ("--pid"));
  g_ptr_array_add (argv, g_strdup ("--net"));
  g_ptr_array_add (argv, g_strdup ("--"));

  return argv;
}

/* Runs @command as the user in the namespaces; returns its standard
 * output. One that takes longer than TIMEOUT_MS is ended, with exit
 * status 124: a unit that does not stop fails the test well before the
 * unit's TimeoutStopSec=. */
static char *
run_as_user (Fixture             *f,
             const char * const  *command,
             int                 *exit_status,
             char               **standard_error)
{
  g_autoptr(GPtrArray) argv = build_in_namespaces (f);
  g_autoptr(GPtrArray) timed = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GBytes) out = NULL;

  g_ptr_array_add (timed, g_strdup ("timeout"));
  g_ptr_array_add (timed, g_strdup_printf ("%u", TIMEOUT_MS / 1000));
  for (gsize i = 0; command[i] != NULL; i++)
    g_ptr_array_add (timed, g_strdup (command[i]));
  g_ptr_array_add (timed, NULL);
  add_user_command (f, argv, (const char * const *) timed->pdata);
  g_ptr_array_add (argv, NULL);
  out = kv_test_run ((const char * const *) argv->pdata, exit_status, standard_error);

  return bytes_to_string (out);
}

/* Runs systemctl --user @args, which must exit with @expected_status;
 * returns what it printed. */
static char *
systemctl (Fixture            *f,
           int                 expected_status,
           const char * const *args)
{
  g_autoptr(GPtrArray) command = g_ptr_array_new ();
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status;

  g_ptr_array_add (command, (gpointer) "systemctl");
  g_ptr_array_add (command, (gpointer) "--user");
  g_ptr_array_add (command, (gpointer) "--no-pager");
  for (gsize i = 0; args[i] != NULL; i++)
    g_ptr_array_add (command, (gpointer) args[i]);
  g_ptr_array_add (command, NULL);

  out = run_as_user (f, (const char * const *) command->pdata, &status, &err);
  if (status == 124)
    g_test_message ("systemctl --user %s did not finish within %u s", args[0],
                    TIMEOUT_MS / 1000);
  else if (status != expected_status)
    {
      g_test_message ("systemctl --user %s exited with %d:", args[0], status);
      message_lines ("  ", out);
      message_lines ("  ", err);
    }
  g_assert_cmpint (status, ==, expected_status);

  return g_strconcat (out, err, NULL);
}

static void
assert_systemctl (Fixture            *f,
                  int                 expected_status,
                  const char * const *args,
                  const char         *expected_output)
{
  g_autofree char *output = systemctl (f, expected_status, args);

  g_assert_cmpstr (output, ==, expected_output);
}

/* Runs curl as the user, with "@" at the start of an argument standing for
 * the socket unit's address; checks that it prints exactly @output. */
static void
assert_curl (Fixture            *f,
             const char * const *args,
             const char         *output)
{
  g_autoptr(GPtrArray) command = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status;

  g_ptr_array_add (command, g_strdup ("curl"));
  g_ptr_array_add (command, g_strdup ("--silent"));
  g_ptr_array_add (command, g_strdup ("--show-error"));
  g_ptr_array_add (command, g_strdup ("--max-time"));
  g_ptr_array_add (command, g_strdup ("10"));
  for (gsize i = 0; args[i] != NULL; i++)
    {
      if (args[i][0] == '@')
        g_ptr_array_add (command, g_strconcat (f->base, args[i] + 1, NULL));
      else
        g_ptr_array_add (command, g_strdup (args[i]));
    }
  g_ptr_array_add (command, NULL);

  out = run_as_user (f, (const char * const *) command->pdata, &status, &err);
  g_assert_cmpstr (err, ==, "");
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, output);
}

static void
on_waited (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  gboolean *done = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *done = TRUE;
}

static gboolean
on_timeout (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Waits up to @timeout_ms for @process to exit; FALSE if it did not. */
static gboolean
wait_for_exit (GSubprocess *process,
               guint        timeout_ms)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GSource) timeout = g_timeout_source_new (timeout_ms);
  gboolean done = FALSE;
  gboolean timed_out = FALSE;

  g_main_context_push_thread_default (context);
  g_subprocess_wait_async (process, cancellable, on_waited, &done);
  g_source_set_callback (timeout, on_timeout, &timed_out, NULL);
  g_source_attach (timeout, context);
  while (!done && !timed_out)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_cancellable_cancel (cancellable);
  while (!done)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  return !timed_out || g_subprocess_get_identifier (process) == NULL;
}

/* Runs systemd --user as the user, in its cgroups and the namespaces, and
 * waits until it is up. */
static gboolean
start_manager (Fixture    *f,
               const char *systemd)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = build_in_namespaces (f);
  g_autoptr(GError) error = NULL;
  const char *asan_options = g_getenv ("ASAN_OPTIONS");
  const char *ubsan_options = g_getenv ("UBSAN_OPTIONS");
  g_autofree char *asan_variable = NULL;
  g_autofree char *ubsan_variable = NULL;
  gint64 deadline;

  g_ptr_array_add (argv, g_strdup ("sh"));
  g_ptr_array_add (argv, g_strdup ("-ec"));
  g_ptr_array_add (argv, g_strdup (join_cgroups_script));
  g_ptr_array_add (argv, g_strdup ("sh"));
  for (guint i = 0; i < f->cgroups->len; i++)
    g_ptr_array_add (argv, g_build_filename (f->cgroups->pdata[i], "cgroup.procs", NULL));
  g_ptr_array_add (argv, g_strdup ("--"));
  /* The services get the manager's environment. A daemon built with
   * AddressSanitizer cannot check for leaks in the unit's sandbox (the
   * checker needs ptrace): the other suites do. */
  asan_variable = g_strconcat ("ASAN_OPTIONS=", asan_options != NULL ? asan_options : "",
                               asan_options != NULL ? ":" : "", "detect_leaks=0", NULL);
  ubsan_variable = g_strconcat ("UBSAN_OPTIONS=", ubsan_options != NULL ? ubsan_options : "",
                                NULL);
  /* No journal here: the manager logs to its standard error. */
  add_user_command (f, argv,
                    ARGS ("SYSTEMD_LOG_TARGET=console", asan_variable, ubsan_variable, systemd,
                          "--user"));
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_stdout_file_path (launcher, f->log_path);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->manager = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata,
                                             &error);
  g_assert_no_error (error);

  deadline = g_get_monotonic_time () + TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  for (;;)
    {
      g_autofree char *state = NULL;
      int status;

      state = run_as_user (f, ARGS ("systemctl", "--user", "is-system-running"), &status, NULL);
      if (g_str_equal (state, "running\n"))
        return TRUE;
      if (g_str_equal (state, "degraded\n"))
        {
          g_autofree char *failed = systemctl (f, 0, ARGS ("--failed", "--plain",
                                                           "--no-legend"));

          g_test_message ("The user manager runs, with failed units:");
          message_lines ("  ", failed);
          return TRUE;
        }
      if (g_subprocess_get_identifier (f->manager) == NULL)
        {
          g_autofree char *log = NULL;
          g_autofree char *reason = NULL;

          g_subprocess_wait (f->manager, NULL, NULL);
          reason = g_strdup_printf ("systemd --user did not start (exit status %d)",
                                    g_subprocess_get_exit_status (f->manager));
          g_file_get_contents (f->log_path, &log, NULL, NULL);
          skip_saying (reason, log != NULL ? log : "");
          return FALSE;
        }
      if (g_get_monotonic_time () > deadline)
        {
          g_test_message ("systemd --user is not running after %u ms: %s", TIMEOUT_MS,
                          g_strstrip (state));
          g_test_fail ();
          return FALSE;
        }
      g_usleep (20 * 1000);
    }
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  user_data)
{
  const char *systemd = find_systemd ();
  g_autoptr(GError) error = NULL;
  g_autofree char *passwd_line = NULL;
  g_autofree char *group_line = NULL;
  g_autofree char *passwd = NULL;
  g_autofree char *group = NULL;
  g_autofree char *template = NULL;

  f->slices = g_ptr_array_new_with_free_func (g_free);
  f->cgroups = g_ptr_array_new_with_free_func (g_free);

  if (getuid () != 0)
    {
      g_test_skip ("Needs root: it runs a user manager as another user, in namespaces and "
                   "cgroups of its own");
      return;
    }
  if (systemd == NULL)
    {
      g_test_skip ("systemd is not installed");
      return;
    }
  if (!have_programs (ARGS ("systemctl", "unshare", "nsenter", "setpriv", "curl")))
    return;
  if (!pick_free_id (&f->uid, &f->gid))
    {
      g_test_skip ("No free user id from 59000 to 59999");
      return;
    }

  remove_stale_dirs ();
  template = g_strdup_printf (DIR_PREFIX "%d-XXXXXX", (int) getpid ());
  f->dir = g_dir_make_tmp (template, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (f->dir, 0755), ==, 0);
  if (!is_searchable_by_others (f->dir))
    {
      g_autofree char *message = g_strdup_printf ("The user cannot reach its home: other "
                                                  "users may not search %s",
                                                  g_get_tmp_dir ());
      g_test_skip (message);
      return;
    }
  f->home = g_build_filename (f->dir, "home", NULL);
  f->log_path = g_build_filename (f->dir, "manager.log", NULL);
  f->runtime_dir = g_strdup_printf ("/run/user/%u", (guint) f->uid);

  /* An account in the mount namespace only: nothing to remove from the
   * machine afterwards. */
  passwd = g_build_filename (f->dir, "passwd", NULL);
  group = g_build_filename (f->dir, "group", NULL);
  passwd_line = g_strdup_printf (USER_NAME ":x:%u:%u:crafty-kv test:%s:/usr/sbin/nologin",
                                 (guint) f->uid, (guint) f->gid, f->home);
  group_line = g_strdup_printf (USER_NAME ":x:%u:", (guint) f->gid);
  write_with_line ("/etc/passwd", passwd_line, passwd);
  write_with_line ("/etc/group", group_line, group);
  if (g_mkdir (f->home, 0700) != 0 || !chown_to_user (f, f->home))
    {
      int saved_errno = errno;
      g_autofree char *message = g_strdup_printf ("Cannot give a directory to user id %u: %s",
                                                  (guint) f->uid, g_strerror (saved_errno));
      g_test_skip (message);
      return;
    }
  install_daemon (f);
  install_units (f);
  if (g_test_failed ())
    return;

  if (!make_cgroups (f) || !start_holder (f) || !start_manager (f, systemd))
    return;

  f->ready = TRUE;
}

/* There is no journal: what systemd knows of the units. */
static void
print_status (Fixture *f)
{
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *log = NULL;

  if (f->ready)
    {
      out = run_as_user (f, ARGS ("systemctl", "--user", "--no-pager", "status", "--lines=0",
                                  "crafty-kv.socket", "crafty-kv.service"),
                         NULL, &err);
      message_lines ("  ", out);
      message_lines ("  ", err);
    }
  if (f->log_path != NULL && g_file_get_contents (f->log_path, &log, NULL, NULL))
    message_lines ("  systemd --user: ", log);
}

/* The manager's pid: nsenter's child. */
static pid_t
get_manager_pid (Fixture *f)
{
  const char *nsenter_pid = g_subprocess_get_identifier (f->manager);
  g_autofree char *path = NULL;
  g_autofree char *children = NULL;

  if (nsenter_pid == NULL)
    return 0;
  path = g_build_filename ("/proc", nsenter_pid, "task", nsenter_pid, "children", NULL);
  if (!g_file_get_contents (path, &children, NULL, NULL))
    return 0;

  return (pid_t) g_ascii_strtoll (children, NULL, 10);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  user_data)
{
  if (g_test_failed ())
    print_status (f);

  /* The manager stops its units on SIGTERM. */
  if (f->manager != NULL)
    {
      pid_t manager_pid = get_manager_pid (f);

      if (manager_pid > 0)
        kill (manager_pid, SIGTERM);
      if (!wait_for_exit (f->manager, TIMEOUT_MS))
        {
          g_test_message ("systemd --user did not stop on SIGTERM");
          g_test_fail ();
        }
    }

  /* With the first process of the PID namespace, the kernel ends all the
   * others, should any be left. */
  if (f->holder != NULL)
    {
      g_subprocess_force_exit (f->holder);
      g_subprocess_wait (f->holder, NULL, NULL);
    }
  if (f->manager != NULL)
    {
      g_subprocess_force_exit (f->manager);
      g_subprocess_wait (f->manager, NULL, NULL);
    }

  /* The processes may take a moment to leave their cgroups. */
  for (guint i = 0; i < f->slices->len; i++)
    {
      gint64 deadline = g_get_monotonic_time () + TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

      while (!remove_cgroup (f->slices->pdata[i]))
        {
          if (g_get_monotonic_time () > deadline)
            {
              g_test_message ("Cannot remove the cgroup %s: %s",
                              (const char *) f->slices->pdata[i], g_strerror (errno));
              g_test_fail ();
              break;
            }
          g_usleep (10 * 1000);
        }
    }

  if (f->dir != NULL)
    kv_test_remove_tree (f->dir);

  g_clear_object (&f->manager);
  g_clear_object (&f->holder);
  g_free (f->ns_pid);
  g_ptr_array_unref (f->cgroups);
  g_ptr_array_unref (f->slices);
  g_free (f->runtime_dir);
  g_free (f->base);
  g_free (f->log_path);
  g_free (f->bindir);
  g_free (f->home);
  g_free (f->dir);
}

static char *
get_main_pid (Fixture *f)
{
  g_autofree char *main_pid = systemctl (f, 0, ARGS ("show", "--property=MainPID", "--value",
                                                     "crafty-kv.service"));

  return g_strdup (g_strstrip (main_pid));
}

/* The NUL-separated strings of /proc/PID/@name for the service's main
 * process, read in the namespaces. */
static GStrv
read_main_process (Fixture    *f,
                   const char *name)
{
  g_autofree char *main_pid = get_main_pid (f);
  g_autofree char *path = g_strdup_printf ("/proc/%s/%s", main_pid, name);
  g_autoptr(GPtrArray) argv = build_in_namespaces (f);
  g_autoptr(GPtrArray) strings = g_ptr_array_new ();
  g_autoptr(GBytes) out = NULL;
  const char *data;
  gsize size;
  gsize start = 0;
  int status;

  g_ptr_array_add (argv, g_strdup ("cat"));
  g_ptr_array_add (argv, g_strdup (path));
  g_ptr_array_add (argv, NULL);
  out = kv_test_run ((const char * const *) argv->pdata, &status, NULL);
  g_assert_cmpint (status, ==, 0);

  data = g_bytes_get_data (out, &size);
  for (gsize i = 0; i < size; i++)
    {
      if (data[i] == '\0')
        {
          g_ptr_array_add (strings, g_strndup (data + start, i - start));
          start = i + 1;
        }
    }
  g_ptr_array_add (strings, NULL);

  return (GStrv) g_ptr_array_free (g_steal_pointer (&strings), FALSE);
}

static const char *
find_prefixed (const char * const *strings,
               const char         *prefix)
{
  for (gsize i = 0; strings[i] != NULL; i++)
    if (g_str_has_prefix (strings[i], prefix))
      return strings[i] + strlen (prefix);

  return NULL;
}

/* systemd made the state directory, the user's alone, and the daemon was
 * given it. */
static void
assert_state_directory (Fixture *f)
{
  g_auto(GStrv) environment = read_main_process (f, "environ");
  g_auto(GStrv) cmdline = read_main_process (f, "cmdline");
  const char *state_dir = find_prefixed ((const char * const *) environment,
                                          "STATE_DIRECTORY=");
  const char *data_dir = find_prefixed ((const char * const *) cmdline, "--data-dir=");
  g_autofree char *home_prefix = g_strconcat (f->home, "/", NULL);
  struct stat st;

  g_assert_nonnull (state_dir);
  if (state_dir == NULL)
    return;
  g_assert_true (g_str_has_prefix (state_dir, home_prefix));
  g_test_message ("The state directory is ~/%s", state_dir + strlen (home_prefix));
  g_assert_cmpint (g_stat (state_dir, &st), ==, 0);
  g_assert_true (S_ISDIR (st.st_mode));
  g_assert_cmpuint (st.st_uid, ==, f->uid);
  g_assert_cmpint (st.st_mode & 07777, ==, 0700);

  g_assert_cmpstr (data_dir, ==, state_dir);
}

static void
assert_running (Fixture *f)
{
  g_autofree char *status = systemctl (f, 0, ARGS ("status", "--lines=0", "crafty-kv.service"));

  g_assert_nonnull (strstr (status, "\n     Active: active (running) since "));
  g_assert_nonnull (strstr (status, "\nTriggeredBy: "));
  g_assert_nonnull (strstr (strstr (status, "\nTriggeredBy: "), " crafty-kv.socket\n"));
  g_assert_nonnull (strstr (status, "\n     Status: \"Keys: "));
}

static void
test_socket_activation (Fixture       *f,
                        gconstpointer  user_data)
{
  g_autofree char *enabled = NULL;

  g_test_summary ("Under a real user manager, the enabled crafty-kv.socket starts "
                  "crafty-kv.service on the first curl; systemctl status shows it running, "
                  "with its Status: line; systemd made the state directory, mode 0700, and "
                  "ExecStart= passes it as --data-dir");

  if (!f->ready)
    return;

  enabled = systemctl (f, 0, ARGS ("enable", "--now", "crafty-kv.socket"));
  g_assert_nonnull (strstr (enabled, "/sockets.target.wants/crafty-kv.socket"));
  /* Nothing runs until a client comes. */
  assert_systemctl (f, 0, ARGS ("is-active", "crafty-kv.socket"), "active\n");
  assert_systemctl (f, 3, ARGS ("is-active", "crafty-kv.service"), "inactive\n");

  assert_curl (f, ARGS ("-X", "PUT", "-d", "Nairobi", "@/kv/kenya:capital"), "");
  assert_curl (f, ARGS ("@/kv/kenya:capital"), "Nairobi");
  assert_systemctl (f, 0, ARGS ("is-active", "crafty-kv.service"), "active\n");
  assert_running (f);
  assert_state_directory (f);
}

static void
test_data_survives (Fixture       *f,
                    gconstpointer  user_data)
{
  g_autofree char *first_pid = NULL;
  g_autofree char *second_pid = NULL;

  g_test_summary ("A value put through the socket is still there after systemctl --user "
                  "restart crafty-kv.service, and after both units are stopped and the "
                  "socket is started again");

  if (!f->ready)
    return;

  g_free (systemctl (f, 0, ARGS ("enable", "--now", "crafty-kv.socket")));
  assert_curl (f, ARGS ("-X", "PUT", "-d", "Kampala", "@/kv/uganda:capital"), "");
  first_pid = get_main_pid (f);

  g_free (systemctl (f, 0, ARGS ("restart", "crafty-kv.service")));
  second_pid = get_main_pid (f);
  g_assert_cmpstr (second_pid, !=, "0");
  g_assert_cmpstr (second_pid, !=, first_pid);
  assert_curl (f, ARGS ("@/kv/uganda:capital"), "Kampala");
  if (g_test_failed ())
    return;

  g_free (systemctl (f, 0, ARGS ("stop", "crafty-kv.socket", "crafty-kv.service")));
  assert_systemctl (f, 3, ARGS ("is-active", "crafty-kv.socket", "crafty-kv.service"),
                    "inactive\ninactive\n");
  if (g_test_failed ())
    return;
  g_free (systemctl (f, 0, ARGS ("start", "crafty-kv.socket")));
  assert_curl (f, ARGS ("@/kv/uganda:capital"), "Kampala");
  assert_running (f);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* A failed check goes on to the teardown, which ends the manager and
   * removes the cgroups. */
  g_test_set_nonfatal_assertions ();

  g_test_add ("/kv/user-service/socket-activation", Fixture, NULL, fixture_setup,
              test_socket_activation, fixture_teardown);
  g_test_add ("/kv/user-service/data-survives", Fixture, NULL, fixture_setup,
              test_data_survives, fixture_teardown);

  return g_test_run ();
}
