/*
 * libFuzzer target: payload_rewrite(), the payload rewriter, against
 * expat. Input: 1 byte of settings, then the body of a <message/> (its
 * end tag is added). Byte 0 bit 0 maps the internal names to the public
 * ones (else the reverse), bit 1 covers subdomains of the first entry,
 * bit 2 declares a default namespace and a prefix on the stanza's start
 * tag.
 *
 * Properties (a failure traps):
 * - no mapped domain and no character reference in the body (the
 *   pre-check says no): the body is never rewritten;
 * - a body expat accepts as one stanza (no comment or processing
 *   instruction, which xmlstream refuses) is not refused, unless it goes
 *   past PAYLOAD_DEPTH_MAX or PAYLOAD_NSDECL_MAX;
 * - then the output, if rewritten, is accepted by expat too, and reads
 *   the same, element for element, attribute for attribute, text for
 *   text, but for the JID attributes of the table, which read what the
 *   map makes of the input's (computed here from the unescaped value);
 *   an unchanged body has no JID the map would change; the output is at
 *   most the input plus the growth of each rewritten domain;
 * - a buffer too small gets a prefix of the output and its true length;
 * - the output, mapped back, gives the input again (ASCII case aside)
 *   when the input had no character reference and no domain of the
 *   other side.
 */
#include "fgconfig.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#include "jid.h"
#include "payload.h"
#include "util.h"

#define HDR "<stream:stream xmlns='jabber:server' " \
	"xmlns:stream='http://etherx.jabber.org/streams' " \
	"xmlns:db='jabber:server:dialback'>"
