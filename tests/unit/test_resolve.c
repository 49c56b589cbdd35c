/*
 * Unit tests for resolve: RFC 2782 ordering on its own, then real queries
 * on a libevent loop against a dnsmasq that this test starts on a free
 * loopback port with the records below, and stops by PID. Tests that need
 * it are skipped when dnsmasq cannot be run (DNSMASQ=path overrides
 * /usr/sbin/dnsmasq). FEDGATE_TEST_DEBUG=1 shows resolve's debug log and
 * dnsmasq's query log.
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
#include "util.h"
#define RESOLVE_PRIVATE
#include "resolve.h"

/* Bound on any one wait for a callback. */
#define WAIT_MS		10000

/*
 * Names under "example.", and a lab under "test." (RFC 6761), which
 * libunbound would answer NXDOMAIN itself if resolve did not drop its
 * default local zones.
 */
static const char *const dns_records[] = {
	"--local=/example/",	/* authoritative: unknown names NXDOMAIN */
	"--local=/test/",
	"--srv-host=_xmpp-server._tcp.lab.test,xmpp.lab.test,5269,0,0",
	"--host-record=xmpp.lab.test,192.0.2.7",
	"--host-record=host.invalid,192.0.2.8",
	"--host-record=onion.onion,192.0.2.9",
	"--local-ttl=60",	/* cacheable, so repeated runs stay fast */
	/* priorities given out of order */
	"--srv-host=_xmpp-server._tcp.prio.example,p30.prio.example,5301,30,0",
	"--srv-host=_xmpp-server._tcp.prio.example,p10.prio.example,5101,10,0",
	"--srv-host=_xmpp-server._tcp.prio.example,p20.prio.example,5201,20,0",
	"--srv-host=_xmpp-server._tcp.prio.example,q20.prio.example,5202,20,0",
	/* weight 0 against weight 100, and 10 against 30 */
	"--srv-host=_xmpp-server._tcp.weight.example,zero.weight.example,5001,10,0",
	"--srv-host=_xmpp-server._tcp.weight.example,heavy.weight.example,5002,10,100",
	"--srv-host=_xmpp-server._tcp.ratio.example,light.ratio.example,5001,10,10",
	"--srv-host=_xmpp-server._tcp.ratio.example,heavy.ratio.example,5002,10,30",
	/* "." : decidedly not available */
	"--srv-host=_xmpp-server._tcp.dot.example",
	/* XEP-0368 mixes */
	"--srv-host=_xmpp-server._tcp.mix.example,plain.mix.example,5269,10,0",
	"--srv-host=_xmpps-server._tcp.mix.example,tls.mix.example,5270,5,0",
	"--srv-host=_xmpps-server._tcp.tlsdot.example",
	"--srv-host=_xmpp-server._tcp.plaindot.example",
	"--srv-host=_xmpps-server._tcp.plaindot.example,tls.plaindot.example,5270,10,0",
	/* no SRV, an A record: the fallback */
	"--host-record=plain.example,192.0.2.9",
	"--host-record=dual.example,192.0.2.1,2001:db8::1",
	"--host-record=dual.example,192.0.2.2,2001:db8::2",
	"--txt-record=txt.example,no addresses here",
};

static pid_t		dns_pid = -1;		/* the keeper */
static int		dns_keep_fd = -1;	/* closing it stops dnsmasq */
static uint16_t		dns_port;
static int		blackhole_fd = -1;	/* bound, never read */
static uint16_t		blackhole_port;
static const char	*skip_reason;

/* A loop bound: stop the loop if nothing else does first. */
struct guard {
	struct event_base	*base;
	bool			 expired;
};

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct guard *g = arg;

	g->expired = true;
	event_base_loopexit(g->base, NULL);
}

