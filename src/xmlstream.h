/*
 * xmlstream: the sans-I/O framer of one incoming XMPP server-to-server byte
 * stream, on expat. Bytes go in, events come out one at a time: the stream
 * header, each top-level element (stanza or stream-level element), the end of
 * the stream, or a stream error (RFC 6120 section 4.9). No sockets, no TLS, no
 * timers: the caller reads the bytes and acts on the events.
 *
 * Consumption: xmlstream_feed() stops after each event and says how many of
 * the bytes it was given it used, up to and including the event's last byte.
 * The bytes after that have not been parsed as far as the caller is
 * concerned: pass them again, first, in the next call, or call
 * xmlstream_reset() and hand them to whatever comes next (TLS after
 * <proceed/>, a new stream header after SASL success). Nothing after the
 * element that triggers a restart is swallowed.
 *
 * Memory: the header's data lives until xmlstream_reset() or
 * xmlstream_free(); an element's data, raw bytes included, until the next
 * xmlstream_feed(), xmlstream_reset() or xmlstream_free(). An element's
 * raw bytes are, as a rule, those of the buf it was returned from (no
 * copy is made): the caller keeps buf unchanged until it is done with the
 * element; only an element that began in an earlier feed is copied. All
 * strings are UTF-8 and NUL-terminated; attribute values and text are
 * unescaped.
 */
#ifndef FEDGATE_XMLSTREAM_H
#define FEDGATE_XMLSTREAM_H

#include <stdbool.h>
#include <stddef.h>

struct xmlstream;

/* Limits applied to every stream; a zero field takes the default. */
struct xmlstream_limits {
	size_t		 stanza_size;	/* bytes of one top-level element */
	size_t		 header_size;	/* bytes up to the end of the header */
	unsigned	 depth;		/* nesting in a top-level element (it is 1) */
	unsigned	 attributes;	/* attributes + xmlns declarations a tag */
};

#define XMLSTREAM_DEFAULT_STANZA_SIZE	(256 * 1024)
#define XMLSTREAM_DEFAULT_HEADER_SIZE	(8 * 1024)
#define XMLSTREAM_DEFAULT_DEPTH		32
#define XMLSTREAM_DEFAULT_ATTRIBUTES	64

/* What xmlstream_feed() found. */
enum xmlstream_event {
	XMLSTREAM_ERROR = -1,	/* a stream error: xmlstream_last_error() */
	XMLSTREAM_MORE = 0,	/* every byte used, no event: feed more */
	XMLSTREAM_HEADER,	/* the stream header: xmlstream_header() */
	XMLSTREAM_ELEMENT,	/* a top-level element: xmlstream_element() */
	XMLSTREAM_END		/* </stream:stream>; nothing more is parsed */
};

/* The RFC 6120 stream error conditions the framer detects. */
enum xmlstream_error {
	XMLSTREAM_ERR_NONE,
	XMLSTREAM_ERR_BAD_FORMAT,		/* wrong root name, text */
	XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX,	/* a prefix never declared */
	XMLSTREAM_ERR_INTERNAL_SERVER_ERROR,	/* misuse of this API */
	XMLSTREAM_ERR_INVALID_NAMESPACE,	/* stream or content ns */
	XMLSTREAM_ERR_NOT_WELL_FORMED,		/* expat's errors */
	XMLSTREAM_ERR_POLICY_VIOLATION,		/* a limit was exceeded */
	XMLSTREAM_ERR_RESOURCE_CONSTRAINT,	/* out of memory */
	XMLSTREAM_ERR_RESTRICTED_XML,		/* DTD, entity, comment, PI */
	XMLSTREAM_ERR_UNSUPPORTED_ENCODING	/* not UTF-8 */
};

/* One attribute. Unqualified attributes have ns "" and prefix NULL. */
struct xmlstream_attr {
	const char	*ns;		/* namespace URI, or "" */
	const char	*name;		/* local name */
	const char	*prefix;	/* prefix as written, or NULL */
	const char	*value;		/* unescaped value */
};

/* One namespace declaration as written on a start tag. */
struct xmlstream_nsdecl {
	const char	*prefix;	/* NULL: the default namespace */
	const char	*uri;		/* "" when undeclaring the default */
};

