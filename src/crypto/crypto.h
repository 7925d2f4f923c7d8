/*
 * crypto: the keys, certificates and primitives zt uses, on OpenSSL 3.
 *
 * This module knows X.509 and PEM but not SPIFFE: the SVID profile lives in
 * identity. Every parser here takes explicit lengths, consumes its whole
 * input, and caps counts, so callers can hand it bytes from the network.
 * OpenSSL's own reasons are carried into zt_err messages.
 */
#ifndef ZT_CRYPTO_H
#define ZT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/core.h"

#define ZT_PEM_MAX_BYTES (1u << 20) /* a certificate or key file */
#define ZT_CHAIN_MAX_CERTS 16       /* certificates in one chain or file */

/*
 * Call once at start, before any certificate is parsed: routes EC public keys
 * around OpenSSL 3.0's per-certificate decoder lookups (ecfast.c). 1 if in
 * force, 0 if this OpenSSL has no ENGINE support (zt then works, slower).
 */
int zt_crypto_init(void);
/*
 * Hands back an EC key that uses the built-in method when zt_crypto_init put
 * it in force (the same key; the argument is consumed), else `key` itself.
 */
EVP_PKEY *zt_key_builtin(EVP_PKEY *key);

/* Records `what` plus the newest OpenSSL error reason; clears the queue. */
int zt_crypto_err(zt_err *e, int code, const char *what);

/* ---- keys ---------------------------------------------------------------- */

/* A new ECDSA P-256 key. Caller frees (EVP_PKEY_free); NULL on error. */
EVP_PKEY *zt_key_generate(zt_err *e);

/* Parses one private key in PEM (PKCS#8 or traditional). Caller frees. */
EVP_PKEY *zt_key_parse_pem(const uint8_t *pem, size_t len, zt_err *e);
/* Reads a private key file, plain PEM or sealed (zt_key_store). Caller frees. */
EVP_PKEY *zt_key_load(const char *path, zt_err *e);

/*
 * Writes the private key as PKCS#8 PEM with mode 0600, for a key handed to
 * a workload or another program. Refuses to replace an existing file (a
 * key is never silently lost).
 */
int zt_key_save(const char *path, EVP_PKEY *key, zt_err *e) ZT_MUST_CHECK;
/* Appends the private key as PKCS#8 PEM to out (a secret: free out with zt_buf_free(out, 1)). */
int zt_key_to_pem(EVP_PKEY *key, zt_buf *out, zt_err *e) ZT_MUST_CHECK;
/*
 * As zt_key_save, for a key zt itself keeps (a CA's): sealed under the
 * process's key-encryption key when one is set (seal.c), so that it is
 * never at rest in the clear.
 */
int zt_key_store(const char *path, EVP_PKEY *key, zt_err *e) ZT_MUST_CHECK;

/* 1 if the certificate's public key is the public half of key. */
int zt_key_matches_cert(EVP_PKEY *key, X509 *cert);

/*
 * The public point of an EC key as SEC1 bytes (04 || X || Y for the keys zt
 * makes), read from its SubjectPublicKeyInfo, so it works for keys from the
 * built-in EC method (ecfast.c) as for provider keys. *len is set.
 */
int zt_key_ec_point(EVP_PKEY *key, uint8_t *out, size_t cap, size_t *len,
		    zt_err *e) ZT_MUST_CHECK;

/* ---- certificates -------------------------------------------------------- */

/* Parses exactly one DER certificate filling all `len` bytes. Caller frees. */
X509 *zt_cert_parse_der(const uint8_t *der, size_t len, zt_err *e);

/*
 * Parses a PEM file's CERTIFICATE blocks, in order (other block types are
 * an error, so a key pasted in by mistake is reported, not ignored). At most
 * ZT_CHAIN_MAX_CERTS. *out is set to a new stack the caller frees with
 * sk_X509_pop_free(*out, X509_free).
 */
