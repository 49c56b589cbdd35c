/*
 * leg_out: outgoing streams. A route's leg towards a remote server (public
 * face, as a local domain) or towards the internal server (internal face,
 * as the remote domain), or a verify leg that asks an authoritative server
 * whether a dialback key is valid.
 *
 * Discovery: a static route from policy, else the SRV records of the
 * remote domain (public face), or the local domain's upstream (internal
 * face); every target's addresses are tried in order before the next
 * target. Then: our header, their features, STARTTLS as policy says, SASL
 * EXTERNAL when offered and allowed, else dialback with a key minted from
 * the secret (XEP-0185).
 */
#include "fgconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct.h"
#include "leg_private.h"
#include "local.h"
#include "log.h"
#include "proxy.h"
#include "route.h"
#include "tls.h"
#include "util.h"

static void leg_out_next_target(struct leg *);

/* Fail the leg: bounce (routes) or report (verify legs) with cond. */
static void
leg_out_fail(struct leg *l, enum xmpp_stanza_error cond,
    enum xmpp_stream_error scond, const char *why)
{
	l->fail_cond = cond;
	leg_set_reason(l, "%s", why);
	if (scond == XMPP_STREAM_ERROR_COUNT && l->conn == NULL)
		leg_end(l, why);
	else
		leg_close(l, scond, NULL);
}

/* The settings for an outgoing leg: the remote's rule on the public face;
 * towards the internal server: TLS when offered, unverified, dialback, and
 * bidi as the rule of the remote domain it speaks as says. */
static void
leg_out_policy(struct leg *l)
{
	struct policy_match m;

	if (l->face == CONFIG_FACE_PUBLIC &&
	    policy_match(l->config->policy, l->remote, &m) == 0) {
		l->policy = m.settings;
		return;
	}
	policy_settings_init(&l->policy);
	l->policy.allow = true;
	l->policy.tls = POLICY_TLS_OPTIONAL;
	l->policy.verify = POLICY_VERIFY_NONE;
	l->policy.auth = POLICY_AUTH_DIALBACK;
	if (l->face == CONFIG_FACE_INTERNAL &&
	    policy_match(l->config->policy, l->local, &m) == 0)
		l->policy.bidi = m.settings.bidi;
}

static struct leg *
leg_out_new(struct leg_env *env, enum config_face face, const char *local,
    const char *remote)
{
	struct leg *l;

	if ((l = leg_alloc(env, face, true)) == NULL)
		return NULL;
	if ((l->dial = calloc(1, sizeof(*l->dial))) == NULL) {
		leg_end(l, "out of memory");
		return NULL;
	}
	snprintf(l->local, sizeof(l->local), "%s", local);
	snprintf(l->remote, sizeof(l->remote), "%s", remote);
	l->fail_cond = XMPP_STANZA_REMOTE_SERVER_NOT_FOUND;
	leg_out_policy(l);
	return l;
}

struct leg *
leg_out_connect(struct leg_env *env, struct route *route,
    enum config_face face, const char *local, const char *remote,
    uint64_t cause)
{
	struct leg *l;

	if ((l = leg_out_new(env, face, local, remote)) == NULL)
		return NULL;
	l->route = route;
	l->cause = cause;
	if (face == CONFIG_FACE_PUBLIC && !l->policy.allow) {
		leg_out_fail(l, XMPP_STANZA_POLICY_VIOLATION,
		    XMPP_STREAM_ERROR_COUNT, "denied by policy");
		return NULL;
	}
	leg_out_start(l);
	return l->state == LEG_CLOSED ? NULL : l;
}

int
leg_out_verify(struct leg *asker, struct leg_pair *p, const char *key)
{
	struct leg *l;

	if (strlen(key) >= sizeof(l->dial->verify_key) ||
	    (l = leg_out_new(asker->env, asker->face, p->s.to,
	    p->s.from)) == NULL)
		return -1;
	l->verify = true;
	l->ostream.verify = true;
	l->env->verifying++;		/* leg_end() counts it out */
	l->verify_for = asker->id;
	p->verifier = l->id;
	memcpy(l->dial->verify_key, key, strlen(key) + 1);
	snprintf(l->dial->verify_id, sizeof(l->dial->verify_id), "%s",
	    asker->stream_id);
	leg_out_start(l);
	return 0;
}

