/*
 * control: the control socket. A Unix stream socket; one command per line,
 * one JSON document per reply line (doc/internals/control-protocol.md).
 * SO_PEERCRED decides who may run mutating commands: root, or members of
 * the configured group.
 */
#ifndef FEDGATE_CONTROL_H
#define FEDGATE_CONTROL_H

#include <sys/types.h>

/*
 * The longest command line, in bytes without its LF. A longer line gets an
 * error reply and the connection is closed. fedgatectl uses the same bound.
 */
#define CONTROL_LINE_MAX	4096
/* Clients connected at once; one more is told so and disconnected. */
#define CONTROL_CLIENTS_MAX	32

struct daemon;
struct control;

/*
 * Create the socket at path with mode, owned by group (NULL: root's),
 * replacing a stale socket but refusing to steal one that a live daemon
 * answers on. Return NULL after logging why.
 */
struct control *control_new(struct daemon *d, const char *path, mode_t mode,
	    const char *group);
/* Start accepting clients (after privileges are dropped). */
int	control_listen(struct control *);
/*
 * Disconnect every client, close and unlink the socket. NULL: no-op.
 * Safe from inside a command handler: the socket goes at once, and the
 * clients (after one last attempt to write what they are owed) when the
 * handler returns.
 */
void	control_free(struct control *);
unsigned control_client_count(const struct control *);
/*
 * Run one command line for worker 0 (workers N; worker.h), in worker i of
 * d: no control socket here, and worker 0 has checked the client's right
 * to run it. Return the reply, one line of JSON (malloc'd), or NULL if out
 * of memory.
 */
char	*control_execute(struct daemon *d, const char *line);

#endif
