/*
 * util: sizes, durations, socket addresses, text accumulation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct unit_case {
	const char	*in;
	int		 rc;
	uint64_t	 value;
};

static void
test_parse_size(void **state)
{
	static const struct unit_case cases[] = {
		{ "0", 0, 0 }, { "1024", 0, 1024 }, { "256k", 0, 262144 },
		{ "256K", 0, 262144 }, { "1m", 0, 1048576 },
		{ "2g", 0, 2147483648ULL }, { "", -1, 0 }, { "k", -1, 0 },
		{ "12kb", -1, 0 }, { "-1", -1, 0 }, { " 1", -1, 0 },
		{ "1.5k", -1, 0 }, { "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -1, 0 }, { "17179869184g", -1, 0 },
	};

	for (size_t i = 0; i < nitems(cases); i++) {
		uint64_t v = 0;

		assert_int_equal(util_parse_size(cases[i].in, &v), cases[i].rc);
		if (cases[i].rc == 0)
			assert_true(v == cases[i].value);
	}
}

static void
test_parse_duration(void **state)
{
	static const struct unit_case cases[] = {
		{ "30", 0, 30000 }, { "30s", 0, 30000 }, { "500ms", 0, 500 },
		{ "10m", 0, 600000 }, { "2h", 0, 7200000 }, { "1d", 0, 86400000 },
		{ "0s", 0, 0 }, { "10M", 0, 600000 }, { "s", -1, 0 },
		{ "10 s", -1, 0 }, { "10sec", -1, 0 }, { "1w", -1, 0 },
	};

	for (size_t i = 0; i < nitems(cases); i++) {
		uint64_t v = 0;

		assert_int_equal(util_parse_duration(cases[i].in, &v),
		    cases[i].rc);
		if (cases[i].rc == 0)
			assert_true(v == cases[i].value);
	}
}

static void
test_unit_strings(void **state)
{
	static const struct {
		uint64_t	 value;
		const char	*size, *duration;
	} cases[] = {
		{ 0, "0", "0s" }, { 1000, "1000", "1s" },
		{ 262144, "256k", "262144ms" }, { 600000, "600000", "10m" },
		{ 1048576, "1m", "1048576ms" }, { 1500, "1500", "1500ms" },
	};
	char buf[32];

	for (size_t i = 0; i < nitems(cases); i++) {
		assert_string_equal(util_size_str(cases[i].value, buf,
		    sizeof(buf)), cases[i].size);
		assert_string_equal(util_duration_str(cases[i].value, buf,
		    sizeof(buf)), cases[i].duration);
	}
}

static void
test_sockaddr(void **state)
{
	static const struct {
		const char	*host;
		uint16_t	 port;
		int		 rc;
		const char	*text;
	} cases[] = {
		{ "192.0.2.1", 5269, 0, "192.0.2.1:5269" },
		{ "2001:db8::1", 5270, 0, "[2001:db8::1]:5270" },
		{ "*", 5269, 0, "[::]:5269" },
		{ "::", 1, 0, "[::]:1" },
		{ "example.org", 5269, -1, NULL },
		{ "192.0.2.256", 5269, -1, NULL },
		{ "", 5269, -1, NULL },
	};
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[UTIL_SOCKADDR_STRLEN];

	for (size_t i = 0; i < nitems(cases); i++) {
		assert_int_equal(util_sockaddr_parse(cases[i].host,
		    cases[i].port, &ss, &len), cases[i].rc);
		if (cases[i].rc == 0)
			assert_string_equal(util_sockaddr_str(
			    (struct sockaddr *)&ss, buf, sizeof(buf)),
			    cases[i].text);
	}
}

static void
test_append_line(void **state)
{
	char *text = NULL;

	assert_int_equal(util_append_line(&text, "a.conf:1: one"), 0);
	assert_int_equal(util_append_line(&text, ""), 0);
	assert_int_equal(util_append_line(&text, "a.conf:3: three"), 0);
	assert_string_equal(text, "a.conf:1: one\n\na.conf:3: three\n");
	free(text);
}

static void
test_now_is_monotonic(void **state)
{
	uint64_t a = util_now_ms(), b = util_now_ms();

	assert_true(b >= a);
	assert_true(a > 0);
}

static void
test_esc(void **state)
{
	static const struct {
		const char	*in;
		size_t		 len;
		const char	*out;
	} cases[] = {
		{ "corp.example", 64, "corp.example" },
		{ NULL, 64, "(none)" },
		{ "", 64, "" },
		{ "a\nb\rc\td", 64, "a\\x0ab\\x0dc\\x09d" },
		{ "q\"b\\s", 64, "q\\\"b\\\\s" },
		{ "\x1b[31mred", 64, "\\x1b[31mred" },
		{ "caf\xc3\xa9\x7f", 64, "caf\\xc3\\xa9\\x7f" },
		/* exactly fits: 31 bytes in 32 */
		{ "0123456789012345678901234567890", 32,
		    "0123456789012345678901234567890" },
		/* one more: cut, with the length */
		{ "01234567890123456789012345678901", 32,
		    "012345678901234567...(32 bytes)" },
		/* never cut inside an escape */
		{ "\n\n\n\n\n\n\n\n\n\n\n\n", 40,
		    "\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a...(12 bytes)" },
	};
	char buf[128];

	for (size_t i = 0; i < nitems(cases); i++) {
		memset(buf, 'Z', sizeof(buf));
		assert_ptr_equal(util_esc(cases[i].in, buf, cases[i].len), buf);
		assert_string_equal(buf, cases[i].out);
		assert_true(strlen(buf) < cases[i].len);
	}
}

/* Long strings of every byte never overrun the buffer or let a control
 * character through; the macro's buffer is enough for any length. */
static void
test_esc_bounds(void **state)
{
	static const size_t sizes[] = { 0, 1, 31, 32, 33, 127, 128, 129,
	    4096, 65536 };
	char *in, buf[UTIL_ESC_MAX + 8];

	assert_non_null(in = malloc(65537));
	for (size_t i = 0; i < 65536; i++)
		in[i] = (char)(i % 255 + 1);
	for (size_t i = 0; i < nitems(sizes); i++) {
		in[sizes[i]] = '\0';
		memset(buf, 'Z', sizeof(buf));
		util_esc(in, buf, UTIL_ESC_MAX);
		assert_true(strlen(buf) < UTIL_ESC_MAX);
		assert_int_equal(buf[UTIL_ESC_MAX], 'Z');
		for (const char *p = buf; *p != '\0'; p++)
			assert_true(*p >= 0x20 && *p < 0x7f);
		assert_true(strlen(UTIL_ESC(in)) < UTIL_ESC_MAX);
		in[sizes[i]] = (char)(sizes[i] % 255 + 1);
	}
	assert_string_equal(util_esc_mem("ab\0cd", 5, buf, 32), "ab\\x00cd");
	free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_unit_strings),
		cmocka_unit_test(test_sockaddr),
		cmocka_unit_test(test_append_line),
		cmocka_unit_test(test_now_is_monotonic),
		cmocka_unit_test(test_esc),
		cmocka_unit_test(test_esc_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
