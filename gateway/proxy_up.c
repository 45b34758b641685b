/* proxy_up.c - upstream leg of an exchange: connect (or reuse a pooled
 * connection), send the rewritten request head, read and relay the response
 * (interim 1xx, final head, body), retry once on a stale pooled
 * connection, hand over to the tunnel after 101.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activator.h"
#include "config.h"
#include "proxy_int.h"
#include "rewrite.h"
#include "tunnel.h"
#include "upstream.h"
#include "wire.h"
#include "core/log.h"
#include "core/compat.h"

/* Longest chunk-size line (with extensions) we accept. */
#define CHUNK_LINE_MAX 4096

static void up_read_cb(struct bufferevent *bev, void *arg);
static void up_write_cb(struct bufferevent *bev, void *arg);
static void up_event_cb(struct bufferevent *bev, short what, void *arg);

static struct timeval tv_ms(unsigned ms)
{
	return (struct timeval){.tv_sec = ms / 1000,
				.tv_usec = (ms % 1000) * 1000};
}

/* Give the upstream connection back to the pool, or close it. */
void up_release(struct conn *c, bool reusable)
{
	struct exchange *x = &c->x;
	if (!x->up)
		return;
	struct bufferevent *up = x->up;
	x->up = NULL;
	x->up_state = x->up_state == UP_DONE ? UP_DONE : UP_NONE;
	if (c->up_timer)
		event_del(c->up_timer);
	if (reusable)
		upstream_pool_put(c->px->pool, x->up_addr, up);
	else
		bufferevent_free(up);
}

/* Callbacks for this exchange; watermarks once per connection (a pooled
 * one keeps them: every worker's exchanges use the same). */
static void up_setup(struct conn *c, struct bufferevent *up, bool fresh)
{
	const struct gw_config *cfg = c->cfg;
	bufferevent_setcb(up, up_read_cb, up_write_cb, up_event_cb, c);
	if (!fresh)
		return;
	size_t rd_high = cfg->buffer_size > cfg->response_header_max_bytes
				 ? cfg->buffer_size
				 : cfg->response_header_max_bytes + 1;
	bufferevent_setwatermark(up, EV_READ, 0, rd_high);
	bufferevent_setwatermark(up, EV_WRITE, cfg->buffer_size / 2, 0);
}

/* The connection is up: send the head and whatever body is there. */
static void up_connected(struct conn *c)
{
	struct exchange *x = &c->x;
	const struct gw_config *cfg = c->cfg;
	x->up_state = UP_WAIT_HEAD;

	struct rewrite_req_opts o = {
		.path = x->path,
		.path_needs_slash = x->path_needs_slash != 0,
		.host_out = x->host_out,
		.client_ip = gw_str_make(c->peer_ip, strlen(c->peer_ip)),
		.peer_trusted = c->peer_trusted,
		.tls = c->tls,
		.upgrade = x->upgrade,
		/* The platform's session is for the gateway only: apps are
		 * untrusted, public or private. */
		.strip_cookie = gw_str_make(cfg->auth_cookie,
					    strlen(cfg->auth_cookie)),
	};
	/* The head waits in scratch for the first piece of body, so that
	 * both leave in one write (conn_relay_request). */
	struct evbuffer *scratch = c->px->scratch;
	if (rewrite_request_head(scratch, &x->req, &o) != 0) {
		evbuffer_drain(scratch, evbuffer_get_length(scratch));
		conn_fail(c, PROXY_ERR_UP_NO_RESOURCES, "out of memory");
		return;
	}
	x->req_started = true;

	/* We answer 100-continue ourselves (and drop Expect upstream): the
	 * client learns its body is wanted as soon as the app is reachable. */
	if (x->req.expect_continue && !x->sent_continue && !x->req_body.done &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
		evbuffer_add(bufferevent_get_output(c->bev),
			     "HTTP/1.1 100 Continue\r\n\r\n", 25);
		x->sent_continue = true;
	}

	struct timeval wt = tv_ms(cfg->up_send_timeout_ms);
	bufferevent_set_timeouts(x->up, NULL, &wt);
	/* Reading is on already (up_open, or the pool), and EV_WRITE is on
	 * from creation: enabling either again would re-add its event. */
	conn_relay_request(c);
	if (!c->dead && x->up && evbuffer_get_length(scratch))
		wire_send(x->up, scratch); /* the relay had nothing to do */
	evbuffer_drain(scratch, evbuffer_get_length(scratch));
}

