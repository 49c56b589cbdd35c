/*
 * jid: XMPP addresses (RFC 7622) and domain normalisation with libidn2.
 */
#include "fgconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "jid.h"

#define JID_LABEL_MAX	63	/* RFC 1035 2.3.4 */
#define JID_NAME_MAX	(JID_DOMAIN_MAX - 1)

/*
 * IDNA2008 lookup (RFC 5891) with the UTS #46 mapping that folds case and
 * width; A-labels in the input are decoded and checked, not trusted.
 */
#define JID_IDN2_FLAGS \
	(IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL | IDN2_ALABEL_ROUNDTRIP)

/* Copy the lower-cased literal in (len bytes) to out. Return 0 or -1. */
static int
jid_copy_lower(const char *in, size_t len, char *out, size_t outlen)
{
	size_t	 i;

	if (len + 1 > outlen)
		return -1;
	for (i = 0; i < len; i++)
		out[i] = tolower((unsigned char)in[i]);
	out[len] = '\0';
	return 0;
}

/*
 * Recognise an IP literal: a dotted-quad IPv4 address or an IPv6 address in
 * brackets (RFC 7622 3.2). Return true if in (len bytes) is one.
 */
static bool
jid_is_ip_literal(const char *in, size_t len)
{
	char		 buf[INET6_ADDRSTRLEN + 1];
	struct in6_addr	 a6;
	struct in_addr	 a4;

	if (len >= 2 && in[0] == '[' && in[len - 1] == ']') {
		if (len - 2 >= sizeof(buf))
			return false;
		memcpy(buf, in + 1, len - 2);
		buf[len - 2] = '\0';
		return inet_pton(AF_INET6, buf, &a6) == 1;
	}
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, in, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, &a4) == 1;
}

/*
 * Check that name is a host name in preferred syntax (RFC 1123 2.1): labels
 * of 1 to 63 letters, digits and hyphens, no hyphen first or last.
 */
static bool
jid_is_ldh(const char *name)
{
	const char	*p;
	size_t		 label = 0;

	for (p = name; ; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > JID_LABEL_MAX ||
			    p[-1] == '-' || *(p - label) == '-')
				return false;
			if (*p == '\0')
				return true;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
		label++;
	}
}

/*
 * Whether in (len bytes) takes the ASCII fast path: only letters, digits,
 * hyphens and dots, and no label with hyphens in its third and fourth
 * places ("xn--" and the other reserved tags, which libidn2 must check).
 * For such a name the UTS #46 mapping is ASCII case folding and nothing
 * else, so the result is the lower-cased name, which jid_domain_normalize()
 * then checks as it checks libidn2's.
 */
static bool
jid_is_plain_ascii(const char *in, size_t len)
{
	size_t	 label = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			label = 0;
			continue;
		}
		if (!isascii(c) || (!isalnum(c) && c != '-'))
			return false;
		if (++label == 4 && in[i] == '-' && in[i - 1] == '-')
			return false;
	}
	return true;
}

/* The name (len bytes, a trailing dot dropped) if it is one; 0 or -1. */
static int
jid_finish(const char *name, size_t len, char *out, size_t outlen)
{
	char	 lower[JID_NAME_MAX + 1];

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > JID_NAME_MAX)
		return -1;
	if (jid_copy_lower(name, len, lower, sizeof(lower)) == -1 ||
	    !jid_is_ldh(lower))
		return -1;
	return jid_copy_lower(lower, len, out, outlen);
}

int
jid_domain_normalize_idn2(const char *in, char *out, size_t outlen)
{
	char	*idn = NULL;
	int	 rv;

	if (idn2_lookup_u8((const uint8_t *)in, (uint8_t **)&idn,
	    JID_IDN2_FLAGS) != IDN2_OK)
		return -1;
	/* One trailing dot, possibly mapped from U+3002, is not part of it. */
	rv = jid_finish(idn, strlen(idn), out, outlen);
	idn2_free(idn);
	return rv;
}

int
jid_domain_normalize(const char *in, char *out, size_t outlen)
{
	size_t	 len;

	if (in == NULL || out == NULL)
		return -1;
	len = strnlen(in, JID_PART_MAX + 1);
	if (len == 0 || len > JID_PART_MAX)
		return -1;
	if (jid_is_ip_literal(in, len))
		return jid_copy_lower(in, len, out, outlen);
	/* Nearly every name on the wire: no libidn2 call (a third of the
	 * relay's time went there, for the same two domains each stanza). */
	if (jid_is_plain_ascii(in, len))
		return jid_finish(in, len, out, outlen);
	return jid_domain_normalize_idn2(in, out, outlen);
}

bool
jid_domain_is_equal(const char *a, const char *b)
{
	char	 na[JID_DOMAIN_MAX], nb[JID_DOMAIN_MAX];

	if (jid_domain_normalize(a, na, sizeof(na)) == -1 ||
	    jid_domain_normalize(b, nb, sizeof(nb)) == -1)
		return false;
	return strcmp(na, nb) == 0;
}

int
jid_domain_span(const char *s, size_t len, size_t *off, size_t *dlen)
{
	const char	*slash, *at;
	size_t		 end, start = 0;

	if (s == NULL)
		return -1;
	if (memchr(s, '\0', len) != NULL)
		return -1;
	/* The resource is everything after the first slash. */
	if ((slash = memchr(s, '/', len)) != NULL) {
		end = slash - s;
		if (end + 1 == len || len - end - 1 > JID_PART_MAX)
			return -1;
	} else
		end = len;
	/* The local part ends at the first '@' before that slash. */
	if ((at = memchr(s, '@', end)) != NULL) {
		start = at - s + 1;
		if (start == 1 || start - 1 > JID_PART_MAX)
			return -1;
	}
	if (end == start || end - start > JID_PART_MAX)
		return -1;
	*off = start;
	*dlen = end - start;
	return 0;
}

int
jid_parse(const char *s, size_t len, struct jid *j)
{
	char	 domain[JID_PART_MAX + 1];
	size_t	 off, dlen, rlen;

	if (j == NULL || jid_domain_span(s, len, &off, &dlen) == -1)
		return -1;
	memcpy(domain, s + off, dlen);
	domain[dlen] = '\0';
	if (jid_domain_normalize(domain, j->domain, sizeof(j->domain)) == -1)
		return -1;
	/* The span checked both part lengths against JID_PART_MAX. */
	if (off > 0)
		memcpy(j->local, s, off - 1);
	j->local[off > 0 ? off - 1 : 0] = '\0';
	rlen = off + dlen < len ? len - off - dlen - 1 : 0;
	if (rlen > 0)
		memcpy(j->resource, s + off + dlen + 1, rlen);
	j->resource[rlen] = '\0';
	return 0;
}
