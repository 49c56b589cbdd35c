/*
 * route: domain pair -> outgoing leg, bounded queue, bounces.
 *
 * Routes live in a red-black tree keyed by (face, local, remote). A queued
 * stanza is one allocation: the node, the bytes, then copies of its
 * origin's strings. Bounces are rendered into a fresh buffer each time, so
 * that a bounce sent from within another bounce never shares one.
 */
#include "fgconfig.h"

#include <sys/queue.h>
#include <sys/tree.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include <event2/event.h>
#include <event2/util.h>

#include "jid.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include "timer.h"
#include "util.h"
#include "xmpp.h"


/* One stanza queued, or written and awaiting its acknowledgement;
 * origin's strings point into data, after the bytes. */
struct route_stanza {
	TAILQ_ENTRY(route_stanza) entry;
	struct route_origin	 origin;
	unsigned		 sends;		/* times written to a leg */
	unsigned		 cls;		/* pool class; ROUTE_POOL_CLASSES:
						   allocated alone */
	struct route_stanza	*pool_next;	/* on the pool's free list */
	size_t			 len;
	char			 data[];
};
TAILQ_HEAD(route_queue, route_stanza);

/*
 * Stanza buffers are reused: a stanza is copied into a buffer of the
 * smallest class that holds it (ROUTE_POOL_MIN bytes, doubling), a bigger
 * one is allocated alone. A freed buffer waits on its class's list while
 * the lists hold less than ROUTE_POOL_KEEP bytes: a steady flow allocates
 * nothing per stanza, and what a burst took goes back.
 */
#define ROUTE_POOL_MIN		512
#define ROUTE_POOL_CLASSES	9		/* up to 128 KiB */
#define ROUTE_POOL_KEEP		(4 * 1024 * 1024)

#define ROUTE_WAITERS_MAX	64	/* incoming legs paused on one route */
/*
 * Ids of our XEP-0199 pings: "fedgate-ack-NONCE-W-N", NONCE random per
 * fedgated (the same in its workers), W the worker, N the route table's
 * count. The answer comes back on the reverse stream, a connection the
 * peer made, which may be another worker's (SO_REUSEPORT) or, several
 * instances behind one balancer, another instance's: another worker's is
 * handed to it (route_table_set_worker()), another instance's is never
 * taken for ours.
 */
#define ROUTE_PING_PREFIX	"fedgate-ack-"
#define ROUTE_PING_NONCE_LEN	8		/* hex digits */
#define ROUTE_SENDS_MAX		2	/* writes of one stanza (one resend) */
#define ROUTE_FAIL_TEXT_MAX	256	/* the cached reason of a failure */

struct route {
	RB_ENTRY(route)		 entry;
	struct route_table	*table;		/* the one it is in */
	enum config_face	 face;		/* of the outgoing leg */
	char			 local[JID_DOMAIN_MAX];
	char			 remote[JID_DOMAIN_MAX];
	struct leg		*leg;		/* outgoing, NULL: none */
	bool			 connecting;	/* inside leg_connect() */
	struct route_queue	 queue;
	size_t			 queue_len;
	size_t			 queue_bytes;
	struct route_queue	 unacked;	/* written, not acknowledged */
	size_t			 unacked_len;
	size_t			 ping_covers;	/* unacked the ping in flight
						   acknowledges; 0: no ping */
	uint64_t		 ping_id;	/* of the ping in flight */
	struct timer		*ack_timer;	/* for the ping's answer */
	bool			 leg_ready;	/* the leg got to ready */
	bool			 pongs;		/* the peer answered a ping */
	bool			 no_acks;	/* it never did: none awaited */
	uint64_t		 sent, bounced, dropped;
	uint64_t		 acked, resent, unconfirmed;
	uint64_t		 created;	/* timer_now_ms() */
	struct timer		*idle;		/* frees a route with nothing */
	struct route_addrs	*addrs;		/* NULL: none remembered */
	uint64_t		*waiters;	/* paused legs, ROUTE_WAITERS_MAX
						   at most */
	size_t			 nwaiters, waiters_size;
	/* the failure cache: after a leg failed before it was ready, no
	 * new leg before retry_at; stanzas bounce with the cached reason */
	unsigned		 failures;	/* in a row */
	uint64_t		 retry_at;	/* timer_now_ms(); 0: none */
	enum xmpp_stanza_error	 fail_cond;
	char			*fail_text;	/* ROUTE_FAIL_TEXT_MAX bytes, from
						   the first failure on */
};

/* The addresses a transparent set-up makes a route remember (kept apart:
 * most routes have none). */
struct route_addrs {
	struct sockaddr_storage	 orig;		/* a transparent leg's original
						   destination */
	socklen_t		 origlen;	/* 0: none */
	struct sockaddr_storage	 orig_peer;	/* who meant to go there */
	struct sockaddr_storage	 source;	/* the remote server feeding
						   it (upstream transparent) */
	socklen_t		 sourcelen;	/* 0: none */
};

static int	route_cmp(const struct route *, const struct route *);
RB_HEAD(route_tree, route);
RB_PROTOTYPE(route_tree, route, entry, route_cmp)
RB_GENERATE(route_tree, route, entry, route_cmp)

/* The routes of one relay, and what they share (route.h). */
struct route_table {
	struct event_base	*base;
	const struct route_carrier *legs; /* the leg module's calls */
	void			*legs_arg;
	struct route_tree	 tree;
	size_t			 count;
	uint64_t		 generation;	/* routes freed: route_cache */
	size_t			 failing;	/* routes with failures > 0 */
	size_t			 queued;	/* over all routes */
	size_t			 unacked;	/* over all routes */
	unsigned		 queue_max;	/* stanzas per route */
	unsigned		 unacked_max;	/* per route; 0: no acks */
	uint64_t		 idle_ms;
	uint64_t		 ack_ms;
	uint64_t		 backoff_ms;	/* first backoff; 0: none */
	uint64_t		 backoff_max_ms;
	uint64_t		 next_ping;
	char			 ping_prefix[sizeof(ROUTE_PING_PREFIX) +
				    ROUTE_PING_NONCE_LEN + 12];
	size_t			 nonce_len;	/* of "fedgate-ack-NONCE-" */
	unsigned		 worker, workers;
	route_forward_fn	 forward;	/* another worker's answer */
	void			*forward_arg;
	bool			 shutting_down;
	struct route_counters	 counters;
	struct route_stanza	*pool[ROUTE_POOL_CLASSES];
	size_t			 pool_bytes;	/* waiting on the lists */
};

