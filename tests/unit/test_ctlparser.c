/*
 * Unit tests of fedgatectl's argv parser (src/fedgatectl/parser.c): argv
 * to action and wire line, the errors, and the help generated from the
 * same token table.
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

#define MAX_WORDS	12

/* Split s at spaces into argv (pointing into buf). Return argc. */
static int
split(const char *s, char *buf, size_t len, char **argv)
{
	int argc = 0;
	char *p, *word;

	snprintf(buf, len, "%s", s);
	for (p = buf; argc < MAX_WORDS && (word = strsep(&p, " ")) != NULL; )
		if (*word != '\0')
			argv[argc++] = word;
	return argc;
}

static const struct {
	const char		*args;
	enum parser_action	 action;
	const char		*line;		/* on the wire */
	const char		*domain;
	const char		*level;
	const char		*session;
} valid[] = {
	{ "status", PARSER_STATUS, "status", NULL, NULL, NULL },
	{ "stat", PARSER_STATUS, "status", NULL, NULL, NULL },
	{ "st", PARSER_STATUS, "status", NULL, NULL, NULL },
	{ "help", PARSER_HELP, "help", NULL, NULL, NULL },
	{ "reload", PARSER_RELOAD, "reload", NULL, NULL, NULL },
	{ "rel", PARSER_RELOAD, "reload", NULL, NULL, NULL },
	{ "retry Dead.Example", PARSER_RETRY, "retry Dead.Example",
	    "Dead.Example", NULL, NULL },
	{ "ret dead.example", PARSER_RETRY, "retry dead.example",
	    "dead.example", NULL, NULL },
	{ "routes", PARSER_ROUTES, "routes", NULL, NULL, NULL },
	{ "ro", PARSER_ROUTES, "routes", NULL, NULL, NULL },
	{ "sessions", PARSER_SESSIONS, "sessions", NULL, NULL, NULL },
	{ "flows", PARSER_FLOWS, "flows", NULL, NULL, NULL },
	{ "se", PARSER_SESSIONS, "sessions", NULL, NULL, NULL },
	{ "drain", PARSER_DRAIN, "drain", NULL, NULL, NULL },
	{ "metrics", PARSER_METRICS, "metrics", NULL, NULL, NULL },
	{ "m", PARSER_METRICS, "metrics", NULL, NULL, NULL },
	{ "d", PARSER_DRAIN, "drain", NULL, NULL, NULL },
	{ "kill 42", PARSER_KILL, "kill 42", NULL, NULL, "42" },
	{ "k 7", PARSER_KILL, "kill 7", NULL, NULL, "7" },
	{ "kill 9223372036854775807", PARSER_KILL,
	    "kill 9223372036854775807", NULL, NULL, "9223372036854775807" },
	{ "kill --domain remote.example", PARSER_KILL_DOMAIN,
	    "kill --domain remote.example", "remote.example", NULL, NULL },
	{ "check remote.example", PARSER_CHECK, "check remote.example",
	    "remote.example", NULL, NULL },
	{ "c remote.example fr corp.example", PARSER_CHECK,
	    "check remote.example from corp.example", "remote.example", NULL,
	    NULL },
	{ "kill --dom Remote.Example", PARSER_KILL_DOMAIN,
	    "kill --domain Remote.Example", "Remote.Example", NULL, NULL },
	{ "kill - remote.example", PARSER_KILL_DOMAIN,
	    "kill --domain remote.example", "remote.example", NULL, NULL },
	{ "policy list", PARSER_POLICY_LIST, "policy list", NULL, NULL, NULL },
	{ "p l", PARSER_POLICY_LIST, "policy list", NULL, NULL, NULL },
	{ "policy check example.org", PARSER_POLICY_CHECK,
	    "policy check example.org", "example.org", NULL, NULL },
	{ "pol ch Bücher.Example.", PARSER_POLICY_CHECK,
	    "policy check Bücher.Example.", "Bücher.Example.", NULL, NULL },
	{ "policy check 192.0.2.1", PARSER_POLICY_CHECK,
	    "policy check 192.0.2.1", "192.0.2.1", NULL, NULL },
	{ "policy deny spam.example", PARSER_POLICY_DENY,
	    "policy deny spam.example", "spam.example", NULL, NULL },
	{ "pol d *.spam.example", PARSER_POLICY_DENY,
	    "policy deny *.spam.example", "*.spam.example", NULL, NULL },
	{ "policy remove default", PARSER_POLICY_REMOVE,
	    "policy remove default", "default", NULL, NULL },
	{ "policy allow partner.example", PARSER_POLICY_ALLOW,
	    "policy allow partner.example", "partner.example", NULL, NULL },
	{ "pol a partner.example tls required verify none auth any",
	    PARSER_POLICY_ALLOW,
	    "policy allow partner.example tls required verify none auth any",
	    "partner.example", NULL, NULL },
	{ "policy allow x.example auth external", PARSER_POLICY_ALLOW,
	    "policy allow x.example auth external", "x.example", NULL, NULL },
	{ "log level", PARSER_LOG_LEVEL, "log level", NULL, NULL, NULL },
	{ "log lev", PARSER_LOG_LEVEL, "log level", NULL, NULL, NULL },
	{ "log level debug", PARSER_LOG_LEVEL_SET, "log level debug", NULL,
	    "debug", NULL },
	{ "log level TRACE", PARSER_LOG_LEVEL_SET, "log level trace", NULL,
	    "trace", NULL },
	{ "log level warning", PARSER_LOG_LEVEL_SET, "log level warning",
	    NULL, "warning", NULL },
	{ "log level info", PARSER_LOG_LEVEL_SET, "log level info", NULL,
	    "info", NULL },
};

