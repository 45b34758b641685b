/* http1.h - HTTP/1.1 message heads and body framing, without sockets.
 *
 * A head is read twice and must be read alike: by a strict pass of our
 * own over the bytes (RFC 9112 grammar for the start line and every field
 * line) and by http-parser (http1_parser.c), which must find the same
 * elements at the same places. Debian's libhttp-parser 2.9.4 is built
 * lenient: it accepts a space before the colon, spaces inside names,
 * obs-fold and bare CR variants that matter for request smuggling, hence
 * the strict pass; any disagreement is a 400. Refused here: invalid header-name
 * bytes, obs-fold, bare CR, NUL, CL+TE, any repeated or non-numeric
 * Content-Length, Transfer-Encoding other than "chunked", CONNECT, unknown
 * methods, the asterisk form for anything but OPTIONS, expectations other
 * than 100-continue.
 *
 * Chunked bodies are decoded by a small strict decoder of our own
 * (http1_chunked_*): http-parser 2.9.4 accepts any two bytes after chunk
 * data and a bare LF inside chunk extensions, and the gateway must never
 * forward a body framed differently from what it parsed. The decoder reports
 * spans so the caller can move data bytes between evbuffers without copying.
 *
 * Nothing here allocates: parsed slices point into the caller's head buffer,
 * which must stay unchanged while the head is in use.
 */
#ifndef GW_HTTP1_H
#define GW_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/* How the message body is delimited. */
enum http1_framing {
	HTTP1_BODY_NONE = 0, /* no body (GET without CL, 204, 304, HEAD resp) */
	HTTP1_BODY_LENGTH,   /* Content-Length: content_length bytes follow */
	HTTP1_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
	HTTP1_BODY_CLOSE,    /* response only: body runs until the peer closes */
};

/* Fields the gateway acts on, recognised once while parsing so that
 * later passes compare a small integer, not a name. */
enum http1_hdr_id {
	HTTP1_HDR_OTHER = 0, /* anything else (and hand-built headers) */
	HTTP1_HDR_HOST,
	HTTP1_HDR_CONTENT_LENGTH,
	HTTP1_HDR_TRANSFER_ENCODING,
	HTTP1_HDR_CONNECTION,
	HTTP1_HDR_KEEP_ALIVE,
	HTTP1_HDR_PROXY_CONNECTION,
	HTTP1_HDR_TE,
	HTTP1_HDR_TRAILER,
	HTTP1_HDR_UPGRADE,
	HTTP1_HDR_PROXY_AUTHORIZATION,
	HTTP1_HDR_PROXY_AUTHENTICATE,
	HTTP1_HDR_EXPECT,
	HTTP1_HDR_COOKIE,
	HTTP1_HDR_FORWARDED,
	HTTP1_HDR_X_FORWARDED_FOR,
	HTTP1_HDR_X_FORWARDED_PROTO,
	HTTP1_HDR_X_FORWARDED_HOST,
	HTTP1_HDR_ID_COUNT
};

struct http1_header {
	struct gw_str name;  /* validated token, original case */
	struct gw_str value; /* OWS-trimmed; may be empty */
	enum http1_hdr_id id; /* set by the parsers; OTHER when built by
				 hand (rewrite then compares names) */
};

/* The id of a field name (case-insensitive; name bytes are tchars). */
enum http1_hdr_id http1_header_id(const char *name, size_t len);

struct http1_head {
	/* start line */
	int method;            /* enum http_method; requests only */
	struct gw_str method_name; /* method token as sent */
	struct gw_str target;  /* request-target as sent; requests only */
	int status;            /* responses only */
	struct gw_str reason;  /* responses only; may be empty */
	unsigned major, minor; /* HTTP version (1.0 or 1.1) */

	/* header fields, in order; storage owned by the caller */
	struct http1_header *hdrs;
	size_t nhdrs;

	/* framing, decided here from the fields (not from parser flags) */
	enum http1_framing framing;
	uint64_t content_length; /* valid when framing == HTTP1_BODY_LENGTH */

	/* connection management */
	bool keep_alive;      /* version default adjusted by Connection */
	bool upgrade;         /* Upgrade field present and Connection lists
				 "upgrade" (request: wants to switch; response
				 101: switching) */
	struct gw_str upgrade_proto; /* Upgrade field value when upgrade */
	bool expect_continue; /* request: Expect: 100-continue */

	/* Host (requests): host_count counts Host fields; host is the value of
	 * the first one. Authority checks belong to hostname.h. */
	unsigned host_count;
	struct gw_str host;
};

