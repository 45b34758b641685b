/* fleet.h - what the gateway processes serving the same apps share
 * through Redis, so that a Deployment is scaled down once, by one of
 * them, and never while any of them is using it.
 *
 *   gw:activity:<project>        last use, unix ms, by any process (SET,
 *                                at most ~1/s per project and process;
 *                                every second while a request or stream
 *                                is open)
 *   gw:lease:scaledown:<project> the process that scales it down now (SET
 *                                NX PX: expires if that process dies)
 *   gw:lock:wake:<project>       the process that makes the one scale-up
 *                                call of a wake (SET NX PX 3 s, dropped at
 *                                scale-down); the others wait for the
 *                                pods on their watch
 *
 * Unsure (Redis down, no reply) always means "do not scale down": an app
 * left running costs little, a request cut off costs a user.
 */
#ifndef GW_FLEET_H
#define GW_FLEET_H

#include "activator.h"

struct rconn;
struct fleet;

/* conn: the Redis command connection (not owned). */
struct fleet *fleet_create(struct rconn *conn);

/* The hooks to give the activator (valid while the fleet lives). */
const struct act_fleet *fleet_hooks(struct fleet *f);

/* Cancel pending questions (their answers are dropped) and free. Call
 * before the activator is destroyed. */
void fleet_destroy(struct fleet *f);

#endif
