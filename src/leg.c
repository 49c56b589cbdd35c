/*
 * leg: the core of a leg: its state machine and timers, the connection's
 * events, feeding the stream framer, closing with a stream error, the
 * registry and the snapshots for fedgatectl. What an incoming or outgoing
 * stream does with the header and elements is in leg_in.c and leg_out.c.
 */
#include "fgconfig.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "leg_private.h"
#include "log.h"
#include "route.h"
#include "timer.h"
#include "tls.h"
#include "util.h"


static const char *const leg_state_names[] = {
	[LEG_RESOLVING] = "resolving",
	[LEG_CONNECTING] = "connecting",
	[LEG_WAIT_HEADER] = "wait-header",
	[LEG_WAIT_FEATURES] = "wait-features",
	[LEG_TLS] = "tls",
	[LEG_SASL] = "sasl",
	[LEG_DIALBACK] = "dialback",
	[LEG_OPEN] = "open",
	[LEG_READY] = "ready",
	[LEG_CLOSING] = "closing",
	[LEG_CLOSED] = "closed",
};

#define S(x)	(1u << (x))
/* Allowed transitions; any state may go to closing or closed. */
static const unsigned leg_transitions[] = {
	[LEG_RESOLVING] = S(LEG_CONNECTING),
	[LEG_CONNECTING] = S(LEG_WAIT_HEADER) | S(LEG_CONNECTING) |
	    S(LEG_RESOLVING),
	[LEG_WAIT_HEADER] = S(LEG_WAIT_FEATURES) | S(LEG_OPEN) |
	    S(LEG_DIALBACK) | S(LEG_CONNECTING) | S(LEG_RESOLVING),
	[LEG_WAIT_FEATURES] = S(LEG_TLS) | S(LEG_SASL) | S(LEG_DIALBACK) |
	    S(LEG_READY),
	[LEG_TLS] = S(LEG_WAIT_HEADER),
	[LEG_SASL] = S(LEG_WAIT_HEADER) | S(LEG_DIALBACK),
	[LEG_DIALBACK] = S(LEG_READY),
	[LEG_OPEN] = S(LEG_TLS) | S(LEG_WAIT_HEADER) | S(LEG_OPEN),
	[LEG_READY] = 0,
	[LEG_CLOSING] = 0,
	[LEG_CLOSED] = 0,
};
#undef S

static const char *const leg_auth_names[] = {
	[LEG_AUTH_NONE] = "none",
	[LEG_AUTH_DIALBACK] = "dialback",
	[LEG_AUTH_DIALBACK_TLS] = "dialback+cert",
	[LEG_AUTH_EXTERNAL] = "sasl-external",
	[LEG_AUTH_TRUSTED] = "trusted",
};

/* How many incoming legs come from one address (connections-per-address),
 * kept so that an accept does not walk the registry. */
struct leg_host {
	RB_ENTRY(leg_host)	 entry;
	sa_family_t		 family;
	uint8_t			 addr[16];	/* IPv4: the first 4 bytes */
	unsigned		 legs;
};

