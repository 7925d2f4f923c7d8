/*
 * identity/ca.c: the certificate authority of one trust domain.
 *
 * On disk (DIR, mode 0700):
 *   ca.json              {"version":1, "trust_domain", "sequence", "refresh_hint", "active"}
 *   root.pem, root.key   the self-signed root (key 0600)
 *   signing/NAME.pem/.key  signing (intermediate) CAs, NAME = 16 hex digits
 *
 * The root signs signing CAs; the active signing CA signs SVIDs. Rotation
 * adds a signing CA and makes it active; older ones stay published in the
 * bundle until they expire, so the SVIDs they signed keep verifying.
 */
#include "identity.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#define CA_STATE_VERSION 1
#define CA_MAX_SIGNERS 64
#define CA_BACKDATE 30 /* seconds of clock skew tolerated by new certificates */

struct signer {
	X509 *cert;
	EVP_PKEY *key;
	char name[17];
	int64_t not_before, not_after;
	uint8_t key_id[20]; /* becomes the authority key ID of what it signs */
	/* for issuing without OpenSSL's object model (see crypto.h) */
	zt_signer *sg;
	zt_buf subject_der; /* the issuer Name of what it signs */
	zt_buf cert_der;
};

struct zt_ca {
	char dir[PATH_MAX];
	char td[ZT_TD_MAX + 1];
	X509 *root;
	EVP_PKEY *root_key;
	struct signer signers[CA_MAX_SIGNERS];
	size_t nsigners;
	size_t active;
	uint64_t sequence;
	int64_t refresh_hint;
};

/* ---- DER pieces of the SVID profile ------------------------------------- */

/* BasicConstraints (RFC 5280 4.2.1.9) */
static const uint8_t bc_leaf[] = { 0x30, 0x00 };                         /* CA:FALSE */
static const uint8_t bc_signing[] = { 0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00 }; /* CA:TRUE, pathlen 0 */
static const uint8_t bc_root[] = { 0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x01 };    /* CA:TRUE, pathlen 1 */
/* KeyUsage (RFC 5280 4.2.1.3; X.509-SVID 4.3) */
static const uint8_t ku_leaf[] = { 0x03, 0x02, 0x07, 0x80 }; /* digitalSignature */
static const uint8_t ku_ca[] = { 0x03, 0x02, 0x01, 0x06 };   /* keyCertSign, cRLSign */
/* ExtendedKeyUsage serverAuth, clientAuth (X.509-SVID 4.4) */
static const uint8_t eku_leaf[] = { 0x30, 0x14, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05,
				    0x07, 0x03, 0x01, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05,
				    0x05, 0x07, 0x03, 0x02 };

static int add_key_ids(X509 *x, const uint8_t ski[20], const uint8_t aki[20], zt_err *e)
{
	uint8_t s[22] = { 0x04, 20 }, a[24] = { 0x30, 22, 0x80, 20 };
	int r;

	memcpy(s + 2, ski, 20);
	memcpy(a + 4, aki, 20);
	if ((r = zt_x509_add_ext_der(x, NID_subject_key_identifier, 0, s, sizeof s, e)) != 0)
		return r;
	return zt_x509_add_ext_der(x, NID_authority_key_identifier, 0, a, sizeof a, e);
}

/* A CA's SubjectAltName: the SPIFFE ID of its trust domain (X.509-SVID 3.2). */
static int add_ca_san(X509 *x, const zt_spiffe_id *id, zt_err *e)
{
	zt_buf uri, seq;
	int r;

	zt_buf_init(&uri, 4096);
	zt_buf_init(&seq, 4096);
	if ((r = zt_der_put(&uri, 0x86, id->str, id->len, e)) == 0 &&
	    (r = zt_der_put(&seq, 0x30, uri.p, uri.len, e)) == 0)
		r = zt_x509_add_ext_der(x, NID_subject_alt_name, 0, seq.p, seq.len, e);
	zt_buf_free(&uri, 0);
	zt_buf_free(&seq, 0);
	return r;
}

