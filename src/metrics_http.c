/*
 * metrics_http: evhttp on one listening socket of our own (bound while
 * root, accepting once enabled).
 *
 * evhttp (libevent 2.1) has no limit on connections and no hook when one
 * is accepted. A connection is counted at its first request: it takes one
 * of METRICS_HTTP_CLIENTS slots, given back by evhttp's close callback;
 * with every slot taken, the request is answered 503 and the connection
 * closed. A connection that sends no request is closed by evhttp after
 * METRICS_HTTP_TIMEOUT, and the socket's backlog is small.
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <json.h>

#include "leg.h"
#include "log.h"
#include "merge.h"
#include "metrics.h"
#include "metrics_http.h"
#include "route.h"
#include "util.h"
#include "worker.h"

#define METRICS_HTTP_BACKLOG	16
#define METRICS_HTTP_PAUSE_MS	1000	/* after an accept error */
#define METRICS_HTTP_WORKERS_MS	5000	/* for the other workers' part */

/* A request waiting for the other workers' expositions. */
struct metrics_http_pending {
	TAILQ_ENTRY(metrics_http_pending) entry;
	struct metrics_http	*mh;
	struct evhttp_request	*req;
	struct evhttp_connection *evcon;
	struct json_object	*reply;		/* {"ok":true,"text":ours} */
	struct worker_fanout	*f;
};
TAILQ_HEAD(metrics_http_pendings, metrics_http_pending);

struct metrics_http {
	struct event_base	*base;
	struct leg_env		*legs;		/* whose live values it shows */
	struct evhttp		*http;
	struct evconnlistener	*evl;		/* evhttp's, ours to enable */
	struct event		*resume;	/* after an accept error */
	bool			 enabled;	/* by metrics_http_enable() */
	struct worker		*worker;	/* or NULL: one worker */
	struct metrics_http_pendings pending;
	struct evhttp_connection *clients[METRICS_HTTP_CLIENTS];
	bool			 full;		/* warned: every slot taken */
	char			 address[UTIL_SOCKADDR_STRLEN];
};

/* Accept if enabled and not pausing after an error. */
static void
metrics_http_update(struct metrics_http *mh)
{
	if (mh->enabled && !evtimer_pending(mh->resume, NULL))
		evconnlistener_enable(mh->evl);
	else
		evconnlistener_disable(mh->evl);
}

static void
metrics_http_pending_free(struct metrics_http_pending *p)
{
	TAILQ_REMOVE(&p->mh->pending, p, entry);
	worker_fanout_cancel(p->f);
	json_object_put(p->reply);
	free(p);
}

/* evhttp frees a connection that held a slot. */
static void
metrics_http_gone(struct evhttp_connection *evcon, void *arg)
{
	struct metrics_http *mh = arg;
	struct metrics_http_pending *p, *next;

	TAILQ_FOREACH_SAFE(p, &mh->pending, entry, next)
		if (p->evcon == evcon)
			metrics_http_pending_free(p);
	for (size_t i = 0; i < METRICS_HTTP_CLIENTS; i++)
		if (mh->clients[i] == evcon)
			mh->clients[i] = NULL;
}

/* Give evcon a slot, unless it has one. Return false if none is free. */
static bool
metrics_http_admit(struct metrics_http *mh, struct evhttp_connection *evcon)
{
	size_t i, free_slot = METRICS_HTTP_CLIENTS;

	for (i = 0; i < METRICS_HTTP_CLIENTS; i++) {
		if (mh->clients[i] == evcon)
			return true;
		if (mh->clients[i] == NULL && free_slot == METRICS_HTTP_CLIENTS)
			free_slot = i;
	}
	if (free_slot == METRICS_HTTP_CLIENTS) {
		if (!mh->full)
			log_warnx("metrics %s: %d connections open: refusing "
			    "more with 503", mh->address, METRICS_HTTP_CLIENTS);
		mh->full = true;
		return false;
	}
	mh->full = false;
	mh->clients[free_slot] = evcon;
	evhttp_connection_set_closecb(evcon, metrics_http_gone, mh);
	return true;
}

