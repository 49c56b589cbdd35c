/*
 * leg_in: the driver of incoming streams. A remote server on the public
 * face, or the internal server on the internal face, connects; what to
 * answer, offer, accept or refuse is decided by stream_in.c (sans I/O).
 * This file turns the leg's I/O into stream_in events and carries out the
 * actions that come back: it renders and writes, starts TLS, starts
 * dialback verifications (leg_out_verify()), logs, counts, and relays the
 * stanzas of authenticated pairs to the route of the other face, with the
 * rewrite stream_in_stanza() decided.
 *
 * Bidirectional streams (XEP-0288): an incoming leg whose peer enabled
 * bidi may carry the route of the reverse of one authenticated pair
 * (leg_in_bidi_carrier()); the stanzas a peer sends back on a
 * bidirectional outgoing leg are checked and relayed here too, through
 * that leg's reverse stream (leg_in_reverse_element()).
 */
#include "fgconfig.h"

#include <sys/uio.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leg_private.h"
#include "log.h"
#include "payload.h"
#include "route.h"
#include "tls.h"
#include "util.h"

static void leg_in_execute(struct leg *, const struct stream_in_actions *);

static struct leg_pair *
leg_in_pair_of(struct stream_pair *p)
{
	return (struct leg_pair *)p;		/* its first member */
}

/* stream_in_ctx: whether we hold a certificate for domain. */
static bool
leg_in_has_cert(const void *arg, const char *domain)
{
	const struct leg *l = arg;

	return l->env->tls != NULL && tls_has_domain(l->env->tls, domain);
}

/* stream_in_ctx: whether the peer's certificate is valid for domain. */
static bool
leg_in_peer_cert_valid(const void *arg, const char *domain)
{
	const struct leg *l = arg;
	SSL *ssl = l->conn != NULL ? conn_ssl(l->conn) : NULL;

	return ssl != NULL && tls_peer_check(ssl, domain) == TLS_PEER_VALID;
}

/* stream_in_ctx: incoming legs of l's face where domain authenticated. */
static unsigned
leg_in_authenticated_legs(const void *arg, const char *domain)
{
	const struct leg *l = arg;

	return leg_count_authenticated(l->env, l->face, domain);
}

/* What the stream module may know of l's world. */
static void
leg_in_ctx(const struct leg *l, struct stream_in_ctx *c)
{
	c->config = l->config;
	c->tls = conn_is_tls(l->conn);
	c->has_cert = leg_in_has_cert;
	c->peer_cert_valid = leg_in_peer_cert_valid;
	c->authenticated = leg_in_authenticated_legs;
	c->arg = l;
}

void
leg_in_header(struct leg *l, const struct xmlstream_header *h)
{
	struct stream_in_actions a;
	struct stream_in_ctx c;

	if (dialback_stream_id(l->stream_id, sizeof(l->stream_id)) == -1) {
		leg_close(l, XMPP_STREAM_INTERNAL_SERVER_ERROR, NULL);
		return;
	}
	leg_in_ctx(l, &c);
	stream_in_header(&l->istream, &c, h, &a);
	l->peer_version = l->istream.peer_version;
	leg_in_execute(l, &a);
}

void
leg_in_tls_done(struct leg *l)
{
	struct stream_in_actions a;
	struct stream_in_ctx c;
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
	leg_in_ctx(l, &c);
	stream_in_tls_done(&l->istream, &c, &a);
	leg_in_execute(l, &a);
}

void
leg_in_verified(struct leg_env *env, uint64_t id, const char *from,
    const char *to, enum xmpp_db_type verdict, const char *why)
{
	struct leg *l = leg_find(env, id);
	struct stream_in_actions a;
	struct stream_in_ctx c;
	struct stream_pair *p;

	if (l == NULL || l->state == LEG_CLOSING ||
	    (p = stream_in_pair(&l->istream, from, to)) == NULL || !p->pending)
		return;
	leg_in_pair_of(p)->verifier = 0;
	leg_in_ctx(l, &c);
	stream_in_verified(&l->istream, &c, from, to, verdict, why, &a);
	leg_in_execute(l, &a);
}

void
leg_in_ended(struct leg *l)
{
	struct stream_pair *p;
	struct leg *v;

	if (l->route != NULL) {
		struct route *r = l->route;

		/* what it holds for the peer goes out on a new leg */
		l->route = NULL;
		route_leg_gone(r, l, XMPP_STANZA_REMOTE_SERVER_TIMEOUT,
		    "the bidirectional stream closed");
	}
	TAILQ_FOREACH(p, &l->istream.pairs, entry) {
		if (!p->pending || (v = leg_find(l->env,
		    leg_in_pair_of(p)->verifier)) == NULL ||
		    !v->verify || v->verify_for != l->id)
			continue;
		v->verify_done = true;		/* nobody to tell */
		leg_set_reason(v, "the stream that asked for it ended");
		leg_close(v, XMPP_STREAM_ERROR_COUNT, NULL);
	}
}

