/*
 * crypto/jwk.c: public keys as JSON Web Keys (RFC 7517, RFC 7518 6,
 * RFC 8037), both ways: zt's keys out, and the verification keys of a JWK
 * Set in, each bound to the algorithms its type allows (RFC 8725 3.1).
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* EC_KEY: see ec_key() */
#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>

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
	if (EVP_PKEY_is_a(pub, "ED25519")) {
		uint8_t raw[32];
		size_t rl = sizeof raw;

		if (EVP_PKEY_get_raw_public_key(pub, raw, &rl) != 1 || rl != sizeof raw)
			return zt_crypto_err(e, ZT_ECRYPTO, "cannot read the Ed25519 public key");
		json_object_set_new(obj, "kty", json_string("OKP"));
		json_object_set_new(obj, "crv", json_string("Ed25519"));
		return set_b64url(obj, "x", raw, rl, e);
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

int zt_jwk_thumbprint(EVP_PKEY *pub, char out[44], zt_err *e)
{
	json_t *o = json_object();
	char *s = NULL;
	uint8_t h[32];
	zt_buf b;
	int r;

	/* RFC 7638 3.2-3.3: the required members only, sorted, no white space */
	if (!o)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	if ((r = zt_jwk_set_public(pub, o, e)) == 0 && !(s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)))
		r = zt_err_set(e, ZT_ENOMEM, "out of memory");
	json_decref(o);
	if (r != 0)
		return r;
	zt_sha256(s, strlen(s), h);
	free(s);
	zt_buf_init(&b, 64);
	if ((r = zt_base64_encode(h, sizeof h, 1, &b, e)) == 0)
		memcpy(out, b.p, 44); /* 43 characters and the NUL */
	zt_buf_free(&b, 0);
	return r;
}

/* ---- algorithms ---------------------------------------------------------- */

static const char *const jwa_names[ZT_JWA_COUNT] = {
	[ZT_JWA_ES256] = "ES256", [ZT_JWA_ES384] = "ES384", [ZT_JWA_ES512] = "ES512",
	[ZT_JWA_RS256] = "RS256", [ZT_JWA_RS384] = "RS384", [ZT_JWA_RS512] = "RS512",
	[ZT_JWA_PS256] = "PS256", [ZT_JWA_PS384] = "PS384", [ZT_JWA_PS512] = "PS512",
	[ZT_JWA_EDDSA] = "EdDSA",
	[ZT_JWA_HS256] = "HS256", [ZT_JWA_HS384] = "HS384", [ZT_JWA_HS512] = "HS512",
};

const char *zt_jwa_name(int alg)
{
	return alg > 0 && alg < ZT_JWA_COUNT ? jwa_names[alg] : "?";
}

int zt_jwa_from_name(const char *s)
{
	for (int a = 1; a < ZT_JWA_COUNT; a++)
		if (strcmp(s, jwa_names[a]) == 0)
			return a;
	return 0;
}

#define BIT(a) (1u << (a))
#define RSA_ALGS (BIT(ZT_JWA_RS256) | BIT(ZT_JWA_RS384) | BIT(ZT_JWA_RS512) | \
		  BIT(ZT_JWA_PS256) | BIT(ZT_JWA_PS384) | BIT(ZT_JWA_PS512))

/* RFC 7518 3.2: an HMAC key at least as long as the hash */
static size_t hmac_min(int alg)
{
	return alg == ZT_JWA_HS256 ? 32 : alg == ZT_JWA_HS384 ? 48 : 64;
}

/* ---- reading a set --------------------------------------------------------- */

/* Tags an error zt_crypto_err recorded with the rule that was broken. */
static void jwk_rule(zt_err *e, const char *rule)
{
	if (e)
		snprintf(e->rule, sizeof e->rule, "%s", rule);
}

