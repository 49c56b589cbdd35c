/*
 * preflight: start-up's failures, found before start-up. See preflight.h.
 */
#include "fgconfig.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/capability.h>

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "policy.h"
#include "preflight.h"
#include "tls.h"
#include "util.h"

/* The most the as-user child reports, in bytes. */
#define PREFLIGHT_CHILD_MAX	8192

/* Append "ORIGIN: what" (or "what" without an origin); count one. */
static void __attribute__((format(printf, 4, 5)))
preflight_fail(char **errors, int *n, const struct config_origin *o,
    const char *fmt, ...)
{
	char what[768], line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (o != NULL && o->file != NULL)
		snprintf(line, sizeof(line), "%s:%d: %s", o->file, o->line,
		    what);
	else
		snprintf(line, sizeof(line), "%s", what);
	util_append_line(errors, line);
	(*n)++;
}

/* Append text, lines that end in newlines; count each line as one problem. */
static void
preflight_fail_text(char **errors, int *n, const char *text)
{
	const char *p, *eol;
	char line[1024];

	for (p = text; (eol = strchr(p, '\n')) != NULL; p = eol + 1) {
		snprintf(line, sizeof(line), "%.*s", (int)(eol - p), p);
		util_append_line(errors, line);
		(*n)++;
	}
}

/* The user, the group and the control socket's group exist. */
static void
preflight_accounts(const struct config *c, char **errors, int *n)
{
	if (c->user != NULL && getpwnam(c->user) == NULL)
		preflight_fail(errors, n, &c->origins[CONFIG_SET_USER],
		    "user \"%s\" does not exist on this host", c->user);
	if (c->group != NULL && getgrnam(c->group) == NULL)
		preflight_fail(errors, n, &c->origins[CONFIG_SET_GROUP],
		    "group \"%s\" does not exist on this host", c->group);
	if (c->control_group != NULL && getgrnam(c->control_group) == NULL)
		preflight_fail(errors, n, &c->origins[CONFIG_SET_CONTROL],
		    "control socket group \"%s\" does not exist on this host",
		    c->control_group);
}

/* Every certificate loads, with its key, as start-up loads them. */
static void
preflight_certificates(const struct config *c, char **errors, int *n)
{
	struct tls *t;
	char *tls_errors = NULL;

	if ((t = daemon_load_tls(c, NULL, &tls_errors)) != NULL) {
		tls_free(t);
		return;
	}
	if (tls_errors != NULL)
		preflight_fail_text(errors, n, tls_errors);
	else
		preflight_fail(errors, n, NULL, "TLS set-up failed");
	free(tls_errors);
}

struct preflight_tls_walk {
	const struct config	*config;
	char			**errors;
	int			*n;
};

/*
 * A rule that lets its peers in only over TLS (tls required, or SASL
 * EXTERNAL as the only method) needs a certificate for every local domain
 * they may reach: STARTTLS is offered with the certificate of the stream's
 * to-domain.
 */
static void
preflight_rule_tls(const struct policy_rule *r, void *arg)
{
	struct preflight_tls_walk *w = arg;
	const struct policy_settings *s = policy_rule_settings(r);
	const struct config_domain *dom;
	const char *why;

	if ((s->set & POLICY_SET_ALLOW) && !s->allow)
		return;
	if ((s->set & POLICY_SET_TLS) && s->tls == POLICY_TLS_REQUIRED)
		why = "requires TLS";
	else if ((s->set & POLICY_SET_AUTH) && s->auth == POLICY_AUTH_EXTERNAL)
		why = "allows SASL EXTERNAL only";
	else
		return;
	TAILQ_FOREACH(dom, &w->config->domains, entry)
		if (dom->certificate == NULL)
			preflight_fail(w->errors, w->n, NULL, "%s:%d: peer "
			    "\"%s\" %s, but domain \"%s\" has no certificate "
			    "to offer", policy_rule_origin(r) != NULL ?
			    policy_rule_origin(r) : "(built in)",
			    policy_rule_line(r), policy_rule_pattern(r), why,
			    dom->name);
}

