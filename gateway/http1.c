/* http1.c - HTTP/1.x heads: the strict pass, http-parser's agreement,
 * framing and connection facts. The chunked decoder is http1_chunked.c.
 *
 * Order of work for a head: (1) one pass over the bytes validates the
 * start line and every field line with RFC 9112 grammar and records each
 * field as slices plus an id (which is where the lenient Debian build of
 * http-parser would let smuggling vectors through); (2) http-parser reads
 * the same bytes and must agree on every element (http1_parser.c); (3)
 * the framing (length, chunked, close) and connection facts are decided
 * from the recorded fields, never from the parser's flags.
 */
#include <http_parser.h>
#include <string.h>

#include "http1_int.h"
#include "core/compat.h"

/* ---- head end ----------------------------------------------------------- */

enum http1_scan http1_find_head_end(const char *buf, size_t len,
				    size_t *scanned, size_t *head_len)
{
	size_t i = *scanned > 2 ? *scanned - 2 : 0;
	while (i < len) {
		const char *lf = memchr(buf + i, '\n', len - i);
		if (!lf) {
			i = len;
			break;
		}
		i = (size_t)(lf - buf);
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
		i++;
	}
	*scanned = i < len ? i : len;
	return HTTP1_SCAN_NEED_MORE;
}

/* ---- one strict pass over the head ------------------------------------- */

/* Byte classes for the head grammar (RFC 9110 §5.6.2, §5.5): http1_int.h. */
const unsigned char http1_byte_class[256] = {
	['\t'] = HTTP1_C_FIELD,
	[' '] = HTTP1_C_FIELD,
	['!'] = HTTP1_C_TCHAR | HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['"'] = HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['#' ... '\''] = HTTP1_C_TCHAR | HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['('...')'] = HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['*' ... '+'] = HTTP1_C_TCHAR | HTTP1_C_FIELD | HTTP1_C_VCHAR,
	[','] = HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['-' ... '.'] = HTTP1_C_TCHAR | HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['/'] = HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['0' ... '9'] = HTTP1_C_TCHAR | HTTP1_C_FIELD | HTTP1_C_VCHAR,
	[':' ... '@'] = HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['A' ... 'Z'] = HTTP1_C_TCHAR | HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['['] = HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['\\'] = HTTP1_C_FIELD | HTTP1_C_VCHAR,
	[']'] = HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['^' ... '`'] = HTTP1_C_TCHAR | HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['a' ... 'z'] = HTTP1_C_TCHAR | HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['{'] = HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['|'] = HTTP1_C_TCHAR | HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['}'] = HTTP1_C_FIELD | HTTP1_C_VCHAR,
	['~'] = HTTP1_C_TCHAR | HTTP1_C_FIELD | HTTP1_C_VCHAR,
	[0x80 ... 0xff] = HTTP1_C_FIELD,
};

/* lit is lowercase; name bytes are tchars, for which c | 0x20 lowercases
 * letters and leaves every other tchar as it is. */
static bool name_is(const char *p, const char *lit, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)p[i] | 0x20) != (unsigned char)lit[i])
			return false;
	return true;
}

