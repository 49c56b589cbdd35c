/*
 * xmlstream: the stream framer on expat. The contract is in xmlstream.h.
 *
 * Byte accounting. Offsets are absolute in the current stream, as expat's
 * XML_GetCurrentByteIndex() counts them from xmlstream_new() or
 * xmlstream_reset():
 *   pos   end of the bytes reported used to the caller; a feed's buf starts
 *         there (call_base);
 *   fed   end of the bytes given to expat or taken by the fast path. The
 *         fed - pos "held" bytes were parsed but reported unused: the
 *         caller passes them again, we skip them. After a feed that used
 *         its whole buf, fed < pos when the fast path keeps an element cut
 *         short in carry, [fed, pos), to scan it again with the next bytes;
 *   done  the bytes before it are needed no more: the end of the header, of
 *         the last top-level element or of stream-level whitespace, or the
 *         start of the open top-level element.
 *
 * No copy. An element's raw span points into the caller's buf whenever the
 * element starts in it, which is the rule: only the bytes of a header or
 * element still open when a feed uses up its buf (XMLSTREAM_MORE) are
 * copied, into carry, which then holds [carry_base, carry_base +
 * carry_len) = [done, fed); the rest of such an element is appended when
 * it ends, and its span points into carry.
 *
 * Events. expat is fed whole buffers: a stanza that ends is queued (its
 * data in the element arena, its span as offsets) and expat goes on. The
 * handler that completes any other event (the header, an element with a
 * tree, the end), or a stanza when the queue is long or its arena large,
 * calls XML_StopParser(p, XML_TRUE): expat returns XML_STATUS_SUSPENDED at
 * the end of that token, so nothing after an element that may restart the
 * stream (<proceed/>, SASL <success/>) is parsed. Each feed returns the
 * queue's first event; a feed parses only when the queue is empty, and
 * resumes a suspended parser first. An error found after queued events is
 * returned after them, as it would be had the bytes come one by one.
 *
 * Limits. expat is given at most limit - (fed - done) bytes at a time, and
 * never more than the stanza size, the limit being the header size before
 * the header and the stanza size after it. A header or top-level element
 * still open when no room is left is a policy-violation, so neither expat's
 * buffer nor carry holds more than one limit of unfinished bytes, and expat
 * never parses more than the stanza size of one element: the error found is
 * the same however the input was split. Decoded data (names, attributes,
 * trees) lives in arenas, themselves bounded; the element arena holds the
 * queued elements and the open one, and is reset when an element starts
 * with the queue empty.
 */
#include "fgconfig.h"

#include <expat.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmlscan.h"
#include "xmlstream.h"

#define NS_STREAMS	"http://etherx.jabber.org/streams"
#define NS_SERVER	"jabber:server"
#define NS_XML		"http://www.w3.org/XML/1998/namespace"
#define NS_SEP		' '
#define ARENA_CHUNK	4096		/* an element's arena */
#define HDR_ARENA_CHUNK	512		/* the header's: a few names */
#define CARRY_MIN	1024
#define AHEAD_MAX	64		/* stanzas queued at most */
#define AHEAD_ARENA	(32 * 1024)	/* while their data is below this */

/*
 * Expat 2.6.0 defers re-parsing a partial token until the buffer has grown a
 * lot, and distributions backported it (Debian's 2.5.0 has it): a stream
 * header or stanza arriving in pieces would then not be parsed until the
 * peer sends more, which it does not do while it waits for our answer. The
 * symbol is weak so that an expat without it still links.
 */
extern XML_Bool XML_SetReparseDeferralEnabled(XML_Parser, XML_Bool)
    __attribute__((weak));

/* A bump allocator: chunks freed together. */
struct arena_chunk {
	struct arena_chunk	*next;
	size_t			 size;
	size_t			 used;
	max_align_t		 data[];
};

struct arena {
	struct arena_chunk	*head;
	size_t			 chunk;		/* the size of a chunk */
	size_t			 total;		/* bytes in chunks */
	size_t			 limit;		/* at most this many */
	bool			 over;		/* an allocation hit limit */
};

enum xs_state {
	XS_PROLOG,		/* before the header */
	XS_OPEN,		/* after the header */
	XS_CLOSED,		/* after </stream:stream> */
	XS_FAILED		/* after a stream error */
};

/* An event found ahead and not returned yet. */
struct xs_queued {
	struct xs_queued	*next;
	enum xmlstream_event	 ev;
	uint64_t		 start;		/* ELEMENT: its first byte */
	uint64_t		 end;		/* after its last byte */
	struct xmlstream_element el;		/* ELEMENT: raw not set */
};

/* A node of the tree being built and its last child so far. */
struct xs_frame {
	struct xmlstream_node	*node;
	struct xmlstream_node	*last;
};

struct xmlstream {
	XML_Parser		 parser;
	struct xmlstream_limits	 limits;
	enum xs_state		 state;
	enum xmlstream_error	 error;
	char			 detail[128];

	uint64_t		 pos;		/* see the top of the file */
	uint64_t		 fed;
	uint64_t		 done;
	uint64_t		 el_start;	/* of the open top-level element */
	const char		*buf;		/* the feed's, at offset */
	size_t			 buflen;
	uint64_t		 call_base;	/* (pos when the feed began) */
	char			*carry;		/* see the top of the file */
	size_t			 carry_len;
	size_t			 carry_cap;
	uint64_t		 carry_base;

	struct xs_queued	*qhead;		/* events found ahead, in */
	struct xs_queued	*qtail;		/* the element arena */
	unsigned		 qlen;
	bool			 suspended;	/* expat stopped at an event */
	bool			 fast;		/* xmlscan may take stanzas */
	bool			 hold;		/* it waits for more bytes */
	uint64_t		 punt_at;	/* where it last left them */
	uint64_t		 cut_at;	/* where it found one cut short */
	uint64_t		 cut_end;	/* at this end of the bytes */
	bool			 bad_text;	/* text between elements */
	enum xmlstream_event	 last;		/* returned by the last feed */
	unsigned		 depth;		/* open elements, root included */

	struct xmlstream_nsdecl	*pend;		/* declarations for the next */
	unsigned		 npend;		/* start tag, kept for the */
	unsigned		 nseen;		/* header and top level only */

	struct arena		 hdr_arena;	/* the header's data */
	const char		*hdr_bytes;	/* the header as received, to
						   prime a new parser; NULL:
						   the parser is never given
						   back (xmlstream_release) */
	size_t			 hdr_len;
	uint64_t		 index_base;	/* offset of expat's index 0
						   after a re-priming */
	bool			 priming;	/* expat re-reads the header:
						   the handlers keep quiet */
	struct arena		 el_arena;	/* the element's data */
	bool			 has_header;
	struct xmlstream_header	 header;
	struct xmlstream_element cur;		/* being parsed */
	struct xmlstream_element element;	/* returned by the last feed */
	struct xs_frame		*stack;		/* [depth limit] tree frames */
	char			*text;		/* text not yet in a node */
	size_t			 textlen;
	size_t			 textcap;
};

static const char *const error_names[] = {
	[XMLSTREAM_ERR_NONE] = NULL,
	[XMLSTREAM_ERR_BAD_FORMAT] = "bad-format",
	[XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX] = "bad-namespace-prefix",
	[XMLSTREAM_ERR_INTERNAL_SERVER_ERROR] = "internal-server-error",
	[XMLSTREAM_ERR_INVALID_NAMESPACE] = "invalid-namespace",
	[XMLSTREAM_ERR_NOT_WELL_FORMED] = "not-well-formed",
	[XMLSTREAM_ERR_POLICY_VIOLATION] = "policy-violation",
	[XMLSTREAM_ERR_RESOURCE_CONSTRAINT] = "resource-constraint",
	[XMLSTREAM_ERR_RESTRICTED_XML] = "restricted-xml",
	[XMLSTREAM_ERR_UNSUPPORTED_ENCODING] = "unsupported-encoding",
};

