/*
 * A fake of conn.h for the scenario runner. A conn holds what the leg
 * wrote (for `out` lines to match) and a real evbuffer of what the peer
 * sent (conn_input()). Nothing happens on its own: events reach the leg
 * when the scenario delivers them, except what the real conn does from
 * the loop by itself, which fake_conn_run_one() does: the read callback
 * after conn_set_reading(on) with bytes buffered, and CONN_EV_CLOSED
 * after conn_close() (the output counts as flushed at once). A conn the
 * leg frees stays here, closed, until fake_conn_reset(), so that the
 * scenario can still match its last bytes.
 */
#include "fgconfig.h"

#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "fake.h"
#include "util.h"

#define FAKE_CONNS	64

struct conn {
	char			 name[32];	/* the scenario's; "" unclaimed */
	const struct conn_handler *h;
	void			*arg;
	bool			 outgoing;
	bool			 accepted;
	bool			 direct_tls;
	struct sockaddr_storage	 peer;		/* outgoing: the target */
	char			 peer_str[UTIL_SOCKADDR_STRLEN];
	struct evbuffer		*in;
	char			*out;		/* written, not yet matched */
	size_t			 out_len, out_size;
	size_t			 unread;	/* written while stalled */
	bool			 stalled, congested;
	bool			 reading;
	bool			 read_pending;	/* the loop owes a read */
	bool			 closing;	/* conn_close(): CLOSED owed */
	bool			 lingering;	/* conn_close_linger(): closed
						   for writing, still read */
	bool			 closed;	/* the leg let go of it */
	bool			 freed_by_leg;
	bool			 tls, tls_pending;
	SSL			*ssl;
	enum fake_cert		 cert;
	char			 cert_names[512];
	char			 error[128];
	uint64_t		 rate;
	uint64_t		 bytes_in, bytes_out;
};

static struct conn *conns[FAKE_CONNS];
static size_t nconns;

void
fake_conn_reset(void)
{
	for (size_t i = 0; i < nconns; i++) {
		evbuffer_free(conns[i]->in);
		free(conns[i]->out);
		SSL_free(conns[i]->ssl);
		free(conns[i]);
	}
	nconns = 0;
}

