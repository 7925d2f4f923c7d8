/*
 * cli/cmd_audit_remote.c: the server's audit log, from outside:
 *   zt audit entries   what the log holds (JSON, one entry per line)
 *   zt audit witness   the log's signed checkpoint, checked against a
 *                      pinned key and against the last one this witness
 *                      saw (a consistency proof: the log only grew)
 * The local commands (--dir) are in cmd_audit.c.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"

#define U_ENTRIES "zt audit entries [--from N] [--limit N] " ZT_REMOTE_USAGE
#define U_WITNESS                                                                                \
	"zt audit witness --log-key LOG.pub --state FILE " ZT_REMOTE_USAGE "\n"                        \
	"       (LOG.pub: the log's verifier key, from the server's audit/log.pub, given out of band;\n" \
	"        FILE: the last checkpoint this witness accepted, created on first use)"

static int entries(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *from = NULL, *limit = NULL;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"from", 1, 0, &from, NULL, NULL},
		{"limit", 1, 0, &limit, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1], path[128];
	size_t npos;
	json_t *ans, *it;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 0, &npos, U_ENTRIES)) != 0)
		return r;
	if ((from && strspn(from, "0123456789") != strlen(from)) ||
	    (limit && (strspn(limit, "0123456789") != strlen(limit) || !*limit)))
		return zt_cli_usage(U_ENTRIES, "--from and --limit are numbers");
	zt_api *a = zt_remote_open(&rm, "audit entries");

	if (!a)
		return ZT_EXIT_FAIL;
	snprintf(path, sizeof path, "/v1/audit/entries?from=%.20s&limit=%.20s", from ? from : "0",
		 limit ? limit : "100");
	if ((r = zt_remote_call(a, "audit entries", "GET", path, NULL, NULL, &ans)) == ZT_EXIT_OK) {
		size_t i;

		json_array_foreach(json_object_get(ans, "items"), i, it) {
			char *s = json_dumps(it, JSON_COMPACT | JSON_PRESERVE_ORDER);

			if (s)
				puts(s);
			free(s);
		}
		json_decref(ans);
	}
	zt_api_free(a);
	return r;
}

/* A GET whose answer is text (a checkpoint, a proof) into b. */
static int get_text(zt_api *a, const char *path, zt_buf *b, const char *what)
{
	zt_api_resp r;
	zt_err e;

	if (zt_api_call(a, "GET", path, NULL, NULL, 30000, &r, &e) != 0)
		return zt_cli_fail(&e, what, ZT_EXIT_FAIL);
	if (r.status != 200) {
		fprintf(stderr, "zt: %s: HTTP %d: %s\n", what, r.status, zt_api_resp_message(&r));
		zt_api_resp_free(&r);
		return ZT_EXIT_FAIL;
	}
	*b = r.body; /* taken over */
	json_decref(r.json);
	return ZT_EXIT_OK;
}