static void	route_reject(struct route_table *, struct route *,
		    const struct route_origin *, enum xmpp_stanza_error,
		    const char *);
static void	route_release(struct route *, size_t);
static void	route_stanza_free(struct route_table *,
		    struct route_stanza *);
static void	route_flush(struct route *);
static void	route_ack_expired(void *);

static int
route_cmp(const struct route *a, const struct route *b)
{
	int c;

	if (a->face != b->face)
		return a->face < b->face ? -1 : 1;
	if ((c = strcmp(a->local, b->local)) != 0)
		return c;
	return strcmp(a->remote, b->remote);
}

/*
 * Logging.
 */

/* Log "route local->remote (face): msg" (r NULL: "route: msg"). */
static void __attribute__((format(printf, 3, 4)))
route_log(enum log_level level, const struct route *r, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	if (level > log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r == NULL)
		log_peer(level, "route: %s", msg);
	else
		log_peer(level, "route %s->%s (%s): %s", r->local, r->remote,
		    config_face_name(r->face), msg);
}

/* Room for route_describe(): five escaped attributes and the words. */
#define ROUTE_DESC_MAX	(5 * UTIL_ESC_MAX + 64)

/* Describe a stanza: "message id='1' from='a@b' to='c@d' type='chat'". */
static const char *
route_describe(const struct route_origin *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s id='%s' from='%s' to='%s' type='%s'",
	    UTIL_ESC(o->attrs.name), UTIL_ESC(o->attrs.id),
	    UTIL_ESC(o->attrs.from), UTIL_ESC(o->attrs.to),
	    UTIL_ESC(o->attrs.type));
	return buf;
}

/* Log and count a stanza that is lost: why it could not go and why it is
 * not answered. */
static void
route_note_drop(struct route_table *t, struct route *r,
    const struct route_origin *o, enum xmpp_stanza_error cond,
    const char *text, const char *why)
{
	char desc[ROUTE_DESC_MAX];

	if (r != NULL)
		r->dropped++;
	t->counters.dropped++;
	metrics_stanza_dropped(o, cond);
	route_log(LOG_LEVEL_INFO, r, "dropped %s: %s%s%s%s: %s",
	    route_describe(o, desc, sizeof(desc)),
	    xmpp_stanza_error_name(cond), text != NULL ? " (" : "",
	    text != NULL ? text : "", text != NULL ? ")" : "",
	    why);
}

/* Why xmpp_stanza_may_bounce() said no, for the log. */
static const char *
route_unanswerable(const struct route_origin *o)
{
	const char *name = o->attrs.name, *type = o->attrs.type;

	if (type != NULL && strcmp(type, "error") == 0)
		return "an error is never answered";
	if (name == NULL || (strcmp(name, "message") != 0 &&
	    strcmp(name, "presence") != 0 && strcmp(name, "iq") != 0))
		return "not a stanza";
	if (strcmp(name, "iq") == 0)
		return "only an iq get or set is answered";
	return "only a presence subscribe is answered";
}

/*
 * Routes.
 */

static void
route_arm_idle(struct route *r)
{
	timer_start(r->idle, r->table->idle_ms);
}

/* Resume every leg paused on r. */
static void
route_wake(struct route *r)
{
	size_t n = r->nwaiters;

	r->nwaiters = 0;
	for (size_t i = 0; i < n; i++)
		r->table->legs->resume(r->table->legs_arg, r->waiters[i]);
}

static void
route_free(struct route *r)
{
	struct route_stanza *s;

	RB_REMOVE(route_tree, &r->table->tree, r);
	r->table->count--;
	r->table->generation++;		/* route_cache entries are stale */
	if (r->failures > 0)
		r->table->failing--;
	route_wake(r);
	if (r->leg != NULL)
		r->table->legs->detach(r->leg);
	/* Empty unless route_shutdown() could not bounce: never expected. */
	while ((s = TAILQ_FIRST(&r->queue)) != NULL) {
		TAILQ_REMOVE(&r->queue, s, entry);
		route_note_drop(r->table, r, &s->origin, XMPP_STANZA_SERVICE_UNAVAILABLE,
		    NULL, "route freed");
		r->table->queued--;
		route_stanza_free(r->table, s);
	}
	route_release(r, r->unacked_len);
	timer_free(r->ack_timer);
	timer_free(r->idle);
	free(r->addrs);
	free(r->waiters);
	free(r->fail_text);
	free(r);
}

/*
 * The failure cache.
 */

/* Whether r may not start a leg now: a recent failure is cached. */
static bool
route_in_backoff(const struct route *r)
{
	return r->retry_at != 0 && timer_now_ms() < r->retry_at;
}

/*
 * A leg of r failed before it was ready: wait backoff * 2^(failures - 1),
 * capped at backoff-max, less or more by up to a quarter (so that routes
 * that failed together do not retry together), before the next leg.
 */
