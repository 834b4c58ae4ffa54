/* test-concurrency.c: many HTTP clients on a few keys, and a check that
 * what they saw is linearizable
 *
 * SPDX-License-Identifier: MIT
 *
 * Each client records when it sent each request and when the answer came
 * back. A history is linearizable if every operation can be given a point
 * in time between those two at which it took effect at once, such that
 * each GET returns what the latest PUT or DELETE before it left. Keys are
 * independent, so each key's history is checked on its own, with the
 * Wing & Gong search as improved by Lowe (backtracking over the next
 * operation to linearize, remembering the (done set, value) states seen).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "storage/kv-map-storage.h"
#include "kv-test-raw.h"
#include "kv-test-utils.h"

#define N_THREADS 16
#define N_OPS 80
#define N_KEYS 3
#define ABSENT (-1)

typedef enum
{
  OP_PUT,
  OP_GET,
  OP_DELETE,
} OpKind;

typedef struct
{
  OpKind kind;
  int value;        /* PUT: the id of the value written; GET: the id read */
  gint64 call;
  gint64 ret;
} Op;

/* ---- The checker ---- */

typedef struct _Entry Entry;
struct _Entry
{
  gboolean is_call;
  guint op;         /* index into the history */
  gint64 time;
  Entry *match;     /* the call's return, the return's call */
  Entry *prev;
  Entry *next;
};

static int
compare_entries (gconstpointer a,
                 gconstpointer b)
{
  const Entry *x = *(Entry * const *) a;
  const Entry *y = *(Entry * const *) b;

  if (x->time != y->time)
    return x->time < y->time ? -1 : 1;
  /* At the same instant a call goes first: the two may overlap. */
  return (y->is_call ? 1 : 0) - (x->is_call ? 1 : 0);
}

static void
lift (Entry *call)
{
  Entry *ret = call->match;

  call->prev->next = call->next;
  if (call->next != NULL)
    call->next->prev = call->prev;
  ret->prev->next = ret->next;
  if (ret->next != NULL)
    ret->next->prev = ret->prev;
}

static void
unlift (Entry *call)
{
  Entry *ret = call->match;

  ret->prev->next = ret;
  if (ret->next != NULL)
    ret->next->prev = ret;
  call->prev->next = call;
  if (call->next != NULL)
    call->next->prev = call;
}

/* The register: GET must see the current value, PUT and DELETE set it. */
static gboolean
apply (const Op *op,
       int       state,
       int      *new_state)
{
  switch (op->kind)
    {
    case OP_PUT:
      *new_state = op->value;
      return TRUE;
    case OP_DELETE:
      *new_state = ABSENT;
      return TRUE;
    case OP_GET:
      *new_state = state;
      return op->value == state;
    }
  g_assert_not_reached ();
}

static GBytes *
cache_key (const guint64 *done,
           gsize          n_words,
           int            state)
{
  GByteArray *key = g_byte_array_sized_new (n_words * 8 + sizeof state);

  g_byte_array_append (key, (const guint8 *) done, n_words * 8);
  g_byte_array_append (key, (const guint8 *) &state, sizeof state);
  return g_byte_array_free_to_bytes (key);
}

/* Whether @ops (one key's history, starting with the key absent) is
 * linearizable. */