/* The stream refused the pair's verification: the driver's own bounds. */
static void
leg_in_verify_refused(struct leg *l, struct stream_pair *p,
    enum xmpp_stanza_error cond, const char *why)
{
	struct stream_in_actions a;
	struct stream_in_ctx c;

	leg_in_ctx(l, &c);
	stream_in_verify_refused(&l->istream, &c, p, cond, why, &a);
	leg_in_execute(l, &a);
}

/*
 * Verify p's key with the authoritative server, within the bounds of all
 * legs: verify legs within limit verifications and limit connections
 * (else the db:result gets resource-constraint).
 */
static void
leg_in_verify(struct leg *l, struct stream_pair *p, const char *key)
{
	const struct config_limits *lim = &l->config->limits;
	char from[JID_DOMAIN_MAX], to[JID_DOMAIN_MAX];

	if (leg_count_verifying(l->env) >= lim->verifications ||
	    leg_count(l->env) >= lim->connections) {
		leg_in_verify_refused(l, p, XMPP_STANZA_RESOURCE_CONSTRAINT,
		    leg_count(l->env) >= lim->connections ? "limit connections "
		    "reached" : "limit verifications reached");
		return;
	}
	snprintf(from, sizeof(from), "%s", p->from);
	snprintf(to, sizeof(to), "%s", p->to);
	if (leg_out_verify(l, leg_in_pair_of(p), key) == -1) /* p may go */
		leg_in_verified(l->env, l->id, from, to, XMPP_DB_ERROR,
		    "cannot start the verification");
}

