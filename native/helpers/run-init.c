/*
 * mintfs-run-init CMD [ARGS...]: pid 1 of a container `mintfs run --runtime
 * docker` starts. Statically linked, because it is bound into images that
 * may have no libc (or a different one).
 *
 * 1. Waits (up to 5 s) until 127.0.0.1:8787 accepts: the bridge to the
 *    gateway is started from the host side, in this network namespace,
 *    once the container exists, so the command's first request cannot race
 *    it.
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "mintfs-run-init: usage: mintfs-run-init CMD [ARGS...]\n");
    return 125;
  }
  for (int waited = 0; !bridge_ready(); waited += 10) {
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
    execvp(argv[1], argv + 1);
    fprintf(stderr, "mintfs-run-init: %s: %s\n", argv[1], strerror(errno));
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