static void
route_note_failure(struct route *r, enum xmpp_stanza_error cond,
    const char *text)
{
	uint64_t delay = r->table->backoff_ms;
	uint32_t rnd;

	if (delay == 0 || r->table->shutting_down)
		return;
	if (r->fail_text == NULL &&
	    (r->fail_text = malloc(ROUTE_FAIL_TEXT_MAX)) == NULL)
		return;		/* out of memory: no cache, no harm */
	if (r->failures++ == 0)
		r->table->failing++;
	for (unsigned i = 1; i < r->failures && delay < r->table->backoff_max_ms;
	    i++)
		delay *= 2;
	if (delay > r->table->backoff_max_ms)
		delay = r->table->backoff_max_ms;
	evutil_secure_rng_get_bytes(&rnd, sizeof(rnd));
	delay = delay * 3 / 4 + (uint64_t)rnd % (delay / 2 + 1);
	r->retry_at = timer_now_ms() + delay;
	r->fail_cond = cond;
	snprintf(r->fail_text, ROUTE_FAIL_TEXT_MAX, "%s",
	    text != NULL ? text : xmpp_stanza_error_name(cond));
	route_log(LOG_LEVEL_INFO, r, "%u failed leg%s in a row (%s): no new "
	    "leg for %llu ms; stanzas bounce meanwhile", r->failures,
	    r->failures == 1 ? "" : "s", r->fail_text,
	    (unsigned long long)delay);
}

/* Forget r's failures; say so if there were any (why: what cleared it). */
static void
route_clear_failures(struct route *r, const char *why)
{
	if (r->failures == 0)
		return;
	route_log(LOG_LEVEL_INFO, r, "failure cache cleared (%s) after %u "
	    "failed leg%s", why, r->failures, r->failures == 1 ? "" : "s");
	r->failures = 0;
	r->retry_at = 0;
	r->table->failing--;
}

unsigned
route_retry(struct route_table *t, const char *remote)
{
	struct route *r;
	unsigned n = 0;

	RB_FOREACH(r, route_tree, &t->tree)
		if (r->failures > 0 && strcmp(r->remote, remote) == 0) {
			route_clear_failures(r, "retry asked for");
			n++;
		}
	return n;
}

void
route_remote_authenticated(struct route_table *t, enum config_face face,
    const char *remote)
{
	struct route *r;

	if (t->failing == 0)
		return;		/* the common case: no walk per stream */
	RB_FOREACH(r, route_tree, &t->tree)
		if (r->failures > 0 && r->face == face &&
		    strcmp(r->remote, remote) == 0)
			route_clear_failures(r, "the domain authenticated an "
			    "incoming stream");
}

static void
route_idle_expired(void *arg)
{
	struct route *r = arg;
	uint64_t now = timer_now_ms();

	if (r->leg != NULL || !TAILQ_EMPTY(&r->queue) ||
	    !TAILQ_EMPTY(&r->unacked))
		return;		/* busy again: the leg's end re-arms */
	if (r->retry_at > now) {
		/* keep the cached failure until it expires */
		timer_start(r->idle, r->retry_at - now);
		return;
	}
	route_log(LOG_LEVEL_DEBUG, r, "idle, freed (sent %llu, bounced %llu, "
	    "dropped %llu)", (unsigned long long)r->sent,
	    (unsigned long long)r->bounced, (unsigned long long)r->dropped);
	route_free(r);
}

static struct route *
route_find(struct route_table *t, enum config_face face, const char *local,
    const char *remote)
{
	struct route key;

	if (strlcpy(key.local, local, sizeof(key.local)) >= sizeof(key.local) ||
	    strlcpy(key.remote, remote, sizeof(key.remote)) >=
	    sizeof(key.remote))
		return NULL;
	key.face = face;
	return RB_FIND(route_tree, &t->tree, &key);
}

struct route *
route_get(struct route_table *t, enum config_face face, const char *local,
    const char *remote)
{
	struct route *r;

	if ((r = route_find(t, face, local, remote)) != NULL)
		return r;
	if (strlen(local) >= JID_DOMAIN_MAX || strlen(remote) >= JID_DOMAIN_MAX)
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->table = t;
	if ((r->idle = timer_new(t->base, false, route_idle_expired,
	    r)) == NULL) {
		free(r);
		return NULL;
	}
	if ((r->ack_timer = timer_new(t->base, false, route_ack_expired,
	    r)) == NULL) {
		timer_free(r->idle);
		free(r);
		return NULL;
	}
	r->face = face;
	strlcpy(r->local, local, sizeof(r->local));
	strlcpy(r->remote, remote, sizeof(r->remote));
	TAILQ_INIT(&r->queue);
	TAILQ_INIT(&r->unacked);
	r->created = timer_now_ms();
	RB_INSERT(route_tree, &t->tree, r);
	t->count++;
	route_arm_idle(r);
	route_log(LOG_LEVEL_DEBUG, r, "created");
	return r;
}

/* r's remembered addresses, made on first use; NULL if out of memory. */
static struct route_addrs *
route_addrs(struct route *r)
{
	if (r->addrs == NULL)
		r->addrs = calloc(1, sizeof(*r->addrs));
	return r->addrs;
}

struct route *
route_get_cached(struct route_table *t, struct route_cache *c,
    enum config_face face, const char *local, const char *remote)
{
	if (c->route != NULL && c->generation == t->generation)
		return c->route;
	c->route = route_get(t, face, local, remote);
	c->generation = t->generation;
	return c->route;
}

void
route_set_original(struct route *r, const struct sockaddr *dst,
    socklen_t dstlen, const struct sockaddr *peer, socklen_t peerlen)
{
	struct route_addrs *a;

	if (dstlen > sizeof(a->orig) || peerlen > sizeof(a->orig_peer) ||
	    (a = route_addrs(r)) == NULL)
		return;
	memset(&a->orig, 0, sizeof(a->orig));
	memset(&a->orig_peer, 0, sizeof(a->orig_peer));
	memcpy(&a->orig, dst, dstlen);
	memcpy(&a->orig_peer, peer, peerlen);
	a->origlen = dstlen;
}

bool
route_original(const struct route *r, struct sockaddr_storage *dst,
    socklen_t *dstlen, struct sockaddr_storage *peer)
{
	const struct route_addrs *a = r->addrs;

	if (a == NULL || a->origlen == 0)
		return false;
	memcpy(dst, &a->orig, sizeof(*dst));
	*dstlen = a->origlen;
	memcpy(peer, &a->orig_peer, sizeof(*peer));
	return true;
}

