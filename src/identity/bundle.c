/*
 * identity/bundle.c: trust bundles — the authorities of one trust domain.
 *
 * Formats: PEM, and the SPIFFE bundle format (SPIFFE Trust Domain and Bundle
 * 4: a JWK Set with spiffe_sequence and spiffe_refresh_hint; X.509-SVID 6 for
 * x509-svid entries; JWT-SVID 6 for jwt-svid entries).
 */
#include "identity.h"
#include "bundle_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUNDLE_MAX_KEYS 1024
#define BUNDLE_MAX_BYTES (4u << 20)
#define REFRESH_HINT_DEFAULT 300

struct zt_bundle {
	char td[ZT_TD_MAX + 1];
	STACK_OF(X509) *x509;
	X509_STORE *store;
	json_t *jwt_keys; /* jwt-svid JWKs, kept as published */
	uint64_t sequence;
	int64_t refresh_hint;
};

static zt_bundle *bundle_alloc(const char *td, zt_err *e)
{
	zt_bundle *b = calloc(1, sizeof *b);

	if (!b || !(b->x509 = sk_X509_new_null()) || !(b->store = X509_STORE_new()) ||
	    !(b->jwt_keys = json_array())) {
		zt_bundle_free(b);
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	snprintf(b->td, sizeof b->td, "%s", td);
	b->refresh_hint = REFRESH_HINT_DEFAULT;
	return b;
}

zt_bundle *zt_bundle_new(const char *td, zt_err *e)
{
	if (zt_td_check(td, strlen(td), e) != 0)
		return NULL;
	return bundle_alloc(td, e);
}

void zt_bundle_free(zt_bundle *b)
{
	if (!b)
		return;
	sk_X509_pop_free(b->x509, X509_free);
	X509_STORE_free(b->store);
	json_decref(b->jwt_keys);
	free(b);
}

const char *zt_bundle_td(const zt_bundle *b) { return b->td; }
X509_STORE *zt_bundle_store(const zt_bundle *b) { return b->store; }
int zt_bundle_x509_count(const zt_bundle *b) { return sk_X509_num(b->x509); }
X509 *zt_bundle_x509_get(const zt_bundle *b, int i) { return sk_X509_value(b->x509, i); }
uint64_t zt_bundle_sequence(const zt_bundle *b) { return b->sequence; }
void zt_bundle_set_sequence(zt_bundle *b, uint64_t seq) { b->sequence = seq; }
int64_t zt_bundle_refresh_hint(const zt_bundle *b) { return b->refresh_hint; }
void zt_bundle_set_refresh_hint(zt_bundle *b, int64_t secs) { b->refresh_hint = secs; }

int zt_bundle_add_x509(zt_bundle *b, X509 *authority, zt_err *e)
{
	int r;

	for (int i = 0; i < sk_X509_num(b->x509); i++)
		if (X509_cmp(sk_X509_value(b->x509, i), authority) == 0)
			return 0;
	if (sk_X509_num(b->x509) >= BUNDLE_MAX_KEYS)
		return zt_err_set(e, ZT_ELIMIT, "a bundle holds at most %d authorities",
				  BUNDLE_MAX_KEYS);
	if ((r = zt_svid_check_signer(authority, "a bundle authority", e)) != 0)
		return r;
	if (!X509_up_ref(authority))
		return zt_err_set(e, ZT_ECRYPTO, "cannot reference the certificate");
	if (!sk_X509_push(b->x509, authority)) {
		X509_free(authority);
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	}
	if (!X509_STORE_add_cert(b->store, authority))
		return zt_crypto_err(e, ZT_ECRYPTO, "cannot add the authority to the trust store");
	return 0;
}

/* RFC 7517 4.7: the key in the first x5c certificate MUST match the public
 * key the other members represent. */
static int jwk_matches_cert(json_t *jwk, X509 *cert, int idx, zt_err *e)
{
	json_t *want = json_object();
	const char *k;
	json_t *v;
	int r;

	if (!want)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	if ((r = zt_jwk_set_public(X509_get0_pubkey(cert), want, e)) != 0) {
		json_decref(want);
		return zt_err_wrap(e, "bundle key %d", idx);
	}
	json_object_foreach(want, k, v) {
		json_t *got = json_object_get(jwk, k);

		if ((got || strcmp(k, "kty") == 0) && !json_equal(got, v)) {
			/* the message first: k belongs to `want` */
			r = zt_err_rule(e, ZT_EPARSE, "bundle-key-mismatch",
					"bundle key %d: its \"%s\" does not match the key of its x5c certificate (RFC 7517 4.7)",
					idx, k);
			json_decref(want);
			return r;
		}
	}
	json_decref(want);
	return 0;
}

static int parse_x509_entry(zt_bundle *b, json_t *jwk, int idx, zt_err *e)
{
	json_t *x5c = json_object_get(jwk, "x5c");
	const char *b64;
	X509 *cert;
	zt_buf der;
	int r;

	/* X.509-SVID 6.2: no x5c, or an empty one, means the entry is ignored;
	 * values after the first are ignored. */
	if (!x5c || (json_is_array(x5c) && json_array_size(x5c) == 0))
		return 0;
	if (!json_is_array(x5c) || !json_is_string(json_array_get(x5c, 0)))
		return zt_err_rule(e, ZT_EPARSE, "bundle-format",
				   "bundle key %d: \"x5c\" must be an array of base64 strings (RFC 7517 4.7)", idx);
	b64 = json_string_value(json_array_get(x5c, 0));
	zt_buf_init(&der, ZT_PEM_MAX_BYTES);
	if ((r = zt_base64_decode(b64, json_string_length(json_array_get(x5c, 0)), 0, &der, e)) != 0) {
		zt_buf_free(&der, 0);
		return zt_err_wrap(e, "bundle key %d: x5c[0]", idx);
	}
	cert = zt_cert_parse_der(der.p, der.len, e);
	zt_buf_free(&der, 0);
	if (!cert)
		return zt_err_wrap(e, "bundle key %d: x5c[0]", idx);
	r = jwk_matches_cert(jwk, cert, idx, e);
	if (r == 0 && (r = zt_bundle_add_x509(b, cert, e)) != 0)
		zt_err_wrap(e, "bundle key %d", idx);
	X509_free(cert);
	return r;
}

static int parse_jwt_entry(zt_bundle *b, json_t *jwk, int idx, zt_err *e)
{
	json_t *kid = json_object_get(jwk, "kid");

	/* JWT-SVID 6: every jwt-svid entry has a key ID */
	if (!json_is_string(kid) || json_string_length(kid) == 0)
		return zt_err_rule(e, ZT_EPARSE, "bundle-format",
				   "bundle key %d: a jwt-svid key must have a non-empty \"kid\" (JWT-SVID 6)", idx);
	if (!json_is_string(json_object_get(jwk, "kty")))
		return zt_err_rule(e, ZT_EPARSE, "bundle-format",
				   "bundle key %d: a JWK must have \"kty\" (RFC 7517 4.1)", idx);
	json_array_append(b->jwt_keys, jwk);
	return 0;
}

static int get_uint(json_t *doc, const char *name, int64_t *out, zt_err *e)
{
	json_t *v = json_object_get(doc, name);

	if (!v)
		return 1;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return zt_err_rule(e, ZT_EPARSE, "bundle-format",
				   "\"%s\" must be a non-negative integer", name);
	*out = json_integer_value(v);
	return 0;
}

zt_bundle *zt_bundle_parse_spiffe(const char *td, const char *json, size_t len, zt_err *e)
{
	json_t *doc, *keys, *jwk;
	zt_bundle *b = NULL;
	int64_t v;
	size_t i;
	int r;

	if (len > BUNDLE_MAX_BYTES) {
		zt_err_set(e, ZT_ELIMIT, "the bundle is larger than %u bytes", BUNDLE_MAX_BYTES);
		return NULL;
	}
	if (!(doc = zt_json_parse(json, len, e)))
		return NULL;
	if (!json_is_object(doc)) {
		zt_err_rule(e, ZT_EPARSE, "bundle-format",
			    "a SPIFFE bundle is a JSON object with a \"keys\" array");
		goto fail;
	}
	if (!(b = bundle_alloc(td, e)))
		goto fail;
	if ((r = get_uint(doc, "spiffe_sequence", &v, e)) < 0)
		goto fail;
	if (r == 0)
		b->sequence = (uint64_t)v;
	if ((r = get_uint(doc, "spiffe_refresh_hint", &v, e)) < 0)
		goto fail;
	if (r == 0)
		b->refresh_hint = v;
	keys = json_object_get(doc, "keys");
	if (keys && !json_is_array(keys)) {
		zt_err_rule(e, ZT_EPARSE, "bundle-format", "\"keys\" must be an array of JWKs");
		goto fail;
	}
	if (json_array_size(keys) > BUNDLE_MAX_KEYS) {
		zt_err_set(e, ZT_ELIMIT, "the bundle has more than %d keys", BUNDLE_MAX_KEYS);
		goto fail;
	}
	json_array_foreach(keys, i, jwk) {
		json_t *use = json_object_get(jwk, "use");

		if (!json_is_object(jwk) || !json_is_string(use)) {
			zt_err_rule(e, ZT_EPARSE, "bundle-format",
				    "bundle key %zu: each key must be a JWK object with a \"use\" (SPIFFE Trust Domain and Bundle 4.2)", i);
			goto fail;
		}
		if (strcmp(json_string_value(use), "x509-svid") == 0)
			r = parse_x509_entry(b, jwk, (int)i, e);
		else if (strcmp(json_string_value(use), "jwt-svid") == 0)
			r = parse_jwt_entry(b, jwk, (int)i, e);
		else
			r = 0; /* other SVID types are not ours to judge */
		if (r != 0)
			goto fail;
	}
	json_decref(doc);
	return b;
fail:
	json_decref(doc);
	zt_bundle_free(b);
	return NULL;
}

zt_bundle *zt_bundle_parse_pem(const char *td, const uint8_t *pem, size_t len, zt_err *e)
{
	STACK_OF(X509) *certs = NULL;
	zt_bundle *b;

	if (zt_certs_parse_pem(pem, len, &certs, e) != 0)
		return NULL;
	b = bundle_alloc(td, e);
	for (int i = 0; b && i < sk_X509_num(certs); i++) {
		if (zt_bundle_add_x509(b, sk_X509_value(certs, i), e) != 0) {
			zt_err_wrap(e, "certificate %d", i + 1);
			zt_bundle_free(b);
			b = NULL;
		}
	}
	sk_X509_pop_free(certs, X509_free);
	return b;
}

/* The trust domain the authorities name in their SPIFFE IDs. */
static int infer_td(zt_bundle *b, zt_err *e)
{
	char found[ZT_TD_MAX + 1] = "";

	for (int i = 0; i < sk_X509_num(b->x509); i++) {
		GENERAL_NAMES *names = X509_get_ext_d2i(sk_X509_value(b->x509, i),
							NID_subject_alt_name, NULL, NULL);

		for (int j = 0; names && j < sk_GENERAL_NAME_num(names); j++) {
			GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, j);
			zt_spiffe_id id;
			const char *td;
			size_t n;

			if (gn->type != GEN_URI ||
			    zt_id_parse((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
					(size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier),
					&id, NULL) != 0)
				continue;
			td = zt_id_td(&id, &n);
			if (found[0] && (strlen(found) != n || memcmp(found, td, n) != 0)) {
				GENERAL_NAMES_free(names);
				return zt_err_set(e, ZT_EINVAL,
						  "the bundle's authorities name different trust domains (%s and %.*s); give the trust domain explicitly",
						  found, (int)n, td);
			}
			memcpy(found, td, n);
			found[n] = '\0';
		}
		GENERAL_NAMES_free(names);
	}
	if (!found[0])
		return zt_err_set(e, ZT_EINVAL,
				  "the bundle's authorities carry no SPIFFE ID, so its trust domain is unknown; give it explicitly (--trust-domain)");
	snprintf(b->td, sizeof b->td, "%s", found);
	return 0;
}

zt_bundle *zt_bundle_load(const char *td, const char *path, zt_err *e)
{
	zt_bundle *b;
	zt_buf buf;
	size_t i = 0;

	if (td && zt_td_check(td, strlen(td), e) != 0)
		return NULL;
	if (zt_file_read(path, BUNDLE_MAX_BYTES, &buf, e) != 0)
		return NULL;
	while (i < buf.len && (buf.p[i] == ' ' || buf.p[i] == '\t' || buf.p[i] == '\r' ||
			       buf.p[i] == '\n'))
		i++;
	if (i < buf.len && buf.p[i] == '{')
		b = zt_bundle_parse_spiffe(td ? td : "", (const char *)buf.p, buf.len, e);
	else
		b = zt_bundle_parse_pem(td ? td : "", buf.p, buf.len, e);
	zt_buf_free(&buf, 0);
	if (b && !td && infer_td(b, e) != 0) {
		zt_bundle_free(b);
		b = NULL;
	}
	if (!b)
		zt_err_wrap(e, "bundle %s", path);
	return b;
}

int zt_bundle_to_spiffe(const zt_bundle *b, zt_buf *out, zt_err *e)
{
	json_t *doc = json_object(), *keys = json_array();
	json_t *jwk;
	char *text = NULL;
	size_t i;
	int r = 0;

	if (!doc || !keys) {
		json_decref(keys);
		r = zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto out;
	}
	json_object_set_new(doc, "spiffe_sequence", json_integer((json_int_t)b->sequence));
	json_object_set_new(doc, "spiffe_refresh_hint", json_integer(b->refresh_hint));
	json_object_set_new(doc, "keys", keys);
	for (int k = 0; k < sk_X509_num(b->x509); k++) {
		X509 *cert = sk_X509_value(b->x509, k);
		unsigned char *der = NULL;
		int n = i2d_X509(cert, &der);
		zt_buf b64;

		/* X.509-SVID 6.1: use x509-svid, exactly one certificate, no kid */
		if (n <= 0 || !(jwk = json_object())) {
			OPENSSL_free(der);
			r = zt_crypto_err(e, ZT_ECRYPTO, "cannot encode an authority");
			goto out;
		}
		json_array_append_new(keys, jwk);
		json_object_set_new(jwk, "use", json_string("x509-svid"));
		if ((r = zt_jwk_set_public(X509_get0_pubkey(cert), jwk, e)) != 0) {
			OPENSSL_free(der);
			goto out;
		}
		zt_buf_init(&b64, 2 * ZT_PEM_MAX_BYTES);
		r = zt_base64_encode(der, (size_t)n, 0, &b64, e);
		OPENSSL_free(der);
		if (r == 0) {
			json_t *x5c = json_array();

			json_array_append_new(x5c, json_string((const char *)b64.p));
			json_object_set_new(jwk, "x5c", x5c);
		}
		zt_buf_free(&b64, 0);
		if (r != 0)
			goto out;
	}
	json_array_foreach(b->jwt_keys, i, jwk)
		json_array_append(keys, jwk);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text) {
		r = zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = zt_buf_append(out, text, strlen(text), e)) == 0)
		r = zt_buf_append(out, "\n", 1, e);
