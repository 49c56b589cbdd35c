/*
 * proxy: the PROXY v2 decoder and encoder. The decoder is a small state
 * machine over one fixed buffer of PROXY_HEADER_MAX bytes:
 *
 *	SIGNATURE --16 bytes, valid-->   BLOCK --block read, valid--> DONE
 *	SIGNATURE --byte 0 is 'P'-->     V1    --"PROXY " read-->     ERROR
 *	any       --a byte or field is wrong-->                       ERROR
 *
 * Each check is made as soon as the bytes it needs are in, so the same
 * input gives the same answer, at the same byte, however it is split.
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#include "util.h"

static const uint8_t proxy_sig[PROXY_SIG_LEN] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char proxy_v1[] = "PROXY ";

#define PROXY_VERSION		2
#define PROXY_FAM_UNSPEC	0
#define PROXY_FAM_INET		1
#define PROXY_FAM_INET6		2
#define PROXY_FAM_UNIX		3
#define PROXY_TRANSPORT_UNSPEC	0
#define PROXY_TRANSPORT_STREAM	1
#define PROXY_TRANSPORT_DGRAM	2
#define PROXY_INET_LEN		12	/* 2 x 4 address bytes, 2 x 2 port */
#define PROXY_INET6_LEN		36	/* 2 x 16, 2 x 2 */
#define PROXY_SSL_FIXED		5	/* client (1) and verify (4) */

enum proxy_state {
	PROXY_ST_SIGNATURE,	/* the first 16 bytes */
	PROXY_ST_V1,		/* "PROXY " so far: a version 1 header? */
	PROXY_ST_BLOCK,		/* addresses and TLVs */
	PROXY_ST_DONE,
	PROXY_ST_ERROR
};

struct proxy_decoder {
	enum proxy_state	 state;
	uint8_t			 buf[PROXY_HEADER_MAX];
	size_t			 have;		/* bytes in buf */
	size_t			 want;		/* bytes of the current stage */
	struct proxy_header	 h;
	char			 error[160];
};

struct proxy_decoder *
proxy_decoder_new(void)
{
	struct proxy_decoder *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->state = PROXY_ST_SIGNATURE;
	d->want = PROXY_FIXED_LEN;
	return d;
}

void
proxy_decoder_free(struct proxy_decoder *d)
{
	free(d);
}

size_t
proxy_decoder_need(const struct proxy_decoder *d)
{
	if (d->state == PROXY_ST_DONE || d->state == PROXY_ST_ERROR)
		return 0;
	return d->want - d->have;
}

static enum proxy_status __attribute__((format(printf, 2, 3)))
proxy_fail(struct proxy_decoder *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->error, sizeof(d->error), fmt, ap);
	va_end(ap);
	d->state = PROXY_ST_ERROR;
	return PROXY_ERROR;
}

static uint16_t
proxy_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
proxy_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The byte just added at d->have - 1 does not match the signature. */
static enum proxy_status
proxy_bad_signature(struct proxy_decoder *d)
{
	size_t at = d->have - 1;
	uint8_t b = d->buf[at];

	if (at == 0 && b == (uint8_t)proxy_v1[0]) {
		d->state = PROXY_ST_V1;
		d->want = sizeof(proxy_v1) - 1;
		return PROXY_MORE;
	}
	return proxy_fail(d, "no PROXY v2 signature: byte %zu is 0x%02x%s", at,
	    b, at == 0 && b == '<' ? " (an XML stream with no PROXY header?)" :
	    "");
}

/* The bytes so far of a version 1 header candidate. */
static enum proxy_status
proxy_check_v1(struct proxy_decoder *d)
{
	size_t at = d->have - 1;

	if (d->buf[at] != (uint8_t)proxy_v1[at])
		return proxy_fail(d, "no PROXY v2 signature: byte 0 is 0x%02x",
		    d->buf[0]);
	if (d->have == d->want)
		return proxy_fail(d, "a PROXY version 1 (text) header; only "
		    "version 2 is accepted");
	return PROXY_MORE;
}

/* The address bytes a PROXY command needs for family fam. */
static size_t
proxy_family_len(unsigned fam)
{
	return fam == PROXY_FAM_INET ? PROXY_INET_LEN :
	    fam == PROXY_FAM_INET6 ? PROXY_INET6_LEN : 0;
}

