/*
 * payload: the payload rewriter (payload.h). A small scanner over the body
 * of a stanza that xmlstream has already checked: it follows tags and
 * namespace declarations, skips text and CDATA, and in the start tags of
 * the elements of payload_rows[] reads the JID attributes, unescaped, and
 * replaces the bytes of a mapped domain. Nothing is copied until the first
 * replacement: an unchanged body costs a scan and no write.
 */
#include "fgconfig.h"

#include <sys/types.h>

#include <stdint.h>
#include <string.h>

#include "jid.h"
#include "payload.h"
#include "util.h"
#include "xmpp.h"

/* The longest value read as a JID: local@domain/resource. */
#define PAYLOAD_JID_MAX		(JID_PART_MAX * 3 + 2)

/*
 * An element (ns, name) whose unqualified attributes attrs[] hold JIDs,
 * when it is a child of (parent_ns, parent), if set. A row without
 * attributes only names a parent for other rows.
 */
struct payload_row {
	const char	*ns;
	const char	*name;
	const char	*parent_ns;	/* NULL: any parent */
	const char	*parent;
	const char	*attrs[3];	/* NULL-terminated */
};

#define NS_MUC_USER	"http://jabber.org/protocol/muc#user"
#define NS_MUC_ADMIN	"http://jabber.org/protocol/muc#admin"
#define NS_MUC_OWNER	"http://jabber.org/protocol/muc#owner"
#define NS_PUBSUB	"http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER	"http://jabber.org/protocol/pubsub#owner"
#define NS_PUBSUB_EVENT	"http://jabber.org/protocol/pubsub#event"
#define NS_BYTESTREAMS	"http://jabber.org/protocol/bytestreams"
#define NS_FORWARD	"urn:xmpp:forward:0"

/*
 * The JID-valued attributes that cross S2S. doc/internals/legs.md lists
 * them for people; keep both in step. Not here, on purpose: JIDs in text
 * (data form values, <activate/> of XEP-0065, message bodies) and xmpp:
 * URIs (XEP-0033 uri, XEP-0060 redirect, XEP-0372 references).
 */
static const struct payload_row payload_rows[] = {
	/* XEP-0249 direct MUC invitation: the room */
	{ "jabber:x:conference", "x", NULL, NULL, { "jid" } },
	/* XEP-0045 mediated invitations, declines, occupants, actors,
	 * the alternative venue of a destroyed room */
	{ NS_MUC_USER, "invite", NULL, NULL, { "to", "from" } },
	{ NS_MUC_USER, "decline", NULL, NULL, { "to", "from" } },
	{ NS_MUC_USER, "item", NULL, NULL, { "jid" } },
	{ NS_MUC_USER, "actor", NULL, NULL, { "jid" } },
	{ NS_MUC_USER, "destroy", NULL, NULL, { "jid" } },
	{ NS_MUC_ADMIN, "item", NULL, NULL, { "jid" } },
	{ NS_MUC_ADMIN, "actor", NULL, NULL, { "jid" } },
	{ NS_MUC_OWNER, "destroy", NULL, NULL, { "jid" } },
	/* XEP-0033 extended stanza addressing */
	{ "http://jabber.org/protocol/address", "address", NULL, NULL,
	    { "jid" } },
	/* XEP-0030 disco items */
	{ "http://jabber.org/protocol/disco#items", "item", NULL, NULL,
	    { "jid" } },
	/* XEP-0060 publish-subscribe */
	{ NS_PUBSUB, "subscription", NULL, NULL, { "jid" } },
	{ NS_PUBSUB, "subscribe", NULL, NULL, { "jid" } },
	{ NS_PUBSUB, "unsubscribe", NULL, NULL, { "jid" } },
	{ NS_PUBSUB, "options", NULL, NULL, { "jid" } },
	{ NS_PUBSUB, "affiliation", NULL, NULL, { "jid" } },
	{ NS_PUBSUB, "item", NULL, NULL, { "publisher" } },
	{ NS_PUBSUB_OWNER, "subscription", NULL, NULL, { "jid" } },
	{ NS_PUBSUB_OWNER, "affiliation", NULL, NULL, { "jid" } },
	{ NS_PUBSUB_EVENT, "subscription", NULL, NULL, { "jid" } },
	{ NS_PUBSUB_EVENT, "item", NULL, NULL, { "publisher" } },
	/* XEP-0359 stanza ids: who assigned it */
	{ "urn:xmpp:sid:0", "stanza-id", NULL, NULL, { "by" } },
	/* XEP-0203 delayed delivery, and XEP-0091 before it */
	{ "urn:xmpp:delay", "delay", NULL, NULL, { "from" } },
	{ "jabber:x:delay", "x", NULL, NULL, { "from" } },
	/* XEP-0297 forwarded stanzas (carbons, MAM, ...): their own
	 * addresses; their payloads are rewritten like any other */
	{ NS_FORWARD, "forwarded", NULL, NULL, { NULL } },
	{ XMPP_NS_CLIENT, "message", NS_FORWARD, "forwarded", { "to", "from" } },
	{ XMPP_NS_CLIENT, "presence", NS_FORWARD, "forwarded",
	    { "to", "from" } },
	{ XMPP_NS_CLIENT, "iq", NS_FORWARD, "forwarded", { "to", "from" } },
	{ XMPP_NS_SERVER, "message", NS_FORWARD, "forwarded", { "to", "from" } },
	{ XMPP_NS_SERVER, "presence", NS_FORWARD, "forwarded",
	    { "to", "from" } },
	{ XMPP_NS_SERVER, "iq", NS_FORWARD, "forwarded", { "to", "from" } },
	/* XEP-0144 roster item exchange */
	{ "http://jabber.org/protocol/rosterx", "item", NULL, NULL, { "jid" } },
	/* XEP-0065 SOCKS5 bytestreams: the proxies */
	{ NS_BYTESTREAMS, "streamhost", NULL, NULL, { "jid" } },
	{ NS_BYTESTREAMS, "streamhost-used", NULL, NULL, { "jid" } },
	/* XEP-0461 message replies: the author replied to */
	{ "urn:xmpp:reply:0", "reply", NULL, NULL, { "to" } },
};

