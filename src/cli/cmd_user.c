/*
 * cli/cmd_user.c: people on the server — zt user, zt group, zt login,
 * zt logout (docs/api.md "Users, groups and login").
 *
 * Passwords and codes are read from the terminal without echo (or from
 * stdin with --password-stdin, for scripts), sent once, and wiped.
 */
#include "cli.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define U_USER                                                                                     \
	"zt user create NAME [--group G]... [--password-stdin] [--disabled]\n"                     \
	"       zt user list | get NAME | delete NAME\n"                                           \
	"       zt user update NAME [--group G]... [--no-groups] [--disable | --enable]\n"          \
	"       zt user passwd NAME [--password-stdin]  (your own: the current one is asked, or read next)\n" \
	"       zt user totp enrol|remove NAME | totp confirm NAME CODE\n"                          \
	"       (" ZT_REMOTE_USAGE ")"
#define U_GROUP "zt group create NAME [--description TEXT] | list | get NAME | delete NAME (" ZT_REMOTE_USAGE ")"
#define U_LOGIN "zt login [--user NAME] [--ttl 15m] [--password-stdin] [--server URL] [--ca-file BUNDLE]"
#define U_LOGOUT "zt logout [--server URL] [--ca-file BUNDLE]"

#define SECRET_MAX 1100

/* A line from fd into buf (without its newline); 0, or -1 at EOF or on error. */
static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	char c;

	for (;;) {
		ssize_t k = read(fd, &c, 1);

		if (k <= 0)
			return n > 0 ? (buf[n] = '\0', 0) : -1;
		if (c == '\n')
			break;
		if (n + 1 >= cap)
			return -1;
		buf[n++] = c;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return 0;
}

/* Asks on the terminal; echo off for secrets. 0, or -1 (no terminal, EOF). */
static int prompt(const char *question, int secret, char *buf, size_t cap)
{
	struct termios old, quiet;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), r, echo_off = 0;

	if (fd < 0)
		return -1;
	if (write(fd, question, strlen(question)) < 0) {
		close(fd);
		return -1;
	}
	if (secret && tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		echo_off = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	r = read_line(fd, buf, cap);
	if (echo_off) {
		tcsetattr(fd, TCSAFLUSH, &old);
		if (write(fd, "\n", 1) < 0)
			r = -1;
	}
	close(fd);
	return r;
}

/* A password from stdin (--password-stdin) or asked for; twice when `confirm`. */
static int get_password(int from_stdin, int confirm, char *pw, size_t cap)
{
	char again[SECRET_MAX];
	int r;

	if (from_stdin)
		return read_line(0, pw, cap);
	if (prompt("password: ", 1, pw, cap) != 0) {
		fprintf(stderr, "zt: no terminal to ask for the password: use --password-stdin\n");
		return -1;
	}
	if (!confirm)
		return 0;
	r = prompt("again: ", 1, again, sizeof again) == 0 && !strcmp(pw, again) ? 0 : -1;
	if (r != 0)
		fprintf(stderr, "zt: the passwords differ\n");
	zt_wipe(again, sizeof again);
	return r;
}

static json_t *groups_array(const char **g, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(g[i]));
	return a;
}

static int user_path(const char *name, const char *tail, char *path, size_t cap)
{
	char esc[400];

	if (zt_api_escape(name, esc, sizeof esc) != 0)
		return -1;
	return snprintf(path, cap, "/v1/users/%s%s", esc, tail) >= (int)cap ? -1 : 0;
}

/*
 * PUT a new password; a user changing its own is asked for the current one
 * (the server says so), read from the terminal or the next line of stdin.
 */
static int passwd(zt_api *a, const char *path, json_t *b, int from_stdin)
{
	char cur[SECRET_MAX];
	zt_api_resp resp;
	zt_err e;
	int r;

	if (zt_api_call(a, "PUT", path, b, NULL, 30000, &resp, &e) != 0)
		return zt_cli_fail(&e, "user passwd", ZT_EXIT_FAIL);
	const char *code = json_string_value(json_object_get(json_object_get(resp.json, "error"), "code"));

	if (resp.status == 400 && code && !strcmp(code, "current-password-required")) {
		zt_api_resp_free(&resp);
		if ((from_stdin ? read_line(0, cur, sizeof cur) : prompt("current password: ", 1, cur, sizeof cur)) != 0) {
			fprintf(stderr, "zt: user passwd: your current password is needed to change it\n");
			return ZT_EXIT_FAIL;
		}
		json_object_set_new(b, "current", json_string(cur));
		zt_wipe(cur, sizeof cur);
		r = zt_api_call(a, "PUT", path, b, NULL, 30000, &resp, &e);
		if (r != 0)
			return zt_cli_fail(&e, "user passwd", ZT_EXIT_FAIL);
	}
	r = resp.status == 200 ? ZT_EXIT_OK : ZT_EXIT_FAIL;
	if (r == ZT_EXIT_OK)
		zt_remote_print(resp.json);
	else
		zt_remote_print_error("user passwd", &resp);
	zt_api_resp_free(&resp);
	return r;
}

