/*
 * FUSE requests carried over io_uring (Linux 6.14+, when
 * /sys/module/fuse/parameters/enable_uring is on), beside libfuse 3.14,
 * which has no support for it: the kernel hands each request to one of our
 * ring entries (a header buffer and a payload buffer per entry, a fixed set
 * per queue, one queue per possible CPU), and takes the reply and asks for
 * the next request in one command (COMMIT_AND_FETCH), so a request costs one
 * io_uring_enter instead of a read and a write on /dev/fuse.
 *
 * libfuse still parses the requests and encodes the replies: each request is
 * laid out as /dev/fuse would have delivered it and passed to
 * fuse_session_process_buf(); the reply libfuse then writes comes back here
 * (session.c's writev hook calls fuse_ring_reply) and is committed to the
 * entry the request came on. /dev/fuse stays open for what the kernel never
 * sends over the ring (INIT, FORGET, INTERRUPT) and for notifications.
 */
#ifndef MINTFS_URING_H
#define MINTFS_URING_H
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct fuse_ring fuse_ring;

/*
 * Sets a ring up per queue, each on a thread of its own pinned to the
 * queue's CPU, and registers every entry with the kernel; returns once the
 * kernel took them (the kernel then sends
 * requests over the ring) or refused them (NULL, nothing left behind, the
 * reason in `error`). Call after the INIT reply that asked for
 * FUSE_OVER_IO_URING was written. `payload_size` must be at least the
 * kernel's largest request or reply (fuse_ring_payload_size). Queue threads
 * serve requests at once (and beside the /dev/fuse thread): the session's
 * handlers must be safe to run on several threads.
 */
fuse_ring *fuse_ring_start(struct fuse_session *se, int fuse_fd, size_t payload_size, char *error,
                           size_t error_size);
/*
 * For a /dev/fuse read hook: when `buf` (n bytes read) is the kernel's INIT,
 * its unique, with *offers_uring saying whether it offers FUSE over io_uring;
 * 0 for anything else.
 */
uint64_t fuse_ring_init_request(const void *buf, ssize_t n, int *offers_uring);
struct fuse_init_out;
/*
 * For a writev hook given libfuse's INIT reply (`iov`, `count`): copies it
 * into *init asking for FUSE over io_uring, with asked[] the iovec to write
 * instead. 0, or -1 when the reply cannot carry the ask (an error reply, or
 * not the shape libfuse 3.14 writes): then write `iov` as it is.
 */
int fuse_ring_ask_in_init_reply(const struct iovec *iov, int count, struct fuse_init_out *init,
                                struct iovec asked[2]);
/* The payload buffer the kernel requires, from the INIT reply's max_write and max_pages. */
size_t fuse_ring_payload_size(uint32_t max_write, uint32_t max_pages);
/* Ends the ring threads (joined) and tears the rings down: no fd, mapping or thread is left. */
void fuse_ring_stop(fuse_ring *r);
/* Requests served over the ring, and requests refused as malformed (EIO, or left unanswered). */
uint64_t fuse_ring_requests(const fuse_ring *r);
uint64_t fuse_ring_malformed(const fuse_ring *r);
/*
 * For the session's writev hook: when this thread is serving a ring request
 * and `iov` is its reply, commits it (and fetches the next) and returns 1
 * with writev's result in *result (-1 and errno on failure). Returns 0 for
 * anything else, which goes to /dev/fuse.
 */
int fuse_ring_reply(const struct iovec *iov, int count, ssize_t *result);
#endif
