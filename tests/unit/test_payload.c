/*
 * payload: the payload rewriter, case by case. Every JID attribute of the
 * table in both directions (inside -> outside maps the internal name to
 * the public one, outside -> inside the reverse), each case's output
 * mapped back giving the input again; what must pass unchanged (text,
 * other attributes, other namespaces, look-alike domains); escaping;
 * prefixes bound on the body, the stanza or the stream header; nested
 * forwarded stanzas; malformed bodies and the limits. The API takes a
 * whole stanza body: every case is fed whole, with and without the
 * stanza's end tag, and to buffers of every size below what it needs.
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "util.h"

#define INTERNAL	"corp.internal"
#define PUBLIC		"corp.example"

static const struct payload_map map_out[] = {
	{ INTERNAL, PUBLIC, 0 },
};
static const struct payload_map map_in[] = {
	{ PUBLIC, INTERNAL, 0 },
};

/* The stream header's declarations, as fedgated's peers write them. */
static const struct xmlstream_nsdecl header_ns[] = {
	{ NULL, "jabber:server" },
	{ "stream", "http://etherx.jabber.org/streams" },
	{ "db", "jabber:server:dialback" },
};

/*
 * Rewrite body (the bytes after <message ...>) with map; expect want
 * (NULL: unchanged). Also feed it to buffers too small and check the
 * result is the same prefix and length.
 */
static void
check_body(const char *body, const struct xmlstream_nsdecl *sns, size_t nsns,
    const struct payload_map *map, size_t nmap, const char *want)
{
	struct payload_body	 b = { body, strlen(body), header_ns,
				    nitems(header_ns), sns, nsns };
	enum payload_result	 r;
	char			*out;
	size_t			 len = 0, small, len2;

	out = malloc(b.len * 2 + 256);
	assert_non_null(out);
	r = payload_rewrite(&b, map, nmap, out, b.len * 2 + 256, &len);
	if (want == NULL) {
		if (r != PAYLOAD_UNCHANGED)
			print_error("expected unchanged: %s\n", body);
		assert_int_equal(r, PAYLOAD_UNCHANGED);
		free(out);
		return;
	}
	if (r != PAYLOAD_REWRITTEN || len != strlen(want) ||
	    memcmp(out, want, len) != 0)
		print_error("in:   %s\nwant: %s\ngot:  %.*s (%d)\n", body, want,
		    r == PAYLOAD_REWRITTEN ? (int)len : 0, out, r);
	assert_int_equal(r, PAYLOAD_REWRITTEN);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	/* the pre-check never says no to a body that gets rewritten */
	assert_true(payload_may_match(body, b.len, map, nmap));
	for (small = 0; small < len; small++) {
		memset(out, 'Z', len + 1);
		assert_int_equal(payload_rewrite(&b, map, nmap, out, small,
		    &len2), PAYLOAD_REWRITTEN);
		assert_int_equal(len2, len);
		assert_memory_equal(out, want, small);
		assert_int_equal(out[small], 'Z');
	}
	free(out);
}

/* Replace each {D} of t with d (a rewritten domain), {K} with k (one that
 * stays). */
static char *
expand(const char *t, const char *d, const char *k)
{
	size_t	 n = strlen(t) * 4 + 1, o = 0;
	char	*s = malloc(n);

	assert_non_null(s);
	while (*t != '\0') {
		if (strncmp(t, "{D}", 3) == 0 || strncmp(t, "{K}", 3) == 0) {
			o += (size_t)snprintf(s + o, n - o, "%s",
			    t[1] == 'D' ? d : k);
			t += 3;
		} else
			s[o++] = *t++;
	}
	s[o] = '\0';
	return s;
}

/*
 * A templated case, in both directions: {D} is a domain the map rewrites,
 * {K} the same domain where it must stay. Fed with and without the end
 * tag; the output, mapped back, is the input.
 */
static void
check_both(const char *t, const struct xmlstream_nsdecl *sns, size_t nsns)
{
	static const struct {
		const struct payload_map *map, *back;
		const char *from, *to;
	} dirs[] = {
		{ map_out, map_in, INTERNAL, PUBLIC },
		{ map_in, map_out, PUBLIC, INTERNAL },
	};
	char	 *in, *want, *in_end, *want_end;
	bool	  changes = strstr(t, "{D}") != NULL;

	for (size_t i = 0; i < nitems(dirs); i++) {
		in = expand(t, dirs[i].from, dirs[i].from);
		want = expand(t, dirs[i].to, dirs[i].from);
		check_body(in, sns, nsns, dirs[i].map, 1, changes ? want : NULL);
		if (changes)	/* and back again */
			check_body(want, sns, nsns, dirs[i].back, 1, in);
		if (asprintf(&in_end, "%s</message>", in) == -1 ||
		    asprintf(&want_end, "%s</message>", want) == -1)
			fail();
		check_body(in_end, sns, nsns, dirs[i].map, 1,
		    changes ? want_end : NULL);
		free(in);
		free(want);
		free(in_end);
		free(want_end);
	}
}