void
route_set_source(struct route *r, const struct sockaddr *src,
    socklen_t srclen)
{
	struct route_addrs *a;

	if (srclen > sizeof(a->source) || (a = route_addrs(r)) == NULL)
		return;
	memset(&a->source, 0, sizeof(a->source));
	memcpy(&a->source, src, srclen);
	a->sourcelen = srclen;
}

bool
route_source(const struct route *r, struct sockaddr_storage *src,
    socklen_t *srclen)
{
	const struct route_addrs *a = r->addrs;

	if (a == NULL || a->sourcelen == 0)
		return false;
	memcpy(src, &a->source, sizeof(*src));
	*srclen = a->sourcelen;
	return true;
}

/*
 * The queue.
 */

/* The size of pool class cls's buffers. */
static size_t
route_pool_size(unsigned cls)
{
	return (size_t)ROUTE_POOL_MIN << cls;
}

/* A buffer of at least total bytes, from the pool if it has one. */
static struct route_stanza *
route_stanza_alloc(struct route_table *t, size_t total)
{
	struct route_stanza *s;
	unsigned cls;

	for (cls = 0; cls < ROUTE_POOL_CLASSES && route_pool_size(cls) < total;
	    cls++)
		;
	if (cls < ROUTE_POOL_CLASSES && (s = t->pool[cls]) != NULL) {
		t->pool[cls] = s->pool_next;
		t->pool_bytes -= route_pool_size(cls);
		return s;
	}
	if ((s = malloc(cls < ROUTE_POOL_CLASSES ? route_pool_size(cls) :
	    total)) == NULL)
		return NULL;
	s->cls = cls;
	return s;
}

/* Give s back to the pool, or free it. NULL is a no-op. */
static void
route_stanza_free(struct route_table *t, struct route_stanza *s)
{
	if (s == NULL)
		return;
	if (s->cls >= ROUTE_POOL_CLASSES ||
	    t->pool_bytes + route_pool_size(s->cls) > ROUTE_POOL_KEEP) {
		free(s);
		return;
	}
	s->pool_next = t->pool[s->cls];
	t->pool[s->cls] = s;
	t->pool_bytes += route_pool_size(s->cls);
}

/* Free every buffer waiting in the pool. */
static void
route_pool_drain(struct route_table *t)
{
	struct route_stanza *s;

	for (unsigned cls = 0; cls < ROUTE_POOL_CLASSES; cls++)
		while ((s = t->pool[cls]) != NULL) {
			t->pool[cls] = s->pool_next;
			free(s);
		}
	t->pool_bytes = 0;
}

/* The iovcnt pieces of iov, total bytes in all. */
static size_t
route_iov_len(const struct iovec *iov, int iovcnt)
{
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	return len;
}

/* A copy of the stanza's pieces and of o's strings in one pool buffer,
 * or NULL. */
static struct route_stanza *
route_stanza_new(struct route_table *t, const struct iovec *iov, int iovcnt,
    const struct route_origin *o)
{
	const char *src[] = { o->attrs.name, o->attrs.from, o->attrs.to,
	    o->attrs.id, o->attrs.type };
	size_t n[nitems(src)], len = route_iov_len(iov, iovcnt);
	size_t total = sizeof(struct route_stanza) + len;
	struct route_stanza *s;
	const char **dst[nitems(src)];
	char *p;
	size_t i;

	if (len > SIZE_MAX / 2)
		return NULL;
	for (i = 0; i < nitems(src); i++) {
		n[i] = src[i] != NULL ? strlen(src[i]) + 1 : 0;
		if (n[i] > SIZE_MAX / 4 - total)
			return NULL;
		total += n[i];
	}
	if ((s = route_stanza_alloc(t, total)) == NULL)
		return NULL;
	s->sends = 0;
	s->origin.face = o->face;
	s->origin.leg_id = o->leg_id;
	dst[0] = &s->origin.attrs.name;
	dst[1] = &s->origin.attrs.from;
	dst[2] = &s->origin.attrs.to;
	dst[3] = &s->origin.attrs.id;
	dst[4] = &s->origin.attrs.type;
	s->len = len;
	p = s->data;
	for (int k = 0; k < iovcnt; k++) {
		memcpy(p, iov[k].iov_base, iov[k].iov_len);
		p += iov[k].iov_len;
	}
	for (i = 0; i < nitems(src); i++) {
		*dst[i] = n[i] > 0 ? memcpy(p, src[i], n[i]) : NULL;
		p += n[i];
	}
	return s;
}

static int
route_enqueue(struct route *r, const struct iovec *iov, int iovcnt,
    const struct route_origin *o)
{
	struct route_stanza *s;

	if ((s = route_stanza_new(r->table, iov, iovcnt, o)) == NULL)
		return -1;
	TAILQ_INSERT_TAIL(&r->queue, s, entry);
	r->queue_len++;
	r->queue_bytes += s->len;
	r->table->queued++;
	return 0;
}

static void
route_dequeue(struct route *r, struct route_stanza *s)
{
	TAILQ_REMOVE(&r->queue, s, entry);
	r->queue_len--;
	r->queue_bytes -= s->len;
	r->table->queued--;
}

/* Empty the queue first (a bounce may come back to r), then bounce it. */
static void
route_bounce_queue(struct route *r, enum xmpp_stanza_error cond,
    const char *text)
{
	struct route_queue q = TAILQ_HEAD_INITIALIZER(q);
	struct route_stanza *s;

	TAILQ_CONCAT(&q, &r->queue, entry);
	r->table->queued -= r->queue_len;
	r->queue_len = 0;
	r->queue_bytes = 0;
	while ((s = TAILQ_FIRST(&q)) != NULL) {
		TAILQ_REMOVE(&q, s, entry);
		route_reject(r->table, r, &s->origin, cond, text);
		route_stanza_free(r->table, s);
	}
}

