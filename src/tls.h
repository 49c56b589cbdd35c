/*
 * tls: the TLS contexts of one configuration and the identity of a peer.
 *
 * A struct tls owns two SSL_CTXs, one for the server side of legs (incoming
 * STARTTLS and XEP-0368 direct TLS) and one for the client side (outgoing),
 * a trust store shared by both, and the certificate, key and chain of each
 * local domain.
 *
 * Certificates: one server SSL_CTX for all local domains; a domain may
 * have several certificate and key pairs (tls_add_more_bundle()). The
 * pair chosen for a name (tls_has_domain()) is put on each SSL
 * (SSL_use_cert_and_key) when the SSL is made for a known name, and
 * replaced by the SNI callback when the peer names another. An SNI naming
 * a name no pair is chosen for keeps the certificate already chosen and
 * is not acknowledged: the leg then answers the stream's `to` with
 * host-unknown (or, for a local subdomain no certificate is valid for,
 * offers no STARTTLS), which says more than a TLS alert. The same
 * certificate is presented as the client certificate on outgoing legs.
 *
 * Protocol: TLS 1.2 minimum, forward-secret key exchange only, AEAD suites
 * first (CBC kept last for older servers), server preference, no
 * renegotiation, no compression. No session resumption at all (no cache, no
 * tickets, on either side): S2S streams are long-lived, so a full handshake
 * per leg costs little, every leg's peer identity comes from its own
 * handshake, and gateways behind one SRV name need no shared ticket keys.
 *
 * ALPN: the server side selects "xmpp-server" when offered and refuses a
 * handshake that offers only other protocols (cross-protocol attacks); no
 * ALPN at all is accepted (STARTTLS, older XEP-0368 peers).
 *
 * Peer certificates: the server side asks for a client certificate but never
 * fails the handshake over it; the verify callback records the first chain
 * error and the leg applies `verify none|optional|required` afterwards with
 * tls_peer_check(). A peer certificate is accepted for the client role when
 * its extended key usage allows clientAuth or serverAuth (servers federate
 * with their server certificates, many of which lack clientAuth).
 *
 * Names (RFC 6125, RFC 6120 section 13.7, XEP-0178): a certificate is valid
 * for a domain when it has a DNS-ID matching it (X509_check_host; a wildcard
 * only as the whole leftmost label, matching exactly one label), an SRV-ID
 * "_xmpp-server.<domain>" (otherName 1.3.6.1.5.5.7.8.7) or an XmppAddr equal
 * to the domain (otherName 1.3.6.1.5.5.7.8.5). The subject CN is used only
 * when the certificate has no subjectAltName extension at all. Names are
 * compared ASCII case-insensitively with the domain as given: pass the
 * normalised (A-label) form; an XmppAddr holding a U-label does not match.
 *
 * Lifetime: SSLs made here hold references to the contexts, certificates and
 * keys they use and may outlive the struct tls (a reload frees the old one);
 * a handshake that starts after tls_free() keeps the certificate its SSL has.
 */
#ifndef FEDGATE_TLS_H
#define FEDGATE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* The XEP-0368 ALPN protocol id. */
#define TLS_ALPN_XMPP_SERVER	"xmpp-server"

/* Bytes of a certificate, key or CA file read through a bundle. */
#define TLS_FILE_MAX		(8 * 1024 * 1024)

struct bundle;
struct tls;

enum tls_peer_status {
	TLS_PEER_NONE,		/* no certificate presented */
	TLS_PEER_INVALID,	/* chain not valid: tls_peer_error() says why */
	TLS_PEER_MISMATCH,	/* valid chain, but not for this domain */
	TLS_PEER_VALID		/* valid chain (or DANE) and valid for the domain */
};

/*
 * Make the server and client contexts. Trust the CAs in ca_file and/or
 * ca_path (c_rehash directory); both NULL means the system's default store.
 * Return NULL if a trust location cannot be loaded or out of memory (the
 * reason is logged).
 */
