/*
 * priv: privilege separation. fedgated runs as two processes joined by a
 * socketpair:
 *
 *   the parent	 keeps its privileges (root), the config path and the
 *		 socketpairs (one per relay: workers N), and nothing else: no listener, no peer, no
 *		 parser of anything a peer sends. It answers the relay's
 *		 reload requests by reading, as root, the configuration and
 *		 every file it names, forwards SIGHUP, SIGTERM and SIGINT to
 *		 the relay, and exits with the relay's exit status.
 *   the relay	 binds the listeners and the control socket while it is
 *		 still root, drops to the configured user with no capability
 *		 and no new privileges, and does all the work.
 *
 * The message format on the socketpair is written down in
 * doc/internals/privsep.md; priv_msg_decode() and priv_bundle_decode() are
 * its strict, sans-I/O decoders (bytes in, message or error out), driven
 * by the fuzz target tests/fuzz/fuzz_priv.c.
 */
#ifndef FEDGATE_PRIV_H
#define FEDGATE_PRIV_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#define PRIV_HEADER_LEN		12		/* type, seq, len: u32 each */
#define PRIV_MSG_MAX		(16 * 1024 * 1024) /* payload bytes */
#define PRIV_ERROR_MAX		(1024 * 1024)	/* bytes of an ERROR text */
#define PRIV_TIMEOUT_MS		10000		/* for one reply */

enum priv_type {
	PRIV_RELOAD = 1,	/* relay -> parent: read the config; empty */
	PRIV_BUNDLE = 2,	/* parent -> relay: the files of the config */
	PRIV_ERROR = 3,		/* parent -> relay: the config's errors */
	PRIV_TYPE_MAX
};

/* One decoded message; payload points into the decoder's input. */
struct priv_msg {
	uint32_t	 type;		/* enum priv_type */
	uint32_t	 seq;		/* a reply carries its request's */
	const uint8_t	*payload;
	size_t		 len;
};

enum priv_decode {
	PRIV_DECODE_OK,		/* *msg is whole; *need bytes were used */
	PRIV_DECODE_MORE,	/* *need bytes in all are needed */
	PRIV_DECODE_ERROR	/* malformed: err says why; drop the channel */
};

struct bundle;
struct event_base;
struct priv;

/*
 * Decode the message at the start of buf (len bytes): check the header (a
 * known type, a payload within PRIV_MSG_MAX and as the type allows) and,
 * for an ERROR, its text (no NUL, at most PRIV_ERROR_MAX). A BUNDLE's
 * payload is checked by priv_bundle_decode().
 */
enum priv_decode priv_msg_decode(const void *buf, size_t len,
	    struct priv_msg *msg, size_t *need, char *err, size_t errlen);
/* Write the header of a message into hdr. */
void	priv_msg_header(uint8_t hdr[PRIV_HEADER_LEN], uint32_t type,
	    uint32_t seq, size_t len);
/*
 * Encode bundle b as a BUNDLE payload in a malloc'd *buf of *len bytes
 * (the caller zeroes and frees it). Return 0, or -1 if it would exceed
 * PRIV_MSG_MAX or out of memory.
 */
int	priv_bundle_encode(const struct bundle *b, uint8_t **buf, size_t *len);
/*
 * Decode a BUNDLE payload into a new replaying bundle. Return it, or NULL
 * with err saying why (truncated, trailing bytes, a bad path, a duplicate
 * path, an impossible entry, too many files).
 */
struct bundle *priv_bundle_decode(const void *buf, size_t len, char *err,
	    size_t errlen);

/* The parent. */

/*
 * Fork the relay. In the parent return the relay's PID and set *fd to the
 * parent's end of the socketpair; in the relay return 0 and set *fd to its
 * end. Return -1 with errno set if socketpair(2) or fork(2) fails.
 */
pid_t	priv_fork(int *fd);
/*
 * The parent's life after priv_fork(), once for each of the n relays (the
 * workers; relays[i] and fds[i], the parent's end of relay i's channel,
 * taken over): answer each relay on its channel (reading config_path as
 * the parent), forward SIGHUP, SIGTERM and SIGINT to every relay, and reap
 * them. The first relay that ends while others run makes the parent stop
 * the others (SIGTERM). Return the status the parent should exit with:
 * the first non-zero exit status of a relay (128 + the signal that killed
 * it), else 0. The caller blocks SIGHUP, SIGTERM, SIGINT and SIGCHLD
 * before priv_fork(); this unblocks them once it handles them.
 */
int	priv_parent_run(const pid_t *relays, const int *fds, unsigned n,
	    const char *config_path);

/* The relay's end. */

/*
 * Take over fd, the relay's end of the socketpair, and watch it on base:
 * when the parent goes away (EOF) or breaks the protocol, call lost(arg)
 * once. Return NULL if out of memory.
 */
struct priv *priv_new(struct event_base *base, int fd,
	    void (*lost)(void *), void *arg);
/* Close the channel. priv_free(NULL) is a no-op. */
void	priv_free(struct priv *);
/*
 * Ask the parent to read the configuration and every file it names, and
 * wait for the answer (at most PRIV_TIMEOUT_MS). Return a replaying bundle
 * holding them; or NULL with the parent's configuration errors (or why the
 * channel failed) appended to *errors.
 */
struct bundle *priv_fetch(struct priv *, char **errors);

#endif
