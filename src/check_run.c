/*
 * check_run: the I/O half of `fedgatectl check` (check.h). One struct
 * check walks, on the libevent loop:
 *
 *	SRV -> ADDRS (per target) -> PROBE (per address) -> ... -> DONE
 *	SRV -> ADDRS (per target, gateway step) -> UPSTREAM_ADDRS
 *	    -> UPSTREAM -> DONE				(a local domain)
 *
 * DNS through resolve.h, connections through conn.h, TLS through tls.h; the
 * XMPP conversation is check.c's probe, fed here. Every state is bounded:
 * DNS by the resolver's timeout, each probe state by CHECK_STEP_MS, the
 * close by CHECK_CLOSE_MS, the whole check by CHECK_TIME_MS, and the walk
 * by CHECK_TARGETS_MAX, CHECK_ADDRS_MAX and CHECK_PROBES_MAX.
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "check.h"
#include "config.h"
#include "conn.h"
#include "local.h"
#include "log.h"
#include "resolve.h"
#include "tls.h"
#include "util.h"
#include "xmpp.h"

enum check_state {
	CHECK_STATE_SRV,		/* the SRV lookup of the domain */
	CHECK_STATE_ADDRS,		/* A/AAAA of one target */
	CHECK_STATE_PROBE,		/* a conversation with one address */
	CHECK_STATE_UPSTREAM_ADDRS,	/* a local domain's upstream host */
	CHECK_STATE_UPSTREAM,		/* a stream open to the upstream */
	CHECK_STATE_DONE		/* done is scheduled or called */
};

static const char *const check_state_names[] = {
	[CHECK_STATE_SRV] = "srv",
	[CHECK_STATE_ADDRS] = "addresses",
	[CHECK_STATE_PROBE] = "probe",
	[CHECK_STATE_UPSTREAM_ADDRS] = "upstream-addresses",
	[CHECK_STATE_UPSTREAM] = "upstream",
	[CHECK_STATE_DONE] = "done",
};

struct check {
	enum check_state	 state;
	struct check_env	 env;		/* config referenced */
	char			 domain[RESOLVE_HOST_MAX];
	char			 from[RESOLVE_HOST_MAX];
	const struct config_domain *local;	/* DOMAIN's block, or NULL */
	char			 inside[JID_DOMAIN_MAX]; /* DOMAIN inside
						   (local: its internal name) */
	struct policy_settings	 policy;	/* DOMAIN's effective rule */
	struct check_report	 report;
	struct check_tally	 tally;
	struct resolve_req	*dns;
	struct resolve_targets	*targets;
	size_t			 target_next;
	const struct resolve_target *target;	/* the current one */
	struct resolve_addrs	*addrs;
	size_t			 addr_next;
	unsigned		 probes;	/* started, for CHECK_PROBES_MAX */
	struct check_probe	*probe;
	struct conn		*conn;
	char			 subject[CHECK_SUBJECT_MAX];
	uint64_t		 started_ms;
	uint64_t		 step_ms;	/* when the probe state began */
	enum check_probe_state	 step_state;
	struct event		*step_timer;
	struct event		*deadline;
	struct event		*finish;	/* calls done from the loop */
	void			(*done)(struct check *, void *);
	void			*arg;
};

static void check_next_target(struct check *);
static void check_next_addr(struct check *);
static void check_upstream(struct check *);

static void
check_enter_state(struct check *ch, enum check_state next)
{
	if (ch->state == CHECK_STATE_DONE || next < ch->state)
		fatalx("check %s: bad transition %s -> %s", ch->domain,
		    check_state_names[ch->state], check_state_names[next]);
	log_debug("check %s: %s -> %s", ch->domain,
	    check_state_names[ch->state], check_state_names[next]);
	ch->state = next;
}

/* Step back from PROBE to ADDRS for the next target (the only way back). */
static void
check_back_to_addrs(struct check *ch)
{
	log_debug("check %s: %s -> %s", ch->domain,
	    check_state_names[ch->state], check_state_names[CHECK_STATE_ADDRS]);
	ch->state = CHECK_STATE_ADDRS;
}

