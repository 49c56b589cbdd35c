/*
 * fgbench: the load tool of fedgate's benchmark (bench/README.md).
 *
 * One process, one libevent loop, three roles on loopback:
 *   - the pump: remote servers rN.remote.example that connect to the relay
 *     under test and send stanzas. To fedgated: STARTTLS, then dialback
 *     with an XEP-0185 key; to HAProxy: direct TLS; to the sink itself
 *     ("direct", the latency baseline): plain TCP.
 *   - the sink: the internal server. It answers stream headers, offers
 *     dialback and XEP-0198, verifies fedgated's dialback key back through
 *     fedgated's internal face (as a real internal server does), answers
 *     <r/> with <a h/>, and checks the sequence number of every stanza:
 *     a stanza lost, duplicated or reordered ends the run with status 1.
 *   - the verify responder: rN.remote.example's authoritative server,
 *     which fedgated asks (db:verify) whether the pump's key is valid.
 *
 * The XML here is a framer for the bytes this benchmark sends and fedgated
 * renders, not a parser: no comments, CDATA or '>' inside attribute
 * values. fedgated does the real parsing; this tool must stay cheaper
 * than the relay it measures.
 *
 * Results go to stdout as one line of key=value pairs (bench/run reads
 * them); errors to stderr.
 */
#include "fgconfig.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#define NS_STREAM	"http://etherx.jabber.org/streams"
#define NS_DB		"jabber:server:dialback"
#define NS_TLS		"urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SM		"urn:xmpp:sm:3"
#define FILL_HIGH	(256 * 1024)	/* pump output kept below this */
#define FILL_LOW	(64 * 1024)	/* and refilled when under this */
#define MAX_SAMPLES	1000000

enum mode { M_THROUGHPUT, M_HANDSHAKE, M_MEMORY, M_LATENCY };
enum target { T_FEDGATED, T_HAPROXY, T_DIRECT };
enum role { R_PUMP, R_SINK, R_RESP, R_VERIFY };
enum pstate { P_CONNECT, P_HDR1, P_PROCEED, P_TLS, P_HDR2, P_DB, P_READY,
	P_CLOSING };
enum ev { E_HEADER, E_ELEMENT, E_END };

/* The framer's state for one incoming byte stream. */
struct scan {
	size_t	pos;		/* bytes of the input buffer examined */
	size_t	tag_start;	/* offset of the '<' of the open tag */
	size_t	elem_start;	/* offset of the depth-1 element's '<' */
	bool	in_tag;
	int	depth;
};

struct xconn {
	enum role		 role;
	int			 state;
	struct bufferevent	*bev;
	struct scan		 sc;
	int			 idx;		/* pump: its domain number */
	char			 remote[96];	/* the peer's domain */
	char			 sid[64];	/* the stream id in use */
	uint32_t		 sm_h;		/* sink: stanzas since enable */
	bool			 sm_on;
	struct xconn		*link;		/* sink <-> its verify conn */
	char			 key[160];	/* verify: the key to check */
};

static struct {
	enum mode	 mode;
	enum target	 target;
	int		 port, sink_port, resp_port, internal_port;
	int		 relay_pid[16];	/* the relay's processes */
	int		 nrelay;
	int		 size, conns, pairs, samples, window;
	double		 seconds;
	long		 count;			/* stanzas to send, or 0 */
	const char	*secret, *local, *internal, *suffix;
	bool		 trust;			/* sink: no verify back */
	bool		 debug;			/* $FGBENCH_DEBUG: trace */
	int		 timeout;

	struct event_base *base;
	SSL_CTX		*ctx;
	struct evconnlistener *sink_l, *resp_l;
	char		 db_secret[65];		/* hex SHA-256 of secret */

	/* per pump index */
	uint64_t	*sent, *expect;
	struct xconn	**pump;
	char		*stanza;		/* the template */
	char		*chunk;			/* stanzas for one write */
	size_t		 chunk_cap;
	size_t		 id_off;		/* where its id digits start */
	size_t		 dom_off;		/* and its from domain's */

	uint64_t	 total_sent, total_recv, ids;
	uint64_t	 sent0, recv0;		/* at the measure's start */

	/* --split: the sink and responder in a child process */
	bool		 split;
	pid_t		 child;			/* in the parent: the sink's */
	int		 pipe_fd;		/* sink -> pump: total_recv */
	struct event	*report_ev;		/* in the child: write it */
	bool		 report_pending;
	bool		 generating;
	int		 ready, opened, done, inflight;
	uint64_t	 cpu0, self0;
	double		 wall0;
	double		*lat;
	long		 nlat;
	uint64_t	 rss0;
	struct event	*timer;
	int		 phase;
} B = {
	.mode = M_THROUGHPUT, .target = T_FEDGATED, .size = 314, .conns = 4,
	.pairs = 5000, .samples = 2000, .window = 64, .seconds = 5,
	.secret = "bench-remote-secret-0123456789abcdef",
	.local = "corp.example", .internal = "corp.internal",
	.suffix = "remote.example", .timeout = 300,
};

static void pump_start(int idx);
static void phase_next(void);
static void sink_stanza(struct xconn *, const char *, size_t);

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fgbench: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* utime+stime of pid in clock ticks (all its threads). */
static uint64_t
cpu_ticks(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		die("%s: %s", path, strerror(errno));
	if (fgets(buf, sizeof(buf), f) == NULL)
		die("%s: empty", path);
	fclose(f);
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &ut, &st) != 2)
		die("%s: cannot parse", path);
	return ut + st;
}

