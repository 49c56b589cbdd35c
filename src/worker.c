/*
 * worker: the mesh of socketpairs between worker 0 and the other workers,
 * and the fan-out of a request over it (worker.h). Each channel is a
 * bufferevent carrying lines; a FIFO of waits per channel pairs each reply
 * with its request, since replies come in order.
 */
#include "fgconfig.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
#include "util.h"
#include "worker.h"


#define WORKER_NOTE_MARK	'!'	/* starts a note, never a request or reply */

struct worker_mesh {
	unsigned	 n;
	uint32_t	 nonce;
	int		(*sp)[2];	/* [i]: worker 0's end, worker i's end */
};

/* A request sent on a channel, waiting for its reply. */
struct worker_wait {
	TAILQ_ENTRY(worker_wait) entry;
	struct worker_fanout	*f;		/* NULL: a broadcast */
	unsigned		 slot;		/* in f->replies */
};
TAILQ_HEAD(worker_waits, worker_wait);

/* One end of a socketpair of the mesh. */
struct worker_chan {
	struct worker		*w;
	unsigned		 peer;		/* the other end's worker */
	struct bufferevent	*bev;		/* NULL once closed */
	size_t			 scanned;	/* input bytes known to hold no LF */
	struct worker_waits	 waits;		/* worker 0: in order */
};

struct worker_fanout {
	TAILQ_ENTRY(worker_fanout) entry;
	struct worker		*w;
	char			**replies;	/* one per other worker */
	unsigned		 refs;		/* waits that point here */
	bool			 finished;	/* done called, or cancelled */
	struct event		*timer;
	void			(*done)(void *, char *const *, unsigned);
	void			*arg;
};
TAILQ_HEAD(worker_fanouts, worker_fanout);

struct worker {
	struct event_base	*base;
	unsigned		 index;
	unsigned		 n;
	struct worker_chan	*chans;		/* worker 0: n - 1; else 1 */
	unsigned		 nchans;
	uint32_t		 nonce;
	char			*(*serve)(void *, const char *);
	void			*serve_arg;
	void			(*note)(void *, const char *);
	void			*note_arg;
	struct worker_fanouts	 fanouts;
};

struct worker_mesh *
worker_mesh_new(unsigned n)
{
	struct worker_mesh *m;
	int saved;

	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->sp = calloc(n, sizeof(*m->sp))) == NULL) {
		free(m);
		return NULL;
	}
	m->n = n;
	evutil_secure_rng_get_bytes(&m->nonce, sizeof(m->nonce));
	for (unsigned i = 0; i < n; i++)
		m->sp[i][0] = m->sp[i][1] = -1;
	for (unsigned i = 1; i < n; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    m->sp[i]) == -1) {
			saved = errno;
			worker_mesh_free(m);
			errno = saved;
			return NULL;
		}
	return m;
}

uint32_t
worker_mesh_nonce(const struct worker_mesh *m)
{
	return m->nonce;
}

void
worker_mesh_free(struct worker_mesh *m)
{
	if (m == NULL)
		return;
	for (unsigned i = 0; i < m->n; i++)
		for (int e = 0; e < 2; e++)
			if (m->sp[i][e] != -1)
				close(m->sp[i][e]);
	free(m->sp);
	free(m);
}

/* Take fd of the mesh for chan, leaving -1 in its place. */
static int
worker_take(struct worker_mesh *m, unsigned i, int end)
{
	int fd = m->sp[i][end];

	m->sp[i][end] = -1;
	return fd;
}

