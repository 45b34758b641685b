/* fuzz_chunked.c - the strict chunked decoder (http1_chunked_*) and the body
 * relay that re-frames a chunked body between evbuffers (body.h).
 *
 * Input: 4 control bytes, then the body bytes as a client or an app would
 * send them after the head.
 *   byte 0: bit 0 dechunk (HTTP/1.0 client), bits 1-2 max_line, bits 3-4
 *           max_trailer (the proxy's values and small ones that make the
 *           limits reachable);
 *   bytes 1-3: sizes of the pieces the body arrives in, cycled.
 *
 * Three decoders must agree on every input: an independent reference
 * decoder written below from the grammar in http1.h, the strict decoder run
 * once over the whole buffer, and the same decoder fed piecewise through
 * body_relay_step() over evbuffer chains. Agreement means: same verdict
 * (complete / malformed / incomplete), same end of body (what follows is
 * the next pipelined message), same payload bytes (the sum of the chunk
 * sizes), same trailers. The relay's output must itself decode, with the
 * strict decoder, to exactly that payload and those trailers less the
 * fields the gateway acts on (body.h), and end exactly at its last byte:
 * the app is never shown a body framed differently from what the gateway
 * parsed. A broken or truncated body must never leave the relay looking
 * complete.
 */
#include <event2/buffer.h>
#include <stdbool.h>

#include "body.h"
#include "fuzz.h"
#include "http1.h"

enum ref_verdict { REF_INCOMPLETE, REF_ERROR, REF_DONE };

struct ref_result {
	enum ref_verdict verdict;
	size_t end;	       /* REF_DONE: bytes of the body incl. last CRLF */
	uint64_t sizes;	       /* sum of chunk-size values seen */
	struct evbuffer *data; /* payload, concatenated */
	struct evbuffer *trailers; /* trailer field lines with CRLF */
};

/* ---- reference decoder (RFC 9112 §7.1, restricted as http1.h says) ---- */

static bool ref_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool ref_fieldc(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool ref_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* The whole chunk-ext part of a size line, after the digits. */
static bool ref_exts(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n && ref_ws(p[i]))
		i++;
	while (i < n) {
		if (p[i] != ';')
			return false;
		for (i++; i < n && ref_ws(p[i]); i++)
			;
		size_t name = i;
		while (i < n && ref_tchar(p[i]))
			i++;
		if (i == name)
			return false;
		while (i < n && ref_ws(p[i]))
			i++;
		if (i < n && p[i] == '=') {
			for (i++; i < n && ref_ws(p[i]); i++)
				;
			if (i < n && p[i] == '"') {
				bool closed = false;
				for (i++; i < n && !closed; i++) {
					if (p[i] == '"')
						closed = true;
					else if (p[i] == '\\' &&
						 (i + 1 == n ||
						  !ref_fieldc(p[++i])))
						return false;
					else if (!ref_fieldc(p[i]))
						return false;
				}
				if (!closed)
					return false;
			} else {
				size_t v = i;
				while (i < n && ref_tchar(p[i]))
					i++;
				if (i == v)
					return false;
			}
			while (i < n && ref_ws(p[i]))
				i++;
		}
	}
	return true;
}

/* The run of hex digits at p[0..n): its value (digits beyond 16 are
 * counted, not added, so nothing overflows) and *digits. */
static uint64_t hex_prefix(const unsigned char *p, size_t n, size_t *digits)
{
	uint64_t v = 0;
	size_t i = 0;
	for (; i < n && p[i] && strchr("0123456789abcdefABCDEF", p[i]); i++)
		if (i < 16)
			v = v * 16 +
			    (uint64_t)(p[i] <= '9' ? p[i] - '0'
						   : (p[i] | 0x20) - 'a' + 10);
	*digits = i;
	return v;
}

/* A CRLF-terminated line at p[0..): 1 with *n = length incl. CRLF, 0 when
 * incomplete (and still within max_line), -1 malformed or too long. */
