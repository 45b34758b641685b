/* proxy_int.h - private to proxy.c and proxy_up.c: the connection and
 * exchange structures and the functions the two halves call in each other.
 * Never included from outside gateway/proxy*.c.
 *
 * Lifetime: a struct conn is freed only by conn_leave() once it is marked
 * dead and no callback is running on it (refs == 0). Every libevent
 * callback brackets its work with conn_enter()/conn_leave(), and code that
 * calls something that may close the connection checks c->dead after.
 */
#ifndef GW_PROXY_INT_H
#define GW_PROXY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "body.h"
#include "core/addr.h"
#include "core/log.h"
#include "hostname.h"
#include "http1.h"
#include "proxy.h"
#include "core/stats.h"

struct bufferevent;
struct event;
struct route;
struct tunnel;

/* Why an exchange failed: the status the client gets and the log reason.
 * One list generates the enum and the table (proxy.c). */
#define PROXY_ERRORS(X)                                                        \
	X(BAD_REQUEST, 400, "bad request")                                    \
	X(AUTH_LOGIN, 302, "not signed in: sent to the login page")           \
	X(AUTH_REQUIRED, 401, "not signed in")                                \
	X(AUTH_FORBIDDEN, 403, "signed in but not a member")                  \
	X(NO_ROUTE, 404, "no app for this host")                              \
	X(HEADER_TIMEOUT, 408, "request head timed out")                      \
	X(BODY_TIMEOUT, 408, "request body timed out")                        \
	X(EXPECTATION, 417, "unsupported expectation")                        \
	X(HEAD_TOO_LARGE, 431, "request head too large")                      \
	X(BODY_TOO_LARGE, 413, "request body larger than body_max_bytes")     \
	X(NOT_IMPLEMENTED, 501, "not implemented")                            \
	X(VERSION, 505, "HTTP version not supported")                         \
	X(ROUTES_UNAVAILABLE, 503, "unknown host while Redis is unreachable")  \
	X(AUTH_UNAVAILABLE, 503, "cannot check authorization: Redis down")     \
	X(NO_UPSTREAM, 503, "route has no upstream address")                  \
	X(HOLD_FULL, 503, "too many requests waiting for the app to wake")     \
	X(WAKING_PAGE, 503, "browser shown the waking page")                   \
	X(WAKE_READY, 204, "wake status: the app is ready")                   \
	X(WAKE_FAILED, 503, "the app did not become ready")                    \
	X(DRAIN_HELD, 503, "still held for a wake at drain_timeout")           \
	X(UP_CONNECT, 502, "upstream connect failed")                         \
	X(UP_NO_RESOURCES, 503, "no descriptor or memory for an upstream "     \
				"connection")                                 \
	X(UP_CLOSED, 502, "upstream closed before responding")                \
	X(UP_BAD_RESPONSE, 502, "invalid upstream response")                  \
	X(UP_CONNECT_TIMEOUT, 504, "upstream connect timed out")              \
	X(UP_TIMEOUT, 504, "upstream response timed out")                     \
	X(UP_SEND_TIMEOUT, 504, "upstream stopped reading the request")     \
	X(HTTPS_MOVED, 301, "plain HTTP: redirected to https")                \
	X(HTTPS_FOUND, 302, "plain HTTP: redirected to https")                \
	X(HTTPS_TEMPORARY, 307, "plain HTTP: redirected to https")            \
	X(HTTPS_PERMANENT, 308, "plain HTTP: redirected to https")

enum proxy_err {
#define X(name, status, text) PROXY_ERR_##name,
	PROXY_ERRORS(X)
#undef X
	PROXY_ERR_COUNT
};

/* Client connection state (one enum, one transition point: conn_set). */
enum conn_state {
	CONN_IDLE = 0, /* no request in progress (new or kept alive) */
	CONN_HEAD,     /* receiving a request head */
	CONN_EXCHANGE, /* a routed request is being proxied */
	CONN_TUNNEL,   /* upgraded: the tunnel owns both sockets */
	CONN_CLOSING,  /* flushing what is left, then close */
	CONN_STATE_COUNT
};

/* Upstream leg of the current exchange. */
enum up_state {
	UP_NONE = 0,   /* no upstream yet (or released) */
	UP_CONNECTING, /* TCP connect in progress */
	UP_WAIT_HEAD,  /* request going out; no final response head yet */
	UP_BODY,       /* relaying the response body */
	UP_DONE,       /* response relayed completely */
	UP_STATE_COUNT
};

