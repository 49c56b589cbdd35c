/*
 * Unit tests for worker (the channels between worker 0 and the others):
 * three workers of one mesh on one event base; a fan-out gets every
 * worker's reply in its slot; replies pair with requests in order when
 * several are in flight; a cancelled fan-out never calls back and its
 * replies are dropped; a broadcast's replies are dropped; a worker that
 * closes its end gives NULL; one that does not answer in time gives NULL
 * after the timeout; a request line too long is never sent; notes reach
 * the worker they name, from any worker, through worker 0, between
 * requests and replies without disturbing their pairing.
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include "worker.h"

struct fixture {
	struct event_base	*base;
	struct worker		*w[3];
};

/* Notes taken, in order, as "wI<-LINE". */
static char	notes[8][64];
static unsigned	nnotes;
static struct event_base *notes_base;
static unsigned	notes_wanted;

static void
note_taken(void *arg, const char *line)
{
	if (nnotes < 8)
		snprintf(notes[nnotes++], sizeof(notes[0]), "%s<-%s",
		    (const char *)arg, line);
	if (nnotes >= notes_wanted)
		event_base_loopbreak(notes_base);
}

struct result {
	struct fixture	*f;
	int		 calls;
	char		*replies[2];
};

/* The serve arg of worker i: its number after "w". */
static char *
serve_numbered(void *arg, const char *line)
{
	size_t len = strlen(arg) + 1 + strlen(line) + 1;
	char *buf = malloc(len);

	if (buf != NULL)
		snprintf(buf, len, "%s:%s", (const char *)arg, line);
	return buf;
}

static void
done(void *arg, char *const *replies, unsigned n)
{
	struct result *r = arg;

	assert_int_equal(n, 2);
	r->calls++;
	for (unsigned i = 0; i < n; i++)
		r->replies[i] = replies[i] != NULL ? strdup(replies[i]) : NULL;
	event_base_loopbreak(r->f->base);
}

/* Three workers; those in start answer. */
static int
make(void **state, unsigned start)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct worker_mesh *m;
	static char names[3][3] = { "w0", "w1", "w2" };

	assert_non_null(f);
	assert_non_null(f->base = event_base_new());
	assert_non_null(m = worker_mesh_new(3));
	for (unsigned i = 0; i < 3; i++) {
		assert_non_null(f->w[i] = worker_new(f->base, m, i));
		assert_int_equal(worker_index(f->w[i]), i);
		assert_int_equal(worker_count(f->w[i]), 3);
	}
	worker_mesh_free(m);
	nnotes = 0;
	notes_base = f->base;
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(worker_nonce(f->w[i]), worker_nonce(f->w[0]));
		worker_set_note(f->w[i], note_taken, names[i]);
	}
	for (unsigned i = 0; i < 3; i++)
		if (start & (1u << i))
			assert_int_equal(worker_start(f->w[i], serve_numbered,
			    names[i]), 0);
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return make(state, 7);
}

/* Worker 2 never reads its channel. */
static int
setup_silent(void **state)
{
	return make(state, 3);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < 3; i++)
		worker_free(f->w[i]);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* Run the loop until a callback breaks it, at most 5 s. */
