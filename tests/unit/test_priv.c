/*
 * Unit tests for priv's message format (priv_msg.c): header and bundle
 * round trips, and every malformed message and bundle refused with its
 * reason. The process side is tested by tests/integration/t_lifecycle.sh.
 */
#include "fgconfig.h"

#include <sys/stat.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bundle.h"
#include "priv.h"
#include "util.h"

#define REG	(S_IFREG | 0600)

/* A byte string being built. */
struct buf {
	uint8_t	 b[8192];
	size_t	 n;
};

static void
put32(struct buf *b, uint32_t v)
{
	v = htonl(v);
	memcpy(b->b + b->n, &v, 4);
	b->n += 4;
}

static void
put(struct buf *b, const void *p, size_t len)
{
	if (len == 0)
		return;
	memcpy(b->b + b->n, p, len);
	b->n += len;
}

/* One file record; plen/dlen ~0u: the lengths of path and data. */
static void
put_file(struct buf *b, uint32_t error, uint32_t mode, const char *path,
    uint32_t plen, const char *data, uint32_t dlen)
{
	size_t pl = path != NULL ? strlen(path) : 0;
	size_t dl = data != NULL ? strlen(data) : 0;

	put32(b, error);
	put32(b, mode);
	put32(b, plen != ~0u ? plen : (uint32_t)pl);
	put32(b, dlen != ~0u ? dlen : (uint32_t)dl);
	put(b, path, pl);
	put(b, data, dl);
}

static void
test_header_round_trip(void **state)
{
	static const struct {
		uint32_t	 type;
		uint32_t	 seq;
		const char	*payload;
	} cases[] = {
		{ PRIV_RELOAD, 1, "" },
		{ PRIV_RELOAD, 0xffffffffu, "" },
		{ PRIV_ERROR, 7, "f.conf:1: unknown keyword \"x\"\n" },
		{ PRIV_BUNDLE, 2, "\0\0\0\0" },	/* decodes; the bundle does not */
	};
	uint8_t buf[256];
	struct priv_msg msg;
	size_t len, need;
	char err[128];

	for (size_t i = 0; i < nitems(cases); i++) {
		len = cases[i].type == PRIV_BUNDLE ? 4 :
		    strlen(cases[i].payload);
		priv_msg_header(buf, cases[i].type, cases[i].seq, len);
		memcpy(buf + PRIV_HEADER_LEN, cases[i].payload, len);
		/* every prefix asks for more, naming how much */
		for (size_t cut = 0; cut < PRIV_HEADER_LEN + len; cut++) {
			assert_int_equal(priv_msg_decode(buf, cut, &msg, &need,
			    err, sizeof(err)), PRIV_DECODE_MORE);
			assert_int_equal(need, cut < PRIV_HEADER_LEN ?
			    PRIV_HEADER_LEN : PRIV_HEADER_LEN + len);
		}
		/* bytes after the message are the next one's */
		assert_int_equal(priv_msg_decode(buf, PRIV_HEADER_LEN + len + 3,
		    &msg, &need, err, sizeof(err)), PRIV_DECODE_OK);
		assert_int_equal(need, PRIV_HEADER_LEN + len);
		assert_int_equal(msg.type, cases[i].type);
		assert_int_equal(msg.seq, cases[i].seq);
		assert_int_equal(msg.len, len);
		assert_memory_equal(msg.payload, cases[i].payload, len);
	}
}

static void
test_header_malformed(void **state)
{
	static const struct {
		uint32_t	 type;
		uint32_t	 len;
		const char	*error;
	} cases[] = {
		{ 0, 0, "unknown message type 0" },
		{ PRIV_TYPE_MAX, 0, "unknown message type" },
		{ 0xffffffffu, 0, "unknown message type" },
		{ PRIV_BUNDLE, PRIV_MSG_MAX + 1, "at most" },
		{ PRIV_BUNDLE, 0xffffffffu, "at most" },
		{ PRIV_RELOAD, 1, "type 1 with 1 bytes" },
		{ PRIV_BUNDLE, 0, "type 2 with 0 bytes" },
		{ PRIV_BUNDLE, 3, "type 2 with 3 bytes" },
		{ PRIV_ERROR, 0, "type 3 with 0 bytes" },
		{ PRIV_ERROR, PRIV_ERROR_MAX + 1, "type 3 with" },
	};
	uint8_t buf[PRIV_HEADER_LEN + 8] = { 0 };
	struct priv_msg msg;
	size_t need;
	char err[128];

	for (size_t i = 0; i < nitems(cases); i++) {
		priv_msg_header(buf, cases[i].type, 1, cases[i].len);
		/* refused from the header alone: nothing more is read */
		assert_int_equal(priv_msg_decode(buf, PRIV_HEADER_LEN, &msg,
		    &need, err, sizeof(err)), PRIV_DECODE_ERROR);
		if (strstr(err, cases[i].error) == NULL)
			fail_msg("case %zu: \"%s\"", i, err);
	}
	/* an error text with a NUL byte */
	priv_msg_header(buf, PRIV_ERROR, 1, 3);
	memcpy(buf + PRIV_HEADER_LEN, "a\0b", 3);
	assert_int_equal(priv_msg_decode(buf, PRIV_HEADER_LEN + 3, &msg,
	    &need, err, sizeof(err)), PRIV_DECODE_ERROR);
	assert_string_equal(err, "NUL byte in an error text");
}

