/*
 * proxy: the PROXY protocol version 2 header (HAProxy's proxy-protocol.txt,
 * section 2.2), sans I/O: a decoder fed with bytes and an encoder into a
 * buffer. It touches no socket; listener.c reads a header with it on
 * public listeners marked proxy-protocol, leg_out.c writes one on internal
 * legs to an upstream marked proxy-protocol. doc/internals/proxy-protocol.md
 * says what is accepted and what is sent.
 *
 * The decoder is strict and bounded: the 12-byte signature, version 2,
 * command LOCAL or PROXY, a known family and transport, at most
 * PROXY_BODY_MAX bytes of addresses and TLVs. A PROXY command must carry
 * TCP over IPv4 or IPv6 (UNSPEC, UNIX and UDP are refused: fedgated needs
 * the peer's IP address); a LOCAL command's block is skipped, as the
 * specification says, and the connection keeps its own addresses. TLVs
 * are walked to the end and must fill the block exactly; a PP2_TYPE_SSL
 * value's sub-TLVs likewise; a PP2_TYPE_CRC32C checksum must match. The
 * decoder never asks for a byte past the header (proxy_decoder_need()),
 * so the caller can read exactly the header from a socket and leave the
 * rest (a TLS ClientHello, a stream header) for whoever comes next.
 */
#ifndef FEDGATE_PROXY_H
#define FEDGATE_PROXY_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXY_SIG_LEN		12	/* the signature */
#define PROXY_FIXED_LEN		16	/* signature, ver_cmd, fam, len */
#define PROXY_BODY_MAX		512	/* addresses and TLVs we accept */
#define PROXY_HEADER_MAX	(PROXY_FIXED_LEN + PROXY_BODY_MAX)
#define PROXY_TLV_MAX		32	/* TLVs kept from one header */

/* TLV types of the specification (section 2.2.1 on) that we use. */
#define PROXY_TLV_ALPN		0x01
#define PROXY_TLV_AUTHORITY	0x02
#define PROXY_TLV_CRC32C	0x03
#define PROXY_TLV_NOOP		0x04
#define PROXY_TLV_UNIQUE_ID	0x05
#define PROXY_TLV_SSL		0x20
#define PROXY_SUBTLV_SSL_VERSION 0x21
#define PROXY_SUBTLV_SSL_CN	0x22
/* PP2_TYPE_SSL <client> bits */
#define PROXY_SSL_CLIENT_SSL	0x01
#define PROXY_SSL_CLIENT_CERT_CONN 0x02
#define PROXY_SSL_CLIENT_CERT_SESS 0x04
/* fedgated's own TLVs, in the range kept for applications (0xE0-0xEF). */
#define PROXY_TLV_FEDGATE_DOMAIN 0xE0	/* the peer's authenticated domain */
#define PROXY_TLV_FEDGATE_AUTH	0xE1	/* how it authenticated */

enum proxy_status {
	PROXY_MORE,		/* feed proxy_decoder_need() more bytes */
	PROXY_DONE,		/* proxy_decoder_header() is the header */
	PROXY_ERROR		/* proxy_decoder_error() says why */
};

enum proxy_command {
	PROXY_CMD_LOCAL,	/* the balancer's own connection (health check) */
	PROXY_CMD_PROXY		/* relayed for the source address */
};

/* One TLV; value points into the decoder's buffer, or the caller's. */
struct proxy_tlv {
	uint8_t		 type;
	uint16_t	 len;
	const uint8_t	*value;
};

/* A decoded header. Pointers are into the decoder (valid until it is
 * freed). */
struct proxy_header {
	enum proxy_command	 command;
	/* PROXY only (AF_INET or AF_INET6); LOCAL: family AF_UNSPEC. */
	struct sockaddr_storage	 src;
	socklen_t		 srclen;
	struct sockaddr_storage	 dst;
	socklen_t		 dstlen;
	size_t			 length;	/* bytes of the whole header */
	struct proxy_tlv	 tlvs[PROXY_TLV_MAX];	/* PROXY only */
	size_t			 ntlvs;
};

struct proxy_decoder;

/* A new decoder waiting for the first byte, or NULL. */
struct proxy_decoder *proxy_decoder_new(void);
/* proxy_decoder_free(NULL) is a no-op. */
void	proxy_decoder_free(struct proxy_decoder *);
/*
 * How many more bytes the decoder can take before it has something new to
 * say (never past the end of the header): 16 at first, then the block.
 * 0 once it is done or failed.
 */
size_t	proxy_decoder_need(const struct proxy_decoder *);
/*
 * Feed len bytes. Store in *used how many were taken: never a byte past
 * the end of the header (those belong to what follows it), all of them
 * with PROXY_MORE. Return PROXY_MORE, PROXY_DONE or PROXY_ERROR; after DONE
 * or ERROR, feeding again returns the same and takes nothing. The answer
 * does not depend on how the bytes are split across calls.
 */
enum proxy_status proxy_decoder_feed(struct proxy_decoder *, const void *buf,
	    size_t len, size_t *used);
/* The header, once proxy_decoder_feed() returned PROXY_DONE; else NULL. */
const struct proxy_header *proxy_decoder_header(const struct proxy_decoder *);
/* Why the header was refused ("no PROXY v2 signature: ..."), or "". */
const char *proxy_decoder_error(const struct proxy_decoder *);

/* The first TLV of type in h (PROXY only), or NULL. */
const struct proxy_tlv *proxy_header_tlv(const struct proxy_header *h,
	    uint8_t type);
/*
 * Read a PP2_TYPE_SSL value: its client bits and verify field, and the
 * sub-TLV of type sub (NULL if absent; the value points into tlv). Return
 * 0, or -1 if tlv is not a well-formed PP2_TYPE_SSL value.
 */
int	proxy_ssl_read(const struct proxy_tlv *tlv, uint8_t *client,
	    uint32_t *verify, uint8_t sub, struct proxy_tlv *found);

/*
 * Write a PROXY v2 header into buf (len bytes): with src and dst (AF_INET
 * or AF_INET6; an IPv4-mapped IPv6 address counts as IPv4; two families
 * are both written as IPv6), the PROXY command for TCP from src to dst,
 * followed by the ntlvs TLVs; with src NULL, the LOCAL command with no
 * address and no TLV (dst and tlvs are ignored). Return the length
 * written, or -1 if it does not fit in len or in PROXY_HEADER_MAX, or an
 * address is of another family.
 */
int	proxy_encode(void *buf, size_t len, const struct sockaddr *src,
	    const struct sockaddr *dst, const struct proxy_tlv *tlvs,
	    size_t ntlvs);
/*
 * Write the value of a PP2_TYPE_SSL TLV into buf (len bytes): client bits,
 * verify (0: the client's certificate was verified), and a
 * PP2_SUBTYPE_SSL_VERSION sub-TLV with version unless it is NULL or "".
 * Return the length written, or -1 if it does not fit.
 */
int	proxy_encode_ssl(void *buf, size_t len, uint8_t client, uint32_t verify,
	    const char *version);
/* CRC-32C (Castagnoli) of len bytes, as PP2_TYPE_CRC32C carries it. */
uint32_t proxy_crc32c(const void *buf, size_t len);

#endif
