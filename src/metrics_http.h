/*
 * metrics_http: the Prometheus endpoint (metrics listen on ADDR port N),
 * an evhttp server in the relay that answers GET /metrics with
 * metrics_http_render(), and the collection of the live values that
 * rendering needs (legs, routes), which fedgatectl metrics uses too.
 *
 * Bounds: request headers 8 KiB, no request body, 10 s to send a request
 * (and between requests on a kept-alive connection), at most
 * METRICS_HTTP_CLIENTS connections served at once (a request on one more
 * is answered 503 and its connection closed). Only GET /metrics is
 * served: any other path is 404, another method on /metrics 405.
 */
#ifndef FEDGATE_METRICS_HTTP_H
#define FEDGATE_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct leg_env;
struct metrics_http;
struct worker;

#define METRICS_HTTP_CLIENTS	16
#define METRICS_HTTP_HEADERS	8192	/* bytes of a request's headers */
#define METRICS_HTTP_TIMEOUT	10	/* seconds */

/*
 * Bind host (numeric or "*") and port, before privileges are dropped; the
 * server answers once the loop runs and metrics_http_enable() was called,
 * with the live values of legs (kept). Return it, or NULL with the reason
 * in err.
 */
struct metrics_http *metrics_http_new(struct event_base *,
	    struct leg_env *legs, const char *host, uint16_t port, char *err,
	    size_t errlen);
/*
 * Serve the sum of the expositions of every worker (workers N): worker 0's
 * endpoint asks the others through w (worker.h) for theirs at each GET,
 * and answers 503 if one gives none within 5 s. w stays the caller's.
 */
void	metrics_http_set_worker(struct metrics_http *, struct worker *w);
/* Start or stop accepting. */
void	metrics_http_enable(struct metrics_http *, int on);
/* Close the socket and every connection. metrics_http_free(NULL): no-op. */
void	metrics_http_free(struct metrics_http *);
/* The bound address as text. */
const char *metrics_http_address(const struct metrics_http *);

/*
 * Append the whole exposition, the live values of legs and their routes
 * collected now, to out. Return 0, or -1 if out of memory.
 */
int	metrics_http_render(struct leg_env *legs, struct evbuffer *out);

#endif
