/*
 * Unit tests for route: find-or-create, direct writes, the queue, bounces
 * (byte-exact, through the reverse route), the idle timer on a real loop,
 * shutdown and the snapshot.
 *
 * The leg module is faked here (and config_face_name(), so that config.o
 * and everything it pulls in stay out): this file links route.o, xmpp.o,
 * jid.o, log.o and util.o only.
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include "config.h"
#include "jid.h"
#include "leg.h"
#include "log.h"
#include "route.h"
#include "xmpp.h"

#define ST	"urn:ietf:params:xml:ns:xmpp-stanzas"
#define PUB	CONFIG_FACE_PUBLIC
#define INT	CONFIG_FACE_INTERNAL

/*
 * The fake leg module.
 */

struct leg {
	uint64_t		 id;
	struct route		*route;		/* NULL once detached */
	enum config_face	 face;
	char			 local[JID_DOMAIN_MAX];
	char			 remote[JID_DOMAIN_MAX];
	bool			 ready;
	bool			 congested;
	bool			 fail_send;
	int			 congest_after;	/* sends; 0: never */
	bool			 sm;		/* acknowledges with XEP-0198 */
	int			 ack_requests;	/* leg_request_ack() calls */
};

#define FAKE_LEGS	16
#define FAKE_SENT	64

static struct {
	struct leg	 legs[FAKE_LEGS];
	int		 nlegs;
	int		 connects;		/* leg_connect() calls */
	uint64_t	 cause;			/* of the last one */
	bool		 connect_fails;
	bool		 connect_gone;		/* fails inside leg_connect() */
	struct {
		struct leg	*leg;
		char		*data;
	}		 sent[FAKE_SENT];
	int		 nsent;
} fake;

static struct leg *
leg_connect(void *arg, struct route *route, enum config_face face,
    const char *local, const char *remote, uint64_t cause)
{
	struct leg *l;

	fake.connects++;
	fake.cause = cause;
	if (fake.connect_fails || fake.nlegs == FAKE_LEGS)
		return NULL;
	l = &fake.legs[fake.nlegs++];
	memset(l, 0, sizeof(*l));
	l->id = (uint64_t)fake.nlegs;
	l->route = route;
	l->face = face;
	snprintf(l->local, sizeof(l->local), "%s", local);
	snprintf(l->remote, sizeof(l->remote), "%s", remote);
	if (fake.connect_gone) {
		/* As leg_out.c does when policy denies the remote. */
		l->route = NULL;
		route_leg_gone(route, l, XMPP_STANZA_POLICY_VIOLATION,
		    "denied by policy");
		return NULL;
	}
	return l;
}

static int
leg_send(struct leg *l, const struct iovec *iov, int iovcnt)
{
	char *data;
	size_t len = 0;

	assert_true(l->ready);
	if (l->fail_send)
		return -1;
	assert_true(fake.nsent < FAKE_SENT);
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	assert_non_null(data = malloc(len + 1));
	fake.sent[fake.nsent].leg = l;
	fake.sent[fake.nsent].data = data;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(data, iov[i].iov_base, iov[i].iov_len);
		data += iov[i].iov_len;
	}
	*data = '\0';
	fake.nsent++;
	if (l->congest_after > 0 && --l->congest_after == 0)
		l->congested = true;
	return 0;
}

static bool
leg_is_ready(const struct leg *l)
{
	return l->ready;
}

static bool
leg_is_congested(const struct leg *l)
{
	return l->congested;
}

static void
leg_detach_route(struct leg *l)
{
	l->route = NULL;
}

static void
fake_close(struct leg *l, enum xmpp_stream_error cond, const char *text)
{
	l->ready = false;
}

static bool
leg_has_sm(const struct leg *l)
{
	return l->sm;
}

static int
leg_request_ack(struct leg *l)
{
	l->ack_requests++;
	return 0;
}

/* Resumed legs, by id, for the back-pressure test. */
static uint64_t fake_resumed[8];
static size_t fake_nresumed;

static void
leg_resume(void *arg, uint64_t id)
{
	if (fake_nresumed < 8)
		fake_resumed[fake_nresumed++] = id;
}

static void
leg_describe(const struct leg *l, uint64_t *id, const char **state)
{
	*id = l->id;
	*state = l->ready ? "ready" : "connecting";
}

/* The carrier the route table under test calls instead of leg.c. */
static const struct route_carrier fake_carrier = {
	.connect = leg_connect,
	.send = leg_send,
	.is_ready = leg_is_ready,
	.is_congested = leg_is_congested,
	.has_sm = leg_has_sm,
	.request_ack = leg_request_ack,
	.resume = leg_resume,
	.detach = leg_detach_route,
	.close = fake_close,
	.describe = leg_describe,
};

const char *
config_face_name(enum config_face face)
{
	static const char *const names[] = { "public", "internal",
	    "transparent" };

	return (size_t)face < sizeof(names) / sizeof(names[0]) ?
	    names[face] : NULL;
}

/* The fake leg for (face, local, remote), or NULL. */
static struct leg *
fake_leg(enum config_face face, const char *local, const char *remote)
{
	int i;

	for (i = fake.nlegs - 1; i >= 0; i--)
		if (fake.legs[i].face == face &&
		    strcmp(fake.legs[i].local, local) == 0 &&
		    strcmp(fake.legs[i].remote, remote) == 0)
			return &fake.legs[i];
	return NULL;
}

static void
fake_reset(void)
{
	int i;

	for (i = 0; i < fake.nsent; i++)
		free(fake.sent[i].data);
	memset(&fake, 0, sizeof(fake));
}

