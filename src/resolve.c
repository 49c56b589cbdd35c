/*
 * resolve: libunbound on the libevent loop. The context runs its own
 * thread (ub_ctx_async(ctx, 1)); answers come back through ub_fd(), a pipe
 * watched with a persistent EV_READ event that calls ub_process(), which
 * runs our callback for each answer. A request holds one or two queries
 * (two SRV names, or A and AAAA) and a timer; it is answered once all its
 * queries are, or when the timer fires.
 *
 * Cancellation relies on libunbound's contract: ub_cancel() marks or drops
 * the query under the context's lock, and ub_process() never calls back a
 * cancelled or unknown query. So after ub_cancel() our query memory can go.
 */
#include "fgconfig.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <ctype.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <unbound.h>

#include "log.h"
#include "util.h"
#define RESOLVE_PRIVATE
#include "resolve.h"

/* Room for "_xmpps-server._tcp." and a domain. */
#define RESOLVE_QNAME_MAX	(RESOLVE_HOST_MAX + 24)

enum resolve_kind {
	RESOLVE_KIND_S2S,
	RESOLVE_KIND_ADDRS
};

enum resolve_req_state {
	RESOLVE_REQ_QUERYING,	/* queries out, timer running */
	RESOLVE_REQ_DELIVERING	/* final: the callback runs, then free */
};

static const char *const resolve_req_state_names[] = {
	[RESOLVE_REQ_QUERYING] = "querying",
	[RESOLVE_REQ_DELIVERING] = "delivering",
};

struct resolve_query {
	struct resolve_req	*req;
	char			 qname[RESOLVE_QNAME_MAX];
	int			 rrtype;
	bool			 direct_tls;	/* SRV of _xmpps-server */
	bool			 pending;	/* sent, not answered */
	int			 id;		/* libunbound's, while pending */
	enum resolve_status	 status;	/* once answered */
	bool			 secure;	/* once answered */
	bool			 local;		/* libunbound answered it itself */
	char			 zone[RESOLVE_HOST_MAX]; /* local: its SOA, or "" */
	char			 why[160];	/* libunbound's error or why_bogus */
};

struct resolve_req {
	TAILQ_ENTRY(resolve_req) entry;		/* in resolve's reqs */
	struct resolve		*r;
	enum resolve_kind	 kind;
	enum resolve_req_state	 state;
	struct event		*timer;
	char			 name[RESOLVE_HOST_MAX]; /* domain or host */
	uint16_t		 port;			 /* ADDRS */
	struct resolve_query	 query[2];
	size_t			 nquery;
	/* Gathered from the answers so far. */
	struct resolve_targets	*targets;		/* S2S; NULL: none */
	struct resolve_addr	 addr6[RESOLVE_ADDR_MAX]; /* ADDRS */
	struct resolve_addr	 addr4[RESOLVE_ADDR_MAX];
	size_t			 n6, n4;
	enum resolve_status	 status;		/* DELIVERING */
	bool			 timed_out;		/* DELIVERING */
	char			 who[RESOLVE_WHO_MAX];	/* the resolver's */
	uint64_t		 timeout_ms;
	void	(*s2s_cb)(enum resolve_status, struct resolve_targets *,
		    void *);
	void	(*addrs_cb)(enum resolve_status, struct resolve_addrs *,
		    void *);
	void			*arg;
};

struct resolve {
	struct event_base	*base;
	struct ub_ctx		*ctx;
	struct event		*ev;		/* ub_fd() readable */
	struct timeval		 timeout;	/* per request */
	TAILQ_HEAD(, resolve_req) reqs;		/* QUERYING requests */
	int			 processing;	/* inside ub_process() */
	bool			 dying;		/* freed while processing */
	bool			 started;	/* context finalised */
	bool			 failed;	/* and that failed */
	char			 who[RESOLVE_WHO_MAX];
	char			**zones;	/* named by local-zone options */
	size_t			 nzones;
};

/*
 * The local zones libunbound serves by default (RFC 6761, 6303, 7686,
 * 8375, 9462, 9665; see its services/localzone.c), in any of its
 * versions; the AS112 zones go with the option unblock-lan-zones. A
 * forwarder is the authority on every name, so resolve_start() removes
 * them. ("local-zone: NAME nodefault" would be the documented switch, but
 * ub_ctx_set_option() stores NAME and type together there, up to 1.22 at
 * least, so that the zone is never matched.)
 */
