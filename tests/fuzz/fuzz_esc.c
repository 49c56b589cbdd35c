/*
 * fuzz_esc: libFuzzer target for util_esc_mem(), the one path every peer
 * string takes to a log line, a control reply or a bounce text. The first
 * input byte picks the buffer size (1..256), the rest is the peer string.
 * Checks what the contract promises: nothing written past the buffer, the
 * result NUL-terminated, shorter than the buffer, printable ASCII only,
 * and, when it was not cut (buffers of 32 bytes or more say so), decodable
 * back to the input.
 */
#include "fgconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define GUARD	16

/* Undo the escaping of e into out; return the decoded length. */
static size_t
unescape(const char *e, char *out)
{
	size_t n = 0;

	while (*e != '\0') {
		if (e[0] == '\\' && e[1] == 'x') {
			out[n++] = (char)strtoul((char[]){ e[2], e[3], '\0' },
			    NULL, 16);
			e += 4;
		} else if (e[0] == '\\') {
			out[n++] = e[1];
			e += 2;
		} else
			out[n++] = *e++;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *back;
	size_t len, i;

	if (size == 0)
		return 0;
	len = (size_t)data[0] + 1;
	data++;
	size--;
	if ((buf = malloc(len + GUARD)) == NULL)
		return 0;
	memset(buf, 'Z', len + GUARD);
	util_esc_mem((const char *)data, size, buf, len);
	for (i = 0; i < GUARD; i++)
		if (buf[len + i] != 'Z')
			abort();
	if (memchr(buf, '\0', len) == NULL)
		abort();
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			abort();
	/* Below 32 bytes the "...(N bytes)" mark itself may be cut. */
	if (len >= 32 && strstr(buf, "...(") == NULL &&
	    (back = malloc(len)) != NULL) {
		if (unescape(buf, back) != size || memcmp(back, data, size) != 0)
			abort();
		free(back);
	}
	free(buf);
	return 0;
}