/* Stop whatever runs and call done from the loop. */
static void
check_done(struct check *ch)
{
	if (ch->state == CHECK_STATE_DONE)
		return;
	check_enter_state(ch, CHECK_STATE_DONE);
	if (ch->dns != NULL) {
		resolve_cancel(ch->dns);
		ch->dns = NULL;
	}
	conn_free(ch->conn);
	ch->conn = NULL;
	check_probe_free(ch->probe);
	ch->probe = NULL;
	evtimer_del(ch->step_timer);
	evtimer_del(ch->deadline);
	event_active(ch->finish, EV_TIMEOUT, 0);
}

static void
check_finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check *ch = arg;

	log_info("check %s: federation would work: %s (%zu steps, %" PRIu64
	    " ms)", ch->domain, check_outcome_name(check_result(ch)),
	    ch->report.nsteps, check_elapsed_ms(ch));
	ch->done(ch, ch->arg);
}

static void
check_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check *ch = arg;
	char t[32];

	/* A probe cut short tells nothing about its address. */
	if (ch->probe != NULL)
		check_report_add(&ch->report, "deadline", ch->subject,
		    CHECK_SKIP, "stopped in state %s",
		    check_probe_state_name(check_probe_state(ch->probe)));
	check_report_add(&ch->report, "deadline", ch->domain, CHECK_FAIL,
	    "the check's time (%s) ran out; the remaining steps were not run",
	    util_duration_str(CHECK_TIME_MS, t, sizeof(t)));
	ch->tally.unknown++;
	check_done(ch);
}

/*
 * DNS: the SRV step
 */

/* "host:port (priority 0, weight 5), ..." of t's targets of one kind. */
static size_t
check_targets_text(const struct resolve_targets *t, bool direct_tls,
    char *buf, size_t len)
{
	char one[RESOLVE_HOST_MAX + 48];
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < t->count; i++) {
		const struct resolve_target *tg = &t->target[i];

		if (tg->direct_tls != direct_tls)
			continue;
		snprintf(one, sizeof(one), "%s%s:%u (priority %u, weight %u)",
		    n > 0 ? ", " : "", tg->host, tg->port, tg->priority,
		    tg->weight);
		strlcat(buf, one, len);
		n++;
	}
	return n;
}

/* The SRV step of one name when its lookup gave no target. */
static void
check_srv_none(struct check *ch, const struct resolve_req *req,
    const char *qname, bool direct_tls, bool others)
{
	enum resolve_status st = resolve_req_srv_status(req, direct_tls);
	const char *who = resolve_who(ch->env.resolve);
	enum check_verdict v;

	if (st == RESOLVE_TIMEOUT || st == RESOLVE_SERVFAIL ||
	    st == RESOLVE_BOGUS)
		v = CHECK_WARN;
	else if (direct_tls)
		v = CHECK_OK;		/* XEP-0368 is optional */
	else
		v = others ? CHECK_WARN : CHECK_OK;
	check_report_add(&ch->report, "srv", qname, v, "no record (%s from "
	    "%s)%s", resolve_status_name(st), who, direct_tls ?
	    "; optional (XEP-0368)" : others ? "; servers without XEP-0368 "
	    "cannot connect" : "");
}

/* The SRV answer says no service, or could not be had. */
static void
check_srv_failed(struct check *ch, enum resolve_status st,
    const struct resolve_req *req)
{
	char why[400], q[CHECK_SUBJECT_MAX];

	resolve_req_explain(req, why, sizeof(why));
	snprintf(q, sizeof(q), "_xmpp-server._tcp.%s", ch->domain);
	check_report_add(&ch->report, "srv", q, CHECK_FAIL, "%s%s", why,
	    st == RESOLVE_UNAVAILABLE ? " (target \".\": the domain "
	    "declares it offers no federation, RFC 2782)" : "");
	if (st == RESOLVE_TIMEOUT || st == RESOLVE_SERVFAIL)
		ch->tally.unknown++;
	else
		ch->tally.fatal++;
	if (ch->local != NULL)
		check_upstream(ch);	/* worth knowing all the same */
	else
		check_done(ch);
}

