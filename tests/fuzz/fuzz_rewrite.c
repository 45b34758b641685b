/* fuzz_rewrite.c - the heads the gateway writes (rewrite.h), with a parsed
 * head as input and the options chosen by the fuzzer.
 *
 * Input: 2 control bytes, then a request head (or a response head when
 * bit 3 is set).
 *   byte 0: bit 0 peer is a trusted proxy, bit 1 TLS, bit 2 strip a
 *           session cookie, bit 3 response mode, bit 4 close (response),
 *           bit 5 response to HEAD, bit 6 extra fields, bit 7 forward as an
 *           upgrade when the request asks for one;
 *   byte 1: bits 0-1 the session cookie name, bits 2-3 the client address,
 *           bits 4-6 the method a response answers.
 *
 * Invariants on the request head sent to the app, parsed back with the same
 * parser: exactly one Host (the authority), one X-Forwarded-For ending with
 * the client address (only it, unless the peer is trusted), one
 * X-Forwarded-Proto and X-Forwarded-Host (ours unless trusted), no
 * hop-by-hop field and nothing the client named in Connection (except an
 * upgrade's own pair), no Expect, framing as parsed, no session cookie in
 * any Cookie field and no empty Cookie field, every other field the
 * client's own (same name, same value), extras last. On the response: no
 * hop-by-hop field of the app's, Content-Length only where RFC 9110 §8.6
 * allows it, "Connection: close" exactly when closing.
 */
#include <event2/buffer.h>
#include <http_parser.h>
#include <stdbool.h>

#include "fuzz.h"
#include "hostname.h"
#include "http1.h"
#include "rewrite.h"

#define MAXH 1000

static unsigned count(const struct http1_head *h, const char *name)
{
	unsigned n = 0;
	for (size_t i = 0; i < h->nhdrs; i++)
		n += gw_str_ieq_cstr(h->hdrs[i].name, name);
	return n;
}

/* Is name an element of any Connection field of h? */
static bool in_connection(const struct http1_head *h, struct gw_str name)
{
	for (size_t i = 0; i < h->nhdrs; i++) {
		if (!gw_str_ieq_cstr(h->hdrs[i].name, "Connection"))
			continue;
		struct gw_str list = h->hdrs[i].value, e;
		while (gw_str_next_elem(&list, &e))
			if (gw_str_ieq(e, name))
				return true;
	}
	return false;
}

/* Does a Cookie value carry a pair named name (split the way browsers
 * join them: "; ")? */
static bool has_cookie(struct gw_str v, struct gw_str name)
{
	const char *p = v.p, *end = v.p + v.len;
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		struct gw_str n = gw_str_trim(
			gw_str_make(p, (size_t)((eq ? eq : stop) - p)));
		if (gw_str_eq(n, name))
			return true;
		p = semi ? semi + 1 : end;
	}
	return false;
}

/* The client sent a field with this name and value. */
static bool client_sent(const struct http1_head *h,
			const struct http1_header *f)
{
	for (size_t i = 0; i < h->nhdrs; i++)
		if (fuzz_str_same(h->hdrs[i].name, f->name) &&
		    fuzz_str_same(h->hdrs[i].value, f->value))
			return true;
	return false;
}

static bool is_generated(struct gw_str n)
{
	static const char *const ours[] = {"Host",
					   "X-Forwarded-For",
					   "X-Forwarded-Proto",
					   "X-Forwarded-Host",
					   "Content-Length",
					   "Transfer-Encoding",
					   "Connection",
					   "Upgrade",
					   "Cookie",
					   "X-Gateway-User"};
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		if (gw_str_ieq_cstr(n, ours[i]))
			return true;
	return false;
}

static void parse_back(struct evbuffer *out, bool request, int method,
		       struct http1_header *hdrs, struct http1_head *h,
		       char **copy)
{
	size_t len = evbuffer_get_length(out), scan = 0, head_len = 0;
	const char *p = (const char *)evbuffer_pullup(out, -1);
	FUZZ_CHECK(http1_find_head_end(p, len, &scan, &head_len) ==
			   HTTP1_SCAN_DONE &&
		   head_len == len);
	*copy = fuzz_dup(p, len, NULL);
	struct http1_limits lim = {.max_headers = MAXH};
	const char *err = NULL;
	int st = request ? http1_parse_request(*copy, len, &lim, hdrs, h, &err)
			 : http1_parse_response(*copy, len, method, &lim, hdrs,
						h, &err);
	if (st != 0)
		fprintf(stderr, "rewritten head refused: %s\n", err);
	FUZZ_CHECK(st == 0);
	fuzz_check_head(*copy, len, h, MAXH, request);
}

