/*
 * xmpp: the vocabulary of an S2S stream. Namespaces, the stream, stanza and
 * SASL error conditions (RFC 6120 4.9.3, 8.3.3, 6.5) with their name tables,
 * and rendering of what fedgate itself writes on a stream: headers,
 * features, TLS and SASL negotiation, stream errors, dialback elements
 * (XEP-0220) and stanza error bounces. Sans-I/O: everything is rendered into
 * a struct xmpp_buf that the caller then writes to its connection.
 *
 * Every rendering function appends to the buffer and returns 0, or -1 with
 * the buffer exactly as it was before the call (out of memory, an argument
 * out of range, or a string XML 1.0 cannot carry). Strings are borrowed,
 * NUL-terminated UTF-8; attribute values and text are escaped here, so
 * callers pass them raw, as the peer sent them or as configured.
 */
#ifndef FEDGATE_XMPP_H
#define FEDGATE_XMPP_H

#include <sys/uio.h>

#include <stdbool.h>
#include <stddef.h>

#define XMPP_NS_STREAMS		"http://etherx.jabber.org/streams"
#define XMPP_NS_SERVER		"jabber:server"
#define XMPP_NS_CLIENT		"jabber:client"
#define XMPP_NS_DIALBACK	"jabber:server:dialback"
#define XMPP_NS_DIALBACK_FEATURES "urn:xmpp:features:dialback"
#define XMPP_NS_TLS		"urn:ietf:params:xml:ns:xmpp-tls"
#define XMPP_NS_SM		"urn:xmpp:sm:3"
#define XMPP_NS_SASL		"urn:ietf:params:xml:ns:xmpp-sasl"
#define XMPP_NS_STREAM_ERRORS	"urn:ietf:params:xml:ns:xmpp-streams"
#define XMPP_NS_STANZA_ERRORS	"urn:ietf:params:xml:ns:xmpp-stanzas"
#define XMPP_NS_XML		"http://www.w3.org/XML/1998/namespace"
/* XEP-0288 (bidirectional S2S): the request, and the stream feature. */
#define XMPP_NS_BIDI		"urn:xmpp:bidi"
#define XMPP_NS_BIDI_FEATURES	"urn:xmpp:features:bidi"

/* Stream error conditions, RFC 6120 4.9.3, in the RFC's order. */
enum xmpp_stream_error {
	XMPP_STREAM_BAD_FORMAT,
	XMPP_STREAM_BAD_NAMESPACE_PREFIX,
	XMPP_STREAM_CONFLICT,
	XMPP_STREAM_CONNECTION_TIMEOUT,
	XMPP_STREAM_HOST_GONE,
	XMPP_STREAM_HOST_UNKNOWN,
	XMPP_STREAM_IMPROPER_ADDRESSING,
	XMPP_STREAM_INTERNAL_SERVER_ERROR,
	XMPP_STREAM_INVALID_FROM,
	XMPP_STREAM_INVALID_NAMESPACE,
	XMPP_STREAM_INVALID_XML,
	XMPP_STREAM_NOT_AUTHORIZED,
	XMPP_STREAM_NOT_WELL_FORMED,
	XMPP_STREAM_POLICY_VIOLATION,
	XMPP_STREAM_REMOTE_CONNECTION_FAILED,
	XMPP_STREAM_RESET,
	XMPP_STREAM_RESOURCE_CONSTRAINT,
	XMPP_STREAM_RESTRICTED_XML,
	XMPP_STREAM_SEE_OTHER_HOST,
	XMPP_STREAM_SYSTEM_SHUTDOWN,
	XMPP_STREAM_UNDEFINED_CONDITION,
	XMPP_STREAM_UNSUPPORTED_ENCODING,
	XMPP_STREAM_UNSUPPORTED_FEATURE,
	XMPP_STREAM_UNSUPPORTED_STANZA_TYPE,
	XMPP_STREAM_UNSUPPORTED_VERSION
};
#define XMPP_STREAM_ERROR_COUNT	(XMPP_STREAM_UNSUPPORTED_VERSION + 1)