/* Start (or restart, for the one retry) the upstream leg. */
static void up_open(struct conn *c, bool allow_pool)
{
	struct exchange *x = &c->x;
	const struct gw_config *cfg = c->cfg;
	const char *err = NULL;

	x->up_reused = false;
	x->up = allow_pool ? upstream_pool_take(c->px->pool, x->up_addr) : NULL;
	if (x->up) {
		x->up_reused = true;
		up_setup(c, x->up, false);
		up_connected(c);
		return;
	}
	bool local = false;
	x->up = upstream_connect(c->px->pool, x->up_addr, &err, &local);
	if (!x->up) {
		/* Out of descriptors is this process's trouble, and passing:
		 * 503 + Retry-After, not a 502 that blames the app. */
		if (local)
			c->px->ctr.connect_no_fds++;
		else
			c->px->ctr.connect_errors++;
		conn_fail(c, local ? PROXY_ERR_UP_NO_RESOURCES : PROXY_ERR_UP_CONNECT,
			  err);
		return;
	}
	up_setup(c, x->up, true);
	x->up_state = UP_CONNECTING;
	/* The write timeout bounds the connect. */
	struct timeval ct = tv_ms(cfg->connect_timeout_ms);
	bufferevent_set_timeouts(x->up, NULL, &ct);
	bufferevent_enable(x->up, EV_READ | EV_WRITE);
}

/* The whole final response head must arrive within first_byte_timeout
 * of the request being sent (up_request_sent): a deadline, not an idle
 * timer, so neither a dribbled status line nor a stream of 1xx interim
 * responses can hold an exchange open. */
static void up_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	conn_enter(c);
	if (c->x.up && c->x.up_state == UP_WAIT_HEAD)
		conn_fail(c, PROXY_ERR_UP_TIMEOUT,
			  "no complete response head within first_byte_timeout");
	conn_leave(c);
}

void up_request_sent(struct conn *c)
{
	if (c->x.up_state != UP_WAIT_HEAD || !c->up_timer)
		return;
	struct timeval tv = tv_ms(c->cfg->first_byte_timeout_ms);
	event_add(c->up_timer, &tv);
}

static void req_body_init(struct conn *c)
{
	struct exchange *x = &c->x;
	body_relay_init(&x->req_body, x->req.framing, x->req.content_length,
			CHUNK_LINE_MAX, c->cfg->header_max_bytes);
	/* Request trailers never reach the app (as with nginx): fields
	 * arriving after the body could smuggle what the head may not say
	 * (Content-Length, Host, routing or X-Forwarded-* fields). */
	x->req_body.drop_trailers = true;
}

void up_start(struct conn *c)
{
	struct exchange *x = &c->x;
	x->t_up_start = gw_now_us();
	if (!c->up_timer) {
		c->up_timer = evtimer_new(c->px->base, up_timer_cb, c);
		if (!c->up_timer) {
			conn_fail(c, PROXY_ERR_UP_NO_RESOURCES, "out of memory");
			return;
		}
	}
	req_body_init(c);
	/* Client reading stays on: until the app is reachable the body waits
	 * in the input buffer, whose read watermark bounds it (and a pause
	 * and resume would cost two epoll_ctl calls per request). */
	up_open(c, true);
}

/* RFC 9110 §9.2.2: methods a client may repeat without changing what
 * the first request did. */
static bool method_idempotent(int m)
{
	return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS ||
	       m == HTTP_TRACE || m == HTTP_PUT || m == HTTP_DELETE;
}

/* A pooled connection died before answering: the app may have closed it
 * just as we wrote (the keep-alive race), or it may have read the
 * request, acted on it and crashed; from here the two look the same. So
 * the request is sent again on a fresh connection only when that is
 * harmless and possible: the method is idempotent, no byte of a response
 * (not even a 1xx) came back, and nothing of the body has been taken from
 * the client yet (the head can be rebuilt, a consumed body cannot). A
 * POST on a stale connection gets 502, as nginx does by default. */
static bool up_retry(struct conn *c)
{
	struct exchange *x = &c->x;
	if (!x->up_reused || x->up_retried || x->interim_bytes > 0 ||
	    x->req_body.consumed || !method_idempotent(x->req.method) ||
	    evbuffer_get_length(bufferevent_get_input(x->up)) > 0)
		return false;
	x->up_retried = true;
	c->px->ctr.retries++;
	event_del(c->up_timer);
	bufferevent_free(x->up);
	x->up = NULL;
	x->req_done = false;
	x->req_started = false;
	req_body_init(c);
	gw_log(GW_LOG_DEBUG, "proxy", "%s: pooled connection to %s was stale, "
	       "retrying on a new one", x->host, x->up_addr->text);
	up_open(c, false);
	return true;
}

