/*
 * Unit tests for xmpp: name tables, the buffer, and byte-exact rendering.
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <expat.h>

#include "util.h"
#include "xmpp.h"

#define SE	"urn:ietf:params:xml:ns:xmpp-streams"
#define ST	"urn:ietf:params:xml:ns:xmpp-stanzas"
#define HDR	"<?xml version='1.0'?><stream:stream xmlns='jabber:server' " \
		"xmlns:stream='http://etherx.jabber.org/streams'"

static int
buf_setup(void **state)
{
	*state = xmpp_buf_new();
	return *state == NULL ? -1 : 0;
}

static int
buf_teardown(void **state)
{
	xmpp_buf_free(*state);
	return 0;
}

/* Assert that buf holds exactly want, then empty it. */
static void
expect_buf(struct xmpp_buf *buf, const char *want)
{
	assert_string_equal(xmpp_buf_data(buf), want);
	assert_int_equal(xmpp_buf_len(buf), strlen(want));
	xmpp_buf_reset(buf);
}

/*
 * Name tables.
 */

static const struct {
	enum xmpp_stream_error	 e;
	const char		*name;
} stream_errors[] = {
	{ XMPP_STREAM_BAD_FORMAT, "bad-format" },
	{ XMPP_STREAM_BAD_NAMESPACE_PREFIX, "bad-namespace-prefix" },
	{ XMPP_STREAM_CONFLICT, "conflict" },
	{ XMPP_STREAM_CONNECTION_TIMEOUT, "connection-timeout" },
	{ XMPP_STREAM_HOST_GONE, "host-gone" },
	{ XMPP_STREAM_HOST_UNKNOWN, "host-unknown" },
	{ XMPP_STREAM_IMPROPER_ADDRESSING, "improper-addressing" },
	{ XMPP_STREAM_INTERNAL_SERVER_ERROR, "internal-server-error" },
	{ XMPP_STREAM_INVALID_FROM, "invalid-from" },
	{ XMPP_STREAM_INVALID_NAMESPACE, "invalid-namespace" },
	{ XMPP_STREAM_INVALID_XML, "invalid-xml" },
	{ XMPP_STREAM_NOT_AUTHORIZED, "not-authorized" },
	{ XMPP_STREAM_NOT_WELL_FORMED, "not-well-formed" },
	{ XMPP_STREAM_POLICY_VIOLATION, "policy-violation" },
	{ XMPP_STREAM_REMOTE_CONNECTION_FAILED, "remote-connection-failed" },
	{ XMPP_STREAM_RESET, "reset" },
	{ XMPP_STREAM_RESOURCE_CONSTRAINT, "resource-constraint" },
	{ XMPP_STREAM_RESTRICTED_XML, "restricted-xml" },
	{ XMPP_STREAM_SEE_OTHER_HOST, "see-other-host" },
	{ XMPP_STREAM_SYSTEM_SHUTDOWN, "system-shutdown" },
	{ XMPP_STREAM_UNDEFINED_CONDITION, "undefined-condition" },
	{ XMPP_STREAM_UNSUPPORTED_ENCODING, "unsupported-encoding" },
	{ XMPP_STREAM_UNSUPPORTED_FEATURE, "unsupported-feature" },
	{ XMPP_STREAM_UNSUPPORTED_STANZA_TYPE, "unsupported-stanza-type" },
	{ XMPP_STREAM_UNSUPPORTED_VERSION, "unsupported-version" },
};

static void
test_stream_error_names(void **state)
{
	enum xmpp_stream_error e;

	(void)state;
	assert_int_equal(nitems(stream_errors), 25);
	assert_int_equal(XMPP_STREAM_ERROR_COUNT, nitems(stream_errors));
	for (size_t i = 0; i < nitems(stream_errors); i++) {
		assert_string_equal(xmpp_stream_error_name(stream_errors[i].e),
		    stream_errors[i].name);
		assert_int_equal(xmpp_stream_error_parse(stream_errors[i].name,
		    &e), 0);
		assert_int_equal(e, stream_errors[i].e);
	}
	assert_null(xmpp_stream_error_name(XMPP_STREAM_ERROR_COUNT));
	assert_int_equal(xmpp_stream_error_parse("Host-Unknown", &e), -1);
	assert_int_equal(xmpp_stream_error_parse("xml-not-well-formed", &e),
	    -1);
	assert_int_equal(xmpp_stream_error_parse("", &e), -1);
	assert_int_equal(xmpp_stream_error_parse(NULL, &e), -1);
}