struct tls *tls_new(const char *ca_file, const char *ca_path);
/*
 * tls_new() reading ca_file through b (bundle.h; NULL: the disk). ca_path
 * is always a directory on the disk: OpenSSL looks certificates up in it
 * when it verifies a chain.
 */
struct tls *tls_new_bundle(struct bundle *b, const char *ca_file,
	    const char *ca_path);
/* Free tls; SSLs made from it stay usable. NULL is a no-op. */
void	tls_free(struct tls *tls);

/*
 * Load the certificate chain (PEM, leaf first) and the unencrypted private
 * key of local domain `domain`; replace what an earlier call loaded for it.
 * The first domain added is the default. Return 0 if loaded and the
 * certificate is valid for domain now; 1 if loaded although it is not
 * (another name, expired or not yet valid: err holds the warning for the
 * caller to log); -1 if not loaded (unreadable file, bad PEM, encrypted key,
 * key not matching the certificate, out of memory: err says which).
 */
int	tls_add_domain(struct tls *tls, const char *domain,
	    const char *cert_file, const char *key_file, char *err,
	    size_t errlen);
/*
 * tls_add_domain() reading both files through b (bundle.h; NULL: the
 * disk), with the same results and error texts.
 */
int	tls_add_domain_bundle(struct tls *tls, struct bundle *b,
	    const char *domain, const char *cert_file, const char *key_file,
	    char *err, size_t errlen);
/*
 * Add a further certificate and key to local domain `domain` (a domain
 * block's second, third... pair), read through b as
 * tls_add_domain_bundle(). Pairs are kept in the order added. Return 0 if
 * loaded; 1 if loaded although expired or not yet valid (err holds the
 * warning); -1 if not loaded (err says why).
 */
int	tls_add_more_bundle(struct tls *tls, struct bundle *b,
	    const char *domain, const char *cert_file, const char *key_file,
	    char *err, size_t errlen);
/*
 * Whether a certificate can be presented for `domain` (a local domain's
 * name or a name under one), as tls_server_ssl() chooses it: the first
 * pair of the domain (or of a domain `domain` is under) that is valid for
 * it, else the first of any domain that is valid for it, else the own
 * (first) pair of the domain named `domain`, valid or not.
 */
bool	tls_has_domain(const struct tls *tls, const char *domain);

/*
 * Make an SSL for the server side of a leg, presenting the certificate of
 * local domain `domain` (the stream's `to`, known before STARTTLS), or of the
 * default domain when domain is NULL; SNI may switch to another local
 * domain. The SSL is in accept state and asks for a client certificate
 * without requiring one. Return NULL if domain is not a local domain, no
 * domain is loaded, or out of memory. The caller owns the SSL.
 */
SSL	*tls_server_ssl(struct tls *tls, const char *domain);
/*
 * Present local domain `domain`'s certificate on ssl, a server SSL made by
 * tls_server_ssl() whose handshake has not started. Return 0, or -1 if
 * domain is not a local domain (ssl is then unchanged).
 */
int	tls_select(SSL *ssl, const char *domain);

/*
 * Make an SSL for the client side of a leg to remote_domain: send it as SNI
 * and check the server certificate's names against it. Present local_domain's
 * certificate as the client certificate when one is loaded (NULL: none).
 * With verify, the handshake fails unless the server certificate is valid
 * for remote_domain (or matches DANE, see tls_dane_enable()); without it the
 * handshake completes and the leg decides with tls_peer_check(). The SSL is
 * in connect state. Return NULL if out of memory or remote_domain is not a
 * valid host name. The caller owns the SSL.
 */
SSL	*tls_client_ssl(struct tls *tls, const char *local_domain,
	    const char *remote_domain, bool verify);
