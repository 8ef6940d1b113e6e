#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file-errors.h"
#include "fuse-uring-uapi.h"
#include "uring.h"

/* Directories change only with the profile: the kernel may cache them for a second. */
#define DIRECTORY_TIMEOUT_S 1.0
#define INODE_BUCKETS 4096
#define RANDOM_POOL_BYTES 4096
/* How long a start waits for the kernel's INIT to settle the transport (it is queued by mount). */
#define TRANSPORT_WAIT_S 5
/* Beyond this many unwritten audit lines, opens fail (EIO): no token goes out unaudited. */
#define AUDIT_QUEUE_LIMIT 65536

struct tree {
  atomic_int refs;
  vnode *nodes;
  size_t count;
  int32_t *index; /* path id -> node position, -1 */
  uint32_t index_size;
};

/*
 * A file inode handed out by one lookup. Its number is (sequence << 24) |
 * path id, never reused, so no two opens through separate lookups share an
 * inode, and so never share page-cache pages. The record exists once the
 * inode is opened: it remembers the attributes of the token opened on it.
 */
typedef struct inode_record {
  uint64_t ino;
  size_t size;
  uint32_t mode, uid, gid;
  /*
   * Opens of this inode begun and done minting (begin_open_mint,
   * end_open_mint): a getattr (the reader's fstat, perhaps on another CPU's
   * ring queue) waits until as many are done as had begun when it came, so
   * it sees the size of the token the reader is about to read, and opens
   * begun after it (a reader reopening the inode in a loop) cannot keep it
   * waiting. Over io_uring an open's reply leaves only at its queue thread's
   * next wait, after the mint; this keeps the order whatever the transport
   * does. With several opens of one inode, the size is the last mint's.
   */
  unsigned opens_begun, opens_done;
  struct inode_record *next;
} inode_record;

/*
 * Who opened a handle that mints per read, kept for the mints of its later
 * reads (see op_read): the reader caveat and the reader rules see the opener.
 */
typedef struct {
  reader_identity who;
  reader_cgroups cgroups;
} opener;

/* Tokens kept per handle for continuing reads (src/fs/token-reads.ts: TOKEN_READS_KEPT). */
#define TOKEN_READS_KEPT 8

/* One token a handle serves, and where its last read ended. */
typedef struct {
  uint8_t *bytes;
  size_t length;
  size_t capacity;
  size_t next;
} token_read;

/*
 * One open file: its token (or, minting per read, its tokens: oldest first,
 * the first the one minted at open), wiped on release.
 */
typedef struct handle {
  /*
   * Held by the open from before its reply until its token is minted, and by
   * every read and the release: a read or release that reaches another
   * thread (another CPU's ring queue) waits for the open's mint to finish.
   */
  pthread_mutex_t lock;
  struct handle *prev, *next;
  int failed; /* minting failed after the open was answered: reads get EIO */
  token_read reads[TOKEN_READS_KEPT];
  size_t count;
  int open_token_claimed; /* a read has taken the token minted at open */
  opener *per_read;       /* set: every read from offset 0 mints afresh, for this opener */
} handle;

/*
 * WAITING for the kernel's INIT; STARTING once its reply claimed the choice
 * (the rings may be starting: only that reply settles it now, never the
 * start's timeout, or a ring the kernel switched to would be left running
 * unowned); SETTLED.
 */
enum transport_state { TRANSPORT_WAITING, TRANSPORT_STARTING, TRANSPORT_SETTLED };

/* How long the /dev/fuse thread lets FORGETs gather over io_uring (see serve). */
static const struct timespec FORGET_BATCH_WAIT = {.tv_sec = 0, .tv_nsec = 2 * 1000 * 1000};

/* from_gvisor_gofer's answer for a pid, remembered for GOFER_ANSWER_MS. */
#define GOFER_ANSWER_SLOTS 64
#define GOFER_ANSWER_MS 1000
typedef struct {
  pid_t pid;
  int gofer;
  int64_t until_ms; /* CLOCK_MONOTONIC; 0: empty */
} gofer_answer;

struct mintfs_session {
  struct fuse_session *se;
  pthread_t thread;
  int thread_started;
  /* The transport: settled once by the INIT reply (or at once for the classic loop). */
  pthread_mutex_t transport_lock;
  pthread_cond_t transport_cond;
  enum transport_state transport_state;
  fuse_ring *ring; /* NULL: /dev/fuse reads */
  char transport_reason[256];
  /* Written by the /dev/fuse thread, read by the writev hook on any thread. */
  _Atomic uint64_t init_unique;
  int kernel_offers_uring;
  pthread_mutex_t lock; /* guards `current` */
  tree *current;
  pthread_mutex_t audit_lock; /* guards the audit queue */
  audit_event *audit_head, *audit_tail;
  size_t audit_length;
  uint64_t audit_refused;
  time_t started;    /* every node's times: when the mount started */
  int mint_per_read; /* every handle mints per read, not only gVisor's gofer's */
  /*
   * File inodes the kernel forgot. FORGETs come on /dev/fuse alone, one per
   * token read: they are only noted here (under this small lock) and their
   * records dropped in one pass by the next open, so the /dev/fuse thread
   * does not take the inode lock from the ring threads once a read. A
   * forgotten node id is never used again, so a late drop changes nothing.
   */
  pthread_mutex_t forget_lock;
  uint64_t *forgotten;
  size_t forgotten_count, forgotten_capacity;
  /*
   * Requests are served on several threads at once: the /dev/fuse thread
   * and, over io_uring, one thread per CPU's queue (uring.c). A lock shared
   * by every request made the ring threads take turns (perf, eight readers:
   * a tenth of the daemon's samples in futex, and CPU left idle), so each
   * piece of state below has a small lock of its own, held for a copy or a
   * list operation, never across a system call or a mint. (A handle's own
   * lock is held by its open through the mint, and by each read: it orders
   * that one handle's requests, and no other lock is taken before it.)
   */
  _Atomic uint64_t next_sequence;
  pthread_mutex_t inode_lock; /* guards inodes */
  pthread_cond_t minted;      /* with inode_lock: an open's mint is done */
  inode_record *inodes[INODE_BUCKETS];
  pthread_mutex_t handles_lock; /* guards the handle list (each handle has its own lock) */
  handle *first_handle;         /* every open handle, so stop can wipe them */
  pthread_mutex_t random_lock;  /* guards the random pool */
  uint8_t random_pool[RANDOM_POOL_BYTES];
  size_t random_used;
  reader_cache readers;       /* locks itself (reader.c) */
  pthread_mutex_t gofer_lock; /* guards gofer_answers */
  gofer_answer gofer_answers[GOFER_ANSWER_SLOTS];
  /* Read by the JavaScript thread: */
  atomic_uint_fast64_t open_handles;
  atomic_uint_fast64_t reply_failures;
  atomic_uint_fast64_t invalidation_failures;
  atomic_int_fast64_t last_activity_ms;
};

