/*
 * route: an ordered domain pair crossing the gateway, as written on its
 * outgoing leg (local -> remote on face), with that one outgoing leg and a
 * bounded queue of stanzas waiting for it (DESIGN.md "The model").
 *
 * Incoming legs hand every accepted stanza to route_send() on the route of
 * the other face. The route creates its outgoing leg on demand
 * (leg_connect), queues while it negotiates, writes directly once it is
 * ready, and bounces what it cannot deliver (route_bounce) back to the
 * sender through the reverse route. Idle routes with no leg and an empty
 * queue are freed after the configured idle time.
 */
#ifndef FEDGATE_ROUTE_H
#define FEDGATE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include "config.h"
#include "xmpp.h"

struct event_base;
struct leg;
struct route;
struct route_table;

/*
 * What a route needs of the legs that carry it. The leg module, above,
 * hands these to route_table_new(), so that route.c names no leg function
 * and the two modules are not a cycle: legs call routes, routes call back
 * through this table only. arg is route_table_new()'s legs_arg.
 */
struct route_carrier {
	/* Start the outgoing leg for r, local -> remote on face, for the
	 * stanza of the incoming leg cause (0: none); NULL if none started
	 * (see route_leg_gone()). */
	struct leg	*(*connect)(void *arg, struct route *r,
			    enum config_face face, const char *local,
			    const char *remote, uint64_t cause);
	/* Write a whole stanza on a ready leg, copied. 0 or -1. */
	int		 (*send)(struct leg *, const struct iovec *, int);
	bool		 (*is_ready)(const struct leg *);
	bool		 (*is_congested)(const struct leg *);
	/* Acknowledges with XEP-0198 (else the route pings, XEP-0199). */
	bool		 (*has_sm)(const struct leg *);
	/* Ask for an XEP-0198 acknowledgement; route_leg_acked() answers. */
	int		 (*request_ack)(struct leg *);
	/* Resume the incoming leg leg_id, paused on a congested route. */
	void		 (*resume)(void *arg, uint64_t leg_id);
	/* The route forgets the leg (it is going away). */
	void		 (*detach)(struct leg *);
	void		 (*close)(struct leg *, enum xmpp_stream_error,
			    const char *text);
	/* For route_foreach(): the leg's id and state name. */
	void		 (*describe)(const struct leg *, uint64_t *id,
			    const char **state);
};

/*
 * What the route needs to bounce one stanza: its top-level attributes as
 * they were on the incoming leg (before any rewriting), and that leg's
 * face. Strings are copied by route_send().
 */
struct route_origin {
	enum config_face		 face;	/* where the stanza came in */
	struct xmpp_stanza_attrs	 attrs;	/* name, from, to, id, type */
	uint64_t			 leg_id; /* the incoming leg it came
						   on; 0: none (a bounce) */
};

/* A snapshot for fedgatectl routes; strings borrowed until the next call. */
struct route_info {
	const char	*face;		/* of the outgoing leg */
	const char	*local;
	const char	*remote;
	uint64_t	 leg_id;	/* 0: no leg */
	const char	*leg_state;	/* "" without a leg */
	size_t		 queue;		/* stanzas waiting */
	size_t		 queue_bytes;
	size_t		 unacked;	/* written, not acknowledged yet */
	uint64_t	 sent, bounced, dropped;
	uint64_t	 acked;		/* acknowledged by the next hop */
	uint64_t	 resent;	/* sent again after a leg reset */
	uint64_t	 age_ms;
	unsigned	 failures;	/* legs failed in a row; 0: none */
	uint64_t	 retry_in_ms;	/* until a new leg may be tried */
	const char	*fail_condition; /* the cached failure; NULL: none */
	const char	*fail_text;
};

/* Totals since start-up, for metrics (routes come and go). */
struct route_counters {
	uint64_t	 sent;		/* stanzas written to outgoing legs */
	uint64_t	 bounced;	/* answered with an error stanza */
	uint64_t	 dropped;	/* undeliverable and not answered */
	uint64_t	 acked;		/* acknowledged by the next hop */
	uint64_t	 resent;	/* sent again after a leg reset */
};

