/*
 * test_policy: rule patterns, matching order, inheritance, overrides.
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "policy.h"
#include "util.h"

#define CONF	"/etc/fedgated.conf"

/* Settings that set only allow. */
static struct policy_settings
allow(bool yes)
{
	struct policy_settings	 s;

	policy_settings_init(&s);
	s.set = POLICY_SET_ALLOW;
	s.allow = yes;
	return s;
}

/* Settings that set only tls. */
static struct policy_settings
tls(enum policy_tls t)
{
	struct policy_settings	 s;

	policy_settings_init(&s);
	s.set = POLICY_SET_TLS;
	s.tls = t;
	return s;
}

struct rule_def {
	const char		*pattern;
	int			 line;
};

/* A policy with one rule per def, each allowing, numbered by line. */
static struct policy *
build(const struct rule_def *defs, size_t n)
{
	struct policy		*p;
	struct policy_settings	 s = allow(true);
	char			 err[128];
	size_t			 i;

	assert_non_null(p = policy_new());
	for (i = 0; i < n; i++)
		if (policy_add(p, defs[i].pattern, &s, CONF, defs[i].line,
		    err, sizeof(err)) == -1)
			fail_msg("add \"%s\": %s", defs[i].pattern, err);
	return p;
}

struct match_case {
	const char	*domain;
	int		 line;		/* of the rule that matches; 0: none */
	int		 rv;
};

static void
run_matches(const struct policy *p, const struct match_case *cases, size_t n)
{
	struct policy_match	 m;
	size_t			 i;
	int			 rv;

	for (i = 0; i < n; i++) {
		const struct match_case *c = &cases[i];

		rv = policy_match(p, c->domain, &m);
		if (rv != c->rv)
			fail_msg("\"%s\": policy_match %d", c->domain, rv);
		if (rv == -1)
			continue;
		if (c->line == 0 && m.rule != NULL)
			fail_msg("\"%s\": matched \"%s\"", c->domain,
			    policy_rule_pattern(m.rule));
		if (c->line != 0 && (m.rule == NULL ||
		    policy_rule_line(m.rule) != c->line))
			fail_msg("\"%s\": matched \"%s\", want line %d",
			    c->domain, m.rule != NULL ?
			    policy_rule_pattern(m.rule) : "(none)", c->line);
	}
}

static void
test_match_order(void **state)
{
	const struct rule_def defs[] = {
		{ "default", 1 },
		{ "Example.ORG.", 2 },
		{ "*.example.org", 3 },
		{ "*.Partner.Example.ORG", 4 },
		{ "vip.partner.example.org", 5 },
		{ "*.bücher.example", 6 },
		{ "xn--caf-dma.example", 7 },
		{ "192.0.2.1", 8 },
		{ "[2001:db8::1]", 9 },
	};
	const struct match_case cases[] = {
		/* Exact beats suffix; the suffix excludes the name itself. */
		{ "example.org", 2, 0 },
		{ "EXAMPLE.ORG.", 2, 0 },
		{ "a.example.org", 3, 0 },
		{ "b.a.example.org", 3, 0 },
		/* Longer suffix beats shorter, exact beats both. */
		{ "partner.example.org", 3, 0 },
		{ "x.partner.example.org", 4, 0 },
		{ "y.x.Partner.example.org", 4, 0 },
		{ "vip.partner.example.org", 5, 0 },
		/* Default fallback. */
		{ "example.com", 1, 0 },
		{ "org", 1, 0 },
		{ "notexample.org", 1, 0 },
		{ "a.example.org.evil", 1, 0 },
		/* IDN: U-label rule, A-label query, and vice versa. */
		{ "shop.xn--bcher-kva.example", 6, 0 },
		{ "shop.BÜCHER.example", 6, 0 },
		{ "bücher.example", 1, 0 },
		{ "café.example", 7, 0 },
		{ "CAFÉ.example.", 7, 0 },
		/* IP literals. */
		{ "192.0.2.1", 8, 0 },
		{ "192.0.2.2", 1, 0 },
		{ "[2001:DB8::1]", 9, 0 },
		/* Invalid domains are errors, not non-matches. */
		{ "a..b", 0, -1 },
		{ "", 0, -1 },
		{ "-a.example.org", 0, -1 },
		{ "*.example.org", 0, -1 },
	};
	struct policy	*p = build(defs, nitems(defs));

	(void)state;
	run_matches(p, cases, nitems(cases));
	policy_free(p);
}

