/*
 * stream_in: the incoming stream's decisions (stream_in.h). Everything
 * here is a function of the stream, the event and the read-only context;
 * what happens next is written into the caller's actions.
 *
 * On the public face the stream's local domain is a local name's public
 * name (a local domain's, or of a subdomain it covers: local.h) and the
 * remote one a remote domain; on the internal face the local domain is
 * the remote domain fedgated presents itself as, and the remote one the
 * internal server's (internal) name. Whether a name is local is
 * local_find()'s answer, everywhere.
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialback.h"
#include "local.h"
#include "stream_in.h"
#include "util.h"

static const char *const stream_in_state_names[] = {
	[STREAM_IN_WAIT_HEADER] = "wait-header",
	[STREAM_IN_OPEN] = "open",
	[STREAM_IN_TLS] = "tls",
	[STREAM_IN_CLOSED] = "closed",
};

#define S(x)	(1u << (x))
/* Allowed transitions; any state may go to closed. */
static const unsigned stream_in_transitions[] = {
	[STREAM_IN_WAIT_HEADER] = S(STREAM_IN_OPEN),
	[STREAM_IN_OPEN] = S(STREAM_IN_TLS) | S(STREAM_IN_WAIT_HEADER),
	[STREAM_IN_TLS] = S(STREAM_IN_WAIT_HEADER),
	[STREAM_IN_CLOSED] = 0,
};
#undef S

const char *
stream_in_state_name(enum stream_in_state st)
{
	return stream_in_state_names[st];
}

/*
 * A pair from -> to, zeroed but for its names, which live in the same
 * allocation after its s->pair_size bytes (the driver's part included).
 * NULL if out of memory.
 */
static struct stream_pair *
stream_in_new_pair(const struct stream_in *s, const char *from,
    const char *to)
{
	size_t flen = strlen(from) + 1, tlen = strlen(to) + 1;
	struct stream_pair *p;
	char *names;

	if ((p = calloc(1, s->pair_size + flen + tlen)) == NULL)
		return NULL;
	names = (char *)p + s->pair_size;
	memcpy(names, from, flen);
	memcpy(names + flen, to, tlen);
	p->from = names;
	p->to = names + flen;
	return p;
}

static void
stream_in_free_pair(struct stream_pair *p)
{
	free(p->mapped);
	free(p);
}

void
stream_in_init(struct stream_in *s, enum config_face face, char *local,
    char *remote, struct policy_settings *policy, size_t pair_size)
{
	memset(s, 0, sizeof(*s));
	s->state = STREAM_IN_WAIT_HEADER;
	s->face = face;
	s->local = local;
	s->remote = remote;
	s->policy = policy;
	s->pair_size = pair_size < sizeof(struct stream_pair) ?
	    sizeof(struct stream_pair) : pair_size;
	TAILQ_INIT(&s->pairs);
	TAILQ_INIT(&s->dead);
}

int
stream_in_init_reverse(struct stream_in *s, enum config_face face,
    char *local, char *remote, struct policy_settings *policy,
    size_t pair_size, enum leg_auth auth)
{
	struct stream_pair *p;

	stream_in_init(s, face, local, remote, policy, pair_size);
	s->state = STREAM_IN_OPEN;
	s->opened = true;
	s->peer_version = true;
	s->bidi = true;
	s->reverse = true;
	s->auth = auth;
	if ((p = stream_in_new_pair(s, remote, local)) == NULL)
		return -1;
	p->auth = auth;
	TAILQ_INSERT_TAIL(&s->pairs, p, entry);
	s->npairs = 1;
	return 0;
}

static void
stream_in_bury(struct stream_in *s)
{
	struct stream_pair *p;

	while ((p = TAILQ_FIRST(&s->dead)) != NULL) {
		TAILQ_REMOVE(&s->dead, p, entry);
		stream_in_free_pair(p);
	}
}

void
stream_in_clear(struct stream_in *s)
{
	struct stream_pair *p;

	while ((p = TAILQ_FIRST(&s->pairs)) != NULL) {
		TAILQ_REMOVE(&s->pairs, p, entry);
		stream_in_free_pair(p);
	}
	stream_in_bury(s);
	s->npairs = 0;
	s->relay_pair = NULL;
}

/* Start the actions of an event. */
static void
stream_in_begin(struct stream_in *s, struct stream_in_actions *a)
{
	a->n = 0;
	a->textlen = 0;
	a->text[0] = '\0';
	stream_in_bury(s);
}

/* Append an action of kind what; the last slot is kept for a close. */
static struct stream_in_action *
stream_in_do(struct stream_in_actions *a, enum stream_in_do what)
{
	struct stream_in_action *x;

	if (a->n >= STREAM_IN_ACTIONS_MAX)	/* a bug: keep the last one */
		a->n = STREAM_IN_ACTIONS_MAX - 1;
	x = &a->a[a->n++];
	memset(x, 0, sizeof(*x));
	x->what = what;
	x->cond = XMPP_STREAM_ERROR_COUNT;
	x->stanza_cond = XMPP_STANZA_ERROR_COUNT;
	x->sasl = XMPP_SASL_ERROR_COUNT;
	return x;
}

/* Format into a's text; return the text (truncated if need be). */
static const char * __attribute__((format(printf, 2, 0)))
stream_in_vtext(struct stream_in_actions *a, const char *fmt, va_list ap)
{
	char *t = a->text + a->textlen;
	size_t room = sizeof(a->text) - a->textlen;
	int n;

	if (room <= 1)
		return "";
	n = vsnprintf(t, room, fmt, ap);
	if (n < 0)
		t[0] = '\0';
	a->textlen += n < 0 ? 1 : (size_t)n >= room ? room : (size_t)n + 1;
	return t;
}

static const char * __attribute__((format(printf, 2, 3)))
stream_in_text(struct stream_in_actions *a, const char *fmt, ...)
{
	const char *t;
	va_list ap;

	va_start(ap, fmt);
	t = stream_in_vtext(a, fmt, ap);
	va_end(ap);
	return t;
}

/*
 * A copy of s (NULL stays NULL) in a's text, for an action naming a
 * domain: the caller's s may be gone (a local buffer) when the driver
 * runs the actions.
 */
