/*
 * Unit tests of xmlstream. Each stream case is fed whole, one byte at a
 * time and split in two at every byte boundary; every way must give the same
 * trace of events, the expected one. The runner also checks that each
 * element's raw span is exactly the input bytes that end at the offset the
 * feed reported used, and the header's length likewise.
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

#include "xmlstream.h"

#define STREAMS	"http://etherx.jabber.org/streams"
#define HDR_OPEN "<stream:stream xmlns='jabber:server' " \
	"xmlns:stream='" STREAMS "' xmlns:db='jabber:server:dialback'"
#define HDR	HDR_OPEN " to='corp.example' from='remote.example' version='1.0'>"
#define HDR_T	"header prefix=stream to=corp.example from=remote.example " \
	"id=- version=1.0 lang=- ns=[=jabber:server stream=" STREAMS \
	" db=jabber:server:dialback]\n"
#define TRACE_MAX 16384

struct trace {
	char	buf[TRACE_MAX];
	size_t	len;
};

struct xcase {
	const char		*name;
	const char		*input;
	size_t			 len;	/* 0: strlen(input) */
	struct xmlstream_limits	 limits;
	const char		*expect;
};

static void __attribute__((format(printf, 2, 3)))
tr(struct trace *t, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(t->buf) - t->len);
	t->len += (size_t)n;
}

static const char *
nz(const char *s)
{
	return s != NULL ? s : "-";
}

static void
tr_qname(struct trace *t, const char *prefix, const char *name)
{
	if (prefix != NULL)
		tr(t, "%s:", prefix);
	tr(t, "%s", name);
}

static void
tr_attrs(struct trace *t, const struct xmlstream_attr *a, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		tr(t, " ");
		if (a[i].ns[0] != '\0')
			tr(t, "{%s}", a[i].ns);
		tr_qname(t, a[i].prefix, a[i].name);
		tr(t, "='%s'", a[i].value);
	}
}

static void
tr_node(struct trace *t, const struct xmlstream_node *node)
{
	tr(t, "{%s}", node->ns);
	tr_qname(t, node->prefix, node->name);
	tr_attrs(t, node->attrs, node->nattrs);
	if (node->textlen > 0)
		tr(t, " text='%.*s'", (int)node->textlen, node->text);
}

static void
tr_tree(struct trace *t, const struct xmlstream_node *node, int level)
{
	const struct xmlstream_node	*c;

	for (c = node->child; c != NULL; c = c->next) {
		tr(t, "%*s", level, "");
		tr_node(t, c);
		tr(t, "\n");
		tr_tree(t, c, level + 1);
	}
}

static void
tr_header(struct trace *t, const struct xmlstream_header *h)
{
	size_t	i;

	tr(t, "header prefix=%s to=%s from=%s id=%s version=%s lang=%s ns=[",
	    nz(h->prefix), nz(h->to), nz(h->from), nz(h->id), nz(h->version),
	    nz(h->lang));
	for (i = 0; i < h->nnsdecls; i++)
		tr(t, "%s%s=%s", i > 0 ? " " : "",
		    h->nsdecls[i].prefix != NULL ? h->nsdecls[i].prefix : "",
		    h->nsdecls[i].uri);
	tr(t, "]\n");
}

static void
tr_element(struct trace *t, const struct xmlstream_element *el)
{
	size_t	i;

	tr(t, "element ");
	tr_node(t, &el->node);
	for (i = 0; i < el->nnsdecls; i++)
		tr(t, " xmlns%s%s=%s", el->nsdecls[i].prefix != NULL ? ":" : "",
		    el->nsdecls[i].prefix != NULL ? el->nsdecls[i].prefix : "",
		    el->nsdecls[i].uri);
	tr(t, " start=%zu", el->starttaglen);
	if (el->has_tree) {
		tr(t, " tree\n");
		tr_tree(t, &el->node, 1);
	} else {
		assert_null(el->node.child);
		tr(t, " raw=%.*s\n", (int)el->rawlen, el->raw);
	}
}

/* Whether el is an element after which the stream restarts. */
static bool
is_restart(const struct xmlstream_element *el)
{
	return strcmp(el->node.name, "starttls") == 0 ||
	    strcmp(el->node.name, "proceed") == 0;
}

/*
 * Feed in[0..len) to a new framer, the bytes arriving up to each of
 * cuts[0..ncuts) in turn (the last one is len), and trace the events.
 * After every chunk used up, with give_back 1 xmlstream_shrink(), as a leg
 * does when its input is empty, with 2 xmlstream_release() too, as it does
 * when it has been quiet (the parser is made again at the next byte).
 * fast turns xmlscan, the fast path, on.
 */
