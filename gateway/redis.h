/* redis.h - one Redis connection on the worker's event loop, that keeps
 * itself connected.
 *
 * hiredis async with its libevent adapter: no call here ever blocks. The
 * connection authenticates (AUTH) and selects its database before it
 * reports itself up; after a failure it reconnects with exponential backoff
 * (100 ms doubling to reconnect_max), logging one line per change of state,
 * never one per attempt.
 *
 * hiredis 0.14 has no command timeout, so this module keeps one: replies
 * come back in order, so when the oldest outstanding command is older than
 * command_timeout the connection is declared dead, every outstanding
 * command fails, and the reconnect cycle starts.
 *
 * Ownership: rconn_command() calls cb exactly once (reply, or NULL on
 * failure) unless the caller cancels first with rcmd_cancel(); the reply is
 * hiredis's and valid only during the callback. A subscriber connection
 * (rconn_params.channel set) SUBSCRIBEs on every connect and delivers each
 * message to on_message; it is up only once the subscription is confirmed.
 */
#ifndef GW_REDIS_H
#define GW_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/addr.h"

struct event_base;
struct redisReply;
struct rconn;
struct rcmd;

struct rconn_params {
	struct event_base *base;
	const struct gw_addr *addr;
	const char *password;     /* NULL: no AUTH */
	unsigned db;
	unsigned connect_timeout_ms;
	unsigned command_timeout_ms;
	unsigned reconnect_max_ms;
	const char *name;         /* for log lines: "routes", "events" */
	const char *channel;      /* subscriber connection: channel, or NULL */
	/* State changes: up = ready for commands (subscribed). */
	void (*on_state)(void *arg, bool up);
	/* Subscriber only: one published message (not NUL-terminated). */
	void (*on_message)(void *arg, const char *msg, size_t len);
	void *arg;
};

typedef void (*rcmd_cb)(void *arg, struct redisReply *reply);

/* Create and start connecting. Never NULL (aborts on OOM). */
struct rconn *rconn_create(const struct rconn_params *p);

bool rconn_up(const struct rconn *rc);

/* Send argv (binary safe). Returns a handle, or NULL when the connection
 * is not up (cb is then not called). */
struct rcmd *rconn_command(struct rconn *rc, rcmd_cb cb, void *arg, int argc,
			   const char **argv, const size_t *argvlen);

/* Convenience for string arguments, NULL-terminated list. */
struct rcmd *rconn_commandv(struct rconn *rc, rcmd_cb cb, void *arg, ...);

/* Write what is queued now instead of at the next loop iteration (a
 * non-blocking write; the rest, if any, goes as usual). For news that
 * must leave before a burst of local work. */
void rconn_flush(struct rconn *rc);

/* The callback will not be called; the handle is freed when the reply
 * (or the failure) arrives. */
void rcmd_cancel(struct rcmd *cmd);

/* Close and free. Outstanding callbacks are called with NULL first. */
void rconn_destroy(struct rconn *rc);

#endif
