/*
 * cli/cmd_jwt.c: zt jwt verify|sign|jwks — JSON Web Tokens by hand: check a
 * token the way the proxy does (crypto/jwt.c, keys from a file, a URL or an
 * OpenID provider's discovery), and mint or publish with a local key.
 */
#include "cli.h"
#include "crypto/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#define U_VERIFY                                                                                  \
	"zt jwt verify (--jwks FILE | --jwks-uri URL | --oidc ISSUER) (--issuer ISS | --jwt-svid TD)\n" \
	"              [--audience AUD]... [--leeway 60s] [--exp-optional] [--ca-file PEM]\n"     \
	"              [--hmac-secret-file FILE --hmac-alg HS256] [--max-bytes N] TOKEN|-"
#define U_SIGN "zt jwt sign --key KEY.pem [--kid KID] [--ttl 15m] CLAIMS-JSON|-"
#define U_JWKS "zt jwt jwks (--key KEY.pem | --pub PUB.pem)... [--kid KID]"

#define TIMEOUT_MS 10000

/* A token or claims from the argument, or stdin for "-" (trailing newline dropped). */
static int arg_or_stdin(const char *arg, zt_buf *b, zt_err *e)
{
	zt_buf_init(b, 2 * 1024 * 1024);
	if (strcmp(arg, "-") != 0)
		return zt_buf_append(b, arg, strlen(arg), e) || zt_buf_terminate(b, e) ? -ZT_ENOMEM : 0;
	if (zt_file_read("/dev/stdin", 2 * 1024 * 1024, b, e) != 0)
		return -ZT_EIO;
	while (b->len && (b->p[b->len - 1] == '\n' || b->p[b->len - 1] == '\r'))
		b->p[--b->len] = '\0';
	return 0;
}

static int jwt_verify_with(int argc, char **argv, const char ***audsp);

/* The repeated --audience values are allocated by the parser: freed on every way out. */
static int jwt_verify(int argc, char **argv)
{
	const char **auds = NULL;
	int r = jwt_verify_with(argc, argv, &auds);

	free(auds);
	return r;
}

