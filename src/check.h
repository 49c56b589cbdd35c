/*
 * check: `fedgatectl check DOMAIN`, the classic verification steps of a
 * federation deployment run from fedgated's own resolver and network
 * position: SRV records, addresses, TCP reach, stream open, STARTTLS, TLS,
 * the certificate's names, dialback and SASL EXTERNAL offered; for a local
 * domain, that its SRV records point at this gateway and that its upstream
 * answers.
 *
 * Two halves. check.c is sans I/O: the report (steps, one verdict and
 * reason each, bounded), the outcome of a tally, and the probe, the state
 * machine of one XMPP conversation with one address: events in (connected,
 * bytes, TLS done, failed, timed out), an action out (bytes to write are in
 * its output buffer), steps appended to the report. It never
 * authenticates: no db:result, no SASL <auth/>. check_run.c is the I/O:
 * DNS (resolve.h), sockets and TLS (conn.h, tls.h), timers, and the walk
 * over targets and addresses, all on the libevent loop.
 */
#ifndef FEDGATE_CHECK_H
#define FEDGATE_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "tls.h"

struct config;
struct event_base;
struct resolve;
struct tls;
struct xmpp_buf;

/* Bounds on one check. */
#define CHECK_STEPS_MAX		64	/* report lines; more are counted */
#define CHECK_TARGETS_MAX	6	/* SRV targets looked at */
#define CHECK_ADDRS_MAX		4	/* addresses per target */
#define CHECK_PROBES_MAX	8	/* addresses probed per check */
#define CHECK_INPUT_MAX		(64 * 1024) /* bytes read from one address */
#define CHECK_STEP_MS		5000	/* one probe state (connect, header...) */
#define CHECK_CLOSE_MS		2000	/* the peer's </stream:stream> */
#define CHECK_TIME_MS		40000	/* the whole check */

#define CHECK_NAME_MAX		16
#define CHECK_SUBJECT_MAX	300
#define CHECK_REASON_MAX	600

enum check_verdict {
	CHECK_OK,
	CHECK_WARN,		/* works, but worth a look */
	CHECK_FAIL,		/* this step is broken */
	CHECK_SKIP		/* not run: say why */
};

/* One report line: "ok  tcp  192.0.2.1:5269  connected". */
struct check_step {
	char			 name[CHECK_NAME_MAX];	/* "srv", "tcp"... */
	char			 subject[CHECK_SUBJECT_MAX]; /* what it is about */
	enum check_verdict	 verdict;
	char			 reason[CHECK_REASON_MAX];
};

struct check_report {
	struct check_step	 step[CHECK_STEPS_MAX];
	size_t			 nsteps;
	size_t			 dropped;	/* steps past CHECK_STEPS_MAX */
};

/*
 * Append a step to r; past CHECK_STEPS_MAX count it in r->dropped. Text is
 * truncated to the fields' sizes. Return the verdict, for chaining.
 */
