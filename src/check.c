/*
 * check: the sans-I/O half of `fedgatectl check` (check.h): the report,
 * the outcome, and the probe's state machine. Bytes and events in, steps
 * and bytes to write out; no sockets, no timers, no TLS objects.
 */
#include "fgconfig.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "check.h"
#include "log.h"
#include "util.h"
#include "xmlstream.h"
#include "xmpp.h"

static const char *const check_verdict_names[] = {
	[CHECK_OK] = "ok",
	[CHECK_WARN] = "warn",
	[CHECK_FAIL] = "fail",
	[CHECK_SKIP] = "skip",
};

static const char *const check_outcome_names[] = {
	[CHECK_WORKS] = "yes",
	[CHECK_BROKEN] = "no",
	[CHECK_UNKNOWN] = "unknown",
};

static const char *const check_probe_state_names[] = {
	[CHECK_PROBE_CONNECTING] = "connecting",
	[CHECK_PROBE_WAIT_HEADER] = "wait-header",
	[CHECK_PROBE_WAIT_FEATURES] = "wait-features",
	[CHECK_PROBE_WAIT_PROCEED] = "wait-proceed",
	[CHECK_PROBE_STARTTLS] = "tls",
	[CHECK_PROBE_WAIT_HEADER_TLS] = "wait-header-tls",
	[CHECK_PROBE_WAIT_FEATURES_TLS] = "wait-features-tls",
	[CHECK_PROBE_CLOSING] = "closing",
	[CHECK_PROBE_DONE] = "done",
};

/* Allowed transitions: from -> bitmask of targets. Any state may end. */
#define B(s)	(1u << (s))
static const unsigned check_probe_transitions[] = {
	[CHECK_PROBE_CONNECTING] = B(CHECK_PROBE_WAIT_HEADER) |
	    B(CHECK_PROBE_STARTTLS),
	[CHECK_PROBE_WAIT_HEADER] = B(CHECK_PROBE_WAIT_FEATURES),
	[CHECK_PROBE_WAIT_FEATURES] = B(CHECK_PROBE_WAIT_PROCEED) |
	    B(CHECK_PROBE_CLOSING),
	[CHECK_PROBE_WAIT_PROCEED] = B(CHECK_PROBE_STARTTLS),
	[CHECK_PROBE_STARTTLS] = B(CHECK_PROBE_WAIT_HEADER_TLS),
	[CHECK_PROBE_WAIT_HEADER_TLS] = B(CHECK_PROBE_WAIT_FEATURES_TLS),
	[CHECK_PROBE_WAIT_FEATURES_TLS] = B(CHECK_PROBE_CLOSING),
	[CHECK_PROBE_CLOSING] = 0,
	[CHECK_PROBE_DONE] = 0,
};
#undef B

struct check_probe {
	enum check_probe_state	 state;
	enum check_probe_mode	 mode;
	struct check_report	*report;
	char			 subject[CHECK_SUBJECT_MAX];
	char			 from[CHECK_SUBJECT_MAX];	/* "" none */
	char			 to[CHECK_SUBJECT_MAX];
	char			 domain[CHECK_SUBJECT_MAX];
	enum policy_tls		 tls;
	enum policy_verify	 verify;
	struct xmlstream	*xs;
	struct xmpp_buf		*out;
	size_t			 bytes_in;
	bool			 failed;
	bool			 encrypted;	/* TLS done */
	bool			 db_declared;	/* header declared xmlns:db */
};

enum check_verdict
check_report_add(struct check_report *r, const char *name,
    const char *subject, enum check_verdict v, const char *fmt, ...)
{
	struct check_step *s;
	va_list ap;

	if (r->nsteps >= CHECK_STEPS_MAX) {
		r->dropped++;
		return v;
	}
	s = &r->step[r->nsteps++];
	strlcpy(s->name, name, sizeof(s->name));
	strlcpy(s->subject, subject != NULL ? subject : "",
	    sizeof(s->subject));
	s->verdict = v;
	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
	va_end(ap);
	return v;
}

const char *
check_verdict_name(enum check_verdict v)
{
	if ((size_t)v >= nitems(check_verdict_names))
		return "unknown";
	return check_verdict_names[v];
}

