/* redis.c - a self-reconnecting hiredis async connection. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "redis.h"
#include "core/log.h"
#include "core/resolve.h"
#include "core/stats.h"
#include "core/compat.h"

#define BACKOFF_MIN_MS 100
#define STABLE_MIN_MS 1000 /* up this long (or reconnect_max) resets backoff */
#define TICK_MS 50

enum rstate {
	R_DOWN = 0,   /* no connection; the retry timer is armed */
	R_RESOLVING,  /* looking the name up (deadline: connect_timeout) */
	R_CONNECTING, /* TCP connect in progress (deadline: connect_timeout) */
	R_HANDSHAKE,  /* AUTH/SELECT/PING or SUBSCRIBE sent, not all answered */
	R_UP,         /* the server answered: commands may be sent */
};

enum rcmd_kind {
	RCMD_USER = 0,  /* the caller's command */
	RCMD_HANDSHAKE, /* AUTH/SELECT/PING before up: failure kills the conn */
	RCMD_HEARTBEAT, /* PING on an idle connection: failure kills the conn */
};

struct rcmd {
	TAILQ_ENTRY(rcmd) link; /* in rconn.pending, in send order */
	struct rconn *rc;       /* NULL once the conn is gone */
	rcmd_cb cb;             /* NULL once cancelled or called */
	void *arg;
	uint64_t sent_ms;
	enum rcmd_kind kind;
};
TAILQ_HEAD(rcmd_list, rcmd);

/* ---- counters (core/stats.h) ---- */
struct rconn_stats {
	uint64_t up;           /* gauge: 1 while commands may be sent */
	uint64_t commands;     /* the callers' commands sent */
	uint64_t connect_errs; /* attempts that never came up: resolve,
				  connect, handshake */
	uint64_t lost;         /* connections that were up and went down:
				  timeout, closed, heartbeat unanswered */
	uint64_t reply_errs;   /* error replies to the callers' commands */
};

static void rconn_refresh(void *obj);

#define RS(f) offsetof(struct rconn_stats, f)
#define ERR_HELP                                                              \
	"Connection attempts that failed (kind=connect: name lookup, connect "  \
	"or handshake), connections lost (kind=lost), error replies "          \
	"(kind=reply)."
static const struct stats_metric rconn_metrics[] = {
	{"gateway_redis_connection_up",
	 "1 while the connection is up (handshake answered).", STATS_GAUGE,
	 RS(up)},
	{"gateway_redis_commands", "Commands sent on the connection.",
	 STATS_COUNTER, RS(commands)},
	{"gateway_redis_errors", ERR_HELP, STATS_COUNTER, RS(connect_errs),
	 .label = "kind", .label_value = "connect"},
	{"gateway_redis_errors", ERR_HELP, STATS_COUNTER, RS(lost),
	 .label = "kind", .label_value = "lost"},
	{"gateway_redis_errors", ERR_HELP, STATS_COUNTER, RS(reply_errs),
	 .label = "kind", .label_value = "reply"},
};
#undef ERR_HELP
#undef RS
static const char *const rconn_labels[] = {"connection", NULL};
static const struct stats_table rconn_table = {
	.labels = rconn_labels,
	.metrics = rconn_metrics,
	.nmetrics = GW_ARRAY_LEN(rconn_metrics),
	.refresh = rconn_refresh,
};
/* ---- end of counters ---- */

struct rconn {
	struct rconn_params p;
	char *name, *password, *channel;
	struct gw_hostport hp;  /* as configured */
	struct gw_addr addr;    /* where the current attempt connects */
	struct resolve_req *resolving; /* R_RESOLVING: the lookup */
	bool resolved_once;     /* a name's answer was logged */
	bool closing;           /* rconn_destroy: not an outage */
	redisAsyncContext *ac;
	enum rstate state;
	uint64_t deadline_ms;   /* connect or handshake deadline */
	uint64_t up_since_ms;   /* when the state became R_UP */
	uint64_t last_reply_ms; /* any reply or message: the peer is alive */
	uint64_t hb_sent_ms;    /* subscriber heartbeat outstanding since; 0 */
	unsigned backoff_ms;    /* pause before the next attempt */
	bool down_logged;       /* "unreachable" said since the last up */
	struct event *tick;     /* deadlines and heartbeats */
	struct event *retry;    /* reconnect after backoff */
	struct rcmd_list pending;
	unsigned handshake_left;
	struct rconn_stats st;
	struct stats_reg *reg;
};

