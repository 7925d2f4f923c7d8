/*
 * policy: hierarchical, deny-by-default authorization.
 *
 * An organization (tenants > workspaces > services) and AuthorizationPolicy
 * and RequestAuthentication objects attached to its scopes are loaded from
 * YAML or JSON documents (zt's own kinds, and Istio's security.istio.io
 * ones as they are), checked, and compiled into an immutable snapshot indexed by
 * destination service and then by caller. A snapshot answers requests from
 * any number of threads without locks; a zt_policy_holder swaps snapshots
 * atomically. The semantics are in docs/policy.md.
 */
#ifndef ZT_POLICY_H
#define ZT_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"

/* ---- loading and checking ------------------------------------------------ */

/* A set of documents being loaded: the organization, policies and tests. */
typedef struct zt_policy_src zt_policy_src;

typedef struct zt_policy_load_opts {
	const char *istio_root_ns; /* Istio's root namespace; NULL: "istio-system" */
} zt_policy_load_opts;

zt_policy_src *zt_policy_src_new(const zt_policy_load_opts *opts);
void zt_policy_src_free(zt_policy_src *src);

/*
 * Adds the documents of a file, or of every *.yaml, *.yml and *.json file
 * under a folder (sorted, recursively). Problems are recorded as
 * diagnostics (see below); returns the number of errors added.
 */
int zt_policy_src_add_path(zt_policy_src *src, const char *path);

/* Adds documents from text; `name` stands for the file in diagnostics. */
int zt_policy_src_add_text(zt_policy_src *src, const char *name, const char *text,
			   size_t len);

/*
 * Checks the whole set once everything is added: references between
 * documents, duplicate names, rules that can never match, ALLOW rules
 * shadowed by a DENY. Returns the number of errors in the set.
 */
int zt_policy_src_check(zt_policy_src *src);

enum zt_diag_level { ZT_DIAG_WARNING, ZT_DIAG_ERROR };

typedef struct zt_diag {
	enum zt_diag_level level;
	char file[256];
	int line, column; /* 1-based; 0 when unknown */
	char msg[512];
} zt_diag;

size_t zt_policy_src_ndiags(const zt_policy_src *src);
const zt_diag *zt_policy_src_diag(const zt_policy_src *src, size_t i);
size_t zt_policy_src_nerrors(const zt_policy_src *src);

/* The PolicyTest documents found, as loaded JSON (borrowed). */
size_t zt_policy_src_ntests(const zt_policy_src *src);
json_t *zt_policy_src_test(const zt_policy_src *src, size_t i, const char **file);

/* ---- compiled snapshots -------------------------------------------------- */

typedef struct zt_policy_snapshot zt_policy_snapshot;

/*
 * Compiles a checked set without errors into a snapshot (refcount 1).
 * NULL with *e set when the set has errors or compiling fails.
 */
zt_policy_snapshot *zt_policy_compile(const zt_policy_src *src, zt_err *e);
void zt_policy_snapshot_ref(zt_policy_snapshot *s);
void zt_policy_snapshot_unref(zt_policy_snapshot *s);

size_t zt_policy_snapshot_nservices(const zt_policy_snapshot *s);
/* Bytes the snapshot holds, its share of the model included. */
size_t zt_policy_snapshot_bytes(const zt_policy_snapshot *s);
size_t zt_policy_snapshot_npolicies(const zt_policy_snapshot *s);

/* ---- requests and decisions ---------------------------------------------- */

typedef struct zt_str {
	const char *p;
	size_t len;
} zt_str;

typedef struct zt_header {
	zt_str name; /* any case; compared case-insensitively */
	zt_str value;
} zt_header;

/*
 * One request. Strings may be empty ({NULL, 0}) when absent. The path must
 * already be normalized by zt_path_normalize (path part only, no query).
 * A request without HTTP (has_http 0) is a connection: HTTP-only fields in
 * ALLOW rules then never match, and in DENY rules they are ignored, so a
 * DENY errs towards denying (Istio's rule for TCP traffic).
 */
typedef struct zt_policy_request {
	zt_str source_principal; /* "spiffe://td/ns/a/sa/b" */
	zt_str source_ip;        /* "10.1.2.3" or "2001:db8::1" */
	zt_str dest_service;     /* "spiffe://td/ns/ws/sa/svc" */
	int dest_port;           /* 0: unknown */
	zt_str sni;
	int has_http;
	zt_str method, path, host;
	const zt_header *headers; /* repeated names appear repeatedly */
	size_t nheaders;
	/* the end user's verified token; claims may be NULL */
	zt_str auth_principal; /* "iss/sub" */
	zt_str auth_presenter; /* azp */
	const zt_str *audiences;
	size_t naudiences;
	json_t *claims;
} zt_policy_request;

enum zt_policy_effect { ZT_POLICY_DENY = 0, ZT_POLICY_ALLOW = 1 };

#define ZT_POLICY_MAX_REPORTED 16

typedef struct zt_policy_match {
	const char *policy; /* "SCOPE/NAME", owned by the snapshot */
	int rule;           /* index in spec.rules */
} zt_policy_match;

