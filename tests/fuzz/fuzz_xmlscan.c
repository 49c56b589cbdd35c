/*
 * libFuzzer target: xmlscan, the fast path, against expat, the oracle.
 * Input: 4 bytes of settings, then the stream's content, which follows a
 * fixed stream header. Byte 0 bit 0 picks small limits (from bytes 1-3)
 * over the defaults; bit 1 feeds in chunks whose sizes bytes 1-3 give
 * (up to 1 KiB), else whole.
 *
 * The same bytes are framed twice, the same way, by xmlstream with the
 * fast path on and with it off (expat parses every byte). Property (a
 * failure traps): the two give the same events, element for element: the
 * same offsets reported used, the same spans and raw bytes, names,
 * namespaces, prefixes, attributes and values, trees and declarations,
 * and the same stream error with the same detail (an offset in the
 * stream). Accepting what expat refuses, refusing what it accepts, or
 * framing it differently, all show here.
 */
#include "fgconfig.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmlstream.h"
#include "fuzz.h"

#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:server' " \
	"xmlns:stream='http://etherx.jabber.org/streams' " \
	"xmlns:db='jabber:server:dialback' to='a.example' from='b.example' " \
	"version='1.0'>"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
mix_size(uint64_t *h, size_t n)
{
	mix(h, &n, sizeof(n));
}

static void
mix_node(uint64_t *h, const struct xmlstream_node *node)
{
	const struct xmlstream_node	*c;
	size_t				 i;

	mix_str(h, node->ns);
	mix_str(h, node->name);
	mix_str(h, node->prefix);
	mix_size(h, node->nattrs);
	for (i = 0; i < node->nattrs; i++) {
		mix_str(h, node->attrs[i].ns);
		mix_str(h, node->attrs[i].name);
		mix_str(h, node->attrs[i].prefix);
		mix_str(h, node->attrs[i].value);
	}
	mix_size(h, node->textlen);
	mix(h, node->text, node->textlen + 1);
	for (c = node->child; c != NULL; c = c->next)
		mix_node(h, c);
	mix_str(h, "end");
}

static void
mix_element(uint64_t *h, const struct xmlstream_element *el)
{
	size_t	i;

	mix_node(h, &el->node);
	mix(h, &el->has_tree, sizeof(el->has_tree));
	mix_size(h, el->nnsdecls);
	for (i = 0; i < el->nnsdecls; i++) {
		mix_str(h, el->nsdecls[i].prefix);
		mix_str(h, el->nsdecls[i].uri);
	}
	mix_size(h, el->rawlen);
	mix_size(h, el->starttaglen);
	mix(h, el->raw, el->rawlen);
}

static bool
is_restart(const struct xmlstream_element *el)
{
	return strcmp(el->node.name, "proceed") == 0 ||
	    strcmp(el->node.name, "success") == 0;
}

/* Hash one event; return -1 when the stream is over. */
static int
on_event(struct xmlstream *xs, enum xmlstream_event ev, size_t off,
    uint64_t *h)
{
	const struct xmlstream_element	*el;

	mix(h, &ev, sizeof(ev));
	mix_size(h, off);
	switch (ev) {
	case XMLSTREAM_HEADER:
		mix_size(h, xmlstream_header(xs)->len);
		return 0;
	case XMLSTREAM_ELEMENT:
		el = xmlstream_element(xs);
		mix_element(h, el);
		if (is_restart(el))
			check(xmlstream_reset(xs) == 0);
		return 0;
	case XMLSTREAM_END:
		return -1;
	default:
		mix_str(h, xmlstream_error_name(xmlstream_last_error(xs)));
		mix_str(h, xmlstream_error_detail(xs));
		return -1;
	}
}

/* Frame in[0..len) in chunks of steps (whole if nsteps is 0); return the
 * hash of the events. */
static uint64_t
run(const char *in, size_t len, const struct xmlstream_limits *lim,
    bool fast, const uint8_t *steps, size_t nsteps)
{
	struct xmlstream	*xs;
	enum xmlstream_event	 ev;
	uint64_t		 h = FUZZ_HASH_INIT;
	size_t			 off = 0, avail = 0, used, i = 0;

	if ((xs = xmlstream_new(lim)) == NULL)
		return 0;
	xmlstream_set_fast_path(xs, fast);
	do {
		if (nsteps == 0)
			avail = len;
		else
			avail += 1 + steps[i++ % nsteps] * 4;
		if (avail > len)
			avail = len;
		for (;;) {
			ev = xmlstream_feed(xs, in + off, avail - off, &used);
			check(used <= avail - off);
			off += used;
			if (ev == XMLSTREAM_MORE)
				break;
			if (on_event(xs, ev, off, &h) == -1)
				goto out;
		}
	} while (avail < len);
out:
	xmlstream_free(xs);
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xmlstream_limits	 lim;
	size_t			 len, nsteps;
	char			*in;

	if (size < 4)
		return 0;
	memset(&lim, 0, sizeof(lim));
	if (data[0] & 1) {
		lim.stanza_size = 16 + data[1] * 4;
		lim.depth = 1 + data[3] % 8;
		lim.attributes = 1 + data[3] / 8 % 16;
	}
	nsteps = data[0] & 2 ? 3 : 0;
	len = sizeof(HDR) - 1 + size - 4;
	if ((in = malloc(len)) == NULL)
		return 0;
	memcpy(in, HDR, sizeof(HDR) - 1);
	memcpy(in + sizeof(HDR) - 1, data + 4, size - 4);
	check(run(in, len, &lim, true, data + 1, nsteps) ==
	    run(in, len, &lim, false, data + 1, nsteps));
	free(in);
	return 0;
}
