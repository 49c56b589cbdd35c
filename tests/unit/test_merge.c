/*
 * Unit tests for merge (workers N: the replies of the workers made one):
 * Prometheus expositions summed sample by sample, with samples only some
 * workers have kept in their family, decimals (histogram sums) summed
 * exactly, malformed texts refused; control replies merged by the rules
 * of their command (arrays put end to end, counts summed, the first
 * error kept, kill ok if one worker had the leg, a worker that gave no
 * answer named).
 */
#include "fgconfig.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <json.h>

#include "merge.h"

/* merge_metrics() of n texts as a string (static), or NULL on -1. */
static const char *
sum(const char *const *texts, unsigned n)
{
	static char out[4096];
	struct evbuffer *b = evbuffer_new();
	size_t len;
	int rc;

	assert_non_null(b);
	rc = merge_metrics(texts, n, b);
	len = evbuffer_get_length(b);
	assert_true(len < sizeof(out));
	evbuffer_copyout(b, out, len);
	out[len] = '\0';
	evbuffer_free(b);
	return rc == 0 ? out : NULL;
}

static void
test_metrics_sum(void **state)
{
	const char *a =
	    "# HELP x_total X.\n# TYPE x_total counter\n"
	    "x_total{face=\"public\"} 3\n"
	    "x_total{face=\"transparent\"} 1\n"
	    "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
	    "h_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 0.250\n"
	    "h_seconds_count 2\n"
	    "# HELP legs Legs.\n# TYPE legs gauge\nlegs 4\n";
	const char *b =
	    "# HELP x_total X.\n# TYPE x_total counter\n"
	    "x_total{face=\"internal\"} 7\n"
	    "x_total{face=\"public\"} 5\n"
	    "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
	    "h_seconds_bucket{le=\"+Inf\"} 1\nh_seconds_sum 1.8\n"
	    "h_seconds_count 1\n"
	    "# HELP legs Legs.\n# TYPE legs gauge\nlegs 6\n";
	const char *texts[] = { a, b };

	assert_string_equal(sum(texts, 2),
	    "# HELP x_total X.\n# TYPE x_total counter\n"
	    "x_total{face=\"internal\"} 7\n"
	    "x_total{face=\"public\"} 8\n"
	    "x_total{face=\"transparent\"} 1\n"
	    "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
	    "h_seconds_bucket{le=\"+Inf\"} 3\nh_seconds_sum 2.050\n"
	    "h_seconds_count 3\n"
	    "# HELP legs Legs.\n# TYPE legs gauge\nlegs 10\n");
	/* one text: the same text; none: nothing */
	assert_string_equal(sum(texts, 1), a);
	assert_string_equal(sum(texts, 0), "");
}

static void
test_metrics_malformed(void **state)
{
	static const char *const bad[] = {
		"x 1.2345\n",		/* more than 3 decimals */
		"x\n",			/* no value */
		"x -1\n",
		"x 1e3\n",
		"x 1.\n",
		" 1\n",			/* no name */
		"x 99999999999999999999\n",
	};
	const char *texts[2] = { "x 1\n" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		texts[1] = bad[i];
		assert_null(sum(texts, 2));
	}
	/* a last line without LF still counts */
	texts[1] = "x 2";
	assert_string_equal(sum(texts, 2), "x 3\n");
}

