/*
 * policy/load.c: documents in, the policy model out, with diagnostics that
 * point at file, line and column.
 *
 * Unknown fields inside a policy's spec are errors, never ignored: a
 * condition zt does not understand, silently dropped, would widen an ALLOW
 * or narrow a DENY. Unknown metadata is only warned about.
 */
#include "policy_int.h"

#include "crypto/crypto.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FILE_MAX_BYTES (64u << 20)
#define MAX_DOCS 1000000

/* ---- diagnostics ---- */

void pol_diag(zt_policy_src *src, enum zt_diag_level lvl, const struct rawdoc *rd,
	      const json_t *node, const char *fmt, ...)
{
	zt_diag *d;
	va_list ap;

	if (src->ndiags == src->capdiags) {
		size_t ncap = src->capdiags ? src->capdiags * 2 : 32;
		zt_diag *nd = realloc(src->diags, ncap * sizeof *nd);

		if (!nd)
			return;
		src->diags = nd;
		src->capdiags = ncap;
	}
	d = &src->diags[src->ndiags++];
	memset(d, 0, sizeof *d);
	d->level = lvl;
	snprintf(d->file, sizeof d->file, "%s", rd && rd->file ? rd->file : "");
	if (rd && node && zt_docpos_get(rd->pos, node, &d->line, &d->column) != 0)
		d->line = d->column = 0;
	if (rd && d->line == 0)
		(void)zt_docpos_get(rd->pos, rd->doc, &d->line, &d->column);
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof d->msg, fmt, ap);
	va_end(ap);
	if (lvl == ZT_DIAG_ERROR)
		src->nerrors++;
}


size_t zt_policy_src_ndiags(const zt_policy_src *src) { return src->ndiags; }
const zt_diag *zt_policy_src_diag(const zt_policy_src *src, size_t i) { return &src->diags[i]; }
size_t zt_policy_src_nerrors(const zt_policy_src *src) { return src->nerrors; }
size_t zt_policy_src_ntests(const zt_policy_src *src) { return src->ntests; }

json_t *zt_policy_src_test(const zt_policy_src *src, size_t i, const char **file)
{
	if (file)
		*file = src->tests[i].file;
	return src->tests[i].doc;
}

/* ---- the set ---- */

zt_policy_src *zt_policy_src_new(const zt_policy_load_opts *opts)
{
	zt_policy_src *src = calloc(1, sizeof *src);

	if (!src)
		return NULL;
	src->m = calloc(1, sizeof *src->m);
	if (!src->m || !(src->m->arena = zt_arena_new_huge())) {
		zt_policy_src_free(src);
		return NULL;
	}
	atomic_init(&src->m->refs, 1);
	snprintf(src->root_ns, sizeof src->root_ns, "%s",
		 opts && opts->istio_root_ns ? opts->istio_root_ns : "istio-system");
	return src;
}

void zt_model_unref(struct model *m)
{
	if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	free(m->pols);
	free(m->ras);
	for (uint32_t i = 0; i < m->njwks; i++) {
		zt_jwks_free(m->jwks[i]);
		free(m->jwks[i]);
	}
	free(m->jwks);
	free(m->org.tenants);
	free(m->org.ws);
	zt_arena_free(m->arena);
	free(m);
}

void zt_policy_src_free(zt_policy_src *src)
{
	if (!src)
		return;
	for (size_t i = 0; i < src->nraw; i++)
		json_decref(src->raw[i].doc);
	for (size_t i = 0; i < src->ntests; i++)
		json_decref(src->tests[i].doc);
	for (size_t i = 0; i < src->npositions; i++)
		zt_docpos_free(src->positions[i]);
	free(src->positions);
	free(src->raw);
	free(src->tests);
	free(src->diags);
	zt_strset_free(src->svcset);
	zt_model_unref(src->m);
	free(src);
}

struct model *zt_policy_src_model(const zt_policy_src *src);

struct model *zt_policy_src_model(const zt_policy_src *src)
{
	return src->m;
}

static int add_raw(zt_policy_src *src, json_t *doc, const char *file, const zt_docpos *pos)
{
	if (src->nraw == src->capraw) {
		size_t ncap = src->capraw ? src->capraw * 2 : 64;
		struct rawdoc *nr = realloc(src->raw, ncap * sizeof *nr);

		if (!nr)
			return -1;
		src->raw = nr;
		src->capraw = ncap;
	}
	json_incref(doc);
	src->raw[src->nraw++] = (struct rawdoc){ doc, file, pos };
	return 0;
}

/* Queues documents; `kind: List` items are unpacked (as kubectl does). */
static void queue_doc(zt_policy_src *src, json_t *doc, const char *file, const zt_docpos *pos,
		      int depth)
{
	struct rawdoc rd = { doc, file, pos };
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	json_t *item;
	size_t i;

	if (json_is_null(doc))
		return; /* an empty document ("---" alone) */
	if (!json_is_object(doc)) {
		ERR(src, &rd, doc, "a document must be a mapping with apiVersion, kind, metadata and spec");
		return;
	}
	if (kind && strcmp(kind, "List") == 0 && depth == 0) {
		json_t *items = json_object_get(doc, "items");

		if (!json_is_array(items)) {
			ERR(src, &rd, doc, "a List needs an items array");
			return;
		}
		json_array_foreach(items, i, item)
			queue_doc(src, item, file, pos, 1);
		return;
	}
	if (add_raw(src, doc, file, pos) != 0)
		ERR(src, &rd, doc, "out of memory");
}