static void
test_match_no_default(void **state)
{
	const struct rule_def defs[] = {
		{ "*.example.org", 3 },
	};
	const struct match_case cases[] = {
		{ "a.example.org", 3, 0 },
		{ "example.org", 0, 0 },
		{ "other.example", 0, 0 },
	};
	struct policy	*p = build(defs, nitems(defs));

	(void)state;
	run_matches(p, cases, nitems(cases));
	policy_free(p);
}

static void
test_no_rules(void **state)
{
	struct policy		*p;
	struct policy_match	 m;
	struct policy_settings	 def;

	(void)state;
	assert_non_null(p = policy_new());
	assert_int_equal(policy_match(p, "example.org", &m), 0);
	assert_null(m.rule);
	assert_false(m.settings.allow);
	assert_int_equal(m.settings.set, 0);
	policy_settings_init(&def);
	assert_memory_equal(&m.settings, &def, sizeof(def));
	assert_false(def.allow);
	assert_int_equal(def.tls, POLICY_TLS_OPTIONAL);
	assert_int_equal(def.verify, POLICY_VERIFY_OPTIONAL);
	assert_int_equal(def.auth, POLICY_AUTH_ANY);
	assert_int_equal(def.resolve, POLICY_RESOLVE_SRV);
	assert_false(def.dane);
	assert_true(def.bidi);
	assert_string_equal(def.route_host, "");
	assert_int_equal(def.route_port, 0);
	assert_int_equal(def.stanza_size, 0);
	assert_int_equal(def.rate, 0);
	assert_int_equal(def.burst, 0);
	assert_int_equal(def.connections, 0);
	assert_int_equal(policy_match(p, "a..b", &m), -1);
	policy_free(p);
	policy_free(NULL);
}

static void
test_inheritance(void **state)
{
	struct policy		*p;
	struct policy_settings	 d, r;
	struct policy_match	 m;
	char			 err[128];

	(void)state;
	assert_non_null(p = policy_new());
	/* The default allows, requires TLS and routes statically. */
	policy_settings_init(&d);
	d.set = POLICY_SET_ALLOW | POLICY_SET_TLS | POLICY_SET_ROUTE |
	    POLICY_SET_RATE;
	d.allow = true;
	d.tls = POLICY_TLS_REQUIRED;
	d.route_host = policy_text("relay.example");
	d.route_port = 5270;
	d.rate = 1000;
	d.burst = 2000;
	assert_int_equal(policy_add(p, "default", &d, CONF, 1, err,
	    sizeof(err)), 0);
	/* The exact rule denies and sets verify; tls comes from default. */
	policy_settings_init(&r);
	r.set = POLICY_SET_ALLOW | POLICY_SET_VERIFY | POLICY_SET_STANZA_SIZE;
	r.allow = false;
	r.verify = POLICY_VERIFY_REQUIRED;
	r.stanza_size = 65536;
	r.tls = POLICY_TLS_NONE;	/* not in set: ignored */
	r.connections = 7;		/* not in set: ignored */
	assert_int_equal(policy_add(p, "bad.example", &r, CONF, 2, err,
	    sizeof(err)), 0);

	assert_int_equal(policy_match(p, "bad.example", &m), 0);
	assert_int_equal(policy_rule_line(m.rule), 2);
	assert_false(m.settings.allow);
	assert_int_equal(m.settings.verify, POLICY_VERIFY_REQUIRED);
	assert_int_equal(m.settings.stanza_size, 65536);
	assert_int_equal(m.settings.tls, POLICY_TLS_REQUIRED);
	assert_string_equal(m.settings.route_host, "relay.example");
	assert_int_equal(m.settings.route_port, 5270);
	assert_int_equal(m.settings.rate, 1000);
	assert_int_equal(m.settings.burst, 2000);
	assert_int_equal(m.settings.connections, 0);
	assert_int_equal(m.settings.auth, POLICY_AUTH_ANY);
	assert_int_equal(m.settings.set, d.set | r.set);

	assert_int_equal(policy_match(p, "good.example", &m), 0);
	assert_int_equal(policy_rule_kind(m.rule), POLICY_DEFAULT);
	assert_true(m.settings.allow);
	assert_int_equal(m.settings.verify, POLICY_VERIFY_OPTIONAL);
	assert_int_equal(m.settings.set, d.set);
	policy_free(p);
}

