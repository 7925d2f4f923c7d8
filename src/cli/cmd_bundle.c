/* cli/cmd_bundle.c: zt bundle export */
#include "cli.h"
#include "identity/identity.h"

#include <stdio.h>
#include <string.h>

#define USAGE_EXPORT "zt bundle export --dir DIR --format pem|spiffe [--out FILE]"

static int bundle_export(int argc, char **argv)
{
	const char *dir = NULL, *fmt = NULL, *out = NULL;
	const struct zt_opt opts[] = {
		{ "dir", 1, 0, &dir, NULL, NULL },
		{ "format", 1, 0, &fmt, NULL, NULL },
		{ "out", 1, 0, &out, NULL, NULL },
		{ NULL, 0, 0, NULL, NULL, NULL },
	};
	zt_bundle *b = NULL;
	zt_ca *ca = NULL;
	size_t npos;
	zt_buf buf;
	zt_err e;
	int r, spiffe;

	zt_buf_init(&buf, 16u << 20);
	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE_EXPORT)) != 0)
		return r;
	if (!dir)
		return zt_cli_usage(USAGE_EXPORT, "--dir is required");
	if (!fmt)
		fmt = "pem";
	if (strcmp(fmt, "pem") != 0 && strcmp(fmt, "spiffe") != 0)
		return zt_cli_usage(USAGE_EXPORT, "--format is pem or spiffe, not \"%.40s\"", fmt);
	spiffe = strcmp(fmt, "spiffe") == 0;
	r = ZT_EXIT_FAIL;
	if (!(ca = zt_ca_open(dir, &e)) || !(b = zt_ca_bundle(ca, &e)) ||
	    (spiffe ? zt_bundle_to_spiffe(b, &buf, &e) : zt_bundle_to_pem(b, &buf, &e)) != 0 ||
	    (out && zt_file_write(out, buf.p, buf.len, 0644, 0, &e) != 0)) {
		zt_cli_fail(&e, "bundle export", r);
		goto done;
	}
	if (!out && fwrite(buf.p, 1, buf.len, stdout) != buf.len) {
		fprintf(stderr, "zt: bundle export: cannot write to standard output\n");
		goto done;
	}
	r = ZT_EXIT_OK;
done:
	zt_buf_free(&buf, 0);
	zt_bundle_free(b);
	zt_ca_free(ca);
	return r;
}

int zt_cmd_bundle(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "export") == 0) {
		if (argc > 1 && strcmp(argv[1], "--help") == 0) {
			printf("usage: %s\n", USAGE_EXPORT);
			return ZT_EXIT_OK;
		}
		return bundle_export(argc - 1, argv + 1);
	}
	return zt_cli_usage(USAGE_EXPORT, "unknown or missing subcommand (try: zt bundle export)");
}
