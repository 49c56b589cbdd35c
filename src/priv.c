/*
 * priv: the privileged parent and the relay's end of the socketpair. The
 * process model is in priv.h, the message format in priv_msg.c and
 * doc/internals/privsep.md.
 */
#include "fgconfig.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bundle.h"
#include "config.h"
#include "log.h"
#include "priv.h"
#include "tls.h"
#include "util.h"

/* The relay's end. */
struct priv {
	struct event	*ev;		/* EV_READ on fd while idle: EOF */
	struct event	*lost_ev;	/* calls lost() from the loop */
	int		 fd;
	uint32_t	 seq;		/* of the last request */
	bool		 gone;		/* the channel is unusable */
	void		(*lost)(void *);
	void		*arg;
};

/* The parent: one relay (worker) and its channel. */
struct priv_child {
	struct priv_parent	*pp;
	struct bufferevent	*bev;		/* NULL once closed */
	pid_t			 pid;		/* -1 once reaped */
	unsigned		 index;		/* the worker's number, from 0 */
};

/* The parent. */
struct priv_parent {
	struct event_base	*base;
	struct priv_child	*children;
	unsigned		 nchildren;
	unsigned		 alive;		/* not reaped yet */
	bool			 stopping;	/* told to stop, or one ended */
	const char		*config_path;
	int			 status;	/* ours: see priv_parent_reap() */
};

static const int priv_signals[] = { SIGHUP, SIGTERM, SIGINT, SIGCHLD };

pid_t
priv_fork(int *fd)
{
	int sp[2], saved;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		return -1;
	if ((pid = fork()) == -1) {
		saved = errno;
		close(sp[0]);
		close(sp[1]);
		errno = saved;
		return -1;
	}
	if (pid == 0) {
		close(sp[0]);
		*fd = sp[1];
		return 0;
	}
	close(sp[1]);
	*fd = sp[0];
	return pid;
}

/* The parent */

/* An evbuffer reference's cleanup; also frees what could not be added. */
static void
priv_zero_free(const void *data, size_t len, void *extra)
{
	void *p = (void *)(uintptr_t)data;	/* ours: malloc'd */

	explicit_bzero(p, len);
	free(p);
}

/* Queue a message to the relay; payload (malloc'd) is taken over. */
static void
priv_parent_send(struct priv_child *pc, uint32_t type, uint32_t seq,
    uint8_t *payload, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(pc->bev);
	uint8_t hdr[PRIV_HEADER_LEN];

	priv_msg_header(hdr, type, seq, len);
	if (evbuffer_add(out, hdr, sizeof(hdr)) == -1 || (len > 0 &&
	    evbuffer_add_reference(out, payload, len, priv_zero_free,
	    NULL) == -1)) {
		log_warnx("priv: cannot answer the relay: out of memory");
		priv_zero_free(payload, len, NULL);
	}
}

/* Answer a RELOAD with the errors text of the configuration. */
static void
priv_parent_send_error(struct priv_child *pc, uint32_t seq,
    const char *errors)
{
	size_t len;
	uint8_t *text;

	if (errors == NULL || *errors == '\0')
		errors = "configuration error\n";
	len = strlen(errors);
	if (len > PRIV_ERROR_MAX) {
		len = PRIV_ERROR_MAX;
		while (len > 1 && errors[len - 1] != '\n')
			len--;
	}
	if ((text = malloc(len)) == NULL) {
		log_warnx("priv: cannot answer the relay: out of memory");
		return;
	}
	memcpy(text, errors, len);
	priv_parent_send(pc, PRIV_ERROR, seq, text, len);
}

