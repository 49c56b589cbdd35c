/*
 * fedgatectl: talk to fedgated's control socket. Parse the command words
 * (parser.c), send one line, read one reply line, and print it as text
 * (render.c) or, with -j, as the JSON it is. Every step is bounded by one
 * deadline (-t), so a dead, missing or stuck daemon gives one line of error,
 * never a hang.
 */
#include "fgconfig.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <err.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json.h>

#include "config.h"
#include "parser.h"
#include "render.h"
#include "util.h"

#define CTL_TIMEOUT_SEC		10		/* default -t */
#define CTL_CHECK_TIMEOUT_SEC	60		/* default -t of check */
#define CTL_REPLY_MAX		(64u * 1024 * 1024) /* longest reply accepted */
#define CTL_RETRY_MS		20		/* backlog full: try again */

struct ctl {
	const char	*path;
	int		 fd;
	uint64_t	 deadline;	/* util_now_ms() */
	int		 timeout;	/* seconds, for messages */
};

/* Exit status of a failure to get a reply: check says 2, "cannot tell". */
static int ctl_failure = 1;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: fedgatectl [-j] [-s socket] [-t seconds] "
	    "command [argument ...]\ncommands:\n");
	parser_help(stderr);
	exit(1);
}

/*
 * Wait until fd is ready for events or the deadline passes. Return 0, or
 * -1 after the deadline.
 */
static int
ctl_wait(struct ctl *ctl, short events)
{
	struct pollfd pfd = { .fd = ctl->fd, .events = events };
	uint64_t now;
	int rc;

	for (;;) {
		if ((now = util_now_ms()) >= ctl->deadline)
			return -1;
		rc = poll(&pfd, 1, (int)(ctl->deadline - now));
		if (rc > 0)
			return 0;
		if (rc == -1 && errno != EINTR)
			err(ctl_failure, "poll");
	}
}

static void __attribute__((noreturn))
ctl_connect_failed(const struct ctl *ctl, int error)
{
	errx(ctl_failure, "cannot connect to %s: %s%s", ctl->path,
	    strerror(error), error == ENOENT || error == ECONNREFUSED ?
	    " (is fedgated running?)" : "");
}

