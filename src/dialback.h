/*
 * dialback: Server Dialback keys (XEP-0185, as used by XEP-0220) and the
 * stream IDs they are bound to. Sans-I/O; OpenSSL does the cryptography.
 *
 * The key is the recommended algorithm of XEP-0185 section 2:
 *
 *   key = HEX( HMAC-SHA256( HEX( SHA256(Secret) ),
 *                           Receiving ' ' Originating ' ' StreamID ) )
 *
 * where HEX is lower-case hexadecimal, so the HMAC key is the 64 ASCII
 * characters of the secret's digest. Every gateway that shares the secret
 * mints and accepts the same keys.
 */
#ifndef FEDGATE_DIALBACK_H
#define FEDGATE_DIALBACK_H

#include <stdbool.h>
#include <stddef.h>

#define DIALBACK_KEY_LEN	64	/* hex characters of a key */
#define DIALBACK_KEY_SIZE	(DIALBACK_KEY_LEN + 1)
#define DIALBACK_STREAM_ID_LEN	32	/* hex characters: 128 random bits */
#define DIALBACK_STREAM_ID_SIZE	(DIALBACK_STREAM_ID_LEN + 1)
/* The longest key taken from a peer (other servers mint 40 or 64 hex
 * characters); a longer one is refused without asking anyone. */
#define DIALBACK_KEY_MAX	128
/* The longest stream ID taken from a peer in a db:verify (an answer
 * echoes it: a longer one would make fedgated an amplifier). */
#define DIALBACK_ID_MAX		256

/*
 * Mint the key for a stream from originating to receiving whose response
 * header carried stream_id. secret is secret_len bytes (any bytes, at
 * least one). The three strings are used exactly as they appear on the
 * wire (the 'to', 'from' and 'id' of db:verify): no normalisation here.
 * Write DIALBACK_KEY_LEN lower-case hex characters and a NUL to out
 * (outlen >= DIALBACK_KEY_SIZE). Return 0, or -1 if an argument is
 * missing or empty, out is too small, or OpenSSL fails.
 */
int	dialback_key(const void *secret, size_t secret_len,
	    const char *receiving, const char *originating,
	    const char *stream_id, char *out, size_t outlen);
/*
 * Check key, the character data of a db:result or db:verify, against the
 * key minted from the same inputs. XML whitespace around key is ignored;
 * the comparison itself takes constant time. Return true if it matches,
 * false if not or if the key cannot be minted.
 */
bool	dialback_key_is_valid(const void *secret, size_t secret_len,
	    const char *receiving, const char *originating,
	    const char *stream_id, const char *key);
/*
 * Write a fresh, unpredictable stream ID to out: DIALBACK_STREAM_ID_LEN
 * lower-case hex characters of RAND_bytes() output and a NUL (outlen >=
 * DIALBACK_STREAM_ID_SIZE). Return 0, or -1 if out is too small or the
 * random generator fails.
 */
int	dialback_stream_id(char *out, size_t outlen);

#endif
