/*
 * leg_in: incoming streams. A remote server on the public face, or the
 * internal server on the internal face, connects; we answer its header,
 * offer features by policy, run STARTTLS and SASL EXTERNAL as the
 * receiving entity, authenticate each (from, to) domain pair with dialback
 * (verifying keys with the authoritative server, or by a valid certificate
 * per XEP-0344, or trusting the upstream), answer db:verify for the keys we
 * minted, and relay stanzas of authenticated pairs to the route of the
 * other face, with the rewrite map applied.
 *
 * On the public face the leg's local domain is a local domain's public
 * name and the remote one a remote domain; on the internal face the local
 * domain is the remote domain fedgated presents itself as, and the remote
 * one the internal server's (internal) name.
 */
#include "fgconfig.h"

#include <sys/uio.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "leg_private.h"
#include "log.h"
#include "route.h"
#include "tls.h"
#include "util.h"

/* Normalise s into out; false if absent or invalid. */
static bool
leg_in_domain(const char *s, char *out)
{
	return s != NULL && jid_domain_normalize(s, out, JID_DOMAIN_MAX) == 0;
}

/* The local domain config for the domain we serve on l (public name, or
 * on the internal face the internal server's name). */
static const struct config_domain *
leg_in_local(const struct leg *l, const char *name)
{
	if (l->face == CONFIG_FACE_PUBLIC)
		return config_domain_find(l->config, name);
	return config_domain_find_internal(l->config, name);
}

/* Refuse the stream with cond, logging why. */
static void __attribute__((format(printf, 3, 4)))
leg_in_refuse(struct leg *l, enum xmpp_stream_error cond, const char *fmt,
    ...)
{
	char text[LEG_REASON_MAX - 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	leg_set_reason(l, "refused: %s", text);
	metrics_stream_refused(l->face, false, l->local, l->remote, cond);
	leg_close(l, cond, NULL);
}

/*
 * Check the header's to and from against the face's rules. Return 0, or
 * -1 after refusing the stream.
 */
static int
leg_in_check_addresses(struct leg *l, const struct xmlstream_header *h)
{
	char to[JID_DOMAIN_MAX], from[JID_DOMAIN_MAX] = "";
	const struct config_domain *first = TAILQ_FIRST(&l->config->domains);
	const char *hto = h->to;
	struct policy_match m;

	/*
	 * A pre-XMPP 1.0 dialback stream (jabberd2, jabberd 1.x) may name
	 * nobody in its header: each db:result and db:verify names its own
	 * domains, checked there. Answer it as the first local domain.
	 */
	if (hto == NULL && l->face == CONFIG_FACE_PUBLIC && !l->peer_version &&
	    first != NULL) {
		hto = first->name;
		log_debug("leg %" PRIu64 ": a pre-XMPP 1.0 header without 'to': "
		    "answered as %s", l->id, hto);
	}
	if (hto == NULL)
		return leg_in_refuse(l, XMPP_STREAM_IMPROPER_ADDRESSING,
		    "%s", "the stream header has no 'to'"), -1;
	if (!leg_in_domain(hto, to))
		return leg_in_refuse(l, XMPP_STREAM_HOST_UNKNOWN,
		    "invalid 'to' \"%s\"", UTIL_ESC(hto)), -1;
	if (h->from != NULL && !leg_in_domain(h->from, from))
		return leg_in_refuse(l, XMPP_STREAM_INVALID_FROM,
		    "invalid 'from' \"%s\"", UTIL_ESC(h->from)), -1;
	/* Named from here on, also in the log line of a refusal. */
	snprintf(l->local, sizeof(l->local), "%s", to);
	snprintf(l->remote, sizeof(l->remote), "%s", from);
	if (l->face == CONFIG_FACE_PUBLIC) {
		if (config_domain_find(l->config, to) == NULL)
			return leg_in_refuse(l, XMPP_STREAM_HOST_UNKNOWN,
			    "%s is not a local domain", to), -1;
		if (from[0] != '\0' && leg_in_local(l, from) != NULL)
			return leg_in_refuse(l, XMPP_STREAM_INVALID_FROM,
			    "%s is a local domain", from), -1;
		policy_match(l->config->policy, from[0] != '\0' ? from :
		    "default.invalid", &m);
		if (from[0] != '\0' && !m.settings.allow)
			return leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION,
			    "%s is denied by policy", from), -1;
	} else {
		if (config_domain_find_internal(l->config, to) != NULL)
			return leg_in_refuse(l, XMPP_STREAM_HOST_UNKNOWN,
			    "%s is a local domain", to), -1;
		if (from[0] != '\0' &&
		    config_domain_find_internal(l->config, from) == NULL)
			return leg_in_refuse(l, XMPP_STREAM_INVALID_FROM,
			    "%s is not a local domain", from), -1;
		policy_match(l->config->policy, to, &m);
		if (!m.settings.allow)
			return leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION,
			    "%s is denied by policy", to), -1;
	}
	l->policy = m.settings;
	return 0;
}

