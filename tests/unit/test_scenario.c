/*
 * Scenario replay tests: the real leg and route modules (and everything
 * under them: xmlstream, xmpp, dialback, policy, the configuration
 * parser...) driven through their seams by scripts in tests/scenario/,
 * with link-time fakes of the modules they reach the world through:
 * conn (fake_conn.c), timer and the clock (fake_timer.c), resolve
 * (fake_resolve.c) and tls (fake_tls.c). No socket, no thread, no real
 * time: a scenario runs in about a millisecond. The idea is Unbound's
 * testbound (a fake event layer swapped in at link time and scripts of
 * queries, answers and time passing); doc/internals/scenarios.md tells
 * how to write one and what the fakes do.
 *
 * Two cmocka tests per *.scn file in $top_srcdir/tests/scenario (or the
 * files named on the command line): `in` bytes delivered as written, in
 * one read, and one byte a read (the loop running between them), as
 * tests/unit/test_xmlstream.c feeds its cases. Set SCENARIO_VERBOSE=1
 * to see the daemon's log of each scenario.
 *
 * The language, one command a line ("#" starts a comment line; TEXT is
 * the rest of the line, with \n \r \t \s (space) \\ \{ escapes, and {var}
 * as below):
 *
 *   config <<END ... END          fedgated.conf text (the real parser);
 *                                 again later: a reload (legs the new
 *                                 policy denies are closed)
 *   dns srv DOMAIN ANSWER         SRV of DOMAIN: "host:port[:tls] ..."
 *   dns addr HOST ANSWER          addresses of HOST: "192.0.2.1 ..."
 *                                 ANSWER may be a status instead:
 *                                 nxdomain nodata servfail timeout bogus,
 *                                 or hang (never answered); a question
 *                                 not in the table is never answered
 *   accept FACE C from ADDR:PORT [tls] [refused]
 *                                 a connection to a FACE listener (tls:
 *                                 direct TLS) becomes conn C; refused:
 *                                 the legs must refuse it
 *   connect C ADDR:PORT [tls]     the legs opened a connection to
 *                                 ADDR:PORT (the oldest not yet named):
 *                                 it becomes conn C
 *   connected C                   its TCP connect succeeded
 *   fail C [TEXT]                 a socket error (connect refused...)
 *   eof C                         the peer closed
 *   in C TEXT                     the peer sent TEXT
 *   out C TEXT                    the leg wrote TEXT next (exactly)
 *   discard C                     forget what the leg wrote on C
 *   tls C valid NAME...           the TLS handshake waiting on C ends,
 *   tls C invalid | none | fail   the peer's certificate valid for the
 *                                 NAMEs, invalid, absent; or it fails
 *   closed C | open C             the leg closed C / has not
 *   reading C on|off              the leg reads C / paused it
 *   congest C on|off              C's output is congested / drains
 *   stall C on|off                C's peer stops / starts reading
 *   rate C N                      the leg capped C's read rate at N
 *   time +DURATION                the clock moves (30s, 500ms, 10m);
 *                                 the timers due fire in order
 *   log TEXT                      a log line since the last match holds
 *                                 TEXT
 *   legs N                        N legs exist
 *   shutdown                      as on SIGTERM once drained: routes
 *                                 bounce what they hold, every leg
 *                                 closes with system-shutdown (the end
 *                                 of every scenario does it too)
 *   key VAR SECRET RECV ORIG ID   VAR := the XEP-0185 key
 *   set VAR TEXT                  VAR := TEXT (to shorten lines)
 *
 * Patterns: in `out`, {var} captures the shortest run of bytes up to the
 * text that follows it in the pattern (a var already captured must match
 * its value), {*} skips such a run; in `in`, `log` and `key`, {var} is
 * replaced by its value. A var made with `set` is a piece of text or
 * pattern, expanded where it is used (its own {*} and captures then
 * work as if written there). At the end every conn's output must have been
 * matched and every outgoing connection named.
 */
#include "fgconfig.h"

#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "dialback.h"
#include "fake.h"
#include "leg.h"
#include "log.h"
#include "route.h"
#include "util.h"

#ifndef SCENARIO_DIR
#define SCENARIO_DIR	"tests/scenario"
#endif

/* The clock's start: far from 0, as a monotonic clock is. */
#define SCN_EPOCH	1000000000ULL
#define SCN_VARS	32
#define SCN_TEXT	16384

struct scn {
	const char	*path;
	char		 name[300];	/* the test's */
	bool		 bytewise;	/* `in` one byte at a time */
	char		*buf;		/* the file */
	char		*pos;		/* the next line */
	int		 line;
	char		 cmd[SCN_TEXT];	/* the current line, for messages */
	struct config	*config;
	struct tls	*tls;
	struct leg_env	*env;
	struct {
		char	 name[32];
		char	 value[512];
		bool	 macro;		/* from `set`: a piece of pattern */
	}		 vars[SCN_VARS];
	int		 nvars;
	int		 saved_stderr;	/* while the log goes to logfd */
	int		 logfd;
	off_t		 log_off;	/* where `log` looks from */
};

