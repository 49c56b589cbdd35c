/*
 * ct: original destinations and conntrack entries (see ct.h).
 *
 * The pure part (tuples, NAT, matching, the refusal rules) comes first;
 * then the kernel: getsockopt, getifaddrs, and libnetfilter_conntrack
 * GET queries (one entry per query, never a dump of the whole table, which
 * on a busy gateway is large).
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <ifaddrs.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>

#include "ct.h"
#include "util.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST		80	/* <linux/netfilter_ipv4.h> */
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST	80	/* <linux/netfilter_ipv6/ip6_tables.h> */
#endif

static const char *const ct_how_names[] = {
	[CT_HOW_DIRECT] = "direct",
	[CT_HOW_REDIRECT] = "redirect",
	[CT_HOW_TPROXY] = "tproxy",
};

/* The kernel's enum tcp_conntrack, in its order. */
static const char *const ct_tcp_state_names[] = {
	"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
	"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
};

const char *
ct_how_name(enum ct_how how)
{
	return how <= CT_HOW_TPROXY ? ct_how_names[how] : "?";
}

const char *
ct_tcp_state_name(int state)
{
	if (state < 0)
		return "-";
	return (size_t)state < nitems(ct_tcp_state_names) ?
	    ct_tcp_state_names[state] : "?";
}

/*
 * Addresses.
 */

struct sockaddr *
ct_unmap(const struct sockaddr *sa, struct sockaddr_storage *out)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	struct sockaddr_in *s4 = (struct sockaddr_in *)out;

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		s4->sin_family = AF_INET;
		s4->sin_port = s6->sin6_port;
		memcpy(&s4->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	} else if (sa->sa_family == AF_INET)
		memcpy(out, sa, sizeof(struct sockaddr_in));
	else if (sa->sa_family == AF_INET6)
		memcpy(out, sa, sizeof(struct sockaddr_in6));
	else
		out->ss_family = sa->sa_family;
	return (struct sockaddr *)out;
}

/* The address bytes of sa (IPv4 or IPv6) and their length; NULL else. */
static const unsigned char *
ct_addr_bytes(const struct sockaddr *sa, size_t *len)
{
	if (sa->sa_family == AF_INET) {
		*len = 4;
		return (const unsigned char *)
		    &((const struct sockaddr_in *)sa)->sin_addr;
	}
	if (sa->sa_family == AF_INET6) {
		*len = 16;
		return ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	}
	*len = 0;
	return NULL;
}

static uint16_t
ct_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* Same address, ports ignored (both already unmapped). */
static bool
ct_host_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	const unsigned char *x, *y;
	size_t xl, yl;

	x = ct_addr_bytes(a, &xl);
	y = ct_addr_bytes(b, &yl);
	return x != NULL && y != NULL && xl == yl && memcmp(x, y, xl) == 0;
}

bool
ct_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	struct sockaddr_storage ua, ub;
	const struct sockaddr *x = ct_unmap(a, &ua), *y = ct_unmap(b, &ub);

	return ct_host_equal(x, y) && ct_port(x) == ct_port(y);
}