static int witness(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *key_path = NULL, *state = NULL;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"log-key", 1, 0, &key_path, NULL, NULL},
		{"state", 1, 0, &state, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	static zt_audit_proof p;
	char *pos[1], path[128];
	size_t npos;
	zt_note_key *k = NULL;
	zt_buf kb, note, old, proof;
	zt_checkpoint now, before;
	zt_api *a = NULL;
	zt_err e;
	int r, have_old;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 0, &npos, U_WITNESS)) != 0)
		return r;
	if (!key_path || !state)
		return zt_cli_usage(U_WITNESS, "--log-key and --state are required");
	zt_buf_init(&kb, 4096);
	zt_buf_init(&note, ZT_NOTE_MAX);
	zt_buf_init(&old, ZT_NOTE_MAX);
	zt_buf_init(&proof, ZT_PROOF_FILE_MAX);
	r = ZT_EXIT_FAIL;
	if (zt_file_read(key_path, 4096, &kb, &e) != 0 ||
	    !(k = zt_note_verifier_parse((const char *)kb.p, kb.len, &e))) {
		zt_err_wrap(&e, "%s", key_path);
		zt_cli_fail(&e, "audit witness", ZT_EXIT_FAIL);
		goto out;
	}
	if (!(a = zt_remote_open(&rm, "audit witness")) ||
	    get_text(a, "/v1/audit/checkpoint", &note, "audit witness") != ZT_EXIT_OK)
		goto out;
	if (zt_checkpoint_open(k, (const char *)note.p, note.len, &now, &e) != 0) {
		zt_err_wrap(&e, "the server's checkpoint");
		zt_cli_fail(&e, "audit witness", ZT_EXIT_FAIL);
		goto out;
	}
	have_old = zt_path_exists(state);
	if (have_old && (zt_file_read(state, ZT_NOTE_MAX, &old, &e) != 0 ||
			 zt_checkpoint_open(k, (const char *)old.p, old.len, &before, &e) != 0)) {
		zt_err_wrap(&e, "%s (the last checkpoint accepted)", state);
		zt_cli_fail(&e, "audit witness", ZT_EXIT_FAIL);
		goto out;
	}
	if (have_old) {
		if (now.size < before.size) {
			fprintf(stderr, "zt: audit witness: [log-shrank] the log had %llu entries and now "
					"claims %llu: it was rolled back or forked\n",
				(unsigned long long)before.size, (unsigned long long)now.size);
			goto out;
		}
		if (now.size == before.size && memcmp(now.root, before.root, ZT_HASH_LEN)) {
			fprintf(stderr, "zt: audit witness: [log-forked] two different trees of %llu "
					"entries were signed\n", (unsigned long long)now.size);
			goto out;
		}
		if (now.size > before.size && before.size > 0) {
			snprintf(path, sizeof path, "/v1/audit/consistency?from=%llu&to=%llu",
				 (unsigned long long)before.size, (unsigned long long)now.size);
			if (get_text(a, path, &proof, "audit witness") != ZT_EXIT_OK)
				goto out;
			if (zt_audit_proof_parse((const char *)proof.p, proof.len, &p, &e) != 0 ||
			    zt_audit_proof_check(&p, &e) != 0) {
				zt_cli_fail(&e, "audit witness: the consistency proof", ZT_EXIT_FAIL);
				goto out;
			}
			/* the proof must join exactly the two signed roots */
			if (p.kind != ZT_PROOF_CONSISTENCY || p.size1 != before.size ||
			    p.size2 != now.size || memcmp(p.root1, before.root, ZT_HASH_LEN) ||
			    memcmp(p.root, now.root, ZT_HASH_LEN)) {
				fprintf(stderr, "zt: audit witness: [log-forked] the server's proof does not "
						"join the checkpoint of %llu entries to the one of %llu: the "
						"log was rewritten\n",
					(unsigned long long)before.size, (unsigned long long)now.size);
				goto out;
			}
		}
	}
	if (zt_file_write(state, note.p, note.len, 0644, 0, &e) != 0) {
		zt_cli_fail(&e, "audit witness", ZT_EXIT_FAIL);
		goto out;
	}
	if (have_old)
		printf("ok: the log grew from %llu to %llu entries and only grew (consistency proof checked)\n",
		       (unsigned long long)before.size, (unsigned long long)now.size);
	else
		printf("ok: the signed checkpoint of %llu entries is now this witness's reference (%s)\n",
		       (unsigned long long)now.size, state);
	r = ZT_EXIT_OK;
out:
	zt_note_key_free(k);
	zt_api_free(a);
	zt_buf_free(&kb, 0);
	zt_buf_free(&note, 0);
	zt_buf_free(&old, 0);
	zt_buf_free(&proof, 0);
	return r;
}

int zt_audit_remote(const char *sub, int argc, char **argv)
{
	int help = argc > 0 && !strcmp(argv[0], "--help");

	if (!strcmp(sub, "entries"))
		return help ? (printf("usage: %s\n", U_ENTRIES), ZT_EXIT_OK) : entries(argc, argv);
	if (!strcmp(sub, "witness"))
		return help ? (printf("usage: %s\n", U_WITNESS), ZT_EXIT_OK) : witness(argc, argv);
	return zt_cli_usage(U_ENTRIES, "unknown subcommand \"audit %.100s\"", sub);
}
