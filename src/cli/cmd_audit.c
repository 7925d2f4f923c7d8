/* cli/cmd_audit.c: zt audit — the tamper-evident audit log (docs/audit.md). */
#include "cli.h"
#include "audit/audit.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define U_INIT "zt audit init --dir DIR --origin NAME"
#define U_APPEND                                                                         \
	"zt audit append --dir DIR --actor ID --action NAME [--target T] [--decision D]\n" \
	"                [--request-id R] [--detail K=V]... [--secret K=V]...\n"            \
	"       zt audit append --dir DIR --stdin [--jobs N]   (events as JSON lines; N threads,\n" \
	"                default 1: entries keep the input's order)"
#define U_CHECKPOINT "zt audit checkpoint --dir DIR"
#define U_PROVE "zt audit prove --dir DIR --index N [--size M]"
#define U_CONSISTENCY "zt audit consistency --dir DIR --from OLD_SIZE [--to NEW_SIZE]"
#define U_CHECKPROOF "zt audit check-proof FILE [--checkpoint NOTE --key PUBFILE]"
#define U_VERIFY "zt audit verify --dir DIR [--key PUBFILE] [--checkpoint NOTE]..."
#define U_TAIL "zt audit tail --dir DIR [--lines N]"
#define U_SEARCH                                                                        \
	"zt audit search --dir DIR [--actor ID] [--action NAME] [--target T] [--decision D]\n" \
	"                [--since TIME] [--until TIME] [--secret K=V]"

#define STDIN_LINE_MAX (ZT_AUDIT_ENTRY_MAX * 2)

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	*out = 0;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);

	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int write_out(const void *p, size_t n)
{
	return fwrite(p, 1, n, stdout) == n ? 0 : -1;
}

/* ---- init ---------------------------------------------------------------- */

static int audit_init(int argc, char **argv)
{
	const char *dir = NULL, *origin = NULL;
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{"origin", 1, 0, &origin, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char p[4200];
	zt_buf b;
	size_t npos;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_INIT)) != 0)
		return r;
	if (!dir || !origin)
		return zt_cli_usage(U_INIT, "--dir and --origin are required");
	if (zt_audit_create(dir, origin, &e) != 0)
		return zt_cli_fail(&e, "audit init", ZT_EXIT_FAIL);
	zt_buf_init(&b, 4096);
	snprintf(p, sizeof p, "%s/log.pub", dir);
	if (zt_file_read(p, 4096, &b, &e) != 0)
		return zt_cli_fail(&e, "audit init", ZT_EXIT_FAIL);
	write_out(b.p, b.len);
	zt_buf_free(&b, 0);
	return ZT_EXIT_OK;
}

/* ---- append ---------------------------------------------------------------- */

static int add_kv(json_t *obj, const char *kv, const char *what)
{
	const char *eq = strchr(kv, '=');

	if (!eq || eq == kv) {
		fprintf(stderr, "zt: audit append: --%s takes KEY=VALUE, not \"%.100s\"\n", what, kv);
		return -1;
	}
	char key[256];
	size_t kl = (size_t)(eq - kv);

	if (kl >= sizeof key) {
		fprintf(stderr, "zt: audit append: --%s key is too long\n", what);
		return -1;
	}
	memcpy(key, kv, kl);
	key[kl] = '\0';
	if (json_object_set_new(obj, key, json_string(eq + 1)) != 0) {
		fprintf(stderr, "zt: audit append: --%s value is not UTF-8\n", what);
		return -1;
	}
	return 0;
}

struct stdin_job {
	zt_audit *log;
	pthread_mutex_t in_mu, out_mu;
	FILE *in;
	uint64_t lineno;
	int bad, done;
	char *line;
	size_t cap;
};