static int jwt_verify_with(int argc, char **argv, const char ***audsp)
{
	const char *jwks = NULL, *uri = NULL, *oidc = NULL, *issuer = NULL, *leeway_s = NULL,
		   *ca = NULL, *secret_file = NULL, *hmac_alg = NULL, *max_s = NULL, *exp_opt = NULL,
		   *svid_td = NULL;
	const char **auds = NULL;
	size_t naud = 0, npos;
	const struct zt_opt opts[] = {
		{"jwks", 1, 0, &jwks, NULL, NULL},
		{"jwks-uri", 1, 0, &uri, NULL, NULL},
		{"oidc", 1, 0, &oidc, NULL, NULL},
		{"issuer", 1, 0, &issuer, NULL, NULL},
		{"jwt-svid", 1, 0, &svid_td, NULL, NULL},
		{"audience", 1, 1, NULL, audsp, &naud},
		{"leeway", 1, 0, &leeway_s, NULL, NULL},
		{"exp-optional", 0, 0, &exp_opt, NULL, NULL},
		{"ca-file", 1, 0, &ca, NULL, NULL},
		{"hmac-secret-file", 1, 0, &secret_file, NULL, NULL},
		{"hmac-alg", 1, 0, &hmac_alg, NULL, NULL},
		{"max-bytes", 1, 0, &max_s, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1], jwks_uri[2048];
	zt_jwt_rules rules = {.leeway = -1};
	zt_jwks keys;
	zt_jwt t;
	zt_buf tok, b;
	zt_err e;
	int r, sources;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 1, &npos, U_VERIFY)) != 0)
		return r;
	auds = *audsp;
	sources = !!jwks + !!uri + !!oidc + !!secret_file;
	if (npos != 1)
		return zt_cli_usage(U_VERIFY, "give the token (or - to read it from stdin)");
	if (sources != 1)
		return zt_cli_usage(U_VERIFY, "give exactly one of --jwks, --jwks-uri, --oidc, --hmac-secret-file");
	if (!issuer && !oidc && !svid_td)
		return zt_cli_usage(U_VERIFY, "--issuer is required (or --jwt-svid TD): a token is only good from the "
					      "issuer you expect");
	if (svid_td && (issuer || !naud))
		return zt_cli_usage(U_VERIFY, "--jwt-svid checks a JWT-SVID of trust domain TD: no --issuer, and "
					      "an --audience is required (SPIFFE JWT-SVID 4)");
	if (secret_file && !hmac_alg)
		return zt_cli_usage(U_VERIFY, "--hmac-secret-file needs --hmac-alg HS256|HS384|HS512");
	rules.issuer = issuer ? issuer : oidc;
	rules.audiences = naud ? auds : NULL;
	rules.exp_optional = exp_opt != NULL;
	if (leeway_s && zt_duration_parse(leeway_s, 3600, &rules.leeway, &e) != 0)
		return zt_cli_usage(U_VERIFY, "--leeway: %s", e.msg);
	if (max_s) {
		char *end;
		unsigned long long m = strtoull(max_s, &end, 10);

		if (*end || m < 64 || m > 1024 * 1024)
			return zt_cli_usage(U_VERIFY, "--max-bytes is 64 to 1048576");
		rules.max_len = (size_t)m;
	}
	memset(&keys, 0, sizeof keys);
	if (jwks) {
		zt_buf_init(&b, ZT_JWKS_MAX_BYTES);
		r = zt_file_read(jwks, ZT_JWKS_MAX_BYTES, &b, &e);
		if (r == 0 && (r = zt_jwks_parse((const char *)b.p, b.len, 0, &keys, &e)) != 0)
			zt_err_wrap(&e, "%s", jwks);
		zt_buf_free(&b, 0);
	} else if (secret_file) {
		int a = zt_jwa_from_name(hmac_alg);

		zt_buf_init(&b, 4096);
		r = zt_file_read(secret_file, 4096, &b, &e);
		if (r == 0)
			r = zt_jwks_add_secret(&keys, b.p, b.len, NULL, a, &e);
		zt_buf_free(&b, 1);
	} else {
		if (oidc)
			r = zt_oidc_discover(oidc, ca, TIMEOUT_MS, -1, jwks_uri, sizeof jwks_uri, &e);
		else
			r = snprintf(jwks_uri, sizeof jwks_uri, "%s", uri) >= (int)sizeof jwks_uri
				    ? zt_err_set(&e, ZT_EINVAL, "--jwks-uri is too long")
				    : 0;
		if (r == 0)
			r = zt_jwks_fetch(jwks_uri, ca, TIMEOUT_MS, -1, 0, &keys, &e);
	}
	if (r != 0) {
		zt_jwks_free(&keys);
		return zt_cli_fail(&e, "jwt verify: keys", ZT_EXIT_FAIL);
	}
	if (arg_or_stdin(pos[0], &tok, &e) != 0) {
		zt_jwks_free(&keys);
		return zt_cli_fail(&e, "jwt verify", ZT_EXIT_FAIL);
	}
	r = zt_jwt_verify((const char *)tok.p, tok.len, &keys, &rules, &t, &e);
	zt_buf_free(&tok, 0);
	/* SPIFFE JWT-SVID 4: the subject is a SPIFFE ID of the trust domain */
	if (r == 0 && svid_td) {
		size_t tl = strlen(svid_td);

		if (!t.sub || strncmp(t.sub, "spiffe://", 9) || strncmp(t.sub + 9, svid_td, tl) || t.sub[9 + tl] != '/') {
			r = zt_err_rule(&e, ZT_EVERIFY, "jwt-svid-sub", "the token's subject is not a SPIFFE ID of %s",
					svid_td);
			zt_jwt_free(&t);
		}
	}
	if (r == 0) {
		char *s = json_dumps(t.claims, JSON_COMPACT);

		printf("%s\n", s ? s : "{}");
		free(s);
		zt_jwt_free(&t);
	}
	zt_jwks_free(&keys);
	return r == 0 ? ZT_EXIT_OK : zt_cli_fail(&e, "jwt verify", ZT_EXIT_FAIL);
}