int zt_certs_parse_pem(const uint8_t *pem, size_t len, STACK_OF(X509) **out,
		       zt_err *e) ZT_MUST_CHECK;

/* Reads certificates from a file: PEM, or a single DER certificate. */
int zt_certs_load(const char *path, STACK_OF(X509) **out, zt_err *e) ZT_MUST_CHECK;

/* Appends the certificates as PEM to out. */
int zt_certs_to_pem(STACK_OF(X509) *certs, zt_buf *out, zt_err *e) ZT_MUST_CHECK;

/* Writes certificates as PEM (mode 0644), replacing the file atomically. */
int zt_certs_save(const char *path, STACK_OF(X509) *certs, zt_err *e) ZT_MUST_CHECK;

/* notBefore/notAfter as seconds since the epoch. */
int zt_cert_times(const X509 *cert, int64_t *not_before, int64_t *not_after);

/* The certificate's DER encoding, newly allocated: caller frees *der with
 * OPENSSL_free. */
int zt_cert_der(X509 *cert, uint8_t **der, size_t *len);

/* SHA-256 of the DER encoding, as 64 lowercase hex digits plus NUL. */
void zt_cert_fingerprint(X509 *cert, char out[65]);

/*
 * Checks cert's signature with issuer's public key: 1 valid, 0 invalid.
 * ecdsa-with-SHA256 goes through a verification context prepared once per
 * issuer key and kept per thread (OpenSSL 3 otherwise pays a per-context
 * setup on every check), and a good result is remembered (zt_crypto_sigcache);
 * other algorithms go through X509_verify. The
 * signature algorithm inside and outside the TBS must agree (RFC 5280
 * 4.1.1.2).
 */
int zt_cert_check_signature(X509 *cert, X509 *issuer);

/* Frees this thread's prepared verification contexts (certificates and JWS). */
void zt_crypto_thread_cleanup(void);

/*
 * Signatures that verified are remembered per thread (by SHA-256 of the
 * issuer key and the whole certificate), so a shared signing CA or an SVID
 * seen again costs a hash, not an ECDSA verification. On by default; off
 * (and emptied) for measuring the cold cost.
 */
void zt_crypto_sigcache(int on);

/* ---- building certificates ----------------------------------------------- */

/*
 * A new X.509 v3 certificate for `pub` with a random, positive 128-bit
 * serial (RFC 5280 4.1.2.2: at most 20 octets) and the given validity.
 * Caller frees (X509_free).
 */
X509 *zt_x509_start(EVP_PKEY *pub, int64_t not_before, int64_t not_after, zt_err *e);

/* Adds an extension from its DER value. */
int zt_x509_add_ext_der(X509 *x, int nid, int critical, const uint8_t *der,
			size_t len, zt_err *e) ZT_MUST_CHECK;

/* Subject key identifier (RFC 5280 4.2.1.2 method 1: SHA-1 of the key bits). */
int zt_key_id(EVP_PKEY *pub, uint8_t out[20], zt_err *e) ZT_MUST_CHECK;

/* Signs with ECDSA and SHA-256. */
int zt_x509_sign(X509 *x, EVP_PKEY *key, zt_err *e) ZT_MUST_CHECK;

/*
 * Adds the public key's JWK members (RFC 7518 6: kty, crv, x, y for EC
 * P-256/384/521; kty, n, e for RSA; RFC 8037 2: kty OKP, crv, x for
 * Ed25519) to obj.
 */
int zt_jwk_set_public(EVP_PKEY *pub, json_t *obj, zt_err *e) ZT_MUST_CHECK;

/* ---- JOSE: JSON Web Keys, compact JWS, JWT claims (jwk.c, jws.c, jwt.c) ---- */

/* RFC 7638 JWK thumbprint of pub (SHA-256, base64url, 43 chars + NUL): zt's key IDs. */
int zt_jwk_thumbprint(EVP_PKEY *pub, char out[44], zt_err *e) ZT_MUST_CHECK;

