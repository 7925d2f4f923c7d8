/*
 * policy/snapshot.c: compiling the model into an immutable snapshot, and
 * deciding requests against it.
 *
 * Layout: policies without a selector are listed once per scope
 * (organization, tenant, workspace); each service has one array of the
 * policies that select it by name. A decision hashes the destination ID to
 * its service, then walks, in scope order, the DENY lists, then the ALLOW
 * lists. ALLOW policies of a service that name many callers are indexed by
 * caller principal. Nothing is written during a decision, so any number of
 * threads share a snapshot.
 */
#include "policy_int.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct model *zt_policy_src_model(const zt_policy_src *src);

struct plist {
	const struct policy **v;
	uint32_t n;
};

/* the policies of one scope, by what they do */
struct lists {
	struct plist deny, allow, audit, dry;
};

/* An ALLOW rule reachable from the caller index. */
struct ruleref {
	const struct policy *p;
	uint32_t rule;
	uint32_t seq; /* position in decision order */
};

struct caller_idx {
	/* open addressing over exact caller principals */
	uint32_t cap; /* power of two, 0 when there is no index */
	struct cslot {
		const char *principal;
		uint32_t len;
		uint32_t first, n; /* into refs[] */
	} *slots;
	struct ruleref *refs;
	/* ALLOW rules not keyed by one exact principal: always checked */
	struct ruleref *rest;
	uint32_t nrest;
};

struct svc {
	const char *id; /* full SPIFFE ID (org mode) or namespace (Istio mode) */
	uint32_t id_len;
	uint64_t hash;
	int ws;
	const char *name;     /* service name (org mode) */
	struct lists *sel;    /* [3]: selected by name, per scope level; NULL: none */
	struct caller_idx *idx; /* over all ALLOW rules, when worth it */
	/* DENY and ALLOW policies of every level in decision order, when few:
	 * one tight loop instead of six lists */
	const struct policy **flat;
	uint16_t nflat_deny, nflat_allow; /* flat = deny..., allow... */
};

#define FLAT_MAX 32

struct zt_policy_snapshot {
	atomic_int refs;
	struct model *m;
	zt_arena *arena;
	int istio_mode; /* no Organization: services are not declared */
	struct lists org_lists;
	struct lists *tenant_lists;
	struct lists *ws_lists;
	struct svc *svcs;
	uint32_t nsvcs;
	int has_audit, has_dry; /* any AUDIT or dry-run policy at all */
	unsigned needs;          /* FACT_* the rules use */
	uint32_t *table; /* open addressing: svc index + 1, 0 empty */
	uint32_t tmask;
	/* RequestAuthentications per scope (selectors are checked at lookup) */
	struct ralist {
		const struct reqauthn **v;
		uint32_t n;
	} org_ra, *tenant_ra, *ws_ra;
};

#define INDEX_MIN_RULES 8

/* Which per-request facts any rule of p looks at. */
static unsigned rule_needs(const struct policy *p)
{
	unsigned n = 0;

	for (uint32_t r = 0; r < p->nrules; r++) {
		const struct rule *ru = &p->rules[r];

		for (uint32_t f = 0; f < ru->nfrom; f++) {
			if (ru->from[f].namespaces.n || ru->from[f].not_namespaces.n)
				n |= FACT_NS;
			if (ru->from[f].ips.n || ru->from[f].not_ips.n)
				n |= FACT_IP;
		}
		for (uint32_t o = 0; o < ru->nto; o++)
			if (ru->to[o].hosts.n || ru->to[o].not_hosts.n)
				n |= FACT_HOST;
		for (uint32_t c = 0; c < ru->nwhen; c++)
			n |= ru->when[c].key == K_SOURCE_IP ? FACT_IP
			     : ru->when[c].key == K_SOURCE_NS ? FACT_NS : 0;
	}
	return n;
}

/* ---- hashing ---- */

#define hash_bytes zt_hash

static const struct svc *find_svc(const zt_policy_snapshot *s, const char *id, size_t len)
{
	uint64_t h;

	if (!s->table)
		return NULL;
	h = hash_bytes(id, len);
	for (uint32_t i = (uint32_t)h & s->tmask;; i = (i + 1) & s->tmask) {
		uint32_t v = s->table[i];

		if (!v)
			return NULL;
		const struct svc *sv = &s->svcs[v - 1];
		if (sv->hash == h && sv->id_len == len && memcmp(sv->id, id, len) == 0)
			return sv;
	}
}

/* ---- compiling ---- */

static int plist_push(zt_arena *a, struct plist *l, uint32_t *cap, const struct policy *p)
{
	if (l->n == *cap) {
		uint32_t ncap = *cap ? *cap * 2 : 4;
		const struct policy **nv = zt_arena_alloc(a, ncap * sizeof *nv);

		if (!nv)
			return -1;
		if (l->n)
			memcpy(nv, l->v, l->n * sizeof *nv);
		l->v = nv;
		*cap = ncap;
	}
	l->v[l->n++] = p;
	return 0;
}