/* Arena. */

static void *
arena_alloc(struct arena *a, size_t n)
{
	struct arena_chunk	*c = a->head;
	size_t			 size;
	void			*p;

	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (c == NULL || c->size - c->used < n) {
		size = n > a->chunk ? n : a->chunk;
		if (a->total + size > a->limit) {
			a->over = true;
			return NULL;
		}
		if ((c = malloc(sizeof(*c) + size)) == NULL)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
		a->total += size;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

static char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
	char	*p;

	if ((p = arena_alloc(a, len + 1)) == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Free every chunk but a first-sized one, which is kept for reuse. */
static void
arena_reset(struct arena *a)
{
	struct arena_chunk	*c, *next, *keep = NULL;

	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		if (keep == NULL && c->size == a->chunk) {
			keep = c;
			continue;
		}
		free(c);
	}
	if (keep != NULL) {
		keep->next = NULL;
		keep->used = 0;
	}
	a->head = keep;
	a->total = keep != NULL ? keep->size : 0;
	a->over = false;
}

static void
arena_free(struct arena *a)
{
	arena_reset(a);
	free(a->head);
	a->head = NULL;
	a->total = 0;
}

/* Errors. */

/*
 * Hold the stream error err (the first one wins) and stop expat for good if
 * it is parsing. Return -1.
 */
static int __attribute__((format(printf, 3, 4)))
xs_fail(struct xmlstream *xs, enum xmlstream_error err, const char *fmt, ...)
{
	va_list	ap;

	if (xs->error != XMLSTREAM_ERR_NONE)
		return -1;
	xs->error = err;
	xs->state = XS_FAILED;
	va_start(ap, fmt);
	vsnprintf(xs->detail, sizeof(xs->detail), fmt, ap);
	va_end(ap);
	if (xs->parser != NULL)
		XML_StopParser(xs->parser, XML_FALSE);
	return -1;
}

/* Fail after an arena allocation failed: its limit, or malloc. */
static int
xs_fail_alloc(struct xmlstream *xs, const struct arena *a)
{
	if (a->over)
		return xs_fail(xs, XMLSTREAM_ERR_POLICY_VIOLATION,
		    "element decodes to more than %zu bytes", a->limit);
	return xs_fail(xs, XMLSTREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
}

/* The limit on unfinished bytes: the header's, then a top-level element's. */
static size_t
xs_limit(const struct xmlstream *xs)
{
	if (xs->state == XS_PROLOG)
		return xs->limits.header_size;
	return xs->limits.stanza_size;
}

static int
xs_fail_size(struct xmlstream *xs)
{
	return xs_fail(xs, XMLSTREAM_ERR_POLICY_VIOLATION, "%s exceeds %zu bytes",
	    xs->state == XS_PROLOG ? "stream header" : "element", xs_limit(xs));
}

/* Hold the stream error for the error expat reported. */
static void
xs_fail_expat(struct xmlstream *xs)
{
	enum XML_Error		 code = XML_GetErrorCode(xs->parser);
	enum xmlstream_error	 err;
	XML_Index		 at;

	switch (code) {
	case XML_ERROR_NO_MEMORY:
		err = XMLSTREAM_ERR_RESOURCE_CONSTRAINT;
		break;
	case XML_ERROR_UNDEFINED_ENTITY:
	case XML_ERROR_RECURSIVE_ENTITY_REF:
	case XML_ERROR_BINARY_ENTITY_REF:
	case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
	case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
	case XML_ERROR_PARAM_ENTITY_REF:
		err = XMLSTREAM_ERR_RESTRICTED_XML;	/* RFC 6120 11.1 */
		break;
	case XML_ERROR_UNBOUND_PREFIX:		/* RFC 6120 4.9.3.2 */
		err = XMLSTREAM_ERR_BAD_NAMESPACE_PREFIX;
		break;
	case XML_ERROR_UNKNOWN_ENCODING:
	case XML_ERROR_INCORRECT_ENCODING:
		err = XMLSTREAM_ERR_UNSUPPORTED_ENCODING;
		break;
	default:
		err = XMLSTREAM_ERR_NOT_WELL_FORMED;
		break;
	}
	at = XML_GetCurrentByteIndex(xs->parser);
	xs_fail(xs, err, "at byte %llu: %s", (unsigned long long)(at < 0 ?
	    xs->fed : xs->index_base + (uint64_t)at), XML_ErrorString(code));
}

/* The stream's bytes: the feed's buf, and carry before it. */

/* Append buf's bytes [from, to) (offsets) to carry, growing it. */
static int
xs_carry_append(struct xmlstream *xs, uint64_t from, uint64_t to)
{
	size_t	 n = (size_t)(to - from), cap;
	char	*c;

	if (xs->carry_len + n > xs->carry_cap) {
		cap = xs->carry_cap > CARRY_MIN ? xs->carry_cap : CARRY_MIN;
		while (cap < xs->carry_len + n)
			cap *= 2;
		if ((c = realloc(xs->carry, cap)) == NULL)
			return xs_fail(xs, XMLSTREAM_ERR_RESOURCE_CONSTRAINT,
			    "out of memory");
		xs->carry = c;
		xs->carry_cap = cap;
	}
	memcpy(xs->carry + xs->carry_len, xs->buf + (from - xs->call_base), n);
	xs->carry_len += n;
	return 0;
}

/*
 * Return the stream's bytes [start, end) contiguous, during a feed: in buf
 * if they start there, else in carry, which must hold start and is
 * completed from buf up to end (an element that began in an earlier feed).
 * NULL: out of memory, or the bytes are gone (an internal error), held.
 */
static const char *
xs_span(struct xmlstream *xs, uint64_t start, uint64_t end)
{
	uint64_t	cend = xs->carry_base + xs->carry_len;

	if (start >= xs->call_base)
		return xs->buf + (start - xs->call_base);
	if (start < xs->carry_base || cend < xs->call_base) {
		xs_fail(xs, XMLSTREAM_ERR_INTERNAL_SERVER_ERROR,
		    "the bytes of an unfinished element were lost");
		return NULL;
	}
	if (end > cend && xs_carry_append(xs, cend, end) == -1)
		return NULL;
	return xs->carry + (start - xs->carry_base);
}

/* The byte at off, which must be in buf or carry. */
static char
xs_byte(const struct xmlstream *xs, uint64_t off)
{
	if (off >= xs->call_base)
		return xs->buf[off - xs->call_base];
	return xs->carry[off - xs->carry_base];
}

/*
 * Before a feed reports every byte used: keep in carry the bytes of the
 * header or element still open, [done, end of buf), which holds those
 * expat has and those the fast path waits with; drop the rest.
 */
static int
xs_carry_keep(struct xmlstream *xs)
{
	uint64_t	cend = xs->carry_base + xs->carry_len, from;
	uint64_t	end = xs->call_base + xs->buflen;
	size_t		dead;

	if (xs->done >= xs->call_base || xs->done < xs->carry_base ||
	    cend < xs->call_base) {
		xs->carry_len = 0;
		xs->carry_base = xs->done;
		from = xs->done;
	} else {
		dead = (size_t)(xs->done - xs->carry_base);
		memmove(xs->carry, xs->carry + dead, xs->carry_len - dead);
		xs->carry_len -= dead;
		xs->carry_base = xs->done;
		from = cend;
	}
	if (from >= end)
		return 0;
	return xs_carry_append(xs, from, end);
}

/* Decoding expat's data into an arena. */

/* Offset just past the token of the current handler. */
/* The stream offset of the current token (expat counts from its own
 * start, which a re-primed parser moved). */
static uint64_t
xs_index(const struct xmlstream *xs)
{
	return xs->index_base + (uint64_t)XML_GetCurrentByteIndex(xs->parser);
}

static uint64_t
xs_event_end(const struct xmlstream *xs)
{
	return xs_index(xs) + (uint64_t)XML_GetCurrentByteCount(xs->parser);
}

/* Split an expat triplet "uri local prefix" ("local", "uri local"). */
static int
xs_split_name(struct arena *a, const char *triplet, const char **ns,
    const char **name, const char **prefix)
{
	char	*s, *sep;

	if ((s = arena_strndup(a, triplet, strlen(triplet))) == NULL)
		return -1;
	*ns = "";
	*prefix = NULL;
	if ((sep = strchr(s, NS_SEP)) == NULL) {
		*name = s;
		return 0;
	}
	*sep++ = '\0';
	*ns = s;
	*name = sep;
	if ((sep = strchr(sep, NS_SEP)) != NULL) {
		*sep++ = '\0';
		*prefix = sep;
	}
	return 0;
}

/* Copy expat's n attributes atts (name, value pairs) into *out. */
static int
xs_copy_attrs(struct arena *a, const XML_Char **atts, size_t n,
    struct xmlstream_attr **out)
{
	struct xmlstream_attr	*attrs;
	size_t			 i;

	*out = NULL;
	if (n == 0)
		return 0;
	if ((attrs = arena_alloc(a, n * sizeof(*attrs))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (xs_split_name(a, atts[2 * i], &attrs[i].ns, &attrs[i].name,
		    &attrs[i].prefix) == -1)
			return -1;
		if ((attrs[i].value = arena_strndup(a, atts[2 * i + 1],
		    strlen(atts[2 * i + 1]))) == NULL)
			return -1;
	}
	*out = attrs;
	return 0;
}

/* Move the pending namespace declarations into *out. */
static int
xs_take_nsdecls(struct xmlstream *xs, struct arena *a,
    struct xmlstream_nsdecl **out, size_t *n)
{
	*out = NULL;
	*n = xs->npend;
	if (xs->npend == 0)
		return 0;
	if ((*out = arena_alloc(a, xs->npend * sizeof(**out))) == NULL)
		return -1;
	memcpy(*out, xs->pend, xs->npend * sizeof(**out));
	xs->npend = 0;
	return 0;
}

/* Append the pending text to node's. */
static int
xs_flush_text(struct xmlstream *xs, struct xmlstream_node *node)
{
	char	*s;

	if (xs->textlen == 0)
		return 0;
	if ((s = arena_alloc(&xs->el_arena, node->textlen + xs->textlen + 1))
	    == NULL)
		return xs_fail_alloc(xs, &xs->el_arena);
	memcpy(s, node->text, node->textlen);
	memcpy(s + node->textlen, xs->text, xs->textlen);
	node->textlen += xs->textlen;
	s[node->textlen] = '\0';
	node->text = s;
	xs->textlen = 0;
	return 0;
}

/* Fill node from expat's element name and attributes. */
static int
xs_fill_node(struct xmlstream *xs, struct arena *a, struct xmlstream_node *node,
    const XML_Char *name, const XML_Char **atts, size_t nattrs)
{
	memset(node, 0, sizeof(*node));
	node->text = "";
	node->nattrs = nattrs;
	if (xs_split_name(a, name, &node->ns, &node->name, &node->prefix) == -1 ||
	    xs_copy_attrs(a, atts, nattrs, &node->attrs) == -1)
		return xs_fail_alloc(xs, a);
	return 0;
}

/*
 * Queue the event ev ending at end (an element's, from start); the data
 * of an element is xs->cur's. Return 0, or -1 (a stream error).
 */
static int
xs_queue(struct xmlstream *xs, enum xmlstream_event ev, uint64_t start,
    uint64_t end)
{
	struct xs_queued	*q;

	if ((q = arena_alloc(&xs->el_arena, sizeof(*q))) == NULL)
		return xs_fail_alloc(xs, &xs->el_arena);
	q->next = NULL;
	q->ev = ev;
	q->start = start;
	q->end = end;
	if (ev == XMLSTREAM_ELEMENT)
		q->el = xs->cur;
	if (xs->qtail != NULL)
		xs->qtail->next = q;
	else
		xs->qhead = q;
	xs->qtail = q;
	xs->qlen++;
	xs->done = end;
	return 0;
}

/* Whether the queue is as long as parsing ahead may make it. */
static bool
xs_queue_is_full(const struct xmlstream *xs)
{
	return xs->qlen >= AHEAD_MAX || xs->el_arena.total >= AHEAD_ARENA;
}

/* Queue an event from an expat handler, and pause expat after the current
 * token unless ev is a stanza that may be queued behind others. */
static void
xs_emit(struct xmlstream *xs, enum xmlstream_event ev, uint64_t start,
    uint64_t end)
{
	if (xs_queue(xs, ev, start, end) == -1)
		return;
	if (ev != XMLSTREAM_ELEMENT || xs->cur.has_tree || xs_queue_is_full(xs))
		XML_StopParser(xs->parser, XML_TRUE);
}

/*
 * A top-level start tag begins (its first namespace declaration or the
 * tag itself): with nothing queued, the arena's data is all dead.
 */
static void
xs_element_begin(struct xmlstream *xs)
{
	if (xs->qhead == NULL)
		arena_reset(&xs->el_arena);
}

/* Text between top-level elements. */

/*
 * Fail with bad-format if text was seen between top-level elements: at the
 * next markup after it, not at once, because expat reports a run of text
 * that holds "]]>" as not-well-formed when it has it whole but as text first
 * when it arrives in pieces.
 */
static int
xs_check_text(struct xmlstream *xs)
{
	if (!xs->bad_text)
		return 0;
	return xs_fail(xs, XMLSTREAM_ERR_BAD_FORMAT,
	    "text between top-level elements");
}

static bool
xs_is_space_char(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Whether s[0..n) is XML whitespace only. */
static bool
xs_is_space(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (!xs_is_space_char(s[i]))
			return false;
	return true;
}

/*
 * Text between top-level elements: whitespace (keepalives) is dropped, other
 * text fails at the next markup. From its first byte that is not whitespace,
 * found in the bytes however expat split the run, it counts against the
 * limit.
 */
static void
xs_stream_text(struct xmlstream *xs, const char *s, size_t n)
{
	uint64_t	off;

	if (xs->bad_text)
		return;
	if (xs_is_space(s, n)) {
		xs->done = xs_event_end(xs);
		return;
	}
	xs->bad_text = true;
	off = xs_index(xs);
	while (off < xs->fed && xs_is_space_char(xs_byte(xs, off)))
		off++;
	xs->done = off;
}

/* Start handlers, by depth. */

static void
xs_start_header(struct xmlstream *xs, const XML_Char *name,
    const XML_Char **atts, size_t nattrs)
{
	struct xmlstream_header	*h = &xs->header;
	struct xmlstream_node	 node;
	const char		*content = NULL, *bytes;
	size_t			 i;

	if (xs_fill_node(xs, &xs->hdr_arena, &node, name, atts, nattrs) == -1)
		return;
	memset(h, 0, sizeof(*h));
	if (xs_take_nsdecls(xs, &xs->hdr_arena, &h->nsdecls, &h->nnsdecls) == -1) {
		xs_fail_alloc(xs, &xs->hdr_arena);
		return;
	}
	if (strcmp(node.ns, NS_STREAMS) != 0) {
		xs_fail(xs, XMLSTREAM_ERR_INVALID_NAMESPACE,
		    "stream header not in the streams namespace");
		return;
	}
	if (strcmp(node.name, "stream") != 0) {
		xs_fail(xs, XMLSTREAM_ERR_BAD_FORMAT,
		    "root element is not a stream");
		return;
	}
	for (i = 0; i < h->nnsdecls; i++)
		if (h->nsdecls[i].prefix == NULL)
			content = h->nsdecls[i].uri;
	if (content == NULL || strcmp(content, NS_SERVER) != 0) {
		xs_fail(xs, XMLSTREAM_ERR_INVALID_NAMESPACE,
		    "content namespace is not " NS_SERVER);
		return;
	}
	h->prefix = node.prefix;
	h->attrs = node.attrs;
	h->nattrs = node.nattrs;
	h->to = xmlstream_attr_find(h->attrs, h->nattrs, NULL, "to");
	h->from = xmlstream_attr_find(h->attrs, h->nattrs, NULL, "from");
	h->id = xmlstream_attr_find(h->attrs, h->nattrs, NULL, "id");
	h->version = xmlstream_attr_find(h->attrs, h->nattrs, NULL, "version");
	h->lang = xmlstream_attr_find(h->attrs, h->nattrs, NS_XML, "lang");
	h->len = xs_event_end(xs);
	/* Kept to prime a new parser if this one is given back. */
	if (h->len <= INT_MAX && (bytes = xs_span(xs, 0, h->len)) != NULL)
		xs->hdr_bytes = arena_strndup(&xs->hdr_arena, bytes,
		    (size_t)h->len);
	xs->hdr_len = xs->hdr_bytes != NULL ? (size_t)h->len : 0;
	xs->has_header = true;
	xs->state = XS_OPEN;
	xs_emit(xs, XMLSTREAM_HEADER, 0, h->len);
}

static void
xs_start_top(struct xmlstream *xs, const XML_Char *name,
    const XML_Char **atts, size_t nattrs)
{
	struct xmlstream_element	*el = &xs->cur;

	memset(el, 0, sizeof(*el));
	xs->el_start = xs_index(xs);
	xs->done = xs->el_start;
	el->starttaglen = (size_t)XML_GetCurrentByteCount(xs->parser);
	if (xs_fill_node(xs, &xs->el_arena, &el->node, name, atts, nattrs) == -1)
		return;
	if (xs_take_nsdecls(xs, &xs->el_arena, &el->nsdecls,
	    &el->nnsdecls) == -1) {
		xs_fail_alloc(xs, &xs->el_arena);
		return;
	}
	el->has_tree = strcmp(el->node.ns, NS_SERVER) != 0;
	if (xs->stack == NULL &&	/* given back by xmlstream_shrink() */
	    (xs->stack = calloc(xs->limits.depth, sizeof(*xs->stack))) == NULL) {
		xs_fail(xs, XMLSTREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
		return;
	}
	xs->stack[0].node = &el->node;
	xs->stack[0].last = NULL;
	xs->textlen = 0;
}

/* A child at level (the top-level element is 1) of a tree being built. */
static void
xs_start_child(struct xmlstream *xs, unsigned level, const XML_Char *name,
    const XML_Char **atts, size_t nattrs)
{
	struct xs_frame		*parent = &xs->stack[level - 2];
	struct xmlstream_node	*node;

	if (xs_flush_text(xs, parent->node) == -1)
		return;
	if ((node = arena_alloc(&xs->el_arena, sizeof(*node))) == NULL) {
		xs_fail_alloc(xs, &xs->el_arena);
		return;
	}
	if (xs_fill_node(xs, &xs->el_arena, node, name, atts, nattrs) == -1)
		return;
	if (parent->last != NULL)
		parent->last->next = node;
	else
		parent->node->child = node;
	parent->last = node;
	xs->stack[level - 1].node = node;
	xs->stack[level - 1].last = NULL;
}

static void XMLCALL
xs_on_start(void *arg, const XML_Char *name, const XML_Char **atts)
{
	struct xmlstream	*xs = arg;
	size_t			 nattrs = 0;
	unsigned		 level = xs->depth;

	if (xs->priming)
		return;		/* the header again: nothing new */
	if (xs->error != XMLSTREAM_ERR_NONE || xs_check_text(xs) == -1)
		return;
	while (atts[2 * nattrs] != NULL)
		nattrs++;
	if (nattrs + xs->nseen > xs->limits.attributes) {
		xs_fail(xs, XMLSTREAM_ERR_POLICY_VIOLATION,
		    "element has more than %u attributes",
		    xs->limits.attributes);
		return;
	}
	if (level > xs->limits.depth) {
		xs_fail(xs, XMLSTREAM_ERR_POLICY_VIOLATION,
		    "elements nested deeper than %u", xs->limits.depth);
		return;
	}
	xs->depth++;
	if (level == 0)
		xs_start_header(xs, name, atts, nattrs);
	else if (level == 1) {
		if (xs->npend == 0)
			xs_element_begin(xs);
		xs_start_top(xs, name, atts, nattrs);
	}
	else if (xs->cur.has_tree)
		xs_start_child(xs, level, name, atts, nattrs);
	xs->nseen = xs->npend = 0;
}

/* End, text and namespace handlers. */

static void XMLCALL
xs_on_end(void *arg, const XML_Char *name)
{
	struct xmlstream		*xs = arg;
	struct xmlstream_element	*el = &xs->cur;
	uint64_t			 end;
	unsigned			 level;

	if (xs->error != XMLSTREAM_ERR_NONE)
		return;
	level = --xs->depth;
	end = xs_event_end(xs);
	if (level == 0) {
		if (xs_check_text(xs) == -1)
			return;
		xs->state = XS_CLOSED;
		xs_emit(xs, XMLSTREAM_END, end, end);
		return;
	}
	if (el->has_tree && xs_flush_text(xs, xs->stack[level - 1].node) == -1)
		return;
	if (level == 1) {
		if (end - xs->el_start > xs->limits.stanza_size) {
			xs_fail_size(xs);	/* a guard: xs_parse() */
			return;
		}
		/* An element begun in an earlier feed is completed in carry
		 * now, while the feed's buf holds the rest. */
		if (xs->el_start < xs->call_base &&
		    xs_span(xs, xs->el_start, end) == NULL)
			return;
		el->rawlen = (size_t)(end - xs->el_start);
		xs_emit(xs, XMLSTREAM_ELEMENT, xs->el_start, end);
	}
}

static void XMLCALL
xs_on_text(void *arg, const XML_Char *s, int len)
{
	struct xmlstream	*xs = arg;
	size_t			 n = (size_t)len, cap;
	char			*p;

	if (xs->error != XMLSTREAM_ERR_NONE)
		return;
	if (xs->depth == 1) {
		xs_stream_text(xs, s, n);
		return;
	}
	if (xs->depth < 2 || !xs->cur.has_tree)
		return;
	if (xs->textlen + n > xs->textcap) {
		cap = xs->textcap * 2 > xs->textlen + n ?
		    xs->textcap * 2 : xs->textlen + n;
		if ((p = realloc(xs->text, cap)) == NULL) {
			xs_fail(xs, XMLSTREAM_ERR_RESOURCE_CONSTRAINT,
			    "out of memory");
			return;
		}
		xs->text = p;
		xs->textcap = cap;
	}
	memcpy(xs->text + xs->textlen, s, n);
	xs->textlen += n;
}

static void XMLCALL
xs_on_nsdecl(void *arg, const XML_Char *prefix, const XML_Char *uri)
{
	struct xmlstream	*xs = arg;
	struct arena		*a;
	struct xmlstream_nsdecl	*d;

	if (xs->error != XMLSTREAM_ERR_NONE || xs->priming)
		return;
	if (++xs->nseen > xs->limits.attributes) {
		xs_fail(xs, XMLSTREAM_ERR_POLICY_VIOLATION,
		    "element has more than %u attributes",
		    xs->limits.attributes);
		return;
	}
	if (xs->depth > 1)
		return;		/* only the header and top level keep them */
	if (xs->depth == 1 && xs->npend == 0)
		xs_element_begin(xs);
	a = xs->depth == 0 ? &xs->hdr_arena : &xs->el_arena;
	if (xs->pend == NULL &&		/* given back by xmlstream_shrink() */
	    (xs->pend = calloc(xs->limits.attributes,
	    sizeof(*xs->pend))) == NULL) {
		xs_fail(xs, XMLSTREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
		return;
	}
	d = &xs->pend[xs->npend++];
	if (uri == NULL)
		uri = "";
	d->prefix = NULL;
	if ((prefix != NULL &&
	    (d->prefix = arena_strndup(a, prefix, strlen(prefix))) == NULL) ||
	    (d->uri = arena_strndup(a, uri, strlen(uri))) == NULL)
		xs_fail_alloc(xs, a);
}

/* Restricted XML (RFC 6120 11.1) and the XML declaration. */

static void XMLCALL
xs_on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal_subset)
{
	xs_fail(arg, XMLSTREAM_ERR_RESTRICTED_XML, "DOCTYPE declaration");
}

static void XMLCALL
xs_on_entity(void *arg, const XML_Char *name, int is_param,
    const XML_Char *value, int len, const XML_Char *base,
    const XML_Char *sysid, const XML_Char *pubid, const XML_Char *notation)
{
	xs_fail(arg, XMLSTREAM_ERR_RESTRICTED_XML, "entity declaration");
}

static void XMLCALL
xs_on_comment(void *arg, const XML_Char *data)
{
	if (xs_check_text(arg) == 0)
		xs_fail(arg, XMLSTREAM_ERR_RESTRICTED_XML, "comment");
}

static void XMLCALL
xs_on_pi(void *arg, const XML_Char *target, const XML_Char *data)
{
	if (xs_check_text(arg) == 0)
		xs_fail(arg, XMLSTREAM_ERR_RESTRICTED_XML,
		    "processing instruction");
}

static void XMLCALL
xs_on_xmldecl(void *arg, const XML_Char *version, const XML_Char *encoding,
    int standalone)
{
	if (encoding != NULL && strcasecmp(encoding, "UTF-8") != 0)
		xs_fail(arg, XMLSTREAM_ERR_UNSUPPORTED_ENCODING,
		    "XML declaration names an encoding other than UTF-8");
}

/*
 * The one place that configures expat, for a new parser and after each
 * XML_ParserReset() (which clears the handlers). The parser was created with
 * the encoding forced to UTF-8 and namespace processing; a handler ends the
 * stream with restricted-xml on anything RFC 6120 forbids: a DOCTYPE (so no
 * entity declaration, internal or external subset, or billion laughs, ever
 * reaches expat's expander), an entity declaration, a comment, a processing
 * instruction. No default handler is set: it would turn off the expansion of
 * the predefined entities. Undefined entity references fail in expat.
 */
static void
xs_harden(struct xmlstream *xs)
{
	XML_Parser	p = xs->parser;

	XML_SetUserData(p, xs);
	XML_SetReturnNSTriplet(p, XML_TRUE);
	XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
	XML_SetStartDoctypeDeclHandler(p, xs_on_doctype);
	XML_SetEntityDeclHandler(p, xs_on_entity);
	XML_SetCommentHandler(p, xs_on_comment);
	XML_SetProcessingInstructionHandler(p, xs_on_pi);
	XML_SetXmlDeclHandler(p, xs_on_xmldecl);
	XML_SetStartNamespaceDeclHandler(p, xs_on_nsdecl);
	XML_SetElementHandler(p, xs_on_start, xs_on_end);
	XML_SetCharacterDataHandler(p, xs_on_text);
	if (XML_SetReparseDeferralEnabled != NULL)
		XML_SetReparseDeferralEnabled(p, XML_FALSE);
}

/* Feeding. */

/* Set up for a new stream: xmlstream_new() and xmlstream_reset(). */
static void
xs_clear(struct xmlstream *xs)
{
	arena_reset(&xs->hdr_arena);
	arena_reset(&xs->el_arena);
	xs->state = XS_PROLOG;
	xs->error = XMLSTREAM_ERR_NONE;
	xs->detail[0] = '\0';
	xs->pos = xs->fed = xs->done = xs->el_start = xs->call_base = 0;
	xs->carry_base = xs->carry_len = 0;
	xs->punt_at = xs->cut_at = UINT64_MAX;
	xs->qhead = xs->qtail = NULL;
	xs->qlen = 0;
	xs->last = XMLSTREAM_MORE;
	xs->suspended = xs->bad_text = false;
	xs->depth = xs->npend = xs->nseen = 0;
	xs->has_header = false;
	xs->hdr_bytes = NULL;
	xs->hdr_len = 0;
	xs->index_base = 0;
	xs->priming = false;
	memset(&xs->header, 0, sizeof(xs->header));
	memset(&xs->cur, 0, sizeof(xs->cur));
	memset(&xs->element, 0, sizeof(xs->element));
	xs->textlen = 0;
}

/* Refuse UTF-16 and UTF-32 at the stream start: expat would switch to it. */
static int
xs_check_encoding(struct xmlstream *xs, const char *p, size_t n)
{
	size_t		i;
	unsigned char	c;

	for (i = 0; xs->fed + i < 2 && i < n; i++) {
		c = (unsigned char)p[i];
		if (c == 0x00 || c == 0xfe || c == 0xff)
			return xs_fail(xs, XMLSTREAM_ERR_UNSUPPORTED_ENCODING,
			    "stream is not UTF-8");
	}
	return 0;
}

/* Take in what expat returned: an error, or a pause at an event. */
static void
xs_status(struct xmlstream *xs, enum XML_Status st)
{
	if (xs->error != XMLSTREAM_ERR_NONE)
		return;
	if (st == XML_STATUS_ERROR)
		xs_fail_expat(xs);
	else if (st == XML_STATUS_SUSPENDED)
		xs->suspended = true;
}

/*
 * A new parser for a stream whose parser xmlstream_release() gave back:
 * it reads the saved header (the handlers keep quiet) and stands where
 * the old one stood, inside the stream, its namespaces declared; expat's
 * offsets are moved to the stream's. Return 0, or -1 (a stream error).
 */
static int
xs_prime(struct xmlstream *xs)
{
	enum XML_Status st;

	if ((xs->parser = XML_ParserCreateNS("UTF-8", NS_SEP)) == NULL)
		return xs_fail(xs, XMLSTREAM_ERR_RESOURCE_CONSTRAINT,
		    "out of memory");
	xs_harden(xs);
	xs->priming = true;
	st = XML_Parse(xs->parser, xs->hdr_bytes, (int)xs->hdr_len, XML_FALSE);
	xs->priming = false;
	if (st != XML_STATUS_OK)
		return xs_fail(xs, XMLSTREAM_ERR_INTERNAL_SERVER_ERROR,
		    "the stream header does not parse again");
	xs->index_base = xs->fed - xs->hdr_len;
	return 0;
}

/* Give expat the new bytes p[0..n), as many as the limit leaves room for. */
static void
xs_parse(struct xmlstream *xs, const char *p, size_t n)
{
	size_t		 limit = xs_limit(xs);
	size_t		 pending = (size_t)(xs->fed - xs->done);
	const char	*gt;

	if (pending >= limit) {
		xs_fail_size(xs);
		return;
	}
	if (n > limit - pending)
		n = limit - pending;
	/* What follows the header in this chunk must fit an element. */
	if (n > xs->limits.stanza_size)
		n = xs->limits.stanza_size;
	if (n > INT_MAX)
		n = INT_MAX;
	/*
	 * With the fast path on, expat is given the bytes up to the next '>'
	 * only: an element ends there, and what follows it goes back to the
	 * fast path instead of into expat's buffer.
	 */
	if (xs->fast && xs->state == XS_OPEN &&
	    (gt = memchr(p, '>', n)) != NULL)
		n = (size_t)(gt - p) + 1;
	if (xs->parser == NULL && xs_prime(xs) == -1)
		return;
	if (xs_check_encoding(xs, p, n) == -1)
		return;
	xs->fed += n;
	/*
	 * expat guesses the encoding from the first two bytes, or from one if
	 * that is all it has: hold a lone first byte back, so that it always
	 * has both and decides the same however the stream was split.
	 */
	if (xs->fed < 2)
		return;
	if (xs->fed - n < 2) {
		/* the held byte, then p's */
		if ((p = xs_span(xs, 0, xs->fed)) == NULL)
			return;
		n = (size_t)xs->fed;
	}
	xs_status(xs, XML_Parse(xs->parser, p, (int)n, XML_FALSE));
}

/* The fast path. */

/* Decode an attribute of a stanza xmlscan accepted into *a. */
static int
xs_fast_attr(struct xmlstream *xs, const struct xmlscan_attr *sa,
    struct xmlstream_attr *a)
{
	char	*v;

	a->ns = "";
	a->prefix = NULL;
	if (sa->namelen == 8 && memcmp(sa->name, "xml:lang", 8) == 0) {
		a->ns = NS_XML;
		a->prefix = "xml";
		a->name = "lang";
	} else if ((a->name = arena_strndup(&xs->el_arena, sa->name,
	    sa->namelen)) == NULL)
		return -1;
	if (!sa->has_ref) {
		a->value = arena_strndup(&xs->el_arena, sa->value, sa->valuelen);
		return a->value != NULL ? 0 : -1;
	}
	if ((v = arena_alloc(&xs->el_arena, sa->valuelen + 1)) == NULL)
		return -1;
	xmlscan_unescape(sa->value, sa->valuelen, v);
	a->value = v;
	return 0;
}

/* Queue the stanza e xmlscan accepted, from offset start, as expat's
 * handlers would have. Return 0, or -1 (a stream error). */
static int
xs_fast_element(struct xmlstream *xs, const struct xmlscan_element *e,
    uint64_t start)
{
	struct xmlstream_element	*el = &xs->cur;
	size_t				 i;

	xs_element_begin(xs);
	memset(el, 0, sizeof(*el));
	el->node.ns = NS_SERVER;
	el->node.text = "";
	if ((el->node.name = arena_strndup(&xs->el_arena, e->name,
	    e->namelen)) == NULL)
		return xs_fail_alloc(xs, &xs->el_arena);
	if (e->nattrs > 0 && (el->node.attrs = arena_alloc(&xs->el_arena,
	    e->nattrs * sizeof(*el->node.attrs))) == NULL)
		return xs_fail_alloc(xs, &xs->el_arena);
	for (i = 0; i < e->nattrs; i++)
		if (xs_fast_attr(xs, &e->attrs[i], &el->node.attrs[i]) == -1)
			return xs_fail_alloc(xs, &xs->el_arena);
	el->node.nattrs = e->nattrs;
	el->starttaglen = e->starttaglen;
	el->rawlen = e->len;
	return xs_queue(xs, XMLSTREAM_ELEMENT, start, start + e->len);
}

/* Whether expat stands between top-level elements with nothing pending. */
static bool
xs_fast_may(const struct xmlstream *xs)
{
	return xs->fast && xs->state == XS_OPEN && xs->depth == 1 &&
	    !xs->suspended && xs->done == xs->fed && !xs->bad_text &&
	    xs->npend == 0;
}

static void
xs_fast_limits(const struct xmlstream *xs, struct xmlscan_limits *l)
{
	l->size = xs->limits.stanza_size;
	l->depth = xs->limits.depth;
	l->attributes = xs->limits.attributes;
}

/* The fast path took n bytes after fed: expat is moved past them. */
static void
xs_fast_take(struct xmlstream *xs, size_t n)
{
	xs->fed += n;
	xs->done = xs->fed;
	xs->index_base += n;
}

/*
 * While expat stands between top-level elements with nothing of its own
 * pending, let xmlscan take the stanzas (and the white space between
 * them) at the start of the new bytes p[0..n): expat never sees them and
 * its offsets are moved past them. Stop at the first element xmlscan
 * leaves to expat, or finds cut short (then xs->hold: the feed keeps it
 * in carry for the next), or when the queue is full. Return the bytes
 * taken.
 */
static size_t
xs_fast(struct xmlstream *xs, const char *p, size_t n)
{
	struct xmlscan_limits	 l;
	struct xmlscan_element	 e;
	size_t			 off = 0;

	if (!xs_fast_may(xs) || xs->fed == xs->punt_at)
		return 0;
	xs_fast_limits(xs, &l);
	while (off < n && !xs_queue_is_full(xs)) {
		off += xmlscan_space(p + off, n - off);
		if (off == n)
			break;
		if (xs->fed + off == xs->cut_at && xs->fed + n == xs->cut_end) {
			xs->hold = true;	/* the same bytes again */
			goto out;
		}
		switch (xmlscan_element(p + off, n - off, &l, &e)) {
		case XMLSCAN_OK:
			break;
		case XMLSCAN_MORE:
			xs->hold = true;	/* cut short: keep it */
			xs->cut_at = xs->fed + off;
			xs->cut_end = xs->fed + n;
			goto out;
		default:
			xs->punt_at = xs->fed + off;	/* expat's */
			goto out;
		}
		if (xs_fast_element(xs, &e, xs->fed + off) == -1)
			break;
		off += e.len;
	}
 out:
	xs_fast_take(xs, off);
	return off;
}

/*
 * How many bytes of buf to add to the held element [fed, call_base) for
 * it to end, at a guess: up to its end tag's first occurrence in buf
 * (a nested element of the same name makes the scan ask for all of buf).
 */
static size_t
xs_held_end(const struct xmlstream *xs, size_t held)
{
	const char	*p = xs->carry + (xs->fed - xs->carry_base), *end;
	char		 tag[64];
	size_t		 i;

	tag[0] = '<';
	tag[1] = '/';
	for (i = 1; i < held && i < sizeof(tag) - 3 &&
	    ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z'));
	    i++)
		tag[i + 1] = p[i];
	if (i == 1 || i >= held || (p[i] != ' ' && p[i] != '>'))
		return xs->buflen;
	tag[i + 1] = '>';
	if ((end = memmem(xs->buf, xs->buflen, tag, i + 2)) == NULL)
		return xs->buflen;
	return (size_t)(end - xs->buf) + i + 2;
}

enum xs_held {
	XS_HELD_TAKEN,		/* queued */
	XS_HELD_WAIT,		/* still cut short: keep it all */
	XS_HELD_EXPAT		/* expat takes the held bytes */
};

/*
 * The element held in carry since an earlier feed, [fed, call_base), with
 * the feed's buf after it: scan it again once enough of buf is appended to
 * carry, if buf brings at least half as many bytes as are held (so a peer
 * sending a byte at a time costs a few scans, not one per byte).
 */
static enum xs_held
xs_fast_held(struct xmlstream *xs)
{
	struct xmlscan_limits	 l;
	struct xmlscan_element	 e;
	size_t			 held = (size_t)(xs->call_base - xs->fed), k;
	const char		*p;

	if (xs->buflen == 0)
		return XS_HELD_WAIT;
	if (xs->buflen < held / 2)
		return XS_HELD_EXPAT;
	xs_fast_limits(xs, &l);
	k = xs_held_end(xs, held);
	for (;;) {
		if (k > xs->buflen)
			k = xs->buflen;
		if ((p = xs_span(xs, xs->fed, xs->call_base + k)) == NULL)
			return XS_HELD_EXPAT;	/* failed: ends the feed */
		switch (xmlscan_element(p, held + k, &l, &e)) {
		case XMLSCAN_OK:
			if (xs_fast_element(xs, &e, xs->fed) == 0)
				xs_fast_take(xs, e.len);
			return XS_HELD_TAKEN;
		case XMLSCAN_MORE:
			if (k < xs->buflen) {
				k = xs->buflen;
				continue;
			}
			return XS_HELD_WAIT;
		default:
			return XS_HELD_EXPAT;
		}
	}
}

/*
 * The bytes [fed, call_base) the fast path held in carry: for it again, or
 * expat's (a piece of them, up to a '>').
 */
static void
xs_feed_held(struct xmlstream *xs)
{
	if (xs_fast_may(xs)) {
		switch (xs_fast_held(xs)) {
		case XS_HELD_TAKEN:
			return;
		case XS_HELD_WAIT:
			xs->hold = true;
			return;
		case XS_HELD_EXPAT:
			break;
		}
	}
	if (xs->state != XS_FAILED)
		xs_parse(xs, xs->carry + (xs->fed - xs->carry_base),
		    (size_t)(xs->call_base - xs->fed));
}

/* Drop the element handed out by the last feed (its data goes with the
 * arena's next reset). */
static void
xs_forget_element(struct xmlstream *xs)
{
	if (xs->last == XMLSTREAM_ELEMENT)
		memset(&xs->element, 0, sizeof(xs->element));
	xs->last = XMLSTREAM_MORE;
}

/* Return the first queued event, its bytes counted in *used. */
static enum xmlstream_event
xs_pop(struct xmlstream *xs, size_t *used)
{
	struct xs_queued	*q = xs->qhead;

	if ((xs->qhead = q->next) == NULL)
		xs->qtail = NULL;
	xs->qlen--;
	if (q->ev == XMLSTREAM_ELEMENT) {
		xs->element = q->el;
		xs->element.raw = q->start >= xs->call_base ?
		    xs->buf + (q->start - xs->call_base) :
		    xs->carry + (q->start - xs->carry_base);
	}
	xs->pos = q->end;
	*used = (size_t)(q->end - xs->call_base);
	xs->last = q->ev;
	return q->ev;
}

/* API. */

void
xmlstream_set_fast_path(struct xmlstream *xs, bool on)
{
	xs->fast = on;
}

int
xmlstream_set_stanza_size(struct xmlstream *xs, size_t size)
{
	if (size == 0 || size > xs->limits.stanza_size)
		return -1;
	xs->limits.stanza_size = size;
	return 0;
}

struct xmlstream *
xmlstream_new(const struct xmlstream_limits *limits)
{
	struct xmlstream	*xs;
	struct xmlstream_limits	*l;

	if ((xs = calloc(1, sizeof(*xs))) == NULL)
		return NULL;
	l = &xs->limits;
	if (limits != NULL)
		*l = *limits;
	if (l->stanza_size == 0)
		l->stanza_size = XMLSTREAM_DEFAULT_STANZA_SIZE;
	if (l->header_size == 0)
		l->header_size = XMLSTREAM_DEFAULT_HEADER_SIZE;
	if (l->depth == 0)
		l->depth = XMLSTREAM_DEFAULT_DEPTH;
	if (l->attributes == 0)
		l->attributes = XMLSTREAM_DEFAULT_ATTRIBUTES;
	xs->hdr_arena.chunk = HDR_ARENA_CHUNK;
	xs->hdr_arena.limit = l->header_size * 4 + 16 * ARENA_CHUNK;
	xs->el_arena.chunk = ARENA_CHUNK;
	xs->el_arena.limit = l->stanza_size * 2 + 16 * ARENA_CHUNK +
	    AHEAD_ARENA;
	xs->parser = XML_ParserCreateNS("UTF-8", NS_SEP);
	if (xs->parser == NULL) {
		xmlstream_free(xs);
		return NULL;
	}
	xs_harden(xs);
	xs_clear(xs);
	xs->fast = true;
	return xs;
}

void
xmlstream_shrink(struct xmlstream *xs)
{
	if (xs->done != xs->fed || xs->qhead != NULL || xs->fed < xs->pos)
		return;		/* an element is coming: its bytes stay */
	xs_forget_element(xs);
	arena_free(&xs->el_arena);
	free(xs->pend);		/* only a start tag being read uses them */
	xs->pend = NULL;
	xs->npend = 0;
	free(xs->stack);
	xs->stack = NULL;
	free(xs->carry);
	xs->carry = NULL;
	xs->carry_cap = xs->carry_len = 0;
	xs->carry_base = xs->fed;
	if (xs->textlen == 0) {
		free(xs->text);
		xs->text = NULL;
		xs->textcap = 0;
	}
}

void
xmlstream_release(struct xmlstream *xs)
{
	/* Paused at the end of its last event with every byte it was given
	 * parsed (done == fed), expat holds nothing a new one would miss. */
	if (xs->parser == NULL || xs->state != XS_OPEN || xs->qhead != NULL ||
	    xs->done != xs->fed || xs->fed < xs->pos || xs->hdr_bytes == NULL ||
	    xs->depth != 1)
		return;
	xmlstream_shrink(xs);
	XML_ParserFree(xs->parser);
	xs->parser = NULL;
	xs->suspended = false;
}

void
xmlstream_free(struct xmlstream *xs)
{
	if (xs == NULL)
		return;
	if (xs->parser != NULL)
		XML_ParserFree(xs->parser);
	arena_free(&xs->hdr_arena);
	arena_free(&xs->el_arena);
	free(xs->pend);
	free(xs->stack);
	free(xs->carry);
	free(xs->text);
	free(xs);
}

int
xmlstream_reset(struct xmlstream *xs)
{
	xs_clear(xs);
	if (xs->parser == NULL &&	/* given back by xmlstream_release() */
	    (xs->parser = XML_ParserCreateNS("UTF-8", NS_SEP)) == NULL)
		return xs_fail(xs, XMLSTREAM_ERR_RESOURCE_CONSTRAINT,
		    "cannot reset the XML parser");
	if (!XML_ParserReset(xs->parser, "UTF-8"))
		return xs_fail(xs, XMLSTREAM_ERR_RESOURCE_CONSTRAINT,
		    "cannot reset the XML parser");
	xs_harden(xs);
	return 0;
}

enum xmlstream_event
xmlstream_feed(struct xmlstream *xs, const char *buf, size_t len,
    size_t *used)
{
	*used = 0;
	xs_forget_element(xs);
	if (xs->qhead == NULL && xs->state == XS_FAILED)
		return XMLSTREAM_ERROR;
	if (xs->qhead == NULL && xs->state == XS_CLOSED)
		return XMLSTREAM_END;
	if (xs->fed > xs->pos && len < xs->fed - xs->pos) {
		xs_fail(xs, XMLSTREAM_ERR_INTERNAL_SERVER_ERROR,
		    "the %zu bytes left unused were not passed again",
		    (size_t)(xs->fed - xs->pos));
		return XMLSTREAM_ERROR;
	}
	xs->buf = buf;
	xs->buflen = len;
	xs->call_base = xs->pos;
	xs->hold = false;
	while (xs->qhead == NULL && xs->state != XS_FAILED && !xs->hold) {
		if (xs->suspended) {
			xs->suspended = false;
			xs_status(xs, XML_ResumeParser(xs->parser));
		} else if (xs->fed < xs->call_base)
			xs_feed_held(xs);
		else if (xs->fed - xs->call_base < len) {
			/* xmlscan first; expat for what it leaves */
			if (xs_fast(xs, buf + (xs->fed - xs->call_base),
			    len - (size_t)(xs->fed - xs->call_base)) == 0 &&
			    xs->state != XS_FAILED && !xs->hold)
				xs_parse(xs, buf + (xs->fed - xs->call_base),
				    len - (size_t)(xs->fed - xs->call_base));
		} else
			break;
	}
	if (xs->qhead != NULL)
		return xs_pop(xs, used);
	if (xs->state == XS_FAILED || xs_carry_keep(xs) == -1)
		return XMLSTREAM_ERROR;
	xs->pos = xs->call_base + len;	/* the fast path may hold some */
	*used = len;
	return XMLSTREAM_MORE;
}

const struct xmlstream_header *
xmlstream_header(const struct xmlstream *xs)
{
	return xs->has_header ? &xs->header : NULL;
}

const struct xmlstream_element *
xmlstream_element(const struct xmlstream *xs)
{
	return xs->last == XMLSTREAM_ELEMENT ? &xs->element : NULL;
}

enum xmlstream_error
xmlstream_last_error(const struct xmlstream *xs)
{
	return xs->error;
}

const char *
xmlstream_error_detail(const struct xmlstream *xs)
{
	return xs->detail;
}

const char *
xmlstream_error_name(enum xmlstream_error err)
{
	if ((size_t)err >= sizeof(error_names) / sizeof(error_names[0]))
		return NULL;
	return error_names[err];
}

/* Lookups. */

const char *
xmlstream_attr_find(const struct xmlstream_attr *attrs, size_t n,
    const char *ns, const char *name)
{
	size_t	i;

	if (ns == NULL)
		ns = "";
	for (i = 0; i < n; i++)
		if (strcmp(attrs[i].name, name) == 0 &&
		    strcmp(attrs[i].ns, ns) == 0)
			return attrs[i].value;
	return NULL;
}

const char *
xmlstream_node_attr(const struct xmlstream_node *node, const char *name)
{
	return xmlstream_attr_find(node->attrs, node->nattrs, NULL, name);
}

const struct xmlstream_node *
xmlstream_node_child(const struct xmlstream_node *node, const char *ns,
    const char *name)
{
	const struct xmlstream_node	*c;

	for (c = node->child; c != NULL; c = c->next)
		if ((ns == NULL || strcmp(c->ns, ns) == 0) &&
		    (name == NULL || strcmp(c->name, name) == 0))
			return c;
	return NULL;
}

/* Rendering: snprintf-like output. */

struct xs_out {
	char	*buf;
	size_t	 size;
	size_t	 len;		/* of the whole text, even past size */
};

static void
out_put(struct xs_out *o, const char *s, size_t n)
{
	size_t	room;

	if (o->len + 1 < o->size) {
		room = o->size - 1 - o->len;
		memcpy(o->buf + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void
out_str(struct xs_out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static void
out_escaped(struct xs_out *o, const char *s)
{
	size_t		 n;
	const char	*ref;

	for (;;) {
		n = strcspn(s, "&<>'\"\t\n\r");
		out_put(o, s, n);
		s += n;
		switch (*s) {
		case '\0':
			return;
		case '&':	ref = "&amp;"; break;
		case '<':	ref = "&lt;"; break;
		case '>':	ref = "&gt;"; break;
		case '\'':	ref = "&apos;"; break;
		case '"':	ref = "&quot;"; break;
		case '\t':	ref = "&#9;"; break;
		case '\n':	ref = "&#10;"; break;
		default:	ref = "&#13;"; break;
		}
		out_str(o, ref);
		s++;
	}
}

static size_t
out_end(struct xs_out *o)
{
	if (o->size > 0)
		o->buf[o->len < o->size ? o->len : o->size - 1] = '\0';
	return o->len;
}

/* " prefix:name='value'" (prefix may be NULL). */
static void
out_attr(struct xs_out *o, const char *prefix, const char *name,
    const char *value)
{
	out_str(o, " ");
	if (prefix != NULL) {
		out_str(o, prefix);
		out_str(o, ":");
	}
	out_str(o, name);
	out_str(o, "='");
	out_escaped(o, value);
	out_str(o, "'");
}

static void
out_nsdecl(struct xs_out *o, const struct xmlstream_nsdecl *d)
{
	if (d->prefix == NULL)
		out_attr(o, NULL, "xmlns", d->uri);
	else
		out_attr(o, "xmlns", d->prefix, d->uri);
}

/* Whether decls[0..n) declares prefix (and, if uri is not NULL, to uri). */
static bool
xs_declares(const struct xmlstream_nsdecl *decls, size_t n, const char *prefix,
    const char *uri)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (decls[i].prefix != NULL &&
		    strcmp(decls[i].prefix, prefix) == 0 &&
		    (uri == NULL || strcmp(decls[i].uri, uri) == 0))
			return true;
	return false;
}

/* The header's declarations el needs on another stream. */
static void
out_inherited(struct xs_out *o, const struct xmlstream *xs,
    const struct xmlstream_nsdecl *scope, size_t nscope)
{
	const struct xmlstream_element	*el = &xs->element;
	const struct xmlstream_nsdecl	*d;
	size_t				 i;

	for (i = 0; i < xs->header.nnsdecls; i++) {
		d = &xs->header.nsdecls[i];
		if (d->prefix == NULL ||
		    xs_declares(el->nsdecls, el->nnsdecls, d->prefix, NULL) ||
		    xs_declares(scope, nscope, d->prefix, d->uri))
			continue;
		out_nsdecl(o, d);
	}
}

/* The attributes of el with rw applied. */
static void
out_attrs(struct xs_out *o, const struct xmlstream_node *node,
    const struct xmlstream_rewrite *rw, size_t nrw)
{
	const struct xmlstream_attr	*a;
	const char			*value;
	size_t				 i, j;

	for (i = 0; i < node->nattrs; i++) {
		a = &node->attrs[i];
		value = a->value;
		for (j = 0; a->ns[0] == '\0' && j < nrw; j++)
			if (strcmp(rw[j].name, a->name) == 0) {
				value = rw[j].value;
				break;
			}
		if (value != NULL)
			out_attr(o, a->prefix, a->name, value);
	}
	for (j = 0; j < nrw; j++)
		if (rw[j].value != NULL &&
		    xmlstream_node_attr(node, rw[j].name) == NULL)
			out_attr(o, NULL, rw[j].name, rw[j].value);
}

size_t
xmlstream_render_start_tag(const struct xmlstream *xs,
    const struct xmlstream_rewrite *rw, size_t nrw,
    const struct xmlstream_nsdecl *scope, size_t nscope,
    char *buf, size_t size)
{
	const struct xmlstream_element	*el = xmlstream_element(xs);
	struct xs_out			 o = { buf, size, 0 };
	size_t				 i;

	if (el == NULL)
		return out_end(&o);
	out_str(&o, "<");
	if (el->node.prefix != NULL) {
		out_str(&o, el->node.prefix);
		out_str(&o, ":");
	}
	out_str(&o, el->node.name);
	for (i = 0; i < el->nnsdecls; i++)
		out_nsdecl(&o, &el->nsdecls[i]);
	out_inherited(&o, xs, scope, nscope);
	out_attrs(&o, &el->node, rw, nrw);
	out_str(&o, el->starttaglen == el->rawlen ? "/>" : ">");
	return out_end(&o);
}

size_t
xmlstream_escape(char *buf, size_t size, const char *s)
{
	struct xs_out	o = { buf, size, 0 };

	out_escaped(&o, s);
	return out_end(&o);
}
