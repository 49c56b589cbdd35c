/*
 * Unit tests of stream_out, the outgoing stream's decisions, with no leg,
 * socket or clock: each case is a sequence of events (connected, the
 * peer's header and elements, TLS done, stanzas sent, acknowledgement
 * requests) and the actions every event must give, one line per event,
 * with the state at the end. Headers and elements are parsed by the real
 * xmlstream; the peer's rule comes from a configuration through the real
 * parser and policy.
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "dialback.h"
#include "policy.h"
#include "stream_out.h"
#include "util.h"
#include "xmlstream.h"

#define SECRET	"0123456789abcdef0123456789abcdef"
#define HDR_OPEN "<stream:stream xmlns='jabber:server' " \
	"xmlns:stream='http://etherx.jabber.org/streams' " \
	"xmlns:db='jabber:server:dialback'"
#define PEER_H	"H from='remote.example' to='corp.example' id='s1' " \
	"version='1.0'"
#define FEAT(x)	"<stream:features>" x "</stream:features>"
#define F_TLS	"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define F_TLSR	"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>" \
	"<required/></starttls>"
#define F_EXT	"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
	"<mechanism>EXTERNAL</mechanism></mechanisms>"
#define F_DB	"<dialback xmlns='urn:xmpp:features:dialback'><errors/>" \
	"</dialback>"
#define F_SM	"<sm xmlns='urn:xmpp:sm:3'/>"
#define F_BIDI	"<bidi xmlns='urn:xmpp:features:bidi'/>"
/* ejabberd 24.10-24.12's offer, in the request's namespace */
#define F_BIDI_EJ "<bidi xmlns='urn:xmpp:bidi'/>"
#define PROCEED	"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define SASL_NS	"urn:ietf:params:xml:ns:xmpp-sasl"
#define SM_NS	"urn:xmpp:sm:3"
#define DB_OK	"<db:result from='remote.example' to='corp.example' " \
	"type='valid'/>"
#define TRACE_MAX 4096

static const char config_text[] =
    "dialback secret \"" SECRET "\"\n"
    "domain \"corp.example\" {\n"
    "	upstream \"192.0.2.10\"\n"
    "}\n"
    "peer default {\n"
    "	allow\n"
    "	tls optional\n"
    "	verify optional\n"
    "	auth any\n"
    "}\n"
    "peer \"secure.example\" {\n"
    "	allow\n"
    "	tls required\n"
    "	verify required\n"
    "}\n"
    "peer \"plain.example\" {\n"
    "	allow\n"
    "	tls none\n"
    "}\n"
    "peer \"extonly.example\" {\n"
    "	allow\n"
    "	auth external\n"
    "}\n"
    "peer \"nobidi.example\" {\n"
    "	allow\n"
    "	bidi no\n"
    "}\n";

struct ocase {
	const char		*name;
	enum config_face	 face;
	const char		*remote; /* whose rule applies (public) */
	bool			 verify;	/* a verify leg */
	bool			 has_cert;	/* ours, for SASL EXTERNAL */
	bool			 acks;		/* a route that wants acks */
	const char		*events[14];
	const char		*expect;
	enum stream_out_state	 state;
};

/*
 * Events: "connected"; "H attrs" the peer's header; "tls valid|invalid"
 * the handshake is done, the peer's certificate valid or not; "sent" a
 * stanza went out; "ask" may an <r/> go (then it does); else an element.
 */
