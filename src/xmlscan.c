/*
 * xmlscan: the fast path of xmlstream. The contract is in xmlscan.h.
 *
 * The scanner walks the element once, left to right. Whatever it does not
 * know for sure to be what expat accepts makes it give up (punt), so the
 * rules below are those of XML 1.0 and Namespaces in XML restricted to what
 * is cheap to check: ASCII names, quoted values without white space to
 * normalise, prefixes declared inside the element, UTF-8 checked as expat
 * checks it (no overlong forms, no surrogates, nothing above U+10FFFF, no
 * U+FFFE or U+FFFF), character references to XML characters only.
 */
#include "fgconfig.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "xmlscan.h"

#define NS_XML		"http://www.w3.org/XML/1998/namespace"
#define NS_XMLNS	"http://www.w3.org/2000/xmlns/"
#define MAX_DECLS	16	/* prefixes declared inside the element */
#define MAX_TAG_ATTRS	16	/* attributes of a child's start tag */

/* Bytes that end a run of text: markup, references, "]]>", controls, and
 * the lead bytes of UTF-8 sequences (checked one by one). */
static const unsigned char text_stop[256] = {
	[0 ... 8] = 1, [11 ... 12] = 1, [14 ... 31] = 1,
	['<'] = 1, ['&'] = 1, [']'] = 1, [128 ... 255] = 1,
};

/* The same in an attribute value, with both quotes, and the white space
 * expat would normalise (the scanner gives up on it). */
static const unsigned char value_stop[256] = {
	[0 ... 31] = 1, ['<'] = 1, ['&'] = 1, ['\''] = 1, ['"'] = 1,
	[128 ... 255] = 1,
};

/* 1: may start a name; 2: may go on with one. ASCII only. */
static const unsigned char name_char[256] = {
	['A' ... 'Z'] = 3, ['a' ... 'z'] = 3, ['_'] = 3,
	['0' ... '9'] = 2, ['.'] = 2, ['-'] = 2,
};

struct span {
	const char	*s;
	size_t		 len;
};

struct decl {
	struct span	 prefix;
	unsigned	 depth;		/* of the element declaring it */
};

/* A qualified name as written: prefix (len 0 if none), then local. */
struct qname {
	struct span	 all;
	struct span	 prefix;
	struct span	 local;
};

struct scan {
	const char			*p;
	size_t				 n;	/* bytes that may be read */
	size_t				 i;	/* the next one */
	const struct xmlscan_limits	*limits;
	unsigned			 max_depth;
	struct span			 open[XMLSCAN_MAX_DEPTH];
	unsigned			 depth;	/* elements open */
	struct decl			 decls[MAX_DECLS];
	unsigned			 ndecls;
	bool				 cut;	/* failed for want of bytes */
};

/* Whether i is past the bytes; if so, the scan failed for want of more. */
static bool
at_end(struct scan *sc, size_t i)
{
	if (i < sc->n)
		return false;
	sc->cut = true;
	return true;
}

static bool
span_is(struct span s, const char *lit)
{
	size_t	len = strlen(lit);

	return s.len == len && memcmp(s.s, lit, len) == 0;
}

static bool
span_eq(struct span a, struct span b)
{
	return a.len == b.len && memcmp(a.s, b.s, a.len) == 0;
}

/*
 * Return the index of the first byte at or after i in p[0..n) that stops a
 * run of text (text_stop), or n. Sixteen bytes at a time where SSE2 is:
 * a byte stops the vector test if it is '<', '&', ']', below 0x20 or
 * above 0x7f, a superset of text_stop (tab, LF and CR are looked at again
 * one by one).
 */
static size_t
text_run(const char *p, size_t i, size_t n)
{
#ifdef __SSE2__
	const __m128i lt = _mm_set1_epi8('<'), amp = _mm_set1_epi8('&');
	const __m128i rb = _mm_set1_epi8(']'), sp = _mm_set1_epi8(0x20);
	__m128i v, stop;
	size_t end;

	for (;;) {
		while (n - i >= 16) {
			v = _mm_loadu_si128((const __m128i *)(const void *)
			    (p + i));
			/* signed: above 0x7f is negative, so below 0x20 */
			stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, lt),
			    _mm_cmpeq_epi8(v, amp)), _mm_or_si128(
			    _mm_cmpeq_epi8(v, rb), _mm_cmplt_epi8(v, sp)));
			if (_mm_movemask_epi8(stop) != 0)
				break;
			i += 16;
		}
		/* the candidate's 16 bytes (or the last few), one by one */
		for (end = n - i > 16 ? i + 16 : n; i < end; i++)
			if (text_stop[(unsigned char)p[i]])
				return i;
		if (i >= n)
			return n;
	}
