/* worker.h - one event loop process: listeners, proxy, upstream pool,
 * routes, signals. With workers = 1 the gateway is a single worker; with
 * more, main forks one per process and each binds its own sockets.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <stddef.h>

struct config_source;
struct gw_config;
struct tls_seed;
struct worker;

/* Build everything and bind the listeners (plain and TLS). Returns NULL
 * with a reason in err. cfg must outlive the worker (modules bound at
 * start for good keep using it; the worker takes a reference for the
 * rest); seed (tls.h: the session ticket secret every worker of this
 * start shares) is copied; src (how SIGHUP builds the configuration
 * again) must outlive the worker. */
struct worker *worker_create(const struct gw_config *cfg,
			     const struct tls_seed *seed,
			     const struct config_source *src, char *err,
			     size_t errlen);

/* What this process is within the gateway. */
struct worker_role {
	unsigned index; /* 0..workers-1: the "worker" label of its series */
	int ctl_fd;     /* control channel to the supervisor (owned), or -1:
			   this process is the whole gateway (workers = 1): it
			   serves the admin listener and notifies systemd */
};

/* Once, after worker_create and before worker_run. Returns 0, or -1 with
 * a reason in err (the admin address cannot be bound). */
int worker_set_role(struct worker *w, const struct worker_role *role,
		    char *err, size_t errlen);

/* What SIGHUP does: build the configuration again and apply it (worker.c
 * says how; docs/operations.md, "Reload"). All or nothing: returns 0, or
 * -1 when the running configuration stayed (the reason is logged, with
 * FILE:LINE for an error in the file). */
int worker_reload(struct worker *w);

/* Run until SIGTERM/SIGINT has drained every connection (or the drain
 * timeout passed). Returns the process exit status. */
int worker_run(struct worker *w);

/* NULL is fine. */
void worker_destroy(struct worker *w);

#endif
