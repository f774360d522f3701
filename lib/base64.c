/* Base64; see base64.h. */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The characters of every 12-bit value, two by two, built by the compiler:
 * one look-up per two output characters. */
#define B64(v)                      \
	((v) < 26    ? 'A' + (v)    \
	 : (v) < 52  ? 'a' + (v)-26 \
	 : (v) < 62  ? '0' + (v)-52 \
	 : (v) == 62 ? '+'          \
	             : '/')
#define PAIR(i)    B64((i) >> 6), B64((i)&63)
#define PAIR4(i)   PAIR(i), PAIR((i) + 1), PAIR((i) + 2), PAIR((i) + 3)
#define PAIR16(i)  PAIR4(i), PAIR4((i) + 4), PAIR4((i) + 8), PAIR4((i) + 12)
#define PAIR64(i)  PAIR16(i), PAIR16((i) + 16), PAIR16((i) + 32), PAIR16((i) + 48)
#define PAIR256(i) PAIR64(i), PAIR64((i) + 64), PAIR64((i) + 128), PAIR64((i) + 192)
#define PAIR1K(i)  PAIR256(i), PAIR256((i) + 256), PAIR256((i) + 512), PAIR256((i) + 768)
static const char pairs[2 * 4096] = {PAIR1K(0), PAIR1K(1024), PAIR1K(2048), PAIR1K(3072)};

size_t zw_base64_encode_to(char *out, const void *in, size_t len)
{
	const unsigned char *p = in;
	size_t i = 0, o = 0;

	for (; len - i >= 3; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		memcpy(out + o, pairs + 2 * (v >> 12), 2);
		memcpy(out + o + 2, pairs + 2 * (v & 0xfff), 2);
		o += 4;
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		out[o] = alphabet[v >> 18];
		out[o + 1] = alphabet[(v >> 12) & 63];
		out[o + 2] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		out[o + 3] = '=';
		o += 4;
	}
	return o;
}

char *zw_base64_encode(const void *in, size_t len)
{
	char *out;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	out = malloc(ZW_BASE64_LEN(len) + 1);
	if (!out)
		return NULL;
	out[zw_base64_encode_to(out, in, len)] = '\0';
	return out;
}

static int value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

unsigned char *zw_base64_decode(const char *text, size_t len, size_t *out_len)
{
	unsigned char *out = malloc(len / 4 * 3 + 4);
	uint32_t acc = 0;
	size_t o = 0, pad = 0;
	int bits = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		int v;
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = value_of(c);
		if (v < 0 || pad)
			goto fail; /* bad character, or data after padding */
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* 6 leftover bits cannot come from whole bytes; nor can >2 pad chars. */
	if (bits >= 6 || pad > 2)
		goto fail;
	out[o] = '\0';
	*out_len = o;
	return out;
fail:
	free(out);
	return NULL;
}
