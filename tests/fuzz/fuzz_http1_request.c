/* fuzz_http1_request.c - a client's byte stream through the request path:
 * head scanning (http1_find_head_end), request parsing
 * (http1_parse_request) with the proxy's default limits, routing checks
 * (hostname.h), head rewriting (rewrite.h) and body relay (body.h).
 *
 * Input: 2 control bytes (sizes of the pieces the stream arrives in,
 * cycled), then what a client sends on one connection: heads, bodies,
 * pipelined requests.
 *
 * The gateway's side is replayed as proxy.c does it (skip empty lines
 * between requests, scan the growing buffer up to header_max_bytes, parse a
 * private copy of the head, route, rewrite, relay the body), building the
 * byte stream an app would receive on one upstream connection. That stream
 * is then parsed again, in one piece, by the same parser. Differential
 * check against request smuggling: the app must see exactly the requests the
 * gateway saw, no more, in the same order, each with the same method,
 * origin-form target, host, framing and body bytes, and nothing left over.
 * Every parsed head is also checked against the raw bytes (fields re-derived
 * from the lines independently of http-parser).
 */
#include <event2/buffer.h>
#include <http_parser.h>
#include <stdbool.h>

#include "body.h"
#include "fuzz.h"
#include "hostname.h"
#include "http1.h"
#include "rewrite.h"

#define MAX_MSGS 16

/* What the gateway forwarded for one request. */
struct msg {
	char *method;
	size_t method_len;
	char *path; /* origin-form target as sent upstream */
	size_t path_len;
	char host[HOSTNAME_MAX];
	enum http1_framing framing;
	uint64_t content_length;
	struct evbuffer *payload; /* body bytes, dechunked */
	bool body_complete;	  /* false: the gateway gave up mid-body */
};

/* conn_route()'s checks: 0 with the routing key and upstream target, or -1
 * when the gateway answers 400. */
static int route(const struct http1_head *req, char host[HOSTNAME_MAX],
		 struct gw_str *path, int *needs_slash, struct gw_str *host_out)
{
	const char *err = NULL;
	if (req->host_count > 1 || (req->host_count == 0 && req->minor >= 1))
		return -1;
	struct gw_str authority = req->host;
	*path = req->target;
	*needs_slash = 0;
	int form = hostname_split_target(req->target, &authority, path,
					 needs_slash, &err);
	if (form < 0 || (form == 0 && req->host_count == 0))
		return -1;
	if (hostname_normalize(authority, host, &err) != 0)
		return -1;
	*host_out = authority;
	return 0;
}

/* The client connection: bytes arrive in pieces into in. */
struct client {
	struct evbuffer *in;
	const char *p;
	size_t len, fed;
	struct fuzz_pieces *pc;
};

/* One more read; false when the client has sent everything. */
static bool client_read(struct client *c)
{
	if (c->fed == c->len)
		return false;
	size_t n = fuzz_next_piece(c->pc, c->len - c->fed);
	evbuffer_add(c->in, c->p + c->fed, n);
	c->fed += n;
	return true;
}

/* Bytes the gateway has not consumed yet (buffered or still to come). */
static size_t client_left(const struct client *c)
{
	return evbuffer_get_length(c->in) + (c->len - c->fed);
}

/* proxy.c, between requests: empty lines before a request are skipped,
 * with what has arrived; false when the client sent nothing more. */
static bool skip_empty_lines(struct client *c)
{
	for (;;) {
		unsigned char b[2];
		ev_ssize_t got = evbuffer_copyout(c->in, b, 2);
		if (got >= 1 && b[0] == '\n')
			evbuffer_drain(c->in, 1);
		else if (got == 2 && b[0] == '\r' && b[1] == '\n')
			evbuffer_drain(c->in, 2);
		else if (got == 0 && !client_read(c))
			return false;
		else if (got != 0)
			return true;
	}
}

/* proxy.c: scan the growing buffer (at most header_max_bytes of it) for
 * the end of the head. Returns its length, or 0 (431, or the client went
 * away). */