/* ---- response --------------------------------------------------------- */

static void up_tunnel_done(void *arg, uint64_t bytes_in, uint64_t bytes_out)
{
	struct conn *c = arg;
	c->tunnel = NULL;
	c->bev = NULL; /* freed by the tunnel */
	c->x.up = NULL;
	c->x.bytes_out = bytes_out;
	if (!c->dead) {
		gw_log(GW_LOG_DEBUG, "proxy", "%s: tunnel closed (%llu bytes in, "
		       "%llu out)", c->x.host, (unsigned long long)bytes_in,
		       (unsigned long long)bytes_out);
		conn_close(c);
	}
}

static void start_tunnel(struct conn *c)
{
	struct exchange *x = &c->x;
	const struct gw_config *cfg = c->cfg;
	/* The access line is written when the switch happens: a tunnel may
	 * live for hours. */
	x->status = 101;
	conn_access_log(c);
	struct bufferevent *client = c->bev, *up = x->up;
	x->up = NULL;
	x->up_state = UP_DONE;
	c->state = CONN_TUNNEL;
	c->px->ctr.tunnels++;
	c->tunnel = tunnel_start(client, up, cfg->tunnel_idle_timeout_ms,
				 cfg->buffer_size, up_tunnel_done, c);
}

/* Move what the app sent of the body to the client. scratch may already
 * hold the response head: both leave in one write. */
static void relay_response(struct conn *c)
{
	struct exchange *x = &c->x;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer *scratch = c->px->scratch;
	const char *err = NULL;
	size_t before = evbuffer_get_length(scratch);
	enum body_status st = body_relay_step(
		&x->resp_body, bufferevent_get_input(x->up), scratch, &err);
	x->bytes_out += evbuffer_get_length(scratch) - before;
	wire_send(c->bev, scratch);
	if (st == BODY_ERROR) {
		conn_fail(c, PROXY_ERR_UP_BAD_RESPONSE, err);
		return;
	}
	if (st == BODY_DONE) {
		x->up_state = UP_DONE;
		conn_exchange_done(c);
		return;
	}
	if (evbuffer_get_length(out) >= c->cfg->buffer_size) {
		x->up_paused = true;
		bufferevent_disable(x->up, EV_READ);
	}
}

/* An interim (1xx) response: 100 is ours to send (we answered Expect),
 * others (103 Early Hints) go to HTTP/1.1 clients. All of them together
 * may take at most [upstream] header_max_bytes, and while the client does
 * not read them the app is not read either: an app streaming 1xx heads
 * cannot make the gateway buffer without bound. Returns false when the
 * exchange failed or reading paused. */
static bool interim_response(struct conn *c, size_t head_len)
{
	struct exchange *x = &c->x;
	const struct gw_config *cfg = c->cfg;
	x->interim_bytes += head_len;
	if (x->interim_bytes > cfg->response_header_max_bytes) {
		conn_fail(c, PROXY_ERR_UP_BAD_RESPONSE,
			  "interim (1xx) responses over header_max_bytes");
		return false;
	}
	if (x->resp.status != 100 && x->req.minor >= 1) {
		struct rewrite_resp_opts ro = {0};
		if (rewrite_response_head(c->px->scratch, &x->resp, &ro) != 0) {
			evbuffer_drain(c->px->scratch,
				       evbuffer_get_length(c->px->scratch));
			conn_fail(c, PROXY_ERR_UP_BAD_RESPONSE, "out of memory");
			return false;
		}
		wire_send(c->bev, c->px->scratch);
	}
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) >=
	    cfg->buffer_size) {
		x->up_paused = true; /* up_resume() reads on */
		bufferevent_disable(x->up, EV_READ);
		return false;
	}
	return true;
}

/* The final response head (status >= 200, parsed in x->resp, still in
 * the upstream input): compose it for the client into scratch. */