/* Run base until *done or ms pass. */
static void
run_until(struct event_base *base, const bool *done, int ms)
{
	struct timeval tv = { ms / 1000, ms % 1000 * 1000 };
	struct guard g = { base, false };
	struct event *ev = evtimer_new(base, guard_cb, &g);

	assert_non_null(ev);
	assert_int_equal(evtimer_add(ev, &tv), 0);
	while (!*done && !g.expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
}

struct outcome {
	struct event_base	*base;
	bool			 done;
	int			 calls;
	enum resolve_status	 status;
	struct resolve_targets	*targets;
	struct resolve_addrs	*addrs;
	struct resolve_req	*req;		/* set: explain it into why */
	char			 why[512];
	/* what the callback does besides recording */
	struct resolve		*free_resolver;
	struct resolve_req	*cancel_req;
};

static void
outcome_reset(struct outcome *o)
{
	resolve_targets_free(o->targets);
	resolve_addrs_free(o->addrs);
	memset(o, 0, sizeof(*o));
}

static void
s2s_cb(enum resolve_status status, struct resolve_targets *t, void *arg)
{
	struct outcome *o = arg;

	o->done = true;
	o->calls++;
	o->status = status;
	o->targets = t;
	if (o->req != NULL)
		resolve_req_explain(o->req, o->why, sizeof(o->why));
	if (o->cancel_req != NULL)
		resolve_cancel(o->cancel_req);
	if (o->free_resolver != NULL)
		resolve_free(o->free_resolver);
}

static void
addrs_cb(enum resolve_status status, struct resolve_addrs *a, void *arg)
{
	struct outcome *o = arg;

	o->done = true;
	o->calls++;
	o->status = status;
	o->addrs = a;
	if (o->req != NULL)
		resolve_req_explain(o->req, o->why, sizeof(o->why));
	if (o->free_resolver != NULL)
		resolve_free(o->free_resolver);
}

/* Bind a UDP and a TCP socket to 127.0.0.1:port (0: any). Return the port. */
static uint16_t
bind_loopback(int type, uint16_t port, int *fdp)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if ((fd = socket(AF_INET, type, 0)) == -1)
		return 0;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		close(fd);
		return 0;
	}
	if (fdp != NULL)
		*fdp = fd;
	else
		close(fd);
	return ntohs(sin.sin_port);
}

/* A port free for both UDP and TCP on 127.0.0.1, or 0. */
static uint16_t
free_port(void)
{
	uint16_t port;

	for (int i = 0; i < 20; i++)
		if ((port = bind_loopback(SOCK_DGRAM, 0, NULL)) != 0 &&
		    bind_loopback(SOCK_STREAM, port, NULL) == port)
			return port;
	return 0;
}

/*
 * The keeper, a child of the test: start dnsmasq, then wait until the test
 * closes its end of the pipe (in teardown, or by dying) or dnsmasq exits;
 * stop dnsmasq by its PID and exit with its status. The keeper, not
 * dnsmasq, watches the test because dnsmasq may change credentials, which
 * clears any parent-death signal.
 */
static void
dns_keeper(int fd, const char *path, const char *const *argv, bool verbose)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	pid_t pid;
	int null, status;

	if ((pid = fork()) == -1)
		_exit(127);
	if (pid == 0) {
		close(fd);
		if (!verbose && (null = open("/dev/null", O_WRONLY)) != -1) {
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
		}
		execv(path, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
		if (poll(&pfd, 1, 100) == 1)
			break;
	}
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	_exit(0);
}

/* Start the keeper of a dnsmasq on port. Return its PID or -1. */
static pid_t
dns_spawn(const char *path, uint16_t port, bool verbose, int *keepfd)
{
	char portarg[32];
	const char *argv[64];
	size_t n = 0;
	pid_t pid;
	int p[2];

	snprintf(portarg, sizeof(portarg), "--port=%u", port);
	argv[n++] = path;
	argv[n++] = "--keep-in-foreground";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = "--pid-file";	/* no PID file */
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--listen-address=127.0.0.1";
	argv[n++] = "--bind-interfaces";
	argv[n++] = "--log-facility=-";
	argv[n++] = portarg;
	if (verbose)
		argv[n++] = "--log-queries";
	for (size_t i = 0; i < nitems(dns_records); i++)
		argv[n++] = dns_records[i];
	argv[n] = NULL;
	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	if ((pid = fork()) == 0) {
		close(p[1]);
		dns_keeper(p[0], path, argv, verbose);
	}
	close(p[0]);
	if (pid == -1) {
		close(p[1]);
		return -1;
	}
	*keepfd = p[1];
	return pid;
}

/* Stop dnsmasq through its keeper. */
static void
dns_stop(void)
{
	if (dns_pid <= 0)
		return;
	close(dns_keep_fd);
	waitpid(dns_pid, NULL, 0);
	dns_pid = -1;
}

/* Wait until dnsmasq answers on dns_port, polling with fresh resolvers. */
static int
dns_wait_ready(pid_t pid)
{
	uint64_t deadline = util_now_ms() + WAIT_MS;
	struct event_base *base;
	struct resolve *r;
	struct outcome o;
	int status;

	while (util_now_ms() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;	/* it exited: port taken, bad option */
		memset(&o, 0, sizeof(o));
		if ((base = event_base_new()) == NULL ||
		    (r = resolve_new(base, "127.0.0.1", dns_port, 300)) == NULL)
			return -1;
		if (resolve_addresses(r, "plain.example", 1, addrs_cb, &o) != NULL)
			run_until(base, &o.done, 1000);
		resolve_addrs_free(o.addrs);
		resolve_free(r);
		event_base_free(base);
		if (o.done && o.status == RESOLVE_OK)
			return 0;
	}
	return -1;
}