int zt_policy_src_add_text(zt_policy_src *src, const char *name, const char *text, size_t len)
{
	size_t before = src->nerrors, nlen = strlen(name);
	const char *file = zt_arena_strndup(src->m->arena, name, nlen);
	zt_docpos *pos = NULL, **np;
	json_t *docs, *doc;
	zt_err e;
	size_t i;

	/* JSON is read by the YAML parser too, which records where each value
	 * is; jansson only speaks up when that fails, for JSON's own message */
	docs = zt_yaml_parse_pos(text, len, MAX_DOCS, &pos, &e);
	if (!docs && nlen >= 5 && strcmp(name + nlen - 5, ".json") == 0) {
		json_t *one = zt_json_parse(text, len, &e);

		docs = one ? json_array() : NULL;
		if (docs)
			json_array_append_new(docs, one);
	}
	if (!docs) {
		struct rawdoc rd = { NULL, file, NULL };
		zt_diag *d;

		ERR(src, &rd, NULL, "%s", e.msg);
		/* the parsers name "line L, column C": carry them over */
		const char *l = strstr(e.msg, "line ");
		if (l && src->ndiags) {
			d = &src->diags[src->ndiags - 1];
			sscanf(l, "line %d, column %d", &d->line, &d->column);
		}
		return (int)(src->nerrors - before);
	}
	if (pos) {
		np = realloc(src->positions, (src->npositions + 1) * sizeof *np);
		if (np) {
			src->positions = np;
			src->positions[src->npositions++] = pos;
		} else {
			zt_docpos_free(pos);
			pos = NULL;
		}
	}
	json_array_foreach(docs, i, doc)
		queue_doc(src, doc, file, pos, 0);
	json_decref(docs);
	return (int)(src->nerrors - before);
}

static int is_policy_file(const char *name)
{
	size_t n = strlen(name);

	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(name + n - 4, ".yml") == 0) ||
	       (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_path_depth(zt_policy_src *src, const char *path, int depth)
{
	struct stat st;
	size_t before = src->nerrors;
	struct rawdoc rd = { NULL, path, NULL };

	if (stat(path, &st) != 0) {
		ERR(src, &rd, NULL, "cannot read %s: no such file or folder", path);
		return 1;
	}
	if (S_ISDIR(st.st_mode)) {
		DIR *d;
		struct dirent *de;
		char **names = NULL;
		size_t n = 0;

		if (depth > 16 || !(d = opendir(path))) {
			ERR(src, &rd, NULL, "cannot read folder %s", path);
			return 1;
		}
		while ((de = readdir(d)) != NULL) {
			char full[4096], **nn;
			struct stat cst;

			if (de->d_name[0] == '.')
				continue;
			snprintf(full, sizeof full, "%s/%s", path, de->d_name);
			if (stat(full, &cst) != 0 || (!S_ISDIR(cst.st_mode) && !is_policy_file(de->d_name)))
				continue;
			nn = realloc(names, (n + 1) * sizeof *nn);
			if (!nn || !(nn[n] = strdup(full))) {
				names = nn ? nn : names;
				ERR(src, &rd, NULL, "out of memory reading folder %s", path);
				break;
			}
			names = nn;
			n++;
		}
		closedir(d);
		if (n > 1)
			qsort(names, n, sizeof *names, cmp_str);
		for (size_t i = 0; i < n; i++) {
			add_path_depth(src, names[i], depth + 1);
			free(names[i]);
		}
		free(names);
		return (int)(src->nerrors - before);
	}
	zt_buf b;
	zt_err e;

	if (zt_file_read(path, FILE_MAX_BYTES, &b, &e) != 0) {
		ERR(src, &rd, NULL, "%s", e.msg);
		return 1;
	}
	zt_policy_src_add_text(src, path, (const char *)b.p, b.len);
	zt_buf_free(&b, 0);
	return (int)(src->nerrors - before);
}

int zt_policy_src_add_path(zt_policy_src *src, const char *path)
{
	return add_path_depth(src, path, 0);
}

/* Points the last diagnostic at a key rather than at its value. */
void pol_at_key(zt_policy_src *src, const struct rawdoc *rd, const json_t *obj, const char *key)
{
	zt_diag *d = src->ndiags ? &src->diags[src->ndiags - 1] : NULL;
	int line, col;

	if (d && rd && zt_docpos_key_get(rd->pos, obj, key, &line, &col) == 0) {
		d->line = line;
		d->column = col;
	}
}

/* ---- the organization ---- */

static int valid_name(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return 0;
	}
	return 1;
}

/* SPIFFE-ID 2.1 (the policy module stands on core alone, so not identity's) */
static int valid_td(const char *s, size_t n)
{
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '-' || s[i] == '_'))
			return 0;
	return 1;
}

