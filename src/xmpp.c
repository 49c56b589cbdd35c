/*
 * xmpp: namespaces, error tables, rendering of S2S stream elements.
 */
#include "fgconfig.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"
#include "xmlstream.h"
#include "xmpp.h"

struct xmpp_buf {
	char	*data;		/* malloc'd; data[len] is a NUL; NULL if cap 0 */
	size_t	 len;		/* bytes used, without the NUL */
	size_t	 cap;		/* bytes allocated */
};

static const char *const xmpp_stream_error_names[] = {
	[XMPP_STREAM_BAD_FORMAT] = "bad-format",
	[XMPP_STREAM_BAD_NAMESPACE_PREFIX] = "bad-namespace-prefix",
	[XMPP_STREAM_CONFLICT] = "conflict",
	[XMPP_STREAM_CONNECTION_TIMEOUT] = "connection-timeout",
	[XMPP_STREAM_HOST_GONE] = "host-gone",
	[XMPP_STREAM_HOST_UNKNOWN] = "host-unknown",
	[XMPP_STREAM_IMPROPER_ADDRESSING] = "improper-addressing",
	[XMPP_STREAM_INTERNAL_SERVER_ERROR] = "internal-server-error",
	[XMPP_STREAM_INVALID_FROM] = "invalid-from",
	[XMPP_STREAM_INVALID_NAMESPACE] = "invalid-namespace",
	[XMPP_STREAM_INVALID_XML] = "invalid-xml",
	[XMPP_STREAM_NOT_AUTHORIZED] = "not-authorized",
	[XMPP_STREAM_NOT_WELL_FORMED] = "not-well-formed",
	[XMPP_STREAM_POLICY_VIOLATION] = "policy-violation",
	[XMPP_STREAM_REMOTE_CONNECTION_FAILED] = "remote-connection-failed",
	[XMPP_STREAM_RESET] = "reset",
	[XMPP_STREAM_RESOURCE_CONSTRAINT] = "resource-constraint",
	[XMPP_STREAM_RESTRICTED_XML] = "restricted-xml",
	[XMPP_STREAM_SEE_OTHER_HOST] = "see-other-host",
	[XMPP_STREAM_SYSTEM_SHUTDOWN] = "system-shutdown",
	[XMPP_STREAM_UNDEFINED_CONDITION] = "undefined-condition",
	[XMPP_STREAM_UNSUPPORTED_ENCODING] = "unsupported-encoding",
	[XMPP_STREAM_UNSUPPORTED_FEATURE] = "unsupported-feature",
	[XMPP_STREAM_UNSUPPORTED_STANZA_TYPE] = "unsupported-stanza-type",
	[XMPP_STREAM_UNSUPPORTED_VERSION] = "unsupported-version",
};

struct xmpp_stanza_error_info {
	const char		*name;
	enum xmpp_error_type	 type;	/* RFC 6120 8.3.3: "SHOULD be" */
};