/* The JWS algorithms zt knows (RFC 7518 3.1, RFC 8037 3.1); 0 is none. */
enum zt_jwa {
	ZT_JWA_ES256 = 1, ZT_JWA_ES384, ZT_JWA_ES512,
	ZT_JWA_RS256, ZT_JWA_RS384, ZT_JWA_RS512,
	ZT_JWA_PS256, ZT_JWA_PS384, ZT_JWA_PS512,
	ZT_JWA_EDDSA,
	ZT_JWA_HS256, ZT_JWA_HS384, ZT_JWA_HS512,
	ZT_JWA_COUNT
};
/* "ES256"...; "?" for anything else. */
const char *zt_jwa_name(int alg);
/* The algorithm named by s (exact, case-sensitive); 0 if unknown or "none". */
int zt_jwa_from_name(const char *s);

#define ZT_JWK_KID_MAX 256
#define ZT_JWKS_MAX_KEYS 64
#define ZT_JWKS_MAX_BYTES (256 * 1024)

/*
 * A key that verifies JWS signatures. RFC 8725 3.1: the algorithm is fixed
 * by the key, never chosen by the token: `algs` is the set (bit 1 << alg)
 * its kty and crv allow, narrowed to one by the JWK's "alg".
 */
typedef struct zt_jwk {
	char kid[ZT_JWK_KID_MAX + 1];
	int has_kid;
	uint32_t algs;
	EVP_PKEY *pkey;  /* asymmetric public key, or NULL */
	uint8_t *secret; /* HMAC key ("oct"), or NULL */
	size_t secret_len;
} zt_jwk;

typedef struct zt_jwks {
	zt_jwk *keys;
	size_t n;
	size_t skipped; /* keys in the set that cannot verify signatures */
} zt_jwks;

/* zt_jwks_parse flags */
#define ZT_JWKS_ALLOW_OCT 1 /* accept symmetric keys: only for locally configured secrets */

/*
 * Parses a JWK Set ({"keys":[...]}) or a single JWK (RFC 7517) into
 * verification keys, appending to *set (zero it first). Keys that cannot
 * verify here are skipped and counted, not errors: "use" other than "sig"
 * (or a SPIFFE bundle's "jwt-svid"),
 * "key_ops" without "verify", unknown kty/crv/alg, "alg" that does not fit
 * the key type, RSA below 2048 bits, "oct" unless allowed (and shorter than
 * its hash). Malformed members of a key zt would use (bad base64url, wrong
 * coordinate length, a point off the curve) fail the whole set. Private
 * members are ignored.
 */
int zt_jwks_parse(const char *text, size_t len, int flags, zt_jwks *set, zt_err *e) ZT_MUST_CHECK;
int zt_jwks_from_json(const json_t *v, int flags, zt_jwks *set, zt_err *e) ZT_MUST_CHECK;
/* Adds a public key (EC P-256/384/521, RSA, Ed25519) with an optional kid; alg 0: all the key allows. */
int zt_jwks_add_pkey(zt_jwks *set, EVP_PKEY *pub, const char *kid, int alg, zt_err *e) ZT_MUST_CHECK;
/* Adds an HMAC secret (at least as long as alg's hash) for HS256/384/512. */
int zt_jwks_add_secret(zt_jwks *set, const uint8_t *k, size_t n, const char *kid, int alg,
		       zt_err *e) ZT_MUST_CHECK;
void zt_jwks_free(zt_jwks *set);

#define ZT_JWS_MAX_DEFAULT 16384 /* bytes of a compact JWS accepted by default */

/* A verified compact JWS. */
typedef struct zt_jws {
	json_t *header;     /* the protected header */
	int alg;
	zt_buf payload;     /* decoded, NUL-terminated */
	const zt_jwk *key;  /* the key of the set that verified it */
} zt_jws;