static const char *
stream_in_keep(struct stream_in_actions *a, const char *s)
{
	return s != NULL ? stream_in_text(a, "%s", s) : NULL;
}

static void
stream_in_enter_state(struct stream_in *s, enum stream_in_state next,
    struct stream_in_actions *a)
{
	if (next != STREAM_IN_CLOSED && next != s->state &&
	    (stream_in_transitions[s->state] & (1u << next)) == 0) {
		struct stream_in_action *x = stream_in_do(a, STREAM_IN_CLOSE);

		x->cond = XMPP_STREAM_INTERNAL_SERVER_ERROR;
		x->why = stream_in_text(a, "internal error (bad state "
		    "transition %s -> %s)", stream_in_state_names[s->state],
		    stream_in_state_names[next]);
		s->state = STREAM_IN_CLOSED;
		return;
	}
	s->state = next;
	stream_in_do(a, STREAM_IN_STATE)->state = next;
}

/* Close the stream with cond (COUNT: cleanly), for the reason fmt. */
static void __attribute__((format(printf, 5, 6)))
stream_in_close(struct stream_in *s, struct stream_in_actions *a,
    enum xmpp_stream_error cond, bool refused, const char *fmt, ...)
{
	struct stream_in_action *x;
	const char *why;
	va_list ap;

	va_start(ap, fmt);
	why = stream_in_vtext(a, fmt, ap);
	va_end(ap);
	x = stream_in_do(a, STREAM_IN_CLOSE);
	x->cond = cond;
	x->yes = refused;
	x->why = why;
	s->state = STREAM_IN_CLOSED;
}

/* Refuse the stream with cond: a close that says "refused: ...". */
#define stream_in_refuse(s, a, cond, ...) \
	stream_in_close((s), (a), (cond), true, __VA_ARGS__)

/* Normalise s into out; false if absent or invalid. */
static bool
stream_in_domain(const char *s, char *out)
{
	return s != NULL && jid_domain_normalize(s, out, JID_DOMAIN_MAX) == 0;
}

/* Whether name (normalised) is ours on s's face (local.h): a local
 * name outside, or, on the internal face, a name of the inside. */
static bool
stream_in_is_local(const struct stream_in *s, const struct stream_in_ctx *c,
    const char *name)
{
	return local_is(c->config, s->face, name);
}

/* The face's checks of the header's to and from (normalised). */
static int
stream_in_check_faces(struct stream_in *s, const struct stream_in_ctx *c,
    const char *to, const char *from, struct stream_in_actions *a)
{
	struct policy_match m;

	if (s->face == CONFIG_FACE_PUBLIC) {
		if (!stream_in_is_local(s, c, to))
			return stream_in_refuse(s, a, XMPP_STREAM_HOST_UNKNOWN,
			    "%s is not a local domain", to), -1;
		if (from[0] != '\0' && stream_in_is_local(s, c, from))
			return stream_in_refuse(s, a, XMPP_STREAM_INVALID_FROM,
			    "%s is a local domain", from), -1;
		policy_match(c->config->policy, from[0] != '\0' ? from :
		    "default.invalid", &m);
		if (from[0] != '\0' && !m.settings.allow)
			return stream_in_refuse(s, a,
			    XMPP_STREAM_POLICY_VIOLATION,
			    "%s is denied by policy", from), -1;
	} else {
		if (stream_in_is_local(s, c, to))
			return stream_in_refuse(s, a, XMPP_STREAM_HOST_UNKNOWN,
			    "%s is a local domain", to), -1;
		if (from[0] != '\0' && !stream_in_is_local(s, c, from))
			return stream_in_refuse(s, a, XMPP_STREAM_INVALID_FROM,
			    "%s is not a local domain", from), -1;
		policy_match(c->config->policy, to, &m);
		if (!m.settings.allow)
			return stream_in_refuse(s, a,
			    XMPP_STREAM_POLICY_VIOLATION,
			    "%s is denied by policy", to), -1;
	}
	*s->policy = m.settings;
	return 0;
}

/* A NOTE for the log, about from->to (NULL, NULL: the stream). */
static void __attribute__((format(printf, 5, 6)))
stream_in_note(struct stream_in_actions *a, const char *from, const char *to,
    bool failed, const char *fmt, ...)
{
	struct stream_in_action *x;
	const char *why;
	va_list ap;

	va_start(ap, fmt);
	why = stream_in_vtext(a, fmt, ap);
	va_end(ap);
	x = stream_in_do(a, STREAM_IN_NOTE);
	x->from = stream_in_keep(a, from);
	x->to = stream_in_keep(a, to);
	x->yes = failed;
	x->why = why;
}

/*
 * Check the header's to and from against the face's rules; name the
 * stream. Return 0, or -1 after refusing the stream.
 */
static int
stream_in_check_addresses(struct stream_in *s, const struct stream_in_ctx *c,
    const struct xmlstream_header *h, struct stream_in_actions *a)
{
	char to[JID_DOMAIN_MAX], from[JID_DOMAIN_MAX] = "";
	const struct config_domain *first = TAILQ_FIRST(&c->config->domains);
	const char *hto = h->to;

	/*
	 * A pre-XMPP 1.0 dialback stream (jabberd2, jabberd 1.x) may name
	 * nobody in its header: each db:result and db:verify names its own
	 * domains, checked there. Answer it as the first local domain.
	 */
	if (hto == NULL && s->face == CONFIG_FACE_PUBLIC && !s->peer_version &&
	    first != NULL) {
		hto = first->name;
		stream_in_note(a, NULL, NULL, false, "a pre-XMPP 1.0 header "
		    "without 'to': answered as %s", hto);
	}
	if (hto == NULL)
		return stream_in_refuse(s, a, XMPP_STREAM_IMPROPER_ADDRESSING,
		    "%s", "the stream header has no 'to'"), -1;
	if (!stream_in_domain(hto, to))
		return stream_in_refuse(s, a, XMPP_STREAM_HOST_UNKNOWN,
		    "invalid 'to' \"%s\"", UTIL_ESC(hto)), -1;
	if (h->from != NULL && !stream_in_domain(h->from, from))
		return stream_in_refuse(s, a, XMPP_STREAM_INVALID_FROM,
		    "invalid 'from' \"%s\"", UTIL_ESC(h->from)), -1;
	/* Named from here on, also in the log line of a refusal. */
	snprintf(s->local, JID_DOMAIN_MAX, "%s", to);
	snprintf(s->remote, JID_DOMAIN_MAX, "%s", from);
	return stream_in_check_faces(s, c, to, from, a);
}

