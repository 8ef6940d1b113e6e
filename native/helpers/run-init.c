/*
 * mintfs-run-init [--no-wait | --bridge SOCKET] -- CMD [ARGS...]: pid 1 of
 * every sandbox `mintfs run` starts (bubblewrap, runc, runsc, Docker). Statically linked, because
 * it is bound into images that may have no libc (or a different one).
 *
 * 0. Makes itself non-dumpable: the agent runs as the same uid, and would
 *    otherwise read or rewrite pid 1's memory (/proc/1/mem) or take its
 *    descriptors (pidfd_getfd), and so steer its supervisor. Then closes
 *    every descriptor but stdin, stdout and stderr: nothing the operator's
 *    process had open (or a runtime left behind) reaches the command.
 * 1. Unless --no-wait, waits (up to 5 s) until 127.0.0.1:8787 accepts: the
 *    bridge to the gateway is started from the host side, in this network
 *    namespace, once the container exists, so the command's first request
 *    cannot race it. (Under bubblewrap the command's launcher starts the
 *    bridge inside and waits for it itself: --no-wait. Under gVisor, whose
 *    loopback the host side cannot reach, --bridge SOCKET starts the bridge
 *    here, listening before the command starts: run-bridge.c.)
 * 2. Runs the command as its child. A process that is pid 1 gets no
 *    default signal actions, so SIGTERM to a bare command would be ignored:
 *    every catchable signal is forwarded to the child instead.
 * 3. Reaps every orphan, and exits with the command's status (128 + N when
 *    signal N ended it), as a shell would report it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run-bridge.h"

#define GATEWAY_PORT 8787
#define WAIT_MS 5000

static volatile pid_t child = 0;

static void forward(int sig) {
  if (child > 0) kill(child, sig);
}

static int bridge_ready(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(GATEWAY_PORT);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
  close(fd);
  return ok;
}

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* Every descriptor from 3 up; one by one where close_range is missing (before 5.9). */
static void close_inherited(void) {
  if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  for (long fd = 3; fd < (max > 0 ? max : 65536); fd++) close((int)fd);
}

static int usage(void) {
  fprintf(
      stderr,
      "mintfs-run-init: usage: mintfs-run-init [--no-wait | --bridge SOCKET] -- CMD [ARGS...]\n");
  return 125;
}

int main(int argc, char **argv) {
  /* Before anything else: no window in which pid 1 can be read. Fail closed. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    perror("mintfs-run-init: prctl(PR_SET_DUMPABLE)");
    return 125;
  }
  close_inherited();
  int wait_for_bridge = 1;
  const char *bridge_socket = NULL;
  int first = 1;
  for (; first < argc && strcmp(argv[first], "--") != 0; first++) {
    if (strcmp(argv[first], "--no-wait") == 0) wait_for_bridge = 0;
    else if (strcmp(argv[first], "--bridge") == 0 && first + 1 < argc)
      bridge_socket = argv[++first];
    else return usage();
  }
  /* The command comes after "--": one that starts with "-" is never read as an option. */
  if (first >= argc - 1) return usage();
  char **command = argv + first + 1;
  if (bridge_socket != NULL) {
    /* Listening once this returns: nothing to wait for. */
    if (bridge_start(GATEWAY_PORT, bridge_socket) != 0) return 125;
    wait_for_bridge = 0;
  }
  for (int waited = 0; wait_for_bridge && !bridge_ready(); waited += 10) {
    if (waited >= WAIT_MS) {
      fprintf(stderr, "mintfs-run-init: the gateway bridge did not come up on 127.0.0.1:%d\n",
              GATEWAY_PORT);
      return 125;
    }
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }

  /* Signals that arrive before the fork are held, then forwarded. */
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  child = fork();
  if (child < 0) {
    perror("mintfs-run-init: fork");
    return 125;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(command[0], command);
    fprintf(stderr, "mintfs-run-init: %s: %s\n", command[0], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = forward;
  sigemptyset(&action.sa_mask);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD) continue;
    sigaction(sig, &action, NULL);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);

  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      return 125;
    }
    if (pid != child) continue; /* an orphan, reaped */
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  }
}
