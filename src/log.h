/*
 * log: the OpenBSD log.c API. Messages go to syslog, or to stderr in the
 * foreground. Levels: warnings and info always, debug from verbosity 1.
 */
#ifndef FEDGATE_LOG_H
#define FEDGATE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_TRACE
};

/* Log to stderr when foreground is set, else to syslog with facility. */
void	log_init(bool foreground, int facility);
/* Drop messages above level. */
void	log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "warning", "info", "debug", "trace". Return 0, or -1 if unknown. */
int	log_level_parse(const char *name, enum log_level *level);
const char *log_level_name(enum log_level level);
/* Parse a syslog facility name ("daemon", "local0"...). Return 0 or -1. */
int	log_facility_parse(const char *name, int *facility);
/* Send libevent's own messages through this module. */
void	log_hook_libevent(void);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_trace(const char *, ...) __attribute__((format(printf, 1, 2)));
/*
 * Log a line that a remote peer can cause at will (refusals, leg ends,
 * bounces): at most LOG_PEER_BURST such lines a second; the rest are
 * counted and reported in one line when the next second starts (or at
 * log_peer_flush()).
 */
#define LOG_PEER_BURST	100
void	log_peer(enum log_level, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	log_peer_flush(void);
void	vlog(enum log_level, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
/* Log and exit(1): only at start-up or on a broken invariant. */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
