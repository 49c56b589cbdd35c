/*
 * fuzz_jid: libFuzzer target for jid_parse(), jid_domain_span() and
 * jid_domain_normalize(). Checks what the contracts promise: the span lies
 * inside the input and agrees with jid_parse(), a normalised domain is
 * stable under normalisation, and the ASCII fast path of
 * jid_domain_normalize() agrees with libidn2 (jid_domain_normalize_idn2())
 * on everything that is not an IP literal.
 */
#include "fgconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jid.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_normalize(const uint8_t *data, size_t size)
{
	char	*in, out[JID_DOMAIN_MAX], again[JID_DOMAIN_MAX];

	if ((in = malloc(size + 1)) == NULL)
		return;
	memcpy(in, data, size);
	in[size] = '\0';
	/* the fast path against the oracle (IP literals skip both) */
	if (strchr(in, ':') == NULL &&
	    strspn(in, "0123456789.") != strlen(in)) {
		int a = jid_domain_normalize(in, out, sizeof(out));
		int b = jid_domain_normalize_idn2(in, again, sizeof(again));

		if (a != b || (a == 0 && strcmp(out, again) != 0))
			abort();
	}
	if (jid_domain_normalize(in, out, sizeof(out)) == 0) {
		if (out[0] == '\0' || strlen(out) >= JID_DOMAIN_MAX)
			abort();
		if (jid_domain_normalize(out, again, sizeof(again)) != 0 ||
		    strcmp(out, again) != 0)
			abort();
		if (!jid_domain_is_equal(in, out))
			abort();
	}
	free(in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*s = (const char *)data;
	struct jid	 j;
	size_t		 off, dlen;
	int		 span;

	span = jid_domain_span(s, size, &off, &dlen);
	if (span == 0 && (dlen == 0 || off > size || dlen > size - off))
		abort();
	if (jid_parse(s, size, &j) == 0) {
		if (span != 0 || strlen(j.local) > JID_PART_MAX ||
		    strlen(j.resource) > JID_PART_MAX)
			abort();
		if (jid_domain_normalize(j.domain, j.domain,
		    sizeof(j.domain)) != 0)
			abort();
	}
	check_normalize(data, size);
	return 0;
}
