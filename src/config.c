/*
 * config: the configuration as plain data, its defaults, validation,
 * references, and the table of keywords that are parsed but not supported
 * yet. The grammar is in parse.y.
 */
#include "fgconfig.h"

#include <sys/types.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#define CONFIG_PRIVATE
#include "bundle.h"
#include "config.h"
#include "jid.h"
#include "log.h"
#include "policy.h"
#include "resolve.h"
#include "util.h"

/*
 * Keywords that the grammar accepts and checks but whose behaviour does not
 * exist yet: fedgated refuses to start with them (config_check_supported()).
 * Later work removes an entry in the same commit that makes it work, and
 * drops the "not supported yet" note from fedgated.conf(5).
 */
static const char *const config_unsupported_keywords[] = {
	"dane",			/* dane yes: TLSA checks */
};

#define CONFIG_SECRET_FILE_MAX	4096

static const char *const config_setting_names[CONFIG_SET_MAX] = {
	[CONFIG_SET_USER] = "user",
	[CONFIG_SET_GROUP] = "group",
	[CONFIG_SET_PID_FILE] = "pid-file",
	[CONFIG_SET_LOG] = "log",
	[CONFIG_SET_LOG_LEVEL] = "log level",
	[CONFIG_SET_CONTROL] = "control socket",
	[CONFIG_SET_METRICS] = "metrics",
	[CONFIG_SET_DIALBACK] = "dialback secret",
	[CONFIG_SET_CA_FILE] = "tls ca-file",
	[CONFIG_SET_CA_PATH] = "tls ca-path",
	[CONFIG_SET_RESOLVER] = "resolver",
	[CONFIG_SET_KEEPALIVE] = "keepalive",
	[CONFIG_SET_STANZA_SIZE] = "limit stanza-size",
	[CONFIG_SET_HEADER_SIZE] = "limit header-size",
	[CONFIG_SET_DEPTH] = "limit depth",
	[CONFIG_SET_ATTRIBUTES] = "limit attributes",
	[CONFIG_SET_CONNECTIONS] = "limit connections",
	[CONFIG_SET_PER_ADDRESS] = "limit connections-per-address",
	[CONFIG_SET_QUEUE] = "limit queue",
	[CONFIG_SET_OUTPUT_BUFFER] = "limit output-buffer",
	[CONFIG_SET_DOMAINS_PER_STREAM] = "limit domains-per-stream",
	[CONFIG_SET_VERIFICATIONS] = "limit verifications",
	[CONFIG_SET_VERIFICATIONS_PER_STREAM] = "limit verifications-per-stream",
	[CONFIG_SET_SASL_ATTEMPTS] = "limit sasl-attempts",
	[CONFIG_SET_UNACKED] = "limit unacked",
	[CONFIG_SET_ACK] = "timeout ack",
	[CONFIG_SET_HANDSHAKE] = "timeout handshake",
	[CONFIG_SET_CONNECT] = "timeout connect",
	[CONFIG_SET_DNS] = "timeout dns",
	[CONFIG_SET_IDLE] = "timeout idle",
	[CONFIG_SET_SHUTDOWN] = "timeout shutdown",
	[CONFIG_SET_STATE] = "state directory",
	[CONFIG_SET_BACKOFF] = "timeout backoff",
	[CONFIG_SET_BACKOFF_MAX] = "timeout backoff-max",
	[CONFIG_SET_WORKERS] = "workers",
};

const char *
config_setting_name(enum config_setting s)
{
	return s < CONFIG_SET_MAX ? config_setting_names[s] : "?";
}

const char *
config_face_name(enum config_face face)
{
	switch (face) {
	case CONFIG_FACE_PUBLIC:
		return "public";
	case CONFIG_FACE_INTERNAL:
		return "internal";
	case CONFIG_FACE_TRANSPARENT:
		return "transparent";
	}
	return "?";
}