static gboolean
is_linearizable (const Op *ops,
                 guint     n_ops)
{
  g_autofree Entry *entries = g_new0 (Entry, 2 * n_ops);
  g_autoptr(GPtrArray) order = g_ptr_array_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                                      (GDestroyNotify) g_bytes_unref, NULL);
  g_autoptr(GArray) stack = g_array_new (FALSE, FALSE, sizeof (Entry *));
  g_autoptr(GArray) states = g_array_new (FALSE, FALSE, sizeof (int));
  gsize n_words = (n_ops + 63) / 64;
  g_autofree guint64 *done = g_new0 (guint64, n_words + 1);
  Entry head = { 0, };
  Entry *entry;
  int state = ABSENT;

  for (guint i = 0; i < n_ops; i++)
    {
      Entry *call = &entries[2 * i];
      Entry *ret = &entries[2 * i + 1];

      *call = (Entry) { .is_call = TRUE, .op = i, .time = ops[i].call, .match = ret };
      *ret = (Entry) { .is_call = FALSE, .op = i, .time = ops[i].ret, .match = call };
      g_ptr_array_add (order, call);
      g_ptr_array_add (order, ret);
    }
  g_ptr_array_sort (order, compare_entries);

  entry = &head;
  for (guint i = 0; i < order->len; i++)
    {
      Entry *next = g_ptr_array_index (order, i);

      entry->next = next;
      next->prev = entry;
      entry = next;
    }

  entry = head.next;
  while (head.next != NULL)
    {
      if (entry->is_call)
        {
          int new_state;

          if (apply (&ops[entry->op], state, &new_state))
            {
              GBytes *key;

              done[entry->op / 64] |= G_GUINT64_CONSTANT (1) << (entry->op % 64);
              key = cache_key (done, n_words, new_state);
              if (!g_hash_table_contains (seen, key))
                {
                  g_hash_table_add (seen, key);
                  g_array_append_val (stack, entry);
                  g_array_append_val (states, state);
                  state = new_state;
                  lift (entry);
                  entry = head.next;
                  continue;
                }
              g_bytes_unref (key);
              done[entry->op / 64] &= ~(G_GUINT64_CONSTANT (1) << (entry->op % 64));
            }
          entry = entry->next;
        }
      else
        {
          /* An operation returned before any order could take it in:
           * undo the last choice and try the next one. */
          if (stack->len == 0)
            return FALSE;
          entry = g_array_index (stack, Entry *, stack->len - 1);
          state = g_array_index (states, int, states->len - 1);
          g_array_set_size (stack, stack->len - 1);
          g_array_set_size (states, states->len - 1);
          done[entry->op / 64] &= ~(G_GUINT64_CONSTANT (1) << (entry->op % 64));
          unlift (entry);
          entry = entry->next;
        }
    }

  return TRUE;
}

static void
test_checker (void)
{
  /* Times in arbitrary units. */
  const Op sequential[] = {
    { OP_PUT, 1, 0, 1 }, { OP_GET, 1, 2, 3 }, { OP_DELETE, 0, 4, 5 }, { OP_GET, ABSENT, 6, 7 },
  };
  const Op overlapping[] = {
    /* The GET overlaps both PUTs: it may see either. */
    { OP_PUT, 1, 0, 10 }, { OP_PUT, 2, 1, 11 }, { OP_GET, 1, 2, 12 }, { OP_GET, 2, 13, 14 },
  };
  const Op stale[] = {
    /* PUT 2 finished before the GET began, yet the GET saw 1. */
    { OP_PUT, 1, 0, 1 }, { OP_PUT, 2, 2, 3 }, { OP_GET, 1, 4, 5 },
  };
  const Op resurrected[] = {
    { OP_PUT, 1, 0, 1 }, { OP_DELETE, 0, 2, 3 }, { OP_GET, 1, 4, 5 },
  };
  const Op flip_flop[] = {
    /* Two readers overlapping two writers must not see them in opposite
     * orders once one of them has seen the later value. */
    { OP_PUT, 1, 0, 100 }, { OP_PUT, 2, 0, 100 },
    { OP_GET, 1, 10, 20 }, { OP_GET, 2, 30, 40 }, { OP_GET, 1, 50, 60 },
  };
  const Op never_written[] = {
    { OP_PUT, 1, 0, 1 }, { OP_GET, 7, 2, 3 },
  };

  g_test_summary ("The checker accepts linearizable histories and refuses the others");

  g_assert_true (is_linearizable (sequential, G_N_ELEMENTS (sequential)));
  g_assert_true (is_linearizable (overlapping, G_N_ELEMENTS (overlapping)));
  g_assert_false (is_linearizable (stale, G_N_ELEMENTS (stale)));
  g_assert_false (is_linearizable (resurrected, G_N_ELEMENTS (resurrected)));
  g_assert_false (is_linearizable (flip_flop, G_N_ELEMENTS (flip_flop)));
  g_assert_false (is_linearizable (never_written, G_N_ELEMENTS (never_written)));
}