/*
 * The public name whose certificate serves the stream, into out; false if
 * none. Outside: the stream's local name, when a certificate is valid for
 * it (a subdomain with none gets no TLS). Inside, where names are not
 * checked: the local name's certificate, else its domain's.
 */
static bool
stream_in_cert_domain(const struct stream_in *s, const struct stream_in_ctx *c,
    char *out)
{
	struct local_name n;

	if (!local_find(c->config, s->face, s->face == CONFIG_FACE_PUBLIC ?
	    s->local : s->remote, &n))
		return false;
	if (c->has_cert(c->arg, n.public_name)) {
		snprintf(out, JID_DOMAIN_MAX, "%s", n.public_name);
		return true;
	}
	if (s->face == CONFIG_FACE_PUBLIC || !c->has_cert(c->arg, n.dom->name))
		return false;
	snprintf(out, JID_DOMAIN_MAX, "%s", n.dom->name);
	return true;
}

/* The TLS rule on this face: the peer's policy on the public face;
 * optional and unverified towards the internal server. */
static enum policy_tls
stream_in_tls_rule(const struct stream_in *s)
{
	return s->face == CONFIG_FACE_PUBLIC ? s->policy->tls :
	    POLICY_TLS_OPTIONAL;
}

/* Whether the peer's certificate is valid for domain (public face). */
static bool
stream_in_peer_cert_is_valid(const struct stream_in *s,
    const struct stream_in_ctx *c, const char *domain)
{
	return c->tls && s->face == CONFIG_FACE_PUBLIC &&
	    c->peer_cert_valid(c->arg, domain);
}

/* The same, when the stream's policy lets certificates count at all. */
static bool
stream_in_cert_is_valid(const struct stream_in *s,
    const struct stream_in_ctx *c, const char *domain)
{
	return s->policy->verify != POLICY_VERIFY_NONE &&
	    stream_in_peer_cert_is_valid(s, c, domain);
}

/* Whether EXTERNAL is on offer: TLS, policy, a certificate valid for the
 * stream's from, and not done yet on this stream. */
static bool
stream_in_offers_external(const struct stream_in *s,
    const struct stream_in_ctx *c)
{
	return c->tls && s->remote[0] != '\0' && s->auth != LEG_AUTH_EXTERNAL &&
	    (s->policy->auth & POLICY_AUTH_EXTERNAL) &&
	    stream_in_cert_is_valid(s, c, s->remote);
}

/* Say why a subdomain is offered no STARTTLS (a domain without a
 * certificate is so by configuration, and says nothing). */
static void
stream_in_no_cert(const struct stream_in *s, const struct stream_in_ctx *c,
    enum policy_tls rule, struct stream_in_actions *a)
{
	struct local_name n;

	if (s->face != CONFIG_FACE_PUBLIC ||
	    !local_find(c->config, s->face, s->local, &n) || !n.subdomain)
		return;
	stream_in_note(a, NULL, NULL, rule == POLICY_TLS_REQUIRED,
	    "no certificate is valid for subdomain %s: STARTTLS not "
	    "offered%s", s->local, rule == POLICY_TLS_REQUIRED ?
	    ", though the peer's rule requires TLS" : "");
}

static void
stream_in_features(struct stream_in *s, const struct stream_in_ctx *c,
    struct stream_in_actions *a)
{
	struct xmpp_features *f = &stream_in_do(a,
	    STREAM_IN_SEND_FEATURES)->features;
	enum policy_tls rule = stream_in_tls_rule(s);

	char cert[JID_DOMAIN_MAX];

	if (!c->tls && rule != POLICY_TLS_NONE &&
	    stream_in_cert_domain(s, c, cert)) {
		f->starttls = true;
		f->starttls_required = rule == POLICY_TLS_REQUIRED;
		s->tls_wanted = true;
	} else if (!c->tls && rule != POLICY_TLS_NONE)
		stream_in_no_cert(s, c, rule, a);
	f->sasl_external = stream_in_offers_external(s, c);
	f->dialback = (s->policy->auth & POLICY_AUTH_DIALBACK) != 0;
	/* XEP-0288: asked for before authentication, so offered until then */
	f->bidi = s->policy->bidi && stream_in_first_pair(s, false) == NULL;
	if (f->bidi)
		s->bidi_offered = true;
}

void
stream_in_header(struct stream_in *s, const struct stream_in_ctx *c,
    const struct xmlstream_header *h, struct stream_in_actions *a)
{
	bool restart = s->opened;

	stream_in_begin(s, a);
	if (s->state != STREAM_IN_WAIT_HEADER)
		return;
	s->peer_version = h->version != NULL &&
	    strncmp(h->version, "1.", 2) == 0;
	if (stream_in_check_addresses(s, c, h, a) == -1)
		return;
	s->opened = true;
	if (!restart)
		stream_in_do(a, STREAM_IN_LIMITS);
	stream_in_do(a, STREAM_IN_SEND_HEADER)->yes = s->peer_version;
	if (!s->peer_version && stream_in_tls_rule(s) == POLICY_TLS_REQUIRED &&
	    !c->tls) {
		stream_in_refuse(s, a, XMPP_STREAM_POLICY_VIOLATION, "%s",
		    "TLS is required but the peer is pre-XMPP 1.0");
		return;
	}
	if (s->peer_version)
		stream_in_features(s, c, a);
	stream_in_do(a, STREAM_IN_OPENED)->yes = restart;
	stream_in_enter_state(s, STREAM_IN_OPEN, a);
}

void
stream_in_tls_done(struct stream_in *s, const struct stream_in_ctx *c,
    struct stream_in_actions *a)
{
	(void)c;
	stream_in_begin(s, a);
	if (s->state != STREAM_IN_TLS)	/* direct TLS: the stream starts now */
		return;
	stream_in_do(a, STREAM_IN_RESTART);
	stream_in_enter_state(s, STREAM_IN_WAIT_HEADER, a);
}

