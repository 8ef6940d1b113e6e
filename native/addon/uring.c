#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include "uring.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "fuse-uring-uapi.h"

/*
 * Entries per queue: requests one queue holds at once before the kernel
 * queues more behind them. libfuse's default; every entry costs a header page
 * and a payload mapping, touched only as far as requests use it.
 */
#define QUEUE_DEPTH 8
/* The kernel's FUSE_MIN_READ_BUFFER: no payload buffer may be smaller. */
#define MIN_PAYLOAD 8192
/* The kernel's largest max_pages (fuse_max_pages_limit's default). */
#define MAX_PAGES_LIMIT 256

typedef struct ring_queue ring_queue;

typedef struct ring_entry {
  ring_queue *queue;
  enum fuse_uring_cmd last_cmd;
  struct fuse_uring_req_header *header; /* a page of its own */
  uint8_t *payload;                     /* payload_size bytes */
  struct iovec iov[2];                  /* header, payload: what REGISTER hands the kernel */
  uint64_t unique;                      /* the request being served */
  uint64_t commit_id;
  int replied;
  int dead; /* the kernel ended it (unmount) or named no request: never resubmitted */
} ring_entry;

/*
 * One queue of the kernel's (one per possible CPU) with its own thread and
 * io_uring. The kernel puts a request on the queue of the CPU its caller
 * runs on and has it copied in by the task that registered the entry; a
 * thread pinned to that CPU is then woken on the reader's own CPU, where a
 * single thread serving every queue was woken across CPUs twice a request
 * (the request, then the reply), and an idle vCPU's wake-up costs tens of
 * microseconds on a VM. libfuse (lib/fuse_uring.c) is laid out the same way.
 */
struct ring_queue {
  struct fuse_ring *ring;
  uint16_t qid;
  struct io_uring uring;
  int uring_ready;
  pthread_t thread;
  int thread_started;
  ring_entry entries[QUEUE_DEPTH];
  uint8_t *scratch; /* one request laid out as /dev/fuse delivers it */
  /* Registration, for fuse_ring_start: entries the kernel refused, and why. */
  int refused;
  int error;
  char reason[160];
};

struct fuse_ring {
  struct fuse_session *se;
  int fuse_fd;
  size_t payload_size;
  size_t header_size;
  size_t scratch_size;
  int stop_fd; /* eventfd: stop's wake-up, polled by every queue's ring */
  char stop_tag;
  size_t queue_count;
  ring_queue *queues;
  /* fuse_ring_start waits on this for every queue's registration result. */
  pthread_mutex_t start_lock;
  pthread_cond_t start_cond;
  size_t reported;
  atomic_uint_fast64_t requests;
  atomic_uint_fast64_t malformed;
};

/* The entry whose request this thread is serving (set around fuse_session_process_buf). */
static __thread ring_entry *serving;

size_t fuse_ring_payload_size(uint32_t max_write, uint32_t max_pages) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t size = MIN_PAYLOAD;
  if (max_write > size) size = max_write;
  if ((size_t)max_pages * page > size) size = (size_t)max_pages * page;
  if ((size_t)MAX_PAGES_LIMIT * page > size) size = (size_t)MAX_PAGES_LIMIT * page;
  return size;
}

/*
 * The kernel keeps a queue per possible CPU (num_possible_cpus()), routes a
 * request to the queue of the CPU its caller runs on, and uses the ring only
 * once every queue has an entry: so exactly that many queues, counted from
 * the kernel's own list ("0-3,8-11"); a qid beyond it is refused.
 */
static size_t possible_cpus(void) {
  char list[256];
  size_t count = 0;
  FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
  if (f != NULL) {
    if (fgets(list, sizeof(list), f) != NULL) {
      for (char *p = list; *p != '\0' && *p != '\n';) {
        char *end;
        unsigned long first = strtoul(p, &end, 10), last = first;
        if (end == p) break;
        if (*end == '-') {
          p = end + 1;
          last = strtoul(p, &end, 10);
          if (end == p || last < first) break;
        }
        count += last - first + 1;
        p = *end == ',' ? end + 1 : end;
      }
    }
    fclose(f);
  }
  if (count == 0) {
    int cpus = get_nprocs_conf();
    count = cpus > 0 ? (size_t)cpus : 1;
  }
  return count;
}

