/*
 * Unit tests for ct's pure part: addresses (IPv4-mapped made IPv4,
 * networks), tuple rendering, the NAT an entry shows, matching an entry to
 * a socket, and the rules that refuse an original destination. Tables of
 * cases; addresses from the documentation ranges. One case reaches the
 * kernel: the original destination of a plain loopback connection (no
 * NAT, an address of this host: "direct").
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

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

#include "ct.h"
#include "util.h"

/* "192.0.2.1:5269", "[2001:db8::1]:5269", "[::ffff:192.0.2.1]:5269". */
static struct sockaddr_storage
sa(const char *text)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char host[64];
	const char *colon = strrchr(text, ':');
	unsigned port = (unsigned)atoi(colon + 1);
	size_t n = (size_t)(colon - text);

	if (text[0] == '[') {
		text++;
		n -= 2;
	}
	snprintf(host, sizeof(host), "%.*s", (int)n, text);
	if (util_sockaddr_parse(host, (uint16_t)port, &ss, &len) == -1)
		fail_msg("bad address %s", text);
	return ss;
}


static struct ct_tuple
tuple(const char *src, const char *dst)
{
	struct ct_tuple t = { .src = sa(src), .dst = sa(dst) };

	return t;
}

static void
test_unmap(void **state)
{
	struct sockaddr_storage in = sa("[::ffff:192.0.2.30]:5269"), out;
	char buf[UTIL_SOCKADDR_STRLEN];
	const struct sockaddr *u = ct_unmap((struct sockaddr *)&in, &out);

	assert_int_equal(u->sa_family, AF_INET);
	assert_string_equal(util_sockaddr_str(u, buf, sizeof(buf)),
	    "192.0.2.30:5269");
	in = sa("[2001:db8::1]:5269");
	u = ct_unmap((struct sockaddr *)&in, &out);
	assert_int_equal(u->sa_family, AF_INET6);
	assert_string_equal(util_sockaddr_str(u, buf, sizeof(buf)),
	    "[2001:db8::1]:5269");
}

static void
test_addr_equal(void **state)
{
	static const struct {
		const char	*a, *b;
		bool		 equal;
	} cases[] = {
		{ "192.0.2.1:5269", "192.0.2.1:5269", true },
		{ "192.0.2.1:5269", "192.0.2.1:5270", false },
		{ "192.0.2.1:5269", "192.0.2.2:5269", false },
		{ "[::ffff:192.0.2.1]:5269", "192.0.2.1:5269", true },
		{ "[2001:db8::1]:5269", "[2001:db8::1]:5269", true },
		{ "[2001:db8::1]:5269", "192.0.2.1:5269", false },
	};

	for (size_t i = 0; i < nitems(cases); i++) {
		struct sockaddr_storage a = sa(cases[i].a), b = sa(cases[i].b);

		if (ct_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b) !=
		    cases[i].equal)
			fail_msg("case %zu: %s vs %s", i, cases[i].a, cases[i].b);
	}
}

static void
test_addr_in_net(void **state)
{
	static const struct {
		const char	*addr, *net;
		unsigned	 prefix;
		bool		 in;
	} cases[] = {
		{ "192.0.2.30:0", "192.0.2.10:0", 24, true },
		{ "192.0.2.30:0", "192.0.2.10:0", 32, false },
		{ "192.0.2.30:0", "192.0.2.10:0", 0, true },
		{ "198.51.100.1:0", "192.0.2.10:0", 24, false },
		{ "192.0.2.130:0", "192.0.2.10:0", 25, false },
		{ "192.0.2.100:0", "192.0.2.10:0", 25, true },
		{ "192.0.2.100:0", "192.0.2.10:0", 33, false },
		{ "[::ffff:192.0.2.30]:0", "192.0.2.10:0", 24, true },
		{ "[2001:db8:1::5]:0", "[2001:db8:1::1]:0", 64, true },
		{ "[2001:db8:2::5]:0", "[2001:db8:1::1]:0", 64, false },
		{ "[2001:db8:1::5]:0", "[2001:db8:1::1]:0", 127, false },
		{ "[2001:db8:1::5]:0", "192.0.2.10:0", 0, false },
	};

	for (size_t i = 0; i < nitems(cases); i++) {
		struct sockaddr_storage a = sa(cases[i].addr);
		struct sockaddr_storage n = sa(cases[i].net);

		if (ct_addr_in_net((struct sockaddr *)&a, (struct sockaddr *)&n,
		    cases[i].prefix) != cases[i].in)
			fail_msg("case %zu: %s in %s/%u", i, cases[i].addr,
			    cases[i].net, cases[i].prefix);
	}
}

