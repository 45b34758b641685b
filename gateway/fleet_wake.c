/* fleet_wake.c - one wake across the fleet (docs/fleet.md, "Wake").
 *
 * A ticket per project waking here, from the activator's wake_begin() to
 * its wake_end(). The ticket asks Redis (script wake_begin) who makes the
 * scale call and tells the activator (a verdict), then keeps the answer
 * true:
 *   OURS    we hold gw:wake:<p>: renewed every lock_ttl/3 while waking,
 *           so a slow pod never lets a second process take it;
 *   WAIT    another process holds it: asked again when its lock could
 *           have run out, so a holder that died is taken over within
 *           the lock's ttl;
 *   QUEUED  no wake slot (max_waking): asked again on every "slot" news
 *           and every second (which also keeps gw:wantwake:<p> alive);
 *   COLD    a committed scale-down first: asked again on "cold" or
 *           "undrain" news, or when its mark could have expired;
 *   UNSURE  Redis did not answer: the activator calls alone (raise-only,
 *           so an extra call changes nothing), asked again every second.
 * At the end the lock and the slot are given back (script wake_done),
 * and a ready wake publishes "ready <p> <addrs>" so every process
 * releases its held requests at once.
 */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_int.h"
#include "core/log.h"
#include "core/compat.h"

#define RETRY_MS 1000     /* queued / unsure: ask again this often */
#define WANT_TTL_MS 3000  /* gw:wantwake:<p>: three missed retries */
#define SCAN_MAX 256      /* queue entries one admission looks at */
#define ADDRS_TEXT 400    /* ready news: room for the addresses */

enum fwake_state {
	FW_ASKING = 0, /* first answer not in yet */
	FW_OURS,
	FW_WAIT,
	FW_QUEUED,
	FW_COLD,
	FW_UNSURE,
};

enum fwake_timer {
	FT_NONE = 0,
	FT_DELIVER,   /* hand the activator a verdict from the loop */
	FT_RETRY,     /* ask again */
	FT_RENEW,     /* renew our lock */
};

struct fwake {
	struct fwake *next;        /* hash chain */
	struct fleet *f;
	struct flua_req *req;      /* the script in flight */
	struct event *timer;
	enum fwake_timer does;
	enum fwake_state st;
	enum act_verdict last;     /* last verdict delivered */
	bool delivered;            /* last is valid */
	bool asked;                /* deliver the next verdict even if same */
	bool again;                /* asked again while a script was out */
	bool delivering;           /* inside activator_fleet_verdict() */
	bool ended;                /* wake_end() came: finish when idle */
	bool end_ready;
	bool held;                 /* we hold (held) the lock */
	bool waited;               /* saw another holder first */
	bool counted_join, counted_queue;
	unsigned end_idle_ms;
	char end_addrs[ADDRS_TEXT];
	char project[];
};

static void run(struct fwake *t);
static void finish(struct fwake *t);

/* ---- the table ---------------------------------------------------------------- */

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct fwake **bucket(struct fleet *f, const char *name)
{
	return &f->wbuckets[name_hash(name) & (f->nwbuckets - 1)];
}

/* The live ticket of a project (an ended one is on its way out). */
static struct fwake *find(struct fleet *f, const char *name)
{
	for (struct fwake *t = *bucket(f, name); t; t = t->next)
		if (!t->ended && strcmp(t->project, name) == 0)
			return t;
	return NULL;
}

static void grow(struct fleet *f)
{
	size_t n = f->nwbuckets * 2;
	struct fwake **b = gw_xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < f->nwbuckets; i++) {
		struct fwake *t = f->wbuckets[i], *next;
		for (; t; t = next) {
			next = t->next;
			struct fwake **pp = &b[name_hash(t->project) & (n - 1)];
			t->next = *pp;
			*pp = t;
		}
	}
	free(f->wbuckets);
	f->wbuckets = b;
	f->nwbuckets = n;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static struct fwake *ticket_new(struct fleet *f, const char *name)
{
	size_t n = strlen(name);
	struct fwake *t = gw_xcalloc(1, sizeof(*t) + n + 1);
	memcpy(t->project, name, n + 1);
	t->f = f;
	t->timer = evtimer_new(f->p.base, timer_cb, t);
	if (!t->timer)
		gw_oom(0);
	if (++f->nwakes > f->nwbuckets)
		grow(f);
	struct fwake **pp = bucket(f, name);
	t->next = *pp;
	*pp = t;
	return t;
}