/* ---- trees ---- */

void vnode_clear(vnode *n) {
  free(n->name);
  mint_template_free(n->tpl);
  reader_rules_free(n->rules);
  free(n->children);
}

tree *tree_new(vnode *nodes, size_t count) {
  tree *t = calloc(1, sizeof(*t));
  uint32_t index_size = ROOT_PATH_ID + 1;
  for (size_t i = 0; i < count; i++)
    if (nodes[i].path_id >= index_size) index_size = nodes[i].path_id + 1;
  int32_t *index = t == NULL ? NULL : malloc(sizeof(int32_t) * index_size);
  if (t == NULL || index == NULL) {
    free(t);
    free(index);
    for (size_t i = 0; i < count; i++) vnode_clear(&nodes[i]);
    free(nodes);
    return NULL;
  }
  for (uint32_t i = 0; i < index_size; i++) index[i] = -1;
  for (size_t i = 0; i < count; i++) index[nodes[i].path_id] = (int32_t)i;
  atomic_init(&t->refs, 1);
  t->nodes = nodes;
  t->count = count;
  t->index = index;
  t->index_size = index_size;
  return t;
}

static const vnode *tree_node(const tree *t, uint32_t path_id) {
  if (t == NULL || path_id >= t->index_size || t->index[path_id] < 0) return NULL;
  return &t->nodes[t->index[path_id]];
}

void tree_release(tree *t) {
  if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1) return;
  for (size_t i = 0; i < t->count; i++) vnode_clear(&t->nodes[i]);
  free(t->nodes);
  free(t->index);
  free(t);
}

static tree *acquire_tree(mintfs_session *s) {
  pthread_mutex_lock(&s->lock);
  tree *t = s->current;
  atomic_fetch_add(&t->refs, 1);
  pthread_mutex_unlock(&s->lock);
  return t;
}

/* ---- helpers ---- */

