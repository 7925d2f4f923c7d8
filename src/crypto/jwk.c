/* crypto/jwk.c: public keys as JSON Web Keys (RFC 7517, RFC 7518 6). */
#include "crypto.h"

#include <string.h>

#include <openssl/core_names.h>

static int set_b64url(json_t *obj, const char *name, const uint8_t *bytes, size_t n, zt_err *e)
{
	zt_buf b;
	int r;

	zt_buf_init(&b, 4096);
	if ((r = zt_base64_encode(bytes, n, 1, &b, e)) == 0)
		json_object_set_new(obj, name, json_string((const char *)b.p));
	zt_buf_free(&b, 0);
	return r;
}

static int set_b64url_bn(json_t *obj, const char *name, EVP_PKEY *pub, const char *param, zt_err *e)
{
	BIGNUM *bn = NULL;
	uint8_t bytes[1024];
	int n;

	if (!EVP_PKEY_get_bn_param(pub, param, &bn))
		return zt_crypto_err(e, ZT_ECRYPTO, "cannot read the public key");
	n = BN_num_bytes(bn) <= (int)sizeof bytes ? BN_bn2bin(bn, bytes) : -1;
	BN_free(bn);
	if (n <= 0)
		return zt_err_set(e, ZT_ECRYPTO, "public key parameter too large");
	return set_b64url(obj, name, bytes, (size_t)n, e);
}

int zt_jwk_set_public(EVP_PKEY *pub, json_t *obj, zt_err *e)
{
	char group[64];
	uint8_t point[1 + 2 * 66];
	size_t glen = 0, plen = 0;
	const char *crv;
	size_t field;
	int r;

	if (EVP_PKEY_is_a(pub, "RSA")) {
		json_object_set_new(obj, "kty", json_string("RSA"));
		if ((r = set_b64url_bn(obj, "n", pub, OSSL_PKEY_PARAM_RSA_N, e)) != 0)
			return r;
		return set_b64url_bn(obj, "e", pub, OSSL_PKEY_PARAM_RSA_E, e);
	}
	if (!EVP_PKEY_is_a(pub, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group,
					    sizeof group, &glen))
		return zt_err_set(e, ZT_EINVAL, "unsupported key type for a JWK");
	if (strcmp(group, "prime256v1") == 0) {
		crv = "P-256";
		field = 32;
	} else if (strcmp(group, "secp384r1") == 0) {
		crv = "P-384";
		field = 48;
	} else if (strcmp(group, "secp521r1") == 0) {
		crv = "P-521";
		field = 66;
	} else {
		return zt_err_set(e, ZT_EINVAL, "unsupported elliptic curve %.40s for a JWK", group);
	}
	/* RFC 7518 6.2.1.2-3: x and y, each the full field length */
	if ((r = zt_key_ec_point(pub, point, sizeof point, &plen, e)) != 0)
		return r;
	if (plen != 1 + 2 * field || point[0] != 0x04)
		return zt_err_set(e, ZT_EINVAL, "the EC public key is not an uncompressed point");
	json_object_set_new(obj, "kty", json_string("EC"));
	json_object_set_new(obj, "crv", json_string(crv));
	if ((r = set_b64url(obj, "x", point + 1, field, e)) != 0)
		return r;
	return set_b64url(obj, "y", point + 1 + field, field, e);
}
