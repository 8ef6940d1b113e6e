/*
 * Who is reading: the FUSE request's uid, gid and pid, and what /proc says of
 * that pid at the time of the open: its start time (so a log line still names
 * one process after the pid is reused), its executable and its cgroup (which
 * names the container). Unknown fields stay empty; rules fail closed on them.
 */
#ifndef MINTFS_READER_H
#define MINTFS_READER_H
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#define READER_PATH_MAX 512
#define READER_CGROUP_MAX 2048
/* An exe or cgroup path as reader_log_text writes it: each byte at most three. */
#define READER_LOG_TEXT_MAX (3 * (READER_PATH_MAX - 1) + 1)
/*
 * The longest reader caveat: TOKEN_LIMITS.maxCaveatBytes in src/token/limits.ts
 * (test/unit/native-mint.test.ts checks they agree). A reader whose encoded
 * exe and cgroup would not fit gets no token (EIO and a mint-failed line),
 * never a truncated caveat.
 */
#define READER_CAVEAT_MAX 2048

typedef struct {
  uid_t uid;
  gid_t gid;
  pid_t pid;
  uint64_t start_ticks; /* 0: unknown */
  char exe[READER_PATH_MAX];
  /* The cgroup path that names the container best (see cgroup_rank in reader.c). */
  char cgroup[READER_PATH_MAX];
} reader_identity;

/* Every cgroup hierarchy's path of a reader, '\n'-separated, for container matching. */
typedef struct {
  char paths[READER_CGROUP_MAX];
} reader_cgroups;

typedef struct {
  int has_uids;
  uint32_t *uids;
  size_t uid_count;
  char **exes; /* NULL: any */
  size_t exe_count;
  char **containers; /* NULL: any */
  size_t container_count;
} reader_rules;

#define READER_CACHE_SLOTS 64

/*
 * What /proc said of a reader, remembered for a second per thread id: its
 * start time and cgroups, with an open /proc/PID directory. That directory
 * names one process for as long as it is open (the kernel keys it by the
 * process, not the number): once that process has exited, the executable
 * link read through it fails, even if the pid now belongs to another. A hit
 * costs one readlinkat of the executable through it (exec changes the
 * executable, not the pid), and its success, with the executable it had, is
 * what says the cached start time and cgroups are still that process's
 * (an exec by another of its threads moves the pid, and the directory, to
 * that thread, cgroups and all: read afresh); a miss opens /proc/PID and reads
 * its stat (the kernel walks the task for it) and cgroup: under eight readers
 * /proc was a tenth of the daemon's time. One per session, used by every
 * thread that serves it: a slot's lock is held while its directory is read
 * (so no other thread closes it, and its number cannot name another file
 * meanwhile) or the slot is filled, never while a miss reads /proc.
 */
typedef struct {
  struct {
    pthread_mutex_t lock;
    pid_t pid;
    int dir; /* /proc/PID, O_PATH; -1: empty */
    uint64_t start_ticks;
    int64_t read_at_ms;
    char exe[READER_PATH_MAX]; /* as read when filled: another at a hit is an exec */
    char cgroup[READER_PATH_MAX];
    reader_cgroups all;
  } slots[READER_CACHE_SLOTS];
} reader_cache;

void reader_cache_init(reader_cache *cache);
void reader_cache_destroy(reader_cache *cache);
/* Reads /proc for `pid`, through the session's cache. */
void reader_identify(reader_cache *cache, uid_t uid, gid_t gid, pid_t pid, reader_identity *out,
                     reader_cgroups *cgroups);
/* NULL when allowed, else why not (a static string). */
const char *reader_refusal(const reader_rules *rules, const reader_identity *who,
                           const reader_cgroups *cgroups);
/*
 * `reader uid=.. gid=.. pid=.. start=.. exe=.. cgroup=..`, values
 * percent-encoded, into out[size]. 0, or -1 when it does not fit (out is then
 * empty): never a truncated caveat.
 */
int reader_caveat(const reader_identity *who, char *out, size_t size);
/*
 * An exe or cgroup path as the audit log shows it: control bytes (C0, DEL,
 * C1), '%' and bytes that are not well-formed UTF-8 percent-encoded, the
 * rest as it is. So distinct paths stay distinct in the log (a JS string
 * would turn every stray byte into U+FFFD), nothing in them acts on a
 * terminal, and a hostile reader cannot make its audit line long enough
 * (JSON's \u00XX for each control byte) that a shared pipe splits it.
 */
void reader_log_text(const char *in, char out[READER_LOG_TEXT_MAX]);
void reader_rules_free(reader_rules *rules);
#endif
