/*
 * Unit tests for tls: real handshakes in memory (BIO pairs) between
 * tls_server_ssl() and tls_client_ssl(), with a test PKI generated in a
 * temporary directory at start (no key is committed).
 */
#include "fgconfig.h"

#include <sys/stat.h>

#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/bn.h>
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

#define DAY	86400L

/* Test PKI */

enum issuer { BY_CA, BY_INTER, BY_OTHER_CA, BY_SELF };

struct spec {
	const char	*file;		/* dir/<file>.pem and dir/<file>.key */
	enum issuer	 issuer;
	const char	*cn;
	const char	*dns;		/* SAN DNS-ID, or NULL */
	const char	*xmpp;		/* SAN XmppAddr, or NULL */
	const char	*srv;		/* SAN SRV-ID, or NULL */
	const char	*eku;		/* extendedKeyUsage, NULL: both auths */
	long		 not_before;	/* seconds from now */
	long		 not_after;
	bool		 rsa;
	bool		 ca;
};

static const struct spec specs[] = {
	{ "ca", BY_SELF, "Test CA", NULL, NULL, NULL, NULL, -DAY, 30 * DAY,
	    false, true },
	{ "inter", BY_CA, "Test Intermediate", NULL, NULL, NULL, NULL, -DAY,
	    30 * DAY, false, true },
	{ "otherca", BY_SELF, "Other CA", NULL, NULL, NULL, NULL, -DAY,
	    30 * DAY, false, true },
	{ "corp", BY_CA, "corp.example", "corp.example", NULL, NULL, NULL,
	    -DAY, 30 * DAY, false, false },
	{ "other", BY_CA, "other.example", "other.example", NULL, NULL, NULL,
	    -DAY, 30 * DAY, true, false },
	{ "remote", BY_CA, "remote.example", "remote.example", NULL, NULL,
	    NULL, -DAY, 30 * DAY, false, false },
	{ "wild", BY_CA, "*.partner.example", "*.partner.example", NULL, NULL,
	    NULL, -DAY, 30 * DAY, false, false },
	{ "xmpp", BY_CA, "ignored.example", NULL, "xmpp.example", NULL, NULL,
	    -DAY, 30 * DAY, false, false },
	{ "srv", BY_CA, "ignored.example", NULL, NULL,
	    "_xmpp-server.srv.example", NULL, -DAY, 30 * DAY, false, false },
	{ "legacy", BY_CA, "legacy.example", NULL, NULL, NULL, NULL, -DAY,
	    30 * DAY, false, false },
	{ "cnsan", BY_CA, "cnsan.example", NULL, "foo.example", NULL, NULL,
	    -DAY, 30 * DAY, false, false },
	{ "elsewhere", BY_CA, "elsewhere.example", "elsewhere.example", NULL,
	    NULL, NULL, -DAY, 30 * DAY, false, false },
	{ "expired", BY_CA, "expired.example", "expired.example", NULL, NULL,
	    NULL, -30 * DAY, -DAY, false, false },
	{ "unknownca", BY_OTHER_CA, "unknown.example", "unknown.example",
	    NULL, NULL, NULL, -DAY, 30 * DAY, false, false },
	{ "chain", BY_INTER, "chain.example", "chain.example", NULL, NULL,
	    NULL, -DAY, 30 * DAY, false, false },
	{ "serveronly", BY_CA, "serveronly.example", "serveronly.example",
	    NULL, NULL, "serverAuth", -DAY, 30 * DAY, false, false },
	{ "emailonly", BY_CA, "emailonly.example", "emailonly.example", NULL,
	    NULL, "emailProtection", -DAY, 30 * DAY, false, false },
	{ "wildcorp", BY_CA, "*.corp.example", "*.corp.example", NULL, NULL,
	    NULL, -DAY, 30 * DAY, false, false },
	{ "eucorp", BY_CA, "eu.corp.example", "eu.corp.example", NULL, NULL,
	    NULL, -DAY, 30 * DAY, true, false },
};

static char	 dir[] = "/tmp/test_tls.XXXXXX";
static X509	*certs[nitems(specs)];
static EVP_PKEY	*keys[nitems(specs)];

static const char *
path(const char *name, const char *ext)
{
	static char	 buf[4][256];
	static int	 n;

	n = (n + 1) % 4;
	snprintf(buf[n], sizeof(buf[n]), "%s/%s.%s", dir, name, ext);
	return buf[n];
}

static size_t
spec_index(const char *file)
{
	size_t	 i;

	for (i = 0; i < nitems(specs); i++)
		if (strcmp(specs[i].file, file) == 0)
			return i;
	fail_msg("no spec %s", file);
	return 0;
}

static EVP_PKEY *
gen_key(bool rsa)
{
	EVP_PKEY_CTX	*kctx;
	EVP_PKEY	*key = NULL;

	kctx = EVP_PKEY_CTX_new_from_name(NULL, rsa ? "RSA" : "EC", NULL);
	assert_non_null(kctx);
	assert_int_equal(EVP_PKEY_keygen_init(kctx), 1);
	if (rsa)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(kctx, 2048),
		    1);
	else
		assert_int_equal(EVP_PKEY_CTX_set_group_name(kctx, "P-256"),
		    1);
	assert_int_equal(EVP_PKEY_generate(kctx, &key), 1);
	EVP_PKEY_CTX_free(kctx);
	return key;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 v3;
	X509_EXTENSION	*ext;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

static void
add_othername(GENERAL_NAMES *gens, int nid, int type, const char *value)
{
	GENERAL_NAME	*gen = GENERAL_NAME_new();
	ASN1_TYPE	*v = ASN1_TYPE_new();
	ASN1_STRING	*s = ASN1_STRING_type_new(type);

	assert_true(gen != NULL && v != NULL && s != NULL);
	assert_int_equal(ASN1_STRING_set(s, value, -1), 1);
	ASN1_TYPE_set(v, type, s);
	assert_int_equal(GENERAL_NAME_set0_othername(gen,
	    OBJ_dup(OBJ_nid2obj(nid)), v), 1);
	assert_true(sk_GENERAL_NAME_push(gens, gen) > 0);
}

