/*
 * config: the running configuration as plain data. src/parse.y fills a
 * struct config from a file; config_defaults() is the one place where
 * defaults live; config_validate() checks what the grammar cannot.
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

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR	"/run"
#endif
#define CONFIG_DEFAULT_PATH	SYSCONFDIR "/fedgated.conf"
#define CONFIG_DEFAULT_CONTROL	RUNSTATEDIR "/fedgated/fedgated.sock"
#define CONFIG_DEFAULT_PORT	5269

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
	struct config_origin	 origin;
};
TAILQ_HEAD(config_domains, config_domain);

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
};

struct config_timeouts {			/* all in milliseconds */
	uint64_t	 handshake;		/* open to authenticated */
	uint64_t	 connect;		/* TCP connect of an outgoing leg */
	uint64_t	 dns;			/* one resolution */
	uint64_t	 idle;			/* an outgoing leg with no traffic */
	uint64_t	 keepalive;		/* whitespace ping interval, 0 off */
	uint64_t	 shutdown;		/* drain time on SIGTERM */
};

struct config {
	unsigned		 refs;
	char			*path;		/* the file this came from */

	/* process */
	char			*user;		/* NULL: stay as started */
	char			*group;
	char			*pid_file;	/* NULL: none */

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

	/* dialback */
	char			*dialback_secret; /* NUL-terminated secret bytes */
	size_t			 dialback_secret_len;

	/* TLS trust */
	char			*ca_file;
	char			*ca_path;

	/* DNS: NULL forwarder means the system resolver (resolv.conf) */
	char			*resolver;	/* numeric address */
	uint16_t		 resolver_port;

	struct config_limits	 limits;
	struct config_timeouts	 timeouts;
	struct config_listens	 listens;
	struct config_domains	 domains;
	struct policy		*policy;	/* peer rules; never NULL */
	struct config_unsupporteds unsupported;
};

/*
 * Parse the file at path into a new config (refs 1) with defaults for
 * everything unset, and validate it. Return it, or NULL with *errors set to
 * a malloc'd text of every error of the file, one per line, each
 * "FILE:LINE: message" (the caller frees it).
 */
struct config *config_load(const char *path, char **errors);
/*
 * Same as config_load() for a text in memory, named name in messages.
 * include is refused (there is no directory to resolve it against) unless
 * allow_include is set.
 */
struct config *config_load_buffer(const char *name, const char *text,
	    size_t len, bool allow_include, char **errors);
/*
 * Append to *errors one "FILE:LINE: \"kw\" is not supported yet" line for
 * each keyword of c whose behaviour does not exist yet. Return how many.
 */
int	config_check_supported(const struct config *c, char **errors);

struct config *config_ref(struct config *);
/* Drop a reference; free c on the last. config_unref(NULL) is a no-op. */
void	config_unref(struct config *c);

/* The local domain whose public name (normalised) is name, or NULL. */
const struct config_domain *config_domain_find(const struct config *,
	    const char *name);
/* The local domain whose internal name (or public name) is name, or NULL. */
const struct config_domain *config_domain_find_internal(const struct config *,
	    const char *name);

const char *config_face_name(enum config_face);

#endif