/* The public name whose certificate serves l's stream, or NULL. */
static const char *
leg_in_cert_domain(const struct leg *l)
{
	const struct config_domain *d;

	if (l->face == CONFIG_FACE_PUBLIC)
		d = config_domain_find(l->config, l->local);
	else
		d = config_domain_find_internal(l->config, l->remote);
	if (d == NULL || l->env->tls == NULL ||
	    !tls_has_domain(l->env->tls, d->name))
		return NULL;
	return d->name;
}

/* The TLS rule on this face: the peer's policy on the public face;
 * optional and unverified towards the internal server. */
static enum policy_tls
leg_in_tls_rule(const struct leg *l)
{
	return l->face == CONFIG_FACE_PUBLIC ? l->policy.tls : POLICY_TLS_OPTIONAL;
}

/* Whether the peer's TLS certificate is valid for domain. */
static bool
leg_in_peer_cert_is_valid(const struct leg *l, const char *domain)
{
	SSL *ssl = l->conn != NULL ? conn_ssl(l->conn) : NULL;

	return ssl != NULL && l->face == CONFIG_FACE_PUBLIC &&
	    tls_peer_check(ssl, domain) == TLS_PEER_VALID;
}

/* The same, when the leg's policy lets certificates count at all. */
static bool
leg_in_cert_is_valid(const struct leg *l, const char *domain)
{
	return l->policy.verify != POLICY_VERIFY_NONE &&
	    leg_in_peer_cert_is_valid(l, domain);
}

/* Whether EXTERNAL is on offer: TLS, policy, a certificate valid for the
 * stream's from, and not done yet on this stream. */
static bool
leg_in_offers_external(const struct leg *l)
{
	return conn_is_tls(l->conn) && l->remote[0] != '\0' &&
	    l->auth != LEG_AUTH_EXTERNAL &&
	    (l->policy.auth & POLICY_AUTH_EXTERNAL) &&
	    leg_in_cert_is_valid(l, l->remote);
}

static void
leg_in_send_features(struct leg *l)
{
	struct xmpp_features f = { 0 };
	bool tls = conn_is_tls(l->conn);
	enum policy_tls rule = leg_in_tls_rule(l);

	if (!tls && rule != POLICY_TLS_NONE && leg_in_cert_domain(l) != NULL) {
		f.starttls = true;
		f.starttls_required = rule == POLICY_TLS_REQUIRED;
		l->tls_wanted = true;
	}
	f.sasl_external = leg_in_offers_external(l);
	f.dialback = (l->policy.auth & POLICY_AUTH_DIALBACK) != 0;
	xmpp_render_features(l->out, &f);
	leg_flush_out(l);
}

void
leg_in_header(struct leg *l, const struct xmlstream_header *h)
{
	bool restart = l->stream_id[0] != '\0';

	l->peer_version = h->version != NULL && strncmp(h->version, "1.", 2) == 0;
	if (dialback_stream_id(l->stream_id, sizeof(l->stream_id)) == -1) {
		leg_close(l, XMPP_STREAM_INTERNAL_SERVER_ERROR, NULL);
		return;
	}
	if (leg_in_check_addresses(l, h) == -1)
		return;
	if (!restart && l->policy.rate != 0)
		conn_set_rate(l->conn, l->policy.rate, l->policy.burst);
	if (!restart && l->policy.stanza_size != 0)
		xmlstream_set_stanza_size(l->xs, (size_t)l->policy.stanza_size);
	leg_send_header(l, l->stream_id);
	if (!l->peer_version && leg_in_tls_rule(l) == POLICY_TLS_REQUIRED &&
	    !conn_is_tls(l->conn)) {
		leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION, "%s",
		    "TLS is required but the peer is pre-XMPP 1.0");
		return;
	}
	if (l->peer_version)
		leg_in_send_features(l);
	metrics_stream_opened(l->id, l->face, false, l->local, l->remote);
	log_debug("leg %" PRIu64 ": stream %s from %s to %s%s", l->id,
	    l->stream_id, l->remote[0] ? l->remote : "(none)", l->local,
	    restart ? " (restart)" : "");
	leg_enter_state(l, LEG_OPEN);
}

void
leg_in_tls_done(struct leg *l)
{
	char desc[96];

	/* whether the peer sent a certificate: checked per domain later */
	log_peer(LOG_LEVEL_INFO,
	    "leg %" PRIu64 " in %s %s: tls %s established, client certificate "
	    "%s", l->id, config_face_name(l->face),
	    l->remote[0] ? l->remote : "?",
	    conn_tls_description(l->conn, desc, sizeof(desc)),
	    SSL_get0_peer_certificate(conn_ssl(l->conn)) != NULL ?
	    "presented" : "none");
	metrics_leg_tls(l->face, false, conn_ssl(l->conn));
	if (l->state != LEG_TLS)	/* direct TLS: the stream starts now */
		return;
	xmlstream_reset(l->xs);
	l->header_sent = false;
	leg_enter_state(l, LEG_WAIT_HEADER);
}