/* Each (namespace, element, attribute) of the table. */
static void
test_table(void **state)
{
	static const char *cases[] = {
		/* XEP-0249 */
		"<x xmlns='jabber:x:conference' jid='room@{D}' "
		    "reason='come'/>",
		/* XEP-0045 */
		"<x xmlns='http://jabber.org/protocol/muc#user'><invite "
		    "to='alice@{D}'><reason>join alice@{K}</reason></invite>"
		    "<password>{K}</password></x>",
		"<x xmlns='http://jabber.org/protocol/muc#user'><invite "
		    "from='alice@{D}/phone'/></x>",
		"<x xmlns='http://jabber.org/protocol/muc#user'><decline "
		    "to='alice@{D}' from='bob@{D}'/></x>",
		"<x xmlns='http://jabber.org/protocol/muc#user'><item "
		    "affiliation='member' jid='alice@{D}/r' role='participant'>"
		    "<actor jid='owner@{D}' nick='o'/></item><status code='110'/>"
		    "</x>",
		"<x xmlns='http://jabber.org/protocol/muc#user'><destroy "
		    "jid='newroom@{D}'><reason>moved</reason></destroy></x>",
		"<query xmlns='http://jabber.org/protocol/muc#admin'><item "
		    "affiliation='outcast' jid='eve@{D}'><actor jid='{D}'/>"
		    "</item></query>",
		"<query xmlns='http://jabber.org/protocol/muc#owner'><destroy "
		    "jid='r@{D}'/></query>",
		/* XEP-0033 */
		"<addresses xmlns='http://jabber.org/protocol/address'>"
		    "<address type='to' jid='alice@{D}/home'/><address "
		    "type='cc' jid='bob@{D}' desc='bob@{K}'/><address "
		    "type='bcc' uri='xmpp:c@{K}'/></addresses>",
		/* XEP-0030 */
		"<query xmlns='http://jabber.org/protocol/disco#items'><item "
		    "jid='{D}' name='{K}'/><item jid='pubsub.other.example' "
		    "node='n'/><item jid='x@{D}'/></query>",
		/* XEP-0060 */
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'>"
		    "<subscriptions><subscription node='n' jid='alice@{D}' "
		    "subscription='subscribed'/></subscriptions></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe "
		    "node='n' jid='a@{D}'/><options jid='a@{D}'/></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><unsubscribe "
		    "node='n' jid='a@{D}'/></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><affiliations>"
		    "<affiliation node='n' jid='a@{D}' affiliation='owner'/>"
		    "</affiliations><publish node='{K}'><item id='1' "
		    "publisher='a@{D}'/></publish></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>"
		    "<affiliations node='n'><affiliation jid='a@{D}' "
		    "affiliation='member'/></affiliations><subscriptions "
		    "node='n'><subscription jid='b@{D}' "
		    "subscription='none'/></subscriptions></pubsub>",
		"<event xmlns='http://jabber.org/protocol/pubsub#event'>"
		    "<items node='urn:xmpp:avatar:metadata'><item id='1' "
		    "publisher='a@{D}'><metadata xmlns='urn:xmpp:avatar:metadata'"
		    "/></item></items><subscription node='n' jid='a@{D}' "
		    "subscription='subscribed'/></event>",
		/* XEP-0359 */
		"<stanza-id xmlns='urn:xmpp:sid:0' id='{K}' by='room@{D}'/>"
		    "<origin-id xmlns='urn:xmpp:sid:0' id='a@{K}'/>",
		/* XEP-0203, XEP-0091 */
		"<delay xmlns='urn:xmpp:delay' from='{D}' "
		    "stamp='2002-09-10T23:08:25Z'/><x xmlns='jabber:x:delay' "
		    "from='{D}' stamp='20020910T23:08:25'/>",
		/* XEP-0297: the forwarded stanza's own addresses, its payload,
		 * never its text */
		"<forwarded xmlns='urn:xmpp:forward:0'><delay "
		    "xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/>"
		    "<message xmlns='jabber:client' from='alice@{D}/r' "
		    "to='bob@remote.example' type='chat'><body>hi alice@{K}"
		    "</body></message></forwarded>",
		"<forwarded xmlns='urn:xmpp:forward:0'><presence "
		    "xmlns='jabber:client' to='a@{D}' from='b@{D}'/><iq "
		    "xmlns='jabber:client' to='a@{D}' from='b@{D}' id='{K}' "
		    "type='get'/></forwarded>",
		/* XEP-0280 carbons, XEP-0313 results: forwarded inside */
		"<sent xmlns='urn:xmpp:carbons:2'><forwarded "
		    "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
		    "to='a@{D}' from='b@{D}/x'><x xmlns='jabber:x:conference' "
		    "jid='r@{D}'/></message></forwarded></sent>",
		"<result xmlns='urn:xmpp:mam:2' id='1'><forwarded "
		    "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
		    "to='a@{D}' from='b@remote.example'/></forwarded></result>",
		/* a forwarded element's own default namespace is no
		 * stanza's */
		"<forwarded xmlns='urn:xmpp:forward:0'><message to='a@{K}'/>"
		    "</forwarded>",
		/* XEP-0144, XEP-0065, XEP-0461 */
		"<x xmlns='http://jabber.org/protocol/rosterx'><item "
		    "action='add' jid='a@{D}' name='{K}'/></x>",
		"<query xmlns='http://jabber.org/protocol/bytestreams' "
		    "sid='s'><streamhost jid='proxy.example' host='192.0.2.1' "
		    "port='7777'/><streamhost jid='{D}' host='192.0.2.2'/>"
		    "<activate>a@{K}</activate></query>",
		"<query xmlns='http://jabber.org/protocol/bytestreams'>"
		    "<streamhost-used jid='{D}'/></query>",
		"<reply xmlns='urn:xmpp:reply:0' to='a@{D}/r' id='1'/>",
	};

	for (size_t i = 0; i < nitems(cases); i++)
		check_both(cases[i], NULL, 0);
}