/* An element: a top-level element, or a node of its tree. */
struct xmlstream_node {
	const char		*ns;	/* namespace URI, or "" */
	const char		*name;	/* local name */
	const char		*prefix; /* prefix as written, or NULL */
	struct xmlstream_attr	*attrs;
	size_t			 nattrs;
	const char		*text;	/* character data directly inside,
					   concatenated; "" if none */
	size_t			 textlen;
	struct xmlstream_node	*child;	/* first child element, or NULL */
	struct xmlstream_node	*next;	/* next sibling, or NULL */
};

/*
 * A top-level element. Elements in the jabber:server namespace (stanzas) get
 * no tree: node.child is NULL and node.text is "" whatever they hold; the
 * relay passes raw through. Every other element (stream features, STARTTLS,
 * SASL, dialback, stream errors) gets its tree, has_tree set.
 */
struct xmlstream_element {
	struct xmlstream_node	 node;	/* name, attributes, tree */
	bool			 has_tree;
	struct xmlstream_nsdecl	*nsdecls; /* declared on its start tag */
	size_t			 nnsdecls;
	const char		*raw;	/* the bytes as received, start tag
					   to end tag (not NUL-terminated) */
	size_t			 rawlen;
	size_t			 starttaglen; /* of raw, the start tag;
					   == rawlen for <empty/> */
};

/* The stream header, validated (see xmlstream_feed()). */
struct xmlstream_header {
	const char		*prefix; /* the stream element's, or NULL */
	const char		*to;	/* NULL when absent */
	const char		*from;
	const char		*id;
	const char		*version; /* as written; NULL: pre-1.0 peer */
	const char		*lang;	/* xml:lang */
	struct xmlstream_attr	*attrs;	/* all attributes */
	size_t			 nattrs;
	struct xmlstream_nsdecl	*nsdecls; /* all declared on the header */
	size_t			 nnsdecls;
	size_t			 len;	/* bytes from the stream start to the
					   end of the header's start tag */
};

/* A change to an unqualified attribute of a start tag being re-rendered. */
struct xmlstream_rewrite {
	const char	*name;		/* "to", "from"... */
	const char	*value;		/* unescaped; NULL: remove the attribute */
};

/*
 * Return a framer for one stream with limits (NULL: the defaults), or NULL
 * if out of memory. The caller owns it; free it with xmlstream_free().
 */
struct xmlstream *xmlstream_new(const struct xmlstream_limits *limits);
/*
 * Lower the stanza size limit of xs to size (bytes), e.g. once the peer's
 * rule is known; it applies from the next element. Return 0, or -1 if size
 * is 0 or above the limit xs was created with (which stays).
 */
int	xmlstream_set_stanza_size(struct xmlstream *xs, size_t size);
/*
 * Let xmlscan (the fast path, xmlscan.h) frame the plain stanzas of xs, or
 * not: expat then parses every byte. On by default; the events are the
 * same either way (tests/fuzz/fuzz_xmlscan.c checks it).
 */
void	xmlstream_set_fast_path(struct xmlstream *xs, bool on);
/* Free xs and everything it handed out. NULL is a no-op. */
void	xmlstream_free(struct xmlstream *xs);
/*
 * Give back what an idle stream does not need: when no byte of an
 * unfinished element is held, the raw buffer, the element arena and the
 * text buffer (they are made again by the next element). Call between
 * feeds, once done with the last event's data: the element the last feed
 * returned is forgotten (xmlstream_element() returns NULL). The header
 * stays. Cheap when there is nothing to give back.
 */
void	xmlstream_shrink(struct xmlstream *xs);
/*
 * Also give back the XML parser (expat's state and buffers, about 9 KB) of
 * an idle stream, as xmlstream_shrink() does its buffers: a new one is
 * made when the next bytes come, primed with a copy of the stream header,
 * and the stream goes on as if nothing happened. That costs a parser's
 * creation: call it for a stream quiet for a while, not after every read.
 * No effect before the header, after the end or an error, or while bytes
 * of an element are held.
 */
void	xmlstream_release(struct xmlstream *xs);
/*
 * Start a new stream on xs, as after STARTTLS or SASL success: forget the
 * header, the bytes not used yet and any error; offsets start again at 0.
 * Never call it from anywhere but between feeds. Return 0, or -1 if out of
 * memory (xs then holds resource-constraint).
 */