/* The 16 fixed bytes are in: check them, size the block. */
static enum proxy_status
proxy_check_fixed(struct proxy_decoder *d)
{
	const uint8_t *b = d->buf;
	unsigned ver = b[12] >> 4, cmd = b[12] & 0x0f;
	unsigned fam = b[13] >> 4, tr = b[13] & 0x0f;
	unsigned len = proxy_get16(b + 14);

	if (ver != PROXY_VERSION)
		return proxy_fail(d, "version %u, not 2", ver);
	if (cmd > PROXY_CMD_PROXY)
		return proxy_fail(d, "unknown command 0x%x", cmd);
	if (fam > PROXY_FAM_UNIX)
		return proxy_fail(d, "unknown address family 0x%x", fam);
	if (tr > PROXY_TRANSPORT_DGRAM)
		return proxy_fail(d, "unknown transport 0x%x", tr);
	if (len > PROXY_BODY_MAX)
		return proxy_fail(d, "a block of %u bytes, over the limit of %d",
		    len, PROXY_BODY_MAX);
	d->h.command = cmd == 0 ? PROXY_CMD_LOCAL : PROXY_CMD_PROXY;
	if (d->h.command == PROXY_CMD_PROXY) {
		if (fam == PROXY_FAM_UNSPEC || fam == PROXY_FAM_UNIX)
			return proxy_fail(d, "a PROXY command with %s; only TCP "
			    "over IPv4 or IPv6 is accepted", fam == PROXY_FAM_UNIX ?
			    "a UNIX socket address" : "no address (UNSPEC)");
		if (tr != PROXY_TRANSPORT_STREAM)
			return proxy_fail(d, "a PROXY command for %s; only TCP "
			    "is accepted", tr == PROXY_TRANSPORT_DGRAM ? "UDP" :
			    "no transport (UNSPEC)");
		if (len < proxy_family_len(fam))
			return proxy_fail(d, "a block of %u bytes, shorter than "
			    "the %zu of an %s address pair", len,
			    proxy_family_len(fam),
			    fam == PROXY_FAM_INET ? "IPv4" : "IPv6");
	}
	d->want = PROXY_FIXED_LEN + len;
	d->state = PROXY_ST_BLOCK;
	return PROXY_MORE;
}

/* Fill h's addresses from the block of family fam. */
static void
proxy_read_addresses(struct proxy_decoder *d, unsigned fam)
{
	const uint8_t *a = d->buf + PROXY_FIXED_LEN;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&d->h.src;
	struct sockaddr_in *d4 = (struct sockaddr_in *)&d->h.dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&d->h.src;
	struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&d->h.dst;

	if (fam == PROXY_FAM_INET) {
		s4->sin_family = d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		memcpy(&d4->sin_addr, a + 4, 4);
		memcpy(&s4->sin_port, a + 8, 2);
		memcpy(&d4->sin_port, a + 10, 2);
		d->h.srclen = d->h.dstlen = sizeof(*s4);
		return;
	}
	s6->sin6_family = d6->sin6_family = AF_INET6;
	memcpy(&s6->sin6_addr, a, 16);
	memcpy(&d6->sin6_addr, a + 16, 16);
	memcpy(&s6->sin6_port, a + 32, 2);
	memcpy(&d6->sin6_port, a + 34, 2);
	d->h.srclen = d->h.dstlen = sizeof(*s6);
}

/*
 * Walk the TLVs in p (len bytes, base bytes into the header) into out (at
 * most max, *n so far). Return 0, or -1 with a reason in why.
 */
static int
proxy_walk_tlvs(const uint8_t *p, size_t len, size_t base,
    struct proxy_tlv *out, size_t max, size_t *n, char *why, size_t whylen)
{
	size_t off = 0, vlen;

	while (off < len) {
		if (len - off < 3) {
			snprintf(why, whylen, "a truncated TLV at byte %zu of "
			    "the header", base + off);
			return -1;
		}
		vlen = proxy_get16(p + off + 1);
		if (vlen > len - off - 3) {
			snprintf(why, whylen, "TLV 0x%02x of %zu bytes overruns "
			    "the block", p[off], vlen);
			return -1;
		}
		if (*n == max) {
			snprintf(why, whylen, "more than %zu TLVs", max);
			return -1;
		}
		out[*n].type = p[off];
		out[*n].len = (uint16_t)vlen;
		out[*n].value = p + off + 3;
		(*n)++;
		off += 3 + vlen;
	}
	return 0;
}

int
proxy_ssl_read(const struct proxy_tlv *tlv, uint8_t *client, uint32_t *verify,
    uint8_t sub, struct proxy_tlv *found)
{
	struct proxy_tlv subs[PROXY_TLV_MAX];
	size_t n = 0;
	char why[80];
	const uint8_t *v = tlv->value;

	if (tlv->type != PROXY_TLV_SSL || tlv->len < PROXY_SSL_FIXED ||
	    proxy_walk_tlvs(v + PROXY_SSL_FIXED, tlv->len - PROXY_SSL_FIXED, 0,
	    subs, nitems(subs), &n, why, sizeof(why)) == -1)
		return -1;
	*client = v[0];
	*verify = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 |
	    (uint32_t)v[3] << 8 | v[4];
	if (found != NULL) {
		memset(found, 0, sizeof(*found));
		for (size_t i = 0; i < n; i++)
			if (subs[i].type == sub) {
				*found = subs[i];
				break;
			}
	}
	return 0;
}