static int final_response_head(struct conn *c)
{
	struct exchange *x = &c->x;
	const struct gw_config *cfg = c->cfg;
	x->t_up_head = gw_now_us();
	/* An HTTP/1.0 client cannot read chunked framing: it gets the raw
	 * body, delimited by closing the connection. */
	bool dechunk = x->req.minor == 0 && x->resp.framing == HTTP1_BODY_CHUNKED;
	x->close_after = !x->req.keep_alive || c->px->draining || c->client_eof ||
			 !x->req_done || dechunk ||
			 x->resp.framing == HTTP1_BODY_CLOSE ||
			 c->nreq >= cfg->keepalive_requests ||
			 cfg->keepalive_timeout_ms == 0;
	struct http1_header extra[3];
	size_t nextra = 0;
	/* HSTS on HTTPS, unless the app sets its own for its host. */
	if (c->tls && cfg->tls_hsts &&
	    !http1_head_get(&x->resp, "Strict-Transport-Security"))
		extra[nextra++] = (struct http1_header){
			GW_STR_LIT("Strict-Transport-Security"),
			gw_str_make(cfg->tls_hsts, strlen(cfg->tls_hsts))};
	/* 1.0 clients only keep a connection they are told is kept. */
	if (x->req.minor == 0 && !x->close_after)
		extra[nextra++] = (struct http1_header){
			GW_STR_LIT("Connection"), GW_STR_LIT("keep-alive")};
	/* Say that this request waited for a cold start, and how long (ms). */
	char cold[16];
	if (x->cold_ms) {
		int cn = snprintf(cold, sizeof(cold), "%ums", x->cold_ms);
		extra[nextra++] = (struct http1_header){
			GW_STR_LIT("X-Cold-Start"), gw_str_make(cold, (size_t)cn)};
	}
	struct rewrite_resp_opts ro = {
		.close = x->close_after,
		.head_req = x->req.method == HTTP_HEAD,
		.extra_hdrs = nextra ? extra : NULL,
		.nextra = nextra,
	};
	struct http1_head sent = x->resp;
	if (dechunk)
		sent.framing = HTTP1_BODY_CLOSE;
	if (rewrite_response_head(c->px->scratch, &sent, &ro) != 0) {
		evbuffer_drain(c->px->scratch, evbuffer_get_length(c->px->scratch));
		conn_fail(c, PROXY_ERR_UP_BAD_RESPONSE, "out of memory");
		return -1;
	}
	x->resp_started = true;
	x->status = x->resp.status;
	body_relay_init(&x->resp_body, x->resp.framing, x->resp.content_length,
			CHUNK_LINE_MAX, cfg->response_header_max_bytes);
	x->resp_body.dechunk = dechunk;
	return 0;
}

/* Read response heads until the final one; forward interim ones. Heads
 * are parsed where they lie in the upstream input (made contiguous) and
 * dropped from it once rewritten: x->resp's slices are valid only until
 * then, its scalar facts (status, framing, keep_alive) for the exchange. */
static void read_response_head(struct conn *c)
{
	struct exchange *x = &c->x;
	const struct gw_config *cfg = c->cfg;
	struct evbuffer *in = bufferevent_get_input(x->up);

	while (x->up_state == UP_WAIT_HEAD && !x->up_paused) {
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			return;
		size_t n = len < cfg->response_header_max_bytes
				   ? len
				   : cfg->response_header_max_bytes;
		const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
		size_t head_len = 0;
		if (!p || http1_find_head_end(p, n, &x->resp_scan, &head_len) ==
				  HTTP1_SCAN_NEED_MORE) {
			if (len >= cfg->response_header_max_bytes)
				conn_fail(c, PROXY_ERR_UP_BAD_RESPONSE,
					  "response head too large");
			return;
		}
		x->resp_scan = 0;

		const char *err = NULL;
		struct http1_limits lim = {.max_headers = cfg->header_max_count};
		if (http1_parse_response(p, head_len, x->req.method, &lim,
					 c->px->hdr_scratch, &x->resp,
					 &err) != 0) {
			conn_fail(c, PROXY_ERR_UP_BAD_RESPONSE, err);
			return;
		}
		int st = x->resp.status;
		if (st == 101) {
			if (!x->upgrade || !x->resp.upgrade) {
				conn_fail(c, PROXY_ERR_UP_BAD_RESPONSE,
					  "101 without an upgrade request");
				return;
			}
			struct rewrite_resp_opts ro = {0};
			rewrite_response_head(c->px->scratch, &x->resp, &ro);
			evbuffer_drain(in, head_len);
			wire_send(c->bev, c->px->scratch);
			x->resp = (struct http1_head){.status = st};
			x->resp_started = true;
			x->t_up_head = gw_now_us();
			event_del(c->up_timer);
			start_tunnel(c);
			return;
		}
		if (st < 200) {
			bool go_on = interim_response(c, head_len);
			if (!c->dead && x->up)
				evbuffer_drain(in, head_len);
			x->resp = (struct http1_head){0};
			if (!go_on)
				return;
			continue;
		}
		int rc = final_response_head(c);
		if (rc == 0)
			evbuffer_drain(in, head_len);
		/* No slice of the head is used from here on. */
		x->resp.hdrs = NULL;
		x->resp.nhdrs = 0;
		x->resp.reason = x->resp.upgrade_proto = GW_STR_NULL;
		if (rc != 0)
			return;
		event_del(c->up_timer);
		x->up_state = UP_BODY;
		struct timeval rt = tv_ms(cfg->read_timeout_ms);
		struct timeval wt = tv_ms(cfg->up_send_timeout_ms);
		bufferevent_set_timeouts(x->up, &rt, &wt);
		relay_response(c);
	}
}

