/* Network addresses written "host:port": the one parser of every program
 * (listen flags, peer and endpoint lists, the scaler listener).
 *
 * Rules:
 *   - "host:port": host is a name or an IPv4 literal and holds no ':'.
 *   - "[v6]:port": an IPv6 literal is always in brackets when a port
 *     follows; the last ':' separates the port only outside brackets.
 *   - ":port": an empty host, only with ZW_ADDR_EMPTY_HOST (listeners: the
 *     wildcard address 0.0.0.0).
 *   - "host", "[v6]" or a bare IPv6 literal (two or more ':'): no port,
 *     only with ZW_ADDR_PORT_OPTIONAL (the caller's default port applies).
 *   - port: decimal digits only (no sign, no spaces), 1..65535; 0 too with
 *     ZW_ADDR_PORT_ZERO (listeners: any free port).
 * zw_addr_parse also turns the host into an address: an IPv4 or IPv6
 * literal, "", "*" and "0.0.0.0" as 0.0.0.0, "localhost" as 127.0.0.1;
 * names are not resolved. */
#ifndef ZW_ADDR_H
#define ZW_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Longest host accepted (an IPv6 literal with a zone is at most 46+). */
#define ZW_ADDR_HOST_MAX 256

enum zw_addr_flags {
	ZW_ADDR_EMPTY_HOST = 1u << 0,    /* ":port" allowed */
	ZW_ADDR_PORT_ZERO = 1u << 1,     /* port 0 allowed */
	ZW_ADDR_PORT_OPTIONAL = 1u << 2, /* no port allowed: *port = -1 */
	ZW_ADDR_LISTEN = ZW_ADDR_EMPTY_HOST | ZW_ADDR_PORT_ZERO,
};

/* Splits s (len bytes, need not be NUL-terminated) by the rules above into
 * host (NUL-terminated, brackets removed, hostlen bytes of room) and *port
 * (-1 when absent and ZW_ADDR_PORT_OPTIONAL). Nothing is allocated. Returns
 * 0 or -EINVAL (host and *port are then unspecified). */
int zw_addr_split(const char *s, size_t len, unsigned flags, char *host, size_t hostlen, int *port);

/* Parses NUL-terminated s by the rules above into *out (zeroed first;
 * AF_INET or AF_INET6), with default_port when no port is given (only with
 * ZW_ADDR_PORT_OPTIONAL). Returns 0 or -EINVAL. */
int zw_addr_parse(const char *s, unsigned flags, int default_port, struct sockaddr_storage *out);

#endif