static void
leg_in_starttls(struct leg *l)
{
	const char *domain = leg_in_cert_domain(l);
	SSL *ssl;

	if (!l->tls_wanted || conn_is_tls(l->conn) || domain == NULL ||
	    (ssl = tls_server_ssl(l->env->tls, domain)) == NULL) {
		xmpp_render_tls_failure(l->out);
		leg_flush_out(l);
		leg_set_reason(l, "STARTTLS was not offered");
		leg_close(l, XMPP_STREAM_ERROR_COUNT, NULL);
		return;
	}
	/* The header's from named the peer: its rule is l->policy. */
	if (leg_tls_relax(l, ssl) == -1) {
		SSL_free(ssl);
		xmpp_render_tls_failure(l->out);
		leg_flush_out(l);
		leg_set_reason(l, "cannot apply tls min-version or tls ciphers");
		leg_close(l, XMPP_STREAM_ERROR_COUNT, NULL);
		return;
	}
	xmpp_render_tls_proceed(l->out);
	leg_flush_out(l);
	leg_enter_state(l, LEG_TLS);
	if (conn_starttls(l->conn, ssl, true) == -1) {
		leg_set_reason(l, "cannot start TLS");
		leg_close(l, XMPP_STREAM_INTERNAL_SERVER_ERROR, NULL);
	}
}

static struct leg_pair *
leg_in_pair(struct leg *l, const char *from, const char *to)
{
	struct leg_pair *p;

	TAILQ_FOREACH(p, &l->pairs, entry)
		if (strcmp(p->from, from) == 0 && strcmp(p->to, to) == 0)
			return p;
	return NULL;
}

static struct leg_pair *
leg_in_add_pair(struct leg *l, const char *from, const char *to,
    enum leg_auth auth)
{
	struct leg_pair *p;

	if ((p = leg_in_pair(l, from, to)) != NULL) {
		p->auth = auth;
		return p;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	snprintf(p->from, sizeof(p->from), "%s", from);
	snprintf(p->to, sizeof(p->to), "%s", to);
	p->auth = auth;
	TAILQ_INSERT_TAIL(&l->pairs, p, entry);
	l->npairs++;
	return p;
}

static void
leg_in_remove_pair(struct leg *l, struct leg_pair *p)
{
	if (l->relay_pair == p)
		l->relay_pair = NULL;
	TAILQ_REMOVE(&l->pairs, p, entry);
	l->npairs--;
	free(p);
}

static void
leg_in_authenticated(struct leg *l, struct leg_pair *p, enum leg_auth auth)
{
	p->pending = false;
	p->auth = auth;
	if (l->remote[0] == '\0')
		snprintf(l->remote, sizeof(l->remote), "%s", p->from);
	l->auth = auth;
	log_peer(LOG_LEVEL_INFO,
	    "leg %" PRIu64 " in %s %s->%s: authenticated by %s", l->id,
	    config_face_name(l->face), p->from, p->to, leg_auth_name(auth));
	metrics_leg_auth(l->id, l->face, false, p->to, p->from,
	    leg_auth_name(auth), true);
	/* it is alive: routes to it may try again at once */
	route_remote_authenticated(l->env->routes, l->face, p->from);
	if (l->state == LEG_OPEN)
		leg_enter_state(l, LEG_OPEN);	/* re-arm: idle from now */
}

/*
 * Decide a SASL EXTERNAL <auth/> (RFC 6120 6.4, XEP-0178). Store the
 * identity that authenticates in who. Return XMPP_SASL_ERROR_COUNT on
 * success, else the failure condition (RFC 6120 6.5).
 */
static enum xmpp_sasl_error
leg_in_sasl_verdict(struct leg *l, const struct xmlstream_node *auth,
    char *who)
{
	char authzid[JID_DOMAIN_MAX * 2];
	enum xmpp_sasl_error e;
	struct policy_match m;

	if (!leg_in_offers_external(l))
		return XMPP_SASL_INVALID_MECHANISM;	/* not offered */
	e = xmpp_sasl_external_read(xmlstream_node_attr(auth, "mechanism"),
	    auth->text, authzid, sizeof(authzid));
	if (e != XMPP_SASL_ERROR_COUNT)
		return e;
	if (authzid[0] == '\0')
		snprintf(who, JID_DOMAIN_MAX, "%s", l->remote);
	else if (!leg_in_domain(authzid, who) || leg_in_local(l, who) != NULL)
		return XMPP_SASL_INVALID_AUTHZID;
	if (!leg_in_cert_is_valid(l, who))
		return authzid[0] == '\0' ? XMPP_SASL_NOT_AUTHORIZED :
		    XMPP_SASL_INVALID_AUTHZID;
	if (policy_match(l->config->policy, who, &m) == -1 ||
	    !m.settings.allow || !(m.settings.auth & POLICY_AUTH_EXTERNAL))
		return XMPP_SASL_NOT_AUTHORIZED;
	return XMPP_SASL_ERROR_COUNT;
}

/* Answer a failed <auth/> or <abort/> with cond; past the limit of
 * attempts, end the stream. */
static void
leg_in_sasl_fail(struct leg *l, enum xmpp_sasl_error cond)
{
	xmpp_render_sasl_failure(l->out, cond);
	leg_flush_out(l);
	l->sasl_failures++;
	metrics_leg_auth(l->id, l->face, false, l->local, l->remote,
	    "sasl-external", false);
	log_peer(LOG_LEVEL_INFO,
	    "leg %" PRIu64 " in %s %s: SASL failure %s (%u of %u)", l->id,
	    config_face_name(l->face), l->remote[0] ? l->remote : "?",
	    xmpp_sasl_error_name(cond), l->sasl_failures,
	    l->config->limits.sasl_attempts);
	if (l->sasl_failures >= l->config->limits.sasl_attempts)
		leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION, "%u SASL "
		    "failures (limit sasl-attempts)", l->sasl_failures);
}

