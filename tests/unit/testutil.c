/* tests/unit/testutil.c: temporary folders and test vectors. */
#include "testutil.h"

#include "crypto/crypto.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The tests run with the crypto set-up the zt command uses (crypto/ecfast.c). */
__attribute__((constructor)) static void tu_crypto_init(void)
{
	zt_crypto_init();
}

char *tu_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (asprintf(&p, "%s/zt-unit-XXXXXX", base ? base : "/tmp") < 0 || !mkdtemp(p))
		abort();
	return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tu_rmtree(char *dir)
{
	if (dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

const char *tu_vector(const char *rel)
{
	static char path[PATH_MAX];
	const char *root = getenv("ZT_SRCDIR");

	snprintf(path, sizeof path, "%s/tests/vectors/%s", root ? root : ".", rel);
	return path;
}

char *tu_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

#include <openssl/x509v3.h>

EVP_PKEY *tu_key(void)
{
	EVP_PKEY *k = zt_key_generate(NULL);

	if (!k)
		abort();
	return k;
}

X509 *tu_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *cn,
	      int64_t nb, int64_t na, const char *const *exts)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX ctx;
	static uint64_t serial = 1000;

	if (!x || !name)
		abort();
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial++);
	ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb);
	ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na);
	X509_set_pubkey(x, key);
	if (cn) {
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	}
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	for (size_t i = 0; exts && exts[i]; i++) {
		char buf[4096], *eq;
		X509_EXTENSION *ext;

		snprintf(buf, sizeof buf, "%s", exts[i]);
		eq = strchr(buf, '=');
		if (!eq)
			abort();
		*eq = '\0';
		ext = X509V3_EXT_nconf(NULL, &ctx, buf, eq + 1);
		if (!ext) {
			fprintf(stderr, "tu_cert: bad extension %s\n", exts[i]);
			abort();
		}
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, issuer ? issuer_key : key, EVP_sha256()) <= 0)
		abort();
	X509_NAME_free(name);
	return x;
}