static int
leg_id_cmp(const struct leg *a, const struct leg *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

static int
leg_host_cmp(const struct leg_host *a, const struct leg_host *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

RB_PROTOTYPE(leg_ids, leg, id_entry, leg_id_cmp)
RB_GENERATE(leg_ids, leg, id_entry, leg_id_cmp)
RB_PROTOTYPE(leg_hosts, leg_host, entry, leg_host_cmp)
RB_GENERATE(leg_hosts, leg_host, entry, leg_host_cmp)

/* The key of sa's host (not its port) into k; false if not IP. */
static bool
leg_host_key(const struct sockaddr *sa, struct leg_host *k)
{
	memset(k, 0, sizeof(*k));
	k->family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(k->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    16);
	else
		return false;
	return true;
}

static void leg_conn_read(struct conn *, void *);
static void leg_conn_event(struct conn *, enum conn_event, void *);
static const struct conn_handler leg_conn_handler = {
	.read = leg_conn_read,
	.event = leg_conn_event,
};

static bool	leg_is_ready(const struct leg *);
static bool	leg_is_congested(const struct leg *);
static int	leg_send(struct leg *, const struct iovec *, int);
static bool	leg_has_sm(const struct leg *);
static int	leg_request_ack(struct leg *);
static void	leg_resume(void *, uint64_t);
static void	leg_detach_route(struct leg *);
static struct leg *leg_connect(void *, struct route *, enum config_face,
		    const char *, const char *, uint64_t);
static void	leg_describe(const struct leg *, uint64_t *, const char **);

/* What routes call (route.h): the one way from route back to leg. */
static const struct route_carrier leg_carrier = {
	.connect = leg_connect,
	.send = leg_send,
	.is_ready = leg_is_ready,
	.is_congested = leg_is_congested,
	.has_sm = leg_has_sm,
	.request_ack = leg_request_ack,
	.resume = leg_resume,
	.detach = leg_detach_route,
	.close = leg_close,
	.describe = leg_describe,
};

/*
 * A leg quiet for this long gives its XML parser back (xmlstream_release():
 * about 10 KB each, made again at its next bytes) and its rendering
 * buffer. Checked as often.
 */
#define LEG_QUIET_MS	1000

/* Every LEG_QUIET_MS: the parsers of the legs quiet since go back. */
static void
leg_env_quiet(void *arg)
{
	struct leg_env *env = arg;
	uint64_t now = timer_now_ms();
	struct leg *l;

	TAILQ_FOREACH(l, &env->registry, entry)
		if (l->state != LEG_CLOSED && now - l->last_active >=
		    LEG_QUIET_MS) {
			xmlstream_release(l->xs);
			xmpp_buf_shrink(l->out);
		}
}

struct leg_env *
leg_env_new(struct event_base *base, struct resolve *r)
{
	struct leg_env *env;

	if ((env = calloc(1, sizeof(*env))) == NULL)
		return NULL;
	env->base = base;
	env->resolve = r;
	env->next_id = 1;
	env->id_step = 1;
	TAILQ_INIT(&env->registry);
	RB_INIT(&env->ids);
	RB_INIT(&env->hosts);
	if ((env->routes = route_table_new(base, &leg_carrier, env)) == NULL ||
	    (env->quiet = timer_new(base, true, leg_env_quiet, env)) == NULL) {
		route_table_free(env->routes);
		free(env);
		return NULL;
	}
	timer_start(env->quiet, LEG_QUIET_MS);
	return env;
}

void
leg_env_set_ids(struct leg_env *env, unsigned worker, unsigned workers)
{
	env->next_id = (uint64_t)worker + 1;
	env->id_step = workers > 0 ? workers : 1;
}

void
leg_env_free(struct leg_env *env)
{
	if (env == NULL)
		return;
	timer_free(env->quiet);
	route_table_free(env->routes);
	free(env->scratch);
	free(env);
}

void
leg_env_set(struct leg_env *env, struct config *c, struct tls *t)
{
	env->config = c;
	env->tls = t;
	if (c != NULL)
		route_configure(env->routes, c);
}

struct route_table *
leg_env_routes(const struct leg_env *env)
{
	return env->routes;
}

/*
 * The route carrier's connect: a bidirectional incoming leg of the pair's
 * reverse when there is one (XEP-0288: no connection of its own), else a
 * new outgoing leg.
 */
static struct leg *
leg_connect(void *arg, struct route *r, enum config_face face,
    const char *local, const char *remote, uint64_t cause)
{
	struct leg *l = leg_in_bidi_carrier(arg, r, face, local, remote);

	return l != NULL ? l : leg_out_connect(arg, r, face, local, remote,
	    cause);
}

static void
leg_describe(const struct leg *l, uint64_t *id, const char **state)
{
	*id = l->id;
	*state = leg_state_names[l->state];
}

const char *
leg_state_name(enum leg_state s)
{
	return leg_state_names[s];
}

const char *
leg_auth_name(enum leg_auth a)
{
	return leg_auth_names[a];
}

/* The "leg 42 in public remote.example->corp.example" prefix of log lines. */
const char *
leg_name(const struct leg *l, char *buf, size_t len)
{
	const char *from = l->outgoing ? l->local : l->remote;
	const char *to = l->outgoing ? l->remote : l->local;

	snprintf(buf, len, "leg %" PRIu64 " %s %s %s->%s%s", l->id,
	    l->outgoing ? "out" : "in", config_face_name(l->face),
	    from[0] != '\0' ? from : "?", to[0] != '\0' ? to : "?",
	    l->verify ? " (verify)" : "");
	return buf;
}

const char *
leg_vprintf(char **slot, size_t size, const char *fmt, va_list ap)
{
	if (*slot == NULL && (*slot = malloc(size)) == NULL)
		return "(out of memory for this text)";
	vsnprintf(*slot, size, fmt, ap);
	return *slot;
}

const char *
leg_printf(char **slot, size_t size, const char *fmt, ...)
{
	const char *t;
	va_list ap;

	va_start(ap, fmt);
	t = leg_vprintf(slot, size, fmt, ap);
	va_end(ap);
	return t;
}

const char *
leg_text(const char *slot)
{
	return slot != NULL ? slot : "";
}

void
leg_set_reason(struct leg *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)leg_vprintf(&l->close_reason, LEG_REASON_MAX, fmt, ap);
	va_end(ap);
}

const struct xmlstream_limits *
leg_limits(const struct leg *l)
{
	static struct xmlstream_limits lim;

	lim.stanza_size = (size_t)l->config->limits.stanza_size;
	if (l->policy.stanza_size != 0 && l->policy.stanza_size < lim.stanza_size)
		lim.stanza_size = (size_t)l->policy.stanza_size;
	lim.header_size = (size_t)l->config->limits.header_size;
	lim.depth = l->config->limits.depth;
	lim.attributes = l->config->limits.attributes;
	return &lim;
}

/* The timeout of state s, in milliseconds; 0 for none. */
static uint64_t
leg_state_timeout(const struct leg *l, enum leg_state s)
{
	const struct config_timeouts *t = &l->config->timeouts;

	switch (s) {
	case LEG_RESOLVING:
		return t->dns + t->handshake;
	case LEG_CONNECTING:
		return t->connect;
	case LEG_OPEN:
		return leg_first_pair(l, false) == NULL ? t->handshake : t->idle;
	case LEG_READY:
		return t->idle;
	case LEG_CLOSING:
		return 5000;
	case LEG_CLOSED:
		return 0;
	default:
		return t->handshake;
	}
}

/* Whom l talks to: its connection's peer; before it has one, the target
 * an outgoing leg tries ("" none). */
static const char *
leg_peer(const struct leg *l)
{
	if (l->conn != NULL)
		return conn_peer(l->conn);
	return l->dial != NULL ? l->dial->host : "";
}

/* Arm the leg's timer to fire in ms milliseconds (0: disarm it). */
static void
leg_arm_timer_ms(struct leg *l, uint64_t ms)
{
	if (ms == 0) {
		timer_stop(l->timer);
		return;
	}
	timer_start(l->timer, ms);
}

/* (Re)arm the state's timer. */
static void
leg_arm_timer(struct leg *l)
{
	leg_arm_timer_ms(l, leg_state_timeout(l, l->state));
}

/*
 * The idle timer is lazy: traffic only moves last_active, and the timer,
 * when it fires, sleeps again for what is left of the idle time. Return
 * true if it did (the leg was active since), false if l is idle.
 */
static bool
leg_idle_rearm(struct leg *l)
{
	uint64_t idle = l->config->timeouts.idle;
	uint64_t since = timer_now_ms() - l->last_active;

	if (since >= idle)
		return false;
	leg_arm_timer_ms(l, idle - since);
	return true;
}

void
leg_touch(struct leg *l)
{
	l->last_active = timer_now_ms();	/* the idle timer reads it */
}

void
leg_enter_state(struct leg *l, enum leg_state next)
{
	char name[LEG_NAME_MAX];

	if (next != LEG_CLOSING && next != LEG_CLOSED &&
	    (leg_transitions[l->state] & (1u << next)) == 0) {
		/*
		 * A bug, but one a peer may be able to reach: end this leg
		 * (from the loop, the caller goes on), never the daemon.
		 */
		log_warnx("%s: bad transition %s -> %s, closing the leg",
		    leg_name(l, name, sizeof(name)), leg_state_names[l->state],
		    leg_state_names[next]);
		l->broken = true;
		timer_fire(l->timer);
	}
	log_debug("%s: %s -> %s", leg_name(l, name, sizeof(name)),
	    leg_state_names[l->state], leg_state_names[next]);
	l->state = next;
	if (!l->broken)
		leg_arm_timer(l);
}

/* The open incoming leg l timed out: idle, or still authenticating. */
static void
leg_open_timeout(struct leg *l)
{
	const struct stream_pair *p;
	char d[32];

	if (leg_first_pair(l, false) != NULL) {
		if (leg_idle_rearm(l))
			return;
		leg_set_reason(l, "idle for %s", util_duration_str(
		    l->config->timeouts.idle, d, sizeof(d)));
		leg_close(l, XMPP_STREAM_ERROR_COUNT, NULL);
		return;
	}
	metrics_stream_refused(l->face, l->outgoing, l->local, l->remote,
	    XMPP_STREAM_CONNECTION_TIMEOUT);
	util_duration_str(l->config->timeouts.handshake, d, sizeof(d));
	if ((p = leg_first_pair(l, true)) != NULL)
		leg_set_reason(l, "the dialback verification of %s->%s did "
		    "not finish within %s (timeout handshake)", p->from, p->to,
		    d);
	else
		leg_set_reason(l, "not authenticated within %s (timeout "
		    "handshake)", d);
	leg_close(l, XMPP_STREAM_CONNECTION_TIMEOUT, NULL);
}

static void
leg_timeout(void *arg)
{
	struct leg *l = arg;
	char idle[32];

	if (l->broken) {
		l->broken = false;
		leg_set_reason(l, "internal error (bad state transition)");
		leg_close(l, XMPP_STREAM_INTERNAL_SERVER_ERROR, NULL);
		return;
	}
	switch (l->state) {
	case LEG_READY:
		if (leg_idle_rearm(l))
			return;
		leg_set_reason(l, "idle for %s", util_duration_str(
		    l->config->timeouts.idle, idle, sizeof(idle)));
		leg_close(l, XMPP_STREAM_ERROR_COUNT, NULL);
		return;
	case LEG_OPEN:
		leg_open_timeout(l);
		return;
	case LEG_CLOSING:
		leg_end(l, "close did not finish in time");
		return;
	case LEG_RESOLVING:
	case LEG_CONNECTING:
		/* What it queued bounces with remote-server-timeout. */
		l->fail_cond = XMPP_STANZA_REMOTE_SERVER_TIMEOUT;
		if (l->state == LEG_CONNECTING)
			(void)leg_printf(&l->last_error, LEG_ERROR_MAX,
			    "connect to %s timed out", leg_peer(l));
		else
			(void)leg_printf(&l->last_error, LEG_ERROR_MAX,
			    "timed out %s", leg_state_names[l->state]);
		if (l->state == LEG_CONNECTING) {
			char name[LEG_NAME_MAX];

			log_peer(LOG_LEVEL_INFO, "%s: %s", leg_name(l, name,
			    sizeof(name)), l->last_error);
			if (leg_out_retry(l))
				return;
		}
		leg_end(l, leg_text(l->last_error));
		return;
	default:
		break;
	}
	leg_set_reason(l, "timed out in state %s", leg_state_names[l->state]);
	leg_close(l, XMPP_STREAM_CONNECTION_TIMEOUT, NULL);
}

static void
leg_keepalive(void *arg)
{
	struct leg *l = arg;
	uint64_t every = l->config->timeouts.keepalive;

	if (l->state == LEG_READY && l->conn != NULL &&
	    timer_now_ms() - l->last_active >= every / 2)
		conn_write(l->conn, " ", 1);
}

struct leg *
leg_alloc(struct leg_env *env, enum config_face face, bool outgoing)
{
	struct leg *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->env = env;
	l->id = env->next_id;
	env->next_id += env->id_step;
	l->face = face;
	l->outgoing = outgoing;
	l->state = outgoing ? LEG_RESOLVING : LEG_WAIT_HEADER;
	l->config = config_ref(env->config);
	l->created = l->last_active = timer_now_ms();
	policy_settings_init(&l->policy);
	if (outgoing)
		stream_out_init(&l->ostream, face, false, l->local, l->remote,
		    &l->policy, l->stream_id);
	else
		stream_in_init(&l->istream, face, l->local, l->remote, &l->policy,
		    sizeof(struct leg_pair));
	if ((l->out = xmpp_buf_new()) == NULL ||
	    (l->timer = timer_new(env->base, false, leg_timeout, l)) == NULL ||
	    (l->xs = xmlstream_new(leg_limits(l))) == NULL) {
		xmpp_buf_free(l->out);
		timer_free(l->timer);
		config_unref(l->config);
		free(l);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&env->registry, l, entry);
	RB_INSERT(leg_ids, &env->ids, l);
	env->total++;
	leg_arm_timer(l);
	return l;
}

struct leg *
leg_find(struct leg_env *env, uint64_t id)
{
	struct leg key = { .id = id }, *l;

	if ((l = RB_FIND(leg_ids, &env->ids, &key)) == NULL ||
	    l->state == LEG_CLOSED)
		return NULL;
	return l;
}

/* Attach a connection to l with the leg handler. */
static struct conn *
leg_attach_accepted(struct leg *l, int fd, const struct sockaddr *peer,
    socklen_t peerlen, SSL *ssl)
{
	l->conn = conn_new_accepted(l->env->base, fd, peer, peerlen, ssl,
	    &leg_conn_handler, l);
	return l->conn;
}

/* Incoming legs from the address of peer. */
static unsigned
leg_count_from(struct leg_env *env, const struct sockaddr *peer)
{
	struct leg_host key, *h;

	if (!leg_host_key(peer, &key) ||
	    (h = RB_FIND(leg_hosts, &env->hosts, &key)) == NULL)
		return 0;
	return h->legs;
}

/* Count the incoming leg l from peer (its end uncounts it). Out of
 * memory, it goes uncounted: the limit is a little looser, nothing else. */
static void
leg_count_host(struct leg *l, const struct sockaddr *peer)
{
	struct leg_host key, *h;

	if (!leg_host_key(peer, &key))
		return;
	if ((h = RB_FIND(leg_hosts, &l->env->hosts, &key)) == NULL) {
		if ((h = malloc(sizeof(*h))) == NULL)
			return;
		*h = key;
		RB_INSERT(leg_hosts, &l->env->hosts, h);
	}
	h->legs++;
	l->peer_host = h;
}

static void
leg_uncount_host(struct leg *l)
{
	struct leg_host *h = l->peer_host;

	if (h == NULL)
		return;
	l->peer_host = NULL;
	if (--h->legs == 0) {
		RB_REMOVE(leg_hosts, &l->env->hosts, h);
		free(h);
	}
}

unsigned
leg_count_verifying(struct leg_env *env)
{
	return env->verifying;
}

const struct stream_pair *
leg_first_pair(const struct leg *l, bool pending)
{
	return l->outgoing ? NULL : stream_in_first_pair(&l->istream, pending);
}

unsigned
leg_count_authenticated(struct leg_env *env, enum config_face face,
    const char *domain)
{
	const struct leg *l;
	const struct stream_pair *p;
	unsigned n = 0;

	TAILQ_FOREACH(l, &env->registry, entry) {
		if (l->outgoing || l->face != face || l->state == LEG_CLOSING)
			continue;
		TAILQ_FOREACH(p, &l->istream.pairs, entry)
			if (!p->pending && strcmp(p->from, domain) == 0) {
				n++;
				break;
			}
	}
	return n;
}

/* "203.0.113.7:40000", with " via 192.0.2.9:5555 (PROXY header)" when a
 * balancer named the peer. */
static const char *
leg_peer_str(const struct listener_peer *peer, char *buf, size_t len)
{
	char a[UTIL_SOCKADDR_STRLEN], v[UTIL_SOCKADDR_STRLEN];

	util_sockaddr_str(peer->addr, a, sizeof(a));
	if (peer->via == NULL)
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, "%s via %s (PROXY header)", a,
		    util_sockaddr_str(peer->via, v, sizeof(v)));
	return buf;
}