#else
	while (i < n && !text_stop[(unsigned char)p[i]])
		i++;
	return i;
#endif
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

size_t
xmlscan_space(const char *p, size_t n)
{
	size_t	i = 0;

	while (i < n && is_space(p[i]))
		i++;
	return i;
}

/* Characters. */

/*
 * Return the length of the UTF-8 sequence at p[0..n) (p[0] >= 0x80) if it
 * is one XML character expat accepts, else 0.
 */
static size_t
utf8_char(const unsigned char *p, size_t n)
{
	unsigned char	c = p[0], lo = 0x80, hi = 0xbf;
	size_t		len, k;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;	/* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;	/* nothing above U+10FFFF */
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (k = 2; k < len; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return 0;
	if (c == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf))
		return 0;	/* U+FFFE, U+FFFF */
	return len;
}

/* Whether p[0..n), n short of the length its lead byte gives, is the
 * start of a UTF-8 character utf8_char() would accept. */
static bool
utf8_is_cut(const unsigned char *p, size_t n)
{
	unsigned char	buf[4] = { 0, 0x80, 0x80, 0x80 };

	if (n == 0 || n >= 4)
		return false;
	memcpy(buf, p, n);
	if (buf[0] == 0xe0 && n < 2)
		buf[1] = 0xa0;
	else if (buf[0] == 0xf0 && n < 2)
		buf[1] = 0x90;
	return utf8_char(buf, 4) > n;	/* completed with the lowest */
}

/* Whether code point c is an XML 1.0 character. */
static bool
is_xml_char(uint32_t c)
{
	return c == 0x9 || c == 0xa || c == 0xd ||
	    (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) ||
	    (c >= 0x10000 && c <= 0x10ffff);
}

/*
 * Parse the reference at p[0..n) (p[0] == '&'): a predefined entity or a
 * character reference to an XML character. Return its length and store
 * what it stands for in *c, or return 0.
 */