/* Assert that sent[i] went out on leg l holding exactly want. */
static void
expect_sent(int i, const struct leg *l, const char *want)
{
	assert_true(i < fake.nsent);
	assert_ptr_equal(fake.sent[i].leg, l);
	assert_string_equal(fake.sent[i].data, want);
}

/*
 * Set-up: a real loop for the idle timers, a config with a small queue.
 */

static struct event_base *base;
static struct route_table *routes;

static void
configure(unsigned queue, uint64_t idle_ms)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.limits.queue = queue;
	c.timeouts.idle = idle_ms;
	route_configure(routes, &c);
}

static int
setup(void **state)
{
	fake_reset();
	if ((base = event_base_new()) == NULL)
		return -1;
	if ((routes = route_table_new(base, &fake_carrier, NULL)) == NULL)
		return -1;
	configure(4, 60000);
	return 0;
}

static int
teardown(void **state)
{
	route_shutdown(routes);
	assert_int_equal(route_count(routes), 0);
	assert_int_equal(route_queued(routes), 0);
	route_table_free(routes);
	routes = NULL;
	event_base_free(base);
	base = NULL;
	fake_reset();
	return 0;
}

/* The routes of one scenario: a remote user writes to a local user. The
 * stanza came in on the public face and goes out on the internal one; its
 * answers go back out on the public face. */
#define R	"remote.example"
#define L	"corp.example"

static struct route_origin
origin(const char *name, const char *type, const char *id)
{
	struct route_origin o = {
		.face = PUB,
		.attrs = { .name = name, .from = "juliet@" R "/balcony",
		    .to = "romeo@" L, .id = id, .type = type },
	};

	return o;
}

/* route_send() data in two pieces, as a leg hands a stanza over: its
 * first 9 bytes (a start tag) and the rest. */
static int
send_str(struct route *r, const char *data, const struct route_origin *o)
{
	size_t len = strlen(data), head = len < 9 ? len : 9;
	struct iovec iov[2] = {
		{ .iov_base = (void *)(uintptr_t)data, .iov_len = head },
		{ .iov_base = (void *)(uintptr_t)(data + head),
		  .iov_len = len - head },
	};

	return route_send(r, iov, 2, o);
}

static int
send_msg(struct route *r, const char *id)
{
	struct route_origin o = origin("message", "chat", id);
	char data[128];

	snprintf(data, sizeof(data), "<message id='%s'/>", id);
	return send_str(r, data, &o);
}

/* The stanza as send_msg() writes it. */
static const char *
msg_bytes(const char *id)
{
	static char data[128];

	snprintf(data, sizeof(data), "<message id='%s'/>", id);
	return data;
}

static void
counters(struct route_counters *c)
{
	route_get_counters(routes, c);
}

/* route_foreach(routes, ) into one info, for the route local -> remote on face. */
struct find_info {
	const char		*face, *local, *remote;
	struct route_info	 info;
	bool			 found;
	int			 n;
};

static void
find_info_fn(const struct route_info *i, void *arg)
{
	struct find_info *f = arg;

	f->n++;
	if (strcmp(i->face, f->face) == 0 && strcmp(i->local, f->local) == 0 &&
	    strcmp(i->remote, f->remote) == 0) {
		f->info = *i;
		f->found = true;
	}
}

static struct route_info
info_of(const char *face, const char *local, const char *remote)
{
	struct find_info f = { .face = face, .local = local,
	    .remote = remote };

	route_foreach(routes, find_info_fn, &f);
	assert_true(f.found);
	f.info.face = f.info.local = f.info.remote = NULL;	/* borrowed */
	return f.info;
}

/*
 * route_get
 */

static void
test_get_find_or_create(void **state)
{
	struct route *a, *b;
	char longname[300];

	a = route_get(routes, INT, R, L);
	assert_non_null(a);
	assert_ptr_equal(route_get(routes, INT, R, L), a);
	assert_int_equal(route_count(routes), 1);
	b = route_get(routes, PUB, R, L);
	assert_non_null(b);
	assert_ptr_not_equal(b, a);
	assert_ptr_not_equal(route_get(routes, INT, L, R), a);
	assert_ptr_not_equal(route_get(routes, INT, R, "other.example"), a);
	assert_int_equal(route_count(routes), 4);
	assert_int_equal(fake.connects, 0);	/* legs only on demand */

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_null(route_get(routes, INT, longname, L));
	assert_null(route_get(routes, INT, R, longname));
	assert_int_equal(route_count(routes), 4);
}

/*
 * Sending
 */

/* The leg is started for the incoming leg of the first stanza queued. */
static void
test_leg_cause(void **state)
{
	struct route *r = route_get(routes, INT, R, L);
	struct route_origin o = origin("message", "chat", "c1");
	struct leg *l;

	o.leg_id = 42;
	assert_int_equal(send_str(r, "<message id='c1'/>", &o), 0);
	assert_int_equal(fake.connects, 1);
	assert_int_equal(fake.cause, 42);
	o.leg_id = 43;
	assert_int_equal(send_str(r, "<message id='c2'/>", &o), 0);
	assert_int_equal(fake.connects, 1);	/* the same leg, still 42's */
	assert_non_null(l = fake_leg(INT, R, L));
	/* The leg fails (the queue is bounced): the next leg is for the
	 * incoming leg of the stanza that asks for it. */
	route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_TIMEOUT, "test");
	assert_int_equal(send_str(r, "<message id='c3'/>", &o), 0);
	assert_int_equal(fake.cause, 43);
}