static int64_t clock_ms(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void touch(mintfs_session *s) {
  atomic_store(&s->last_activity_ms, clock_ms(CLOCK_MONOTONIC));
}

static uint32_t path_id_of(fuse_ino_t ino) { return (uint32_t)(ino & MAX_PATH_ID); }
static int is_file_inode(fuse_ino_t ino) { return (ino >> PATH_ID_BITS) != 0; }

/*
 * Whether the request comes from gVisor's gofer (runsc), which reads the mount
 * on behalf of every process in a gVisor sandbox. gVisor keeps one host
 * handle per path it has cached and shares it between the sandbox's opens,
 * so two agent processes reading at once would get one token; it drops a
 * cached path whose inode number has changed. So the gofer is shown each
 * lookup's own node id as st_ino (below), and every open in the sandbox gets
 * a handle, and a token, of its own.
 */
static int is_gvisor_exe(const char *exe) {
  const char *slash = strrchr(exe, '/');
  return strcmp(slash == NULL ? exe : slash + 1, "runsc") == 0;
}

/*
 * Asked on every lookup and getattr of a file, and readlink of /proc/PID/exe
 * was a tenth of the daemon's time with eight readers (perf), so the answer
 * is remembered per pid for a second. It only picks which inode number stat
 * shows, never whether a request is served: a pid reused within the second
 * gets the old answer for at most that long, and the cost is a shared token
 * in gVisor or a changing st_ino elsewhere, never access.
 */
static int from_gvisor_gofer(mintfs_session *s, fuse_req_t req) {
  pid_t pid = fuse_req_ctx(req)->pid;
  int64_t now = clock_ms(CLOCK_MONOTONIC);
  gofer_answer *remembered = &s->gofer_answers[(unsigned)pid % GOFER_ANSWER_SLOTS];
  pthread_mutex_lock(&s->gofer_lock);
  gofer_answer known = *remembered;
  pthread_mutex_unlock(&s->gofer_lock);
  if (known.until_ms != 0 && known.pid == pid && now < known.until_ms) return known.gofer;
  char link[64], exe[READER_PATH_MAX];
  snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
  ssize_t n = readlink(link, exe, sizeof(exe) - 1);
  int gofer = 0;
  if (n > 0) {
    exe[n] = '\0';
    gofer = is_gvisor_exe(exe);
  }
  pthread_mutex_lock(&s->gofer_lock);
  *remembered = (gofer_answer){.pid = pid, .gofer = gofer, .until_ms = now + GOFER_ANSWER_MS};
  pthread_mutex_unlock(&s->gofer_lock);
  return gofer;
}

static void node_attr(const vnode *n, fuse_ino_t ino, size_t size, time_t at, int per_lookup_ino,
                      struct stat *st) {
  memset(st, 0, sizeof(*st));
  st->st_atime = st->st_mtime = st->st_ctime = at;
  /*
   * stat shows the path's stable id, not the per-lookup node id: tools such as
   * cp compare st_ino before and after opening and would call the file
   * replaced. The kernel keys its inodes (and page cache) by node id alone.
   * gVisor's gofer alone sees the node id (from_gvisor_gofer).
   */
  st->st_ino = per_lookup_ino ? ino : path_id_of(ino);
  st->st_mode = (n->is_dir ? S_IFDIR : S_IFREG) | n->mode;
  st->st_nlink = n->is_dir ? 2 : 1;
  st->st_uid = n->uid;
  st->st_gid = n->gid;
  st->st_size = n->is_dir ? 0 : (off_t)size;
  st->st_blksize = 4096;
}

static size_t record_bucket(uint64_t ino) { return (ino ^ (ino >> PATH_ID_BITS)) % INODE_BUCKETS; }

/* Holding inode_lock. */
static inode_record **record_slot(mintfs_session *s, uint64_t ino) {
  inode_record **slot = &s->inodes[record_bucket(ino)];
  while (*slot != NULL && (*slot)->ino != ino) slot = &(*slot)->next;
  return slot;
}

/* Holding inode_lock. */
static void forget_inode(mintfs_session *s, uint64_t ino) {
  inode_record **slot = record_slot(s, ino);
  if (*slot == NULL) return;
  inode_record *gone = *slot;
  *slot = gone->next;
  free(gone);
}

/* 16 random bytes for a token id; the pool is refilled from the kernel and used bytes are wiped. */
static int random_id(mintfs_session *s, uint8_t out[TOKEN_ID_BYTES]) {
  pthread_mutex_lock(&s->random_lock);
  if (s->random_used + TOKEN_ID_BYTES > sizeof(s->random_pool)) {
    size_t filled = 0;
    while (filled < sizeof(s->random_pool)) {
      ssize_t n = getrandom(s->random_pool + filled, sizeof(s->random_pool) - filled, 0);
      if (n < 0 && errno != EINTR) {
        pthread_mutex_unlock(&s->random_lock);
        return -1;
      }
      if (n > 0) filled += (size_t)n;
    }
    s->random_used = 0;
  }
  memcpy(out, s->random_pool + s->random_used, TOKEN_ID_BYTES);
  wipe(s->random_pool + s->random_used, TOKEN_ID_BYTES);
  s->random_used += TOKEN_ID_BYTES;
  pthread_mutex_unlock(&s->random_lock);
  return 0;
}

/* Queues an audit event; -1 when it cannot be (the queue is full, or no memory). */
static int emit(mintfs_session *s, enum audit_kind kind, const vnode *n, const char *reason,
                const reader_identity *who, const mint_info *info) {
  audit_event *ev = malloc(sizeof(*ev));
  if (ev == NULL) return -1;
  memset(ev, 0, offsetof(audit_event, who));
  ev->kind = kind;
  ev->path_id = n->path_id;
  ev->reason = reason;
  ev->who = *who;
  ev->reader_caveat = n->reader_caveat;
  if (n->tpl != NULL) snprintf(ev->key_id, sizeof(ev->key_id), "%s", n->tpl->key_id);
  if (info != NULL) {
    memcpy(ev->token_id, info->token_id, sizeof(ev->token_id));
    ev->expires_s = info->expires_s;
  }
  pthread_mutex_lock(&s->audit_lock);
  int full = s->audit_length >= AUDIT_QUEUE_LIMIT;
  if (full) {
    s->audit_refused++;
  } else {
    if (s->audit_tail != NULL) s->audit_tail->next = ev;
    else s->audit_head = ev;
    s->audit_tail = ev;
    s->audit_length++;
  }
  pthread_mutex_unlock(&s->audit_lock);
  if (full) free(ev);
  return full ? -1 : 0;
}

audit_event *session_take_audit(mintfs_session *s, uint64_t *refused) {
  pthread_mutex_lock(&s->audit_lock);
  audit_event *taken = s->audit_head;
  s->audit_head = s->audit_tail = NULL;
  s->audit_length = 0;
  *refused = s->audit_refused;
  s->audit_refused = 0;
  pthread_mutex_unlock(&s->audit_lock);
  return taken;
}

static void link_handle(mintfs_session *s, handle *h) {
  pthread_mutex_lock(&s->handles_lock);
  h->prev = NULL;
  h->next = s->first_handle;
  if (h->next != NULL) h->next->prev = h;
  s->first_handle = h;
  pthread_mutex_unlock(&s->handles_lock);
  atomic_fetch_add(&s->open_handles, 1);
}

/* Wipes and frees a handle no request holds (its own lock not held). */
static void drop_handle(mintfs_session *s, handle *h) {
  pthread_mutex_lock(&s->handles_lock);
  if (h->prev != NULL) h->prev->next = h->next;
  else s->first_handle = h->next;
  if (h->next != NULL) h->next->prev = h->prev;
  pthread_mutex_unlock(&s->handles_lock);
  atomic_fetch_sub(&s->open_handles, 1);
  pthread_mutex_destroy(&h->lock);
  for (size_t i = 0; i < h->count; i++) {
    wipe(h->reads[i].bytes, h->reads[i].capacity);
    free(h->reads[i].bytes);
  }
  free(h->per_read);
  free(h);
}

/*
 * Every reply's status is checked: a reply the kernel refuses (the request was
 * interrupted, its caller killed) is counted, and the count is logged at stop.
 * The request is freed by the reply, so the session is read before it.
 */
#define REPLY(req, call)                                             \
  do {                                                               \
    mintfs_session *session_ = fuse_req_userdata(req);               \
    if ((call) != 0) atomic_fetch_add(&session_->reply_failures, 1); \
  } while (0)

/* ---- operations ---- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  mintfs_session *s = fuse_req_userdata(req);
  tree *t = acquire_tree(s);
  const vnode *dir = is_file_inode(parent) ? NULL : tree_node(t, path_id_of(parent));
  const vnode *found = NULL;
  if (dir != NULL && dir->is_dir) {
    for (size_t i = 0; i < dir->child_count && found == NULL; i++) {
      const vnode *child = tree_node(t, dir->children[i]);
      if (child != NULL && strcmp(child->name, name) == 0) found = child;
    }
  }
  if (found == NULL) {
    tree_release(t);
    REPLY(req, fuse_reply_err(req, dir == NULL || dir->is_dir ? MINTFS_ERR_NOT_FOUND
                                                              : MINTFS_ERR_NOT_A_DIRECTORY));
    return;
  }
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  if (found->is_dir) {
    e.ino = found->path_id;
    e.entry_timeout = DIRECTORY_TIMEOUT_S;
    e.attr_timeout = DIRECTORY_TIMEOUT_S;
  } else {
    /* A fresh inode and zero timeouts: every open looks up again and gets its own. */
    e.ino =
        (fuse_ino_t)((atomic_fetch_add(&s->next_sequence, 1) + 1) << PATH_ID_BITS) | found->path_id;
  }
  node_attr(found, e.ino, found->size, s->started, !found->is_dir && from_gvisor_gofer(s, req),
            &e.attr);
  tree_release(t);
  REPLY(req, fuse_reply_entry(req, &e));
}

