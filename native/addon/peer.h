/*
 * Who is at the other end of a unix socket: the kernel's record of the
 * connecting process (SO_PEERCRED), which the peer cannot forge. The gateway
 * counts connections per peer uid with it.
 */
#ifndef MINTFS_PEER_H
#define MINTFS_PEER_H
#include <sys/types.h>

/* 0 and the peer's pid, uid and gid; -errno when fd is no connected unix socket. */
int peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

#endif