#define BAD_ID	"(a leg ID, as sessions shows)"

static const struct {
	const char	*args;
	const char	*error;		/* the whole message */
} invalid[] = {
	{ "", "missing command" },
	{ "frobnicate", "unknown command \"frobnicate\"" },
	{ "statusx", "unknown command \"statusx\"" },
	/* Keywords that share a first letter: a prefix must tell them apart. */
	{ "r", "\"r\" is ambiguous: reload, retry or routes" },
	{ "re", "\"re\" is ambiguous: reload or retry" },
	{ "retry", "retry: missing DOMAIN" },
	{ "retry a.example b.example",
	    "retry a.example: unexpected \"b.example\"" },
	{ "s", "\"s\" is ambiguous: sessions or status" },
	{ "r now", "\"r\" is ambiguous: reload, retry or routes" },
	{ "sessions all", "sessions: unexpected \"all\"" },
	{ "routes x", "routes: unexpected \"x\"" },
	{ "drain now", "drain: unexpected \"now\"" },
	{ "kill", "kill: missing SESSION or --domain" },
	{ "kill remote.example", "kill: invalid session \"remote.example\" "
	    BAD_ID },
	{ "kill 0", "kill: invalid session \"0\" " BAD_ID },
	{ "kill 042", "kill: invalid session \"042\" " BAD_ID },
	{ "kill -3", "kill: invalid session \"-3\" " BAD_ID },
	{ "kill 12345678901234567890",
	    "kill: invalid session \"12345678901234567890\" " BAD_ID },
	{ "kill 4 5", "kill 4: unexpected \"5\"" },
	{ "kill --domain", "kill --domain: missing DOMAIN" },
	{ "check", "check: missing DOMAIN" },
	{ "check a.example from", "check a.example from: missing DOMAIN" },
	{ "check a.example to b.example",
	    "check a.example: unknown word \"to\", expected from" },
	{ "kill --domain a.example b.example",
	    "kill --domain a.example: unexpected \"b.example\"" },
	{ "status now", "status: unexpected \"now\"" },
	{ "reload now", "reload: unexpected \"now\"" },
	{ "help me", "help: unexpected \"me\"" },
	{ "policy", "policy: missing allow, check, deny, list or remove" },
	{ "policy frob", "policy: unknown word \"frob\", expected allow, "
	    "check, deny, list or remove" },
	{ "policy allow", "policy allow: missing PATTERN" },
	{ "policy deny a.example tls none",
	    "policy deny a.example: unexpected \"tls\"" },
	{ "policy remove", "policy remove: missing PATTERN" },
	{ "policy allow a.example tls",
	    "policy allow a.example: tls needs a mode" },
	{ "policy allow a.example tls sometimes",
	    "policy allow a.example: invalid tls mode \"sometimes\"" },
	{ "policy allow a.example auth none",
	    "policy allow a.example: invalid auth mode \"none\"" },
	{ "policy allow a.example tls none tls required",
	    "policy allow a.example: unknown or repeated setting \"tls\" "
	    "(tls, verify, auth, once each)" },
	{ "policy allow a.example route x",
	    "policy allow a.example: unknown or repeated setting \"route\" "
	    "(tls, verify, auth, once each)" },
	{ "policy check", "policy check: missing DOMAIN" },
	{ "policy check a.example b.example",
	    "policy check a.example: unexpected \"b.example\"" },
	{ "policy list all", "policy list: unexpected \"all\"" },
	{ "log", "log: missing level" },
	{ "log size", "log: unknown word \"size\", expected level" },
	{ "log level loud",
	    "log level: unknown log level \"loud\" (warning, info, debug, trace)" },
	{ "log level debug now", "log level debug: unexpected \"now\"" },
};