enum http1_hdr_id http1_header_id(const char *p, size_t n)
{
#define IS(lit) (n == sizeof(lit) - 1 && name_is(p, lit, n))
	switch (n) {
	case 2:
		return IS("te") ? HTTP1_HDR_TE : HTTP1_HDR_OTHER;
	case 4:
		return IS("host") ? HTTP1_HDR_HOST : HTTP1_HDR_OTHER;
	case 6:
		return IS("cookie")   ? HTTP1_HDR_COOKIE
		       : IS("expect") ? HTTP1_HDR_EXPECT
				      : HTTP1_HDR_OTHER;
	case 7:
		return IS("upgrade")   ? HTTP1_HDR_UPGRADE
		       : IS("trailer") ? HTTP1_HDR_TRAILER
				       : HTTP1_HDR_OTHER;
	case 9:
		return IS("forwarded") ? HTTP1_HDR_FORWARDED : HTTP1_HDR_OTHER;
	case 10:
		return IS("connection")   ? HTTP1_HDR_CONNECTION
		       : IS("keep-alive") ? HTTP1_HDR_KEEP_ALIVE
					  : HTTP1_HDR_OTHER;
	case 14:
		return IS("content-length") ? HTTP1_HDR_CONTENT_LENGTH
					    : HTTP1_HDR_OTHER;
	case 15:
		return IS("x-forwarded-for") ? HTTP1_HDR_X_FORWARDED_FOR
					     : HTTP1_HDR_OTHER;
	case 16:
		return IS("proxy-connection")   ? HTTP1_HDR_PROXY_CONNECTION
		       : IS("x-forwarded-host") ? HTTP1_HDR_X_FORWARDED_HOST
						: HTTP1_HDR_OTHER;
	case 17:
		return IS("transfer-encoding")   ? HTTP1_HDR_TRANSFER_ENCODING
		       : IS("x-forwarded-proto") ? HTTP1_HDR_X_FORWARDED_PROTO
						 : HTTP1_HDR_OTHER;
	case 18:
		return IS("proxy-authenticate") ? HTTP1_HDR_PROXY_AUTHENTICATE
						: HTTP1_HDR_OTHER;
	case 19:
		return IS("proxy-authorization") ? HTTP1_HDR_PROXY_AUTHORIZATION
						 : HTTP1_HDR_OTHER;
	default:
		return HTTP1_HDR_OTHER;
	}
#undef IS
}

/* The start line: [0, *pos) on return, *pos just past its LF. Its content
 * (without CRLF or LF) is [0, *end). False on a bare CR or no LF. */
static bool start_line(const char *buf, size_t len, size_t *pos, size_t *end)
{
	const char *lf = memchr(buf, '\n', len);
	if (!lf)
		return false;
	size_t e = (size_t)(lf - buf);
	*pos = e + 1;
	if (e > 0 && buf[e - 1] == '\r')
		e--;
	if (memchr(buf, '\r', e))
		return false;
	*end = e;
	return true;
}

/* Field lines from pos to the empty line, each checked against RFC 9112
 * §5 and stored (name, OWS-trimmed value, id) into h->hdrs; at most max
 * of them. Returns 0 or an HTTP status (400/431) with *err. */
static int parse_fields(const char *buf, size_t len, size_t pos, size_t max,
			struct http1_head *h, const char **err)
{
	const unsigned char *b = (const unsigned char *)buf;
	for (;;) {
		size_t s = pos, i = pos;
		if (i < len && b[i] == '\n')
			return 0; /* the empty line (bare LF) */
		if (i + 1 < len && b[i] == '\r' && b[i + 1] == '\n')
			return 0;
		if (i < len && (b[i] == ' ' || b[i] == '\t')) {
			*err = "obsolete line folding";
			return 400;
		}
		while (i < len && http1_is_tchar(b[i]))
			i++;
		if (i >= len || b[i] != ':' || i == s) {
			const char *lf = memchr(buf + s, '\n', len - s);
			size_t e = lf ? (size_t)(lf - buf) : len;
			if (i < len && b[i] == '\r' &&
			    (i + 1 >= len || b[i + 1] != '\n'))
				*err = "bare CR or unterminated line in the head";
			else if (i < len && b[i] != ':' &&
				 memchr(buf + s, ':', e - s))
				*err = "invalid byte in a field name";
			else
				*err = "field line without a name";
			return 400;
		}
		size_t name_end = i++;
		while (i < len && (b[i] == ' ' || b[i] == '\t'))
			i++;
		size_t vs = i;
		while (i < len && http1_is_field_byte(b[i]))
			i++;
		size_t ve = i;
		if (i < len && b[i] == '\r' && i + 1 < len && b[i + 1] == '\n')
			pos = i + 2;
		else if (i < len && b[i] == '\n')
			pos = i + 1;
		else {
			*err = i < len && b[i] == '\r'
				       ? "bare CR or unterminated line in the head"
			       : i < len ? "invalid byte in a field value"
					 : "bare CR or unterminated line in the head";
			return 400;
		}
		while (ve > vs && (b[ve - 1] == ' ' || b[ve - 1] == '\t'))
			ve--;
		if (h->nhdrs >= max) {
			*err = "too many header fields";
			return 431;
		}
		h->hdrs[h->nhdrs++] = (struct http1_header){
			.name = gw_str_make(buf + s, name_end - s),
			.value = gw_str_make(buf + vs, ve - vs),
			.id = http1_header_id(buf + s, name_end - s),
		};
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

/* http-parser's method vocabulary (its enum and names), matched exactly
 * (methods are case-sensitive). */
static const struct {
	const char *name;
	unsigned char len;
	unsigned char method;
} methods[] = {
#define XX(num, name, string) {#string, sizeof(#string) - 1, num},
	HTTP_METHOD_MAP(XX)
#undef XX
};

static int method_lookup(const char *p, size_t n)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].len == n && methods[i].name[0] == p[0] &&
		    memcmp(methods[i].name, p, n) == 0)
			return methods[i].method;
	return -1;
}