/* Everything that lives exactly as long as one request/response. */
struct exchange {
	char *head_buf;          /* owned: req.hdrs (exactly nhdrs), then a
				    copy of the request head's bytes */
	size_t head_len;         /* bytes of the head */
	struct http1_head req;   /* slices into head_buf */
	char host[HOSTNAME_MAX]; /* normalised routing key */
	struct gw_str host_out;  /* authority to send as Host */
	struct gw_str path;      /* origin-form target to send */
	int path_needs_slash;
	bool upgrade;            /* forwarded as an upgrade request */
	const struct gw_addr *up_addr; /* = &up_addr_copy once routed */
	struct gw_addr up_addr_copy; /* routes may change under us */
	struct auth_req *auth_req; /* pending authorization (owned) */
	char *redirect;          /* Location of a login redirect (owned) */
	struct act_project *act; /* scale-to-zero project, or NULL */
	struct act_hold *act_hold; /* held while the app wakes (owned) */
	struct event *hold_close; /* while held: the client closing (owned) */
	bool act_counted;        /* activity counted: activator_done owed */
	bool act_retried;        /* one re-wake after a refused connect */
	unsigned cold_ms;        /* held this long for a cold start */
	bool wake_status;        /* the waking page's status poll */

	struct body_relay req_body; /* request body, client -> upstream */
	bool req_started;        /* request head handed to the upstream */
	bool req_done;           /* whole request handed to the upstream */
	bool sent_continue;      /* we answered "100 Continue" */

	struct bufferevent *up;  /* upstream connection (owned) */
	enum up_state up_state;
	bool up_reused;          /* came from the keep-alive pool */
	bool up_retried;         /* one retry on a fresh connection used */
	bool client_paused;      /* client reading off: upstream output full */
	bool up_paused;          /* upstream reading off: client output full */

	struct http1_head resp;  /* final (or interim) response head: its
				    slices (hdrs in the proxy's hdr_scratch,
				    reason) are valid only while the head
				    is being handled; the scalars after */
	size_t interim_bytes;    /* 1xx head bytes received (capped) */
	size_t resp_scan;        /* http1_find_head_end resume point */
	struct body_relay resp_body;
	bool resp_started;       /* a final response head went to the client */
	bool close_after;        /* close the client after this exchange */

	int status;              /* status sent to the client (log) */
	uint64_t bytes_out;      /* body bytes sent to the client (log) */
	uint64_t t_start;        /* ms: first byte of the request head */
	uint64_t t_up_start;     /* us: upstream leg started */
	uint64_t t_up_head;      /* us: response head received (0: none) */
	struct proxy_project_stats *prow; /* the project's counters (from the
					     route: no lookup per request) */
};

struct conn {
	TAILQ_ENTRY(conn) link;   /* in proxy.conns */
	struct proxy *px;
	const struct gw_config *cfg; /* the snapshot current at accept, for
					the connection's life (a reference:
					a reload does not change it) */
	struct bufferevent *bev;  /* client connection (owned until tunnel) */
	struct event *timer;      /* head deadline / keep-alive idle */
	struct event *up_timer;   /* response-head deadline (proxy_up.c);
				     made on the first upstream exchange */
	struct gw_addr peer;
	char peer_ip[48];         /* textual peer IP, for logs and XFF */
	bool peer_trusted;        /* peer in trusted_proxies */
	bool tls;                 /* bev is a TLS connection (tls.h) */
	enum conn_state state;
	unsigned refs;            /* callbacks running on this conn */
	bool dead;                /* closed; free when refs drops to 0 */
	bool client_eof;          /* the client stopped sending */
	bool in_process;          /* conn_process() is on the stack */
	bool lingering;           /* CLOSING: flushed, half-closed, discarding */
	unsigned nreq;            /* exchanges started on this connection */
	size_t head_scan;         /* http1_find_head_end resume point */
	bool head_timer;          /* CONN_HEAD: timer is the head deadline */
	unsigned client_read_ms;  /* read timeout last set + 1 (0: unset) */
	struct tunnel *tunnel;    /* CONN_TUNNEL only (owned by itself) */
	struct exchange x;        /* the current exchange */
};