static void
check_srv_cb(enum resolve_status st, struct resolve_targets *t, void *arg)
{
	struct check *ch = arg;
	char list[CHECK_REASON_MAX], q[CHECK_SUBJECT_MAX], qs[CHECK_SUBJECT_MAX];
	size_t plain, direct;

	if (st != RESOLVE_OK) {
		const struct resolve_req *req = ch->dns;

		ch->dns = NULL;
		check_srv_failed(ch, st, req);
		return;
	}
	snprintf(q, sizeof(q), "_xmpp-server._tcp.%s", ch->domain);
	snprintf(qs, sizeof(qs), "_xmpps-server._tcp.%s", ch->domain);
	ch->targets = t;
	if (t->fallback) {
		check_report_add(&ch->report, "srv", q, CHECK_WARN, "no record "
		    "(%s from %s); RFC 6120 fallback: %s port %d",
		    resolve_status_name(resolve_req_srv_status(ch->dns, false)),
		    resolve_who(ch->env.resolve), ch->domain, RESOLVE_S2S_PORT);
		check_srv_none(ch, ch->dns, qs, true, false);
	} else {
		plain = check_targets_text(t, false, list, sizeof(list));
		if (plain > 0)
			check_report_add(&ch->report, "srv", q, CHECK_OK, "%s",
			    list);
		else
			check_srv_none(ch, ch->dns, q, false, true);
		direct = check_targets_text(t, true, list, sizeof(list));
		if (direct > 0)
			check_report_add(&ch->report, "srv", qs, CHECK_OK,
			    "%s (direct TLS)", list);
		else
			check_srv_none(ch, ch->dns, qs, true, false);
	}
	ch->dns = NULL;
	if (t->count > CHECK_TARGETS_MAX)
		check_report_add(&ch->report, "srv", ch->domain, CHECK_SKIP,
		    "%zu targets; only the first %d are checked", t->count,
		    CHECK_TARGETS_MAX);
	check_enter_state(ch, CHECK_STATE_ADDRS);
	check_next_target(ch);
}

/*
 * DNS: the addresses of each target
 */

static void
check_addrs_text(const struct resolve_addrs *a, char *buf, size_t len)
{
	char one[UTIL_SOCKADDR_STRLEN + 2];

	buf[0] = '\0';
	for (size_t i = 0; i < a->count && i < CHECK_ADDRS_MAX; i++) {
		util_sockaddr_str((const struct sockaddr *)&a->addr[i].ss, one,
		    sizeof(one));
		if (i > 0)
			strlcat(buf, ", ", len);
		strlcat(buf, one, len);
	}
	if (a->count > CHECK_ADDRS_MAX) {
		snprintf(one, sizeof(one), " (+%zu)", a->count -
		    CHECK_ADDRS_MAX);
		strlcat(buf, one, len);
	}
}