static const struct xmpp_stanza_error_info xmpp_stanza_errors[] = {
	[XMPP_STANZA_BAD_REQUEST] = { "bad-request", XMPP_ERROR_MODIFY },
	[XMPP_STANZA_CONFLICT] = { "conflict", XMPP_ERROR_CANCEL },
	[XMPP_STANZA_FEATURE_NOT_IMPLEMENTED] =
	    { "feature-not-implemented", XMPP_ERROR_CANCEL },
	[XMPP_STANZA_FORBIDDEN] = { "forbidden", XMPP_ERROR_AUTH },
	[XMPP_STANZA_GONE] = { "gone", XMPP_ERROR_CANCEL },
	[XMPP_STANZA_INTERNAL_SERVER_ERROR] =
	    { "internal-server-error", XMPP_ERROR_CANCEL },
	[XMPP_STANZA_ITEM_NOT_FOUND] = { "item-not-found", XMPP_ERROR_CANCEL },
	[XMPP_STANZA_JID_MALFORMED] = { "jid-malformed", XMPP_ERROR_MODIFY },
	[XMPP_STANZA_NOT_ACCEPTABLE] = { "not-acceptable", XMPP_ERROR_MODIFY },
	[XMPP_STANZA_NOT_ALLOWED] = { "not-allowed", XMPP_ERROR_CANCEL },
	[XMPP_STANZA_NOT_AUTHORIZED] = { "not-authorized", XMPP_ERROR_AUTH },
	[XMPP_STANZA_POLICY_VIOLATION] =
	    { "policy-violation", XMPP_ERROR_MODIFY },
	[XMPP_STANZA_RECIPIENT_UNAVAILABLE] =
	    { "recipient-unavailable", XMPP_ERROR_WAIT },
	[XMPP_STANZA_REDIRECT] = { "redirect", XMPP_ERROR_MODIFY },
	[XMPP_STANZA_REGISTRATION_REQUIRED] =
	    { "registration-required", XMPP_ERROR_AUTH },
	[XMPP_STANZA_REMOTE_SERVER_NOT_FOUND] =
	    { "remote-server-not-found", XMPP_ERROR_CANCEL },
	[XMPP_STANZA_REMOTE_SERVER_TIMEOUT] =
	    { "remote-server-timeout", XMPP_ERROR_WAIT },
	[XMPP_STANZA_RESOURCE_CONSTRAINT] =
	    { "resource-constraint", XMPP_ERROR_WAIT },
	[XMPP_STANZA_SERVICE_UNAVAILABLE] =
	    { "service-unavailable", XMPP_ERROR_CANCEL },
	[XMPP_STANZA_SUBSCRIPTION_REQUIRED] =
	    { "subscription-required", XMPP_ERROR_AUTH },
	[XMPP_STANZA_UNDEFINED_CONDITION] =
	    { "undefined-condition", XMPP_ERROR_CANCEL },
	[XMPP_STANZA_UNEXPECTED_REQUEST] =
	    { "unexpected-request", XMPP_ERROR_WAIT },
};

static const char *const xmpp_error_type_names[] = {
	[XMPP_ERROR_AUTH] = "auth",
	[XMPP_ERROR_CANCEL] = "cancel",
	[XMPP_ERROR_CONTINUE] = "continue",
	[XMPP_ERROR_MODIFY] = "modify",
	[XMPP_ERROR_WAIT] = "wait",
};

static const char *const xmpp_sasl_error_names[] = {
	[XMPP_SASL_ABORTED] = "aborted",
	[XMPP_SASL_ACCOUNT_DISABLED] = "account-disabled",
	[XMPP_SASL_CREDENTIALS_EXPIRED] = "credentials-expired",
	[XMPP_SASL_ENCRYPTION_REQUIRED] = "encryption-required",
	[XMPP_SASL_INCORRECT_ENCODING] = "incorrect-encoding",
	[XMPP_SASL_INVALID_AUTHZID] = "invalid-authzid",
	[XMPP_SASL_INVALID_MECHANISM] = "invalid-mechanism",
	[XMPP_SASL_MALFORMED_REQUEST] = "malformed-request",
	[XMPP_SASL_MECHANISM_TOO_WEAK] = "mechanism-too-weak",
	[XMPP_SASL_NOT_AUTHORIZED] = "not-authorized",
	[XMPP_SASL_TEMPORARY_AUTH_FAILURE] = "temporary-auth-failure",
};

static const char *const xmpp_db_type_names[] = {
	[XMPP_DB_NONE] = "",
	[XMPP_DB_VALID] = "valid",
	[XMPP_DB_INVALID] = "invalid",
	[XMPP_DB_ERROR] = "error",
};

