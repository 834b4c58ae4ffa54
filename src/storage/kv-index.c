/* kv-index.c: the entries of a store, in key order
 *
 * SPDX-License-Identifier: MIT
 *
 * A B+tree of entry pointers. The store's memory budget leaves about ten
 * bytes a key for ordering, and a GTree takes 48 to 57 (its 40-byte node,
 * in a malloc chunk or in GLib's slices), so the index keeps nothing per
 * key but the pointer, in leaves of 253 slots: 8.2 bytes a key filled in
 * key order, 9.2 in random order. Inner nodes hold no copies of keys
 * either: their separators point to entries. A separator is always the
 * smallest entry under the child to its right; removing that entry moves
 * the separator to the entry's successor, so a removed entry is never
 * compared against.
 *
 * Leaves stay full when keys come in order, since a leaf that overflows at
 * its end keeps its entries and starts a new leaf with the new one. In
 * random order a full leaf first evens out with a neighbour that has room
 * and splits only when neither has, which keeps leaves about seven-eighths
 * full rather than the two-thirds of plain splitting. A leaf that falls
 * below half full on removal merges with a neighbour, or evens out with it
 * when both would not fit in one.
 *
 * The index neither refs nor frees entries: the store's table owns them,
 * and the store's lock guards the index.
 */
#include "config.h"

#include <string.h>

#include "storage/kv-index.h"

/* With malloc's 8-byte chunk header, a node fills a 2 KiB chunk exactly. */
#define NODE_SIZE 2040
#define LEAF_SLOTS 253
#define INNER_SLOTS 127
#define LEAF_MIN (LEAF_SLOTS / 2)
#define INNER_MIN (INNER_SLOTS / 2)
/* Inner nodes other than the root have at least INNER_MIN children, so no
 * index that a guint can count needs more than 7 levels. */
#define MAX_DEPTH 16

typedef struct
{
  guint n;        /* entries in a leaf, children in an inner node */
  guint height;   /* 0 for a leaf */
} Node;

typedef struct _Leaf Leaf;

struct _Leaf
{
  Node node;
  Leaf *next;     /* the next leaf in key order */
  KvEntry *entries[LEAF_SLOTS];
};

typedef struct
{
  Node node;
  /* separators[i] is the smallest entry under children[i + 1]. */
  KvEntry *separators[INNER_SLOTS - 1];
  Node *children[INNER_SLOTS];
} Inner;

G_STATIC_ASSERT (sizeof (Leaf) == NODE_SIZE);
/* An inner node has a spare pointer's room, allocated all the same. */
G_STATIC_ASSERT (sizeof (Inner) + sizeof (gpointer) == NODE_SIZE);

struct _KvIndex
{
  Node *root;
  guint size;
  guint stamp;      /* changes on every insertion and removal */
  gsize n_nodes;
};

typedef struct
{
  KvIndex *index;
  Leaf *leaf;
  guint pos;
  guint stamp;
} RealIter;

G_STATIC_ASSERT (sizeof (RealIter) <= sizeof (KvIndexIter));

/* The way from the root to a leaf: each inner node, and the child taken. */
typedef struct
{
  Inner *nodes[MAX_DEPTH];
  guint slots[MAX_DEPTH];
  guint depth;
} Path;

#define PTR_SIZE (sizeof (gpointer))

/* Byte order, then length, as the store lists keys. */
static inline int
compare_key (const KvEntry *entry,
             const char    *key,
             gsize          key_len)
{
  gsize len;
  const char *entry_key = kv_entry_peek_key (entry, &len);
  int cmp = memcmp (entry_key, key, MIN (len, key_len));

  if (cmp != 0)
    return cmp;
  return (len > key_len) - (len < key_len);
}

static int
compare_entries (const KvEntry *a,
                 const KvEntry *b)
{
  gsize len;
  const char *key = kv_entry_peek_key (b, &len);

  return compare_key (a, key, len);
}