/*
 * Acknowledgements: after writing, an XEP-0199 ping on the leg; its answer
 * acknowledges every stanza written before it.
 */

/* Whether stanzas written on r wait for an acknowledgement. */
static bool
route_acks(const struct route *r)
{
	return r->table->unacked_max > 0 && !r->no_acks;
}

/* Free the first n stanzas awaiting acknowledgement. */
static void
route_release(struct route *r, size_t n)
{
	struct route_stanza *s;

	while (n-- > 0 && (s = TAILQ_FIRST(&r->unacked)) != NULL) {
		TAILQ_REMOVE(&r->unacked, s, entry);
		r->unacked_len--;
		r->table->unacked--;
		route_stanza_free(r->table, s);
	}
}

/* Release n acknowledged stanzas; the request is answered once they
 * cover what it asked for. */
static void
route_take_ack(struct route *r, size_t n)
{
	if (n > r->unacked_len)
		n = r->unacked_len;
	r->acked += n;
	r->table->counters.acked += n;
	route_release(r, n);
	r->pongs = true;
	if (n >= r->ping_covers) {
		r->ping_covers = 0;
		timer_stop(r->ack_timer);
	} else
		r->ping_covers -= n;
}

static void
route_arm_ack(struct route *r)
{
	timer_start(r->ack_timer, r->table->ack_ms);
}

/* Ask the ready leg to acknowledge what it has, if no request is out:
 * with XEP-0198 where the leg has it, else with an XEP-0199 ping. */
static void
route_ping(struct route *r)
{
	struct xmpp_buf *buf;
	struct iovec iov;
	char id[sizeof(r->table->ping_prefix) + 24];

	if (!route_acks(r) || r->ping_covers > 0 || r->unacked_len == 0 ||
	    r->leg == NULL || !r->table->legs->is_ready(r->leg))
		return;
	if (r->table->legs->has_sm(r->leg)) {
		if (r->table->legs->request_ack(r->leg) == 0) {
			r->ping_covers = r->unacked_len;
			route_arm_ack(r);
		}
		return;
	}
	if ((buf = xmpp_buf_new()) == NULL)
		return;
	r->ping_id = ++r->table->next_ping;
	snprintf(id, sizeof(id), "%s%llu", r->table->ping_prefix,
	    (unsigned long long)r->ping_id);
	if (xmpp_render_ping(buf, r->local, r->remote, id) == 0 &&
	    r->table->legs->send(r->leg, xmpp_buf_iov(buf, &iov), 1) == 0) {
		r->ping_covers = r->unacked_len;
		route_arm_ack(r);
	}
	xmpp_buf_free(buf);
}

static void
route_ack_expired(void *arg)
{
	struct route *r = arg;
	char d[32];

	if (r->ping_covers == 0)
		return;
	util_duration_str(r->table->ack_ms, d, sizeof(d));
	r->ping_covers = 0;
	if (!r->pongs) {
		route_log(LOG_LEVEL_WARNING, r, "the peer does not answer "
		    "XEP-0199 pings within %s: %zu stanzas, and those after "
		    "them, count as delivered once written", d, r->unacked_len);
		r->no_acks = true;
		r->unconfirmed += r->unacked_len;
		route_release(r, r->unacked_len);
		route_flush(r);
		return;
	}
	route_log(LOG_LEVEL_INFO, r, "no answer to the acknowledgement ping "
	    "within %s: closing the leg, %zu stanzas to send again", d,
	    r->unacked_len);
	if (r->leg != NULL)
		r->table->legs->close(r->leg, XMPP_STREAM_CONNECTION_TIMEOUT,
		    "no answer to an acknowledgement request");
}

/* Read "W-N" (two decimal numbers, nothing after). */
static bool
route_ping_parse(const char *s, unsigned long *w, unsigned long long *n)
{
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return false;
	*w = strtoul(s, &end, 10);
	if (*end != '-' || !isdigit((unsigned char)end[1]))
		return false;
	*n = strtoull(end + 1, &end, 10);
	return *end == '\0';
}

