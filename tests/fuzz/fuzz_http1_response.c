/* fuzz_http1_response.c - an app's response stream through the response
 * path: head scanning, http1_parse_response with the proxy's limits,
 * interim (1xx) heads, and rewrite_response_head as proxy_up.c calls it.
 *
 * Input: 1 control byte, then what the app sends.
 *   bits 0-2: method of the request being answered (GET, HEAD, POST, PUT,
 *             DELETE, OPTIONS, PATCH, GET);
 *   bit 3:    the request was HTTP/1.0 (chunked is dechunked, the
 *             connection closes);
 *   bit 4:    the client connection closes after this response;
 *   bit 5:    the request asked for an upgrade.
 *
 * Invariants: every head parsed matches its bytes (fuzz_check_head); the
 * framing follows RFC 9112 §6.3 from the status and the request method;
 * the head the gateway writes for the client parses again, with the same
 * parser, to the same status, framing and length, a connection fate that
 * matches what the gateway decided, and no hop-by-hop field of the app's.
 */
#include <event2/buffer.h>
#include <http_parser.h>
#include <stdbool.h>

#include "fuzz.h"
#include "http1.h"
#include "rewrite.h"

/* Parse the head at p[0..len) (a private exact-size copy, as the proxy
 * makes); returns its length, 0 when there is none within max_bytes, or
 * -1 when it does not parse. */
static long parse_head(const char *p, size_t len, size_t max_bytes, int method,
		       struct http1_header *hdrs, size_t max_headers,
		       struct http1_head *h, char **copy)
{
	size_t n = len < max_bytes ? len : max_bytes, scan = 0, head_len = 0;
	/* Byte by byte (the scan state makes it linear), as reads may come. */
	enum http1_scan r = HTTP1_SCAN_NEED_MORE;
	for (size_t i = 1; i <= n && r == HTTP1_SCAN_NEED_MORE; i++)
		r = http1_find_head_end(p, i, &scan, &head_len);
	size_t scan1 = 0, head_len1 = 0;
	enum http1_scan r1 = http1_find_head_end(p, n, &scan1, &head_len1);
	FUZZ_CHECK(r == r1 && (r != HTTP1_SCAN_DONE || head_len == head_len1));
	if (r != HTTP1_SCAN_DONE)
		return 0;
	*copy = fuzz_dup(p, head_len, NULL);
	struct http1_limits lim = {.max_headers = max_headers};
	const char *err = NULL;
	if (http1_parse_response(*copy, head_len, method, &lim, hdrs, h,
				 &err) != 0) {
		FUZZ_CHECK(err != NULL);
		free(*copy);
		*copy = NULL;
		return -1;
	}
	fuzz_check_head(*copy, head_len, h, max_headers, false);
	FUZZ_CHECK(h->status >= 100 && h->status <= 599);
	bool no_body = h->status < 200 || h->status == 204 ||
		       h->status == 304 || method == HTTP_HEAD;
	FUZZ_CHECK(no_body == (h->framing == HTTP1_BODY_NONE));
	FUZZ_CHECK(h->framing != HTTP1_BODY_CLOSE || !h->keep_alive);
	FUZZ_CHECK(h->host_count == 0);
	return (long)head_len;
}

/* Field count by name, case-insensitive. */
static unsigned count(const struct http1_head *h, const char *name)
{
	unsigned n = 0;
	for (size_t i = 0; i < h->nhdrs; i++)
		n += gw_str_ieq_cstr(h->hdrs[i].name, name);
	return n;
}

/* The head the client gets for resp, parsed back. */
static void check_rewrite(const struct http1_head *resp, int method,
			  bool http10, bool close, bool upgrade)
{
	bool dechunk = http10 && resp->framing == HTTP1_BODY_CHUNKED;
	struct http1_head sent = *resp;
	if (dechunk)
		sent.framing = HTTP1_BODY_CLOSE;
	struct http1_header extra[1] = {
		{GW_STR_LIT("X-Cold-Start"), GW_STR_LIT("1200ms")}};
	struct rewrite_resp_opts o = {
		.close = close || dechunk || resp->framing == HTTP1_BODY_CLOSE,
		.head_req = method == HTTP_HEAD,
		.extra_hdrs = extra,
		.nextra = 1,
	};
	if (resp->status == 101 && (!upgrade || !resp->upgrade))
		return; /* the proxy refuses it (502) */
	struct evbuffer *out = evbuffer_new();
	FUZZ_CHECK(rewrite_response_head(out, &sent, &o) == 0);
	size_t len = evbuffer_get_length(out);
	const char *p = (const char *)evbuffer_pullup(out, -1);

	struct http1_header hdrs[1000];
	struct http1_head again;
	char *copy = NULL;
	long head_len =
		parse_head(p, len, len, method, hdrs, 1000, &again, &copy);
	FUZZ_CHECK(head_len > 0 && (size_t)head_len == len);
	FUZZ_CHECK(again.status == resp->status);
	FUZZ_CHECK(again.framing == sent.framing);
	FUZZ_CHECK(again.framing != HTTP1_BODY_LENGTH ||
		   again.content_length == resp->content_length);
	FUZZ_CHECK(count(&again, "Content-Length") <= 1 ||
		   again.framing == HTTP1_BODY_NONE);
	FUZZ_CHECK(count(&again, "Transfer-Encoding") ==
		   (again.framing == HTTP1_BODY_CHUNKED));
	if (resp->status == 101) {
		FUZZ_CHECK(again.upgrade);
		FUZZ_CHECK(fuzz_str_same(again.upgrade_proto,
					 resp->upgrade_proto));
	} else if (resp->status >= 200) {
		/* The client learns the connection's fate from us only. */
		FUZZ_CHECK(again.keep_alive == !o.close);
		FUZZ_CHECK(count(&again, "Connection") == o.close);
		FUZZ_CHECK(count(&again, "Upgrade") == 0);
	}
	if (resp->status < 200 || resp->status == 204)
		FUZZ_CHECK(count(&again, "Content-Length") == 0);
	FUZZ_CHECK(count(&again, "Keep-Alive") == 0 &&
		   count(&again, "Proxy-Connection") == 0 &&
		   count(&again, "TE") == 0 && count(&again, "Trailer") == 0);
	free(copy);
	evbuffer_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int methods[] = {HTTP_GET,	  HTTP_HEAD,   HTTP_POST,
				      HTTP_PUT,	  HTTP_DELETE, HTTP_OPTIONS,
				      HTTP_PATCH, HTTP_GET};
	if (size < 1)
		return 0;
	int method = methods[data[0] & 7];
	bool http10 = data[0] & 8, close = data[0] & 16, upgrade = data[0] & 32;
	const char *p = (const char *)data + 1;
	size_t len = size - 1;

	/* proxy_up.c: interim heads are passed on (or dropped) and the next
	 * head read, until a final one. */
	for (int heads = 0; heads < 8; heads++) {
		struct http1_header hdrs[FUZZ_HEADER_MAX_COUNT];
		struct http1_head resp;
		char *copy = NULL;
		long head_len =
			parse_head(p, len, FUZZ_RESP_HEADER_MAX_BYTES, method,
				   hdrs, FUZZ_HEADER_MAX_COUNT, &resp, &copy);
		if (head_len <= 0)
			break;
		check_rewrite(&resp, method, http10, close, upgrade);
		free(copy);
		if (resp.status >= 200 || resp.status == 101)
			break;
		p += head_len;
		len -= (size_t)head_len;
	}
	return 0;
}