/* The child whose range holds @key: the one after the last separator that
 * is not greater than @key. */
static guint
inner_find (const Inner *inner,
            const char  *key,
            gsize        key_len)
{
  guint lo = 0, hi = inner->node.n - 1;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;

      if (compare_key (inner->separators[mid], key, key_len) <= 0)
        lo = mid + 1;
      else
        hi = mid;
    }

  return lo;
}

/* The first slot whose entry is not less than @key. */
static guint
leaf_find (const Leaf *leaf,
           const char *key,
           gsize       key_len,
           gboolean   *found)
{
  guint lo = 0, hi = leaf->node.n;

  *found = FALSE;
  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      int cmp = compare_key (leaf->entries[mid], key, key_len);

      if (cmp < 0)
        lo = mid + 1;
      else
        {
          hi = mid;
          if (cmp == 0)
            *found = TRUE;
        }
    }

  return lo;
}

static Leaf *
descend (KvIndex    *self,
         const char *key,
         gsize       key_len,
         Path       *path)
{
  Node *node = self->root;

  if (path != NULL)
    path->depth = 0;

  while (node->height > 0)
    {
      Inner *inner = (Inner *) node;
      guint slot = inner_find (inner, key, key_len);

      if (path != NULL)
        {
          g_assert (path->depth < MAX_DEPTH);
          path->nodes[path->depth] = inner;
          path->slots[path->depth] = slot;
          path->depth++;
        }
      node = inner->children[slot];
    }

  return (Leaf *) node;
}

static Leaf *
leaf_new (KvIndex *self)
{
  Leaf *leaf = g_malloc (NODE_SIZE);

  leaf->node.n = 0;
  leaf->node.height = 0;
  leaf->next = NULL;
  self->n_nodes++;

  return leaf;
}

static Inner *
inner_new (KvIndex *self,
           guint    height)
{
  Inner *inner = g_malloc (NODE_SIZE);

  inner->node.n = 0;
  inner->node.height = height;
  self->n_nodes++;

  return inner;
}

static void
node_free (KvIndex *self,
           Node    *node)
{
  g_free (node);
  self->n_nodes--;
}

static void
node_free_all (Node *node)
{
  if (node->height > 0)
    {
      Inner *inner = (Inner *) node;

      for (guint i = 0; i < inner->node.n; i++)
        node_free_all (inner->children[i]);
    }
  g_free (node);
}

/* Puts @child, and before it @separator, at child slot @slot (≥ 1). */
static void
inner_insert_at (Inner   *inner,
                 guint    slot,
                 KvEntry *separator,
                 Node    *child)
{
  guint n = inner->node.n;

  memmove (inner->children + slot + 1, inner->children + slot, (n - slot) * PTR_SIZE);
  inner->children[slot] = child;
  memmove (inner->separators + slot, inner->separators + slot - 1, (n - slot) * PTR_SIZE);
  inner->separators[slot - 1] = separator;
  inner->node.n++;
}

/* Takes out the child at @slot (≥ 1) and the separator before it. */
static void
inner_remove_at (Inner *inner,
                 guint  slot)
{
  guint n = inner->node.n;

  memmove (inner->children + slot, inner->children + slot + 1, (n - slot - 1) * PTR_SIZE);
  memmove (inner->separators + slot - 1, inner->separators + slot, (n - slot - 1) * PTR_SIZE);
  inner->node.n--;
}

/* Lays @n entries out over two neighbouring leaves, @n_a in the first. */
static void
leaves_fill (Leaf     *a,
             Leaf     *b,
             KvEntry **items,
             guint     n,
             guint     n_a)
{
  memcpy (a->entries, items, n_a * PTR_SIZE);
  a->node.n = n_a;
  memcpy (b->entries, items + n_a, (n - n_a) * PTR_SIZE);
  b->node.n = n - n_a;
}