/* A member decoded from base64url into out (cleared first); 0 when absent. */
static int b64_member(const json_t *k, const char *name, zt_buf *out, int *present, zt_err *e)
{
	const json_t *v = json_object_get(k, name);

	out->len = 0;
	*present = v != NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return zt_err_rule(e, ZT_EPARSE, "jwk-syntax", "JWK member \"%s\" is not a string", name);
	if (zt_base64_decode(json_string_value(v), json_string_length(v), 1, out, e) != 0) {
		zt_err_wrap(e, "JWK member \"%s\"", name);
		jwk_rule(e, "jwk-syntax");
		return -ZT_EPARSE;
	}
	return 0;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld, zt_err *e)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *k = NULL;

	if (!params || !c || EVP_PKEY_fromdata_init(c) <= 0 ||
	    EVP_PKEY_fromdata(c, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		EVP_PKEY_free(k);
		k = NULL;
		zt_crypto_err(e, ZT_EVERIFY, "the JWK is not a valid public key");
		jwk_rule(e, "jwk-key");
	}
	EVP_PKEY_CTX_free(c);
	OSSL_PARAM_free(params);
	return k;
}

/*
 * RFC 7518 6.2.1: an EC public key; x and y are each the whole field.
 * 0 and *out set, 1 for a curve zt does not know, or -code.
 */
static int ec_key(const json_t *k, const char *crv, uint32_t *algs, EVP_PKEY **out, zt_err *e)
{
	static const struct {
		const char *crv;
		int nid;
		size_t field;
		int alg;
	} curves[] = {{"P-256", NID_X9_62_prime256v1, 32, ZT_JWA_ES256},
		      {"P-384", NID_secp384r1, 48, ZT_JWA_ES384},
		      {"P-521", NID_secp521r1, 66, ZT_JWA_ES512}};
	uint8_t point[1 + 2 * 66];
	zt_buf x, y;
	EC_KEY *ec = NULL;
	EVP_PKEY *key = NULL;
	int px, py, r = -ZT_EPARSE;
	size_t i;

	for (i = 0; i < sizeof curves / sizeof curves[0]; i++)
		if (strcmp(crv, curves[i].crv) == 0)
			break;
	if (i == sizeof curves / sizeof curves[0])
		return 1;
	zt_buf_init(&x, 256);
	zt_buf_init(&y, 256);
	if (b64_member(k, "x", &x, &px, e) != 0 || b64_member(k, "y", &y, &py, e) != 0)
		goto out;
	if (!px || !py || x.len != curves[i].field || y.len != curves[i].field) {
		r = zt_err_rule(e, ZT_EPARSE, "jwk-syntax",
			    "EC JWK on %s needs \"x\" and \"y\" of %zu bytes each (RFC 7518 6.2.1)", crv,
			    curves[i].field);
		goto out;
	}
	point[0] = 0x04;
	memcpy(point + 1, x.p, x.len);
	memcpy(point + 1 + x.len, y.p, y.len);
	/*
	 * An EC_KEY, like the keys of certificates (ecfast.c): the provider's
	 * fromdata is not offered for EC once zt's built-in method is in force.
	 * oct2key refuses a point that is not on the curve (invalid-curve attacks).
	 */
	if (!(ec = EC_KEY_new_by_curve_name(curves[i].nid)) ||
	    EC_KEY_oct2key(ec, point, 1 + 2 * curves[i].field, NULL) != 1 || EC_KEY_check_key(ec) != 1) {
		r = zt_crypto_err(e, ZT_EVERIFY, "the EC JWK's point is not on its curve");
		jwk_rule(e, "jwk-key");
		goto out;
	}
	if (!(key = EVP_PKEY_new()) || EVP_PKEY_assign_EC_KEY(key, ec) != 1) {
		r = zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto out;
	}
	ec = NULL;
	*out = key;
	key = NULL;
	*algs = BIT(curves[i].alg);
	r = 0;
out:
	EC_KEY_free(ec);
	EVP_PKEY_free(key);
	zt_buf_free(&x, 0);
	zt_buf_free(&y, 0);
	return r;
}

