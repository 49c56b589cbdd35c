/*
 * stream_in: the decisions of an incoming S2S stream, sans I/O. fedgated
 * is the receiving entity: it answers the peer's header, offers features
 * by policy, accepts or refuses STARTTLS and SASL EXTERNAL, authenticates
 * each (from, to) domain pair with dialback (XEP-0220, XEP-0344, or trust
 * in the upstream), answers db:verify for the keys it minted, and checks
 * the addressing of every stanza against the authenticated pairs.
 *
 * Events go in (a header, an element, TLS done, a verification's
 * verdict), actions come out in a caller's struct stream_in_actions, in
 * the order the caller must carry them out: send this, start TLS, verify
 * that key, close with this stream error and this reason. No socket,
 * timer, route, log, metrics or global state here; what the module needs
 * to know of the world comes in a struct stream_in_ctx, read only. The
 * leg (leg_in.c) is the driver: it turns I/O into events and executes the
 * actions (doc/internals/legs.md).
 *
 * States:
 *
 *   wait-header -> open [-> tls -> wait-header -> open]
 *                       [-> wait-header (SASL success) -> open]
 *   any -> closed (refused, or the peer ended it)
 *
 * Bidirectional streams (XEP-0288): features offer <bidi/> while no pair
 * has authenticated, when the peer's rule says bidi yes; the peer's
 * <bidi xmlns='urn:xmpp:bidi'/> then enables it (the BIDI action): the
 * driver may send, on this stream, stanzas of the reverse of an
 * authenticated pair (from its to, to its from), never before. The same
 * module checks the stanzas that come back on a bidirectional outgoing
 * stream: stream_in_init_reverse() starts one open, its one pair the
 * reverse of the outgoing stream's.
 */
#ifndef FEDGATE_STREAM_IN_H
#define FEDGATE_STREAM_IN_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "jid.h"
#include "leg.h"
#include "policy.h"
#include "xmlstream.h"
#include "xmpp.h"

enum stream_in_state {
	STREAM_IN_WAIT_HEADER,	/* before the peer's (next) header */
	STREAM_IN_OPEN,		/* header answered: negotiating, relaying */
	STREAM_IN_TLS,		/* <proceed/> sent: the handshake runs */
	STREAM_IN_CLOSED	/* ended: every event is ignored */
};

/*
 * One (from, to) domain pair authenticated, or being authenticated, on
 * the stream. The driver may make it the first member of a larger struct
 * (stream_in_init()'s pair_size) to keep its own data per pair.
 */
struct stream_pair {
	TAILQ_ENTRY(stream_pair) entry;
	/* from and to are in the pair's own allocation, after its
	 * pair_size bytes: exactly their length, not JID_DOMAIN_MAX each. */
	const char	*from;		/* the peer's, normalised */
	const char	*to;		/* ours, normalised */
	enum leg_auth	 auth;
	bool		 pending;	/* its dialback verification runs */
	const struct config_domain *dom; /* ours of the pair, found at its
					   first stanza (NULL before) */
	char		*mapped;	/* ours of the pair on the other face
					   (local.h), with dom; NULL before */
};
TAILQ_HEAD(stream_pairs, stream_pair);

/*
 * The stream. Its body is public so that the leg can hold it without an
 * allocation; only this module writes it, drivers read it.
 */
struct stream_in {
	enum stream_in_state	 state;
	enum config_face	 face;
	char			*local;	/* the driver's JID_DOMAIN_MAX bytes:
					   ours, as the header named it */
	char			*remote; /* same: the peer's, "" unknown */
	struct policy_settings	*policy; /* the driver's: the peer's rule */
	size_t			 pair_size; /* bytes to allocate per pair */
	struct stream_pairs	 pairs;	/* in the order they came */
	struct stream_pairs	 dead;	/* removed, freed at the next event */
	struct stream_pair	*relay_pair; /* the last stanza's, when it
					   named its domains normalised */
	unsigned		 npairs;	/* length of pairs */
	unsigned		 verifications;	/* started over the stream */
	unsigned		 sasl_failures;	/* failed <auth/>s */
	enum leg_auth		 auth;	/* how the latest pair got in */
	bool			 opened;	/* a header was answered */
	bool			 peer_version;	/* the peer said 1.0 */
	bool			 tls_wanted;	/* STARTTLS was offered */
	bool			 bidi_offered;	/* features offered XEP-0288 */
	bool			 bidi;		/* the peer enabled it */
	bool			 reverse;	/* the reverse direction of an
					   outgoing stream (no features,
					   no dialback of its own) */
};