/* Stanza error conditions, RFC 6120 8.3.3, in the RFC's order. */
enum xmpp_stanza_error {
	XMPP_STANZA_BAD_REQUEST,
	XMPP_STANZA_CONFLICT,
	XMPP_STANZA_FEATURE_NOT_IMPLEMENTED,
	XMPP_STANZA_FORBIDDEN,
	XMPP_STANZA_GONE,
	XMPP_STANZA_INTERNAL_SERVER_ERROR,
	XMPP_STANZA_ITEM_NOT_FOUND,
	XMPP_STANZA_JID_MALFORMED,
	XMPP_STANZA_NOT_ACCEPTABLE,
	XMPP_STANZA_NOT_ALLOWED,
	XMPP_STANZA_NOT_AUTHORIZED,
	XMPP_STANZA_POLICY_VIOLATION,
	XMPP_STANZA_RECIPIENT_UNAVAILABLE,
	XMPP_STANZA_REDIRECT,
	XMPP_STANZA_REGISTRATION_REQUIRED,
	XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
	XMPP_STANZA_REMOTE_SERVER_TIMEOUT,
	XMPP_STANZA_RESOURCE_CONSTRAINT,
	XMPP_STANZA_SERVICE_UNAVAILABLE,
	XMPP_STANZA_SUBSCRIPTION_REQUIRED,
	XMPP_STANZA_UNDEFINED_CONDITION,
	XMPP_STANZA_UNEXPECTED_REQUEST
};
#define XMPP_STANZA_ERROR_COUNT	(XMPP_STANZA_UNEXPECTED_REQUEST + 1)

/* The 'type' of a stanza <error/>, RFC 6120 8.3.2. */
enum xmpp_error_type {
	XMPP_ERROR_AUTH,
	XMPP_ERROR_CANCEL,
	XMPP_ERROR_CONTINUE,
	XMPP_ERROR_MODIFY,
	XMPP_ERROR_WAIT
};
#define XMPP_ERROR_TYPE_COUNT	(XMPP_ERROR_WAIT + 1)

/* SASL failure conditions, RFC 6120 6.5, in the RFC's order. */
enum xmpp_sasl_error {
	XMPP_SASL_ABORTED,
	XMPP_SASL_ACCOUNT_DISABLED,
	XMPP_SASL_CREDENTIALS_EXPIRED,
	XMPP_SASL_ENCRYPTION_REQUIRED,
	XMPP_SASL_INCORRECT_ENCODING,
	XMPP_SASL_INVALID_AUTHZID,
	XMPP_SASL_INVALID_MECHANISM,
	XMPP_SASL_MALFORMED_REQUEST,
	XMPP_SASL_MECHANISM_TOO_WEAK,
	XMPP_SASL_NOT_AUTHORIZED,
	XMPP_SASL_TEMPORARY_AUTH_FAILURE
};
#define XMPP_SASL_ERROR_COUNT	(XMPP_SASL_TEMPORARY_AUTH_FAILURE + 1)

/* The 'type' of a <db:result/> or <db:verify/>, XEP-0220. */
enum xmpp_db_type {
	XMPP_DB_NONE,		/* no 'type': a request carrying a key */
	XMPP_DB_VALID,
	XMPP_DB_INVALID,
	XMPP_DB_ERROR
};
#define XMPP_DB_TYPE_COUNT	(XMPP_DB_ERROR + 1)

/*
 * Name tables. x_name() returns the element or attribute text of a value
 * ("host-unknown", "cancel"), or NULL if the value is out of range.
 * x_parse() maps the exact, case-sensitive text back: return 0 and store
 * the value, or -1 if name is unknown (or NULL).
 */