enum check_outcome
check_outcome(const struct check_tally *t)
{
	if (t->fatal > 0)
		return CHECK_BROKEN;
	if (t->working > 0)
		return CHECK_WORKS;
	if (t->unknown > 0)
		return CHECK_UNKNOWN;
	return CHECK_BROKEN;
}

const char *
check_outcome_name(enum check_outcome o)
{
	if ((size_t)o >= nitems(check_outcome_names))
		return "unknown";
	return check_outcome_names[o];
}

/*
 * The probe
 */

const char *
check_probe_state_name(enum check_probe_state s)
{
	if ((size_t)s >= nitems(check_probe_state_names))
		return "unknown";
	return check_probe_state_names[s];
}

static void
check_probe_enter_state(struct check_probe *p, enum check_probe_state next)
{
	if (next != CHECK_PROBE_DONE &&
	    (check_probe_transitions[p->state] & (1u << next)) == 0)
		fatalx("check: %s: bad transition %s -> %s", p->subject,
		    check_probe_state_names[p->state],
		    check_probe_state_names[next]);
	log_debug("check: %s: %s -> %s", p->subject,
	    check_probe_state_names[p->state], check_probe_state_names[next]);
	p->state = next;
}

struct check_probe *
check_probe_new(struct check_report *report,
    const struct check_probe_params *params)
{
	struct check_probe *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if ((p->xs = xmlstream_new(NULL)) == NULL ||
	    (p->out = xmpp_buf_new()) == NULL) {
		check_probe_free(p);
		return NULL;
	}
	p->report = report;
	p->mode = params->mode;
	p->tls = params->tls;
	p->verify = params->verify;
	strlcpy(p->subject, params->subject, sizeof(p->subject));
	strlcpy(p->from, params->from != NULL ? params->from : "",
	    sizeof(p->from));
	strlcpy(p->to, params->to, sizeof(p->to));
	strlcpy(p->domain, params->domain, sizeof(p->domain));
	return p;
}

void
check_probe_free(struct check_probe *p)
{
	if (p == NULL)
		return;
	xmlstream_free(p->xs);
	xmpp_buf_free(p->out);
	free(p);
}

enum check_probe_state
check_probe_state(const struct check_probe *p)
{
	return p->state;
}

bool
check_probe_has_failed(const struct check_probe *p)
{
	return p->failed;
}

struct xmpp_buf *
check_probe_output(struct check_probe *p)
{
	return p->out;
}

