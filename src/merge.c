/*
 * merge: the table of how each control command's replies merge, and the
 * merges (merge.h).
 */
#include "fgconfig.h"

#include <sys/queue.h>
#include <sys/tree.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json.h>

#include "merge.h"
#include "util.h"

#define MERGE_SUMS	2

static const struct merge_rule {
	const char	*command;
	enum merge_kind	 kind;
	bool		 any_ok;	/* ok if one worker is (else: all) */
	const char	*concat;	/* an array put end to end */
	const char	*sum[MERGE_SUMS]; /* integers summed */
	bool		 metrics;	/* "text": expositions summed */
} merge_rules[] = {
	{ "status", MERGE_GATHER, .sum = { "legs" } },
	{ "sessions", MERGE_GATHER, .concat = "sessions" },
	{ "routes", MERGE_GATHER, .concat = "routes" },
	{ "flows", MERGE_GATHER, .concat = "flows" },
	{ "metrics", MERGE_GATHER, .metrics = true },
	{ "retry", MERGE_GATHER, .sum = { "cleared" } },
	{ "kill", MERGE_GATHER, .any_ok = true, .sum = { "closed" } },
	{ "kill --domain", MERGE_GATHER, .any_ok = true,
	    .sum = { "closed" } },
	{ "policy allow", MERGE_GATHER, .sum = { "closed" } },
	{ "policy deny", MERGE_GATHER, .sum = { "closed" } },
	{ "policy remove", MERGE_GATHER, .sum = { "closed" } },
	{ "reload", MERGE_GATHER, .concat = NULL },
	{ "log level", MERGE_GATHER, .concat = NULL },
	{ "drain", MERGE_BROADCAST, .concat = NULL },
};

static const struct merge_rule *
merge_rule(const char *command)
{
	for (size_t i = 0; i < nitems(merge_rules); i++)
		if (strcmp(merge_rules[i].command, command) == 0)
			return &merge_rules[i];
	return NULL;
}

enum merge_kind
merge_kind(const char *command)
{
	const struct merge_rule *r = merge_rule(command);

	return r != NULL ? r->kind : MERGE_NONE;
}

static bool
merge_is_ok(struct json_object *o)
{
	struct json_object *ok;

	return o != NULL && json_object_object_get_ex(o, "ok", &ok) &&
	    json_object_get_boolean(ok);
}

/* Set reply's error to worker k's (or say it gave none). */
static void
merge_error_of(struct json_object *reply, unsigned k, struct json_object *o)
{
	struct json_object *e, *errors;
	char text[512];

	if (o != NULL && json_object_object_get_ex(o, "error", &e))
		snprintf(text, sizeof(text), "worker %u: %s", k,
		    json_object_get_string(e));
	else
		snprintf(text, sizeof(text), "worker %u did not answer", k);
	json_object_object_add(reply, "error", json_object_new_string(text));
	if (o != NULL && json_object_object_get_ex(o, "errors", &errors))
		json_object_object_add(reply, "errors",
		    json_object_get(errors));
}

/* Add o's integer field name to *sum. */
static void
merge_add(struct json_object *o, const char *name, int64_t *sum)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, name, &v) &&
	    json_object_is_type(v, json_type_int))
		*sum += json_object_get_int64(v);
}

