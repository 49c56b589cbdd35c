/*
 * listener: one listening TCP socket (public, internal or transparent
 * face). Binds at start-up, before privileges are dropped; accepts only
 * once enabled; hands each accepted socket to its owner.
 *
 * When accept() fails for want of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM; any error but ECONNABORTED, EINTR, EAGAIN) the listener
 * pauses by itself and retries from a timer, backing off from 20 ms to
 * 1 s; the connections wait in the kernel's backlog. The failures are
 * logged at most once per 5 s per listener, with their count, and one line
 * says when an accept succeeds again.
 *
 * A listener marked for the PROXY protocol reads each connection's PROXY
 * v2 header itself (listener_set_proxy()) and hands the owner the peer
 * the header names.
 */
#ifndef FEDGATE_LISTENER_H
#define FEDGATE_LISTENER_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

struct event_base;
struct listener;

/* Who an accepted socket is from. Pointers live during the call only. */
struct listener_peer {
	/* The peer: from the PROXY header, else the socket's. */
	const struct sockaddr	*addr;
	socklen_t		 addrlen;
	/* The address it reached: the PROXY header's destination, else the
	 * socket's own. */
	const struct sockaddr	*local;
	socklen_t		 locallen;
	/* The socket's peer (the balancer) when a PROXY header named the
	 * peer; NULL without a header or with a LOCAL one. */
	const struct sockaddr	*via;
	socklen_t		 vialen;
};

/* Called with each accepted socket (the callee owns fd). */
typedef void (*listener_accept_fn)(struct listener *, int fd,
    const struct listener_peer *peer, void *arg);

/* listener_new() flags. */
#define LISTENER_TRANSPARENT	0x1
#define LISTENER_REUSEPORT	0x2

/*
 * Bind addr (an IPv6 wildcard also accepts IPv4). With
 * LISTENER_TRANSPARENT in flags, set IP_TRANSPARENT (IPV6_TRANSPARENT)
 * first, so that connections TPROXY diverts to it are accepted (needs
 * CAP_NET_ADMIN; without it the listener still takes REDIRECTed
 * connections, and a warning says so). With LISTENER_REUSEPORT, set
 * SO_REUSEPORT, so that other processes of the same user (the workers)
 * bind the same address and the kernel spreads connections over them.
 * Return the listener, not yet accepting, or NULL with the reason in err
 * (errlen bytes).
 */
struct listener *listener_new(struct event_base *, const struct sockaddr *addr,
	    socklen_t addrlen, unsigned flags, listener_accept_fn, void *arg,
	    char *err, size_t errlen);
/* Close the socket. listener_free(NULL) is a no-op. */
void	listener_free(struct listener *);
/*
 * Start or stop accepting. Return 0 or -1. Stopping also cancels a pause:
 * a stopped listener accepts again only once started again. Starting a
 * paused listener leaves it paused; it resumes when its pause ends.
 */
int	listener_enable(struct listener *, bool on);
/*
 * Expect a PROXY protocol v2 header (proxy.h) first on every connection,
 * or not (on false). The header is read before the socket goes to the
 * owner, never a byte past it, within timeout_ms of the accept; at most
 * max_pending connections wait for theirs at once (more are closed at
 * accept). A connection without a valid header is closed, with one log
 * line giving the reason and the socket's peer address. Call again to
 * change the bounds (they apply to connections accepted from then on).
 */
void	listener_set_proxy(struct listener *, bool on, uint64_t timeout_ms,
	    unsigned max_pending);
/* The bound address as text ("[::]:5269"). */
const char *listener_address(const struct listener *);

#ifdef LISTENER_PRIVATE
/* The state's name: "disabled", "accepting" or "paused". */
const char *listener_state_name(const struct listener *);
/* Failed accepts since the last successful one. */
unsigned listener_failures(const struct listener *);
/* Connections waiting for their PROXY header. */
unsigned listener_pending(const struct listener *);
#endif

#endif
