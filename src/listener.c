/*
 * listener: an evconnlistener per listening socket.
 *
 * When accept() fails for want of resources (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) the pending connection stays queued, so libevent would call
 * accept() again at once and spin a core. Instead the listener pauses (on
 * any error but the transient ECONNABORTED, EINTR and EAGAIN):
 *
 *	DISABLED   --enable-->        ACCEPTING
 *	ACCEPTING  --accept fails-->  PAUSED	(resume timer armed)
 *	PAUSED     --resume timer-->  ACCEPTING
 *	any        --disable-->       DISABLED	(resume timer cancelled)
 *
 * The pause starts at LISTENER_PAUSE_MIN_MS and doubles with each failure
 * up to LISTENER_PAUSE_MAX_MS; a successful accept resets it. Failures are
 * counted and logged at most once per LISTENER_LOG_INTERVAL_MS, and a
 * logged trouble ends with one line when an accept succeeds again.
 *
 * On a PROXY listener each accepted socket first waits in the pending
 * list, with a read event and a deadline, while its PROXY v2 header is
 * read: exactly the bytes the decoder asks for, so that what follows the
 * header (a TLS ClientHello, a stream header) stays in the socket for the
 * owner. A valid header hands the socket over; anything else closes it.
 */
#include "fgconfig.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#define LISTENER_PRIVATE
#include "listener.h"
#include "log.h"
#include "proxy.h"
#include "util.h"

#define LISTENER_PAUSE_MIN_MS		20
#define LISTENER_PAUSE_MAX_MS		1000
#define LISTENER_LOG_INTERVAL_MS	5000

enum listener_state {
	LISTENER_DISABLED,		/* not accepting: new, or stopped */
	LISTENER_ACCEPTING,
	LISTENER_PAUSED			/* accept() failed: resume timer pending */
};

static const char *const listener_state_names[] = {
	[LISTENER_DISABLED] = "disabled",
	[LISTENER_ACCEPTING] = "accepting",
	[LISTENER_PAUSED] = "paused",
};

/* Allowed transitions: from -> bitmask of targets. */
static const unsigned listener_transitions[] = {
	[LISTENER_DISABLED] = 1u << LISTENER_ACCEPTING,
	[LISTENER_ACCEPTING] = 1u << LISTENER_PAUSED | 1u << LISTENER_DISABLED,
	[LISTENER_PAUSED] = 1u << LISTENER_ACCEPTING | 1u << LISTENER_DISABLED,
};

/* A connection whose PROXY header is being read. */
struct listener_pending {
	TAILQ_ENTRY(listener_pending) entry;
	struct listener		*l;
	int			 fd;
	struct event		*ev;		/* readable, or the deadline */
	uint64_t		 deadline;	/* util_now_ms() */
	struct proxy_decoder	*dec;
	size_t			 got;		/* header bytes read so far */
	struct sockaddr_storage	 peer;		/* the socket's */
	socklen_t		 peerlen;
};
TAILQ_HEAD(listener_pendings, listener_pending);

struct listener {
	struct evconnlistener	*evl;
	struct event_base	*base;
	bool			 proxy;		/* read a PROXY header first */
	uint64_t		 proxy_timeout;	/* ms, for the whole header */
	unsigned		 proxy_max;	/* pending at once */
	struct listener_pendings pending;
	unsigned		 npending;
	struct event		*resume;	/* ends a pause */
	enum listener_state	 state;
	listener_accept_fn	 accept;
	void			*arg;
	unsigned		 pause_ms;	/* the last pause; 0 after an accept */
	unsigned		 unlogged;	/* failures not yet in a log line */
	unsigned		 trouble;	/* failures since the last accept */
	uint64_t		 trouble_since;	/* util_now_ms() of the first */
	bool			 trouble_logged; /* so its end is logged too */
	uint64_t		 logged_at;	/* util_now_ms() of the last line */
	char			 address[UTIL_SOCKADDR_STRLEN];
};

static void
listener_enter_state(struct listener *l, enum listener_state next)
{
	if (next == l->state)
		return;
	if ((listener_transitions[l->state] & (1u << next)) == 0)
		fatalx("listener %s: bad transition %s -> %s", l->address,
		    listener_state_names[l->state], listener_state_names[next]);
	log_debug("listener %s: %s -> %s", l->address,
	    listener_state_names[l->state], listener_state_names[next]);
	l->state = next;
}

