/* fuzz_util.c - checks the targets share (declared in fuzz.h). */
#include <event2/buffer.h>
#include <http_parser.h>
#include <stdbool.h>

#include "body.h"
#include "fuzz.h"

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* The parsed head against buf[0..len): slices in place, and the fields
 * are the lines after the start line, split at their first colon and
 * trimmed, in order. */
void fuzz_check_head(const char *buf, size_t len, const struct http1_head *h,
		     size_t max_headers, bool request)
{
	FUZZ_CHECK(h->major == 1 && h->minor <= 1);
	FUZZ_CHECK(h->nhdrs <= max_headers);
	if (request) {
		FUZZ_CHECK(h->method_name.len > 0 &&
			   fuzz_inside(h->method_name, buf, len));
		const char *m = http_method_str((enum http_method)h->method);
		FUZZ_CHECK(fuzz_same(m, strlen(m), h->method_name.p,
				     h->method_name.len));
		FUZZ_CHECK(h->target.len > 0 &&
			   fuzz_inside(h->target, buf, len));
		for (size_t i = 0; i < h->target.len; i++)
			FUZZ_CHECK(h->target.p[i] > 0x20 &&
				   h->target.p[i] < 0x7f);
		FUZZ_CHECK(h->framing != HTTP1_BODY_CLOSE);
	}
	const char *line = memchr(buf, '\n', len);
	FUZZ_CHECK(line != NULL);
	line++;
	size_t i = 0;
	unsigned hosts = 0, cls = 0, tes = 0;
	for (;;) {
		const char *lf = memchr(line, '\n', (size_t)(buf + len - line));
		FUZZ_CHECK(lf != NULL);
		const char *end = lf > line && lf[-1] == '\r' ? lf - 1 : lf;
		if (end == line) {
			line = lf + 1;
			break;
		}
		FUZZ_CHECK(i < h->nhdrs);
		const struct http1_header *f = &h->hdrs[i++];
		const char *colon = memchr(line, ':', (size_t)(end - line));
		FUZZ_CHECK(colon != NULL);
		const char *v = colon + 1, *ve = end;
		while (v < ve && is_ows(*v))
			v++;
		while (ve > v && is_ows(ve[-1]))
			ve--;
		FUZZ_CHECK(fuzz_same(f->name.p, f->name.len, line,
				     (size_t)(colon - line)));
		FUZZ_CHECK(
			f->value.len == 0 ||
			(f->value.p == v && f->value.len == (size_t)(ve - v)));
		FUZZ_CHECK(f->value.len == (size_t)(ve - v));
		FUZZ_CHECK(!memchr(f->value.p, '\0', f->value.len) &&
			   !memchr(f->value.p, '\r', f->value.len));
		hosts += gw_str_ieq_cstr(f->name, "Host");
		cls += gw_str_ieq_cstr(f->name, "Content-Length");
		tes += gw_str_ieq_cstr(f->name, "Transfer-Encoding");
		line = lf + 1;
	}
	FUZZ_CHECK(i == h->nhdrs);
	FUZZ_CHECK(line == buf + len); /* the head ends at its empty line */
	if (request) {
		FUZZ_CHECK(h->host_count == hosts);
		FUZZ_CHECK(h->framing != HTTP1_BODY_LENGTH || (cls && !tes));
		FUZZ_CHECK(h->framing != HTTP1_BODY_CHUNKED ||
			   (tes == 1 && !cls));
		FUZZ_CHECK(h->framing != HTTP1_BODY_NONE || (!cls && !tes));
	}
}

/* The payload of a body starting at p[0..len), decoded in one piece by a
 * dechunking relay: how many bytes the body takes, or -1 if it is not
 * complete or malformed. */
long fuzz_body_one_shot(const char *p, size_t len, const struct http1_head *h,
			size_t max_trailer, struct evbuffer *payload)
{
	struct evbuffer *src = evbuffer_new();
	evbuffer_add(src, p, len);
	struct body_relay b;
	body_relay_init(&b, h->framing, h->content_length, FUZZ_CHUNK_LINE_MAX,
			max_trailer);
	b.dechunk = true;
	const char *err = NULL;
	enum body_status st = body_relay_step(&b, src, payload, &err);
	long used =
		st == BODY_DONE ? (long)(len - evbuffer_get_length(src)) : -1;
	evbuffer_free(src);
	return used;
}

char *fuzz_dup(const char *p, size_t n, const char *prefix)
{
	size_t pre = prefix ? strlen(prefix) : 0;
	char *s = malloc(pre + n + 1);
	FUZZ_CHECK(s != NULL);
	memcpy(s, prefix ? prefix : "", pre);
	memcpy(s + pre, p, n);
	s[pre + n] = '\0';
	return s;
}
