/*
 * Unit tests for dialback: XEP-0185 key vectors, checking, stream IDs.
 *
 * The vectors from XEP-0185 section 3 and XEP-0220 section 2 are the
 * specifications' own; the others were computed with the openssl command
 * line, e.g.
 *   K=$(printf %s 'fedgate shared secret' | sha256sum | cut -d' ' -f1)
 *   printf %s 'remote.example corp.example 5f1c0ffee0ddba11' |
 *       openssl dgst -sha256 -hmac "$K"
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dialback.h"
#include "util.h"

static const struct {
	const char	*secret;
	size_t		 secret_len;
	const char	*receiving;
	const char	*originating;
	const char	*stream_id;
	const char	*key;
} vectors[] = {
	/* XEP-0185 section 3 */
	{ "s3cr3tf0rd14lb4ck", 17, "xmpp.example.com", "example.org",
	  "D60000229F",
	  "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643" },
	/* XEP-0220 section 2.1.1 (Example 1) */
	{ "s3cr3tf0rd14lb4ck", 17, "montague.example", "capulet.example",
	  "D60000229F",
	  "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3" },
	/* XEP-0220 section 2.2.2 (Example 13) */
	{ "d14lb4ck43v3r", 13, "capulet.example", "montague.example",
	  "417GAF25",
	  "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d" },
	/* openssl command line */
	{ "fedgate shared secret", 21, "remote.example", "corp.example",
	  "5f1c0ffee0ddba11",
	  "b6e6f908606fa3351e52d96bbc0bdc7b89488f89897657a8a4facd84748fa1e0" },
	/* a binary secret: NUL and 0xff inside (printf 'bin\000ary\377secret') */
	{ "bin\0ary\377secret", 14, "xn--bcher-kva.example", "cup.corp.local",
	  "0123456789abcdef0123456789abcdef",
	  "7700c286bf595449f4a30b1bd849d6384739fa5017617ba0fa8e665503d74fc0" },
	{ "x", 1, "a", "b", "c",
	  "1841ae8d15032231fc7ae01edb9ee715e2726e80bb31078e8300dd5dbb458ccd" },
};

static void
test_key_vectors(void **state)
{
	char key[DIALBACK_KEY_SIZE];

	(void)state;
	for (size_t i = 0; i < nitems(vectors); i++) {
		memset(key, 'z', sizeof(key));
		assert_int_equal(dialback_key(vectors[i].secret,
		    vectors[i].secret_len, vectors[i].receiving,
		    vectors[i].originating, vectors[i].stream_id, key,
		    sizeof(key)), 0);
		assert_string_equal(key, vectors[i].key);
		assert_true(dialback_key_is_valid(vectors[i].secret,
		    vectors[i].secret_len, vectors[i].receiving,
		    vectors[i].originating, vectors[i].stream_id,
		    vectors[i].key));
	}
}

static void
test_key_arguments(void **state)
{
	char key[DIALBACK_KEY_SIZE], small[DIALBACK_KEY_LEN];

	(void)state;
	assert_int_equal(dialback_key("s", 1, "r", "o", "i", small,
	    sizeof(small)), -1);
	assert_int_equal(dialback_key("s", 1, "r", "o", "i", NULL, 0), -1);
	assert_int_equal(dialback_key(NULL, 0, "r", "o", "i", key,
	    sizeof(key)), -1);
	assert_int_equal(dialback_key("s", 0, "r", "o", "i", key,
	    sizeof(key)), -1);
	assert_int_equal(dialback_key("s", 1, NULL, "o", "i", key,
	    sizeof(key)), -1);
	assert_int_equal(dialback_key("s", 1, "r", "", "i", key,
	    sizeof(key)), -1);
	assert_int_equal(dialback_key("s", 1, "r", "o", "", key,
	    sizeof(key)), -1);
	assert_int_equal(dialback_key("s", 1, "r", "o", NULL, key,
	    sizeof(key)), -1);
	/* secret_len, not strlen, decides: "s3" is not "s3cr3t...". */
	assert_int_equal(dialback_key("s3cr3tf0rd14lb4ck", 2,
	    "xmpp.example.com", "example.org", "D60000229F", key,
	    sizeof(key)), 0);
	assert_string_not_equal(key, vectors[0].key);
}

#define V0(field)	vectors[0].field

static void
test_key_is_valid(void **state)
{
	static const char *const good[] = {
		"37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643",
		/* XML whitespace around the key, as in the XEPs' examples */
		"\n    37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643\n",
		" \t\r\n37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643 ",
	};
	static const char *const bad[] = {
		"",
		"   ",
		/* last digit changed */
		"37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075644",
		/* first digit changed */
		"47c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643",
		/* truncated, and extended */
		"37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b8932307564",
		"37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b893230756430",
		/* whitespace inside */
		"37c69b1cf07a3f67c04a5ef5902fa511 4f2c76fe4a2686482ba5b89323075643",
		/* upper case: keys are minted lower case */
		"37C69B1CF07A3F67C04A5EF5902FA5114F2C76FE4A2686482BA5B89323075643",
		/* the XEP-0220 key for another receiving server */
		"b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3",
	};

	(void)state;
	for (size_t i = 0; i < nitems(good); i++)
		assert_true(dialback_key_is_valid(V0(secret), V0(secret_len),
		    V0(receiving), V0(originating), V0(stream_id), good[i]));
	for (size_t i = 0; i < nitems(bad); i++)
		assert_false(dialback_key_is_valid(V0(secret), V0(secret_len),
		    V0(receiving), V0(originating), V0(stream_id), bad[i]));
	assert_false(dialback_key_is_valid(V0(secret), V0(secret_len),
	    V0(receiving), V0(originating), V0(stream_id), NULL));

	/* Any other input changes the key. */
	assert_false(dialback_key_is_valid("s3cr3tf0rd14lb4cK", 17,
	    V0(receiving), V0(originating), V0(stream_id), V0(key)));
	assert_false(dialback_key_is_valid(V0(secret), V0(secret_len),
	    V0(originating), V0(receiving), V0(stream_id), V0(key)));
	assert_false(dialback_key_is_valid(V0(secret), V0(secret_len),
	    V0(receiving), V0(originating), "D60000229f", V0(key)));
	assert_false(dialback_key_is_valid(V0(secret), V0(secret_len),
	    "xmpp.example.com ", V0(originating), V0(stream_id), V0(key)));
	/* Nothing validates when no key can be minted. */
	assert_false(dialback_key_is_valid(V0(secret), 0, V0(receiving),
	    V0(originating), V0(stream_id), V0(key)));
}

static int
cmp_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_stream_id(void **state)
{
	enum { N = 1000 };
	char (*ids)[DIALBACK_STREAM_ID_SIZE];
	char small[DIALBACK_STREAM_ID_LEN];

	(void)state;
	assert_int_equal(dialback_stream_id(small, sizeof(small)), -1);
	assert_int_equal(dialback_stream_id(NULL, 0), -1);

	ids = calloc(N, sizeof(*ids));
	assert_non_null(ids);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(dialback_stream_id(ids[i], sizeof(ids[i])), 0);
		assert_int_equal(strlen(ids[i]), DIALBACK_STREAM_ID_LEN);
		assert_int_equal(strspn(ids[i], "0123456789abcdef"),
		    DIALBACK_STREAM_ID_LEN);
	}
	/* 128 random bits: no two alike. */
	qsort(ids, N, sizeof(*ids), cmp_ids);
	for (size_t i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_vectors),
		cmocka_unit_test(test_key_arguments),
		cmocka_unit_test(test_key_is_valid),
		cmocka_unit_test(test_stream_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
