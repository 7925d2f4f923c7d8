/*
 * identity: SPIFFE workload identity.
 *
 *  - SPIFFE IDs, parsed and built exactly as the SPIFFE ID spec says;
 *  - trust bundles: the authorities of one trust domain, as PEM or in the
 *    SPIFFE bundle format (JWKS), never merged across trust domains;
 *  - X.509-SVID validation: the SPIFFE rules for leaves and signing
 *    certificates plus RFC 5280 path validation to the bundle of the
 *    leaf's own trust domain;
 *  - the certificate authority: a root, rotating signing CAs under it, and
 *    SVID issuance.
 *
 * Every rejection records a stable rule tag in zt_err.rule (see
 * docs/identity.md for the list) and a message that cites the spec.
 */
#ifndef ZT_IDENTITY_H
#define ZT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "core/core.h"
#include "crypto/crypto.h"

/* ---- SPIFFE IDs (SPIFFE-ID 2) -------------------------------------------- */

#define ZT_ID_MAX 2048 /* SPIFFE-ID 2.3 */
#define ZT_TD_MAX 255  /* SPIFFE-ID 2.3, from RFC 3986's host limit */

typedef struct zt_spiffe_id {
	char str[ZT_ID_MAX + 1]; /* NUL-terminated, canonical */
	uint16_t len;            /* strlen(str) */
	uint16_t td_len;         /* the trust domain is str[9 .. 9+td_len) */
} zt_spiffe_id;

/*
 * Parses `len` bytes (no NUL needed) as a SPIFFE ID. On error *e names the
 * rule: id-empty, id-too-long, id-scheme, id-td-empty, id-td-length,
 * id-td-char, id-td-case, id-userinfo, id-port, id-percent, id-query,
 * id-fragment, id-path-char, id-path-empty-segment, id-path-dot-segment,
 * id-trailing-slash.
 */
int zt_id_parse(const char *s, size_t len, zt_spiffe_id *out, zt_err *e) ZT_MUST_CHECK;

/* Checks a bare trust domain name ("example.org"). */
int zt_td_check(const char *td, size_t len, zt_err *e) ZT_MUST_CHECK;

/* Builds spiffe://TD/ns/WORKSPACE/sa/SERVICE, checking every part. */
int zt_id_workload(const char *td, const char *workspace, const char *service,
		   zt_spiffe_id *out, zt_err *e) ZT_MUST_CHECK;

/* Builds spiffe://TD (the ID of a trust domain's authorities). */
int zt_id_for_td(const char *td, zt_spiffe_id *out, zt_err *e) ZT_MUST_CHECK;

/* The trust domain name, and the path ("" or "/..."), inside id->str. */
const char *zt_id_td(const zt_spiffe_id *id, size_t *len);
const char *zt_id_path(const zt_spiffe_id *id, size_t *len);

/* 1 if the ID belongs to trust domain td. */
int zt_id_in_td(const zt_spiffe_id *id, const char *td, size_t td_len);

/* ---- trust bundles ------------------------------------------------------- */

typedef struct zt_bundle zt_bundle;

/* An empty bundle for a trust domain. Caller frees with zt_bundle_free. */
zt_bundle *zt_bundle_new(const char *td, zt_err *e);
void zt_bundle_free(zt_bundle *b);

const char *zt_bundle_td(const zt_bundle *b);

/*
 * Adds an X.509 authority (the bundle takes its own reference). It must be a
 * signing certificate (CA:true, keyCertSign; X.509-SVID 3.2); a duplicate is
 * ignored.
 */
int zt_bundle_add_x509(zt_bundle *b, X509 *authority, zt_err *e) ZT_MUST_CHECK;
int zt_bundle_x509_count(const zt_bundle *b);
X509 *zt_bundle_x509_get(const zt_bundle *b, int i); /* borrowed */

uint64_t zt_bundle_sequence(const zt_bundle *b);
void zt_bundle_set_sequence(zt_bundle *b, uint64_t seq);
int64_t zt_bundle_refresh_hint(const zt_bundle *b);
void zt_bundle_set_refresh_hint(zt_bundle *b, int64_t secs);

/*
 * Parses a SPIFFE bundle document (SPIFFE Trust Domain and Bundle 4, with
 * X.509-SVID 6.2 for x509-svid entries). jwt-svid keys are checked and kept
 * for later use; entries of other uses are ignored. Caller frees.
 */
zt_bundle *zt_bundle_parse_spiffe(const char *td, const char *json, size_t len,
				  zt_err *e);
/* Parses PEM authorities. Caller frees. */
zt_bundle *zt_bundle_parse_pem(const char *td, const uint8_t *pem, size_t len,
			       zt_err *e);
/*
 * Loads a bundle file, SPIFFE JSON or PEM by content. With td NULL the trust
 * domain comes from the authorities' own SPIFFE IDs, which must agree.
 * Caller frees.
 */
zt_bundle *zt_bundle_load(const char *td, const char *path, zt_err *e);

/* Appends the bundle as a SPIFFE bundle document / as PEM. */
int zt_bundle_to_spiffe(const zt_bundle *b, zt_buf *out, zt_err *e) ZT_MUST_CHECK;
int zt_bundle_to_pem(const zt_bundle *b, zt_buf *out, zt_err *e) ZT_MUST_CHECK;

