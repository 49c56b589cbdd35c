/*
 * parser: fedgatectl's command words, as a table of tokens.
 *
 * Each table lists what may come next: keywords, arguments (a domain, a
 * log level, a session id), and TOK_ENDTOKEN where the command may end. A
 * token leads to its next table and may set the action. Help is generated
 * by walking the same tables: every path that reaches TOK_ENDTOKEN is one
 * command line.
 * Adding a command is adding its tokens (and a renderer in render.c).
 */
#include "fgconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "parser.h"

#ifndef nitems
#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#endif

enum token_type {
	TOK_NOTOKEN,		/* ends a table */
	TOK_ENDTOKEN,		/* the command may end here */
	TOK_KEYWORD,
	TOK_DOMAIN,		/* a domain name argument */
	TOK_LEVEL,		/* a log level argument */
	TOK_SESSION,		/* a leg's id, as sessions shows it */
	TOK_SETTINGS		/* the rest: pairs "tls MODE", "verify MODE"... */
};

struct token {
	enum token_type		 type;
	const char		*keyword;	/* the word; for an argument, its placeholder */
	enum parser_action	 action;	/* set when matched; PARSER_NONE keeps */
	const struct token	*next;		/* what may follow */
	const char		*help;		/* what the command so far does */
};

/* Leaves first: a table may only name tables above it. */
static const struct token t_end[] = {
	{ TOK_ENDTOKEN, "", PARSER_NONE, NULL, NULL },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

static const struct token t_domain[] = {
	{ TOK_DOMAIN, "DOMAIN", PARSER_NONE, t_end, NULL },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

static const struct token t_settings[] = {
	{ TOK_ENDTOKEN, "", PARSER_NONE, NULL, NULL },
	{ TOK_SETTINGS, "[tls MODE] [verify MODE] [auth MODE]", PARSER_NONE,
	    t_end, NULL },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

/* A rule's pattern: a domain, "*.domain" or "default". */
static const struct token t_pattern_settings[] = {
	{ TOK_DOMAIN, "PATTERN", PARSER_NONE, t_settings, NULL },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

static const struct token t_pattern[] = {
	{ TOK_DOMAIN, "PATTERN", PARSER_NONE, t_end, NULL },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

static const struct token t_policy[] = {
	{ TOK_KEYWORD, "allow", PARSER_POLICY_ALLOW, t_pattern_settings,
	    "allow PATTERN now and after restarts, with these settings" },
	{ TOK_KEYWORD, "check", PARSER_POLICY_CHECK, t_domain,
	    "show the rule matching DOMAIN and its effective settings" },
	{ TOK_KEYWORD, "deny", PARSER_POLICY_DENY, t_pattern,
	    "deny PATTERN now and after restarts; close its legs" },
	{ TOK_KEYWORD, "list", PARSER_POLICY_LIST, t_end,
	    "list the policy rules" },
	{ TOK_KEYWORD, "remove", PARSER_POLICY_REMOVE, t_pattern,
	    "remove PATTERN's runtime rule" },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

static const struct token t_log_level[] = {
	{ TOK_ENDTOKEN, "", PARSER_NONE, NULL, NULL },
	{ TOK_LEVEL, "LEVEL", PARSER_LOG_LEVEL_SET, t_end,
	    "set the log level: warning, info, debug or trace" },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

static const struct token t_log[] = {
	{ TOK_KEYWORD, "level", PARSER_LOG_LEVEL, t_log_level,
	    "show the log level" },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

/* kill takes a leg id, or the keyword --domain and a domain. */
static const struct token t_kill[] = {
	{ TOK_SESSION, "SESSION", PARSER_KILL, t_end,
	    "close the leg SESSION (its ID in sessions)" },
	{ TOK_KEYWORD, "--domain", PARSER_KILL_DOMAIN, t_domain,
	    "close every leg whose remote domain is DOMAIN" },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

/* check DOMAIN [from DOMAIN]: the from of our stream headers. */
static const struct token t_check_from[] = {
	{ TOK_ENDTOKEN, "", PARSER_NONE, NULL, NULL },
	{ TOK_KEYWORD, "from", PARSER_NONE, t_domain,
	    "the same, sending stream headers from DOMAIN" },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

static const struct token t_check[] = {
	{ TOK_DOMAIN, "DOMAIN", PARSER_CHECK, t_check_from, NULL },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

static const struct token t_main[] = {
	{ TOK_KEYWORD, "check", PARSER_NONE, t_check,
	    "run the federation checks of DOMAIN from this gateway" },
	{ TOK_KEYWORD, "drain", PARSER_DRAIN, t_end,
	    "flush the queues, close every leg and stop fedgated" },
	{ TOK_KEYWORD, "flows", PARSER_FLOWS, t_end,
	    "list the legs with their conntrack entries" },
	{ TOK_KEYWORD, "help", PARSER_HELP, t_end, "show this list" },
	{ TOK_KEYWORD, "kill", PARSER_NONE, t_kill, NULL },
	{ TOK_KEYWORD, "log", PARSER_NONE, t_log, NULL },
	{ TOK_KEYWORD, "metrics", PARSER_METRICS, t_end,
	    "print the counters in the Prometheus text format" },
	{ TOK_KEYWORD, "policy", PARSER_NONE, t_policy, NULL },
	{ TOK_KEYWORD, "reload", PARSER_RELOAD, t_end,
	    "re-read the configuration file" },
	{ TOK_KEYWORD, "retry", PARSER_RETRY, t_domain,
	    "forget the failures of the routes to DOMAIN: try again now" },
	{ TOK_KEYWORD, "routes", PARSER_ROUTES, t_end,
	    "list the routes and their queues" },
	{ TOK_KEYWORD, "sessions", PARSER_SESSIONS, t_end,
	    "list the legs (S2S connections)" },
	{ TOK_KEYWORD, "status", PARSER_STATUS, t_end,
	    "show the daemon's state and counts" },
	{ TOK_NOTOKEN, NULL, PARSER_NONE, NULL, NULL }
};

/* The names fedgated knows (log.c); the daemon checks them again. */
static const char *const parser_levels[] = {
	"warning", "info", "debug", "trace"
};

#define PARSER_DOMAIN_MAX	1023	/* bytes, as in a JID's domain part */
#define PARSER_SESSION_MAX	19	/* digits of the largest id, 2^63 - 1 */
#define PARSER_HELP_MAX		64	/* lines of help */

/* The canonical name of a log level, or NULL. */
static const char *
parser_level(const char *word)
{
	for (size_t i = 0; i < sizeof(parser_levels) / sizeof(*parser_levels);
	    i++)
		if (strcasecmp(word, parser_levels[i]) == 0)
			return parser_levels[i];
	return NULL;
}

/*
 * A domain is checked fully (IDNA) by fedgated; here it only has to be one
 * word of printable bytes that fits a line.
 */
static bool
parser_domain_is_valid(const char *word)
{
	size_t len = strlen(word);

	if (len == 0 || len > PARSER_DOMAIN_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)word; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/* A leg id: decimal digits, no sign, not 0; fedgated checks the range. */
static bool
parser_session_is_valid(const char *word)
{
	size_t len = strlen(word);

	if (len == 0 || len > PARSER_SESSION_MAX || word[0] == '0')
		return false;
	return strspn(word, "0123456789") == len;
}

/* The setting names of policy allow, and the modes each takes. */
static const struct {
	const char	*name;
	const char	*modes[4];
} parser_settings[] = {
	{ "tls", { "none", "optional", "required", NULL } },
	{ "verify", { "none", "optional", "required", NULL } },
	{ "auth", { "dialback", "external", "any", NULL } },
};

/*
 * Check argv[0..argc-1] as "NAME MODE" pairs, each name once. Return 0,
 * or -1 with err set.
 */
static int
parser_settings_check(int argc, char *argv[], const char *prefix, char *err,
    size_t errlen)
{
	unsigned seen = 0;
	size_t i, k;

	for (int a = 0; a < argc; a += 2) {
		for (i = 0; i < nitems(parser_settings); i++)
			if (strcmp(argv[a], parser_settings[i].name) == 0)
				break;
		if (i == nitems(parser_settings) || (seen & (1u << i))) {
			snprintf(err, errlen, "%s: unknown or repeated setting "
			    "\"%.32s\" (tls, verify, auth, once each)", prefix,
			    argv[a]);
			return -1;
		}
		seen |= 1u << i;
		if (a + 1 == argc) {
			snprintf(err, errlen, "%s: %s needs a mode", prefix,
			    argv[a]);
			return -1;
		}
		for (k = 0; parser_settings[i].modes[k] != NULL; k++)
			if (strcmp(argv[a + 1], parser_settings[i].modes[k]) == 0)
				break;
		if (parser_settings[i].modes[k] == NULL) {
			snprintf(err, errlen, "%s: invalid %s mode \"%.32s\"",
			    prefix, argv[a], argv[a + 1]);
			return -1;
		}
	}
	return 0;
}

static bool
parser_can_end(const struct token *table)
{
	for (const struct token *t = table; t->type != TOK_NOTOKEN; t++)
		if (t->type == TOK_ENDTOKEN)
			return true;
	return false;
}

/*
 * What table accepts, for messages: "check or list", "DOMAIN". With a
 * prefix, only the keywords that start with it.
 */
static const char *
parser_expected(const struct token *table, const char *prefix, char *buf,
    size_t len)
{
	const struct token *t, *last = NULL;

	buf[0] = '\0';
	for (t = table; t->type != TOK_NOTOKEN; t++) {
		if (t->type == TOK_ENDTOKEN || (prefix != NULL &&
		    strncmp(prefix, t->keyword, strlen(prefix)) != 0))
			continue;
		if (last != NULL) {
			if (buf[0] != '\0')
				strlcat(buf, ", ", len);
			strlcat(buf, last->keyword, len);
		}
		last = t;
	}
	if (last != NULL) {
		if (buf[0] != '\0')
			strlcat(buf, " or ", len);
		strlcat(buf, last->keyword, len);
	}
	return buf;
}

/*
 * The token of table that word matches: a keyword exactly or as its only
 * prefix, else a valid argument. NULL with err set if none.
 */
static const struct token *
parser_match(const struct token *table, const char *word, const char *prefix,
    char *err, size_t errlen)
{
	const struct token *t, *found = NULL;
	char expected[256];
	size_t len = strlen(word), n = 0;

	for (t = table; t->type != TOK_NOTOKEN; t++)
		if (t->type == TOK_KEYWORD && strcmp(word, t->keyword) == 0)
			return t;
	for (t = table; len > 0 && t->type != TOK_NOTOKEN; t++)
		if (t->type == TOK_KEYWORD &&
		    strncmp(word, t->keyword, len) == 0) {
			found = t;
			n++;
		}
	if (n == 1)
		return found;
	if (n > 1) {
		snprintf(err, errlen, "%s%s\"%.64s\" is ambiguous: %s", prefix,
		    prefix[0] != '\0' ? ": " : "", word,
		    parser_expected(table, word, expected, sizeof(expected)));
		return NULL;
	}
	for (t = table; t->type != TOK_NOTOKEN; t++) {
		if (t->type == TOK_DOMAIN) {
			if (parser_domain_is_valid(word))
				return t;
			snprintf(err, errlen, "%s: invalid domain \"%.64s\"",
			    prefix, word);
			return NULL;
		}
		if (t->type == TOK_SESSION) {
			if (parser_session_is_valid(word))
				return t;
			snprintf(err, errlen, "%s: invalid session \"%.64s\" "
			    "(a leg ID, as sessions shows)", prefix, word);
			return NULL;
		}
		if (t->type == TOK_SETTINGS)
			return t;	/* parser_parse() checks them all */
		if (t->type == TOK_LEVEL) {
			if (parser_level(word) != NULL)
				return t;
			snprintf(err, errlen, "%s: unknown log level \"%.64s\" "
			    "(warning, info, debug, trace)", prefix, word);
			return NULL;
		}
	}
	if (prefix[0] == '\0')
		snprintf(err, errlen, "unknown command \"%.64s\"", word);
	else if (parser_expected(table, NULL, expected,
	    sizeof(expected))[0] == '\0')
		snprintf(err, errlen, "%s: unexpected \"%.64s\"", prefix, word);
	else
		snprintf(err, errlen, "%s: unknown word \"%.64s\", expected %s",
		    prefix, word, expected);
	return NULL;
}

/* Append word to the wire line. Return 0, or -1 if it does not fit. */
static int
parser_append(struct parse_result *res, const char *word)
{
	size_t used = strlen(res->line);
	int n;

	n = snprintf(res->line + used, sizeof(res->line) - used, "%s%s",
	    used > 0 ? " " : "", word);
	if (n < 0 || (size_t)n >= sizeof(res->line) - used) {
		res->line[used] = '\0';
		return -1;
	}
	return 0;
}

int
parser_parse(int argc, char *argv[], struct parse_result *res, char *err,
    size_t errlen)
{
	const struct token *table = t_main, *t;
	char expected[256];

	memset(res, 0, sizeof(*res));
	if (argc <= 0) {
		snprintf(err, errlen, "missing command");
		return -1;
	}
	for (int i = 0; i < argc; i++) {
		/* res->line is the command so far, for messages. */
		if ((t = parser_match(table, argv[i], res->line, err,
		    errlen)) == NULL)
			return -1;
		if (t->type == TOK_SETTINGS) {
			if (parser_settings_check(argc - i, argv + i, res->line,
			    err, errlen) == -1)
				return -1;
			for (; i < argc; i++)
				if (parser_append(res, argv[i]) == -1) {
					snprintf(err, errlen, "command too long");
					return -1;
				}
			table = t->next;
			break;
		}
		if (t->type == TOK_LEVEL)
			res->level = parser_level(argv[i]);
		else if (t->type == TOK_DOMAIN && res->domain == NULL)
			res->domain = argv[i];	/* check's from is not it */
		else if (t->type == TOK_SESSION)
			res->session = argv[i];
		if (parser_append(res, t->type == TOK_KEYWORD ? t->keyword :
		    t->type == TOK_LEVEL ? res->level : argv[i]) == -1) {
			snprintf(err, errlen, "command too long");
			return -1;
		}
		if (t->action != PARSER_NONE)
			res->action = t->action;
		table = t->next;
	}
	if (!parser_can_end(table)) {
		snprintf(err, errlen, "%s: missing %s", res->line,
		    parser_expected(table, NULL, expected, sizeof(expected)));
		return -1;
	}
	return 0;
}

struct parser_help_line {
	char		 words[128];
	const char	*help;
};

/* Collect a line for every path through table that can end. */
static void
parser_walk(const struct token *table, char *path, size_t pathlen,
    const char *help, struct parser_help_line *lines, size_t *n)
{
	for (const struct token *t = table; t->type != TOK_NOTOKEN; t++) {
		size_t len = strlen(path);

		if (t->type == TOK_ENDTOKEN) {
			if (*n < PARSER_HELP_MAX) {
				strlcpy(lines[*n].words, path,
				    sizeof(lines[*n].words));
				lines[*n].help = help != NULL ? help : "";
				(*n)++;
			}
			continue;
		}
		snprintf(path + len, pathlen - len, "%s%s", len > 0 ? " " : "",
		    t->keyword);
		parser_walk(t->next, path, pathlen,
		    t->help != NULL ? t->help : help, lines, n);
		path[len] = '\0';
	}
}

void
parser_help(FILE *out)
{
	struct parser_help_line lines[PARSER_HELP_MAX];
	char path[128] = "";
	size_t n = 0, width = 0;

	parser_walk(t_main, path, sizeof(path), NULL, lines, &n);
	for (size_t i = 0; i < n; i++)
		if (strlen(lines[i].words) > width)
			width = strlen(lines[i].words);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-*s  %s\n", (int)width, lines[i].words,
		    lines[i].help);
}
