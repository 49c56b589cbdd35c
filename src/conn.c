/*
 * conn: a bufferevent per connection. The "raw" bufferevent owns the socket
 * for the connection's whole life; STARTTLS stacks an OpenSSL filter on it,
 * and the owner then talks to the filter ("top"). Direct TLS uses an
 * OpenSSL socket bufferevent as both.
 */
#include "fgconfig.h"

#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "conn.h"
#include "log.h"
#include "util.h"

struct conn {
	struct event_base	*base;
	struct bufferevent	*raw;		/* owns the socket */
	struct bufferevent	*top;		/* raw, or the TLS filter on it */
	SSL			*ssl;		/* borrowed from top; NULL plain */
	bool			 tls_done;	/* handshake finished */
	bool			 upgraded;	/* TLS came by STARTTLS */
	bool			 closing;	/* conn_close() called */
	bool			 lingering;	/* closing, still reading
						   (conn_close_linger()) */
	bool			 finishing;	/* CLOSED is scheduled */
	bool			 abandoned;	/* freed by the owner meanwhile */
	bool			 congested;
	size_t			 high;		/* output high watermark */
	struct ev_token_bucket_cfg *rate;
	const struct conn_handler *handler;
	void			*arg;
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;
	char			 peer_str[UTIL_SOCKADDR_STRLEN];
	char			 error[160];
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
};

static void conn_read_cb(struct bufferevent *, void *);
static void conn_maybe_closed(struct conn *);
static void conn_write_cb(struct bufferevent *, void *);
static void conn_event_cb(struct bufferevent *, short, void *);

static void
conn_count_in(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	((struct conn *)arg)->bytes_in += info->n_added;
}

static void
conn_count_out(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	((struct conn *)arg)->bytes_out += info->n_deleted;
}

