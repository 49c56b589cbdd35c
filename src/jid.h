/*
 * jid: XMPP addresses (RFC 7622) and domain normalisation. Sans-I/O.
 *
 * A normalised domain is what fedgate compares and stores: IDNA2008 through
 * libidn2 (non-transitional, NFC input), as lower-case A-labels
 * ("xn--bcher-kva.example"), without a trailing dot; an IPv4 literal or a
 * bracketed IPv6 literal is kept as written (lower case).
 *
 * Input is UTF-8; case and width are folded (UTS #46 mapping), so
 * "BÜCHER.Example." normalises to "xn--bcher-kva.example". A-labels in the
 * input are decoded and checked, not trusted. The result must be a host name
 * (RFC 1123: letters, digits, hyphens; labels of 1 to 63 bytes, at most 253
 * bytes in all): "a..b", "a_b", "-a", "ab--c" (a reserved label that is not
 * an A-label) and a second trailing dot are invalid.
 */
#ifndef FEDGATE_JID_H
#define FEDGATE_JID_H

#include <stdbool.h>
#include <stddef.h>

#define JID_PART_MAX	1023	/* RFC 7622 3.1: each part at most 1023 bytes */
#define JID_DOMAIN_MAX	254	/* room for a normalised domain and its NUL */

struct jid {
	char	local[JID_PART_MAX + 1];	/* "" if none */
	char	domain[JID_DOMAIN_MAX];		/* normalised */
	char	resource[JID_PART_MAX + 1];	/* "" if none */
};

/*
 * Normalise the domain in (NUL-terminated, UTF-8) into out (JID_DOMAIN_MAX
 * bytes). Return 0, or -1 if in is not a valid domain (empty, bad label,
 * disallowed code point, too long).
 */
int	jid_domain_normalize(const char *in, char *out, size_t outlen);
/*
 * jid_domain_normalize() always through libidn2: the oracle that its ASCII
 * fast path is checked against (tests/unit/test_jid.c, fuzz_jid). Not for
 * an IP literal.
 */
int	jid_domain_normalize_idn2(const char *in, char *out, size_t outlen);
/* Normalise then compare. Return true if a and b are the same valid domain. */
bool	jid_domain_is_equal(const char *a, const char *b);
/*
 * Split the JID s (len bytes, not necessarily NUL-terminated) into j, the
 * domain normalised. Local part and resource are copied as they are (no
 * PRECIS profile is applied: fedgate routes on domains only). The resource
 * is everything after the first '/'; the local part is what precedes the
 * first '@' before that '/'. Return 0, or -1 if s is not a valid JID: a NUL
 * byte, an empty or invalid domain, an empty local part or resource after
 * its separator, a part longer than JID_PART_MAX. j is unchanged on -1.
 */
int	jid_parse(const char *s, size_t len, struct jid *j);
/*
 * Find the domain part of the JID s (len bytes) without copying: store its
 * offset and length. The domain is neither checked nor normalised (it may
 * have upper case or a trailing dot); the shape is, as in jid_parse(). Return
 * 0, or -1 if s has no valid shape.
 */
int	jid_domain_span(const char *s, size_t len, size_t *off, size_t *dlen);

#endif