static void *map(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/*
 * Queues one command for an entry; its queue thread's next wait submits it
 * with every other queued command in one io_uring_enter. The SQ holds one
 * command per entry, so it fills only if that invariant broke: then it is
 * submitted at once. -errno when even that fails.
 */
static int queue_cmd(ring_entry *e, enum fuse_uring_cmd cmd) {
  ring_queue *q = e->queue;
  struct io_uring_sqe *sqe = io_uring_get_sqe(&q->uring);
  if (sqe == NULL) {
    int rc = io_uring_submit(&q->uring);
    if (rc < 0) return rc;
    sqe = io_uring_get_sqe(&q->uring);
  }
  if (sqe == NULL) return -EBUSY;
  memset(sqe, 0, 2 * sizeof(*sqe)); /* SQE128: the command area is the second half */
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = q->ring->fuse_fd;
  sqe->cmd_op = cmd;
  io_uring_sqe_set_data(sqe, e);
  struct fuse_uring_cmd_req *req = (struct fuse_uring_cmd_req *)sqe->cmd;
  req->qid = q->qid;
  if (cmd == FUSE_IO_URING_CMD_REGISTER) {
    sqe->addr = (uint64_t)(uintptr_t)e->iov;
    sqe->len = 2;
  } else {
    req->commit_id = e->commit_id;
  }
  e->last_cmd = cmd;
  return 0;
}

/*
 * Commits the reply now in the entry's buffers and fetches its next request:
 * queued, and sent by the queue thread's next wait, so a request costs one
 * io_uring_enter (commits of a batch share it). A refusal comes back as the
 * command's completion, which retires the entry.
 */
static int commit(ring_entry *e) { return queue_cmd(e, FUSE_IO_URING_CMD_COMMIT_AND_FETCH); }

static void reply_error(ring_entry *e, uint64_t unique, int error) {
  struct fuse_out_header out = {.len = sizeof(out), .error = -error, .unique = unique};
  memcpy(e->header->in_out, &out, sizeof(out));
  e->header->ring_ent_in_out.payload_sz = 0;
  e->replied = 1;
  if (commit(e) != 0) e->dead = 1;
}

uint64_t fuse_ring_init_request(const void *buf, ssize_t n, int *offers_uring) {
  const size_t flags2_end =
      sizeof(struct fuse_in_header) + offsetof(struct fuse_init_in, flags2) + sizeof(uint32_t);
  *offers_uring = 0;
  if (n < (ssize_t)flags2_end) return 0;
  struct fuse_in_header in;
  memcpy(&in, buf, sizeof(in));
  if (in.opcode != FUSE_INIT) return 0;
  struct fuse_init_in init;
  memset(&init, 0, sizeof(init));
  memcpy(&init, (const char *)buf + sizeof(in), flags2_end - sizeof(in));
  uint64_t flags = init.flags;
  if (flags & FUSE_INIT_EXT) flags |= (uint64_t)init.flags2 << 32;
  *offers_uring = (flags & FUSE_OVER_IO_URING) != 0;
  return in.unique;
}

int fuse_ring_ask_in_init_reply(const struct iovec *iov, int count, struct fuse_init_out *init,
                                struct iovec asked[2]) {
  const size_t flags2_end = offsetof(struct fuse_init_out, flags2) + sizeof(uint32_t);
  struct fuse_out_header out;
  if (count != 2 || iov[0].iov_len < sizeof(out) || iov[1].iov_len < flags2_end ||
      iov[1].iov_len > sizeof(*init))
    return -1;
  memcpy(&out, iov[0].iov_base, sizeof(out));
  if (out.error != 0) return -1;
  memset(init, 0, sizeof(*init));
  memcpy(init, iov[1].iov_base, iov[1].iov_len);
  init->flags |= FUSE_INIT_EXT;
  init->flags2 |= (uint32_t)(FUSE_OVER_IO_URING >> 32);
  asked[0] = iov[0];
  asked[1] = (struct iovec){.iov_base = init, .iov_len = iov[1].iov_len};
  return 0;
}

int fuse_ring_reply(const struct iovec *iov, int count, ssize_t *result) {
  ring_entry *e = serving;
  if (e == NULL || count < 1 || iov[0].iov_len < sizeof(struct fuse_out_header)) return 0;
  struct fuse_out_header out;
  memcpy(&out, iov[0].iov_base, sizeof(out));
  if (out.unique != e->unique) return 0;
  fuse_ring *r = e->queue->ring;
  if (e->replied) {
    /* libfuse replies once per request; a second reply has nowhere to go. */
    errno = EINVAL;
    *result = -1;
    return 1;
  }
  /* Everything after the header is the payload, wherever libfuse split it. */
  size_t total = 0;
  for (int i = 0; i < count; i++) {
    const uint8_t *from = iov[i].iov_base;
    size_t length = iov[i].iov_len;
    if (i == 0) from += sizeof(out), length -= sizeof(out);
    if (length > r->payload_size - total) {
      /* Larger than the kernel's own limit: it would refuse it; say so instead. */
      atomic_fetch_add(&r->malformed, 1);
      reply_error(e, out.unique, EIO);
      errno = EIO;
      *result = -1;
      return 1;
    }
    if (length > 0) memcpy(e->payload + total, from, length);
    total += length;
  }
  out.len = (uint32_t)(sizeof(out) + total);
  memcpy(e->header->in_out, &out, sizeof(out));
  e->header->ring_ent_in_out.payload_sz = (uint32_t)total;
  e->replied = 1;
  int rc = commit(e);
  if (rc != 0) {
    e->dead = 1;
    errno = -rc;
    *result = -1;
    return 1;
  }
  *result = (ssize_t)(sizeof(out) + total);
  return 1;
}

/*
 * One request from the ring: checked against the sizes the kernel promises
 * (fail closed: anything else gets EIO, never a guess), laid out as
 * /dev/fuse would deliver it (header, the op's own header, then the rest),
 * and served by libfuse with the header exactly as the kernel wrote it: the
 * pid, uid and gid a reader check or caveat uses are the request's own.
 * Queue threads serve at once, each on its own CPU: the session's handlers
 * lock what they share (session.c), as libfuse's multi-threaded loop needs.
 */
static void serve_entry(ring_queue *q, ring_entry *e) {
  fuse_ring *r = q->ring;
  struct fuse_in_header in;
  memcpy(&in, e->header->in_out, sizeof(in));
  const struct fuse_uring_ent_in_out *meta = &e->header->ring_ent_in_out;
  e->commit_id = meta->commit_id;
  e->unique = in.unique;
  e->replied = 0;
  if (e->commit_id == 0) {
    /* No request to answer: the kernel would not find a reply. Counted; the entry is retired. */
    atomic_fetch_add(&r->malformed, 1);
    e->dead = 1;
    return;
  }
  size_t payload = meta->payload_sz;
  size_t header = sizeof(in);
  if (payload > r->payload_size || in.len < header || in.len - header < payload ||
      in.len - header - payload > FUSE_URING_OP_IN_OUT_SZ || in.unique == 0) {
    atomic_fetch_add(&r->malformed, 1);
    reply_error(e, in.unique, EIO);
    return;
  }
  size_t op_size = in.len - header - payload;
  memcpy(q->scratch, &in, header);
  memcpy(q->scratch + header, e->header->op_in, op_size);
  memcpy(q->scratch + header + op_size, e->payload, payload);
  struct fuse_buf buf = {.size = in.len, .mem = q->scratch};
  atomic_fetch_add(&r->requests, 1);
  serving = e;
  fuse_session_process_buf(r->se, &buf);
  serving = NULL;
  /* Every ring request needs an answer, or the entry (and its caller) waits forever. */
  if (!e->replied) reply_error(e, in.unique, EIO);
}

static int live_entries(const ring_queue *q) {
  for (size_t i = 0; i < QUEUE_DEPTH; i++)
    if (!q->entries[i].dead) return 1;
  return 0;
}

/* A queue thread's registration result, for fuse_ring_start. */
static void report(ring_queue *q, int error, int refused, const char *reason) {
  fuse_ring *r = q->ring;
  pthread_mutex_lock(&r->start_lock);
  q->error = error;
  q->refused = refused;
  if (reason != NULL) snprintf(q->reason, sizeof(q->reason), "%s", reason);
  r->reported++;
  pthread_cond_signal(&r->start_cond);
  pthread_mutex_unlock(&r->start_lock);
}

/*
 * Registers the queue's entries from its own thread (the kernel completes
 * ring commands through the task that issued them) and counts the refusals,
 * which come back at once, as completions, while the submit runs. -errno
 * when nothing could be submitted.
 */
static int register_entries(ring_queue *q, int *refused, int *first_error, char *reason,
                            size_t reason_size) {
  fuse_ring *r = q->ring;
  for (size_t i = 0; i < QUEUE_DEPTH; i++) {
    if (queue_cmd(&q->entries[i], FUSE_IO_URING_CMD_REGISTER) != 0) {
      snprintf(reason, reason_size, "io_uring submission queue too small");
      return -EINVAL;
    }
  }
  struct io_uring_sqe *sqe = io_uring_get_sqe(&q->uring);
  if (sqe == NULL) {
    snprintf(reason, reason_size, "io_uring submission queue too small");
    return -EINVAL;
  }
  io_uring_prep_poll_add(sqe, r->stop_fd, POLLIN);
  io_uring_sqe_set_data(sqe, &r->stop_tag);
  int rc = io_uring_submit(&q->uring);
  if (rc < 0) {
    snprintf(reason, reason_size, "io_uring_submit: %s", strerror(-rc));
    return rc;
  }
  /* Look at what came back without taking it: requests may already be among it. */
  unsigned head;
  struct io_uring_cqe *cqe;
  io_uring_for_each_cqe(&q->uring, head, cqe) {
    ring_entry *e = io_uring_cqe_get_data(cqe);
    if ((void *)e == &r->stop_tag || cqe->res >= 0 || e->last_cmd != FUSE_IO_URING_CMD_REGISTER)
      continue;
    (*refused)++;
    if (*first_error == 0) *first_error = cqe->res;
  }
  return 0;
}

/*
 * The ring belongs to its queue thread alone (SINGLE_ISSUER), and the
 * kernel's work for it (copying a request into an entry) runs only when that
 * thread waits for completions (DEFER_TASKRUN): no interrupting signal-like
 * task work, and one io_uring_enter both sends the queued commits and
 * collects the next requests. Kernels without these flags get a plain ring.
 */
static int setup_ring(ring_queue *q, char *reason, size_t reason_size) {
  const unsigned base = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
  const unsigned flags[] = {base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, base};
  int rc = -EINVAL;
  for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]) && rc == -EINVAL; i++) {
    /* 128-byte SQEs carry the FUSE command; the CQ holds a completion for every entry and stop. */
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    params.flags = flags[i];
    params.cq_entries = (unsigned)(2 * (QUEUE_DEPTH + 1));
    rc = io_uring_queue_init_params(QUEUE_DEPTH + 1, &q->uring, &params);
  }
  if (rc < 0) {
    snprintf(reason, reason_size, "io_uring setup failed: %s", strerror(-rc));
    return rc;
  }
  q->uring_ready = 1;
  return 0;
}

