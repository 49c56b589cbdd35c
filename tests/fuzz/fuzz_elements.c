/*
 * fuzz_elements: libFuzzer target for what fedgated does with the
 * dialback and SASL elements a peer sends, sans I/O. The input is a
 * stream (a header is prepended when it has none); each top-level element
 * goes where leg_in would send it:
 *
 *  - <auth xmlns='...xmpp-sasl'/>: xmpp_sasl_external_read(). Checked: the
 *    verdict is a known condition; an accepted authzid is NUL-free, fits,
 *    and is exactly what the base64 says.
 *  - db:result and db:verify: 'from' and 'to' through
 *    jid_domain_normalize(), the key through dialback_key_is_valid() (a
 *    key minted for the same inputs must be valid, the peer's only by
 *    chance), and the answer fedgated would send rendered with the peer's
 *    own from, to and id: it must parse back on a fresh stream as one
 *    element with the same attribute values.
 *  - every peer string through util_esc(): bounded and printable.
 */
#include "fgconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "dialback.h"
#include "jid.h"
#include "util.h"
#include "xmlstream.h"
#include "xmpp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define HDR	"<stream:stream xmlns='jabber:server' " \
	"xmlns:stream='http://etherx.jabber.org/streams' " \
	"xmlns:db='jabber:server:dialback' to='corp.example' " \
	"from='remote.example' version='1.0'>"
#define SECRET	"fuzz-secret"

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static void
check_esc(const char *s)
{
	char buf[UTIL_ESC_MAX];

	util_esc(s, buf, sizeof(buf));
	check(strlen(buf) < sizeof(buf));
	for (const char *p = buf; *p != '\0'; p++)
		check(*p >= 0x20 && *p < 0x7f);
}

static bool
is(const struct xmlstream_node *n, const char *ns, const char *name)
{
	return strcmp(n->ns, ns) == 0 && strcmp(n->name, name) == 0;
}

static void
sasl(const struct xmlstream_node *n)
{
	const char *mech = xmlstream_node_attr(n, "mechanism");
	unsigned char back[JID_DOMAIN_MAX * 2];
	char out[JID_DOMAIN_MAX * 2];
	enum xmpp_sasl_error e;
	size_t len = strlen(n->text);
	int m;

	e = xmpp_sasl_external_read(mech, n->text, out, sizeof(out));
	check((unsigned)e <= XMPP_SASL_ERROR_COUNT);
	check_esc(mech);
	if (e != XMPP_SASL_ERROR_COUNT)
		return;
	check(strlen(out) < sizeof(out));
	if (len == 0 || strcmp(n->text, "=") == 0) {
		check(out[0] == '\0');
		return;
	}
	m = EVP_EncodeBlock(back, (const unsigned char *)out, (int)strlen(out));
	check(m >= 0 && (size_t)m == len && memcmp(back, n->text, len) == 0);
}

/* Parse rendered (a reply) on a fresh stream: one element, whose from,
 * to and id are those given. */
static void
reparse(const struct xmpp_buf *rendered, const char *from, const char *to,
    const char *id)
{
	static const struct xmlstream_limits lim = {
		.stanza_size = 1 << 20, .header_size = 8192, .depth = 8,
		.attributes = 16,
	};
	struct xmlstream *xs = xmlstream_new(&lim);
	const struct xmlstream_element *e;
	size_t used;

	if (xs == NULL)
		return;
	check(xmlstream_feed(xs, HDR, strlen(HDR), &used) ==
	    XMLSTREAM_HEADER && used == strlen(HDR));
	check(xmlstream_feed(xs, xmpp_buf_data(rendered),
	    xmpp_buf_len(rendered), &used) == XMLSTREAM_ELEMENT);
	check(used == xmpp_buf_len(rendered));
	e = xmlstream_element(xs);
	check(strcmp(xmlstream_node_attr(&e->node, "from"), from) == 0);
	check(strcmp(xmlstream_node_attr(&e->node, "to"), to) == 0);
	if (id != NULL)
		check(strcmp(xmlstream_node_attr(&e->node, "id"), id) == 0);
	xmlstream_free(xs);
}

static void
dialback(const struct xmlstream_node *n, bool verify)
{
	const char *from = xmlstream_node_attr(n, "from");
	const char *to = xmlstream_node_attr(n, "to");
	const char *id = xmlstream_node_attr(n, "id");
	char f[JID_DOMAIN_MAX], t[JID_DOMAIN_MAX], key[DIALBACK_KEY_SIZE];
	struct xmpp_buf *out;

	check_esc(from);
	check_esc(to);
	check_esc(id);
	check_esc(n->text);
	if (from == NULL || to == NULL || jid_domain_normalize(from, f,
	    sizeof(f)) == -1 || jid_domain_normalize(to, t, sizeof(t)) == -1)
		return;
	if (id != NULL && dialback_key(SECRET, strlen(SECRET), to, from, id,
	    key, sizeof(key)) == 0) {
		check(dialback_key_is_valid(SECRET, strlen(SECRET), to, from,
		    id, key));
		(void)dialback_key_is_valid(SECRET, strlen(SECRET), to, from,
		    id, n->text);
	}
	if ((out = xmpp_buf_new()) == NULL)
		return;
	if (verify && id != NULL) {
		check(xmpp_render_db_verify_reply(out, to, from, id,
		    XMPP_DB_INVALID, XMPP_STANZA_ERROR_COUNT) == 0);
		reparse(out, to, from, id);
	} else if (!verify) {
		check(xmpp_render_db_result_reply(out, to, from, XMPP_DB_ERROR,
		    XMPP_STANZA_RESOURCE_CONSTRAINT) == 0);
		reparse(out, to, from, NULL);
	}
	xmpp_buf_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct xmlstream_limits lim = {
		.stanza_size = 65536, .header_size = 8192, .depth = 16,
		.attributes = 16,
	};
	struct xmlstream *xs;
	const struct xmlstream_node *n;
	enum xmlstream_event ev;
	size_t used, off = 0;

	if ((xs = xmlstream_new(&lim)) == NULL)
		return 0;
	if (size < 8 || memcmp(data, "<stream:", 8) != 0)
		check(xmlstream_feed(xs, HDR, strlen(HDR), &used) ==
		    XMLSTREAM_HEADER);
	while (off < size) {
		ev = xmlstream_feed(xs, (const char *)data + off, size - off,
		    &used);
		off += used;
		if (ev == XMLSTREAM_ERROR || ev == XMLSTREAM_END)
			break;
		if (ev == XMLSTREAM_MORE && used == 0)
			break;
		if (ev != XMLSTREAM_ELEMENT)
			continue;
		n = &xmlstream_element(xs)->node;
		if (is(n, XMPP_NS_SASL, "auth"))
			sasl(n);
		else if (is(n, XMPP_NS_DIALBACK, "result"))
			dialback(n, false);
		else if (is(n, XMPP_NS_DIALBACK, "verify"))
			dialback(n, true);
	}
	xmlstream_free(xs);
	return 0;
}