static void
leg_out_addrs_cb(enum resolve_status st, struct resolve_addrs *a, void *arg)
{
	struct leg *l = arg;
	char why[360];

	if (st != RESOLVE_OK)
		resolve_req_explain(l->dns, why, sizeof(why));
	metrics_dns("address", resolve_status_name(st));
	l->dns = NULL;
	if (st != RESOLVE_OK) {
		(void)leg_printf(&l->last_error, LEG_ERROR_MAX, "%s: %s",
		    l->dial->host, why);
		l->fail_cond = st == RESOLVE_TIMEOUT ?
		    XMPP_STANZA_REMOTE_SERVER_TIMEOUT :
		    XMPP_STANZA_REMOTE_SERVER_NOT_FOUND;
		leg_out_next_target(l);
		return;
	}
	resolve_addrs_free(l->addrs);
	l->addrs = a;
	l->addr_next = 0;
	leg_enter_state(l, LEG_CONNECTING);
	if (!leg_out_retry(l))
		leg_out_next_target(l);
}

/* Resolve host:port and connect to its addresses, with TLS at once if
 * direct_tls. */
static void
leg_out_resolve_host(struct leg *l, const char *host, uint16_t port,
    bool direct_tls)
{
	snprintf(l->dial->host, sizeof(l->dial->host), "%s", host);
	l->port = port;
	l->direct_tls = direct_tls;
	if (l->state != LEG_RESOLVING)
		leg_enter_state(l, LEG_RESOLVING);
	l->dns = resolve_addresses(l->env->resolve, host, port,
	    leg_out_addrs_cb, l);
	if (l->dns == NULL)
		leg_out_fail(l, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_ERROR_COUNT, "cannot start a DNS query");
}

static void
leg_out_next_target(struct leg *l)
{
	const struct resolve_target *t;
	char why[760];

	if (l->targets == NULL || l->target_next >= l->targets->count) {
		snprintf(why, sizeof(why), "no target reachable (%s)",
		    leg_text(l->last_error)[0] != '\0' ? l->last_error :
		    "none");
		leg_out_fail(l, l->fail_cond, XMPP_STREAM_ERROR_COUNT, why);
		return;
	}
	t = &l->targets->target[l->target_next++];
	leg_out_resolve_host(l, t->host, t->port, t->direct_tls);
}

static void
leg_out_srv_cb(enum resolve_status st, struct resolve_targets *t, void *arg)
{
	struct leg *l = arg;
	char why[760], dns[360];

	if (st != RESOLVE_OK)
		resolve_req_explain(l->dns, dns, sizeof(dns));
	metrics_dns("srv", resolve_status_name(st));
	l->dns = NULL;
	if (st != RESOLVE_OK) {
		snprintf(why, sizeof(why), "SRV of %s: %s", l->remote, dns);
		leg_out_fail(l, st == RESOLVE_TIMEOUT ?
		    XMPP_STANZA_REMOTE_SERVER_TIMEOUT :
		    XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_ERROR_COUNT, why);
		return;
	}
	l->targets = t;
	l->target_next = 0;
	leg_out_next_target(l);
}

/*
 * Fill f (and listen, inside, nets: arrays the caller frees) with
 * what ct_original_refusal() weighs for l's configuration.
 */
static int
leg_out_facts(const struct leg *l, const struct sockaddr *peer,
    struct ct_facts *f, struct sockaddr_storage **listen,
    struct sockaddr_storage **inside, struct ct_net **nets)
{
	const struct config_listen *cl;
	const struct config_domain *d;
	size_t nl = 0, nd = 0;
	socklen_t len;

	memset(f, 0, sizeof(*f));
	TAILQ_FOREACH(cl, &l->config->listens, entry)
		nl++;
	TAILQ_FOREACH(d, &l->config->domains, entry)
		nd++;
	*listen = calloc(nl + 1, sizeof(**listen));
	*inside = calloc(nd + 1, sizeof(**inside));
	if (*listen == NULL || *inside == NULL)
		return -1;
	TAILQ_FOREACH(cl, &l->config->listens, entry)
		memcpy(&(*listen)[f->nlisten++], &cl->addr, sizeof(cl->addr));
	TAILQ_FOREACH(d, &l->config->domains, entry)
		if (d->upstream_host != NULL &&
		    strcmp(d->upstream_host, "*") != 0 &&
		    util_sockaddr_parse(d->upstream_host, d->upstream_port,
		    &(*inside)[f->ninside], &len) == 0)
			f->ninside++;
	f->listen = *listen;
	f->inside = *inside;
	f->host = *nets = ct_host_nets(&f->nhost);
	f->peer = peer;
	return 0;
}