static void
test_tuple_str(void **state)
{
	struct ct_tuple t = tuple("192.0.2.30:40512", "203.0.113.20:5269");
	char buf[128];

	assert_string_equal(ct_tuple_str(&t, buf, sizeof(buf)),
	    "192.0.2.30:40512 -> 203.0.113.20:5269");
	t = tuple("[2001:db8::30]:40512", "[2001:db8:1::20]:5269");
	assert_string_equal(ct_tuple_str(&t, buf, sizeof(buf)),
	    "[2001:db8::30]:40512 -> [2001:db8:1::20]:5269");
	/* cut, never overrun */
	assert_string_equal(ct_tuple_str(&t, buf, 8), "[2001:d");
}

static void
test_states(void **state)
{
	assert_string_equal(ct_tcp_state_name(3), "ESTABLISHED");
	assert_string_equal(ct_tcp_state_name(7), "TIME_WAIT");
	assert_string_equal(ct_tcp_state_name(-1), "-");
	assert_string_equal(ct_tcp_state_name(42), "?");
	assert_string_equal(ct_how_name(CT_HOW_REDIRECT), "redirect");
	assert_string_equal(ct_how_name(CT_HOW_TPROXY), "tproxy");
	assert_string_equal(ct_how_name(CT_HOW_DIRECT), "direct");
}

/* The entries of the flows a DMZ host sees, and what each shows. */
static const struct {
	const char	*name;
	const char	*osrc, *odst, *rsrc, *rdst;
	const char	*local, *peer;	/* the socket's, as fedgated sees it */
	unsigned	 nat;
	const char	*nat_name;
} flows[] = {
	{ "REDIRECT to the transparent listener",
	    "192.0.2.30:40512", "203.0.113.20:5269",
	    "192.0.2.10:15269", "192.0.2.30:40512",
	    "192.0.2.10:15269", "192.0.2.30:40512",
	    CT_NAT_DNAT, "redirect" },
	{ "TPROXY: no NAT, our local address is the original destination",
	    "192.0.2.30:40512", "203.0.113.20:5269",
	    "203.0.113.20:5269", "192.0.2.30:40512",
	    "203.0.113.20:5269", "192.0.2.30:40512",
	    0, "none" },
	{ "our own outgoing public leg",
	    "203.0.113.10:35000", "203.0.113.20:5269",
	    "203.0.113.20:5269", "203.0.113.10:35000",
	    "203.0.113.10:35000", "203.0.113.20:5269",
	    0, "none" },
	{ "outgoing, source NAT after us",
	    "192.0.2.10:35000", "203.0.113.20:5269",
	    "203.0.113.20:5269", "198.51.100.1:35000",
	    "192.0.2.10:35000", "203.0.113.20:5269",
	    CT_NAT_SNAT, "snat" },
	{ "incoming through a port forward (DNAT upstream of us)",
	    "203.0.113.20:40000", "198.51.100.1:5269",
	    "203.0.113.10:5269", "203.0.113.20:40000",
	    "203.0.113.10:5269", "203.0.113.20:40000",
	    CT_NAT_DNAT, "redirect" },
	{ "IPv6 REDIRECT, seen on a dual-stack socket",
	    "[2001:db8::30]:40512", "[2001:db8:1::20]:5269",
	    "[2001:db8::10]:15269", "[2001:db8::30]:40512",
	    "[2001:db8::10]:15269", "[2001:db8::30]:40512",
	    CT_NAT_DNAT, "redirect" },
	{ "IPv4 flow, IPv4-mapped socket addresses",
	    "192.0.2.30:40512", "203.0.113.20:5269",
	    "192.0.2.10:15269", "192.0.2.30:40512",
	    "[::ffff:192.0.2.10]:15269", "[::ffff:192.0.2.30]:40512",
	    CT_NAT_DNAT, "redirect" },
	{ "both ways rewritten",
	    "192.0.2.30:40512", "203.0.113.20:5269",
	    "192.0.2.10:15269", "198.51.100.7:40512",
	    "192.0.2.10:15269", "198.51.100.7:40512",
	    CT_NAT_DNAT | CT_NAT_SNAT, "redirect+snat" },
};

