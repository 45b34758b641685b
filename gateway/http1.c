/* http1.c - HTTP/1.x heads (http-parser + strict checks) and a strict
 * chunked decoder.
 *
 * Order of work for a head: (1) a raw pass over the bytes validates the
 * start line and every field line with RFC 9112 grammar, which is where the
 * lenient Debian build of http-parser would let smuggling vectors through;
 * (2) http-parser splits the head into method, target, status and fields;
 * (3) the framing (length, chunked, close) and connection facts are decided
 * here from the fields, never from the parser's flags.
 */
#include <http_parser.h>
#include <string.h>

#include "http1.h"
#include "core/compat.h"

/* ---- head end ----------------------------------------------------------- */

enum http1_scan http1_find_head_end(const char *buf, size_t len,
				    size_t *scanned, size_t *head_len)
{
	size_t i = *scanned > 2 ? *scanned - 2 : 0;
	for (; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 >= len)
			break;
		if (buf[i + 1] == '\n') {
			*head_len = i + 2;
			return HTTP1_SCAN_DONE;
		}
		if (buf[i + 1] == '\r') {
			if (i + 2 >= len)
				break;
			if (buf[i + 2] == '\n') {
				*head_len = i + 3;
				return HTTP1_SCAN_DONE;
			}
		}
	}
	*scanned = i < len ? i : len;
	return HTTP1_SCAN_NEED_MORE;
}

/* ---- raw validation -------------------------------------------------------- */

static bool is_vchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

/* Field value bytes: VCHAR, SP, HTAB, obs-text. */
static bool is_field_byte(unsigned char c)
{
	return c == ' ' || c == '\t' || is_vchar(c) || c >= 0x80;
}

/* One line of buf starting at *pos: sets [*start, *end) to its content
 * without the line end and advances *pos past it. Returns false on a bare
 * CR anywhere in the line or when no LF is left. */
static bool next_line(const char *buf, size_t len, size_t *pos, size_t *start,
		      size_t *end)
{
	const char *lf = memchr(buf + *pos, '\n', len - *pos);
	if (!lf)
		return false;
	size_t e = (size_t)(lf - buf);
	*start = *pos;
	*pos = e + 1;
	if (e > *start && buf[e - 1] == '\r')
		e--;
	if (memchr(buf + *start, '\r', e - *start))
		return false; /* bare CR */
	*end = e;
	return true;
}

/* Validate "name: value" lines from pos to the empty line. Returns 0 or
 * an HTTP status (400/431) with *err. */
static int validate_fields(const char *buf, size_t len, size_t pos,
			   size_t max_fields, const char **err)
{
	size_t n = 0;
	for (;;) {
		size_t s, e;
		if (!next_line(buf, len, &pos, &s, &e)) {
			*err = "bare CR or unterminated line in the head";
			return 400;
		}
		if (s == e)
			return 0; /* the empty line */
		if (buf[s] == ' ' || buf[s] == '\t') {
			*err = "obsolete line folding";
			return 400;
		}
		const char *colon = memchr(buf + s, ':', e - s);
		if (!colon || colon == buf + s) {
			*err = "field line without a name";
			return 400;
		}
		for (const char *p = buf + s; p < colon; p++) {
			if (!gw_is_tchar((unsigned char)*p)) {
				*err = "invalid byte in a field name";
				return 400;
			}
		}
		for (const char *p = colon + 1; p < buf + e; p++) {
			if (!is_field_byte((unsigned char)*p)) {
				*err = "invalid byte in a field value";
				return 400;
			}
		}
		if (++n > max_fields) {
			*err = "too many header fields";
			return 431;
		}
	}
}

/* "HTTP/" DIGIT "." DIGIT; returns 0 for 1.0/1.1, 505 for another valid
 * version, 400 for garbage. */
static int check_version(const char *p, size_t n, unsigned *major,
			 unsigned *minor)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' ||
	    p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
		return 400;
	*major = (unsigned)(p[5] - '0');
	*minor = (unsigned)(p[7] - '0');
	if (*major != 1 || *minor > 1)
		return 505;
	return 0;
}