typedef struct zt_policy_decision {
	enum zt_policy_effect effect;
	/* what decided: a DENY or ALLOW match, or none (deny by default) */
	zt_policy_match by;
	const char *reason; /* static text, e.g. "no ALLOW policy matched" */
	/* AUDIT policies that matched, and dry-run policies that matched */
	zt_policy_match audit[ZT_POLICY_MAX_REPORTED];
	size_t naudit;
	zt_policy_match dry_run[ZT_POLICY_MAX_REPORTED];
	int dry_run_effect[ZT_POLICY_MAX_REPORTED]; /* what each would have done */
	size_t ndry_run;
} zt_policy_decision;

/*
 * Decides a request. Lock-free and allocation-free; any number of threads
 * may call it on the same snapshot. A NULL snapshot (no policy yet) denies.
 */
void zt_policy_decide(const zt_policy_snapshot *s, const zt_policy_request *req,
		      zt_policy_decision *d);

/*
 * Decides and explains: for each policy that applies to the destination,
 * whether it matched and, if not, which condition of each rule failed.
 * Appends readable lines to out.
 */
int zt_policy_explain(const zt_policy_snapshot *s, const zt_policy_request *req,
		      zt_policy_decision *d, zt_buf *out, zt_err *e) ZT_MUST_CHECK;

/*
 * Reads a request in the JSON schema of docs/policy.md. The request's
 * strings point into `doc` (and into `pathbuf`, which receives the
 * normalized path), so both must outlive it. Returns 0 or an error naming
 * the field.
 */
int zt_policy_request_from_json(json_t *doc, zt_policy_request *req, zt_header *headers,
				size_t maxheaders, zt_str *auds, size_t maxauds,
				char *pathbuf, size_t pathbufsz, zt_err *e) ZT_MUST_CHECK;

/* ---- end-user tokens (RequestAuthentication) ----------------------------- */

/*
 * RequestAuthentication documents (zt's and Istio's security.istio.io) are
 * loaded with the policies, attached to scopes and selectors the same way,
 * and compiled into the snapshot: the proxy asks which jwtRules apply to a
 * destination and verifies the request's token against them before it asks
 * zt_policy_decide (docs/policy.md, docs/proxy.md "End-user tokens").
 */

struct zt_jwks; /* crypto/crypto.h */

enum zt_jwt_from { ZT_JWT_FROM_HEADER, ZT_JWT_FROM_PARAM };

/* Where a token may be: a header (its value after prefix), or a query parameter. */
typedef struct zt_jwt_location {
	enum zt_jwt_from from;
	const char *name;   /* header name (lowercase), or parameter name as written */
	size_t name_len;
	const char *prefix; /* header: what comes before the token; "" none */
	size_t prefix_len;
	int prefix_ci;      /* prefix compared ignoring ASCII case (the default "Bearer ") */
} zt_jwt_location;

typedef struct zt_jwt_claim_header {
	const char *header; /* lowercase */
	const char *claim;  /* a claim name; "a.b" walks into object claims */
} zt_jwt_claim_header;

/* One jwtRule, as loaded; everything is owned by the snapshot. */
typedef struct zt_jwt_rule {
	const char *policy;           /* "SCOPE/NAME" of its RequestAuthentication */
	int index;                    /* in its spec.jwtRules */
	const char *issuer;           /* "iss" must be exactly this */
	const char *const *audiences; /* NULL-terminated; NULL: "aud" is not checked */
	const char *jwks_uri;         /* NULL: inline jwks, or discovery from the issuer */
	const struct zt_jwks *jwks;   /* inline keys, parsed at load; NULL otherwise */
	const char *key_source;       /* fetched keys: "uri:URL" or "oidc:ISSUER"; NULL when inline */
	const zt_jwt_location *from;  /* never empty: the defaults are filled in */
	size_t nfrom;
	int forward;                  /* forwardOriginalToken */
	const char *payload_header;   /* outputPayloadToHeader (lowercase), or NULL */
	const zt_jwt_claim_header *claim_headers; /* outputClaimToHeaders */
	size_t nclaim_headers;
} zt_jwt_rule;

/* jwtRules one destination may have; zt_policy_jwt_rules says when more apply */
#define ZT_POLICY_MAX_JWT_RULES 64

/*
 * The jwtRules that apply to a destination SPIFFE ID: those of every
 * RequestAuthentication of its organization, tenant and workspace whose
 * selector names it (their union, outermost scope first, in load order).
 * Fills out with up to max pointers into the snapshot (valid while the
 * snapshot is held) and returns how many apply: more than max means the
 * caller cannot see them all and must refuse tokens. Lock-free and
 * allocation-free; 0 for a NULL snapshot or an unknown destination.
 */
size_t zt_policy_jwt_rules(const zt_policy_snapshot *s, const char *dest, size_t dest_len,
			   const zt_jwt_rule **out, size_t max);

/* ---- swapping snapshots -------------------------------------------------- */

typedef struct zt_policy_holder zt_policy_holder;

/* Holds `initial` (takes the caller's reference). */
zt_policy_holder *zt_policy_holder_new(zt_policy_snapshot *initial);
void zt_policy_holder_free(zt_policy_holder *h);
/* A reference to the current snapshot; release with zt_policy_snapshot_unref. */
zt_policy_snapshot *zt_policy_holder_acquire(zt_policy_holder *h);
/* Makes `next` current (takes the caller's reference) and drops the old one
 * once no acquire can still be reading it. */
void zt_policy_holder_swap(zt_policy_holder *h, zt_policy_snapshot *next);

#endif /* ZT_POLICY_H */