/* Lays children and the separators between them out over two neighbouring
 * inner nodes, @n_a children in the first, and returns the separator that
 * goes between the two nodes. */
static KvEntry *
inners_fill (Inner    *a,
             Inner    *b,
             Node    **children,
             KvEntry **separators,
             guint     n,
             guint     n_a)
{
  memcpy (a->children, children, n_a * PTR_SIZE);
  memcpy (a->separators, separators, (n_a - 1) * PTR_SIZE);
  a->node.n = n_a;
  memcpy (b->children, children + n_a, (n - n_a) * PTR_SIZE);
  memcpy (b->separators, separators + n_a, (n - n_a - 1) * PTR_SIZE);
  b->node.n = n - n_a;

  return separators[n_a - 1];
}

/* Puts @child, whose smallest entry is @separator, right after the child
 * that @path took at its deepest level, splitting inner nodes up the path
 * while they are full. */
static void
insert_child (KvIndex  *self,
              Path     *path,
              KvEntry  *separator,
              Node     *child)
{
  for (guint depth = path->depth; depth > 0; depth--)
    {
      Inner *inner = path->nodes[depth - 1];
      guint slot = path->slots[depth - 1] + 1;
      Node *children[INNER_SLOTS + 1];
      KvEntry *separators[INNER_SLOTS];
      Inner *sibling;

      if (inner->node.n < INNER_SLOTS)
        {
          inner_insert_at (inner, slot, separator, child);
          return;
        }

      memcpy (children, inner->children, slot * PTR_SIZE);
      children[slot] = child;
      memcpy (children + slot + 1, inner->children + slot, (INNER_SLOTS - slot) * PTR_SIZE);
      memcpy (separators, inner->separators, (slot - 1) * PTR_SIZE);
      separators[slot - 1] = separator;
      memcpy (separators + slot, inner->separators + slot - 1, (INNER_SLOTS - slot) * PTR_SIZE);

      /* Inner nodes split in the middle even for keys in order: they are
       * few, and halves keep every one of them at least half full. */
      sibling = inner_new (self, inner->node.height);
      separator = inners_fill (inner, sibling, children, separators,
                               INNER_SLOTS + 1, (INNER_SLOTS + 1) / 2);
      child = &sibling->node;
    }

  {
    Inner *root = inner_new (self, self->root->height + 1);

    root->children[0] = self->root;
    root->children[1] = child;
    root->separators[0] = separator;
    root->node.n = 2;
    self->root = &root->node;
  }
}

/* Inserts @entry at @pos of the full @leaf. */
static void
leaf_overflow (KvIndex *self,
               Path    *path,
               Leaf    *leaf,
               guint    pos,
               KvEntry *entry)
{
  KvEntry *items[2 * LEAF_SLOTS + 1];
  guint n = LEAF_SLOTS + 1;
  Leaf *sibling;
  guint n_a;

  memcpy (items, leaf->entries, pos * PTR_SIZE);
  items[pos] = entry;
  memcpy (items + pos + 1, leaf->entries + pos, (LEAF_SLOTS - pos) * PTR_SIZE);

  if (path->depth > 0)
    {
      Inner *parent = path->nodes[path->depth - 1];
      guint slot = path->slots[path->depth - 1];
      Leaf *left = slot > 0 ? (Leaf *) parent->children[slot - 1] : NULL;
      Leaf *right = slot + 1 < parent->node.n ? (Leaf *) parent->children[slot + 1] : NULL;
      guint left_room = left != NULL ? LEAF_SLOTS - left->node.n : 0;
      guint right_room = right != NULL ? LEAF_SLOTS - right->node.n : 0;

      if (right_room > 0 && right_room >= left_room)
        {
          memcpy (items + n, right->entries, right->node.n * PTR_SIZE);
          n += right->node.n;
          leaves_fill (leaf, right, items, n, (n + 1) / 2);
          parent->separators[slot] = right->entries[0];
          return;
        }
      if (left_room > 0)
        {
          memmove (items + left->node.n, items, n * PTR_SIZE);
          memcpy (items, left->entries, left->node.n * PTR_SIZE);
          n += left->node.n;
          leaves_fill (left, leaf, items, n, (n + 1) / 2);
          parent->separators[slot - 1] = leaf->entries[0];
          return;
        }
    }

  /* At either end, the full leaf is most likely part of a run of keys in
   * order, ascending or descending: it stays full and the new entry starts
   * a leaf of its own. A new entry can only go first in the very first
   * leaf, since it is greater than the separator that led to any other. */
  if (pos == LEAF_SLOTS)
    n_a = LEAF_SLOTS;
  else if (pos == 0)
    n_a = 1;
  else
    n_a = n / 2;

  sibling = leaf_new (self);
  leaves_fill (leaf, sibling, items, n, n_a);
  sibling->next = leaf->next;
  leaf->next = sibling;
  insert_child (self, path, sibling->entries[0], &sibling->node);
}