/* A namespace declaration in scope: from the body (escaped) or the
 * caller's (a plain string). */
struct payload_ns {
	const char	*prefix;	/* NULL: the default namespace */
	size_t		 prefixlen;
	const char	*uri;
	size_t		 urilen;
	bool		 escaped;	/* uri is as written in the body */
};

struct payload_frame {
	uint16_t	 nns;		/* declarations in scope before it */
	int16_t		 row;		/* its row, -1 if none */
};

/* One attribute of a start tag, as written. */
struct payload_attr {
	const char	*name;
	size_t		 namelen;
	const char	*value;		/* between the quotes */
	size_t		 valuelen;
};

struct payload_scan {
	const char			*p;	/* next byte to scan */
	const char			*end;
	const struct payload_body	*body;
	const struct payload_map	*map;
	size_t				 nmap;
	char				*out;
	size_t				 size;
	size_t				 outlen;
	const char			*copied; /* body copied up to here */
	unsigned			 rewritten;
	struct payload_ns		 ns[PAYLOAD_NSDECL_MAX];
	size_t				 nns;
	struct payload_frame		 frames[PAYLOAD_DEPTH_MAX];
	size_t				 depth;
};

static char
payload_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether a[0..n) and b[0..n) are equal, ASCII case ignored. */
static bool
payload_is_caseeq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (payload_lower(a[i]) != payload_lower(b[i]))
			return false;
	return true;
}

/* Whether needle appears in p[0..len), ASCII case ignored. */
static bool
payload_has(const char *p, size_t len, const char *needle)
{
	size_t		 n = strlen(needle);
	char		 lo, up;
	const char	*a, *b, *c, *last;

	if (n == 0 || n > len)
		return n == 0;
	lo = payload_lower(needle[0]);
	up = lo >= 'a' && lo <= 'z' ? (char)(lo - 'a' + 'A') : lo;
	last = p + (len - n) + 1;	/* where a match may start, below */
	a = memchr(p, lo, (size_t)(last - p));
	b = up != lo ? memchr(p, up, (size_t)(last - p)) : NULL;
	for (;;) {
		c = a == NULL ? b : b == NULL || a < b ? a : b;
		if (c == NULL)
			return false;
		if (payload_is_caseeq(c + 1, needle + 1, n - 1))
			return true;
		if (c == a)
			a = memchr(c + 1, lo, (size_t)(last - c - 1));
		else
			b = memchr(c + 1, up, (size_t)(last - c - 1));
	}
}

