/* rewrite.c - heads sent upstream and back to the client (rules in
 * rewrite.h). */
#include <event2/buffer.h>
#include <string.h>

#include "pages.h"
#include "rewrite.h"
#include "core/compat.h"

/* Heads are composed in one reserved, contiguous piece of the output
 * buffer: the caller's evbuffer gets a single chain and a single commit,
 * not four small adds per field. bound_* compute an upper bound of what
 * is written; w_put never writes past it. */
struct w {
	char *p;   /* next byte to write */
	char *end; /* end of the reserved space (for the bound check) */
};

static inline void w_put(struct w *w, const char *s, size_t n)
{
	if (n > (size_t)(w->end - w->p))
		n = (size_t)(w->end - w->p); /* cannot happen: bound */
	memcpy(w->p, s, n);
	w->p += n;
}

static inline void w_str(struct w *w, struct gw_str s)
{
	w_put(w, s.p, s.len);
}

/* "name: value\r\n". Parsed fields cannot hold CR or LF (http1 refuses
 * them); extra fields come from the gateway itself. */
static inline void w_field(struct w *w, struct gw_str name, struct gw_str value)
{
	w_str(w, name);
	w_put(w, ": ", 2);
	w_str(w, value);
	w_put(w, "\r\n", 2);
}

static void w_u64(struct w *w, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	w_put(w, tmp + i, sizeof(tmp) - i);
}

static int w_begin(struct evbuffer *out, struct w *w, struct evbuffer_iovec *v,
		   size_t bound)
{
	if (evbuffer_reserve_space(out, (ev_ssize_t)bound, v, 1) != 1)
		return -1;
	w->p = v->iov_base;
	w->end = w->p + bound;
	return 0;
}

static int w_commit(struct evbuffer *out, struct w *w, struct evbuffer_iovec *v)
{
	v->iov_len = (size_t)(w->p - (char *)v->iov_base);
	return evbuffer_commit_space(out, v, 1);
}

static enum http1_hdr_id hdr_id(const struct http1_header *h)
{
	/* Hand-built heads carry no ids: look the name up. */
	return h->id ? h->id : http1_header_id(h->name.p, h->name.len);
}

static bool id_is_hop_by_hop(enum http1_hdr_id id)
{
	switch (id) {
	case HTTP1_HDR_CONNECTION:
	case HTTP1_HDR_KEEP_ALIVE:
	case HTTP1_HDR_PROXY_CONNECTION:
	case HTTP1_HDR_TE:
	case HTTP1_HDR_TRAILER:
	case HTTP1_HDR_TRANSFER_ENCODING:
	case HTTP1_HDR_UPGRADE:
	case HTTP1_HDR_PROXY_AUTHORIZATION:
	case HTTP1_HDR_PROXY_AUTHENTICATE:
		return true;
	default:
		return false;
	}
}

bool rewrite_is_hop_by_hop(struct gw_str name)
{
	return id_is_hop_by_hop(http1_header_id(name.p, name.len));
}

/* The field names listed in a head's Connection fields, gathered once.
 * More than fit: every name is then checked against the fields' text. */
#define CONN_TOKENS_MAX 16

struct conn_tokens {
	struct gw_str tok[CONN_TOKENS_MAX];
	size_t n;
	bool overflow;
	const struct http1_head *h; /* for the overflow path */
};

static void conn_tokens_init(struct conn_tokens *t, const struct http1_head *h)
{
	t->n = 0;
	t->overflow = false;
	t->h = h;
	for (size_t i = 0; i < h->nhdrs; i++) {
		if (hdr_id(&h->hdrs[i]) != HTTP1_HDR_CONNECTION)
			continue;
		struct gw_str list = h->hdrs[i].value, e;
		while (gw_str_next_elem(&list, &e)) {
			if (t->n == CONN_TOKENS_MAX) {
				t->overflow = true;
				return;
			}
			t->tok[t->n++] = e;
		}
	}
}

/* Is name listed in a Connection field? */
static bool conn_tokens_has(const struct conn_tokens *t, struct gw_str name)
{
	if (t->overflow) {
		for (size_t i = 0; i < t->h->nhdrs; i++) {
			if (hdr_id(&t->h->hdrs[i]) != HTTP1_HDR_CONNECTION)
				continue;
			struct gw_str list = t->h->hdrs[i].value, e;
			while (gw_str_next_elem(&list, &e))
				if (gw_str_ieq(e, name))
					return true;
		}
		return false;
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->tok[i].len == name.len && gw_str_ieq(t->tok[i], name))
			return true;
	return false;
}

