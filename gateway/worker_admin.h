/* worker_admin.h - a worker's operations side, kept out of worker.c: its
 * own gauges (open connections, draining), its process gauges, its
 * readiness facts, and either the admin listener and systemd notifications
 * (workers = 1: the worker is the whole gateway) or the link to the
 * supervisor (workers > 1). Used by worker.c only.
 */
#ifndef GW_WORKER_ADMIN_H
#define GW_WORKER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct gw_config;
struct proxy;
struct stats;
struct worker_admin;

struct worker_admin_params {
	struct event_base *base;
	const struct gw_config *cfg;
	struct stats *stats;   /* the worker's registry (outlives this) */
	struct proxy *proxy;   /* read for gateway_connections_open */
	/* The supervisor went away: the worker should drain and exit. */
	void (*on_supervisor_lost)(void *arg);
	void *arg;
};

/* Never NULL. Registers the worker's own gauges. */
struct worker_admin *worker_admin_create(const struct worker_admin_params *p);

/* index: the worker label; ctl_fd: supervisor channel (owned), or -1 for
 * the whole gateway, which then binds [admin] listen. Returns 0, or -1
 * with err. Once, before the loop runs. */
int worker_admin_set_role(struct worker_admin *wa, unsigned index, int ctl_fd,
			  char *err, size_t errlen);

/* The loop starts with n client listeners open: READY=1 (whole gateway) or
 * the first FACTS to the supervisor. */
void worker_admin_listening(struct worker_admin *wa, size_t n);
/* The route table became (true) or stopped being (false) a current copy of
 * Redis's. */
void worker_admin_redis_sync(struct worker_admin *wa, bool in_sync);
/* Draining started (why: "SIGTERM", ...): not ready, STOPPING=1. */
void worker_admin_draining(struct worker_admin *wa, const char *why);

/* Around a reload (SIGHUP). Whole gateway: RELOADING=1, then READY=1
 * (the old settings stay on failure, so the service is ready either way;
 * the reason was logged). Under a supervisor: RELOADED on the control
 * channel (the supervisor tells systemd once every worker answered). */
void worker_admin_reload_begin(struct worker_admin *wa);
void worker_admin_reload_end(struct worker_admin *wa, bool ok);

/* NULL is fine. */
void worker_admin_destroy(struct worker_admin *wa);

#endif
