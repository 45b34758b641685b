/* test_body.c - body relay: exact moves, re-chunking, pipelined leftovers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <string.h>

#include "body.h"

static char *drain_str(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = test_malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	return s;
}

static void test_length_stops_at_boundary(void **state)
{
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	struct body_relay b;
	const char *err = NULL;
	body_relay_init(&b, HTTP1_BODY_LENGTH, 5, 4096, 4096);
	evbuffer_add(src, "hel", 3);
	assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_MORE);
	evbuffer_add(src, "loGET / HTTP/1.1\r\n", 18);
	assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_DONE);
	char *out = drain_str(dst), *rest = drain_str(src);
	assert_string_equal(out, "hello");
	/* The next pipelined request stays in the source. */
	assert_string_equal(rest, "GET / HTTP/1.1\r\n");
	assert_int_equal(b.moved, 5);
	test_free(out);
	test_free(rest);
	evbuffer_free(src);
	evbuffer_free(dst);
}

static char *relay_chunked(const char *in, bool drop_trailers)
{
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	struct body_relay b;
	const char *err = NULL;
	body_relay_init(&b, HTTP1_BODY_CHUNKED, 0, 4096, 4096);
	b.drop_trailers = drop_trailers;
	evbuffer_add(src, in, strlen(in));
	assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_DONE);
	assert_true(b.consumed);
	char *out = drain_str(dst);
	evbuffer_free(src);
	evbuffer_free(dst);
	return out;
}

static void test_request_trailers_dropped(void **state)
{
	char *out = relay_chunked("3\r\nabc\r\n0\r\nContent-Length: 40\r\n"
				  "X-Sum: 1\r\n\r\n",
				  true);
	assert_string_equal(out, "3\r\nabc\r\n0\r\n\r\n");
	test_free(out);
}

static void test_response_trailers_lose_control_fields(void **state)
{
	char *out = relay_chunked("3\r\nabc\r\n0\r\ncontent-length: 40\r\n"
				  "X-Sum: 1\r\nTransfer-Encoding: chunked\r\n"
				  "Host: evil\r\nConnection: close\r\n\r\n",
				  false);
	assert_string_equal(out, "3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n");
	test_free(out);
}

static void test_nothing_consumed_until_bytes_move(void **state)
{
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	struct body_relay b;
	const char *err = NULL;
	body_relay_init(&b, HTTP1_BODY_CHUNKED, 0, 4096, 4096);
	assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_MORE);
	assert_false(b.consumed);
	evbuffer_add(src, "0\r\n\r\n", 5);
	assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_DONE);
	assert_true(b.consumed); /* no payload moved, but framing was taken */
	assert_int_equal(b.moved, 0);
	evbuffer_free(src);
	evbuffer_free(dst);
}

static void test_chunked_rechunked(void **state)
{
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	struct body_relay b;
	const char *err = NULL;
	body_relay_init(&b, HTTP1_BODY_CHUNKED, 0, 4096, 4096);
	const char *in = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
	evbuffer_add(src, in, strlen(in));
	assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_DONE);
	char *out = drain_str(dst), *rest = drain_str(src);
	/* Extensions are not forwarded; trailers are. */
	assert_string_equal(out, "5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n");
	assert_string_equal(rest, "NEXT");
	assert_int_equal(b.moved, 11);
	test_free(out);
	test_free(rest);
	evbuffer_free(src);
	evbuffer_free(dst);
}

/* Byte-by-byte arrival must give the same payload and end state. */
static void test_chunked_dribble(void **state)
{
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	struct body_relay b;
	const char *err = NULL;
	body_relay_init(&b, HTTP1_BODY_CHUNKED, 0, 4096, 4096);
	const char *in = "3\r\nabc\r\na\r\n0123456789\r\n0\r\n\r\n";
	size_t n = strlen(in);
	enum body_status st = BODY_MORE;
	for (size_t i = 0; i < n; i++) {
		evbuffer_add(src, in + i, 1);
		st = body_relay_step(&b, src, dst, &err);
		assert_int_not_equal(st, BODY_ERROR);
		if (i + 1 < n)
			assert_int_equal(st, BODY_MORE);
	}
	assert_int_equal(st, BODY_DONE);
	assert_int_equal(b.moved, 13);
	/* Decode the re-chunked output again: the payload must match. */
	struct evbuffer *again = evbuffer_new();
	struct body_relay b2;
	body_relay_init(&b2, HTTP1_BODY_CHUNKED, 0, 4096, 4096);
	b2.dechunk = true;
	assert_int_equal(body_relay_step(&b2, dst, again, &err), BODY_DONE);
	char *payload = drain_str(again);
	assert_string_equal(payload, "abc0123456789");
	test_free(payload);
	evbuffer_free(again);
	evbuffer_free(src);
	evbuffer_free(dst);
}

static void test_chunked_bad_framing(void **state)
{
	const char *bad[] = {
		"5\r\nhelloXX0\r\n\r\n", /* two arbitrary bytes after data */
		"zz\r\n",                /* not hex */
		"5\nhello\r\n",         /* bare LF */
		"-5\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
		struct body_relay b;
		const char *err = NULL;
		body_relay_init(&b, HTTP1_BODY_CHUNKED, 0, 4096, 4096);
		evbuffer_add(src, bad[i], strlen(bad[i]));
		assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_ERROR);
		assert_non_null(err);
		evbuffer_free(src);
		evbuffer_free(dst);
	}
}

static void test_close_delimited_and_eof(void **state)
{
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	struct body_relay b;
	const char *err = NULL;
	body_relay_init(&b, HTTP1_BODY_CLOSE, 0, 4096, 4096);
	evbuffer_add(src, "abc", 3);
	assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_MORE);
	assert_int_equal(body_relay_eof(&b, &err), BODY_DONE);
	assert_int_equal(evbuffer_get_length(dst), 3);

	body_relay_init(&b, HTTP1_BODY_LENGTH, 10, 4096, 4096);
	evbuffer_add(src, "abc", 3);
	assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_MORE);
	/* A length-delimited body cut short is an error, not an end. */
	assert_int_equal(body_relay_eof(&b, &err), BODY_ERROR);
	assert_non_null(err);
	evbuffer_free(src);
	evbuffer_free(dst);
}

static void test_none_and_zero_length(void **state)
{
	struct body_relay b;
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	const char *err = NULL;
	body_relay_init(&b, HTTP1_BODY_NONE, 0, 4096, 4096);
	evbuffer_add(src, "GET", 3);
	assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_DONE);
	body_relay_init(&b, HTTP1_BODY_LENGTH, 0, 4096, 4096);
	assert_int_equal(body_relay_step(&b, src, dst, &err), BODY_DONE);
	assert_int_equal(evbuffer_get_length(src), 3);
	assert_int_equal(evbuffer_get_length(dst), 0);
	evbuffer_free(src);
	evbuffer_free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_length_stops_at_boundary),
		cmocka_unit_test(test_chunked_rechunked),
		cmocka_unit_test(test_request_trailers_dropped),
		cmocka_unit_test(test_response_trailers_lose_control_fields),
		cmocka_unit_test(test_nothing_consumed_until_bytes_move),
		cmocka_unit_test(test_chunked_dribble),
		cmocka_unit_test(test_chunked_bad_framing),
		cmocka_unit_test(test_close_delimited_and_eof),
		cmocka_unit_test(test_none_and_zero_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
