/*
 * local: whether a domain name is one fedgated serves, and what it is
 * called on each face. The one lookup of local names, for every check
 * and rewrite of addressing (stream_in, leg_out, the payload map).
 *
 * A local domain (a domain block) has a public name, its name outside,
 * and an internal name, its name inside (the public name again without
 * internal-name). With subdomains it also covers the names under it, at
 * any depth: X.NAME outside is X.INTERNAL inside, the suffix replaced and
 * X kept as written (with subdomains "a" "b", only X = a or b). A name
 * that is a domain block's own name is that domain, never a subdomain of
 * another; among domains with subdomains the longest suffix wins; a
 * subdomain whose name on the other face is the own name of another
 * domain block is not covered (the map must go both ways).
 *
 * Names are normalised domains (jid_domain_normalize()); ASCII case is
 * ignored. Nothing is allocated; no IDNA here.
 */
#ifndef FEDGATE_LOCAL_H
#define FEDGATE_LOCAL_H

#include <stdbool.h>

#include "config.h"
#include "jid.h"

/* A local name, both faces. */
struct local_name {
	const struct config_domain *dom;	/* its domain block */
	bool	 subdomain;		/* a name under dom, not dom's own */
	char	 public_name[JID_DOMAIN_MAX];	/* outside */
	char	 internal_name[JID_DOMAIN_MAX];	/* inside */
};

/*
 * Whether name is a local name on face (public: a name outside; internal
 * or transparent: a name inside). If so and out is not NULL, fill *out.
 */
bool	local_find(const struct config *c, enum config_face face,
	    const char *name, struct local_name *out);
/* The same as a predicate, for the checks that need no names. */
bool	local_is(const struct config *c, enum config_face face,
	    const char *name);
/* Of out (filled by local_find()): its name on face. */
const char *local_name_on(const struct local_name *out,
	    enum config_face face);
/*
 * Whether d's subdomains cover public_sub, a name under d's public name
 * (d's own name is not its subdomain): the test of local_find() for one
 * domain, without the other domain blocks.
 */
bool	local_domain_covers(const struct config_domain *d,
	    const char *public_sub);

#endif