/* Notes a forgotten file inode (any thread); its record goes at the next open. */
static void note_forgotten(mintfs_session *s, uint64_t ino) {
  if (!is_file_inode(ino)) return;
  pthread_mutex_lock(&s->forget_lock);
  if (s->forgotten_count == s->forgotten_capacity) {
    size_t capacity = s->forgotten_capacity == 0 ? 64 : 2 * s->forgotten_capacity;
    uint64_t *grown = realloc(s->forgotten, capacity * sizeof(uint64_t));
    if (grown != NULL) {
      s->forgotten = grown;
      s->forgotten_capacity = capacity;
    }
  }
  /* Out of memory: the record stays until stop frees every record; nothing reads it again. */
  if (s->forgotten_count < s->forgotten_capacity) s->forgotten[s->forgotten_count++] = ino;
  pthread_mutex_unlock(&s->forget_lock);
}

/* Drops the records of the inodes noted as forgotten. */
static void drop_forgotten(mintfs_session *s) {
  pthread_mutex_lock(&s->forget_lock);
  uint64_t *taken = s->forgotten;
  size_t count = s->forgotten_count;
  s->forgotten = NULL;
  s->forgotten_count = s->forgotten_capacity = 0;
  pthread_mutex_unlock(&s->forget_lock);
  if (count > 0) {
    pthread_mutex_lock(&s->inode_lock);
    for (size_t i = 0; i < count; i++) forget_inode(s, taken[i]);
    pthread_mutex_unlock(&s->inode_lock);
  }
  free(taken);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  (void)nlookup; /* every file inode is looked up once */
  note_forgotten(fuse_req_userdata(req), ino);
  fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  mintfs_session *s = fuse_req_userdata(req);
  for (size_t i = 0; i < count; i++) note_forgotten(s, forgets[i].ino);
  fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  mintfs_session *s = fuse_req_userdata(req);
  struct stat st;
  /* An opened inode keeps the attributes of its own token, even if the profile changed since. */
  inode_record record = {0};
  int recorded = 0;
  if (is_file_inode(ino)) {
    pthread_mutex_lock(&s->inode_lock);
    const inode_record *found = *record_slot(s, ino);
    const unsigned begun = found == NULL ? 0 : found->opens_begun;
    /* Wrapping counters: "done before begun" as a signed difference. */
    while (found != NULL && (int)(found->opens_done - begun) < 0) {
      pthread_cond_wait(&s->minted, &s->inode_lock);
      found = *record_slot(s, ino);
    }
    if (found != NULL) record = *found, recorded = 1;
    pthread_mutex_unlock(&s->inode_lock);
  }
  if (recorded) {
    memset(&st, 0, sizeof(st));
    st.st_ino = from_gvisor_gofer(s, req) ? ino : path_id_of(ino);
    st.st_mode = S_IFREG | record.mode;
    st.st_nlink = 1;
    st.st_uid = record.uid;
    st.st_gid = record.gid;
    st.st_size = (off_t)record.size;
    st.st_blksize = 4096;
    st.st_atime = st.st_mtime = st.st_ctime = s->started;
    REPLY(req, fuse_reply_attr(req, &st, 0));
    return;
  }
  tree *t = acquire_tree(s);
  const vnode *n = tree_node(t, path_id_of(ino));
  if (n == NULL || n->is_dir == is_file_inode(ino)) {
    tree_release(t);
    REPLY(req, fuse_reply_err(req, MINTFS_ERR_NOT_FOUND));
    return;
  }
  node_attr(n, ino, n->size, s->started, !n->is_dir && from_gvisor_gofer(s, req), &st);
  tree_release(t);
  REPLY(req, fuse_reply_attr(req, &st, n->is_dir ? DIRECTORY_TIMEOUT_S : 0));
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi) {
  (void)fi;
  mintfs_session *s = fuse_req_userdata(req);
  tree *t = acquire_tree(s);
  const vnode *dir = is_file_inode(ino) ? NULL : tree_node(t, path_id_of(ino));
  if (dir == NULL || !dir->is_dir) {
    tree_release(t);
    REPLY(req,
          fuse_reply_err(req, dir == NULL ? MINTFS_ERR_NOT_FOUND : MINTFS_ERR_NOT_A_DIRECTORY));
    return;
  }
  char *buf = malloc(size);
  if (buf == NULL) {
    tree_release(t);
    REPLY(req, fuse_reply_err(req, MINTFS_ERR_OUT_OF_MEMORY));
    return;
  }
  size_t used = 0;
  /* Offsets: 0 ".", 1 "..", then 2 + i for child i. */
  for (off_t i = off; i < (off_t)(dir->child_count + 2); i++) {
    struct stat st;
    memset(&st, 0, sizeof(st));
    const char *name;
    if (i < 2) {
      name = i == 0 ? "." : "..";
      st.st_ino = i == 0 ? dir->path_id : (dir->parent_id != 0 ? dir->parent_id : dir->path_id);
      st.st_mode = S_IFDIR;
    } else {
      const vnode *child = tree_node(t, dir->children[i - 2]);
      if (child == NULL) continue;
      name = child->name;
      st.st_ino = child->path_id;
      st.st_mode = child->is_dir ? S_IFDIR : S_IFREG;
    }
    size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
    if (used + need > size) break;
    fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
    used += need;
  }
  tree_release(t);
  REPLY(req, fuse_reply_buf(req, buf, used));
  free(buf);
}

/*
 * Mints n's token for `who` into `into` (empty before), with its audit line
 * queued first: no token is handed out without one. On failure a
 * mint-failed line says why and `into` stays empty; -1.
 */
static int mint_into(mintfs_session *s, const vnode *n, fuse_ino_t ino, const reader_identity *who,
                     token_read *into) {
  char caveat[READER_CAVEAT_MAX + 1];
  const char *failure = "out of memory or entropy";
  int failed = 0;
  if (n->reader_caveat && reader_caveat(who, caveat, sizeof(caveat)) != 0) {
    failed = 1;
    failure = "reader caveat over the caveat size limit (executable or cgroup path too long)";
  }
  uint8_t id[TOKEN_ID_BYTES];
  byte_buffer content = {0};
  mint_info info;
  failed = failed || random_id(s, id) != 0 ||
           mint_render(n->tpl, clock_ms(CLOCK_REALTIME), id, n->reader_caveat ? caveat : NULL,
                       &content, &info) != 0;
  wipe(id, sizeof(id));
  /* Queued before the token can leave: no token is handed out without its audit line. */
  if (failed || emit(s, AUDIT_MINTED, n, NULL, who, &info) != 0) {
    buffer_release(&content);
    emit(s, AUDIT_FAILED, n, failed ? failure : "audit queue full", who, NULL);
    return -1;
  }
  into->bytes = content.bytes;
  into->length = content.length;
  into->capacity = content.capacity;
  into->next = 0;
  /*
   * The open made the inode's record (begin_open_mint), and the kernel
   * forgets an inode only after its last handle is released.
   */
  pthread_mutex_lock(&s->inode_lock);
  inode_record *record = *record_slot(s, ino);
  if (record != NULL) {
    record->size = into->length;
    record->mode = n->mode;
    record->uid = n->uid;
    record->gid = n->gid;
  }
  pthread_mutex_unlock(&s->inode_lock);
  return 0;
}