/* RFC 7518 6.3.1: n and e, unsigned big-endian; 3.3: at least 2048 bits */
static EVP_PKEY *rsa_key(const json_t *k, int *weak, zt_err *e)
{
	zt_buf n, x;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *key = NULL;
	int pn, pe;

	zt_buf_init(&n, 2048);
	zt_buf_init(&x, 64);
	if (b64_member(k, "n", &n, &pn, e) != 0 || b64_member(k, "e", &x, &pe, e) != 0)
		goto out;
	if (!pn || !pe || n.len == 0 || x.len == 0 || n.p[0] == 0 || x.p[0] == 0) {
		zt_err_rule(e, ZT_EPARSE, "jwk-syntax",
			    "RSA JWK needs \"n\" and \"e\" without leading zero bytes (RFC 7518 6.3.1)");
		goto out;
	}
	if (n.len < 256 || n.len > 1024) { /* 2048 to 8192 bits */
		*weak = 1;
		goto out;
	}
	if (x.len > 8 || !(x.p[x.len - 1] & 1) || (x.len == 1 && x.p[0] < 3)) {
		zt_err_rule(e, ZT_EPARSE, "jwk-syntax", "RSA JWK has an unusable public exponent");
		goto out;
	}
	if (!(bn = BN_bin2bn(n.p, (int)n.len, NULL)) || !(be = BN_bin2bn(x.p, (int)x.len, NULL)) ||
	    !(bld = OSSL_PARAM_BLD_new()) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto out;
	}
	key = from_params("RSA", bld, e);
	if (key && EVP_PKEY_get_bits(key) < 2048) { /* 256 bytes may still be 2047 bits */
		EVP_PKEY_free(key);
		key = NULL;
		*weak = 1;
	}
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	zt_buf_free(&n, 0);
	zt_buf_free(&x, 0);
	return key;
}

/* RFC 8037 2: an Ed25519 public key is 32 bytes in "x" */
static EVP_PKEY *okp_key(const json_t *k, zt_err *e)
{
	EVP_PKEY *key = NULL;
	zt_buf x;
	int px;

	zt_buf_init(&x, 256);
	if (b64_member(k, "x", &x, &px, e) == 0) {
		if (!px || x.len != 32)
			zt_err_rule(e, ZT_EPARSE, "jwk-syntax", "Ed25519 JWK needs \"x\" of 32 bytes (RFC 8037 2)");
		else if (!(key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x.p, x.len))) {
			zt_crypto_err(e, ZT_EVERIFY, "the Ed25519 JWK is not a valid public key");
			jwk_rule(e, "jwk-key");
		}
	}
	zt_buf_free(&x, 0);
	return key;
}

static int grow(zt_jwks *set, zt_err *e)
{
	zt_jwk *k;

	if (set->n >= ZT_JWKS_MAX_KEYS)
		return zt_err_rule(e, ZT_ELIMIT, "jwks-size", "a JWK Set may hold at most %d usable keys",
				   ZT_JWKS_MAX_KEYS);
	if (!(k = realloc(set->keys, (set->n + 1) * sizeof *k)))
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	set->keys = k;
	memset(&k[set->n], 0, sizeof k[set->n]);
	return 0;
}

static int set_kid(zt_jwk *k, const char *kid, zt_err *e)
{
	size_t n;

	if (!kid)
		return 0;
	if ((n = strlen(kid)) > ZT_JWK_KID_MAX)
		return zt_err_rule(e, ZT_ELIMIT, "jwk-syntax", "a kid is at most %d bytes", ZT_JWK_KID_MAX);
	memcpy(k->kid, kid, n + 1);
	k->has_kid = 1;
	return 0;
}

/*
 * RFC 7517 4.2-4.3: a key for signatures says so, or says nothing; in a
 * SPIFFE bundle (Trust Domain and Bundle 4.2.2) a JWT authority is "use":
 * "jwt-svid" (an "x509-svid" key is a CA certificate's, never a JWS key's).
 */
static int for_verifying(const json_t *k)
{
	const json_t *use = json_object_get(k, "use"), *ops = json_object_get(k, "key_ops"), *op;
	size_t i;

	if (use && (!json_is_string(use) || (strcmp(json_string_value(use), "sig") != 0 &&
					     strcmp(json_string_value(use), "jwt-svid") != 0)))
		return 0;
	if (!ops)
		return 1;
	if (!json_is_array(ops))
		return 0;
	json_array_foreach (ops, i, op)
		if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
			return 1;
	return 0;
}

