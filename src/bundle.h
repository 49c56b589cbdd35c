/*
 * bundle: a set of files by path, each with what reading it gave: its mode
 * and bytes, or the errno of the failed read. It is the seam between the
 * modules that read files (config, tls) and where the bytes come from.
 *
 * Every reader takes a struct bundle * in one of three roles:
 *   NULL		read the disk, as a single process does;
 *   recording		read the disk and keep a copy of each file read (the
 *			privileged parent, answering a reload: priv.h);
 *   replaying		answer from the bundle only, never touching the disk
 *			(the unprivileged relay, loading what the parent sent).
 * A replaying bundle answers a path it does not hold with EACCES, as the
 * disk would have answered the relay.
 *
 * A bundle owns copies of the bytes and zeroes them when freed: it carries
 * keys and the dialback secret.
 */
#ifndef FEDGATE_BUNDLE_H
#define FEDGATE_BUNDLE_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUNDLE_FILES_MAX	1024	/* files in one bundle */
#define BUNDLE_PATH_MAX		4096	/* bytes of one path, NUL excluded */

struct bundle;

/* A new empty bundle, recording or replaying. NULL if out of memory. */
struct bundle *bundle_new(bool recording);
/* Zero every file's bytes and free b. bundle_free(NULL) is a no-op. */
void	bundle_free(struct bundle *b);
bool	bundle_is_recording(const struct bundle *b);

/*
 * Add what reading path gave: error 0 and the file's mode and len bytes of
 * data (a regular file), or its mode and no data (any other file type); or
 * an errno, with the mode when the file could be opened, else 0. Copy path
 * and data. Return 0, or -1 if the entry is malformed, path is already in
 * b, b is full, or out of memory.
 */
int	bundle_add(struct bundle *b, const char *path, int error,
	    uint32_t mode, const void *data, size_t len);
size_t	bundle_count(const struct bundle *b);
/*
 * Entry i (in the order added): borrowed pointers valid until b is freed.
 * Return 0, or -1 if i is out of range.
 */
int	bundle_entry(const struct bundle *b, size_t i, const char **path,
	    int *error, uint32_t *mode, const void **data, size_t *len);

/*
 * Read the file at path, at most max bytes, through b (see the roles
 * above). On success return 0 and set *mode; for a regular file also set
 * *buf to a malloc'd NUL-terminated copy of its *len bytes (the caller
 * zeroes and frees it); for any other file type *buf is NULL and *len 0,
 * and nothing was read. On failure return -1 with errno set (EFBIG: larger
 * than max) and *mode the file's mode if it could be opened, else 0.
 */
int	bundle_read(struct bundle *b, const char *path, size_t max,
	    char **buf, size_t *len, mode_t *mode);

/*
 * The type and mode of the file at path, through b: with NULL or a
 * recording bundle, stat(2); with a replaying bundle, what was recorded
 * for path, or stat(2) for a path it does not hold (a directory that the
 * reader opens itself, such as tls ca-path). Set *dev and *ino (either may
 * be NULL) when stat(2) answered, else to 0. Return 0, or -1 with errno
 * set.
 */
int	bundle_stat(const struct bundle *b, const char *path, mode_t *mode,
	    dev_t *dev, ino_t *ino);

#endif
