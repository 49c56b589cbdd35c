/*
 * payload: the payload rewriter. The rewrite map of a local domain (its
 * public name outside, its internal name inside) applied to the JIDs a
 * stanza carries in its body: a MUC invitation's room, an XEP-0033
 * address, a disco item, the to/from of a forwarded stanza... Sans-I/O:
 * bytes in, bytes out, no allocation.
 *
 * What is rewritten is a table (payload.c, payload_rows[]; listed in
 * doc/internals/legs.md): unqualified attributes, known to hold a JID, of
 * elements named by namespace URI and local name, some only inside a
 * given parent (the to/from of a message, presence or iq only inside an
 * XEP-0297 <forwarded/>). Such an attribute's value, unescaped, is read as
 * a JID (jid_domain_span()); when its domain is one a map entry names, the
 * domain's bytes are replaced and nothing else: local part, resource,
 * quotes, references elsewhere in the value and every other byte of the
 * body stay as they came. Text, attributes outside the table, elements of
 * other namespaces are never touched, even if they look like a JID.
 *
 * Domains are compared as written once the value is unescaped,
 * ignoring ASCII case and one trailing dot (kept in the output); a domain
 * spelled with non-ASCII look-alikes that IDNA would map to a mapped name
 * is not recognised. The replacement is written as the map gives it.
 */
#ifndef FEDGATE_PAYLOAD_H
#define FEDGATE_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "xmlstream.h"

/* Nesting of elements inside the body, and namespace declarations in
 * scope inside it, that payload_rewrite() follows (the limits of its
 * stack, which lives on the C stack: about 20 KB in all). */
#define PAYLOAD_DEPTH_MAX	1024
#define PAYLOAD_NSDECL_MAX	256

/* A map entry's flags. */
#define PAYLOAD_MAP_SUBDOMAINS	0x1	/* also x.from -> x.to, any x */

/* One entry of the map: JIDs of domain from get domain to. */
struct payload_map {
	const char	*from;		/* ASCII, NUL-terminated, not empty */
	const char	*to;		/* the same */
	unsigned	 flags;		/* PAYLOAD_MAP_* */
};

/*
 * The body of one stanza and the namespaces in scope at its start: those
 * of the stream header, then those of the stanza's own start tag (which
 * win), as xmlstream gives them.
 */
struct payload_body {
	const char			*bytes;	/* after the start tag */
	size_t				 len;
	const struct xmlstream_nsdecl	*header_ns;
	size_t				 nheader_ns;
	const struct xmlstream_nsdecl	*stanza_ns;
	size_t				 nstanza_ns;
};

enum payload_result {
	PAYLOAD_ERROR = -1,		/* refused: see payload_rewrite() */
	PAYLOAD_UNCHANGED = 0,		/* relay the body as it came */
	PAYLOAD_REWRITTEN		/* relay the output instead */
};

/*
 * The pre-check: return whether the len bytes at body may hold a JID that
 * map[0..nmap) rewrites, that is whether a map entry's from appears in
 * them (ASCII case ignored) or a character reference ("&#") does (it
 * could spell one). When false, payload_rewrite() would return
 * PAYLOAD_UNCHANGED: one scan of the bytes per entry, no parsing.
 */
bool	payload_may_match(const char *body, size_t len,
	    const struct payload_map *map, size_t nmap);
/* The pre-check in pieces: whether domain appears in the len bytes at
 * body, ASCII case ignored; whether a character reference does. */
bool	payload_has_domain(const char *body, size_t len, const char *domain);
bool	payload_has_ref(const char *body, size_t len);

/*
 * Rewrite the JIDs of body with map[0..nmap) (an exact match of from
 * first, in the order of map; else, for entries with
 * PAYLOAD_MAP_SUBDOMAINS, the longest from that the domain ends in).
 *
 * The body is the bytes after the stanza's start tag, its end tag
 * included (xmlstream's raw + starttaglen, rawlen - starttaglen), or
 * content alone; empty for <message/>. It must be what xmlstream
 * delivers: well-formed, no comment, processing instruction or DTD. The
 * rewriter checks the structure it walks (tags closed, as many end tags
 * as start tags, attribute values quoted, element prefixes bound, the
 * references in JID attributes) but not what expat checked (end tag
 * names, UTF-8, name characters, duplicate attributes).
 *
 * Return PAYLOAD_UNCHANGED if no JID was rewritten: out is untouched,
 * relay the body as it came. Return PAYLOAD_REWRITTEN with *outlen the
 * length of the rewritten body: written to out if *outlen <= size; if it
 * is larger, out holds its first size bytes only: call again with a
 * buffer of *outlen bytes. *outlen is at most body->len plus, for each
 * rewritten JID, strlen(to) - strlen(from) of its entry if that is
 * positive. Return PAYLOAD_ERROR (out undefined) if the body is not
 * well-formed as far as the rewriter sees, or goes past
 * PAYLOAD_DEPTH_MAX or PAYLOAD_NSDECL_MAX: a malformed body is refused,
 * never relayed half-rewritten. payload_rewrite() runs no pre-check: call
 * payload_may_match() first for the fast path (a malformed body then
 * passes the pre-check and is relayed unchanged when it holds no
 * mapped domain).
 */
enum payload_result payload_rewrite(const struct payload_body *body,
	    const struct payload_map *map, size_t nmap, char *out, size_t size,
	    size_t *outlen);

/*
 * Whether the unqualified attribute attr of the element (ns, name) holds
 * a JID that payload_rewrite() rewrites, the element's parent being
 * (parent_ns, parent_name) (NULL: the stanza itself, or none). The table,
 * for tests and the fuzz target's oracle.
 */
bool	payload_is_jid_attr(const char *ns, const char *name,
	    const char *parent_ns, const char *parent_name, const char *attr);

#endif