/*
 * resolve original: connect to the original destination of the
 * transparent leg that fed the route, unless it is fedgated itself, a
 * loopback or the internal side (then bounce, saying why).
 */
static void
leg_out_original(struct leg *l, const struct sockaddr_storage *dst,
    socklen_t dstlen, const struct sockaddr_storage *peer)
{
	struct sockaddr_storage *listen = NULL, *inside = NULL, ud;
	const struct sockaddr *d = ct_unmap((const struct sockaddr *)dst, &ud);
	struct resolve_addrs *a;
	struct ct_facts f;
	struct ct_net *nets = NULL;
	char why[200], addr[UTIL_SOCKADDR_STRLEN], tag[LEG_NAME_MAX];
	char text[400];
	const char *refused = why;

	l->resolved_by = "original";
	util_sockaddr_str(d, addr, sizeof(addr));
	if (leg_out_facts(l, (const struct sockaddr *)peer, &f, &listen,
	    &inside, &nets) == -1)
		snprintf(why, sizeof(why), "out of memory");
	else
		refused = ct_original_refusal(d, &f, why, sizeof(why));
	free(listen);
	free(inside);
	free(nets);
	if (refused != NULL) {
		snprintf(text, sizeof(text), "original destination %s refused: "
		    "%s", addr, refused);
		log_peer(LOG_LEVEL_WARNING, "%s: %s",
		    leg_name(l, tag, sizeof(tag)), text);
		leg_out_fail(l, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_ERROR_COUNT, text);
		return;
	}
	if ((a = calloc(1, sizeof(*a) + sizeof(a->addr[0]))) == NULL) {
		leg_out_fail(l, XMPP_STANZA_RESOURCE_CONSTRAINT,
		    XMPP_STREAM_ERROR_COUNT, "out of memory");
		return;
	}
	a->count = 1;
	memcpy(&a->addr[0].ss, d, sizeof(a->addr[0].ss));
	a->addr[0].len = d->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	(void)dstlen;
	snprintf(l->dial->host, sizeof(l->dial->host), "%s", addr);
	l->direct_tls = false;
	log_peer(LOG_LEVEL_INFO, "%s: resolve original: connecting to %s, "
	    "where the internal server meant to go",
	    leg_name(l, tag, sizeof(tag)), addr);
	leg_out_addrs_cb(RESOLVE_OK, a, l);
}

/*
 * upstream ... transparent: connect to the internal server from the
 * address of the remote server whose stanzas the route carries, so that
 * the internal server sees it as it did behind the NAT. Verify legs and
 * routes no remote server fed connect from fedgated's own address.
 */
static void
leg_out_take_source(struct leg *l)
{
	struct sockaddr_storage src;
	socklen_t len;

	if (l->verify || l->route == NULL || !route_source(l->route, &src,
	    &len))
		return;
	ct_unmap((const struct sockaddr *)&src, &l->dial->source);
	if (l->dial->source.ss_family == AF_INET) {
		((struct sockaddr_in *)&l->dial->source)->sin_port = 0;
		l->dial->sourcelen = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)&l->dial->source)->sin6_port = 0;
		l->dial->sourcelen = sizeof(struct sockaddr_in6);
	}
}

/* The source to connect to a from: l's, if of a's family; else NULL. */
static const struct sockaddr *
leg_out_source_for(const struct leg *l, const struct resolve_addr *a)
{
	if (l->dial->sourcelen == 0 ||
	    l->dial->source.ss_family != a->ss.ss_family)
		return NULL;
	return (const struct sockaddr *)&l->dial->source;
}