struct lists_cap {
	uint32_t deny, allow, audit, dry;
};

static int lists_add(zt_arena *a, struct lists *l, struct lists_cap *c, const struct policy *p)
{
	if (p->dry_run)
		return plist_push(a, &l->dry, &c->dry, p);
	switch (p->action) {
	case ACT_DENY:
		return plist_push(a, &l->deny, &c->deny, p);
	case ACT_ALLOW:
		return plist_push(a, &l->allow, &c->allow, p);
	case ACT_AUDIT:
		return plist_push(a, &l->audit, &c->audit, p);
	}
	return -1;
}

/* A rule every source of which names exact principals can only match callers
 * with one of them, so it is filed under each (rule_match checks the rest). */
static int keyed_by_principal(const struct rule *ru)
{
	if (!ru->nfrom)
		return 0;
	for (uint32_t f = 0; f < ru->nfrom; f++) {
		const struct strs *pr = &ru->from[f].principals;

		if (!pr->n)
			return 0;
		for (uint32_t k = 0; k < pr->n; k++)
			if (pr->v[k].kind != STRM_EXACT)
				return 0;
	}
	return 1;
}

/* The caller index of a service: every ALLOW rule that applies to it whose
 * sources all name exact principals (and nothing else about the caller's
 * identity beyond that) is filed under each of those principals. */
static int build_caller_index(zt_policy_snapshot *s, struct svc *sv)
{
	struct caller_idx *ix;
	uint32_t total = 0, keyed = 0;
	/* the ALLOW lists in decision order (as walk() visits them) */
	const struct plist *all[6];
	int na = 0;
	static const struct plist none;
	all[na++] = &s->org_lists.allow;
	all[na++] = sv->sel ? &sv->sel[SCOPE_ORG].allow : &none;
	if (sv->ws >= 0 && s->m->org.ws[sv->ws].tenant >= 0) {
		all[na++] = &s->tenant_lists[s->m->org.ws[sv->ws].tenant].allow;
		all[na++] = sv->sel ? &sv->sel[SCOPE_TENANT].allow : &none;
	}
	if (sv->ws >= 0)
		all[na++] = &s->ws_lists[sv->ws].allow;
	all[na++] = sv->sel ? &sv->sel[SCOPE_WORKSPACE].allow : &none;
	for (int l = 0; l < na; l++)
		for (uint32_t i = 0; i < all[l]->n; i++)
			total += all[l]->v[i]->nrules;
	if (total < INDEX_MIN_RULES)
		return 0;
	if (!(ix = zt_arena_alloc(s->arena, sizeof *ix)))
		return -1;
	/* pass 1: count keyed entries */
	for (int l = 0; l < na; l++)
		for (uint32_t i = 0; i < all[l]->n; i++) {
			const struct policy *p = all[l]->v[i];

			for (uint32_t r = 0; r < p->nrules; r++) {
				const struct rule *ru = &p->rules[r];

				if (keyed_by_principal(ru))
					for (uint32_t f = 0; f < ru->nfrom; f++)
						keyed += ru->from[f].principals.n;
				else
					ix->nrest++;
			}
		}
	ix->cap = 16;
	while (ix->cap < keyed * 2)
		ix->cap *= 2;
	ix->slots = zt_arena_alloc(s->arena, ix->cap * sizeof *ix->slots);
	ix->refs = zt_arena_alloc(s->arena, (keyed + 1) * sizeof *ix->refs);
	ix->rest = zt_arena_alloc(s->arena, (ix->nrest + 1) * sizeof *ix->rest);
	if (!ix->slots || !ix->refs || !ix->rest)
		return -1;
	/* pass 2: count per principal; pass 3: fill (refs keep decision order) */
	for (int pass = 0; pass < 2; pass++) {
		uint32_t nrest = 0, seq = 0;

		for (int l = 0; l < na; l++)
			for (uint32_t i = 0; i < all[l]->n; i++) {
				const struct policy *p = all[l]->v[i];

				for (uint32_t r = 0; r < p->nrules; r++, seq++) {
					const struct rule *ru = &p->rules[r];

					if (!keyed_by_principal(ru)) {
						if (pass == 1)
							ix->rest[nrest++] = (struct ruleref){ p, r, seq };
						continue;
					}
					for (uint32_t f = 0; f < ru->nfrom; f++)
						for (uint32_t k = 0; k < ru->from[f].principals.n; k++) {
							const struct strm *m = &ru->from[f].principals.v[k];
							uint32_t h = (uint32_t)hash_bytes(m->s, m->len) & (ix->cap - 1);

							while (ix->slots[h].principal &&
							       !(ix->slots[h].len == m->len &&
								 memcmp(ix->slots[h].principal, m->s, m->len) == 0))
								h = (h + 1) & (ix->cap - 1);
							if (pass == 0) {
								ix->slots[h].principal = m->s;
								ix->slots[h].len = m->len;
								ix->slots[h].n++;
							} else {
								struct cslot *cs = &ix->slots[h];
								struct ruleref *dst = &ix->refs[cs->first + cs->n];

								/* the same rule twice under one key (two sources
								 * naming one principal) is filed once */
								if (cs->n && dst[-1].seq == seq)
									continue;
								*dst = (struct ruleref){ p, r, seq };
								cs->n++;
							}
						}
				}
			}
		if (pass == 0) {
			uint32_t off = 0;

			for (uint32_t h = 0; h < ix->cap; h++) {
				ix->slots[h].first = off;
				off += ix->slots[h].n;
				ix->slots[h].n = 0;
			}
		}
	}
	sv->idx = ix;
	return 0;
}

