/* admin.c - admin listener and its tiny HTTP/1.1 exchange.
 *
 * One connection, one request: READ (head arriving) -> WAIT (gathering
 * metrics) -> WRITE (answer going out) -> LINGER (answer written, write
 * side shut, input discarded until EOF so an unread pipelined byte cannot
 * turn our close into a reset that eats the answer). The timer bounds all
 * of it. Connections are freed only from their own bufferevent or timer
 * callbacks, never while a gather is on the stack.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "admin.h"
#include "config.h"
#include "http1.h"
#include "metrics.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/compat.h"

#define ADMIN_MAX_HEADERS 64
#define ADMIN_BACKOFF_MS 100

enum admin_conn_state {
	ADMIN_READ = 0, /* waiting for a complete request head */
	ADMIN_WAIT,     /* /metrics: gather in progress */
	ADMIN_WRITE,    /* answer queued; waiting for it to drain */
	ADMIN_LINGER,   /* written and shut down; discarding until EOF */
	ADMIN_STATE_COUNT
};

enum admin_path {
	ADMIN_PATH_METRICS = 0,
	ADMIN_PATH_HEALTHZ,
	ADMIN_PATH_READYZ,
	ADMIN_PATH_OTHER,
	ADMIN_PATH_COUNT
};

/* The admin's own counters (a table like every module's). */
struct admin_stats {
	uint64_t requests[ADMIN_PATH_COUNT]; /* answered, by path */
	uint64_t rejected;                   /* 4xx/405 before routing */
	uint64_t open;                       /* admin connections now */
};

#define REQ_ROW(idx, path)                                                    \
	{"gateway_admin_requests", "Admin requests answered, by path.",        \
	 STATS_COUNTER,                                                        \
	 offsetof(struct admin_stats, requests) + (idx) * sizeof(uint64_t),    \
	 .label = "path", .label_value = (path)}
static const struct stats_metric admin_metrics[] = {
	REQ_ROW(ADMIN_PATH_METRICS, "/metrics"),
	REQ_ROW(ADMIN_PATH_HEALTHZ, "/healthz"),
	REQ_ROW(ADMIN_PATH_READYZ, "/readyz"),
	REQ_ROW(ADMIN_PATH_OTHER, "other"),
	{"gateway_admin_rejected_requests",
	 "Admin requests refused: malformed, too large, too slow or not "
	 "GET/HEAD.",
	 STATS_COUNTER, offsetof(struct admin_stats, rejected)},
	{"gateway_admin_connections_open", "Admin connections open now.",
	 STATS_GAUGE, offsetof(struct admin_stats, open)},
};
#undef REQ_ROW
static const struct stats_table admin_table = {
	.metrics = admin_metrics,
	.nmetrics = GW_ARRAY_LEN(admin_metrics),
};

struct admin_conn {
	LIST_ENTRY(admin_conn) link;
	struct admin *a;
	struct bufferevent *bev;
	struct event *timer;        /* the whole exchange's deadline */
	enum admin_conn_state state;
	size_t scan;                /* http1_find_head_end resume point */
	bool head_only;             /* HEAD: no body in the answer */
	struct stats_snap *snap;    /* ADMIN_WAIT: being filled (owned) */
	void *gather;               /* ADMIN_WAIT: the source's handle */
};

struct admin {
	struct event_base *base;
	const struct gw_config *cfg;
	struct stats *stats;
	struct admin_source src;
	struct evconnlistener *evl;
	struct event *backoff;      /* re-enables accept after EMFILE & co */
	bool erroring;
	struct gw_ratelimit rl;
	struct gw_addr addr;
	LIST_HEAD(, admin_conn) conns;
	unsigned nconns;
	struct admin_stats st;
	struct stats_reg *reg;
};

const char *admin_facts_not_ready(const struct admin_facts *f,
				  unsigned policy)
{
	if (f->draining)
		return "draining";
	if (!f->listening)
		return "not listening";
	if (!f->redis || policy == CONFIG_READYZ_REDIS_NEVER)
		return NULL;
	if (policy == CONFIG_READYZ_REDIS_STARTUP && !f->redis_loaded)
		return "routes not loaded from Redis yet";
	if (policy == CONFIG_READYZ_REDIS_ALWAYS && !f->redis_in_sync)
		return "not in sync with Redis";
	return NULL;
}

static void update_accept(struct admin *a)
{
	if (a->erroring || a->nconns >= a->cfg->admin_max_connections)
		evconnlistener_disable(a->evl);
	else
		evconnlistener_enable(a->evl);
}

