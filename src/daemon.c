/*
 * daemon: the running gateway. Owns the event base's top-level objects, the
 * current configuration and the lifecycle:
 *
 *	STARTING --bind/run--> RUNNING --stop--> DRAINING --drained--> STOPPED
 *
 * Reload parses into a new config, validates it, and swaps only when it is
 * whole; the runtime policy overrides made through the control socket are
 * carried over.
 *
 * The service manager hears of it (notify.h): READY=1 on entering RUNNING,
 * RELOADING=1 and READY=1 around a reload, STOPPING=1 on entering
 * DRAINING. This is the relay, the process that accepts.
 */
#include "fgconfig.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bundle.h"
#include "config.h"
#include "control.h"
#include "ct.h"
#include "daemon.h"
#include "jid.h"
#include "leg.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "notify.h"
#include "policy.h"
#include "priv.h"
#include "state.h"
#include "resolve.h"
#include "route.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

/* A bound listener and what its accepted sockets are for. */
struct daemon_listener {
	TAILQ_ENTRY(daemon_listener) entry;
	struct listener		*listener;
	enum config_face	 face;
	bool			 direct_tls;
	bool			 proxy;		/* PROXY v2 header first */
	int			 metrics_id;	/* metrics_listener_add() */
	struct daemon		*d;
};
TAILQ_HEAD(daemon_listeners, daemon_listener);

struct daemon {
	struct event_base	*base;
	struct config		*config;	/* current; legs hold their own refs */
	char			*config_path;
	enum daemon_state	 state;
	int64_t			 started;	/* wall clock, seconds */
	unsigned		 reloads;
	struct control		*control;
	struct metrics_http	*metrics;	/* or NULL: not configured */
	struct daemon_listeners	 listeners;
	unsigned		 nlisteners;
	struct tls		*tls;		/* certificates of the config */
	struct resolve		*resolve;
	struct leg_env		*legs;		/* the legs and their routes */
	struct priv		*priv;		/* reloads read through it; or NULL */
	struct worker		*worker;	/* which of the workers; or NULL */
	struct event		*drain_timer;	/* polls DRAINING */
	uint64_t		 drain_deadline; /* util_now_ms() */
	bool			 in_closed;	/* system-shutdown sent to the
						   incoming legs */
	bool			 legs_closed;	/* and to every leg */
};

static const char *const daemon_state_names[] = {
	[DAEMON_STARTING] = "starting",
	[DAEMON_RUNNING] = "running",
	[DAEMON_DRAINING] = "draining",
	[DAEMON_STOPPED] = "stopped",
};

/* Allowed transitions: from -> bitmask of targets. */
static const unsigned daemon_transitions[] = {
	[DAEMON_STARTING] = 1u << DAEMON_RUNNING | 1u << DAEMON_STOPPED,
	[DAEMON_RUNNING] = 1u << DAEMON_DRAINING,
	[DAEMON_DRAINING] = 1u << DAEMON_STOPPED,
	[DAEMON_STOPPED] = 0,
};

/*
 * Acknowledgement pings across workers (route_table_set_worker()): the
 * answer to a ping of worker W's route came to this worker, and goes to
 * W as a note "ack FACE LOCAL REMOTE ID TYPE", which W's route_ack()
 * takes as if it had come on its own leg.
 */
static void
daemon_forward_ack(void *arg, unsigned to, enum config_face face,
    const char *local, const char *remote, const char *id, const char *type)
{
	struct daemon *d = arg;
	char line[WORKER_REQUEST_MAX + 1];
	int n;

	n = snprintf(line, sizeof(line), "ack %d %s %s %s %s", (int)face,
	    local, remote, id, type);
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    worker_note(d->worker, to, line) == -1)
		log_warnx("route: %s->%s: cannot hand the answer to ping %s "
		    "to worker %u", remote, local, UTIL_ESC(id), to);
	else
		log_debug("route: %s->%s: answer to ping %s handed to worker "
		    "%u", remote, local, UTIL_ESC(id), to);
}

