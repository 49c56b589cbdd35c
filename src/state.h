/*
 * state: what fedgated keeps across restarts, in its state directory
 * (`state directory`, by default LOCALSTATEDIR/lib/fedgated). Today that
 * is the runtime policy: the peer rules that `fedgatectl policy allow`,
 * `deny` and `remove` set, kept in the file "policy" of that directory in
 * fedgated.conf(5) syntax, one rule per line, so that an operator can read
 * it and fedgated reads it back with its own grammar. The file is replaced
 * as a whole after each change (written beside it, then renamed over it),
 * so a crash leaves the old file or the new one, never half of one.
 */
#ifndef FEDGATE_STATE_H
#define FEDGATE_STATE_H

#include <sys/types.h>

#include <stddef.h>

#define STATE_POLICY_FILE	"policy"
#define STATE_POLICY_MAX	4096	/* runtime rules */

struct policy;

/*
 * Read dir's policy file, if there is one, and set each of its rules in p
 * as a runtime rule (origin "control"), over a rule of the file for the
 * same pattern. Return the number of rules read (0 without a file), or -1
 * with the reasons appended to *errors ("FILE:LINE: message" lines): a
 * syntax error, or anything in it but peer rules of allow, deny, tls,
 * verify and auth.
 */
int	state_load_policy(const char *dir, struct policy *p, char **errors);

/*
 * Write the runtime rules of p to dir's policy file, replacing it. Make
 * dir first if it is missing (its parent must exist). Return 0, or -1 with
 * the reason in err (errlen bytes).
 */
int	state_save_policy(const char *dir, const struct policy *p, char *err,
	    size_t errlen);

/*
 * Make dir if it is missing (one level, mode 0750) and give it to uid and
 * gid, so that the process that drops to them can write there. A dir that
 * exists is left as it is. Return 0, or -1 with errno set.
 */
int	state_prepare_dir(const char *dir, uid_t uid, gid_t gid);

#endif