/*
 * Verifies a JWS in compact serialization (RFC 7515 7.1) against keys.
 * Strict: exactly three base64url parts without padding or white space,
 * canonical encodings, at most max_len bytes (0: ZT_JWS_MAX_DEFAULT), a
 * JSON object header with a known "alg" ("none" never) that the key
 * allows, no "crit" (zt understands no extension: RFC 7515 4.1.11), and
 * keys only from the set: "jku", "jwk", "x5u", "x5c" are ignored
 * (RFC 8725 3.10). With a "kid" only keys with that kid are tried (none:
 * the error's rule is "jws-unknown-kid", so a caller may refresh its set);
 * without one, at most 4 keys that allow alg. Errors carry a rule tag
 * ("jws-syntax", "jws-alg", "jws-crit", "jws-no-key", "jws-signature", ...).
 */
int zt_jws_verify(const char *tok, size_t len, const zt_jwks *keys, size_t max_len, zt_jws *out,
		  zt_err *e) ZT_MUST_CHECK;
void zt_jws_free(zt_jws *j);

/* The algorithm zt signs with for key: ES256/384/512 by curve, EdDSA, RS256; 0 if none. */
int zt_jwa_for_key(EVP_PKEY *key);
/*
 * Appends the compact JWS of payload signed with key (alg from
 * zt_jwa_for_key) and header {"alg", "kid" if given, "typ" if given} to out.
 */
int zt_jws_sign(EVP_PKEY *key, const char *kid, const char *typ, const uint8_t *payload, size_t n,
		zt_buf *out, zt_err *e) ZT_MUST_CHECK;

/* What a JWT must satisfy beyond its signature (RFC 7519 4.1, RFC 8725 3.8-3.9). */
typedef struct zt_jwt_rules {
	const char *issuer;           /* "iss" must equal it exactly; NULL: any (not for end users) */
	const char *const *audiences; /* NULL-terminated; "aud" must name one; NULL: not checked */
	int64_t now;                  /* Unix seconds; 0: the clock */
	int64_t leeway;               /* seconds of clock skew allowed on exp, nbf, iat; < 0: 60 */
	int exp_optional;             /* accept a token without "exp" (default: required) */
	size_t max_len;               /* 0: ZT_JWS_MAX_DEFAULT */
} zt_jwt_rules;

typedef struct zt_jwt {
	zt_jws jws;
	json_t *claims; /* the payload: a JSON object */
	const char *iss, *sub; /* borrowed from claims; NULL when absent */
	int64_t exp;    /* 0 when absent */
} zt_jwt;

/*
 * Verifies a signed JWT: zt_jws_verify, then the payload as a JSON object
 * (no duplicate members, bounded nesting), then the claims: iss exact, aud
 * (a string or an array of strings) against rules->audiences, exp/nbf/iat
 * as NumericDates with leeway, sub a string. Rule tags: "jwt-claims",
 * "jwt-iss", "jwt-aud", "jwt-exp", "jwt-nbf", "jwt-iat", plus zt_jws_verify's.
 */
int zt_jwt_verify(const char *tok, size_t len, const zt_jwks *keys, const zt_jwt_rules *rules,
		  zt_jwt *out, zt_err *e) ZT_MUST_CHECK;
void zt_jwt_free(zt_jwt *t);
/* Appends the JWT of claims (a JSON object) signed with key, typ "JWT". */
int zt_jwt_sign(EVP_PKEY *key, const char *kid, const json_t *claims, zt_buf *out,
		zt_err *e) ZT_MUST_CHECK;

/* ---- writing certificates fast ------------------------------------------- */

/*
 * OpenSSL 3.0 re-runs its encoder and decoder machinery for every public
 * key it sets or parses (hundreds of microseconds, more than the signature
 * itself), so the issuing hot path writes DER directly: a fixed layout,
 * RFC 5280 4.1, and one prepared signing context.
 */

/* An ECDSA P-256 / SHA-256 signing context, prepared once. One per thread. */
typedef struct zt_signer zt_signer;