static const char *const resolve_default_zones[] = {
	"localhost.",
	"127.in-addr.arpa.",
	("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "ip6.arpa."),
	"test.",
	"invalid.",
	"onion.",
	"home.arpa.",
	"resolver.arpa.",
	"service.arpa.",
};

static const char *const resolve_status_names[] = {
	[RESOLVE_OK] = "ok",
	[RESOLVE_NXDOMAIN] = "nxdomain",
	[RESOLVE_NODATA] = "nodata",
	[RESOLVE_UNAVAILABLE] = "unavailable",
	[RESOLVE_TIMEOUT] = "timeout",
	[RESOLVE_SERVFAIL] = "servfail",
	[RESOLVE_BOGUS] = "bogus",
};

static void resolve_fd_cb(evutil_socket_t, short, void *);
static void resolve_timeout_cb(evutil_socket_t, short, void *);

const char *
resolve_status_name(enum resolve_status s)
{
	if ((size_t)s >= nitems(resolve_status_names))
		return "unknown";
	return resolve_status_names[s];
}

/* Configure where queries go, and name it in r->who. Return 0 or -1. */
static int
resolve_set_servers(struct resolve *r, const char *forwarder, uint16_t port)
{
	struct ub_ctx *ctx = r->ctx;
	struct sockaddr_storage ss;
	socklen_t len;
	char fwd[INET6_ADDRSTRLEN + 8];
	int rc;

	if (forwarder == NULL) {
		if ((rc = ub_ctx_resolvconf(ctx, NULL)) != 0) {
			log_warnx("resolve: /etc/resolv.conf: %s",
			    ub_strerror(rc));
			return -1;
		}
		/* A machine without /etc/hosts (a fresh chroot) still has DNS. */
		if ((rc = ub_ctx_hosts(ctx, NULL)) != 0)
			log_info("resolve: /etc/hosts: %s; names go to the "
			    "DNS only", ub_strerror(rc));
		snprintf(r->who, sizeof(r->who),
		    "the system resolver (/etc/resolv.conf)");
		return 0;
	}
	if (strcmp(forwarder, "*") == 0 ||
	    util_sockaddr_parse(forwarder, port, &ss, &len) == -1) {
		log_warnx("resolve: forwarder %s: not a numeric address",
		    forwarder);
		return -1;
	}
	snprintf(fwd, sizeof(fwd), "%s@%u", forwarder,
	    port != 0 ? port : NS_DEFAULTPORT);
	if ((rc = ub_ctx_set_fwd(ctx, fwd)) != 0) {
		log_warnx("resolve: forwarder %s: %s", fwd, ub_strerror(rc));
		return -1;
	}
	snprintf(r->who, sizeof(r->who), "forwarder %s port %u", forwarder,
	    port != 0 ? port : NS_DEFAULTPORT);
	return 0;
}

struct resolve *
resolve_new(struct event_base *base, const char *forwarder, uint16_t port,
    uint64_t timeout_ms)
{
	const struct timeval *common;
	struct resolve *r;
	int rc;

	if (timeout_ms == 0)
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->base = base;
	TAILQ_INIT(&r->reqs);
	r->timeout.tv_sec = (time_t)(timeout_ms / 1000);
	r->timeout.tv_usec = (suseconds_t)(timeout_ms % 1000 * 1000);
	/* Every request has the same timeout: libevent keeps them in a queue. */
	if ((common = event_base_init_common_timeout(base, &r->timeout)) != NULL)
		r->timeout = *common;
	if ((r->ctx = ub_ctx_create()) == NULL) {
		log_warnx("resolve: cannot create a libunbound context");
		goto fail;
	}
	if (resolve_set_servers(r, forwarder, port) == -1)
		goto fail;
	/* No AS112 zone answered locally either (see resolve_start()). */
	if ((rc = ub_ctx_set_option(r->ctx, "unblock-lan-zones:", "yes")) != 0) {
		log_warnx("resolve: unblock-lan-zones: %s", ub_strerror(rc));
		goto fail;
	}
	if ((rc = ub_ctx_async(r->ctx, 1)) != 0) {
		log_warnx("resolve: libunbound threads: %s", ub_strerror(rc));
		goto fail;
	}
	r->ev = event_new(base, ub_fd(r->ctx), EV_READ | EV_PERSIST,
	    resolve_fd_cb, r);
	if (r->ev == NULL || event_add(r->ev, NULL) == -1)
		goto fail;
	return r;
 fail:
	if (r->ev != NULL)
		event_free(r->ev);
	ub_ctx_delete(r->ctx);
	free(r);
	return NULL;
}

static void
resolve_destroy(struct resolve *r)
{
	event_free(r->ev);
	ub_ctx_delete(r->ctx);
	for (size_t i = 0; i < r->nzones; i++)
		free(r->zones[i]);
	free(r->zones);
	free(r);
}

static void resolve_req_detach(struct resolve_req *);
static void resolve_req_free(struct resolve_req *);

void
resolve_free(struct resolve *r)
{
	struct resolve_req *req;

	if (r == NULL)
		return;
	while ((req = TAILQ_FIRST(&r->reqs)) != NULL) {
		resolve_req_detach(req);
		resolve_req_free(req);
	}
	if (r->processing > 0) {
		/* Called from a callback inside ub_process(): finish there. */
		r->dying = true;
		event_del(r->ev);
		return;
	}
	resolve_destroy(r);
}

static void
resolve_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolve *r = arg;
	int rc;

	r->processing++;
	rc = ub_process(r->ctx);
	r->processing--;
	if (r->dying) {
		if (r->processing == 0)
			resolve_destroy(r);
		return;
	}
	if (rc != 0) {
		/* The worker is gone: stop spinning; requests time out. */
		log_warnx("resolve: libunbound: %s", ub_strerror(rc));
		event_del(r->ev);
	}
}

