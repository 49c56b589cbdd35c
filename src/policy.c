/*
 * policy: peer rules in two red-black trees (exact names, wildcard suffixes)
 * and a default rule, all keyed by normalised domain.
 */
#include "fgconfig.h"

#include <sys/tree.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jid.h"
#include "policy.h"
#include "util.h"

#define POLICY_PATTERN_MAX	(JID_DOMAIN_MAX + 2)	/* "*." and a name */
#define POLICY_DEFAULT_NAME	"default"
#define POLICY_ORIGIN_CONTROL	"control"

struct policy_rule {
	RB_ENTRY(policy_rule)	 entry;
	enum policy_kind	 kind;
	char			 pattern[POLICY_PATTERN_MAX]; /* normalised */
	const char		*name;	/* the key: pattern without "*." */
	struct policy_settings	 settings;
	char			*origin;
	int			 line;
	/* a runtime rule's: the file's rule it hides, back when it goes */
	struct policy_rule	*shadowed;
};

RB_HEAD(policy_tree, policy_rule);

struct policy {
	struct policy_tree	 exact;		/* by name */
	struct policy_tree	 suffix;	/* by name, the part after "*." */
	struct policy_rule	*deflt;		/* NULL: none */
};

static int
policy_rule_cmp(const struct policy_rule *a, const struct policy_rule *b)
{
	return strcmp(a->name, b->name);
}

/* libbsd's __unused is empty, so the trees' functions are external. */
RB_PROTOTYPE(policy_tree, policy_rule, entry, policy_rule_cmp)
RB_GENERATE(policy_tree, policy_rule, entry, policy_rule_cmp)

/*
 * The tree functions take no const, but finding and walking do not write:
 * let the const functions below use them.
 */
static struct policy_tree *
policy_tree_of(const struct policy_tree *t)
{
	union {
		const struct policy_tree	*c;
		struct policy_tree		*m;
	} u = { .c = t };

	return u.m;
}

struct policy_name {
	const char	*name;
	int		 value;
};

static const struct policy_name policy_tls_names[] = {
	{ "none", POLICY_TLS_NONE },
	{ "optional", POLICY_TLS_OPTIONAL },
	{ "required", POLICY_TLS_REQUIRED },
};

static const struct policy_name policy_verify_names[] = {
	{ "none", POLICY_VERIFY_NONE },
	{ "optional", POLICY_VERIFY_OPTIONAL },
	{ "required", POLICY_VERIFY_REQUIRED },
};

static const struct policy_name policy_auth_names[] = {
	{ "dialback", POLICY_AUTH_DIALBACK },
	{ "external", POLICY_AUTH_EXTERNAL },
	{ "any", POLICY_AUTH_ANY },
};

static const struct policy_name policy_resolve_names[] = {
	{ "srv", POLICY_RESOLVE_SRV },
	{ "original", POLICY_RESOLVE_ORIGINAL },
};

static const struct policy_name policy_tls_version_names[] = {
	{ "TLSv1", POLICY_TLS_V1_0 },
	{ "TLSv1.1", POLICY_TLS_V1_1 },
	{ "TLSv1.2", POLICY_TLS_V1_2 },
	{ "TLSv1.3", POLICY_TLS_V1_3 },
};

static const char *
policy_name_of(const struct policy_name *t, size_t n, int value)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (t[i].value == value)
			return t[i].name;
	return "unknown";
}

