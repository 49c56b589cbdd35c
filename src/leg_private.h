/*
 * The body of struct leg, shared by leg.c (the core: state machine, I/O,
 * stream errors, registry), leg_in.c (incoming streams) and leg_out.c
 * (outgoing streams). Nothing else includes this file.
 */
#ifndef FEDGATE_LEG_PRIVATE_H
#define FEDGATE_LEG_PRIVATE_H

#include <sys/queue.h>
#include <sys/tree.h>

#include <stdarg.h>

#include "conn.h"
#include "dialback.h"
#include "jid.h"
#include "leg.h"
#include "metrics.h"
#include "policy.h"
#include "resolve.h"
#include "route.h"
#include "stream_in.h"
#include "stream_out.h"
#include "xmlstream.h"
#include "xmpp.h"

struct timer;

/*
 * One (from, to) domain pair of an incoming leg: the stream's pair
 * (stream_in.h; allocated by it, this size) and what the leg keeps for it.
 */
struct leg_pair {
	struct stream_pair	 s;		/* first: the stream's */
	uint64_t		 verifier;	/* id of the verify leg, 0 none */
	/* for relaying, found at its first stanza */
	struct metrics_counter	 stanzas;	/* stanzas read for it */
	struct route_cache	 route;		/* where its stanzas go */
	bool			 carries_reverse; /* bidi: the route of its
					   reverse (to -> from) uses the leg */
};

/*
 * What only an outgoing leg uses to dial and to verify: allocated with it
 * (leg_out.c), so that an incoming leg does not carry these 600 bytes.
 */
struct leg_dial {
	char			 verify_key[DIALBACK_KEY_MAX + 1];
	char			 verify_id[DIALBACK_STREAM_ID_SIZE + 64];
	char			 host[RESOLVE_HOST_MAX]; /* the target tried */
	/* internal outgoing (upstream transparent): the remote peer's
	 * address it connects from */
	struct sockaddr_storage	 source;
	socklen_t		 sourcelen;	/* 0: fedgated's own address */
};

TAILQ_HEAD(leg_registry, leg);
RB_HEAD(leg_ids, leg);
RB_HEAD(leg_hosts, leg_host);

/*
 * The context of a set of legs (leg.h): what was module state. One per
 * relay; every leg points at its own.
 */
struct leg_env {
	struct event_base	*base;
	struct resolve		*resolve;
	struct config		*config;	/* for new legs (not a ref) */
	struct tls		*tls;		/* current; may be NULL */
	struct route_table	*routes;	/* the routes these legs feed */
	struct leg_registry	 registry;
	struct leg_ids		 ids;		/* the registry by id */
	struct leg_hosts	 hosts;		/* incoming legs per address */
	unsigned		 verifying;	/* verify legs in the registry */
	unsigned		 total;		/* legs in the registry */
	uint64_t		 next_id;
	uint64_t		 id_step;	/* next_id's step: the workers */
	struct timer		*quiet;		/* gives quiet legs' parsers
						   back (leg_env_quiet()) */
	char			*scratch;	/* a relayed stanza's rewritten
						   start tag (leg_in.c) */
	size_t			 scratch_size;
};