/* method SP request-target SP HTTP-version */
static int parse_request_line(const char *buf, size_t e, struct http1_head *h,
			      const char **err)
{
	size_t i = 0;
	while (i < e && http1_is_tchar((unsigned char)buf[i]))
		i++;
	if (i == 0 || i >= e || buf[i] != ' ') {
		*err = "malformed request line";
		return 400;
	}
	h->method_name = gw_str_make(buf, i);
	size_t t = ++i;
	while (i < e && http1_is_vchar((unsigned char)buf[i]))
		i++;
	if (i == t || i >= e || buf[i] != ' ') {
		*err = "malformed request target";
		return 400;
	}
	h->target = gw_str_make(buf + t, i - t);
	int st = check_version(buf + i + 1, e - i - 1, &h->major, &h->minor);
	if (st) {
		*err = st == 505 ? "HTTP version not supported"
				 : "malformed HTTP version";
		return st;
	}
	int m = method_lookup(buf, h->method_name.len);
	if (m < 0) {
		*err = "unknown method";
		return 501;
	}
	h->method = m;
	return 0;
}

/* HTTP-version SP 3DIGIT [SP reason] */
static int parse_status_line(const char *buf, size_t e, struct http1_head *h,
			     const char **err)
{
	if (e < 12 || buf[8] != ' ' ||
	    check_version(buf, 8, &h->major, &h->minor) != 0) {
		*err = "malformed status line";
		return -1;
	}
	const char *d = buf + 9;
	if (d[0] < '1' || d[0] > '5' || d[1] < '0' || d[1] > '9' ||
	    d[2] < '0' || d[2] > '9' || (e > 12 && d[3] != ' ')) {
		*err = "malformed status code";
		return -1;
	}
	h->status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
	for (const char *p = d + 3; p < buf + e; p++) {
		if (!http1_is_field_byte((unsigned char)*p)) {
			*err = "invalid byte in the reason phrase";
			return -1;
		}
	}
	size_t rs = e > 13 ? 13 : e;
	h->reason = gw_str_make(buf + rs, e - rs);
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
	unsigned expect_count;
	const struct http1_header *expect;
};

/* Content-Length = 1*DIGIT, one field only (a list, even of equal values,
 * or a repeated field is refused, as nginx and http-parser do). */
static void gather_length(struct facts *f, struct gw_str v)
{
	uint64_t n;
	if (f->cl_count++ || !gw_str_to_u64(v, &n))
		f->cl_bad = true;
	else
		f->cl = n;
}

static void gather_connection(struct facts *f, struct gw_str list)
{
	struct gw_str e;
	while (gw_str_next_elem(&list, &e)) {
		if (e.len == 5 && gw_str_ieq(e, GW_STR_LIT("close")))
			f->conn_close = true;
		else if (e.len == 10 && gw_str_ieq(e, GW_STR_LIT("keep-alive")))
			f->conn_keep_alive = true;
		else if (e.len == 7 && gw_str_ieq(e, GW_STR_LIT("upgrade")))
			f->conn_upgrade = true;
	}
}