enum check_verdict check_report_add(struct check_report *r, const char *name,
	    const char *subject, enum check_verdict v, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
/* "ok", "warn", "fail", "skip". */
const char *check_verdict_name(enum check_verdict);

/* Would federation with the domain work? */
enum check_outcome {
	CHECK_WORKS,		/* yes: fedgatectl exits 0 */
	CHECK_BROKEN,		/* no: exits 1 */
	CHECK_UNKNOWN		/* cannot tell (timeouts, errors): exits 2 */
};

/* What the steps of one check add up to. */
struct check_tally {
	unsigned	 working;	/* addresses (or local checks) with no fail */
	unsigned	 broken;	/* addresses probed with a fail */
	unsigned	 unknown;	/* DNS timeouts or server failures, probes
					   cut short by the check's deadline */
	unsigned	 fatal;		/* fails that break federation whatever
					   the addresses say (no SRV service,
					   a local domain's gateway or upstream) */
};

/*
 * The outcome of t: BROKEN with any fatal fail; else WORKS with a working
 * address; else UNKNOWN when something could not be told; else BROKEN.
 */
enum check_outcome check_outcome(const struct check_tally *t);
/* "yes", "no", "unknown". */
const char *check_outcome_name(enum check_outcome);

/*
 * The probe: one conversation with one address.
 *
 *   CONNECTING -> WAIT_HEADER -> WAIT_FEATURES -> WAIT_PROCEED -> STARTTLS
 *     -> WAIT_HEADER_TLS -> WAIT_FEATURES_TLS -> CLOSING -> DONE
 *
 * Direct TLS (XEP-0368) goes CONNECTING -> STARTTLS (the handshake at
 * connect) -> WAIT_HEADER_TLS. Without STARTTLS offered (or with policy
 * "tls none") WAIT_FEATURES goes to CLOSING. An upstream probe (the
 * internal server) stops after WAIT_FEATURES. Any failure goes to DONE.
 */
enum check_probe_state {
	CHECK_PROBE_CONNECTING,
	CHECK_PROBE_WAIT_HEADER,
	CHECK_PROBE_WAIT_FEATURES,
	CHECK_PROBE_WAIT_PROCEED,
	CHECK_PROBE_STARTTLS,		/* TLS handshake running */
	CHECK_PROBE_WAIT_HEADER_TLS,
	CHECK_PROBE_WAIT_FEATURES_TLS,
	CHECK_PROBE_CLOSING,		/* our </stream:stream> sent */
	CHECK_PROBE_DONE
};

enum check_probe_mode {
	CHECK_PROBE_REMOTE,		/* plain connect, STARTTLS if offered */
	CHECK_PROBE_DIRECT_TLS,		/* _xmpps-server: TLS at connect */
	CHECK_PROBE_UPSTREAM		/* internal server: header, features */
};

/* What the I/O side must do after an event (the output buffer first). */
enum check_action {
	CHECK_ACT_NONE,			/* write what is buffered; wait */
	CHECK_ACT_STARTTLS,		/* write, then start TLS as client */
	CHECK_ACT_CLOSE			/* write, then close: the probe is DONE */
};

struct check_probe_params {
	enum check_probe_mode	 mode;
	const char		*subject;	/* "192.0.2.1:5269" */
	const char		*from;		/* our header's from; NULL none */
	const char		*to;		/* our header's to */
	const char		*domain;	/* the certificate must name it */
	enum policy_tls		 tls;		/* DOMAIN's policy */
	enum policy_verify	 verify;
};

/* The TLS outcome, as tls.c tells it, for check_probe_tls_done(). */
struct check_tls_info {
	const char		*description;	/* "TLSv1.3 TLS_AES_..." */
	enum tls_peer_status	 status;	/* for params.domain */
	const char		*chain_error;	/* NULL if the chain is valid */
	const char		*names;		/* the certificate's names */
	int64_t			 not_after;	/* epoch seconds, -1 unknown */
	int64_t			 now;
};

struct check_probe;

/*
 * Start a probe in CONNECTING, recording into report (borrowed: it must
 * outlive the probe). Strings of params are copied. Return NULL if out of
 * memory.
 */
struct check_probe *check_probe_new(struct check_report *report,
	    const struct check_probe_params *params);
/* Free p. NULL is a no-op. */
void	check_probe_free(struct check_probe *p);
enum check_probe_state check_probe_state(const struct check_probe *p);
const char *check_probe_state_name(enum check_probe_state);
/* Whether a step of p failed: federation through this address is broken. */
bool	check_probe_has_failed(const struct check_probe *p);
/* The bytes to write now (our header, <starttls/>, the close); the I/O side
 * writes and then empties it (xmpp_buf_reset()). Borrowed from p. */
struct xmpp_buf *check_probe_output(struct check_probe *p);

/*
 * Events. Each returns what to do next; CLOSE means p is DONE.
 *
 * The TCP connect (and, with direct TLS, nothing else yet) succeeded, in
 * elapsed_ms.
 */
enum check_action check_probe_connected(struct check_probe *p,
	    uint64_t elapsed_ms);
/*
 * len bytes arrived. p takes what it can; store in *used how many (all of
 * them unless an action stops it: the rest is not p's, e.g. TLS after
 * <proceed/>). A peer sending more than CHECK_INPUT_MAX bytes fails.
 */
enum check_action check_probe_input(struct check_probe *p, const char *buf,
	    size_t len, size_t *used);
/* The TLS handshake (STARTTLS or direct) finished, with info. */
enum check_action check_probe_tls_done(struct check_probe *p,
	    const struct check_tls_info *info);
/* The connection failed or the peer closed it; why says how. */
enum check_action check_probe_failed(struct check_probe *p, const char *why);
/* The current state lasted too long (timeout_ms). */
enum check_action check_probe_timeout(struct check_probe *p,
	    uint64_t timeout_ms);

/*
 * The I/O half (check_run.c).
 */

/*
 * What a check runs with; the config is referenced while it runs. The TLS
 * contexts change on reload: tls(tls_arg) gives the current ones each time
 * they are needed (NULL: no TLS possible).
 */
struct check_env {
	struct event_base	*base;
	struct resolve		*resolve;	/* lives longer than any check */
	struct tls		*(*tls)(void *);
	void			*tls_arg;
	struct config		*config;
};

struct check;

/*
 * Check domain (normalised), sending from (a local domain, or NULL: the
 * first one) in our stream headers. Call done(ch, arg) once, later, from
 * the loop, within CHECK_TIME_MS and a little; the caller then frees ch
 * with check_free() (inside done is fine). Return NULL, with err set, if
 * the check cannot start (no local domain to speak for, out of memory).
 */
struct check *check_start(const struct check_env *env, const char *domain,
	    const char *from, void (*done)(struct check *, void *), void *arg,
	    char *err, size_t errlen);
/* Stop ch (no callback follows) and free it. NULL is a no-op. */
void	check_free(struct check *ch);
/* After done: the report, the outcome, and facts for the reply. */
const struct check_report *check_report(const struct check *ch);
enum check_outcome check_result(const struct check *ch);
const char *check_domain(const struct check *ch);
const char *check_from(const struct check *ch);
bool	check_is_local(const struct check *ch);
uint64_t check_elapsed_ms(const struct check *ch);

#endif
