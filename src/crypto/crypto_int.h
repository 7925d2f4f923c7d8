/* crypto/crypto_int.h: shared between the crypto module's files only. */
#ifndef ZT_CRYPTO_INT_H
#define ZT_CRYPTO_INT_H

#include "crypto.h"

/* A zt_pubkey from an X509_PUBKEY exactly as it was received (a CSR's). */
zt_pubkey *zt_pubkey_from_x509_pubkey(EVP_PKEY *pkey, X509_PUBKEY *xpk, zt_err *e);

/* A zt_pubkey for a P-256 key whose SubjectPublicKeyInfo is the 91 bytes at spki. */
zt_pubkey *zt_pubkey_from_p256_spki(EVP_PKEY *pkey, const uint8_t *spki, zt_err *e);

/* Frees this thread's prepared JWS verification contexts (jws.c). */
void zt_jws_thread_cleanup(void);

#endif