static void rconn_refresh(void *obj)
{
	struct rconn *rc = gw_container_of((struct rconn_stats *)obj,
					   struct rconn, st);
	rc->st.up = rc->state == R_UP;
}

static void start_connect(struct rconn *rc);

static void arm(struct event *ev, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	event_add(ev, &tv);
}

/* When to look again: soon while something waits for an answer, else when
 * the connection has been idle for ping_interval. */
static void arm_tick(struct rconn *rc)
{
	if (rc->state == R_DOWN) {
		event_del(rc->tick);
		return;
	}
	if (rc->state != R_UP || !TAILQ_EMPTY(&rc->pending) || rc->hb_sent_ms) {
		arm(rc->tick, TICK_MS);
		return;
	}
	uint64_t idle = gw_now_ms() - rc->last_reply_ms;
	uint64_t in = idle >= rc->p.ping_interval_ms
			      ? TICK_MS
			      : rc->p.ping_interval_ms - idle;
	arm(rc->tick, in < TICK_MS ? TICK_MS : in);
}

static void set_up(struct rconn *rc)
{
	rc->state = R_UP;
	rc->up_since_ms = rc->last_reply_ms = gw_now_ms();
	rc->hb_sent_ms = 0;
	rc->down_logged = false;
	if (rc->hp.numeric)
		gw_log(GW_LOG_INFO, "redis", "%s: connected to %s%s", rc->name,
		       rc->addr.text, rc->channel ? " (subscribed)" : "");
	else
		gw_log(GW_LOG_INFO, "redis", "%s: connected to %s (%s)%s",
		       rc->name, rc->hp.text, rc->addr.text,
		       rc->channel ? " (subscribed)" : "");
	arm_tick(rc);
	if (rc->p.on_state)
		rc->p.on_state(rc->p.arg, true);
}

/* Drop the connection (if any), fail what is outstanding and schedule a
 * reconnect. Safe from inside hiredis callbacks: hiredis defers the free
 * until the callback returns. */
static void go_down(struct rconn *rc, const char *why)
{
	if (rc->state == R_DOWN)
		return;
	bool was_up = rc->state == R_UP;
	uint64_t now = gw_now_ms();
	if (rc->state == R_RESOLVING) {
		resolve_cancel(rc->resolving);
		rc->resolving = NULL;
	}
	rc->state = R_DOWN;
	if (!rc->closing) {
		if (was_up)
			rc->st.lost++;
		else
			rc->st.connect_errs++;
	}
	rc->hb_sent_ms = 0;
	/* Only a connection that stayed up a while earns a quick retry; one
	 * that dies right after connecting keeps backing off. */
	uint64_t stable = rc->p.reconnect_max_ms > STABLE_MIN_MS
				  ? rc->p.reconnect_max_ms
				  : STABLE_MIN_MS;
	if (was_up && now - rc->up_since_ms >= stable)
		rc->backoff_ms = BACKOFF_MIN_MS;
	if (!rc->down_logged) {
		gw_log(GW_LOG_WARN, "redis", "%s: %s unreachable: %s; retrying with backoff",
		       rc->name, rc->hp.text, why);
		rc->down_logged = true;
	}
	redisAsyncContext *ac = rc->ac;
	rc->ac = NULL;
	if (ac) {
		ac->data = NULL; /* its callbacks must not find us any more */
		redisAsyncFree(ac);
	}
	/* Whatever hiredis did not fail yet (a deferred free) fails now. */
	struct rcmd *c;
	while ((c = TAILQ_FIRST(&rc->pending))) {
		TAILQ_REMOVE(&rc->pending, c, link);
		c->rc = NULL;
		if (c->cb) {
			rcmd_cb cb = c->cb;
			c->cb = NULL;
			cb(c->arg, NULL);
		}
		/* freed by reply_cb when hiredis lets go of it */
	}
	event_del(rc->tick);
	arm(rc->retry, rc->backoff_ms);
	rc->backoff_ms *= 2;
	if (rc->backoff_ms > rc->p.reconnect_max_ms)
		rc->backoff_ms = rc->p.reconnect_max_ms;
	if (was_up && rc->p.on_state)
		rc->p.on_state(rc->p.arg, false);
}

