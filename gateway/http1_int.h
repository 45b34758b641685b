/* http1_int.h - private to gateway/http1*.c: the byte classes of the
 * head grammar and the checks the parts share. Never included from
 * outside the http1 module.
 */
#ifndef GW_HTTP1_INT_H
#define GW_HTTP1_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "http1.h"

/* Byte classes for the head grammar (RFC 9110 §5.6.2, §5.5). */
#define HTTP1_C_TCHAR 1 /* token character */
#define HTTP1_C_FIELD 2 /* field-value byte: VCHAR, SP, HTAB, obs-text */
#define HTTP1_C_VCHAR 4 /* visible character (request-target) */

extern const unsigned char http1_byte_class[256];

static inline bool http1_is_tchar(unsigned char c)
{
	return http1_byte_class[c] & HTTP1_C_TCHAR;
}

static inline bool http1_is_vchar(unsigned char c)
{
	return http1_byte_class[c] & HTTP1_C_VCHAR;
}

static inline bool http1_is_field_byte(unsigned char c)
{
	return http1_byte_class[c] & HTTP1_C_FIELD;
}

/* The second opinion on a head the strict pass accepted: http-parser
 * (http1_parser.c) must parse the same bytes into the same start line and
 * the same fields, at the same places. Returns 0, or 400 with *err. */
int http1_parser_check(const char *buf, size_t len, bool request,
		       const struct http1_head *h, const char **err);

#endif
