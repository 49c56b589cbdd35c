/*
 * The bodies of struct control and struct control_client, and the command
 * table, shared by control.c (the socket, its clients, framing, dispatch)
 * and control_cmd.c (the command handlers). Nothing else includes this
 * file.
 */
#ifndef FEDGATE_CONTROL_PRIVATE_H
#define FEDGATE_CONTROL_PRIVATE_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct daemon;
struct evconnlistener;
struct event;
struct json_object;

struct control_client {
	TAILQ_ENTRY(control_client) entry;
	struct control		*ctl;
	struct bufferevent	*bev;
	uint64_t		 id;		/* for log lines */
	uid_t			 uid;		/* SO_PEERCRED at accept */
	gid_t			 gid;
	pid_t			 pid;
	int			 may_mutate;	/* -1 not known yet, 0 no, 1 yes */
	bool			 blocked;	/* reading stopped: output too big */
	bool			 eof;		/* the client sent its last byte */
	bool			 closing;	/* close once the output is sent */
	/* A reply finished later (control_defer()); lines wait meanwhile. */
	struct json_object	*deferred;	/* the reply, or NULL */
	struct event		*deferred_timer; /* its time bound */
	unsigned		 deferred_sec;
	void			(*deferred_cancel)(void *);
	void			*deferred_arg;
	bool			 deferred_fanout; /* waits for the workers:
						   not in ndeferred */
};

struct control {
	struct daemon		*d;
	char			*path;
	int			 fd;
	bool			 bound;		/* we created path: unlink it */
	bool			 has_group;
	gid_t			 gid;		/* the group that may mutate */
	struct evconnlistener	*listener;
	struct event		*pause;		/* re-enables accept */
	int			 spare;		/* /dev/null, held for a client
						   when descriptors run out */
	TAILQ_HEAD(, control_client) clients;
	unsigned		 nclients;
	uint64_t		 next_id;
	bool			 full;		/* warned that clients are at max */
	unsigned		 ndeferred;	/* clients waiting for a reply */
	unsigned		 busy;		/* inside a client callback */
	bool			 dying;		/* control_free() while busy */
};

/* When a command needs the right to mutate. */
enum control_access {
	CONTROL_READ,
	CONTROL_WRITE,
	CONTROL_WRITE_WITH_ARGS		/* only when it is given arguments */
};

/*
 * Replies that come later: at most CONTROL_DEFERRED_MAX clients wait for
 * one at a time, each for at most the seconds its handler gave (and less
 * than the client's idle timeout).
 */
#define CONTROL_DEFERRED_MAX	4
#define CONTROL_DEFERRED	1	/* a handler's return: see control_defer() */

/*
 * Fill reply with the command's fields from its argc arguments argv (the
 * words after the command's name; their count is already checked against
 * the row). Return 0, or -1 after adding "error" (control_error()). A
 * handler may call control_free() on its own control (drain): the reply
 * is still queued and sent before the clients go.
 */
typedef int (*control_handler)(struct control_client *, struct json_object *,
    int, char **);

struct control_command {
	const char		*name;		/* its words, one space apart */
	const char		*args;		/* for usage and help */
	int			 min_args;
	int			 max_args;
	enum control_access	 access;
	control_handler		 handler;
	const char		*help;
};

/* Every command, in the order help lists them (control_cmd.c). */
extern const struct control_command control_commands[];
extern const size_t control_ncommands;

#define CONTROL_ARGS_MAX	16		/* words on one line */

/* What control_parse_line() made of a line. */
enum control_parse {
	CONTROL_PARSE_OK,
	CONTROL_PARSE_TOO_MANY,		/* more than CONTROL_ARGS_MAX words */
	CONTROL_PARSE_EMPTY,
	CONTROL_PARSE_UNKNOWN,		/* no command's name starts it */
	CONTROL_PARSE_USAGE		/* too few or too many arguments */
};

/*
 * Parse one command line, sans I/O: split line (changed in place) at
 * blanks, find the command whose name is its first words (the longest
 * that matches), and check its number of arguments. With OK or USAGE, set
 * *cmd, and argv[0..*argc) to the arguments (the words after the name,
 * pointing into line).
 */
enum control_parse control_parse_line(char *line,
	    char *argv[CONTROL_ARGS_MAX], int *argc,
	    const struct control_command **cmd);

/*
 * From a handler only: answer later. Keep reply (a reference is taken);
 * the client's next lines wait. Within timeout_sec, the caller adds its
 * fields to cc->deferred and calls control_finish(); if the time runs out,
 * the client goes or the control socket closes first, cancel(arg) is
 * called instead (then the reply, if the client is still there, says
 * "timed out"), and cc must not be used after. Return 0 (the handler then
 * returns CONTROL_DEFERRED), or -1 with reply's error set (too many
 * replies pending, out of memory).
 */
int	control_defer(struct control_client *cc, struct json_object *reply,
	    unsigned timeout_sec, void (*cancel)(void *), void *arg);
/*
 * Send cc's deferred reply, "ok" from rc (0 or -1, with "error" added),
 * and go on with the lines it sent meanwhile. Not from within a handler.
 */
void	control_finish(struct control_client *cc, int rc);

/* Add "error" to reply. Return -1, for handlers to return. */
int	control_error(struct json_object *reply, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
