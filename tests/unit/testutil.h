/* tests/unit/testutil.h: helpers shared by zt's cmocka unit tests. */
#ifndef ZT_TESTUTIL_H
#define ZT_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

/* A new empty directory under $TMPDIR; caller passes it to tu_rmtree. */
char *tu_mkdtemp(void);
/* Removes a directory tree and frees the path. */
void tu_rmtree(char *dir);
/* Path of a file under tests/vectors (static buffer). */
const char *tu_vector(const char *rel);
/* Reads a whole file; caller frees. */
char *tu_read(const char *path, size_t *len);

#ifndef ZT_TESTUTIL_NO_X509
#include <openssl/evp.h>
#include <openssl/x509.h>

/*
 * A certificate for key, issued by issuer/issuer_key (self-signed when
 * issuer is NULL), valid [nb, na], subject "O=test, CN=cn" (cn may be NULL
 * for an empty subject), with extensions written as in `openssl -extfile`
 * ("basicConstraints=critical,CA:TRUE", "subjectAltName=URI:spiffe://..."),
 * a NULL-terminated list. Aborts on failure: it is test scaffolding.
 */
X509 *tu_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *cn,
	      int64_t nb, int64_t na, const char *const *exts);
EVP_PKEY *tu_key(void);
#endif

#endif