/* A note from another worker (worker_set_note()). */
static void
daemon_note(void *arg, const char *line)
{
	struct daemon *d = arg;
	char buf[WORKER_REQUEST_MAX + 1], *f[6], *save = NULL, *p = buf;
	size_t n = 0;

	if (strlcpy(buf, line, sizeof(buf)) >= sizeof(buf))
		return;
	while (n < nitems(f) && (f[n] = strtok_r(p, " ", &save)) != NULL) {
		p = NULL;
		n++;
	}
	if (n != nitems(f) || strcmp(f[0], "ack") != 0 ||
	    strtok_r(NULL, " ", &save) != NULL || d->legs == NULL ||
	    (strcmp(f[1], "0") != 0 && strcmp(f[1], "1") != 0 &&
	    strcmp(f[1], "2") != 0)) {
		log_warnx("worker %u: a note it does not know, dropped: %s",
		    worker_index(d->worker), UTIL_ESC(line));
		return;
	}
	(void)route_ack(leg_env_routes(d->legs), (enum config_face)atoi(f[1]),
	    f[2], f[3], f[4], f[5]);
}

/* d is one of several workers: leg ids, pings and notes say which. */
static void
daemon_join_workers(struct daemon *d)
{
	struct worker *w = d->worker;

	leg_env_set_ids(d->legs, worker_index(w), worker_count(w));
	route_table_set_worker(leg_env_routes(d->legs), worker_nonce(w),
	    worker_index(w), worker_count(w), daemon_forward_ack, d);
	worker_set_note(w, daemon_note, d);
}

/* Whether d is the first worker (or the only one). */
static bool
daemon_is_first(const struct daemon *d)
{
	return d->worker == NULL || worker_index(d->worker) == 0;
}

static unsigned
daemon_workers(const struct daemon *d)
{
	return d->worker != NULL ? worker_count(d->worker) : 1;
}

/* Tell the service manager, if there is one ($NOTIFY_SOCKET): worker 0. */
static void
daemon_notify(const struct daemon *d, const char *state)
{
	if (!daemon_is_first(d))
		return;
	if (notify_send(state) == -1)
		log_warn("cannot notify the service manager (%.*s)",
		    (int)strcspn(state, "\n"), state);
}

static void
daemon_enter_state(struct daemon *d, enum daemon_state next)
{
	if ((daemon_transitions[d->state] & (1u << next)) == 0)
		fatalx("daemon: bad transition %s -> %s",
		    daemon_state_names[d->state], daemon_state_names[next]);
	log_debug("daemon: %s -> %s", daemon_state_names[d->state],
	    daemon_state_names[next]);
	d->state = next;
}

struct daemon *
daemon_new(struct event_base *base, struct config *c, const char *config_path)
{
	struct daemon *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	if ((d->config_path = strdup(config_path)) == NULL) {
		free(d);
		return NULL;
	}
	d->base = base;
	d->config = c;
	d->state = DAEMON_STARTING;
	d->started = (int64_t)time(NULL);
	TAILQ_INIT(&d->listeners);
	return d;
}

void
daemon_free(struct daemon *d)
{
	struct daemon_listener *dl;

	if (d == NULL)
		return;
	control_free(d->control);
	metrics_http_free(d->metrics);
	while ((dl = TAILQ_FIRST(&d->listeners)) != NULL) {
		TAILQ_REMOVE(&d->listeners, dl, entry);
		listener_free(dl->listener);
		free(dl);
	}
	if (d->legs != NULL)
		route_shutdown(leg_env_routes(d->legs));
	if (d->drain_timer != NULL)
		event_free(d->drain_timer);
	leg_env_free(d->legs);
	tls_free(d->tls);
	resolve_free(d->resolve);
	metrics_reset();
	config_unref(d->config);
	free(d->config_path);
	free(d);
}

/*
 * Load pair i of dom into t (0: its own pair, then its further ones).
 * Return 0, or -1 with the error appended to *errors.
 */
static int
daemon_load_pair(struct tls *t, struct bundle *b,
    const struct config_domain *dom, size_t i, char **errors)
{
	const char *cert = i == 0 ? dom->certificate :
	    dom->more_certificates[i - 1];
	const char *key = i == 0 ? dom->key : dom->more_keys[i - 1];
	char err[256], line[512];

	switch (i == 0 ? tls_add_domain_bundle(t, b, dom->name, cert, key,
	    err, sizeof(err)) : tls_add_more_bundle(t, b, dom->name, cert, key,
	    err, sizeof(err))) {
	case 0:
		return 0;
	case 1:
		log_warnx("domain %s: certificate %s: %s", dom->name, cert,
		    err);
		return 0;
	default:
		snprintf(line, sizeof(line), "%s:%d: domain %s: %s",
		    dom->origin.file, dom->origin.line, dom->name, err);
		util_append_line(errors, line);
		return -1;
	}
}

