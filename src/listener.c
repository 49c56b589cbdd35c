/*
 * listener: an evconnlistener per listening socket.
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>

#include "listener.h"
#include "log.h"
#include "util.h"

struct listener {
	struct evconnlistener	*evl;
	listener_accept_fn	 accept;
	void			*arg;
	char			 address[UTIL_SOCKADDR_STRLEN];
};

static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *peer, int peerlen, void *arg)
{
	struct listener *l = arg;

	l->accept(l, fd, peer, (socklen_t)peerlen, l->arg);
}

static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;

	/* EMFILE and friends: log (bounded by libevent's retry) and go on. */
	log_warnx("listener %s: accept: %s", l->address,
	    strerror(EVUTIL_SOCKET_ERROR()));
}

/* A socket bound to addr, listening, nonblocking; -1 with err set. */
static int
listener_socket(const struct sockaddr *addr, socklen_t addrlen, char *err,
    size_t errlen)
{
	const int on = 1, off = 0;
	int fd;

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		goto fail;
	if (addr->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) == -1)
		goto fail;
	if (bind(fd, addr, addrlen) == -1 || listen(fd, 128) == -1)
		goto fail;
	return fd;
 fail:
	snprintf(err, errlen, "%s", strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

struct listener *
listener_new(struct event_base *base, const struct sockaddr *addr,
    socklen_t addrlen, listener_accept_fn fn, void *arg, char *err,
    size_t errlen)
{
	struct listener *l;
	int fd;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	util_sockaddr_str(addr, l->address, sizeof(l->address));
	if ((fd = listener_socket(addr, addrlen, err, errlen)) == -1) {
		free(l);
		return NULL;
	}
	l->accept = fn;
	l->arg = arg;
	l->evl = evconnlistener_new(base, listener_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_DISABLED, -1, fd);
	if (l->evl == NULL) {
		snprintf(err, errlen, "cannot create the listener");
		close(fd);
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->evl, listener_error_cb);
	return l;
}

void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	evconnlistener_free(l->evl);
	free(l);
}

int
listener_enable(struct listener *l, bool on)
{
	return on ? evconnlistener_enable(l->evl) : evconnlistener_disable(l->evl);
}

const char *
listener_address(const struct listener *l)
{
	return l->address;
}
