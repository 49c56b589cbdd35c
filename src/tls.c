/*
 * tls: TLS contexts per configuration, local domain certificates and SNI,
 * peer identity checks (RFC 6125, XEP-0178), DANE, self-signed certificates.
 * The decisions are written down in tls.h.
 */
#include "fgconfig.h"

#include <sys/queue.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bundle.h"
#include "log.h"
#include "tls.h"
#include "util.h"

/* TLS 1.2 suites: forward secrecy only, AEAD first, CBC last for interop. */
#define TLS_CIPHERS_12	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:" \
			"DHE+CHACHA20:ECDHE+AES:!aNULL:!eNULL:!PSK:!SRP:" \
			"!DSS:!AESCCM"
#define TLS_SRV_PREFIX	"_xmpp-server."
#define TLS_SELFSIGNED_DAYS	365
#define TLS_DANE_EE	3	/* TLSA certificate usage DANE-EE */

/* ALPN wire format: length-prefixed protocol ids. */
static const unsigned char tls_alpn_wire[] = "\x0b" TLS_ALPN_XMPP_SERVER;
#define TLS_ALPN_WIRE_LEN	(sizeof(tls_alpn_wire) - 1)

/* One local domain's credentials. */
struct tls_domain {
	TAILQ_ENTRY(tls_domain) entry;
	char			*name;
	X509			*cert;
	EVP_PKEY		*key;
	STACK_OF(X509)		*chain;		/* intermediates, maybe empty */
	bool			 more;		/* a further pair of the domain,
						   not its own (the first) */
};
TAILQ_HEAD(tls_domains, tls_domain);

struct tls {
	SSL_CTX			*server;
	SSL_CTX			*client;
	X509_STORE		*store;		/* trust, shared by both */
	struct tls_domains	 domains;	/* the first is the default */
};

/*
 * ex_data slots: the struct tls of an SSL_CTX (cleared by tls_free() so that
 * callbacks of surviving SSLs see NULL), and the first chain error seen by
 * the verify callback of an SSL.
 */
static CRYPTO_ONCE	tls_once = CRYPTO_ONCE_STATIC_INIT;
static int		tls_ctx_idx = -1;
static int		tls_ssl_idx = -1;

static const char *const tls_peer_status_names[] = {
	[TLS_PEER_NONE] = "none",
	[TLS_PEER_INVALID] = "invalid",
	[TLS_PEER_MISMATCH] = "mismatch",
	[TLS_PEER_VALID] = "valid",
};

static void
tls_init_indexes(void)
{
	tls_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	tls_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/*
 * Write "what: <first OpenSSL error>" (or just what) into err and empty the
 * OpenSSL error queue.
 */
static void __attribute__((format(printf, 3, 4)))
tls_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	char		 ossl[256];
	unsigned long	 e;
	va_list		 ap;
	size_t		 n;

	if (err == NULL || errlen == 0) {
		ERR_clear_error();
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, ossl, sizeof(ossl));
		n = strlen(err);
		if (n < errlen)
			snprintf(err + n, errlen - n, ": %s", ossl);
	}
	ERR_clear_error();
}

/* Names */

static bool
tls_is_name_error(long err)
{
	return err == X509_V_ERR_HOSTNAME_MISMATCH ||
	    err == X509_V_ERR_EMAIL_MISMATCH ||
	    err == X509_V_ERR_IP_ADDRESS_MISMATCH;
}

/* Whether the ASN.1 string s is exactly prefix followed by domain. */
static bool
tls_string_is(const ASN1_STRING *s, const char *prefix, const char *domain)
{
	const char	*p = (const char *)ASN1_STRING_get0_data(s);
	size_t		 len = (size_t)ASN1_STRING_length(s);
	size_t		 plen = strlen(prefix), dlen = strlen(domain);

	if (len != plen + dlen || memchr(p, '\0', len) != NULL)
		return false;
	return strncasecmp(p, prefix, plen) == 0 &&
	    strncasecmp(p + plen, domain, dlen) == 0;
}

/* Whether an SRV-ID or XmppAddr otherName in cert's SAN names domain. */
static bool
tls_othername_matches(X509 *cert, const char *domain)
{
	GENERAL_NAMES	*gens;
	GENERAL_NAME	*gen;
	ASN1_OBJECT	*oid;
	ASN1_TYPE	*value;
	bool		 match = false;
	int		 i, nid;

	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return false;
	for (i = 0; i < sk_GENERAL_NAME_num(gens) && !match; i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		if (!GENERAL_NAME_get0_otherName(gen, &oid, &value))
			continue;
		nid = OBJ_obj2nid(oid);
		if (nid == NID_XmppAddr && value->type == V_ASN1_UTF8STRING)
			match = tls_string_is(value->value.utf8string, "",
			    domain);
		else if (nid == NID_SRVName &&
		    value->type == V_ASN1_IA5STRING)
			match = tls_string_is(value->value.ia5string,
			    TLS_SRV_PREFIX, domain);
	}
	GENERAL_NAMES_free(gens);
	return match;
}

