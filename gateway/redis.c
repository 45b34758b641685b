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
#include "core/compat.h"

#define BACKOFF_MIN_MS 100
#define TICK_MS 50

enum rstate { R_DOWN, R_CONNECTING, R_HANDSHAKE, R_UP };

struct rcmd {
	TAILQ_ENTRY(rcmd) link; /* in rconn.pending, in send order */
	struct rconn *rc;       /* NULL once cancelled or the conn is gone */
	rcmd_cb cb;
	void *arg;
	uint64_t sent_ms;
	bool internal;          /* AUTH/SELECT: failure kills the connection */
};
TAILQ_HEAD(rcmd_list, rcmd);

struct rconn {
	struct rconn_params p;
	char *name, *password, *channel;
	struct gw_addr addr;
	redisAsyncContext *ac;
	enum rstate state;
	uint64_t deadline_ms;   /* connect or handshake deadline */
	unsigned backoff_ms;
	bool ever_up, down_logged;
	struct event *tick;     /* timeouts while connecting / commands out */
	struct event *retry;    /* reconnect after backoff */
	struct rcmd_list pending;
	unsigned handshake_left;
};

static void start_connect(struct rconn *rc);

static void set_up(struct rconn *rc)
{
	rc->state = R_UP;
	rc->backoff_ms = BACKOFF_MIN_MS;
	rc->down_logged = false;
	gw_log(GW_LOG_INFO, "redis", "%s: connected to %s%s", rc->name,
	       rc->addr.text, rc->channel ? " (subscribed)" : "");
	rc->ever_up = true;
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
	rc->state = R_DOWN;
	if (!rc->down_logged) {
		gw_log(GW_LOG_WARN, "redis", "%s: %s unreachable: %s; retrying with backoff",
		       rc->name, rc->addr.text, why);
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
	struct timeval tv = {rc->backoff_ms / 1000,
			     (rc->backoff_ms % 1000) * 1000};
	event_add(rc->retry, &tv);
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
	}
	rcmd_cb cb = c->cb;
	void *arg = c->arg;
	bool internal = c->internal;
	free(c);
	if (internal) {
		if (!rc)
			return;
		if (!reply || reply->type == REDIS_REPLY_ERROR) {
			go_down(rc, reply ? reply->str : "no reply");
			return;
		}
		if (--rc->handshake_left == 0 && !rc->channel)
			set_up(rc);
		return;
	}
	if (cb)
		cb(arg, reply);
}

static struct rcmd *send_argv(struct rconn *rc, rcmd_cb cb, void *arg,
			      bool internal, int argc, const char **argv,
			      const size_t *argvlen)
{
	struct rcmd *c = gw_xcalloc(1, sizeof(*c));
	c->rc = rc;
	c->cb = cb;
	c->arg = arg;
	c->internal = internal;
	c->sent_ms = gw_now_ms();
	if (redisAsyncCommandArgv(rc->ac, reply_cb, c, argc, argv, argvlen) !=
	    REDIS_OK) {
		free(c);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&rc->pending, c, link);
	if (!event_pending(rc->tick, EV_TIMEOUT, NULL)) {
		struct timeval tv = {0, TICK_MS * 1000};
		event_add(rc->tick, &tv);
	}
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
	const char *kind = reply->element[0]->str;
	if (strcmp(kind, "subscribe") == 0 && rc->state == R_HANDSHAKE) {
		set_up(rc);
	} else if (strcmp(kind, "message") == 0 &&
		   reply->element[2]->type == REDIS_REPLY_STRING &&
		   rc->p.on_message) {
		rc->p.on_message(rc->p.arg, reply->element[2]->str,
				 reply->element[2]->len);
	}
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
		if (send_argv(rc, NULL, NULL, true, 2, argv, NULL))
			rc->handshake_left++;
	}
	if (rc->p.db) {
		char db[16];
		snprintf(db, sizeof(db), "%u", rc->p.db);
		const char *argv[] = {"SELECT", db};
		if (send_argv(rc, NULL, NULL, true, 2, argv, NULL))
			rc->handshake_left++;
	}
	if (rc->channel) {
		const char *argv[] = {"SUBSCRIBE", rc->channel};
		redisAsyncCommandArgv(rc->ac, sub_cb, NULL, 2, argv, NULL);
	} else if (rc->handshake_left == 0) {
		set_up(rc);
	}
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

static void start_connect(struct rconn *rc)
{
	char ip[64];
	gw_addr_ip(&rc->addr, ip, sizeof(ip));
	int port = rc->addr.ss.ss_family == AF_INET6
			   ? ntohs(((struct sockaddr_in6 *)&rc->addr.ss)->sin6_port)
			   : ntohs(((struct sockaddr_in *)&rc->addr.ss)->sin_port);
	rc->state = R_CONNECTING;
	rc->deadline_ms = gw_now_ms() + rc->p.connect_timeout_ms;
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
	struct timeval tv = {0, TICK_MS * 1000};
	event_add(rc->tick, &tv);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_connect(arg);
}

/* Deadlines: connect, handshake, and the oldest outstanding command. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct rconn *rc = arg;
	uint64_t now = gw_now_ms();
	if ((rc->state == R_CONNECTING || rc->state == R_HANDSHAKE) &&
	    now >= rc->deadline_ms) {
		go_down(rc, rc->state == R_CONNECTING ? "connect timed out"
						       : "handshake timed out");
		return;
	}
	struct rcmd *oldest = TAILQ_FIRST(&rc->pending);
	if (oldest && now - oldest->sent_ms >= rc->p.command_timeout_ms) {
		go_down(rc, "command timed out");
		return;
	}
	if (rc->state != R_UP || oldest) {
		struct timeval tv = {0, TICK_MS * 1000};
		event_add(rc->tick, &tv);
	}
}

struct rconn *rconn_create(const struct rconn_params *p)
{
	struct rconn *rc = gw_xcalloc(1, sizeof(*rc));
	rc->p = *p;
	rc->name = gw_xstrdup(p->name ? p->name : "redis");
	rc->password = p->password ? gw_xstrdup(p->password) : NULL;
	rc->channel = p->channel ? gw_xstrdup(p->channel) : NULL;
	rc->addr = *p->addr;
	rc->p.name = rc->name;
	rc->p.password = NULL; /* only the copy above */
	rc->p.channel = rc->channel;
	rc->p.addr = &rc->addr;
	if (rc->p.reconnect_max_ms < BACKOFF_MIN_MS)
		rc->p.reconnect_max_ms = BACKOFF_MIN_MS;
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
	return send_argv(rc, cb, arg, false, argc, argv, argvlen);
}

struct rcmd *rconn_commandv(struct rconn *rc, rcmd_cb cb, void *arg, ...)
{
	const char *argv[16];
	int argc = 0;
	va_list ap;
	va_start(ap, arg);
	const char *s;
	while ((s = va_arg(ap, const char *)) && argc < 16)
		argv[argc++] = s;
	va_end(ap);
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

void rconn_destroy(struct rconn *rc)
{
	if (!rc)
		return;
	rc->p.on_state = NULL;
	rc->p.on_message = NULL;
	rc->down_logged = true; /* no "unreachable" line for our own close */
	go_down(rc, "closing");
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
