/*
 * fedgated: the XMPP S2S federation gateway daemon. Options, start-up,
 * signals, the split into the privileged parent and the relay (priv.h),
 * the relay's privilege drop; the rest is the daemon module's.
 */
#include "fgconfig.h"

#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <linux/capability.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "control.h"
#include "daemon.h"
#include "log.h"
#include "policy.h"
#include "preflight.h"
#include "priv.h"
#include "sandbox.h"
#include "state.h"
#include "util.h"
#include "worker.h"

struct options {
	const char	*config_path;
	int		 check_only;	/* 0, 'n' (file and host) or 'N' (file) */
	bool		 foreground;	/* -d */
	int		 verbose;	/* -v count */
};

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: fedgated [-dNnVv] [-f file]\n");
	exit(1);
}

static void
parse_options(int argc, char *argv[], struct options *o)
{
	int ch;

	o->config_path = CONFIG_DEFAULT_PATH;
	while ((ch = getopt(argc, argv, "df:hNnVv")) != -1) {
		switch (ch) {
		case 'd':
			o->foreground = true;
			break;
		case 'f':
			o->config_path = optarg;
			break;
		case 'n':
		case 'N':
			o->check_only = ch;
			break;
		case 'V':
			printf("fedgated %s\n", PACKAGE_VERSION);
			exit(0);
		case 'v':
			o->verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

/* Load and check the configuration; on any error print them all and exit. */
static struct config *
load_config(const char *path)
{
	struct config *c;
	char *errors = NULL;

	if ((c = config_load(path, &errors)) == NULL ||
	    config_check_supported(c, &errors) +
	    config_check_resolver(c, &errors) > 0) {
		fputs(errors != NULL ? errors : "configuration error\n", stderr);
		free(errors);
		exit(1);
	}
	return c;
}

/*
 * Add the runtime policy rules saved in the state directory to c's policy.
 * Return their number; on an error print it and exit: starting without a
 * deny an operator set would be worse than not starting.
 */
static int
load_state(struct config *c)
{
	char *errors = NULL;
	int n;

	if ((n = state_load_policy(c->state_dir, c->policy, &errors)) == -1) {
		fputs(errors != NULL ? errors : "state: cannot read the runtime "
		    "policy\n", stderr);
		free(errors);
		exit(1);
	}
	return n;
}

/*
 * -N: the file was fine. -n: so is this host for it (preflight.h). Print
 * the verdict or every problem; return the exit status.
 */
static int
check_config(const struct options *o, struct config *c)
{
	char *errors = NULL;
	int n = 0;

	if (o->check_only == 'n')
		n = preflight_check(c, &errors);
	config_unref(c);
	if (n > 0) {
		fputs(errors != NULL ? errors : "start-up would fail\n", stderr);
		free(errors);
		return 1;
	}
	printf("configuration OK\n");
	return 0;
}

/*
 * The capabilities the configuration needs after the privilege drop:
 * CAP_NET_ADMIN for conntrack look-ups and transparent sockets.
 */
static uint32_t
needed_caps(const struct config *c)
{
	return config_uses_transparent(c) ? 1u << CAP_NET_ADMIN : 0;
}

static void
set_caps(uint32_t caps)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0,
	};
	struct __user_cap_data_struct data[2] = {
		{ .effective = caps, .permitted = caps, .inheritable = 0 },
		{ 0, 0, 0 },
	};

	if (syscall(SYS_capset, &hdr, data) == -1)
		fatal("capset (CAP_NET_ADMIN in the capability bounding "
		    "set?)");
}

/*
 * Empty the bounding set but for caps, so that no execve() could ever give
 * a capability back. Needs CAP_SETPCAP: where it is missing (a service
 * manager's bounding set without it) the set stays, and no-new-privileges
 * still holds.
 */
static void
drop_bounding_set(uint32_t caps)
{
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (cap < 32 && (caps & (1u << cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1) {
			log_debug("cannot empty the capability bounding set: "
			    "%s", strerror(errno));
			return;
		}
	}
}

/*
 * The relay: become the configured user and group, keeping only the
 * capabilities the configuration needs, and never gain privileges again.
 * Without a user, stay as started.
 */
static void
drop_privileges(const struct config *c)
{
	struct passwd *pw;
	struct group *gr;
	uid_t uid;
	gid_t gid;
	uint32_t caps = needed_caps(c);
	char err[256];

	if (c->user != NULL) {
		if ((pw = getpwnam(c->user)) == NULL)
			fatalx("unknown user \"%s\"", c->user);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		if (c->group != NULL) {
			if ((gr = getgrnam(c->group)) == NULL)
				fatalx("unknown group \"%s\"", c->group);
			gid = gr->gr_gid;
		}
		drop_bounding_set(caps);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0,
		    0) == -1)
			log_debug("cannot clear ambient capabilities: %s",
			    strerror(errno));
		if (caps != 0 && prctl(PR_SET_KEEPCAPS, 1) == -1)
			fatal("prctl(PR_SET_KEEPCAPS)");
		if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
		    setresuid(uid, uid, uid) == -1)
			fatal("cannot drop privileges to %s", c->user);
		set_caps(caps);
		log_info("relay running as %s:%u%s", c->user, (unsigned)gid,
		    caps != 0 ? " keeping CAP_NET_ADMIN" : "");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	if (sandbox_enter(err, sizeof(err)) == -1)
		log_warnx("relay: no system-call filter: %s", err);
	else
		log_debug("relay: system-call filter on, %u calls denied",
		    sandbox_denied());
}