/* Say which listed subdomains of dom no certificate is valid for. */
static void
daemon_warn_subdomains(const struct tls *t, const struct config_domain *dom)
{
	char name[JID_DOMAIN_MAX];

	for (size_t i = 0; i < dom->nsubdomain_names; i++) {
		snprintf(name, sizeof(name), "%s.%s", dom->subdomain_names[i],
		    dom->name);
		if (!tls_has_domain(t, name))
			log_warnx("domain %s: no certificate is valid for "
			    "subdomain %s: it is offered no TLS", dom->name,
			    name);
	}
}

struct tls *
daemon_load_tls(const struct config *c, struct bundle *b, char **errors)
{
	const struct config_domain *dom;
	struct tls *t;
	bool failed = false;

	if ((t = tls_new_bundle(b, c->ca_file, c->ca_path)) == NULL) {
		util_append_line(errors, "cannot create the TLS contexts "
		    "(check tls ca-file and ca-path)");
		return NULL;
	}
	TAILQ_FOREACH(dom, &c->domains, entry) {
		if (dom->certificate == NULL)
			continue;
		for (size_t i = 0; i <= dom->nmore_certificates &&
		    i <= dom->nmore_keys; i++)
			if (daemon_load_pair(t, b, dom, i, errors) == -1)
				failed = true;
	}
	if (failed) {
		tls_free(t);
		return NULL;
	}
	TAILQ_FOREACH(dom, &c->domains, entry)
		daemon_warn_subdomains(t, dom);
	return t;
}

/*
 * Create the resolver of c and start it: trust anchor files are read now,
 * while the relay may still read them. Return it, or NULL with the reason
 * logged.
 */
static struct resolve *
daemon_resolver(struct event_base *base, const struct config *c)
{
	const struct config_resolver_setting *rs;
	struct resolve *r;
	int rc = 0;

	if ((r = resolve_new(base, c->resolver, c->resolver_port,
	    c->timeouts.dns)) == NULL) {
		log_warnx("cannot create the DNS resolver");
		return NULL;
	}
	TAILQ_FOREACH(rs, &c->resolver_settings, entry) {
		switch (rs->kind) {
		case CONFIG_RESOLVER_OPTION:
			rc = resolve_set_option(r, rs->name, rs->value);
			break;
		case CONFIG_RESOLVER_TRUST_ANCHOR:
			rc = resolve_add_trust_anchor(r, rs->value);
			break;
		case CONFIG_RESOLVER_TRUST_ANCHOR_FILE:
			rc = resolve_add_trust_anchor_file(r, rs->value);
			break;
		}
		if (rc == -1) {
			log_warnx("%s:%d: the resolver refuses this setting",
			    rs->origin.file, rs->origin.line);
			break;
		}
	}
	if (rc == -1 || resolve_start(r) == -1) {
		log_warnx("cannot start the DNS resolver");
		resolve_free(r);
		return NULL;
	}
	log_info("DNS: asking %s", resolve_who(r));
	return r;
}

/* Whether two lists of resolver settings differ. */
static bool
daemon_resolver_changed(const struct config *old, const struct config *new)
{
	const struct config_resolver_setting *a, *b;

	if ((old->resolver == NULL) != (new->resolver == NULL) ||
	    (old->resolver != NULL && strcmp(old->resolver,
	    new->resolver) != 0) || old->resolver_port != new->resolver_port)
		return true;
	for (a = TAILQ_FIRST(&old->resolver_settings),
	    b = TAILQ_FIRST(&new->resolver_settings);
	    a != NULL && b != NULL;
	    a = TAILQ_NEXT(a, entry), b = TAILQ_NEXT(b, entry))
		if (a->kind != b->kind || strcmp(a->value, b->value) != 0 ||
		    (a->name != NULL && strcmp(a->name, b->name) != 0))
			return true;
	return a != NULL || b != NULL;
}

/*
 * Warn about source addresses that are not (or not yet) this host's: the
 * connections from them will fail, each saying why.
 */