static int ref_line(const unsigned char *p, size_t avail, size_t max_line,
		    size_t *n)
{
	for (size_t i = 0; i < avail; i++) {
		if (i >= max_line)
			return -1;
		if (p[i] == '\n') {
			if (i == 0 || p[i - 1] != '\r')
				return -1;
			for (size_t j = 0; j + 1 < i; j++)
				if (p[j] == '\r')
					return -1;
			*n = i + 1;
			return 1;
		}
	}
	return avail >= max_line ? -1 : 0;
}

static void ref_decode(const unsigned char *p, size_t len, size_t max_line,
		       size_t max_trailer, struct ref_result *r)
{
	size_t pos = 0, tbytes = 0, n = 0;
	r->verdict = REF_INCOMPLETE;
	for (;;) {
		int l = ref_line(p + pos, len - pos, max_line, &n);
		if (l <= 0) {
			r->verdict = l < 0 ? REF_ERROR : REF_INCOMPLETE;
			return;
		}
		size_t digits;
		uint64_t size = hex_prefix(p + pos, n - 2, &digits);
		if (digits == 0 || digits > 16) {
			r->verdict = REF_ERROR;
			return;
		}
		if (size > ((uint64_t)1 << 60) ||
		    !ref_exts(p + pos + digits, n - 2 - digits)) {
			r->verdict = REF_ERROR;
			return;
		}
		pos += n;
		r->sizes += size;
		if (size == 0)
			break;
		if (len - pos < size) {
			/* incomplete: keep the partial payload, which the
			 * relay may already have forwarded */
			evbuffer_add(r->data, p + pos, len - pos);
			return;
		}
		evbuffer_add(r->data, p + pos, (size_t)size);
		pos += (size_t)size;
		if (len - pos < 2) {
			if (len - pos == 1 && p[pos] != '\r')
				r->verdict = REF_ERROR;
			return;
		}
		if (p[pos] != '\r' || p[pos + 1] != '\n') {
			r->verdict = REF_ERROR;
			return;
		}
		pos += 2;
	}
	/* trailer section */
	for (;;) {
		if (pos == len)
			return;
		if (p[pos] == '\r' || p[pos] == '\n') {
			if (p[pos] == '\n' ||
			    (pos + 1 < len && p[pos + 1] != '\n')) {
				r->verdict = REF_ERROR;
				return;
			}
			if (pos + 1 == len)
				return;
			r->verdict = REF_DONE;
			r->end = pos + 2;
			return;
		}
		int l = ref_line(p + pos, len - pos, max_line, &n);
		if (l <= 0) {
			r->verdict = l < 0 ? REF_ERROR : REF_INCOMPLETE;
			return;
		}
		size_t colon = 0;
		while (colon < n - 2 && p[pos + colon] != ':')
			colon++;
		bool ok = colon > 0 && colon < n - 2;
		for (size_t i = 0; ok && i < colon; i++)
			ok = ref_tchar(p[pos + i]);
		for (size_t i = colon + 1; ok && i < n - 2; i++)
			ok = ref_fieldc(p[pos + i]);
		tbytes += n;
		if (!ok || tbytes > max_trailer) {
			r->verdict = REF_ERROR;
			return;
		}
		evbuffer_add(r->trailers, p + pos, n);
		pos += n;
	}
}

/* ---- the strict decoder over one contiguous buffer, grown piecewise ---- */

