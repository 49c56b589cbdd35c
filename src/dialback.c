/*
 * dialback: XEP-0185 key minting and checking, stream IDs.
 */
#include "fgconfig.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "dialback.h"

/* Write len bytes of in as lower-case hex and a NUL to out (2 * len + 1). */
static void
dialback_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

static bool
dialback_is_set(const char *s)
{
	return s != NULL && *s != '\0';
}

/* HMAC-SHA256 of "receiving originating stream_id" under hmac_key. */
static int
dialback_hmac(const char *hmac_key, size_t hmac_key_len,
    const char *receiving, const char *originating, const char *stream_id,
    unsigned char mac[EVP_MAX_MD_SIZE], size_t *maclen)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_END
	};
	EVP_MAC *hmac;
	EVP_MAC_CTX *ctx = NULL;
	int rc = -1;

	if ((hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return -1;
	if ((ctx = EVP_MAC_CTX_new(hmac)) == NULL ||
	    !EVP_MAC_init(ctx, (const unsigned char *)hmac_key, hmac_key_len,
	    params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)receiving,
	    strlen(receiving)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)" ", 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)originating,
	    strlen(originating)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)" ", 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)stream_id,
	    strlen(stream_id)) ||
	    !EVP_MAC_final(ctx, mac, maclen, EVP_MAX_MD_SIZE))
		goto out;
	rc = 0;
 out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	return rc;
}

int
dialback_key(const void *secret, size_t secret_len, const char *receiving,
    const char *originating, const char *stream_id, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
	char hexsecret[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int mdlen;
	size_t maclen;
	int rc = -1;

	if (secret == NULL || secret_len == 0 || !dialback_is_set(receiving) ||
	    !dialback_is_set(originating) || !dialback_is_set(stream_id) ||
	    out == NULL || outlen < DIALBACK_KEY_SIZE)
		return -1;
	if (!EVP_Digest(secret, secret_len, md, &mdlen, EVP_sha256(), NULL))
		goto out;
	dialback_hex(md, mdlen, hexsecret);
	if (dialback_hmac(hexsecret, 2 * (size_t)mdlen, receiving, originating,
	    stream_id, mac, &maclen) == -1 || 2 * maclen != DIALBACK_KEY_LEN)
		goto out;
	dialback_hex(mac, maclen, out);
	rc = 0;
 out:
	OPENSSL_cleanse(md, sizeof(md));
	OPENSSL_cleanse(hexsecret, sizeof(hexsecret));
	return rc;
}

static bool
dialback_is_xml_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool
dialback_key_is_valid(const void *secret, size_t secret_len,
    const char *receiving, const char *originating, const char *stream_id,
    const char *key)
{
	char expected[DIALBACK_KEY_SIZE];
	size_t len;
	bool ok;

	if (key == NULL)
		return false;
	while (dialback_is_xml_space(*key))
		key++;
	len = strlen(key);
	while (len > 0 && dialback_is_xml_space(key[len - 1]))
		len--;
	if (dialback_key(secret, secret_len, receiving, originating,
	    stream_id, expected, sizeof(expected)) == -1)
		return false;
	ok = len == DIALBACK_KEY_LEN &&
	    CRYPTO_memcmp(expected, key, DIALBACK_KEY_LEN) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return ok;
}

int
dialback_stream_id(char *out, size_t outlen)
{
	unsigned char rnd[DIALBACK_STREAM_ID_LEN / 2];

	if (out == NULL || outlen < DIALBACK_STREAM_ID_SIZE)
		return -1;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	dialback_hex(rnd, sizeof(rnd), out);
	return 0;
}