/* Append the elements of o's array name to reply's. */
static void
merge_concat(struct json_object *reply, struct json_object *o,
    const char *name)
{
	struct json_object *to, *from;

	if (!json_object_object_get_ex(reply, name, &to) ||
	    !json_object_is_type(to, json_type_array) ||
	    !json_object_object_get_ex(o, name, &from) ||
	    !json_object_is_type(from, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(from); i++)
		json_object_array_add(to,
		    json_object_get(json_object_array_get_idx(from, i)));
}

/* Sum the "text" of the replies ok in all[0..n) into reply's. */
static int
merge_texts(struct json_object *reply, struct json_object *const *all,
    unsigned n)
{
	const char **texts;
	struct json_object *t;
	struct evbuffer *out;
	unsigned k = 0;
	int rc = -1;

	if ((texts = calloc(n, sizeof(*texts))) == NULL ||
	    (out = evbuffer_new()) == NULL) {
		free(texts);
		return -1;
	}
	for (unsigned i = 0; i < n; i++)
		if (merge_is_ok(all[i]) &&
		    json_object_object_get_ex(all[i], "text", &t))
			texts[k++] = json_object_get_string(t);
	if (merge_metrics(texts, k, out) == 0 &&
	    evbuffer_get_length(out) < INT32_MAX) {
		json_object_object_add(reply, "text",
		    json_object_new_string_len(
		    (const char *)evbuffer_pullup(out, -1),
		    (int)evbuffer_get_length(out)));
		rc = 0;
	}
	evbuffer_free(out);
	free(texts);
	return rc;
}

/* Merge all[0..n) (all[0] is reply) by rule r. */
static int
merge_by_rule(const struct merge_rule *r, struct json_object *reply,
    struct json_object *const *all, unsigned n)
{
	int64_t sums[MERGE_SUMS] = { 0 };
	unsigned nok = 0;
	int failed = -1;

	for (unsigned i = 0; i < n; i++) {
		if (!merge_is_ok(all[i])) {
			if (failed == -1)
				failed = (int)i;
			continue;
		}
		nok++;
		for (size_t s = 0; s < MERGE_SUMS && r->sum[s] != NULL; s++)
			merge_add(all[i], r->sum[s], &sums[s]);
		if (r->concat != NULL && i > 0)
			merge_concat(reply, all[i], r->concat);
	}
	if (r->any_ok ? nok == 0 : failed != -1) {
		if (failed > 0)
			merge_error_of(reply, (unsigned)failed, all[failed]);
		return -1;
	}
	json_object_object_del(reply, "error");
	for (size_t s = 0; s < MERGE_SUMS && r->sum[s] != NULL; s++)
		json_object_object_add(reply, r->sum[s],
		    json_object_new_int64(sums[s]));
	if (r->metrics && merge_texts(reply, all, n) == -1) {
		json_object_object_add(reply, "error",
		    json_object_new_string("cannot sum the workers' metrics"));
		return -1;
	}
	if (strcmp(r->command, "status") == 0)
		json_object_object_add(reply, "workers",
		    json_object_new_int64(n));
	return 0;
}

int
merge_replies(const char *command, struct json_object *reply, int rc,
    char *const *peers, unsigned n)
{
	const struct merge_rule *r = merge_rule(command);
	struct json_object **all;

	if (r == NULL || r->kind != MERGE_GATHER)
		return rc;
	if ((all = calloc(n + 1, sizeof(*all))) == NULL) {
		json_object_object_add(reply, "error",
		    json_object_new_string("out of memory"));
		return -1;
	}
	json_object_object_add(reply, "ok", json_object_new_boolean(rc == 0));
	all[0] = reply;
	for (unsigned i = 0; i < n; i++) {
		all[i + 1] = peers[i] != NULL ?
		    json_tokener_parse(peers[i]) : NULL;
		if (all[i + 1] != NULL &&
		    !json_object_is_type(all[i + 1], json_type_object)) {
			json_object_put(all[i + 1]);
			all[i + 1] = NULL;
		}
	}
	rc = merge_by_rule(r, reply, all, n + 1);
	for (unsigned i = 1; i <= n; i++)
		json_object_put(all[i]);
	free(all);
	return rc;
}

/*
 * Metrics: every line of every text, once, in a list (the order of the
 * output) and a tree (by key: a comment's whole line, a sample's name and
 * labels).
 */
struct merge_line {
	TAILQ_ENTRY(merge_line)	 entry;
	RB_ENTRY(merge_line)	 node;
	bool			 sample;
	bool			 fraction;	/* rendered N.MMM */
	uint64_t		 milli;		/* the sum, in thousandths */
	char			 key[];
};
TAILQ_HEAD(merge_lines, merge_line);

static int	merge_line_cmp(const struct merge_line *,
		    const struct merge_line *);
RB_HEAD(merge_tree, merge_line);
RB_PROTOTYPE(merge_tree, merge_line, node, merge_line_cmp)
RB_GENERATE(merge_tree, merge_line, node, merge_line_cmp)

static int
merge_line_cmp(const struct merge_line *a, const struct merge_line *b)
{
	return strcmp(a->key, b->key);
}

/* Parse a sample's value: digits, then maybe "." and 1 to 3 digits. */
static int
merge_value(const char *s, size_t len, uint64_t *milli, bool *fraction)
{
	uint64_t v = 0, frac = 0;
	size_t i = 0, digits = 0;

	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10 / 1000)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return -1;
	*fraction = i < len && s[i] == '.';
	if (*fraction)
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			if (++digits > 3)
				return -1;
			frac = frac * 10 + (uint64_t)(s[i] - '0');
		}
	if (i != len || (*fraction && digits == 0))
		return -1;
	for (; *fraction && digits < 3; digits++)
		frac *= 10;
	*milli = v * 1000 + frac;
	return 0;
}