static int
group_setup(void **state)
{
	const char *path = getenv("DNSMASQ");
	bool verbose = getenv("FEDGATE_TEST_DEBUG") != NULL;

	log_init(true, 0);
	if (verbose)
		log_set_level(LOG_LEVEL_DEBUG);
	if (path == NULL)
		path = "/usr/sbin/dnsmasq";
	if (access(path, X_OK) == -1) {
		skip_reason = "dnsmasq not found";
		return 0;
	}
	blackhole_port = bind_loopback(SOCK_DGRAM, 0, &blackhole_fd);
	/* A free port can be taken before dnsmasq binds it: retry. */
	for (int tries = 0; tries < 5; tries++) {
		if ((dns_port = free_port()) == 0)
			break;
		dns_pid = dns_spawn(path, dns_port, verbose, &dns_keep_fd);
		if (dns_pid == -1)
			break;
		if (dns_wait_ready(dns_pid) == 0)
			return 0;
		dns_stop();
	}
	skip_reason = "dnsmasq did not start";
	return 0;
}

static int
group_teardown(void **state)
{
	dns_stop();
	if (blackhole_fd != -1)
		close(blackhole_fd);
	return 0;
}

/* Per test: a loop and a resolver on the test's dnsmasq. */
struct fixture {
	struct event_base	*base;
	struct resolve		*r;
	struct outcome		 o;
};

static int
setup(void **state)
{
	struct fixture *f;

	if (skip_reason != NULL)
		return 0;
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_non_null(f->base = event_base_new());
	assert_non_null(f->r = resolve_new(f->base, "127.0.0.1", dns_port,
	    5000));
	f->o.base = f->base;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f == NULL)
		return 0;
	outcome_reset(&f->o);
	resolve_free(f->r);
	event_base_free(f->base);
	free(f);
	return 0;
}

#define NEED_DNS()	do {					\
		if (skip_reason != NULL) {				\
			print_message("# %s\n", skip_reason);		\
			skip();						\
		}							\
	} while (0)

static void
s2s(struct fixture *f, const char *domain, bool tls)
{
	outcome_reset(&f->o);
	f->o.base = f->base;
	assert_non_null(f->o.req = resolve_s2s(f->r, domain, tls, s2s_cb,
	    &f->o));
	run_until(f->base, &f->o.done, WAIT_MS);
	assert_int_equal(f->o.calls, 1);
}

static void
addresses(struct fixture *f, const char *host, uint16_t port)
{
	outcome_reset(&f->o);
	f->o.base = f->base;
	assert_non_null(f->o.req = resolve_addresses(f->r, host, port,
	    addrs_cb, &f->o));
	run_until(f->base, &f->o.done, WAIT_MS);
	assert_int_equal(f->o.calls, 1);
}

static void
assert_target(const struct resolve_target *t, const char *host,
    uint16_t port, bool tls)
{
	assert_string_equal(t->host, host);
	assert_int_equal(t->port, port);
	assert_int_equal(t->direct_tls, tls);
}

static const char *
addr_str(const struct resolve_addr *a, char *buf)
{
	return util_sockaddr_str((const struct sockaddr *)&a->ss, buf,
	    UTIL_SOCKADDR_STRLEN);
}

/* --- ordering, without DNS --- */

static void
test_order_priority(void **state)
{
	static const struct {
		uint16_t	prio[6];
		size_t		n;
	} cases[] = {
		{ { 30, 10, 20 }, 3 },
		{ { 5, 5, 5, 1, 1, 9 }, 6 },
		{ { 65535, 0 }, 2 },
		{ { 7 }, 1 },
	};
	struct resolve_target t[6];

	for (size_t c = 0; c < nitems(cases); c++)
		for (int run = 0; run < 50; run++) {
			memset(t, 0, sizeof(t));
			for (size_t i = 0; i < cases[c].n; i++) {
				t[i].priority = cases[c].prio[i];
				t[i].weight = (uint16_t)(i * 7 % 3);
				t[i].port = (uint16_t)(i + 1);
			}
			resolve_order_targets(t, cases[c].n);
			for (size_t i = 1; i < cases[c].n; i++)
				assert_true(t[i - 1].priority <= t[i].priority);
			/* a permutation: every port once */
			for (size_t i = 0, sum = 0; i < cases[c].n; i++) {
				sum += t[i].port;
				if (i == cases[c].n - 1)
					assert_int_equal(sum,
					    cases[c].n * (cases[c].n + 1) / 2);
			}
		}
	resolve_order_targets(t, 0);
}