/* Index of name in the table names[n], or -1. */
static int
xmpp_table_find(const char *const *names, size_t n, const char *name)
{
	if (name == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

/* names[i], or NULL out of range. */
static const char *
xmpp_table_name(const char *const *names, size_t n, unsigned i)
{
	return i < n ? names[i] : NULL;
}

const char *
xmpp_stream_error_name(enum xmpp_stream_error e)
{
	return xmpp_table_name(xmpp_stream_error_names,
	    nitems(xmpp_stream_error_names), (unsigned)e);
}

int
xmpp_stream_error_parse(const char *name, enum xmpp_stream_error *e)
{
	int i = xmpp_table_find(xmpp_stream_error_names,
	    nitems(xmpp_stream_error_names), name);

	if (i != -1)
		*e = (enum xmpp_stream_error)i;
	return i == -1 ? -1 : 0;
}

const char *
xmpp_stanza_error_name(enum xmpp_stanza_error e)
{
	if ((unsigned)e >= nitems(xmpp_stanza_errors))
		return NULL;
	return xmpp_stanza_errors[e].name;
}

int
xmpp_stanza_error_parse(const char *name, enum xmpp_stanza_error *e)
{
	if (name == NULL)
		return -1;
	for (size_t i = 0; i < nitems(xmpp_stanza_errors); i++)
		if (strcmp(xmpp_stanza_errors[i].name, name) == 0) {
			*e = (enum xmpp_stanza_error)i;
			return 0;
		}
	return -1;
}

enum xmpp_error_type
xmpp_stanza_error_type(enum xmpp_stanza_error e)
{
	if ((unsigned)e >= nitems(xmpp_stanza_errors))
		return XMPP_ERROR_CANCEL;
	return xmpp_stanza_errors[e].type;
}

const char *
xmpp_error_type_name(enum xmpp_error_type t)
{
	return xmpp_table_name(xmpp_error_type_names,
	    nitems(xmpp_error_type_names), (unsigned)t);
}

int
xmpp_error_type_parse(const char *name, enum xmpp_error_type *t)
{
	int i = xmpp_table_find(xmpp_error_type_names,
	    nitems(xmpp_error_type_names), name);

	if (i != -1)
		*t = (enum xmpp_error_type)i;
	return i == -1 ? -1 : 0;
}

const char *
xmpp_sasl_error_name(enum xmpp_sasl_error e)
{
	return xmpp_table_name(xmpp_sasl_error_names,
	    nitems(xmpp_sasl_error_names), (unsigned)e);
}

int
xmpp_sasl_error_parse(const char *name, enum xmpp_sasl_error *e)
{
	int i = xmpp_table_find(xmpp_sasl_error_names,
	    nitems(xmpp_sasl_error_names), name);

	if (i != -1)
		*e = (enum xmpp_sasl_error)i;
	return i == -1 ? -1 : 0;
}

const char *
xmpp_db_type_name(enum xmpp_db_type t)
{
	return xmpp_table_name(xmpp_db_type_names, nitems(xmpp_db_type_names),
	    (unsigned)t);
}

int
xmpp_db_type_parse(const char *name, enum xmpp_db_type *t)
{
	int i;

	if (name == NULL) {
		*t = XMPP_DB_NONE;
		return 0;
	}
	if ((i = xmpp_table_find(xmpp_db_type_names,
	    nitems(xmpp_db_type_names), name)) == -1)
		return -1;
	*t = (enum xmpp_db_type)i;
	return 0;
}

/*
 * The buffer.
 */

struct xmpp_buf *
xmpp_buf_new(void)
{
	return calloc(1, sizeof(struct xmpp_buf));
}

void
xmpp_buf_free(struct xmpp_buf *buf)
{
	if (buf == NULL)
		return;
	free(buf->data);
	free(buf);
}

/* Cut buf back to len bytes (an earlier length). */
static void
xmpp_buf_truncate(struct xmpp_buf *buf, size_t len)
{
	buf->len = len;
	if (buf->data != NULL)
		buf->data[len] = '\0';
}

void
xmpp_buf_shrink(struct xmpp_buf *buf)
{
	if (buf->len > 0)
		return;
	free(buf->data);
	buf->data = NULL;
	buf->cap = 0;
}

void
xmpp_buf_reset(struct xmpp_buf *buf)
{
	xmpp_buf_truncate(buf, 0);
}

const char *
xmpp_buf_data(const struct xmpp_buf *buf)
{
	return buf->data != NULL ? buf->data : "";
}

struct iovec *
xmpp_buf_iov(const struct xmpp_buf *buf, struct iovec *iov)
{
	iov->iov_base = (void *)(uintptr_t)xmpp_buf_data(buf);
	iov->iov_len = xmpp_buf_len(buf);
	return iov;
}

size_t
xmpp_buf_len(const struct xmpp_buf *buf)
{
	return buf->len;
}

/* Make room for more bytes and the NUL. Return 0 or -1. */
static int
xmpp_buf_reserve(struct xmpp_buf *buf, size_t more)
{
	size_t need, cap;
	char *p;

	if (more > SIZE_MAX - buf->len - 1)
		return -1;
	need = buf->len + more + 1;
	if (need <= buf->cap)
		return 0;
	cap = buf->cap < 256 ? 256 : buf->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if ((p = realloc(buf->data, cap)) == NULL)
		return -1;
	buf->data = p;
	buf->cap = cap;
	return 0;
}

int
xmpp_buf_append(struct xmpp_buf *buf, const void *data, size_t len)
{
	if (xmpp_buf_reserve(buf, len) == -1)
		return -1;
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return 0;
}

int
xmpp_buf_printf(struct xmpp_buf *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || xmpp_buf_reserve(buf, (size_t)n) == -1)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (n < 0) {
		xmpp_buf_truncate(buf, buf->len);
		return -1;
	}
	buf->len += (size_t)n;
	return 0;
}

/* The replacement for c, or NULL to copy c; "" if XML cannot carry c. */
static const char *
xmpp_escape_char(unsigned char c)
{
	switch (c) {
	case '&':	return "&amp;";
	case '<':	return "&lt;";
	case '>':	return "&gt;";
	case '\'':	return "&apos;";
	case '"':	return "&quot;";
	case '\t':	return "&#9;";
	case '\n':	return "&#10;";
	case '\r':	return "&#13;";
	default:	return c < 0x20 ? "" : NULL;
	}
}

int
xmpp_buf_append_escaped(struct xmpp_buf *buf, const char *s, size_t len)
{
	size_t mark = buf->len, run = 0;
	const char *rep;

	for (size_t i = 0; i < len; i++) {
		if ((rep = xmpp_escape_char((unsigned char)s[i])) == NULL)
			continue;
		if (*rep == '\0' ||
		    xmpp_buf_append(buf, s + run, i - run) == -1 ||
		    xmpp_buf_append(buf, rep, strlen(rep)) == -1)
			goto fail;
		run = i + 1;
	}
	if (xmpp_buf_append(buf, s + run, len - run) == -1)
		goto fail;
	return 0;
 fail:
	xmpp_buf_truncate(buf, mark);
	return -1;
}

/*
 * Rendering helpers: each returns 0 or -1 and leaves rollback to the
 * caller, which remembers the length it started from.
 */

static int
xmpp_put(struct xmpp_buf *buf, const char *s)
{
	return xmpp_buf_append(buf, s, strlen(s));
}

/* Append " name='value'" with value escaped; nothing if value is NULL. */
static int
xmpp_put_attr(struct xmpp_buf *buf, const char *name, const char *value)
{
	if (value == NULL)
		return 0;
	if (xmpp_put(buf, " ") == -1 || xmpp_put(buf, name) == -1 ||
	    xmpp_put(buf, "='") == -1 ||
	    xmpp_buf_append_escaped(buf, value, strlen(value)) == -1)
		return -1;
	return xmpp_put(buf, "'");
}

static int
xmpp_put_text(struct xmpp_buf *buf, const char *s)
{
	return xmpp_buf_append_escaped(buf, s, strlen(s));
}

/* Append "<COND xmlns='NS'/>". */
static int
xmpp_put_condition(struct xmpp_buf *buf, const char *cond, const char *ns)
{
	if (xmpp_put(buf, "<") == -1 || xmpp_put(buf, cond) == -1 ||
	    xmpp_put_attr(buf, "xmlns", ns) == -1)
		return -1;
	return xmpp_put(buf, "/>");
}

/* Append "<text xmlns='NS' xml:lang='en'>TEXT</text>" if text is set. */
static int
xmpp_put_error_text(struct xmpp_buf *buf, const char *text, const char *ns)
{
	if (text == NULL)
		return 0;
	if (xmpp_put(buf, "<text") == -1 ||
	    xmpp_put_attr(buf, "xmlns", ns) == -1 ||
	    xmpp_put(buf, " xml:lang='en'>") == -1 ||
	    xmpp_put_text(buf, text) == -1)
		return -1;
	return xmpp_put(buf, "</text>");
}

/* Return rc; on failure, cut buf back to mark first. */
static int
xmpp_done(struct xmpp_buf *buf, size_t mark, int rc)
{
	if (rc == -1)
		xmpp_buf_truncate(buf, mark);
	return rc;
}

int
xmpp_render_header(struct xmpp_buf *buf, const struct xmpp_stream_header *h)
{
	size_t mark = buf->len;
	int rc = -1;

	if (xmpp_put(buf, "<?xml version='1.0'?><stream:stream") == -1 ||
	    xmpp_put_attr(buf, "xmlns", XMPP_NS_SERVER) == -1 ||
	    xmpp_put_attr(buf, "xmlns:stream", XMPP_NS_STREAMS) == -1 ||
	    xmpp_put_attr(buf, "xmlns:db",
	    h->dialback ? XMPP_NS_DIALBACK : NULL) == -1 ||
	    xmpp_put_attr(buf, "from", h->from) == -1 ||
	    xmpp_put_attr(buf, "to", h->to) == -1 ||
	    xmpp_put_attr(buf, "id", h->id) == -1 ||
	    xmpp_put_attr(buf, "version", h->version) == -1)
		goto out;
	rc = xmpp_put(buf, ">");
 out:
	return xmpp_done(buf, mark, rc);
}

int
xmpp_render_close(struct xmpp_buf *buf)
{
	return xmpp_put(buf, "</stream:stream>");
}

int
xmpp_render_features(struct xmpp_buf *buf, const struct xmpp_features *f)
{
	size_t mark = buf->len;
	bool tls = f->starttls || f->starttls_required;
	int rc = -1;

	if (!tls && !f->sasl_external && !f->dialback && !f->bidi)
		return xmpp_put(buf, "<stream:features/>");
	if (xmpp_put(buf, "<stream:features>") == -1)
		goto out;
	if (f->starttls_required) {
		if (xmpp_put(buf, "<starttls xmlns='" XMPP_NS_TLS "'>"
		    "<required/></starttls>") == -1)
			goto out;
	} else if (tls &&
	    xmpp_put(buf, "<starttls xmlns='" XMPP_NS_TLS "'/>") == -1)
		goto out;
	if (f->sasl_external &&
	    xmpp_put(buf, "<mechanisms xmlns='" XMPP_NS_SASL "'>"
	    "<mechanism>EXTERNAL</mechanism></mechanisms>") == -1)
		goto out;
	if (f->dialback &&
	    xmpp_put(buf, "<dialback xmlns='" XMPP_NS_DIALBACK_FEATURES "'>"
	    "<errors/></dialback>") == -1)
		goto out;
	if (f->bidi &&
	    xmpp_put(buf, "<bidi xmlns='" XMPP_NS_BIDI_FEATURES "'/>") == -1)
		goto out;
	rc = xmpp_put(buf, "</stream:features>");
 out:
	return xmpp_done(buf, mark, rc);
}

int
xmpp_render_starttls(struct xmpp_buf *buf)
{
	return xmpp_put(buf, "<starttls xmlns='" XMPP_NS_TLS "'/>");
}

int
xmpp_render_bidi(struct xmpp_buf *buf)
{
	return xmpp_put(buf, "<bidi xmlns='" XMPP_NS_BIDI "'/>");
}

int
xmpp_render_tls_proceed(struct xmpp_buf *buf)
{
	return xmpp_put(buf, "<proceed xmlns='" XMPP_NS_TLS "'/>");
}

int
xmpp_render_tls_failure(struct xmpp_buf *buf)
{
	return xmpp_put(buf, "<failure xmlns='" XMPP_NS_TLS "'/>");
}

int
xmpp_render_sasl_auth_external(struct xmpp_buf *buf, const char *authzid)
{
	size_t mark = buf->len, len, b64len;
	int rc = -1, n;

	if (xmpp_put(buf, "<auth xmlns='" XMPP_NS_SASL "' "
	    "mechanism='EXTERNAL'>") == -1)
		goto out;
	if (authzid == NULL || *authzid == '\0') {
		if (xmpp_put(buf, "=") == -1)
			goto out;
	} else {
		len = strlen(authzid);
		if (len > INT_MAX / 2)
			goto out;
		b64len = (len + 2) / 3 * 4;
		if (xmpp_buf_reserve(buf, b64len) == -1)
			goto out;
		n = EVP_EncodeBlock((unsigned char *)buf->data + buf->len,
		    (const unsigned char *)authzid, (int)len);
		if (n < 0 || (size_t)n != b64len)
			goto out;
		buf->len += b64len;
		buf->data[buf->len] = '\0';
	}
	rc = xmpp_put(buf, "</auth>");
 out:
	return xmpp_done(buf, mark, rc);
}

/* Whether data (len characters) is the one base64 text of the n bytes at
 * raw: no stray bits in the last character (RFC 4648 3.5). */
static bool
xmpp_base64_is_canonical(const unsigned char *raw, size_t n, const char *data,
    size_t len)
{
	unsigned char *again;
	bool same;

	if ((again = malloc(len + 1)) == NULL)
		return false;
	same = EVP_EncodeBlock(again, raw, (int)n) == (int)len &&
	    memcmp(again, data, len) == 0;
	free(again);
	return same;
}

enum xmpp_sasl_error
xmpp_sasl_external_read(const char *mechanism, const char *data, char *out,
    size_t outlen)
{
	size_t len = data != NULL ? strlen(data) : 0, pad = 0;
	unsigned char *buf;
	int n;

	if (outlen == 0)
		return XMPP_SASL_INVALID_AUTHZID;
	out[0] = '\0';
	if (mechanism == NULL || strcmp(mechanism, "EXTERNAL") != 0)
		return XMPP_SASL_INVALID_MECHANISM;
	if (len == 0 || strcmp(data, "=") == 0)
		return XMPP_SASL_ERROR_COUNT;
	if (len % 4 != 0 || len > INT_MAX ||
	    strspn(data, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/=") != len)
		return XMPP_SASL_INCORRECT_ENCODING;
	while (pad < 2 && data[len - 1 - pad] == '=')
		pad++;
	if (strchr(data, '=') != (pad > 0 ? data + len - pad : NULL))
		return XMPP_SASL_INCORRECT_ENCODING;	/* '=' inside */
	if (len / 4 * 3 - pad >= outlen)
		return XMPP_SASL_INVALID_AUTHZID;
	if ((buf = malloc(len / 4 * 3 + 1)) == NULL)
		return XMPP_SASL_TEMPORARY_AUTH_FAILURE;
	n = EVP_DecodeBlock(buf, (const unsigned char *)data, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(buf);
		return XMPP_SASL_INCORRECT_ENCODING;
	}
	n -= (int)pad;			/* padding decodes as NULs */
	if (!xmpp_base64_is_canonical(buf, (size_t)n, data, len)) {
		free(buf);
		return XMPP_SASL_INCORRECT_ENCODING;
	}
	if (memchr(buf, '\0', (size_t)n) != NULL) {
		free(buf);
		return XMPP_SASL_INVALID_AUTHZID;
	}
	memcpy(out, buf, (size_t)n);
	out[n] = '\0';
	free(buf);
	return XMPP_SASL_ERROR_COUNT;
}

int
xmpp_render_sasl_success(struct xmpp_buf *buf)
{
	return xmpp_put(buf, "<success xmlns='" XMPP_NS_SASL "'/>");
}

int
xmpp_render_sasl_failure(struct xmpp_buf *buf, enum xmpp_sasl_error e)
{
	const char *cond = xmpp_sasl_error_name(e);
	size_t mark = buf->len;
	int rc = -1;

	if (cond == NULL)
		return -1;
	if (xmpp_put(buf, "<failure xmlns='" XMPP_NS_SASL "'><") == -1 ||
	    xmpp_put(buf, cond) == -1)
		goto out;
	rc = xmpp_put(buf, "/></failure>");
 out:
	return xmpp_done(buf, mark, rc);
}

int
xmpp_render_stream_error(struct xmpp_buf *buf, enum xmpp_stream_error e,
    const char *text)
{
	const char *cond = xmpp_stream_error_name(e);
	size_t mark = buf->len;
	int rc = -1;

	if (cond == NULL || e == XMPP_STREAM_SEE_OTHER_HOST)
		return -1;
	if (xmpp_put(buf, "<stream:error>") == -1 ||
	    xmpp_put_condition(buf, cond, XMPP_NS_STREAM_ERRORS) == -1 ||
	    xmpp_put_error_text(buf, text, XMPP_NS_STREAM_ERRORS) == -1)
		goto out;
	rc = xmpp_put(buf, "</stream:error></stream:stream>");
 out:
	return xmpp_done(buf, mark, rc);
}

int
xmpp_render_ping(struct xmpp_buf *buf, const char *from, const char *to,
    const char *id)
{
	size_t mark = buf->len;
	int rc = -1;

	if (from == NULL || to == NULL || id == NULL)
		return -1;
	if (xmpp_put(buf, "<iq type='get'") == -1 ||
	    xmpp_put_attr(buf, "from", from) == -1 ||
	    xmpp_put_attr(buf, "to", to) == -1 ||
	    xmpp_put_attr(buf, "id", id) == -1)
		goto out;
	rc = xmpp_put(buf, "><ping xmlns='" XMPP_NS_PING "'/></iq>");
 out:
	return xmpp_done(buf, mark, rc);
}

int
xmpp_render_sm_enable(struct xmpp_buf *buf)
{
	return xmpp_put(buf, "<enable xmlns='" XMPP_NS_SM "'/>");
}

int
xmpp_render_sm_request(struct xmpp_buf *buf)
{
	return xmpp_put(buf, "<r xmlns='" XMPP_NS_SM "'/>");
}

int
xmpp_render_sm_answer(struct xmpp_buf *buf, uint32_t h)
{
	char a[64];

	snprintf(a, sizeof(a), "<a xmlns='" XMPP_NS_SM "' h='%" PRIu32 "'/>",
	    h);
	return xmpp_put(buf, a);
}

/* Render <db:NAME from to [id]>KEY</db:NAME>. */
static int
xmpp_render_db_request(struct xmpp_buf *buf, const char *name,
    const char *from, const char *to, const char *id, const char *key)
{
	size_t mark = buf->len;
	int rc = -1;

	if (from == NULL || to == NULL || key == NULL)
		return -1;
	if (xmpp_put(buf, "<db:") == -1 || xmpp_put(buf, name) == -1 ||
	    xmpp_put_attr(buf, "from", from) == -1 ||
	    xmpp_put_attr(buf, "to", to) == -1 ||
	    xmpp_put_attr(buf, "id", id) == -1 ||
	    xmpp_put(buf, ">") == -1 || xmpp_put_text(buf, key) == -1 ||
	    xmpp_put(buf, "</db:") == -1 || xmpp_put(buf, name) == -1)
		goto out;
	rc = xmpp_put(buf, ">");
 out:
	return xmpp_done(buf, mark, rc);
}

int
xmpp_render_db_result(struct xmpp_buf *buf, const char *from, const char *to,
    const char *key)
{
	return xmpp_render_db_request(buf, "result", from, to, NULL, key);
}

int
xmpp_render_db_verify(struct xmpp_buf *buf, const char *from, const char *to,
    const char *id, const char *key)
{
	if (id == NULL)
		return -1;
	return xmpp_render_db_request(buf, "verify", from, to, id, key);
}

/* Append "<error type='T'[ by='BY']><COND xmlns=stanzas/>[<text/>]</error>". */
static int
xmpp_put_stanza_error(struct xmpp_buf *buf, enum xmpp_stanza_error e,
    const char *by, const char *text)
{
	const char *cond = xmpp_stanza_error_name(e);

	if (cond == NULL)
		return -1;
	if (xmpp_put(buf, "<error") == -1 ||
	    xmpp_put_attr(buf, "type",
	    xmpp_error_type_name(xmpp_stanza_error_type(e))) == -1 ||
	    xmpp_put_attr(buf, "by", by) == -1 || xmpp_put(buf, ">") == -1 ||
	    xmpp_put_condition(buf, cond, XMPP_NS_STANZA_ERRORS) == -1 ||
	    xmpp_put_error_text(buf, text, XMPP_NS_STANZA_ERRORS) == -1)
		return -1;
	return xmpp_put(buf, "</error>");
}

/* Render <db:NAME from to [id] type='T'/>, or with an <error/> child. */
static int
xmpp_render_db_reply(struct xmpp_buf *buf, const char *name,
    const char *from, const char *to, const char *id, enum xmpp_db_type type,
    enum xmpp_stanza_error e)
{
	size_t mark = buf->len;
	int rc = -1;

	if (from == NULL || to == NULL ||
	    (type != XMPP_DB_VALID && type != XMPP_DB_INVALID &&
	    type != XMPP_DB_ERROR))
		return -1;
	if (xmpp_put(buf, "<db:") == -1 || xmpp_put(buf, name) == -1 ||
	    xmpp_put_attr(buf, "from", from) == -1 ||
	    xmpp_put_attr(buf, "to", to) == -1 ||
	    xmpp_put_attr(buf, "id", id) == -1 ||
	    xmpp_put_attr(buf, "type", xmpp_db_type_name(type)) == -1)
		goto out;
	if (type != XMPP_DB_ERROR) {
		rc = xmpp_put(buf, "/>");
		goto out;
	}
	if (xmpp_put(buf, ">") == -1 ||
	    xmpp_put_stanza_error(buf, e, NULL, NULL) == -1 ||
	    xmpp_put(buf, "</db:") == -1 || xmpp_put(buf, name) == -1)
		goto out;
	rc = xmpp_put(buf, ">");
 out:
	return xmpp_done(buf, mark, rc);
}

int
xmpp_render_db_result_reply(struct xmpp_buf *buf, const char *from,
    const char *to, enum xmpp_db_type type, enum xmpp_stanza_error e)
{
	return xmpp_render_db_reply(buf, "result", from, to, NULL, type, e);
}

int
xmpp_render_db_verify_reply(struct xmpp_buf *buf, const char *from,
    const char *to, const char *id, enum xmpp_db_type type,
    enum xmpp_stanza_error e)
{
	if (id == NULL)
		return -1;
	return xmpp_render_db_reply(buf, "verify", from, to, id, type, e);
}

bool
xmpp_stanza_may_bounce(const char *name, const char *type)
{
	if (name == NULL)
		return false;
	if (type != NULL && strcmp(type, "error") == 0)
		return false;
	if (strcmp(name, "message") == 0)
		return true;
	if (strcmp(name, "iq") == 0)
		return type != NULL &&
		    (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
	if (strcmp(name, "presence") == 0)
		return type != NULL && strcmp(type, "subscribe") == 0;
	return false;
}

int
xmpp_render_bounce(struct xmpp_buf *buf, const struct xmpp_stanza_attrs *st,
    enum xmpp_stanza_error e, const char *by, const char *text,
    const char *inner, size_t inner_len)
{
	size_t mark = buf->len;
	int rc = -1;

	if (!xmpp_stanza_may_bounce(st->name, st->type) ||
	    st->from == NULL || st->to == NULL ||
	    xmpp_stanza_error_name(e) == NULL)
		return -1;
	/* st->name is one of three literals, checked above. */
	if (xmpp_put(buf, "<") == -1 || xmpp_put(buf, st->name) == -1 ||
	    xmpp_put_attr(buf, "from", st->to) == -1 ||
	    xmpp_put_attr(buf, "to", st->from) == -1 ||
	    xmpp_put_attr(buf, "id", st->id) == -1 ||
	    xmpp_put(buf, " type='error'>") == -1 ||
	    (inner != NULL && xmpp_buf_append(buf, inner, inner_len) == -1) ||
	    xmpp_put_stanza_error(buf, e, by, text) == -1 ||
	    xmpp_put(buf, "</") == -1 || xmpp_put(buf, st->name) == -1)
		goto out;
	rc = xmpp_put(buf, ">");
 out:
	return xmpp_done(buf, mark, rc);
}

bool
xmpp_features_offer_external(const struct xmlstream_node *features)
{
	const struct xmlstream_node *m, *c;

	m = xmlstream_node_child(features, XMPP_NS_SASL, "mechanisms");
	for (c = m != NULL ? m->child : NULL; c != NULL; c = c->next)
		if (strcmp(c->name, "mechanism") == 0 &&
		    strcmp(c->text, "EXTERNAL") == 0)
			return true;
	return false;
}
