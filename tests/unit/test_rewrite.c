/* test_rewrite.c - the heads the gateway sends on: hop-by-hop removal,
 * X-Forwarded-*, cookie stripping, re-emitted framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "rewrite.h"

#define MAXH 32

static struct http1_header hdrs[MAXH];
static char outbuf[8192];

static const char *rewrite_req(const char *raw, bool trusted, bool upgrade,
			       const char *strip)
{
	struct http1_head h;
	struct http1_limits lim = {.max_headers = MAXH};
	const char *err = NULL;
	assert_int_equal(http1_parse_request(raw, strlen(raw), &lim, hdrs, &h,
					     &err),
			 0);
	struct rewrite_req_opts o = {
		.path = h.target,
		.host_out = h.host,
		.client_ip = GW_STR_LIT("203.0.113.9"),
		.peer_trusted = trusted,
		.upgrade = upgrade && h.upgrade,
		.strip_cookie = strip ? gw_str_make(strip, strlen(strip))
				      : GW_STR_NULL,
	};
	struct evbuffer *b = evbuffer_new();
	assert_int_equal(rewrite_request_head(b, &h, &o), 0);
	size_t n = evbuffer_get_length(b);
	assert_true(n < sizeof(outbuf));
	evbuffer_remove(b, outbuf, n);
	outbuf[n] = '\0';
	evbuffer_free(b);
	return outbuf;
}

static bool has_line(const char *head, const char *line)
{
	char want[512];
	snprintf(want, sizeof(want), "\r\n%s\r\n", line);
	return strstr(head, want) != NULL;
}

static bool has_name(const char *head, const char *name)
{
	char want[128];
	snprintf(want, sizeof(want), "\r\n%s:", name);
	return strcasestr(head, want) != NULL;
}

static void test_hop_by_hop_removed(void **state)
{
	const char *out = rewrite_req(
		"GET /p HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, "
		"X-Secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n"
		"TE: trailers\r\nTrailer: X\r\nUpgrade: h2c\r\n"
		"Proxy-Authorization: Basic x\r\nX-Secret: s\r\nX-Keep: k\r\n\r\n",
		false, false, NULL);
	assert_true(strncmp(out, "GET /p HTTP/1.1\r\n", 17) == 0);
	static const char *const gone[] = {
		"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
		"Upgrade", "Proxy-Authorization", "X-Secret",
	};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		if (has_name(out, gone[i]))
			fail_msg("%s was forwarded:\n%s", gone[i], out);
	assert_true(has_line(out, "X-Keep: k"));
	assert_true(has_line(out, "Host: app.test"));
}

static void test_forwarded_untrusted_replaced(void **state)
{
	const char *out = rewrite_req(
		"GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\n"
		"X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\r\n",
		false, false, NULL);
	assert_true(has_line(out, "X-Forwarded-For: 203.0.113.9"));
	assert_true(has_line(out, "X-Forwarded-Proto: http"));
	assert_true(has_line(out, "X-Forwarded-Host: app.test"));
	assert_null(strstr(out, "6.6.6.6"));
	assert_null(strstr(out, "evil"));
}

static void test_rfc7239_forwarded_only_from_trusted(void **state)
{
	const char *out = rewrite_req(
		"GET / HTTP/1.1\r\nHost: app.test\r\nForwarded: for=6.6.6.6;"
		"proto=https\r\nFORWARDED: host=evil\r\n\r\n",
		false, false, NULL);
	assert_false(has_name(out, "Forwarded"));
	assert_null(strstr(out, "6.6.6.6"));
	assert_null(strstr(out, "evil"));
	out = rewrite_req("GET / HTTP/1.1\r\nHost: app.test\r\nForwarded: "
			  "for=192.0.2.1\r\n\r\n",
			  true, false, NULL);
	assert_true(has_line(out, "Forwarded: for=192.0.2.1"));
}

static void test_connection_listed_x_forwarded_dropped(void **state)
{
	const char *out = rewrite_req(
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-forwarded-for, "
		"X-A\r\nX-Forwarded-For: 1.2.3.4\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
		true, false, NULL);
	assert_true(has_line(out, "X-Forwarded-For: 203.0.113.9"));
	assert_false(has_name(out, "X-A"));
	assert_true(has_line(out, "X-B: 2"));
}

static void test_forwarded_trusted_kept(void **state)
{
	const char *out = rewrite_req(
		"GET / HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 1.2.3.4\r\n"
		"X-Forwarded-Proto: https\r\n\r\n",
		true, false, NULL);
	assert_true(has_line(out, "X-Forwarded-For: 1.2.3.4, 203.0.113.9"));
	assert_true(has_line(out, "X-Forwarded-Proto: https"));
}

static void test_framing_reemitted(void **state)
{
	const char *out = rewrite_req(
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\n", false,
		false, NULL);
	assert_true(has_line(out, "Content-Length: 7"));
	out = rewrite_req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
			  "chunked\r\n\r\n",
			  false, false, NULL);
	assert_true(has_line(out, "Transfer-Encoding: chunked"));
	assert_false(has_name(out, "Content-Length"));
	out = rewrite_req("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue"
			  "\r\nContent-Length: 1\r\n\r\n",
			  false, false, NULL);
	assert_false(has_name(out, "Expect")); /* the gateway answers it */
}

