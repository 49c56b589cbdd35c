/*
 * xmlscan: the fast path's verdicts, case by case. Each accepted case
 * gives its span, start tag and attributes; each punted case is one expat
 * must decide (tests/fuzz/fuzz_xmlscan.c checks the accepted ones against
 * expat on millions of inputs). Every accepted case is also cut short at
 * every byte: a truncated element is never accepted, but asked for again
 * with more bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "xmlscan.h"

static const struct xmlscan_limits defaults = { 256 * 1024, 32, 64 };

struct accept_case {
	const char	*in;		/* the element, then maybe more */
	size_t		 len;		/* of the element */
	size_t		 starttaglen;
	const char	*name;
	const char	*attrs;		/* "name=value;..." unescaped */
};

static void
render_attrs(const struct xmlscan_element *e, char *out, size_t size)
{
	char	 v[256];
	size_t	 i, o = 0;

	out[0] = '\0';
	for (i = 0; i < e->nattrs; i++) {
		assert_true(e->attrs[i].valuelen < sizeof(v));
		xmlscan_unescape(e->attrs[i].value, e->attrs[i].valuelen, v);
		o += (size_t)snprintf(out + o, size - o, "%.*s=%s;",
		    (int)e->attrs[i].namelen, e->attrs[i].name, v);
		assert_true(o < size);
	}
}

static void
test_accepted(void **state)
{
	static const struct accept_case cases[] = {
		{ "<message/>", 10, 10, "message", "" },
		{ "<message />trailing", 11, 11, "message", "" },
		{ "<message to='a@b' from=\"c\"></message>", 37, 27,
		    "message", "to=a@b;from=c;" },
		{ "<presence xml:lang='en' type = 'x'/>", 36, 36, "presence",
		    "xml:lang=en;type=x;" },
		{ "<m a='&lt;&gt;&amp;&apos;&quot;'/>", 34, 34, "m",
		    "a=<>&'\";" },
		{ "<m a='&#65;&#x42;&#x20AC;'/>", 28, 28, "m", "a=AB\xe2\x82\xac;" },
		{ "<m a='\"' b=\"'\"/>", 16, 16, "m", "a=\";b=';" },
		{ "<m><body>caf\xc3\xa9 &amp; \xf0\x9f\x98\x80</body></m>", 36,
		    3, "m", "" },
		{ "<m><x:a xmlns:x='urn:x' x:b='1'><x:c/></x:a></m>", 48, 3,
		    "m", "" },
		{ "<m><a xmlns='urn:a'><b xmlns=''/></a></m >", 42, 3, "m",
		    "" },
		{ "<m>\r\n\t]]&gt; ] ]] &#13;</m>", 27, 3, "m", "" },
		{ "<iq id='1'><q xml:lang='de' a='&#9;'/></iq>  <x/>", 43, 11,
		    "iq", "id=1;" },
	};
	struct xmlscan_element	 e;
	char			 attrs[512];
	size_t			 i, cut;

	for (i = 0; i < nitems(cases); i++) {
		const struct accept_case *c = &cases[i];

		assert_int_equal(xmlscan_element(c->in, strlen(c->in),
		    &defaults, &e), XMLSCAN_OK);
		assert_int_equal(e.len, c->len);
		assert_int_equal(e.starttaglen, c->starttaglen);
		assert_int_equal(e.namelen, strlen(c->name));
		assert_memory_equal(e.name, c->name, e.namelen);
		render_attrs(&e, attrs, sizeof(attrs));
		assert_string_equal(attrs, c->attrs);
		assert_int_equal(xmlscan_element(c->in, 0, &defaults, &e),
		    XMLSCAN_PUNT);
		for (cut = 1; cut < c->len; cut++)
			assert_int_equal(xmlscan_element(c->in, cut, &defaults,
			    &e), XMLSCAN_MORE);
	}
}

