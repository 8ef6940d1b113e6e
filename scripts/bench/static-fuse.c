/*
 * The floor for the mount benchmark: a minimal libfuse3 file system serving
 * one file, /token, whose content is a fixed string given on the command
 * line. direct_io like mintfs, so every read reaches the daemon; no minting.
 *
 *   static-fuse MOUNTPOINT CONTENT
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *content;
static size_t content_len;

static int static_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  memset(st, 0, sizeof(*st));
  if (strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
    return 0;
  }
  if (strcmp(path, "/token") == 0) {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = (off_t)content_len;
    return 0;
  }
  return -ENOENT;
}

static int static_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                          struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)off;
  (void)fi;
  (void)flags;
  if (strcmp(path, "/") != 0) return -ENOENT;
  fill(buf, ".", NULL, 0, 0);
  fill(buf, "..", NULL, 0, 0);
  fill(buf, "token", NULL, 0, 0);
  return 0;
}

static int static_open(const char *path, struct fuse_file_info *fi) {
  if (strcmp(path, "/token") != 0) return -ENOENT;
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
  fi->direct_io = 1;
  return 0;
}

static int static_read(const char *path, char *buf, size_t size, off_t off,
                       struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  if ((size_t)off >= content_len) return 0;
  size_t n = content_len - (size_t)off;
  if (n > size) n = size;
  memcpy(buf, content + off, n);
  return (int)n;
}

static const struct fuse_operations ops = {
    .getattr = static_getattr,
    .readdir = static_readdir,
    .open = static_open,
    .read = static_read,
};

int main(int argc, char *argv[]) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MOUNTPOINT CONTENT\n", argv[0]);
    return 2;
  }
  content = argv[2];
  content_len = strlen(content);
  char *fuse_argv[] = {argv[0], "-f", "-o", "fsname=static-fuse", argv[1], NULL};
  return fuse_main(5, fuse_argv, &ops, NULL);
}