/* method SP request-target SP HTTP-version */
static int validate_request_line(const char *buf, size_t s, size_t e,
				 struct http1_head *h, const char **err)
{
	size_t i = s;
	while (i < e && gw_is_tchar((unsigned char)buf[i]))
		i++;
	if (i == s || i >= e || buf[i] != ' ') {
		*err = "malformed request line";
		return 400;
	}
	h->method_name = gw_str_make(buf + s, i - s);
	size_t t = ++i;
	while (i < e && is_vchar((unsigned char)buf[i]))
		i++;
	if (i == t || i >= e || buf[i] != ' ') {
		*err = "malformed request target";
		return 400;
	}
	h->target = gw_str_make(buf + t, i - t);
	int st = check_version(buf + i + 1, e - i - 1, &h->major, &h->minor);
	if (st)
		*err = st == 505 ? "HTTP version not supported"
				 : "malformed HTTP version";
	return st;
}

/* HTTP-version SP 3DIGIT [SP reason] */
static int validate_status_line(const char *buf, size_t s, size_t e,
				struct http1_head *h, const char **err)
{
	if (e - s < 12 || buf[s + 8] != ' ' ||
	    check_version(buf + s, 8, &h->major, &h->minor) != 0) {
		*err = "malformed status line";
		return -1;
	}
	const char *d = buf + s + 9;
	if (d[0] < '1' || d[0] > '5' || d[1] < '0' || d[1] > '9' ||
	    d[2] < '0' || d[2] > '9' || (e - s > 12 && d[3] != ' ')) {
		*err = "malformed status code";
		return -1;
	}
	h->status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
	for (const char *p = d + 3; p < buf + e; p++) {
		if (!is_field_byte((unsigned char)*p)) {
			*err = "invalid byte in the reason phrase";
			return -1;
		}
	}
	size_t rs = e - s > 13 ? s + 13 : e;
	h->reason = gw_str_make(buf + rs, e - rs);
	return 0;
}

/* ---- http-parser pass --------------------------------------------------------- */

struct split_ctx {
	struct http1_head *h;
	size_t max;
	bool in_value; /* last callback was a value */
};

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct split_ctx *x = p->data;
	struct http1_head *h = x->h;
	if (h->nhdrs && !x->in_value &&
	    h->hdrs[h->nhdrs - 1].name.p + h->hdrs[h->nhdrs - 1].name.len == at) {
		h->hdrs[h->nhdrs - 1].name.len += len; /* continued piece */
		return 0;
	}
	if (h->nhdrs == x->max)
		return 1;
	h->hdrs[h->nhdrs++] = (struct http1_header){gw_str_make(at, len),
						    gw_str_make(at, 0)};
	x->in_value = false;
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	struct split_ctx *x = p->data;
	struct http1_header *f = &x->h->hdrs[x->h->nhdrs - 1];
	if (x->in_value)
		f->value.len = (size_t)(at + len - f->value.p);
	else
		f->value = gw_str_make(at, len);
	x->in_value = true;
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	/* Only the head is fed; tell the parser not to expect a body so a
	 * response to HEAD or a 1xx does not confuse it. */
	return 1;
}

static const http_parser_settings split_settings = {
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers_complete,
};

static int split(const char *buf, size_t len, enum http_parser_type type,
		 struct http1_head *h, size_t max, http_parser *p)
{
	static bool size_set;
	if (!size_set) {
		/* Our own limits (config) are the real ones. */
		http_parser_set_max_header_size(UINT32_MAX / 2);
		size_set = true;
	}
	struct split_ctx x = {.h = h, .max = max};
	http_parser_init(p, type);
	p->data = &x;
	size_t n = http_parser_execute(p, &split_settings, buf, len);
	enum http_errno e = HTTP_PARSER_ERRNO(p);
	if (e != HPE_OK && e != HPE_PAUSED)
		return e == HPE_INVALID_METHOD ? 501 : 400;
	if (n != len)
		return 400;
	for (size_t i = 0; i < h->nhdrs; i++)
		h->hdrs[i].value = gw_str_trim(h->hdrs[i].value);
	return 0;
}