static const struct {
	enum xmpp_stanza_error	 e;
	const char		*name;
	const char		*type;
} stanza_errors[] = {
	{ XMPP_STANZA_BAD_REQUEST, "bad-request", "modify" },
	{ XMPP_STANZA_CONFLICT, "conflict", "cancel" },
	{ XMPP_STANZA_FEATURE_NOT_IMPLEMENTED, "feature-not-implemented",
	    "cancel" },
	{ XMPP_STANZA_FORBIDDEN, "forbidden", "auth" },
	{ XMPP_STANZA_GONE, "gone", "cancel" },
	{ XMPP_STANZA_INTERNAL_SERVER_ERROR, "internal-server-error",
	    "cancel" },
	{ XMPP_STANZA_ITEM_NOT_FOUND, "item-not-found", "cancel" },
	{ XMPP_STANZA_JID_MALFORMED, "jid-malformed", "modify" },
	{ XMPP_STANZA_NOT_ACCEPTABLE, "not-acceptable", "modify" },
	{ XMPP_STANZA_NOT_ALLOWED, "not-allowed", "cancel" },
	{ XMPP_STANZA_NOT_AUTHORIZED, "not-authorized", "auth" },
	{ XMPP_STANZA_POLICY_VIOLATION, "policy-violation", "modify" },
	{ XMPP_STANZA_RECIPIENT_UNAVAILABLE, "recipient-unavailable",
	    "wait" },
	{ XMPP_STANZA_REDIRECT, "redirect", "modify" },
	{ XMPP_STANZA_REGISTRATION_REQUIRED, "registration-required",
	    "auth" },
	{ XMPP_STANZA_REMOTE_SERVER_NOT_FOUND, "remote-server-not-found",
	    "cancel" },
	{ XMPP_STANZA_REMOTE_SERVER_TIMEOUT, "remote-server-timeout",
	    "wait" },
	{ XMPP_STANZA_RESOURCE_CONSTRAINT, "resource-constraint", "wait" },
	{ XMPP_STANZA_SERVICE_UNAVAILABLE, "service-unavailable", "cancel" },
	{ XMPP_STANZA_SUBSCRIPTION_REQUIRED, "subscription-required",
	    "auth" },
	{ XMPP_STANZA_UNDEFINED_CONDITION, "undefined-condition", "cancel" },
	{ XMPP_STANZA_UNEXPECTED_REQUEST, "unexpected-request", "wait" },
};

static void
test_stanza_error_names(void **state)
{
	enum xmpp_stanza_error e;

	(void)state;
	assert_int_equal(nitems(stanza_errors), 22);
	assert_int_equal(XMPP_STANZA_ERROR_COUNT, nitems(stanza_errors));
	for (size_t i = 0; i < nitems(stanza_errors); i++) {
		assert_string_equal(xmpp_stanza_error_name(stanza_errors[i].e),
		    stanza_errors[i].name);
		assert_int_equal(xmpp_stanza_error_parse(stanza_errors[i].name,
		    &e), 0);
		assert_int_equal(e, stanza_errors[i].e);
		assert_string_equal(xmpp_error_type_name(
		    xmpp_stanza_error_type(e)), stanza_errors[i].type);
	}
	assert_null(xmpp_stanza_error_name(XMPP_STANZA_ERROR_COUNT));
	assert_int_equal(xmpp_stanza_error_type(XMPP_STANZA_ERROR_COUNT),
	    XMPP_ERROR_CANCEL);
	assert_int_equal(xmpp_stanza_error_parse("host-unknown", &e), -1);
	assert_int_equal(xmpp_stanza_error_parse(NULL, &e), -1);
}

static void
test_small_tables(void **state)
{
	static const char *const types[] = {
		"auth", "cancel", "continue", "modify", "wait"
	};
	static const char *const sasl[] = {
		"aborted", "account-disabled", "credentials-expired",
		"encryption-required", "incorrect-encoding", "invalid-authzid",
		"invalid-mechanism", "malformed-request", "mechanism-too-weak",
		"not-authorized", "temporary-auth-failure"
	};
	static const char *const db[] = { "", "valid", "invalid", "error" };
	enum xmpp_error_type t;
	enum xmpp_sasl_error s;
	enum xmpp_db_type d;

	(void)state;
	assert_int_equal(XMPP_ERROR_TYPE_COUNT, nitems(types));
	for (size_t i = 0; i < nitems(types); i++) {
		assert_string_equal(xmpp_error_type_name(i), types[i]);
		assert_int_equal(xmpp_error_type_parse(types[i], &t), 0);
		assert_int_equal(t, i);
	}
	assert_null(xmpp_error_type_name(XMPP_ERROR_TYPE_COUNT));
	assert_int_equal(xmpp_error_type_parse("Cancel", &t), -1);

	assert_int_equal(XMPP_SASL_ERROR_COUNT, nitems(sasl));
	for (size_t i = 0; i < nitems(sasl); i++) {
		assert_string_equal(xmpp_sasl_error_name(i), sasl[i]);
		assert_int_equal(xmpp_sasl_error_parse(sasl[i], &s), 0);
		assert_int_equal(s, i);
	}
	assert_null(xmpp_sasl_error_name(XMPP_SASL_ERROR_COUNT));
	assert_int_equal(xmpp_sasl_error_parse("bad-auth", &s), -1);

	assert_int_equal(XMPP_DB_TYPE_COUNT, nitems(db));
	for (size_t i = 0; i < nitems(db); i++) {
		assert_string_equal(xmpp_db_type_name(i), db[i]);
		assert_int_equal(xmpp_db_type_parse(db[i], &d), 0);
		assert_int_equal(d, i);
	}
	assert_int_equal(xmpp_db_type_parse(NULL, &d), 0);
	assert_int_equal(d, XMPP_DB_NONE);
	assert_int_equal(xmpp_db_type_parse("VALID", &d), -1);
	assert_null(xmpp_db_type_name(XMPP_DB_TYPE_COUNT));
}