/* Public outgoing: a static route, the original destination, or SRV. */
static void
leg_out_start_public(struct leg *l)
{
	struct sockaddr_storage dst, peer;
	socklen_t dstlen;
	char tag[LEG_NAME_MAX];

	if (l->policy.route_host[0] != '\0') {
		l->resolved_by = "route";
		leg_out_resolve_host(l, l->policy.route_host,
		    l->policy.route_port, false);
		return;
	}
	if (l->policy.resolve == POLICY_RESOLVE_ORIGINAL && l->route != NULL &&
	    !l->verify && route_original(l->route, &dst, &dstlen, &peer)) {
		leg_out_original(l, &dst, dstlen, &peer);
		return;
	}
	if (l->policy.resolve == POLICY_RESOLVE_ORIGINAL && !l->verify)
		log_debug("%s: resolve original, but no transparent leg fed "
		    "the route: SRV", leg_name(l, tag, sizeof(tag)));
	l->resolved_by = "srv";
	/* XEP-0368 targets too, unless policy forbids TLS. */
	l->dns = resolve_s2s(l->env->resolve, l->remote,
	    l->policy.tls != POLICY_TLS_NONE && l->env->tls != NULL,
	    leg_out_srv_cb, l);
	if (l->dns == NULL)
		leg_out_fail(l, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    XMPP_STREAM_ERROR_COUNT, "cannot start a DNS query");
}

/*
 * The public incoming leg l is for, and its pair from l's local domain
 * (the remote domain fedgated presents itself as); NULL if there is none
 * (a verify leg, or the leg is gone).
 */
static const struct stream_pair *
leg_out_cause(const struct leg *l, const struct leg **in)
{
	const struct stream_pair *p;

	*in = l->cause != 0 ? leg_find(l->env, l->cause) : NULL;
	if (*in == NULL || (*in)->outgoing || (*in)->face != CONFIG_FACE_PUBLIC ||
	    (*in)->conn == NULL || (*in)->reachedlen == 0)
		return NULL;
	TAILQ_FOREACH(p, &(*in)->istream.pairs, entry)
		if (!p->pending && strcmp(p->from, l->local) == 0)
			return p;
	return NULL;
}

/* The value of the PP2_TYPE_SSL TLV about in's TLS, into buf. */
static int
leg_out_proxy_ssl(const struct leg *in, const char *domain, uint8_t *buf,
    size_t len, const char **version)
{
	SSL *ssl = conn_ssl(in->conn);
	uint8_t client = 0;
	uint32_t verify = 1;

	*version = NULL;
	if (ssl != NULL) {
		client |= PROXY_SSL_CLIENT_SSL;
		*version = SSL_get_version(ssl);
		if (SSL_get0_peer_certificate(ssl) != NULL) {
			client |= PROXY_SSL_CLIENT_CERT_SESS;
			if (!SSL_session_reused(ssl))
				client |= PROXY_SSL_CLIENT_CERT_CONN;
			if (tls_peer_check(ssl, domain) == TLS_PEER_VALID)
				verify = 0;
		}
	}
	return proxy_encode_ssl(buf, len, client, verify, *version);
}

/* Write the PROXY header for the pair p of the public incoming leg in. */
static int
leg_out_proxy_encode(const struct leg *in, const struct stream_pair *p,
    uint8_t *hdr, size_t len, const char **version)
{
	const char *auth = leg_auth_name(p->auth);
	struct proxy_tlv tlvs[3];
	uint8_t ssl[64];
	int sl;

	if ((sl = leg_out_proxy_ssl(in, p->from, ssl, sizeof(ssl),
	    version)) == -1)
		return -1;
	tlvs[0] = (struct proxy_tlv){ PROXY_TLV_SSL, (uint16_t)sl, ssl };
	tlvs[1] = (struct proxy_tlv){ PROXY_TLV_FEDGATE_DOMAIN,
	    (uint16_t)strlen(p->from), (const uint8_t *)p->from };
	tlvs[2] = (struct proxy_tlv){ PROXY_TLV_FEDGATE_AUTH,
	    (uint16_t)strlen(auth), (const uint8_t *)auth };
	return proxy_encode(hdr, len, conn_peer_addr(in->conn),
	    (const struct sockaddr *)&in->reached, tlvs, nitems(tlvs));
}

/*
 * Prepare the PROXY v2 header of an internal leg to an upstream marked
 * proxy-protocol (doc/internals/proxy-protocol.md): PROXY from the address
 * of the public incoming leg it is for, with TLVs for its TLS, its
 * authenticated domain and how it authenticated; LOCAL when it is for no
 * such leg. Return 0, or -1 if out of memory.
 */