static void
stream_in_starttls(struct stream_in *s, const struct stream_in_ctx *c,
    struct stream_in_actions *a)
{
	char domain[JID_DOMAIN_MAX];

	if (!s->tls_wanted || c->tls || !stream_in_cert_domain(s, c, domain)) {
		stream_in_do(a, STREAM_IN_SEND_TLS_FAILURE);
		stream_in_close(s, a, XMPP_STREAM_ERROR_COUNT, false, "%s",
		    "STARTTLS was not offered");
		return;
	}
	stream_in_do(a, STREAM_IN_SEND_PROCEED);
	stream_in_enter_state(s, STREAM_IN_TLS, a);
	stream_in_do(a, STREAM_IN_START_TLS)->domain = stream_in_keep(a,
	    domain);
}

struct stream_pair *
stream_in_pair(const struct stream_in *s, const char *from, const char *to)
{
	struct stream_pair *p;

	TAILQ_FOREACH(p, &s->pairs, entry)
		if (strcmp(p->from, from) == 0 && strcmp(p->to, to) == 0)
			return p;
	return NULL;
}

struct stream_pair *
stream_in_first_pair(const struct stream_in *s, bool pending)
{
	struct stream_pair *p;

	TAILQ_FOREACH(p, &s->pairs, entry)
		if (p->pending == pending)
			return p;
	return NULL;
}

static struct stream_pair *
stream_in_add_pair(struct stream_in *s, const char *from, const char *to,
    enum leg_auth auth)
{
	struct stream_pair *p;

	if ((p = stream_in_pair(s, from, to)) != NULL) {
		p->auth = auth;
		return p;
	}
	if ((p = stream_in_new_pair(s, from, to)) == NULL)
		return NULL;
	p->auth = auth;
	TAILQ_INSERT_TAIL(&s->pairs, p, entry);
	s->npairs++;
	return p;
}

/* Forget p; it stays readable until the next event. */
static void
stream_in_remove_pair(struct stream_in *s, struct stream_pair *p)
{
	if (s->relay_pair == p)
		s->relay_pair = NULL;
	TAILQ_REMOVE(&s->pairs, p, entry);
	TAILQ_INSERT_TAIL(&s->dead, p, entry);
	s->npairs--;
}

static void
stream_in_authenticated(struct stream_in *s, struct stream_pair *p,
    enum leg_auth auth, struct stream_in_actions *a)
{
	struct stream_in_action *x;

	p->pending = false;
	p->auth = auth;
	if (s->remote[0] == '\0')
		snprintf(s->remote, JID_DOMAIN_MAX, "%s", p->from);
	s->auth = auth;
	x = stream_in_do(a, STREAM_IN_AUTHENTICATED);
	x->pair = p;
	x->auth = auth;
}

static void
stream_in_auth_failed(struct stream_in_actions *a, const char *from,
    const char *to, const char *method)
{
	struct stream_in_action *x = stream_in_do(a, STREAM_IN_AUTH_FAILED);

	x->from = stream_in_keep(a, from);
	x->to = stream_in_keep(a, to);
	x->method = method;
}

/*
 * Decide a SASL EXTERNAL <auth/> (RFC 6120 6.4, XEP-0178). Store the
 * identity that authenticates in who. Return XMPP_SASL_ERROR_COUNT on
 * success, else the failure condition (RFC 6120 6.5).
 */
static enum xmpp_sasl_error
stream_in_sasl_verdict(struct stream_in *s, const struct stream_in_ctx *c,
    const struct xmlstream_node *auth, char *who)
{
	char authzid[JID_DOMAIN_MAX * 2];
	enum xmpp_sasl_error e;
	struct policy_match m;

	if (!stream_in_offers_external(s, c))
		return XMPP_SASL_INVALID_MECHANISM;	/* not offered */
	e = xmpp_sasl_external_read(xmlstream_node_attr(auth, "mechanism"),
	    auth->text, authzid, sizeof(authzid));
	if (e != XMPP_SASL_ERROR_COUNT)
		return e;
	if (authzid[0] == '\0')
		snprintf(who, JID_DOMAIN_MAX, "%s", s->remote);
	else if (!stream_in_domain(authzid, who) ||
	    stream_in_is_local(s, c, who))
		return XMPP_SASL_INVALID_AUTHZID;
	if (!stream_in_cert_is_valid(s, c, who))
		return authzid[0] == '\0' ? XMPP_SASL_NOT_AUTHORIZED :
		    XMPP_SASL_INVALID_AUTHZID;
	if (policy_match(c->config->policy, who, &m) == -1 ||
	    !m.settings.allow || !(m.settings.auth & POLICY_AUTH_EXTERNAL))
		return XMPP_SASL_NOT_AUTHORIZED;
	return XMPP_SASL_ERROR_COUNT;
}

/* Answer a failed <auth/> or <abort/> with cond; past the limit of
 * attempts, end the stream. */
static void
stream_in_sasl_fail(struct stream_in *s, const struct stream_in_ctx *c,
    enum xmpp_sasl_error cond, struct stream_in_actions *a)
{
	unsigned max = c->config->limits.sasl_attempts;

	stream_in_do(a, STREAM_IN_SEND_SASL_FAILURE)->sasl = cond;
	s->sasl_failures++;
	stream_in_auth_failed(a, s->remote, s->local, "sasl-external");
	stream_in_note(a, s->remote[0] != '\0' ? s->remote : "?", NULL, true,
	    "SASL failure %s (%u of %u)", xmpp_sasl_error_name(cond),
	    s->sasl_failures, max);
	if (s->sasl_failures >= max)
		stream_in_refuse(s, a, XMPP_STREAM_POLICY_VIOLATION, "%u SASL "
		    "failures (limit sasl-attempts)", s->sasl_failures);
}

