/*
 * bundle: files by path, read from the disk or from what another process
 * read. The roles are described in bundle.h.
 */
#include "fgconfig.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"

struct bundle_file {
	char		*path;
	int		 error;		/* errno of the failed read, or 0 */
	uint32_t	 mode;		/* st_mode, 0 if not opened */
	char		*data;		/* NUL-terminated; NULL if none */
	size_t		 len;
};

struct bundle {
	bool			 recording;
	struct bundle_file	*files;
	size_t			 n;
	size_t			 size;
};

struct bundle *
bundle_new(bool recording)
{
	struct bundle *b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->recording = recording;
	return b;
}

void
bundle_free(struct bundle *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->files[i].path);
		if (b->files[i].data != NULL) {
			explicit_bzero(b->files[i].data, b->files[i].len);
			free(b->files[i].data);
		}
	}
	free(b->files);
	free(b);
}

bool
bundle_is_recording(const struct bundle *b)
{
	return b->recording;
}

static struct bundle_file *
bundle_find(const struct bundle *b, const char *path)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->files[i].path, path) == 0)
			return &b->files[i];
	return NULL;
}

int
bundle_add(struct bundle *b, const char *path, int error, uint32_t mode,
    const void *data, size_t len)
{
	struct bundle_file *f, *nf;
	size_t plen = strlen(path);

	if (plen == 0 || plen > BUNDLE_PATH_MAX || error < 0 ||
	    (error != 0 && len != 0) || (error == 0 && mode == 0) ||
	    (mode != 0 && !S_ISREG(mode) && len != 0) ||
	    (len != 0 && data == NULL))
		return -1;
	if (b->n == BUNDLE_FILES_MAX || bundle_find(b, path) != NULL)
		return -1;
	if (b->n == b->size) {
		b->size = b->size == 0 ? 8 : b->size * 2;
		if ((nf = reallocarray(b->files, b->size, sizeof(*nf))) == NULL)
			return -1;
		b->files = nf;
	}
	f = &b->files[b->n];
	memset(f, 0, sizeof(*f));
	if ((f->path = strdup(path)) == NULL)
		return -1;
	if (error == 0 && S_ISREG(mode)) {
		if ((f->data = malloc(len + 1)) == NULL) {
			free(f->path);
			return -1;
		}
		if (len > 0)
			memcpy(f->data, data, len);
		f->data[len] = '\0';
		f->len = len;
	}
	f->error = error;
	f->mode = mode;
	b->n++;
	return 0;
}

size_t
bundle_count(const struct bundle *b)
{
	return b->n;
}

int
bundle_entry(const struct bundle *b, size_t i, const char **path,
    int *error, uint32_t *mode, const void **data, size_t *len)
{
	if (i >= b->n)
		return -1;
	*path = b->files[i].path;
	*error = b->files[i].error;
	*mode = b->files[i].mode;
	*data = b->files[i].data;
	*len = b->files[i].len;
	return 0;
}

/* Read all of fd (at most max bytes) into a malloc'd, NUL-terminated buf. */
static int
bundle_read_fd(int fd, size_t max, char **buf, size_t *len)
{
	size_t size = 4096, n = 0;
	char *b = NULL, *nb;
	ssize_t r;
	int saved;

	for (;;) {
		if (b == NULL || n + 1 >= size) {
			if (b != NULL)
				size *= 2;
			if ((nb = malloc(size)) == NULL)
				goto fail;
			/* copy by hand: realloc would leave the old bytes */
			if (b != NULL) {
				memcpy(nb, b, n);
				explicit_bzero(b, n);
				free(b);
			}
			b = nb;
		}
		if ((r = read(fd, b + n, size - n - 1)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
 fail:
	saved = errno;
	if (b != NULL) {
		explicit_bzero(b, size);
		free(b);
	}
	errno = saved;
	return -1;
}

/* The disk: open, check the type, read. */
static int
bundle_read_disk(const char *path, size_t max, char **buf, size_t *len,
    mode_t *mode)
{
	struct stat st;
	int fd, r, saved;

	*buf = NULL;
	*len = 0;
	*mode = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	*mode = st.st_mode;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	r = bundle_read_fd(fd, max, buf, len);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int
bundle_stat(const struct bundle *b, const char *path, mode_t *mode,
    dev_t *dev, ino_t *ino)
{
	const struct bundle_file *f;
	struct stat st;

	if (dev != NULL)
		*dev = 0;
	if (ino != NULL)
		*ino = 0;
	*mode = 0;
	if (b != NULL && !b->recording && (f = bundle_find(b, path)) != NULL) {
		if (f->mode == 0) {
			errno = f->error != 0 ? f->error : EACCES;
			return -1;
		}
		*mode = f->mode;
		return 0;
	}
	if (stat(path, &st) == -1)
		return -1;
	*mode = st.st_mode;
	if (dev != NULL)
		*dev = st.st_dev;
	if (ino != NULL)
		*ino = st.st_ino;
	return 0;
}

/* A replaying bundle's answer for path. */
static int
bundle_replay(const struct bundle *b, const char *path, size_t max,
    char **buf, size_t *len, mode_t *mode)
{
	const struct bundle_file *f;

	*buf = NULL;
	*len = 0;
	*mode = 0;
	if ((f = bundle_find(b, path)) == NULL) {
		errno = EACCES;
		return -1;
	}
	*mode = f->mode;
	if (f->error != 0) {
		errno = f->error;
		return -1;
	}
	if (f->data == NULL)
		return 0;
	if (f->len > max) {
		errno = EFBIG;
		return -1;
	}
	if ((*buf = malloc(f->len + 1)) == NULL)
		return -1;
	memcpy(*buf, f->data, f->len + 1);
	*len = f->len;
	return 0;
}

int
bundle_read(struct bundle *b, const char *path, size_t max, char **buf,
    size_t *len, mode_t *mode)
{
	int r, saved;

	if (b == NULL)
		return bundle_read_disk(path, max, buf, len, mode);
	if (!b->recording)
		return bundle_replay(b, path, max, buf, len, mode);
	r = bundle_read_disk(path, max, buf, len, mode);
	saved = errno;
	/* a path read twice keeps its first answer */
	if (bundle_find(b, path) == NULL &&
	    bundle_add(b, path, r == -1 ? saved : 0, (uint32_t)*mode, *buf,
	    *len) == -1) {
		if (*buf != NULL) {
			explicit_bzero(*buf, *len);
			free(*buf);
			*buf = NULL;
		}
		errno = ENOMEM;
		return -1;
	}
	errno = saved;
	return r;
}