/*
 * What the module may ask of the world, read only: the configuration the
 * stream started with, whether the connection is encrypted, and three
 * questions answered by the driver (the TLS contexts, the peer's
 * certificate, the other legs).
 */
struct stream_in_ctx {
	const struct config	*config;
	bool			 tls;	/* the connection is TLS now */
	/* whether fedgated holds a certificate for domain (a public name) */
	bool		(*has_cert)(const void *arg, const char *domain);
	/* whether the peer's certificate is valid for domain (no TLS: no) */
	bool		(*peer_cert_valid)(const void *arg, const char *domain);
	/* incoming legs of this face on which domain has authenticated */
	unsigned	(*authenticated)(const void *arg, const char *domain);
	const void		*arg;
};

/* What the driver does, in order. */
enum stream_in_do {
	STREAM_IN_SEND_HEADER,	/* our header; version 1.0 if .yes */
	STREAM_IN_SEND_FEATURES, /* <stream:features/>: .features */
	STREAM_IN_SEND_PROCEED,	/* <proceed/> */
	STREAM_IN_SEND_TLS_FAILURE, /* <failure/> of STARTTLS */
	STREAM_IN_SEND_SASL_SUCCESS,
	STREAM_IN_SEND_SASL_FAILURE, /* .sasl */
	STREAM_IN_SEND_DB_RESULT, /* answer .from's db:result to .to: .verdict
				     (.stanza_cond with an error) */
	STREAM_IN_SEND_DB_VERIFY, /* answer a db:verify: .from (theirs), .to
				     (ours), .id, .verdict */
	STREAM_IN_LIMITS,	/* apply the peer's rate and stanza size
				   (*policy), once per stream */
	STREAM_IN_OPENED,	/* the stream is open (.yes: a restart) */
	STREAM_IN_START_TLS,	/* TLS as the server, certificate of .domain
				   (if that cannot be: internal-server-error) */
	STREAM_IN_RESTART,	/* a new stream starts: reset the framer */
	STREAM_IN_AUTHENTICATED, /* .pair got in by .auth */
	STREAM_IN_AUTH_FAILED,	/* .from (theirs) -> .to failed .method */
	STREAM_IN_VERIFY,	/* verify .pair's .key with the authoritative
				   server: stream_in_verified() later (or
				   stream_in_verify_refused() now); last */
	STREAM_IN_NOTE,		/* log .why, about .from->.to or .from */
	STREAM_IN_STATE,	/* the stream entered .state */
	STREAM_IN_BIDI,		/* the peer enabled XEP-0288 on the stream */
	STREAM_IN_CLOSE		/* close with .cond (XMPP_STREAM_ERROR_COUNT:
				   cleanly) for .why (NULL: none); .yes: a
				   refusal */
};

struct stream_in_action {
	enum stream_in_do	 what;
	enum stream_in_state	 state;
	bool			 yes;
	enum xmpp_stream_error	 cond;
	enum xmpp_stanza_error	 stanza_cond;
	enum xmpp_sasl_error	 sasl;
	enum xmpp_db_type	 verdict;
	enum leg_auth		 auth;
	struct xmpp_features	 features;
	struct stream_pair	*pair;
	const char		*from, *to, *id, *key, *domain, *method;
	const char		*why;
};

#define STREAM_IN_ACTIONS_MAX	10
#define STREAM_IN_TEXT_MAX	4096	/* reasons and the domains actions name */

/*
 * The actions of one event. Strings point into text, into the stream's
 * pairs, into the configuration or into the event's arguments: use them
 * before the next event.
 */
struct stream_in_actions {
	size_t			 n;
	struct stream_in_action	 a[STREAM_IN_ACTIONS_MAX];
	char			 text[STREAM_IN_TEXT_MAX];
	size_t			 textlen;
};