struct leg {
	TAILQ_ENTRY(leg)	 entry;		/* the registry */
	RB_ENTRY(leg)		 id_entry;	/* env->ids */
	struct leg_env		*env;		/* the one it is in */
	struct leg_host		*peer_host;	/* incoming: its peer's count */
	uint64_t		 id;
	enum config_face	 face;
	bool			 outgoing;
	enum leg_state		 state;
	struct config		*config;	/* the one it started with (ref) */
	struct conn		*conn;		/* NULL while resolving */
	struct xmlstream	*xs;
	struct xmpp_buf		*out;		/* scratch for rendering */
	struct timer		*timer;		/* the state's timeout */
	struct timer		*keepalive;	/* outgoing, ready */
	uint64_t		 created;	/* timer_now_ms() */
	uint64_t		 last_active;
	bool			 header_sent;	/* our stream header is out */
	bool			 peer_version;	/* peer sent version 1.0 */
	bool			 broken;	/* bad transition: close it */
	bool			 paused;	/* reading paused: route congested */
	bool			 peer_closed;	/* its end of stream or EOF came */
	bool			 bidi;		/* XEP-0288 on the stream: stanzas
						   flow both ways (doc/internals/
						   legs.md "Bidirectional") */
	char			 stream_id[STREAM_OUT_ID_MAX];
					/* incoming: ours; outgoing: theirs */
	char			 local[JID_DOMAIN_MAX];	/* ours, as on the wire */
	char			 remote[JID_DOMAIN_MAX]; /* theirs, "" unknown */
	struct policy_settings	 policy;	/* for remote's domain */
	struct sockaddr_storage	 reached;	/* incoming: the address the
						   peer connected to */
	socklen_t		 reachedlen;	/* 0: unknown */
	enum leg_auth		 auth;		/* outgoing: how we got in */
	union {		/* the stream's decisions, sans I/O */
		struct stream_in  istream;	/* incoming (stream_in.h) */
		struct stream_out ostream;	/* outgoing (stream_out.h) */
	};
	char			*close_reason;	/* LEG_REASON_MAX, once set */
	uint64_t		 stanzas_in, stanzas_out;
	uint64_t		 bytes_in, bytes_out;	/* conn's, kept at its end */
	struct metrics_counter	 stanzas_written; /* outgoing */
	/* incoming through a transparent listener */
	const char		*transparent;	/* ct_how_name(); NULL: not */
	struct sockaddr_storage	*orig;		/* the original destination,
						   NULL: none */
	socklen_t		 origlen;	/* 0: none */
	/* public outgoing: how its target was found */
	const char		*resolved_by;	/* "srv", "original", "route" */

	/* outgoing; and a bidi incoming leg carrying a route */
	struct route		*route;		/* NULL for a verify leg */
	struct stream_in	*reverse;	/* outgoing, bidi: the checks of
						   the peer's stanzas (NULL) */
	uint64_t		 cause;		/* the incoming leg it is for */
	uint8_t			*proxy;		/* PROXY v2 header to send
						   first, or NULL */
	size_t			 proxy_len;
	char			*proxy_desc;	/* what it says, for logs */
	bool			 verify;	/* sends db:verify, not db:result */
	uint64_t		 verify_for;	/* the incoming leg asking */
	struct leg_dial		*dial;		/* outgoing; NULL incoming */
	struct resolve_req	*dns;
	struct resolve_targets	*targets;
	size_t			 target_next;
	struct resolve_addrs	*addrs;
	size_t			 addr_next;
	uint16_t		 port;		/* of the target being tried */
	bool			 direct_tls;	/* that target: XEP-0368 */
	char			*last_error;	/* LEG_ERROR_MAX, once set */
	enum xmpp_stanza_error	 fail_cond;	/* for bouncing the queue */
	bool			 verify_done;	/* the verdict was reported */
};

/* Rare texts live off the leg, in buffers of these sizes made when first
 * set (leg_printf()), so that an idle leg does not carry them. */
#define LEG_REASON_MAX		800
#define LEG_ERROR_MAX		640
#define LEG_PROXY_DESC_MAX	400

/* leg.c */
/*
 * Format into *slot, a buffer of size bytes made on first use (freed with
 * the leg). Return the text, or a fixed one if out of memory.
 */