static int set_ca_name(X509 *x, const char *kind, const uint8_t key_id[20], int self, zt_err *e)
{
	X509_NAME *name = X509_NAME_new();
	char cn[64], hex[41];
	int r = 0;

	zt_hex(key_id, 4, hex);
	snprintf(cn, sizeof cn, "zt %s CA %s", kind, hex);
	if (!name ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"zt", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_subject_name(x, name) || (self && !X509_set_issuer_name(x, name)))
		r = zt_crypto_err(e, ZT_ECRYPTO, "cannot set the CA's name");
	X509_NAME_free(name);
	return r;
}

static int valid_dns(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (c == '*' && i == 0 && n > 2 && s[1] == '.') {
			label = 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || (c == '-' && label > 0)))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* ---- state on disk ------------------------------------------------------ */

static int ca_path(const zt_ca *ca, char *out, size_t n, const char *rel, zt_err *e)
{
	return zt_path_join(out, n, e, "%s/%s", ca->dir, rel);
}

static int save_state(const zt_ca *ca, zt_err *e)
{
	json_t *o = json_object();
	char path[PATH_MAX], *text = NULL;
	int r;

	json_object_set_new(o, "version", json_integer(CA_STATE_VERSION));
	json_object_set_new(o, "trust_domain", json_string(ca->td));
	json_object_set_new(o, "sequence", json_integer((json_int_t)ca->sequence));
	json_object_set_new(o, "refresh_hint", json_integer(ca->refresh_hint));
	json_object_set_new(o, "active", json_string(ca->signers[ca->active].name));
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text)
		return zt_err_set(e, ZT_ENOMEM, "out of memory");
	if ((r = ca_path(ca, path, sizeof path, "ca.json", e)) == 0)
		r = zt_file_write(path, text, strlen(text), 0600, 0, e);
	free(text);
	return r;
}

/* What issuing needs, computed once per signing CA. */
static int signer_prepare(struct signer *s, zt_err *e)
{
	unsigned char *der = NULL;
	int n, r;

	zt_buf_init(&s->subject_der, 65536);
	zt_buf_init(&s->cert_der, ZT_PEM_MAX_BYTES);
	if (!(s->sg = zt_signer_new(s->key, e)))
		return -ZT_ECRYPTO;
	if ((n = i2d_X509_NAME(X509_get_subject_name(s->cert), &der)) <= 0)
		return zt_crypto_err(e, ZT_ECRYPTO, "cannot encode the CA's name");
	r = zt_buf_append(&s->subject_der, der, (size_t)n, e);
	OPENSSL_free(der);
	der = NULL;
	if (r != 0)
		return r;
	if ((n = i2d_X509(s->cert, &der)) <= 0)
		return zt_crypto_err(e, ZT_ECRYPTO, "cannot encode the CA's certificate");
	r = zt_buf_append(&s->cert_der, der, (size_t)n, e);
	OPENSSL_free(der);
	if (r == 0 && zt_cert_times(s->cert, &s->not_before, &s->not_after) != 0)
		r = zt_err_set(e, ZT_EPARSE, "cannot read the CA's validity");
	return r;
}

static void signer_clear(struct signer *s)
{
	X509_free(s->cert);
	EVP_PKEY_free(s->key);
	zt_signer_free(s->sg);
	zt_buf_free(&s->subject_der, 0);
	zt_buf_free(&s->cert_der, 0);
	memset(s, 0, sizeof *s);
}

