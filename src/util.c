/*
 * util: sizes, durations, socket addresses, time.
 */
#include "fgconfig.h"

#include <sys/un.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

struct util_unit {
	const char	*suffix;
	uint64_t	 factor;
};

static const struct util_unit util_size_units[] = {
	{ "g", 1024ULL * 1024 * 1024 }, { "m", 1024 * 1024 }, { "k", 1024 },
	{ "", 1 },
};

static const struct util_unit util_duration_units[] = {
	{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	{ "ms", 1 }, { "", 1000 },
};

/* Parse digits then one of units' suffixes (case-insensitive). */
static int
util_parse_units(const char *s, const struct util_unit *units, size_t nunits,
    uint64_t *out)
{
	uint64_t value = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (value > (UINT64_MAX - digit) / 10)
			return -1;
		value = value * 10 + digit;
	}
	for (size_t i = 0; i < nunits; i++) {
		if (strcasecmp(p, units[i].suffix) != 0)
			continue;
		if (value > UINT64_MAX / units[i].factor)
			return -1;
		*out = value * units[i].factor;
		return 0;
	}
	return -1;
}

int
util_parse_size(const char *s, uint64_t *out)
{
	return util_parse_units(s, util_size_units, nitems(util_size_units), out);
}

int
util_parse_duration(const char *s, uint64_t *out)
{
	return util_parse_units(s, util_duration_units,
	    nitems(util_duration_units), out);
}

/* Render value with the largest unit that divides it exactly. */
static const char *
util_units_str(uint64_t value, const struct util_unit *units, size_t nunits,
    char *buf, size_t len)
{
	for (size_t i = 0; i < nunits; i++) {
		if (units[i].suffix[0] == '\0' || value == 0)
			continue;
		if (value % units[i].factor == 0) {
			snprintf(buf, len, "%" PRIu64 "%s",
			    value / units[i].factor, units[i].suffix);
			return buf;
		}
	}
	snprintf(buf, len, "%" PRIu64, value);
	return buf;
}

const char *
util_size_str(uint64_t bytes, char *buf, size_t len)
{
	return util_units_str(bytes, util_size_units, nitems(util_size_units),
	    buf, len);
}

const char *
util_duration_str(uint64_t ms, char *buf, size_t len)
{
	if (ms == 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	return util_units_str(ms, util_duration_units,
	    nitems(util_duration_units), buf, len);
}

const char *
util_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
		break;
	}
	case AF_UNIX:
		snprintf(buf, len, "%s", ((const struct sockaddr_un *)sa)->sun_path);
		break;
	default:
		snprintf(buf, len, "(family %d)", sa->sa_family);
		break;
	}
	return buf;
}

bool
util_sockaddr_is_same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr,
		    sizeof(struct in6_addr)) == 0;
	return false;
}

int
util_sockaddr_parse(const char *host, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (strcmp(host, "*") == 0 || inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*sslen = sizeof(*sin6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*sslen = sizeof(*sin);
		return 0;
	}
	return -1;
}

int
util_append_line(char **text, const char *line)
{
	size_t old = *text != NULL ? strlen(*text) : 0, len = strlen(line);
	char *n;

	if ((n = realloc(*text, old + len + 2)) == NULL)
		return -1;
	memcpy(n + old, line, len);
	n[old + len] = '\n';
	n[old + len + 1] = '\0';
	*text = n;
	return 0;
}

/* Write the escaped form of c into e; return its length (1 to 4). */
static size_t
util_esc_byte(unsigned char c, char e[4])
{
	static const char hex[] = "0123456789abcdef";

	if (c == '\\' || c == '"') {
		e[0] = '\\';
		e[1] = (char)c;
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		e[0] = (char)c;
		return 1;
	}
	e[0] = '\\';
	e[1] = 'x';
	e[2] = hex[c >> 4];
	e[3] = hex[c & 0x0f];
	return 4;
}

const char *
util_esc_mem(const char *s, size_t slen, char *buf, size_t len)
{
	char e[4], tail[40];
	size_t i, n, o = 0, need = 0, room, limit, tl;

	if (len == 0)
		return buf;
	if (s == NULL) {
		snprintf(buf, len, "(none)");
		return buf;
	}
	room = len - 1;
	for (i = 0; i < slen && need <= room; i++)
		need += util_esc_byte((unsigned char)s[i], e);
	tl = (size_t)snprintf(tail, sizeof(tail), "...(%zu bytes)", slen);
	limit = need <= room ? room : room > tl ? room - tl : 0;
	for (i = 0; i < slen; i++) {
		n = util_esc_byte((unsigned char)s[i], e);
		if (o + n > limit)
			break;
		memcpy(buf + o, e, n);
		o += n;
	}
	if (i < slen) {
		n = tl < room - o ? tl : room - o;
		memcpy(buf + o, tail, n);
		o += n;
	}
	buf[o] = '\0';
	return buf;
}

const char *
util_esc(const char *s, char *buf, size_t len)
{
	return util_esc_mem(s, s != NULL ? strlen(s) : 0, buf, len);
}

uint64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
util_fd_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		return -1;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		return -1;
	return 0;
}
