/*
 * control: the control socket (doc/internals/control-protocol.md).
 *
 * One listening Unix stream socket; each client is a bufferevent. A client
 * sends lines; each line is one command and gets exactly one reply line, a
 * JSON object. A command is one row of control_commands[] (control_cmd.c):
 * the words that name it, how many arguments it takes, whether it changes
 * anything, and the handler that fills the reply. This file finds the row,
 * checks the arguments' count and the client's right to mutate, runs the
 * handler and sends the reply.
 *
 * Whatever a client does ends at most that client: lines longer than
 * CONTROL_LINE_MAX, more than CONTROL_CLIENTS_MAX clients, idle clients,
 * and clients that do not read their replies (reading stops while more than
 * CONTROL_OUTPUT_HIGH bytes wait to be sent, and resumes once they are).
 */
#include "fgconfig.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json.h>

#include "control.h"
#include "control_private.h"
#include "daemon.h"
#include "log.h"
#include "merge.h"
#include "util.h"
#include "worker.h"

#define CONTROL_BACKLOG		16
#define CONTROL_OUTPUT_HIGH	(256 * 1024)	/* stop reading above this */
#define CONTROL_IDLE_SEC	60		/* no command for this long: close */
#define CONTROL_WRITE_SEC	30		/* reply not read for this long: close */
#define CONTROL_PAUSE_SEC	1		/* after an accept error */
/* The other workers' part of a reply (merge.h): their time, ours. */
#define CONTROL_FANOUT_MS	20000
#define CONTROL_FANOUT_SEC	25

static void	control_client_flush(struct control_client *);
static void	control_client_free(struct control_client *);

/* Add "error" to reply. Return -1, for handlers to return. */
int
control_error(struct json_object *reply, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(reply, "error", json_object_new_string(msg));
	return -1;
}

/*
 * Socket setup
 */

static int
control_sockaddr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlcpy(sun->sun_path, path, sizeof(sun->sun_path)) >=
	    sizeof(sun->sun_path))
		return -1;
	return 0;
}

/*
 * Make room for our socket at path: nothing there is fine; a socket that
 * nobody answers on is stale and removed; a live one, or anything that is
 * not a socket, is left alone and refused. Return 0 or -1 after logging.
 */
static int
control_clear_stale(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc, saved;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		log_warn("control socket %s", path);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_warnx("control socket %s exists and is not a socket", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("control socket %s: socket", path);
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	saved = errno;
	close(fd);
	if (rc == 0 || saved == EAGAIN || saved == EINPROGRESS) {
		log_warnx("control socket %s is in use by a running fedgated",
		    path);
		return -1;
	}
	if (saved != ECONNREFUSED) {
		errno = saved;
		log_warn("control socket %s", path);
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		log_warn("control socket %s: cannot remove the stale socket",
		    path);
		return -1;
	}
	log_info("control socket %s: removed a stale socket", path);
	return 0;
}

struct control *
control_new(struct daemon *d, const char *path, mode_t mode,
    const char *group)
{
	struct control *ctl;
	struct sockaddr_un sun;
	struct group *gr;
	mode_t old_umask;

	if (control_sockaddr(path, &sun) == -1) {
		log_warnx("control socket %s: path too long", path);
		return NULL;
	}
	if ((ctl = calloc(1, sizeof(*ctl))) == NULL ||
	    (ctl->path = strdup(path)) == NULL) {
		log_warn("control socket %s", path);
		free(ctl);
		return NULL;
	}
	ctl->d = d;
	ctl->fd = -1;
	ctl->spare = -1;
	TAILQ_INIT(&ctl->clients);
	if (group != NULL) {
		if ((gr = getgrnam(group)) == NULL) {
			log_warnx("control socket %s: unknown group \"%s\"",
			    path, group);
			goto fail;
		}
		ctl->gid = gr->gr_gid;
		ctl->has_group = true;
	}
	if (control_clear_stale(path, &sun) == -1)
		goto fail;
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd == -1) {
		log_warn("control socket %s: socket", path);
		goto fail;
	}
	/* Born 0600; widened to mode only once the group is right. */
	old_umask = umask(S_IXUSR | S_IRWXG | S_IRWXO);
	if (bind(ctl->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old_umask);
		log_warn("control socket %s: bind", path);
		goto fail;
	}
	umask(old_umask);
	ctl->bound = true;
	if (ctl->has_group && chown(path, (uid_t)-1, ctl->gid) == -1) {
		log_warn("control socket %s: chown to group %s", path, group);
		goto fail;
	}
	if (chmod(path, mode) == -1) {
		log_warn("control socket %s: chmod %04o", path, (unsigned)mode);
		goto fail;
	}
	return ctl;
 fail:
	control_free(ctl);
	return NULL;
}

