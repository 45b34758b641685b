/* str.h - byte slices for protocol data.
 *
 * A gw_str points into memory someone else owns (usually a parsed head in a
 * connection's input buffer); it is never NUL-terminated by contract. Copies
 * are made only at library boundaries that need C strings.
 */
#ifndef GW_CORE_STR_H
#define GW_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_str {
	const char *p; /* first byte; may be NULL when len == 0 */
	size_t len;    /* number of bytes */
};

#define GW_STR_LIT(s) ((struct gw_str){(s), sizeof(s) - 1})
#define GW_STR_NULL ((struct gw_str){NULL, 0})

static inline struct gw_str gw_str_make(const char *p, size_t len)
{
	return (struct gw_str){p, len};
}

/* Exact byte equality. */
bool gw_str_eq(struct gw_str a, struct gw_str b);
/* ASCII case-insensitive equality (header names, tokens, hostnames). */
bool gw_str_ieq(struct gw_str a, struct gw_str b);
/* ASCII case-insensitive equality with a C string literal. */
bool gw_str_ieq_cstr(struct gw_str a, const char *lit);
/* Strip leading and trailing optional whitespace (SP / HTAB). */
struct gw_str gw_str_trim(struct gw_str s);
/* Iterate a comma-separated list (RFC 9110 §5.6.1): stores the next trimmed,
 * non-empty element in *elem and advances *list. Returns false at the end. */
bool gw_str_next_elem(struct gw_str *list, struct gw_str *elem);
/* True when the comma-separated list contains token (case-insensitive). */
bool gw_str_list_has(struct gw_str list, const char *token);
/* Parse a non-empty run of decimal digits, nothing else, into *out.
 * Returns false on any other byte or on overflow past UINT64_MAX. */
bool gw_str_to_u64(struct gw_str s, uint64_t *out);
/* RFC 9110 tchar test, for header names and tokens. */
bool gw_is_tchar(unsigned char c);

#endif