/* Takes its own reference to key, which must be an EC P-256 private key. */
zt_signer *zt_signer_new(EVP_PKEY *key, zt_err *e);
void zt_signer_free(zt_signer *s);

/* DER: tag, length, content. */
int zt_der_put(zt_buf *b, uint8_t tag, const void *content, size_t len, zt_err *e) ZT_MUST_CHECK;

/* DER: one Extension (RFC 5280 4.1) with an OID given as its DER content bytes. */
int zt_der_ext(zt_buf *b, const uint8_t *oid, size_t oid_len, int critical,
	       const uint8_t *value, size_t value_len, zt_err *e) ZT_MUST_CHECK;

/*
 * A public key ready to be certified: its SubjectPublicKeyInfo DER and key
 * identifier (RFC 5280 4.2.1.2 method 1), computed once.
 */
typedef struct zt_pubkey zt_pubkey;

/* From a key (written directly for EC P-256). Takes its own reference. */
zt_pubkey *zt_pubkey_from_pkey(EVP_PKEY *pkey, zt_err *e);
void zt_pubkey_free(zt_pubkey *pk);
EVP_PKEY *zt_pubkey_pkey(const zt_pubkey *pk);                 /* borrowed */
const uint8_t *zt_pubkey_spki(const zt_pubkey *pk, size_t *len); /* borrowed */
const uint8_t *zt_pubkey_id(const zt_pubkey *pk);              /* 20 bytes */

typedef struct zt_certw {
	const uint8_t *issuer;  /* Name, DER */
	size_t issuer_len;
	const uint8_t *subject; /* Name, DER; NULL for an empty subject */
	size_t subject_len;
	int64_t not_before, not_after;
	const uint8_t *spki;    /* SubjectPublicKeyInfo, DER */
	size_t spki_len;
	const uint8_t *exts;    /* Extension DERs, concatenated */
	size_t exts_len;
	uint8_t *serial_out;    /* optional: receives the 16-byte serial number */
} zt_certw;

/* Appends a v3 certificate, signed by s, with a random positive 128-bit serial. */
int zt_certw_sign(const zt_certw *c, zt_signer *s, zt_buf *out, zt_err *e) ZT_MUST_CHECK;

/* Length of the DER element at the start of p, or 0 if it is malformed. */
size_t zt_der_elem_len(const uint8_t *p, size_t len);

/* Parses concatenated DER certificates (at most ZT_CHAIN_MAX_CERTS). */
int zt_certs_parse_der(const uint8_t *der, size_t len, STACK_OF(X509) **out,
		       zt_err *e) ZT_MUST_CHECK;

/* Appends concatenated DER certificates to out as PEM CERTIFICATE blocks. */
int zt_der_certs_to_pem(const uint8_t *der, size_t len, zt_buf *out, zt_err *e) ZT_MUST_CHECK;

/* ---- certificate signing requests ---------------------------------------- */

/*
 * Parses a PKCS#10 request (PEM or DER), checks its self-signature (proof of
 * possession) and returns its public key, taken as the request carries it.
 * Everything else the request asks for is ignored by design: the issuer
 * decides the names. Caller frees with zt_pubkey_free.
 */
zt_pubkey *zt_csr_parse(const uint8_t *data, size_t len, zt_err *e);

/* Appends a PEM request for key (empty subject, signed with it) to pem. */
int zt_csr_make(EVP_PKEY *key, zt_buf *pem, zt_err *e) ZT_MUST_CHECK;

/* ---- primitives ---------------------------------------------------------- */

int zt_random(void *buf, size_t n, zt_err *e) ZT_MUST_CHECK;
void zt_sha256(const void *data, size_t n, uint8_t out[32]);
/* SHA-256 of what is left to read from fd, refusing more than max bytes. */
int zt_sha256_fd(int fd, uint64_t max, uint8_t out[32], zt_err *e) ZT_MUST_CHECK;

