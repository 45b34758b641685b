/* proxy.c - client side of the exchange machine: accept, read and route
 * request heads, relay request bodies, local error responses, keep-alive,
 * pipelining, access log. The upstream leg lives in proxy_up.c.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "activator.h"
#include "auth.h"
#include "config.h"
#include "pages.h"
#include "proxy_int.h"
#include "wire.h"
#include "tunnel.h"
#include "core/log.h"
#include "core/compat.h"

static const struct {
	int status;
	const char *text;
} proxy_errors[PROXY_ERR_COUNT] = {
#define X(name, st, txt) [PROXY_ERR_##name] = {st, txt},
	PROXY_ERRORS(X)
#undef X
};

static void conn_process(struct conn *c);
static void timer_cb(evutil_socket_t fd, short what, void *arg);

static struct timeval tv_ms(unsigned ms)
{
	return (struct timeval){.tv_sec = ms / 1000,
				.tv_usec = (ms % 1000) * 1000};
}

/* ---- lifetime --------------------------------------------------------- */

void conn_arm_timer(struct conn *c, unsigned ms)
{
	struct timeval tv = tv_ms(ms);
	event_add(c->timer, &tv);
}


void conn_enter(struct conn *c)
{
	c->refs++;
}

static void conn_free(struct conn *c)
{
	struct proxy *px = c->px;
	TAILQ_REMOVE(&px->conns, c, link);
	px->stats.open--;
	config_unref(c->cfg);
	free(c);
	if (px->count_cb)
		px->count_cb(px->count_arg, px->stats.open);
}

void conn_leave(struct conn *c)
{
	if (--c->refs == 0 && c->dead)
		conn_free(c);
}

static void exchange_reset(struct conn *c)
{
	auth_cancel(c->x.auth_req);
	conn_unhold(c);
	if (c->x.act_counted)
		activator_done(c->x.act, &c->x.up_addr_copy);
	activator_project_release(c->x.act);
	free(c->x.head_buf);
	free(c->x.redirect);
	memset(&c->x, 0, sizeof(c->x));
}

/* Close now: both sockets, timers, exchange. The struct itself goes when
 * the last running callback leaves. Safe to call twice. */
void conn_close(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	up_release(c, false);
	if (c->tunnel) {
		struct tunnel *t = c->tunnel;
		c->tunnel = NULL;
		tunnel_abort(t); /* calls back into tunnel_done, which is a no-op
				    for a dead conn */
	}
	if (c->bev) {
		wire_free(c->bev); /* close_notify first when TLS */
		c->bev = NULL;
	}
	if (c->timer) {
		event_free(c->timer);
		c->timer = NULL;
	}
	if (c->up_timer) {
		event_free(c->up_timer);
		c->up_timer = NULL;
	}
	exchange_reset(c);
	if (c->refs == 0)
		conn_free(c);
}

static void conn_set(struct conn *c, enum conn_state s)
{
	c->state = s;
}

/* Client socket timeouts: read_ms idle while reading (0 = none, the
 * exchange's own timer rules), send_timeout while writing. */
void conn_client_timeouts(struct conn *c, unsigned read_ms)
{
	/* Setting them re-adds both events: skip it when nothing changes
	 * (most keep-alive requests). */
	if (c->client_read_ms == read_ms + 1)
		return;
	c->client_read_ms = read_ms + 1;
	struct timeval rt = tv_ms(read_ms);
	struct timeval wt = tv_ms(c->cfg->send_timeout_ms);
	bufferevent_set_timeouts(c->bev, read_ms ? &rt : NULL, &wt);
}

/* ---- access log -------------------------------------------------------- */