static int add_one(const json_t *k, int flags, zt_jwks *set, zt_err *e)
{
	const json_t *kty = json_object_get(k, "kty"), *alg = json_object_get(k, "alg"),
		     *kid = json_object_get(k, "kid"), *crv = json_object_get(k, "crv");
	const char *t;
	uint32_t algs = 0;
	EVP_PKEY *pkey = NULL;
	zt_buf secret;
	int a = 0, weak = 0, r, present;

	if (!json_is_object(k) || !json_is_string(kty))
		return zt_err_rule(e, ZT_EPARSE, "jwk-syntax", "a JWK is an object with a string \"kty\"");
	if ((kid && !json_is_string(kid)) || (alg && !json_is_string(alg)) || (crv && !json_is_string(crv)))
		return zt_err_rule(e, ZT_EPARSE, "jwk-syntax", "JWK members kid, alg and crv are strings");
	if (kid && json_string_length(kid) > ZT_JWK_KID_MAX)
		return zt_err_rule(e, ZT_ELIMIT, "jwk-syntax", "a kid is at most %d bytes", ZT_JWK_KID_MAX);
	if (alg && !(a = zt_jwa_from_name(json_string_value(alg))))
		goto skip; /* an algorithm zt does not verify (or an encryption key's) */
	if (!for_verifying(k))
		goto skip;
	t = json_string_value(kty);
	if (strcmp(t, "EC") == 0) {
		if (!crv)
			return zt_err_rule(e, ZT_EPARSE, "jwk-syntax", "EC JWK without \"crv\"");
		if ((r = ec_key(k, json_string_value(crv), &algs, &pkey, e)) < 0)
			return r;
		if (r > 0)
			goto skip;
	} else if (strcmp(t, "RSA") == 0) {
		if (!(pkey = rsa_key(k, &weak, e))) {
			if (weak)
				goto skip;
			return -ZT_EPARSE;
		}
		algs = RSA_ALGS;
	} else if (strcmp(t, "OKP") == 0) {
		if (!crv || strcmp(json_string_value(crv), "Ed25519") != 0)
			goto skip;
		if (!(pkey = okp_key(k, e)))
			return -ZT_EPARSE;
		algs = BIT(ZT_JWA_EDDSA);
	} else if (strcmp(t, "oct") == 0) {
		if (!(flags & ZT_JWKS_ALLOW_OCT))
			goto skip;
		zt_buf_init(&secret, 1024);
		if ((r = b64_member(k, "k", &secret, &present, e)) != 0) {
			zt_buf_free(&secret, 1);
			return r;
		}
		r = 0;
		for (int h = ZT_JWA_HS256; h <= ZT_JWA_HS512; h++)
			if ((!a || a == h) && secret.len >= hmac_min(h)) {
				if ((r = zt_jwks_add_secret(set, secret.p, secret.len,
							    kid ? json_string_value(kid) : NULL, h, e)) != 0)
					break;
				present = -1; /* added */
			}
		zt_buf_free(&secret, 1);
		if (r != 0)
			return r;
		if (present != -1)
			goto skip;
		return 0;
	} else {
		goto skip;
	}
	if (a && !(algs & BIT(a))) { /* "alg" that the key type cannot do */
		EVP_PKEY_free(pkey);
		goto skip;
	}
	r = zt_jwks_add_pkey(set, pkey, kid ? json_string_value(kid) : NULL, a, e);
	EVP_PKEY_free(pkey);
	return r;
skip:
	set->skipped++;
	return 0;
}

