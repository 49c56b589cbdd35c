/*
 * control_cmd: the control socket's commands (doc/internals/control-
 * protocol.md), one row of control_commands[] and one handler each.
 * control.c splits the line, finds the row, checks the argument count and
 * the right to mutate, then calls the handler to fill the reply.
 *
 * Adding a command is adding a row and its handler here, its tokens and
 * renderer in fedgatectl, and its reply in the protocol document and in
 * fedgatectl(8).
 */
#include "fgconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <json.h>

#include "check.h"
#include "config.h"
#include "ct.h"
#include "control.h"
#include "control_private.h"
#include "daemon.h"
#include "jid.h"
#include "leg.h"
#include "log.h"
#include "metrics_http.h"
#include "policy.h"
#include "route.h"
#include "util.h"
#include "worker.h"

static int control_cmd_help(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_status(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_policy_check(struct control_client *,
    struct json_object *, int, char **);
static int control_cmd_policy_list(struct control_client *,
    struct json_object *, int, char **);
static int control_cmd_policy_allow(struct control_client *,
    struct json_object *, int, char **);
static int control_cmd_policy_deny(struct control_client *,
    struct json_object *, int, char **);
static int control_cmd_policy_remove(struct control_client *,
    struct json_object *, int, char **);
static int control_cmd_retry(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_reload(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_log_level(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_sessions(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_routes(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_kill(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_kill_domain(struct control_client *,
    struct json_object *, int, char **);
static int control_cmd_drain(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_metrics(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_check(struct control_client *, struct json_object *,
    int, char **);
static int control_cmd_flows(struct control_client *, struct json_object *,
    int, char **);

const struct control_command control_commands[] = {
	{ "help", "", 0, 0, CONTROL_READ, control_cmd_help,
	    "list the commands" },
	{ "status", "", 0, 0, CONTROL_READ, control_cmd_status,
	    "show the daemon's state and counts" },
	{ "sessions", "", 0, 0, CONTROL_READ, control_cmd_sessions,
	    "list the legs (S2S connections), one entry each" },
	{ "routes", "", 0, 0, CONTROL_READ, control_cmd_routes,
	    "list the routes and their queues" },
	{ "metrics", "", 0, 0, CONTROL_READ, control_cmd_metrics,
	    "the counters, in the Prometheus text format" },
	{ "retry", "DOMAIN", 1, 1, CONTROL_WRITE, control_cmd_retry,
	    "forget the failures of the routes to DOMAIN: try again now" },
	{ "flows", "", 0, 0, CONTROL_READ, control_cmd_flows,
	    "list the legs with their conntrack entries (transparent mode)" },
	{ "policy check", "DOMAIN", 1, 1, CONTROL_READ,
	    control_cmd_policy_check,
	    "show the rule that matches DOMAIN and the effective settings" },
	{ "policy list", "", 0, 0, CONTROL_READ, control_cmd_policy_list,
	    "list every policy rule" },
	{ "policy allow", "PATTERN [tls MODE] [verify MODE] [auth MODE]", 1, 7,
	    CONTROL_WRITE, control_cmd_policy_allow,
	    "allow PATTERN at run time, with these settings; saved" },
	{ "policy deny", "PATTERN", 1, 1, CONTROL_WRITE,
	    control_cmd_policy_deny,
	    "deny PATTERN at run time and close its legs; saved" },
	{ "policy remove", "PATTERN", 1, 1, CONTROL_WRITE,
	    control_cmd_policy_remove,
	    "remove the runtime rule of PATTERN; the file's applies again" },
	{ "reload", "", 0, 0, CONTROL_WRITE, control_cmd_reload,
	    "re-read the configuration file" },
	{ "kill", "SESSION", 1, 1, CONTROL_WRITE, control_cmd_kill,
	    "close the leg whose id is SESSION" },
	{ "kill --domain", "DOMAIN", 1, 1, CONTROL_WRITE,
	    control_cmd_kill_domain,
	    "close every leg whose remote domain is DOMAIN" },
	{ "drain", "", 0, 0, CONTROL_WRITE, control_cmd_drain,
	    "flush the queues, close every leg and stop the daemon" },
	{ "log level", "[LEVEL]", 0, 1, CONTROL_WRITE_WITH_ARGS,
	    control_cmd_log_level,
	    "show or set the log level: warning, info, debug, trace" },
	{ "check", "DOMAIN [from DOMAIN]", 1, 3, CONTROL_WRITE,
	    control_cmd_check,
	    "run the federation checks of DOMAIN from this gateway" },
};
const size_t control_ncommands = nitems(control_commands);

static const char *const control_access_names[] = {
	[CONTROL_READ] = "never",
	[CONTROL_WRITE] = "always",
	[CONTROL_WRITE_WITH_ARGS] = "with arguments",
};

static const char *const control_kind_names[] = {
	[POLICY_EXACT] = "exact",
	[POLICY_SUFFIX] = "suffix",
	[POLICY_DEFAULT] = "default",
};

/*
 * A JSON string of s with every byte that is not part of valid UTF-8
 * replaced by U+FFFD, so that replies stay valid JSON whatever a file name
 * or a configuration error holds.
 */
static struct json_object *
control_json_text(const char *s)
{
	static const char repl[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)s;
	struct json_object *o;
	char *buf;
	size_t n = 0, len, i;

	if (s == NULL)
		return NULL;
	len = strlen(s);
	if ((buf = malloc(len * 3 + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; ) {
		size_t need = p[i] < 0x80 ? 1 : (p[i] & 0xe0) == 0xc0 ? 2 :
		    (p[i] & 0xf0) == 0xe0 ? 3 : (p[i] & 0xf8) == 0xf0 ? 4 : 0;
		size_t k;

		for (k = 1; need > 1 && k < need && i + k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				break;
		if (need == 0 || k < need || (need == 2 && p[i] < 0xc2) ||
		    (need == 3 && p[i] == 0xe0 && p[i + 1] < 0xa0) ||
		    (need == 3 && p[i] == 0xed && p[i + 1] >= 0xa0) ||
		    (need == 4 && p[i] == 0xf0 && p[i + 1] < 0x90) ||
		    (need == 4 && (p[i] > 0xf4 ||
		    (p[i] == 0xf4 && p[i + 1] >= 0x90)))) {
			memcpy(buf + n, repl, 3);
			n += 3;
			i++;
			continue;
		}
		memcpy(buf + n, p + i, need);
		n += need;
		i += need;
	}
	o = json_object_new_string_len(buf, (int)n);
	free(buf);
	return o;
}

static struct json_object *
control_json_u64(uint64_t v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

static int
control_cmd_help(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	struct json_object *list = json_object_new_array(), *o;

	for (size_t i = 0; i < control_ncommands; i++) {
		const struct control_command *cmd = &control_commands[i];

		o = json_object_new_object();
		json_object_object_add(o, "command",
		    json_object_new_string(cmd->name));
		json_object_object_add(o, "args",
		    json_object_new_string(cmd->args));
		json_object_object_add(o, "mutates",
		    json_object_new_string(control_access_names[cmd->access]));
		json_object_object_add(o, "help",
		    json_object_new_string(cmd->help));
		json_object_array_add(list, o);
	}
	json_object_object_add(reply, "commands", list);
	return 0;
}

static int
control_cmd_status(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	const struct daemon *d = cc->ctl->d;
	int64_t started = daemon_started(d), now = (int64_t)time(NULL);

	json_object_object_add(reply, "version",
	    json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(reply, "pid", json_object_new_int64(getpid()));
	json_object_object_add(reply, "state",
	    json_object_new_string(daemon_state_name(daemon_state(d))));
	json_object_object_add(reply, "started", json_object_new_int64(started));
	json_object_object_add(reply, "uptime",
	    json_object_new_int64(now > started ? now - started : 0));
	json_object_object_add(reply, "reloads",
	    json_object_new_int64(daemon_reloads(d)));
	json_object_object_add(reply, "config",
	    control_json_text(daemon_config_path(d)));
	json_object_object_add(reply, "listeners",
	    json_object_new_int64(daemon_listener_count(d)));
	json_object_object_add(reply, "legs",
	    json_object_new_int64(daemon_leg_count(d)));
	json_object_object_add(reply, "control_clients",
	    json_object_new_int64(cc->ctl->nclients));
	json_object_object_add(reply, "log_level",
	    json_object_new_string(log_level_name(log_get_level())));
	return 0;
}

/* Each setting: its name in replies, and the bit of a rule that sets it. */
static const struct {
	const char	*name;
	unsigned	 bit;
} control_setting_bits[] = {
	{ "allow", POLICY_SET_ALLOW }, { "tls", POLICY_SET_TLS },
	{ "verify", POLICY_SET_VERIFY }, { "auth", POLICY_SET_AUTH },
	{ "resolve", POLICY_SET_RESOLVE }, { "dane", POLICY_SET_DANE },
	{ "bidi", POLICY_SET_BIDI },
	{ "route", POLICY_SET_ROUTE }, { "stanza_size", POLICY_SET_STANZA_SIZE },
	{ "rate", POLICY_SET_RATE }, { "burst", POLICY_SET_RATE },
	{ "connections", POLICY_SET_CONNECTIONS },
	{ "tls_min_version", POLICY_SET_TLS_MIN },
	{ "ciphers", POLICY_SET_CIPHERS },
};

/* A JSON object of the settings of s that mask (POLICY_SET_*) names. */
static struct json_object *
control_settings_json(const struct policy_settings *s, unsigned mask)
{
	struct json_object *o = json_object_new_object(), *route = NULL;

	if (mask & POLICY_SET_ALLOW)
		json_object_object_add(o, "allow",
		    json_object_new_boolean(s->allow));
	if (mask & POLICY_SET_TLS)
		json_object_object_add(o, "tls",
		    json_object_new_string(policy_tls_name(s->tls)));
	if (mask & POLICY_SET_VERIFY)
		json_object_object_add(o, "verify",
		    json_object_new_string(policy_verify_name(s->verify)));
	if (mask & POLICY_SET_AUTH)
		json_object_object_add(o, "auth",
		    json_object_new_string(policy_auth_name(s->auth)));
	if (mask & POLICY_SET_RESOLVE)
		json_object_object_add(o, "resolve",
		    json_object_new_string(policy_resolve_name(s->resolve)));
	if (mask & POLICY_SET_DANE)
		json_object_object_add(o, "dane",
		    json_object_new_boolean(s->dane));
	if (mask & POLICY_SET_BIDI)
		json_object_object_add(o, "bidi",
		    json_object_new_boolean(s->bidi));
	if (mask & POLICY_SET_ROUTE) {
		if (s->route_host[0] != '\0') {
			route = json_object_new_object();
			json_object_object_add(route, "host",
			    control_json_text(s->route_host));
			json_object_object_add(route, "port",
			    json_object_new_int(s->route_port));
		}
		json_object_object_add(o, "route", route);
	}
	if (mask & POLICY_SET_STANZA_SIZE)
		json_object_object_add(o, "stanza_size",
		    control_json_u64(s->stanza_size));
	if (mask & POLICY_SET_RATE) {
		json_object_object_add(o, "rate", control_json_u64(s->rate));
		json_object_object_add(o, "burst", control_json_u64(s->burst));
	}
	if (mask & POLICY_SET_CONNECTIONS)
		json_object_object_add(o, "connections",
		    json_object_new_int64(s->connections));
	if (mask & POLICY_SET_TLS_MIN)
		json_object_object_add(o, "tls_min_version",
		    json_object_new_string(policy_tls_version_name(s->tls_min)));
	if (mask & POLICY_SET_CIPHERS)
		json_object_object_add(o, "ciphers", s->ciphers[0] != '\0' ?
		    control_json_text(s->ciphers) : NULL);
	return o;
}

static struct json_object *
control_rule_json(const struct policy_rule *r)
{
	struct json_object *o = json_object_new_object(), *over;
	const struct policy_rule *shadowed;

	json_object_object_add(o, "pattern",
	    control_json_text(policy_rule_pattern(r)));
	json_object_object_add(o, "kind",
	    json_object_new_string(control_kind_names[policy_rule_kind(r)]));
	json_object_object_add(o, "origin",
	    control_json_text(policy_rule_origin(r)));
	json_object_object_add(o, "line",
	    json_object_new_int(policy_rule_line(r)));
	if ((shadowed = policy_rule_shadowed(r)) != NULL) {
		over = json_object_new_object();
		json_object_object_add(over, "origin",
		    control_json_text(policy_rule_origin(shadowed)));
		json_object_object_add(over, "line",
		    json_object_new_int(policy_rule_line(shadowed)));
		json_object_object_add(o, "overrides", over);
	}
	return o;
}

static void
control_find_default(const struct policy_rule *r, void *arg)
{
	if (policy_rule_kind(r) == POLICY_DEFAULT)
		*(const struct policy_rule **)arg = r;
}

static int
control_cmd_policy_check(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	const struct config *c = daemon_config(cc->ctl->d);
	const struct policy_rule *def = NULL;
	struct policy_match m;
	struct policy_settings eff;
	struct json_object *src;
	char domain[JID_DOMAIN_MAX];
	unsigned rule_set, def_set;

	if (jid_domain_normalize(argv[0], domain, sizeof(domain)) == -1 ||
	    policy_match(c->policy, argv[0], &m) == -1)
		return control_error(reply, "invalid domain");
	policy_foreach(c->policy, control_find_default, &def);
	rule_set = m.rule != NULL ? policy_rule_settings(m.rule)->set : 0;
	def_set = def != NULL ? policy_rule_settings(def)->set : 0;

	/* Effective: 0 means "the global limit" and "same as rate". */
	eff = m.settings;
	if (eff.stanza_size == 0)
		eff.stanza_size = c->limits.stanza_size;
	if (eff.burst == 0)
		eff.burst = eff.rate;

	json_object_object_add(reply, "domain", json_object_new_string(domain));
	json_object_object_add(reply, "rule",
	    m.rule != NULL ? control_rule_json(m.rule) : NULL);
	json_object_object_add(reply, "settings",
	    control_settings_json(&eff, ~0u));
	src = json_object_new_object();
	for (size_t i = 0; i < nitems(control_setting_bits); i++) {
		unsigned bit = control_setting_bits[i].bit;

		json_object_object_add(src, control_setting_bits[i].name,
		    json_object_new_string(rule_set & bit ? "rule" :
		    def_set & bit ? "default" : "built-in"));
	}
	json_object_object_add(reply, "sources", src);
	return 0;
}

static void
control_list_rule(const struct policy_rule *r, void *arg)
{
	struct json_object *list = arg, *o = control_rule_json(r);

	json_object_object_add(o, "settings", control_settings_json(
	    policy_rule_settings(r), policy_rule_settings(r)->set));
	json_object_array_add(list, o);
}

static int
control_cmd_policy_list(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	struct json_object *list = json_object_new_array();

	policy_foreach(daemon_config(cc->ctl->d)->policy, control_list_rule,
	    list);
	json_object_object_add(reply, "rules", list);
	return 0;
}

/*
 * Settings of policy allow: pairs "tls MODE", "verify MODE", "auth MODE",
 * each at most once, into s. Return 0, or -1 with the reply's error set.
 */
static int
control_policy_settings(struct json_object *reply, int argc, char **argv,
    struct policy_settings *s)
{
	int r;

	if (argc % 2 != 0)
		return control_error(reply, "a setting needs its value: "
		    "tls MODE, verify MODE or auth MODE");
	for (int i = 0; i < argc; i += 2) {
		if (strcmp(argv[i], "tls") == 0 && !(s->set & POLICY_SET_TLS)) {
			s->set |= POLICY_SET_TLS;
			r = policy_tls_parse(argv[i + 1], &s->tls);
		} else if (strcmp(argv[i], "verify") == 0 &&
		    !(s->set & POLICY_SET_VERIFY)) {
			s->set |= POLICY_SET_VERIFY;
			r = policy_verify_parse(argv[i + 1], &s->verify);
		} else if (strcmp(argv[i], "auth") == 0 &&
		    !(s->set & POLICY_SET_AUTH)) {
			s->set |= POLICY_SET_AUTH;
			r = policy_auth_parse(argv[i + 1], &s->auth);
		} else
			return control_error(reply, "unknown or repeated "
			    "setting (tls, verify, auth, once each)");
		if (r == -1)
			return control_error(reply, "invalid %s mode \"%.32s\"",
			    argv[i], argv[i + 1]);
	}
	return 0;
}

/* The reply of a runtime rule change: the rule, the legs closed, saved. */
static int
control_policy_reply(struct control_client *cc, struct json_object *reply,
    const char *verb, const char *pattern, int closed, const char *err,
    const char *save_err)
{
	if (closed == -1)
		return control_error(reply, "%s", err);
	log_info("control: policy %s %s by uid %u pid %ld", verb, pattern,
	    (unsigned)cc->uid, (long)cc->pid);
	json_object_object_add(reply, "pattern", control_json_text(pattern));
	json_object_object_add(reply, "closed", json_object_new_int(closed));
	json_object_object_add(reply, "state",
	    control_json_text(daemon_config(cc->ctl->d)->state_dir));
	json_object_object_add(reply, "saved",
	    json_object_new_boolean(save_err[0] == '\0'));
	if (save_err[0] != '\0')
		json_object_object_add(reply, "save_error",
		    control_json_text(save_err));
	return 0;
}

/* policy allow and deny: a runtime rule that allows (with the settings
 * of argv[1..]) or denies argv[0]. */
static int
control_policy_set(struct control_client *cc, struct json_object *reply,
    bool allow, int argc, char **argv)
{
	struct policy_settings s;
	char err[256], save_err[512];
	int closed;

	policy_settings_init(&s);
	s.set = POLICY_SET_ALLOW;
	s.allow = allow;
	if (control_policy_settings(reply, argc - 1, argv + 1, &s) == -1)
		return -1;
	closed = daemon_policy_set(cc->ctl->d, argv[0], &s, err, sizeof(err),
	    save_err, sizeof(save_err));
	return control_policy_reply(cc, reply, allow ? "allow" : "deny",
	    argv[0], closed, err, save_err);
}

static int
control_cmd_policy_allow(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	return control_policy_set(cc, reply, true, argc, argv);
}

static int
control_cmd_policy_deny(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	return control_policy_set(cc, reply, false, argc, argv);
}

static int
control_cmd_policy_remove(struct control_client *cc,
    struct json_object *reply, int argc, char **argv)
{
	char err[256], save_err[512];
	int closed;

	closed = daemon_policy_remove(cc->ctl->d, argv[0], err, sizeof(err),
	    save_err, sizeof(save_err));
	return control_policy_reply(cc, reply, "remove", argv[0], closed, err,
	    save_err);
}

static int
control_cmd_reload(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	struct daemon *d = cc->ctl->d;
	struct json_object *list;
	char *errors = NULL, *line, *save = NULL;

	log_info("control: reload requested by uid %u pid %ld",
	    (unsigned)cc->uid, (long)cc->pid);
	if (daemon_reload(d, &errors) == 0) {
		free(errors);
		json_object_object_add(reply, "reloads",
		    json_object_new_int64(daemon_reloads(d)));
		return 0;
	}
	list = json_object_new_array();
	for (line = errors != NULL ? strtok_r(errors, "\n", &save) : NULL;
	    line != NULL; line = strtok_r(NULL, "\n", &save))
		json_object_array_add(list, control_json_text(line));
	free(errors);
	control_error(reply, "reload refused");
	json_object_object_add(reply, "errors", list);
	return -1;
}

static int
control_cmd_log_level(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	enum log_level level, previous = log_get_level();

	if (argc == 0) {
		json_object_object_add(reply, "log_level",
		    json_object_new_string(log_level_name(previous)));
		return 0;
	}
	if (log_level_parse(argv[0], &level) == -1)
		return control_error(reply,
		    "unknown log level (warning, info, debug, trace)");
	log_info("control: log level %s -> %s by uid %u pid %ld",
	    log_level_name(previous), log_level_name(level),
	    (unsigned)cc->uid, (long)cc->pid);
	log_set_level(level);
	json_object_object_add(reply, "log_level",
	    json_object_new_string(log_level_name(level)));
	json_object_object_add(reply, "previous",
	    json_object_new_string(log_level_name(previous)));
	return 0;
}

/*
 * sessions: every leg, with the queue of its route for an outgoing one.
 */

/* A route's queue, found by its leg's id. */
struct control_queue {
	uint64_t	 leg_id;
	size_t		 queue;
};

struct control_queues {
	struct control_queue	*v;
	size_t			 n;
	size_t			 size;
};

static void
control_collect_queue(const struct route_info *ri, void *arg)
{
	struct control_queues *q = arg;

	if (ri->leg_id == 0 || q->n == q->size)
		return;
	q->v[q->n].leg_id = ri->leg_id;
	q->v[q->n].queue = ri->queue;
	q->n++;
}

static int
control_queue_cmp(const void *a, const void *b)
{
	const struct control_queue *x = a, *y = b;

	return x->leg_id < y->leg_id ? -1 : x->leg_id > y->leg_id;
}

/*
 * leg_info's pairs, "from->to from->to(verifying)", as an array of
 * {"from", "to", "verifying"} objects.
 */
static struct json_object *
control_pairs_json(const char *domains)
{
	static const char pending[] = "(verifying)";
	struct json_object *list = json_object_new_array(), *o;
	char *copy, *word, *p, *save = NULL, *arrow;
	size_t len, plen = sizeof(pending) - 1;

	if (domains == NULL || (copy = strdup(domains)) == NULL)
		return list;
	for (word = strtok_r(copy, " ", &save); word != NULL;
	    word = strtok_r(NULL, " ", &save)) {
		bool verifying = false;

		if ((arrow = strstr(word, "->")) == NULL)
			continue;
		*arrow = '\0';
		p = arrow + 2;
		if ((len = strlen(p)) >= plen &&
		    strcmp(p + len - plen, pending) == 0) {
			p[len - plen] = '\0';
			verifying = true;
		}
		o = json_object_new_object();
		json_object_object_add(o, "from", control_json_text(word));
		json_object_object_add(o, "to", control_json_text(p));
		json_object_object_add(o, "verifying",
		    json_object_new_boolean(verifying));
		json_object_array_add(list, o);
	}
	free(copy);
	return list;
}

/* leg_info's flows, "from->to from->to", as an array of {"from", "to"}. */
static struct json_object *
control_flows_json(const char *flows)
{
	struct json_object *list = json_object_new_array(), *o;
	char *copy, *word, *arrow, *save = NULL;

	if (flows == NULL || (copy = strdup(flows)) == NULL)
		return list;
	for (word = strtok_r(copy, " ", &save); word != NULL;
	    word = strtok_r(NULL, " ", &save)) {
		if ((arrow = strstr(word, "->")) == NULL)
			continue;
		*arrow = '\0';
		o = json_object_new_object();
		json_object_object_add(o, "from", control_json_text(word));
		json_object_object_add(o, "to", control_json_text(arrow + 2));
		json_object_array_add(list, o);
	}
	free(copy);
	return list;
}

struct control_sessions {
	struct json_object		*list;
	const struct control_queues	*queues;
};

static void
control_list_session(const struct leg_info *li, void *arg)
{
	struct control_sessions *s = arg;
	struct control_queue key = { .leg_id = li->id }, *q = NULL;
	struct json_object *o = json_object_new_object();

	if ((li->outgoing || li->bidi) && s->queues->n > 0)
		q = bsearch(&key, s->queues->v, s->queues->n,
		    sizeof(*s->queues->v), control_queue_cmp);
	json_object_object_add(o, "id", control_json_u64(li->id));
	json_object_object_add(o, "face", json_object_new_string(li->face));
	json_object_object_add(o, "direction",
	    json_object_new_string(li->outgoing ? "out" : "in"));
	json_object_object_add(o, "verify", json_object_new_boolean(li->verify));
	json_object_object_add(o, "local", control_json_text(li->local));
	json_object_object_add(o, "remote", control_json_text(li->remote));
	json_object_object_add(o, "peer", control_json_text(li->peer));
	json_object_object_add(o, "state", json_object_new_string(li->state));
	json_object_object_add(o, "tls", control_json_text(li->tls));
	json_object_object_add(o, "auth", json_object_new_string(li->auth));
	json_object_object_add(o, "domains", control_pairs_json(li->domains));
	json_object_object_add(o, "bidi", json_object_new_boolean(li->bidi));
	json_object_object_add(o, "carries", control_flows_json(li->carries));
	json_object_object_add(o, "age", control_json_u64(li->age_ms / 1000));
	json_object_object_add(o, "stanzas_in",
	    control_json_u64(li->stanzas_in));
	json_object_object_add(o, "stanzas_out",
	    control_json_u64(li->stanzas_out));
	json_object_object_add(o, "bytes_in", control_json_u64(li->bytes_in));
	json_object_object_add(o, "bytes_out", control_json_u64(li->bytes_out));
	json_object_object_add(o, "queue",
	    q != NULL ? control_json_u64(q->queue) : NULL);
	json_object_object_add(o, "paused",
	    json_object_new_boolean(li->paused));
	json_object_object_add(o, "transparent", li->transparent != NULL ?
	    json_object_new_string(li->transparent) : NULL);
	json_object_object_add(o, "original", li->original != NULL &&
	    li->original[0] != '\0' ? control_json_text(li->original) : NULL);
	json_object_object_add(o, "resolve", li->resolve != NULL ?
	    json_object_new_string(li->resolve) : NULL);
	json_object_object_add(o, "source", li->source != NULL &&
	    li->source[0] != '\0' ? control_json_text(li->source) : NULL);
	json_object_array_add(s->list, o);
}

/*
 * Add "worker", the number of the worker (workers N) that holds it, to
 * each object of list: worker 0 merges the lists of every worker.
 */
static void
control_mark_worker(const struct control_client *cc, struct json_object *list)
{
	const struct worker *w = daemon_worker(cc->ctl->d);
	unsigned index = w != NULL ? worker_index(w) : 0;

	for (size_t i = 0; i < json_object_array_length(list); i++)
		json_object_object_add(json_object_array_get_idx(list, i),
		    "worker", json_object_new_int64(index));
}

static int
control_cmd_sessions(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	struct control_queues queues = { .size = route_count(leg_env_routes(daemon_legs(cc->ctl->d))) };
	struct control_sessions s = { .queues = &queues };

	if (queues.size > 0 &&
	    (queues.v = calloc(queues.size, sizeof(*queues.v))) == NULL)
		return control_error(reply, "out of memory");
	route_foreach(leg_env_routes(daemon_legs(cc->ctl->d)), control_collect_queue, &queues);
	if (queues.n > 0)
		qsort(queues.v, queues.n, sizeof(*queues.v), control_queue_cmp);
	s.list = json_object_new_array();
	leg_foreach(daemon_legs(cc->ctl->d), control_list_session, &s);
	free(queues.v);
	control_mark_worker(cc, s.list);
	json_object_object_add(reply, "sessions", s.list);
	return 0;
}

static void
control_list_route(const struct route_info *ri, void *arg)
{
	struct json_object *list = arg, *o = json_object_new_object();
	struct json_object *fail = NULL;
	bool has_leg = ri->leg_id != 0;

	json_object_object_add(o, "face", json_object_new_string(ri->face));
	json_object_object_add(o, "local", control_json_text(ri->local));
	json_object_object_add(o, "remote", control_json_text(ri->remote));
	json_object_object_add(o, "leg",
	    has_leg ? control_json_u64(ri->leg_id) : NULL);
	json_object_object_add(o, "leg_state",
	    has_leg ? control_json_text(ri->leg_state) : NULL);
	json_object_object_add(o, "queue", control_json_u64(ri->queue));
	json_object_object_add(o, "queue_bytes",
	    control_json_u64(ri->queue_bytes));
	json_object_object_add(o, "sent", control_json_u64(ri->sent));
	json_object_object_add(o, "bounced", control_json_u64(ri->bounced));
	json_object_object_add(o, "dropped", control_json_u64(ri->dropped));
	json_object_object_add(o, "unacked", control_json_u64(ri->unacked));
	json_object_object_add(o, "acked", control_json_u64(ri->acked));
	json_object_object_add(o, "resent", control_json_u64(ri->resent));
	json_object_object_add(o, "age", control_json_u64(ri->age_ms / 1000));
	if (ri->failures > 0) {
		fail = json_object_new_object();
		json_object_object_add(fail, "failures",
		    control_json_u64(ri->failures));
		json_object_object_add(fail, "retry_in_ms",
		    control_json_u64(ri->retry_in_ms));
		json_object_object_add(fail, "condition",
		    json_object_new_string(ri->fail_condition));
		json_object_object_add(fail, "text",
		    control_json_text(ri->fail_text));
	}
	json_object_object_add(o, "failure", fail);
	json_object_array_add(list, o);
}

static int
control_cmd_routes(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	struct json_object *list = json_object_new_array();

	route_foreach(leg_env_routes(daemon_legs(cc->ctl->d)), control_list_route, list);
	control_mark_worker(cc, list);
	json_object_object_add(reply, "routes", list);
	return 0;
}

static int
control_cmd_retry(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	char domain[JID_DOMAIN_MAX];
	unsigned n;

	if (jid_domain_normalize(argv[0], domain, sizeof(domain)) == -1)
		return control_error(reply, "invalid domain");
	n = route_retry(leg_env_routes(daemon_legs(cc->ctl->d)), domain);
	log_info("control: retry %s by uid %u pid %ld: %u routes cleared",
	    domain, (unsigned)cc->uid, (long)cc->pid, n);
	json_object_object_add(reply, "domain", control_json_text(domain));
	json_object_object_add(reply, "cleared", control_json_u64(n));
	return 0;
}

static int
control_cmd_kill(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	const char *errstr;
	long long id;
	unsigned closed;

	/* Leg ids start at 1; leg_kill() reads 0 as "by domain". */
	id = strtonum(argv[0], 1, LLONG_MAX, &errstr);
	if (errstr != NULL)
		return control_error(reply, "invalid session id");
	closed = leg_kill(daemon_legs(cc->ctl->d), (uint64_t)id, NULL);
	log_info("control: kill %lld by uid %u pid %ld: %u closed", id,
	    (unsigned)cc->uid, (long)cc->pid, closed);
	if (closed == 0)
		return control_error(reply, "no such session");
	json_object_object_add(reply, "closed", json_object_new_int64(closed));
	return 0;
}

static int
control_cmd_kill_domain(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	char domain[JID_DOMAIN_MAX];
	unsigned closed;

	if (jid_domain_normalize(argv[0], domain, sizeof(domain)) == -1)
		return control_error(reply, "invalid domain");
	json_object_object_add(reply, "domain", json_object_new_string(domain));
	closed = leg_kill(daemon_legs(cc->ctl->d), 0, domain);
	log_info("control: kill --domain %s by uid %u pid %ld: %u closed",
	    domain, (unsigned)cc->uid, (long)cc->pid, closed);
	if (closed == 0)
		return control_error(reply, "no such session");
	json_object_object_add(reply, "closed", json_object_new_int64(closed));
	return 0;
}

/*
 * Stop the daemon as SIGTERM does. The reply is queued after this returns;
 * if daemon_stop() frees the control socket at once (nothing to drain),
 * control_free() defers to the end of this client's callback and sends
 * what each client is owed before closing it.
 */
static int
control_cmd_drain(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	struct daemon *d = cc->ctl->d;
	enum daemon_state state = daemon_state(d);

	if (state != DAEMON_RUNNING)
		return control_error(reply, "the daemon is %s",
		    daemon_state_name(state));
	log_info("control: drain requested by uid %u pid %ld",
	    (unsigned)cc->uid, (long)cc->pid);
	json_object_object_add(reply, "legs",
	    json_object_new_int64(leg_count(daemon_legs(cc->ctl->d))));
	json_object_object_add(reply, "queued",
	    control_json_u64(route_queued(leg_env_routes(daemon_legs(cc->ctl->d)))));
	daemon_stop(d, "drain requested from the control socket");
	json_object_object_add(reply, "state",
	    json_object_new_string(daemon_state_name(daemon_state(d))));
	return 0;
}

/* The exposition, as GET /metrics serves it, in "text". */
static int
control_cmd_metrics(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	struct evbuffer *buf = evbuffer_new();
	struct json_object *text = NULL;
	size_t len;

	if (buf != NULL && metrics_http_render(daemon_legs(cc->ctl->d), buf) == 0 &&
	    (len = evbuffer_get_length(buf)) <= INT_MAX)
		text = json_object_new_string_len(
		    (const char *)evbuffer_pullup(buf, -1), (int)len);
	evbuffer_free(buf);
	if (text == NULL)
		return control_error(reply, "out of memory");
	json_object_object_add(reply, "text", text);
	return 0;
}

/*
 * check DOMAIN [from DOMAIN]: a deferred reply (control_defer()). The
 * check runs on the loop; its done callback fills the reply and sends it.
 * It needs the right to mutate: it makes fedgated connect out.
 */

/* The reply's time bound: the check's own, and a margin to report it. */
#define CONTROL_CHECK_SEC	(CHECK_TIME_MS / 1000 + 10)

static struct tls *
control_check_tls(void *arg)
{
	return daemon_tls(arg);
}

static void
control_check_cancel(void *arg)
{
	check_free(arg);
}

static struct json_object *
control_check_steps(const struct check_report *r)
{
	struct json_object *list = json_object_new_array(), *o;

	for (size_t i = 0; i < r->nsteps; i++) {
		const struct check_step *s = &r->step[i];

		o = json_object_new_object();
		json_object_object_add(o, "step",
		    json_object_new_string(s->name));
		json_object_object_add(o, "subject",
		    control_json_text(s->subject));
		json_object_object_add(o, "verdict",
		    json_object_new_string(check_verdict_name(s->verdict)));
		json_object_object_add(o, "reason",
		    control_json_text(s->reason));
		json_object_array_add(list, o);
	}
	return list;
}

static void
control_check_done(struct check *ch, void *arg)
{
	struct control_client *cc = arg;
	struct json_object *reply = cc->deferred;
	const struct check_report *r = check_report(ch);

	json_object_object_add(reply, "works", json_object_new_string(
	    check_outcome_name(check_result(ch))));
	json_object_object_add(reply, "elapsed_ms",
	    control_json_u64(check_elapsed_ms(ch)));
	json_object_object_add(reply, "steps", control_check_steps(r));
	json_object_object_add(reply, "dropped", control_json_u64(r->dropped));
	check_free(ch);
	control_finish(cc, 0);
}

/* DOMAIN and the optional "from DOMAIN", normalised. Return 0 or -1. */
static int
control_check_args(struct json_object *reply, int argc, char **argv,
    char *domain, char *from, size_t len)
{
	if (jid_domain_normalize(argv[0], domain, len) == -1)
		return control_error(reply, "invalid domain");
	from[0] = '\0';
	if (argc == 1)
		return 0;
	if (argc != 3 || strcmp(argv[1], "from") != 0)
		return control_error(reply, "usage: check DOMAIN [from DOMAIN]");
	if (jid_domain_normalize(argv[2], from, len) == -1)
		return control_error(reply, "invalid from domain");
	return 0;
}

static int
control_cmd_check(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	struct daemon *d = cc->ctl->d;
	struct check_env env = {
		.base = daemon_base(d),
		.resolve = daemon_resolve(d),
		.tls = control_check_tls,
		.tls_arg = d,
		.config = daemon_config(d),
	};
	char domain[JID_DOMAIN_MAX], from[JID_DOMAIN_MAX], err[256];
	struct check *ch;

	if (control_check_args(reply, argc, argv, domain, from,
	    sizeof(domain)) == -1)
		return -1;
	if (env.resolve == NULL)
		return control_error(reply, "no resolver");
	json_object_object_add(reply, "domain", json_object_new_string(domain));
	if ((ch = check_start(&env, domain, from[0] != '\0' ? from : NULL,
	    control_check_done, cc, err, sizeof(err))) == NULL)
		return control_error(reply, "%s", err);
	json_object_object_add(reply, "from",
	    json_object_new_string(check_from(ch)));
	json_object_object_add(reply, "local",
	    json_object_new_boolean(check_is_local(ch)));
	if (control_defer(cc, reply, CONTROL_CHECK_SEC, control_check_cancel,
	    ch) == -1) {
		check_free(ch);
		return -1;
	}
	log_info("control: check %s by uid %u pid %ld", domain,
	    (unsigned)cc->uid, (long)cc->pid);
	return CONTROL_DEFERRED;
}

/*
 * flows: every leg with a socket, joined with the conntrack entry of its
 * TCP connection.
 */

struct control_flows {
	struct json_object	*list;
	struct ct		*ct;
	int			 error;		/* errno of a failed look-up */
};

/* {"src": "...", "dst": "..."} of t. */
static struct json_object *
control_tuple_json(const struct ct_tuple *t)
{
	struct json_object *o = json_object_new_object();
	char a[UTIL_SOCKADDR_STRLEN];

	json_object_object_add(o, "src", json_object_new_string(
	    util_sockaddr_str((const struct sockaddr *)&t->src, a, sizeof(a))));
	json_object_object_add(o, "dst", json_object_new_string(
	    util_sockaddr_str((const struct sockaddr *)&t->dst, a, sizeof(a))));
	return o;
}

static struct json_object *
control_entry_json(const struct ct_entry *e, const struct sockaddr *local)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "original", control_tuple_json(&e->orig));
	json_object_object_add(o, "reply", control_tuple_json(&e->reply));
	json_object_object_add(o, "nat",
	    json_object_new_string(ct_entry_nat_name(e, local)));
	json_object_object_add(o, "state",
	    json_object_new_string(ct_tcp_state_name(e->tcp_state)));
	json_object_object_add(o, "mark", control_json_u64(e->mark));
	json_object_object_add(o, "timeout", control_json_u64(e->timeout));
	return o;
}

static void
control_list_flow(const struct leg_info *li, void *arg)
{
	struct control_flows *f = arg;
	struct json_object *o;
	struct ct_entry e;
	char a[UTIL_SOCKADDR_STRLEN];
	int rc;

	if (li->local_addr == NULL || li->peer_addr == NULL || f->error != 0)
		return;
	rc = ct_lookup(f->ct, li->local_addr, li->peer_addr, &e);
	if (rc == -1 && (errno == EPERM || errno == EACCES)) {
		f->error = errno;
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", control_json_u64(li->id));
	json_object_object_add(o, "face", json_object_new_string(li->face));
	json_object_object_add(o, "direction",
	    json_object_new_string(li->outgoing ? "out" : "in"));
	json_object_object_add(o, "transparent", li->transparent != NULL ?
	    json_object_new_string(li->transparent) : NULL);
	json_object_object_add(o, "local", json_object_new_string(
	    util_sockaddr_str(li->local_addr, a, sizeof(a))));
	json_object_object_add(o, "peer", json_object_new_string(
	    util_sockaddr_str(li->peer_addr, a, sizeof(a))));
	json_object_object_add(o, "conntrack", rc == 0 ?
	    control_entry_json(&e, li->local_addr) : NULL);
	if (rc != 0)
		json_object_object_add(o, "note", json_object_new_string(
		    rc == 1 ? "no conntrack entry" : strerror(errno)));
	json_object_array_add(f->list, o);
}

static int
control_cmd_flows(struct control_client *cc, struct json_object *reply,
    int argc, char **argv)
{
	struct control_flows f = { 0 };
	char err[200];

	if (!config_uses_transparent(daemon_config(cc->ctl->d)))
		return control_error(reply, "flows reads the conntrack table, "
		    "which needs CAP_NET_ADMIN: fedgated keeps it only when the "
		    "configuration uses transparent features (listen "
		    "transparent, resolve original, upstream transparent)");
	if ((f.ct = ct_open(err, sizeof(err))) == NULL)
		return control_error(reply, "%s", err);
	f.list = json_object_new_array();
	leg_foreach(daemon_legs(cc->ctl->d), control_list_flow, &f);
	ct_close(f.ct);
	if (f.error != 0) {
		json_object_put(f.list);
		return control_error(reply, "conntrack: %s (CAP_NET_ADMIN is "
		    "needed)", strerror(f.error));
	}
	control_mark_worker(cc, f.list);
	json_object_object_add(reply, "flows", f.list);
	return 0;
}
