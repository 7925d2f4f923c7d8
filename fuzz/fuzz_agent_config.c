/*
 * Fuzz target: the agent's configuration loader (YAML to ag_config,
 * agent/config.c), the way ag_config_load reads it: zt_yaml_parse, then
 * ag_config_from_docs.
 *
 * spec.joinTokenFile names a file the loader reads. So that inputs never
 * read the machine's files (a FIFO or /dev/stdin would hang the run), a
 * string joinTokenFile is pointed, before loading, at one of a few token
 * files made in a private folder at start-up (a good token, one with
 * trailing blanks, one that is not a zt token, an empty one, an over-long
 * one, a missing one), chosen by the value's length.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "net/httpc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NTOK 6
static char tok_path[NTOK][PATH_MAX];
static char tok_dir[PATH_MAX];

static void cleanup(void)
{
	for (int i = 0; i < NTOK; i++)
		unlink(tok_path[i]);
	rmdir(tok_dir);
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const content[NTOK - 1] = {
		"ztj_0123456789abcdef\n",
		"ztj_0123456789abcdef \r\n \n",
		"not-a-token\n",
		"",
		"ztj_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	};
	const char *base = getenv("TMPDIR");
	char *dir;

	(void)argc;
	(void)argv;
	if (asprintf(&dir, "%s/zt-fuzz-agent-XXXXXX", base ? base : "/tmp") < 0 || !mkdtemp(dir))
		abort();
	for (int i = 0; i < NTOK; i++) {
		snprintf(tok_path[i], sizeof tok_path[i], "%s/tok%d", dir, i);
		if (i < NTOK - 1)
			put(tok_path[i], content[i]); /* the last one is never made: missing */
	}
	snprintf(tok_dir, sizeof tok_dir, "%s", dir);
	free(dir);
	atexit(cleanup);
	return 0;
}

/* What loads is consistent: every string bounded, the rules of docs/agent.md kept. */
static void check(const struct ag_config *c)
{
	if (strnlen(c->server, sizeof c->server) == sizeof c->server ||
	    strnlen(c->trust_bundle, sizeof c->trust_bundle) == sizeof c->trust_bundle ||
	    strnlen(c->join_token, sizeof c->join_token) == sizeof c->join_token ||
	    strnlen(c->data_dir, sizeof c->data_dir) == sizeof c->data_dir ||
	    strnlen(c->socket, sizeof c->socket) == sizeof c->socket ||
	    strnlen(c->admin, sizeof c->admin) == sizeof c->admin)
		abort(); /* not NUL-terminated */
	if (strncmp(c->server, "https://", 8) || zt_httpc_url_check(c->server, NULL) != 0)
		abort();
	if (!c->trust_bundle[0] || !c->data_dir[0] || c->socket[0] != '/')
		abort();
	if (c->join_token[0] && strncmp(c->join_token, "ztj_", 4))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ag_config c;
	json_t *docs, *spec, *tf;
	zt_err e;

	zt_err_clear(&e);
	docs = zt_yaml_parse((const char *)data, size, 4, &e);
	if (!docs) {
		if (!e.msg[0])
			abort();
		return 0;
	}
	spec = json_object_get(json_array_get(docs, 0), "spec");
	tf = json_object_get(spec, "joinTokenFile");
	if (json_is_string(tf) && json_string_length(tf) > 0)
		json_object_set_new(spec, "joinTokenFile",
				    json_string(tok_path[json_string_length(tf) % NTOK]));
	zt_err_clear(&e);
	if (ag_config_from_docs(&c, docs, &e) == 0)
		check(&c);
	else if (!e.msg[0])
		abort(); /* a refusal always says why */
	json_decref(docs);
	return 0;
}