static void
stream_in_sasl(struct stream_in *s, const struct stream_in_ctx *c,
    const struct xmlstream_node *auth, struct stream_in_actions *a)
{
	char who[JID_DOMAIN_MAX] = "";
	enum xmpp_sasl_error e = stream_in_sasl_verdict(s, c, auth, who);
	struct stream_pair *p = NULL;

	if (e == XMPP_SASL_ERROR_COUNT && (p = stream_in_add_pair(s, who,
	    s->local, LEG_AUTH_EXTERNAL)) == NULL)
		e = XMPP_SASL_TEMPORARY_AUTH_FAILURE;
	if (e != XMPP_SASL_ERROR_COUNT) {
		stream_in_sasl_fail(s, c, e, a);
		return;
	}
	stream_in_authenticated(s, p, LEG_AUTH_EXTERNAL, a);
	stream_in_do(a, STREAM_IN_SEND_SASL_SUCCESS);
	stream_in_do(a, STREAM_IN_RESTART);
	stream_in_enter_state(s, STREAM_IN_WAIT_HEADER, a);
}

/* Reply to a db:result of from -> to with verdict (cond for an error). */
static void
stream_in_db_reply(struct stream_in_actions *a, const char *from,
    const char *to, enum xmpp_db_type verdict, enum xmpp_stanza_error cond)
{
	struct stream_in_action *x = stream_in_do(a, STREAM_IN_SEND_DB_RESULT);

	x->from = stream_in_keep(a, from);
	x->to = stream_in_keep(a, to);
	x->verdict = verdict;
	x->stanza_cond = cond;
}

/*
 * Refuse the pair from -> to by policy. With other domains authenticated
 * on the stream (piggybacking), answer only this db:result with a
 * policy-violation error and keep the stream; otherwise end the stream
 * with policy-violation. Return -1.
 */
static int __attribute__((format(printf, 5, 6)))
stream_in_policy_refuse(struct stream_in *s, struct stream_in_actions *a,
    const char *from, const char *to, const char *fmt, ...)
{
	const char *why;
	va_list ap;

	va_start(ap, fmt);
	why = stream_in_vtext(a, fmt, ap);
	va_end(ap);
	if (stream_in_first_pair(s, false) == NULL) {
		stream_in_refuse(s, a, XMPP_STREAM_POLICY_VIOLATION, "%s", why);
		return -1;
	}
	stream_in_note(a, from, to, true, "refused: %s", why);
	stream_in_db_reply(a, from, to, XMPP_DB_ERROR,
	    XMPP_STANZA_POLICY_VIOLATION);
	return -1;
}

/* The face's addressing checks of a db:result; *m the peer's rule. */
static int
stream_in_result_faces(struct stream_in *s, const struct stream_in_ctx *c,
    const char *from, const char *to, const struct config_domain **dom,
    struct policy_match *m, struct stream_in_actions *a)
{
	struct local_name n;

	if (s->face == CONFIG_FACE_PUBLIC) {
		if (!local_find(c->config, s->face, to, &n))
			return stream_in_refuse(s, a, XMPP_STREAM_HOST_UNKNOWN,
			    "%s is not a local domain", to), -1;
		if (stream_in_is_local(s, c, from) ||
		    policy_match(c->config->policy, from, m) == -1)
			return stream_in_refuse(s, a, XMPP_STREAM_INVALID_FROM,
			    "invalid 'from' %s", from), -1;
		*dom = n.dom;
		return 0;
	}
	if (!local_find(c->config, s->face, from, &n))
		return stream_in_refuse(s, a, XMPP_STREAM_INVALID_FROM,
		    "%s is not a local domain", from), -1;
	if (stream_in_is_local(s, c, to) ||
	    policy_match(c->config->policy, to, m) == -1)
		return stream_in_refuse(s, a, XMPP_STREAM_HOST_UNKNOWN,
		    "invalid 'to' %s", to), -1;
	*dom = n.dom;
	return 0;
}

/*
 * Whether a db:result for from -> to is acceptable on this stream.
 * Return 0, or -1 after refusing it.
 */
static int
stream_in_check_result(struct stream_in *s, const struct stream_in_ctx *c,
    const char *from, const char *to, const struct config_domain **dom,
    struct stream_in_actions *a)
{
	struct policy_match m;

	if (stream_in_result_faces(s, c, from, to, dom, &m, a) == -1)
		return -1;
	if (!m.settings.allow)
		return stream_in_policy_refuse(s, a, from, to, "%s is denied "
		    "by policy", s->face == CONFIG_FACE_PUBLIC ? from : to);
	if (s->face == CONFIG_FACE_INTERNAL)
		return 0;
	if (m.settings.connections != 0 &&
	    stream_in_pair(s, from, to) == NULL &&
	    c->authenticated(c->arg, from) >= m.settings.connections)
		return stream_in_policy_refuse(s, a, from, to, "%s has %u "
		    "connections already (limit connections)", from,
		    m.settings.connections);
	if (!(m.settings.auth & POLICY_AUTH_DIALBACK))
		return stream_in_policy_refuse(s, a, from, to, "dialback is "
		    "not allowed for %s", from);
	if (m.settings.tls == POLICY_TLS_REQUIRED && !c->tls)
		return stream_in_policy_refuse(s, a, from, to, "TLS is "
		    "required for %s", from);
	if (m.settings.verify == POLICY_VERIFY_REQUIRED &&
	    !stream_in_peer_cert_is_valid(s, c, from))
		return stream_in_policy_refuse(s, a, from, to, "a valid "
		    "certificate is required for %s", from);
	if (stream_in_first_pair(s, false) == NULL)
		*s->policy = m.settings;
	return 0;
}

/*
 * The bounds on what one stream may ask for: one verification at a time
 * per pair, limit domains-per-stream pairs. Return 0, or -1 after ending
 * the stream.
 */
static int
stream_in_check_bounds(struct stream_in *s, const struct stream_in_ctx *c,
    const char *from, const char *to, struct stream_in_actions *a)
{
	const struct stream_pair *p = stream_in_pair(s, from, to);
	unsigned max = c->config->limits.domains_per_stream;

	if (p != NULL && p->pending)
		return stream_in_refuse(s, a, XMPP_STREAM_POLICY_VIOLATION,
		    "a second db:result for %s->%s while its verification "
		    "runs", from, to), -1;
	if (p == NULL && s->npairs >= max)
		return stream_in_refuse(s, a, XMPP_STREAM_POLICY_VIOLATION,
		    "more than %u domain pairs (limit domains-per-stream)",
		    max), -1;
	return 0;
}

