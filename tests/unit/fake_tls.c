/*
 * A fake of the parts of tls.h that legs call, for the scenario runner.
 * A local domain has a certificate when the configuration names one for
 * it (no file is read). SSLs are real objects from one bare SSL_CTX, so
 * that what legs and metrics ask of them works, but no handshake runs:
 * the fake conn finishes it when the scenario says, with the peer
 * certificate verdict the scenario gives (fake_conn_peer_check()).
 */
#include "fgconfig.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fake.h"
#include "local.h"

struct tls {
	const struct config	*config;
};

static SSL_CTX *ctx;

struct tls *
fake_tls_new(const struct config *c)
{
	struct tls *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->config = c;
	return t;
}

void
fake_tls_free(struct tls *t)
{
	free(t);
}

void
fake_tls_cleanup(void)
{
	SSL_CTX_free(ctx);
	ctx = NULL;
}

static SSL *
fake_tls_ssl(bool server)
{
	SSL *ssl;

	if (ctx == NULL && (ctx = SSL_CTX_new(TLS_method())) == NULL)
		return NULL;
	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	return ssl;
}

/*
 * A local domain has a certificate when its block names one; a subdomain
 * when its domain's block names a further pair (taken for a wildcard that
 * is valid for every subdomain).
 */
bool
tls_has_domain(const struct tls *t, const char *domain)
{
	const struct config_domain *d = config_domain_find(t->config, domain);
	struct local_name n;

	if (d != NULL)
		return d->certificate != NULL;
	return local_find(t->config, CONFIG_FACE_PUBLIC, domain, &n) &&
	    n.subdomain && n.dom->nmore_certificates > 0;
}

SSL *
tls_server_ssl(struct tls *t, const char *domain)
{
	if (domain != NULL && !tls_has_domain(t, domain))
		return NULL;
	return fake_tls_ssl(true);
}

SSL *
tls_client_ssl(struct tls *t, const char *local_domain,
    const char *remote_domain, bool verify)
{
	return fake_tls_ssl(false);
}

int
tls_client_alpn(SSL *ssl)
{
	return 0;
}

enum tls_peer_status
tls_peer_check(SSL *ssl, const char *domain)
{
	return fake_conn_peer_check(ssl, domain);
}

const char *
tls_peer_status_name(enum tls_peer_status status)
{
	static const char *const names[] = { "none", "invalid", "mismatch",
	    "valid" };

	return (size_t)status < sizeof(names) / sizeof(*names) ?
	    names[status] : "?";
}

int
tls_ssl_relax(SSL *ssl, int min_version, const char *ciphers)
{
	if (min_version != 0 && SSL_set_min_proto_version(ssl, min_version) != 1)
		return -1;
	if (ciphers != NULL && ciphers[0] != '\0' &&
	    SSL_set_cipher_list(ssl, ciphers) != 1)
		return -1;
	return 0;
}

bool
tls_ciphers_are_valid(const char *ciphers)
{
	return ciphers != NULL && ciphers[0] != '\0';
}