static void
test_direct_send_when_ready(void **state)
{
	struct route *r = route_get(routes, INT, R, L);
	struct route_counters c;
	struct leg *l;

	assert_int_equal(send_msg(r, "1"), 0);
	l = fake_leg(INT, R, L);
	assert_non_null(l);
	assert_ptr_equal(l->route, r);
	l->ready = true;
	route_leg_ready(r, l);
	assert_int_equal(fake.nsent, 1);

	/* Ready, not congested, nothing queued: written at once. */
	assert_int_equal(send_msg(r, "2"), 0);
	assert_int_equal(fake.nsent, 2);
	expect_sent(1, l, msg_bytes("2"));
	assert_int_equal(route_queued(routes), 0);
	assert_int_equal(fake.connects, 1);	/* the leg is reused */
	counters(&c);
	assert_int_equal(c.sent, 2);
	assert_int_equal(info_of("internal", R, L).sent, 2);

	/* Congested: queued, written when the leg drains. */
	l->congested = true;
	assert_int_equal(send_msg(r, "3"), 0);
	assert_int_equal(fake.nsent, 2);
	assert_int_equal(route_queued(routes), 1);
	assert_int_equal(route_queue_length(r), 1);
	l->congested = false;
	route_leg_drained(r, l);
	expect_sent(2, l, msg_bytes("3"));
	assert_int_equal(route_queued(routes), 0);
}

/* Back-pressure: congested routes ask paused senders to wait, and wake
 * them once the leg drains, or when the leg is gone. */
static void
test_waiters_woken(void **state)
{
	struct route *r = route_get(routes, INT, R, L);
	struct leg *l;

	fake_nresumed = 0;
	assert_int_equal(send_msg(r, "1"), 0);	/* queue 1 of 4: not yet */
	assert_false(route_is_congested(r));
	assert_int_equal(send_msg(r, "2"), 0);	/* half full */
	assert_true(route_is_congested(r));
	assert_int_equal(route_wait(r, 7), 0);
	assert_int_equal(route_wait(r, 7), 0);	/* once per leg */
	assert_int_equal(route_wait(r, 9), 0);
	l = fake_leg(INT, R, L);
	l->ready = true;
	l->congested = true;
	route_leg_ready(r, l);			/* still congested */
	assert_int_equal(fake_nresumed, 0);
	l->congested = false;
	route_leg_drained(r, l);		/* flushed: wake both */
	assert_int_equal(fake_nresumed, 2);
	assert_true(fake_resumed[0] == 7 && fake_resumed[1] == 9);
	l->congested = true;
	assert_true(route_is_congested(r));
	assert_int_equal(route_wait(r, 11), 0);
	route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_TIMEOUT, NULL);
	assert_int_equal(fake_nresumed, 3);	/* gone wakes too */
	assert_true(fake_resumed[2] == 11);
}

static void
test_queue_then_flush_in_order(void **state)
{
	static const char *const ids[] = { "a", "b", "c", "d" };
	struct route *r = route_get(routes, INT, R, L);
	struct route_info info;
	struct leg *l;
	size_t i;

	for (i = 0; i < 4; i++)
		assert_int_equal(send_msg(r, ids[i]), 0);
	assert_int_equal(fake.connects, 1);
	assert_int_equal(fake.nsent, 0);
	assert_int_equal(route_queued(routes), 4);
	info = info_of("internal", R, L);
	assert_int_equal(info.queue, 4);
	assert_int_equal(info.queue_bytes, 4 * strlen(msg_bytes("a")));
	l = fake_leg(INT, R, L);

	/* A drained leg that is not ready yet writes nothing. */
	route_leg_drained(r, l);
	assert_int_equal(fake.nsent, 0);
	/* A leg that is not the route's is ignored. */
	route_leg_ready(r, NULL);
	assert_int_equal(fake.nsent, 0);

	/* Ready: flushed in order until the leg congests, then on drain. */
	l->ready = true;
	l->congest_after = 2;
	route_leg_ready(r, l);
	assert_int_equal(fake.nsent, 2);
	assert_int_equal(route_queued(routes), 2);
	/* Still queued: a new stanza waits behind them. */
	l->congested = false;
	assert_int_equal(send_msg(r, "e"), 0);
	assert_int_equal(fake.nsent, 5);
	for (i = 0; i < 4; i++)
		expect_sent((int)i, l, msg_bytes(ids[i]));
	expect_sent(4, l, msg_bytes("e"));
	assert_int_equal(route_queued(routes), 0);
}

/*
 * Queue full: each kind of stanza that may be answered, byte-exact on the
 * reverse route.
 */

static const struct {
	const char	*name, *type;
	const char	*want;
} full_cases[] = {
	{ "message", "chat",
	  "<message from='romeo@" L "' to='juliet@" R "/balcony' id='x' "
	  "type='error'><error type='wait' by='" L "'><resource-constraint "
	  "xmlns='" ST "'/><text xmlns='" ST "' xml:lang='en'>queue full"
	  "</text></error></message>" },
	{ "iq", "get",
	  "<iq from='romeo@" L "' to='juliet@" R "/balcony' id='x' "
	  "type='error'><error type='wait' by='" L "'><resource-constraint "
	  "xmlns='" ST "'/><text xmlns='" ST "' xml:lang='en'>queue full"
	  "</text></error></iq>" },
	{ "presence", "subscribe",
	  "<presence from='romeo@" L "' to='juliet@" R "/balcony' id='x' "
	  "type='error'><error type='wait' by='" L "'><resource-constraint "
	  "xmlns='" ST "'/><text xmlns='" ST "' xml:lang='en'>queue full"
	  "</text></error></presence>" },
};