/* ---- The clients ---- */

typedef struct
{
  guint16 port;
  guint id;
  GArray *history[N_KEYS];  /* (element-type Op) */
} Client;

static const char *keys[N_KEYS] = { "shared-a", "shared-b", "shared-c" };

static int
value_id (const char *text)
{
  guint thread;
  guint seq;

  /* "t<thread>-<seq>" → a number unique to that PUT. */
  if (sscanf (text, "t%u-%u", &thread, &seq) != 2)
    return -2;
  return thread * N_OPS + seq;
}

/* One transaction on shared-b and shared-c together: both written with
 * one value, both read, or both deleted. It goes into both keys'
 * histories, with the same call and return. */
static void
txn_round (Client  *client,
           GSocket *socket,
           guint    dice,
           guint    seq)
{
  g_autofree char *value = g_strdup_printf ("t%u-%u", client->id, seq);
  g_autofree char *body = NULL;
  g_autofree char *request = NULL;
  g_autoptr(KvRawResponse) response = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  Op op = { 0, };
  int seen[2];

  if (dice < 40)
    {
      op.kind = OP_PUT;
      op.value = value_id (value);
      body = g_strdup_printf ("{\"ops\": [{\"op\": \"put\", \"key\": \"%s\", \"value\": \"%s\"},"
                              " {\"op\": \"put\", \"key\": \"%s\", \"value\": \"%s\"}]}",
                              keys[1], value, keys[2], value);
    }
  else if (dice < 85)
    {
      op.kind = OP_GET;
      body = g_strdup_printf ("{\"ops\": [{\"op\": \"get\", \"key\": \"%s\"},"
                              " {\"op\": \"get\", \"key\": \"%s\"}]}", keys[1], keys[2]);
    }
  else
    {
      op.kind = OP_DELETE;
      body = g_strdup_printf ("{\"ops\": [{\"op\": \"delete\", \"key\": \"%s\"},"
                              " {\"op\": \"delete\", \"key\": \"%s\"}]}", keys[1], keys[2]);
    }
  request = g_strdup_printf ("POST /txn HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n"
                             "\r\n%s", strlen (body), body);

  op.call = g_get_monotonic_time ();
  g_assert_true (kv_raw_send_string (socket, request));
  response = kv_raw_read_response (socket, FALSE, 10000);
  op.ret = g_get_monotonic_time ();
  g_assert_cmpuint (response->status, ==, 200);

  json_parser_load_from_data (parser, g_bytes_get_data (response->body, NULL),
                              g_bytes_get_size (response->body), &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 2; i++)
    {
      JsonObject *result =
        json_array_get_object_element (json_object_get_array_member (
          json_node_get_object (json_parser_get_root (parser)), "results"), i);

      seen[i] = op.kind != OP_GET ? op.value
              : json_object_get_boolean_member (result, "found")
              ? value_id (json_object_get_string_member (result, "value")) : ABSENT;
    }

  if (op.kind == OP_GET)
    {
      /* Never the half of a transaction. */
      g_assert_cmpint (seen[0], ==, seen[1]);
      op.value = seen[0];
    }
  g_array_append_val (client->history[1], op);
  g_array_append_val (client->history[2], op);
}