void conn_access_log(struct conn *c)
{
	proxy_count_exchange(c);
	if (!gw_access_log_enabled())
		return;
	const struct exchange *x = &c->x;
	char line[4096], target[2048], method[64], tbuf[32];
	uint64_t now = gw_now_ms();

	gw_log_escape(method, sizeof(method), x->req.method_name.p,
		      x->req.method_name.len);
	gw_log_escape(target, sizeof(target), x->req.target.p,
		      x->req.target.len);
	time_t secs = (time_t)(gw_wall_ms() / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", &tm);

	char up_ms[24] = "-";
	if (x->t_up_head)
		snprintf(up_ms, sizeof(up_ms), "%llu",
			 (unsigned long long)(x->t_up_head - x->t_up_start) /
				 1000);
	int n = snprintf(line, sizeof(line),
			 "%s %s %s \"%s %s HTTP/%u.%u\" %d %llu %s %llu\n",
			 tbuf, c->peer_ip, x->host[0] ? x->host : "-",
			 method[0] ? method : "-", target[0] ? target : "-",
			 x->req.major, x->req.minor, x->status,
			 (unsigned long long)x->bytes_out, up_ms,
			 (unsigned long long)(now - x->t_start));
	if (n > 0)
		gw_access_log_write(line, (size_t)n < sizeof(line)
						  ? (size_t)n
						  : sizeof(line) - 1);
}

/* ---- local responses ---------------------------------------------------- */

/* After the output is flushed, half-close and keep discarding what the
 * client still sends for a moment: closing a socket with unread input
 * makes the kernel send a reset, which can destroy the response we just
 * wrote before the client reads it (nginx's "lingering close"). */
#define LINGER_MS 2000

static void linger_start(struct conn *c)
{
	if (c->client_eof) {
		conn_close(c);
		return;
	}
	c->lingering = true;
	wire_half_close(c->bev); /* TLS: close_notify, then FIN */
	conn_arm_timer(c, LINGER_MS);
}

/* Flush what is queued, then close (lingering if the client may still be
 * sending). */
static void conn_linger_close(struct conn *c)
{
	if (!c->bev) {
		conn_close(c);
		return;
	}
	conn_set(c, CONN_CLOSING);
	event_del(c->timer);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	conn_client_timeouts(c, 0);
	/* A client that has closed its side has nothing left to discard, and
	 * reading again would only report that EOF again (which ends CLOSING
	 * with the response still queued). */
	bufferevent_enable(c->bev, c->client_eof ? EV_WRITE : EV_READ | EV_WRITE);
	if (c->client_eof)
		wire_keep_writing(c->bev);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		linger_start(c);
}

/* The exchange failed. Before any response byte the client gets an error
 * page; after, the only honest signal left is closing the connection. */
void conn_fail(struct conn *c, enum proxy_err err, const char *detail)
{
	struct exchange *x = &c->x;
	int status = proxy_errors[err].status;
	bool https_redirect = err == PROXY_ERR_HTTPS_MOVED ||
			      err == PROXY_ERR_HTTPS_FOUND ||
			      err == PROXY_ERR_HTTPS_TEMPORARY ||
			      err == PROXY_ERR_HTTPS_PERMANENT;
	/* Redirects to https are routine (the access log has them). */
	enum gw_log_level lvl = status >= 500	  ? GW_LOG_WARN
				: https_redirect ? GW_LOG_DEBUG
						 : GW_LOG_INFO;
	/* Refusals of private projects, 503s while Redis is down and while
	 * descriptors run out: any client can have as many as it likes, so
	 * the log gets a sample. */
	bool refusal = err == PROXY_ERR_AUTH_LOGIN ||
		       err == PROXY_ERR_AUTH_REQUIRED ||
		       err == PROXY_ERR_AUTH_FORBIDDEN ||
		       err == PROXY_ERR_AUTH_UNAVAILABLE ||
		       err == PROXY_ERR_ROUTES_UNAVAILABLE ||
		       err == PROXY_ERR_UP_NO_RESOURCES;
	unsigned dropped = 0;
	if (lvl <= gw_log_threshold &&
	    (!refusal || gw_ratelimit_allow(&c->px->refusal_rl, gw_now_ms(),
					    &dropped))) {
		char more[48] = "";
		if (dropped)
			snprintf(more, sizeof(more),
				 " (%u similar line(s) suppressed)", dropped);
		gw_log(lvl, "proxy", "%s %s: %s%s%s (%d)%s", c->peer_ip,
		       x->host[0] ? x->host : "-", proxy_errors[err].text,
		       detail ? ": " : "", detail ? detail : "", status, more);
	}

	bool body_pending = x->req_started ? !x->req_done
					   : x->req.framing != HTTP1_BODY_NONE;
	up_release(c, false);
	if (x->resp_started || !c->bev) {
		x->status = x->status ? x->status : status;
		conn_access_log(c);
		conn_close(c);
		return;
	}
	/* A request whose body we did not consume, or whose head we could not
	 * parse, leaves the stream unframed: close after the page. */
	bool close = body_pending || err == PROXY_ERR_BAD_REQUEST ||
		     err == PROXY_ERR_HEAD_TOO_LARGE ||
		     err == PROXY_ERR_BODY_TOO_LARGE ||
		     err == PROXY_ERR_HEADER_TIMEOUT ||
		     err == PROXY_ERR_BODY_TIMEOUT ||
		     err == PROXY_ERR_VERSION || err == PROXY_ERR_EXPECTATION ||
		     err == PROXY_ERR_NOT_IMPLEMENTED || c->client_eof ||
		     c->px->draining || !x->req.keep_alive || x->req.major == 0 ||
		     c->nreq >= c->cfg->keepalive_requests;
	struct pages_opts po = {
		.html = x->req.hdrs ? proxy_wants_html(&x->req) : false,
		.close = close,
		.head_only = x->req.method == HTTP_HEAD && x->req.major,
		.location = err == PROXY_ERR_AUTH_LOGIN || https_redirect
				    ? x->redirect
				    : NULL,
		.text = https_redirect ? "This page is served over HTTPS." : NULL,
		.hsts = c->tls ? c->cfg->tls_hsts : NULL,
		/* A waking app, or descriptors running out for a moment:
		 * worth trying again shortly. */
		.retry_after = err == PROXY_ERR_HOLD_FULL ||
					       err == PROXY_ERR_WAKE_FAILED
				       ? 5
			       : err == PROXY_ERR_WAKING_PAGE ||
					       err == PROXY_ERR_UP_NO_RESOURCES ||
					       err == PROXY_ERR_DRAIN_HELD
				       ? 1
				       : 0,
		.www_auth = err == PROXY_ERR_AUTH_REQUIRED,
		.waking = err == PROXY_ERR_WAKING_PAGE,
	};
	int n = pages_write(bufferevent_get_output(c->bev), status, &po);
	x->status = status;
	x->bytes_out = n > 0 ? (uint64_t)n : 0;
	conn_access_log(c);
	if (close) {
		conn_linger_close(c);
		return;
	}
	exchange_reset(c);
	conn_set(c, CONN_IDLE);
	conn_process(c);
}

/* ---- reading a request ---------------------------------------------------- */

/* Try to read one request head from the client input. Returns true when
 * it made progress (an exchange started or an error was answered). */
static bool read_head(struct conn *c)
{
	const struct gw_config *cfg = c->cfg;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct exchange *x = &c->x;

	if (c->state == CONN_IDLE) {
		/* RFC 9112 §2.2: ignore empty lines before a request-line. */
		for (;;) {
			unsigned char b[2];
			ev_ssize_t got = evbuffer_copyout(in, b, 2);
			if (got >= 1 && b[0] == '\n')
				evbuffer_drain(in, 1);
			else if (got == 2 && b[0] == '\r' && b[1] == '\n')
				evbuffer_drain(in, 2);
			else
				break;
		}
		if (evbuffer_get_length(in) == 0)
			return false;
		if (c->px->draining && c->nreq > 0)
			return false;
		conn_set(c, CONN_HEAD);
		c->head_scan = 0;
		x->t_start = gw_now_ms();
		/* The keep-alive timer stops; the head's deadline starts only
		 * if the head is not all here (most are). */
		event_del(c->timer);
		c->head_timer = false;
	}

	size_t len = evbuffer_get_length(in);
	size_t n = len < cfg->header_max_bytes ? len : cfg->header_max_bytes;
	const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
	size_t head_len = 0;
	if (http1_find_head_end(p, n, &c->head_scan, &head_len) ==
	    HTTP1_SCAN_NEED_MORE) {
		if (len >= cfg->header_max_bytes) {
			event_del(c->timer);
			conn_fail(c, PROXY_ERR_HEAD_TOO_LARGE, NULL);
			return true;
		}
		if (!c->head_timer) {
			/* From the head's first byte, as before. */
			uint64_t spent = gw_now_ms() - x->t_start;
			unsigned left = spent < cfg->header_timeout_ms
						? cfg->header_timeout_ms -
							  (unsigned)spent
						: 1;
			conn_arm_timer(c, left);
			c->head_timer = true;
		}
		return false;
	}

	if (c->head_timer)
		event_del(c->timer);
	c->nreq++;
	c->px->stats.requests++;

	/* Parse where the head lies, then keep one copy of what this request
	 * has: its fields (not header_max_count slots: a connection waiting
	 * for a cold app must cost little) and its bytes, in one block. */
	const char *err = NULL;
	struct http1_limits lim = {.max_headers = cfg->header_max_count};
	int st = http1_parse_request(p, head_len, &lim, c->px->hdr_scratch,
				     &x->req, &err);
	size_t hb = x->req.nhdrs * sizeof(*x->req.hdrs);
	x->head_buf = gw_xmalloc(hb + head_len);
	x->head_len = head_len;
	memcpy(x->head_buf + hb, p, head_len);
	if (x->req.hdrs) {
		memcpy(x->head_buf, x->req.hdrs, hb);
		x->req.hdrs = (struct http1_header *)(void *)x->head_buf;
	}
	http1_head_rebase(&x->req, p, head_len, x->head_buf + hb);
	evbuffer_drain(in, head_len);
	if (st != 0) {
		enum proxy_err e = st == 431   ? PROXY_ERR_HEAD_TOO_LARGE
				   : st == 417 ? PROXY_ERR_EXPECTATION
				   : st == 501 ? PROXY_ERR_NOT_IMPLEMENTED
				   : st == 505 ? PROXY_ERR_VERSION
					       : PROXY_ERR_BAD_REQUEST;
		x->req.framing = HTTP1_BODY_NONE;
		conn_fail(c, e, err);
		return true;
	}
	/* A declared length past the limit is refused before anything is
	 * routed or sent (and before any 100 Continue); a chunked body is
	 * counted as it is relayed (conn_relay_request). */
	if (cfg->body_max_bytes && x->req.framing == HTTP1_BODY_LENGTH &&
	    x->req.content_length > cfg->body_max_bytes) {
		conn_fail(c, PROXY_ERR_BODY_TOO_LARGE, NULL);
		return true;
	}
	conn_set(c, CONN_EXCHANGE);
	/* 0: go; 1: waiting for authorization (auth_done goes on); -1:
	 * answered. */
	if (conn_route(c) != 0)
		return true;
	conn_go(c);
	return true;
}

/* Handle everything the client input holds, as far as the current state
 * allows. A loop, not recursion: a pipelined burst of requests answered
 * locally must not grow the stack. */
static void conn_process(struct conn *c)
{
	if (c->in_process)
		return; /* the outer call's loop picks up from here */
	c->in_process = true;
	while (!c->dead && c->bev &&
	       (c->state == CONN_IDLE || c->state == CONN_HEAD)) {
		/* A client that does not read its (local) responses gets no
		 * more until it does. */
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) >=
		    c->cfg->buffer_size) {
			bufferevent_disable(c->bev, EV_READ);
			c->in_process = false;
			return;
		}
		if (!read_head(c))
			break;
	}
	c->in_process = false;
	if (c->dead || !c->bev)
		return;
	/* The rest of a head that began in the buffered bytes: reading may
	 * have been paused above while local responses drained, and nothing
	 * else turns it back on (the head would time out with a 408). */
	if (c->state == CONN_HEAD &&
	    !(bufferevent_get_enabled(c->bev) & EV_READ))
		bufferevent_enable(c->bev, EV_READ);
	if (c->state == CONN_IDLE) {
		if (c->client_eof || (c->px->draining && c->nreq > 0)) {
			conn_linger_close(c);
			return;
		}
		if (c->cfg->keepalive_timeout_ms == 0 && c->nreq > 0) {
			conn_linger_close(c);
			return;
		}
		conn_arm_timer(c, c->nreq ? c->cfg->keepalive_timeout_ms
				     : c->cfg->header_timeout_ms);
		conn_client_timeouts(c, 0);
		if (!(bufferevent_get_enabled(c->bev) & EV_READ))
			bufferevent_enable(c->bev, EV_READ);
	}
}