static struct ct_entry
flow_entry(size_t i)
{
	struct ct_entry e = { .tcp_state = 3 };

	e.orig = tuple(flows[i].osrc, flows[i].odst);
	e.reply = tuple(flows[i].rsrc, flows[i].rdst);
	return e;
}

static void
test_nat(void **state)
{
	for (size_t i = 0; i < nitems(flows); i++) {
		struct ct_entry e = flow_entry(i);
		struct sockaddr_storage local = sa(flows[i].local);

		if (ct_entry_nat(&e) != flows[i].nat)
			fail_msg("%s: nat %u", flows[i].name, ct_entry_nat(&e));
		assert_string_equal(ct_entry_nat_name(&e,
		    (struct sockaddr *)&local), flows[i].nat_name);
	}
	/* a DNAT elsewhere is not a redirect to us */
	{
		struct ct_entry e = flow_entry(0);
		struct sockaddr_storage other = sa("192.0.2.99:15269");

		assert_string_equal(ct_entry_nat_name(&e,
		    (struct sockaddr *)&other), "dnat");
		assert_string_equal(ct_entry_nat_name(&e, NULL), "dnat");
	}
}

static void
test_matches(void **state)
{
	for (size_t i = 0; i < nitems(flows); i++) {
		struct ct_entry e = flow_entry(i);
		struct sockaddr_storage l = sa(flows[i].local);
		struct sockaddr_storage p = sa(flows[i].peer);
		struct sockaddr_storage other = sa("192.0.2.30:40513");

		if (!ct_entry_matches(&e, (struct sockaddr *)&l,
		    (struct sockaddr *)&p))
			fail_msg("%s: does not match its socket", flows[i].name);
		/* another port is not this socket; nor, once NAT made the
		 * tuples differ, is the reversed one (without NAT it is
		 * the other end of the same connection) */
		if (flows[i].nat != 0 && ct_entry_matches(&e,
		    (struct sockaddr *)&p, (struct sockaddr *)&l))
			fail_msg("%s: matches the reversed socket",
			    flows[i].name);
		if (ct_entry_matches(&e, (struct sockaddr *)&l,
		    (struct sockaddr *)&other))
			fail_msg("%s: matches another peer", flows[i].name);
	}
}

