/*
 * metrics: label escaping, the peer-domain label, counters, gauges, the
 * bytes of live legs, histogram buckets, the series cap, and the
 * exposition text as a whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define METRICS_PRIVATE
#include "config.h"
#include "metrics.h"
#include "route.h"
#include "util.h"

static char b_example[] = "b.example", a_example[] = "a.example";
static char *configured[] = { b_example, a_example };

/* Configure metrics domains a.example and b.example. */
static int
setup(void **state)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.metrics_domains = configured;
	c.nmetrics_domains = nitems(configured);
	metrics_reset();
	return metrics_configure(&c);
}

static int
teardown(void **state)
{
	metrics_reset();
	return 0;
}

/* The exposition as a malloc'd string. */
static char *
render(void)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *s;

	assert_non_null(b);
	assert_int_equal(metrics_render(b), 0);
	len = evbuffer_get_length(b);
	s = malloc(len + 1);
	assert_non_null(s);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

/* Whether the exposition holds line as a whole line. */
static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void
assert_line(const char *text, const char *line)
{
	if (!has_line(text, line))
		fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void
test_escape(void **state)
{
	static const struct {
		const char	*in, *out;
	} cases[] = {
		{ "", "" }, { "plain", "plain" }, { "a\"b", "a\\\"b" },
		{ "back\\slash", "back\\\\slash" }, { "new\nline", "new\\nline" },
		{ "\\\"\n", "\\\\\\\"\\n" }, { "tab\tstays", "tab\tstays" },
	};
	char buf[64];

	for (size_t i = 0; i < nitems(cases); i++)
		assert_string_equal(metrics_escape(cases[i].in, buf, sizeof(buf)),
		    cases[i].out);
	/* Exactly fitting, and one byte short. */
	assert_string_equal(metrics_escape("a\"", buf, 4), "a\\\"");
	assert_null(metrics_escape("a\"", buf, 3));
	assert_null(metrics_escape("abc", buf, 3));
	assert_null(metrics_escape("", buf, 0));
}

static void
test_escape_in_exposition(void **state)
{
	int i = metrics_listener_add("odd\"listener\\\n", CONFIG_FACE_PUBLIC);
	char *text;

	assert_int_equal(i, 0);
	metrics_connection(i);
	metrics_connection(i);
	metrics_connection_refused(METRICS_REFUSED_LIMIT);
	text = render();
	assert_line(text, "fedgate_connections_accepted_total{listener="
	    "\"odd\\\"listener\\\\\\n\",face=\"public\"} 2");
	assert_line(text, "fedgate_connections_refused_total{listener="
	    "\"odd\\\"listener\\\\\\n\",face=\"public\",reason=\"limit\"} 1");
	free(text);
}

static void
test_domain_label(void **state)
{
	assert_string_equal(metrics_domain_label(CONFIG_FACE_PUBLIC,
	    "corp.example", "a.example"), "a.example");
	assert_string_equal(metrics_domain_label(CONFIG_FACE_PUBLIC,
	    "a.example", "c.example"), "other");
	/* internal face: the remote domain fedgated presents itself as */
	assert_string_equal(metrics_domain_label(CONFIG_FACE_INTERNAL,
	    "b.example", "corp.internal"), "b.example");
	assert_string_equal(metrics_domain_label(CONFIG_FACE_INTERNAL,
	    "corp.internal", "b.example"), "other");
	assert_string_equal(metrics_domain_label(CONFIG_FACE_PUBLIC, "x",
	    ""), "other");
	assert_string_equal(metrics_domain_label(CONFIG_FACE_PUBLIC, "x",
	    NULL), "other");
}

static void
test_counters(void **state)
{
	struct route_origin o = { .face = CONFIG_FACE_PUBLIC };
	struct metrics_counter a = { 0 }, z = { 0 }, in = { 0 };
	char *text;

	metrics_stanza(&a, CONFIG_FACE_PUBLIC, false, "corp.example",
	    "a.example");
	metrics_stanza(&a, CONFIG_FACE_PUBLIC, false, "corp.example",
	    "a.example");
	metrics_stanza(&z, CONFIG_FACE_PUBLIC, false, "corp.example",
	    "z.example");
	metrics_stanza(&in, CONFIG_FACE_INTERNAL, true, "a.example",
	    "corp.internal");
	metrics_stream_refused(CONFIG_FACE_PUBLIC, false, "corp.example", "",
	    XMPP_STREAM_HOST_UNKNOWN);
	metrics_stream_refused(CONFIG_FACE_PUBLIC, false, "corp.example",
	    "b.example", XMPP_STREAM_RESTRICTED_XML);
	metrics_leg_auth(1, CONFIG_FACE_PUBLIC, false, "corp.example",
	    "a.example", "dialback+cert", true);
	metrics_leg_auth(2, CONFIG_FACE_PUBLIC, true, "corp.example",
	    "b.example", "sasl-external", false);
	metrics_leg_auth(3, CONFIG_FACE_INTERNAL, false, "a.example",
	    "corp.internal", "trusted", true);
	o.attrs.name = "message";
	o.attrs.from = "alice@A.Example/pc";
	o.attrs.to = "bob@corp.example";
	metrics_stanza_bounced(&o, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND);
	o.face = CONFIG_FACE_INTERNAL;
	o.attrs.from = "bob@corp.internal";
	o.attrs.to = "carol@c.example";
	metrics_stanza_dropped(&o, XMPP_STANZA_SERVICE_UNAVAILABLE);
	metrics_dns("srv", "nxdomain");
	metrics_dns("srv", "no such\nstatus");
	metrics_leg_tls(CONFIG_FACE_PUBLIC, false, NULL);
	text = render();
	assert_line(text, "fedgate_stanzas_total{face=\"public\","
	    "direction=\"in\",domain=\"a.example\"} 2");
	assert_line(text, "fedgate_stanzas_total{face=\"public\","
	    "direction=\"in\",domain=\"other\"} 1");
	assert_line(text, "fedgate_stanzas_total{face=\"internal\","
	    "direction=\"out\",domain=\"a.example\"} 1");
	assert_line(text, "fedgate_streams_refused_total{face=\"public\","
	    "direction=\"in\",domain=\"other\",reason=\"host_unknown\"} 1");
	assert_line(text, "fedgate_streams_refused_total{face=\"public\","
	    "direction=\"in\",domain=\"b.example\",reason=\"protocol\"} 1");
	assert_line(text, "fedgate_authentications_total{face=\"public\","
	    "direction=\"in\",domain=\"a.example\",method=\"dialback\","
	    "result=\"ok\"} 1");
	assert_line(text, "fedgate_authentications_total{face=\"public\","
	    "direction=\"out\",domain=\"b.example\",method=\"sasl_external\","
	    "result=\"failed\"} 1");
	assert_line(text, "fedgate_authentications_total{face=\"internal\","
	    "direction=\"in\",domain=\"a.example\",method=\"trusted\","
	    "result=\"ok\"} 1");
	assert_line(text, "fedgate_stanzas_bounced_total{face=\"public\","
	    "domain=\"a.example\",condition=\"remote-server-not-found\"} 1");
	assert_line(text, "fedgate_stanzas_dropped_total{face=\"internal\","
	    "domain=\"other\",condition=\"service-unavailable\"} 1");
	assert_line(text, "fedgate_dns_answers_total{query=\"srv\","
	    "status=\"nxdomain\"} 1");
	assert_line(text, "fedgate_dns_answers_total{query=\"srv\","
	    "status=\"other\"} 1");
	assert_line(text, "fedgate_tls_handshakes_total{face=\"public\","
	    "direction=\"in\",version=\"other\"} 1");
	free(text);
}

/* Every family has HELP and TYPE, once, in the fixed order. */
static void
test_families(void **state)
{
	static const char *const types[] = {
		"fedgate_connections_accepted_total counter",
		"fedgate_connections_refused_total counter",
		"fedgate_streams_accepted_total counter",
		"fedgate_streams_refused_total counter",
		"fedgate_authentications_total counter",
		"fedgate_stanzas_total counter",
		"fedgate_stream_bytes_total counter",
		"fedgate_stanzas_bounced_total counter",
		"fedgate_stanzas_dropped_total counter",
		"fedgate_stanzas_acked_total counter",
		"fedgate_stanzas_resent_total counter",
		"fedgate_queue_stanzas gauge",
		"fedgate_legs_open gauge",
		"fedgate_tls_handshakes_total counter",
		"fedgate_dns_answers_total counter",
		"fedgate_handshake_seconds histogram",
		"fedgate_authentication_seconds histogram",
	};
	char *text, line[128];
	const char *prev, *p;
	int n = 0;

	metrics_live_acks(0, 3);
	prev = text = render();

	for (p = text; (p = strstr(p, "# TYPE ")) != NULL; p++)
		n++;
	assert_int_equal(n, nitems(types));
	for (size_t i = 0; i < nitems(types); i++) {
		const char *help;

		snprintf(line, sizeof(line), "# TYPE %s", types[i]);
		assert_line(text, line);
		assert_true((p = strstr(text, line)) >= prev);
		/* "# HELP name " right before */
		snprintf(line, sizeof(line), "# HELP %.*s ",
		    (int)strcspn(types[i], " "), types[i]);
		assert_non_null(help = strstr(text, line));
		assert_true(help >= prev && help < p);
		assert_null(strstr(p + 1, line));
		prev = p;
	}
	assert_line(text, "fedgate_stanzas_acked_total 0");
	assert_line(text, "fedgate_stanzas_resent_total 3");
	free(text);
}

static void
test_histogram(void **state)
{
	char *text;

	metrics_observe_handshake(CONFIG_FACE_PUBLIC, false, 3);
	metrics_observe_handshake(CONFIG_FACE_PUBLIC, false, 100);
	metrics_observe_handshake(CONFIG_FACE_PUBLIC, false, 101);
	metrics_observe_handshake(CONFIG_FACE_PUBLIC, false, 70000);
	text = render();
#define B(le, n)	"fedgate_handshake_seconds_bucket{face=\"public\"," \
	    "direction=\"in\",le=\"" le "\"} " #n
	assert_line(text, B("0.005", 1));
	assert_line(text, B("0.05", 1));
	assert_line(text, B("0.1", 2));		/* bounds are inclusive */
	assert_line(text, B("0.25", 3));
	assert_line(text, B("60", 3));
	assert_line(text, B("+Inf", 4));
#undef B
	assert_line(text, "fedgate_handshake_seconds_sum{face=\"public\","
	    "direction=\"in\"} 70.204");
	assert_line(text, "fedgate_handshake_seconds_count{face=\"public\","
	    "direction=\"in\"} 4");
	/* buckets come in increasing order, +Inf last, before sum and count */
	assert_true(strstr(text, "le=\"0.005\"") < strstr(text, "le=\"60\""));
	assert_true(strstr(text, "le=\"60\"") < strstr(text, "le=\"+Inf\""));
	assert_true(strstr(text, "le=\"+Inf\"") <
	    strstr(text, "fedgate_handshake_seconds_sum"));
	free(text);
}

/* The first authentication of a leg observes both histograms, once. */
static void
test_leg_times(void **state)
{
	char *text;

	metrics_leg_started(7);
	metrics_stream_opened(7, CONFIG_FACE_PUBLIC, false, "corp.example",
	    "a.example");
	metrics_stream_opened(7, CONFIG_FACE_PUBLIC, false, "corp.example",
	    "a.example");	/* restart: not counted again */
	metrics_leg_auth(7, CONFIG_FACE_PUBLIC, false, "corp.example",
	    "a.example", "dialback", true);
	metrics_leg_auth(7, CONFIG_FACE_PUBLIC, false, "corp.example",
	    "b.example", "dialback", true);
	text = render();
	assert_line(text, "fedgate_streams_accepted_total{face=\"public\","
	    "direction=\"in\",domain=\"a.example\"} 1");
	assert_line(text, "fedgate_handshake_seconds_count{face=\"public\","
	    "direction=\"in\"} 1");
	assert_line(text, "fedgate_authentication_seconds_count{"
	    "face=\"public\",direction=\"in\"} 1");
	free(text);
}

/* Live legs' bytes count as deltas, so that counters never go down. */
static void
test_live_bytes(void **state)
{
	char *text;

	metrics_live_begin();
	metrics_live_leg(9, CONFIG_FACE_PUBLIC, false, "corp.example", "",
	    100, 40);
	metrics_live_leg(10, CONFIG_FACE_INTERNAL, true, "a.example",
	    "corp.internal", 5, 6);
	metrics_live_route(CONFIG_FACE_INTERNAL, "a.example", "corp.internal",
	    3);
	metrics_live_route(CONFIG_FACE_PUBLIC, "corp.example", "a.example", 2);
	text = render();
	assert_line(text, "fedgate_legs_open{face=\"public\",direction=\"in\"} 1");
	assert_line(text, "fedgate_legs_open{face=\"public\",direction=\"out\"} 0");
	assert_line(text, "fedgate_queue_stanzas{face=\"internal\","
	    "domain=\"a.example\"} 3");
	assert_line(text, "fedgate_queue_stanzas{face=\"public\","
	    "domain=\"a.example\"} 2");
	assert_line(text, "fedgate_stream_bytes_total{face=\"public\","
	    "direction=\"in\",domain=\"other\"} 100");
	free(text);
	/* The peer is known now: what comes after counts for it. */
	metrics_live_begin();
	metrics_live_leg(9, CONFIG_FACE_PUBLIC, false, "corp.example",
	    "a.example", 150, 40);
	metrics_leg_end(9, CONFIG_FACE_PUBLIC, false, "corp.example",
	    "a.example", 160, 45);
	metrics_leg_end(10, CONFIG_FACE_INTERNAL, true, "a.example",
	    "corp.internal", 5, 6);
	text = render();
	assert_line(text, "fedgate_legs_open{face=\"public\",direction=\"in\"} 1");
	assert_line(text, "fedgate_queue_stanzas{face=\"internal\","
	    "domain=\"a.example\"} 0");
	assert_line(text, "fedgate_stream_bytes_total{face=\"public\","
	    "direction=\"in\",domain=\"other\"} 100");
	assert_line(text, "fedgate_stream_bytes_total{face=\"public\","
	    "direction=\"in\",domain=\"a.example\"} 60");
	assert_line(text, "fedgate_stream_bytes_total{face=\"public\","
	    "direction=\"out\",domain=\"a.example\"} 5");
	assert_line(text, "fedgate_stream_bytes_total{face=\"internal\","
	    "direction=\"out\",domain=\"a.example\"} 6");
	free(text);
	metrics_live_begin();
	text = render();
	assert_line(text, "fedgate_legs_open{face=\"public\",direction=\"in\"} 0");
	free(text);
}

/* Beyond METRICS_SERIES_MAX label sets, new ones are not counted. */
static void
test_series_cap(void **state)
{
	char status[32];

	for (int i = 0; i < METRICS_SERIES_MAX + 10; i++) {
		snprintf(status, sizeof(status), "s%d", i);
		metrics_dns("srv", status);
	}
	assert_int_equal(metrics_series_count(), METRICS_SERIES_MAX);
	metrics_dns("srv", "s0");
	metrics_reset();
	assert_int_equal(metrics_series_count(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test_setup_teardown(test_escape_in_exposition, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_domain_label, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_families, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leg_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_bytes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_series_cap, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