const char *leg_printf(char **slot, size_t size, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
const char *leg_vprintf(char **slot, size_t size, const char *fmt,
	    va_list ap) __attribute__((format(printf, 3, 0)));
/* A text set with leg_printf(), "" if never set. */
const char *leg_text(const char *slot);
/* "leg 42 in public remote.example->corp.example", for log lines. */
#define LEG_NAME_MAX	600
const char *leg_name(const struct leg *, char *buf, size_t len);
void	leg_enter_state(struct leg *, enum leg_state);
/* Traffic: an open or ready leg is not idle (the idle timer, lazy, reads
 * last_active when it fires: no timer is moved per stanza). */
void	leg_touch(struct leg *);
struct leg *leg_alloc(struct leg_env *, enum config_face, bool outgoing);
struct leg *leg_find(struct leg_env *, uint64_t id);
/* Incoming legs of face where domain has authenticated. */
unsigned leg_count_authenticated(struct leg_env *, enum config_face,
	    const char *domain);
/* Verify legs running. */
unsigned leg_count_verifying(struct leg_env *);
/* An authenticated pair of l, or with pending a pending one; NULL none
 * (and for outgoing legs). */
const struct stream_pair *leg_first_pair(const struct leg *, bool pending);
/* Write the rendered scratch buffer and reset it. 0 or -1. */
int	leg_flush_out(struct leg *);
/*
 * Apply l's peer rule to ssl before its handshake: `tls min-version` and
 * `tls ciphers` (tls_ssl_relax()), on the public face only (the internal
 * server gets the built-in settings). Return 0 (nothing to do, or done),
 * or -1 after logging why, when OpenSSL refuses them.
 */
int	leg_tls_relax(struct leg *, SSL *ssl);
/*
 * Connect an outgoing leg to sa (ssl: direct TLS) from source (NULL: the
 * kernel chooses): an address of this host (sourcelen bytes), or with
 * transparent one that is not ours (conn_new_connect_from()). 0, or -1
 * with errno set when a system call said why.
 */
int	leg_connect_addr(struct leg *, const struct sockaddr *, socklen_t,
	    const struct sockaddr *source, socklen_t sourcelen, bool transparent,
	    SSL *ssl);
/* Stop reading until the route wakes it (leg_resume). */
void	leg_pause(struct leg *, struct route *);
/* Start the whitespace keepalive of a ready outgoing leg. */
void	leg_start_keepalive(struct leg *);
/* Send our stream header (from local, to remote, with id if incoming). */
int	leg_send_header(struct leg *, const char *id);
/* End the leg now (socket gone, nothing more to send): log, free. */
void	leg_end(struct leg *, const char *reason);
void	leg_set_reason(struct leg *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
const struct xmlstream_limits *leg_limits(const struct leg *);

/* leg_in.c */
void	leg_in_header(struct leg *, const struct xmlstream_header *);
void	leg_in_element(struct leg *, const struct xmlstream_element *);
void	leg_in_tls_done(struct leg *);
/* The incoming leg l ends: stop the verifications it started; a route it
 * carried (bidi) sends what it holds on a new leg. */
void	leg_in_ended(struct leg *);
/*
 * The bidirectional outgoing leg l read e, which is no element of its own
 * stream: a stanza, or a dialback element of the reverse direction.
 * Check it with l->reverse as an incoming stream would, and relay it.
 */
void	leg_in_reverse_element(struct leg *, const struct xmlstream_element *);
/*
 * A bidirectional incoming leg of face, open, on which remote -> local
 * authenticated and whose reverse carries no route yet: it takes the
 * route local -> remote (l->route). NULL if none.
 */
struct leg *leg_in_bidi_carrier(struct leg_env *, struct route *,
	    enum config_face face, const char *local, const char *remote);
/* A verify leg reports its verdict to the incoming leg id. */
void	leg_in_verified(struct leg_env *, uint64_t id, const char *from,
	    const char *to, enum xmpp_db_type verdict, const char *why);

/* leg_out.c */
/*
 * Start an outgoing leg in env for route, presenting local to remote on
 * face. cause is the incoming leg whose stanza calls for it (0: none); a
 * leg to an upstream marked proxy-protocol tells it about cause's peer in
 * its PROXY v2 header. Return the leg, or NULL (then nothing was started).
 * The route carrier's connect (route.h).
 */
struct leg *leg_out_connect(struct leg_env *env, struct route *route,
	    enum config_face face, const char *local, const char *remote,
	    uint64_t cause);
void	leg_out_start(struct leg *);
void	leg_out_connected(struct leg *);
void	leg_out_header(struct leg *, const struct xmlstream_header *);
void	leg_out_element(struct leg *, const struct xmlstream_element *);
void	leg_out_tls_done(struct leg *);
/* The leg ended (any reason): tell the route or the incoming leg. */
void	leg_out_ended(struct leg *, const char *reason);
/* The connection failed before the stream opened: try the next address. */
bool	leg_out_retry(struct leg *);
/*
 * Start verifying key for the pair p of the incoming leg asker with its
 * authoritative server (public face: SRV of remote; internal face: the
 * upstream); p->verifier names the verify leg. The verdict comes through
 * leg_in_verified(), possibly before this returns: p may be gone then.
 * Return 0, or -1 if nothing was started.
 */
int	leg_out_verify(struct leg *asker, struct leg_pair *p, const char *key);

#endif