static size_t read_head(struct client *c)
{
	size_t scan = 0, head_len = 0;
	for (;;) {
		size_t have = evbuffer_get_length(c->in);
		size_t n = have < FUZZ_HEADER_MAX_BYTES ? have
							: FUZZ_HEADER_MAX_BYTES;
		const char *b =
			(const char *)evbuffer_pullup(c->in, (ev_ssize_t)n);
		if (http1_find_head_end(b, n, &scan, &head_len) ==
		    HTTP1_SCAN_DONE)
			break;
		FUZZ_CHECK(scan <= n);
		if (have >= FUZZ_HEADER_MAX_BYTES || !client_read(c))
			return 0;
	}
	/* A one-shot scan agrees with the incremental one. */
	size_t scan1 = 0, head_len1 = 0;
	FUZZ_CHECK(http1_find_head_end((const char *)evbuffer_pullup(c->in, -1),
				       evbuffer_get_length(c->in), &scan1,
				       &head_len1) == HTTP1_SCAN_DONE &&
		   head_len1 == head_len);
	FUZZ_CHECK(head_len > 0 && head_len <= FUZZ_HEADER_MAX_BYTES);
	return head_len;
}

/* The gateway's side: returns the number of requests forwarded to up. */
static size_t gateway_pass(struct client *c, struct evbuffer *up,
			   struct msg *msgs)
{
	struct http1_header hdrs[FUZZ_HEADER_MAX_COUNT];
	size_t nmsgs = 0;
	while (nmsgs < MAX_MSGS && skip_empty_lines(c)) {
		size_t head_len = read_head(c);
		if (head_len == 0)
			break;
		/* The proxy parses a private copy of exactly the head: an
		 * overread is an ASan report here. */
		char *head = malloc(head_len);
		FUZZ_CHECK(head != NULL);
		evbuffer_remove(c->in, head, head_len);

		struct http1_head req;
		struct http1_limits lim = {.max_headers =
						   FUZZ_HEADER_MAX_COUNT};
		const char *err = NULL;
		int st = http1_parse_request(head, head_len, &lim, hdrs, &req,
					     &err);
		if (st != 0) {
			FUZZ_CHECK(err != NULL);
			FUZZ_CHECK(st == 400 || st == 417 || st == 431 ||
				   st == 501 || st == 505);
			free(head);
			break;
		}
		fuzz_check_head(head, head_len, &req, FUZZ_HEADER_MAX_COUNT,
				true);

		struct msg *m = &msgs[nmsgs];
		struct gw_str path, host_out;
		int slash;
		if (route(&req, m->host, &path, &slash, &host_out) != 0) {
			free(head);
			break;
		}
		struct rewrite_req_opts o = {
			.path = path,
			.path_needs_slash = slash != 0,
			.host_out = host_out,
			.client_ip = GW_STR_LIT("192.0.2.7"),
			.upgrade = req.upgrade,
			.strip_cookie = GW_STR_LIT("gw_session"),
		};
		FUZZ_CHECK(rewrite_request_head(up, &req, &o) == 0);
		m->method =
			fuzz_dup(req.method_name.p, req.method_name.len, NULL);
		m->method_len = req.method_name.len;
		m->path = fuzz_dup(path.p, path.len, slash ? "/" : NULL);
		m->path_len = path.len + (slash != 0);
		m->framing = req.framing;
		m->content_length = req.content_length;
		m->payload = evbuffer_new();
		nmsgs++;

		/* The payload as one uninterrupted read would decode it. */
		size_t before = client_left(c);
		long used = fuzz_body_one_shot(c->p + (c->len - before), before,
					       &req, FUZZ_HEADER_MAX_BYTES,
					       m->payload);

		/* The body as the relay moves it, piece by piece. */
		struct body_relay b;
		body_relay_init(&b, req.framing, req.content_length,
				FUZZ_CHUNK_LINE_MAX, FUZZ_HEADER_MAX_BYTES);
		enum body_status bs;
		for (;;) {
			bs = body_relay_step(&b, c->in, up, &err);
			if (bs != BODY_MORE)
				break;
			if (!client_read(c)) {
				bs = body_relay_eof(&b, &err);
				break;
			}
		}
		free(head);
		if (bs != BODY_DONE) {
			FUZZ_CHECK(bs == BODY_ERROR && used < 0);
			m->body_complete = false;
			break;
		}
		m->body_complete = true;
		FUZZ_CHECK(used >= 0 &&
			   (size_t)used == before - client_left(c));
		FUZZ_CHECK(b.moved == evbuffer_get_length(m->payload));
		if (req.upgrade)
			break; /* a tunnel follows, not HTTP */
	}
	return nmsgs;
}

