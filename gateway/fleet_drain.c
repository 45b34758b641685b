/* fleet_drain.c - scale-down, decided once for the fleet (docs/fleet.md,
 * "Scale-down").
 *
 * The reaper lease holder (the leader) looks every reap_interval for
 * projects whose idle time has come across the fleet (gw:warm, scored by
 * when they may be idle) and drains each:
 *   1. drain_begin: nothing busy, no wake, no queued wake, idle long
 *      enough: mark gw:drain:<p> "<token> <id>", publish "draining <p>
 *      <token>".
 *   2. Every process, on that news: idle here (nothing in flight, nothing
 *      held, unused for the idle timeout) -> hold its requests from now
 *      on and ack (drain_ack, for that token only); in use -> call it
 *      off (drain_abort: delete the mark, publish "undrain <p>").
 *   3. The leader polls drain_commit: every live process (gw:replicas)
 *      acked, still nothing busy -> the mark becomes "scaling <token>
 *      <id>" and only then does the leader scale the Deployment to zero
 *      (raise-only wakes elsewhere meet the mark and wait; the write
 *      itself carries the resourceVersion read, so a concurrent change
 *      wins with a 409). Not all acked within drain_timeout: called off.
 *   4. Done: drain_done publishes "cold <p>" (held requests wake it
 *      again through the normal wake); failed: drain_cancel publishes
 *      "undrain <p>" (held requests go out to the running pods).
 * A project whose drain was called off is left alone for a while
 * (COOLDOWN) so a busy or half-acked fleet is not asked every tick.
 */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_int.h"
#include "core/log.h"
#include "core/compat.h"

#define DRAINS_MAX 16     /* handshakes in flight at once */
#define POLL_MS 20        /* commit polls while acks come in */
#define COOLDOWNS_MAX 256 /* remembered called-off projects */

enum fdrain_state {
	FD_BEGIN = 0, /* drain_begin sent */
	FD_ACKING,    /* draining: polling drain_commit */
	FD_SCALING,   /* committed: the activator scales it down */
	FD_COOLDOWN,  /* called off: not again before until_ms */
};

struct fdrain {
	TAILQ_ENTRY(fdrain) link;
	struct fleet *f;
	struct flua_req *req;
	struct event *timer;
	enum fdrain_state st;
	bool in_stop;       /* inside activator_fleet_stop() */
	bool over;          /* stopped() came during it */
	uint64_t started_ms;
	uint64_t until_ms;  /* FD_COOLDOWN */
	char token[40];
	char project[];
};

static void poll_commit(struct fdrain *d);

static struct fdrain *find(struct fleet *f, const char *project)
{
	struct fdrain *d;
	TAILQ_FOREACH(d, &f->drains, link)
		if (strcmp(d->project, project) == 0)
			return d;
	return NULL;
}

static unsigned active_count(const struct fleet *f)
{
	unsigned n = 0;
	struct fdrain *d;
	TAILQ_FOREACH(d, &f->drains, link)
		n += d->st != FD_COOLDOWN;
	return n;
}