/* How often each of n weights comes first over runs. */
static void
first_counts(const uint16_t *w, size_t n, int runs, int *first)
{
	struct resolve_target t[8];

	memset(first, 0, n * sizeof(*first));
	for (int run = 0; run < runs; run++) {
		memset(t, 0, sizeof(t));
		for (size_t i = 0; i < n; i++) {
			t[i].priority = 1;
			t[i].weight = w[i];
			t[i].port = (uint16_t)i;
		}
		resolve_order_targets(t, n);
		first[t[0].port]++;
	}
}

static void
test_order_weights(void **state)
{
	static const uint16_t zero_heavy[] = { 0, 100 };
	static const uint16_t heavy_zero[] = { 100, 0 };
	static const uint16_t one_three[] = { 10, 30 };
	static const uint16_t zeros[] = { 0, 0, 0, 0 };
	int first[4];

	/* Weight 0 wins only on a draw of 0 in [0, 100]: ~1%. */
	first_counts(zero_heavy, 2, 20000, first);
	assert_in_range(first[0], 50, 600);
	first_counts(heavy_zero, 2, 20000, first);
	assert_in_range(first[1], 50, 600);
	/* 10 against 30: a quarter, give or take. */
	first_counts(one_three, 2, 20000, first);
	assert_in_range(first[0], 4000, 6000);
	/* All zero: each first about a quarter of the time. */
	first_counts(zeros, 4, 20000, first);
	for (int i = 0; i < 4; i++)
		assert_in_range(first[i], 4000, 6000);
}

/* --- SRV, against dnsmasq --- */

static void
test_srv_priority_order(void **state)
{
	struct fixture *f = *state;
	int p20_first = 0;

	NEED_DNS();
	for (int run = 0; run < 40; run++) {
		s2s(f, "prio.example", false);
		assert_int_equal(f->o.status, RESOLVE_OK);
		assert_non_null(f->o.targets);
		assert_int_equal(f->o.targets->count, 4);
		assert_false(f->o.targets->fallback);
		assert_false(f->o.targets->secure);
		assert_target(&f->o.targets->target[0], "p10.prio.example",
		    5101, false);
		assert_int_equal(f->o.targets->target[1].priority, 20);
		assert_int_equal(f->o.targets->target[2].priority, 20);
		assert_target(&f->o.targets->target[3], "p30.prio.example",
		    5301, false);
		if (strcmp(f->o.targets->target[1].host, "p20.prio.example") == 0)
			p20_first++;
	}
	/* Two weight-0 records of one priority come in either order. */
	assert_in_range(p20_first, 1, 39);
}

static void
test_srv_weight_distribution(void **state)
{
	struct fixture *f = *state;
	int zero_first = 0, light_first = 0;
	const int runs = 300;

	NEED_DNS();
	for (int run = 0; run < runs; run++) {
		s2s(f, "weight.example", false);
		assert_int_equal(f->o.status, RESOLVE_OK);
		assert_int_equal(f->o.targets->count, 2);
		if (f->o.targets->target[0].weight == 0)
			zero_first++;
		s2s(f, "ratio.example", false);
		assert_int_equal(f->o.status, RESOLVE_OK);
		assert_int_equal(f->o.targets->count, 2);
		if (f->o.targets->target[0].weight == 10)
			light_first++;
	}
	/* Expected: 1% and 25%. */
	assert_in_range(zero_first, 0, runs / 10);
	assert_in_range(light_first, runs / 10, runs * 45 / 100);
}

static void
test_srv_fallback(void **state)
{
	struct fixture *f = *state;
	char buf[UTIL_SOCKADDR_STRLEN];

	NEED_DNS();
	s2s(f, "plain.example", true);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_true(f->o.targets->fallback);
	assert_int_equal(f->o.targets->count, 1);
	assert_target(&f->o.targets->target[0], "plain.example", 5269, false);

	addresses(f, "plain.example", 5269);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_int_equal(f->o.addrs->count, 1);
	assert_string_equal(addr_str(&f->o.addrs->addr[0], buf),
	    "192.0.2.9:5269");

	/* A trailing dot is the same name. */
	s2s(f, "plain.example.", false);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_target(&f->o.targets->target[0], "plain.example", 5269, false);
}

