/* SO_PEERCRED for the gateway's per-peer connection counts (peer.h). */
#define _GNU_SOURCE
#include "peer.h"

#include <errno.h>
#include <sys/socket.h>

int peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -errno;
  if (len != sizeof(cred)) return -EINVAL;
  *pid = cred.pid;
  *uid = cred.uid;
  *gid = cred.gid;
  return 0;
}
