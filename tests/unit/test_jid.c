/*
 * test_jid: domain normalisation, JID splitting, domain spans.
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "jid.h"
#include "util.h"

#define SLOTS	8	/* results of one table stay valid */

/* A string of n copies of c, then tail. */
static const char *
repeat(char c, size_t n, const char *tail)
{
	static char	 buf[SLOTS][2048];
	static int	 slot;
	char		*b = buf[slot++ % SLOTS];

	memset(b, c, n);
	strlcpy(b + n, tail, sizeof(buf[0]) - n);
	return b;
}

/* A name of n bytes: labels of 63 'a' joined by dots, then 'b's. */
static const char *
long_name(size_t n)
{
	static char	 buf[SLOTS][2048];
	static int	 slot;
	char		*b = buf[slot++ % SLOTS];
	size_t		 i;

	for (i = 0; i < n; i++)
		b[i] = (i % 64 == 63) ? '.' : 'a';
	if (b[n - 1] == '.')
		b[n - 1] = 'b';
	b[n] = '\0';
	return b;
}

struct norm_case {
	const char	*in;
	const char	*out;	/* NULL: invalid */
};

static void
test_domain_normalize(void **state)
{
	const struct norm_case cases[] = {
		{ "example.org", "example.org" },
		{ "Example.ORG", "example.org" },
		{ "EXAMPLE.ORG.", "example.org" },
		{ "example.org..", NULL },
		{ ".", NULL },
		{ "", NULL },
		{ "localhost", "localhost" },
		{ "a-b.example", "a-b.example" },
		{ "1.example", "1.example" },
		/* Internationalised names. */
		{ "bücher.example", "xn--bcher-kva.example" },
		{ "BÜCHER.example", "xn--bcher-kva.example" },
		{ "BÜCHER.Example.", "xn--bcher-kva.example" },
		{ "xn--bcher-kva.example", "xn--bcher-kva.example" },
		{ "XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example" },
		{ "faß.de", "xn--fa-hia.de" },		/* non-transitional */
		{ "ＥＸＡＭＰＬＥ.org", "example.org" },	/* width folded */
		{ "a。b", "a.b" },			/* ideographic stop */
		{ "bücher.example。", "xn--bcher-kva.example" },
		/* Bad A-labels. */
		{ "xn--zz.example", NULL },
		{ "xn--.example", NULL },
		{ "xn--abc-.example", NULL },		/* decodes to ASCII */
		{ "xn--ls8h.example", NULL },		/* disallowed emoji */
		/* Bad labels and code points. */
		{ "a..b", NULL },
		{ ".example", NULL },
		{ "-a.example", NULL },
		{ "a-.example", NULL },
		{ "ab--c.example", NULL },
		{ "a_b.example", NULL },
		{ "a b.example", NULL },
		{ "*.example", NULL },
		{ "a@b", NULL },
		{ "a/b", NULL },
		{ "a\xe2\x98\x83.example", NULL },	/* U+2603 snowman */
		{ "\xe2\x80\x8d.example", NULL },	/* lone ZWJ */
		{ "\xff\xfe.example", NULL },		/* not UTF-8 */
		/* Lengths. */
		{ repeat('a', 63, ".example"), repeat('a', 63, ".example") },
		{ repeat('a', 64, ".example"), NULL },
		{ long_name(253), long_name(253) },
		{ long_name(254), NULL },
		{ long_name(300), NULL },
		{ repeat('a', 1100, ""), NULL },
		/* IP literals. */
		{ "192.0.2.1", "192.0.2.1" },
		{ "[2001:DB8::1]", "[2001:db8::1]" },
		{ "[::1]", "[::1]" },
		{ "[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]" },
		{ "[192.0.2.1]", NULL },
		{ "[::1", NULL },
		{ "[fe80::1%eth0]", NULL },
		{ "2001:db8::1", NULL },
	};
	char	 out[JID_DOMAIN_MAX];
	size_t	 i;
	int	 rv;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		const struct norm_case *c = &cases[i];

		memset(out, 'X', sizeof(out));
		rv = jid_domain_normalize(c->in, out, sizeof(out));
		if (c->out == NULL) {
			if (rv != -1)
				fail_msg("case %zu \"%.40s\": accepted as "
				    "\"%s\"", i, c->in, out);
		} else {
			if (rv != 0)
				fail_msg("case %zu \"%.40s\": rejected", i,
				    c->in);
			assert_string_equal(out, c->out);
		}
	}
}