#define TRAILER "</stream:stream>"
#define SEP '\x01'		/* expat's separator: no XML character */
#define GROWTH 11		/* the longest to minus the shortest from */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const struct xmlstream_nsdecl header_ns[] = {
	{ NULL, "jabber:server" },
	{ "stream", "http://etherx.jabber.org/streams" },
	{ "db", "jabber:server:dialback" },
};
static const struct xmlstream_nsdecl stanza_ns[] = {
	{ NULL, "jabber:client" },
	{ "c", "jabber:x:conference" },
};
#define STANZA_DECLS " xmlns='jabber:client' xmlns:c='jabber:x:conference'"

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* A growing byte buffer. */
struct buf {
	char	*p;
	size_t	 len, size;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->size) {
		size_t size = (b->len + n) * 2 + 64;

		check((b->p = realloc(b->p, size)) != NULL);
		b->size = size;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
put_str(struct buf *b, const char *s)
{
	put(b, s, strlen(s) + 1);	/* the NUL separates */
}

/* What expat reports of one document, flattened. */
struct oracle {
	const struct payload_map *map;	/* apply to JID attributes, or NULL */
	size_t		 nmap;
	struct buf	 events;
	struct buf	 text;		/* not flushed yet */
	char		*stack[PAYLOAD_DEPTH_MAX + 8][2]; /* (ns, name) of
					   the open elements */
	unsigned	 depth;
	unsigned	 stanzas;	/* elements at depth 1 */
	unsigned	 changed;	/* JID attributes the map changed */
	bool		 restricted;	/* a comment or a PI */
	bool		 outside;	/* text or a second stanza */
};

static char *
dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	check(d != NULL);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Split expat's "uri<SEP>name" (or "name") into ns and name. */
static void
split(const char *qname, char **ns, char **name)
{
	const char *sep = strchr(qname, SEP);

	*ns = dup_n(qname, sep != NULL ? (size_t)(sep - qname) : 0);
	*name = strdup(sep != NULL ? sep + 1 : qname);
	check(*name != NULL);
}

static void
flush_text(struct oracle *o)
{
	if (o->text.len == 0)
		return;
	put(&o->events, "T", 1);
	put(&o->events, o->text.p, o->text.len);
	put(&o->events, "", 1);
	o->text.len = 0;
}

/*
 * What the map makes of the JID value v: the same rule as payload.h says,
 * written again from the contract. Return a malloc'd string, or NULL if
 * unchanged.
 */
static char *
map_jid(const struct oracle *o, const char *v)
{
	size_t	 off, dlen, n = strlen(v), flen, keep = 0;
	const struct payload_map *m = NULL;
	char	*r;

	if (jid_domain_span(v, n, &off, &dlen) == -1)
		return NULL;
	if (dlen > 1 && v[off + dlen - 1] == '.')
		dlen--;
	for (size_t i = 0; i < o->nmap && m == NULL; i++)
		if (strlen(o->map[i].from) == dlen &&
		    strncasecmp(o->map[i].from, v + off, dlen) == 0)
			m = &o->map[i];
	for (size_t i = 0; i < o->nmap && keep == 0 && m == NULL; i++) {
		flen = strlen(o->map[i].from);
		if ((o->map[i].flags & PAYLOAD_MAP_SUBDOMAINS) &&
		    flen + 1 < dlen && v[off + dlen - flen - 1] == '.' &&
		    strncasecmp(o->map[i].from, v + off + dlen - flen,
		    flen) == 0) {
			/* one entry has subdomains here: no longest to find */
			m = &o->map[i];
			keep = dlen - flen;
		}
	}
	if (m == NULL)
		return NULL;
	r = malloc(n + strlen(m->to) + 1);
	check(r != NULL);
	memcpy(r, v, off + keep);
	strcpy(r + off + keep, m->to);
	strcat(r, v + off + dlen);
	return r;
}

static void XMLCALL
on_start(void *arg, const XML_Char *qname, const XML_Char **attrs)
{
	struct oracle	*o = arg;
	char		*ns, *name, *v;
	const char	*pns = NULL, *pname = NULL;

	flush_text(o);
	if (o->depth == 1 && o->stanzas++ > 0)
		o->outside = true;
	split(qname, &ns, &name);
	if (o->depth >= 3 && o->depth <= nitems(o->stack)) {
		/* 0: the stream, 1: the message */
		pns = o->stack[o->depth - 1][0];
		pname = o->stack[o->depth - 1][1];
	}
	put(&o->events, "S", 1);
	put_str(&o->events, ns);
	put_str(&o->events, name);
	for (size_t i = 0; attrs[i] != NULL; i += 2) {
		put_str(&o->events, attrs[i]);
		v = NULL;
		if (o->map != NULL && o->depth >= 2 &&
		    strchr(attrs[i], SEP) == NULL &&
		    payload_is_jid_attr(ns, name, pns, pname, attrs[i]) &&
		    (v = map_jid(o, attrs[i + 1])) != NULL)
			o->changed++;
		put_str(&o->events, v != NULL ? v : attrs[i + 1]);
		free(v);
	}
	if (o->depth < nitems(o->stack)) {
		o->stack[o->depth][0] = ns;
		o->stack[o->depth][1] = name;
	} else {		/* deeper than payload goes: no oracle */
		o->outside = true;
		free(ns);
		free(name);
	}
	o->depth++;
}

static void XMLCALL
on_end(void *arg, const XML_Char *qname)
{
	struct oracle *o = arg;

	(void)qname;
	flush_text(o);
	put(&o->events, "E", 1);
	o->depth--;
	if (o->depth < nitems(o->stack)) {
		free(o->stack[o->depth][0]);
		free(o->stack[o->depth][1]);
	}
}

static void XMLCALL
on_text(void *arg, const XML_Char *s, int len)
{
	struct oracle *o = arg;

	if (o->depth == 1)
		o->outside = true;
	put(&o->text, s, (size_t)len);
}

static void XMLCALL
on_comment(void *arg, const XML_Char *s)
{
	(void)s;
	((struct oracle *)arg)->restricted = true;
}

static void XMLCALL
on_pi(void *arg, const XML_Char *target, const XML_Char *data)
{
	(void)target;
	(void)data;
	((struct oracle *)arg)->restricted = true;
}

/*
 * Parse the stanza (start tag, then body) inside the stream header with
 * expat into o. Return whether it is well-formed and one stanza.
 */
static bool
oracle_parse(struct oracle *o, const char *stag, const char *body, size_t len)
{
	XML_Parser	 p = XML_ParserCreateNS(NULL, SEP);
	bool		 ok;

	check(p != NULL);
	XML_SetUserData(p, o);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	XML_SetCommentHandler(p, on_comment);
	XML_SetProcessingInstructionHandler(p, on_pi);
	ok = XML_Parse(p, HDR, (int)strlen(HDR), 0) == XML_STATUS_OK &&
	    XML_Parse(p, stag, (int)strlen(stag), 0) == XML_STATUS_OK &&
	    XML_Parse(p, body, (int)len, 0) == XML_STATUS_OK &&
	    XML_Parse(p, TRAILER, (int)strlen(TRAILER), 1) == XML_STATUS_OK;
	flush_text(o);
	while (o->depth > 0)	/* what an error left open */
		on_end(o, "");
	XML_ParserFree(p);
	return ok && !o->outside && !o->restricted;
}

static void
oracle_free(struct oracle *o)
{
	free(o->events.p);
	free(o->text.p);
}

static size_t
count(const char *p, size_t len, const char *s)
{
	size_t		 n = 0, sl = strlen(s);
	const char	*q;

	while ((q = memmem(p, len, s, sl)) != NULL) {
		n++;
		len -= (size_t)(q + sl - p);
		p = q + sl;
	}
	return n;
}

static bool
has_ci(const char *p, size_t len, const char *s)
{
	size_t sl = strlen(s);

	for (size_t i = 0; i + sl <= len; i++)
		if (strncasecmp(p + i, s, sl) == 0)
			return true;
	return false;
}

/* The output, mapped back, is the input (ASCII case aside). */
static void
check_back(const struct payload_body *in, const struct payload_body *out,
    const struct payload_map *back)
{
	size_t	 size = in->len + 1, len = 0;
	char	*again = malloc(size);

	check(again != NULL);
	check(payload_rewrite(out, back, 2, again, size, &len) ==
	    PAYLOAD_REWRITTEN);
	check(len == in->len);
	for (size_t i = 0; i < len; i++)
		check(again[i] == in->bytes[i] || (again[i] | 0x20) ==
		    (in->bytes[i] | 0x20));
	free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct payload_map	 map[2][2] = {
		{ { "corp.internal", "corp.example", 0 },
		  { "b.internal", "longer-public.example", 0 } },
		{ { "corp.example", "corp.internal", 0 },
		  { "longer-public.example", "b.internal", 0 } },
	};
	static struct oracle	 in, out;
	struct payload_body	 b = { 0 }, ob;
	const struct payload_map *fwd, *back;
	enum payload_result	 r, r2;
	char			*body, *o, *o2;
	size_t			 len, olen = 0, olen2 = 0, small;
	uint8_t			 flags;
	bool			 wf;

	if (size < 1)
		return 0;
	flags = data[0];
	if (flags & 2)
		map[0][0].flags = map[1][0].flags = PAYLOAD_MAP_SUBDOMAINS;
	fwd = map[flags & 1 ? 0 : 1];
	back = map[flags & 1 ? 1 : 0];
	len = size - 1 + strlen("</message>");
	check((body = malloc(len)) != NULL);
	memcpy(body, data + 1, size - 1);
	memcpy(body + size - 1, "</message>", strlen("</message>"));
	b.bytes = body;
	b.len = len;
	b.header_ns = header_ns;
	b.nheader_ns = nitems(header_ns);
	if (flags & 4) {
		b.stanza_ns = stanza_ns;
		b.nstanza_ns = nitems(stanza_ns);
	}
	check((o = malloc(len + 64)) != NULL);
	r = payload_rewrite(&b, fwd, 2, o, len + 64, &olen);
	if (!payload_may_match(body, len, fwd, 2))
		check(r != PAYLOAD_REWRITTEN);
	if (r == PAYLOAD_REWRITTEN && olen > len + 64) {	/* again */
		check((o = realloc(o, olen)) != NULL);
		check(payload_rewrite(&b, fwd, 2, o, olen, &olen2) == r &&
		    olen2 == olen);
	}
	if (r == PAYLOAD_REWRITTEN) {	/* a buffer too small: a prefix */
		small = olen / 2;
		check((o2 = malloc(small + 1)) != NULL);
		o2[small] = 'Z';
		r2 = payload_rewrite(&b, fwd, 2, o2, small, &olen2);
		check(r2 == r && olen2 == olen && memcmp(o2, o, small) == 0 &&
		    o2[small] == 'Z');
		free(o2);
	}

	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	in.map = fwd;
	in.nmap = 2;
	wf = oracle_parse(&in, flags & 4 ? "<message" STANZA_DECLS ">" :
	    "<message>", body, len);
	if (wf) {
		if (r == PAYLOAD_ERROR)
			check(count(body, len, "<") > PAYLOAD_DEPTH_MAX ||
			    count(body, len, "xmlns") > PAYLOAD_NSDECL_MAX);
		if (r == PAYLOAD_UNCHANGED)
			check(in.changed == 0);
		if (r == PAYLOAD_REWRITTEN) {
			check(in.changed > 0 &&
			    olen <= len + in.changed * GROWTH);
			check(oracle_parse(&out, flags & 4 ?
			    "<message" STANZA_DECLS ">" : "<message>", o, olen));
			check(out.events.len == in.events.len &&
			    memcmp(out.events.p, in.events.p,
			    in.events.len) == 0);
		}
	}
	if (r == PAYLOAD_REWRITTEN && memmem(body, len, "&#", 2) == NULL &&
	    !has_ci(body, len, back[0].from) && !has_ci(body, len, back[1].from)) {
		ob = b;
		ob.bytes = o;
		ob.len = olen;
		check_back(&b, &ob, back);
	}
	oracle_free(&in);
	oracle_free(&out);
	free(o);
	free(body);
	return 0;
}