/* Result of http1_find_head_end(). */
enum http1_scan {
	HTTP1_SCAN_NEED_MORE = 0, /* no end of head yet */
	HTTP1_SCAN_DONE,          /* *head_len = bytes up to and incl. the
				     empty line */
};

/* Look for the empty line that ends a head in buf[0..len). *scanned carries
 * the resume point between calls on a growing buffer (start at 0), so
 * repeated calls are linear overall. Accepts CRLF and bare-LF line ends
 * (RFC 9112 §2.2); bare CR is rejected later by the parser. */
enum http1_scan http1_find_head_end(const char *buf, size_t len,
				    size_t *scanned, size_t *head_len);

/* Limits applied while parsing a head. */
struct http1_limits {
	size_t max_headers; /* more fields -> 431 (requests) / error */
};

/* Parse a complete request head buf[0..len) (as found by
 * http1_find_head_end). hdrs has room for limits->max_headers entries.
 * Returns 0 on success, or the HTTP status the client must get:
 *   400 malformed / smuggling attempt, 417 an Expect other than
 *   100-continue, 431 too many fields, 501 unknown method, unsupported
 *   Transfer-Encoding or CONNECT, 505 version not 1.x.
 * *err always receives a static human-readable reason on failure.
 * Requests get framing NONE / LENGTH / CHUNKED, never CLOSE. */
int http1_parse_request(const char *buf, size_t len,
			const struct http1_limits *limits,
			struct http1_header *hdrs, struct http1_head *out,
			const char **err);

/* Parse a complete response head. req_method is the method of the request
 * it answers (a response to HEAD has no body); 1xx, 204 and 304 have none
 * either. Returns 0, or -1 with *err when the response is malformed, split
 * or ambiguously framed (the proxy answers 502). */
int http1_parse_response(const char *buf, size_t len, int req_method,
			 const struct http1_limits *limits,
			 struct http1_header *hdrs, struct http1_head *out,
			 const char **err);

/* The head's bytes moved from `from` (len bytes) to `to`: re-point every
 * slice that pointed into them (start line, fields, host, upgrade_proto).
 * The hdrs array itself is the caller's to move. */
void http1_head_rebase(struct http1_head *h, const char *from, size_t len,
		       const char *to);

/* Find a header (case-insensitive name); returns the first or NULL. */
const struct http1_header *http1_head_get(const struct http1_head *h,
					  const char *name);

/* ---- strict chunked decoder ------------------------------------------ */

enum http1_span {
	HTTP1_SPAN_NEED_MORE = 0, /* need a longer contiguous buffer (a whole
				     line); *span_len = 0 */
	HTTP1_SPAN_FRAMING,       /* drop *span_len bytes (size line, CRLF) */
	HTTP1_SPAN_DATA,          /* *span_len payload bytes to forward */
	HTTP1_SPAN_TRAILER,       /* one complete trailer field line incl. its
				     line end, validated; forward as-is */
	HTTP1_SPAN_END,           /* drop *span_len bytes (the final empty
				     line); the message is complete */
	HTTP1_SPAN_ERROR,         /* malformed; *err says why */
};

struct http1_chunked {
	int state;            /* private: decoder state */
	uint64_t remaining;   /* private: payload bytes left in this chunk */
	size_t max_line;      /* longest size or trailer line accepted */
	size_t trailer_bytes; /* private: trailer bytes seen so far */
	size_t max_trailer_bytes; /* total trailer section limit */
};

/* Prepare a decoder for one chunked body. */
void http1_chunked_init(struct http1_chunked *c, size_t max_line,
			size_t max_trailer_bytes);

/* Examine the next unconsumed body bytes buf[0..len) (len > 0) and classify
 * the leading span. The caller consumes exactly *span_len bytes as the kind
 * says, then calls again with what follows. DATA spans never exceed the
 * chunk's remaining size, may be shorter than len and may end mid-chunk.
 * NEED_MORE is returned only when a line (chunk-size line, trailer field or
 * the CRLF after data) is incomplete and shorter than max_line: give more
 * contiguous bytes. A line longer than max_line is an ERROR.
 * Accepts: hex size (no sign, no 0x, <= 2^60), ";ext" parameters made of
 * tchar/quoted-string/OWS, CRLF line ends only, CRLF after data, trailer
 * fields with token names, an empty line to finish. */
enum http1_span http1_chunked_step(struct http1_chunked *c, const char *buf,
				   size_t len, size_t *span_len,
				   const char **err);

/* True once HTTP1_SPAN_END has been returned. */
bool http1_chunked_done(const struct http1_chunked *c);

#endif