/* ---- request body --------------------------------------------------------- */

/* Move what the client has sent of the body to the upstream. */
void conn_relay_request(struct conn *c)
{
	struct exchange *x = &c->x;
	if (x->req_done || x->up_state < UP_WAIT_HEAD || !x->up)
		return;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(x->up);
	const char *err = NULL;
	/* scratch may already hold the request head (up_connected). */
	enum body_status st =
		body_relay_step(&x->req_body, in, c->px->scratch, &err);
	uint64_t max = c->px->cfg->body_max_bytes;
	if (max && x->req_body.moved > max) {
		/* Not one byte past the limit reaches the app: the upstream
		 * connection goes (unfinished request) with what is queued. */
		evbuffer_drain(c->px->scratch,
			       evbuffer_get_length(c->px->scratch));
		conn_fail(c, PROXY_ERR_BODY_TOO_LARGE, "chunked body");
		return;
	}
	wire_send(x->up, c->px->scratch);
	if (st == BODY_ERROR) {
		conn_fail(c, PROXY_ERR_BAD_REQUEST, err);
		return;
	}
	if (st == BODY_DONE) {
		x->req_done = true;
		/* From now on the app owes us a response. */
		up_request_sent(c);
		conn_client_timeouts(c, 0);
		return;
	}
	if (c->client_eof) {
		conn_fail(c, PROXY_ERR_BAD_REQUEST,
			  "client closed in the middle of the request body");
		return;
	}
	if (evbuffer_get_length(out) >= c->cfg->buffer_size) {
		x->client_paused = true;
		bufferevent_disable(c->bev, EV_READ);
	} else {
		conn_client_timeouts(c, c->cfg->body_timeout_ms);
		bufferevent_enable(c->bev, EV_READ);
	}
}

