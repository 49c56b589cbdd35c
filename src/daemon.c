/*
 * daemon: the running gateway. Owns the event base's top-level objects, the
 * current configuration and the lifecycle:
 *
 *	STARTING --bind/run--> RUNNING --stop--> DRAINING --drained--> STOPPED
 *
 * Reload parses into a new config, validates it, and swaps only when it is
 * whole; the runtime policy overrides made through the control socket are
 * carried over.
 */
#include "fgconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "control.h"
#include "daemon.h"
#include "log.h"
#include "policy.h"
#include "util.h"

struct daemon {
	struct event_base	*base;
	struct config		*config;	/* current; legs hold their own refs */
	char			*config_path;
	enum daemon_state	 state;
	int64_t			 started;	/* wall clock, seconds */
	unsigned		 reloads;
	struct control		*control;
	struct event		*drain_timer;	/* bounds DRAINING */
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
	return d;
}

void
daemon_free(struct daemon *d)
{
	if (d == NULL)
		return;
	control_free(d->control);
	if (d->drain_timer != NULL)
		event_free(d->drain_timer);
	config_unref(d->config);
	free(d->config_path);
	free(d);
}

int
daemon_bind(struct daemon *d)
{
	const struct config *c = d->config;

	d->control = control_new(d, c->control_path, c->control_mode,
	    c->control_group);
	if (d->control == NULL)
		return -1;
	return 0;
}

void
daemon_run(struct daemon *d)
{
	if (control_listen(d->control) == -1)
		fatalx("cannot listen on control socket %s",
		    d->config->control_path);
	daemon_enter_state(d, DAEMON_RUNNING);
	log_info("fedgated %s running: config %s, control %s", PACKAGE_VERSION,
	    d->config_path, d->config->control_path);
}

/* Warn about settings that a reload cannot change; they keep their value. */
static void
daemon_check_fixed(const struct config *old, const struct config *new)
{
	static const char *const what = "takes effect only after a restart";

	if (strcmp(old->control_path, new->control_path) != 0 ||
	    old->control_mode != new->control_mode)
		log_warnx("reload: control socket change %s", what);
	if ((old->user == NULL) != (new->user == NULL) ||
	    (old->user != NULL && strcmp(old->user, new->user) != 0))
		log_warnx("reload: user change %s", what);
	if ((old->pid_file == NULL) != (new->pid_file == NULL) ||
	    (old->pid_file != NULL && strcmp(old->pid_file, new->pid_file) != 0))
		log_warnx("reload: pid-file change %s", what);
}

int
daemon_reload(struct daemon *d, char **errors)
{
	struct config *c;

	*errors = NULL;
	if (d->state != DAEMON_RUNNING) {
		util_append_line(errors, "reload refused: daemon is not running");
		return -1;
	}
	if ((c = config_load(d->config_path, errors)) == NULL)
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
	daemon_check_fixed(d->config, c);
	config_unref(d->config);
	d->config = c;
	d->reloads++;
	log_set_level(c->log_level > log_get_level() ? c->log_level :
	    log_get_level());
	log_info("reload: configuration %s loaded", d->config_path);
	return 0;
 refused:
	log_warnx("reload: configuration %s refused, keeping the running one",
	    d->config_path);
	if (*errors != NULL) {
		char *copy = strdup(*errors), *line, *save = NULL;

		for (line = copy != NULL ? strtok_r(copy, "\n", &save) : NULL;
		    line != NULL; line = strtok_r(NULL, "\n", &save))
			log_warnx("reload: %s", line);
		free(copy);
	}
	return -1;
}

static void
daemon_drained(struct daemon *d)
{
	daemon_enter_state(d, DAEMON_STOPPED);
	control_free(d->control);
	d->control = NULL;
	event_base_loopexit(d->base, NULL);
}

static void
daemon_drain_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct daemon *d = arg;

	log_warnx("shutdown: drain time over, closing what is left");
	daemon_drained(d);
}

void
daemon_stop(struct daemon *d, const char *reason)
{
	struct timeval tv;
	uint64_t ms = d->config->timeouts.shutdown;

	if (d->state == DAEMON_STARTING) {
		daemon_enter_state(d, DAEMON_STOPPED);
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (d->state != DAEMON_RUNNING)
		return;
	log_info("shutdown: %s", reason);
	daemon_enter_state(d, DAEMON_DRAINING);
	if (daemon_leg_count(d) == 0) {
		daemon_drained(d);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	d->drain_timer = evtimer_new(d->base, daemon_drain_timeout, d);
	if (d->drain_timer == NULL || evtimer_add(d->drain_timer, &tv) == -1)
		daemon_drained(d);
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
	return 0;
}

unsigned
daemon_leg_count(const struct daemon *d)
{
	return 0;
}
