/*
 * parse.y: the grammar of fedgated.conf(5) and its lexer, in the OpenBSD
 * tradition: a sorted keyword table searched with bsearch(3), "include",
 * macros ("name = value", used as $name), quoted strings, and every error
 * of a file reported in one run as "FILE:LINE: message" (at most one per
 * line, so that one mistake does not echo).
 *
 * The grammar fills a struct config made by config_new() (which holds the
 * defaults); config_validate() then checks what depends on several
 * statements. Peer rules go into config->policy through policy_add().
 *
 * The parser is not reentrant: one parse at a time, from one thread. Its
 * state lives in one struct cfg_parser made and freed by config_parse();
 * every string the lexer makes lives in that struct until the parse ends,
 * so the grammar actions copy what they keep and free nothing.
 */

%{
#include "fgconfig.h"

#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_PRIVATE
#include "config.h"
#include "jid.h"
#include "log.h"
#include "policy.h"
#include "tls.h"
#include "util.h"

/* Keep the generated parser's globals out of everybody's way. */
#define yyparse		config_yyparse
#define yylval		config_yylval
#define yychar		config_yychar
#define yynerrs		config_yynerrs

#define CFG_TOKEN_MAX	4096	/* bytes of one word or quoted string */
#define CFG_ERRORS_MAX	50	/* then stop */
#define CFG_INCLUDE_MAX	8	/* nesting of include */

/*
 * The value of every symbol. Tokens carry where they start; STRING and
 * NUMBER carry their text (a keyword its name), NUMBER also its value
 * (INT64_MAX when too big). Nonterminals use the fields as their rules say;
 * number -1 marks a value already reported as invalid.
 */
typedef struct {
	const char	*string;
	int64_t		 number;
	const char	*file;
	int		 lineno;
} YYSTYPE;
#define YYSTYPE_IS_DECLARED 1

static const YYSTYPE cfg_nothing;	/* for empty rules */

/* How cfg_range() prints bounds. */
enum cfg_unit {
	CFG_PLAIN,
	CFG_SIZE,
	CFG_DURATION
};

/* One file being read: the top one, or an include. */
struct cfg_file {
	TAILQ_ENTRY(cfg_file)	 entry;		/* all files of this parse */
	struct cfg_file		*parent;	/* the includer, or NULL */
	char			*name;		/* as shown in messages */
	char			*dir;		/* resolves relative includes */
	char			*absdir;	/* resolves other paths */
	const char		*buf;		/* the text */
	char			*owned;		/* buf when it is ours */
	size_t			 len;
	size_t			 pos;
	dev_t			 dev;		/* to refuse include loops */
	ino_t			 ino;
	int			 lineno;
	int			 last_tok;	/* last token, 0: none */
	int			 last_line;
	int			 braces;	/* "{" not yet closed */
	int			 brace_line;	/* line of the outermost one */
	bool			 brace_reported; /* at end of file */
};

struct cfg_macro {
	TAILQ_ENTRY(cfg_macro)	 entry;
	char			*name;
	char			*value;
};

/* A string made by the lexer, freed when the parse ends. */
struct cfg_str {
	SLIST_ENTRY(cfg_str)	 entry;
	size_t			 len;
	char			 text[];
};

/* A peer pattern already defined, for the duplicate message. */
struct cfg_pattern {
	SLIST_ENTRY(cfg_pattern) entry;
	const char		*file;
	int			 line;
	char			 pattern[];
};

#define CFG_PEER_BITS	16	/* POLICY_SET_* bits */

struct cfg_parser {
	struct config		*conf;
	char			**errors;
	int			 nerrors;
	const char		*err_file;	/* where the last error was */
	int			 err_line;
	bool			 stop;		/* too many errors: end now */
	bool			 allow_include;
	int			 depth;		/* include nesting */
	bool			 stmt_start;	/* a statement begins next */

	struct cfg_file		*file;		/* the one being read */
	TAILQ_HEAD(, cfg_file)	 files;
	TAILQ_HEAD(, cfg_macro)	 macros;
	SLIST_HEAD(, cfg_str)	 strings;
	SLIST_HEAD(, cfg_pattern) patterns;

	/* the last token and the one before, for syntax error messages */
	struct cfg_tok {
		int		 kind;
		const char	*text;
		const char	*file;
		int		 line;
		bool		 bare;		/* an unquoted word */
		bool		 synthetic;	/* added at end of file */
	} tok, prev;

	/* the peer block being read */
	struct {
		char		 pattern[JID_DOMAIN_MAX + 2];
		bool		 valid;
		const char	*file;
		int		 line;
		struct policy_settings s;
		const char	*set_by[CFG_PEER_BITS];
		int		 set_line[CFG_PEER_BITS];
	} peer;

	/* options of the control statement being read (string NULL: none) */
	YYSTYPE			 ctl_mode;
	YYSTYPE			 ctl_group;

	/* the domain block being read */
	struct config_domain	*dom;
	bool			 dom_inserted;
	/* lines of upstream, (unused), (unused), internal-name, subdomains
	 * (0: unset) */
	int			 dom_lines[5];
};

static struct cfg_parser *cfg;

int		 yyparse(void);
static int	 yylex(void);
static void	 yyerror(const char *);

static void	 cfg_error(const char *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	 cfg_error_at(const YYSTYPE *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	 cfg_oom(void);
static void	 cfg_note(const YYSTYPE *, const char *);
static int	 cfg_once(const YYSTYPE *, enum config_setting);
static void	 cfg_set_str(char **, const char *);
static char	*cfg_path(const YYSTYPE *);
static int	 cfg_check_path(const YYSTYPE *, const char *, const char *,
		    bool);
static int64_t	 cfg_range(const YYSTYPE *, const char *, int64_t, int64_t,
		    int64_t, enum cfg_unit);
static int64_t	 cfg_size(const YYSTYPE *);
static int64_t	 cfg_duration(const YYSTYPE *);
static bool	 cfg_is_address(const char *);
static int	 cfg_host(const YYSTYPE *, const char *, char *, size_t);
static void	 cfg_include(const YYSTYPE *);
static void	 cfg_macro_set(const YYSTYPE *, const YYSTYPE *);
static void	 cfg_limit(const YYSTYPE *, const YYSTYPE *);
static void	 cfg_timeout(const YYSTYPE *, const YYSTYPE *);
static void	 cfg_control(const YYSTYPE *, const YYSTYPE *);
static void	 cfg_secret(const YYSTYPE *, const YYSTYPE *, bool);
static void	 cfg_listen(const YYSTYPE *, const YYSTYPE *, const YYSTYPE *,
		    const YYSTYPE *, int64_t);
static void	 cfg_metrics_domain(const YYSTYPE *);
static void	 cfg_resolver_setting(const YYSTYPE *,
		    enum config_resolver_kind, const YYSTYPE *, const YYSTYPE *);
static void	 cfg_source(const YYSTYPE *, const YYSTYPE *, const YYSTYPE *);
static void	 cfg_domain_begin(const YYSTYPE *, const YYSTYPE *);
static void	 cfg_domain_end(void);
static int	 cfg_domain_once(const YYSTYPE *, int);
static void	 cfg_domain_cert(const YYSTYPE *, bool);
static void	 cfg_subdomains(const YYSTYPE *);
static void	 cfg_subdomain_name(const YYSTYPE *);
static void	 cfg_upstream(const YYSTYPE *, const YYSTYPE *,
		    const YYSTYPE *, int64_t);
static void	 cfg_peer_begin(const YYSTYPE *, const char *);
static void	 cfg_peer_end(void);
static int	 cfg_peer_set(const YYSTYPE *, unsigned, const char *);
static void	 cfg_peer_mode(const YYSTYPE *, const YYSTYPE *);
static void	 cfg_peer_tls_min(const YYSTYPE *, const YYSTYPE *);
static void	 cfg_peer_ciphers(const YYSTYPE *, const YYSTYPE *);
static void	 cfg_peer_limit(const YYSTYPE *, const YYSTYPE *,
		    const YYSTYPE *);

/* Flags of listen and upstream statements. */
#define CFG_F_TLS		0x1
#define CFG_F_PROXY		0x2
#define CFG_F_TRANSPARENT	0x4
#define CFG_F_TRUSTED		0x8
%}

%token	ACK ALLOW ANY ATTRIBUTES AUTH BACKOFF BACKOFFMAX BIDI BURST CAFILE CAPATH
%token	CERTIFICATE CONNECT
%token	CONNECTIONS CONNECTIONSPERADDRESS CONTROL DANE DEFAULT DENY DEPTH
%token	DIALBACK DNS DOMAIN DOMAINSPERSTREAM EXTERNAL FACILITY FILENAME GROUP
%token	HANDSHAKE OUTPUTBUFFER SASLATTEMPTS VERIFICATIONS
%token	VERIFICATIONSPERSTREAM UNACKED
%token	HEADERSIZE IDLE INCLUDE INTERNAL INTERNALNAME KEEPALIVE KEY LEVEL
%token	DIRECTORY DOMAINS
%token	CIPHERS MINVERSION
%token	LIMIT LISTEN LOG METRICS MODE NO NONE OFF ON OPTION OPTIONAL ORIGINAL
%token	PEER SOURCE TRUSTANCHOR
%token	PIDFILE PORT PROXYPROTOCOL PUBLIC QUEUE RATE REQUIRED RESOLVE
%token	RESOLVER ROUTE SECRET SHUTDOWN SOCKET SRV STANZASIZE STATE STDERR SYSLOG
%token	TIMEOUT TLS TRANSPARENT TRUSTED UPSTREAM USER VERIFY WORKERS YES
%token	SUBDOMAINS
%token	STRING NUMBER VARNAME ENDINCLUDE

%%

grammar		: /* empty */
		| grammar sep
		| grammar INCLUDE string sep		{ cfg_include(&$3); }
		| grammar VARNAME '=' string sep {
			cfg_macro_set(&$2, &$4);
		}
		| grammar main sep
		| grammar domain sep
		| grammar peer sep
		| grammar ENDINCLUDE
		| grammar error sep			{ yyerrok; }
		;

sep		: '\n'
		| ';'
		;

/* A value: a word, quoted or not, or a number taken as its text. */
string		: STRING
		| NUMBER
		;

number		: NUMBER
		| STRING {
			cfg_error_at(&$1, "\"%s\" is not a number", $1.string);
			$$ = $1;
			$$.number = -1;
		}
		;

size		: string {
			$$ = $1;
			$$.number = cfg_size(&$1);
		}
		;

duration	: string {
			$$ = $1;
			$$.number = cfg_duration(&$1);
		}
		;

port		: number {
			$$ = $1;
			$$.number = cfg_range(&$1, "port", $1.number, 1, 65535,
			    CFG_PLAIN);
		}
		;

optport		: /* empty */		{ $$ = cfg_nothing; }
		| PORT port		{ $$ = $2; }
		;

main		: USER string {
			if (cfg_once(&$1, CONFIG_SET_USER) == 0)
				cfg_set_str(&cfg->conf->user, $2.string);
		}
		| GROUP string {
			if (cfg_once(&$1, CONFIG_SET_GROUP) == 0)
				cfg_set_str(&cfg->conf->group, $2.string);
		}
		| PIDFILE string {
			if (cfg_once(&$1, CONFIG_SET_PID_FILE) == -1)
				break;
			if ($2.string[0] != '/')
				cfg_error_at(&$2, "pid-file \"%s\" is not an "
				    "absolute path", $2.string);
			else
				cfg_set_str(&cfg->conf->pid_file, $2.string);
		}
		| STATE DIRECTORY string {
			if (cfg_once(&$1, CONFIG_SET_STATE) == -1)
				break;
			if ($3.string[0] != '/')
				cfg_error_at(&$3, "state directory \"%s\" is not "
				    "an absolute path", $3.string);
			else
				cfg_set_str(&cfg->conf->state_dir, $3.string);
		}
		| LOG SYSLOG {
			if (cfg_once(&$1, CONFIG_SET_LOG) == 0)
				cfg->conf->log_syslog = true;
		}
		| LOG SYSLOG FACILITY string {
			if (cfg_once(&$1, CONFIG_SET_LOG) == -1)
				break;
			cfg->conf->log_syslog = true;
			if (log_facility_parse($4.string,
			    &cfg->conf->log_facility) == -1)
				cfg_error_at(&$4, "unknown syslog facility "
				    "\"%s\"", $4.string);
		}
		| LOG STDERR {
			if (cfg_once(&$1, CONFIG_SET_LOG) == 0)
				cfg->conf->log_syslog = false;
		}
		| LOG LEVEL string {
			if (cfg_once(&$2, CONFIG_SET_LOG_LEVEL) == -1)
				break;
			if (log_level_parse($3.string,
			    &cfg->conf->log_level) == -1)
				cfg_error_at(&$3, "unknown log level \"%s\"",
				    $3.string);
		}
		| CONTROL SOCKET string controlopts { cfg_control(&$1, &$3); }
		| METRICS LISTEN ON string optport {
			struct sockaddr_storage ss;
			socklen_t sslen;

			if (cfg_once(&$1, CONFIG_SET_METRICS) == -1)
				break;
			if ($5.number > 0)
				cfg->conf->metrics_port = (uint16_t)$5.number;
			if (util_sockaddr_parse($4.string,
			    cfg->conf->metrics_port, &ss, &sslen) == -1) {
				cfg_error_at(&$4, "invalid address \"%s\" "
				    "(a numeric address or *)", $4.string);
				break;
			}
			cfg_set_str(&cfg->conf->metrics_host, $4.string);
			cfg->conf->metrics_origin.line = $1.lineno;
			cfg_set_str(&cfg->conf->metrics_origin.file, $1.file);
		}
		| METRICS DOMAINS metricsdomains
		| DIALBACK SECRET string	{ cfg_secret(&$1, &$3, false); }
		| DIALBACK SECRET FILENAME string {
			cfg_secret(&$1, &$4, true);
		}
		| TLS CAFILE string {
			cfg_note(&$1, "tls ca-file");
			if (cfg_once(&$2, CONFIG_SET_CA_FILE) == 0 &&
			    cfg_check_path(&$3, "tls ca-file", "file",
			    false) == 0)
				cfg->conf->ca_file = cfg_path(&$3);
		}
		| TLS CAPATH string {
			cfg_note(&$1, "tls ca-path");
			if (cfg_once(&$2, CONFIG_SET_CA_PATH) == 0 &&
			    cfg_check_path(&$3, "tls ca-path", "directory",
			    true) == 0)
				cfg->conf->ca_path = cfg_path(&$3);
		}
		| RESOLVER string optport {
			if (cfg_once(&$1, CONFIG_SET_RESOLVER) == -1)
				break;
			if (strcmp($2.string, "*") == 0 ||
			    !cfg_is_address($2.string)) {
				cfg_error_at(&$2, "invalid resolver address "
				    "\"%s\" (a numeric address)", $2.string);
				break;
			}
			cfg_set_str(&cfg->conf->resolver, $2.string);
			if ($3.number > 0)
				cfg->conf->resolver_port = (uint16_t)$3.number;
		}
		| RESOLVER OPTION string string {
			cfg_resolver_setting(&$1, CONFIG_RESOLVER_OPTION, &$3,
			    &$4);
		}
		| RESOLVER TRUSTANCHOR string {
			cfg_resolver_setting(&$1, CONFIG_RESOLVER_TRUST_ANCHOR,
			    NULL, &$3);
		}
		| RESOLVER TRUSTANCHOR FILENAME string {
			cfg_resolver_setting(&$1,
			    CONFIG_RESOLVER_TRUST_ANCHOR_FILE, NULL, &$4);
		}
		| SOURCE face string		{ cfg_source(&$1, &$2, &$3); }
		| LIMIT globallimits
		| TIMEOUT timeouts
		| KEEPALIVE duration {
			int64_t v;

			if (cfg_once(&$1, CONFIG_SET_KEEPALIVE) == -1)
				break;
			v = cfg_range(&$2, "keepalive", $2.number, 1000,
			    86400000, CFG_DURATION);
			if (v > 0)
				cfg->conf->timeouts.keepalive = (uint64_t)v;
		}
		| KEEPALIVE OFF {
			if (cfg_once(&$1, CONFIG_SET_KEEPALIVE) == 0)
				cfg->conf->timeouts.keepalive = 0;
		}
		| LISTEN face ON string optport listenflags {
			cfg_listen(&$1, &$2, &$4, &$5, $6.number);
		}
		| WORKERS number {
			int64_t v;

			if (cfg_once(&$1, CONFIG_SET_WORKERS) == -1)
				break;
			v = cfg_range(&$2, "workers", $2.number, 1,
			    CONFIG_WORKERS_MAX, CFG_PLAIN);
			if (v > 0)
				cfg->conf->workers = (unsigned)v;
		}
		;

metricsdomains	: string			{ cfg_metrics_domain(&$1); }
		| metricsdomains string		{ cfg_metrics_domain(&$2); }
		;

controlopts	: /* empty */ {
			cfg->ctl_mode = cfg_nothing;
			cfg->ctl_group = cfg_nothing;
		}
		| controlopts MODE string	{ cfg->ctl_mode = $3; }
		| controlopts GROUP string	{ cfg->ctl_group = $3; }
		;

face		: PUBLIC {
			$$ = $1;
			$$.number = CONFIG_FACE_PUBLIC;
		}
		| INTERNAL {
			$$ = $1;
			$$.number = CONFIG_FACE_INTERNAL;
		}
		| TRANSPARENT {
			$$ = $1;
			$$.number = CONFIG_FACE_TRANSPARENT;
		}
		;

listenflags	: /* empty */		{ $$ = cfg_nothing; }
		| listenflags TLS	{ $$.number = $1.number | CFG_F_TLS; }
		| listenflags PROXYPROTOCOL {
			cfg_note(&$2, "proxy-protocol");
			$$.number = $1.number | CFG_F_PROXY;
		}
		;

globallimits	: globallimit
		| globallimits globallimit
		;

globallimit	: STANZASIZE size		{ cfg_limit(&$1, &$2); }
		| HEADERSIZE size		{ cfg_limit(&$1, &$2); }
		| DEPTH number			{ cfg_limit(&$1, &$2); }
		| ATTRIBUTES number		{ cfg_limit(&$1, &$2); }
		| CONNECTIONS number		{ cfg_limit(&$1, &$2); }
		| CONNECTIONSPERADDRESS number	{ cfg_limit(&$1, &$2); }
		| QUEUE number			{ cfg_limit(&$1, &$2); }
		| OUTPUTBUFFER size		{ cfg_limit(&$1, &$2); }
		| DOMAINSPERSTREAM number	{ cfg_limit(&$1, &$2); }
		| VERIFICATIONS number		{ cfg_limit(&$1, &$2); }
		| VERIFICATIONSPERSTREAM number	{ cfg_limit(&$1, &$2); }
		| SASLATTEMPTS number		{ cfg_limit(&$1, &$2); }
		| UNACKED number		{ cfg_limit(&$1, &$2); }
		;

timeouts	: timeout
		| timeouts timeout
		;

timeout		: HANDSHAKE duration		{ cfg_timeout(&$1, &$2); }
		| CONNECT duration		{ cfg_timeout(&$1, &$2); }
		| DNS duration			{ cfg_timeout(&$1, &$2); }
		| IDLE duration			{ cfg_timeout(&$1, &$2); }
		| SHUTDOWN duration		{ cfg_timeout(&$1, &$2); }
		| ACK duration			{ cfg_timeout(&$1, &$2); }
		| BACKOFF duration		{ cfg_timeout(&$1, &$2); }
		| BACKOFFMAX duration		{ cfg_timeout(&$1, &$2); }
		;

domain		: domainhead '{' domainopts '}'		{ cfg_domain_end(); }
		| domainhead '{' domainopts error '}'	{ cfg_domain_end(); }
		;

domainhead	: DOMAIN string			{ cfg_domain_begin(&$1, &$2); }
		;

domainopts	: /* empty */
		| domainopts domainopt
		| domainopts sep
		| domainopts error sep		{ yyerrok; }
		;

domainopt	: UPSTREAM string optport upflags {
			cfg_upstream(&$1, &$2, &$3, $4.number);
		}
		| CERTIFICATE string		{ cfg_domain_cert(&$2, false); }
		| KEY string			{ cfg_domain_cert(&$2, true); }
		| SUBDOMAINS subnames		{ cfg_subdomains(&$1); }
		| INTERNALNAME string {
			char n[JID_DOMAIN_MAX];

			if (cfg_domain_once(&$1, 3) == -1)
				break;
			if (jid_domain_normalize($2.string, n, sizeof(n)) == -1)
				cfg_error_at(&$2, "invalid internal-name "
				    "\"%s\"", $2.string);
			else if (cfg->dom->name != NULL &&
			    strcmp(n, cfg->dom->name) == 0)
				cfg_error_at(&$2, "internal-name \"%s\" is the "
				    "domain's own name", $2.string);
			else
				cfg_set_str(&cfg->dom->internal_name, n);
		}
		;

subnames	: /* empty */
		| subnames string		{ cfg_subdomain_name(&$2); }
		;

upflags		: /* empty */			{ $$ = cfg_nothing; }
		| upflags PROXYPROTOCOL {
			cfg_note(&$2, "proxy-protocol");
			$$.number = $1.number | CFG_F_PROXY;
		}
		| upflags TRANSPARENT {
			cfg_note(&$2, "upstream transparent");
			$$.number = $1.number | CFG_F_TRANSPARENT;
		}
		| upflags TRUSTED {
			$$.number = $1.number | CFG_F_TRUSTED;
		}
		;

peer		: peerhead peerbody		{ cfg_peer_end(); }
		;

peerhead	: PEER string		{ cfg_peer_begin(&$1, $2.string); }
		| PEER DEFAULT		{ cfg_peer_begin(&$1, "default"); }
		;

peerbody	: ALLOW				{ cfg_peer_mode(&$1, NULL); }
		| DENY				{ cfg_peer_mode(&$1, NULL); }
		| '{' peeropts '}'
		| '{' peeropts error '}'
		;

peeropts	: /* empty */
		| peeropts peeropt
		| peeropts sep
		| peeropts error sep		{ yyerrok; }
		;

peeropt		: ALLOW				{ cfg_peer_mode(&$1, NULL); }
		| DENY				{ cfg_peer_mode(&$1, NULL); }
		| TLS tlsmode			{ cfg_peer_mode(&$1, &$2); }
		| TLS MINVERSION string		{ cfg_peer_tls_min(&$2, &$3); }
		| TLS CIPHERS string		{ cfg_peer_ciphers(&$2, &$3); }
		| VERIFY tlsmode		{ cfg_peer_mode(&$1, &$2); }
		| AUTH authmode			{ cfg_peer_mode(&$1, &$2); }
		| DANE YES			{ cfg_peer_mode(&$1, &$2); }
		| DANE NO			{ cfg_peer_mode(&$1, &$2); }
		| BIDI YES			{ cfg_peer_mode(&$1, &$2); }
		| BIDI NO			{ cfg_peer_mode(&$1, &$2); }
		| RESOLVE SRV			{ cfg_peer_mode(&$1, &$2); }
		| RESOLVE ORIGINAL		{ cfg_peer_mode(&$1, &$2); }
		| ROUTE string optport {
			struct policy_settings *s = &cfg->peer.s;
			char host[POLICY_ROUTE_HOST_MAX];

			cfg_note(&$1, "route");
			if (cfg_peer_set(&$1, POLICY_SET_ROUTE, "route") ==
			    -1 || cfg_host(&$2, "route host", host,
			    sizeof(host)) == -1)
				break;
			if ((s->route_host = policy_text(host)) == NULL) {
				s->route_host = "";
				cfg_error_at(&$2, "route: out of memory");
				break;
			}
			s->route_port = $3.number > 0 ? (uint16_t)$3.number :
			    CONFIG_DEFAULT_PORT;
		}
		| LIMIT peerlimits
		;

tlsmode		: NONE
		| OPTIONAL
		| REQUIRED
		;

authmode	: DIALBACK
		| EXTERNAL
		| ANY
		;

peerlimits	: peerlimit
		| peerlimits peerlimit
		;

peerlimit	: STANZASIZE size	{ cfg_peer_limit(&$1, &$2, NULL); }
		| CONNECTIONS number	{ cfg_peer_limit(&$1, &$2, NULL); }
		| RATE size		{ cfg_peer_limit(&$1, &$2, NULL); }
		| RATE size BURST size	{ cfg_peer_limit(&$1, &$2, &$4); }
		;

%%

struct cfg_keyword {
	const char	*name;
	int		 token;
};

/* Sorted by strcmp(3): searched with bsearch(3). */
static const struct cfg_keyword cfg_keywords[] = {
	{ "ack",			ACK },
	{ "allow",			ALLOW },
	{ "any",			ANY },
	{ "attributes",			ATTRIBUTES },
	{ "auth",			AUTH },
	{ "backoff",			BACKOFF },
	{ "backoff-max",		BACKOFFMAX },
	{ "bidi",			BIDI },
	{ "burst",			BURST },
	{ "ca-file",			CAFILE },
	{ "ca-path",			CAPATH },
	{ "certificate",		CERTIFICATE },
	{ "ciphers",			CIPHERS },
	{ "connect",			CONNECT },
	{ "connections",		CONNECTIONS },
	{ "connections-per-address",	CONNECTIONSPERADDRESS },
	{ "control",			CONTROL },
	{ "dane",			DANE },
	{ "default",			DEFAULT },
	{ "deny",			DENY },
	{ "depth",			DEPTH },
	{ "dialback",			DIALBACK },
	{ "directory",			DIRECTORY },
	{ "dns",			DNS },
	{ "domain",			DOMAIN },
	{ "domains",			DOMAINS },
	{ "domains-per-stream",		DOMAINSPERSTREAM },
	{ "external",			EXTERNAL },
	{ "facility",			FACILITY },
	{ "file",			FILENAME },
	{ "group",			GROUP },
	{ "handshake",			HANDSHAKE },
	{ "header-size",		HEADERSIZE },
	{ "idle",			IDLE },
	{ "include",			INCLUDE },
	{ "internal",			INTERNAL },
	{ "internal-name",		INTERNALNAME },
	{ "keepalive",			KEEPALIVE },
	{ "key",			KEY },
	{ "level",			LEVEL },
	{ "limit",			LIMIT },
	{ "listen",			LISTEN },
	{ "log",			LOG },
	{ "metrics",			METRICS },
	{ "min-version",		MINVERSION },
	{ "mode",			MODE },
	{ "no",				NO },
	{ "none",			NONE },
	{ "off",			OFF },
	{ "on",				ON },
	{ "option",			OPTION },
	{ "optional",			OPTIONAL },
	{ "original",			ORIGINAL },
	{ "output-buffer",		OUTPUTBUFFER },
	{ "peer",			PEER },
	{ "pid-file",			PIDFILE },
	{ "port",			PORT },
	{ "proxy-protocol",		PROXYPROTOCOL },
	{ "public",			PUBLIC },
	{ "queue",			QUEUE },
	{ "rate",			RATE },
	{ "required",			REQUIRED },
	{ "resolve",			RESOLVE },
	{ "resolver",			RESOLVER },
	{ "route",			ROUTE },
	{ "sasl-attempts",		SASLATTEMPTS },
	{ "secret",			SECRET },
	{ "shutdown",			SHUTDOWN },
	{ "socket",			SOCKET },
	{ "source",			SOURCE },
	{ "srv",			SRV },
	{ "stanza-size",		STANZASIZE },
	{ "state",			STATE },
	{ "stderr",			STDERR },
	{ "subdomains",			SUBDOMAINS },
	{ "syslog",			SYSLOG },
	{ "timeout",			TIMEOUT },
	{ "tls",			TLS },
	{ "transparent",		TRANSPARENT },
	{ "trust-anchor",		TRUSTANCHOR },
	{ "trusted",			TRUSTED },
	{ "unacked",			UNACKED },
	{ "upstream",			UPSTREAM },
	{ "user",			USER },
	{ "verifications",		VERIFICATIONS },
	{ "verifications-per-stream",	VERIFICATIONSPERSTREAM },
	{ "verify",			VERIFY },
	{ "workers",			WORKERS },
	{ "yes",			YES },
};

static int
cfg_keyword_cmp(const void *k, const void *e)
{
	return strcmp(k, ((const struct cfg_keyword *)e)->name);
}

static const struct cfg_keyword *
cfg_keyword_find(const char *s)
{
	return bsearch(s, cfg_keywords, nitems(cfg_keywords),
	    sizeof(cfg_keywords[0]), cfg_keyword_cmp);
}

bool
config_keywords_are_sorted(void)
{
	for (size_t i = 1; i < nitems(cfg_keywords); i++)
		if (strcmp(cfg_keywords[i - 1].name, cfg_keywords[i].name) >= 0)
			return false;
	return true;
}

/* Errors. */

static void __attribute__((format(printf, 3, 0)))
cfg_verror(const char *file, int line, const char *fmt, va_list ap)
{
	char msg[1024];

	if (cfg->nerrors >= CFG_ERRORS_MAX)
		return;
	/* One error a line: what follows a mistake is rarely news. */
	if (file == cfg->err_file && line == cfg->err_line)
		return;
	cfg->err_file = file;
	cfg->err_line = line;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	config_add_error(cfg->errors, file, line, "%s", msg);
	if (++cfg->nerrors == CFG_ERRORS_MAX) {
		config_add_error(cfg->errors, file, line,
		    "too many errors, giving up");
		cfg->stop = true;
	}
}

static void
cfg_error(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verror(file, line, fmt, ap);
	va_end(ap);
}

static void
cfg_error_at(const YYSTYPE *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verror(t->file, t->lineno, fmt, ap);
	va_end(ap);
}

static void
cfg_oom(void)
{
	const char *file = cfg->file != NULL ? cfg->file->name : NULL;
	int line = cfg->file != NULL ? cfg->file->lineno : 0;

	cfg_error(file, line, "out of memory");
	cfg->stop = true;
}

/* Name the last token for a syntax error. */
static void
yyerror(const char *msg)
{
	const char *text = cfg->tok.text != NULL ? cfg->tok.text : "";
	const char *file = cfg->tok.file;
	const struct cfg_tok *prev = &cfg->prev;
	char after[64] = "";
	int line = cfg->tok.line;

	/* what an unfinished statement ends with */
	if (prev->text != NULL && prev->line == line)
		snprintf(after, sizeof(after), " after \"%.40s%s\"", prev->text,
		    strlen(prev->text) > 40 ? "..." : "");
	else if (prev->kind > 0 && prev->kind < 256 && prev->kind != '\n' &&
	    prev->line == line)
		snprintf(after, sizeof(after), " after \"%c\"", prev->kind);

	if (strcmp(msg, "syntax error") != 0) {
		cfg_error(file, line, "%s", msg);
		return;
	}
	switch (cfg->tok.kind) {
	case 0:
	case ENDINCLUDE:
		cfg_error(file, line, "unexpected end of file");
		break;
	case '\n':
		cfg_error(file, line, "unexpected end of %s%s",
		    cfg->tok.synthetic ? "file" : "line", after);
		break;
	case STRING:
		if (cfg->tok.bare)
			cfg_error(file, line, "unknown keyword \"%s\"", text);
		else
			cfg_error(file, line, "unexpected string \"%s\"", text);
		break;
	case NUMBER:
		cfg_error(file, line, "unexpected number %s", text);
		break;
	case VARNAME:
		cfg_error(file, line, "macro \"%s\" cannot be defined here",
		    text);
		break;
	case '}':
		/* one closing an unclosed block at the end: already said */
		if (cfg->tok.synthetic)
			break;
		/* FALLTHROUGH */
	case ';':
	case '{':
	case '=':
		cfg_error(file, line, "unexpected \"%c\"", cfg->tok.kind);
		break;
	default:
		cfg_error(file, line, "unexpected keyword \"%s\"", text);
		break;
	}
}

/* Strings that live until the end of the parse. */

static char *
cfg_strndup(const char *s, size_t len)
{
	struct cfg_str *str;

	if ((str = malloc(sizeof(*str) + len + 1)) == NULL) {
		cfg_oom();
		return NULL;
	}
	str->len = len;
	memcpy(str->text, s, len);
	str->text[len] = '\0';
	SLIST_INSERT_HEAD(&cfg->strings, str, entry);
	return str->text;
}

/* Keep a copy of s in *dst (owned by the config). */
static void
cfg_set_str(char **dst, const char *s)
{
	char *copy;

	if ((copy = strdup(s)) == NULL) {
		cfg_oom();
		return;
	}
	free(*dst);
	*dst = copy;
}

/* Files. */

static void
cfg_file_free(struct cfg_file *f)
{
	if (f->owned != NULL) {
		explicit_bzero(f->owned, f->len);
		free(f->owned);
	}
	free(f->name);
	free(f->dir);
	free(f->absdir);
	free(f);
}

/*
 * Make a file named name (as shown) over buf, which it frees if owned is
 * set. Its directory is name's; absdir is that directory made absolute, for
 * the paths kept in the config.
 */
static struct cfg_file *
cfg_file_new(const char *name, const char *buf, char *owned, size_t len)
{
	struct cfg_file *f;
	const char *slash = strrchr(name, '/');
	char *real;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->name = strdup(name);
	if (slash == NULL)
		f->dir = strdup(".");
	else if (slash == name)
		f->dir = strdup("/");
	else
		f->dir = strndup(name, (size_t)(slash - name));
	if (f->name == NULL || f->dir == NULL) {
		cfg_file_free(f);
		return NULL;
	}
	if ((real = realpath(f->dir, NULL)) != NULL)
		f->absdir = real;
	else if ((f->absdir = strdup(f->dir)) == NULL) {
		cfg_file_free(f);
		return NULL;
	}
	f->buf = buf;
	f->owned = owned;
	f->len = len;
	f->lineno = 1;
	f->last_line = 1;
	return f;
}

/* dir/path, or path when it is absolute or dir is ".". Malloc'd. */
static char *
cfg_join(const char *dir, const char *path)
{
	char *s;

	if (path[0] == '/' || strcmp(dir, ".") == 0)
		s = strdup(path);
	else if (asprintf(&s, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/",
	    path) == -1)
		s = NULL;
	if (s == NULL)
		cfg_oom();
	return s;
}

/* The path in token t, taken from the directory of t's file. Malloc'd. */
static char *
cfg_path(const YYSTYPE *t)
{
	char *s;

	if (t->string[0] == '/' || cfg->file == NULL)
		s = strdup(t->string);
	else if (asprintf(&s, "%s%s%s", cfg->file->absdir,
	    strcmp(cfg->file->absdir, "/") == 0 ? "" : "/", t->string) == -1)
		s = NULL;
	if (s == NULL)
		cfg_oom();
	return s;
}

/* Check that the path of t names an existing file (or directory). */
static int
cfg_check_path(const YYSTYPE *t, const char *what, const char *kind,
    bool directory)
{
	mode_t mode;
	char *path;
	int r = -1;

	if (t->string[0] == '\0') {
		cfg_error_at(t, "%s is empty", what);
		return -1;
	}
	if ((path = cfg_path(t)) == NULL)
		return -1;
	if (config_stat(path, &mode, NULL, NULL) == -1)
		cfg_error_at(t, "%s \"%s\": %s", what, t->string,
		    strerror(errno));
	else if (directory ? !S_ISDIR(mode) : !S_ISREG(mode))
		cfg_error_at(t, "%s \"%s\" is not a %s", what, t->string,
		    kind);
	else
		r = 0;
	free(path);
	return r;
}

static void
cfg_include(const YYSTYPE *t)
{
	struct cfg_file *f, *up;
	char err[256], *path, *buf;
	size_t len;
	mode_t mode;
	dev_t dev;
	ino_t ino;

	if (!cfg->allow_include) {
		cfg_error_at(t, "include is not allowed here");
		return;
	}
	if (cfg->depth >= CFG_INCLUDE_MAX) {
		cfg_error_at(t, "include \"%s\": nested too deep", t->string);
		return;
	}
	/* relative to the includer's directory, and so shown */
	if ((path = cfg_join(cfg->file->dir, t->string)) == NULL)
		return;
	if (config_stat(path, &mode, &dev, &ino) == -1) {
		cfg_error_at(t, "include \"%s\": %s", t->string,
		    strerror(errno));
		goto done;
	}
	/* Replayed from a bundle there is no inode: the parent, which read
	 * the disk, found no loop, and the depth is bounded anyway. */
	for (up = cfg->file; ino != 0 && up != NULL; up = up->parent)
		if (up->dev == dev && up->ino == ino) {
			cfg_error_at(t, "include \"%s\" makes a loop",
			    t->string);
			goto done;
		}
	if (config_read_file(path, CONFIG_FILE_MAX, &buf, &len, err,
	    sizeof(err)) == -1) {
		cfg_error_at(t, "include \"%s\": %s", t->string, err);
		goto done;
	}
	if ((f = cfg_file_new(path, buf, buf, len)) == NULL) {
		explicit_bzero(buf, len);
		free(buf);
		cfg_oom();
		goto done;
	}
	f->dev = dev;
	f->ino = ino;
	f->parent = cfg->file;
	TAILQ_INSERT_TAIL(&cfg->files, f, entry);
	cfg->file = f;
	cfg->depth++;
	cfg->stmt_start = true;
done:
	free(path);
}

/* Macros. */

static struct cfg_macro *
cfg_macro_find(const char *name)
{
	struct cfg_macro *m;

	TAILQ_FOREACH(m, &cfg->macros, entry)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

static bool
cfg_is_macro_name(const char *s)
{
	if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') ||
	    (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (; *s != '\0'; s++)
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

/* name = value: a later definition replaces an earlier one. */
static void
cfg_macro_set(const YYSTYPE *name, const YYSTYPE *value)
{
	struct cfg_macro *m;
	char *v;

	if (!cfg_is_macro_name(name->string)) {
		cfg_error_at(name, "invalid macro name \"%s\"", name->string);
		return;
	}
	if ((v = strdup(value->string)) == NULL) {
		cfg_oom();
		return;
	}
	if ((m = cfg_macro_find(name->string)) != NULL) {
		free(m->value);
		m->value = v;
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->name = strdup(name->string)) == NULL) {
		free(m);
		free(v);
		cfg_oom();
		return;
	}
	m->value = v;
	TAILQ_INSERT_TAIL(&cfg->macros, m, entry);
}

/* The lexer. */

static int
cfg_getc(struct cfg_file *f)
{
	int c;

	for (;;) {
		if (f->pos >= f->len)
			return EOF;
		c = (unsigned char)f->buf[f->pos++];
		/* a backslash at the end of a line joins the next one */
		if (c == '\\' && f->pos < f->len && f->buf[f->pos] == '\n') {
			f->pos++;
			f->lineno++;
			continue;
		}
		return c;
	}
}

static void
cfg_ungetc(struct cfg_file *f, int c)
{
	if (c != EOF)
		f->pos--;
}

static bool
cfg_is_word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80 ||
	    (c != '\0' && strchr("-_.:/*@+%~[]", c) != NULL);
}

static bool
cfg_is_number(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static int64_t
cfg_number_value(const char *s)
{
	int64_t v = 0;

	for (; *s != '\0'; s++) {
		if (v > (INT64_MAX - 9) / 10)
			return INT64_MAX;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* Set yylval to the text s and return NUMBER or STRING. */
static int
cfg_lex_value(const char *s, size_t len)
{
	if ((yylval.string = cfg_strndup(s, len)) == NULL)
		return 0;
	if (cfg_is_number(yylval.string)) {
		yylval.number = cfg_number_value(yylval.string);
		return NUMBER;
	}
	return STRING;
}

static int
cfg_lex_quoted(struct cfg_file *f, int quote)
{
	char buf[CFG_TOKEN_MAX];
	size_t n = 0;
	bool toolong = false;
	int c, d;

	for (;;) {
		c = cfg_getc(f);
		if (c == EOF || c == '\n') {
			cfg_ungetc(f, c);
			cfg_error(f->name, yylval.lineno,
			    "unterminated quoted string");
			break;
		}
		if (c == quote)
			break;
		if (c == '\\') {
			d = cfg_getc(f);
			if (d == quote || d == '\\')
				c = d;
			else
				cfg_ungetc(f, d);
		}
		if (c == '\0') {
			cfg_error(f->name, yylval.lineno, "NUL byte in "
			    "quoted string");
			continue;
		}
		if (n < sizeof(buf))
			buf[n++] = (char)c;
		else
			toolong = true;
	}
	if (toolong)
		cfg_error(f->name, yylval.lineno, "quoted string is longer "
		    "than %d bytes", CFG_TOKEN_MAX);
	if ((yylval.string = cfg_strndup(buf, n)) == NULL)
		return 0;
	return STRING;
}

static int
cfg_lex_macro(struct cfg_file *f)
{
	char name[CFG_TOKEN_MAX];
	struct cfg_macro *m;
	size_t n = 0;
	int c;

	while ((c = cfg_getc(f)) != EOF && (c == '_' ||
	    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9')))
		if (n < sizeof(name) - 1)
			name[n++] = (char)c;
	cfg_ungetc(f, c);
	name[n] = '\0';
	if (n == 0) {
		cfg_error(f->name, yylval.lineno, "\"$\" is not followed by "
		    "a macro name");
		return cfg_lex_value("$", 1);
	}
	if ((m = cfg_macro_find(name)) == NULL) {
		cfg_error(f->name, yylval.lineno, "macro \"%s\" is not "
		    "defined", name);
		yylval.string = "";
		return STRING;
	}
	return cfg_lex_value(m->value, strlen(m->value));
}

/* Is the next thing on this line, after blanks, an "="? */
static bool
cfg_next_is_equal(const struct cfg_file *f)
{
	size_t i;

	for (i = f->pos; i < f->len && (f->buf[i] == ' ' ||
	    f->buf[i] == '\t'); i++)
		;
	return i < f->len && f->buf[i] == '=';
}

static int
cfg_lex_word(struct cfg_file *f)
{
	char buf[CFG_TOKEN_MAX];
	const struct cfg_keyword *kw;
	size_t n = 0;
	bool toolong = false;
	int c, tok;

	while ((c = cfg_getc(f)) != EOF && cfg_is_word_char(c)) {
		if (n < sizeof(buf) - 1)
			buf[n++] = (char)c;
		else
			toolong = true;
	}
	cfg_ungetc(f, c);
	buf[n] = '\0';
	if (toolong)
		cfg_error(f->name, yylval.lineno, "word is longer than %d "
		    "bytes", CFG_TOKEN_MAX - 1);
	/* "name = value" defines a macro, even one named like a keyword */
	if (cfg->stmt_start && cfg_next_is_equal(f) && !cfg_is_number(buf)) {
		yylval.string = cfg_strndup(buf, n);
		return yylval.string != NULL ? VARNAME : 0;
	}
	if ((kw = cfg_keyword_find(buf)) != NULL) {
		yylval.string = kw->name;
		return kw->token;
	}
	if ((tok = cfg_lex_value(buf, n)) == STRING)
		cfg->tok.bare = true;
	return tok;
}

/*
 * At the end of a file: end its last statement, close its open block (so
 * that an include cannot leave one open in its includer), then leave it.
 */
static int
cfg_lex_eof(struct cfg_file *f)
{
	yylval.lineno = f->last_line;
	if (f->last_tok != 0 && f->last_tok != '\n' && f->last_tok != ';') {
		cfg->tok.synthetic = true;
		return '\n';
	}
	if (f->braces > 0) {
		if (!f->brace_reported)
			cfg_error(f->name, f->brace_line, "\"{\" is not closed "
			    "before the end of the file");
		f->brace_reported = true;
		f->braces--;
		cfg->tok.synthetic = true;
		return '}';
	}
	if (f->parent == NULL)
		return 0;
	cfg->file = f->parent;
	cfg->depth--;
	cfg->stmt_start = true;
	return ENDINCLUDE;
}

static int
yylex(void)
{
	struct cfg_file *f;
	int c, tok;

	cfg->prev = cfg->tok;
again:
	f = cfg->file;
	memset(&yylval, 0, sizeof(yylval));
	memset(&cfg->tok, 0, sizeof(cfg->tok));
	yylval.file = f->name;
	if (cfg->stop) {
		yylval.lineno = f->lineno;
		tok = 0;
		goto out;
	}
	do {
		c = cfg_getc(f);
	} while (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v');
	if (c == '#')
		while ((c = cfg_getc(f)) != '\n' && c != EOF)
			;
	yylval.lineno = f->lineno;
	switch (c) {
	case EOF:
		tok = cfg_lex_eof(f);
		break;
	case '\n':
		tok = '\n';
		f->lineno++;
		break;
	case ';':
	case '{':
	case '}':
	case '=':
		tok = c;
		if (c == '{' && f->braces++ == 0)
			f->brace_line = yylval.lineno;
		if (c == '}' && f->braces > 0)
			f->braces--;
		break;
	case '"':
	case '\'':
		tok = cfg_lex_quoted(f, c);
		break;
	case '$':
		tok = cfg_lex_macro(f);
		break;
	default:
		if (!cfg_is_word_char(c)) {
			if (c >= 0x20 && c < 0x7f)
				cfg_error(f->name, f->lineno, "unexpected "
				    "character \"%c\"", c);
			else
				cfg_error(f->name, f->lineno, "unexpected "
				    "byte 0x%02x", (unsigned)c);
			goto again;
		}
		cfg_ungetc(f, c);
		tok = cfg_lex_word(f);
		break;
	}
	if (tok == 0 && c != EOF)	/* out of memory */
		yylval.lineno = f->lineno;
out:
	cfg->tok.kind = tok;
	cfg->tok.text = yylval.string;
	cfg->tok.file = yylval.file;
	cfg->tok.line = yylval.lineno;
	if (tok != ENDINCLUDE && tok != 0) {
		f->last_tok = tok;
		f->last_line = yylval.lineno;
		cfg->stmt_start = tok == '\n' || tok == ';';
	}
	return tok;
}

/* Helpers of the grammar actions. */

/* Record the use of keyword kw (unsupported ones are refused later). */
static void
cfg_note(const YYSTYPE *t, const char *kw)
{
	if (config_note_keyword(cfg->conf, kw, t->file, t->lineno) == -1)
		cfg_oom();
}

/* Mark setting s as written at t. Return -1 if it already was. */
static int
cfg_once(const YYSTYPE *t, enum config_setting s)
{
	struct config_origin *o = &cfg->conf->origins[s];
	char at[PATH_MAX + 16];

	if (o->file != NULL) {
		cfg_error_at(t, "\"%s\" is already set at %s",
		    config_setting_name(s), config_where(t->file, o->file,
		    o->line, at, sizeof(at)));
		return -1;
	}
	if ((o->file = strdup(t->file)) == NULL) {
		cfg_oom();
		return -1;
	}
	o->line = t->lineno;
	return 0;
}

/*
 * Check that v (from token t, written as t->string) is in [min, max];
 * sizes and durations print their bounds with units. Return v, or -1 if
 * it is out of range or was already reported.
 */
static int64_t
cfg_range(const YYSTYPE *t, const char *what, int64_t v, int64_t min,
    int64_t max, enum cfg_unit unit)
{
	char lo[32], hi[32];

	if (v < 0)
		return -1;
	if (v >= min && v <= max)
		return v;
	if (unit == CFG_DURATION) {
		util_duration_str((uint64_t)min, lo, sizeof(lo));
		util_duration_str((uint64_t)max, hi, sizeof(hi));
	} else if (unit == CFG_SIZE) {
		util_size_str((uint64_t)min, lo, sizeof(lo));
		util_size_str((uint64_t)max, hi, sizeof(hi));
	} else {
		snprintf(lo, sizeof(lo), "%" PRId64, min);
		snprintf(hi, sizeof(hi), "%" PRId64, max);
	}
	cfg_error_at(t, "%s %s is out of range (%s to %s)", what, t->string,
	    lo, hi);
	return -1;
}

static int64_t
cfg_size(const YYSTYPE *t)
{
	uint64_t v;

	if (util_parse_size(t->string, &v) == -1 || v > INT64_MAX) {
		cfg_error_at(t, "invalid size \"%s\"", t->string);
		return -1;
	}
	return (int64_t)v;
}

static int64_t
cfg_duration(const YYSTYPE *t)
{
	uint64_t v;

	if (util_parse_duration(t->string, &v) == -1 || v > INT64_MAX) {
		cfg_error_at(t, "invalid duration \"%s\"", t->string);
		return -1;
	}
	return (int64_t)v;
}

static bool
cfg_is_address(const char *s)
{
	struct sockaddr_storage ss;
	socklen_t sslen;

	return util_sockaddr_parse(s, 0, &ss, &sslen) == 0;
}

/*
 * Check the host name or numeric address in t and store it, normalised,
 * in out. Return 0, or -1 after an error.
 */
static int
cfg_host(const YYSTYPE *t, const char *what, char *out, size_t outlen)
{
	char n[JID_DOMAIN_MAX];
	const char *s = t->string;

	if (strcmp(s, "*") != 0 && cfg_is_address(s))
		;
	else if (jid_domain_normalize(s, n, sizeof(n)) == 0)
		s = n;
	else {
		cfg_error_at(t, "invalid %s \"%s\"", what, t->string);
		return -1;
	}
	if (strlen(s) >= outlen) {
		cfg_error_at(t, "%s \"%s\" is too long", what, t->string);
		return -1;
	}
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* The global limits: their ranges and where they go. */
static const struct cfg_limit {
	const char	*name;
	enum config_setting setting;
	int64_t		 min;
	int64_t		 max;
	size_t		 offset;	/* in struct config_limits */
	bool		 is_size;	/* uint64_t, else unsigned */
} cfg_limits[] = {
	{ "stanza-size", CONFIG_SET_STANZA_SIZE, 1024, 64 * 1024 * 1024,
	    offsetof(struct config_limits, stanza_size), true },
	{ "header-size", CONFIG_SET_HEADER_SIZE, 512, 1024 * 1024,
	    offsetof(struct config_limits, header_size), true },
	{ "depth", CONFIG_SET_DEPTH, 2, 1024,
	    offsetof(struct config_limits, depth), false },
	{ "attributes", CONFIG_SET_ATTRIBUTES, 1, 1024,
	    offsetof(struct config_limits, attributes), false },
	{ "connections", CONFIG_SET_CONNECTIONS, 1, 1000000,
	    offsetof(struct config_limits, connections), false },
	{ "connections-per-address", CONFIG_SET_PER_ADDRESS, 1, 1000000,
	    offsetof(struct config_limits, connections_per_address), false },
	{ "queue", CONFIG_SET_QUEUE, 1, 1000000,
	    offsetof(struct config_limits, queue), false },
	{ "output-buffer", CONFIG_SET_OUTPUT_BUFFER, 16 * 1024,
	    64 * 1024 * 1024, offsetof(struct config_limits, output_buffer),
	    true },
	{ "domains-per-stream", CONFIG_SET_DOMAINS_PER_STREAM, 1, 10000,
	    offsetof(struct config_limits, domains_per_stream), false },
	{ "verifications", CONFIG_SET_VERIFICATIONS, 1, 100000,
	    offsetof(struct config_limits, verifications), false },
	{ "verifications-per-stream", CONFIG_SET_VERIFICATIONS_PER_STREAM, 1,
	    10000, offsetof(struct config_limits, verifications_per_stream),
	    false },
	{ "sasl-attempts", CONFIG_SET_SASL_ATTEMPTS, 1, 5,
	    offsetof(struct config_limits, sasl_attempts), false },
	{ "unacked", CONFIG_SET_UNACKED, 0, 100000,
	    offsetof(struct config_limits, unacked), false },
};

/* limit KEYWORD VALUE: kw is the keyword, v the value. */
static void
cfg_limit(const YYSTYPE *kw, const YYSTYPE *v)
{
	const struct cfg_limit *l = NULL;
	char what[64];
	char *base = (char *)&cfg->conf->limits;
	int64_t n;

	for (size_t i = 0; i < nitems(cfg_limits); i++)
		if (strcmp(kw->string, cfg_limits[i].name) == 0)
			l = &cfg_limits[i];
	if (l == NULL || cfg_once(kw, l->setting) == -1)
		return;
	snprintf(what, sizeof(what), "limit %s", kw->string);
	if ((n = cfg_range(v, what, v->number, l->min, l->max,
	    l->is_size ? CFG_SIZE : CFG_PLAIN)) < 0)
		return;
	if (l->is_size)
		*(uint64_t *)(void *)(base + l->offset) = (uint64_t)n;
	else
		*(unsigned *)(void *)(base + l->offset) = (unsigned)n;
}

/* timeout KEYWORD DURATION */
static void
cfg_timeout(const YYSTYPE *kw, const YYSTYPE *v)
{
	static const struct {
		const char	*name;
		enum config_setting setting;
		size_t		 offset;
		int64_t		 min;
		int64_t		 max;
	} timeouts[] = {
		{ "handshake", CONFIG_SET_HANDSHAKE,
		    offsetof(struct config_timeouts, handshake), 1000,
		    86400000 },
		{ "connect", CONFIG_SET_CONNECT,
		    offsetof(struct config_timeouts, connect), 1000, 86400000 },
		{ "dns", CONFIG_SET_DNS,
		    offsetof(struct config_timeouts, dns), 1000, 86400000 },
		{ "idle", CONFIG_SET_IDLE,
		    offsetof(struct config_timeouts, idle), 1000, 86400000 },
		{ "shutdown", CONFIG_SET_SHUTDOWN,
		    offsetof(struct config_timeouts, shutdown), 0, 3600000 },
		{ "ack", CONFIG_SET_ACK,
		    offsetof(struct config_timeouts, ack), 1000, 86400000 },
		{ "backoff", CONFIG_SET_BACKOFF,
		    offsetof(struct config_timeouts, backoff), 0, 3600000 },
		{ "backoff-max", CONFIG_SET_BACKOFF_MAX,
		    offsetof(struct config_timeouts, backoff_max), 1000,
		    86400000 },
	};
	char what[64];
	char *base = (char *)&cfg->conf->timeouts;
	int64_t n;

	for (size_t i = 0; i < nitems(timeouts); i++) {
		if (strcmp(kw->string, timeouts[i].name) != 0)
			continue;
		if (cfg_once(kw, timeouts[i].setting) == -1)
			return;
		snprintf(what, sizeof(what), "timeout %s", kw->string);
		n = cfg_range(v, what, v->number, timeouts[i].min,
		    timeouts[i].max, CFG_DURATION);
		if (n >= 0)
			*(uint64_t *)(void *)(base + timeouts[i].offset) =
			    (uint64_t)n;
		return;
	}
}

/* control socket PATH [mode MODE] [group GROUP] */
static void
cfg_control(const YYSTYPE *kw, const YYSTYPE *path)
{
	struct config *c = cfg->conf;
	const YYSTYPE *mt = &cfg->ctl_mode, *gt = &cfg->ctl_group;
	struct sockaddr_un sun;
	mode_t mode = c->control_mode;
	char *end;
	long m;

	if (cfg_once(kw, CONFIG_SET_CONTROL) == -1)
		return;
	if (path->string[0] != '/') {
		cfg_error_at(path, "control socket \"%s\" is not an absolute "
		    "path", path->string);
		return;
	}
	if (strlen(path->string) >= sizeof(sun.sun_path)) {
		cfg_error_at(path, "control socket \"%s\" is longer than %zu "
		    "bytes", path->string, sizeof(sun.sun_path) - 1);
		return;
	}
	if (mt->string != NULL) {
		errno = 0;
		m = strtol(mt->string, &end, 8);
		if (mt->string[0] < '0' || mt->string[0] > '7' ||
		    *end != '\0' || errno != 0 || m > 0777) {
			cfg_error_at(mt, "invalid mode \"%s\" (an octal number "
			    "such as 0660)", mt->string);
			return;
		}
		mode = (mode_t)m;
	}
	if ((mode & 0600) != 0600) {
		cfg_error_at(kw, "control socket mode %04o does not let its "
		    "owner read and write", (unsigned)mode);
		return;
	}
	if (gt->string != NULL && gt->string[0] == '\0') {
		cfg_error_at(gt, "control socket group is empty");
		return;
	}
	if (gt->string != NULL && (mode & 0060) != 0060) {
		cfg_error_at(kw, "control socket group \"%s\" cannot connect "
		    "with mode %04o", gt->string, (unsigned)mode);
		return;
	}
	cfg_set_str(&c->control_path, path->string);
	c->control_mode = mode;
	if (gt->string != NULL)
		cfg_set_str(&c->control_group, gt->string);
}

/* dialback secret STRING | dialback secret file PATH */
static void
cfg_secret(const YYSTYPE *kw, const YYSTYPE *v, bool is_file)
{
	struct config *c = cfg->conf;
	char err[256], *path, *secret;
	size_t len;

	if (cfg_once(kw, CONFIG_SET_DIALBACK) == -1)
		return;
	if (is_file) {
		if ((path = cfg_path(v)) == NULL)
			return;
		if (config_read_secret(path, v->string, &secret, &len, err,
		    sizeof(err)) == -1) {
			cfg_error_at(v, "%s", err);
			free(path);
			return;
		}
		free(path);
	} else {
		len = strlen(v->string);
		if (len < CONFIG_SECRET_MIN) {
			cfg_error_at(v, "dialback secret is too short (%zu "
			    "bytes, at least %d)", len, CONFIG_SECRET_MIN);
			return;
		}
		if ((secret = strdup(v->string)) == NULL) {
			cfg_oom();
			return;
		}
	}
	c->dialback_secret = secret;
	c->dialback_secret_len = len;
}

/* One name of metrics domains NAME...: normalised, once, bounded. */
static void
cfg_metrics_domain(const YYSTYPE *v)
{
	struct config *c = cfg->conf;
	char name[JID_DOMAIN_MAX], **more;

	if (jid_domain_normalize(v->string, name, sizeof(name)) == -1) {
		cfg_error_at(v, "metrics domains: invalid domain \"%s\"",
		    v->string);
		return;
	}
	for (size_t i = 0; i < c->nmetrics_domains; i++)
		if (strcmp(c->metrics_domains[i], name) == 0) {
			cfg_error_at(v, "metrics domains: %s is listed twice",
			    name);
			return;
		}
	if (c->nmetrics_domains >= CONFIG_METRICS_DOMAINS_MAX) {
		cfg_error_at(v, "metrics domains: more than %d names",
		    CONFIG_METRICS_DOMAINS_MAX);
		return;
	}
	if ((more = reallocarray(c->metrics_domains, c->nmetrics_domains + 1,
	    sizeof(*more))) == NULL) {
		cfg_oom();
		return;
	}
	c->metrics_domains = more;
	if ((more[c->nmetrics_domains] = strdup(name)) == NULL) {
		cfg_oom();
		return;
	}
	c->nmetrics_domains++;
}

/* listen FACE on ADDRESS [port PORT] [tls] [proxy-protocol] */
static void
cfg_listen(const YYSTYPE *kw, const YYSTYPE *face, const YYSTYPE *addr,
    const YYSTYPE *port, int64_t flags)
{
	struct config_listen *l;

	cfg_note(kw, "listen");
	if ((flags & CFG_F_PROXY) && face->number != CONFIG_FACE_PUBLIC) {
		cfg_error_at(kw, "proxy-protocol is only for public listeners");
		return;
	}
	if (port->number < 0)
		return;
	if ((l = config_listen_new()) == NULL) {
		cfg_oom();
		return;
	}
	l->face = (enum config_face)face->number;
	if (port->number > 0)
		l->port = (uint16_t)port->number;
	l->direct_tls = (flags & CFG_F_TLS) != 0;
	l->proxy_protocol = (flags & CFG_F_PROXY) != 0;
	l->origin.line = kw->lineno;
	if (util_sockaddr_parse(addr->string, l->port, &l->addr,
	    &l->addrlen) == -1) {
		cfg_error_at(addr, "invalid address \"%s\" (a numeric address "
		    "or *)", addr->string);
		config_listen_free(l);
		return;
	}
	if ((l->host = strdup(addr->string)) == NULL ||
	    (l->origin.file = strdup(kw->file)) == NULL) {
		config_listen_free(l);
		cfg_oom();
		return;
	}
	TAILQ_INSERT_TAIL(&cfg->conf->listens, l, entry);
}

/*
 * resolver option NAME VALUE, resolver trust-anchor [file] TEXT: check the
 * form here; config_check_resolver() asks libunbound at start-up.
 */
static void
cfg_resolver_setting(const YYSTYPE *kw, enum config_resolver_kind kind,
    const YYSTYPE *name, const YYSTYPE *value)
{
	struct config_resolver_setting *rs;
	size_t n;

	if (name != NULL) {
		n = strspn(name->string, "abcdefghijklmnopqrstuvwxyz0123456789-");
		if (n == 0 || (name->string[n] != '\0' &&
		    strcmp(name->string + n, ":") != 0)) {
			cfg_error_at(name, "invalid resolver option name \"%s\" "
			    "(an unbound.conf(5) server option, such as "
			    "local-zone)", name->string);
			return;
		}
	}
	if (kind == CONFIG_RESOLVER_TRUST_ANCHOR_FILE &&
	    cfg_check_path(value, "resolver trust-anchor file", "file",
	    false) == -1)
		return;
	if (kind != CONFIG_RESOLVER_TRUST_ANCHOR_FILE &&
	    value->string[0] == '\0') {
		cfg_error_at(value, "resolver %s is empty", name != NULL ?
		    "option value" : "trust-anchor");
		return;
	}
	if ((rs = calloc(1, sizeof(*rs))) == NULL) {
		cfg_oom();
		return;
	}
	rs->kind = kind;
	rs->origin.line = kw->lineno;
	if (name != NULL && asprintf(&rs->name, "%s%s", name->string,
	    name->string[n] == ':' ? "" : ":") == -1)
		rs->name = NULL;
	if ((rs->origin.file = strdup(kw->file)) == NULL ||
	    (name != NULL && rs->name == NULL) ||
	    (rs->value = kind == CONFIG_RESOLVER_TRUST_ANCHOR_FILE ?
	    cfg_path(value) : strdup(value->string)) == NULL) {
		config_resolver_setting_free(rs);
		cfg_oom();
		return;
	}
	TAILQ_INSERT_TAIL(&cfg->conf->resolver_settings, rs, entry);
}

/* source public|internal ADDRESS: one address per face and family. */
static void
cfg_source(const YYSTYPE *kw, const YYSTYPE *face, const YYSTYPE *addr)
{
	struct config_source *src;
	struct sockaddr_storage ss;
	socklen_t len;
	char at[PATH_MAX + 16];

	if (face->number == CONFIG_FACE_TRANSPARENT) {
		cfg_error_at(face, "source is for the public and internal "
		    "faces (a transparent face has no outgoing legs)");
		return;
	}
	if (strcmp(addr->string, "*") == 0 ||
	    util_sockaddr_parse(addr->string, 0, &ss, &len) == -1) {
		cfg_error_at(addr, "invalid source address \"%s\" (a numeric "
		    "address)", addr->string);
		return;
	}
	src = &cfg->conf->sources[face->number == CONFIG_FACE_INTERNAL]
	    [ss.ss_family == AF_INET6];
	if (src->host != NULL) {
		cfg_error_at(kw, "source %s for %s is already set at %s",
		    config_face_name((enum config_face)face->number),
		    ss.ss_family == AF_INET6 ? "IPv6" : "IPv4",
		    config_where(kw->file, src->origin.file, src->origin.line,
		    at, sizeof(at)));
		return;
	}
	if ((src->host = strdup(addr->string)) == NULL ||
	    (src->origin.file = strdup(kw->file)) == NULL) {
		cfg_oom();
		return;
	}
	src->addr = ss;
	src->addrlen = len;
	src->origin.line = kw->lineno;
}

/* domain NAME {: start a domain block. */
static void
cfg_domain_begin(const YYSTYPE *kw, const YYSTYPE *name)
{
	struct config_domain *d, *dom;
	char n[JID_DOMAIN_MAX], at[PATH_MAX + 16];
	bool valid = true;

	cfg_domain_end();
	memset(cfg->dom_lines, 0, sizeof(cfg->dom_lines));
	if (jid_domain_normalize(name->string, n, sizeof(n)) == -1) {
		cfg_error_at(name, "invalid domain \"%s\"", name->string);
		valid = false;
	}
	TAILQ_FOREACH(d, &cfg->conf->domains, entry)
		if (valid && strcmp(d->name, n) == 0) {
			cfg_error_at(name, "domain \"%s\" is already defined "
			    "at %s", name->string, config_where(name->file,
			    d->origin.file, d->origin.line, at, sizeof(at)));
			valid = false;
		}
	/* an invalid one is still read, into a domain thrown away */
	if ((dom = config_domain_new()) == NULL ||
	    (valid && (dom->name = strdup(n)) == NULL) ||
	    (dom->origin.file = strdup(kw->file)) == NULL) {
		config_domain_free(dom);
		cfg_oom();
		return;
	}
	dom->origin.line = kw->lineno;
	cfg->dom = dom;
	cfg->dom_inserted = valid;
	if (valid)
		TAILQ_INSERT_TAIL(&cfg->conf->domains, dom, entry);
}

static void
cfg_domain_end(void)
{
	if (cfg->dom != NULL && !cfg->dom_inserted)
		config_domain_free(cfg->dom);
	cfg->dom = NULL;
}

/* Setting i of the domain block: 0 upstream ... 3 internal-name. */
static int
cfg_domain_once(const YYSTYPE *kw, int i)
{
	if (cfg->dom == NULL)
		return -1;
	if (cfg->dom_lines[i] != 0) {
		cfg_error_at(kw, "\"%s\" is already set at line %d",
		    kw->string, cfg->dom_lines[i]);
		return -1;
	}
	cfg->dom_lines[i] = kw->lineno;
	return 0;
}

/*
 * certificate FILE, key FILE: the first of each is the domain's own pair;
 * more make more pairs, the n-th key going with the n-th certificate.
 */
static void
cfg_domain_cert(const YYSTYPE *file, bool is_key)
{
	struct config_domain *d = cfg->dom;
	char **first, ***more, **v, *path;
	size_t *n;

	if (d == NULL || cfg_check_path(file, is_key ? "key" : "certificate",
	    "file", false) == -1 || (path = cfg_path(file)) == NULL)
		return;
	first = is_key ? &d->key : &d->certificate;
	more = is_key ? &d->more_keys : &d->more_certificates;
	n = is_key ? &d->nmore_keys : &d->nmore_certificates;
	if (*first == NULL) {
		*first = path;
		return;
	}
	if ((v = reallocarray(*more, *n + 1, sizeof(*v))) == NULL) {
		free(path);
		cfg_oom();
		return;
	}
	v[(*n)++] = path;
	*more = v;
}

/* subdomains ["label" ...]: the names of the list have been added. */
static void
cfg_subdomains(const YYSTYPE *kw)
{
	if (cfg->dom == NULL)
		return;
	if (cfg->dom_lines[4] != 0) {
		cfg_error_at(kw, "\"%s\" is already set at line %d",
		    kw->string, cfg->dom_lines[4]);
		return;
	}
	cfg->dom_lines[4] = kw->lineno;
	cfg->dom->subdomains = true;
}

/* Whether s is labels of letters, digits and '-', '.' apart. */
static bool
cfg_is_hostname(const char *s)
{
	size_t label = 0;

	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-')
			label++;
		else
			return false;
	}
	return label > 0;
}

/*
 * One name of subdomains "conference" "pubsub": a name relative to the
 * domain (one label or more), normalised.
 */
static void
cfg_subdomain_name(const YYSTYPE *name)
{
	struct config_domain *d = cfg->dom;
	char n[JID_DOMAIN_MAX], **v;

	if (d == NULL || cfg->dom_lines[4] != 0)
		return;
	if (!cfg_is_hostname(name->string) ||
	    jid_domain_normalize(name->string, n, sizeof(n)) == -1 ||
	    (d->name != NULL && strlen(n) + 1 + strlen(d->name) >=
	    JID_DOMAIN_MAX)) {
		cfg_error_at(name, "invalid subdomain \"%s\" (a name "
		    "relative to the domain, such as \"conference\")",
		    name->string);
		return;
	}
	for (size_t i = 0; i < d->nsubdomain_names; i++)
		if (strcmp(d->subdomain_names[i], n) == 0) {
			cfg_error_at(name, "subdomain \"%s\" is listed twice",
			    name->string);
			return;
		}
	if ((v = reallocarray(d->subdomain_names, d->nsubdomain_names + 1,
	    sizeof(*v))) == NULL) {
		cfg_oom();
		return;
	}
	d->subdomain_names = v;
	if ((v[d->nsubdomain_names] = strdup(n)) == NULL) {
		cfg_oom();
		return;
	}
	d->nsubdomain_names++;
}

/* upstream HOST [port PORT] [proxy-protocol] [transparent] [trusted] */
static void
cfg_upstream(const YYSTYPE *kw, const YYSTYPE *host, const YYSTYPE *port,
    int64_t flags)
{
	struct config_domain *d = cfg->dom;
	char h[JID_DOMAIN_MAX];

	if (cfg_domain_once(kw, 0) == -1 ||
	    cfg_host(host, "upstream host", h, sizeof(h)) == -1 ||
	    port->number < 0)
		return;
	cfg_set_str(&d->upstream_host, h);
	if (port->number > 0)
		d->upstream_port = (uint16_t)port->number;
	d->upstream_proxy_protocol = (flags & CFG_F_PROXY) != 0;
	d->upstream_transparent = (flags & CFG_F_TRANSPARENT) != 0;
	d->upstream_trusted = (flags & CFG_F_TRUSTED) != 0;
}

/* peer PATTERN: start a peer rule. */
static void
cfg_peer_begin(const YYSTYPE *kw, const char *pattern)
{
	struct cfg_pattern *pp;
	char n[JID_DOMAIN_MAX], at[PATH_MAX + 16];
	const char *suffix = pattern;
	size_t len;

	memset(&cfg->peer, 0, sizeof(cfg->peer));
	policy_settings_init(&cfg->peer.s);
	cfg->peer.s.set = 0;
	cfg->peer.file = kw->file;
	cfg->peer.line = kw->lineno;
	if (strcmp(pattern, "default") != 0) {
		if (strncmp(pattern, "*.", 2) == 0)
			suffix = pattern + 2;
		if (strchr(suffix, '*') != NULL ||
		    jid_domain_normalize(suffix, n, sizeof(n)) == -1) {
			cfg_error_at(kw, "invalid peer \"%s\" (a domain, "
			    "*.domain or default)", pattern);
			return;
		}
		snprintf(cfg->peer.pattern, sizeof(cfg->peer.pattern), "%s%s",
		    suffix != pattern ? "*." : "", n);
	} else
		snprintf(cfg->peer.pattern, sizeof(cfg->peer.pattern),
		    "default");
	SLIST_FOREACH(pp, &cfg->patterns, entry)
		if (strcmp(pp->pattern, cfg->peer.pattern) == 0) {
			cfg_error_at(kw, "peer \"%s\" is already defined at "
			    "%s", pattern, config_where(kw->file, pp->file,
			    pp->line, at, sizeof(at)));
			return;
		}
	len = strlen(cfg->peer.pattern);
	if ((pp = malloc(sizeof(*pp) + len + 1)) == NULL) {
		cfg_oom();
		return;
	}
	pp->file = kw->file;
	pp->line = kw->lineno;
	memcpy(pp->pattern, cfg->peer.pattern, len + 1);
	SLIST_INSERT_HEAD(&cfg->patterns, pp, entry);
	cfg->peer.valid = true;
}

/* The end of a peer rule: add it. */
static void
cfg_peer_end(void)
{
	char err[256];

	if (!cfg->peer.valid)
		return;
	cfg->peer.valid = false;
	if (policy_add(cfg->conf->policy, cfg->peer.pattern, &cfg->peer.s,
	    cfg->peer.file, cfg->peer.line, err, sizeof(err)) == -1)
		cfg_error(cfg->peer.file, cfg->peer.line, "peer \"%s\": %s",
		    cfg->peer.pattern, err);
}

/* Mark bit of the peer rule as set by keyword name at kw. */
static int
cfg_peer_set(const YYSTYPE *kw, unsigned bit, const char *name)
{
	int i = __builtin_ctz(bit);

	if (cfg->peer.s.set & bit) {
		cfg_error_at(kw, "\"%s\" is already set at line %d",
		    cfg->peer.set_by[i], cfg->peer.set_line[i]);
		return -1;
	}
	cfg->peer.s.set |= bit;
	cfg->peer.set_by[i] = name;
	cfg->peer.set_line[i] = kw->lineno;
	return 0;
}

/* allow, deny, tls MODE, verify MODE, auth MODE, dane, bidi, resolve. */
static void
cfg_peer_mode(const YYSTYPE *kw, const YYSTYPE *v)
{
	struct policy_settings *s = &cfg->peer.s;
	const char *k = kw->string;
	int r = 0;

	if (strcmp(k, "allow") == 0 || strcmp(k, "deny") == 0) {
		if (cfg_peer_set(kw, POLICY_SET_ALLOW, k) == 0)
			s->allow = k[0] == 'a';
	} else if (strcmp(k, "tls") == 0) {
		if (cfg_peer_set(kw, POLICY_SET_TLS, k) == 0)
			r = policy_tls_parse(v->string, &s->tls);
	} else if (strcmp(k, "verify") == 0) {
		if (cfg_peer_set(kw, POLICY_SET_VERIFY, k) == 0)
			r = policy_verify_parse(v->string, &s->verify);
	} else if (strcmp(k, "auth") == 0) {
		if (cfg_peer_set(kw, POLICY_SET_AUTH, k) == 0)
			r = policy_auth_parse(v->string, &s->auth);
	} else if (strcmp(k, "dane") == 0) {
		if (strcmp(v->string, "yes") == 0)
			cfg_note(kw, "dane");
		if (cfg_peer_set(kw, POLICY_SET_DANE, k) == 0)
			s->dane = strcmp(v->string, "yes") == 0;
	} else if (strcmp(k, "bidi") == 0) {
		if (cfg_peer_set(kw, POLICY_SET_BIDI, k) == 0)
			s->bidi = strcmp(v->string, "yes") == 0;
	} else if (strcmp(k, "resolve") == 0) {
		if (cfg_peer_set(kw, POLICY_SET_RESOLVE, k) == 0)
			r = policy_resolve_parse(v->string, &s->resolve);
	}
	if (r == -1)
		cfg_error_at(v, "%s \"%s\" is not known", k, v->string);
}

/* tls min-version VERSION: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3. */
static void
cfg_peer_tls_min(const YYSTYPE *kw, const YYSTYPE *v)
{
	struct policy_settings *s = &cfg->peer.s;

	if (cfg_peer_set(kw, POLICY_SET_TLS_MIN, "tls min-version") == -1)
		return;
	if (policy_tls_version_parse(v->string, &s->tls_min) == -1)
		cfg_error_at(v, "tls min-version \"%s\" is not known (TLSv1, "
		    "TLSv1.1, TLSv1.2 or TLSv1.3)", v->string);
}

/* tls ciphers LIST: an OpenSSL cipher list that selects a cipher at least. */
static void
cfg_peer_ciphers(const YYSTYPE *kw, const YYSTYPE *v)
{
	struct policy_settings *s = &cfg->peer.s;

	if (cfg_peer_set(kw, POLICY_SET_CIPHERS, "tls ciphers") == -1)
		return;
	if (strlen(v->string) >= POLICY_CIPHERS_MAX)
		cfg_error_at(v, "tls ciphers: longer than %d bytes",
		    POLICY_CIPHERS_MAX - 1);
	else if (v->string[0] == '\0' || !tls_ciphers_are_valid(v->string))
		cfg_error_at(v, "tls ciphers \"%s\" selects no cipher",
		    v->string);
	else if ((s->ciphers = policy_text(v->string)) == NULL) {
		s->ciphers = "";
		cfg_error_at(v, "tls ciphers: out of memory");
	}
}

/* limit stanza-size SIZE | connections N | rate SIZE [burst SIZE] */
static void
cfg_peer_limit(const YYSTYPE *kw, const YYSTYPE *v, const YYSTYPE *burst)
{
	struct policy_settings *s = &cfg->peer.s;
	int64_t n, b;

	if (strcmp(kw->string, "stanza-size") == 0) {
		if (cfg_peer_set(kw, POLICY_SET_STANZA_SIZE,
		    "limit stanza-size") == 0 &&
		    (n = cfg_range(v, "limit stanza-size", v->number, 1024,
		    64 * 1024 * 1024, CFG_SIZE)) >= 0)
			s->stanza_size = (uint64_t)n;
	} else if (strcmp(kw->string, "connections") == 0) {
		if (cfg_peer_set(kw, POLICY_SET_CONNECTIONS,
		    "limit connections") == 0 &&
		    (n = cfg_range(v, "limit connections", v->number, 1,
		    1000000, CFG_PLAIN)) >= 0)
			s->connections = (unsigned)n;
	} else {
		cfg_note(kw, "limit rate");
		if (cfg_peer_set(kw, POLICY_SET_RATE, "limit rate") == -1 ||
		    (n = cfg_range(v, "limit rate", v->number, 1,
		    1024 * 1024 * 1024, CFG_SIZE)) < 0)
			return;
		s->rate = (uint64_t)n;
		s->burst = 0;
		if (burst == NULL)
			return;
		if ((b = cfg_range(burst, "burst", burst->number, 1,
		    1024 * 1024 * 1024, CFG_SIZE)) < 0)
			return;
		if (b < n) {
			cfg_error_at(burst, "burst %s is smaller than rate %s",
			    burst->string, v->string);
			return;
		}
		s->burst = (uint64_t)b;
	}
}

int
config_parse(struct config *c, const char *name, const char *text,
    size_t len, bool allow_include, char **errors)
{
	struct cfg_parser p;
	struct cfg_file *f;
	struct cfg_macro *m;
	struct cfg_str *s;
	struct cfg_pattern *pp;
	struct stat st;
	int r;

	memset(&p, 0, sizeof(p));
	p.conf = c;
	p.errors = errors;
	p.allow_include = allow_include;
	p.stmt_start = true;
	TAILQ_INIT(&p.files);
	TAILQ_INIT(&p.macros);
	SLIST_INIT(&p.strings);
	SLIST_INIT(&p.patterns);
	if ((f = cfg_file_new(name, text, NULL, len)) == NULL) {
		config_add_error(errors, name, 0, "out of memory");
		return 1;
	}
	/* a buffer named like a file stands for it: it may not include it */
	if (stat(name, &st) == 0) {
		f->dev = st.st_dev;
		f->ino = st.st_ino;
	}
	TAILQ_INSERT_TAIL(&p.files, f, entry);
	p.file = f;
	cfg = &p;

	r = yyparse();
	if (r != 0 && p.nerrors == 0)
		cfg_error(p.file->name, p.file->lineno, "syntax error");
	cfg_domain_end();

	while ((f = TAILQ_FIRST(&p.files)) != NULL) {
		TAILQ_REMOVE(&p.files, f, entry);
		cfg_file_free(f);
	}
	while ((m = TAILQ_FIRST(&p.macros)) != NULL) {
		TAILQ_REMOVE(&p.macros, m, entry);
		free(m->name);
		free(m->value);
		free(m);
	}
	while ((s = SLIST_FIRST(&p.strings)) != NULL) {
		SLIST_REMOVE_HEAD(&p.strings, entry);
		explicit_bzero(s->text, s->len);
		free(s);
	}
	while ((pp = SLIST_FIRST(&p.patterns)) != NULL) {
		SLIST_REMOVE_HEAD(&p.patterns, entry);
		free(pp);
	}
	cfg = NULL;
	return p.nerrors;
}
