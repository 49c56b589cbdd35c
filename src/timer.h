/*
 * timer: one-shot and periodic timers on the loop, and the monotonic
 * clock. leg and route arm their timeouts here instead of calling
 * libevent's evtimer API, so that the scenario tests can link a fake
 * clock in place of this module (tests/unit/fake_timer.c,
 * doc/internals/scenarios.md).
 */
#ifndef FEDGATE_TIMER_H
#define FEDGATE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct timer;

/*
 * A timer on base calling cb(arg) from the loop when it fires: once per
 * timer_start() or, periodic, every interval until timer_stop(). Not
 * armed yet. Return NULL if out of memory.
 */
struct timer *timer_new(struct event_base *base, bool periodic,
	    void (*cb)(void *), void *arg);
/* Disarm and free t. NULL is a no-op. */
void	timer_free(struct timer *t);
/* (Re)arm t to fire in ms milliseconds (periodic: every ms). */
void	timer_start(struct timer *t, uint64_t ms);
/* Disarm t; its callback does not run until the next timer_start(). */
void	timer_stop(struct timer *t);
/* Run t's callback from the loop as soon as it can, as if it fired. */
void	timer_fire(struct timer *t);
/*
 * Call cb(arg) once from the loop, as soon as it can (to free an object
 * whose callbacks are still on the stack). Return 0, or -1 if out of
 * memory (cb is not called then).
 */
int	timer_once(struct event_base *base, void (*cb)(void *), void *arg);
/* Milliseconds of the monotonic clock (util_now_ms()). */
uint64_t timer_now_ms(void);

#endif