bool
route_ack(struct route_table *t, enum config_face face, const char *local,
    const char *remote, const char *id, const char *type)
{
	unsigned long long n;
	unsigned long w;
	struct route *r;

	if (id == NULL || strncmp(id, ROUTE_PING_PREFIX,
	    strlen(ROUTE_PING_PREFIX)) != 0 || type == NULL ||
	    (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
		return false;
	if (strncmp(id, t->ping_prefix, t->nonce_len) != 0) {
		/* another fedgated's: meaningless to the other side */
		log_debug("route: %s->%s: answer %s to another fedgated's "
		    "ping, not relayed", remote, local, UTIL_ESC(id));
		return true;
	}
	if (!route_ping_parse(id + t->nonce_len, &w, &n))
		return true;		/* ours, garbled: nothing to do */
	if (w != t->worker) {
		if (w < t->workers && t->forward != NULL)
			t->forward(t->forward_arg, (unsigned)w, face, local,
			    remote, id, type);
		return true;
	}
	if ((r = route_find(t, face, local, remote)) == NULL)
		return true;		/* ours, for a route now gone */
	if (r->ping_covers == 0 || n != r->ping_id)
		return true;		/* ours, but late: nothing to do */
	route_take_ack(r, r->ping_covers);
	route_flush(r);
	return true;
}

void
route_leg_acked(struct route *r, struct leg *l, unsigned n)
{
	if (l != r->leg)
		return;
	if (n > 0)
		route_take_ack(r, n);
	else if (!r->table->legs->has_sm(l)) {	/* refused: ask again with a ping */
		r->ping_covers = 0;
		timer_stop(r->ack_timer);
	}
	route_flush(r);
}

/*
 * Writing.
 */

static bool
route_is_writable(const struct route *r)
{
	return r->leg != NULL && r->table->legs->is_ready(r->leg) &&
	    !r->table->legs->is_congested(r->leg) &&
	    (!route_acks(r) || r->unacked_len < r->table->unacked_max);
}

/* Count a stanza written. */
static void
route_count_sent(struct route *r)
{
	r->sent++;
	r->table->counters.sent++;
}

/* Write on the ready leg, without keeping a copy; bounce if that fails. */
static int
route_write(struct route *r, const struct iovec *iov, int iovcnt,
    const struct route_origin *o)
{
	if (r->table->legs->send(r->leg, iov, iovcnt) == -1) {
		route_reject(r->table, r, o, XMPP_STANZA_INTERNAL_SERVER_ERROR,
		    "write failed");
		return -1;
	}
	route_count_sent(r);
	return 0;
}

/* Write s (taken over) on the ready leg; keep it until acknowledged, or
 * free it. Bounce if the write fails. */
static int
route_write_stanza(struct route *r, struct route_stanza *s)
{
	struct iovec iov = { .iov_base = s->data, .iov_len = s->len };
	int rc = 0;

	if (r->table->legs->send(r->leg, &iov, 1) == -1) {
		route_reject(r->table, r, &s->origin, XMPP_STANZA_INTERNAL_SERVER_ERROR,
		    "write failed");
		rc = -1;
	} else {
		route_count_sent(r);
		s->sends++;
		if (route_acks(r)) {
			TAILQ_INSERT_TAIL(&r->unacked, s, entry);
			r->unacked_len++;
			r->table->unacked++;
			return 0;
		}
	}
	route_stanza_free(r->table, s);
	return rc;
}

/* Write the queue while the leg takes it, then ask for an
 * acknowledgement. The leg may go away under a write (route_leg_gone()
 * then takes care of the rest): check it every time. */
static void
route_flush(struct route *r)
{
	struct route_stanza *s;

	while (route_is_writable(r) && (s = TAILQ_FIRST(&r->queue)) != NULL) {
		route_dequeue(r, s);
		(void)route_write_stanza(r, s);
	}
	route_ping(r);
	if (r->nwaiters > 0 && !route_is_congested(r))
		route_wake(r);
}

bool
route_is_congested(const struct route *r)
{
	return r->queue_len * 2 >= r->table->queue_max ||
	    (route_acks(r) && r->unacked_len >= r->table->unacked_max) ||
	    (r->leg != NULL && r->table->legs->is_ready(r->leg) &&
	    r->table->legs->is_congested(r->leg));
}

int
route_wait(struct route *r, uint64_t leg_id)
{
	uint64_t *w;
	size_t size;

	for (size_t i = 0; i < r->nwaiters; i++)
		if (r->waiters[i] == leg_id)
			return 0;
	if (r->nwaiters >= ROUTE_WAITERS_MAX)
		return -1;
	if (r->nwaiters == r->waiters_size) {
		size = r->waiters_size == 0 ? 4 : r->waiters_size * 2;
		if ((w = reallocarray(r->waiters, size, sizeof(*w))) == NULL)
			return -1;
		r->waiters = w;
		r->waiters_size = size;
	}
	r->waiters[r->nwaiters++] = leg_id;
	return 0;
}

/* Bounce o with r's cached failure, saying when a leg may be tried. */
static void
route_reject_cached(struct route *r, const struct route_origin *o)
{
	char text[ROUTE_FAIL_TEXT_MAX + 64];
	uint64_t now = timer_now_ms();

	snprintf(text, sizeof(text), "%s (cached: no new attempt for %llu s)",
	    r->fail_text, (unsigned long long)((r->retry_at - now + 999) /
	    1000));
	route_reject(r->table, r, o, r->fail_cond, text);
}

/* Start the outgoing leg; if it cannot start, bounce the queue. */
static int
route_start_leg(struct route *r)
{
	struct route_stanza *first = TAILQ_FIRST(&r->queue);
	struct leg *l;
	bool gone;

	r->connecting = true;
	l = r->table->legs->connect(r->table->legs_arg, r, r->face, r->local,
	    r->remote,
	    first != NULL ? first->origin.leg_id : 0);
	gone = !r->connecting;		/* route_leg_gone() was called */
	r->connecting = false;
	if (l != NULL && !gone) {
		r->leg = l;
		route_log(LOG_LEVEL_DEBUG, r, "starting a leg for %zu stanzas",
		    r->queue_len);
		/* a leg that is up already (a bidirectional incoming one) */
		if (r->table->legs->is_ready(l))
			route_leg_ready(r, l);
		return 0;
	}
	/* Empty if the leg already reported why (route_leg_gone()). */
	if (!gone)
		route_note_failure(r, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
		    "no connection to the remote server could be started");
	if (r->queue_len > 0)
		route_log(LOG_LEVEL_INFO, r, "no leg could be started: "
		    "bouncing %zu stanzas", r->queue_len);
	route_bounce_queue(r, XMPP_STANZA_REMOTE_SERVER_NOT_FOUND,
	    "no connection to the remote server could be started");
	route_arm_idle(r);
	return -1;
}

/* During shutdown: write if the leg is ready, else drop (no new legs, no
 * queueing: the queues are about to go). */
static int
route_send_final(struct route *r, const struct iovec *iov, int iovcnt,
    const struct route_origin *o)
{
	if (r->leg != NULL && r->table->legs->is_ready(r->leg))
		return route_write(r, iov, iovcnt, o);
	route_note_drop(r->table, r, o, XMPP_STANZA_SERVICE_UNAVAILABLE, NULL,
	    "shutting down with no ready leg");
	return -1;
}

int
route_send(struct route *r, const struct iovec *iov, int iovcnt,
    const struct route_origin *o)
{
	struct route_stanza *s;
	int rc;

	if (r->table->shutting_down)
		return route_send_final(r, iov, iovcnt, o);
	if (route_is_writable(r) && TAILQ_EMPTY(&r->queue)) {
		if (!route_acks(r))
			return route_write(r, iov, iovcnt, o);
		if ((s = route_stanza_new(r->table, iov, iovcnt, o)) == NULL) {
			route_reject(r->table, r, o, XMPP_STANZA_RESOURCE_CONSTRAINT,
			    "out of memory");
			return -1;
		}
		rc = route_write_stanza(r, s);
		route_ping(r);
		return rc;
	}
	if (r->leg == NULL && route_in_backoff(r)) {
		route_reject_cached(r, o);
		return -1;
	}
	if (r->queue_len >= r->table->queue_max) {
		route_reject(r->table, r, o, XMPP_STANZA_RESOURCE_CONSTRAINT,
		    "queue full");
		return -1;
	}
	if (route_enqueue(r, iov, iovcnt, o) == -1) {
		route_reject(r->table, r, o, XMPP_STANZA_RESOURCE_CONSTRAINT,
		    "out of memory");
		return -1;
	}
	if (r->leg == NULL)
		return route_start_leg(r);
	route_flush(r);
	return 0;
}

/*
 * Bounces.
 */

/* Normalise the domain of jid into out (JID_DOMAIN_MAX bytes). 0 or -1. */
static int
route_jid_domain(const char *jid, char *out, size_t outlen)
{
	char raw[JID_PART_MAX + 1];
	size_t off, len;

	if (jid == NULL || jid_domain_span(jid, strlen(jid), &off, &len) == -1 ||
	    len >= sizeof(raw))
		return -1;
	memcpy(raw, jid + off, len);
	raw[len] = '\0';
	return jid_domain_normalize(raw, out, outlen);
}

/*
 * Render the answer to o into buf and find the route it takes back: from
 * the stanza's to-domain to its from-domain, out of the face it came in
 * on. Return the route, or NULL with *why set.
 */
static struct route *
route_bounce_prepare(struct route_table *t, const struct route_origin *o,
    enum xmpp_stanza_error cond, const char *text, struct xmpp_buf *buf,
    const char **why)
{
	char from[JID_DOMAIN_MAX], to[JID_DOMAIN_MAX];
	struct route *back;

	if (route_jid_domain(o->attrs.from, from, sizeof(from)) == -1) {
		*why = "no valid 'from' to answer";
		return NULL;
	}
	if (route_jid_domain(o->attrs.to, to, sizeof(to)) == -1) {
		*why = "no valid 'to' to answer from";
		return NULL;
	}
	if (xmpp_render_bounce(buf, &o->attrs, cond, to, text, NULL, 0) == -1) {
		*why = "the error could not be rendered";
		return NULL;
	}
	if (t->shutting_down)
		back = route_find(t, o->face, to, from);
	else
		back = route_get(t, o->face, to, from);
	if (back == NULL)
		*why = t->shutting_down ? "no route back while shutting "
		    "down" : "no route back (out of memory)";
	return back;
}

/* Answer o with cond and text through the reverse route, or drop it; count
 * it on r (the route it was on, NULL if none). */
static void
route_reject(struct route_table *t, struct route *r,
    const struct route_origin *o, enum xmpp_stanza_error cond,
    const char *text)
{
	struct route_origin answer;
	struct xmpp_buf *buf;
	struct iovec iov;
	struct route *back;
	const char *why = "out of memory";
	char desc[ROUTE_DESC_MAX];

	if (!xmpp_stanza_may_bounce(o->attrs.name, o->attrs.type)) {
		route_note_drop(t, r, o, cond, text, route_unanswerable(o));
		return;
	}
	if ((buf = xmpp_buf_new()) == NULL ||
	    (back = route_bounce_prepare(t, o, cond, text, buf, &why)) == NULL) {
		route_note_drop(t, r, o, cond, text, why);
		xmpp_buf_free(buf);
		return;
	}
	if (r != NULL)
		r->bounced++;
	t->counters.bounced++;
	metrics_stanza_bounced(o, cond);
	route_log(LOG_LEVEL_INFO, r, "bounced %s: %s%s%s%s",
	    route_describe(o, desc, sizeof(desc)),
	    xmpp_stanza_error_name(cond), text != NULL ? " (" : "",
	    text != NULL ? text : "", text != NULL ? ")" : "");
	/* The answer's own origin: of type error, it is never answered. */
	answer.face = o->face;
	answer.attrs.name = o->attrs.name;
	answer.attrs.from = o->attrs.to;
	answer.attrs.to = o->attrs.from;
	answer.attrs.id = o->attrs.id;
	answer.attrs.type = "error";
	answer.leg_id = 0;
	(void)route_send(back, xmpp_buf_iov(buf, &iov), 1, &answer);
	xmpp_buf_free(buf);
}

void
route_bounce(struct route_table *t, const struct route_origin *o,
    enum xmpp_stanza_error cond, const char *text)
{
	route_reject(t, NULL, o, cond, text);
}

/*
 * Events from the outgoing leg.
 */

void
route_leg_ready(struct route *r, struct leg *l)
{
	if (l != r->leg)
		return;
	r->leg_ready = true;
	route_clear_failures(r, "a leg is ready");
	route_log(LOG_LEVEL_DEBUG, r, "leg ready, %zu stanzas queued",
	    r->queue_len);
	route_flush(r);
}

void
route_leg_drained(struct route *r, struct leg *l)
{
	if (l == r->leg)
		route_flush(r);
}

/*
 * Put the stanzas awaiting acknowledgement back at the head of the queue,
 * in order, to be sent again; bounce those sent ROUTE_SENDS_MAX times
 * already. Return how many go back.
 */
static size_t
route_requeue(struct route *r)
{
	struct route_stanza *s;
	size_t n = 0;

	timer_stop(r->ack_timer);
	r->ping_covers = 0;
	while ((s = TAILQ_LAST(&r->unacked, route_queue)) != NULL) {
		TAILQ_REMOVE(&r->unacked, s, entry);
		r->unacked_len--;
		r->table->unacked--;
		if (s->sends >= ROUTE_SENDS_MAX) {
			route_reject(r->table, r, &s->origin,
			    XMPP_STANZA_REMOTE_SERVER_TIMEOUT, "not acknowledged, "
			    "also after it was sent again");
			route_stanza_free(r->table, s);
			continue;
		}
		TAILQ_INSERT_HEAD(&r->queue, s, entry);
		r->queue_len++;
		r->queue_bytes += s->len;
		r->table->queued++;
		n++;
	}
	return n;
}

void
route_leg_gone(struct route *r, struct leg *l, enum xmpp_stanza_error cond,
    const char *text)
{
	bool was_ready = r->leg_ready;
	size_t again;

	/* Inside leg_connect() the leg is not known yet, but it is ours. */
	if (l != r->leg && !(r->connecting && r->leg == NULL))
		return;
	r->connecting = false;
	r->leg = NULL;
	r->leg_ready = false;
	r->table->legs->detach(l);	/* r may be freed once idle */
	again = route_requeue(r);
	if (was_ready && r->queue_len > 0 && !r->table->shutting_down) {
		/* An established leg reset: try once more on a new one. */
		r->resent += again;
		r->table->counters.resent += again;
		route_log(LOG_LEVEL_INFO, r, "leg gone (%s): %zu stanzas not "
		    "acknowledged go again, with %zu queued, on a new leg",
		    text != NULL ? text : xmpp_stanza_error_name(cond), again,
		    r->queue_len - again);
		route_start_leg(r);
		return;
	}
	if (!was_ready)
		route_note_failure(r, cond, text);
	if (r->queue_len > 0)
		route_log(LOG_LEVEL_INFO, r, "leg gone (%s%s%s): bouncing %zu "
		    "stanzas", xmpp_stanza_error_name(cond),
		    text != NULL ? ": " : "", text != NULL ? text : "",
		    r->queue_len);
	route_bounce_queue(r, cond, text);
	route_wake(r);
	route_arm_idle(r);
}

/*
 * The module.
 */

struct route_table *
route_table_new(struct event_base *base, const struct route_carrier *legs,
    void *legs_arg)
{
	struct route_table *t;
	uint32_t nonce;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->base = base;
	t->legs = legs;
	t->legs_arg = legs_arg;
	RB_INIT(&t->tree);
	evutil_secure_rng_get_bytes(&nonce, sizeof(nonce));
	route_table_set_worker(t, nonce, 0, 1, NULL, NULL);
	return t;
}

void
route_table_set_worker(struct route_table *t, uint32_t nonce,
    unsigned worker, unsigned workers, route_forward_fn forward, void *arg)
{
	snprintf(t->ping_prefix, sizeof(t->ping_prefix),
	    ROUTE_PING_PREFIX "%08" PRIx32 "-", nonce);
	t->nonce_len = strlen(t->ping_prefix);
	snprintf(t->ping_prefix + t->nonce_len, sizeof(t->ping_prefix) -
	    t->nonce_len, "%u-", worker);
	t->worker = worker;
	t->workers = workers;
	t->forward = forward;
	t->forward_arg = arg;
}

void
route_table_free(struct route_table *t)
{
	if (t == NULL)
		return;
	route_shutdown(t);
	free(t);
}

void
route_configure(struct route_table *t, const struct config *c)
{
	t->queue_max = c->limits.queue;
	t->unacked_max = c->limits.unacked;
	t->idle_ms = c->timeouts.idle;
	t->ack_ms = c->timeouts.ack;
	t->backoff_ms = c->timeouts.backoff;
	t->backoff_max_ms = c->timeouts.backoff_max;
}

void
route_shutdown(struct route_table *t)
{
	struct route *r, *next;

	t->shutting_down = true;
	RB_FOREACH(r, route_tree, &t->tree) {
		r->leg_ready = false;
		if (route_requeue(r) > 0)
			route_log(LOG_LEVEL_INFO, r, "shutting down: %zu written "
			    "stanzas were not acknowledged", r->queue_len);
		if (r->queue_len == 0)
			continue;
		route_log(LOG_LEVEL_INFO, r, "shutting down: bouncing %zu "
		    "stanzas", r->queue_len);
		route_bounce_queue(r, XMPP_STANZA_SERVICE_UNAVAILABLE,
		    "system shutting down");
	}
	RB_FOREACH_SAFE(r, route_tree, &t->tree, next)
		route_free(r);
	route_pool_drain(t);
	log_peer_flush();
	t->shutting_down = false;
}

size_t
route_count(const struct route_table *t)
{
	return t->count;
}

size_t
route_queued(const struct route_table *t)
{
	return t->queued + t->unacked;
}

size_t
route_queue_length(const struct route *r)
{
	return r->queue_len;
}

void
route_get_counters(const struct route_table *t, struct route_counters *c)
{
	*c = t->counters;
}

void
route_foreach(struct route_table *t,
    void (*fn)(const struct route_info *, void *), void *arg)
{
	struct route *r;
	struct route_info info;
	uint64_t now = timer_now_ms();

	RB_FOREACH(r, route_tree, &t->tree) {
		memset(&info, 0, sizeof(info));
		info.face = config_face_name(r->face);
		info.local = r->local;
		info.remote = r->remote;
		info.leg_state = "";
		if (r->leg != NULL)
			t->legs->describe(r->leg, &info.leg_id,
			    &info.leg_state);
		info.queue = r->queue_len;
		info.queue_bytes = r->queue_bytes;
		info.unacked = r->unacked_len;
		info.acked = r->acked;
		info.resent = r->resent;
		info.sent = r->sent;
		info.bounced = r->bounced;
		info.dropped = r->dropped;
		info.age_ms = now - r->created;
		info.failures = r->failures;
		if (r->failures > 0) {
			info.retry_in_ms = r->retry_at > now ?
			    r->retry_at - now : 0;
			info.fail_condition =
			    xmpp_stanza_error_name(r->fail_cond);
			info.fail_text = r->fail_text;
		}
		fn(&info, arg);
	}
}