/* Standard (RFC 4648 4) or, with url set, unpadded base64url (RFC 4648 5). */
int zt_base64_encode(const uint8_t *in, size_t n, int url, zt_buf *out,
		     zt_err *e) ZT_MUST_CHECK;
/* Strict decoding: no whitespace, canonical padding (standard) or none (url). */
int zt_base64_decode(const char *in, size_t n, int url, zt_buf *out,
		     zt_err *e) ZT_MUST_CHECK;

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void zt_hex(const uint8_t *in, size_t n, char *out);

/* ---- secrets at rest (seal.c) ------------------------------------------- */

#define ZT_KEK_LEN 32
#define ZT_SEAL_MAX 65536 /* bytes of plaintext in one sealed secret */

/*
 * The key-encryption key (KEK): 32 bytes in base64, from the file at path,
 * or with path NULL from $ZT_KEK itself or the file named by $ZT_KEK_FILE.
 * *found is 0 (and 0 is returned) when none is configured.
 */
int zt_kek_load(const char *path, uint8_t kek[ZT_KEK_LEN], int *found, zt_err *e) ZT_MUST_CHECK;
/* Writes a new random KEK to path (mode 0600, never over an existing file). */
int zt_kek_generate(const char *path, zt_err *e) ZT_MUST_CHECK;
/* The process's KEK: zt_key_store seals with it, zt_key_load unseals. NULL clears it. */
void zt_kek_set(const uint8_t kek[ZT_KEK_LEN]);
const uint8_t *zt_kek_get(void); /* NULL when none is set */
/* The KEK's public ID: 8 hex digits of SHA-256("zt-kek-id" || KEK). */
void zt_kek_id(const uint8_t kek[ZT_KEK_LEN], char out[9]);

/*
 * Seals n bytes under kek with AES-256-GCM, bound to `label` (what the
 * secret is, 1-64 of a-z 0-9 . -), and appends the one-line text form
 * "ztseal1:<label>:<KEK ID>:<nonce>:<ciphertext>\n" to out.
 */
int zt_seal(const uint8_t kek[ZT_KEK_LEN], const char *label, const uint8_t *pt, size_t n,
	    zt_buf *out, zt_err *e) ZT_MUST_CHECK;
/*
 * Opens what zt_seal made, checking the label and the KEK ID first so that
 * a wrong key or kind of secret is named as such; appends the plaintext to
 * out (free it with zt_buf_free(out, 1)).
 */
int zt_unseal(const uint8_t kek[ZT_KEK_LEN], const char *label, const char *text, size_t n,
	      zt_buf *out, zt_err *e) ZT_MUST_CHECK;
/* 1 if text starts like a sealed secret. */
int zt_sealed(const void *text, size_t n);
/*
 * If b holds a sealed secret, replaces it with the plaintext, opened with
 * the process's KEK (none set: an error that says how to give it); plain
 * contents are left as they are. b's memory is wiped when replaced.
 */
int zt_unseal_in_place(zt_buf *b, const char *label, zt_err *e) ZT_MUST_CHECK;

/* What each kind of sealed secret is labelled, so that one cannot stand in for another. */
#define ZT_SEAL_LABEL_KEY "private-key"
#define ZT_SEAL_LABEL_AUDIT_SIGNER "audit-log-key"
#define ZT_SEAL_LABEL_AUDIT_HMAC "audit-hmac-key"

/* ---- passwords (crypto/password.c) and one-time codes (crypto/totp.c) ---- */

/*
 * Passwords are kept as Argon2id hashes (RFC 9106) in PHC string form,
 *
 *   $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<tag>
 *
 * (salt and tag in base64 without padding), so each hash carries its own
 * parameters and the defaults can be raised without breaking old hashes.
 * A stored hash comes from the database and is treated as hostile: only
 * argon2id version 19 in exactly that canonical form is accepted, and its
 * parameters are capped so that a planted hash cannot exhaust the server.
 * Password bytes are never logged nor put in an error message.
 */
