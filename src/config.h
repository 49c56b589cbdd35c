/*
 * config: the running configuration as plain data. src/parse.y fills a
 * struct config from a file (the language is fedgated.conf(5));
 * config_defaults() and the object constructors in config.c are the one
 * place where defaults live; config_validate() checks what the grammar
 * cannot (settings that depend on each other).
 *
 * A struct config is reference counted: the daemon holds the current one,
 * and every leg keeps a reference to the config it started with, so that a
 * reload (parse a new one, validate, swap) never changes a leg's settings
 * under it.
 */
#ifndef FEDGATE_CONFIG_H
#define FEDGATE_CONFIG_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "policy.h"

struct bundle;

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR	"/run"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR	"/var"
#endif
#define CONFIG_DEFAULT_PATH	SYSCONFDIR "/fedgated/fedgated.conf"
#define CONFIG_DEFAULT_STATE	LOCALSTATEDIR "/lib/fedgated"
#define CONFIG_DEFAULT_CONTROL	RUNSTATEDIR "/fedgated/fedgated.sock"
#define CONFIG_DEFAULT_PORT	5269	/* wherever an XMPP port is optional */
#define CONFIG_DEFAULT_METRICS_PORT 9269
#define CONFIG_DEFAULT_RESOLVER_PORT 53
#define CONFIG_SECRET_MIN	16	/* least bytes of a dialback secret */
#define CONFIG_METRICS_DOMAINS_MAX 256	/* names in metrics domains */

/* Where a setting was written, for messages ("fedgated.conf:12"). */
struct config_origin {
	char	*file;		/* owned; the file as it was named */
	int	 line;
};

enum config_face {
	CONFIG_FACE_PUBLIC,		/* remote servers connect here */
	CONFIG_FACE_INTERNAL,		/* the internal server connects here */
	CONFIG_FACE_TRANSPARENT		/* redirected outbound (conntrack) */
};

/* listen public|internal|transparent on ADDR port N [tls] [proxy-protocol] */
struct config_listen {
	TAILQ_ENTRY(config_listen) entry;
	enum config_face	 face;
	char			*host;		/* numeric address or "*" */
	uint16_t		 port;
	bool			 direct_tls;	/* XEP-0368 direct TLS, else STARTTLS */
	bool			 proxy_protocol; /* expect a PROXY v2 header */
	struct sockaddr_storage	 addr;		/* host and port resolved */
	socklen_t		 addrlen;
	struct config_origin	 origin;
};
TAILQ_HEAD(config_listens, config_listen);

/* domain NAME { ... }: a local domain served by the internal server. */
struct config_domain {
	TAILQ_ENTRY(config_domain) entry;
	char			*name;		/* normalised public name */
	char			*internal_name;	/* normalised inside name, or NULL */
	char			*upstream_host;	/* internal server, host name or address */
	uint16_t		 upstream_port;
	bool			 upstream_proxy_protocol; /* send PROXY v2 on internal legs */
	bool			 upstream_transparent;	/* connect from the peer's address */
	bool			 upstream_trusted; /* accept its dialback without verify */
	char			*certificate;	/* PEM chain file, or NULL */
	char			*key;		/* PEM key file, or NULL */
	char			**more_certificates; /* the 2nd, 3rd... certificate */
	char			**more_keys;	/* the 2nd, 3rd... key */
	size_t			 nmore_certificates;
	size_t			 nmore_keys;
	bool			 subdomains;	/* covers names under it (local.h) */
	char			**subdomain_names; /* subdomains "a" "b": only
					   a.NAME and b.NAME (normalised,
					   relative); none: every name */
	size_t			 nsubdomain_names;
	struct config_origin	 origin;
};
TAILQ_HEAD(config_domains, config_domain);

/*
 * resolver option NAME VALUE, resolver trust-anchor [file] TEXT: handed to
 * libunbound in the order written.
 */
enum config_resolver_kind {
	CONFIG_RESOLVER_OPTION,		/* name and value */
	CONFIG_RESOLVER_TRUST_ANCHOR,	/* value: a DS or DNSKEY record */
	CONFIG_RESOLVER_TRUST_ANCHOR_FILE /* value: absolute path */
};