static void strict_decode(const char *p, size_t len, size_t max_line,
			  size_t max_trailer, struct fuzz_pieces *pieces,
			  struct ref_result *r)
{
	struct http1_chunked c;
	http1_chunked_init(&c, max_line, max_trailer);
	size_t pos = 0, avail = pieces ? fuzz_next_piece(pieces, len) : len;
	r->verdict = REF_INCOMPLETE;
	for (;;) {
		size_t n = 0;
		const char *err = NULL;
		enum http1_span k =
			pos < avail ? http1_chunked_step(&c, p + pos,
							 avail - pos, &n, &err)
				    : HTTP1_SPAN_NEED_MORE;
		switch (k) {
		case HTTP1_SPAN_NEED_MORE:
			FUZZ_CHECK(n == 0);
			if (avail == len)
				return;
			avail += fuzz_next_piece(pieces, len - avail);
			continue;
		case HTTP1_SPAN_ERROR:
			FUZZ_CHECK(err != NULL);
			r->verdict = REF_ERROR;
			return;
		case HTTP1_SPAN_FRAMING:
			FUZZ_CHECK(n >= 2 && n <= avail - pos);
			FUZZ_CHECK(p[pos + n - 2] == '\r' &&
				   p[pos + n - 1] == '\n');
			if (n > 2) {
				/* a size line (the CRLF after data is 2) */
				size_t digits;
				uint64_t v = hex_prefix(
					(const unsigned char *)p + pos, n - 2,
					&digits);
				r->sizes += v;
			}
			break;
		case HTTP1_SPAN_DATA:
			FUZZ_CHECK(n >= 1 && n <= avail - pos);
			evbuffer_add(r->data, p + pos, n);
			break;
		case HTTP1_SPAN_TRAILER:
			FUZZ_CHECK(n >= 3 && n <= avail - pos);
			evbuffer_add(r->trailers, p + pos, n);
			break;
		case HTTP1_SPAN_END:
			FUZZ_CHECK(n == 2 && http1_chunked_done(&c));
			r->verdict = REF_DONE;
			r->end = pos + n;
			return;
		}
		pos += n;
	}
}

static void result_init(struct ref_result *r)
{
	*r = (struct ref_result){.data = evbuffer_new(),
				 .trailers = evbuffer_new()};
}

static void result_finish(struct ref_result *r)
{
	evbuffer_free(r->data);
	evbuffer_free(r->trailers);
}

static bool same_buf(struct evbuffer *a, struct evbuffer *b)
{
	size_t n = evbuffer_get_length(a);
	return n == evbuffer_get_length(b) &&
	       (n == 0 ||
		memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n) == 0);
}

/* a is a prefix of b */
static bool prefix_of(struct evbuffer *a, struct evbuffer *b)
{
	size_t n = evbuffer_get_length(a);
	return n <= evbuffer_get_length(b) &&
	       (n == 0 ||
		memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n) == 0);
}

/* The trailer lines a relay passes on (body.h): all but those naming a
 * field the gateway acts on anywhere else (http1_header_id knows them). */
static struct evbuffer *passed_trailers(struct evbuffer *all)
{
	struct evbuffer *out = evbuffer_new();
	FUZZ_CHECK(out != NULL);
	size_t n = evbuffer_get_length(all);
	const char *p = n ? (const char *)evbuffer_pullup(all, -1) : NULL;
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t len = nl ? (size_t)(nl - (p + i)) + 1 : n - i;
		const char *colon = memchr(p + i, ':', len);
		FUZZ_CHECK(colon != NULL); /* the decoder validated the line */
		if (http1_header_id(p + i, (size_t)(colon - (p + i))) ==
		    HTTP1_HDR_OTHER)
			evbuffer_add(out, p + i, len);
		i += len;
	}
	return out;
}

static void same_result(const struct ref_result *a, const struct ref_result *b)
{
	FUZZ_CHECK(a->verdict == b->verdict);
	if (a->verdict != REF_DONE)
		return;
	FUZZ_CHECK(a->end == b->end);
	FUZZ_CHECK(a->sizes == b->sizes);
	FUZZ_CHECK(same_buf(a->data, b->data));
	FUZZ_CHECK(same_buf(a->trailers, b->trailers));
	FUZZ_CHECK(evbuffer_get_length(a->data) == a->sizes);
}

/* ---- the relay ---------------------------------------------------------- */