/* merge_replies() of a local reply and peers; the result as text. */
static const char *
merged(const char *command, const char *local, const char *const *peers,
    unsigned n, int *rc)
{
	static char out[4096];
	struct json_object *reply = json_tokener_parse(local), *ok;
	int local_rc;

	assert_non_null(reply);
	local_rc = json_object_object_get_ex(reply, "ok", &ok) &&
	    json_object_get_boolean(ok) ? 0 : -1;
	*rc = merge_replies(command, reply, local_rc,
	    (char *const *)(uintptr_t)peers, n);
	json_object_object_del(reply, "ok");
	snprintf(out, sizeof(out), "%s", json_object_to_json_string_ext(reply,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(reply);
	return out;
}

static void
test_replies_sessions(void **state)
{
	const char *peers[] = {
		"{\"ok\":true,\"command\":\"sessions\",\"sessions\":"
		    "[{\"id\":2},{\"id\":4}]}",
		"{\"ok\":true,\"command\":\"sessions\",\"sessions\":[]}",
	};
	int rc;

	assert_string_equal(merged("sessions", "{\"ok\":true,\"command\":"
	    "\"sessions\",\"sessions\":[{\"id\":1}]}", peers, 2, &rc),
	    "{\"command\":\"sessions\",\"sessions\":[{\"id\":1},{\"id\":2},"
	    "{\"id\":4}]}");
	assert_int_equal(rc, 0);
	/* a worker that gave no answer: an error naming it */
	peers[1] = NULL;
	assert_string_equal(merged("sessions", "{\"ok\":true,\"command\":"
	    "\"sessions\",\"sessions\":[]}", peers, 2, &rc),
	    "{\"command\":\"sessions\",\"sessions\":[{\"id\":2},{\"id\":4}],"
	    "\"error\":\"worker 2 did not answer\"}");
	assert_int_equal(rc, -1);
	/* nor does a reply that is not an object */
	peers[1] = "[1]";
	merged("sessions", "{\"ok\":true,\"sessions\":[]}", peers, 2, &rc);
	assert_int_equal(rc, -1);
}

static void
test_replies_errors(void **state)
{
	const char *peers[] = {
		"{\"ok\":false,\"command\":\"reload\",\"error\":\"reload "
		    "refused\",\"errors\":[\"f.conf:3: bad\"]}",
	};
	int rc;

	assert_string_equal(merged("reload", "{\"ok\":true,\"command\":"
	    "\"reload\",\"reloads\":1}", peers, 1, &rc),
	    "{\"command\":\"reload\",\"reloads\":1,\"error\":\"worker 1: "
	    "reload refused\",\"errors\":[\"f.conf:3: bad\"]}");
	assert_int_equal(rc, -1);
	/* worker 0's own error is kept */
	assert_string_equal(merged("reload", "{\"ok\":false,\"command\":"
	    "\"reload\",\"error\":\"mine\"}", peers, 1, &rc),
	    "{\"command\":\"reload\",\"error\":\"mine\"}");
	assert_int_equal(rc, -1);
}

static void
test_replies_kill(void **state)
{
	const char *peers[] = {
		"{\"ok\":false,\"command\":\"kill\",\"error\":\"no such "
		    "session\"}",
		"{\"ok\":true,\"command\":\"kill\",\"closed\":1}",
	};
	int rc;

	/* the leg lives in worker 2: ok, worker 0's error gone */
	assert_string_equal(merged("kill", "{\"ok\":false,\"command\":"
	    "\"kill\",\"error\":\"no such session\"}", peers, 2, &rc),
	    "{\"command\":\"kill\",\"closed\":1}");
	assert_int_equal(rc, 0);
	peers[1] = peers[0];
	assert_string_equal(merged("kill", "{\"ok\":false,\"command\":"
	    "\"kill\",\"error\":\"no such session\"}", peers, 2, &rc),
	    "{\"command\":\"kill\",\"error\":\"no such session\"}");
	assert_int_equal(rc, -1);
}

static void
test_replies_sums(void **state)
{
	const char *peers[] = {
		"{\"ok\":true,\"command\":\"status\",\"legs\":5}",
		"{\"ok\":true,\"command\":\"status\",\"legs\":7}",
	};
	int rc;

	assert_string_equal(merged("status", "{\"ok\":true,\"command\":"
	    "\"status\",\"pid\":1,\"legs\":2}", peers, 2, &rc),
	    "{\"command\":\"status\",\"pid\":1,\"legs\":14,\"workers\":3}");
	assert_int_equal(rc, 0);
	/* a command worker 0 answers alone is left as it is */
	assert_string_equal(merged("policy check", "{\"ok\":true,\"legs\":2}",
	    peers, 2, &rc), "{\"legs\":2}");
	assert_int_equal(rc, 0);
	assert_int_equal(merge_kind("policy check"), MERGE_NONE);
	assert_int_equal(merge_kind("check"), MERGE_NONE);
	assert_int_equal(merge_kind("drain"), MERGE_BROADCAST);
	assert_int_equal(merge_kind("sessions"), MERGE_GATHER);
}

static void
test_replies_metrics(void **state)
{
	const char *peers[] = {
		"{\"ok\":true,\"command\":\"metrics\",\"text\":\"a 2\\nb 1\\n\"}",
		"{\"ok\":true,\"command\":\"metrics\",\"text\":\"a x\\n\"}",
	};
	int rc;

	assert_string_equal(merged("metrics", "{\"ok\":true,\"command\":"
	    "\"metrics\",\"text\":\"a 1\\n\"}", peers, 1, &rc),
	    "{\"command\":\"metrics\",\"text\":\"a 3\\nb 1\\n\"}");
	assert_int_equal(rc, 0);
	merged("metrics", "{\"ok\":true,\"command\":\"metrics\",\"text\":"
	    "\"a 1\\n\"}", peers, 2, &rc);
	assert_int_equal(rc, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_sum),
		cmocka_unit_test(test_metrics_malformed),
		cmocka_unit_test(test_replies_sessions),
		cmocka_unit_test(test_replies_errors),
		cmocka_unit_test(test_replies_kill),
		cmocka_unit_test(test_replies_sums),
		cmocka_unit_test(test_replies_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
