/*
 * ct: the kernel's connection tracking, for transparent mode (DESIGN.md
 * "Transparent mode"). Where a connection redirected by nftables or
 * iptables meant to go (its original destination), the conntrack entry of
 * a leg's connection for `fedgatectl flows`, and whether an original
 * destination may be connected to.
 *
 * The original destination of an accepted connection comes, cheapest
 * first, from getsockopt(SO_ORIGINAL_DST) (IP6T_SO_ORIGINAL_DST for
 * IPv6), then from the conntrack table through libnetfilter_conntrack
 * (needs CAP_NET_ADMIN), looked up by the connection's reply tuple. A
 * connection with no NAT whose local address is not one of this host's
 * came through TPROXY: its local address is the original destination.
 *
 * Addresses are compared and rendered with IPv4-mapped IPv6 addresses
 * turned into IPv4 (conntrack keeps IPv4 flows as IPv4).
 */
#ifndef FEDGATE_CT_H
#define FEDGATE_CT_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One direction of a flow: addresses and ports. */
struct ct_tuple {
	struct sockaddr_storage	 src;
	struct sockaddr_storage	 dst;
};

/* A conntrack entry (TCP). */
struct ct_entry {
	struct ct_tuple		 orig;		/* as the initiator sent it */
	struct ct_tuple		 reply;		/* as the answer comes back */
	int			 tcp_state;	/* TCP_CONNTRACK_*, -1 unknown */
	uint32_t		 mark;
	uint32_t		 timeout;	/* seconds left */
};

/* How a connection reached a transparent listener. */
enum ct_how {
	CT_HOW_DIRECT,		/* not redirected: it meant to reach us */
	CT_HOW_REDIRECT,	/* DNAT/REDIRECT: the conntrack original dst */
	CT_HOW_TPROXY		/* TPROXY: our local address is not ours */
};

/* The NAT an entry shows: bits, reply tuple against original tuple. */
#define CT_NAT_DNAT	0x1	/* reply source is not the original dst */
#define CT_NAT_SNAT	0x2	/* reply dst is not the original source */

/* A network of this host: an interface address and its prefix length. */
struct ct_net {
	struct sockaddr_storage	 addr;
	unsigned		 prefix;
	char			 ifname[32];
};

/*
 * What ct_original_refusal() knows of the place: the host's interface
 * networks, fedgated's listener addresses, the upstreams' addresses (the
 * internal servers), and the peer whose connection was intercepted.
 */
struct ct_facts {
	const struct ct_net		*host;
	size_t				 nhost;
	const struct sockaddr_storage	*listen;
	size_t				 nlisten;
	const struct sockaddr_storage	*inside;
	size_t				 ninside;
	const struct sockaddr		*peer;	/* NULL: unknown */
};

/* "redirect", "tproxy", "direct". */
const char *ct_how_name(enum ct_how);
/* "ESTABLISHED", "TIME_WAIT"... for a TCP_CONNTRACK_* state; "-" if -1. */
const char *ct_tcp_state_name(int state);

/* Copy sa into out, an IPv4-mapped IPv6 address made IPv4. Return out. */
struct sockaddr *ct_unmap(const struct sockaddr *sa,
	    struct sockaddr_storage *out);
/* Whether a and b are the same address and port (after ct_unmap()). */
bool	ct_addr_equal(const struct sockaddr *a, const struct sockaddr *b);
/* Whether addr (after ct_unmap()) is in net/prefix of the same family. */
bool	ct_addr_in_net(const struct sockaddr *addr, const struct sockaddr *net,
	    unsigned prefix);
/* "192.0.2.30:40512 -> 203.0.113.20:5269" into buf. Return buf. */
const char *ct_tuple_str(const struct ct_tuple *, char *buf, size_t len);
/* CT_NAT_* bits of e. */
unsigned ct_entry_nat(const struct ct_entry *e);
/*
 * The NAT of e as a word: "none", "dnat", "snat", "dnat+snat"; a DNAT
 * whose new destination is local (the leg's own address, when given) is
 * "redirect".
 */
const char *ct_entry_nat_name(const struct ct_entry *e,
	    const struct sockaddr *local);
/*
 * Whether e is the flow of a socket with local and peer addresses: we
 * initiated it (orig: local -> peer) or answered it (reply: local ->
 * peer).
 */
bool	ct_entry_matches(const struct ct_entry *e, const struct sockaddr *local,
	    const struct sockaddr *peer);
/*
 * Whether fedgated may connect to dst, an original destination, given f.
 * Return NULL if so, else the reason (written into why, whylen bytes): a
 * loopback, unspecified or multicast address; one of fedgated's listener
 * addresses; an address of this host; the intercepted peer itself; an
 * upstream's address; an address on the same network as the intercepted
 * peer (the internal side).
 */
const char *ct_original_refusal(const struct sockaddr *dst,
	    const struct ct_facts *f, char *why, size_t whylen);

/*
 * The networks of this host's interfaces (getifaddrs), IPv4 and IPv6, in
 * a malloc'd array of *n (the caller frees it). NULL with *n 0 on error.
 */
struct ct_net *ct_host_nets(size_t *n);
/*
 * Where the accepted TCP connection fd meant to go: store its original
 * destination in *orig (*origlen) and how it reached us in *how. Return
 * 0, or -1 with the reason in err (errlen bytes).
 */
int	ct_original_dst(int fd, struct sockaddr_storage *orig,
	    socklen_t *origlen, enum ct_how *how, char *err, size_t errlen);

/* A handle on the conntrack table (one netlink socket). */
struct ct;
/* Open one. NULL with the reason in err (errlen bytes). */
struct ct *ct_open(char *err, size_t errlen);
/* ct_close(NULL) is a no-op. */
void	ct_close(struct ct *);
/*
 * Find the entry of the TCP flow of a socket with local and peer
 * addresses (tried as reply tuple, then as original tuple). Return 0 with
 * *e filled, 1 if there is none, -1 on error (errno set: EPERM without
 * CAP_NET_ADMIN).
 */
int	ct_lookup(struct ct *, const struct sockaddr *local,
	    const struct sockaddr *peer, struct ct_entry *e);

#endif
