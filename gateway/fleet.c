/* fleet.c - identity, heartbeat, the reaper lease, shared activity, the
 * events channel and the counters of the fleet (fleet.h). Wakes live in
 * fleet_wake.c, scale-downs in fleet_drain.c, scripts in fleet_lua.c. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "fleet_int.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/compat.h"

#define RECENT_TTL_MS "2592000000" /* 30 days */

/* ---- helpers --------------------------------------------------------------- */

void fleet_key(char *buf, size_t len, const char *prefix, const char *name)
{
	snprintf(buf, len, "%s%s", prefix, name);
}

void fleet_arm(struct event *ev, unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(ev, &tv);
}

long long fleet_reply_int(const redisReply *r, size_t i, long long def)
{
	if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
		return def;
	const redisReply *e = r->element[i];
	if (e->type == REDIS_REPLY_INTEGER)
		return e->integer;
	if (e->type == REDIS_REPLY_STRING)
		return strtoll(e->str, NULL, 10);
	return def;
}

const char *fleet_reply_str(const redisReply *r, size_t i)
{
	if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_STRING)
		return NULL;
	return r->element[i]->str;
}

struct act_project *fleet_project(struct fleet *f, const char *project,
				  bool known_ok)
{
	struct act_target t;
	memset(&t, 0, sizeof(t));
	if (!f->act)
		return NULL;
	if (f->p.target && f->p.target(f->p.arg, project, &t))
		return activator_project(f->act, project, &t);
	/* Its route is gone, but this process served it: it knows the
	 * Deployment still (a removed route's app is scaled down too). */
	return known_ok ? activator_project_get(f->act, project) : NULL;
}

bool fleet_leading(const struct fleet *f)
{
	return f->lease_held && gw_now_ms() < f->lease_until_ms &&
	       f->in_sync && !f->shutting_down;
}

/* ---- heartbeat: gw:replicas ---------------------------------------------- */

static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fleet *f = arg;
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%u", f->p.replica_ttl_ms);
	const char *keys[] = {"gw:replicas"};
	const char *args[] = {f->id, ttl};
	flua_call(f, FLUA_HEARTBEAT, 1, keys, 2, args, NULL, NULL);
	/* A third of the ttl: two beats may be lost before it counts as
	 * gone. While Redis is down nothing is sent: the others stop
	 * waiting for this process after the ttl. */
	fleet_arm(f->beat_timer, f->p.replica_ttl_ms / 3);
}

/* ---- the reaper lease: gw:lease:reaper --------------------------------- */

static void set_leading(struct fleet *f, bool held)
{
	if (held != f->lease_held)
		gw_log(GW_LOG_INFO, "fleet", "%s the scale-down lease (%s)",
		       held ? "holding" : "lost", f->id);
	f->lease_held = held;
	f->st.lease_held = held;
}

static void lease_cb(void *arg, redisReply *r)
{
	struct fleet *f = arg;
	f->lease_req = NULL;
	/* No answer: not ours for all we know (another may take it). */
	bool held = r && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
	set_leading(f, held);
	if (held)
		/* Sent at sent_ms at the latest; a third of the ttl before
		 * it could have run out it is no longer relied on. */
		f->lease_until_ms = gw_now_ms() + f->p.lease_ttl_ms * 2 / 3;
}

static void lease_tick(evutil_socket_t fd, short what, void *arg)
{
	struct fleet *f = arg;
	fleet_arm(f->lease_timer, f->p.lease_ttl_ms / 3);
	if (f->lease_req)
		return; /* the last one is still out (command_timeout ends it) */
	if (!f->in_sync || f->shutting_down) {
		if (f->lease_held) {
			const char *keys[] = {"gw:lease:reaper"};
			const char *args[] = {f->id};
			flua_call(f, FLUA_LEASE_DROP, 1, keys, 1, args, NULL, NULL);
		}
		set_leading(f, false);
		return;
	}
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%u", f->p.lease_ttl_ms);
	const char *keys[] = {"gw:lease:reaper"};
	const char *args[] = {f->id, ttl};
	f->lease_req = flua_call(f, FLUA_LEASE, 1, keys, 2, args, lease_cb, f);
	if (!f->lease_req)
		set_leading(f, false);
}

static void reap_tick(evutil_socket_t fd, short what, void *arg)
{
	struct fleet *f = arg;
	fleet_arm(f->reap_timer, f->p.reap_interval_ms);
	if (fleet_leading(f))
		fleet_drain_tick(f);
}

