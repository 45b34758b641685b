/* body.c - body relay with re-framing. */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "body.h"
#include "core/compat.h"

void body_relay_init(struct body_relay *b, enum http1_framing framing,
		     uint64_t content_length, size_t max_line,
		     size_t max_trailer)
{
	*b = (struct body_relay){.framing = framing};
	if (framing == HTTP1_BODY_LENGTH)
		b->remaining = content_length;
	if (framing == HTTP1_BODY_CHUNKED)
		http1_chunked_init(&b->chunked, max_line, max_trailer);
	if (framing == HTTP1_BODY_NONE ||
	    (framing == HTTP1_BODY_LENGTH && content_length == 0))
		b->done = true;
}

/* A trailer line "name: value\r\n" (validated by the decoder) naming a
 * field the gateway acts on. */
static bool trailer_is_control(const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n);
	return colon &&
	       http1_header_id(line, (size_t)(colon - line)) != HTTP1_HDR_OTHER;
}

static enum body_status step_chunked(struct body_relay *b, struct evbuffer *src,
				     struct evbuffer *dst, const char **err)
{
	while (evbuffer_get_length(src)) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(src, -1, NULL, &v, 1) < 1)
			return BODY_MORE;
		size_t n = 0;
		enum http1_span k = http1_chunked_step(&b->chunked, v.iov_base,
						       v.iov_len, &n, err);
		switch (k) {
		case HTTP1_SPAN_NEED_MORE: {
			size_t total = evbuffer_get_length(src);
			if (total <= v.iov_len)
				return BODY_MORE;
			/* The line straddles buffer chains: make the next
			 * max_line bytes contiguous (bounded) and retry. */
			size_t want = v.iov_len + b->chunked.max_line + 2;
			evbuffer_pullup(src, (ev_ssize_t)(want < total ? want : total));
			break;
		}
		case HTTP1_SPAN_FRAMING:
			evbuffer_drain(src, n);
			b->consumed = true;
			break;
		case HTTP1_SPAN_DATA:
			if (b->dechunk) {
				evbuffer_remove_buffer(src, dst, n);
			} else {
				evbuffer_add_printf(dst, "%zx\r\n", n);
				evbuffer_remove_buffer(src, dst, n);
				evbuffer_add(dst, "\r\n", 2);
			}
			b->moved += n;
			b->consumed = true;
			break;
		case HTTP1_SPAN_TRAILER:
			b->consumed = true;
			if (b->dechunk || b->drop_trailers ||
			    trailer_is_control(v.iov_base, n)) {
				evbuffer_drain(src, n);
				break;
			}
			if (!b->trailers_started) {
				evbuffer_add(dst, "0\r\n", 3);
				b->trailers_started = true;
			}
			evbuffer_remove_buffer(src, dst, n);
			break;
		case HTTP1_SPAN_END:
			evbuffer_drain(src, n);
			b->consumed = true;
			if (!b->dechunk) {
				if (!b->trailers_started)
					evbuffer_add(dst, "0\r\n", 3);
				evbuffer_add(dst, "\r\n", 2);
			}
			b->done = true;
			return BODY_DONE;
		case HTTP1_SPAN_ERROR:
		default:
			return BODY_ERROR;
		}
	}
	return BODY_MORE;
}

enum body_status body_relay_step(struct body_relay *b, struct evbuffer *src,
				 struct evbuffer *dst, const char **err)
{
	if (b->done)
		return BODY_DONE;
	switch (b->framing) {
	case HTTP1_BODY_NONE:
		return BODY_DONE;
	case HTTP1_BODY_LENGTH: {
		size_t avail = evbuffer_get_length(src);
		size_t n = avail < b->remaining ? avail : (size_t)b->remaining;
		if (n) {
			evbuffer_remove_buffer(src, dst, n);
			b->remaining -= n;
			b->moved += n;
			b->consumed = true;
		}
		if (b->remaining == 0) {
			b->done = true;
			return BODY_DONE;
		}
		return BODY_MORE;
	}
	case HTTP1_BODY_CHUNKED:
		return step_chunked(b, src, dst, err);
	case HTTP1_BODY_CLOSE: {
		size_t n = evbuffer_get_length(src);
		evbuffer_remove_buffer(src, dst, n);
		b->moved += n;
		b->consumed |= n > 0;
		return BODY_MORE;
	}
	}
	return BODY_ERROR;
}

enum body_status body_relay_eof(struct body_relay *b, const char **err)
{
	if (b->done || b->framing == HTTP1_BODY_CLOSE) {
		b->done = true;
		return BODY_DONE;
	}
	*err = "connection closed before the end of the body";
	return BODY_ERROR;
}