static void conn_free(struct admin_conn *c)
{
	struct admin *a = c->a;
	if (c->gather && a->src.cancel)
		a->src.cancel(a->src.arg, c->gather);
	stats_snap_destroy(c->snap);
	LIST_REMOVE(c, link);
	bufferevent_free(c->bev);
	event_free(c->timer);
	free(c);
	a->nconns--;
	a->st.open = a->nconns;
	update_accept(a);
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* Queue the whole answer; body is moved out of `body` (may be NULL). */
static void respond(struct admin_conn *c, int status, const char *ctype,
		    struct evbuffer *body, const char *text)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = body ? evbuffer_get_length(body) : strlen(text);
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\n"
			    "Content-Type: %s\r\n"
			    "Content-Length: %zu\r\n"
			    "Cache-Control: no-store\r\n"
			    "%s"
			    "Connection: close\r\n\r\n",
			    status, reason_phrase(status), ctype, len,
			    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!c->head_only) {
		if (body)
			evbuffer_add_buffer(out, body);
		else
			evbuffer_add(out, text, len);
	}
	c->state = ADMIN_WRITE;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void reject(struct admin_conn *c, int status, const char *text)
{
	c->a->st.rejected++;
	respond(c, status, "text/plain; charset=utf-8", NULL, text);
}

static void gathered_cb(void *cookie)
{
	struct admin_conn *c = cookie;
	c->gather = NULL;
	/* This process's own counters last, so that they include what the
	 * gather itself counted (a worker that did not answer). */
	stats_collect(c->a->stats, c->snap);
	struct evbuffer *body = evbuffer_new();
	if (!body)
		gw_oom(sizeof(void *));
	metrics_render(c->snap, body);
	stats_snap_destroy(c->snap);
	c->snap = NULL;
	respond(c, 200, METRICS_CONTENT_TYPE, body, NULL);
	evbuffer_free(body);
}

static void serve_metrics(struct admin_conn *c)
{
	struct admin *a = c->a;
	c->state = ADMIN_WAIT;
	bufferevent_disable(c->bev, EV_READ);
	c->snap = stats_snap_create(a->src.admit);
	if (!a->src.gather) {
		gathered_cb(c);
		return;
	}
	/* done may run before gather returns; it clears c->gather then, so
	 * only a handle returned while still waiting is kept. */
	void *h = a->src.gather(a->src.arg, c->snap, gathered_cb, c);
	if (c->state == ADMIN_WAIT)
		c->gather = h;
}

static void route(struct admin_conn *c, const struct http1_head *req)
{
	struct admin *a = c->a;
	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		reject(c, 405, "only GET and HEAD\n");
		return;
	}
	c->head_only = req->method == HTTP_HEAD;
	if (req->framing == HTTP1_BODY_CHUNKED ||
	    (req->framing == HTTP1_BODY_LENGTH && req->content_length)) {
		reject(c, 400, "admin requests have no body\n");
		return;
	}
	struct gw_str path = req->target;
	const char *q = memchr(path.p, '?', path.len);
	if (q)
		path.len = (size_t)(q - path.p);
	if (gw_str_eq(path, GW_STR_LIT("/metrics"))) {
		a->st.requests[ADMIN_PATH_METRICS]++;
		serve_metrics(c);
	} else if (gw_str_eq(path, GW_STR_LIT("/healthz"))) {
		a->st.requests[ADMIN_PATH_HEALTHZ]++;
		respond(c, 200, "text/plain; charset=utf-8", NULL, "ok\n");
	} else if (gw_str_eq(path, GW_STR_LIT("/readyz"))) {
		a->st.requests[ADMIN_PATH_READYZ]++;
		const char *why =
			a->src.not_ready ? a->src.not_ready(a->src.arg) : NULL;
		if (!why) {
			respond(c, 200, "text/plain; charset=utf-8", NULL,
				"ready\n");
			return;
		}
		char text[160];
		snprintf(text, sizeof(text), "not ready: %s\n", why);
		respond(c, 503, "text/plain; charset=utf-8", NULL, text);
	} else {
		a->st.requests[ADMIN_PATH_OTHER]++;
		respond(c, 404, "text/plain; charset=utf-8", NULL,
			"not found: try /metrics, /healthz or /readyz\n");
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (c->state == ADMIN_LINGER) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (c->state != ADMIN_READ)
		return;
	size_t len = evbuffer_get_length(in);
	size_t max = c->a->cfg->admin_header_max_bytes;
	size_t look = len < max ? len : max;
	const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
	size_t head_len;
	if (http1_find_head_end(buf, look, &c->scan, &head_len) ==
	    HTTP1_SCAN_NEED_MORE) {
		if (len >= max)
			reject(c, 431, "request head too large\n");
		return;
	}
	struct http1_header hdrs[ADMIN_MAX_HEADERS];
	struct http1_limits lim = {.max_headers = ADMIN_MAX_HEADERS};
	struct http1_head req;
	const char *why = NULL;
	int status = http1_parse_request(buf, head_len, &lim, hdrs, &req, &why);
	if (status) {
		char text[160];
		snprintf(text, sizeof(text), "%s\n", why ? why : "bad request");
		reject(c, status, text);
		return;
	}
	/* req's slices point into `in`; route() is done with them before
	 * anything is drained. */
	route(c, &req);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;
	if (c->state != ADMIN_WRITE ||
	    evbuffer_get_length(bufferevent_get_output(bev)))
		return;
	/* Written: half-close and read until the client closes too. */
	c->state = ADMIN_LINGER;
	shutdown(bufferevent_getfd(bev), SHUT_WR);
	evbuffer_drain(bufferevent_get_input(bev),
		       evbuffer_get_length(bufferevent_get_input(bev)));
	bufferevent_enable(bev, EV_READ);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct admin_conn *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin_conn *c = arg;
	if (c->state == ADMIN_READ &&
	    evbuffer_get_length(bufferevent_get_input(c->bev))) {
		/* Part of a request came: say why before closing. One more
		 * timeout period to write it. */
		reject(c, 408, "request timed out\n");
		struct timeval tv = {c->a->cfg->admin_timeout_ms / 1000,
				     (c->a->cfg->admin_timeout_ms % 1000) *
					     1000};
		event_add(c->timer, &tv);
		return;
	}
	if (c->state == ADMIN_READ)
		c->a->st.rejected++;
	conn_free(c);
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct admin *a = arg;
	struct bufferevent *bev =
		bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
	struct admin_conn *c = calloc(1, sizeof(*c));
	struct event *timer = evtimer_new(a->base, timer_cb, c);
	if (!bev || !c || !timer) {
		/* One admin client dropped; the process goes on. */
		if (bev)
			bufferevent_free(bev);
		else
			evutil_closesocket(fd);
		if (timer)
			event_free(timer);
		free(c);
		return;
	}
	c->a = a;
	c->bev = bev;
	c->timer = timer;
	LIST_INSERT_HEAD(&a->conns, c, link);
	a->nconns++;
	a->st.open = a->nconns;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
	/* The parser needs the whole head contiguous: never buffer more
	 * than the limit (plus one byte to tell "too large"). */
	bufferevent_setwatermark(bev, EV_READ, 0,
				 a->cfg->admin_header_max_bytes + 1);
	bufferevent_enable(bev, EV_READ);
	struct timeval tv = {a->cfg->admin_timeout_ms / 1000,
			     (a->cfg->admin_timeout_ms % 1000) * 1000};
	event_add(timer, &tv);
	update_accept(a);
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;
	a->erroring = false;
	update_accept(a);
}