static void
daemon_check_sources(const struct config *c)
{
	const struct config_source *s;
	int fd;

	for (int f = 0; f < 2; f++)
		for (int a = 0; a < 2; a++) {
			s = &c->sources[f][a];
			if (s->host == NULL)
				continue;
			fd = socket(s->addr.ss_family, SOCK_STREAM |
			    SOCK_CLOEXEC, 0);
			if (fd == -1 || bind(fd, (const struct sockaddr *)
			    &s->addr, s->addrlen) == -1)
				log_warn("%s:%d: source %s %s: cannot bind",
				    s->origin.file, s->origin.line,
				    f == 0 ? "public" : "internal", s->host);
			if (fd != -1)
				close(fd);
		}
}

/*
 * A connection redirected to a transparent listener: an internal incoming
 * leg that remembers where it meant to go.
 */
static void
daemon_accept_transparent(struct daemon_listener *dl, int fd,
    const struct listener_peer *peer)
{
	struct leg_original orig;
	enum ct_how how;
	char err[200], addr[UTIL_SOCKADDR_STRLEN];

	if (ct_original_dst(fd, &orig.dst, &orig.len, &how, err,
	    sizeof(err)) == -1) {
		log_peer(LOG_LEVEL_WARNING, "transparent connection from %s "
		    "refused: no original destination: %s",
		    util_sockaddr_str(peer->addr, addr, sizeof(addr)), err);
		close(fd);
		return;
	}
	orig.how = ct_how_name(how);
	leg_accept(dl->d->legs, CONFIG_FACE_INTERNAL, dl->direct_tls, fd, peer,
	    &orig);
}

static void
daemon_accept(struct listener *l, int fd, const struct listener_peer *peer,
    void *arg)
{
	struct daemon_listener *dl = arg;

	metrics_connection(dl->metrics_id);
	if (dl->face == CONFIG_FACE_TRANSPARENT)
		daemon_accept_transparent(dl, fd, peer);
	else
		leg_accept(dl->d->legs, dl->face, dl->direct_tls, fd, peer,
		    NULL);
}

/* Bound the PROXY header reads of the listeners that expect one: the
 * header within timeout handshake, limit connections waiting at once. */
static void
daemon_configure_listeners(struct daemon *d)
{
	struct daemon_listener *dl;

	TAILQ_FOREACH(dl, &d->listeners, entry)
		if (dl->proxy)
			listener_set_proxy(dl->listener, true,
			    d->config->timeouts.handshake,
			    d->config->limits.connections);
}

static int
daemon_bind_listeners(struct daemon *d)
{
	const struct config_listen *cl;
	struct daemon_listener *dl;
	char err[256];

	TAILQ_FOREACH(cl, &d->config->listens, entry) {
		if ((dl = calloc(1, sizeof(*dl))) == NULL)
			return -1;
		dl->d = d;
		dl->face = cl->face;
		dl->direct_tls = cl->direct_tls;
		dl->proxy = cl->proxy_protocol;
		dl->listener = listener_new(d->base,
		    (const struct sockaddr *)&cl->addr, cl->addrlen,
		    (cl->face == CONFIG_FACE_TRANSPARENT ?
		    LISTENER_TRANSPARENT : 0) | (daemon_workers(d) > 1 ?
		    LISTENER_REUSEPORT : 0), daemon_accept, dl, err,
		    sizeof(err));
		if (dl->listener == NULL) {
			log_warnx("%s:%d: listen %s on %s port %u: %s",
			    cl->origin.file, cl->origin.line,
			    config_face_name(cl->face), cl->host, cl->port, err);
			free(dl);
			return -1;
		}
		TAILQ_INSERT_TAIL(&d->listeners, dl, entry);
		d->nlisteners++;
		dl->metrics_id = metrics_listener_add(
		    listener_address(dl->listener), cl->face);
		log_info("listening on %s (%s%s%s)",
		    listener_address(dl->listener), config_face_name(cl->face),
		    cl->direct_tls ? ", direct TLS" : "",
		    cl->proxy_protocol ? ", PROXY v2 header first" : "");
	}
	daemon_configure_listeners(d);
	return 0;
}

/* Bind the metrics endpoint, if configured. 0, or -1 after logging. */
static int
daemon_bind_metrics(struct daemon *d)
{
	const struct config *c = d->config;
	char err[256];

	if (c->metrics_host == NULL || !daemon_is_first(d))
		return 0;
	d->metrics = metrics_http_new(d->base, d->legs, c->metrics_host,
	    c->metrics_port, err, sizeof(err));
	if (d->metrics == NULL) {
		log_warnx("%s:%d: metrics listen on %s port %u: %s",
		    c->metrics_origin.file, c->metrics_origin.line,
		    c->metrics_host, c->metrics_port, err);
		return -1;
	}
	metrics_http_set_worker(d->metrics, d->worker);
	log_info("metrics on http://%s/metrics",
	    metrics_http_address(d->metrics));
	return 0;
}