/* The app's side: parse up in one piece and compare with what the gateway
 * meant to send. */
static void app_pass(struct evbuffer *up, const struct msg *msgs, size_t nmsgs)
{
	struct http1_header hdrs[1000];
	size_t len = evbuffer_get_length(up);
	const char *p = (const char *)evbuffer_pullup(up, -1);
	size_t pos = 0;
	for (size_t i = 0; i < nmsgs; i++) {
		const struct msg *m = &msgs[i];
		size_t scan = 0, head_len = 0;
		FUZZ_CHECK(http1_find_head_end(p + pos, len - pos, &scan,
					       &head_len) == HTTP1_SCAN_DONE);
		char *head = malloc(head_len);
		FUZZ_CHECK(head != NULL);
		memcpy(head, p + pos, head_len);
		pos += head_len;
		struct http1_head req;
		struct http1_limits lim = {.max_headers = 1000};
		const char *err = NULL;
		int st = http1_parse_request(head, head_len, &lim, hdrs, &req,
					     &err);
		if (st != 0)
			fprintf(stderr, "forwarded head refused: %d %s\n", st,
				err);
		FUZZ_CHECK(st == 0);
		fuzz_check_head(head, head_len, &req, 1000, true);
		FUZZ_CHECK(fuzz_same(req.method_name.p, req.method_name.len,
				     m->method, m->method_len));
		FUZZ_CHECK(fuzz_same(req.target.p, req.target.len, m->path,
				     m->path_len));
		FUZZ_CHECK(req.host_count == 1 && req.minor == 1);
		char host[HOSTNAME_MAX];
		FUZZ_CHECK(hostname_normalize(req.host, host, &err) == 0);
		FUZZ_CHECK(strcmp(host, m->host) == 0);
		FUZZ_CHECK(req.framing == m->framing);
		FUZZ_CHECK(req.framing != HTTP1_BODY_LENGTH ||
			   req.content_length == m->content_length);

		struct evbuffer *payload = evbuffer_new();
		long used =
			fuzz_body_one_shot(p + pos, len - pos, &req,
					   FUZZ_RESP_HEADER_MAX_BYTES, payload);
		if (m->body_complete) {
			FUZZ_CHECK(used >= 0);
			pos += (size_t)used;
			size_t n = evbuffer_get_length(payload);
			FUZZ_CHECK(n == evbuffer_get_length(m->payload));
			FUZZ_CHECK(n == 0 ||
				   memcmp(evbuffer_pullup(payload, -1),
					  evbuffer_pullup(m->payload, -1),
					  n) == 0);
		} else {
			/* A body the gateway gave up on is still unfinished
			 * for the app: it cannot end early and let bytes
			 * that follow pass for a request. */
			FUZZ_CHECK(used < 0);
			pos = len;
		}
		evbuffer_free(payload);
		free(head);
	}
	FUZZ_CHECK(pos == len); /* nothing smuggled after the last request */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct fuzz_pieces pc = {.ctl = data, .nctl = 2, .scale = 16};
	struct msg msgs[MAX_MSGS];
	memset(msgs, 0, sizeof(msgs));
	struct evbuffer *up = evbuffer_new();
	struct client c = {.in = evbuffer_new(),
			   .p = (const char *)data + 2,
			   .len = size - 2,
			   .pc = &pc};
	size_t n = gateway_pass(&c, up, msgs);
	evbuffer_free(c.in);
	app_pass(up, msgs, n);
	for (size_t i = 0; i < n; i++) {
		free(msgs[i].method);
		free(msgs[i].path);
		evbuffer_free(msgs[i].payload);
	}
	evbuffer_free(up);
	return 0;
}