static void test_upgrade_kept_for_upgrades(void **state)
{
	const char *out = rewrite_req(
		"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
		"Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
		false, true, NULL);
	assert_true(has_name(out, "Upgrade"));
	assert_true(strcasestr(out, "\r\nConnection: upgrade\r\n") != NULL);
	assert_true(has_line(out, "Sec-WebSocket-Key: k"));
}

static void test_session_cookie_stripped(void **state)
{
	const char *out = rewrite_req(
		"GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; gw_session=SECRET; "
		"b=2\r\nCookie: gw_session=SECRET\r\nCookie: x_gw_session=ok\r\n"
		"\r\n",
		false, false, "gw_session");
	assert_null(strstr(out, "SECRET"));
	assert_true(has_line(out, "Cookie: a=1; b=2"));
	assert_true(has_line(out, "Cookie: x_gw_session=ok"));
	/* the field that held only the session is gone, not left empty */
	assert_null(strstr(out, "Cookie: \r\n"));
	/* pairs re-joined with "; " may be longer than what was sent */
	out = rewrite_req("GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1;b=2;c=3;"
			  "gw_session=S;d=4\r\n\r\n",
			  false, false, "gw_session");
	assert_true(has_line(out, "Cookie: a=1; b=2; c=3; d=4"));
}

static void test_absolute_form_to_origin(void **state)
{
	struct http1_head h;
	struct http1_limits lim = {.max_headers = MAXH};
	const char *err = NULL;
	const char *raw = "GET http://a.test/x?y HTTP/1.1\r\nHost: b\r\n\r\n";
	assert_int_equal(http1_parse_request(raw, strlen(raw), &lim, hdrs, &h,
					     &err),
			 0);
	struct rewrite_req_opts o = {
		.path = GW_STR_LIT("/x?y"),
		.host_out = GW_STR_LIT("a.test"),
		.client_ip = GW_STR_LIT("10.0.0.1"),
	};
	struct evbuffer *b = evbuffer_new();
	assert_int_equal(rewrite_request_head(b, &h, &o), 0);
	size_t n = evbuffer_get_length(b);
	evbuffer_remove(b, outbuf, n);
	outbuf[n] = '\0';
	evbuffer_free(b);
	assert_true(strncmp(outbuf, "GET /x?y HTTP/1.1\r\n", 19) == 0);
	assert_true(has_line(outbuf, "Host: a.test"));
	assert_false(has_line(outbuf, "Host: b"));
}

