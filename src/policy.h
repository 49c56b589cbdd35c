/*
 * policy: peer rules and their matching. A rule matches a remote domain by
 * exact name, by "*.suffix" wildcard, or as the default rule; the most
 * specific rule wins (exact, then the longest suffix, then default).
 *
 * A rule sets some of the settings below; what it leaves unset is taken from
 * the default rule, and what that leaves unset from the built-in defaults
 * (policy_settings_init()). The result is the effective settings.
 *
 * Rules come from the configuration file or from the control socket (runtime
 * overrides); the latter survive a reload (policy_copy_overrides()).
 */
#ifndef FEDGATE_POLICY_H
#define FEDGATE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum policy_tls {
	POLICY_TLS_NONE,	/* never offer or use STARTTLS */
	POLICY_TLS_OPTIONAL,	/* offer and use it when the other side can */
	POLICY_TLS_REQUIRED	/* a stream without TLS is a policy violation */
};

enum policy_verify {
	POLICY_VERIFY_NONE,	/* do not ask for or check a certificate */
	POLICY_VERIFY_OPTIONAL,	/* check one if presented; use it if valid */
	POLICY_VERIFY_REQUIRED	/* a valid certificate for the domain is required */
};

enum policy_auth {
	POLICY_AUTH_DIALBACK = 1,
	POLICY_AUTH_EXTERNAL = 2,
	POLICY_AUTH_ANY = 3	/* POLICY_AUTH_DIALBACK | POLICY_AUTH_EXTERNAL */
};

enum policy_resolve {
	POLICY_RESOLVE_SRV,	/* _xmpp-server._tcp SRV, then A/AAAA */
	POLICY_RESOLVE_ORIGINAL	/* the conntrack original destination */
};

enum policy_kind {
	POLICY_EXACT,
	POLICY_SUFFIX,
	POLICY_DEFAULT
};

/* Bits of policy_settings.set: which fields a rule sets itself. */
#define POLICY_SET_ALLOW	0x001
#define POLICY_SET_TLS		0x002
#define POLICY_SET_VERIFY	0x004
#define POLICY_SET_AUTH		0x008
#define POLICY_SET_RESOLVE	0x010
#define POLICY_SET_ROUTE	0x020
#define POLICY_SET_STANZA_SIZE	0x040
#define POLICY_SET_RATE		0x080
#define POLICY_SET_CONNECTIONS	0x100
#define POLICY_SET_DANE		0x200

#define POLICY_ROUTE_HOST_MAX	256

struct policy_settings {
	unsigned		 set;		/* POLICY_SET_* bits */
	bool			 allow;
	enum policy_tls		 tls;
	enum policy_verify	 verify;
	enum policy_auth	 auth;
	enum policy_resolve	 resolve;
	bool			 dane;		/* check TLSA records (DNSSEC) */
	char			 route_host[POLICY_ROUTE_HOST_MAX]; /* "" none */
	uint16_t		 route_port;
	uint64_t		 stanza_size;	/* bytes; 0: the global limit */
	uint64_t		 rate;		/* bytes/s per leg; 0: unlimited */
	uint64_t		 burst;		/* bytes; 0: same as rate */
	unsigned		 connections;	/* legs per domain; 0: unlimited */
};

struct policy_rule;
struct policy;

/* The result of a match: the rule that matched and the effective settings. */
struct policy_match {
	const struct policy_rule *rule;
	struct policy_settings	 settings;	/* effective: every field set */
};

/* Fill s with the built-in defaults, set = 0 (nothing set by a rule). */
void	policy_settings_init(struct policy_settings *s);

struct policy *policy_new(void);
void	policy_free(struct policy *);

/*
 * Add a rule for pattern: a domain ("example.org"), a wildcard
 * ("*.example.org") or "default". origin names where it comes from
 * ("/etc/fedgated.conf" with its line, or "control" with line 0); it is
 * copied. Return 0, or -1 with a message in err (errlen bytes) if the pattern
 * is invalid or already has a rule.
 */
int	policy_add(struct policy *, const char *pattern,
	    const struct policy_settings *, const char *origin, int line,
	    char *err, size_t errlen);
/* Add or replace. Same as policy_add() but an existing rule is replaced. */
int	policy_set(struct policy *, const char *pattern,
	    const struct policy_settings *, const char *origin, int line,
	    char *err, size_t errlen);
/* Remove the rule for pattern. Return 0, or -1 if there is none. */
int	policy_remove(struct policy *, const char *pattern);
/*
 * Find the rule for the remote domain and fill m. The domain is normalised
 * first (jid_domain_normalize). Return 0; or -1 if the domain is invalid,
 * which is an error, not a non-match. With no rule at all, m->rule is NULL
 * and m->settings are the built-in defaults.
 */
int	policy_match(const struct policy *, const char *domain,
	    struct policy_match *m);
/* Copy into dst every rule of src whose origin is "control". */
int	policy_copy_overrides(struct policy *dst, const struct policy *src);

/* Call fn for each rule: default first, then exact, then suffixes. */
void	policy_foreach(const struct policy *,
	    void (*fn)(const struct policy_rule *, void *), void *arg);

/* Accessors for a rule. */
enum policy_kind policy_rule_kind(const struct policy_rule *);
/* "example.org", "*.example.org" or "default". */
const char *policy_rule_pattern(const struct policy_rule *);
const struct policy_settings *policy_rule_settings(const struct policy_rule *);
const char *policy_rule_origin(const struct policy_rule *);
int	policy_rule_line(const struct policy_rule *);

/* Names for the enums, and their parsers (return 0 or -1). */
const char *policy_tls_name(enum policy_tls);
const char *policy_verify_name(enum policy_verify);
const char *policy_auth_name(enum policy_auth);
const char *policy_resolve_name(enum policy_resolve);
int	policy_tls_parse(const char *, enum policy_tls *);
int	policy_verify_parse(const char *, enum policy_verify *);
int	policy_auth_parse(const char *, enum policy_auth *);
int	policy_resolve_parse(const char *, enum policy_resolve *);

#endif