static void up_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	conn_enter(c);
	if (c->x.up_state == UP_WAIT_HEAD)
		read_response_head(c);
	else if (c->x.up_state == UP_BODY)
		relay_response(c);
	conn_leave(c);
}

/* The upstream output drained below the low mark. */
static void up_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	conn_enter(c);
	conn_client_resume(c);
	conn_leave(c);
}

/* The client output drained: the app may send more. */
void up_resume(struct conn *c)
{
	struct exchange *x = &c->x;
	if (!x->up_paused || !x->up)
		return;
	x->up_paused = false;
	bufferevent_enable(x->up, EV_READ);
	if (x->up_state == UP_WAIT_HEAD)
		read_response_head(c);
	else
		relay_response(c);
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct exchange *x = &c->x;
	conn_enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		up_connected(c);
		goto out;
	}
	int sockerr = EVUTIL_SOCKET_ERROR();
	if (x->up_state == UP_CONNECTING && x->act && !x->act_retried &&
	    !(what & BEV_EVENT_TIMEOUT) && sockerr == ECONNREFUSED &&
	    x->req_body.moved == 0) {
		/* An app believed warm was stopped elsewhere: nothing was
		 * sent, so this request can wait for it to wake again. */
		c->px->ctr.connect_refused++;
		x->act_retried = true;
		up_release(c, false);
		if (x->act_counted) {
			activator_done(x->act, x->up_addr);
			x->act_counted = false;
		}
		activator_refused(x->act, x->up_addr);
		conn_go(c);
		goto out;
	}
	if (x->up_state == UP_CONNECTING) {
		if (what & BEV_EVENT_TIMEOUT)
			c->px->ctr.connect_timeouts++;
		else if (sockerr == ECONNREFUSED)
			c->px->ctr.connect_refused++;
		else
			c->px->ctr.connect_errors++;
		if (what & BEV_EVENT_TIMEOUT)
			conn_fail(c, PROXY_ERR_UP_CONNECT_TIMEOUT,
				  x->up_addr->text);
		else
			conn_fail(c, PROXY_ERR_UP_CONNECT,
				  evutil_socket_error_to_string(sockerr));
		goto out;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (x->up_state == UP_WAIT_HEAD)
			conn_fail(c, (what & BEV_EVENT_WRITING)
					     ? PROXY_ERR_UP_SEND_TIMEOUT
					     : PROXY_ERR_UP_TIMEOUT,
				  x->up_addr->text);
		else
			conn_fail(c, PROXY_ERR_UP_TIMEOUT,
				  "response body stalled");
		goto out;
	}
	/* EOF or error. */
	if (x->up_state == UP_WAIT_HEAD) {
		if (up_retry(c))
			goto out;
		conn_fail(c, PROXY_ERR_UP_CLOSED,
			  (what & BEV_EVENT_ERROR)
				  ? evutil_socket_error_to_string(sockerr)
				  : "connection closed");
		goto out;
	}
	if (x->up_state == UP_BODY) {
		/* Drain what arrived with the close first. */
		relay_response(c);
		if (c->dead || x->up_state != UP_BODY)
			goto out;
		const char *err = NULL;
		if (!(what & BEV_EVENT_ERROR) &&
		    body_relay_eof(&x->resp_body, &err) == BODY_DONE) {
			x->up_state = UP_DONE;
			up_release(c, false);
			conn_exchange_done(c);
		} else {
			conn_fail(c, PROXY_ERR_UP_CLOSED,
				  err ? err : "response body cut short");
		}
	}
out:
	conn_leave(c);
}