static void
test_domain_normalize_outlen(void **state)
{
	char	 out[12];

	(void)state;
	assert_int_equal(jid_domain_normalize("example.org", out, 12), 0);
	assert_string_equal(out, "example.org");
	assert_int_equal(jid_domain_normalize("example.org", out, 11), -1);
	assert_int_equal(jid_domain_normalize("[::1]", out, 5), -1);
	assert_int_equal(jid_domain_normalize(NULL, out, sizeof(out)), -1);
}

/*
 * The ASCII fast path gives what libidn2 gives: every name of the table
 * below and a fixed pseudo-random set of names over letters, digits,
 * hyphens and dots, each compared with jid_domain_normalize_idn2().
 */
static void
test_domain_normalize_fast_path(void **state)
{
	static const char *const names[] = {
		"example.org", "EXAMPLE.org.", "a", "a.", ".", "..", "a..b",
		"-a.example", "a-.example", "a--b.example", "ab--c.example",
		"xn--bcher-kva.example", "XN--BCHER-KVA.example",
		"xn--.example", "xn--a.example", "1.2.3", "123", "0x1.example",
		"a.b.c.d.e.f.g.h", "xn--nxasmq6b.example", "Ab-Cd.EF",
	};
	static const char alphabet[] = "abcXYZ019-.";
	char	 in[80], fast[JID_DOMAIN_MAX], slow[JID_DOMAIN_MAX];
	uint32_t seed = 12345;
	int	 a, b;

	(void)state;
	for (size_t i = 0; i < nitems(names) + 200000; i++) {
		if (i < nitems(names))
			snprintf(in, sizeof(in), "%s", names[i]);
		else {
			size_t len = 1 + (seed >> 16) % 20;

			for (size_t k = 0; k < len; k++) {
				seed = seed * 1103515245u + 12345u;
				in[k] = alphabet[(seed >> 16) %
				    (sizeof(alphabet) - 1)];
			}
			in[len] = '\0';
			seed = seed * 1103515245u + 12345u;
		}
		memset(fast, 'X', sizeof(fast));
		memset(slow, 'Y', sizeof(slow));
		a = jid_domain_normalize(in, fast, sizeof(fast));
		b = jid_domain_normalize_idn2(in, slow, sizeof(slow));
		/* dotted quads are IP literals, which libidn2 does not see */
		if (a == 0 && b == -1 && strspn(in, "0123456789.") ==
		    strlen(in))
			continue;
		if (a != b || (a == 0 && strcmp(fast, slow) != 0))
			fail_msg("\"%s\": fast path %d \"%s\", libidn2 %d "
			    "\"%s\"", in, a, a == 0 ? fast : "", b,
			    b == 0 ? slow : "");
	}
}

struct equal_case {
	const char	*a;
	const char	*b;
	bool		 equal;
};

static void
test_domain_is_equal(void **state)
{
	const struct equal_case cases[] = {
		{ "example.org", "EXAMPLE.org.", true },
		{ "bücher.example", "xn--bcher-kva.example", true },
		{ "BÜCHER.example", "XN--BCHER-KVA.example", true },
		{ "example.org", "example.com", false },
		{ "a..b", "a..b", false },		/* invalid is unequal */
		{ "", "", false },
		{ "[::1]", "[::1]", true },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++)
		if (jid_domain_is_equal(cases[i].a, cases[i].b) !=
		    cases[i].equal)
			fail_msg("case %zu: \"%s\" vs \"%s\"", i, cases[i].a,
			    cases[i].b);
}

struct parse_case {
	const char	*in;
	int		 rv;
	const char	*local;
	const char	*domain;
	const char	*resource;
	size_t		 off;	/* jid_domain_span() */
	size_t		 dlen;
};