/*
 * Whether cert is valid for domain by name: DNS-ID (leftmost-label
 * wildcards), SRV-ID or XmppAddr, and the CN only without any SAN.
 */
static bool
tls_cert_matches(X509 *cert, const char *domain)
{
	unsigned int	 flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;

	if (cert == NULL || domain == NULL || *domain == '\0')
		return false;
	if (X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) >= 0)
		flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
	if (X509_check_host(cert, domain, strlen(domain), flags, NULL) == 1)
		return true;
	return tls_othername_matches(cert, domain);
}

/* Whether cert matches any reference name set on the verify param. */
static bool
tls_cert_matches_param(X509 *cert, X509_VERIFY_PARAM *param)
{
	const char	*host;
	int		 i;

	for (i = 0; (host = X509_VERIFY_PARAM_get0_host(param, i)) != NULL;
	    i++)
		if (tls_cert_matches(cert, host))
			return true;
	return false;
}

/* Verification */

/*
 * Shared by both verify callbacks. Return true if the error at hand is not
 * one: a peer server certificate used as a client certificate, or names the
 * X509_VERIFY_PARAM check missed (SRV-ID, XmppAddr, CN without SAN). Record
 * the first chain error on the SSL.
 */
static bool
tls_verify_forgive(X509_STORE_CTX *xctx)
{
	SSL	*ssl;
	X509	*cert = X509_STORE_CTX_get_current_cert(xctx);
	int	 err = X509_STORE_CTX_get_error(xctx);
	int	 depth = X509_STORE_CTX_get_error_depth(xctx);

	ssl = X509_STORE_CTX_get_ex_data(xctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (err == X509_V_ERR_INVALID_PURPOSE && ssl != NULL &&
	    SSL_is_server(ssl) && cert != NULL &&
	    X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, depth > 0) == 1)
		goto forgive;
	if (tls_is_name_error(err)) {
		if (tls_cert_matches_param(X509_STORE_CTX_get0_cert(xctx),
		    X509_STORE_CTX_get0_param(xctx)))
			goto forgive;
		return false;
	}
	if (ssl != NULL && SSL_get_ex_data(ssl, tls_ssl_idx) == NULL)
		SSL_set_ex_data(ssl, tls_ssl_idx, (void *)(intptr_t)err);
	return false;
 forgive:
	X509_STORE_CTX_set_error(xctx, X509_V_OK);
	return true;
}

/* Record errors, never fail the handshake: the leg decides afterwards. */
static int
tls_verify_record(int ok, X509_STORE_CTX *xctx)
{
	if (!ok)
		(void)tls_verify_forgive(xctx);
	return 1;
}

/* Fail the handshake on any chain or name error. */
static int
tls_verify_strict(int ok, X509_STORE_CTX *xctx)
{
	if (ok)
		return 1;
	return tls_verify_forgive(xctx) ? 1 : 0;
}

/* The first chain error of ssl's peer, or X509_V_OK; name errors are not. */
static long
tls_chain_error(SSL *ssl)
{
	intptr_t	 recorded;
	long		 err;

	recorded = (intptr_t)SSL_get_ex_data(ssl, tls_ssl_idx);
	if (recorded != 0)
		return (long)recorded;
	err = SSL_get_verify_result(ssl);
	return tls_is_name_error(err) ? X509_V_OK : err;
}

/* Domains */

/* The pair loaded first for domain name (its own), or NULL. */
static struct tls_domain *
tls_domain_own(const struct tls *tls, const char *name)
{
	struct tls_domain	*d;

	TAILQ_FOREACH(d, &tls->domains, entry)
		if (!d->more && strcasecmp(d->name, name) == 0)
			return d;
	return NULL;
}

/* Whether name is d's domain or a name under it. */
static bool
tls_domain_is_under(const struct tls_domain *d, const char *name)
{
	size_t n = strlen(name), dn = strlen(d->name);

	return n == dn ? strcasecmp(d->name, name) == 0 :
	    n > dn + 1 && name[n - dn - 1] == '.' &&
	    strcasecmp(name + n - dn, d->name) == 0;
}