static uint16_t
check_port_of(const struct sockaddr *sa)
{
	return ntohs(sa->sa_family == AF_INET ?
	    ((const struct sockaddr_in *)sa)->sin_port :
	    ((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* Whether sa is an address of this host (for a wildcard listener). */
static bool
check_is_own_addr(const struct sockaddr *sa)
{
	struct ifaddrs *ifs, *i;
	bool own = false;

	if (getifaddrs(&ifs) == -1)
		return false;
	for (i = ifs; i != NULL && !own; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != sa->sa_family)
			continue;
		if (sa->sa_family == AF_INET)
			own = memcmp(&((const struct sockaddr_in *)sa)->sin_addr,
			    &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
			    sizeof(struct in_addr)) == 0;
		else
			own = memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr,
			    &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
			    sizeof(struct in6_addr)) == 0;
	}
	freeifaddrs(ifs);
	return own;
}

/* The public listener that a serves, or NULL. */
static const struct config_listen *
check_listener_of(const struct config *c, const struct resolve_addr *a)
{
	const struct config_listen *l;
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	char want[UTIL_SOCKADDR_STRLEN], have[UTIL_SOCKADDR_STRLEN];

	util_sockaddr_str(sa, want, sizeof(want));
	TAILQ_FOREACH(l, &c->listens, entry) {
		if (l->face != CONFIG_FACE_PUBLIC)
			continue;
		if (strcmp(l->host, "*") == 0 ||
		    strcmp(l->host, "0.0.0.0") == 0 ||
		    strcmp(l->host, "::") == 0) {
			if (check_port_of(sa) == l->port &&
			    check_is_own_addr(sa))
				return l;
			continue;
		}
		util_sockaddr_str((const struct sockaddr *)&l->addr, have,
		    sizeof(have));
		if (strcmp(want, have) == 0)
			return l;
	}
	return NULL;
}

/* "127.0.0.1:5269, [::1]:5269" of c's public listeners. */
static void
check_listeners_text(const struct config *c, char *buf, size_t len)
{
	const struct config_listen *l;
	char one[UTIL_SOCKADDR_STRLEN + 8];

	buf[0] = '\0';
	TAILQ_FOREACH(l, &c->listens, entry) {
		if (l->face != CONFIG_FACE_PUBLIC)
			continue;
		if (strcmp(l->host, "*") == 0)
			snprintf(one, sizeof(one), "*:%u", l->port);
		else
			util_sockaddr_str((const struct sockaddr *)&l->addr,
			    one, sizeof(one));
		if (buf[0] != '\0')
			strlcat(buf, ", ", len);
		strlcat(buf, one, len);
	}
	if (buf[0] == '\0')
		strlcpy(buf, "none", len);
}

/* A local domain's target: do its addresses reach this gateway? */
static void
check_gateway(struct check *ch, const struct resolve_addrs *a)
{
	const struct config *c = ch->env.config;
	const struct config_listen *l = NULL;
	char addr[UTIL_SOCKADDR_STRLEN], list[CHECK_REASON_MAX / 2];
	size_t i;

	for (i = 0; i < a->count && i < CHECK_ADDRS_MAX && l == NULL; i++)
		l = check_listener_of(c, &a->addr[i]);
	if (l != NULL) {
		util_sockaddr_str((const struct sockaddr *)&a->addr[i - 1].ss,
		    addr, sizeof(addr));
		check_report_add(&ch->report, "gateway", ch->subject, CHECK_OK,
		    "%s is this gateway's public listener (%s:%d)", addr,
		    l->origin.file, l->origin.line);
		ch->tally.working++;
		return;
	}
	check_addrs_text(a, addr, sizeof(addr));
	check_listeners_text(c, list, sizeof(list));
	check_report_add(&ch->report, "gateway", ch->subject, CHECK_FAIL,
	    "points to %s, not to this gateway (public listeners: %s)", addr,
	    list);
	ch->tally.fatal++;
}

static void
check_addrs_cb(enum resolve_status st, struct resolve_addrs *a, void *arg)
{
	struct check *ch = arg;
	char why[400], list[CHECK_REASON_MAX];

	if (st != RESOLVE_OK) {
		resolve_req_explain(ch->dns, why, sizeof(why));
		ch->dns = NULL;
		check_report_add(&ch->report, "addresses", ch->target->host,
		    CHECK_FAIL, "%s", why);
		if (st == RESOLVE_TIMEOUT || st == RESOLVE_SERVFAIL)
			ch->tally.unknown++;
		else
			ch->tally.broken++;
		check_next_target(ch);
		return;
	}
	ch->dns = NULL;
	check_addrs_text(a, list, sizeof(list));
	check_report_add(&ch->report, "addresses", ch->target->host, CHECK_OK,
	    "%s", list);
	if (ch->local != NULL) {
		check_gateway(ch, a);
		resolve_addrs_free(a);
		check_next_target(ch);
		return;
	}
	resolve_addrs_free(ch->addrs);
	ch->addrs = a;
	ch->addr_next = 0;
	check_next_addr(ch);
}

static void
check_next_target(struct check *ch)
{
	size_t n = ch->targets->count < CHECK_TARGETS_MAX ?
	    ch->targets->count : CHECK_TARGETS_MAX;

	if (ch->state == CHECK_STATE_PROBE)
		check_back_to_addrs(ch);
	if (ch->target_next >= n) {
		if (ch->local != NULL)
			check_upstream(ch);
		else
			check_done(ch);
		return;
	}
	ch->target = &ch->targets->target[ch->target_next++];
	snprintf(ch->subject, sizeof(ch->subject), "%s:%u", ch->target->host,
	    ch->target->port);
	ch->dns = resolve_addresses(ch->env.resolve, ch->target->host,
	    ch->target->port, check_addrs_cb, ch);
	if (ch->dns == NULL) {
		check_report_add(&ch->report, "addresses", ch->target->host,
		    CHECK_FAIL, "cannot start a DNS query");
		ch->tally.unknown++;
		check_done(ch);
	}
}

/*
 * Probes
 */

static void check_conn_read(struct conn *, void *);
static void check_conn_event(struct conn *, enum conn_event, void *);

static const struct conn_handler check_conn_handler = {
	.read = check_conn_read,
	.event = check_conn_event,
};

/* (Re-)arm the step timer when the probe's state changed. */
static void
check_step_timer(struct check *ch)
{
	enum check_probe_state s = check_probe_state(ch->probe);
	uint64_t ms = s == CHECK_PROBE_CLOSING ? CHECK_CLOSE_MS : CHECK_STEP_MS;
	struct timeval tv = { (time_t)(ms / 1000),
	    (suseconds_t)(ms % 1000 * 1000) };

	if (s == ch->step_state && evtimer_pending(ch->step_timer, NULL))
		return;
	ch->step_state = s;
	ch->step_ms = util_now_ms();
	evtimer_add(ch->step_timer, &tv);
}

/* The upstream's probe is over: say what it means, and end. */
static void
check_upstream_end(struct check *ch, bool failed)
{
	const char *to = ch->inside;
	char subject[CHECK_SUBJECT_MAX];

	snprintf(subject, sizeof(subject), "%s port %u",
	    ch->local->upstream_host, ch->local->upstream_port);
	if (failed) {
		check_report_add(&ch->report, "upstream", subject, CHECK_FAIL,
		    "the internal server of %s does not answer a stream open "
		    "to %s (see above)", ch->domain, to);
		ch->tally.fatal++;
	} else {
		check_report_add(&ch->report, "upstream", subject, CHECK_OK,
		    "the internal server of %s answers a stream open to %s",
		    ch->domain, to);
		/* Only the gateway steps say whether peers reach us. */
	}
	check_done(ch);
}

/* The probe is over: count its address, go on with the walk. */
static void
check_probe_end(struct check *ch)
{
	bool failed = check_probe_has_failed(ch->probe);

	conn_free(ch->conn);
	ch->conn = NULL;
	check_probe_free(ch->probe);
	ch->probe = NULL;
	evtimer_del(ch->step_timer);
	if (ch->state == CHECK_STATE_UPSTREAM) {
		check_upstream_end(ch, failed);
		return;
	}
	if (failed)
		ch->tally.broken++;
	else
		ch->tally.working++;
	check_next_addr(ch);
}

/* Start TLS as a client on the probe's connection. Return 0 or -1. */
static int
check_start_tls(struct check *ch)
{
	struct tls *tls = ch->env.tls(ch->env.tls_arg);
	SSL *ssl;

	if (tls == NULL || (ssl = tls_client_ssl(tls, ch->from, ch->domain,
	    false)) == NULL)
		return -1;
	/* the peer's tls min-version and tls ciphers, as its legs get them */
	if (tls_ssl_relax(ssl, (ch->policy.set & POLICY_SET_TLS_MIN) ?
	    policy_tls_version_number(ch->policy.tls_min) : 0,
	    (ch->policy.set & POLICY_SET_CIPHERS) ? ch->policy.ciphers :
	    NULL) == -1 || (ch->target != NULL && ch->target->direct_tls &&
	    tls_client_alpn(ssl) == -1)) {
		SSL_free(ssl);
		return -1;
	}
	return conn_starttls(ch->conn, ssl, false);
}

/* Write what the probe queued, then do act. */
static void
check_apply(struct check *ch, enum check_action act)
{
	struct xmpp_buf *out = check_probe_output(ch->probe);

	if (xmpp_buf_len(out) > 0 && ch->conn != NULL &&
	    act != CHECK_ACT_CLOSE)
		(void)conn_write(ch->conn, xmpp_buf_data(out), xmpp_buf_len(out));
	xmpp_buf_reset(out);
	if (act == CHECK_ACT_STARTTLS && check_start_tls(ch) == -1)
		act = check_probe_failed(ch->probe, "cannot start TLS");
	if (act == CHECK_ACT_CLOSE) {
		check_probe_end(ch);
		return;
	}
	check_step_timer(ch);
}

static void
check_conn_read(struct conn *c, void *arg)
{
	struct check *ch = arg;
	struct evbuffer *in = conn_input(c);
	size_t len = evbuffer_get_length(in), used;
	enum check_action act;
	const char *p;

	if (len == 0 || (p = (const char *)evbuffer_pullup(in, -1)) == NULL)
		return;
	act = check_probe_input(ch->probe, p, len, &used);
	evbuffer_drain(in, used);
	check_apply(ch, act);
}

static void
check_tls_done(struct check *ch)
{
	SSL *ssl = conn_ssl(ch->conn);
	char desc[128], names[CHECK_REASON_MAX / 2];
	struct check_tls_info info = {
		.description = tls_peer_describe(ssl, desc, sizeof(desc)),
		.status = tls_peer_check(ssl, ch->domain),
		.chain_error = tls_peer_error(ssl),
		.names = tls_peer_names(ssl, names, sizeof(names)),
		.not_after = tls_peer_expiry(ssl),
		.now = (int64_t)time(NULL),
	};

	check_apply(ch, check_probe_tls_done(ch->probe, &info));
}

static void
check_conn_event(struct conn *c, enum conn_event ev, void *arg)
{
	struct check *ch = arg;

	switch (ev) {
	case CONN_EV_CONNECTED:
		check_apply(ch, check_probe_connected(ch->probe,
		    util_now_ms() - ch->step_ms));
		break;
	case CONN_EV_TLS_DONE:
		check_tls_done(ch);
		break;
	case CONN_EV_EOF:
		check_apply(ch, check_probe_failed(ch->probe,
		    "the peer closed the connection"));
		break;
	case CONN_EV_ERROR:
		check_apply(ch, check_probe_failed(ch->probe, conn_error(c)));
		break;
	default:
		break;
	}
}

static void
check_step_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check *ch = arg;
	enum check_probe_state s = check_probe_state(ch->probe);

	check_apply(ch, check_probe_timeout(ch->probe,
	    s == CHECK_PROBE_CLOSING ? CHECK_CLOSE_MS : CHECK_STEP_MS));
}

/* Probe address a in mode; the outcome comes through check_probe_end(). */
static void
check_probe_addr(struct check *ch, const struct resolve_addr *a,
    enum check_probe_mode mode, const char *to)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	const struct config_source *src;
	struct check_probe_params params = {
		.mode = mode,
		.subject = ch->subject,
		.from = mode == CHECK_PROBE_UPSTREAM ? NULL : ch->from,
		.to = to,
		.domain = ch->domain,
		.tls = ch->policy.tls,
		.verify = ch->policy.verify,
	};

	util_sockaddr_str(sa, ch->subject, sizeof(ch->subject));
	if ((ch->probe = check_probe_new(&ch->report, &params)) == NULL) {
		check_report_add(&ch->report, "tcp", ch->subject, CHECK_FAIL,
		    "out of memory");
		ch->tally.unknown++;
		check_done(ch);
		return;
	}
	ch->probes++;
	ch->step_state = CHECK_PROBE_CONNECTING;
	ch->step_ms = util_now_ms();
	src = config_source(ch->env.config, mode == CHECK_PROBE_UPSTREAM ?
	    CONFIG_FACE_INTERNAL : CONFIG_FACE_PUBLIC, sa->sa_family);
	errno = 0;
	ch->conn = conn_new_connect(ch->env.base, sa, a->len,
	    src != NULL ? (const struct sockaddr *)&src->addr : NULL,
	    src != NULL ? src->addrlen : 0, NULL, &check_conn_handler, ch);
	if (ch->conn == NULL) {
		check_apply(ch, check_probe_failed(ch->probe, errno != 0 ?
		    strerror(errno) : "cannot start the connect"));
		return;
	}
	evtimer_del(ch->step_timer);
	check_step_timer(ch);
}