int zt_jwks_from_json(const json_t *v, int flags, zt_jwks *set, zt_err *e)
{
	const json_t *keys, *k;
	size_t i;
	int r;

	if (!json_is_object(v))
		return zt_err_rule(e, ZT_EPARSE, "jwk-syntax", "a JWK Set is a JSON object");
	if (!(keys = json_object_get(v, "keys")))
		return add_one(v, flags, set, e); /* a single JWK */
	if (!json_is_array(keys))
		return zt_err_rule(e, ZT_EPARSE, "jwk-syntax", "a JWK Set's \"keys\" is an array (RFC 7517 5.1)");
	json_array_foreach (keys, i, k)
		if ((r = add_one(k, flags, set, e)) != 0)
			return zt_err_wrap(e, "key %zu of the JWK Set", i);
	return 0;
}

int zt_jwks_parse(const char *text, size_t len, int flags, zt_jwks *set, zt_err *e)
{
	json_t *v;
	int r;

	if (len > ZT_JWKS_MAX_BYTES)
		return zt_err_rule(e, ZT_ELIMIT, "jwks-size", "a JWK Set is at most %d bytes",
				   ZT_JWKS_MAX_BYTES);
	if (!(v = zt_json_parse(text, len, e))) {
		zt_err_wrap(e, "JWK Set");
		jwk_rule(e, "jwk-syntax");
		return -ZT_EPARSE;
	}
	r = zt_jwks_from_json(v, flags, set, e);
	json_decref(v);
	return r;
}

int zt_jwks_add_pkey(zt_jwks *set, EVP_PKEY *pub, const char *kid, int alg, zt_err *e)
{
	uint32_t algs;
	int r;

	if (EVP_PKEY_is_a(pub, "RSA"))
		algs = EVP_PKEY_get_bits(pub) >= 2048 ? RSA_ALGS : 0;
	else if (EVP_PKEY_is_a(pub, "ED25519"))
		algs = BIT(ZT_JWA_EDDSA);
	else if (EVP_PKEY_is_a(pub, "EC"))
		algs = BIT(zt_jwa_for_key(pub)) & (BIT(ZT_JWA_ES256) | BIT(ZT_JWA_ES384) | BIT(ZT_JWA_ES512));
	else
		algs = 0;
	if (alg)
		algs &= BIT(alg);
	if (!algs)
		return zt_err_rule(e, ZT_EINVAL, "jwk-alg", "the key cannot verify %s signatures",
				   alg ? zt_jwa_name(alg) : "JWS");
	if ((r = grow(set, e)) != 0 || (r = set_kid(&set->keys[set->n], kid, e)) != 0)
		return r;
	if (!EVP_PKEY_up_ref(pub))
		return zt_crypto_err(e, ZT_ECRYPTO, "cannot keep the key");
	set->keys[set->n].pkey = pub;
	set->keys[set->n].algs = algs;
	set->n++;
	return 0;
}

int zt_jwks_add_secret(zt_jwks *set, const uint8_t *k, size_t n, const char *kid, int alg, zt_err *e)
{
	zt_jwk *j;
	int r;

	if (alg < ZT_JWA_HS256 || alg > ZT_JWA_HS512)
		return zt_err_rule(e, ZT_EINVAL, "jwk-alg", "a secret verifies HS256, HS384 or HS512 only");
	if (n < hmac_min(alg) || n > 1024)
		return zt_err_rule(e, ZT_EINVAL, "jwk-weak",
				   "an %s secret has %zu to 1024 bytes (RFC 7518 3.2)", zt_jwa_name(alg),
				   hmac_min(alg));
	if ((r = grow(set, e)) != 0)
		return r;
	j = &set->keys[set->n];
	if ((r = set_kid(j, kid, e)) != 0)
		return r;
	if (!(j->secret = malloc(n)))
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	memcpy(j->secret, k, n);
	j->secret_len = n;
	j->algs = BIT(alg);
	set->n++;
	return 0;
}

void zt_jwks_free(zt_jwks *set)
{
	for (size_t i = 0; i < set->n; i++) {
		EVP_PKEY_free(set->keys[i].pkey);
		if (set->keys[i].secret) {
			OPENSSL_cleanse(set->keys[i].secret, set->keys[i].secret_len);
			free(set->keys[i].secret);
		}
	}
	free(set->keys);
	memset(set, 0, sizeof *set);
}