static void *stdin_worker(void *arg)
{
	struct stdin_job *j = arg;
	zt_buf entry;

	zt_buf_init(&entry, ZT_AUDIT_ENTRY_MAX + 1);
	for (;;) {
		char *copy = NULL;
		uint64_t lineno;
		ssize_t n;

		pthread_mutex_lock(&j->in_mu);
		if (j->done) {
			pthread_mutex_unlock(&j->in_mu);
			break;
		}
		n = getline(&j->line, &j->cap, j->in);
		if (n < 0) {
			j->done = 1;
			pthread_mutex_unlock(&j->in_mu);
			break;
		}
		lineno = ++j->lineno;
		if ((size_t)n <= STDIN_LINE_MAX)
			copy = strndup(j->line, (size_t)n);
		pthread_mutex_unlock(&j->in_mu);

		json_error_t je;
		json_t *ev = NULL;
		zt_err e;
		uint64_t index;

		zt_err_clear(&e);
		entry.len = 0;
		if (!copy) {
			zt_err_rule(&e, ZT_ELIMIT, "entry-size", "the line is longer than %d bytes",
				    STDIN_LINE_MAX);
		} else if (!(ev = json_loads(copy, JSON_REJECT_DUPLICATES, &je))) {
			zt_err_rule(&e, ZT_EPARSE, "entry-schema", "not a JSON object: %s", je.text);
		} else if (zt_audit_entry_build(ev, zt_audit_hmac_key(j->log), zt_now_ms(), &entry,
						&e) == 0 &&
			   zt_audit_append(j->log, (const char *)entry.p, entry.len, &index, &e) ==
			       0) {
			pthread_mutex_lock(&j->out_mu);
			printf("%llu %llu\n", (unsigned long long)index, (unsigned long long)lineno);
			fflush(stdout);
			pthread_mutex_unlock(&j->out_mu);
			json_decref(ev);
			free(copy);
			continue;
		}
		json_decref(ev);
		free(copy);
		pthread_mutex_lock(&j->out_mu);
		fprintf(stderr, "zt: audit append: line %llu: [%s] %s\n", (unsigned long long)lineno,
			e.rule, e.msg);
		j->bad = 1;
		pthread_mutex_unlock(&j->out_mu);
		if (e.code == ZT_EIO) { /* the log stopped: nothing more can land */
			pthread_mutex_lock(&j->in_mu);
			j->done = 1;
			pthread_mutex_unlock(&j->in_mu);
		}
	}
	zt_buf_free(&entry, 0);
	return NULL;
}

static int append_stdin(zt_audit *log, uint64_t jobs)
{
	struct stdin_job j = {.log = log, .in = stdin};
	pthread_t th[64];
	uint64_t started = 0;

	pthread_mutex_init(&j.in_mu, NULL);
	pthread_mutex_init(&j.out_mu, NULL);
	for (; started < jobs; started++)
		if (pthread_create(&th[started], NULL, stdin_worker, &j) != 0)
			break;
	if (started == 0)
		stdin_worker(&j);
	for (uint64_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(j.line);
	pthread_mutex_destroy(&j.in_mu);
	pthread_mutex_destroy(&j.out_mu);
	return j.bad ? ZT_EXIT_FAIL : ZT_EXIT_OK;
}

static int audit_append(int argc, char **argv)
{
	const char *dir = NULL, *actor = NULL, *action = NULL, *target = NULL, *decision = NULL,
		   *rid = NULL, *use_stdin = NULL, *jobs_s = NULL;
	const char **details = NULL, **secrets = NULL;
	size_t ndetails = 0, nsecrets = 0, npos;
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{"actor", 1, 0, &actor, NULL, NULL},
		{"action", 1, 0, &action, NULL, NULL},
		{"target", 1, 0, &target, NULL, NULL},
		{"decision", 1, 0, &decision, NULL, NULL},
		{"request-id", 1, 0, &rid, NULL, NULL},
		{"detail", 1, 1, NULL, &details, &ndetails},
		{"secret", 1, 1, NULL, &secrets, &nsecrets},
		{"stdin", 0, 0, &use_stdin, NULL, NULL},
		{"jobs", 1, 0, &jobs_s, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	json_t *ev = NULL, *d = NULL, *s = NULL;
	zt_audit *log = NULL;
	uint64_t jobs = 1, index;
	zt_buf entry;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_APPEND)) != 0)
		return r;
	if (!dir)
		return zt_cli_usage(U_APPEND, "--dir is required");
	if (jobs_s && (parse_u64(jobs_s, &jobs) != 0 || jobs < 1 || jobs > 64))
		return zt_cli_usage(U_APPEND, "--jobs is a number from 1 to 64");
	if (use_stdin && (actor || action || target || decision || rid || ndetails || nsecrets))
		return zt_cli_usage(U_APPEND, "--stdin reads whole events; give no event options");
	if (!use_stdin && (!actor || !action))
		return zt_cli_usage(U_APPEND, "--actor and --action are required (or --stdin)");
	if (!(log = zt_audit_open(dir, ZT_AUDIT_WRITE, &e)))
		return zt_cli_fail(&e, "audit append", ZT_EXIT_FAIL);
	if (use_stdin) {
		r = append_stdin(log, jobs);
		zt_audit_close(log);
		return r;
	}
	r = ZT_EXIT_FAIL;
	zt_buf_init(&entry, ZT_AUDIT_ENTRY_MAX + 1);
	ev = json_object();
	json_object_set_new(ev, "actor", json_string(actor));
	json_object_set_new(ev, "action", json_string(action));
	if (target)
		json_object_set_new(ev, "target", json_string(target));
	if (decision)
		json_object_set_new(ev, "decision", json_string(decision));
	if (rid)
		json_object_set_new(ev, "request_id", json_string(rid));
	if (ndetails) {
		d = json_object();
		for (size_t i = 0; i < ndetails; i++)
			if (add_kv(d, details[i], "detail") != 0)
				goto out;
		json_object_set(ev, "details", d);
	}
	if (nsecrets) {
		s = json_object();
		for (size_t i = 0; i < nsecrets; i++)
			if (add_kv(s, secrets[i], "secret") != 0)
				goto out;
		json_object_set(ev, "secrets", s);
	}
	if (zt_audit_entry_build(ev, zt_audit_hmac_key(log), zt_now_ms(), &entry, &e) != 0 ||
	    zt_audit_append(log, (const char *)entry.p, entry.len, &index, &e) != 0) {
		zt_cli_fail(&e, "audit append", ZT_EXIT_FAIL);
		goto out;
	}
	printf("%llu\n", (unsigned long long)index);
	r = ZT_EXIT_OK;