struct worker *
worker_new(struct event_base *base, struct worker_mesh *m, unsigned index)
{
	struct worker *w;
	struct worker_chan *ch;
	int fd;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->base = base;
	w->index = index;
	w->n = m != NULL ? m->n : 1;
	if (m != NULL)
		w->nonce = m->nonce;
	else
		evutil_secure_rng_get_bytes(&w->nonce, sizeof(w->nonce));
	TAILQ_INIT(&w->fanouts);
	w->nchans = w->n <= 1 ? 0 : index == 0 ? w->n - 1 : 1;
	if (w->nchans > 0 && (w->chans = calloc(w->nchans,
	    sizeof(*w->chans))) == NULL) {
		free(w);
		return NULL;
	}
	for (unsigned c = 0; c < w->nchans; c++) {
		ch = &w->chans[c];
		ch->w = w;
		ch->peer = index == 0 ? c + 1 : 0;
		TAILQ_INIT(&ch->waits);
		fd = index == 0 ? worker_take(m, c + 1, 0) :
		    worker_take(m, index, 1);
		if (util_fd_nonblock(fd) == -1 ||
		    (ch->bev = bufferevent_socket_new(base, fd,
		    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
			log_warnx("worker %u: cannot watch the channel to "
			    "worker %u", index, ch->peer);
			close(fd);
		}
	}
	return w;
}

/* Forget f if nothing points to it any more and it is finished. */
static void
worker_fanout_settle(struct worker_fanout *f)
{
	if (f->refs > 0 || !f->finished)
		return;
	TAILQ_REMOVE(&f->w->fanouts, f, entry);
	for (unsigned i = 0; i + 1 < f->w->n; i++)
		free(f->replies[i]);
	free(f->replies);
	if (f->timer != NULL)
		event_free(f->timer);
	free(f);
}

/* Call f's done with the replies in so far. */
static void
worker_fanout_finish(struct worker_fanout *f)
{
	if (f->finished)
		return;
	f->finished = true;
	if (f->timer != NULL)
		evtimer_del(f->timer);
	f->done(f->arg, f->replies, f->w->n - 1);
	worker_fanout_settle(f);
}

/* The reply (malloc'd; NULL: none will come) to the first wait of ch. */
static void
worker_chan_reply(struct worker_chan *ch, char *reply)
{
	struct worker_wait *wt = TAILQ_FIRST(&ch->waits);
	struct worker_fanout *f;

	if (wt == NULL) {
		log_warnx("worker 0: a reply from worker %u that nobody "
		    "asked for", ch->peer);
		free(reply);
		return;
	}
	TAILQ_REMOVE(&ch->waits, wt, entry);
	if ((f = wt->f) == NULL || f->finished) {
		free(reply);
		if (f != NULL) {
			f->refs--;
			worker_fanout_settle(f);
		}
		free(wt);
		return;
	}
	f->replies[wt->slot] = reply;
	f->refs--;
	free(wt);
	if (f->refs == 0)
		worker_fanout_finish(f);
}

/* The channel is gone: its waits get no reply. */
static void
worker_chan_close(struct worker_chan *ch, const char *why)
{
	if (ch->bev == NULL)
		return;
	if (why != NULL)
		log_warnx("worker %u: channel to worker %u: %s", ch->w->index,
		    ch->peer, why);
	bufferevent_free(ch->bev);
	ch->bev = NULL;
	while (!TAILQ_EMPTY(&ch->waits))
		worker_chan_reply(ch, NULL);
}

/* Queue line and a LF on ch; close it if that fails. */
static int
worker_chan_write(struct worker_chan *ch, const char *line, const char *what)
{
	if (ch->bev == NULL)
		return -1;
	if (bufferevent_write(ch->bev, line, strlen(line)) == -1 ||
	    bufferevent_write(ch->bev, "\n", 1) == -1) {
		worker_chan_close(ch, what);
		return -1;
	}
	return 0;
}

/* Worker i: run a request, queue its reply. */
static void
worker_serve(struct worker_chan *ch, const char *line)
{
	static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}";
	struct worker *w = ch->w;
	char *reply = w->serve != NULL ? w->serve(w->serve_arg, line) : NULL;
	const char *r = reply != NULL ? reply : oom;

	(void)worker_chan_write(ch, r, "cannot queue a reply");
	free(reply);
}

/*
 * A note came on ch ("!J LINE"): worker 0 passes it on to worker J as it
 * came, and takes the ones for itself; worker J takes it.
 */
static void
worker_chan_note(struct worker_chan *ch, const char *line)
{
	struct worker *w = ch->w;
	unsigned long to;
	char *end;

	to = strtoul(line + 1, &end, 10);
	if (end == line + 1 || *end != ' ' || to >= w->n) {
		log_warnx("worker %u: a malformed note from worker %u, "
		    "dropped", w->index, ch->peer);
		return;
	}
	if (to != w->index) {
		if (w->index == 0)
			(void)worker_chan_write(&w->chans[to - 1], line,
			    "cannot pass a note on");
		return;
	}
	if (w->note != NULL)
		w->note(w->note_arg, end + 1);
}

/* Take the next whole line of ch's input (malloc'd), or NULL. */
static char *
worker_chan_line(struct worker_chan *ch, size_t max, bool *bad)
{
	struct evbuffer *in = bufferevent_get_input(ch->bev);
	struct evbuffer_ptr p;
	size_t len = evbuffer_get_length(in), eol_len;
	char *line;

	*bad = false;
	if (evbuffer_ptr_set(in, &p, ch->scanned, EVBUFFER_PTR_SET) == -1)
		return NULL;
	p = evbuffer_search_eol(in, &p, &eol_len, EVBUFFER_EOL_LF);
	if (p.pos == -1) {
		ch->scanned = len;
		*bad = len > max;
		return NULL;
	}
	ch->scanned = 0;
	if ((size_t)p.pos > max || (line = malloc((size_t)p.pos + 1)) == NULL) {
		*bad = true;
		return NULL;
	}
	evbuffer_remove(in, line, (size_t)p.pos);
	line[p.pos] = '\0';
	evbuffer_drain(in, eol_len);
	return line;
}

static void
worker_chan_read(struct bufferevent *bev, void *arg)
{
	struct worker_chan *ch = arg;
	bool bad;
	char *line;

	while (ch->bev != NULL) {
		line = worker_chan_line(ch, ch->w->index == 0 ?
		    WORKER_REPLY_MAX : WORKER_REQUEST_MAX, &bad);
		if (line == NULL) {
			if (bad)
				worker_chan_close(ch, "a line too long");
			return;
		}
		if (line[0] == WORKER_NOTE_MARK) {
			worker_chan_note(ch, line);
			free(line);
		} else if (ch->w->index == 0)
			worker_chan_reply(ch, line);	/* takes it */
		else {
			worker_serve(ch, line);
			free(line);
		}
	}
}

static void
worker_chan_event(struct bufferevent *bev, short what, void *arg)
{
	struct worker_chan *ch = arg;

	worker_chan_close(ch, what & BEV_EVENT_EOF ? "closed" :
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

int
worker_start(struct worker *w, char *(*serve)(void *, const char *),
    void *arg)
{
	w->serve = serve;
	w->serve_arg = arg;
	for (unsigned c = 0; c < w->nchans; c++) {
		if (w->chans[c].bev == NULL)
			continue;
		bufferevent_setcb(w->chans[c].bev, worker_chan_read, NULL,
		    worker_chan_event, &w->chans[c]);
		if (bufferevent_enable(w->chans[c].bev, EV_READ | EV_WRITE) ==
		    -1)
			return -1;
	}
	return 0;
}

/* One try to send what ch owes, without waiting: it is about to go. */
static void
worker_chan_flush(struct worker_chan *ch)
{
	struct evbuffer *out = bufferevent_get_output(ch->bev);
	size_t len = evbuffer_get_length(out);
	unsigned char *p;

	if (len > 0 && (p = evbuffer_pullup(out, -1)) != NULL)
		(void)send(bufferevent_getfd(ch->bev), p, len,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
}

void
worker_free(struct worker *w)
{
	struct worker_fanout *f;

	if (w == NULL)
		return;
	/* no done any more: their owners are gone first */
	TAILQ_FOREACH(f, &w->fanouts, entry)
		f->finished = true;
	for (unsigned c = 0; c < w->nchans; c++) {
		if (w->chans[c].bev != NULL)
			worker_chan_flush(&w->chans[c]);
		worker_chan_close(&w->chans[c], NULL);
	}
	/* what no channel pointed to any more */
	while ((f = TAILQ_FIRST(&w->fanouts)) != NULL) {
		f->refs = 0;
		worker_fanout_settle(f);
	}
	free(w->chans);
	free(w);
}

unsigned
worker_index(const struct worker *w)
{
	return w->index;
}

unsigned
worker_count(const struct worker *w)
{
	return w->n;
}

uint32_t
worker_nonce(const struct worker *w)
{
	return w->nonce;
}

void
worker_set_note(struct worker *w, void (*note)(void *, const char *),
    void *arg)
{
	w->note = note;
	w->note_arg = arg;
}

int
worker_note(struct worker *w, unsigned to, const char *line)
{
	struct worker_chan *ch;
	char head[16];

	if (to >= w->n || to == w->index || strlen(line) > WORKER_REQUEST_MAX ||
	    strchr(line, '\n') != NULL)
		return -1;
	ch = w->index == 0 ? &w->chans[to - 1] : &w->chans[0];
	snprintf(head, sizeof(head), "%c%u ", WORKER_NOTE_MARK, to);
	if (ch->bev == NULL ||
	    bufferevent_write(ch->bev, head, strlen(head)) == -1)
		return -1;
	return worker_chan_write(ch, line, "cannot queue a note");
}

/* Send line on ch and wait for its reply there for f (NULL: drop it). */
static int
worker_chan_send(struct worker_chan *ch, const char *line,
    struct worker_fanout *f, unsigned slot)
{
	struct worker_wait *wt;

	if (ch->bev == NULL || (wt = calloc(1, sizeof(*wt))) == NULL)
		return -1;
	if (worker_chan_write(ch, line, "cannot queue a request") == -1) {
		free(wt);
		return -1;
	}
	wt->f = f;
	wt->slot = slot;
	TAILQ_INSERT_TAIL(&ch->waits, wt, entry);
	if (f != NULL)
		f->refs++;
	return 0;
}

static void
worker_fanout_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct worker_fanout *f = arg;

	if (f->refs > 0)
		log_warnx("worker 0: %u workers did not answer in time",
		    f->refs);
	worker_fanout_finish(f);
}

struct worker_fanout *
worker_fanout(struct worker *w, const char *line, unsigned timeout_ms,
    void (*done)(void *, char *const *, unsigned), void *arg)
{
	struct worker_fanout *f;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

	if (w->index != 0 || w->n < 2 || strlen(line) > WORKER_REQUEST_MAX ||
	    (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->w = w;
	f->done = done;
	f->arg = arg;
	if ((f->replies = calloc(w->n - 1, sizeof(*f->replies))) == NULL ||
	    (f->timer = evtimer_new(w->base, worker_fanout_timeout, f)) ==
	    NULL) {
		free(f->replies);
		free(f);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&w->fanouts, f, entry);
	for (unsigned c = 0; c < w->nchans; c++)
		(void)worker_chan_send(&w->chans[c], line, f, c);
	if (f->refs == 0) {
		/* every channel is closed: finish from the loop, not here */
		tv.tv_sec = 0;
		tv.tv_usec = 0;
	}
	evtimer_add(f->timer, &tv);
	return f;
}

void
worker_fanout_cancel(struct worker_fanout *f)
{
	if (f == NULL || f->finished)
		return;
	f->finished = true;
	evtimer_del(f->timer);
	worker_fanout_settle(f);
}

void
worker_broadcast(struct worker *w, const char *line)
{
	if (w->index != 0 || strlen(line) > WORKER_REQUEST_MAX)
		return;
	for (unsigned c = 0; c < w->nchans; c++)
		(void)worker_chan_send(&w->chans[c], line, NULL, 0);
}