/*
 * An open's record, made (with the path's attributes) or found before the
 * open is replied to, and counted as minting until end_open_mint. -1 when out
 * of memory.
 */
static int begin_open_mint(mintfs_session *s, const vnode *n, fuse_ino_t ino) {
  pthread_mutex_lock(&s->inode_lock);
  inode_record *record = *record_slot(s, ino);
  if (record == NULL) {
    record = calloc(1, sizeof(inode_record));
    if (record != NULL) {
      record->ino = ino;
      record->size = n->size;
      record->mode = n->mode;
      record->uid = n->uid;
      record->gid = n->gid;
      record->next = s->inodes[record_bucket(ino)];
      s->inodes[record_bucket(ino)] = record;
    }
  }
  if (record != NULL) record->opens_begun++;
  pthread_mutex_unlock(&s->inode_lock);
  return record == NULL ? -1 : 0;
}

/* The open's mint is done (or failed): a waiting getattr goes on. */
static void end_open_mint(mintfs_session *s, fuse_ino_t ino) {
  pthread_mutex_lock(&s->inode_lock);
  inode_record *record = *record_slot(s, ino);
  if (record != NULL) record->opens_done++;
  pthread_cond_broadcast(&s->minted);
  pthread_mutex_unlock(&s->inode_lock);
}

/*
 * Opens reply first and mint after: the reader's next request on the handle
 * (read, release) waits for the handle's lock, held from before the reply
 * until the mint is done, so the token, its attributes and its audit line
 * are all in place before any byte leaves, while the reader spends its way
 * back from open() in parallel; a getattr waits for the inode's record
 * (begin_open_mint). Files with reader rules or a reader caveat need the
 * reader's identity before the reply; the others read it after (the reader
 * is waiting for its first read by then).
 */
static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  mintfs_session *s = fuse_req_userdata(req);
  touch(s);
  drop_forgotten(s); /* records are made here: here they go, so they stay as few as open inodes */
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) != 0) {
    REPLY(req, fuse_reply_err(req, MINTFS_ERR_READ_ONLY));
    return;
  }
  tree *t = acquire_tree(s);
  const vnode *n = tree_node(t, path_id_of(ino));
  if (n == NULL || n->is_dir) {
    tree_release(t);
    REPLY(req, fuse_reply_err(req, n == NULL ? MINTFS_ERR_NOT_FOUND : MINTFS_ERR_IS_A_DIRECTORY));
    return;
  }
  /* The request (and its context) is gone once replied to. */
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  const uid_t uid = ctx->uid;
  const gid_t gid = ctx->gid;
  const pid_t pid = ctx->pid;
  const int identity_first = n->rules != NULL || n->reader_caveat;
  reader_identity who;
  reader_cgroups cgroups;
  if (identity_first) {
    reader_identify(&s->readers, uid, gid, pid, &who, &cgroups);
    const char *refusal = reader_refusal(n->rules, &who, &cgroups);
    if (refusal != NULL) {
      emit(s, AUDIT_DENIED, n, refusal, &who, NULL);
      tree_release(t);
      REPLY(req, fuse_reply_err(req, MINTFS_ERR_READER_DENIED));
      return;
    }
  }
  handle *h = calloc(1, sizeof(handle));
  if (h == NULL) {
    tree_release(t);
    REPLY(req, fuse_reply_err(req, MINTFS_ERR_OUT_OF_MEMORY));
    return;
  }
  pthread_mutex_init(&h->lock, NULL);
  pthread_mutex_lock(&h->lock);
  link_handle(s, h);
  fi->fh = (uint64_t)(uintptr_t)h;
  fi->direct_io = 1;
  fi->keep_cache = 0;
  if (begin_open_mint(s, n, ino) != 0) {
    pthread_mutex_unlock(&h->lock);
    drop_handle(s, h);
    tree_release(t);
    REPLY(req, fuse_reply_err(req, MINTFS_ERR_OUT_OF_MEMORY));
    return;
  }
  if (fuse_reply_open(req, fi) != 0) {
    /* The opener is gone (interrupted): nobody will read or release this handle. */
    atomic_fetch_add(&s->reply_failures, 1);
    end_open_mint(s, ino);
    pthread_mutex_unlock(&h->lock);
    drop_handle(s, h);
    tree_release(t);
    return;
  }

  if (!identity_first) reader_identify(&s->readers, uid, gid, pid, &who, &cgroups);
  /* gVisor's gofer reads for every process of its sandbox (remint, below). */
  if (s->mint_per_read || is_gvisor_exe(who.exe)) {
    h->per_read = malloc(sizeof(opener));
    if (h->per_read == NULL) {
      h->failed = 1; /* its reads fail with EIO */
      emit(s, AUDIT_FAILED, n, "out of memory", &who, NULL);
      end_open_mint(s, ino);
      pthread_mutex_unlock(&h->lock);
      tree_release(t);
      return;
    }
    h->per_read->who = who;
    h->per_read->cgroups = cgroups;
  }
  if (mint_into(s, n, ino, &who, &h->reads[0]) == 0) h->count = 1;
  else h->failed = 1; /* its reads fail with EIO */
  end_open_mint(s, ino);
  pthread_mutex_unlock(&h->lock);
  tree_release(t);
}

/*
 * gVisor's sentry holds one host handle per file it has cached and reads it
 * for every process of the sandbox whose open it joined there, each read at
 * the process's own offset and size (it has no page cache for shared
 * mounts), so a token per open would be one token for several processes.
 * So a handle opened by the gofer (or on a mount that mints per read) gets
 * a fresh token for every read from offset 0, and a read from N > 0
 * continues the newest token whose last read ended at N: the same rules as
 * src/fs/token-reads.ts, which says why. The mint uses the current tree
 * (keys rotate, rules change) and the opener's identity (the gofer: the
 * sandbox's processes are not visible to the host). 0, or the errno to
 * reply; a failed mint fails this read alone.
 */