/* Of the two neighbours of the child at @slot, the one to merge or even
 * out with: the smaller, so that a merge is more likely. Returns the slot
 * of the first child of the pair. */
static guint
pick_pair (const Inner *parent,
           guint        slot)
{
  if (slot == 0)
    return 0;
  if (slot + 1 == parent->node.n)
    return slot - 1;
  return parent->children[slot - 1]->n <= parent->children[slot + 1]->n ? slot - 1 : slot;
}

/* After a merge took a child out of the inner node at @depth of @path,
 * merges or evens out that node in turn, up the path. */
static void
inner_rebalance (KvIndex *self,
                 Path    *path,
                 guint    depth)
{
  for (;; depth--)
    {
      Inner *inner = path->nodes[depth];
      Inner *parent, *a, *b;
      guint k;

      if (depth == 0)
        {
          /* The root has lost its last sibling: its one child takes over. */
          if (inner->node.n == 1)
            {
              self->root = inner->children[0];
              node_free (self, &inner->node);
            }
          return;
        }

      if (inner->node.n >= INNER_MIN)
        return;

      parent = path->nodes[depth - 1];
      k = pick_pair (parent, path->slots[depth - 1]);
      a = (Inner *) parent->children[k];
      b = (Inner *) parent->children[k + 1];

      if (a->node.n + b->node.n <= INNER_SLOTS)
        {
          a->separators[a->node.n - 1] = parent->separators[k];
          memcpy (a->separators + a->node.n, b->separators, (b->node.n - 1) * PTR_SIZE);
          memcpy (a->children + a->node.n, b->children, b->node.n * PTR_SIZE);
          a->node.n += b->node.n;
          node_free (self, &b->node);
          inner_remove_at (parent, k + 1);
          continue;
        }
      else
        {
          Node *children[2 * INNER_SLOTS];
          KvEntry *separators[2 * INNER_SLOTS - 1];
          guint n_a = a->node.n, n = a->node.n + b->node.n;

          memcpy (children, a->children, n_a * PTR_SIZE);
          memcpy (children + n_a, b->children, b->node.n * PTR_SIZE);
          memcpy (separators, a->separators, (n_a - 1) * PTR_SIZE);
          separators[n_a - 1] = parent->separators[k];
          memcpy (separators + n_a, b->separators, (b->node.n - 1) * PTR_SIZE);
          parent->separators[k] = inners_fill (a, b, children, separators, n, n / 2);
          return;
        }
    }
}