static size_t bound_framing(void)
{
	return sizeof("Content-Length: 18446744073709551615\r\n") +
	       sizeof("Transfer-Encoding: chunked\r\n");
}

static void w_framing(struct w *w, const struct http1_head *h)
{
	if (h->framing == HTTP1_BODY_LENGTH) {
		w_put(w, "Content-Length: ", 16);
		w_u64(w, h->content_length);
		w_put(w, "\r\n", 2);
	} else if (h->framing == HTTP1_BODY_CHUNKED) {
		w_put(w, "Transfer-Encoding: chunked\r\n", 28);
	}
}

static size_t bound_extra(const struct http1_header *x, size_t n)
{
	size_t b = 0;
	for (size_t i = 0; i < n; i++)
		b += x[i].name.len + x[i].value.len + 4;
	return b;
}

static void w_extra(struct w *w, const struct http1_header *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (memchr(x[i].name.p, '\n', x[i].name.len) ||
		    memchr(x[i].value.p, '\n', x[i].value.len) ||
		    memchr(x[i].name.p, '\r', x[i].name.len) ||
		    memchr(x[i].value.p, '\r', x[i].value.len))
			continue; /* never split our own head */
		w_field(w, x[i].name, x[i].value);
	}
}

/* One Cookie field without the pairs named `name`; nothing at all when
 * no pair is left. Pairs are re-joined with "; ", so the output can be
 * up to twice as long as the value (bound_request counts that). */
static void w_cookie_without(struct w *w, struct gw_str hname,
			     struct gw_str value, struct gw_str name)
{
	char *field = w->p;
	w_str(w, hname);
	w_put(w, ": ", 2);
	char *first = w->p;
	const char *p = value.p, *end = value.p + value.len;
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;
		struct gw_str pair = gw_str_trim(gw_str_make(p, (size_t)(stop - p)));
		const char *eq = pair.len ? memchr(pair.p, '=', pair.len) : NULL;
		struct gw_str pname = gw_str_trim(gw_str_make(
			pair.p, eq ? (size_t)(eq - pair.p) : pair.len));
		if (pair.len && !gw_str_eq(pname, name)) {
			if (w->p != first)
				w_put(w, "; ", 2);
			w_str(w, pair);
		}
		p = semi ? semi + 1 : end;
	}
	if (w->p == first)
		w->p = field; /* nothing kept: no field */
	else
		w_put(w, "\r\n", 2);
}

static size_t bound_request(const struct http1_head *req,
			    const struct rewrite_req_opts *o)
{
	size_t b = req->method_name.len + 2 + o->path.len + 11 +
		   3 * (o->host_out.len + 24) + o->client_ip.len + 64 +
		   req->upgrade_proto.len + 48 + bound_framing() +
		   bound_extra(o->extra_hdrs, o->nextra) + 2;
	for (size_t i = 0; i < req->nhdrs; i++)
		b += req->hdrs[i].name.len + 2 * req->hdrs[i].value.len + 6;
	return b;
}

