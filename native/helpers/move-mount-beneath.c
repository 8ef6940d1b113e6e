/*
 * mintfs-move-beneath SOURCE TARGET
 *
 * Moves the mount at SOURCE underneath the top mount at TARGET
 * (move_mount(2) with MOVE_MOUNT_BENEATH, Linux 6.5+). Unmounting TARGET's
 * top mount afterwards reveals the moved one, so a restarted mintfs daemon
 * takes over a mountpoint without a moment where readers find nothing there.
 * util-linux gained `mount --beneath` only in 2.39; Debian 12 ships 2.38.
 *
 * Exit status: 0 moved, 2 usage, 3 the kernel refused (message on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x00000200
#endif

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: mintfs-move-beneath SOURCE TARGET\n");
    return 2;
  }
  if (syscall(SYS_move_mount, AT_FDCWD, argv[1], AT_FDCWD, argv[2], MOVE_MOUNT_BENEATH) != 0) {
    int err = errno;
    fprintf(stderr, "move_mount beneath %s: %s%s\n", argv[2], strerror(err),
            err == EINVAL ? " (needs Linux 6.5 or later, and a mount at the target)" : "");
    return 3;
  }
  return 0;
}