static void
test_parse(void **state)
{
	const struct parse_case cases[] = {
		{ "example.org", 0, "", "example.org", "", 0, 11 },
		{ "user@example.org", 0, "user", "example.org", "", 5, 11 },
		{ "user@Example.ORG/res", 0, "user", "example.org", "res",
		    5, 11 },
		{ "example.org/res", 0, "", "example.org", "res", 0, 11 },
		/* The resource is everything after the first slash. */
		{ "a@b.example/c@d/e", 0, "a", "b.example", "c@d/e", 2, 9 },
		{ "b.example/c@d", 0, "", "b.example", "c@d", 0, 9 },
		{ "u@bücher.example/Ünï", 0, "u", "xn--bcher-kva.example",
		    "Ünï", 2, 15 },
		{ "u@example.org./r", 0, "u", "example.org", "r", 2, 12 },
		{ "u@192.0.2.1", 0, "u", "192.0.2.1", "", 2, 9 },
		{ "u@[2001:db8::1]/r", 0, "u", "[2001:db8::1]", "r", 2, 13 },
		/* Shapes. */
		{ "", -1, NULL, NULL, NULL, 0, 0 },
		{ "@example.org", -1, NULL, NULL, NULL, 0, 0 },
		{ "user@", -1, NULL, NULL, NULL, 0, 0 },
		{ "user@/r", -1, NULL, NULL, NULL, 0, 0 },
		{ "example.org/", -1, NULL, NULL, NULL, 0, 0 },
		{ "/res", -1, NULL, NULL, NULL, 0, 0 },
		/* Bad domain, good shape: only jid_parse() sees it. */
		{ "a@b@c", -1, NULL, NULL, NULL, 2, 3 },
		{ "u@a..b", -1, NULL, NULL, NULL, 2, 4 },
		{ "u@Example.ORG", 0, "u", "example.org", "", 2, 11 },
		/* Part lengths. */
		{ repeat('l', 1023, "@example.org"), 0, repeat('l', 1023, ""),
		    "example.org", "", 1024, 11 },
		{ repeat('l', 1024, "@example.org"), -1, NULL, NULL, NULL,
		    0, 0 },
	};
	struct jid	 j;
	size_t		 i, off, dlen;
	int		 rv, srv;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		const struct parse_case *c = &cases[i];
		size_t len = strlen(c->in);

		rv = jid_parse(c->in, len, &j);
		if (rv != c->rv)
			fail_msg("case %zu \"%.40s\": jid_parse %d", i, c->in,
			    rv);
		if (rv == 0) {
			assert_string_equal(j.local, c->local);
			assert_string_equal(j.domain, c->domain);
			assert_string_equal(j.resource, c->resource);
		}
		srv = jid_domain_span(c->in, len, &off, &dlen);
		if (c->dlen == 0) {
			if (srv != -1)
				fail_msg("case %zu \"%.40s\": span accepted",
				    i, c->in);
			continue;
		}
		if (srv != 0 || off != c->off || dlen != c->dlen)
			fail_msg("case %zu \"%.40s\": span %d %zu+%zu", i,
			    c->in, srv, off, dlen);
	}
}

static void
test_parse_bounds(void **state)
{
	const char	 nul[] = "u@example.org\0/r";
	const char	*r1023 = repeat('r', 1023, "");
	char		 big[1100];
	struct jid	 j;
	size_t		 off, dlen;

	(void)state;
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(jid_parse("u@example.org/rXXX", 15, &j), 0);
	assert_string_equal(j.resource, "r");
	assert_int_equal(jid_domain_span("u@example.orgXX", 13, &off, &dlen),
	    0);
	assert_int_equal(dlen, 11);
	/* A NUL byte inside is invalid. */
	assert_int_equal(jid_parse(nul, sizeof(nul) - 1, &j), -1);
	assert_int_equal(jid_domain_span(nul, sizeof(nul) - 1, &off, &dlen),
	    -1);
	/* Resource at and past its limit. */
	snprintf(big, sizeof(big), "e.example/%s", r1023);
	assert_int_equal(jid_parse(big, strlen(big), &j), 0);
	assert_int_equal(strlen(j.resource), 1023);
	snprintf(big, sizeof(big), "e.example/%sr", r1023);
	assert_int_equal(jid_parse(big, strlen(big), &j), -1);
	/* j is unchanged on failure. */
	assert_int_equal(jid_parse("u@example.org/r", 15, &j), 0);
	assert_int_equal(jid_parse("v@a..b/s", 8, &j), -1);
	assert_string_equal(j.local, "u");
	assert_string_equal(j.domain, "example.org");
	assert_string_equal(j.resource, "r");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domain_normalize),
		cmocka_unit_test(test_domain_normalize_outlen),
		cmocka_unit_test(test_domain_normalize_fast_path),
		cmocka_unit_test(test_domain_is_equal),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