/* Add to b what reading path gives (certificates, keys, CA file). */
static void
priv_parent_add(struct bundle *b, const char *path)
{
	char *buf;
	size_t len;
	mode_t mode;

	if (path == NULL)
		return;
	if (bundle_read(b, path, TLS_FILE_MAX, &buf, &len, &mode) == 0 &&
	    buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
}

/*
 * RELOAD: parse the configuration as the parent, and answer with every
 * file that parse read and every certificate, key and CA file it names:
 * the relay cannot name a file itself.
 */
static void
priv_parent_reload(struct priv_child *pc, uint32_t seq)
{
	struct priv_parent *pp = pc->pp;
	const struct config_domain *dom;
	struct bundle *b;
	struct config *c;
	char *errors = NULL;
	uint8_t *buf;
	size_t len;

	log_debug("priv: reading %s for relay %u", pp->config_path,
	    pc->index);
	if ((b = bundle_new(true)) == NULL) {
		priv_parent_send_error(pc, seq, "reload refused: out of memory");
		return;
	}
	if ((c = config_load_bundle(pp->config_path, b, &errors)) == NULL) {
		priv_parent_send_error(pc, seq, errors);
		free(errors);
		bundle_free(b);
		return;
	}
	free(errors);
	TAILQ_FOREACH(dom, &c->domains, entry) {
		priv_parent_add(b, dom->certificate);
		priv_parent_add(b, dom->key);
		for (size_t i = 0; i < dom->nmore_certificates; i++)
			priv_parent_add(b, dom->more_certificates[i]);
		for (size_t i = 0; i < dom->nmore_keys; i++)
			priv_parent_add(b, dom->more_keys[i]);
	}
	priv_parent_add(b, c->ca_file);
	config_unref(c);
	if (priv_bundle_encode(b, &buf, &len) == -1)
		priv_parent_send_error(pc, seq, "reload refused: the files of "
		    "the configuration exceed 16 MiB in all");
	else
		priv_parent_send(pc, PRIV_BUNDLE, seq, buf, len);
	bundle_free(b);
}

static void
priv_parent_close(struct priv_child *pc)
{
	if (pc->bev != NULL) {
		bufferevent_free(pc->bev);
		pc->bev = NULL;
	}
}

/* Send sig to every relay still running. */
static void
priv_parent_kill_all(struct priv_parent *pp, int sig)
{
	for (unsigned i = 0; i < pp->nchildren; i++)
		if (pp->children[i].pid != -1 &&
		    kill(pp->children[i].pid, sig) == -1)
			log_warn("priv: cannot signal relay %u", i);
}

/* The relay broke the protocol: no more answers; stop it. */
static void
priv_parent_violation(struct priv_child *pc, const char *why)
{
	log_warnx("priv: relay %u broke the protocol (%s): stopping it",
	    pc->index, why);
	priv_parent_close(pc);
	if (pc->pid != -1)
		kill(pc->pid, SIGTERM);
}

static void
priv_parent_read(struct bufferevent *bev, void *arg)
{
	struct priv_child *pc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct priv_msg msg;
	char err[128];
	size_t need;

	while (pc->bev != NULL &&
	    evbuffer_get_length(in) >= PRIV_HEADER_LEN) {
		/* the relay only sends requests without payload */
		switch (priv_msg_decode(evbuffer_pullup(in, PRIV_HEADER_LEN),
		    PRIV_HEADER_LEN, &msg, &need, err, sizeof(err))) {
		case PRIV_DECODE_ERROR:
			priv_parent_violation(pc, err);
			return;
		case PRIV_DECODE_MORE:
			priv_parent_violation(pc, "a request with a payload");
			return;
		case PRIV_DECODE_OK:
			break;
		}
		evbuffer_drain(in, need);
		if (msg.type != PRIV_RELOAD) {
			priv_parent_violation(pc, "not a request");
			return;
		}
		priv_parent_reload(pc, msg.seq);
	}
}

static void
priv_parent_event(struct bufferevent *bev, short what, void *arg)
{
	struct priv_child *pc = arg;

	if (what & BEV_EVENT_ERROR)
		log_warn("priv: channel to relay %u", pc->index);
	/* the relay is leaving: its exit status comes with SIGCHLD */
	priv_parent_close(pc);
}

/* How relay pc ended (st from waitpid()), as an exit status for us. */
static int
priv_parent_ended(struct priv_parent *pp, struct priv_child *pc, int st)
{
	int status = 1;

	if (WIFEXITED(st)) {
		status = WEXITSTATUS(st);
		if (status != 0)
			log_warnx("priv: relay %u (pid %ld) exited with "
			    "status %d", pc->index, (long)pc->pid, status);
		else
			log_info("priv: relay %u (pid %ld) exited", pc->index,
			    (long)pc->pid);
	} else if (WIFSIGNALED(st)) {
		status = 128 + WTERMSIG(st);
		log_warnx("priv: relay %u (pid %ld) killed by signal %d",
		    pc->index, (long)pc->pid, WTERMSIG(st));
	}
	return status;
}

/*
 * Reap the relays that ended. Our exit status is the first non-zero one
 * of theirs, else 0. The first relay that ends while others run ends the
 * others too (SIGTERM: they drain): workers are not restarted one by one
 * (doc/internals/workers.md says why).
 */
static void
priv_parent_reap(struct priv_parent *pp)
{
	struct priv_child *pc;
	int st, status;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		pc = NULL;
		for (unsigned i = 0; i < pp->nchildren; i++)
			if (pp->children[i].pid == pid)
				pc = &pp->children[i];
		if (pc == NULL)
			continue;
		status = priv_parent_ended(pp, pc, st);
		pc->pid = -1;
		pp->alive--;
		if (pp->status <= 0)
			pp->status = status;
		if (!pp->stopping && pp->alive > 0) {
			log_warnx("priv: relay %u ended: stopping the %u "
			    "others", pc->index, pp->alive);
			pp->stopping = true;
			priv_parent_kill_all(pp, SIGTERM);
		}
		pp->stopping = true;
	}
	if (pp->alive == 0)
		event_base_loopexit(pp->base, NULL);
}