static void
check_next_addr(struct check *ch)
{
	size_t n = ch->addrs->count < CHECK_ADDRS_MAX ? ch->addrs->count :
	    CHECK_ADDRS_MAX;

	if (ch->addr_next >= n || ch->probes >= CHECK_PROBES_MAX) {
		if (ch->addr_next < n)
			check_report_add(&ch->report, "tcp", ch->target->host,
			    CHECK_SKIP, "%zu address(es) not probed: %d probes "
			    "per check at most", n - ch->addr_next,
			    CHECK_PROBES_MAX);
		check_next_target(ch);
		return;
	}
	if (ch->state == CHECK_STATE_ADDRS)
		check_enter_state(ch, CHECK_STATE_PROBE);
	check_probe_addr(ch, &ch->addrs->addr[ch->addr_next++],
	    ch->target->direct_tls ? CHECK_PROBE_DIRECT_TLS :
	    CHECK_PROBE_REMOTE, ch->domain);
}

/*
 * A local domain's upstream
 */

static void
check_upstream_addrs_cb(enum resolve_status st, struct resolve_addrs *a,
    void *arg)
{
	struct check *ch = arg;
	char why[400];
	const char *to = ch->inside;

	if (st != RESOLVE_OK) {
		resolve_req_explain(ch->dns, why, sizeof(why));
		ch->dns = NULL;
		check_report_add(&ch->report, "upstream", ch->subject,
		    CHECK_FAIL, "%s", why);
		ch->tally.fatal++;
		check_done(ch);
		return;
	}
	ch->dns = NULL;
	resolve_addrs_free(ch->addrs);
	ch->addrs = a;
	ch->target = NULL;
	check_enter_state(ch, CHECK_STATE_UPSTREAM);
	check_probe_addr(ch, &a->addr[0], CHECK_PROBE_UPSTREAM, to);
}