/* Nothing to rewrite: the bytes pass unchanged. */
static void
test_unchanged(void **state)
{
	static const char *cases[] = {
		"",
		"<body>write to alice@{K} or {K}</body>",
		"<body>&lt;x xmlns='jabber:x:conference' jid='a@{K}'/&gt;"
		    "</body>",
		"<body><![CDATA[<x xmlns='jabber:x:conference' jid='a@{K}'/>"
		    "]]></body>",
		/* not a JID attribute */
		"<x xmlns='jabber:x:conference' password='a@{K}' "
		    "jid='room@remote.example' reason='{K}'/>",
		/* other namespaces, no namespace, a prefixed attribute */
		"<x xmlns='urn:example:other' jid='a@{K}'/>",
		"<x xmlns='' jid='a@{K}'/><item jid='a@{K}'/>",
		"<x xmlns='jabber:x:conference' xmlns:e='urn:e' e:jid='a@{K}' "
		    "jid='r@remote.example'/>",
		"<item xmlns='http://jabber.org/protocol/disco#info' "
		    "jid='a@{K}'/>",
		/* a stanza's addresses outside <forwarded/> */
		"<message xmlns='jabber:client' to='a@{K}' from='b@{K}'/>",
		"<wrap xmlns='urn:x'><message xmlns='jabber:client' "
		    "to='a@{K}'/></wrap>",
		/* look-alikes: not the domain part, or another domain */
		"<x xmlns='jabber:x:conference' jid='{K}@remote.example'/>",
		"<x xmlns='jabber:x:conference' jid='a@remote.example/{K}'/>",
		"<x xmlns='jabber:x:conference' jid='a@x{K}'/>",
		"<x xmlns='jabber:x:conference' jid='a@{K}.evil.example'/>",
		"<x xmlns='jabber:x:conference' jid='a@conference.{K}'/>",
		"<x xmlns='jabber:x:conference' jid='a@{K}..'/>",
		"<x xmlns='jabber:x:conference' jid='@{K}'/>",
		"<x xmlns='jabber:x:conference' jid='a@{K}/'/>",
		"<x xmlns='jabber:x:conference' jid=''/>",
	};
	char *in;

	for (size_t i = 0; i < nitems(cases); i++) {
		in = expand(cases[i], INTERNAL, INTERNAL);
		check_body(in, NULL, 0, map_out, 1, NULL);
		free(in);
		in = expand(cases[i], PUBLIC, PUBLIC);
		check_body(in, NULL, 0, map_in, 1, NULL);
		free(in);
	}
}