int
resolve_add_trust_anchor(struct resolve *r, const char *rr)
{
	int rc;

	if ((rc = ub_ctx_add_ta(r->ctx, rr)) != 0) {
		log_warnx("resolve: trust anchor: %s", ub_strerror(rc));
		return -1;
	}
	return 0;
}

int
resolve_add_trust_anchor_file(struct resolve *r, const char *path)
{
	int rc;

	if ((rc = ub_ctx_add_ta_file(r->ctx, path)) != 0) {
		log_warnx("resolve: trust anchor %s: %s", path,
		    ub_strerror(rc));
		return -1;
	}
	return 0;
}

/*
 * Finalise ctx's configuration now, as its first query would: read the
 * trust anchor files, build the local zones. libunbound has no call for
 * this alone, but ub_ctx_zone_add() finalises first and then refuses the
 * empty zone type, without logging or changing anything. Return 0 or the
 * libunbound error.
 */
static int
resolve_finalize(struct ub_ctx *ctx)
{
	int rc = ub_ctx_zone_add(ctx, ".", "");

	return rc == UB_SYNTAX ? 0 : rc == 0 ? UB_INITFAIL : rc;
}

/* Whether name is an option resolve_set_option() refuses. */
static const char *
resolve_option_refused(const char *name)
{
	/* fedgate needs the iterator; a bad value crashes ub_ctx_delete(). */
	if (strcmp(name, "module-config:") == 0)
		return "fedgated sets up libunbound's modules itself";
	return NULL;
}

/* Copy "name" with its trailing colon into buf. Return 0 or -1. */
static int
resolve_option_name(const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	if (n == 0 || n + 2 > len)
		return -1;
	memcpy(buf, name, n + 1);
	if (buf[n - 1] != ':') {
		buf[n] = ':';
		buf[n + 1] = '\0';
	}
	return 0;
}

/* Remember the zone of a local-zone option: resolve_start() keeps it. */
static int
resolve_keep_zone(struct resolve *r, const char *value)
{
	char zone[RESOLVE_HOST_MAX + 1], **z;
	size_t n;

	while (*value == ' ' || *value == '\t')
		value++;
	n = strcspn(value, " \t");
	if (n == 0 || n >= sizeof(zone) - 1)
		return 0;		/* libunbound refuses it at start */
	for (size_t i = 0; i < n; i++)
		zone[i] = (char)tolower((unsigned char)value[i]);
	if (zone[n - 1] != '.')
		zone[n++] = '.';
	zone[n] = '\0';
	if ((z = reallocarray(r->zones, r->nzones + 1, sizeof(*z))) == NULL)
		return -1;
	r->zones = z;
	if ((z[r->nzones] = strdup(zone)) == NULL)
		return -1;
	r->nzones++;
	return 0;
}

int
resolve_set_option(struct resolve *r, const char *name, const char *value)
{
	char opt[64];
	const char *why;
	int rc = 0;

	if (resolve_option_name(name, opt, sizeof(opt)) == -1) {
		log_warnx("resolve: option \"%s\": bad name", name);
		return -1;
	}
	if ((why = resolve_option_refused(opt)) != NULL) {
		log_warnx("resolve: option %s refused: %s", opt, why);
		return -1;
	}
	if (r->started || (rc = ub_ctx_set_option(r->ctx, opt, value)) != 0) {
		log_warnx("resolve: option %s \"%s\": %s", opt, value,
		    r->started ? "too late, the resolver is running" :
		    ub_strerror(rc));
		return -1;
	}
	if (strcmp(opt, "local-zone:") == 0 &&
	    resolve_keep_zone(r, value) == -1)
		return -1;
	return 0;
}

static bool
resolve_zone_is_kept(const struct resolve *r, const char *zone)
{
	for (size_t i = 0; i < r->nzones; i++)
		if (strcasecmp(r->zones[i], zone) == 0)
			return true;
	return false;
}

int
resolve_start(struct resolve *r)
{
	int rc;

	if (r->started)
		return r->failed ? -1 : 0;
	r->started = true;
	if ((rc = resolve_finalize(r->ctx)) != 0) {
		log_warnx("resolve: libunbound cannot start: %s",
		    ub_strerror(rc));
		r->failed = true;
		return -1;
	}
	for (size_t i = 0; i < nitems(resolve_default_zones); i++) {
		if (resolve_zone_is_kept(r, resolve_default_zones[i]))
			continue;
		/* Absent (an older libunbound): nothing to do. */
		if ((rc = ub_ctx_zone_remove(r->ctx,
		    resolve_default_zones[i])) != 0) {
			log_warnx("resolve: local zone %s: %s",
			    resolve_default_zones[i], ub_strerror(rc));
			r->failed = true;
			return -1;
		}
	}
	log_debug("resolve: started, asking %s", r->who);
	return 0;
}

const char *
resolve_who(const struct resolve *r)
{
	return r->who;
}

