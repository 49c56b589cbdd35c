/*
 * Unit tests for check's sans-I/O half: verdict and outcome names, the
 * outcome of tallies, the report's bound, and the probe's state machine
 * driven by scripted events. Every scenario's input is fed whole, byte by
 * byte, and split in two at every boundary, and must give the same steps,
 * the same bytes written and the same end.
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "check.h"
#include "util.h"
#include "xmpp.h"

#define HDR(from, to) "<?xml version='1.0'?><stream:stream " \
	"xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/" \
	"streams' xmlns:db='jabber:server:dialback' from='" from "' to='" \
	to "' id='i1' version='1.0'>"
#define HDR_NODB "<stream:stream xmlns='jabber:server' " \
	"xmlns:stream='http://etherx.jabber.org/streams' from='peer.example' " \
	"id='i2' version='1.0'>"
#define F_TLS	"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:" \
	"xmpp-tls'/><dialback xmlns='urn:xmpp:features:dialback'/>" \
	"</stream:features>"
#define F_TLS_REQ "<stream:features><starttls xmlns='urn:ietf:params:xml:" \
	"ns:xmpp-tls'><required/></starttls></stream:features>"
#define F_DB	"<stream:features><dialback xmlns='urn:xmpp:features:" \
	"dialback'/></stream:features>"
#define F_ALL	"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:" \
	"xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms><dialback " \
	"xmlns='urn:xmpp:features:dialback'/></stream:features>"
#define F_NONE	"<stream:features/>"
#define PROCEED	"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define END	"</stream:stream>"

enum ev_kind { EV_END_OF_SCRIPT, EV_CONNECTED, EV_INPUT, EV_TLS, EV_FAILED,
    EV_TIMEOUT };

struct ev {
	enum ev_kind		 kind;
	const char		*data;		/* INPUT bytes, FAILED why */
	enum tls_peer_status	 status;	/* TLS */
};

#define CONN		{ EV_CONNECTED, NULL, TLS_PEER_NONE }
#define IN(s)		{ EV_INPUT, (s), TLS_PEER_NONE }
#define TLS(st)		{ EV_TLS, NULL, (st) }
#define FAILED(s)	{ EV_FAILED, (s), TLS_PEER_NONE }
#define TIMEOUT		{ EV_TIMEOUT, NULL, TLS_PEER_NONE }

struct scenario {
	const char		*name;
	enum check_probe_mode	 mode;
	enum policy_tls		 tls;
	enum policy_verify	 verify;
	struct ev		 ev[8];
	const char		*steps;		/* "name:verdict ..." */
	const char		*written;	/* substrings, '|' apart */
	bool			 failed;
	const char		*reason;	/* in some step's reason */
};

