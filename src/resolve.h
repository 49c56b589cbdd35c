/*
 * resolve: asynchronous outbound discovery with libunbound on the libevent
 * loop. resolve_s2s() finds where a domain's S2S service lives (SRV
 * _xmpp-server._tcp and, on request (leg_out asks on public legs unless
 * policy says "tls none"), _xmpps-server._tcp of XEP-0368,
 * ordered per RFC 2782, or the RFC 6120 fallback to the domain itself on
 * port 5269); resolve_addresses() turns one target into socket addresses.
 * The caller walks targets and addresses in order to fail over. Results
 * carry the DNSSEC status for DANE.
 *
 * Not yet: resolve_tlsa(), TLSA records of _PORT._tcp.HOST for DANE
 * (RFC 7673), to be added beside resolve_addresses() with the same
 * request shape once tls.c has a DANE hook to feed.
 */
#ifndef FEDGATE_RESOLVE_H
#define FEDGATE_RESOLVE_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct resolve;
struct resolve_req;

/* Room for "forwarder 2001:db8::53 port 53" and the like. */
#define RESOLVE_WHO_MAX		96
/* Room for a host name of 253 characters and a NUL. */
#define RESOLVE_HOST_MAX	254
/* The RFC 6120 fallback port when a domain has no SRV records. */
#define RESOLVE_S2S_PORT	5269
/* Bounds on what one answer may contribute; the rest is dropped. */
#define RESOLVE_SRV_MAX		64	/* SRV records per query */
#define RESOLVE_ADDR_MAX	16	/* addresses per family */

enum resolve_status {
	RESOLVE_OK,
	RESOLVE_NXDOMAIN,	/* no such domain */
	RESOLVE_NODATA,		/* the name exists, without such records */
	RESOLVE_UNAVAILABLE,	/* SRV target ".": service decidedly absent */
	RESOLVE_TIMEOUT,	/* no answer within the resolver's timeout */
	RESOLVE_SERVFAIL,	/* server failure, refusal or a local error */
	RESOLVE_BOGUS		/* DNSSEC validation failed */
};

/* One place to connect to, in the order to try. */
struct resolve_target {
	char		 host[RESOLVE_HOST_MAX]; /* no trailing dot */
	uint16_t	 port;
	bool		 direct_tls;	/* from _xmpps-server: TLS at connect */
	bool		 secure;	/* its SRV answer was DNSSEC-secure */
	uint16_t	 priority;	/* from the SRV record (0 on fallback) */
	uint16_t	 weight;
};

struct resolve_targets {
	bool		 fallback;	/* no SRV: the domain itself, port 5269 */
	bool		 secure;	/* every answer used was DNSSEC-secure */
	size_t		 count;		/* at least 1 */
	struct resolve_target target[];
};

struct resolve_addr {
	struct sockaddr_storage	 ss;	/* AF_INET or AF_INET6, port set */
	socklen_t		 len;
};

struct resolve_addrs {
	bool		 secure;	/* A and AAAA answers DNSSEC-secure */
	size_t		 count;		/* at least 1 */
	struct resolve_addr addr[];	/* IPv6 first, then alternating */
};

/*
 * Create a resolver on base. Send queries to the numeric address forwarder
 * (IPv4 or IPv6) on port (0: 53), or with forwarder NULL to the name
 * servers of /etc/resolv.conf, with /etc/hosts consulted first. Every name
 * is asked of them, special-use ones (RFC 6761: test., invalid., ...) and
 * private reverse zones included: libunbound's default local zones are
 * dropped by resolve_start(). Each request gives up after timeout_ms
 * (> 0). libunbound answers in a thread of its own; callbacks run on
 * base's loop. Create it after daemonising. Return NULL on failure.
 */
struct resolve *resolve_new(struct event_base *base, const char *forwarder,
	    uint16_t port, uint64_t timeout_ms);
/*
 * Set the libunbound option name ("local-zone", with or without the colon
 * of unbound.conf(5)) to value, as ub_ctx_set_option() does, before
 * resolve_start(). A local-zone option keeps its zone even if it is one
 * of libunbound's defaults. module-config is refused. Return 0, or -1
 * with the reason logged.
 */
int	resolve_set_option(struct resolve *r, const char *name,
	    const char *value);
/*
 * Apply the configuration now, as the first request would otherwise do:
 * read the trust anchor files (call it before dropping privileges), build
 * the local zones, drop libunbound's default ones but those the options
 * named. Once only; later calls return the first one's result. Return 0,
 * or -1 with the reason logged (then every request fails to start).
 */
int	resolve_start(struct resolve *r);
/*
 * Whom r asks, for log lines: "forwarder 192.0.2.53 port 53" or "the
 * system resolver (/etc/resolv.conf)". Borrowed from r.
 */