/*
 * Relax ssl (from tls_server_ssl() or tls_client_ssl(), before its
 * handshake) for one peer that cannot do better; the contexts and every
 * other SSL keep the built-in settings. min_version is a protocol version
 * as TLS writes it (0x0301 TLS 1.0 ... 0x0304 TLS 1.3; 0 keeps TLS 1.2):
 * below TLS 1.2 it also sets ssl's security level to 0, as OpenSSL 3
 * refuses TLS 1.0 and 1.1 at level 1 and above (their handshake signs
 * with MD5 and SHA-1). ciphers replaces the cipher list for TLS 1.2 and
 * below (OpenSSL's syntax; an "@SECLEVEL=n" in it wins over the level set
 * for min_version); NULL or "" keeps the built-in list. TLS 1.3 suites
 * are not changed. Return 0, or -1 if OpenSSL refuses the version or the
 * list (ssl may then be changed in part: free it).
 */
int	tls_ssl_relax(SSL *ssl, int min_version, const char *ciphers);
/* Whether OpenSSL accepts ciphers as a cipher list (one cipher at least). */
bool	tls_ciphers_are_valid(const char *ciphers);

/* Offer ALPN "xmpp-server" on client ssl (XEP-0368). Return 0 or -1. */
int	tls_client_alpn(SSL *ssl);
/* Whether the handshake of ssl negotiated ALPN "xmpp-server". */
bool	tls_has_alpn(const SSL *ssl);

/*
 * After the handshake of ssl (either side, made by this module), say whether
 * the peer's certificate is valid for `domain`. Call it once per domain the
 * peer claims (XEP-0344: one stream may carry several).
 */
enum tls_peer_status tls_peer_check(SSL *ssl, const char *domain);
/*
 * Why the peer's chain is not valid ("certificate has expired"), from
 * X509_verify_cert_error_string(), or NULL if it is valid or absent.
 */
const char *tls_peer_error(SSL *ssl);
/* "none", "invalid", "mismatch", "valid". */
const char *tls_peer_status_name(enum tls_peer_status status);
/*
 * Describe the established ssl for logs and `fedgatectl sessions`:
 * "TLSv1.3 TLS_AES_256_GCM_SHA384", plus " alpn=xmpp-server" when
 * negotiated. Return buf (always NUL-terminated when len > 0).
 */
const char *tls_peer_describe(const SSL *ssl, char *buf, size_t len);
/*
 * The names the peer certificate of ssl (after its handshake) is valid for,
 * as the checks above read them, for messages: its DNS-IDs, SRV-IDs
 * ("_xmpp-server.example.org") and XmppAddrs, ", " apart, or "CN=name"
 * when it has no subjectAltName; "" without a certificate. Names with
 * bytes that are not printable ASCII are shown as "?". Return buf
 * (NUL-terminated when len > 0; a long list ends with "...").
 */
const char *tls_peer_names(SSL *ssl, char *buf, size_t len);
/* The peer certificate's notAfter, seconds since the epoch; -1 if none. */
int64_t	tls_peer_expiry(SSL *ssl);

/*
 * Enable DANE (RFC 6698, RFC 7671, RFC 7673) on client ssl before its
 * handshake: names are checked against base_domain (the XMPP domain), a
 * DANE-EE(3) match needs no name check. Without any usable TLSA record added
 * afterwards, PKIX verification applies as without DANE. Return 0 or -1.
 */
int	tls_dane_enable(SSL *ssl, const char *base_domain);
/*
 * Add one TLSA record (from a DNSSEC-secure answer) to ssl after
 * tls_dane_enable(). Return 0 if added, -1 if unusable or malformed.
 */
int	tls_dane_add_tlsa(SSL *ssl, uint8_t usage, uint8_t selector,
	    uint8_t mtype, const unsigned char *data, size_t len);

/*
 * Write a new self-signed certificate for domain (EC P-256, SAN DNS:domain,
 * valid for one year, serverAuth and clientAuth, no keyUsage so that a peer
 * can pin it as its own trust anchor) to cert_path (mode 0644) and its key
 * to key_path (mode 0600), replacing the files. domain must be a plain host
 * name (letters, digits, '-', '.'). Return 0, or -1 with err set.
 */
int	tls_make_selfsigned(const char *domain, const char *cert_path,
	    const char *key_path, char *err, size_t errlen);

#endif