/*
 * Find or create the route local -> remote (normalised domains, as they are
 * written on the outgoing leg) on face. Return NULL if out of memory or if
 * a domain is longer than a normalised one can be. A route stays while it
 * has a leg or queued stanzas; an idle one is freed from the event loop,
 * so keep the pointer only within one callback (the route's own outgoing
 * leg excepted: the route tells it through its carrier's detach before
 * going).
 */
struct route *route_get(struct route_table *, enum config_face face,
	    const char *local, const char *remote);
/*
 * route_get() through a cache the caller keeps (zeroed at first) and asks
 * with the same face and domains every time, e.g. per domain pair: the
 * route it remembers is returned without a look-up while the table has
 * freed no route since.
 */
struct route_cache {
	struct route	*route;
	uint64_t	 generation;
};
struct route *route_get_cached(struct route_table *, struct route_cache *c,
	    enum config_face face, const char *local, const char *remote);
/*
 * Remember where the transparent leg feeding r meant to go: its original
 * destination dst, and peer, the intercepted server's address (both
 * copied; the latest call wins). A public outgoing leg started for r
 * afterwards connects there when its peer rule says resolve original.
 */
void	route_set_original(struct route *r, const struct sockaddr *dst,
	    socklen_t dstlen, const struct sockaddr *peer, socklen_t peerlen);
/*
 * The original destination r remembers, into *dst (*dstlen) and the
 * intercepted server's address into *peer. Return false if it has none
 * (no transparent leg fed it).
 */
bool	route_original(const struct route *r, struct sockaddr_storage *dst,
	    socklen_t *dstlen, struct sockaddr_storage *peer);
/*
 * Remember the address of the remote server whose incoming leg feeds r
 * (copied; the latest call wins). An internal outgoing leg started for r
 * afterwards connects from it when the domain's upstream is transparent.
 */
void	route_set_source(struct route *r, const struct sockaddr *src,
	    socklen_t srclen);
/* The source r remembers, into *src (*srclen). False if it has none. */
bool	route_source(const struct route *r, struct sockaddr_storage *src,
	    socklen_t *srclen);
/*
 * Deliver the stanza from origin, whose bytes are the iovcnt pieces of iov
 * (start tag already rewritten for the outgoing leg; typically that tag and
 * the rest as received): write it now if the leg is ready and not
 * congested, else queue it (starting a leg if there is none). The bytes
 * are copied once: into the leg's output, or into a pooled buffer when
 * the stanza waits (queued, or kept until acknowledged), never per piece
 * into a scratch. A full queue
 * bounces it with resource-constraint. A written stanza is kept (limit
 * unacked) until an XEP-0199 ping written after it is answered
 * (route_ack); if the leg ends first, it is written again, once, on a new
 * leg. Return 0 if written or queued, -1 if bounced or dropped (logged,
 * counted).
 */
int	route_send(struct route *, const struct iovec *iov, int iovcnt,
	    const struct route_origin *origin);
/*
 * Whether the route should not be fed now: its leg's output is congested,
 * or its queue is half full. The sender then pauses and asks to be woken
 * with route_wait().
 */
bool	route_is_congested(const struct route *);
/*
 * Call leg_resume(leg_id) once the route takes stanzas again, or is gone.
 * Return 0, or -1 if the route has too many waiters (do not pause then).
 */
int	route_wait(struct route *, uint64_t leg_id);
/*
 * Take the answer to one of our acknowledgement pings: an iq of type
 * result or error with id, that arrived on an incoming leg of face from
 * remote to local, authenticated. Acknowledge what the ping covered on the
 * route local -> remote of face, and write more. Return true if the iq
 * was ours (do not relay it), false if it is for the other side.
 */
bool	route_ack(struct route_table *, enum config_face, const char *local,
	    const char *remote,
	    const char *id, const char *type);
/*
 * Answer an undeliverable stanza to its sender with condition and text:
 * the error stanza goes through the reverse route (origin's face, from the
 * stanza's to-domain to its from-domain). Stanzas that may not be answered
 * (xmpp_stanza_may_bounce) are dropped and logged.
 */
void	route_bounce(struct route_table *, const struct route_origin *origin,
	    enum xmpp_stanza_error condition, const char *text);