/* Add a step about p's address; a fail marks the probe failed. */
static enum check_verdict __attribute__((format(printf, 4, 5)))
check_probe_step(struct check_probe *p, const char *name,
    enum check_verdict v, const char *fmt, ...)
{
	char reason[CHECK_REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (v == CHECK_FAIL)
		p->failed = true;
	return check_report_add(p->report, name, p->subject, v, "%s", reason);
}

/* The step a failure in state s belongs to. */
static const char *
check_probe_step_of(enum check_probe_state s)
{
	switch (s) {
	case CHECK_PROBE_CONNECTING:
		return "tcp";
	case CHECK_PROBE_WAIT_HEADER:
	case CHECK_PROBE_WAIT_HEADER_TLS:
		return "stream";
	case CHECK_PROBE_WAIT_FEATURES:
	case CHECK_PROBE_WAIT_FEATURES_TLS:
		return "features";
	case CHECK_PROBE_WAIT_PROCEED:
		return "starttls";
	case CHECK_PROBE_STARTTLS:
		return "tls";
	default:
		return "close";
	}
}

/* Fail the step of the current state with why, and end. */
static enum check_action
check_probe_fail(struct check_probe *p, const char *why)
{
	if (p->state != CHECK_PROBE_CLOSING && p->state != CHECK_PROBE_DONE)
		check_probe_step(p, check_probe_step_of(p->state), CHECK_FAIL,
		    "%s", why);
	check_probe_enter_state(p, CHECK_PROBE_DONE);
	return CHECK_ACT_CLOSE;
}

/* Queue our stream header. */
static void
check_probe_send_header(struct check_probe *p)
{
	struct xmpp_stream_header h = {
		.from = p->from[0] != '\0' ? p->from : NULL,
		.to = p->to,
		.version = "1.0",
		.dialback = true,
	};

	xmpp_render_header(p->out, &h);
}

/* Queue </stream:stream> and wait for the peer's. */
static enum check_action
check_probe_close(struct check_probe *p)
{
	xmpp_render_close(p->out);
	check_probe_enter_state(p, CHECK_PROBE_CLOSING);
	return CHECK_ACT_NONE;
}

enum check_action
check_probe_connected(struct check_probe *p, uint64_t elapsed_ms)
{
	if (p->state != CHECK_PROBE_CONNECTING)
		return check_probe_fail(p, "connected twice");
	check_probe_step(p, "tcp", CHECK_OK, "connected in %" PRIu64 " ms",
	    elapsed_ms);
	if (p->mode == CHECK_PROBE_DIRECT_TLS) {
		check_probe_enter_state(p, CHECK_PROBE_STARTTLS);
		return CHECK_ACT_STARTTLS;
	}
	check_probe_send_header(p);
	check_probe_enter_state(p, CHECK_PROBE_WAIT_HEADER);
	return CHECK_ACT_NONE;
}

/* Whether the header declares the dialback namespace (XEP-0220 2.4.1). */
static bool
check_header_declares_db(const struct xmlstream_header *h)
{
	for (size_t i = 0; i < h->nnsdecls; i++)
		if (strcmp(h->nsdecls[i].uri, XMPP_NS_DIALBACK) == 0)
			return true;
	return false;
}

static enum check_action
check_probe_header(struct check_probe *p, const struct xmlstream_header *h)
{
	bool again = p->state == CHECK_PROBE_WAIT_HEADER_TLS;

	if (h->version == NULL || strncmp(h->version, "1.", 2) != 0)
		return check_probe_fail(p, "the peer speaks XMPP before 1.0 "
		    "(no version='1.0' in its header): no features, no TLS");
	if (h->id == NULL || h->id[0] == '\0')
		return check_probe_fail(p, "the peer's header has no id");
	p->db_declared = check_header_declares_db(h);
	if (!again) {
		if (h->from != NULL && strcasecmp(h->from, p->to) != 0)
			check_probe_step(p, "stream", CHECK_WARN, "opened, but "
			    "the peer answers as \"%s\", not %s",
			    UTIL_ESC(h->from), p->to);
		else
			check_probe_step(p, "stream", CHECK_OK, "opened from "
			    "%s to %s, XMPP %s", p->from[0] != '\0' ? p->from :
			    "(no from)", p->to, UTIL_ESC(h->version));
	}
	check_probe_enter_state(p, again ? CHECK_PROBE_WAIT_FEATURES_TLS :
	    CHECK_PROBE_WAIT_FEATURES);
	return CHECK_ACT_NONE;
}

/* "starttls (required), sasl EXTERNAL, dialback, sm" for the report. */
static void
check_features_text(const struct xmlstream_node *f, char *buf, size_t len)
{
	const struct xmlstream_node *c, *st;

	buf[0] = '\0';
	for (c = f->child; c != NULL; c = c->next) {
		if (buf[0] != '\0')
			strlcat(buf, ", ", len);
		if (strcmp(c->ns, XMPP_NS_TLS) == 0 &&
		    strcmp(c->name, "starttls") == 0) {
			st = xmlstream_node_child(c, XMPP_NS_TLS, "required");
			strlcat(buf, st != NULL ? "starttls (required)" :
			    "starttls", len);
		} else if (strcmp(c->ns, XMPP_NS_SASL) == 0)
			strlcat(buf, xmpp_features_offer_external(f) ?
			    "sasl EXTERNAL" : "sasl (no EXTERNAL)", len);
		else
			strlcat(buf, UTIL_ESC(c->name), len);
	}
	if (buf[0] == '\0')
		strlcpy(buf, "none", len);
}

/* The authentication steps, on the last features the peer sent. */
static void
check_probe_auth(struct check_probe *p, const struct xmlstream_node *f)
{
	bool db = xmlstream_node_child(f, XMPP_NS_DIALBACK_FEATURES,
	    "dialback") != NULL;
	bool ext = p->encrypted && xmpp_features_offer_external(f);

	if (db)
		check_probe_step(p, "dialback", CHECK_OK, "offered (XEP-0220)");
	else if (p->db_declared)
		check_probe_step(p, "dialback", CHECK_WARN, "not advertised in "
		    "the features, though the header declares the dialback "
		    "namespace: an old server may still accept it");
	else
		check_probe_step(p, "dialback", ext ? CHECK_WARN : CHECK_FAIL,
		    "not offered%s", ext ? "" : ", nor SASL EXTERNAL: fedgated "
		    "could not authenticate to this server");
	if (!p->encrypted)
		check_probe_step(p, "sasl-external", CHECK_SKIP,
		    "needs TLS (XEP-0178)");
	else if (ext)
		check_probe_step(p, "sasl-external", CHECK_OK,
		    "offered (XEP-0178)");
	else
		check_probe_step(p, "sasl-external", CHECK_WARN,
		    "not offered: fedgated would use dialback");
}

/* Features without STARTTLS offered (or policy tls none). */
static enum check_action
check_probe_no_tls(struct check_probe *p, bool offered, bool required)
{
	if (offered && required)
		check_probe_step(p, "starttls", CHECK_FAIL, "offered and "
		    "required by the peer, but fedgated's policy for %s is "
		    "tls none", p->domain);
	else if (offered)
		check_probe_step(p, "starttls", CHECK_SKIP, "offered, not used: "
		    "fedgated's policy for %s is tls none", p->domain);
	else
		check_probe_step(p, "starttls", p->tls == POLICY_TLS_REQUIRED ?
		    CHECK_FAIL : p->tls == POLICY_TLS_OPTIONAL ? CHECK_WARN :
		    CHECK_OK, "not offered%s", p->tls == POLICY_TLS_REQUIRED ?
		    ": fedgated's policy requires TLS" :
		    p->tls == POLICY_TLS_OPTIONAL ?
		    ": the streams would not be encrypted" :
		    " (policy tls none)");
	check_probe_step(p, "tls", CHECK_SKIP, "no TLS on this stream");
	check_probe_step(p, "certificate", CHECK_SKIP, "no TLS on this stream");
	return CHECK_ACT_NONE;
}

static enum check_action
check_probe_features(struct check_probe *p, const struct xmlstream_node *f)
{
	const struct xmlstream_node *st;
	char text[CHECK_REASON_MAX];
	bool required;

	check_features_text(f, text, sizeof(text));
	if (p->state == CHECK_PROBE_WAIT_FEATURES_TLS) {
		check_probe_step(p, "features", CHECK_OK, "after TLS: %s", text);
		check_probe_auth(p, f);
		return check_probe_close(p);
	}
	check_probe_step(p, "features", CHECK_OK, "%s", text);
	if (p->mode == CHECK_PROBE_UPSTREAM)
		return check_probe_close(p);
	st = xmlstream_node_child(f, XMPP_NS_TLS, "starttls");
	required = st != NULL &&
	    xmlstream_node_child(st, XMPP_NS_TLS, "required") != NULL;
	if (st == NULL || p->tls == POLICY_TLS_NONE) {
		check_probe_no_tls(p, st != NULL, required);
		check_probe_auth(p, f);
		return check_probe_close(p);
	}
	check_probe_step(p, "starttls", CHECK_OK, "offered%s",
	    required ? " and required" : "");
	xmpp_render_starttls(p->out);
	check_probe_enter_state(p, CHECK_PROBE_WAIT_PROCEED);
	return CHECK_ACT_NONE;
}

static bool
check_is(const struct xmlstream_node *n, const char *ns, const char *name)
{
	return strcmp(n->ns, ns) == 0 && strcmp(n->name, name) == 0;
}

/* A stream error's condition, for the report. */
static const char *
check_stream_error_text(const struct xmlstream_node *n, char *buf, size_t len)
{
	const struct xmlstream_node *c, *text = NULL, *cond = NULL;

	for (c = n->child; c != NULL; c = c->next) {
		if (strcmp(c->name, "text") == 0)
			text = c;
		else if (cond == NULL)
			cond = c;
	}
	snprintf(buf, len, "the peer sent the stream error %s", cond != NULL ?
	    UTIL_ESC(cond->name) : "(no condition)");
	if (text != NULL && text->text[0] != '\0') {
		strlcat(buf, ": ", len);
		strlcat(buf, UTIL_ESC(text->text), len);
	}
	return buf;
}

static enum check_action
check_probe_element(struct check_probe *p, const struct xmlstream_element *e)
{
	const struct xmlstream_node *n = &e->node;
	char why[CHECK_REASON_MAX];

	if (check_is(n, XMPP_NS_STREAMS, "error"))
		return check_probe_fail(p, check_stream_error_text(n, why,
		    sizeof(why)));
	switch (p->state) {
	case CHECK_PROBE_WAIT_FEATURES:
	case CHECK_PROBE_WAIT_FEATURES_TLS:
		if (check_is(n, XMPP_NS_STREAMS, "features"))
			return check_probe_features(p, n);
		break;
	case CHECK_PROBE_WAIT_PROCEED:
		if (check_is(n, XMPP_NS_TLS, "proceed")) {
			check_probe_enter_state(p, CHECK_PROBE_STARTTLS);
			return CHECK_ACT_STARTTLS;
		}
		if (check_is(n, XMPP_NS_TLS, "failure"))
			return check_probe_fail(p, "the peer answered "
			    "<starttls/> with <failure/>");
		break;
	case CHECK_PROBE_CLOSING:
		return CHECK_ACT_NONE;		/* whatever it still says */
	default:
		break;
	}
	snprintf(why, sizeof(why), "unexpected <%s/> from the peer",
	    UTIL_ESC(n->name));
	return check_probe_fail(p, why);
}

/* One event of the framer. */
static enum check_action
check_probe_event(struct check_probe *p, enum xmlstream_event ev)
{
	char why[CHECK_REASON_MAX];

	switch (ev) {
	case XMLSTREAM_HEADER:
		if (p->state == CHECK_PROBE_WAIT_HEADER ||
		    p->state == CHECK_PROBE_WAIT_HEADER_TLS)
			return check_probe_header(p, xmlstream_header(p->xs));
		return check_probe_fail(p, "a second stream header");
	case XMLSTREAM_ELEMENT:
		return check_probe_element(p, xmlstream_element(p->xs));
	case XMLSTREAM_END:
		if (p->state == CHECK_PROBE_CLOSING) {
			check_probe_enter_state(p, CHECK_PROBE_DONE);
			return CHECK_ACT_CLOSE;
		}
		return check_probe_fail(p, "the peer closed the stream");
	case XMLSTREAM_ERROR:
		snprintf(why, sizeof(why), "the peer's XML is bad: %s%s%s",
		    xmlstream_error_name(xmlstream_last_error(p->xs)),
		    xmlstream_error_detail(p->xs)[0] != '\0' ? ": " : "",
		    xmlstream_error_detail(p->xs));
		return check_probe_fail(p, why);
	default:
		return CHECK_ACT_NONE;
	}
}

enum check_action
check_probe_input(struct check_probe *p, const char *buf, size_t len,
    size_t *used)
{
	enum check_action act = CHECK_ACT_NONE;
	enum xmlstream_event ev;
	size_t off = 0, n;
	char why[96];

	*used = 0;
	if (p->state == CHECK_PROBE_DONE)
		return CHECK_ACT_CLOSE;
	if (len == 0)
		return CHECK_ACT_NONE;
	if (p->state == CHECK_PROBE_CONNECTING ||
	    p->state == CHECK_PROBE_STARTTLS) {
		*used = len;
		return check_probe_fail(p, "bytes before the stream began");
	}
	while (off < len && act == CHECK_ACT_NONE &&
	    p->state != CHECK_PROBE_DONE) {
		ev = xmlstream_feed(p->xs, buf + off, len - off, &n);
		if (ev != XMLSTREAM_ERROR)
			off += n;
		p->bytes_in += ev != XMLSTREAM_ERROR ? n : 0;
		if (p->bytes_in > CHECK_INPUT_MAX) {
			snprintf(why, sizeof(why), "more than %d bytes from the "
			    "peer", CHECK_INPUT_MAX);
			act = check_probe_fail(p, why);
			break;
		}
		if (ev == XMLSTREAM_MORE)
			break;
		act = check_probe_event(p, ev);
	}
	*used = act == CHECK_ACT_CLOSE ? len : off;
	return act;
}

/* "2027-03-01" of t, or "unknown". */
static const char *
check_date(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		strlcpy(buf, "unknown", len);
	return buf;
}

static void
check_probe_certificate(struct check_probe *p, const struct check_tls_info *i)
{
	enum check_verdict bad = p->verify == POLICY_VERIFY_NONE ?
	    CHECK_WARN : CHECK_FAIL;
	char date[40];
	const char *names = i->names != NULL && i->names[0] != '\0' ?
	    i->names : "no names";

	check_date(i->not_after, date, sizeof(date));
	switch (i->status) {
	case TLS_PEER_VALID:
		check_probe_step(p, "certificate", CHECK_OK, "valid for %s "
		    "(names: %s), expires %s%s", p->domain, names, date,
		    i->not_after >= 0 && i->not_after - i->now < 14 * 86400 ?
		    ", in less than 14 days" : "");
		break;
	case TLS_PEER_MISMATCH:
		check_probe_step(p, "certificate", bad, "not valid for %s: "
		    "valid for %s; expires %s", p->domain, names, date);
		break;
	case TLS_PEER_INVALID:
		check_probe_step(p, "certificate", bad, "not trusted: %s "
		    "(names: %s; expires %s)", i->chain_error != NULL ?
		    i->chain_error : "invalid chain", names, date);
		break;
	default:
		check_probe_step(p, "certificate", bad, "the peer presented "
		    "no certificate");
		break;
	}
}

enum check_action
check_probe_tls_done(struct check_probe *p, const struct check_tls_info *info)
{
	if (p->state != CHECK_PROBE_STARTTLS)
		return check_probe_fail(p, "TLS finished out of turn");
	p->encrypted = true;
	if (p->mode == CHECK_PROBE_DIRECT_TLS)
		check_probe_step(p, "starttls", CHECK_SKIP, "direct TLS "
		    "(XEP-0368): TLS from the first byte");
	check_probe_step(p, "tls", CHECK_OK, "%s", info->description);
	check_probe_certificate(p, info);
	if (xmlstream_reset(p->xs) == -1)
		return check_probe_fail(p, "out of memory");
	check_probe_send_header(p);
	check_probe_enter_state(p, CHECK_PROBE_WAIT_HEADER_TLS);
	return CHECK_ACT_NONE;
}

enum check_action
check_probe_failed(struct check_probe *p, const char *why)
{
	if (p->state == CHECK_PROBE_CLOSING || p->state == CHECK_PROBE_DONE) {
		p->state = CHECK_PROBE_DONE;
		return CHECK_ACT_CLOSE;
	}
	return check_probe_fail(p, why);
}

enum check_action
check_probe_timeout(struct check_probe *p, uint64_t timeout_ms)
{
	char why[CHECK_REASON_MAX], t[32];

	if (p->state == CHECK_PROBE_CLOSING || p->state == CHECK_PROBE_DONE) {
		p->state = CHECK_PROBE_DONE;
		return CHECK_ACT_CLOSE;
	}
	snprintf(why, sizeof(why), "no answer within %s (waiting for %s)",
	    util_duration_str(timeout_ms, t, sizeof(t)),
	    p->state == CHECK_PROBE_CONNECTING ? "the TCP connect" :
	    p->state == CHECK_PROBE_STARTTLS ? "the TLS handshake" :
	    p->state == CHECK_PROBE_WAIT_PROCEED ? "<proceed/>" :
	    p->state == CHECK_PROBE_WAIT_HEADER ||
	    p->state == CHECK_PROBE_WAIT_HEADER_TLS ? "the stream header" :
	    "the stream features");
	return check_probe_fail(p, why);
}