static void
run(const struct xcase *c, const char *in, size_t len, const size_t *cuts,
    size_t ncuts, struct trace *t, int give_back, bool fast)
{
	struct xmlstream		*xs;
	const struct xmlstream_element	*el;
	enum xmlstream_event		 ev;
	size_t				 i, off = 0, used, stream = 0;

	t->len = 0;
	t->buf[0] = '\0';
	assert_non_null(xs = xmlstream_new(&c->limits));
	xmlstream_set_fast_path(xs, fast);
	for (i = 0; i < ncuts; i++) {
		for (;;) {
			ev = xmlstream_feed(xs, in + off, cuts[i] - off, &used);
			assert_true(used <= cuts[i] - off);
			off += used;
			if (ev == XMLSTREAM_MORE) {
				assert_int_equal(off, cuts[i]);
				if (give_back > 0)
					xmlstream_shrink(xs);
				if (give_back > 1)
					xmlstream_release(xs);
				break;
			}
			switch (ev) {
			case XMLSTREAM_HEADER:
				assert_int_equal(xmlstream_header(xs)->len,
				    off - stream);
				tr_header(t, xmlstream_header(xs));
				break;
			case XMLSTREAM_ELEMENT:
				el = xmlstream_element(xs);
				assert_true(el->rawlen <= off - stream);
				assert_memory_equal(el->raw, in + off -
				    el->rawlen, el->rawlen);
				assert_true(el->starttaglen <= el->rawlen);
				tr_element(t, el);
				if (is_restart(el)) {
					assert_int_equal(xmlstream_reset(xs), 0);
					stream = off;
					tr(t, "reset\n");
				}
				break;
			case XMLSTREAM_END:
				tr(t, "end\n");
				goto out;
			default:
				assert_int_equal(used, 0);
				tr(t, "error %s\n", xmlstream_error_name(
				    xmlstream_last_error(xs)));
				goto out;
			}
		}
	}
out:
	xmlstream_free(xs);
}

static void
run_case(void **state)
{
	const struct xcase	*c = *state;
	size_t			 len = c->len ? c->len : strlen(c->input);
	size_t			*cuts, k;
	struct trace		*whole, *t;

	assert_non_null(whole = malloc(sizeof(*whole)));
	assert_non_null(t = malloc(sizeof(*t)));
	assert_non_null(cuts = calloc(len + 1, sizeof(*cuts)));
	run(c, c->input, len, &len, 1, whole, 0, false);
	assert_string_equal(whole->buf, c->expect);
	/* whole again, the fast path framing what it can */
	run(c, c->input, len, &len, 1, t, 0, true);
	assert_string_equal(t->buf, whole->buf);
	for (k = 0; k < len; k++)
		cuts[k] = k + 1;
	run(c, c->input, len, cuts, len, t, 0, false);
	assert_string_equal(t->buf, whole->buf);
	/* byte by byte again, giving memory and the parser back between
	 * bytes */
	run(c, c->input, len, cuts, len, t, 2, true);
	assert_string_equal(t->buf, whole->buf);
	for (k = 1; k < len; k++) {
		cuts[0] = k;
		cuts[1] = len;
		run(c, c->input, len, cuts, 2, t, (int)(k % 3), k % 2 == 1);
		if (strcmp(t->buf, whole->buf) != 0) {
			print_error("split at %zu\n", k);
			assert_string_equal(t->buf, whole->buf);
		}
	}
	free(cuts);
	free(t);
	free(whole);
}

/* The stream cases. */

static const char full_in[] =
	"<?xml version='1.0'?>\n"
	HDR_OPEN " to='corp.example' from='remote.example' id='s2s-1'"
	" version='1.0' xml:lang='en'>\n"
	"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
	"<required/></starttls><dialback xmlns='urn:xmpp:features:dialback'>"
	"<errors/></dialback></stream:features>\n"
	"<db:result from='remote.example' to='corp.example'>"
	"b4835385f37fe2895af6c196b59097b1</db:result>"
	" \n\t \r\n"
	"<message from='juliet@remote.example/balcony' to='romeo@corp.example'"
	" type='chat' id='m1' xml:lang='en'>"
	"<body>Hi &amp; &lt;bye&gt; &#x263A; caf\xc3\xa9</body>"
	"<html xmlns='http://jabber.org/protocol/xhtml-im'>"
	"<body xmlns='http://www.w3.org/1999/xhtml'><p>x<![CDATA[<b>&]]></p>"
	"</body></html><x:y xmlns:x='urn:example:x' x:a=\"q'&quot;\"/>"
	"</message>\n"
	"<presence from='juliet@remote.example' to='romeo@corp.example'/>"
	"<iq type='get' id='v1' from='remote.example' to='corp.example'>"
	"<query xmlns='jabber:iq:version'/></iq>  \n"
	"</stream:stream>";

static const char full_out[] =
	"header prefix=stream to=corp.example from=remote.example id=s2s-1 "
	"version=1.0 lang=en ns=[=jabber:server stream=" STREAMS
	" db=jabber:server:dialback]\n"
	"element {" STREAMS "}stream:features start=17 tree\n"
	" {urn:ietf:params:xml:ns:xmpp-tls}starttls\n"
	"  {urn:ietf:params:xml:ns:xmpp-tls}required\n"
	" {urn:xmpp:features:dialback}dialback\n"
	"  {urn:xmpp:features:dialback}errors\n"
	"element {jabber:server:dialback}db:result from='remote.example' "
	"to='corp.example' text='b4835385f37fe2895af6c196b59097b1' start=51 "
	"tree\n"
	"element {jabber:server}message from='juliet@remote.example/balcony' "
	"to='romeo@corp.example' type='chat' id='m1' "
	"{http://www.w3.org/XML/1998/namespace}xml:lang='en' start=104 "
	"raw=<message from='juliet@remote.example/balcony' "
	"to='romeo@corp.example' type='chat' id='m1' xml:lang='en'>"
	"<body>Hi &amp; &lt;bye&gt; &#x263A; caf\xc3\xa9</body>"
	"<html xmlns='http://jabber.org/protocol/xhtml-im'>"
	"<body xmlns='http://www.w3.org/1999/xhtml'><p>x<![CDATA[<b>&]]></p>"
	"</body></html><x:y xmlns:x='urn:example:x' x:a=\"q'&quot;\"/>"
	"</message>\n"
	"element {jabber:server}presence from='juliet@remote.example' "
	"to='romeo@corp.example' start=64 raw=<presence "
	"from='juliet@remote.example' to='romeo@corp.example'/>\n"
	"element {jabber:server}iq type='get' id='v1' from='remote.example' "
	"to='corp.example' start=63 raw=<iq type='get' id='v1' "
	"from='remote.example' to='corp.example'>"
	"<query xmlns='jabber:iq:version'/></iq>\n"
	"end\n";