static size_t
reference(const char *p, size_t n, uint32_t *c)
{
	static const struct {
		const char	*name;
		char		 c;
	} predefined[] = {
		{ "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
		{ "&apos;", '\'' }, { "&quot;", '"' },
	};
	size_t		i, len, digits = 0;
	bool		hex;
	uint32_t	v = 0;
	int		d;

	if (n >= 2 && p[1] != '#') {
		for (i = 0; i < sizeof(predefined) / sizeof(*predefined); i++) {
			len = strlen(predefined[i].name);
			if (n >= len && memcmp(p, predefined[i].name, len) == 0) {
				*c = (unsigned char)predefined[i].c;
				return len;
			}
		}
		return 0;
	}
	hex = n >= 3 && p[2] == 'x';
	for (i = hex ? 3 : 2; i < n && p[i] != ';'; i++, digits++) {
		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (hex && p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else if (hex && p[i] >= 'A' && p[i] <= 'F')
			d = p[i] - 'A' + 10;
		else
			return 0;
		v = v * (hex ? 16 : 10) + (uint32_t)d;
		if (v > 0x10ffff)
			return 0;
	}
	if (i >= n || digits == 0 || !is_xml_char(v))
		return 0;
	*c = v;
	return i + 1;
}

/* Whether p[0..n) (p[0] == '&', no ';') is the start of a reference
 * reference() would accept. */
static bool
reference_is_cut(const char *p, size_t n)
{
	static const char *const names[] = {
		"&lt;", "&gt;", "&amp;", "&apos;", "&quot;"
	};
	size_t		i, k;
	uint32_t	v = 0;
	bool		hex;

	if (memchr(p, ';', n) != NULL)
		return false;
	if (n < 2 || p[1] != '#') {
		for (k = 0; k < sizeof(names) / sizeof(*names); k++)
			if (n < strlen(names[k]) && memcmp(p, names[k], n) == 0)
				return true;
		return false;
	}
	hex = n >= 3 && p[2] == 'x';
	for (i = hex ? 3 : 2; i < n; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			v = v * (hex ? 16 : 10) + (uint32_t)(p[i] - '0');
		else if (hex && p[i] >= 'a' && p[i] <= 'f')
			v = v * 16 + (uint32_t)(p[i] - 'a' + 10);
		else if (hex && p[i] >= 'A' && p[i] <= 'F')
			v = v * 16 + (uint32_t)(p[i] - 'A' + 10);
		else
			return false;
		if (v > 0x10ffff)
			return false;
	}
	return true;
}

/* Encode c (an XML character) in UTF-8 at out; return its length. */
static size_t
utf8_put(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/*
 * Check the character or reference at sc->i that stopped a run (its byte
 * has stop set): a reference, or a UTF-8 character. Step over it; return
 * false for anything else.
 */
static bool
scan_special(struct scan *sc)
{
	const char	*p = sc->p + sc->i;
	size_t		 n = sc->n - sc->i, len;
	uint32_t	 c;

	if (p[0] == '&') {
		if ((len = reference(p, n, &c)) == 0 && reference_is_cut(p, n))
			sc->cut = true;
	} else if ((unsigned char)p[0] >= 0x80) {
		len = utf8_char((const unsigned char *)p, n);
		if (len == 0 && utf8_is_cut((const unsigned char *)p, n))
			sc->cut = true;
	} else
		len = 0;
	sc->i += len;
	return len > 0;
}

/* Names and values. */

/* Scan an ASCII NCName at sc->i into *s. */
static bool
scan_ncname(struct scan *sc, struct span *s)
{
	size_t	start = sc->i;

	if (at_end(sc, sc->i) ||
	    (name_char[(unsigned char)sc->p[sc->i]] & 1) == 0)
		return false;
	while (++sc->i < sc->n && name_char[(unsigned char)sc->p[sc->i]] != 0)
		;
	s->s = sc->p + start;
	s->len = sc->i - start;
	return true;
}

/* Scan a qualified name, prefix:local or local. */
static bool
scan_qname(struct scan *sc, struct qname *q)
{
	size_t	start = sc->i;

	if (!scan_ncname(sc, &q->local))
		return false;
	q->prefix.s = sc->p + start;
	q->prefix.len = 0;
	if (sc->i < sc->n && sc->p[sc->i] == ':') {
		q->prefix = q->local;
		sc->i++;
		if (!scan_ncname(sc, &q->local))
			return false;
	}
	q->all.s = sc->p + start;
	q->all.len = sc->i - start;
	return true;
}

/*
 * Scan a quoted attribute value at sc->i into *v (without the quotes);
 * *has_ref tells whether it holds a reference.
 */
static bool
scan_value(struct scan *sc, struct span *v, bool *has_ref)
{
	char	q;
	size_t	start;

	if (at_end(sc, sc->i) ||
	    (sc->p[sc->i] != '\'' && sc->p[sc->i] != '"'))
		return false;
	q = sc->p[sc->i++];
	start = sc->i;
	*has_ref = false;
	for (;;) {
		while (sc->i < sc->n && !value_stop[(unsigned char)sc->p[sc->i]])
			sc->i++;
		if (at_end(sc, sc->i))
			return false;
		if (sc->p[sc->i] == q)
			break;
		if (sc->p[sc->i] == '\'' || sc->p[sc->i] == '"') {
			sc->i++;	/* the other quote */
			continue;
		}
		if (sc->p[sc->i] == '&')
			*has_ref = true;
		if (!scan_special(sc))
			return false;
	}
	v->s = sc->p + start;
	v->len = sc->i - start;
	sc->i++;
	return true;
}

/* Step over white space; return whether there was any. */
static bool
scan_space(struct scan *sc)
{
	size_t	start = sc->i;

	while (sc->i < sc->n && is_space(sc->p[sc->i]))
		sc->i++;
	return sc->i > start;
}

/* Namespaces. */

/* Whether prefix is declared on an open element (or is xml, if xml_ok). */
static bool
prefix_is_bound(const struct scan *sc, struct span prefix)
{
	unsigned	k;

	for (k = 0; k < sc->ndecls; k++)
		if (span_eq(sc->decls[k].prefix, prefix))
			return true;
	return false;
}

/*
 * A namespace declaration on a child's start tag: xmlns='uri' or
 * xmlns:prefix='uri'. Record a prefix; refuse what expat refuses or
 * might (reserved prefixes and names, an empty prefixed URI, a space,
 * references).
 */
static bool
scan_decl(struct scan *sc, const struct qname *q, struct span v, bool has_ref)
{
	/* expat refuses a URI holding its namespace separator (a space) */
	if (has_ref || span_is(v, NS_XML) || span_is(v, NS_XMLNS) ||
	    memchr(v.s, ' ', v.len) != NULL)
		return false;
	if (q->prefix.len == 0)
		return true;		/* the default namespace */
	if (v.len == 0 || span_is(q->local, "xml") ||
	    span_is(q->local, "xmlns") || sc->ndecls == MAX_DECLS)
		return false;
	sc->decls[sc->ndecls].prefix = q->local;
	sc->decls[sc->ndecls].depth = sc->depth;
	sc->ndecls++;
	return true;
}

/* Whether a, an attribute name, could be the same attribute as one of
 * seen[0..n): the same name, or the same local name under two prefixes. */
static bool
attr_clashes(const struct qname *seen, size_t n, const struct qname *a)
{
	size_t	k;

	for (k = 0; k < n; k++) {
		if (span_eq(seen[k].all, a->all))
			return true;
		if (seen[k].prefix.len > 0 && a->prefix.len > 0 &&
		    span_eq(seen[k].local, a->local))
			return true;
	}
	return false;
}

/* Tags. */

/*
 * Scan a start tag from its '<' at sc->i; the element becomes open unless
 * empty. For the top-level element (top), store its name and attributes
 * in *out.
 */
static bool
scan_start_tag(struct scan *sc, bool top, struct xmlscan_element *out,
    bool *empty)
{
	struct qname	 name, attrs[MAX_TAG_ATTRS], *a;
	struct span	 v;
	size_t		 n = 0, k;
	bool		 has_ref, space;

	sc->i++;
	if (!scan_qname(sc, &name) || at_end(sc, sc->i) ||
	    sc->depth >= sc->max_depth)
		return false;
	if (top && name.prefix.len > 0)
		return false;
	sc->depth++;
	for (;;) {
		space = scan_space(sc);
		if (at_end(sc, sc->i))
			return false;
		if (sc->p[sc->i] == '>' || sc->p[sc->i] == '/')
			break;
		if (!space || n == MAX_TAG_ATTRS || n >= sc->limits->attributes)
			return false;
		a = &attrs[n];
		if (!scan_qname(sc, a) || at_end(sc, sc->i) ||
		    attr_clashes(attrs, n, a))
			return false;
		scan_space(sc);
		if (at_end(sc, sc->i) || sc->p[sc->i] != '=')
			return false;
		sc->i++;
		scan_space(sc);
		if (!scan_value(sc, &v, &has_ref))
			return false;
		n++;
		if (span_is(a->all, "xmlns") || span_is(a->prefix, "xmlns")) {
			if (top || !scan_decl(sc, a, v, has_ref))
				return false;
			continue;
		}
		if (top) {
			if (a->prefix.len > 0 && !span_is(a->all, "xml:lang"))
				return false;
			out->attrs[out->nattrs].name = a->all.s;
			out->attrs[out->nattrs].namelen = a->all.len;
			out->attrs[out->nattrs].value = v.s;
			out->attrs[out->nattrs].valuelen = v.len;
			out->attrs[out->nattrs].has_ref = has_ref;
			out->nattrs++;
		}
	}
	if (sc->p[sc->i] == '/') {
		if (at_end(sc, ++sc->i) || sc->p[sc->i] != '>')
			return false;
		*empty = true;
	} else
		*empty = false;
	sc->i++;
	/* Prefixes resolve once every declaration of the tag is known. */
	if (name.prefix.len > 0 && !prefix_is_bound(sc, name.prefix))
		return false;
	for (k = 0; k < n; k++)
		if (attrs[k].prefix.len > 0 &&
		    !span_is(attrs[k].prefix, "xml") &&
		    !span_is(attrs[k].prefix, "xmlns") &&
		    !prefix_is_bound(sc, attrs[k].prefix))
			return false;
	if (top) {
		out->name = name.all.s;
		out->namelen = name.all.len;
	}
	sc->open[sc->depth - 1] = name.all;
	if (*empty)
		sc->depth--;
	while (sc->ndecls > 0 && sc->decls[sc->ndecls - 1].depth > sc->depth)
		sc->ndecls--;	/* an empty element's declarations */
	return true;
}

/* Scan an end tag from its "</" at sc->i; it must close the open element. */
static bool
scan_end_tag(struct scan *sc)
{
	struct qname	name;
	struct span	open = sc->open[sc->depth - 1];

	sc->i += 2;
	if (!scan_qname(sc, &name))
		return false;
	if (sc->i >= sc->n) {	/* cut within the name: a start of open's? */
		if (name.all.len <= open.len &&
		    memcmp(name.all.s, open.s, name.all.len) == 0)
			at_end(sc, sc->i);
		return false;
	}
	if (!span_eq(name.all, open))
		return false;
	scan_space(sc);
	if (at_end(sc, sc->i) || sc->p[sc->i] != '>')
		return false;
	sc->i++;
	sc->depth--;
	while (sc->ndecls > 0 && sc->decls[sc->ndecls - 1].depth > sc->depth)
		sc->ndecls--;
	return true;
}

/* Scan the content of the open elements up to the end of the first. */
static bool
scan_content(struct scan *sc)
{
	bool	empty;

	while (sc->depth > 0) {
		sc->i = text_run(sc->p, sc->i, sc->n);
		if (at_end(sc, sc->i))
			return false;
		switch (sc->p[sc->i]) {
		case '<':
			if (at_end(sc, sc->i + 1))
				return false;
			if (sc->p[sc->i + 1] == '/') {
				if (!scan_end_tag(sc))
					return false;
			} else if (!scan_start_tag(sc, false, NULL, &empty))
				return false;	/* '!', '?' included */
			break;
		case ']':
			if (sc->n - sc->i < 3 && memcmp(sc->p + sc->i, "]]>",
			    sc->n - sc->i) == 0) {
				sc->cut = true;	/* "]" or "]]" at the end */
				return false;
			}
			if (sc->n - sc->i >= 3 &&
			    memcmp(sc->p + sc->i, "]]>", 3) == 0)
				return false;
			sc->i++;
			break;
		default:
			if (!scan_special(sc))
				return false;
			break;
		}
	}
	return true;
}

/* A scan of n bytes failed: for want of bytes below the size limit, MORE. */
static enum xmlscan_result
xmlscan_stopped(const struct scan *sc, size_t n)
{
	if (!sc->cut || n >= sc->limits->size)
		return XMLSCAN_PUNT;
	return XMLSCAN_MORE;
}

enum xmlscan_result
xmlscan_element(const char *p, size_t n, const struct xmlscan_limits *limits,
    struct xmlscan_element *out)
{
	struct scan	sc;
	bool		empty;

	sc.p = p;
	sc.n = n < limits->size ? n : limits->size;
	sc.i = 0;
	sc.limits = limits;
	sc.max_depth = limits->depth < XMLSCAN_MAX_DEPTH ? limits->depth :
	    XMLSCAN_MAX_DEPTH;
	sc.depth = 0;
	sc.ndecls = 0;
	sc.cut = false;
	out->nattrs = 0;
	if (n == 0 || p[0] != '<')
		return XMLSCAN_PUNT;
	if (!scan_start_tag(&sc, true, out, &empty))
		return xmlscan_stopped(&sc, n);
	out->starttaglen = sc.i;
	if (!empty && !scan_content(&sc))
		return xmlscan_stopped(&sc, n);
	out->len = sc.i;
	return XMLSCAN_OK;
}

size_t
xmlscan_unescape(const char *v, size_t len, char *out)
{
	size_t		i = 0, o = 0, k;
	uint32_t	c;

	while (i < len) {
		if (v[i] != '&') {
			out[o++] = v[i++];
			continue;
		}
		if ((k = reference(v + i, len - i, &c)) == 0) {
			out[o++] = v[i++];	/* not from an accepted value */
			continue;
		}
		o += utf8_put(c, out + o);
		i += k;
	}
	out[o] = '\0';
	return o;
}