/* ---- framing and connection facts ------------------------------------------------- */

struct facts {
	unsigned cl_count;
	uint64_t cl;
	bool cl_bad;
	unsigned te_count;
	struct gw_str te;
	bool conn_close, conn_keep_alive, conn_upgrade;
	const struct http1_header *upgrade;
	const struct http1_header *expect;
};

static void gather(struct http1_head *h, struct facts *f)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < h->nhdrs; i++) {
		const struct http1_header *hd = &h->hdrs[i];
		if (gw_str_ieq_cstr(hd->name, "Content-Length")) {
			struct gw_str list = hd->value, e;
			bool any = false;
			while (gw_str_next_elem(&list, &e)) {
				uint64_t v;
				any = true;
				if (!gw_str_to_u64(e, &v) ||
				    (f->cl_count && v != f->cl))
					f->cl_bad = true;
				f->cl = v;
				f->cl_count++;
			}
			if (!any)
				f->cl_bad = true;
		} else if (gw_str_ieq_cstr(hd->name, "Transfer-Encoding")) {
			f->te_count++;
			f->te = hd->value;
		} else if (gw_str_ieq_cstr(hd->name, "Host")) {
			if (h->host_count++ == 0)
				h->host = hd->value;
		} else if (gw_str_ieq_cstr(hd->name, "Connection")) {
			f->conn_close |= gw_str_list_has(hd->value, "close");
			f->conn_keep_alive |=
				gw_str_list_has(hd->value, "keep-alive");
			f->conn_upgrade |= gw_str_list_has(hd->value, "upgrade");
		} else if (gw_str_ieq_cstr(hd->name, "Upgrade")) {
			f->upgrade = hd;
		} else if (gw_str_ieq_cstr(hd->name, "Expect")) {
			f->expect = hd;
		}
	}
}

static void connection_facts(struct http1_head *h, const struct facts *f)
{
	h->keep_alive = h->minor >= 1 ? !f->conn_close
				      : (f->conn_keep_alive && !f->conn_close);
	if (f->upgrade && f->conn_upgrade) {
		h->upgrade = true;
		h->upgrade_proto = f->upgrade->value;
	}
}

/* Is the TE value exactly one "chunked" coding? 1 yes, 0 other codings,
 * -1 chunked more than once. */
static int te_is_chunked(struct gw_str te)
{
	struct gw_str list = te, e;
	unsigned n = 0, chunked = 0;
	bool last_chunked = false;
	while (gw_str_next_elem(&list, &e)) {
		n++;
		last_chunked = gw_str_ieq_cstr(e, "chunked");
		chunked += last_chunked;
	}
	if (chunked > 1)
		return -1;
	return n == 1 && last_chunked ? 1 : 0;
}

static void head_init(struct http1_head *h, struct http1_header *hdrs)
{
	memset(h, 0, sizeof(*h));
	h->hdrs = hdrs;
}

