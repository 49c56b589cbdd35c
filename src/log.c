/*
 * log: OpenBSD-style logging to syslog or stderr.
 */
#include "fgconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"

static bool		log_foreground = true;
static enum log_level	log_level = LOG_LEVEL_INFO;

/* The per-second budget of log_peer(). */
static struct {
	time_t		 second;	/* CLOCK_MONOTONIC seconds */
	unsigned	 lines;
	unsigned	 suppressed;
} log_peer_budget;

static const char *const log_level_names[] = {
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_TRACE] = "trace",
};

static const struct {
	const char	*name;
	int		 facility;
} log_facilities[] = {
	{ "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV },
	{ "daemon", LOG_DAEMON }, { "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 },
	{ "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 }, { "user", LOG_USER },
};

void
log_init(bool foreground, int facility)
{
	log_foreground = foreground;
	if (!foreground)
		openlog("fedgated", LOG_PID | LOG_NDELAY, facility);
	tzset();
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

int
log_level_parse(const char *name, enum log_level *level)
{
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(*log_level_names); i++)
		if (strcasecmp(name, log_level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return log_level_names[level];
}

int
log_facility_parse(const char *name, int *facility)
{
	for (size_t i = 0; i < sizeof(log_facilities) / sizeof(*log_facilities); i++)
		if (strcasecmp(name, log_facilities[i].name) == 0) {
			*facility = log_facilities[i].facility;
			return 0;
		}
	return -1;
}

/*
 * One line on stderr, written with one write(2) (stderr is unbuffered:
 * printing it in parts cost three or more), its time stamp converted
 * once per second, not per line. A line longer than the buffer is
 * written in parts.
 */
static void __attribute__((format(printf, 2, 0)))
log_stderr(enum log_level level, const char *fmt, va_list ap)
{
	static time_t stamp_sec = -1;
	static char stamp[32];
	struct timespec ts;
	struct tm tm;
	char line[4096];
	int n, m;
	va_list aq;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != stamp_sec) {
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		stamp_sec = ts.tv_sec;
	}
	n = snprintf(line, sizeof(line), "%s.%03ld %s: ", stamp,
	    ts.tv_nsec / 1000000, log_level_names[level]);
	va_copy(aq, ap);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, aq);
	va_end(aq);
	if (m >= 0 && (size_t)(n + m) < sizeof(line) - 1) {
		line[n + m] = '\n';
		fwrite(line, 1, (size_t)(n + m + 1), stderr);
	} else {
		fwrite(line, 1, (size_t)n, stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	fflush(stderr);
}

void
vlog(enum log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = {
		[LOG_LEVEL_WARNING] = LOG_WARNING, [LOG_LEVEL_INFO] = LOG_INFO,
		[LOG_LEVEL_DEBUG] = LOG_DEBUG, [LOG_LEVEL_TRACE] = LOG_DEBUG,
	};
	int saved_errno = errno;

	if (level > log_level)
		return;
	if (log_foreground)
		log_stderr(level, fmt, ap);
	else
		vsyslog(prio[level], fmt, ap);
	errno = saved_errno;
}

static void __attribute__((format(printf, 1, 0)))
vlog_errno(const char *fmt, va_list ap)
{
	char buf[1024];
	int saved_errno = errno;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	log_warnx("%s: %s", buf, strerror(saved_errno));
	errno = saved_errno;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(fmt, ap);
	va_end(ap);
}

#define LOG_FN(name, level)				\
void							\
name(const char *fmt, ...)				\
{							\
	va_list ap;					\
							\
	va_start(ap, fmt);				\
	vlog(level, fmt, ap);				\
	va_end(ap);					\
}
LOG_FN(log_warnx, LOG_LEVEL_WARNING)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_debug, LOG_LEVEL_DEBUG)
LOG_FN(log_trace, LOG_LEVEL_TRACE)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARNING, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_peer_flush(void)
{
	if (log_peer_budget.suppressed > 0)
		log_warnx("%u log lines caused by peers were suppressed "
		    "(more than %d a second)", log_peer_budget.suppressed,
		    LOG_PEER_BURST);
	log_peer_budget.lines = 0;
	log_peer_budget.suppressed = 0;
}

void
log_peer(enum log_level level, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec != log_peer_budget.second) {
		log_peer_flush();
		log_peer_budget.second = ts.tv_sec;
	}
	if (log_peer_budget.lines >= LOG_PEER_BURST) {
		log_peer_budget.suppressed++;
		return;
	}
	log_peer_budget.lines++;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static void
log_libevent_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_trace("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_debug("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

static void
log_libevent_fatal_cb(int err)
{
	fatalx("libevent: fatal error %d", err);
}

void
log_hook_libevent(void)
{
	event_set_log_callback(log_libevent_cb);
	event_set_fatal_callback(log_libevent_fatal_cb);
}