static void check_relay(const char *p, size_t len, size_t max_line,
			size_t max_trailer, bool dechunk,
			struct fuzz_pieces *pieces,
			const struct ref_result *ref)
{
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	struct body_relay b;
	body_relay_init(&b, HTTP1_BODY_CHUNKED, 0, max_line, max_trailer);
	b.dechunk = dechunk;
	size_t fed = 0;
	enum body_status st = BODY_MORE;
	const char *err = NULL;
	bool by_eof = false;
	while (st == BODY_MORE) {
		if (fed == len) {
			st = body_relay_eof(&b, &err);
			FUZZ_CHECK(st == BODY_ERROR); /* truncated */
			by_eof = true;
			break;
		}
		/* One evbuffer per piece, appended by reference: the piece
		 * stays its own chain, like one read() would make. */
		size_t n = fuzz_next_piece(pieces, len - fed);
		struct evbuffer *piece = evbuffer_new();
		evbuffer_add(piece, p + fed, n);
		evbuffer_add_buffer(src, piece);
		evbuffer_free(piece);
		fed += n;
		st = body_relay_step(&b, src, dst, &err);
	}
	size_t out_len = evbuffer_get_length(dst);
	const char *out = (const char *)evbuffer_pullup(dst, -1);

	if (st == BODY_DONE) {
		FUZZ_CHECK(ref->verdict == REF_DONE);
		FUZZ_CHECK(b.done);
		/* What is left is exactly what follows the body. */
		size_t left = evbuffer_get_length(src) + (len - fed);
		FUZZ_CHECK(left == len - ref->end);
		FUZZ_CHECK(evbuffer_get_length(src) == 0 ||
			   memcmp(evbuffer_pullup(src, -1), p + ref->end,
				  evbuffer_get_length(src)) == 0);
		FUZZ_CHECK(b.moved == ref->sizes);
	} else {
		FUZZ_CHECK(st == BODY_ERROR && err != NULL);
		FUZZ_CHECK(ref->verdict ==
			   (by_eof ? REF_INCOMPLETE : REF_ERROR));
	}

	if (dechunk) {
		/* Raw payload out, nothing else. */
		if (st == BODY_DONE)
			FUZZ_CHECK(same_buf(dst, ref->data));
		else
			FUZZ_CHECK(prefix_of(dst, ref->data));
		evbuffer_free(src);
		evbuffer_free(dst);
		return;
	}

	/* The re-framed output parses back, with the strict decoder, to the
	 * same payload and trailers, and ends where the output ends. */
	struct ref_result again;
	result_init(&again);
	strict_decode(out, out_len, FUZZ_CHUNK_LINE_MAX,
		      max_trailer > FUZZ_RESP_HEADER_MAX_BYTES
			      ? max_trailer
			      : FUZZ_RESP_HEADER_MAX_BYTES,
		      NULL, &again);
	if (st == BODY_DONE) {
		FUZZ_CHECK(again.verdict == REF_DONE);
		FUZZ_CHECK(again.end == out_len);
		FUZZ_CHECK(same_buf(again.data, ref->data));
		struct evbuffer *passed = passed_trailers(ref->trailers);
		FUZZ_CHECK(same_buf(again.trailers, passed));
		evbuffer_free(passed);
	} else {
		/* A body the gateway refused must not look complete, nor
		 * malformed in a different place, to the app. */
		FUZZ_CHECK(again.verdict == REF_INCOMPLETE);
		FUZZ_CHECK(prefix_of(again.data, ref->data));
	}
	result_finish(&again);
	evbuffer_free(src);
	evbuffer_free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_lines[] = {FUZZ_CHUNK_LINE_MAX, 3, 8, 40};
	static const size_t max_trailers[] = {
		FUZZ_HEADER_MAX_BYTES, FUZZ_RESP_HEADER_MAX_BYTES, 0, 24};
	if (size < 4)
		return 0;
	bool dechunk = data[0] & 1;
	size_t max_line = max_lines[(data[0] >> 1) & 3];
	size_t max_trailer = max_trailers[(data[0] >> 3) & 3];
	const char *p = (const char *)data + 4;
	size_t len = size - 4;

	struct ref_result ref, whole, piecewise;
	result_init(&ref);
	result_init(&whole);
	result_init(&piecewise);
	ref_decode((const unsigned char *)p, len, max_line, max_trailer, &ref);
	strict_decode(p, len, max_line, max_trailer, NULL, &whole);
	struct fuzz_pieces pieces = {.ctl = data + 1, .nctl = 3, .scale = 1};
	strict_decode(p, len, max_line, max_trailer, &pieces, &piecewise);
	same_result(&ref, &whole);
	same_result(&whole, &piecewise);

	pieces.next = 0;
	check_relay(p, len, max_line, max_trailer, dechunk, &pieces, &ref);

	result_finish(&ref);
	result_finish(&whole);
	result_finish(&piecewise);
	return 0;
}