static void
add_san(X509 *x, const struct spec *s)
{
	GENERAL_NAMES	*gens;
	GENERAL_NAME	*gen;
	ASN1_IA5STRING	*ia5;

	if (s->dns == NULL && s->xmpp == NULL && s->srv == NULL)
		return;
	gens = sk_GENERAL_NAME_new_null();
	assert_non_null(gens);
	if (s->dns != NULL) {
		gen = GENERAL_NAME_new();
		ia5 = ASN1_IA5STRING_new();
		assert_int_equal(ASN1_STRING_set(ia5, s->dns, -1), 1);
		GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
		assert_true(sk_GENERAL_NAME_push(gens, gen) > 0);
	}
	if (s->xmpp != NULL)
		add_othername(gens, NID_XmppAddr, V_ASN1_UTF8STRING, s->xmpp);
	if (s->srv != NULL)
		add_othername(gens, NID_SRVName, V_ASN1_IA5STRING, s->srv);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT), 1);
	GENERAL_NAMES_free(gens);
}

static X509 *
make_cert(const struct spec *s, EVP_PKEY *key, X509 *issuer,
    EVP_PKEY *issuer_key)
{
	X509		*x = X509_new();
	X509_NAME	*name = X509_get_subject_name(x);
	static long	 serial = 1000;

	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++),
	    1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x),
	    s->not_before));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), s->not_after));
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)s->cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (issuer == NULL)
		issuer = x;
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	add_ext(x, issuer, NID_authority_key_identifier, "keyid");
	if (s->ca) {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
		add_ext(x, issuer, NID_ext_key_usage, s->eku != NULL ? s->eku :
		    "serverAuth,clientAuth");
		add_san(x, s);
	}
	assert_true(X509_sign(x, issuer_key != NULL ? issuer_key : key,
	    EVP_sha256()) > 0);
	return x;
}

static void
write_pem(const char *file, X509 *x, X509 *chain, EVP_PKEY *key)
{
	FILE	*f = fopen(file, "w");

	assert_non_null(f);
	if (x != NULL)
		assert_int_equal(PEM_write_X509(f, x), 1);
	if (chain != NULL)
		assert_int_equal(PEM_write_X509(f, chain), 1);
	if (key != NULL)
		assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0,
		    NULL, NULL), 1);
	assert_int_equal(fclose(f), 0);
}

static int
setup_pki(void **state)
{
	const struct spec	*s;
	size_t			 i, by;
	char			 err[256];

	assert_non_null(mkdtemp(dir));
	for (i = 0; i < nitems(specs); i++) {
		s = &specs[i];
		keys[i] = gen_key(s->rsa);
		switch (s->issuer) {
		case BY_CA:		by = spec_index("ca"); break;
		case BY_INTER:		by = spec_index("inter"); break;
		case BY_OTHER_CA:	by = spec_index("otherca"); break;
		default:		by = i; break;
		}
		certs[i] = make_cert(s, keys[i], by == i ? NULL : certs[by],
		    by == i ? NULL : keys[by]);
		write_pem(path(s->file, "pem"), certs[i],
		    s->issuer == BY_INTER ? certs[by] : NULL, NULL);
		write_pem(path(s->file, "key"), NULL, NULL, keys[i]);
	}
	assert_int_equal(tls_make_selfsigned("self.example",
	    path("self", "pem"), path("self", "key"), err, sizeof(err)), 0);
	return 0;
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)remove(p);
	return 0;	/* keep going */
}