int
daemon_bind(struct daemon *d)
{
	const struct config *c = d->config;
	char *errors = NULL;

	if ((d->tls = daemon_load_tls(c, NULL, &errors)) == NULL) {
		log_warnx("%s", errors != NULL ? errors : "TLS set-up failed");
		free(errors);
		return -1;
	}
	if ((d->resolve = daemon_resolver(d->base, c)) == NULL)
		return -1;
	daemon_check_sources(c);
	if ((d->legs = leg_env_new(d->base, d->resolve)) == NULL) {
		log_warnx("out of memory");
		return -1;
	}
	leg_env_set(d->legs, d->config, d->tls);
	if (d->worker != NULL)
		daemon_join_workers(d);
	if (metrics_configure(c) == -1 || daemon_bind_listeners(d) == -1 ||
	    daemon_bind_metrics(d) == -1)
		return -1;
	if (!daemon_is_first(d))
		return 0;	/* worker 0 serves the control socket */
	d->control = control_new(d, c->control_path, c->control_mode,
	    c->control_group);
	if (d->control == NULL)
		return -1;
	return 0;
}

static void
daemon_enable_listeners(struct daemon *d, bool on)
{
	struct daemon_listener *dl;

	TAILQ_FOREACH(dl, &d->listeners, entry)
		if (listener_enable(dl->listener, on) == -1)
			log_warnx("listener %s: cannot %s accepting",
			    listener_address(dl->listener), on ? "start" : "stop");
}

void
daemon_run(struct daemon *d)
{
	if (d->control != NULL && control_listen(d->control) == -1)
		fatalx("cannot listen on control socket %s",
		    d->config->control_path);
	daemon_enable_listeners(d, true);
	if (d->metrics != NULL)
		metrics_http_enable(d->metrics, 1);
	daemon_enter_state(d, DAEMON_RUNNING);
	if (daemon_workers(d) > 1)
		log_info("fedgated %s worker %u of %u running: config %s, "
		    "control %s", PACKAGE_VERSION, worker_index(d->worker),
		    daemon_workers(d), d->config_path,
		    d->config->control_path);
	else
		log_info("fedgated %s running: config %s, control %s",
		    PACKAGE_VERSION, d->config_path, d->config->control_path);
	daemon_notify(d, "READY=1\nSTATUS=running");
}