bool
ct_addr_in_net(const struct sockaddr *addr, const struct sockaddr *net,
    unsigned prefix)
{
	struct sockaddr_storage ua, un;
	const struct sockaddr *a = ct_unmap(addr, &ua), *n = ct_unmap(net, &un);
	const unsigned char *x, *y;
	size_t xl, yl, whole;
	unsigned rest;

	x = ct_addr_bytes(a, &xl);
	y = ct_addr_bytes(n, &yl);
	if (x == NULL || y == NULL || xl != yl || prefix > xl * 8)
		return false;
	whole = prefix / 8;
	rest = prefix % 8;
	if (memcmp(x, y, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((x[whole] ^ y[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* Loopback, unspecified or multicast: never a destination on the wire. */
static const char *
ct_special(const struct sockaddr *sa)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	uint32_t a;

	if (sa->sa_family == AF_INET) {
		a = ntohl(s4->sin_addr.s_addr);
		if ((a >> 24) == 127)
			return "a loopback address";
		if (a == 0 || (a >> 24) == 0)
			return "an unspecified address";
		if ((a >> 28) == 0xe || a == 0xffffffffu)
			return "a multicast or broadcast address";
		return NULL;
	}
	if (sa->sa_family == AF_INET6) {
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return "a loopback address";
		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			return "an unspecified address";
		if (IN6_IS_ADDR_MULTICAST(&s6->sin6_addr))
			return "a multicast or broadcast address";
		return NULL;
	}
	return "not an IP address";
}

const char *
ct_tuple_str(const struct ct_tuple *t, char *buf, size_t len)
{
	char s[UTIL_SOCKADDR_STRLEN], d[UTIL_SOCKADDR_STRLEN];

	snprintf(buf, len, "%s -> %s",
	    util_sockaddr_str((const struct sockaddr *)&t->src, s, sizeof(s)),
	    util_sockaddr_str((const struct sockaddr *)&t->dst, d, sizeof(d)));
	return buf;
}

unsigned
ct_entry_nat(const struct ct_entry *e)
{
	unsigned nat = 0;

	if (!ct_addr_equal((const struct sockaddr *)&e->reply.src,
	    (const struct sockaddr *)&e->orig.dst))
		nat |= CT_NAT_DNAT;
	if (!ct_addr_equal((const struct sockaddr *)&e->reply.dst,
	    (const struct sockaddr *)&e->orig.src))
		nat |= CT_NAT_SNAT;
	return nat;
}

const char *
ct_entry_nat_name(const struct ct_entry *e, const struct sockaddr *local)
{
	unsigned nat = ct_entry_nat(e);
	bool redirect = (nat & CT_NAT_DNAT) && local != NULL &&
	    ct_addr_equal((const struct sockaddr *)&e->reply.src, local);

	switch (nat) {
	case 0:
		return "none";
	case CT_NAT_DNAT:
		return redirect ? "redirect" : "dnat";
	case CT_NAT_SNAT:
		return "snat";
	default:
		return redirect ? "redirect+snat" : "dnat+snat";
	}
}

bool
ct_entry_matches(const struct ct_entry *e, const struct sockaddr *local,
    const struct sockaddr *peer)
{
	return (ct_addr_equal((const struct sockaddr *)&e->orig.src, local) &&
	    ct_addr_equal((const struct sockaddr *)&e->orig.dst, peer)) ||
	    (ct_addr_equal((const struct sockaddr *)&e->reply.src, local) &&
	    ct_addr_equal((const struct sockaddr *)&e->reply.dst, peer));
}

const char *
ct_original_refusal(const struct sockaddr *dst, const struct ct_facts *f,
    char *why, size_t whylen)
{
	struct sockaddr_storage ud, up;
	const struct sockaddr *d = ct_unmap(dst, &ud), *p = NULL;
	char net[INET6_ADDRSTRLEN];
	const char *s;
	size_t i;

	if (f->peer != NULL)
		p = ct_unmap(f->peer, &up);
	if ((s = ct_special(d)) != NULL) {
		snprintf(why, whylen, "%s", s);
		return why;
	}
	for (i = 0; i < f->nlisten; i++) {
		struct sockaddr_storage ul;
		const struct sockaddr *l = ct_unmap(
		    (const struct sockaddr *)&f->listen[i], &ul);

		if (ct_host_equal(d, l)) {
			snprintf(why, whylen, "one of fedgated's listener "
			    "addresses");
			return why;
		}
	}
	for (i = 0; i < f->nhost; i++) {
		struct sockaddr_storage uh;

		if (ct_host_equal(d, ct_unmap((const struct sockaddr *)
		    &f->host[i].addr, &uh))) {
			snprintf(why, whylen, "an address of this host (%s)",
			    f->host[i].ifname);
			return why;
		}
	}
	if (p != NULL && ct_host_equal(d, p)) {
		snprintf(why, whylen, "the intercepted server's own address");
		return why;
	}
	for (i = 0; i < f->ninside; i++) {
		struct sockaddr_storage ui;

		if (ct_host_equal(d, ct_unmap((const struct sockaddr *)
		    &f->inside[i], &ui))) {
			snprintf(why, whylen, "an upstream's address (the "
			    "internal side)");
			return why;
		}
	}
	for (i = 0; p != NULL && i < f->nhost; i++) {
		const struct sockaddr *n = (const struct sockaddr *)
		    &f->host[i].addr;
		size_t len;

		if (!ct_addr_in_net(p, n, f->host[i].prefix) ||
		    !ct_addr_in_net(d, n, f->host[i].prefix))
			continue;
		if (inet_ntop(n->sa_family, ct_addr_bytes(n, &len), net,
		    sizeof(net)) == NULL)
			snprintf(net, sizeof(net), "?");
		snprintf(why, whylen, "on the internal side (the network of "
		    "%s/%u on %s, as the intercepted server)", net,
		    f->host[i].prefix, f->host[i].ifname);
		return why;
	}
	return NULL;
}

/*
 * The kernel.
 */

/* The prefix length of a netmask. */
static unsigned
ct_prefix_of(const struct sockaddr *mask)
{
	const unsigned char *b;
	size_t len;
	unsigned n = 0;

	if (mask == NULL || (b = ct_addr_bytes(mask, &len)) == NULL)
		return 0;
	for (size_t i = 0; i < len; i++)
		for (int bit = 7; bit >= 0 && (b[i] >> bit) & 1; bit--)
			n++;
	return n;
}

struct ct_net *
ct_host_nets(size_t *n)
{
	struct ifaddrs *ifa, *i;
	struct ct_net *v;
	size_t count = 0;

	*n = 0;
	if (getifaddrs(&ifa) == -1)
		return NULL;
	for (i = ifa; i != NULL; i = i->ifa_next)
		if (i->ifa_addr != NULL && (i->ifa_addr->sa_family == AF_INET ||
		    i->ifa_addr->sa_family == AF_INET6))
			count++;
	if ((v = calloc(count + 1, sizeof(*v))) == NULL) {
		freeifaddrs(ifa);
		return NULL;
	}
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET &&
		    i->ifa_addr->sa_family != AF_INET6))
			continue;
		memcpy(&v[*n].addr, i->ifa_addr, i->ifa_addr->sa_family ==
		    AF_INET ? sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6));
		v[*n].prefix = ct_prefix_of(i->ifa_netmask);
		snprintf(v[*n].ifname, sizeof(v[*n].ifname), "%s", i->ifa_name);
		(*n)++;
	}
	freeifaddrs(ifa);
	return v;
}

/* Whether addr (unmapped) can be bound here: an address of this host. */
static bool
ct_is_local(const struct sockaddr *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;
	bool local;

	memcpy(&ss, addr, sizeof(ss));
	if (ss.ss_family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_port = 0;
		len = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
		len = sizeof(struct sockaddr_in6);
	}
	if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return true;	/* cannot tell: take it as not redirected */
	local = bind(fd, (struct sockaddr *)&ss, len) == 0 ||
	    errno != EADDRNOTAVAIL;
	close(fd);
	return local;
}

/* getsockopt(SO_ORIGINAL_DST): 0, or -1 (no NAT entry, or not IP). */
static int
ct_sockopt_dst(int fd, const struct sockaddr *local,
    struct sockaddr_storage *orig, socklen_t *origlen)
{
	const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)local;

	memset(orig, 0, sizeof(*orig));
	if (local->sa_family == AF_INET) {
		*origlen = sizeof(struct sockaddr_in);
		return getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, orig, origlen);
	}
	if (local->sa_family == AF_INET6 &&
	    !IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr)) {
		*origlen = sizeof(struct sockaddr_in6);
		return getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, orig,
		    origlen);
	}
	errno = ENOPROTOOPT;	/* IPv4 on an IPv6 socket: conntrack only */
	return -1;
}