static int find_ws(const struct org *org, const char *name)
{
	for (uint32_t i = 0; i < org->nws; i++)
		if (strcmp(org->ws[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void parse_org(zt_policy_src *src, const struct rawdoc *rd)
{
	static const char *const spec_keys[] = { "trustDomain", "tenants", NULL };
	static const char *const tenant_keys[] = { "name", "workspaces", NULL };
	static const char *const ws_keys[] = { "name", "services", NULL };
	struct org *org = &src->m->org;
	json_t *md = json_object_get(rd->doc, "metadata"), *spec = json_object_get(rd->doc, "spec");
	json_t *name = json_object_get(md, "name"), *td, *tenants, *t;
	size_t i;

	if (org->name) {
		ERR(src, rd, rd->doc, "a second Organization; zt takes exactly one");
		return;
	}
	if (!json_is_string(name) || !valid_name(json_string_value(name), json_string_length(name)) ||
	    strchr(json_string_value(name), '/')) {
		ERR(src, rd, md ? md : rd->doc, "the Organization needs metadata.name (letters, digits, '-', '.', '_')");
		return;
	}
	if (!json_is_object(spec)) {
		ERR(src, rd, rd->doc, "the Organization needs a spec with trustDomain and tenants");
		return;
	}
	pol_known_keys(src, rd, spec, spec_keys, "Organization spec", 0);
	td = json_object_get(spec, "trustDomain");
	if (!json_is_string(td) || !valid_td(json_string_value(td), json_string_length(td))) {
		ERR(src, rd, td ? td : spec,
		    "spec.trustDomain must be a SPIFFE trust domain name: lowercase letters, digits, '.', '-', '_', at most 255 (SPIFFE-ID 2.1), e.g. example.org");
		return;
	}
	tenants = json_object_get(spec, "tenants");
	if (tenants && !json_is_array(tenants)) {
		ERR(src, rd, tenants, "spec.tenants must be a list");
		return;
	}
	org->name = pol_dup_str(src, name);
	org->td = pol_dup_str(src, td);
	src->svcset = zt_strset_new();
	org->tenants = calloc(json_array_size(tenants) + 1, sizeof *org->tenants);
	json_array_foreach(tenants, i, t) {
		json_t *tn = json_object_get(t, "name"), *wss = json_object_get(t, "workspaces"), *w;
		struct tenant *ten;
		size_t j;

		if (!json_is_object(t) || !json_is_string(tn) ||
		    !valid_name(json_string_value(tn), json_string_length(tn))) {
			ERR(src, rd, t, "each tenant needs a name (letters, digits, '-', '.', '_')");
			continue;
		}
		pol_known_keys(src, rd, t, tenant_keys, "a tenant", 0);
		for (uint32_t k = 0; k < org->ntenants; k++)
			if (strcmp(org->tenants[k].name, json_string_value(tn)) == 0)
				ERR(src, rd, tn, "tenant \"%s\" is declared twice", json_string_value(tn));
		ten = &org->tenants[org->ntenants];
		ten->name = pol_dup_str(src, tn);
		ten->first_ws = (int)org->nws;
		if (wss && !json_is_array(wss)) {
			ERR(src, rd, wss, "workspaces must be a list");
			continue;
		}
		json_array_foreach(wss, j, w) {
			json_t *wn = json_object_get(w, "name"), *svcs = json_object_get(w, "services"), *sv;
			struct workspace *nw, *ws;
			size_t k;

			if (!json_is_object(w) || !json_is_string(wn) ||
			    !valid_name(json_string_value(wn), json_string_length(wn))) {
				ERR(src, rd, w, "each workspace needs a name (letters, digits, '-', '.', '_')");
				continue;
			}
			pol_known_keys(src, rd, w, ws_keys, "a workspace", 0);
			/* SPIFFE IDs name the workspace, not the tenant: unique org-wide */
			if (find_ws(org, json_string_value(wn)) >= 0) {
				ERR(src, rd, wn, "workspace \"%s\" is declared twice; workspace names are unique across the organization because SPIFFE IDs (spiffe://TD/ns/WORKSPACE/sa/SERVICE) do not name the tenant",
				    json_string_value(wn));
				continue;
			}
			nw = realloc(org->ws, (org->nws + 1) * sizeof *nw);
			if (!nw)
				return;
			org->ws = nw;
			ws = &org->ws[org->nws];
			memset(ws, 0, sizeof *ws);
			ws->name = pol_dup_str(src, wn);
			ws->tenant = (int)org->ntenants;
			if (svcs && !json_is_array(svcs)) {
				ERR(src, rd, svcs, "services must be a list of names");
				continue;
			}
			ws->services = pol_array(src, json_array_size(svcs), sizeof *ws->services);
			json_array_foreach(svcs, k, sv) {
				int ok = json_is_string(sv) &&
					 valid_name(json_string_value(sv), json_string_length(sv));

				if (!ok) {
					ERR(src, rd, sv, "a service name uses letters, digits, '-', '.', '_'");
					continue;
				}
				char key[600];
				int kn = snprintf(key, sizeof key, "%s/%s", ws->name, json_string_value(sv));
				char *kc = zt_arena_strndup(src->m->arena, key, (size_t)kn);

				if (!kc || !src->svcset || zt_strset_add(src->svcset, kc, (size_t)kn) == 0) {
					ERR(src, rd, sv, "service \"%s\" is listed twice", json_string_value(sv));
					continue;
				}
				ws->services[ws->nservices++] = pol_dup_str(src, sv);
			}
			org->nws++;
			ten->nws++;
		}
		org->ntenants++;
	}
}

/* ---- policies ---- */

static int implicit_ws(zt_policy_src *src, const char *name)
{
	struct org *org = &src->m->org;
	int i = find_ws(org, name);
	struct workspace *nw;

	if (i >= 0)
		return i;
	nw = realloc(org->ws, (org->nws + 1) * sizeof *nw);
	if (!nw)
		return -1;
	org->ws = nw;
	memset(&org->ws[org->nws], 0, sizeof *nw);
	org->ws[org->nws].name = zt_arena_strndup(src->m->arena, name, strlen(name));
	org->ws[org->nws].tenant = -1;
	return (int)org->nws++;
}

static struct policy *push_policy(zt_policy_src *src)
{
	struct model *m = src->m;
	struct policy *p;

	if (m->npols == m->cappols) {
		uint32_t ncap = m->cappols ? m->cappols * 2 : 64;
		struct policy **np = realloc(m->pols, ncap * sizeof *np);

		if (!np)
			return NULL;
		m->pols = np;
		m->cappols = ncap;
	}
	if (!(p = zt_arena_alloc(m->arena, sizeof *p)))
		return NULL;
	p->order = m->npols;
	m->pols[m->npols++] = p;
	return p;
}

/* "ORG[/TENANT[/WORKSPACE]]" */
static int resolve_scope(zt_policy_src *src, const struct rawdoc *rd, json_t *node,
			 const char *scope, struct policy *p)
{
	const struct org *org = &src->m->org;
	char buf[800], *parts[4] = { 0 }, *save = NULL;
	int n = 0;

	if (strlen(scope) >= sizeof buf)
		goto bad;
	snprintf(buf, sizeof buf, "%s", scope);
	for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (n == 3)
			goto bad;
		parts[n++] = t;
	}
	if (n == 0 || strcmp(parts[0], org->name) != 0)
		goto bad;
	p->level = SCOPE_ORG;
	p->tenant = p->ws = -1;
	if (n >= 2) {
		for (uint32_t i = 0; i < org->ntenants; i++)
			if (strcmp(org->tenants[i].name, parts[1]) == 0)
				p->tenant = (int)i;
		if (p->tenant < 0)
			goto bad;
		p->level = SCOPE_TENANT;
	}
	if (n == 3) {
		p->ws = find_ws(org, parts[2]);
		if (p->ws < 0 || org->ws[p->ws].tenant != p->tenant)
			goto bad;
		p->level = SCOPE_WORKSPACE;
	}
	return 0;
bad:
	ERR(src, rd, node, "scope \"%.200s\" is not in the organization%s%s; write ORG, ORG/TENANT or ORG/TENANT/WORKSPACE as declared in the Organization",
	    scope, org->name ? " " : "", org->name ? org->name : "");
	return -1;
}

static int service_in_scope(const zt_policy_src *src, const struct policy *p, const char *svc)
{
	const struct org *org = &src->m->org;

	for (uint32_t w = 0; w < org->nws; w++) {
		const struct workspace *ws = &org->ws[w];
		char key[600];
		int n;

		if ((p->level == SCOPE_WORKSPACE && (int)w != p->ws) ||
		    (p->level == SCOPE_TENANT && ws->tenant != p->tenant))
			continue;
		n = snprintf(key, sizeof key, "%s/%s", ws->name, svc);
		if (src->svcset && n > 0 && (size_t)n < sizeof key &&
		    zt_strset_has(src->svcset, key, (size_t)n))
			return 1;
	}
	return 0;
}

/*
 * metadata.scope (zt) or metadata.namespace (Istio) into p's level, tenant,
 * workspace and namespace, and the display name "SCOPE/NAME" into display.
 * 0, or -1 with the error recorded.
 */
static int policy_scope(zt_policy_src *src, const struct rawdoc *rd, json_t *md, int istio,
			struct policy *p, char *display, size_t dsz)
{
	struct org *org = &src->m->org;

	if (!istio) {
		json_t *scope = json_object_get(md, "scope");

		if (!org->name) {
			ERR(src, rd, md, "zt policies attach to the scopes of an Organization; add the kind: Organization document (docs/policy.md)");
			return -1;
		}
		if (!json_is_string(scope)) {
			ERR(src, rd, md, "metadata.scope is required: ORG, ORG/TENANT or ORG/TENANT/WORKSPACE");
			return -1;
		}
		if (resolve_scope(src, rd, scope, json_string_value(scope), p) != 0)
			return -1;
		snprintf(display, dsz, "%s/%s", json_string_value(scope), p->name);
	} else {
		json_t *nsj = json_object_get(md, "namespace");
		const char *ns = json_is_string(nsj) ? json_string_value(nsj) : "default";

		if (nsj && !json_is_string(nsj)) {
			ERR(src, rd, nsj, "metadata.namespace must be a string");
			return -1;
		}
		if (strcmp(ns, src->root_ns) == 0) {
			p->level = SCOPE_ORG;
			p->ns = "";
			if (org->name)
				snprintf(display, dsz, "%s/%s", org->name, p->name);
			else
				snprintf(display, dsz, "%s/%s", ns, p->name);
		} else if (org->name) {
			p->ws = find_ws(org, ns);
			if (p->ws < 0) {
				ERR(src, rd, nsj ? nsj : md, "namespace \"%.100s\" is not a workspace of organization %s; declare it, or use the Istio root namespace %s for organization-wide policies",
				    ns, org->name, src->root_ns);
				return -1;
			}
			p->level = SCOPE_WORKSPACE;
			p->tenant = org->ws[p->ws].tenant;
			snprintf(display, dsz, "%s/%s/%s/%s", org->name,
				 org->tenants[p->tenant].name, ns, p->name);
		} else {
			if (!valid_name(ns, strlen(ns))) {
				ERR(src, rd, nsj, "\"%.100s\" is not a namespace name", ns);
				return -1;
			}
			p->level = SCOPE_WORKSPACE;
			if ((p->ws = implicit_ws(src, ns)) < 0) {
				ERR(src, rd, nsj, "out of memory");
				return -1;
			}
			p->ns = org->ws[p->ws].name;
			snprintf(display, dsz, "%s/%s", ns, p->name);
		}
	}
	return 0;
}

/*
 * spec.selector: {services: [...]} (zt) or {matchLabels: {app: NAME}}
 * (Istio) into p's selector. 0, or -1 when the selector cannot be read.
 */
static int policy_selector(zt_policy_src *src, const struct rawdoc *rd, json_t *sel, int istio,
			   struct policy *p)
{
	struct org *org = &src->m->org;
	json_t *list = NULL, *v;
	size_t i;

	if (istio) {
		static const char *const sel_keys[] = { "matchLabels", NULL };
		json_t *ml = json_object_get(sel, "matchLabels"), *app = json_object_get(ml, "app");
		const char *lk;
		json_t *lv;

		pol_known_keys(src, rd, sel, sel_keys, "selector", 0);
		json_object_foreach(ml, lk, lv)
			if (strcmp(lk, "app") != 0) {
				ERR(src, rd, lv, "selector.matchLabels.%s: zt selects services by the app label only (the service name); other labels cannot be checked",
				    lk);
				pol_at_key(src, rd, ml, lk);
			}
		if (!json_is_string(app)) {
			ERR(src, rd, sel, "selector.matchLabels.app must name a service");
			return -1;
		}
		p->selector = pol_array(src, 1, sizeof *p->selector);
		p->selector[p->nselector++] = pol_dup_str(src, app);
	} else {
		static const char *const sel_keys[] = { "services", NULL };

		pol_known_keys(src, rd, sel, sel_keys, "selector", 0);
		list = json_object_get(sel, "services");
		if (!json_is_array(list) || json_array_size(list) == 0) {
			ERR(src, rd, sel, "selector.services must be a non-empty list of service names");
			return -1;
		}
		p->selector = pol_array(src, json_array_size(list), sizeof *p->selector);
		json_array_foreach(list, i, v) {
			if (!json_is_string(v) || !valid_name(json_string_value(v), json_string_length(v))) {
				ERR(src, rd, v, "selector.services: a service name uses letters, digits, '-', '.', '_'");
				continue;
			}
			p->selector[p->nselector++] = pol_dup_str(src, v);
		}
	}
	if (org->name)
		for (uint32_t k = 0; k < p->nselector; k++)
			if (!service_in_scope(src, p, p->selector[k]))
				WARN(src, rd, sel, "the selector names service \"%s\", which is not in this policy's scope: for it the policy never applies",
				     p->selector[k]);
	return 0;
}

static void parse_policy(zt_policy_src *src, const struct rawdoc *rd, int istio)
{
	static const char *const md_keys[] = { "name", "namespace", "scope", "annotations", "labels",
					       "uid", "resourceVersion", "generation",
					       "creationTimestamp", "managedFields", NULL };
	static const char *const spec_keys[] = { "selector", "action", "rules", NULL };
	static const char *const istio_spec_keys[] = { "selector", "action", "rules", "provider",
						       "targetRef", "targetRefs", NULL };
	struct org *org = &src->m->org;
	json_t *md = json_object_get(rd->doc, "metadata"), *spec = json_object_get(rd->doc, "spec");
	json_t *name = json_object_get(md, "name"), *ann, *sel, *act, *rules, *el;
	char display[1024];
	struct policy *p;
	size_t i;

	if (!json_is_object(md) || !json_is_string(name) ||
	    !valid_name(json_string_value(name), json_string_length(name))) {
		ERR(src, rd, md ? md : rd->doc, "an AuthorizationPolicy needs metadata.name (letters, digits, '-', '.', '_')");
		return;
	}
	pol_known_keys(src, rd, md, md_keys, "metadata", 1);
	if (spec && !json_is_object(spec) && !json_is_null(spec)) {
		ERR(src, rd, spec, "spec must be a mapping");
		return;
	}
	if (!(p = push_policy(src)))
		return;
	p->name = pol_dup_str(src, name);
	p->file = rd->file;
	(void)zt_docpos_get(rd->pos, rd->doc, &p->line, &(int){ 0 });
	p->istio = istio;
	p->tenant = p->ws = -1;
	ann = json_object_get(md, "annotations");
	for (int k = 0; k < 2; k++) {
		json_t *dr = json_object_get(ann, k ? "istio.io/dry-run" : "zt.dev/dry-run");

		if (!dr)
			continue;
		if (json_is_string(dr) && strcmp(json_string_value(dr), "true") == 0)
			p->dry_run = 1;
		else if (!(json_is_string(dr) && strcmp(json_string_value(dr), "false") == 0))
			ERR(src, rd, dr, "the dry-run annotation is the string \"true\" or \"false\"");
	}
	if (istio)
		WARN(src, rd, rd->doc, "Istio allows a request when no ALLOW policy applies to its workload; zt denies by default, so add ALLOW policies for the traffic you want (deny by default)");
	if (policy_scope(src, rd, md, istio, p, display, sizeof display) != 0)
		return;
	p->display = zt_arena_strndup(src->m->arena, display, strlen(display));
	if (!json_is_object(spec))
		return; /* spec {} : an ALLOW that allows nothing, as in Istio */
	pol_known_keys(src, rd, spec, istio ? istio_spec_keys : spec_keys, "spec", 0);
	if (istio && (json_object_get(spec, "targetRef") || json_object_get(spec, "targetRefs")))
		ERR(src, rd, spec, "targetRef/targetRefs are not supported; select services with selector.matchLabels.app");
	act = json_object_get(spec, "action");
	if (!act || (json_is_string(act) && strcmp(json_string_value(act), "ALLOW") == 0)) {
		p->action = ACT_ALLOW;
	} else if (json_is_string(act) && strcmp(json_string_value(act), "DENY") == 0) {
		p->action = ACT_DENY;
	} else if (json_is_string(act) && strcmp(json_string_value(act), "AUDIT") == 0) {
		p->action = ACT_AUDIT;
	} else if (json_is_string(act) && strcmp(json_string_value(act), "CUSTOM") == 0) {
		ERR(src, rd, act, "action CUSTOM (an external authorizer) is not supported: zt decides every request itself; write the rule as ALLOW or DENY");
		return;
	} else {
		ERR(src, rd, act, "action is ALLOW, DENY or AUDIT");
		return;
	}
	if (json_object_get(spec, "provider"))
		ERR(src, rd, json_object_get(spec, "provider"), "provider goes with action CUSTOM, which zt does not support");
	sel = json_object_get(spec, "selector");
	if (sel && policy_selector(src, rd, sel, istio, p) != 0)
		return;
	rules = json_object_get(spec, "rules");
	if (rules && !json_is_array(rules)) {
		ERR(src, rd, rules, "rules must be a list");
		return;
	}
	if (json_array_size(rules) == 0 && p->action != ACT_ALLOW)
		WARN(src, rd, spec, "a %s policy without rules never matches", p->action == ACT_DENY ? "DENY" : "AUDIT");
	p->rules = pol_array(src, json_array_size(rules), sizeof *p->rules);
	json_array_foreach(rules, i, el)
		if (pol_parse_rule(src, rd, el, &p->rules[p->nrules++]) != 0)
			return;
	if (org->name && org->td)
		for (uint32_t r = 0; r < p->nrules; r++)
			for (uint32_t f = 0; f < p->rules[r].nfrom; f++)
				for (uint32_t k = 0; k < p->rules[r].from[f].principals.n; k++) {
					const struct strm *m = &p->rules[r].from[f].principals.v[k];
					size_t tl = strlen(org->td);

					if (m->kind == STRM_EXACT &&
					    !(strncmp(m->s, org->td, tl) == 0 && m->s[tl] == '/'))
						WARN(src, rd, json_object_get(rd->doc, "spec"),
						     "rule %u: principal \"%s\" is not in trust domain %s", r, m->s, org->td);
				}
}

/* ---- RequestAuthentication ---- */

static struct reqauthn *push_reqauthn(zt_policy_src *src)
{
	struct model *m = src->m;
	struct reqauthn *ra;

	if (m->nras == m->capras) {
		uint32_t ncap = m->capras ? m->capras * 2 : 16;
		struct reqauthn **nr = realloc(m->ras, ncap * sizeof *nr);

		if (!nr)
			return NULL;
		m->ras = nr;
		m->capras = ncap;
	}
	if (!(ra = zt_arena_alloc(m->arena, sizeof *ra)))
		return NULL;
	memset(ra, 0, sizeof *ra);
	ra->head.order = m->nras;
	m->ras[m->nras++] = ra;
	return ra;
}

/*
 * A RequestAuthentication: metadata, scope and selector as for an
 * AuthorizationPolicy, then its jwtRules (reqauthn.c).
 */
static void parse_reqauthn(zt_policy_src *src, const struct rawdoc *rd, int istio)
{
	static const char *const md_keys[] = { "name", "namespace", "scope", "annotations", "labels",
					       "uid", "resourceVersion", "generation",
					       "creationTimestamp", "managedFields", NULL };
	static const char *const spec_keys[] = { "selector", "jwtRules", NULL };
	static const char *const istio_spec_keys[] = { "selector", "jwtRules", "targetRef",
						       "targetRefs", NULL };
	json_t *md = json_object_get(rd->doc, "metadata"), *spec = json_object_get(rd->doc, "spec");
	json_t *name = json_object_get(md, "name"), *ann, *sel;
	char display[1024];
	struct reqauthn *ra;
	struct policy *p;

	if (!json_is_object(md) || !json_is_string(name) ||
	    !valid_name(json_string_value(name), json_string_length(name))) {
		ERR(src, rd, md ? md : rd->doc, "a RequestAuthentication needs metadata.name (letters, digits, '-', '.', '_')");
		return;
	}
	pol_known_keys(src, rd, md, md_keys, "metadata", 1);
	if (spec && !json_is_object(spec) && !json_is_null(spec)) {
		ERR(src, rd, spec, "spec must be a mapping");
		return;
	}
	if (!(ra = push_reqauthn(src))) {
		ERR(src, rd, rd->doc, "out of memory");
		return;
	}
	p = &ra->head;
	p->name = pol_dup_str(src, name);
	p->file = rd->file;
	(void)zt_docpos_get(rd->pos, rd->doc, &p->line, &(int){ 0 });
	p->istio = istio;
	p->tenant = p->ws = -1;
	ann = json_object_get(md, "annotations");
	if (json_object_get(ann, "zt.dev/dry-run") || json_object_get(ann, "istio.io/dry-run"))
		WARN(src, rd, ann, "the dry-run annotation applies to AuthorizationPolicy only: this RequestAuthentication is enforced");
	if (policy_scope(src, rd, md, istio, p, display, sizeof display) != 0)
		return;
	if (!json_is_object(spec)) {
		WARN(src, rd, rd->doc, "a RequestAuthentication without jwtRules checks nothing");
		p->display = zt_arena_strndup(src->m->arena, display, strlen(display));
		return;
	}
	pol_known_keys(src, rd, spec, istio ? istio_spec_keys : spec_keys, "spec", 0);
	if (istio && (json_object_get(spec, "targetRef") || json_object_get(spec, "targetRefs"))) {
		ERR(src, rd, spec, "targetRef/targetRefs are not supported; select services with selector.matchLabels.app");
		return;
	}
	sel = json_object_get(spec, "selector");
	if (sel && policy_selector(src, rd, sel, istio, p) != 0)
		return;
	/* named before its rules: a jwtRule names its RequestAuthentication */
	p->display = zt_arena_strndup(src->m->arena, display, strlen(display));
	pol_parse_jwt_rules(src, rd, spec, ra);
}

/* ---- tests ---- */

static void parse_test(zt_policy_src *src, const struct rawdoc *rd)
{
	static const char *const case_keys[] = { "name", "request", "expect", "policy", NULL };
	json_t *cases = json_object_get(json_object_get(rd->doc, "spec"), "cases"), *c;
	struct testdoc *nt;
	size_t i;

	if (!json_is_array(cases) || json_array_size(cases) == 0) {
		ERR(src, rd, rd->doc, "a PolicyTest needs spec.cases: a list of {name, request, expect}");
		return;
	}
	json_array_foreach(cases, i, c) {
		json_t *ex = json_object_get(c, "expect");

		if (!json_is_object(c) || !json_is_string(json_object_get(c, "name")) ||
		    !json_is_object(json_object_get(c, "request"))) {
			ERR(src, rd, c, "case %zu needs a name and a request", i);
			continue;
		}
		pol_known_keys(src, rd, c, case_keys, "a test case", 0);
		if (!json_is_string(ex) || (strcmp(json_string_value(ex), "ALLOW") != 0 &&
					    strcmp(json_string_value(ex), "DENY") != 0))
			ERR(src, rd, ex ? ex : c, "case %zu: expect is ALLOW or DENY", i);
		if (json_object_get(c, "policy") && !json_is_string(json_object_get(c, "policy")))
			ERR(src, rd, json_object_get(c, "policy"), "case %zu: policy names the deciding policy as SCOPE/NAME (or \"none\")", i);
	}
	nt = realloc(src->tests, (src->ntests + 1) * sizeof *nt);
	if (!nt)
		return;
	src->tests = nt;
	json_incref(rd->doc);
	src->tests[src->ntests++] = (struct testdoc){ rd->doc, rd->file };
}

/* ---- whole-set checks ---- */

static int path_covered(const struct strm *v, const struct strs *by)
{
	for (uint32_t i = 0; i < by->n; i++) {
		const struct strm *p = &by->v[i];

		if (p->kind == STRM_ANY)
			return 1;
		if (p->kind == STRM_PREFIX && (v->kind == STRM_EXACT || v->kind == STRM_PREFIX) &&
		    v->len >= p->len && memcmp(v->s, p->s, p->len) == 0)
			return 1;
		if (p->kind == STRM_EXACT && v->kind == STRM_EXACT && strcmp(p->s, v->s) == 0)
			return 1;
	}
	return 0;
}

/* A DENY rule with nothing but paths (and methods) shadows an ALLOW rule
 * whose every operation asks only for paths it covers. Conservative: it
 * misses cases, never invents one. */
static int rule_shadows(const struct rule *d, const struct rule *a)
{
	if (d->nfrom || d->nwhen)
		return 0;
	if (d->nto == 0)
		return 1; /* an empty DENY rule matches everything */
	if (d->nto != 1 || a->nto == 0)
		return 0;
	const struct operation *dop = &d->to[0];
	if (dop->hosts.n || dop->not_hosts.n || dop->ports.n || dop->not_ports.n ||
	    dop->not_methods.n || dop->not_paths.n || !dop->paths.n)
		return 0;
	for (uint32_t i = 0; i < a->nto; i++) {
		const struct operation *aop = &a->to[i];

		if (!aop->paths.n)
			return 0;
		for (uint32_t k = 0; k < aop->paths.n; k++)
			if (!path_covered(&aop->paths.v[k], &dop->paths))
				return 0;
		if (dop->methods.n) {
			if (!aop->methods.n)
				return 0;
			for (uint32_t k = 0; k < aop->methods.n; k++)
				if (!path_covered(&aop->methods.v[k], &dop->methods))
					return 0;
		}
	}
	return 1;
}

/* d applies wherever a applies */
static int scope_covers(const struct policy *d, const struct policy *a)
{
	if (d->level > a->level)
		return 0;
	if (d->level >= SCOPE_TENANT && d->tenant != a->tenant)
		return 0;
	if (d->level == SCOPE_WORKSPACE && d->ws != a->ws)
		return 0;
	if (d->selector) {
		if (!a->selector)
			return 0;
		for (uint32_t i = 0; i < a->nselector; i++) {
			int found = 0;

			for (uint32_t k = 0; k < d->nselector; k++)
				found |= strcmp(a->selector[i], d->selector[k]) == 0;
			if (!found)
				return 0;
		}
	}
	return 1;
}

static void check_shadowing(zt_policy_src *src)
{
	struct model *m = src->m;
	const struct policy **denies = calloc(m->npols + 1, sizeof *denies);
	uint32_t nd = 0;

	if (!denies)
		return;
	for (uint32_t j = 0; j < m->npols; j++)
		if (m->pols[j]->action == ACT_DENY && !m->pols[j]->dry_run && m->pols[j]->display)
			denies[nd++] = m->pols[j];
	for (uint32_t i = 0; i < m->npols && nd; i++) {
		const struct policy *a = m->pols[i];

		if (a->action != ACT_ALLOW || a->dry_run || !a->display)
			continue;
		for (uint32_t r = 0; r < a->nrules; r++) {
			for (uint32_t j = 0; j < nd; j++) {
				const struct policy *d = denies[j];
				uint32_t k;

				if (!scope_covers(d, a))
					continue;
				for (k = 0; k < d->nrules; k++)
					if (rule_shadows(&d->rules[k], &a->rules[r]))
						break;
				if (k < d->nrules) {
					struct rawdoc rd = { NULL, a->file, NULL };
					zt_diag *dg;

					WARN(src, &rd, NULL, "policy %s, rule %u: every request it allows is denied by %s rule %u, so it never takes effect",
					     a->display, r, d->display, k);
					if (src->ndiags) {
						dg = &src->diags[src->ndiags - 1];
						dg->line = a->rules[r].line ? a->rules[r].line : a->line;
						dg->column = 1;
					}
					break;
				}
			}
		}
	}
	free(denies);
}

int zt_policy_src_check(zt_policy_src *src)
{
	struct model *m = src->m;

	if (src->checked)
		return (int)src->nerrors;
	src->checked = 1;
	/* the organization first: policies resolve their scopes against it */
	for (size_t i = 0; i < src->nraw; i++) {
		const char *kind = json_string_value(json_object_get(src->raw[i].doc, "kind"));

		if (kind && strcmp(kind, "Organization") == 0)
			parse_org(src, &src->raw[i]);
	}
	for (size_t i = 0; i < src->nraw; i++) {
		const struct rawdoc *rd = &src->raw[i];
		const char *kind = json_string_value(json_object_get(rd->doc, "kind"));
		const char *api = json_string_value(json_object_get(rd->doc, "apiVersion"));
		int zt_api = api && strcmp(api, "zt.dev/v1") == 0;
		int istio_api = api && (strcmp(api, "security.istio.io/v1") == 0 ||
					strcmp(api, "security.istio.io/v1beta1") == 0);

		if (!kind || !api) {
			/* a stray file in a policy folder: nothing it says is enforced */
			WARN(src, rd, rd->doc, "not a policy document (no apiVersion and kind); ignored");
			continue;
		}
		if (strcmp(kind, "Organization") == 0 || strcmp(kind, "PolicyTest") == 0 ||
		    (strcmp(kind, "AuthorizationPolicy") == 0 && !istio_api)) {
			if (!zt_api) {
				ERR(src, rd, json_object_get(rd->doc, "apiVersion"),
				    "apiVersion \"%.100s\" is not one zt reads for %s; use zt.dev/v1", api, kind);
				continue;
			}
		}
		if (strcmp(kind, "Organization") == 0)
			continue;
		if (strcmp(kind, "AuthorizationPolicy") == 0) {
			parse_policy(src, rd, istio_api);
		} else if (strcmp(kind, "RequestAuthentication") == 0) {
			if (!zt_api && !istio_api)
				ERR(src, rd, json_object_get(rd->doc, "apiVersion"),
				    "apiVersion \"%.100s\" is not one zt reads for RequestAuthentication; use zt.dev/v1 or security.istio.io/v1",
				    api);
			else
				parse_reqauthn(src, rd, istio_api);
		} else if (strcmp(kind, "PolicyTest") == 0)
			parse_test(src, rd);
		else
			WARN(src, rd, rd->doc, "kind %.100s (%.100s) is not a zt policy document; ignored", kind, api);
	}
	/* names are unique per kind within a scope, as Kubernetes has them */
	zt_strset *names = zt_strset_new();

	for (uint32_t i = 0; names && i < m->npols; i++) {
		const struct policy *p = m->pols[i];

		if (p->display && zt_strset_add(names, p->display, strlen(p->display)) == 0) {
			struct rawdoc rd = { NULL, p->file, NULL };
			zt_diag *dg;

			ERR(src, &rd, NULL, "policy %s is defined twice; names are unique within a scope",
			    p->display);
			if (src->ndiags) {
				dg = &src->diags[src->ndiags - 1];
				dg->line = p->line;
				dg->column = 1;
			}
		}
	}
	zt_strset_free(names);
	names = zt_strset_new();
	for (uint32_t i = 0; names && i < m->nras; i++) {
		const struct policy *p = &m->ras[i]->head;

		if (p->display && zt_strset_add(names, p->display, strlen(p->display)) == 0) {
			struct rawdoc rd = { NULL, p->file, NULL };
			zt_diag *dg;

			ERR(src, &rd, NULL, "RequestAuthentication %s is defined twice; names are unique within a scope",
			    p->display);
			if (src->ndiags) {
				dg = &src->diags[src->ndiags - 1];
				dg->line = p->line;
				dg->column = 1;
			}
		}
	}
	zt_strset_free(names);
	/* a policy that failed to load never enters a snapshot */
	check_shadowing(src);
	return (int)src->nerrors;
}
