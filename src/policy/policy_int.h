/*
 * policy/policy_int.h: the policy model shared by the module's files
 * (loading, checking, compiling, deciding); not part of the API.
 */
#ifndef ZT_POLICY_INT_H
#define ZT_POLICY_INT_H

#include <stdatomic.h>

#include "policy.h"

/* A value matcher (Istio's string match): exact, "abc*", "*abc" or "*". */
enum strm_kind { STRM_EXACT, STRM_PREFIX, STRM_SUFFIX, STRM_ANY };

struct strm {
	uint8_t kind;
	uint32_t len;
	const char *s; /* the fixed part, NUL-terminated */
};

struct strs {
	uint32_t n;
	struct strm *v;
};

struct cidr {
	uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	uint8_t bits;     /* prefix length over the 128-bit form */
	uint8_t v6;       /* family: an IPv4 address never matches an IPv6 block */
};

struct cidrs {
	uint32_t n;
	struct cidr *v;
};

struct ports {
	uint32_t n;
	uint16_t *v;
};

struct source {
	struct strs principals, not_principals;
	struct strs req_principals, not_req_principals; /* HTTP only */
	struct strs namespaces, not_namespaces;
	struct cidrs ips, not_ips;
};

struct operation {
	struct strs hosts, not_hosts;     /* HTTP only; lowercase, no port */
	struct strs methods, not_methods; /* HTTP only */
	struct strs paths, not_paths;     /* HTTP only */
	struct ports ports, not_ports;
};

enum cond_key {
	K_CLAIM,          /* request.auth.claims[a][b]  (HTTP only) */
	K_AUDIENCES,      /* request.auth.audiences     (HTTP only) */
	K_PRESENTER,      /* request.auth.presenter     (HTTP only) */
	K_AUTH_PRINCIPAL, /* request.auth.principal     (HTTP only) */
	K_HEADER,         /* request.headers[name]      (HTTP only) */
	K_SOURCE_IP,
	K_SOURCE_PRINCIPAL,
	K_SOURCE_NS,
	K_DEST_PORT,
	K_SNI,
};

struct condition {
	enum cond_key key;
	const char *key_text;   /* as written, for explanations */
	const char **claim;     /* claim path for K_CLAIM */
	uint32_t nclaim;
	const char *header;     /* lowercase name for K_HEADER */
	uint32_t header_len;
	struct strs values, not_values;
	struct cidrs ipv, not_ipv;     /* K_SOURCE_IP */
	struct ports portv, not_portv; /* K_DEST_PORT */
};

struct rule {
	struct source *from;
	uint32_t nfrom;
	struct operation *to;
	uint32_t nto;
	struct condition *when;
	uint32_t nwhen;
	int http_only_fields; /* the rule names at least one HTTP-only field */
	int line;             /* where it was written, for diagnostics */
};

enum pol_action { ACT_ALLOW, ACT_DENY, ACT_AUDIT };

/* scope levels, outermost first */
enum scope_level { SCOPE_ORG, SCOPE_TENANT, SCOPE_WORKSPACE };

struct workspace {
	const char *name;
	const char **services;
	uint32_t nservices;
	int tenant; /* index, or -1 without an organization */
};

struct tenant {
	const char *name;
	int first_ws, nws; /* workspaces of this tenant: org.ws[first_ws ...] */
};

struct org {
	const char *name; /* NULL: no Organization document (Istio mode) */
	const char *td;
	struct tenant *tenants;
	uint32_t ntenants;
	struct workspace *ws;
	uint32_t nws;
};

struct policy {
	const char *name;
	const char *display; /* "SCOPE/NAME" */
	const char *file;
	int line;
	int istio;
	enum scope_level level;
	int tenant, ws;         /* scope indices (-1 when not that deep) */
	const char *ns;         /* Istio mode: the namespace ("" for root) */
	const char **selector;  /* service names; NULL: every service in scope */
	uint32_t nselector;
	enum pol_action action;
	int dry_run;
	struct rule *rules;
	uint32_t nrules;
	uint32_t order; /* load order, for deterministic decisions */
};

/*
 * A RequestAuthentication: its metadata, scope and selector read exactly
 * as an AuthorizationPolicy's (head; action, dry_run and rules unused), and
 * its jwtRules. A document that failed to load has head.display NULL.
 */