/*
 * Whether err is no trouble: the connection went before it was accepted,
 * or a signal came. Any other error (EMFILE, ENFILE, ENOBUFS, ENOMEM, or
 * one not expected) may well come again at once, so it pauses.
 */
static bool
listener_error_is_transient(int err)
{
	return err == ECONNABORTED || err == EINTR || err == EAGAIN ||
	    err == EWOULDBLOCK;
}

/* Log a failure if the last line is old enough; count it either way. */
static void
listener_log_failure(struct listener *l, int err, uint64_t now)
{
	l->unlogged++;
	if (l->logged_at != 0 && now - l->logged_at < LISTENER_LOG_INTERVAL_MS)
		return;
	log_warnx("listener %s: accept: %s: %u accept%s failed, paused "
	    "(next try in %u ms)", l->address, strerror(err), l->unlogged,
	    l->unlogged == 1 ? "" : "s", l->pause_ms);
	l->unlogged = 0;
	l->logged_at = now;
	l->trouble_logged = true;
}

/* accept() failed with err: stop accepting for a while, never spin. */
static void
listener_pause(struct listener *l, int err)
{
	struct timeval tv;
	uint64_t now = util_now_ms();

	if (l->trouble++ == 0)
		l->trouble_since = now;
	if (l->pause_ms == 0)
		l->pause_ms = LISTENER_PAUSE_MIN_MS;
	else if ((l->pause_ms *= 2) > LISTENER_PAUSE_MAX_MS)
		l->pause_ms = LISTENER_PAUSE_MAX_MS;
	listener_log_failure(l, err, now);
	tv.tv_sec = l->pause_ms / 1000;
	tv.tv_usec = (l->pause_ms % 1000) * 1000;
	if (evtimer_add(l->resume, &tv) == -1) {
		/* Spinning still serves; deaf would not. */
		log_warnx("listener %s: cannot arm the resume timer",
		    l->address);
		return;
	}
	evconnlistener_disable(l->evl);
	listener_enter_state(l, LISTENER_PAUSED);
}

static void
listener_resume_cb(evutil_socket_t fd, short events, void *arg)
{
	struct listener *l = arg;

	if (l->state != LISTENER_PAUSED)
		return;
	if (evconnlistener_enable(l->evl) == -1) {
		listener_pause(l, errno);
		return;
	}
	listener_enter_state(l, LISTENER_ACCEPTING);
}

/* An accept succeeded: end the trouble, if any, and its back-off. */
static void
listener_recovered(struct listener *l)
{
	if (l->trouble_logged)
		log_info("listener %s: accepting again after %" PRIu64 " ms "
		    "(%u accept%s failed)", l->address,
		    util_now_ms() - l->trouble_since, l->trouble,
		    l->trouble == 1 ? "" : "s");
	l->trouble = 0;
	l->trouble_logged = false;
	l->pause_ms = 0;
}

/* Hand fd over to the owner, with who it is from. */
static void
listener_hand_over(struct listener *l, int fd, const struct sockaddr *peer,
    socklen_t peerlen, const struct sockaddr *local, socklen_t locallen,
    const struct sockaddr *via, socklen_t vialen)
{
	struct sockaddr_storage own;
	socklen_t ownlen = sizeof(own);
	struct listener_peer p = {
		.addr = peer, .addrlen = peerlen,
		.local = local, .locallen = locallen,
		.via = via, .vialen = vialen,
	};

	if (local == NULL) {
		memset(&own, 0, sizeof(own));
		if (getsockname(fd, (struct sockaddr *)&own, &ownlen) == -1)
			ownlen = 0;
		p.local = (const struct sockaddr *)&own;
		p.locallen = ownlen;
	}
	l->accept(l, fd, &p, l->arg);
}

/* Forget pending p; close its socket unless it was handed over. */
static void
listener_pending_free(struct listener_pending *p, bool close_fd)
{
	struct listener *l = p->l;

	TAILQ_REMOVE(&l->pending, p, entry);
	l->npending--;
	if (p->ev != NULL)
		event_free(p->ev);
	proxy_decoder_free(p->dec);
	if (close_fd)
		close(p->fd);
	free(p);
}

