/*
 * preflight: what `fedgated -n` checks beyond the file itself. A
 * configuration can be correct as text and still fail to start on the
 * host it is given to: a key that does not match its certificate, a user
 * that does not exist, a pid-file directory that is missing, a listener
 * address this host does not have, TLS required of peers while a local
 * domain has no certificate to offer, a CA directory the relay cannot read
 * once it is no longer root. preflight_check() looks for each of those
 * the way start-up would meet them, without binding a port, forking a
 * daemon, or writing a file.
 *
 * `fedgated -N` checks the file alone (for a configuration prepared on
 * another machine, and for the configuration tests as data).
 */
#ifndef FEDGATE_PREFLIGHT_H
#define FEDGATE_PREFLIGHT_H

struct config;

/*
 * Check c against this host. Append one line per problem to *errors
 * ("FILE:LINE: what" where the configuration says where, else "what"),
 * as config_load() does. Return the number of problems (0: start-up will
 * get past everything the configuration decides).
 *
 * Run as root (as fedgated starts), the files the relay reads after it has
 * dropped to its user are checked by a child process that drops to that
 * user; run as another user, every file is checked as that user.
 */
int	preflight_check(const struct config *c, char **errors);

#endif
