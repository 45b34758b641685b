/* rewrite.c - heads sent upstream and back to the client (rules in
 * rewrite.h). */
#include <event2/buffer.h>
#include <inttypes.h>
#include <string.h>

#include "pages.h"
#include "rewrite.h"
#include "core/compat.h"

static const char *const hop_by_hop[] = {
	"Connection",          "Keep-Alive", "Proxy-Connection", "TE",
	"Trailer",             "Transfer-Encoding", "Upgrade",
	"Proxy-Authorization", "Proxy-Authenticate",
};

bool rewrite_is_hop_by_hop(struct gw_str name)
{
	for (size_t i = 0; i < GW_ARRAY_LEN(hop_by_hop); i++)
		if (gw_str_ieq_cstr(name, hop_by_hop[i]))
			return true;
	return false;
}

/* Is name listed in any Connection field of h? */
static bool named_in_connection(const struct http1_head *h, struct gw_str name)
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

static bool has_crlf(struct gw_str v)
{
	return memchr(v.p, '\r', v.len) || memchr(v.p, '\n', v.len);
}

static int add_field(struct evbuffer *out, struct gw_str name,
		     struct gw_str value)
{
	if (has_crlf(name) || has_crlf(value))
		return 0; /* cannot happen after http1 validation; be safe */
	if (evbuffer_add(out, name.p, name.len) ||
	    evbuffer_add(out, ": ", 2) ||
	    evbuffer_add(out, value.p, value.len) ||
	    evbuffer_add(out, "\r\n", 2))
		return -1;
	return 0;
}

static int add_framing(struct evbuffer *out, const struct http1_head *h)
{
	if (h->framing == HTTP1_BODY_LENGTH)
		return evbuffer_add_printf(out, "Content-Length: %" PRIu64 "\r\n",
					   h->content_length) < 0
			       ? -1
			       : 0;
	if (h->framing == HTTP1_BODY_CHUNKED)
		return evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
	return 0;
}

/* Drop the pairs named `name` from one Cookie value and append what is
 * left (if anything) as a Cookie field. */
static int add_cookie_without(struct evbuffer *out, struct gw_str hname,
			      struct gw_str value, struct gw_str name)
{
	struct evbuffer *kept = evbuffer_new();
	if (!kept)
		return -1;
	const char *p = value.p, *end = value.p + value.len;
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;
		struct gw_str pair = gw_str_trim(gw_str_make(p, (size_t)(stop - p)));
		const char *eq = pair.len ? memchr(pair.p, '=', pair.len) : NULL;
		struct gw_str pname = gw_str_trim(gw_str_make(
			pair.p, eq ? (size_t)(eq - pair.p) : pair.len));
		if (pair.len && !gw_str_eq(pname, name)) {
			if (evbuffer_get_length(kept))
				evbuffer_add(kept, "; ", 2);
			evbuffer_add(kept, pair.p, pair.len);
		}
		p = semi ? semi + 1 : end;
	}
	int rc = 0;
	size_t n = evbuffer_get_length(kept);
	if (n) {
		const char *v = (const char *)evbuffer_pullup(kept, -1);
		rc = add_field(out, hname, gw_str_make(v, n));
	}
	evbuffer_free(kept);
	return rc;
}

static int add_extra(struct evbuffer *out, const struct http1_header *x,
		     size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (add_field(out, x[i].name, x[i].value))
			return -1;
	return 0;
}

