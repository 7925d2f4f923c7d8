/* identity/bundle_int.h: what the identity module's files share about
 * bundles; not part of the module's API. */
#ifndef ZT_IDENTITY_BUNDLE_INT_H
#define ZT_IDENTITY_BUNDLE_INT_H

#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "identity.h"

/* The bundle's authorities as an OpenSSL trust store (owned by the bundle). */
X509_STORE *zt_bundle_store(const zt_bundle *b);

#endif