#define ZT_PW_MIN_LEN 1       /* bytes of password */
#define ZT_PW_MAX_LEN 1024    /* longer is an error, never truncated */
#define ZT_PW_SALT_LEN 16     /* what zt_password_hash writes */
#define ZT_PW_TAG_LEN 32
#define ZT_PW_SALT_MIN 8      /* what a stored hash may carry */
#define ZT_PW_SALT_MAX 64
#define ZT_PW_TAG_MIN 16
#define ZT_PW_TAG_MAX 64
#define ZT_PW_M_MAX (1u << 20)   /* KiB: 1 GiB */
#define ZT_PW_T_MAX 64
#define ZT_PW_P_MAX 16
#define ZT_PW_WORK_MAX (1u << 21) /* m * t in KiB-passes: 22 times the defaults */
#define ZT_PW_HASH_MAX 256       /* a PHC string and its NUL */

typedef struct zt_pw_params {
	uint32_t m_kib; /* memory, KiB (at least 8 per lane) */
	uint32_t t;     /* passes over the memory */
	uint32_t p;     /* lanes, each hashed by its own thread */
} zt_pw_params;

/* A parsed PHC string. */
typedef struct zt_pw_phc {
	zt_pw_params params;
	uint8_t salt[ZT_PW_SALT_MAX];
	size_t salt_len;
	uint8_t tag[ZT_PW_TAG_MAX];
	size_t tag_len;
} zt_pw_phc;

/* The parameters new hashes get (the comment in password.c says why). */
zt_pw_params zt_pw_defaults(void);

/* 0 if Argon2 accepts params and they are within the caps above. */
int zt_pw_params_check(const zt_pw_params *params, zt_err *e) ZT_MUST_CHECK;

/*
 * Parses a stored hash of exactly n bytes (no NUL needed) into *out; every
 * field is checked (rule "password-hash"; "password-hash-limit" for a
 * parameter or length over its cap). Does not run Argon2.
 */
int zt_pw_phc_parse(const char *s, size_t n, zt_pw_phc *out, zt_err *e) ZT_MUST_CHECK;
/* Writes h as a NUL-terminated PHC string: zt_pw_phc_parse's inverse. */
int zt_pw_phc_format(const zt_pw_phc *h, char out[ZT_PW_HASH_MAX], zt_err *e) ZT_MUST_CHECK;

/*
 * Hashes a password of pw_len bytes (ZT_PW_MIN_LEN..ZT_PW_MAX_LEN) with a
 * new random salt under params (NULL: zt_pw_defaults()) and writes the PHC
 * string, NUL-terminated, to out.
 */
int zt_password_hash(const char *pw, size_t pw_len, const zt_pw_params *params,
		     char out[ZT_PW_HASH_MAX], zt_err *e) ZT_MUST_CHECK;

/*
 * Checks a password against a stored hash of phc_len bytes, running Argon2
 * with the hash's own parameters and comparing in constant time. 0 if it
 * matches, and then *needs_rehash is 1 when the stored parameters, salt or
 * tag are weaker than the defaults (hash the password again and store it);
 * -ZT_EVERIFY (rule "password") if it does not; another error if the
 * password's length or the stored hash is refused. *needs_rehash may be NULL.
 */
int zt_password_verify(const char *pw, size_t pw_len, const char *phc, size_t phc_len,
		       int *needs_rehash, zt_err *e) ZT_MUST_CHECK;

/*
 * For a user that does not exist: checks the password against a hash that
 * nothing matches, made once per process at the default parameters, so it
 * costs what zt_password_verify costs for a user with a current hash and
 * fails the same way (-ZT_EVERIFY, rule "password"). Thread-safe.
 */
int zt_password_dummy_verify(const char *pw, size_t pw_len, zt_err *e) ZT_MUST_CHECK;