static void
check_upstream(struct check *ch)
{
	const struct config_domain *d = ch->local;

	check_enter_state(ch, CHECK_STATE_UPSTREAM_ADDRS);
	if (d->upstream_host == NULL) {
		check_report_add(&ch->report, "upstream", ch->domain,
		    CHECK_FAIL, "no upstream configured for the domain");
		ch->tally.fatal++;
		check_done(ch);
		return;
	}
	snprintf(ch->subject, sizeof(ch->subject), "%s port %u",
	    d->upstream_host, d->upstream_port);
	ch->dns = resolve_addresses(ch->env.resolve, d->upstream_host,
	    d->upstream_port, check_upstream_addrs_cb, ch);
	if (ch->dns == NULL) {
		check_report_add(&ch->report, "upstream", ch->subject,
		    CHECK_FAIL, "cannot start a DNS query");
		ch->tally.unknown++;
		check_done(ch);
	}
}

/*
 * Start and results
 */

/* DOMAIN's rule: a deny breaks federation whatever the peer does. */
static void
check_policy(struct check *ch)
{
	struct policy_match m;
	const char *pattern;

	if (policy_match(ch->env.config->policy, ch->domain, &m) == -1) {
		policy_settings_init(&ch->policy);
		return;
	}
	ch->policy = m.settings;
	pattern = m.rule != NULL ? policy_rule_pattern(m.rule) : "built-in";
	if (m.settings.allow)
		check_report_add(&ch->report, "policy", ch->domain, CHECK_OK,
		    "allowed by rule %s: tls %s, verify %s, auth %s", pattern,
		    policy_tls_name(m.settings.tls),
		    policy_verify_name(m.settings.verify),
		    policy_auth_name(m.settings.auth));
	else {
		check_report_add(&ch->report, "policy", ch->domain, CHECK_FAIL,
		    "denied by rule %s of fedgated's policy", pattern);
		ch->tally.fatal++;
	}
}

