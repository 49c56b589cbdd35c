/*
 * daemon: the running gateway as one object: the event base, the current
 * configuration, listeners, the control socket, and the lifecycle (start,
 * reload, drain, stop). fedgated.c (main) drives it; control.c reads and
 * steers it through these functions only.
 */
#ifndef FEDGATE_DAEMON_H
#define FEDGATE_DAEMON_H

#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct config;
struct daemon;
struct priv;
struct tls;
struct resolve;
struct leg_env;
struct bundle;
struct policy_settings;
struct worker;

enum daemon_state {
	DAEMON_STARTING,
	DAEMON_RUNNING,
	DAEMON_DRAINING,	/* no new legs; waiting for queues to flush */
	DAEMON_STOPPED
};

/* Take over c (one reference). Return NULL on failure. */
struct daemon *daemon_new(struct event_base *base, struct config *c,
	    const char *config_path);
/* Close everything, unlink the control socket. daemon_free(NULL): no-op. */
void	daemon_free(struct daemon *);
/*
 * Bind the listeners and the control socket (before privileges are
 * dropped). Return 0, or -1 after logging why.
 */
int	daemon_bind(struct daemon *);
/*
 * Load the certificates of c's local domains into a new struct tls, reading
 * through b (NULL: the disk), as start-up and a reload do. Return it, or
 * NULL with the errors ("FILE:LINE: domain D: why", one per line) appended
 * to *errors.
 */
struct tls *daemon_load_tls(const struct config *c, struct bundle *b,
	    char **errors);
/*
 * Make d worker w of several (workers N; worker.h), before daemon_bind():
 * the listeners are bound with SO_REUSEPORT, the legs numbered apart, and
 * only worker 0 has the control socket, the metrics endpoint, tells the
 * service manager and saves the runtime policy. w stays the caller's.
 */
void	daemon_set_worker(struct daemon *, struct worker *w);
/* The worker d is, or NULL (one worker, set by nobody). */
struct worker *daemon_worker(const struct daemon *);
/* Start serving: accept on listeners and the control socket. */
void	daemon_run(struct daemon *);
/*
 * Re-read the configuration file: parse, validate, swap. With a priv set
 * (daemon_set_priv()), the privileged parent reads the files and this
 * process loads them from what it sends. Return 0; or -1
 * with *errors a malloc'd text (one "FILE:LINE: message" per line) and the
 * running configuration untouched.
 */
int	daemon_reload(struct daemon *, char **errors);
/*
 * Read reloads through p, the relay's channel to the privileged parent
 * (priv.h), instead of the disk. p stays the caller's.
 */
void	daemon_set_priv(struct daemon *, struct priv *p);
/*
 * Set a runtime peer rule for pattern (fedgatectl policy allow or deny):
 * in force at once over the file's rule for the same pattern, kept across
 * reloads, and saved in the state directory for the next start. Legs the
 * policy now denies are closed with policy-violation. Return the number of
 * legs closed, or -1 with err set (an invalid pattern or setting). A rule
 * in force that could not be saved sets save_err (else it is "").
 */
int	daemon_policy_set(struct daemon *, const char *pattern,
	    const struct policy_settings *s, char *err, size_t errlen,
	    char *save_err, size_t save_errlen);
/*
 * Remove the runtime rule for pattern (fedgatectl policy remove): the
 * file's rule, if it has one, is in force again. As daemon_policy_set();
 * -1 if pattern has no runtime rule.
 */
int	daemon_policy_remove(struct daemon *, const char *pattern, char *err,
	    size_t errlen, char *save_err, size_t save_errlen);
/* Stop accepting, drain, close every stream, then leave the event loop. */
void	daemon_stop(struct daemon *, const char *reason);

struct event_base *daemon_base(const struct daemon *);
/* The current configuration (borrowed: config_ref() to keep it). */
struct config *daemon_config(const struct daemon *);
const char *daemon_config_path(const struct daemon *);
enum daemon_state daemon_state(const struct daemon *);
const char *daemon_state_name(enum daemon_state);
/* Wall-clock start time (seconds since the epoch) and reload count. */
int64_t	daemon_started(const struct daemon *);
unsigned daemon_reloads(const struct daemon *);
/* The resolver and the current TLS contexts (borrowed; tls may be NULL). */
struct resolve *daemon_resolve(const struct daemon *);
/* The legs of d, and through them its routes (leg_env_routes()). */
struct leg_env *daemon_legs(const struct daemon *);
struct tls *daemon_tls(const struct daemon *);
/* Counts for status: listeners bound, legs open. */
unsigned daemon_listener_count(const struct daemon *);
unsigned daemon_leg_count(const struct daemon *);

#endif