/*
 * Copy into err the first error libunbound logged in text (its lines are
 * "[time] libunbound[pid:tid] error: message"), or fallback.
 */
static void
resolve_first_error(const char *text, const char *fallback, char *err,
    size_t errlen)
{
	const char *p = text != NULL ? strstr(text, "] error: ") : NULL;
	size_t n;

	if (p == NULL) {
		snprintf(err, errlen, "%s", fallback);
		return;
	}
	p += strlen("] error: ");
	n = strcspn(p, "\n");
	snprintf(err, errlen, "%.*s", (int)n, p);
}

/*
 * Build a scratch context with one option or trust anchor and finalise
 * it, catching what libunbound logs. Return 0, or -1 with why in err.
 */
static int
resolve_check(const char *opt, const char *value, int ta, char *err,
    size_t errlen)
{
	struct ub_ctx *ctx;
	char *text = NULL;
	size_t textlen = 0;
	FILE *f;
	int rc;

	if ((ctx = ub_ctx_create()) == NULL) {
		snprintf(err, errlen, "cannot create a libunbound context");
		return -1;
	}
	/* Its log goes to us; ub_ctx_delete() turns that off again. */
	if ((f = open_memstream(&text, &textlen)) != NULL)
		ub_ctx_debugout(ctx, f);
	if (ta == 1)
		rc = ub_ctx_add_ta(ctx, value);
	else if (ta == 2)
		rc = ub_ctx_add_ta_file(ctx, value);
	else
		rc = ub_ctx_set_option(ctx, opt, value);
	if (rc == 0)
		rc = resolve_finalize(ctx);
	ub_ctx_delete(ctx);
	if (f != NULL)
		fclose(f);
	if (rc != 0)
		resolve_first_error(text, ub_strerror(rc), err, errlen);
	free(text);
	return rc == 0 ? 0 : -1;
}

int
resolve_check_option(const char *name, const char *value, char *err,
    size_t errlen)
{
	char opt[64];
	const char *why;

	if (resolve_option_name(name, opt, sizeof(opt)) == -1) {
		snprintf(err, errlen, "not an option name");
		return -1;
	}
	if ((why = resolve_option_refused(opt)) != NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (resolve_check(opt, value, 0, err, errlen) == -1) {
		/* ub_ctx_set_option() says only "syntax error". */
		if (strcmp(err, ub_strerror(UB_SYNTAX)) == 0)
			snprintf(err, errlen, "libunbound has no such option, "
			    "or refuses this value");
		return -1;
	}
	return 0;
}

int
resolve_check_trust_anchor(const char *rr, bool file, char *err,
    size_t errlen)
{
	return resolve_check(NULL, rr, file ? 2 : 1, err, errlen);
}

static void
resolve_req_enter_state(struct resolve_req *req, enum resolve_req_state s)
{
	if (req->state != RESOLVE_REQ_QUERYING ||
	    s != RESOLVE_REQ_DELIVERING)
		fatalx("resolve: %s: bad transition %s -> %s", req->name,
		    resolve_req_state_names[req->state],
		    resolve_req_state_names[s]);
	log_debug("resolve: %s: %s -> %s", req->name,
	    resolve_req_state_names[req->state], resolve_req_state_names[s]);
	req->state = s;
}

/* Copy name without a trailing dot. Return 0, or -1 if empty or too long. */
static int
resolve_copy_name(char *dst, const char *name)
{
	size_t len = strlen(name);

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len >= RESOLVE_HOST_MAX)
		return -1;
	memcpy(dst, name, len);
	dst[len] = '\0';
	return 0;
}

static struct resolve_req *
resolve_req_new(struct resolve *r, enum resolve_kind kind, const char *name)
{
	struct resolve_req *req;

	if ((req = calloc(1, sizeof(*req))) == NULL)
		return NULL;
	req->r = r;
	req->kind = kind;
	memcpy(req->who, r->who, sizeof(req->who));
	req->timeout_ms = (uint64_t)r->timeout.tv_sec * 1000 +
	    (uint64_t)r->timeout.tv_usec / 1000;
	req->state = RESOLVE_REQ_QUERYING;
	if (resolve_copy_name(req->name, name) == -1 ||
	    (req->timer = evtimer_new(r->base, resolve_timeout_cb, req)) ==
	    NULL) {
		free(req);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&r->reqs, req, entry);
	return req;
}

/* Cancel pending queries and leave the list. Return true if any was out. */
static bool
resolve_req_cancel_queries(struct resolve_req *req)
{
	bool pending = false;

	for (size_t i = 0; i < req->nquery; i++) {
		if (!req->query[i].pending)
			continue;
		/* Whatever it returns, no callback follows for this id. */
		(void)ub_cancel(req->r->ctx, req->query[i].id);
		req->query[i].pending = false;
		req->query[i].status = RESOLVE_TIMEOUT;
		pending = true;
	}
	return pending;
}

static void
resolve_req_detach(struct resolve_req *req)
{
	resolve_req_cancel_queries(req);
	evtimer_del(req->timer);
	TAILQ_REMOVE(&req->r->reqs, req, entry);
	req->r = NULL;
}