/* The pre-check: one scan, no parsing. */
static void
test_precheck(void **state)
{
	const char *b;

	b = "<body>hello</body></message>";
	assert_false(payload_may_match(b, strlen(b), map_out, 1));
	b = "<body>hello " INTERNAL "</body></message>";
	assert_true(payload_may_match(b, strlen(b), map_out, 1));
	assert_false(payload_may_match(b, strlen(b), map_in, 1));
	b = "<body>CORP.Internal</body>";
	assert_true(payload_may_match(b, strlen(b), map_out, 1));
	b = "<body>corp.interna</body>";
	assert_false(payload_may_match(b, strlen(b), map_out, 1));
	b = "corp.internal";
	assert_true(payload_may_match(b, strlen(b), map_out, 1));
	assert_false(payload_may_match(b, strlen(b) - 1, map_out, 1));
	assert_false(payload_may_match(b + 1, strlen(b) - 1, map_out, 1));
	/* a character reference could spell the domain */
	b = "<x jid='a@corp&#46;internal'/>";
	assert_true(payload_may_match(b, strlen(b), map_out, 1));
	b = "<x jid='a@corp.int&#x65;rnal'/>";
	assert_true(payload_may_match(b, strlen(b), map_in, 1));
	assert_false(payload_may_match("", 0, map_out, 1));
	/* in pieces */
	assert_true(payload_has_ref(b, strlen(b)));
	assert_false(payload_has_ref(b, 15));
	assert_false(payload_has_ref("&", 1));
	assert_false(payload_has_ref("", 0));
	b = "<x jid='a@Corp.Example'/>";
	assert_true(payload_has_domain(b, strlen(b), PUBLIC));
	assert_false(payload_has_domain(b, strlen(b), INTERNAL));
	assert_false(payload_has_domain(b, strlen(b), ""));
	assert_false(payload_has_domain(b, 20, PUBLIC));
	assert_false(payload_may_match(b, strlen(b), map_out, 0));
}

/* Escaping: only the domain's bytes change; references elsewhere stay. */
static void
test_escaping(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "<x xmlns='jabber:x:conference' jid=\"a@corp.internal/it's "
		    "&amp; &quot;q&quot; &lt;&gt; >\"/>",
		  "<x xmlns='jabber:x:conference' jid=\"a@corp.example/it's "
		    "&amp; &quot;q&quot; &lt;&gt; >\"/>" },
		{ "<x xmlns='jabber:x:conference' jid='a@corp&#46;internal'/>",
		  "<x xmlns='jabber:x:conference' jid='a@corp.example'/>" },
		{ "<x xmlns='jabber:x:conference' "
		    "jid='a&#64;&#x63;orp.internal&#x2F;r&#10;s'/>",
		  "<x xmlns='jabber:x:conference' "
		    "jid='a&#64;corp.example&#x2F;r&#10;s'/>" },
		{ "<x xmlns='jabber:x:conference' jid='a@CORP.Internal/R'/>",
		  "<x xmlns='jabber:x:conference' jid='a@corp.example/R'/>" },
		{ "<x xmlns='jabber:x:conference' jid='a@corp.internal.'/>",
		  "<x xmlns='jabber:x:conference' jid='a@corp.example.'/>" },
		{ "<x xmlns='jabber:x:conference' jid='corp.internal.'/>",
		  "<x xmlns='jabber:x:conference' jid='corp.example.'/>" },
		{ "<x xmlns='jabber:x:conference'\r\n\tjid = 'a@corp.internal"
		    "/b\r\nc' />",
		  "<x xmlns='jabber:x:conference'\r\n\tjid = 'a@corp.example"
		    "/b\r\nc' />" },
		{ "<x xmlns='jabber:x:conf&#101;rence' jid='corp.internal'/>",
		  "<x xmlns='jabber:x:conf&#101;rence' jid='corp.example'/>" },
		{ "<x xmlns='jabber:x:conference' jid='\xc3\xa9@corp.internal/"
		    "\xe2\x82\xac&#x20AC;'/>",
		  "<x xmlns='jabber:x:conference' jid='\xc3\xa9@corp.example/"
		    "\xe2\x82\xac&#x20AC;'/>" },
	};

	for (size_t i = 0; i < nitems(cases); i++)
		check_body(cases[i].in, NULL, 0, map_out, 1, cases[i].want);
}

