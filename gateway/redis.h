/* redis.h - one Redis connection on the worker's event loop, that keeps
 * itself connected.
 *
 * hiredis async with its libevent adapter: no call here ever blocks. The
 * connection authenticates (AUTH), selects its database and gets an answer
 * from the server (PING; a subscriber: the SUBSCRIBE confirmation) before it
 * reports itself up: a TCP connect alone proves nothing, since the kernel
 * completes it for a stopped (SIGSTOP) or wedged server too. After a
 * failure it reconnects with exponential backoff (100 ms doubling to
 * reconnect_max); the backoff starts again from 100 ms only once a
 * connection has stayed up for reconnect_max (at least 1 s). One log line
 * per change of state, never one per attempt.
 *
 * The address may be a DNS name (a Kubernetes Service): it is resolved,
 * without blocking (core/resolve.h), before every connect attempt, so a
 * Service whose ClusterIP changes is followed at the next reconnect. The
 * resolution counts against connect_timeout like the TCP connect.
 *
 * hiredis 0.14 has no command timeout, so this module keeps one: replies
 * come back in order, so when the oldest outstanding command is older than
 * command_timeout the connection is declared dead, every outstanding
 * command fails, and the reconnect cycle starts. A connection that has
 * seen no reply for ping_interval sends a heartbeat (PING; a subscriber
 * re-sends its SUBSCRIBE, see redis.c) under the same timeout, so a dead
 * peer is noticed within ping_interval + command_timeout without traffic.
 *
 * Ownership: rconn_command() calls cb exactly once (reply, or NULL on
 * failure) unless the caller cancels first with rcmd_cancel(); the reply is
 * hiredis's and valid only during the callback. A callback must not
 * destroy the rconn (rconn_destroy is for its owner, outside callbacks). A subscriber connection
 * (rconn_params.channel set) SUBSCRIBEs on every connect and delivers each
 * message to on_message; it is up only once the subscription is confirmed.
 */
#ifndef GW_REDIS_H
#define GW_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/addr.h"

struct event_base;
struct gw_hostport;
struct redisReply;
struct resolver;
struct stats;
struct rconn;
struct rcmd;

struct rconn_params {
	struct event_base *base;
	const struct gw_hostport *addr; /* copied */
	struct resolver *resolver; /* needed when addr is a name; outlives
				      the rconn */
	const char *password;     /* NULL: no AUTH */
	unsigned db;
	unsigned connect_timeout_ms;
	unsigned command_timeout_ms;
	unsigned reconnect_max_ms;
	unsigned ping_interval_ms; /* heartbeat when idle; 0: 1 s */
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

/* Most arguments rconn_commandv() takes. */
#define RCONN_ARGV_MAX 16

/* Convenience for string arguments, NULL-terminated list of at most
 * RCONN_ARGV_MAX. A longer list is a bug in the caller: it is logged and
 * nothing is sent (returns NULL, cb not called), never sent cut short. */
struct rcmd *rconn_commandv(struct rconn *rc, rcmd_cb cb, void *arg, ...)
	__attribute__((sentinel));

/* Write what is queued now instead of at the next loop iteration (a
 * non-blocking write; the rest, if any, goes as usual). For news that
 * must leave before a burst of local work. */
void rconn_flush(struct rconn *rc);

/* The callback will not be called; the handle is freed when the reply
 * (or the failure) arrives. */
void rcmd_cancel(struct rcmd *cmd);

/* Register the connection's counters and its state gauge, labelled
 * connection="<name>": gateway_redis_connection_up, _commands_total,
 * _errors_total{kind=connect|lost|reply}. Unregistered by rconn_destroy. */
void rconn_stats_register(struct rconn *rc, struct stats *s);

/* Close and free. Outstanding callbacks are called with NULL first. */
void rconn_destroy(struct rconn *rc);

#endif