static void
test_bundle_round_trip(void **state)
{
	static const struct {
		const char	*path;
		int		 error;
		uint32_t	 mode;
		const char	*data;
		size_t		 len;
	} files[] = {
		{ "/etc/fedgated.conf", 0, S_IFREG | 0644, "user \"x\"\n", 9 },
		{ "/etc/fedgated/key.pem", 0, REG, "bin\0ary\377", 8 },
		{ "/etc/fedgated/empty", 0, S_IFREG | 0400, "", 0 },
		{ "/etc/fedgated/missing.pem", ENOENT, 0, NULL, 0 },
		{ "/etc/fedgated/big", EFBIG, S_IFREG | 0600, NULL, 0 },
		{ "/etc/fedgated", 0, S_IFDIR | 0755, NULL, 0 },
		{ "relative/path", EACCES, 0, NULL, 0 },
	};
	struct bundle *b, *d;
	const char *path;
	const void *data;
	uint8_t *enc;
	size_t len, dlen;
	uint32_t mode;
	int error;
	char err[128];

	assert_non_null(b = bundle_new(false));
	for (size_t i = 0; i < nitems(files); i++)
		assert_int_equal(bundle_add(b, files[i].path, files[i].error,
		    files[i].mode, files[i].data, files[i].len), 0);
	assert_int_equal(priv_bundle_encode(b, &enc, &len), 0);
	d = priv_bundle_decode(enc, len, err, sizeof(err));
	if (d == NULL)
		fail_msg("%s", err);
	assert_int_equal(bundle_count(d), nitems(files));
	for (size_t i = 0; i < nitems(files); i++) {
		assert_int_equal(bundle_entry(d, i, &path, &error, &mode, &data,
		    &dlen), 0);
		assert_string_equal(path, files[i].path);
		assert_int_equal(error, files[i].error);
		assert_int_equal(mode, files[i].mode);
		assert_int_equal(dlen, files[i].len);
		if (files[i].len > 0)
			assert_memory_equal(data, files[i].data, dlen);
	}
	assert_false(bundle_is_recording(d));
	/* every truncation is refused */
	for (size_t cut = 0; cut < len; cut++)
		assert_null(priv_bundle_decode(enc, cut, err, sizeof(err)));
	free(enc);
	bundle_free(d);
	bundle_free(b);
}

/* A bundle of one 16 MiB file does not fit in a message. */
static void
test_bundle_too_big(void **state)
{
	struct bundle *b;
	char *big;
	uint8_t *enc;
	size_t len;

	assert_non_null(big = calloc(1, PRIV_MSG_MAX));
	assert_non_null(b = bundle_new(false));
	assert_int_equal(bundle_add(b, "/big", 0, REG, big, PRIV_MSG_MAX), 0);
	assert_int_equal(priv_bundle_encode(b, &enc, &len), -1);
	bundle_free(b);
	free(big);
}

enum bad_kind {
	BAD_EMPTY, BAD_COUNT0, BAD_COUNT_MAX, BAD_SHORT_HEADER, BAD_PATH0,
	BAD_PATH_LONG, BAD_ERRNO, BAD_MODE, BAD_SHORT_PATH, BAD_SHORT_DATA,
	BAD_NUL_PATH, BAD_DUP, BAD_ERROR_DATA, BAD_NO_MODE, BAD_DIR_DATA,
	BAD_TRAILING, BAD_COUNT_MORE
};

