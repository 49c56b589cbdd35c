/*
 * libFuzzer target for xmlstream. Input: 4 bytes of settings, then the
 * stream. Byte 0 bit 0 picks small limits (from bytes 1-3) over the
 * defaults; bytes 1-3 also give the chunk sizes of the second run.
 *
 * Properties checked (a failure traps):
 *  - the events, the offsets reported used and the error are the same
 *    whether the stream is fed whole, in chunks or one byte at a time;
 *  - each element's raw span is exactly the input bytes that end at the
 *    offset reported, and the header's length is its offset in the stream;
 *  - an element re-rendered for relay (start tag with "to" rewritten, then
 *    its raw rest) parses on a fresh stream as the same element.
 * The stream restarts after an element named starttls, proceed or success.
 */
#include "fgconfig.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmlstream.h"
#include "fuzz.h"

#define OUT_HDR "<stream:stream xmlns='jabber:server' " \
	"xmlns:stream='http://etherx.jabber.org/streams' " \
	"xmlns:db='jabber:server:dialback'>"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const struct xmlstream_nsdecl out_scope[] = {
	{ NULL, "jabber:server" },
	{ "stream", "http://etherx.jabber.org/streams" },
	{ "db", "jabber:server:dialback" },
};

static void
mix_tree(uint64_t *h, const struct xmlstream_node *node)
{
	const struct xmlstream_node	*c;
	size_t				 i;

	mix_str(h, node->ns);
	mix_str(h, node->name);
	mix_str(h, node->prefix);
	for (i = 0; i < node->nattrs; i++) {
		mix_str(h, node->attrs[i].ns);
		mix_str(h, node->attrs[i].name);
		mix_str(h, node->attrs[i].value);
	}
	mix(h, node->text, node->textlen);
	check(node->text[node->textlen] == '\0');
	for (c = node->child; c != NULL; c = c->next)
		mix_tree(h, c);
	check(xmlstream_node_child(node, NULL, NULL) == node->child);
}

/* Re-render el as the relay does and check it parses back the same. */
static void
check_relay(struct xmlstream *xs, const struct xmlstream_element *el)
{
	static const struct xmlstream_rewrite	 rw[] = { { "to", "x@y" } };
	static const struct xmlstream_limits	 big = { 1 << 22, 1 << 16, 64,
						    4096 };
	const struct xmlstream_element		*back;
	struct xmlstream			*ys;
	size_t					 tag, len, off, used;
	char					*buf;

	tag = xmlstream_render_start_tag(xs, rw, 1, out_scope, 3, NULL, 0);
	len = sizeof(OUT_HDR) - 1 + tag + el->rawlen - el->starttaglen;
	if ((buf = malloc(len + 1)) == NULL)
		return;
	memcpy(buf, OUT_HDR, sizeof(OUT_HDR) - 1);
	off = sizeof(OUT_HDR) - 1;
	check(xmlstream_render_start_tag(xs, rw, 1, out_scope, 3, buf + off,
	    tag + 1) == tag);
	memcpy(buf + off + tag, el->raw + el->starttaglen,
	    el->rawlen - el->starttaglen);
	if ((ys = xmlstream_new(&big)) != NULL) {
		check(xmlstream_feed(ys, buf, len, &used) == XMLSTREAM_HEADER);
		check(used == off);
		check(xmlstream_feed(ys, buf + off, len - off, &used) ==
		    XMLSTREAM_ELEMENT && used == len - off);
		back = xmlstream_element(ys);
		check(strcmp(back->node.ns, el->node.ns) == 0);
		check(strcmp(back->node.name, el->node.name) == 0);
		check(strcmp(xmlstream_node_attr(&back->node, "to"), "x@y") == 0);
		check(back->rawlen - back->starttaglen ==
		    el->rawlen - el->starttaglen);
		xmlstream_free(ys);
	}
	free(buf);
}

static bool
is_restart(const struct xmlstream_element *el)
{
	return strcmp(el->node.name, "starttls") == 0 ||
	    strcmp(el->node.name, "proceed") == 0 ||
	    strcmp(el->node.name, "success") == 0;
}