out:
	free(text);
	json_decref(doc);
	return r;
}

int zt_bundle_to_pem(const zt_bundle *b, zt_buf *out, zt_err *e)
{
	return zt_certs_to_pem(b->x509, out, e);
}

/* ---- bundle sets ---- */

struct zt_bundle_set {
	zt_bundle **v;
	size_t n;
};

zt_bundle_set *zt_bundle_set_new(void)
{
	return calloc(1, sizeof(zt_bundle_set));
}

void zt_bundle_set_free(zt_bundle_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		zt_bundle_free(s->v[i]);
	free(s->v);
	free(s);
}

int zt_bundle_set_put(zt_bundle_set *s, zt_bundle *b, zt_err *e)
{
	zt_bundle **nv;

	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->v[i]->td, b->td) == 0) {
			zt_bundle_free(s->v[i]);
			s->v[i] = b;
			return 0;
		}
	}
	nv = realloc(s->v, (s->n + 1) * sizeof *nv);
	if (!nv) {
		zt_bundle_free(b);
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	}
	s->v = nv;
	s->v[s->n++] = b;
	return 0;
}

const zt_bundle *zt_bundle_set_get(const zt_bundle_set *s, const char *td, size_t len)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strlen(s->v[i]->td) == len && memcmp(s->v[i]->td, td, len) == 0)
			return s->v[i];
	return NULL;
}
