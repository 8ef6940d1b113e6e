#define _GNU_SOURCE
#include "reader.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static ssize_t read_small_file(int dir, const char *name, char *buf, size_t size) {
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t used = 0;
  while (used + 1 < size) {
    ssize_t n = read(fd, buf + used, size - 1 - used);
    if (n <= 0) break;
    used += (size_t)n;
  }
  close(fd);
  buf[used] = '\0';
  return (ssize_t)used;
}

/* Field 22 of /proc/PID/stat, counted after the command name's closing parenthesis. */
static uint64_t start_ticks_of(int dir) {
  char buf[1024];
  if (read_small_file(dir, "stat", buf, sizeof(buf)) <= 0) return 0;
  char *p = strrchr(buf, ')');
  if (p == NULL) return 0;
  /* After ") " comes field 3 (state); starttime is field 22. */
  int field = 2;
  for (; *p != '\0'; p++) {
    if (*p == ' ' && ++field == 22) return strtoull(p + 1, NULL, 10);
  }
  return 0;
}

/*
 * Which hierarchy names the container best: the unified one (cgroup v2), else
 * v1's pids controller (every runtime sets it; mintfs run limits pids), else
 * the systemd one, else any other. Root paths ("/") name nothing.
 */
static int cgroup_rank(const char *controllers, const char *path) {
  if (strcmp(path, "/") == 0) return 0;
  if (controllers[0] == '\0') return 5;
  if (strcmp(controllers, "pids") == 0) return 4;
  if (strcmp(controllers, "name=systemd") == 0) return 3;
  return 2;
}

static void cgroups_of(int dir, reader_identity *out, reader_cgroups *all) {
  char buf[READER_CGROUP_MAX];
  if (read_small_file(dir, "cgroup", buf, sizeof(buf)) <= 0) return;
  size_t used = 0;
  int best = -1;
  char *saved = NULL;
  for (char *line = strtok_r(buf, "\n", &saved); line != NULL;
       line = strtok_r(NULL, "\n", &saved)) {
    /* hierarchy-id:controllers:path; the path may itself hold ':'. */
    char *first = strchr(line, ':');
    char *second = first == NULL ? NULL : strchr(first + 1, ':');
    if (second == NULL) continue;
    *second = '\0';
    const char *controllers = first + 1;
    const char *cg = second + 1;
    size_t len = strlen(cg);
    int rank = cgroup_rank(controllers, cg);
    if (rank > best && len < sizeof(out->cgroup)) {
      memcpy(out->cgroup, cg, len + 1);
      best = rank;
    }
    if (used + len + 2 <= sizeof(all->paths)) {
      memcpy(all->paths + used, cg, len);
      used += len;
      all->paths[used++] = '\n';
      all->paths[used] = '\0';
    }
  }
}

#define CGROUP_CACHE_MS 1000

