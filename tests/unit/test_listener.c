/*
 * Unit tests for listener: accept() running out of descriptors pauses the
 * listener instead of spinning, a timer resumes it with a growing back-off,
 * and a listener its owner stopped stays stopped. Descriptors run out by
 * lowering this process's RLIMIT_NOFILE to the lowest free descriptor
 * (the limit bounds descriptor numbers), with clients already connected.
 */
#include "fgconfig.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "log.h"
#define LISTENER_PRIVATE
#include "listener.h"

#define CLIENTS		3	/* connections waiting in the backlog */
#define WAIT_MS		5000	/* bound on any one wait */

struct fixture {
	struct event_base	*base;
	struct listener		*l;
	int			 clients[CLIENTS];
	int			 accepted;
	struct rlimit		 saved;
	bool			 expired;
};

static void
accept_cb(struct listener *l, int fd, const struct sockaddr *peer,
    socklen_t peerlen, void *arg)
{
	struct fixture *f = arg;

	f->accepted++;
	close(fd);
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	f->expired = true;
	event_base_loopexit(f->base, NULL);
}

/* Run the loop until pred(f) or ms pass. Return pred(f). */
static bool
run_until(struct fixture *f, bool (*pred)(const struct fixture *), int ms)
{
	struct timeval tv = { ms / 1000, ms % 1000 * 1000 };
	struct event *ev = evtimer_new(f->base, guard_cb, f);

	assert_non_null(ev);
	assert_int_equal(evtimer_add(ev, &tv), 0);
	f->expired = false;
	while (!f->expired && (pred == NULL || !pred(f)))
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(ev);
	return pred != NULL && pred(f);
}

static bool
is_paused(const struct fixture *f)
{
	return strcmp(listener_state_name(f->l), "paused") == 0;
}

static bool
all_accepted(const struct fixture *f)
{
	return f->accepted == CLIENTS;
}

/* Make every new descriptor fail with EMFILE. */
static void
exhaust(struct fixture *f)
{
	struct rlimit rl = f->saved;
	int fd;

	assert_true((fd = open("/dev/null", O_RDONLY)) >= 0);
	close(fd);
	rl.rlim_cur = (rlim_t)fd;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void
replenish(struct fixture *f)
{
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &f->saved), 0);
}

/* Enable f's listener with descriptors exhausted; wait for its pause. */
static void
enable_exhausted(struct fixture *f)
{
	exhaust(f);
	assert_int_equal(listener_enable(f->l, true), 0);
	assert_true(run_until(f, is_paused, WAIT_MS));
	assert_int_equal(f->accepted, 0);
	assert_int_equal(listener_failures(f->l), 1);
}

static uint16_t
free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static int
setup(void **state)
{
	struct fixture *f;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char err[128];

	assert_non_null(f = calloc(1, sizeof(*f)));
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &f->saved), 0);
	assert_non_null(f->base = event_base_new());
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(free_port());
	f->l = listener_new(f->base, (struct sockaddr *)&sin, sizeof(sin), false,
	    accept_cb, f, err, sizeof(err));
	if (f->l == NULL)
		fail_msg("listener_new: %s", err);
	assert_string_equal(listener_state_name(f->l), "disabled");
	/* Listening already: the connections wait in the backlog. */
	for (int i = 0; i < CLIENTS; i++) {
		assert_true((f->clients[i] = socket(AF_INET, SOCK_STREAM, 0))
		    >= 0);
		assert_int_equal(connect(f->clients[i],
		    (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	setrlimit(RLIMIT_NOFILE, &f->saved);
	for (int i = 0; i < CLIENTS; i++)
		close(f->clients[i]);
	listener_free(f->l);
	event_base_free(f->base);
	free(f);
	return 0;
}

/* Paused, it tries again after 20, 40, 80, 160 ms: no spinning. */
static void
test_pause_backs_off(void **state)
{
	struct fixture *f = *state;

	enable_exhausted(f);
	run_until(f, NULL, 350);
	assert_in_range(listener_failures(f->l), 2, 6);
	assert_int_equal(f->accepted, 0);
	replenish(f);
	assert_true(run_until(f, all_accepted, WAIT_MS));
	assert_string_equal(listener_state_name(f->l), "accepting");
	assert_int_equal(listener_failures(f->l), 0);
}

/* Stopped while paused, its timer must not start it again. */
static void
test_disable_while_paused(void **state)
{
	struct fixture *f = *state;

	enable_exhausted(f);
	assert_int_equal(listener_enable(f->l, false), 0);
	assert_string_equal(listener_state_name(f->l), "disabled");
	replenish(f);
	run_until(f, NULL, 300);
	assert_int_equal(f->accepted, 0);
	assert_string_equal(listener_state_name(f->l), "disabled");
	assert_int_equal(listener_enable(f->l, true), 0);
	assert_true(run_until(f, all_accepted, WAIT_MS));
	assert_string_equal(listener_state_name(f->l), "accepting");
}

/* Started while paused, it stays paused until its timer resumes it. */
static void
test_enable_while_paused(void **state)
{
	struct fixture *f = *state;

	enable_exhausted(f);
	assert_int_equal(listener_enable(f->l, true), 0);
	assert_string_equal(listener_state_name(f->l), "paused");
	replenish(f);
	assert_true(run_until(f, all_accepted, WAIT_MS));
	assert_string_equal(listener_state_name(f->l), "accepting");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pause_backs_off,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_disable_while_paused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_enable_while_paused,
		    setup, teardown),
	};

	log_init(true, 0);
	if (getenv("FEDGATE_TEST_DEBUG") != NULL)
		log_set_level(LOG_LEVEL_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
