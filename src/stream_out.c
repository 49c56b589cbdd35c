/*
 * stream_out: the outgoing stream's decisions (stream_out.h). Everything
 * here is a function of the stream, the event and the read-only context;
 * what happens next is written into the caller's actions.
 */
#include "fgconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_out.h"
#include "util.h"

static const char *const stream_out_state_names[] = {
	[STREAM_OUT_CONNECTING] = "connecting",
	[STREAM_OUT_WAIT_HEADER] = "wait-header",
	[STREAM_OUT_WAIT_FEATURES] = "wait-features",
	[STREAM_OUT_TLS] = "tls",
	[STREAM_OUT_SASL] = "sasl",
	[STREAM_OUT_DIALBACK] = "dialback",
	[STREAM_OUT_READY] = "ready",
	[STREAM_OUT_CLOSED] = "closed",
};

#define S(x)	(1u << (x))
/* Allowed transitions; any state may go to closed. */
static const unsigned stream_out_transitions[] = {
	[STREAM_OUT_CONNECTING] = S(STREAM_OUT_WAIT_HEADER),
	[STREAM_OUT_WAIT_HEADER] = S(STREAM_OUT_WAIT_FEATURES) |
	    S(STREAM_OUT_DIALBACK),
	[STREAM_OUT_WAIT_FEATURES] = S(STREAM_OUT_TLS) | S(STREAM_OUT_SASL) |
	    S(STREAM_OUT_DIALBACK) | S(STREAM_OUT_READY),
	[STREAM_OUT_TLS] = S(STREAM_OUT_WAIT_HEADER),
	[STREAM_OUT_SASL] = S(STREAM_OUT_WAIT_HEADER) | S(STREAM_OUT_DIALBACK),
	[STREAM_OUT_DIALBACK] = S(STREAM_OUT_READY),
	[STREAM_OUT_READY] = 0,
	[STREAM_OUT_CLOSED] = 0,
};
#undef S

const char *
stream_out_state_name(enum stream_out_state st)
{
	return stream_out_state_names[st];
}

void
stream_out_init(struct stream_out *s, enum config_face face, bool verify,
    const char *local, const char *remote,
    const struct policy_settings *policy, char *stream_id)
{
	memset(s, 0, sizeof(*s));
	s->stream_id = stream_id;
	s->stream_id[0] = '\0';
	s->state = STREAM_OUT_CONNECTING;
	s->face = face;
	s->verify = verify;
	s->local = local;
	s->remote = remote;
	s->policy = policy;
}

static void
stream_out_begin(struct stream_out_actions *a)
{
	a->n = 0;
	a->textlen = 0;
	a->text[0] = '\0';
}

/* Append an action of kind what (past the room, the last is replaced). */
static struct stream_out_action *
stream_out_do(struct stream_out_actions *a, enum stream_out_do what)
{
	struct stream_out_action *x;

	if (a->n >= STREAM_OUT_ACTIONS_MAX)	/* a bug: keep the last one */
		a->n = STREAM_OUT_ACTIONS_MAX - 1;
	x = &a->a[a->n++];
	memset(x, 0, sizeof(*x));
	x->what = what;
	x->cond = XMPP_STREAM_ERROR_COUNT;
	x->stanza_cond = XMPP_STANZA_ERROR_COUNT;
	return x;
}