static void
test_queue_full_bounces(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(full_cases) / sizeof(full_cases[0]); i++) {
		struct route_origin o = origin(full_cases[i].name,
		    full_cases[i].type, "x");
		struct route *r, *back;
		struct leg *l;

		configure(2, 60000);
		r = route_get(routes, INT, R, L);
		assert_int_equal(send_msg(r, "1"), 0);
		assert_int_equal(send_msg(r, "2"), 0);
		assert_int_equal(send_str(r, "<x/>", &o), -1);
		assert_int_equal(route_queue_length(r), 2);
		assert_int_equal(info_of("internal", R, L).bounced, 1);

		/* The answer waits on the reverse route, out the public face. */
		back = route_get(routes, PUB, L, R);
		assert_int_equal(route_queue_length(back), 1);
		l = fake_leg(PUB, L, R);
		assert_non_null(l);
		l->ready = true;
		route_leg_ready(back, l);
		assert_int_equal(fake.nsent, 1);
		expect_sent(0, l, full_cases[i].want);

		route_shutdown(routes);
		fake_reset();
	}
}

/*
 * The leg goes: every queued stanza is answered, or dropped when it may
 * not be.
 */

static const struct {
	const char	*name, *type;
	bool		 bounced;
} gone_cases[] = {
	{ "message", NULL, true },
	{ "message", "chat", true },
	{ "message", "error", false },
	{ "presence", NULL, false },
	{ "presence", "unavailable", false },
	{ "presence", "subscribe", true },
	{ "presence", "error", false },
	{ "iq", "get", true },
	{ "iq", "set", true },
	{ "iq", "result", false },
	{ "iq", "error", false },
};
#define NGONE	(sizeof(gone_cases) / sizeof(gone_cases[0]))

static void
test_leg_gone_bounces_queue(void **state)
{
	struct route *r = route_get(routes, INT, R, L), *back;
	struct route_counters c0, c1;
	struct route_info info;
	struct leg *l, *lb;
	char id[8];
	size_t i, want = 0;
	int n;

	configure(NGONE, 60000);
	counters(&c0);
	for (i = 0; i < NGONE; i++) {
		struct route_origin o;

		snprintf(id, sizeof(id), "%zu", i);
		o = origin(gone_cases[i].name, gone_cases[i].type, id);
		assert_int_equal(send_str(r, "<s/>", &o), 0);
		want += gone_cases[i].bounced;
	}
	l = fake_leg(INT, R, L);
	/* Not the route's leg: nothing happens. */
	route_leg_gone(r, NULL, XMPP_STANZA_REMOTE_SERVER_TIMEOUT, NULL);
	assert_int_equal(route_queue_length(r), NGONE);

	route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_TIMEOUT, "timed out");
	assert_null(l->route);
	assert_int_equal(route_queue_length(r), 0);
	info = info_of("internal", R, L);
	assert_int_equal(info.leg_id, 0);
	assert_string_equal(info.leg_state, "");
	assert_int_equal(info.bounced, want);
	assert_int_equal(info.dropped, NGONE - want);
	counters(&c1);
	assert_int_equal(c1.bounced - c0.bounced, want);
	assert_int_equal(c1.dropped - c0.dropped, NGONE - want);

	/* The answers, in order, on the reverse route. */
	back = route_get(routes, PUB, L, R);
	assert_int_equal(route_queue_length(back), want);
	lb = fake_leg(PUB, L, R);
	lb->ready = true;
	route_leg_ready(back, lb);
	assert_int_equal(fake.nsent, (int)want);
	for (i = 0, n = 0; i < NGONE; i++) {
		char head[160];

		if (!gone_cases[i].bounced)
			continue;
		snprintf(head, sizeof(head), "<%s from='romeo@" L "' to='juliet@"
		    R "/balcony' id='%zu' type='error'>", gone_cases[i].name, i);
		assert_true(strncmp(fake.sent[n].data, head,
		    strlen(head)) == 0);
		assert_non_null(strstr(fake.sent[n].data,
		    "<error type='wait' by='" L "'><remote-server-timeout "
		    "xmlns='" ST "'/><text xmlns='" ST "' xml:lang='en'>"
		    "timed out</text></error>"));
		n++;
	}

	/* The next stanza starts a new leg. */
	assert_int_equal(send_msg(r, "again"), 0);
	assert_ptr_not_equal(fake_leg(INT, R, L), l);
}

/*
 * Bounces that fail are dropped, never answered again.
 */

static void
test_failed_bounce_is_dropped(void **state)
{
	struct route *r, *back;
	struct route_counters c0, c1;
	struct route_info info;

	/* The reverse route's queue is full: the answer itself is refused. */
	configure(1, 60000);
	r = route_get(routes, INT, R, L);
	back = route_get(routes, PUB, L, R);
	assert_int_equal(send_msg(back, "fill"), 0);
	assert_int_equal(send_msg(r, "1"), 0);
	counters(&c0);
	assert_int_equal(send_msg(r, "2"), -1);
	counters(&c1);
	assert_int_equal(c1.bounced - c0.bounced, 1);
	assert_int_equal(c1.dropped - c0.dropped, 1);
	info = info_of("public", L, R);
	assert_int_equal(info.dropped, 1);
	assert_int_equal(info.bounced, 0);
	assert_int_equal(info.queue, 1);
	assert_int_equal(route_count(routes), 2);
}