static int
policy_name_parse(const struct policy_name *t, size_t n, const char *s,
    int *value)
{
	size_t	 i;

	if (s == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (strcmp(t[i].name, s) == 0) {
			*value = t[i].value;
			return 0;
		}
	return -1;
}

const char *
policy_tls_name(enum policy_tls v)
{
	return policy_name_of(policy_tls_names, nitems(policy_tls_names), v);
}

const char *
policy_verify_name(enum policy_verify v)
{
	return policy_name_of(policy_verify_names, nitems(policy_verify_names),
	    v);
}

const char *
policy_auth_name(enum policy_auth v)
{
	return policy_name_of(policy_auth_names, nitems(policy_auth_names), v);
}

const char *
policy_resolve_name(enum policy_resolve v)
{
	return policy_name_of(policy_resolve_names,
	    nitems(policy_resolve_names), v);
}

int
policy_tls_parse(const char *s, enum policy_tls *v)
{
	int	 x;

	if (policy_name_parse(policy_tls_names, nitems(policy_tls_names), s,
	    &x) == -1)
		return -1;
	*v = x;
	return 0;
}

int
policy_verify_parse(const char *s, enum policy_verify *v)
{
	int	 x;

	if (policy_name_parse(policy_verify_names,
	    nitems(policy_verify_names), s, &x) == -1)
		return -1;
	*v = x;
	return 0;
}

int
policy_auth_parse(const char *s, enum policy_auth *v)
{
	int	 x;

	if (policy_name_parse(policy_auth_names, nitems(policy_auth_names), s,
	    &x) == -1)
		return -1;
	*v = x;
	return 0;
}

int
policy_resolve_parse(const char *s, enum policy_resolve *v)
{
	int	 x;

	if (policy_name_parse(policy_resolve_names,
	    nitems(policy_resolve_names), s, &x) == -1)
		return -1;
	*v = x;
	return 0;
}

const char *
policy_tls_version_name(enum policy_tls_version v)
{
	return policy_name_of(policy_tls_version_names,
	    nitems(policy_tls_version_names), v);
}

int
policy_tls_version_parse(const char *s, enum policy_tls_version *v)
{
	int	 x;

	if (s != NULL && strcmp(s, "TLSv1.0") == 0)
		s = "TLSv1";
	if (policy_name_parse(policy_tls_version_names,
	    nitems(policy_tls_version_names), s, &x) == -1)
		return -1;
	*v = x;
	return 0;
}

int
policy_tls_version_number(enum policy_tls_version v)
{
	if (v < POLICY_TLS_V1_0 || v > POLICY_TLS_V1_3)
		return 0;
	return 0x0301 + (int)v;
}

/* The shared texts of settings (policy_text()), by content. */
struct policy_text {
	RB_ENTRY(policy_text)	 entry;
	char			 text[];
};

static int
policy_text_cmp(const struct policy_text *a, const struct policy_text *b)
{
	return strcmp(a->text, b->text);
}

RB_HEAD(policy_texts, policy_text);
RB_PROTOTYPE(policy_texts, policy_text, entry, policy_text_cmp)
RB_GENERATE(policy_texts, policy_text, entry, policy_text_cmp)

static struct policy_texts policy_texts = RB_INITIALIZER(&policy_texts);

const char *
policy_text(const char *s)
{
	struct policy_text *t, *found;
	size_t len = strlen(s);

	if (len == 0)
		return "";
	if ((t = malloc(sizeof(*t) + len + 1)) == NULL)
		return NULL;
	memcpy(t->text, s, len + 1);
	if ((found = RB_INSERT(policy_texts, &policy_texts, t)) != NULL) {
		free(t);
		return found->text;
	}
	return t->text;
}

void
policy_settings_init(struct policy_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->ciphers = "";
	s->route_host = "";
	s->allow = false;
	s->tls = POLICY_TLS_OPTIONAL;
	s->verify = POLICY_VERIFY_OPTIONAL;
	s->auth = POLICY_AUTH_ANY;
	s->resolve = POLICY_RESOLVE_SRV;
	s->dane = false;
	s->bidi = true;
	s->tls_min = POLICY_TLS_V1_2;
}

void
policy_settings_merge(struct policy_settings *dst,
    const struct policy_settings *src)
{
	unsigned	 set = src->set;

	if (set & POLICY_SET_ALLOW)
		dst->allow = src->allow;
	if (set & POLICY_SET_TLS)
		dst->tls = src->tls;
	if (set & POLICY_SET_VERIFY)
		dst->verify = src->verify;
	if (set & POLICY_SET_AUTH)
		dst->auth = src->auth;
	if (set & POLICY_SET_RESOLVE)
		dst->resolve = src->resolve;
	if (set & POLICY_SET_DANE)
		dst->dane = src->dane;
	if (set & POLICY_SET_BIDI)
		dst->bidi = src->bidi;
	if (set & POLICY_SET_TLS_MIN)
		dst->tls_min = src->tls_min;
	if (set & POLICY_SET_CIPHERS)
		dst->ciphers = src->ciphers;
	if (set & POLICY_SET_ROUTE) {
		dst->route_host = src->route_host;
		dst->route_port = src->route_port;
	}
	if (set & POLICY_SET_STANZA_SIZE)
		dst->stanza_size = src->stanza_size;
	if (set & POLICY_SET_RATE) {
		dst->rate = src->rate;
		dst->burst = src->burst;
	}
	if (set & POLICY_SET_CONNECTIONS)
		dst->connections = src->connections;
	dst->set |= set & POLICY_SET_ALL;
}

/* Return whether the fields that s sets hold values in range. */
static bool
policy_settings_is_valid(const struct policy_settings *s)
{
	if ((s->set & ~POLICY_SET_ALL) != 0)
		return false;
	if ((s->set & POLICY_SET_TLS) && (s->tls < POLICY_TLS_NONE ||
	    s->tls > POLICY_TLS_REQUIRED))
		return false;
	if ((s->set & POLICY_SET_VERIFY) && (s->verify < POLICY_VERIFY_NONE ||
	    s->verify > POLICY_VERIFY_REQUIRED))
		return false;
	if ((s->set & POLICY_SET_AUTH) && (s->auth < POLICY_AUTH_DIALBACK ||
	    s->auth > POLICY_AUTH_ANY))
		return false;
	if ((s->set & POLICY_SET_RESOLVE) && (s->resolve < POLICY_RESOLVE_SRV ||
	    s->resolve > POLICY_RESOLVE_ORIGINAL))
		return false;
	if ((s->set & POLICY_SET_TLS_MIN) && (s->tls_min < POLICY_TLS_V1_0 ||
	    s->tls_min > POLICY_TLS_V1_3))
		return false;
	if (s->ciphers == NULL || s->route_host == NULL)
		return false;
	return strlen(s->ciphers) < POLICY_CIPHERS_MAX &&
	    strlen(s->route_host) < POLICY_ROUTE_HOST_MAX;
}

/*
 * Normalise pattern into r: kind, pattern and name. Return 0, or -1 if the
 * pattern is not a domain, a wildcard over one, or "default".
 */
static int
policy_pattern_parse(const char *pattern, struct policy_rule *r)
{
	char	 name[JID_DOMAIN_MAX];

	if (pattern == NULL)
		return -1;
	if (strcasecmp(pattern, POLICY_DEFAULT_NAME) == 0) {
		r->kind = POLICY_DEFAULT;
		strlcpy(r->pattern, POLICY_DEFAULT_NAME, sizeof(r->pattern));
		r->name = r->pattern;
		return 0;
	}
	if (strncmp(pattern, "*.", 2) == 0) {
		if (jid_domain_normalize(pattern + 2, name, sizeof(name)) == -1 ||
		    name[0] == '[')
			return -1;
		r->kind = POLICY_SUFFIX;
		snprintf(r->pattern, sizeof(r->pattern), "*.%s", name);
		r->name = r->pattern + 2;
		return 0;
	}
	if (jid_domain_normalize(pattern, name, sizeof(name)) == -1)
		return -1;
	r->kind = POLICY_EXACT;
	strlcpy(r->pattern, name, sizeof(r->pattern));
	r->name = r->pattern;
	return 0;
}

static bool
policy_rule_is_runtime(const struct policy_rule *r)
{
	return strcmp(r->origin, POLICY_ORIGIN_CONTROL) == 0;
}

static void
policy_rule_free(struct policy_rule *r)
{
	if (r == NULL)
		return;
	policy_rule_free(r->shadowed);
	free(r->origin);
	free(r);
}

/* Return the rule of p with r's kind and name, or NULL. */
static struct policy_rule *
policy_find(struct policy *p, struct policy_rule *r)
{
	switch (r->kind) {
	case POLICY_EXACT:
		return RB_FIND(policy_tree, &p->exact, r);
	case POLICY_SUFFIX:
		return RB_FIND(policy_tree, &p->suffix, r);
	case POLICY_DEFAULT:
		return p->deflt;
	}
	return NULL;
}

/* Take old (a rule of p) out of p, without freeing it. */
static void
policy_detach(struct policy *p, struct policy_rule *old)
{
	switch (old->kind) {
	case POLICY_EXACT:
		RB_REMOVE(policy_tree, &p->exact, old);
		break;
	case POLICY_SUFFIX:
		RB_REMOVE(policy_tree, &p->suffix, old);
		break;
	case POLICY_DEFAULT:
		p->deflt = NULL;
		break;
	}
}

/* Unlink old (a rule of p) and free it. */
static void
policy_unlink(struct policy *p, struct policy_rule *old)
{
	policy_detach(p, old);
	policy_rule_free(old);
}

static void
policy_link(struct policy *p, struct policy_rule *r)
{
	switch (r->kind) {
	case POLICY_EXACT:
		RB_INSERT(policy_tree, &p->exact, r);
		break;
	case POLICY_SUFFIX:
		RB_INSERT(policy_tree, &p->suffix, r);
		break;
	case POLICY_DEFAULT:
		p->deflt = r;
		break;
	}
}

struct policy *
policy_new(void)
{
	struct policy	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	RB_INIT(&p->exact);
	RB_INIT(&p->suffix);
	return p;
}

void
policy_free(struct policy *p)
{
	struct policy_rule	*r, *next;

	if (p == NULL)
		return;
	RB_FOREACH_SAFE(r, policy_tree, &p->exact, next) {
		RB_REMOVE(policy_tree, &p->exact, r);
		policy_rule_free(r);
	}
	RB_FOREACH_SAFE(r, policy_tree, &p->suffix, next) {
		RB_REMOVE(policy_tree, &p->suffix, r);
		policy_rule_free(r);
	}
	policy_rule_free(p->deflt);
	free(p);
}

static void __attribute__((format(printf, 3, 4)))
policy_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Add a rule; replace an existing one if replace is set. */
static int
policy_put(struct policy *p, const char *pattern,
    const struct policy_settings *s, const char *origin, int line,
    bool replace, char *err, size_t errlen)
{
	struct policy_rule	*r, *old;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		policy_err(err, errlen, "out of memory");
		return -1;
	}
	if (policy_pattern_parse(pattern, r) == -1) {
		policy_err(err, errlen, "invalid domain \"%s\"",
		    pattern != NULL ? pattern : "");
		goto fail;
	}
	if (!policy_settings_is_valid(s)) {
		policy_err(err, errlen, "invalid settings for peer \"%s\"",
		    pattern);
		goto fail;
	}
	if ((old = policy_find(p, r)) != NULL && !replace) {
		if (old->line > 0)
			policy_err(err, errlen, "peer \"%s\" is already defined "
			    "at %s:%d", pattern, old->origin, old->line);
		else
			policy_err(err, errlen, "peer \"%s\" is already defined "
			    "at %s", pattern, old->origin);
		goto fail;
	}
	if ((r->origin = strdup(origin != NULL ? origin : "")) == NULL) {
		policy_err(err, errlen, "out of memory");
		goto fail;
	}
	r->settings = *s;
	r->settings.set &= POLICY_SET_ALL;
	r->line = line;
	if (old != NULL && policy_rule_is_runtime(r)) {
		/* a runtime rule hides the file's until it is removed */
		policy_detach(p, old);
		if (policy_rule_is_runtime(old)) {
			r->shadowed = old->shadowed;
			old->shadowed = NULL;
			policy_rule_free(old);
		} else
			r->shadowed = old;
	} else if (old != NULL)
		policy_unlink(p, old);
	policy_link(p, r);
	return 0;
 fail:
	policy_rule_free(r);
	return -1;
}