struct config_resolver_setting {
	TAILQ_ENTRY(config_resolver_setting) entry;
	enum config_resolver_kind kind;
	char			*name;		/* OPTION: "local-zone:" */
	char			*value;
	struct config_origin	 origin;
};
TAILQ_HEAD(config_resolver_settings, config_resolver_setting);

/* source public|internal ADDRESS: where outgoing legs of a face connect
 * from, one address per family. */
struct config_source {
	char			*host;		/* numeric, as written; NULL unset */
	struct sockaddr_storage	 addr;		/* port 0 */
	socklen_t		 addrlen;
	struct config_origin	 origin;
};

/* Unsupported keywords: parsed and validated, refused at start-up. */
struct config_unsupported {
	TAILQ_ENTRY(config_unsupported) entry;
	char			*keyword;
	struct config_origin	 origin;
};
TAILQ_HEAD(config_unsupporteds, config_unsupported);

struct config_limits {
	uint64_t	 stanza_size;		/* bytes of one stanza */
	uint64_t	 header_size;		/* bytes of a stream header */
	unsigned	 depth;			/* element nesting in a stanza */
	unsigned	 attributes;		/* attributes on one element */
	unsigned	 connections;		/* legs in total */
	unsigned	 connections_per_address; /* incoming legs per peer address */
	unsigned	 queue;			/* stanzas queued per route */
	uint64_t	 output_buffer;		/* bytes unsent on an incoming leg */
	unsigned	 domains_per_stream;	/* domain pairs on an incoming leg */
	unsigned	 verifications;		/* dialback verify legs in total */
	unsigned	 verifications_per_stream; /* started by one incoming leg */
	unsigned	 sasl_attempts;		/* SASL failures before the end */
	unsigned	 unacked;		/* stanzas per route awaiting an
						   acknowledgement; 0: none */
};

/*
 * The settings a file may give once; config->origins[] tells where each was
 * written (file NULL: not written, the default applies).
 */
enum config_setting {
	CONFIG_SET_USER,
	CONFIG_SET_GROUP,
	CONFIG_SET_PID_FILE,
	CONFIG_SET_LOG,			/* log syslog | log stderr */
	CONFIG_SET_LOG_LEVEL,
	CONFIG_SET_CONTROL,
	CONFIG_SET_METRICS,
	CONFIG_SET_DIALBACK,
	CONFIG_SET_CA_FILE,
	CONFIG_SET_CA_PATH,
	CONFIG_SET_RESOLVER,
	CONFIG_SET_KEEPALIVE,
	CONFIG_SET_STANZA_SIZE,
	CONFIG_SET_HEADER_SIZE,
	CONFIG_SET_DEPTH,
	CONFIG_SET_ATTRIBUTES,
	CONFIG_SET_CONNECTIONS,
	CONFIG_SET_PER_ADDRESS,
	CONFIG_SET_QUEUE,
	CONFIG_SET_OUTPUT_BUFFER,
	CONFIG_SET_DOMAINS_PER_STREAM,
	CONFIG_SET_VERIFICATIONS,
	CONFIG_SET_VERIFICATIONS_PER_STREAM,
	CONFIG_SET_SASL_ATTEMPTS,
	CONFIG_SET_UNACKED,
	CONFIG_SET_ACK,
	CONFIG_SET_HANDSHAKE,
	CONFIG_SET_CONNECT,
	CONFIG_SET_DNS,
	CONFIG_SET_IDLE,
	CONFIG_SET_SHUTDOWN,
	CONFIG_SET_STATE,
	CONFIG_SET_BACKOFF,
	CONFIG_SET_BACKOFF_MAX,
	CONFIG_SET_WORKERS,
	CONFIG_SET_MAX
};

/* workers N: the bounds of N (doc/internals/workers.md). */
#define CONFIG_WORKERS_MAX	64

