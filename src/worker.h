/*
 * worker: the relay processes of one fedgated (workers N in
 * fedgated.conf(5); doc/internals/workers.md). Every worker binds every
 * listener with SO_REUSEPORT and owns its legs, routes, resolver and TLS
 * contexts; they share the configuration and the dialback secret, and
 * nothing else. Worker 0 also serves the control socket and the metrics
 * endpoint, and asks the others for their part of an answer over one
 * socketpair each, made by the parent before it forks them (the mesh):
 *
 *	worker 0 --> worker i	one command line (a control command, at
 *				most CONTROL_LINE_MAX bytes), LF
 *	worker i --> worker 0	one reply line (the command's JSON reply,
 *				at most WORKER_REPLY_MAX bytes), LF
 *
 *	worker i --> worker 0	a note for worker j: "!j LINE", LF; worker 0
 *	worker 0 --> worker j	passes it on as it came (or takes it, j = 0)
 *
 * Replies come in the order of the requests; a note is one way, never
 * answered, and may come between them. Worker i runs the command
 * with the serve function it was given (control_execute()): worker 0 has
 * already checked the client's right to run it. A channel that breaks
 * this (a line too long) is closed; the parent stops everything when a
 * worker ends (priv.h), so a closed channel is never repaired.
 */
#ifndef FEDGATE_WORKER_H
#define FEDGATE_WORKER_H

#include <stddef.h>
#include <stdint.h>

#define WORKER_REQUEST_MAX	4096		/* bytes of a request line */
#define WORKER_REPLY_MAX	(64 * 1024 * 1024)	/* bytes of a reply */

struct event_base;
struct worker;
struct worker_mesh;
struct worker_fanout;

/*
 * Before the forks (the parent): the socketpairs between worker 0 and each
 * of workers 1 to n - 1. Return NULL with errno set.
 */
struct worker_mesh *worker_mesh_new(unsigned n);
/* A random number drawn once for m: the same in every worker of one
 * fedgated, and not in another's (it names the instance, worker_nonce()). */
uint32_t worker_mesh_nonce(const struct worker_mesh *m);
/* Close every descriptor of m and free it (the parent, after the forks).
 * NULL is a no-op. */
void	worker_mesh_free(struct worker_mesh *m);
/*
 * In worker index (after its fork): take its ends of m out of m (the
 * caller then frees m, closing the others). Watch them on base once
 * worker_start() is called. Return NULL if out of memory.
 */
struct worker *worker_new(struct event_base *base, struct worker_mesh *m,
	    unsigned index);
/* Close the channels (after one try to send what is owed); pending
 * fan-outs are cancelled. NULL is a no-op. */
void	worker_free(struct worker *);
unsigned worker_index(const struct worker *);
unsigned worker_count(const struct worker *);
/* The mesh's nonce (worker_mesh_nonce()). */
uint32_t worker_nonce(const struct worker *);

/*
 * Notes: a one-way line from any worker to another (through worker 0),
 * such as the answer to a ping that a worker's route sent, which came
 * back on a connection of another worker. note(arg, line) is called in
 * worker `to` with the line as it was sent. Set the handler before
 * worker_start(); a note that arrives without one is dropped.
 */
void	worker_set_note(struct worker *, void (*note)(void *arg,
	    const char *line), void *arg);
/* Send line (at most WORKER_REQUEST_MAX bytes, no LF) to worker `to`, not
 * this one. 0, or -1 (no such worker, a channel closed, too long). */
int	worker_note(struct worker *, unsigned to, const char *line);

/*
 * Start reading the channels. Workers 1 to n - 1 answer each request
 * line with serve(arg, line): a malloc'd reply (one line, no LF), or NULL
 * (then the reply is {"ok":false,"error":"out of memory"}).
 */
int	worker_start(struct worker *, char *(*serve)(void *arg,
	    const char *line), void *arg);

/*
 * Worker 0: send line to every other worker, and call done(arg, replies,
 * n) once each has answered or timeout_ms has passed: replies[i] is the
 * reply of worker i + 1 (NUL-terminated, borrowed for the call), or NULL
 * if it did not answer in time or its channel is closed; n is the number
 * of other workers. Return the fan-out (for worker_fanout_cancel()), or
 * NULL if out of memory, not worker 0, or line is longer than
 * WORKER_REQUEST_MAX.
 */
struct worker_fanout *worker_fanout(struct worker *, const char *line,
	    unsigned timeout_ms,
	    void (*done)(void *arg, char *const *replies, unsigned n),
	    void *arg);
/* Forget f: done is never called. Its replies are read and dropped. */
void	worker_fanout_cancel(struct worker_fanout *f);
/* Worker 0: send line to every other worker, without waiting for the
 * replies (read and dropped). */
void	worker_broadcast(struct worker *, const char *line);

#endif