static void
test_no_leg_bounces_and_stops(void **state)
{
	struct route_counters c0, c1;
	struct route *r = route_get(routes, INT, R, L);
	struct route_info info;

	/* No leg can be started either way: the stanza is answered, the
	 * answer cannot go and is dropped, and that is the end of it. */
	fake.connect_fails = true;
	counters(&c0);
	assert_int_equal(send_msg(r, "1"), -1);
	counters(&c1);
	assert_int_equal(fake.connects, 2);
	assert_int_equal(c1.bounced - c0.bounced, 1);
	assert_int_equal(c1.dropped - c0.dropped, 1);
	assert_int_equal(route_count(routes), 2);
	assert_int_equal(route_queued(routes), 0);
	info = info_of("internal", R, L);
	assert_int_equal(info.bounced, 1);
	assert_int_equal(info.leg_id, 0);
	info = info_of("public", L, R);
	assert_int_equal(info.dropped, 1);
}

static void
test_gone_inside_connect(void **state)
{
	struct route *r = route_get(routes, INT, R, L), *back = route_get(routes, PUB, L, R);
	struct leg *lb;

	/* The reverse route has a ready leg, so the answer goes out. */
	assert_int_equal(send_msg(back, "0"), 0);
	lb = fake_leg(PUB, L, R);
	lb->ready = true;
	route_leg_ready(back, lb);

	/* The leg fails before leg_connect() returns: its reason is used. */
	fake.connect_gone = true;
	assert_int_equal(send_msg(r, "1"), -1);
	assert_int_equal(info_of("internal", R, L).bounced, 1);
	assert_int_equal(info_of("internal", R, L).leg_id, 0);
	expect_sent(1, lb, "<message from='romeo@" L "' to='juliet@" R
	    "/balcony' id='1' type='error'><error type='modify' by='" L "'>"
	    "<policy-violation xmlns='" ST "'/><text xmlns='" ST "' "
	    "xml:lang='en'>denied by policy</text></error></message>");
	assert_int_equal(fake.nsent, 2);
	assert_int_equal(route_queued(routes), 0);
}

static void
test_write_failure_bounces(void **state)
{
	struct route *r = route_get(routes, INT, R, L);
	struct leg *l;

	assert_int_equal(send_msg(r, "1"), 0);
	l = fake_leg(INT, R, L);
	l->ready = true;
	l->fail_send = true;
	route_leg_ready(r, l);
	assert_int_equal(route_queued(routes), 1);	/* the answer, waiting */
	assert_int_equal(info_of("internal", R, L).bounced, 1);
	assert_int_equal(send_msg(r, "2"), -1);
	assert_int_equal(info_of("internal", R, L).bounced, 2);
	assert_int_equal(route_queue_length(route_get(routes, PUB, L, R)), 2);
}

/*
 * The failure cache: after a leg fails before it is ready, no new leg
 * until the backoff ends; stanzas bounce with the cached reason. A ready
 * leg, a retry or an authenticated incoming stream clears it.
 */
static void
test_failure_cache(void **state)
{
	struct config c;
	struct route *r, *back;
	struct route_info i;
	struct leg *l, *lb;

	memset(&c, 0, sizeof(c));
	c.limits.queue = 4;
	c.timeouts.idle = 60000;
	c.timeouts.backoff = 60000;	/* long: the test never waits */
	c.timeouts.backoff_max = 600000;
	route_configure(routes, &c);
	/* answers to R go out on a ready leg of the reverse route */
	back = route_get(routes, PUB, L, R);
	assert_int_equal(send_msg(back, "0"), 0);
	lb = fake_leg(PUB, L, R);
	lb->ready = true;
	route_leg_ready(back, lb);

	r = route_get(routes, INT, R, L);
	assert_int_equal(send_msg(r, "1"), 0);
	l = fake_leg(INT, R, L);
	route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_TIMEOUT,
	    "connect timed out");
	assert_int_equal(fake.connects, 2);
	i = info_of("internal", R, L);
	assert_int_equal(i.failures, 1);
	assert_true(i.retry_in_ms > 60000 * 3 / 4 - 1000 &&
	    i.retry_in_ms <= 60000 * 5 / 4);
	assert_string_equal(i.fail_text, "connect timed out");
	assert_int_equal(i.bounced, 1);

	/* in backoff: bounced at once with the cached reason, no leg */
	assert_int_equal(send_msg(r, "2"), -1);
	assert_int_equal(fake.connects, 2);
	assert_int_equal(info_of("internal", R, L).bounced, 2);
	assert_non_null(strstr(fake.sent[fake.nsent - 1].data,
	    "<remote-server-timeout"));
	assert_non_null(strstr(fake.sent[fake.nsent - 1].data,
	    "connect timed out (cached: no new attempt for "));

	/* fedgatectl retry: a new leg at once */
	assert_int_equal(route_retry(routes, "other.example"), 0);
	assert_int_equal(route_retry(routes, L), 1);
	assert_int_equal(info_of("internal", R, L).failures, 0);
	assert_int_equal(send_msg(r, "3"), 0);
	assert_int_equal(fake.connects, 3);

	/* a second failure in a row doubles the backoff */
	l = fake_leg(INT, R, L);
	route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND, NULL);
	route_retry(routes, L);
	assert_int_equal(send_msg(r, "4"), 0);
	l = fake_leg(INT, R, L);
	route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND, NULL);
	i = info_of("internal", R, L);
	assert_int_equal(i.failures, 1);	/* the retry had cleared it */
	assert_string_equal(i.fail_text, "remote-server-not-found");

	/* an incoming stream of that domain authenticates: cleared */
	route_remote_authenticated(routes, PUB, L);	/* another face: kept */
	assert_int_equal(info_of("internal", R, L).failures, 1);
	route_remote_authenticated(routes, INT, L);
	assert_int_equal(info_of("internal", R, L).failures, 0);

	/* a ready leg clears it too */
	assert_int_equal(send_msg(r, "5"), 0);
	l = fake_leg(INT, R, L);
	route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND, NULL);
	route_retry(routes, L);
	assert_int_equal(send_msg(r, "6"), 0);
	l = fake_leg(INT, R, L);
	l->ready = true;
	route_leg_ready(r, l);
	assert_int_equal(info_of("internal", R, L).failures, 0);
	/* a leg that was ready and resets is not a failure */
	route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND, "reset");
	assert_int_equal(info_of("internal", R, L).failures, 0);
}