out:
	json_decref(d);
	json_decref(s);
	json_decref(ev);
	zt_buf_free(&entry, 0);
	zt_audit_close(log);
	free(details);
	free(secrets);
	return r;
}

/* ---- checkpoint, proofs ---------------------------------------------------- */

static int audit_checkpoint(int argc, char **argv)
{
	const char *dir = NULL;
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	zt_audit *log;
	zt_buf note;
	size_t npos;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_CHECKPOINT)) != 0)
		return r;
	if (!dir)
		return zt_cli_usage(U_CHECKPOINT, "--dir is required");
	if (!(log = zt_audit_open(dir, ZT_AUDIT_WRITE, &e)))
		return zt_cli_fail(&e, "audit checkpoint", ZT_EXIT_FAIL);
	zt_buf_init(&note, ZT_NOTE_MAX);
	r = zt_audit_checkpoint(log, &note, &e);
	zt_audit_close(log);
	if (r != 0) {
		zt_buf_free(&note, 0);
		return zt_cli_fail(&e, "audit checkpoint", ZT_EXIT_FAIL);
	}
	write_out(note.p, note.len);
	zt_buf_free(&note, 0);
	return ZT_EXIT_OK;
}

static int print_proof(const zt_audit_proof *p, const char *what)
{
	zt_buf b;
	zt_err e;

	zt_buf_init(&b, ZT_PROOF_FILE_MAX);
	if (zt_audit_proof_format(p, &b, &e) != 0) {
		zt_buf_free(&b, 0);
		return zt_cli_fail(&e, what, ZT_EXIT_FAIL);
	}
	write_out(b.p, b.len);
	zt_buf_free(&b, 0);
	return ZT_EXIT_OK;
}