/* Every command's reply (or NULL when hiredis gives up) lands here. */
static void reply_cb(redisAsyncContext *ac, void *r, void *priv)
{
	(void)ac;
	struct rcmd *c = priv;
	struct rconn *rc = c->rc;
	redisReply *reply = r;
	if (rc) {
		TAILQ_REMOVE(&rc->pending, c, link);
		c->rc = NULL;
		if (reply)
			rc->last_reply_ms = gw_now_ms();
	}
	rcmd_cb cb = c->cb;
	void *arg = c->arg;
	enum rcmd_kind kind = c->kind;
	free(c);
	if (kind != RCMD_USER) {
		if (!rc)
			return;
		if (!reply || reply->type == REDIS_REPLY_ERROR) {
			go_down(rc, reply ? reply->str : "no reply");
			return;
		}
		if (kind == RCMD_HANDSHAKE && --rc->handshake_left == 0 &&
		    !rc->channel)
			set_up(rc);
		else if (rc->state == R_UP)
			arm_tick(rc);
		return;
	}
	if (rc && reply && reply->type == REDIS_REPLY_ERROR)
		rc->st.reply_errs++;
	/* rc is not touched after cb: the tick, still on its short period,
	 * moves to the heartbeat period once nothing is outstanding. */
	if (cb)
		cb(arg, reply);
}

static struct rcmd *send_argv(struct rconn *rc, rcmd_cb cb, void *arg,
			      enum rcmd_kind kind, int argc, const char **argv,
			      const size_t *argvlen)
{
	struct rcmd *c = gw_xcalloc(1, sizeof(*c));
	c->rc = rc;
	c->cb = cb;
	c->arg = arg;
	c->kind = kind;
	c->sent_ms = gw_now_ms();
	if (redisAsyncCommandArgv(rc->ac, reply_cb, c, argc, argv, argvlen) !=
	    REDIS_OK) {
		free(c);
		return NULL;
	}
	bool was_idle = TAILQ_EMPTY(&rc->pending);
	TAILQ_INSERT_TAIL(&rc->pending, c, link);
	if (kind == RCMD_USER)
		rc->st.commands++;
	if (was_idle)
		arm(rc->tick, TICK_MS); /* the heartbeat wait may be far off */
	return c;
}

/* The subscription's confirmations and messages. */
static void sub_cb(redisAsyncContext *ac, void *r, void *priv)
{
	(void)priv;
	struct rconn *rc = ac->data;
	redisReply *reply = r;
	if (!rc || !reply || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING)
		return;
	rc->last_reply_ms = gw_now_ms();
	const char *kind = reply->element[0]->str;
	if (strcmp(kind, "subscribe") == 0) {
		if (rc->state == R_HANDSHAKE && rc->handshake_left == 0) {
			set_up(rc);
		} else if (rc->state == R_UP) {
			rc->hb_sent_ms = 0; /* the heartbeat's answer */
			arm_tick(rc);
		}
	} else if (strcmp(kind, "message") == 0 &&
		   reply->element[2]->type == REDIS_REPLY_STRING &&
		   rc->p.on_message) {
		rc->p.on_message(rc->p.arg, reply->element[2]->str,
				 reply->element[2]->len);
	}
}

/* The subscriber's heartbeat. PING would be the obvious probe, but
 * hiredis 0.14 files the callback of any command sent in subscribed mode
 * under sub.invalid and only takes it off again for a non-array reply,
 * while PING's subscribed-mode reply is an array: one callback would pile
 * up per heartbeat for the connection's life. SUBSCRIBE to the channel we
 * already have is a no-op for the server, answered with the same
 * confirmation, and hiredis just replaces the channel's entry. */
static void send_sub(struct rconn *rc)
{
	const char *argv[] = {"SUBSCRIBE", rc->channel};
	redisAsyncCommandArgv(rc->ac, sub_cb, NULL, 2, argv, NULL);
}