static int remint(mintfs_session *s, fuse_ino_t ino, const handle *h, token_read *into) {
  tree *t = acquire_tree(s);
  const vnode *n = tree_node(t, path_id_of(ino));
  int reply = 0;
  if (n == NULL || n->is_dir) {
    reply = MINTFS_ERR_NOT_FOUND; /* the profile dropped the file since the open */
  } else {
    const char *refusal = reader_refusal(n->rules, &h->per_read->who, &h->per_read->cgroups);
    if (refusal != NULL) {
      emit(s, AUDIT_DENIED, n, refusal, &h->per_read->who, NULL);
      reply = MINTFS_ERR_READER_DENIED;
    } else if (mint_into(s, n, ino, &h->per_read->who, into) != 0) {
      reply = MINTFS_ERR_UNEXPECTED;
    }
  }
  tree_release(t);
  return reply;
}

/* Keeps a fresh token, giving up the oldest read to its end (else the oldest) when full. */
static token_read *keep_read(handle *h, const token_read *fresh) {
  if (h->count == TOKEN_READS_KEPT) {
    size_t given = 0;
    for (size_t i = 0; i < h->count; i++)
      if (h->reads[i].next >= h->reads[i].length) {
        given = i;
        break;
      }
    wipe(h->reads[given].bytes, h->reads[given].capacity);
    free(h->reads[given].bytes);
    memmove(&h->reads[given], &h->reads[given + 1], (h->count - given - 1) * sizeof(token_read));
    h->count--;
  }
  h->reads[h->count] = *fresh;
  return &h->reads[h->count++];
}

/* The token a read from `off` continues: the newest whose last read ended there, else the newest.
 */
static token_read *continuing_read(handle *h, off_t off) {
  for (size_t i = h->count; i > 0; i--)
    if (off >= 0 && h->reads[i - 1].next == (size_t)off) return &h->reads[i - 1];
  return &h->reads[h->count - 1];
}

static void read_locked(fuse_req_t req, mintfs_session *s, fuse_ino_t ino, handle *h, size_t size,
                        off_t off);

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  mintfs_session *s = fuse_req_userdata(req);
  touch(s);
  handle *h = (handle *)(uintptr_t)fi->fh;
  /* Reads of one handle (threads of one reader, on two CPUs' queues) take turns. */
  pthread_mutex_lock(&h->lock);
  read_locked(req, s, ino, h, size, off);
  pthread_mutex_unlock(&h->lock);
}

static void read_locked(fuse_req_t req, mintfs_session *s, fuse_ino_t ino, handle *h, size_t size,
                        off_t off) {
  if (h->failed || h->count == 0) {
    REPLY(req, fuse_reply_err(req, MINTFS_ERR_UNEXPECTED));
    return;
  }
  token_read *r;
  if (h->per_read != NULL && off == 0 && h->open_token_claimed) {
    token_read fresh = {0};
    int errno_reply = remint(s, ino, h, &fresh);
    if (errno_reply != 0) {
      REPLY(req, fuse_reply_err(req, errno_reply));
      return;
    }
    r = keep_read(h, &fresh);
  } else {
    r = continuing_read(h, off);
  }
  h->open_token_claimed = 1;
  if (off < 0 || (size_t)off >= r->length) {
    if (off >= 0) r->next = (size_t)off;
    REPLY(req, fuse_reply_buf(req, NULL, 0));
    return;
  }
  size_t n = r->length - (size_t)off;
  if (n > size) n = size;
  r->next = (size_t)off + n;
  REPLY(req, fuse_reply_buf(req, (const char *)r->bytes + off, n));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  mintfs_session *s = fuse_req_userdata(req);
  touch(s);
  handle *h = (handle *)(uintptr_t)fi->fh;
  /* The kernel sends nothing more for this handle; its open may still be minting: wait for it. */
  pthread_mutex_lock(&h->lock);
  pthread_mutex_unlock(&h->lock);
  drop_handle(s, h);
  REPLY(req, fuse_reply_err(req, 0));
}

static void op_read_only(fuse_req_t req) { REPLY(req, fuse_reply_err(req, MINTFS_ERR_READ_ONLY)); }
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi) {
  (void)ino, (void)attr, (void)to_set, (void)fi;
  op_read_only(req);
}
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  (void)parent, (void)name, (void)mode, (void)rdev;
  op_read_only(req);
}
static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  (void)parent, (void)name, (void)mode;
  op_read_only(req);
}
static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  (void)parent, (void)name;
  op_read_only(req);
}
static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  (void)link, (void)parent, (void)name;
  op_read_only(req);
}
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags) {
  (void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
  op_read_only(req);
}
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  (void)ino, (void)newparent, (void)newname;
  op_read_only(req);
}
static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
  (void)ino, (void)buf, (void)size, (void)off, (void)fi;
  op_read_only(req);
}
static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi) {
  (void)parent, (void)name, (void)mode, (void)fi;
  op_read_only(req);
}
static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags) {
  (void)ino, (void)name, (void)value, (void)size, (void)flags;
  op_read_only(req);
}
static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  (void)ino, (void)name;
  op_read_only(req);
}

static const struct fuse_lowlevel_ops OPS = {
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readdir = op_readdir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .write = op_write,
    .create = op_create,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
};

/* ---- the transport ---- */

/*
 * libfuse's reads and writes of /dev/fuse go through these two hooks
 * (fuse_session_custom_io) when io_uring is asked for: the read hook notes
 * whether the kernel's INIT offers FUSE_OVER_IO_URING, the write hook asks
 * for it in libfuse's INIT reply (libfuse 3.14 cannot) and then starts the
 * rings, and sends replies to ring requests back to their ring entry.
 *
 * settle_transport is the INIT reply's settlement of the choice it claimed
 * (or found settled: then nothing).
 */
