/*
 * fuzz_proxy: libFuzzer target for the PROXY v2 decoder. The input is fed
 * whole, one byte at a time, and as a socket reader feeds it (exactly
 * proxy_decoder_need() bytes at a time). Checks what the contracts
 * promise: the three give the same status, the same bytes taken and the
 * same header or reason; a decoded header is at most PROXY_HEADER_MAX
 * bytes, all taken, its TLVs inside it (each PP2_TYPE_SSL readable); the
 * reason is printable ASCII; and a PROXY header encoded again from what
 * was decoded is the very same bytes.
 */
#include "fgconfig.h"

#include <netinet/in.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

enum feed_mode { FEED_WHOLE, FEED_BYTES, FEED_NEED };

/* Feed data the mode's way; return the decoder and its status in *st,
 * the bytes taken in *off. */
static struct proxy_decoder *
feed(const uint8_t *data, size_t size, enum feed_mode mode,
    enum proxy_status *st, size_t *off)
{
	struct proxy_decoder *d = proxy_decoder_new();
	size_t used, n;

	if (d == NULL)
		abort();
	*st = PROXY_MORE;
	*off = 0;
	while (*off < size && *st == PROXY_MORE) {
		n = size - *off;
		if (mode == FEED_BYTES)
			n = 1;
		else if (mode == FEED_NEED && n > proxy_decoder_need(d))
			n = proxy_decoder_need(d);
		if (n == 0)
			abort();		/* MORE must ask for a byte */
		*st = proxy_decoder_feed(d, data + *off, n, &used);
		if (used > n || (*st == PROXY_MORE && used != n))
			abort();
		*off += used;
	}
	return d;
}

static bool
is_mapped(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	return ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr);
}

static void
check_header(const uint8_t *data, const struct proxy_header *h, size_t off)
{
	uint8_t buf[PROXY_HEADER_MAX], client;
	uint32_t verify;
	size_t total;
	int n;

	if (h->length != off || h->length > PROXY_HEADER_MAX ||
	    h->length < PROXY_FIXED_LEN)
		abort();
	if (h->command == PROXY_CMD_LOCAL) {
		if (h->ntlvs != 0 || h->src.ss_family != AF_UNSPEC)
			abort();
		return;
	}
	/* The addresses and the TLVs fill the block exactly. */
	total = PROXY_FIXED_LEN + (h->src.ss_family == AF_INET ? 12 : 36);
	for (size_t i = 0; i < h->ntlvs; i++) {
		const struct proxy_tlv *t = &h->tlvs[i];

		total += 3 + (size_t)t->len;
		if (t->type == PROXY_TLV_SSL &&
		    proxy_ssl_read(t, &client, &verify, 0, NULL) == -1)
			abort();
	}
	if (total != h->length)
		abort();
	if (is_mapped(&h->src) || is_mapped(&h->dst))
		return;		/* written back as IPv4: other bytes */
	n = proxy_encode(buf, sizeof(buf), (const struct sockaddr *)&h->src,
	    (const struct sockaddr *)&h->dst, h->tlvs, h->ntlvs);
	if (n < 0 || (size_t)n != h->length || memcmp(buf, data, h->length) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_decoder *d[3];
	enum proxy_status st[3];
	size_t off[3];
	const char *e;

	for (int m = 0; m < 3; m++)
		d[m] = feed(data, size, (enum feed_mode)m, &st[m], &off[m]);
	for (int m = 1; m < 3; m++) {
		if (st[m] != st[0] || off[m] != off[0] ||
		    strcmp(proxy_decoder_error(d[m]),
		    proxy_decoder_error(d[0])) != 0)
			abort();
		if (st[0] == PROXY_DONE &&
		    memcmp(proxy_decoder_header(d[m]), proxy_decoder_header(d[0]),
		    offsetof(struct proxy_header, tlvs)) != 0)
			abort();
	}
	if (st[0] == PROXY_DONE)
		check_header(data, proxy_decoder_header(d[0]), off[0]);
	if (st[0] == PROXY_ERROR) {
		e = proxy_decoder_error(d[0]);
		if (*e == '\0')
			abort();
		for (; *e != '\0'; e++)
			if (*e < 0x20 || *e > 0x7e)
				abort();
	}
	for (int m = 0; m < 3; m++)
		proxy_decoder_free(d[m]);
	return 0;
}