static void
ctl_connect(struct ctl *ctl)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int error;
	socklen_t len = sizeof(error);

	if (strlcpy(sun.sun_path, ctl->path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		errx(ctl_failure, "cannot connect to %s: path too long", ctl->path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd == -1)
		err(ctl_failure, "socket");
	for (;;) {
		if (connect(ctl->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* Its backlog is full: it is alive but busy. */
			if (util_now_ms() + CTL_RETRY_MS >= ctl->deadline)
				errx(ctl_failure, "cannot connect to %s: no "
				    "answer within %d s", ctl->path,
				    ctl->timeout);
			poll(NULL, 0, CTL_RETRY_MS);
			continue;
		}
		if (errno != EINPROGRESS)
			ctl_connect_failed(ctl, errno);
		if (ctl_wait(ctl, POLLOUT) == -1)
			errx(ctl_failure, "cannot connect to %s: no answer "
			    "within %d s", ctl->path, ctl->timeout);
		if (getsockopt(ctl->fd, SOL_SOCKET, SO_ERROR, &error, &len) == -1)
			err(ctl_failure, "getsockopt");
		if (error != 0)
			ctl_connect_failed(ctl, error);
		return;
	}
}

/* Send the command line and its LF. */
static void
ctl_send(struct ctl *ctl, const char *line)
{
	size_t len = strlen(line), off = 0;
	char *buf;
	ssize_t n;

	if ((buf = malloc(len + 1)) == NULL)
		err(ctl_failure, NULL);
	memcpy(buf, line, len);
	buf[len++] = '\n';
	while (off < len) {
		n = send(ctl->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			err(ctl_failure, "%s: send", ctl->path);
		if (ctl_wait(ctl, POLLOUT) == -1)
			errx(ctl_failure, "%s: cannot send within %d s", ctl->path,
			    ctl->timeout);
	}
	free(buf);
}

/* Read one reply line. Return it without its LF, NUL-terminated. */
static char *
ctl_receive(struct ctl *ctl, size_t *lenp)
{
	char *buf = NULL, *n, *lf;
	size_t len = 0, size = 0;
	ssize_t r;

	for (;;) {
		if (size - len < 4096) {
			if (size >= CTL_REPLY_MAX)
				errx(ctl_failure, "%s: reply longer than %u bytes",
				    ctl->path, CTL_REPLY_MAX);
			size = size == 0 ? 16384 : size * 2;
			if ((n = realloc(buf, size)) == NULL)
				err(ctl_failure, NULL);
			buf = n;
		}
		r = recv(ctl->fd, buf + len, size - len - 1, 0);
		if (r > 0) {
			buf[len + (size_t)r] = '\0';
			if ((lf = memchr(buf + len, '\n', (size_t)r)) != NULL) {
				*lf = '\0';
				*lenp = (size_t)(lf - buf);
				return buf;
			}
			len += (size_t)r;
			continue;
		}
		if (r == 0)
			errx(ctl_failure, "%s: fedgated closed the "
			    "connection without a reply", ctl->path);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			err(ctl_failure, "%s: recv", ctl->path);
		if (ctl_wait(ctl, POLLIN) == -1)
			errx(ctl_failure, "%s: no reply within %d s", ctl->path,
			    ctl->timeout);
	}
}

int
main(int argc, char *argv[])
{
	struct ctl ctl = { .path = CONFIG_DEFAULT_CONTROL, .fd = -1,
	    .timeout = CTL_TIMEOUT_SEC };
	struct parse_result res;
	struct json_object *reply, *ok;
	const char *errstr;
	char msg[512], *line;
	size_t len;
	bool json = false, timeout_set = false;
	int ch, rc;

	/* "+": options come before the command, whose words are its own. */
	while ((ch = getopt(argc, argv, "+hjs:t:")) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 's':
			ctl.path = optarg;
			break;
		case 't':
			ctl.timeout = (int)strtonum(optarg, 1, 3600, &errstr);
			timeout_set = true;
			if (errstr != NULL)
				errx(1, "timeout %s seconds is %s", optarg,
				    errstr);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		usage();
	if (parser_parse(argc, argv, &res, msg, sizeof(msg)) == -1) {
		warnx("%s", msg);
		usage();
	}
	if (res.action == PARSER_HELP) {
		printf("usage: fedgatectl [-j] [-s socket] [-t seconds] "
		    "command [argument ...]\ncommands:\n");
		parser_help(stdout);
		return 0;
	}

	if (res.action == PARSER_CHECK) {
		ctl_failure = 2;
		if (!timeout_set)
			ctl.timeout = CTL_CHECK_TIMEOUT_SEC;
	}
	signal(SIGPIPE, SIG_IGN);
	ctl.deadline = util_now_ms() + (uint64_t)ctl.timeout * 1000;
	ctl_connect(&ctl);
	ctl_send(&ctl, res.line);
	line = ctl_receive(&ctl, &len);
	close(ctl.fd);

	reply = json_tokener_parse(line);
	if (reply == NULL || !json_object_is_type(reply, json_type_object) ||
	    !json_object_object_get_ex(reply, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean))
		errx(ctl_failure, "%s: malformed reply from fedgated", ctl.path);
	if (json) {
		fwrite(line, 1, len, stdout);
		fputc('\n', stdout);
		rc = json_object_get_boolean(ok) ? 0 : 1;
	} else
		rc = render_reply(res.action, reply, stdout, stderr);
	if (res.action == PARSER_CHECK)
		rc = render_check_status(reply);
	json_object_put(reply);
	free(line);
	if (fflush(stdout) == EOF || ferror(stdout))
		err(ctl_failure, "stdout");
	return rc;
}
