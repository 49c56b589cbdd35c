/*
 * util: small helpers with no better home: sizes and durations with units,
 * socket addresses as text, monotonic time.
 */
#ifndef FEDGATE_UTIL_H
#define FEDGATE_UTIL_H

#include <sys/socket.h>
#include <netinet/in.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for "[ffff:...:ffff]:65535" and a NUL. */
#define UTIL_SOCKADDR_STRLEN	(INET6_ADDRSTRLEN + 9)

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * Parse a size: digits with an optional suffix k, m or g (powers of 1024),
 * e.g. "256k". Store bytes in *out. Return 0, or -1 if malformed or too big.
 */
int	util_parse_size(const char *s, uint64_t *out);
/*
 * Parse a duration: digits with a unit ms, s, m, h or d; bare digits are
 * seconds, e.g. "30s", "10m". Store milliseconds in *out. Return 0 or -1.
 */
int	util_parse_duration(const char *s, uint64_t *out);
/* Render a size or duration as the shortest exact text ("256k", "10m"). */
const char *util_size_str(uint64_t bytes, char *buf, size_t len);
const char *util_duration_str(uint64_t ms, char *buf, size_t len);
/*
 * Render sa as "192.0.2.1:5269", "[2001:db8::1]:5269" or a Unix path in buf
 * (UTIL_SOCKADDR_STRLEN bytes suffice for IP). Return buf.
 */
const char *util_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len);
/* Whether a and b are the same IP address (ports ignored). */
bool	util_sockaddr_is_same_host(const struct sockaddr *a,
	    const struct sockaddr *b);
/*
 * Parse a numeric IPv4/IPv6 address (or "*" for any) and port into ss.
 * Return 0, or -1 if host is not a numeric address.
 */
int	util_sockaddr_parse(const char *host, uint16_t port,
	    struct sockaddr_storage *ss, socklen_t *sslen);
/*
 * Append line and a newline to the malloc'd text *text (NULL: start one).
 * Return 0, or -1 if out of memory (*text is then unchanged).
 */
int	util_append_line(char **text, const char *line);
/*
 * Peer strings. Every string a peer controls (stream attributes, ids,
 * JIDs, dialback keys, SASL data, certificate and SNI names, DNS names)
 * goes through util_esc() before it reaches a log line, a control reply
 * or a bounce text: printable ASCII passes, except '\\' and '"' which are
 * escaped with a backslash; every other byte (controls, DEL, non-ASCII)
 * becomes \xHH. The result is at most len - 1 bytes (len >= 32); a string
 * that does not fit is cut and ends in "...(N bytes)", N its length. NULL
 * renders as "(none)". Return buf.
 */
#define UTIL_ESC_MAX	128
const char *util_esc(const char *s, char *buf, size_t len);
/* The same for the len bytes at s, which need not be NUL-terminated. */
const char *util_esc_mem(const char *s, size_t slen, char *buf, size_t len);
/* util_esc() into a buffer that lives until the end of the enclosing
 * block: log_info("... %s", UTIL_ESC(h->to)). */
#define UTIL_ESC(s)	util_esc((s), (char[UTIL_ESC_MAX]){ 0 }, UTIL_ESC_MAX)

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t util_now_ms(void);
/* Set O_NONBLOCK and FD_CLOEXEC. Return 0 or -1 with errno set. */
int	util_fd_nonblock(int fd);

#endif
