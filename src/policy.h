/*
 * policy: peer rules and their matching. A rule matches a remote domain by
 * exact name, by "*.suffix" wildcard, or as the default rule; the most
 * specific rule wins (exact, then the longest suffix, then default).
 * "*.example.org" matches "a.example.org" and "b.a.example.org" but not
 * "example.org" itself: give that its own exact rule. Patterns and domains
 * are compared normalised (jid_domain_normalize(): IDNA2008 A-labels, lower
 * case, no trailing dot), so "*.Bücher.example." and "*.xn--bcher-kva.example"
 * are the same pattern. The keyword "default" (any case) names the default
 * rule, never a domain.
 *
 * A rule sets some of the settings below; what it leaves unset is taken from
 * the default rule, and what that leaves unset from the built-in defaults
 * (policy_settings_init()). The result is the effective settings. The
 * built-in defaults deny: a gateway with no rule (and no default rule that
 * allows) federates with nobody.
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

/*
 * The lowest TLS version a peer may negotiate (`tls min-version`). The
 * built-in minimum is TLS 1.2; a lower one is for a peer that cannot do
 * better, and lowers OpenSSL's security level on that peer's legs only.
 */
enum policy_tls_version {
	POLICY_TLS_V1_0,	/* "TLSv1" */
	POLICY_TLS_V1_1,	/* "TLSv1.1" */
	POLICY_TLS_V1_2,	/* "TLSv1.2", the built-in default */
	POLICY_TLS_V1_3		/* "TLSv1.3" */
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
#define POLICY_SET_TLS_MIN	0x400
#define POLICY_SET_CIPHERS	0x800
#define POLICY_SET_BIDI		0x1000
#define POLICY_SET_ALL		0x1fff

#define POLICY_ROUTE_HOST_MAX	256
#define POLICY_CIPHERS_MAX	256	/* bytes of `tls ciphers`, with NUL */

struct policy_settings {
	unsigned		 set;		/* POLICY_SET_* bits */
	bool			 allow;
	enum policy_tls		 tls;
	enum policy_verify	 verify;
	enum policy_auth	 auth;
	enum policy_resolve	 resolve;
	bool			 dane;		/* check TLSA records (DNSSEC) */
	bool			 bidi;		/* XEP-0288: offer and ask for
						   bidirectional streams */
	enum policy_tls_version	 tls_min;	/* lowest TLS version */
	/*
	 * The two texts are shared (policy_text()): settings are copied by
	 * value into every leg, and two pointers cost 16 bytes where two
	 * arrays cost 512 (bench/RESULTS.md, memory). Never NULL once
	 * policy_settings_init() ran.
	 */
	/* OpenSSL cipher list for TLS <= 1.2 on this peer's legs; "" none;
	 * shorter than POLICY_CIPHERS_MAX */
	const char		*ciphers;
	/* POLICY_SET_ROUTE covers route_host and route_port. "" none;
	 * shorter than POLICY_ROUTE_HOST_MAX */
	const char		*route_host;
	uint16_t		 route_port;
	uint64_t		 stanza_size;	/* bytes; 0: the global limit */
	/* POLICY_SET_RATE covers rate and burst. */
	uint64_t		 rate;		/* bytes/s per leg; 0: unlimited */
	uint64_t		 burst;		/* bytes; 0: same as rate */
	unsigned		 connections;	/* legs per domain; 0: unlimited */
};

struct policy_rule;
struct policy;

/*
 * The result of a match: the rule that matched (the default rule when no
 * exact or wildcard rule did; NULL when there is none) and the effective
 * settings: every field holds a value; settings.set has the bits of the
 * fields that the rule or the default rule supplied, the others hold the
 * built-in defaults. rule points into the policy: valid until that rule is
 * removed or replaced, or the policy freed.
 */
struct policy_match {
	const struct policy_rule *rule;
	struct policy_settings	 settings;	/* effective: every field set */
};

/*
 * Fill s with the built-in defaults, set = 0 (nothing set by a rule): deny,
 * TLS optional, certificate check optional, any authentication, SRV
 * resolution, no DANE, bidirectional streams (XEP-0288), TLS 1.2 at
 * least, the built-in ciphers (""), no static route, no limits of its
 * own (0).
 */
void	policy_settings_init(struct policy_settings *s);
/* Copy into dst the fields that src sets, and mark them set in dst. */
void	policy_settings_merge(struct policy_settings *dst,
	    const struct policy_settings *src);

/*
 * The shared copy of the text s: the same pointer for the same text, held
 * until the process ends (texts come from configuration and control
 * commands, a handful per policy; a text once used stays, however often
 * it is set again). NULL if out of memory.
 */
const char *policy_text(const char *s);

struct policy *policy_new(void);
void	policy_free(struct policy *);

/*
 * Add a rule for pattern: a domain ("example.org"), a wildcard
 * ("*.example.org") or "default". origin names where it comes from
 * ("/etc/fedgated/fedgated.conf" with its line, or "control" with line 0); it is
 * copied, and so are the settings (only the fields in s->set count). Return
 * 0, or -1 with a message in err (errlen bytes; err may be NULL) that does
 * not repeat origin and line:
 *	invalid domain "a..b"
 *	invalid settings for peer "x"		(an enum out of range)
 *	peer "x" is already defined at FILE:LINE	(or "at control")
 *	out of memory
 * where "x" is the pattern as given.
 */
int	policy_add(struct policy *, const char *pattern,
	    const struct policy_settings *, const char *origin, int line,
	    char *err, size_t errlen);
/* Add or replace. Same as policy_add() but an existing rule is replaced. */
int	policy_set(struct policy *, const char *pattern,
	    const struct policy_settings *, const char *origin, int line,
	    char *err, size_t errlen);
/*
 * Remove the rule for pattern (normalised first, so "Example.ORG." removes
 * the rule of "example.org"). Return 0, or -1 if there is none. A runtime
 * rule (origin "control") that replaced a rule of the file gives it back
 * its place: policy_set() of a runtime rule keeps the rule it replaces.
 */
int	policy_remove(struct policy *, const char *pattern);
/* policy_remove() if pattern's rule is a runtime rule; else -1. */
int	policy_remove_runtime(struct policy *, const char *pattern);
/*
 * Find the rule for the remote domain and fill m. The domain is normalised
 * first (jid_domain_normalize). Return 0; or -1 if the domain is invalid,
 * which is an error, not a non-match. With no rule at all, m->rule is NULL
 * and m->settings are the built-in defaults.
 */
int	policy_match(const struct policy *, const char *domain,
	    struct policy_match *m);
/*
 * Copy into dst every rule of src whose origin is "control", replacing
 * dst's rule for the same pattern (a runtime override beats the file).
 * Return 0, or -1 if out of memory (dst then holds some of the copies).
 */
int	policy_copy_overrides(struct policy *dst, const struct policy *src);

/*
 * Call fn for each rule: default first, then exact, then suffixes, each in
 * order of their normalised name. fn must not add or remove rules.
 */
void	policy_foreach(const struct policy *,
	    void (*fn)(const struct policy_rule *, void *), void *arg);

/* Accessors for a rule. */
enum policy_kind policy_rule_kind(const struct policy_rule *);
/* "example.org", "*.example.org" or "default". */
const char *policy_rule_pattern(const struct policy_rule *);
const struct policy_settings *policy_rule_settings(const struct policy_rule *);
const char *policy_rule_origin(const struct policy_rule *);
int	policy_rule_line(const struct policy_rule *);
/* Whether the rule was set at run time (origin "control"). */
bool	policy_rule_is_control(const struct policy_rule *);
/* The file's rule that a runtime rule hides, or NULL. */
const struct policy_rule *policy_rule_shadowed(const struct policy_rule *);
/*
 * Write r as one line of fedgated.conf syntax into buf:
 * peer "x.example" { deny } or peer "x.example" { allow; tls required }.
 * Only rules with nothing but allow, tls, verify and auth can be written
 * (what a runtime rule may set). Return 0, or -1 if it cannot be written
 * or does not fit.
 */
int	policy_rule_format(const struct policy_rule *r, char *buf, size_t len);

/*
 * Names for the enums ("none", "optional", "required"; "dialback",
 * "external", "any"; "srv", "original"; "unknown" for a value out of range),
 * and their parsers (exact, lower case; return 0 or -1).
 */
const char *policy_tls_name(enum policy_tls);
const char *policy_verify_name(enum policy_verify);
const char *policy_auth_name(enum policy_auth);
const char *policy_resolve_name(enum policy_resolve);
int	policy_tls_parse(const char *, enum policy_tls *);
int	policy_verify_parse(const char *, enum policy_verify *);
int	policy_auth_parse(const char *, enum policy_auth *);
int	policy_resolve_parse(const char *, enum policy_resolve *);
/*
 * `tls min-version` names: "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"
 * (OpenSSL's spelling; "unknown" out of range); the parser also takes
 * "TLSv1.0" for TLSv1. Return 0 or -1.
 */
const char *policy_tls_version_name(enum policy_tls_version);
int	policy_tls_version_parse(const char *, enum policy_tls_version *);
/*
 * The protocol version number of v as TLS writes it on the wire (and
 * OpenSSL's TLS1_VERSION... constants hold): 0x0301 for TLSv1 up to
 * 0x0304 for TLSv1.3; 0 out of range.
 */
int	policy_tls_version_number(enum policy_tls_version v);

#endif