struct config_timeouts {			/* all in milliseconds */
	uint64_t	 handshake;		/* open to authenticated */
	uint64_t	 connect;		/* TCP connect of an outgoing leg */
	uint64_t	 dns;			/* one resolution */
	uint64_t	 idle;			/* an outgoing leg with no traffic */
	uint64_t	 keepalive;		/* whitespace ping interval, 0 off */
	uint64_t	 shutdown;		/* drain time on SIGTERM */
	uint64_t	 ack;			/* for the answer to an ack ping */
	uint64_t	 backoff;		/* after a route's first failed
						   leg; 0: no backoff */
	uint64_t	 backoff_max;		/* the longest backoff */
};

struct config {
	unsigned		 refs;
	char			*path;		/* the file this came from */

	/* process */
	char			*user;		/* NULL: stay as started */
	char			*group;
	char			*pid_file;	/* NULL: none */
	char			*state_dir;	/* runtime policy rules live here */
	unsigned		 workers;	/* relay processes, 1 to
						   CONFIG_WORKERS_MAX */

	/* logging */
	bool			 log_syslog;	/* else stderr */
	int			 log_facility;	/* syslog facility */
	enum log_level		 log_level;

	/* control socket */
	char			*control_path;
	mode_t			 control_mode;
	char			*control_group;	/* NULL: root only mutates */

	/* metrics over HTTP (NULL host: off) */
	char			*metrics_host;
	uint16_t		 metrics_port;
	struct config_origin	 metrics_origin;
	char			**metrics_domains; /* normalised; their own label */
	size_t			 nmetrics_domains;

	/* dialback */
	char			*dialback_secret; /* NUL-terminated secret bytes */
	size_t			 dialback_secret_len;

	/* TLS trust */
	char			*ca_file;
	char			*ca_path;

	/* DNS: NULL forwarder means the system resolver (resolv.conf) */
	char			*resolver;	/* numeric address */
	uint16_t		 resolver_port;
	struct config_resolver_settings resolver_settings;

	/* source addresses: [public, internal][IPv4, IPv6] */
	struct config_source	 sources[2][2];

	struct config_limits	 limits;
	struct config_timeouts	 timeouts;
	struct config_listens	 listens;
	struct config_domains	 domains;
	struct policy		*policy;	/* peer rules; never NULL */
	struct config_unsupporteds unsupported;

	/* where each once-only setting was written */
	struct config_origin	 origins[CONFIG_SET_MAX];
};

/*
 * Parse the file at path into a new config (refs 1) with defaults for
 * everything unset, and validate it. Return it, or NULL with *errors set to
 * a malloc'd text of every error of the file, one per line, each
 * "FILE:LINE: message" (the caller frees it). Errors are appended: *errors
 * may already hold text, or be NULL. Validation runs only on a file without
 * syntax errors. Relative paths in the file (include, certificate...) are
 * taken from the directory of the file that names them.
 */
struct config *config_load(const char *path, char **errors);
/*
 * config_load() reading the file and every file it names (include, dialback
 * secret file) through b (bundle.h): NULL reads the disk, a recording
 * bundle reads the disk and keeps a copy of each file read, a replaying
 * bundle answers from its copies only. Error texts are those of
 * config_load(). Not reentrant (one load at a time).
 */
struct config *config_load_bundle(const char *path, struct bundle *b,
	    char **errors);
/*
 * Same as config_load() for a text in memory, named name in messages (and
 * whose directory resolves relative paths). include is refused unless
 * allow_include is set. text need not be NUL-terminated.
 */
struct config *config_load_buffer(const char *name, const char *text,
	    size_t len, bool allow_include, char **errors);
/*
 * Append to *errors one "FILE:LINE: \"kw\" is not supported yet" line for
 * each keyword of c whose behaviour does not exist yet (the table
 * config_unsupported_keywords in config.c). Return how many.
 */
int	config_check_supported(const struct config *c, char **errors);

struct config *config_ref(struct config *);
/* Drop a reference; free c on the last. config_unref(NULL) is a no-op. */
void	config_unref(struct config *c);

/* The local domain whose public name (normalised) is name, or NULL. */
const struct config_domain *config_domain_find(const struct config *,
	    const char *name);
/*
 * The local domain whose internal name is name (its public name when it has
 * no internal name), or NULL.
 */
