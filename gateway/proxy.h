/* proxy.h - client connections and their exchanges (one worker's share).
 *
 * A connection carries one exchange at a time; pipelined requests wait in
 * the connection's input buffer and are answered in order. The exchange
 * machine: READ_HEAD -> ROUTE -> CONNECT_UP -> SEND/RELAY -> DONE, with a
 * switch to a tunnel after 101 (docs/architecture.md has the diagram).
 */
#ifndef GW_PROXY_H
#define GW_PROXY_H

#include <event2/util.h>
#include <stdint.h>

struct bufferevent;
struct event_base;
struct gw_config;
struct routes;
struct upstream_pool;
struct sockaddr;
struct proxy;
struct stats;

/* Called whenever the number of open client connections changes. */
typedef void (*proxy_count_cb)(void *arg, unsigned count);

struct proxy_params {
	struct event_base *base;
	const struct gw_config *cfg; /* a reference is taken (proxy_set_config) */
	struct routes *routes;       /* must outlive the proxy */
	struct routesync *rsync;     /* NULL without Redis; outlives proxy */
	struct auth *auth;           /* NULL without Redis; outlives proxy */
	struct activator *act;       /* NULL if no app scales to zero */
	struct upstream_pool *pool;  /* must outlive the proxy */
	proxy_count_cb count_cb;     /* may be NULL */
	void *count_arg;
};

struct proxy_stats {
	uint64_t connections; /* accepted so far */
	uint64_t requests;    /* exchanges started */
	unsigned open;        /* client connections open now */
};

struct proxy *proxy_create(const struct proxy_params *p);

/* Take ownership of an accepted, non-blocking client socket. */
void proxy_accept(struct proxy *px, evutil_socket_t fd,
		  const struct sockaddr *sa, int salen);

/* Take ownership of an open TLS client connection (tls.h ready_cb: the
 * handshake is done). Its requests go upstream with X-Forwarded-Proto:
 * https, its responses carry [tls] hsts, and it is never redirected. */
void proxy_accept_tls(struct proxy *px, struct bufferevent *bev,
		      const struct sockaddr *sa, int salen);

/* Graceful stop: idle connections close now; the others finish their
 * current exchange with "Connection: close". */
void proxy_shutdown(struct proxy *px);

/* drain_timeout ran out, the loop ends shortly: requests still held for a
 * wake, which never reached the app, get 503 + Retry-After (and close) now
 * rather than a silent close; give the loop a moment to write them. */
void proxy_drain_cut(struct proxy *px);

void proxy_get_stats(const struct proxy *px, struct proxy_stats *out);

/* Reload: connections accepted from now on use cfg (a reference is
 * taken); open ones keep the snapshot they were accepted with. */
void proxy_set_config(struct proxy *px, const struct gw_config *cfg);

/* Register the proxy's series with s (docs/operations.md, "Metrics"):
 * gateway_requests_total{project,code}, upstream latency histograms (all,
 * and per project), exchanges in flight, tunnels, upstream connect
 * failures and retries. Per exchange this costs a few increments and two
 * histogram observations: the project's row is cached on its route. Once,
 * before traffic; unregistered by proxy_destroy. */
void proxy_stats_register(struct proxy *px, struct stats *s);

/* Close everything at once and free; NULL is fine. */
void proxy_destroy(struct proxy *px);

#endif