static void ticket_free(struct fwake *t)
{
	struct fleet *f = t->f;
	for (struct fwake **pp = bucket(f, t->project); *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	f->nwakes--;
	flua_cancel(t->req);
	event_free(t->timer);
	free(t);
}

/* ---- verdicts ------------------------------------------------------------------ */

static void arm(struct fwake *t, enum fwake_timer does, long long ms)
{
	if (ms < 0)
		ms = 0;
	t->does = does;
	fleet_arm(t->timer, (unsigned)ms);
}

/* Tell the activator (a repeat only when it asked again). It may end
 * the wake from inside, so t is finished afterwards if so. */
static void deliver(struct fwake *t, enum act_verdict v)
{
	if (t->delivered && t->last == v && !t->asked)
		return;
	t->delivered = true;
	t->last = v;
	t->asked = false;
	t->delivering = true;
	activator_fleet_verdict(t->f->act, t->project, v);
	t->delivering = false;
	if (t->ended && !t->req)
		finish(t);
}

/* The numbers in a reply are clamped to this (a wait in ms, a queue
 * place): a broken reply must not overflow the arithmetic below, or park
 * a ticket for longer than ten minutes. */
#define REPLY_NUM_MAX (10LL * 60 * 1000)

static long long clamp_num(long long v)
{
	return v < 0 ? 0 : v > REPLY_NUM_MAX ? REPLY_NUM_MAX : v;
}

void fleet_begin_parse(const redisReply *r, unsigned lock_ttl_ms,
		       struct fleet_begin *out)
{
	const char *kind = fleet_reply_str(r, 0);
	long long a = clamp_num(fleet_reply_int(r, 1, 0));
	long long b = clamp_num(fleet_reply_int(r, 2, 0));
	*out = (struct fleet_begin){.kind = FLEET_BEGIN_NONE,
				    .again_ms = RETRY_MS};
	if (!kind)
		return;
	if (strcmp(kind, "ours") == 0) {
		out->kind = FLEET_BEGIN_OURS;
		out->again_ms = lock_ttl_ms / 3;
	} else if (strcmp(kind, "wait") == 0) {
		/* When its lock could have run out (a live holder renews it
		 * long before): a dead one is taken over within its ttl. */
		out->kind = FLEET_BEGIN_WAIT;
		out->again_ms = (a > 0 ? a : (long long)lock_ttl_ms) + 20;
	} else if (strcmp(kind, "queued") == 0) {
		out->kind = FLEET_BEGIN_QUEUED;
		out->pos = a;
		out->len = b;
	} else if (strcmp(kind, "cold") == 0) {
		out->kind = FLEET_BEGIN_COLD;
		out->again_ms = a > 0 && a < RETRY_MS ? a + 20 : RETRY_MS;
	} else {
		out->kind = FLEET_BEGIN_UNDRAINED;
		out->again_ms = lock_ttl_ms;
	}
}

static void begin_cb(void *arg, redisReply *r)
{
	struct fwake *t = arg;
	struct fleet *f = t->f;
	t->req = NULL;
	struct fleet_begin bg;
	fleet_begin_parse(r, f->p.wake_lock_ttl_ms, &bg);
	if (t->ended) { /* the wake is over: give back what we just got */
		if (bg.kind == FLEET_BEGIN_OURS)
			t->held = true;
		finish(t);
		return;
	}
	enum act_verdict v;
	switch (bg.kind) {
	case FLEET_BEGIN_NONE:
		if (t->st != FW_UNSURE)
			gw_log(GW_LOG_WARN, "fleet",
			       "%s: no answer from Redis about its wake; waking "
			       "it from here", t->project);
		t->st = FW_UNSURE;
		v = ACT_VERDICT_CALL;
		arm(t, FT_RETRY, bg.again_ms);
		break;
	case FLEET_BEGIN_OURS:
		if (!t->held) {
			f->st.wakes_started++;
			if (t->waited) {
				f->st.wake_takeovers++;
				gw_log(GW_LOG_WARN, "fleet",
				       "%s: its wake lock expired; this gateway "
				       "takes the wake over", t->project);
			}
		}
		t->held = true;
		t->st = FW_OURS;
		v = ACT_VERDICT_CALL;
		arm(t, FT_RENEW, bg.again_ms);
		break;
	case FLEET_BEGIN_WAIT:
		if (!t->counted_join)
			f->st.wakes_joined++;
		t->counted_join = t->waited = true;
		t->held = false;
		t->st = FW_WAIT;
		v = ACT_VERDICT_WAIT;
		arm(t, FT_RETRY, bg.again_ms);
		break;
	case FLEET_BEGIN_QUEUED:
		if (!t->counted_queue)
			f->st.wakes_queued++;
		if (!t->counted_queue || t->st != FW_QUEUED)
			gw_log(GW_LOG_INFO, "fleet",
			       "%s: waiting for a wake slot (position %lld of %lld)",
			       t->project, bg.pos + 1, bg.len);
		t->counted_queue = true;
		f->st.queue_length = (uint64_t)bg.len;
		t->st = FW_QUEUED;
		v = ACT_VERDICT_QUEUED;
		arm(t, FT_RETRY, bg.again_ms);
		break;
	case FLEET_BEGIN_COLD:
		t->st = FW_COLD;
		v = ACT_VERDICT_WAIT_COLD;
		arm(t, FT_RETRY, bg.again_ms);
		break;
	case FLEET_BEGIN_UNDRAINED: /* it runs, nobody calls */
	default:
		t->st = FW_WAIT;
		v = ACT_VERDICT_UNDRAINED;
		arm(t, FT_RETRY, bg.again_ms);
		break;
	}
	if (t->again) {
		/* Asked again while this was out: what it says may be stale
		 * (a scale-down came in between); the next answer counts. */
		t->again = false;
		run(t);
		if (t->req)
			return;
	}
	deliver(t, v);
}

static void run(struct fwake *t)
{
	struct fleet *f = t->f;
	if (t->req || t->ended)
		return;
	char dkey[320], wkey[320], want[320], ttl[16], cap[16], wttl[16],
		scan[16];
	fleet_key(dkey, sizeof(dkey), "gw:drain:", t->project);
	fleet_key(wkey, sizeof(wkey), "gw:wake:", t->project);
	fleet_key(want, sizeof(want), "gw:wantwake:", t->project);
	snprintf(ttl, sizeof(ttl), "%u", f->p.wake_lock_ttl_ms);
	snprintf(cap, sizeof(cap), "%u", f->p.max_waking);
	snprintf(wttl, sizeof(wttl), "%u", WANT_TTL_MS);
	snprintf(scan, sizeof(scan), "%u", SCAN_MAX);
	const char *keys[] = {dkey, wkey, "gw:waking", "gw:wakeq", want};
	const char *args[] = {t->project, f->id, ttl, cap, wttl, scan};
	event_del(t->timer);
	t->req = flua_call(f, FLUA_WAKE_BEGIN, 5, keys, 6, args, begin_cb, t);
	if (!t->req) {
		/* Not connected: go ahead alone (from the loop, not inside
		 * the activator's call). */
		if (t->st != FW_UNSURE)
			gw_log(GW_LOG_WARN, "fleet",
			       "%s: Redis unreachable; waking it from here",
			       t->project);
		t->st = FW_UNSURE;
		t->held = false;
		arm(t, FT_DELIVER, 0);
	}
}

static void renew_cb(void *arg, redisReply *r)
{
	struct fwake *t = arg;
	t->req = NULL;
	if (t->ended) {
		finish(t);
		return;
	}
	if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
		/* Lost it (we were silent longer than its ttl): who has it? */
		gw_log(GW_LOG_WARN, "fleet", "%s: wake lock lost; asking again",
		       t->project);
		t->held = false;
		t->waited = true;
		run(t);
		return;
	}
	arm(t, FT_RENEW, t->f->p.wake_lock_ttl_ms / 3);
}

