/*
 * notify: the sd_notify(3) datagram (see notify.h). The protocol is one
 * datagram on a Unix socket; the daemon does not link libsystemd for it.
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOTIFY_PRIVATE
#include "notify.h"

int
notify_address(const char *name, struct sockaddr_un *sun, socklen_t *len)
{
	size_t n = strlen(name);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (name[0] != '/' && name[0] != '@') {
		/* sd_notify(3) also knows "vsock:CID:PORT" (systemd 254) */
		errno = strncmp(name, "vsock:", 6) == 0 ? EAFNOSUPPORT : EINVAL;
		return -1;
	}
	if (n < 2) {
		errno = EINVAL;
		return -1;
	}
	/* a path ends with its NUL inside sun_path; an abstract name has none */
	if (n > sizeof(sun->sun_path) - (name[0] == '/')) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun->sun_path, name, n);
	if (name[0] == '@') {
		sun->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int
notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t n = strlen(state);
	ssize_t sent;
	int fd, saved;

	if (name == NULL || *name == '\0')
		return 0;
	if (notify_address(name, &sun, &len) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	sent = sendto(fd, state, n, MSG_NOSIGNAL,
	    (const struct sockaddr *)&sun, len);
	saved = errno;
	close(fd);
	if (sent == -1) {
		errno = saved;
		return -1;
	}
	if ((size_t)sent != n) {
		errno = EMSGSIZE;	/* a datagram goes whole or not at all */
		return -1;
	}
	return 0;
}
