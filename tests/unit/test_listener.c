/*
 * Unit tests for listener: accept() running out of descriptors pauses the
 * listener instead of spinning, a timer resumes it with a growing back-off,
 * and a listener its owner stopped stays stopped. Descriptors run out by
 * lowering this process's RLIMIT_NOFILE to the lowest free descriptor
 * (the limit bounds descriptor numbers), with clients already connected.
 * Then a listener reading PROXY v2 headers: a valid one hands the socket
 * over with the header's peer and not a byte more read; a LOCAL one with
 * the socket's peer; a bad, a stalled and one too many are closed.
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
#include "util.h"

#define CLIENTS		3	/* connections waiting in the backlog */
#define WAIT_MS		5000	/* bound on any one wait */

struct fixture {
	struct event_base	*base;
	struct listener		*l;
	int			 clients[CLIENTS];
	int			 accepted;
	char			 peer[64];	/* of the last accepted */
	char			 local[64];
	char			 via[64];
	char			 rest[16];	/* what it could read next */
	struct rlimit		 saved;
	bool			 expired;
};

static void
accept_cb(struct listener *l, int fd, const struct listener_peer *peer,
    void *arg)
{
	struct fixture *f = arg;
	ssize_t n;

	f->accepted++;
	util_sockaddr_str(peer->addr, f->peer, sizeof(f->peer));
	util_sockaddr_str(peer->local, f->local, sizeof(f->local));
	if (peer->via != NULL)
		util_sockaddr_str(peer->via, f->via, sizeof(f->via));
	else
		snprintf(f->via, sizeof(f->via), "-");
	n = recv(fd, f->rest, sizeof(f->rest) - 1, MSG_DONTWAIT);
	f->rest[n > 0 ? n : 0] = '\0';
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
	f->l = listener_new(f->base, (struct sockaddr *)&sin, sizeof(sin), 0,
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

static bool
one_accepted(const struct fixture *f)
{
	return f->accepted == 1;
}

static bool
none_pending(const struct fixture *f)
{
	return listener_pending(f->l) == 0;
}

/* Whether the client socket fd was closed by the listener. */
static bool
is_closed(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

#define SIG	"\r\n\r\n\0\r\nQUIT\n"
/* PROXY, TCP over IPv4: 203.0.113.7:40000 -> 192.0.2.1:5269 */
static const char proxy4[] = SIG "\x21\x11\x00\x0c"
    "\xcb\x00\x71\x07" "\xc0\x00\x02\x01" "\x9c\x40" "\x14\x95" "<?xml";
static const char local_hdr[] = SIG "\x20\x00\x00\x00" "<?xml";

static void
send_slowly(int fd, const char *buf, size_t len, struct fixture *f)
{
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(send(fd, buf + i, 1, MSG_NOSIGNAL), 1);
		run_until(f, NULL, 1);
	}
}

/* A header, even sent byte by byte, hands over the peer it names, and
 * the bytes after it stay for the owner. */
static void
test_proxy_header(void **state)
{
	struct fixture *f = *state;

	listener_set_proxy(f->l, true, WAIT_MS, 8);
	assert_int_equal(listener_enable(f->l, true), 0);
	/* The last header byte comes with what follows it. */
	send_slowly(f->clients[0], proxy4, 27, f);
	assert_int_equal(f->accepted, 0);
	assert_int_equal(send(f->clients[0], proxy4 + 27, 6, MSG_NOSIGNAL), 6);
	assert_true(run_until(f, one_accepted, WAIT_MS));
	assert_string_equal(f->peer, "203.0.113.7:40000");
	assert_string_equal(f->local, "192.0.2.1:5269");
	assert_int_equal(strncmp(f->via, "127.0.0.1:", 10), 0);
	assert_string_equal(f->rest, "<?xml");
	/* The two other clients still wait: they sent nothing. */
	assert_int_equal(listener_pending(f->l), CLIENTS - 1);
}

/* LOCAL (a health check): the socket's own peer, no via. */
static void
test_proxy_local(void **state)
{
	struct fixture *f = *state;

	listener_set_proxy(f->l, true, WAIT_MS, 8);
	assert_int_equal(listener_enable(f->l, true), 0);
	assert_int_equal(send(f->clients[0], local_hdr, sizeof(local_hdr) - 1,
	    0), (ssize_t)sizeof(local_hdr) - 1);
	assert_true(run_until(f, one_accepted, WAIT_MS));
	assert_string_equal(f->via, "-");
	assert_int_equal(strncmp(f->peer, "127.0.0.1:", 10), 0);
	assert_int_equal(strncmp(f->local, "127.0.0.1:", 10), 0);
	assert_string_equal(f->rest, "<?xml");
}

/* No header, a stalled one, and one connection over the bound: closed,
 * none handed over. */
static void
test_proxy_refused(void **state)
{
	struct fixture *f = *state;

	listener_set_proxy(f->l, true, 300, 2);
	assert_int_equal(listener_enable(f->l, true), 0);
	assert_int_equal(send(f->clients[0], "<?xml", 5, 0), 5);
	assert_int_equal(send(f->clients[1], proxy4, 20, 0), 20);
	/* clients[2] is the third while two wait: closed at accept. */
	run_until(f, NULL, 100);
	assert_true(is_closed(f->clients[0]));
	assert_true(is_closed(f->clients[2]));
	assert_int_equal(listener_pending(f->l), 1);
	assert_true(run_until(f, none_pending, WAIT_MS));
	assert_true(is_closed(f->clients[1]));
	assert_int_equal(f->accepted, 0);
}

/* Stopping the listener closes what waits for its header. */
static void
test_proxy_stop(void **state)
{
	struct fixture *f = *state;

	listener_set_proxy(f->l, true, WAIT_MS, 8);
	assert_int_equal(listener_enable(f->l, true), 0);
	run_until(f, NULL, 100);
	assert_int_equal(listener_pending(f->l), CLIENTS);
	assert_int_equal(listener_enable(f->l, false), 0);
	assert_int_equal(listener_pending(f->l), 0);
	run_until(f, NULL, 50);
	for (int i = 0; i < CLIENTS; i++)
		assert_true(is_closed(f->clients[i]));
	assert_int_equal(f->accepted, 0);
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
		cmocka_unit_test_setup_teardown(test_proxy_header,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_proxy_local,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_proxy_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_proxy_stop,
		    setup, teardown),
	};

	log_init(true, 0);
	if (getenv("FEDGATE_TEST_DEBUG") != NULL)
		log_set_level(LOG_LEVEL_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