static gpointer
client_thread (gpointer data)
{
  Client *client = data;
  g_autoptr(GSocket) socket = kv_raw_connect (client->port);
  g_autoptr(GRand) rand = g_rand_new_with_seed (client->id * 7919 + 1);

  for (guint seq = 0; seq < N_OPS; seq++)
    {
      guint key = g_rand_int_range (rand, 0, N_KEYS);
      guint dice = g_rand_int_range (rand, 0, 100);
      g_autofree char *request = NULL;
      g_autofree char *value = NULL;
      g_autoptr(KvRawResponse) response = NULL;
      Op op = { 0, };

      /* shared-a takes single-key requests; shared-b and shared-c are
       * only ever written together, by transactions, and read together. */
      if (key > 0)
        {
          txn_round (client, socket, dice, seq);
          continue;
        }

      if (dice < 40)
        {
          op.kind = OP_PUT;
          value = g_strdup_printf ("t%u-%u", client->id, seq);
          op.value = value_id (value);
          request = g_strdup_printf ("PUT /kv/%s HTTP/1.1\r\nHost: localhost\r\n"
                                     "Content-Length: %zu\r\n\r\n%s",
                                     keys[key], strlen (value), value);
        }
      else if (dice < 85)
        {
          op.kind = OP_GET;
          request = g_strdup_printf ("GET /kv/%s HTTP/1.1\r\nHost: localhost\r\n\r\n", keys[key]);
        }
      else
        {
          op.kind = OP_DELETE;
          request = g_strdup_printf ("DELETE /kv/%s HTTP/1.1\r\nHost: localhost\r\n\r\n",
                                     keys[key]);
        }

      op.call = g_get_monotonic_time ();
      g_assert_true (kv_raw_send_string (socket, request));
      response = kv_raw_read_response (socket, FALSE, 10000);
      op.ret = g_get_monotonic_time ();

      if (op.kind == OP_GET)
        {
          if (response->status == 404)
            op.value = ABSENT;
          else
            {
              g_autofree char *text = g_strndup (g_bytes_get_data (response->body, NULL),
                                                 g_bytes_get_size (response->body));

              g_assert_cmpuint (response->status, ==, 200);
              op.value = value_id (text);
              g_assert_cmpint (op.value, >=, 0);
            }
        }
      else
        g_assert_cmpuint (response->status, ==, 200);

      g_array_append_val (client->history[key], op);
    }

  return NULL;
}

static void
test_linearizable (void)
{
  g_autoptr(KvStorage) storage = KV_STORAGE (kv_map_storage_new ());
  KvTestServer *server = kv_test_server_start (storage);
  Client clients[N_THREADS];
  GThread *threads[N_THREADS];

  g_test_summary ("16 clients on three shared keys, one by PUT, GET and DELETE, two only "
                  "together by transactions: each key's history is linearizable, and no "
                  "transaction is ever seen in part");

  for (guint i = 0; i < N_THREADS; i++)
    {
      clients[i] = (Client) { .port = kv_test_server_get_port (server), .id = i };
      for (guint k = 0; k < N_KEYS; k++)
        clients[i].history[k] = g_array_new (FALSE, FALSE, sizeof (Op));
    }
  for (guint i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("kv-client", client_thread, &clients[i]);
  for (guint i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);

  for (guint k = 0; k < N_KEYS; k++)
    {
      g_autoptr(GArray) history = g_array_new (FALSE, FALSE, sizeof (Op));
      guint puts = 0;
      guint gets = 0;

      for (guint i = 0; i < N_THREADS; i++)
        g_array_append_vals (history, clients[i].history[k]->data, clients[i].history[k]->len);
      for (guint i = 0; i < history->len; i++)
        {
          const Op *op = &g_array_index (history, Op, i);
          puts += op->kind == OP_PUT;
          gets += op->kind == OP_GET && op->value != ABSENT;
        }

      g_test_message ("%s: %u operations, %u PUTs, %u GETs that found a value",
                      keys[k], history->len, puts, gets);
      g_assert_true (is_linearizable ((const Op *) history->data, history->len));
    }

  for (guint i = 0; i < N_THREADS; i++)
    for (guint k = 0; k < N_KEYS; k++)
      g_array_unref (clients[i].history[k]);
  kv_test_server_stop (server);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/kv/concurrency/checker", test_checker);
  g_test_add_func ("/kv/concurrency/linearizable", test_linearizable);

  return g_test_run ();
}
