/* kv-test-utils.h: real servers and daemons for the test suites
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <libsoup/soup.h>

#include "http/kv-server.h"
#include "kv-config.h"
#include "kv-worker.h"
#include "net/kv-listener.h"

G_BEGIN_DECLS

/* A KvServer listening on 127.0.0.1, port 0, in a KvWorker of its own so
 * that tests can use blocking clients. */
typedef struct _KvTestServer KvTestServer;

KvTestServer *kv_test_server_start     (KvStorage    *storage);
KvTestServer *kv_test_server_start_with_config (KvStorage *storage,
                                                KvConfig  *config);
KvTestServer *kv_test_server_start_full (KvStorage   *storage,
                                         KvConfig    *config,
                                         GSocket     *socket,
                                         GError     **error);
void          kv_test_server_stop      (KvTestServer *server);
KvListener   *kv_test_server_get_listener (KvTestServer *server);
KvWorker     *kv_test_server_get_worker (KvTestServer *server);
KvStats      *kv_test_server_get_stats (KvTestServer *server);
guint16       kv_test_server_get_port  (KvTestServer *server);
char         *kv_test_server_uri       (KvTestServer *server,
                                        const char   *path);

/* The built crafty-kv executable, with a NOTIFY_SOCKET of the test's own. */
typedef struct _KvTestDaemon KvTestDaemon;

const char   *kv_test_daemon_path      (void);
KvTestDaemon *kv_test_daemon_new       (void);
char         *kv_test_daemon_build_path (KvTestDaemon *daemon,
                                         const char   *name);
const char   *kv_test_daemon_get_notify_path (KvTestDaemon *daemon);
void          kv_test_daemon_spawn     (KvTestDaemon       *daemon,
                                        const char * const *argv,
                                        const char * const *envp);
KvTestDaemon *kv_test_daemon_start     (const char * const *extra_args);
char         *kv_test_daemon_wait_notify (KvTestDaemon *daemon,
                                          const char   *assignment,
                                          guint         timeout_ms);
guint16       kv_test_daemon_get_port  (KvTestDaemon *daemon);
GSubprocess  *kv_test_daemon_get_subprocess (KvTestDaemon *daemon);
void          kv_test_daemon_signal    (KvTestDaemon *daemon,
                                        int           signum);
int           kv_test_daemon_wait      (KvTestDaemon *daemon);
char         *kv_test_daemon_dup_log   (KvTestDaemon *daemon);
void          kv_test_daemon_free      (KvTestDaemon *daemon);
int           kv_test_daemon_stop      (KvTestDaemon *daemon);

/* A whole answer to one request, read with a blocking SoupSession. */
typedef struct
{
  guint status;
  SoupMessageHeaders *headers;
  GBytes *body;
} KvTestResponse;

SoupSession    *kv_test_session_new     (void);
KvTestResponse *kv_test_request         (SoupSession        *session,
                                         const char         *method,
                                         const char         *uri,
                                         const char * const *headers,
                                         GBytes             *body);
void            kv_test_response_free   (KvTestResponse     *response);
const char     *kv_test_response_header (KvTestResponse     *response,
                                         const char         *name);
void            kv_test_assert_response (KvTestResponse     *response,
                                         guint               status,
                                         const char         *body);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (KvTestResponse, kv_test_response_free)

/* The usual HTTP test: a store, a server on port 0 in its own thread, a
 * client session. */
typedef struct
{
  KvStorage *storage;
  KvTestServer *server;
  SoupSession *session;
} KvTestFixture;

void            kv_test_fixture_setup        (KvTestFixture      *fixture,
                                              KvConfig           *config);
void            kv_test_fixture_teardown     (KvTestFixture      *fixture);
KvTestResponse *kv_test_fixture_request_full (KvTestFixture      *fixture,
                                              const char         *method,
                                              const char         *path,
                                              const char * const *headers,
                                              GBytes             *body);
KvTestResponse *kv_test_fixture_request      (KvTestFixture      *fixture,
                                              const char         *method,
                                              const char         *path,
                                              const char         *body);

/* Runs @argv to completion; returns its standard output. */
void          kv_test_remove_tree      (const char         *path);
GBytes       *kv_test_run              (const char * const *argv,
                                        int                *exit_status,
                                        char              **standard_error);
GBytes       *kv_test_run_with_env     (const char * const *argv,
                                        const char * const *envp,
                                        int                *exit_status,
                                        char              **standard_error);

G_END_DECLS