/* Creates, signs and writes a new signing CA; it becomes signers[nsigners]. */
static int new_signer(zt_ca *ca, int64_t ttl, zt_err *e)
{
	struct signer *s = &ca->signers[ca->nsigners];
	int64_t now = zt_now(), nb, na, root_nb, root_na;
	uint8_t root_kid[20];
	char path[PATH_MAX], rel[64];
	STACK_OF(X509) *one = NULL;
	zt_spiffe_id tdid;
	int r = 0;

	if (ca->nsigners >= CA_MAX_SIGNERS)
		return zt_err_set(e, ZT_ELIMIT,
				  "the CA already holds %d unexpired signing CAs; wait for some to expire",
				  CA_MAX_SIGNERS);
	memset(s, 0, sizeof *s);
	if (zt_cert_times(ca->root, &root_nb, &root_na) != 0)
		return zt_err_set(e, ZT_EPARSE, "cannot read the root's validity");
	if (root_na <= now + 60)
		return zt_err_set(e, ZT_ESTATE,
				  "the root CA expires too soon to sign a new signing CA; the trust domain needs a new root");
	nb = now - CA_BACKDATE < root_nb ? root_nb : now - CA_BACKDATE;
	na = now + ttl > root_na ? root_na : now + ttl; /* never outlive the root */
	if (!(s->key = zt_key_generate(e))) {
		r = -ZT_ECRYPTO;
		goto fail;
	}
	if ((r = zt_key_id(s->key, s->key_id, e)) != 0 ||
	    (r = zt_key_id(ca->root_key, root_kid, e)) != 0 ||
	    (r = zt_id_for_td(ca->td, &tdid, e)) != 0)
		goto fail;
	if (!(s->cert = zt_x509_start(s->key, nb, na, e))) {
		r = -ZT_ECRYPTO;
		goto fail;
	}
	if ((r = set_ca_name(s->cert, "signing", s->key_id, 0, e)) != 0)
		goto fail;
	if (!X509_set_issuer_name(s->cert, X509_get_subject_name(ca->root))) {
		r = zt_crypto_err(e, ZT_ECRYPTO, "cannot set the issuer");
		goto fail;
	}
	if ((r = zt_x509_add_ext_der(s->cert, NID_basic_constraints, 1, bc_signing, sizeof bc_signing, e)) != 0 ||
	    (r = zt_x509_add_ext_der(s->cert, NID_key_usage, 1, ku_ca, sizeof ku_ca, e)) != 0 ||
	    (r = add_key_ids(s->cert, s->key_id, root_kid, e)) != 0 ||
	    (r = add_ca_san(s->cert, &tdid, e)) != 0 ||
	    (r = zt_x509_sign(s->cert, ca->root_key, e)) != 0)
		goto fail;
	zt_hex(s->key_id, 8, s->name);
	if ((r = signer_prepare(s, e)) != 0)
		goto fail;
	/* key first: a certificate on disk without its key would be useless */
	snprintf(rel, sizeof rel, "signing/%s.key", s->name);
	if ((r = ca_path(ca, path, sizeof path, rel, e)) != 0 ||
	    (r = zt_key_store(path, s->key, e)) != 0)
		goto fail;
	snprintf(rel, sizeof rel, "signing/%s.pem", s->name);
	if (!(one = sk_X509_new_null()) || !sk_X509_push(one, s->cert)) {
		r = zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto fail;
	}
	if ((r = ca_path(ca, path, sizeof path, rel, e)) != 0 ||
	    (r = zt_certs_save(path, one, e)) != 0)
		goto fail;
	sk_X509_free(one);
	ca->nsigners++;
	return 0;
fail:
	sk_X509_free(one);
	signer_clear(s);
	return r;
}