int
policy_add(struct policy *p, const char *pattern,
    const struct policy_settings *s, const char *origin, int line,
    char *err, size_t errlen)
{
	return policy_put(p, pattern, s, origin, line, false, err, errlen);
}

int
policy_set(struct policy *p, const char *pattern,
    const struct policy_settings *s, const char *origin, int line,
    char *err, size_t errlen)
{
	return policy_put(p, pattern, s, origin, line, true, err, errlen);
}

int
policy_remove(struct policy *p, const char *pattern)
{
	struct policy_rule	 key, *old;

	memset(&key, 0, sizeof(key));
	if (policy_pattern_parse(pattern, &key) == -1 ||
	    (old = policy_find(p, &key)) == NULL)
		return -1;
	policy_detach(p, old);
	if (old->shadowed != NULL)
		policy_link(p, old->shadowed);
	old->shadowed = NULL;
	policy_rule_free(old);
	return 0;
}

int
policy_remove_runtime(struct policy *p, const char *pattern)
{
	struct policy_rule	 key, *old;

	memset(&key, 0, sizeof(key));
	if (policy_pattern_parse(pattern, &key) == -1 ||
	    (old = policy_find(p, &key)) == NULL ||
	    !policy_rule_is_runtime(old))
		return -1;
	return policy_remove(p, pattern);
}