/* A "Key:   N kB" line of /proc/pid/FILE, in kB. */
static uint64_t
proc_kb(int pid, const char *file, const char *key)
{
	char path[64], line[256];
	unsigned long long v = 0;
	size_t klen = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	if ((f = fopen(path, "r")) == NULL)
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtoull(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* The relay's CPU: the sum over its processes. */
static uint64_t
relay_ticks(void)
{
	uint64_t t = 0;

	for (int i = 0; i < B.nrelay; i++)
		t += cpu_ticks(B.relay_pid[i]);
	return t;
}

/* The relay's memory: the sum over its processes. */
static uint64_t
relay_kb(const char *file, const char *key)
{
	uint64_t kb = 0;

	for (int i = 0; i < B.nrelay; i++)
		kb += proc_kb(B.relay_pid[i], file, key);
	return kb;
}

static void
hexify(const unsigned char *d, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* XEP-0185: HMAC-SHA256 keyed with the hex SHA-256 of the secret. */
static void
db_key(const char *receiving, const char *originating, const char *sid,
    char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char msg[512];
	int n;

	n = snprintf(msg, sizeof(msg), "%s %s %s", receiving, originating, sid);
	HMAC(EVP_sha256(), B.db_secret, 64, (unsigned char *)msg, (size_t)n,
	    md, &mdlen);
	hexify(md, mdlen, out);
}

/*
 * The value of attribute name in the tag t[0..len), into out. Return 0,
 * or -1 if it is absent.
 */
static int
attr(const char *t, size_t len, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);

	for (size_t i = 1; i + nl + 2 < len; i++) {
		const char *e;
		char q;

		if ((t[i - 1] != ' ' && t[i - 1] != '\t' && t[i - 1] != '\n') ||
		    memcmp(t + i, name, nl) != 0 || t[i + nl] != '=')
			continue;
		q = t[i + nl + 1];
		if ((q != '\'' && q != '"') ||
		    (e = memchr(t + i + nl + 2, q, len - i - nl - 2)) == NULL)
			return -1;
		if ((size_t)(e - (t + i + nl + 2)) >= outsz)
			return -1;
		memcpy(out, t + i + nl + 2, (size_t)(e - (t + i + nl + 2)));
		out[e - (t + i + nl + 2)] = '\0';
		return 0;
	}
	return -1;
}

/* Whether the element e[0..len) has local name name ("db:result" ~ "result"). */
static bool
is_name(const char *e, size_t len, const char *name)
{
	size_t i = 1, s, nl = strlen(name);

	while (i < len && e[i] != ' ' && e[i] != '>' && e[i] != '/' &&
	    e[i] != '\t' && e[i] != '\n')
		i++;
	for (s = i; s > 1 && e[s - 1] != ':'; s--)
		;
	return i - s == nl && memcmp(e + s, name, nl) == 0;
}

/* The text between the start tag and the end tag of e, into out. */
static void
text_of(const char *e, size_t len, char *out, size_t outsz)
{
	const char *gt = memchr(e, '>', len), *lt;
	size_t n;

	out[0] = '\0';
	if (gt == NULL || gt[-1] == '/')
		return;
	for (lt = e + len - 1; lt > gt && *lt != '<'; lt--)
		;
	n = (size_t)(lt - gt - 1);
	if (lt <= gt || n >= outsz)
		return;
	memcpy(out, gt + 1, n);
	out[n] = '\0';
}

static bool
has(const char *e, size_t len, const char *needle)
{
	return memmem(e, len, needle, strlen(needle)) != NULL;
}

static void
xc_free(struct xconn *c)
{
	if (c == NULL)
		return;
	if (c->link != NULL)
		c->link->link = NULL;
	if (c->role == R_PUMP && B.pump[c->idx] == c)
		B.pump[c->idx] = NULL;
	bufferevent_free(c->bev);
	free(c);
}

static void
xc_send(struct xconn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

static void
open_stream(struct xconn *c, const char *from, const char *to, const char *id)
{
	xc_send(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
	    "xmlns:stream='" NS_STREAM "' xmlns:db='" NS_DB "' from='%s' "
	    "to='%s' version='1.0'%s%s%s>", from, to, id ? " id='" : "",
	    id ? id : "", id ? "'" : "");
}

/* -- events: what each role does with a header, element or stream end */

/*
 * Each role's handler of a header, an element or the stream's end: it
 * returns -1 if c is gone or its input was replaced (the framer stops),
 * else 0.
 */
static int pump_event(struct xconn *, enum ev, const char *, size_t);
static int sink_event(struct xconn *, enum ev, const char *, size_t);
static int resp_event(struct xconn *, enum ev, const char *, size_t);
static int verify_event(struct xconn *, enum ev, const char *, size_t);

static int
dispatch(struct xconn *c, enum ev ev, const char *p, size_t len)
{
	if (B.debug)
		fprintf(stderr, "fgbench: %s %d %s: %.*s\n",
		    (const char *[]){ "pump", "sink", "responder", "verify" }
		    [c->role], c->idx, (const char *[]){ "header", "element",
		    "end" }[ev], (int)(len < 300 ? len : 300), p ? p : "");
	switch (c->role) {
	case R_PUMP:
		return pump_event(c, ev, p, len);
	case R_SINK:
		return sink_event(c, ev, p, len);
	case R_RESP:
		return resp_event(c, ev, p, len);
	case R_VERIFY:
		return verify_event(c, ev, p, len);
	}
	return 0;
}

/* Frame c's input: find stream headers, depth-1 elements and the end. */
static void
xc_read(struct bufferevent *bev, void *arg)
{
	struct xconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct scan *s = &c->sc;
	size_t len = evbuffer_get_length(in), used;
	char *b;

	if (len == 0)
		return;
	b = (char *)evbuffer_pullup(in, -1);
	while (s->pos < len) {
		char *q;

		if (!s->in_tag) {
			if ((q = memchr(b + s->pos, '<', len - s->pos)) == NULL) {
				s->pos = len;
				break;
			}
			s->in_tag = true;
			s->tag_start = (size_t)(q - b);
			s->pos = s->tag_start + 1;
			continue;
		}
		if ((q = memchr(b + s->pos, '>', len - s->pos)) == NULL) {
			s->pos = len;
			break;
		}
		s->pos = (size_t)(q - b) + 1;
		s->in_tag = false;
		if (b[s->tag_start + 1] == '?')
			continue;
		if (b[s->tag_start + 1] == '/') {
			if (--s->depth == 1) {
				if (dispatch(c, E_ELEMENT, b + s->elem_start,
				    s->pos - s->elem_start) == -1)
					return;
			} else if (s->depth == 0) {
				dispatch(c, E_END, NULL, 0);
				return;
			}
			continue;
		}
		if (s->depth == 0) {
			s->depth = 1;
			if (dispatch(c, E_HEADER, b + s->tag_start,
			    s->pos - s->tag_start) == -1)
				return;
			continue;
		}
		if (s->depth == 1)
			s->elem_start = s->tag_start;
		if (q[-1] == '/') {
			if (s->depth == 1) {
				if (dispatch(c, E_ELEMENT, b + s->elem_start,
				    s->pos - s->elem_start) == -1)
					return;
			}
		} else
			s->depth++;
	}
	/* keep the unfinished element; offsets move with the drain */
	used = s->depth > 1 ? s->elem_start : s->in_tag ? s->tag_start : len;
	evbuffer_drain(in, used);
	s->pos -= used;
	s->tag_start -= s->in_tag ? used : 0;
	s->elem_start -= s->depth > 1 ? used : 0;
}

static void
xc_reset(struct xconn *c)
{
	memset(&c->sc, 0, sizeof(c->sc));
}

/* No Nagle; big reads and writes (libevent's default is 16 KiB). */
static void
sock_opts(struct bufferevent *bev)
{
	int one = 1;
	evutil_socket_t fd = bufferevent_getfd(bev);

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bufferevent_set_max_single_read(bev, 256 * 1024);
	bufferevent_set_max_single_write(bev, 256 * 1024);
}

static void xc_event(struct bufferevent *, short, void *);

static struct xconn *
xc_connect(enum role role, int port, SSL *ssl)
{
	struct xconn *c = calloc(1, sizeof(*c));
	struct sockaddr_in sin;

	if (c == NULL)
		die("out of memory");
	c->role = role;
	if (ssl != NULL)
		c->bev = bufferevent_openssl_socket_new(B.base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	else
		c->bev = bufferevent_socket_new(B.base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		die("bufferevent: out of memory");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bufferevent_setcb(c->bev, xc_read, NULL, xc_event, c);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin,
	    sizeof(sin)) == -1)
		die("connect to port %d: %s", port, strerror(errno));
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
}

/* -- the pump */

static SSL *
pump_ssl(void)
{
	SSL *ssl = SSL_new(B.ctx);

	if (ssl == NULL)
		die("SSL_new");
	SSL_set_tlsext_host_name(ssl, B.local);
	return ssl;
}

/* Write v in exactly w decimal digits at p (the pump's hot path). */
static void
put_digits(char *p, int w, uint64_t v)
{
	while (w-- > 0) {
		p[w] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* Parse exactly w decimal digits at p; -1 if one is not a digit. */
static int
get_digits(const char *p, int w, uint64_t *v)
{
	*v = 0;
	for (int i = 0; i < w; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (uint64_t)(p[i] - '0');
	}
	return 0;
}

/*
 * Write one stanza of pump c at dst (B.size bytes), its id "cIDX-SEQ-TNS":
 * the pump's index (also in its from domain), its sequence number and
 * the time it is sent.
 */
static void
pump_stanza_at(struct xconn *c, char *dst)
{
	char *id = dst + B.id_off;

	memcpy(dst, B.stanza, (size_t)B.size);
	put_digits(id, 5, (uint64_t)c->idx);
	put_digits(id + 6, 10, B.sent[c->idx]);
	put_digits(id + 17, 19, now_ns());
	memcpy(dst + B.dom_off, id, 5);		/* u@rIDX.suffix */
	B.sent[c->idx]++;
	B.total_sent++;
}

static bool
pump_may_send(void)
{
	return B.generating &&
	    (B.count == 0 || (long)(B.total_sent - B.sent0) < B.count);
}

/*
 * Keep c's output between FILL_LOW and FILL_HIGH while generating. The
 * stanzas go out in writes of about 16 KiB, so that the TLS records are
 * full ones, through either relay.
 */
static void
pump_fill(struct bufferevent *bev, void *arg)
{
	struct xconn *c = arg;
	struct evbuffer *out = bufferevent_get_output(bev);

	while (pump_may_send() && evbuffer_get_length(out) < FILL_HIGH) {
		size_t n = 0;

		while (n + (size_t)B.size <= B.chunk_cap && pump_may_send()) {
			pump_stanza_at(c, B.chunk + n);
			n += (size_t)B.size;
		}
		evbuffer_add(out, B.chunk, n);
	}
	if (B.generating && !pump_may_send())
		B.generating = false;
}

/* One stanza, now (handshakes, latency, each route's first). */
static void
pump_send(struct xconn *c)
{
	pump_stanza_at(c, B.chunk);
	evbuffer_add(bufferevent_get_output(c->bev), B.chunk, (size_t)B.size);
}

static void pump_ready(struct xconn *c);

static void
pump_closed(struct xconn *c)
{
	xc_free(c);
	B.inflight--;
	phase_next();
}

static int
pump_event(struct xconn *c, enum ev ev, const char *p, size_t len)
{
	char key[65], type[32];

	if (ev == E_END) {
		if (c->state != P_CLOSING)
			die("pump %d: the relay closed the stream", c->idx);
		pump_closed(c);
		return -1;
	}
	if (ev == E_ELEMENT && is_name(p, len, "error"))
		die("pump %d: stream error: %.*s", c->idx, (int)len, p);
	switch (c->state) {
	case P_HDR1:
	case P_HDR2:
		if (ev == E_HEADER) {
			if (attr(p, len, "id", c->sid, sizeof(c->sid)) == -1)
				c->sid[0] = '\0';
			return 0;
		}
		if (!is_name(p, len, "features"))
			return 0;
		if (B.target != T_FEDGATED) {
			pump_ready(c);
		} else if (c->state == P_HDR1) {
			if (!has(p, len, "starttls"))
				die("pump %d: no STARTTLS offered", c->idx);
			xc_send(c, "<starttls xmlns='" NS_TLS "'/>");
			c->state = P_PROCEED;
		} else {
			db_key(B.local, c->remote, c->sid, key);
			xc_send(c, "<db:result from='%s' to='%s'>%s</db:result>",
			    c->remote, B.local, key);
			c->state = P_DB;
		}
		return 0;
	case P_PROCEED: {
		struct bufferevent *tls;
		evutil_socket_t fd;

		if (!is_name(p, len, "proceed"))
			die("pump %d: STARTTLS refused", c->idx);
		/* the socket moves to a TLS bufferevent (not a filter: the
		 * pump's refill needs the socket's own output buffer) */
		fd = bufferevent_getfd(c->bev);
		bufferevent_setfd(c->bev, -1);
		bufferevent_free(c->bev);
		xc_reset(c);
		tls = bufferevent_openssl_socket_new(B.base, fd, pump_ssl(),
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (tls == NULL)
			die("pump %d: cannot start TLS", c->idx);
		c->bev = tls;
		bufferevent_setcb(tls, xc_read, NULL, xc_event, c);
		bufferevent_enable(tls, EV_READ | EV_WRITE);
		c->state = P_TLS;
		return -1;
	}
	case P_DB:
		if (!is_name(p, len, "result"))
			return 0;
		if (attr(p, len, "type", type, sizeof(type)) == -1 ||
		    strcmp(type, "valid") != 0)
			die("pump %d: dialback refused: %.*s", c->idx, (int)len,
			    p);
		pump_ready(c);
		return 0;
	default:
		return 0;
	}
}

static void
pump_header(struct xconn *c)
{
	open_stream(c, c->remote, B.local, NULL);
}

static void
pump_start(int idx)
{
	struct xconn *c;

	c = xc_connect(R_PUMP, B.port,
	    B.target == T_HAPROXY ? pump_ssl() : NULL);
	c->idx = idx;
	snprintf(c->remote, sizeof(c->remote), "r%05d.%s", idx, B.suffix);
	c->state = P_CONNECT;
	B.pump[idx] = c;
	B.inflight++;
	B.opened++;
}

/* -- the sink */

static void
sink_ready_answer(struct xconn *s, const char *type)
{
	xc_send(s, "<db:result from='%s' to='%s' type='%s'/>", B.internal,
	    s->remote, type);
}

static int
sink_event(struct xconn *c, enum ev ev, const char *p, size_t len)
{
	if (ev == E_END) {
		xc_free(c);
		return -1;
	}
	if (ev == E_HEADER) {
		char to[96];

		if (attr(p, len, "from", c->remote, sizeof(c->remote)) == -1)
			c->remote[0] = '\0';
		if (attr(p, len, "to", to, sizeof(to)) == -1)
			to[0] = '\0';
		snprintf(c->sid, sizeof(c->sid), "sink-%" PRIu64, ++B.ids);
		open_stream(c, to, c->remote, c->sid);
		xc_send(c, "<stream:features><dialback xmlns='urn:xmpp:"
		    "features:dialback'/><sm xmlns='" NS_SM "'/>"
		    "</stream:features>");
		return 0;
	}
	if (len > 8 && memcmp(p, "<message", 8) == 0) {
		sink_stanza(c, p, len);
		return 0;
	}
	if (is_name(p, len, "r")) {
		xc_send(c, "<a xmlns='" NS_SM "' h='%" PRIu32 "'/>", c->sm_h);
	} else if (is_name(p, len, "enable")) {
		c->sm_on = true;
		c->sm_h = 0;
		xc_send(c, "<enabled xmlns='" NS_SM "'/>");
	} else if (is_name(p, len, "result")) {
		struct xconn *v;
		char frm[96];

		if (attr(p, len, "from", frm, sizeof(frm)) == 0)
			snprintf(c->remote, sizeof(c->remote), "%s", frm);
		if (B.trust) {
			sink_ready_answer(c, "valid");
			return 0;
		}
		v = xc_connect(R_VERIFY, B.internal_port, NULL);
		text_of(p, len, v->key, sizeof(v->key));
		snprintf(v->remote, sizeof(v->remote), "%s", c->remote);
		snprintf(v->sid, sizeof(v->sid), "%s", c->sid);
		v->link = c;
		c->link = v;
	} else if (is_name(p, len, "error")) {
		die("sink: stream error from the relay: %.*s", (int)len, p);
	}
	return 0;
}

/* Check a stanza's id "cIDX-SEQ-TNS" against what its pump has sent. */
static void
sink_stanza(struct xconn *c, const char *p, size_t len)
{
	const char *id = memmem(p, len < 400 ? len : 400, " id=", 4);
	uint64_t idx, seq, t;

	if (c->sm_on)
		c->sm_h++;
	if (id == NULL || (size_t)(id - p) + 42 > len || id[5] != 'c' ||
	    get_digits(id + 6, 5, &idx) == -1 ||
	    get_digits(id + 12, 10, &seq) == -1 ||
	    get_digits(id + 23, 19, &t) == -1 || idx >= (uint64_t)B.pairs)
		die("sink: a stanza without a valid id: %.*s", (int)(len < 200 ?
		    len : 200), p);
	if (seq != B.expect[idx])
		die("sink: stream %" PRIu64 ": stanza %" PRIu64 " arrived, %"
		    PRIu64 " expected (lost, duplicated or reordered)", idx, seq,
		    B.expect[idx]);
	B.expect[idx]++;
	B.total_recv++;
	if (B.pipe_fd >= 0 && B.child == 0) {
		/* the sink process: tell the pump, once per loop turn */
		if (!B.report_pending)
			event_active(B.report_ev, EV_WRITE, 0);
		B.report_pending = true;
		return;
	}
	if (B.mode == M_LATENCY && B.phase == 2 && B.nlat < MAX_SAMPLES)
		B.lat[B.nlat++] = (double)(now_ns() - t) / 1000.0;
	phase_next();
	if (B.mode != M_THROUGHPUT && B.pump[idx] != NULL &&
	    B.pump[idx]->state == P_READY && B.sent[idx] == B.expect[idx]) {
		/* the pump waits for its stanza: hand back */
		struct xconn *pc = B.pump[idx];

		if (B.mode == M_HANDSHAKE && B.phase == 2) {
			xc_send(pc, "</stream:stream>");
			pc->state = P_CLOSING;
		} else if (B.mode == M_LATENCY && B.phase == 2 &&
		    B.nlat < B.samples) {
			pump_send(pc);
		}
	}
}

/* -- the verify responder (rN.remote.example's authoritative server) */

static int
resp_event(struct xconn *c, enum ev ev, const char *p, size_t len)
{
	char from[96], to[96], id[96], key[160], want[65];

	if (ev == E_END) {
		xc_free(c);
		return -1;
	}
	if (ev == E_HEADER) {
		if (attr(p, len, "to", c->remote, sizeof(c->remote)) == -1 ||
		    attr(p, len, "from", from, sizeof(from)) == -1)
			die("responder: a header without from or to");
		snprintf(c->sid, sizeof(c->sid), "resp-%" PRIu64, ++B.ids);
		open_stream(c, c->remote, from, c->sid);
		xc_send(c, "<stream:features><dialback xmlns='urn:xmpp:"
		    "features:dialback'/></stream:features>");
		return 0;
	}
	if (!is_name(p, len, "verify"))
		die("responder: expected db:verify: %.*s", (int)len, p);
	if (attr(p, len, "from", from, sizeof(from)) == -1 ||
	    attr(p, len, "to", to, sizeof(to)) == -1 ||
	    attr(p, len, "id", id, sizeof(id)) == -1)
		die("responder: a db:verify without from, to or id");
	text_of(p, len, key, sizeof(key));
	db_key(from, to, id, want);
	if (strcmp(key, want) != 0)
		die("responder: the key of %s for %s is not the pump's", to,
		    from);
	xc_send(c, "<db:verify from='%s' to='%s' id='%s' type='valid'/>", to,
	    from, id);
	return 0;
}

/* -- the sink's verification through fedgated's internal face */

static int
verify_event(struct xconn *c, enum ev ev, const char *p, size_t len)
{
	char type[32];

	if (ev == E_HEADER)
		return 0;
	if (ev == E_ELEMENT && is_name(p, len, "features")) {
		xc_send(c, "<db:verify from='%s' to='%s' id='%s'>%s</db:verify>",
		    B.internal, c->remote, c->sid, c->key);
		return 0;
	}
	if (ev != E_ELEMENT || !is_name(p, len, "verify"))
		die("sink: verifying %s: unexpected %.*s", c->remote,
		    (int)len, p);
	if (attr(p, len, "type", type, sizeof(type)) == -1 ||
	    strcmp(type, "valid") != 0)
		die("sink: fedgated says its key for %s is not valid",
		    c->remote);
	if (c->link != NULL)
		sink_ready_answer(c->link, "valid");
	xc_free(c);
	return -1;
}

/* -- connections: events, accepting */

static void
xc_event(struct bufferevent *bev, short what, void *arg)
{
	struct xconn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		sock_opts(bev);
		if (c->role == R_VERIFY) {
			open_stream(c, B.internal, c->remote, NULL);
		} else if (c->role == R_PUMP && c->state == P_CONNECT) {
			pump_header(c);
			c->state = B.target == T_FEDGATED ? P_HDR1 : P_HDR2;
		} else if (c->role == R_PUMP && c->state == P_TLS) {
			pump_header(c);
			c->state = P_HDR2;
		}
		return;
	}
	if (c->role == R_PUMP && c->state == P_CLOSING) {
		pump_closed(c);
		return;
	}
	if (c->role == R_SINK || c->role == R_RESP) {
		/* the relay closed it: normal for idle or verify legs */
		xc_free(c);
		return;
	}
	{
		unsigned long e = bufferevent_get_openssl_error(bev);
		char buf[256] = "";

		if (e != 0)
			ERR_error_string_n(e, buf, sizeof(buf));
		die("%s %d: connection %s %s %s",
		    c->role == R_PUMP ? "pump" : "sink's verify", c->idx,
		    what & BEV_EVENT_EOF ? "closed" : "failed",
		    what & BEV_EVENT_ERROR ? strerror(EVUTIL_SOCKET_ERROR()) :
		    "", buf);
	}
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct xconn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		die("out of memory");
	c->role = (enum role)(intptr_t)arg;
	if ((c->bev = bufferevent_socket_new(B.base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		die("bufferevent: out of memory");
	sock_opts(c->bev);
	bufferevent_setcb(c->bev, xc_read, NULL, xc_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static struct evconnlistener *
listen_on(int port, enum role role)
{
	struct sockaddr_in sin;
	struct evconnlistener *l;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = evconnlistener_new_bind(B.base, accept_cb, (void *)(intptr_t)role,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL)
		die("listen on 127.0.0.1 port %d: %s", port, strerror(errno));
	return l;
}

/* -- the phases of each mode */

static void
result(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static void
mark_start(void)
{
	B.cpu0 = relay_ticks();
	B.self0 = cpu_ticks(getpid()) + (B.child > 0 ? cpu_ticks(B.child) : 0);
	B.wall0 = now();
}

static void
print_cpu(void)
{
	double tck = (double)sysconf(_SC_CLK_TCK);
	double wall = now() - B.wall0;

	result(" wall=%.3f relay_cpu=%.3f tool_cpu=%.3f", wall,
	    (relay_ticks() - B.cpu0) / tck,
	    (cpu_ticks(getpid()) + (B.child > 0 ? cpu_ticks(B.child) : 0) -
	    B.self0) / tck);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void
finish(void)
{
	result("\n");
	fflush(stdout);
	event_base_loopbreak(B.base);
}

static void
stop_generating(evutil_socket_t fd, short what, void *arg)
{
	B.generating = false;
	phase_next();
}

static void
settled(evutil_socket_t fd, short what, void *arg)
{
	uint64_t rss = relay_kb("status", "VmRSS");
	uint64_t pss = relay_kb("smaps_rollup", "Pss");

	result("mode=memory pairs=%d rss0_kb=%" PRIu64 " rss_kb=%" PRIu64
	    " pss_kb=%" PRIu64 " kb_per_pair=%.2f", B.pairs, B.rss0, rss, pss,
	    (double)(rss - B.rss0) / B.pairs);
	finish();
}

static void
pump_ready(struct xconn *c)
{
	c->state = P_READY;
	B.ready++;
	if (B.mode == M_HANDSHAKE && B.phase == 2)
		B.done++;
	pump_send(c);		/* the first stanza opens the relay's leg */
}

static void
throughput_next(void)
{
	if (B.phase == 0) {
		for (int i = 0; i < B.conns; i++)
			pump_start(i);
		B.phase = 1;
	} else if (B.phase == 1 && B.total_recv == (uint64_t)B.conns) {
		/* every route is open: measure from here */
		struct timeval tv = { (time_t)B.seconds,
		    (suseconds_t)((B.seconds - (time_t)B.seconds) * 1e6) };

		B.phase = 2;
		B.generating = true;
		mark_start();
		B.sent0 = B.total_sent;
		B.recv0 = B.total_recv;
		for (int i = 0; i < B.conns; i++) {
			struct xconn *c = B.pump[i];

			bufferevent_setwatermark(c->bev, EV_WRITE, FILL_LOW, 0);
			bufferevent_setcb(c->bev, xc_read, pump_fill, xc_event,
			    c);
			pump_fill(c->bev, c);
		}
		if (B.count == 0)
			event_base_once(B.base, -1, EV_TIMEOUT, stop_generating,
			    NULL, &tv);
	} else if (B.phase == 2 && !B.generating &&
	    B.total_recv == B.total_sent) {
		B.phase = 3;
		result("mode=throughput target=%d size=%d conns=%d stanzas=%"
		    PRIu64 " bytes=%" PRIu64, B.target, B.size, B.conns,
		    B.total_recv - B.recv0,
		    (B.total_recv - B.recv0) * (uint64_t)B.size);
		print_cpu();
		finish();
	}
}

static void
handshake_next(void)
{
	if (B.phase == 0) {
		for (int i = 0; i < B.conns; i++)
			pump_start(i);
		B.phase = 1;
	} else if (B.phase == 1 && B.total_recv == (uint64_t)B.conns) {
		struct timeval tv = { (time_t)B.seconds,
		    (suseconds_t)((B.seconds - (time_t)B.seconds) * 1e6) };

		/* warm: each domain's route exists; close the first streams */
		B.phase = 2;
		for (int i = 0; i < B.conns; i++) {
			xc_send(B.pump[i], "</stream:stream>");
			B.pump[i]->state = P_CLOSING;
		}
		B.generating = true;
		mark_start();
		event_base_once(B.base, -1, EV_TIMEOUT, stop_generating, NULL,
		    &tv);
	} else if (B.phase == 2) {
		for (int i = 0; i < B.conns && B.generating; i++)
			if (B.pump[i] == NULL)
				pump_start(i);
		if (!B.generating && B.inflight == 0) {
			B.phase = 3;
			result("mode=handshake target=%d conns=%d streams=%d",
			    B.target, B.conns, B.done);
			print_cpu();
			finish();
		}
	}
}

static void
memory_next(void)
{
	if (B.phase == 0) {
		B.rss0 = relay_kb("status", "VmRSS");
		B.phase = 1;
		mark_start();
	}
	if (B.phase == 1) {
		while (B.opened < B.pairs &&
		    B.opened - (int)B.total_recv < B.window)
			pump_start(B.opened);
		if (B.total_recv == (uint64_t)B.pairs) {
			struct timeval tv = { 2, 0 };

			B.phase = 2;
			event_base_once(B.base, -1, EV_TIMEOUT, settled, NULL,
			    &tv);
		}
	}
}

static void
latency_next(void)
{
	if (B.phase == 0) {
		pump_start(0);
		B.phase = 1;
	} else if (B.phase == 1 && B.total_recv == 1) {
		B.phase = 2;
		pump_send(B.pump[0]);
	} else if (B.phase == 2 && B.nlat >= B.samples) {
		B.phase = 3;
		qsort(B.lat, (size_t)B.nlat, sizeof(double), cmp_double);
		result("mode=latency target=%d samples=%ld p50_us=%.1f "
		    "p99_us=%.1f max_us=%.1f", B.target, B.nlat,
		    B.lat[B.nlat / 2], B.lat[(B.nlat * 99) / 100],
		    B.lat[B.nlat - 1]);
		finish();
	}
}

static void
phase_next(void)
{
	switch (B.mode) {
	case M_THROUGHPUT:
		throughput_next();
		break;
	case M_HANDSHAKE:
		handshake_next();
		break;
	case M_MEMORY:
		memory_next();
		break;
	case M_LATENCY:
		latency_next();
		break;
	}
}

static void
watchdog(evutil_socket_t fd, short what, void *arg)
{
	die("no result after %d s (phase %d, sent %" PRIu64 ", received %"
	    PRIu64 ", ready %d)", B.timeout, B.phase, B.total_sent,
	    B.total_recv, B.ready);
}

/* The stanza template: B.size bytes, its id at B.id_off. */
static void
make_template(void)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head), "<message from='u@r00000.%s' "
	    "to='bob@%s' type='chat' id='c%036d'><body>", B.suffix, B.local, 0);
	if (n + 17 > B.size)
		die("--size %d is below the smallest stanza (%d)", B.size,
		    n + 17);
	if ((B.stanza = malloc((size_t)B.size + 1)) == NULL)
		die("out of memory");
	memcpy(B.stanza, head, (size_t)n);
	memset(B.stanza + n, 'x', (size_t)(B.size - n - 17));
	memcpy(B.stanza + B.size - 17, "</body></message>", 17);
	B.stanza[B.size] = '\0';
	B.chunk_cap = (size_t)(B.size < 16384 ? 16384 / B.size : 1) *
	    (size_t)B.size;
	if ((B.chunk = malloc(B.chunk_cap)) == NULL)
		die("out of memory");
	B.id_off = (size_t)(strstr(B.stanza, "id='c") - B.stanza) + 5;
	B.dom_off = (size_t)(strstr(B.stanza, "@r") - B.stanza) + 2;
}

/* The sink process: write its count of stanzas received to the pump. */
static void
report_recv(evutil_socket_t fd, short what, void *arg)
{
	B.report_pending = false;
	if (write(B.pipe_fd, &B.total_recv, sizeof(B.total_recv)) !=
	    sizeof(B.total_recv))
		die("sink: the pump is gone");
}

/* The pump process: the sink's latest count. */
static void
read_recv(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v[64];
	ssize_t n = read(fd, v, sizeof(v));

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || n % (ssize_t)sizeof(v[0]) != 0)
		die("the sink process ended (see its message above)");
	B.total_recv = v[n / (ssize_t)sizeof(v[0]) - 1];
	phase_next();
}

/*
 * --split: fork the sink and the responder into a child process, so that
 * the load uses two cores; the child reports its count through a pipe
 * (blocking writes of 8 bytes: atomic, and back-pressure if the pump
 * lags). The child ends with its parent (PR_SET_PDEATHSIG) or when
 * killed at the end.
 */
static void
split(void)
{
	int fds[2];
	pid_t parent = getpid();

	if (pipe(fds) == -1)
		die("pipe: %s", strerror(errno));
	if ((B.child = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (B.child == 0) {
		close(fds[0]);
		B.pipe_fd = fds[1];
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			exit(1);
		return;
	}
	close(fds[1]);
	B.pipe_fd = fds[0];
}

static void
usage(void)
{
	fprintf(stderr, "usage: fgbench --mode throughput|handshake|memory|"
	    "latency --target fedgated|haproxy|direct --port P --sink-port P\n"
	    "\t[--responder-port P --internal-port P] [--relay-pid PID]...\n"
	    "\t[--size BYTES] [--conns N] [--seconds S] [--count N]\n"
	    "\t[--pairs N] [--window N] [--samples N] [--trust] [--split]\n"
	    "\t[--timeout S]\n");
	exit(2);
}

static void
parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "target", required_argument, NULL, 't' },
		{ "port", required_argument, NULL, 'p' },
		{ "sink-port", required_argument, NULL, 's' },
		{ "responder-port", required_argument, NULL, 'r' },
		{ "internal-port", required_argument, NULL, 'i' },
		{ "relay-pid", required_argument, NULL, 'P' },
		{ "size", required_argument, NULL, 'z' },
		{ "conns", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "count", required_argument, NULL, 'n' },
		{ "pairs", required_argument, NULL, 'a' },
		{ "window", required_argument, NULL, 'w' },
		{ "samples", required_argument, NULL, 'l' },
		{ "trust", no_argument, NULL, 'T' },
		{ "split", no_argument, NULL, 'X' },
		{ "timeout", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (strcmp(optarg, "throughput") == 0)
				B.mode = M_THROUGHPUT;
			else if (strcmp(optarg, "handshake") == 0)
				B.mode = M_HANDSHAKE;
			else if (strcmp(optarg, "memory") == 0)
				B.mode = M_MEMORY;
			else if (strcmp(optarg, "latency") == 0)
				B.mode = M_LATENCY;
			else
				usage();
			break;
		case 't':
			if (strcmp(optarg, "fedgated") == 0)
				B.target = T_FEDGATED;
			else if (strcmp(optarg, "haproxy") == 0)
				B.target = T_HAPROXY;
			else if (strcmp(optarg, "direct") == 0)
				B.target = T_DIRECT;
			else
				usage();
			break;
		case 'p': B.port = atoi(optarg); break;
		case 's': B.sink_port = atoi(optarg); break;
		case 'r': B.resp_port = atoi(optarg); break;
		case 'i': B.internal_port = atoi(optarg); break;
		case 'P':
			if (B.nrelay == (int)(sizeof(B.relay_pid) /
			    sizeof(B.relay_pid[0])))
				usage();
			B.relay_pid[B.nrelay++] = atoi(optarg);
			break;
		case 'z': B.size = atoi(optarg); break;
		case 'c': B.conns = atoi(optarg); break;
		case 'S': B.seconds = atof(optarg); break;
		case 'n': B.count = atol(optarg); break;
		case 'a': B.pairs = atoi(optarg); break;
		case 'w': B.window = atoi(optarg); break;
		case 'l': B.samples = atoi(optarg); break;
		case 'T': B.trust = true; break;
		case 'X': B.split = true; break;
		case 'o': B.timeout = atoi(optarg); break;
		default: usage();
		}
	}
	if (B.port <= 0 || B.sink_port <= 0 || B.conns < 1 ||
	    B.conns > 99999 || B.pairs < 1 || B.pairs > 99999 ||
	    B.samples < 1 || B.samples > MAX_SAMPLES || B.seconds <= 0 ||
	    B.window < 1)
		usage();
	if (B.target == T_FEDGATED && (B.resp_port <= 0 ||
	    (!B.trust && B.internal_port <= 0)))
		usage();
	if (B.mode == M_MEMORY && B.nrelay == 0)
		usage();
	if (B.mode != M_MEMORY)
		B.pairs = B.conns;
	if (B.split && B.mode != M_THROUGHPUT)
		usage();
}

int
main(int argc, char **argv)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	struct timeval tv;
	struct event *wd;

	parse_args(argc, argv);
	B.debug = getenv("FGBENCH_DEBUG") != NULL;
	setvbuf(stdout, NULL, _IOLBF, 0);
	EVP_Digest(B.secret, strlen(B.secret), md, &mdlen, EVP_sha256(), NULL);
	hexify(md, mdlen, B.db_secret);
	make_template();
	if ((B.ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		die("SSL_CTX_new");
	SSL_CTX_set_verify(B.ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(B.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(B.ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(B.ctx, SSL_MODE_RELEASE_BUFFERS);
	B.pipe_fd = -1;
	if (B.split)
		split();
	if ((B.base = event_base_new()) == NULL)
		die("event_base_new");
	B.sent = calloc((size_t)B.pairs, sizeof(*B.sent));
	B.expect = calloc((size_t)B.pairs, sizeof(*B.expect));
	B.pump = calloc((size_t)B.pairs, sizeof(*B.pump));
	B.lat = B.mode == M_LATENCY ? calloc((size_t)B.samples,
	    sizeof(double)) : NULL;
	if (B.sent == NULL || B.expect == NULL || B.pump == NULL ||
	    (B.mode == M_LATENCY && B.lat == NULL))
		die("out of memory");
	if (!B.split || B.child == 0) {
		B.sink_l = listen_on(B.sink_port, R_SINK);
		if (B.resp_port > 0)
			B.resp_l = listen_on(B.resp_port, R_RESP);
	}
	if (B.split && B.child == 0) {
		uint64_t zero = 0;

		/* the sink process: listening; reports until killed */
		B.report_ev = event_new(B.base, -1, 0, report_recv, NULL);
		if (write(B.pipe_fd, &zero, sizeof(zero)) != sizeof(zero))
			die("sink: cannot write to the pump");
		event_base_dispatch(B.base);
		return 0;
	}
	if (B.split) {
		uint64_t v;

		/* wait for the sink's listeners (bounded: SIGALRM) */
		alarm((unsigned)B.timeout);
		if (read(B.pipe_fd, &v, sizeof(v)) != sizeof(v))
			die("the sink process did not start");
		alarm(0);
		evutil_make_socket_nonblocking(B.pipe_fd);
		event_add(event_new(B.base, B.pipe_fd, EV_READ | EV_PERSIST,
		    read_recv, NULL), NULL);
	}
	tv.tv_sec = B.timeout;
	tv.tv_usec = 0;
	wd = evtimer_new(B.base, watchdog, NULL);
	evtimer_add(wd, &tv);
	phase_next();
	event_base_dispatch(B.base);
	if (B.child > 0) {
		kill(B.child, SIGTERM);
		waitpid(B.child, NULL, 0);
	}
	return 0;
}