static void
metrics_http_reply(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *body = evbuffer_new();

	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	if (code == HTTP_BADMETHOD)
		evhttp_add_header(h, "Allow", "GET");
	if (code == HTTP_SERVUNAVAIL)
		evhttp_add_header(h, "Connection", "close");
	if (body != NULL)
		evbuffer_add_printf(body, "%s\n", text);
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

static void
metrics_http_send(struct evhttp_request *req, struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", body);
}

/* The other workers' expositions are in: answer with the sum. */
static void
metrics_http_gathered(void *arg, char *const *replies, unsigned n)
{
	struct metrics_http_pending *p = arg;
	struct evbuffer *body = evbuffer_new();
	struct json_object *text, *e;

	p->f = NULL;	/* finished: nothing to cancel */
	if (merge_replies("metrics", p->reply, 0, replies, n) == -1 ||
	    body == NULL || !json_object_object_get_ex(p->reply, "text",
	    &text) || evbuffer_add(body, json_object_get_string(text),
	    (size_t)json_object_get_string_len(text)) == -1) {
		log_warnx("metrics %s: %s", p->mh->address,
		    json_object_object_get_ex(p->reply, "error", &e) ?
		    json_object_get_string(e) : "out of memory");
		metrics_http_reply(p->req, HTTP_SERVUNAVAIL,
		    "Service Unavailable", "not every worker answered");
	} else
		metrics_http_send(p->req, body);
	evbuffer_free(body);
	metrics_http_pending_free(p);
}

/* Ask the other workers for their expositions; ours is in body. */
static void
metrics_http_gather(struct metrics_http *mh, struct evhttp_request *req,
    struct evbuffer *body)
{
	struct metrics_http_pending *p;
	size_t len = evbuffer_get_length(body);

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->reply = json_object_new_object()) == NULL || len > INT32_MAX) {
		free(p);
		metrics_http_reply(req, HTTP_INTERNAL, "Internal Server Error",
		    "out of memory");
		return;
	}
	p->mh = mh;
	p->req = req;
	p->evcon = evhttp_request_get_connection(req);
	json_object_object_add(p->reply, "ok", json_object_new_boolean(1));
	json_object_object_add(p->reply, "text", json_object_new_string_len(
	    (const char *)evbuffer_pullup(body, -1), (int)len));
	TAILQ_INSERT_TAIL(&mh->pending, p, entry);
	if ((p->f = worker_fanout(mh->worker, "metrics",
	    METRICS_HTTP_WORKERS_MS, metrics_http_gathered, p)) == NULL) {
		metrics_http_pending_free(p);
		metrics_http_reply(req, HTTP_INTERNAL, "Internal Server Error",
		    "out of memory");
	}
}

static void
metrics_http_request(struct evhttp_request *req, void *arg)
{
	struct metrics_http *mh = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *body;

	if (!metrics_http_admit(mh, evhttp_request_get_connection(req))) {
		metrics_http_reply(req, HTTP_SERVUNAVAIL, "Service Unavailable",
		    "too many connections");
		return;
	}
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		log_debug("metrics %s: %s: not found", mh->address,
		    UTIL_ESC(path));
		metrics_http_reply(req, HTTP_NOTFOUND, "Not Found",
		    "only /metrics is served here");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		metrics_http_reply(req, HTTP_BADMETHOD, "Method Not Allowed",
		    "only GET");
		return;
	}
	if ((body = evbuffer_new()) == NULL ||
	    metrics_http_render(mh->legs, body) == -1) {
		evbuffer_free(body);
		metrics_http_reply(req, HTTP_INTERNAL, "Internal Server Error",
		    "out of memory");
		return;
	}
	if (mh->worker != NULL && worker_count(mh->worker) > 1) {
		metrics_http_gather(mh, req, body);
		evbuffer_free(body);
		return;
	}
	metrics_http_send(req, body);
	evbuffer_free(body);
}

static void
metrics_http_resume(evutil_socket_t fd, short what, void *arg)
{
	metrics_http_update(arg);
}

/* accept() failed: transient errors pass; others pause, never spin. */
static void
metrics_http_accept_error(struct evconnlistener *evl, void *arg)
{
	struct metrics_http *mh = arg;
	int err = EVUTIL_SOCKET_ERROR();
	const struct timeval tv = { METRICS_HTTP_PAUSE_MS / 1000,
	    (METRICS_HTTP_PAUSE_MS % 1000) * 1000 };

	if (err == ECONNABORTED || err == EINTR || err == EAGAIN)
		return;
	log_warnx("metrics %s: accept: %s (paused for %d ms)", mh->address,
	    strerror(err), METRICS_HTTP_PAUSE_MS);
	evtimer_add(mh->resume, &tv);
	metrics_http_update(mh);
}