/* Hold the spare descriptor again, if it was given away and is free. */
static void
control_spare_restore(struct control *ctl)
{
	if (ctl->spare == -1 && ctl->listener != NULL)
		ctl->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void
control_unpause(evutil_socket_t fd, short events, void *arg)
{
	struct control *ctl = arg;

	control_spare_restore(ctl);
	if (ctl->listener != NULL)
		evconnlistener_enable(ctl->listener);
}

static void	control_accept(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);

/*
 * Out of descriptors: free the spare one for the waiting client, so that
 * fedgatectl still works when connections have used up the rest. The
 * spare comes back when that client goes (control_client_free()). Return
 * 0 if a client was taken, -1 if there is no spare or no client.
 */
static int
control_accept_spare(struct control *ctl)
{
	int fd;

	if (ctl->spare == -1)
		return -1;
	close(ctl->spare);
	ctl->spare = -1;
	fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		control_spare_restore(ctl);
		return -1;
	}
	log_debug("control: out of descriptors, a client gets the spare one");
	control_accept(ctl->listener, fd, NULL, 0, ctl);
	control_spare_restore(ctl);	/* if the client was refused */
	return 0;
}

/*
 * accept() failed: out of descriptors, serve one client on the spare;
 * otherwise (memory, or the spare is in use) wait a moment.
 */