static void gather(struct http1_head *h, struct facts *f)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < h->nhdrs; i++) {
		const struct http1_header *hd = &h->hdrs[i];
		switch (hd->id) {
		case HTTP1_HDR_CONTENT_LENGTH:
			gather_length(f, hd->value);
			break;
		case HTTP1_HDR_TRANSFER_ENCODING:
			f->te_count++;
			f->te = hd->value;
			break;
		case HTTP1_HDR_HOST:
			if (h->host_count++ == 0)
				h->host = hd->value;
			break;
		case HTTP1_HDR_CONNECTION:
			gather_connection(f, hd->value);
			break;
		case HTTP1_HDR_UPGRADE:
			f->upgrade = hd;
			break;
		case HTTP1_HDR_EXPECT:
			f->expect_count++;
			f->expect = hd;
			break;
		default:
			break;
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
	size_t pos = 0, e;
	if (!start_line(buf, len, &pos, &e)) {
		*err = "bare CR in the request line";
		return 400;
	}
	int st = parse_request_line(buf, e, out, err);
	if (st)
		return st;
	st = parse_fields(buf, len, pos, limits->max_headers, out, err);
	if (st)
		return st;
	if (out->method == HTTP_CONNECT) {
		*err = "CONNECT is not supported";
		return 501;
	}
	st = http1_parser_check(buf, len, true, out, err);
	if (st)
		return st;
	/* RFC 9112 §3.2.4: the asterisk form is only for OPTIONS. */
	if (out->target.len == 1 && out->target.p[0] == '*' &&
	    out->method != HTTP_OPTIONS) {
		*err = "asterisk-form target with a method other than OPTIONS";
		return 400;
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
	/* RFC 9110 §10.1.1: 100-continue is the only expectation there is;
	 * anything else is refused (417). An HTTP/1.0 client's 100-continue
	 * is ignored (it cannot read a 100). */
	if (f.expect) {
		if (f.expect_count > 1 ||
		    !gw_str_ieq(f.expect->value, GW_STR_LIT("100-continue"))) {
			*err = "unsupported expectation";
			return 417;
		}
		out->expect_continue = out->minor >= 1;
	}
	return 0;
}

int http1_parse_response(const char *buf, size_t len, int req_method,
			 const struct http1_limits *limits,
			 struct http1_header *hdrs, struct http1_head *out,
			 const char **err)
{
	head_init(out, hdrs);
	size_t pos = 0, e;
	if (!start_line(buf, len, &pos, &e)) {
		*err = "bare CR in the status line";
		return -1;
	}
	if (parse_status_line(buf, e, out, err) != 0)
		return -1;
	if (parse_fields(buf, len, pos, limits->max_headers, out, err) != 0)
		return -1;
	if (http1_parser_check(buf, len, false, out, err) != 0)
		return -1;

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

static void rebase(struct gw_str *s, const char *from, size_t len,
		   const char *to)
{
	if (s->p && s->p >= from && s->p <= from + len)
		s->p = to + (s->p - from);
}

void http1_head_rebase(struct http1_head *h, const char *from, size_t len,
		       const char *to)
{
	rebase(&h->method_name, from, len, to);
	rebase(&h->target, from, len, to);
	rebase(&h->reason, from, len, to);
	rebase(&h->host, from, len, to);
	rebase(&h->upgrade_proto, from, len, to);
	for (size_t i = 0; h->hdrs && i < h->nhdrs; i++) {
		rebase(&h->hdrs[i].name, from, len, to);
		rebase(&h->hdrs[i].value, from, len, to);
	}
}

const struct http1_header *http1_head_get(const struct http1_head *h,
					  const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < h->nhdrs; i++)
		if (h->hdrs[i].name.len == n &&
		    gw_str_ieq(h->hdrs[i].name, gw_str_make(name, n)))
			return &h->hdrs[i];
	return NULL;
}
