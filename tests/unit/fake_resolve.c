/*
 * A fake of resolve.h for the scenario runner: questions are answered
 * from the scenario's table (`dns srv`, `dns addr` lines) from the loop,
 * as the real resolver answers later; a question the table does not know,
 * or marked "hang", stays unanswered (a resolver that never answers). As
 * the real one: a numeric host is its own answer, and an SRV question
 * with no records (nxdomain, nodata) falls back to the domain on 5269.
 */
#include "fgconfig.h"

#include <sys/queue.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "util.h"

#define FAKE_ANSWERS	32

static struct {
	bool	 srv;
	char	 name[RESOLVE_HOST_MAX];
	char	 answer[512];
} table[FAKE_ANSWERS];
static size_t ntable;

struct resolve_req {
	TAILQ_ENTRY(resolve_req) entry;
	bool		 srv;
	char		 name[RESOLVE_HOST_MAX];
	uint16_t	 port;
	bool		 direct_tls_too;
	void		(*srv_cb)(enum resolve_status, struct resolve_targets *,
			    void *);
	void		(*addr_cb)(enum resolve_status, struct resolve_addrs *,
			    void *);
	void		*arg;
	enum resolve_status status;	/* once answered */
};
TAILQ_HEAD(, resolve_req) pending = TAILQ_HEAD_INITIALIZER(pending);

static char asked[2048];

static const char *const status_names[] = {
	[RESOLVE_OK] = "ok",
	[RESOLVE_NXDOMAIN] = "nxdomain",
	[RESOLVE_NODATA] = "nodata",
	[RESOLVE_UNAVAILABLE] = "unavailable",
	[RESOLVE_TIMEOUT] = "timeout",
	[RESOLVE_SERVFAIL] = "servfail",
	[RESOLVE_BOGUS] = "bogus",
};

void
fake_resolve_reset(void)
{
	struct resolve_req *q;

	while ((q = TAILQ_FIRST(&pending)) != NULL) {
		TAILQ_REMOVE(&pending, q, entry);
		free(q);
	}
	ntable = 0;
	asked[0] = '\0';
}

static int
fake_resolve_add(bool srv, const char *name, const char *answer)
{
	if (ntable == FAKE_ANSWERS)
		return -1;
	table[ntable].srv = srv;
	snprintf(table[ntable].name, sizeof(table[ntable].name), "%s", name);
	snprintf(table[ntable].answer, sizeof(table[ntable].answer), "%s",
	    answer);
	ntable++;
	return 0;
}

int
fake_resolve_srv(const char *domain, const char *answer)
{
	return fake_resolve_add(true, domain, answer);
}

int
fake_resolve_addr(const char *host, const char *answer)
{
	return fake_resolve_add(false, host, answer);
}

const char *
fake_resolve_asked(void)
{
	return asked;
}

/* The table's answer to q, or NULL. */
static const char *
fake_resolve_lookup(const struct resolve_req *q)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!q->srv && util_sockaddr_parse(q->name, 0, &ss, &len) == 0)
		return q->name;		/* numeric */
	for (size_t i = ntable; i > 0; i--)
		if (table[i - 1].srv == q->srv &&
		    strcmp(table[i - 1].name, q->name) == 0)
			return table[i - 1].answer;
	return NULL;
}

/* A status name as the answer, or -1 if it is records. */
static int
fake_resolve_status(const char *answer)
{
	for (size_t i = 1; i < sizeof(status_names) / sizeof(*status_names);
	    i++)
		if (strcmp(answer, status_names[i]) == 0)
			return (int)i;
	return -1;
}

static void
fake_resolve_answer_srv(struct resolve_req *q, const char *answer)
{
	struct resolve_targets *t;
	char buf[512], *s, *tok, *save;
	int st = fake_resolve_status(answer);
	size_t n = 0;

	t = calloc(1, sizeof(*t) + 16 * sizeof(t->target[0]));
	if (t == NULL)
		abort();
	if (st == RESOLVE_NXDOMAIN || st == RESOLVE_NODATA) {
		t->fallback = true;
		snprintf(t->target[0].host, sizeof(t->target[0].host), "%s",
		    q->name);
		t->target[0].port = RESOLVE_S2S_PORT;
		t->count = 1;
		q->status = RESOLVE_OK;
		q->srv_cb(RESOLVE_OK, t, q->arg);
		return;
	}
	if (st != -1) {
		free(t);
		q->status = (enum resolve_status)st;
		q->srv_cb(q->status, NULL, q->arg);
		return;
	}
	snprintf(buf, sizeof(buf), "%s", answer);
	for (s = buf; (tok = strtok_r(s, " ", &save)) != NULL && n < 16;
	    s = NULL) {
		char *port = strchr(tok, ':'), *tls;
		bool direct;

		if (port == NULL)
			abort();	/* the runner checked the syntax */
		*port++ = '\0';
		tls = strchr(port, ':');
		direct = tls != NULL && strcmp(tls, ":tls") == 0;
		if (tls != NULL)
			*tls = '\0';
		if (direct && !q->direct_tls_too)
			continue;
		snprintf(t->target[n].host, sizeof(t->target[n].host), "%s",
		    tok);
		t->target[n].port = (uint16_t)strtoul(port, NULL, 10);
		t->target[n].direct_tls = direct;
		n++;
	}
	t->count = n;
	q->status = n > 0 ? RESOLVE_OK : RESOLVE_UNAVAILABLE;
	if (n == 0) {
		free(t);
		t = NULL;
	}
	q->srv_cb(q->status, t, q->arg);
}