static int
teardown_pki(void **state)
{
	size_t	 i;

	for (i = 0; i < nitems(specs); i++) {
		X509_free(certs[i]);
		EVP_PKEY_free(keys[i]);
	}
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* Handshakes */

enum hs { HS_OK, HS_CLIENT_FAILED, HS_SERVER_FAILED };

static unsigned long	hs_err;	/* first OpenSSL error of a failed side */

static bool
hs_step(SSL *ssl, bool *done)
{
	int	 rc, e;

	if (*done)
		return true;
	if ((rc = SSL_do_handshake(ssl)) == 1) {
		*done = true;
		return true;
	}
	e = SSL_get_error(ssl, rc);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Run the handshake of c and s over a BIO pair; the SSLs own the BIOs. */
static enum hs
handshake(SSL *c, SSL *s)
{
	BIO	*bc, *bs;
	bool	 cdone = false, sdone = false;
	int	 i;

	ERR_clear_error();
	hs_err = 0;
	assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(c, bc, bc);
	SSL_set_bio(s, bs, bs);
	for (i = 0; i < 100 && !(cdone && sdone); i++) {
		if (!hs_step(c, &cdone)) {
			hs_err = ERR_peek_error();
			ERR_clear_error();
			return HS_CLIENT_FAILED;
		}
		if (!hs_step(s, &sdone)) {
			hs_err = ERR_peek_error();
			ERR_clear_error();
			return HS_SERVER_FAILED;
		}
	}
	assert_true(cdone && sdone);
	return HS_OK;
}

/* The local side: corp.example (EC, the default) and other.example (RSA). */
static struct tls *
server_tls(void)
{
	struct tls	*tls;
	char		 err[256];

	tls = tls_new(path("ca", "pem"), NULL);
	assert_non_null(tls);
	assert_int_equal(tls_add_domain(tls, "corp.example",
	    path("corp", "pem"), path("corp", "key"), err, sizeof(err)), 0);
	assert_int_equal(tls_add_domain(tls, "other.example",
	    path("other", "pem"), path("other", "key"), err, sizeof(err)), 0);
	return tls;
}

/* The remote side, presenting file's certificate as domain (or none). */
static struct tls *
peer_tls(const char *domain, const char *file, int add_rc)
{
	struct tls	*tls;
	char		 err[256];

	tls = tls_new(path("ca", "pem"), NULL);
	assert_non_null(tls);
	if (domain != NULL)
		assert_int_equal(tls_add_domain(tls, domain, path(file, "pem"),
		    path(file, "key"), err, sizeof(err)), add_rc);
	return tls;
}

static bool
cert_is_for(SSL *ssl, const char *domain, int key_type)
{
	X509	*x = SSL_get0_peer_certificate(ssl);

	return x != NULL &&
	    X509_check_host(x, domain, 0, 0, NULL) == 1 &&
	    EVP_PKEY_get_base_id(X509_get0_pubkey(x)) == key_type;
}

/* Tests: loading */

static void
test_new_free(void **state)
{
	struct tls	*tls;

	tls_free(NULL);
	assert_null(tls_new("/nonexistent/ca.pem", NULL));
	assert_null(tls_new(NULL, "/nonexistent"));
	assert_null(tls_new(NULL, path("ca", "pem")));	/* not a directory */
	assert_null(tls_new(path("ca", "key"), NULL));	/* no certificate */
	tls = tls_new(NULL, dir);
	assert_non_null(tls);
	tls_free(tls);
	tls = tls_new(NULL, NULL);	/* system store */
	assert_non_null(tls);
	assert_false(tls_has_domain(tls, "corp.example"));
	assert_null(tls_server_ssl(tls, NULL));	/* no domain yet */
	tls_free(tls);
}

static void
test_add_domain(void **state)
{
	struct tls	*tls = tls_new(path("ca", "pem"), NULL);
	char		 err[256];
	EVP_PKEY	*key;
	FILE		*f;

	assert_non_null(tls);
	assert_int_equal(tls_add_domain(tls, "corp.example",
	    path("corp", "pem"), path("corp", "key"), err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_true(tls_has_domain(tls, "corp.example"));
	assert_true(tls_has_domain(tls, "CORP.example"));
	assert_false(tls_has_domain(tls, "other.example"));
	assert_false(tls_has_domain(tls, NULL));

	/* Replacing a domain's certificate. */
	assert_int_equal(tls_add_domain(tls, "corp.example",
	    path("corp", "pem"), path("corp", "key"), err, sizeof(err)), 0);

	/* Loaded with a warning: other name, expired. */
	assert_int_equal(tls_add_domain(tls, "elsewhere.example",
	    path("corp", "pem"), path("corp", "key"), err, sizeof(err)), 1);
	assert_non_null(strstr(err, "not valid for this domain"));
	assert_true(tls_has_domain(tls, "elsewhere.example"));
	assert_int_equal(tls_add_domain(tls, "expired.example",
	    path("expired", "pem"), path("expired", "key"), err,
	    sizeof(err)), 1);
	assert_non_null(strstr(err, "expired"));
	/* Wildcard, XmppAddr, SRV-ID and CN-only certificates are valid. */
	assert_int_equal(tls_add_domain(tls, "a.partner.example",
	    path("wild", "pem"), path("wild", "key"), err, sizeof(err)), 0);
	assert_int_equal(tls_add_domain(tls, "xmpp.example",
	    path("xmpp", "pem"), path("xmpp", "key"), err, sizeof(err)), 0);
	assert_int_equal(tls_add_domain(tls, "srv.example",
	    path("srv", "pem"), path("srv", "key"), err, sizeof(err)), 0);
	assert_int_equal(tls_add_domain(tls, "legacy.example",
	    path("legacy", "pem"), path("legacy", "key"), err, sizeof(err)), 0);
	assert_int_equal(tls_add_domain(tls, "cnsan.example",
	    path("cnsan", "pem"), path("cnsan", "key"), err, sizeof(err)), 1);

	/* Not loaded. */
	assert_int_equal(tls_add_domain(tls, "x.example", path("none", "pem"),
	    path("corp", "key"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, path("none", "pem")));
	assert_int_equal(tls_add_domain(tls, "x.example", path("corp", "pem"),
	    path("none", "key"), err, sizeof(err)), -1);
	assert_int_equal(tls_add_domain(tls, "x.example", path("corp", "key"),
	    path("corp", "key"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no certificate"));
	assert_int_equal(tls_add_domain(tls, "x.example", path("corp", "pem"),
	    path("corp", "pem"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no private key"));
	assert_int_equal(tls_add_domain(tls, "corp.example",
	    path("corp", "pem"), path("other", "key"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "key does not match"));
	assert_false(tls_has_domain(tls, "x.example"));

	/* An encrypted key is refused without prompting. */
	key = gen_key(false);
	f = fopen(path("encrypted", "key"), "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, key, EVP_aes_128_cbc(),
	    (const unsigned char *)"secret", 6, NULL, NULL), 1);
	fclose(f);
	EVP_PKEY_free(key);
	assert_int_equal(tls_add_domain(tls, "x.example", path("corp", "pem"),
	    path("encrypted", "key"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "encrypted keys are not supported"));
	assert_int_equal(ERR_peek_error(), 0);
	tls_free(tls);
}

/* A replaying copy of a recording bundle. */
static struct bundle *
replay_of(const struct bundle *rec)
{
	struct bundle	*play = bundle_new(false);
	const char	*p;
	const void	*data;
	uint32_t	 mode;
	size_t		 len;
	int		 error;

	assert_non_null(play);
	for (size_t i = 0; i < bundle_count(rec); i++) {
		assert_int_equal(bundle_entry(rec, i, &p, &error, &mode, &data,
		    &len), 0);
		assert_int_equal(bundle_add(play, p, error, mode, data, len),
		    0);
	}
	return play;
}

/*
 * Through a bundle: a recording load reads the disk and keeps the files; a
 * replaying load reads only the bundle, with the disk's error texts.
 */
static void
test_add_domain_bundle(void **state)
{
	struct bundle	*rec, *play;
	struct tls	*tls;
	char		 err[256], disk_err[256], none[256];

	assert_non_null(rec = bundle_new(true));
	assert_non_null(tls = tls_new_bundle(rec, path("ca", "pem"), NULL));
	assert_int_equal(tls_add_domain_bundle(tls, rec, "corp.example",
	    path("corp", "pem"), path("corp", "key"), err, sizeof(err)), 0);
	snprintf(none, sizeof(none), "%s", path("none", "pem"));
	assert_int_equal(tls_add_domain_bundle(tls, rec, "x.example", none,
	    path("corp", "key"), err, sizeof(err)), -1);
	tls_free(tls);
	assert_int_equal(bundle_count(rec), 4);
	play = replay_of(rec);

	assert_non_null(tls = tls_new_bundle(play, path("ca", "pem"), NULL));
	assert_int_equal(tls_add_domain_bundle(tls, play, "corp.example",
	    path("corp", "pem"), path("corp", "key"), err, sizeof(err)), 0);
	assert_true(tls_has_domain(tls, "corp.example"));
	/* a recorded failure reads as the disk's */
	assert_int_equal(tls_add_domain(tls, "x.example", none,
	    path("corp", "key"), disk_err, sizeof(disk_err)), -1);
	assert_int_equal(tls_add_domain_bundle(tls, play, "x.example", none,
	    path("corp", "key"), err, sizeof(err)), -1);
	assert_string_equal(err, disk_err);
	/* a file the bundle does not hold is not read from the disk */
	assert_int_equal(tls_add_domain_bundle(tls, play, "other.example",
	    path("other", "pem"), path("other", "key"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Permission denied"));
	assert_null(tls_new_bundle(play, path("cnsan", "pem"), NULL));
	assert_int_equal(ERR_peek_error(), 0);
	tls_free(tls);
	bundle_free(play);
	bundle_free(rec);
}

static void
test_make_selfsigned(void **state)
{
	struct tls	*tls = tls_new(path("ca", "pem"), NULL);
	struct stat	 st;
	char		 err[256];
	X509		*x;
	FILE		*f;

	assert_int_equal(stat(path("self", "key"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(path("self", "pem"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	f = fopen(path("self", "pem"), "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	assert_int_equal(X509_check_host(x, "self.example", 0,
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL), 1);
	assert_true(X509_cmp_time(X509_get0_notAfter(x), NULL) > 0);
	assert_int_equal(X509_check_issued(x, x), X509_V_OK);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
	assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 1);
	X509_free(x);

	assert_int_equal(tls_add_domain(tls, "self.example",
	    path("self", "pem"), path("self", "key"), err, sizeof(err)), 0);
	assert_int_equal(tls_add_domain(tls, "other.example",
	    path("self", "pem"), path("self", "key"), err, sizeof(err)), 1);
	tls_free(tls);

	assert_int_equal(tls_make_selfsigned("a,DNS:evil.example",
	    path("bad", "pem"), path("bad", "key"), err, sizeof(err)), -1);
	assert_int_equal(tls_make_selfsigned("bad..example",
	    path("bad", "pem"), path("bad", "key"), err, sizeof(err)), -1);
	assert_int_equal(tls_make_selfsigned("ok.example",
	    "/nonexistent/ok.pem", path("ok", "key"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/ok.pem"));
}

/* Tests: server certificate selection */

struct sni_case {
	const char	*server_domain;	/* for tls_server_ssl() */
	const char	*select;	/* tls_select() after it, or NULL */
	const char	*sni;		/* NULL: none sent */
	const char	*expect;	/* the certificate presented */
	int		 key_type;
};

static const struct sni_case sni_cases[] = {
	{ NULL, NULL, "other.example", "other.example", EVP_PKEY_RSA },
	{ NULL, NULL, "corp.example", "corp.example", EVP_PKEY_EC },
	{ NULL, NULL, "OTHER.EXAMPLE", "other.example", EVP_PKEY_RSA },
	{ NULL, NULL, NULL, "corp.example", EVP_PKEY_EC },
	{ "other.example", NULL, NULL, "other.example", EVP_PKEY_RSA },
	{ "other.example", NULL, "corp.example", "corp.example", EVP_PKEY_EC },
	{ "other.example", NULL, "unknown.example", "other.example",
	    EVP_PKEY_RSA },
	{ "corp.example", "other.example", NULL, "other.example",
	    EVP_PKEY_RSA },
	{ "other.example", "corp.example", NULL, "corp.example", EVP_PKEY_EC },
};

static void
test_sni(void **state)
{
	struct tls	*srv = server_tls(), *peer = peer_tls(NULL, NULL, 0);
	const struct sni_case *t;
	SSL		*c, *s;
	size_t		 i;

	for (i = 0; i < nitems(sni_cases); i++) {
		t = &sni_cases[i];
		s = tls_server_ssl(srv, t->server_domain);
		assert_non_null(s);
		if (t->select != NULL)
			assert_int_equal(tls_select(s, t->select), 0);
		assert_int_equal(tls_select(s, "unknown.example"), -1);
		c = tls_client_ssl(peer, NULL, t->sni != NULL ? t->sni :
		    t->expect, false);
		assert_non_null(c);
		if (t->sni == NULL)
			assert_int_equal(SSL_set_tlsext_host_name(c, NULL), 1);
		assert_int_equal(handshake(c, s), HS_OK);
		if (!cert_is_for(c, t->expect, t->key_type))
			fail_msg("case %zu: not the certificate of %s", i,
			    t->expect);
		SSL_free(c);
		SSL_free(s);
	}
	assert_null(tls_server_ssl(srv, "unknown.example"));
	tls_free(peer);
	tls_free(srv);
}

/*
 * Subdomains: a further pair (a wildcard) of corp.example serves the names
 * under it that it is valid for; a name it is not valid for is not served
 * (tls_has_domain() false, SNI not acknowledged, the default stays).
 */
static void
test_sni_subdomains(void **state)
{
	static const struct {
		const char	*sni;
		const char	*expect;	/* the name it is valid for */
	} cases[] = {
		{ "conference.corp.example", "conference.corp.example" },
		{ "PubSub.Corp.Example", "pubsub.corp.example" },
		{ "corp.example", "corp.example" },
		{ "a.b.corp.example", "corp.example" },	/* not covered */
		{ "other.example", "other.example" },
	};
	struct tls	*srv = server_tls(), *peer = peer_tls(NULL, NULL, 0);
	char		 err[256];
	SSL		*c, *s;

	(void)state;
	assert_false(tls_has_domain(srv, "conference.corp.example"));
	assert_int_equal(tls_add_more_bundle(srv, NULL, "corp.example",
	    path("wildcorp", "pem"), path("wildcorp", "key"), err,
	    sizeof(err)), 0);
	assert_true(tls_has_domain(srv, "conference.corp.example"));
	assert_true(tls_has_domain(srv, "corp.example"));
	assert_false(tls_has_domain(srv, "a.b.corp.example"));
	assert_false(tls_has_domain(srv, "conference.other.example"));
	for (size_t i = 0; i < nitems(cases); i++) {
		s = tls_server_ssl(srv, NULL);
		assert_non_null(s);
		c = tls_client_ssl(peer, NULL, cases[i].sni, false);
		assert_non_null(c);
		assert_int_equal(handshake(c, s), HS_OK);
		if (!cert_is_for(c, cases[i].expect,
		    strcmp(cases[i].expect, "other.example") == 0 ?
		    EVP_PKEY_RSA : EVP_PKEY_EC))
			fail_msg("case %zu: not a certificate for %s", i,
			    cases[i].expect);
		SSL_free(c);
		SSL_free(s);
	}
	/* made for a subdomain: its certificate */
	s = tls_server_ssl(srv, "muc.corp.example");
	assert_non_null(s);
	c = tls_client_ssl(peer, NULL, "muc.corp.example", false);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_true(cert_is_for(c, "muc.corp.example", EVP_PKEY_EC));
	SSL_free(c);
	SSL_free(s);
	assert_null(tls_server_ssl(srv, "a.b.corp.example"));
	/* a domain under corp.example keeps its own certificate (RSA),
	 * although corp.example's wildcard (EC) is valid for it too */
	assert_int_equal(tls_add_domain(srv, "eu.corp.example",
	    path("eucorp", "pem"), path("eucorp", "key"), err, sizeof(err)), 0);
	s = tls_server_ssl(srv, "eu.corp.example");
	assert_non_null(s);
	c = tls_client_ssl(peer, NULL, "eu.corp.example", false);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_true(cert_is_for(c, "eu.corp.example", EVP_PKEY_RSA));
	SSL_free(c);
	SSL_free(s);
	/* the own pair is replaced, the further one stays */
	assert_int_equal(tls_add_domain(srv, "corp.example", path("corp",
	    "pem"), path("corp", "key"), err, sizeof(err)), 0);
	assert_true(tls_has_domain(srv, "conference.corp.example"));
	tls_free(peer);
	tls_free(srv);
}

/* A server SSL outlives its struct tls (reload): SNI keeps its certificate. */
static void
test_ssl_outlives_tls(void **state)
{
	struct tls	*srv = server_tls(), *peer = peer_tls(NULL, NULL, 0);
	SSL		*c, *s;

	s = tls_server_ssl(srv, "other.example");
	assert_non_null(s);
	tls_free(srv);
	assert_int_equal(tls_select(s, "corp.example"), -1);
	c = tls_client_ssl(peer, NULL, "corp.example", false);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_true(cert_is_for(c, "other.example", EVP_PKEY_RSA));
	SSL_free(c);
	SSL_free(s);
	tls_free(peer);
}

/* Tests: the client certificate, checked by the server side */

struct peer_case {
	const char	*file;		/* certificate presented, NULL: none */
	const char	*local;		/* the remote side's own domain */
	int		 add_rc;	/* tls_add_domain() on the remote side */
	const char	*check;		/* tls_peer_check() on the server */
	enum tls_peer_status expect;
	long		 verify_err;	/* why, when TLS_PEER_INVALID */
};

static const struct peer_case peer_cases[] = {
	{ "remote", "remote.example", 0, "remote.example", TLS_PEER_VALID, 0 },
	{ "remote", "remote.example", 0, "REMOTE.example", TLS_PEER_VALID, 0 },
	{ "remote", "remote.example", 0, "elsewhere.example",
	    TLS_PEER_MISMATCH, 0 },
	{ "elsewhere", "remote.example", 1, "remote.example",
	    TLS_PEER_MISMATCH, 0 },
	{ "wild", "a.partner.example", 0, "a.partner.example",
	    TLS_PEER_VALID, 0 },
	{ "wild", "a.partner.example", 0, "partner.example",
	    TLS_PEER_MISMATCH, 0 },
	{ "wild", "a.partner.example", 0, "a.b.partner.example",
	    TLS_PEER_MISMATCH, 0 },
	{ "xmpp", "xmpp.example", 0, "xmpp.example", TLS_PEER_VALID, 0 },
	{ "xmpp", "xmpp.example", 0, "ignored.example", TLS_PEER_MISMATCH, 0 },
	{ "xmpp", "xmpp.example", 0, "xmpp.example.net", TLS_PEER_MISMATCH,
	    0 },
	{ "srv", "srv.example", 0, "srv.example", TLS_PEER_VALID, 0 },
	{ "srv", "srv.example", 0, "_xmpp-server.srv.example",
	    TLS_PEER_MISMATCH, 0 },
	{ "legacy", "legacy.example", 0, "legacy.example", TLS_PEER_VALID, 0 },
	{ "cnsan", "cnsan.example", 1, "cnsan.example", TLS_PEER_MISMATCH, 0 },
	{ "cnsan", "cnsan.example", 1, "foo.example", TLS_PEER_VALID, 0 },
	{ "chain", "chain.example", 0, "chain.example", TLS_PEER_VALID, 0 },
	{ "serveronly", "serveronly.example", 0, "serveronly.example",
	    TLS_PEER_VALID, 0 },
	{ "emailonly", "emailonly.example", 0, "emailonly.example",
	    TLS_PEER_INVALID, X509_V_ERR_INVALID_PURPOSE },
	{ "expired", "expired.example", 1, "expired.example",
	    TLS_PEER_INVALID, X509_V_ERR_CERT_HAS_EXPIRED },
	{ "self", "self.example", 0, "self.example", TLS_PEER_INVALID,
	    X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT },
	{ "unknownca", "unknown.example", 0, "unknown.example",
	    TLS_PEER_INVALID, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY },
	{ NULL, NULL, 0, "remote.example", TLS_PEER_NONE, 0 },
};

static void
run_peer_cases(int max_version, const char *version)
{
	struct tls		*srv = server_tls(), *peer;
	const struct peer_case	*t;
	enum tls_peer_status	 got;
	const char		*why;
	char			 desc[128];
	SSL			*c, *s;
	size_t			 i;

	for (i = 0; i < nitems(peer_cases); i++) {
		t = &peer_cases[i];
		peer = peer_tls(t->local, t->file, t->add_rc);
		s = tls_server_ssl(srv, NULL);
		c = tls_client_ssl(peer, t->local, "corp.example", true);
		assert_true(s != NULL && c != NULL);
		assert_int_equal(SSL_set_max_proto_version(c, max_version), 1);
		assert_int_equal(handshake(c, s), HS_OK);
		got = tls_peer_check(s, t->check);
		why = tls_peer_error(s);
		if (got != t->expect)
			fail_msg("%s case %zu (%s as %s): %s, expected %s (%s)",
			    version, i, t->file, t->check,
			    tls_peer_status_name(got),
			    tls_peer_status_name(t->expect),
			    why != NULL ? why : "chain ok");
		if (t->expect == TLS_PEER_INVALID)
			assert_string_equal(why,
			    X509_verify_cert_error_string(t->verify_err));
		else
			assert_null(why);
		/* The server's own certificate, checked by the client. */
		assert_int_equal(tls_peer_check(c, "corp.example"),
		    TLS_PEER_VALID);
		tls_peer_describe(s, desc, sizeof(desc));
		assert_true(strncmp(desc, version, strlen(version)) == 0);
		SSL_free(c);
		SSL_free(s);
		tls_free(peer);
	}
	tls_free(srv);
}

static void
test_peer_check_tls13(void **state)
{
	run_peer_cases(TLS1_3_VERSION, "TLSv1.3 TLS_");
}

static void
test_peer_check_tls12(void **state)
{
	run_peer_cases(TLS1_2_VERSION, "TLSv1.2 ECDHE-");
}

/* Tests: the server certificate, checked by the client side */

static void
test_client_verify(void **state)
{
	struct tls	*srv = server_tls(), *peer = peer_tls(NULL, NULL, 0);
	struct tls	*xsrv = peer_tls("xmpp.example", "xmpp", 0);
	struct tls	*ssrv = peer_tls("self.example", "self", 0);
	SSL		*c, *s;

	/* verify: a valid certificate for the name. */
	s = tls_server_ssl(srv, NULL);
	c = tls_client_ssl(peer, NULL, "other.example", true);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_int_equal(tls_peer_check(c, "other.example"), TLS_PEER_VALID);
	assert_int_equal(tls_peer_check(c, "corp.example"), TLS_PEER_MISMATCH);
	assert_null(tls_peer_error(c));
	/* No client certificate was presented. */
	assert_int_equal(tls_peer_check(s, "remote.example"), TLS_PEER_NONE);
	assert_null(tls_peer_error(s));
	SSL_free(c);
	SSL_free(s);

	/* verify: the name does not match (SNI unknown, default cert). */
	s = tls_server_ssl(srv, NULL);
	c = tls_client_ssl(peer, NULL, "elsewhere.example", true);
	assert_int_equal(handshake(c, s), HS_CLIENT_FAILED);
	assert_int_equal(ERR_GET_REASON(hs_err),
	    SSL_R_CERTIFICATE_VERIFY_FAILED);
	assert_int_equal(SSL_get_verify_result(c),
	    X509_V_ERR_HOSTNAME_MISMATCH);
	SSL_free(c);
	SSL_free(s);

	/* No verify: the handshake completes, the leg decides. */
	s = tls_server_ssl(srv, NULL);
	c = tls_client_ssl(peer, NULL, "elsewhere.example", false);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_int_equal(tls_peer_check(c, "elsewhere.example"),
	    TLS_PEER_MISMATCH);
	assert_null(tls_peer_error(c));
	SSL_free(c);
	SSL_free(s);

	/* verify: an XmppAddr-only certificate is valid for its domain. */
	s = tls_server_ssl(xsrv, NULL);
	c = tls_client_ssl(peer, NULL, "xmpp.example", true);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_int_equal(tls_peer_check(c, "xmpp.example"), TLS_PEER_VALID);
	SSL_free(c);
	SSL_free(s);

	/* verify: untrusted. */
	s = tls_server_ssl(ssrv, NULL);
	c = tls_client_ssl(peer, NULL, "self.example", true);
	assert_int_equal(handshake(c, s), HS_CLIENT_FAILED);
	SSL_free(c);
	SSL_free(s);
	s = tls_server_ssl(ssrv, NULL);
	c = tls_client_ssl(peer, NULL, "self.example", false);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_int_equal(tls_peer_check(c, "self.example"), TLS_PEER_INVALID);
	assert_string_equal(tls_peer_error(c), X509_verify_cert_error_string(
	    X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT));
	SSL_free(c);
	SSL_free(s);

	/* A self-signed certificate trusted by pinning it as a CA. */
	tls_free(peer);
	peer = tls_new(path("self", "pem"), NULL);
	assert_non_null(peer);
	s = tls_server_ssl(ssrv, NULL);
	c = tls_client_ssl(peer, NULL, "self.example", true);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_int_equal(tls_peer_check(c, "self.example"), TLS_PEER_VALID);
	SSL_free(c);
	SSL_free(s);

	assert_null(tls_client_ssl(peer, NULL, NULL, true));
	tls_free(ssrv);
	tls_free(xsrv);
	tls_free(peer);
	tls_free(srv);
}

/* Tests: protocol versions, ALPN, description */

static void
test_tls11_refused(void **state)
{
	struct tls	*srv = server_tls();
	SSL_CTX		*ctx;
	SSL		*c, *s;

	ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	SSL_CTX_set_security_level(ctx, 0);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_1_VERSION),
	    1);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION),
	    1);
	assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"),
	    1);
	c = SSL_new(ctx);
	SSL_set_connect_state(c);
	s = tls_server_ssl(srv, NULL);
	assert_int_equal(SSL_get_min_proto_version(s), TLS1_2_VERSION);
	assert_int_equal(handshake(c, s), HS_SERVER_FAILED);
	assert_int_equal(ERR_GET_REASON(hs_err), SSL_R_UNSUPPORTED_PROTOCOL);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(ctx);
	tls_free(srv);
}

/* An SSL_CTX of a server or client that speaks only TLS 1.0. */
static SSL_CTX *
tls10_ctx(bool server)
{
	SSL_CTX	*ctx;

	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_VERSION), 1);
	assert_int_equal(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"),
	    1);
	if (server) {
		assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx,
		    path("corp", "pem")), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx,
		    path("corp", "key"), SSL_FILETYPE_PEM), 1);
	}
	return ctx;
}

/* tls min-version TLSv1 on one server SSL: that one accepts TLS 1.0. */
static void
test_relax_server(void **state)
{
	struct tls	*srv = server_tls();
	SSL_CTX		*ctx = tls10_ctx(false);
	SSL		*c, *s;
	int		 level;

	(void)state;
	c = SSL_new(ctx);
	SSL_set_connect_state(c);
	s = tls_server_ssl(srv, NULL);
	level = SSL_get_security_level(s);
	assert_true(level > 0);
	assert_int_equal(tls_ssl_relax(s, 0x0301, NULL), 0);
	assert_int_equal(SSL_get_min_proto_version(s), TLS1_VERSION);
	assert_int_equal(SSL_get_security_level(s), 0);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_int_equal(SSL_version(s), TLS1_VERSION);
	SSL_free(c);
	SSL_free(s);

	/* the next SSL of the same context keeps the defaults */
	c = SSL_new(ctx);
	SSL_set_connect_state(c);
	s = tls_server_ssl(srv, NULL);
	assert_int_equal(SSL_get_min_proto_version(s), TLS1_2_VERSION);
	assert_int_equal(SSL_get_security_level(s), level);
	assert_int_equal(handshake(c, s), HS_SERVER_FAILED);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(ctx);
	tls_free(srv);
}

/* tls min-version TLSv1 and tls ciphers on a client SSL to a TLS 1.0 server. */
static void
test_relax_client(void **state)
{
	struct tls	*peer = peer_tls(NULL, NULL, 0);
	SSL_CTX		*ctx = tls10_ctx(true);
	SSL		*c, *s;
	char		 desc[128];

	(void)state;
	/* without: refused */
	c = tls_client_ssl(peer, NULL, "corp.example", false);
	s = SSL_new(ctx);
	SSL_set_accept_state(s);
	assert_int_equal(handshake(c, s), HS_SERVER_FAILED);
	SSL_free(c);
	SSL_free(s);
	/* with: TLS 1.0 and the one cipher asked for */
	c = tls_client_ssl(peer, NULL, "corp.example", false);
	assert_int_equal(tls_ssl_relax(c, 0x0301, "ECDHE-ECDSA-AES128-SHA"),
	    0);
	s = SSL_new(ctx);
	SSL_set_accept_state(s);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_string_equal(tls_peer_describe(c, desc, sizeof(desc)),
	    "TLSv1 ECDHE-ECDSA-AES128-SHA");
	/* the certificate is still checked as before */
	assert_int_equal(tls_peer_check(c, "corp.example"), TLS_PEER_VALID);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(ctx);
	tls_free(peer);
}

/* What tls_ssl_relax() refuses, and what it leaves alone. */
static void
test_relax_args(void **state)
{
	struct tls	*srv = server_tls();
	SSL		*s = tls_server_ssl(srv, NULL);
	int		 level = SSL_get_security_level(s);

	(void)state;
	assert_int_equal(tls_ssl_relax(s, 0, NULL), 0);
	assert_int_equal(tls_ssl_relax(s, 0, ""), 0);
	assert_int_equal(SSL_get_min_proto_version(s), TLS1_2_VERSION);
	assert_int_equal(SSL_get_security_level(s), level);
	assert_int_equal(tls_ssl_relax(s, 0x0300, NULL), -1);	/* SSLv3 */
	assert_int_equal(tls_ssl_relax(s, 0x0305, NULL), -1);
	assert_int_equal(tls_ssl_relax(s, 0, "NO-SUCH-CIPHER"), -1);
	assert_int_equal(ERR_peek_error(), 0);
	/* TLS 1.3 at least: stricter, the security level unchanged */
	assert_int_equal(tls_ssl_relax(s, 0x0304, NULL), 0);
	assert_int_equal(SSL_get_min_proto_version(s), TLS1_3_VERSION);
	assert_int_equal(SSL_get_security_level(s), level);
	/* a level in the list wins */
	assert_int_equal(tls_ssl_relax(s, 0x0302, "DEFAULT:@SECLEVEL=1"), 0);
	assert_int_equal(SSL_get_security_level(s), 1);
	SSL_free(s);
	tls_free(srv);

	assert_true(tls_ciphers_are_valid("ECDHE+AES:@SECLEVEL=0"));
	assert_true(tls_ciphers_are_valid("ECDHE-ECDSA-AES128-SHA"));
	assert_false(tls_ciphers_are_valid("NO-SUCH-CIPHER"));
	assert_false(tls_ciphers_are_valid(""));
	assert_false(tls_ciphers_are_valid(NULL));
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_alpn_describe(void **state)
{
	static const unsigned char client_alpn[] = "\x0bxmpp-client";
	struct tls	*srv = server_tls();
	struct tls	*peer = peer_tls("remote.example", "remote", 0);
	char		 desc[128];
	SSL		*c, *s;

	/* Direct TLS with ALPN xmpp-server. */
	s = tls_server_ssl(srv, NULL);
	c = tls_client_ssl(peer, "remote.example", "corp.example", true);
	assert_int_equal(tls_client_alpn(c), 0);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_true(tls_has_alpn(c));
	assert_true(tls_has_alpn(s));
	tls_peer_describe(c, desc, sizeof(desc));
	assert_true(strncmp(desc, "TLSv1.3 TLS_", 12) == 0);
	assert_non_null(strstr(desc, " alpn=xmpp-server"));
	assert_string_equal(tls_peer_describe(s, desc, 8), "TLSv1.3");
	assert_int_equal(tls_peer_check(s, "remote.example"), TLS_PEER_VALID);
	SSL_free(c);
	SSL_free(s);

	/* No ALPN (STARTTLS). */
	s = tls_server_ssl(srv, NULL);
	c = tls_client_ssl(peer, "remote.example", "corp.example", true);
	assert_int_equal(handshake(c, s), HS_OK);
	assert_false(tls_has_alpn(s));
	assert_null(strstr(tls_peer_describe(s, desc, sizeof(desc)), "alpn"));
	SSL_free(c);
	SSL_free(s);

	/* ALPN for another protocol: refused. */
	s = tls_server_ssl(srv, NULL);
	c = tls_client_ssl(peer, "remote.example", "corp.example", true);
	assert_int_equal(SSL_set_alpn_protos(c, client_alpn,
	    sizeof(client_alpn) - 1), 0);
	assert_int_equal(handshake(c, s), HS_SERVER_FAILED);
	SSL_free(c);
	SSL_free(s);

	/* Before any handshake. */
	s = tls_server_ssl(srv, NULL);
	assert_non_null(tls_peer_describe(s, desc, sizeof(desc)));
	assert_int_equal(tls_peer_check(s, "remote.example"), TLS_PEER_NONE);
	SSL_free(s);

	assert_string_equal(tls_peer_status_name(TLS_PEER_NONE), "none");
	assert_string_equal(tls_peer_status_name(TLS_PEER_INVALID), "invalid");
	assert_string_equal(tls_peer_status_name(TLS_PEER_MISMATCH),
	    "mismatch");
	assert_string_equal(tls_peer_status_name(TLS_PEER_VALID), "valid");
	tls_free(peer);
	tls_free(srv);
}

/* Tests: DANE */

/* SHA-256 of the SubjectPublicKeyInfo of file's certificate (3 1 1). */
static void
spki_sha256(const char *file, unsigned char md[32])
{
	unsigned char	*der = NULL;
	unsigned int	 mdlen;
	X509		*x;
	FILE		*f;
	int		 len;

	f = fopen(path(file, "pem"), "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(),
	    NULL), 1);
	assert_int_equal(mdlen, 32);
	OPENSSL_free(der);
	X509_free(x);
}

static enum hs
dane_handshake(struct tls *srv, struct tls *peer, const char *domain,
    const unsigned char *md, bool verify, SSL **cp)
{
	SSL	*s, *c;
	enum hs	 rc;

	s = tls_server_ssl(srv, NULL);
	c = tls_client_ssl(peer, NULL, domain, verify);
	assert_true(s != NULL && c != NULL);
	assert_int_equal(tls_dane_enable(c, domain), 0);
	assert_int_equal(tls_dane_add_tlsa(c, 3, 1, 1, md, 32), 0);
	rc = handshake(c, s);
	SSL_free(s);
	*cp = c;
	return rc;
}

static void
test_dane(void **state)
{
	struct tls	*ssrv = peer_tls("self.example", "self", 0);
	struct tls	*srv = server_tls(), *peer = peer_tls(NULL, NULL, 0);
	unsigned char	 md[32], bad[32];
	SSL		*c;

	spki_sha256("self", md);
	memset(bad, 0x5a, sizeof(bad));

	/* DANE-EE authenticates a self-signed certificate. */
	assert_int_equal(dane_handshake(ssrv, peer, "self.example", md, true,
	    &c), HS_OK);
	assert_int_equal(tls_peer_check(c, "self.example"), TLS_PEER_VALID);
	assert_int_equal(tls_peer_check(c, "other.example"),
	    TLS_PEER_MISMATCH);
	SSL_free(c);

	/* DANE-EE checks no names: the key is bound to the base domain. */
	spki_sha256("corp", md);
	assert_int_equal(dane_handshake(srv, peer, "dane.example", md, true,
	    &c), HS_OK);
	assert_int_equal(tls_peer_check(c, "dane.example"), TLS_PEER_VALID);
	SSL_free(c);

	/* No matching TLSA record. */
	assert_int_equal(dane_handshake(ssrv, peer, "self.example", bad, true,
	    &c), HS_CLIENT_FAILED);
	SSL_free(c);
	assert_int_equal(dane_handshake(srv, peer, "corp.example", bad, false,
	    &c), HS_OK);
	assert_int_equal(tls_peer_check(c, "corp.example"), TLS_PEER_INVALID);
	assert_string_equal(tls_peer_error(c), X509_verify_cert_error_string(
	    X509_V_ERR_DANE_NO_MATCH));
	SSL_free(c);

	/* Unusable or malformed records, DANE not enabled. */
	c = tls_client_ssl(peer, NULL, "corp.example", true);
	assert_int_equal(tls_dane_add_tlsa(c, 3, 1, 1, md, 32), -1);
	assert_int_equal(tls_dane_enable(c, "corp.example"), 0);
	assert_int_equal(tls_dane_add_tlsa(c, 4, 1, 1, md, 32), -1);
	assert_int_equal(tls_dane_add_tlsa(c, 3, 1, 1, md, 5), -1);
	assert_int_equal(ERR_peek_error(), 0);
	SSL_free(c);

	tls_free(peer);
	tls_free(srv);
	tls_free(ssrv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_free),
		cmocka_unit_test(test_add_domain),
		cmocka_unit_test(test_add_domain_bundle),
		cmocka_unit_test(test_make_selfsigned),
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_sni_subdomains),
		cmocka_unit_test(test_ssl_outlives_tls),
		cmocka_unit_test(test_peer_check_tls13),
		cmocka_unit_test(test_peer_check_tls12),
		cmocka_unit_test(test_client_verify),
		cmocka_unit_test(test_relax_server),
		cmocka_unit_test(test_relax_client),
		cmocka_unit_test(test_relax_args),
		cmocka_unit_test(test_tls11_refused),
		cmocka_unit_test(test_alpn_describe),
		cmocka_unit_test(test_dane),
	};

	log_init(true, 0);
	log_set_level(LOG_LEVEL_WARNING);
	return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