/* Make bev the one the owner talks to: callbacks, counters, reading on. */
static int
conn_attach_top(struct conn *c, struct bufferevent *bev)
{
	c->top = bev;
	bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	if (evbuffer_add_cb(bufferevent_get_input(bev), conn_count_in, c) == NULL ||
	    evbuffer_add_cb(bufferevent_get_output(bev), conn_count_out, c) == NULL)
		return -1;
	return bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static struct conn *
conn_alloc(struct event_base *base, const struct sockaddr *peer,
    socklen_t peerlen, const struct conn_handler *h, void *arg)
{
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->base = base;
	c->handler = h;
	c->arg = arg;
	c->high = 1024 * 1024;
	if (peer != NULL && peerlen <= sizeof(c->peer)) {
		memcpy(&c->peer, peer, peerlen);
		c->peerlen = peerlen;
		util_sockaddr_str(peer, c->peer_str, sizeof(c->peer_str));
	}
	return c;
}

/*
 * Send small writes at once (TCP_NODELAY). An XMPP stream's answers and
 * acknowledgement requests are small and waited for: with Nagle's
 * algorithm, a <r/> behind a full window waits for the peer's delayed
 * ACK, about 40 ms, and a route with acknowledgements then stalls at every
 * window (bench/ measured 12,000 stanzas a second instead of 250,000).
 * The relay writes a whole batch per write(2) anyway. Best effort: a
 * failure only costs latency.
 */
static void
conn_nodelay(int fd)
{
	int on = 1;

	if (fd != -1)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

struct conn *
conn_new_accepted(struct event_base *base, int fd, const struct sockaddr *peer,
    socklen_t peerlen, SSL *ssl, const struct conn_handler *h, void *arg)
{
	struct conn *c;
	const int opt = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

	if ((c = conn_alloc(base, peer, peerlen, h, arg)) == NULL)
		goto fail;
	if (util_fd_nonblock(fd) == -1)
		goto fail;
	conn_nodelay(fd);
	if (ssl != NULL) {
		c->raw = bufferevent_openssl_socket_new(base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, opt);
		c->ssl = ssl;
		ssl = NULL;
	} else
		c->raw = bufferevent_socket_new(base, fd, opt);
	if (c->raw == NULL) {
		close(fd);
		goto fail;
	}
	if (c->ssl != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(c->raw, 1);
	if (conn_attach_top(c, c->raw) == -1)
		goto fail;
	return c;
 fail:
	if (c == NULL || c->raw == NULL)
		SSL_free(ssl);
	conn_free(c);
	return NULL;
}

/*
 * A nonblocking TCP socket for addr's family bound to source (port 0), or
 * -1 with errno set. With transparent the socket gets IP_TRANSPARENT
 * (IPV6_TRANSPARENT) first, so that source need not be this host's.
 */
static int
conn_bound_socket(const struct sockaddr *addr, const struct sockaddr *source,
    socklen_t sourcelen, bool transparent)
{
	struct sockaddr_storage ss;
	const int on = 1;
	int fd, rc = 0, saved;

	if (source->sa_family != addr->sa_family ||
	    sourcelen > sizeof(ss) || (source->sa_family != AF_INET &&
	    source->sa_family != AF_INET6)) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	memcpy(&ss, source, sourcelen);
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	if ((fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/* The port comes with connect(): no ephemeral port held per bind. */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
	    sizeof(on));
	if (transparent && ss.ss_family == AF_INET6)
		rc = setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &on,
		    sizeof(on));
	else if (transparent)
		rc = setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &on, sizeof(on));
	if (rc == -1 || bind(fd, (struct sockaddr *)&ss, sourcelen) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Connect fd (-1: a new socket) to addr; the connection takes fd and ssl. */
static struct conn *
conn_connect_fd(struct event_base *base, const struct sockaddr *addr,
    socklen_t addrlen, int fd, SSL *ssl, const struct conn_handler *h,
    void *arg)
{
	struct conn *c;
	const int opt = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
	int saved;

	if ((c = conn_alloc(base, addr, addrlen, h, arg)) == NULL) {
		saved = errno;
		SSL_free(ssl);
		if (fd != -1)
			close(fd);
		errno = saved;
		return NULL;
	}
	if (ssl != NULL) {
		c->raw = bufferevent_openssl_socket_new(base, fd, ssl,
		    BUFFEREVENT_SSL_CONNECTING, opt);
		if (c->raw == NULL)
			SSL_free(ssl);
		c->ssl = ssl;
	} else
		c->raw = bufferevent_socket_new(base, fd, opt);
	if (c->raw == NULL && fd != -1)
		close(fd);	/* else the bufferevent owns it */
	if (c->raw == NULL || conn_attach_top(c, c->raw) == -1)
		goto fail;
	if (c->ssl != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(c->raw, 1);
	if (bufferevent_socket_connect(c->raw, addr, (int)addrlen) == -1) {
		snprintf(c->error, sizeof(c->error), "connect: %s",
		    strerror(errno));
		goto fail;
	}
	conn_nodelay(bufferevent_getfd(c->raw));
	return c;
 fail:
	saved = errno;
	conn_free(c);
	errno = saved;
	return NULL;
}

struct conn *
conn_new_connect(struct event_base *base, const struct sockaddr *addr,
    socklen_t addrlen, const struct sockaddr *source, socklen_t sourcelen,
    SSL *ssl, const struct conn_handler *h, void *arg)
{
	int saved, fd = -1;

	if (source != NULL &&
	    (fd = conn_bound_socket(addr, source, sourcelen, false)) == -1) {
		saved = errno;
		SSL_free(ssl);
		errno = saved;
		return NULL;
	}
	return conn_connect_fd(base, addr, addrlen, fd, ssl, h, arg);
}

struct conn *
conn_new_connect_from(struct event_base *base, const struct sockaddr *addr,
    socklen_t addrlen, const struct sockaddr *source, SSL *ssl,
    const struct conn_handler *h, void *arg)
{
	socklen_t len = source->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int saved, fd;

	if ((fd = conn_bound_socket(addr, source, len, true)) == -1) {
		saved = errno;
		SSL_free(ssl);
		errno = saved;
		return NULL;
	}
	return conn_connect_fd(base, addr, addrlen, fd, ssl, h, arg);
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->finishing) {	/* conn_finish_close() is scheduled: it frees */
		c->abandoned = true;
		return;
	}
	/* Freeing the filter frees raw too (BEV_OPT_CLOSE_ON_FREE). */
	if (c->top != NULL)
		bufferevent_free(c->top);
	else if (c->raw != NULL)
		bufferevent_free(c->raw);
	if (c->rate != NULL)
		ev_token_bucket_cfg_free(c->rate);
	free(c);
}

/* Whether every byte queued, through a TLS filter too, reached the socket. */
static bool
conn_is_flushed(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->top)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->raw)) == 0;
}

static void
conn_finish_close(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	c->finishing = false;
	if (!c->abandoned)
		c->handler->event(c, CONN_EV_CLOSED, c->arg);
	conn_free(c);
}

/* Closing: once flushed, report CLOSED and free, from the loop. */
static void
conn_maybe_closed(struct conn *c)
{
	if (!c->closing || c->lingering || c->finishing ||
	    !conn_is_flushed(c))
		return;
	c->finishing = true;
	if (event_base_once(c->base, -1, EV_TIMEOUT, conn_finish_close, c,
	    NULL) == -1)
		conn_finish_close(-1, 0, c);
}

/* The raw output drained (under a TLS filter, the filter's callbacks
 * do not say when the socket took the last bytes). */
static void
conn_raw_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	if (info->n_deleted > 0)
		conn_maybe_closed(arg);
}