/* Defaults: this function and the two constructors below, nowhere else. */
void
config_defaults(struct config *c)
{
	c->log_syslog = true;
	c->log_facility = LOG_DAEMON;
	c->log_level = LOG_LEVEL_INFO;
	c->control_mode = 0660;
	c->metrics_port = CONFIG_DEFAULT_METRICS_PORT;
	c->resolver_port = CONFIG_DEFAULT_RESOLVER_PORT;

	c->limits.stanza_size = 256 * 1024;
	c->limits.header_size = 8 * 1024;
	c->limits.depth = 64;
	c->limits.attributes = 64;
	c->limits.connections = 1000;
	c->limits.connections_per_address = 16;
	c->limits.queue = 256;
	c->limits.output_buffer = 256 * 1024;
	c->limits.domains_per_stream = 16;
	c->limits.verifications = 128;
	c->limits.verifications_per_stream = 16;
	c->limits.sasl_attempts = 3;
	c->limits.unacked = 128;

	c->timeouts.handshake = 30 * 1000;
	c->timeouts.connect = 10 * 1000;
	c->timeouts.dns = 10 * 1000;
	c->timeouts.idle = 10 * 60 * 1000;
	c->timeouts.keepalive = 60 * 1000;
	c->workers = 1;
	c->timeouts.shutdown = 10 * 1000;
	c->timeouts.ack = 30 * 1000;
	c->timeouts.backoff = 1000;
	c->timeouts.backoff_max = 5 * 60 * 1000;
}

struct config_listen *
config_listen_new(void)
{
	struct config_listen *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->face = CONFIG_FACE_PUBLIC;
	l->port = CONFIG_DEFAULT_PORT;
	return l;
}

void
config_listen_free(struct config_listen *l)
{
	if (l == NULL)
		return;
	free(l->host);
	free(l->origin.file);
	free(l);
}

struct config_domain *
config_domain_new(void)
{
	struct config_domain *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->upstream_port = CONFIG_DEFAULT_PORT;
	return d;
}

/* Free the n strings of v, and v. */
static void
config_strings_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
config_domain_free(struct config_domain *d)
{
	if (d == NULL)
		return;
	free(d->name);
	free(d->internal_name);
	free(d->upstream_host);
	free(d->certificate);
	free(d->key);
	config_strings_free(d->more_certificates, d->nmore_certificates);
	config_strings_free(d->more_keys, d->nmore_keys);
	config_strings_free(d->subdomain_names, d->nsubdomain_names);
	free(d->origin.file);
	free(d);
}

struct config *
config_new(void)
{
	struct config *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->refs = 1;
	TAILQ_INIT(&c->listens);
	TAILQ_INIT(&c->domains);
	TAILQ_INIT(&c->unsupported);
	TAILQ_INIT(&c->resolver_settings);
	config_defaults(c);
	if ((c->control_path = strdup(CONFIG_DEFAULT_CONTROL)) == NULL ||
	    (c->state_dir = strdup(CONFIG_DEFAULT_STATE)) == NULL ||
	    (c->policy = policy_new()) == NULL) {
		free(c->control_path);
		free(c->state_dir);
		free(c);
		return NULL;
	}
	return c;
}

static void
config_free(struct config *c)
{
	struct config_listen *l;
	struct config_domain *d;
	struct config_unsupported *u;
	struct config_resolver_setting *rs;

	while ((rs = TAILQ_FIRST(&c->resolver_settings)) != NULL) {
		TAILQ_REMOVE(&c->resolver_settings, rs, entry);
		config_resolver_setting_free(rs);
	}
	for (int f = 0; f < 2; f++)
		for (int a = 0; a < 2; a++) {
			free(c->sources[f][a].host);
			free(c->sources[f][a].origin.file);
		}
	while ((l = TAILQ_FIRST(&c->listens)) != NULL) {
		TAILQ_REMOVE(&c->listens, l, entry);
		config_listen_free(l);
	}
	while ((d = TAILQ_FIRST(&c->domains)) != NULL) {
		TAILQ_REMOVE(&c->domains, d, entry);
		config_domain_free(d);
	}
	while ((u = TAILQ_FIRST(&c->unsupported)) != NULL) {
		TAILQ_REMOVE(&c->unsupported, u, entry);
		free(u->keyword);
		free(u->origin.file);
		free(u);
	}
	for (int i = 0; i < CONFIG_SET_MAX; i++)
		free(c->origins[i].file);
	if (c->dialback_secret != NULL) {
		explicit_bzero(c->dialback_secret, c->dialback_secret_len);
		free(c->dialback_secret);
	}
	policy_free(c->policy);
	free(c->path);
	free(c->user);
	free(c->group);
	free(c->pid_file);
	free(c->control_path);
	free(c->state_dir);
	free(c->control_group);
	free(c->metrics_host);
	free(c->metrics_origin.file);
	for (size_t i = 0; i < c->nmetrics_domains; i++)
		free(c->metrics_domains[i]);
	free(c->metrics_domains);
	free(c->ca_file);
	free(c->ca_path);
	free(c->resolver);
	free(c);
}