static const struct scenario scenarios[] = {
	{ "healthy, STARTTLS", CHECK_PROBE_REMOTE, POLICY_TLS_OPTIONAL,
	    POLICY_VERIFY_OPTIONAL, {
		CONN, IN(HDR("peer.example", "a") F_TLS),
		IN(PROCEED), TLS(TLS_PEER_VALID),
		IN(HDR("peer.example", "a") F_ALL), IN(END) },
	    "tcp:ok stream:ok features:ok starttls:ok tls:ok certificate:ok "
	    "features:ok dialback:ok sasl-external:ok",
	    "to='peer.example'|<starttls|</stream:stream>", false,
	    "valid for peer.example" },
	{ "no STARTTLS, tls optional", CHECK_PROBE_REMOTE, POLICY_TLS_OPTIONAL,
	    POLICY_VERIFY_OPTIONAL, {
		CONN, IN(HDR("peer.example", "a") F_DB),
		IN(END) },
	    "tcp:ok stream:ok features:ok starttls:warn tls:skip "
	    "certificate:skip dialback:ok sasl-external:skip",
	    "</stream:stream>", false, "not offered" },
	{ "no STARTTLS, tls required", CHECK_PROBE_REMOTE, POLICY_TLS_REQUIRED,
	    POLICY_VERIFY_OPTIONAL, {
		CONN, IN(HDR("peer.example", "a") F_DB),
		IN(END) },
	    "tcp:ok stream:ok features:ok starttls:fail tls:skip "
	    "certificate:skip dialback:ok sasl-external:skip",
	    "</stream:stream>", true, "requires TLS" },
	{ "STARTTLS required, tls none", CHECK_PROBE_REMOTE, POLICY_TLS_NONE,
	    POLICY_VERIFY_NONE, {
		CONN,
		IN(HDR("peer.example", "a") F_TLS_REQ),
		IN(END) },
	    "tcp:ok stream:ok features:ok starttls:fail tls:skip "
	    "certificate:skip dialback:warn sasl-external:skip",
	    "</stream:stream>", true, "policy for peer.example is tls none" },
	{ "certificate for another name", CHECK_PROBE_REMOTE,
	    POLICY_TLS_OPTIONAL, POLICY_VERIFY_OPTIONAL, {
		CONN, IN(HDR("peer.example", "a") F_TLS),
		IN(PROCEED), TLS(TLS_PEER_MISMATCH),
		IN(HDR("peer.example", "a") F_DB), IN(END) },
	    "tcp:ok stream:ok features:ok starttls:ok tls:ok certificate:fail "
	    "features:ok dialback:ok sasl-external:warn",
	    "<starttls", true, "valid for other.example" },
	{ "direct TLS", CHECK_PROBE_DIRECT_TLS, POLICY_TLS_OPTIONAL,
	    POLICY_VERIFY_OPTIONAL, {
		CONN, TLS(TLS_PEER_VALID),
		IN(HDR("peer.example", "a") F_ALL), IN(END) },
	    "tcp:ok starttls:skip tls:ok certificate:ok features:ok "
	    "dialback:ok sasl-external:ok", "to='peer.example'", false,
	    "direct TLS" },
	{ "upstream", CHECK_PROBE_UPSTREAM, POLICY_TLS_OPTIONAL,
	    POLICY_VERIFY_OPTIONAL, {
		CONN, IN(HDR("peer.example", "a") F_TLS),
		IN(END) },
	    "tcp:ok stream:ok features:ok", "</stream:stream>", false,
	    "starttls" },
	{ "connection refused", CHECK_PROBE_REMOTE, POLICY_TLS_OPTIONAL,
	    POLICY_VERIFY_OPTIONAL, { FAILED("Connection refused") },
	    "tcp:fail", "", true, "Connection refused" },
	{ "stream error", CHECK_PROBE_REMOTE, POLICY_TLS_OPTIONAL,
	    POLICY_VERIFY_OPTIONAL, {
		CONN, IN(HDR("peer.example", "a")
		"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:"
		"xmpp-streams'/></stream:error>") },
	    "tcp:ok stream:ok features:fail", "", true, "host-unknown" },
	{ "no header in time", CHECK_PROBE_REMOTE, POLICY_TLS_OPTIONAL,
	    POLICY_VERIFY_OPTIONAL, { CONN, TIMEOUT },
	    "tcp:ok stream:fail", "", true, "the stream header" },
	{ "no dialback, no EXTERNAL", CHECK_PROBE_REMOTE, POLICY_TLS_NONE,
	    POLICY_VERIFY_NONE, {
		CONN, IN(HDR_NODB F_NONE),
		IN(END) },
	    "tcp:ok stream:ok features:ok starttls:ok tls:skip "
	    "certificate:skip dialback:fail sasl-external:skip", "", true,
	    "could not authenticate" },
	{ "not XML", CHECK_PROBE_REMOTE, POLICY_TLS_OPTIONAL,
	    POLICY_VERIFY_OPTIONAL, {
		CONN, IN("HTTP/1.1 400 Bad Request\r\n") },
	    "tcp:ok stream:fail", "", true, "bad" },
	{ "silent close after our close", CHECK_PROBE_UPSTREAM,
	    POLICY_TLS_OPTIONAL, POLICY_VERIFY_OPTIONAL, {
		CONN, IN(HDR("x", "y") F_NONE),
		TIMEOUT },
	    "tcp:ok stream:warn features:ok", "</stream:stream>", false,
	    "answers as" },
};

/* How to split each INPUT event. */
enum feed { FEED_WHOLE, FEED_BYTES, FEED_SPLIT };

struct run {
	struct check_report	 report;
	char			 written[8192];
	char			 pending[8192];	/* input not taken yet */
	size_t			 npending;
	enum check_action	 last;
	enum check_probe_state	 state;
	bool			 failed;
};

static void
take_output(struct check_probe *p, struct run *r)
{
	struct xmpp_buf *out = check_probe_output(p);

	strncat(r->written, xmpp_buf_data(out),
	    sizeof(r->written) - strlen(r->written) - 1);
	xmpp_buf_reset(out);
}