static int lock_dir(const char *dir, zt_err *e)
{
	char path[PATH_MAX];
	int fd, r;

	if ((r = zt_path_join(path, sizeof path, e, "%s/.lock", dir)) != 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return zt_err_set(e, ZT_EIO, "cannot open %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX) != 0) {
		close(fd);
		return zt_err_set(e, ZT_EIO, "cannot lock %s: %s", path, strerror(errno));
	}
	return fd; /* closing it releases the lock */
}

int zt_ca_init(const char *dir, const char *td, int64_t root_ttl, int64_t signing_ttl,
	       zt_err *e)
{
	zt_ca *ca = NULL;
	char path[PATH_MAX];
	STACK_OF(X509) *one = NULL;
	zt_spiffe_id tdid;
	uint8_t kid[20];
	int64_t now = zt_now();
	int r, lock = -1;

	if ((r = zt_td_check(td, strlen(td), e)) != 0)
		return r;
	if ((r = zt_mkdir(dir, 0700, e)) != 0)
		return r;
	if ((lock = lock_dir(dir, e)) < 0)
		return lock;
	if (!(ca = calloc(1, sizeof *ca))) {
		r = zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(ca->dir, sizeof ca->dir, "%s", dir);
	snprintf(ca->td, sizeof ca->td, "%s", td);
	ca->sequence = 1;
	ca->refresh_hint = 300;
	if ((r = ca_path(ca, path, sizeof path, "ca.json", e)) != 0)
		goto out;
	if (zt_path_exists(path)) {
		r = zt_err_set(e, ZT_EEXIST,
			       "%s already holds a CA (%s exists); zt will not overwrite it. Use 'zt ca rotate' for a new signing CA, or choose an empty directory",
			       dir, path);
		goto out;
	}
	if ((r = ca_path(ca, path, sizeof path, "signing", e)) != 0 ||
	    (r = zt_mkdir(path, 0700, e)) != 0)
		goto out;
	/* the root: self-signed, CA:TRUE pathlen 1, SPIFFE ID of the trust domain */
	if (!(ca->root_key = zt_key_generate(e)) || (r = zt_key_id(ca->root_key, kid, e)) != 0 ||
	    (r = zt_id_for_td(td, &tdid, e)) != 0) {
		r = r ? r : -ZT_ECRYPTO;
		goto out;
	}
	if (!(ca->root = zt_x509_start(ca->root_key, now - CA_BACKDATE, now + root_ttl, e))) {
		r = -ZT_ECRYPTO;
		goto out;
	}
	if ((r = set_ca_name(ca->root, "root", kid, 1, e)) != 0 ||
	    (r = zt_x509_add_ext_der(ca->root, NID_basic_constraints, 1, bc_root, sizeof bc_root, e)) != 0 ||
	    (r = zt_x509_add_ext_der(ca->root, NID_key_usage, 1, ku_ca, sizeof ku_ca, e)) != 0 ||
	    (r = add_key_ids(ca->root, kid, kid, e)) != 0 ||
	    (r = add_ca_san(ca->root, &tdid, e)) != 0 ||
	    (r = zt_x509_sign(ca->root, ca->root_key, e)) != 0)
		goto out;
	if ((r = ca_path(ca, path, sizeof path, "root.key", e)) != 0 ||
	    (r = zt_key_store(path, ca->root_key, e)) != 0)
		goto out;
	if (!(one = sk_X509_new_null()) || !sk_X509_push(one, ca->root)) {
		r = zt_err_set(e, ZT_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = ca_path(ca, path, sizeof path, "root.pem", e)) != 0 ||
	    (r = zt_certs_save(path, one, e)) != 0)
		goto out;
	if ((r = new_signer(ca, signing_ttl, e)) != 0)
		goto out;
	ca->active = 0;
	/* ca.json last: its presence marks a complete CA */
	r = save_state(ca, e);
out:
	sk_X509_free(one);
	zt_ca_free(ca);
	if (lock >= 0)
		close(lock);
	return r;
}

static int load_signer(zt_ca *ca, const char *name, zt_err *e)
{
	struct signer *s = &ca->signers[ca->nsigners];
	char path[PATH_MAX], rel[64];
	STACK_OF(X509) *certs = NULL;
	int r;

	if (ca->nsigners >= CA_MAX_SIGNERS)
		return zt_err_set(e, ZT_ELIMIT, "more than %d signing CAs in %s/signing",
				  CA_MAX_SIGNERS, ca->dir);
	memset(s, 0, sizeof *s);
	snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(rel, sizeof rel, "signing/%s.pem", name);
	if ((r = ca_path(ca, path, sizeof path, rel, e)) != 0 ||
	    (r = zt_certs_load(path, &certs, e)) != 0)
		return r;
	s->cert = sk_X509_shift(certs);
	sk_X509_pop_free(certs, X509_free);
	snprintf(rel, sizeof rel, "signing/%s.key", name);
	if ((r = ca_path(ca, path, sizeof path, rel, e)) != 0)
		goto fail;
	if (!(s->key = zt_key_load(path, e))) {
		r = -ZT_EPARSE;
		goto fail;
	}
	if (!zt_key_matches_cert(s->key, s->cert)) {
		r = zt_err_set(e, ZT_ESTATE, "%s does not belong to signing/%s.pem", path, name);
		goto fail;
	}
	/* it must really be the root's: a file dropped in here gains no trust */
	if (X509_check_issued(ca->root, s->cert) != X509_V_OK ||
	    X509_verify(s->cert, X509_get0_pubkey(ca->root)) != 1) {
		r = zt_err_set(e, ZT_ESTATE, "signing/%s.pem was not issued by this CA's root", name);
		goto fail;
	}
	if ((r = zt_key_id(s->key, s->key_id, e)) != 0 || (r = signer_prepare(s, e)) != 0)
		goto fail;
	ca->nsigners++;
	return 0;
fail:
	signer_clear(s);
	return r;
}

zt_ca *zt_ca_open(const char *dir, zt_err *e)
{
	zt_ca *ca = calloc(1, sizeof *ca);
	char path[PATH_MAX];
	json_t *docs = NULL, *st;
	STACK_OF(X509) *certs = NULL;
	const char *active;
	DIR *d = NULL;
	struct dirent *de;
	int r;

	if (!ca) {
		zt_err_set(e, ZT_ENOMEM, "out of memory");
		return NULL;
	}
	snprintf(ca->dir, sizeof ca->dir, "%s", dir);
	if ((r = ca_path(ca, path, sizeof path, "ca.json", e)) != 0)
		goto fail;
	if (!zt_path_exists(path)) {
		zt_err_set(e, ZT_ENOENT, "%s holds no CA (no ca.json); create one with 'zt ca init'", dir);
		goto fail;
	}
	if (!(docs = zt_doc_load_file(path, 65536, e)))
		goto fail;
	st = json_array_get(docs, 0);
	if (json_integer_value(json_object_get(st, "version")) != CA_STATE_VERSION ||
	    !json_is_string(json_object_get(st, "trust_domain")) ||
	    !json_is_string(json_object_get(st, "active")) ||
	    !json_is_integer(json_object_get(st, "sequence"))) {
		zt_err_set(e, ZT_EPARSE, "%s is not a zt CA state file of version %d", path,
			   CA_STATE_VERSION);
		goto fail;
	}
	snprintf(ca->td, sizeof ca->td, "%s", json_string_value(json_object_get(st, "trust_domain")));
	if (zt_td_check(ca->td, strlen(ca->td), e) != 0)
		goto fail;
	ca->sequence = (uint64_t)json_integer_value(json_object_get(st, "sequence"));
	ca->refresh_hint = json_is_integer(json_object_get(st, "refresh_hint"))
				   ? json_integer_value(json_object_get(st, "refresh_hint"))
				   : 300;
	active = json_string_value(json_object_get(st, "active"));
	if ((r = ca_path(ca, path, sizeof path, "root.pem", e)) != 0 ||
	    (r = zt_certs_load(path, &certs, e)) != 0)
		goto fail;
	ca->root = sk_X509_shift(certs);
	if ((r = ca_path(ca, path, sizeof path, "root.key", e)) != 0 ||
	    !(ca->root_key = zt_key_load(path, e)))
		goto fail;
	if (!zt_key_matches_cert(ca->root_key, ca->root)) {
		zt_err_set(e, ZT_ESTATE, "%s/root.key does not belong to root.pem", dir);
		goto fail;
	}
	if ((r = ca_path(ca, path, sizeof path, "signing", e)) != 0)
		goto fail;
	if (!(d = opendir(path))) {
		zt_err_set(e, ZT_EIO, "cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	ca->active = SIZE_MAX;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		char name[17];

		if (n != 20 || strcmp(de->d_name + 16, ".pem") != 0)
			continue;
		memcpy(name, de->d_name, 16);
		name[16] = '\0';
		if (load_signer(ca, name, e) != 0)
			goto fail;
		if (strcmp(name, active) == 0)
			ca->active = ca->nsigners - 1;
	}
	if (ca->active == SIZE_MAX) {
		zt_err_set(e, ZT_ESTATE, "the active signing CA %.32s named in ca.json is missing from %s/signing",
			   active, dir);
		goto fail;
	}
	closedir(d);
	sk_X509_pop_free(certs, X509_free);
	json_decref(docs);
	return ca;
fail:
	if (d)
		closedir(d);
	sk_X509_pop_free(certs, X509_free);
	json_decref(docs);
	zt_ca_free(ca);
	zt_err_wrap(e, "opening the CA in %s", dir);
	return NULL;
}

void zt_ca_free(zt_ca *ca)
{
	if (!ca)
		return;
	for (size_t i = 0; i < ca->nsigners; i++)
		signer_clear(&ca->signers[i]);
	X509_free(ca->root);
	EVP_PKEY_free(ca->root_key);
	free(ca);
}

const char *zt_ca_td(const zt_ca *ca) { return ca->td; }
X509 *zt_ca_active(const zt_ca *ca) { return ca->signers[ca->active].cert; }
X509 *zt_ca_root(const zt_ca *ca) { return ca->root; }
int zt_ca_signing_count(const zt_ca *ca) { return (int)ca->nsigners; }

/* Under the lock: fails if another process changed the CA since it was opened. */
static int check_unchanged(const zt_ca *ca, zt_err *e)
{
	char path[PATH_MAX];
	json_t *docs;
	int r = 0;

	if ((r = ca_path(ca, path, sizeof path, "ca.json", e)) != 0)
		return r;
	if (!(docs = zt_doc_load_file(path, 65536, e)))
		return -ZT_EIO;
	if ((uint64_t)json_integer_value(json_object_get(json_array_get(docs, 0), "sequence")) !=
	    ca->sequence)
		r = zt_err_set(e, ZT_ESTATE,
			       "the CA in %s was changed by another process; run the command again",
			       ca->dir);
	json_decref(docs);
	return r;
}

int zt_ca_rotate(zt_ca *ca, int64_t ttl, zt_err *e)
{
	int64_t now = zt_now();
	char path[PATH_MAX], rel[64];
	size_t keep = 0;
	int r, lock;

	if ((lock = lock_dir(ca->dir, e)) < 0)
		return lock;
	if ((r = check_unchanged(ca, e)) != 0 || (r = new_signer(ca, ttl, e)) != 0)
		goto out;
	ca->active = ca->nsigners - 1;
	ca->sequence++;
	if ((r = save_state(ca, e)) != 0)
		goto out;
	/* expired signing CAs leave the bundle, and their keys the disk */
	for (size_t i = 0; i < ca->nsigners; i++) {
		struct signer *s = &ca->signers[i];

		if (s->not_after > now || i == ca->active) {
			ca->signers[keep++] = *s;
			continue;
		}
		for (int k = 0; k < 2; k++) {
			snprintf(rel, sizeof rel, "signing/%s.%s", s->name, k ? "pem" : "key");
			if (ca_path(ca, path, sizeof path, rel, NULL) == 0)
				unlink(path);
		}
		signer_clear(s);
	}
	ca->nsigners = keep;
	ca->active = keep - 1; /* the new one, always last */
out:
	close(lock);
	return r;
}

/*
 * Keys zt will certify: ECDSA on P-256, P-384 or P-521, Ed25519, or RSA of
 * at least 2048 bits. A weak key in an SVID would make the identity weak.
 */
static int check_workload_key(EVP_PKEY *k, zt_err *e)
{
	char group[32];
	size_t n = 0;

	if (EVP_PKEY_is_a(k, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &n) &&
		    (strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0 ||
		     strcmp(group, "secp521r1") == 0))
			return 0;
		return zt_err_rule(e, ZT_EINVAL, "weak-key",
				   "the workload's key is on an elliptic curve zt does not certify; use P-256 (or P-384, P-521)");
	}
	if (EVP_PKEY_is_a(k, "ED25519"))
		return 0;
	if (EVP_PKEY_is_a(k, "RSA")) {
		if (EVP_PKEY_get_bits(k) >= 2048)
			return 0;
		return zt_err_rule(e, ZT_EINVAL, "weak-key",
				   "the workload's RSA key has %d bits; zt certifies RSA keys of 2048 bits or more",
				   EVP_PKEY_get_bits(k));
	}
	return zt_err_rule(e, ZT_EINVAL, "weak-key",
			   "the workload's key type is not one zt certifies (ECDSA P-256/P-384/P-521, Ed25519, RSA >= 2048)");
}

/* DER content bytes of the extension OIDs (RFC 5280 4.2.1) */
static const uint8_t oid_ski[] = { 0x55, 0x1d, 0x0e }, oid_ku[] = { 0x55, 0x1d, 0x0f },
		     oid_san[] = { 0x55, 0x1d, 0x11 }, oid_bc[] = { 0x55, 0x1d, 0x13 },
		     oid_aki[] = { 0x55, 0x1d, 0x23 }, oid_eku[] = { 0x55, 0x1d, 0x25 };

int zt_ca_issue(zt_ca *ca, const zt_spiffe_id *id, const zt_pubkey *pub,
		const zt_issue_opts *opts, zt_buf *chain_der, zt_err *e)
{
	static const zt_issue_opts defaults;
	struct signer *s = &ca->signers[ca->active];
	int64_t now = zt_now(), ttl;
	uint8_t ski[22] = { 0x04, 20 }, aki[24] = { 0x30, 22, 0x80, 20 };
	zt_buf exts, san;
	const uint8_t *spki;
	size_t spki_len;
	zt_certw cw;
	size_t plen;
	char t[32];
	int r = 0;

	if (!opts)
		opts = &defaults;
	ttl = opts->ttl ? opts->ttl : ZT_SVID_TTL_DEFAULT;
	if (ttl < 0 || ttl > ZT_SVID_TTL_MAX)
		return zt_err_set(e, ZT_EINVAL, "an SVID's TTL must be between 1s and %dd",
				  ZT_SVID_TTL_MAX / 86400);
	if (!zt_id_in_td(id, ca->td, strlen(ca->td)))
		return zt_err_rule(e, ZT_EINVAL, "td-mismatch",
				   "this CA is the authority for %s only; it cannot issue %s",
				   ca->td, id->str);
	zt_id_path(id, &plen);
	if (plen == 0)
		return zt_err_rule(e, ZT_EINVAL, "id-no-path",
				   "%s has no path; an SVID must name a workload (X.509-SVID 3.1)", id->str);
	if (opts->ndns > ZT_SVID_DNS_MAX)
		return zt_err_set(e, ZT_ELIMIT, "at most %d DNS names", ZT_SVID_DNS_MAX);
	for (size_t i = 0; i < opts->ndns; i++)
		if (!valid_dns(opts->dns[i]))
			return zt_err_set(e, ZT_EINVAL, "\"%.253s\" is not a valid DNS name",
					  opts->dns[i]);
	if ((r = check_workload_key(zt_pubkey_pkey(pub), e)) != 0)
		return r;
	if (s->not_after <= now + 1) {
		zt_time_format(s->not_after, t, sizeof t);
		return zt_err_set(e, ZT_ESTATE,
				  "the active signing CA expired at %s; run 'zt ca rotate --dir %s'",
				  t, ca->dir);
	}
	zt_buf_init(&exts, 65536);
	zt_buf_init(&san, 65536);
	memcpy(ski + 2, zt_pubkey_id(pub), 20);
	spki = zt_pubkey_spki(pub, &spki_len);
	memcpy(aki + 4, s->key_id, 20);
	/* SubjectAltName: the SPIFFE ID as URI [6], then DNS names [2]; critical,
	 * since the subject is empty (X.509-SVID 2, 3.1; RFC 5280 4.1.2.6) */
	for (size_t i = 0; i < opts->ndns + 1 && r == 0; i++)
		r = i == 0 ? zt_der_put(&exts, 0x86, id->str, id->len, e)
			   : zt_der_put(&exts, 0x82, opts->dns[i - 1], strlen(opts->dns[i - 1]), e);
	if (r != 0 || (r = zt_der_put(&san, 0x30, exts.p, exts.len, e)) != 0)
		goto out;
	exts.len = 0;
	if ((r = zt_der_ext(&exts, oid_bc, sizeof oid_bc, 1, bc_leaf, sizeof bc_leaf, e)) != 0 ||
	    (r = zt_der_ext(&exts, oid_ku, sizeof oid_ku, 1, ku_leaf, sizeof ku_leaf, e)) != 0 ||
	    (r = zt_der_ext(&exts, oid_eku, sizeof oid_eku, 0, eku_leaf, sizeof eku_leaf, e)) != 0 ||
	    (r = zt_der_ext(&exts, oid_ski, sizeof oid_ski, 0, ski, sizeof ski, e)) != 0 ||
	    (r = zt_der_ext(&exts, oid_aki, sizeof oid_aki, 0, aki, sizeof aki, e)) != 0 ||
	    (r = zt_der_ext(&exts, oid_san, sizeof oid_san, 1, san.p, san.len, e)) != 0)
		goto out;
	cw = (zt_certw){
		.issuer = s->subject_der.p,
		.issuer_len = s->subject_der.len,
		.not_before = now - CA_BACKDATE < s->not_before ? s->not_before : now - CA_BACKDATE,
		/* an SVID never outlives its signer */
		.not_after = now + ttl > s->not_after ? s->not_after : now + ttl,
		.spki = spki,
		.spki_len = spki_len,
		.exts = exts.p,
		.exts_len = exts.len,
	};
	uint8_t serial[16];

	cw.serial_out = serial;
	if ((r = zt_certw_sign(&cw, s->sg, chain_der, e)) == 0)
		r = zt_buf_append(chain_der, s->cert_der.p, s->cert_der.len, e);
	if (r == 0 && opts->serial_hex) {
		/* as BN_bn2hex writes it: the first octet is 0x40-0x7f, so no leading zero */
		for (size_t i = 0; i < sizeof serial; i++)
			snprintf(opts->serial_hex + 2 * i, 3, "%02X", serial[i]);
	}
	if (r == 0 && opts->not_after)
		*opts->not_after = cw.not_after;
out:
	zt_buf_free(&exts, 0);
	zt_buf_free(&san, 0);
	return r;
}

zt_bundle *zt_ca_bundle(const zt_ca *ca, zt_err *e)
{
	zt_bundle *b = zt_bundle_new(ca->td, e);
	int64_t now = zt_now();

	if (!b)
		return NULL;
	zt_bundle_set_sequence(b, ca->sequence);
	zt_bundle_set_refresh_hint(b, ca->refresh_hint);
	if (zt_bundle_add_x509(b, ca->root, e) != 0)
		goto fail;
	for (size_t i = 0; i < ca->nsigners; i++)
		if (ca->signers[i].not_after > now &&
		    zt_bundle_add_x509(b, ca->signers[i].cert, e) != 0)
			goto fail;
	return b;
fail:
	zt_bundle_free(b);
	return NULL;
}