/* Whether two optional strings differ. */
static bool
daemon_str_changed(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* Warn about settings that a reload cannot change; they keep their value. */
static void
daemon_check_fixed(const struct config *old, const struct config *new)
{
	static const char *const what = "takes effect only after a restart";
	const struct config_listen *a, *b;

	if (strcmp(old->control_path, new->control_path) != 0 ||
	    old->control_mode != new->control_mode ||
	    daemon_str_changed(old->control_group, new->control_group))
		log_warnx("reload: control socket change %s", what);
	if (daemon_str_changed(old->user, new->user) ||
	    daemon_str_changed(old->group, new->group))
		log_warnx("reload: user or group change %s", what);
	if (daemon_str_changed(old->metrics_host, new->metrics_host) ||
	    old->metrics_port != new->metrics_port)
		log_warnx("reload: metrics listen change %s", what);
	if (daemon_str_changed(old->pid_file, new->pid_file))
		log_warnx("reload: pid-file change %s", what);
	if (daemon_resolver_changed(old, new))
		log_warnx("reload: resolver change %s", what);
	if (old->workers != new->workers)
		log_warnx("reload: workers change (%u to %u) %s; %u keep "
		    "running", old->workers, new->workers, what, old->workers);
	for (a = TAILQ_FIRST(&old->listens), b = TAILQ_FIRST(&new->listens);
	    a != NULL && b != NULL;
	    a = TAILQ_NEXT(a, entry), b = TAILQ_NEXT(b, entry))
		if (a->face != b->face || a->direct_tls != b->direct_tls ||
		    a->proxy_protocol != b->proxy_protocol ||
		    a->addrlen != b->addrlen ||
		    memcmp(&a->addr, &b->addr, a->addrlen) != 0)
			break;
	if (a != NULL || b != NULL)
		log_warnx("reload: listener change %s", what);
}

void
daemon_set_priv(struct daemon *d, struct priv *p)
{
	d->priv = p;
}

void
daemon_set_worker(struct daemon *d, struct worker *w)
{
	d->worker = w;
}

struct worker *
daemon_worker(const struct daemon *d)
{
	return d->worker;
}

int
daemon_reload(struct daemon *d, char **errors)
{
	struct bundle *b = NULL;
	struct config *c;
	struct tls *t;
	enum log_level old_level;
	unsigned closed;

	*errors = NULL;
	if (d->state != DAEMON_RUNNING) {
		util_append_line(errors, "reload refused: daemon is not running");
		return -1;
	}
	daemon_notify(d, "RELOADING=1\nSTATUS=reloading");
	/* privilege separated: the parent reads, this process never does */
	if (d->priv != NULL && (b = priv_fetch(d->priv, errors)) == NULL)
		goto refused;
	if ((c = config_load_bundle(d->config_path, b, errors)) == NULL)
		goto refused;
	if (config_check_supported(c, errors) > 0) {
		config_unref(c);
		goto refused;
	}
	if (policy_copy_overrides(c->policy, d->config->policy) == -1) {
		config_unref(c);
		util_append_line(errors, "reload refused: out of memory");
		goto refused;
	}
	if ((t = daemon_load_tls(c, b, errors)) == NULL) {
		config_unref(c);
		goto refused;
	}
	bundle_free(b);
	b = NULL;
	daemon_check_fixed(d->config, c);
	daemon_check_sources(c);
	old_level = d->config->log_level;
	config_unref(d->config);
	d->config = c;
	tls_free(d->tls);		/* live SSLs outlive it */
	d->tls = t;
	leg_env_set(d->legs, c, t);
	if (metrics_configure(c) == -1)
		log_warnx("reload: out of memory: metrics domains unchanged");
	daemon_configure_listeners(d);
	d->reloads++;
	if ((closed = leg_close_denied(d->legs, "denied by the reloaded policy")) > 0)
		log_info("reload: closed %u legs the new policy denies", closed);
	/* the file's level when the file changed it; else the one in force
	 * (fedgatectl log level may have lowered or raised it) */
	if (c->log_level != old_level)
		log_set_level(c->log_level);
	log_info("reload: configuration %s loaded", d->config_path);
	daemon_notify(d, "READY=1\nSTATUS=running");
	return 0;
 refused:
	bundle_free(b);
	log_warnx("reload: configuration %s refused, keeping the running one",
	    d->config_path);
	if (*errors != NULL) {
		char *copy = strdup(*errors), *line, *save = NULL;

		for (line = copy != NULL ? strtok_r(copy, "\n", &save) : NULL;
		    line != NULL; line = strtok_r(NULL, "\n", &save))
			log_warnx("reload: %s", line);
		free(copy);
	}
	daemon_notify(d, "READY=1\nSTATUS=running; the last reload was refused "
	    "(see the log)");
	return -1;
}

/*
 * After a runtime rule changed: save the runtime rules, close what the
 * policy now denies. Return the number of legs closed.
 */
static unsigned
daemon_policy_changed(struct daemon *d, const char *what, char *save_err,
    size_t save_errlen)
{
	unsigned closed;

	save_err[0] = '\0';
	/* every worker has the rule; the first one saves it */
	if (daemon_is_first(d) && state_save_policy(d->config->state_dir,
	    d->config->policy, save_err, save_errlen) == -1)
		log_warnx("policy: %s is in force but not saved: %s", what,
		    save_err);
	closed = leg_close_denied(d->legs, "denied by a runtime policy rule");
	log_info("policy: %s; %u legs closed", what, closed);
	return closed;
}

int
daemon_policy_set(struct daemon *d, const char *pattern,
    const struct policy_settings *s, char *err, size_t errlen,
    char *save_err, size_t save_errlen)
{
	char what[1100];

	if (policy_set(d->config->policy, pattern, s, "control", 0, err,
	    errlen) == -1)
		return -1;
	snprintf(what, sizeof(what), "runtime rule for %.1030s set", pattern);
	return (int)daemon_policy_changed(d, what, save_err, save_errlen);
}

int
daemon_policy_remove(struct daemon *d, const char *pattern, char *err,
    size_t errlen, char *save_err, size_t save_errlen)
{
	char what[1100];

	if (policy_remove_runtime(d->config->policy, pattern) == -1) {
		snprintf(err, errlen, "no runtime rule for \"%.1030s\"",
		    pattern);
		return -1;
	}
	snprintf(what, sizeof(what), "runtime rule for %.1030s removed",
	    pattern);
	return (int)daemon_policy_changed(d, what, save_err, save_errlen);
}

static void
daemon_drained(struct daemon *d)
{
	daemon_enter_state(d, DAEMON_STOPPED);
	control_free(d->control);
	d->control = NULL;
	event_base_loopexit(d->base, NULL);
}

/*
 * DRAINING, every 50 ms: once no stanza is queued or unacknowledged (or
 * the drain time is nearly over: its last quarter, at most 2 s, is for
 * closing), close the incoming legs with system-shutdown; each reads on
 * until its peer ends the stream, relaying what the peer sent before it
 * saw the close on the outgoing legs, still open. Once no incoming leg is
 * left (or late), bounce what is left and close every leg; once no leg is
 * left (or the drain time is over), stop.
 */
static void
daemon_drain_tick(evutil_socket_t fd, short events, void *arg)
{
	struct daemon *d = arg;
	/* The last part of the drain time is for closing the streams. */
	uint64_t margin = d->config->timeouts.shutdown / 4 < 2000 ?
	    d->config->timeouts.shutdown / 4 : 2000;
	bool late = util_now_ms() + margin >= d->drain_deadline;
	const struct timeval tick = { 0, 50000 };

	if (!d->in_closed &&
	    (route_queued(leg_env_routes(d->legs)) == 0 || late)) {
		d->in_closed = true;
		leg_close_incoming(d->legs, "system shutdown");
	}
	if (d->in_closed && !d->legs_closed &&
	    (leg_count_incoming(d->legs) == 0 || late)) {
		if (late && route_queued(leg_env_routes(d->legs)) > 0)
			log_warnx("shutdown: drain time over with %zu stanzas "
			    "queued or unacknowledged", route_queued(leg_env_routes(d->legs)));
		d->legs_closed = true;
		route_shutdown(leg_env_routes(d->legs));
		leg_close_all(d->legs, "system shutdown");
	}
	if (leg_count(d->legs) == 0 || util_now_ms() >= d->drain_deadline) {
		if (leg_count(d->legs) > 0)
			log_warnx("shutdown: %u legs did not close in time",
			    leg_count(d->legs));
		daemon_drained(d);
		return;
	}
	evtimer_add(d->drain_timer, &tick);
}

void
daemon_stop(struct daemon *d, const char *reason)
{
	if (d->state == DAEMON_STARTING) {
		daemon_enter_state(d, DAEMON_STOPPED);
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (d->state != DAEMON_RUNNING)
		return;
	log_info("shutdown: %s: %u legs, %zu stanzas queued", reason,
	    leg_count(d->legs), route_queued(leg_env_routes(d->legs)));
	daemon_enter_state(d, DAEMON_DRAINING);
	daemon_notify(d, "STOPPING=1\nSTATUS=draining");
	daemon_enable_listeners(d, false);
	d->drain_deadline = util_now_ms() + d->config->timeouts.shutdown;
	d->drain_timer = evtimer_new(d->base, daemon_drain_tick, d);
	if (d->drain_timer == NULL)
		daemon_drained(d);
	else
		daemon_drain_tick(-1, 0, d);
}

struct event_base *
daemon_base(const struct daemon *d)
{
	return d->base;
}

struct config *
daemon_config(const struct daemon *d)
{
	return d->config;
}

const char *
daemon_config_path(const struct daemon *d)
{
	return d->config_path;
}

enum daemon_state
daemon_state(const struct daemon *d)
{
	return d->state;
}

const char *
daemon_state_name(enum daemon_state s)
{
	return daemon_state_names[s];
}

int64_t
daemon_started(const struct daemon *d)
{
	return d->started;
}

unsigned
daemon_reloads(const struct daemon *d)
{
	return d->reloads;
}

unsigned
daemon_listener_count(const struct daemon *d)
{
	return d->nlisteners;
}

unsigned
daemon_leg_count(const struct daemon *d)
{
	return leg_count(d->legs);
}

struct leg_env *
daemon_legs(const struct daemon *d)
{
	return d->legs;
}

struct resolve *
daemon_resolve(const struct daemon *d)
{
	return d->resolve;
}

struct tls *
daemon_tls(const struct daemon *d)
{
	return d->tls;
}