/*
 * The pair to present for name (NULL: the default): the first pair of
 * name's own domain valid for name, else of a domain name is under, else the
 * first pair of any domain valid for it, else the own pair of the domain
 * named name even if it is not valid for it (its warning was logged at
 * load). NULL if none.
 */
static struct tls_domain *
tls_domain_find(const struct tls *tls, const char *name)
{
	struct tls_domain	*d;

	if (name == NULL)
		return TAILQ_FIRST(&tls->domains);
	TAILQ_FOREACH(d, &tls->domains, entry)	/* the domain's own first */
		if (strcasecmp(d->name, name) == 0 &&
		    tls_cert_matches(d->cert, name))
			return d;
	TAILQ_FOREACH(d, &tls->domains, entry)
		if (tls_domain_is_under(d, name) &&
		    tls_cert_matches(d->cert, name))
			return d;
	TAILQ_FOREACH(d, &tls->domains, entry)
		if (tls_cert_matches(d->cert, name))
			return d;
	return tls_domain_own(tls, name);
}

static void
tls_domain_free(struct tls_domain *d)
{
	if (d == NULL)
		return;
	free(d->name);
	X509_free(d->cert);
	EVP_PKEY_free(d->key);
	sk_X509_pop_free(d->chain, X509_free);
	free(d);
}

/*
 * Make ssl present exactly d's certificate: clear first, or a certificate of
 * another key type would stay beside it. Return 0, or -1 with the reason on
 * the OpenSSL error queue.
 */
static int
tls_domain_use(SSL *ssl, const struct tls_domain *d)
{
	SSL_certs_clear(ssl);
	return SSL_use_cert_and_key(ssl, d->cert, d->key, d->chain, 1) == 1 ?
	    0 : -1;
}

static struct tls *
tls_of(const SSL *ssl)
{
	return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ctx_idx);
}

/* Callbacks of the server context */

static int
tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls		*tls = tls_of(ssl);
	const struct tls_domain	*d;
	const char		*name;

	name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (tls == NULL || name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	if ((d = tls_domain_find(tls, name)) == NULL) {
		log_debug("tls: SNI %s: no certificate is valid for it",
		    UTIL_ESC(name));
		return SSL_TLSEXT_ERR_NOACK;
	}
	if (tls_domain_use(ssl, d) == -1) {
		ERR_clear_error();
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char	*sel;

	if (SSL_select_next_proto(&sel, outlen, tls_alpn_wire,
	    TLS_ALPN_WIRE_LEN, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
		log_debug("tls: peer offers ALPN without %s",
		    TLS_ALPN_XMPP_SERVER);
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* Contexts */

static SSL_CTX *
tls_ctx_new(struct tls *tls, bool server)
{
	static const unsigned char sid_ctx[] = "fedgate";
	SSL_CTX		*ctx;

	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_ex_data(ctx, tls_ctx_idx, tls);
	SSL_CTX_set1_cert_store(ctx, tls->store);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1 ||
	    SSL_CTX_set_num_tickets(ctx, 0) != 1)
		goto fail;
	if (server) {
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
		SSL_CTX_set_dh_auto(ctx, 1);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_record);
		SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername_cb);
		SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, NULL);
		if (SSL_CTX_set_session_id_context(ctx, sid_ctx,
		    sizeof(sid_ctx) - 1) != 1)
			goto fail;
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_strict);
		if (SSL_CTX_dane_enable(ctx) <= 0)
			goto fail;
	}
	return ctx;
 fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * A BIO reading file through b (bundle.h; NULL: BIO_new_file). A failed
 * read leaves on the OpenSSL error queue what BIO_new_file() would have.
 */
static BIO *
tls_open(struct bundle *b, const char *file)
{
	BIO	*bio;
	char	*buf;
	size_t	 len;
	mode_t	 mode;

	if (b == NULL)
		return BIO_new_file(file, "r");
	if (bundle_read(b, file, TLS_FILE_MAX, &buf, &len, &mode) == -1) {
		ERR_raise_data(ERR_LIB_SYS, errno, "calling fopen(%s, r)", file);
		return NULL;
	}
	/* a BUF_MEM is zeroed when freed: keys may go through it */
	if ((bio = BIO_new(BIO_s_mem())) != NULL && len > 0 &&
	    BIO_write(bio, buf, (int)len) != (int)len) {
		BIO_free(bio);
		bio = NULL;
	}
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	return bio;
}