/* ---- activity: gw:warm, gw:busy:<p> ---------------------------------- */

static void activity(void *arg, const char *project, bool busy,
		     unsigned idle_ms)
{
	struct fleet *f = arg;
	char warm[] = "gw:warm", bkey[320], idle[16], ttl[16];
	fleet_key(bkey, sizeof(bkey), "gw:busy:", project);
	snprintf(idle, sizeof(idle), "%u", idle_ms);
	snprintf(ttl, sizeof(ttl), "%u", f->p.replica_ttl_ms);
	const char *keys[] = {warm, bkey};
	const char *args[] = {project, f->id, busy ? "1" : "0", idle, ttl};
	flua_call(f, FLUA_ACTIVITY, 2, keys, 5, args, NULL, NULL);
}

void fleet_recent(struct fleet *f, const char *user, size_t len,
		  const char *project)
{
	if (!f || !f->p.prewake || len == 0 || len > 256)
		return;
	char key[300];
	snprintf(key, sizeof(key), "gw:recent:%.*s", (int)len, user);
	const char *argv[] = {"SET", key, project, "PX", RECENT_TTL_MS};
	rconn_command(f->p.conn, NULL, NULL, 5, argv, NULL);
}

/* ---- events ---------------------------------------------------------------- */

bool fleet_event(struct fleet *f, const char *kind, const char *name)
{
	bool wake = strcmp(kind, "ready") == 0 || strcmp(kind, "slot") == 0;
	bool drain = strcmp(kind, "draining") == 0 ||
		     strcmp(kind, "undrain") == 0 || strcmp(kind, "cold") == 0;
	bool login = strcmp(kind, "login") == 0;
	if (!wake && !drain && !login)
		return false;
	/* A fleet event is known even to a process without a fleet (no
	 * Kubernetes here, or prewake off): not worth a warning. */
	if (!f || !f->act)
		return true;
	if (wake)
		fleet_wake_event(f, kind, name);
	else if (drain)
		fleet_drain_event(f, kind, name);
	else if (f->p.prewake)
		fleet_prewake_login(f, name);
	return true;
}

void fleet_set_sync(struct fleet *f, bool in_sync)
{
	if (!f || f->in_sync == in_sync)
		return;
	f->in_sync = in_sync;
	if (in_sync) { /* compete for the lease and beat at once */
		event_active(f->lease_timer, EV_TIMEOUT, 0);
		event_active(f->beat_timer, EV_TIMEOUT, 0);
	}
}

/* ---- counters --------------------------------------------------------------- */

#define FS(f) offsetof(struct fleet_stats, f)
static const struct stats_metric fleet_metrics[] = {
	{"gateway_fleet_wakes_started",
	 "Wakes this process made the scale call for (it held the wake lock).",
	 STATS_COUNTER, FS(wakes_started)},
	{"gateway_fleet_wakes_joined",
	 "Wakes another process was making; this one waited for its news.",
	 STATS_COUNTER, FS(wakes_joined)},
	{"gateway_fleet_wakes_queued",
	 "Wakes that waited for a slot (fleet max_waking).", STATS_COUNTER,
	 FS(wakes_queued)},
	{"gateway_fleet_wake_takeovers",
	 "Wake locks taken over after their holder went silent.",
	 STATS_COUNTER, FS(wake_takeovers)},
	{"gateway_fleet_ready_news",
	 "Held requests released by another process's ready news.",
	 STATS_COUNTER, FS(ready_news)},
	{"gateway_fleet_drains_started",
	 "Scale-down handshakes this process started as leader.",
	 STATS_COUNTER, FS(drains_started)},
	{"gateway_fleet_drains_aborted",
	 "Scale-down handshakes that ended without a scale-down (in use, "
	 "not every process acked, the Deployment changed).",
	 STATS_COUNTER, FS(drains_aborted)},
	{"gateway_fleet_scale_downs",
	 "Deployments this process scaled to zero for the fleet.",
	 STATS_COUNTER, FS(scale_downs)},
	{"gateway_fleet_lease_held",
	 "1 while this process holds the scale-down (reaper) lease.",
	 STATS_GAUGE, FS(lease_held)},
	{"gateway_fleet_admission_queue_length",
	 "Projects waiting for a wake slot across the fleet, as last seen "
	 "here (workers add up).",
	 STATS_GAUGE, FS(queue_length)},
	{"gateway_fleet_wakes_waiting_for_slot",
	 "Projects of this process waiting for a wake slot now.", STATS_GAUGE,
	 FS(queued_here)},
};
#undef FS