static void renew(struct fwake *t)
{
	struct fleet *f = t->f;
	char wkey[320], ttl[16];
	fleet_key(wkey, sizeof(wkey), "gw:wake:", t->project);
	snprintf(ttl, sizeof(ttl), "%u", f->p.wake_lock_ttl_ms);
	const char *keys[] = {wkey, "gw:waking"};
	const char *args[] = {f->id, ttl, t->project};
	t->req = flua_call(f, FLUA_WAKE_RENEW, 2, keys, 3, args, renew_cb, t);
	if (!t->req) /* down: keep trying, the lock may still be ours */
		arm(t, FT_RENEW, f->p.wake_lock_ttl_ms / 6 + 1);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fwake *t = arg;
	enum fwake_timer does = t->does;
	t->does = FT_NONE;
	if (t->req || t->ended)
		return;
	switch (does) {
	case FT_DELIVER:
		arm(t, FT_RETRY, RETRY_MS);
		deliver(t, ACT_VERDICT_CALL);
		break;
	case FT_RETRY:
		run(t);
		break;
	case FT_RENEW:
		renew(t);
		break;
	case FT_NONE:
		break;
	}
}

/* ---- the activator's hooks ------------------------------------------------------ */

void fleet_wake_begin(void *arg, const char *project)
{
	struct fleet *f = arg;
	struct fwake *t = find(f, project);
	if (!t)
		t = ticket_new(f, project);
	t->asked = true;
	if (t->req)
		t->again = true;
	else
		run(t);
}

