/*
 * state: the runtime policy on disk. See state.h.
 */
#include "fgconfig.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "policy.h"
#include "state.h"
#include "util.h"

#define STATE_LINE_MAX		1280	/* a pattern of 1025 bytes and settings */

static const char state_header[] =
    "# fedgated's runtime policy: the peer rules set with fedgatectl policy\n"
    "# allow, deny and remove. fedgated rewrites this file after each of\n"
    "# them and reads it at start-up; change it with fedgatectl.\n";

struct state_walk {
	struct policy	*dst;		/* load: where the rules go */
	const char	*path;
	char		**errors;
	int		 n;		/* rules; -1 after an error */
	FILE		*out;		/* save: where the lines go */
};

/* Copy one rule of the state file into the running policy. */
static void
state_load_rule(const struct policy_rule *r, void *arg)
{
	struct state_walk *w = arg;
	char line[STATE_LINE_MAX], err[256], msg[STATE_LINE_MAX + 256];

	if (w->n == -1)
		return;
	if (policy_rule_format(r, line, sizeof(line)) == -1) {
		snprintf(msg, sizeof(msg), "%s:%d: peer \"%s\": a runtime rule "
		    "sets only allow or deny, tls, verify and auth",
		    policy_rule_origin(r), policy_rule_line(r),
		    policy_rule_pattern(r));
		util_append_line(w->errors, msg);
		w->n = -1;
		return;
	}
	if (policy_set(w->dst, policy_rule_pattern(r), policy_rule_settings(r),
	    "control", 0, err, sizeof(err)) == -1) {
		snprintf(msg, sizeof(msg), "%s:%d: %s", policy_rule_origin(r),
		    policy_rule_line(r), err);
		util_append_line(w->errors, msg);
		w->n = -1;
		return;
	}
	w->n++;
}

/* Whether c holds nothing but peer rules. */
static bool
state_is_rules_only(const struct config *c)
{
	if (!TAILQ_EMPTY(&c->listens) || !TAILQ_EMPTY(&c->domains))
		return false;
	for (size_t i = 0; i < CONFIG_SET_MAX; i++)
		if (c->origins[i].file != NULL)
			return false;
	return true;
}

int
state_load_policy(const char *dir, struct policy *p, char **errors)
{
	struct state_walk w = { .dst = p, .errors = errors };
	struct config *c;
	struct stat st;
	char path[PATH_MAX], msg[PATH_MAX + 128];

	if (snprintf(path, sizeof(path), "%s/%s", dir, STATE_POLICY_FILE) >=
	    (int)sizeof(path)) {
		util_append_line(errors, "state directory: path too long");
		return -1;
	}
	if (stat(path, &st) == -1 && errno == ENOENT)
		return 0;
	if ((c = config_load(path, errors)) == NULL)
		return -1;
	w.path = path;
	if (!state_is_rules_only(c)) {
		snprintf(msg, sizeof(msg), "%s: only peer rules belong in a "
		    "state file", path);
		util_append_line(errors, msg);
		config_unref(c);
		return -1;
	}
	policy_foreach(c->policy, state_load_rule, &w);
	config_unref(c);
	return w.n;
}

/* Write one runtime rule of the running policy. */
static void
state_save_rule(const struct policy_rule *r, void *arg)
{
	struct state_walk *w = arg;
	char line[STATE_LINE_MAX];

	if (w->n == -1 || !policy_rule_is_control(r))
		return;
	if (policy_rule_format(r, line, sizeof(line)) == -1 ||
	    fprintf(w->out, "%s\n", line) < 0) {
		w->n = -1;
		return;
	}
	w->n++;
}

int
state_save_policy(const char *dir, const struct policy *p, char *err,
    size_t errlen)
{
	struct state_walk w = { 0 };
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, STATE_POLICY_FILE) >=
	    (int)sizeof(path) || snprintf(tmp, sizeof(tmp), "%s/.%s.new", dir,
	    STATE_POLICY_FILE) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -1;
	}
	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640)) == -1 || (w.out = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	fputs(state_header, w.out);
	policy_foreach(p, state_save_rule, &w);
	if (w.n == -1 || fflush(w.out) != 0 || fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, w.n == -1 ?
		    "a rule cannot be written" : strerror(errno));
		fclose(w.out);
		unlink(tmp);
		return -1;
	}
	if (fclose(w.out) != 0 || rename(tmp, path) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
state_prepare_dir(const char *dir, uid_t uid, gid_t gid)
{
	if (mkdir(dir, 0750) == -1)
		return errno == EEXIST ? 0 : -1;
	return chown(dir, uid, gid);
}