static void stats_refresh(void *obj)
{
	struct fleet_stats *st = obj;
	struct fleet *f = gw_container_of(st, struct fleet, st);
	st->queued_here = fleet_wake_queued_here(f);
	st->lease_held = fleet_leading(f);
}

static const struct stats_table fleet_table = {
	.metrics = fleet_metrics,
	.nmetrics = GW_ARRAY_LEN(fleet_metrics),
	.refresh = stats_refresh,
};

/* ---- lifetime ----------------------------------------------------------------- */

static void make_id(struct fleet *f)
{
	char host[64] = "?";
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	for (char *c = host; *c; c++) /* ids go into space-separated values */
		if (*c == ' ')
			*c = '_';
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (uint32_t)gw_now_ms() ^ ((uint32_t)getpid() << 16);
	/* The random part: a restarted pod with the same pid (pid 1 in a
	 * container) must not be taken for its predecessor. */
	snprintf(f->id, sizeof(f->id), "%s:%d:%08x", host, (int)getpid(), rnd);
}

struct fleet *fleet_create(const struct fleet_params *p)
{
	struct fleet *f = gw_xcalloc(1, sizeof(*f));
	f->p = *p;
	make_id(f);
	LIST_INIT(&f->reqs);
	f->prewake_ttl_ms = 2000;
	f->hooks = (struct act_fleet){
		.activity = activity,
		.wake_begin = fleet_wake_begin,
		.wake_end = fleet_wake_end,
		.stopped = fleet_drain_stopped,
		.busy_refresh_ms = p->replica_ttl_ms / 3,
		.arg = f,
	};
	f->beat_timer = evtimer_new(p->base, beat_cb, f);
	f->lease_timer = evtimer_new(p->base, lease_tick, f);
	f->reap_timer = evtimer_new(p->base, reap_tick, f);
	if (!f->beat_timer || !f->lease_timer || !f->reap_timer)
		gw_oom(0);
	fleet_wake_init(f);
	fleet_drain_init(f);
	fleet_arm(f->beat_timer, 0);
	fleet_arm(f->lease_timer, f->p.lease_ttl_ms / 3);
	fleet_arm(f->reap_timer, f->p.reap_interval_ms);
	if (p->stats)
		f->reg = stats_register(p->stats, &fleet_table, &f->st, NULL);
	gw_log(GW_LOG_INFO, "fleet",
	       "replica %s: replica_ttl %ums, lease %ums, wake lock %ums, "
	       "max_waking %u%s",
	       f->id, p->replica_ttl_ms, p->lease_ttl_ms, p->wake_lock_ttl_ms,
	       p->max_waking, p->prewake ? ", pre-wake on" : "");
	return f;
}

const struct act_fleet *fleet_hooks(struct fleet *f)
{
	return &f->hooks;
}

void fleet_set_activator(struct fleet *f, struct activator *a)
{
	f->act = a;
}

void fleet_shutdown(struct fleet *f)
{
	if (!f || f->shutting_down)
		return;
	f->shutting_down = true;
	/* The heartbeat goes on: requests still open here must keep their
	 * pods (a process that left would not be asked to ack). */
	if (f->lease_held) {
		const char *keys[] = {"gw:lease:reaper"};
		const char *args[] = {f->id};
		flua_call(f, FLUA_LEASE_DROP, 1, keys, 1, args, NULL, NULL);
	}
	set_leading(f, false);
}

void fleet_leave(struct fleet *f)
{
	if (!f)
		return;
	fleet_shutdown(f);
	/* Best effort, while the loop still runs: the others stop waiting
	 * for our acks now, not after replica_ttl. */
	const char *keys[] = {"gw:replicas", "gw:lease:reaper"};
	const char *args[] = {f->id};
	flua_call(f, FLUA_LEAVE, 2, keys, 1, args, NULL, NULL);
	event_del(f->beat_timer);
}

void fleet_destroy(struct fleet *f)
{
	if (!f)
		return;
	stats_unregister(f->reg);
	fleet_drain_finish(f);
	fleet_wake_finish(f);
	flua_cancel_all(f);
	event_free(f->beat_timer);
	event_free(f->lease_timer);
	event_free(f->reap_timer);
	free(f);
}