/* Give len more bytes, as the I/O side would: what is not used waits. */
static void
give(struct check_probe *p, struct run *r, const char *buf, size_t len)
{
	size_t used;

	assert_true(r->npending + len <= sizeof(r->pending));
	memcpy(r->pending + r->npending, buf, len);
	r->npending += len;
	r->last = check_probe_input(p, r->pending, r->npending, &used);
	assert_true(used <= r->npending);
	memmove(r->pending, r->pending + used, r->npending - used);
	r->npending -= used;
	if (r->last == CHECK_ACT_STARTTLS)
		r->npending = 0;	/* conn_starttls() discards the rest */
	take_output(p, r);
}

static void
feed_input(struct check_probe *p, struct run *r, const char *s,
    enum feed how, size_t cut)
{
	size_t len = strlen(s);

	switch (how) {
	case FEED_WHOLE:
		give(p, r, s, len);
		break;
	case FEED_BYTES:
		for (size_t i = 0; i < len && r->last != CHECK_ACT_CLOSE; i++)
			give(p, r, s + i, 1);
		break;
	case FEED_SPLIT:
		cut = cut < len ? cut : len;
		give(p, r, s, cut);
		if (r->last != CHECK_ACT_CLOSE)
			give(p, r, s + cut, len - cut);
		break;
	}
}

static void
play(const struct scenario *sc, enum feed how, size_t cut, struct run *r)
{
	struct check_probe_params params = {
		.mode = sc->mode, .subject = "192.0.2.1:5269",
		.from = "corp.example", .to = "peer.example",
		.domain = "peer.example", .tls = sc->tls, .verify = sc->verify,
	};
	struct check_tls_info info = {
		.description = "TLSv1.3 TLS_AES_128_GCM_SHA256",
		.names = "other.example, *.other.example",
		.not_after = 1900000000, .now = 1800000000,
	};
	struct check_probe *p;

	memset(r, 0, sizeof(*r));
	assert_non_null(p = check_probe_new(&r->report, &params));
	for (const struct ev *e = sc->ev; e->kind != EV_END_OF_SCRIPT &&
	    r->last != CHECK_ACT_CLOSE; e++) {
		switch (e->kind) {
		case EV_CONNECTED:
			r->last = check_probe_connected(p, 3);
			take_output(p, r);
			break;
		case EV_INPUT:
			feed_input(p, r, e->data, how, cut);
			break;
		case EV_TLS:
			info.status = e->status;
			if (e->status == TLS_PEER_VALID)
				info.names = "peer.example";
			r->last = check_probe_tls_done(p, &info);
			take_output(p, r);
			break;
		case EV_FAILED:
			r->last = check_probe_failed(p, e->data);
			break;
		case EV_TIMEOUT:
			r->last = check_probe_timeout(p, 5000);
			break;
		default:
			break;
		}
	}
	r->state = check_probe_state(p);
	r->failed = check_probe_has_failed(p);
	check_probe_free(p);
}

/* "name:verdict ..." of a report. */
static void
steps_text(const struct check_report *rep, char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0; i < rep->nsteps; i++) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, "%s%s:%s", i > 0 ? " " : "",
		    rep->step[i].name, check_verdict_name(rep->step[i].verdict));
	}
}

static bool
reason_has(const struct check_report *rep, const char *needle)
{
	for (size_t i = 0; i < rep->nsteps; i++)
		if (strstr(rep->step[i].reason, needle) != NULL)
			return true;
	return false;
}

static void
check_run(const struct scenario *sc, const struct run *r, const char *how)
{
	char steps[2048], want[256], *w, *save = NULL;

	steps_text(&r->report, steps, sizeof(steps));
	if (strcmp(steps, sc->steps) != 0)
		fail_msg("%s (%s): steps\n  got  %s\n  want %s", sc->name, how,
		    steps, sc->steps);
	if (r->state != CHECK_PROBE_DONE || r->last != CHECK_ACT_CLOSE)
		fail_msg("%s (%s): ends in %s", sc->name, how,
		    check_probe_state_name(r->state));
	if (r->failed != sc->failed)
		fail_msg("%s (%s): failed %d", sc->name, how, r->failed);
	if (!reason_has(&r->report, sc->reason))
		fail_msg("%s (%s): no reason has \"%s\"", sc->name, how,
		    sc->reason);
	strlcpy(want, sc->written, sizeof(want));
	for (w = strtok_r(want, "|", &save); w != NULL;
	    w = strtok_r(NULL, "|", &save))
		if (strstr(r->written, w) == NULL)
			fail_msg("%s (%s): did not write %s in %s", sc->name,
			    how, w, r->written);
	/* Never authenticate. */
	assert_null(strstr(r->written, "db:result"));
	assert_null(strstr(r->written, "<auth"));
}