static void
test_valid(void **state)
{
	struct parse_result res;
	char buf[256], err[256], *argv[MAX_WORDS];
	int argc;

	for (size_t i = 0; i < sizeof(valid) / sizeof(*valid); i++) {
		argc = split(valid[i].args, buf, sizeof(buf), argv);
		err[0] = '\0';
		if (parser_parse(argc, argv, &res, err, sizeof(err)) != 0)
			fail_msg("\"%s\": %s", valid[i].args, err);
		assert_int_equal(res.action, valid[i].action);
		assert_string_equal(res.line, valid[i].line);
		if (valid[i].domain != NULL)
			assert_string_equal(res.domain, valid[i].domain);
		else
			assert_null(res.domain);
		if (valid[i].level != NULL)
			assert_string_equal(res.level, valid[i].level);
		else
			assert_null(res.level);
		if (valid[i].session != NULL)
			assert_string_equal(res.session, valid[i].session);
		else
			assert_null(res.session);
	}
}

static void
test_invalid(void **state)
{
	struct parse_result res;
	char buf[256], err[256], *argv[MAX_WORDS];
	int argc;

	for (size_t i = 0; i < sizeof(invalid) / sizeof(*invalid); i++) {
		argc = split(invalid[i].args, buf, sizeof(buf), argv);
		err[0] = '\0';
		if (parser_parse(argc, argv, &res, err, sizeof(err)) != -1)
			fail_msg("\"%s\" parsed as \"%s\"", invalid[i].args,
			    res.line);
		assert_string_equal(err, invalid[i].error);
	}
}

/* Arguments the parser checks itself: blanks, control bytes, length. */
static void
test_domain_argument(void **state)
{
	static const char *const bad[] = { "a b", "a\tb", "a\x01" "b", "",
	    "a\x7f" };
	struct parse_result res;
	char err[256], domain[1100], policy[] = "policy", check[] = "check";
	char *argv[3] = { policy, check, domain };

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(domain, sizeof(domain), "%s", bad[i]);
		assert_int_equal(parser_parse(3, argv, &res, err, sizeof(err)),
		    -1);
		assert_non_null(strstr(err, "policy check: invalid domain"));
	}
	/* 1023 bytes fit; 1024 do not. */
	memset(domain, 'a', 1023);
	domain[1023] = '\0';
	assert_int_equal(parser_parse(3, argv, &res, err, sizeof(err)), 0);
	assert_int_equal(strlen(res.line), strlen("policy check ") + 1023);
	assert_true(strlen(res.line) <= CONTROL_LINE_MAX);
	memset(domain, 'a', 1024);
	domain[1024] = '\0';
	assert_int_equal(parser_parse(3, argv, &res, err, sizeof(err)), -1);
	/* The message quotes at most 64 bytes of the word. */
	assert_true(strlen(err) < 128);
}

