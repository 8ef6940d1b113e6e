/*
 * The gateway bridge inside a sandbox whose loopback is not the host
 * kernel's (gVisor: `mintfs run --runtime runsc`). gVisor's network stack
 * (netstack) answers 127.0.0.1 itself, so a bridge listening on the host
 * side of the network namespace, as runc and Docker have, is out of reach.
 * Instead mintfs-run-init starts this bridge inside, as the agent's uid and
 * under the sandbox's limits: it listens on 127.0.0.1:8787 and forwards each
 * connection to the gateway's unix socket, bound into the sandbox (runsc's
 * gofer opens it: --host-uds=open).
 *
 * The listener is ready before bridge_start returns, so the command's first
 * request cannot race it. One process per connection, at most
 * BRIDGE_CONNECTIONS at once (more wait, unaccepted, in the listen queue),
 * the same bound as the host-side bridge (src/contain/gateway-bridge.ts).
 */
#define _GNU_SOURCE
#include "run-bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define BRIDGE_CONNECTIONS 64

/* Copies what `from` has to `to`; 0 at end of stream (then `to` is half-closed), -1 on error. */
static int pump(int from, int to) {
  char buffer[65536];
  ssize_t got = read(from, buffer, sizeof(buffer));
  if (got < 0) return errno == EINTR || errno == EAGAIN ? 1 : -1;
  if (got == 0) {
    shutdown(to, SHUT_WR);
    return 0;
  }
  for (ssize_t sent = 0; sent < got;) {
    ssize_t n = send(to, buffer + sent, (size_t)(got - sent), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    sent += n;
  }
  return 1;
}

/* One connection: to the gateway's socket, both directions until both ends are done. */
static void relay(int client, const char *socket_path) {
  int gateway = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, socket_path, sizeof(addr.sun_path) - 1);
  if (gateway < 0 || connect(gateway, (struct sockaddr *)&addr, sizeof(addr)) != 0) return;
  const int ends[2] = {client, gateway};
  struct pollfd fds[2] = {{client, POLLIN, 0}, {gateway, POLLIN, 0}};
  int open_directions = 2;
  while (open_directions > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      int state = pump(ends[i], ends[1 - i]);
      if (state < 0) return;
      if (state == 0) {
        fds[i].fd = -1; /* that direction is done: poll() ignores a negative fd */
        open_directions--;
      }
    }
  }
}

/* Accepts for ever; reaps finished relays, and waits for one when BRIDGE_CONNECTIONS run. */
static void listen_loop(int listener, const char *socket_path) {
  int running = 0;
  for (;;) {
    while (running > 0 && waitpid(-1, NULL, running >= BRIDGE_CONNECTIONS ? 0 : WNOHANG) > 0)
      running--;
    int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) continue;
      _exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(listener);
      relay(client, socket_path);
      _exit(0);
    }
    if (pid > 0) running++;
    close(client);
  }
}

int bridge_start(int port, const char *socket_path) {
  if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    fprintf(stderr, "mintfs-run-init: --bridge: the socket path is too long\n");
    return -1;
  }
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) {
    perror("mintfs-run-init: bridge socket");
    return -1;
  }
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
      listen(listener, BRIDGE_CONNECTIONS) != 0) {
    perror("mintfs-run-init: bridge listen on 127.0.0.1");
    close(listener);
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    perror("mintfs-run-init: bridge fork");
    close(listener);
    return -1;
  }
  if (pid == 0) {
    /* A relay's peer that goes away must not kill it (send uses MSG_NOSIGNAL; this is the net). */
    signal(SIGPIPE, SIG_IGN);
    listen_loop(listener, socket_path);
  }
  close(listener);
  return 0;
}