/* The wake is over and nothing is in flight: give back the lock and the
 * slot, publish the news, free. */
static void finish(struct fwake *t)
{
	struct fleet *f = t->f;
	if (t->held || (t->end_ready && t->st == FW_UNSURE)) {
		char wkey[320], idle[16];
		fleet_key(wkey, sizeof(wkey), "gw:wake:", t->project);
		snprintf(idle, sizeof(idle), "%u", t->end_idle_ms);
		const char *keys[] = {wkey, "gw:waking", "gw:warm"};
		const char *args[] = {f->id, t->project, t->end_ready ? "1" : "0",
				      t->end_addrs, idle};
		flua_call(f, FLUA_WAKE_DONE, 3, keys, 5, args, NULL, NULL);
		/* The others' held requests go out on this news: before ours
		 * (the activator releases them right after this hook). */
		if (t->end_ready)
			rconn_flush(f->p.conn);
	}
	ticket_free(t);
}

void fleet_wake_end(void *arg, const char *project, bool ready,
		    const struct gw_addr *addrs, size_t n, unsigned idle_ms)
{
	struct fleet *f = arg;
	struct fwake *t = find(f, project);
	if (!t)
		return;
	t->ended = true;
	t->end_ready = ready;
	t->end_idle_ms = idle_ms;
	size_t o = 0;
	t->end_addrs[0] = '\0';
	for (size_t i = 0; ready && i < n; i++) {
		size_t l = strlen(addrs[i].text);
		if (o + l + 2 >= sizeof(t->end_addrs))
			break; /* the rest: found by their own watch */
		if (o)
			t->end_addrs[o++] = ',';
		memcpy(t->end_addrs + o, addrs[i].text, l + 1);
		o += l;
	}
	event_del(t->timer);
	if (!t->req && !t->delivering)
		finish(t);
}

/* ---- news ---------------------------------------------------------------------- */