static void
run(struct fixture *f)
{
	struct timeval tv = { 5, 0 };

	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

static void
result_clear(struct result *r)
{
	for (unsigned i = 0; i < 2; i++) {
		free(r->replies[i]);
		r->replies[i] = NULL;
	}
	r->calls = 0;
}

static void
test_fanout(void **state)
{
	struct fixture *f = *state;
	struct result a = { .f = f }, b = { .f = f }, c = { .f = f };

	/* only worker 0 fans out */
	assert_null(worker_fanout(f->w[1], "x", 1000, done, &a));
	assert_non_null(worker_fanout(f->w[0], "sessions", 2000, done, &a));
	run(f);
	assert_int_equal(a.calls, 1);
	assert_string_equal(a.replies[0], "w1:sessions");
	assert_string_equal(a.replies[1], "w2:sessions");
	/* in flight together, each reply to its request; a broadcast and a
	 * cancelled one in between leave no trace */
	assert_non_null(worker_fanout(f->w[0], "one", 2000, done, &a));
	worker_broadcast(f->w[0], "drain");
	worker_fanout_cancel(worker_fanout(f->w[0], "gone", 2000, done, &c));
	assert_non_null(worker_fanout(f->w[0], "two", 2000, done, &b));
	result_clear(&a);
	run(f);
	if (b.calls == 0)
		run(f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(c.calls, 0);
	assert_string_equal(a.replies[1], "w2:one");
	assert_string_equal(b.replies[0], "w1:two");
	assert_string_equal(b.replies[1], "w2:two");
	result_clear(&a);
	result_clear(&b);
}

static void
test_closed(void **state)
{
	struct fixture *f = *state;
	struct result a = { .f = f };

	/* worker 2 goes: its slot is NULL, at once */
	worker_free(f->w[2]);
	f->w[2] = NULL;
	assert_non_null(worker_fanout(f->w[0], "status", 3000, done, &a));
	run(f);
	assert_int_equal(a.calls, 1);
	assert_string_equal(a.replies[0], "w1:status");
	assert_null(a.replies[1]);
	result_clear(&a);
}

static void
test_timeout(void **state)
{
	struct fixture *f = *state;
	struct result a = { .f = f };

	/* worker 2 never answers: NULL after the time */
	assert_non_null(worker_fanout(f->w[0], "routes", 200, done, &a));
	run(f);
	assert_int_equal(a.calls, 1);
	assert_null(a.replies[1]);
	result_clear(&a);
}

static void
test_too_long(void **state)
{
	struct fixture *f = *state;
	struct result a = { .f = f };
	char *line = malloc(WORKER_REQUEST_MAX + 2);

	assert_non_null(line);
	memset(line, 'x', WORKER_REQUEST_MAX + 1);
	line[WORKER_REQUEST_MAX + 1] = '\0';
	/* never sent: the channels stay */
	assert_null(worker_fanout(f->w[0], line, 3000, done, &a));
	worker_broadcast(f->w[0], line);
	line[WORKER_REQUEST_MAX] = '\0';
	assert_non_null(worker_fanout(f->w[0], line, 3000, done, &a));
	run(f);
	assert_int_equal(a.calls, 1);
	assert_int_equal(strlen(a.replies[0]), WORKER_REQUEST_MAX + 3);
	assert_int_equal(strlen(a.replies[1]), WORKER_REQUEST_MAX + 3);
	result_clear(&a);
	free(line);
}

static void
test_notes(void **state)
{
	struct fixture *f = *state;
	struct result a = { .f = f };

	/* not to oneself, not past the last worker, not a line with a LF */
	assert_int_equal(worker_note(f->w[1], 1, "x"), -1);
	assert_int_equal(worker_note(f->w[1], 3, "x"), -1);
	assert_int_equal(worker_note(f->w[0], 2, "a\nb"), -1);
	/* worker 1 to 2 passes through 0; 2 to 0; 0 to 1; with a fan-out
	 * in flight, whose replies still pair */
	assert_non_null(worker_fanout(f->w[0], "status", 2000, done, &a));
	assert_int_equal(worker_note(f->w[1], 2, "ack 1 a b c result"), 0);
	assert_int_equal(worker_note(f->w[2], 0, "to zero"), 0);
	assert_int_equal(worker_note(f->w[0], 1, "to one"), 0);
	notes_wanted = 3;
	run(f);
	if (a.calls == 0 || nnotes < 3)
		run(f);
	if (a.calls == 0 || nnotes < 3)
		run(f);
	assert_int_equal(a.calls, 1);
	assert_string_equal(a.replies[0], "w1:status");
	assert_string_equal(a.replies[1], "w2:status");
	assert_int_equal(nnotes, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_true(strcmp(notes[i], "w2<-ack 1 a b c result") == 0 ||
		    strcmp(notes[i], "w0<-to zero") == 0 ||
		    strcmp(notes[i], "w1<-to one") == 0);
	assert_string_not_equal(notes[0], notes[1]);
	assert_string_not_equal(notes[1], notes[2]);
	assert_string_not_equal(notes[0], notes[2]);
	result_clear(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fanout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup_silent,
		    teardown),
		cmocka_unit_test_setup_teardown(test_too_long, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_notes, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);	/* as fedgated: a closed channel */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