static void
build_bad(struct buf *b, enum bad_kind k)
{
	b->n = 0;
	switch (k) {
	case BAD_EMPTY:
		put(b, "\0\0", 2);
		break;
	case BAD_COUNT0:
		put32(b, 0);
		break;
	case BAD_COUNT_MAX:
		put32(b, BUNDLE_FILES_MAX + 1);
		break;
	case BAD_SHORT_HEADER:
		put32(b, 1);
		put32(b, 0);
		put32(b, REG);
		break;
	case BAD_PATH0:
		put32(b, 1);
		put_file(b, 0, REG, "", ~0u, "x", ~0u);
		break;
	case BAD_PATH_LONG:
		put32(b, 1);
		put_file(b, 0, REG, "/a", BUNDLE_PATH_MAX + 1, NULL, 0);
		break;
	case BAD_ERRNO:
		put32(b, 1);
		put_file(b, 4096, 0, "/a", ~0u, NULL, 0);
		break;
	case BAD_MODE:
		put32(b, 1);
		put_file(b, 0, 0x10000 | REG, "/a", ~0u, "x", ~0u);
		break;
	case BAD_SHORT_PATH:
		put32(b, 1);
		put_file(b, 0, REG, "/a", 3, NULL, 0);
		break;
	case BAD_SHORT_DATA:
		put32(b, 1);
		put_file(b, 0, REG, "/a", ~0u, "xy", 3);
		break;
	case BAD_NUL_PATH:
		put32(b, 1);
		put_file(b, 0, REG, "/a", 3, NULL, 0);
		put(b, "", 1);
		break;
	case BAD_DUP:
		put32(b, 2);
		put_file(b, 0, REG, "/a", ~0u, "x", ~0u);
		put_file(b, 0, REG, "/a", ~0u, "y", ~0u);
		break;
	case BAD_ERROR_DATA:
		put32(b, 1);
		put_file(b, EIO, REG, "/a", ~0u, "x", ~0u);
		break;
	case BAD_NO_MODE:
		put32(b, 1);
		put_file(b, 0, 0, "/a", ~0u, "x", ~0u);
		break;
	case BAD_DIR_DATA:
		put32(b, 1);
		put_file(b, 0, S_IFDIR | 0755, "/a", ~0u, "x", ~0u);
		break;
	case BAD_TRAILING:
		put32(b, 1);
		put_file(b, 0, REG, "/a", ~0u, "x", ~0u);
		put(b, "z", 1);
		break;
	case BAD_COUNT_MORE:
		put32(b, 2);
		put_file(b, 0, REG, "/a", ~0u, "x", ~0u);
		break;
	}
}

static void
test_bundle_malformed(void **state)
{
	static const struct {
		enum bad_kind	 kind;
		const char	*error;
	} cases[] = {
		{ BAD_EMPTY, "bundle truncated" },
		{ BAD_COUNT0, "bundle of 0 files (1 to 1024)" },
		{ BAD_COUNT_MAX, "bundle of 1025 files (1 to 1024)" },
		{ BAD_SHORT_HEADER, "file 0: truncated header" },
		{ BAD_PATH0, "file 0: path of 0 bytes" },
		{ BAD_PATH_LONG, "file 0: path of 4097 bytes" },
		{ BAD_ERRNO, "file 0: bad error or mode" },
		{ BAD_MODE, "file 0: bad error or mode" },
		{ BAD_SHORT_PATH, "file 0: truncated" },
		{ BAD_SHORT_DATA, "file 0: truncated" },
		{ BAD_NUL_PATH, "file 0: NUL byte in the path" },
		{ BAD_DUP, "file 1: impossible or repeated entry" },
		{ BAD_ERROR_DATA, "file 0: impossible or repeated entry" },
		{ BAD_NO_MODE, "file 0: impossible or repeated entry" },
		{ BAD_DIR_DATA, "file 0: impossible or repeated entry" },
		{ BAD_TRAILING, "1 bytes after the last file" },
		{ BAD_COUNT_MORE, "file 1: truncated header" },
	};
	struct buf b;
	char err[128];

	for (size_t i = 0; i < nitems(cases); i++) {
		build_bad(&b, cases[i].kind);
		strlcpy(err, "", sizeof(err));
		assert_null(priv_bundle_decode(b.b, b.n, err, sizeof(err)));
		if (strcmp(err, cases[i].error) != 0)
			fail_msg("case %zu: \"%s\", not \"%s\"", i, err,
			    cases[i].error);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_round_trip),
		cmocka_unit_test(test_header_malformed),
		cmocka_unit_test(test_bundle_round_trip),
		cmocka_unit_test(test_bundle_too_big),
		cmocka_unit_test(test_bundle_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
