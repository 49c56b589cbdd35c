/*
 * The link-time fakes of the scenario runner (test_scenario.c): the
 * modules leg and route reach the world through (conn, timer, resolve,
 * tls) replaced by scripted ones. Each fake implements its module's
 * header as documented there; the functions below are how the runner
 * drives and inspects them. doc/internals/scenarios.md describes the
 * whole.
 */
#ifndef FEDGATE_TESTS_FAKE_H
#define FEDGATE_TESTS_FAKE_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "resolve.h"
#include "tls.h"

struct config;

/*
 * fake_timer.c: a clock that moves only when told, and the timers armed
 * on it.
 */
/* Forget every timer (they leak: scenario end) and set the clock. */
void	fake_timer_reset(uint64_t now);
uint64_t fake_timer_now(void);
/* Run the earliest timer due at or before until (the clock moves to its
 * due time first). Return false if none is due. */
bool	fake_timer_run_one(uint64_t until);
/* Move the clock to now (not backwards). */
void	fake_timer_set(uint64_t now);
/* Timers armed (due or not), once-calls included. */
unsigned fake_timer_armed(void);

/*
 * fake_conn.c: connections whose bytes the scenario writes and reads.
 */
enum fake_cert {
	FAKE_CERT_NONE,		/* the peer presented none */
	FAKE_CERT_INVALID,	/* the chain does not verify */
	FAKE_CERT_VALID		/* valid for the names given */
};

/* Free every conn (those the legs hold too: call after the legs). */
void	fake_conn_reset(void);
/* The conn named name, or NULL. */
struct conn *fake_conn_find(const char *name);
/* The oldest outgoing conn the scenario has not named yet, or NULL. */
struct conn *fake_conn_unclaimed(void);
/* The newest conn made by conn_new_accepted(), or NULL. */
struct conn *fake_conn_last_accepted(void);
void	fake_conn_set_name(struct conn *, const char *name);
const char *fake_conn_name(const struct conn *);
/* Whether c was made with an SSL (direct TLS). */
bool	fake_conn_is_direct_tls(const struct conn *);
/* Where an outgoing c connects to. */
const struct sockaddr *fake_conn_target(const struct conn *);
/* Bytes the leg wrote and the scenario has not matched yet. */
const char *fake_conn_output(const struct conn *, size_t *len);
void	fake_conn_consume(struct conn *, size_t len);
/* Deliver bytes from the peer (read callback now if reading is on). */
void	fake_conn_input(struct conn *, const char *data, size_t len);
/* Deliver an event to the leg. */
void	fake_conn_event(struct conn *, enum conn_event);
void	fake_conn_set_error(struct conn *, const char *text);
/* Whether a STARTTLS (or direct TLS) handshake waits for the scenario. */
bool	fake_conn_tls_pending(const struct conn *);
/* Finish it, the peer's certificate as given (names: space-separated). */
void	fake_conn_tls_finish(struct conn *, enum fake_cert,
	    const char *names);
bool	fake_conn_is_reading(const struct conn *);
/* Closed by the leg: conn_close() (graceful), conn_close_linger() (ours
 * closed, the peer's still read) or conn_free(). */
bool	fake_conn_is_closed(const struct conn *);
/* Whether the leg still reads what the peer sends: not closed, or
 * closed but lingering (conn_close_linger()). */
bool	fake_conn_is_readable(const struct conn *);
/* Every peer that our close left reading (conn_close_linger()) closes
 * its side (EOF). */
void	fake_conn_end_lingering(void);
/* Run one piece of pending work (a read callback, a CLOSED event).
 * Return false if there was none. */
bool	fake_conn_run_one(void);
/* Congestion as conn_is_congested() reports it; off reports DRAINED. */
void	fake_conn_set_congested(struct conn *, bool on);
/* The peer stops or starts reading: conn_output_length() counts what is
 * written meanwhile. */
void	fake_conn_set_stalled(struct conn *, bool on);
/* The read rate conn_set_rate() set (0: none). */
uint64_t fake_conn_rate(const struct conn *);
/* Iterate: conn i (0...), NULL past the end. */
struct conn *fake_conn_at(size_t i);
/* The peer certificate verdict of the conn holding ssl. */
enum tls_peer_status fake_conn_peer_check(SSL *ssl, const char *domain);

/*
 * fake_resolve.c: DNS answers from the scenario's table.
 */
void	fake_resolve_reset(void);
/* SRV answer for domain: targets "host:port[:tls]" space-separated, or a
 * status name ("nxdomain", "servfail", "timeout", "hang": never). */
int	fake_resolve_srv(const char *domain, const char *answer);
/* Address answer for host: "192.0.2.1 2001:db8::1" or a status name. */
int	fake_resolve_addr(const char *host, const char *answer);
/* Answer one pending question that the table knows. False if none. */
bool	fake_resolve_run_one(void);
/* The questions asked, "srv remote.example" or "addr host", one a
 * line, for messages. */
const char *fake_resolve_asked(void);

/*
 * fake_tls.c: a struct tls knowing which local domains have certificates.
 */
struct tls *fake_tls_new(const struct config *);
void	fake_tls_free(struct tls *);
/* Free the fake's SSL_CTX (end of the run). */
void	fake_tls_cleanup(void);

#endif