/* A dialback element in a tree: text, and a prefix from the header. */
static const char dialback_in[] =
	HDR "<db:verify from='corp.example' to='remote.example' id='s2s-1'"
	" type='valid'>k&amp;y</db:verify>"
	"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'"
	"/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>"
	"no <b>such</b> host</text></stream:error>";

static const char dialback_out[] =
	HDR_T
	"element {jabber:server:dialback}db:verify from='corp.example' "
	"to='remote.example' id='s2s-1' type='valid' text='k&y' start=75 tree\n"
	"element {" STREAMS "}stream:error start=14 tree\n"
	" {urn:ietf:params:xml:ns:xmpp-streams}host-unknown\n"
	" {urn:ietf:params:xml:ns:xmpp-streams}text "
	"{http://www.w3.org/XML/1998/namespace}xml:lang='en' text='no  host'\n"
	"  {urn:ietf:params:xml:ns:xmpp-streams}b text='such'\n";

/* STARTTLS: the bytes after <starttls/> start a new stream. */
static const char restart_in[] =
	HDR "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	"<?xml version='1.0'?>" HDR " <message to='a@b'/>";

static const char restart_out[] =
	HDR_T
	"element {urn:ietf:params:xml:ns:xmpp-tls}starttls "
	"xmlns=urn:ietf:params:xml:ns:xmpp-tls start=51 tree\n"
	"reset\n"
	HDR_T
	"element {jabber:server}message to='a@b' start=19 raw=<message "
	"to='a@b'/>\n";

static const char deep_in[] =
	HDR "<message><a><b/></a></message>"
	"<message><a><b><c/></b></a></message>";

static const char deep_out[] =
	HDR_T
	"element {jabber:server}message start=9 "
	"raw=<message><a><b/></a></message>\n"
	"error policy-violation\n";

static const char attrs_in[] =
	HDR "<iq a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8'/>"
	"<iq xmlns:x='urn:x' xmlns:y='urn:y' a='1' b='2' c='3' d='4' e='5'"
	" x:f='6' y:g='7'/>";

static const char attrs_out[] =
	HDR_T
	"element {jabber:server}iq a='1' b='2' c='3' d='4' e='5' f='6' g='7' "
	"h='8' start=53 raw=<iq a='1' b='2' c='3' d='4' e='5' f='6' g='7' "
	"h='8'/>\n"
	"error policy-violation\n";

/* 64 bytes exactly, then 65. */
#define MSG64	"<message to='a@b.example'><body>0123456789abcde</body></message>"
#define MSG65	"<message to='a@b.example'><body>0123456789abcdef</body></message>"