static void settle_transport(mintfs_session *s, fuse_ring *ring, const char *why) {
  pthread_mutex_lock(&s->transport_lock);
  if (s->transport_state != TRANSPORT_SETTLED) {
    s->ring = ring;
    if (why != NULL) snprintf(s->transport_reason, sizeof(s->transport_reason), "%s", why);
    s->transport_state = TRANSPORT_SETTLED;
    pthread_cond_broadcast(&s->transport_cond);
  }
  pthread_mutex_unlock(&s->transport_lock);
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata) {
  mintfs_session *s = userdata;
  ssize_t n = read(fd, buf, len);
  int offers = 0;
  uint64_t init_unique = fuse_ring_init_request(buf, n, &offers);
  if (init_unique != 0) {
    s->kernel_offers_uring = offers;
    atomic_store(&s->init_unique, init_unique);
  }
  return n;
}

/* libfuse's INIT reply, asking for the ring where the kernel offered it; then the rings. */
static ssize_t write_init_reply(mintfs_session *s, int fd, struct iovec *iov, int count) {
  const char *why = NULL;
  struct fuse_init_out init;
  struct iovec asked[2];
  memset(&init, 0, sizeof(init));
  pthread_mutex_lock(&s->transport_lock);
  int waiting = s->transport_state == TRANSPORT_WAITING;
  if (waiting) s->transport_state = TRANSPORT_STARTING;
  pthread_mutex_unlock(&s->transport_lock);
  if (!waiting) why = "the kernel's INIT came after the start stopped waiting for it";
  else if (!s->kernel_offers_uring)
    why =
        "the kernel does not offer FUSE over io_uring (/sys/module/fuse/parameters/enable_uring "
        "is off, or Linux is older than 6.14)";
  else if (fuse_ring_ask_in_init_reply(iov, count, &init, asked) != 0)
    why = "libfuse's INIT reply has no room to ask for FUSE over io_uring";
  ssize_t n = writev(fd, why == NULL ? asked : iov, count);
  int saved = errno;
  char reason[200];
  fuse_ring *ring = NULL;
  if (n < 0 && why == NULL) why = "the INIT reply was refused";
  if (why == NULL) {
    /* The kernel took the reply (it is processed within the write): it now accepts ring entries. */
    ring = fuse_ring_start(s->se, fd, fuse_ring_payload_size(init.max_write, init.max_pages),
                           reason, sizeof(reason));
    if (ring == NULL) why = reason;
  }
  settle_transport(s, ring, why);
  errno = saved;
  return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata) {
  mintfs_session *s = userdata;
  ssize_t result;
  if (fuse_ring_reply(iov, count, &result)) return result;
  uint64_t init_unique = atomic_load(&s->init_unique);
  if (init_unique != 0 && count >= 1 && iov[0].iov_len >= sizeof(struct fuse_out_header)) {
    struct fuse_out_header out;
    memcpy(&out, iov[0].iov_base, sizeof(out));
    if (out.unique == init_unique) {
      atomic_store(&s->init_unique, 0);
      return write_init_reply(s, fd, iov, count);
    }
  }
  return writev(fd, iov, count);
}

static const struct fuse_custom_io RING_IO = {.read = io_read, .writev = io_writev};

int session_transport(mintfs_session *s, char *reason, size_t reason_size) {
  pthread_mutex_lock(&s->transport_lock);
  int uring = s->ring != NULL;
  snprintf(reason, reason_size, "%s", s->transport_reason);
  pthread_mutex_unlock(&s->transport_lock);
  return uring;
}

uint64_t session_ring_requests(mintfs_session *s) {
  pthread_mutex_lock(&s->transport_lock);
  uint64_t n = fuse_ring_requests(s->ring);
  pthread_mutex_unlock(&s->transport_lock);
  return n;
}

uint64_t session_ring_malformed(mintfs_session *s) {
  pthread_mutex_lock(&s->transport_lock);
  uint64_t n = fuse_ring_malformed(s->ring);
  pthread_mutex_unlock(&s->transport_lock);
  return n;
}

/* ---- the loop ---- */

/*
 * One thread reading /dev/fuse. Not libfuse's multi-threaded loop: on this
 * class of machine it served per-open lookups at half the rate of a single
 * thread (see README, benchmarks), and nothing here blocks. The thread waits
 * in read(2) alone (no poll: one system call per request, as libfuse's own
 * loop); session_stop() ends it by cancelling it, which is enabled only
 * while it waits there, so it never stops halfway through a reply.
 */
static void free_buffer(void *arg) {
  struct fuse_buf *buf = arg;
  free(buf->mem);
  buf->mem = NULL;
}

static void *serve(void *arg) {
  mintfs_session *s = arg;
  struct fuse_buf buf;
  memset(&buf, 0, sizeof(buf));
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  pthread_cleanup_push(free_buffer, &buf);
  while (!fuse_session_exited(s->se)) {
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    pthread_testcancel();
    int res = fuse_session_receive_buf(s->se, &buf);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res <= 0) break; /* unmounted, or the connection was aborted */
    const struct fuse_in_header *in = buf.mem;
    int forget = !(buf.flags & FUSE_BUF_IS_FD) && (size_t)res >= sizeof(*in) &&
                 (in->opcode == FUSE_FORGET || in->opcode == FUSE_BATCH_FORGET);
    fuse_session_process_buf(s->se, &buf);
    /*
     * Over io_uring this thread wakes for little but FORGETs, one per token
     * read (a fresh inode per lookup), and each wake-up took a CPU from the
     * readers and ring threads (perf, eight readers). Waiting a moment lets
     * the kernel queue them and hand over many in one BATCH_FORGET. Nothing
     * waits on a FORGET; INTERRUPT and notifications wait at most as long.
     * Only once the ring has served: if the kernel never switched to it, this
     * thread serves everything, and must not pause.
     */
    if (forget && s->ring != NULL && fuse_ring_requests(s->ring) > 0)
      nanosleep(&FORGET_BATCH_WAIT, NULL);
  }
  pthread_cleanup_pop(1);
  return NULL;
}

