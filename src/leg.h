/*
 * leg: one S2S stream on one TCP connection, in one direction of stanza
 * flow (DESIGN.md "The model"). A leg is on the public or the internal
 * face, and incoming (a peer connected) or outgoing (we connected, for a
 * route or to verify a dialback key). Each leg negotiates TLS and
 * authenticates on its own; stream IDs are per leg.
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
struct leg;

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
 * The leg module's environment: the loop, the resolver, the current TLS
 * contexts and configuration (new legs take a reference). Set at start-up
 * and again at each reload.
 */
void	leg_env_init(struct event_base *, struct resolve *);
void	leg_env_set(struct config *, struct tls *);

/*
 * Take over an accepted socket of face, from peer (its address is the
 * PROXY header's on a listener that reads one: the leg's peer everywhere,
 * limits included). Never fails visibly: on error the socket is closed and
 * the reason logged. With orig (not NULL), the connection came through a
 * transparent listener: the leg remembers where it meant to go (it is
 * copied), and the route its stanzas feed may connect there (resolve
 * original).
 */
void	leg_accept(enum config_face face, bool direct_tls, int fd,
	    const struct listener_peer *peer, const struct leg_original *orig);
/*
 * Start an outgoing leg for route, presenting local to remote on face.
 * cause is the incoming leg whose stanza calls for it (0: none); a leg to
 * an upstream marked proxy-protocol tells it about cause's peer in its
 * PROXY v2 header. Return the leg, or NULL (then nothing was started).
 */
struct leg *leg_connect(struct route *route, enum config_face face,
	    const char *local, const char *remote, uint64_t cause);
/* Write a whole stanza, the iovcnt pieces of iov, on a ready outgoing
 * leg (copied into its output). 0 or -1. */
int	leg_send(struct leg *, const struct iovec *iov, int iovcnt);
bool	leg_is_ready(const struct leg *);
/* Whether the ready leg acknowledges with XEP-0198 (on, or being
 * enabled); else the route asks with XEP-0199 pings. */
bool	leg_has_sm(const struct leg *);
/* Ask the peer to acknowledge what it has (XEP-0198 <r/>); the answer
 * comes through route_leg_acked(). 0, or -1 if it cannot be asked. */
int	leg_request_ack(struct leg *);
bool	leg_is_congested(const struct leg *);
/* Resume reading on leg id, paused because its route was congested. */
void	leg_resume(uint64_t id);
/* The route no longer wants leg (it is gone): forget it. */
void	leg_detach_route(struct leg *);
/* Close with the stream error cond (XMPP_STREAM_ERROR_COUNT: a clean
 * </stream:stream>) and text (may be NULL). */
void	leg_close(struct leg *, enum xmpp_stream_error cond, const char *text);

/* Close every leg with system-shutdown (drain). */
void	leg_close_all(const char *reason);
/* Close the legs whose authenticated remote domain the current policy now
 * denies (after a reload, or a runtime rule), with policy-violation, and
 * reason in the log. Return how many. */
unsigned leg_close_denied(const char *reason);
/* Close leg id, or every leg whose remote domain is domain. Return how
 * many were closed. */
unsigned leg_kill(uint64_t id, const char *domain);
unsigned leg_count(void);
void	leg_foreach(void (*fn)(const struct leg_info *, void *), void *arg);
/* Fill info for one leg. */
void	leg_info_of(const struct leg *, struct leg_info *);
const char *leg_state_name(enum leg_state);
const char *leg_auth_name(enum leg_auth);

#endif
