/*
 * render: replies as text for people. "key: value" blocks and tables are
 * aligned on their widest cell; what a reply lacks is shown as "-".
 * One renderer per action, in render_actions[].
 */
#include "fgconfig.h"

#include <err.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json.h>

#include "render.h"
#include "util.h"

#define RENDER_CELL_MAX	512

/* A table of text cells, printed with columns padded to their widest. */
struct render_table {
	size_t		 ncols;
	size_t		 nrows;
	char		**cells;	/* nrows * ncols, each malloc'd */
};

static void
render_table_add(struct render_table *t, const char *const *row)
{
	char **n;

	n = reallocarray(t->cells, (t->nrows + 1) * t->ncols, sizeof(*n));
	if (n == NULL)
		err(1, "render");
	t->cells = n;
	for (size_t c = 0; c < t->ncols; c++)
		if ((n[t->nrows * t->ncols + c] = strdup(row[c])) == NULL)
			err(1, "render");
	t->nrows++;
}

/* Columns s takes on a terminal: its UTF-8 characters. */
static size_t
render_width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Print t (the last column unpadded) and empty it. */
static void
render_table_flush(struct render_table *t, FILE *out)
{
	size_t width[16] = { 0 };

	if (t->ncols > nitems(width))
		errx(1, "render: too many columns");
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++)
			if (render_width(t->cells[r * t->ncols + c]) > width[c])
				width[c] = render_width(
				    t->cells[r * t->ncols + c]);
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];

			fputs(cell, out);
			if (c + 1 == t->ncols)
				fputc('\n', out);
			else
				fprintf(out, "%*s", (int)(width[c] + 2 -
				    render_width(cell)), "");
		}
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

/* A "key: value" block is a two-column table whose keys end with ':'. */
static void
render_kv(struct render_table *t, const char *key, const char *value)
{
	char label[64];
	const char *row[2] = { label, value };

	snprintf(label, sizeof(label), "%s:", key);
	render_table_add(t, row);
}

