/*
 * priv_msg: the socketpair's message format (doc/internals/privsep.md),
 * sans-I/O. Every integer is a 32-bit unsigned in network byte order.
 *
 *	message	= type seq len payload[len]
 *	BUNDLE	= count file[count]
 *	file	= error mode pathlen datalen path[pathlen] data[datalen]
 */
#include "fgconfig.h"

#include <sys/types.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "priv.h"

#define PRIV_FILE_HEADER_LEN	16	/* error, mode, pathlen, datalen */
#define PRIV_ERRNO_MAX		4095	/* Linux errnos are below */

static uint32_t
priv_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return ntohl(v);
}

static void
priv_put32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, sizeof(v));
}

void
priv_msg_header(uint8_t hdr[PRIV_HEADER_LEN], uint32_t type, uint32_t seq,
    size_t len)
{
	priv_put32(hdr, type);
	priv_put32(hdr + 4, seq);
	priv_put32(hdr + 8, (uint32_t)len);
}

enum priv_decode
priv_msg_decode(const void *buf, size_t len, struct priv_msg *msg,
    size_t *need, char *err, size_t errlen)
{
	const uint8_t *p = buf;
	uint32_t type, seq, plen;

	if (len < PRIV_HEADER_LEN) {
		*need = PRIV_HEADER_LEN;
		return PRIV_DECODE_MORE;
	}
	type = priv_get32(p);
	seq = priv_get32(p + 4);
	plen = priv_get32(p + 8);
	if (type == 0 || type >= PRIV_TYPE_MAX) {
		snprintf(err, errlen, "unknown message type %u", type);
		return PRIV_DECODE_ERROR;
	}
	if (plen > PRIV_MSG_MAX) {
		snprintf(err, errlen, "message of %u bytes (at most %d)", plen,
		    PRIV_MSG_MAX);
		return PRIV_DECODE_ERROR;
	}
	if ((type == PRIV_RELOAD && plen != 0) ||
	    (type == PRIV_BUNDLE && plen < 4) ||
	    (type == PRIV_ERROR && (plen == 0 || plen > PRIV_ERROR_MAX))) {
		snprintf(err, errlen, "message type %u with %u bytes", type,
		    plen);
		return PRIV_DECODE_ERROR;
	}
	*need = PRIV_HEADER_LEN + (size_t)plen;
	if (len < *need)
		return PRIV_DECODE_MORE;
	if (type == PRIV_ERROR && memchr(p + PRIV_HEADER_LEN, '\0', plen)) {
		snprintf(err, errlen, "NUL byte in an error text");
		return PRIV_DECODE_ERROR;
	}
	msg->type = type;
	msg->seq = seq;
	msg->payload = p + PRIV_HEADER_LEN;
	msg->len = plen;
	return PRIV_DECODE_OK;
}

int
priv_bundle_encode(const struct bundle *b, uint8_t **buf, size_t *len)
{
	const char *path;
	const void *data;
	size_t n = bundle_count(b), size = 4, dlen, plen, off;
	uint32_t mode;
	uint8_t *out;
	int error;

	for (size_t i = 0; i < n; i++) {
		bundle_entry(b, i, &path, &error, &mode, &data, &dlen);
		size += PRIV_FILE_HEADER_LEN + strlen(path) + dlen;
		if (size > PRIV_MSG_MAX)
			return -1;
	}
	if ((out = malloc(size)) == NULL)
		return -1;
	priv_put32(out, (uint32_t)n);
	off = 4;
	for (size_t i = 0; i < n; i++) {
		bundle_entry(b, i, &path, &error, &mode, &data, &dlen);
		plen = strlen(path);
		priv_put32(out + off, (uint32_t)error);
		priv_put32(out + off + 4, mode);
		priv_put32(out + off + 8, (uint32_t)plen);
		priv_put32(out + off + 12, (uint32_t)dlen);
		off += PRIV_FILE_HEADER_LEN;
		memcpy(out + off, path, plen);
		off += plen;
		if (dlen > 0)
			memcpy(out + off, data, dlen);
		off += dlen;
	}
	*buf = out;
	*len = size;
	return 0;
}

struct bundle *
priv_bundle_decode(const void *buf, size_t len, char *err, size_t errlen)
{
	const uint8_t *p = buf;
	struct bundle *b;
	uint32_t count, error, mode, plen, dlen;
	char path[BUNDLE_PATH_MAX + 1];
	size_t off = 4;

	if (len < 4) {
		snprintf(err, errlen, "bundle truncated");
		return NULL;
	}
	count = priv_get32(p);
	if (count == 0 || count > BUNDLE_FILES_MAX) {
		snprintf(err, errlen, "bundle of %u files (1 to %d)", count,
		    BUNDLE_FILES_MAX);
		return NULL;
	}
	if ((b = bundle_new(false)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (uint32_t i = 0; i < count; i++) {
		if (len - off < PRIV_FILE_HEADER_LEN) {
			snprintf(err, errlen, "file %u: truncated header", i);
			goto fail;
		}
		error = priv_get32(p + off);
		mode = priv_get32(p + off + 4);
		plen = priv_get32(p + off + 8);
		dlen = priv_get32(p + off + 12);
		off += PRIV_FILE_HEADER_LEN;
		if (plen == 0 || plen > BUNDLE_PATH_MAX) {
			snprintf(err, errlen, "file %u: path of %u bytes", i,
			    plen);
			goto fail;
		}
		if (error > PRIV_ERRNO_MAX || mode > 0xffff) {
			snprintf(err, errlen, "file %u: bad error or mode", i);
			goto fail;
		}
		if (len - off < plen || len - off - plen < dlen) {
			snprintf(err, errlen, "file %u: truncated", i);
			goto fail;
		}
		memcpy(path, p + off, plen);
		path[plen] = '\0';
		if (memchr(path, '\0', plen) != NULL) {
			snprintf(err, errlen, "file %u: NUL byte in the path",
			    i);
			goto fail;
		}
		off += plen;
		if (bundle_add(b, path, (int)error, mode, p + off,
		    dlen) == -1) {
			snprintf(err, errlen, "file %u: impossible or repeated "
			    "entry", i);
			goto fail;
		}
		off += dlen;
	}
	if (off != len) {
		snprintf(err, errlen, "%zu bytes after the last file",
		    len - off);
		goto fail;
	}
	return b;
 fail:
	bundle_free(b);
	return NULL;
}