void
stream_in_verify_refused(struct stream_in *s, const struct stream_in_ctx *c,
    struct stream_pair *p, enum xmpp_stanza_error cond, const char *why,
    struct stream_in_actions *a)
{
	(void)c;
	stream_in_begin(s, a);
	if (p->pending && s->verifications > 0)
		s->verifications--;	/* it did not start */
	stream_in_note(a, p->from, p->to, true, "dialback not verified: %s",
	    why);
	stream_in_auth_failed(a, p->from, p->to, "dialback");
	stream_in_db_reply(a, p->from, p->to, XMPP_DB_ERROR, cond);
	stream_in_remove_pair(s, p);
}

/*
 * Verify p's key with the authoritative server, within the bounds of the
 * stream: at most verifications-per-stream (past it the stream ends), and
 * keys no server mints refused unasked. The driver checks the bounds of
 * all legs (stream_in_verify_refused()).
 */
static void
stream_in_verify(struct stream_in *s, const struct stream_in_ctx *c,
    struct stream_pair *p, const char *key, struct stream_in_actions *a)
{
	struct stream_in_action *x;

	if (s->verifications >= c->config->limits.verifications_per_stream) {
		stream_in_refuse(s, a, XMPP_STREAM_POLICY_VIOLATION, "%u "
		    "dialback verifications (limit "
		    "verifications-per-stream)", s->verifications);
		return;
	}
	if (strlen(key) > DIALBACK_KEY_MAX) {
		stream_in_note(a, p->from, p->to, true, "dialback not "
		    "verified: %s", "the key is longer than any server mints");
		stream_in_auth_failed(a, p->from, p->to, "dialback");
		stream_in_db_reply(a, p->from, p->to, XMPP_DB_ERROR,
		    XMPP_STANZA_NOT_ACCEPTABLE);
		stream_in_remove_pair(s, p);
		return;
	}
	s->verifications++;
	p->pending = true;
	x = stream_in_do(a, STREAM_IN_VERIFY);
	x->pair = p;
	x->key = key;
}

static void
stream_in_db_result(struct stream_in *s, const struct stream_in_ctx *c,
    const struct xmlstream_node *n, struct stream_in_actions *a)
{
	char from[JID_DOMAIN_MAX], to[JID_DOMAIN_MAX];
	const struct config_domain *dom;
	struct stream_pair *p;

	if (!stream_in_domain(xmlstream_node_attr(n, "from"), from)) {
		stream_in_refuse(s, a, XMPP_STREAM_INVALID_FROM, "%s",
		    "db:result without a valid 'from'");
		return;
	}
	if (!stream_in_domain(xmlstream_node_attr(n, "to"), to)) {
		stream_in_refuse(s, a, XMPP_STREAM_HOST_UNKNOWN, "%s",
		    "db:result without a valid 'to'");
		return;
	}
	if (stream_in_check_result(s, c, from, to, &dom, a) == -1 ||
	    stream_in_check_bounds(s, c, from, to, a) == -1)
		return;
	if ((p = stream_in_add_pair(s, from, to, LEG_AUTH_NONE)) == NULL) {
		stream_in_close(s, a, XMPP_STREAM_RESOURCE_CONSTRAINT, false,
		    "%s", "out of memory");
		return;
	}
	if (s->face == CONFIG_FACE_PUBLIC && stream_in_cert_is_valid(s, c,
	    from)) {
		stream_in_authenticated(s, p, LEG_AUTH_DIALBACK_TLS, a);
		stream_in_db_reply(a, p->from, p->to, XMPP_DB_VALID,
		    XMPP_STANZA_ERROR_COUNT);
		return;
	}
	if (s->face == CONFIG_FACE_INTERNAL && dom->upstream_trusted) {
		stream_in_authenticated(s, p, LEG_AUTH_TRUSTED, a);
		stream_in_db_reply(a, p->from, p->to, XMPP_DB_VALID,
		    XMPP_STANZA_ERROR_COUNT);
		return;
	}
	stream_in_verify(s, c, p, n->text, a);
}

void
stream_in_verified(struct stream_in *s, const struct stream_in_ctx *c,
    const char *from, const char *to, enum xmpp_db_type verdict,
    const char *why, struct stream_in_actions *a)
{
	struct stream_pair *p;

	(void)c;
	stream_in_begin(s, a);
	if (s->state == STREAM_IN_CLOSED ||
	    (p = stream_in_pair(s, from, to)) == NULL || !p->pending)
		return;
	if (verdict == XMPP_DB_VALID)
		stream_in_authenticated(s, p, LEG_AUTH_DIALBACK, a);
	else {
		stream_in_note(a, p->from, p->to, true, "dialback %s: %s",
		    xmpp_db_type_name(verdict), why);
		stream_in_auth_failed(a, p->from, p->to, "dialback");
		stream_in_remove_pair(s, p);
	}
	stream_in_db_reply(a, p->from, p->to, verdict,
	    XMPP_STANZA_REMOTE_SERVER_NOT_FOUND);
}

/* Answer a db:verify for a key we minted (we are authoritative). */
static void
stream_in_db_verify(struct stream_in *s, const struct stream_in_ctx *c,
    const struct xmlstream_node *n, struct stream_in_actions *a)
{
	char from[JID_DOMAIN_MAX], to[JID_DOMAIN_MAX];
	const char *id = xmlstream_node_attr(n, "id");
	struct stream_in_action *x;
	bool ours, valid;

	if (!stream_in_domain(xmlstream_node_attr(n, "from"), from) ||
	    !stream_in_domain(xmlstream_node_attr(n, "to"), to) || id == NULL) {
		stream_in_refuse(s, a, XMPP_STREAM_IMPROPER_ADDRESSING, "%s",
		    "db:verify without from, to or id");
		return;
	}
	if (strlen(id) > DIALBACK_ID_MAX) {
		stream_in_refuse(s, a, XMPP_STREAM_POLICY_VIOLATION,
		    "db:verify with an id of %zu bytes (at most %d)",
		    strlen(id), DIALBACK_ID_MAX);
		return;
	}
	/* Public face: keys of local domains; internal: of remote ones. */
	ours = s->face == CONFIG_FACE_PUBLIC ? stream_in_is_local(s, c, to) :
	    !stream_in_is_local(s, c, to);
	if (!ours) {
		stream_in_refuse(s, a, XMPP_STREAM_HOST_UNKNOWN,
		    "db:verify for %s, which we do not answer for", to);
		return;
	}
	valid = dialback_key_is_valid(c->config->dialback_secret,
	    c->config->dialback_secret_len, from, to, id, n->text);
	stream_in_note(a, NULL, NULL, false, "db:verify %s->%s id %s: %s", to,
	    from, UTIL_ESC(id), valid ? "valid" : "invalid");
	x = stream_in_do(a, STREAM_IN_SEND_DB_VERIFY);
	x->from = stream_in_text(a, "%s", from);
	x->to = stream_in_text(a, "%s", to);
	x->id = id;
	x->verdict = valid ? XMPP_DB_VALID : XMPP_DB_INVALID;
}