/* The upstream drained its output: the client may send more body. */
void conn_client_resume(struct conn *c)
{
	if (!c->x.client_paused || !c->bev)
		return;
	c->x.client_paused = false;
	conn_relay_request(c);
}

/* ---- end of an exchange ----------------------------------------------------- */

void conn_exchange_done(struct conn *c)
{
	struct exchange *x = &c->x;
	bool reusable = x->req_done && x->resp.keep_alive;
	up_release(c, reusable);
	conn_access_log(c);
	if (x->close_after) {
		conn_linger_close(c);
		return;
	}
	exchange_reset(c);
	conn_set(c, CONN_IDLE);
	conn_process(c);
}

/* ---- libevent callbacks ------------------------------------------------------ */

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	conn_enter(c);
	switch (c->state) {
	case CONN_IDLE:
	case CONN_HEAD:
		conn_process(c);
		break;
	case CONN_EXCHANGE:
		conn_relay_request(c);
		break;
	case CONN_CLOSING: {
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	}
	case CONN_TUNNEL:
	case CONN_STATE_COUNT:
		break;
	}
	conn_leave(c);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	conn_enter(c);
	if (c->state == CONN_CLOSING) {
		if (!c->lingering &&
		    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			linger_start(c);
	} else if (c->state == CONN_EXCHANGE) {
		up_resume(c);
	} else if (c->state == CONN_IDLE || c->state == CONN_HEAD) {
		/* Local responses drained: look at pipelined requests again. */
		conn_process(c);
	}
	conn_leave(c);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	conn_enter(c);
	if (c->state == CONN_CLOSING) {
		if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) &&
		    !(what & BEV_EVENT_ERROR) && !c->lingering &&
		    evbuffer_get_length(bufferevent_get_output(bev))) {
			/* Half-closed while its response is still going out:
			 * finish that first (client_write_cb ends it). */
			c->client_eof = true;
			wire_keep_writing(bev);
		} else {
			conn_close(c); /* client gone, or the flush timed out */
		}
	} else if (what & BEV_EVENT_TIMEOUT) {
		if ((what & BEV_EVENT_READING) && c->state == CONN_EXCHANGE &&
		    !c->x.req_done)
			conn_fail(c, PROXY_ERR_BODY_TIMEOUT, NULL);
		else {
			gw_log(GW_LOG_DEBUG, "proxy", "%s: client send timeout",
			       c->peer_ip);
			conn_close(c);
		}
	} else if (what & BEV_EVENT_ERROR) {
		gw_log(GW_LOG_DEBUG, "proxy", "%s: client connection error: %s",
		       c->peer_ip,
		       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		if (c->state == CONN_EXCHANGE && c->x.up_state != UP_NONE)
			conn_access_log(c);
		conn_close(c);
	} else if (what & BEV_EVENT_EOF) {
		c->client_eof = true;
		switch (c->state) {
		case CONN_IDLE:
		case CONN_HEAD:
		case CONN_CLOSING:
			/* Whatever complete requests are buffered were already
			 * handled; a partial head is dropped. */
			if (c->state == CONN_CLOSING)
				break;
			if (evbuffer_get_length(bufferevent_get_output(bev)))
				conn_linger_close(c);
			else
				conn_close(c);
			break;
		case CONN_EXCHANGE:
			/* The response can still be written to a half-closed
			 * connection; a request body cut short cannot be. */
			wire_keep_writing(bev);
			if (!c->x.req_done && c->x.up_state >= UP_WAIT_HEAD)
				conn_relay_request(c);
			else if (!c->x.req_done &&
				 c->x.req.framing != HTTP1_BODY_NONE) {
				/* still connecting: fail when relaying */
			}
			break;
		case CONN_TUNNEL:
		case CONN_STATE_COUNT:
			break;
		}
	}
	conn_leave(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	conn_enter(c);
	if (c->state == CONN_HEAD) {
		c->x.req.major = 0; /* no parsed head: plain text, close */
		conn_fail(c, PROXY_ERR_HEADER_TIMEOUT, NULL);
	} else if (c->state == CONN_IDLE || c->state == CONN_CLOSING) {
		conn_close(c);
	} else if (c->state == CONN_EXCHANGE && c->x.act_hold) {
		/* Still waking after the grace: show the waking page (the
		 * app keeps waking; the page polls for it). */
		conn_unhold(c);
		bufferevent_enable(c->bev, EV_READ);
		conn_fail(c, PROXY_ERR_WAKING_PAGE, NULL);
	}
	conn_leave(c);
}

/* ---- the proxy ------------------------------------------------------------------ */

struct proxy *proxy_create(const struct proxy_params *p)
{
	struct proxy *px = gw_xcalloc(1, sizeof(*px));
	px->base = p->base;
	px->cfg = config_ref(p->cfg);
	px->routes = p->routes;
	px->rsync = p->rsync;
	px->auth = p->auth;
	px->act = p->act;
	px->pool = p->pool;
	px->count_cb = p->count_cb;
	px->count_arg = p->count_arg;
	TAILQ_INIT(&px->conns);
	px->unrouted = &px->own_row;
	px->refusal_rl.interval_ms = 10000;
	px->refusal_rl.burst = 10;
	px->scratch = evbuffer_new();
	if (!px->scratch)
		gw_oom(0);
	px->hdr_cap = p->cfg->header_max_count;
	px->hdr_scratch = gw_xcalloc(px->hdr_cap, sizeof(*px->hdr_scratch));
	return px;
}

void proxy_set_config(struct proxy *px, const struct gw_config *cfg)
{
	if (cfg->header_max_count > px->hdr_cap) {
		/* Between callbacks nothing points into the scratch. */
		free(px->hdr_scratch);
		px->hdr_cap = cfg->header_max_count;
		px->hdr_scratch =
			gw_xcalloc(px->hdr_cap, sizeof(*px->hdr_scratch));
	}
	const struct gw_config *old = px->cfg;
	px->cfg = config_ref(cfg);
	config_unref(old);
}

/* A client connection on bev, which it owns from here on (plain, or TLS
 * with the handshake done). */
static void conn_open(struct proxy *px, struct bufferevent *bev, bool tls,
		      const struct sockaddr *sa, int salen)
{
	const struct gw_config *cfg = px->cfg;
	struct conn *c = gw_xcalloc(1, sizeof(*c));
	c->px = px;
	c->cfg = config_ref(cfg);
	c->bev = bev;
	c->tls = tls;
	c->timer = evtimer_new(px->base, timer_cb, c);
	if (!c->timer) {
		/* Memory pressure: drop this client, keep the proxy. */
		wire_free(c->bev);
		config_unref(c->cfg);
		free(c);
		return;
	}
	gw_addr_from_sockaddr(&c->peer, sa, (socklen_t)salen);
	gw_addr_ip(&c->peer, c->peer_ip, sizeof(c->peer_ip));
	c->peer_trusted = config_peer_trusted(cfg, &c->peer);

	size_t rd_high = cfg->buffer_size > cfg->header_max_bytes
				 ? cfg->buffer_size
				 : cfg->header_max_bytes + 1;
	bufferevent_setwatermark(c->bev, EV_READ, 0, rd_high);
	bufferevent_setwatermark(c->bev, EV_WRITE, cfg->buffer_size / 2, 0);
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
			  client_event_cb, c);
	conn_client_timeouts(c, 0);

	TAILQ_INSERT_TAIL(&px->conns, c, link);
	px->stats.open++;
	px->stats.connections++;
	if (px->count_cb)
		px->count_cb(px->count_arg, px->stats.open);

	conn_set(c, CONN_IDLE);
	conn_arm_timer(c, cfg->header_timeout_ms);
	/* EV_WRITE is enabled from creation and armed when output is queued;
	 * enabling it here would arm it for nothing. */
	bufferevent_enable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->bev))) {
		/* Bytes that came with the end of a TLS handshake. */
		conn_enter(c);
		conn_process(c);
		conn_leave(c);
	}
}