void
leg_accept(struct leg_env *env, enum config_face face, bool direct_tls,
    int fd, const struct listener_peer *peer, const struct leg_original *orig)
{
	char addr[2 * UTIL_SOCKADDR_STRLEN + 32];
	char dst[UTIL_SOCKADDR_STRLEN + 64] = "";
	struct leg *l;
	SSL *ssl = NULL;

	leg_peer_str(peer, addr, sizeof(addr));
	if (env->config == NULL ||
	    env->total >= env->config->limits.connections) {
		log_peer(LOG_LEVEL_WARNING,
		    "%s connection from %s refused: %u legs already",
		    config_face_name(face), addr, env->total);
		metrics_connection_refused(METRICS_REFUSED_LIMIT);
		close(fd);
		return;
	}
	if (leg_count_from(env, peer->addr) >=
	    env->config->limits.connections_per_address) {
		log_peer(LOG_LEVEL_WARNING,
		    "%s connection from %s refused: limit "
		    "connections-per-address (%u) reached", config_face_name(face),
		    addr, env->config->limits.connections_per_address);
		metrics_connection_refused(METRICS_REFUSED_LIMIT);
		close(fd);
		return;
	}
	if (direct_tls && (env->tls == NULL ||
	    (ssl = tls_server_ssl(env->tls, NULL)) == NULL)) {
		log_peer(LOG_LEVEL_WARNING,
		    "%s connection from %s refused: no certificate for "
		    "direct TLS", config_face_name(face), addr);
		metrics_connection_refused(METRICS_REFUSED_TLS);
		close(fd);
		return;
	}
	if ((l = leg_alloc(env, face, false)) == NULL ||
	    leg_attach_accepted(l, fd, peer->addr, peer->addrlen, ssl) == NULL) {
		log_peer(LOG_LEVEL_WARNING,
		    "%s connection from %s refused: out of memory",
		    config_face_name(face), addr);
		metrics_connection_refused(METRICS_REFUSED_INTERNAL);
		if (l != NULL)
			leg_end(l, "out of memory");
		return;
	}
	leg_count_host(l, peer->addr);
	if (peer->locallen > 0 && peer->locallen <= sizeof(l->reached)) {
		memcpy(&l->reached, peer->local, peer->locallen);
		l->reachedlen = peer->locallen;
	}
	if (orig != NULL && (l->orig = malloc(sizeof(*l->orig))) != NULL) {
		l->transparent = orig->how;
		memcpy(l->orig, &orig->dst, sizeof(*l->orig));
		l->origlen = orig->len;
		snprintf(dst, sizeof(dst), " (transparent, %s, original "
		    "destination ", orig->how);
		util_sockaddr_str((const struct sockaddr *)&orig->dst,
		    dst + strlen(dst), sizeof(dst) - strlen(dst) - 1);
		strlcat(dst, ")", sizeof(dst));
	}
	metrics_leg_started(l->id);
	log_peer(LOG_LEVEL_INFO,
	    "leg %" PRIu64 " in %s: connection from %s%s%s", l->id,
	    config_face_name(face), addr, direct_tls ? " (direct TLS)" : "",
	    dst);
}

