/* The in-sandbox gateway bridge of mintfs-run-init (run-bridge.c). */
#ifndef MINTFS_RUN_BRIDGE_H
#define MINTFS_RUN_BRIDGE_H

/*
 * Listens on 127.0.0.1:`port` and, in a process of its own, forwards every
 * connection to the unix socket at `socket_path`. Returns 0 once listening
 * (the listener is then a child of the caller), -1 after saying why on stderr.
 */
int bridge_start(int port, const char *socket_path);

#endif