/*
 * Where a stanza goes, as stream_in_stanza() decides: its pair, the
 * attribute of its start tag to rewrite (rw, whose value is jid), and the
 * route: face, local and remote domains (in the pair or configuration).
 */
struct stream_in_relay {
	struct stream_pair	*pair;
	struct xmlstream_rewrite rw;
	char			 jid[JID_PART_MAX * 3 + 8];
	enum config_face	 face;
	const char		*local;
	const char		*remote;
};

/*
 * Start s on face, in wait-header. local and remote are the caller's
 * buffers of JID_DOMAIN_MAX bytes and policy its settings: s fills them
 * and they must outlive it. Pairs are allocated pair_size bytes (at least
 * sizeof(struct stream_pair)), zeroed.
 */
void	stream_in_init(struct stream_in *s, enum config_face face,
	    char *local, char *remote, struct policy_settings *policy,
	    size_t pair_size);
/*
 * Start s as the reverse direction of a bidirectional outgoing stream of
 * face from local to remote (the caller's buffers and policy, as above):
 * open at once, with one pair, remote -> local, authenticated by auth (how
 * the outgoing stream authenticated; the peer is the server fedgated
 * reached for remote). Stanzas then go through stream_in_stanza() as on an
 * incoming stream of that pair; db:verify is answered, a db:result for
 * another pair is answered with an error (not-allowed: the peer opens a
 * stream of its own for it), anything else closes the stream. Return 0, or
 * -1 if out of memory.
 */
int	stream_in_init_reverse(struct stream_in *s, enum config_face face,
	    char *local, char *remote, struct policy_settings *policy,
	    size_t pair_size, enum leg_auth auth);
/* Free the pairs of s. */
void	stream_in_clear(struct stream_in *s);
const char *stream_in_state_name(enum stream_in_state);

/*
 * The peer's stream header h, for which the driver minted the stream id
 * (it goes in our header). Check its addressing (improper-addressing,
 * host-unknown, invalid-from, policy-violation), answer it, offer the
 * features.
 */
void	stream_in_header(struct stream_in *s, const struct stream_in_ctx *c,
	    const struct xmlstream_header *h, struct stream_in_actions *a);
/*
 * A top-level element that is not a stanza (stanzas go through
 * stream_in_stanza()): STARTTLS, SASL, dialback, a stream error; anything
 * else is unsupported-stanza-type.
 */
void	stream_in_element(struct stream_in *s, const struct stream_in_ctx *c,
	    const struct xmlstream_element *e, struct stream_in_actions *a);
/* The TLS handshake after <proceed/> (or of direct TLS) is done. */
void	stream_in_tls_done(struct stream_in *s, const struct stream_in_ctx *c,
	    struct stream_in_actions *a);
/*
 * The verdict of the verification of from -> to (an error with why);
 * nothing if no such pair is pending.
 */
void	stream_in_verified(struct stream_in *s, const struct stream_in_ctx *c,
	    const char *from, const char *to, enum xmpp_db_type verdict,
	    const char *why, struct stream_in_actions *a);
/*
 * The driver could not start the verification of pending pair p (cond,
 * why: limit verifications, connections...): answer the db:result with
 * an error, forget p.
 */
void	stream_in_verify_refused(struct stream_in *s,
	    const struct stream_in_ctx *c, struct stream_pair *p,
	    enum xmpp_stanza_error cond, const char *why,
	    struct stream_in_actions *a);
/*
 * A stanza (message, presence, iq of jabber:server) with the top-level
 * attributes st: check its from and to against the authenticated pairs
 * and decide its rewrite and route into r. Return 0, or -1 with a holding
 * the close. Allocates nothing; per stanza it costs two scans for the
 * domain spans and two comparisons, normalising only at a new pair.
 */
int	stream_in_stanza(struct stream_in *s, const struct stream_in_ctx *c,
	    const struct xmpp_stanza_attrs *st, struct stream_in_relay *r,
	    struct stream_in_actions *a);

/* The pair from -> to, NULL if none. */
struct stream_pair *stream_in_pair(const struct stream_in *s,
	    const char *from, const char *to);
/* The first authenticated pair (pending: the first pending one); NULL. */
struct stream_pair *stream_in_first_pair(const struct stream_in *s,
	    bool pending);

#endif
