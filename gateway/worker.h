/* worker.h - one event loop process: listeners, proxy, upstream pool,
 * routes, signals. With workers = 1 the gateway is a single worker; with
 * more, main forks one per process and each binds its own sockets.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <stddef.h>

struct gw_config;
struct worker;

/* Build everything and bind the listeners. Returns NULL with a reason in
 * err. cfg must outlive the worker. */
struct worker *worker_create(const struct gw_config *cfg, char *err,
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

/* Run until SIGTERM/SIGINT has drained every connection (or the drain
 * timeout passed). Returns the process exit status. */
int worker_run(struct worker *w);

/* NULL is fine. */
void worker_destroy(struct worker *w);

#endif
