/* crypto/build.c: building and signing X.509 v3 certificates. */
#include "crypto.h"

#include <openssl/x509v3.h>

X509 *zt_x509_start(EVP_PKEY *pub, int64_t not_before, int64_t not_after, zt_err *e)
{
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	X509 *x = NULL;

	if (not_after <= not_before) {
		zt_err_set(e, ZT_EINVAL, "certificate would expire before it starts");
		return NULL;
	}
	if (zt_random(serial, sizeof serial, e) != 0)
		return NULL;
	serial[0] &= 0x7f; /* positive */
	serial[0] |= 0x40; /* and always 16 octets long: no leading zero trimmed */
	x = X509_new();
	if (!x || !X509_set_version(x, X509_VERSION_3) ||
	    !(bn = BN_bin2bn(serial, sizeof serial, NULL)) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) ||
	    !X509_set_pubkey(x, pub)) {
		zt_crypto_err(e, ZT_ECRYPTO, "cannot build the certificate");
		X509_free(x);
		x = NULL;
	}
	BN_free(bn);
	return x;
}

int zt_x509_add_ext_der(X509 *x, int nid, int critical, const uint8_t *der,
			size_t len, zt_err *e)
{
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	int r = 0;

	if (!os || !ASN1_OCTET_STRING_set(os, der, (int)len) ||
	    !(ext = X509_EXTENSION_create_by_NID(NULL, nid, critical, os)) ||
	    !X509_add_ext(x, ext, -1))
		r = zt_crypto_err(e, ZT_ECRYPTO, "cannot add a certificate extension");
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	return r;
}

int zt_x509_sign(X509 *x, EVP_PKEY *key, zt_err *e)
{
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		return zt_crypto_err(e, ZT_ECRYPTO, "cannot sign the certificate");
	return 0;
}