/* Trust domain -> bundle. */
typedef struct zt_bundle_set zt_bundle_set;

zt_bundle_set *zt_bundle_set_new(void);
void zt_bundle_set_free(zt_bundle_set *s);
/* Adds or replaces the bundle of b's trust domain; takes ownership of b
 * (freed on error too). */
int zt_bundle_set_put(zt_bundle_set *s, zt_bundle *b, zt_err *e) ZT_MUST_CHECK;
const zt_bundle *zt_bundle_set_get(const zt_bundle_set *s, const char *td, size_t len);

/* ---- X.509-SVID validation ----------------------------------------------- */

typedef struct zt_svid_opts {
	int64_t now;                     /* validation time; 0 means zt_now() */
	const char *trust_domain;        /* if set, the ID must be in it */
	const zt_spiffe_id *expect_id;   /* if set, the ID must be exactly it */
} zt_svid_opts;

typedef struct zt_svid_info {
	zt_spiffe_id id;
	int64_t not_before, not_after; /* the leaf's */
	int64_t chain_not_after;       /* earliest expiry in the verified chain */
	int chain_len;                 /* verified chain, trust anchor included */
} zt_svid_info;

/*
 * Validates an X.509-SVID: chain[0] is the leaf, the rest are the
 * intermediates it came with. Applies X.509-SVID 5.2 to the leaf and 3.2 to
 * every signing certificate, then RFC 5280 path validation (X.509-SVID 5.1)
 * against the bundle of the leaf ID's trust domain, whose authorities are
 * the trust anchors. 0 and *info filled, or a negative code with the rule.
 */
int zt_svid_verify(const zt_bundle_set *bundles, STACK_OF(X509) *chain,
		   const zt_svid_opts *opts, zt_svid_info *info, zt_err *e) ZT_MUST_CHECK;

/* The leaf rules alone (no path validation); *id filled on success. */
int zt_svid_check_leaf(X509 *leaf, zt_spiffe_id *id, zt_err *e) ZT_MUST_CHECK;
/* The signing-certificate rules alone; `what` names it in messages. */
int zt_svid_check_signer(X509 *ca, const char *what, zt_err *e) ZT_MUST_CHECK;

/* ---- certificate authority ----------------------------------------------- */

#define ZT_CA_ROOT_TTL_DEFAULT (365 * 86400)
#define ZT_CA_SIGNING_TTL_DEFAULT (7 * 86400)
#define ZT_SVID_TTL_DEFAULT 3600
#define ZT_SVID_TTL_MAX (30 * 86400)
#define ZT_SVID_DNS_MAX 32

typedef struct zt_ca zt_ca;

/*
 * Creates a CA in dir (created 0700 if missing): a self-signed root and a
 * first signing CA, keys 0600. Refuses when dir already holds a CA.
 */
int zt_ca_init(const char *dir, const char *td, int64_t root_ttl,
	       int64_t signing_ttl, zt_err *e) ZT_MUST_CHECK;

/* Opens and checks the CA in dir. Caller frees with zt_ca_free. */
zt_ca *zt_ca_open(const char *dir, zt_err *e);
void zt_ca_free(zt_ca *ca);

const char *zt_ca_td(const zt_ca *ca);

/*
 * A new signing CA becomes the active one. The previous ones stay (and stay
 * in the bundle) until they expire; expired ones are removed here.
 */
int zt_ca_rotate(zt_ca *ca, int64_t ttl, zt_err *e) ZT_MUST_CHECK;

typedef struct zt_issue_opts {
	int64_t ttl;                /* 0: ZT_SVID_TTL_DEFAULT */
	const char *const *dns;     /* extra DNS SANs */
	size_t ndns;
	/* optional outputs, so a caller need not parse what it was just given */
	char *serial_hex;           /* the serial, 32 upper-case hex digits and NUL */
	int64_t *not_after;         /* the SVID's notAfter */
} zt_issue_opts;

/*
 * Issues an X.509-SVID for id and public key pub (from zt_csr_parse or
 * zt_pubkey_from_pkey), signed by the active
 * signing CA: empty subject, the ID as the one (critical) URI SAN, CA:false,
 * digitalSignature, serverAuth and clientAuth. It never outlives its signer:
 * notAfter is capped at the signer's. Appends the chain to *chain_der as
 * DER, the leaf then the signing CA (zt_certs_parse_der and
 * zt_der_certs_to_pem read it). Not thread-safe: one zt_ca per thread.
 */
int zt_ca_issue(zt_ca *ca, const zt_spiffe_id *id, const zt_pubkey *pub,
		const zt_issue_opts *opts, zt_buf *chain_der, zt_err *e) ZT_MUST_CHECK;

/* The CA's bundle: its root and its unexpired signing CAs. Caller frees. */
zt_bundle *zt_ca_bundle(const zt_ca *ca, zt_err *e);

/* For status output: the active signing CA and how many there are. */
X509 *zt_ca_active(const zt_ca *ca); /* borrowed */
X509 *zt_ca_root(const zt_ca *ca);   /* borrowed */
int zt_ca_signing_count(const zt_ca *ca);

#endif /* ZT_IDENTITY_H */
