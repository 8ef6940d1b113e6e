/*
 * mintfs-seccomp-bpf SYSCALL... [socket-family:N]...
 *
 * Writes a seccomp BPF program to stdout that allows everything except the
 * named system calls (EPERM), clone() with any namespace flag (EPERM),
 * clone3() (ENOSYS, so libc falls back to clone, whose flags we can see), and
 * socket() of each named address family (EAFNOSUPPORT).
 * bubblewrap loads it with --seccomp FD. The list of names comes from
 * src/contain/seccomp-policy.ts, the single source for this and for the
 * OCI profile runc gets.
 *
 * Exit status: 0 written, 2 usage or unknown system call, 3 libseccomp failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAMILY_PREFIX "socket-family:"

static const unsigned long NAMESPACE_FLAGS[] = {
    CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
    CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP,
};

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mintfs-seccomp-bpf SYSCALL...\n");
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) {
    fprintf(stderr, "seccomp_init failed\n");
    return 3;
  }
  int rc = 0;
  for (int i = 1; i < argc && rc == 0; i++) {
    if (strncmp(argv[i], FAMILY_PREFIX, strlen(FAMILY_PREFIX)) == 0) {
      char *end = NULL;
      long family = strtol(argv[i] + strlen(FAMILY_PREFIX), &end, 10);
      if (end == NULL || *end != '\0' || family <= 0 || family > 255) {
        fprintf(stderr, "bad address family in %s\n", argv[i]);
        seccomp_release(ctx);
        return 2;
      }
      rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                            SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)family));
      continue;
    }
    int nr = seccomp_syscall_resolve_name(argv[i]);
    if (nr == __NR_SCMP_ERROR) {
      fprintf(stderr, "unknown system call %s\n", argv[i]);
      seccomp_release(ctx);
      return 2;
    }
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
  }
  for (size_t i = 0; rc == 0 && i < sizeof NAMESPACE_FLAGS / sizeof NAMESPACE_FLAGS[0]; i++) {
    unsigned long flag = NAMESPACE_FLAGS[i];
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
  }
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc == 0) rc = seccomp_export_bpf(ctx, STDOUT_FILENO);
  seccomp_release(ctx);
  if (rc != 0) {
    fprintf(stderr, "libseccomp: error %d\n", rc);
    return 3;
  }
  return 0;
}