void
conn_close(struct conn *c)
{
	if (c->lingering) {
		c->lingering = false;
		bufferevent_disable(c->top, EV_READ);
		conn_maybe_closed(c);
		return;
	}
	if (c->closing)
		return;
	c->closing = true;
	bufferevent_disable(c->top, EV_READ);
	bufferevent_setwatermark(c->top, EV_WRITE, 0, 0);
	/* Without this callback the owner's close timer ends the wait. */
	if (c->top != c->raw)
		evbuffer_add_cb(bufferevent_get_output(c->raw), conn_raw_drained, c);
	/* The write callback runs (deferred) and finishes when output is empty. */
	bufferevent_trigger(c->top, EV_WRITE,
	    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* Read again; what is buffered already reaches the owner from the loop. */
static void
conn_resume_reading(struct conn *c)
{
	bufferevent_enable(c->top, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->top)) > 0)
		bufferevent_trigger(c->top, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

void
conn_close_linger(struct conn *c)
{
	if (c->closing)
		return;
	conn_close(c);
	c->lingering = true;
	conn_resume_reading(c);
}

bool
conn_is_lingering(const struct conn *c)
{
	return c->lingering;
}

/*
 * STARTTLS in place: a TLS bufferevent on the socket itself replaces the
 * plain one, so that OpenSSL reads whole records from the socket. Under a
 * filter, libevent 2.1's plain reads stop at 4 KiB (EVBUFFER_MAX_READ):
 * every 4 KiB of ciphertext cost a loop iteration, and was copied once
 * more into the filter's BIO. Possible only once every plain byte queued
 * (the <proceed/> or <starttls/> just written) is on the wire: it is
 * written now if the socket takes it at once. Return 0; -1 with nothing
 * changed (the caller falls back to a filter); -2 if the switch was made
 * but the rate limit could not be set again (ssl is the conn's now).
 */
static int
conn_starttls_socket(struct conn *c, SSL *ssl, bool server)
{
	struct evbuffer *out = bufferevent_get_output(c->raw);
	evutil_socket_t fd = bufferevent_getfd(c->raw);
	struct bufferevent *bev;

	if (fd == -1)
		return -1;
	/* The bufferevent froze its output's start: only it drains it. */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, fd) <= 0) {
			evbuffer_freeze(out, 1);
			return -1;	/* not at once: keep the filter way */
		}
	evbuffer_freeze(out, 1);
	bev = bufferevent_openssl_socket_new(c->base, fd, ssl,
	    server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL)
		return -1;
	/* The plain bufferevent goes; the socket stays with the new one. */
	bufferevent_setfd(c->raw, -1);
	bufferevent_free(c->raw);
	c->raw = bev;
	c->ssl = ssl;
	c->upgraded = true;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	if (c->rate != NULL && bufferevent_set_rate_limit(bev, c->rate) == -1)
		return -2;
	return conn_attach_top(c, bev) == -1 ? -2 : 0;
}

int
conn_starttls(struct conn *c, SSL *ssl, bool server)
{
	struct bufferevent *filter;

	if (c->ssl != NULL || c->closing) {
		SSL_free(ssl);
		return -1;
	}
	evbuffer_drain(bufferevent_get_input(c->raw),
	    evbuffer_get_length(bufferevent_get_input(c->raw)));
	switch (conn_starttls_socket(c, ssl, server)) {
	case 0:
		return 0;
	case -2:
		return -1;	/* the owner closes the conn, and ssl with it */
	default:
		break;
	}
	evbuffer_remove_cb(bufferevent_get_input(c->raw), conn_count_in, c);
	evbuffer_remove_cb(bufferevent_get_output(c->raw), conn_count_out, c);
	filter = bufferevent_openssl_filter_new(c->base, c->raw, ssl,
	    server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (filter == NULL) {
		SSL_free(ssl);
		return -1;
	}
	c->ssl = ssl;
	c->upgraded = true;
	bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
	return conn_attach_top(c, filter);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (!c->closing || c->lingering)
		c->handler->read(c, c->arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing) {
		conn_maybe_closed(c);
		return;
	}
	if (c->congested &&
	    evbuffer_get_length(bufferevent_get_output(bev)) <= c->high / 2) {
		c->congested = false;
		c->handler->event(c, CONN_EV_DRAINED, c->arg);
	}
}

/* Describe the error behind a BEV_EVENT_ERROR in c->error. */
static void
conn_set_error(struct conn *c, struct bufferevent *bev)
{
	unsigned long e;
	int saved = EVUTIL_SOCKET_ERROR();

	if (c->ssl != NULL && (e = bufferevent_get_openssl_error(bev)) != 0) {
		snprintf(c->error, sizeof(c->error), "TLS: ");
		ERR_error_string_n(e, c->error + 5, sizeof(c->error) - 5);
		while (bufferevent_get_openssl_error(bev) != 0)
			;
	} else if (saved != 0)
		snprintf(c->error, sizeof(c->error), "%s", strerror(saved));
	else
		snprintf(c->error, sizeof(c->error), "connection failed");
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		if (c->ssl != NULL) {
			/* Direct TLS: TCP and TLS are up at once. */
			bool was_plain_connect = !c->tls_done && !c->upgraded;

			c->tls_done = true;
			if (was_plain_connect && SSL_is_server(c->ssl) == 0)
				c->handler->event(c, CONN_EV_CONNECTED, c->arg);
			c->handler->event(c, CONN_EV_TLS_DONE, c->arg);
		} else
			c->handler->event(c, CONN_EV_CONNECTED, c->arg);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		conn_set_error(c, bev);
		c->handler->event(c, CONN_EV_ERROR, c->arg);
	} else if (what & BEV_EVENT_EOF) {
		snprintf(c->error, sizeof(c->error), "connection closed by peer");
		c->handler->event(c, CONN_EV_EOF, c->arg);
	}
}

