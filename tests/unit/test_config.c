/*
 * test_config: the configuration language (src/parse.y) and the checks of
 * src/config.c. Good and bad snippets in tables, each bad one with the exact
 * error text it must produce; defaults; policy rules; include and macros;
 * the dialback secret file; the "not supported yet" keywords; reloading.
 */
#include "fgconfig.h"

#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>

#define CONFIG_PRIVATE
#include "bundle.h"
#include "config.h"
#include "policy.h"
#include "util.h"

#define NAME	"test.conf"
#define SECRET	"dialback secret \"0123456789abcdef\"\n"

static struct config *
load(const char *text, char **errors)
{
	*errors = NULL;
	return config_load_buffer(NAME, text, strlen(text), false, errors);
}

/* Load text, which must be good, and return the config. */
static struct config *
load_good(const char *text)
{
	struct config *c;
	char *errors = NULL;

	c = load(text, &errors);
	if (c == NULL)
		fail_msg("unexpected errors for:\n%s---\n%s", text, errors);
	assert_null(errors);
	return c;
}

/* Write text to dir/name with mode; return the path in buf. */
static const char *
write_file(const char *dir, const char *name, const char *text, mode_t mode,
    char *buf, size_t len)
{
	FILE *f;

	snprintf(buf, len, "%s/%s", dir, name);
	assert_non_null(f = fopen(buf, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(buf, mode), 0);
	return buf;
}

/* A fresh temporary directory (removed by rm_dir). */
static char *
make_dir(void)
{
	char *dir;

	assert_non_null(dir = strdup("/tmp/test_config.XXXXXX"));
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void
rm_dir(char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

static void
test_keywords_sorted(void **state)
{
	assert_true(config_keywords_are_sorted());
}

static void
test_defaults(void **state)
{
	struct config *c = load_good("");
	struct policy_match m;

	assert_int_equal(c->refs, 1);
	assert_string_equal(c->path, NAME);
	assert_null(c->user);
	assert_null(c->group);
	assert_null(c->pid_file);
	assert_true(c->log_syslog);
	assert_int_equal(c->log_facility, LOG_DAEMON);
	assert_int_equal(c->log_level, LOG_LEVEL_INFO);
	assert_string_equal(c->control_path, CONFIG_DEFAULT_CONTROL);
	assert_int_equal(c->control_mode, 0660);
	assert_null(c->control_group);
	assert_null(c->metrics_host);
	assert_null(c->dialback_secret);
	assert_null(c->ca_file);
	assert_null(c->ca_path);
	assert_null(c->resolver);
	assert_int_equal(c->limits.stanza_size, 256 * 1024);
	assert_int_equal(c->limits.header_size, 8 * 1024);
	assert_int_equal(c->limits.depth, 64);
	assert_int_equal(c->limits.attributes, 64);
	assert_int_equal(c->limits.connections, 1000);
	assert_int_equal(c->limits.connections_per_address, 16);
	assert_int_equal(c->limits.queue, 256);
	assert_int_equal(c->timeouts.handshake, 30000);
	assert_int_equal(c->timeouts.connect, 10000);
	assert_int_equal(c->timeouts.dns, 10000);
	assert_int_equal(c->timeouts.idle, 600000);
	assert_int_equal(c->timeouts.keepalive, 60000);
	assert_int_equal(c->timeouts.shutdown, 10000);
	assert_true(TAILQ_EMPTY(&c->listens));
	assert_true(TAILQ_EMPTY(&c->domains));
	assert_true(TAILQ_EMPTY(&c->unsupported));
	assert_non_null(c->policy);
	assert_int_equal(policy_match(c->policy, "x.example", &m), 0);
	assert_null(m.rule);
	for (int i = 0; i < CONFIG_SET_MAX; i++)
		assert_null(c->origins[i].file);
	config_unref(c);
}

/* The realistic case of etc/fedgated.conf, without files or listeners. */
static const char example[] =
    "# fedgated.conf for corp.example\n"
    "ext = \"203.0.113.10\"\n"
    "inside = 192.0.2.1\n"
    "user \"_fedgate\"\n"
    "group \"_fedgate\"\n"
    "pid-file \"/run/fedgated.pid\"\n"
    "log syslog facility local3\n"
    "log level debug\n"
    "control socket \"/run/fedgated/ctl.sock\" mode 0660 group \"fedgate\"\n"
    "dialback secret \"a long random string of bytes\"\n"
    "resolver $inside port 5353\n"
    "limit stanza-size 512k header-size 16k depth 32\n"
    "limit attributes 32 connections 2000 connections-per-address 8\n"
    "limit queue 128\n"
    "timeout handshake 20s connect 5s dns 3s idle 5m shutdown 0\n"
    "keepalive 2m\n"
    "\n"
    "domain \"corp.example\" {\n"
    "\tupstream \"cup.corp.local\" port 5280 trusted   # the inside server\n"
    "\tinternal-name \"corp.internal\"\n"
    "}\n"
    "domain \"Other.Example\" {\n"
    "\tupstream 192.0.2.20\n"
    "}\n"
    "peer \"legacy.example\" { allow; tls none; verify none; auth dialback }\n"
    "peer \"partner-old.example\" {\n"
    "\tallow\n"
    "\ttls optional\n"
    "\tverify none\n"
    "}\n"
    "peer \"*.partner.example\" { allow  tls required  verify required  "
    "auth any  resolve srv }\n"
    "peer \"limited.example\" { allow limit stanza-size 64k connections 4 }\n"
    "peer \"blocked.example\" deny\n"
    "peer default { deny }\n";

static void
test_example(void **state)
{
	struct config *c = load_good(example);
	const struct config_domain *d;
	struct policy_match m;

	assert_string_equal(c->user, "_fedgate");
	assert_string_equal(c->group, "_fedgate");
	assert_string_equal(c->pid_file, "/run/fedgated.pid");
	assert_true(c->log_syslog);
	assert_int_equal(c->log_facility, LOG_LOCAL3);
	assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(c->control_path, "/run/fedgated/ctl.sock");
	assert_int_equal(c->control_mode, 0660);
	assert_string_equal(c->control_group, "fedgate");
	assert_string_equal(c->dialback_secret,
	    "a long random string of bytes");
	assert_int_equal(c->dialback_secret_len, 29);
	assert_string_equal(c->resolver, "192.0.2.1");
	assert_int_equal(c->resolver_port, 5353);
	assert_int_equal(c->limits.stanza_size, 512 * 1024);
	assert_int_equal(c->limits.header_size, 16 * 1024);
	assert_int_equal(c->limits.depth, 32);
	assert_int_equal(c->limits.attributes, 32);
	assert_int_equal(c->limits.connections, 2000);
	assert_int_equal(c->limits.connections_per_address, 8);
	assert_int_equal(c->limits.queue, 128);
	assert_int_equal(c->timeouts.handshake, 20000);
	assert_int_equal(c->timeouts.connect, 5000);
	assert_int_equal(c->timeouts.dns, 3000);
	assert_int_equal(c->timeouts.idle, 300000);
	assert_int_equal(c->timeouts.shutdown, 0);
	assert_int_equal(c->timeouts.keepalive, 120000);
	assert_string_equal(c->origins[CONFIG_SET_LOG_LEVEL].file, NAME);
	assert_int_equal(c->origins[CONFIG_SET_LOG_LEVEL].line, 8);

	assert_non_null(d = config_domain_find(c, "corp.example"));
	assert_string_equal(d->name, "corp.example");
	assert_string_equal(d->internal_name, "corp.internal");
	assert_string_equal(d->upstream_host, "cup.corp.local");
	assert_int_equal(d->upstream_port, 5280);
	assert_true(d->upstream_trusted);
	assert_false(d->upstream_transparent);
	assert_false(d->upstream_proxy_protocol);
	assert_null(d->certificate);
	assert_string_equal(d->origin.file, NAME);
	assert_int_equal(d->origin.line, 18);
	assert_ptr_equal(config_domain_find_internal(c, "corp.internal"), d);
	assert_null(config_domain_find_internal(c, "corp.example"));
	/* normalised, and its own name inside */
	assert_non_null(d = config_domain_find(c, "other.example"));
	assert_string_equal(d->upstream_host, "192.0.2.20");
	assert_int_equal(d->upstream_port, CONFIG_DEFAULT_PORT);
	assert_ptr_equal(config_domain_find_internal(c, "other.example"), d);
	assert_null(config_domain_find(c, "corp.internal"));

	assert_int_equal(policy_match(c->policy, "legacy.example", &m), 0);
	assert_non_null(m.rule);
	assert_string_equal(policy_rule_origin(m.rule), NAME);
	assert_int_equal(policy_rule_line(m.rule), 25);
	assert_true(m.settings.allow);
	assert_int_equal(m.settings.tls, POLICY_TLS_NONE);
	assert_int_equal(m.settings.verify, POLICY_VERIFY_NONE);
	assert_int_equal(m.settings.auth, POLICY_AUTH_DIALBACK);

	assert_int_equal(policy_match(c->policy, "partner-old.example", &m), 0);
	assert_true(m.settings.allow);
	assert_int_equal(m.settings.tls, POLICY_TLS_OPTIONAL);
	assert_int_equal(m.settings.verify, POLICY_VERIFY_NONE);

	assert_int_equal(policy_match(c->policy, "a.b.partner.example", &m), 0);
	assert_string_equal(policy_rule_pattern(m.rule), "*.partner.example");
	assert_true(m.settings.allow);
	assert_int_equal(m.settings.tls, POLICY_TLS_REQUIRED);
	assert_int_equal(m.settings.verify, POLICY_VERIFY_REQUIRED);
	assert_int_equal(m.settings.auth, POLICY_AUTH_ANY);
	assert_int_equal(m.settings.resolve, POLICY_RESOLVE_SRV);

	assert_int_equal(policy_match(c->policy, "limited.example", &m), 0);
	assert_int_equal(m.settings.stanza_size, 64 * 1024);
	assert_int_equal(m.settings.connections, 4);

	assert_int_equal(policy_match(c->policy, "blocked.example", &m), 0);
	assert_string_equal(policy_rule_pattern(m.rule), "blocked.example");
	assert_false(m.settings.allow);

	assert_int_equal(policy_match(c->policy, "elsewhere.example", &m), 0);
	assert_int_equal(policy_rule_kind(m.rule), POLICY_DEFAULT);
	assert_int_equal(policy_rule_line(m.rule), 34);
	assert_false(m.settings.allow);

	assert_int_equal(config_check_supported(c, NULL), 0);
	config_unref(c);
}

/* Good snippets, each with what it must have set. */
struct good {
	const char	*name;
	const char	*text;
	void		(*check)(const struct config *);
};

static void
check_listen(const struct config *c)
{
	const struct config_listen *l = TAILQ_FIRST(&c->listens);
	char buf[UTIL_SOCKADDR_STRLEN];

	assert_non_null(l);
	assert_int_equal(l->face, CONFIG_FACE_PUBLIC);
	assert_string_equal(l->host, "203.0.113.10");
	assert_int_equal(l->port, 5270);
	assert_true(l->direct_tls);
	assert_false(l->proxy_protocol);
	assert_string_equal(util_sockaddr_str((const struct sockaddr *)&l->addr,
	    buf, sizeof(buf)), "203.0.113.10:5270");
	assert_int_equal(l->origin.line, 3);
	l = TAILQ_NEXT(l, entry);
	assert_non_null(l);
	assert_int_equal(l->face, CONFIG_FACE_INTERNAL);
	assert_int_equal(l->port, CONFIG_DEFAULT_PORT);
	assert_string_equal(util_sockaddr_str((const struct sockaddr *)&l->addr,
	    buf, sizeof(buf)), "[2001:db8::1]:5269");
	l = TAILQ_NEXT(l, entry);
	assert_non_null(l);
	assert_int_equal(l->face, CONFIG_FACE_TRANSPARENT);
	assert_string_equal(l->host, "*");
	assert_int_equal(l->port, 15269);
	l = TAILQ_NEXT(l, entry);
	assert_non_null(l);
	assert_true(l->proxy_protocol);
	assert_null(TAILQ_NEXT(l, entry));
}

static void
check_quoting(const struct config *c)
{
	assert_string_equal(c->user, "a\"b\\c");
	assert_string_equal(c->group, "it's");
	assert_string_equal(c->pid_file, "/run/a b#c.pid");
}

static void
check_continuation(const struct config *c)
{
	assert_string_equal(c->user, "joined");
	assert_int_equal(c->limits.depth, 10);
	/* where the keyword is */
	assert_int_equal(c->origins[CONFIG_SET_DEPTH].line, 4);
}

static void
check_crlf(const struct config *c)
{
	assert_string_equal(c->user, "crlf");
	assert_int_equal(c->limits.queue, 7);
}

static void
check_macros(const struct config *c)
{
	const struct config_listen *l = TAILQ_FIRST(&c->listens);

	assert_string_equal(c->user, "second");
	assert_non_null(l);
	assert_int_equal(l->port, 5999);
	assert_string_equal(l->host, "192.0.2.7");
}

static void
check_units(const struct config *c)
{
	assert_int_equal(c->limits.stanza_size, 262144);
	assert_int_equal(c->limits.header_size, 1024 * 1024);
	assert_int_equal(c->timeouts.handshake, 45000);
	assert_int_equal(c->timeouts.idle, 2 * 3600 * 1000);
	assert_int_equal(c->timeouts.connect, 1500);
	assert_int_equal(c->timeouts.keepalive, 0);
}

static void
check_log_stderr(const struct config *c)
{
	assert_false(c->log_syslog);
	assert_int_equal(c->log_level, LOG_LEVEL_TRACE);
}

static void
check_upstream_flags(const struct config *c)
{
	const struct config_domain *d = TAILQ_FIRST(&c->domains);

	assert_non_null(d);
	assert_true(d->upstream_proxy_protocol);
	assert_true(d->upstream_transparent);
	assert_true(d->upstream_trusted);
	assert_string_equal(d->upstream_host, "2001:db8::10");
	assert_string_equal(d->certificate, "/etc/passwd");
	assert_string_equal(d->key, "/etc/passwd");
}

static void
check_peer_all(const struct config *c)
{
	struct policy_match m;

	assert_int_equal(policy_match(c->policy, "static.example", &m), 0);
	assert_true(m.settings.allow);
	assert_string_equal(m.settings.route_host, "gw.static.example");
	assert_int_equal(m.settings.route_port, 5299);
	assert_int_equal(m.settings.resolve, POLICY_RESOLVE_ORIGINAL);
	assert_true(m.settings.dane);
	assert_false(m.settings.bidi);
	assert_true(m.settings.set & POLICY_SET_BIDI);
	assert_int_equal(m.settings.rate, 10 * 1024);
	assert_int_equal(m.settings.burst, 64 * 1024);
	assert_int_equal(m.settings.auth, POLICY_AUTH_EXTERNAL);
	assert_int_equal(policy_match(c->policy, "r.example", &m), 0);
	assert_string_equal(m.settings.route_host, "192.0.2.9");
	assert_int_equal(m.settings.route_port, CONFIG_DEFAULT_PORT);
	assert_true(m.settings.bidi);		/* the built-in default */
}

static void
check_peer_default_inherit(const struct config *c)
{
	struct policy_match m;

	/* the rule sets only tls: allow comes from the default rule */
	assert_int_equal(policy_match(c->policy, "x.example", &m), 0);
	assert_true(m.settings.allow);
	assert_int_equal(m.settings.tls, POLICY_TLS_REQUIRED);
	assert_int_equal(policy_match(c->policy, "idn.example", &m), 0);
	assert_false(m.settings.allow);
	/* IDNA2008: the rule was stored as its A-label */
	assert_int_equal(policy_match(c->policy, "xn--bcher-kva.example",
	    &m), 0);
	assert_string_equal(policy_rule_pattern(m.rule),
	    "xn--bcher-kva.example");
}

static void
check_control(const struct config *c)
{
	assert_string_equal(c->control_path, "/run/fedgated.sock");
	assert_int_equal(c->control_mode, 0600);
	assert_null(c->control_group);
}

static void
check_metrics(const struct config *c)
{
	assert_string_equal(c->metrics_host, "127.0.0.1");
	assert_int_equal(c->metrics_port, CONFIG_DEFAULT_METRICS_PORT);
	assert_int_equal(c->metrics_origin.line, 1);
}

static void
check_metrics_domains(const struct config *c)
{
	assert_int_equal(c->nmetrics_domains, 3);
	assert_string_equal(c->metrics_domains[0], "a.example");
	assert_string_equal(c->metrics_domains[1], "b.example");
	assert_string_equal(c->metrics_domains[2], "c.example");
	assert_null(c->metrics_host);
}

static const struct good goods[] = {
	{ "empty with comments", "# nothing\n\n   # at all\n", NULL },
	{ "no final newline", "user \"x\"", NULL },
	{ "listeners",
	    "ext = 203.0.113.10\n"
	    "domain \"a.example\" { upstream \"h.example\"; certificate "
	    "\"/etc/passwd\"; key \"/etc/passwd\" }\n"
	    "listen public on $ext port 5270 tls\n"
	    "listen internal on 2001:db8::1\n"
	    "listen transparent on * port 15269\n"
	    "listen public on 203.0.113.10 port 5269 proxy-protocol\n"
	    SECRET,
	    check_listen },
	{ "quoting",
	    "user \"a\\\"b\\\\c\"\ngroup 'it\\'s'\n"
	    "pid-file \"/run/a b#c.pid\" # a comment\n",
	    check_quoting },
	{ "line continuation",
	    "user \\\n\"joined\"\nlimit \\\n depth 10\n", check_continuation },
	{ "crlf", "user \"crlf\"\r\nlimit queue 7\r\n", check_crlf },
	{ "macros",
	    "who = \"first\"\nwho = \"second\"\nport = 5999\n"
	    "addr=192.0.2.7\nuser $who\nlisten public on $addr port $port\n",
	    check_macros },
	{ "units",
	    "limit stanza-size 262144 header-size 1m\n"
	    "timeout handshake 45 idle 2h connect 1500ms\nkeepalive off\n",
	    check_units },
	{ "log stderr", "log stderr\nlog level trace\n", check_log_stderr },
	{ "upstream flags",
	    "domain \"a.example\" {\n"
	    "  upstream 2001:db8::10 port 5269 proxy-protocol transparent "
	    "trusted\n"
	    "  certificate \"/etc/passwd\"\n  key \"/etc/passwd\"\n}\n" SECRET,
	    check_upstream_flags },
	{ "every peer setting",
	    "peer \"static.example\" {\n"
	    "  allow\n  route \"GW.static.example\" port 5299\n"
	    "  resolve original ; dane yes ; auth external ; bidi no\n"
	    "  tls required verify required\n"
	    "  limit rate 10k burst 64k\n"
	    "}\n"
	    "peer r.example { allow route 192.0.2.9 }\n",
	    check_peer_all },
	{ "default rule fills gaps",
	    "peer default allow\n"
	    "peer \"x.example\" { tls required }\n"
	    "peer idn.example deny\n"
	    "peer \"b\xc3\xbc" "cher.example\" deny\n",
	    check_peer_default_inherit },
	{ "control socket", "control socket \"/run/fedgated.sock\" mode 600\n",
	    check_control },
	{ "control socket open to all for reading",
	    "control socket \"/run/fedgated.sock\" mode 0666 group \"wheel\"\n",
	    NULL },
	{ "metrics", "metrics listen on 127.0.0.1\n", check_metrics },
	{ "metrics domains", "metrics domains \"A.Example\" b.example.\n"
	    "metrics domains \"c.example\"\n", check_metrics_domains },
	{ "semicolons at top level", "user \"a\"; group \"b\";\n", NULL },
	{ "empty blocks", "peer \"a.example\" { }\npeer \"b.example\" {\n}\n",
	    NULL },
};

static void
test_good(void **state)
{
	for (size_t i = 0; i < nitems(goods); i++) {
		struct config *c = load_good(goods[i].text);

		if (goods[i].check != NULL)
			goods[i].check(c);
		config_unref(c);
	}
}

/* Bad snippets: the exact errors. */
struct bad {
	const char	*text;
	const char	*errors;
};

static const struct bad bads[] = {
	/* syntax */
	{ "tls-requird yes\n",
	    "test.conf:1: unknown keyword \"tls-requird\"\n" },
	{ "user\n", "test.conf:1: unexpected end of line after \"user\"\n" },
	{ "user", "test.conf:1: unexpected end of file after \"user\"\n" },
	{ "user \"a\" \"b\"\n", "test.conf:1: unexpected string \"b\"\n" },
	{ "user \"a\" 12\n", "test.conf:1: unexpected number 12\n" },
	{ "port 5269\n", "test.conf:1: unexpected keyword \"port\"\n" },
	{ "}\n", "test.conf:1: unexpected \"}\"\n" },
	{ "user \"abc\n", "test.conf:1: unterminated quoted string\n" },
	{ "user \"a\" !\n", "test.conf:1: unexpected character \"!\"\n" },
	{ "user $who\n", "test.conf:1: macro \"who\" is not defined\n" },
	{ "user $\n", "test.conf:1: \"$\" is not followed by a macro name\n" },
	{ "my-var = 1\n", "test.conf:1: invalid macro name \"my-var\"\n" },
	{ "peer \"x.example\" {\n a = 1\n}\n",
	    "test.conf:2: macro \"a\" cannot be defined here\n" },
	{ "include \"other.conf\"\n",
	    "test.conf:1: include is not allowed here\n" },
	{ "peer \"x.example\" {\n allow\n",
	    "test.conf:1: \"{\" is not closed before the end of the file\n" },
	{ "peer \"x.example\"\n{ allow }\n",
	    "test.conf:1: unexpected end of line after \"x.example\"\n"
	    "test.conf:2: unexpected \"{\"\n" },
	{ "peer \"x.example\" { tls", "test.conf:1: unexpected end of file "
	    "after \"tls\"\n" },
	{ "peer \"x.example\" {\n\n tls", "test.conf:3: unexpected end of "
	    "file after \"tls\"\n"
	    "test.conf:1: \"{\" is not closed before the end of the file\n" },
	{ "peer \"x.example\" { upstream \"h\" }\n",
	    "test.conf:1: unexpected keyword \"upstream\"\n" },
	{ "peer \"x.example\" { tls bogus }\n",
	    "test.conf:1: unknown keyword \"bogus\"\n" },
	{ "limit rate 10k\n", "test.conf:1: unexpected keyword \"rate\"\n" },
	/* values */
	{ "user \"a\"\nuser \"b\"\n",
	    "test.conf:2: \"user\" is already set at line 1\n" },
	{ "limit depth 8\nlimit queue 9 depth 9\n",
	    "test.conf:2: \"limit depth\" is already set at line 1\n" },
	{ "pid-file \"run/x.pid\"\n",
	    "test.conf:1: pid-file \"run/x.pid\" is not an absolute path\n" },
	{ "log level loud\n", "test.conf:1: unknown log level \"loud\"\n" },
	{ "log syslog facility kernel\n",
	    "test.conf:1: unknown syslog facility \"kernel\"\n" },
	{ "limit stanza-size 12q\n", "test.conf:1: invalid size \"12q\"\n" },
	{ "limit stanza-size 100\n", "test.conf:1: limit stanza-size 100 is "
	    "out of range (1k to 64m)\n" },
	{ "limit depth 0\n",
	    "test.conf:1: limit depth 0 is out of range (2 to 1024)\n" },
	{ "limit connections 99999999999999999999999\n",
	    "test.conf:1: limit connections 99999999999999999999999 is out of "
	    "range (1 to 1000000)\n" },
	{ "limit depth many\n", "test.conf:1: \"many\" is not a number\n" },
	{ "timeout idle 0\n",
	    "test.conf:1: timeout idle 0 is out of range (1s to 1d)\n" },
	{ "timeout dns 10x\n", "test.conf:1: invalid duration \"10x\"\n" },
	{ "keepalive 0\n",
	    "test.conf:1: keepalive 0 is out of range (1s to 1d)\n" },
	{ "control socket \"x.sock\"\n",
	    "test.conf:1: control socket \"x.sock\" is not an absolute "
	    "path\n" },
	{ "control socket \"/run/x.sock\" mode 0999\n",
	    "test.conf:1: invalid mode \"0999\" (an octal number such as "
	    "0660)\n" },
	{ "control socket \"/run/x.sock\" mode 0460\n",
	    "test.conf:1: control socket mode 0460 does not let its owner read "
	    "and write\n" },
	{ "control socket \"/run/x.sock\" mode 0600 group \"g\"\n",
	    "test.conf:1: control socket group \"g\" cannot connect with mode "
	    "0600\n" },
	{ "dialback secret \"short\"\n", "test.conf:1: dialback secret is too "
	    "short (5 bytes, at least 16)\n" },
	{ "dialback secret file \"/nonexistent/db.key\"\n",
	    "test.conf:1: dialback secret file \"/nonexistent/db.key\": No "
	    "such file or directory\n" },
	{ "resolver dns.example\n", "test.conf:1: invalid resolver address "
	    "\"dns.example\" (a numeric address)\n" },
	{ "listen public on host.example\n", "test.conf:1: invalid address "
	    "\"host.example\" (a numeric address or *)\n" },
	{ "listen internal on * proxy-protocol\n",
	    "test.conf:1: proxy-protocol is only for public listeners\n" },
	{ "listen public on * port 0\n",
	    "test.conf:1: port 0 is out of range (1 to 65535)\n" },
	{ "metrics listen on localhost\n", "test.conf:1: invalid address "
	    "\"localhost\" (a numeric address or *)\n" },
	{ "metrics domains \"a..example\"\n", "test.conf:1: metrics domains: "
	    "invalid domain \"a..example\"\n" },
	{ "metrics domains a.example \"A.EXAMPLE\"\n", "test.conf:1: metrics "
	    "domains: a.example is listed twice\n" },
	{ "metrics domains\n", "test.conf:1: unexpected end of line after "
	    "\"domains\"\n" },
	{ "tls ca-path \"/etc/passwd\"\n",
	    "test.conf:1: tls ca-path \"/etc/passwd\" is not a directory\n" },
	{ "tls ca-file \"/etc\"\n",
	    "test.conf:1: tls ca-file \"/etc\" is not a file\n" },
	{ "domain \"a..b\" { upstream \"h.example\" }\n",
	    "test.conf:1: invalid domain \"a..b\"\n" },
	{ "domain \"a.example\" {\n upstream \"h.example\"\n}\n"
	    "domain \"A.example\" {\n upstream \"h.example\"\n}\n",
	    "test.conf:4: domain \"A.example\" is already defined at "
	    "line 1\n" },
	{ "domain \"a.example\" {\n upstream \"h\"\n upstream \"i\"\n}\n",
	    "test.conf:3: \"upstream\" is already set at line 2\n" },
	{ "domain \"a.example\" {\n upstream \"h..x\"\n}\n",
	    "test.conf:2: invalid upstream host \"h..x\"\n" },
	{ "domain \"a.example\" {\n upstream \"h\" port 70000\n}\n",
	    "test.conf:2: port 70000 is out of range (1 to 65535)\n" },
	{ "domain \"a.example\" {\n internal-name \"A.example\"\n}\n",
	    "test.conf:2: internal-name \"A.example\" is the domain's own "
	    "name\n" },
	{ "domain \"a.example\" {\n certificate \"/nonexistent.crt\"\n}\n",
	    "test.conf:2: certificate \"/nonexistent.crt\": No such file or "
	    "directory\n" },
	{ "peer \"a.*.b\" allow\n", "test.conf:1: invalid peer \"a.*.b\" (a "
	    "domain, *.domain or default)\n" },
	{ "peer \"*\" allow\n",
	    "test.conf:1: invalid peer \"*\" (a domain, *.domain or "
	    "default)\n" },
	{ "peer \"x.example\" allow\npeer \"X.example\" deny\n",
	    "test.conf:2: peer \"X.example\" is already defined at "
	    "line 1\n" },
	{ "peer default allow\npeer \"default\" deny\n",
	    "test.conf:2: peer \"default\" is already defined at line 1\n" },
	{ "peer \"x.example\" {\n allow\n deny\n}\n",
	    "test.conf:3: \"allow\" is already set at line 2\n" },
	{ "peer \"x.example\" { limit rate 10k burst 1k }\n",
	    "test.conf:1: burst 1k is smaller than rate 10k\n" },
	{ "peer \"x.example\" { limit stanza-size 1 }\n",
	    "test.conf:1: limit stanza-size 1 is out of range (1k to 64m)\n" },
	{ "peer \"x.example\" { route \"*\" }\n",
	    "test.conf:1: invalid route host \"*\"\n" },
	/* every error of a file, one a line */
	{ "user\nbogus 1\ngroup \"g\"\nlimit depth 1 queue 0\n"
	    "peer \"x.example\" { allow tls bogus }\npeer default deny\n"
	    "domain \"a.example\" {\n upstream\n}\nkeepalive 1\nwhat\n",
	    "test.conf:1: unexpected end of line after \"user\"\n"
	    "test.conf:2: unknown keyword \"bogus\"\n"
	    "test.conf:4: limit depth 1 is out of range (2 to 1024)\n"
	    "test.conf:5: unknown keyword \"bogus\"\n"
	    "test.conf:8: unexpected end of line after \"upstream\"\n"
	    "test.conf:11: unknown keyword \"what\"\n" },
	/* checks across statements, run on a well-formed file */
	{ "domain \"a.example\" { }\n" SECRET,
	    "test.conf:1: domain \"a.example\" has no upstream\n" },
	{ "domain \"a.example\" { upstream \"h\" }\n",
	    "test.conf:1: domain \"a.example\" needs a \"dialback secret\"\n" },
	{ SECRET "domain \"a.example\" {\n upstream \"h\"\n"
	    " certificate \"/etc/passwd\"\n}\n",
	    "test.conf:2: domain \"a.example\" has a certificate but no "
	    "key\n" },
	{ SECRET "domain \"a.example\" {\n upstream \"h\"\n"
	    " key \"/etc/passwd\"\n}\n",
	    "test.conf:2: domain \"a.example\" has a key but no "
	    "certificate\n" },
	{ SECRET "domain \"a.example\" {\n upstream \"h\"\n"
	    " internal-name \"in.example\"\n}\n"
	    "domain \"b.example\" {\n upstream \"h\"\n"
	    " internal-name \"in.example\"\n}\n",
	    "test.conf:6: domain \"b.example\": internal name "
	    "\"in.example\" is already used by domain \"a.example\" at line "
	    "2\n" },
	{ SECRET "domain \"a.example\" {\n upstream \"h\"\n"
	    " internal-name \"b.example\"\n}\n"
	    "domain \"b.example\" {\n upstream \"h\"\n}\n",
	    "test.conf:6: domain \"b.example\": internal name \"b.example\" is "
	    "already used by domain \"a.example\" at line 2\n" },
	{ SECRET "domain \"a.example\" {\n upstream \"h\"\n"
	    " internal-name \"in.example\"\n}\n"
	    "peer \"a.example\" allow\npeer \"in.example\" deny\n",
	    "test.conf:6: peer \"a.example\" is a local domain (domain at "
	    "line 2)\n"
	    "test.conf:7: peer \"in.example\" is the internal name of domain "
	    "\"a.example\"\n" },
	{ "group \"g\"\n",
	    "test.conf:1: group \"g\" is set but user is not\n" },
	{ "limit connections 10\nlimit connections-per-address 20\n",
	    "test.conf:2: limit connections-per-address 20 exceeds limit "
	    "connections 10\n" },
	{ "limit connections 10\n",
	    "test.conf:1: limit connections-per-address 16 exceeds limit "
	    "connections 10\n" },
	{ "listen public on * port 5269\n"
	    "listen internal on 192.0.2.1 port 5269\n"
	    "listen internal on 192.0.2.1 port 5270\n"
	    "listen internal on 0.0.0.0 port 5270\n"
	    "listen internal on 2001:db8::1 port 5271\n"
	    "listen internal on 0.0.0.0 port 5271\n"
	    "metrics listen on 127.0.0.1 port 5269\n",
	    "test.conf:2: listen on 192.0.2.1 port 5269 overlaps the listener "
	    "at line 1\n"
	    "test.conf:4: listen on 0.0.0.0 port 5270 overlaps the listener at "
	    "line 3\n"
	    "test.conf:7: metrics on 127.0.0.1 port 5269 overlaps the listener "
	    "at line 1\n" },
	{ "listen public on * port 5270 tls\n",
	    "test.conf:1: listen on * port 5270 tls needs a domain with a "
	    "certificate\n" },
	{ "peer \"x.example\" { allow tls none verify required }\n",
	    "test.conf:1: peer \"x.example\": verify required needs tls\n" },
	{ "peer default { allow tls none }\n"
	    "peer \"*.x.example\" { auth external }\n"
	    "peer \"y.example\" { deny auth external }\n",
	    "test.conf:2: peer \"*.x.example\": auth external needs tls\n" },
	{ "peer default { allow verify none auth external }\n",
	    "test.conf:1: peer default: auth external needs verify optional or "
	    "required\n" },
	{ "peer \"x.example\" { allow tls none dane yes }\n",
	    "test.conf:1: peer \"x.example\": dane needs tls\n" },
	{ "limit stanza-size 64k\n"
	    "peer \"x.example\" { limit stanza-size 1m connections 5000 }\n",
	    "test.conf:2: peer \"x.example\": limit stanza-size 1m exceeds the "
	    "global limit 64k\n"
	    "test.conf:2: peer \"x.example\": limit connections 5000 exceeds "
	    "the global limit 1000\n" },
};

static void
test_bad(void **state)
{
	for (size_t i = 0; i < nitems(bads); i++) {
		struct config *c;
		char *errors;

		c = load(bads[i].text, &errors);
		if (c != NULL || errors == NULL ||
		    strcmp(errors, bads[i].errors) != 0)
			fail_msg("for:\n%s---\nexpected:\n%s---\ngot:\n%s",
			    bads[i].text, bads[i].errors,
			    errors != NULL ? errors : "(none)\n");
		free(errors);
	}
}

static void
test_bad_bytes(void **state)
{
	static const char nul[] = "user \"a\"\0\n";
	char *errors = NULL, *text, *p;
	struct config *c;
	int lines = 0;

	c = config_load_buffer(NAME, nul, sizeof(nul) - 1, false, &errors);
	assert_null(c);
	assert_string_equal(errors, "test.conf:1: unexpected byte 0x00\n");
	free(errors);

	/* control characters never break the one-line-per-error rule */
	errors = NULL;
	assert_null(load("user \"a\tb\" x\n", &errors));
	assert_string_equal(errors, "test.conf:1: unknown keyword \"x\"\n");
	free(errors);
	errors = NULL;
	assert_null(load("\x01\n", &errors));
	assert_string_equal(errors, "test.conf:1: unexpected byte 0x01\n");
	free(errors);

	/* a flood of errors stops after 50 */
	assert_non_null(text = malloc(100 * 6 + 1));
	for (p = text, lines = 0; lines < 100; lines++, p += 6)
		memcpy(p, "bogus\n", 6);
	*p = '\0';
	errors = NULL;
	assert_null(load(text, &errors));
	lines = 0;
	for (p = errors; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, 51);
	assert_non_null(strstr(errors,
	    "test.conf:50: unknown keyword \"bogus\"\n"
	    "test.conf:50: too many errors, giving up\n"));
	free(errors);
	free(text);

	/* an overlong word */
	assert_non_null(text = malloc(5000 + 8));
	memcpy(text, "user ", 5);
	memset(text + 5, 'a', 5000);
	memcpy(text + 5005, "\n", 2);
	errors = NULL;
	assert_null(load(text, &errors));
	assert_string_equal(errors,
	    "test.conf:1: word is longer than 4095 bytes\n");
	free(errors);
	free(text);
}

/* Errors are appended to what *errors already holds. */
static void
test_errors_append(void **state)
{
	char *errors;

	assert_non_null(errors = strdup("before\n"));
	assert_null(config_load_buffer(NAME, "bogus\n", 6, false, &errors));
	assert_string_equal(errors,
	    "before\ntest.conf:1: unknown keyword \"bogus\"\n");
	free(errors);
	errors = NULL;
	assert_null(config_load("/nonexistent/fedgated.conf", &errors));
	assert_string_equal(errors,
	    "/nonexistent/fedgated.conf: No such file or directory\n");
	free(errors);
	errors = NULL;
	assert_null(config_load("/etc", &errors));
	assert_string_equal(errors, "/etc: not a regular file\n");
	free(errors);
}

/*
 * Each keyword of the unsupported table is accepted, then refused. The
 * expected text follows the table, which shrinks as behaviour lands.
 */
static void
test_unsupported(void **state)
{
	static const char text[] =
	    "domain \"a.example\" {\n"
	    "  upstream \"h\" proxy-protocol transparent\n"
	    "  certificate \"/etc/passwd\"; key \"/etc/passwd\"\n"
	    "}\n"
	    SECRET
	    "listen public on * port 5269 proxy-protocol\n"
	    "listen transparent on 127.0.0.1 port 15269\n"
	    "metrics listen on 127.0.0.1\n"
	    "tls ca-file \"/etc/passwd\"\n"
	    "tls ca-path \"/etc\"\n"
	    "peer \"x.example\" {\n"
	    "  allow resolve original dane yes route \"gw.example\"\n"
	    "  limit rate 1m\n"
	    "}\n"
	    "peer \"y.example\" { allow resolve srv dane no }\n";
	/* every keyword text uses that may be in the table, in order */
	static const struct {
		const char	*keyword;
		int		 line;
	} uses[] = {
		{ "proxy-protocol", 2 },
		{ "proxy-protocol", 6 }, { "listen", 6 },
		{ "listen", 7 },
		{ "metrics", 8 }, { "tls ca-file", 9 }, { "tls ca-path", 10 },
		{ "dane", 12 }, { "route", 12 },
		{ "limit rate", 13 },
	};
	struct config *c = load_good(text);
	char *errors = NULL, *expect = NULL, line[128];
	const char *kw;
	int n = 0;

	for (size_t i = 0; i < nitems(uses); i++) {
		bool listed = false;

		for (size_t j = 0; (kw = config_unsupported_keyword(j)) != NULL;
		    j++)
			if (strcmp(kw, uses[i].keyword) == 0)
				listed = true;
		if (!listed)
			continue;
		snprintf(line, sizeof(line), "test.conf:%d: \"%s\" is not "
		    "supported yet", uses[i].line, uses[i].keyword);
		assert_int_equal(util_append_line(&expect, line), 0);
		n++;
	}
	/* the table lists nothing the grammar never records */
	for (size_t j = 0; (kw = config_unsupported_keyword(j)) != NULL; j++) {
		bool used = false;

		for (size_t i = 0; i < nitems(uses); i++)
			if (strcmp(kw, uses[i].keyword) == 0)
				used = true;
		if (!used)
			fail_msg("unsupported keyword \"%s\" is never recorded",
			    kw);
	}
	assert_int_equal(config_check_supported(c, &errors), n);
	if (n > 0)
		assert_string_equal(errors, expect);
	else
		assert_null(errors);
	free(errors);
	free(expect);
	assert_string_equal(c->ca_file, "/etc/passwd");
	assert_string_equal(c->ca_path, "/etc");
	config_unref(c);

	/* a keyword outside the table is not recorded */
	c = load_good("user \"x\"\n");
	assert_int_equal(config_note_keyword(c, "user", NAME, 1), 0);
	assert_int_equal(config_check_supported(c, NULL), 0);
	if ((kw = config_unsupported_keyword(0)) != NULL) {
		assert_int_equal(config_note_keyword(c, kw, NAME, 2), 0);
		errors = NULL;
		assert_int_equal(config_check_supported(c, &errors), 1);
		snprintf(line, sizeof(line), "test.conf:2: \"%s\" is not "
		    "supported yet\n", kw);
		assert_string_equal(errors, line);
		free(errors);
	}
	config_unref(c);
}

/* A config loads the same twice; references keep it alive. */
static void
test_reload(void **state)
{
	struct config *a, *b;
	char *errors = NULL;

	a = load_good(example);
	b = load_good(example);
	assert_ptr_not_equal(a, b);
	assert_string_equal(a->user, b->user);
	assert_int_equal(a->limits.stanza_size, b->limits.stanza_size);
	assert_ptr_equal(config_ref(a), a);
	assert_int_equal(a->refs, 2);
	config_unref(a);
	assert_string_equal(a->user, "_fedgate");
	config_unref(a);
	config_unref(b);
	config_unref(NULL);

	/* a failed parse leaves nothing behind for the next one */
	assert_null(load("peer \"x.example\" {\n", &errors));
	free(errors);
	a = load_good(example);
	config_unref(a);
	assert_null(load("ext = 1\n$ext\n", &errors));
	free(errors);
	/* macros do not survive a parse */
	assert_null(load("user $ext\n", &errors));
	assert_string_equal(errors, "test.conf:1: macro \"ext\" is not "
	    "defined\n");
	free(errors);
}

static void
test_include(void **state)
{
	char *dir = make_dir(), path[PATH_MAX], other[PATH_MAX], sub[PATH_MAX];
	struct config *c;
	struct policy_match m;
	char *errors = NULL;

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_file(dir, "sub/peers.conf",
	    "peer \"inc.example\" allow\nwho = \"from-include\"\n", 0644,
	    other, sizeof(other));
	write_file(dir, "main.conf",
	    "include \"sub/peers.conf\"\nuser $who\n", 0644, path,
	    sizeof(path));
	c = config_load(path, &errors);
	if (c == NULL)
		fail_msg("%s", errors);
	assert_string_equal(c->user, "from-include");
	assert_int_equal(policy_match(c->policy, "inc.example", &m), 0);
	assert_true(m.settings.allow);
	assert_string_equal(policy_rule_origin(m.rule), other);
	assert_int_equal(policy_rule_line(m.rule), 1);
	config_unref(c);

	/* errors name the included file, relative to the includer */
	write_file(dir, "sub/bad.conf", "bogus\npeer \"x.example\" {\n", 0644,
	    other, sizeof(other));
	write_file(dir, "main.conf",
	    "include \"sub/bad.conf\"\nuser \"after\"\ninclude \"none.conf\"\n",
	    0644, path, sizeof(path));
	errors = NULL;
	assert_null(config_load(path, &errors));
	snprintf(other, sizeof(other),
	    "%s/sub/bad.conf:1: unknown keyword \"bogus\"\n"
	    "%s/sub/bad.conf:2: \"{\" is not closed before the end of the "
	    "file\n"
	    "%s/main.conf:3: include \"none.conf\": No such file or "
	    "directory\n",
	    dir, dir, dir);
	assert_string_equal(errors, other);
	free(errors);

	/* across files, the earlier place is named with its file */
	write_file(dir, "sub/peers.conf", "peer \"inc.example\" allow\n", 0644,
	    other, sizeof(other));
	write_file(dir, "main.conf", "include \"sub/peers.conf\"\n"
	    "peer \"inc.example\" deny\n", 0644, path, sizeof(path));
	errors = NULL;
	assert_null(config_load(path, &errors));
	snprintf(other, sizeof(other), "%s/main.conf:2: peer \"inc.example\" "
	    "is already defined at %s/sub/peers.conf:1\n", dir, dir);
	assert_string_equal(errors, other);
	free(errors);

	/* loops, direct and through another file */
	write_file(dir, "main.conf", "include \"main.conf\"\n", 0644, path,
	    sizeof(path));
	errors = NULL;
	assert_null(config_load(path, &errors));
	snprintf(other, sizeof(other),
	    "%s/main.conf:1: include \"main.conf\" makes a loop\n", dir);
	assert_string_equal(errors, other);
	free(errors);
	write_file(dir, "main.conf", "include \"sub/a.conf\"\n", 0644, path,
	    sizeof(path));
	write_file(dir, "sub/a.conf", "\ninclude \"../main.conf\"\n", 0644,
	    other, sizeof(other));
	errors = NULL;
	assert_null(config_load(path, &errors));
	snprintf(other, sizeof(other), "%s/sub/a.conf:2: include "
	    "\"../main.conf\" makes a loop\n", dir);
	assert_string_equal(errors, other);
	free(errors);

	/* include from a buffer, allowed: relative to the buffer's name */
	write_file(dir, "sub/peers.conf", "user \"buffered\"\n", 0644,
	    other, sizeof(other));
	snprintf(path, sizeof(path), "%s/buffer.conf", dir);
	errors = NULL;
	c = config_load_buffer(path, "include \"sub/peers.conf\"\n", 25, true,
	    &errors);
	assert_non_null(c);
	assert_string_equal(c->user, "buffered");
	config_unref(c);
	rm_dir(dir);
}

/* Relative paths are taken from the directory of the file naming them. */
static void
test_relative_paths(void **state)
{
	char *dir = make_dir(), path[PATH_MAX], real[PATH_MAX];
	char want[2 * PATH_MAX];
	struct config *c;
	char *errors = NULL;

	write_file(dir, "a.crt", "dummy\n", 0644, path, sizeof(path));
	write_file(dir, "a.key", "dummy\n", 0600, path, sizeof(path));
	write_file(dir, "db.key", "0123456789abcdef-secret\n", 0600, path,
	    sizeof(path));
	write_file(dir, "main.conf",
	    "dialback secret file \"db.key\"\n"
	    "domain \"a.example\" {\n upstream \"h\"\n"
	    " certificate \"a.crt\"\n key \"a.key\"\n}\n", 0644, path,
	    sizeof(path));
	c = config_load(path, &errors);
	if (c == NULL)
		fail_msg("%s", errors);
	assert_non_null(realpath(dir, real));
	snprintf(want, sizeof(want), "%s/a.crt", real);
	assert_string_equal(TAILQ_FIRST(&c->domains)->certificate, want);
	snprintf(want, sizeof(want), "%s/a.key", real);
	assert_string_equal(TAILQ_FIRST(&c->domains)->key, want);
	/* the trailing newline is not part of the secret */
	assert_string_equal(c->dialback_secret, "0123456789abcdef-secret");
	assert_int_equal(c->dialback_secret_len, 23);
	config_unref(c);
	rm_dir(dir);
}

static void
test_secret_file(void **state)
{
	static const struct {
		const char	*content;
		mode_t		 mode;
		const char	*error;		/* NULL: good */
	} cases[] = {
		{ "0123456789abcdef", 0600, NULL },
		{ "0123456789abcdef\r\n", 0400, NULL },
		{ "0123456789abcdef\n", 0644, "dialback secret file "
		    "\"db.key\" is accessible by group or others (mode 0644)" },
		{ "0123456789abcdef\n", 0620, "dialback secret file "
		    "\"db.key\" is accessible by group or others (mode 0620)" },
		{ "short\n", 0600, "dialback secret file \"db.key\" is too "
		    "short (5 bytes, at least 16)" },
		{ "", 0600, "dialback secret file \"db.key\" is too short "
		    "(0 bytes, at least 16)" },
	};
	char *dir = make_dir(), path[PATH_MAX], conf[PATH_MAX];
	char want[2 * PATH_MAX];
	struct config *c;
	char *errors;

	write_file(dir, "main.conf", "dialback secret file \"db.key\"\n", 0644,
	    conf, sizeof(conf));
	for (size_t i = 0; i < nitems(cases); i++) {
		unlink(path);
		write_file(dir, "db.key", cases[i].content, cases[i].mode, path,
		    sizeof(path));
		errors = NULL;
		c = config_load(conf, &errors);
		if (cases[i].error == NULL) {
			if (c == NULL)
				fail_msg("case %zu: %s", i, errors);
			assert_string_equal(c->dialback_secret,
			    "0123456789abcdef");
			config_unref(c);
			continue;
		}
		assert_null(c);
		snprintf(want, sizeof(want), "%s:1: %s\n", conf,
		    cases[i].error);
		assert_string_equal(errors, want);
		free(errors);
	}
	rm_dir(dir);
}

/*
 * config_load_bundle(): a recording load keeps every file it read; a
 * replaying load reads only the bundle (the disk may have changed since)
 * and gives the same errors as the disk would.
 */
static void
test_bundle(void **state)
{
	char *dir = make_dir(), conf[PATH_MAX], inc[PATH_MAX], key[PATH_MAX];
	char want[3 * PATH_MAX];
	const char *path;
	const void *data;
	struct bundle *rec, *play;
	struct config *c;
	char *errors = NULL;
	uint32_t mode;
	size_t len;
	int error;

	write_file(dir, "db.key", "0123456789abcdef-recorded\n", 0600, key,
	    sizeof(key));
	write_file(dir, "peers.conf", "peer \"inc.example\" allow\n", 0644,
	    inc, sizeof(inc));
	write_file(dir, "main.conf", "include \"peers.conf\"\n"
	    "dialback secret file \"db.key\"\nuser \"recorded\"\n", 0644,
	    conf, sizeof(conf));
	assert_non_null(rec = bundle_new(true));
	c = config_load_bundle(conf, rec, &errors);
	if (c == NULL)
		fail_msg("%s", errors);
	config_unref(c);
	assert_int_equal(bundle_count(rec), 3);
	assert_int_equal(bundle_entry(rec, 0, &path, &error, &mode, &data,
	    &len), 0);
	assert_string_equal(path, conf);
	assert_int_equal(error, 0);
	assert_true(S_ISREG(mode));
	assert_int_equal(bundle_entry(rec, 1, &path, &error, &mode, &data,
	    &len), 0);
	assert_string_equal(path, inc);
	assert_int_equal(bundle_entry(rec, 3, &path, &error, &mode, &data,
	    &len), -1);

	/* replay: what was recorded, whatever the disk holds now */
	write_file(dir, "main.conf", "user \"on-disk\"\n", 0644, conf,
	    sizeof(conf));
	write_file(dir, "db.key", "0123456789abcdef-on-disk\n", 0600, key,
	    sizeof(key));
	assert_non_null(play = bundle_new(false));
	for (size_t i = 0; i < bundle_count(rec); i++) {
		bundle_entry(rec, i, &path, &error, &mode, &data, &len);
		assert_int_equal(bundle_add(play, path, error, mode, data, len),
		    0);
		/* each path once */
		assert_int_equal(bundle_add(play, path, error, mode, data, len),
		    -1);
	}
	c = config_load_bundle(conf, play, &errors);
	if (c == NULL)
		fail_msg("%s", errors);
	assert_string_equal(c->user, "recorded");
	assert_string_equal(c->dialback_secret, "0123456789abcdef-recorded");
	config_unref(c);
	bundle_free(play);
	bundle_free(rec);

	/* a path the bundle lacks reads as "Permission denied" */
	assert_non_null(play = bundle_new(false));
	assert_int_equal(bundle_add(play, conf, 0, S_IFREG | 0644,
	    "dialback secret file \"db.key\"\n", 30), 0);
	assert_null(config_load_bundle(conf, play, &errors));
	snprintf(want, sizeof(want), "%s:1: dialback secret file \"db.key\": "
	    "Permission denied\n", conf);
	assert_string_equal(errors, want);
	free(errors);
	errors = NULL;
	/* recorded failures give the disk's texts */
	assert_int_equal(bundle_add(play, key, 0, S_IFREG | 0644, "x", 1), 0);
	assert_null(config_load_bundle(conf, play, &errors));
	snprintf(want, sizeof(want), "%s:1: dialback secret file \"db.key\" "
	    "is accessible by group or others (mode 0644)\n", conf);
	assert_string_equal(errors, want);
	free(errors);
	errors = NULL;
	bundle_free(play);
	assert_non_null(play = bundle_new(false));
	assert_int_equal(bundle_add(play, conf, ENOENT, 0, NULL, 0), 0);
	assert_null(config_load_bundle(conf, play, &errors));
	snprintf(want, sizeof(want), "%s: No such file or directory\n", conf);
	assert_string_equal(errors, want);
	free(errors);
	bundle_free(play);
	/* malformed entries are refused */
	assert_non_null(play = bundle_new(false));
	assert_int_equal(bundle_add(play, "", 0, S_IFREG, "", 0), -1);
	assert_int_equal(bundle_add(play, "/a", 0, 0, "", 0), -1);
	assert_int_equal(bundle_add(play, "/a", EIO, S_IFREG, "x", 1), -1);
	assert_int_equal(bundle_add(play, "/a", 0, S_IFDIR, "x", 1), -1);
	assert_int_equal(bundle_add(play, "/a", 0, S_IFDIR, NULL, 0), 0);
	assert_int_equal(bundle_count(play), 1);
	bundle_free(play);
	bundle_free(NULL);
	rm_dir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keywords_sorted),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_bad_bytes),
		cmocka_unit_test(test_errors_append),
		cmocka_unit_test(test_unsupported),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_secret_file),
		cmocka_unit_test(test_bundle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