/* Merges or evens out @leaf, the end of @path, if it is under half full. */
static void
leaf_rebalance (KvIndex *self,
                Path    *path,
                Leaf    *leaf)
{
  Inner *parent;
  Leaf *a, *b;
  guint k;

  if (leaf->node.n >= LEAF_MIN || path->depth == 0)
    return;

  parent = path->nodes[path->depth - 1];
  k = pick_pair (parent, path->slots[path->depth - 1]);
  a = (Leaf *) parent->children[k];
  b = (Leaf *) parent->children[k + 1];

  if (a->node.n + b->node.n <= LEAF_SLOTS)
    {
      memcpy (a->entries + a->node.n, b->entries, b->node.n * PTR_SIZE);
      a->node.n += b->node.n;
      a->next = b->next;
      node_free (self, &b->node);
      inner_remove_at (parent, k + 1);
      inner_rebalance (self, path, path->depth - 1);
    }
  else
    {
      KvEntry *items[2 * LEAF_SLOTS];
      guint n = a->node.n + b->node.n;

      memcpy (items, a->entries, a->node.n * PTR_SIZE);
      memcpy (items + a->node.n, b->entries, b->node.n * PTR_SIZE);
      leaves_fill (a, b, items, n, n / 2);
      parent->separators[k] = b->entries[0];
    }
}

/* The first entry of a leaf is also a separator, in the deepest inner node
 * on its path that was entered by any child but the first (none for the
 * very first leaf). */
static void
path_replace_separator (Path          *path,
                        const KvEntry *old_entry,
                        KvEntry       *new_entry)
{
  for (guint depth = path->depth; depth > 0; depth--)
    {
      Inner *inner = path->nodes[depth - 1];
      guint slot = path->slots[depth - 1];

      if (slot > 0)
        {
          g_assert (inner->separators[slot - 1] == old_entry);
          inner->separators[slot - 1] = new_entry;
          return;
        }
    }
}

/**
 * kv_index_new:
 *
 * Returns: (transfer full): a new, empty index
 */
KvIndex *
kv_index_new (void)
{
  KvIndex *self = g_new0 (KvIndex, 1);

  self->root = &leaf_new (self)->node;

  return self;
}

/**
 * kv_index_free:
 * @self: (nullable): an index
 *
 * Frees the index but not the entries in it.
 */
void
kv_index_free (KvIndex *self)
{
  if (self == NULL)
    return;

  node_free_all (self->root);
  g_free (self);
}

/**
 * kv_index_insert:
 * @self: an index
 * @entry: (transfer none): an entry whose key is not in @self yet
 *
 * Adds @entry to the index without taking a reference: it must stay alive
 * until it is removed or replaced.
 */
void
kv_index_insert (KvIndex *self,
                 KvEntry *entry)
{
  Path path;
  Leaf *leaf;
  const char *key;
  gsize key_len;
  guint pos;
  gboolean found;

  g_return_if_fail (self != NULL);
  g_return_if_fail (entry != NULL);

  key = kv_entry_peek_key (entry, &key_len);
  leaf = descend (self, key, key_len, &path);
  pos = leaf_find (leaf, key, key_len, &found);
  g_return_if_fail (!found);

  if (leaf->node.n < LEAF_SLOTS)
    {
      memmove (leaf->entries + pos + 1, leaf->entries + pos, (leaf->node.n - pos) * PTR_SIZE);
      leaf->entries[pos] = entry;
      leaf->node.n++;
    }
  else
    leaf_overflow (self, &path, leaf, pos, entry);

  self->size++;
  self->stamp++;
}

/**
 * kv_index_replace:
 * @self: an index
 * @old_entry: an entry in @self
 * @new_entry: (transfer none): an entry with the same key
 *
 * Puts @new_entry where @old_entry was, in O(log n) and without moving
 * anything else: iterators stay valid.
 */
void
kv_index_replace (KvIndex *self,
                  KvEntry *old_entry,
                  KvEntry *new_entry)
{
  Path path;
  Leaf *leaf;
  const char *key;
  gsize key_len;
  guint pos;
  gboolean found;

  g_return_if_fail (self != NULL);
  g_return_if_fail (old_entry != NULL);
  g_return_if_fail (new_entry != NULL);
  g_return_if_fail (kv_entry_equal (old_entry, new_entry));

  key = kv_entry_peek_key (old_entry, &key_len);
  leaf = descend (self, key, key_len, &path);
  pos = leaf_find (leaf, key, key_len, &found);
  g_return_if_fail (found && leaf->entries[pos] == old_entry);

  leaf->entries[pos] = new_entry;
  if (pos == 0)
    path_replace_separator (&path, old_entry, new_entry);
}

