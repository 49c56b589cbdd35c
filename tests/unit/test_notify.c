/*
 * Unit tests for notify (the sd_notify(3) datagram): every kind of
 * NOTIFY_SOCKET value turned into an address or refused with its errno,
 * and notifications received whole, with the sender's credentials, on a
 * datagram socket in a temporary directory and on an abstract one.
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define NOTIFY_PRIVATE
#include "notify.h"
#include "util.h"

/* The longest names that fit sun_path, and one byte more. */
static void
test_address_long(void **state)
{
	struct sockaddr_un sun;
	socklen_t len;
	char name[sizeof(sun.sun_path) + 2];
	size_t max = sizeof(sun.sun_path);

	/* a path needs its NUL */
	memset(name, 'p', sizeof(name));
	name[0] = '/';
	name[max - 1] = '\0';
	assert_int_equal(notify_address(name, &sun, &len), 0);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + max);
	name[max - 1] = 'p';
	name[max] = '\0';
	errno = 0;
	assert_int_equal(notify_address(name, &sun, &len), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	/* an abstract name does not */
	name[0] = '@';
	assert_int_equal(notify_address(name, &sun, &len), 0);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + max);
	assert_int_equal(sun.sun_path[0], '\0');
	name[max] = 'p';
	name[max + 1] = '\0';
	errno = 0;
	assert_int_equal(notify_address(name, &sun, &len), -1);
	assert_int_equal(errno, ENAMETOOLONG);
}

static void
test_address(void **state)
{
	static const struct {
		const char	*name;
		int		 error;		/* 0: accepted */
		const char	*path;		/* sun_path, '@' for the NUL */
		size_t		 len;		/* bytes of sun_path used */
	} cases[] = {
		{ "/run/systemd/notify", 0, "/run/systemd/notify", 20 },
		{ "@/org/systemd/x", 0, "@/org/systemd/x", 15 },
		{ "@a", 0, "@a", 2 },
		{ "/", EINVAL, NULL, 0 },
		{ "@", EINVAL, NULL, 0 },
		{ "run/systemd/notify", EINVAL, NULL, 0 },
		{ "vsock:2:1234", EAFNOSUPPORT, NULL, 0 },
	};
	struct sockaddr_un sun;
	socklen_t len;
	char want[sizeof(sun.sun_path)];

	for (size_t i = 0; i < nitems(cases); i++) {
		errno = 0;
		if (cases[i].error != 0) {
			if (notify_address(cases[i].name, &sun, &len) != -1 ||
			    errno != cases[i].error)
				fail_msg("case %zu \"%s\": errno %d, not %d", i,
				    cases[i].name, errno, cases[i].error);
			continue;
		}
		assert_int_equal(notify_address(cases[i].name, &sun, &len), 0);
		assert_int_equal(sun.sun_family, AF_UNIX);
		assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) +
		    cases[i].len);
		memset(want, 0, sizeof(want));
		memcpy(want, cases[i].path, strlen(cases[i].path));
		if (want[0] == '@')
			want[0] = '\0';
		assert_memory_equal(sun.sun_path, want, cases[i].len);
	}
}

/* A receiving socket bound to sun, with SO_PASSCRED as the manager's. */
static int
receiver(const struct sockaddr_un *sun, socklen_t len)
{
	int fd, one = 1;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one,
	    sizeof(one)), 0);
	assert_int_equal(bind(fd, (const struct sockaddr *)sun, len), 0);
	return fd;
}

/* Receive one datagram (not waiting: it was sent already) and check it. */
static void
expect(int fd, const char *want)
{
	char buf[256];
	union {
		struct cmsghdr	cm;
		char		b[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = &ctl, .msg_controllen = sizeof(ctl),
	};
	struct cmsghdr *cm;
	struct ucred cred;
	ssize_t n;

	n = recvmsg(fd, &msg, MSG_DONTWAIT);
	if (n < 0)
		fail_msg("no datagram: %s", strerror(errno));
	assert_int_equal((size_t)n, strlen(want));
	assert_memory_equal(buf, want, (size_t)n);
	cm = CMSG_FIRSTHDR(&msg);
	assert_non_null(cm);
	assert_int_equal(cm->cmsg_type, SCM_CREDENTIALS);
	memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
	/* what NotifyAccess= judges the sender by */
	assert_int_equal(cred.pid, getpid());
}

static void
test_send_path(void **state)
{
	char dir[] = "/tmp/fg-notify-XXXXXX", path[64];
	struct sockaddr_un sun;
	socklen_t len;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	assert_int_equal(notify_address(path, &sun, &len), 0);
	fd = receiver(&sun, len);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(notify_send("READY=1"), 0);
	expect(fd, "READY=1");
	/* several assignments: still one datagram */
	assert_int_equal(notify_send("RELOADING=1\nSTATUS=reloading"), 0);
	expect(fd, "RELOADING=1\nSTATUS=reloading");
	close(fd);
	/* nobody listens any more */
	unlink(path);
	errno = 0;
	assert_int_equal(notify_send("STOPPING=1"), -1);
	assert_int_equal(errno, ENOENT);
	unsetenv("NOTIFY_SOCKET");
	rmdir(dir);
}

static void
test_send_abstract(void **state)
{
	char name[64];
	struct sockaddr_un sun;
	socklen_t len;
	int fd;

	snprintf(name, sizeof(name), "@fedgate/test_notify/%ld",
	    (long)getpid());
	assert_int_equal(notify_address(name, &sun, &len), 0);
	fd = receiver(&sun, len);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(notify_send("READY=1"), 0);
	expect(fd, "READY=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_unset(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/notify", 1);
	errno = 0;
	assert_int_equal(notify_send("READY=1"), -1);
	assert_int_equal(errno, EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address),
		cmocka_unit_test(test_address_long),
		cmocka_unit_test(test_send_path),
		cmocka_unit_test(test_send_abstract),
		cmocka_unit_test(test_unset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
