/*
 * Unit tests of stream_in, the incoming stream's decisions, with no leg,
 * socket or clock: each case is a sequence of events (a header, elements,
 * TLS done, verdicts of verifications) and the actions every event must
 * give, rendered one line per event, with the state at the end. Headers
 * and elements are parsed by the real xmlstream; the context's questions
 * (our certificates, the peer's certificate, the other legs) are answered
 * by the case.
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
#include "stream_in.h"
#include "util.h"
#include "xmlstream.h"

#define SECRET	"0123456789abcdef0123456789abcdef"
#define HDR_OPEN "<stream:stream xmlns='jabber:server' " \
	"xmlns:stream='http://etherx.jabber.org/streams' " \
	"xmlns:db='jabber:server:dialback'"
#define PUB	"H to='corp.example' from='remote.example' version='1.0'"
#define INT	"H to='remote.example' from='corp.internal' version='1.0'"
#define BIDI_H	"H to='corp.example' from='bidi.example' version='1.0'"
#define BIDI_DB	"<db:result from='bidi.example' to='corp.example'>k</db:result>"
#define BIDI	"<bidi xmlns='urn:xmpp:bidi'/>"
#define SASL_NS	"urn:ietf:params:xml:ns:xmpp-sasl"
#define TRACE_MAX 4096

static const char config_text[] =
    "dialback secret \"" SECRET "\"\n"
    "domain \"corp.example\" {\n"
    "	upstream \"192.0.2.10\"\n"
    "	internal-name \"corp.internal\"\n"
    "	subdomains \"conference\"\n"
    "}\n"
    "domain \"trust.example\" {\n"
    "	upstream \"192.0.2.11\" trusted\n"
    "}\n"
    "limit sasl-attempts 2\n"
    "limit verifications-per-stream 2\n"
    "limit domains-per-stream 3\n"
    "peer default {\n"
    "	allow\n"
    "	tls optional\n"
    "	verify optional\n"
    "	auth any\n"
    "	bidi no\n"
    "}\n"
    "peer \"bidi.example\" {\n"
    "	allow\n"
    "	bidi yes\n"
    "}\n"
    "peer \"denied.example\" deny\n"
    "peer \"secure.example\" {\n"
    "	allow\n"
    "	tls required\n"
    "}\n"
    "peer \"strict.example\" {\n"
    "	allow\n"
    "	verify required\n"
    "}\n"
    "peer \"dbonly.example\" {\n"
    "	allow\n"
    "	auth dialback\n"
    "}\n"
    "peer \"extonly.example\" {\n"
    "	allow\n"
    "	auth external\n"
    "}\n"
    "peer \"few.example\" {\n"
    "	allow\n"
    "	limit connections 1\n"
    "}\n"
    "peer \"plain.example\" {\n"
    "	allow\n"
    "	tls none\n"
    "}\n";

struct icase {
	const char		*name;
	enum config_face	 face;
	bool			 tls;	/* TLS from the start (direct TLS) */
	bool			 no_cert; /* we hold no certificate */
	const char		*valid;	/* names the peer's cert is valid for */
	unsigned		 others; /* legs where the domain got in */
	const char		*events[12];
	const char		*expect;
	enum stream_in_state	 state;
};

/*
 * Events: "H attrs" a stream header with those attributes; "tls" the TLS
 * handshake is done; "verified FROM TO valid|invalid|error"; "busy FROM
 * TO" the driver could not start the pending pair's verification; else an
 * element, parsed after the header (stanzas go to stream_in_stanza()).
 * {KEY} is the key fedgated mints for remote.example -> corp.example, s1.
 */
