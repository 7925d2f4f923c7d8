/*
 * identity/svid.c: X.509-SVID validation.
 *
 * The SPIFFE rules (X.509-SVID 2, 3, 4 and 5.2) are checked here, in an
 * order that reports the most specific rule first; path validation
 * (X.509-SVID 5.1, RFC 5280) is OpenSSL's, run against the bundle of the
 * leaf ID's own trust domain only, so no trust domain can mint IDs for
 * another.
 */
#include "identity.h"
#include "bundle_int.h"

#include <string.h>

#include <openssl/x509v3.h>

/* RFC 5280 4.2: a certificate MUST NOT include more than one instance of a
 * particular extension. */
static int check_extensions(X509 *x, const char *what, zt_err *e)
{
	int n = X509_get_ext_count(x);

	if (n > 64)
		return zt_err_rule(e, ZT_EVERIFY, "cert-invalid",
				   "%s has %d extensions; that is not a certificate zt accepts",
				   what, n);
	for (int i = 0; i < n; i++) {
		const ASN1_OBJECT *oi = X509_EXTENSION_get_object(X509_get_ext(x, i));

		for (int j = i + 1; j < n; j++)
			if (OBJ_cmp(oi, X509_EXTENSION_get_object(X509_get_ext(x, j))) == 0)
				return zt_err_rule(e, ZT_EVERIFY, "cert-invalid",
						   "%s repeats an extension (RFC 5280 4.2)", what);
	}
	/* OpenSSL flags extensions it could not decode */
	if (X509_get_extension_flags(x) & EXFLAG_INVALID)
		return zt_err_rule(e, ZT_EVERIFY, "cert-invalid",
				   "%s has a malformed extension", what);
	return 0;
}

/*
 * Finds the URI SANs. *count gets their number; *uri and *len the first.
 * The returned GENERAL_NAMES owns the strings; caller frees it.
 */
static GENERAL_NAMES *uri_sans(X509 *x, int *count, const char **uri, size_t *len,
			       int *san_critical)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, san_critical, NULL);

	*count = 0;
	*uri = NULL;
	*len = 0;
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type != GEN_URI)
			continue;
		if ((*count)++ == 0) {
			*uri = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
			*len = (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		}
	}
	return names;
}

static int ku_critical(X509 *x)
{
	int loc = X509_get_ext_by_NID(x, NID_key_usage, -1);

	return loc >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, loc));
}