static struct xcase cases[] = {
	{ "full_stream", full_in, 0, { 0 }, full_out },
	{ "dialback_and_stream_error", dialback_in, 0, { 0 }, dialback_out },
	{ "restart_after_starttls", restart_in, 0, { 0 }, restart_out },
	{ "empty_root", HDR_OPEN " to='corp.example' from='remote.example'"
	    " version='1.0'/>", 0, { 0 }, HDR_T "end\n" },
	{ "xml_declaration_utf8", "<?xml version='1.0' encoding='utf-8'?>\n"
	    HDR "</stream:stream>", 0, { 0 }, HDR_T "end\n" },
	{ "utf8_bom", "\xef\xbb\xbf" HDR "</stream:stream>", 0, { 0 },
	    HDR_T "end\n" },
	{ "other_stream_prefix", "<s:stream xmlns:s='" STREAMS
	    "' xmlns='jabber:server'><message/></s:stream>", 0, { 0 },
	    "header prefix=s to=- from=- id=- version=- lang=- "
	    "ns=[s=" STREAMS " =jabber:server]\n"
	    "element {jabber:server}message start=10 raw=<message/>\n"
	    "end\n" },
	{ "no_stream_prefix", "<stream xmlns='" STREAMS "'>", 0, { 0 },
	    "error invalid-namespace\n" },
	{ "keepalives", HDR " \n \t\r\n <presence/> \n\n \n</stream:stream>",
	    0, { 0 },
	    HDR_T "element {jabber:server}presence start=11 raw=<presence/>\n"
	    "end\n" },
	{ "explicit_server_ns", HDR "<message xmlns='jabber:server'/>", 0,
	    { 0 }, HDR_T "element {jabber:server}message xmlns=jabber:server "
	    "start=32 raw=<message xmlns='jabber:server'/>\n" },
	{ "undeclared_default", HDR "<foo xmlns=''><bar/></foo>", 0, { 0 },
	    HDR_T "element {}foo xmlns= start=14 tree\n {}bar\n" },
	{ "doctype", "<?xml version='1.0'?><!DOCTYPE stream:stream "
	    "[<!ENTITY a 'b'>]>" HDR, 0, { 0 }, "error restricted-xml\n" },
	{ "entity_in_content", HDR "<message><!ENTITY x 'y'></message>", 0,
	    { 0 }, HDR_T "error not-well-formed\n" },
	{ "entity_reference", HDR "<message><body>&lol;</body></message>", 0,
	    { 0 }, HDR_T "error restricted-xml\n" },
	{ "comment_before_header", "<!-- hi -->" HDR, 0, { 0 },
	    "error restricted-xml\n" },
	{ "comment_between", HDR "<presence/><!-- hi -->", 0, { 0 },
	    HDR_T "element {jabber:server}presence start=11 "
	    "raw=<presence/>\nerror restricted-xml\n" },
	{ "comment_in_stanza", HDR "<message><!--x--></message>", 0, { 0 },
	    HDR_T "error restricted-xml\n" },
	{ "pi_before_header", "<?xml version='1.0'?><?xml-stylesheet "
	    "href='a'?>" HDR, 0, { 0 }, "error restricted-xml\n" },
	{ "pi_in_stream", HDR "<?php echo 1; ?>", 0, { 0 },
	    HDR_T "error restricted-xml\n" },
	{ "xml_declaration_late", HDR "<?xml version='1.0'?>", 0, { 0 },
	    HDR_T "error not-well-formed\n" },
	{ "malformed", HDR "<message><body></message>", 0, { 0 },
	    HDR_T "error not-well-formed\n" },
	{ "duplicate_attribute", HDR "<message a='1' a='2'/>", 0, { 0 },
	    HDR_T "error not-well-formed\n" },
	{ "invalid_utf8", HDR "<message><body>\xc3\x28</body></message>", 0,
	    { 0 }, HDR_T "error not-well-formed\n" },
	{ "wrong_stream_ns", "<stream:stream xmlns:stream='http://example.com'"
	    " xmlns='jabber:server'>", 0, { 0 }, "error invalid-namespace\n" },
	{ "wrong_root_name", "<stream:flow xmlns:stream='" STREAMS "'"
	    " xmlns='jabber:server'>", 0, { 0 }, "error bad-format\n" },
	{ "wrong_default_ns", "<stream:stream xmlns:stream='" STREAMS "'"
	    " xmlns='jabber:client'>", 0, { 0 }, "error invalid-namespace\n" },
	{ "no_default_ns", "<stream:stream xmlns:stream='" STREAMS "'>", 0,
	    { 0 }, "error invalid-namespace\n" },
	{ "unknown_prefix", HDR "<foo:message/>", 0, { 0 },
	    HDR_T "error bad-namespace-prefix\n" },
	{ "unknown_attribute_prefix", HDR "<message foo:a='1'/>", 0, { 0 },
	    HDR_T "error bad-namespace-prefix\n" },
	{ "undeclared_stream_prefix", "<stream:stream xmlns='jabber:server'>",
	    0, { 0 }, "error bad-namespace-prefix\n" },
	{ "text_between_stanzas", HDR " hello <presence/>", 0, { 0 },
	    HDR_T "error bad-format\n" },
	{ "text_then_cdata_end", HDR " hello ]]> <presence/>", 0, { 0 },
	    HDR_T "error not-well-formed\n" },
	{ "text_then_end", HDR "\nhello\n</stream:stream>", 0, { 0 },
	    HDR_T "error bad-format\n" },
	{ "text_then_comment", HDR "hello<!-- -->", 0, { 0 },
	    HDR_T "error bad-format\n" },
	{ "text_over_limit", HDR "   hello world, hello world <presence/>",
	    0, { .stanza_size = 24 }, HDR_T "error policy-violation\n" },
	{ "text_at_limit", HDR "   hello world, hello world <presence/>",
	    0, { .stanza_size = 36 }, HDR_T "error bad-format\n" },
	{ "text_before_header", "hello" HDR, 0, { 0 },
	    "error not-well-formed\n" },
	{ "stanza_at_limit", HDR MSG64, 0, { .stanza_size = 64 },
	    HDR_T "element {jabber:server}message to='a@b.example' start=26 "
	    "raw=" MSG64 "\n" },
	{ "stanza_over_limit", HDR MSG65, 0, { .stanza_size = 64 },
	    HDR_T "error policy-violation\n" },
	{ "stanza_over_limit_unfinished", HDR "<message><body>" MSG64, 0,
	    { .stanza_size = 64 }, HDR_T "error policy-violation\n" },
	{ "over_limit_before_malformed", HDR "<message><body>"
	    "0123456789012345678901234567890123456789012345678901234567<<",
	    0, { .stanza_size = 64 }, HDR_T "error policy-violation\n" },
	{ "small_stanzas_after_header", HDR "<presence/><presence/>"
	    "<presence/>", 0, { .stanza_size = 11 },
	    HDR_T "element {jabber:server}presence start=11 raw=<presence/>\n"
	    "element {jabber:server}presence start=11 raw=<presence/>\n"
	    "element {jabber:server}presence start=11 raw=<presence/>\n" },
	{ "header_over_limit", HDR, 0, { .header_size = 64 },
	    "error policy-violation\n" },
	{ "header_at_limit", HDR, 0, { .header_size = sizeof(HDR) - 1 },
	    HDR_T },
	{ "too_deep", deep_in, 0, { .depth = 3 }, deep_out },
	{ "too_many_attributes", attrs_in, 0, { .attributes = 8 }, attrs_out },
	{ "header_attributes", HDR, 0, { .attributes = 5 },
	    "error policy-violation\n" },
	{ "utf16le", "<\0s\0>\0", 6, { 0 }, "error unsupported-encoding\n" },
	{ "utf16be_bom", "\xfe\xff\0<", 4, { 0 },
	    "error unsupported-encoding\n" },
	{ "utf16le_leading_space", " \0<\0", 4, { 0 },
	    "error unsupported-encoding\n" },
	{ "control_then_nul", "\x1b\0<", 3, { 0 },
	    "error unsupported-encoding\n" },
	{ "control_first", "\x1b<a", 0, { 0 }, "error not-well-formed\n" },
	{ "latin1_declared", "<?xml version='1.0' encoding='ISO-8859-1'?>"
	    HDR, 0, { 0 }, "error unsupported-encoding\n" },
	{ "nul_byte", HDR "<message>\0</message>", sizeof(HDR) + 19, { 0 },
	    HDR_T "error not-well-formed\n" },
};