/*
 * One-time codes: HOTP (RFC 4226) and TOTP (RFC 6238) with HMAC-SHA1,
 * -SHA256 or -SHA512, 6 or 8 digits, as authenticator apps show them.
 * Keys are 16..128 bytes (RFC 4226 4 R6: at least 128 bits); zt makes 20.
 */
enum zt_otp_alg { ZT_OTP_SHA1, ZT_OTP_SHA256, ZT_OTP_SHA512 };

#define ZT_OTP_KEY_MIN 16
#define ZT_OTP_KEY_MAX 128
#define ZT_OTP_CODE_MAX 9     /* 8 digits and a NUL */
#define ZT_TOTP_SECRET_LEN 20 /* bytes: RFC 4226 4 recommends 160 bits */
#define ZT_TOTP_PERIOD_MAX 300

typedef struct zt_totp_params {
	enum zt_otp_alg alg;
	unsigned digits; /* 6 or 8 */
	unsigned period; /* seconds per step, 1..ZT_TOTP_PERIOD_MAX; 30 is what apps assume */
} zt_totp_params;

/* SHA1, 6 digits, 30 seconds: what every authenticator app supports. */
zt_totp_params zt_totp_defaults(void);

/* The HOTP value for counter, as digits ASCII digits and a NUL, into out. */
int zt_hotp_code(const uint8_t *key, size_t key_len, enum zt_otp_alg alg, unsigned digits,
		 uint64_t counter, char out[ZT_OTP_CODE_MAX], zt_err *e) ZT_MUST_CHECK;

/* The TOTP code at time t (Unix seconds, >= 0): HOTP of the step t / period. */
int zt_totp_code(const uint8_t *key, size_t key_len, const zt_totp_params *tp, int64_t t,
		 char out[ZT_OTP_CODE_MAX], zt_err *e) ZT_MUST_CHECK;

/*
 * Checks a code the user typed (code_len bytes, exactly tp->digits ASCII
 * digits, else -ZT_EINVAL with rule "totp-format") against the steps one
 * before, at and one after now's, comparing each in constant time. Each
 * code is usable once: steps <= last_used_step are refused (0 for a key
 * never used: step 0 is 1970). On success *step is the step that matched
 * (the latest, if more than one did): store it as the next last_used_step.
 * A code of a step already used fails with rule "totp-reused", any other
 * with "totp-wrong" (both -ZT_EVERIFY).
 */
int zt_totp_verify(const uint8_t *key, size_t key_len, const zt_totp_params *tp,
		   const char *code, size_t code_len, int64_t now, uint64_t last_used_step,
		   uint64_t *step, zt_err *e) ZT_MUST_CHECK;

/* A new random TOTP key. */
int zt_totp_secret(uint8_t out[ZT_TOTP_SECRET_LEN], zt_err *e) ZT_MUST_CHECK;

/*
 * Appends the enrolment URI (Google Authenticator Key Uri Format) to out,
 * NUL-terminated:
 *   otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
 * with issuer and account percent-encoded (all but RFC 3986 unreserved
 * characters) and the key in base32 without padding. issuer and account
 * are 1..256 bytes without ':' or control characters.
 */
int zt_totp_uri(const char *issuer, const char *account, const uint8_t *key, size_t key_len,
		const zt_totp_params *tp, zt_buf *out, zt_err *e) ZT_MUST_CHECK;

/* RFC 4648 6 base32 (A-Z 2-7), with '=' padding if pad is set; out is NUL-terminated. */
int zt_base32_encode(const uint8_t *in, size_t n, int pad, zt_buf *out, zt_err *e) ZT_MUST_CHECK;
/*
 * Decodes n bytes of base32, in either case, with correct '=' padding or
 * none; anything else (white space too) is an error, as are stray bits in
 * the last character. Appends the bytes to out.
 */
int zt_base32_decode(const char *in, size_t n, zt_buf *out, zt_err *e) ZT_MUST_CHECK;

#endif /* ZT_CRYPTO_H */