static void connect_cb(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;
	if (!rc)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback. */
		rc->ac = NULL;
		go_down(rc, ac->errstr[0] ? ac->errstr : "connect failed");
		return;
	}
	redisEnableKeepAlive((redisContext *)&ac->c);
	rc->state = R_HANDSHAKE;
	rc->deadline_ms = gw_now_ms() + rc->p.command_timeout_ms;
	rc->handshake_left = 0;
	if (rc->password) {
		const char *argv[] = {"AUTH", rc->password};
		if (send_argv(rc, NULL, NULL, RCMD_HANDSHAKE, 2, argv, NULL))
			rc->handshake_left++;
	}
	if (rc->p.db) {
		char db[16];
		snprintf(db, sizeof(db), "%u", rc->p.db);
		const char *argv[] = {"SELECT", db};
		if (send_argv(rc, NULL, NULL, RCMD_HANDSHAKE, 2, argv, NULL))
			rc->handshake_left++;
	}
	if (rc->channel) {
		send_sub(rc); /* up on its confirmation */
		return;
	}
	/* Up only once the server has answered something. */
	const char *argv[] = {"PING"};
	if (send_argv(rc, NULL, NULL, RCMD_HANDSHAKE, 1, argv, NULL))
		rc->handshake_left++;
	else
		go_down(rc, "cannot send PING");
}

static void disconnect_cb(const redisAsyncContext *ac, int status)
{
	(void)status;
	struct rconn *rc = ac->data;
	if (!rc)
		return; /* we dropped it ourselves */
	rc->ac = NULL; /* hiredis frees it after this callback */
	go_down(rc, ac->errstr[0] ? ac->errstr : "connection closed");
}

/* The TCP connect to rc->addr (numeric). */
static void connect_addr(struct rconn *rc)
{
	char ip[64];
	gw_addr_ip(&rc->addr, ip, sizeof(ip));
	int port = rc->addr.ss.ss_family == AF_INET6
			   ? ntohs(((struct sockaddr_in6 *)&rc->addr.ss)->sin6_port)
			   : ntohs(((struct sockaddr_in *)&rc->addr.ss)->sin_port);
	rc->state = R_CONNECTING;
	redisAsyncContext *ac = redisAsyncConnect(ip, port);
	if (!ac || ac->err) {
		const char *why = ac ? ac->errstr : "out of memory";
		char buf[128];
		snprintf(buf, sizeof(buf), "%s", why);
		if (ac)
			redisAsyncFree(ac);
		go_down(rc, buf);
		return;
	}
	ac->data = rc;
	rc->ac = ac;
	redisLibeventAttach(ac, rc->p.base);
	redisAsyncSetConnectCallback(ac, connect_cb);
	redisAsyncSetDisconnectCallback(ac, disconnect_cb);
	arm(rc->tick, TICK_MS);
}

static void resolved_cb(void *arg, const struct gw_addr *addr,
			const char *err)
{
	struct rconn *rc = arg;
	rc->resolving = NULL;
	if (rc->state != R_RESOLVING)
		return;
	if (!addr) {
		char why[300];
		snprintf(why, sizeof(why), "cannot resolve %s: %s", rc->hp.host,
			 err);
		go_down(rc, why);
		return;
	}
	if (!rc->resolved_once || !gw_addr_eq(addr, &rc->addr))
		gw_log(GW_LOG_INFO, "redis", "%s: %s resolved to %s", rc->name,
		       rc->hp.host, addr->text);
	rc->resolved_once = true;
	rc->addr = *addr;
	connect_addr(rc);
}

/* One attempt: resolve the name again (a Service may have moved), then
 * connect; both within connect_timeout. */
static void start_connect(struct rconn *rc)
{
	rc->deadline_ms = gw_now_ms() + rc->p.connect_timeout_ms;
	if (rc->hp.numeric) {
		rc->addr = rc->hp.addr;
		connect_addr(rc);
		return;
	}
	rc->state = R_RESOLVING;
	arm(rc->tick, TICK_MS);
	/* May answer before it returns (/etc/hosts): resolved_cb then ran. */
	struct resolve_req *q = resolve_start(rc->p.resolver, rc->hp.host,
					      rc->hp.port, resolved_cb, rc);
	if (rc->state == R_RESOLVING)
		rc->resolving = q;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_connect(arg);
}