static void
test_probe_scenarios(void **state)
{
	struct run r;
	char how[32];

	for (size_t i = 0; i < nitems(scenarios); i++) {
		play(&scenarios[i], FEED_WHOLE, 0, &r);
		check_run(&scenarios[i], &r, "whole");
		play(&scenarios[i], FEED_BYTES, 0, &r);
		check_run(&scenarios[i], &r, "byte by byte");
		for (size_t cut = 1; cut < 400; cut++) {
			play(&scenarios[i], FEED_SPLIT, cut, &r);
			snprintf(how, sizeof(how), "split at %zu", cut);
			check_run(&scenarios[i], &r, how);
		}
	}
}

static void
test_probe_input_bound(void **state)
{
	struct check_report rep = { .nsteps = 0 };
	struct check_probe_params params = {
		.mode = CHECK_PROBE_REMOTE, .subject = "s", .from = NULL,
		.to = "peer.example", .domain = "peer.example",
	};
	struct check_probe *p = check_probe_new(&rep, &params);
	static char junk[1024];
	enum check_action act = CHECK_ACT_NONE;
	size_t used, total = 0;

	assert_non_null(p);
	check_probe_connected(p, 0);
	act = check_probe_input(p, HDR("peer.example", "a"),
	    strlen(HDR("peer.example", "a")), &used);
	memset(junk, ' ', sizeof(junk));	/* whitespace keepalives */
	while (act == CHECK_ACT_NONE && total < 2 * CHECK_INPUT_MAX) {
		act = check_probe_input(p, junk, sizeof(junk), &used);
		total += used;
	}
	assert_int_equal(act, CHECK_ACT_CLOSE);
	assert_true(total <= CHECK_INPUT_MAX + sizeof(junk));
	assert_true(check_probe_has_failed(p));
	check_probe_free(p);
}

static void
test_outcome(void **state)
{
	static const struct {
		struct check_tally	 t;
		enum check_outcome	 want;
	} cases[] = {
		{ { 1, 0, 0, 0 }, CHECK_WORKS },
		{ { 1, 3, 2, 0 }, CHECK_WORKS },	/* one address is enough */
		{ { 0, 1, 0, 0 }, CHECK_BROKEN },
		{ { 0, 0, 1, 0 }, CHECK_UNKNOWN },
		{ { 0, 1, 1, 0 }, CHECK_UNKNOWN },
		{ { 1, 0, 0, 1 }, CHECK_BROKEN },	/* policy deny, gateway */
		{ { 0, 0, 0, 0 }, CHECK_BROKEN },
	};

	for (size_t i = 0; i < nitems(cases); i++)
		assert_int_equal(check_outcome(&cases[i].t), cases[i].want);
	assert_string_equal(check_outcome_name(CHECK_WORKS), "yes");
	assert_string_equal(check_outcome_name(CHECK_BROKEN), "no");
	assert_string_equal(check_outcome_name(CHECK_UNKNOWN), "unknown");
	assert_string_equal(check_outcome_name((enum check_outcome)9),
	    "unknown");
}

static void
test_report(void **state)
{
	static struct check_report rep;
	char long_reason[2 * CHECK_REASON_MAX];

	assert_string_equal(check_verdict_name(CHECK_OK), "ok");
	assert_string_equal(check_verdict_name(CHECK_WARN), "warn");
	assert_string_equal(check_verdict_name(CHECK_FAIL), "fail");
	assert_string_equal(check_verdict_name(CHECK_SKIP), "skip");
	assert_string_equal(check_verdict_name((enum check_verdict)7),
	    "unknown");
	memset(long_reason, 'x', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	assert_int_equal(check_report_add(&rep, "srv", "a", CHECK_WARN, "%s",
	    long_reason), CHECK_WARN);
	assert_int_equal(strlen(rep.step[0].reason), CHECK_REASON_MAX - 1);
	for (int i = 1; i < CHECK_STEPS_MAX + 5; i++)
		check_report_add(&rep, "tcp", NULL, CHECK_OK, "n%d", i);
	assert_int_equal(rep.nsteps, CHECK_STEPS_MAX);
	assert_int_equal(rep.dropped, 5);
	assert_string_equal(rep.step[1].subject, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_outcome),
		cmocka_unit_test(test_probe_scenarios),
		cmocka_unit_test(test_probe_input_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