int rewrite_request_head(struct evbuffer *out, const struct http1_head *req,
			 const struct rewrite_req_opts *o)
{
	if (evbuffer_add(out, req->method_name.p, req->method_name.len) ||
	    evbuffer_add(out, " ", 1) ||
	    (o->path_needs_slash && evbuffer_add(out, "/", 1)) ||
	    evbuffer_add(out, o->path.p, o->path.len) ||
	    evbuffer_add(out, " HTTP/1.1\r\n", 11))
		return -1;
	if (add_field(out, GW_STR_LIT("Host"), o->host_out))
		return -1;

	/* Incoming X-Forwarded-For values, joined, when the peer is trusted. */
	struct evbuffer *xff = evbuffer_new();
	if (!xff)
		return -1;
	const struct http1_header *xfp = NULL, *xfh = NULL;
	int rc = 0;
	for (size_t i = 0; i < req->nhdrs && rc == 0; i++) {
		const struct http1_header *h = &req->hdrs[i];
		if (gw_str_ieq_cstr(h->name, "Host") ||
		    gw_str_ieq_cstr(h->name, "Content-Length") ||
		    gw_str_ieq_cstr(h->name, "Expect") ||
		    rewrite_is_hop_by_hop(h->name) ||
		    named_in_connection(req, h->name))
			continue;
		if (gw_str_ieq_cstr(h->name, "X-Forwarded-For")) {
			if (o->peer_trusted && h->value.len) {
				if (evbuffer_get_length(xff))
					evbuffer_add(xff, ", ", 2);
				evbuffer_add(xff, h->value.p, h->value.len);
			}
			continue;
		}
		if (gw_str_ieq_cstr(h->name, "X-Forwarded-Proto")) {
			if (o->peer_trusted && !xfp)
				xfp = h;
			continue;
		}
		if (gw_str_ieq_cstr(h->name, "X-Forwarded-Host")) {
			if (o->peer_trusted && !xfh)
				xfh = h;
			continue;
		}
		if (o->strip_cookie.len && gw_str_ieq_cstr(h->name, "Cookie")) {
			rc = add_cookie_without(out, h->name, h->value,
						o->strip_cookie);
			continue;
		}
		rc = add_field(out, h->name, h->value);
	}
	if (rc == 0) {
		if (evbuffer_get_length(xff))
			evbuffer_add(xff, ", ", 2);
		evbuffer_add(xff, o->client_ip.p, o->client_ip.len);
		size_t n = evbuffer_get_length(xff);
		rc = add_field(out, GW_STR_LIT("X-Forwarded-For"),
			       gw_str_make((const char *)evbuffer_pullup(xff, -1),
					   n));
	}
	evbuffer_free(xff);
	if (rc)
		return -1;
	if (add_field(out, GW_STR_LIT("X-Forwarded-Proto"),
		      xfp ? xfp->value
			  : (o->tls ? GW_STR_LIT("https") : GW_STR_LIT("http"))) ||
	    add_field(out, GW_STR_LIT("X-Forwarded-Host"),
		      xfh ? xfh->value : o->host_out))
		return -1;
	if (o->upgrade &&
	    (add_field(out, GW_STR_LIT("Connection"), GW_STR_LIT("upgrade")) ||
	     add_field(out, GW_STR_LIT("Upgrade"), req->upgrade_proto)))
		return -1;
	if (add_framing(out, req) || add_extra(out, o->extra_hdrs, o->nextra))
		return -1;
	return evbuffer_add(out, "\r\n", 2);
}

int rewrite_response_head(struct evbuffer *out, const struct http1_head *resp,
			  const struct rewrite_resp_opts *o)
{
	struct gw_str reason = resp->reason;
	if (reason.len == 0) {
		const char *r = pages_reason(resp->status);
		reason = gw_str_make(r, strlen(r));
	}
	if (evbuffer_add_printf(out, "HTTP/1.1 %03d ", resp->status) < 0 ||
	    evbuffer_add(out, reason.p, reason.len) ||
	    evbuffer_add(out, "\r\n", 2))
		return -1;
	/* Without a body, Content-Length still describes the representation
	 * for 304 and HEAD; it must not appear on 1xx and 204 (RFC 9110
	 * §8.6), not even in answer to HEAD. */
	bool keep_cl = resp->framing == HTTP1_BODY_NONE &&
		       resp->status >= 200 && resp->status != 204 &&
		       (resp->status == 304 || o->head_req);
	for (size_t i = 0; i < resp->nhdrs; i++) {
		const struct http1_header *h = &resp->hdrs[i];
		if (rewrite_is_hop_by_hop(h->name) ||
		    named_in_connection(resp, h->name))
			continue;
		if (gw_str_ieq_cstr(h->name, "Content-Length") && !keep_cl)
			continue;
		if (add_field(out, h->name, h->value))
			return -1;
	}
	if (resp->status == 101) {
		if (add_field(out, GW_STR_LIT("Connection"), GW_STR_LIT("upgrade")) ||
		    add_field(out, GW_STR_LIT("Upgrade"), resp->upgrade_proto))
			return -1;
	} else if (resp->status >= 200) {
		if (add_framing(out, resp))
			return -1;
		if (o->close &&
		    add_field(out, GW_STR_LIT("Connection"), GW_STR_LIT("close")))
			return -1;
	}
	if (add_extra(out, o->extra_hdrs, o->nextra))
		return -1;
	return evbuffer_add(out, "\r\n", 2);
}