/*
 * On the queue's own CPU, where the kernel routes its requests from. A CPU
 * this thread may not run on (a cpuset, an offline CPU) sends it no requests
 * from readers either: it then stays unpinned, which only costs speed.
 */
static void pin_to_queue_cpu(const ring_queue *q) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (q->qid >= CPU_SETSIZE) return;
  CPU_SET(q->qid, &cpus);
  (void)pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
}

static void serve_loop(ring_queue *q);

static void *queue_thread(void *arg) {
  ring_queue *q = arg;
  char reason[160] = "";
  int refused = 0, first_error = 0;
  pin_to_queue_cpu(q);
  int error = setup_ring(q, reason, sizeof(reason));
  if (error == 0) error = register_entries(q, &refused, &first_error, reason, sizeof(reason));
  if (error == 0 && refused > 0)
    snprintf(reason, sizeof(reason), "the kernel refused the ring entries: %s",
             strerror(-first_error));
  report(q, error, refused, reason);
  if (error == 0) serve_loop(q);
  /*
   * Closed here, by the thread that issued every command of this ring: the
   * kernel cancels the commands it still holds. Requests reach an entry's
   * buffers only through this thread's task work, so once it has returned
   * nothing writes to them, and fuse_ring_stop may unmap them after the join.
   */
  if (q->uring_ready) io_uring_queue_exit(&q->uring);
  q->uring_ready = 0;
  return NULL;
}

