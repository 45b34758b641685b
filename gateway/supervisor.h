/* supervisor.h - the parent of the worker processes (workers > 1).
 *
 * One small event loop that serves no client traffic: it forks the
 * workers (each binds its own SO_REUSEPORT listeners), keeps a control
 * channel to each (gateway/admin_chan.h), restarts a worker that crashes
 * (at most once a second), forwards SIGTERM/SIGINT and SIGHUP, tells
 * systemd READY=1 once every worker listens, and owns the admin listener:
 * a scrape asks every worker for its counters and adds them up, so
 * /metrics always describes the whole gateway (docs/operations.md).
 */
#ifndef GW_SUPERVISOR_H
#define GW_SUPERVISOR_H

struct config_source;
struct gw_config;

/* Runs in a freshly forked child: the worker's whole life. index is
 * 0..n-1 (its "worker" label), ctl_fd its end of the control channel
 * (owned by the child), arg what supervisor_run was given. Returns the
 * child's exit status. */
typedef int (*supervisor_child_fn)(const struct gw_config *cfg,
				   unsigned index, int ctl_fd, void *arg);

/* Run n workers until they have all exited after a stop signal, or one
 * failed at start. child_arg (not owned) is passed to every child: state
 * made before the fork that all workers share, such as the TLS ticket
 * seed. src (not owned): how SIGHUP builds the configuration again; it is
 * checked here before any worker is signalled. Returns the process exit
 * status. */
int supervisor_run(const struct gw_config *cfg, unsigned n,
		   const struct config_source *src, supervisor_child_fn child,
		   void *child_arg);

#endif