/* Refuse pending p: one line with the reason and the socket's peer. */
static void __attribute__((format(printf, 2, 3)))
listener_pending_refuse(struct listener_pending *p, const char *fmt, ...)
{
	char why[256], addr[UTIL_SOCKADDR_STRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	util_sockaddr_str((const struct sockaddr *)&p->peer, addr, sizeof(addr));
	log_peer(LOG_LEVEL_WARNING, "listener %s: connection from %s refused: "
	    "PROXY header: %s", p->l->address, UTIL_ESC(addr), UTIL_ESC(why));
	listener_pending_free(p, true);
}

/* The header of p is complete: hand the socket over with its peer. */
static void
listener_pending_done(struct listener_pending *p)
{
	const struct proxy_header *h = proxy_decoder_header(p->dec);
	struct listener *l = p->l;
	struct sockaddr_storage src, dst, via;
	socklen_t srclen = h->srclen, dstlen = h->dstlen, vialen = p->peerlen;
	bool local = h->command == PROXY_CMD_LOCAL;
	int fd = p->fd;

	src = h->src;
	dst = h->dst;
	via = p->peer;
	listener_pending_free(p, false);
	if (local)
		listener_hand_over(l, fd, (const struct sockaddr *)&via, vialen,
		    NULL, 0, NULL, 0);
	else
		listener_hand_over(l, fd, (const struct sockaddr *)&src, srclen,
		    (const struct sockaddr *)&dst, dstlen,
		    (const struct sockaddr *)&via, vialen);
}

/* Wait for more of p's header, until its deadline. */
static void
listener_pending_wait(struct listener_pending *p)
{
	uint64_t now = util_now_ms(), left;
	struct timeval tv;

	left = p->deadline > now ? p->deadline - now : 0;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	if (event_add(p->ev, &tv) == -1)
		listener_pending_refuse(p, "cannot wait for it");
}

static void
listener_pending_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener_pending *p = arg;
	uint8_t buf[PROXY_HEADER_MAX];
	char d[32];
	size_t used;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		listener_pending_refuse(p, "not complete within %s (%zu bytes "
		    "read; timeout handshake)", util_duration_str(
		    p->l->proxy_timeout, d, sizeof(d)), p->got);
		return;
	}
	n = recv(fd, buf, proxy_decoder_need(p->dec), 0);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR)) {
		listener_pending_wait(p);
		return;
	}
	if (n <= 0) {
		listener_pending_refuse(p, "%s after %zu bytes", n == 0 ?
		    "the peer closed the connection" : strerror(errno), p->got);
		return;
	}
	p->got += (size_t)n;
	switch (proxy_decoder_feed(p->dec, buf, (size_t)n, &used)) {
	case PROXY_MORE:
		listener_pending_wait(p);
		break;
	case PROXY_DONE:
		listener_pending_done(p);
		break;
	case PROXY_ERROR:
		listener_pending_refuse(p, "%s", proxy_decoder_error(p->dec));
		break;
	}
}

/* Start reading the PROXY header of the accepted fd. */
static void
listener_pending_start(struct listener *l, int fd, const struct sockaddr *peer,
    socklen_t peerlen)
{
	struct listener_pending *p;
	char addr[UTIL_SOCKADDR_STRLEN];

	if (l->npending >= l->proxy_max || (p = calloc(1, sizeof(*p))) == NULL) {
		util_sockaddr_str(peer, addr, sizeof(addr));
		log_peer(LOG_LEVEL_WARNING, "listener %s: connection from %s "
		    "refused: %u connections already wait for their PROXY "
		    "header", l->address, UTIL_ESC(addr), l->npending);
		close(fd);
		return;
	}
	p->l = l;
	p->fd = fd;
	if (peerlen > sizeof(p->peer))
		peerlen = sizeof(p->peer);
	memcpy(&p->peer, peer, peerlen);
	p->peerlen = peerlen;
	p->deadline = util_now_ms() + l->proxy_timeout;
	TAILQ_INSERT_TAIL(&l->pending, p, entry);
	l->npending++;
	if ((p->dec = proxy_decoder_new()) == NULL ||
	    (p->ev = event_new(l->base, fd, EV_READ, listener_pending_cb,
	    p)) == NULL) {
		listener_pending_refuse(p, "out of memory");
		return;
	}
	listener_pending_wait(p);
}

/* Close every connection still waiting for its header. */
static void
listener_pending_clear(struct listener *l, const char *why)
{
	struct listener_pending *p;

	while ((p = TAILQ_FIRST(&l->pending)) != NULL)
		listener_pending_refuse(p, "%s", why);
}