/* TLS that the configuration asks for can be given. */
static void
preflight_tls_needs(const struct config *c, char **errors, int *n)
{
	struct preflight_tls_walk w = { c, errors, n };
	const struct config_listen *l;
	const struct config_domain *dom;

	TAILQ_FOREACH(l, &c->listens, entry) {
		if (!l->direct_tls)
			continue;
		TAILQ_FOREACH(dom, &c->domains, entry)
			if (dom->certificate == NULL)
				preflight_fail(errors, n, &l->origin,
				    "listen %s on %s port %u tls: domain \"%s\" "
				    "has no certificate to offer",
				    config_face_name(l->face), l->host, l->port,
				    dom->name);
	}
	policy_foreach(c->policy, preflight_rule_tls, &w);
}

/* The directory of path exists (or, with create_one, its parent). */
static void
preflight_dir_of(const char *path, bool create_one, const char *what,
    const struct config_origin *o, char **errors, int *n)
{
	char *copy, *dir, *parent;
	struct stat st;

	if ((copy = strdup(path)) == NULL)
		return;
	dir = dirname(copy);
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			preflight_fail(errors, n, o, "%s %s: %s is not a "
			    "directory", what, path, dir);
	} else if (errno != ENOENT || !create_one) {
		preflight_fail(errors, n, o, "%s %s: %s: %s", what, path, dir,
		    strerror(errno));
	} else {
		parent = dirname(dir);
		if (stat(parent, &st) == -1 || !S_ISDIR(st.st_mode))
			preflight_fail(errors, n, o, "%s %s: neither its "
			    "directory nor %s exists", what, path, parent);
	}
	free(copy);
}

/*
 * The relay keeps CAP_NET_ADMIN for the transparent features: the process
 * must have it to give (a service manager may have left it out of the
 * bounding set, as the systemd unit does).
 */
static void
preflight_capabilities(const struct config *c, char **errors, int *n)
{
	if (!config_uses_transparent(c) || geteuid() != 0 ||
	    prctl(PR_CAPBSET_READ, CAP_NET_ADMIN, 0, 0, 0) != 0)
		return;
	preflight_fail(errors, n, NULL, "the transparent features need "
	    "CAP_NET_ADMIN, which is not in this process's capability "
	    "bounding set (systemd: CapabilityBoundingSet=CAP_NET_ADMIN in a "
	    "drop-in, fedgated(8))");
}

/* The places start-up writes to exist. */
static void
preflight_places(const struct config *c, char **errors, int *n)
{
	if (c->pid_file != NULL)
		preflight_dir_of(c->pid_file, false, "pid-file",
		    &c->origins[CONFIG_SET_PID_FILE], errors, n);
	/* start-up makes the socket's directory, one level */
	preflight_dir_of(c->control_path, true, "control socket",
	    &c->origins[CONFIG_SET_CONTROL], errors, n);
}

/*
 * Each listener's address belongs to this host: bind it with port 0, which
 * cannot collide with a running fedgated. A port in use is not checked for
 * that reason (-n is run beside the daemon before a reload).
 */
static void
preflight_addresses(const struct config *c, char **errors, int *n)
{
	const struct config_listen *l;
	struct sockaddr_storage ss;
	int fd;

	TAILQ_FOREACH(l, &c->listens, entry) {
		memcpy(&ss, &l->addr, sizeof(ss));
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = 0;
		else if (ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_port = 0;
		else
			continue;
		if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) == -1) {
			preflight_fail(errors, n, &l->origin, "listen %s on %s "
			    "port %u: socket: %s", config_face_name(l->face),
			    l->host, l->port, strerror(errno));
			continue;
		}
		if (bind(fd, (struct sockaddr *)&ss, l->addrlen) == -1)
			preflight_fail(errors, n, &l->origin, "listen %s on %s "
			    "port %u: %s", config_face_name(l->face), l->host,
			    l->port, errno == EADDRNOTAVAIL ? "not an address of this "
			    "host" : strerror(errno));
		close(fd);
	}
}