/*
 * Acknowledgements: kept until acknowledged, sent again once on a new leg
 * after a reset, bounced after that; pings where the leg has no XEP-0198.
 */

static void
configure_acks(unsigned unacked)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.limits.queue = 4;
	c.limits.unacked = unacked;
	c.timeouts.idle = 60000;
	c.timeouts.ack = 60000;
	route_configure(routes, &c);
}

static void
test_acks_and_resend(void **state)
{
	struct route *r = route_get(routes, INT, R, L);
	struct leg *l, *l2;

	configure_acks(3);
	assert_int_equal(send_msg(r, "1"), 0);
	l = fake_leg(INT, R, L);
	l->ready = l->sm = true;
	route_leg_ready(r, l);
	assert_int_equal(send_msg(r, "2"), 0);
	assert_int_equal(fake.nsent, 2);
	assert_int_equal(l->ack_requests, 1);	/* one request at a time */
	assert_int_equal(info_of("internal", R, L).unacked, 2);
	assert_int_equal(route_queued(routes), 2);	/* not delivered yet */
	route_leg_acked(r, l, 1);
	assert_int_equal(info_of("internal", R, L).unacked, 1);
	assert_int_equal(info_of("internal", R, L).acked, 1);
	/* the window: 3 unacknowledged at most, then the route queues */
	assert_int_equal(send_msg(r, "3"), 0);
	assert_int_equal(send_msg(r, "4"), 0);
	assert_int_equal(send_msg(r, "5"), 0);
	assert_true(route_is_congested(r));
	assert_int_equal(fake.nsent, 4);
	assert_int_equal(info_of("internal", R, L).queue, 1);
	/* the leg resets: 2, 3, 4 (unacknowledged) go again, in order, and
	 * 5 waits behind them for the window */
	l->ready = false;
	route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_TIMEOUT, "reset");
	assert_int_equal(fake.connects, 2);
	assert_int_equal(info_of("internal", R, L).resent, 3);
	l2 = &fake.legs[fake.nlegs - 1];
	assert_ptr_not_equal(l2, l);
	l2->ready = l2->sm = true;
	route_leg_ready(r, l2);
	assert_int_equal(fake.nsent, 7);
	expect_sent(4, l2, msg_bytes("2"));
	expect_sent(5, l2, msg_bytes("3"));
	expect_sent(6, l2, msg_bytes("4"));
	assert_int_equal(l2->ack_requests, 1);
	assert_int_equal(info_of("internal", R, L).queue, 1);
	/* a second reset: 2, 3, 4 were sent twice, now they are bounced;
	 * 5 goes on a third leg */
	l2->ready = false;
	route_leg_gone(r, l2, XMPP_STANZA_REMOTE_SERVER_TIMEOUT, "reset");
	assert_int_equal(info_of("internal", R, L).bounced, 3);
	assert_int_equal(info_of("internal", R, L).unacked, 0);
	assert_int_equal(info_of("internal", R, L).queue, 1);
	assert_int_equal(fake.connects, 4);	/* and one back, for the bounces */
}

/* Send a stanza on r's new ready leg; the ping that follows it goes into
 * id (64 bytes). */
static void
first_ping(struct route *r, char *id)
{
	struct leg *l;
	const char *p;

	assert_int_equal(send_msg(r, "1"), 0);
	l = fake_leg(INT, R, L);
	l->ready = true;
	route_leg_ready(r, l);
	assert_int_equal(fake.nsent, 2);	/* the stanza, then the ping */
	assert_non_null(p = strstr(fake.sent[1].data, "id='"));
	assert_int_equal(sscanf(p, "id='%63[^']'", id), 1);
	assert_non_null(strstr(fake.sent[1].data, "urn:xmpp:ping"));
}

static void
test_acks_by_ping(void **state)
{
	struct route *r = route_get(routes, INT, R, L);
	char id[64];

	configure_acks(8);
	first_ping(r, id);
	assert_false(route_ack(routes, INT, R, L, id, "get"));	/* not an answer */
	assert_false(route_ack(routes, INT, R, L, "other", "result"));
	assert_true(route_ack(routes, INT, R, L, id, "result"));
	assert_int_equal(info_of("internal", R, L).unacked, 0);
	assert_int_equal(info_of("internal", R, L).acked, 1);
	assert_true(route_ack(routes, INT, R, L, id, "result"));  /* late: taken */
	assert_int_equal(route_queued(routes), 0);
	/* another fedgated's ping answer: taken (not relayed), never an
	 * acknowledgement of ours */
	assert_int_equal(send_msg(r, "2"), 0);
	assert_int_equal(info_of("internal", R, L).unacked, 1);
	assert_true(route_ack(routes, INT, R, L, "fedgate-ack-00000000-2", "result"));
	assert_true(strncmp(id, "fedgate-ack-00000000-", 21) != 0);
	assert_int_equal(info_of("internal", R, L).unacked, 1);
}