const struct policy_rule *
policy_rule_shadowed(const struct policy_rule *r)
{
	return r->shadowed;
}

bool
policy_rule_is_control(const struct policy_rule *r)
{
	return policy_rule_is_runtime(r);
}

/* Append ", " unless at the start, then the text; bounded by len. */
static void
policy_format_add(char *buf, size_t len, const char *text)
{
	if (buf[strlen(buf) - 1] != '{')
		strlcat(buf, ";", len);
	strlcat(buf, " ", len);
	strlcat(buf, text, len);
}

int
policy_rule_format(const struct policy_rule *r, char *buf, size_t len)
{
	const struct policy_settings *s = &r->settings;
	char item[64];

	if (s->set & ~(POLICY_SET_ALLOW | POLICY_SET_TLS | POLICY_SET_VERIFY |
	    POLICY_SET_AUTH))
		return -1;
	snprintf(buf, len, "peer \"%s\" {", r->pattern);
	if (s->set & POLICY_SET_ALLOW)
		policy_format_add(buf, len, s->allow ? "allow" : "deny");
	if (s->set & POLICY_SET_TLS) {
		snprintf(item, sizeof(item), "tls %s", policy_tls_name(s->tls));
		policy_format_add(buf, len, item);
	}
	if (s->set & POLICY_SET_VERIFY) {
		snprintf(item, sizeof(item), "verify %s",
		    policy_verify_name(s->verify));
		policy_format_add(buf, len, item);
	}
	if (s->set & POLICY_SET_AUTH) {
		snprintf(item, sizeof(item), "auth %s",
		    policy_auth_name(s->auth));
		policy_format_add(buf, len, item);
	}
	if (strlcat(buf, " }", len) >= len)
		return -1;
	return 0;
}