int zt_svid_check_leaf(X509 *leaf, zt_spiffe_id *id, zt_err *e)
{
	GENERAL_NAMES *names;
	const char *uri;
	size_t ulen, plen;
	uint32_t flags, ku;
	int count, crit = -1, r;

	if ((r = check_extensions(leaf, "the leaf certificate", e)) != 0)
		return r;
	/* X.509-SVID 2: exactly one URI SAN, which is the SPIFFE ID */
	names = uri_sans(leaf, &count, &uri, &ulen, &crit);
	if (count == 0) {
		GENERAL_NAMES_free(names);
		return zt_err_rule(e, ZT_EVERIFY, "uri-san-missing",
				   "the leaf certificate has no URI subject alternative name; an X.509-SVID carries its SPIFFE ID as exactly one URI SAN (X.509-SVID 2)");
	}
	if (count > 1) {
		GENERAL_NAMES_free(names);
		return zt_err_rule(e, ZT_EVERIFY, "uri-san-count",
				   "the leaf certificate has %d URI SANs; an X.509-SVID must have exactly one (X.509-SVID 2, 5.2)",
				   count);
	}
	r = zt_id_parse(uri, ulen, id, e);
	GENERAL_NAMES_free(names);
	if (r != 0)
		return zt_err_wrap(e, "the leaf's URI SAN is not a SPIFFE ID");
	zt_id_path(id, &plen);
	if (plen == 0)
		return zt_err_rule(e, ZT_EVERIFY, "id-no-path",
				   "the leaf's SPIFFE ID %s has no path; a leaf SVID must identify a workload (X.509-SVID 3.1, 5.2)",
				   id->str);
	if (X509_NAME_entry_count(X509_get_subject_name(leaf)) == 0 && crit != 1)
		return zt_err_rule(e, ZT_EVERIFY, "san-not-critical",
				   "the leaf has an empty subject, so its SAN extension must be critical (X.509-SVID 3.1, RFC 5280 4.1.2.6)");
	/* X.509-SVID 4.1, 5.2: a leaf is not a CA */
	flags = X509_get_extension_flags(leaf);
	if (flags & EXFLAG_CA)
		return zt_err_rule(e, ZT_EVERIFY, "leaf-ca",
				   "the leaf certificate has CA:true; a leaf SVID must have CA:false (X.509-SVID 4.1, 5.2)");
	/* X.509-SVID 4.3: key usage present, critical; digitalSignature and
	 * neither keyCertSign nor cRLSign */
	if (!(flags & EXFLAG_KUSAGE))
		return zt_err_rule(e, ZT_EVERIFY, "leaf-ku-missing",
				   "the leaf certificate has no key usage extension; an SVID must have one, marked critical (X.509-SVID 4.3)");
	ku = X509_get_key_usage(leaf);
	if (!(ku & KU_DIGITAL_SIGNATURE))
		return zt_err_rule(e, ZT_EVERIFY, "leaf-no-digital-signature",
				   "the leaf certificate's key usage lacks digitalSignature, which a leaf SVID must have (X.509-SVID 4.3)");
	if (ku & KU_KEY_CERT_SIGN)
		return zt_err_rule(e, ZT_EVERIFY, "leaf-key-cert-sign",
				   "the leaf certificate's key usage has keyCertSign; a leaf SVID must not (X.509-SVID 4.3, 5.2)");
	if (ku & KU_CRL_SIGN)
		return zt_err_rule(e, ZT_EVERIFY, "leaf-crl-sign",
				   "the leaf certificate's key usage has cRLSign; a leaf SVID must not (X.509-SVID 4.3, 5.2)");
	if (!ku_critical(leaf))
		return zt_err_rule(e, ZT_EVERIFY, "leaf-ku-not-critical",
				   "the leaf certificate's key usage extension is not critical; it must be (X.509-SVID 4.3)");
	/* X.509-SVID 4.4: when present, EKU has both serverAuth and clientAuth */
	if (flags & EXFLAG_XKUSAGE) {
		uint32_t xku = X509_get_extended_key_usage(leaf);

		if (!(xku & XKU_ANYEKU) &&
		    (xku & (XKU_SSL_SERVER | XKU_SSL_CLIENT)) != (XKU_SSL_SERVER | XKU_SSL_CLIENT))
			return zt_err_rule(e, ZT_EVERIFY, "leaf-eku",
					   "the leaf certificate's extended key usage lacks %s; when present it must have both serverAuth and clientAuth (X.509-SVID 4.4)",
					   (xku & XKU_SSL_SERVER) ? "clientAuth" : "serverAuth");
	}
	return 0;
}

int zt_svid_check_signer(X509 *ca, const char *what, zt_err *e)
{
	GENERAL_NAMES *names;
	zt_spiffe_id id;
	const char *uri;
	size_t ulen, plen;
	uint32_t flags;
	int count, crit, r;

	if ((r = check_extensions(ca, what, e)) != 0)
		return r;
	/* X.509-SVID 3.2, 4.1, 4.3: CA:true and keyCertSign */
	flags = X509_get_extension_flags(ca);
	if (!(flags & EXFLAG_CA))
		return zt_err_rule(e, ZT_EVERIFY, "signer-not-ca",
				   "%s signs certificates but does not have CA:true (X.509-SVID 3.2, 4.1)", what);
	if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN))
		return zt_err_rule(e, ZT_EVERIFY, "signer-no-key-cert-sign",
				   "%s signs certificates but its key usage lacks keyCertSign (X.509-SVID 3.2, 4.3)", what);
	/* X.509-SVID 3.2: if it has a SPIFFE ID, the ID has no path */
	names = uri_sans(ca, &count, &uri, &ulen, &crit);
	if (count > 1) {
		GENERAL_NAMES_free(names);
		return zt_err_rule(e, ZT_EVERIFY, "signer-uri-san-count",
				   "%s has %d URI SANs; at most one SPIFFE ID is allowed (X.509-SVID 2)", what, count);
	}
	r = count == 1 ? zt_id_parse(uri, ulen, &id, e) : 0;
	GENERAL_NAMES_free(names);
	if (r != 0)
		return zt_err_wrap(e, "%s has a URI SAN that is not a SPIFFE ID", what);
	if (count == 1 && (zt_id_path(&id, &plen), plen != 0))
		return zt_err_rule(e, ZT_EVERIFY, "signer-id-path",
				   "%s has the SPIFFE ID %s, which has a path; a signing certificate's ID must not (X.509-SVID 3.2)",
				   what, id.str);
	return 0;
}