/* Free a detached request. */
static void
resolve_req_free(struct resolve_req *req)
{
	event_free(req->timer);
	free(req->targets);
	free(req);
}

void
resolve_cancel(struct resolve_req *req)
{
	if (req == NULL || req->state == RESOLVE_REQ_DELIVERING)
		return;
	log_debug("resolve: %s: cancelled", req->name);
	resolve_req_detach(req);
	resolve_req_free(req);
}

static enum resolve_status
resolve_classify(int err, const struct ub_result *res)
{
	if (err != 0)
		return RESOLVE_SERVFAIL;
	if (res->bogus)
		return RESOLVE_BOGUS;
	if (res->havedata)
		return RESOLVE_OK;
	if (res->nxdomain)
		return RESOLVE_NXDOMAIN;
	if (res->rcode == 0)
		return RESOLVE_NODATA;
	return RESOLVE_SERVFAIL;
}

static uint16_t
resolve_get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * Add the SRV records of res to req->targets. Return the status of the
 * query: OK if a target was usable, UNAVAILABLE if "." was all there was.
 */
static enum resolve_status
resolve_take_srv(struct resolve_req *req, struct resolve_query *q,
    const struct ub_result *res)
{
	struct resolve_targets *t;
	struct resolve_target *tg;
	const unsigned char *d;
	size_t n, have, dots = 0, used = 0;
	char host[NS_MAXDNAME];

	for (n = 0; res->data[n] != NULL; n++)
		;
	if (n > RESOLVE_SRV_MAX) {
		log_debug("resolve: %s: %zu SRV records, keeping %d",
		    q->qname, n, RESOLVE_SRV_MAX);
		n = RESOLVE_SRV_MAX;
	}
	have = req->targets != NULL ? req->targets->count : 0;
	t = realloc(req->targets, sizeof(*t) + (have + n) * sizeof(*tg));
	if (t == NULL)
		return RESOLVE_SERVFAIL;
	if (req->targets == NULL)
		memset(t, 0, sizeof(*t));
	req->targets = t;
	for (size_t i = 0; i < n; i++) {
		d = (const unsigned char *)res->data[i];
		if (res->len[i] < 7 || dn_expand(d, d + res->len[i], d + 6,
		    host, sizeof(host)) < 0)
			continue;
		if (host[0] == '\0' || strcmp(host, ".") == 0) {
			dots++;
			continue;
		}
		if (!res_hnok(host) || strlen(host) >= RESOLVE_HOST_MAX ||
		    resolve_get16(d + 4) == 0) {
			log_debug("resolve: %s: unusable SRV target %s",
			    q->qname, UTIL_ESC(host));
			continue;
		}
		tg = &t->target[t->count++];
		memset(tg, 0, sizeof(*tg));
		strlcpy(tg->host, host, sizeof(tg->host));
		tg->priority = resolve_get16(d);
		tg->weight = resolve_get16(d + 2);
		tg->port = resolve_get16(d + 4);
		tg->direct_tls = q->direct_tls;
		tg->secure = res->secure != 0;
		used++;
	}
	if (used > 0)
		return RESOLVE_OK;
	return dots > 0 ? RESOLVE_UNAVAILABLE : RESOLVE_SERVFAIL;
}

static void
resolve_take_addrs(struct resolve_req *req, struct resolve_query *q,
    const struct ub_result *res)
{
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	struct resolve_addr *a;

	for (size_t i = 0; res->data[i] != NULL; i++) {
		if (q->rrtype == ns_t_aaaa && res->len[i] == 16 &&
		    req->n6 < RESOLVE_ADDR_MAX) {
			a = &req->addr6[req->n6++];
			sin6 = (struct sockaddr_in6 *)&a->ss;
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(req->port);
			memcpy(&sin6->sin6_addr, res->data[i], 16);
			a->len = sizeof(*sin6);
		} else if (q->rrtype == ns_t_a && res->len[i] == 4 &&
		    req->n4 < RESOLVE_ADDR_MAX) {
			a = &req->addr4[req->n4++];
			sin = (struct sockaddr_in *)&a->ss;
			sin->sin_family = AF_INET;
			sin->sin_port = htons(req->port);
			memcpy(&sin->sin_addr, res->data[i], 4);
			a->len = sizeof(*sin);
		}
	}
}

static void resolve_finish(struct resolve_req *);

static const char *
resolve_type_name(int rrtype)
{
	switch (rrtype) {
	case ns_t_srv:
		return "SRV";
	case ns_t_a:
		return "A";
	case ns_t_aaaa:
		return "AAAA";
	}
	return "?";
}

/*
 * The owner of the first SOA record in the authority section of the DNS
 * message p (len bytes) into zone (with a trailing dot), or "".
 */