mintfs_session *session_start(const char *mountpoint, tree *initial, int mint_per_read,
                              int want_uring, char *error, size_t error_size) {
  mintfs_session *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    snprintf(error, error_size, "out of memory");
    tree_release(initial);
    return NULL;
  }
  s->current = initial;
  s->random_used = sizeof(s->random_pool);
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_init(&s->audit_lock, NULL);
  pthread_mutex_init(&s->forget_lock, NULL);
  pthread_mutex_init(&s->inode_lock, NULL);
  pthread_cond_init(&s->minted, NULL);
  pthread_mutex_init(&s->handles_lock, NULL);
  pthread_mutex_init(&s->random_lock, NULL);
  pthread_mutex_init(&s->gofer_lock, NULL);
  reader_cache_init(&s->readers);
  pthread_mutex_init(&s->transport_lock, NULL);
  pthread_cond_init(&s->transport_cond, NULL);
  s->transport_state = want_uring ? TRANSPORT_WAITING : TRANSPORT_SETTLED;
  s->started = time(NULL);
  s->mint_per_read = mint_per_read;
  touch(s);

  char *argv[] = {"mintfs", "-o", "ro,allow_other,default_permissions,fsname=mintfs,subtype=mintfs",
                  NULL};
  struct fuse_args args = FUSE_ARGS_INIT(3, argv);
  s->se = fuse_session_new(&args, &OPS, sizeof(OPS), s);
  fuse_opt_free_args(&args);
  if (s->se == NULL) {
    snprintf(error, error_size, "libfuse could not create a session");
    session_stop(s);
    return NULL;
  }
  if (fuse_session_mount(s->se, mountpoint) != 0) {
    snprintf(error, error_size, "libfuse could not mount %s (is /dev/fuse available?)", mountpoint);
    fuse_session_destroy(s->se);
    s->se = NULL;
    session_stop(s);
    return NULL;
  }
  if (want_uring && fuse_session_custom_io(s->se, &RING_IO, fuse_session_fd(s->se)) != 0) {
    /* Nothing could ask for the ring: the classic loop, saying why. */
    settle_transport(s, NULL, "libfuse refused the I/O hooks the ring needs");
  }
  int rc = pthread_create(&s->thread, NULL, serve, s);
  if (rc != 0) {
    snprintf(error, error_size, "cannot start the FUSE thread: %s", strerror(rc));
    /* Nothing is served: detach what was just mounted, by the path we made it at. */
    fuse_session_unmount(s->se);
    session_stop(s);
    return NULL;
  }
  s->thread_started = 1;
  pthread_setname_np(s->thread, "mintfs-fuse"); /* for top -H and perf; failure is harmless */
  /* mount(2) queued the kernel's INIT: its reply settles the transport within milliseconds. */
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += TRANSPORT_WAIT_S;
  pthread_mutex_lock(&s->transport_lock);
  while (s->transport_state != TRANSPORT_SETTLED) {
    if (s->transport_state == TRANSPORT_STARTING) {
      /* The INIT reply is starting the rings: it settles, however long that takes. */
      pthread_cond_wait(&s->transport_cond, &s->transport_lock);
    } else if (pthread_cond_timedwait(&s->transport_cond, &s->transport_lock, &until) ==
                   ETIMEDOUT &&
               s->transport_state == TRANSPORT_WAITING) {
      snprintf(s->transport_reason, sizeof(s->transport_reason), "%s",
               "the kernel sent no INIT within 5 seconds");
      s->transport_state = TRANSPORT_SETTLED;
    }
  }
  pthread_mutex_unlock(&s->transport_lock);
  return s;
}

void session_set_tree(mintfs_session *s, tree *next) {
  pthread_mutex_lock(&s->lock);
  tree *previous = s->current;
  s->current = next;
  pthread_mutex_unlock(&s->lock);
  /* Directories the kernel may have cached and the new tree no longer has. */
  for (size_t i = 0; previous != NULL && s->se != NULL && i < previous->count; i++) {
    const vnode *old = &previous->nodes[i];
    if (!old->is_dir || old->parent_id == 0) continue;
    const vnode *now = tree_node(next, old->path_id);
    if (now == NULL || !now->is_dir) {
      int rc =
          fuse_lowlevel_notify_inval_entry(s->se, old->parent_id, old->name, strlen(old->name));
      /* -ENOENT: the kernel had not cached it; nothing to drop. */
      if (rc != 0 && rc != -ENOENT) atomic_fetch_add(&s->invalidation_failures, 1);
    }
  }
  tree_release(previous);
}

uint64_t session_open_handles(mintfs_session *s) { return atomic_load(&s->open_handles); }
uint64_t session_reply_failures(mintfs_session *s) { return atomic_load(&s->reply_failures); }
uint64_t session_invalidation_failures(mintfs_session *s) {
  return atomic_load(&s->invalidation_failures);
}
int64_t session_last_activity_ms(mintfs_session *s) { return atomic_load(&s->last_activity_ms); }

void session_halt(mintfs_session *s) {
  if (s->thread_started) {
    pthread_cancel(s->thread);
    pthread_join(s->thread, NULL);
    s->thread_started = 0;
  }
  /* The /dev/fuse thread (which starts the rings) is gone: the rings can go, then the connection.
   */
  pthread_mutex_lock(&s->transport_lock);
  fuse_ring *ring = s->ring;
  s->ring = NULL;
  pthread_mutex_unlock(&s->transport_lock);
  fuse_ring_stop(ring);
  /* Closing /dev/fuse ends the connection: anything still open gets ENOTCONN. */
  if (s->se != NULL) fuse_session_destroy(s->se);
  s->se = NULL;
  while (s->first_handle != NULL) drop_handle(s, s->first_handle);
}

void session_stop(mintfs_session *s) {
  session_halt(s);
  for (size_t i = 0; i < INODE_BUCKETS; i++) {
    for (inode_record *r = s->inodes[i]; r != NULL;) {
      inode_record *next = r->next;
      free(r);
      r = next;
    }
  }
  wipe(s->random_pool, sizeof(s->random_pool));
  tree_release(s->current);
  for (audit_event *ev = s->audit_head; ev != NULL;) {
    audit_event *next = ev->next;
    free(ev);
    ev = next;
  }
  pthread_mutex_destroy(&s->lock);
  pthread_mutex_destroy(&s->audit_lock);
  pthread_mutex_destroy(&s->forget_lock);
  pthread_mutex_destroy(&s->inode_lock);
  pthread_cond_destroy(&s->minted);
  pthread_mutex_destroy(&s->handles_lock);
  pthread_mutex_destroy(&s->random_lock);
  pthread_mutex_destroy(&s->gofer_lock);
  reader_cache_destroy(&s->readers);
  free(s->forgotten);
  pthread_mutex_destroy(&s->transport_lock);
  pthread_cond_destroy(&s->transport_cond);
  free(s);
}
