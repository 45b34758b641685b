/* fleet.c - shared activity and the scale-down lease in Redis. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "fleet.h"
#include "redis.h"
#include "core/log.h"
#include "core/compat.h"

#define LEASE_MS 15000
/* Short: if its holder dies, or the app is scaled down and woken again
 * soon after, the others wait at most this long before calling themselves
 * (an extra scale call is idempotent; a stalled wake is not). */
#define WAKE_LOCK_MS 3000

struct ask {
	LIST_ENTRY(ask) link;
	struct fleet *f;
	struct rcmd *cmd;
	act_stop_cb done;
	struct act_project *p;
	unsigned idle_ms;
	char project[]; /* the project's name, whole */
};

struct fleet {
	struct rconn *conn;
	struct act_fleet hooks;
	char id[128]; /* this process, as lease holder */
	LIST_HEAD(, ask) asks;
};

static struct ask *ask_new(struct fleet *f, const char *project,
			   act_stop_cb done, struct act_project *p)
{
	size_t n = strlen(project);
	struct ask *q = gw_xcalloc(1, sizeof(*q) + n + 1);
	memcpy(q->project, project, n + 1);
	q->f = f;
	q->done = done;
	q->p = p;
	LIST_INSERT_HEAD(&f->asks, q, link);
	return q;
}

static void ask_end(struct ask *q, bool stop_now)
{
	act_stop_cb done = q->done;
	struct act_project *p = q->p;
	LIST_REMOVE(q, link);
	free(q);
	done(p, stop_now);
}

static void touch(void *arg, const char *project)
{
	struct fleet *f = arg;
	char key[600], val[24];
	snprintf(key, sizeof(key), "gw:activity:%s", project);
	snprintf(val, sizeof(val), "%llu", (unsigned long long)gw_wall_ms());
	/* A week: long enough for any idle timeout, and keys of deleted
	 * projects go away by themselves. */
	rconn_commandv(f->conn, NULL, NULL, "SET", key, val, "PX", "604800000",
		       NULL);
}

static void lease_cb(void *arg, redisReply *r)
{
	struct ask *q = arg;
	q->cmd = NULL;
	/* OK: ours. Nil: another process is scaling it down already. */
	bool won = r && r->type == REDIS_REPLY_STATUS;
	if (won) { /* the next wake must not wait for an old wake lock */
		char key[600];
		snprintf(key, sizeof(key), "gw:lock:wake:%s", q->project);
		rconn_commandv(q->f->conn, NULL, NULL, "DEL", key, NULL);
	}
	ask_end(q, won);
}

static void activity_cb(void *arg, redisReply *r)
{
	struct ask *q = arg;
	q->cmd = NULL;
	if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
		ask_end(q, false); /* unsure: keep it running */
		return;
	}
	if (r->type == REDIS_REPLY_STRING) {
		unsigned long long last = strtoull(r->str, NULL, 10);
		unsigned long long now = gw_wall_ms();
		if (now < last + q->idle_ms) {
			ask_end(q, false); /* used elsewhere recently */
			return;
		}
	}
	char key[600], px[16];
	snprintf(key, sizeof(key), "gw:lease:scaledown:%s", q->project);
	snprintf(px, sizeof(px), "%u", LEASE_MS);
	q->cmd = rconn_commandv(q->f->conn, lease_cb, q, "SET", key, q->f->id,
				"NX", "PX", px, NULL);
	if (!q->cmd)
		ask_end(q, false);
}

static void wake_holder_cb(void *arg, redisReply *r)
{
	struct ask *q = arg;
	q->cmd = NULL;
	/* Our own lock (a retry after a failed wake here) counts as ours;
	 * gone meanwhile: nobody is waking it, so do. */
	bool ours = !r || r->type != REDIS_REPLY_STRING ||
		    strcmp(r->str, q->f->id) == 0;
	ask_end(q, ours);
}

static void wake_lock_cb(void *arg, redisReply *r)
{
	struct ask *q = arg;
	q->cmd = NULL;
	/* No answer: scale anyway (an extra idempotent call beats a project
	 * that never wakes). Nil: held; by whom? */
	if (!(r && r->type == REDIS_REPLY_NIL)) {
		ask_end(q, true);
		return;
	}
	char key[600];
	snprintf(key, sizeof(key), "gw:lock:wake:%s", q->project);
	q->cmd = rconn_commandv(q->f->conn, wake_holder_cb, q, "GET", key, NULL);
	if (!q->cmd)
		ask_end(q, true);
}

static void may_wake(void *arg, const char *project, act_stop_cb done,
		     struct act_project *p)
{
	struct fleet *f = arg;
	struct ask *q = ask_new(f, project, done, p);
	char key[600], px[16];
	snprintf(key, sizeof(key), "gw:lock:wake:%s", project);
	snprintf(px, sizeof(px), "%u", WAKE_LOCK_MS);
	q->cmd = rconn_commandv(f->conn, wake_lock_cb, q, "SET", key, f->id,
				"NX", "PX", px, NULL);
	if (!q->cmd)
		ask_end(q, true);
}

static void may_stop(void *arg, const char *project, unsigned idle_ms,
		     act_stop_cb done, struct act_project *p)
{
	struct fleet *f = arg;
	struct ask *q = ask_new(f, project, done, p);
	q->idle_ms = idle_ms;
	char key[600];
	snprintf(key, sizeof(key), "gw:activity:%s", project);
	q->cmd = rconn_commandv(f->conn, activity_cb, q, "GET", key, NULL);
	if (!q->cmd)
		ask_end(q, false);
}

struct fleet *fleet_create(struct rconn *conn)
{
	struct fleet *f = gw_xcalloc(1, sizeof(*f));
	f->conn = conn;
	f->hooks = (struct act_fleet){.touch = touch, .may_stop = may_stop,
				      .may_wake = may_wake, .arg = f};
	char host[64] = "?";
	gethostname(host, sizeof(host) - 1);
	snprintf(f->id, sizeof(f->id), "%s:%d", host, (int)getpid());
	LIST_INIT(&f->asks);
	return f;
}

const struct act_fleet *fleet_hooks(struct fleet *f)
{
	return &f->hooks;
}

void fleet_destroy(struct fleet *f)
{
	if (!f)
		return;
	struct ask *q;
	while ((q = LIST_FIRST(&f->asks))) {
		rcmd_cancel(q->cmd);
		LIST_REMOVE(q, link);
		free(q);
	}
	free(f);
}