static struct json_object *
render_get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* The value at key as text: strings as they are, other values as JSON. */
static const char *
render_text(struct json_object *o, const char *key, char *buf, size_t len)
{
	struct json_object *v = render_get(o, key);

	if (v == NULL || json_object_is_type(v, json_type_null))
		return "-";
	if (json_object_is_type(v, json_type_string))
		snprintf(buf, len, "%s", json_object_get_string(v));
	else if (json_object_is_type(v, json_type_boolean))
		snprintf(buf, len, "%s", json_object_get_boolean(v) ? "yes" : "no");
	else
		snprintf(buf, len, "%s", json_object_to_json_string_ext(v,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	return buf;
}

static uint64_t
render_u64(struct json_object *o, const char *key)
{
	int64_t v = json_object_get_int64(render_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

/* "3d 4h 5m 6s", leading zero units left out. */
static const char *
render_uptime(uint64_t s, char *buf, size_t len)
{
	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m %"
		    PRIu64 "s", s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
	else if (s >= 3600)
		snprintf(buf, len, "%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s",
		    s / 3600, s / 60 % 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "s", s);
	return buf;
}

static const char *
render_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
	return buf;
}

/* "file:line", or the origin alone when it has no line ("control"). */
static const char *
render_origin(struct json_object *rule, char *buf, size_t len)
{
	char origin[RENDER_CELL_MAX / 2];
	int64_t line = json_object_get_int64(render_get(rule, "line"));

	struct json_object *over = render_get(rule, "overrides");
	char under[RENDER_CELL_MAX / 2];

	render_text(rule, "origin", origin, sizeof(origin));
	if (strcmp(origin, "control") == 0)
		snprintf(origin, sizeof(origin), "runtime");
	if (line > 0)
		snprintf(buf, len, "%s:%" PRId64, origin, line);
	else
		snprintf(buf, len, "%s", origin);
	if (over != NULL) {
		render_text(over, "origin", under, sizeof(under));
		line = json_object_get_int64(render_get(over, "line"));
		snprintf(buf + strlen(buf), len - strlen(buf),
		    " (over %.100s:%" PRId64 ")", under, line);
	}
	return buf;
}

/*
 * One policy setting of settings as text: sizes with units, 0 limits as
 * "unlimited", a route as host:port. "-" if settings lacks it.
 */
static const char *
render_setting(struct json_object *settings, const char *key, char *buf,
    size_t len)
{
	struct json_object *v = NULL;
	char size[32], host[RENDER_CELL_MAX / 2];
	uint64_t n;

	/* Absent is "-"; present as null (json-c: NULL) is "none". */
	if (settings == NULL ||
	    !json_object_object_get_ex(settings, key, &v))
		return "-";
	if (strcmp(key, "route") == 0) {
		if (v == NULL)
			return "none";
		render_text(v, "host", host, sizeof(host));
		snprintf(buf, len, "%s:%" PRId64, host,
		    json_object_get_int64(render_get(v, "port")));
		return buf;
	}
	if (!json_object_is_type(v, json_type_int))
		return render_text(settings, key, buf, len);
	n = render_u64(settings, key);
	if (n == 0 && (strcmp(key, "connections") == 0 ||
	    strcmp(key, "rate") == 0 || strcmp(key, "burst") == 0))
		snprintf(buf, len, "unlimited");
	else if (strcmp(key, "connections") == 0)
		snprintf(buf, len, "%" PRIu64, n);
	else if (strcmp(key, "rate") == 0)
		snprintf(buf, len, "%s/s", util_size_str(n, size, sizeof(size)));
	else
		snprintf(buf, len, "%s", util_size_str(n, size, sizeof(size)));
	return buf;
}

/* The settings, in the order people read them; JSON key, then label. */
static const char *const render_settings[][2] = {
	{ "allow", "allow" }, { "tls", "tls" }, { "verify", "verify" },
	{ "auth", "auth" }, { "resolve", "resolve" }, { "dane", "dane" },
	{ "bidi", "bidi" },
	{ "route", "route" }, { "stanza_size", "stanza-size" },
	{ "rate", "rate" }, { "burst", "burst" },
	{ "connections", "connections" },
};

static void
render_status(struct json_object *reply, FILE *out)
{
	static const char *const fields[][2] = {
		{ "version", "version" }, { "pid", "pid" }, { "state", "state" },
		{ "started", "started" }, { "uptime", "uptime" },
		{ "reloads", "reloads" }, { "config", "config" },
		{ "listeners", "listeners" }, { "legs", "legs" },
		{ "control_clients", "control clients" },
		{ "log_level", "log level" },
	};
	struct render_table t = { .ncols = 2 };
	char buf[RENDER_CELL_MAX];

	for (size_t i = 0; i < nitems(fields); i++) {
		const char *key = fields[i][0], *v;

		if (strcmp(key, "started") == 0 && render_get(reply, key))
			v = render_time(json_object_get_int64(
			    render_get(reply, key)), buf, sizeof(buf));
		else if (strcmp(key, "uptime") == 0 && render_get(reply, key))
			v = render_uptime(render_u64(reply, key), buf,
			    sizeof(buf));
		else
			v = render_text(reply, key, buf, sizeof(buf));
		render_kv(&t, fields[i][1], v);
	}
	/* Fields a newer fedgated adds, as they come. */
	json_object_object_foreach(reply, key, val) {
		bool known = strcmp(key, "ok") == 0 ||
		    strcmp(key, "command") == 0;

		for (size_t i = 0; i < nitems(fields) && !known; i++)
			known = strcmp(key, fields[i][0]) == 0;
		(void)val;
		if (!known)
			render_kv(&t, key, render_text(reply, key, buf,
			    sizeof(buf)));
	}
	render_table_flush(&t, out);
}

static void
render_policy_check(struct json_object *reply, FILE *out)
{
	struct json_object *rule = render_get(reply, "rule");
	struct json_object *settings = render_get(reply, "settings");
	struct json_object *sources = render_get(reply, "sources");
	struct render_table t = { .ncols = 2 };
	char buf[RENDER_CELL_MAX], pat[RENDER_CELL_MAX], kind[32];
	char origin[RENDER_CELL_MAX];

	render_kv(&t, "domain", render_text(reply, "domain", buf, sizeof(buf)));
	if (rule == NULL || json_object_is_type(rule, json_type_null))
		render_kv(&t, "rule", "none (built-in defaults)");
	else {
		snprintf(buf, sizeof(buf), "%s (%s) at %s",
		    render_text(rule, "pattern", pat, sizeof(pat)),
		    render_text(rule, "kind", kind, sizeof(kind)),
		    render_origin(rule, origin, sizeof(origin)));
		render_kv(&t, "rule", buf);
	}
	render_table_flush(&t, out);

	t.ncols = 3;
	render_table_add(&t, (const char *const[]){ "SETTING", "VALUE",
	    "FROM" });
	for (size_t i = 0; i < nitems(render_settings); i++) {
		char value[RENDER_CELL_MAX], from[32];
		const char *row[3] = {
			render_settings[i][1],
			render_setting(settings, render_settings[i][0], value,
			    sizeof(value)),
			render_text(sources, render_settings[i][0], from,
			    sizeof(from)),
		};

		render_table_add(&t, row);
	}
	fputc('\n', out);
	render_table_flush(&t, out);
}

/* A rule's limits in one cell: "stanza-size=64k rate=10k/s", or "-". */
static const char *
render_limits(struct json_object *settings, char *buf, size_t len)
{
	static const char *const keys[][2] = {
		{ "stanza_size", "stanza-size" }, { "rate", "rate" },
		{ "burst", "burst" }, { "connections", "connections" },
	};
	char value[64];

	buf[0] = '\0';
	for (size_t i = 0; i < nitems(keys); i++) {
		/* A burst of 0 means "the same as the rate". */
		if (render_get(settings, keys[i][0]) == NULL ||
		    (strcmp(keys[i][0], "burst") == 0 &&
		    render_u64(settings, keys[i][0]) == 0))
			continue;
		if (buf[0] != '\0')
			strlcat(buf, " ", len);
		strlcat(buf, keys[i][1], len);
		strlcat(buf, "=", len);
		strlcat(buf, render_setting(settings, keys[i][0], value,
		    sizeof(value)), len);
	}
	return buf[0] != '\0' ? buf : "-";
}

static void
render_policy_list(struct json_object *reply, FILE *out)
{
	static const char *const cols[] = { "allow", "tls", "verify", "auth",
	    "resolve", "dane", "route" };
	struct json_object *rules = render_get(reply, "rules");
	struct render_table t = { .ncols = 10 };
	size_t n = rules != NULL && json_object_is_type(rules, json_type_array) ?
	    json_object_array_length(rules) : 0;

	if (n == 0) {
		fprintf(out, "no policy rules: the built-in defaults apply\n");
		return;
	}
	render_table_add(&t, (const char *const[]){ "PATTERN", "ALLOW", "TLS",
	    "VERIFY", "AUTH", "RESOLVE", "DANE", "ROUTE", "LIMITS", "ORIGIN" });
	for (size_t i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(rules, i);
		struct json_object *s = render_get(r, "settings");
		char cells[10][RENDER_CELL_MAX];
		const char *row[10];

		row[0] = render_text(r, "pattern", cells[0], RENDER_CELL_MAX);
		for (size_t c = 0; c < nitems(cols); c++)
			row[c + 1] = render_setting(s, cols[c], cells[c + 1],
			    RENDER_CELL_MAX);
		row[8] = render_limits(s, cells[8], RENDER_CELL_MAX);
		row[9] = render_origin(r, cells[9], RENDER_CELL_MAX);
		render_table_add(&t, row);
	}
	render_table_flush(&t, out);
}

static void
render_reload(struct json_object *reply, FILE *out)
{
	fprintf(out, "reload OK\n");
}

static void
render_log_level(struct json_object *reply, FILE *out)
{
	char level[32], previous[32];

	render_text(reply, "log_level", level, sizeof(level));
	if (render_get(reply, "previous") != NULL)
		fprintf(out, "log level: %s (was %s)\n", level,
		    render_text(reply, "previous", previous, sizeof(previous)));
	else
		fprintf(out, "log level: %s\n", level);
}

/* The text at key, or "-" when it is missing or empty. */
static const char *
render_cell(struct json_object *o, const char *key, char *buf, size_t len)
{
	const char *v = render_text(o, key, buf, len);

	return v[0] != '\0' ? v : "-";
}

/* A byte count rounded for people: "512", "1.2k", "34M". */
static const char *
render_bytes(uint64_t n, char *buf, size_t len)
{
	static const char units[] = "kMGTPE";
	double v = (double)n / 1024;
	size_t u = 0;

	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64, n);
		return buf;
	}
	for (; v >= 1024 && u + 1 < sizeof(units) - 1; u++)
		v /= 1024;
	snprintf(buf, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
	return buf;
}

/* "count/bytes" of two keys of o, as in "12/4.1k". */
static const char *
render_count_bytes(struct json_object *o, const char *count,
    const char *bytes, char *buf, size_t len)
{
	char size[32];

	snprintf(buf, len, "%" PRIu64 "/%s", render_u64(o, count),
	    render_bytes(render_u64(o, bytes), size, sizeof(size)));
	return buf;
}

/* An age for a table cell: "42s", "12m5s", "3h12m", "4d3h". */
static const char *
render_age(uint64_t s, char *buf, size_t len)
{
	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d%" PRIu64 "h", s / 86400,
		    s / 3600 % 24);
	else if (s >= 3600)
		snprintf(buf, len, "%" PRIu64 "h%" PRIu64 "m", s / 3600,
		    s / 60 % 60);
	else if (s >= 60)
		snprintf(buf, len, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "s", s);
	return buf;
}

/*
 * A leg's TLS in a cell: "TLSv1.3 TLS_AES_256_GCM_SHA384" as
 * "1.3/AES_256_GCM", the version's number and the cipher without its
 * "TLS_" prefix and its hash. -j shows the whole text.
 */
static const char *
render_tls(struct json_object *o, char *buf, size_t len)
{
	static const char *const hashes[] = { "_SHA256", "_SHA384", "-SHA256",
	    "-SHA384", "-SHA" };
	char tls[RENDER_CELL_MAX], *cipher, *version = tls;
	size_t n;

	if (strcmp(render_cell(o, "tls", tls, sizeof(tls)), "-") == 0)
		return "-";
	if ((cipher = strchr(tls, ' ')) == NULL)
		cipher = tls + strlen(tls);
	else
		*cipher++ = '\0';
	if (strncmp(version, "TLSv", 4) == 0)
		version += 4;
	if (strncmp(cipher, "TLS_", 4) == 0)
		cipher += 4;
	for (size_t i = 0; i < nitems(hashes); i++) {
		size_t h = strlen(hashes[i]);

		if ((n = strlen(cipher)) > h &&
		    strcmp(cipher + n - h, hashes[i]) == 0) {
			cipher[n - h] = '\0';
			break;
		}
	}
	snprintf(buf, len, "%s%s%s", version, cipher[0] != '\0' ? "/" : "",
	    cipher);
	return buf;
}

/* The array at key, and its length in *n (0 if it is not an array). */
static struct json_object *
render_array(struct json_object *reply, const char *key, size_t *n)
{
	struct json_object *a = render_get(reply, key);

	*n = a != NULL && json_object_is_type(a, json_type_array) ?
	    json_object_array_length(a) : 0;
	return a;
}

/*
 * How a leg came or went, in a cell: a transparent incoming leg's way in
 * and original destination ("redirect>203.0.113.20:5269"); a public
 * outgoing leg's discovery ("srv", "original", "route"); an internal
 * outgoing leg's borrowed source ("from>203.0.113.20:41000"); else "-".
 */
static const char *
render_via(struct json_object *o, char *buf, size_t len)
{
	char how[RENDER_CELL_MAX], orig[RENDER_CELL_MAX];

	if (render_get(o, "transparent") != NULL) {
		snprintf(buf, len, "%s>%s", render_text(o, "transparent", how,
		    sizeof(how)), render_cell(o, "original", orig,
		    sizeof(orig)));
		return buf;
	}
	if (render_get(o, "source") != NULL) {
		snprintf(buf, len, "from>%s", render_text(o, "source", orig,
		    sizeof(orig)));
		return buf;
	}
	return render_cell(o, "resolve", buf, len);
}

/* "in", "out"; "in+bidi", "out+bidi" for a bidirectional stream
 * (XEP-0288), which carries stanzas both ways. */
static const char *
render_dir(struct json_object *l, char *buf, size_t len)
{
	struct json_object *bidi = render_get(l, "bidi");
	size_t n;

	render_cell(l, "direction", buf, len);
	n = strlen(buf);
	if (bidi != NULL && json_object_get_boolean(bidi) && n + 6 < len)
		snprintf(buf + n, len - n, "+bidi");
	return buf;
}

static void
render_sessions(struct json_object *reply, FILE *out)
{
	enum { ID, FACE, DIR, LOCAL, REMOTE, PEER, VIA, STATE, TLS, AUTH, AGE,
	    IN, OUT, QUEUE, NCOLS };
	struct render_table t = { .ncols = NCOLS };
	size_t n;
	struct json_object *list = render_array(reply, "sessions", &n);

	if (n == 0) {
		fprintf(out, "no sessions\n");
		return;
	}
	render_table_add(&t, (const char *const[]){ "ID", "FACE", "DIR",
	    "LOCAL", "REMOTE", "PEER", "VIA", "STATE", "TLS", "AUTH", "AGE",
	    "IN", "OUT", "QUEUE" });
	for (size_t i = 0; i < n; i++) {
		struct json_object *l = json_object_array_get_idx(list, i);
		struct json_object *verify = render_get(l, "verify");
		char cells[NCOLS][RENDER_CELL_MAX];
		const char *row[NCOLS];

		row[ID] = render_cell(l, "id", cells[ID], RENDER_CELL_MAX);
		row[FACE] = render_cell(l, "face", cells[FACE], RENDER_CELL_MAX);
		row[DIR] = verify != NULL && json_object_get_boolean(verify) ?
		    "verify" : render_dir(l, cells[DIR], RENDER_CELL_MAX);
		row[LOCAL] = render_cell(l, "local", cells[LOCAL],
		    RENDER_CELL_MAX);
		row[REMOTE] = render_cell(l, "remote", cells[REMOTE],
		    RENDER_CELL_MAX);
		row[PEER] = render_cell(l, "peer", cells[PEER], RENDER_CELL_MAX);
		row[VIA] = render_via(l, cells[VIA], RENDER_CELL_MAX);
		row[STATE] = render_cell(l, "state", cells[STATE],
		    RENDER_CELL_MAX);
		row[TLS] = render_tls(l, cells[TLS], RENDER_CELL_MAX);
		row[AUTH] = render_cell(l, "auth", cells[AUTH], RENDER_CELL_MAX);
		row[AGE] = render_age(render_u64(l, "age"), cells[AGE],
		    RENDER_CELL_MAX);
		row[IN] = render_count_bytes(l, "stanzas_in", "bytes_in",
		    cells[IN], RENDER_CELL_MAX);
		row[OUT] = render_count_bytes(l, "stanzas_out", "bytes_out",
		    cells[OUT], RENDER_CELL_MAX);
		row[QUEUE] = render_cell(l, "queue", cells[QUEUE],
		    RENDER_CELL_MAX);
		render_table_add(&t, row);
	}
	render_table_flush(&t, out);
}

/* A route's failure cache: "3, retry in 12s", or "-". */
static const char *
render_failure(struct json_object *f, char *buf, size_t len)
{
	char age[32];

	if (f == NULL)
		return "-";
	snprintf(buf, len, "%" PRIu64 ", retry in %s", render_u64(f,
	    "failures"), render_age((render_u64(f, "retry_in_ms") + 999) /
	    1000, age, sizeof(age)));
	return buf;
}

static void
render_routes(struct json_object *reply, FILE *out)
{
	enum { FACE, LOCAL, REMOTE, LEG, STATE, QUEUE, UNACKED, SENT, RESENT,
	    BOUNCED, DROPPED, AGE, FAILED, NCOLS };
	struct render_table t = { .ncols = NCOLS };
	size_t n;
	struct json_object *list = render_array(reply, "routes", &n);

	if (n == 0) {
		fprintf(out, "no routes\n");
		return;
	}
	render_table_add(&t, (const char *const[]){ "FACE", "LOCAL", "REMOTE",
	    "LEG", "STATE", "QUEUE", "UNACKED", "SENT", "RESENT", "BOUNCED",
	    "DROPPED", "AGE", "FAILED" });
	for (size_t i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(list, i);
		char cells[NCOLS][RENDER_CELL_MAX];
		const char *row[NCOLS];

		row[FACE] = render_cell(r, "face", cells[FACE], RENDER_CELL_MAX);
		row[LOCAL] = render_cell(r, "local", cells[LOCAL],
		    RENDER_CELL_MAX);
		row[REMOTE] = render_cell(r, "remote", cells[REMOTE],
		    RENDER_CELL_MAX);
		row[LEG] = render_cell(r, "leg", cells[LEG], RENDER_CELL_MAX);
		row[STATE] = render_cell(r, "leg_state", cells[STATE],
		    RENDER_CELL_MAX);
		row[QUEUE] = render_count_bytes(r, "queue", "queue_bytes",
		    cells[QUEUE], RENDER_CELL_MAX);
		row[UNACKED] = render_cell(r, "unacked", cells[UNACKED],
		    RENDER_CELL_MAX);
		row[SENT] = render_cell(r, "sent", cells[SENT], RENDER_CELL_MAX);
		row[RESENT] = render_cell(r, "resent", cells[RESENT],
		    RENDER_CELL_MAX);
		row[BOUNCED] = render_cell(r, "bounced", cells[BOUNCED],
		    RENDER_CELL_MAX);
		row[DROPPED] = render_cell(r, "dropped", cells[DROPPED],
		    RENDER_CELL_MAX);
		row[AGE] = render_age(render_u64(r, "age"), cells[AGE],
		    RENDER_CELL_MAX);
		row[FAILED] = render_failure(render_get(r, "failure"),
		    cells[FAILED], RENDER_CELL_MAX);
		render_table_add(&t, row);
	}
	render_table_flush(&t, out);
	/* the cached reasons, one line each */
	for (size_t i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(list, i);
		struct json_object *f = render_get(r, "failure");
		char local[RENDER_CELL_MAX], remote[RENDER_CELL_MAX];
		char cond[RENDER_CELL_MAX], text[RENDER_CELL_MAX];

		if (f == NULL)
			continue;
		fprintf(out, "%s->%s: %s: %s\n",
		    render_text(r, "local", local, sizeof(local)),
		    render_text(r, "remote", remote, sizeof(remote)),
		    render_text(f, "condition", cond, sizeof(cond)),
		    render_text(f, "text", text, sizeof(text)));
	}
}

/* retry: how many routes forgot their failures. */
static void
render_retry(struct json_object *reply, FILE *out)
{
	char domain[RENDER_CELL_MAX];
	uint64_t n = render_u64(reply, "cleared");

	fprintf(out, "%s: %" PRIu64 " route%s will try again at once\n",
	    render_text(reply, "domain", domain, sizeof(domain)), n,
	    n == 1 ? "" : "s");
}

/* "SRC -> DST" of the tuple at key of ct. */
static const char *
render_tuple(struct json_object *ct, const char *key, char *buf, size_t len)
{
	struct json_object *t = render_get(ct, key);
	char src[RENDER_CELL_MAX], dst[RENDER_CELL_MAX];

	if (t == NULL)
		return "-";
	snprintf(buf, len, "%s -> %s", render_text(t, "src", src, sizeof(src)),
	    render_text(t, "dst", dst, sizeof(dst)));
	return buf;
}

static void
render_flows(struct json_object *reply, FILE *out)
{
	enum { ID, FACE, DIR, LOCAL, PEER, ORIG, REPLY, NAT, STATE, MARK,
	    NCOLS };
	struct render_table t = { .ncols = NCOLS };
	size_t n;
	struct json_object *list = render_array(reply, "flows", &n);

	if (n == 0) {
		fprintf(out, "no flows\n");
		return;
	}
	render_table_add(&t, (const char *const[]){ "ID", "FACE", "DIR",
	    "LOCAL", "PEER", "ORIGINAL", "REPLY", "NAT", "STATE", "MARK" });
	for (size_t i = 0; i < n; i++) {
		struct json_object *f = json_object_array_get_idx(list, i);
		struct json_object *ct = render_get(f, "conntrack");
		char cells[NCOLS][RENDER_CELL_MAX];
		const char *row[NCOLS];

		row[ID] = render_cell(f, "id", cells[ID], RENDER_CELL_MAX);
		row[FACE] = render_cell(f, "face", cells[FACE], RENDER_CELL_MAX);
		if (render_get(f, "transparent") != NULL) {
			/* "internal/redirect" */
			strlcat(cells[FACE], "/", RENDER_CELL_MAX);
			strlcat(cells[FACE], json_object_get_string(
			    render_get(f, "transparent")), RENDER_CELL_MAX);
		}
		row[DIR] = render_cell(f, "direction", cells[DIR],
		    RENDER_CELL_MAX);
		row[LOCAL] = render_cell(f, "local", cells[LOCAL],
		    RENDER_CELL_MAX);
		row[PEER] = render_cell(f, "peer", cells[PEER], RENDER_CELL_MAX);
		if (ct == NULL) {
			row[ORIG] = render_cell(f, "note", cells[ORIG],
			    RENDER_CELL_MAX);
			row[REPLY] = row[NAT] = row[STATE] = row[MARK] = "-";
		} else {
			row[ORIG] = render_tuple(ct, "original", cells[ORIG],
			    RENDER_CELL_MAX);
			row[REPLY] = render_tuple(ct, "reply", cells[REPLY],
			    RENDER_CELL_MAX);
			row[NAT] = render_cell(ct, "nat", cells[NAT],
			    RENDER_CELL_MAX);
			row[STATE] = render_cell(ct, "state", cells[STATE],
			    RENDER_CELL_MAX);
			row[MARK] = render_cell(ct, "mark", cells[MARK],
			    RENDER_CELL_MAX);
		}
		render_table_add(&t, row);
	}
	render_table_flush(&t, out);
}

static void
render_kill(struct json_object *reply, FILE *out)
{
	char domain[RENDER_CELL_MAX];
	uint64_t n = render_u64(reply, "closed");

	if (render_get(reply, "domain") != NULL)
		fprintf(out, "%s: ", render_text(reply, "domain", domain,
		    sizeof(domain)));
	fprintf(out, "closed %" PRIu64 " session%s\n", n, n == 1 ? "" : "s");
}

/* policy allow, deny, remove: what is in force, what was closed, saved. */
static void
render_policy_change(struct json_object *reply, FILE *out)
{
	char pattern[RENDER_CELL_MAX], state[RENDER_CELL_MAX];
	char save_err[RENDER_CELL_MAX];
	uint64_t n = render_u64(reply, "closed");

	render_text(reply, "pattern", pattern, sizeof(pattern));
	fprintf(out, "%s: runtime rule changed, %" PRIu64 " session%s closed\n",
	    pattern, n, n == 1 ? "" : "s");
	if (json_object_get_boolean(render_get(reply, "saved")))
		fprintf(out, "saved in %s\n", render_text(reply, "state", state,
		    sizeof(state)));
	else
		fprintf(out, "NOT saved (in force until fedgated stops): %s\n",
		    render_text(reply, "save_error", save_err,
		    sizeof(save_err)));
}

static void
render_drain(struct json_object *reply, FILE *out)
{
	uint64_t legs = render_u64(reply, "legs");
	uint64_t queued = render_u64(reply, "queued");

	fprintf(out, "draining: %" PRIu64 " leg%s open, %" PRIu64
	    " stanza%s queued\n", legs, legs == 1 ? "" : "s", queued,
	    queued == 1 ? "" : "s");
}

/* The Prometheus exposition, as it is. */
static void
render_metrics(struct json_object *reply, FILE *out)
{
	struct json_object *text = render_get(reply, "text");

	if (text != NULL && json_object_is_type(text, json_type_string))
		fwrite(json_object_get_string(text), 1,
		    (size_t)json_object_get_string_len(text), out);
}

/*
 * check: one line per step, "verdict  step  subject  reason", aligned,
 * then whether federation would work.
 */
static void
render_check(struct json_object *reply, FILE *out)
{
	static const char *const keys[] = { "verdict", "step", "subject",
	    "reason" };
	struct json_object *steps, *s;
	struct render_table t = { .ncols = nitems(keys) };
	char cells[nitems(keys)][RENDER_CELL_MAX], dom[RENDER_CELL_MAX];
	char works[16];
	const char *row[nitems(keys)];
	size_t count;

	steps = render_array(reply, "steps", &count);
	for (size_t i = 0; i < count; i++) {
		s = json_object_array_get_idx(steps, i);
		for (size_t c = 0; c < nitems(keys); c++)
			row[c] = render_text(s, keys[c], cells[c],
			    sizeof(cells[c]));
		render_table_add(&t, row);
	}
	render_table_flush(&t, out);
	if (render_u64(reply, "dropped") > 0)
		fprintf(out, "(%" PRIu64 " more steps not shown: the report "
		    "is bounded)\n", render_u64(reply, "dropped"));
	fprintf(out, "federation with %s would work: %s (%" PRIu64 " ms)\n",
	    render_text(reply, "domain", dom, sizeof(dom)),
	    render_text(reply, "works", works, sizeof(works)),
	    render_u64(reply, "elapsed_ms"));
}

int
render_check_status(struct json_object *reply)
{
	struct json_object *ok = render_get(reply, "ok");
	struct json_object *works = render_get(reply, "works");
	const char *w;

	if (ok == NULL || !json_object_is_type(ok, json_type_boolean) ||
	    !json_object_get_boolean(ok) || works == NULL ||
	    !json_object_is_type(works, json_type_string))
		return 2;
	w = json_object_get_string(works);
	return strcmp(w, "yes") == 0 ? 0 : strcmp(w, "no") == 0 ? 1 : 2;
}

static const struct {
	enum parser_action	 action;
	void			(*render)(struct json_object *, FILE *);
} render_actions[] = {
	{ PARSER_CHECK, render_check },
	{ PARSER_STATUS, render_status },
	{ PARSER_POLICY_CHECK, render_policy_check },
	{ PARSER_POLICY_LIST, render_policy_list },
	{ PARSER_POLICY_ALLOW, render_policy_change },
	{ PARSER_POLICY_DENY, render_policy_change },
	{ PARSER_POLICY_REMOVE, render_policy_change },
	{ PARSER_RELOAD, render_reload },
	{ PARSER_LOG_LEVEL, render_log_level },
	{ PARSER_LOG_LEVEL_SET, render_log_level },
	{ PARSER_SESSIONS, render_sessions },
	{ PARSER_ROUTES, render_routes },
	{ PARSER_KILL, render_kill },
	{ PARSER_KILL_DOMAIN, render_kill },
	{ PARSER_DRAIN, render_drain },
	{ PARSER_METRICS, render_metrics },
	{ PARSER_RETRY, render_retry },
	{ PARSER_FLOWS, render_flows },
};

/*
 * An error: "fedgatectl: command: error"; with details ("errors"), the
 * error then one detail a line, as they are ("reload refused:").
 */
static void
render_error(struct json_object *reply, FILE *err)
{
	struct json_object *errors = render_get(reply, "errors");
	struct json_object *cmd = render_get(reply, "command");
	char msg[RENDER_CELL_MAX];
	size_t n;

	render_text(reply, "error", msg, sizeof(msg));
	if (errors != NULL && json_object_is_type(errors, json_type_array) &&
	    (n = json_object_array_length(errors)) > 0) {
		fprintf(err, "%s:\n", msg);
		for (size_t i = 0; i < n; i++)
			fprintf(err, "%s\n", json_object_get_string(
			    json_object_array_get_idx(errors, i)));
	} else if (cmd != NULL && json_object_is_type(cmd, json_type_string))
		fprintf(err, "fedgatectl: %s: %s\n", json_object_get_string(cmd),
		    msg);
	else
		fprintf(err, "fedgatectl: %s\n", msg);
}

int
render_reply(enum parser_action action, struct json_object *reply,
    FILE *out, FILE *err)
{
	struct json_object *ok = render_get(reply, "ok");

	if (ok == NULL || !json_object_is_type(ok, json_type_boolean) ||
	    !json_object_get_boolean(ok)) {
		render_error(reply, err);
		return 1;
	}
	for (size_t i = 0; i < nitems(render_actions); i++)
		if (render_actions[i].action == action) {
			render_actions[i].render(reply, out);
			return 0;
		}
	fprintf(out, "%s\n", json_object_to_json_string_ext(reply,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	return 0;
}