/*
 * A route starts its outgoing leg with leg_connect(), naming as its cause
 * the incoming leg of the first stanza queued (route_origin.leg_id). The
 * carrier may hand it a leg that is ready at once (a bidirectional
 * incoming leg of the reverse pair, XEP-0288): the queue flushes then.
 *
 * Called by the route's outgoing leg (a leg that is not, or no longer, the
 * route's is ignored). A leg that fails within leg_connect() (denied by
 * policy...) may call route_leg_gone() before leg_connect() returns, so
 * that the queue is bounced with its condition; leg_connect() must then
 * return NULL.
 */
void	route_leg_ready(struct route *, struct leg *);	/* flush the queue */
void	route_leg_drained(struct route *, struct leg *); /* write more */
/* The peer acknowledged n more stanzas (XEP-0198 <a/>), or n is 0 and
 * the leg stopped acknowledging that way (<failed/>): ask again. */
void	route_leg_acked(struct route *, struct leg *, unsigned n);
/* The leg failed before ready, or closed: forget it (leg_detach_route())
 * and bounce the queue with condition (remote-server-not-found,
 * remote-server-timeout, policy-violation...) and text (may be NULL). */
void	route_leg_gone(struct route *, struct leg *,
	    enum xmpp_stanza_error condition, const char *text);

/*
 * The failure cache. When a route's outgoing leg fails before it is ready
 * (DNS, connect, TLS, authentication, policy), the route starts no new leg
 * for a while (timeout backoff, doubled at each failure in a row up to
 * timeout backoff-max, with a jitter of a quarter) and bounces what it is
 * given with the failure's condition and reason. A leg that gets ready
 * clears it, and so do these two:
 *
 * route_retry(): fedgatectl retry DOMAIN: clear the failures of every
 * route to remote (either face) at once. Return how many were cleared.
 */
unsigned route_retry(struct route_table *, const char *remote);
/* An incoming leg of face authenticated remote: it is alive; clear the
 * failures of the routes to it on that face. */
void	route_remote_authenticated(struct route_table *, enum config_face,
	    const char *remote);

/*
 * The routes of one relay: their timers run on base, their legs are
 * started and driven through legs (kept, with legs_arg, for the table's
 * life). A table holds everything the routes share (no module state), so
 * that several relays may run side by side. NULL if out of memory.
 */
struct route_table *route_table_new(struct event_base *base,
	    const struct route_carrier *legs, void *legs_arg);
/*
 * Where an answer to an acknowledgement ping of another worker goes: the
 * arguments route_ack() was given, for worker `to`, which takes them
 * with its own route_ack().
 */
typedef void (*route_forward_fn)(void *arg, unsigned to,
	    enum config_face face, const char *local, const char *remote,
	    const char *id, const char *type);
/*
 * t is worker `worker` of `workers` (worker.h): its pings carry nonce
 * (the same in every worker of one fedgated) and its index, and route_ack()
 * hands an answer to another worker's ping to forward(arg, ...). A new
 * table is worker 0 of 1 with a nonce of its own.
 */
void	route_table_set_worker(struct route_table *t, uint32_t nonce,
	    unsigned worker, unsigned workers, route_forward_fn forward,
	    void *arg);
/* Free t, after route_shutdown(). NULL is a no-op. */
void	route_table_free(struct route_table *t);
/* Copy the configuration's queue limit and idle time (the pointer is not
 * kept). Call at start-up before the first route_send(), and at reload. */
void	route_configure(struct route_table *, const struct config *);
/*
 * Bounce every queue with service-unavailable and free every route (their
 * legs are detached, not closed). Bounces go out only on reverse routes
 * whose leg is ready; the others are dropped and logged: no leg is started.
 */
void	route_shutdown(struct route_table *);
size_t	route_count(const struct route_table *);
/* Stanzas queued or awaiting acknowledgement over all routes (SIGTERM
 * drain waits for 0). */
size_t	route_queued(const struct route_table *);
/* Stanzas waiting on route (for leg_info.queue). */
size_t	route_queue_length(const struct route *);
void	route_foreach(struct route_table *,
	    void (*fn)(const struct route_info *, void *), void *arg);
void	route_get_counters(const struct route_table *,
	    struct route_counters *);

#endif