/* Tests beyond the table. */

/* Feed s whole; expect ev and return the bytes used. */
static size_t
feed_expect(struct xmlstream *xs, const char *s, size_t len,
    enum xmlstream_event ev)
{
	size_t	used;

	assert_int_equal(xmlstream_feed(xs, s, len, &used), ev);
	return used;
}

static void
test_restart_used(void **state)
{
	static const char	in[] = HDR "\n<starttls "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x01\x02\x00\x01";
	struct xmlstream	*xs;
	size_t			 off, tls = sizeof(in) - 7;

	assert_non_null(xs = xmlstream_new(NULL));
	off = feed_expect(xs, in, sizeof(in) - 1, XMLSTREAM_HEADER);
	assert_int_equal(off, sizeof(HDR) - 1);
	off += feed_expect(xs, in + off, sizeof(in) - 1 - off,
	    XMLSTREAM_ELEMENT);
	assert_int_equal(off, tls);
	assert_string_equal(xmlstream_element(xs)->node.name, "starttls");
	assert_int_equal(xmlstream_reset(xs), 0);
	assert_null(xmlstream_header(xs));
	assert_null(xmlstream_element(xs));
	/* The new stream starts at offset 0 with what TLS decrypts. */
	assert_int_equal(feed_expect(xs, HDR, sizeof(HDR) - 1,
	    XMLSTREAM_HEADER), sizeof(HDR) - 1);
	assert_int_equal(xmlstream_header(xs)->len, sizeof(HDR) - 1);
	xmlstream_free(xs);
}

/*
 * A released parser is made again at the next bytes, primed with the
 * header: the header's prefixes are still bound, offsets still count from
 * the stream's start, limits and errors still apply; a restart after it
 * works; releasing while an element is held does nothing.
 */
static void
test_release(void **state)
{
	static const char	in[] = HDR "<db:result from='a.example' "
	    "to='b.example'>k</db:result>";
	static const char	more[] = "<db:verify from='a.example' "
	    "to='b.example' id='i'>k</db:verify>";
	struct xmlstream	*xs;
	const struct xmlstream_element *el;
	size_t			 off, used;

	assert_non_null(xs = xmlstream_new(NULL));
	xmlstream_release(xs);			/* before the header: no-op */
	off = feed_expect(xs, in, sizeof(in) - 1, XMLSTREAM_HEADER);
	assert_int_equal(feed_expect(xs, in + off, sizeof(in) - 1 - off,
	    XMLSTREAM_ELEMENT), sizeof(in) - 1 - off);
	xmlstream_shrink(xs);
	xmlstream_release(xs);
	assert_null(xmlstream_element(xs));
	/* db: is bound by the header only */
	assert_int_equal(feed_expect(xs, more, sizeof(more) - 1,
	    XMLSTREAM_ELEMENT), sizeof(more) - 1);
	assert_non_null(el = xmlstream_element(xs));
	assert_string_equal(el->node.name, "verify");
	assert_string_equal(el->node.ns, "jabber:server:dialback");
	assert_int_equal(el->rawlen, sizeof(more) - 1);
	assert_memory_equal(el->raw, more, el->rawlen);
	/* half an element: nothing is given back, the rest completes it */
	assert_int_equal(feed_expect(xs, "<presence", 9, XMLSTREAM_MORE), 9);
	xmlstream_release(xs);
	xmlstream_shrink(xs);
	assert_int_equal(xmlstream_feed(xs, "/>", 2, &used),
	    XMLSTREAM_ELEMENT);
	assert_string_equal(xmlstream_element(xs)->node.name, "presence");
	/* an error after a release is the one it would be without */
	xmlstream_release(xs);
	assert_int_equal(xmlstream_feed(xs, "<x:y/>", 6, &used),
	    XMLSTREAM_ERROR);
	assert_int_equal(xmlstream_last_error(xs),
	    XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX);
	/* a restart with no parser */
	xmlstream_release(xs);
	assert_int_equal(xmlstream_reset(xs), 0);
	assert_int_equal(feed_expect(xs, HDR, sizeof(HDR) - 1,
	    XMLSTREAM_HEADER), sizeof(HDR) - 1);
	xmlstream_free(xs);
}

static void
test_unused_not_passed_again(void **state)
{
	static const char	in[] = HDR "<presence/>";
	struct xmlstream	*xs;
	size_t			 used;

	assert_non_null(xs = xmlstream_new(NULL));
	used = feed_expect(xs, in, sizeof(in) - 1, XMLSTREAM_HEADER);
	assert_int_equal(xmlstream_feed(xs, "<", 1, &used), XMLSTREAM_ERROR);
	assert_int_equal(xmlstream_last_error(xs),
	    XMLSTREAM_ERR_INTERNAL_SERVER_ERROR);
	assert_string_equal(xmlstream_error_name(xmlstream_last_error(xs)),
	    "internal-server-error");
	xmlstream_free(xs);
}

