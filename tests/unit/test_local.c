/*
 * test_local: the lookup of local names (local.h): own names on both
 * faces, subdomains at any depth, the list of subdomains, the longest
 * suffix, a domain block's own name winning, and a map that must go
 * both ways.
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

#include "config.h"
#include "local.h"

static const char local_conf[] =
    "dialback secret \"0123456789abcdef0123456789abcdef\"\n"
    "domain \"corp.example\" {\n"
    "	upstream \"192.0.2.1\"\n"
    "	internal-name \"corp.internal\"\n"
    "	subdomains\n"
    "}\n"
    "domain \"lab.example\" {\n"
    "	upstream \"192.0.2.2\"\n"
    "	subdomains \"conference\" \"pubsub.x\"\n"
    "}\n"
    "domain \"eu.corp.example\" {\n"
    "	upstream \"192.0.2.3\"\n"
    "	internal-name \"eu.inside\"\n"
    "	subdomains\n"
    "}\n"
    "domain \"plain.example\" {\n"
    "	upstream \"192.0.2.4\"\n"
    "}\n"
    /* its own name is corp.example's subdomain name inside */
    "domain \"other.example\" {\n"
    "	upstream \"192.0.2.5\"\n"
    "	internal-name \"muc.corp.internal\"\n"
    "}\n";

static struct config *
load(void)
{
	char *errors = NULL;
	struct config *c = config_load_buffer("local.conf", local_conf,
	    strlen(local_conf), false, &errors);

	if (c == NULL)
		fprintf(stderr, "%s", errors);
	assert_non_null(c);
	free(errors);
	return c;
}

struct local_case {
	enum config_face face;
	const char	*name;
	const char	*pub;	/* NULL: not local */
	const char	*in;
	bool		 sub;
};

static const struct local_case local_cases[] = {
	{ CONFIG_FACE_PUBLIC, "corp.example", "corp.example", "corp.internal",
	    false },
	{ CONFIG_FACE_INTERNAL, "corp.internal", "corp.example",
	    "corp.internal", false },
	{ CONFIG_FACE_PUBLIC, "conference.corp.example",
	    "conference.corp.example", "conference.corp.internal", true },
	{ CONFIG_FACE_INTERNAL, "conference.corp.internal",
	    "conference.corp.example", "conference.corp.internal", true },
	{ CONFIG_FACE_TRANSPARENT, "a.b.corp.internal", "a.b.corp.example",
	    "a.b.corp.internal", true },
	{ CONFIG_FACE_PUBLIC, "CONFERENCE.Corp.Example",
	    "CONFERENCE.Corp.Example", "CONFERENCE.corp.internal", true },
	/* the public name is not a name inside, and the reverse */
	{ CONFIG_FACE_INTERNAL, "conference.corp.example", NULL, NULL, false },
	{ CONFIG_FACE_PUBLIC, "conference.corp.internal", NULL, NULL, false },
	/* not under it: a suffix that is not a label */
	{ CONFIG_FACE_PUBLIC, "xcorp.example", NULL, NULL, false },
	{ CONFIG_FACE_PUBLIC, ".corp.example", NULL, NULL, false },
	/* own block wins; the longest suffix wins */
	{ CONFIG_FACE_PUBLIC, "eu.corp.example", "eu.corp.example",
	    "eu.inside", false },
	{ CONFIG_FACE_PUBLIC, "muc.eu.corp.example", "muc.eu.corp.example",
	    "muc.eu.inside", true },
	{ CONFIG_FACE_INTERNAL, "muc.eu.inside", "muc.eu.corp.example",
	    "muc.eu.inside", true },
	/* the list: exactly those names */
	{ CONFIG_FACE_PUBLIC, "conference.lab.example",
	    "conference.lab.example", "conference.lab.example", true },
	{ CONFIG_FACE_INTERNAL, "pubsub.x.lab.example", "pubsub.x.lab.example",
	    "pubsub.x.lab.example", true },
	{ CONFIG_FACE_PUBLIC, "pubsub.lab.example", NULL, NULL, false },
	{ CONFIG_FACE_PUBLIC, "a.conference.lab.example", NULL, NULL, false },
	{ CONFIG_FACE_PUBLIC, "x.lab.example", NULL, NULL, false },
	/* no subdomains */
	{ CONFIG_FACE_PUBLIC, "conference.plain.example", NULL, NULL, false },
	{ CONFIG_FACE_PUBLIC, "plain.example", "plain.example",
	    "plain.example", false },
	/* other.example is muc.corp.internal inside: muc.corp.example is
	 * not corp.example's subdomain, which would map to it */
	{ CONFIG_FACE_INTERNAL, "muc.corp.internal", "other.example",
	    "muc.corp.internal", false },
	{ CONFIG_FACE_PUBLIC, "muc.corp.example", NULL, NULL, false },
	{ CONFIG_FACE_PUBLIC, "remote.example", NULL, NULL, false },
	{ CONFIG_FACE_PUBLIC, "", NULL, NULL, false },
};