/* Deadlines (connect, handshake, oldest command, heartbeat) and
 * heartbeats. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct rconn *rc = arg;
	uint64_t now = gw_now_ms();
	if (rc->state != R_UP && now >= rc->deadline_ms) {
		go_down(rc, rc->state == R_RESOLVING ? "name lookup timed out"
			    : rc->state == R_CONNECTING
				    ? "connect timed out"
				    : "no answer to the handshake");
		return;
	}
	struct rcmd *oldest = TAILQ_FIRST(&rc->pending);
	if (oldest && now - oldest->sent_ms >= rc->p.command_timeout_ms) {
		go_down(rc, oldest->kind == RCMD_HEARTBEAT ? "no answer to PING"
							   : "command timed out");
		return;
	}
	if (rc->hb_sent_ms && now - rc->hb_sent_ms >= rc->p.command_timeout_ms) {
		go_down(rc, "no answer to the heartbeat");
		return;
	}
	if (rc->state == R_UP && !oldest && !rc->hb_sent_ms &&
	    now - rc->last_reply_ms >= rc->p.ping_interval_ms) {
		if (rc->channel) {
			send_sub(rc);
			rc->hb_sent_ms = now;
		} else {
			const char *argv[] = {"PING"};
			if (!send_argv(rc, NULL, NULL, RCMD_HEARTBEAT, 1, argv,
				       NULL)) {
				go_down(rc, "cannot send PING");
				return;
			}
		}
	}
	arm_tick(rc);
}

struct rconn *rconn_create(const struct rconn_params *p)
{
	struct rconn *rc = gw_xcalloc(1, sizeof(*rc));
	rc->p = *p;
	rc->name = gw_xstrdup(p->name ? p->name : "redis");
	rc->password = p->password ? gw_xstrdup(p->password) : NULL;
	rc->channel = p->channel ? gw_xstrdup(p->channel) : NULL;
	rc->hp = *p->addr;
	rc->p.name = rc->name;
	rc->p.password = NULL; /* only the copy above */
	rc->p.channel = rc->channel;
	rc->p.addr = &rc->hp;
	if (rc->p.reconnect_max_ms < BACKOFF_MIN_MS)
		rc->p.reconnect_max_ms = BACKOFF_MIN_MS;
	if (rc->p.ping_interval_ms == 0)
		rc->p.ping_interval_ms = 1000;
	rc->backoff_ms = BACKOFF_MIN_MS;
	TAILQ_INIT(&rc->pending);
	rc->tick = evtimer_new(p->base, tick_cb, rc);
	rc->retry = evtimer_new(p->base, retry_cb, rc);
	if (!rc->tick || !rc->retry)
		gw_oom(0);
	start_connect(rc);
	return rc;
}

bool rconn_up(const struct rconn *rc)
{
	return rc && rc->state == R_UP;
}

struct rcmd *rconn_command(struct rconn *rc, rcmd_cb cb, void *arg, int argc,
			   const char **argv, const size_t *argvlen)
{
	if (!rconn_up(rc) || rc->channel)
		return NULL;
	return send_argv(rc, cb, arg, RCMD_USER, argc, argv, argvlen);
}

struct rcmd *rconn_commandv(struct rconn *rc, rcmd_cb cb, void *arg, ...)
{
	const char *argv[RCONN_ARGV_MAX];
	int argc = 0;
	bool too_many = false;
	va_list ap;
	va_start(ap, arg);
	const char *s;
	while ((s = va_arg(ap, const char *))) {
		if (argc == RCONN_ARGV_MAX) {
			too_many = true;
			break;
		}
		argv[argc++] = s;
	}
	va_end(ap);
	if (too_many || argc == 0) {
		gw_log(GW_LOG_ERROR, "redis",
		       "%s: %s command with %s arguments not sent (bug)",
		       rc->name, argc ? argv[0] : "empty",
		       too_many ? "too many" : "no");
		return NULL;
	}
	return rconn_command(rc, cb, arg, argc, argv, NULL);
}

void rconn_flush(struct rconn *rc)
{
	if (rc && rc->state == R_UP && rc->ac)
		redisAsyncHandleWrite(rc->ac);
}

void rcmd_cancel(struct rcmd *cmd)
{
	if (cmd)
		cmd->cb = NULL;
}

void rconn_stats_register(struct rconn *rc, struct stats *s)
{
	rc->reg = stats_register(s, &rconn_table, &rc->st,
				 (const char *const[]){rc->name});
}

void rconn_destroy(struct rconn *rc)
{
	if (!rc)
		return;
	rc->p.on_state = NULL;
	rc->p.on_message = NULL;
	rc->down_logged = true; /* no "unreachable" line for our own close */
	rc->closing = true;
	go_down(rc, "closing");
	stats_unregister(rc->reg);
	event_free(rc->tick);
	event_free(rc->retry);
	/* rcmds still held by a deferred hiredis free point nowhere now. */
	free(rc->name);
	if (rc->password) {
		explicit_bzero(rc->password, strlen(rc->password));
		free(rc->password);
	}
	free(rc->channel);
	free(rc);
}
