/* cli/cmd_svid.c: zt svid verify */
#include "cli.h"
#include "identity/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE_VERIFY "zt svid verify --bundle FILE [--bundle FILE]... [--id SPIFFE_ID | --trust-domain TD] [--at TIME] CERT"

static int svid_verify(int argc, char **argv)
{
	const char *ids = NULL, *td = NULL, *at = NULL;
	const char **bundles = NULL;
	size_t nbundles = 0, npos;
	char *pos[1];
	const struct zt_opt opts[] = {
		{ "bundle", 1, 1, NULL, &bundles, &nbundles },
		{ "id", 1, 0, &ids, NULL, NULL },
		{ "trust-domain", 1, 0, &td, NULL, NULL },
		{ "at", 1, 0, &at, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	STACK_OF(X509) *chain = NULL;
	zt_bundle_set *set = NULL;
	zt_svid_opts vo = { 0 };
	zt_svid_info info;
	zt_spiffe_id want;
	char tdbuf[ZT_TD_MAX + 1], t1[32], t2[32], left[32];
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 1, &npos, USAGE_VERIFY)) != 0)
		goto done;
	r = ZT_EXIT_USAGE;
	if (nbundles == 0 || npos != 1) {
		zt_cli_usage(USAGE_VERIFY, "give at least one --bundle and exactly one certificate file");
		goto done;
	}
	if (ids && td) {
		zt_cli_usage(USAGE_VERIFY, "give --id or --trust-domain, not both");
		goto done;
	}
	if (at && zt_cli_parse_time(at, &vo.now) != 0) {
		zt_cli_usage(USAGE_VERIFY, "--at: \"%.100s\" is not a time; write 2026-01-02T03:04:05Z or seconds since 1970", at);
		goto done;
	}
	if (ids) {
		size_t n;
		const char *t;

		if (zt_id_parse(ids, strlen(ids), &want, &e) != 0) {
			zt_cli_fail(&e, "--id", r);
			goto done;
		}
		vo.expect_id = &want;
		t = zt_id_td(&want, &n);
		memcpy(tdbuf, t, n);
		tdbuf[n] = '\0';
	} else if (td) {
		if (zt_td_check(td, strlen(td), &e) != 0) {
			zt_cli_fail(&e, "--trust-domain", r);
			goto done;
		}
		snprintf(tdbuf, sizeof tdbuf, "%s", td);
		vo.trust_domain = tdbuf;
	}
	r = ZT_EXIT_FAIL;
	if (!(set = zt_bundle_set_new())) {
		fprintf(stderr, "zt: out of memory\n");
		goto done;
	}
	for (size_t i = 0; i < nbundles; i++) {
		zt_bundle *b = zt_bundle_load((ids || td) ? tdbuf : NULL, bundles[i], &e);

		if (!b || zt_bundle_set_put(set, b, &e) != 0) {
			zt_cli_fail(&e, "svid verify", r);
			goto done;
		}
	}
	if (zt_certs_load(pos[0], &chain, &e) != 0) {
		zt_cli_fail(&e, "svid rejected", r);
		goto done;
	}
	if (zt_svid_verify(set, chain, &vo, &info, &e) != 0) {
		zt_cli_fail(&e, "svid rejected", r);
		goto done;
	}
	zt_time_format(info.not_before, t1, sizeof t1);
	zt_time_format(info.not_after, t2, sizeof t2);
	zt_duration_format(info.not_after - (vo.now ? vo.now : zt_now()), left, sizeof left);
	printf("ok: %s\n", info.id.str);
	printf("  valid %s to %s (%s left)\n", t1, t2, left);
	{
		size_t tdl;
		const char *tdp = zt_id_td(&info.id, &tdl);

		printf("  chain of %d certificates to an authority of the %.*s trust bundle\n",
		       info.chain_len, (int)tdl, tdp);
	}
	r = ZT_EXIT_OK;
done:
	sk_X509_pop_free(chain, X509_free);
	zt_bundle_set_free(set);
	free(bundles);
	return r;
}

int zt_cmd_svid(int argc, char **argv)
{
	static const char usage[] = "zt svid verify ...";

	if (argc >= 1 && strcmp(argv[0], "verify") == 0) {
		if (argc > 1 && strcmp(argv[1], "--help") == 0) {
			printf("usage: %s\n", USAGE_VERIFY);
			return ZT_EXIT_OK;
		}
		return svid_verify(argc - 1, argv + 1);
	}
	return zt_cli_usage(usage, argc ? "unknown subcommand \"svid %.100s\"" : "missing subcommand%.0s",
			    argc ? argv[0] : "");
}