void proxy_accept(struct proxy *px, evutil_socket_t fd,
		  const struct sockaddr *sa, int salen)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Callbacks run straight from the socket's event, not deferred to a
	 * second pass of the loop: every callback brackets itself with
	 * conn_enter/conn_leave and none is invoked from inside a call we
	 * make (libevent defers a failed connect's event by itself). TLS
	 * bufferevents (tls.c) keep deferred callbacks: OpenSSL can report
	 * from inside a write. */
	struct bufferevent *bev =
		bufferevent_socket_new(px->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	conn_open(px, bev, false, sa, salen);
}

void proxy_accept_tls(struct proxy *px, struct bufferevent *bev,
		      const struct sockaddr *sa, int salen)
{
	conn_open(px, bev, true, sa, salen);
}

void proxy_shutdown(struct proxy *px)
{
	px->draining = true;
	struct conn *c, *next;
	for (c = TAILQ_FIRST(&px->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		/* Idle as far as we have read: the client's next request may
		 * be in the kernel already, and close() with unread bytes
		 * sends RST. A lingering close sends FIN and discards, which
		 * the client takes for the ordinary idle close (and retries). */
		if (c->state == CONN_IDLE &&
		    evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
			conn_linger_close(c);
	}
}

void proxy_drain_cut(struct proxy *px)
{
	struct conn *c, *next;
	for (c = TAILQ_FIRST(&px->conns); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state != CONN_EXCHANGE || !c->x.act_hold)
			continue;
		conn_enter(c);
		conn_unhold(c);
		event_del(c->timer); /* the waking-page grace */
		conn_fail(c, PROXY_ERR_DRAIN_HELD, NULL);
		conn_leave(c);
	}
}

void proxy_get_stats(const struct proxy *px, struct proxy_stats *out)
{
	*out = px->stats;
}

void proxy_destroy(struct proxy *px)
{
	if (!px)
		return;
	px->count_cb = NULL;
	while (!TAILQ_EMPTY(&px->conns)) {
		struct conn *c = TAILQ_FIRST(&px->conns);
		c->refs = 0;
		conn_close(c);
	}
	proxy_stats_unregister(px);
	evbuffer_free(px->scratch);
	free(px->hdr_scratch);
	config_unref(px->cfg);
	free(px);
}