static void
test_local_find(void **state)
{
	struct config *c = load();
	struct local_name n;

	(void)state;
	for (size_t i = 0; i < sizeof(local_cases) / sizeof(local_cases[0]);
	    i++) {
		const struct local_case *k = &local_cases[i];
		bool found = local_find(c, k->face, k->name, &n);

		if (found != (k->pub != NULL))
			fail_msg("case %zu (%s): found %d", i, k->name, found);
		assert_int_equal(local_is(c, k->face, k->name), found);
		if (!found)
			continue;
		assert_string_equal(n.public_name, k->pub);
		assert_string_equal(n.internal_name, k->in);
		assert_int_equal(n.subdomain, k->sub);
		assert_string_equal(local_name_on(&n, CONFIG_FACE_PUBLIC),
		    k->pub);
		assert_string_equal(local_name_on(&n, CONFIG_FACE_INTERNAL),
		    k->in);
	}
	config_unref(c);
}

static void
test_local_domain_covers(void **state)
{
	struct config *c = load();
	const struct config_domain *corp = config_domain_find(c,
	    "corp.example"), *lab = config_domain_find(c, "lab.example");

	(void)state;
	assert_true(local_domain_covers(corp, "a.corp.example"));
	assert_false(local_domain_covers(corp, "corp.example"));
	assert_true(local_domain_covers(lab, "conference.lab.example"));
	assert_false(local_domain_covers(lab, "other.lab.example"));
	assert_false(local_domain_covers(config_domain_find(c,
	    "plain.example"), "a.plain.example"));
	config_unref(c);
}

/* A name whose subdomain would not fit a domain on the other face. */
static void
test_local_too_long(void **state)
{
	static const char conf[] =
	    "dialback secret \"0123456789abcdef0123456789abcdef\"\n"
	    "domain \"a.example\" {\n"
	    "	upstream \"192.0.2.1\"\n"
	    "	internal-name \"a-much-longer-internal-name.example\"\n"
	    "	subdomains\n"
	    "}\n";
	char name[JID_DOMAIN_MAX];
	char *errors = NULL;
	struct config *c = config_load_buffer("long.conf", conf, strlen(conf),
	    false, &errors);

	(void)state;
	assert_non_null(c);
	/* three labels of 63, one of 51, then .a.example: 253 bytes */
	memset(name, 'x', sizeof(name));
	name[63] = name[127] = name[191] = '.';
	memcpy(name + 243, ".a.example", sizeof(".a.example"));
	assert_int_equal(strlen(name), JID_DOMAIN_MAX - 1);
	assert_false(local_is(c, CONFIG_FACE_PUBLIC, name));
	assert_true(local_is(c, CONFIG_FACE_PUBLIC, "x.a.example"));
	config_unref(c);
	free(errors);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_find),
		cmocka_unit_test(test_local_domain_covers),
		cmocka_unit_test(test_local_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