const char *resolve_who(const struct resolve *r);
/*
 * Check, with a scratch libunbound context, that resolve_set_option()
 * with name and value, or a trust anchor rr (with file, a file of them)
 * would start: a file is read. Return 0, or -1 with libunbound's reason
 * in err.
 */
int	resolve_check_option(const char *name, const char *value, char *err,
	    size_t errlen);
int	resolve_check_trust_anchor(const char *rr, bool file, char *err,
	    size_t errlen);
/*
 * Cancel every outstanding request (no callback follows) and free r.
 * resolve_free(NULL) is a no-op. Safe to call from a resolve callback.
 */
void	resolve_free(struct resolve *r);
/*
 * Validate answers with DNSSEC from the trust anchor rr (a DS or DNSKEY
 * record in zone-file text, e.g. ". DS 20326 8 2 E06D...") or from a file
 * of such records (read by resolve_start()). Call before resolve_start().
 * Return 0 or -1.
 */
int	resolve_add_trust_anchor(struct resolve *r, const char *rr);
int	resolve_add_trust_anchor_file(struct resolve *r, const char *path);

/*
 * Find the S2S targets of domain (an A-label name): SRV _xmpp-server._tcp,
 * and with direct_tls_too also _xmpps-server._tcp, the two merged into one
 * RFC 2782 order (lowest priority first, weighted random within a
 * priority). Call cb once, later, from the loop:
 *  - RESOLVE_OK with targets (the caller owns them: resolve_targets_free).
 *    With no SRV record at all (NXDOMAIN or NODATA), targets is the single
 *    fallback {domain, 5269, plain}, marked fallback.
 *  - otherwise targets is NULL and status says why: RESOLVE_UNAVAILABLE
 *    when the only answers were "." (no fallback then, XEP-0368 §5 too),
 *    RESOLVE_TIMEOUT, RESOLVE_SERVFAIL or RESOLVE_BOGUS. A failed SRV
 *    lookup does not fall back: only a definite "no records" does.
 * If one of two queries gave usable targets, a failure or timeout of the
 * other does not fail the request (targets->secure is then false).
 * Return the request, to cancel it until cb runs, or NULL on failure (no
 * callback then).
 */
struct resolve_req *resolve_s2s(struct resolve *r, const char *domain,
	    bool direct_tls_too,
	    void (*cb)(enum resolve_status, struct resolve_targets *, void *),
	    void *arg);
/*
 * Find the addresses of host (A and AAAA at once), each with port set.
 * A numeric host is its own single answer. Call cb once, later, from the
 * loop: RESOLVE_OK with addrs (the caller owns them: resolve_addrs_free),
 * IPv6 first then alternating families (RFC 8305); if one family answered
 * and the other failed or timed out, the answered one is returned.
 * Otherwise addrs is NULL and status is RESOLVE_NXDOMAIN, RESOLVE_NODATA,
 * RESOLVE_TIMEOUT, RESOLVE_SERVFAIL or RESOLVE_BOGUS. Return the request
 * or NULL on failure (no callback then).
 */
struct resolve_req *resolve_addresses(struct resolve *r, const char *host,
	    uint16_t port,
	    void (*cb)(enum resolve_status, struct resolve_addrs *, void *),
	    void *arg);
/*
 * From within req's callback only: its outcome for a log line, naming who
 * answered and telling a local answer from one of the DNS, e.g. "nxdomain
 * from forwarder 192.0.2.53 port 53", "nxdomain, answered locally by
 * libunbound (lab.test. of a local zone of the resolver options or
 * /etc/hosts), not by the DNS: forwarder ... was not asked", "timeout: no
 * answer from ... within 10s". Return buf.
 */
const char *resolve_req_explain(const struct resolve_req *req, char *buf,
	    size_t len);
/*
 * From within an S2S request's callback only: the status of its SRV query
 * of _xmpps-server (direct_tls) or of _xmpp-server alone, e.g. NXDOMAIN
 * for one and OK for the other; RESOLVE_TIMEOUT if that query was not
 * answered in time, or was not asked (direct_tls_too false).
 */
enum resolve_status resolve_req_srv_status(const struct resolve_req *req,
	    bool direct_tls);
/*
 * Cancel req: its callback is not called, its memory is freed. Call it
 * only before the callback has run, or from within that callback (then it
 * does nothing): the request is gone once its callback returns.
 */
void	resolve_cancel(struct resolve_req *req);

/* Free results. NULL is a no-op. */
void	resolve_targets_free(struct resolve_targets *);
void	resolve_addrs_free(struct resolve_addrs *);

/* "ok", "nxdomain", "nodata", "unavailable", "timeout", "servfail", "bogus". */
const char *resolve_status_name(enum resolve_status);

#ifdef RESOLVE_PRIVATE
/* Put n SRV targets into RFC 2782 order, in place. */
void	resolve_order_targets(struct resolve_target *t, size_t n);
#endif

#endif