/* Return the most specific rule for the normalised name, or NULL. */
static const struct policy_rule *
policy_lookup(const struct policy *p, const char *name)
{
	struct policy_tree	*exact = policy_tree_of(&p->exact);
	struct policy_tree	*suffix = policy_tree_of(&p->suffix);
	struct policy_rule	 key, *r;
	const char		*dot;

	key.name = name;
	if ((r = RB_FIND(policy_tree, exact, &key)) != NULL)
		return r;
	/* Proper suffixes, longest first: "*.b.c" matches "a.b.c", not "b.c". */
	if (name[0] != '[') {
		for (dot = strchr(name, '.'); dot != NULL;
		    dot = strchr(dot + 1, '.')) {
			key.name = dot + 1;
			if ((r = RB_FIND(policy_tree, suffix, &key)) != NULL)
				return r;
		}
	}
	return p->deflt;
}

int
policy_match(const struct policy *p, const char *domain,
    struct policy_match *m)
{
	char			 name[JID_DOMAIN_MAX];
	const struct policy_rule *r;

	if (jid_domain_normalize(domain, name, sizeof(name)) == -1)
		return -1;
	r = policy_lookup(p, name);
	m->rule = r;
	policy_settings_init(&m->settings);
	if (p->deflt != NULL)
		policy_settings_merge(&m->settings, &p->deflt->settings);
	if (r != NULL && r != p->deflt)
		policy_settings_merge(&m->settings, &r->settings);
	return 0;
}

/* Copy r into dst with policy_set(). */
static int
policy_copy_rule(struct policy *dst, const struct policy_rule *r)
{
	char	 err[128];

	return policy_set(dst, r->pattern, &r->settings, r->origin, r->line,
	    err, sizeof(err));
}

int
policy_copy_overrides(struct policy *dst, const struct policy *src)
{
	struct policy_rule	*r;

	if (src->deflt != NULL &&
	    strcmp(src->deflt->origin, POLICY_ORIGIN_CONTROL) == 0 &&
	    policy_copy_rule(dst, src->deflt) == -1)
		return -1;
	RB_FOREACH(r, policy_tree, policy_tree_of(&src->exact))
		if (strcmp(r->origin, POLICY_ORIGIN_CONTROL) == 0 &&
		    policy_copy_rule(dst, r) == -1)
			return -1;
	RB_FOREACH(r, policy_tree, policy_tree_of(&src->suffix))
		if (strcmp(r->origin, POLICY_ORIGIN_CONTROL) == 0 &&
		    policy_copy_rule(dst, r) == -1)
			return -1;
	return 0;
}

void
policy_foreach(const struct policy *p,
    void (*fn)(const struct policy_rule *, void *), void *arg)
{
	struct policy_rule	*r;

	if (p->deflt != NULL)
		fn(p->deflt, arg);
	RB_FOREACH(r, policy_tree, policy_tree_of(&p->exact))
		fn(r, arg);
	RB_FOREACH(r, policy_tree, policy_tree_of(&p->suffix))
		fn(r, arg);
}

enum policy_kind
policy_rule_kind(const struct policy_rule *r)
{
	return r->kind;
}

const char *
policy_rule_pattern(const struct policy_rule *r)
{
	return r->pattern;
}

const struct policy_settings *
policy_rule_settings(const struct policy_rule *r)
{
	return &r->settings;
}

const char *
policy_rule_origin(const struct policy_rule *r)
{
	return r->origin;
}

int
policy_rule_line(const struct policy_rule *r)
{
	return r->line;
}