/*
 * The buffer and escaping.
 */

static void
test_buf(void **state)
{
	struct xmpp_buf *buf = *state;
	char big[5000];

	assert_string_equal(xmpp_buf_data(buf), "");
	assert_int_equal(xmpp_buf_len(buf), 0);
	assert_int_equal(xmpp_buf_append(buf, "ab\0c", 4), 0);
	assert_int_equal(xmpp_buf_len(buf), 4);
	assert_memory_equal(xmpp_buf_data(buf), "ab\0c", 5);
	xmpp_buf_reset(buf);
	assert_int_equal(xmpp_buf_printf(buf, "%s=%d", "n", 42), 0);
	assert_int_equal(xmpp_buf_append(buf, "", 0), 0);
	expect_buf(buf, "n=42");

	/* Growth past the first allocation, in both appenders. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(xmpp_buf_printf(buf, "<%s>", big), 0);
	assert_int_equal(xmpp_buf_append(buf, big, strlen(big)), 0);
	assert_int_equal(xmpp_buf_len(buf), 2 * strlen(big) + 2);
	assert_int_equal(xmpp_buf_data(buf)[0], '<');
	assert_int_equal(xmpp_buf_data(buf)[strlen(big) + 1], '>');
	assert_int_equal(xmpp_buf_data(buf)[xmpp_buf_len(buf)], '\0');
	xmpp_buf_reset(buf);

	xmpp_buf_free(NULL);
}

static const struct {
	const char	*in;
	const char	*out;	/* NULL: refused */
} escapes[] = {
	{ "", "" },
	{ "plain.example", "plain.example" },
	{ "a&b", "a&amp;b" },
	{ "<x>", "&lt;x&gt;" },
	{ "it's \"q\"", "it&apos;s &quot;q&quot;" },
	{ "'/><evil xmlns='x", "&apos;/&gt;&lt;evil xmlns=&apos;x" },
	{ "&amp;", "&amp;amp;" },
	{ "t\tl\nc\r", "t&#9;l&#10;c&#13;" },
	{ "caf\xc3\xa9 \xe2\x98\x83", "caf\xc3\xa9 \xe2\x98\x83" },
	{ "del\x7f", "del\x7f" },
	{ "bell\x07", NULL },
	{ "esc\x1b[0m", NULL },
};

static void
test_escape(void **state)
{
	struct xmpp_buf *buf = *state;

	for (size_t i = 0; i < nitems(escapes); i++) {
		assert_int_equal(xmpp_buf_append(buf, "[", 1), 0);
		if (escapes[i].out == NULL) {
			assert_int_equal(xmpp_buf_append_escaped(buf,
			    escapes[i].in, strlen(escapes[i].in)), -1);
			expect_buf(buf, "[");
			continue;
		}
		assert_int_equal(xmpp_buf_append_escaped(buf, escapes[i].in,
		    strlen(escapes[i].in)), 0);
		assert_string_equal(xmpp_buf_data(buf) + 1, escapes[i].out);
		xmpp_buf_reset(buf);
	}
	/* An embedded NUL is refused, the prefix before it rolled back. */
	assert_int_equal(xmpp_buf_append_escaped(buf, "a&b\0c", 5), -1);
	expect_buf(buf, "");
	/* len bounds the input. */
	assert_int_equal(xmpp_buf_append_escaped(buf, "a<b", 2), 0);
	expect_buf(buf, "a&lt;");
}

/*
 * Rendering.
 */

static void
test_header(void **state)
{
	struct xmpp_buf *buf = *state;
	struct xmpp_stream_header h = {
		.from = "corp.example", .to = "remote.example",
		.id = "c2f1", .version = "1.0", .dialback = true
	};

	assert_int_equal(xmpp_render_header(buf, &h), 0);
	expect_buf(buf, HDR " xmlns:db='jabber:server:dialback' "
	    "from='corp.example' to='remote.example' id='c2f1' "
	    "version='1.0'>");

	/* An initial header: no id yet, no dialback declaration. */
	h = (struct xmpp_stream_header){ .from = "corp.example",
	    .to = "remote.example", .version = "1.0" };
	assert_int_equal(xmpp_render_header(buf, &h), 0);
	expect_buf(buf, HDR " from='corp.example' to='remote.example' "
	    "version='1.0'>");

	h = (struct xmpp_stream_header){ 0 };
	assert_int_equal(xmpp_render_header(buf, &h), 0);
	expect_buf(buf, HDR ">");

	/* Echoing a hostile 'to' back cannot break out of the attribute. */
	h = (struct xmpp_stream_header){ .from = "a'b", .to = "x'><y z='" };
	assert_int_equal(xmpp_render_header(buf, &h), 0);
	expect_buf(buf, HDR " from='a&apos;b' to='x&apos;&gt;&lt;y z=&apos;'>");

	/* A failure leaves what was there before. */
	assert_int_equal(xmpp_buf_append(buf, "kept", 4), 0);
	h = (struct xmpp_stream_header){ .from = "ok", .to = "bad\001" };
	assert_int_equal(xmpp_render_header(buf, &h), -1);
	expect_buf(buf, "kept");

	assert_int_equal(xmpp_render_close(buf), 0);
	expect_buf(buf, "</stream:stream>");
}