void
config_resolver_setting_free(struct config_resolver_setting *rs)
{
	if (rs == NULL)
		return;
	free(rs->name);
	free(rs->value);
	free(rs->origin.file);
	free(rs);
}

const struct config_source *
config_source(const struct config *c, enum config_face face, int family)
{
	const struct config_source *s;

	if (face != CONFIG_FACE_PUBLIC && face != CONFIG_FACE_INTERNAL)
		return NULL;
	s = &c->sources[face == CONFIG_FACE_INTERNAL][family == AF_INET6];
	return s->host != NULL ? s : NULL;
}

int
config_check_resolver(const struct config *c, char **errors)
{
	const struct config_resolver_setting *rs;
	char err[512];
	int n = 0, rc;

	TAILQ_FOREACH(rs, &c->resolver_settings, entry) {
		if (rs->kind == CONFIG_RESOLVER_OPTION)
			rc = resolve_check_option(rs->name, rs->value, err,
			    sizeof(err));
		else
			rc = resolve_check_trust_anchor(rs->value,
			    rs->kind == CONFIG_RESOLVER_TRUST_ANCHOR_FILE, err,
			    sizeof(err));
		if (rc == 0)
			continue;
		n++;
		if (rs->kind == CONFIG_RESOLVER_OPTION)
			config_add_error(errors, rs->origin.file,
			    rs->origin.line, "resolver option %s \"%s\": %s",
			    rs->name, rs->value, err);
		else
			config_add_error(errors, rs->origin.file,
			    rs->origin.line, "resolver trust-anchor%s \"%s\": "
			    "%s", rs->kind == CONFIG_RESOLVER_TRUST_ANCHOR ?
			    "" : " file", rs->value, err);
	}
	return n;
}

struct config *
config_ref(struct config *c)
{
	c->refs++;
	return c;
}

void
config_unref(struct config *c)
{
	if (c != NULL && --c->refs == 0)
		config_free(c);
}

static int __attribute__((format(printf, 4, 0)))
config_vadd_error(char **errors, const char *file, int line, const char *fmt,
    va_list ap)
{
	char msg[1024], *text;
	int r;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* one line each, whatever bytes the file held */
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (errors == NULL)
		return 0;
	if (file == NULL)
		return util_append_line(errors, msg);
	if (asprintf(&text, "%s:%d: %s", file, line, msg) == -1)
		return -1;
	r = util_append_line(errors, text);
	free(text);
	return r;
}

const char *
config_where(const char *here, const char *file, int line, char *buf,
    size_t len)
{
	if (here != NULL && file != NULL && strcmp(here, file) == 0)
		snprintf(buf, len, "line %d", line);
	else
		snprintf(buf, len, "%s:%d", file != NULL ? file : "?", line);
	return buf;
}

int
config_add_error(char **errors, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = config_vadd_error(errors, file, line, fmt, ap);
	va_end(ap);
	return r;
}

const char *
config_unsupported_keyword(size_t i)
{
	return i < nitems(config_unsupported_keywords) ?
	    config_unsupported_keywords[i] : NULL;
}

int
config_note_keyword(struct config *c, const char *keyword, const char *file,
    int line)
{
	struct config_unsupported *u;
	const char *kw;

	for (size_t i = 0; (kw = config_unsupported_keyword(i)) != NULL; i++) {
		if (strcmp(keyword, kw) != 0)
			continue;
		if ((u = calloc(1, sizeof(*u))) == NULL ||
		    (u->keyword = strdup(keyword)) == NULL ||
		    (u->origin.file = strdup(file)) == NULL) {
			if (u != NULL)
				free(u->keyword);
			free(u);
			return -1;
		}
		u->origin.line = line;
		TAILQ_INSERT_TAIL(&c->unsupported, u, entry);
		return 0;
	}
	return 0;
}

int
config_check_supported(const struct config *c, char **errors)
{
	const struct config_unsupported *u;
	int n = 0;

	TAILQ_FOREACH(u, &c->unsupported, entry) {
		config_add_error(errors, u->origin.file, u->origin.line,
		    "\"%s\" is not supported yet", u->keyword);
		n++;
	}
	return n;
}