/* X509_STORE_load_file() through b: every certificate and CRL of file. */
static int
tls_load_ca_file(X509_STORE *store, struct bundle *b, const char *file)
{
	STACK_OF(X509_INFO)	*infos;
	X509_INFO		*info;
	BIO			*bio;
	int			 n = 0, ok = 1;

	if (b == NULL)
		return X509_STORE_load_file(store, file);
	if ((bio = tls_open(b, file)) == NULL)
		return 0;
	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (infos == NULL)
		return 0;
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		info = sk_X509_INFO_value(infos, i);
		if (info->x509 != NULL && (++n,
		    X509_STORE_add_cert(store, info->x509) != 1))
			ok = 0;
		if (info->crl != NULL && (++n,
		    X509_STORE_add_crl(store, info->crl) != 1))
			ok = 0;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	return n > 0 ? ok : 0;
}

static int
tls_load_trust(struct tls *tls, struct bundle *b, const char *ca_file,
    const char *ca_path)
{
	struct stat	 st;
	char		 err[512];

	if (ca_file == NULL && ca_path == NULL) {
		if (X509_STORE_set_default_paths(tls->store) != 1) {
			tls_seterr(err, sizeof(err), "default trust store");
			log_warnx("tls: %s", err);
			return -1;
		}
		return 0;
	}
	if (ca_file != NULL && tls_load_ca_file(tls->store, b, ca_file) != 1) {
		tls_seterr(err, sizeof(err), "%s", ca_file);
		log_warnx("tls: ca file %s", err);
		return -1;
	}
	if (ca_path == NULL)
		return 0;
	if (stat(ca_path, &st) == -1) {
		log_warn("tls: ca path %s", ca_path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_warnx("tls: ca path %s: not a directory", ca_path);
		return -1;
	}
	if (X509_STORE_load_path(tls->store, ca_path) != 1) {
		tls_seterr(err, sizeof(err), "%s", ca_path);
		log_warnx("tls: ca path %s", err);
		return -1;
	}
	return 0;
}

struct tls *
tls_new(const char *ca_file, const char *ca_path)
{
	return tls_new_bundle(NULL, ca_file, ca_path);
}

struct tls *
tls_new_bundle(struct bundle *b, const char *ca_file, const char *ca_path)
{
	struct tls	*tls;

	if (!CRYPTO_THREAD_run_once(&tls_once, tls_init_indexes) ||
	    tls_ctx_idx < 0 || tls_ssl_idx < 0)
		return NULL;
	if ((tls = calloc(1, sizeof(*tls))) == NULL)
		return NULL;
	TAILQ_INIT(&tls->domains);
	if ((tls->store = X509_STORE_new()) == NULL ||
	    tls_load_trust(tls, b, ca_file, ca_path) == -1)
		goto fail;
	if ((tls->server = tls_ctx_new(tls, true)) == NULL ||
	    (tls->client = tls_ctx_new(tls, false)) == NULL) {
		log_warnx("tls: cannot create contexts");
		goto fail;
	}
	ERR_clear_error();
	return tls;
 fail:
	ERR_clear_error();
	tls_free(tls);
	return NULL;
}

void
tls_free(struct tls *tls)
{
	struct tls_domain	*d;

	if (tls == NULL)
		return;
	if (tls->server != NULL)
		SSL_CTX_set_ex_data(tls->server, tls_ctx_idx, NULL);
	if (tls->client != NULL)
		SSL_CTX_set_ex_data(tls->client, tls_ctx_idx, NULL);
	SSL_CTX_free(tls->server);
	SSL_CTX_free(tls->client);
	X509_STORE_free(tls->store);
	while ((d = TAILQ_FIRST(&tls->domains)) != NULL) {
		TAILQ_REMOVE(&tls->domains, d, entry);
		tls_domain_free(d);
	}
	free(tls);
}

/* Loading local domains */

static int
tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	*(bool *)u = true;
	return -1;
}

/* Read a PEM chain, leaf first, into d. Return 0 or -1 with err set. */
static int
tls_read_chain(struct tls_domain *d, struct bundle *b, const char *file,
    char *err, size_t errlen)
{
	BIO		*bio;
	X509		*x;
	unsigned long	 e;

	if ((bio = tls_open(b, file)) == NULL) {
		tls_seterr(err, errlen, "%s", file);
		return -1;
	}
	if ((d->cert = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) == NULL) {
		tls_seterr(err, errlen, "%s: no certificate", file);
		goto fail;
	}
	if ((d->chain = sk_X509_new_null()) == NULL)
		goto nomem;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(d->chain, x)) {
			X509_free(x);
			goto nomem;
		}
	}
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	    ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
		tls_seterr(err, errlen, "%s: bad certificate chain", file);
		goto fail;
	}
	ERR_clear_error();
	BIO_free(bio);
	return 0;
 nomem:
	tls_seterr(err, errlen, "%s: out of memory", file);
 fail:
	BIO_free(bio);
	return -1;
}

