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
 */
#ifndef FEDGATE_LISTENER_H
#define FEDGATE_LISTENER_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct listener;

/* Called with each accepted socket (the callee owns fd). */
typedef void (*listener_accept_fn)(struct listener *, int fd,
    const struct sockaddr *peer, socklen_t peerlen, void *arg);

/*
 * Bind addr (an IPv6 wildcard also accepts IPv4). With transparent, set
 * IP_TRANSPARENT (IPV6_TRANSPARENT) first, so that connections TPROXY
 * diverts to it are accepted (needs CAP_NET_ADMIN; without it the
 * listener still takes REDIRECTed connections, and a warning says so).
 * Return the listener, not yet accepting, or NULL with the reason in err
 * (errlen bytes).
 */
struct listener *listener_new(struct event_base *, const struct sockaddr *addr,
	    socklen_t addrlen, bool transparent, listener_accept_fn, void *arg,
	    char *err, size_t errlen);
/* Close the socket. listener_free(NULL) is a no-op. */
void	listener_free(struct listener *);
/*
 * Start or stop accepting. Return 0 or -1. Stopping also cancels a pause:
 * a stopped listener accepts again only once started again. Starting a
 * paused listener leaves it paused; it resumes when its pause ends.
 */
int	listener_enable(struct listener *, bool on);
/* The bound address as text ("[::]:5269"). */
const char *listener_address(const struct listener *);

#ifdef LISTENER_PRIVATE
/* The state's name: "disabled", "accepting" or "paused". */
const char *listener_state_name(const struct listener *);
/* Failed accepts since the last successful one. */
unsigned listener_failures(const struct listener *);
#endif

#endif