static void
test_error_is_sticky(void **state)
{
	struct xmlstream	*xs;
	size_t			 used = 99;

	assert_non_null(xs = xmlstream_new(NULL));
	feed_expect(xs, HDR "<a><!--x--></a>", sizeof(HDR) + 14,
	    XMLSTREAM_HEADER);
	assert_int_equal(xmlstream_feed(xs, "<a><!--x--></a>", 15, &used),
	    XMLSTREAM_ERROR);
	assert_int_equal(used, 0);
	assert_int_equal(xmlstream_last_error(xs),
	    XMLSTREAM_ERR_RESTRICTED_XML);
	assert_string_equal(xmlstream_error_detail(xs), "comment");
	used = 99;
	assert_int_equal(xmlstream_feed(xs, "<presence/>", 11, &used),
	    XMLSTREAM_ERROR);
	assert_int_equal(used, 0);
	/* A reset starts over. */
	assert_int_equal(xmlstream_reset(xs), 0);
	assert_int_equal(xmlstream_last_error(xs), XMLSTREAM_ERR_NONE);
	feed_expect(xs, HDR, sizeof(HDR) - 1, XMLSTREAM_HEADER);
	xmlstream_free(xs);
}

static void
test_after_end(void **state)
{
	static const char	in[] = HDR "</stream:stream> <junk";
	struct xmlstream	*xs;
	size_t			 off;

	assert_non_null(xs = xmlstream_new(NULL));
	off = feed_expect(xs, in, sizeof(in) - 1, XMLSTREAM_HEADER);
	off += feed_expect(xs, in + off, sizeof(in) - 1 - off, XMLSTREAM_END);
	assert_int_equal(off, sizeof(HDR) - 1 + 16);
	assert_int_equal(feed_expect(xs, in + off, sizeof(in) - 1 - off,
	    XMLSTREAM_END), 0);
	xmlstream_free(xs);
}

/* Whitespace keepalives never count against the stanza limit. */
static void
test_keepalive_flood(void **state)
{
	struct xmlstream_limits	 lim = { .stanza_size = 64 };
	struct xmlstream	*xs;
	char			 ws[1000];
	int			 i;

	memset(ws, ' ', sizeof(ws));
	assert_non_null(xs = xmlstream_new(&lim));
	feed_expect(xs, HDR, sizeof(HDR) - 1, XMLSTREAM_HEADER);
	for (i = 0; i < 1000; i++)
		assert_int_equal(feed_expect(xs, ws, sizeof(ws),
		    XMLSTREAM_MORE), sizeof(ws));
	feed_expect(xs, "<presence/>", 11, XMLSTREAM_ELEMENT);
	xmlstream_free(xs);
}

/* An endless start tag fails once the limit is reached, not at the end. */
static void
test_endless_stanza(void **state)
{
	struct xmlstream_limits	 lim = { .stanza_size = 10000 };
	struct xmlstream	*xs;
	char			 chunk[4096];
	size_t			 total = 0;
	enum xmlstream_event	 ev;
	size_t			 used;

	memset(chunk, 'a', sizeof(chunk));
	assert_non_null(xs = xmlstream_new(&lim));
	feed_expect(xs, HDR "<message to='", sizeof(HDR) + 12,
	    XMLSTREAM_HEADER);
	feed_expect(xs, "<message to='", 13, XMLSTREAM_MORE);
	while ((ev = xmlstream_feed(xs, chunk, sizeof(chunk), &used)) ==
	    XMLSTREAM_MORE)
		total += used;
	assert_int_equal(ev, XMLSTREAM_ERROR);
	assert_true(total <= 10000);
	assert_int_equal(xmlstream_last_error(xs),
	    XMLSTREAM_ERR_POLICY_VIOLATION);
	assert_string_equal(xmlstream_error_detail(xs),
	    "element exceeds 10000 bytes");
	xmlstream_free(xs);
}

/*
 * Many stanzas of many sizes, fed in chunks of several sizes: every raw span
 * is exact, whatever raw had to drop, move or grow meanwhile.
 */
static void
test_many_stanzas_chunked(void **state)
{
	static const size_t	 chunks[] = { 1, 7, 100, 1000, 4093, 70000 };
	struct xmlstream_limits	 lim = { .stanza_size = 5000 };
	struct xmlstream	*xs;
	const struct xmlstream_element *el;
	char			*in;
	size_t			 cap = 1000000, len, i, c, off, avail, used, n;
	enum xmlstream_event	 ev;

	assert_non_null(in = malloc(cap));
	len = (size_t)snprintf(in, cap, "%s", HDR);
	for (i = 0; i < 300; i++) {
		len += (size_t)snprintf(in + len, cap - len,
		    "<message id='%zu'><body>", i);
		memset(in + len, 'a' + (int)(i % 26), i * 13 % 4000);
		len += i * 13 % 4000;
		len += (size_t)snprintf(in + len, cap - len, "</body></message>"
		    "%s", i % 3 ? "" : " \n");
	}
	for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		assert_non_null(xs = xmlstream_new(&lim));
		off = avail = n = 0;
		while (avail < len) {
			avail = avail + chunks[c] < len ? avail + chunks[c] : len;
			while ((ev = xmlstream_feed(xs, in + off, avail - off,
			    &used)) != XMLSTREAM_MORE) {
				off += used;
				if (ev == XMLSTREAM_HEADER)
					continue;
				assert_int_equal(ev, XMLSTREAM_ELEMENT);
				el = xmlstream_element(xs);
				assert_memory_equal(el->raw,
				    in + off - el->rawlen, el->rawlen);
				assert_int_equal(strtoul(xmlstream_node_attr(
				    &el->node, "id"), NULL, 10), n);
				n++;
			}
			off += used;
		}
		assert_int_equal(n, 300);
		xmlstream_free(xs);
	}
	free(in);
}

