/* "host:port" addresses (see addr.h). */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

static int parse_port(const char *p, size_t n, unsigned flags, int *port)
{
	long v = 0;

	if (n == 0 || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		v = v * 10 + (p[i] - '0');
	}
	if (v > 65535 || (v == 0 && !(flags & ZW_ADDR_PORT_ZERO)))
		return -EINVAL;
	*port = (int)v;
	return 0;
}

static int copy_host(const char *h, size_t n, char *host, size_t hostlen)
{
	if (n >= hostlen || memchr(h, '\0', n))
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	return 0;
}

int zw_addr_split(const char *s, size_t len, unsigned flags, char *host, size_t hostlen, int *port)
{
	const char *end = s + len, *colon, *hs;
	size_t hn;

	*port = -1;
	if (!s || len == 0 || hostlen == 0)
		return -EINVAL;
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		if (!rb || rb == s + 1)
			return -EINVAL;
		hs = s + 1;
		hn = (size_t)(rb - hs);
		if (memchr(hs, '[', hn) || copy_host(hs, hn, host, hostlen) < 0)
			return -EINVAL;
		if (rb + 1 == end)
			return (flags & ZW_ADDR_PORT_OPTIONAL) ? 0 : -EINVAL;
		if (rb[1] != ':')
			return -EINVAL;
		return parse_port(rb + 2, (size_t)(end - rb - 2), flags, port);
	}
	colon = memchr(s, ':', len);
	if (!colon) {
		if (!(flags & ZW_ADDR_PORT_OPTIONAL))
			return -EINVAL;
		return copy_host(s, len, host, hostlen);
	}
	if (memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
		/* A bare IPv6 literal: no port can follow. */
		if (!(flags & ZW_ADDR_PORT_OPTIONAL))
			return -EINVAL;
		return copy_host(s, len, host, hostlen);
	}
	if (colon == s && !(flags & ZW_ADDR_EMPTY_HOST))
		return -EINVAL;
	if (copy_host(s, (size_t)(colon - s), host, hostlen) < 0)
		return -EINVAL;
	return parse_port(colon + 1, (size_t)(end - colon - 1), flags, port);
}

int zw_addr_parse(const char *s, unsigned flags, int default_port, struct sockaddr_storage *out)
{
	char host[ZW_ADDR_HOST_MAX];
	struct sockaddr_in *a4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
	int port;

	memset(out, 0, sizeof(*out));
	if (!s || zw_addr_split(s, strlen(s), flags, host, sizeof(host), &port) < 0)
		return -EINVAL;
	if (port < 0)
		port = default_port;
	if (port < 0 || port > 65535)
		return -EINVAL;
	if (host[0] == '\0' || strcmp(host, "*") == 0 || strcmp(host, "localhost") == 0) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		a4->sin_addr.s_addr = htonl(host[0] == 'l' ? INADDR_LOOPBACK : INADDR_ANY);
		return 0;
	}
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	memset(out, 0, sizeof(*out));
	return -EINVAL;
}
