/*
 * Who is reading: the FUSE request's uid, gid and pid, and what /proc says of
 * that pid at the time of the open: its start time (so a log line still names
 * one process after the pid is reused), its executable and its cgroup (which
 * names the container). Unknown fields stay empty; rules fail closed on them.
 */
#ifndef MINTFS_READER_H
#define MINTFS_READER_H
#include <stdint.h>
#include <sys/types.h>

#define READER_PATH_MAX 512
#define READER_CGROUP_MAX 2048

typedef struct {
  uid_t uid;
  gid_t gid;
  pid_t pid;
  uint64_t start_ticks; /* 0: unknown */
  char exe[READER_PATH_MAX];
  /* The cgroup path that names the container best (see cgroup_rank in reader.c). */
  char cgroup[READER_PATH_MAX];
  /* Every hierarchy's path, '\n'-separated, for container matching. */
  char cgroups[READER_CGROUP_MAX];
} reader_identity;

typedef struct {
  int has_uids;
  uint32_t *uids;
  size_t uid_count;
  char **exes; /* NULL: any */
  size_t exe_count;
  char **containers; /* NULL: any */
  size_t container_count;
} reader_rules;

void reader_identify(uid_t uid, gid_t gid, pid_t pid, reader_identity *out);
/* NULL when allowed, else why not (a static string). */
const char *reader_refusal(const reader_rules *rules, const reader_identity *who);
/* `reader uid=.. gid=.. pid=.. start=.. exe=.. cgroup=..`, values percent-encoded. */
void reader_caveat(const reader_identity *who, char *out, size_t size);
void reader_rules_free(reader_rules *rules);
#endif