static int
leg_out_proxy_prepare(struct leg *l)
{
	uint8_t hdr[PROXY_HEADER_MAX];
	const struct leg *in;
	const struct stream_pair *p = leg_out_cause(l, &in);
	const char *version = NULL;
	char peer[UTIL_SOCKADDR_STRLEN];
	int n;

	if (p == NULL) {
		n = proxy_encode(hdr, sizeof(hdr), NULL, NULL, NULL, 0);
		(void)leg_printf(&l->proxy_desc, LEG_PROXY_DESC_MAX, "LOCAL");
	} else {
		n = leg_out_proxy_encode(in, p, hdr, sizeof(hdr), &version);
		(void)leg_printf(&l->proxy_desc, LEG_PROXY_DESC_MAX,
		    "PROXY from %s "
		    "(leg %" PRIu64 ": %s by %s, %s)", util_sockaddr_str(
		    conn_peer_addr(in->conn), peer, sizeof(peer)), in->id,
		    p->from, leg_auth_name(p->auth),
		    version != NULL ? version : "no TLS");
	}
	if (n == -1 || (l->proxy = malloc((size_t)n)) == NULL)
		return -1;
	memcpy(l->proxy, hdr, (size_t)n);
	l->proxy_len = (size_t)n;
	return 0;
}

void
leg_out_start(struct leg *l)
{
	const struct config_domain *d = NULL;
	struct local_name n;
	char tag[LEG_NAME_MAX];

	log_debug("%s: starting", leg_name(l, tag, sizeof(tag)));
	if (l->face == CONFIG_FACE_INTERNAL) {
		/* the domain, or the domain of the subdomain, served there */
		if (local_find(l->config, l->face, l->remote, &n))
			d = n.dom;
		if (d == NULL || d->upstream_host == NULL) {
			leg_out_fail(l, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
			    XMPP_STREAM_ERROR_COUNT, "no upstream for the domain");
			return;
		}
		if (d->upstream_proxy_protocol && l->proxy == NULL &&
		    leg_out_proxy_prepare(l) == -1) {
			leg_out_fail(l, XMPP_STANZA_RESOURCE_CONSTRAINT,
			    XMPP_STREAM_ERROR_COUNT, "cannot prepare the PROXY "
			    "header");
			return;
		}
		if (d->upstream_transparent)
			leg_out_take_source(l);
		leg_out_resolve_host(l, d->upstream_host, d->upstream_port,
		    false);
	} else
		leg_out_start_public(l);
}

/* The connect to a could not even start: say why, in the log and in the
 * bounce (a local shortage is resource-constraint, not the peer's fault). */
static void
leg_out_connect_failed(struct leg *l, const struct resolve_addr *a,
    const struct config_source *src, int err)
{
	char addr[UTIL_SOCKADDR_STRLEN], name[LEG_NAME_MAX];

	util_sockaddr_str((const struct sockaddr *)&a->ss, addr, sizeof(addr));
	(void)leg_printf(&l->last_error, LEG_ERROR_MAX, "connect to %s%s%s: "
	    "%s", addr, src != NULL ? " from source " : "",
	    src != NULL ? src->host : "",
	    err != 0 ? strerror(err) : "cannot start");
	log_peer(LOG_LEVEL_WARNING, "%s: %s", leg_name(l, name, sizeof(name)),
	    leg_text(l->last_error));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
		l->fail_cond = XMPP_STANZA_RESOURCE_CONSTRAINT;
}