/* Format into a's text; return the text (truncated if need be). */
static const char * __attribute__((format(printf, 2, 3)))
stream_out_text(struct stream_out_actions *a, const char *fmt, ...)
{
	char *t = a->text + a->textlen;
	size_t room = sizeof(a->text) - a->textlen;
	va_list ap;
	int n;

	if (room <= 1)
		return "";
	va_start(ap, fmt);
	n = vsnprintf(t, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		t[0] = '\0';
	a->textlen += n < 0 ? 1 : (size_t)n >= room ? room : (size_t)n + 1;
	return t;
}

/* Fail the stream: close with cond, bounce what waits with stanza_cond. */
static void
stream_out_fail(struct stream_out *s, struct stream_out_actions *a,
    enum xmpp_stanza_error stanza_cond, enum xmpp_stream_error cond,
    const char *why)
{
	struct stream_out_action *x = stream_out_do(a, STREAM_OUT_FAIL);

	x->stanza_cond = stanza_cond;
	x->cond = cond;
	x->why = why;
	s->state = STREAM_OUT_CLOSED;
}

static void
stream_out_enter_state(struct stream_out *s, enum stream_out_state next,
    struct stream_out_actions *a)
{
	if ((stream_out_transitions[s->state] & (1u << next)) == 0) {
		stream_out_fail(s, a, XMPP_STANZA_INTERNAL_SERVER_ERROR,
		    XMPP_STREAM_INTERNAL_SERVER_ERROR, stream_out_text(a,
		    "internal error (bad state transition %s -> %s)",
		    stream_out_state_names[s->state],
		    stream_out_state_names[next]));
		return;
	}
	s->state = next;
	stream_out_do(a, STREAM_OUT_STATE)->state = next;
}

static void
stream_out_note(struct stream_out_actions *a, bool info, const char *why)
{
	struct stream_out_action *x = stream_out_do(a, STREAM_OUT_NOTE);

	x->yes = info;
	x->why = why;
}

static void
stream_out_auth_result(struct stream_out_actions *a, const char *method,
    bool success)
{
	struct stream_out_action *x = stream_out_do(a, STREAM_OUT_AUTH_RESULT);

	x->method = method;
	x->yes = success;
}

/* Send our header, after the connection or a restart. */
static void
stream_out_open(struct stream_out *s, struct stream_out_actions *a)
{
	stream_out_enter_state(s, STREAM_OUT_WAIT_HEADER, a);
	if (s->state == STREAM_OUT_WAIT_HEADER)
		stream_out_do(a, STREAM_OUT_SEND_HEADER);
}

void
stream_out_connected(struct stream_out *s, const struct stream_out_ctx *c,
    struct stream_out_actions *a)
{
	(void)c;
	stream_out_begin(a);
	if (s->state == STREAM_OUT_CONNECTING)
		stream_out_open(s, a);
}

/* Send db:result (or db:verify on a verify leg) and wait for the answer. */
static void
stream_out_dialback(struct stream_out *s, const struct stream_out_ctx *c,
    struct stream_out_actions *a)
{
	struct stream_out_action *x;
	char key[DIALBACK_KEY_SIZE];

	if (!(s->policy->auth & POLICY_AUTH_DIALBACK)) {
		stream_out_fail(s, a, XMPP_STANZA_POLICY_VIOLATION,
		    XMPP_STREAM_ERROR_COUNT,
		    "no allowed authentication offered");
		return;
	}
	if (s->verify) {
		x = stream_out_do(a, STREAM_OUT_SEND_DB_VERIFY);
		x->id = c->verify_id;
		x->key = c->verify_key;
	} else {
		if (dialback_key(c->config->dialback_secret,
		    c->config->dialback_secret_len, s->remote, s->local,
		    s->stream_id, key, sizeof(key)) == -1) {
			stream_out_fail(s, a, XMPP_STANZA_INTERNAL_SERVER_ERROR,
			    XMPP_STREAM_INTERNAL_SERVER_ERROR,
			    "cannot mint a dialback key");
			return;
		}
		x = stream_out_do(a, STREAM_OUT_SEND_DB_RESULT);
		x->key = stream_out_text(a, "%s", key);
	}
	stream_out_enter_state(s, STREAM_OUT_DIALBACK, a);
}

void
stream_out_header(struct stream_out *s, const struct stream_out_ctx *c,
    const struct xmlstream_header *h, struct stream_out_actions *a)
{
	stream_out_begin(a);
	if (s->state != STREAM_OUT_WAIT_HEADER)
		return;
	if (h->id == NULL || strlen(h->id) >= STREAM_OUT_ID_MAX) {
		stream_out_fail(s, a, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_INVALID_XML,
		    "the peer's header has no usable id");
		return;
	}
	snprintf(s->stream_id, STREAM_OUT_ID_MAX, "%s", h->id);
	stream_out_do(a, STREAM_OUT_OPENED);
	s->peer_version = h->version != NULL &&
	    strncmp(h->version, "1.", 2) == 0;
	if (s->peer_version) {
		stream_out_enter_state(s, STREAM_OUT_WAIT_FEATURES, a);
		return;
	}
	/* A pre-1.0 peer sends no features: dialback at once, no TLS. */
	if (s->policy->tls == POLICY_TLS_REQUIRED) {
		stream_out_fail(s, a, XMPP_STANZA_POLICY_VIOLATION,
		    XMPP_STREAM_POLICY_VIOLATION,
		    "TLS is required but the peer is pre-XMPP 1.0");
		return;
	}
	stream_out_dialback(s, c, a);
}

/* Authenticated by auth: stanzas may go. */
static void
stream_out_ready(struct stream_out *s, const struct stream_out_ctx *c,
    enum leg_auth auth, struct stream_out_actions *a)
{
	s->auth = auth;
	stream_out_note(a, true, stream_out_text(a, "authenticated by %s, "
	    "ready", leg_auth_name(auth)));
	stream_out_enter_state(s, STREAM_OUT_READY, a);
	if (s->state != STREAM_OUT_READY)
		return;
	if (s->sm_offered && c->acks) {
		/* Before any stanza: the peer counts from here. */
		stream_out_do(a, STREAM_OUT_SEND_SM_ENABLE);
		s->sm = STREAM_OUT_SM_ENABLING;
	}
	stream_out_do(a, STREAM_OUT_AUTHENTICATED)->auth = auth;
	if (s->bidi)
		stream_out_do(a, STREAM_OUT_BIDI)->auth = auth;
}

/*
 * Whether the features f offer bidirectional streams: <bidi/> in
 * urn:xmpp:features:bidi (XEP-0288), or in urn:xmpp:bidi, the request's
 * namespace, which ejabberd's receiving side offered from 24.10 to at
 * least 24.12 (it takes the request in the right one). We offer only the
 * XEP's.
 */
static bool
stream_out_bidi_offered(const struct xmlstream_node *f)
{
	return xmlstream_node_child(f, XMPP_NS_BIDI_FEATURES, "bidi") != NULL ||
	    xmlstream_node_child(f, XMPP_NS_BIDI, "bidi") != NULL;
}

/*
 * Ask for a bidirectional stream (XEP-0288) if the features f offer it and
 * the peer's rule allows: before authenticating, once per stream.
 */
static void
stream_out_ask_bidi(struct stream_out *s, const struct xmlstream_node *f,
    struct stream_out_actions *a)
{
	if (s->verify || s->bidi || !s->policy->bidi ||
	    !stream_out_bidi_offered(f))
		return;
	/* Its stanzas would be taken as from an authenticated remote: not
	 * where its rule wants a certificate that it did not show. */
	if (s->face == CONFIG_FACE_PUBLIC && !s->peer_valid &&
	    !(s->policy->auth & POLICY_AUTH_DIALBACK)) {
		stream_out_note(a, true, "bidi offered, not asked for: the "
		    "peer's rule accepts it only with a valid certificate");
		return;
	}
	s->bidi = true;
	stream_out_do(a, STREAM_OUT_SEND_BIDI);
}

static void
stream_out_features(struct stream_out *s, const struct stream_out_ctx *c,
    const struct xmlstream_node *f, struct stream_out_actions *a)
{
	const struct xmlstream_node *st = xmlstream_node_child(f, XMPP_NS_TLS,
	    "starttls");

	s->sm_offered = xmlstream_node_child(f, XMPP_NS_SM, "sm") != NULL;
	if (s->auth == LEG_AUTH_EXTERNAL) {	/* after SASL success */
		stream_out_ready(s, c, LEG_AUTH_EXTERNAL, a);
		return;
	}
	if (!c->tls && st != NULL && s->policy->tls != POLICY_TLS_NONE) {
		stream_out_do(a, STREAM_OUT_SEND_STARTTLS);
		stream_out_enter_state(s, STREAM_OUT_TLS, a);
		return;
	}
	if (!c->tls && s->policy->tls == POLICY_TLS_REQUIRED) {
		stream_out_fail(s, a, XMPP_STANZA_POLICY_VIOLATION,
		    XMPP_STREAM_POLICY_VIOLATION,
		    "TLS is required but the peer does not offer STARTTLS");
		return;
	}
	if (!c->tls && st != NULL &&
	    xmlstream_node_child(st, XMPP_NS_TLS, "required") != NULL) {
		stream_out_fail(s, a, XMPP_STANZA_POLICY_VIOLATION,
		    XMPP_STREAM_POLICY_VIOLATION,
		    "the peer requires TLS, which policy forbids");
		return;
	}
	stream_out_ask_bidi(s, f, a);
	if (c->tls && !s->verify && s->face == CONFIG_FACE_PUBLIC &&
	    (s->policy->auth & POLICY_AUTH_EXTERNAL) &&
	    xmpp_features_offer_external(f) && c->has_cert) {
		stream_out_do(a, STREAM_OUT_SEND_SASL_AUTH);
		stream_out_enter_state(s, STREAM_OUT_SASL, a);
		return;
	}
	stream_out_dialback(s, c, a);
}

void
stream_out_tls_done(struct stream_out *s, const struct stream_out_ctx *c,
    bool peer_valid, struct stream_out_actions *a)
{
	(void)c;
	stream_out_begin(a);
	if (s->state != STREAM_OUT_TLS && s->state != STREAM_OUT_CONNECTING)
		return;
	if (s->face == CONFIG_FACE_PUBLIC &&
	    s->policy->verify == POLICY_VERIFY_REQUIRED && !peer_valid) {
		stream_out_fail(s, a, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_POLICY_VIOLATION,
		    "the peer's certificate is not valid for it");
		return;
	}
	s->peer_valid = peer_valid;
	if (s->state == STREAM_OUT_TLS)
		stream_out_do(a, STREAM_OUT_RESTART);
	stream_out_open(s, a);
}

static void
stream_out_sasl_done(struct stream_out *s, const struct stream_out_ctx *c,
    bool success, struct stream_out_actions *a)
{
	stream_out_auth_result(a, "sasl-external", success);
	if (!success) {
		stream_out_note(a, true, "SASL EXTERNAL refused, trying "
		    "dialback");
		stream_out_dialback(s, c, a);
		return;
	}
	s->auth = LEG_AUTH_EXTERNAL;
	stream_out_do(a, STREAM_OUT_RESTART);
	stream_out_enter_state(s, STREAM_OUT_WAIT_HEADER, a);
	if (s->state == STREAM_OUT_WAIT_HEADER)
		stream_out_do(a, STREAM_OUT_SEND_HEADER);
}

/* The answer to our db:result or db:verify. */
static void
stream_out_db_answer(struct stream_out *s, const struct stream_out_ctx *c,
    const struct xmlstream_node *n, struct stream_out_actions *a)
{
	const char *type = xmlstream_node_attr(n, "type");
	enum xmpp_db_type t = XMPP_DB_ERROR;
	struct stream_out_action *x;

	if (type != NULL)
		xmpp_db_type_parse(type, &t);
	if (s->verify) {
		stream_out_do(a, STREAM_OUT_VERDICT)->verdict = t;
		x = stream_out_do(a, STREAM_OUT_CLOSE);
		x->why = stream_out_text(a, "verification done: %s",
		    xmpp_db_type_name(t));
		s->state = STREAM_OUT_CLOSED;
		return;
	}
	stream_out_auth_result(a, "dialback", t == XMPP_DB_VALID);
	if (t != XMPP_DB_VALID) {
		stream_out_fail(s, a, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_ERROR_COUNT,
		    "the peer refused our dialback key");
		return;
	}
	stream_out_ready(s, c, LEG_AUTH_DIALBACK, a);
}

/*
 * The peer acknowledges h stanzas handled since <enable/> (XEP-0198 4):
 * tell the driver how many more than before. A count above what was sent
 * ends the stream.
 */
static void
stream_out_sm_ack(struct stream_out *s, const char *hs,
    struct stream_out_actions *a)
{
	unsigned long v;
	uint32_t h, more;
	char *end;

	errno = 0;
	v = hs != NULL ? strtoul(hs, &end, 10) : 0;
	if (hs == NULL || *hs == '\0' || *end != '\0' || errno != 0 ||
	    v > UINT32_MAX) {
		stream_out_fail(s, a, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_INVALID_XML, "an XEP-0198 <a/> without a "
		    "valid h");
		return;
	}
	h = (uint32_t)v;
	more = h - s->sm_acked;			/* modulo 2^32 */
	if (more > s->sm_sent - s->sm_acked) {
		stream_out_fail(s, a, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_UNDEFINED_CONDITION, "the peer acknowledges "
		    "more stanzas than it was sent (XEP-0198 "
		    "handled-count-too-high)");
		return;
	}
	s->sm_acked = h;
	s->sm_asked = false;
	stream_out_do(a, STREAM_OUT_ACKED)->count = more;
}

/* XEP-0198 elements on a ready stream. Return false if n is none. */
static bool
stream_out_sm(struct stream_out *s, const struct xmlstream_node *n,
    struct stream_out_actions *a)
{
	if (strcmp(n->ns, XMPP_NS_SM) != 0 || s->sm == STREAM_OUT_SM_OFF)
		return false;
	if (strcmp(n->name, "enabled") == 0 &&
	    s->sm == STREAM_OUT_SM_ENABLING) {
		s->sm = STREAM_OUT_SM_ON;
		stream_out_note(a, false, "stream management on");
	} else if (strcmp(n->name, "failed") == 0 &&
	    s->sm == STREAM_OUT_SM_ENABLING) {
		stream_out_note(a, true, "stream management refused: "
		    "acknowledging with pings");
		s->sm = STREAM_OUT_SM_OFF;
		s->sm_asked = false;
		stream_out_do(a, STREAM_OUT_ACKED)->count = 0;
	} else if (strcmp(n->name, "a") == 0)
		stream_out_sm_ack(s, xmlstream_node_attr(n, "h"), a);
	else if (strcmp(n->name, "r") == 0)
		stream_out_do(a, STREAM_OUT_SEND_SM_ANSWER);
	else
		return false;
	return true;
}

static bool
stream_out_is(const struct xmlstream_node *n, const char *ns,
    const char *name)
{
	return strcmp(n->ns, ns) == 0 && strcmp(n->name, name) == 0;
}

void
stream_out_element(struct stream_out *s, const struct stream_out_ctx *c,
    const struct xmlstream_element *e, struct stream_out_actions *a)
{
	const struct xmlstream_node *n = &e->node;
	enum stream_out_state st = s->state;

	stream_out_begin(a);
	if (st == STREAM_OUT_CLOSED)
		return;
	if (stream_out_is(n, XMPP_NS_STREAMS, "error"))
		stream_out_fail(s, a, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_ERROR_COUNT, stream_out_text(a, "peer sent "
		    "stream error %s", UTIL_ESC(n->child != NULL ?
		    n->child->name : NULL)));
	else if (st == STREAM_OUT_WAIT_FEATURES &&
	    stream_out_is(n, XMPP_NS_STREAMS, "features"))
		stream_out_features(s, c, n, a);
	else if (st == STREAM_OUT_TLS && stream_out_is(n, XMPP_NS_TLS,
	    "proceed"))
		stream_out_do(a, STREAM_OUT_START_TLS);
	else if (st == STREAM_OUT_SASL && stream_out_is(n, XMPP_NS_SASL,
	    "success"))
		stream_out_sasl_done(s, c, true, a);
	else if (st == STREAM_OUT_SASL && stream_out_is(n, XMPP_NS_SASL,
	    "failure"))
		stream_out_sasl_done(s, c, false, a);
	else if (st == STREAM_OUT_DIALBACK && stream_out_is(n,
	    XMPP_NS_DIALBACK, s->verify ? "verify" : "result"))
		stream_out_db_answer(s, c, n, a);
	else if (st == STREAM_OUT_READY && stream_out_sm(s, n, a))
		return;
	else
		stream_out_fail(s, a, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_UNSUPPORTED_STANZA_TYPE, "unexpected element "
		    "from the peer");
}

bool
stream_out_has_sm(const struct stream_out *s)
{
	return s->sm != STREAM_OUT_SM_OFF;
}

void
stream_out_sent(struct stream_out *s)
{
	if (s->sm != STREAM_OUT_SM_OFF)
		s->sm_sent++;
}

int
stream_out_may_ask(const struct stream_out *s)
{
	if (s->state != STREAM_OUT_READY || s->sm == STREAM_OUT_SM_OFF)
		return -1;
	return s->sm_asked ? 0 : 1;
}

void
stream_out_asked(struct stream_out *s)
{
	s->sm_asked = true;
}