const char *xmpp_stream_error_name(enum xmpp_stream_error);
int	xmpp_stream_error_parse(const char *name, enum xmpp_stream_error *);
const char *xmpp_stanza_error_name(enum xmpp_stanza_error);
int	xmpp_stanza_error_parse(const char *name, enum xmpp_stanza_error *);
const char *xmpp_error_type_name(enum xmpp_error_type);
int	xmpp_error_type_parse(const char *name, enum xmpp_error_type *);
const char *xmpp_sasl_error_name(enum xmpp_sasl_error);
int	xmpp_sasl_error_parse(const char *name, enum xmpp_sasl_error *);
/* XMPP_DB_NONE has the name "" and is what a NULL or absent type parses to. */
const char *xmpp_db_type_name(enum xmpp_db_type);
int	xmpp_db_type_parse(const char *name, enum xmpp_db_type *);
/*
 * The error type RFC 6120 8.3.3 associates with condition: auth for
 * forbidden, not-authorized, registration-required, subscription-required;
 * modify for bad-request, jid-malformed, not-acceptable, policy-violation,
 * redirect; wait for recipient-unavailable, remote-server-timeout,
 * resource-constraint, unexpected-request; cancel for the rest (including
 * undefined-condition, which allows any). Where the RFC allows two types,
 * the first it names is used. XMPP_ERROR_CANCEL if out of range.
 */
enum xmpp_error_type xmpp_stanza_error_type(enum xmpp_stanza_error);

/*
 * A growable byte buffer that rendering appends to. The bytes are always
 * followed by a NUL (not counted in the length), so text can be logged.
 */
struct xmpp_buf;