struct add_case {
	const char	*pattern;
	const char	*origin;
	int		 line;
	const char	*err;		/* NULL: accepted */
	const char	*normal;	/* policy_rule_pattern() */
};

static void
test_add_errors(void **state)
{
	const struct add_case cases[] = {
		{ "Example.ORG.", CONF, 10, NULL, "example.org" },
		{ "*.Partner.Example", CONF, 11, NULL, "*.partner.example" },
		{ "*.bücher.example", CONF, 12, NULL,
		    "*.xn--bcher-kva.example" },
		{ "DEFAULT", CONF, 13, NULL, "default" },
		{ "ctl.example", "control", 0, NULL, "ctl.example" },
		/* Duplicates, however they are written. */
		{ "example.org", CONF, 20,
		    "peer \"example.org\" is already defined at "
		    CONF ":10", NULL },
		{ "*.partner.example.", "control", 0,
		    "peer \"*.partner.example.\" is already defined at "
		    CONF ":11", NULL },
		{ "*.xn--bcher-kva.example", CONF, 21,
		    "peer \"*.xn--bcher-kva.example\" is already defined at "
		    CONF ":12", NULL },
		{ "default", CONF, 22,
		    "peer \"default\" is already defined at " CONF ":13",
		    NULL },
		{ "CTL.example", CONF, 23,
		    "peer \"CTL.example\" is already defined at control",
		    NULL },
		/* Invalid patterns. */
		{ "a..b", CONF, 30, "invalid domain \"a..b\"", NULL },
		{ "", CONF, 31, "invalid domain \"\"", NULL },
		{ "*", CONF, 32, "invalid domain \"*\"", NULL },
		{ "*.", CONF, 33, "invalid domain \"*.\"", NULL },
		{ "*.*.example", CONF, 34, "invalid domain \"*.*.example\"",
		    NULL },
		{ "a.*.example", CONF, 35, "invalid domain \"a.*.example\"",
		    NULL },
		{ "*example.org", CONF, 36, "invalid domain \"*example.org\"",
		    NULL },
		{ "*.[::1]", CONF, 37, "invalid domain \"*.[::1]\"", NULL },
		{ "-x.example", CONF, 38, "invalid domain \"-x.example\"",
		    NULL },
	};
	struct policy		*p;
	struct policy_settings	 s = allow(true);
	struct policy_match	 m;
	char			 err[256];
	size_t			 i;
	int			 rv;

	(void)state;
	assert_non_null(p = policy_new());
	for (i = 0; i < nitems(cases); i++) {
		const struct add_case *c = &cases[i];

		err[0] = '\0';
		rv = policy_add(p, c->pattern, &s, c->origin, c->line, err,
		    sizeof(err));
		if (c->err == NULL) {
			if (rv != 0)
				fail_msg("\"%s\": %s", c->pattern, err);
			continue;
		}
		if (rv != -1)
			fail_msg("\"%s\": accepted", c->pattern);
		assert_string_equal(err, c->err);
	}
	/* The originals are still in place, patterns normalised. */
	for (i = 0; i < nitems(cases); i++) {
		const struct add_case *c = &cases[i];
		char q[300];

		if (c->normal == NULL)
			continue;
		if (strncmp(c->normal, "*.", 2) == 0)
			snprintf(q, sizeof(q), "x.%s", c->normal + 2);
		else if (strcmp(c->normal, "default") == 0)
			strlcpy(q, "unknown.example", sizeof(q));
		else
			strlcpy(q, c->normal, sizeof(q));
		assert_int_equal(policy_match(p, q, &m), 0);
		assert_non_null(m.rule);
		assert_string_equal(policy_rule_pattern(m.rule), c->normal);
		assert_int_equal(policy_rule_line(m.rule), c->line);
		assert_string_equal(policy_rule_origin(m.rule), c->origin);
	}
	/* err may be NULL. */
	assert_int_equal(policy_add(p, "a..b", &s, CONF, 1, NULL, 0), -1);
	policy_free(p);
}