static char *
help_text(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	assert_non_null(f = open_memstream(&text, &len));
	parser_help(f);
	assert_int_equal(fclose(f), 0);
	return text;
}

/* Every command is in the help, each once, on its own line. */
static void
test_help_lists_commands(void **state)
{
	static const char *const commands[] = {
		"help", "status", "reload", "policy list", "policy check DOMAIN",
		"log level", "log level LEVEL", "sessions", "routes",
		"kill SESSION", "kill --domain DOMAIN", "drain", "flows",
		"check DOMAIN", "check DOMAIN from DOMAIN",
	};
	char *text = help_text(), *all, needle[64];

	assert_true(asprintf(&all, "\n%s", text) != -1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++) {
		char *hit;

		snprintf(needle, sizeof(needle), "\n  %s  ", commands[i]);
		if ((hit = strstr(all, needle)) == NULL)
			fail_msg("help lacks \"%s\":\n%s", commands[i], text);
		if (strstr(hit + 1, needle) != NULL)
			fail_msg("help has \"%s\" twice:\n%s", commands[i],
			    text);
	}
	free(all);
	free(text);
}

/*
 * The help and the parser agree: each help line, its placeholders filled
 * in, parses back to its own words; and the descriptions are aligned.
 */
/* Replace the first from in s (size bytes) with to. */
static void
replace(char *s, size_t size, const char *from, const char *to)
{
	char rest[256], *at;

	if ((at = strstr(s, from)) == NULL)
		return;
	snprintf(rest, sizeof(rest), "%s", at + strlen(from));
	snprintf(at, size - (size_t)(at - s), "%s%s", to, rest);
}

static void
test_help_parses_back(void **state)
{
	char *text = help_text(), *line, *save = NULL, err[256], buf[256];
	char *argv[MAX_WORDS], words[128], expect[128];
	struct parse_result res;
	long column = -1;
	int n = 0;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), n++) {
		char *desc;
		int argc;

		assert_memory_equal(line, "  ", 2);
		assert_non_null(desc = strstr(line + 2, "  "));
		while (*desc == ' ')
			desc++;
		if (column == -1)
			column = desc - line;
		assert_int_equal(desc - line, column);
		assert_true(*desc != '\0');

		snprintf(words, sizeof(words), "%.*s",
		    (int)(strstr(line + 2, "  ") - (line + 2)), line + 2);
		snprintf(expect, sizeof(expect), "%s", words);
		replace(expect, sizeof(expect), "[tls MODE] [verify MODE] "
		    "[auth MODE]", "tls required verify none auth any");
		replace(expect, sizeof(expect), "PATTERN", "*.x.test");
		if ((desc = strstr(expect, "DOMAIN")) != NULL)
			memcpy(desc, "x.test", 7);
		if ((desc = strstr(expect, "LEVEL")) != NULL)
			memcpy(desc, "debug", 6);
		if ((desc = strstr(expect, "SESSION")) != NULL)
			memcpy(desc, "42", 3);
		argc = split(expect, buf, sizeof(buf), argv);
		if (parser_parse(argc, argv, &res, err, sizeof(err)) != 0)
			fail_msg("help line \"%s\" does not parse: %s", words,
			    err);
		assert_string_equal(res.line, expect);
	}
	assert_int_equal(n, 21);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_domain_argument),
		cmocka_unit_test(test_help_lists_commands),
		cmocka_unit_test(test_help_parses_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
