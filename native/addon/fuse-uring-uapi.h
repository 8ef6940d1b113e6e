/*
 * The FUSE-over-io_uring part of the kernel's FUSE interface, for uring.c.
 * Debian's linux-libc-dev (6.1, FUSE 7.38) predates it, so these definitions
 * are copied from include/uapi/linux/fuse.h of Linux 6.14 (FUSE 7.42), the
 * release that introduced them; they are ABI and do not change. The rest of
 * the interface (fuse_in_header, fuse_init_in/out) comes from <linux/fuse.h>.
 */
#ifndef MINTFS_FUSE_URING_UAPI_H
#define MINTFS_FUSE_URING_UAPI_H
#include <linux/fuse.h>
#include <stdint.h>

#ifndef FUSE_OVER_IO_URING
/* fuse_init_in/out flags (bits 32..63 travel in flags2, with FUSE_INIT_EXT). */
#define FUSE_OVER_IO_URING (1ULL << 41)

#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ 128

/* Used as part of the fuse_uring_req_header */
struct fuse_uring_ent_in_out {
  uint64_t flags;
  /* commit ID to be used in a reply to a ring request (see also struct fuse_uring_cmd_req) */
  uint64_t commit_id;
  /* size of user payload buffer */
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};

/* Header for all fuse-io-uring requests */
struct fuse_uring_req_header {
  /* struct fuse_in_header / struct fuse_out_header */
  char in_out[FUSE_URING_IN_OUT_HEADER_SZ];
  /* per op code header */
  char op_in[FUSE_URING_OP_IN_OUT_SZ];
  struct fuse_uring_ent_in_out ring_ent_in_out;
};

/* sqe commands to the kernel */
enum fuse_uring_cmd {
  FUSE_IO_URING_CMD_INVALID = 0,
  /* register the request buffer and fetch a fuse request */
  FUSE_IO_URING_CMD_REGISTER = 1,
  /* commit fuse request result and fetch next request */
  FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2,
};

/* In the 80B command area of the SQE. */
struct fuse_uring_cmd_req {
  uint64_t flags;
  /* entry identifier for commits */
  uint64_t commit_id;
  /* queue the command is for (queue index) */
  uint16_t qid;
  uint8_t padding[6];
};
#endif
#endif
