/*
 * conn: one TCP connection as a libevent bufferevent, plain or TLS, with
 * the STARTTLS upgrade of a live connection, write back-pressure and a
 * close-after-flush. It knows nothing of XMPP: the owner (a leg) reads
 * conn_input() when told, and writes with conn_write().
 */
#ifndef FEDGATE_CONN_H
#define FEDGATE_CONN_H

#include <sys/socket.h>
#include <sys/uio.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct event_base;
struct evbuffer;
struct conn;

enum conn_event {
	CONN_EV_CONNECTED,	/* an outgoing connect finished */
	CONN_EV_TLS_DONE,	/* the TLS handshake finished */
	CONN_EV_DRAINED,	/* output fell below the low watermark */
	CONN_EV_EOF,		/* the peer closed */
	CONN_EV_ERROR,		/* socket or TLS error; conn_error() says which */
	CONN_EV_CLOSED		/* conn_close() finished flushing; conn is gone */
};

struct conn_handler {
	/* Bytes arrived: read them from conn_input(). */
	void	(*read)(struct conn *, void *arg);
	/* Something else happened. After CLOSED the conn is freed. */
	void	(*event)(struct conn *, enum conn_event, void *arg);
};

/*
 * Wrap the accepted socket fd (conn takes it over). With ssl (conn takes it
 * over) the connection is direct TLS, server side. Return NULL on failure
 * (fd and ssl are closed then).
 */
struct conn *conn_new_accepted(struct event_base *, int fd,
	    const struct sockaddr *peer, socklen_t peerlen, SSL *ssl,
	    const struct conn_handler *, void *arg);
/*
 * Start a nonblocking connect to addr, from the address source (its port
 * ignored; NULL: the kernel chooses), bound first. CONN_EV_CONNECTED or
 * CONN_EV_ERROR follows. With ssl (taken over) TLS starts as client once
 * connected (direct TLS), and CONN_EV_CONNECTED comes with
 * CONN_EV_TLS_DONE once the handshake is done. Return NULL on failure,
 * with errno set when a system call said why (EMFILE, EADDRNOTAVAIL...).
 */
struct conn *conn_new_connect(struct event_base *,
	    const struct sockaddr *addr, socklen_t addrlen,
	    const struct sockaddr *source, socklen_t sourcelen, SSL *ssl,
	    const struct conn_handler *, void *arg);
/*
 * The same from the address source (its port ignored), which need not be
 * this host's: the socket gets IP_TRANSPARENT (IPV6_TRANSPARENT) before
 * it is bound, which needs CAP_NET_ADMIN, and the replies must be routed
 * back to this host (policy routing; contrib/). Return NULL on failure,
 * with errno set (EPERM, EADDRNOTAVAIL: the source cannot be used).
 */
struct conn *conn_new_connect_from(struct event_base *,
	    const struct sockaddr *addr, socklen_t addrlen,
	    const struct sockaddr *source, SSL *ssl,
	    const struct conn_handler *, void *arg);
/* Close now, without flushing. conn_free(NULL) is a no-op. No event follows. */
void	conn_free(struct conn *);
/*
 * Flush what is queued for writing (bounded by the caller's timers), then
 * close and report CONN_EV_CLOSED. Reading stops at once; on a lingering
 * conn it stops now and the close goes on.
 */
void	conn_close(struct conn *);
/*
 * Close, but linger: writing stops as with conn_close() and what is
 * queued is flushed, while reading goes on, so that what the peer sent
 * before it saw our close still reaches the owner (RFC 6120 4.4). The
 * close finishes (CONN_EV_CLOSED) once the owner calls conn_close(), for
 * instance at the peer's EOF (reported as CONN_EV_EOF) or its end of
 * stream, or on its own timer.
 */
void	conn_close_linger(struct conn *);
bool	conn_is_lingering(const struct conn *);

/*
 * Upgrade to TLS (STARTTLS): as server or client with ssl (taken over).
 * Bytes already buffered in the input are discarded: the peer must not
 * have sent any after <starttls/> or <proceed/>. CONN_EV_TLS_DONE or
 * CONN_EV_ERROR follows. Return 0 or -1.
 */
int	conn_starttls(struct conn *, SSL *ssl, bool server);

struct evbuffer *conn_input(struct conn *);
/* Queue len bytes. Return 0, or -1 if the connection is closing or broken. */
int	conn_write(struct conn *, const void *data, size_t len);
/* Queue the iovcnt pieces of iov, in order, copied once into the output
 * buffer. Return 0, or -1 as conn_write(). */
int	conn_writev(struct conn *, const struct iovec *iov, int iovcnt);
/* Above 1 MiB queued for writing, conn_is_congested(); DRAINED below half. */
bool	conn_is_congested(const struct conn *);
/* Bytes queued for writing and not yet taken by the socket (under a TLS
 * filter, plain and encrypted bytes together). */
size_t	conn_output_length(const struct conn *);
/*
 * Stop or resume reading (back-pressure). Resuming also runs the read
 * callback from the loop for bytes already buffered.
 */
void	conn_set_reading(struct conn *, bool on);
/* Cap the read rate with a libevent token bucket (bytes/s, burst). 0: off. */
int	conn_set_rate(struct conn *, uint64_t rate, uint64_t burst);

bool	conn_is_tls(const struct conn *);
/* The TLS object once the handshake is done, else NULL. Borrowed. */
SSL	*conn_ssl(const struct conn *);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", or "" without TLS. */
const char *conn_tls_description(const struct conn *, char *buf, size_t len);
/* The peer's address as text ("203.0.113.5:41234"). */
const char *conn_peer(const struct conn *);
const struct sockaddr *conn_peer_addr(const struct conn *);
/* This end's address (getsockname) into *out. Return 0, or -1 (no socket
 * yet, or it failed). */
int	conn_local_addr(const struct conn *, struct sockaddr_storage *out);
/* The last error as text: errno's string or OpenSSL's reason. */
const char *conn_error(const struct conn *);
/* Totals for counters. */
uint64_t conn_bytes_in(const struct conn *);
uint64_t conn_bytes_out(const struct conn *);

#endif