static void
leg_in_sasl(struct leg *l, const struct xmlstream_node *auth)
{
	char who[JID_DOMAIN_MAX] = "";
	enum xmpp_sasl_error e = leg_in_sasl_verdict(l, auth, who);
	struct leg_pair *p = NULL;

	if (e == XMPP_SASL_ERROR_COUNT &&
	    (p = leg_in_add_pair(l, who, l->local, LEG_AUTH_EXTERNAL)) == NULL)
		e = XMPP_SASL_TEMPORARY_AUTH_FAILURE;
	if (e != XMPP_SASL_ERROR_COUNT) {
		leg_in_sasl_fail(l, e);
		return;
	}
	leg_in_authenticated(l, p, LEG_AUTH_EXTERNAL);
	xmpp_render_sasl_success(l->out);
	leg_flush_out(l);
	xmlstream_reset(l->xs);
	l->header_sent = false;
	leg_enter_state(l, LEG_WAIT_HEADER);
}

/* Reply to a db:result of from -> to with verdict (cond for an error). */
static void
leg_in_db_reply(struct leg *l, const char *from, const char *to,
    enum xmpp_db_type verdict, enum xmpp_stanza_error cond)
{
	xmpp_render_db_result_reply(l->out, to, from, verdict, cond);
	leg_flush_out(l);
}

static bool
leg_in_has_valid_pair(const struct leg *l)
{
	return leg_first_pair(l, false) != NULL;
}

/*
 * Refuse the pair from -> to by policy. With other domains authenticated
 * on the stream (piggybacking), answer only this db:result with a
 * policy-violation error and keep the stream; otherwise end the stream
 * with policy-violation. Return -1.
 */
static int __attribute__((format(printf, 4, 5)))
leg_in_policy_refuse(struct leg *l, const char *from, const char *to,
    const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!leg_in_has_valid_pair(l)) {
		leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION, "%s", why);
		return -1;
	}
	log_peer(LOG_LEVEL_INFO,
	    "leg %" PRIu64 " in %s %s->%s: refused: %s", l->id,
	    config_face_name(l->face), from, to, why);
	xmpp_render_db_result_reply(l->out, to, from, XMPP_DB_ERROR,
	    XMPP_STANZA_POLICY_VIOLATION);
	leg_flush_out(l);
	return -1;
}

/*
 * Whether a db:result for from -> to is acceptable on this leg. Return 0,
 * or -1 after refusing it.
 */
static int
leg_in_check_result(struct leg *l, const char *from, const char *to,
    const struct config_domain **dom)
{
	struct policy_match m;

	if (l->face == CONFIG_FACE_PUBLIC) {
		if ((*dom = config_domain_find(l->config, to)) == NULL)
			return leg_in_refuse(l, XMPP_STREAM_HOST_UNKNOWN,
			    "%s is not a local domain", to), -1;
		if (leg_in_local(l, from) != NULL ||
		    policy_match(l->config->policy, from, &m) == -1)
			return leg_in_refuse(l, XMPP_STREAM_INVALID_FROM,
			    "invalid 'from' %s", from), -1;
	} else {
		if ((*dom = config_domain_find_internal(l->config, from)) == NULL)
			return leg_in_refuse(l, XMPP_STREAM_INVALID_FROM,
			    "%s is not a local domain", from), -1;
		if (config_domain_find_internal(l->config, to) != NULL ||
		    policy_match(l->config->policy, to, &m) == -1)
			return leg_in_refuse(l, XMPP_STREAM_HOST_UNKNOWN,
			    "invalid 'to' %s", to), -1;
	}
	if (!m.settings.allow)
		return leg_in_policy_refuse(l, from, to, "%s is denied by "
		    "policy", l->face == CONFIG_FACE_PUBLIC ? from : to);
	if (l->face == CONFIG_FACE_INTERNAL)
		return 0;
	if (m.settings.connections != 0 && leg_in_pair(l, from, to) == NULL &&
	    leg_count_authenticated(l->env, l->face, from) >= m.settings.connections)
		return leg_in_policy_refuse(l, from, to, "%s has %u connections "
		    "already (limit connections)", from, m.settings.connections);
	if (!(m.settings.auth & POLICY_AUTH_DIALBACK))
		return leg_in_policy_refuse(l, from, to, "dialback is not "
		    "allowed for %s", from);
	if (m.settings.tls == POLICY_TLS_REQUIRED && !conn_is_tls(l->conn))
		return leg_in_policy_refuse(l, from, to, "TLS is required for %s",
		    from);
	if (m.settings.verify == POLICY_VERIFY_REQUIRED &&
	    !leg_in_peer_cert_is_valid(l, from))
		return leg_in_policy_refuse(l, from, to, "a valid certificate "
		    "is required for %s", from);
	if (!leg_in_has_valid_pair(l))
		l->policy = m.settings;
	return 0;
}