/* Attach a connecting socket for an outgoing leg. */
int
leg_connect_addr(struct leg *l, const struct sockaddr *sa, socklen_t len,
    const struct sockaddr *source, socklen_t sourcelen, bool transparent,
    SSL *ssl)
{
	conn_free(l->conn);
	if (transparent)
		l->conn = conn_new_connect_from(l->env->base, sa, len, source,
		    ssl, &leg_conn_handler, l);
	else
		l->conn = conn_new_connect(l->env->base, sa, len, source,
		    sourcelen, ssl, &leg_conn_handler, l);
	return l->conn != NULL ? 0 : -1;
}

int
leg_flush_out(struct leg *l)
{
	int rc = 0;

	if (l->conn != NULL && xmpp_buf_len(l->out) > 0)
		rc = conn_write(l->conn, xmpp_buf_data(l->out),
		    xmpp_buf_len(l->out));
	xmpp_buf_reset(l->out);
	return rc;
}

int
leg_tls_relax(struct leg *l, SSL *ssl)
{
	const struct policy_settings *p = &l->policy;
	char name[LEG_NAME_MAX];

	if (l->face != CONFIG_FACE_PUBLIC ||
	    !(p->set & (POLICY_SET_TLS_MIN | POLICY_SET_CIPHERS)))
		return 0;
	if (tls_ssl_relax(ssl, (p->set & POLICY_SET_TLS_MIN) ?
	    policy_tls_version_number(p->tls_min) : 0,
	    (p->set & POLICY_SET_CIPHERS) ? p->ciphers : NULL) == -1) {
		log_warnx("%s: tls min-version %s, ciphers \"%s\": refused by "
		    "OpenSSL", leg_name(l, name, sizeof(name)),
		    policy_tls_version_name(p->tls_min), p->ciphers);
		return -1;
	}
	log_debug("%s: tls relaxed for this peer: min-version %s%s, "
	    "ciphers %s", leg_name(l, name, sizeof(name)),
	    policy_tls_version_name(p->tls_min),
	    p->tls_min < POLICY_TLS_V1_2 ? " (security level 0)" : "",
	    p->ciphers[0] != '\0' ? p->ciphers : "(built-in)");
	return 0;
}