/*
 * What the relay reads and writes after the privilege drop, as it will:
 * OpenSSL looks certificates up in tls ca-path when it verifies a peer,
 * long after start-up, and runtime policy rules are saved in the state
 * directory. (Certificates, keys and secrets are read by the root parent.)
 */
static void
preflight_readable(const struct config *c, char **errors, int *n)
{
	struct stat st;

	/* runtime policy rules are saved there (made at start-up if missing) */
	if (stat(c->state_dir, &st) == 0 &&
	    access(c->state_dir, W_OK | X_OK) == -1)
		preflight_fail(errors, n, &c->origins[CONFIG_SET_STATE],
		    "state directory %s: %s (runtime policy rules would not be "
		    "saved)", c->state_dir, strerror(errno));
	if (c->ca_file != NULL && access(c->ca_file, R_OK) == -1)
		preflight_fail(errors, n, &c->origins[CONFIG_SET_CA_FILE],
		    "tls ca-file %s: %s", c->ca_file, strerror(errno));
	if (c->ca_path == NULL)
		return;
	if (stat(c->ca_path, &st) == -1 || access(c->ca_path, R_OK | X_OK) == -1)
		preflight_fail(errors, n, &c->origins[CONFIG_SET_CA_PATH],
		    "tls ca-path %s: %s", c->ca_path, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		preflight_fail(errors, n, &c->origins[CONFIG_SET_CA_PATH],
		    "tls ca-path %s: not a directory", c->ca_path);
}

/* In a child: become pw's user, check, write the errors to fd. */
static void __attribute__((noreturn))
preflight_child(const struct config *c, const struct passwd *pw, gid_t gid,
    int fd)
{
	char *errors = NULL;
	int n = 0;
	size_t len;

	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		_exit(2);
	preflight_readable(c, &errors, &n);
	if (errors != NULL) {
		len = strlen(errors);
		if (len > PREFLIGHT_CHILD_MAX)
			len = PREFLIGHT_CHILD_MAX;
		(void)!write(fd, errors, len);
	}
	_exit(n > 0);
}

/* preflight_readable() as the configured user. */
static void
preflight_as_user(const struct config *c, char **errors, int *n)
{
	struct passwd *pw;
	struct group *gr;
	gid_t gid;
	char buf[PREFLIGHT_CHILD_MAX + 1];
	ssize_t got;
	size_t len = 0;
	int p[2], status;
	pid_t pid;

	if (c->user == NULL || geteuid() != 0 ||
	    (pw = getpwnam(c->user)) == NULL) {
		preflight_readable(c, errors, n);
		return;
	}
	gid = pw->pw_gid;
	if (c->group != NULL) {
		if ((gr = getgrnam(c->group)) == NULL)
			return;		/* said by preflight_accounts() */
		gid = gr->gr_gid;
	}
	if (pipe(p) == -1 || (pid = fork()) == -1) {
		preflight_fail(errors, n, NULL, "cannot check files as user "
		    "%s: %s", c->user, strerror(errno));
		return;
	}
	if (pid == 0) {
		close(p[0]);
		preflight_child(c, pw, gid, p[1]);
	}
	close(p[1]);
	while (len < sizeof(buf) - 1 &&
	    (got = read(p[0], buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1)
			break;
		len += (size_t)got;
	}
	close(p[0]);
	buf[len] = '\0';
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		preflight_fail(errors, n, &c->origins[CONFIG_SET_USER],
		    "cannot become user \"%s\" to check its files", c->user);
	else if (len > 0)
		preflight_fail_text(errors, n, buf);
}

int
preflight_check(const struct config *c, char **errors)
{
	int n = 0;

	preflight_accounts(c, errors, &n);
	preflight_certificates(c, errors, &n);
	preflight_tls_needs(c, errors, &n);
	preflight_capabilities(c, errors, &n);
	preflight_places(c, errors, &n);
	preflight_addresses(c, errors, &n);
	preflight_as_user(c, errors, &n);
	return n;
}
