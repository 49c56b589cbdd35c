/*
 * leg: one S2S stream on one TCP connection, in one direction of stanza
 * flow (DESIGN.md "The model"), or in both when the peer speaks XEP-0288
 * (doc/internals/legs.md "Bidirectional streams"). A leg is on the public
 * or the internal face, and incoming (a peer connected) or outgoing (we
 * connected, for a route or to verify a dialback key). Each leg
 * negotiates TLS and
 * authenticates on its own; stream IDs are per leg. What a stream says
 * and decides is in stream_in.c and stream_out.c (sans I/O); the leg
 * drives them and does the I/O (doc/internals/legs.md).
 *
 * States (leg_state_name() gives the names fedgatectl shows):
 *
 *   outgoing: resolving -> connecting -> wait-header -> wait-features
 *             [-> tls -> wait-header -> wait-features]
 *             [-> sasl -> wait-header -> wait-features] -> dialback
 *             -> ready -> closing -> closed
 *   incoming: wait-header -> open [-> tls -> wait-header -> open]
 *             -> closing -> closed
 *
 * Every state but ready, open (once a domain has authenticated) and
 * closed has a timer; its expiry ends the leg with connection-timeout.
 */
#ifndef FEDGATE_LEG_H
#define FEDGATE_LEG_H

#include <sys/socket.h>
#include <sys/uio.h>

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "listener.h"
#include "xmpp.h"

struct event_base;
struct resolve;
struct tls;
struct route;
struct route_table;
struct leg;
struct leg_env;

enum leg_state {
	LEG_RESOLVING,
	LEG_CONNECTING,
	LEG_WAIT_HEADER,
	LEG_WAIT_FEATURES,
	LEG_TLS,
	LEG_SASL,
	LEG_DIALBACK,
	LEG_OPEN,
	LEG_READY,
	LEG_CLOSING,
	LEG_CLOSED
};

/* How the remote side of a leg authenticated, or how we did. */
enum leg_auth {
	LEG_AUTH_NONE,
	LEG_AUTH_DIALBACK,
	LEG_AUTH_DIALBACK_TLS,	/* XEP-0344: key accepted on a valid cert */
	LEG_AUTH_EXTERNAL,
	LEG_AUTH_TRUSTED	/* internal server, trusted by config */
};

/* A snapshot for fedgatectl sessions. Strings are borrowed until the
 * next call into the leg module. */
struct leg_info {
	uint64_t	 id;
	const char	*face;		/* "public", "internal" */
	bool		 outgoing;
	bool		 verify;	/* an outgoing dialback verification */
	const char	*local;		/* our domain on this stream */
	const char	*remote;	/* the peer's domain, "" if unknown */
	const char	*peer;		/* address */
	const char	*state;
	const char	*tls;		/* "TLSv1.3 TLS_AES_..." or "" */
	const char	*auth;
	const char	*domains;	/* incoming: authenticated pairs */
	bool		 bidi;		/* XEP-0288: stanzas flow both ways */
	const char	*carries;	/* the stanza flows it carries,
					   "from->to from->to": an outgoing
					   leg's pair, an incoming leg's
					   authenticated ones, and with bidi
					   their reverse where it is used */
	uint64_t	 age_ms;
	uint64_t	 stanzas_in, stanzas_out;
	uint64_t	 bytes_in, bytes_out;
	size_t		 queue;		/* stanzas waiting on its route */
	bool		 paused;	/* incoming: reading paused */
	const char	*transparent;	/* incoming from a transparent
					   listener: "redirect", "tproxy" or
					   "direct"; NULL otherwise */
	const char	*original;	/* such a leg's original destination;
					   "" for others */
	const char	*resolve;	/* public outgoing: "srv", "original"
					   or "route" (static); NULL others */
	const char	*source;	/* internal outgoing, upstream
					   transparent: the remote peer's
					   address it connects from; "" */
	const struct sockaddr *local_addr; /* NULL: no socket */
	const struct sockaddr *peer_addr;  /* NULL: no socket */
};

/* Where a connection taken by a transparent listener meant to go. */
struct leg_original {
	struct sockaddr_storage	 dst;
	socklen_t		 len;
	const char		*how;	/* ct_how_name(): a static string */
};

/*
 * The context of one relay's legs, instead of module state: the loop, the
 * resolver, the current configuration and TLS contexts (new legs take a
 * reference), the registry of legs, and the route table they feed (made
 * here, with this module as its carrier: route.h). Several may live side
 * by side. NULL if out of memory.
 */
struct leg_env *leg_env_new(struct event_base *, struct resolve *);
/*
 * Number the legs of env worker + 1, worker + 1 + workers, ... (before the
 * first leg): the ids of the workers' legs never meet, and a leg's id
 * names its worker, (id - 1) % workers. Without a call: 1, 2, 3...
 */
void	leg_env_set_ids(struct leg_env *env, unsigned worker,
	    unsigned workers);
/* Free env once its legs are gone (leg_count() is 0), with its routes.
 * NULL is a no-op. */
void	leg_env_free(struct leg_env *env);
/* Set the configuration and TLS contexts for new legs (start-up, each
 * reload); c is not referenced here (legs take their own reference). */
void	leg_env_set(struct leg_env *, struct config *c, struct tls *t);
/* The route table of env's legs. */
struct route_table *leg_env_routes(const struct leg_env *);

/*
 * Take over an accepted socket of face, from peer (its address is the
 * PROXY header's on a listener that reads one: the leg's peer everywhere,
 * limits included). Never fails visibly: on error the socket is closed and
 * the reason logged. With orig (not NULL), the connection came through a
 * transparent listener: the leg remembers where it meant to go (it is
 * copied), and the route its stanzas feed may connect there (resolve
 * original).
 */
void	leg_accept(struct leg_env *, enum config_face face, bool direct_tls,
	    int fd,
	    const struct listener_peer *peer, const struct leg_original *orig);
/*
 * Routes start, drive and stop their outgoing legs through the route
 * carrier this module gives route_table_new() (leg_connect, leg_send...
 * in leg.c), not by name.
 *
 * Close with the stream error cond (XMPP_STREAM_ERROR_COUNT: a clean
 * </stream:stream>) and text (may be NULL).
 */
void	leg_close(struct leg *, enum xmpp_stream_error cond, const char *text);

/* Close every leg with system-shutdown (drain); a leg still reading
 * after its close (leg_close_incoming()) stops reading and finishes. */
void	leg_close_all(struct leg_env *, const char *reason);
/* Close the incoming legs with system-shutdown, the first step of a
 * drain: each reads on until its peer ends the stream (leg_close()), and
 * relays on the outgoing legs, still open. */
void	leg_close_incoming(struct leg_env *, const char *reason);
/* Incoming legs not yet ended (lingering ones included). */
unsigned leg_count_incoming(const struct leg_env *);
/* Close the legs whose authenticated remote domain the current policy now
 * denies (after a reload, or a runtime rule), with policy-violation, and
 * reason in the log. Return how many. */
unsigned leg_close_denied(struct leg_env *, const char *reason);
/* Close leg id, or every leg whose remote domain is domain. Return how
 * many were closed. */
unsigned leg_kill(struct leg_env *, uint64_t id, const char *domain);
unsigned leg_count(const struct leg_env *);
void	leg_foreach(struct leg_env *,
	    void (*fn)(const struct leg_info *, void *), void *arg);
/* Fill info for one leg. */
void	leg_info_of(const struct leg *, struct leg_info *);
const char *leg_state_name(enum leg_state);
const char *leg_auth_name(enum leg_auth);

#endif