/* Hash one event; return -1 when the stream is over. */
static int
on_event(struct xmlstream *xs, enum xmlstream_event ev, const uint8_t *in,
    size_t off, size_t *stream, uint64_t *h, bool deep)
{
	const struct xmlstream_header	*hd;
	const struct xmlstream_element	*el;
	enum xmlstream_error		 err;

	mix(h, &ev, sizeof(ev));
	if (ev != XMLSTREAM_ERROR)	/* used up to the error varies */
		mix(h, &off, sizeof(off));
	switch (ev) {
	case XMLSTREAM_HEADER:
		hd = xmlstream_header(xs);
		check(hd->len == off - *stream);
		mix_str(h, hd->to);
		mix_str(h, hd->from);
		mix_str(h, hd->version);
		return 0;
	case XMLSTREAM_ELEMENT:
		el = xmlstream_element(xs);
		check(el->rawlen <= off - *stream);
		check(memcmp(el->raw, in + off - el->rawlen, el->rawlen) == 0);
		check(el->starttaglen <= el->rawlen);
		mix_tree(h, &el->node);
		if (deep)
			check_relay(xs, el);
		if (is_restart(el)) {
			check(xmlstream_reset(xs) == 0);
			*stream = off;
		}
		return 0;
	case XMLSTREAM_END:
		return -1;
	default:
		err = xmlstream_last_error(xs);
		check(err != XMLSTREAM_ERR_NONE);
		check(xmlstream_error_name(err) != NULL);
		check(err != XMLSTREAM_ERR_INTERNAL_SERVER_ERROR);
		mix(h, &err, sizeof(err));
		return -1;
	}
}

/*
 * Feed in[0..len), the bytes arriving in chunks of sizes steps[i % nsteps]
 * (whole if nsteps is 0), shrinking the framer after the chunks of odd
 * steps and giving its parser back after those with bit 1 set. Return
 * the hash of the events.
 */
static uint64_t
run(const uint8_t *in, size_t len, const struct xmlstream_limits *lim,
    const uint8_t *steps, size_t nsteps, bool deep)
{
	struct xmlstream	*xs;
	enum xmlstream_event	 ev;
	uint64_t		 h = FUZZ_HASH_INIT;
	size_t			 off = 0, avail = 0, used, stream = 0, i = 0;

	if ((xs = xmlstream_new(lim)) == NULL)
		return 0;
	do {
		if (nsteps == 0)
			avail = len;
		else
			avail += 1 + steps[i++ % nsteps] % 64;
		if (avail > len)
			avail = len;
		for (;;) {
			ev = xmlstream_feed(xs, (const char *)in + off,
			    avail - off, &used);
			check(used <= avail - off);
			off += used;
			if (ev == XMLSTREAM_MORE) {
				check(off == avail);
				/* an odd step: give memory back, as an idle
				 * leg does; the events must not change */
				if (nsteps > 0 && steps[(i - 1) % nsteps] & 1)
					xmlstream_shrink(xs);
				if (nsteps > 0 && steps[(i - 1) % nsteps] & 2)
					xmlstream_release(xs);
				break;
			}
			if (on_event(xs, ev, in, off, &stream, &h, deep) == -1)
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
	struct xmlstream_limits	lim;
	static const uint8_t	one = 0;
	uint64_t		whole;

	if (size < 4)
		return 0;
	memset(&lim, 0, sizeof(lim));
	if (data[0] & 1) {
		lim.stanza_size = 16 + data[1];
		lim.header_size = 32 + data[2] * 2;
		lim.depth = 1 + data[3] % 8;
		lim.attributes = 1 + data[3] / 8 % 16;
	}
	whole = run(data + 4, size - 4, &lim, NULL, 0, true);
	check(run(data + 4, size - 4, &lim, data + 1, 3, false) == whole);
	if (size < 8192)
		check(run(data + 4, size - 4, &lim, &one, 1, false) == whole);
	return 0;
}