/*
 * Make sure the control socket's directory exists and, when a user is
 * configured, belongs to it, so that the socket can be removed at exit.
 */
static void
prepare_control_dir(const struct config *c)
{
	char *copy, *dir;
	struct passwd *pw;
	struct stat st;

	if ((copy = strdup(c->control_path)) == NULL)
		fatal("strdup");
	dir = dirname(copy);
	if (stat(dir, &st) == -1) {
		if (errno != ENOENT || mkdir(dir, 0755) == -1)
			fatal("control socket directory %s", dir);
		if (c->user != NULL && (pw = getpwnam(c->user)) != NULL &&
		    chown(dir, pw->pw_uid, (gid_t)-1) == -1)
			fatal("chown %s", dir);
	}
	free(copy);
}

/*
 * The relay saves runtime rules in the state directory after it has
 * dropped to its user: make the directory for it (one level) if missing.
 */
static void
prepare_state_dir(const struct config *c)
{
	struct passwd *pw;

	if (c->user == NULL || (pw = getpwnam(c->user)) == NULL)
		return;
	if (state_prepare_dir(c->state_dir, pw->pw_uid, pw->pw_gid) == -1)
		log_warnx("state directory %s: %s; runtime policy rules will "
		    "not be saved", c->state_dir, strerror(errno));
}

static void
write_pid_file(const char *path)
{
	FILE *f;

	if (path == NULL)
		return;
	if ((f = fopen(path, "w")) == NULL)
		fatal("pid file %s", path);
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0)
		fatal("pid file %s", path);
}

static void
remove_pid_file(const char *path)
{
	if (path != NULL && unlink(path) == -1 && errno != ENOENT)
		log_debug("cannot remove pid file %s: %s", path,
		    strerror(errno));
}

/* The relay's channel to the parent closed: the parent is gone. */
static void
on_parent_lost(void *arg)
{
	daemon_stop(arg, "privileged parent gone");
}