static int
tls_read_key(struct tls_domain *d, struct bundle *b, const char *file,
    char *err, size_t errlen)
{
	BIO	*bio;
	bool	 encrypted = false;

	if ((bio = tls_open(b, file)) == NULL) {
		tls_seterr(err, errlen, "%s", file);
		return -1;
	}
	d->key = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase,
	    &encrypted);
	BIO_free(bio);
	if (d->key == NULL) {
		tls_seterr(err, errlen, "%s: %s", file, encrypted ?
		    "encrypted keys are not supported" : "no private key");
		return -1;
	}
	return 0;
}

/*
 * Check d before use: key and certificate match, and the server context
 * accepts them (key size, signature algorithm at the security level).
 */
static int
tls_domain_check(struct tls *tls, struct tls_domain *d, char *err,
    size_t errlen)
{
	SSL	*probe;
	int	 rc;

	if (X509_check_private_key(d->cert, d->key) != 1) {
		tls_seterr(err, errlen, "%s: key does not match certificate",
		    d->name);
		return -1;
	}
	if ((probe = SSL_new(tls->server)) == NULL) {
		tls_seterr(err, errlen, "%s: out of memory", d->name);
		return -1;
	}
	rc = tls_domain_use(probe, d);
	SSL_free(probe);
	if (rc == -1)
		tls_seterr(err, errlen, "%s: certificate refused", d->name);
	return rc;
}

/* Return 0, or 1 with err holding why cert is not usable for domain now. */
static int
tls_domain_warn(const struct tls_domain *d, char *err, size_t errlen)
{
	if (!d->more && !tls_cert_matches(d->cert, d->name)) {
		tls_seterr(err, errlen, "%s: certificate is not valid for "
		    "this domain name", d->name);
		return 1;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(d->cert)) <= 0) {
		tls_seterr(err, errlen, "%s: certificate has expired",
		    d->name);
		return 1;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(d->cert)) >= 0) {
		tls_seterr(err, errlen, "%s: certificate is not yet valid",
		    d->name);
		return 1;
	}
	return 0;
}

int
tls_add_domain(struct tls *tls, const char *domain, const char *cert_file,
    const char *key_file, char *err, size_t errlen)
{
	return tls_add_domain_bundle(tls, NULL, domain, cert_file, key_file,
	    err, errlen);
}

/*
 * Read and check a pair of domain (a further one with more). Return it,
 * or NULL with err set; *rc is tls_domain_warn()'s answer.
 */
static struct tls_domain *
tls_load_pair(struct tls *tls, struct bundle *b, const char *domain,
    const char *cert_file, const char *key_file, bool more, int *rc,
    char *err, size_t errlen)
{
	struct tls_domain	*d;

	if (err != NULL && errlen > 0)
		*err = '\0';
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->name = strdup(domain)) == NULL) {
		tls_seterr(err, errlen, "%s: out of memory", domain);
		free(d);
		return NULL;
	}
	d->more = more;
	if (tls_read_chain(d, b, cert_file, err, errlen) == -1 ||
	    tls_read_key(d, b, key_file, err, errlen) == -1 ||
	    tls_domain_check(tls, d, err, errlen) == -1) {
		tls_domain_free(d);
		return NULL;
	}
	*rc = tls_domain_warn(d, err, errlen);
	log_debug("tls: %s: certificate %s, %d intermediates", domain,
	    cert_file, sk_X509_num(d->chain));
	return d;
}

int
tls_add_domain_bundle(struct tls *tls, struct bundle *b, const char *domain,
    const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	struct tls_domain	*d, *old;
	int			 rc;

	if ((d = tls_load_pair(tls, b, domain, cert_file, key_file, false,
	    &rc, err, errlen)) == NULL)
		return -1;
	if ((old = tls_domain_own(tls, domain)) != NULL) {
		TAILQ_INSERT_AFTER(&tls->domains, old, d, entry);
		TAILQ_REMOVE(&tls->domains, old, entry);
		tls_domain_free(old);
	} else
		TAILQ_INSERT_TAIL(&tls->domains, d, entry);
	return rc;
}