static void
test_punted(void **state)
{
	static const char *const cases[] = {
		/* not a stanza, or not one this scanner frames */
		"message/>", "<db:result/>", "<m xmlns='jabber:server'/>",
		"<m xmlns:x='urn:x'/>", "<m x:a='1'/>", "</m>", "<?pi?>",
		"<!-- c -->", "<m\xc3\xa9/>", "<1m/>", "<m:a:b/>",
		/* what expat refuses */
		"<m a='1' a='2'/>", "<m a='1'b='2'/>", "<m a=1/>",
		"<m a='<'/>", "<m a='&foo;'/>", "<m a='&#0;'/>",
		"<m a='&#xD800;'/>", "<m a='&#x110000;'/>", "<m a='&#X41;'/>",
		"<m a='&#;'/>", "<m>&amp</m>", "<m>]]></m>", "<m>\x01</m>",
		"<m>\xc0\x80</m>", "<m>\xed\xa0\x80</m>", "<m>\xef\xbf\xbe</m>",
		"<m>\xf4\x90\x80\x80</m>", "<m>\xff</m>", "<m><a></b></m>",
		"<m><p:a/></m>", "<m><a xmlns:p=''/></m>",
		"<m><a xmlns:xml='urn:x'/></m>", "<m><a xmlns:p='urn:p' "
		"xmlns:q='urn:p' p:x='1' q:x='2'/></m>", "<m / >",
		/* what expat normalises, or might decide otherwise */
		"<m a='\t'/>", "<m a='\n'/>", "<m><![CDATA[x]]></m>",
		"<m><a xmlns='http://www.w3.org/XML/1998/namespace'/></m>",
		"<m><a xmlns:p='&amp;'/></m>", "<m><a xmlns:p='a b'/></m>",
		"<m><a xmlns=' '/></m>",
	};
	struct xmlscan_element	e;
	size_t			i;

	for (i = 0; i < nitems(cases); i++)
		assert_int_equal(xmlscan_element(cases[i], strlen(cases[i]),
		    &defaults, &e), XMLSCAN_PUNT);
}

/* Cut short: MORE when every byte so far is right, PUNT when one is not. */
static void
test_cut(void **state)
{
	static const struct {
		const char		*in;
		enum xmlscan_result	 r;
	} cases[] = {
		{ "<message to='a", XMLSCAN_MORE }, { "<m><b>x</b", XMLSCAN_MORE },
		{ "<m>&am", XMLSCAN_MORE }, { "<m>&#x1F", XMLSCAN_MORE },
		{ "<m>\xe2\x82", XMLSCAN_MORE }, { "<m>\xf0", XMLSCAN_MORE },
		{ "<m>]]", XMLSCAN_MORE }, { "<m>]", XMLSCAN_MORE },
		{ "<m></m", XMLSCAN_MORE }, { "<m><p:", XMLSCAN_MORE },
		{ "<m /", XMLSCAN_MORE }, { "<m a", XMLSCAN_MORE },
		{ "<m a='1' a='2'", XMLSCAN_PUNT }, { "<m>\xff", XMLSCAN_PUNT },
		{ "<m>&foo", XMLSCAN_PUNT }, { "<m>&#x110000", XMLSCAN_PUNT },
		{ "<m>\xe2\x28", XMLSCAN_PUNT }, { "<m><!-", XMLSCAN_PUNT },
		{ "<m></n", XMLSCAN_PUNT },
	};
	static const struct xmlscan_limits small = { 8, 32, 64 };
	struct xmlscan_element	e;
	size_t			i;

	for (i = 0; i < nitems(cases); i++) {
		if (xmlscan_element(cases[i].in, strlen(cases[i].in),
		    &defaults, &e) != cases[i].r) {
			print_error("case %zu: %s\n", i, cases[i].in);
			fail();
		}
	}
	/* at the size limit, more bytes cannot help */
	assert_int_equal(xmlscan_element("<message to", 11, &small, &e),
	    XMLSCAN_PUNT);
}

/* Limits: what goes beyond one is left to expat, which reports it. */
static void
test_limits(void **state)
{
	static const struct xmlscan_limits small = { 20, 2, 2 };
	struct xmlscan_element	e;

	assert_int_equal(xmlscan_element("<m><a/></m>", 11, &small, &e),
	    XMLSCAN_OK);
	assert_int_equal(xmlscan_element("<m><a><b/></a></m>", 18, &small,
	    &e), XMLSCAN_PUNT);			/* depth 3 */
	assert_int_equal(xmlscan_element("<m a='1' b='2'/>", 16, &small, &e),
	    XMLSCAN_OK);
	assert_int_equal(xmlscan_element("<m a='1' b='2' c='3'/>", 22, &small,
	    &e), XMLSCAN_PUNT);			/* 3 attributes */
	assert_int_equal(xmlscan_element("<m>0123456789012</m>", 20, &small,
	    &e), XMLSCAN_OK);			/* 20 bytes */
	assert_int_equal(xmlscan_element("<m>01234567890123</m>", 21, &small,
	    &e), XMLSCAN_PUNT);			/* 21 bytes */
}

static void
test_space(void **state)
{
	assert_int_equal(xmlscan_space(" \t\r\n<", 5), 4);
	assert_int_equal(xmlscan_space("<", 1), 0);
	assert_int_equal(xmlscan_space("  ", 2), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_punted),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_space),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
