/*
 * metrics: counters, gauges and histograms as series in one red-black
 * tree keyed by (family, label text), so that rendering walks them in a
 * stable order; a second tree holds what is counted per live leg (its
 * start and stream-open times for the histograms, the bytes already
 * counted). The families are the table metrics_families[], in the order
 * they are rendered; fedgated(8) lists them.
 */
#include "fgconfig.h"

#include <sys/tree.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define METRICS_PRIVATE
#include "jid.h"
#include "log.h"
#include "metrics.h"
#include "route.h"
#include "util.h"

enum metrics_type {
	METRICS_COUNTER,
	METRICS_GAUGE,
	METRICS_HISTOGRAM
};

enum metrics_family_id {
	MF_CONNECTIONS,
	MF_CONNECTIONS_REFUSED,
	MF_STREAMS_ACCEPTED,
	MF_STREAMS_REFUSED,
	MF_AUTH,
	MF_STANZAS,
	MF_BYTES,
	MF_BOUNCED,
	MF_DROPPED,
	MF_ACKED,
	MF_RESENT,
	MF_QUEUE,
	MF_LEGS,
	MF_TLS,
	MF_DNS,
	MF_HANDSHAKE,
	MF_AUTH_TIME,
	MF_COUNT
};

static const struct {
	const char		*name;
	enum metrics_type	 type;
	const char		*help;
} metrics_families[MF_COUNT] = {
	[MF_CONNECTIONS] = { "fedgate_connections_accepted_total",
	    METRICS_COUNTER, "TCP connections accepted, by listener." },
	[MF_CONNECTIONS_REFUSED] = { "fedgate_connections_refused_total",
	    METRICS_COUNTER, "TCP connections closed at once after accept, "
	    "by listener and reason." },
	[MF_STREAMS_ACCEPTED] = { "fedgate_streams_accepted_total",
	    METRICS_COUNTER, "Streams whose first header was accepted (in: "
	    "by fedgated; out: by the peer)." },
	[MF_STREAMS_REFUSED] = { "fedgate_streams_refused_total",
	    METRICS_COUNTER, "Streams fedgated ended with a stream error "
	    "because of the peer, by reason." },
	[MF_AUTH] = { "fedgate_authentications_total", METRICS_COUNTER,
	    "Domain authentications on legs, by method and result." },
	[MF_STANZAS] = { "fedgate_stanzas_total", METRICS_COUNTER,
	    "Stanzas read from incoming legs (in) and written to outgoing "
	    "legs (out)." },
	[MF_BYTES] = { "fedgate_stream_bytes_total", METRICS_COUNTER,
	    "XML stream bytes read (in) and written (out) on legs." },
	[MF_BOUNCED] = { "fedgate_stanzas_bounced_total", METRICS_COUNTER,
	    "Stanzas answered with a stanza error, by the face they came in "
	    "on and condition." },
	[MF_DROPPED] = { "fedgate_stanzas_dropped_total", METRICS_COUNTER,
	    "Undeliverable stanzas that could not be answered, by "
	    "condition." },
	[MF_ACKED] = { "fedgate_stanzas_acked_total", METRICS_COUNTER,
	    "Stanzas the next hop acknowledged." },
	[MF_RESENT] = { "fedgate_stanzas_resent_total", METRICS_COUNTER,
	    "Stanzas written again on a new leg after a leg reset." },
	[MF_QUEUE] = { "fedgate_queue_stanzas", METRICS_GAUGE,
	    "Stanzas waiting on routes, summed per peer domain." },
	[MF_LEGS] = { "fedgate_legs_open", METRICS_GAUGE,
	    "Legs open now." },
	[MF_TLS] = { "fedgate_tls_handshakes_total", METRICS_COUNTER,
	    "TLS handshakes completed, by protocol version." },
	[MF_DNS] = { "fedgate_dns_answers_total", METRICS_COUNTER,
	    "DNS answers for outgoing legs, by query and status." },
	[MF_HANDSHAKE] = { "fedgate_handshake_seconds", METRICS_HISTOGRAM,
	    "From TCP accept (or connect) to the opening of the stream that "
	    "authenticated, after TLS." },
	[MF_AUTH_TIME] = { "fedgate_authentication_seconds",
	    METRICS_HISTOGRAM, "From that stream's opening to its first "
	    "authenticated domain." },
};