static void
resolve_authority_zone(const unsigned char *p, size_t len, char *zone,
    size_t zonelen)
{
	const unsigned char *end = p + len, *cur;
	char name[NS_MAXDNAME];
	unsigned an, ns;
	int n;

	zone[0] = '\0';
	if (len < NS_HFIXEDSZ || resolve_get16(p + 4) != 1)
		return;
	an = resolve_get16(p + 6);
	ns = resolve_get16(p + 8);
	cur = p + NS_HFIXEDSZ;
	if ((n = dn_skipname(cur, end)) < 0 || end - cur < n + 4)
		return;
	cur += n + 4;
	for (unsigned i = 0; i < an + ns; i++) {
		const unsigned char *owner = cur;

		if ((n = dn_skipname(cur, end)) < 0 || end - cur < n + 10)
			return;
		cur += n;
		if (i >= an && resolve_get16(cur) == ns_t_soa) {
			if (dn_expand(p, end, owner, name, sizeof(name)) < 0 ||
			    (n = (int)strlen(name)) + 2 > (int)zonelen)
				return;
			memcpy(zone, name, (size_t)n + 1);
			if (n > 0 && name[n - 1] != '.')
				strlcat(zone, ".", zonelen);
			return;
		}
		n = resolve_get16(cur + 8);
		if (end - cur < 10 + n)
			return;
		cur += 10 + n;
	}
}

/*
 * Whether libunbound answered res itself, from a local zone (its own, one
 * of the configuration, or /etc/hosts): only those answers carry the AA
 * bit, as a resolver is the authority for no name it asks others about.
 */
static bool
resolve_is_local(const struct ub_result *res)
{
	const unsigned char *p = res->answer_packet;

	return p != NULL && res->answer_len >= NS_HFIXEDSZ &&
	    (p[2] & 0x04) != 0;
}

/* libunbound's callback, from ub_process(): one query answered. */
static void
resolve_ub_cb(void *arg, int err, struct ub_result *res)
{
	struct resolve_query *q = arg;
	struct resolve_req *req = q->req;
	size_t n;

	q->pending = false;
	q->status = resolve_classify(err, res);
	q->secure = res != NULL && res->secure;
	if (err != 0)
		snprintf(q->why, sizeof(q->why), "%s", ub_strerror(err));
	else if (res->why_bogus != NULL)
		snprintf(q->why, sizeof(q->why), "%s", res->why_bogus);
	if (res != NULL && resolve_is_local(res)) {
		q->local = true;
		resolve_authority_zone(res->answer_packet,
		    (size_t)res->answer_len, q->zone, sizeof(q->zone));
	}
	if (q->status == RESOLVE_OK) {
		if (q->rrtype == ns_t_srv)
			q->status = resolve_take_srv(req, q, res);
		else
			resolve_take_addrs(req, q, res);
	}
	for (n = 0; res != NULL && res->data[n] != NULL; n++)
		;
	log_debug("resolve: %s %s: %s, %zu record(s)%s%s%s%s%s", q->qname,
	    resolve_type_name(q->rrtype), resolve_status_name(q->status), n,
	    q->secure ? ", secure" : "",
	    q->local ? ", local zone " : "", q->local ? q->zone : "",
	    q->why[0] != '\0' ? ", why: " : "", q->why);
	ub_resolve_free(res);
	for (size_t i = 0; i < req->nquery; i++)
		if (req->query[i].pending)
			return;
	resolve_finish(req);
}

static int
resolve_req_send(struct resolve_req *req, const char *prefix, int rrtype,
    bool direct_tls)
{
	struct resolve_query *q = &req->query[req->nquery];
	int rc;

	q->req = req;
	q->rrtype = rrtype;
	q->direct_tls = direct_tls;
	snprintf(q->qname, sizeof(q->qname), "%s%s", prefix, req->name);
	rc = ub_resolve_async(req->r->ctx, q->qname, rrtype, ns_c_in, q,
	    resolve_ub_cb, &q->id);
	if (rc != 0) {
		/* A malformed name may come from a peer: not worth a warning. */
		if (rc == UB_SYNTAX)
			log_debug("resolve: %s: %s", q->qname, ub_strerror(rc));
		else
			log_warnx("resolve: %s: %s", q->qname, ub_strerror(rc));
		return -1;
	}
	q->pending = true;
	req->nquery++;
	return 0;
}

static void
resolve_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	resolve_finish(arg);
}

static int
resolve_cmp_priority(const void *a, const void *b)
{
	const struct resolve_target *x = a, *y = b;

	return (int)x->priority - (int)y->priority;
}

/* Pick, from t[0..n), which target comes first: RFC 2782's weighting. */
static size_t
resolve_pick_weighted(const struct resolve_target *t, size_t n)
{
	uint32_t sum = 0, acc = 0, zeros = 0, r;
	size_t i;

	for (i = 0; i < n; i++) {
		sum += t[i].weight;
		if (t[i].weight == 0)
			zeros++;
	}
	/*
	 * The weight-0 records stand first, in any order (we draw one at
	 * random), so they win only when the draw in [0, sum] is 0.
	 */
	r = sum > 0 ? arc4random_uniform(sum + 1) : 0;
	if (r == 0 && zeros > 0) {
		r = arc4random_uniform(zeros);
		for (i = 0; i < n; i++)
			if (t[i].weight == 0 && r-- == 0)
				return i;
	}
	for (i = 0; i < n; i++) {
		acc += t[i].weight;
		if (t[i].weight > 0 && acc >= r)
			return i;
	}
	return 0;
}