static int64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void reader_identify(reader_cache *cache, uid_t uid, gid_t gid, pid_t pid, reader_identity *out,
                     reader_cgroups *all) {
  memset(out, 0, sizeof(*out));
  all->paths[0] = '\0';
  out->uid = uid;
  out->gid = gid;
  out->pid = pid;
  if (pid <= 0) return;
  int64_t now = monotonic_ms();
  __typeof__(&cache->slots[0]) slot = &cache->slots[(unsigned)pid % READER_CACHE_SLOTS];
  int stale = -1;
  pthread_mutex_lock(&slot->lock);
  if (slot->pid == pid && slot->dir >= 0 && now - slot->read_at_ms < CGROUP_CACHE_MS) {
    /* Through the directory of the process cached: it reads only if that process still runs. */
    ssize_t n = readlinkat(slot->dir, "exe", out->exe, sizeof(out->exe) - 1);
    out->exe[n > 0 ? n : 0] = '\0';
    /*
     * Another executable is an exec since the slot was filled, maybe by
     * another thread, which the kernel then gives the leader's pid (and its
     * start time) but not its cgroups: read afresh, as a process gone is.
     */
    if (n > 0 && strcmp(out->exe, slot->exe) == 0) {
      out->start_ticks = slot->start_ticks;
      memcpy(out->cgroup, slot->cgroup, sizeof(out->cgroup));
      memcpy(all, &slot->all, sizeof(*all));
      pthread_mutex_unlock(&slot->lock);
      return;
    }
    out->exe[0] = '\0';
    /* Emptied, so a dead reader's directory (and what it pins) is not kept. */
    stale = slot->dir;
    slot->dir = -1;
    slot->pid = 0;
  }
  pthread_mutex_unlock(&slot->lock);
  if (stale >= 0) close(stale);
  /* One lookup of /proc/PID, then its files relative to it: all of one process. */
  char path[48];
  snprintf(path, sizeof(path), "/proc/%d", (int)pid);
  int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  out->start_ticks = start_ticks_of(dir);
  ssize_t n = readlinkat(dir, "exe", out->exe, sizeof(out->exe) - 1);
  out->exe[n > 0 ? n : 0] = '\0';
  cgroups_of(dir, out, all);
  /* Cached only when /proc answered: an unreadable reader is read afresh at its next open. */
  if (out->start_ticks == 0 || n <= 0) {
    close(dir);
    return;
  }
  pthread_mutex_lock(&slot->lock);
  int replaced = slot->dir;
  slot->pid = pid;
  slot->dir = dir;
  slot->start_ticks = out->start_ticks;
  slot->read_at_ms = now;
  memcpy(slot->exe, out->exe, sizeof(slot->exe));
  memcpy(slot->cgroup, out->cgroup, sizeof(slot->cgroup));
  memcpy(&slot->all, all, sizeof(*all));
  pthread_mutex_unlock(&slot->lock);
  if (replaced >= 0) close(replaced);
}

void reader_cache_init(reader_cache *cache) {
  for (size_t i = 0; i < READER_CACHE_SLOTS; i++) {
    pthread_mutex_init(&cache->slots[i].lock, NULL);
    cache->slots[i].dir = -1;
    cache->slots[i].pid = 0;
  }
}

void reader_cache_destroy(reader_cache *cache) {
  for (size_t i = 0; i < READER_CACHE_SLOTS; i++) {
    if (cache->slots[i].dir >= 0) close(cache->slots[i].dir);
    cache->slots[i].dir = -1;
    pthread_mutex_destroy(&cache->slots[i].lock);
  }
}

/*
 * Is any cgroup path of the reader `name` or below it (an entry starting
 * with '/': anchored at the root, so a child cgroup a reader makes under its
 * own cannot match), or has it `name` as one of its segments (any other)?
 */
static int in_container(const reader_cgroups *all, const char *name) {
  size_t name_len = strlen(name);
  const char *p = all->paths;
  if (name[0] == '/') {
    while (*p != '\0') {
      const char *end = strchr(p, '\n');
      size_t len = end == NULL ? strlen(p) : (size_t)(end - p);
      if (len >= name_len && memcmp(p, name, name_len) == 0 &&
          (len == name_len || p[name_len] == '/'))
        return 1;
      p += len;
      if (*p == '\n') p++;
    }
    return 0;
  }
  while (*p != '\0') {
    const char *segment = p;
    while (*p != '\0' && *p != '/' && *p != '\n') p++;
    if ((size_t)(p - segment) == name_len && memcmp(segment, name, name_len) == 0) return 1;
    if (*p != '\0') p++;
  }
  return 0;
}

const char *reader_refusal(const reader_rules *rules, const reader_identity *who,
                           const reader_cgroups *cgroups) {
  if (rules == NULL) return NULL;
  if (rules->has_uids) {
    int allowed = 0;
    for (size_t i = 0; i < rules->uid_count && !allowed; i++) allowed = rules->uids[i] == who->uid;
    if (!allowed) return "uid not in readers.uids";
  }
  if (rules->exes != NULL) {
    int allowed = 0;
    for (size_t i = 0; i < rules->exe_count && !allowed; i++)
      allowed = who->exe[0] != '\0' && strcmp(rules->exes[i], who->exe) == 0;
    if (!allowed) return "executable not in readers.exe";
  }
  if (rules->containers != NULL) {
    int allowed = 0;
    for (size_t i = 0; i < rules->container_count && !allowed; i++)
      allowed = in_container(cgroups, rules->containers[i]);
    if (!allowed) return "cgroup not in readers.containers";
  }
  return NULL;
}

