/*
 * metrics: the counters that outlive legs and routes, kept per listener
 * and per peer domain, and their Prometheus text exposition (the families
 * are listed in fedgated(8), METRICS).
 *
 * Two halves. The hooks (metrics_leg_*, metrics_stream_*, metrics_stanza_*
 * ...) are called from the leg and route code, one line each, with plain
 * values: this header includes nothing above config.h and xmpp.h, so that
 * any layer may count into it, as any layer may log. The rendering
 * (metrics_render) is sans-I/O: it appends text to an evbuffer; the
 * values that only exist while legs and routes do (open legs, queues, the
 * bytes of live legs) are handed in first by the caller, which sits on
 * top of the leg and route modules (metrics_http.c).
 *
 * Label cardinality is bounded: a peer domain gets its own label value
 * only if the configuration lists it (metrics domains, fedgated.conf(5));
 * every other domain, and a leg whose peer is not known yet, is "other".
 * The peer domain of a leg or a route is the remote XMPP domain on the
 * public face, and on the internal face the remote domain fedgated
 * presents itself as: the same domain on both sides of the gateway.
 * Every other label takes its values from a fixed set.
 */
#ifndef FEDGATE_METRICS_H
#define FEDGATE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config.h"
#include "xmpp.h"

struct evbuffer;
struct route_origin;

#define METRICS_SERIES_MAX	50000	/* label sets over all families */

/* Why a connection (before any stream) was refused: its reason label. */
enum metrics_refusal {
	METRICS_REFUSED_LIMIT,		/* a connection limit was reached */
	METRICS_REFUSED_TLS,		/* no certificate for direct TLS */
	METRICS_REFUSED_INTERNAL	/* out of memory */
};

/*
 * Copy c's metrics domains (normalised names). Call at start-up and at
 * each reload; series already counted keep their labels.
 */
int	metrics_configure(const struct config *c);
/* Forget every counter and record (tests, exit). */
void	metrics_reset(void);

/*
 * Listeners. metrics_listener_add() names one (its address as text, and
 * its face) and returns its number for metrics_connection(), or -1 past
 * the limit. metrics_connection() counts a TCP connection accepted on it
 * and makes it the listener that metrics_connection_refused() charges,
 * until the next metrics_connection(): call both from within the accept.
 */
int	metrics_listener_add(const char *address, enum config_face face);
void	metrics_connection(int listener);
void	metrics_connection_refused(enum metrics_refusal why);

/*
 * Legs, by id. The leg's face, direction and its domains as they are on
 * the stream (local: ours; remote: the peer's; "" unknown) give the face,
 * direction and domain labels.
 *
 * metrics_leg_started: the TCP connection is there (accepted, or our
 * connect finished): the start of the handshake time.
 * metrics_stream_opened: a stream header was accepted (the first one
 * counts the stream as accepted; each one restarts the authentication
 * time, so that a STARTTLS or SASL restart belongs to the handshake).
 * metrics_stream_refused: we end the stream with cond because of what the
 * peer did or did not do (mapped to a small set of reason labels).
 * metrics_leg_auth: a domain authenticated with method (leg_auth_name():
 * "dialback", "dialback+cert", "sasl-external", "trusted"), or failed to;
 * the first success of a leg observes both histograms.
 * metrics_leg_end: the leg is gone, with its byte totals.
 */
void	metrics_leg_started(uint64_t id);
void	metrics_stream_opened(uint64_t id, enum config_face face,
	    bool outgoing, const char *local, const char *remote);
void	metrics_stream_refused(enum config_face face, bool outgoing,
	    const char *local, const char *remote, enum xmpp_stream_error cond);
void	metrics_leg_auth(uint64_t id, enum config_face face, bool outgoing,
	    const char *local, const char *remote, const char *method, bool ok);
void	metrics_leg_tls(enum config_face face, bool outgoing, const SSL *ssl);
void	metrics_leg_end(uint64_t id, enum config_face face, bool outgoing,
	    const char *local, const char *remote, uint64_t bytes_in,
	    uint64_t bytes_out);

/*
 * One stanza read from (outgoing false) or written to a leg. The caller
 * keeps *cache (zeroed at first) per leg, or per domain pair on an
 * incoming leg, with the same face, direction and domains at every call:
 * the series is then looked up once, not per stanza (a reload or a reset
 * makes the next call look it up again).
 */
struct metrics_series;
struct metrics_counter {
	struct metrics_series	*series;
	unsigned		 generation;
};
void	metrics_stanza(struct metrics_counter *cache, enum config_face face,
	    bool outgoing, const char *local, const char *remote);
/* A stanza answered with an error (bounced), or lost (dropped), with
 * cond; o is where it came from. */
void	metrics_stanza_bounced(const struct route_origin *o,
	    enum xmpp_stanza_error cond);
void	metrics_stanza_dropped(const struct route_origin *o,
	    enum xmpp_stanza_error cond);
/* A DNS answer of kind ("srv", "address") with status
 * (resolve_status_name()). */
void	metrics_dns(const char *kind, const char *status);

/*
 * Rendering. metrics_live_begin() zeroes the gauges; then the caller
 * hands in every live leg and route; metrics_render() appends the
 * exposition (text format 0.0.4) to out. Return 0, or -1 if out of memory.
 */
void	metrics_live_begin(void);
void	metrics_live_leg(uint64_t id, enum config_face face, bool outgoing,
	    const char *local, const char *remote, uint64_t bytes_in,
	    uint64_t bytes_out);
void	metrics_live_route(enum config_face face, const char *local,
	    const char *remote, size_t queued);
/* Totals without labels, from route_get_counters(). */
void	metrics_live_acks(uint64_t acked, uint64_t resent);
int	metrics_render(struct evbuffer *out);

#ifdef METRICS_PRIVATE
/* Escape a label value (backslash, double quote, newline) into buf.
 * Return buf, or NULL if it does not fit. */
const char *metrics_escape(const char *value, char *buf, size_t len);
/* The label value of the peer domain of (face, local, remote). */
const char *metrics_domain_label(enum config_face face, const char *local,
	    const char *remote);
/* Observe ms in a histogram of the handshake family (for tests). */
void	metrics_observe_handshake(enum config_face face, bool outgoing,
	    uint64_t ms);
size_t	metrics_series_count(void);
#endif

#endif