/* Polls stop_fd again on this queue's ring; 0 if it cannot (the caller then stops). */
static int rearm_stop_poll(ring_queue *q) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&q->uring);
  if (sqe == NULL) return 0;
  io_uring_prep_poll_add(sqe, q->ring->stop_fd, POLLIN);
  io_uring_sqe_set_data(sqe, &q->ring->stop_tag);
  return 1;
}

static void serve_loop(ring_queue *q) {
  fuse_ring *r = q->ring;
  for (;;) {
    int rc = io_uring_submit_and_wait(&q->uring, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) break;
    unsigned head, seen = 0;
    int stop = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&q->uring, head, cqe) {
      seen++;
      void *data = io_uring_cqe_get_data(cqe);
      if (data == &r->stop_tag) {
        /* A poll that failed is no stop: asked again, or this queue would go unserved. */
        if (cqe->res > 0 || !rearm_stop_poll(q)) stop = 1;
        continue;
      }
      ring_entry *e = data;
      if (e == NULL || e->dead) continue;
      if (cqe->res == 0) {
        serve_entry(q, e);
      } else if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
        if (queue_cmd(e, e->last_cmd) != 0) e->dead = 1;
      } else {
        /* -ENOTCONN: unmounted or aborted. Anything else ends this entry alone. */
        e->dead = 1;
      }
    }
    io_uring_cq_advance(&q->uring, seen);
    if (stop || !live_entries(q)) break;
  }
  /* The replies to the last batch are queued: send them, so no reader it held waits on. */
  io_uring_submit(&q->uring);
}