static struct scn *cur;

/*
 * Failing: the daemon's log goes to a file while a scenario runs; put
 * stderr back, show the log's end, then fail the test.
 */

static void
scn_restore_stderr(struct scn *s)
{
	if (s->saved_stderr == -1)
		return;
	fflush(stderr);
	dup2(s->saved_stderr, STDERR_FILENO);
	close(s->saved_stderr);
	s->saved_stderr = -1;
}

/* Print the log from offset from (the last 4000 bytes at most). */
static void
scn_print_log(struct scn *s, off_t from)
{
	char buf[4096];
	off_t end = lseek(s->logfd, 0, SEEK_END);
	ssize_t n;

	if (end - from > (off_t)sizeof(buf) - 1)
		from = end - (off_t)sizeof(buf) + 1;
	n = pread(s->logfd, buf, sizeof(buf) - 1, from);
	if (n > 0) {
		buf[n] = '\0';
		fprintf(stderr, "--- the log%s ---\n%s--- end ---\n",
		    from > 0 ? " (end)" : "", buf);
	}
}

static void __attribute__((format(printf, 2, 3), noreturn))
scn_fail(struct scn *s, const char *fmt, ...)
{
	char msg[SCN_TEXT + 512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	scn_restore_stderr(s);
	scn_print_log(s, 0);
	fail_msg("%s:%d: %s\n  in: %s", s->path, s->line, msg, s->cmd);
	abort();	/* not reached */
}

/*
 * Variables and text.
 */

static const char *
scn_var(struct scn *s, const char *name)
{
	for (int i = 0; i < s->nvars; i++)
		if (strcmp(s->vars[i].name, name) == 0)
			return s->vars[i].value;
	return NULL;
}

static void
scn_set_var(struct scn *s, const char *name, const char *value, size_t len,
    bool macro)
{
	int i;

	for (i = 0; i < s->nvars; i++)
		if (strcmp(s->vars[i].name, name) == 0)
			break;
	if (i == SCN_VARS)
		scn_fail(s, "too many variables");
	if (strlen(name) >= sizeof(s->vars[i].name) ||
	    len >= sizeof(s->vars[i].value))
		scn_fail(s, "variable %s: name or value too long", name);
	snprintf(s->vars[i].name, sizeof(s->vars[i].name), "%s", name);
	memcpy(s->vars[i].value, value, len);
	s->vars[i].value[len] = '\0';
	s->vars[i].macro = macro;
	if (i == s->nvars)
		s->nvars++;
}

/* How scn_text() treats {var}. */
enum scn_subst {
	SCN_SUBST_ALL,		/* every {var} replaced; unset: an error */
	SCN_SUBST_KNOWN,	/* those set replaced, the others kept */
	SCN_SUBST_MACROS	/* only those set with `set` (patterns) */
};

static void
scn_put(struct scn *s, char *out, size_t *n, size_t size, char c)
{
	if (*n + 1 >= size)
		scn_fail(s, "text too long");
	out[(*n)++] = c;
}

/* Expand the {var}s of cooked text (escapes done) into out at *n. */
static void
scn_expand(struct scn *s, const char *text, char *out, size_t *n,
    size_t size, enum scn_subst mode, int depth)
{
	for (const char *p = text; *p != '\0'; p++) {
		const char *end, *v;
		char name[32];
		int i;

		if (*p != '{') {
			scn_put(s, out, n, size, *p);
			continue;
		}
		if ((end = strchr(p, '}')) == NULL ||
		    (size_t)(end - p - 1) >= sizeof(name))
			scn_fail(s, "bad {variable}");
		memcpy(name, p + 1, (size_t)(end - p - 1));
		name[end - p - 1] = '\0';
		for (i = 0; i < s->nvars; i++)
			if (strcmp(s->vars[i].name, name) == 0)
				break;
		v = i < s->nvars ? s->vars[i].value : NULL;
		if (v == NULL && mode == SCN_SUBST_ALL)
			scn_fail(s, "{%s} is not set", name);
		if (v == NULL || (mode == SCN_SUBST_MACROS && !s->vars[i].macro)) {
			for (; p <= end; p++)
				scn_put(s, out, n, size, *p);
			p--;
			continue;
		}
		if (s->vars[i].macro) {
			if (depth > 8)
				scn_fail(s, "{%s}: too deep", name);
			scn_expand(s, v, out, n, size, mode, depth + 1);
		} else
			for (; *v != '\0'; v++)
				scn_put(s, out, n, size, *v);
		p = end;
	}
}

/*
 * Unescape text into out and expand its {var}s as mode says. An escaped
 * brace is \001 (a literal brace for the matcher) but with
 * SCN_SUBST_ALL, where it is a brace. Return the length.
 */
static size_t
scn_text(struct scn *s, const char *text, char *out, size_t size,
    enum scn_subst mode)
{
	char cooked[SCN_TEXT];
	size_t n = 0;

	for (const char *p = text; *p != '\0'; p++) {
		char c = *p;

		if (c == '\\' && p[1] != '\0') {
			switch (*++p) {
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 's': c = ' '; break;
			case '{': c = '\001'; break;
			default: c = *p; break;
			}
		}
		scn_put(s, cooked, &n, sizeof(cooked), c);
	}
	cooked[n] = '\0';
	n = 0;
	scn_expand(s, cooked, out, &n, size, mode, 0);
	out[n] = '\0';
	if (mode == SCN_SUBST_ALL)
		for (size_t i = 0; i < n; i++)
			if (out[i] == '\001')
				out[i] = '{';
	return n;
}

/*
 * Match the pattern pat (scn_text(), SCN_SUBST_MACROS) at the start of the
 * output out; set captures. Return the bytes matched, or -1.
 */
static ssize_t
scn_match(struct scn *s, const char *pat, const char *out, size_t outlen)
{
	size_t o = 0;
	const char *p = pat;
	char lit[SCN_TEXT];

	while (*p != '\0') {
		if (*p == '{') {
			const char *end = strchr(p, '}'), *v, *next, *found;
			char name[32];
			size_t litlen = 0;

			if (end == NULL || (size_t)(end - p - 1) >= sizeof(name))
				scn_fail(s, "bad {variable} in pattern");
			memcpy(name, p + 1, (size_t)(end - p - 1));
			name[end - p - 1] = '\0';
			p = end + 1;
			if (strcmp(name, "*") != 0 &&
			    (v = scn_var(s, name)) != NULL) {
				if (outlen - o < strlen(v) ||
				    memcmp(out + o, v, strlen(v)) != 0)
					return -1;
				o += strlen(v);
				continue;
			}
			/* The literal text after it, up to the next {. */
			for (next = p; *next != '\0' && *next != '{'; next++)
				lit[litlen++] = *next == '\001' ? '{' : *next;
			lit[litlen] = '\0';
			if (litlen == 0) {
				if (*next != '\0')
					scn_fail(s, "two {} in a row");
				found = out + outlen;	/* the rest */
			} else if ((found = memmem(out + o, outlen - o, lit,
			    litlen)) == NULL)
				return -1;
			if (strcmp(name, "*") != 0)
				scn_set_var(s, name, out + o,
				    (size_t)(found - (out + o)), false);
			o = (size_t)(found - out);
			continue;
		}
		if (o >= outlen || out[o] != (*p == '\001' ? '{' : *p))
			return -1;
		o++;
		p++;
	}
	return (ssize_t)o;
}

/*
 * Reading the file.
 */

/* The next line into s->cmd (without its newline); false at the end. */
static bool
scn_next_line(struct scn *s)
{
	char *nl;
	size_t len;

	if (*s->pos == '\0')
		return false;
	nl = strchr(s->pos, '\n');
	len = nl != NULL ? (size_t)(nl - s->pos) : strlen(s->pos);
	if (len >= sizeof(s->cmd))
		scn_fail(s, "line too long");
	memcpy(s->cmd, s->pos, len);
	s->cmd[len] = '\0';
	s->pos += len + (nl != NULL);
	s->line++;
	return true;
}

/* Split off the next word of *rest (spaces apart); NULL if none. */
static char *
scn_word(char **rest)
{
	char *w = *rest, *end;

	while (*w == ' ' || *w == '\t')
		w++;
	if (*w == '\0')
		return NULL;
	for (end = w; *end != '\0' && *end != ' ' && *end != '\t'; end++)
		;
	if (*end != '\0')
		*end++ = '\0';
	*rest = end;
	return w;
}

static char *
scn_need_word(struct scn *s, char **rest, const char *what)
{
	char *w = scn_word(rest);

	if (w == NULL)
		scn_fail(s, "%s expected", what);
	return w;
}

/* The text argument: the rest of the line after one space. */
static const char *
scn_rest(char *rest)
{
	return *rest == ' ' ? rest + 1 : rest;
}

static struct conn *
scn_conn(struct scn *s, const char *name)
{
	struct conn *c = fake_conn_find(name);

	if (c == NULL)
		scn_fail(s, "no connection %s", name);
	return c;
}

static bool
scn_on_off(struct scn *s, char **rest)
{
	const char *w = scn_need_word(s, rest, "on or off");

	if (strcmp(w, "on") == 0)
		return true;
	if (strcmp(w, "off") != 0)
		scn_fail(s, "on or off expected");
	return false;
}

/* ADDR:PORT, [v6]:PORT too. */
static void
scn_addr(struct scn *s, const char *text, struct sockaddr_storage *ss,
    socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(text, ':');
	size_t hl;

	if (colon == NULL || (hl = (size_t)(colon - text)) >= sizeof(host))
		scn_fail(s, "ADDR:PORT expected: %s", text);
	memcpy(host, text, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	if (util_sockaddr_parse(host, (uint16_t)strtoul(colon + 1, NULL, 10),
	    ss, len) == -1)
		scn_fail(s, "bad address %s", text);
}

/*
 * The loop: what the real one would run by itself at this moment (reads
 * owed, DNS answers, closes, timers due now), until nothing is left.
 */
static void
scn_run_loop(void)
{
	unsigned guard = 0;

	while (fake_conn_run_one() || fake_resolve_run_one() ||
	    fake_timer_run_one(fake_timer_now()))
		if (++guard > 100000)
			scn_fail(cur, "the loop does not settle");
}

/*
 * Commands.
 */

static void
scn_config(struct scn *s, char *rest)
{
	char *text = NULL, *errors = NULL;
	const char *end = scn_need_word(s, &rest, "<<WORD");
	size_t len = 0;
	struct config *c;

	if (strncmp(end, "<<", 2) != 0 || end[2] == '\0')
		scn_fail(s, "config <<WORD expected");
	end += 2;
	while (scn_next_line(s) && strcmp(s->cmd, end) != 0) {
		size_t l = strlen(s->cmd);

		if ((text = realloc(text, len + l + 2)) == NULL)
			scn_fail(s, "out of memory");
		memcpy(text + len, s->cmd, l);
		text[len + l] = '\n';
		len += l + 1;
		text[len] = '\0';
	}
	if (strcmp(s->cmd, end) != 0)
		scn_fail(s, "no %s line", end);
	c = config_load_buffer(s->path, text != NULL ? text : "", len, false,
	    &errors);
	free(text);
	if (c == NULL) {
		char e[1024];

		snprintf(e, sizeof(e), "%s", errors != NULL ? errors : "?");
		free(errors);
		scn_fail(s, "config: %s", e);
	}
	free(errors);
	fake_tls_free(s->tls);
	if ((s->tls = fake_tls_new(c)) == NULL)
		scn_fail(s, "out of memory");
	leg_env_set(s->env, c, s->tls);
	config_unref(s->config);
	s->config = c;
	(void)leg_close_denied(s->env, "denied by the reloaded policy");
}

static void
scn_dns(struct scn *s, char *rest)
{
	const char *kind = scn_need_word(s, &rest, "srv or addr");
	const char *name = scn_need_word(s, &rest, "a name");
	const char *answer = scn_rest(rest);
	int rc;

	if (*answer == '\0')
		scn_fail(s, "an answer expected");
	if (strcmp(kind, "srv") == 0) {
		/* Check the syntax here: the fake trusts it. */
		if (strchr(answer, ':') == NULL &&
		    strspn(answer, "abcdefghijklmnopqrstuvwxyz") !=
		    strlen(answer))
			scn_fail(s, "host:port... or a status expected");
		rc = fake_resolve_srv(name, answer);
	} else if (strcmp(kind, "addr") == 0)
		rc = fake_resolve_addr(name, answer);
	else
		scn_fail(s, "dns srv or dns addr");
	if (rc == -1)
		scn_fail(s, "too many DNS answers");
}

static void
scn_accept(struct scn *s, char *rest)
{
	const char *face = scn_need_word(s, &rest, "public or internal");
	const char *name = scn_need_word(s, &rest, "a connection name");
	const char *w;
	struct sockaddr_storage peer, local;
	socklen_t peerlen, locallen = 0;
	struct listener_peer lp = { 0 };
	struct conn *before = fake_conn_last_accepted(), *c;
	bool tls = false, refused = false;
	enum config_face f;
	int fd;

	if (strcmp(face, "public") == 0)
		f = CONFIG_FACE_PUBLIC;
	else if (strcmp(face, "internal") == 0)
		f = CONFIG_FACE_INTERNAL;
	else
		scn_fail(s, "public or internal expected");
	if (fake_conn_find(name) != NULL)
		scn_fail(s, "connection %s exists", name);
	if (strcmp(scn_need_word(s, &rest, "from"), "from") != 0)
		scn_fail(s, "from expected");
	scn_addr(s, scn_need_word(s, &rest, "ADDR:PORT"), &peer, &peerlen);
	while ((w = scn_word(&rest)) != NULL) {
		if (strcmp(w, "tls") == 0)
			tls = true;
		else if (strcmp(w, "refused") == 0)
			refused = true;
		else if (strcmp(w, "to") == 0)
			scn_addr(s, scn_need_word(s, &rest, "ADDR:PORT"),
			    &local, &locallen);
		else
			scn_fail(s, "unknown word %s", w);
	}
	lp.addr = (const struct sockaddr *)&peer;
	lp.addrlen = peerlen;
	if (locallen > 0) {
		lp.local = (const struct sockaddr *)&local;
		lp.locallen = locallen;
	}
	/* A descriptor for leg_accept() to own: the fake conn closes it. */
	if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		scn_fail(s, "/dev/null: %s", strerror(errno));
	leg_accept(s->env, f, tls, fd, &lp, NULL);
	c = fake_conn_last_accepted();
	if (refused) {
		if (c != before)
			scn_fail(s, "the connection was not refused");
		return;
	}
	if (c == before)
		scn_fail(s, "the connection was refused");
	fake_conn_set_name(c, name);
}

static void
scn_connect(struct scn *s, char *rest)
{
	const char *name = scn_need_word(s, &rest, "a connection name");
	const char *addr = scn_need_word(s, &rest, "ADDR:PORT");
	const char *w = scn_word(&rest);
	struct sockaddr_storage want;
	socklen_t wantlen;
	struct conn *c = fake_conn_unclaimed();
	char got[UTIL_SOCKADDR_STRLEN], exp[UTIL_SOCKADDR_STRLEN];

	if (fake_conn_find(name) != NULL)
		scn_fail(s, "connection %s exists", name);
	scn_addr(s, addr, &want, &wantlen);
	if (c == NULL)
		scn_fail(s, "no outgoing connection was made (DNS asked:\n%s)",
		    fake_resolve_asked());
	util_sockaddr_str(fake_conn_target(c), got, sizeof(got));
	util_sockaddr_str((const struct sockaddr *)&want, exp, sizeof(exp));
	if (strcmp(got, exp) != 0)
		scn_fail(s, "the connection goes to %s", got);
	if (fake_conn_is_direct_tls(c) != (w != NULL && strcmp(w, "tls") == 0))
		scn_fail(s, "the connection is%s direct TLS",
		    fake_conn_is_direct_tls(c) ? "" : " not");
	fake_conn_set_name(c, name);
}

static void
scn_in(struct scn *s, char *rest)
{
	const char *name = scn_need_word(s, &rest, "a connection name");
	struct conn *c = scn_conn(s, name);
	static char text[SCN_TEXT];
	size_t len = scn_text(s, scn_rest(rest), text, sizeof(text), SCN_SUBST_ALL);

	if (!fake_conn_is_readable(c))
		scn_fail(s, "connection %s is closed", name);
	if (!s->bytewise) {
		fake_conn_input(c, text, len);
		return;
	}
	/* One byte a read, the loop running between them; bytes after the
	 * leg closed the connection are not read, as in one read. */
	for (size_t i = 0; i < len && fake_conn_is_readable(c); i++) {
		fake_conn_input(c, text + i, 1);
		scn_run_loop();
	}
}

/* A printable excerpt of what conn c holds. */
static const char *
scn_excerpt(const struct conn *c, char *buf, size_t size)
{
	size_t len, n = 0;
	const char *out = fake_conn_output(c, &len);

	for (size_t i = 0; i < len && n + 5 < size; i++) {
		unsigned char ch = (unsigned char)out[i];

		if (ch == '\n') {
			buf[n++] = '\\';
			buf[n++] = 'n';
		} else if (isprint(ch))
			buf[n++] = (char)ch;
		else
			n += (size_t)snprintf(buf + n, size - n, "\\x%02x", ch);
	}
	buf[n] = '\0';
	return len == 0 ? "(nothing)" : buf;
}

static void
scn_out(struct scn *s, char *rest)
{
	const char *name = scn_need_word(s, &rest, "a connection name");
	struct conn *c = scn_conn(s, name);
	static char pat[SCN_TEXT], got[SCN_TEXT];
	size_t len;
	const char *out = fake_conn_output(c, &len);
	ssize_t n;

	scn_text(s, scn_rest(rest), pat, sizeof(pat), SCN_SUBST_MACROS);
	if ((n = scn_match(s, pat, out, len)) == -1)
		scn_fail(s, "%s wrote otherwise:\n  %s", name,
		    scn_excerpt(c, got, sizeof(got)));
	fake_conn_consume(c, (size_t)n);
}

static void
scn_tls(struct scn *s, char *rest)
{
	const char *name = scn_need_word(s, &rest, "a connection name");
	struct conn *c = scn_conn(s, name);
	const char *how = scn_need_word(s, &rest, "valid, invalid, none, fail");

	if (!fake_conn_tls_pending(c))
		scn_fail(s, "no TLS handshake waits on %s", name);
	if (strcmp(how, "valid") == 0) {
		if (*scn_rest(rest) == '\0')
			scn_fail(s, "the names the certificate is valid for");
		fake_conn_tls_finish(c, FAKE_CERT_VALID, scn_rest(rest));
	} else if (strcmp(how, "invalid") == 0)
		fake_conn_tls_finish(c, FAKE_CERT_INVALID, NULL);
	else if (strcmp(how, "none") == 0)
		fake_conn_tls_finish(c, FAKE_CERT_NONE, NULL);
	else if (strcmp(how, "fail") == 0) {
		fake_conn_set_error(c, "TLS: handshake failure (scenario)");
		fake_conn_event(c, CONN_EV_ERROR);
	} else
		scn_fail(s, "valid, invalid, none or fail expected");
}

static void
scn_time(struct scn *s, char *rest)
{
	const char *w = scn_need_word(s, &rest, "+DURATION");
	uint64_t ms, until;

	if (w[0] != '+' || util_parse_duration(w + 1, &ms) == -1)
		scn_fail(s, "+DURATION expected (+30s, +500ms)");
	until = fake_timer_now() + ms;
	while (fake_timer_run_one(until))
		scn_run_loop();
	fake_timer_set(until);
}

static void
scn_log(struct scn *s, char *rest)
{
	static char want[SCN_TEXT], buf[65536];
	off_t end;
	ssize_t n;
	char *line, *next;

	scn_text(s, scn_rest(rest), want, sizeof(want), SCN_SUBST_ALL);
	fflush(stderr);
	end = lseek(s->logfd, 0, SEEK_END);
	if (end - s->log_off >= (off_t)sizeof(buf))
		scn_fail(s, "too much log to search");
	n = pread(s->logfd, buf, (size_t)(end - s->log_off), s->log_off);
	buf[n > 0 ? n : 0] = '\0';
	for (line = buf; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		next = next != NULL ? next + 1 : line + strlen(line);
		if (memmem(line, (size_t)(next - line), want,
		    strlen(want)) != NULL) {
			s->log_off += next - buf;
			return;
		}
	}
	scn_fail(s, "no such log line since the last match (%lld bytes "
	    "into the log)", (long long)s->log_off);
}

static void
scn_key(struct scn *s, char *rest)
{
	const char *var = scn_need_word(s, &rest, "a variable");
	char secret[256], recv[300], orig[300], id[300], key[DIALBACK_KEY_SIZE];

	scn_text(s, scn_need_word(s, &rest, "secret"), secret, sizeof(secret),
	    SCN_SUBST_ALL);
	scn_text(s, scn_need_word(s, &rest, "receiving"), recv, sizeof(recv),
	    SCN_SUBST_ALL);
	scn_text(s, scn_need_word(s, &rest, "originating"), orig, sizeof(orig),
	    SCN_SUBST_ALL);
	scn_text(s, scn_need_word(s, &rest, "stream id"), id, sizeof(id), SCN_SUBST_ALL);
	if (dialback_key(secret, strlen(secret), recv, orig, id, key,
	    sizeof(key)) == -1)
		scn_fail(s, "cannot mint the key");
	scn_set_var(s, var, key, strlen(key), false);
}

static void
scn_set(struct scn *s, char *rest)
{
	char text[SCN_TEXT];
	const char *var = scn_need_word(s, &rest, "a variable");
	size_t len = scn_text(s, scn_rest(rest), text, sizeof(text),
	    SCN_SUBST_KNOWN);

	scn_set_var(s, var, text, len, true);
}

static void
scn_legs(struct scn *s, char *rest)
{
	unsigned want = (unsigned)strtoul(scn_need_word(s, &rest, "a number"),
	    NULL, 10);

	if (leg_count(s->env) != want)
		scn_fail(s, "%u legs", leg_count(s->env));
}

/* The commands that name a connection first: it is c, named name. */

static void
scn_connected(struct scn *s, struct conn *c, const char *name, char *rest)
{
	fake_conn_event(c, CONN_EV_CONNECTED);
}

static void
scn_fail_conn(struct scn *s, struct conn *c, const char *name, char *rest)
{
	if (*scn_rest(rest) != '\0')
		fake_conn_set_error(c, scn_rest(rest));
	fake_conn_event(c, CONN_EV_ERROR);
}

static void
scn_eof(struct scn *s, struct conn *c, const char *name, char *rest)
{
	fake_conn_event(c, CONN_EV_EOF);
}

static void
scn_discard(struct scn *s, struct conn *c, const char *name, char *rest)
{
	size_t len;

	(void)fake_conn_output(c, &len);
	fake_conn_consume(c, len);
}

static void
scn_closed(struct scn *s, struct conn *c, const char *name, char *rest)
{
	if (!fake_conn_is_closed(c))
		scn_fail(s, "%s is open", name);
}

static void
scn_open(struct scn *s, struct conn *c, const char *name, char *rest)
{
	if (fake_conn_is_closed(c))
		scn_fail(s, "%s is closed", name);
}

static void
scn_reading(struct scn *s, struct conn *c, const char *name, char *rest)
{
	if (fake_conn_is_reading(c) != scn_on_off(s, &rest))
		scn_fail(s, "%s is %sreading", name,
		    fake_conn_is_reading(c) ? "" : "not ");
}

static void
scn_congest(struct scn *s, struct conn *c, const char *name, char *rest)
{
	fake_conn_set_congested(c, scn_on_off(s, &rest));
}

static void
scn_stall(struct scn *s, struct conn *c, const char *name, char *rest)
{
	fake_conn_set_stalled(c, scn_on_off(s, &rest));
}

static void
scn_rate(struct scn *s, struct conn *c, const char *name, char *rest)
{
	uint64_t want = strtoull(scn_need_word(s, &rest, "a rate"), NULL, 10);

	if (fake_conn_rate(c) != want)
		scn_fail(s, "the rate is %llu",
		    (unsigned long long)fake_conn_rate(c));
}

static void	scn_shutdown(struct scn *, char *);

/* The commands (the comment at the top of this file says what they do). */
static const struct {
	const char	*name;
	void		(*fn)(struct scn *, char *rest);
	void		(*conn_fn)(struct scn *, struct conn *,
			    const char *name, char *rest);
} scn_commands[] = {
	{ "accept", scn_accept, NULL },
	{ "closed", NULL, scn_closed },
	{ "congest", NULL, scn_congest },
	{ "connect", scn_connect, NULL },
	{ "connected", NULL, scn_connected },
	{ "discard", NULL, scn_discard },
	{ "dns", scn_dns, NULL },
	{ "eof", NULL, scn_eof },
	{ "fail", NULL, scn_fail_conn },
	{ "in", scn_in, NULL },
	{ "key", scn_key, NULL },
	{ "legs", scn_legs, NULL },
	{ "log", scn_log, NULL },
	{ "open", NULL, scn_open },
	{ "out", scn_out, NULL },
	{ "rate", NULL, scn_rate },
	{ "reading", NULL, scn_reading },
	{ "set", scn_set, NULL },
	{ "shutdown", scn_shutdown, NULL },
	{ "stall", NULL, scn_stall },
	{ "time", scn_time, NULL },
	{ "tls", scn_tls, NULL },
};

static void
scn_command(struct scn *s)
{
	char line[SCN_TEXT], *rest = line;
	const char *cmd, *name;
	size_t i;

	snprintf(line, sizeof(line), "%s", s->cmd);
	if ((cmd = scn_word(&rest)) == NULL || cmd[0] == '#')
		return;
	if (strcmp(cmd, "config") == 0) {
		scn_config(s, rest);
		return;
	}
	if (s->config == NULL)
		scn_fail(s, "config first");
	for (i = 0; i < nitems(scn_commands); i++)
		if (strcmp(cmd, scn_commands[i].name) == 0)
			break;
	if (i == nitems(scn_commands))
		scn_fail(s, "unknown command %s", cmd);
	if (scn_commands[i].fn != NULL)
		scn_commands[i].fn(s, rest);
	else {
		name = scn_need_word(s, &rest, "a connection name");
		scn_commands[i].conn_fn(s, scn_conn(s, name), name, rest);
	}
	scn_run_loop();
	log_peer_flush();	/* the burst limit is per second of real time */
}

/* As the daemon stops: bounce what routes hold, close every leg. */
static void
scn_shutdown(struct scn *s, char *rest)
{
	route_shutdown(leg_env_routes(s->env));
	leg_close_all(s->env, "system shutdown");
	scn_run_loop();
}

/* What no scenario may leave: bytes not matched, connections unnamed. */
static void
scn_check_end(struct scn *s)
{
	char got[SCN_TEXT];
	struct conn *c;
	size_t len;

	snprintf(s->cmd, sizeof(s->cmd), "(the end of the scenario)");
	if ((c = fake_conn_unclaimed()) != NULL) {
		util_sockaddr_str(fake_conn_target(c), got, sizeof(got));
		scn_fail(s, "a connection to %s was not expected", got);
	}
	for (size_t i = 0; (c = fake_conn_at(i)) != NULL; i++) {
		(void)fake_conn_output(c, &len);
		if (len > 0)
			scn_fail(s, "%s wrote more:\n  %s", fake_conn_name(c),
			    scn_excerpt(c, got, sizeof(got)));
	}
}

/* End every leg and free what the scenario made. */
static void
scn_teardown(struct scn *s)
{
	if (s->env != NULL) {
		scn_shutdown(s, NULL);
		fake_conn_end_lingering();
		scn_run_loop();
		if (leg_count(s->env) != 0)
			scn_fail(s, "%u legs left after closing them all",
			    leg_count(s->env));
		leg_env_free(s->env);
		s->env = NULL;
	}
	fake_conn_reset();
	fake_resolve_reset();
	fake_timer_reset(SCN_EPOCH);
	fake_tls_free(s->tls);
	s->tls = NULL;
	config_unref(s->config);
	s->config = NULL;
}

static char *
scn_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long len;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == -1 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1 ||
	    (buf = malloc((size_t)len + 1)) == NULL) {
		fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static void
test_scenario(void **state)
{
	struct scn *s = *state;
	char logpath[] = "/tmp/fedgate-scenario-XXXXXX";

	if ((s->buf = scn_read_file(s->path)) == NULL)
		fail_msg("%s: %s", s->path, strerror(errno));
	s->pos = s->buf;
	s->line = 0;
	s->nvars = 0;
	fake_timer_reset(SCN_EPOCH);
	if ((s->env = leg_env_new(NULL, NULL)) == NULL)
		fail_msg("out of memory");
	/* The daemon's log goes to a file `log` lines search. */
	if ((s->logfd = mkstemp(logpath)) == -1)
		fail_msg("mkstemp: %s", strerror(errno));
	unlink(logpath);
	fflush(stderr);
	s->saved_stderr = dup(STDERR_FILENO);
	dup2(s->logfd, STDERR_FILENO);
	s->log_off = 0;
	cur = s;
	while (scn_next_line(s))
		scn_command(s);
	scn_check_end(s);
	scn_teardown(s);
	scn_restore_stderr(s);
	if (getenv("SCENARIO_VERBOSE") != NULL)
		scn_print_log(s, 0);
	close(s->logfd);
	free(s->buf);
	s->buf = NULL;
}

/* A failed scenario leaves its legs: free what can be, for the next. */
static int
scn_cleanup(void **state)
{
	struct scn *s = *state;

	scn_restore_stderr(s);
	if (s->buf != NULL) {
		/* Failed mid-way: the legs may hold anything; let them go
		 * without the checks. */
		free(s->buf);
		s->buf = NULL;
		close(s->logfd);
		s->env = NULL;		/* leaked on purpose */
		fake_conn_reset();
		fake_resolve_reset();
		fake_timer_reset(SCN_EPOCH);
		s->tls = NULL;
		s->config = NULL;
	}
	return 0;
}

static int
scn_is_scenario(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return len > 4 && strcmp(d->d_name + len - 4, ".scn") == 0;
}

int
main(int argc, char **argv)
{
	struct CMUnitTest *tests;
	struct scn *scns;
	char **paths;
	struct dirent **names = NULL;
	const char *top = getenv("top_srcdir");
	char dir[4096];
	int n, rc;

	if (top != NULL)
		snprintf(dir, sizeof(dir), "%s/tests/scenario", top);
	else
		snprintf(dir, sizeof(dir), "%s", SCENARIO_DIR);
	if (argc > 1)
		n = argc - 1;
	else if ((n = scandir(dir, &names, scn_is_scenario, alphasort)) == -1) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return 1;
	}
	/* Each scenario twice: input as written, and byte by byte. */
	tests = calloc((size_t)n * 2, sizeof(*tests));
	scns = calloc((size_t)n * 2, sizeof(*scns));
	paths = calloc((size_t)n, sizeof(*paths));
	if (n == 0 || tests == NULL || scns == NULL || paths == NULL) {
		fprintf(stderr, "%s: no scenario\n", dir);
		return 1;
	}
	log_init(true, 0);
	log_set_level(LOG_LEVEL_DEBUG);
	for (int i = 0; i < n; i++) {
		char *path;

		if (argc > 1)
			path = strdup(argv[i + 1]);
		else if (asprintf(&path, "%s/%s", dir, names[i]->d_name) == -1)
			path = NULL;
		if (path == NULL)
			return 1;
		paths[i] = path;
		for (int j = 2 * i; j < 2 * i + 2; j++) {
			scns[j].path = path;
			scns[j].saved_stderr = -1;
			scns[j].bytewise = j % 2 == 1;
			snprintf(scns[j].name, sizeof(scns[j].name), "%s%s",
			    strrchr(path, '/') != NULL ?
			    strrchr(path, '/') + 1 : path,
			    scns[j].bytewise ? " byte by byte" : "");
			tests[j].name = scns[j].name;
			tests[j].test_func = test_scenario;
			tests[j].teardown_func = scn_cleanup;
			tests[j].initial_state = &scns[j];
		}
		if (names != NULL)
			free(names[i]);
	}
	free(names);
	rc = _cmocka_run_group_tests("scenarios", tests, (size_t)n * 2, NULL,
	    NULL);
	for (int i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(scns);
	free(tests);
	fake_tls_cleanup();
	return rc;
}
