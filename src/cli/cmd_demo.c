/*
 * cli/cmd_demo.c: zt demo — a trust domain in a temporary folder, two SVIDs
 * issued and verified, and two forgeries refused, told in a few lines.
 */
#include "cli.h"
#include "identity/identity.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TD "demo.zt.example"

static int issue(zt_ca *ca, const char *dir, const char *ws, const char *svc,
		 STACK_OF(X509) **chain, zt_err *e)
{
	char path[PATH_MAX];
	zt_spiffe_id id;
	EVP_PKEY *key;
	zt_pubkey *pub;
	zt_buf der, pem;
	int r;

	if ((r = zt_id_workload(TD, ws, svc, &id, e)) != 0)
		return r;
	if (!(key = zt_key_generate(e)))
		return -ZT_ECRYPTO;
	if (!(pub = zt_pubkey_from_pkey(key, e))) {
		EVP_PKEY_free(key);
		return -ZT_ECRYPTO;
	}
	zt_buf_init(&der, 1u << 20);
	zt_buf_init(&pem, 2u << 20);
	if ((r = zt_ca_issue(ca, &id, pub, NULL, &der, e)) == 0 &&
	    (r = zt_certs_parse_der(der.p, der.len, chain, e)) == 0 &&
	    (r = zt_der_certs_to_pem(der.p, der.len, &pem, e)) == 0 &&
	    (r = zt_path_join(path, sizeof path, e, "%s/%s.key", dir, svc)) == 0 &&
	    (r = zt_key_save(path, key, e)) == 0 &&
	    (r = zt_path_join(path, sizeof path, e, "%s/%s.pem", dir, svc)) == 0)
		r = zt_file_write(path, pem.p, pem.len, 0644, 0, e);
	zt_buf_free(&der, 0);
	zt_buf_free(&pem, 0);
	zt_pubkey_free(pub);
	EVP_PKEY_free(key);
	return r;
}

static void show(const char *what, const zt_svid_info *info)
{
	char t[32];

	zt_time_format(info->not_after, t, sizeof t);
	printf("  verified  %-4s %s (expires %s, chain of %d)\n", what, info->id.str, t,
	       info->chain_len);
}

int zt_cmd_demo(int argc, char **argv)
{
	char dir[] = "/tmp/zt-demo-XXXXXX", cadir[PATH_MAX], roguedir[PATH_MAX];
	STACK_OF(X509) *web = NULL, *db = NULL, *forged = NULL;
	zt_bundle_set *set = NULL;
	zt_ca *ca = NULL, *rogue = NULL;
	zt_bundle *b;
	zt_svid_info info;
	zt_svid_opts vo = { 0 };
	zt_spiffe_id want;
	zt_err e;
	int r = ZT_EXIT_FAIL;

	(void)argv;
	if (argc > 0)
		return zt_cli_usage("zt demo", "zt demo takes no arguments");
	if (!mkdtemp(dir)) {
		perror("zt demo: mkdtemp");
		return ZT_EXIT_FAIL;
	}
	printf("zt demo: a trust domain in %s\n", dir);
	if (zt_path_join(cadir, sizeof cadir, &e, "%s/ca", dir) != 0 ||
	    zt_path_join(roguedir, sizeof roguedir, &e, "%s/rogue-ca", dir) != 0 ||
	    zt_ca_init(cadir, TD, ZT_CA_ROOT_TTL_DEFAULT, ZT_CA_SIGNING_TTL_DEFAULT, &e) != 0 ||
	    !(ca = zt_ca_open(cadir, &e)))
		goto fail;
	printf("  created   CA for spiffe://%s (root, and a signing CA valid 7 days)\n", TD);
	if (issue(ca, dir, "shop", "web", &web, &e) != 0 || issue(ca, dir, "shop", "db", &db, &e) != 0)
		goto fail;
	printf("  issued    2 SVIDs, ECDSA P-256, 1 hour: %s/web.pem, %s/db.pem\n", dir, dir);
	if (!(set = zt_bundle_set_new()) || !(b = zt_ca_bundle(ca, &e)) ||
	    zt_bundle_set_put(set, b, &e) != 0)
		goto fail;
	if (zt_svid_verify(set, web, NULL, &info, &e) != 0)
		goto fail;
	show("web", &info);
	if (zt_svid_verify(set, db, NULL, &info, &e) != 0)
		goto fail;
	show("db", &info);
	/* the web SVID presented where the db service is expected */
	if (zt_id_workload(TD, "shop", "db", &want, &e) != 0)
		goto fail;
	vo.expect_id = &want;
	if (zt_svid_verify(set, web, &vo, &info, &e) == 0) {
		fprintf(stderr, "zt demo: the web SVID passed for db: this is a bug\n");
		goto out;
	}
	printf("  refused   web's SVID where db is expected: [%s]\n", e.rule);
	/* an SVID for db from a CA outside the trust bundle */
	if (zt_ca_init(roguedir, TD, 86400, 3600, &e) != 0 || !(rogue = zt_ca_open(roguedir, &e)) ||
	    issue(rogue, roguedir, "shop", "db", &forged, &e) != 0)
		goto fail;
	if (zt_svid_verify(set, forged, NULL, &info, &e) == 0) {
		fprintf(stderr, "zt demo: a forged SVID passed: this is a bug\n");
		goto out;
	}
	printf("  refused   a forged db SVID from a rogue CA: [%s]\n", e.rule);
	printf("try: zt svid verify --bundle %s/ca/root.pem %s/web.pem\n", dir, dir);
	r = ZT_EXIT_OK;
	goto out;
fail:
	zt_cli_fail(&e, "demo", ZT_EXIT_FAIL);
out:
	sk_X509_pop_free(web, X509_free);
	sk_X509_pop_free(db, X509_free);
	sk_X509_pop_free(forged, X509_free);
	zt_bundle_set_free(set);
	zt_ca_free(ca);
	zt_ca_free(rogue);
	return r;
}
