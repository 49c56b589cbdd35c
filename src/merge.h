/*
 * merge: the replies of the workers made one (workers N;
 * doc/internals/workers.md). Worker 0 runs a control command itself, asks
 * the other workers to run it too (worker.h), and merges their replies
 * into its own here: arrays of legs and routes put end to end, counts
 * summed, the Prometheus expositions summed sample by sample, the first
 * error kept. Sans-I/O: JSON and text in, JSON and text out.
 */
#ifndef FEDGATE_MERGE_H
#define FEDGATE_MERGE_H

struct evbuffer;
struct json_object;

/* What a control command asks of the other workers. */
enum merge_kind {
	MERGE_NONE,		/* worker 0 answers alone (help, check...) */
	MERGE_GATHER,		/* every worker runs it; the replies merged */
	MERGE_BROADCAST		/* every worker runs it; worker 0 answers
				   without waiting (drain) */
};

/* The kind of the command named command (its canonical name). */
enum merge_kind merge_kind(const char *command);

/*
 * Merge into reply, worker 0's reply to command (rc: its handler's 0 or
 * -1), the replies of workers 1 to n: peers[i] is worker i + 1's reply,
 * JSON text, or NULL if it gave none. Return the result of the whole, 0;
 * or -1 with reply's "error" (and "errors") those of the first worker
 * that failed, its number in the text ("worker 2: ...").
 */
int	merge_replies(const char *command, struct json_object *reply, int rc,
	    char *const *peers, unsigned n);

/*
 * Sum n Prometheus text expositions (format 0.0.4, as metrics_render()
 * writes them: every value an integer or a decimal with at most three
 * digits after the point) into out: each sample once, its value the sum of
 * its values in the texts; comment lines once; a sample that only some
 * texts have comes in its family, after the samples that precede it.
 * Return 0, or -1 if a text is malformed or out of memory.
 */
int	merge_metrics(const char *const *texts, unsigned n,
	    struct evbuffer *out);

#endif