static void
priv_parent_signal(evutil_socket_t sig, short events, void *arg)
{
	struct priv_parent *pp = arg;

	if (sig == SIGCHLD) {
		priv_parent_reap(pp);
		return;
	}
	log_debug("priv: forwarding signal %d to %u relays", (int)sig,
	    pp->alive);
	if (sig != SIGHUP)
		pp->stopping = true;
	priv_parent_kill_all(pp, sig);
}

/* Watch relay i's channel fd. Return 0, or -1 if out of memory. */
static int
priv_parent_watch(struct priv_parent *pp, unsigned i, pid_t pid, int fd)
{
	struct priv_child *pc = &pp->children[i];

	pc->pp = pp;
	pc->index = i;
	pc->pid = pid;
	if (util_fd_nonblock(fd) == -1 ||
	    (pc->bev = bufferevent_socket_new(pp->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return -1;
	}
	bufferevent_setcb(pc->bev, priv_parent_read, NULL, priv_parent_event,
	    pc);
	bufferevent_enable(pc->bev, EV_READ | EV_WRITE);
	return 0;
}

/* Start-up failed: stop the relays, reap them. */
static int
priv_parent_abort(struct priv_parent *pp, const pid_t *relays,
    const int *fds, unsigned n)
{
	log_warnx("priv: cannot set up the parent's event loop");
	for (unsigned i = 0; i < n; i++) {
		kill(relays[i], SIGTERM);
		if (pp->children == NULL || pp->children[i].pid == 0)
			close(fds[i]);
		else
			priv_parent_close(&pp->children[i]);
	}
	for (unsigned i = 0; i < n; i++)
		while (waitpid(relays[i], NULL, 0) == -1 && errno == EINTR)
			;
	free(pp->children);
	if (pp->base != NULL)
		event_base_free(pp->base);
	return 1;
}

int
priv_parent_run(const pid_t *relays, const int *fds, unsigned n,
    const char *config_path)
{
	struct event *sigev[nitems(priv_signals)] = { 0 };
	struct priv_parent pp = {
		.nchildren = n, .alive = n, .config_path = config_path,
		.status = -1,
	};
	sigset_t set;

	if ((pp.base = event_base_new()) == NULL ||
	    (pp.children = calloc(n, sizeof(*pp.children))) == NULL)
		return priv_parent_abort(&pp, relays, fds, n);
	for (unsigned i = 0; i < n; i++)
		if (priv_parent_watch(&pp, i, relays[i], fds[i]) == -1)
			return priv_parent_abort(&pp, relays, fds, n);
	sigemptyset(&set);
	for (size_t i = 0; i < nitems(priv_signals); i++) {
		sigev[i] = evsignal_new(pp.base, priv_signals[i],
		    priv_parent_signal, &pp);
		if (sigev[i] == NULL || evsignal_add(sigev[i], NULL) == -1)
			fatalx("priv: cannot watch signal %d", priv_signals[i]);
		sigaddset(&set, priv_signals[i]);
	}
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	log_debug("priv: parent %ld, %u relays, the first %ld",
	    (long)getpid(), n, (long)relays[0]);
	priv_parent_reap(&pp);
	if (pp.alive > 0)
		event_base_dispatch(pp.base);
	for (unsigned i = 0; i < n; i++)
		priv_parent_close(&pp.children[i]);
	free(pp.children);
	for (size_t i = 0; i < nitems(priv_signals); i++)
		event_free(sigev[i]);
	event_base_free(pp.base);
	return pp.status < 0 ? 1 : pp.status;
}

/* The relay's end */

static void
priv_lost_cb(evutil_socket_t fd, short events, void *arg)
{
	struct priv *p = arg;

	p->lost(p->arg);
}

/* The channel is unusable: say so once, from the event loop. */
static void
priv_lose(struct priv *p, const char *why)
{
	const struct timeval now = { 0, 0 };

	if (p->gone)
		return;
	p->gone = true;
	log_warnx("priv: channel to the privileged parent: %s", why);
	event_del(p->ev);
	evtimer_add(p->lost_ev, &now);
}

/*
 * Read len bytes into buf before deadline (util_now_ms()). Return 0, or -1
 * with err set and *got the bytes read.
 */
static int
priv_read_full(int fd, uint8_t *buf, size_t len, uint64_t deadline,
    size_t *got, char *err, size_t errlen)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t now;
	ssize_t r;

	*got = 0;
	while (*got < len) {
		if ((r = read(fd, buf + *got, len - *got)) > 0) {
			*got += (size_t)r;
			continue;
		}
		if (r == 0) {
			snprintf(err, errlen, "closed by the parent");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			snprintf(err, errlen, "%s", strerror(errno));
			return -1;
		}
		if ((now = util_now_ms()) >= deadline ||
		    poll(&pfd, 1, (int)(deadline - now)) == 0) {
			snprintf(err, errlen, "no answer in %d ms",
			    PRIV_TIMEOUT_MS);
			return -1;
		}
	}
	return 0;
}

/*
 * Read one message before deadline into *buf (malloc'd, the caller zeroes
 * and frees it). Return 0; or -1 with err set and *synced telling whether
 * the stream is still at a message boundary.
 */
static int
priv_recv(struct priv *p, uint8_t **buf, struct priv_msg *msg,
    uint64_t deadline, bool *synced, char *err, size_t errlen)
{
	uint8_t hdr[PRIV_HEADER_LEN], *b;
	size_t need, got;

	*synced = false;
	if (priv_read_full(p->fd, hdr, sizeof(hdr), deadline, &got, err,
	    errlen) == -1) {
		*synced = got == 0;
		return -1;
	}
	if (priv_msg_decode(hdr, sizeof(hdr), msg, &need, err, errlen) ==
	    PRIV_DECODE_ERROR)
		return -1;
	if ((b = malloc(need)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(b, hdr, sizeof(hdr));
	if (priv_read_full(p->fd, b + sizeof(hdr), need - sizeof(hdr),
	    deadline, &got, err, errlen) == -1 ||
	    priv_msg_decode(b, need, msg, &need, err, errlen) !=
	    PRIV_DECODE_OK) {
		explicit_bzero(b, need);
		free(b);
		return -1;
	}
	*buf = b;
	*synced = true;
	return 0;
}

/* Whether seq is older than the last request's (a late reply). */
static bool
priv_is_stale(const struct priv *p, uint32_t seq)
{
	return (int32_t)(seq - p->seq) < 0;
}

/* Readable while idle: EOF, or a late reply to drop. */
static void
priv_readable(evutil_socket_t fd, short events, void *arg)
{
	struct priv *p = arg;
	struct priv_msg msg;
	uint8_t *buf;
	char err[128];
	bool synced;

	if (priv_recv(p, &buf, &msg, util_now_ms() + PRIV_TIMEOUT_MS,
	    &synced, err, sizeof(err)) == -1) {
		priv_lose(p, err);
		return;
	}
	if (!priv_is_stale(p, msg.seq))
		priv_lose(p, "a message nobody asked for");
	else
		log_debug("priv: dropping a late answer");
	explicit_bzero(buf, PRIV_HEADER_LEN + msg.len);
	free(buf);
}

struct priv *
priv_new(struct event_base *base, int fd, void (*lost)(void *), void *arg)
{
	struct priv *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->fd = fd;
	p->lost = lost;
	p->arg = arg;
	if (util_fd_nonblock(fd) == -1 ||
	    (p->ev = event_new(base, fd, EV_READ | EV_PERSIST, priv_readable,
	    p)) == NULL ||
	    (p->lost_ev = evtimer_new(base, priv_lost_cb, p)) == NULL ||
	    event_add(p->ev, NULL) == -1) {
		priv_free(p);
		return NULL;
	}
	return p;
}

void
priv_free(struct priv *p)
{
	if (p == NULL)
		return;
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->lost_ev != NULL)
		event_free(p->lost_ev);
	close(p->fd);
	free(p);
}

static int
priv_send_request(struct priv *p, char *err, size_t errlen)
{
	uint8_t hdr[PRIV_HEADER_LEN];
	struct pollfd pfd = { .fd = p->fd, .events = POLLOUT };
	size_t off = 0;
	ssize_t r;

	priv_msg_header(hdr, PRIV_RELOAD, ++p->seq, 0);
	while (off < sizeof(hdr)) {
		if ((r = send(p->fd, hdr + off, sizeof(hdr) - off,
		    MSG_NOSIGNAL)) > 0) {
			off += (size_t)r;
			continue;
		}
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    poll(&pfd, 1, PRIV_TIMEOUT_MS) > 0)
			continue;
		snprintf(err, errlen, "cannot send: %s", r == -1 ?
		    strerror(errno) : "closed");
		return -1;
	}
	return 0;
}

/* Append the lines of an ERROR text to *errors. */
static void
priv_append_text(char **errors, const uint8_t *text, size_t len)
{
	char *copy, *line, *save = NULL;

	if ((copy = strndup((const char *)text, len)) == NULL) {
		util_append_line(errors, "reload refused: out of memory");
		return;
	}
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		util_append_line(errors, line);
	free(copy);
}

struct bundle *
priv_fetch(struct priv *p, char **errors)
{
	struct bundle *b = NULL;
	struct priv_msg msg;
	uint8_t *buf;
	char err[128], line[256];
	uint64_t deadline = util_now_ms() + PRIV_TIMEOUT_MS;
	bool synced;

	if (p->gone) {
		util_append_line(errors, "reload refused: the privileged "
		    "parent is gone");
		return NULL;
	}
	if (priv_send_request(p, err, sizeof(err)) == -1)
		goto lost;
	for (;;) {
		if (priv_recv(p, &buf, &msg, deadline, &synced, err,
		    sizeof(err)) == -1) {
			if (synced)
				break;		/* a timeout: the reply may come */
			goto lost;
		}
		if (priv_is_stale(p, msg.seq)) {
			explicit_bzero(buf, PRIV_HEADER_LEN + msg.len);
			free(buf);
			continue;
		}
		if (msg.seq != p->seq || msg.type == PRIV_RELOAD)
			snprintf(err, sizeof(err), "an answer to no request");
		else if (msg.type == PRIV_ERROR)
			priv_append_text(errors, msg.payload, msg.len);
		else
			b = priv_bundle_decode(msg.payload, msg.len, err,
			    sizeof(err));
		explicit_bzero(buf, PRIV_HEADER_LEN + msg.len);
		free(buf);
		if (msg.type == PRIV_ERROR && msg.seq == p->seq)
			return NULL;
		if (b == NULL)
			goto lost;
		return b;
	}
	snprintf(line, sizeof(line), "reload refused: the privileged parent "
	    "did not answer: %s", err);
	util_append_line(errors, line);
	return NULL;
 lost:
	snprintf(line, sizeof(line), "reload refused: privileged parent: %s",
	    err);
	util_append_line(errors, line);
	priv_lose(p, err);
	return NULL;
}
