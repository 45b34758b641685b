/* admin.h - the admin listener: GET /metrics, /healthz, /readyz.
 *
 * Tiny, strict HTTP/1.1: one request per connection (the answer says
 * Connection: close), GET or HEAD only, no body, heads parsed by http1.h and
 * bounded by [admin] header_max_bytes, the whole exchange bounded by
 * [admin] timeout, at most [admin] max_connections open (the listener
 * pauses at the limit). Nothing here blocks the loop: /metrics may wait for
 * other processes (the supervisor asks its workers), but only through the
 * source's asynchronous gather.
 *
 *   /healthz  200 "ok" whenever the process's loop runs (liveness).
 *   /readyz   200 "ready", or 503 "not ready: <reason>" (readiness).
 *   /metrics  200, Prometheus text (gateway/metrics.h).
 *   other     404; a method other than GET/HEAD 405; a malformed head 400;
 *             too large 431; too slow 408 (or just closed when nothing came).
 *
 * Who owns it: with workers = 1 the worker (its own counters); with more,
 * the supervisor (everyone's counters, added up; docs/operations.md).
 */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct gw_config;
struct stats;
struct stats_snap;
struct stats_admit;
struct admin;

/* What a worker knows about its own readiness (sent to the supervisor by
 * gateway/admin_chan.c when it changes). */
struct admin_facts {
	bool listening;     /* client listeners are open */
	bool draining;      /* stopping: SIGTERM/SIGINT received */
	bool redis;         /* [redis] address is set */
	bool redis_in_sync; /* the route table is a current copy of Redis's */
	bool redis_loaded;  /* it has been, at least once, since start */
};

/* NULL when facts make a worker ready under policy (enum
 * config_readyz_redis), else a short static reason. */
const char *admin_facts_not_ready(const struct admin_facts *f,
				  unsigned policy);

/* Called when a gather finishes (exactly once per gather that was not
 * cancelled). */
typedef void (*admin_gathered_cb)(void *cookie);

/* How the admin listener reads the gateway. */
struct admin_source {
	/* Add every metric to expose into `into` (the admin adds its own
	 * registry after done), then call done(cookie) - possibly before
	 * returning. Returns a handle for cancel, or NULL if done has run.
	 * NULL gather: only the admin's registry is shown. */
	void *(*gather)(void *arg, struct stats_snap *into,
			admin_gathered_cb done, void *cookie);
	/* The client went away first: done must not be called. */
	void (*cancel)(void *arg, void *handle);
	/* NULL when ready, else a short static reason. */
	const char *(*not_ready)(void *arg);
	/* Caps projects across the merged snapshots (kept across scrapes so
	 * the same projects keep their series); NULL = no cap here. */
	struct stats_admit *admit;
	void *arg;
};

struct admin_params {
	struct event_base *base;
	const struct gw_config *cfg; /* [admin] keys; cfg->admin_listen set */
	struct stats *stats;         /* this process's registry: read on every
					scrape, and the admin's own counters go
					here (outlives the admin) */
	struct admin_source src;
};

/* Bind cfg->admin_listen and start accepting. Returns NULL with a reason
 * in err (address in use, ...). */
struct admin *admin_create(const struct admin_params *p, char *err,
			   size_t errlen);

const char *admin_addr_text(const struct admin *a);

/* Close the listener and every admin connection (pending gathers are
 * cancelled); NULL is fine. */
void admin_destroy(struct admin *a);

#endif