/**
 * kv_index_remove:
 * @self: an index
 * @entry: an entry in @self
 *
 * Takes @entry out of the index; the caller may free it afterwards.
 */
void
kv_index_remove (KvIndex       *self,
                 const KvEntry *entry)
{
  Path path;
  Leaf *leaf;
  const char *key;
  gsize key_len;
  guint pos;
  gboolean found;

  g_return_if_fail (self != NULL);
  g_return_if_fail (entry != NULL);

  key = kv_entry_peek_key (entry, &key_len);
  leaf = descend (self, key, key_len, &path);
  pos = leaf_find (leaf, key, key_len, &found);
  g_return_if_fail (found && leaf->entries[pos] == entry);

  memmove (leaf->entries + pos, leaf->entries + pos + 1, (leaf->node.n - pos - 1) * PTR_SIZE);
  leaf->node.n--;
  self->size--;
  self->stamp++;

  /* The successor takes the entry's place as a separator. When the leaf is
   * now empty, that is the first entry of the next leaf, which is the
   * neighbour this leaf merges with unless the separator goes with it. */
  if (pos == 0)
    {
      KvEntry *successor = NULL;

      if (leaf->node.n > 0)
        successor = leaf->entries[0];
      else if (leaf->next != NULL)
        successor = leaf->next->entries[0];
      path_replace_separator (&path, entry, successor);
    }

  leaf_rebalance (self, &path, leaf);
}

/**
 * kv_index_get_size:
 * @self: an index
 *
 * Returns: how many entries @self holds
 */
guint
kv_index_get_size (KvIndex *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->size;
}

/**
 * kv_index_get_memory:
 * @self: an index
 *
 * The bytes allocated for the index, not counting the entries. Each node
 * is one allocation of 2040 bytes, which glibc's malloc serves from a
 * 2 KiB chunk.
 *
 * Returns: the index's size in memory, in bytes
 */
gsize
kv_index_get_memory (KvIndex *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return sizeof (KvIndex) + self->n_nodes * NODE_SIZE;
}

/**
 * kv_index_iter_init_after:
 * @iter: an uninitialized #KvIndexIter
 * @self: an index
 * @key: (nullable) (array length=key_len): where to start, or %NULL for
 *   the first entry
 * @key_len: length of @key
 * @inclusive: whether to start at an entry whose key is @key
 *
 * Sets @iter to the first entry whose key is greater than @key (or equal
 * to it, if @inclusive), in O(log n). A listing starts after the last key
 * of the page before; a prefix scan starts at the prefix, inclusive.
 */
void
kv_index_iter_init_after (KvIndexIter *iter,
                          KvIndex     *self,
                          const char  *key,
                          gsize        key_len,
                          gboolean     inclusive)
{
  RealIter *ri = (RealIter *) iter;
  Leaf *leaf;
  guint pos = 0;

  g_return_if_fail (iter != NULL);
  g_return_if_fail (self != NULL);

  if (key == NULL)
    {
      Node *node = self->root;

      while (node->height > 0)
        node = ((Inner *) node)->children[0];
      leaf = (Leaf *) node;
    }
  else
    {
      gboolean found;

      leaf = descend (self, key, key_len, NULL);
      pos = leaf_find (leaf, key, key_len, &found);
      if (found && !inclusive)
        pos++;
    }

  ri->index = self;
  ri->leaf = leaf;
  ri->pos = pos;
  ri->stamp = self->stamp;
}

/**
 * kv_index_iter_next:
 * @iter: an initialized #KvIndexIter
 *
 * Returns: (transfer none) (nullable): the next entry in key order, or
 *   %NULL after the last one
 */