/* Return an empty buffer, or NULL if out of memory. */
struct xmpp_buf *xmpp_buf_new(void);
/* Free buf and its bytes. xmpp_buf_free(NULL) is a no-op. */
void	xmpp_buf_free(struct xmpp_buf *buf);
/* Give back the memory of an empty buf (the next rendering makes it again). */
void	xmpp_buf_shrink(struct xmpp_buf *buf);
/* Empty buf, keeping its memory for the next rendering. */
void	xmpp_buf_reset(struct xmpp_buf *buf);
/* The bytes (borrowed, valid until the next change) and their count. */
const char *xmpp_buf_data(const struct xmpp_buf *buf);
/* Point *iov at buf's bytes (valid until buf changes); return iov. */
struct iovec *xmpp_buf_iov(const struct xmpp_buf *buf, struct iovec *iov);
size_t	xmpp_buf_len(const struct xmpp_buf *buf);
/* Append len raw bytes, unescaped. Return 0 or -1 (buf unchanged). */
int	xmpp_buf_append(struct xmpp_buf *buf, const void *data, size_t len);
/* Append printf output, unescaped. Return 0 or -1 (buf unchanged). */
int	xmpp_buf_printf(struct xmpp_buf *buf, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/*
 * Append len bytes of s escaped for use as XML character data or as an
 * attribute value in either quote: & < > ' " become entity references; tab,
 * LF and CR become character references so that attribute normalisation
 * keeps them. Return 0, or -1 (buf unchanged) if s holds a NUL or another
 * control character XML 1.0 cannot carry. s is otherwise copied as is and
 * must be UTF-8.
 */
int	xmpp_buf_append_escaped(struct xmpp_buf *buf, const char *s,
	    size_t len);

/*
 * The attributes of a stream header. NULL fields are left out; version is
 * normally "1.0" (RFC 6120 4.7.5), NULL only to talk to pre-RFC peers.
 */
struct xmpp_stream_header {
	const char	*from;
	const char	*to;
	const char	*id;		/* response header only (RFC 6120 4.7.3) */
	const char	*version;
	bool		 dialback;	/* declare xmlns:db (XEP-0220 2.4.1) */
};

/*
 * Render an S2S stream header, XML declaration first:
 *   <?xml version='1.0'?><stream:stream xmlns='jabber:server'
 *   xmlns:stream='http://etherx.jabber.org/streams'
 *   [xmlns:db='jabber:server:dialback'] [from=''] [to=''] [id='']
 *   [version='']>
 * (one line, single spaces). Also used after every stream restart.
 */
int	xmpp_render_header(struct xmpp_buf *, const struct xmpp_stream_header *);
/* Render "</stream:stream>". */
int	xmpp_render_close(struct xmpp_buf *);

/* What a receiving entity offers in <stream:features/>. */
struct xmpp_features {
	bool	starttls;		/* <starttls/> */
	bool	starttls_required;	/* ... with <required/> (implies starttls) */
	bool	sasl_external;		/* SASL mechanism EXTERNAL (XEP-0178) */
	bool	dialback;		/* XEP-0220 2.4.2 dialback with errors */
	bool	bidi;			/* XEP-0288 bidirectional streams */
};

/*
 * Render <stream:features> with, in this order: <starttls
 * xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> (or with a <required/> child),
 * <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL
 * </mechanism></mechanisms>, <dialback xmlns='urn:xmpp:features:dialback'>
 * <errors/></dialback>, <bidi xmlns='urn:xmpp:features:bidi'/>. With
 * nothing offered: <stream:features/>.
 */
int	xmpp_render_features(struct xmpp_buf *, const struct xmpp_features *);

/* STARTTLS (RFC 6120 5.4.2): the request, and the receiver's answers. */
int	xmpp_render_starttls(struct xmpp_buf *);
int	xmpp_render_tls_proceed(struct xmpp_buf *);
int	xmpp_render_tls_failure(struct xmpp_buf *);
/* XEP-0288: the initiating entity asks for a bidirectional stream. */
int	xmpp_render_bidi(struct xmpp_buf *);
/*
 * SASL EXTERNAL (RFC 6120 6.4, XEP-0178). The <auth/> carries authzid in
 * base64, or "=" (an empty response) if authzid is NULL or "".
 */
int	xmpp_render_sasl_auth_external(struct xmpp_buf *, const char *authzid);
int	xmpp_render_sasl_success(struct xmpp_buf *);
/*
 * Read a SASL <auth/> as the receiving entity that offers EXTERNAL only:
 * mechanism is its 'mechanism' attribute (may be NULL), data its
 * character data: the base64 of the authzid, or "=" or nothing for none
 * (RFC 6120 6.4.2). Write the authzid and a NUL to out (outlen bytes; ""
 * for none). Return XMPP_SASL_ERROR_COUNT if the request is well formed,
 * else its failure condition (RFC 6120 6.5): invalid-mechanism for any
 * mechanism but EXTERNAL, incorrect-encoding for data that is not
 * canonical base64 (RFC 4648), invalid-authzid for an authzid with a NUL
 * or longer than out.
 */
enum xmpp_sasl_error xmpp_sasl_external_read(const char *mechanism,
	    const char *data, char *out, size_t outlen);
int	xmpp_render_sasl_failure(struct xmpp_buf *, enum xmpp_sasl_error);
/* Whether stream features (a parsed <stream:features/>) list the SASL
 * mechanism EXTERNAL. */
struct xmlstream_node;
bool	xmpp_features_offer_external(const struct xmlstream_node *features);

/*
 * Render a stream error and the stream close:
 *   <stream:error><COND xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>
 *   [<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>TEXT
 *   </text>]</stream:error></stream:stream>
 * text may be NULL. The caller sends a stream header first if it has not
 * sent one yet (RFC 6120 4.9.1.2). see-other-host needs an address as its
 * content, which fedgate never sends: that condition is refused (-1).
 */
int	xmpp_render_stream_error(struct xmpp_buf *, enum xmpp_stream_error,
	    const char *text);

/*
 * An XEP-0199 ping: <iq type='get' from='' to='' id=''><ping
 * xmlns='urn:xmpp:ping'/></iq>. The answer (an iq result or error with
 * the same id) also says that every stanza sent before it was handled.
 */
#define XMPP_NS_PING		"urn:xmpp:ping"
int	xmpp_render_ping(struct xmpp_buf *, const char *from, const char *to,
	    const char *id);

/*
 * Stream management (XEP-0198) as the sender of stanzas: <enable/>, the
 * request <r/>, and the answer <a h='N'/> to a peer's request.
 */
int	xmpp_render_sm_enable(struct xmpp_buf *);
int	xmpp_render_sm_request(struct xmpp_buf *);
int	xmpp_render_sm_answer(struct xmpp_buf *, uint32_t h);

/*
 * Dialback requests (XEP-0220 2.1): <db:result from='' to=''>KEY
 * </db:result> and <db:verify from='' to='' id=''>KEY</db:verify>.
 * All arguments are required. The db: prefix is the one our own stream
 * header declares: render that with .dialback set.
 */
int	xmpp_render_db_result(struct xmpp_buf *, const char *from,
	    const char *to, const char *key);
int	xmpp_render_db_verify(struct xmpp_buf *, const char *from,
	    const char *to, const char *id, const char *key);
/*
 * Dialback answers: <db:result from='' to='' type='valid|invalid'/>, or
 * with type 'error' an <error type=''><COND xmlns='urn:ietf:params:xml:ns:
 * xmpp-stanzas'/></error> child (XEP-0220 2.4.2, 2.5), the error type
 * being condition's default. condition is ignored unless type is
 * XMPP_DB_ERROR; XMPP_DB_NONE is refused. from and to are the request's,
 * swapped by the caller; db:verify copies the request's id.
 */
int	xmpp_render_db_result_reply(struct xmpp_buf *, const char *from,
	    const char *to, enum xmpp_db_type type,
	    enum xmpp_stanza_error condition);
int	xmpp_render_db_verify_reply(struct xmpp_buf *, const char *from,
	    const char *to, const char *id, enum xmpp_db_type type,
	    enum xmpp_stanza_error condition);

/*
 * Whether a stanza that cannot be delivered may be answered with an error
 * stanza ("bounced"). name is the element's local name, type its 'type'
 * attribute (NULL if absent). The rules:
 *  - nothing but message, presence and iq in jabber:server is a stanza;
 *  - type 'error': never; an error is not answered with an error
 *    (RFC 6120 8.3.1), which is what stops bounce loops;
 *  - iq: only requests, types 'get' and 'set'; 'result' is a response and
 *    is never answered (RFC 6120 8.2.3), an iq with no or an unknown type
 *    is malformed and dropped;
 *  - message: every other type, including none or an unknown one (which
 *    mean 'normal', RFC 6121 5.2.2);
 *  - presence: only 'subscribe', a request its sender is waiting on
 *    (RFC 6121 3.1). Broadcasts (no type, 'unavailable'), probes and the
 *    subscription answers ('subscribed', 'unsubscribe', 'unsubscribed')
 *    are dropped: presence is state that is sent again, RFC 6121 8.5 has
 *    servers ignore most presence they cannot deliver, and answering every
 *    broadcast to an unreachable domain would double the traffic it
 *    already causes. The caller logs and counts what it drops.
 */
bool	xmpp_stanza_may_bounce(const char *name, const char *type);

/* The top-level attributes of one stanza, borrowed; NULL if absent. */
struct xmpp_stanza_attrs {
	const char	*name;		/* "message", "presence" or "iq" */
	const char	*from;
	const char	*to;
	const char	*id;
	const char	*type;
};

/*
 * Render the error stanza answering the undeliverable stanza st
 * (RFC 6120 8.3):
 *   <NAME from='ST.TO' to='ST.FROM' [id='ST.ID'] type='error'>[INNER]
 *   <error type='T' [by='BY']><COND xmlns='urn:ietf:params:xml:ns:
 *   xmpp-stanzas'/>[<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'
 *   xml:lang='en'>TEXT</text>]</error></NAME>
 * T is condition's default type. by (the domain reporting the error),
 * text and inner may be NULL. inner, if given, is the original stanza's
 * content (inner_len bytes, copied raw, RFC 6120 8.3.1 rule 2): it must be
 * well-formed and must not use namespace prefixes declared on the original
 * start tag. Refused (-1) when xmpp_stanza_may_bounce() says no, or when st
 * lacks 'from' or 'to' (required between servers, RFC 6120 8.1.1.2).
 */
int	xmpp_render_bounce(struct xmpp_buf *, const struct xmpp_stanza_attrs *st,
	    enum xmpp_stanza_error condition, const char *by, const char *text,
	    const char *inner, size_t inner_len);

#endif
