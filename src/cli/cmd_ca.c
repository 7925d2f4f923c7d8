/* cli/cmd_ca.c: zt ca init | rotate | issue | status */
#include "cli.h"
#include "identity/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE_INIT "zt ca init --trust-domain TD --dir DIR [--root-ttl 365d] [--signing-ttl 7d]"
#define USAGE_ROTATE "zt ca rotate --dir DIR [--ttl 7d]"
#define USAGE_ISSUE "zt ca issue --dir DIR --id SPIFFE_ID (--csr FILE | --key-out FILE) [--ttl 1h] [--dns NAME]... --out FILE"
#define USAGE_STATUS "zt ca status --dir DIR"

#define TTL_MAX_CA (20LL * 365 * 86400)

static int parse_ttl(const char *s, int64_t dflt, int64_t max, int64_t *out,
		     const char *opt, const char *usage)
{
	zt_err e;

	if (!s) {
		*out = dflt;
		return 0;
	}
	if (zt_duration_parse(s, max, out, &e) != 0)
		return zt_cli_usage(usage, "--%s: %s", opt, e.msg);
	return 0;
}

static int ca_init(int argc, char **argv)
{
	const char *td = NULL, *dir = NULL, *rttl = NULL, *sttl = NULL;
	const struct zt_opt opts[] = {
		{ "trust-domain", 1, 0, &td, NULL, NULL },
		{ "dir", 1, 0, &dir, NULL, NULL },
		{ "root-ttl", 1, 0, &rttl, NULL, NULL },
		{ "signing-ttl", 1, 0, &sttl, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	int64_t root_ttl, signing_ttl;
	size_t npos;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE_INIT)) != 0)
		return r;
	if (!td || !dir)
		return zt_cli_usage(USAGE_INIT, "--trust-domain and --dir are required");
	if ((r = parse_ttl(rttl, ZT_CA_ROOT_TTL_DEFAULT, TTL_MAX_CA, &root_ttl, "root-ttl", USAGE_INIT)) != 0 ||
	    (r = parse_ttl(sttl, ZT_CA_SIGNING_TTL_DEFAULT, TTL_MAX_CA, &signing_ttl, "signing-ttl", USAGE_INIT)) != 0)
		return r;
	if (signing_ttl > root_ttl)
		return zt_cli_usage(USAGE_INIT, "--signing-ttl must not be longer than --root-ttl");
	if (zt_td_check(td, strlen(td), &e) != 0)
		return zt_cli_fail(&e, "ca init", ZT_EXIT_USAGE);
	if (zt_ca_init(dir, td, root_ttl, signing_ttl, &e) != 0)
		return zt_cli_fail(&e, "ca init", ZT_EXIT_FAIL);
	printf("created the CA of trust domain %s in %s\n", td, dir);
	printf("  root CA:    %s/root.pem (key root.key, mode 0600)\n", dir);
	printf("  signing CA: under %s/signing/\n", dir);
	printf("next: zt ca issue --dir %s --id spiffe://%s/ns/WORKSPACE/sa/SERVICE --key-out KEY --out CERT\n",
	       dir, td);
	return ZT_EXIT_OK;
}

static int ca_rotate(int argc, char **argv)
{
	const char *dir = NULL, *ttls = NULL;
	const struct zt_opt opts[] = {
		{ "dir", 1, 0, &dir, NULL, NULL },
		{ "ttl", 1, 0, &ttls, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	char exp[32];
	int64_t ttl, nb, na;
	size_t npos;
	zt_ca *ca;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE_ROTATE)) != 0)
		return r;
	if (!dir)
		return zt_cli_usage(USAGE_ROTATE, "--dir is required");
	if ((r = parse_ttl(ttls, ZT_CA_SIGNING_TTL_DEFAULT, TTL_MAX_CA, &ttl, "ttl", USAGE_ROTATE)) != 0)
		return r;
	if (!(ca = zt_ca_open(dir, &e)))
		return zt_cli_fail(&e, "ca rotate", ZT_EXIT_FAIL);
	if (zt_ca_rotate(ca, ttl, &e) != 0) {
		zt_ca_free(ca);
		return zt_cli_fail(&e, "ca rotate", ZT_EXIT_FAIL);
	}
	(void)zt_cert_times(zt_ca_active(ca), &nb, &na);
	zt_time_format(na, exp, sizeof exp);
	printf("rotated: a new signing CA is active until %s; %d signing CA(s) in the bundle\n",
	       exp, zt_ca_signing_count(ca));
	zt_ca_free(ca);
	return ZT_EXIT_OK;
}