static void drain_free(struct fdrain *d)
{
	TAILQ_REMOVE(&d->f->drains, d, link);
	d->f->ndrains--;
	flua_cancel(d->req);
	event_free(d->timer);
	free(d);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static struct fdrain *drain_new(struct fleet *f, const char *project)
{
	if (f->ndrains >= COOLDOWNS_MAX) { /* forget the oldest cool-down */
		struct fdrain *d;
		TAILQ_FOREACH(d, &f->drains, link)
			if (d->st == FD_COOLDOWN) {
				drain_free(d);
				break;
			}
		if (f->ndrains >= COOLDOWNS_MAX)
			return NULL;
	}
	size_t n = strlen(project);
	struct fdrain *d = gw_xcalloc(1, sizeof(*d) + n + 1);
	memcpy(d->project, project, n + 1);
	d->f = f;
	d->timer = evtimer_new(f->p.base, timer_cb, d);
	if (!d->timer)
		gw_oom(0);
	/* Unique across leaders: our id's random part and a counter. */
	const char *rnd = strrchr(f->id, ':');
	snprintf(d->token, sizeof(d->token), "%s.%llu", rnd ? rnd + 1 : "0",
		 (unsigned long long)++f->token_seq);
	d->started_ms = gw_now_ms();
	TAILQ_INSERT_TAIL(&f->drains, d, link);
	f->ndrains++;
	return d;
}

/* Leave it alone for a while (or forget it: cooldown 0). */
static void cool_down(struct fdrain *d, unsigned ms)
{
	flua_cancel(d->req);
	d->req = NULL;
	event_del(d->timer);
	if (!ms) {
		drain_free(d);
		return;
	}
	d->st = FD_COOLDOWN;
	d->until_ms = gw_now_ms() + ms;
}

static void script(struct fdrain *d, enum flua_script s, rcmd_cb cb)
{
	struct fleet *f = d->f;
	char dkey[320], akey[320], wkey[320], bkey[320], want[320], ttl[16];
	fleet_key(dkey, sizeof(dkey), "gw:drain:", d->project);
	fleet_key(akey, sizeof(akey), "gw:drainack:", d->project);
	fleet_key(wkey, sizeof(wkey), "gw:wake:", d->project);
	fleet_key(bkey, sizeof(bkey), "gw:busy:", d->project);
	fleet_key(want, sizeof(want), "gw:wantwake:", d->project);
	const char *p = d->project, *id = f->id, *tok = d->token;
	struct flua_req *r = NULL;
	switch (s) {
	case FLUA_DRAIN_BEGIN: {
		snprintf(ttl, sizeof(ttl), "%u", f->p.drain_timeout_ms + 1000);
		const char *keys[] = {dkey, akey, "gw:warm", bkey, wkey, want};
		const char *args[] = {p, id, tok, ttl};
		r = flua_call(f, s, 6, keys, 4, args, cb, d);
		break;
	}
	case FLUA_DRAIN_COMMIT: {
		snprintf(ttl, sizeof(ttl), "%u", f->p.lease_ttl_ms);
		const char *keys[] = {dkey, akey, "gw:replicas", bkey, "gw:warm"};
		const char *args[] = {p, id, tok, ttl};
		r = flua_call(f, s, 5, keys, 4, args, cb, d);
		break;
	}
	case FLUA_DRAIN_RENEW: {
		snprintf(ttl, sizeof(ttl), "%u", f->p.lease_ttl_ms);
		const char *keys[] = {dkey};
		const char *args[] = {id, tok, ttl};
		r = flua_call(f, s, 1, keys, 3, args, cb, d);
		break;
	}
	case FLUA_DRAIN_DONE: {
		const char *keys[] = {dkey, akey, "gw:warm"};
		const char *args[] = {p, id, tok};
		r = flua_call(f, s, 3, keys, 3, args, cb, d);
		break;
	}
	case FLUA_DRAIN_CANCEL: {
		const char *keys[] = {dkey, akey};
		const char *args[] = {p, id, tok};
		r = flua_call(f, s, 2, keys, 3, args, cb, d);
		break;
	}
	default:
		break;
	}
	if (cb)
		d->req = r;
}

/* Called off by us: tell everyone (the mark goes, "undrain" out). */
static void call_off(struct fdrain *d, const char *why)
{
	gw_log(GW_LOG_INFO, "fleet", "%s: scale-down called off: %s", d->project,
	       why);
	d->f->st.drains_aborted++;
	script(d, FLUA_DRAIN_CANCEL, NULL);
	cool_down(d, d->f->p.drain_timeout_ms * 2);
}

/* ---- the leader's steps ------------------------------------------------------- */

static void scale(struct fdrain *d, long long live)
{
	struct fleet *f = d->f;
	struct act_project *p = fleet_project(f, d->project, true);
	if (!p) {
		call_off(d, "no Kubernetes route names it any more");
		return;
	}
	gw_log(GW_LOG_INFO, "fleet",
	       "%s: idle on all %lld gateway process(es); scaling down to zero",
	       d->project, live);
	d->st = FD_SCALING;
	d->in_stop = true;
	bool ok = activator_fleet_stop(p);
	d->in_stop = false;
	activator_project_release(p);
	if (d->over) { /* stopped() already came, and said it all */
		drain_free(d);
		return;
	}
	if (!ok) {
		call_off(d, "busy here");
		return;
	}
	/* The "scaling" mark lives while we work; if we die it expires
	 * and waiting wakes go ahead. */
	fleet_arm(d->timer, f->p.lease_ttl_ms / 3);
}

static void commit_cb(void *arg, redisReply *r)
{
	struct fdrain *d = arg;
	struct fleet *f = d->f;
	d->req = NULL;
	long long code = fleet_reply_int(r, 0, -2);
	const char *info = fleet_reply_str(r, 1);
	if (code == 1) {
		scale(d, info ? strtoll(info, NULL, 10) : 0);
	} else if (code == 0 &&
		   gw_now_ms() - d->started_ms < f->p.drain_timeout_ms) {
		fleet_arm(d->timer, POLL_MS);
	} else if (code == 0) {
		char why[96];
		snprintf(why, sizeof(why),
			 "%s gateway process(es) did not ack within %ums",
			 info ? info : "?", f->p.drain_timeout_ms);
		call_off(d, why);
	} else if (code == -1) {
		gw_log(GW_LOG_INFO, "fleet", "%s: scale-down called off: %s",
		       d->project, info ? info : "?");
		f->st.drains_aborted++;
		cool_down(d, f->p.drain_timeout_ms * 2);
	} else {
		call_off(d, "no answer from Redis");
	}
}

static void poll_commit(struct fdrain *d)
{
	script(d, FLUA_DRAIN_COMMIT, commit_cb);
	if (!d->req)
		call_off(d, "Redis unreachable");
}

static void begin_cb(void *arg, redisReply *r)
{
	struct fdrain *d = arg;
	d->req = NULL;
	long long code = fleet_reply_int(r, 0, -1);
	if (code != 1) {
		const char *why = fleet_reply_str(r, 1);
		gw_log(GW_LOG_DEBUG, "fleet", "%s: not drained: %s", d->project,
		       why ? why : "no answer");
		/* Not idle enough, or in use: its next activity says when;
		 * look again after a tick or two. */
		cool_down(d, d->f->p.reap_interval_ms);
		return;
	}
	d->f->st.drains_started++;
	gw_log(GW_LOG_INFO, "fleet", "%s: idle across the fleet; draining "
	       "(asking every gateway process)", d->project);
	d->st = FD_ACKING;
	d->started_ms = gw_now_ms();
	fleet_arm(d->timer, POLL_MS);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fdrain *d = arg;
	if (d->req)
		return;
	if (d->st == FD_ACKING)
		poll_commit(d);
	else if (d->st == FD_SCALING) {
		script(d, FLUA_DRAIN_RENEW, NULL);
		fleet_arm(d->timer, d->f->p.lease_ttl_ms / 3);
	}
}

static void cand_cb(void *arg, redisReply *r)
{
	struct fleet *f = arg;
	f->cand_req = NULL;
	if (!r || r->type != REDIS_REPLY_ARRAY || !fleet_leading(f))
		return;
	uint64_t now = gw_now_ms();
	unsigned started = 0;
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 255)
			continue;
		char project[256];
		memcpy(project, e->str, e->len);
		project[e->len] = '\0';
		struct fdrain *d = find(f, project);
		if (d && (d->st != FD_COOLDOWN || now < d->until_ms))
			continue;
		if (d)
			drain_free(d);
		if (active_count(f) >= DRAINS_MAX)
			break;
		struct act_project *p = fleet_project(f, project, true);
		activator_project_release(p);
		if (!p) {
			/* No Kubernetes route names it any more, and this
			 * process never served it: it cannot scale it. Drop
			 * the entry (its Deployment is left as it is). */
			gw_log(GW_LOG_INFO, "fleet",
			       "%s: no route names it any more; its Deployment is "
			       "left as it is", project);
			const char *argv[] = {"ZREM", "gw:warm", project};
			rconn_command(f->p.conn, NULL, NULL, 3, argv, NULL);
			continue;
		}
		d = drain_new(f, project);
		if (!d)
			break;
		script(d, FLUA_DRAIN_BEGIN, begin_cb);
		if (!d->req)
			drain_free(d);
		else
			started++;
	}
	/* A full page of projects we could not start on (busy streams,
	 * cool-downs): the next look goes further, so they cannot hide the
	 * rest for ever. */
	if (!started && r->elements >= f->p.reap_batch)
		f->cand_off += f->p.reap_batch;
	else
		f->cand_off = 0;
}