/* Histogram bucket bounds, in milliseconds, and as rendered. */
static const uint64_t metrics_bounds_ms[] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
};
static const char *const metrics_bounds_text[] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
	"5", "10", "30", "60"
};
#define METRICS_BUCKETS	nitems(metrics_bounds_ms)

#define METRICS_LABELS_MAX	1024	/* bytes of one label set */
#define METRICS_LISTENERS_MAX	64

struct metrics_series {
	RB_ENTRY(metrics_series) entry;
	enum metrics_family_id	 family;
	uint64_t		 value;		/* counter, gauge; histogram count */
	uint64_t		*buckets;	/* histogram: per bucket, not cumulative */
	uint64_t		 sum_ms;	/* histogram */
	const char		*labels;	/* `face="public",domain="x"`,
						   stored right after */
};

/* What is counted of one live leg. */
struct metrics_leg {
	RB_ENTRY(metrics_leg)	 entry;
	uint64_t		 id;
	uint64_t		 started;	/* util_now_ms(); 0 unknown */
	uint64_t		 opened;	/* of its last stream; 0 none */
	uint64_t		 bytes_in, bytes_out;	/* counted so far */
	bool			 accepted;	/* its first stream counted */
	bool			 authenticated;	/* histograms observed */
};

static int	metrics_series_cmp(const struct metrics_series *,
		    const struct metrics_series *);
static int	metrics_leg_cmp(const struct metrics_leg *,
		    const struct metrics_leg *);
RB_HEAD(metrics_tree, metrics_series);
RB_PROTOTYPE(metrics_tree, metrics_series, entry, metrics_series_cmp)
RB_GENERATE(metrics_tree, metrics_series, entry, metrics_series_cmp)
RB_HEAD(metrics_legs, metrics_leg);
RB_PROTOTYPE(metrics_legs, metrics_leg, entry, metrics_leg_cmp)
RB_GENERATE(metrics_legs, metrics_leg, entry, metrics_leg_cmp)

static struct {
	struct metrics_tree	 series;
	size_t			 nseries;
	bool			 full;		/* warned about METRICS_SERIES_MAX */
	struct metrics_legs	 legs;
	char			**domains;	/* sorted, for bsearch */
	size_t			 ndomains;
	struct {
		char		*address;
		enum config_face face;
	}			 listeners[METRICS_LISTENERS_MAX];
	int			 nlisteners;
	int			 listener;	/* of the accept under way */
	unsigned		 generation;	/* of metrics_counter caches:
						   bumped when labels or series
						   change */
} metrics = {
	.series = RB_INITIALIZER(&metrics.series),
	.legs = RB_INITIALIZER(&metrics.legs),
	.listener = -1,
	.generation = 1,
};

static const char *const metrics_face_names[] = {
	[CONFIG_FACE_PUBLIC] = "public",
	[CONFIG_FACE_INTERNAL] = "internal",
	[CONFIG_FACE_TRANSPARENT] = "transparent",
};

static const char *const metrics_refusal_names[] = {
	[METRICS_REFUSED_LIMIT] = "limit",
	[METRICS_REFUSED_TLS] = "tls",
	[METRICS_REFUSED_INTERNAL] = "internal",
};

static int
metrics_series_cmp(const struct metrics_series *a,
    const struct metrics_series *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return strcmp(a->labels, b->labels);
}