/*
 * Where config_read_file() and config_read_secret() read: the disk (NULL),
 * or a bundle, for the length of one config_load_bundle().
 */
static struct bundle *config_bundle;

/* Zero and free a buffer that bundle_read() returned. */
static void
config_buf_free(char *buf, size_t len)
{
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
}

int
config_stat(const char *path, mode_t *mode, dev_t *dev, ino_t *ino)
{
	return bundle_stat(config_bundle, path, mode, dev, ino);
}

int
config_read_file(const char *path, size_t max, char **buf, size_t *len,
    char *err, size_t errlen)
{
	mode_t mode;
	int r;

	r = bundle_read(config_bundle, path, max, buf, len, &mode);
	if (mode != 0 && !S_ISREG(mode)) {
		if (r == 0)
			config_buf_free(*buf, *len);
		snprintf(err, errlen, "not a regular file");
		return -1;
	}
	if (r == -1) {
		if (errno == EFBIG)
			snprintf(err, errlen, "larger than %zu bytes", max);
		else
			snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

int
config_read_secret(const char *path, const char *shown, char **secret,
    size_t *len, char *err, size_t errlen)
{
	char *buf;
	size_t n;
	mode_t mode;
	int r, saved;

	r = bundle_read(config_bundle, path, CONFIG_SECRET_FILE_MAX, &buf, &n,
	    &mode);
	saved = errno;
	if (mode == 0) {
		snprintf(err, errlen, "dialback secret file \"%s\": %s", shown,
		    strerror(saved));
		return -1;
	}
	if (!S_ISREG(mode) || (mode & 077)) {
		if (r == 0)
			config_buf_free(buf, n);
		if (!S_ISREG(mode))
			snprintf(err, errlen, "dialback secret file \"%s\" is "
			    "not a regular file", shown);
		else
			snprintf(err, errlen, "dialback secret file \"%s\" is "
			    "accessible by group or others (mode %04o)", shown,
			    (unsigned)(mode & 07777));
		return -1;
	}
	if (r == -1) {
		if (saved == EFBIG)
			snprintf(err, errlen, "dialback secret file \"%s\": "
			    "larger than %d bytes", shown,
			    CONFIG_SECRET_FILE_MAX);
		else
			snprintf(err, errlen, "dialback secret file \"%s\": "
			    "%s", shown, strerror(saved));
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (n < CONFIG_SECRET_MIN) {
		snprintf(err, errlen, "dialback secret file \"%s\" is too "
		    "short (%zu bytes, at least %d)", shown, n,
		    CONFIG_SECRET_MIN);
		config_buf_free(buf, n);
		return -1;
	}
	*secret = buf;
	*len = n;
	return 0;
}

/* Validation: what one statement cannot tell. */

struct config_check {
	struct config	*c;
	char		**errors;
	int		 n;
};

/* An error about what was written at file:line. */
static void __attribute__((format(printf, 4, 5)))
config_fail(struct config_check *k, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_vadd_error(k->errors, file, line, fmt, ap);
	va_end(ap);
	k->n++;
}

static void
config_check_global(struct config_check *k)
{
	struct config *c = k->c;
	const struct config_origin *o;

	if (c->group != NULL && c->user == NULL)
		config_fail(k, c->origins[CONFIG_SET_GROUP].file,
		    c->origins[CONFIG_SET_GROUP].line,
		    "group \"%s\" is set but user is not", c->group);
	if (c->limits.connections_per_address > c->limits.connections) {
		o = &c->origins[CONFIG_SET_PER_ADDRESS];
		if (o->file == NULL)
			o = &c->origins[CONFIG_SET_CONNECTIONS];
		config_fail(k, o->file, o->line, "limit "
		    "connections-per-address %u exceeds limit connections %u",
		    c->limits.connections_per_address, c->limits.connections);
	}
	if (c->timeouts.backoff > c->timeouts.backoff_max) {
		o = &c->origins[CONFIG_SET_BACKOFF];
		if (o->file == NULL)
			o = &c->origins[CONFIG_SET_BACKOFF_MAX];
		config_fail(k, o->file, o->line, "timeout backoff exceeds "
		    "timeout backoff-max");
	}
}

static bool
config_addr_is_any(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return sin->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

/* Would binding both fail? Same port, and the same or a wildcard address. */
static bool
config_addr_overlaps(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;

	if (a->ss_family == AF_INET && b->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port &&
		    (a4->sin_addr.s_addr == b4->sin_addr.s_addr ||
		    config_addr_is_any(a) || config_addr_is_any(b));
	if (a->ss_family == AF_INET6 && b->ss_family == AF_INET6)
		return a6->sin6_port == b6->sin6_port &&
		    (IN6_ARE_ADDR_EQUAL(&a6->sin6_addr, &b6->sin6_addr) ||
		    config_addr_is_any(a) || config_addr_is_any(b));
	/* IPv4 and IPv6: only the IPv6 wildcard (dual stack) covers both */
	if (a->ss_family == AF_INET6)
		return a6->sin6_port == b4->sin_port && config_addr_is_any(a);
	return a4->sin_port == b6->sin6_port && config_addr_is_any(b);
}

static void
config_check_listens(struct config_check *k)
{
	struct config *c = k->c;
	const struct config_listen *l, *e;
	const struct config_domain *d;
	struct sockaddr_storage ms;
	socklen_t mslen;
	char at[PATH_MAX + 16];
	bool has_cert = false;

	TAILQ_FOREACH(d, &c->domains, entry)
		if (d->certificate != NULL)
			has_cert = true;
	TAILQ_FOREACH(l, &c->listens, entry) {
		for (e = TAILQ_FIRST(&c->listens); e != l;
		    e = TAILQ_NEXT(e, entry))
			if (config_addr_overlaps(&l->addr, &e->addr)) {
				config_fail(k, l->origin.file, l->origin.line,
				    "listen on %s port %u overlaps the "
				    "listener at %s", l->host, l->port,
				    config_where(l->origin.file, e->origin.file,
				    e->origin.line, at, sizeof(at)));
				break;
			}
		if (l->direct_tls && !has_cert)
			config_fail(k, l->origin.file, l->origin.line,
			    "listen on %s port %u tls needs a domain with a "
			    "certificate", l->host, l->port);
	}
	if (c->metrics_host == NULL || util_sockaddr_parse(c->metrics_host,
	    c->metrics_port, &ms, &mslen) == -1)
		return;
	TAILQ_FOREACH(l, &c->listens, entry)
		if (config_addr_overlaps(&ms, &l->addr)) {
			config_fail(k, c->metrics_origin.file,
			    c->metrics_origin.line, "metrics on %s port "
			    "%u overlaps the listener at %s", c->metrics_host,
			    c->metrics_port,
			    config_where(c->metrics_origin.file,
			    l->origin.file, l->origin.line, at, sizeof(at)));
			break;
		}
}

static const char *
config_domain_inside(const struct config_domain *d)
{
	return d->internal_name != NULL ? d->internal_name : d->name;
}

static void
config_check_domains(struct config_check *k)
{
	struct config *c = k->c;
	const struct config_domain *d, *e;
	char at[PATH_MAX + 16];

	d = TAILQ_FIRST(&c->domains);
	if (d != NULL && c->dialback_secret == NULL)
		config_fail(k, d->origin.file, d->origin.line, "domain \"%s\" "
		    "needs a \"dialback secret\"", d->name);
	TAILQ_FOREACH(d, &c->domains, entry) {
		if (d->upstream_host == NULL)
			config_fail(k, d->origin.file, d->origin.line,
			    "domain \"%s\" has no upstream", d->name);
		if (d->certificate != NULL && d->key == NULL)
			config_fail(k, d->origin.file, d->origin.line,
			    "domain \"%s\" has a certificate but no key",
			    d->name);
		if (d->key != NULL && d->certificate == NULL)
			config_fail(k, d->origin.file, d->origin.line,
			    "domain \"%s\" has a key but no certificate",
			    d->name);
		if (d->nmore_certificates != d->nmore_keys)
			config_fail(k, d->origin.file, d->origin.line,
			    "domain \"%s\": each certificate needs its key "
			    "(%zu certificate statements, %zu key statements)",
			    d->name, d->nmore_certificates + 1,
			    d->nmore_keys + 1);
		for (e = TAILQ_FIRST(&c->domains); e != d;
		    e = TAILQ_NEXT(e, entry))
			if (strcmp(config_domain_inside(d),
			    config_domain_inside(e)) == 0) {
				config_fail(k, d->origin.file, d->origin.line,
				    "domain \"%s\": internal name \"%s\" is "
				    "already used by domain \"%s\" at %s",
				    d->name,
				    config_domain_inside(d), e->name,
				    config_where(d->origin.file, e->origin.file,
				    e->origin.line, at, sizeof(at)));
				break;
			}
	}
}

struct config_rules {
	const struct policy_rule **v;
	size_t			 n;
	size_t			 size;
	bool			 oom;
};

static void
config_collect_rule(const struct policy_rule *r, void *arg)
{
	struct config_rules *rules = arg;
	const struct policy_rule **v;

	if (rules->n == rules->size) {
		rules->size = rules->size == 0 ? 16 : rules->size * 2;
		if ((v = reallocarray(rules->v, rules->size,
		    sizeof(*v))) == NULL) {
			rules->oom = true;
			return;
		}
		rules->v = v;
	}
	rules->v[rules->n++] = r;
}

/* In the order of the file: by origin, then line. */
static int
config_rule_cmp(const void *a, const void *b)
{
	const struct policy_rule *ra = *(const struct policy_rule *const *)a;
	const struct policy_rule *rb = *(const struct policy_rule *const *)b;
	int d = strcmp(policy_rule_origin(ra), policy_rule_origin(rb));

	if (d != 0)
		return d;
	return policy_rule_line(ra) - policy_rule_line(rb);
}

static void
config_check_rule(struct config_check *k, const struct policy_rule *r,
    const struct policy_settings *dflt)
{
	struct config *c = k->c;
	const struct policy_settings *rs = policy_rule_settings(r);
	const char *pattern = policy_rule_pattern(r);
	const struct config_domain *d;
	const char *file = policy_rule_origin(r);
	int line = policy_rule_line(r);
	struct policy_settings s;
	char name[JID_DOMAIN_MAX + 16], a[32], b[32], at[PATH_MAX + 16];

	if (policy_rule_kind(r) == POLICY_DEFAULT)
		snprintf(name, sizeof(name), "peer default");
	else
		snprintf(name, sizeof(name), "peer \"%s\"", pattern);
	if (policy_rule_kind(r) == POLICY_EXACT)
		TAILQ_FOREACH(d, &c->domains, entry) {
			if (strcmp(d->name, pattern) == 0)
				config_fail(k, file, line, "%s is a local "
				    "domain (domain at %s)", name,
				    config_where(file, d->origin.file,
				    d->origin.line, at, sizeof(at)));
			else if (d->internal_name != NULL &&
			    strcmp(d->internal_name, pattern) == 0)
				config_fail(k, file, line, "%s is the internal "
				    "name of domain \"%s\"", name, d->name);
		}
	if ((rs->set & POLICY_SET_STANZA_SIZE) &&
	    rs->stanza_size > c->limits.stanza_size)
		config_fail(k, file, line, "%s: limit stanza-size %s exceeds "
		    "the global limit %s", name,
		    util_size_str(rs->stanza_size, a, sizeof(a)),
		    util_size_str(c->limits.stanza_size, b, sizeof(b)));
	if ((rs->set & POLICY_SET_CONNECTIONS) &&
	    rs->connections > c->limits.connections)
		config_fail(k, file, line, "%s: limit connections %u exceeds "
		    "the global limit %u", name, rs->connections,
		    c->limits.connections);

	/* what the rule ends up with, the default rule filling its gaps */
	policy_settings_init(&s);
	s.set = 0;
	if (dflt != NULL)
		policy_settings_merge(&s, dflt);
	policy_settings_merge(&s, rs);
	if (!s.allow)
		return;
	if (s.tls == POLICY_TLS_NONE && s.verify == POLICY_VERIFY_REQUIRED)
		config_fail(k, file, line, "%s: verify required needs tls",
		    name);
	else if (s.tls == POLICY_TLS_NONE && s.auth == POLICY_AUTH_EXTERNAL)
		config_fail(k, file, line, "%s: auth external needs tls", name);
	else if (s.verify == POLICY_VERIFY_NONE &&
	    s.auth == POLICY_AUTH_EXTERNAL)
		config_fail(k, file, line, "%s: auth external needs verify "
		    "optional or required", name);
	else if (s.tls == POLICY_TLS_NONE && s.dane)
		config_fail(k, file, line, "%s: dane needs tls", name);
	else if (s.tls == POLICY_TLS_NONE &&
	    (rs->set & (POLICY_SET_TLS_MIN | POLICY_SET_CIPHERS)))
		config_fail(k, file, line, "%s: tls %s needs tls", name,
		    (rs->set & POLICY_SET_TLS_MIN) ? "min-version" : "ciphers");
}

static void
config_check_peers(struct config_check *k)
{
	struct config_rules rules = { 0 };
	const struct policy_settings *dflt = NULL;

	policy_foreach(k->c->policy, config_collect_rule, &rules);
	if (rules.oom) {
		config_add_error(k->errors, NULL, 0, "%s: out of memory",
		    k->c->path);
		k->n++;
		free(rules.v);
		return;
	}
	for (size_t i = 0; i < rules.n; i++)
		if (policy_rule_kind(rules.v[i]) == POLICY_DEFAULT)
			dflt = policy_rule_settings(rules.v[i]);
	if (rules.n > 0)
		qsort(rules.v, rules.n, sizeof(*rules.v), config_rule_cmp);
	for (size_t i = 0; i < rules.n; i++)
		config_check_rule(k, rules.v[i], dflt);
	free(rules.v);
}

int
config_validate(struct config *c, char **errors)
{
	struct config_check k = { .c = c, .errors = errors };

	config_check_global(&k);
	config_check_listens(&k);
	config_check_domains(&k);
	config_check_peers(&k);
	return k.n;
}

static struct config *
config_load_text(const char *name, const char *text, size_t len,
    bool allow_include, char **errors)
{
	struct config *c;
	int n;

	if ((c = config_new()) == NULL || (c->path = strdup(name)) == NULL) {
		config_unref(c);
		config_add_error(errors, NULL, 0, "%s: out of memory", name);
		return NULL;
	}
	n = config_parse(c, name, text, len, allow_include, errors);
	/* checks across statements make sense only on a well-formed file */
	if (n == 0)
		n = config_validate(c, errors);
	if (n > 0) {
		config_unref(c);
		return NULL;
	}
	return c;
}

struct config *
config_load(const char *path, char **errors)
{
	struct config *c;
	char err[256], *text;
	size_t len;

	if (config_read_file(path, CONFIG_FILE_MAX, &text, &len, err,
	    sizeof(err)) == -1) {
		config_add_error(errors, NULL, 0, "%s: %s", path, err);
		return NULL;
	}
	c = config_load_text(path, text, len, true, errors);
	explicit_bzero(text, len);
	free(text);
	return c;
}

struct config *
config_load_bundle(const char *path, struct bundle *b, char **errors)
{
	struct config *c;

	config_bundle = b;
	c = config_load(path, errors);
	config_bundle = NULL;
	return c;
}

struct config *
config_load_buffer(const char *name, const char *text, size_t len,
    bool allow_include, char **errors)
{
	return config_load_text(name, text, len, allow_include, errors);
}

static void
config_rule_is_original(const struct policy_rule *r, void *arg)
{
	const struct policy_settings *s = policy_rule_settings(r);

	if ((s->set & POLICY_SET_RESOLVE) && s->resolve == POLICY_RESOLVE_ORIGINAL)
		*(bool *)arg = true;
}

bool
config_uses_transparent(const struct config *c)
{
	const struct config_listen *l;
	const struct config_domain *dom;
	bool used = false;

	TAILQ_FOREACH(l, &c->listens, entry)
		if (l->face == CONFIG_FACE_TRANSPARENT)
			return true;
	TAILQ_FOREACH(dom, &c->domains, entry)
		if (dom->upstream_transparent)
			return true;
	policy_foreach(c->policy, config_rule_is_original, &used);
	return used;
}

const struct config_domain *
config_domain_find(const struct config *c, const char *name)
{
	const struct config_domain *d;

	TAILQ_FOREACH(d, &c->domains, entry)
		if (strcasecmp(d->name, name) == 0)
			return d;
	return NULL;
}

const struct config_domain *
config_domain_find_internal(const struct config *c, const char *name)
{
	const struct config_domain *d;

	TAILQ_FOREACH(d, &c->domains, entry)
		if (strcasecmp(d->internal_name != NULL ? d->internal_name :
		    d->name, name) == 0)
			return d;
	return NULL;
}