const struct config_domain *config_domain_find_internal(const struct config *,
	    const char *name);

/*
 * The source address configured for outgoing legs of face towards an
 * address of family (AF_INET, AF_INET6), or NULL: let the kernel choose.
 */
const struct config_source *config_source(const struct config *,
	    enum config_face face, int family);
/*
 * Check with libunbound what only it can check of c's resolver settings:
 * each option, each trust anchor (files are read). Append one
 * "FILE:LINE: message" to *errors for each refused. Return their number.
 * For start-up and fedgated -n, not for reloads (the resolver stays as it
 * started).
 */
int	config_check_resolver(const struct config *c, char **errors);
/*
 * Whether c uses a transparent feature: a transparent listener, a
 * transparent upstream, or a peer rule with resolve original. Only then
 * does the relay keep CAP_NET_ADMIN (conntrack, transparent sockets).
 */
bool	config_uses_transparent(const struct config *c);

/* "public", "internal", "transparent". */
const char *config_face_name(enum config_face);
/* "user", "limit stanza-size"...: a setting as written in the file. */
const char *config_setting_name(enum config_setting);

#ifdef CONFIG_PRIVATE
/*
 * Between src/parse.y and src/config.c (and the unit tests). Not for other
 * modules.
 */
#define CONFIG_FILE_MAX		(4 * 1024 * 1024) /* bytes of one file */

/* A new config (refs 1) holding the defaults, or NULL. */
struct config *config_new(void);
/* Set every global setting of c to its default. */
void	config_defaults(struct config *c);
/* A new listener or domain holding its defaults, or NULL. */
struct config_listen *config_listen_new(void);
struct config_domain *config_domain_new(void);
void	config_listen_free(struct config_listen *);
void	config_resolver_setting_free(struct config_resolver_setting *);
void	config_domain_free(struct config_domain *);
/*
 * Parse text (len bytes) named name into c, appending each error to
 * *errors. Return the number of errors.
 */
int	config_parse(struct config *c, const char *name, const char *text,
	    size_t len, bool allow_include, char **errors);
/* Check what the grammar cannot; append errors. Return their number. */
int	config_validate(struct config *c, char **errors);
/* Append "file:line: message" (file NULL: no prefix). Return -1 if OOM. */
int	config_add_error(char **errors, const char *file, int line,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Entry i of the unsupported table, or NULL past its end. */
const char *config_unsupported_keyword(size_t i);
/*
 * Record that keyword was used at file:line if it is in the unsupported
 * table. Return 0, or -1 if out of memory.
 */
int	config_note_keyword(struct config *c, const char *keyword,
	    const char *file, int line);
/*
 * Read the whole regular file at path (at most max bytes) into a malloc'd,
 * NUL-terminated *buf of *len bytes, through the bundle of the
 * config_load_bundle() under way (the disk otherwise). Return 0, or -1
 * with a message in err.
 */
/*
 * The mode (and, when the disk answered, device and inode; else 0) of the
 * file at path, as config_read_file() would see it: from the disk, or
 * from the bundle of the config_load_bundle() in progress (bundle_stat()).
 * Return 0, or -1 with errno set.
 */
int	config_stat(const char *path, mode_t *mode, dev_t *dev, ino_t *ino);
int	config_read_file(const char *path, size_t max, char **buf,
	    size_t *len, char *err, size_t errlen);
/*
 * Read a dialback secret from the file at path (written as shown in
 * messages). Check that only its owner may read or write it and that it
 * holds at least CONFIG_SECRET_MIN bytes after dropping a trailing newline.
 * Read through the bundle of the config_load_bundle() under way, as
 * config_read_file(). Return 0, or -1 with a message in err.
 */
int	config_read_secret(const char *path, const char *shown, char **secret,
	    size_t *len, char *err, size_t errlen);
/*
 * Where file:line is, as seen from a message about file here: "line 12"
 * in the same file, else "other.conf:12". Return buf.
 */
const char *config_where(const char *here, const char *file, int line,
	    char *buf, size_t len);
/* True if the keyword table of the lexer is sorted (for bsearch). */
bool	config_keywords_are_sorted(void);
#endif

#endif
