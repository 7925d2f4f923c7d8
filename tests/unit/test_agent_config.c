/* Unit tests: the agent's configuration file (agent/config.c, docs/agent.md). */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_int.h"

/* ---- helpers ----------------------------------------------------------- */

static void write_str(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t len = strlen(text);

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* Parses YAML text and loads it; 0 or the error (in *e). */
static int load_text(struct ag_config *c, const char *text, zt_err *e)
{
	json_t *docs;
	int r;

	zt_err_clear(e);
	docs = zt_yaml_parse(text, strlen(text), 4, e);
	if (!docs)
		fail_msg("the test's YAML does not parse: %s\n%s", e->msg, text);
	r = ag_config_from_docs(c, docs, e);
	json_decref(docs);
	return r;
}

static void expect_ok(const char *text, struct ag_config *c)
{
	zt_err e;

	if (load_text(c, text, &e) != 0)
		fail_msg("refused a good config: %s\n%s", e.msg, text);
}

/* The config is refused with a message holding needle. */
#define expect_err(text, needle) expect_err_at(__LINE__, text, needle)
static void expect_err_at(int line, const char *text, const char *needle)
{
	struct ag_config c;
	zt_err e;

	if (load_text(&c, text, &e) == 0)
		fail_msg("line %d: accepted a bad config (wanted \"%s\"):\n%s", line, needle, text);
	if (!e.msg[0])
		fail_msg("line %d: refused without a message", line);
	if (!strstr(e.msg, needle))
		fail_msg("line %d: refused with \"%s\", wanted \"%s\"", line, e.msg, needle);
}

#define HEAD "apiVersion: zt.dev/v1\nkind: AgentConfig\n"
#define SPEC_BASE                                                                    \
	"  server: https://zt-server:8443\n"                                         \
	"  trustBundle: /etc/zt/bundle.pem\n"                                        \
	"  dataDir: /var/lib/zt/agent\n"                                             \
	"  socket: /run/zt/agent.sock\n"
/* a full document around extra spec lines */
#define DOC(extra) HEAD "spec:\n" SPEC_BASE extra

static char *repeat(char ch, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

/* ---- valid configurations ---------------------------------------------- */

static void test_config_all_fields(void **state)
{
	struct ag_config c;

	(void)state;
	expect_ok(HEAD "metadata: {name: node-1}\nspec:\n" SPEC_BASE
		  "  joinToken: ztj_0123456789abcdef\n"
		  "  admin: {listen: \"127.0.0.1:15100\"}\n", &c);
	assert_string_equal(c.server, "https://zt-server:8443");
	assert_string_equal(c.trust_bundle, "/etc/zt/bundle.pem");
	assert_string_equal(c.join_token, "ztj_0123456789abcdef");
	assert_string_equal(c.data_dir, "/var/lib/zt/agent");
	assert_string_equal(c.socket, "/run/zt/agent.sock");
	assert_string_equal(c.admin, "127.0.0.1:15100");

	/* the optional ones left out */
	memset(&c, 'x', sizeof c);
	expect_ok(DOC(""), &c);
	assert_string_equal(c.server, "https://zt-server:8443");
	assert_string_equal(c.join_token, "");
	assert_string_equal(c.admin, "");

	/* an IPv6 server, a port-less server, a trailing slash */
	expect_ok(HEAD "spec:\n  server: https://[::1]:8443\n  trustBundle: /b\n  dataDir: /d\n  socket: /s\n", &c);
	assert_string_equal(c.server, "https://[::1]:8443");
	expect_ok(HEAD "spec:\n  server: https://zt-server\n  trustBundle: /b\n  dataDir: /d\n  socket: /s\n", &c);
	expect_ok(HEAD "spec:\n  server: https://zt-server:8443/\n  trustBundle: /b\n  dataDir: /d\n  socket: /s\n", &c);

	/* JSON is YAML too */
	expect_ok("{\"apiVersion\": \"zt.dev/v1\", \"kind\": \"AgentConfig\", \"spec\": "
		  "{\"server\": \"https://h:1\", \"trustBundle\": \"/b\", \"dataDir\": \"/d\", "
		  "\"socket\": \"/s\"}}", &c);
	assert_string_equal(c.server, "https://h:1");
	assert_string_equal(c.socket, "/s");
}

static void test_config_join_token_file(void **state)
{
	char *dir = tu_mkdtemp();
	char tok[PATH_MAX], text[8192];
	struct ag_config c;

	(void)state;
	snprintf(tok, sizeof tok, "%s/join-token", dir);
	snprintf(text, sizeof text, DOC("  joinTokenFile: %s\n"), tok);

	/* read, and trimmed of trailing newlines, carriage returns and spaces */
	write_str(tok, "ztj_abcdef0123456789\n");
	expect_ok(text, &c);
	assert_string_equal(c.join_token, "ztj_abcdef0123456789");
	write_str(tok, "ztj_abcdef0123456789  \r\n \n\n");
	expect_ok(text, &c);
	assert_string_equal(c.join_token, "ztj_abcdef0123456789");
	write_str(tok, "ztj_abcdef0123456789");
	expect_ok(text, &c);
	assert_string_equal(c.join_token, "ztj_abcdef0123456789");

	/* the longest token that fits: 127 bytes */
	char *body = repeat('a', 123), *line;

	assert_int_equal(asprintf(&line, "ztj_%s\n", body), 128);
	write_str(tok, line);
	expect_ok(text, &c);
	assert_int_equal(strlen(c.join_token), 127);
	free(line);
	free(body);

	/* one byte more: refused */
	body = repeat('a', 124);
	assert_int_equal(asprintf(&line, "ztj_%s\n", body), 129);
	write_str(tok, line);
	expect_err(text, "spec.joinTokenFile does not hold a join token");
	free(line);
	free(body);

	/* not a zt join token */
	write_str(tok, "hunter2\n");
	expect_err(text, "ztj_");
	write_str(tok, "\nztj_abc\n"); /* leading whitespace is not trimmed */
	expect_err(text, "ztj_");
	write_str(tok, "ZTJ_abc\n");
	expect_err(text, "ztj_");

	/* a file that is too large to be a token file */
	body = repeat('z', 5000);
	write_str(tok, body);
	free(body);
	expect_err(text, "spec.joinTokenFile");

	/* missing */
	assert_int_equal(unlink(tok), 0);
	expect_err(text, "spec.joinTokenFile");
	/* a folder */
	snprintf(text, sizeof text, DOC("  joinTokenFile: %s\n"), dir);
	expect_err(text, "spec.joinTokenFile");

	/* and both at once */
	write_str(tok, "ztj_abc\n");
	snprintf(text, sizeof text, DOC("  joinToken: ztj_abc\n  joinTokenFile: %s\n"), tok);
	expect_err(text, "not both");
	tu_rmtree(dir);
}

static void test_config_inline_token(void **state)
{
	struct ag_config c;
	char text[4096];
	char *body;

	(void)state;
	expect_ok(DOC("  joinToken: ztj_x\n"), &c);
	assert_string_equal(c.join_token, "ztj_x");
	expect_err(DOC("  joinToken: abc\n"), "ztj_");
	expect_err(DOC("  joinToken: \"\"\n"), "spec.joinToken must be a non-empty string");
	expect_err(DOC("  joinToken: 12345\n"), "spec.joinToken must be a non-empty string");
	expect_err(DOC("  joinTokenFile: \"\"\n"), "spec.joinTokenFile must be a non-empty string");
	/* 127 bytes fit, 128 do not */
	body = repeat('b', 123);
	snprintf(text, sizeof text, DOC("  joinToken: ztj_%s\n"), body);
	free(body);
	expect_ok(text, &c);
	assert_int_equal(strlen(c.join_token), 127);
	body = repeat('b', 124);
	snprintf(text, sizeof text, DOC("  joinToken: ztj_%s\n"), body);
	free(body);
	expect_err(text, "spec.joinToken is longer than 127 bytes");
}

/* ---- refusals ------------------------------------------------------------ */

static void test_config_required_fields(void **state)
{
	(void)state;
	expect_err(HEAD "spec:\n  trustBundle: /b\n  dataDir: /d\n  socket: /s\n", "spec.server is required");
	expect_err(HEAD "spec:\n  server: https://h:1\n  dataDir: /d\n  socket: /s\n",
		   "spec.trustBundle is required");
	expect_err(HEAD "spec:\n  server: https://h:1\n  trustBundle: /b\n  socket: /s\n",
		   "spec.dataDir is required");
	expect_err(HEAD "spec:\n  server: https://h:1\n  trustBundle: /b\n  dataDir: /d\n",
		   "spec.socket is required");
	expect_err(HEAD "metadata: {name: x}\n", "spec must be a mapping");
	expect_err(HEAD "spec: [1, 2]\n", "spec must be a mapping");
	expect_err(HEAD "spec: null\n", "spec must be a mapping");
	expect_err(DOC("  admin: {}\n"), "spec.admin.listen is required");
	expect_err(DOC("  admin: {listen: \"\"}\n"), "spec.admin.listen must be a non-empty string");
	expect_err(DOC("  admin: \"127.0.0.1:15100\"\n"), "spec.admin must be a mapping");
	expect_err(DOC("  admin: null\n"), "spec.admin must be a mapping");
	/* empty and non-string values */
	expect_err(HEAD "spec:\n  server: \"\"\n  trustBundle: /b\n  dataDir: /d\n  socket: /s\n",
		   "spec.server must be a non-empty string");
	expect_err(HEAD "spec:\n  server: 8443\n  trustBundle: /b\n  dataDir: /d\n  socket: /s\n",
		   "spec.server must be a non-empty string");
	expect_err(HEAD "spec:\n  server: https://h:1\n  trustBundle: [/b]\n  dataDir: /d\n  socket: /s\n",
		   "spec.trustBundle must be a non-empty string");
	expect_err(HEAD "spec:\n  server: https://h:1\n  trustBundle: /b\n  dataDir: true\n  socket: /s\n",
		   "spec.dataDir must be a non-empty string");
	expect_err(HEAD "spec:\n  server: https://h:1\n  trustBundle: /b\n  dataDir: /d\n  socket: {a: b}\n",
		   "spec.socket must be a non-empty string");
}

static void test_config_unknown_fields(void **state)
{
	(void)state;
	expect_err(DOC("") "extra: 1\n", "unknown field \"extra\" in the document");
	expect_err(DOC("") "Spec: {}\n", "unknown field \"Spec\" in the document");
	expect_err(DOC("  bogus: 1\n"), "unknown field \"bogus\" in spec");
	expect_err(DOC("  joinTokenPath: /x\n"), "unknown field \"joinTokenPath\" in spec");
	expect_err(DOC("  Server: https://h:1\n"), "unknown field \"Server\" in spec");
	expect_err(DOC("  admin: {listen: \"127.0.0.1:1\", port: 2}\n"), "unknown field \"port\" in spec.admin");
	/* and the message points at the documentation */
	expect_err(DOC("  bogus: 1\n"), "docs/agent.md");
}

static void test_config_kind_and_documents(void **state)
{
	(void)state;
	expect_err("apiVersion: zt.dev/v1\nkind: ProxyConfig\nspec:\n" SPEC_BASE, "kind AgentConfig");
	expect_err("apiVersion: zt.dev/v1\nkind: agentconfig\nspec:\n" SPEC_BASE, "kind AgentConfig");
	expect_err("apiVersion: zt.dev/v1\nspec:\n" SPEC_BASE, "kind AgentConfig");
	expect_err("apiVersion: zt.dev/v1\nkind: [AgentConfig]\nspec:\n" SPEC_BASE, "kind AgentConfig");
	expect_err("apiVersion: zt.dev/v1\nkind: 1\nspec:\n" SPEC_BASE, "kind AgentConfig");
	/* two documents, even both good */
	expect_err("---\n" DOC("") "---\n" DOC(""), "one document");
	/* no document, and documents that are not mappings */
	expect_err("", "one document");
	expect_err("[AgentConfig]\n", "one document");
	expect_err("AgentConfig\n", "one document");
}

static void test_config_server(void **state)
{
	char text[4096], *host;

	(void)state;
#define SERVER(u) HEAD "spec:\n  server: \"" u "\"\n  trustBundle: /b\n  dataDir: /d\n  socket: /s\n"
	expect_err(SERVER("http://zt-server:8443"), "spec.server must be the server's https://HOST:PORT");
	expect_err(SERVER("HTTPS://zt-server:8443"), "https://HOST:PORT");
	expect_err(SERVER("zt-server:8443"), "https://HOST:PORT");
	expect_err(SERVER("unix:/run/zt/server.sock"), "https://HOST:PORT");
	expect_err(SERVER("ftp://zt-server:8443"), "https://HOST:PORT");
	expect_err(SERVER("https://zt-server:8443/v1"), "https://HOST:PORT");
	expect_err(SERVER("https://zt-server:8443/v1/"), "https://HOST:PORT");
	expect_err(SERVER("https://zt-server:8443?x=1"), "https://HOST:PORT");
	expect_err(SERVER("https://zt-server:8443#f"), "https://HOST:PORT");
	expect_err(SERVER("https://"), "https://HOST:PORT");
	expect_err(SERVER("https://:8443"), "https://HOST:PORT");
	expect_err(SERVER("https://zt-server:0"), "https://HOST:PORT");
	expect_err(SERVER("https://zt-server:65536"), "https://HOST:PORT");
	expect_err(SERVER("https://zt-server:84a3"), "https://HOST:PORT");
	expect_err(SERVER("https://user@zt-server:8443"), "https://HOST:PORT");
	expect_err(SERVER("https://zt server:8443"), "https://HOST:PORT");
#undef SERVER
	/* over-long: more than 511 bytes */
	host = repeat('h', 512 - strlen("https://"));
	snprintf(text, sizeof text,
		 HEAD "spec:\n  server: https://%s\n  trustBundle: /b\n  dataDir: /d\n  socket: /s\n", host);
	free(host);
	expect_err(text, "spec.server is longer than 511 bytes");
	host = repeat('h', 2000);
	snprintf(text, sizeof text,
		 HEAD "spec:\n  server: https://%s:8443\n  trustBundle: /b\n  dataDir: /d\n  socket: /s\n", host);
	free(host);
	expect_err(text, "spec.server is longer than 511 bytes");
}

static void test_config_socket_and_lengths(void **state)
{
	struct ag_config c;
	char text[16384], *s;

	(void)state;
	expect_err(HEAD "spec:\n  server: https://h:1\n  trustBundle: /b\n  dataDir: /d\n  socket: run/zt.sock\n",
		   "spec.socket must be an absolute path");
	expect_err(HEAD "spec:\n  server: https://h:1\n  trustBundle: /b\n  dataDir: /d\n  socket: ./zt.sock\n",
		   "spec.socket must be an absolute path");
	expect_err(HEAD "spec:\n  server: https://h:1\n  trustBundle: /b\n  dataDir: /d\n  socket: unix:/zt.sock\n",
		   "spec.socket must be an absolute path");
	/* the socket: 107 bytes fit (sun_path), 108 do not */
	s = repeat('s', 106);
	snprintf(text, sizeof text,
		 HEAD "spec:\n  server: https://h:1\n  trustBundle: /b\n  dataDir: /d\n  socket: /%s\n", s);
	free(s);
	expect_ok(text, &c);
	assert_int_equal(strlen(c.socket), 107);
	s = repeat('s', 107);
	snprintf(text, sizeof text,
		 HEAD "spec:\n  server: https://h:1\n  trustBundle: /b\n  dataDir: /d\n  socket: /%s\n", s);
	free(s);
	expect_err(text, "spec.socket is longer than 107 bytes");
	/* trustBundle and dataDir: PATH_MAX - 1 fit, PATH_MAX do not */
	s = repeat('t', PATH_MAX - 2);
	snprintf(text, sizeof text,
		 HEAD "spec:\n  server: https://h:1\n  trustBundle: /%s\n  dataDir: /%s\n  socket: /s\n", s, s);
	free(s);
	expect_ok(text, &c);
	assert_int_equal(strlen(c.trust_bundle), PATH_MAX - 1);
	assert_int_equal(strlen(c.data_dir), PATH_MAX - 1);
	s = repeat('t', PATH_MAX - 1);
	snprintf(text, sizeof text,
		 HEAD "spec:\n  server: https://h:1\n  trustBundle: /%s\n  dataDir: /d\n  socket: /s\n", s);
	expect_err(text, "spec.trustBundle is longer than");
	snprintf(text, sizeof text,
		 HEAD "spec:\n  server: https://h:1\n  trustBundle: /b\n  dataDir: /%s\n  socket: /s\n", s);
	expect_err(text, "spec.dataDir is longer than");
	free(s);
	/* admin.listen: 127 fit, 128 do not */
	s = repeat('1', 127 - strlen("h:"));
	snprintf(text, sizeof text, DOC("  admin: {listen: \"h:%s\"}\n"), s);
	free(s);
	expect_ok(text, &c);
	assert_int_equal(strlen(c.admin), 127);
	s = repeat('1', 128 - strlen("h:"));
	snprintf(text, sizeof text, DOC("  admin: {listen: \"h:%s\"}\n"), s);
	free(s);
	expect_err(text, "spec.admin.listen is longer than 127 bytes");
}

/* ---- ag_config_load: from a file ------------------------------------------ */

static void test_config_load_file(void **state)
{
	char *dir = tu_mkdtemp();
	char path[PATH_MAX], tok[PATH_MAX], text[8192];
	struct ag_config c;
	zt_err e;

	(void)state;
	snprintf(tok, sizeof tok, "%s/tok", dir);
	write_str(tok, "ztj_fromfile\n");
	snprintf(path, sizeof path, "%s/agent.yaml", dir);
	snprintf(text, sizeof text, DOC("  joinTokenFile: %s\n  admin: {listen: \"127.0.0.1:0\"}\n"), tok);
	write_str(path, text);
	zt_err_clear(&e);
	if (ag_config_load(&c, path, &e) != 0)
		fail_msg("ag_config_load: %s", e.msg);
	assert_string_equal(c.join_token, "ztj_fromfile");
	assert_string_equal(c.admin, "127.0.0.1:0");
	assert_string_equal(c.socket, "/run/zt/agent.sock");

	/* a JSON file */
	snprintf(path, sizeof path, "%s/agent.json", dir);
	write_str(path, "{\"kind\": \"AgentConfig\", \"spec\": {\"server\": \"https://h:1\", "
			"\"trustBundle\": \"/b\", \"dataDir\": \"/d\", \"socket\": \"/s\"}}");
	assert_int_equal(ag_config_load(&c, path, &e), 0);
	assert_string_equal(c.server, "https://h:1");

	/* an error names the file */
	snprintf(path, sizeof path, "%s/bad.yaml", dir);
	write_str(path, DOC("  bogus: 1\n"));
	zt_err_clear(&e);
	assert_int_not_equal(ag_config_load(&c, path, &e), 0);
	assert_non_null(strstr(e.msg, path));
	assert_non_null(strstr(e.msg, "bogus"));

	/* not YAML, and missing */
	write_str(path, "spec: [unclosed\n");
	zt_err_clear(&e);
	assert_int_not_equal(ag_config_load(&c, path, &e), 0);
	assert_true(e.msg[0] != '\0');
	snprintf(path, sizeof path, "%s/none.yaml", dir);
	zt_err_clear(&e);
	assert_int_not_equal(ag_config_load(&c, path, &e), 0);
	assert_true(e.msg[0] != '\0');
	/* YAML anchors are refused by the loader */
	snprintf(path, sizeof path, "%s/anchors.yaml", dir);
	write_str(path, HEAD "spec: &s\n  server: https://h:1\n  trustBundle: /b\n  dataDir: /d\n"
			"  socket: /s\n  admin: *s\n");
	assert_int_not_equal(ag_config_load(&c, path, &e), 0);
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_all_fields),
		cmocka_unit_test(test_config_join_token_file),
		cmocka_unit_test(test_config_inline_token),
		cmocka_unit_test(test_config_required_fields),
		cmocka_unit_test(test_config_unknown_fields),
		cmocka_unit_test(test_config_kind_and_documents),
		cmocka_unit_test(test_config_server),
		cmocka_unit_test(test_config_socket_and_lengths),
		cmocka_unit_test(test_config_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