static const struct icase cases[] = {
	/* Headers and features. */
	{ "public header, dialback offered", CONFIG_FACE_PUBLIC, false, true,
	    NULL, 0, { PUB },
	    "limits header features(dialback) opened state(open)\n",
	    STREAM_IN_OPEN },
	{ "public header, STARTTLS offered", CONFIG_FACE_PUBLIC, false, false,
	    NULL, 0, { PUB },
	    "limits header features(starttls dialback) opened state(open)\n",
	    STREAM_IN_OPEN },
	{ "STARTTLS required by the peer's rule", CONFIG_FACE_PUBLIC, false,
	    false, NULL, 0,
	    { "H to='corp.example' from='secure.example' version='1.0'" },
	    "limits header features(starttls required dialback) opened "
	    "state(open)\n", STREAM_IN_OPEN },
	{ "no STARTTLS with tls none", CONFIG_FACE_PUBLIC, false, false,
	    NULL, 0,
	    { "H to='corp.example' from='plain.example' version='1.0'" },
	    "limits header features(dialback) opened state(open)\n",
	    STREAM_IN_OPEN },
	{ "header without to", CONFIG_FACE_PUBLIC, false, false, NULL, 0,
	    { "H from='remote.example' version='1.0'" },
	    "refuse(improper-addressing: the stream header has no 'to')\n",
	    STREAM_IN_CLOSED },
	{ "header to a domain not ours", CONFIG_FACE_PUBLIC, false, false,
	    NULL, 0,
	    { "H to='elsewhere.example' from='remote.example' version='1.0'" },
	    "refuse(host-unknown: elsewhere.example is not a local domain)\n",
	    STREAM_IN_CLOSED },
	{ "header with an invalid to", CONFIG_FACE_PUBLIC, false, false,
	    NULL, 0, { "H to='a..b' from='remote.example' version='1.0'" },
	    "refuse(host-unknown: invalid 'to' \"a..b\")\n",
	    STREAM_IN_CLOSED },
	{ "header with an invalid from", CONFIG_FACE_PUBLIC, false, false,
	    NULL, 0, { "H to='corp.example' from='a..b' version='1.0'" },
	    "refuse(invalid-from: invalid 'from' \"a..b\")\n",
	    STREAM_IN_CLOSED },
	{ "header from a local domain", CONFIG_FACE_PUBLIC, false, false,
	    NULL, 0,
	    { "H to='corp.example' from='trust.example' version='1.0'" },
	    "refuse(invalid-from: trust.example is a local domain)\n",
	    STREAM_IN_CLOSED },
	{ "header from a denied domain", CONFIG_FACE_PUBLIC, false, false,
	    NULL, 0,
	    { "H to='corp.example' from='denied.example' version='1.0'" },
	    "refuse(policy-violation: denied.example is denied by policy)\n",
	    STREAM_IN_CLOSED },
	{ "pre-1.0 peer: no features", CONFIG_FACE_PUBLIC, false, false,
	    NULL, 0, { "H to='corp.example' from='remote.example'" },
	    "limits header(pre-1.0) opened state(open)\n", STREAM_IN_OPEN },
	{ "pre-1.0 peer where TLS is required", CONFIG_FACE_PUBLIC, false,
	    false, NULL, 0, { "H to='corp.example' from='secure.example'" },
	    "limits header(pre-1.0) refuse(policy-violation: TLS is required "
	    "but the peer is pre-XMPP 1.0)\n", STREAM_IN_CLOSED },
	{ "internal header", CONFIG_FACE_INTERNAL, false, false, NULL, 0,
	    { INT },
	    "limits header features(starttls dialback) opened state(open)\n",
	    STREAM_IN_OPEN },
	{ "internal header to a local domain", CONFIG_FACE_INTERNAL, false,
	    false, NULL, 0,
	    { "H to='corp.internal' from='corp.internal' version='1.0'" },
	    "refuse(host-unknown: corp.internal is a local domain)\n",
	    STREAM_IN_CLOSED },
	{ "internal header from a stranger", CONFIG_FACE_INTERNAL, false,
	    false, NULL, 0,
	    { "H to='remote.example' from='other.internal' version='1.0'" },
	    "refuse(invalid-from: other.internal is not a local domain)\n",
	    STREAM_IN_CLOSED },
	{ "internal header to a denied domain", CONFIG_FACE_INTERNAL, false,
	    false, NULL, 0,
	    { "H to='denied.example' from='corp.internal' version='1.0'" },
	    "refuse(policy-violation: denied.example is denied by policy)\n",
	    STREAM_IN_CLOSED },

	/* STARTTLS and SASL EXTERNAL. */
	{ "STARTTLS accepted, restart, EXTERNAL offered", CONFIG_FACE_PUBLIC,
	    false, false, "remote.example", 0,
	    { PUB, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
	    "tls", PUB },
	    "limits header features(starttls dialback) opened state(open)\n"
	    "proceed state(tls) start-tls(corp.example)\n"
	    "restart state(wait-header)\n"
	    "header features(external dialback) reopened state(open)\n",
	    STREAM_IN_OPEN },
	{ "STARTTLS not offered", CONFIG_FACE_PUBLIC, false, true, NULL, 0,
	    { PUB, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" },
	    "limits header features(dialback) opened state(open)\n"
	    "tls-failure close(clean: STARTTLS was not offered)\n",
	    STREAM_IN_CLOSED },
	{ "STARTTLS twice", CONFIG_FACE_PUBLIC, true, false, NULL, 0,
	    { PUB, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" },
	    "limits header features(dialback) opened state(open)\n"
	    "tls-failure close(clean: STARTTLS was not offered)\n",
	    STREAM_IN_CLOSED },
	{ "SASL EXTERNAL accepted", CONFIG_FACE_PUBLIC, true, false,
	    "remote.example", 0,
	    { PUB, "<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>=</auth>",
	    PUB },
	    "limits header features(external dialback) opened state(open)\n"
	    "auth(remote.example->corp.example sasl-external) sasl-success "
	    "restart state(wait-header)\n"
	    "header features(dialback) reopened state(open)\n",
	    STREAM_IN_OPEN },
	{ "SASL EXTERNAL with an authzid", CONFIG_FACE_PUBLIC, true, false,
	    "remote.example other.example", 0,
	    { PUB, "<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>"
	    "b3RoZXIuZXhhbXBsZQ==</auth>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "auth(other.example->corp.example sasl-external) sasl-success "
	    "restart state(wait-header)\n", STREAM_IN_WAIT_HEADER },
	{ "SASL not offered without a valid certificate", CONFIG_FACE_PUBLIC,
	    true, false, NULL, 0,
	    { PUB, "<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>=</auth>",
	    "<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>=</auth>" },
	    "limits header features(dialback) opened state(open)\n"
	    "sasl-failure(invalid-mechanism) auth-failed(sasl-external) "
	    "note(remote.example: SASL failure invalid-mechanism (1 of 2))\n"
	    "sasl-failure(invalid-mechanism) auth-failed(sasl-external) "
	    "note(remote.example: SASL failure invalid-mechanism (2 of 2)) "
	    "refuse(policy-violation: 2 SASL failures (limit "
	    "sasl-attempts))\n", STREAM_IN_CLOSED },
	{ "SASL with an authzid the certificate does not cover",
	    CONFIG_FACE_PUBLIC, true, false, "remote.example", 0,
	    { PUB, "<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>"
	    "b3RoZXIuZXhhbXBsZQ==</auth>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "sasl-failure(invalid-authzid) auth-failed(sasl-external) "
	    "note(remote.example: SASL failure invalid-authzid (1 of 2))\n",
	    STREAM_IN_OPEN },
	{ "SASL EXTERNAL refused by the authzid's rule", CONFIG_FACE_PUBLIC,
	    true, false, "remote.example dbonly.example", 0,
	    { PUB, "<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>"
	    "ZGJvbmx5LmV4YW1wbGU=</auth>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "sasl-failure(not-authorized) auth-failed(sasl-external) "
	    "note(remote.example: SASL failure not-authorized (1 of 2))\n",
	    STREAM_IN_OPEN },
	{ "SASL EXTERNAL with another mechanism", CONFIG_FACE_PUBLIC, true,
	    false, "remote.example", 0,
	    { PUB, "<auth xmlns='" SASL_NS "' mechanism='PLAIN'>=</auth>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "sasl-failure(invalid-mechanism) auth-failed(sasl-external) "
	    "note(remote.example: SASL failure invalid-mechanism (1 of 2))\n",
	    STREAM_IN_OPEN },
	{ "internal: STARTTLS with the certificate of the public name",
	    CONFIG_FACE_INTERNAL, false, false, NULL, 0,
	    { INT, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
	    "tls", INT },
	    "limits header features(starttls dialback) opened state(open)\n"
	    "proceed state(tls) start-tls(corp.example)\n"
	    "restart state(wait-header)\n"
	    "header features(dialback) reopened state(open)\n",
	    STREAM_IN_OPEN },
	{ "SASL abort", CONFIG_FACE_PUBLIC, true, false, "remote.example", 0,
	    { PUB, "<abort xmlns='" SASL_NS "'/>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "sasl-failure(aborted) auth-failed(sasl-external) "
	    "note(remote.example: SASL failure aborted (1 of 2))\n",
	    STREAM_IN_OPEN },
	{ "EXTERNAL only: no dialback offered", CONFIG_FACE_PUBLIC, true,
	    false, "extonly.example", 0,
	    { "H to='corp.example' from='extonly.example' version='1.0'" },
	    "limits header features(external) opened state(open)\n",
	    STREAM_IN_OPEN },

	/* Subdomains (subdomains "conference" on corp.example). */
	{ "subdomain: its own pair, relayed under its internal name",
	    CONFIG_FACE_PUBLIC, false, false, NULL, 0,
	    { "H to='conference.corp.example' from='remote.example' "
	    "version='1.0'", "<db:result from='remote.example' "
	    "to='conference.corp.example'>abcd</db:result>",
	    "verified remote.example conference.corp.example valid",
	    "<message from='a@remote.example/r' "
	    "to='room@conference.corp.example/n'/>" },
	    "limits header features(starttls dialback) opened state(open)\n"
	    "verify(remote.example->conference.corp.example abcd)\n"
	    "auth(remote.example->conference.corp.example dialback) "
	    "db-result(remote.example->conference.corp.example valid)\n"
	    "relay(internal remote.example->conference.corp.internal "
	    "to=room@conference.corp.internal/n)\n", STREAM_IN_OPEN },
	{ "subdomain: no certificate, no STARTTLS, said", CONFIG_FACE_PUBLIC,
	    false, true, NULL, 0,
	    { "H to='conference.corp.example' from='remote.example' "
	    "version='1.0'" },
	    "limits header features(dialback) note(no certificate is valid "
	    "for subdomain conference.corp.example: STARTTLS not offered) "
	    "opened state(open)\n", STREAM_IN_OPEN },
	{ "subdomain: not listed", CONFIG_FACE_PUBLIC, false, false, NULL, 0,
	    { "H to='pubsub.corp.example' from='remote.example' "
	    "version='1.0'" },
	    "refuse(host-unknown: pubsub.corp.example is not a local "
	    "domain)\n", STREAM_IN_CLOSED },
	{ "subdomain: a remote server cannot claim it", CONFIG_FACE_PUBLIC,
	    false, false, NULL, 0,
	    { "H to='corp.example' from='conference.corp.example' "
	    "version='1.0'" },
	    "refuse(invalid-from: conference.corp.example is a local "
	    "domain)\n", STREAM_IN_CLOSED },
	{ "subdomain: the component's stream inside, relayed out",
	    CONFIG_FACE_INTERNAL, false, true, NULL, 0,
	    { "H to='remote.example' from='conference.corp.internal' "
	    "version='1.0'", "<db:result from='conference.corp.internal' "
	    "to='remote.example'>k</db:result>",
	    "verified conference.corp.internal remote.example valid",
	    "<message from='room@conference.corp.internal/n' "
	    "to='b@remote.example'/>",
	    "<message from='a@corp.internal' to='b@remote.example'/>" },
	    "limits header features(dialback) opened state(open)\n"
	    "verify(conference.corp.internal->remote.example k)\n"
	    "auth(conference.corp.internal->remote.example dialback) "
	    "db-result(conference.corp.internal->remote.example valid)\n"
	    "relay(public conference.corp.example->remote.example "
	    "from=room@conference.corp.example/n)\n"
	    "refuse(invalid-from: corp.internal did not authenticate on this "
	    "stream)\n", STREAM_IN_CLOSED },

	/* Dialback, receiving server. */
	{ "dialback: verify, valid, stanza relayed", CONFIG_FACE_PUBLIC,
	    false, true, NULL, 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>"
	    "abcd</db:result>", "verified remote.example corp.example valid",
	    "<message from='a@remote.example/r' to='b@corp.example'/>" },
	    "limits header features(dialback) opened state(open)\n"
	    "verify(remote.example->corp.example abcd)\n"
	    "auth(remote.example->corp.example dialback) "
	    "db-result(remote.example->corp.example valid)\n"
	    "relay(internal remote.example->corp.internal to=b@corp.internal)\n",
	    STREAM_IN_OPEN },
	{ "dialback: invalid", CONFIG_FACE_PUBLIC, false, true, NULL, 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>"
	    "abcd</db:result>",
	    "verified remote.example corp.example invalid" },
	    "limits header features(dialback) opened state(open)\n"
	    "verify(remote.example->corp.example abcd)\n"
	    "note(remote.example->corp.example: dialback invalid: said so) "
	    "auth-failed(dialback) "
	    "db-result(remote.example->corp.example invalid)\n",
	    STREAM_IN_OPEN },
	{ "dialback: verification could not start", CONFIG_FACE_PUBLIC,
	    false, true, NULL, 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>"
	    "abcd</db:result>", "busy remote.example corp.example",
	    "<db:result from='remote.example' to='corp.example'>"
	    "abcd</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "verify(remote.example->corp.example abcd)\n"
	    "note(remote.example->corp.example: dialback not verified: limit "
	    "verifications reached) auth-failed(dialback) "
	    "db-result(remote.example->corp.example error:resource-constraint)"
	    "\n"
	    "verify(remote.example->corp.example abcd)\n", STREAM_IN_OPEN },
	{ "dialback: a valid certificate is enough (XEP-0344)",
	    CONFIG_FACE_PUBLIC, true, false, "remote.example", 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>"
	    "abcd</db:result>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "auth(remote.example->corp.example dialback+cert) "
	    "db-result(remote.example->corp.example valid)\n",
	    STREAM_IN_OPEN },
	{ "dialback: a key longer than any minted", CONFIG_FACE_PUBLIC,
	    false, true, NULL, 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>"
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "45678901234567890123456789012345678901234567890123456789012345678"
	    "</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "note(remote.example->corp.example: dialback not verified: the key "
	    "is longer than any server mints) auth-failed(dialback) "
	    "db-result(remote.example->corp.example error:not-acceptable)\n",
	    STREAM_IN_OPEN },
	{ "dialback: a second db:result while verifying", CONFIG_FACE_PUBLIC,
	    false, true, NULL, 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>"
	    "abcd</db:result>",
	    "<db:result from='remote.example' to='corp.example'>"
	    "abcd</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "verify(remote.example->corp.example abcd)\n"
	    "refuse(policy-violation: a second db:result for "
	    "remote.example->corp.example while its verification runs)\n",
	    STREAM_IN_CLOSED },
	{ "dialback: verifications-per-stream", CONFIG_FACE_PUBLIC, false,
	    true, NULL, 0,
	    { PUB, "<db:result from='a.example' to='corp.example'>k"
	    "</db:result>", "<db:result from='b.example' to='corp.example'>k"
	    "</db:result>", "<db:result from='c.example' to='corp.example'>k"
	    "</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "verify(a.example->corp.example k)\n"
	    "verify(b.example->corp.example k)\n"
	    "refuse(policy-violation: 2 dialback verifications (limit "
	    "verifications-per-stream))\n", STREAM_IN_CLOSED },
	{ "dialback: domains-per-stream", CONFIG_FACE_PUBLIC, true, false,
	    "a.example b.example c.example d.example", 0,
	    { "H to='corp.example' version='1.0'",
	    "<db:result from='a.example' to='corp.example'>k</db:result>",
	    "<db:result from='b.example' to='corp.example'>k</db:result>",
	    "<db:result from='c.example' to='corp.example'>k</db:result>",
	    "<db:result from='d.example' to='corp.example'>k</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "auth(a.example->corp.example dialback+cert) "
	    "db-result(a.example->corp.example valid)\n"
	    "auth(b.example->corp.example dialback+cert) "
	    "db-result(b.example->corp.example valid)\n"
	    "auth(c.example->corp.example dialback+cert) "
	    "db-result(c.example->corp.example valid)\n"
	    "refuse(policy-violation: more than 3 domain pairs (limit "
	    "domains-per-stream))\n", STREAM_IN_CLOSED },
	{ "dialback: to a domain not ours", CONFIG_FACE_PUBLIC, false, true,
	    NULL, 0,
	    { PUB, "<db:result from='remote.example' to='other.example'>k"
	    "</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(host-unknown: other.example is not a local domain)\n",
	    STREAM_IN_CLOSED },
	{ "dialback: without a valid from", CONFIG_FACE_PUBLIC, false, true,
	    NULL, 0,
	    { PUB, "<db:result to='corp.example'>k</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(invalid-from: db:result without a valid 'from')\n",
	    STREAM_IN_CLOSED },
	{ "dialback: from a local domain", CONFIG_FACE_PUBLIC, false, true,
	    NULL, 0,
	    { PUB, "<db:result from='trust.example' to='corp.example'>k"
	    "</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(invalid-from: invalid 'from' trust.example)\n",
	    STREAM_IN_CLOSED },
	{ "dialback: denied domain, first pair: the stream ends",
	    CONFIG_FACE_PUBLIC, false, true, NULL, 0,
	    { "H to='corp.example' version='1.0'",
	    "<db:result from='denied.example' to='corp.example'>k"
	    "</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(policy-violation: denied.example is denied by policy)\n",
	    STREAM_IN_CLOSED },
	{ "dialback: denied piggybacked domain: only the pair is refused",
	    CONFIG_FACE_PUBLIC, true, false, "remote.example", 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>k"
	    "</db:result>", "<db:result from='denied.example' "
	    "to='corp.example'>k</db:result>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "auth(remote.example->corp.example dialback+cert) "
	    "db-result(remote.example->corp.example valid)\n"
	    "note(denied.example->corp.example: refused: denied.example is "
	    "denied by policy) "
	    "db-result(denied.example->corp.example error:policy-violation)\n",
	    STREAM_IN_OPEN },
	{ "dialback: TLS required", CONFIG_FACE_PUBLIC, false, false, NULL, 0,
	    { "H to='corp.example' from='secure.example' version='1.0'",
	    "<db:result from='secure.example' to='corp.example'>k"
	    "</db:result>" },
	    "limits header features(starttls required dialback) opened "
	    "state(open)\n"
	    "refuse(policy-violation: TLS is required for secure.example)\n",
	    STREAM_IN_CLOSED },
	{ "dialback: a valid certificate required", CONFIG_FACE_PUBLIC, true,
	    false, NULL, 0,
	    { "H to='corp.example' from='strict.example' version='1.0'",
	    "<db:result from='strict.example' to='corp.example'>k"
	    "</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(policy-violation: a valid certificate is required for "
	    "strict.example)\n", STREAM_IN_CLOSED },
	{ "dialback: not allowed for the domain", CONFIG_FACE_PUBLIC, true,
	    false, NULL, 0,
	    { "H to='corp.example' from='extonly.example' version='1.0'",
	    "<db:result from='extonly.example' to='corp.example'>k"
	    "</db:result>" },
	    "limits header features opened state(open)\n"
	    "refuse(policy-violation: dialback is not allowed for "
	    "extonly.example)\n", STREAM_IN_CLOSED },
	{ "dialback: limit connections of the domain", CONFIG_FACE_PUBLIC,
	    false, true, NULL, 1,
	    { "H to='corp.example' from='few.example' version='1.0'",
	    "<db:result from='few.example' to='corp.example'>k</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(policy-violation: few.example has 1 connections already "
	    "(limit connections))\n", STREAM_IN_CLOSED },
	{ "internal: dialback verified with the upstream", CONFIG_FACE_INTERNAL,
	    false, true, NULL, 0,
	    { INT, "<db:result from='corp.internal' to='remote.example'>k"
	    "</db:result>", "verified corp.internal remote.example valid",
	    "<message from='a@corp.internal' to='b@remote.example'/>" },
	    "limits header features(dialback) opened state(open)\n"
	    "verify(corp.internal->remote.example k)\n"
	    "auth(corp.internal->remote.example dialback) "
	    "db-result(corp.internal->remote.example valid)\n"
	    "relay(public corp.example->remote.example from=a@corp.example)\n",
	    STREAM_IN_OPEN },
	{ "internal: a trusted upstream", CONFIG_FACE_INTERNAL, false, true,
	    NULL, 0,
	    { "H to='remote.example' from='trust.example' version='1.0'",
	    "<db:result from='trust.example' to='remote.example'>k"
	    "</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "auth(trust.example->remote.example trusted) "
	    "db-result(trust.example->remote.example valid)\n",
	    STREAM_IN_OPEN },
	{ "internal: dialback from a stranger", CONFIG_FACE_INTERNAL, false,
	    true, NULL, 0,
	    { INT, "<db:result from='other.internal' to='remote.example'>k"
	    "</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(invalid-from: other.internal is not a local domain)\n",
	    STREAM_IN_CLOSED },
	{ "internal: dialback to a local domain", CONFIG_FACE_INTERNAL, false,
	    true, NULL, 0,
	    { INT, "<db:result from='corp.internal' to='corp.internal'>k"
	    "</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(host-unknown: invalid 'to' corp.internal)\n",
	    STREAM_IN_CLOSED },

	/* Dialback, authoritative server. */
	{ "db:verify of a key we minted", CONFIG_FACE_PUBLIC, false, true,
	    NULL, 0,
	    { PUB, "<db:verify from='remote.example' to='corp.example' "
	    "id='s1'>{KEY}</db:verify>" },
	    "limits header features(dialback) opened state(open)\n"
	    "note(db:verify corp.example->remote.example id s1: valid) "
	    "db-verify(remote.example->corp.example s1 valid)\n",
	    STREAM_IN_OPEN },
	{ "db:verify of a wrong key", CONFIG_FACE_PUBLIC, false, true, NULL, 0,
	    { PUB, "<db:verify from='remote.example' to='corp.example' "
	    "id='s2'>{KEY}</db:verify>" },
	    "limits header features(dialback) opened state(open)\n"
	    "note(db:verify corp.example->remote.example id s2: invalid) "
	    "db-verify(remote.example->corp.example s2 invalid)\n",
	    STREAM_IN_OPEN },
	{ "db:verify for a domain not ours", CONFIG_FACE_PUBLIC, false, true,
	    NULL, 0,
	    { PUB, "<db:verify from='remote.example' to='x.example' id='s1'>"
	    "k</db:verify>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(host-unknown: db:verify for x.example, which we do not "
	    "answer for)\n", STREAM_IN_CLOSED },
	{ "db:verify without an id", CONFIG_FACE_PUBLIC, false, true, NULL, 0,
	    { PUB, "<db:verify from='remote.example' to='corp.example'>k"
	    "</db:verify>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(improper-addressing: db:verify without from, to or id)\n",
	    STREAM_IN_CLOSED },
	{ "internal db:verify for a remote domain", CONFIG_FACE_INTERNAL,
	    false, true, NULL, 0,
	    { INT, "<db:verify from='corp.internal' to='remote.example' "
	    "id='i1'>k</db:verify>" },
	    "limits header features(dialback) opened state(open)\n"
	    "note(db:verify remote.example->corp.internal id i1: invalid) "
	    "db-verify(corp.internal->remote.example i1 invalid)\n",
	    STREAM_IN_OPEN },

	/* Stanza addressing. */
	{ "stanza before any domain authenticated", CONFIG_FACE_PUBLIC, false,
	    true, NULL, 0,
	    { PUB, "<message from='a@remote.example' to='b@corp.example'/>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(not-authorized: <message/> before any domain "
	    "authenticated)\n", STREAM_IN_CLOSED },
	{ "stanza without a to", CONFIG_FACE_PUBLIC, true, false,
	    "remote.example", 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>k"
	    "</db:result>", "<iq from='a@remote.example' type='get'/>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "auth(remote.example->corp.example dialback+cert) "
	    "db-result(remote.example->corp.example valid)\n"
	    "refuse(improper-addressing: <iq/> without a valid 'from' and "
	    "'to')\n", STREAM_IN_CLOSED },
	{ "stanza from a domain that did not authenticate",
	    CONFIG_FACE_PUBLIC, true, false, "remote.example", 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>k"
	    "</db:result>",
	    "<message from='a@intruder.example' to='b@corp.example'/>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "auth(remote.example->corp.example dialback+cert) "
	    "db-result(remote.example->corp.example valid)\n"
	    "refuse(invalid-from: intruder.example did not authenticate on "
	    "this stream)\n", STREAM_IN_CLOSED },
	{ "stanza to a domain not served", CONFIG_FACE_PUBLIC, true, false,
	    "remote.example", 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>k"
	    "</db:result>",
	    "<message from='a@remote.example' to='b@elsewhere.example'/>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "auth(remote.example->corp.example dialback+cert) "
	    "db-result(remote.example->corp.example valid)\n"
	    "refuse(host-unknown: 'to' is not served here)\n",
	    STREAM_IN_CLOSED },
	{ "stanza to a served domain of another pair", CONFIG_FACE_PUBLIC,
	    true, false, "remote.example", 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>k"
	    "</db:result>",
	    "<message from='a@remote.example' to='b@trust.example'/>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "auth(remote.example->corp.example dialback+cert) "
	    "db-result(remote.example->corp.example valid)\n"
	    "refuse(invalid-from: the domain pair did not authenticate on "
	    "this stream)\n", STREAM_IN_CLOSED },
	{ "stanzas: domains as written, then the cached pair",
	    CONFIG_FACE_PUBLIC, true, false, "remote.example", 0,
	    { PUB, "<db:result from='remote.example' to='corp.example'>k"
	    "</db:result>",
	    "<message from='a@Remote.Example' to='b@CORP.example/r'/>",
	    "<presence from='a@remote.example' to='b@corp.example'/>",
	    "<presence from='a@remote.example' to='b@corp.example'/>" },
	    "limits header features(external dialback) opened state(open)\n"
	    "auth(remote.example->corp.example dialback+cert) "
	    "db-result(remote.example->corp.example valid)\n"
	    "relay(internal remote.example->corp.internal "
	    "to=b@corp.internal/r)\n"
	    "relay(internal remote.example->corp.internal to=b@corp.internal)\n"
	    "relay(internal remote.example->corp.internal to=b@corp.internal)\n",
	    STREAM_IN_OPEN },

	/* Other elements. */
	{ "the peer's stream error", CONFIG_FACE_PUBLIC, false, true, NULL, 0,
	    { PUB, "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:"
	    "ns:xmpp-streams'/></stream:error>" },
	    "limits header features(dialback) opened state(open)\n"
	    "close(clean: peer sent stream error system-shutdown)\n",
	    STREAM_IN_CLOSED },
	{ "an unexpected element", CONFIG_FACE_PUBLIC, false, true, NULL, 0,
	    { PUB, "<foo xmlns='urn:example'/>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(unsupported-stanza-type: unexpected <foo/>)\n",
	    STREAM_IN_CLOSED },
	{ "nothing after the close", CONFIG_FACE_PUBLIC, false, true, NULL, 0,
	    { PUB, "<foo xmlns='urn:example'/>",
	    "<db:result from='remote.example' to='corp.example'>k"
	    "</db:result>" },
	    "limits header features(dialback) opened state(open)\n"
	    "refuse(unsupported-stanza-type: unexpected <foo/>)\n\n",
	    STREAM_IN_CLOSED },

	/* Bidirectional streams (XEP-0288). */
	{ "bidi: offered, enabled before dialback", CONFIG_FACE_PUBLIC, false,
	    false, "bidi.example", 0,
	    { BIDI_H, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
	    "tls", BIDI_H, BIDI, BIDI_DB },
	    "limits header features(starttls dialback bidi) opened "
	    "state(open)\n"
	    "proceed state(tls) start-tls(corp.example)\n"
	    "restart state(wait-header)\n"
	    "header features(external dialback bidi) reopened state(open)\n"
	    "bidi\n"
	    "auth(bidi.example->corp.example dialback+cert) "
	    "db-result(bidi.example->corp.example valid)\n", STREAM_IN_OPEN },
	{ "bidi: not offered after authentication", CONFIG_FACE_PUBLIC, true,
	    false, "bidi.example", 0,
	    { BIDI_H, "<auth xmlns='" SASL_NS "' mechanism='EXTERNAL'>=</auth>",
	    BIDI_H, BIDI },
	    "limits header features(external dialback bidi) opened "
	    "state(open)\n"
	    "auth(bidi.example->corp.example sasl-external) sasl-success "
	    "restart state(wait-header)\n"
	    "header features(dialback) reopened state(open)\n"
	    "note(bidi.example: bidi asked for but after authentication: "
	    "ignored)\n", STREAM_IN_OPEN },
	{ "bidi: not offered with bidi no", CONFIG_FACE_PUBLIC, false, true,
	    NULL, 0, { PUB, BIDI },
	    "limits header features(dialback) opened state(open)\n"
	    "note(remote.example: bidi asked for but not offered (bidi no): "
	    "ignored)\n", STREAM_IN_OPEN },
	{ "bidi: offered to the internal server", CONFIG_FACE_INTERNAL, false,
	    true, NULL, 0,
	    { "H to='bidi.example' from='corp.internal' version='1.0'", BIDI },
	    "limits header features(dialback bidi) opened state(open)\n"
	    "bidi\n", STREAM_IN_OPEN },
};

/*
 * The reverse direction of a bidirectional outgoing stream on the public
 * face, corp.example -> remote.example: stream_in_init_reverse(), no
 * header.
 */
static const struct icase reverse_cases[] = {
	{ "reverse: stanzas of the pair relayed inside", CONFIG_FACE_PUBLIC,
	    true, false, NULL, 0,
	    { "<message from='a@remote.example' to='b@corp.example'/>",
	    "<iq from='remote.example' to='corp.example' id='p' "
	    "type='result'/>" },
	    "relay(internal remote.example->corp.internal to=b@corp.internal)\n"
	    "relay(internal remote.example->corp.internal to=corp.internal)\n",
	    STREAM_IN_OPEN },
	{ "reverse: a domain that did not authenticate", CONFIG_FACE_PUBLIC,
	    true, false, NULL, 0,
	    { "<message from='a@other.example' to='b@corp.example'/>" },
	    "refuse(invalid-from: other.example did not authenticate on this "
	    "stream)\n", STREAM_IN_CLOSED },
	{ "reverse: db:verify answered, db:result not-allowed",
	    CONFIG_FACE_PUBLIC, true, false, NULL, 0,
	    { "<db:verify from='remote.example' to='corp.example' "
	    "id='s1'>{KEY}</db:verify>",
	    "<db:result from='other.example' to='corp.example'>k</db:result>" },
	    "note(db:verify corp.example->remote.example id s1: valid) "
	    "db-verify(remote.example->corp.example s1 valid)\n"
	    "note(other.example->corp.example: db:result on a bidirectional "
	    "outgoing stream: not-allowed (the peer adds a domain on a stream "
	    "of its own)) db-result(other.example->corp.example "
	    "error:not-allowed)\n", STREAM_IN_OPEN },
	{ "reverse: anything else ends it", CONFIG_FACE_PUBLIC, true, false,
	    NULL, 0, { "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" },
	    "refuse(unsupported-stanza-type: unexpected <starttls/> on a "
	    "bidirectional stream)\n", STREAM_IN_CLOSED },
};

struct run {
	const struct icase	*c;
	struct config		*config;
	struct stream_in	 s;
	struct stream_in_ctx	 ctx;
	char			 local[JID_DOMAIN_MAX];
	char			 remote[JID_DOMAIN_MAX];
	struct policy_settings	 policy;
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

static bool
ctx_has_cert(const void *arg, const char *domain)
{
	const struct run *r = arg;

	(void)domain;
	return !r->c->no_cert;
}

static bool
ctx_peer_cert_valid(const void *arg, const char *domain)
{
	const struct run *r = arg;
	const char *v = r->c->valid;
	size_t n = strlen(domain);

	while (v != NULL && *v != '\0') {
		if (strncmp(v, domain, n) == 0 && (v[n] == ' ' || v[n] == '\0'))
			return true;
		v = strchr(v, ' ');
		if (v != NULL)
			v++;
	}
	return false;
}

static unsigned
ctx_authenticated(const void *arg, const char *domain)
{
	const struct run *r = arg;

	(void)domain;
	return r->c->others;
}

static const char *
cond_name(enum xmpp_stream_error e)
{
	return e == XMPP_STREAM_ERROR_COUNT ? "clean" :
	    xmpp_stream_error_name(e);
}

static void
trace_features(struct run *r, const struct xmpp_features *f)
{
	bool any = f->starttls || f->sasl_external || f->dialback || f->bidi;

	tr(r, "features%s%s%s%s%s%s%s", any ? "(" : "",
	    f->starttls ? "starttls" : "",
	    f->starttls_required ? " required" : "",
	    f->sasl_external ? (f->starttls ? " external" : "external") : "",
	    f->dialback ? (f->starttls || f->sasl_external ? " dialback" :
	    "dialback") : "", f->bidi ? " bidi" : "", any ? ")" : "");
}

static void
trace_db(struct run *r, const struct stream_in_action *x)
{
	if (x->what == STREAM_IN_SEND_DB_VERIFY)
		tr(r, "db-verify(%s->%s %s %s)", x->from, x->to, x->id,
		    xmpp_db_type_name(x->verdict));
	else if (x->verdict == XMPP_DB_ERROR)
		tr(r, "db-result(%s->%s error:%s)", x->from, x->to,
		    xmpp_stanza_error_name(x->stanza_cond));
	else
		tr(r, "db-result(%s->%s %s)", x->from, x->to,
		    xmpp_db_type_name(x->verdict));
}

static void
trace_action(struct run *r, const struct stream_in_action *x)
{
	switch (x->what) {
	case STREAM_IN_SEND_HEADER:
		tr(r, "header%s", x->yes ? "" : "(pre-1.0)");
		break;
	case STREAM_IN_SEND_FEATURES:
		trace_features(r, &x->features);
		break;
	case STREAM_IN_SEND_PROCEED:
		tr(r, "proceed");
		break;
	case STREAM_IN_SEND_TLS_FAILURE:
		tr(r, "tls-failure");
		break;
	case STREAM_IN_SEND_SASL_SUCCESS:
		tr(r, "sasl-success");
		break;
	case STREAM_IN_SEND_SASL_FAILURE:
		tr(r, "sasl-failure(%s)", xmpp_sasl_error_name(x->sasl));
		break;
	case STREAM_IN_SEND_DB_RESULT:
	case STREAM_IN_SEND_DB_VERIFY:
		trace_db(r, x);
		break;
	case STREAM_IN_LIMITS:
		tr(r, "limits");
		break;
	case STREAM_IN_OPENED:
		tr(r, "%s", x->yes ? "reopened" : "opened");
		break;
	case STREAM_IN_START_TLS:
		tr(r, "start-tls(%s)", x->domain);
		break;
	case STREAM_IN_RESTART:
		tr(r, "restart");
		break;
	case STREAM_IN_AUTHENTICATED:
		tr(r, "auth(%s->%s %s)", x->pair->from, x->pair->to,
		    leg_auth_name(x->auth));
		break;
	case STREAM_IN_AUTH_FAILED:
		tr(r, "auth-failed(%s)", x->method);
		break;
	case STREAM_IN_VERIFY:
		tr(r, "verify(%s->%s %s)", x->pair->from, x->pair->to, x->key);
		break;
	case STREAM_IN_NOTE:
		tr(r, "note(%s%s%s%s%s)", x->from != NULL ? x->from : "",
		    x->to != NULL ? "->" : "", x->to != NULL ? x->to : "",
		    x->from != NULL ? ": " : "", x->why);
		break;
	case STREAM_IN_STATE:
		tr(r, "state(%s)", stream_in_state_name(x->state));
		break;
	case STREAM_IN_BIDI:
		tr(r, "bidi");
		break;
	case STREAM_IN_CLOSE:
		tr(r, "%s(%s: %s)", x->yes ? "refuse" : "close",
		    cond_name(x->cond), x->why != NULL ? x->why : "");
		break;
	}
}

static void
trace_actions(struct run *r, const struct stream_in_actions *a)
{
	for (size_t i = 0; i < a->n; i++)
		tr(r, "%s", i > 0 ? " " : ""), trace_action(r, &a->a[i]);
	tr(r, "\n");
}

static void
ev_header(struct run *r, const char *attrs, struct stream_in_actions *a)
{
	char text[512];
	size_t used;

	xmlstream_free(r->xs);
	assert_non_null(r->xs = xmlstream_new(NULL));
	snprintf(text, sizeof(text), HDR_OPEN " %s>", attrs);
	assert_int_equal(xmlstream_feed(r->xs, text, strlen(text), &used),
	    XMLSTREAM_HEADER);
	stream_in_header(&r->s, &r->ctx, xmlstream_header(r->xs), a);
}

static void
ev_stanza(struct run *r, const struct xmlstream_element *e,
    struct stream_in_actions *a)
{
	struct xmpp_stanza_attrs st = { .name = e->node.name };
	struct stream_in_relay rel;

	st.from = xmlstream_node_attr(&e->node, "from");
	st.to = xmlstream_node_attr(&e->node, "to");
	if (stream_in_stanza(&r->s, &r->ctx, &st, &rel, a) == -1) {
		trace_actions(r, a);
		return;
	}
	assert_int_equal(a->n, 0);
	tr(r, "relay(%s %s->%s %s=%s)\n", config_face_name(rel.face),
	    rel.local, rel.remote, rel.rw.name, rel.rw.value);
}

static void
ev_element(struct run *r, const char *xml, struct stream_in_actions *a)
{
	const struct xmlstream_element *e;
	char text[1024], key[DIALBACK_KEY_SIZE];
	const char *k = strstr(xml, "{KEY}");
	size_t used;

	if (k != NULL) {
		assert_int_equal(dialback_key(SECRET, strlen(SECRET),
		    "remote.example", "corp.example", "s1", key,
		    sizeof(key)), 0);
		snprintf(text, sizeof(text), "%.*s%s%s", (int)(k - xml), xml,
		    key, k + 5);
	} else
		snprintf(text, sizeof(text), "%s", xml);
	assert_non_null(r->xs);
	assert_int_equal(xmlstream_feed(r->xs, text, strlen(text), &used),
	    XMLSTREAM_ELEMENT);
	e = xmlstream_element(r->xs);
	if (strcmp(e->node.ns, "jabber:server") == 0) {
		ev_stanza(r, e, a);
		return;
	}
	stream_in_element(&r->s, &r->ctx, e, a);
	trace_actions(r, a);
}

static void
ev_verdict(struct run *r, const char *ev, struct stream_in_actions *a)
{
	char from[JID_DOMAIN_MAX], to[JID_DOMAIN_MAX], v[16];
	enum xmpp_db_type t;

	if (sscanf(ev, "busy %253s %253s", from, to) == 2) {
		struct stream_pair *p = stream_in_pair(&r->s, from, to);

		assert_non_null(p);
		stream_in_verify_refused(&r->s, &r->ctx, p,
		    XMPP_STANZA_RESOURCE_CONSTRAINT,
		    "limit verifications reached", a);
		return;
	}
	assert_int_equal(sscanf(ev, "verified %253s %253s %15s", from, to, v),
	    3);
	assert_int_equal(xmpp_db_type_parse(v, &t), 0);
	stream_in_verified(&r->s, &r->ctx, from, to, t, "said so", a);
}

static void
run_event(struct run *r, const char *ev)
{
	struct stream_in_actions a;

	if (strncmp(ev, "H ", 2) == 0) {
		ev_header(r, ev + 2, &a);
		trace_actions(r, &a);
	} else if (strcmp(ev, "tls") == 0) {
		r->ctx.tls = true;
		stream_in_tls_done(&r->s, &r->ctx, &a);
		trace_actions(r, &a);
	} else if (ev[0] == '<')
		ev_element(r, ev, &a);
	else {
		ev_verdict(r, ev, &a);
		trace_actions(r, &a);
	}
}

static void
run_case(const struct icase *c, bool reverse)
{
	struct run *r;
	char *errors = NULL;

	assert_non_null(r = calloc(1, sizeof(*r)));
	r->c = c;
	r->config = config_load_buffer("test", config_text,
	    strlen(config_text), false, &errors);
	if (r->config == NULL)
		fail_msg("config: %s", errors != NULL ? errors : "?");
	if (reverse) {
		snprintf(r->local, sizeof(r->local), "corp.example");
		snprintf(r->remote, sizeof(r->remote), "remote.example");
		policy_settings_init(&r->policy);
		assert_int_equal(stream_in_init_reverse(&r->s, c->face,
		    r->local, r->remote, &r->policy,
		    sizeof(struct stream_pair), LEG_AUTH_DIALBACK), 0);
		/* the elements' namespaces come from a peer's header */
		assert_non_null(r->xs = xmlstream_new(NULL));
		assert_int_equal(xmlstream_feed(r->xs, HDR_OPEN ">",
		    strlen(HDR_OPEN ">"), &(size_t){ 0 }), XMLSTREAM_HEADER);
	} else
		stream_in_init(&r->s, c->face, r->local, r->remote, &r->policy,
		    sizeof(struct stream_pair));
	r->ctx = (struct stream_in_ctx){ .config = r->config, .tls = c->tls,
	    .has_cert = ctx_has_cert, .peer_cert_valid = ctx_peer_cert_valid,
	    .authenticated = ctx_authenticated, .arg = r };
	for (size_t i = 0; i < nitems(c->events) && c->events[i] != NULL; i++)
		run_event(r, c->events[i]);
	assert_string_equal(r->trace, c->expect);
	assert_string_equal(stream_in_state_name(r->s.state),
	    stream_in_state_name(c->state));
	stream_in_clear(&r->s);
	xmlstream_free(r->xs);
	config_unref(r->config);
	free(r);
}

static void
test_case(void **state)
{
	run_case(*state, false);
}

static void
test_reverse_case(void **state)
{
	run_case(*state, true);
}

int
main(void)
{
	struct CMUnitTest tests[nitems(cases) + nitems(reverse_cases)];
	size_t n = 0;

	for (size_t i = 0; i < nitems(cases); i++) {
		tests[n++] = (struct CMUnitTest){ cases[i].name, test_case,
		    NULL, NULL, (void *)(uintptr_t)&cases[i] };
	}
	for (size_t i = 0; i < nitems(reverse_cases); i++) {
		tests[n++] = (struct CMUnitTest){ reverse_cases[i].name,
		    test_reverse_case, NULL, NULL,
		    (void *)(uintptr_t)&reverse_cases[i] };
	}
	return cmocka_run_group_tests_name("stream_in", tests, NULL, NULL);
}