int
leg_send_header(struct leg *l, const char *id)
{
	struct xmpp_stream_header h = {
		.from = l->local[0] != '\0' ? l->local : NULL,
		.to = l->remote[0] != '\0' ? l->remote : NULL,
		.id = id,
		.version = (!l->outgoing && !l->peer_version) ? NULL : "1.0",
		.dialback = true,
	};

	l->header_sent = true;
	if (xmpp_render_header(l->out, &h) == -1)
		return -1;
	return leg_flush_out(l);
}

static void
leg_reap(void *arg)
{
	struct leg *l = arg;

	if (!l->outgoing)
		stream_in_clear(&l->istream);
	if (l->reverse != NULL) {
		stream_in_clear(l->reverse);
		free(l->reverse);
	}
	xmlstream_free(l->xs);
	xmpp_buf_free(l->out);
	timer_free(l->timer);
	timer_free(l->keepalive);
	resolve_targets_free(l->targets);
	resolve_addrs_free(l->addrs);
	free(l->dial);
	free(l->orig);
	free(l->proxy);
	free(l->proxy_desc);
	free(l->close_reason);
	free(l->last_error);
	config_unref(l->config);
	free(l);
}

/* Keep the byte totals of l's connection c, which is about to go. */
static void
leg_keep_bytes(struct leg *l, const struct conn *c)
{
	l->bytes_in = conn_bytes_in(c);
	l->bytes_out = conn_bytes_out(c);
}

void
leg_end(struct leg *l, const char *reason)
{
	char name[LEG_NAME_MAX];
	const char *why;

	if (l->state == LEG_CLOSED)
		return;
	/* reason may live in the conn freed below: keep a copy. */
	if (leg_text(l->close_reason)[0] == '\0')
		leg_set_reason(l, "%s", reason);
	why = leg_text(l->close_reason);
	if (l->conn != NULL)
		leg_keep_bytes(l, l->conn);
	log_peer(LOG_LEVEL_INFO,
	    "%s: closed: %s (stanzas %" PRIu64 " in, %" PRIu64 " out; "
	    "bytes %" PRIu64 " in, %" PRIu64 " out; %" PRIu64 " ms)",
	    leg_name(l, name, sizeof(name)), why, l->stanzas_in,
	    l->stanzas_out, l->bytes_in, l->bytes_out,
	    timer_now_ms() - l->created);
	metrics_leg_end(l->id, l->face, l->outgoing, l->local, l->remote,
	    l->bytes_in, l->bytes_out);
	leg_enter_state(l, LEG_CLOSED);
	if (l->dns != NULL) {
		resolve_cancel(l->dns);
		l->dns = NULL;
	}
	conn_free(l->conn);
	l->conn = NULL;
	if (l->keepalive != NULL)
		timer_stop(l->keepalive);
	TAILQ_REMOVE(&l->env->registry, l, entry);
	RB_REMOVE(leg_ids, &l->env->ids, l);
	leg_uncount_host(l);
	if (l->verify)
		l->env->verifying--;
	l->env->total--;
	if (l->outgoing)
		leg_out_ended(l, why);
	else
		leg_in_ended(l);
	/* Free later: the caller may be inside this leg's callbacks. */
	if (timer_once(l->env->base, leg_reap, l) == -1)
		leg_reap(l);
}

/* Whether l can still write a stream error: not before its connection is
 * up, nor in the middle of a TLS handshake. */
static bool
leg_can_send(const struct leg *l)
{
	return l->conn != NULL && l->state != LEG_CONNECTING &&
	    l->state != LEG_TLS;
}

/*
 * Whether l, closing with cond, goes on reading until the peer ends its
 * stream (or the closing timer fires): an open incoming stream closed by
 * us for no fault of the peer's (a plain close: idle, kill; or
 * system-shutdown), whose peer may have sent stanzas before it saw our
 * close. They are relayed as any other (RFC 6120 4.4: the other party
 * gets time to send outstanding data). A stream ended for an error of the
 * peer's is not read further.
 */
static bool
leg_lingers(const struct leg *l, enum xmpp_stream_error cond)
{
	return !l->outgoing && !l->peer_closed && l->state == LEG_OPEN &&
	    (cond == XMPP_STREAM_ERROR_COUNT ||
	    cond == XMPP_STREAM_SYSTEM_SHUTDOWN) &&
	    leg_first_pair(l, false) != NULL;
}