/*
 * Caveats are space-separated words: percent-encode anything outside printable
 * ASCII, and %. Returns the new length, or 0 when out[size] has no room.
 */
static size_t append_encoded(char *out, size_t used, size_t size, const char *value) {
  static const char HEX[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
    if (*p <= 0x20 || *p >= 0x7f || *p == '%') {
      if (used + 4 > size) return 0;
      out[used++] = '%';
      out[used++] = HEX[*p >> 4];
      out[used++] = HEX[*p & 15];
    } else {
      if (used + 2 > size) return 0;
      out[used++] = (char)*p;
    }
  }
  out[used] = '\0';
  return used;
}

/*
 * How many bytes of well-formed UTF-8 start at p (1 to 4; RFC 3629: no
 * overlong forms, surrogates or code points past U+10FFFF), or 0. A C1
 * control character (U+0080-U+009F) counts as not well-formed: terminals
 * act on some of them.
 */
static size_t utf8_length(const unsigned char *p) {
  if (p[0] < 0x80) return 1;
  unsigned lo = 0x80, hi = 0xBF;
  size_t n;
  if (p[0] == 0xC2) {
    lo = 0xA0; /* C2 80-9F: the C1 controls */
    n = 2;
  } else if (p[0] >= 0xC3 && p[0] <= 0xDF) {
    n = 2;
  } else if (p[0] == 0xE0) {
    lo = 0xA0;
    n = 3;
  } else if (p[0] == 0xED) {
    hi = 0x9F;
    n = 3;
  } else if (p[0] >= 0xE1 && p[0] <= 0xEF) {
    n = 3;
  } else if (p[0] == 0xF0) {
    lo = 0x90;
    n = 4;
  } else if (p[0] == 0xF4) {
    hi = 0x8F;
    n = 4;
  } else if (p[0] >= 0xF1 && p[0] <= 0xF3) {
    n = 4;
  } else {
    return 0;
  }
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xBF) return 0; /* a NUL ends the loop here too */
  return n;
}

void reader_log_text(const char *in, char out[READER_LOG_TEXT_MAX]) {
  static const char HEX[] = "0123456789ABCDEF";
  size_t used = 0;
  const unsigned char *p = (const unsigned char *)in;
  /* in holds < READER_PATH_MAX bytes, each at most 3 out: always room. */
  for (size_t i = 0; p[i] != '\0' && i < READER_PATH_MAX;) {
    size_t n = p[i] < 0x20 || p[i] == 0x7f || p[i] == '%' ? 0 : utf8_length(p + i);
    if (n == 0) {
      out[used++] = '%';
      out[used++] = HEX[p[i] >> 4];
      out[used++] = HEX[p[i] & 15];
      i++;
    } else {
      memcpy(out + used, p + i, n);
      used += n;
      i += n;
    }
  }
  out[used] = '\0';
}

int reader_caveat(const reader_identity *who, char *out, size_t size) {
  int n = snprintf(out, size, "reader uid=%u gid=%u pid=%d start=%llu exe=", (unsigned)who->uid,
                   (unsigned)who->gid, (int)who->pid, (unsigned long long)who->start_ticks);
  size_t used = n < 0 || (size_t)n >= size ? 0 : append_encoded(out, (size_t)n, size, who->exe);
  if (used == 0 || used + 9 > size) goto too_long;
  memcpy(out + used, " cgroup=", 9);
  used += 8;
  if (append_encoded(out, used, size, who->cgroup) == 0) goto too_long;
  return 0;
too_long:
  if (size > 0) out[0] = '\0';
  return -1;
}

void reader_rules_free(reader_rules *rules) {
  if (rules == NULL) return;
  free(rules->uids);
  for (size_t i = 0; i < rules->exe_count; i++) free(rules->exes[i]);
  free(rules->exes);
  for (size_t i = 0; i < rules->container_count; i++) free(rules->containers[i]);
  free(rules->containers);
  free(rules);
}