uint32_t
proxy_crc32c(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffff;

	while (len-- > 0) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78 & (0u - (crc & 1)));
	}
	return ~crc;
}

/* Check the CRC32C TLV t: the header with its value zeroed sums to it. */
static int
proxy_check_crc(struct proxy_decoder *d, const struct proxy_tlv *t)
{
	uint8_t *v = d->buf + (t->value - d->buf), saved[4];
	uint32_t want, got;

	if (t->len != 4)
		return -1;
	memcpy(saved, v, 4);
	want = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
	    (uint32_t)v[2] << 8 | v[3];
	memset(v, 0, 4);
	got = proxy_crc32c(d->buf, d->h.length);
	memcpy(v, saved, 4);
	return got == want ? 0 : -1;
}

/* Check the TLVs that carry structure: SSL's sub-TLVs, CRC32C's sum. */
static enum proxy_status
proxy_check_tlvs(struct proxy_decoder *d)
{
	uint8_t client;
	uint32_t verify;

	for (size_t i = 0; i < d->h.ntlvs; i++) {
		const struct proxy_tlv *t = &d->h.tlvs[i];

		if (t->type == PROXY_TLV_SSL &&
		    proxy_ssl_read(t, &client, &verify, 0, NULL) == -1)
			return proxy_fail(d, "a malformed PP2_TYPE_SSL TLV");
		if (t->type == PROXY_TLV_CRC32C && proxy_check_crc(d, t) == -1)
			return proxy_fail(d, "the PP2_TYPE_CRC32C checksum does "
			    "not match");
	}
	return PROXY_DONE;
}

/* The whole header is in. */
static enum proxy_status
proxy_finish(struct proxy_decoder *d)
{
	unsigned fam = d->buf[13] >> 4;
	size_t len = d->have - PROXY_FIXED_LEN, alen = proxy_family_len(fam);
	char why[120];

	d->h.length = d->have;
	if (d->h.command == PROXY_CMD_LOCAL) {
		/* The specification: discard the block, keep the socket's. */
		d->h.src.ss_family = d->h.dst.ss_family = AF_UNSPEC;
		d->state = PROXY_ST_DONE;
		return PROXY_DONE;
	}
	proxy_read_addresses(d, fam);
	if (proxy_walk_tlvs(d->buf + PROXY_FIXED_LEN + alen, len - alen,
	    PROXY_FIXED_LEN + alen, d->h.tlvs, PROXY_TLV_MAX, &d->h.ntlvs, why, sizeof(why)) == -1)
		return proxy_fail(d, "%s", why);
	if (proxy_check_tlvs(d) == PROXY_ERROR)
		return PROXY_ERROR;
	d->state = PROXY_ST_DONE;
	return PROXY_DONE;
}

/* One more byte is in buf: check what it completes. */
static enum proxy_status
proxy_step(struct proxy_decoder *d)
{
	switch (d->state) {
	case PROXY_ST_SIGNATURE:
		if (d->have <= PROXY_SIG_LEN &&
		    d->buf[d->have - 1] != proxy_sig[d->have - 1])
			return proxy_bad_signature(d);
		if (d->have == PROXY_FIXED_LEN) {
			if (proxy_check_fixed(d) == PROXY_ERROR)
				return PROXY_ERROR;
			if (d->want == d->have)
				return proxy_finish(d);
		}
		return PROXY_MORE;
	case PROXY_ST_V1:
		return proxy_check_v1(d);
	case PROXY_ST_BLOCK:
		return d->have == d->want ? proxy_finish(d) : PROXY_MORE;
	case PROXY_ST_DONE:
		return PROXY_DONE;
	case PROXY_ST_ERROR:
		break;
	}
	return PROXY_ERROR;
}

enum proxy_status
proxy_decoder_feed(struct proxy_decoder *d, const void *buf, size_t len,
    size_t *used)
{
	const uint8_t *p = buf;
	enum proxy_status st = PROXY_MORE;

	*used = 0;
	if (d->state == PROXY_ST_DONE)
		return PROXY_DONE;
	if (d->state == PROXY_ST_ERROR)
		return PROXY_ERROR;
	/* The signature is checked byte by byte, the rest by stage. */
	while (*used < len && st == PROXY_MORE) {
		size_t n = d->want - d->have;

		if (d->state != PROXY_ST_BLOCK)
			n = 1;
		if (n > len - *used)
			n = len - *used;
		memcpy(d->buf + d->have, p + *used, n);
		d->have += n;
		*used += n;
		st = proxy_step(d);
	}
	return st;
}

const struct proxy_header *
proxy_decoder_header(const struct proxy_decoder *d)
{
	return d->state == PROXY_ST_DONE ? &d->h : NULL;
}

