/*
 * sandbox: the relay's system-call filter (seccomp, through libseccomp).
 * The relay owns every peer connection; if a peer ever takes control of
 * it, it must not be able to run a program, trace another process, load
 * kernel code, mount, change its identity or enter other namespaces.
 * The filter is a deny-list: those calls fail with EPERM, everything the
 * relay, libevent, OpenSSL and libunbound do goes on as before. A
 * deny-list is what stays correct across library versions; an allow-list
 * would break the day a library starts using another call.
 */
#ifndef FEDGATE_SANDBOX_H
#define FEDGATE_SANDBOX_H

#include <stddef.h>

/*
 * Install the filter on the calling process (all its threads to come).
 * Call after the last identity change and PR_SET_NO_NEW_PRIVS. Return 0,
 * or -1 with err saying why (then nothing was installed).
 */
int	sandbox_enter(char *err, size_t errlen);
/* How many system calls the filter denies (for the log). */
unsigned sandbox_denied(void);

#endif