static const struct ocase cases[] = {
	{ "dialback on a plain stream", CONFIG_FACE_PUBLIC, "remote.example",
	    false, false, false,
	    { "connected", PEER_H, FEAT(F_DB), DB_OK },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) authenticated(dialback)\n", STREAM_OUT_READY },
	{ "STARTTLS, then SASL EXTERNAL", CONFIG_FACE_PUBLIC,
	    "remote.example", false, true, false,
	    { "connected", PEER_H, FEAT(F_TLS F_DB), PROCEED, "tls valid",
	    PEER_H, FEAT(F_EXT F_DB), "<success xmlns='" SASL_NS "'/>",
	    PEER_H, FEAT(F_DB) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "starttls state(tls)\n"
	    "start-tls\n"
	    "restart state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "sasl-auth state(sasl)\n"
	    "auth-result(sasl-external ok) restart state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "note(authenticated by sasl-external, ready) state(ready) "
	    "authenticated(sasl-external)\n", STREAM_OUT_READY },
	{ "SASL EXTERNAL refused: dialback", CONFIG_FACE_PUBLIC,
	    "remote.example", false, true, false,
	    { "connected", PEER_H, FEAT(F_TLS), PROCEED, "tls valid", PEER_H,
	    FEAT(F_EXT F_DB), "<failure xmlns='" SASL_NS "'><not-authorized/>"
	    "</failure>", DB_OK },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "starttls state(tls)\n"
	    "start-tls\n"
	    "restart state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "sasl-auth state(sasl)\n"
	    "auth-result(sasl-external failed) note(SASL EXTERNAL refused, "
	    "trying dialback) db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) authenticated(dialback)\n", STREAM_OUT_READY },
	{ "no EXTERNAL without our certificate", CONFIG_FACE_PUBLIC,
	    "remote.example", false, false, false,
	    { "connected", PEER_H, FEAT(F_TLS), PROCEED, "tls valid", PEER_H,
	    FEAT(F_EXT F_DB) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "starttls state(tls)\n"
	    "start-tls\n"
	    "restart state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n", STREAM_OUT_DIALBACK },
	{ "no EXTERNAL towards the internal server", CONFIG_FACE_INTERNAL,
	    NULL, false, true, false,
	    { "connected", PEER_H, FEAT(F_TLS), PROCEED, "tls invalid", PEER_H,
	    FEAT(F_EXT F_DB) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "starttls state(tls)\n"
	    "start-tls\n"
	    "restart state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n", STREAM_OUT_DIALBACK },
	{ "TLS required, STARTTLS not offered", CONFIG_FACE_PUBLIC,
	    "secure.example", false, false, false,
	    { "connected", PEER_H, FEAT(F_DB) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "fail(policy-violation policy-violation: TLS is required but the "
	    "peer does not offer STARTTLS)\n", STREAM_OUT_CLOSED },
	{ "the peer requires TLS, policy forbids it", CONFIG_FACE_PUBLIC,
	    "plain.example", false, false, false,
	    { "connected", PEER_H, FEAT(F_TLSR F_DB) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "fail(policy-violation policy-violation: the peer requires TLS, "
	    "which policy forbids)\n", STREAM_OUT_CLOSED },
	{ "tls none: STARTTLS offered but not taken", CONFIG_FACE_PUBLIC,
	    "plain.example", false, false, false,
	    { "connected", PEER_H, FEAT(F_TLS F_DB) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n", STREAM_OUT_DIALBACK },
	{ "a certificate not valid where one is required", CONFIG_FACE_PUBLIC,
	    "secure.example", false, false, false,
	    { "connected", PEER_H, FEAT(F_TLS), PROCEED, "tls invalid" },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "starttls state(tls)\n"
	    "start-tls\n"
	    "fail(remote-server-not-found policy-violation: the peer's "
	    "certificate is not valid for it)\n", STREAM_OUT_CLOSED },
	{ "direct TLS", CONFIG_FACE_PUBLIC, "remote.example", false, false,
	    false, { "tls valid", PEER_H, FEAT(F_DB) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n", STREAM_OUT_DIALBACK },
	{ "a pre-1.0 peer: dialback at once", CONFIG_FACE_PUBLIC,
	    "remote.example", false, false, false,
	    { "connected", "H from='remote.example' id='s1'" },
	    "state(wait-header) header\n"
	    "opened db-result(minted) state(dialback)\n",
	    STREAM_OUT_DIALBACK },
	{ "a pre-1.0 peer where TLS is required", CONFIG_FACE_PUBLIC,
	    "secure.example", false, false, false,
	    { "connected", "H from='remote.example' id='s1'" },
	    "state(wait-header) header\n"
	    "opened fail(policy-violation policy-violation: TLS is required "
	    "but the peer is pre-XMPP 1.0)\n", STREAM_OUT_CLOSED },
	{ "a header without an id", CONFIG_FACE_PUBLIC, "remote.example",
	    false, false, false,
	    { "connected", "H from='remote.example' version='1.0'" },
	    "state(wait-header) header\n"
	    "fail(remote-server-not-found invalid-xml: the peer's header has "
	    "no usable id)\n", STREAM_OUT_CLOSED },
	{ "our dialback key refused", CONFIG_FACE_PUBLIC, "remote.example",
	    false, false, false,
	    { "connected", PEER_H, FEAT(F_DB), "<db:result "
	    "from='remote.example' to='corp.example' type='invalid'/>" },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n"
	    "auth-result(dialback failed) fail(remote-server-not-found clean: "
	    "the peer refused our dialback key)\n", STREAM_OUT_CLOSED },
	{ "no allowed authentication", CONFIG_FACE_PUBLIC, "extonly.example",
	    false, false, false,
	    { "connected", PEER_H, FEAT(F_DB) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "fail(policy-violation clean: no allowed authentication "
	    "offered)\n", STREAM_OUT_CLOSED },
	{ "verify leg: valid", CONFIG_FACE_PUBLIC, "remote.example", true,
	    true, false,
	    { "connected", PEER_H, FEAT(F_DB), "<db:verify "
	    "from='remote.example' to='corp.example' id='in-1' "
	    "type='valid'/>" },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-verify(in-1 abcd) state(dialback)\n"
	    "verdict(valid) close(verification done: valid)\n",
	    STREAM_OUT_CLOSED },
	{ "verify leg: no SASL, and a db:result is unexpected",
	    CONFIG_FACE_PUBLIC, "remote.example", true, true, false,
	    { "connected", PEER_H, FEAT(F_TLS), PROCEED, "tls valid", PEER_H,
	    FEAT(F_EXT F_DB), DB_OK },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "starttls state(tls)\n"
	    "start-tls\n"
	    "restart state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-verify(in-1 abcd) state(dialback)\n"
	    "fail(remote-server-not-found unsupported-stanza-type: unexpected "
	    "element from the peer)\n", STREAM_OUT_CLOSED },
	{ "verify leg: invalid", CONFIG_FACE_INTERNAL, NULL, true, false,
	    false,
	    { "connected", PEER_H, FEAT(F_DB), "<db:verify "
	    "from='remote.example' to='corp.example' id='in-1' "
	    "type='invalid'/>" },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-verify(in-1 abcd) state(dialback)\n"
	    "verdict(invalid) close(verification done: invalid)\n",
	    STREAM_OUT_CLOSED },
	{ "XEP-0198: enabled, acknowledged, asked", CONFIG_FACE_PUBLIC,
	    "remote.example", false, false, true,
	    { "connected", PEER_H, FEAT(F_DB F_SM), DB_OK,
	    "<enabled xmlns='" SM_NS "'/>", "sent", "sent", "ask", "ask",
	    "<a xmlns='" SM_NS "' h='1'/>", "ask", "<r xmlns='" SM_NS "'/>",
	    "<a xmlns='" SM_NS "' h='3'/>" },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) sm-enable authenticated(dialback)\n"
	    "debug(stream management on)\n"
	    "\n\n"
	    "ask(1)\n"
	    "ask(0)\n"
	    "acked(1)\n"
	    "ask(1)\n"
	    "sm-answer\n"
	    "fail(remote-server-not-found undefined-condition: the peer "
	    "acknowledges more stanzas than it was sent (XEP-0198 "
	    "handled-count-too-high))\n", STREAM_OUT_CLOSED },
	{ "XEP-0198: refused", CONFIG_FACE_PUBLIC, "remote.example", false,
	    false, true,
	    { "connected", PEER_H, FEAT(F_DB F_SM), DB_OK,
	    "<failed xmlns='" SM_NS "'/>", "ask" },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) sm-enable authenticated(dialback)\n"
	    "note(stream management refused: acknowledging with pings) "
	    "acked(0)\n"
	    "ask(-1)\n", STREAM_OUT_READY },
	{ "XEP-0198 offered, not wanted (no route)", CONFIG_FACE_PUBLIC,
	    "remote.example", false, false, false,
	    { "connected", PEER_H, FEAT(F_DB F_SM), DB_OK,
	    "<r xmlns='" SM_NS "'/>" },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) authenticated(dialback)\n"
	    "fail(remote-server-not-found unsupported-stanza-type: unexpected "
	    "element from the peer)\n", STREAM_OUT_CLOSED },
	{ "an <a/> without a valid h", CONFIG_FACE_PUBLIC, "remote.example",
	    false, false, true,
	    { "connected", PEER_H, FEAT(F_DB F_SM), DB_OK,
	    "<a xmlns='" SM_NS "' h='x'/>" },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) sm-enable authenticated(dialback)\n"
	    "fail(remote-server-not-found invalid-xml: an XEP-0198 <a/> "
	    "without a valid h)\n", STREAM_OUT_CLOSED },
	{ "the peer's stream error", CONFIG_FACE_PUBLIC, "remote.example",
	    false, false, false,
	    { "connected", PEER_H, "<stream:error><host-unknown xmlns='urn:"
	    "ietf:params:xml:ns:xmpp-streams'/></stream:error>", FEAT(F_DB) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "fail(remote-server-not-found clean: peer sent stream error "
	    "host-unknown)\n"
	    "\n", STREAM_OUT_CLOSED },
	{ "features out of turn", CONFIG_FACE_PUBLIC, "remote.example",
	    false, false, false,
	    { "connected", PEER_H, FEAT(F_DB), FEAT(F_DB) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n"
	    "fail(remote-server-not-found unsupported-stanza-type: unexpected "
	    "element from the peer)\n", STREAM_OUT_CLOSED },
	{ "bidi: asked for after STARTTLS, before dialback",
	    CONFIG_FACE_PUBLIC, "remote.example", false, false, false,
	    { "connected", PEER_H, FEAT(F_TLS F_DB F_BIDI), PROCEED,
	    "tls valid", PEER_H, FEAT(F_DB F_BIDI), DB_OK },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "starttls state(tls)\n"
	    "start-tls\n"
	    "restart state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "bidi-request db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) authenticated(dialback) bidi(dialback)\n",
	    STREAM_OUT_READY },
	{ "bidi: asked for once, before SASL", CONFIG_FACE_PUBLIC,
	    "remote.example", false, true, false,
	    { "tls valid", PEER_H, FEAT(F_EXT F_DB F_BIDI),
	    "<success xmlns='" SASL_NS "'/>", PEER_H, FEAT(F_DB F_BIDI) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "bidi-request sasl-auth state(sasl)\n"
	    "auth-result(sasl-external ok) restart state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "note(authenticated by sasl-external, ready) state(ready) "
	    "authenticated(sasl-external) bidi(sasl-external)\n",
	    STREAM_OUT_READY },
	{ "bidi: towards the internal server", CONFIG_FACE_INTERNAL, NULL,
	    false, false, false,
	    { "connected", PEER_H, FEAT(F_DB F_BIDI), DB_OK },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "bidi-request db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) authenticated(dialback) bidi(dialback)\n",
	    STREAM_OUT_READY },
	{ "bidi: offered in urn:xmpp:bidi (ejabberd 24.12), asked for",
	    CONFIG_FACE_PUBLIC, "remote.example", false, false, false,
	    { "connected", PEER_H, FEAT(F_DB F_BIDI_EJ), DB_OK },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "bidi-request db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) authenticated(dialback) bidi(dialback)\n",
	    STREAM_OUT_READY },
	{ "bidi: not offered, not asked for", CONFIG_FACE_PUBLIC,
	    "remote.example", false, false, false,
	    { "connected", PEER_H, FEAT(F_DB), DB_OK },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) authenticated(dialback)\n", STREAM_OUT_READY },
	{ "bidi: offered, the rule says bidi no", CONFIG_FACE_PUBLIC,
	    "nobidi.example", false, false, false,
	    { "connected", PEER_H, FEAT(F_DB F_BIDI), DB_OK },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-result(minted) state(dialback)\n"
	    "auth-result(dialback ok) note(authenticated by dialback, ready) "
	    "state(ready) authenticated(dialback)\n", STREAM_OUT_READY },
	{ "bidi: auth external and no valid certificate: not asked for",
	    CONFIG_FACE_PUBLIC, "extonly.example", false, true, false,
	    { "connected", PEER_H, FEAT(F_TLS F_BIDI), PROCEED, "tls invalid",
	    PEER_H, FEAT(F_EXT F_BIDI) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "starttls state(tls)\n"
	    "start-tls\n"
	    "restart state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "note(bidi offered, not asked for: the peer's rule accepts it only "
	    "with a valid certificate) sasl-auth state(sasl)\n",
	    STREAM_OUT_SASL },
	{ "bidi: auth external with a valid certificate", CONFIG_FACE_PUBLIC,
	    "extonly.example", false, true, false,
	    { "tls valid", PEER_H, FEAT(F_EXT F_BIDI) },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "bidi-request sasl-auth state(sasl)\n", STREAM_OUT_SASL },
	{ "bidi: never on a verify leg", CONFIG_FACE_PUBLIC, "remote.example",
	    true, false, false,
	    { "connected", PEER_H, FEAT(F_DB F_BIDI), "<db:verify "
	    "from='remote.example' to='corp.example' id='in-1' "
	    "type='valid'/>" },
	    "state(wait-header) header\n"
	    "opened state(wait-features)\n"
	    "db-verify(in-1 abcd) state(dialback)\n"
	    "verdict(valid) close(verification done: valid)\n",
	    STREAM_OUT_CLOSED },
};

struct run {
	const struct ocase	*c;
	struct config		*config;
	struct stream_out	 s;
	struct stream_out_ctx	 ctx;
	struct policy_settings	 policy;
	char			 stream_id[STREAM_OUT_ID_MAX];
	struct xmlstream	*xs;
	char			 trace[TRACE_MAX];
	size_t			 len;
};

static void __attribute__((format(printf, 2, 3)))
tr(struct run *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->trace + r->len, sizeof(r->trace) - r->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(r->trace) - r->len);
	r->len += (size_t)n;
}

/* Whether key is the one minted for remote.example <- corp.example, s1. */
static bool
is_minted(const char *key)
{
	char k[DIALBACK_KEY_SIZE];

	return dialback_key(SECRET, strlen(SECRET), "remote.example",
	    "corp.example", "s1", k, sizeof(k)) == 0 && strcmp(k, key) == 0;
}

static void
trace_action(struct run *r, const struct stream_out_action *x)
{
	switch (x->what) {
	case STREAM_OUT_SEND_HEADER:
		tr(r, "header");
		break;
	case STREAM_OUT_SEND_STARTTLS:
		tr(r, "starttls");
		break;
	case STREAM_OUT_SEND_SASL_AUTH:
		tr(r, "sasl-auth");
		break;
	case STREAM_OUT_SEND_DB_RESULT:
		tr(r, "db-result(%s)", is_minted(x->key) ? "minted" : x->key);
		break;
	case STREAM_OUT_SEND_DB_VERIFY:
		tr(r, "db-verify(%s %s)", x->id, x->key);
		break;
	case STREAM_OUT_SEND_SM_ENABLE:
		tr(r, "sm-enable");
		break;
	case STREAM_OUT_SEND_SM_ANSWER:
		tr(r, "sm-answer");
		break;
	case STREAM_OUT_SEND_BIDI:
		tr(r, "bidi-request");
		break;
	case STREAM_OUT_BIDI:
		tr(r, "bidi(%s)", leg_auth_name(x->auth));
		break;
	case STREAM_OUT_OPENED:
		tr(r, "opened");
		break;
	case STREAM_OUT_START_TLS:
		tr(r, "start-tls");
		break;
	case STREAM_OUT_RESTART:
		tr(r, "restart");
		break;
	case STREAM_OUT_AUTH_RESULT:
		tr(r, "auth-result(%s %s)", x->method, x->yes ? "ok" : "failed");
		break;
	case STREAM_OUT_AUTHENTICATED:
		tr(r, "authenticated(%s)", leg_auth_name(x->auth));
		break;
	case STREAM_OUT_VERDICT:
		tr(r, "verdict(%s)", xmpp_db_type_name(x->verdict));
		break;
	case STREAM_OUT_ACKED:
		tr(r, "acked(%u)", x->count);
		break;
	case STREAM_OUT_NOTE:
		tr(r, "%s(%s)", x->yes ? "note" : "debug", x->why);
		break;
	case STREAM_OUT_STATE:
		tr(r, "state(%s)", stream_out_state_name(x->state));
		break;
	case STREAM_OUT_CLOSE:
		tr(r, "close(%s)", x->why);
		break;
	case STREAM_OUT_FAIL:
		tr(r, "fail(%s %s: %s)", xmpp_stanza_error_name(x->stanza_cond),
		    x->cond == XMPP_STREAM_ERROR_COUNT ? "clean" :
		    xmpp_stream_error_name(x->cond), x->why);
		break;
	}
}

static void
trace_actions(struct run *r, const struct stream_out_actions *a)
{
	for (size_t i = 0; i < a->n; i++)
		tr(r, "%s", i > 0 ? " " : ""), trace_action(r, &a->a[i]);
	tr(r, "\n");
}

static void
ev_header(struct run *r, const char *attrs, struct stream_out_actions *a)
{
	char text[512];
	size_t used;

	xmlstream_free(r->xs);
	assert_non_null(r->xs = xmlstream_new(NULL));
	snprintf(text, sizeof(text), HDR_OPEN " %s>", attrs);
	assert_int_equal(xmlstream_feed(r->xs, text, strlen(text), &used),
	    XMLSTREAM_HEADER);
	stream_out_header(&r->s, &r->ctx, xmlstream_header(r->xs), a);
}

static void
ev_element(struct run *r, const char *xml, struct stream_out_actions *a)
{
	size_t used;

	assert_non_null(r->xs);
	assert_int_equal(xmlstream_feed(r->xs, xml, strlen(xml), &used),
	    XMLSTREAM_ELEMENT);
	stream_out_element(&r->s, &r->ctx, xmlstream_element(r->xs), a);
}

static void
run_event(struct run *r, const char *ev)
{
	struct stream_out_actions a = { .n = 0 };
	int may;

	if (strcmp(ev, "connected") == 0)
		stream_out_connected(&r->s, &r->ctx, &a);
	else if (strncmp(ev, "H ", 2) == 0)
		ev_header(r, ev + 2, &a);
	else if (strncmp(ev, "tls ", 4) == 0) {
		r->ctx.tls = true;
		stream_out_tls_done(&r->s, &r->ctx, strcmp(ev + 4, "valid") == 0,
		    &a);
	} else if (strcmp(ev, "sent") == 0)
		stream_out_sent(&r->s);
	else if (strcmp(ev, "ask") == 0) {
		may = stream_out_may_ask(&r->s);
		if (may == 1)
			stream_out_asked(&r->s);
		tr(r, "ask(%d)", may);
	} else
		ev_element(r, ev, &a);
	trace_actions(r, &a);
}

/* The rule for an outgoing leg, as leg_out.c chooses it. */
static void
settings_of(struct run *r)
{
	struct policy_match m;

	if (r->c->face == CONFIG_FACE_PUBLIC) {
		assert_int_equal(policy_match(r->config->policy, r->c->remote,
		    &m), 0);
		r->policy = m.settings;
		return;
	}
	policy_settings_init(&r->policy);
	r->policy.allow = true;
	r->policy.tls = POLICY_TLS_OPTIONAL;
	r->policy.verify = POLICY_VERIFY_NONE;
	r->policy.auth = POLICY_AUTH_DIALBACK;
}

static void
test_case(void **state)
{
	const struct ocase *c = *state;
	struct run *r;
	char *errors = NULL;

	assert_non_null(r = calloc(1, sizeof(*r)));
	r->c = c;
	r->config = config_load_buffer("test", config_text,
	    strlen(config_text), false, &errors);
	if (r->config == NULL)
		fail_msg("config: %s", errors != NULL ? errors : "?");
	settings_of(r);
	stream_out_init(&r->s, c->face, c->verify, "corp.example",
	    "remote.example", &r->policy, r->stream_id);
	r->ctx = (struct stream_out_ctx){ .config = r->config,
	    .has_cert = c->has_cert, .acks = c->acks,
	    .verify_id = "in-1", .verify_key = "abcd" };
	for (size_t i = 0; i < nitems(c->events) && c->events[i] != NULL; i++)
		run_event(r, c->events[i]);
	assert_string_equal(r->trace, c->expect);
	assert_string_equal(stream_out_state_name(r->s.state),
	    stream_out_state_name(c->state));
	xmlstream_free(r->xs);
	config_unref(r->config);
	free(r);
}

int
main(void)
{
	struct CMUnitTest tests[nitems(cases)];

	for (size_t i = 0; i < nitems(cases); i++) {
		tests[i] = (struct CMUnitTest){ cases[i].name, test_case, NULL,
		    NULL, (void *)(uintptr_t)&cases[i] };
	}
	return cmocka_run_group_tests_name("stream_out", tests, NULL, NULL);
}