int	xmlstream_reset(struct xmlstream *xs);
/*
 * Feed len bytes of the stream to xs. Parse until an event or until every
 * byte is used; store in *used how many bytes of buf were used (all of them
 * for XMLSTREAM_MORE, up to the event's last byte otherwise, 0 for an
 * error). buf must start with the bytes the previous call left unused, all
 * of them (else internal-server-error); buf may be NULL if len is 0.
 *
 * The stream must start with the header, optionally after an XML
 * declaration (encoding UTF-8 only, else unsupported-encoding) and
 * whitespace: namespace http://etherx.jabber.org/streams (else
 * invalid-namespace), local name "stream" (else bad-format), any prefix,
 * default namespace jabber:server (else invalid-namespace). Whitespace
 * between top-level elements (keepalives) is ignored; other text there is
 * bad-format. A DOCTYPE, comment, processing instruction or entity
 * reference other than the predefined ones is restricted-xml; what expat
 * refuses is not-well-formed (an unbound prefix, invalid UTF-8 included); a
 * limit exceeded is policy-violation. The error is the same however the
 * stream was split into calls.
 *
 * After XMLSTREAM_END, every call returns XMLSTREAM_END and uses nothing;
 * after an error, XMLSTREAM_ERROR, until xmlstream_reset().
 */
enum xmlstream_event xmlstream_feed(struct xmlstream *xs, const char *buf,
	    size_t len, size_t *used);
/* Return the stream header once XMLSTREAM_HEADER was returned, else NULL. */
const struct xmlstream_header *xmlstream_header(const struct xmlstream *xs);
/*
 * Return the element of the XMLSTREAM_ELEMENT the last feed returned, NULL
 * if it returned anything else. Valid until the next xmlstream_feed().
 */
const struct xmlstream_element *xmlstream_element(const struct xmlstream *xs);
/* Return the stream error held by xs, XMLSTREAM_ERR_NONE if none. */
enum xmlstream_error xmlstream_last_error(const struct xmlstream *xs);
/* Return a detail of the stream error for logs ("" if none). */
const char *xmlstream_error_detail(const struct xmlstream *xs);
/* Return the RFC 6120 element name of err ("not-well-formed"), or NULL. */
const char *xmlstream_error_name(enum xmlstream_error err);

/*
 * Return the value of the attribute (ns, name) of attrs[0..n), NULL if
 * absent. ns NULL or "" means an unqualified attribute.
 */
const char *xmlstream_attr_find(const struct xmlstream_attr *attrs, size_t n,
	    const char *ns, const char *name);
/* Return the value of the unqualified attribute name of node, or NULL. */
const char *xmlstream_node_attr(const struct xmlstream_node *node,
	    const char *name);
/*
 * Return the first child element of node with namespace ns (NULL: any) and
 * local name name (NULL: any), or NULL.
 */
const struct xmlstream_node *xmlstream_node_child(
	    const struct xmlstream_node *node, const char *ns, const char *name);

/*
 * Render in buf (size bytes) the start tag of the element xs just returned,
 * as it must be re-emitted on another stream: its name as written; its own
 * namespace declarations; those of the stream header (but the default
 * namespace) that it does not redeclare and that scope[0..nscope), the
 * declarations of the output stream's header, does not already bind to the
 * same URI; its attributes, re-escaped, with rw[0..nrw) applied (a value
 * replaces the attribute or is added at the end, NULL removes it); ">" or,
 * for an empty element, "/>". Follow it with raw + starttaglen, rawlen -
 * starttaglen bytes, for the whole element. Like snprintf(), return the
 * length of the whole tag, NUL-terminate buf if size > 0 and truncate if
 * the return value >= size. Return 0 if xs has no element.
 */
size_t	xmlstream_render_start_tag(const struct xmlstream *xs,
	    const struct xmlstream_rewrite *rw, size_t nrw,
	    const struct xmlstream_nsdecl *scope, size_t nscope,
	    char *buf, size_t size);
/*
 * Escape s for an attribute value (between ' or ") or character data into
 * buf: & < > ' " and tab, LF, CR as references. Return and truncate like
 * snprintf().
 */
size_t	xmlstream_escape(char *buf, size_t size, const char *s);

#endif