static void error_cb(struct evconnlistener *evl, void *arg)
{
	struct admin *a = arg;
	int err = EVUTIL_SOCKET_ERROR();
	unsigned dropped = 0;
	if (gw_ratelimit_allow(&a->rl, gw_now_ms(), &dropped))
		gw_log(GW_LOG_WARN, "admin",
		       "%s: accept failed: %s; pausing %d ms (%u similar "
		       "lines suppressed)",
		       a->addr.text, evutil_socket_error_to_string(err),
		       ADMIN_BACKOFF_MS, dropped);
	a->erroring = true;
	update_accept(a);
	struct timeval tv = {0, ADMIN_BACKOFF_MS * 1000};
	event_add(a->backoff, &tv);
}

struct admin *admin_create(const struct admin_params *p, char *err,
			   size_t errlen)
{
	const struct gw_addr *addr = p->cfg->admin_listen;
	struct admin *a = gw_xcalloc(1, sizeof(*a));
	a->base = p->base;
	a->cfg = p->cfg;
	a->stats = p->stats;
	a->src = p->src;
	a->addr = *addr;
	a->rl.interval_ms = 10000;
	a->rl.burst = 5;
	LIST_INIT(&a->conns);
	/* No SO_REUSEPORT: a second gateway on the same admin address must
	 * fail loudly, not share the scrapes. */
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
			 LEV_OPT_REUSEABLE;
	if (addr->ss.ss_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	a->evl = evconnlistener_new_bind(p->base, accept_cb, a, flags, 64,
					 (const struct sockaddr *)&addr->ss,
					 (int)addr->len);
	if (!a->evl) {
		snprintf(err, errlen,
			 "cannot listen on admin address %s: %s ([admin] "
			 "listen; empty turns the admin listener off)",
			 addr->text, strerror(errno));
		free(a);
		return NULL;
	}
	a->backoff = evtimer_new(p->base, backoff_cb, a);
	if (!a->backoff) {
		snprintf(err, errlen, "admin: cannot create a timer");
		evconnlistener_free(a->evl);
		free(a);
		return NULL;
	}
	evconnlistener_set_error_cb(a->evl, error_cb);
	a->reg = stats_register(p->stats, &admin_table, &a->st, NULL);
	return a;
}

const char *admin_addr_text(const struct admin *a)
{
	return a->addr.text;
}

void admin_destroy(struct admin *a)
{
	if (!a)
		return;
	while (!LIST_EMPTY(&a->conns))
		conn_free(LIST_FIRST(&a->conns));
	stats_unregister(a->reg);
	evconnlistener_free(a->evl);
	event_free(a->backoff);
	free(a);
}