static void
fake_resolve_answer_addr(struct resolve_req *q, const char *answer)
{
	struct resolve_addrs *a;
	char buf[512], *s, *tok, *save;
	int st = fake_resolve_status(answer);
	size_t n = 0;

	if (st != -1) {
		q->status = (enum resolve_status)st;
		q->addr_cb(q->status, NULL, q->arg);
		return;
	}
	if ((a = calloc(1, sizeof(*a) + 16 * sizeof(a->addr[0]))) == NULL)
		abort();
	snprintf(buf, sizeof(buf), "%s", answer);
	for (s = buf; (tok = strtok_r(s, " ", &save)) != NULL && n < 16;
	    s = NULL)
		if (util_sockaddr_parse(tok, q->port, &a->addr[n].ss,
		    &a->addr[n].len) == 0)
			n++;
	a->count = n;
	q->status = RESOLVE_OK;
	q->addr_cb(RESOLVE_OK, a, q->arg);
}

bool
fake_resolve_run_one(void)
{
	struct resolve_req *q;
	const char *answer;

	TAILQ_FOREACH(q, &pending, entry) {
		if ((answer = fake_resolve_lookup(q)) == NULL ||
		    strcmp(answer, "hang") == 0)
			continue;
		TAILQ_REMOVE(&pending, q, entry);
		if (q->srv)
			fake_resolve_answer_srv(q, answer);
		else
			fake_resolve_answer_addr(q, answer);
		free(q);
		return true;
	}
	return false;
}

static struct resolve_req *
fake_resolve_ask(bool srv, const char *name, uint16_t port, void *arg)
{
	struct resolve_req *q;
	size_t off = strlen(asked);

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->srv = srv;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->port = port;
	q->arg = arg;
	TAILQ_INSERT_TAIL(&pending, q, entry);
	snprintf(asked + off, sizeof(asked) - off, "%s %s\n",
	    srv ? "srv" : "addr", name);
	return q;
}

struct resolve_req *
resolve_s2s(struct resolve *r, const char *domain, bool direct_tls_too,
    void (*cb)(enum resolve_status, struct resolve_targets *, void *),
    void *arg)
{
	struct resolve_req *q = fake_resolve_ask(true, domain, 0, arg);

	if (q != NULL) {
		q->srv_cb = cb;
		q->direct_tls_too = direct_tls_too;
	}
	return q;
}

struct resolve_req *
resolve_addresses(struct resolve *r, const char *host, uint16_t port,
    void (*cb)(enum resolve_status, struct resolve_addrs *, void *),
    void *arg)
{
	struct resolve_req *q = fake_resolve_ask(false, host, port, arg);

	if (q != NULL)
		q->addr_cb = cb;
	return q;
}

const char *
resolve_req_explain(const struct resolve_req *req, char *buf, size_t len)
{
	snprintf(buf, len, "%s from the scenario's DNS",
	    resolve_status_name(req->status));
	return buf;
}

enum resolve_status
resolve_req_srv_status(const struct resolve_req *req, bool direct_tls)
{
	return req->status;
}

void
resolve_cancel(struct resolve_req *req)
{
	struct resolve_req *q;

	/* From within its callback the request is already off the list. */
	TAILQ_FOREACH(q, &pending, entry)
		if (q == req) {
			TAILQ_REMOVE(&pending, q, entry);
			free(q);
			return;
		}
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

const char *
resolve_status_name(enum resolve_status st)
{
	return (size_t)st < sizeof(status_names) / sizeof(*status_names) ?
	    status_names[st] : "?";
}

/* What config.c checks resolver options with: all accepted here. */
int
resolve_check_option(const char *name, const char *value, char *err,
    size_t errlen)
{
	return 0;
}

int
resolve_check_trust_anchor(const char *rr, bool file, char *err,
    size_t errlen)
{
	return 0;
}