/*
 * The bounds on what one stream may ask for: one verification at a time
 * per pair, limit domains-per-stream pairs. Return 0, or -1 after ending
 * the stream.
 */
static int
leg_in_check_bounds(struct leg *l, const char *from, const char *to)
{
	const struct leg_pair *p = leg_in_pair(l, from, to);
	unsigned max = l->config->limits.domains_per_stream;

	if (p != NULL && p->pending)
		return leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION, "a second "
		    "db:result for %s->%s while its verification runs", from,
		    to), -1;
	if (p == NULL && l->npairs >= max)
		return leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION, "more "
		    "than %u domain pairs (limit domains-per-stream)", max), -1;
	return 0;
}

/* Answer p's db:result with an error without verifying, and forget p. */
static void
leg_in_verify_refused(struct leg *l, struct leg_pair *p,
    enum xmpp_stanza_error cond, const char *why)
{
	log_peer(LOG_LEVEL_INFO,
	    "leg %" PRIu64 " in %s %s->%s: dialback not verified: %s", l->id,
	    config_face_name(l->face), p->from, p->to, why);
	metrics_leg_auth(l->id, l->face, false, p->to, p->from, "dialback",
	    false);
	leg_in_db_reply(l, p->from, p->to, XMPP_DB_ERROR, cond);
	leg_in_remove_pair(l, p);
}

/*
 * Verify p's key with the authoritative server, within the limits: at
 * most verifications-per-stream started by this stream (past it the
 * stream ends), verify legs within limit verifications and limit
 * connections (else the db:result gets resource-constraint).
 */
static void
leg_in_verify(struct leg *l, struct leg_pair *p, const char *key)
{
	const struct config_limits *lim = &l->config->limits;
	char from[JID_DOMAIN_MAX], to[JID_DOMAIN_MAX];

	if (l->verifications >= lim->verifications_per_stream) {
		leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION, "%u dialback "
		    "verifications (limit verifications-per-stream)",
		    l->verifications);
		return;
	}
	if (strlen(key) > DIALBACK_KEY_MAX) {
		leg_in_verify_refused(l, p, XMPP_STANZA_NOT_ACCEPTABLE,
		    "the key is longer than any server mints");
		return;
	}
	if (leg_count_verifying(l->env) >= lim->verifications ||
	    leg_count(l->env) >= lim->connections) {
		leg_in_verify_refused(l, p, XMPP_STANZA_RESOURCE_CONSTRAINT,
		    leg_count(l->env) >= lim->connections ? "limit connections "
		    "reached" : "limit verifications reached");
		return;
	}
	l->verifications++;
	p->pending = true;
	snprintf(from, sizeof(from), "%s", p->from);
	snprintf(to, sizeof(to), "%s", p->to);
	if (leg_out_verify(l, p, key) == -1)	/* p may be gone after */
		leg_in_verified(l->env, l->id, from, to, XMPP_DB_ERROR,
		    "cannot start the verification");
}

static void
leg_in_db_result(struct leg *l, const struct xmlstream_node *n)
{
	char from[JID_DOMAIN_MAX], to[JID_DOMAIN_MAX];
	const struct config_domain *dom;
	struct leg_pair *p;

	if (!leg_in_domain(xmlstream_node_attr(n, "from"), from)) {
		leg_in_refuse(l, XMPP_STREAM_INVALID_FROM, "%s",
		    "db:result without a valid 'from'");
		return;
	}
	if (!leg_in_domain(xmlstream_node_attr(n, "to"), to)) {
		leg_in_refuse(l, XMPP_STREAM_HOST_UNKNOWN, "%s",
		    "db:result without a valid 'to'");
		return;
	}
	if (leg_in_check_result(l, from, to, &dom) == -1 ||
	    leg_in_check_bounds(l, from, to) == -1)
		return;
	if ((p = leg_in_add_pair(l, from, to, LEG_AUTH_NONE)) == NULL) {
		leg_close(l, XMPP_STREAM_RESOURCE_CONSTRAINT, NULL);
		return;
	}
	if (l->face == CONFIG_FACE_PUBLIC && leg_in_cert_is_valid(l, from)) {
		leg_in_authenticated(l, p, LEG_AUTH_DIALBACK_TLS);
		leg_in_db_reply(l, from, to, XMPP_DB_VALID,
		    XMPP_STANZA_ERROR_COUNT);
		return;
	}
	if (l->face == CONFIG_FACE_INTERNAL && dom->upstream_trusted) {
		leg_in_authenticated(l, p, LEG_AUTH_TRUSTED);
		leg_in_db_reply(l, from, to, XMPP_DB_VALID,
		    XMPP_STANZA_ERROR_COUNT);
		return;
	}
	leg_in_verify(l, p, n->text);
}

