/*
 * A mounted mintfs file system served by libfuse3's low-level API on a thread
 * of its own, so no request ever waits for the JavaScript thread: lookups,
 * attributes, directory listings, opens (minting included), reads and
 * releases are all answered here. JavaScript supplies the tree (with each
 * file's mint template and reader rules) and receives audit events.
 */
#ifndef MINTFS_SESSION_H
#define MINTFS_SESSION_H
#include <stdint.h>

#include "mint.h"
#include "reader.h"

#define ROOT_PATH_ID 1
#define PATH_ID_BITS 24
#define MAX_PATH_ID ((1u << PATH_ID_BITS) - 1)

typedef struct {
  uint32_t path_id;
  uint32_t parent_id; /* 0 for the root */
  char *name;         /* "" for the root */
  int is_dir;
  uint32_t mode; /* permission bits */
  uint32_t uid;
  uint32_t gid;
  /* Files: */
  mint_template *tpl;
  reader_rules *rules; /* NULL: any reader */
  int reader_caveat;
  size_t size; /* every token's length, without a reader caveat */
  /* Directories: child path ids, in listing order. */
  uint32_t *children;
  size_t child_count;
} vnode;

typedef struct tree tree;

/* Frees what a node points to (not the node itself). */
void vnode_clear(vnode *n);

/* Takes ownership of nodes (and everything they point to). NULL when out of memory. */
tree *tree_new(vnode *nodes, size_t count);
void tree_release(tree *t);

enum audit_kind { AUDIT_MINTED = 1, AUDIT_DENIED = 2, AUDIT_FAILED = 3 };

typedef struct audit_event {
  struct audit_event *next;
  enum audit_kind kind;
  uint32_t path_id;
  char token_id[TOKEN_ID_LENGTH + 1];
  char key_id[80];
  int64_t expires_s;
  int reader_caveat;
  const char *reason; /* static */
  reader_identity who;
} audit_event;

typedef struct mintfs_session mintfs_session;

/*
 * Mounts at `mountpoint` and starts serving `initial` (ownership passes).
 * With `mint_per_read`, every read from offset 0 mints afresh (as it does
 * anyway for gVisor's gofer). With `want_uring`, asks the kernel to send
 * requests over io_uring (uring.h) and returns once its INIT settled whether
 * it does; the classic /dev/fuse loop serves otherwise (session_transport
 * says why). NULL on failure with a message in `error`.
 */
mintfs_session *session_start(const char *mountpoint, tree *initial, int mint_per_read,
                              int want_uring, char *error, size_t error_size);
/* 1 when requests come over io_uring; else 0 and, if it was asked for, why not in `reason`. */
int session_transport(mintfs_session *s, char *reason, size_t reason_size);
/* Requests served over the ring, and ring requests refused as malformed. */
uint64_t session_ring_requests(mintfs_session *s);
uint64_t session_ring_malformed(mintfs_session *s);
/* Swaps in a new tree (ownership passes); opens from now on use it. */
void session_set_tree(mintfs_session *s, tree *next);
/*
 * Audit events queued since the last call, oldest first (free() each), and
 * how many opens were refused since because the queue was full. JavaScript
 * drains them on a timer: one wake-up per batch, not one per token.
 */
audit_event *session_take_audit(mintfs_session *s, uint64_t *refused);
uint64_t session_open_handles(mintfs_session *s);
/* Replies the kernel refused (interrupted requests), and directory invalidations that failed. */
uint64_t session_reply_failures(mintfs_session *s);
uint64_t session_invalidation_failures(mintfs_session *s);
/* CLOCK_MONOTONIC milliseconds of the last open, read or release. */
int64_t session_last_activity_ms(mintfs_session *s);
/* Stops serving, wipes every token still held and frees everything. The mount must be detached
 * first. */
/*
 * Ends the FUSE thread (joined: no open is being served any more) and the
 * connection; the audit queue stays, so the caller can take its last events.
 */
void session_halt(mintfs_session *s);
/* session_halt, then frees everything, unread audit events included. */
void session_stop(mintfs_session *s);
#endif