static const struct {
	struct xmpp_features	 f;
	const char		*want;
} features[] = {
	{ { 0 }, "<stream:features/>" },
	{ { .starttls = true },
	  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	  "</stream:features>" },
	{ { .starttls = true, .starttls_required = true },
	  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
	  "<required/></starttls></stream:features>" },
	{ { .starttls_required = true },
	  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
	  "<required/></starttls></stream:features>" },
	{ { .sasl_external = true },
	  "<stream:features><mechanisms "
	  "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL"
	  "</mechanism></mechanisms></stream:features>" },
	{ { .dialback = true },
	  "<stream:features><dialback xmlns='urn:xmpp:features:dialback'>"
	  "<errors/></dialback></stream:features>" },
	{ { .sasl_external = true, .dialback = true },
	  "<stream:features><mechanisms "
	  "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL"
	  "</mechanism></mechanisms><dialback "
	  "xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
	  "</stream:features>" },
	{ { .starttls = true, .dialback = true },
	  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	  "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
	  "</stream:features>" },
	{ { .starttls = true, .starttls_required = true,
	    .sasl_external = true, .dialback = true },
	  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
	  "<required/></starttls><mechanisms "
	  "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL"
	  "</mechanism></mechanisms><dialback "
	  "xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
	  "</stream:features>" },
	{ { .bidi = true },
	  "<stream:features><bidi xmlns='urn:xmpp:features:bidi'/>"
	  "</stream:features>" },
	{ { .starttls = true, .dialback = true, .bidi = true },
	  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	  "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
	  "<bidi xmlns='urn:xmpp:features:bidi'/></stream:features>" },
};

static void
test_features(void **state)
{
	struct xmpp_buf *buf = *state;

	for (size_t i = 0; i < nitems(features); i++) {
		assert_int_equal(xmpp_render_features(buf, &features[i].f), 0);
		expect_buf(buf, features[i].want);
	}
}

