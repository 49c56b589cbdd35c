/*
 * notify: tell the service manager how the daemon is doing, the protocol
 * of sd_notify(3) without libsystemd. A notification is one datagram of
 * newline-separated VARIABLE=value assignments ("READY=1",
 * "RELOADING=1", "STOPPING=1", "STATUS=text"), sent on an AF_UNIX
 * SOCK_DGRAM socket to the address in $NOTIFY_SOCKET: a file system path,
 * or an abstract socket name written with a leading '@'. The manager
 * learns the sender's PID from the socket's credentials, so the process
 * that sends must be one the unit's NotifyAccess= admits (fedgated's relay
 * sends, hence NotifyAccess=all in its unit).
 */
#ifndef FEDGATE_NOTIFY_H
#define FEDGATE_NOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

/*
 * Send state (assignments separated by '\n') to the manager named by
 * $NOTIFY_SOCKET. Return 0 when it was sent, or when NOTIFY_SOCKET is
 * unset or empty (nobody listens: nothing to do); -1 with errno set when
 * the address is unusable (EINVAL: not absolute and not '@',
 * ENAMETOOLONG; EAFNOSUPPORT: a kind of address this module does not
 * speak, such as vsock:) or sending failed.
 */
int	notify_send(const char *state);

#ifdef NOTIFY_PRIVATE
/*
 * Turn the NOTIFY_SOCKET value name into *sun and its length *len ('@'
 * becomes the leading NUL of an abstract name, which has no trailing
 * NUL). Return 0, or -1 with errno set as notify_send() documents.
 */
int	notify_address(const char *name, struct sockaddr_un *sun,
	    socklen_t *len);
#endif

#endif