bool
payload_has_domain(const char *body, size_t len, const char *domain)
{
	return domain[0] != '\0' && payload_has(body, len, domain);
}

bool
payload_has_ref(const char *body, size_t len)
{
	return len > 0 && memmem(body, len, "&#", 2) != NULL;
}

bool
payload_may_match(const char *body, size_t len,
    const struct payload_map *map, size_t nmap)
{
	if (len == 0 || nmap == 0)
		return false;
	if (payload_has_ref(body, len))
		return true;
	for (size_t i = 0; i < nmap; i++)
		if (payload_has_domain(body, len, map[i].from))
			return true;
	return false;
}

static bool
payload_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Skip white space at *pp; whether there was any. */
static bool
payload_skip_space(const char **pp, const char *end)
{
	const char *p = *pp;

	while (p < end && payload_is_space(*p))
		p++;
	if (p == *pp)
		return false;
	*pp = p;
	return true;
}

/* Encode the code point c as UTF-8 in buf. Return its length. */
static size_t
payload_utf8(uint32_t c, char *buf)
{
	if (c < 0x80) {
		buf[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		buf[0] = (char)(0xc0 | c >> 6);
		buf[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		buf[0] = (char)(0xe0 | c >> 12);
		buf[1] = (char)(0x80 | (c >> 6 & 0x3f));
		buf[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	buf[0] = (char)(0xf0 | c >> 18);
	buf[1] = (char)(0x80 | (c >> 12 & 0x3f));
	buf[2] = (char)(0x80 | (c >> 6 & 0x3f));
	buf[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Whether c is an XML 1.0 Char. */
static bool
payload_is_xml_char(uint32_t c)
{
	return c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c <= 0xd7ff) ||
	    (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}

/* The character reference p[0..n) ("#65", "#x41"). 0, or -1. */
static int
payload_charref(const char *p, size_t n, uint32_t *c)
{
	unsigned	 base = 10;
	size_t		 i = 1;

	*c = 0;
	if (n >= 2 && p[1] == 'x') {
		base = 16;
		i = 2;
	}
	if (i == n)
		return -1;
	for (; i < n; i++) {
		char		 d = p[i];
		unsigned	 v;

		if (d >= '0' && d <= '9')
			v = (unsigned)(d - '0');
		else if (base == 16 && d >= 'a' && d <= 'f')
			v = (unsigned)(d - 'a' + 10);
		else if (base == 16 && d >= 'A' && d <= 'F')
			v = (unsigned)(d - 'A' + 10);
		else
			return -1;
		*c = *c * base + v;
		if (*c > 0x10ffff)
			return -1;
	}
	return payload_is_xml_char(*c) ? 0 : -1;
}

/*
 * Decode the reference at p ('&', up to end) into buf (4 bytes). Store
 * the bytes of the reference in *adv. Return the length decoded, or 0 if
 * it is not a predefined entity or a valid character reference.
 */
static size_t
payload_ref(const char *p, const char *end, char *buf, size_t *adv)
{
	static const struct { const char *name; char c; } ents[] = {
		{ "lt", '<' }, { "gt", '>' }, { "amp", '&' },
		{ "apos", '\'' }, { "quot", '"' },
	};
	const char	*semi;
	size_t		 n;
	uint32_t	 c;

	if ((semi = memchr(p, ';', (size_t)(end - p))) == NULL)
		return 0;
	n = (size_t)(semi - p - 1);	/* between '&' and ';' */
	*adv = n + 2;
	if (n > 0 && p[1] == '#')
		return payload_charref(p + 1, n, &c) == 0 ?
		    payload_utf8(c, buf) : 0;
	for (size_t i = 0; i < nitems(ents); i++)
		if (strlen(ents[i].name) == n &&
		    memcmp(ents[i].name, p + 1, n) == 0) {
			buf[0] = ents[i].c;
			return 1;
		}
	return 0;
}

/*
 * Decode one character of the attribute value at p (before end) into buf
 * (4 bytes), as a parser reports it: references replaced, white space
 * normalised to a space (CR LF as one). Store the bytes used in *adv.
 * Return the length decoded, 0 if malformed.
 */
static size_t
payload_decode(const char *p, const char *end, char *buf, size_t *adv)
{
	*adv = 1;
	switch (*p) {
	case '&':
		return payload_ref(p, end, buf, adv);
	case '\r':
		if (p + 1 < end && p[1] == '\n')
			*adv = 2;
		/* FALLTHROUGH */
	case '\n':
	case '\t':
		buf[0] = ' ';
		return 1;
	default:
		buf[0] = *p;
		return 1;
	}
}

/*
 * Unescape the value v[0..len) into buf (size bytes). Return its length,
 * or -1 if malformed or longer than size.
 */
static ssize_t
payload_unescape(const char *v, size_t len, char *buf, size_t size)
{
	const char	*end = v + len;
	size_t		 o = 0, n, adv;
	char		 c[4];

	while (v < end) {
		if ((n = payload_decode(v, end, c, &adv)) == 0 ||
		    n > size - o)
			return -1;
		memcpy(buf + o, c, n);
		o += n;
		v += adv;
	}
	return (ssize_t)o;
}

/* Whether the escaped value v[0..len) unescapes to exactly s. */
static bool
payload_escaped_is(const char *v, size_t len, const char *s)
{
	const char	*end = v + len;
	size_t		 slen = strlen(s), o = 0, n, adv;
	char		 c[4];

	while (v < end) {
		if ((n = payload_decode(v, end, c, &adv)) == 0 ||
		    n > slen - o || memcmp(s + o, c, n) != 0)
			return false;
		o += n;
		v += adv;
	}
	return o == slen;
}

static bool
payload_ns_is(const struct payload_ns *d, const char *uri)
{
	if (d->escaped)
		return payload_escaped_is(d->uri, d->urilen, uri);
	return d->urilen == strlen(uri) && memcmp(d->uri, uri, d->urilen) == 0;
}

/* Whether decl d (body or caller) binds prefix p[0..n) (NULL: default). */
static bool
payload_binds(const char *dprefix, size_t dlen, const char *p, size_t n)
{
	if (p == NULL || dprefix == NULL)
		return p == NULL && dprefix == NULL;
	return dlen == n && memcmp(dprefix, p, n) == 0;
}

/* Find the binding of prefix p[0..n) in the caller's decls[0..nd). */
static bool
payload_find_caller(const struct xmlstream_nsdecl *decls, size_t nd,
    const char *p, size_t n, struct payload_ns *out)
{
	while (nd-- > 0) {
		const char *dp = decls[nd].prefix;

		if (payload_binds(dp, dp != NULL ? strlen(dp) : 0, p, n)) {
			out->uri = decls[nd].uri;
			out->urilen = strlen(decls[nd].uri);
			out->escaped = false;
			return true;
		}
	}
	return false;
}

/*
 * The namespace of an element with prefix p[0..n) (NULL: none) in s's
 * scope. Return 0, or -1 if the prefix is not bound.
 */
static int
payload_resolve(const struct payload_scan *s, const char *p, size_t n,
    struct payload_ns *out)
{
	const struct payload_body *b = s->body;

	if (p != NULL && n == 3 && memcmp(p, "xml", 3) == 0) {
		out->uri = XMPP_NS_XML;
		out->urilen = strlen(XMPP_NS_XML);
		out->escaped = false;
		return 0;
	}
	for (size_t i = s->nns; i-- > 0;)
		if (payload_binds(s->ns[i].prefix, s->ns[i].prefixlen, p, n)) {
			*out = s->ns[i];
			return 0;
		}
	if (payload_find_caller(b->stanza_ns, b->nstanza_ns, p, n, out) ||
	    payload_find_caller(b->header_ns, b->nheader_ns, p, n, out))
		return 0;
	if (p != NULL)
		return -1;
	out->uri = "";		/* no default namespace: none */
	out->urilen = 0;
	out->escaped = false;
	return 0;
}

/*
 * Read the next attribute of the start tag at *pp, or its end. Return 1
 * with *a filled; 0 at the end of the tag, *pp past it, *empty set for
 * "/>"; -1 if malformed.
 */
static int
payload_next_attr(const char **pp, const char *end, struct payload_attr *a,
    bool *empty)
{
	const char	*p = *pp;
	bool		 space = payload_skip_space(&p, end);
	char		 q;

	if (p == end)
		return -1;
	if (*p == '>' || *p == '/') {
		if (*p == '/' && (p + 1 == end || p[1] != '>'))
			return -1;
		*empty = *p == '/';
		*pp = p + (*empty ? 2 : 1);
		return 0;
	}
	if (!space)
		return -1;
	a->name = p;
	while (p < end && !payload_is_space(*p) && strchr("=<>/'\"", *p) ==
	    NULL)
		p++;
	if ((a->namelen = (size_t)(p - a->name)) == 0)
		return -1;
	payload_skip_space(&p, end);
	if (p == end || *p++ != '=')
		return -1;
	payload_skip_space(&p, end);
	if (p == end || (*p != '\'' && *p != '"'))
		return -1;
	q = *p++;
	a->value = p;
	if ((p = memchr(p, q, (size_t)(end - p))) == NULL)
		return -1;
	a->valuelen = (size_t)(p - a->value);
	if (memchr(a->value, '<', a->valuelen) != NULL)
		return -1;
	*pp = p + 1;
	return 1;
}

/* Append n bytes at p to the output, as far as it has room. */
static void
payload_emit(struct payload_scan *s, const char *p, size_t n)
{
	if (s->outlen < s->size)
		memcpy(s->out + s->outlen, p,
		    n < s->size - s->outlen ? n : s->size - s->outlen);
	s->outlen += n;
}

/*
 * The entry of the map for the domain d[0..n), and in *keep how many of
 * its first bytes stay (a subdomain's own labels). NULL if none.
 */
static const struct payload_map *
payload_map_find(const struct payload_scan *s, const char *d, size_t n,
    size_t *keep)
{
	const struct payload_map	*best = NULL;
	size_t				 flen, bestlen = 0;

	*keep = 0;
	for (size_t i = 0; i < s->nmap; i++)
		if (strlen(s->map[i].from) == n &&
		    payload_is_caseeq(s->map[i].from, d, n))
			return &s->map[i];
	for (size_t i = 0; i < s->nmap; i++) {
		if (!(s->map[i].flags & PAYLOAD_MAP_SUBDOMAINS))
			continue;
		flen = strlen(s->map[i].from);
		if (flen + 1 < n && flen > bestlen && d[n - flen - 1] == '.' &&
		    payload_is_caseeq(s->map[i].from, d + n - flen, flen)) {
			best = &s->map[i];
			bestlen = flen;
		}
	}
	if (best != NULL)
		*keep = n - bestlen;
	return best;
}

/*
 * Where the unescaped offsets r0 and r1 of the value v[0..len) start in
 * v: store them in raw[0..2). Return 0, or -1 if one falls inside a
 * reference.
 */
static int
payload_raw_span(const char *v, size_t len, size_t r0, size_t r1,
    const char **raw)
{
	const char	*end = v + len;
	size_t		 o = 0, n, adv;
	char		 c[4];

	raw[0] = raw[1] = NULL;
	for (;;) {
		if (o == r0)
			raw[0] = v;
		if (o == r1)
			raw[1] = v;
		if (v == end || o > r1)
			break;
		if ((n = payload_decode(v, end, c, &adv)) == 0)
			return -1;
		o += n;
		v += adv;
	}
	return raw[0] != NULL && raw[1] != NULL ? 0 : -1;
}

/*
 * The JID attribute value v[0..len): if its domain is mapped, replace the
 * domain's bytes in the output. Return 0, or -1 if the value is
 * malformed.
 */
static int
payload_jid(struct payload_scan *s, const char *v, size_t len)
{
	char				 val[PAYLOAD_JID_MAX], esc[JID_DOMAIN_MAX * 6];
	const struct payload_map	*m;
	const char			*raw[2];
	size_t				 off, dlen, keep, elen;
	ssize_t				 n;

	if ((n = payload_unescape(v, len, val, sizeof(val))) == -1)
		return len > sizeof(val) ? 0 : -1;	/* too long: no JID */
	if (jid_domain_span(val, (size_t)n, &off, &dlen) == -1)
		return 0;
	if (dlen > 1 && val[off + dlen - 1] == '.')
		dlen--;			/* the root's dot stays */
	if ((m = payload_map_find(s, val + off, dlen, &keep)) == NULL)
		return 0;
	elen = xmlstream_escape(esc, sizeof(esc), m->to);
	if (elen >= sizeof(esc) ||
	    payload_raw_span(v, len, off + keep, off + dlen, raw) == -1)
		return 0;
	payload_emit(s, s->copied, (size_t)(raw[0] - s->copied));
	payload_emit(s, esc, elen);
	s->copied = raw[1];
	s->rewritten++;
	return 0;
}

/* Whether the attribute name a[0..n) is one of row's. */
static bool
payload_row_has(const struct payload_row *row, const char *a, size_t n)
{
	for (size_t i = 0; i < nitems(row->attrs) && row->attrs[i] != NULL;
	    i++)
		if (strlen(row->attrs[i]) == n && memcmp(row->attrs[i], a, n) == 0)
			return true;
	return false;
}

/* The row of the element (ns, local name n[0..nlen)) under the top frame
 * of s, or -1. */
static int
payload_row_find(const struct payload_scan *s, const struct payload_ns *ns,
    const char *n, size_t nlen)
{
	const struct payload_row *parent = NULL;

	if (s->depth > 0 && s->frames[s->depth - 1].row >= 0)
		parent = &payload_rows[s->frames[s->depth - 1].row];
	for (size_t i = 0; i < nitems(payload_rows); i++) {
		const struct payload_row *r = &payload_rows[i];

		if (strlen(r->name) != nlen || memcmp(r->name, n, nlen) != 0 ||
		    !payload_ns_is(ns, r->ns))
			continue;
		if (r->parent != NULL && (parent == NULL ||
		    strcmp(parent->ns, r->parent_ns) != 0 ||
		    strcmp(parent->name, r->parent) != 0))
			continue;
		return (int)i;
	}
	return -1;
}

/* Push the namespace declaration a, if it is one. 0, or -1 if full. */
static int
payload_push_ns(struct payload_scan *s, const struct payload_attr *a)
{
	struct payload_ns *d;

	if (a->namelen < 5 || memcmp(a->name, "xmlns", 5) != 0 ||
	    (a->namelen > 5 && a->name[5] != ':'))
		return 0;
	if (s->nns == PAYLOAD_NSDECL_MAX)
		return -1;
	d = &s->ns[s->nns++];
	d->prefix = a->namelen > 5 ? a->name + 6 : NULL;
	d->prefixlen = a->namelen > 5 ? a->namelen - 6 : 0;
	d->uri = a->value;
	d->urilen = a->valuelen;
	d->escaped = true;
	return 0;
}

/*
 * The start tag at s->p ('<' and a name): declarations, element, JID
 * attributes. Return 0, or -1 if malformed or past a limit.
 */
static int
payload_start_tag(struct payload_scan *s)
{
	const char		*p = s->p + 1, *name = p, *colon;
	size_t			 nns = s->nns, nlen;
	struct payload_attr	 a;
	struct payload_ns	 ns;
	bool			 empty = false;
	int			 r, row;

	while (p < s->end && !payload_is_space(*p) && strchr("<>/='\"&", *p) ==
	    NULL)
		p++;
	if ((nlen = (size_t)(p - name)) == 0)
		return -1;
	s->p = p;
	while ((r = payload_next_attr(&p, s->end, &a, &empty)) == 1)
		if (payload_push_ns(s, &a) == -1)
			return -1;
	if (r == -1)
		return -1;
	colon = memchr(name, ':', nlen);
	if (payload_resolve(s, colon != NULL ? name : NULL,
	    colon != NULL ? (size_t)(colon - name) : 0, &ns) == -1)
		return -1;
	if (colon != NULL) {
		nlen -= (size_t)(colon + 1 - name);
		name = colon + 1;
	}
	if ((row = payload_row_find(s, &ns, name, nlen)) >= 0 &&
	    payload_rows[row].attrs[0] != NULL) {
		p = s->p;
		while (payload_next_attr(&p, s->end, &a, &empty) == 1)
			if (payload_row_has(&payload_rows[row], a.name,
			    a.namelen) && payload_jid(s, a.value, a.valuelen) == -1)
				return -1;
	}
	s->p = p;
	if (empty) {
		s->nns = nns;
		return 0;
	}
	if (s->depth == PAYLOAD_DEPTH_MAX)
		return -1;
	s->frames[s->depth].nns = (uint16_t)nns;
	s->frames[s->depth].row = (int16_t)row;
	s->depth++;
	return 0;
}

/*
 * The end tag at s->p ("</"). At depth 0 it is the stanza's own: the
 * body must end with it. Return 0, 1 at the stanza's end, or -1.
 */
static int
payload_end_tag(struct payload_scan *s)
{
	const char *p = s->p + 2, *gt;

	if ((gt = memchr(p, '>', (size_t)(s->end - p))) == NULL || gt == p)
		return -1;
	for (; p < gt && !payload_is_space(*p); p++)
		if (strchr("<>/='\"&", *p) != NULL)
			return -1;
	payload_skip_space(&p, gt);
	if (p != gt)
		return -1;
	s->p = gt + 1;
	if (s->depth == 0)
		return s->p == s->end ? 1 : -1;
	s->depth--;
	s->nns = s->frames[s->depth].nns;
	return 0;
}

/* The markup at s->p ('<'). Return 0, 1 at the stanza's end, or -1. */
static int
payload_markup(struct payload_scan *s)
{
	static const char	 cdata[] = "<![CDATA[";
	const char		*p;
	size_t			 left = (size_t)(s->end - s->p);

	if (left < 2)
		return -1;
	if (s->p[1] == '/')
		return payload_end_tag(s);
	if (s->p[1] == '!') {
		if (left < sizeof(cdata) - 1 ||
		    memcmp(s->p, cdata, sizeof(cdata) - 1) != 0 ||
		    (p = memmem(s->p, left, "]]>", 3)) == NULL)
			return -1;
		s->p = p + 3;
		return 0;
	}
	if (s->p[1] == '?')
		return -1;
	return payload_start_tag(s);
}

enum payload_result
payload_rewrite(const struct payload_body *body,
    const struct payload_map *map, size_t nmap, char *out, size_t size,
    size_t *outlen)
{
	struct payload_scan	 s;
	const char		*lt;
	int			 r = 0;

	s.p = body->bytes;
	s.end = body->bytes + body->len;
	s.body = body;
	s.map = map;
	s.nmap = nmap;
	s.out = out;
	s.size = size;
	s.outlen = 0;
	s.copied = body->bytes;
	s.rewritten = 0;
	s.nns = 0;
	s.depth = 0;
	while (s.p < s.end && r == 0) {
		if (*s.p != '<') {	/* text: never touched */
			lt = memchr(s.p, '<', (size_t)(s.end - s.p));
			s.p = lt != NULL ? lt : s.end;
			continue;
		}
		r = payload_markup(&s);
	}
	if (r == -1 || s.depth != 0)
		return PAYLOAD_ERROR;
	if (s.rewritten == 0)
		return PAYLOAD_UNCHANGED;
	payload_emit(&s, s.copied, (size_t)(s.end - s.copied));
	*outlen = s.outlen;
	return PAYLOAD_REWRITTEN;
}

bool
payload_is_jid_attr(const char *ns, const char *name, const char *parent_ns,
    const char *parent_name, const char *attr)
{
	for (size_t i = 0; i < nitems(payload_rows); i++) {
		const struct payload_row *r = &payload_rows[i];

		if (strcmp(r->ns, ns) != 0 || strcmp(r->name, name) != 0)
			continue;
		if (r->parent != NULL && (parent_ns == NULL ||
		    parent_name == NULL || strcmp(r->parent_ns, parent_ns) != 0 ||
		    strcmp(r->parent, parent_name) != 0))
			continue;
		return payload_row_has(r, attr, strlen(attr));
	}
	return false;
}