static int audit_prove(int argc, char **argv)
{
	const char *dir = NULL, *index_s = NULL, *size_s = NULL;
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{"index", 1, 0, &index_s, NULL, NULL},
		{"size", 1, 0, &size_s, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	static zt_audit_proof p;
	zt_audit *log;
	zt_buf entry;
	uint8_t stored[ZT_HASH_LEN];
	size_t npos;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_PROVE)) != 0)
		return r;
	memset(&p, 0, sizeof p);
	if (!dir || parse_u64(index_s, &p.index) != 0)
		return zt_cli_usage(U_PROVE, "--dir and --index (a number) are required");
	if (size_s && parse_u64(size_s, &p.size) != 0)
		return zt_cli_usage(U_PROVE, "--size is a number");
	if (!(log = zt_audit_open(dir, ZT_AUDIT_READ, &e)))
		return zt_cli_fail(&e, "audit prove", ZT_EXIT_FAIL);
	if (!size_s)
		p.size = zt_audit_size(log);
	p.kind = ZT_PROOF_INCLUSION;
	p.leaf_len = p.root_len = ZT_HASH_LEN;
	zt_buf_init(&entry, ZT_AUDIT_ENTRY_MAX + 1);
	r = ZT_EXIT_FAIL;
	/* the leaf hash comes from the entry itself, and must be the stored one */
	if (p.index >= p.size) {
		zt_err_rule(&e, ZT_EINVAL, "proof-range",
			    "entry %llu is not in a tree of %llu entries",
			    (unsigned long long)p.index, (unsigned long long)p.size);
		goto fail;
	}
	if (zt_audit_read(log, p.index, &entry, &e) != 0 ||
	    zt_audit_leaf(log, p.index, stored, &e) != 0)
		goto fail;
	zt_merkle_leaf_hash(entry.p, entry.len, p.leaf);
	if (memcmp(stored, p.leaf, ZT_HASH_LEN) != 0) {
		zt_err_rule(&e, ZT_EVERIFY, "entry-altered",
			    "entry %llu does not hash to its stored leaf: run zt audit verify",
			    (unsigned long long)p.index);
		goto fail;
	}
	if (zt_audit_root(log, p.size, p.root, &e) != 0 ||
	    zt_audit_prove(log, p.index, p.size, p.proof, &p.n, &e) != 0)
		goto fail;
	r = print_proof(&p, "audit prove");
	goto out;
fail:
	zt_cli_fail(&e, "audit prove", r);
out:
	zt_buf_free(&entry, 0);
	zt_audit_close(log);
	return r;
}

static int audit_consistency(int argc, char **argv)
{
	const char *dir = NULL, *from_s = NULL, *to_s = NULL;
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{"from", 1, 0, &from_s, NULL, NULL},
		{"to", 1, 0, &to_s, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	static zt_audit_proof p;
	zt_audit *log;
	size_t npos;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_CONSISTENCY)) != 0)
		return r;
	memset(&p, 0, sizeof p);
	if (!dir || parse_u64(from_s, &p.size1) != 0)
		return zt_cli_usage(U_CONSISTENCY, "--dir and --from (a number) are required");
	if (to_s && parse_u64(to_s, &p.size2) != 0)
		return zt_cli_usage(U_CONSISTENCY, "--to is a number");
	if (!(log = zt_audit_open(dir, ZT_AUDIT_READ, &e)))
		return zt_cli_fail(&e, "audit consistency", ZT_EXIT_FAIL);
	if (!to_s)
		p.size2 = zt_audit_size(log);
	p.kind = ZT_PROOF_CONSISTENCY;
	p.root1_len = p.root_len = ZT_HASH_LEN;
	if (zt_audit_root(log, p.size1 <= p.size2 ? p.size1 : 0, p.root1, &e) != 0 ||
	    zt_audit_root(log, p.size2, p.root, &e) != 0 ||
	    zt_audit_prove_consistency(log, p.size1, p.size2, p.proof, &p.n, &e) != 0)
		r = zt_cli_fail(&e, "audit consistency", ZT_EXIT_FAIL);
	else
		r = print_proof(&p, "audit consistency");
	zt_audit_close(log);
	return r;
}

static int read_small(const char *path, size_t max, zt_buf *b, const char *what)
{
	zt_err e;

	zt_buf_init(b, max);
	if (zt_file_read(path, max, b, &e) != 0)
		return zt_cli_fail(&e, what, ZT_EXIT_FAIL);
	return 0;
}

static zt_note_key *read_key(const char *path, const char *what)
{
	zt_note_key *k;
	zt_buf b;
	zt_err e;

	if (read_small(path, 4096, &b, what) != 0)
		return NULL;
	k = zt_note_verifier_parse((const char *)b.p, b.len, &e);
	zt_buf_free(&b, 0);
	if (!k) {
		zt_err_wrap(&e, "%s", path);
		zt_cli_fail(&e, what, ZT_EXIT_FAIL);
	}
	return k;
}