/*
 * Add one line (len bytes at s, no LF) after *cursor (NULL: at the end);
 * make *cursor that line. Return 0 or -1.
 */
static int
merge_add_line(struct merge_lines *list, struct merge_tree *tree,
    const char *s, size_t len, struct merge_line **cursor)
{
	const char *space = NULL;
	struct merge_line *l, *found;
	uint64_t milli = 0;
	bool fraction = false, sample = s[0] != '#';
	size_t klen = len;

	if (sample) {
		for (size_t i = 0; i < len; i++)
			if (s[i] == ' ')
				space = s + i;
		if (space == NULL || space == s || merge_value(space + 1,
		    len - (size_t)(space + 1 - s), &milli, &fraction) == -1)
			return -1;
		klen = (size_t)(space - s);
	}
	if ((l = malloc(sizeof(*l) + klen + 1)) == NULL)
		return -1;
	memcpy(l->key, s, klen);
	l->key[klen] = '\0';
	if ((found = RB_FIND(merge_tree, tree, l)) != NULL) {
		free(l);
		if (sample && (found->milli + milli < found->milli))
			return -1;
		found->milli += milli;
		found->fraction |= fraction;
		*cursor = found;
		return 0;
	}
	l->sample = sample;
	l->fraction = fraction;
	l->milli = milli;
	RB_INSERT(merge_tree, tree, l);
	if (*cursor == NULL)
		TAILQ_INSERT_TAIL(list, l, entry);
	else
		TAILQ_INSERT_AFTER(list, *cursor, l, entry);
	*cursor = l;
	return 0;
}

static int
merge_render(const struct merge_lines *list, struct evbuffer *out)
{
	const struct merge_line *l;
	int rc = 0;

	TAILQ_FOREACH(l, list, entry) {
		if (!l->sample)
			rc |= evbuffer_add_printf(out, "%s\n", l->key) < 0;
		else if (l->fraction)
			rc |= evbuffer_add_printf(out, "%s %llu.%03llu\n",
			    l->key, (unsigned long long)(l->milli / 1000),
			    (unsigned long long)(l->milli % 1000)) < 0;
		else
			rc |= evbuffer_add_printf(out, "%s %llu\n", l->key,
			    (unsigned long long)(l->milli / 1000)) < 0;
	}
	return rc ? -1 : 0;
}

int
merge_metrics(const char *const *texts, unsigned n, struct evbuffer *out)
{
	struct merge_lines list = TAILQ_HEAD_INITIALIZER(list);
	struct merge_tree tree = RB_INITIALIZER(&tree);
	struct merge_line *l, *cursor;
	const char *p, *eol;
	int rc = 0;

	for (unsigned t = 0; t < n && rc == 0; t++) {
		cursor = NULL;
		for (p = texts[t]; *p != '\0' && rc == 0; p = eol + 1) {
			if ((eol = strchr(p, '\n')) == NULL)
				eol = p + strlen(p);
			if (eol > p)
				rc = merge_add_line(&list, &tree, p,
				    (size_t)(eol - p), &cursor);
			if (*eol == '\0')
				break;
		}
	}
	if (rc == 0)
		rc = merge_render(&list, out);
	while ((l = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, l, entry);
		free(l);
	}
	return rc;
}
