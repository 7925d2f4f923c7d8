/* net/addr.c: socket addresses as people write them. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

int zt_addr_parse(const char *s, int any_port, struct sockaddr_storage *ss, socklen_t *len,
		  zt_err *e)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	long port;
	char *end;

	memset(ss, 0, sizeof *ss);
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof host)
		goto bad;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < (any_port ? 0 : 1) || port > 65535)
		goto bad;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		host[strlen(host) - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			goto bad;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof *a6;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			goto bad;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof *a4;
	}
	return 0;
bad:
	return zt_err_set(e, ZT_EINVAL,
			  "\"%.100s\" is not an address; write IPv4:PORT or [IPv6]:PORT (names are not resolved)",
			  s);
}