void
resolve_order_targets(struct resolve_target *t, size_t n)
{
	struct resolve_target tmp;
	size_t i, j, k, pick;

	qsort(t, n, sizeof(*t), resolve_cmp_priority);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && t[j].priority == t[i].priority; j++)
			;
		for (k = i; k + 1 < j; k++) {
			pick = k + resolve_pick_weighted(t + k, j - k);
			tmp = t[k];
			t[k] = t[pick];
			t[pick] = tmp;
		}
	}
}

static bool
resolve_any(const struct resolve_req *req, enum resolve_status s)
{
	for (size_t i = 0; i < req->nquery; i++)
		if (req->query[i].status == s)
			return true;
	return false;
}

static bool
resolve_all_secure(const struct resolve_req *req, bool timed_out)
{
	if (timed_out)
		return false;
	for (size_t i = 0; i < req->nquery; i++)
		if (!req->query[i].secure)
			return false;
	return true;
}

/* Build the S2S answer; NULL with *status unless RESOLVE_OK. */
static struct resolve_targets *
resolve_s2s_result(struct resolve_req *req, bool timed_out,
    enum resolve_status *status)
{
	struct resolve_targets *t;

	*status = RESOLVE_OK;
	if (req->targets != NULL && req->targets->count > 0) {
		t = req->targets;
		req->targets = NULL;
		resolve_order_targets(t->target, t->count);
		t->secure = resolve_all_secure(req, timed_out);
		return t;
	}
	if (resolve_any(req, RESOLVE_BOGUS))
		*status = RESOLVE_BOGUS;
	else if (resolve_any(req, RESOLVE_SERVFAIL))
		*status = RESOLVE_SERVFAIL;
	else if (timed_out)
		*status = RESOLVE_TIMEOUT;
	else if (resolve_any(req, RESOLVE_UNAVAILABLE))
		*status = RESOLVE_UNAVAILABLE;
	if (*status != RESOLVE_OK)
		return NULL;
	/* Only NXDOMAIN or NODATA: RFC 6120 3.2.2 fallback. */
	if ((t = calloc(1, sizeof(*t) + sizeof(t->target[0]))) == NULL) {
		*status = RESOLVE_SERVFAIL;
		return NULL;
	}
	t->fallback = true;
	t->secure = resolve_all_secure(req, false);
	t->count = 1;
	strlcpy(t->target[0].host, req->name, sizeof(t->target[0].host));
	t->target[0].port = RESOLVE_S2S_PORT;
	t->target[0].secure = t->secure;
	return t;
}

/* Build the address answer; NULL with *status unless RESOLVE_OK. */
static struct resolve_addrs *
resolve_addrs_result(struct resolve_req *req, bool timed_out,
    enum resolve_status *status)
{
	struct resolve_addrs *a;
	size_t i6 = 0, i4 = 0, n = req->n6 + req->n4;

	*status = RESOLVE_OK;
	if (n == 0) {
		if (resolve_any(req, RESOLVE_BOGUS))
			*status = RESOLVE_BOGUS;
		else if (resolve_any(req, RESOLVE_SERVFAIL))
			*status = RESOLVE_SERVFAIL;
		else if (resolve_any(req, RESOLVE_NXDOMAIN))
			*status = RESOLVE_NXDOMAIN;
		else if (timed_out)
			*status = RESOLVE_TIMEOUT;
		else
			*status = RESOLVE_NODATA;
		return NULL;
	}
	if ((a = calloc(1, sizeof(*a) + n * sizeof(a->addr[0]))) == NULL) {
		*status = RESOLVE_SERVFAIL;
		return NULL;
	}
	/* Interleave, IPv6 first (RFC 8305 section 4). */
	while (a->count < n) {
		if (i6 < req->n6)
			a->addr[a->count++] = req->addr6[i6++];
		if (i4 < req->n4)
			a->addr[a->count++] = req->addr4[i4++];
	}
	a->secure = resolve_all_secure(req, timed_out);
	return a;
}

/* All queries answered, or the timer fired: call back and free req. */
static void
resolve_finish(struct resolve_req *req)
{
	struct resolve_targets *t;
	struct resolve_addrs *a;
	enum resolve_status status;
	bool timed_out;

	timed_out = resolve_req_cancel_queries(req);
	resolve_req_detach(req);
	resolve_req_enter_state(req, RESOLVE_REQ_DELIVERING);
	req->timed_out = timed_out;
	if (req->kind == RESOLVE_KIND_S2S) {
		t = resolve_s2s_result(req, timed_out, &status);
		req->status = status;
		log_debug("resolve: %s: s2s %s, %zu target(s)%s%s", req->name,
		    resolve_status_name(status), t != NULL ? t->count : 0,
		    t != NULL && t->fallback ? ", fallback" : "",
		    timed_out ? ", timed out" : "");
		req->s2s_cb(status, t, req->arg);
	} else {
		a = resolve_addrs_result(req, timed_out, &status);
		req->status = status;
		log_debug("resolve: %s: addresses %s, %zu address(es)%s",
		    req->name, resolve_status_name(status),
		    a != NULL ? a->count : 0, timed_out ? ", timed out" : "");
		req->addrs_cb(status, a, req->arg);
	}
	resolve_req_free(req);
}