static void
test_bad_settings(void **state)
{
	struct policy		*p;
	struct policy_settings	 s;
	char			 err[128];

	(void)state;
	assert_non_null(p = policy_new());
	s = tls(POLICY_TLS_REQUIRED);
	s.tls = 7;
	assert_int_equal(policy_add(p, "x.example", &s, CONF, 1, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "invalid settings for peer \"x.example\"");
	s = allow(true);
	s.set |= 0x8000;
	assert_int_equal(policy_add(p, "x.example", &s, CONF, 1, err,
	    sizeof(err)), -1);
	/* Out of range but not set: ignored. */
	s = allow(true);
	s.tls = 7;
	assert_int_equal(policy_add(p, "x.example", &s, CONF, 1, err,
	    sizeof(err)), 0);
	policy_free(p);
}

static void
test_set_remove(void **state)
{
	struct policy		*p;
	struct policy_settings	 s;
	struct policy_match	 m;
	char			 err[128];

	(void)state;
	assert_non_null(p = policy_new());
	s = allow(true);
	assert_int_equal(policy_add(p, "example.org", &s, CONF, 1, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_add(p, "*.example.org", &s, CONF, 2, err,
	    sizeof(err)), 0);
	/* policy_set replaces, whatever the spelling. */
	s = allow(false);
	assert_int_equal(policy_set(p, "EXAMPLE.org.", &s, "control", 0, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_match(p, "example.org", &m), 0);
	assert_false(m.settings.allow);
	assert_string_equal(policy_rule_origin(m.rule), "control");
	/* and adds when there is nothing to replace. */
	assert_int_equal(policy_set(p, "new.example", &s, "control", 0, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_set(p, "a..b", &s, "control", 0, err,
	    sizeof(err)), -1);

	/* The runtime rule hides the file's, which a remove gives back. */
	assert_non_null(policy_rule_shadowed(m.rule));
	assert_int_equal(policy_rule_line(policy_rule_shadowed(m.rule)), 1);
	assert_true(policy_rule_is_control(m.rule));
	assert_int_equal(policy_remove_runtime(p, "*.example.org"), -1);
	assert_int_equal(policy_remove_runtime(p, "Example.ORG"), 0);
	assert_int_equal(policy_remove_runtime(p, "example.org"), -1);
	assert_int_equal(policy_match(p, "example.org", &m), 0);
	assert_true(m.settings.allow);
	assert_string_equal(policy_rule_origin(m.rule), CONF);
	assert_false(policy_rule_is_control(m.rule));
	/* A runtime rule over a runtime rule keeps the file's beneath. */
	assert_int_equal(policy_set(p, "example.org", &s, "control", 0, err,
	    sizeof(err)), 0);
	s = allow(true);
	assert_int_equal(policy_set(p, "example.org", &s, "control", 0, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_match(p, "example.org", &m), 0);
	assert_int_equal(policy_rule_line(policy_rule_shadowed(m.rule)), 1);
	assert_int_equal(policy_remove(p, "example.org"), 0);
	assert_int_equal(policy_match(p, "example.org", &m), 0);
	assert_string_equal(policy_rule_origin(m.rule), CONF);

	/* Remove: exact, then the wildcard, then nothing left. */
	assert_int_equal(policy_remove(p, "Example.ORG"), 0);
	assert_int_equal(policy_remove(p, "example.org"), -1);
	assert_int_equal(policy_match(p, "example.org", &m), 0);
	assert_null(m.rule);
	assert_int_equal(policy_match(p, "a.example.org", &m), 0);
	assert_int_equal(policy_rule_kind(m.rule), POLICY_SUFFIX);
	assert_int_equal(policy_remove(p, "*.example.org"), 0);
	assert_int_equal(policy_match(p, "a.example.org", &m), 0);
	assert_null(m.rule);
	assert_int_equal(policy_remove(p, "default"), -1);
	assert_int_equal(policy_remove(p, "a..b"), -1);
	assert_int_equal(policy_add(p, "default", &s, CONF, 3, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_remove(p, "default"), 0);
	/* Once removed, a pattern can be added again. */
	assert_int_equal(policy_add(p, "example.org", &s, CONF, 4, err,
	    sizeof(err)), 0);
	policy_free(p);
}

/* Append "pattern@origin:line;" to the string arg. */
static void
collect(const struct policy_rule *r, void *arg)
{
	char	*buf = arg;
	size_t	 len = strlen(buf);

	snprintf(buf + len, 512 - len, "%s@%s:%d;", policy_rule_pattern(r),
	    policy_rule_origin(r), policy_rule_line(r));
}

/* A runtime rule as one line of fedgated.conf. */
static void
test_format(void **state)
{
	struct policy *p;
	struct policy_settings s;
	struct policy_match m;
	char err[128], line[256];

	(void)state;
	assert_non_null(p = policy_new());
	s = allow(false);
	assert_int_equal(policy_set(p, "*.Spam.Example", &s, "control", 0,
	    err, sizeof(err)), 0);
	assert_int_equal(policy_match(p, "a.spam.example", &m), 0);
	assert_int_equal(policy_rule_format(m.rule, line, sizeof(line)), 0);
	assert_string_equal(line, "peer \"*.spam.example\" { deny }");
	s = allow(true);
	s.set |= POLICY_SET_TLS | POLICY_SET_AUTH | POLICY_SET_VERIFY;
	s.tls = POLICY_TLS_REQUIRED;
	s.verify = POLICY_VERIFY_NONE;
	s.auth = POLICY_AUTH_EXTERNAL;
	assert_int_equal(policy_set(p, "x.example", &s, "control", 0, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_match(p, "x.example", &m), 0);
	assert_int_equal(policy_rule_format(m.rule, line, sizeof(line)), 0);
	assert_string_equal(line, "peer \"x.example\" { allow; tls required; "
	    "verify none; auth external }");
	/* too small: refused, not cut */
	assert_int_equal(policy_rule_format(m.rule, line, 20), -1);
	/* a setting a runtime rule cannot hold */
	s.set |= POLICY_SET_RATE;
	s.rate = 1024;
	assert_int_equal(policy_set(p, "y.example", &s, "control", 0, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_match(p, "y.example", &m), 0);
	assert_int_equal(policy_rule_format(m.rule, line, sizeof(line)), -1);
	policy_free(p);
}

static void
test_copy_overrides(void **state)
{
	struct policy		*old, *new;
	struct policy_settings	 s = allow(true), t = tls(POLICY_TLS_NONE);
	struct policy_match	 m;
	char			 err[128], list[512] = "";

	(void)state;
	assert_non_null(old = policy_new());
	assert_non_null(new = policy_new());
	assert_int_equal(policy_add(old, "file.example", &s, CONF, 1, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_add(old, "ctl.example", &t, "control", 0, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_add(old, "*.ctl.example", &s, "control", 0,
	    err, sizeof(err)), 0);
	assert_int_equal(policy_add(old, "default", &t, "control", 0, err,
	    sizeof(err)), 0);
	/* The new file has its own rule for ctl.example. */
	assert_int_equal(policy_add(new, "ctl.example", &s, CONF, 5, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_add(new, "other.example", &s, CONF, 6, err,
	    sizeof(err)), 0);

	assert_int_equal(policy_copy_overrides(new, old), 0);
	policy_foreach(new, collect, list);
	assert_string_equal(list,
	    "default@control:0;"
	    "ctl.example@control:0;other.example@" CONF ":6;"
	    "*.ctl.example@control:0;");
	/* The copies are independent of old. */
	policy_free(old);
	assert_int_equal(policy_match(new, "ctl.example", &m), 0);
	assert_int_equal(m.settings.tls, POLICY_TLS_NONE);
	assert_false(m.settings.allow);		/* built-in */
	assert_int_equal(policy_match(new, "a.ctl.example", &m), 0);
	assert_true(m.settings.allow);
	assert_int_equal(m.settings.tls, POLICY_TLS_NONE);	/* default */
	assert_int_equal(policy_match(new, "file.example", &m), 0);
	assert_int_equal(policy_rule_kind(m.rule), POLICY_DEFAULT);
	policy_free(new);
}

struct name_case {
	const char	*name;
	int		 value;
};

static void
test_names(void **state)
{
	const struct name_case tlss[] = {
		{ "none", POLICY_TLS_NONE },
		{ "optional", POLICY_TLS_OPTIONAL },
		{ "required", POLICY_TLS_REQUIRED },
	};
	const struct name_case verifies[] = {
		{ "none", POLICY_VERIFY_NONE },
		{ "optional", POLICY_VERIFY_OPTIONAL },
		{ "required", POLICY_VERIFY_REQUIRED },
	};
	const struct name_case auths[] = {
		{ "dialback", POLICY_AUTH_DIALBACK },
		{ "external", POLICY_AUTH_EXTERNAL },
		{ "any", POLICY_AUTH_ANY },
	};
	const struct name_case resolves[] = {
		{ "srv", POLICY_RESOLVE_SRV },
		{ "original", POLICY_RESOLVE_ORIGINAL },
	};
	enum policy_tls		 t;
	enum policy_verify	 v;
	enum policy_auth	 a;
	enum policy_resolve	 r;
	size_t			 i;

	(void)state;
	for (i = 0; i < nitems(tlss); i++) {
		assert_string_equal(policy_tls_name(tlss[i].value),
		    tlss[i].name);
		assert_int_equal(policy_tls_parse(tlss[i].name, &t), 0);
		assert_int_equal(t, tlss[i].value);
	}
	for (i = 0; i < nitems(verifies); i++) {
		assert_string_equal(policy_verify_name(verifies[i].value),
		    verifies[i].name);
		assert_int_equal(policy_verify_parse(verifies[i].name, &v), 0);
		assert_int_equal(v, verifies[i].value);
	}
	for (i = 0; i < nitems(auths); i++) {
		assert_string_equal(policy_auth_name(auths[i].value),
		    auths[i].name);
		assert_int_equal(policy_auth_parse(auths[i].name, &a), 0);
		assert_int_equal(a, auths[i].value);
	}
	for (i = 0; i < nitems(resolves); i++) {
		assert_string_equal(policy_resolve_name(resolves[i].value),
		    resolves[i].name);
		assert_int_equal(policy_resolve_parse(resolves[i].name, &r), 0);
		assert_int_equal(r, resolves[i].value);
	}
	assert_int_equal(policy_tls_parse("require", &t), -1);
	assert_int_equal(policy_verify_parse("", &v), -1);
	assert_int_equal(policy_auth_parse("sasl", &a), -1);
	assert_int_equal(policy_resolve_parse("SRV", &r), -1);
	assert_int_equal(policy_tls_parse(NULL, &t), -1);
	assert_string_equal(policy_tls_name(9), "unknown");
	assert_string_equal(policy_auth_name(0), "unknown");
}

/* tls min-version and tls ciphers: names, wire numbers, inheritance. */
static void
test_tls_version(void **state)
{
	const struct name_case versions[] = {
		{ "TLSv1", POLICY_TLS_V1_0 },
		{ "TLSv1.1", POLICY_TLS_V1_1 },
		{ "TLSv1.2", POLICY_TLS_V1_2 },
		{ "TLSv1.3", POLICY_TLS_V1_3 },
	};
	const char *bad[] = { "tlsv1", "TLSv1.4", "SSLv3", "TLSv1.", "", "1.0" };
	struct policy		*p;
	struct policy_settings	 d, r, s;
	char			 longer[POLICY_CIPHERS_MAX + 1];
	struct policy_match	 m;
	enum policy_tls_version	 v;
	char			 err[128];
	size_t			 i;

	(void)state;
	for (i = 0; i < nitems(versions); i++) {
		assert_string_equal(policy_tls_version_name(versions[i].value),
		    versions[i].name);
		assert_int_equal(policy_tls_version_parse(versions[i].name, &v),
		    0);
		assert_int_equal(v, versions[i].value);
		/* the numbers TLS writes, as OpenSSL's TLS1_x_VERSION */
		assert_int_equal(policy_tls_version_number(versions[i].value),
		    0x0301 + (int)i);
	}
	assert_int_equal(policy_tls_version_parse("TLSv1.0", &v), 0);
	assert_int_equal(v, POLICY_TLS_V1_0);
	for (i = 0; i < nitems(bad); i++)
		assert_int_equal(policy_tls_version_parse(bad[i], &v), -1);
	assert_int_equal(policy_tls_version_parse(NULL, &v), -1);
	assert_string_equal(policy_tls_version_name(9), "unknown");
	assert_int_equal(policy_tls_version_number(9), 0);

	/* built-in: TLS 1.2, no cipher list of the rule's own */
	policy_settings_init(&s);
	assert_int_equal(s.tls_min, POLICY_TLS_V1_2);
	assert_string_equal(s.ciphers, "");

	/* the default rule's ciphers reach a rule that sets only min-version */
	assert_non_null(p = policy_new());
	d = allow(true);
	d.set |= POLICY_SET_CIPHERS;
	d.ciphers = policy_text("ECDHE+AESGCM");
	assert_int_equal(policy_add(p, "default", &d, CONF, 1, err,
	    sizeof(err)), 0);
	r = allow(true);
	r.set |= POLICY_SET_TLS_MIN;
	r.tls_min = POLICY_TLS_V1_0;
	assert_int_equal(policy_add(p, "old.example", &r, CONF, 2, err,
	    sizeof(err)), 0);
	assert_int_equal(policy_match(p, "old.example", &m), 0);
	assert_int_equal(m.settings.tls_min, POLICY_TLS_V1_0);
	assert_string_equal(m.settings.ciphers, "ECDHE+AESGCM");
	assert_int_equal(m.settings.set & (POLICY_SET_TLS_MIN |
	    POLICY_SET_CIPHERS), POLICY_SET_TLS_MIN | POLICY_SET_CIPHERS);
	/* another peer keeps the built-in minimum */
	assert_int_equal(policy_match(p, "new.example", &m), 0);
	assert_int_equal(m.settings.tls_min, POLICY_TLS_V1_2);
	assert_false(m.settings.set & POLICY_SET_TLS_MIN);

	/* out of range, a list too long or none at all: refused */
	s = allow(true);
	s.set |= POLICY_SET_TLS_MIN;
	s.tls_min = 7;
	assert_int_equal(policy_add(p, "x.example", &s, CONF, 3, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "invalid settings for peer \"x.example\"");
	memset(longer, 'A', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	s = allow(true);
	s.set |= POLICY_SET_CIPHERS;
	s.ciphers = longer;
	assert_int_equal(policy_add(p, "x.example", &s, CONF, 3, err,
	    sizeof(err)), -1);
	s.ciphers = NULL;
	assert_int_equal(policy_add(p, "x.example", &s, CONF, 3, err,
	    sizeof(err)), -1);
	/* a runtime rule cannot be written with them */
	assert_int_equal(policy_match(p, "old.example", &m), 0);
	assert_int_equal(policy_rule_format(m.rule, err, sizeof(err)), -1);
	policy_free(p);
}

/* Settings share their texts: one copy of each, whoever sets it. */
static void
test_text_shared(void **state)
{
	char a[] = "ECDHE+AESGCM", b[] = "ECDHE+AESGCM";
	const char *t = policy_text(a);

	assert_non_null(t);
	assert_ptr_not_equal(t, a);
	assert_string_equal(t, "ECDHE+AESGCM");
	assert_ptr_equal(policy_text(b), t);	/* the same text: the same copy */
	a[0] = 'X';				/* the caller's buffer is its own */
	assert_string_equal(t, "ECDHE+AESGCM");
	assert_ptr_not_equal(policy_text("relay.example"), t);
	assert_string_equal(policy_text(""), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_order),
		cmocka_unit_test(test_text_shared),
		cmocka_unit_test(test_match_no_default),
		cmocka_unit_test(test_no_rules),
		cmocka_unit_test(test_inheritance),
		cmocka_unit_test(test_add_errors),
		cmocka_unit_test(test_bad_settings),
		cmocka_unit_test(test_set_remove),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_copy_overrides),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_tls_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