/* The original destination from the conntrack table. 0 or -1. */
static int
ct_table_dst(const struct sockaddr *local, const struct sockaddr *peer,
    struct sockaddr_storage *orig, socklen_t *origlen, char *err,
    size_t errlen)
{
	struct ct_entry e;
	struct ct *ct;
	int rc;

	if ((ct = ct_open(err, errlen)) == NULL)
		return -1;
	rc = ct_lookup(ct, local, peer, &e);
	if (rc != 0)
		snprintf(err, errlen, "conntrack: %s", rc == 1 ? "no entry" :
		    strerror(errno));
	ct_close(ct);
	if (rc != 0)
		return -1;
	memcpy(orig, &e.orig.dst, sizeof(*orig));
	*origlen = orig->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	return 0;
}

int
ct_original_dst(int fd, struct sockaddr_storage *orig, socklen_t *origlen,
    enum ct_how *how, char *err, size_t errlen)
{
	struct sockaddr_storage ls, ps, ul, up;
	socklen_t llen = sizeof(ls), plen = sizeof(ps);
	const struct sockaddr *local, *peer;
	char why[160] = "";
	bool found;

	if (getsockname(fd, (struct sockaddr *)&ls, &llen) == -1 ||
	    getpeername(fd, (struct sockaddr *)&ps, &plen) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	found = ct_sockopt_dst(fd, (struct sockaddr *)&ls, orig, origlen) == 0;
	local = ct_unmap((struct sockaddr *)&ls, &ul);
	peer = ct_unmap((struct sockaddr *)&ps, &up);
	if (!found && errno != ENOENT)
		found = ct_table_dst(local, peer, orig, origlen, why,
		    sizeof(why)) == 0;
	if (found && !ct_addr_equal((struct sockaddr *)orig, local)) {
		*how = CT_HOW_REDIRECT;
		return 0;
	}
	/* No NAT: TPROXY, or a connection straight to the listener. */
	memcpy(orig, local, sizeof(*orig));
	*origlen = local->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	*how = ct_is_local(local) ? CT_HOW_DIRECT : CT_HOW_TPROXY;
	return 0;
}

struct ct {
	struct nfct_handle	*h;
	struct ct_entry		*found;		/* filled by the callback */
	bool			 got;
};

struct ct *
ct_open(char *err, size_t errlen)
{
	struct ct *ct;

	if ((ct = calloc(1, sizeof(*ct))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((ct->h = nfct_open(CONNTRACK, 0)) == NULL) {
		snprintf(err, errlen, "cannot open the conntrack table: %s",
		    strerror(errno));
		free(ct);
		return NULL;
	}
	return ct;
}

void
ct_close(struct ct *ct)
{
	if (ct == NULL)
		return;
	nfct_close(ct->h);
	free(ct);
}

/* One direction of c into t. */
static void
ct_get_tuple(const struct nf_conntrack *c, bool reply, struct ct_tuple *t)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&t->src;
	struct sockaddr_in *d4 = (struct sockaddr_in *)&t->dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->src;
	struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&t->dst;
	uint8_t family = nfct_get_attr_u8(c, reply ? ATTR_REPL_L3PROTO :
	    ATTR_ORIG_L3PROTO);
	uint16_t sport = nfct_get_attr_u16(c, reply ? ATTR_REPL_PORT_SRC :
	    ATTR_ORIG_PORT_SRC);
	uint16_t dport = nfct_get_attr_u16(c, reply ? ATTR_REPL_PORT_DST :
	    ATTR_ORIG_PORT_DST);

	memset(t, 0, sizeof(*t));
	if (family == AF_INET) {
		s4->sin_family = d4->sin_family = AF_INET;
		s4->sin_addr.s_addr = nfct_get_attr_u32(c, reply ?
		    ATTR_REPL_IPV4_SRC : ATTR_ORIG_IPV4_SRC);
		d4->sin_addr.s_addr = nfct_get_attr_u32(c, reply ?
		    ATTR_REPL_IPV4_DST : ATTR_ORIG_IPV4_DST);
		s4->sin_port = sport;
		d4->sin_port = dport;
	} else if (family == AF_INET6) {
		s6->sin6_family = d6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, nfct_get_attr(c, reply ?
		    ATTR_REPL_IPV6_SRC : ATTR_ORIG_IPV6_SRC), 16);
		memcpy(&d6->sin6_addr, nfct_get_attr(c, reply ?
		    ATTR_REPL_IPV6_DST : ATTR_ORIG_IPV6_DST), 16);
		s6->sin6_port = sport;
		d6->sin6_port = dport;
	}
}

static int
ct_query_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *c,
    void *arg)
{
	struct ct *ct = arg;
	struct ct_entry *e = ct->found;

	ct_get_tuple(c, false, &e->orig);
	ct_get_tuple(c, true, &e->reply);
	e->tcp_state = nfct_attr_is_set(c, ATTR_TCP_STATE) > 0 ?
	    nfct_get_attr_u8(c, ATTR_TCP_STATE) : -1;
	e->mark = nfct_attr_is_set(c, ATTR_MARK) > 0 ?
	    nfct_get_attr_u32(c, ATTR_MARK) : 0;
	e->timeout = nfct_attr_is_set(c, ATTR_TIMEOUT) > 0 ?
	    nfct_get_attr_u32(c, ATTR_TIMEOUT) : 0;
	ct->got = true;
	/* Go on: the ACK that follows must be read now, or the next query
	 * would take it for its own answer. */
	return NFCT_CB_CONTINUE;
}