static const char *depth_name(int depth, int len, char *buf, size_t bufsz)
{
	if (depth == 0)
		return "the leaf certificate";
	if (depth == len - 1)
		return "the trust anchor";
	snprintf(buf, bufsz, "the signing certificate at depth %d", depth);
	return buf;
}

static int path_error(X509_STORE_CTX *ctx, const char *td, int64_t now, zt_err *e)
{
	int err = X509_STORE_CTX_get_error(ctx);
	int depth = X509_STORE_CTX_get_error_depth(ctx);
	X509 *cert = X509_STORE_CTX_get_current_cert(ctx);
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	char nb[40], tbuf[32], nowbuf[32];
	const char *what = depth_name(depth, chain ? sk_X509_num(chain) : 0, nb, sizeof nb);
	int64_t not_before = 0, not_after = 0;

	if (cert)
		(void)zt_cert_times(cert, &not_before, &not_after);
	zt_time_format(now, nowbuf, sizeof nowbuf);
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		zt_time_format(not_after, tbuf, sizeof tbuf);
		return zt_err_rule(e, ZT_EVERIFY, "expired",
				   "%s expired at %s (validation time %s) (RFC 5280 6.1.3)",
				   what, tbuf, nowbuf);
	case X509_V_ERR_CERT_NOT_YET_VALID:
		zt_time_format(not_before, tbuf, sizeof tbuf);
		return zt_err_rule(e, ZT_EVERIFY, "not-yet-valid",
				   "%s is not valid before %s (validation time %s) (RFC 5280 6.1.3)",
				   what, tbuf, nowbuf);
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		return zt_err_rule(e, ZT_EVERIFY, "untrusted",
				   "the chain does not lead to an authority in the trust bundle of %s (%s at %s); present the full chain, or check that the bundle is the right one (X.509-SVID 5.1)",
				   td, X509_verify_cert_error_string(err), what);
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
		return zt_err_rule(e, ZT_EVERIFY, "signature",
				   "the signature on %s does not verify (RFC 5280 6.1.3)", what);
	case X509_V_ERR_INVALID_CA:
		return zt_err_rule(e, ZT_EVERIFY, "signer-not-ca",
				   "%s signs certificates but is not a CA (X.509-SVID 3.2)", what);
	case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
		return zt_err_rule(e, ZT_EVERIFY, "signer-no-key-cert-sign",
				   "%s signs certificates but lacks keyCertSign (X.509-SVID 3.2)", what);
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL:
	case X509_V_ERR_CA_MD_TOO_WEAK:
		return zt_err_rule(e, ZT_EVERIFY, "weak-key",
				   "%s has a key or signature weaker than 112 bits of security (%s)",
				   what, X509_verify_cert_error_string(err));
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		return zt_err_rule(e, ZT_EVERIFY, "chain-too-long",
				   "the chain is too long at %s (%s)", what,
				   X509_verify_cert_error_string(err));
	default:
		return zt_err_rule(e, ZT_EVERIFY, "path",
				   "path validation failed at %s: %s (RFC 5280 6.1)", what,
				   X509_verify_cert_error_string(err));
	}
}

/*
 * The signature and validity step of RFC 5280 6.1.3 (a)(1)-(2), in place of
 * OpenSSL's internal one so that signatures go through prepared contexts
 * (zt_cert_check_signature). Chain building, the CA, key usage, path length
 * and name constraint checks stay OpenSSL's. Works top down: the trust
 * anchor's time is checked but not its signature, as in OpenSSL.
 */
static int check_signatures_and_times(X509_STORE_CTX *ctx)
{
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
	zt_svid_info *info = X509_STORE_CTX_get_app_data(ctx);
	int n = sk_X509_num(chain);
	int64_t now = (int64_t)X509_VERIFY_PARAM_get_time(param);

	info->chain_not_after = INT64_MAX;
	for (int i = n - 1; i >= 0; i--) {
		X509 *x = sk_X509_value(chain, i);
		int64_t nb, na;
		int err = X509_V_OK;

		if (i < n - 1 && !zt_cert_check_signature(x, sk_X509_value(chain, i + 1)))
			err = X509_V_ERR_CERT_SIGNATURE_FAILURE;
		else if (zt_cert_times(x, &nb, &na) != 0)
			err = X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD;
		else if (now < nb)
			err = X509_V_ERR_CERT_NOT_YET_VALID;
		else if (now > na)
			err = X509_V_ERR_CERT_HAS_EXPIRED;
		if (err == X509_V_OK) {
			if (na < info->chain_not_after)
				info->chain_not_after = na;
			if (i == 0) {
				info->not_before = nb;
				info->not_after = na;
			}
		}
		if (err != X509_V_OK) {
			X509_STORE_CTX_set_error(ctx, err);
			X509_STORE_CTX_set_error_depth(ctx, i);
			X509_STORE_CTX_set_current_cert(ctx, x);
			return 0;
		}
	}
	return 1;
}