void
leg_in_verified(struct leg_env *env, uint64_t id, const char *from,
    const char *to, enum xmpp_db_type verdict, const char *why)
{
	struct leg *l = leg_find(env, id);
	struct leg_pair *p;

	if (l == NULL || l->state == LEG_CLOSING ||
	    (p = leg_in_pair(l, from, to)) == NULL || !p->pending)
		return;
	p->verifier = 0;
	if (verdict == XMPP_DB_VALID) {
		leg_in_authenticated(l, p, LEG_AUTH_DIALBACK);
	} else {
		log_peer(LOG_LEVEL_INFO,
		    "leg %" PRIu64 " in %s %s->%s: dialback %s: %s", id,
		    config_face_name(l->face), from, to,
		    xmpp_db_type_name(verdict), why);
		metrics_leg_auth(l->id, l->face, false, to, from, "dialback",
		    false);
		leg_in_remove_pair(l, p);
	}
	leg_in_db_reply(l, from, to, verdict,
	    XMPP_STANZA_REMOTE_SERVER_NOT_FOUND);
}

void
leg_in_ended(struct leg *l)
{
	struct leg_pair *p;
	struct leg *v;

	TAILQ_FOREACH(p, &l->pairs, entry) {
		if (!p->pending || (v = leg_find(l->env, p->verifier)) == NULL ||
		    !v->verify || v->verify_for != l->id)
			continue;
		v->verify_done = true;		/* nobody to tell */
		leg_set_reason(v, "the stream that asked for it ended");
		leg_close(v, XMPP_STREAM_ERROR_COUNT, NULL);
	}
}

/* Answer a db:verify for a key we minted (we are authoritative). */
static void
leg_in_db_verify(struct leg *l, const struct xmlstream_node *n)
{
	char from[JID_DOMAIN_MAX], to[JID_DOMAIN_MAX];
	const char *id = xmlstream_node_attr(n, "id");
	bool ours, valid;

	if (!leg_in_domain(xmlstream_node_attr(n, "from"), from) ||
	    !leg_in_domain(xmlstream_node_attr(n, "to"), to) || id == NULL) {
		leg_in_refuse(l, XMPP_STREAM_IMPROPER_ADDRESSING, "%s",
		    "db:verify without from, to or id");
		return;
	}
	if (strlen(id) > DIALBACK_ID_MAX) {
		leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION, "db:verify with "
		    "an id of %zu bytes (at most %d)", strlen(id),
		    DIALBACK_ID_MAX);
		return;
	}
	/* Public face: keys of local domains; internal: of remote ones. */
	ours = l->face == CONFIG_FACE_PUBLIC ?
	    config_domain_find(l->config, to) != NULL :
	    config_domain_find_internal(l->config, to) == NULL;
	if (!ours) {
		leg_in_refuse(l, XMPP_STREAM_HOST_UNKNOWN,
		    "db:verify for %s, which we do not answer for", to);
		return;
	}
	valid = dialback_key_is_valid(l->config->dialback_secret,
	    l->config->dialback_secret_len, from, to, id, n->text);
	log_peer(LOG_LEVEL_INFO, "leg %" PRIu64 " in %s: db:verify %s->%s "
	    "id %s: %s", l->id, config_face_name(l->face), to, from,
	    UTIL_ESC(id),
	    valid ? "valid" : "invalid");
	xmpp_render_db_verify_reply(l->out, to, from, id,
	    valid ? XMPP_DB_VALID : XMPP_DB_INVALID, XMPP_STANZA_ERROR_COUNT);
	leg_flush_out(l);
}

/*
 * Write jid with its domain (the span off, len) replaced by domain into out
 * (outlen bytes, NUL-terminated). 0, or -1 if it does not fit.
 */