static int ca_issue(int argc, char **argv)
{
	const char *dir = NULL, *ids = NULL, *csr = NULL, *keyout = NULL, *ttls = NULL,
		   *out = NULL;
	const char **dns = NULL;
	size_t ndns = 0, npos;
	const struct zt_opt opts[] = {
		{ "dir", 1, 0, &dir, NULL, NULL },
		{ "id", 1, 0, &ids, NULL, NULL },
		{ "csr", 1, 0, &csr, NULL, NULL },
		{ "key-out", 1, 0, &keyout, NULL, NULL },
		{ "ttl", 1, 0, &ttls, NULL, NULL },
		{ "dns", 1, 1, NULL, &dns, &ndns },
		{ "out", 1, 0, &out, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	STACK_OF(X509) *chain = NULL;
	zt_buf der, pem;
	EVP_PKEY *key = NULL;
	zt_pubkey *pub = NULL;
	zt_issue_opts io = { 0 };
	zt_spiffe_id id;
	zt_ca *ca = NULL;
	char exp[32];
	int64_t nb, na;
	zt_err e;
	int r;

	zt_buf_init(&der, 1u << 20);
	zt_buf_init(&pem, 2u << 20);
	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE_ISSUE)) != 0)
		goto done;
	r = ZT_EXIT_USAGE;
	if (!dir || !ids || !out) {
		zt_cli_usage(USAGE_ISSUE, "--dir, --id and --out are required");
		goto done;
	}
	if (!!csr == !!keyout) {
		zt_cli_usage(USAGE_ISSUE, "give exactly one of --csr (the workload keeps its key) or --key-out (zt makes one)");
		goto done;
	}
	if (parse_ttl(ttls, ZT_SVID_TTL_DEFAULT, ZT_SVID_TTL_MAX, &io.ttl, "ttl", USAGE_ISSUE) != 0)
		goto done;
	if (zt_id_parse(ids, strlen(ids), &id, &e) != 0) {
		zt_cli_fail(&e, "--id", ZT_EXIT_USAGE);
		goto done;
	}
	if (keyout && zt_path_exists(keyout)) {
		fprintf(stderr, "zt: ca issue: %s already exists; zt will not overwrite a key (move it away or choose another path)\n", keyout);
		r = ZT_EXIT_FAIL;
		goto done;
	}
	r = ZT_EXIT_FAIL;
	io.dns = dns;
	io.ndns = ndns;
	if (!(ca = zt_ca_open(dir, &e))) {
		zt_cli_fail(&e, "ca issue", r);
		goto done;
	}
	if (csr) {
		zt_buf b;

		if (zt_file_read(csr, ZT_PEM_MAX_BYTES, &b, &e) != 0) {
			zt_cli_fail(&e, "ca issue", r);
			goto done;
		}
		pub = zt_csr_parse(b.p, b.len, &e);
		zt_buf_free(&b, 0);
		if (!pub) {
			zt_err_wrap(&e, "%s", csr);
			zt_cli_fail(&e, "ca issue", r);
			goto done;
		}
	} else if (!(key = zt_key_generate(&e)) || !(pub = zt_pubkey_from_pkey(key, &e))) {
		zt_cli_fail(&e, "ca issue", r);
		goto done;
	}
	if (zt_ca_issue(ca, &id, pub, &io, &der, &e) != 0 ||
	    zt_der_certs_to_pem(der.p, der.len, &pem, &e) != 0 ||
	    zt_certs_parse_der(der.p, der.len, &chain, &e) != 0) {
		zt_cli_fail(&e, "ca issue", r);
		goto done;
	}
	/* the key first: a certificate without its key is useless, and the key
	 * file must not already exist, so nothing is lost if this fails */
	if (key && zt_key_save(keyout, key, &e) != 0) {
		zt_cli_fail(&e, "ca issue", r);
		goto done;
	}
	if (zt_file_write(out, pem.p, pem.len, 0644, 0, &e) != 0) {
		zt_cli_fail(&e, "ca issue", r);
		goto done;
	}
	(void)zt_cert_times(sk_X509_value(chain, 0), &nb, &na);
	zt_time_format(na, exp, sizeof exp);
	printf("issued %s, valid until %s\n  chain: %s (leaf, then signing CA)\n", id.str, exp, out);
	if (keyout)
		printf("  key:   %s (mode 0600)\n", keyout);
	r = ZT_EXIT_OK;
