/* fleet.h - the gateway processes serving the same apps (every worker of
 * every replica), coordinated through Redis: one scale call per wake
 * across all of them, ready news to all at once, a cluster-wide cap on
 * wakes in flight, and scale-downs decided by one of them (the reaper
 * lease holder) only when every live process agrees it is idle.
 * docs/fleet.md has the protocol and its sequence diagrams; docs/redis.md
 * every key and script.
 *
 * This is the Redis side of the activator's struct act_fleet: the
 * activator knows projects and never Redis; this module knows Redis and
 * reaches projects only through activator.h.
 *
 * Nothing here blocks: every step is a Lua script (atomic, on Redis's
 * clock) sent on the command connection, every wait has a timer, every
 * key a TTL. Unsure (Redis down, no reply) means: never scale down, and
 * for a wake, go ahead (an extra raise-only scale-up beats a stuck app).
 */
#ifndef GW_FLEET_H
#define GW_FLEET_H

#include <stdbool.h>
#include <stddef.h>

#include "activator.h"

struct event_base;
struct rconn;
struct stats;
struct fleet;

struct fleet_params {
	struct event_base *base;
	struct rconn *conn;         /* Redis command connection (not owned) */
	struct stats *stats;        /* counters registered here */
	unsigned replica_ttl_ms;    /* a silent process counts as gone */
	unsigned lease_ttl_ms;      /* reaper lease */
	unsigned wake_lock_ttl_ms;  /* renewed while waking */
	unsigned drain_timeout_ms;  /* every process must ack within */
	unsigned reap_interval_ms;  /* leader: look for idle projects */
	unsigned reap_batch;        /* leader: candidates per look */
	unsigned max_waking;        /* projects waking at once; 0: no cap */
	bool prewake;               /* wake a user's last project on login */
	/* The Kubernetes target of project from the route table (strings
	 * valid during the call only). false: no Kubernetes route names it,
	 * or the table is not complete. */
	bool (*target)(void *arg, const char *project, struct act_target *t);
	void *arg;
};

/* Never NULL. Starts heartbeating and competing for the lease once the
 * connection is up. */
struct fleet *fleet_create(const struct fleet_params *p);

/* The hooks to give the activator (valid while the fleet lives). */
const struct act_fleet *fleet_hooks(struct fleet *f);

/* The activator the news goes to (created after the fleet, with its
 * hooks). Not owned. */
void fleet_set_activator(struct fleet *f, struct activator *a);

/* A message from the events channel other than "route": ready,
 * draining, undrain, cold, slot, login. Returns whether the kind is one
 * of those (f may be NULL: known, nothing to do), false for others. */
bool fleet_event(struct fleet *f, const char *kind, const char *name);

/* Routes complete and events arriving (true), or not: while false this
 * process does not lead scale-downs (its view may be stale). */
void fleet_set_sync(struct fleet *f, bool in_sync);

/* user opened project (an authorized request): remembered for pre-wake
 * when it is on. user: len bytes, not NUL-terminated. */
void fleet_recent(struct fleet *f, const char *user, size_t len,
		  const char *project);

/* Shutting down (SIGTERM): give up the lease, start no scale-down. The
 * heartbeat, wakes and acks go on while connections drain. */
void fleet_shutdown(struct fleet *f);
/* The last connection is gone: leave the replica set (best effort; the
 * entry expires after replica_ttl anyway). Give the loop a moment after
 * this so the command is written. */
void fleet_leave(struct fleet *f);

/* Cancel everything in flight and free. Detach it from the activator
 * (activator_fleet_detach) first. NULL is fine. */
void fleet_destroy(struct fleet *f);

#endif