void fleet_drain_tick(struct fleet *f)
{
	if (f->cand_req)
		return;
	char off[16], n[16];
	snprintf(off, sizeof(off), "%u", f->cand_off);
	snprintf(n, sizeof(n), "%u", f->p.reap_batch);
	const char *keys[] = {"gw:warm"};
	const char *args[] = {off, n};
	f->cand_req = flua_call(f, FLUA_CANDIDATES, 1, keys, 2, args, cand_cb, f);
}

/* The activator's stop (activator_fleet_stop) is over. */
void fleet_drain_stopped(void *arg, const char *project, bool ok)
{
	struct fleet *f = arg;
	struct fdrain *d = find(f, project);
	if (!d || d->st != FD_SCALING)
		return;
	event_del(d->timer);
	flua_cancel(d->req);
	d->req = NULL;
	if (ok) {
		f->st.scale_downs++;
		script(d, FLUA_DRAIN_DONE, NULL);
	} else {
		gw_log(GW_LOG_INFO, "fleet",
		       "%s: not scaled down (changed meanwhile); it runs on",
		       d->project);
		f->st.drains_aborted++;
		script(d, FLUA_DRAIN_CANCEL, NULL);
	}
	if (d->in_stop) {
		d->over = true; /* scale() frees it */
		return;
	}
	if (ok)
		drain_free(d);
	else
		cool_down(d, f->p.drain_timeout_ms * 2);
}