static int audit_check_proof(int argc, char **argv)
{
	const char *cp_path = NULL, *key_path = NULL;
	const struct zt_opt opts[] = {
		{"checkpoint", 1, 0, &cp_path, NULL, NULL},
		{"key", 1, 0, &key_path, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	static zt_audit_proof p;
	char *pos[1];
	zt_note_key *k = NULL;
	zt_buf b, nb;
	size_t npos;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, pos, 1, &npos, U_CHECKPROOF)) != 0)
		return r;
	if (npos != 1)
		return zt_cli_usage(U_CHECKPROOF, "give the proof file");
	if (!cp_path != !key_path)
		return zt_cli_usage(U_CHECKPROOF, "--checkpoint and --key go together");
	if (read_small(pos[0], ZT_PROOF_FILE_MAX, &b, "audit check-proof") != 0)
		return ZT_EXIT_FAIL;
	r = zt_audit_proof_parse((const char *)b.p, b.len, &p, &e) == 0 &&
		    zt_audit_proof_check(&p, &e) == 0
		? ZT_EXIT_OK
		: zt_cli_fail(&e, "audit check-proof", ZT_EXIT_FAIL);
	zt_buf_free(&b, 0);
	if (r != ZT_EXIT_OK || !cp_path)
		goto done;
	zt_checkpoint c;

	if (!(k = read_key(key_path, "audit check-proof")) ||
	    read_small(cp_path, ZT_NOTE_MAX, &nb, "audit check-proof") != 0)
		return ZT_EXIT_FAIL;
	if (zt_checkpoint_open(k, (const char *)nb.p, nb.len, &c, &e) != 0) {
		zt_err_wrap(&e, "%s", cp_path);
		r = zt_cli_fail(&e, "audit check-proof", ZT_EXIT_FAIL);
	} else if (c.size != (p.kind == ZT_PROOF_INCLUSION ? p.size : p.size2) ||
		   p.root_len != ZT_HASH_LEN || memcmp(c.root, p.root, ZT_HASH_LEN) != 0) {
		fprintf(stderr,
			"zt: audit check-proof: [checkpoint-root] the proof is for a tree of %llu "
			"entries whose root is not the one the checkpoint signs (%llu entries)\n",
			(unsigned long long)(p.kind == ZT_PROOF_INCLUSION ? p.size : p.size2),
			(unsigned long long)c.size);
		r = ZT_EXIT_FAIL;
	}
	zt_buf_free(&nb, 0);
done:
	if (r == ZT_EXIT_OK) {
		if (p.kind == ZT_PROOF_INCLUSION)
			printf("ok: entry %llu is in the log of %llu entries%s\n",
			       (unsigned long long)p.index, (unsigned long long)p.size,
			       cp_path ? " that the checkpoint signs" : "");
		else
			printf("ok: the log of %llu entries is a prefix of the log of %llu%s\n",
			       (unsigned long long)p.size1, (unsigned long long)p.size2,
			       cp_path ? " that the checkpoint signs" : "");
	}
	zt_note_key_free(k);
	return r;
}

/* ---- verify ------------------------------------------------------------------ */

static void show_progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	fprintf(stderr, "\rverifying: %llu of %llu entries (%llu%%)", (unsigned long long)done,
		(unsigned long long)total,
		(unsigned long long)(total ? done * 100 / total : 100));
	if (done == total)
		fputc('\n', stderr);
}

static int audit_verify(int argc, char **argv)
{
	const char *dir = NULL, *key_path = NULL;
	const char **cps = NULL;
	size_t ncps = 0, npos;
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{"key", 1, 0, &key_path, NULL, NULL},
		{"checkpoint", 1, 1, NULL, &cps, &ncps},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	zt_note_key *k = NULL;
	zt_buf *notes = NULL;
	const char **texts = NULL;
	size_t *lens = NULL;
	zt_audit_report rep;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_VERIFY)) != 0)
		return r;
	if (!dir)
		return zt_cli_usage(U_VERIFY, "--dir is required");
	r = ZT_EXIT_FAIL;
	if (key_path && !(k = read_key(key_path, "audit verify")))
		goto out;
	if (!key_path)
		fprintf(stderr, "zt: audit verify: checking signatures with %s/log.pub, which "
				"anyone who can write the directory can replace; pass --key with "
				"the key you trust\n",
			dir);
	notes = calloc(ncps + 1, sizeof *notes);
	texts = calloc(ncps + 1, sizeof *texts);
	lens = calloc(ncps + 1, sizeof *lens);
	if (!notes || !texts || !lens)
		goto out;
	for (size_t i = 0; i < ncps; i++) {
		if (read_small(cps[i], ZT_NOTE_MAX, &notes[i], "audit verify") != 0)
			goto out;
		texts[i] = (const char *)notes[i].p;
		lens[i] = notes[i].len;
	}
	if (zt_audit_verify(dir, k, texts, lens, ncps, isatty(2) ? show_progress : NULL, NULL,
			    &rep, &e) != 0) {
		if (isatty(2))
			fputc('\n', stderr);
		zt_cli_fail(&e, "audit verify", ZT_EXIT_FAIL);
		goto out;
	}
	printf("ok: %llu entries and their tree, %llu stored checkpoints (signatures and roots), "
	       "%llu given checkpoints consistent with the log\n",
	       (unsigned long long)rep.entries, (unsigned long long)rep.checkpoints,
	       (unsigned long long)rep.given);
	r = ZT_EXIT_OK;