static void
test_srv_unavailable(void **state)
{
	struct fixture *f = *state;

	NEED_DNS();
	s2s(f, "dot.example", false);
	assert_int_equal(f->o.status, RESOLVE_UNAVAILABLE);
	assert_null(f->o.targets);
	s2s(f, "dot.example", true);
	assert_int_equal(f->o.status, RESOLVE_UNAVAILABLE);
	assert_null(f->o.targets);
}

static void
test_srv_nxdomain(void **state)
{
	struct fixture *f = *state;

	NEED_DNS();
	/* No SRV name: fall back; the address lookup then says NXDOMAIN. */
	s2s(f, "nx.example", true);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_true(f->o.targets->fallback);
	assert_target(&f->o.targets->target[0], "nx.example", 5269, false);
	addresses(f, "nx.example", 5269);
	assert_int_equal(f->o.status, RESOLVE_NXDOMAIN);
	assert_null(f->o.addrs);
}

static void
test_srv_xmpps(void **state)
{
	struct fixture *f = *state;

	NEED_DNS();
	/* Merged by priority: the direct TLS one (5) before STARTTLS (10). */
	s2s(f, "mix.example", true);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_int_equal(f->o.targets->count, 2);
	assert_target(&f->o.targets->target[0], "tls.mix.example", 5270, true);
	assert_target(&f->o.targets->target[1], "plain.mix.example", 5269,
	    false);
	/* Not asked for direct TLS: only _xmpp-server. */
	s2s(f, "mix.example", false);
	assert_int_equal(f->o.targets->count, 1);
	assert_target(&f->o.targets->target[0], "plain.mix.example", 5269,
	    false);
	/* _xmpps-server "." and no _xmpp-server: no fallback (XEP-0368). */
	s2s(f, "tlsdot.example", true);
	assert_int_equal(f->o.status, RESOLVE_UNAVAILABLE);
	s2s(f, "tlsdot.example", false);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_true(f->o.targets->fallback);
	/* _xmpp-server "." but _xmpps-server records: those. */
	s2s(f, "plaindot.example", true);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_int_equal(f->o.targets->count, 1);
	assert_target(&f->o.targets->target[0], "tls.plaindot.example", 5270,
	    true);
	s2s(f, "plaindot.example", false);
	assert_int_equal(f->o.status, RESOLVE_UNAVAILABLE);
}

