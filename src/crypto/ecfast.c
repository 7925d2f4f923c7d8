/*
 * crypto/ecfast.c: keeps OpenSSL 3.0's decoder framework out of the hot path
 * for EC public keys.
 *
 * OpenSSL 3.0 decodes the public key of every certificate it parses
 * (d2i_X509, so every certificate a peer sends in a handshake) through
 * OSSL_DECODER_CTX_new_for_pkey, which walks every key manager and decoder
 * of every provider: about 200 us per certificate on this machine, more than
 * an ECDSA signature and verification together. x509_pubkey_decode takes the
 * direct, pre-3.0 route (the EC ASN.1 method's pub_decode: one
 * o2i_ECPublicKey, which checks that the point is on the curve) when an
 * ENGINE implements the key type. So zt registers, once, an ENGINE whose
 * only method is a copy of OpenSSL's own built-in EC key method: the same
 * code that signs and verifies, reached without the provider lookups.
 * Measured: 230 us -> 41 us per P-256 certificate parsed (bench/, and the
 * closing note of issue 4). RSA, Ed25519 and X25519 keys are untouched.
 *
 * The ENGINE API is deprecated in OpenSSL 3 but present in Debian's build;
 * when it is missing this file does nothing and zt is only slower.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "crypto.h"

#include <pthread.h>

#include <openssl/ec.h>

#include <openssl/opensslconf.h>
#ifndef OPENSSL_NO_ENGINE
#include <openssl/engine.h>
#endif

#ifndef OPENSSL_NO_ENGINE
static EVP_PKEY_METHOD *ec_meth;
static const int ec_nids[] = { EVP_PKEY_EC };
static int installed;

static int pkey_meths(ENGINE *eng, EVP_PKEY_METHOD **pm, const int **nids, int nid)
{
	(void)eng;
	if (!pm) {
		*nids = ec_nids;
		return 1;
	}
	*pm = nid == EVP_PKEY_EC ? ec_meth : NULL;
	return *pm != NULL;
}

static void install(void)
{
	const EVP_PKEY_METHOD *builtin = EVP_PKEY_meth_find(EVP_PKEY_EC);
	ENGINE *eng;

	if (!builtin || !(ec_meth = EVP_PKEY_meth_new(EVP_PKEY_EC, 0)))
		return;
	EVP_PKEY_meth_copy(ec_meth, builtin);
	if (!(eng = ENGINE_new()))
		return;
	if (ENGINE_set_id(eng, "zt-ec") && ENGINE_set_name(eng, "zt: built-in EC keys, no decoder lookups") &&
	    ENGINE_set_pkey_meths(eng, pkey_meths) && ENGINE_register_pkey_meths(eng) &&
	    ENGINE_add(eng))
		installed = 1;
	/*
	 * The engine list now holds it (and frees it and ec_meth at exit); an
	 * engine registered without ENGINE_add is freed twice by
	 * OPENSSL_cleanup in 3.0.
	 */
	ENGINE_free(eng);
	ERR_clear_error();
}
#endif

EVP_PKEY *zt_key_builtin(EVP_PKEY *key)
{
#ifndef OPENSSL_NO_ENGINE
	EC_KEY *ec;
	EVP_PKEY *out;

	/*
	 * A provider key would meet the built-in method in every EVP_PKEY_CTX
	 * (OpenSSL picks the method by key type) and some operations refuse
	 * that mix, so keys zt loads are moved over when the method is on.
	 */
	if (!installed || !key || !EVP_PKEY_get0_provider(key) || !EVP_PKEY_is_a(key, "EC"))
		return key;
	if (!(ec = EVP_PKEY_get1_EC_KEY(key)))
		return key;
	if (!(out = EVP_PKEY_new()) || !EVP_PKEY_assign_EC_KEY(out, ec)) {
		EVP_PKEY_free(out);
		EC_KEY_free(ec);
		return key;
	}
	EVP_PKEY_free(key);
	return out;
#else
	return key;
#endif
}

int zt_crypto_init(void)
{
#ifndef OPENSSL_NO_ENGINE
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, install);
	return installed;
#else
	return 0;
#endif
}