static void
test_tls_sasl(void **state)
{
	struct xmpp_buf *buf = *state;

	assert_int_equal(xmpp_render_starttls(buf), 0);
	expect_buf(buf, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	assert_int_equal(xmpp_render_tls_proceed(buf), 0);
	expect_buf(buf, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	assert_int_equal(xmpp_render_tls_failure(buf), 0);
	expect_buf(buf, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	assert_int_equal(xmpp_render_bidi(buf), 0);
	expect_buf(buf, "<bidi xmlns='urn:xmpp:bidi'/>");

	assert_int_equal(xmpp_render_sasl_auth_external(buf, NULL), 0);
	expect_buf(buf, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
	    "mechanism='EXTERNAL'>=</auth>");
	/* base64 of "corp.example" (XEP-0178), and of 1- and 2-byte tails. */
	assert_int_equal(xmpp_render_sasl_auth_external(buf, "corp.example"),
	    0);
	expect_buf(buf, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
	    "mechanism='EXTERNAL'>Y29ycC5leGFtcGxl</auth>");
	assert_int_equal(xmpp_render_sasl_auth_external(buf, "abc.example"),
	    0);
	expect_buf(buf, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
	    "mechanism='EXTERNAL'>YWJjLmV4YW1wbGU=</auth>");
	assert_int_equal(xmpp_render_sasl_auth_external(buf, "ab.example"), 0);
	expect_buf(buf, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
	    "mechanism='EXTERNAL'>YWIuZXhhbXBsZQ==</auth>");

	assert_int_equal(xmpp_render_sasl_success(buf), 0);
	expect_buf(buf, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
	assert_int_equal(xmpp_render_sasl_failure(buf,
	    XMPP_SASL_NOT_AUTHORIZED), 0);
	expect_buf(buf, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
	    "<not-authorized/></failure>");
	assert_int_equal(xmpp_render_sasl_failure(buf, XMPP_SASL_ERROR_COUNT),
	    -1);
	expect_buf(buf, "");
}

static void
test_stream_error(void **state)
{
	struct xmpp_buf *buf = *state;
	char want[256];

	/* Every condition but see-other-host renders. */
	for (size_t i = 0; i < nitems(stream_errors); i++) {
		if (stream_errors[i].e == XMPP_STREAM_SEE_OTHER_HOST)
			continue;
		assert_int_equal(xmpp_render_stream_error(buf,
		    stream_errors[i].e, NULL), 0);
		snprintf(want, sizeof(want), "<stream:error><%s xmlns='" SE
		    "'/></stream:error></stream:stream>",
		    stream_errors[i].name);
		expect_buf(buf, want);
	}

	assert_int_equal(xmpp_render_stream_error(buf,
	    XMPP_STREAM_HOST_UNKNOWN, "no such domain: evil<x>&'"), 0);
	expect_buf(buf, "<stream:error><host-unknown xmlns='" SE "'/>"
	    "<text xmlns='" SE "' xml:lang='en'>no such domain: "
	    "evil&lt;x&gt;&amp;&apos;</text></stream:error></stream:stream>");

	assert_int_equal(xmpp_render_stream_error(buf,
	    XMPP_STREAM_SEE_OTHER_HOST, NULL), -1);
	assert_int_equal(xmpp_render_stream_error(buf,
	    XMPP_STREAM_ERROR_COUNT, NULL), -1);
	assert_int_equal(xmpp_buf_append(buf, "x", 1), 0);
	assert_int_equal(xmpp_render_stream_error(buf,
	    XMPP_STREAM_POLICY_VIOLATION, "bad\x02text"), -1);
	expect_buf(buf, "x");
}

#define KEY	"37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"

static void
test_dialback(void **state)
{
	struct xmpp_buf *buf = *state;

	/* The requests of XEP-0185's example. */
	assert_int_equal(xmpp_render_db_result(buf, "example.org",
	    "xmpp.example.com", KEY), 0);
	expect_buf(buf, "<db:result from='example.org' to='xmpp.example.com'>"
	    KEY "</db:result>");
	assert_int_equal(xmpp_render_db_verify(buf, "xmpp.example.com",
	    "example.org", "D60000229F", KEY), 0);
	expect_buf(buf, "<db:verify from='xmpp.example.com' to='example.org' "
	    "id='D60000229F'>" KEY "</db:verify>");

	/* Answers. */
	assert_int_equal(xmpp_render_db_result_reply(buf, "montague.example",
	    "capulet.example", XMPP_DB_VALID, XMPP_STANZA_ITEM_NOT_FOUND), 0);
	expect_buf(buf, "<db:result from='montague.example' "
	    "to='capulet.example' type='valid'/>");
	assert_int_equal(xmpp_render_db_result_reply(buf, "montague.example",
	    "capulet.example", XMPP_DB_INVALID, 0), 0);
	expect_buf(buf, "<db:result from='montague.example' "
	    "to='capulet.example' type='invalid'/>");
	assert_int_equal(xmpp_render_db_result_reply(buf, "montague.example",
	    "capulet.example", XMPP_DB_ERROR, XMPP_STANZA_ITEM_NOT_FOUND), 0);
	expect_buf(buf, "<db:result from='montague.example' "
	    "to='capulet.example' type='error'><error type='cancel'>"
	    "<item-not-found xmlns='" ST "'/></error></db:result>");
	assert_int_equal(xmpp_render_db_result_reply(buf, "montague.example",
	    "capulet.example", XMPP_DB_ERROR,
	    XMPP_STANZA_REMOTE_SERVER_TIMEOUT), 0);
	expect_buf(buf, "<db:result from='montague.example' "
	    "to='capulet.example' type='error'><error type='wait'>"
	    "<remote-server-timeout xmlns='" ST "'/></error></db:result>");

	assert_int_equal(xmpp_render_db_verify_reply(buf, "montague.example",
	    "capulet.example", "417GAF25", XMPP_DB_VALID, 0), 0);
	expect_buf(buf, "<db:verify from='montague.example' "
	    "to='capulet.example' id='417GAF25' type='valid'/>");
	assert_int_equal(xmpp_render_db_verify_reply(buf, "montague.example",
	    "capulet.example", "417GAF25", XMPP_DB_INVALID, 0), 0);
	expect_buf(buf, "<db:verify from='montague.example' "
	    "to='capulet.example' id='417GAF25' type='invalid'/>");
	assert_int_equal(xmpp_render_db_verify_reply(buf, "montague.example",
	    "capulet.example", "417GAF25", XMPP_DB_ERROR,
	    XMPP_STANZA_ITEM_NOT_FOUND), 0);
	expect_buf(buf, "<db:verify from='montague.example' "
	    "to='capulet.example' id='417GAF25' type='error'>"
	    "<error type='cancel'><item-not-found xmlns='" ST "'/></error>"
	    "</db:verify>");

	/* Hostile values are escaped: an echoed id cannot add attributes. */
	assert_int_equal(xmpp_render_db_verify_reply(buf, "a.example",
	    "b.example", "x' type='valid", XMPP_DB_INVALID, 0), 0);
	expect_buf(buf, "<db:verify from='a.example' to='b.example' "
	    "id='x&apos; type=&apos;valid' type='invalid'/>");

	/* Refusals leave the buffer alone. */
	assert_int_equal(xmpp_render_db_result_reply(buf, "a", "b",
	    XMPP_DB_NONE, 0), -1);
	assert_int_equal(xmpp_render_db_result_reply(buf, "a", "b",
	    XMPP_DB_ERROR, XMPP_STANZA_ERROR_COUNT), -1);
	assert_int_equal(xmpp_render_db_verify_reply(buf, "a", "b", NULL,
	    XMPP_DB_VALID, 0), -1);
	assert_int_equal(xmpp_render_db_result(buf, NULL, "b", KEY), -1);
	assert_int_equal(xmpp_render_db_verify(buf, "a", "b", NULL, KEY), -1);
	assert_int_equal(xmpp_render_db_result(buf, "a", "b", NULL), -1);
	expect_buf(buf, "");
}

static const struct {
	const char	*name;
	const char	*type;
	bool		 may;
} bounces[] = {
	{ "message", NULL, true },
	{ "message", "normal", true },
	{ "message", "chat", true },
	{ "message", "groupchat", true },
	{ "message", "headline", true },
	{ "message", "bogus", true },
	{ "message", "error", false },
	{ "iq", "get", true },
	{ "iq", "set", true },
	{ "iq", "result", false },
	{ "iq", "error", false },
	{ "iq", NULL, false },
	{ "iq", "bogus", false },
	{ "presence", "subscribe", true },
	{ "presence", NULL, false },
	{ "presence", "unavailable", false },
	{ "presence", "probe", false },
	{ "presence", "subscribed", false },
	{ "presence", "unsubscribe", false },
	{ "presence", "unsubscribed", false },
	{ "presence", "error", false },
	{ "Message", NULL, false },
	{ "db:result", NULL, false },
	{ "stream:error", NULL, false },
	{ NULL, NULL, false },
};

static void
test_may_bounce(void **state)
{
	(void)state;
	for (size_t i = 0; i < nitems(bounces); i++) {
		if (xmpp_stanza_may_bounce(bounces[i].name, bounces[i].type) !=
		    bounces[i].may)
			fail_msg("may_bounce(%s, %s) != %d",
			    bounces[i].name ? bounces[i].name : "NULL",
			    bounces[i].type ? bounces[i].type : "NULL",
			    bounces[i].may);
	}
}

static void
test_bounce(void **state)
{
	struct xmpp_buf *buf = *state;
	struct xmpp_stanza_attrs st = {
		.name = "message", .from = "alice@corp.example/desk",
		.to = "bob@remote.example", .id = "m1", .type = "chat"
	};
	static const char body[] = "<body>hi &amp; bye</body>";

	assert_int_equal(xmpp_render_bounce(buf, &st,
	    XMPP_STANZA_REMOTE_SERVER_NOT_FOUND, NULL, NULL, NULL, 0), 0);
	expect_buf(buf, "<message from='bob@remote.example' "
	    "to='alice@corp.example/desk' id='m1' type='error'>"
	    "<error type='cancel'><remote-server-not-found xmlns='" ST "'/>"
	    "</error></message>");

	/* With the original content, 'by' and a text. */
	assert_int_equal(xmpp_render_bounce(buf, &st,
	    XMPP_STANZA_REMOTE_SERVER_TIMEOUT, "corp.example",
	    "no answer from remote.example", body, strlen(body)), 0);
	expect_buf(buf, "<message from='bob@remote.example' "
	    "to='alice@corp.example/desk' id='m1' type='error'>"
	    "<body>hi &amp; bye</body><error type='wait' by='corp.example'>"
	    "<remote-server-timeout xmlns='" ST "'/><text xmlns='" ST "' "
	    "xml:lang='en'>no answer from remote.example</text></error>"
	    "</message>");

	/* A message without id or type. */
	st = (struct xmpp_stanza_attrs){ .name = "message",
	    .from = "a@corp.example", .to = "b@remote.example" };
	assert_int_equal(xmpp_render_bounce(buf, &st,
	    XMPP_STANZA_POLICY_VIOLATION, NULL, NULL, NULL, 0), 0);
	expect_buf(buf, "<message from='b@remote.example' to='a@corp.example' "
	    "type='error'><error type='modify'><policy-violation xmlns='" ST
	    "'/></error></message>");

	st = (struct xmpp_stanza_attrs){ .name = "iq",
	    .from = "corp.example", .to = "remote.example", .id = "q7",
	    .type = "get" };
	assert_int_equal(xmpp_render_bounce(buf, &st,
	    XMPP_STANZA_SERVICE_UNAVAILABLE, NULL, NULL, NULL, 0), 0);
	expect_buf(buf, "<iq from='remote.example' to='corp.example' id='q7' "
	    "type='error'><error type='cancel'><service-unavailable xmlns='"
	    ST "'/></error></iq>");

	st = (struct xmpp_stanza_attrs){ .name = "presence",
	    .from = "a@corp.example", .to = "b@remote.example",
	    .type = "subscribe" };
	assert_int_equal(xmpp_render_bounce(buf, &st,
	    XMPP_STANZA_REMOTE_SERVER_NOT_FOUND, NULL, NULL, NULL, 0), 0);
	expect_buf(buf, "<presence from='b@remote.example' "
	    "to='a@corp.example' type='error'><error type='cancel'>"
	    "<remote-server-not-found xmlns='" ST "'/></error></presence>");

	/* Hostile attribute values stay inside their attributes. */
	st = (struct xmpp_stanza_attrs){ .name = "message",
	    .from = "a@corp.example/'><x/>", .to = "\"b\"@remote.example",
	    .id = "1' type='chat", .type = "normal" };
	assert_int_equal(xmpp_render_bounce(buf, &st,
	    XMPP_STANZA_SERVICE_UNAVAILABLE, NULL, "</text><evil/>", NULL, 0),
	    0);
	expect_buf(buf, "<message from='&quot;b&quot;@remote.example' "
	    "to='a@corp.example/&apos;&gt;&lt;x/&gt;' "
	    "id='1&apos; type=&apos;chat' type='error'><error type='cancel'>"
	    "<service-unavailable xmlns='" ST "'/><text xmlns='" ST "' "
	    "xml:lang='en'>&lt;/text&gt;&lt;evil/&gt;</text></error>"
	    "</message>");
}

static void
test_bounce_refused(void **state)
{
	struct xmpp_buf *buf = *state;
	struct xmpp_stanza_attrs st;
	static const struct xmpp_stanza_attrs refused[] = {
		{ "message", "a@c.example", "b@r.example", "1", "error" },
		{ "iq", "a@c.example", "b@r.example", "1", "result" },
		{ "presence", "a@c.example", "b@r.example", NULL, NULL },
		{ "presence", "a@c.example", "b@r.example", NULL, "probe" },
		{ "message", NULL, "b@r.example", "1", "chat" },
		{ "message", "a@c.example", NULL, "1", "chat" },
		{ "evil><x", "a@c.example", "b@r.example", "1", NULL },
		{ NULL, "a@c.example", "b@r.example", "1", NULL },
	};

	assert_int_equal(xmpp_buf_append(buf, "kept", 4), 0);
	for (size_t i = 0; i < nitems(refused); i++)
		assert_int_equal(xmpp_render_bounce(buf, &refused[i],
		    XMPP_STANZA_SERVICE_UNAVAILABLE, NULL, NULL, NULL, 0), -1);
	st = (struct xmpp_stanza_attrs){ .name = "message",
	    .from = "a@c.example", .to = "b@r.example" };
	assert_int_equal(xmpp_render_bounce(buf, &st, XMPP_STANZA_ERROR_COUNT,
	    NULL, NULL, NULL, 0), -1);
	/* Failing late (in the text) still rolls everything back. */
	assert_int_equal(xmpp_render_bounce(buf, &st,
	    XMPP_STANZA_SERVICE_UNAVAILABLE, NULL, "ctl\x01", NULL, 0), -1);
	expect_buf(buf, "kept");
}

/*
 * Round trip through a real parser: what a peer's namespace-aware expat
 * reads back from our bytes. Record the attributes of the first element at
 * depth 1 (below the stream) and its namespaced name.
 */
struct parsed {
	int	 depth;
	bool	 seen;
	char	 name[128];
	char	 attrs[8][2][256];	/* name, value */
	int	 nattrs;
	char	 text[256];		/* character data at depth 4 */
};

static void XMLCALL
parsed_start(void *arg, const XML_Char *name, const XML_Char **atts)
{
	struct parsed *p = arg;

	if (++p->depth != 2 || p->seen)
		return;
	p->seen = true;
	snprintf(p->name, sizeof(p->name), "%s", name);
	for (int i = 0; atts[i] != NULL && p->nattrs < 8; i += 2, p->nattrs++) {
		snprintf(p->attrs[p->nattrs][0], 256, "%s", atts[i]);
		snprintf(p->attrs[p->nattrs][1], 256, "%s", atts[i + 1]);
	}
}

static void XMLCALL
parsed_end(void *arg, const XML_Char *name)
{
	struct parsed *p = arg;

	(void)name;
	p->depth--;
}

static void XMLCALL
parsed_chars(void *arg, const XML_Char *s, int len)
{
	struct parsed *p = arg;
	size_t have = strlen(p->text);

	if (p->depth == 4 && have + (size_t)len < sizeof(p->text))
		memcpy(p->text + have, s, (size_t)len);
}

/* Parse header + element + close; fail the test unless well-formed. */
static void
parse_stanza(const char *element, struct parsed *p)
{
	struct xmpp_stream_header h = { .from = "a", .to = "b",
	    .version = "1.0", .dialback = true };
	struct xmpp_buf *doc = xmpp_buf_new();
	XML_Parser x = XML_ParserCreateNS(NULL, ' ');

	assert_non_null(doc);
	assert_non_null(x);
	memset(p, 0, sizeof(*p));
	assert_int_equal(xmpp_render_header(doc, &h), 0);
	assert_int_equal(xmpp_buf_append(doc, element, strlen(element)), 0);
	assert_int_equal(xmpp_render_close(doc), 0);
	XML_SetUserData(x, p);
	XML_SetElementHandler(x, parsed_start, parsed_end);
	XML_SetCharacterDataHandler(x, parsed_chars);
	if (XML_Parse(x, xmpp_buf_data(doc), (int)xmpp_buf_len(doc), 1) !=
	    XML_STATUS_OK)
		fail_msg("not well-formed (%s): %s",
		    XML_ErrorString(XML_GetErrorCode(x)), xmpp_buf_data(doc));
	XML_ParserFree(x);
	xmpp_buf_free(doc);
	assert_true(p->seen);
}

static const char *
parsed_attr(const struct parsed *p, const char *name)
{
	for (int i = 0; i < p->nattrs; i++)
		if (strcmp(p->attrs[i][0], name) == 0)
			return p->attrs[i][1];
	return NULL;
}

static const char *const hostile[] = {
	"a@corp.example/'><x/>",
	"\"b\"@remote.example",
	"1' type='chat",
	"tab\there\nnl\rcr",
	"&amp;&lt;]]>",
	"caf\xc3\xa9@\xe2\x98\x83.example",
	"   spaced   ",
};

static void
test_round_trip(void **state)
{
	struct xmpp_buf *buf = *state;
	struct xmpp_stanza_attrs st;
	struct parsed p;

	for (size_t i = 0; i < nitems(hostile); i++) {
		st = (struct xmpp_stanza_attrs){ .name = "message",
		    .from = hostile[i], .to = hostile[(i + 1) % nitems(hostile)],
		    .id = hostile[(i + 2) % nitems(hostile)], .type = "chat" };
		assert_int_equal(xmpp_render_bounce(buf, &st,
		    XMPP_STANZA_SERVICE_UNAVAILABLE, hostile[i], hostile[i],
		    NULL, 0), 0);
		parse_stanza(xmpp_buf_data(buf), &p);
		xmpp_buf_reset(buf);
		assert_string_equal(p.name, "jabber:server message");
		assert_int_equal(p.nattrs, 4);
		assert_string_equal(parsed_attr(&p, "from"), st.to);
		assert_string_equal(parsed_attr(&p, "to"), st.from);
		assert_string_equal(parsed_attr(&p, "id"), st.id);
		assert_string_equal(parsed_attr(&p, "type"), "error");
		assert_string_equal(p.text, hostile[i]);

		assert_int_equal(xmpp_render_db_verify_reply(buf, hostile[i],
		    st.to, st.id, XMPP_DB_INVALID, 0), 0);
		parse_stanza(xmpp_buf_data(buf), &p);
		xmpp_buf_reset(buf);
		assert_string_equal(p.name, "jabber:server:dialback verify");
		assert_string_equal(parsed_attr(&p, "from"), hostile[i]);
		assert_string_equal(parsed_attr(&p, "id"), st.id);
		assert_string_equal(parsed_attr(&p, "type"), "invalid");
	}
}

/* RFC 6120 6.4.2 and 6.5: each malformed <auth/> gets its own condition. */
static void
test_sasl_external_read(void **state)
{
	static const struct {
		const char		*mech;
		const char		*data;
		enum xmpp_sasl_error	 e;
		const char		*authzid;
	} t[] = {
		{ "EXTERNAL", "", XMPP_SASL_ERROR_COUNT, "" },
		{ "EXTERNAL", NULL, XMPP_SASL_ERROR_COUNT, "" },
		{ "EXTERNAL", "=", XMPP_SASL_ERROR_COUNT, "" },
		{ "EXTERNAL", "cmVtb3RlLmV4YW1wbGU=", XMPP_SASL_ERROR_COUNT,
		    "remote.example" },
		{ "EXTERNAL", "YWJj", XMPP_SASL_ERROR_COUNT, "abc" },
		{ "EXTERNAL", "YQ==", XMPP_SASL_ERROR_COUNT, "a" },
		{ "PLAIN", "=", XMPP_SASL_INVALID_MECHANISM, "" },
		{ NULL, "=", XMPP_SASL_INVALID_MECHANISM, "" },
		{ "external", "=", XMPP_SASL_INVALID_MECHANISM, "" },
		{ "EXTERNAL", "cmVtb3RlLmV4YW1wbGU", XMPP_SASL_INCORRECT_ENCODING,
		    "" },
		{ "EXTERNAL", "!!!!", XMPP_SASL_INCORRECT_ENCODING, "" },
		{ "EXTERNAL", "YQ==YQ==", XMPP_SASL_INCORRECT_ENCODING, "" },
		{ "EXTERNAL", "Y===", XMPP_SASL_INCORRECT_ENCODING, "" },
		{ "EXTERNAL", "YW Jj", XMPP_SASL_INCORRECT_ENCODING, "" },
		/* stray bits in the last character (RFC 4648 3.5) */
		{ "EXTERNAL", "YR==", XMPP_SASL_INCORRECT_ENCODING, "" },
		{ "EXTERNAL", "AGE=", XMPP_SASL_INVALID_AUTHZID, "" },	/* NUL */
		/* 24 bytes decoded do not fit in 16 */
		{ "EXTERNAL", "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4",
		    XMPP_SASL_INVALID_AUTHZID, "" },
	};
	char out[16];

	for (size_t i = 0; i < nitems(t); i++) {
		assert_int_equal(xmpp_sasl_external_read(t[i].mech, t[i].data,
		    out, sizeof(out)), t[i].e);
		assert_string_equal(out, t[i].authzid);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_error_names),
		cmocka_unit_test(test_stanza_error_names),
		cmocka_unit_test(test_small_tables),
		cmocka_unit_test(test_may_bounce),
		cmocka_unit_test(test_sasl_external_read),
		cmocka_unit_test_setup_teardown(test_buf, buf_setup,
		    buf_teardown),
		cmocka_unit_test_setup_teardown(test_escape, buf_setup,
		    buf_teardown),
		cmocka_unit_test_setup_teardown(test_header, buf_setup,
		    buf_teardown),
		cmocka_unit_test_setup_teardown(test_features, buf_setup,
		    buf_teardown),
		cmocka_unit_test_setup_teardown(test_tls_sasl, buf_setup,
		    buf_teardown),
		cmocka_unit_test_setup_teardown(test_stream_error, buf_setup,
		    buf_teardown),
		cmocka_unit_test_setup_teardown(test_dialback, buf_setup,
		    buf_teardown),
		cmocka_unit_test_setup_teardown(test_bounce, buf_setup,
		    buf_teardown),
		cmocka_unit_test_setup_teardown(test_bounce_refused, buf_setup,
		    buf_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, buf_setup,
		    buf_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