/* Prefixes bound in the body, on the stanza or on the stream header. */
static void
test_prefixes(void **state)
{
	static const struct xmlstream_nsdecl stanza_ns[] = {
		{ "c", "jabber:x:conference" },
		{ "u", "http://jabber.org/protocol/muc#user" },
	};
	static const struct xmlstream_nsdecl stanza_default[] = {
		{ NULL, "jabber:client" },
	};

	check_both("<m:x xmlns:m='http://jabber.org/protocol/muc#user'>"
	    "<m:invite to='a@{D}'/><invite to='a@{K}'/></m:x>", NULL, 0);
	check_both("<a xmlns:m='http://jabber.org/protocol/muc#user'><b><c>"
	    "<m:x><m:item jid='a@{D}'/></m:x></c></b></a>", NULL, 0);
	/* bound on the stanza's start tag */
	check_both("<c:x jid='r@{D}'/><u:x><u:decline from='a@{D}'/></u:x>"
	    "<x jid='r@{K}'/>", stanza_ns, nitems(stanza_ns));
	/* a prefix rebound inside: the inner one wins, then the outer */
	check_both("<c:x xmlns:c='urn:other' jid='r@{K}'><c:y "
	    "xmlns:c='jabber:x:conference'/></c:x><c:x jid='r@{D}'/>",
	    stanza_ns, nitems(stanza_ns));
	/* the default: a forwarded message without xmlns is in the
	 * stanza's namespace, jabber:server from the header or the
	 * stanza's own */
	check_both("<f:forwarded xmlns:f='urn:xmpp:forward:0'><message "
	    "to='a@{D}'/></f:forwarded>", NULL, 0);
	check_both("<f:forwarded xmlns:f='urn:xmpp:forward:0'><message "
	    "to='a@{D}'/></f:forwarded>", stanza_default, 1);
	/* undeclared default inside: no namespace */
	check_both("<x xmlns='jabber:x:conference' jid='r@{D}'><x xmlns='' "
	    "jid='r@{K}'/></x>", NULL, 0);
}

/* Forwarded in forwarded, each level's addresses and payloads. */
static void
test_nested(void **state)
{
	check_both("<result xmlns='urn:xmpp:mam:2'><forwarded "
	    "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
	    "from='a@{D}' to='b@{D}'><f:forwarded xmlns:f='urn:xmpp:forward:0'>"
	    "<message from='c@{D}/x' to='d@remote.example'><x "
	    "xmlns='http://jabber.org/protocol/muc#user'><invite "
	    "from='e@{D}'/></x><body>{K}</body><forwarded "
	    "xmlns='urn:xmpp:forward:0'><presence xmlns='jabber:server' "
	    "from='f@{D}'/></forwarded></message></f:forwarded></message>"
	    "</forwarded></result>", NULL, 0);
	/* a message inside a message inside forwarded is no address */
	check_both("<forwarded xmlns='urn:xmpp:forward:0'><message "
	    "xmlns='jabber:client' to='a@{D}'><message to='b@{K}'/>"
	    "</message></forwarded>", NULL, 0);
}

/* Several entries; subdomains where asked for. */
static void
test_map(void **state)
{
	static const struct payload_map two[] = {
		{ "a.internal", "a.example", 0 },
		{ "b.internal", "a-much-longer-public-name.example", 0 },
	};
	static const struct payload_map sub[] = {
		{ "corp.internal", "corp.example", PAYLOAD_MAP_SUBDOMAINS },
		{ "muc.corp.internal", "rooms.corp.example", 0 },
		{ "x.corp.internal", "x.example", PAYLOAD_MAP_SUBDOMAINS },
	};

	check_body("<addresses xmlns='http://jabber.org/protocol/address'>"
	    "<address jid='u@a.internal'/><address jid='u@b.internal/r'/>"
	    "<address jid='u@c.internal'/></addresses></message>", NULL, 0,
	    two, nitems(two),
	    "<addresses xmlns='http://jabber.org/protocol/address'>"
	    "<address jid='u@a.example'/><address jid='u@a-much-longer-"
	    "public-name.example/r'/><address jid='u@c.internal'/>"
	    "</addresses></message>");
	check_body("<query xmlns='http://jabber.org/protocol/disco#items'>"
	    "<item jid='corp.internal'/><item jid='conference.corp.internal'/>"
	    "<item jid='r@muc.corp.internal'/><item jid='a.b.x.corp.internal'/>"
	    "<item jid='Pubsub.CORP.internal.'/><item jid='xcorp.internal'/>"
	    "<item jid='.corp.internal'/></query>", NULL, 0, sub, nitems(sub),
	    "<query xmlns='http://jabber.org/protocol/disco#items'>"
	    "<item jid='corp.example'/><item jid='conference.corp.example'/>"
	    "<item jid='r@rooms.corp.example'/><item jid='a.b.x.example'/>"
	    "<item jid='Pubsub.corp.example.'/><item jid='xcorp.internal'/>"
	    "<item jid='.corp.internal'/></query>");
}