/* A listening socket on addr, or -1 with err set. */
static int
metrics_http_socket(const struct sockaddr *sa, socklen_t len, char *err,
    size_t errlen)
{
	const int on = 1, off = 0;
	int fd;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &off, sizeof(off)) == -1) ||
	    bind(fd, sa, len) == -1 || listen(fd, METRICS_HTTP_BACKLOG) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* Limits and callbacks of the evhttp. */
static void
metrics_http_setup(struct metrics_http *mh)
{
	evhttp_set_max_headers_size(mh->http, METRICS_HTTP_HEADERS);
	evhttp_set_max_body_size(mh->http, 0);
	evhttp_set_timeout(mh->http, METRICS_HTTP_TIMEOUT);
	/* every method reaches us, so that we answer 405 rather than 501 */
	evhttp_set_allowed_methods(mh->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(mh->http, metrics_http_request, mh);
}

struct metrics_http *
metrics_http_new(struct event_base *base, struct leg_env *legs,
    const char *host, uint16_t port, char *err, size_t errlen)
{
	struct metrics_http *mh;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd;

	if (util_sockaddr_parse(host, port, &ss, &sslen) == -1) {
		snprintf(err, errlen, "invalid address");
		return NULL;
	}
	if ((mh = calloc(1, sizeof(*mh))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	mh->base = base;
	mh->legs = legs;
	TAILQ_INIT(&mh->pending);
	util_sockaddr_str((struct sockaddr *)&ss, mh->address,
	    sizeof(mh->address));
	if ((mh->http = evhttp_new(base)) == NULL ||
	    (mh->resume = evtimer_new(base, metrics_http_resume, mh)) == NULL) {
		snprintf(err, errlen, "out of memory");
		metrics_http_free(mh);
		return NULL;
	}
	metrics_http_setup(mh);
	if ((fd = metrics_http_socket((struct sockaddr *)&ss, sslen, err,
	    errlen)) == -1) {
		metrics_http_free(mh);
		return NULL;
	}
	mh->evl = evconnlistener_new(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_DISABLED, -1, fd);
	if (mh->evl == NULL || evhttp_bind_listener(mh->http, mh->evl) == NULL) {
		snprintf(err, errlen, "cannot create the listener");
		if (mh->evl == NULL)
			close(fd);
		else
			evconnlistener_free(mh->evl);
		mh->evl = NULL;
		metrics_http_free(mh);
		return NULL;
	}
	evconnlistener_set_error_cb(mh->evl, metrics_http_accept_error);
	return mh;
}

void
metrics_http_enable(struct metrics_http *mh, int on)
{
	mh->enabled = on != 0;
	metrics_http_update(mh);
}

void
metrics_http_set_worker(struct metrics_http *mh, struct worker *w)
{
	mh->worker = w;
}

void
metrics_http_free(struct metrics_http *mh)
{
	if (mh == NULL)
		return;
	while (!TAILQ_EMPTY(&mh->pending))
		metrics_http_pending_free(TAILQ_FIRST(&mh->pending));
	if (mh->http != NULL)
		evhttp_free(mh->http);	/* its listener and connections */
	if (mh->resume != NULL)
		event_free(mh->resume);
	free(mh);
}

const char *
metrics_http_address(const struct metrics_http *mh)
{
	return mh->address;
}

static void
metrics_http_leg(const struct leg_info *i, void *arg)
{
	metrics_live_leg(i->id, strcmp(i->face, "internal") == 0 ?
	    CONFIG_FACE_INTERNAL : CONFIG_FACE_PUBLIC, i->outgoing, i->local,
	    i->remote, i->bytes_in, i->bytes_out);
}

static void
metrics_http_route(const struct route_info *i, void *arg)
{
	metrics_live_route(strcmp(i->face, "internal") == 0 ?
	    CONFIG_FACE_INTERNAL : CONFIG_FACE_PUBLIC, i->local, i->remote,
	    i->queue);
}

int
metrics_http_render(struct leg_env *legs, struct evbuffer *out)
{
	struct route_counters rc;

	metrics_live_begin();
	leg_foreach(legs, metrics_http_leg, NULL);
	route_foreach(leg_env_routes(legs), metrics_http_route, NULL);
	route_get_counters(leg_env_routes(legs), &rc);
	metrics_live_acks(rc.acked, rc.resent);
	return metrics_render(out);
}