/* Set the tuple src -> dst of c as its original or reply tuple. */
static void
ct_set_tuple(struct nf_conntrack *c, bool reply, const struct sockaddr *src,
    const struct sockaddr *dst)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
	const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
	const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)dst;

	/* The message's family is the original tuple's, in either case. */
	nfct_set_attr_u8(c, ATTR_ORIG_L3PROTO, (uint8_t)src->sa_family);
	nfct_set_attr_u8(c, reply ? ATTR_REPL_L3PROTO : ATTR_ORIG_L3PROTO,
	    (uint8_t)src->sa_family);
	nfct_set_attr_u8(c, reply ? ATTR_REPL_L4PROTO : ATTR_ORIG_L4PROTO,
	    IPPROTO_TCP);
	if (src->sa_family == AF_INET) {
		nfct_set_attr_u32(c, reply ? ATTR_REPL_IPV4_SRC :
		    ATTR_ORIG_IPV4_SRC, s4->sin_addr.s_addr);
		nfct_set_attr_u32(c, reply ? ATTR_REPL_IPV4_DST :
		    ATTR_ORIG_IPV4_DST, d4->sin_addr.s_addr);
		nfct_set_attr_u16(c, reply ? ATTR_REPL_PORT_SRC :
		    ATTR_ORIG_PORT_SRC, s4->sin_port);
		nfct_set_attr_u16(c, reply ? ATTR_REPL_PORT_DST :
		    ATTR_ORIG_PORT_DST, d4->sin_port);
	} else {
		nfct_set_attr(c, reply ? ATTR_REPL_IPV6_SRC :
		    ATTR_ORIG_IPV6_SRC, &s6->sin6_addr);
		nfct_set_attr(c, reply ? ATTR_REPL_IPV6_DST :
		    ATTR_ORIG_IPV6_DST, &d6->sin6_addr);
		nfct_set_attr_u16(c, reply ? ATTR_REPL_PORT_SRC :
		    ATTR_ORIG_PORT_SRC, s6->sin6_port);
		nfct_set_attr_u16(c, reply ? ATTR_REPL_PORT_DST :
		    ATTR_ORIG_PORT_DST, d6->sin6_port);
	}
}