int zt_cmd_user(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char **groups = NULL, *pw_stdin = NULL, *disabled = NULL, *disable = NULL, *enable = NULL,
		   *no_groups = NULL;
	size_t ngroups = 0, npos;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"group", 1, 1, NULL, &groups, &ngroups},
		{"no-groups", 0, 0, &no_groups, NULL, NULL},
		{"password-stdin", 0, 0, &pw_stdin, NULL, NULL},
		{"disabled", 0, 0, &disabled, NULL, NULL},
		{"disable", 0, 0, &disable, NULL, NULL},
		{"enable", 0, 0, &enable, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[3], path[600], pw[SECRET_MAX];
	const char *sub;
	json_t *b = NULL, *got = NULL;
	zt_api *a;
	int r;

	if (argc < 1 || !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", U_USER);
		return argc < 1 ? ZT_EXIT_USAGE : ZT_EXIT_OK;
	}
	sub = argv[0];
	if ((r = zt_cli_parse(argc - 1, argv + 1, opts, pos, 3, &npos, U_USER)) != 0)
		return r;
	if (npos > 3) {
		free(groups);
		return zt_cli_usage(U_USER, "too many arguments");
	}
	int totp = !strcmp(sub, "totp");
	size_t want = !strcmp(sub, "list") ? 0 : totp ? (npos && !strcmp(pos[0], "confirm") ? 3 : 2) : 1;

	if (npos != want || (totp && strcmp(pos[0], "enrol") && strcmp(pos[0], "confirm") && strcmp(pos[0], "remove"))) {
		free(groups);
		return zt_cli_usage(U_USER, "user %.100s: wrong arguments", sub);
	}
	if ((disable && enable) || (no_groups && ngroups)) {
		free(groups);
		return zt_cli_usage(U_USER, "--disable or --enable; --group or --no-groups");
	}
	if (!(a = zt_remote_open(&rm, "user"))) {
		free(groups);
		return ZT_EXIT_FAIL;
	}
	pw[0] = '\0';
	if (!strcmp(sub, "create")) {
		b = json_pack("{s:s,s:o,s:b}", "name", pos[0], "groups", groups_array(groups, ngroups), "disabled",
			      disabled != NULL);
		if (pw_stdin) {
			if (get_password(1, 0, pw, sizeof pw) != 0) {
				r = ZT_EXIT_FAIL;
				goto out;
			}
			json_object_set_new(b, "password", json_string(pw));
		}
		r = zt_remote_call(a, "user create", "POST", "/v1/users", b, NULL, NULL);
	} else if (!strcmp(sub, "list")) {
		r = zt_remote_call(a, "user list", "GET", "/v1/users?limit=1000", NULL, NULL, NULL);
	} else if (user_path(totp ? pos[1] : pos[0], totp && !strcmp(pos[0], "confirm") ? "/totp/confirm"
						    : totp ? "/totp" : !strcmp(sub, "passwd") ? "/password" : "",
			     path, sizeof path) != 0) {
		r = zt_cli_usage(U_USER, "that is not a user name");
	} else if (!strcmp(sub, "get") || !strcmp(sub, "delete")) {
		r = zt_remote_call(a, "user", !strcmp(sub, "get") ? "GET" : "DELETE", path, NULL, NULL, NULL);
	} else if (!strcmp(sub, "update")) {
		char ver[32];

		if ((r = zt_remote_call(a, "user get", "GET", path, NULL, NULL, &got)) != ZT_EXIT_OK)
			goto out;
		snprintf(ver, sizeof ver, "%lld", (long long)json_integer_value(json_object_get(got, "version")));
		b = json_object();
		if (ngroups || no_groups)
			json_object_set_new(b, "groups", groups_array(groups, ngroups));
		if (disable || enable)
			json_object_set_new(b, "disabled", json_boolean(disable != NULL));
		r = zt_remote_call(a, "user update", "PUT", path, b, ver, NULL);
	} else if (!strcmp(sub, "passwd")) {
		if (get_password(pw_stdin != NULL, 1, pw, sizeof pw) != 0) {
			r = ZT_EXIT_FAIL;
			goto out;
		}
		b = json_pack("{s:s}", "password", pw);
		r = passwd(a, path, b, pw_stdin != NULL);
	} else if (totp && !strcmp(pos[0], "enrol")) {
		if ((r = zt_remote_call(a, "user totp enrol", "POST", path, NULL, NULL, &got)) == ZT_EXIT_OK)
			printf("add this to the user's authenticator app (shown once):\n\n  %s\n\nsecret: %s\n"
			       "then: zt user totp confirm %s CODE\n",
			       json_string_value(json_object_get(got, "uri")),
			       json_string_value(json_object_get(got, "secret")), pos[1]);
	} else if (totp && !strcmp(pos[0], "remove")) {
		r = zt_remote_call(a, "user totp remove", "DELETE", path, NULL, NULL, NULL);
	} else if (totp) {
		b = json_pack("{s:s}", "code", pos[2]);
		r = zt_remote_call(a, "user totp confirm", "POST", path, b, NULL, NULL);
	} else {
		r = zt_cli_usage(U_USER, "unknown subcommand \"%.100s\"", sub);
	}
out:
	zt_wipe(pw, sizeof pw);
	json_decref(got);
	json_decref(b);
	zt_api_free(a);
	free(groups);
	return r;
}