int
tls_add_more_bundle(struct tls *tls, struct bundle *b, const char *domain,
    const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	struct tls_domain	*d;
	int			 rc;

	if ((d = tls_load_pair(tls, b, domain, cert_file, key_file, true,
	    &rc, err, errlen)) == NULL)
		return -1;
	TAILQ_INSERT_TAIL(&tls->domains, d, entry);
	return rc;
}

bool
tls_has_domain(const struct tls *tls, const char *domain)
{
	return domain != NULL && tls_domain_find(tls, domain) != NULL;
}

/* SSLs */

SSL *
tls_server_ssl(struct tls *tls, const char *domain)
{
	const struct tls_domain	*d;
	SSL			*ssl;

	if ((d = tls_domain_find(tls, domain)) == NULL)
		return NULL;
	if ((ssl = SSL_new(tls->server)) == NULL ||
	    tls_domain_use(ssl, d) == -1) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

int
tls_select(SSL *ssl, const char *domain)
{
	struct tls		*tls = tls_of(ssl);
	const struct tls_domain	*d;

	if (tls == NULL || domain == NULL || !SSL_is_server(ssl) ||
	    (d = tls_domain_find(tls, domain)) == NULL)
		return -1;
	if (tls_domain_use(ssl, d) == -1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

SSL *
tls_client_ssl(struct tls *tls, const char *local_domain,
    const char *remote_domain, bool verify)
{
	const struct tls_domain	*d;
	SSL			*ssl;

	if (remote_domain == NULL || (ssl = SSL_new(tls->client)) == NULL)
		return NULL;
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	/* The macro casts the name to void *: take const off explicitly. */
	if (SSL_set_tlsext_host_name(ssl,
	    (char *)(uintptr_t)remote_domain) != 1 ||
	    SSL_set1_host(ssl, remote_domain) != 1)
		goto fail;
	SSL_set_verify(ssl, SSL_VERIFY_PEER,
	    verify ? tls_verify_strict : tls_verify_record);
	if (local_domain != NULL &&
	    (d = tls_domain_find(tls, local_domain)) != NULL &&
	    tls_domain_use(ssl, d) == -1)
		goto fail;
	SSL_set_connect_state(ssl);
	return ssl;
 fail:
	SSL_free(ssl);
	ERR_clear_error();
	return NULL;
}

int
tls_ssl_relax(SSL *ssl, int min_version, const char *ciphers)
{
	if (min_version != 0) {
		if (min_version < TLS1_VERSION || min_version > TLS1_3_VERSION)
			return -1;
		if (min_version < TLS1_2_VERSION)
			SSL_set_security_level(ssl, 0);
		if (SSL_set_min_proto_version(ssl, min_version) != 1)
			goto fail;
	}
	if (ciphers != NULL && ciphers[0] != '\0' &&
	    SSL_set_cipher_list(ssl, ciphers) != 1)
		goto fail;
	return 0;
 fail:
	ERR_clear_error();
	return -1;
}

bool
tls_ciphers_are_valid(const char *ciphers)
{
	SSL_CTX	*ctx;
	bool	 ok;

	if (ciphers == NULL || (ctx = SSL_CTX_new(TLS_method())) == NULL)
		return false;
	ok = SSL_CTX_set_cipher_list(ctx, ciphers) == 1;
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

int
tls_client_alpn(SSL *ssl)
{
	/* SSL_set_alpn_protos() returns 0 on success. */
	return SSL_set_alpn_protos(ssl, tls_alpn_wire,
	    TLS_ALPN_WIRE_LEN) == 0 ? 0 : -1;
}

bool
tls_has_alpn(const SSL *ssl)
{
	const unsigned char	*p;
	unsigned int		 len;

	SSL_get0_alpn_selected(ssl, &p, &len);
	return len == TLS_ALPN_WIRE_LEN - 1 &&
	    memcmp(p, TLS_ALPN_XMPP_SERVER, len) == 0;
}

/* Peer identity */

/* Whether ssl's peer was authenticated by a DANE-EE(3) record for domain. */
static bool
tls_is_dane_ee_for(SSL *ssl, const char *domain)
{
	X509_VERIFY_PARAM	*param = SSL_get0_param(ssl);
	const char		*host;
	uint8_t			 usage;
	int			 i;

	if (SSL_get0_dane_tlsa(ssl, &usage, NULL, NULL, NULL, NULL) < 0 ||
	    usage != TLS_DANE_EE)
		return false;
	for (i = 0; (host = X509_VERIFY_PARAM_get0_host(param, i)) != NULL;
	    i++)
		if (strcasecmp(host, domain) == 0)
			return true;
	return false;
}

enum tls_peer_status
tls_peer_check(SSL *ssl, const char *domain)
{
	X509	*cert = SSL_get0_peer_certificate(ssl);

	if (cert == NULL)
		return TLS_PEER_NONE;
	if (tls_chain_error(ssl) != X509_V_OK)
		return TLS_PEER_INVALID;
	if (domain == NULL)
		return TLS_PEER_MISMATCH;
	if (tls_is_dane_ee_for(ssl, domain) || tls_cert_matches(cert, domain))
		return TLS_PEER_VALID;
	return TLS_PEER_MISMATCH;
}

const char *
tls_peer_error(SSL *ssl)
{
	long	 err;

	if (SSL_get0_peer_certificate(ssl) == NULL ||
	    (err = tls_chain_error(ssl)) == X509_V_OK)
		return NULL;
	return X509_verify_cert_error_string(err);
}

const char *
tls_peer_status_name(enum tls_peer_status status)
{
	if ((unsigned)status >= nitems(tls_peer_status_names))
		return "unknown";
	return tls_peer_status_names[status];
}

const char *
tls_peer_describe(const SSL *ssl, char *buf, size_t len)
{
	const SSL_CIPHER	*cipher = SSL_get_current_cipher(ssl);

	if (len == 0)
		return buf;
	snprintf(buf, len, "%s %s%s", SSL_get_version(ssl),
	    cipher != NULL ? SSL_CIPHER_get_name(cipher) : "none",
	    tls_has_alpn(ssl) ? " alpn=" TLS_ALPN_XMPP_SERVER : "");
	return buf;
}

/* Append name (len bytes, maybe not NUL-terminated) to buf for messages. */
static void
tls_names_add(char *buf, size_t buflen, const char *prefix, const char *name,
    size_t len)
{
	size_t n = strlen(buf);

	if (n > 0 && n < buflen)
		strlcat(buf, ", ", buflen);
	strlcat(buf, prefix, buflen);
	n = strlen(buf);
	for (size_t i = 0; i < len && n + 1 < buflen; i++, n++)
		buf[n] = name[i] > ' ' && name[i] < 0x7f ? name[i] : '?';
	if (n < buflen)
		buf[n] = '\0';
}

static void
tls_names_of_san(GENERAL_NAMES *gens, char *buf, size_t len)
{
	const GENERAL_NAME	*gen;
	const ASN1_STRING	*s;
	ASN1_OBJECT		*oid;
	ASN1_TYPE		*value;
	int			 nid;

	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		s = NULL;
		if (gen->type == GEN_DNS)
			s = gen->d.dNSName;
		else if (GENERAL_NAME_get0_otherName(gen, &oid, &value)) {
			nid = OBJ_obj2nid(oid);
			if (nid == NID_XmppAddr &&
			    value->type == V_ASN1_UTF8STRING)
				s = value->value.utf8string;
			else if (nid == NID_SRVName &&
			    value->type == V_ASN1_IA5STRING)
				s = value->value.ia5string;
		}
		if (s != NULL)
			tls_names_add(buf, len, "",
			    (const char *)ASN1_STRING_get0_data(s),
			    (size_t)ASN1_STRING_length(s));
	}
}

const char *
tls_peer_names(SSL *ssl, char *buf, size_t len)
{
	X509		*cert = SSL_get0_peer_certificate(ssl);
	GENERAL_NAMES	*gens;
	char		 cn[256];
	int		 n;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (cert == NULL)
		return buf;
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (gens != NULL) {
		tls_names_of_san(gens, buf, len);
		GENERAL_NAMES_free(gens);
	} else if ((n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
	    NID_commonName, cn, sizeof(cn))) > 0)
		tls_names_add(buf, len, "CN=", cn, (size_t)n);
	if (strlen(buf) + 1 >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
	return buf;
}

int64_t
tls_peer_expiry(SSL *ssl)
{
	X509		*cert = SSL_get0_peer_certificate(ssl);
	const ASN1_TIME	*t;
	struct tm	 tm;

	if (cert == NULL || (t = X509_get0_notAfter(cert)) == NULL ||
	    ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	return (int64_t)timegm(&tm);
}

/* DANE */

int
tls_dane_enable(SSL *ssl, const char *base_domain)
{
	if (base_domain == NULL || SSL_dane_enable(ssl, base_domain) <= 0) {
		ERR_clear_error();
		return -1;
	}
	/* RFC 7671 section 5.1: DANE-EE(3) binds the key, not names. */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	return 0;
}

int
tls_dane_add_tlsa(SSL *ssl, uint8_t usage, uint8_t selector, uint8_t mtype,
    const unsigned char *data, size_t len)
{
	if (SSL_dane_tlsa_add(ssl, usage, selector, mtype, data, len) <= 0) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* Self-signed certificates */

/* Letters, digits, '-' and '.' in labels of 1 to 63: safe as a SAN. */
static bool
tls_is_hostname(const char *s)
{
	size_t	 label = 0, len = 0;

	for (; *s != '\0'; s++, len++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '-') {
			if (++label > 63)
				return false;
		} else
			return false;
	}
	return len > 0 && len <= 253 && label > 0;
}

static EVP_PKEY *
tls_keygen(void)
{
	EVP_PKEY_CTX	*kctx;
	EVP_PKEY	*key = NULL;

	if ((kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL)
		return NULL;
	if (EVP_PKEY_keygen_init(kctx) != 1 ||
	    EVP_PKEY_CTX_set_group_name(kctx, "P-256") != 1 ||
	    EVP_PKEY_generate(kctx, &key) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(kctx);
	return key;
}

static int
tls_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX	 v3;
	X509_EXTENSION	*ext;
	int		 ok;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static int
tls_add_san_dns(X509 *x, const char *domain)
{
	GENERAL_NAMES	*gens;
	GENERAL_NAME	*gen = NULL;
	ASN1_IA5STRING	*ia5 = NULL;
	int		 rc = -1;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		return -1;
	if ((gen = GENERAL_NAME_new()) == NULL ||
	    (ia5 = ASN1_IA5STRING_new()) == NULL ||
	    ASN1_STRING_set(ia5, domain, -1) != 1)
		goto done;
	GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
	ia5 = NULL;
	if (!sk_GENERAL_NAME_push(gens, gen))
		goto done;
	gen = NULL;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) == 1)
		rc = 0;
 done:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	return rc;
}

static X509 *
tls_selfsigned_cert(const char *domain, EVP_PKEY *key)
{
	X509		*x;
	X509_NAME	*name;
	BIGNUM		*serial = NULL;
	bool		 ok = false;

	if ((x = X509_new()) == NULL)
		return NULL;
	name = X509_get_subject_name(x);
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    (serial = BN_new()) == NULL ||
	    BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x),
	    (long)TLS_SELFSIGNED_DAYS * 86400) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)domain, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 ||
	    X509_set_pubkey(x, key) != 1 ||
	    tls_add_san_dns(x, domain) == -1 ||
	    tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == -1 ||
	    tls_add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") == -1 ||
	    tls_add_ext(x, NID_subject_key_identifier, "hash") == -1 ||
	    X509_sign(x, key, EVP_sha256()) == 0)
		goto done;
	ok = true;
 done:
	BN_free(serial);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/* Create or truncate path with mode, and open it for PEM writing. */
static FILE *
tls_open_out(const char *path, mode_t mode)
{
	FILE	*f;
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd == -1)
		return NULL;
	if (fchmod(fd, mode) == -1 || (f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return NULL;
	}
	return f;
}

static int
tls_write_pem(const char *path, mode_t mode, X509 *cert, EVP_PKEY *key,
    char *err, size_t errlen)
{
	FILE	*f;
	int	 ok;

	if ((f = tls_open_out(path, mode)) == NULL) {
		tls_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (cert != NULL)
		ok = PEM_write_X509(f, cert);
	else
		ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	if (fclose(f) != 0 || ok != 1) {
		tls_seterr(err, errlen, "%s: write failed", path);
		return -1;
	}
	return 0;
}

int
tls_make_selfsigned(const char *domain, const char *cert_path,
    const char *key_path, char *err, size_t errlen)
{
	EVP_PKEY	*key;
	X509		*cert = NULL;
	int		 rc = -1;

	if (domain == NULL || !tls_is_hostname(domain)) {
		tls_seterr(err, errlen, "%s: not a host name",
		    domain != NULL ? domain : "(null)");
		return -1;
	}
	if ((key = tls_keygen()) == NULL) {
		tls_seterr(err, errlen, "%s: key generation failed", domain);
		return -1;
	}
	if ((cert = tls_selfsigned_cert(domain, key)) == NULL) {
		tls_seterr(err, errlen, "%s: certificate creation failed",
		    domain);
		goto done;
	}
	if (tls_write_pem(key_path, 0600, NULL, key, err, errlen) == -1 ||
	    tls_write_pem(cert_path, 0644, cert, NULL, err, errlen) == -1)
		goto done;
	rc = 0;
 done:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}