void
leg_close(struct leg *l, enum xmpp_stream_error cond, const char *text)
{
	bool linger;

	if (l->state == LEG_CLOSING || l->state == LEG_CLOSED)
		return;
	linger = leg_lingers(l, cond);
	if (leg_text(l->close_reason)[0] == '\0')
		leg_set_reason(l, "%s%s%s", cond == XMPP_STREAM_ERROR_COUNT ?
		    "stream closed" : xmpp_stream_error_name(cond),
		    text != NULL ? ": " : "", text != NULL ? text : "");
	else if (cond != XMPP_STREAM_ERROR_COUNT && leg_can_send(l)) {
		char prev[LEG_REASON_MAX];

		snprintf(prev, sizeof(prev), "%s", l->close_reason);
		leg_set_reason(l, "%s (sent %s)", prev,
		    xmpp_stream_error_name(cond));
	}
	if (!leg_can_send(l)) {
		leg_end(l, leg_text(l->close_reason));
		return;
	}
	/* An incoming stream ended before its header came still gets a
	 * header of ours, with an id like any other (RFC 6120 4.9.1.3). */
	if (!l->outgoing && !l->header_sent && l->stream_id[0] == '\0')
		(void)dialback_stream_id(l->stream_id, sizeof(l->stream_id));
	if (!l->header_sent)
		leg_send_header(l, l->outgoing ? NULL : l->stream_id);
	if (cond != XMPP_STREAM_ERROR_COUNT)
		xmpp_render_stream_error(l->out, cond, text);
	else
		xmpp_render_close(l->out);
	leg_flush_out(l);
	leg_enter_state(l, LEG_CLOSING);
	if (linger)
		conn_close_linger(l->conn);
	else
		conn_close(l->conn);
}

/* Map a framer error to its stream error. */
static enum xmpp_stream_error
leg_framer_error(const struct leg *l)
{
	enum xmpp_stream_error e;
	const char *name = xmlstream_error_name(xmlstream_last_error(l->xs));

	if (name == NULL || xmpp_stream_error_parse(name, &e) == -1)
		return XMPP_STREAM_UNDEFINED_CONDITION;
	return e;
}

/*
 * Whether the peer of the incoming leg l leaves more than limit
 * output-buffer unread: then l is closed with resource-constraint (its
 * answers are all that it writes; what the peer sends meanwhile is not
 * read any more).
 */
static bool
leg_output_is_full(struct leg *l)
{
	uint64_t max = l->config->limits.output_buffer;
	size_t n;
	char sz[32];

	if (l->conn == NULL || l->state == LEG_CLOSING ||
	    l->state == LEG_CLOSED || (n = conn_output_length(l->conn)) <= max)
		return false;
	leg_set_reason(l, "the peer does not read: %zu bytes unsent (limit "
	    "output-buffer %s)", n, util_size_str(max, sz, sizeof(sz)));
	leg_close(l, XMPP_STREAM_RESOURCE_CONSTRAINT, NULL);
	return true;
}

/* Feed one chunk; return false when the leg must stop reading. */
static bool
leg_feed(struct leg *l, const char *buf, size_t len, size_t *used)
{
	enum xmlstream_event ev = xmlstream_feed(l->xs, buf, len, used);

	switch (ev) {
	case XMLSTREAM_MORE:
		return true;
	case XMLSTREAM_HEADER:
		if (l->outgoing)
			leg_out_header(l, xmlstream_header(l->xs));
		else
			leg_in_header(l, xmlstream_header(l->xs));
		break;
	case XMLSTREAM_ELEMENT:
		l->last_active = timer_now_ms();
		if (l->outgoing)
			leg_out_element(l, xmlstream_element(l->xs));
		else
			leg_in_element(l, xmlstream_element(l->xs));
		/* A bidi leg carrying a route: the route's congestion bounds
		 * its output, as on an outgoing leg. */
		if (!l->outgoing && l->route == NULL && leg_output_is_full(l))
			return false;
		break;
	case XMLSTREAM_END:
		l->peer_closed = true;
		if (l->state == LEG_CLOSING) {	/* lingering: done */
			conn_close(l->conn);
			return false;
		}
		leg_set_reason(l, "peer closed the stream");
		leg_close(l, XMPP_STREAM_ERROR_COUNT, NULL);
		return false;
	case XMLSTREAM_ERROR:
		if (l->state == LEG_CLOSING) {	/* lingering: no more */
			conn_close(l->conn);
			return false;
		}
		leg_set_reason(l, "%s: %s", xmlstream_error_name(
		    xmlstream_last_error(l->xs)), xmlstream_error_detail(l->xs));
		metrics_stream_refused(l->face, l->outgoing, l->local,
		    l->remote, leg_framer_error(l));
		leg_close(l, leg_framer_error(l), NULL);
		return false;
	}
	if (l->state == LEG_CLOSING)
		return l->conn != NULL && conn_is_lingering(l->conn);
	return l->state != LEG_CLOSED && !l->paused;
}