/* Wakes every queue thread (each ring polls stop_fd; an eventfd stays readable) and joins them. */
static void stop_threads(fuse_ring *r) {
  uint64_t one = 1;
  if (r->stop_fd >= 0 && write(r->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
    /* An eventfd write of 1 cannot fail short of a counter overflow; join regardless. */
  }
  for (size_t i = 0; r->queues != NULL && i < r->queue_count; i++)
    if (r->queues[i].thread_started) pthread_join(r->queues[i].thread, NULL);
}

/* After every queue thread was joined (each closed its ring) or none started. */
static void teardown(fuse_ring *r) {
  for (size_t i = 0; r->queues != NULL && i < r->queue_count; i++) {
    ring_queue *q = &r->queues[i];
    for (size_t j = 0; j < QUEUE_DEPTH; j++) {
      if (q->entries[j].header != NULL) munmap(q->entries[j].header, r->header_size);
      if (q->entries[j].payload != NULL) munmap(q->entries[j].payload, r->payload_size);
    }
    if (q->scratch != NULL) munmap(q->scratch, r->scratch_size);
  }
  free(r->queues);
  if (r->stop_fd >= 0) close(r->stop_fd);
  pthread_mutex_destroy(&r->start_lock);
  pthread_cond_destroy(&r->start_cond);
  free(r);
}

static int map_queue(fuse_ring *r, ring_queue *q) {
  q->scratch = map(r->scratch_size);
  if (q->scratch == NULL) return -ENOMEM;
  for (size_t j = 0; j < QUEUE_DEPTH; j++) {
    ring_entry *e = &q->entries[j];
    e->queue = q;
    e->header = map(r->header_size);
    e->payload = map(r->payload_size);
    if (e->header == NULL || e->payload == NULL) return -ENOMEM;
    e->iov[0] = (struct iovec){.iov_base = e->header, .iov_len = r->header_size};
    e->iov[1] = (struct iovec){.iov_base = e->payload, .iov_len = r->payload_size};
  }
  return 0;
}

/*
 * The kernel switches to the ring once every queue has an entry, and cannot
 * switch back: a queue with none means it never will (the classic loop
 * serves on, and the rings can go); some refusals in a queue that has
 * entries leave a working ring, which must then stay. Called with every
 * queue reported; the reason of the first queue that failed, or NULL.
 */
static const char *registration_failure(const fuse_ring *r) {
  for (size_t i = 0; i < r->queue_count; i++) {
    const ring_queue *q = &r->queues[i];
    if (q->error != 0 || q->refused == QUEUE_DEPTH) return q->reason;
  }
  return NULL;
}

fuse_ring *fuse_ring_start(struct fuse_session *se, int fuse_fd, size_t payload_size, char *error,
                           size_t error_size) {
  fuse_ring *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    snprintf(error, error_size, "out of memory");
    return NULL;
  }
  r->se = se;
  r->fuse_fd = fuse_fd;
  r->payload_size = payload_size;
  r->stop_fd = -1;
  pthread_mutex_init(&r->start_lock, NULL);
  pthread_cond_init(&r->start_cond, NULL);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  r->header_size = (sizeof(struct fuse_uring_req_header) + page - 1) / page * page;
  r->scratch_size = sizeof(struct fuse_in_header) + FUSE_URING_OP_IN_OUT_SZ + payload_size;
  r->queue_count = possible_cpus();
  r->queues = calloc(r->queue_count, sizeof(ring_queue));
  if (r->queues == NULL) {
    snprintf(error, error_size, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < r->queue_count; i++) {
    r->queues[i].ring = r;
    r->queues[i].qid = (uint16_t)i;
    if (map_queue(r, &r->queues[i]) != 0) {
      snprintf(error, error_size, "out of memory for the ring buffers");
      goto fail;
    }
  }
  r->stop_fd = eventfd(0, EFD_CLOEXEC);
  if (r->stop_fd < 0) {
    snprintf(error, error_size, "eventfd: %s", strerror(errno));
    goto fail;
  }
  size_t started = 0;
  for (; started < r->queue_count; started++) {
    ring_queue *q = &r->queues[started];
    int rc = pthread_create(&q->thread, NULL, queue_thread, q);
    if (rc != 0) {
      snprintf(error, error_size, "cannot start a ring thread: %s", strerror(rc));
      break;
    }
    q->thread_started = 1;
    char name[16];
    snprintf(name, sizeof(name), "mintfs-ring%u", (unsigned)(q->qid % 10000));
    pthread_setname_np(q->thread, name); /* for top -H and perf; failure is harmless */
  }
  pthread_mutex_lock(&r->start_lock);
  while (r->reported < started) pthread_cond_wait(&r->start_cond, &r->start_lock);
  pthread_mutex_unlock(&r->start_lock);
  if (started < r->queue_count) {
    /* Some queue has no entries: the kernel never switches; stop the others. */
    stop_threads(r);
    goto fail;
  }
  const char *failure = registration_failure(r);
  if (failure != NULL) {
    snprintf(error, error_size, "%s", failure);
    stop_threads(r);
    goto fail;
  }
  return r;
fail:
  teardown(r);
  return NULL;
}

void fuse_ring_stop(fuse_ring *r) {
  if (r == NULL) return;
  /* Each queue thread's poll on stop_fd completes and it leaves; it may already have (unmount). */
  stop_threads(r);
  teardown(r);
}

uint64_t fuse_ring_requests(const fuse_ring *r) {
  return r == NULL ? 0 : atomic_load(&((fuse_ring *)r)->requests);
}
uint64_t fuse_ring_malformed(const fuse_ring *r) {
  return r == NULL ? 0 : atomic_load(&((fuse_ring *)r)->malformed);
}
