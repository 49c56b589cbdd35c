/*
 * A fake of timer.h for the scenario runner: a clock that moves only when
 * the scenario says (fake_timer_set, fake_timer_run_one), and timers that
 * fire in due order, ties in the order they were armed, the clock set to
 * each one's due time as it fires (as Unbound's fake_event.c does).
 */
#include "fgconfig.h"

#include <sys/queue.h>

#include <stdlib.h>

#include "fake.h"
#include "timer.h"

struct timer {
	TAILQ_ENTRY(timer)	 entry;
	void			(*cb)(void *);
	void			*arg;
	bool			 periodic;
	bool			 once;		/* timer_once(): freed as it runs */
	bool			 armed;
	uint64_t		 due;
	uint64_t		 interval;
	uint64_t		 seq;		/* arming order, for ties */
};
TAILQ_HEAD(timer_list, timer);

static struct timer_list timers = TAILQ_HEAD_INITIALIZER(timers);
static uint64_t clock_now, next_seq;

void
fake_timer_reset(uint64_t now)
{
	struct timer *t;

	/* Timers the legs still hold are gone with them; once-calls are
	 * ours. The rest is left to the process end. */
	while ((t = TAILQ_FIRST(&timers)) != NULL) {
		TAILQ_REMOVE(&timers, t, entry);
		if (t->once)
			free(t);
	}
	clock_now = now;
}

uint64_t
fake_timer_now(void)
{
	return clock_now;
}

void
fake_timer_set(uint64_t now)
{
	if (now > clock_now)
		clock_now = now;
}

unsigned
fake_timer_armed(void)
{
	const struct timer *t;
	unsigned n = 0;

	TAILQ_FOREACH(t, &timers, entry)
		n++;
	return n;
}

bool
fake_timer_run_one(uint64_t until)
{
	struct timer *t, *first = NULL;

	TAILQ_FOREACH(t, &timers, entry)
		if (t->due <= until && (first == NULL || t->due < first->due ||
		    (t->due == first->due && t->seq < first->seq)))
			first = t;
	if (first == NULL)
		return false;
	fake_timer_set(first->due);
	TAILQ_REMOVE(&timers, first, entry);
	if (first->once) {
		void (*cb)(void *) = first->cb;
		void *arg = first->arg;

		free(first);
		cb(arg);
		return true;
	}
	first->armed = false;
	if (first->periodic) {
		first->due = clock_now + first->interval;
		first->seq = next_seq++;
		first->armed = true;
		TAILQ_INSERT_TAIL(&timers, first, entry);
	}
	first->cb(first->arg);
	return true;
}

struct timer *
timer_new(struct event_base *base, bool periodic, void (*cb)(void *),
    void *arg)
{
	struct timer *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->cb = cb;
	t->arg = arg;
	t->periodic = periodic;
	return t;
}

void
timer_free(struct timer *t)
{
	if (t == NULL)
		return;
	timer_stop(t);
	free(t);
}

static void
timer_arm(struct timer *t, uint64_t due)
{
	timer_stop(t);
	t->due = due;
	t->seq = next_seq++;
	t->armed = true;
	TAILQ_INSERT_TAIL(&timers, t, entry);
}

void
timer_start(struct timer *t, uint64_t ms)
{
	t->interval = ms;
	timer_arm(t, clock_now + ms);
}

void
timer_stop(struct timer *t)
{
	if (!t->armed)
		return;
	TAILQ_REMOVE(&timers, t, entry);
	t->armed = false;
}

void
timer_fire(struct timer *t)
{
	uint64_t interval = t->interval;

	/* Runs now; a periodic one then goes on at its interval. */
	timer_arm(t, clock_now);
	t->interval = interval;
}

int
timer_once(struct event_base *base, void (*cb)(void *), void *arg)
{
	struct timer *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	t->cb = cb;
	t->arg = arg;
	t->once = true;
	timer_arm(t, clock_now);
	return 0;
}

uint64_t
timer_now_ms(void)
{
	return clock_now;
}