static void test_response_rewrite(void **state)
{
	struct http1_head h;
	struct http1_limits lim = {.max_headers = MAXH};
	const char *err = NULL;
	const char *raw = "HTTP/1.1 200 OK\r\nConnection: X-Drop, keep-alive\r\n"
			  "X-Drop: 1\r\nKeep-Alive: t=1\r\nContent-Length: 2\r\n"
			  "Set-Cookie: s=1\r\n\r\n";
	assert_int_equal(http1_parse_response(raw, strlen(raw), HTTP_GET, &lim,
					      hdrs, &h, &err),
			 0);
	struct rewrite_resp_opts o = {.close = true};
	struct evbuffer *b = evbuffer_new();
	assert_int_equal(rewrite_response_head(b, &h, &o), 0);
	size_t n = evbuffer_get_length(b);
	evbuffer_remove(b, outbuf, n);
	outbuf[n] = '\0';
	evbuffer_free(b);
	assert_true(strncmp(outbuf, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_false(has_name(outbuf, "X-Drop"));
	assert_false(has_name(outbuf, "Keep-Alive"));
	assert_true(has_line(outbuf, "Content-Length: 2"));
	assert_true(has_line(outbuf, "Set-Cookie: s=1"));
	assert_true(has_line(outbuf, "Connection: close"));
}

/* Found by tests/fuzz/fuzz_http1_response: a 204 answering HEAD kept the
 * app's Content-Length, which RFC 9110 §8.6 forbids on 1xx and 204; 304
 * and 200 answering HEAD keep it (it describes the representation). */
static const char *rewrite_resp(const char *raw, int method)
{
	struct http1_head h;
	struct http1_limits lim = {.max_headers = MAXH};
	const char *err = NULL;
	assert_int_equal(http1_parse_response(raw, strlen(raw), method, &lim,
					      hdrs, &h, &err),
			 0);
	struct rewrite_resp_opts o = {.head_req = method == HTTP_HEAD};
	struct evbuffer *b = evbuffer_new();
	assert_int_equal(rewrite_response_head(b, &h, &o), 0);
	size_t n = evbuffer_get_length(b);
	assert_true(n < sizeof(outbuf));
	evbuffer_remove(b, outbuf, n);
	outbuf[n] = '\0';
	evbuffer_free(b);
	return outbuf;
}

static void test_no_length_on_204_or_1xx(void **state)
{
	assert_false(has_name(rewrite_resp("HTTP/1.1 204 No Content\r\n"
					   "Content-Length: 0\r\n\r\n",
					   HTTP_HEAD),
			      "Content-Length"));
	assert_false(has_name(rewrite_resp("HTTP/1.1 103 Early Hints\r\n"
					   "Content-Length: 5\r\n\r\n",
					   HTTP_HEAD),
			      "Content-Length"));
	assert_true(has_line(rewrite_resp("HTTP/1.1 200 OK\r\n"
					  "Content-Length: 5\r\n\r\n",
					  HTTP_HEAD),
			     "Content-Length: 5"));
	assert_true(has_line(rewrite_resp("HTTP/1.1 304 Not Modified\r\n"
					  "Content-Length: 5\r\n\r\n",
					  HTTP_GET),
			     "Content-Length: 5"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hop_by_hop_removed),
		cmocka_unit_test(test_forwarded_untrusted_replaced),
		cmocka_unit_test(test_forwarded_trusted_kept),
		cmocka_unit_test(test_rfc7239_forwarded_only_from_trusted),
		cmocka_unit_test(test_connection_listed_x_forwarded_dropped),
		cmocka_unit_test(test_framing_reemitted),
		cmocka_unit_test(test_upgrade_kept_for_upgrades),
		cmocka_unit_test(test_session_cookie_stripped),
		cmocka_unit_test(test_absolute_form_to_origin),
		cmocka_unit_test(test_response_rewrite),
		cmocka_unit_test(test_no_length_on_204_or_1xx),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