/* What route_ack() handed to another worker. */
static struct {
	unsigned	 n, to;
	char		 id[64];
} forwarded;

static void
forward_ack(void *arg, unsigned to, enum config_face face, const char *local,
    const char *remote, const char *id, const char *type)
{
	assert_ptr_equal(arg, &forwarded);
	assert_int_equal(face, INT);
	assert_string_equal(local, R);
	assert_string_equal(remote, L);
	assert_string_equal(type, "result");
	forwarded.n++;
	forwarded.to = to;
	snprintf(forwarded.id, sizeof(forwarded.id), "%s", id);
}

/*
 * Worker 1 of 2: its pings name the instance and the worker; an answer to
 * worker 0's ping goes to worker 0, one to a worker that does not exist
 * or garbled is taken and dropped, its own acknowledges.
 */
static void
test_acks_of_workers(void **state)
{
	struct route *r = route_get(routes, INT, R, L);
	char id[64];

	configure_acks(8);
	route_table_set_worker(routes, 0xabcdef01, 1, 2, forward_ack,
	    &forwarded);
	memset(&forwarded, 0, sizeof(forwarded));
	first_ping(r, id);
	assert_int_equal(strncmp(id, "fedgate-ack-abcdef01-1-", 23), 0);
	assert_true(route_ack(routes, INT, R, L, "fedgate-ack-abcdef01-0-7",
	    "result"));
	assert_int_equal(forwarded.n, 1);
	assert_int_equal(forwarded.to, 0);
	assert_string_equal(forwarded.id, "fedgate-ack-abcdef01-0-7");
	assert_true(route_ack(routes, INT, R, L, "fedgate-ack-abcdef01-2-7",
	    "result"));
	assert_true(route_ack(routes, INT, R, L, "fedgate-ack-abcdef01-0-7x",
	    "result"));
	assert_true(route_ack(routes, INT, R, L, "fedgate-ack-abcdef01-1-",
	    "result"));
	assert_int_equal(forwarded.n, 1);
	assert_int_equal(info_of("internal", R, L).unacked, 1);
	assert_true(route_ack(routes, INT, R, L, id, "result"));
	assert_int_equal(info_of("internal", R, L).unacked, 0);
	assert_int_equal(forwarded.n, 1);
}

/*
 * route_bounce(routes, ) on its own: what is answered, what is dropped.
 */

static const struct {
	const char	*name, *type, *from, *to;
	bool		 bounced;
} bounce_cases[] = {
	{ "message", NULL, "a@" R, "b@" L, true },
	{ "message", "error", "a@" R, "b@" L, false },
	{ "presence", NULL, "a@" R, "b@" L, false },
	{ "iq", "result", "a@" R, "b@" L, false },
	{ "iq", NULL, "a@" R, "b@" L, false },
	{ "iq", "get", R, L, true },			/* bare domains */
	{ "message", NULL, "a@REMOTE.Example.", "b@" L, true },
	{ "message", NULL, NULL, "b@" L, false },	/* no from */
	{ "message", NULL, "a@" R, NULL, false },	/* no to */
	{ "message", NULL, "@" R, "b@" L, false },	/* bad from */
	{ "message", NULL, "a@" R, "b@bad_domain", false }, /* bad to */
	{ "message", NULL, "a@" R, "b@" L "/", false },
	{ "stream", NULL, "a@" R, "b@" L, false },	/* not a stanza */
};

static void
test_bounce_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(bounce_cases) / sizeof(bounce_cases[0]); i++) {
		struct route_origin o = {
			.face = PUB,
			.attrs = { .name = bounce_cases[i].name,
			    .type = bounce_cases[i].type,
			    .from = bounce_cases[i].from,
			    .to = bounce_cases[i].to, .id = "b1" },
		};
		struct route_counters c0, c1;

		counters(&c0);
		route_bounce(routes, &o, XMPP_STANZA_POLICY_VIOLATION, NULL);
		counters(&c1);
		if (bounce_cases[i].bounced) {
			assert_int_equal(c1.bounced - c0.bounced, 1);
			assert_int_equal(c1.dropped, c0.dropped);
		} else {
			assert_int_equal(c1.dropped - c0.dropped, 1);
			assert_int_equal(c1.bounced, c0.bounced);
		}
	}
	/* Every answer went to the one reverse route (domains normalised),
	 * out the face the stanzas came in on. */
	assert_int_equal(route_count(routes), 1);
	assert_int_equal(route_queue_length(route_get(routes, PUB, L, R)), 3);
}

/*
 * The idle timer, on a real loop.
 */

static void
run_loop(int ms)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = ms * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void
test_idle_route_freed(void **state)
{
	struct route *r;
	struct leg *l;

	configure(4, 20);
	(void)route_get(routes, PUB, L, R);
	r = route_get(routes, INT, R, L);
	assert_int_equal(send_msg(r, "1"), 0);
	l = fake_leg(INT, R, L);
	assert_int_equal(route_count(routes), 2);

	/* The unused route goes; the one with a leg and a queue stays. */
	run_loop(100);
	assert_int_equal(route_count(routes), 1);
	assert_int_equal(route_queue_length(r), 1);

	/* Once written and with its leg gone, it goes too. */
	l->ready = true;
	route_leg_ready(r, l);
	route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_TIMEOUT, "idle");
	assert_int_equal(route_count(routes), 1);
	run_loop(100);
	assert_int_equal(route_count(routes), 0);

	/* Used again before the time is up: the timer finds it busy. */
	configure(4, 50);
	r = route_get(routes, INT, R, L);
	assert_int_equal(send_msg(r, "2"), 0);
	run_loop(100);
	assert_int_equal(route_count(routes), 1);
}