static struct check *
check_alloc(const struct check_env *env)
{
	struct check *ch;

	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		return NULL;
	ch->env = *env;
	ch->env.config = config_ref(env->config);
	ch->started_ms = util_now_ms();
	ch->step_timer = evtimer_new(env->base, check_step_timeout_cb, ch);
	ch->deadline = evtimer_new(env->base, check_deadline_cb, ch);
	ch->finish = event_new(env->base, -1, 0, check_finish_cb, ch);
	if (ch->step_timer == NULL || ch->deadline == NULL ||
	    ch->finish == NULL) {
		check_free(ch);
		return NULL;
	}
	return ch;
}

/* Choose from: the option, else the first local domain. */
static int
check_choose_from(struct check *ch, const char *from, char *err,
    size_t errlen)
{
	const struct config_domain *d = TAILQ_FIRST(&ch->env.config->domains);

	if (from == NULL && d == NULL) {
		snprintf(err, errlen, "no local domain to send the stream "
		    "header from: configure one, or give one with from");
		return -1;
	}
	strlcpy(ch->from, from != NULL ? from : d->name, sizeof(ch->from));
	return 0;
}

struct check *
check_start(const struct check_env *env, const char *domain,
    const char *from, void (*done)(struct check *, void *), void *arg,
    char *err, size_t errlen)
{
	struct timeval tv = { CHECK_TIME_MS / 1000, 0 };
	struct local_name n;
	struct check *ch;

	if ((ch = check_alloc(env)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ch->done = done;
	ch->arg = arg;
	strlcpy(ch->domain, domain, sizeof(ch->domain));
	if (check_choose_from(ch, from, err, errlen) == -1) {
		check_free(ch);
		return NULL;
	}
	if (local_find(ch->env.config, CONFIG_FACE_PUBLIC, domain, &n)) {
		ch->local = n.dom;	/* a local domain, or a subdomain */
		strlcpy(ch->inside, n.internal_name, sizeof(ch->inside));
	}
	log_info("check %s: started, from %s%s", ch->domain, ch->from,
	    ch->local != NULL ? " (a local domain)" : "");
	evtimer_add(ch->deadline, &tv);
	if (ch->local == NULL)
		check_policy(ch);
	ch->dns = resolve_s2s(env->resolve, domain,
	    env->tls(env->tls_arg) != NULL, check_srv_cb, ch);
	if (ch->dns == NULL) {
		check_report_add(&ch->report, "srv", domain, CHECK_FAIL,
		    "cannot start a DNS query");
		ch->tally.unknown++;
		check_done(ch);
	}
	return ch;
}

void
check_free(struct check *ch)
{
	if (ch == NULL)
		return;
	if (ch->dns != NULL)
		resolve_cancel(ch->dns);
	conn_free(ch->conn);
	check_probe_free(ch->probe);
	if (ch->step_timer != NULL)
		event_free(ch->step_timer);
	if (ch->deadline != NULL)
		event_free(ch->deadline);
	if (ch->finish != NULL)
		event_free(ch->finish);
	resolve_targets_free(ch->targets);
	resolve_addrs_free(ch->addrs);
	config_unref(ch->env.config);
	free(ch);
}

const struct check_report *
check_report(const struct check *ch)
{
	return &ch->report;
}

enum check_outcome
check_result(const struct check *ch)
{
	return check_outcome(&ch->tally);
}

const char *
check_domain(const struct check *ch)
{
	return ch->domain;
}

const char *
check_from(const struct check *ch)
{
	return ch->from;
}

bool
check_is_local(const struct check *ch)
{
	return ch->local != NULL;
}

uint64_t
check_elapsed_ms(const struct check *ch)
{
	return util_now_ms() - ch->started_ms;
}