static struct conn *
fake_conn_new(const struct sockaddr *peer, SSL *ssl,
    const struct conn_handler *h, void *arg)
{
	struct conn *c;

	if (nconns == FAKE_CONNS || (c = calloc(1, sizeof(*c))) == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	if ((c->in = evbuffer_new()) == NULL) {
		free(c);
		SSL_free(ssl);
		return NULL;
	}
	c->h = h;
	c->arg = arg;
	c->reading = true;
	if (peer != NULL) {
		memcpy(&c->peer, peer, peer->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
		util_sockaddr_str(peer, c->peer_str, sizeof(c->peer_str));
	}
	if (ssl != NULL) {
		c->direct_tls = true;
		c->tls_pending = true;
		c->ssl = ssl;
	}
	conns[nconns++] = c;
	return c;
}

struct conn *
conn_new_accepted(struct event_base *base, int fd,
    const struct sockaddr *peer, socklen_t peerlen, SSL *ssl,
    const struct conn_handler *h, void *arg)
{
	struct conn *c = fake_conn_new(peer, ssl, h, arg);

	close(fd);		/* the runner's placeholder descriptor */
	if (c != NULL)
		c->accepted = true;
	return c;
}

struct conn *
conn_new_connect(struct event_base *base, const struct sockaddr *addr,
    socklen_t addrlen, const struct sockaddr *source, socklen_t sourcelen,
    SSL *ssl, const struct conn_handler *h, void *arg)
{
	struct conn *c = fake_conn_new(addr, ssl, h, arg);

	if (c != NULL)
		c->outgoing = true;
	return c;
}

struct conn *
conn_new_connect_from(struct event_base *base, const struct sockaddr *addr,
    socklen_t addrlen, const struct sockaddr *source, SSL *ssl,
    const struct conn_handler *h, void *arg)
{
	return conn_new_connect(base, addr, addrlen, source, 0, ssl, h, arg);
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	c->closed = true;
	c->freed_by_leg = true;
	c->closing = false;
	c->read_pending = false;
	c->h = NULL;
}

void
conn_close(struct conn *c)
{
	c->lingering = false;
	c->reading = false;
	c->read_pending = false;
	c->closing = true;
}

void
conn_close_linger(struct conn *c)
{
	if (c->closing || c->closed)
		return;
	c->lingering = true;
	c->reading = true;
	c->read_pending = evbuffer_get_length(c->in) > 0;
}

bool
conn_is_lingering(const struct conn *c)
{
	return c->lingering;
}

int
conn_starttls(struct conn *c, SSL *ssl, bool server)
{
	if (c->tls || c->tls_pending) {
		SSL_free(ssl);
		return -1;
	}
	/* Bytes after <starttls/> or <proceed/> are discarded. */
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	c->ssl = ssl;
	c->tls_pending = true;
	return 0;
}

struct evbuffer *
conn_input(struct conn *c)
{
	return c->in;
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
	size_t len = 0;

	if (c->closing || c->closed || c->lingering)
		return -1;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (c->out_len + len + 1 > c->out_size) {
		size_t size = (c->out_len + len + 1) * 2;
		char *p = realloc(c->out, size);

		if (p == NULL)
			return -1;
		c->out = p;
		c->out_size = size;
	}
	for (int i = 0; i < iovcnt; i++) {
		memcpy(c->out + c->out_len, iov[i].iov_base, iov[i].iov_len);
		c->out_len += iov[i].iov_len;
	}
	c->out[c->out_len] = '\0';
	c->bytes_out += len;
	if (c->stalled)
		c->unread += len;
	return 0;
}

bool
conn_is_congested(const struct conn *c)
{
	return c->congested;
}

size_t
conn_output_length(const struct conn *c)
{
	return c->unread;
}

void
conn_set_reading(struct conn *c, bool on)
{
	if (c->closing || c->closed || c->lingering)
		return;
	c->reading = on;
	/* Resuming runs the read callback from the loop. */
	c->read_pending = on && evbuffer_get_length(c->in) > 0;
}

int
conn_set_rate(struct conn *c, uint64_t rate, uint64_t burst)
{
	c->rate = rate;
	return 0;
}

bool
conn_is_tls(const struct conn *c)
{
	return c->tls;
}

SSL *
conn_ssl(const struct conn *c)
{
	return c->tls ? c->ssl : NULL;
}

const char *
conn_tls_description(const struct conn *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s", c->tls ? "TLSv1.3 FAKE_SUITE" : "");
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
	return -1;
}

const char *
conn_error(const struct conn *c)
{
	return c->error[0] != '\0' ? c->error : "connection failed";
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

/*
 * The runner's side.
 */

struct conn *
fake_conn_find(const char *name)
{
	for (size_t i = 0; i < nconns; i++)
		if (strcmp(conns[i]->name, name) == 0)
			return conns[i];
	return NULL;
}

struct conn *
fake_conn_at(size_t i)
{
	return i < nconns ? conns[i] : NULL;
}

struct conn *
fake_conn_unclaimed(void)
{
	for (size_t i = 0; i < nconns; i++)
		if (conns[i]->outgoing && conns[i]->name[0] == '\0')
			return conns[i];
	return NULL;
}

struct conn *
fake_conn_last_accepted(void)
{
	for (size_t i = nconns; i > 0; i--)
		if (conns[i - 1]->accepted)
			return conns[i - 1];
	return NULL;
}

void
fake_conn_set_name(struct conn *c, const char *name)
{
	snprintf(c->name, sizeof(c->name), "%s", name);
}

const char *
fake_conn_name(const struct conn *c)
{
	return c->name;
}

bool
fake_conn_is_direct_tls(const struct conn *c)
{
	return c->direct_tls;
}

const struct sockaddr *
fake_conn_target(const struct conn *c)
{
	return (const struct sockaddr *)&c->peer;
}

const char *
fake_conn_output(const struct conn *c, size_t *len)
{
	*len = c->out_len;
	return c->out != NULL ? c->out : "";
}

void
fake_conn_consume(struct conn *c, size_t len)
{
	memmove(c->out, c->out + len, c->out_len - len + 1);
	c->out_len -= len;
}

void
fake_conn_input(struct conn *c, const char *data, size_t len)
{
	evbuffer_add(c->in, data, len);
	c->bytes_in += len;
	if (c->reading && !c->closed && !c->closing && c->h != NULL)
		c->h->read(c, c->arg);
}

void
fake_conn_event(struct conn *c, enum conn_event ev)
{
	if (c->closed || c->h == NULL)
		return;
	if (ev == CONN_EV_EOF || ev == CONN_EV_ERROR) {
		if (c->error[0] == '\0')
			snprintf(c->error, sizeof(c->error), "%s",
			    ev == CONN_EV_EOF ? "connection closed by peer" :
			    "connection failed");
	}
	c->h->event(c, ev, c->arg);
}

void
fake_conn_set_error(struct conn *c, const char *text)
{
	snprintf(c->error, sizeof(c->error), "%s", text);
}

bool
fake_conn_tls_pending(const struct conn *c)
{
	return c->tls_pending && !c->closed;
}

void
fake_conn_tls_finish(struct conn *c, enum fake_cert cert, const char *names)
{
	c->tls_pending = false;
	c->tls = true;
	c->cert = cert;
	snprintf(c->cert_names, sizeof(c->cert_names), " %s ",
	    names != NULL ? names : "");
	/* An outgoing direct TLS conn connects and handshakes at once. */
	if (c->direct_tls && c->outgoing)
		fake_conn_event(c, CONN_EV_CONNECTED);
	if (!c->closed)
		fake_conn_event(c, CONN_EV_TLS_DONE);
}

bool
fake_conn_is_reading(const struct conn *c)
{
	return c->reading && !c->closing && !c->closed;
}

bool
fake_conn_is_closed(const struct conn *c)
{
	return c->closed || c->closing || c->lingering;
}

bool
fake_conn_is_readable(const struct conn *c)
{
	return !c->closed && !c->closing;
}

void
fake_conn_end_lingering(void)
{
	for (size_t i = 0; i < nconns; i++)
		if (conns[i]->lingering)
			fake_conn_event(conns[i], CONN_EV_EOF);
}

bool
fake_conn_run_one(void)
{
	for (size_t i = 0; i < nconns; i++) {
		struct conn *c = conns[i];

		if (c->read_pending) {
			c->read_pending = false;
			if (c->reading && c->h != NULL &&
			    evbuffer_get_length(c->in) > 0)
				c->h->read(c, c->arg);
			return true;
		}
		if (c->closing) {
			const struct conn_handler *h = c->h;

			c->closing = false;
			c->closed = true;
			c->h = NULL;
			h->event(c, CONN_EV_CLOSED, c->arg);
			return true;
		}
	}
	return false;
}

void
fake_conn_set_congested(struct conn *c, bool on)
{
	bool was = c->congested;

	c->congested = on;
	if (was && !on)
		fake_conn_event(c, CONN_EV_DRAINED);
}

void
fake_conn_set_stalled(struct conn *c, bool on)
{
	c->stalled = on;
	if (!on)
		c->unread = 0;
}

uint64_t
fake_conn_rate(const struct conn *c)
{
	return c->rate;
}

enum tls_peer_status
fake_conn_peer_check(SSL *ssl, const char *domain)
{
	char want[300];

	for (size_t i = 0; i < nconns; i++) {
		const struct conn *c = conns[i];

		if (c->ssl != ssl || !c->tls)
			continue;
		switch (c->cert) {
		case FAKE_CERT_NONE:
			return TLS_PEER_NONE;
		case FAKE_CERT_INVALID:
			return TLS_PEER_INVALID;
		case FAKE_CERT_VALID:
			snprintf(want, sizeof(want), " %s ", domain);
			return strstr(c->cert_names, want) != NULL ?
			    TLS_PEER_VALID : TLS_PEER_MISMATCH;
		}
	}
	return TLS_PEER_NONE;
}