/* ---- every process's side ------------------------------------------------------ */

void fleet_drain_event(struct fleet *f, const char *kind, const char *rest)
{
	if (strcmp(kind, "undrain") == 0) {
		activator_fleet_undrain(f->act, rest);
		return;
	}
	if (strcmp(kind, "cold") == 0) {
		activator_fleet_cold(f->act, rest);
		return;
	}
	/* draining <p> <token> */
	const char *sp = strchr(rest, ' ');
	if (!sp || sp == rest || (size_t)(sp - rest) >= 256 || strlen(sp + 1) >= 40)
		return;
	char project[256], dkey[320], akey[320], ttl[16];
	memcpy(project, rest, (size_t)(sp - rest));
	project[sp - rest] = '\0';
	const char *token = sp + 1;
	fleet_key(dkey, sizeof(dkey), "gw:drain:", project);
	fleet_key(akey, sizeof(akey), "gw:drainack:", project);
	if (activator_fleet_drain(f->act, project)) {
		snprintf(ttl, sizeof(ttl), "%u", f->p.drain_timeout_ms + 1000);
		const char *keys[] = {dkey, akey};
		const char *args[] = {f->id, token, ttl};
		flua_call(f, FLUA_DRAIN_ACK, 2, keys, 3, args, NULL, NULL);
	} else {
		const char *keys[] = {dkey};
		const char *args[] = {token, project};
		flua_call(f, FLUA_DRAIN_ABORT, 1, keys, 2, args, NULL, NULL);
	}
}

void fleet_drain_init(struct fleet *f)
{
	TAILQ_INIT(&f->drains);
}

void fleet_drain_finish(struct fleet *f)
{
	/* A committed mark left behind expires (lease_ttl); waiting wakes
	 * then go ahead. */
	struct fdrain *d;
	while ((d = TAILQ_FIRST(&f->drains)))
		drain_free(d);
	flua_cancel(f->cand_req);
	f->cand_req = NULL;
}