/* The decision-order lists of a service (see walk()). */
static int level_lists(const zt_policy_snapshot *s, const struct svc *sv, size_t off,
		       const struct plist **out)
{
	const struct org *org = &s->m->org;
	int n = 0;

	for (int l = 0; l < 3; l++) {
		const struct lists *unsel = l == SCOPE_ORG ? &s->org_lists
					    : l == SCOPE_TENANT ? (org->ws[sv->ws].tenant >= 0
								   ? &s->tenant_lists[org->ws[sv->ws].tenant]
								   : NULL)
								: &s->ws_lists[sv->ws];

		if (unsel)
			out[n++] = (const struct plist *)((const char *)unsel + off);
		if (sv->sel)
			out[n++] = (const struct plist *)((const char *)&sv->sel[l] + off);
	}
	return n;
}

static int flatten(zt_policy_snapshot *s, struct svc *sv)
{
	const struct plist *d[6], *a[6];
	int nd = level_lists(s, sv, offsetof(struct lists, deny), d);
	int na = level_lists(s, sv, offsetof(struct lists, allow), a);
	uint32_t total = 0, k = 0;

	for (int i = 0; i < nd; i++)
		total += d[i]->n;
	for (int i = 0; i < na; i++)
		total += a[i]->n;
	if (total > FLAT_MAX)
		return 0;
	/* at least one slot, so an empty flattened list is still non-NULL */
	if (!(sv->flat = zt_arena_alloc(s->arena, (total + 1) * sizeof *sv->flat)))
		return -1;
	for (int i = 0; i < nd; i++)
		for (uint32_t j = 0; j < d[i]->n; j++)
			sv->flat[k++] = d[i]->v[j];
	sv->nflat_deny = (uint16_t)k;
	for (int i = 0; i < na; i++)
		for (uint32_t j = 0; j < a[i]->n; j++)
			sv->flat[k++] = a[i]->v[j];
	sv->nflat_allow = (uint16_t)(k - sv->nflat_deny);
	return 0;
}

/* RequestAuthentications by scope, in load order; two passes: count, fill. */
static int file_reqauthns(zt_policy_snapshot *s)
{
	const struct model *m = s->m;
	const struct org *org = &m->org;

	s->tenant_ra = zt_arena_alloc(s->arena, (org->ntenants + 1) * sizeof *s->tenant_ra);
	s->ws_ra = zt_arena_alloc(s->arena, (org->nws + 1) * sizeof *s->ws_ra);
	if (!s->tenant_ra || !s->ws_ra)
		return -1;
	memset(s->tenant_ra, 0, (org->ntenants + 1) * sizeof *s->tenant_ra);
	memset(s->ws_ra, 0, (org->nws + 1) * sizeof *s->ws_ra);
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < m->nras; i++) {
			const struct reqauthn *ra = m->ras[i];
			const struct policy *p = &ra->head;
			struct ralist *l;

			if (!p->display || !ra->nrules)
				continue;
			l = p->level == SCOPE_ORG ? &s->org_ra
			    : p->level == SCOPE_TENANT ? &s->tenant_ra[p->tenant] : &s->ws_ra[p->ws];
			if (pass == 0)
				l->n++;
			else
				l->v[l->n++] = ra;
		}
		if (pass == 1)
			break;
		for (uint32_t k = 0; k < org->ntenants + org->nws + 1; k++) {
			struct ralist *l = k == 0 ? &s->org_ra
				       : k <= org->ntenants ? &s->tenant_ra[k - 1] : &s->ws_ra[k - 1 - org->ntenants];

			if (l->n && !(l->v = zt_arena_alloc(s->arena, l->n * sizeof *l->v)))
				return -1;
			l->n = 0;
		}
	}
	return 0;
}