/* A domain pair got in. */
static void
leg_in_authenticated(struct leg *l, const struct stream_pair *p,
    enum leg_auth auth)
{
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

/* TLS as the server with the certificate of domain, after <proceed/>. */
static void
leg_in_start_tls(struct leg *l, const char *domain)
{
	SSL *ssl = l->env->tls != NULL ? tls_server_ssl(l->env->tls, domain) :
	    NULL;

	/* The header's from named the peer: its rule is l->policy. */
	if (ssl != NULL && leg_tls_relax(l, ssl) == -1) {
		SSL_free(ssl);
		leg_set_reason(l, "cannot apply tls min-version or tls ciphers");
		leg_close(l, XMPP_STREAM_INTERNAL_SERVER_ERROR, NULL);
		return;
	}
	if (ssl == NULL || conn_starttls(l->conn, ssl, true) == -1) {
		leg_set_reason(l, "cannot start TLS");
		leg_close(l, XMPP_STREAM_INTERNAL_SERVER_ERROR, NULL);
	}
}

static void
leg_in_note(const struct leg *l, const struct stream_in_action *x)
{
	log_peer(LOG_LEVEL_INFO, "leg %" PRIu64 " %s %s%s%s%s%s: %s", l->id,
	    l->outgoing ? "out" : "in", config_face_name(l->face),
	    x->from != NULL ? " " : "",
	    x->from != NULL ? x->from : "", x->to != NULL ? "->" : "",
	    x->to != NULL ? x->to : "", x->why);
}

static void
leg_in_close(struct leg *l, const struct stream_in_action *x)
{
	if (x->yes) {
		leg_set_reason(l, "refused: %s", x->why);
		metrics_stream_refused(l->face, false, l->local, l->remote,
		    x->cond);
	} else if (x->why != NULL)
		leg_set_reason(l, "%s", x->why);
	leg_close(l, x->cond, NULL);
}

static enum leg_state
leg_in_state(enum stream_in_state s)
{
	switch (s) {
	case STREAM_IN_WAIT_HEADER:
		return LEG_WAIT_HEADER;
	case STREAM_IN_OPEN:
		return LEG_OPEN;
	case STREAM_IN_TLS:
		return LEG_TLS;
	default:
		return LEG_CLOSING;
	}
}

/* Render what the action sends (false: it sends nothing). */
static bool
leg_in_render(struct leg *l, const struct stream_in_action *x)
{
	switch (x->what) {
	case STREAM_IN_SEND_FEATURES:
		xmpp_render_features(l->out, &x->features);
		return true;
	case STREAM_IN_SEND_PROCEED:
		xmpp_render_tls_proceed(l->out);
		return true;
	case STREAM_IN_SEND_TLS_FAILURE:
		xmpp_render_tls_failure(l->out);
		return true;
	case STREAM_IN_SEND_SASL_SUCCESS:
		xmpp_render_sasl_success(l->out);
		return true;
	case STREAM_IN_SEND_SASL_FAILURE:
		xmpp_render_sasl_failure(l->out, x->sasl);
		return true;
	case STREAM_IN_SEND_DB_RESULT:
		xmpp_render_db_result_reply(l->out, x->to, x->from, x->verdict,
		    x->stanza_cond);
		return true;
	case STREAM_IN_SEND_DB_VERIFY:
		xmpp_render_db_verify_reply(l->out, x->to, x->from, x->id,
		    x->verdict, XMPP_STANZA_ERROR_COUNT);
		return true;
	default:
		return false;
	}
}

/* Carry out one action that is not a rendering. */
static void
leg_in_act(struct leg *l, const struct stream_in_action *x)
{
	switch (x->what) {
	case STREAM_IN_SEND_HEADER:
		l->peer_version = x->yes;
		leg_send_header(l, l->stream_id);
		break;
	case STREAM_IN_LIMITS:
		if (l->policy.rate != 0)
			conn_set_rate(l->conn, l->policy.rate, l->policy.burst);
		if (l->policy.stanza_size != 0)
			xmlstream_set_stanza_size(l->xs,
			    (size_t)l->policy.stanza_size);
		break;
	case STREAM_IN_OPENED:
		metrics_stream_opened(l->id, l->face, false, l->local,
		    l->remote);
		log_debug("leg %" PRIu64 ": stream %s from %s to %s%s", l->id,
		    l->stream_id, l->remote[0] ? l->remote : "(none)",
		    l->local, x->yes ? " (restart)" : "");
		break;
	case STREAM_IN_START_TLS:
		leg_in_start_tls(l, x->domain);
		break;
	case STREAM_IN_RESTART:
		xmlstream_reset(l->xs);
		l->header_sent = false;
		break;
	case STREAM_IN_AUTHENTICATED:
		leg_in_authenticated(l, x->pair, x->auth);
		break;
	case STREAM_IN_AUTH_FAILED:
		metrics_leg_auth(l->id, l->face, false, x->to, x->from,
		    x->method, false);
		break;
	case STREAM_IN_VERIFY:
		leg_in_verify(l, x->pair, x->key);
		break;
	case STREAM_IN_NOTE:
		leg_in_note(l, x);
		break;
	case STREAM_IN_STATE:
		leg_enter_state(l, leg_in_state(x->state));
		break;
	case STREAM_IN_BIDI:
		l->bidi = true;
		log_peer(LOG_LEVEL_INFO, "leg %" PRIu64 " in %s %s->%s: bidi "
		    "enabled (XEP-0288): stanzas to %s may go back on this "
		    "stream once it authenticates", l->id,
		    config_face_name(l->face), l->remote[0] != '\0' ?
		    l->remote : "(unknown)", l->local, l->remote[0] != '\0' ?
		    l->remote : "the peer");
		break;
	case STREAM_IN_CLOSE:
		leg_in_close(l, x);
		break;
	default:
		break;
	}
}

/* Carry out the actions of one stream_in event, in order. */
static void
leg_in_execute(struct leg *l, const struct stream_in_actions *a)
{
	for (size_t i = 0; i < a->n; i++) {
		if (l->state == LEG_CLOSING || l->state == LEG_CLOSED)
			return;
		if (leg_in_render(l, &a->a[i]))
			leg_flush_out(l);
		else
			leg_in_act(l, &a->a[i]);
	}
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

/* Mapped local domains one stanza body may name (payload.h). */
#define LEG_IN_PAYLOAD_MAP	64

/* Whether a domain of c covers subdomains (local.h). */
static bool
leg_in_has_subdomains(const struct config *c)
{
	const struct config_domain *d;

	TAILQ_FOREACH(d, &c->domains, entry)
		if (d->subdomains)
			return true;
	return false;
}

/*
 * The rewrite map towards the other face (public names to internal ones
 * on the public face, the reverse on the internal face), reduced to the
 * domains the body b names, or all when it holds a character reference:
 * one scan of b per mapped domain. A domain with subdomains maps every
 * name under it (PAYLOAD_MAP_SUBDOMAINS, listed or not: a name the list
 * leaves out is rewritten too, which never leaks the inside's names).
 * Domains whose two names are the same are in the map only beside
 * subdomains, where their own name must win over a shorter suffix (as
 * local_find() does). Return how many, or -1 if more than
 * LEG_IN_PAYLOAD_MAP.
 */
static int
leg_in_payload_map(const struct leg *l, const struct payload_body *b,
    struct payload_map *map)
{
	const struct config_domain *d;
	struct payload_map m = { NULL, NULL, 0 };
	int n = 0, ref = -1, subs = -1;	/* not looked for yet */

	TAILQ_FOREACH(d, &l->config->domains, entry) {
		if (d->internal_name == NULL ||
		    strcmp(d->internal_name, d->name) == 0) {
			if (subs == -1)
				subs = leg_in_has_subdomains(l->config);
			if (!subs)
				continue;
		}
		if (ref == -1)
			ref = payload_has_ref(b->bytes, b->len);
		m.from = l->face == CONFIG_FACE_PUBLIC ? d->name :
		    d->internal_name != NULL ? d->internal_name : d->name;
		m.to = l->face == CONFIG_FACE_PUBLIC ? (d->internal_name !=
		    NULL ? d->internal_name : d->name) : d->name;
		m.flags = d->subdomains ? PAYLOAD_MAP_SUBDOMAINS : 0;
		if (!ref && !payload_has_domain(b->bytes, b->len, m.from))
			continue;
		if (n == LEG_IN_PAYLOAD_MAP)
			return -1;
		map[n++] = m;
	}
	return n;
}

/*
 * Point body at the body of stanza e (after its start tag) with the JIDs
 * it carries rewritten (payload.h): its own bytes when none is (the
 * usual case: a scan per mapped domain, no copy), else the scratch of
 * l's env after the taglen bytes of the start tag rendered there.
 * Return 0, or -1 with the condition and the reason to bounce it with in
 * *cond and *why.
 */
static int
leg_in_payload(struct leg *l, const struct xmlstream_element *e,
    size_t taglen, struct iovec *body, enum xmpp_stanza_error *cond,
    const char **why)
{
	const struct xmlstream_header *h = xmlstream_header(l->xs);
	struct payload_body b = { e->raw + e->starttaglen,
	    e->rawlen - e->starttaglen, h != NULL ? h->nsdecls : NULL,
	    h != NULL ? h->nnsdecls : 0, e->nsdecls, e->nnsdecls };
	struct payload_map map[LEG_IN_PAYLOAD_MAP];
	struct leg_env *env = l->env;
	enum payload_result r;
	size_t len = 0;
	int n;

	body->iov_base = (void *)(uintptr_t)b.bytes;
	body->iov_len = b.len;
	*cond = XMPP_STANZA_POLICY_VIOLATION;
	if ((n = leg_in_payload_map(l, &b, map)) == 0)
		return 0;
	if (n == -1) {
		*why = "it names too many local domains to rewrite";
		return -1;
	}
	r = payload_rewrite(&b, map, (size_t)n, env->scratch + taglen,
	    env->scratch_size - taglen, &len);
	if (r == PAYLOAD_REWRITTEN && len > env->scratch_size - taglen) {
		if (leg_in_scratch_get(env, taglen + len) == NULL) {
			*cond = XMPP_STANZA_RESOURCE_CONSTRAINT;
			*why = "out of memory";
			return -1;
		}
		r = payload_rewrite(&b, map, (size_t)n, env->scratch + taglen,
		    env->scratch_size - taglen, &len);
	}
	if (r == PAYLOAD_ERROR) {
		*why = "its JIDs cannot be rewritten";
		return -1;
	}
	if (r == PAYLOAD_REWRITTEN) {
		body->iov_base = env->scratch + taglen;
		body->iov_len = len;
	}
	return 0;
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
	enum xmpp_stanza_error cond;
	const char *why;

	if ((iov[0].iov_len = leg_in_render_tag(l, rw, nrw)) == 0 ||
	    (r = route_get_cached(l->env->routes, &p->route, face, local,
	    remote)) == NULL) {
		route_bounce(l->env->routes, &o, XMPP_STANZA_RESOURCE_CONSTRAINT, "out of memory");
		return;
	}
	if (leg_in_payload(l, e, iov[0].iov_len, &iov[1], &cond, &why) == -1) {
		route_bounce(l->env->routes, &o, cond, why);
		return;
	}
	iov[0].iov_base = l->env->scratch;	/* it may have moved */
	/* A remote server's stanzas: the inside may see its address. */
	if (l->face == CONFIG_FACE_PUBLIC && p->s.dom->upstream_transparent &&
	    l->conn != NULL)
		route_set_source(r, conn_peer_addr(l->conn),
		    sizeof(struct sockaddr_storage));
	/* The original destination is the server of the domain the stream
	 * was opened to, not of other domains piggybacked on it. */
	if (l->orig != NULL && l->conn != NULL && strcmp(remote, l->local) == 0)
		route_set_original(r, (const struct sockaddr *)l->orig,
		    l->origlen, conn_peer_addr(l->conn),
		    sizeof(struct sockaddr_storage));
	route_send(r, iov, nitems(iov), &o);
	if (route_is_congested(r))
		leg_pause(l, r);
}

/* Whether e is a stanza (message, presence, iq of jabber:server). */
static bool
leg_in_is_stanza(const struct xmlstream_node *n)
{
	return strcmp(n->ns, XMPP_NS_SERVER) == 0 &&
	    (strcmp(n->name, "message") == 0 ||
	    strcmp(n->name, "presence") == 0 || strcmp(n->name, "iq") == 0);
}

/*
 * A stanza: stream_in_stanza() checks its addressing against the
 * authenticated pairs and decides the rewrite of the domain of ours (to on
 * the public face, from on the internal face); relay it. Per stanza this
 * costs two scans for the domain spans and two comparisons; normalising
 * and looking up happen once per pair. Nothing is allocated.
 */
static void
leg_in_stanza(struct leg *l, struct stream_in *s,
    const struct xmlstream_element *e)
{
	struct xmpp_stanza_attrs a;
	struct stream_in_actions acts;
	struct stream_in_relay r;
	struct stream_in_ctx c;
	struct leg_pair *p;

	leg_in_stanza_attrs(e, &a);
	leg_in_ctx(l, &c);
	if (stream_in_stanza(s, &c, &a, &r, &acts) == -1) {
		leg_in_execute(l, &acts);
		return;
	}
	p = leg_in_pair_of(r.pair);
	l->stanzas_in++;
	metrics_stanza(&p->stanzas, l->face, false, p->s.to, p->s.from);
	if (e->node.name[0] == 'i' && strcmp(e->node.name, "iq") == 0 &&
	    route_ack(l->env->routes, l->face, p->s.to, p->s.from, a.id,
	    a.type))
		return;		/* the answer to our acknowledgement ping */
	leg_in_relay(l, p, e, &a, &r.rw, 1, r.face, r.local, r.remote);
}

void
leg_in_element(struct leg *l, const struct xmlstream_element *e)
{
	const struct xmlstream_node *n = &e->node;
	struct stream_in_actions a;
	struct stream_in_ctx c;

	if (leg_in_is_stanza(n)) {
		leg_in_stanza(l, &l->istream, e);
		return;
	}
	leg_in_ctx(l, &c);
	stream_in_element(&l->istream, &c, e, &a);
	leg_in_execute(l, &a);
}

void
leg_in_reverse_element(struct leg *l, const struct xmlstream_element *e)
{
	struct stream_in_actions a;
	struct stream_in_ctx c;

	if (leg_in_is_stanza(&e->node)) {
		leg_in_stanza(l, l->reverse, e);
		return;
	}
	leg_in_ctx(l, &c);
	stream_in_element(l->reverse, &c, e, &a);
	leg_in_execute(l, &a);
}

/* The authenticated pair remote -> local of l whose reverse carries no
 * route, or NULL. */
static struct leg_pair *
leg_in_bidi_pair(struct leg *l, const char *local, const char *remote)
{
	struct stream_pair *p;

	TAILQ_FOREACH(p, &l->istream.pairs, entry)
		if (!p->pending && strcmp(p->from, remote) == 0 &&
		    strcmp(p->to, local) == 0)
			return leg_in_pair_of(p);
	return NULL;
}

struct leg *
leg_in_bidi_carrier(struct leg_env *env, struct route *r,
    enum config_face face, const char *local, const char *remote)
{
	struct leg_pair *p;
	struct leg *l;

	TAILQ_FOREACH(l, &env->registry, entry) {
		if (l->outgoing || !l->bidi || l->face != face ||
		    l->state != LEG_OPEN || l->route != NULL || l->conn == NULL ||
		    (p = leg_in_bidi_pair(l, local, remote)) == NULL)
			continue;
		p->carries_reverse = true;
		l->route = r;
		log_peer(LOG_LEVEL_INFO, "leg %" PRIu64 " in %s %s->%s: bidi: "
		    "carries the route %s->%s too (no connection of its own)",
		    l->id, config_face_name(face), remote, local, local,
		    remote);
		return l;
	}
	return NULL;
}