static void
test_servfail(void **state)
{
	struct fixture *f = *state;
	char label[71], name[100];

	NEED_DNS();
	/* dnsmasq refuses names outside its zones: no fallback on failure. */
	s2s(f, "refused.fedgate", true);
	assert_int_equal(f->o.status, RESOLVE_SERVFAIL);
	assert_null(f->o.targets);
	addresses(f, "refused.fedgate", 5269);
	assert_int_equal(f->o.status, RESOLVE_SERVFAIL);

	/* A label longer than 63: libunbound's worker refuses the name. */
	memset(label, 'a', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	snprintf(name, sizeof(name), "%s.example", label);
	s2s(f, name, false);
	assert_int_equal(f->o.status, RESOLVE_SERVFAIL);
}

/* --- addresses --- */

static void
test_addresses(void **state)
{
	static const char *const dual[] = {
		"[2001:db8::1]:5270", "192.0.2.1:5270",
		"[2001:db8::2]:5270", "192.0.2.2:5270",
	};
	struct fixture *f = *state;
	char buf[UTIL_SOCKADDR_STRLEN];
	int pos[4];

	NEED_DNS();
	/* IPv6 first, then alternating; order within a family may rotate. */
	addresses(f, "dual.example", 5270);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_int_equal(f->o.addrs->count, 4);
	assert_false(f->o.addrs->secure);
	for (size_t i = 0; i < 4; i++) {
		const struct resolve_addr *a = &f->o.addrs->addr[i];

		assert_int_equal(a->ss.ss_family, i % 2 == 0 ? AF_INET6 : AF_INET);
		assert_int_equal(a->len, i % 2 == 0 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
		pos[i] = -1;
		for (int j = 0; j < 4; j++)
			if (strcmp(addr_str(a, buf), dual[j]) == 0)
				pos[i] = j;
		assert_int_not_equal(pos[i], -1);
	}
	assert_int_not_equal(pos[0], pos[2]);
	assert_int_not_equal(pos[1], pos[3]);

	/* The name exists, without addresses. */
	addresses(f, "txt.example", 5269);
	assert_int_equal(f->o.status, RESOLVE_NODATA);
	assert_null(f->o.addrs);

	/* Numeric hosts answer themselves, still through the loop. */
	addresses(f, "192.0.2.77", 5269);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_int_equal(f->o.addrs->count, 1);
	assert_string_equal(addr_str(&f->o.addrs->addr[0], buf),
	    "192.0.2.77:5269");
	addresses(f, "2001:db8::77", 5270);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_string_equal(addr_str(&f->o.addrs->addr[0], buf),
	    "[2001:db8::77]:5270");
}

/* --- timeouts, cancellation, freeing --- */

static void
test_timeout(void **state)
{
	struct fixture *f = *state;
	uint64_t t0, ms;

	NEED_DNS();
	assert_int_not_equal(blackhole_port, 0);
	resolve_free(f->r);
	/* A socket that never answers; 200 ms per request. */
	assert_non_null(f->r = resolve_new(f->base, "127.0.0.1",
	    blackhole_port, 200));
	t0 = util_now_ms();
	s2s(f, "prio.example", true);
	ms = util_now_ms() - t0;
	assert_int_equal(f->o.status, RESOLVE_TIMEOUT);
	assert_null(f->o.targets);
	assert_in_range(ms, 190, 3000);

	t0 = util_now_ms();
	addresses(f, "dual.example", 5269);
	ms = util_now_ms() - t0;
	assert_int_equal(f->o.status, RESOLVE_TIMEOUT);
	assert_null(f->o.addrs);
	assert_in_range(ms, 190, 3000);
}

static void
test_cancel(void **state)
{
	struct fixture *f = *state;
	struct outcome cancelled = { .base = f->base };
	struct resolve_req *req;

	NEED_DNS();
	/* Cancel one, then let an identical later one complete. */
	req = resolve_s2s(f->r, "mix.example", true, s2s_cb, &cancelled);
	assert_non_null(req);
	resolve_cancel(req);
	req = resolve_addresses(f->r, "dual.example", 1, addrs_cb, &cancelled);
	assert_non_null(req);
	resolve_cancel(req);
	s2s(f, "mix.example", true);
	assert_int_equal(f->o.status, RESOLVE_OK);
	addresses(f, "dual.example", 1);
	assert_int_equal(f->o.status, RESOLVE_OK);
	/* Keep the loop going a little longer: still nothing. */
	f->o.done = false;
	run_until(f->base, &f->o.done, 200);
	assert_int_equal(cancelled.calls, 0);

	/* Cancelling from within its own callback is harmless. */
	outcome_reset(&f->o);
	f->o.base = f->base;
	f->o.cancel_req = resolve_s2s(f->r, "prio.example", false, s2s_cb,
	    &f->o);
	assert_non_null(f->o.cancel_req);
	run_until(f->base, &f->o.done, WAIT_MS);
	assert_int_equal(f->o.calls, 1);
	assert_int_equal(f->o.status, RESOLVE_OK);
}

static void
test_cancel_timeout(void **state)
{
	struct fixture *f = *state;
	struct outcome o = { .base = f->base };
	struct resolve_req *req;

	NEED_DNS();
	resolve_free(f->r);
	assert_non_null(f->r = resolve_new(f->base, "127.0.0.1",
	    blackhole_port, 100));
	/* Cancelled before the timer: the timer must not call back. */
	req = resolve_s2s(f->r, "prio.example", false, s2s_cb, &o);
	assert_non_null(req);
	resolve_cancel(req);
	run_until(f->base, &o.done, 400);
	assert_int_equal(o.calls, 0);
}

static void
test_free_outstanding(void **state)
{
	struct fixture *f = *state;
	struct outcome o[3] = { { .base = f->base }, { .base = f->base },
	    { .base = f->base } };
	bool never = false;

	NEED_DNS();
	assert_non_null(resolve_s2s(f->r, "prio.example", true, s2s_cb, &o[0]));
	assert_non_null(resolve_s2s(f->r, "weight.example", false, s2s_cb,
	    &o[1]));
	assert_non_null(resolve_addresses(f->r, "dual.example", 5269, addrs_cb,
	    &o[2]));
	resolve_free(f->r);
	f->r = NULL;
	run_until(f->base, &never, 200);
	for (int i = 0; i < 3; i++)
		assert_int_equal(o[i].calls, 0);
}

static void
test_free_from_callback(void **state)
{
	struct fixture *f = *state;
	struct outcome first = { .base = f->base }, second = { .base = f->base };

	NEED_DNS();
	/* The first answer frees the resolver: the second never comes. */
	first.free_resolver = f->r;
	assert_non_null(resolve_s2s(f->r, "prio.example", false, s2s_cb,
	    &first));
	assert_non_null(resolve_s2s(f->r, "ratio.example", false, s2s_cb,
	    &second));
	f->r = NULL;
	run_until(f->base, &first.done, WAIT_MS);
	assert_int_equal(first.calls, 1);
	run_until(f->base, &second.done, 200);
	assert_int_equal(second.calls, 0);
	outcome_reset(&first);
	outcome_reset(&second);

	/* The same from a timer-driven answer (a numeric host). */
	assert_non_null(f->r = resolve_new(f->base, "127.0.0.1", dns_port,
	    5000));
	first = (struct outcome){ .base = f->base, .free_resolver = f->r };
	second = (struct outcome){ .base = f->base };
	assert_non_null(resolve_addresses(f->r, "192.0.2.1", 1, addrs_cb,
	    &first));
	assert_non_null(resolve_addresses(f->r, "dual.example", 1, addrs_cb,
	    &second));
	f->r = NULL;
	run_until(f->base, &first.done, WAIT_MS);
	assert_int_equal(first.calls, 1);
	assert_int_equal(first.status, RESOLVE_OK);
	run_until(f->base, &second.done, 200);
	assert_int_equal(second.calls, 0);
	outcome_reset(&first);
	outcome_reset(&second);
}

static void
test_bogus(void **state)
{
	struct fixture *f = *state;

	NEED_DNS();
	resolve_free(f->r);
	assert_non_null(f->r = resolve_new(f->base, "127.0.0.1", dns_port,
	    5000));
	/* A trust anchor for a zone served unsigned: every answer is bogus. */
	assert_int_equal(resolve_add_trust_anchor(f->r, "example. DS 12345 8 2 "
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
	    0);
	s2s(f, "prio.example", true);
	assert_int_equal(f->o.status, RESOLVE_BOGUS);
	assert_null(f->o.targets);
	addresses(f, "dual.example", 5269);
	assert_int_equal(f->o.status, RESOLVE_BOGUS);
	/* Too late for another anchor once queries went out. */
	assert_int_equal(resolve_add_trust_anchor(f->r,
	    "example. DS 1 8 2 00"), -1);
}

/* Special-use names are asked of the forwarder like any other. */
static void
test_special_use(void **state)
{
	struct fixture *f = *state;
	char addr[UTIL_SOCKADDR_STRLEN], who[64];
	static const char *const hosts[][2] = {
		{ "xmpp.lab.test", "192.0.2.7:1" },
		{ "host.invalid", "192.0.2.8:1" },
		{ "onion.onion", "192.0.2.9:1" },
	};

	NEED_DNS();
	s2s(f, "lab.test", false);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_int_equal(f->o.targets->count, 1);
	assert_false(f->o.targets->fallback);
	assert_target(&f->o.targets->target[0], "xmpp.lab.test", 5269, false);
	for (size_t i = 0; i < nitems(hosts); i++) {
		addresses(f, hosts[i][0], 1);
		assert_int_equal(f->o.status, RESOLVE_OK);
		assert_int_equal(f->o.addrs->count, 1);
		assert_string_equal(addr_str(&f->o.addrs->addr[0], addr),
		    hosts[i][1]);
	}
	/* A name the DNS does not know: the DNS says so, and we say who. */
	addresses(f, "nothing.lab.test", 1);
	assert_int_equal(f->o.status, RESOLVE_NXDOMAIN);
	snprintf(who, sizeof(who), "forwarder 127.0.0.1 port %u", dns_port);
	assert_string_equal(resolve_who(f->r), who);
	assert_non_null(strstr(f->o.why, who));
	assert_non_null(strstr(f->o.why, "nxdomain from"));
	assert_null(strstr(f->o.why, "locally"));
}

/* Options: local zones and data answer before the forwarder is asked. */
static void
test_options(void **state)
{
	struct fixture *f = *state;
	char addr[UTIL_SOCKADDR_STRLEN];

	NEED_DNS();
	assert_int_equal(resolve_set_option(f->r, "local-zone:",
	    "blocked.lab.test. static"), 0);
	assert_int_equal(resolve_set_option(f->r, "local-data",
	    "xmpp.lab.test. A 198.51.100.7"), 0);
	/* test. itself, named by an option, stays a local zone. */
	assert_int_equal(resolve_set_option(f->r, "local-zone", "test. "
	    "transparent"), 0);
	assert_int_equal(resolve_set_option(f->r, "module-config:",
	    "iterator"), -1);
	assert_int_equal(resolve_set_option(f->r, "no-such-option:", "1"),
	    -1);
	assert_int_equal(resolve_start(f->r), 0);
	assert_int_equal(resolve_start(f->r), 0);
	assert_int_equal(resolve_set_option(f->r, "local-zone:",
	    "late.example. static"), -1);
	addresses(f, "xmpp.lab.test", 1);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_string_equal(addr_str(&f->o.addrs->addr[0], addr),
	    "198.51.100.7:1");
	addresses(f, "x.blocked.lab.test", 1);
	assert_int_equal(f->o.status, RESOLVE_NXDOMAIN);
	assert_non_null(strstr(f->o.why, "answered locally by libunbound"));
	assert_non_null(strstr(f->o.why, "was not asked"));
	/* Transparent: what it has no data for goes to the forwarder. */
	s2s(f, "lab.test", false);
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_target(&f->o.targets->target[0], "xmpp.lab.test", 5269, false);
}

/* libunbound's own default zones, kept by an option, say so. */
static void
test_local_default_zone(void **state)
{
	struct fixture *f = *state;

	NEED_DNS();
	assert_int_equal(resolve_set_option(f->r, "local-zone:",
	    "invalid. static"), 0);
	addresses(f, "host.invalid", 1);
	assert_int_equal(f->o.status, RESOLVE_NXDOMAIN);
	assert_non_null(strstr(f->o.why, "answered locally by libunbound"));
	s2s(f, "host.invalid", false);
	/* Local NXDOMAIN for the SRV: the RFC 6120 fallback, as from DNS. */
	assert_int_equal(f->o.status, RESOLVE_OK);
	assert_true(f->o.targets->fallback);
}

static void
test_check_options(void **state)
{
	static const struct {
		const char	*name;
		const char	*value;
		const char	*error;		/* NULL: accepted */
	} cases[] = {
		{ "local-zone:", "lab.test. static", NULL },
		{ "local-zone", "lab.test. redirect", NULL },
		{ "local-data:", "a.lab.test. A 192.0.2.1", NULL },
		{ "do-ip6:", "no", NULL },
		{ "local-zone:", "x. bogustype", "bogustype" },
		{ "local-data:", "bad bad bad", "bad bad bad" },
		{ "no-such-option:", "1", "no such option" },
		{ "do-ip6:", "maybe", "no such option" },
		{ "module-config:", "iterator", "modules" },
		{ "", "x", "not an option name" },
	};
	char err[256];

	for (size_t i = 0; i < nitems(cases); i++) {
		err[0] = '\0';
		if (cases[i].error == NULL) {
			assert_int_equal(resolve_check_option(cases[i].name,
			    cases[i].value, err, sizeof(err)), 0);
			continue;
		}
		assert_int_equal(resolve_check_option(cases[i].name,
		    cases[i].value, err, sizeof(err)), -1);
		if (strstr(err, cases[i].error) == NULL)
			fail_msg("%s %s: \"%s\" lacks \"%s\"", cases[i].name,
			    cases[i].value, err, cases[i].error);
	}
	assert_int_equal(resolve_check_trust_anchor(". DS 20326 8 2 "
	    "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
	    false, err, sizeof(err)), 0);
	assert_int_equal(resolve_check_trust_anchor(". DS garbage", false,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "garbage"));
	assert_int_equal(resolve_check_trust_anchor("/nonexistent/root.key",
	    true, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
}

static void
test_bad_arguments(void **state)
{
	struct event_base *base = event_base_new();
	struct resolve *r;
	struct outcome o = { .base = base };
	char longname[300];

	assert_non_null(base);
	assert_null(resolve_new(base, "dns.example", 53, 1000));
	assert_null(resolve_new(base, "*", 53, 1000));
	assert_null(resolve_new(base, "127.0.0.1", 53, 0));
	resolve_free(NULL);
	resolve_cancel(NULL);
	resolve_targets_free(NULL);
	resolve_addrs_free(NULL);
	assert_non_null(r = resolve_new(base, "::1", 0, 1000));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_null(resolve_s2s(r, "", false, s2s_cb, &o));
	assert_null(resolve_s2s(r, ".", false, s2s_cb, &o));
	assert_null(resolve_s2s(r, longname, false, s2s_cb, &o));
	assert_null(resolve_addresses(r, longname, 1, addrs_cb, &o));
	assert_string_equal(resolve_status_name(RESOLVE_UNAVAILABLE),
	    "unavailable");
	assert_string_equal(resolve_status_name(RESOLVE_BOGUS), "bogus");
	resolve_free(r);
	event_base_free(base);
	assert_int_equal(o.calls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_priority),
		cmocka_unit_test(test_order_weights),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_check_options),
		cmocka_unit_test_setup_teardown(test_special_use,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_options,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_default_zone,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_srv_priority_order,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_srv_weight_distribution,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_srv_fallback,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_srv_unavailable,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_srv_nxdomain,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_srv_xmpps,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_servfail,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_addresses,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_timeout,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_outstanding,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_callback,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bogus,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
