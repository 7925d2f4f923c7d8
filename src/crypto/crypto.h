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

/* Frees this thread's prepared verification contexts. */
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
 * P-256/384/521; kty, n, e for RSA) to obj.
 */
int zt_jwk_set_public(EVP_PKEY *pub, json_t *obj, zt_err *e) ZT_MUST_CHECK;

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

#endif /* ZT_CRYPTO_H */