/* The query of req that decided its status, or NULL. */
static const struct resolve_query *
resolve_deciding_query(const struct resolve_req *req)
{
	const struct resolve_query *q = NULL;

	for (size_t i = 0; i < req->nquery; i++) {
		if (req->query[i].pending)
			continue;
		if (req->query[i].status == req->status &&
		    (q == NULL || (!q->local && req->query[i].local)))
			q = &req->query[i];
	}
	return q;
}

const char *
resolve_req_explain(const struct resolve_req *req, char *buf, size_t len)
{
	const struct resolve_query *q;
	const char *who = req->who;
	char t[32];

	if (req->state != RESOLVE_REQ_DELIVERING) {
		snprintf(buf, len, "not answered yet");
		return buf;
	}
	if (req->status == RESOLVE_TIMEOUT || (req->timed_out &&
	    req->status == RESOLVE_NODATA)) {
		snprintf(buf, len, "%s: no answer from %s within %s",
		    resolve_status_name(req->status), who,
		    util_duration_str(req->timeout_ms, t, sizeof(t)));
		return buf;
	}
	q = resolve_deciding_query(req);
	if (q != NULL && q->local)
		snprintf(buf, len, "%s, answered locally by libunbound (%s%s"
		    "a local zone of the resolver options or /etc/hosts), not "
		    "by the DNS: %s was not asked",
		    resolve_status_name(req->status),
		    q->zone[0] != '\0' ? q->zone : "", q->zone[0] != '\0' ?
		    " of " : "", who);
	else
		snprintf(buf, len, "%s from %s%s%s",
		    resolve_status_name(req->status), who,
		    q != NULL && q->why[0] != '\0' ? ": " : "",
		    q != NULL ? q->why : "");
	return buf;
}

enum resolve_status
resolve_req_srv_status(const struct resolve_req *req, bool direct_tls)
{
	for (size_t i = 0; i < req->nquery; i++) {
		const struct resolve_query *q = &req->query[i];

		if (q->rrtype == ns_t_srv && q->direct_tls == direct_tls)
			return q->status;
	}
	return RESOLVE_TIMEOUT;
}

struct resolve_req *
resolve_s2s(struct resolve *r, const char *domain, bool direct_tls_too,
    void (*cb)(enum resolve_status, struct resolve_targets *, void *),
    void *arg)
{
	struct resolve_req *req;

	if (resolve_start(r) == -1 ||
	    (req = resolve_req_new(r, RESOLVE_KIND_S2S, domain)) == NULL)
		return NULL;
	req->s2s_cb = cb;
	req->arg = arg;
	if (resolve_req_send(req, "_xmpp-server._tcp.", ns_t_srv, false) == -1 ||
	    (direct_tls_too && resolve_req_send(req, "_xmpps-server._tcp.",
	    ns_t_srv, true) == -1) ||
	    evtimer_add(req->timer, &r->timeout) == -1) {
		resolve_req_detach(req);
		resolve_req_free(req);
		return NULL;
	}
	return req;
}

struct resolve_req *
resolve_addresses(struct resolve *r, const char *host, uint16_t port,
    void (*cb)(enum resolve_status, struct resolve_addrs *, void *),
    void *arg)
{
	static const struct timeval now = { 0, 0 };
	struct resolve_req *req;
	struct resolve_addr *a;
	int rc;

	if (resolve_start(r) == -1 ||
	    (req = resolve_req_new(r, RESOLVE_KIND_ADDRS, host)) == NULL)
		return NULL;
	req->addrs_cb = cb;
	req->arg = arg;
	req->port = port;
	a = &req->addr6[0];
	if (util_sockaddr_parse(req->name, port, &a->ss, &a->len) == 0 &&
	    strcmp(req->name, "*") != 0) {
		/* A numeric host: answer on the next loop turn. */
		if (a->ss.ss_family == AF_INET) {
			req->addr4[0] = *a;
			req->n4 = 1;
		} else
			req->n6 = 1;
		rc = evtimer_add(req->timer, &now);
	} else
		rc = resolve_req_send(req, "", ns_t_aaaa, false) == -1 ||
		    resolve_req_send(req, "", ns_t_a, false) == -1 ||
		    evtimer_add(req->timer, &r->timeout) == -1 ? -1 : 0;
	if (rc == -1) {
		resolve_req_detach(req);
		resolve_req_free(req);
		return NULL;
	}
	return req;
}

void
resolve_targets_free(struct resolve_targets *t)
{
	free(t);
}

void
resolve_addrs_free(struct resolve_addrs *a)
{
	free(a);
}