static void
leg_conn_read(struct conn *c, void *arg)
{
	struct leg *l = arg;
	struct evbuffer *in = conn_input(c);
	struct evbuffer_iovec v;
	size_t used;

	while (evbuffer_peek(in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		bool go_on = leg_feed(l, v.iov_base, v.iov_len, &used);

		if (l->state == LEG_CLOSED)
			return;
		/* STARTTLS replaced the input (its old bytes were discarded). */
		if (conn_input(l->conn) != in)
			return;
		evbuffer_drain(in, used);
		if (!go_on)
			return;
		if (used == 0 && v.iov_len > 0) {
			/* The framer needs the next chunk joined to this one. */
			if (evbuffer_pullup(in, -1) == NULL)
				return;
		}
	}
	/* All read: an idle leg holds no parse buffers (a busy one makes
	 * them again at the next chunk, a few mallocs per read). */
	if (evbuffer_get_length(in) == 0)
		xmlstream_shrink(l->xs);
}

static void
leg_conn_event(struct conn *c, enum conn_event ev, void *arg)
{
	struct leg *l = arg;

	switch (ev) {
	case CONN_EV_CONNECTED:
		leg_out_connected(l);
		break;
	case CONN_EV_TLS_DONE:
		if (l->outgoing)
			leg_out_tls_done(l);
		else
			leg_in_tls_done(l);
		break;
	case CONN_EV_DRAINED:
		if (l->route != NULL)
			route_leg_drained(l->route, l);
		break;
	case CONN_EV_EOF:
		l->peer_closed = true;
		if (l->state == LEG_CLOSING && conn_is_lingering(c)) {
			conn_close(c);	/* it read all there was: finish */
			break;
		}
		if (l->state != LEG_CONNECTING && l->state != LEG_CLOSING &&
		    l->state != LEG_TLS) {
			/* A half-close: the peer still reads our close. */
			leg_set_reason(l, "the peer closed the connection");
			leg_close(l, XMPP_STREAM_ERROR_COUNT, NULL);
			break;
		}
		/* FALLTHROUGH */
	case CONN_EV_ERROR:
		(void)leg_printf(&l->last_error, LEG_ERROR_MAX, "%s: %s",
		    conn_peer(c), conn_error(c));
		if (l->outgoing && l->state == LEG_CONNECTING) {
			char name[LEG_NAME_MAX];

			log_peer(LOG_LEVEL_INFO, "%s: connect to %s failed: %s",
			    leg_name(l, name, sizeof(name)), conn_peer(c),
			    conn_error(c));
			/* the last attempt's failure is the one bounced */
			l->fail_cond = XMPP_STANZA_REMOTE_SERVER_NOT_FOUND;
			if (leg_out_retry(l))
				break;
		}
		leg_end(l, conn_error(c));
		break;
	case CONN_EV_CLOSED:
		leg_keep_bytes(l, c);
		l->conn = NULL;		/* conn frees itself */
		leg_end(l, leg_text(l->close_reason));
		break;
	}
}

/* Ready to carry a route's stanzas: an outgoing leg once authenticated;
 * a bidirectional incoming leg (it was given the route authenticated). */
static bool
leg_is_ready(const struct leg *l)
{
	return l->state == (l->outgoing ? LEG_READY : LEG_OPEN);
}

static bool
leg_is_congested(const struct leg *l)
{
	return l->conn == NULL || conn_is_congested(l->conn);
}

static int
leg_send(struct leg *l, const struct iovec *iov, int iovcnt)
{
	if (!leg_is_ready(l) || conn_writev(l->conn, iov, iovcnt) == -1)
		return -1;
	l->stanzas_out++;
	metrics_stanza(&l->stanzas_written, l->face, true, l->local,
	    l->remote);
	if (l->outgoing)
		stream_out_sent(&l->ostream);
	leg_touch(l);
	return 0;
}

static bool
leg_has_sm(const struct leg *l)
{
	return l->outgoing && stream_out_has_sm(&l->ostream);
}

static int
leg_request_ack(struct leg *l)
{
	int may;

	if (!l->outgoing)
		return -1;
	may = stream_out_may_ask(&l->ostream);

	if (l->state != LEG_READY || may != 1)
		return l->state != LEG_READY ? -1 : may;
	xmpp_render_sm_request(l->out);
	if (leg_flush_out(l) == -1)
		return -1;
	stream_out_asked(&l->ostream);
	return 0;
}

void
leg_pause(struct leg *l, struct route *r)
{
	char name[LEG_NAME_MAX];

	if (l->paused || l->conn == NULL || route_wait(r, l->id) == -1)
		return;
	l->paused = true;
	conn_set_reading(l->conn, false);
	log_debug("%s: paused: its route is congested",
	    leg_name(l, name, sizeof(name)));
}

static void
leg_resume(void *arg, uint64_t id)
{
	struct leg *l = leg_find(arg, id);
	char name[LEG_NAME_MAX];

	if (l == NULL || !l->paused || l->conn == NULL)
		return;
	l->paused = false;
	log_debug("%s: resumed", leg_name(l, name, sizeof(name)));
	conn_set_reading(l->conn, true);
}

static void
leg_detach_route(struct leg *l)
{
	struct stream_pair *p;

	l->route = NULL;
	if (!l->outgoing)		/* a bidi leg carries it no more */
		TAILQ_FOREACH(p, &l->istream.pairs, entry)
			((struct leg_pair *)p)->carries_reverse = false;
}

void
leg_start_keepalive(struct leg *l)
{
	uint64_t ms = l->config->timeouts.keepalive;

	if (ms == 0 || l->keepalive != NULL)
		return;
	l->keepalive = timer_new(l->env->base, true, leg_keepalive, l);
	if (l->keepalive != NULL)
		timer_start(l->keepalive, ms);
}

/* Close l with system-shutdown, reason in its log line. */
static void
leg_shut(struct leg *l, const char *reason)
{
	leg_set_reason(l, "%s", reason);
	leg_close(l, XMPP_STREAM_SYSTEM_SHUTDOWN, NULL);
}

void
leg_close_all(struct leg_env *env, const char *reason)
{
	struct leg *l, *next;

	TAILQ_FOREACH_SAFE(l, &env->registry, entry, next) {
		/* One still reading after our close reads no more. */
		if (l->state == LEG_CLOSING && l->conn != NULL &&
		    conn_is_lingering(l->conn))
			conn_close(l->conn);
		else
			leg_shut(l, reason);
	}
}

void
leg_close_incoming(struct leg_env *env, const char *reason)
{
	struct leg *l, *next;

	TAILQ_FOREACH_SAFE(l, &env->registry, entry, next)
		if (!l->outgoing)
			leg_shut(l, reason);
}

unsigned
leg_count_incoming(const struct leg_env *env)
{
	const struct leg *l;
	unsigned n = 0;

	TAILQ_FOREACH(l, &env->registry, entry)
		if (!l->outgoing && l->state != LEG_CLOSED)
			n++;
	return n;
}

/* Whether the current policy allows the remote domain d. */
static bool
leg_domain_is_allowed(const struct leg_env *env, const char *d)
{
	struct policy_match m;

	return d[0] == '\0' || (policy_match(env->config->policy, d, &m) == 0 &&
	    m.settings.allow);
}

/*
 * Whether the current policy still allows the remote domains a leg
 * carries: on the public face the peer's, on the internal face the one
 * fedgated presents itself as (the leg's local domain, or each pair's to).
 */
static bool
leg_is_allowed(const struct leg *l)
{
	const struct stream_pair *p;

	if (l->outgoing)
		return leg_domain_is_allowed(l->env, l->face ==
		    CONFIG_FACE_PUBLIC ?
		    l->remote : l->local);
	TAILQ_FOREACH(p, &l->istream.pairs, entry)
		if (!leg_domain_is_allowed(l->env, l->face ==
		    CONFIG_FACE_PUBLIC ?
		    p->from : p->to))
			return false;
	return true;
}

unsigned
leg_close_denied(struct leg_env *env, const char *reason)
{
	struct leg *l, *next;
	unsigned n = 0;

	TAILQ_FOREACH_SAFE(l, &env->registry, entry, next) {
		if (l->state == LEG_CLOSING || leg_is_allowed(l))
			continue;
		leg_set_reason(l, "%s", reason);
		leg_close(l, XMPP_STREAM_POLICY_VIOLATION, NULL);
		n++;
	}
	return n;
}

unsigned
leg_kill(struct leg_env *env, uint64_t id, const char *domain)
{
	struct leg *l, *next;
	unsigned n = 0;

	TAILQ_FOREACH_SAFE(l, &env->registry, entry, next) {
		if (l->state == LEG_CLOSING)
			continue;
		if (id != 0 ? l->id != id : strcmp(l->remote, domain) != 0)
			continue;
		leg_set_reason(l, "killed from the control socket");
		leg_close(l, XMPP_STREAM_POLICY_VIOLATION, "closed by the "
		    "administrator");
		n++;
	}
	return n;
}

unsigned
leg_count(const struct leg_env *env)
{
	return env->total;
}

/* Append "from->to" to buf (*off bytes used), space-separated; never a
 * half-written one. */
static void
leg_info_flow(char *buf, size_t len, size_t *off, const char *from,
    const char *to)
{
	int n = snprintf(buf + *off, len - *off, "%s%s->%s", *off > 0 ? " " :
	    "", from, to);

	if (n < 0 || (size_t)n >= len - *off) {
		buf[*off] = '\0';
		return;
	}
	*off += (size_t)n;
}

/* The stanza flows l carries (leg_info.carries). */
static const char *
leg_info_carries(const struct leg *l)
{
	static char buf[512];
	const struct stream_pair *p;
	size_t off = 0;

	buf[0] = '\0';
	if (l->outgoing) {
		if (l->verify)
			return buf;
		leg_info_flow(buf, sizeof(buf), &off, l->local, l->remote);
		if (l->reverse != NULL)
			leg_info_flow(buf, sizeof(buf), &off, l->remote,
			    l->local);
		return buf;
	}
	TAILQ_FOREACH(p, &l->istream.pairs, entry) {
		if (p->pending)
			continue;
		leg_info_flow(buf, sizeof(buf), &off, p->from, p->to);
		if (((const struct leg_pair *)p)->carries_reverse)
			leg_info_flow(buf, sizeof(buf), &off, p->to, p->from);
	}
	return buf;
}

void
leg_info_of(const struct leg *l, struct leg_info *i)
{
	static char tls[96], pairs[512], orig[UTIL_SOCKADDR_STRLEN];
	static char source[UTIL_SOCKADDR_STRLEN];
	static struct sockaddr_storage local;
	const struct stream_pair *p;
	size_t off = 0;

	pairs[0] = '\0';
	for (p = l->outgoing ? NULL : TAILQ_FIRST(&l->istream.pairs); p != NULL;
	    p = TAILQ_NEXT(p, entry)) {
		int n = snprintf(pairs + off, sizeof(pairs) - off, "%s%s->%s%s",
		    off > 0 ? " " : "", p->from, p->to,
		    p->pending ? "(verifying)" : "");
		if (n < 0 || (size_t)n >= sizeof(pairs) - off) {
			pairs[off] = '\0';	/* no half-written pair */
			break;
		}
		off += (size_t)n;
	}
	memset(i, 0, sizeof(*i));
	i->id = l->id;
	i->face = config_face_name(l->face);
	i->outgoing = l->outgoing;
	i->verify = l->verify;
	i->local = l->local;
	i->remote = l->remote;
	i->peer = leg_peer(l);
	i->state = leg_state_names[l->state];
	i->tls = l->conn != NULL ? conn_tls_description(l->conn, tls,
	    sizeof(tls)) : "";
	i->auth = leg_auth_names[l->auth];
	i->domains = pairs;
	i->bidi = l->bidi;
	i->carries = leg_info_carries(l);
	i->age_ms = timer_now_ms() - l->created;
	i->stanzas_in = l->stanzas_in;
	i->stanzas_out = l->stanzas_out;
	i->bytes_in = l->conn != NULL ? conn_bytes_in(l->conn) : l->bytes_in;
	i->bytes_out = l->conn != NULL ? conn_bytes_out(l->conn) : l->bytes_out;
	i->queue = l->route != NULL ? route_queue_length(l->route) : 0;
	i->paused = l->paused;
	i->transparent = l->transparent;
	i->original = "";
	if (l->orig != NULL)
		i->original = util_sockaddr_str((const struct sockaddr *)l->orig,
		    orig, sizeof(orig));
	i->resolve = l->resolved_by;
	i->local_addr = l->conn != NULL && conn_local_addr(l->conn,
	    &local) == 0 ? (const struct sockaddr *)&local : NULL;
	i->peer_addr = l->conn != NULL ? conn_peer_addr(l->conn) : NULL;
	i->source = "";
	if (l->dial != NULL && l->dial->sourcelen > 0)	/* the socket's,
							   once it has one */
		i->source = util_sockaddr_str(i->local_addr != NULL ?
		    i->local_addr : (const struct sockaddr *)&l->dial->source,
		    source, sizeof(source));
}

void
leg_foreach(struct leg_env *env, void (*fn)(const struct leg_info *, void *),
    void *arg)
{
	const struct leg *l;
	struct leg_info info;

	TAILQ_FOREACH(l, &env->registry, entry) {
		leg_info_of(l, &info);
		fn(&info, arg);
	}
}