static int
leg_in_rewrite_jid(const char *jid, size_t off, size_t len,
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
leg_in_jid_domain(const char *s, size_t off, size_t len, char *out)
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
leg_in_is_domain(const char *d, const char *s, size_t len)
{
	return strncmp(d, s, len) == 0 && d[len] == '\0';
}

/* The scratch of env, with room for need bytes; NULL if out of memory. */
static char *
leg_in_scratch_get(struct leg_env *env, size_t need)
{
	char *n;

	if (need <= env->scratch_size)
		return env->scratch;
	if ((n = realloc(env->scratch, need)) == NULL)
		return NULL;
	env->scratch = n;
	env->scratch_size = need;
	return n;
}

/* The namespaces our own stream headers declare. */
static const struct xmlstream_nsdecl leg_in_scope[] = {
	{ "stream", XMPP_NS_STREAMS },
	{ "db", XMPP_NS_DIALBACK },
};

/*
 * Render the start tag of e with its to/from rewritten (rw) into the
 * scratch of l's env, once (twice only when the scratch must grow).
 * Return its length, 0 if out of memory.
 */
static size_t
leg_in_render_tag(struct leg *l, const struct xmlstream_rewrite *rw,
    size_t nrw)
{
	struct leg_env *env = l->env;
	size_t n = xmlstream_render_start_tag(l->xs, rw, nrw, leg_in_scope,
	    nitems(leg_in_scope), env->scratch, env->scratch_size);

	if (n < env->scratch_size)
		return n;
	if (leg_in_scratch_get(env, n + 1 < 512 ? 512 : n + 1) == NULL)
		return 0;
	return xmlstream_render_start_tag(l->xs, rw, nrw, leg_in_scope,
	    nitems(leg_in_scope), env->scratch, env->scratch_size);
}

/* The top-level attributes of stanza e into a, in one pass over them. */
static void
leg_in_stanza_attrs(const struct xmlstream_element *e,
    struct xmpp_stanza_attrs *a)
{
	const struct xmlstream_attr *at = e->node.attrs;

	memset(a, 0, sizeof(*a));
	a->name = e->node.name;
	for (size_t i = 0; i < e->node.nattrs; i++) {
		if (at[i].ns[0] != '\0')
			continue;
		if (strcmp(at[i].name, "from") == 0)
			a->from = at[i].value;
		else if (strcmp(at[i].name, "to") == 0)
			a->to = at[i].value;
		else if (strcmp(at[i].name, "id") == 0)
			a->id = at[i].value;
		else if (strcmp(at[i].name, "type") == 0)
			a->type = at[i].value;
	}
}

/*
 * Hand the stanza e, its start tag rewritten (rw), to the route local ->
 * remote on face: the new start tag and the rest of e's bytes as they
 * came, as two pieces (the route copies them once, where they go).
 */
static void
leg_in_relay(struct leg *l, struct leg_pair *p,
    const struct xmlstream_element *e, const struct xmpp_stanza_attrs *attrs,
    const struct xmlstream_rewrite *rw, size_t nrw, enum config_face face,
    const char *local, const char *remote)
{
	struct route_origin o = { .face = l->face, .attrs = *attrs,
	    .leg_id = l->id };
	struct iovec iov[2];
	struct route *r;

	if ((iov[0].iov_len = leg_in_render_tag(l, rw, nrw)) == 0 ||
	    (r = route_get_cached(l->env->routes, &p->route, face, local,
	    remote)) == NULL) {
		route_bounce(l->env->routes, &o, XMPP_STANZA_RESOURCE_CONSTRAINT, "out of memory");
		return;
	}
	iov[0].iov_base = l->env->scratch;
	iov[1].iov_base = (void *)(uintptr_t)(e->raw + e->starttaglen);
	iov[1].iov_len = e->rawlen - e->starttaglen;
	/* A remote server's stanzas: the inside may see its address. */
	if (l->face == CONFIG_FACE_PUBLIC && p->dom->upstream_transparent &&
	    l->conn != NULL)
		route_set_source(r, conn_peer_addr(l->conn),
		    sizeof(struct sockaddr_storage));
	/* The original destination is the server of the domain the stream
	 * was opened to, not of other domains piggybacked on it. */
	if (l->origlen > 0 && l->conn != NULL && strcmp(remote, l->local) == 0)
		route_set_original(r, (const struct sockaddr *)&l->orig,
		    l->origlen, conn_peer_addr(l->conn),
		    sizeof(struct sockaddr_storage));
	route_send(r, iov, nitems(iov), &o);
	if (route_is_congested(r))
		leg_pause(l, r);
}

/*
 * The slow path of leg_in_stanza(): normalise the domains of from and to
 * (their spans fs and ts), and find their authenticated pair, or refuse
 * the stream. Remember the pair for the next stanza when the stanza wrote
 * its domains as normalised (the usual case): the next one with the same
 * bytes skips all this.
 */
static struct leg_pair *
leg_in_stanza_pair(struct leg *l, const struct xmlstream_element *e,
    const char *from, const size_t fs[2], const char *to, const size_t ts[2])
{
	char fd[JID_DOMAIN_MAX], td[JID_DOMAIN_MAX];
	struct leg_pair *p;
	bool from_known = false;

	if (!leg_in_jid_domain(from, fs[0], fs[1], fd) ||
	    !leg_in_jid_domain(to, ts[0], ts[1], td)) {
		leg_in_refuse(l, XMPP_STREAM_IMPROPER_ADDRESSING, "<%s/> "
		    "without a valid 'from' and 'to'", e->node.name);
		return NULL;
	}
	if (!leg_in_has_valid_pair(l)) {
		leg_in_refuse(l, XMPP_STREAM_NOT_AUTHORIZED, "<%s/> before "
		    "any domain authenticated", e->node.name);
		return NULL;
	}
	TAILQ_FOREACH(p, &l->pairs, entry)
		if (!p->pending && strcmp(p->from, fd) == 0)
			from_known = true;
	if (!from_known) {
		leg_in_refuse(l, XMPP_STREAM_INVALID_FROM, "%s did not "
		    "authenticate on this stream", fd);
		return NULL;
	}
	if ((p = leg_in_pair(l, fd, td)) == NULL || p->pending) {
		bool served = leg_in_local(l, td) != NULL;

		if (l->face == CONFIG_FACE_INTERNAL)
			served = !served;
		leg_in_refuse(l, served ? XMPP_STREAM_INVALID_FROM :
		    XMPP_STREAM_HOST_UNKNOWN, "%s", served ? "the domain pair "
		    "did not authenticate on this stream" : "'to' is not "
		    "served here");
		return NULL;
	}
	/* Ours of the pair: to (public face) or from (internal face). */
	if (p->dom == NULL)
		p->dom = l->face == CONFIG_FACE_PUBLIC ?
		    config_domain_find(l->config, td) :
		    config_domain_find_internal(l->config, fd);
	if (leg_in_is_domain(fd, from + fs[0], fs[1]) &&
	    leg_in_is_domain(td, to + ts[0], ts[1]))
		l->relay_pair = p;
	return p;
}

/*
 * A stanza: check its addressing against the authenticated pairs, rewrite
 * the domain of ours (to on the public face, from on the internal face)
 * and relay it. Per stanza this costs two scans for the domain spans and
 * two comparisons; normalising and looking up happen once per pair.
 */
static void
leg_in_stanza(struct leg *l, const struct xmlstream_element *e)
{
	struct xmpp_stanza_attrs a;
	const char *from, *to;
	char jid[JID_PART_MAX * 3 + 8];
	size_t fs[2], ts[2];
	const struct config_domain *dom;
	struct xmlstream_rewrite rw;
	struct leg_pair *p;

	leg_in_stanza_attrs(e, &a);
	from = a.from;
	to = a.to;
	if (from == NULL || to == NULL ||
	    jid_domain_span(from, strlen(from), &fs[0], &fs[1]) == -1 ||
	    jid_domain_span(to, strlen(to), &ts[0], &ts[1]) == -1) {
		leg_in_refuse(l, XMPP_STREAM_IMPROPER_ADDRESSING, "<%s/> "
		    "without a valid 'from' and 'to'", e->node.name);
		return;
	}
	if ((p = l->relay_pair) == NULL || p->pending ||
	    !leg_in_is_domain(p->from, from + fs[0], fs[1]) ||
	    !leg_in_is_domain(p->to, to + ts[0], ts[1]))
		if ((p = leg_in_stanza_pair(l, e, from, fs, to, ts)) == NULL)
			return;
	l->stanzas_in++;
	metrics_stanza(&p->stanzas, l->face, false, p->to, p->from);
	if (e->node.name[0] == 'i' && strcmp(e->node.name, "iq") == 0 &&
	    route_ack(l->env->routes, l->face, p->to, p->from, a.id, a.type))
		return;		/* the answer to our acknowledgement ping */
	dom = p->dom;
	rw.value = jid;
	if (l->face == CONFIG_FACE_PUBLIC) {
		/* remote -> local domain: to the internal server as remote. */
		const char *inside = dom->internal_name != NULL ?
		    dom->internal_name : dom->name;

		rw.name = "to";
		if (leg_in_rewrite_jid(to, ts[0], ts[1], inside, jid,
		    sizeof(jid)) == -1) {
			leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION, "%s",
			    "'to' too long");
			return;
		}
		leg_in_relay(l, p, e, &a, &rw, 1, CONFIG_FACE_INTERNAL,
		    p->from, inside);
	} else {
		/* internal server -> remote: to the world as the public name. */
		rw.name = "from";
		if (leg_in_rewrite_jid(from, fs[0], fs[1], dom->name, jid,
		    sizeof(jid)) == -1) {
			leg_in_refuse(l, XMPP_STREAM_POLICY_VIOLATION, "%s",
			    "'from' too long");
			return;
		}
		leg_in_relay(l, p, e, &a, &rw, 1, CONFIG_FACE_PUBLIC,
		    dom->name, p->to);
	}
}