struct reqauthn {
	struct policy head;
	zt_jwt_rule *rules;
	uint32_t nrules;
};

/* The loaded model: shared by the source set and the snapshots compiled
 * from it, freed with the last of them. */
struct model {
	atomic_int refs;
	zt_arena *arena;
	struct org org;
	struct policy **pols;
	uint32_t npols, cappols;
	struct reqauthn **ras;
	uint32_t nras, capras;
	struct zt_jwks **jwks; /* inline key sets of jwtRules (heap: freed with the model) */
	uint32_t njwks, capjwks;
};

void zt_model_unref(struct model *m);

/* ---- matching (match.c) ---- */

int strm_match(const struct strm *m, const char *s, size_t len);
/* Any matcher of the set matches; an empty set matches nothing. */
int strs_match(const struct strs *set, const char *s, size_t len);
/* As strs_match, ignoring ASCII case (the set holds lowercase values). */
int strs_match_ci(const struct strs *set, const char *s, size_t len);
int cidrs_match(const struct cidrs *set, const uint8_t addr[16], int v6);
int ports_match(const struct ports *set, int port);
/* Parses "a.b.c.d", an IPv6 address, or either with "/bits". */
int cidr_parse(const char *s, size_t len, struct cidr *out, int allow_prefix);

/* Per-request facts computed once before rules are checked. */
struct facts {
	const zt_policy_request *req;
	const char *principal; /* source principal without "spiffe://" */
	size_t principal_len;
	const char *ns; /* source namespace, from "/ns/NAME/" */
	size_t ns_len;
	int has_ip, ip_v6;
	uint8_t ip[16];
	const char *host; /* without the port; compared case-insensitively */
	size_t host_len;
};

/* What facts_init computes beyond the principal: only what some rule of the
 * snapshot reads (parsing an address costs more than a whole decision). */
#define FACT_NS 1u
#define FACT_IP 2u
#define FACT_HOST 4u
#define FACT_ALL 7u

void facts_init(struct facts *f, const zt_policy_request *req, unsigned needs);

/*
 * Evaluates a rule of a policy with the given action against a request.
 * Returns 1 match, 0 no match. With why non-NULL, a short reason for a
 * non-match is written there.
 */
int rule_match(const struct rule *r, enum pol_action action, const struct facts *f,
	       char *why, size_t whysz);

/* ---- loading (load.c, rules.c) ---- */

struct rawdoc {
	json_t *doc;
	const char *file;
	const zt_docpos *pos;
};

struct testdoc {
	json_t *doc;
	const char *file;
};

struct zt_policy_src {
	struct model *m;
	zt_strset *svcset; /* "WORKSPACE/SERVICE" of every declared service */
	char root_ns[64];
	zt_diag *diags;
	size_t ndiags, capdiags, nerrors;
	struct rawdoc *raw;
	size_t nraw, capraw;
	zt_docpos **positions;
	size_t npositions;
	struct testdoc *tests;
	size_t ntests;
	int checked;
};

void pol_diag(zt_policy_src *src, enum zt_diag_level lvl, const struct rawdoc *rd,
	      const json_t *node, const char *fmt, ...) ZT_PRINTF(5, 6);
#define ERR(src, rd, node, ...) pol_diag(src, ZT_DIAG_ERROR, rd, node, __VA_ARGS__)
#define WARN(src, rd, node, ...) pol_diag(src, ZT_DIAG_WARNING, rd, node, __VA_ARGS__)
/* Points the last diagnostic at a key of obj rather than at its value. */
void pol_at_key(zt_policy_src *src, const struct rawdoc *rd, const json_t *obj, const char *key);
/* Only the listed keys; others are errors (warnings when lenient). */
void pol_known_keys(zt_policy_src *src, const struct rawdoc *rd, json_t *obj,
		    const char *const *keys, const char *where, int lenient);
char *pol_dup_str(zt_policy_src *src, json_t *v);
void *pol_array(zt_policy_src *src, size_t n, size_t size);
int pol_parse_rule(zt_policy_src *src, const struct rawdoc *rd, json_t *o, struct rule *rule);
/* reqauthn.c: the jwtRules of a RequestAuthentication into ra (head already read) */
void pol_parse_jwt_rules(zt_policy_src *src, const struct rawdoc *rd, json_t *spec,
			 struct reqauthn *ra);

#endif /* ZT_POLICY_INT_H */
