/* rewrite.h - the heads the gateway sends on: request to the app, response
 * to the client. Pure: writes into an evbuffer, touches no socket.
 *
 * Request rules (RFC 9110 §7.6.1, §7.6.3 and the X-Forwarded-* convention):
 *  - request line is always "METHOD origin-form HTTP/1.1"; an absolute-form
 *    target is turned into origin-form (the Host field carries authority);
 *  - hop-by-hop fields are dropped: Connection, Keep-Alive,
 *    Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 *    Proxy-Authorization, Proxy-Authenticate, and every field named in
 *    Connection; Expect is dropped too (the gateway answers 100-continue);
 *  - Host is replaced by one "Host: <host_out>" field;
 *  - framing fields are re-emitted from the parsed framing: one
 *    Content-Length, or "Transfer-Encoding: chunked";
 *  - upgrade requests keep "Connection: upgrade" and their Upgrade field;
 *  - X-Forwarded-For: appended to when the peer is a trusted proxy,
 *    replaced by the peer address otherwise; X-Forwarded-Proto and
 *    X-Forwarded-Host: kept from trusted peers, set by us otherwise;
 *  - Forwarded (RFC 7239): kept from trusted peers, dropped otherwise (an
 *    app must not believe a client's own claims about where it is);
 *  - a cookie named strip_cookie (when set) is removed from Cookie fields
 *    (the platform session must never reach an app); a Cookie field left
 *    empty is dropped;
 *  - extra fields (extra_hdrs) are appended last.
 * Response rules: status line "HTTP/1.1 code reason"; hop-by-hop fields are
 * dropped as above; framing re-emitted (when framing is NONE, a
 * Content-Length field is passed through unchanged for 304 and responses to
 * HEAD, and dropped for 1xx and 204); "Connection: close" when the client
 * connection will close; 101 keeps Connection: upgrade + Upgrade.
 */
#ifndef GW_REWRITE_H
#define GW_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"
#include "http1.h"

struct evbuffer;

struct rewrite_req_opts {
	struct gw_str path;        /* origin-form target to send ("/x?y") */
	bool path_needs_slash;     /* prefix '/' to path (absolute "?q") */
	struct gw_str host_out;    /* Host value to send (as the client sent
				      it, authority incl. port) */
	struct gw_str client_ip;   /* peer IP text, for X-Forwarded-For */
	bool peer_trusted;         /* peer is in trusted_proxies */
	bool tls;                  /* client connection is TLS */
	bool upgrade;              /* forward as an upgrade request */
	struct gw_str strip_cookie; /* cookie name to remove; len 0 = none */
	const struct http1_header *extra_hdrs; /* appended; may be NULL */
	size_t nextra;
};

/* Append the request head for the upstream to out. Returns 0, or -1 when
 * out cannot grow (memory). */
int rewrite_request_head(struct evbuffer *out, const struct http1_head *req,
			 const struct rewrite_req_opts *o);

struct rewrite_resp_opts {
	bool close;    /* client connection closes after this response */
	bool head_req; /* response to HEAD: keep Content-Length as sent */
	const struct http1_header *extra_hdrs; /* appended; may be NULL */
	size_t nextra;
};

/* Append the response head for the client to out. Works for interim (1xx)
 * heads too. Returns 0 or -1 (memory). */
int rewrite_response_head(struct evbuffer *out, const struct http1_head *resp,
			  const struct rewrite_resp_opts *o);

/* True for a hop-by-hop field name (the fixed list above, not counting
 * fields named in Connection). */
bool rewrite_is_hop_by_hop(struct gw_str name);

#endif
