/* test_http1.c - request/response heads and the strict chunked decoder:
 * what must parse, and every smuggling shape that must not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <http_parser.h>
#include <string.h>

#include "http1.h"

#define MAXH 32

static int parse_req(const char *s, struct http1_head *h,
		     struct http1_header *hdrs, const char **err)
{
	struct http1_limits lim = {.max_headers = MAXH};
	size_t scanned = 0, head_len = 0;
	/* The proxy only parses what find_head_end delimited. */
	if (http1_find_head_end(s, strlen(s), &scanned, &head_len) !=
	    HTTP1_SCAN_DONE)
		return -1;
	return http1_parse_request(s, head_len, &lim, hdrs, h, err);
}

static int req_status(const char *s)
{
	struct http1_head h;
	struct http1_header hdrs[MAXH];
	const char *err = NULL;
	int st = parse_req(s, &h, hdrs, &err);
	if (st != 0)
		assert_non_null(err); /* every rejection says why */
	return st;
}

static void test_simple_get(void **state)
{
	struct http1_head h;
	struct http1_header hdrs[MAXH];
	const char *err = NULL;
	assert_int_equal(parse_req("GET /a?b=1 HTTP/1.1\r\nHost: Ex.com\r\n"
				   "X-A:  v  \r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_int_equal(h.method, HTTP_GET);
	assert_int_equal(h.major, 1);
	assert_int_equal(h.minor, 1);
	assert_int_equal(h.target.len, 6);
	assert_memory_equal(h.target.p, "/a?b=1", 6);
	assert_int_equal(h.framing, HTTP1_BODY_NONE);
	assert_true(h.keep_alive);
	assert_int_equal(h.host_count, 1);
	assert_memory_equal(h.host.p, "Ex.com", 6);
	const struct http1_header *x = http1_head_get(&h, "x-a");
	assert_non_null(x);
	assert_int_equal(x->value.len, 1); /* OWS trimmed */
}

static void test_framing_from_fields(void **state)
{
	struct http1_head h;
	struct http1_header hdrs[MAXH];
	const char *err = NULL;
	assert_int_equal(parse_req("POST / HTTP/1.1\r\nHost: a\r\n"
				   "Content-Length: 42\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_int_equal(h.framing, HTTP1_BODY_LENGTH);
	assert_int_equal(h.content_length, 42);
	assert_int_equal(parse_req("POST / HTTP/1.1\r\nHost: a\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_int_equal(h.framing, HTTP1_BODY_CHUNKED);
	/* RFC 9110 8.6 allows folding identical duplicates; like nginx we
	 * refuse any repeated Content-Length (http-parser does too). */
	assert_int_equal(parse_req("POST / HTTP/1.1\r\nHost: a\r\n"
				   "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
				   &h, hdrs, &err),
			 400);
}

static void test_connection_semantics(void **state)
{
	struct http1_head h;
	struct http1_header hdrs[MAXH];
	const char *err = NULL;
	assert_int_equal(parse_req("GET / HTTP/1.0\r\n\r\n", &h, hdrs, &err), 0);
	assert_false(h.keep_alive);
	assert_int_equal(parse_req("GET / HTTP/1.0\r\nConnection: keep-alive"
				   "\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_true(h.keep_alive);
	assert_int_equal(parse_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: "
				   "foo, close\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_false(h.keep_alive);
	assert_int_equal(parse_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: "
				   "Upgrade\r\nUpgrade: websocket\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_true(h.upgrade);
	assert_int_equal(parse_req("GET / HTTP/1.1\r\nHost: a\r\n"
				   "Upgrade: websocket\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_false(h.upgrade); /* not listed in Connection */
	assert_int_equal(parse_req("POST / HTTP/1.1\r\nHost: a\r\nExpect: "
				   "100-continue\r\nContent-Length: 1\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_true(h.expect_continue);
}

static void test_asterisk_options_and_expect(void **state)
{
	struct http1_head h;
	struct http1_header hdrs[MAXH];
	const char *err = NULL;
	assert_int_equal(parse_req("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &h,
				   hdrs, &err),
			 0);
	assert_int_equal(h.method, HTTP_OPTIONS);
	/* 100-continue is case-insensitive; from a 1.0 client it is ignored */
	assert_int_equal(parse_req("POST / HTTP/1.1\r\nHost: a\r\nExpect: "
				   "100-Continue\r\nContent-Length: 1\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_true(h.expect_continue);
	assert_int_equal(parse_req("POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
				   "Content-Length: 1\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_false(h.expect_continue);
}

static void test_header_ids(void **state)
{
	struct http1_head h;
	struct http1_header hdrs[MAXH];
	const char *err = NULL;
	assert_int_equal(parse_req("GET / HTTP/1.1\r\nhOST: a\r\nX-Forwarded-FOR: b"
				   "\r\nforwarded: c\r\nX-Other: d\r\nTE: e\r\n"
				   "Transfer-Encodinh: f\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_int_equal(h.nhdrs, 6);
	assert_int_equal(hdrs[0].id, HTTP1_HDR_HOST);
	assert_int_equal(hdrs[1].id, HTTP1_HDR_X_FORWARDED_FOR);
	assert_int_equal(hdrs[2].id, HTTP1_HDR_FORWARDED);
	assert_int_equal(hdrs[3].id, HTTP1_HDR_OTHER);
	assert_int_equal(hdrs[4].id, HTTP1_HDR_TE);
	assert_int_equal(hdrs[5].id, HTTP1_HDR_OTHER);
	assert_int_equal(http1_header_id("Proxy-Authorization", 19),
			 HTTP1_HDR_PROXY_AUTHORIZATION);
	assert_int_equal(http1_header_id("Content-Lengtj", 14), HTTP1_HDR_OTHER);
}

static void test_host_counting(void **state)
{
	struct http1_head h;
	struct http1_header hdrs[MAXH];
	const char *err = NULL;
	assert_int_equal(parse_req("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_int_equal(h.host_count, 2); /* the proxy answers 400 */
	assert_int_equal(parse_req("GET / HTTP/1.1\r\n\r\n", &h, hdrs, &err), 0);
	assert_int_equal(h.host_count, 0);
}

/* Each of these must be refused with the given status. */
static const struct {
	const char *req;
	int status;
} bad[] = {
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	 "Transfer-Encoding: chunked\r\n\r\n", 400},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	 "Content-Length: 3\r\n\r\n", 400},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	 "Content-Length: 4\r\n\r\n", 400},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", 400},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
	 "99999999999999999999999\r\n\r\n", 400},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
	 400},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer Encoding: chunked\r\n\r\n",
	 400},
	{"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400}, /* obs-fold */
	{"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400},  /* bare CR */
	{"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", 400},
	{"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400},
	{"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
	{"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip"
	 "\r\n\r\n", 501},
	{"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
	/* the asterisk form is for OPTIONS only (RFC 9112 3.2.4) */
	{"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"POST * HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 400},
	/* a list of lengths, even equal ones */
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400},
	/* expectations other than 100-continue (RFC 9110 10.1.1) */
	{"GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417},
	{"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\n\r\n", 417},
	{"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
	 "Expect: foo\r\n\r\n", 417},
	{"GET / HTTP/1.0\r\nExpect: x\r\n\r\n", 417},
	{"FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 501},
	{"get / HTTP/1.1\r\nHost: a\r\n\r\n", 501},
	{"GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n", 400},
	{"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x01\r\n\r\n", 400},
	{"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n", 400},
	{"GET / HTTP/0.9\r\n\r\n", 505},
};

static void test_smuggling_shapes_rejected(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int st = req_status(bad[i].req);
		if (st != bad[i].status)
			fail_msg("case %zu: got %d, want %d: %s", i, st,
				 bad[i].status, bad[i].req);
	}
}

/* http-parser reads every head too and must agree (http1_parser.c): what
 * the strict pass lets through but http-parser refuses is refused. */
static void test_http_parser_must_agree(void **state)
{
	struct http1_head h;
	struct http1_header hdrs[MAXH];
	const char *err = NULL;
	assert_int_equal(parse_req("GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n",
				   &h, hdrs, &err),
			 400);
	assert_string_equal(err, "invalid URL");
	assert_int_equal(req_status("GET ?q HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
	/* empty values and trailing whitespace are read alike */
	assert_int_equal(parse_req("GET / HTTP/1.1\r\nHost: a\r\nX:\r\n"
				   "Y: \r\nZ:  v  \r\n\r\n",
				   &h, hdrs, &err),
			 0);
	assert_int_equal(h.nhdrs, 4);
	assert_int_equal(h.hdrs[1].value.len, 0);
	assert_int_equal(h.hdrs[2].value.len, 0);
	assert_true(gw_str_eq(h.hdrs[3].value, GW_STR_LIT("v")));
	/* bare-LF heads, upgrades and 1.0 heads are read alike */
	assert_int_equal(req_status("GET / HTTP/1.1\nHost: a\n\n"), 0);
	assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nConnection: "
				    "upgrade\r\nUpgrade: websocket\r\n\r\n"),
			 0);
	assert_int_equal(req_status("GET / HTTP/1.0\r\n\r\n"), 0);
}

static void test_too_many_headers(void **state)
{
	char buf[4096] = "GET / HTTP/1.1\r\nHost: a\r\n";
	for (int i = 0; i < MAXH + 1; i++)
		strncat(buf, "X-A: b\r\n", sizeof(buf) - strlen(buf) - 1);
	strncat(buf, "\r\n", sizeof(buf) - strlen(buf) - 1);
	assert_int_equal(req_status(buf), 431);
}

static void test_find_head_end_incremental(void **state)
{
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
	size_t scanned = 0, head_len = 0;
	/* Feed it a byte at a time: the scan resumes where it stopped. */
	for (size_t n = 1; n < strlen(s) - 4; n++)
		assert_int_equal(http1_find_head_end(s, n, &scanned, &head_len),
				 HTTP1_SCAN_NEED_MORE);
	assert_int_equal(http1_find_head_end(s, strlen(s), &scanned, &head_len),
			 HTTP1_SCAN_DONE);
	assert_int_equal(head_len, strlen(s) - 4);
}

static int resp(const char *s, int method, struct http1_head *h)
{
	static struct http1_header hdrs[MAXH];
	struct http1_limits lim = {.max_headers = MAXH};
	const char *err = NULL;
	size_t scanned = 0, head_len = 0;
	if (http1_find_head_end(s, strlen(s), &scanned, &head_len) !=
	    HTTP1_SCAN_DONE)
		return -2;
	return http1_parse_response(s, head_len, method, &lim, hdrs, h, &err);
}

static void test_responses(void **state)
{
	struct http1_head h;
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
			      HTTP_GET, &h),
			 0);
	assert_int_equal(h.framing, HTTP1_BODY_LENGTH);
	assert_int_equal(resp("HTTP/1.1 200 OK\r\n\r\n", HTTP_GET, &h), 0);
	assert_int_equal(h.framing, HTTP1_BODY_CLOSE);
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
			      HTTP_HEAD, &h),
			 0);
	assert_int_equal(h.framing, HTTP1_BODY_NONE);
	assert_int_equal(resp("HTTP/1.1 204 No Content\r\n\r\n", HTTP_GET, &h),
			 0);
	assert_int_equal(h.framing, HTTP1_BODY_NONE);
	assert_int_equal(resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 9"
			      "\r\n\r\n",
			      HTTP_GET, &h),
			 0);
	assert_int_equal(h.framing, HTTP1_BODY_NONE);
	assert_int_equal(resp("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
			      HTTP_GET, &h),
			 0);
	assert_int_equal(h.status, 103);
	assert_int_equal(h.framing, HTTP1_BODY_NONE);
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
			      "\r\n\r\n",
			      HTTP_GET, &h),
			 0);
	assert_int_equal(h.framing, HTTP1_BODY_CHUNKED);
}

static void test_bad_responses(void **state)
{
	struct http1_head h;
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
			      "Content-Length: 4\r\n\r\n",
			      HTTP_GET, &h),
			 -1);
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
			      "Transfer-Encoding: chunked\r\n\r\n",
			      HTTP_GET, &h),
			 -1);
	assert_int_equal(resp("HTTP/1.1 2000 OK\r\n\r\n", HTTP_GET, &h), -1);
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
			      HTTP_GET, &h),
			 -1);
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", HTTP_GET,
			      &h),
			 -1);
}

/* Run the decoder over a whole body; returns 0 and the payload, or -1. */
static int dechunk(const char *in, size_t len, char *out, size_t *outlen)
{
	struct http1_chunked c;
	http1_chunked_init(&c, 64, 1024);
	size_t pos = 0;
	*outlen = 0;
	while (pos < len) {
		size_t n = 0;
		const char *err = NULL;
		switch (http1_chunked_step(&c, in + pos, len - pos, &n, &err)) {
		case HTTP1_SPAN_DATA:
			memcpy(out + *outlen, in + pos, n);
			*outlen += n;
			/* fall through */
		case HTTP1_SPAN_FRAMING:
		case HTTP1_SPAN_TRAILER:
			pos += n;
			break;
		case HTTP1_SPAN_END:
			pos += n;
			return pos == len ? 0 : -1;
		case HTTP1_SPAN_NEED_MORE:
		case HTTP1_SPAN_ERROR:
		default:
			return -1;
		}
	}
	return -1;
}

static void test_chunked_good(void **state)
{
	char out[256];
	size_t n;
	const char ok[] = "5\r\nhello\r\n6;ext=1;q=\"a b\"\r\n world\r\n"
			  "0\r\nX-Sum: 1\r\n\r\n";
	assert_int_equal(dechunk(ok, sizeof(ok) - 1, out, &n), 0);
	assert_int_equal(n, 11);
	assert_memory_equal(out, "hello world", 11);
	const char upper[] = "A\r\n0123456789\r\n0\r\n\r\n";
	assert_int_equal(dechunk(upper, sizeof(upper) - 1, out, &n), 0);
	assert_int_equal(n, 10);
}

static void test_chunked_bad(void **state)
{
	static const char *const cases[] = {
		"5\r\nhelloXX0\r\n\r\n",        /* junk instead of CRLF */
		"5\r\nhello\n0\r\n\r\n",        /* bare LF after data */
		"5;a\nb\r\nhello\r\n0\r\n\r\n", /* bare LF in an extension */
		"-5\r\nhello\r\n0\r\n\r\n",
		"0x5\r\nhello\r\n0\r\n\r\n",
		"+5\r\nhello\r\n0\r\n\r\n",
		" 5\r\nhello\r\n0\r\n\r\n",
		"5\rhello\r\n0\r\n\r\n",
		"g\r\n",
		"fffffffffffffffff\r\n", /* overflow */
		"0\r\nBad Trailer: x\r\n\r\n",
	};
	char out[256];
	size_t n;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (dechunk(cases[i], strlen(cases[i]), out, &n) != -1)
			fail_msg("chunked case %zu accepted: %s", i, cases[i]);
}

static void test_chunked_long_line_is_error(void **state)
{
	struct http1_chunked c;
	http1_chunked_init(&c, 16, 1024);
	char line[64];
	memset(line, '0', sizeof(line));
	size_t n = 0;
	const char *err = NULL;
	assert_int_equal(http1_chunked_step(&c, line, sizeof(line), &n, &err),
			 HTTP1_SPAN_ERROR);
	assert_non_null(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_get),
		cmocka_unit_test(test_framing_from_fields),
		cmocka_unit_test(test_connection_semantics),
		cmocka_unit_test(test_host_counting),
		cmocka_unit_test(test_asterisk_options_and_expect),
		cmocka_unit_test(test_header_ids),
		cmocka_unit_test(test_smuggling_shapes_rejected),
		cmocka_unit_test(test_http_parser_must_agree),
		cmocka_unit_test(test_too_many_headers),
		cmocka_unit_test(test_find_head_end_incremental),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_bad_responses),
		cmocka_unit_test(test_chunked_good),
		cmocka_unit_test(test_chunked_bad),
		cmocka_unit_test(test_chunked_long_line_is_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
