/* body.h - move one message body between evbuffers, re-framed exactly as
 * it was parsed.
 *
 * Content-Length bodies move byte-exact up to the length (what follows stays
 * in the source: it is the next pipelined message). Chunked bodies are
 * decoded by http1_chunked_step() and written out as canonical chunks, so
 * the receiver sees precisely the framing the gateway understood, never the
 * sender's original bytes. Close-delimited bodies move everything until the
 * caller reports EOF. Data bytes are moved with evbuffer_remove_buffer, not
 * copied.
 *
 * Trailer fields: with drop_trailers none is forwarded (requests). Without
 * it (responses) they pass, except fields the gateway acts on anywhere
 * else (framing, hop-by-hop, Host, Cookie, Forwarded, X-Forwarded-*: see
 * enum http1_hdr_id), which must never arrive out of band.
 */
#ifndef GW_BODY_H
#define GW_BODY_H

#include <stdbool.h>
#include <stdint.h>

#include "http1.h"

struct evbuffer;

enum body_status {
	BODY_MORE = 0, /* the source ran dry; call again with more bytes */
	BODY_DONE,     /* the body is complete */
	BODY_ERROR,    /* malformed chunked framing; *err says why */
};

struct body_relay {
	enum http1_framing framing; /* how the body is delimited */
	uint64_t remaining;         /* LENGTH: bytes still to move */
	struct http1_chunked chunked; /* CHUNKED: decoder state */
	bool trailers_started;      /* CHUNKED: "0\r\n" already written */
	bool done;                  /* BODY_DONE was returned */
	bool dechunk;               /* CHUNKED in, raw bytes out (for an
				       HTTP/1.0 client; trailers dropped) */
	bool drop_trailers;         /* CHUNKED: drop every trailer field
				       (request bodies: apps never see
				       client trailers, as with nginx) */
	bool consumed;              /* some byte was taken from src (body
				       bytes or framing): the body can no
				       longer be relayed again from scratch */
	uint64_t moved;             /* payload bytes moved so far */
};

/* Prepare to relay a body with the given framing (content_length used for
 * LENGTH). max_line bounds chunk-size and trailer lines; max_trailer the
 * trailer section. */
void body_relay_init(struct body_relay *b, enum http1_framing framing,
		     uint64_t content_length, size_t max_line,
		     size_t max_trailer);

/* Move what is available from src to dst. Never reads past the end of the
 * body. BODY_MORE for CLOSE framing until body_relay_eof(). */
enum body_status body_relay_step(struct body_relay *b, struct evbuffer *src,
				 struct evbuffer *dst, const char **err);

/* The source closed. Returns BODY_DONE when that legitimately ends the body
 * (CLOSE framing, or nothing left), BODY_ERROR (truncated) otherwise. */
enum body_status body_relay_eof(struct body_relay *b, const char **err);

#endif