/* route_get_cached(): no look-up while no route was freed, a fresh one
 * after. */
static void
test_route_cache(void **state)
{
	struct route_cache c = { 0 }, other = { 0 };
	struct route *r, *again;

	configure(4, 20);
	assert_non_null(r = route_get_cached(routes, &c, INT, R, L));
	assert_ptr_equal(route_get_cached(routes, &c, INT, R, L), r);
	assert_ptr_equal(route_get(routes, INT, R, L), r);
	assert_int_equal(send_msg(r, "1"), 0);	/* busy: it stays */
	assert_non_null(route_get_cached(routes, &other, PUB, L, R));
	assert_int_equal(route_count(routes), 2);

	/* The idle one is freed: both caches look again. */
	run_loop(100);
	assert_int_equal(route_count(routes), 1);
	assert_ptr_equal(route_get_cached(routes, &c, INT, R, L), r);
	assert_non_null(again = route_get_cached(routes, &other, PUB, L, R));
	assert_int_equal(route_count(routes), 2);	/* made anew */
	assert_ptr_equal(route_get(routes, PUB, L, R), again);
}

/*
 * Shutdown
 */

static void
test_shutdown(void **state)
{
	struct route *in, *out, *other;
	struct leg *lout;
	struct route_counters c0, c1;
	struct route_origin o = origin("message", NULL, "s1");

	/* out: public L -> R with a ready leg, where answers can go. */
	out = route_get(routes, PUB, L, R);
	assert_int_equal(send_msg(out, "0"), 0);
	lout = fake_leg(PUB, L, R);
	lout->ready = true;
	route_leg_ready(out, lout);
	/* in: internal R -> L, two stanzas waiting for its leg. */
	in = route_get(routes, INT, R, L);
	assert_int_equal(send_msg(in, "1"), 0);
	assert_int_equal(send_str(in, "<m/>", &o), 0);
	/* other: answers would need a route that does not exist. */
	other = route_get(routes, INT, "far.example", L);
	o.attrs.from = "x@far.example";
	assert_int_equal(send_str(other, "<m/>", &o), 0);
	assert_int_equal(route_queued(routes), 3);
	assert_int_equal(fake.connects, 3);
	assert_int_equal(route_count(routes), 3);

	counters(&c0);
	route_shutdown(routes);
	counters(&c1);
	assert_int_equal(route_count(routes), 0);
	assert_int_equal(route_queued(routes), 0);
	assert_int_equal(fake.connects, 3);	/* no new legs */
	assert_int_equal(c1.bounced - c0.bounced, 2);
	assert_int_equal(c1.dropped - c0.dropped, 1);
	/* The two answers went out on the ready leg, right away. */
	assert_int_equal(fake.nsent, 3);
	expect_sent(1, lout, "<message from='romeo@" L "' to='juliet@" R
	    "/balcony' id='1' type='error'><error type='cancel' by='" L "'>"
	    "<service-unavailable xmlns='" ST "'/><text xmlns='" ST "' "
	    "xml:lang='en'>system shutting down</text></error></message>");
	/* Every leg was told its route is gone. */
	assert_null(fake_leg(PUB, L, R)->route);
	assert_null(fake_leg(INT, R, L)->route);

	/* The module works again afterwards. */
	assert_non_null(route_get(routes, INT, R, L));
	assert_int_equal(route_count(routes), 1);
}

/*
 * The snapshot
 */

static void
test_foreach(void **state)
{
	struct route *a = route_get(routes, INT, R, L), *b = route_get(routes, PUB, L, R);
	struct find_info f = { .face = "", .local = "", .remote = "" };
	struct route_info info;
	struct leg *l;

	(void)b;
	route_foreach(routes, find_info_fn, &f);
	assert_int_equal(f.n, 2);

	assert_int_equal(send_msg(a, "1"), 0);
	assert_int_equal(send_msg(a, "22"), 0);
	info = info_of("internal", R, L);
	l = fake_leg(INT, R, L);
	assert_int_equal(info.leg_id, l->id);
	assert_string_equal(info.leg_state, "connecting");
	assert_int_equal(info.queue, 2);
	assert_int_equal(info.queue_bytes, strlen(msg_bytes("1")) +
	    strlen(msg_bytes("22")));
	assert_int_equal(info.sent, 0);
	assert_true(info.age_ms < 10000);

	l->ready = true;
	route_leg_ready(a, l);
	info = info_of("internal", R, L);
	assert_string_equal(info.leg_state, "ready");
	assert_int_equal(info.queue, 0);
	assert_int_equal(info.queue_bytes, 0);
	assert_int_equal(info.sent, 2);

	info = info_of("public", L, R);
	assert_int_equal(info.leg_id, 0);
	assert_string_equal(info.leg_state, "");
	assert_int_equal(info.queue, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_route_cache, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_get_find_or_create,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_direct_send_when_ready,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_leg_cause,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_then_flush_in_order,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiters_woken,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full_bounces,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_leg_gone_bounces_queue,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_bounce_is_dropped,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_leg_bounces_and_stops,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_inside_connect,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_cache,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_failure_bounces,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_acks_and_resend,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_acks_by_ping,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_acks_of_workers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounce_table,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_route_freed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach,
		    setup, teardown),
	};

	log_init(true, 0);
	log_set_level(LOG_LEVEL_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