done:
	sk_X509_pop_free(chain, X509_free);
	zt_buf_free(&der, 0);
	zt_buf_free(&pem, 0);
	EVP_PKEY_free(key);
	zt_pubkey_free(pub);
	zt_ca_free(ca);
	free(dns);
	return r;
}

static int ca_status(int argc, char **argv)
{
	const char *dir = NULL;
	const struct zt_opt opts[] = {
		{ "dir", 1, 0, &dir, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	char t1[32], t2[32], fp[65];
	int64_t nb, na;
	size_t npos;
	zt_ca *ca;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE_STATUS)) != 0)
		return r;
	if (!dir)
		return zt_cli_usage(USAGE_STATUS, "--dir is required");
	if (!(ca = zt_ca_open(dir, &e)))
		return zt_cli_fail(&e, "ca status", ZT_EXIT_FAIL);
	printf("trust domain: %s\n", zt_ca_td(ca));
	(void)zt_cert_times(zt_ca_root(ca), &nb, &na);
	zt_time_format(na, t1, sizeof t1);
	zt_cert_fingerprint(zt_ca_root(ca), fp);
	printf("root CA:      valid until %s, sha256 %s\n", t1, fp);
	(void)zt_cert_times(zt_ca_active(ca), &nb, &na);
	zt_time_format(nb, t1, sizeof t1);
	zt_time_format(na, t2, sizeof t2);
	printf("signing CA:   active, valid %s to %s\n", t1, t2);
	printf("signing CAs:  %d in the bundle\n", zt_ca_signing_count(ca));
	zt_ca_free(ca);
	return ZT_EXIT_OK;
}

int zt_cmd_ca(int argc, char **argv)
{
	static const char usage[] = "zt ca init|rotate|issue|status ... (zt ca SUBCOMMAND --help)";

	if (argc < 1)
		return zt_cli_usage(usage, "missing subcommand");
	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		const char *u = strcmp(argv[0], "init") == 0     ? USAGE_INIT
				: strcmp(argv[0], "rotate") == 0 ? USAGE_ROTATE
				: strcmp(argv[0], "issue") == 0  ? USAGE_ISSUE
								 : USAGE_STATUS;
		printf("usage: %s\n", u);
		return ZT_EXIT_OK;
	}
	if (strcmp(argv[0], "init") == 0)
		return ca_init(argc - 1, argv + 1);
	if (strcmp(argv[0], "rotate") == 0)
		return ca_rotate(argc - 1, argv + 1);
	if (strcmp(argv[0], "issue") == 0)
		return ca_issue(argc - 1, argv + 1);
	if (strcmp(argv[0], "status") == 0)
		return ca_status(argc - 1, argv + 1);
	return zt_cli_usage(usage, "unknown subcommand \"ca %.100s\"", argv[0]);
}