struct evbuffer *
conn_input(struct conn *c)
{
	return bufferevent_get_input(c->top);
}

int
conn_write(struct conn *c, const void *data, size_t len)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)data,
	    .iov_len = len };

	return conn_writev(c, &iov, 1);
}

int
conn_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
	struct evbuffer *out;
	size_t total = 0;

	if (c->closing)
		return -1;
	out = bufferevent_get_output(c->top);
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	/* Room for all first: no piece is written without the others. */
	if (evbuffer_expand(out, total) == -1)
		return -1;
	for (int i = 0; i < iovcnt; i++)
		if (evbuffer_add(out, iov[i].iov_base, iov[i].iov_len) == -1)
			return -1;
	if (evbuffer_get_length(out) > c->high)
		c->congested = true;
	return 0;
}

void
conn_set_reading(struct conn *c, bool on)
{
	if (c->closing)
		return;
	if (!on) {
		bufferevent_disable(c->top, EV_READ);
		return;
	}
	conn_resume_reading(c);
}

size_t
conn_output_length(const struct conn *c)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(c->top));

	if (c->top != c->raw)
		n += evbuffer_get_length(bufferevent_get_output(c->raw));
	return n;
}

bool
conn_is_congested(const struct conn *c)
{
	return c->congested;
}

int
conn_set_rate(struct conn *c, uint64_t rate, uint64_t burst)
{
	struct ev_token_bucket_cfg *cfg = NULL;

	if (rate != 0) {
		if (burst < rate)
			burst = rate;
		if (rate > EV_RATE_LIMIT_MAX || burst > EV_RATE_LIMIT_MAX)
			return -1;
		cfg = ev_token_bucket_cfg_new((size_t)rate, (size_t)burst,
		    EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, NULL);
		if (cfg == NULL)
			return -1;
	}
	if (bufferevent_set_rate_limit(c->raw, cfg) == -1) {
		if (cfg != NULL)
			ev_token_bucket_cfg_free(cfg);
		return -1;
	}
	if (c->rate != NULL)
		ev_token_bucket_cfg_free(c->rate);
	c->rate = cfg;
	return 0;
}

bool
conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL && c->tls_done;
}

SSL *
conn_ssl(const struct conn *c)
{
	return c->tls_done ? c->ssl : NULL;
}

const char *
conn_tls_description(const struct conn *c, char *buf, size_t len)
{
	if (!conn_is_tls(c))
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, "%s %s", SSL_get_version(c->ssl),
		    SSL_get_cipher_name(c->ssl));
	return buf;
}

const char *
conn_peer(const struct conn *c)
{
	return c->peer_str;
}

const struct sockaddr *
conn_peer_addr(const struct conn *c)
{
	return (const struct sockaddr *)&c->peer;
}

int
conn_local_addr(const struct conn *c, struct sockaddr_storage *out)
{
	socklen_t len = sizeof(*out);
	evutil_socket_t fd = c->raw != NULL ? bufferevent_getfd(c->raw) : -1;

	if (fd == -1)
		return -1;
	return getsockname(fd, (struct sockaddr *)out, &len);
}

const char *
conn_error(const struct conn *c)
{
	return c->error[0] != '\0' ? c->error : "no error";
}

uint64_t
conn_bytes_in(const struct conn *c)
{
	return c->bytes_in;
}

uint64_t
conn_bytes_out(const struct conn *c)
{
	return c->bytes_out;
}