KvEntry *
kv_index_iter_next (KvIndexIter *iter)
{
  RealIter *ri = (RealIter *) iter;

  g_return_val_if_fail (iter != NULL, NULL);
  g_return_val_if_fail (ri->stamp == ri->index->stamp, NULL);

  while (ri->leaf != NULL && ri->pos >= ri->leaf->node.n)
    {
      ri->leaf = ri->leaf->next;
      ri->pos = 0;
    }
  if (ri->leaf == NULL)
    return NULL;

  return ri->leaf->entries[ri->pos++];
}

typedef struct
{
  Leaf *next_leaf;          /* where the chain of leaves should go next */
  const KvEntry *last;      /* the greatest entry seen so far */
  gsize entries;
  gsize nodes;
} CheckState;

static gboolean
check_node (Node           *node,
            gboolean        is_root,
            CheckState     *state,
            const KvEntry **first)
{
  state->nodes++;

  if (node->height == 0)
    {
      Leaf *leaf = (Leaf *) node;

      if (leaf->node.n > LEAF_SLOTS || (!is_root && leaf->node.n == 0))
        {
          g_critical ("KvIndex: a leaf holds %u entries", leaf->node.n);
          return FALSE;
        }
      if (state->next_leaf != NULL && leaf != state->next_leaf)
        {
          g_critical ("KvIndex: the chain of leaves skips one");
          return FALSE;
        }
      for (guint i = 0; i < leaf->node.n; i++)
        {
          if (state->last != NULL && compare_entries (state->last, leaf->entries[i]) >= 0)
            {
              g_critical ("KvIndex: entries out of order");
              return FALSE;
            }
          state->last = leaf->entries[i];
        }
      state->entries += leaf->node.n;
      state->next_leaf = leaf->next;
      *first = leaf->node.n > 0 ? leaf->entries[0] : NULL;
      return TRUE;
    }
  else
    {
      Inner *inner = (Inner *) node;
      guint min = is_root ? 2 : INNER_MIN;

      if (inner->node.n < min || inner->node.n > INNER_SLOTS)
        {
          g_critical ("KvIndex: an inner node has %u children", inner->node.n);
          return FALSE;
        }
      for (guint i = 0; i < inner->node.n; i++)
        {
          const KvEntry *child_first;

          if (inner->children[i]->height + 1 != inner->node.height)
            {
              g_critical ("KvIndex: a child at the wrong height");
              return FALSE;
            }
          if (!check_node (inner->children[i], FALSE, state, &child_first))
            return FALSE;
          if (i == 0)
            *first = child_first;
          else if (inner->separators[i - 1] != child_first)
            {
              g_critical ("KvIndex: a separator is not the first entry to its right");
              return FALSE;
            }
        }
      return TRUE;
    }
}

/**
 * kv_index_check:
 * @self: an index
 *
 * Checks the tree's invariants, in O(n): for tests.
 *
 * Returns: %TRUE if they hold; otherwise a critical warning says which
 *   does not
 */
gboolean
kv_index_check (KvIndex *self)
{
  CheckState state = { NULL, NULL, 0, 0 };
  const KvEntry *first;

  g_return_val_if_fail (self != NULL, FALSE);

  if (!check_node (self->root, TRUE, &state, &first))
    return FALSE;
  if (state.next_leaf != NULL)
    {
      g_critical ("KvIndex: the chain of leaves goes on past the last");
      return FALSE;
    }
  if (state.entries != self->size || state.nodes != self->n_nodes)
    {
      g_critical ("KvIndex: %" G_GSIZE_FORMAT " entries in %" G_GSIZE_FORMAT " nodes, "
                  "counted as %u in %" G_GSIZE_FORMAT,
                  state.entries, state.nodes, self->size, self->n_nodes);
      return FALSE;
    }

  return TRUE;
}
