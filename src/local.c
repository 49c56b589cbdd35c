/*
 * local: local names and their two faces (local.h).
 */
#include "fgconfig.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "local.h"

/* d's name on face: the public name, or the internal one. */
static const char *
local_domain_name(const struct config_domain *d, bool inside)
{
	if (inside && d->internal_name != NULL)
		return d->internal_name;
	return d->name;
}

/* The exact domain block of name on a face, or NULL. */
static const struct config_domain *
local_exact(const struct config *c, bool inside, const char *name)
{
	return inside ? config_domain_find_internal(c, name) :
	    config_domain_find(c, name);
}

/*
 * Whether name ends in "." suffix with something before it; store in
 * *plen the length of that something (X of X.suffix).
 */
static bool
local_is_under(const char *name, const char *suffix, size_t *plen)
{
	size_t n = strlen(name), s = strlen(suffix);

	if (n < s + 2 || name[n - s - 1] != '.' ||
	    strcasecmp(name + n - s, suffix) != 0)
		return false;
	*plen = n - s - 1;
	return true;
}

/* Whether d's subdomains cover X (the plen bytes at x). */
static bool
local_prefix_is_covered(const struct config_domain *d, const char *x,
    size_t plen)
{
	if (!d->subdomains)
		return false;
	if (d->nsubdomain_names == 0)
		return true;
	for (size_t i = 0; i < d->nsubdomain_names; i++)
		if (strlen(d->subdomain_names[i]) == plen &&
		    strncasecmp(d->subdomain_names[i], x, plen) == 0)
			return true;
	return false;
}

bool
local_domain_covers(const struct config_domain *d, const char *public_sub)
{
	size_t plen;

	return local_is_under(public_sub, d->name, &plen) &&
	    local_prefix_is_covered(d, public_sub, plen);
}

/* Fill out for the domain d and name on its face (inside or not). */
static bool
local_fill(const struct config_domain *d, bool inside, const char *name,
    size_t plen, bool sub, struct local_name *out)
{
	const char *pub = local_domain_name(d, false);
	const char *in = local_domain_name(d, true);
	int n1, n2;

	if (!sub) {
		n1 = snprintf(out->public_name, JID_DOMAIN_MAX, "%s", pub);
		n2 = snprintf(out->internal_name, JID_DOMAIN_MAX, "%s", in);
	} else if (inside) {
		n1 = snprintf(out->public_name, JID_DOMAIN_MAX, "%.*s.%s",
		    (int)plen, name, pub);
		n2 = snprintf(out->internal_name, JID_DOMAIN_MAX, "%s", name);
	} else {
		n1 = snprintf(out->public_name, JID_DOMAIN_MAX, "%s", name);
		n2 = snprintf(out->internal_name, JID_DOMAIN_MAX, "%.*s.%s",
		    (int)plen, name, in);
	}
	out->dom = d;
	out->subdomain = sub;
	return n1 >= 0 && n1 < JID_DOMAIN_MAX && n2 >= 0 &&
	    n2 < JID_DOMAIN_MAX;
}

bool
local_find(const struct config *c, enum config_face face, const char *name,
    struct local_name *out)
{
	const struct config_domain *d, *best = NULL;
	struct local_name tmp;
	bool inside = face != CONFIG_FACE_PUBLIC;
	size_t plen, bestlen = 0;

	if (out == NULL)
		out = &tmp;
	if (name == NULL || name[0] == '\0')
		return false;
	if ((d = local_exact(c, inside, name)) != NULL)
		return local_fill(d, inside, name, 0, false, out);
	TAILQ_FOREACH(d, &c->domains, entry)
		if (d->subdomains &&
		    local_is_under(name, local_domain_name(d, inside), &plen) &&
		    (best == NULL || plen < bestlen) &&
		    local_prefix_is_covered(d, name, plen)) {
			best = d;
			bestlen = plen;
		}
	if (best == NULL ||
	    !local_fill(best, inside, name, bestlen, true, out))
		return false;
	/* the other face's name must not be another domain's own */
	return local_exact(c, !inside, inside ? out->public_name :
	    out->internal_name) == NULL;
}

bool
local_is(const struct config *c, enum config_face face, const char *name)
{
	return local_find(c, face, name, NULL);
}

const char *
local_name_on(const struct local_name *out, enum config_face face)
{
	return face == CONFIG_FACE_PUBLIC ? out->public_name :
	    out->internal_name;
}