/* Malformed bodies and the limits: refused, whatever they hold. */
static void
test_refused(void **state)
{
	static const char *cases[] = {
		"<x", "<x ", "<x jid='a@corp.internal'", "<x jid='a/>",
		"<x jid=a@corp.internal/>", "<x jid/>", "<x a='1'b='2'/>",
		"<x/ >", "<>", "< x/>", "<x>", "<x></x></y></z>",
		"</message><x/>", "</message>trailing", "</>", "</x",
		"<p:x/>", "<a xmlns:p='urn:p'/><p:x/>", "<xmlns:x/>",
		"<!-- corp.internal -->", "<?pi corp.internal?>",
		"<!DOCTYPE x>", "<![CDATA[ x", "<x jid='<'/>",
		"<x xmlns='jabber:x:conference' jid='a@corp&foo;internal'/>",
		"<x xmlns='jabber:x:conference' jid='a@corp.internal&#0;'/>",
		"<x xmlns='jabber:x:conference' jid='a@corp.internal&#x110000;'/>",
		"<x xmlns='jabber:x:conference' jid='a@corp.internal&#;'/>",
		"<x xmlns='jabber:x:conference' jid='a@corp.internal&amp'/>",
		"<x>corp.internal<",
	};
	struct payload_body	 b = { 0 };
	char			 out[256], *deep;
	size_t			 len, i, o;

	for (i = 0; i < nitems(cases); i++) {
		b.bytes = cases[i];
		b.len = strlen(cases[i]);
		if (payload_rewrite(&b, map_out, 1, out, sizeof(out), &len) !=
		    PAYLOAD_ERROR) {
			print_error("case %zu: %s\n", i, cases[i]);
			fail();
		}
	}
	/* depth: PAYLOAD_DEPTH_MAX elements nest, one more does not */
	deep = malloc(PAYLOAD_DEPTH_MAX * 8 + 64);
	assert_non_null(deep);
	for (int extra = 0; extra < 2; extra++) {
		o = 0;
		for (i = 0; i < PAYLOAD_DEPTH_MAX + (size_t)extra; i++)
			o += (size_t)sprintf(deep + o, "<a>");
		for (i = 0; i < PAYLOAD_DEPTH_MAX + (size_t)extra; i++)
			o += (size_t)sprintf(deep + o, "</a>");
		b.bytes = deep;
		b.len = o;
		assert_int_equal(payload_rewrite(&b, map_out, 1, out,
		    sizeof(out), &len), extra ? PAYLOAD_ERROR :
		    PAYLOAD_UNCHANGED);
	}
	/* declarations in scope: as many, then one more */
	for (int extra = 0; extra < 2; extra++) {
		o = (size_t)sprintf(deep, "<a");
		for (i = 0; i < PAYLOAD_NSDECL_MAX + (size_t)extra; i++)
			o += (size_t)sprintf(deep + o, " xmlns:p%zu=''", i);
		o += (size_t)sprintf(deep + o, "/>");
		b.bytes = deep;
		b.len = o;
		assert_int_equal(payload_rewrite(&b, map_out, 1, out,
		    sizeof(out), &len), extra ? PAYLOAD_ERROR :
		    PAYLOAD_UNCHANGED);
	}
	free(deep);
}

/* The table as payload_is_jid_attr() tells it. */
static void
test_is_jid_attr(void **state)
{
	assert_true(payload_is_jid_attr("jabber:x:conference", "x", NULL, NULL,
	    "jid"));
	assert_false(payload_is_jid_attr("jabber:x:conference", "x", NULL,
	    NULL, "password"));
	assert_false(payload_is_jid_attr("jabber:client", "message", NULL,
	    NULL, "to"));
	assert_true(payload_is_jid_attr("jabber:client", "message",
	    "urn:xmpp:forward:0", "forwarded", "to"));
	assert_false(payload_is_jid_attr("urn:other", "x", NULL, NULL, "jid"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_unchanged),
		cmocka_unit_test(test_precheck),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_is_jid_attr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