static int add_service(zt_policy_snapshot *s, uint32_t cap, const char *id, size_t len, int ws,
		       const char *name)
{
	struct svc *sv;

	if (s->nsvcs == cap)
		return -1;
	sv = &s->svcs[s->nsvcs++];
	memset(sv, 0, sizeof *sv);
	sv->id = zt_arena_strndup(s->arena, id, len);
	sv->id_len = (uint32_t)len;
	sv->hash = hash_bytes(id, len);
	sv->ws = ws;
	sv->name = name;
	return sv->id ? 0 : -1;
}

zt_policy_snapshot *zt_policy_compile(const zt_policy_src *src, zt_err *e)
{
	struct model *m = zt_policy_src_model(src);
	struct org *org = &m->org;
	zt_policy_snapshot *s;
	struct lists_cap oc = { 0 }, *tc = NULL, *wc = NULL, (*sc)[3] = NULL;
	uint32_t cap = 0;
	char id[2100];

	for (uint32_t w = 0; w < org->nws; w++)
		cap += org->name ? org->ws[w].nservices : 1;

	if (zt_policy_src_nerrors(src) != 0) {
		zt_err_set(e, ZT_EINVAL, "the policy set has %zu error(s); run zt policy check",
			   zt_policy_src_nerrors(src));
		return NULL;
	}
	if (!(s = calloc(1, sizeof *s)) || !(s->arena = zt_arena_new_huge())) {
		free(s);
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	atomic_fetch_add(&m->refs, 1);
	s->m = m;
	s->istio_mode = org->name == NULL;
	s->tenant_lists = calloc(org->ntenants + 1, sizeof *s->tenant_lists);
	s->ws_lists = calloc(org->nws + 1, sizeof *s->ws_lists);
	tc = calloc(org->ntenants + 1, sizeof *tc);
	wc = calloc(org->nws + 1, sizeof *wc);
	s->svcs = zt_huge_calloc(cap + 1, sizeof *s->svcs);
	if (!s->tenant_lists || !s->ws_lists || !tc || !wc || !s->svcs)
		goto oom;
	/* services: declared ones, or (Istio mode) one entry per namespace */
	for (uint32_t w = 0; w < org->nws; w++) {
		const struct workspace *ws = &org->ws[w];

		if (s->istio_mode) {
			if (add_service(s, cap, ws->name, strlen(ws->name), (int)w, NULL) != 0)
				goto oom;
			continue;
		}
		for (uint32_t i = 0; i < ws->nservices; i++) {
			int n = snprintf(id, sizeof id, "spiffe://%s/ns/%s/sa/%s", org->td, ws->name,
					 ws->services[i]);

			if (n < 0 || (size_t)n >= sizeof id) {
				zt_err_set(e, ZT_ELIMIT, "the SPIFFE ID of service %s is too long", ws->services[i]);
				goto fail;
			}
			if (add_service(s, cap, id, (size_t)n, (int)w, ws->services[i]) != 0)
				goto oom;
		}
	}
	/* the hash table, at most half full */
	uint32_t tsize = 16;
	while (tsize < s->nsvcs * 2)
		tsize *= 2;
	if (!(s->table = zt_huge_calloc(tsize, sizeof *s->table)))
		goto oom;
	s->tmask = tsize - 1;
	for (uint32_t i = 0; i < s->nsvcs; i++) {
		uint32_t h = (uint32_t)s->svcs[i].hash & s->tmask;

		while (s->table[h])
			h = (h + 1) & s->tmask;
		s->table[h] = i + 1;
	}
	if (!(sc = calloc(s->nsvcs + 1, sizeof *sc)))
		goto oom;
	/* file each policy: unselected ones per scope, selected ones per service */
	for (uint32_t i = 0; i < m->npols; i++) {
		const struct policy *p = m->pols[i];
		int r = 0;

		if (!p->display)
			continue;
		s->has_audit |= p->action == ACT_AUDIT && !p->dry_run;
		s->has_dry |= p->dry_run;
		s->needs |= rule_needs(p);
		if (!p->selector || s->istio_mode) {
			/* Istio mode checks selectors at decision time */
			if (p->level == SCOPE_ORG)
				r = lists_add(s->arena, &s->org_lists, &oc, p);
			else if (p->level == SCOPE_TENANT)
				r = lists_add(s->arena, &s->tenant_lists[p->tenant], &tc[p->tenant], p);
			else
				r = lists_add(s->arena, &s->ws_lists[p->ws], &wc[p->ws], p);
			if (r != 0)
				goto oom;
			continue;
		}
		for (uint32_t k = 0; k < p->nselector; k++) {
			for (uint32_t w = 0; w < org->nws; w++) {
				const struct workspace *ws = &org->ws[w];
				const struct svc *sv;
				int n;

				if ((p->level == SCOPE_WORKSPACE && (int)w != p->ws) ||
				    (p->level == SCOPE_TENANT && ws->tenant != p->tenant))
					continue;
				n = snprintf(id, sizeof id, "spiffe://%s/ns/%s/sa/%s", org->td, ws->name,
					     p->selector[k]);
				if (n < 0 || (size_t)n >= sizeof id ||
				    !(sv = find_svc(s, id, (size_t)n)))
					continue;
				uint32_t si = (uint32_t)(sv - s->svcs);
				struct svc *msv = &s->svcs[si];

				if (!msv->sel && !(msv->sel = zt_arena_alloc(s->arena, 3 * sizeof *msv->sel)))
					goto oom;
				if (lists_add(s->arena, &msv->sel[p->level], &sc[si][p->level], p) != 0)
					goto oom;
			}
		}
	}
	if (!s->istio_mode)
		for (uint32_t i = 0; i < s->nsvcs; i++)
			if (build_caller_index(s, &s->svcs[i]) != 0 || flatten(s, &s->svcs[i]) != 0)
				goto oom;
	if (m->nras && file_reqauthns(s) != 0)
		goto oom;
	free(tc);
	free(wc);
	free(sc);
	return s;
oom:
	zt_err_set(e, ZT_ENOMEM, "out of memory compiling the policy");
fail:
	free(tc);
	free(wc);
	free(sc);
	zt_policy_snapshot_unref(s);
	return NULL;
}

void zt_policy_snapshot_ref(zt_policy_snapshot *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void zt_policy_snapshot_unref(zt_policy_snapshot *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	free(s->tenant_lists);
	free(s->ws_lists);
	free(s->svcs);
	free(s->table);
	zt_arena_free(s->arena);
	zt_model_unref(s->m);
	free(s);
}

size_t zt_policy_snapshot_nservices(const zt_policy_snapshot *s)
{
	return s->istio_mode ? 0 : s->nsvcs;
}

size_t zt_policy_snapshot_bytes(const zt_policy_snapshot *s)
{
	const struct org *org = &s->m->org;

	return zt_arena_size(s->arena) + zt_arena_size(s->m->arena) +
	       (size_t)(s->tmask + 1) * sizeof *s->table + (size_t)s->nsvcs * sizeof *s->svcs +
	       (org->ntenants + org->nws + 2) * sizeof(struct lists) + s->m->cappols * sizeof(void *) +
	       org->nws * sizeof(struct workspace);
}

size_t zt_policy_snapshot_npolicies(const zt_policy_snapshot *s)
{
	return s->m->npols;
}

/* ---- deciding ---- */

/* What a decision walks for one destination. */
struct scope_walk {
	const struct lists *level[3];     /* unselected, per level (may be NULL) */
	const struct lists *selected[3];  /* selected by name, per level */
	const char *svc_name;             /* Istio mode: checked against selectors */
	size_t svc_name_len;
	const struct caller_idx *idx;
	const struct svc *svc;            /* org mode */
};

static int selects(const struct policy *p, const struct scope_walk *w)
{
	if (!p->selector || !w->svc_name)
		return 1;
	for (uint32_t i = 0; i < p->nselector; i++)
		if (strlen(p->selector[i]) == w->svc_name_len &&
		    memcmp(p->selector[i], w->svc_name, w->svc_name_len) == 0)
			return 1;
	return 0;
}

/* Parses "spiffe://TD/ns/NS/sa/SVC" into namespace and service. */
static int split_workload_id(const char *id, size_t len, const char **ns, size_t *nslen,
			     const char **svc, size_t *svclen)
{
	const char *p = id, *end = id + len, *q;

	if (len < 9 || memcmp(p, "spiffe://", 9) != 0)
		return -1;
	p += 9;
	if (!(q = memchr(p, '/', (size_t)(end - p))))
		return -1;
	p = q;
	if (end - p < 4 || memcmp(p, "/ns/", 4) != 0)
		return -1;
	p += 4;
	if (!(q = memchr(p, '/', (size_t)(end - p))) || q == p)
		return -1;
	*ns = p;
	*nslen = (size_t)(q - p);
	p = q;
	if (end - p < 5 || memcmp(p, "/sa/", 4) != 0)
		return -1;
	p += 4;
	if (memchr(p, '/', (size_t)(end - p)) || p == end)
		return -1;
	*svc = p;
	*svclen = (size_t)(end - p);
	return 0;
}

/* Sets up the walk; returns a reason when the destination is unknown. */
static const char *walk_init(const zt_policy_snapshot *s, const zt_policy_request *req,
			     struct scope_walk *w)
{
	const struct org *org = &s->m->org;
	const struct svc *sv;

	memset(w, 0, sizeof *w);
	w->level[SCOPE_ORG] = &s->org_lists;
	if (s->istio_mode) {
		const char *ns, *svc;
		size_t nslen, svclen;

		if (split_workload_id(req->dest_service.p, req->dest_service.len, &ns, &nslen, &svc,
				      &svclen) != 0)
			return "the destination is not a workload ID spiffe://TD/ns/NAMESPACE/sa/SERVICE";
		w->svc_name = svc;
		w->svc_name_len = svclen;
		sv = find_svc(s, ns, nslen);
		if (sv)
			w->level[SCOPE_WORKSPACE] = &s->ws_lists[sv->ws];
		return NULL;
	}
	sv = find_svc(s, req->dest_service.p, req->dest_service.len);
	if (!sv)
		return "unknown destination service: it is not declared in the organization";
	if (org->ws[sv->ws].tenant >= 0)
		w->level[SCOPE_TENANT] = &s->tenant_lists[org->ws[sv->ws].tenant];
	w->level[SCOPE_WORKSPACE] = &s->ws_lists[sv->ws];
	for (int l = 0; l < 3 && sv->sel; l++)
		w->selected[l] = &sv->sel[l];
	w->idx = sv->idx;
	w->svc = sv;
	return NULL;
}

static void report(zt_policy_match *arr, size_t *n, const struct policy *p, uint32_t rule)
{
	if (*n < ZT_POLICY_MAX_REPORTED)
		arr[(*n)++] = (zt_policy_match){ p->display, (int)rule };
}

/* First matching rule of a policy, or -1. */
static int policy_match(const struct policy *p, const struct facts *f)
{
	for (uint32_t r = 0; r < p->nrules; r++)
		if (rule_match(&p->rules[r], p->action, f, NULL, 0))
			return (int)r;
	return -1;
}

/* Walks one kind of list over the levels in order; calls back on matches. */
typedef int (*match_fn)(const struct policy *p, int rule, void *ctx);

static int walk(const struct scope_walk *w, size_t off, const struct facts *f, match_fn fn,
		void *ctx)
{
	for (int l = 0; l < 3; l++) {
		for (int k = 0; k < 2; k++) {
			const struct lists *ls = k ? w->selected[l] : w->level[l];
			const struct plist *pl;

			if (!ls)
				continue;
			pl = (const struct plist *)((const char *)ls + off);
			for (uint32_t i = 0; i < pl->n; i++) {
				const struct policy *p = pl->v[i];
				int r;

				if (!selects(p, w) || (r = policy_match(p, f)) < 0)
					continue;
				if (fn(p, r, ctx))
					return 1;
			}
		}
	}
	return 0;
}

static int first_match(const struct policy *p, int rule, void *ctx)
{
	zt_policy_match *m = ctx;

	m->policy = p->display;
	m->rule = rule;
	return 1;
}

static int add_audit(const struct policy *p, int rule, void *ctx)
{
	zt_policy_decision *d = ctx;

	report(d->audit, &d->naudit, p, (uint32_t)rule);
	return 0;
}

static int add_dry(const struct policy *p, int rule, void *ctx)
{
	zt_policy_decision *d = ctx;

	if (d->ndry_run < ZT_POLICY_MAX_REPORTED)
		d->dry_run_effect[d->ndry_run] = p->action == ACT_DENY ? ZT_POLICY_DENY : ZT_POLICY_ALLOW;
	report(d->dry_run, &d->ndry_run, p, (uint32_t)rule);
	return 0;
}

/* ALLOW through the caller index: the candidates for this caller and the
 * unkeyed rules, in decision order (both arrays are in that order). */
static int allow_indexed(const struct caller_idx *ix, const struct facts *f, zt_policy_match *m)
{
	const struct ruleref *a = NULL, *b = ix->rest;
	uint32_t na = 0, nb = ix->nrest;

	if (f->principal_len) {
		uint32_t h = (uint32_t)hash_bytes(f->principal, f->principal_len) & (ix->cap - 1);

		for (; ix->slots[h].principal; h = (h + 1) & (ix->cap - 1))
			if (ix->slots[h].len == f->principal_len &&
			    memcmp(ix->slots[h].principal, f->principal, f->principal_len) == 0) {
				a = &ix->refs[ix->slots[h].first];
				na = ix->slots[h].n;
				break;
			}
	}
	while (na || nb) {
		const struct ruleref *r;

		/* merge in decision order */
		if (na && (!nb || a->seq < b->seq)) {
			r = a++;
			na--;
		} else {
			r = b++;
			nb--;
		}
		if (rule_match(&r->p->rules[r->rule], ACT_ALLOW, f, NULL, 0)) {
			m->policy = r->p->display;
			m->rule = (int)r->rule;
			return 1;
		}
	}
	return 0;
}

#define OFF(field) offsetof(struct lists, field)

void zt_policy_decide(const zt_policy_snapshot *s, const zt_policy_request *req,
		      zt_policy_decision *d)
{
	struct scope_walk w;
	struct facts f;
	const char *unknown;

	d->effect = ZT_POLICY_DENY;
	d->by.policy = NULL;
	d->by.rule = -1;
	d->naudit = d->ndry_run = 0;
	if (!s) {
		/* nothing loaded yet (a proxy waiting for its policy server): deny by default */
		d->reason = "no policy in force yet";
		return;
	}
	if ((unknown = walk_init(s, req, &w)) != NULL) {
		d->reason = unknown;
		return;
	}
	facts_init(&f, req, s->needs);
	if (w.svc && w.svc->flat) {
		const struct policy *const *p = w.svc->flat;
		uint32_t i, nd = w.svc->nflat_deny, na = w.svc->nflat_allow;
		int r = -1;

		for (i = 0; i < nd && (r = policy_match(p[i], &f)) < 0; i++)
			;
		if (r >= 0) {
			d->by = (zt_policy_match){ p[i]->display, r };
			d->reason = "denied by a DENY policy";
			goto reports;
		}
		p += nd;
		for (i = 0; i < na && (r = policy_match(p[i], &f)) < 0; i++)
			;
		if (r >= 0) {
			d->by = (zt_policy_match){ p[i]->display, r };
			d->effect = ZT_POLICY_ALLOW;
			d->reason = "allowed by an ALLOW policy";
		} else {
			d->reason = "no ALLOW policy matched (deny by default)";
		}
		goto reports;
	}
	if (walk(&w, OFF(deny), &f, first_match, &d->by)) {
		d->reason = "denied by a DENY policy";
	} else if (w.idx ? allow_indexed(w.idx, &f, &d->by)
			 : walk(&w, OFF(allow), &f, first_match, &d->by)) {
		d->effect = ZT_POLICY_ALLOW;
		d->reason = "allowed by an ALLOW policy";
	} else {
		d->reason = "no ALLOW policy matched (deny by default)";
	}
reports:
	if (s->has_audit)
		walk(&w, OFF(audit), &f, add_audit, d);
	if (s->has_dry)
		walk(&w, OFF(dry), &f, add_dry, d);
}

static const char *action_name(const struct policy *p)
{
	return p->action == ACT_DENY ? "DENY" : p->action == ACT_AUDIT ? "AUDIT" : "ALLOW";
}

struct explain_ctx {
	zt_buf *out;
	zt_err *e;
	const struct facts *f;
	int r;
};

static void explain_policy(const struct policy *p, struct explain_ctx *x)
{
	char why[200];

	if (x->r)
		return;
	x->r = zt_buf_appendf(x->out, x->e, "  %s (%s%s)%s\n", p->display, action_name(p),
			      p->dry_run ? ", dry-run" : "", p->nrules ? ":" : ": no rules, never matches");
	for (uint32_t r = 0; r < p->nrules && !x->r; r++) {
		why[0] = '\0';
		if (rule_match(&p->rules[r], p->action, x->f, why, sizeof why))
			x->r = zt_buf_appendf(x->out, x->e, "    rule %u: matches\n", r);
		else
			x->r = zt_buf_appendf(x->out, x->e, "    rule %u: no match: %s\n", r,
					      why[0] ? why : "a condition does not hold");
	}
}

int zt_policy_explain(const zt_policy_snapshot *s, const zt_policy_request *req,
		      zt_policy_decision *d, zt_buf *out, zt_err *e)
{
	static const char *const level_names[] = { "organization", "tenant", "workspace" };
	struct scope_walk w;
	struct facts f;
	struct explain_ctx x = { out, e, &f, 0 };
	const char *unknown;
	int any = 0;

	zt_policy_decide(s, req, d);
	if ((unknown = walk_init(s, req, &w)) != NULL)
		return zt_buf_appendf(out, e, "  %s\n", unknown);
	facts_init(&f, req, FACT_ALL);
	for (int l = 0; l < 3 && !x.r; l++)
		for (int k = 0; k < 2 && !x.r; k++) {
			const struct lists *ls = k ? w.selected[l] : w.level[l];
			const struct plist *pls[4];

			if (!ls)
				continue;
			pls[0] = &ls->deny;
			pls[1] = &ls->allow;
			pls[2] = &ls->audit;
			pls[3] = &ls->dry;
			for (int t = 0; t < 4 && !x.r; t++)
				for (uint32_t i = 0; i < pls[t]->n && !x.r; i++) {
					if (!selects(pls[t]->v[i], &w))
						continue;
					if (!any++)
						x.r = zt_buf_appendf(out, e, "policies that apply to %.*s:\n",
								     (int)req->dest_service.len,
								     req->dest_service.p);
					if (!x.r)
						x.r = zt_buf_appendf(out, e, "  [%s]\n", level_names[l]);
					explain_policy(pls[t]->v[i], &x);
				}
		}
	if (!any && !x.r)
		x.r = zt_buf_appendf(out, e, "no policy applies to %.*s: denied by default\n",
				     (int)req->dest_service.len, req->dest_service.p);
	return x.r;
}

/* ---- end-user tokens ---- */

static int ra_selects(const struct policy *p, const char *svc, size_t len)
{
	if (!p->selector)
		return 1;
	for (uint32_t i = 0; i < p->nselector; i++)
		if (strlen(p->selector[i]) == len && memcmp(p->selector[i], svc, len) == 0)
			return 1;
	return 0;
}

size_t zt_policy_jwt_rules(const zt_policy_snapshot *s, const char *dest, size_t dest_len,
			   const zt_jwt_rule **out, size_t max)
{
	const struct ralist *lists[3] = { NULL, NULL, NULL };
	const char *ns = NULL, *svc = NULL;
	size_t nslen = 0, svclen = 0, n = 0;
	int ws = -1;

	if (!s || !s->m->nras || !s->tenant_ra)
		return 0;
	if (s->istio_mode) {
		const struct svc *sv;

		if (split_workload_id(dest, dest_len, &ns, &nslen, &svc, &svclen) != 0)
			return 0;
		if ((sv = find_svc(s, ns, nslen)))
			ws = sv->ws;
	} else {
		const struct svc *sv = find_svc(s, dest, dest_len);

		if (!sv)
			return 0; /* not declared: the policy denies it anyway */
		ws = sv->ws;
		svc = sv->name;
		svclen = strlen(sv->name);
	}
	lists[0] = &s->org_ra;
	if (ws >= 0) {
		int t = s->m->org.ws[ws].tenant;

		if (t >= 0)
			lists[1] = &s->tenant_ra[t];
		lists[2] = &s->ws_ra[ws];
	}
	for (int l = 0; l < 3; l++) {
		if (!lists[l])
			continue;
		for (uint32_t i = 0; i < lists[l]->n; i++) {
			const struct reqauthn *ra = lists[l]->v[i];

			if (!ra_selects(&ra->head, svc, svclen))
				continue;
			for (uint32_t r = 0; r < ra->nrules; r++, n++)
				if (n < max)
					out[n] = &ra->rules[r];
		}
	}
	return n;
}

/* ---- swapping ---- */

/*
 * Readers pin one of two counters, chosen by the generation, for the few
 * nanoseconds between loading the pointer and taking a reference. A swap
 * publishes the new snapshot, moves new readers to the other counter, and
 * waits only for the readers already pinned on the old one, so a steady
 * stream of readers cannot hold it up.
 */
struct zt_policy_holder {
	_Atomic(zt_policy_snapshot *) cur;
	atomic_uint gen;
	atomic_int pins[2];
	atomic_flag writer; /* one swap at a time */
};

zt_policy_holder *zt_policy_holder_new(zt_policy_snapshot *initial)
{
	zt_policy_holder *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	atomic_init(&h->cur, initial);
	atomic_init(&h->gen, 0);
	atomic_init(&h->pins[0], 0);
	atomic_init(&h->pins[1], 0);
	atomic_flag_clear(&h->writer);
	return h;
}

void zt_policy_holder_free(zt_policy_holder *h)
{
	if (!h)
		return;
	zt_policy_snapshot_unref(atomic_load(&h->cur));
	free(h);
}

zt_policy_snapshot *zt_policy_holder_acquire(zt_policy_holder *h)
{
	zt_policy_snapshot *s;
	unsigned g;

	for (;;) {
		g = atomic_load(&h->gen);
		atomic_fetch_add(&h->pins[g & 1], 1);
		if (atomic_load(&h->gen) == g)
			break; /* pinned in the generation a swap will wait for */
		atomic_fetch_sub(&h->pins[g & 1], 1);
	}
	s = atomic_load(&h->cur);
	zt_policy_snapshot_ref(s);
	atomic_fetch_sub(&h->pins[g & 1], 1);
	return s;
}

void zt_policy_holder_swap(zt_policy_holder *h, zt_policy_snapshot *next)
{
	zt_policy_snapshot *old;
	unsigned g;

	while (atomic_flag_test_and_set(&h->writer))
		sched_yield();
	old = atomic_exchange(&h->cur, next);
	g = atomic_fetch_add(&h->gen, 1);
	/* readers that may have loaded `old` are pinned on g's counter */
	while (atomic_load(&h->pins[g & 1]) != 0)
		sched_yield();
	atomic_flag_clear(&h->writer);
	zt_policy_snapshot_unref(old);
}