size_t fleet_ready_parse(const char *rest, char project[256],
			 struct gw_addr *addrs, size_t max)
{
	const char *sp = strchr(rest, ' ');
	if (!sp || sp == rest || (size_t)(sp - rest) >= 256)
		return 0;
	memcpy(project, rest, (size_t)(sp - rest));
	project[sp - rest] = '\0';
	size_t n = 0;
	char list[512];
	if (snprintf(list, sizeof(list), "%s", sp + 1) >= (int)sizeof(list)) {
		/* Cut short: the last address may be cut too, and a cut
		 * "10.0.0.1:8080" still parses, as another one. Drop it. */
		char *comma = strrchr(list, ',');
		*(comma ? comma : list) = '\0';
	}
	char *save = NULL;
	for (char *a = strtok_r(list, ",", &save); a && n < max;
	     a = strtok_r(NULL, ",", &save)) {
		const char *err = NULL;
		if (gw_addr_parse(a, &addrs[n], &err) == 0)
			n++;
	}
	return n;
}

static void ready_news(struct fleet *f, const char *rest)
{
	char project[256];
	struct gw_addr addrs[32];
	size_t n = fleet_ready_parse(rest, project, addrs, GW_ARRAY_LEN(addrs));
	if (n && activator_fleet_ready(f->act, project, addrs, n))
		f->st.ready_news++;
}

void fleet_wake_event(struct fleet *f, const char *kind, const char *rest)
{
	if (strcmp(kind, "ready") == 0) {
		ready_news(f, rest);
		return;
	}
	/* "slot <p>": a wake slot is free; every queued ticket asks again
	 * (admission picks the oldest, so asking is cheap and fair). */
	for (size_t i = 0; i < f->nwbuckets; i++)
		for (struct fwake *t = f->wbuckets[i]; t; t = t->next)
			if (t->st == FW_QUEUED && !t->req && !t->ended)
				run(t);
}

unsigned fleet_wake_queued_here(const struct fleet *f)
{
	unsigned n = 0;
	for (size_t i = 0; i < f->nwbuckets; i++)
		for (struct fwake *t = f->wbuckets[i]; t; t = t->next)
			n += t->st == FW_QUEUED && !t->ended;
	return n;
}

/* ---- pre-wake --------------------------------------------------------------------- */

static void prewake_cb(void *arg, redisReply *r)
{
	struct fleet *f = arg;
	if (!r || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 255)
		return; /* another replica does it, or no project known */
	char project[256];
	memcpy(project, r->str, r->len);
	project[r->len] = '\0';
	struct act_project *p = fleet_project(f, project, false);
	if (!p) {
		gw_log(GW_LOG_DEBUG, "fleet", "pre-wake: %s has no Kubernetes route",
		       project);
		return;
	}
	gw_log(GW_LOG_INFO, "fleet", "%s: pre-waking it for a new session",
	       project);
	activator_fleet_prewake(p);
	activator_project_release(p);
}

void fleet_prewake_login(struct fleet *f, const char *user)
{
	size_t n = strlen(user);
	if (n == 0 || n > 256)
		return;
	char pkey[300], rkey[300], ttl[16];
	fleet_key(pkey, sizeof(pkey), "gw:prewake:", user);
	fleet_key(rkey, sizeof(rkey), "gw:recent:", user);
	snprintf(ttl, sizeof(ttl), "%u", f->prewake_ttl_ms);
	const char *keys[] = {pkey, rkey};
	const char *args[] = {f->id, ttl};
	flua_call(f, FLUA_PREWAKE, 2, keys, 2, args, prewake_cb, f);
}

/* ---- lifetime ---------------------------------------------------------------------- */

void fleet_wake_init(struct fleet *f)
{
	f->nwbuckets = 64;
	f->wbuckets = gw_xcalloc(f->nwbuckets, sizeof(*f->wbuckets));
}

void fleet_wake_finish(struct fleet *f)
{
	/* Shutdown: the locks we hold expire by themselves (lock ttl). */
	for (size_t i = 0; i < f->nwbuckets; i++)
		while (f->wbuckets[i])
			ticket_free(f->wbuckets[i]);
	free(f->wbuckets);
	f->wbuckets = NULL;
}