/* A tree may not decode to much more memory than its bytes. */
static void
test_tree_too_big(void **state)
{
	struct xmlstream_limits	 lim = { .stanza_size = 4096 };
	struct xmlstream	*xs;
	char			 in[8192];
	size_t			 len, i, off;

	len = (size_t)snprintf(in, sizeof(in), "%s<stream:features>", HDR);
	for (i = 0; i < 990; i++)
		len += (size_t)snprintf(in + len, sizeof(in) - len, "<x/>");
	len += (size_t)snprintf(in + len, sizeof(in) - len,
	    "</stream:features>");
	assert_true(len - (sizeof(HDR) - 1) <= 4096);
	assert_non_null(xs = xmlstream_new(&lim));
	off = feed_expect(xs, in, len, XMLSTREAM_HEADER);
	feed_expect(xs, in + off, len - off, XMLSTREAM_ERROR);
	assert_int_equal(xmlstream_last_error(xs),
	    XMLSTREAM_ERR_POLICY_VIOLATION);
	assert_non_null(strstr(xmlstream_error_detail(xs), "decodes to more"));
	xmlstream_free(xs);
}

/* Feed in whole and return xs at its second event (after the header). */
static struct xmlstream *
second_event(const char *in, size_t *off)
{
	struct xmlstream	*xs;
	size_t			 len = strlen(in);

	assert_non_null(xs = xmlstream_new(NULL));
	*off = feed_expect(xs, in, len, XMLSTREAM_HEADER);
	*off += feed_expect(xs, in + *off, len - *off, XMLSTREAM_ELEMENT);
	return xs;
}

static const struct xmlstream_nsdecl out_scope[] = {
	{ NULL, "jabber:server" },
	{ "stream", STREAMS },
	{ "db", "jabber:server:dialback" },
};

static void
test_render_rewrite(void **state)
{
	static const char	in[] = HDR_OPEN " xmlns:foo='urn:foo'>"
	    "<message from='a@remote.example' to='b@corp.example' type='chat'"
	    " xml:lang='en' xmlns:x='urn:x'><body>hi</body><foo:bar/>"
	    "<db:x/></message>";
	static const struct xmlstream_rewrite rw[] = {
		{ "to", "b@cup.corp.local" },
		{ "type", NULL },
		{ "id", "n'&<\"\n>" },
	};
	static const char	tag[] = "<message xmlns:x='urn:x' "
	    "xmlns:foo='urn:foo' from='a@remote.example' to='b@cup.corp.local'"
	    " xml:lang='en' id='n&apos;&amp;&lt;&quot;&#10;&gt;'>";
	static const char	bare[] = "<message xmlns:x='urn:x' "
	    "xmlns:stream='" STREAMS "' xmlns:db='jabber:server:dialback' "
	    "xmlns:foo='urn:foo' from='a@remote.example' to='b@corp.example' "
	    "type='chat' xml:lang='en'>";
	const struct xmlstream_element	*el;
	struct xmlstream		*xs;
	char				 buf[512], small[10];
	size_t				 off, n;

	xs = second_event(in, &off);
	el = xmlstream_element(xs);
	n = xmlstream_render_start_tag(xs, rw, 3, out_scope, 3, buf,
	    sizeof(buf));
	assert_string_equal(buf, tag);
	assert_int_equal(n, sizeof(tag) - 1);
	/* The relayed stanza: new start tag, then the raw rest. */
	assert_true(n + el->rawlen - el->starttaglen < sizeof(buf));
	memcpy(buf + n, el->raw + el->starttaglen, el->rawlen - el->starttaglen);
	buf[n + el->rawlen - el->starttaglen] = '\0';
	assert_string_equal(buf + n,
	    "<body>hi</body><foo:bar/><db:x/></message>");
	/* No scope: every header declaration but the default. */
	xmlstream_render_start_tag(xs, NULL, 0, NULL, 0, buf, sizeof(buf));
	assert_string_equal(buf, bare);
	/* Truncated like snprintf. */
	assert_int_equal(xmlstream_render_start_tag(xs, rw, 3, out_scope, 3,
	    small, sizeof(small)), sizeof(tag) - 1);
	assert_string_equal(small, "<message ");
	assert_int_equal(xmlstream_render_start_tag(xs, rw, 3, out_scope, 3,
	    NULL, 0), sizeof(tag) - 1);
	xmlstream_free(xs);
}