/* One GET by the tuple local -> peer as reply or original tuple. */
static int
ct_get(struct ct *ct, bool reply, const struct sockaddr *local,
    const struct sockaddr *peer, struct ct_entry *e)
{
	struct nf_conntrack *c;
	int rc, err;

	if ((c = nfct_new()) == NULL)
		return -1;
	ct_set_tuple(c, reply, local, peer);
	ct->found = e;
	ct->got = false;
	nfct_callback_register(ct->h, NFCT_T_ALL, ct_query_cb, ct);
	rc = nfct_query(ct->h, NFCT_Q_GET, c);
	err = errno;
	nfct_callback_unregister(ct->h);
	nfct_destroy(c);
	if (rc == -1 && err == ENOENT)
		return 1;
	if (rc == -1) {
		errno = err;
		return -1;
	}
	return ct->got ? 0 : 1;
}

int
ct_lookup(struct ct *ct, const struct sockaddr *local,
    const struct sockaddr *peer, struct ct_entry *e)
{
	struct sockaddr_storage ul, up;
	const struct sockaddr *l = ct_unmap(local, &ul), *p = ct_unmap(peer, &up);
	int rc;

	if ((l->sa_family != AF_INET && l->sa_family != AF_INET6) ||
	    l->sa_family != p->sa_family)
		return 1;
	if ((rc = ct_get(ct, true, l, p, e)) != 1)
		return rc;
	return ct_get(ct, false, l, p, e);
}
