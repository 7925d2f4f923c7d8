/*
 * Fuzz target: the HTTP client's reading of responses (net/httpc.c).
 *
 * A server thread on 127.0.0.1 answers every request with the fuzz input,
 * as it is, then closes. The client sends a GET (and, for inputs whose
 * first byte is odd, a POST with a body) with a small body cap and a short
 * deadline, and must come back with a response or an error: never a
 * crash, a hang past its deadline, or a body over its cap. A second
 * request on the same client checks that whatever the first left behind
 * (a kept-alive connection with stray bytes) is not mistaken for a
 * response.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "net/httpc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BODY_CAP 4096

static int lfd = -1;
static char url[64];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t answer[1 << 16]; /* a copy: the server may still be sending when the input is gone */
static size_t answer_len;

/* Reads a request head (and whatever body came with it), answers, closes. */
static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		char buf[8192];
		size_t got = 0;

		if (fd < 0)
			continue;
		struct timeval tv = {.tv_sec = 1};

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		while (got < sizeof buf - 1) {
			ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);

			if (n <= 0)
				break;
			got += (size_t)n;
			buf[got] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		pthread_mutex_lock(&mu);
		for (size_t off = 0; off < answer_len;) {
			ssize_t n = send(fd, answer + off, answer_len - off, MSG_NOSIGNAL);

			if (n <= 0)
				break;
			off += (size_t)n;
		}
		pthread_mutex_unlock(&mu);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	pthread_t t;

	(void)argc;
	(void)argv;
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || bind(lfd, (void *)&a, sizeof a) != 0 ||
	    listen(lfd, 64) != 0 || getsockname(lfd, (void *)&a, &al) != 0 ||
	    pthread_create(&t, NULL, serve, NULL) != 0)
		abort();
	snprintf(url, sizeof url, "http://127.0.0.1:%u", ntohs(a.sin_port));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zt_httpc_opts o = {.url = url, .max_body = BODY_CAP, .connect_timeout_ms = 1000};
	zt_httpc *c = zt_httpc_new(&o, NULL);
	static const char *const hdrs[] = {"X-Fuzz", "1", NULL};

	if (!c)
		abort();
	if (size > sizeof answer)
		size = sizeof answer;
	pthread_mutex_lock(&mu);
	memcpy(answer, data, size);
	answer_len = size;
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < 2; i++) {
		zt_httpc_resp r;
		int post = size && (data[0] & 1);

		if (zt_httpc_do(c, post ? "POST" : "GET", "/fuzz?x=1", hdrs, post ? "body" : NULL,
				post ? 4 : 0, 300, &r, NULL) == 0) {
			if (r.status < 100 || r.status > 999 || r.body.len > BODY_CAP)
				abort();
			zt_httpc_resp_free(&r);
		}
	}
	zt_httpc_free(c);
	return 0;
}
