/*
 * stream_out: the decisions of an outgoing S2S stream, sans I/O. fedgated
 * is the initiating entity: it sends its header, reads the peer's
 * features, runs STARTTLS as policy says, authenticates with SASL
 * EXTERNAL when offered and allowed, else with dialback (a db:result with
 * a key minted from the secret, XEP-0185, or on a verify leg a db:verify
 * asking whether a key is valid), then carries stanzas, with XEP-0198
 * acknowledgements when the peer offers them.
 *
 * Events go in (connected, the peer's header, an element, TLS done),
 * actions come out in a caller's struct stream_out_actions, in order. No
 * socket, timer, route, log, metrics or global state here: finding and
 * reaching the peer (DNS, addresses, PROXY header) is the leg's
 * (leg_out.c, the driver), and so is carrying out the actions.
 *
 * States:
 *
 *   connecting -> wait-header -> wait-features
 *       [-> tls -> wait-header -> wait-features]
 *       [-> sasl -> wait-header -> wait-features] -> dialback -> ready
 *   connecting -> wait-header -> dialback (a pre-1.0 peer)
 *   any -> closed (failed, or done: a verify leg has its verdict)
 *
 * Bidirectional streams (XEP-0288): when the features offer <bidi/>, the
 * peer's rule says bidi yes and the stream is not a verify leg, <bidi/>
 * goes out before authentication (SASL or dialback; after STARTTLS when
 * there is one). The peer's stanzas are then taken on the strength of
 * having reached its server (and of its certificate where it was valid):
 * on the public face, a rule that accepts the peer only with SASL
 * EXTERNAL (auth external) needs its certificate valid for that, else
 * bidi is not asked for. Once ready, the BIDI action tells the driver that the
 * peer may send stanzas back on the stream: the driver checks them as an
 * incoming stream of the reverse pair (stream_in_init_reverse()).
 */
#ifndef FEDGATE_STREAM_OUT_H
#define FEDGATE_STREAM_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dialback.h"
#include "leg.h"
#include "policy.h"
#include "xmlstream.h"
#include "xmpp.h"

enum stream_out_state {
	STREAM_OUT_CONNECTING,	/* before the connection (and direct TLS) */
	STREAM_OUT_WAIT_HEADER,	/* our header sent, waiting for theirs */
	STREAM_OUT_WAIT_FEATURES,
	STREAM_OUT_TLS,		/* <starttls/> sent, then the handshake */
	STREAM_OUT_SASL,	/* <auth mechanism='EXTERNAL'/> sent */
	STREAM_OUT_DIALBACK,	/* db:result (db:verify) sent */
	STREAM_OUT_READY,	/* authenticated: stanzas may go */
	STREAM_OUT_CLOSED
};

/* XEP-0198 on the stream: off, asked for, or on. */
enum stream_out_sm {
	STREAM_OUT_SM_OFF,
	STREAM_OUT_SM_ENABLING,
	STREAM_OUT_SM_ON
};

/* Room for the peer's stream id (ours are DIALBACK_STREAM_ID_LEN). */
#define STREAM_OUT_ID_MAX	(DIALBACK_STREAM_ID_SIZE + 64)

/*
 * The stream. Its body is public so that the leg can hold it without an
 * allocation; only this module writes it, drivers read it.
 */
struct stream_out {
	enum stream_out_state	 state;
	enum config_face	 face;
	bool			 verify;	/* a verify leg: db:verify */
	const char		*local;	/* the driver's: ours */
	const char		*remote; /* the driver's: the peer's */
	const struct policy_settings *policy; /* the driver's: for remote */
	char			*stream_id; /* the driver's STREAM_OUT_ID_MAX
					   bytes: the peer's header's id */
	enum leg_auth		 auth;	/* how we got in */
	bool			 peer_version;	/* the peer said 1.0 */
	bool			 sm_offered;	/* features offer XEP-0198 */
	enum stream_out_sm	 sm;
	uint32_t		 sm_sent;	/* stanzas since <enable/> */
	uint32_t		 sm_acked;	/* the peer's last h */
	bool			 sm_asked;	/* an <r/> is unanswered */
	bool			 bidi;		/* <bidi/> sent (XEP-0288) */
	bool			 peer_valid;	/* the peer's certificate is valid
						   for remote (after TLS) */
};

/* What the module may know of the world, read only. */
struct stream_out_ctx {
	const struct config	*config;	/* the dialback secret */
	bool			 tls;	/* the connection is TLS now */
	bool			 has_cert; /* it holds local's certificate */
	bool			 acks;	/* stanzas wait to be acknowledged
					   (a route, limit unacked) */
	const char		*verify_id;  /* a verify leg: the id and */
	const char		*verify_key; /* key to ask about */
};