static bool
stream_in_is(const struct xmlstream_node *n, const char *ns, const char *name)
{
	return strcmp(n->ns, ns) == 0 && strcmp(n->name, name) == 0;
}

/*
 * The peer's <bidi xmlns='urn:xmpp:bidi'/> (XEP-0288): enabled if it was
 * offered and no pair has authenticated yet; else ignored, and the peer
 * keeps a stream of its own for its stanzas to us.
 */
static void
stream_in_bidi(struct stream_in *s, struct stream_in_actions *a)
{
	if (s->bidi)
		return;
	if (!s->bidi_offered || stream_in_first_pair(s, false) != NULL) {
		stream_in_note(a, s->remote[0] != '\0' ? s->remote : NULL,
		    NULL, true, "bidi asked for but %s: ignored",
		    !s->bidi_offered ? "not offered (bidi no)" :
		    "after authentication");
		return;
	}
	s->bidi = true;
	stream_in_do(a, STREAM_IN_BIDI);
}

/*
 * An element on the reverse direction of a bidirectional outgoing stream:
 * db:verify answered as on any stream; a db:result (a domain pair the
 * peer adds) answered with not-allowed, so that it opens its own stream
 * for that pair; anything else is unsupported.
 */
static void
stream_in_reverse_element(struct stream_in *s, const struct stream_in_ctx *c,
    const struct xmlstream_node *n, struct stream_in_actions *a)
{
	char from[JID_DOMAIN_MAX], to[JID_DOMAIN_MAX];

	if (stream_in_is(n, XMPP_NS_DIALBACK, "verify")) {
		stream_in_db_verify(s, c, n, a);
		return;
	}
	if (!stream_in_is(n, XMPP_NS_DIALBACK, "result") ||
	    xmlstream_node_attr(n, "type") != NULL) {
		stream_in_refuse(s, a, XMPP_STREAM_UNSUPPORTED_STANZA_TYPE,
		    "unexpected <%s/> on a bidirectional stream",
		    UTIL_ESC(n->name));
		return;
	}
	if (!stream_in_domain(xmlstream_node_attr(n, "from"), from) ||
	    !stream_in_domain(xmlstream_node_attr(n, "to"), to)) {
		stream_in_refuse(s, a, XMPP_STREAM_IMPROPER_ADDRESSING, "%s",
		    "db:result without a valid 'from' and 'to'");
		return;
	}
	stream_in_note(a, from, to, true, "%s", "db:result on a "
	    "bidirectional outgoing stream: not-allowed (the peer adds a "
	    "domain on a stream of its own)");
	stream_in_db_reply(a, from, to, XMPP_DB_ERROR, XMPP_STANZA_NOT_ALLOWED);
}

void
stream_in_element(struct stream_in *s, const struct stream_in_ctx *c,
    const struct xmlstream_element *e, struct stream_in_actions *a)
{
	const struct xmlstream_node *n = &e->node;

	stream_in_begin(s, a);
	if (s->state != STREAM_IN_OPEN)
		return;
	if (s->reverse)
		stream_in_reverse_element(s, c, n, a);
	else if (stream_in_is(n, XMPP_NS_BIDI, "bidi"))
		stream_in_bidi(s, a);
	else if (stream_in_is(n, XMPP_NS_DIALBACK, "result"))
		stream_in_db_result(s, c, n, a);
	else if (stream_in_is(n, XMPP_NS_DIALBACK, "verify"))
		stream_in_db_verify(s, c, n, a);
	else if (stream_in_is(n, XMPP_NS_TLS, "starttls"))
		stream_in_starttls(s, c, a);
	else if (stream_in_is(n, XMPP_NS_SASL, "auth"))
		stream_in_sasl(s, c, n, a);
	else if (stream_in_is(n, XMPP_NS_SASL, "abort"))
		stream_in_sasl_fail(s, c, XMPP_SASL_ABORTED, a);
	else if (stream_in_is(n, XMPP_NS_STREAMS, "error"))
		stream_in_close(s, a, XMPP_STREAM_ERROR_COUNT, false,
		    "peer sent stream error %s",
		    UTIL_ESC(n->child != NULL ? n->child->name : NULL));
	else
		stream_in_refuse(s, a, XMPP_STREAM_UNSUPPORTED_STANZA_TYPE,
		    "unexpected <%s/>", UTIL_ESC(n->name));
}

/*
 * Write jid with its domain (the span off, len) replaced by domain into out
 * (outlen bytes, NUL-terminated). 0, or -1 if it does not fit.
 */
static int
stream_in_rewrite_jid(const char *jid, size_t off, size_t len,
    const char *domain, char *out, size_t outlen)
{
	size_t dlen = strlen(domain), rest = strlen(jid + off + len);

	if (off + dlen + rest >= outlen)
		return -1;
	memcpy(out, jid, off);
	memcpy(out + off, domain, dlen);
	memcpy(out + off + dlen, jid + off + len, rest + 1);
	return 0;
}

/* The domain span (off, len) of the JID attribute value s, normalised. */
static bool
stream_in_jid_domain(const char *s, size_t off, size_t len, char *out)
{
	char raw[JID_DOMAIN_MAX * 4];

	if (len >= sizeof(raw))
		return false;
	memcpy(raw, s + off, len);
	raw[len] = '\0';
	return jid_domain_normalize(raw, out, JID_DOMAIN_MAX) == 0;
}