out:
	for (size_t i = 0; notes && i < ncps; i++)
		zt_buf_free(&notes[i], 0);
	free(notes);
	free(texts);
	free(lens);
	free(cps);
	zt_note_key_free(k);
	return r;
}

/* ---- tail and search ------------------------------------------------------ */

struct filter {
	const char *actor, *action, *target, *decision;
	char since[32], until[32];
	char secret_key[256];
	char secret_mac[64];
	int has_secret;
};

static int str_is(json_t *o, const char *k, const char *want)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v && strcmp(v, want) == 0;
}

static int matches(const struct filter *f, const char *text, size_t len)
{
	json_t *o = json_loadb(text, len, 0, NULL);
	int ok = o != NULL;

	if (ok && f->actor)
		ok = str_is(o, "actor", f->actor);
	if (ok && f->action)
		ok = str_is(o, "action", f->action);
	if (ok && f->target)
		ok = str_is(o, "target", f->target);
	if (ok && f->decision)
		ok = str_is(o, "decision", f->decision);
	if (ok && (f->since[0] || f->until[0])) {
		/* stored times are canonical, so they compare as strings */
		const char *t = json_string_value(json_object_get(o, "time"));

		ok = t && (!f->since[0] || strcmp(t, f->since) >= 0) &&
		     (!f->until[0] || strcmp(t, f->until) < 0);
	}
	if (ok && f->has_secret)
		ok = str_is(json_object_get(o, "details"), f->secret_key, f->secret_mac);
	json_decref(o);
	return ok;
}

static int print_range(zt_audit *log, uint64_t from, const struct filter *f, const char *what)
{
	uint64_t size = zt_audit_size(log);
	zt_buf b;
	zt_err e;

	zt_buf_init(&b, ZT_AUDIT_ENTRY_MAX + 1);
	for (uint64_t i = from; i < size; i++) {
		b.len = 0;
		if (zt_audit_read(log, i, &b, &e) != 0) {
			zt_buf_free(&b, 0);
			return zt_cli_fail(&e, what, ZT_EXIT_FAIL);
		}
		if (f && !matches(f, (const char *)b.p, b.len))
			continue;
		printf("%llu\t%.*s\n", (unsigned long long)i, (int)b.len, (const char *)b.p);
	}
	zt_buf_free(&b, 0);
	return ZT_EXIT_OK;
}

static int audit_tail(int argc, char **argv)
{
	const char *dir = NULL, *lines_s = NULL;
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{"lines", 1, 0, &lines_s, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	uint64_t lines = 10;
	zt_audit *log;
	size_t npos;
	zt_err e;
	int r;

	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "-n") == 0)
			argv[i] = (char *)(uintptr_t) "--lines";
	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_TAIL)) != 0)
		return r;
	if (!dir)
		return zt_cli_usage(U_TAIL, "--dir is required");
	if (lines_s && parse_u64(lines_s, &lines) != 0)
		return zt_cli_usage(U_TAIL, "--lines is a number");
	if (!(log = zt_audit_open(dir, ZT_AUDIT_READ, &e)))
		return zt_cli_fail(&e, "audit tail", ZT_EXIT_FAIL);
	uint64_t size = zt_audit_size(log);

	r = print_range(log, size > lines ? size - lines : 0, NULL, "audit tail");
	zt_audit_close(log);
	return r;
}

