/* fuzz.h - what the libFuzzer targets in tests/fuzz share.
 *
 * Each target is one fuzz_<name>.c defining LLVMFuzzerTestOneInput and
 * driving one pure module through its public header. A broken invariant is
 * reported with FUZZ_CHECK, which aborts: libFuzzer then saves the input as a
 * crash, exactly as it does for an ASan or UBSan report.
 */
#ifndef GW_FUZZ_H
#define GW_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "http1.h"

struct evbuffer;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Active in every build type (assert() is not, with NDEBUG). Captures the
 * location, hence a macro. */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant broken: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

/* The limits the proxy runs with by default (gateway/config.c key table and
 * CHUNK_LINE_MAX in gateway/proxy_up.c): the fuzzers check the code paths
 * operators actually get. */
#define FUZZ_HEADER_MAX_BYTES	   16384 /* [client] header_max_bytes */
#define FUZZ_HEADER_MAX_COUNT	   100	 /* [client] header_max_count */
#define FUZZ_RESP_HEADER_MAX_BYTES 65536 /* [upstream] header_max_bytes */
#define FUZZ_CHUNK_LINE_MAX	   4096	 /* proxy_up.c CHUNK_LINE_MAX */

/* Delivery in pieces: the sizes in which bytes "arrive" are chosen by the
 * fuzzer (a few control bytes cycled), so that every split point of a line
 * across reads and evbuffer chains gets exercised. */
struct fuzz_pieces {
	const uint8_t *ctl; /* piece-size bytes, cycled */
	size_t nctl;
	size_t next;  /* index of the next control byte */
	size_t scale; /* piece = 1 + ctl * scale bytes; ctl 0 = all */
};

static inline size_t fuzz_next_piece(struct fuzz_pieces *p, size_t left)
{
	if (p->nctl == 0)
		return left;
	uint8_t b = p->ctl[p->next++ % p->nctl];
	size_t n = b == 0 ? left : 1 + (size_t)(b - 1) * p->scale;
	return n < left ? n : left;
}

/* Byte equality of two slices, for differential checks. */
static inline int fuzz_same(const void *a, size_t alen, const void *b,
			    size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static inline int fuzz_str_same(struct gw_str a, struct gw_str b)
{
	return fuzz_same(a.p, a.len, b.p, b.len);
}

/* A slice lies inside buf[0..len). */
static inline int fuzz_inside(struct gw_str s, const char *buf, size_t len)
{
	return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len);
}

/* Check a parsed head against its bytes buf[0..len): every slice inside
 * buf, start line sane, and the fields equal to the lines after the start
 * line split at their first colon and trimmed, in order (derived here
 * without http-parser). For requests also: framing agrees with the
 * Content-Length / Transfer-Encoding fields present, host_count is right,
 * method_name is http-parser's name for method. */
void fuzz_check_head(const char *buf, size_t len, const struct http1_head *h,
		     size_t max_headers, bool request);

/* Decode a body that starts at p[0..len) in one piece with a dechunking
 * relay (the default line limit, trailers up to max_trailer), appending the
 * payload to payload. Returns the bytes the body takes, or -1 when it is
 * incomplete or malformed. */
long fuzz_body_one_shot(const char *p, size_t len, const struct http1_head *h,
			size_t max_trailer, struct evbuffer *payload);

/* malloc'd NUL-terminated copy of prefix (may be NULL) + p[0..n). */
char *fuzz_dup(const char *p, size_t n, const char *prefix);

#endif