/* Whether the len bytes at s are exactly the normalised domain d. */
static bool
stream_in_is_domain(const char *d, const char *s, size_t len)
{
	return strncmp(d, s, len) == 0 && d[len] == '\0';
}

/*
 * Find p's domain of ours and its name on the other face. 0; -1 if it is
 * not a local name (any more); -2 out of memory.
 */
static int
stream_in_map_pair(const struct stream_in *s, const struct stream_in_ctx *c,
    struct stream_pair *p)
{
	enum config_face other = s->face == CONFIG_FACE_PUBLIC ?
	    CONFIG_FACE_INTERNAL : CONFIG_FACE_PUBLIC;
	struct local_name n;
	char *mapped;

	if (!local_find(c->config, s->face, s->face == CONFIG_FACE_PUBLIC ?
	    p->to : p->from, &n))
		return -1;
	if ((mapped = strdup(local_name_on(&n, other))) == NULL)
		return -2;
	free(p->mapped);
	p->mapped = mapped;
	p->dom = n.dom;
	return 0;
}

/*
 * The slow path of stream_in_stanza(): normalise the domains of from and
 * to (their spans fs and ts), and find their authenticated pair, or
 * refuse the stream. Remember the pair for the next stanza when the
 * stanza wrote its domains as normalised (the usual case): the next one
 * with the same bytes skips all this.
 */
static struct stream_pair *
stream_in_stanza_pair(struct stream_in *s, const struct stream_in_ctx *c,
    const struct xmpp_stanza_attrs *st, const size_t fs[2],
    const size_t ts[2], struct stream_in_actions *a)
{
	char fd[JID_DOMAIN_MAX], td[JID_DOMAIN_MAX];
	struct stream_pair *p;
	bool from_known = false, served;
	int m;

	if (!stream_in_jid_domain(st->from, fs[0], fs[1], fd) ||
	    !stream_in_jid_domain(st->to, ts[0], ts[1], td))
		return stream_in_refuse(s, a, XMPP_STREAM_IMPROPER_ADDRESSING,
		    "<%s/> without a valid 'from' and 'to'", st->name), NULL;
	if (stream_in_first_pair(s, false) == NULL)
		return stream_in_refuse(s, a, XMPP_STREAM_NOT_AUTHORIZED,
		    "<%s/> before any domain authenticated", st->name), NULL;
	TAILQ_FOREACH(p, &s->pairs, entry)
		if (!p->pending && strcmp(p->from, fd) == 0)
			from_known = true;
	if (!from_known)
		return stream_in_refuse(s, a, XMPP_STREAM_INVALID_FROM,
		    "%s did not authenticate on this stream", fd), NULL;
	if ((p = stream_in_pair(s, fd, td)) == NULL || p->pending) {
		served = stream_in_is_local(s, c, td);
		if (s->face == CONFIG_FACE_INTERNAL)
			served = !served;
		return stream_in_refuse(s, a, served ?
		    XMPP_STREAM_INVALID_FROM : XMPP_STREAM_HOST_UNKNOWN, "%s",
		    served ? "the domain pair did not authenticate on this "
		    "stream" : "'to' is not served here"), NULL;
	}
	/* Ours of the pair: to (public face) or from (internal face), and
	 * its name on the other face. */
	if (p->dom == NULL && (m = stream_in_map_pair(s, c, p)) == -1)
		return stream_in_refuse(s, a, XMPP_STREAM_HOST_UNKNOWN,
		    "%s is no longer a local name", s->face ==
		    CONFIG_FACE_PUBLIC ? td : fd), NULL;
	if (p->dom == NULL)			/* m == -2 */
		return stream_in_refuse(s, a, XMPP_STREAM_RESOURCE_CONSTRAINT,
		    "out of memory"), NULL;
	if (stream_in_is_domain(fd, st->from + fs[0], fs[1]) &&
	    stream_in_is_domain(td, st->to + ts[0], ts[1]))
		s->relay_pair = p;
	return p;
}

int
stream_in_stanza(struct stream_in *s, const struct stream_in_ctx *c,
    const struct xmpp_stanza_attrs *st, struct stream_in_relay *r,
    struct stream_in_actions *a)
{
	size_t fs[2], ts[2];
	struct stream_pair *p;

	a->n = 0;
	a->textlen = 0;
	if (s->state != STREAM_IN_OPEN)
		return -1;
	if (st->from == NULL || st->to == NULL ||
	    jid_domain_span(st->from, strlen(st->from), &fs[0], &fs[1]) == -1 ||
	    jid_domain_span(st->to, strlen(st->to), &ts[0], &ts[1]) == -1)
		return stream_in_refuse(s, a, XMPP_STREAM_IMPROPER_ADDRESSING,
		    "<%s/> without a valid 'from' and 'to'", st->name), -1;
	if ((p = s->relay_pair) == NULL || p->pending ||
	    !stream_in_is_domain(p->from, st->from + fs[0], fs[1]) ||
	    !stream_in_is_domain(p->to, st->to + ts[0], ts[1]))
		if ((p = stream_in_stanza_pair(s, c, st, fs, ts, a)) == NULL)
			return -1;
	r->pair = p;
	r->rw.value = r->jid;
	if (s->face == CONFIG_FACE_PUBLIC) {
		/* remote -> local name: to the internal server as remote. */
		const char *inside = p->mapped;

		r->rw.name = "to";
		if (stream_in_rewrite_jid(st->to, ts[0], ts[1], inside, r->jid,
		    sizeof(r->jid)) == -1)
			return stream_in_refuse(s, a,
			    XMPP_STREAM_POLICY_VIOLATION, "%s",
			    "'to' too long"), -1;
		r->face = CONFIG_FACE_INTERNAL;
		r->local = p->from;
		r->remote = inside;
	} else {
		/* internal server -> remote: to the world, the public name */
		r->rw.name = "from";
		if (stream_in_rewrite_jid(st->from, fs[0], fs[1], p->mapped,
		    r->jid, sizeof(r->jid)) == -1)
			return stream_in_refuse(s, a,
			    XMPP_STREAM_POLICY_VIOLATION, "%s",
			    "'from' too long"), -1;
		r->face = CONFIG_FACE_PUBLIC;
		r->local = p->mapped;
		r->remote = p->to;
	}
	return 0;
}
