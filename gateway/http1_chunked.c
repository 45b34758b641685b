/* http1_chunked.c - the strict chunked decoder (http1.h explains why it
 * is ours: Debian's lenient http-parser accepts framing we must not). */
#include <string.h>

#include "http1_int.h"

/* ---- strict chunked decoder ------------------------------------------------------- */

enum chunk_state {
	CH_SIZE = 0,  /* expecting a chunk-size line */
	CH_DATA,      /* inside chunk data */
	CH_DATA_END,  /* expecting CRLF after data */
	CH_TRAILER,   /* trailer fields or the final empty line */
	CH_DONE,      /* message complete */
};

#define CHUNK_SIZE_MAX ((uint64_t)1 << 60)

void http1_chunked_init(struct http1_chunked *c, size_t max_line,
			size_t max_trailer_bytes)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE;
	c->max_line = max_line;
	c->max_trailer_bytes = max_trailer_bytes;
}

bool http1_chunked_done(const struct http1_chunked *c)
{
	return c->state == CH_DONE;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t skip_ws(const char *p, size_t i, size_t n)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i;
}

/* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ) */
static bool valid_extensions(const char *p, size_t i, size_t n)
{
	for (;;) {
		i = skip_ws(p, i, n);
		if (i == n)
			return true;
		if (p[i++] != ';')
			return false;
		i = skip_ws(p, i, n);
		size_t s = i;
		while (i < n && http1_is_tchar((unsigned char)p[i]))
			i++;
		if (i == s)
			return false;
		size_t j = skip_ws(p, i, n);
		if (j == n || p[j] != '=') {
			/* no value; only whitespace may precede ';' or end */
			if (j < n && p[j] != ';')
				return false;
			i = j;
			continue;
		}
		i = skip_ws(p, j + 1, n);
		if (i < n && p[i] == '"') {
			for (i++;; i++) {
				if (i >= n)
					return false;
				unsigned char c = (unsigned char)p[i];
				if (c == '"') {
					i++;
					break;
				}
				if (c == '\\') {
					if (++i >= n)
						return false;
					c = (unsigned char)p[i];
					if (!http1_is_field_byte(c))
						return false;
					continue;
				}
				if (!http1_is_field_byte(c))
					return false;
			}
		} else {
			s = i;
			while (i < n && http1_is_tchar((unsigned char)p[i]))
				i++;
			if (i == s)
				return false;
		}
	}
}

/* Find the complete line at buf[0..): *line_len includes the LF. */
static enum http1_span need_line(const struct http1_chunked *c,
				 const char *buf, size_t len, size_t *line_len,
				 const char **err)
{
	size_t lim = len < c->max_line ? len : c->max_line;
	const char *lf = memchr(buf, '\n', lim);
	if (!lf) {
		if (len >= c->max_line) {
			*err = "chunk line too long";
			return HTTP1_SPAN_ERROR;
		}
		return HTTP1_SPAN_NEED_MORE;
	}
	size_t e = (size_t)(lf - buf);
	if (e == 0 || buf[e - 1] != '\r' || memchr(buf, '\r', e - 1)) {
		*err = "chunk line not ended by CRLF";
		return HTTP1_SPAN_ERROR;
	}
	*line_len = e + 1;
	return HTTP1_SPAN_FRAMING;
}

static enum http1_span size_line(struct http1_chunked *c, const char *buf,
				 size_t len, size_t *span_len, const char **err)
{
	size_t n;
	enum http1_span k = need_line(c, buf, len, &n, err);
	if (k != HTTP1_SPAN_FRAMING)
		return k;
	size_t content = n - 2, i = 0;
	uint64_t size = 0;
	while (i < content && hexval((unsigned char)buf[i]) >= 0) {
		size = size * 16 + (uint64_t)hexval((unsigned char)buf[i]);
		if (++i > 16 || size > CHUNK_SIZE_MAX) {
			*err = "chunk size too large";
			return HTTP1_SPAN_ERROR;
		}
	}
	if (i == 0 || !valid_extensions(buf, i, content)) {
		*err = "malformed chunk size line";
		return HTTP1_SPAN_ERROR;
	}
	c->remaining = size;
	c->state = size ? CH_DATA : CH_TRAILER;
	*span_len = n;
	return HTTP1_SPAN_FRAMING;
}

static enum http1_span trailer_line(struct http1_chunked *c, const char *buf,
				    size_t len, size_t *span_len,
				    const char **err)
{
	if (buf[0] == '\r' || buf[0] == '\n') {
		if (buf[0] == '\n') {
			*err = "bare LF ends the trailer section";
			return HTTP1_SPAN_ERROR;
		}
		if (len < 2)
			return HTTP1_SPAN_NEED_MORE;
		if (buf[1] != '\n') {
			*err = "bare CR in the trailer section";
			return HTTP1_SPAN_ERROR;
		}
		c->state = CH_DONE;
		*span_len = 2;
		return HTTP1_SPAN_END;
	}
	size_t n;
	enum http1_span k = need_line(c, buf, len, &n, err);
	if (k != HTTP1_SPAN_FRAMING)
		return k;
	const char *colon = memchr(buf, ':', n - 2);
	bool ok = buf[0] != ' ' && buf[0] != '\t' && colon && colon != buf;
	for (const char *p = buf; ok && p < colon; p++)
		ok = http1_is_tchar((unsigned char)*p);
	for (const char *p = colon ? colon + 1 : buf; ok && p < buf + n - 2; p++)
		ok = http1_is_field_byte((unsigned char)*p);
	if (!ok) {
		*err = "malformed trailer field";
		return HTTP1_SPAN_ERROR;
	}
	c->trailer_bytes += n;
	if (c->trailer_bytes > c->max_trailer_bytes) {
		*err = "trailer section too large";
		return HTTP1_SPAN_ERROR;
	}
	*span_len = n;
	return HTTP1_SPAN_TRAILER;
}

enum http1_span http1_chunked_step(struct http1_chunked *c, const char *buf,
				   size_t len, size_t *span_len,
				   const char **err)
{
	*span_len = 0;
	if (len == 0)
		return HTTP1_SPAN_NEED_MORE;
	switch ((enum chunk_state)c->state) {
	case CH_SIZE:
		return size_line(c, buf, len, span_len, err);
	case CH_DATA: {
		size_t n = len < c->remaining ? len : (size_t)c->remaining;
		c->remaining -= n;
		if (c->remaining == 0)
			c->state = CH_DATA_END;
		*span_len = n;
		return HTTP1_SPAN_DATA;
	}
	case CH_DATA_END:
		if (buf[0] != '\r' || (len >= 2 && buf[1] != '\n')) {
			*err = "chunk data not followed by CRLF";
			return HTTP1_SPAN_ERROR;
		}
		if (len < 2)
			return HTTP1_SPAN_NEED_MORE;
		c->state = CH_SIZE;
		*span_len = 2;
		return HTTP1_SPAN_FRAMING;
	case CH_TRAILER:
		return trailer_line(c, buf, len, span_len, err);
	case CH_DONE:
		break;
	}
	*err = "data after the end of the chunked body";
	return HTTP1_SPAN_ERROR;
}