static void
test_render_empty_and_shadowed(void **state)
{
	static const char	in[] = HDR "<db:result xmlns:db="
	    "'jabber:server:dialback' from='r.example' to='c.example'/>";
	static const struct xmlstream_rewrite rw[] = {
		{ "from", NULL },
		{ "to", "c.internal" },
	};
	struct xmlstream	*xs;
	char			 buf[256];
	size_t			 off;

	xs = second_event(in, &off);
	xmlstream_render_start_tag(xs, rw, 2, NULL, 0, buf, sizeof(buf));
	assert_string_equal(buf, "<db:result xmlns:db='jabber:server:dialback'"
	    " xmlns:stream='" STREAMS "' to='c.internal'/>");
	/* After the next feed there is no element to render. */
	feed_expect(xs, in + off, strlen(in) - off, XMLSTREAM_MORE);
	assert_int_equal(xmlstream_render_start_tag(xs, NULL, 0, NULL, 0,
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	xmlstream_free(xs);
}

static void
test_escape(void **state)
{
	static const struct {
		const char	*in, *out;
	} t[] = {
		{ "", "" },
		{ "plain", "plain" },
		{ "a&b", "a&amp;b" },
		{ "<>'\"", "&lt;&gt;&apos;&quot;" },
		{ "\t\n\r", "&#9;&#10;&#13;" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
	};
	char	buf[64];
	size_t	i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(xmlstream_escape(buf, sizeof(buf), t[i].in),
		    strlen(t[i].out));
		assert_string_equal(buf, t[i].out);
	}
	assert_int_equal(xmlstream_escape(buf, 4, "a&b"), 7);
	assert_string_equal(buf, "a&a");
}

static void
test_node_lookup(void **state)
{
	const struct xmlstream_element	*el;
	const struct xmlstream_node	*tls, *n;
	struct xmlstream		*xs;
	size_t				 off;

	xs = second_event(HDR "<stream:features><starttls xmlns='urn:ietf:"
	    "params:xml:ns:xmpp-tls'><required/></starttls><dialback xmlns="
	    "'urn:xmpp:features:dialback'/><mechanisms xmlns='urn:ietf:params:"
	    "xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>"
	    "</stream:features>", &off);
	el = xmlstream_element(xs);
	assert_true(el->has_tree);
	tls = xmlstream_node_child(&el->node, "urn:ietf:params:xml:ns:xmpp-tls",
	    "starttls");
	assert_non_null(tls);
	assert_non_null(xmlstream_node_child(tls, NULL, "required"));
	assert_null(xmlstream_node_child(&el->node, "urn:other", "starttls"));
	n = xmlstream_node_child(&el->node, NULL, "mechanisms");
	assert_non_null(n);
	n = xmlstream_node_child(n, "urn:ietf:params:xml:ns:xmpp-sasl",
	    "mechanism");
	assert_non_null(n);
	assert_string_equal(n->text, "EXTERNAL");
	assert_non_null(xmlstream_node_child(&el->node, NULL, NULL));
	assert_null(xmlstream_node_attr(&el->node, "to"));
	xmlstream_free(xs);

	xs = second_event(HDR "<iq type='get' id='x' xml:lang='de'/>", &off);
	el = xmlstream_element(xs);
	assert_false(el->has_tree);
	assert_string_equal(xmlstream_node_attr(&el->node, "type"), "get");
	assert_string_equal(xmlstream_node_attr(&el->node, "id"), "x");
	assert_null(xmlstream_node_attr(&el->node, "lang"));
	assert_string_equal(xmlstream_attr_find(el->node.attrs,
	    el->node.nattrs, "http://www.w3.org/XML/1998/namespace", "lang"),
	    "de");
	xmlstream_free(xs);
}

static void
test_error_names(void **state)
{
	static const struct {
		enum xmlstream_error	 err;
		const char		*name;
	} t[] = {
		{ XMLSTREAM_ERR_NONE, NULL },
		{ XMLSTREAM_ERR_BAD_FORMAT, "bad-format" },
		{ XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX, "bad-namespace-prefix" },
		{ XMLSTREAM_ERR_INTERNAL_SERVER_ERROR, "internal-server-error" },
		{ XMLSTREAM_ERR_INVALID_NAMESPACE, "invalid-namespace" },
		{ XMLSTREAM_ERR_NOT_WELL_FORMED, "not-well-formed" },
		{ XMLSTREAM_ERR_POLICY_VIOLATION, "policy-violation" },
		{ XMLSTREAM_ERR_RESOURCE_CONSTRAINT, "resource-constraint" },
		{ XMLSTREAM_ERR_RESTRICTED_XML, "restricted-xml" },
		{ XMLSTREAM_ERR_UNSUPPORTED_ENCODING, "unsupported-encoding" },
	};
	size_t	i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].name == NULL)
			assert_null(xmlstream_error_name(t[i].err));
		else
			assert_string_equal(xmlstream_error_name(t[i].err),
			    t[i].name);
	}
	assert_null(xmlstream_error_name((enum xmlstream_error)99));
	xmlstream_free(NULL);
}

#define NCASES	(sizeof(cases) / sizeof(cases[0]))

int
main(void)
{
	static const struct CMUnitTest extra[] = {
		cmocka_unit_test(test_restart_used),
		cmocka_unit_test(test_release),
		cmocka_unit_test(test_unused_not_passed_again),
		cmocka_unit_test(test_error_is_sticky),
		cmocka_unit_test(test_after_end),
		cmocka_unit_test(test_keepalive_flood),
		cmocka_unit_test(test_endless_stanza),
		cmocka_unit_test(test_many_stanzas_chunked),
		cmocka_unit_test(test_tree_too_big),
		cmocka_unit_test(test_render_rewrite),
		cmocka_unit_test(test_render_empty_and_shadowed),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_node_lookup),
		cmocka_unit_test(test_error_names),
	};
	struct CMUnitTest	tests[NCASES + sizeof(extra) / sizeof(extra[0])];
	size_t			i;

	for (i = 0; i < NCASES; i++) {
		memset(&tests[i], 0, sizeof(tests[i]));
		tests[i].name = cases[i].name;
		tests[i].test_func = run_case;
		tests[i].initial_state = &cases[i];
	}
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		tests[NCASES + i] = extra[i];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