int http1_parse_request(const char *buf, size_t len,
			const struct http1_limits *limits,
			struct http1_header *hdrs, struct http1_head *out,
			const char **err)
{
	head_init(out, hdrs);
	size_t pos = 0, s, e;
	if (!next_line(buf, len, &pos, &s, &e)) {
		*err = "bare CR in the request line";
		return 400;
	}
	int st = validate_request_line(buf, s, e, out, err);
	if (st)
		return st;
	st = validate_fields(buf, len, pos, limits->max_headers, err);
	if (st)
		return st;

	http_parser p;
	st = split(buf, len, HTTP_REQUEST, out, limits->max_headers, &p);
	if (st) {
		*err = st == 501 ? "unknown method" : "malformed request head";
		return st;
	}
	out->method = (int)p.method;
	if (out->method == HTTP_CONNECT) {
		*err = "CONNECT is not supported";
		return 501;
	}

	struct facts f;
	gather(out, &f);
	if (f.te_count && f.cl_count) {
		*err = "both Content-Length and Transfer-Encoding";
		return 400;
	}
	if (f.cl_bad) {
		*err = "invalid or conflicting Content-Length";
		return 400;
	}
	if (f.te_count) {
		if (out->minor == 0) {
			*err = "Transfer-Encoding in an HTTP/1.0 request";
			return 400;
		}
		if (f.te_count > 1) {
			*err = "more than one Transfer-Encoding field";
			return 501;
		}
		int c = te_is_chunked(f.te);
		if (c < 0) {
			*err = "chunked applied more than once";
			return 400;
		}
		if (c == 0) {
			*err = "unsupported transfer coding";
			return 501;
		}
		out->framing = HTTP1_BODY_CHUNKED;
	} else if (f.cl_count) {
		out->framing = HTTP1_BODY_LENGTH;
		out->content_length = f.cl;
	}
	connection_facts(out, &f);
	if (f.expect && out->minor >= 1 &&
	    gw_str_ieq_cstr(f.expect->value, "100-continue"))
		out->expect_continue = true;
	return 0;
}

int http1_parse_response(const char *buf, size_t len, int req_method,
			 const struct http1_limits *limits,
			 struct http1_header *hdrs, struct http1_head *out,
			 const char **err)
{
	head_init(out, hdrs);
	size_t pos = 0, s, e;
	if (!next_line(buf, len, &pos, &s, &e)) {
		*err = "bare CR in the status line";
		return -1;
	}
	if (validate_status_line(buf, s, e, out, err) != 0)
		return -1;
	if (validate_fields(buf, len, pos, limits->max_headers, err) != 0)
		return -1;
	http_parser p;
	if (split(buf, len, HTTP_RESPONSE, out, limits->max_headers, &p) != 0) {
		*err = "malformed response head";
		return -1;
	}

	struct facts f;
	gather(out, &f);
	out->host_count = 0;
	out->host = GW_STR_NULL;
	if (f.te_count && f.cl_count) {
		*err = "both Content-Length and Transfer-Encoding";
		return -1;
	}
	if (f.cl_bad) {
		*err = "invalid or conflicting Content-Length";
		return -1;
	}
	connection_facts(out, &f);
	bool no_body = out->status < 200 || out->status == 204 ||
		       out->status == 304 || req_method == HTTP_HEAD;
	if (no_body) {
		out->framing = HTTP1_BODY_NONE;
	} else if (f.te_count) {
		int c = f.te_count == 1 ? te_is_chunked(f.te) : 0;
		if (c < 0) {
			*err = "chunked applied more than once";
			return -1;
		}
		/* RFC 9112 §6.3: a final coding other than chunked means
		 * the body runs to the close. */
		out->framing = c ? HTTP1_BODY_CHUNKED : HTTP1_BODY_CLOSE;
	} else if (f.cl_count) {
		out->framing = HTTP1_BODY_LENGTH;
		out->content_length = f.cl;
	} else {
		out->framing = HTTP1_BODY_CLOSE;
	}
	if (out->framing == HTTP1_BODY_CLOSE)
		out->keep_alive = false;
	return 0;
}

const struct http1_header *http1_head_get(const struct http1_head *h,
					  const char *name)
{
	for (size_t i = 0; i < h->nhdrs; i++)
		if (gw_str_ieq_cstr(h->hdrs[i].name, name))
			return &h->hdrs[i];
	return NULL;
}

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
		while (i < n && gw_is_tchar((unsigned char)p[i]))
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
					if (!is_field_byte(c))
						return false;
					continue;
				}
				if (!is_field_byte(c))
					return false;
			}
		} else {
			s = i;
			while (i < n && gw_is_tchar((unsigned char)p[i]))
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
		ok = gw_is_tchar((unsigned char)*p);
	for (const char *p = colon ? colon + 1 : buf; ok && p < buf + n - 2; p++)
		ok = is_field_byte((unsigned char)*p);
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