int rewrite_request_head(struct evbuffer *out, const struct http1_head *req,
			 const struct rewrite_req_opts *o)
{
	struct conn_tokens ct;
	conn_tokens_init(&ct, req);
	struct evbuffer_iovec v;
	struct w w;
	if (w_begin(out, &w, &v, bound_request(req, o)) != 0)
		return -1;

	w_str(&w, req->method_name);
	w_put(&w, " ", 1);
	if (o->path_needs_slash)
		w_put(&w, "/", 1);
	w_str(&w, o->path);
	w_put(&w, " HTTP/1.1\r\n", 11);
	w_field(&w, GW_STR_LIT("Host"), o->host_out);

	const struct http1_header *xfp = NULL, *xfh = NULL;
	bool any_xff = false;
	for (size_t i = 0; i < req->nhdrs; i++) {
		const struct http1_header *h = &req->hdrs[i];
		enum http1_hdr_id id = hdr_id(h);
		if ((ct.n || ct.overflow) && conn_tokens_has(&ct, h->name))
			continue; /* hop-by-hop by the sender's say */
		switch (id) {
		case HTTP1_HDR_HOST:
		case HTTP1_HDR_CONTENT_LENGTH:
		case HTTP1_HDR_EXPECT:
			continue; /* re-emitted, or answered by the gateway */
		case HTTP1_HDR_X_FORWARDED_FOR:
			any_xff = true; /* joined below */
			continue;
		case HTTP1_HDR_X_FORWARDED_PROTO:
			if (o->peer_trusted && !xfp)
				xfp = h;
			continue;
		case HTTP1_HDR_X_FORWARDED_HOST:
			if (o->peer_trusted && !xfh)
				xfh = h;
			continue;
		case HTTP1_HDR_FORWARDED:
			/* RFC 7239: what a trusted proxy says is kept (it
			 * goes on in place); anybody else's is a forgery. */
			if (!o->peer_trusted)
				continue;
			break;
		default:
			if (id_is_hop_by_hop(id))
				continue;
			break;
		}
		if (id == HTTP1_HDR_COOKIE && o->strip_cookie.len)
			w_cookie_without(&w, h->name, h->value, o->strip_cookie);
		else
			w_field(&w, h->name, h->value);
	}

	/* X-Forwarded-For: a trusted peer's values (in order), then the
	 * peer. */
	w_put(&w, "X-Forwarded-For: ", 17);
	if (o->peer_trusted && any_xff) {
		for (size_t i = 0; i < req->nhdrs; i++) {
			const struct http1_header *h = &req->hdrs[i];
			if (hdr_id(h) != HTTP1_HDR_X_FORWARDED_FOR ||
			    h->value.len == 0 ||
			    ((ct.n || ct.overflow) &&
			     conn_tokens_has(&ct, h->name)))
				continue;
			w_str(&w, h->value);
			w_put(&w, ", ", 2);
		}
	}
	w_str(&w, o->client_ip);
	w_put(&w, "\r\n", 2);
	w_field(&w, GW_STR_LIT("X-Forwarded-Proto"),
		xfp ? xfp->value
		    : (o->tls ? GW_STR_LIT("https") : GW_STR_LIT("http")));
	w_field(&w, GW_STR_LIT("X-Forwarded-Host"), xfh ? xfh->value : o->host_out);
	if (o->upgrade) {
		w_field(&w, GW_STR_LIT("Connection"), GW_STR_LIT("upgrade"));
		w_field(&w, GW_STR_LIT("Upgrade"), req->upgrade_proto);
	}
	w_framing(&w, req);
	w_extra(&w, o->extra_hdrs, o->nextra);
	w_put(&w, "\r\n", 2);
	return w_commit(out, &w, &v);
}

int rewrite_response_head(struct evbuffer *out, const struct http1_head *resp,
			  const struct rewrite_resp_opts *o)
{
	struct gw_str reason = resp->reason;
	if (reason.len == 0) {
		const char *r = pages_reason(resp->status);
		reason = gw_str_make(r, strlen(r));
	}
	size_t bound = 16 + reason.len + 2 + bound_framing() + 64 +
		       resp->upgrade_proto.len +
		       bound_extra(o->extra_hdrs, o->nextra) + 2;
	for (size_t i = 0; i < resp->nhdrs; i++)
		bound += resp->hdrs[i].name.len + resp->hdrs[i].value.len + 4;
	struct conn_tokens ct;
	conn_tokens_init(&ct, resp);
	struct evbuffer_iovec v;
	struct w w;
	if (w_begin(out, &w, &v, bound) != 0)
		return -1;

	char code[4] = {(char)('0' + resp->status / 100 % 10),
			(char)('0' + resp->status / 10 % 10),
			(char)('0' + resp->status % 10), ' '};
	w_put(&w, "HTTP/1.1 ", 9);
	w_put(&w, code, 4);
	w_str(&w, reason);
	w_put(&w, "\r\n", 2);
	/* Without a body, Content-Length still describes the representation
	 * for 304 and HEAD; it must not appear on 1xx and 204 (RFC 9110
	 * §8.6), not even in answer to HEAD. */
	bool keep_cl = resp->framing == HTTP1_BODY_NONE &&
		       resp->status >= 200 && resp->status != 204 &&
		       (resp->status == 304 || o->head_req);
	for (size_t i = 0; i < resp->nhdrs; i++) {
		const struct http1_header *h = &resp->hdrs[i];
		enum http1_hdr_id id = hdr_id(h);
		if (id_is_hop_by_hop(id) ||
		    (id == HTTP1_HDR_CONTENT_LENGTH && !keep_cl))
			continue;
		if ((ct.n || ct.overflow) && conn_tokens_has(&ct, h->name))
			continue;
		w_field(&w, h->name, h->value);
	}
	if (resp->status == 101) {
		w_field(&w, GW_STR_LIT("Connection"), GW_STR_LIT("upgrade"));
		w_field(&w, GW_STR_LIT("Upgrade"), resp->upgrade_proto);
	} else if (resp->status >= 200) {
		w_framing(&w, resp);
		if (o->close)
			w_field(&w, GW_STR_LIT("Connection"), GW_STR_LIT("close"));
	}
	w_extra(&w, o->extra_hdrs, o->nextra);
	w_put(&w, "\r\n", 2);
	return w_commit(out, &w, &v);
}