static int
metrics_leg_cmp(const struct metrics_leg *a, const struct metrics_leg *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

/*
 * Labels.
 */

const char *
metrics_escape(const char *value, char *buf, size_t len)
{
	size_t n = 0;

	for (const char *p = value; *p != '\0'; p++) {
		const char *rep = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" :
		    *p == '\n' ? "\\n" : NULL;
		size_t k = rep != NULL ? 2 : 1;

		if (n + k >= len)
			return NULL;
		if (rep != NULL)
			memcpy(buf + n, rep, 2);
		else
			buf[n] = *p;
		n += k;
	}
	if (len == 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

/*
 * Render the label set of the NULL-terminated name, value pairs into buf
 * (METRICS_LABELS_MAX bytes). Return 0, or -1 if it does not fit.
 */
static int
metrics_labels(char *buf, ...)
{
	char esc[METRICS_LABELS_MAX];
	const char *name, *value;
	size_t off = 0;
	va_list ap;
	int n, rc = 0;

	buf[0] = '\0';
	va_start(ap, buf);
	while ((name = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		if (metrics_escape(value, esc, sizeof(esc)) == NULL) {
			rc = -1;
			break;
		}
		n = snprintf(buf + off, METRICS_LABELS_MAX - off, "%s%s=\"%s\"",
		    off > 0 ? "," : "", name, esc);
		if (n < 0 || (size_t)n >= METRICS_LABELS_MAX - off) {
			rc = -1;
			break;
		}
		off += (size_t)n;
	}
	va_end(ap);
	return rc;
}

static int
metrics_domain_cmp(const void *key, const void *elem)
{
	return strcmp(key, *(char *const *)elem);
}

const char *
metrics_domain_label(enum config_face face, const char *local,
    const char *remote)
{
	const char *d = face == CONFIG_FACE_PUBLIC ? remote : local;
	char *const *hit;

	if (d == NULL || d[0] == '\0' || metrics.ndomains == 0)
		return "other";
	hit = bsearch(d, metrics.domains, metrics.ndomains,
	    sizeof(*metrics.domains), metrics_domain_cmp);
	return hit != NULL ? *hit : "other";
}

static const char *
metrics_face(enum config_face face)
{
	return (size_t)face < nitems(metrics_face_names) ?
	    metrics_face_names[face] : "other";
}

static const char *
metrics_dir(bool outgoing)
{
	return outgoing ? "out" : "in";
}

/* The reason label of a stream ended with cond. */
static const char *
metrics_stream_reason(enum xmpp_stream_error cond)
{
	switch (cond) {
	case XMPP_STREAM_HOST_UNKNOWN:
	case XMPP_STREAM_HOST_GONE:
		return "host_unknown";
	case XMPP_STREAM_INVALID_FROM:
		return "invalid_from";
	case XMPP_STREAM_IMPROPER_ADDRESSING:
		return "improper_addressing";
	case XMPP_STREAM_NOT_AUTHORIZED:
		return "not_authorized";
	case XMPP_STREAM_POLICY_VIOLATION:
		return "policy";
	case XMPP_STREAM_RESOURCE_CONSTRAINT:
		return "limit";
	case XMPP_STREAM_CONNECTION_TIMEOUT:
		return "timeout";
	case XMPP_STREAM_INTERNAL_SERVER_ERROR:
		return "internal";
	case XMPP_STREAM_BAD_FORMAT:
	case XMPP_STREAM_BAD_NAMESPACE_PREFIX:
	case XMPP_STREAM_INVALID_NAMESPACE:
	case XMPP_STREAM_INVALID_XML:
	case XMPP_STREAM_NOT_WELL_FORMED:
	case XMPP_STREAM_RESTRICTED_XML:
	case XMPP_STREAM_UNSUPPORTED_ENCODING:
	case XMPP_STREAM_UNSUPPORTED_FEATURE:
	case XMPP_STREAM_UNSUPPORTED_STANZA_TYPE:
	case XMPP_STREAM_UNSUPPORTED_VERSION:
		return "protocol";
	default:
		return "other";
	}
}

/* The method label of a leg_auth_name(). */
static const char *
metrics_method(const char *method)
{
	if (method == NULL)
		return "other";
	if (strcmp(method, "dialback") == 0 ||
	    strcmp(method, "dialback+cert") == 0)
		return "dialback";
	if (strcmp(method, "sasl-external") == 0)
		return "sasl_external";
	if (strcmp(method, "trusted") == 0)
		return "trusted";
	return "other";
}

/* s itself if it is a short word of [a-z0-9.+_-], else "other". */
static const char *
metrics_word(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > 32 || strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+_-") != n)
		return "other";
	return s;
}

/*
 * Series.
 */

static struct metrics_series *
metrics_series(enum metrics_family_id family, const char *labels)
{
	struct metrics_series *s, key = { .family = family, .labels = labels };
	size_t len = strlen(labels);
	char *copy;

	if ((s = RB_FIND(metrics_tree, &metrics.series, &key)) != NULL)
		return s;
	if (metrics.nseries >= METRICS_SERIES_MAX) {
		if (!metrics.full)
			log_warnx("metrics: %d label sets: new ones are not "
			    "counted (fewer metrics domains?)",
			    METRICS_SERIES_MAX);
		metrics.full = true;
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s) + len + 1)) == NULL)
		return NULL;
	if (metrics_families[family].type == METRICS_HISTOGRAM &&
	    (s->buckets = calloc(METRICS_BUCKETS, sizeof(uint64_t))) == NULL) {
		free(s);
		return NULL;
	}
	s->family = family;
	copy = (char *)(s + 1);
	memcpy(copy, labels, len + 1);
	s->labels = copy;
	RB_INSERT(metrics_tree, &metrics.series, s);
	metrics.nseries++;
	return s;
}

static void
metrics_add(enum metrics_family_id family, const char *labels, uint64_t n)
{
	struct metrics_series *s = metrics_series(family, labels);

	if (s != NULL)
		s->value += n;
}

static void
metrics_set(enum metrics_family_id family, const char *labels, uint64_t v)
{
	struct metrics_series *s = metrics_series(family, labels);

	if (s != NULL)
		s->value = v;
}

static void
metrics_observe(enum metrics_family_id family, const char *labels,
    uint64_t ms)
{
	struct metrics_series *s = metrics_series(family, labels);
	size_t b;

	if (s == NULL)
		return;
	for (b = 0; b < METRICS_BUCKETS && ms > metrics_bounds_ms[b]; b++)
		;
	if (b < METRICS_BUCKETS)
		s->buckets[b]++;
	s->value++;
	s->sum_ms += ms;
}

/* Count n on family with the labels face, direction, domain. */
static void
metrics_count_leg(enum metrics_family_id family, enum config_face face,
    bool outgoing, const char *local, const char *remote, uint64_t n)
{
	char labels[METRICS_LABELS_MAX];

	if (metrics_labels(labels, "face", metrics_face(face), "direction",
	    metrics_dir(outgoing), "domain", metrics_domain_label(face, local,
	    remote), NULL) == 0)
		metrics_add(family, labels, n);
}

/*
 * Configuration and listeners.
 */

static void
metrics_free_domains(void)
{
	for (size_t i = 0; i < metrics.ndomains; i++)
		free(metrics.domains[i]);
	free(metrics.domains);
	metrics.domains = NULL;
	metrics.ndomains = 0;
}

static int
metrics_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
metrics_configure(const struct config *c)
{
	char **d;
	size_t i, n = c->nmetrics_domains;

	if ((d = calloc(n + 1, sizeof(*d))) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if ((d[i] = strdup(c->metrics_domains[i])) == NULL) {
			while (i-- > 0)
				free(d[i]);
			free(d);
			return -1;
		}
	qsort(d, n, sizeof(*d), metrics_strcmp);
	metrics_free_domains();
	metrics.domains = d;
	metrics.ndomains = n;
	metrics.generation++;
	return 0;
}

void
metrics_reset(void)
{
	struct metrics_series *s, *next;
	struct metrics_leg *l, *lnext;

	RB_FOREACH_SAFE(s, metrics_tree, &metrics.series, next) {
		RB_REMOVE(metrics_tree, &metrics.series, s);
		free(s->buckets);
		free(s);
	}
	RB_FOREACH_SAFE(l, metrics_legs, &metrics.legs, lnext) {
		RB_REMOVE(metrics_legs, &metrics.legs, l);
		free(l);
	}
	metrics.nseries = 0;
	metrics.full = false;
	metrics.generation++;
	for (int i = 0; i < metrics.nlisteners; i++)
		free(metrics.listeners[i].address);
	metrics.nlisteners = 0;
	metrics.listener = -1;
	metrics_free_domains();
}

int
metrics_listener_add(const char *address, enum config_face face)
{
	int i = metrics.nlisteners;

	if (i >= METRICS_LISTENERS_MAX ||
	    (metrics.listeners[i].address = strdup(address)) == NULL)
		return -1;
	metrics.listeners[i].face = face;
	metrics.nlisteners++;
	return i;
}

/* Count n on family with the labels of the listener of the accept. */
static void
metrics_count_listener(enum metrics_family_id family, const char *reason)
{
	char labels[METRICS_LABELS_MAX];
	int i = metrics.listener;

	if (i < 0 || i >= metrics.nlisteners)
		return;
	if (metrics_labels(labels, "listener", metrics.listeners[i].address,
	    "face", metrics_face(metrics.listeners[i].face),
	    reason != NULL ? "reason" : NULL, reason, NULL) == 0)
		metrics_add(family, labels, 1);
}

void
metrics_connection(int listener)
{
	metrics.listener = listener;
	metrics_count_listener(MF_CONNECTIONS, NULL);
}

void
metrics_connection_refused(enum metrics_refusal why)
{
	metrics_count_listener(MF_CONNECTIONS_REFUSED,
	    metrics_refusal_names[why]);
}

/*
 * Legs.
 */

static struct metrics_leg *
metrics_leg(uint64_t id, bool create)
{
	struct metrics_leg key, *l;

	key.id = id;
	if ((l = RB_FIND(metrics_legs, &metrics.legs, &key)) != NULL ||
	    !create)
		return l;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->id = id;
	RB_INSERT(metrics_legs, &metrics.legs, l);
	return l;
}

void
metrics_leg_started(uint64_t id)
{
	struct metrics_leg *l = metrics_leg(id, true);

	if (l != NULL)
		l->started = util_now_ms();
}

void
metrics_stream_opened(uint64_t id, enum config_face face, bool outgoing,
    const char *local, const char *remote)
{
	struct metrics_leg *l = metrics_leg(id, true);

	if (l == NULL)
		return;
	l->opened = util_now_ms();
	if (l->accepted)
		return;
	l->accepted = true;
	metrics_count_leg(MF_STREAMS_ACCEPTED, face, outgoing, local, remote,
	    1);
}

void
metrics_stream_refused(enum config_face face, bool outgoing,
    const char *local, const char *remote, enum xmpp_stream_error cond)
{
	char labels[METRICS_LABELS_MAX];

	if (metrics_labels(labels, "face", metrics_face(face), "direction",
	    metrics_dir(outgoing), "domain", metrics_domain_label(face, local,
	    remote), "reason", metrics_stream_reason(cond), NULL) == 0)
		metrics_add(MF_STREAMS_REFUSED, labels, 1);
}

void
metrics_observe_handshake(enum config_face face, bool outgoing, uint64_t ms)
{
	char labels[METRICS_LABELS_MAX];

	if (metrics_labels(labels, "face", metrics_face(face), "direction",
	    metrics_dir(outgoing), NULL) == 0)
		metrics_observe(MF_HANDSHAKE, labels, ms);
}

/* The first authentication of leg l: observe both histograms. */
static void
metrics_leg_first_auth(struct metrics_leg *l, enum config_face face,
    bool outgoing)
{
	char labels[METRICS_LABELS_MAX];
	uint64_t now = util_now_ms();

	l->authenticated = true;
	if (l->opened == 0)
		return;
	if (l->started != 0 && l->opened >= l->started)
		metrics_observe_handshake(face, outgoing,
		    l->opened - l->started);
	if (metrics_labels(labels, "face", metrics_face(face), "direction",
	    metrics_dir(outgoing), NULL) == 0)
		metrics_observe(MF_AUTH_TIME, labels, now - l->opened);
}

void
metrics_leg_auth(uint64_t id, enum config_face face, bool outgoing,
    const char *local, const char *remote, const char *method, bool ok)
{
	char labels[METRICS_LABELS_MAX];
	struct metrics_leg *l;

	if (metrics_labels(labels, "face", metrics_face(face), "direction",
	    metrics_dir(outgoing), "domain", metrics_domain_label(face, local,
	    remote), "method", metrics_method(method), "result",
	    ok ? "ok" : "failed", NULL) == 0)
		metrics_add(MF_AUTH, labels, 1);
	if (ok && (l = metrics_leg(id, false)) != NULL && !l->authenticated)
		metrics_leg_first_auth(l, face, outgoing);
}

void
metrics_leg_tls(enum config_face face, bool outgoing, const SSL *ssl)
{
	static const char *const known[] = {
		"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"
	};
	const char *v = ssl != NULL ? SSL_get_version(ssl) : NULL;
	const char *label = "other";
	char labels[METRICS_LABELS_MAX];

	for (size_t i = 0; v != NULL && i < nitems(known); i++)
		if (strcmp(v, known[i]) == 0)
			label = known[i];
	if (metrics_labels(labels, "face", metrics_face(face), "direction",
	    metrics_dir(outgoing), "version", label, NULL) == 0)
		metrics_add(MF_TLS, labels, 1);
}

/* Count the bytes of leg l not counted yet (totals in, out): direction
 * is the bytes', read (in) or written (out). */
static void
metrics_leg_bytes(struct metrics_leg *l, enum config_face face,
    const char *local, const char *remote, uint64_t in, uint64_t out)
{
	/* A new connection of the leg (a retried connect) starts again. */
	if (in < l->bytes_in)
		l->bytes_in = 0;
	if (out < l->bytes_out)
		l->bytes_out = 0;
	if (in > l->bytes_in)
		metrics_count_leg(MF_BYTES, face, false, local, remote,
		    in - l->bytes_in);
	if (out > l->bytes_out)
		metrics_count_leg(MF_BYTES, face, true, local, remote,
		    out - l->bytes_out);
	l->bytes_in = in;
	l->bytes_out = out;
}

void
metrics_leg_end(uint64_t id, enum config_face face, bool outgoing,
    const char *local, const char *remote, uint64_t bytes_in,
    uint64_t bytes_out)
{
	struct metrics_leg *l = metrics_leg(id, true);

	if (l == NULL)
		return;
	metrics_leg_bytes(l, face, local, remote, bytes_in, bytes_out);
	RB_REMOVE(metrics_legs, &metrics.legs, l);
	free(l);
}

/*
 * Stanzas and DNS.
 */

void
metrics_stanza(struct metrics_counter *cache, enum config_face face,
    bool outgoing, const char *local, const char *remote)
{
	char labels[METRICS_LABELS_MAX];

	if (cache->generation != metrics.generation) {
		cache->generation = metrics.generation;
		cache->series = metrics_labels(labels, "face",
		    metrics_face(face), "direction", metrics_dir(outgoing),
		    "domain", metrics_domain_label(face, local, remote),
		    NULL) == 0 ? metrics_series(MF_STANZAS, labels) : NULL;
	}
	if (cache->series != NULL)
		cache->series->value++;
}

/* The normalised domain of jid into out, or "". */
static const char *
metrics_jid_domain(const char *jid, char *out)
{
	char raw[JID_PART_MAX + 1];
	size_t off, len;

	out[0] = '\0';
	if (jid == NULL || jid_domain_span(jid, strlen(jid), &off, &len) == -1 ||
	    len >= sizeof(raw))
		return out;
	memcpy(raw, jid + off, len);
	raw[len] = '\0';
	if (jid_domain_normalize(raw, out, JID_DOMAIN_MAX) == -1)
		out[0] = '\0';
	return out;
}

/*
 * Count a stanza from o with cond on family: its peer domain is its
 * sender's on the public face, its addressee's on the internal face.
 */
static void
metrics_count_stanza_error(enum metrics_family_id family,
    const struct route_origin *o, enum xmpp_stanza_error cond)
{
	char labels[METRICS_LABELS_MAX], domain[JID_DOMAIN_MAX];
	const char *name = xmpp_stanza_error_name(cond);

	metrics_jid_domain(o->face == CONFIG_FACE_PUBLIC ? o->attrs.from :
	    o->attrs.to, domain);
	if (metrics_labels(labels, "face", metrics_face(o->face), "domain",
	    metrics_domain_label(CONFIG_FACE_PUBLIC, NULL, domain),
	    "condition", name != NULL ? name : "other", NULL) == 0)
		metrics_add(family, labels, 1);
}

void
metrics_stanza_bounced(const struct route_origin *o,
    enum xmpp_stanza_error cond)
{
	metrics_count_stanza_error(MF_BOUNCED, o, cond);
}

void
metrics_stanza_dropped(const struct route_origin *o,
    enum xmpp_stanza_error cond)
{
	metrics_count_stanza_error(MF_DROPPED, o, cond);
}

void
metrics_dns(const char *kind, const char *status)
{
	char labels[METRICS_LABELS_MAX];

	if (metrics_labels(labels, "query", metrics_word(kind), "status",
	    metrics_word(status), NULL) == 0)
		metrics_add(MF_DNS, labels, 1);
}

/*
 * Live values and rendering.
 */

void
metrics_live_begin(void)
{
	struct metrics_series *s;
	char labels[METRICS_LABELS_MAX];

	RB_FOREACH(s, metrics_tree, &metrics.series)
		if (metrics_families[s->family].type == METRICS_GAUGE)
			s->value = 0;
	/* Always present, also at 0. */
	for (int f = CONFIG_FACE_PUBLIC; f <= CONFIG_FACE_INTERNAL; f++)
		for (int out = 0; out < 2; out++)
			if (metrics_labels(labels, "face", metrics_face(f),
			    "direction", metrics_dir(out), NULL) == 0)
				metrics_add(MF_LEGS, labels, 0);
}

void
metrics_live_leg(uint64_t id, enum config_face face, bool outgoing,
    const char *local, const char *remote, uint64_t bytes_in,
    uint64_t bytes_out)
{
	char labels[METRICS_LABELS_MAX];
	struct metrics_leg *l = metrics_leg(id, true);

	if (l != NULL)
		metrics_leg_bytes(l, face, local, remote, bytes_in, bytes_out);
	if (metrics_labels(labels, "face", metrics_face(face), "direction",
	    metrics_dir(outgoing), NULL) == 0)
		metrics_add(MF_LEGS, labels, 1);
}

void
metrics_live_route(enum config_face face, const char *local,
    const char *remote, size_t queued)
{
	char labels[METRICS_LABELS_MAX];

	if (metrics_labels(labels, "face", metrics_face(face), "domain",
	    metrics_domain_label(face, local, remote), NULL) == 0)
		metrics_add(MF_QUEUE, labels, queued);
}

void
metrics_live_acks(uint64_t acked, uint64_t resent)
{
	metrics_set(MF_ACKED, "", acked);
	metrics_set(MF_RESENT, "", resent);
}

/* "name{labels}" or "name{labels,extra}" or "name", into out. */
static int
metrics_render_name(struct evbuffer *out, const char *name,
    const char *suffix, const char *labels, const char *extra)
{
	const char *sep = labels[0] != '\0' && extra != NULL ? "," : "";

	if (labels[0] == '\0' && extra == NULL)
		return evbuffer_add_printf(out, "%s%s ", name, suffix);
	return evbuffer_add_printf(out, "%s%s{%s%s%s} ", name, suffix, labels,
	    sep, extra != NULL ? extra : "");
}

static int
metrics_render_histogram(struct evbuffer *out, const char *name,
    const struct metrics_series *s)
{
	char le[32];
	uint64_t cum = 0;
	int rc = 0;

	for (size_t b = 0; b < METRICS_BUCKETS; b++) {
		cum += s->buckets[b];
		snprintf(le, sizeof(le), "le=\"%s\"", metrics_bounds_text[b]);
		if (metrics_render_name(out, name, "_bucket", s->labels,
		    le) < 0 || evbuffer_add_printf(out, "%llu\n",
		    (unsigned long long)cum) < 0)
			rc = -1;
	}
	if (metrics_render_name(out, name, "_bucket", s->labels,
	    "le=\"+Inf\"") < 0 || evbuffer_add_printf(out, "%llu\n",
	    (unsigned long long)s->value) < 0 ||
	    metrics_render_name(out, name, "_sum", s->labels, NULL) < 0 ||
	    evbuffer_add_printf(out, "%llu.%03llu\n",
	    (unsigned long long)(s->sum_ms / 1000),
	    (unsigned long long)(s->sum_ms % 1000)) < 0 ||
	    metrics_render_name(out, name, "_count", s->labels, NULL) < 0 ||
	    evbuffer_add_printf(out, "%llu\n", (unsigned long long)s->value) < 0)
		rc = -1;
	return rc;
}

static int
metrics_render_family(struct evbuffer *out, enum metrics_family_id f)
{
	static const char *const types[] = {
		[METRICS_COUNTER] = "counter",
		[METRICS_GAUGE] = "gauge",
		[METRICS_HISTOGRAM] = "histogram",
	};
	const char *name = metrics_families[f].name;
	struct metrics_series key = { .family = f, .labels = "" }, *s;
	int rc = 0;

	if (evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name,
	    metrics_families[f].help, name,
	    types[metrics_families[f].type]) < 0)
		return -1;
	for (s = RB_NFIND(metrics_tree, &metrics.series, &key);
	    s != NULL && s->family == f; s = RB_NEXT(metrics_tree,
	    &metrics.series, s)) {
		if (metrics_families[f].type == METRICS_HISTOGRAM)
			rc |= metrics_render_histogram(out, name, s);
		else if (metrics_render_name(out, name, "", s->labels,
		    NULL) < 0 || evbuffer_add_printf(out, "%llu\n",
		    (unsigned long long)s->value) < 0)
			rc = -1;
	}
	return rc;
}

int
metrics_render(struct evbuffer *out)
{
	int rc = 0;

	for (int f = 0; f < MF_COUNT; f++)
		rc |= metrics_render_family(out, f);
	return rc;
}

size_t
metrics_series_count(void)
{
	return metrics.nseries;
}