static void
control_accept_error(struct evconnlistener *lev, void *arg)
{
	struct control *ctl = arg;
	struct timeval tv = { CONTROL_PAUSE_SEC, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	if ((err == EMFILE || err == ENFILE) && control_accept_spare(ctl) == 0)
		return;
	log_warnx("control: accept: %s; pausing for %d s",
	    evutil_socket_error_to_string(err), CONTROL_PAUSE_SEC);
	evconnlistener_disable(lev);
	if (evtimer_add(ctl->pause, &tv) == -1)
		evconnlistener_enable(lev);
}

/* Refuse a client beyond CONTROL_CLIENTS_MAX with one reply line. */
static void
control_refuse(struct control *ctl, int fd)
{
	static const char msg[] =
	    "{\"ok\":false,\"error\":\"too many clients\"}\n";

	if (!ctl->full) {
		log_warnx("control: %u clients connected, refusing more",
		    ctl->nclients);
		ctl->full = true;
	}
	(void)send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void	control_client_read(struct bufferevent *, void *);
static void	control_client_write(struct bufferevent *, void *);
static void	control_client_event(struct bufferevent *, short, void *);

static void
control_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct control *ctl = arg;
	struct control_client *cc;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct timeval idle = { CONTROL_IDLE_SEC, 0 };
	struct timeval wr = { CONTROL_WRITE_SEC, 0 };

	if (ctl->nclients >= CONTROL_CLIENTS_MAX) {
		control_refuse(ctl, fd);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("control: SO_PEERCRED");
		close(fd);
		return;
	}
	if ((cc = calloc(1, sizeof(*cc))) == NULL ||
	    (cc->bev = bufferevent_socket_new(daemon_base(ctl->d), fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warn("control: new client");
		free(cc);
		close(fd);
		return;
	}
	cc->ctl = ctl;
	cc->id = ++ctl->next_id;
	cc->uid = cred.uid;
	cc->gid = cred.gid;
	cc->pid = cred.pid;
	cc->may_mutate = -1;
	bufferevent_setcb(cc->bev, control_client_read, control_client_write,
	    control_client_event, cc);
	/* Room for the longest line with its CR LF: reading stops there. */
	bufferevent_setwatermark(cc->bev, EV_READ, 0, CONTROL_LINE_MAX + 2);
	bufferevent_setwatermark(cc->bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(cc->bev, &idle, &wr);
	bufferevent_enable(cc->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&ctl->clients, cc, entry);
	ctl->nclients++;
	log_debug("control: client %" PRIu64 " connected: uid %u gid %u pid %ld",
	    cc->id, (unsigned)cc->uid, (unsigned)cc->gid, (long)cc->pid);
}

int
control_listen(struct control *ctl)
{
	ctl->pause = evtimer_new(daemon_base(ctl->d), control_unpause, ctl);
	if (ctl->pause == NULL) {
		log_warnx("control socket %s: cannot create a timer", ctl->path);
		return -1;
	}
	ctl->listener = evconnlistener_new(daemon_base(ctl->d), control_accept,
	    ctl, LEV_OPT_CLOSE_ON_EXEC, CONTROL_BACKLOG, ctl->fd);
	if (ctl->listener == NULL) {
		log_warn("control socket %s: listen", ctl->path);
		return -1;
	}
	evconnlistener_set_error_cb(ctl->listener, control_accept_error);
	control_spare_restore(ctl);
	if (ctl->spare == -1)
		log_warn("control socket %s: no spare descriptor: /dev/null",
		    ctl->path);
	return 0;
}

void
control_free(struct control *ctl)
{
	struct control_client *cc;

	if (ctl == NULL)
		return;
	if (ctl->listener != NULL) {
		evconnlistener_free(ctl->listener);
		ctl->listener = NULL;
	}
	if (ctl->pause != NULL) {
		event_free(ctl->pause);
		ctl->pause = NULL;
	}
	if (ctl->fd != -1) {
		close(ctl->fd);
		ctl->fd = -1;
	}
	if (ctl->bound) {
		if (unlink(ctl->path) == -1 && errno != ENOENT)
			log_warn("control socket %s: unlink", ctl->path);
		ctl->bound = false;
	}
	if (ctl->busy > 0) {
		/* Inside a client's callback: control_leave() finishes. */
		ctl->dying = true;
		return;
	}
	while ((cc = TAILQ_FIRST(&ctl->clients)) != NULL) {
		control_client_flush(cc);
		control_client_free(cc);
	}
	if (ctl->spare != -1)
		close(ctl->spare);
	free(ctl->path);
	free(ctl);
}

unsigned
control_client_count(const struct control *ctl)
{
	return ctl != NULL ? ctl->nclients : 0;
}

/*
 * Clients
 */

/*
 * Forget cc's deferred reply, if any: stop its timer, and with cancel tell
 * its owner (which must not finish it afterwards). Return the reply (the
 * caller's reference) or NULL.
 */
static struct json_object *
control_deferred_take(struct control_client *cc, bool cancel)
{
	struct json_object *reply = cc->deferred;
	void (*fn)(void *) = cc->deferred_cancel;

	if (reply == NULL)
		return NULL;
	cc->deferred = NULL;
	cc->deferred_cancel = NULL;
	if (!cc->deferred_fanout)
		cc->ctl->ndeferred--;
	cc->deferred_fanout = false;
	evtimer_del(cc->deferred_timer);
	if (cancel && fn != NULL)
		fn(cc->deferred_arg);
	return reply;
}

static void
control_deferred_drop(struct control_client *cc, bool cancel)
{
	struct json_object *reply = control_deferred_take(cc, cancel);

	if (reply != NULL)
		json_object_put(reply);
}

static void
control_client_free(struct control_client *cc)
{
	struct control *ctl = cc->ctl;
	int fd = bufferevent_getfd(cc->bev);

	log_debug("control: client %" PRIu64 " gone", cc->id);
	control_deferred_drop(cc, true);
	if (cc->deferred_timer != NULL)
		event_free(cc->deferred_timer);
	TAILQ_REMOVE(&ctl->clients, cc, entry);
	ctl->nclients--;
	if (ctl->nclients < CONTROL_CLIENTS_MAX)
		ctl->full = false;
	/*
	 * Close the socket now rather than when libevent finalizes the
	 * bufferevent, so that the spare descriptor, if this client had it,
	 * is held again before anything else can take it.
	 */
	bufferevent_setfd(cc->bev, -1);
	bufferevent_free(cc->bev);
	if (fd != -1)
		close(fd);
	control_spare_restore(ctl);
	free(cc);
}

/*
 * One try to send what cc is owed, without waiting: its bufferevent is
 * about to go. (The output's start is frozen for the bufferevent, so the
 * bytes are copied out, not drained.)
 */
static void
control_client_flush(struct control_client *cc)
{
	struct evbuffer *out = bufferevent_get_output(cc->bev);
	size_t len = evbuffer_get_length(out);
	unsigned char *p;

	if (len > 0 && (p = evbuffer_pullup(out, -1)) != NULL)
		(void)send(bufferevent_getfd(cc->bev), p, len,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Leave a client callback. Return true if ctl is gone (and its clients). */
static bool
control_leave(struct control *ctl)
{
	if (--ctl->busy > 0 || !ctl->dying)
		return false;
	control_free(ctl);
	return true;
}

/* Free cc if it is closing and everything it is owed has been sent. */
static void
control_client_settle(struct control_client *cc)
{
	if (cc->closing &&
	    evbuffer_get_length(bufferevent_get_output(cc->bev)) == 0)
		control_client_free(cc);
}

/* Queue reply as one line. */
static void
control_client_send(struct control_client *cc, struct json_object *reply)
{
	const char *s;

	s = json_object_to_json_string_ext(reply,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s == NULL || bufferevent_write(cc->bev, s, strlen(s)) == -1 ||
	    bufferevent_write(cc->bev, "\n", 1) == -1) {
		log_warnx("control: client %" PRIu64 ": cannot queue a reply",
		    cc->id);
		cc->closing = true;
		evbuffer_drain(bufferevent_get_output(cc->bev),
		    evbuffer_get_length(bufferevent_get_output(cc->bev)));
	}
}

/* Send one error reply, then close. */
static void
control_client_fail(struct control_client *cc, const char *msg)
{
	struct json_object *reply;

	if ((reply = json_object_new_object()) != NULL) {
		json_object_object_add(reply, "ok",
		    json_object_new_boolean(0));
		json_object_object_add(reply, "error",
		    json_object_new_string(msg));
		control_client_send(cc, reply);
		json_object_put(reply);
	}
	log_debug("control: client %" PRIu64 ": %s", cc->id, msg);
	bufferevent_disable(cc->bev, EV_READ);
	cc->closing = true;
}

/*
 * Root may mutate; with a control group, so may its members: the peer's
 * primary group, or its user's supplementary groups.
 */
static bool
control_client_may_mutate(struct control_client *cc)
{
	struct control *ctl = cc->ctl;
	struct passwd *pw;
	gid_t *groups = NULL, *n;
	int ngroups = 32, want;

	if (cc->may_mutate != -1)
		return cc->may_mutate == 1;
	cc->may_mutate = cc->uid == 0 ||
	    (ctl->has_group && cc->gid == ctl->gid);
	if (cc->may_mutate || !ctl->has_group ||
	    (pw = getpwuid(cc->uid)) == NULL)
		return cc->may_mutate == 1;
	for (;;) {
		if ((n = reallocarray(groups, (size_t)ngroups,
		    sizeof(*groups))) == NULL)
			break;
		groups = n;
		want = ngroups;
		if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &want) != -1) {
			for (int i = 0; i < want; i++)
				if (groups[i] == ctl->gid)
					cc->may_mutate = 1;
			break;
		}
		if (want <= ngroups || want > 65536)
			break;
		ngroups = want;
	}
	free(groups);
	return cc->may_mutate == 1;
}

/* Split line at blanks into argv. Return the count, or -1 if too many. */
static int
control_split(char *line, char **argv)
{
	int argc = 0;
	char *word;

	while ((word = strsep(&line, " \t")) != NULL) {
		if (*word == '\0')
			continue;
		if (argc == CONTROL_ARGS_MAX)
			return -1;
		argv[argc++] = word;
	}
	return argc;
}

/*
 * The command whose words begin argv, the one with the most words when
 * several match. Store how many words its name took in *words.
 */
static const struct control_command *
control_command_find(int argc, char **argv, int *words)
{
	const struct control_command *best = NULL;
	int best_words = 0;

	for (size_t i = 0; i < control_ncommands; i++) {
		const char *p = control_commands[i].name;
		int w = 0;

		while (*p != '\0' && w < argc) {
			size_t len = strcspn(p, " ");

			if (strlen(argv[w]) != len ||
			    strncmp(p, argv[w], len) != 0)
				break;
			w++;
			p += len;
			p += strspn(p, " ");
		}
		if (*p == '\0' && w > best_words) {
			best = &control_commands[i];
			best_words = w;
		}
	}
	*words = best_words;
	return best;
}

enum control_parse
control_parse_line(char *line, char *argv[CONTROL_ARGS_MAX], int *argc,
    const struct control_command **cmd)
{
	int words;

	*cmd = NULL;
	if ((*argc = control_split(line, argv)) == -1)
		return CONTROL_PARSE_TOO_MANY;
	if (*argc == 0)
		return CONTROL_PARSE_EMPTY;
	if ((*cmd = control_command_find(*argc, argv, &words)) == NULL)
		return CONTROL_PARSE_UNKNOWN;
	*argc -= words;
	memmove(argv, argv + words, (size_t)*argc * sizeof(*argv));
	if (*argc < (*cmd)->min_args || *argc > (*cmd)->max_args)
		return CONTROL_PARSE_USAGE;
	return CONTROL_PARSE_OK;
}

static int	control_defer_reply(struct control_client *,
		    struct json_object *, unsigned, void (*)(void *), void *,
		    bool);

/*
 * What cmd asks of the other workers: nothing with one worker, or on
 * worker i (which runs what worker 0 sends it: control_execute()).
 */
static enum merge_kind
control_fanout_kind(const struct control *ctl,
    const struct control_command *cmd)
{
	struct worker *w = daemon_worker(ctl->d);

	if (w == NULL || worker_count(w) < 2 || worker_index(w) != 0)
		return MERGE_NONE;
	return merge_kind(cmd->name);
}

/* A reply waiting for the other workers' part. */
struct control_fanout {
	struct control_client		*cc;
	const struct control_command	*cmd;
	struct worker_fanout		*f;
};

static void
control_fanout_done(void *arg, char *const *replies, unsigned n)
{
	struct control_fanout *cf = arg;
	struct control_client *cc = cf->cc;
	struct json_object *ok;
	int rc;

	rc = json_object_object_get_ex(cc->deferred, "ok", &ok) &&
	    json_object_get_boolean(ok) ? 0 : -1;
	rc = merge_replies(cf->cmd->name, cc->deferred, rc, replies, n);
	free(cf);
	control_finish(cc, rc);
}

static void
control_fanout_cancel(void *arg)
{
	struct control_fanout *cf = arg;

	worker_fanout_cancel(cf->f);
	free(cf);
}

/*
 * Send line to the other workers; their replies are merged into reply
 * (ok: what the handler returned here) before it is sent. Return 0, or -1
 * (reply's error set).
 */
static int
control_fanout(struct control_client *cc, const struct control_command *cmd,
    const char *line, struct json_object *reply, int ok)
{
	struct control_fanout *cf;

	json_object_object_add(reply, "ok", json_object_new_boolean(ok));
	if ((cf = calloc(1, sizeof(*cf))) == NULL)
		return control_error(reply, "out of memory");
	cf->cc = cc;
	cf->cmd = cmd;
	if (control_defer_reply(cc, reply, CONTROL_FANOUT_SEC,
	    control_fanout_cancel, cf, true) == -1) {
		free(cf);
		return -1;
	}
	cf->f = worker_fanout(daemon_worker(cc->ctl->d), line,
	    CONTROL_FANOUT_MS, control_fanout_done, cf);
	if (cf->f == NULL) {
		control_deferred_drop(cc, false);
		free(cf);
		return control_error(reply, "out of memory");
	}
	return 0;
}

/* Run one command line and queue its reply. */
static void
control_dispatch(struct control_client *cc, char *line)
{
	static const char *const errors[] = {
		[CONTROL_PARSE_TOO_MANY] = "too many words",
		[CONTROL_PARSE_EMPTY] = "empty command",
		[CONTROL_PARSE_UNKNOWN] = "unknown command",
	};
	const struct control_command *cmd;
	struct json_object *reply;
	char *argv[CONTROL_ARGS_MAX], copy[CONTROL_LINE_MAX + 1];
	enum control_parse parsed;
	enum merge_kind fanout;
	int argc, ok = 0;
	bool mutating;

	if ((reply = json_object_new_object()) == NULL) {
		control_client_fail(cc, "out of memory");
		return;
	}
	snprintf(copy, sizeof(copy), "%s", line);	/* for the workers */
	json_object_object_add(reply, "ok", json_object_new_boolean(0));
	parsed = control_parse_line(line, argv, &argc, &cmd);
	if (cmd == NULL) {
		control_error(reply, "%s", errors[parsed]);
		goto send;
	}
	json_object_object_add(reply, "command",
	    json_object_new_string(cmd->name));
	mutating = cmd->access == CONTROL_WRITE ||
	    (cmd->access == CONTROL_WRITE_WITH_ARGS && argc > 0);
	if (parsed == CONTROL_PARSE_USAGE)
		control_error(reply, "usage: %s%s%s", cmd->name,
		    cmd->args[0] != '\0' ? " " : "", cmd->args);
	else if (mutating && !control_client_may_mutate(cc)) {
		log_info("control: %s refused to uid %u pid %ld", cmd->name,
		    (unsigned)cc->uid, (long)cc->pid);
		control_error(reply, "permission denied");
	} else {
		log_debug("control: client %" PRIu64 ": %s", cc->id, cmd->name);
		if ((fanout = control_fanout_kind(cc->ctl, cmd)) ==
		    MERGE_BROADCAST)
			worker_broadcast(daemon_worker(cc->ctl->d), copy);
		switch (cmd->handler(cc, reply, argc, argv)) {
		case 0:
			ok = 1;
			break;
		case CONTROL_DEFERRED:
			json_object_put(reply);	/* control_defer() holds one */
			return;
		default:
			break;
		}
		if (fanout == MERGE_GATHER &&
		    control_fanout(cc, cmd, copy, reply, ok) == 0) {
			json_object_put(reply);	/* the deferral holds one */
			return;
		}
	}
 send:
	json_object_object_add(reply, "ok", json_object_new_boolean(ok));
	control_client_send(cc, reply);
	json_object_put(reply);
}

char *
control_execute(struct daemon *d, const char *line)
{
	struct control ctl = { .d = d, .fd = -1 };
	struct control_client cc = { .ctl = &ctl, .may_mutate = 1 };
	const struct control_command *cmd;
	struct json_object *reply;
	char *argv[CONTROL_ARGS_MAX], copy[CONTROL_LINE_MAX + 1], *text;
	int argc, ok = 0;

	TAILQ_INIT(&ctl.clients);
	if ((reply = json_object_new_object()) == NULL)
		return NULL;
	snprintf(copy, sizeof(copy), "%s", line);
	if (control_parse_line(copy, argv, &argc, &cmd) != CONTROL_PARSE_OK)
		control_error(reply, "not a command for a worker");
	else {
		json_object_object_add(reply, "command",
		    json_object_new_string(cmd->name));
		ctl.busy++;
		switch (cmd->handler(&cc, reply, argc, argv)) {
		case 0:
			ok = 1;
			break;
		case CONTROL_DEFERRED:	/* never asked of a worker */
			control_deferred_drop(&cc, true);
			control_error(reply, "not a command for a worker");
			break;
		default:
			break;
		}
		if (cc.deferred_timer != NULL)
			event_free(cc.deferred_timer);
	}
	json_object_object_add(reply, "ok", json_object_new_boolean(ok));
	text = strdup(json_object_to_json_string_ext(reply,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(reply);
	return text;
}

/* Run every whole line waiting in cc's input, as back-pressure allows. */
static void
control_client_process(struct control_client *cc)
{
	struct evbuffer *in = bufferevent_get_input(cc->bev);
	struct evbuffer *out = bufferevent_get_output(cc->bev);
	char *line;
	size_t len;

	while (!cc->closing && !cc->ctl->dying && cc->deferred == NULL) {
		if (evbuffer_get_length(out) > CONTROL_OUTPUT_HIGH) {
			bufferevent_disable(cc->bev, EV_READ);
			cc->blocked = true;
			return;
		}
		if ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) == NULL) {
			if (evbuffer_get_length(in) > CONTROL_LINE_MAX + 1)
				control_client_fail(cc, "line too long");
			else if (cc->eof)
				cc->closing = true;	/* a last partial line is dropped */
			return;
		}
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len > CONTROL_LINE_MAX)
			control_client_fail(cc, "line too long");
		else if (strlen(line) != len)
			control_client_fail(cc, "NUL byte in a line");
		else
			control_dispatch(cc, line);
		free(line);
	}
}

static void
control_client_read(struct bufferevent *bev, void *arg)
{
	struct control_client *cc = arg;
	struct control *ctl = cc->ctl;

	ctl->busy++;
	control_client_process(cc);
	if (!control_leave(ctl))
		control_client_settle(cc);
}

/* The output is drained: resume reading if it was stopped, or close. */
static void
control_client_write(struct bufferevent *bev, void *arg)
{
	struct control_client *cc = arg;
	struct control *ctl = cc->ctl;

	ctl->busy++;
	if (cc->blocked) {
		cc->blocked = false;
		if (!cc->eof && !cc->closing)
			bufferevent_enable(cc->bev, EV_READ);
		control_client_process(cc);
	}
	if (!control_leave(ctl))
		control_client_settle(cc);
}

static void
control_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct control_client *cc = arg;
	struct control *ctl = cc->ctl;

	if (what & BEV_EVENT_EOF && !(what & BEV_EVENT_ERROR)) {
		/* Half-closed: answer what it sent, then close. */
		ctl->busy++;
		cc->eof = true;
		if (!cc->blocked)
			control_client_process(cc);
		if (!control_leave(ctl))
			control_client_settle(cc);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		log_debug("control: client %" PRIu64 ": %s timeout", cc->id,
		    what & BEV_EVENT_READING ? "idle" : "write");
	else if (what & BEV_EVENT_ERROR)
		log_debug("control: client %" PRIu64 ": %s", cc->id,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	control_client_free(cc);
}

/*
 * Deferred replies
 */

static void
control_deferred_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *cc = arg;
	struct json_object *reply;

	log_info("control: client %" PRIu64 ": no reply within %u s, giving up",
	    cc->id, cc->deferred_sec);
	if ((reply = control_deferred_take(cc, true)) == NULL)
		return;
	/* Put it back so that control_finish() sends it. */
	cc->deferred = reply;
	cc->ctl->ndeferred++;	/* uncounted again by control_finish() */
	control_error(reply, "timed out after %u s", cc->deferred_sec);
	control_finish(cc, -1);
}

/* Keep reply for later, as control_defer() says; fanout: uncounted. */
static int
control_defer_reply(struct control_client *cc, struct json_object *reply,
    unsigned timeout_sec, void (*cancel)(void *), void *arg, bool fanout)
{
	struct control *ctl = cc->ctl;
	struct timeval tv = { (time_t)timeout_sec, 0 };

	if (cc->deferred_timer == NULL &&
	    (cc->deferred_timer = evtimer_new(daemon_base(ctl->d),
	    control_deferred_timeout, cc)) == NULL)
		return control_error(reply, "out of memory");
	if (evtimer_add(cc->deferred_timer, &tv) == -1)
		return control_error(reply, "cannot arm a timer");
	cc->deferred = json_object_get(reply);
	cc->deferred_sec = timeout_sec;
	cc->deferred_cancel = cancel;
	cc->deferred_arg = arg;
	cc->deferred_fanout = fanout;
	if (!fanout)
		ctl->ndeferred++;
	return 0;
}

int
control_defer(struct control_client *cc, struct json_object *reply,
    unsigned timeout_sec, void (*cancel)(void *), void *arg)
{
	if (cc->ctl->ndeferred >= CONTROL_DEFERRED_MAX)
		return control_error(reply, "too many commands waiting for "
		    "their reply (%d at most); try again later",
		    CONTROL_DEFERRED_MAX);
	return control_defer_reply(cc, reply, timeout_sec, cancel, arg,
	    false);
}

void
control_finish(struct control_client *cc, int rc)
{
	struct control *ctl = cc->ctl;
	struct json_object *reply = control_deferred_take(cc, false);

	if (reply == NULL)
		return;
	json_object_object_add(reply, "ok", json_object_new_boolean(rc == 0));
	control_client_send(cc, reply);
	json_object_put(reply);
	/* Go on with the lines that waited, as a client callback would. */
	ctl->busy++;
	if (!cc->blocked)
		control_client_process(cc);
	if (!control_leave(ctl))
		control_client_settle(cc);
}