static void
on_signal(evutil_socket_t sig, short events, void *arg)
{
	struct daemon *d = arg;
	char *errors = NULL;

	switch (sig) {
	case SIGHUP:
		log_info("SIGHUP: reloading %s", daemon_config_path(d));
		daemon_reload(d, &errors);
		free(errors);
		break;
	case SIGTERM:
	case SIGINT:
		daemon_stop(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	}
}

static void
setup_logging(const struct options *o, const struct config *c)
{
	enum log_level level = c->log_level;

	log_init(o->foreground || !c->log_syslog, c->log_facility);
	if (level + (unsigned)o->verbose > LOG_LEVEL_TRACE)
		level = LOG_LEVEL_TRACE;
	else
		level += (unsigned)o->verbose;
	log_set_level(level);
	log_hook_libevent();
}

/*
 * The relay: bind while still root, drop privileges, serve. Return the
 * exit status.
 */
/*
 * The relay's loop. With epoll, changes to a descriptor's events within one
 * loop iteration are applied once, at the next wait (the changelist): a
 * leg's write event enabled and disabled again while a batch of stanzas
 * is relayed costs no epoll_ctl(2). It is safe here: no descriptor is
 * dup(2)ed while in the loop, the changelist's one caveat.
 */
static struct event_base *
relay_base_new(void)
{
	struct event_config *cfg;
	struct event_base *base;

	if ((cfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/* Worker i: answer what worker 0 asks (control_execute()). */
static char *
relay_serve(void *arg, const char *line)
{
	return control_execute(arg, line);
}

static int
relay_main(const struct options *o, struct config *c, int fd,
    struct worker_mesh *mesh, unsigned index)
{
	static const int signals[] = { SIGHUP, SIGTERM, SIGINT };
	struct event *sigev[nitems(signals)];
	struct event_base *base;
	struct daemon *d;
	struct priv *p;
	struct worker *w;
	unsigned mesh_size = c->workers;
	sigset_t set;

	if ((base = relay_base_new()) == NULL)
		fatalx("cannot create the event base");
	if ((d = daemon_new(base, c, o->config_path)) == NULL ||
	    (w = worker_new(base, mesh, index)) == NULL)
		fatalx("out of memory");
	worker_mesh_free(mesh);	/* the other workers' ends */
	daemon_set_worker(d, w);
	if (index == 0) {
		prepare_control_dir(c);
		prepare_state_dir(c);
	}
	if (daemon_bind(d) == -1)
		fatalx("start-up failed");
	drop_privileges(c);
	if ((p = priv_new(base, fd, on_parent_lost, d)) == NULL)
		fatalx("out of memory");
	daemon_set_priv(d, p);
	if (worker_start(w, relay_serve, d) == -1)
		fatalx("cannot watch the workers' channels");
	sigemptyset(&set);
	for (size_t i = 0; i < nitems(signals); i++) {
		sigev[i] = evsignal_new(base, signals[i], on_signal, d);
		if (sigev[i] == NULL || evsignal_add(sigev[i], NULL) == -1)
			fatalx("cannot watch signal %d", signals[i]);
		sigaddset(&set, signals[i]);
	}
	sigaddset(&set, SIGCHLD);	/* blocked for the parent's sake */
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	daemon_run(d);
	event_base_dispatch(base);
	for (size_t i = 0; i < nitems(signals); i++)
		event_free(sigev[i]);
	daemon_free(d);
	worker_free(w);
	priv_free(p);
	event_base_free(base);
	if (mesh_size > 1)
		log_info("relay %u stopped", index);
	else
		log_info("relay stopped");
	return 0;
}

int
main(int argc, char *argv[])
{
	struct options o = { 0 };
	char abs_path[PATH_MAX];
	struct config *c;
	char *pid_file = NULL;
	struct worker_mesh *mesh;
	sigset_t set;
	pid_t relays[CONFIG_WORKERS_MAX];
	int fds[CONFIG_WORKERS_MAX], status, nrules = 0;
	unsigned n, workers;

	parse_options(argc, argv, &o);
	log_init(true, LOG_DAEMON);
	/* daemon(3) changes to /: keep reload working with a relative -f. */
	if (realpath(o.config_path, abs_path) != NULL)
		o.config_path = abs_path;
	c = load_config(o.config_path);
	if (o.check_only != 'N')
		nrules = load_state(c);
	if (o.check_only)
		return check_config(&o, c);
	setup_logging(&o, c);
	if (nrules > 0)
		log_info("%d runtime policy rules from %s/%s", nrules,
		    c->state_dir, STATE_POLICY_FILE);
	signal(SIGPIPE, SIG_IGN);
	if (!o.foreground && daemon(0, 0) == -1)
		fatal("daemon");
	if (c->pid_file != NULL && (pid_file = strdup(c->pid_file)) == NULL)
		fatal("strdup");
	workers = c->workers;
	/* the parent's PID, from here to the end */
	write_pid_file(pid_file);
	/* until each process handles them */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((mesh = worker_mesh_new(c->workers)) == NULL) {
		remove_pid_file(pid_file);
		fatal("cannot make the workers' channels");
	}
	for (n = 0; n < c->workers; n++) {
		if ((relays[n] = priv_fork(&fds[n])) == -1) {
			log_warn("cannot start relay %u", n);
			break;
		}
		if (relays[n] == 0) {
			/* the parent's ends of the relays before this one */
			for (unsigned i = 0; i < n; i++)
				close(fds[i]);
			free(pid_file);
			return relay_main(&o, c, fds[n], mesh, n);
		}
	}
	worker_mesh_free(mesh);
	config_unref(c);
	if (n == 0) {
		remove_pid_file(pid_file);
		fatalx("cannot start the relay process");
	}
	/* a relay that could not be forked: the others stop (and so do we) */
	if (n < workers)
		for (unsigned i = 0; i < n; i++)
			kill(relays[i], SIGTERM);
	status = priv_parent_run(relays, fds, n, o.config_path);
	if (n < workers)
		status = 1;
	remove_pid_file(pid_file);
	free(pid_file);
	log_info("fedgated stopped");
	return status;
}