/* What the driver does, in order. */
enum stream_out_do {
	STREAM_OUT_SEND_HEADER,	/* our stream header */
	STREAM_OUT_SEND_STARTTLS,
	STREAM_OUT_SEND_SASL_AUTH, /* <auth mechanism='EXTERNAL'>, as local */
	STREAM_OUT_SEND_DB_RESULT, /* db:result local -> remote with .key */
	STREAM_OUT_SEND_DB_VERIFY, /* db:verify with .id and .key */
	STREAM_OUT_SEND_SM_ENABLE,
	STREAM_OUT_SEND_SM_ANSWER, /* <a h='0'/>: we receive nothing */
	STREAM_OUT_SEND_BIDI,	/* <bidi xmlns='urn:xmpp:bidi'/> */
	STREAM_OUT_OPENED,	/* the peer's header came */
	STREAM_OUT_START_TLS,	/* TLS as the client, after <proceed/> */
	STREAM_OUT_RESTART,	/* a new stream starts: reset the framer */
	STREAM_OUT_AUTH_RESULT,	/* .method succeeded (.yes) or not */
	STREAM_OUT_AUTHENTICATED, /* by .auth: start carrying stanzas */
	STREAM_OUT_BIDI,	/* ready and bidirectional: the peer's stanzas
				   come back on the stream (by .auth) */
	STREAM_OUT_VERDICT,	/* a verify leg's answer: .verdict */
	STREAM_OUT_ACKED,	/* the peer acknowledged .count more
				   stanzas (0 and SM off: it refused SM) */
	STREAM_OUT_NOTE,	/* log .why (.yes: at info, else debug) */
	STREAM_OUT_STATE,	/* the stream entered .state */
	STREAM_OUT_CLOSE,	/* close cleanly for .why (a verify leg done) */
	STREAM_OUT_FAIL		/* fail for .why: close with .cond
				   (XMPP_STREAM_ERROR_COUNT: cleanly); what
				   waits bounces with .stanza_cond */
};

struct stream_out_action {
	enum stream_out_do	 what;
	enum stream_out_state	 state;
	bool			 yes;
	enum xmpp_stream_error	 cond;
	enum xmpp_stanza_error	 stanza_cond;
	enum xmpp_db_type	 verdict;
	enum leg_auth		 auth;
	uint32_t		 count;
	const char		*id, *key, *method;
	const char		*why;
};

#define STREAM_OUT_ACTIONS_MAX	8
#define STREAM_OUT_TEXT_MAX	512

/* The actions of one event; strings live until the next event. */
struct stream_out_actions {
	size_t			 n;
	struct stream_out_action a[STREAM_OUT_ACTIONS_MAX];
	char			 text[STREAM_OUT_TEXT_MAX];
	size_t			 textlen;
};

/*
 * Start s on face from local to remote (the caller's strings, and its
 * policy settings for remote: they outlive s), in connecting; verify: a
 * verify leg. stream_id is the caller's buffer of STREAM_OUT_ID_MAX bytes
 * where s keeps the peer's stream id.
 */
void	stream_out_init(struct stream_out *s, enum config_face face,
	    bool verify, const char *local, const char *remote,
	    const struct policy_settings *policy, char *stream_id);
const char *stream_out_state_name(enum stream_out_state);

/* The connection is up (direct TLS: use stream_out_tls_done()). */
void	stream_out_connected(struct stream_out *s,
	    const struct stream_out_ctx *c, struct stream_out_actions *a);
/* The peer's stream header h. */
void	stream_out_header(struct stream_out *s, const struct stream_out_ctx *c,
	    const struct xmlstream_header *h, struct stream_out_actions *a);
/* A top-level element from the peer. */
void	stream_out_element(struct stream_out *s,
	    const struct stream_out_ctx *c, const struct xmlstream_element *e,
	    struct stream_out_actions *a);
/*
 * The TLS handshake is done (after <proceed/>, or of direct TLS); the
 * peer's certificate is valid for remote, or not (peer_valid).
 */
void	stream_out_tls_done(struct stream_out *s,
	    const struct stream_out_ctx *c, bool peer_valid,
	    struct stream_out_actions *a);

/* Whether XEP-0198 is asked for or on. */
bool	stream_out_has_sm(const struct stream_out *s);
/* A stanza was written on the ready stream (counted for XEP-0198). */
void	stream_out_sent(struct stream_out *s);
/*
 * Whether to send an <r/> now: 1 yes (call stream_out_asked() once it is
 * written), 0 one is unanswered already, -1 the stream cannot (not
 * ready, no SM).
 */
int	stream_out_may_ask(const struct stream_out *s);
void	stream_out_asked(struct stream_out *s);

#endif