const char *
proxy_decoder_error(const struct proxy_decoder *d)
{
	return d->state == PROXY_ST_ERROR ? d->error : "";
}

const struct proxy_tlv *
proxy_header_tlv(const struct proxy_header *h, uint8_t type)
{
	for (size_t i = 0; i < h->ntlvs; i++)
		if (h->tlvs[i].type == type)
			return &h->tlvs[i];
	return NULL;
}

/*
 * Encoding.
 */

/* An address as the header writes it. */
struct proxy_addr {
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];	/* 4 bytes for AF_INET */
	uint8_t		 port[2];	/* network order */
};

static int
proxy_addr_of(const struct sockaddr *sa, struct proxy_addr *a)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET) {
		a->family = AF_INET;
		memcpy(a->addr, &s4->sin_addr, 4);
		memcpy(a->port, &s4->sin_port, 2);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	memcpy(a->port, &s6->sin6_port, 2);
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		a->family = AF_INET;
		memcpy(a->addr, s6->sin6_addr.s6_addr + 12, 4);
		return 0;
	}
	a->family = AF_INET6;
	memcpy(a->addr, &s6->sin6_addr, 16);
	return 0;
}

/* Write an IPv4 address as IPv4-mapped IPv6. */
static void
proxy_addr_map6(struct proxy_addr *a)
{
	uint8_t v4[4];

	if (a->family != AF_INET)
		return;
	memcpy(v4, a->addr, 4);
	memset(a->addr, 0, 10);
	a->addr[10] = a->addr[11] = 0xff;
	memcpy(a->addr + 12, v4, 4);
	a->family = AF_INET6;
}

int
proxy_encode(void *buf, size_t len, const struct sockaddr *src,
    const struct sockaddr *dst, const struct proxy_tlv *tlvs, size_t ntlvs)
{
	uint8_t *p = buf;
	struct proxy_addr s, d;
	size_t alen, body, off, i;

	if (len < PROXY_FIXED_LEN)
		return -1;
	memcpy(p, proxy_sig, PROXY_SIG_LEN);
	if (src == NULL) {
		p[12] = PROXY_VERSION << 4 | PROXY_CMD_LOCAL;
		p[13] = PROXY_FAM_UNSPEC << 4 | PROXY_TRANSPORT_UNSPEC;
		proxy_put16(p + 14, 0);
		return PROXY_FIXED_LEN;
	}
	if (proxy_addr_of(src, &s) == -1 || proxy_addr_of(dst, &d) == -1)
		return -1;
	if (s.family != d.family) {
		proxy_addr_map6(&s);
		proxy_addr_map6(&d);
	}
	alen = s.family == AF_INET ? 4 : 16;
	body = 2 * alen + 4;
	for (i = 0; i < ntlvs; i++)
		body += 3 + tlvs[i].len;
	if (body > PROXY_BODY_MAX || PROXY_FIXED_LEN + body > len)
		return -1;
	p[12] = PROXY_VERSION << 4 | PROXY_CMD_PROXY;
	p[13] = (s.family == AF_INET ? PROXY_FAM_INET : PROXY_FAM_INET6) << 4 |
	    PROXY_TRANSPORT_STREAM;
	proxy_put16(p + 14, (uint16_t)body);
	off = PROXY_FIXED_LEN;
	memcpy(p + off, s.addr, alen);
	memcpy(p + off + alen, d.addr, alen);
	memcpy(p + off + 2 * alen, s.port, 2);
	memcpy(p + off + 2 * alen + 2, d.port, 2);
	off += 2 * alen + 4;
	for (i = 0; i < ntlvs; i++) {
		p[off] = tlvs[i].type;
		proxy_put16(p + off + 1, tlvs[i].len);
		if (tlvs[i].len > 0)
			memcpy(p + off + 3, tlvs[i].value, tlvs[i].len);
		off += 3 + tlvs[i].len;
	}
	return (int)off;
}

int
proxy_encode_ssl(void *buf, size_t len, uint8_t client, uint32_t verify,
    const char *version)
{
	uint8_t *p = buf;
	size_t vlen = version != NULL ? strlen(version) : 0;
	size_t total = PROXY_SSL_FIXED + (vlen > 0 ? 3 + vlen : 0);

	if (vlen > UINT16_MAX || total > len)
		return -1;
	p[0] = client;
	p[1] = (uint8_t)(verify >> 24);
	p[2] = (uint8_t)(verify >> 16);
	p[3] = (uint8_t)(verify >> 8);
	p[4] = (uint8_t)verify;
	if (vlen > 0) {
		p[5] = PROXY_SUBTLV_SSL_VERSION;
		proxy_put16(p + 6, (uint16_t)vlen);
		memcpy(p + 8, version, vlen);
	}
	return (int)total;
}