static void
test_refusal(void **state)
{
	static const char *const allowed[] = {
		"203.0.113.20:5269", "198.51.100.7:5269", "[2001:db8:5::1]:5269",
		"[::ffff:203.0.113.20]:5269",
	};
	static const struct {
		const char	*dst;
		const char	*why;
	} refused[] = {
		{ "127.0.0.1:5269", "a loopback address" },
		{ "127.1.2.3:5269", "a loopback address" },
		{ "[::1]:5269", "a loopback address" },
		{ "[::ffff:127.0.0.1]:5269", "a loopback address" },
		{ "0.0.0.0:5269", "an unspecified address" },
		{ "[::]:5269", "an unspecified address" },
		{ "224.0.0.1:5269", "a multicast or broadcast address" },
		{ "[ff02::1]:5269", "a multicast or broadcast address" },
		{ "198.51.100.99:5269", "one of fedgated's listener addresses" },
		{ "203.0.113.10:15269", "an address of this host (eth0)" },
		{ "[::ffff:192.0.2.10]:5269", "an address of this host (eth1)" },
		{ "192.0.2.30:5269", "the intercepted server's own address" },
		{ "192.0.2.40:5269", "an upstream's address (the internal side)" },
		{ "192.0.2.77:5269", "on the internal side (the network of "
		    "192.0.2.10/24 on eth1, as the intercepted server)" },
	};
	struct ct_net host[3] = {
		{ .prefix = 24, .ifname = "eth0" },
		{ .prefix = 24, .ifname = "eth1" },
		{ .prefix = 8, .ifname = "lo" },
	};
	struct sockaddr_storage listen[1], inside[1], peer;
	struct ct_facts f = {
		.host = host, .nhost = nitems(host),
		.listen = listen, .nlisten = nitems(listen),
		.inside = inside, .ninside = nitems(inside),
		.peer = (struct sockaddr *)&peer,
	};
	char why[200];

	host[0].addr = sa("203.0.113.10:0");
	host[1].addr = sa("192.0.2.10:0");
	host[2].addr = sa("127.0.0.1:0");
	listen[0] = sa("198.51.100.99:5269");
	inside[0] = sa("192.0.2.40:5269");
	peer = sa("[::ffff:192.0.2.30]:40512");
	for (size_t i = 0; i < nitems(allowed); i++) {
		struct sockaddr_storage d = sa(allowed[i]);
		const char *r = ct_original_refusal((struct sockaddr *)&d, &f,
		    why, sizeof(why));

		if (r != NULL)
			fail_msg("%s refused: %s", allowed[i], r);
	}
	for (size_t i = 0; i < nitems(refused); i++) {
		struct sockaddr_storage d = sa(refused[i].dst);
		const char *r = ct_original_refusal((struct sockaddr *)&d, &f,
		    why, sizeof(why));

		if (r == NULL)
			fail_msg("%s allowed", refused[i].dst);
		assert_string_equal(r, refused[i].why);
	}
	/* without a known peer, only the peer's rules are skipped */
	f.peer = NULL;
	{
		struct sockaddr_storage d = sa("192.0.2.77:5269");

		assert_null(ct_original_refusal((struct sockaddr *)&d, &f, why,
		    sizeof(why)));
	}
}

/* A plain loopback connection: no NAT, and 127.0.0.1 is this host's. */
static void
test_original_direct(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_storage orig;
	socklen_t len = sizeof(sin), olen;
	enum ct_how how;
	char err[200], buf[UTIL_SOCKADDR_STRLEN], want[UTIL_SOCKADDR_STRLEN];
	int ls, cs, as;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((ls = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&sin, &len), 0);
	assert_true((cs = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(cs, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_true((as = accept(ls, NULL, NULL)) >= 0);
	assert_int_equal(ct_original_dst(as, &orig, &olen, &how, err,
	    sizeof(err)), 0);
	assert_int_equal(how, CT_HOW_DIRECT);
	util_sockaddr_str((struct sockaddr *)&sin, want, sizeof(want));
	assert_string_equal(util_sockaddr_str((struct sockaddr *)&orig, buf,
	    sizeof(buf)), want);
	close(as);
	close(cs);
	close(ls);
	/* not a socket */
	assert_int_equal(ct_original_dst(-1, &orig, &olen, &how, err,
	    sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_addr_equal),
		cmocka_unit_test(test_addr_in_net),
		cmocka_unit_test(test_tuple_str),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_nat),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_refusal),
		cmocka_unit_test(test_original_direct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