static int jwt_sign(int argc, char **argv)
{
	const char *keyf = NULL, *kid = NULL, *ttl_s = NULL;
	const struct zt_opt opts[] = {
		{"key", 1, 0, &keyf, NULL, NULL},
		{"kid", 1, 0, &kid, NULL, NULL},
		{"ttl", 1, 0, &ttl_s, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1], thumb[44];
	size_t npos;
	int64_t ttl = 0, now = (int64_t)time(NULL);
	EVP_PKEY *key;
	json_t *claims;
	zt_buf in, out;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 1, &npos, U_SIGN)) != 0)
		return r;
	if (!keyf || npos != 1)
		return zt_cli_usage(U_SIGN, "give --key and the claims (a JSON object, or - for stdin)");
	if (ttl_s && zt_duration_parse(ttl_s, 366 * 86400, &ttl, &e) != 0)
		return zt_cli_usage(U_SIGN, "--ttl: %s", e.msg);
	if (!(key = zt_key_load(keyf, &e)))
		return zt_cli_fail(&e, "jwt sign", ZT_EXIT_FAIL);
	if (!kid && zt_jwk_thumbprint(key, thumb, &e) == 0)
		kid = thumb;
	claims = NULL;
	if (arg_or_stdin(pos[0], &in, &e) == 0 && !(claims = zt_json_parse((const char *)in.p, in.len, &e)))
		zt_err_wrap(&e, "claims");
	zt_buf_free(&in, 0);
	if (claims && !json_is_object(claims)) {
		json_decref(claims);
		claims = NULL;
		zt_err_set(&e, ZT_EINVAL, "the claims are a JSON object");
	}
	if (!claims) {
		EVP_PKEY_free(key);
		return zt_cli_fail(&e, "jwt sign", ZT_EXIT_FAIL);
	}
	if (ttl) {
		json_object_set_new(claims, "iat", json_integer(now));
		json_object_set_new(claims, "exp", json_integer(now + ttl));
	}
	zt_buf_init(&out, 1024 * 1024);
	r = zt_jwt_sign(key, kid, claims, &out, &e);
	if (r == 0)
		printf("%s\n", (const char *)out.p);
	zt_buf_free(&out, 0);
	json_decref(claims);
	EVP_PKEY_free(key);
	return r == 0 ? ZT_EXIT_OK : zt_cli_fail(&e, "jwt sign", ZT_EXIT_FAIL);
}

static EVP_PKEY *load_pub(const char *path, zt_err *e)
{
	EVP_PKEY *k = NULL;
	BIO *bio;
	zt_buf b;

	if (zt_file_read(path, ZT_PEM_MAX_BYTES, &b, e) != 0)
		return NULL;
	if ((bio = BIO_new_mem_buf(b.p, (int)b.len)))
		k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	zt_buf_free(&b, 0);
	if (!k)
		zt_crypto_err(e, ZT_EPARSE, "no PEM public key");
	return k;
}

static int jwt_jwks(int argc, char **argv)
{
	const char **keyfs = NULL, **pubfs = NULL, *kid = NULL;
	size_t nkey = 0, npub = 0, npos;
	const struct zt_opt opts[] = {
		{"key", 1, 1, NULL, &keyfs, &nkey},
		{"pub", 1, 1, NULL, &pubfs, &npub},
		{"kid", 1, 0, &kid, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	json_t *set = json_object(), *arr = json_array();
	char thumb[44], *s;
	zt_err e;
	int r = 0;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_JWKS)) != 0) {
		json_decref(set);
		json_decref(arr);
		return r;
	}
	if (nkey + npub == 0 || (kid && nkey + npub != 1)) {
		json_decref(set);
		json_decref(arr);
		free(keyfs);
		free(pubfs);
		return zt_cli_usage(U_JWKS, "give --key or --pub files (--kid only with one key)");
	}
	json_object_set_new(set, "keys", arr);
	for (size_t i = 0; r == 0 && i < nkey + npub; i++) {
		const char *f = i < nkey ? keyfs[i] : pubfs[i - nkey];
		EVP_PKEY *k = i < nkey ? zt_key_load(f, &e) : load_pub(f, &e);
		json_t *j = json_object();

		if (!k || zt_jwk_set_public(k, j, &e) != 0 || (!kid && zt_jwk_thumbprint(k, thumb, &e) != 0)) {
			if (k)
				zt_err_wrap(&e, "%s", f);
			r = -1;
		} else {
			json_object_set_new(j, "kid", json_string(kid ? kid : thumb));
			json_object_set_new(j, "use", json_string("sig"));
			json_object_set_new(j, "alg", json_string(zt_jwa_name(zt_jwa_for_key(k))));
			json_array_append(arr, j);
		}
		json_decref(j);
		EVP_PKEY_free(k);
	}
	if (r == 0 && (s = json_dumps(set, JSON_INDENT(2)))) {
		printf("%s\n", s);
		free(s);
	}
	json_decref(set);
	free(keyfs);
	free(pubfs);
	return r == 0 ? ZT_EXIT_OK : zt_cli_fail(&e, "jwt jwks", ZT_EXIT_FAIL);
}

int zt_cmd_jwt(int argc, char **argv)
{
	if (argc >= 1 && !strcmp(argv[0], "verify"))
		return jwt_verify(argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "sign"))
		return jwt_sign(argc - 1, argv + 1);
	if (argc >= 1 && !strcmp(argv[0], "jwks"))
		return jwt_jwks(argc - 1, argv + 1);
	return zt_cli_usage(U_VERIFY "\n       " U_SIGN "\n       " U_JWKS, "unknown or missing subcommand");
}