int zt_cmd_group(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *desc = NULL;
	const struct zt_opt opts[] = {
		ZT_REMOTE_OPTS(rm),
		{"description", 1, 0, &desc, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char *pos[1], path[600], esc[400];
	size_t npos;
	json_t *b = NULL;
	zt_api *a;
	int r;

	if (argc < 1 || !strcmp(argv[0], "--help")) {
		printf("usage: %s\n", U_GROUP);
		return argc < 1 ? ZT_EXIT_USAGE : ZT_EXIT_OK;
	}
	if ((r = zt_cli_parse(argc - 1, argv + 1, opts, pos, 1, &npos, U_GROUP)) != 0)
		return r;
	if (npos != (strcmp(argv[0], "list") ? 1u : 0u))
		return zt_cli_usage(U_GROUP, "group %.100s: wrong arguments", argv[0]);
	if (npos && (zt_api_escape(pos[0], esc, sizeof esc) != 0 ||
		     snprintf(path, sizeof path, "/v1/groups/%s", esc) >= (int)sizeof path))
		return zt_cli_usage(U_GROUP, "that is not a group name");
	if (!(a = zt_remote_open(&rm, "group")))
		return ZT_EXIT_FAIL;
	if (!strcmp(argv[0], "create")) {
		b = json_pack("{s:s,s:s}", "name", pos[0], "description", desc ? desc : "");
		r = zt_remote_call(a, "group create", "POST", "/v1/groups", b, NULL, NULL);
	} else if (!strcmp(argv[0], "list")) {
		r = zt_remote_call(a, "group list", "GET", "/v1/groups?limit=1000", NULL, NULL, NULL);
	} else if (!strcmp(argv[0], "get") || !strcmp(argv[0], "delete")) {
		r = zt_remote_call(a, "group", !strcmp(argv[0], "get") ? "GET" : "DELETE", path, NULL, NULL, NULL);
	} else {
		r = zt_cli_usage(U_GROUP, "unknown subcommand \"%.100s\"", argv[0]);
	}
	json_decref(b);
	zt_api_free(a);
	return r;
}

/* The server and CA file as resolved without a token (a login needs none). */
static zt_api *open_anonymous(const struct zt_remote *rm, zt_api_config *c, const char *what)
{
	zt_err e;
	zt_api *a;

	memset(c, 0, sizeof *c);
	if (rm->server)
		snprintf(c->server, sizeof c->server, "%s", rm->server);
	if (rm->ca_file)
		snprintf(c->ca_file, sizeof c->ca_file, "%s", rm->ca_file);
	if (zt_api_config_resolve(c, &e) != 0) {
		zt_cli_fail(&e, what, ZT_EXIT_FAIL);
		return NULL;
	}
	if (!(a = zt_api_new(c, &e)))
		zt_cli_fail(&e, what, ZT_EXIT_FAIL);
	return a;
}

int zt_cmd_login(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const char *user = NULL, *ttl = NULL, *pw_stdin = NULL;
	const struct zt_opt opts[] = {
		{"server", 1, 0, &rm.server, NULL, NULL},
		{"ca-file", 1, 0, &rm.ca_file, NULL, NULL},
		{"user", 1, 0, &user, NULL, NULL},
		{"ttl", 1, 0, &ttl, NULL, NULL},
		{"password-stdin", 0, 0, &pw_stdin, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char name[200], pw[SECRET_MAX], code[16], path[4200], ca_abs[4200];
	zt_api_config c;
	zt_api_resp resp;
	zt_api *a;
	json_t *b = NULL;
	size_t npos;
	zt_err e;
	int r = ZT_EXIT_FAIL;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_LOGIN)) != 0)
		return r;
	/* $ZT_CONFIG names the file to write: it need not exist yet */
	const char *cf = getenv("ZT_CONFIG");

	if (cf && *cf && !zt_path_exists(cf) && zt_file_write(cf, "{}\n", 3, 0600, ZT_WRITE_EXCL, &e) != 0)
		return zt_cli_fail(&e, "login", ZT_EXIT_FAIL);
	if (!(a = open_anonymous(&rm, &c, "login")))
		return ZT_EXIT_FAIL;
	r = ZT_EXIT_FAIL;
	pw[0] = code[0] = '\0';
	memset(&resp, 0, sizeof resp);
	if (user)
		snprintf(name, sizeof name, "%s", user);
	else if (prompt("user: ", 0, name, sizeof name) != 0) {
		fprintf(stderr, "zt: login: no terminal to ask for the user name: use --user\n");
		goto out;
	}
	if (get_password(pw_stdin != NULL, 0, pw, sizeof pw) != 0)
		goto out;
	for (int round = 0; round < 2; round++) {
		b = json_pack("{s:s,s:s}", "user", name, "password", pw);
		if (ttl)
			json_object_set_new(b, "ttl", json_string(ttl));
		if (code[0])
			json_object_set_new(b, "code", json_string(code));
		zt_api_resp_free(&resp);
		if (zt_api_call(a, "POST", "/v1/login", b, NULL, 30000, &resp, &e) != 0) {
			zt_cli_fail(&e, "login", ZT_EXIT_FAIL);
			goto out;
		}
		json_decref(b);
		b = NULL;
		const char *err = json_string_value(json_object_get(json_object_get(resp.json, "error"), "code"));

		/* the password was right; the second factor next */
		if (resp.status == 401 && err && !strcmp(err, "totp-required") && !code[0]) {
			if ((pw_stdin ? read_line(0, code, sizeof code) : prompt("code: ", 0, code, sizeof code)) != 0) {
				fprintf(stderr, "zt: login: a code from your authenticator app is needed\n");
				goto out;
			}
			continue;
		}
		break;
	}
	if (resp.status != 200) {
		zt_remote_print_error("login", &resp);
		goto out;
	}
	const char *tok = json_string_value(json_object_get(resp.json, "token"));

	/* the CA file as an absolute path, so the config works from anywhere */
	if (!realpath(c.ca_file, ca_abs))
		snprintf(ca_abs, sizeof ca_abs, "%s", c.ca_file);
	if (!tok || zt_api_config_save(c.server, ca_abs, tok, path, sizeof path, &e) != 0) {
		zt_cli_fail(&e, "login: saving the token", ZT_EXIT_FAIL);
		goto out;
	}
	printf("logged in as %s until %s; the token is in %s\n", name,
	       json_string_value(json_object_get(resp.json, "expires_at")), path);
	if (getenv("ZT_TOKEN"))
		printf("note: ZT_TOKEN is set and is used before the config file: unset ZT_TOKEN\n");
	r = ZT_EXIT_OK;
out:
	if (resp.body.p)
		zt_wipe(resp.body.p, resp.body.len);
	zt_api_resp_free(&resp);
	json_decref(b);
	zt_wipe(pw, sizeof pw);
	zt_wipe(code, sizeof code);
	zt_api_free(a);
	return r;
}

int zt_cmd_logout(int argc, char **argv)
{
	struct zt_remote rm = {0};
	const struct zt_opt opts[] = {
		{"server", 1, 0, &rm.server, NULL, NULL},
		{"ca-file", 1, 0, &rm.ca_file, NULL, NULL},
		{NULL, 0, 0, NULL, NULL, NULL},
	};
	char path[4200];
	size_t npos;
	zt_api *a;
	zt_err e;
	int r;

	if ((r = zt_cli_parse(argc, argv, opts, NULL, 0, &npos, U_LOGOUT)) != 0)
		return r;
	/* the session zt login saved is the one to end, whatever ZT_TOKEN holds */
	unsetenv("ZT_TOKEN");
	if (!(a = zt_remote_open(&rm, "logout")))
		return ZT_EXIT_FAIL;
	r = zt_remote_call(a, "logout", "POST", "/v1/logout", NULL, NULL, NULL);
	zt_api_free(a);
	/* the token goes from the config file either way: it is revoked or useless */
	if (zt_api_config_save(NULL, NULL, NULL, path, sizeof path, &e) != 0)
		return zt_cli_fail(&e, "logout: the config file", ZT_EXIT_FAIL);
	return r;
}
