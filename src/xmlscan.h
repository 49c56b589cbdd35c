/*
 * xmlscan: the fast path of xmlstream. It scans one top-level element of
 * an XMPP stream that is a plain stanza, checks that it is well-formed as
 * expat would, and finds its span and its start tag's attributes, at a
 * fraction of expat's cost. Pure functions: no allocation, no state.
 *
 * It only says yes or "ask expat": any construct outside a common subset
 * (a comment, CDATA, a processing instruction, a name that is not ASCII, a
 * namespace prefix it cannot resolve itself, white space to normalise in
 * an attribute value, an element larger than a limit, one that does not
 * end in the bytes given...) returns XMLSCAN_PUNT, and expat, the oracle,
 * parses the element from its first byte. It never rejects anything
 * itself, so every stream error still comes from expat. Its claim, checked
 * by tests/fuzz/fuzz_xmlscan.c against expat on millions of inputs: for
 * every element it accepts, expat accepts the same bytes as one element
 * with the same span, name, attributes and values.
 *
 * The subset accepted: the element is unprefixed with no namespace
 * declaration of its own (so, on a stream whose content namespace is
 * jabber:server, a stanza), at most XMLSCAN_MAX_ATTRS attributes,
 * unprefixed or xml:lang; children of any ASCII names whose prefixes are
 * declared inside the element; text and attribute values of valid UTF-8
 * XML characters with the predefined entities and character references.
 */
#ifndef FEDGATE_XMLSCAN_H
#define FEDGATE_XMLSCAN_H

#include <stdbool.h>
#include <stddef.h>

#define XMLSCAN_MAX_ATTRS	16	/* of the top-level start tag */
#define XMLSCAN_MAX_DEPTH	32	/* nesting, the element itself 1 */

/* One attribute of the start tag, as written. */
struct xmlscan_attr {
	const char	*name;		/* "to", "xml:lang" */
	size_t		 namelen;
	const char	*value;		/* between the quotes, escaped */
	size_t		 valuelen;
	bool		 has_ref;	/* value holds '&': unescape it */
};

/* A top-level element accepted. Pointers are into the bytes scanned. */
struct xmlscan_element {
	const char		*name;
	size_t			 namelen;
	struct xmlscan_attr	 attrs[XMLSCAN_MAX_ATTRS];
	size_t			 nattrs;
	size_t			 starttaglen;	/* bytes of the start tag */
	size_t			 len;		/* bytes of the element */
};

/* The limits the element must respect, as xmlstream's. */
struct xmlscan_limits {
	size_t		 size;		/* bytes of the element */
	unsigned	 depth;		/* nesting, the element being 1 */
	unsigned	 attributes;	/* attributes + declarations a tag */
};

enum xmlscan_result {
	XMLSCAN_PUNT,			/* ask expat */
	XMLSCAN_MORE,			/* cut short: ask again with more */
	XMLSCAN_OK			/* *out is the element */
};

/*
 * Scan the element that starts at p[0] ('<') in p[0..n). Return XMLSCAN_OK
 * and fill *out if it is whole in p, in the subset and within limits;
 * XMLSCAN_MORE if all of p is a valid start of such an element, cut short
 * below the size limit (more bytes may make it whole, or not); else
 * XMLSCAN_PUNT. *out is undefined but for OK.
 */
enum xmlscan_result xmlscan_element(const char *p, size_t n,
	    const struct xmlscan_limits *limits, struct xmlscan_element *out);

/* Return how many bytes of p[0..n) are XML white space, from the start. */
size_t	xmlscan_space(const char *p, size_t n);

/*
 * Unescape the attribute value v[0..len) of an accepted element into out,
 * which has room for len + 1 bytes (a reference is never shorter than what
 * it stands for); NUL-terminate it and return its length.
 */
size_t	xmlscan_unescape(const char *v, size_t len, char *out);

#endif