static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *peer, int peerlen, void *arg)
{
	struct listener *l = arg;

	if (l->trouble > 0)
		listener_recovered(l);
	if (l->proxy)
		listener_pending_start(l, fd, peer, (socklen_t)peerlen);
	else
		listener_hand_over(l, fd, peer, (socklen_t)peerlen, NULL, 0,
		    NULL, 0);
}

static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (listener_error_is_transient(err)) {
		log_debug("listener %s: accept: %s", l->address, strerror(err));
		return;
	}
	listener_pause(l, err);
}

/* Let fd accept connections to addresses not its own (TPROXY). */
static void
listener_set_transparent(int fd, const struct sockaddr *addr)
{
	const int on = 1;
	char a[UTIL_SOCKADDR_STRLEN];
	int rc;

	if (addr->sa_family == AF_INET6)
		rc = setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &on,
		    sizeof(on));
	else
		rc = setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &on, sizeof(on));
	if (rc == -1)
		log_warn("listener %s: IP_TRANSPARENT (TPROXY will not reach "
		    "it; REDIRECT still does)", util_sockaddr_str(addr, a,
		    sizeof(a)));
}

/* A socket bound to addr, listening, nonblocking; -1 with err set. */
static int
listener_socket(const struct sockaddr *addr, socklen_t addrlen,
    unsigned flags, char *err, size_t errlen)
{
	const int on = 1, off = 0;
	int fd;

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		goto fail;
	if ((flags & LISTENER_REUSEPORT) &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1)
		goto fail;
	if (addr->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) == -1)
		goto fail;
	if (flags & LISTENER_TRANSPARENT)
		listener_set_transparent(fd, addr);
	if (bind(fd, addr, addrlen) == -1 || listen(fd, 128) == -1)
		goto fail;
	return fd;
 fail:
	snprintf(err, errlen, "%s", strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

struct listener *
listener_new(struct event_base *base, const struct sockaddr *addr,
    socklen_t addrlen, unsigned flags, listener_accept_fn fn, void *arg,
    char *err, size_t errlen)
{
	struct listener *l;
	int fd;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	util_sockaddr_str(addr, l->address, sizeof(l->address));
	l->base = base;
	TAILQ_INIT(&l->pending);
	l->state = LISTENER_DISABLED;
	l->accept = fn;
	l->arg = arg;
	if ((l->resume = evtimer_new(base, listener_resume_cb, l)) == NULL) {
		snprintf(err, errlen, "cannot create a timer");
		free(l);
		return NULL;
	}
	if ((fd = listener_socket(addr, addrlen, flags, err,
	    errlen)) == -1) {
		listener_free(l);
		return NULL;
	}
	l->evl = evconnlistener_new(base, listener_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_DISABLED, -1, fd);
	if (l->evl == NULL) {
		snprintf(err, errlen, "cannot create the listener");
		close(fd);
		listener_free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->evl, listener_error_cb);
	return l;
}

void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	listener_pending_clear(l, "the listener closed");
	if (l->evl != NULL)
		evconnlistener_free(l->evl);
	event_free(l->resume);
	free(l);
}

int
listener_enable(struct listener *l, bool on)
{
	if (!on) {
		evtimer_del(l->resume);
		listener_pending_clear(l, "the listener stopped accepting");
		if (evconnlistener_disable(l->evl) == -1)
			return -1;
		listener_enter_state(l, LISTENER_DISABLED);
		return 0;
	}
	if (l->state != LISTENER_DISABLED)
		return 0;	/* accepting, or paused: the timer resumes */
	if (evconnlistener_enable(l->evl) == -1)
		return -1;
	listener_enter_state(l, LISTENER_ACCEPTING);
	return 0;
}

void
listener_set_proxy(struct listener *l, bool on, uint64_t timeout_ms,
    unsigned max_pending)
{
	l->proxy = on;
	l->proxy_timeout = timeout_ms;
	l->proxy_max = max_pending;
}

const char *
listener_address(const struct listener *l)
{
	return l->address;
}

const char *
listener_state_name(const struct listener *l)
{
	return listener_state_names[l->state];
}

unsigned
listener_failures(const struct listener *l)
{
	return l->trouble;
}

unsigned
listener_pending(const struct listener *l)
{
	return l->npending;
}