TAILQ_HEAD(conn_list, conn);

/* One project's series (a keyed row, core/stats.h): what each exchange
 * adds when it ends (conn_access_log). */
struct proxy_project_stats {
	uint64_t code[5];          /* exchanges by status class 1xx..5xx;
				      a client gone before any answer is 4xx
				      (as nginx's 499) */
	struct stats_hist latency; /* upstream leg start -> response head, us */
};

/* The proxy's own counters and gauges. */
struct proxy_counters {
	struct stats_hist latency;  /* every project's upstream latency, us */
	uint64_t in_flight;         /* gauge (refresh): exchanges in progress,
				       held ones included */
	uint64_t tunnels_open;      /* gauge (refresh) */
	uint64_t tunnels;           /* upgrades switched to a tunnel */
	uint64_t connect_refused;   /* upstream connects refused */
	uint64_t connect_timeouts;  /* upstream connects timed out */
	uint64_t connect_errors;    /* other upstream connect failures */
	uint64_t connect_no_fds;    /* no socket: this process out of descriptors */
	uint64_t retries;           /* stale pooled connections retried */
};

struct proxy {
	struct event_base *base;
	const struct gw_config *cfg; /* for new connections (a reference) */
	struct routes *routes;
	struct routesync *rsync;  /* NULL without Redis */
	struct auth *auth;        /* NULL without Redis */
	struct activator *act;    /* scale to zero; NULL when unused */
	struct upstream_pool *pool;
	proxy_count_cb count_cb;
	void *count_arg;
	struct conn_list conns;
	bool draining;            /* proxy_shutdown() was called */
	/* Where an outgoing head and body are composed before wire_send();
	 * always empty between callbacks (one loop, one thread). */
	struct evbuffer *scratch;
	/* Parser output for one head at a time: hdr_cap slots, the largest
	 * header_max_count of any snapshot a connection may still use (it
	 * only grows). */
	struct http1_header *hdr_scratch;
	unsigned hdr_cap;
	struct proxy_stats stats;
	struct proxy_counters ctr;   /* registered by proxy_stats_register */
	struct stats_reg *reg;
	struct stats_keyed *by_project; /* gateway_requests_total{project} */
	/* Exchanges with no project (unknown host, bad request): the "_none"
	 * row, or own_row before proxy_stats_register. */
	struct proxy_project_stats *unrouted;
	struct proxy_project_stats own_row;
	/* Error-log lines for refusals any client can repeat at will (the
	 * access log still has every one). */
	struct gw_ratelimit refusal_rl;
};

/* proxy.c */
void conn_enter(struct conn *c);
void conn_leave(struct conn *c);
void conn_close(struct conn *c);
void conn_fail(struct conn *c, enum proxy_err err, const char *detail);
void conn_exchange_done(struct conn *c);
void conn_client_resume(struct conn *c);
void conn_relay_request(struct conn *c);
void conn_access_log(struct conn *c);
void conn_client_timeouts(struct conn *c, unsigned read_ms);
void conn_arm_timer(struct conn *c, unsigned ms);

/* proxy_stats.c */
/* The counters of route r's project (cached on the route). */
struct proxy_project_stats *proxy_project_row(struct proxy *px,
					      struct route *r);
/* An exchange ended (once, from conn_access_log): count it. */
void proxy_count_exchange(struct conn *c);
/* proxy_destroy: the registrations go (NULL-safe when never made). */
void proxy_stats_unregister(struct proxy *px);

/* proxy_route.c */
/* Route, and authorize if private, a parsed head. 0: go on with
 * conn_go(); 1: waiting for authorization (conn_go follows from its
 * callback); -1: answered already. */
int conn_route(struct conn *c);
/* Routed and authorized: wake the app if it sleeps, then go upstream. */
void conn_go(struct conn *c);
/* End a hold without an answer (exchange over, waking page): the queue
 * slot is free at once. No-op when not held. */
void conn_unhold(struct conn *c);
bool proxy_wants_html(const struct http1_head *req);

/* proxy_up.c */
void up_start(struct conn *c);
void up_release(struct conn *c, bool reusable);
void up_resume(struct conn *c);
/* The whole request has been handed to the upstream: the response-head
 * deadline (first_byte_timeout) starts. */
void up_request_sent(struct conn *c);

#endif