static void check_request(const struct http1_head *req, uint8_t f0, uint8_t f1)
{
	static const struct gw_str cookies[] = {
		GW_STR_LIT("gw_session"), GW_STR_LIT("s"),
		GW_STR_LIT("__Host-id"), GW_STR_LIT("a")};
	static const struct gw_str ips[] = {
		GW_STR_LIT("192.0.2.7"), GW_STR_LIT("::1"),
		GW_STR_LIT("2001:db8::5"), GW_STR_LIT("10.0.0.1")};
	/* conn_route(): only routable requests are rewritten. */
	if (req->host_count > 1 || (req->host_count == 0 && req->minor >= 1))
		return;
	struct gw_str authority = req->host, path = req->target;
	int slash = 0;
	const char *err = NULL;
	int form = hostname_split_target(req->target, &authority, &path, &slash,
					 &err);
	char host[HOSTNAME_MAX];
	if (form < 0 || (form == 0 && req->host_count == 0) ||
	    hostname_normalize(authority, host, &err) != 0)
		return;

	struct http1_header extra[1] = {
		{GW_STR_LIT("X-Gateway-User"), GW_STR_LIT("u-1")}};
	struct rewrite_req_opts o = {
		.path = path,
		.path_needs_slash = slash != 0,
		.host_out = authority,
		.client_ip = ips[(f1 >> 2) & 3],
		.peer_trusted = f0 & 1,
		.tls = f0 & 2,
		.upgrade = (f0 & 128) && req->upgrade,
		.strip_cookie = (f0 & 4) ? cookies[f1 & 3] : GW_STR_NULL,
		.extra_hdrs = (f0 & 64) ? extra : NULL,
		.nextra = (f0 & 64) ? 1 : 0,
	};
	struct evbuffer *out = evbuffer_new();
	FUZZ_CHECK(rewrite_request_head(out, req, &o) == 0);
	struct http1_header hdrs[MAXH];
	struct http1_head h;
	char *copy = NULL;
	parse_back(out, true, 0, hdrs, &h, &copy);

	FUZZ_CHECK(fuzz_str_same(h.method_name, req->method_name));
	char *target = fuzz_dup(path.p, path.len, slash ? "/" : NULL);
	FUZZ_CHECK(fuzz_same(h.target.p, h.target.len, target, strlen(target)));
	free(target);
	FUZZ_CHECK(h.host_count == 1 && fuzz_str_same(h.host, authority));
	FUZZ_CHECK(h.framing == req->framing);
	FUZZ_CHECK(h.framing != HTTP1_BODY_LENGTH ||
		   h.content_length == req->content_length);
	FUZZ_CHECK(!h.expect_continue && count(&h, "Expect") == 0);
	FUZZ_CHECK(h.upgrade == o.upgrade);
	FUZZ_CHECK(count(&h, "Connection") == o.upgrade &&
		   count(&h, "Upgrade") == o.upgrade);
	FUZZ_CHECK(count(&h, "X-Forwarded-For") == 1 &&
		   count(&h, "X-Forwarded-Proto") == 1 &&
		   count(&h, "X-Forwarded-Host") == 1);
	const struct http1_header *xff = http1_head_get(&h, "X-Forwarded-For");
	FUZZ_CHECK(xff->value.len >= o.client_ip.len &&
		   memcmp(xff->value.p + xff->value.len - o.client_ip.len,
			  o.client_ip.p, o.client_ip.len) == 0);
	if (!o.peer_trusted) {
		FUZZ_CHECK(fuzz_str_same(xff->value, o.client_ip));
		FUZZ_CHECK(fuzz_str_same(
			http1_head_get(&h, "X-Forwarded-Proto")->value,
			o.tls ? GW_STR_LIT("https") : GW_STR_LIT("http")));
		FUZZ_CHECK(fuzz_str_same(
			http1_head_get(&h, "X-Forwarded-Host")->value,
			authority));
	}
	for (size_t i = 0; i < h.nhdrs; i++) {
		const struct http1_header *f = &h.hdrs[i];
		if (gw_str_ieq_cstr(f->name, "Transfer-Encoding"))
			FUZZ_CHECK(h.framing == HTTP1_BODY_CHUNKED &&
				   gw_str_ieq_cstr(f->value, "chunked"));
		else if (!gw_str_ieq_cstr(f->name, "Connection") &&
			 !gw_str_ieq_cstr(f->name, "Upgrade"))
			FUZZ_CHECK(!rewrite_is_hop_by_hop(f->name));
		if (!is_generated(f->name)) {
			/* the client's own field, not named in its
			 * Connection */
			FUZZ_CHECK(client_sent(req, f));
			FUZZ_CHECK(!in_connection(req, f->name));
		}
		if (o.strip_cookie.len && gw_str_ieq_cstr(f->name, "Cookie")) {
			FUZZ_CHECK(f->value.len > 0);
			FUZZ_CHECK(!has_cookie(f->value, o.strip_cookie));
		}
	}
	if (o.nextra)
		FUZZ_CHECK(
			fuzz_str_same(h.hdrs[h.nhdrs - 1].name, extra[0].name));
	free(copy);
	evbuffer_free(out);
}