static int time_arg(const char *s, char out[32])
{
	int64_t t;

	if (!s)
		return 0;
	if (zt_cli_parse_time(s, &t) != 0)
		return -1;
	zt_audit_time_format(t * 1000, out);
	return 0;
}

static int audit_search(int argc, char **argv)
{
	const char *dir = NULL, *since = NULL, *until = NULL, *secret = NULL;
	struct filter f;
	memset(&f, 0, sizeof f);
	const struct zt_opt opts[] = {
		{"dir", 1, 0, &dir, NULL, NULL},
		{"actor", 1, 0, &f.actor, NULL, NULL},
		{"action", 1, 0, &f.action, NULL, NULL},
		{"target", 1, 0, &f.target, NULL, NULL},
		{"decision", 1, 0, &f.decision, NULL, NULL},
		{"since", 1, 0, &since, NULL, NULL},
		{"until", 1, 0, &until, NULL, NULL},
		{"secret", 1, 0, &secret, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	zt_audit *log;
	size_t npos;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_SEARCH)) != 0)
		return r;
	if (!dir)
		return zt_cli_usage(U_SEARCH, "--dir is required");
	if (time_arg(since, f.since) != 0 || time_arg(until, f.until) != 0)
		return zt_cli_usage(U_SEARCH, "--since and --until take 2026-01-02T03:04:05Z");
	const char *eq = secret ? strchr(secret, '=') : NULL;

	if (secret && (!eq || eq == secret || (size_t)(eq - secret) >= sizeof f.secret_key))
		return zt_cli_usage(U_SEARCH, "--secret takes KEY=VALUE");
	if (!(log = zt_audit_open(dir, ZT_AUDIT_READ, &e)))
		return zt_cli_fail(&e, "audit search", ZT_EXIT_FAIL);
	if (secret) {
		if (!zt_audit_hmac_key(log)) {
			zt_audit_close(log);
			fprintf(stderr, "zt: audit search: [kek] --secret needs the log's hmac.key, "
					"which cannot be read: it is missing, or sealed and "
					"ZT_KEK_FILE (or ZT_KEK) is not set\n");
			return ZT_EXIT_FAIL;
		}
		memcpy(f.secret_key, secret, (size_t)(eq - secret));
		zt_audit_secret_hash(zt_audit_hmac_key(log), eq + 1, strlen(eq + 1), f.secret_mac);
		f.has_secret = 1;
	}
	r = print_range(log, 0, &f, "audit search");
	zt_audit_close(log);
	return r;
}

/* ---- dispatch ------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *usage;
} subs[] = {
	{"init", audit_init, U_INIT},
	{"append", audit_append, U_APPEND},
	{"checkpoint", audit_checkpoint, U_CHECKPOINT},
	{"prove", audit_prove, U_PROVE},
	{"consistency", audit_consistency, U_CONSISTENCY},
	{"check-proof", audit_check_proof, U_CHECKPROOF},
	{"verify", audit_verify, U_VERIFY},
	{"tail", audit_tail, U_TAIL},
	{"search", audit_search, U_SEARCH},
};

int zt_cmd_audit(int argc, char **argv)
{
	size_t n = sizeof subs / sizeof subs[0];

	/* the server's log (cmd_audit_remote.c) */
	if (argc >= 1 && (!strcmp(argv[0], "entries") || !strcmp(argv[0], "witness")))
		return zt_audit_remote(argv[0], argc - 1, argv + 1);

	if (argc >= 1)
		for (size_t i = 0; i < n; i++)
			if (strcmp(argv[0], subs[i].name) == 0) {
				if (argc > 1 && strcmp(argv[1], "--help") == 0) {
					printf("usage: %s\n", subs[i].usage);
					return ZT_EXIT_OK;
				}
				return subs[i].fn(argc - 1, argv + 1);
			}
	FILE *f = argc >= 1 && strcmp(argv[0], "--help") == 0 ? stdout : stderr;

	fprintf(f, "usage:\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %s\n", subs[i].usage);
	fprintf(f, "  zt audit entries|witness ...   (the server's log: see --help of each)\n");
	fprintf(f, "\nThe audit log and its files are described in docs/audit.md.\n");
	return f == stdout ? ZT_EXIT_OK : ZT_EXIT_USAGE;
}