static bool
leg_in_is(const struct xmlstream_node *n, const char *ns, const char *name)
{
	return strcmp(n->ns, ns) == 0 && strcmp(n->name, name) == 0;
}

void
leg_in_element(struct leg *l, const struct xmlstream_element *e)
{
	const struct xmlstream_node *n = &e->node;

	if (strcmp(n->ns, XMPP_NS_SERVER) == 0 &&
	    (strcmp(n->name, "message") == 0 ||
	    strcmp(n->name, "presence") == 0 || strcmp(n->name, "iq") == 0))
		leg_in_stanza(l, e);
	else if (leg_in_is(n, XMPP_NS_DIALBACK, "result"))
		leg_in_db_result(l, n);
	else if (leg_in_is(n, XMPP_NS_DIALBACK, "verify"))
		leg_in_db_verify(l, n);
	else if (leg_in_is(n, XMPP_NS_TLS, "starttls"))
		leg_in_starttls(l);
	else if (leg_in_is(n, XMPP_NS_SASL, "auth"))
		leg_in_sasl(l, n);
	else if (leg_in_is(n, XMPP_NS_SASL, "abort"))
		leg_in_sasl_fail(l, XMPP_SASL_ABORTED);
	else if (leg_in_is(n, XMPP_NS_STREAMS, "error")) {
		const struct xmlstream_node *c = n->child;

		leg_set_reason(l, "peer sent stream error %s",
		    UTIL_ESC(c != NULL ? c->name : NULL));
		leg_close(l, XMPP_STREAM_ERROR_COUNT, NULL);
	} else
		leg_in_refuse(l, XMPP_STREAM_UNSUPPORTED_STANZA_TYPE,
		    "unexpected <%s/>", UTIL_ESC(n->name));
}