/* The client TLS of a direct TLS target (XEP-0368), or NULL. */
static SSL *
leg_out_direct_tls(struct leg *l)
{
	const char *cert = l->face == CONFIG_FACE_PUBLIC ? l->local : NULL;
	SSL *ssl;

	if (l->env->tls == NULL || (ssl = tls_client_ssl(l->env->tls, cert,
	    l->remote, l->policy.verify == POLICY_VERIFY_REQUIRED)) == NULL)
		return NULL;
	if (leg_tls_relax(l, ssl) == -1 || tls_client_alpn(ssl) == -1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/*
 * The remote peer's address could not be used as source (no
 * CAP_NET_ADMIN, an address family the host has no route for...): say
 * so, and go on from fedgated's own address rather than not at all.
 */
static void
leg_out_source_failed(struct leg *l, int err)
{
	char src[UTIL_SOCKADDR_STRLEN], name[LEG_NAME_MAX];

	log_warnx("%s: upstream transparent: cannot connect from %s: %s; "
	    "connecting from this host's address", leg_name(l, name,
	    sizeof(name)), util_sockaddr_str((const struct sockaddr *)
	    &l->dial->source, src, sizeof(src)), strerror(err));
	l->dial->sourcelen = 0;
}

bool
leg_out_retry(struct leg *l)
{
	const struct resolve_addr *a;
	const struct config_source *src;
	const struct sockaddr *tsrc;
	SSL *ssl = NULL;

	while (l->addrs != NULL && l->addr_next < l->addrs->count) {
		a = &l->addrs->addr[l->addr_next++];
		/* upstream transparent: the remote peer's address; else the
		 * face's configured source, if any */
		tsrc = leg_out_source_for(l, a);
		src = tsrc == NULL ? config_source(l->config, l->face,
		    a->ss.ss_family) : NULL;
		leg_enter_state(l, LEG_CONNECTING);	/* (re-)arms the timer */
		errno = 0;
		if (l->direct_tls && (ssl = leg_out_direct_tls(l)) == NULL) {
			leg_out_connect_failed(l, a, NULL, ENOMEM);
			continue;
		}
		if (leg_connect_addr(l, (const struct sockaddr *)&a->ss, a->len,
		    tsrc != NULL ? tsrc : src != NULL ?
		    (const struct sockaddr *)&src->addr : NULL,
		    tsrc != NULL ? l->dial->sourcelen : src != NULL ?
		    src->addrlen : 0,
		    tsrc != NULL, ssl) == 0)
			return true;
		if (tsrc != NULL) {
			leg_out_source_failed(l, errno);
			l->addr_next--;		/* again, from our own address */
			continue;
		}
		leg_out_connect_failed(l, a, src, errno);
	}
	if (l->targets != NULL && l->target_next < l->targets->count) {
		conn_free(l->conn);
		l->conn = NULL;
		leg_out_next_target(l);
		return l->state != LEG_CLOSED;
	}
	return false;
}

static void leg_out_execute(struct leg *, const struct stream_out_actions *);

/* What the stream module may know of l's world. */
static void
leg_out_ctx(const struct leg *l, struct stream_out_ctx *c)
{
	c->config = l->config;
	c->tls = conn_is_tls(l->conn);
	c->has_cert = l->env->tls != NULL && tls_has_domain(l->env->tls,
	    l->local);
	c->acks = l->route != NULL && l->config->limits.unacked > 0;
	c->verify_id = l->dial->verify_id;
	c->verify_key = l->dial->verify_key;
}

void
leg_out_connected(struct leg *l)
{
	char tag[LEG_NAME_MAX], src[UTIL_SOCKADDR_STRLEN + 40] = "";
	struct sockaddr_storage local;
	struct stream_out_actions a;
	struct stream_out_ctx c;

	if (l->dial->sourcelen > 0 && conn_local_addr(l->conn, &local) == 0) {
		snprintf(src, sizeof(src), " from ");
		util_sockaddr_str((const struct sockaddr *)&local,
		    src + strlen(src), sizeof(src) - strlen(src));
		strlcat(src, " (upstream transparent)", sizeof(src));
	}
	log_peer(LOG_LEVEL_INFO,
	    "%s: connected to %s%s%s", leg_name(l, tag, sizeof(tag)),
	    conn_peer(l->conn), src, l->direct_tls ? " (direct TLS)" : "");
	metrics_leg_started(l->id);
	/* Direct TLS: the handshake is done too; leg_out_tls_done() opens. */
	if (l->direct_tls)
		return;
	if (l->proxy != NULL) {
		/* Before any other byte: the upstream reads it first. */
		log_peer(LOG_LEVEL_INFO, "%s: PROXY v2 header: %s", tag,
		    leg_text(l->proxy_desc));
		conn_write(l->conn, l->proxy, l->proxy_len);
	}
	leg_out_ctx(l, &c);
	stream_out_connected(&l->ostream, &c, &a);
	leg_out_execute(l, &a);
}

void
leg_out_header(struct leg *l, const struct xmlstream_header *h)
{
	struct stream_out_actions a;
	struct stream_out_ctx c;

	leg_out_ctx(l, &c);
	stream_out_header(&l->ostream, &c, h, &a);
	l->peer_version = l->ostream.peer_version;
	leg_out_execute(l, &a);
}

void
leg_out_element(struct leg *l, const struct xmlstream_element *e)
{
	struct stream_out_actions a;
	struct stream_out_ctx c;

	/* bidi: stanzas and dialback go to the reverse direction */
	if (l->reverse != NULL && l->state == LEG_READY &&
	    (strcmp(e->node.ns, XMPP_NS_SERVER) == 0 ||
	    strcmp(e->node.ns, XMPP_NS_DIALBACK) == 0)) {
		leg_in_reverse_element(l, e);
		return;
	}
	leg_out_ctx(l, &c);
	stream_out_element(&l->ostream, &c, e, &a);
	leg_out_execute(l, &a);
}

void
leg_out_tls_done(struct leg *l)
{
	char tag[LEG_NAME_MAX], desc[96];
	SSL *ssl = conn_ssl(l->conn);
	enum tls_peer_status ps = tls_peer_check(ssl, l->remote);
	struct stream_out_actions a;
	struct stream_out_ctx c;

	log_peer(LOG_LEVEL_INFO, "%s: tls %s established, certificate %s",
	    leg_name(l, tag, sizeof(tag)),
	    conn_tls_description(l->conn, desc, sizeof(desc)),
	    tls_peer_status_name(ps));
	metrics_leg_tls(l->face, true, ssl);
	leg_out_ctx(l, &c);
	stream_out_tls_done(&l->ostream, &c, ps == TLS_PEER_VALID, &a);
	leg_out_execute(l, &a);
}

/* TLS as the client, after <proceed/>. */
static void
leg_out_start_tls(struct leg *l)
{
	const char *cert = l->face == CONFIG_FACE_PUBLIC ? l->local : NULL;
	SSL *ssl;

	if (l->env->tls == NULL || (ssl = tls_client_ssl(l->env->tls, cert,
	    l->remote, l->policy.verify == POLICY_VERIFY_REQUIRED)) == NULL) {
		leg_out_fail(l, XMPP_STANZA_INTERNAL_SERVER_ERROR,
		    XMPP_STREAM_ERROR_COUNT, "cannot create a TLS client");
		return;
	}
	if (leg_tls_relax(l, ssl) == -1) {
		SSL_free(ssl);
		leg_out_fail(l, XMPP_STANZA_INTERNAL_SERVER_ERROR,
		    XMPP_STREAM_ERROR_COUNT, "cannot apply tls min-version "
		    "or tls ciphers");
		return;
	}
	if (conn_starttls(l->conn, ssl, false) == -1)
		leg_out_fail(l, XMPP_STANZA_INTERNAL_SERVER_ERROR,
		    XMPP_STREAM_ERROR_COUNT, "cannot start TLS");
}

/* Authenticated: stanzas may go (the keepalive, the route). */
static void
leg_out_ready(struct leg *l, enum leg_auth auth)
{
	l->auth = auth;
	leg_start_keepalive(l);
	if (l->route != NULL)
		route_leg_ready(l->route, l);
}

/* A verify leg's verdict, for the incoming leg that asked. */
static void
leg_out_verdict(struct leg *l, enum xmpp_db_type t)
{
	l->verify_done = true;
	leg_in_verified(l->env, l->verify_for, l->remote, l->local, t,
	    "the authoritative server said so");
}

static enum leg_state
leg_out_state(enum stream_out_state s)
{
	switch (s) {
	case STREAM_OUT_WAIT_HEADER:
		return LEG_WAIT_HEADER;
	case STREAM_OUT_WAIT_FEATURES:
		return LEG_WAIT_FEATURES;
	case STREAM_OUT_TLS:
		return LEG_TLS;
	case STREAM_OUT_SASL:
		return LEG_SASL;
	case STREAM_OUT_DIALBACK:
		return LEG_DIALBACK;
	case STREAM_OUT_READY:
		return LEG_READY;
	case STREAM_OUT_CONNECTING:
		return LEG_CONNECTING;
	default:
		return LEG_CLOSING;
	}
}

/* Render what the action sends (false: it sends nothing). */
static bool
leg_out_render(struct leg *l, const struct stream_out_action *x)
{
	switch (x->what) {
	case STREAM_OUT_SEND_STARTTLS:
		xmpp_render_starttls(l->out);
		return true;
	case STREAM_OUT_SEND_SASL_AUTH:
		xmpp_render_sasl_auth_external(l->out, l->local);
		return true;
	case STREAM_OUT_SEND_DB_RESULT:
		xmpp_render_db_result(l->out, l->local, l->remote, x->key);
		return true;
	case STREAM_OUT_SEND_DB_VERIFY:
		xmpp_render_db_verify(l->out, l->local, l->remote, x->id,
		    x->key);
		return true;
	case STREAM_OUT_SEND_SM_ENABLE:
		xmpp_render_sm_enable(l->out);
		return true;
	case STREAM_OUT_SEND_SM_ANSWER:
		xmpp_render_sm_answer(l->out, 0);
		return true;
	case STREAM_OUT_SEND_BIDI:
		xmpp_render_bidi(l->out);
		return true;
	default:
		return false;
	}
}

/*
 * The stream is ready and bidirectional (XEP-0288): the peer's stanzas
 * from remote to local come back on it, checked by a reverse stream as on
 * an incoming stream of that pair. Without memory for it, the leg stays
 * one-way (a stanza the peer sends then ends it).
 */
static void
leg_out_bidi(struct leg *l, enum leg_auth auth)
{
	char tag[LEG_NAME_MAX];

	if ((l->reverse = calloc(1, sizeof(*l->reverse))) == NULL ||
	    stream_in_init_reverse(l->reverse, l->face, l->local, l->remote,
	    &l->policy, sizeof(struct leg_pair), auth) == -1) {
		if (l->reverse != NULL) {
			stream_in_clear(l->reverse);
			free(l->reverse);
			l->reverse = NULL;
		}
		log_warnx("%s: bidi: out of memory, the stream stays one-way",
		    leg_name(l, tag, sizeof(tag)));
		return;
	}
	l->bidi = true;
	log_peer(LOG_LEVEL_INFO, "%s: bidi enabled (XEP-0288): stanzas from "
	    "%s to %s come back on this stream", leg_name(l, tag, sizeof(tag)),
	    l->remote, l->local);
}

/* Carry out one action that is not a rendering. */
static void
leg_out_act(struct leg *l, const struct stream_out_action *x)
{
	char tag[LEG_NAME_MAX];

	switch (x->what) {
	case STREAM_OUT_SEND_HEADER:
		leg_send_header(l, NULL);
		break;
	case STREAM_OUT_OPENED:
		metrics_stream_opened(l->id, l->face, true, l->local,
		    l->remote);
		break;
	case STREAM_OUT_START_TLS:
		leg_out_start_tls(l);
		break;
	case STREAM_OUT_RESTART:
		xmlstream_reset(l->xs);
		break;
	case STREAM_OUT_AUTH_RESULT:
		metrics_leg_auth(l->id, l->face, true, l->local, l->remote,
		    x->method, x->yes);
		break;
	case STREAM_OUT_AUTHENTICATED:
		leg_out_ready(l, x->auth);
		break;
	case STREAM_OUT_BIDI:
		leg_out_bidi(l, x->auth);
		break;
	case STREAM_OUT_VERDICT:
		leg_out_verdict(l, x->verdict);
		break;
	case STREAM_OUT_ACKED:
		if (l->route != NULL)
			route_leg_acked(l->route, l, x->count);
		break;
	case STREAM_OUT_NOTE:
		if (x->yes)
			log_peer(LOG_LEVEL_INFO, "%s: %s",
			    leg_name(l, tag, sizeof(tag)), x->why);
		else
			log_debug("%s: %s", leg_name(l, tag, sizeof(tag)),
			    x->why);
		break;
	case STREAM_OUT_STATE:
		leg_enter_state(l, leg_out_state(x->state));
		break;
	case STREAM_OUT_CLOSE:
		leg_set_reason(l, "%s", x->why);
		leg_close(l, XMPP_STREAM_ERROR_COUNT, NULL);
		break;
	case STREAM_OUT_FAIL:
		leg_out_fail(l, x->stanza_cond, x->cond, x->why);
		break;
	default:
		break;
	}
}

/* Carry out the actions of one stream_out event, in order. */
static void
leg_out_execute(struct leg *l, const struct stream_out_actions *a)
{
	for (size_t i = 0; i < a->n; i++) {
		if (l->state == LEG_CLOSING || l->state == LEG_CLOSED)
			return;
		if (leg_out_render(l, &a->a[i]))
			leg_flush_out(l);
		else
			leg_out_act(l, &a->a[i]);
	}
}

void
leg_out_ended(struct leg *l, const char *reason)
{
	if (l->verify && !l->verify_done) {
		l->verify_done = true;
		leg_in_verified(l->env, l->verify_for, l->remote, l->local,
		    XMPP_DB_ERROR, reason);
	}
	if (l->route != NULL) {
		struct route *r = l->route;

		l->route = NULL;
		route_leg_gone(r, l, l->fail_cond, reason);
	}
}
