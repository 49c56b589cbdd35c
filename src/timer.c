/*
 * timer: the libevent implementation of timer.h. A struct timer is one
 * allocation holding the callback and, after it, the libevent event
 * (event_assign() into event_get_struct_event_size() bytes), as compact
 * as the evtimer_new() it replaces.
 */
#include "fgconfig.h"

#include <stddef.h>
#include <stdlib.h>

#include <event2/event.h>

#include "timer.h"
#include "util.h"

struct timer {
	void			(*cb)(void *);
	void			*arg;
	_Alignas(max_align_t) unsigned char ev[];	/* struct event */
};

#define TIMER_EVENT(t)	((struct event *)(void *)(t)->ev)

static void
timer_run(evutil_socket_t fd, short what, void *arg)
{
	struct timer *t = arg;

	t->cb(t->arg);
}

struct timer *
timer_new(struct event_base *base, bool periodic, void (*cb)(void *),
    void *arg)
{
	struct timer *t;

	if ((t = malloc(sizeof(*t) + event_get_struct_event_size())) == NULL)
		return NULL;
	t->cb = cb;
	t->arg = arg;
	if (event_assign(TIMER_EVENT(t), base, -1, periodic ? EV_PERSIST : 0,
	    timer_run, t) == -1) {
		free(t);
		return NULL;
	}
	return t;
}

void
timer_free(struct timer *t)
{
	if (t == NULL)
		return;
	event_del(TIMER_EVENT(t));
	free(t);
}

void
timer_start(struct timer *t, uint64_t ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000) * 1000,
	};

	event_add(TIMER_EVENT(t), &tv);
}

void
timer_stop(struct timer *t)
{
	event_del(TIMER_EVENT(t));
}

void
timer_fire(struct timer *t)
{
	event_active(TIMER_EVENT(t), EV_TIMEOUT, 0);
}

/* A timer_once() call, freed when it runs. */
struct timer_call {
	void			(*cb)(void *);
	void			*arg;
};

static void
timer_once_run(evutil_socket_t fd, short what, void *arg)
{
	struct timer_call c = *(struct timer_call *)arg;

	free(arg);
	c.cb(c.arg);
}

int
timer_once(struct event_base *base, void (*cb)(void *), void *arg)
{
	struct timer_call *c;

	if ((c = malloc(sizeof(*c))) == NULL)
		return -1;
	c->cb = cb;
	c->arg = arg;
	if (event_base_once(base, -1, EV_TIMEOUT, timer_once_run, c,
	    NULL) == -1) {
		free(c);
		return -1;
	}
	return 0;
}

uint64_t
timer_now_ms(void)
{
	return util_now_ms();
}