int zt_svid_verify(const zt_bundle_set *bundles, STACK_OF(X509) *chain,
		   const zt_svid_opts *opts, zt_svid_info *info, zt_err *e)
{
	static const zt_svid_opts defaults;
	X509_STORE_CTX *ctx = NULL;
	const zt_bundle *b;
	STACK_OF(X509) *verified;
	X509 *leaf;
	const char *td;
	size_t td_len;
	int n, r;
	int64_t now;

	if (!opts)
		opts = &defaults;
	now = opts->now ? opts->now : zt_now();
	memset(info, 0, sizeof *info);
	n = chain ? sk_X509_num(chain) : 0;
	if (n == 0)
		return zt_err_rule(e, ZT_EVERIFY, "chain-empty", "no certificate was presented");
	if (n > ZT_CHAIN_MAX_CERTS)
		return zt_err_rule(e, ZT_EVERIFY, "chain-too-long",
				   "%d certificates presented; at most %d are accepted", n,
				   ZT_CHAIN_MAX_CERTS);
	leaf = sk_X509_value(chain, 0);
	if ((r = zt_svid_check_leaf(leaf, &info->id, e)) != 0)
		return r;
	td = zt_id_td(&info->id, &td_len);
	if (opts->expect_id && strcmp(opts->expect_id->str, info->id.str) != 0)
		return zt_err_rule(e, ZT_EVERIFY, "id-mismatch",
				   "the SVID is for %s, not the expected %s", info->id.str,
				   opts->expect_id->str);
	if (opts->trust_domain && !zt_id_in_td(&info->id, opts->trust_domain,
					      strlen(opts->trust_domain)))
		return zt_err_rule(e, ZT_EVERIFY, "td-mismatch",
				   "the SVID %s is not in the expected trust domain %s",
				   info->id.str, opts->trust_domain);
	for (int i = 1; i < n; i++) {
		char what[64];

		snprintf(what, sizeof what, "the presented signing certificate #%d", i);
		if ((r = zt_svid_check_signer(sk_X509_value(chain, i), what, e)) != 0)
			return r;
	}
	b = zt_bundle_set_get(bundles, td, td_len);
	if (!b)
		return zt_err_rule(e, ZT_EVERIFY, "no-bundle",
				   "there is no trust bundle for the trust domain of %s; bundles of different trust domains are never used for each other",
				   info->id.str);
	ctx = X509_STORE_CTX_new();
	if (!ctx || !X509_STORE_CTX_init(ctx, zt_bundle_store(b), leaf, chain)) {
		r = zt_crypto_err(e, ZT_ENOMEM, "cannot set up path validation");
		goto out;
	}
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_time(param, (time_t)now);
	X509_VERIFY_PARAM_set_depth(param, ZT_CHAIN_MAX_CERTS);
	/* every bundle authority is a trust anchor (as in SPIFFE bundles) */
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
	X509_STORE_CTX_set_verify(ctx, check_signatures_and_times);
	X509_STORE_CTX_set_app_data(ctx, info);
	/* keys of at least 112-bit strength: RSA >= 2048, EC >= 224 (SP 800-57) */
	X509_VERIFY_PARAM_set_auth_level(param, 2);
	if (X509_verify_cert(ctx) != 1) {
		r = path_error(ctx, zt_bundle_td(b), now, e);
		goto out;
	}
	/* No signing-certificate rules again here: the chain OpenSSL built holds
	 * only presented certificates (checked above) and bundle authorities
	 * (checked when they entered the bundle). */
	verified = X509_STORE_CTX_get0_chain(ctx);
	info->chain_len = sk_X509_num(verified); /* times: set by the check above */
	r = 0;
out:
	X509_STORE_CTX_free(ctx);
	if (r != 0)
		memset(info, 0, sizeof *info);
	return r;
}