static void check_response(const struct http1_head *resp, int method,
			   uint8_t f0)
{
	if (resp->status == 101 && !resp->upgrade)
		return; /* the proxy refuses it (502) */
	struct http1_header extra[1] = {
		{GW_STR_LIT("X-Cold-Start"), GW_STR_LIT("10ms")}};
	struct rewrite_resp_opts o = {
		.close = (f0 & 16) || resp->framing == HTTP1_BODY_CLOSE,
		.head_req = method == HTTP_HEAD,
		.extra_hdrs = (f0 & 64) ? extra : NULL,
		.nextra = (f0 & 64) ? 1 : 0,
	};
	struct evbuffer *out = evbuffer_new();
	FUZZ_CHECK(rewrite_response_head(out, resp, &o) == 0);
	struct http1_header hdrs[MAXH];
	struct http1_head h;
	char *copy = NULL;
	parse_back(out, false, method, hdrs, &h, &copy);
	FUZZ_CHECK(h.status == resp->status && h.framing == resp->framing);
	for (size_t i = 0; i < h.nhdrs; i++) {
		const struct http1_header *f = &h.hdrs[i];
		if (gw_str_ieq_cstr(f->name, "Connection"))
			FUZZ_CHECK(
				resp->status == 101
					? gw_str_ieq_cstr(f->value, "upgrade")
					: gw_str_ieq_cstr(f->value, "close"));
		else if (gw_str_ieq_cstr(f->name, "Upgrade"))
			FUZZ_CHECK(resp->status == 101);
		else if (gw_str_ieq_cstr(f->name, "Transfer-Encoding"))
			FUZZ_CHECK(h.framing == HTTP1_BODY_CHUNKED);
		else
			FUZZ_CHECK(!rewrite_is_hop_by_hop(f->name));
		if (!is_generated(f->name) &&
		    !gw_str_ieq_cstr(f->name, "X-Cold-Start"))
			FUZZ_CHECK(client_sent(resp, f) &&
				   !in_connection(resp, f->name));
	}
	unsigned cl = count(&h, "Content-Length");
	/* RFC 9110 §8.6: never on 1xx and 204. */
	if (resp->status < 200 || resp->status == 204)
		FUZZ_CHECK(cl == 0);
	if (h.framing == HTTP1_BODY_LENGTH)
		FUZZ_CHECK(cl == 1);
	if (h.framing == HTTP1_BODY_CHUNKED || h.framing == HTTP1_BODY_CLOSE)
		FUZZ_CHECK(cl == 0);
	if (resp->status >= 200 && resp->status != 101)
		FUZZ_CHECK(h.keep_alive == !o.close);
	free(copy);
	evbuffer_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int methods[] = {HTTP_GET,	  HTTP_HEAD,   HTTP_POST,
				      HTTP_PUT,	  HTTP_DELETE, HTTP_OPTIONS,
				      HTTP_PATCH, HTTP_HEAD};
	if (size < 2)
		return 0;
	uint8_t f0 = data[0], f1 = data[1];
	bool response = f0 & 8;
	size_t len = size - 2, scan = 0, head_len = 0;
	const char *p = (const char *)data + 2;
	size_t max =
		response ? FUZZ_RESP_HEADER_MAX_BYTES : FUZZ_HEADER_MAX_BYTES;
	if (len > max)
		len = max;
	if (http1_find_head_end(p, len, &scan, &head_len) != HTTP1_SCAN_DONE)
		return 0;
	char *copy = fuzz_dup(p, head_len, NULL);
	struct http1_header hdrs[FUZZ_HEADER_MAX_COUNT];
	struct http1_limits lim = {.max_headers = FUZZ_HEADER_MAX_COUNT};
	struct http1_head h;
	const char *err = NULL;
	int method = methods[(f1 >> 4) & 7];
	if (!response) {
		if (http1_parse_request(copy, head_len, &lim, hdrs, &h, &err) ==
		    0)
			check_request(&h, f0, f1);
	} else if (http1_parse_response(copy, head_len, method, &lim, hdrs, &h,
					&err) == 0) {
		check_response(&h, method, f0);
	}
	free(copy);
	return 0;
}
