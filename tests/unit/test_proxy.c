/*
 * Unit tests of proxy. Each decoder case is fed whole, one byte at a time,
 * split in two at every byte boundary, and as a socket reader would feed it
 * (exactly proxy_decoder_need() bytes each time); every way must give the
 * same trace, the expected one, and take the same bytes. Valid headers are
 * followed by bytes of what comes next, which the decoder must leave. Then
 * the encoder: what it writes decodes back to what it was given.
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy.h"
#include "util.h"

#define SIG	"0d0a0d0a000d0a515549540a "
/* 203.0.113.7:40000 -> 192.0.2.1:5269 */
#define ADDR4	"cb007107 c0000201 9c40 1495 "
/* [2001:db8::7]:40000 -> [2001:db8::1]:5269 */
#define ADDR6	"20010db8000000000000000000000007 " \
		"20010db8000000000000000000000001 9c40 1495 "
#define AFTER	"3c3f786d6c"	/* "<?xml": the stream that follows */
#define TRACE_MAX 512

struct pcase {
	const char	*name;
	const char	*hex;		/* spaces are ignored */
	const char	*expect;
};

/* Decode the hex text into out; return the length. */
static size_t
unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = 0;
	unsigned v;

	while (*hex != '\0') {
		if (*hex == ' ') {
			hex++;
			continue;
		}
		assert_true(n < max);
		assert_int_equal(sscanf(hex, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

static void __attribute__((format(printf, 2, 3)))
tr(char *t, const char *fmt, ...)
{
	size_t len = strlen(t);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t + len, TRACE_MAX - len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < TRACE_MAX - len);
}

/* What the decoder said, in one line. */
static void
trace(const struct proxy_decoder *d, enum proxy_status st, size_t used,
    char *t)
{
	const struct proxy_header *h = proxy_decoder_header(d);
	char a[UTIL_SOCKADDR_STRLEN], b[UTIL_SOCKADDR_STRLEN];

	t[0] = '\0';
	switch (st) {
	case PROXY_MORE:
		tr(t, "more need=%zu", proxy_decoder_need(d));
		break;
	case PROXY_ERROR:
		assert_null(h);
		tr(t, "error: %s", proxy_decoder_error(d));
		break;
	case PROXY_DONE:
		assert_non_null(h);
		assert_int_equal(h->length, used);
		assert_int_equal(proxy_decoder_need(d), 0);
		if (h->command == PROXY_CMD_LOCAL) {
			assert_int_equal(h->ntlvs, 0);
			tr(t, "local");
			break;
		}
		tr(t, "proxy %s -> %s", util_sockaddr_str(
		    (const struct sockaddr *)&h->src, a, sizeof(a)),
		    util_sockaddr_str((const struct sockaddr *)&h->dst, b,
		    sizeof(b)));
		for (size_t i = 0; i < h->ntlvs; i++)
			tr(t, " %02x:%u", h->tlvs[i].type, h->tlvs[i].len);
		break;
	}
	tr(t, " used=%zu", used);
}

/*
 * Feed in[0..len) to a new decoder, the bytes arriving up to each of
 * cuts[0..ncuts) in turn (the last one is len), and trace the result. With
 * by_need, offer only what proxy_decoder_need() asks for, as a reader of a
 * socket does.
 */
static void
run(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts,
    bool by_need, char *t)
{
	struct proxy_decoder *d;
	enum proxy_status st = PROXY_MORE;
	size_t off = 0, used, need;

	assert_non_null(d = proxy_decoder_new());
	for (size_t i = 0; i < ncuts && st == PROXY_MORE; i++) {
		while (off < cuts[i] && st == PROXY_MORE) {
			size_t n = cuts[i] - off;

			need = proxy_decoder_need(d);
			assert_true(need > 0);
			if (by_need && n > need)
				n = need;
			st = proxy_decoder_feed(d, in + off, n, &used);
			assert_true(used <= n);
			if (st == PROXY_MORE)
				assert_int_equal(used, n);
			off += used;
		}
	}
	trace(d, st, off, t);
	/* The verdict stays, and nothing more is taken. */
	if (st != PROXY_MORE) {
		assert_int_equal(proxy_decoder_feed(d, in, len, &used), st);
		assert_int_equal(used, 0);
	}
	proxy_decoder_free(d);
}

static void
run_bytes(const uint8_t *in, size_t len, const char *expect)
{
	char whole[TRACE_MAX], t[TRACE_MAX];
	size_t *cuts, k;

	assert_non_null(cuts = calloc(len + 1, sizeof(*cuts)));
	run(in, len, &len, 1, false, whole);
	assert_string_equal(whole, expect);
	run(in, len, &len, 1, true, t);
	assert_string_equal(t, whole);
	for (k = 0; k < len; k++)
		cuts[k] = k + 1;
	run(in, len, cuts, len, false, t);
	assert_string_equal(t, whole);
	for (k = 1; k < len; k++) {
		cuts[0] = k;
		cuts[1] = len;
		run(in, len, cuts, 2, false, t);
		if (strcmp(t, whole) != 0) {
			print_error("split at %zu\n", k);
			assert_string_equal(t, whole);
		}
	}
	free(cuts);
}

static void
run_case(void **state)
{
	const struct pcase *c = *state;
	uint8_t in[2048];

	run_bytes(in, unhex(c->hex, in, sizeof(in)), c->expect);
}

static struct pcase cases[] = {
	{ "nothing yet", "", "more need=16 used=0" },
	{ "local, no block", SIG "20 00 0000" AFTER, "local used=16" },
	{ "local with an IPv4 block, ignored", SIG "20 11 000c" ADDR4 AFTER,
	    "local used=28" },
	{ "local with a block that is not TLVs, ignored",
	    SIG "20 00 0005 ffffffffff" AFTER, "local used=21" },
	{ "local with a UNIX family, ignored", SIG "20 31 0000" AFTER,
	    "local used=16" },
	{ "proxy TCP over IPv4", SIG "21 11 000c" ADDR4 AFTER,
	    "proxy 203.0.113.7:40000 -> 192.0.2.1:5269 used=28" },
	{ "proxy TCP over IPv6", SIG "21 21 0024" ADDR6 AFTER,
	    "proxy [2001:db8::7]:40000 -> [2001:db8::1]:5269 used=52" },
	{ "proxy with TLVs", SIG "21 11 0041" ADDR4
	    "04 0000 "
	    "02 000c 636f72702e6578616d706c65 "
	    "20 000f 01 00000000 21 0007 544c5376312e33 "
	    "e0 000e 72656d6f74652e6578616d706c65" AFTER,
	    "proxy 203.0.113.7:40000 -> 192.0.2.1:5269 04:0 02:12 20:15 e0:14 "
	    "used=81" },
	{ "proxy with an empty SSL TLV body", SIG "21 11 0014" ADDR4
	    "20 0005 00 00000001", "proxy 203.0.113.7:40000 -> "
	    "192.0.2.1:5269 20:5 used=36" },
	{ "truncated in the signature", SIG,
	    "more need=4 used=12" },
	{ "truncated in the block", SIG "21 11 000c cb007107 c000",
	    "more need=6 used=22" },
	{ "an XML stream without a header",
	    "3c3f786d6c2076657273696f6e3d27312e30273f3e",
	    "error: no PROXY v2 signature: byte 0 is 0x3c (an XML stream "
	    "with no PROXY header?) used=1" },
	{ "a version 1 header",
	    "50524f58592054435034203230332e302e3131332e3720",
	    "error: a PROXY version 1 (text) header; only version 2 is "
	    "accepted used=6" },
	{ "a P that is not version 1", "50524f5859",
	    "more need=1 used=5" },
	{ "a P that is not version 1 either", "50524f41",
	    "error: no PROXY v2 signature: byte 0 is 0x50 used=4" },
	{ "the signature's last byte is wrong",
	    "0d0a0d0a000d0a51554954 0d 21 11 000c" ADDR4,
	    "error: no PROXY v2 signature: byte 11 is 0x0d used=12" },
	{ "version 1 in binary", SIG "11 11 000c" ADDR4,
	    "error: version 1, not 2 used=16" },
	{ "version 3", SIG "31 11 000c" ADDR4,
	    "error: version 3, not 2 used=16" },
	{ "unknown command", SIG "22 11 000c" ADDR4,
	    "error: unknown command 0x2 used=16" },
	{ "unknown family", SIG "21 41 000c" ADDR4,
	    "error: unknown address family 0x4 used=16" },
	{ "unknown family in a local header", SIG "20 41 0000",
	    "error: unknown address family 0x4 used=16" },
	{ "unknown transport", SIG "21 13 000c" ADDR4,
	    "error: unknown transport 0x3 used=16" },
	{ "a block over the limit, refused before it is read",
	    SIG "21 11 0201",
	    "error: a block of 513 bytes, over the limit of 512 used=16" },
	{ "the largest length", SIG "21 11 ffff",
	    "error: a block of 65535 bytes, over the limit of 512 used=16" },
	{ "proxy with no address", SIG "21 00 0000",
	    "error: a PROXY command with no address (UNSPEC); only TCP over "
	    "IPv4 or IPv6 is accepted used=16" },
	{ "proxy with a UNIX address", SIG "21 31 00d8",
	    "error: a PROXY command with a UNIX socket address; only TCP "
	    "over IPv4 or IPv6 is accepted used=16" },
	{ "proxy for UDP", SIG "21 12 000c" ADDR4,
	    "error: a PROXY command for UDP; only TCP is accepted used=16" },
	{ "proxy with no transport", SIG "21 10 000c" ADDR4,
	    "error: a PROXY command for no transport (UNSPEC); only TCP is "
	    "accepted used=16" },
	{ "an IPv4 block too short", SIG "21 11 0008 cb007107 c0000201",
	    "error: a block of 8 bytes, shorter than the 12 of an IPv4 "
	    "address pair used=16" },
	{ "an IPv6 block too short", SIG "21 21 000c" ADDR4,
	    "error: a block of 12 bytes, shorter than the 36 of an IPv6 "
	    "address pair used=16" },
	{ "a truncated TLV", SIG "21 11 000e" ADDR4 "04 00",
	    "error: a truncated TLV at byte 28 of the header used=30" },
	{ "a TLV that overruns the block", SIG "21 11 0010" ADDR4
	    "e0 0002 41",
	    "error: TLV 0xe0 of 2 bytes overruns the block used=32" },
	{ "an SSL TLV too short", SIG "21 11 0012" ADDR4 "20 0003 010000",
	    "error: a malformed PP2_TYPE_SSL TLV used=34" },
	{ "an SSL sub-TLV that overruns", SIG "21 11 0017" ADDR4
	    "20 0008 01 00000000 21 0009",
	    "error: a malformed PP2_TYPE_SSL TLV used=39" },
	{ "a CRC32C TLV of the wrong size", SIG "21 11 0011" ADDR4
	    "03 0002 0000",
	    "error: the PP2_TYPE_CRC32C checksum does not match used=33" },
	{ "a CRC32C that does not match", SIG "21 11 0013" ADDR4
	    "03 0004 00000000",
	    "error: the PP2_TYPE_CRC32C checksum does not match used=35" },
};

/* Cases built in code: sizes at the limits, checksums. */

static size_t
build(uint8_t *out, uint8_t vercmd, uint8_t famtr, size_t blen)
{
	size_t n = unhex(SIG, out, PROXY_FIXED_LEN);

	out[n++] = vercmd;
	out[n++] = famtr;
	out[n++] = (uint8_t)(blen >> 8);
	out[n++] = (uint8_t)blen;
	return n + unhex(ADDR4, out + n, 12);
}

static void
test_block_at_limit(void **state)
{
	uint8_t in[PROXY_HEADER_MAX + 8];
	size_t n = build(in, 0x21, 0x11, PROXY_BODY_MAX);
	size_t vlen = PROXY_BODY_MAX - 12 - 3;

	in[n++] = PROXY_TLV_NOOP;
	in[n++] = (uint8_t)(vlen >> 8);
	in[n++] = (uint8_t)vlen;
	memset(in + n, 0xaa, vlen);
	n += vlen;
	assert_int_equal(n, PROXY_HEADER_MAX);
	memcpy(in + n, "<?xml", 5);
	run_bytes(in, n + 5, "proxy 203.0.113.7:40000 -> 192.0.2.1:5269 "
	    "04:497 used=528");
}

static void
test_too_many_tlvs(void **state)
{
	uint8_t in[PROXY_HEADER_MAX];
	size_t n, k;
	char expect[TRACE_MAX] = "proxy 203.0.113.7:40000 -> 192.0.2.1:5269";

	n = build(in, 0x21, 0x11, 12 + 3 * PROXY_TLV_MAX);
	for (k = 0; k < PROXY_TLV_MAX; k++) {
		memcpy(in + n, "\x04\x00\x00", 3);
		n += 3;
		tr(expect, " 04:0");
	}
	tr(expect, " used=%zu", n);
	run_bytes(in, n, expect);
	n = build(in, 0x21, 0x11, 12 + 3 * (PROXY_TLV_MAX + 1));
	for (k = 0; k <= PROXY_TLV_MAX; k++) {
		memcpy(in + n, "\x04\x00\x00", 3);
		n += 3;
	}
	snprintf(expect, sizeof(expect), "error: more than %d TLVs used=%zu",
	    PROXY_TLV_MAX, n);
	run_bytes(in, n, expect);
}

static void
test_crc32c(void **state)
{
	uint8_t in[64];
	size_t n = build(in, 0x21, 0x11, 12 + 7);
	uint32_t crc;

	assert_int_equal(proxy_crc32c("123456789", 9), 0xe3069283);
	assert_int_equal(proxy_crc32c("", 0), 0);
	memcpy(in + n, "\x03\x00\x04\x00\x00\x00\x00", 7);
	crc = proxy_crc32c(in, n + 7);
	in[n + 3] = (uint8_t)(crc >> 24);
	in[n + 4] = (uint8_t)(crc >> 16);
	in[n + 5] = (uint8_t)(crc >> 8);
	in[n + 6] = (uint8_t)crc;
	run_bytes(in, n + 7, "proxy 203.0.113.7:40000 -> 192.0.2.1:5269 "
	    "03:4 used=35");
	in[16] ^= 1;		/* one address bit changed */
	run_bytes(in, n + 7, "error: the PP2_TYPE_CRC32C checksum does not "
	    "match used=35");
}

/* The decoded SSL TLV of the "proxy with TLVs" case. */
static void
test_ssl_read(void **state)
{
	uint8_t in[256];
	size_t n = unhex(SIG "21 11 0023" ADDR4
	    "20 000f 07 00000002 21 0007 544c5376312e33 "
	    "e0 0002 6162", in, sizeof(in)), used;
	struct proxy_decoder *d = proxy_decoder_new();
	const struct proxy_header *h;
	const struct proxy_tlv *t;
	struct proxy_tlv sub;
	uint8_t client;
	uint32_t verify;

	assert_non_null(d);
	assert_int_equal(proxy_decoder_feed(d, in, n, &used), PROXY_DONE);
	assert_non_null(h = proxy_decoder_header(d));
	assert_non_null(t = proxy_header_tlv(h, PROXY_TLV_SSL));
	assert_int_equal(proxy_ssl_read(t, &client, &verify,
	    PROXY_SUBTLV_SSL_VERSION, &sub), 0);
	assert_int_equal(client, 7);
	assert_int_equal(verify, 2);
	assert_int_equal(sub.len, 7);
	assert_memory_equal(sub.value, "TLSv1.3", 7);
	assert_int_equal(proxy_ssl_read(t, &client, &verify,
	    PROXY_SUBTLV_SSL_CN, &sub), 0);
	assert_null(sub.value);
	assert_non_null(t = proxy_header_tlv(h, PROXY_TLV_FEDGATE_DOMAIN));
	assert_memory_equal(t->value, "ab", 2);
	assert_null(proxy_header_tlv(h, PROXY_TLV_AUTHORITY));
	assert_int_equal(proxy_ssl_read(t, &client, &verify, 0, NULL), -1);
	proxy_decoder_free(d);
	proxy_decoder_free(NULL);
}

/* Encode, then decode with the same module: the same addresses and TLVs. */
static const struct proxy_header *
decode(struct proxy_decoder **d, const uint8_t *buf, int len)
{
	size_t used;

	assert_true(len >= PROXY_FIXED_LEN);
	assert_non_null(*d = proxy_decoder_new());
	assert_int_equal(proxy_decoder_feed(*d, buf, (size_t)len, &used),
	    PROXY_DONE);
	assert_int_equal(used, (size_t)len);
	return proxy_decoder_header(*d);
}

static void
sa(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
	socklen_t len;

	assert_int_equal(util_sockaddr_parse(host, port, ss, &len), 0);
}

static const char *
str(const struct sockaddr_storage *ss)
{
	static char buf[4][UTIL_SOCKADDR_STRLEN];
	static int i;

	i = (i + 1) % 4;
	return util_sockaddr_str((const struct sockaddr *)ss, buf[i],
	    sizeof(buf[i]));
}

static void
test_encode_round_trip(void **state)
{
	struct sockaddr_storage s, d;
	struct proxy_decoder *dec;
	const struct proxy_header *h;
	uint8_t buf[PROXY_HEADER_MAX], ssl[64];
	struct proxy_tlv tlvs[3] = {
		{ PROXY_TLV_SSL, 0, ssl },
		{ PROXY_TLV_FEDGATE_DOMAIN, 14, (const uint8_t *)"remote.example" },
		{ PROXY_TLV_FEDGATE_AUTH, 8, (const uint8_t *)"dialback" },
	};
	int n, sl;

	sl = proxy_encode_ssl(ssl, sizeof(ssl), PROXY_SSL_CLIENT_SSL, 1,
	    "TLSv1.3");
	assert_int_equal(sl, 5 + 3 + 7);
	tlvs[0].len = (uint16_t)sl;
	sa("203.0.113.7", 40000, &s);
	sa("192.0.2.1", 5269, &d);
	n = proxy_encode(buf, sizeof(buf), (struct sockaddr *)&s,
	    (struct sockaddr *)&d, tlvs, 3);
	assert_int_equal(n, 16 + 12 + 3 + sl + 3 + 14 + 3 + 8);
	h = decode(&dec, buf, n);
	assert_int_equal(h->command, PROXY_CMD_PROXY);
	assert_string_equal(str(&h->src), "203.0.113.7:40000");
	assert_string_equal(str(&h->dst), "192.0.2.1:5269");
	assert_int_equal(h->ntlvs, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(h->tlvs[i].type, tlvs[i].type);
		assert_int_equal(h->tlvs[i].len, tlvs[i].len);
		assert_memory_equal(h->tlvs[i].value, tlvs[i].value,
		    tlvs[i].len);
	}
	proxy_decoder_free(dec);

	/* IPv4-mapped addresses go out as IPv4. */
	sa("::ffff:203.0.113.7", 40000, &s);
	sa("::ffff:192.0.2.1", 5269, &d);
	n = proxy_encode(buf, sizeof(buf), (struct sockaddr *)&s,
	    (struct sockaddr *)&d, NULL, 0);
	assert_int_equal(n, 28);
	assert_int_equal(buf[13], 0x11);
	h = decode(&dec, buf, n);
	assert_string_equal(str(&h->src), "203.0.113.7:40000");
	proxy_decoder_free(dec);

	/* IPv6. */
	sa("2001:db8::7", 40000, &s);
	sa("2001:db8::1", 5269, &d);
	n = proxy_encode(buf, sizeof(buf), (struct sockaddr *)&s,
	    (struct sockaddr *)&d, NULL, 0);
	assert_int_equal(n, 52);
	assert_int_equal(buf[13], 0x21);
	h = decode(&dec, buf, n);
	assert_string_equal(str(&h->src), "[2001:db8::7]:40000");
	assert_string_equal(str(&h->dst), "[2001:db8::1]:5269");
	proxy_decoder_free(dec);

	/* Two families: both as IPv6. */
	sa("203.0.113.7", 40000, &s);
	n = proxy_encode(buf, sizeof(buf), (struct sockaddr *)&s,
	    (struct sockaddr *)&d, NULL, 0);
	assert_int_equal(n, 52);
	h = decode(&dec, buf, n);
	assert_string_equal(str(&h->src), "[::ffff:203.0.113.7]:40000");
	assert_string_equal(str(&h->dst), "[2001:db8::1]:5269");
	proxy_decoder_free(dec);
}

static void
test_encode_local_and_limits(void **state)
{
	static const uint8_t local[] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
	    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00 };
	struct sockaddr_storage s, d;
	struct proxy_decoder *dec;
	uint8_t buf[PROXY_HEADER_MAX + 64], big[PROXY_BODY_MAX];
	struct proxy_tlv t = { PROXY_TLV_NOOP, 0, big };
	int n;

	memset(big, 0, sizeof(big));
	n = proxy_encode(buf, sizeof(buf), NULL, NULL, NULL, 0);
	assert_int_equal(n, 16);
	assert_memory_equal(buf, local, sizeof(local));
	assert_int_equal(decode(&dec, buf, n)->command, PROXY_CMD_LOCAL);
	proxy_decoder_free(dec);
	assert_int_equal(proxy_encode(buf, 15, NULL, NULL, NULL, 0), -1);

	sa("203.0.113.7", 40000, &s);
	sa("192.0.2.1", 5269, &d);
	/* The largest block that fits, and one byte more. */
	t.len = PROXY_BODY_MAX - 12 - 3;
	n = proxy_encode(buf, sizeof(buf), (struct sockaddr *)&s,
	    (struct sockaddr *)&d, &t, 1);
	assert_int_equal(n, PROXY_HEADER_MAX);
	decode(&dec, buf, n);
	proxy_decoder_free(dec);
	t.len++;
	assert_int_equal(proxy_encode(buf, sizeof(buf), (struct sockaddr *)&s,
	    (struct sockaddr *)&d, &t, 1), -1);
	/* A buffer too short. */
	assert_int_equal(proxy_encode(buf, 27, (struct sockaddr *)&s,
	    (struct sockaddr *)&d, NULL, 0), -1);
	/* Not an IP address. */
	d.ss_family = AF_UNIX;
	assert_int_equal(proxy_encode(buf, sizeof(buf), (struct sockaddr *)&s,
	    (struct sockaddr *)&d, NULL, 0), -1);
	/* An SSL value with no version, and one that does not fit. */
	assert_int_equal(proxy_encode_ssl(buf, sizeof(buf), 0, 1, NULL), 5);
	assert_int_equal(proxy_encode_ssl(buf, sizeof(buf), 0, 1, ""), 5);
	assert_int_equal(proxy_encode_ssl(buf, 14, 1, 0, "TLSv1.3"), -1);
}

#define NCASES	(sizeof(cases) / sizeof(cases[0]))

int
main(void)
{
	static const struct CMUnitTest extra[] = {
		cmocka_unit_test(test_block_at_limit),
		cmocka_unit_test(test_too_many_tlvs),
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_ssl_read),
		cmocka_unit_test(test_encode_round_trip),
		cmocka_unit_test(test_encode_local_and_limits),
	};
	struct CMUnitTest tests[NCASES + sizeof(extra) / sizeof(extra[0])];
	size_t i;

	for (i = 0; i < NCASES; i++) {
		memset(&tests[i], 0, sizeof(tests[i]));
		tests[i].name = cases[i].name;
		tests[i].test_func = run_case;
		tests[i].initial_state = &cases[i];
	}
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		tests[NCASES + i] = extra[i];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
