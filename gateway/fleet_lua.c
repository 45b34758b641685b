/* fleet_lua.c - every Redis step of the fleet protocol that must be
 * atomic, as a Lua script (docs/redis.md lists them with their keys), and
 * the way they are sent: EVALSHA once Redis knows the script (SCRIPT
 * LOAD, sent lazily on first use), EVAL until then and again after a
 * NOSCRIPT (Redis restarted, or SCRIPT FLUSH).
 *
 * Time inside the scripts is Redis's (TIME): replicas' clocks never meet.
 * Scripts build a few keys from names they read (gw:wantwake:<queued
 * project>), so the fleet needs one Redis (or one Cluster slot for all
 * gw: keys, which this layout does not arrange): the gateway's Redis is
 * one server by design (docs/redis.md).
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_int.h"
#include "core/log.h"
#include "core/compat.h"

#define NOW_MS                                                                 \
	"local function now_ms()\n"                                            \
	"  local t = redis.call('TIME')\n"                                     \
	"  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
	"end\n"

struct script {
	const char *name;
	const char *text;
};

/* KEYS and ARGV of each script are listed above its text. */
static const struct script scripts[FLUA_COUNT] = {
	/* KEYS gw:replicas; ARGV id, ttl. Live replicas: score > now. */
	[FLUA_HEARTBEAT] = {"heartbeat", NOW_MS
		"local now = now_ms()\n"
		"redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
		"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
		"redis.call('PEXPIRE', KEYS[1], 10 * tonumber(ARGV[2]))\n"
		"return redis.call('ZCARD', KEYS[1])\n"},
	/* KEYS gw:replicas, gw:lease:reaper; ARGV id. */
	[FLUA_LEAVE] = {"leave",
		"redis.call('ZREM', KEYS[1], ARGV[1])\n"
		"if redis.call('GET', KEYS[2]) == ARGV[1] then\n"
		"  redis.call('DEL', KEYS[2])\n"
		"end\n"
		"return 1\n"},
	/* KEYS gw:lease:reaper; ARGV id, ttl. 1 renewed, 2 taken, 0 not
	 * ours. */
	[FLUA_LEASE] = {"lease",
		"local cur = redis.call('GET', KEYS[1])\n"
		"if cur == ARGV[1] then\n"
		"  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
		"  return 1\n"
		"end\n"
		"if not cur then\n"
		"  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
		"  return 2\n"
		"end\n"
		"return 0\n"},
	/* KEYS gw:lease:reaper; ARGV id. */
	[FLUA_LEASE_DROP] = {"lease_drop",
		"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
		"  return redis.call('DEL', KEYS[1])\n"
		"end\n"
		"return 0\n"},
	/* KEYS gw:warm, gw:busy:<p>; ARGV p, id, busy (1|0), idle_ms,
	 * busy_ttl. gw:warm's score is when p may be idle across the fleet
	 * (the latest of now + idle, GT); busy entries expire by score. */
	[FLUA_ACTIVITY] = {"activity", NOW_MS
		"local now = now_ms()\n"
		"redis.call('ZADD', KEYS[1], 'GT', now + tonumber(ARGV[4]), ARGV[1])\n"
		"redis.call('PEXPIRE', KEYS[1], 604800000)\n"
		"if ARGV[3] == '1' then\n"
		"  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[2])\n"
		"  redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[5]))\n"
		"else\n"
		"  redis.call('ZREM', KEYS[2], ARGV[2])\n"
		"end\n"
		"return 1\n"},
	/* KEYS gw:drain:<p>, gw:wake:<p>, gw:waking, gw:wakeq,
	 * gw:wantwake:<p>; ARGV p, id, lock_ttl, cap, want_ttl, scan_max.
	 * Returns {verdict, a, b}: cold (a = mark's PTTL), undrained,
	 * ours, wait (a = lock's PTTL), queued (a = position, b = length). */
	[FLUA_WAKE_BEGIN] = {"wake_begin", NOW_MS
		"local now = now_ms()\n"
		"local p, id = ARGV[1], ARGV[2]\n"
		"local ttl, cap = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
		"local d = redis.call('GET', KEYS[1])\n"
		"if d then\n"
		"  if string.sub(d, 1, 8) == 'scaling ' then\n"
		"    return {'cold', redis.call('PTTL', KEYS[1]), 0}\n"
		"  end\n"
		"  redis.call('DEL', KEYS[1])\n"
		"  redis.call('PUBLISH', 'gw:events', 'undrain ' .. p)\n"
		"  return {'undrained', 0, 0}\n"
		"end\n"
		"local w = redis.call('GET', KEYS[2])\n"
		"if w == id then\n"
		"  redis.call('PEXPIRE', KEYS[2], ttl)\n"
		"  redis.call('ZADD', KEYS[3], 'XX', now + ttl, p)\n"
		"  return {'ours', 0, 0}\n"
		"end\n"
		"if w then return {'wait', redis.call('PTTL', KEYS[2]), 0} end\n"
		"if cap > 0 then\n"
		"  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)\n"
		"  local free = cap - redis.call('ZCARD', KEYS[3])\n"
		"  local admitted = false\n"
		"  if free > 0 then\n"
		"    local ahead, seen, off = 0, 0, 0\n"
		"    local found, ended = false, false\n"
		"    local scan = tonumber(ARGV[6])\n"
		"    while not found and not ended and ahead < free and seen < scan do\n"
		"      local batch = redis.call('ZRANGE', KEYS[4], off, off + 31)\n"
		"      if #batch < 32 then ended = true end\n"
		"      for _, q in ipairs(batch) do\n"
		"        seen = seen + 1\n"
		"        if q == p then found = true break end\n"
		"        if redis.call('EXISTS', 'gw:wantwake:' .. q) == 1 then\n"
		"          ahead = ahead + 1\n"
		"          off = off + 1\n"
		"        else\n"
		"          redis.call('ZREM', KEYS[4], q)\n"
		"        end\n"
		"        if ahead >= free or seen >= scan then\n"
		"          ended = false\n"
		"          break\n"
		"        end\n"
		"      end\n"
		"    end\n"
		"    admitted = ahead < free and (found or ended)\n"
		"  end\n"
		"  if not admitted then\n"
		"    redis.call('ZADD', KEYS[4], 'NX', now, p)\n"
		"    redis.call('PEXPIRE', KEYS[4], 86400000)\n"
		"    redis.call('SET', KEYS[5], id, 'PX', ARGV[5])\n"
		"    return {'queued', redis.call('ZRANK', KEYS[4], p),\n"
		"            redis.call('ZCARD', KEYS[4])}\n"
		"  end\n"
		"  redis.call('ZADD', KEYS[3], now + ttl, p)\n"
		"  redis.call('PEXPIRE', KEYS[3], 86400000)\n"
		"  redis.call('ZREM', KEYS[4], p)\n"
		"  redis.call('DEL', KEYS[5])\n"
		"end\n"
		"redis.call('SET', KEYS[2], id, 'PX', ttl)\n"
		"return {'ours', 0, 0}\n"},
	/* KEYS gw:wake:<p>, gw:waking; ARGV id, ttl, p. 1 renewed, 0 lost. */
	[FLUA_WAKE_RENEW] = {"wake_renew", NOW_MS
		"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
		"redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
		"redis.call('ZADD', KEYS[2], 'XX', now_ms() + tonumber(ARGV[2]), ARGV[3])\n"
		"return 1\n"},
	/* KEYS gw:wake:<p>, gw:waking, gw:warm; ARGV id, p, ready (1|0),
	 * addrs, idle_ms. Releases the lock and the slot if ours; ready
	 * publishes the news and starts the idle clock. */
	[FLUA_WAKE_DONE] = {"wake_done", NOW_MS
		"local ours = redis.call('GET', KEYS[1]) == ARGV[1]\n"
		"if ours then redis.call('DEL', KEYS[1]) end\n"
		"if ARGV[3] == '1' then\n"
		"  redis.call('ZADD', KEYS[3], 'GT', now_ms() + tonumber(ARGV[5]), ARGV[2])\n"
		"  redis.call('PEXPIRE', KEYS[3], 604800000)\n"
		"  redis.call('PUBLISH', 'gw:events', 'ready ' .. ARGV[2] .. ' ' .. ARGV[4])\n"
		"end\n"
		"if ours and redis.call('ZREM', KEYS[2], ARGV[2]) == 1 then\n"
		"  redis.call('PUBLISH', 'gw:events', 'slot ' .. ARGV[2])\n"
		"end\n"
		"if ours then return 1 end\n"
		"return 0\n"},
	/* KEYS gw:warm; ARGV offset, limit. Projects whose idle time has
	 * come, oldest first. */
	[FLUA_CANDIDATES] = {"candidates", NOW_MS
		"return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(),\n"
		"                  'LIMIT', tonumber(ARGV[1]), tonumber(ARGV[2]))\n"},
	/* KEYS gw:drain:<p>, gw:drainack:<p>, gw:warm, gw:busy:<p>,
	 * gw:wake:<p>, gw:wantwake:<p>; ARGV p, id, token, ttl.
	 * {1, ''} draining (published), {0, why} not now. */
	[FLUA_DRAIN_BEGIN] = {"drain_begin", NOW_MS
		"local now = now_ms()\n"
		"if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 'draining'} end\n"
		"if redis.call('EXISTS', KEYS[5]) == 1 then return {0, 'waking'} end\n"
		"if redis.call('EXISTS', KEYS[6]) == 1 then return {0, 'queued'} end\n"
		"local due = redis.call('ZSCORE', KEYS[3], ARGV[1])\n"
		"if not due then return {0, 'not warm'} end\n"
		"if tonumber(due) > now then return {0, 'used recently'} end\n"
		"if redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf') > 0 then\n"
		"  return {0, 'busy'}\n"
		"end\n"
		"redis.call('SET', KEYS[1], ARGV[3] .. ' ' .. ARGV[2], 'PX', ARGV[4])\n"
		"redis.call('DEL', KEYS[2])\n"
		"redis.call('PUBLISH', 'gw:events', 'draining ' .. ARGV[1] .. ' ' .. ARGV[3])\n"
		"return {1, ''}\n"},
	/* KEYS gw:drain:<p>, gw:drainack:<p>; ARGV id, token, ttl. Only for
	 * the drain the token names (an ack that arrives late counts for
	 * nothing else). */
	[FLUA_DRAIN_ACK] = {"drain_ack",
		"local m = redis.call('GET', KEYS[1])\n"
		"if not m or string.sub(m, 1, #ARGV[2] + 1) ~= ARGV[2] .. ' ' then\n"
		"  return 0\n"
		"end\n"
		"redis.call('SADD', KEYS[2], ARGV[1])\n"
		"redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"
		"return 1\n"},
	/* KEYS gw:drain:<p>; ARGV token, p. In use here: call it off,
	 * unless it is committed. */
	[FLUA_DRAIN_ABORT] = {"drain_abort",
		"local m = redis.call('GET', KEYS[1])\n"
		"if m and string.sub(m, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then\n"
		"  redis.call('DEL', KEYS[1])\n"
		"  redis.call('PUBLISH', 'gw:events', 'undrain ' .. ARGV[2])\n"
		"  return 1\n"
		"end\n"
		"return 0\n"},
	/* KEYS gw:drain:<p>, gw:drainack:<p>, gw:replicas, gw:busy:<p>,
	 * gw:warm; ARGV p, id, token, scale_ttl. {1, live} committed,
	 * {0, missing acks} not yet, {-1, why} over (called off). */
	[FLUA_DRAIN_COMMIT] = {"drain_commit", NOW_MS
		"local now = now_ms()\n"
		"local mine = ARGV[3] .. ' ' .. ARGV[2]\n"
		"if redis.call('GET', KEYS[1]) ~= mine then return {-1, 'gone'} end\n"
		"local function off(why)\n"
		"  redis.call('DEL', KEYS[1])\n"
		"  redis.call('PUBLISH', 'gw:events', 'undrain ' .. ARGV[1])\n"
		"  return {-1, why}\n"
		"end\n"
		"if redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf') > 0 then\n"
		"  return off('busy')\n"
		"end\n"
		"local due = redis.call('ZSCORE', KEYS[5], ARGV[1])\n"
		"if due and tonumber(due) > now then return off('used recently') end\n"
		"local me = redis.call('ZSCORE', KEYS[3], ARGV[2])\n"
		"if not me or tonumber(me) <= now then return {0, 'not live'} end\n"
		"local live = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now, '+inf')\n"
		"local missing = 0\n"
		"for _, r in ipairs(live) do\n"
		"  if redis.call('SISMEMBER', KEYS[2], r) == 0 then missing = missing + 1 end\n"
		"end\n"
		"if missing > 0 then return {0, tostring(missing)} end\n"
		"redis.call('SET', KEYS[1], 'scaling ' .. mine, 'PX', ARGV[4])\n"
		"return {1, tostring(#live)}\n"},
	/* KEYS gw:drain:<p>; ARGV id, token, ttl. */
	[FLUA_DRAIN_RENEW] = {"drain_renew",
		"if redis.call('GET', KEYS[1]) == 'scaling ' .. ARGV[2] .. ' ' .. ARGV[1] then\n"
		"  return redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
		"end\n"
		"return 0\n"},
	/* KEYS gw:drain:<p>, gw:drainack:<p>, gw:warm; ARGV p, id, token.
	 * Scaled to zero: everyone goes cold (even if the mark expired
	 * meanwhile: a wake that read the scale before our write must know). */
	[FLUA_DRAIN_DONE] = {"drain_done",
		"if redis.call('GET', KEYS[1]) == 'scaling ' .. ARGV[3] .. ' ' .. ARGV[2] then\n"
		"  redis.call('DEL', KEYS[1])\n"
		"end\n"
		"redis.call('DEL', KEYS[2])\n"
		"redis.call('ZREM', KEYS[3], ARGV[1])\n"
		"redis.call('PUBLISH', 'gw:events', 'cold ' .. ARGV[1])\n"
		"return 1\n"},
	/* KEYS gw:drain:<p>, gw:drainack:<p>; ARGV p, id, token. */
	[FLUA_DRAIN_CANCEL] = {"drain_cancel",
		"local m = redis.call('GET', KEYS[1])\n"
		"local mine = ARGV[3] .. ' ' .. ARGV[2]\n"
		"redis.call('DEL', KEYS[2])\n"
		"if m == mine or m == 'scaling ' .. mine then\n"
		"  redis.call('DEL', KEYS[1])\n"
		"  redis.call('PUBLISH', 'gw:events', 'undrain ' .. ARGV[1])\n"
		"  return 1\n"
		"end\n"
		"return 0\n"},
	/* KEYS gw:prewake:<user>, gw:recent:<user>; ARGV id, ttl. The
	 * user's last project, to one replica only (every replica gets the
	 * same login news within milliseconds; ttl covers that, not more). */
	[FLUA_PREWAKE] = {"prewake",
		"local p = redis.call('GET', KEYS[2])\n"
		"if not p then return false end\n"
		"if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
		"  return false\n"
		"end\n"
		"return p\n"},
};

#undef NOW_MS

#define ARGS_MAX 16

struct flua_req {
	LIST_ENTRY(flua_req) link;
	struct fleet *f;
	enum flua_script s;
	struct rcmd *cmd;
	rcmd_cb cb;
	void *arg;
	bool load;      /* a SCRIPT LOAD of s */
	bool resent;    /* sent again in full after NOSCRIPT */
	int n;          /* keys + args */
	int nkeys;
	char *v[ARGS_MAX];
};

const char *flua_name(enum flua_script s)
{
	return scripts[s].name;
}

static void req_free(struct flua_req *r)
{
	LIST_REMOVE(r, link);
	for (int i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r);
}

static void reply_cb(void *arg, redisReply *reply);

static bool send_req(struct flua_req *r)
{
	struct fleet *f = r->f;
	const char *argv[ARGS_MAX + 3];
	char nkeys[8];
	int argc = 0;
	if (r->load) {
		argv[argc++] = "SCRIPT";
		argv[argc++] = "LOAD";
		argv[argc++] = scripts[r->s].text;
	} else {
		bool sha = f->sha[r->s][0] && !r->resent;
		argv[argc++] = sha ? "EVALSHA" : "EVAL";
		argv[argc++] = sha ? f->sha[r->s] : scripts[r->s].text;
		snprintf(nkeys, sizeof(nkeys), "%d", r->nkeys);
		argv[argc++] = nkeys;
		for (int i = 0; i < r->n; i++)
			argv[argc++] = r->v[i];
	}
	r->cmd = rconn_command(f->p.conn, reply_cb, r, argc, argv, NULL);
	return r->cmd != NULL;
}

static void load_script(struct fleet *f, enum flua_script s)
{
	if (f->loading[s])
		return;
	struct flua_req *r = gw_xcalloc(1, sizeof(*r));
	r->f = f;
	r->s = s;
	r->load = true;
	LIST_INSERT_HEAD(&f->reqs, r, link);
	if (send_req(r))
		f->loading[s] = true;
	else
		req_free(r);
}

static void reply_cb(void *arg, redisReply *reply)
{
	struct flua_req *r = arg;
	struct fleet *f = r->f;
	r->cmd = NULL;
	if (r->load) {
		f->loading[r->s] = false;
		if (reply && reply->type == REDIS_REPLY_STRING &&
		    reply->len == 40)
			memcpy(f->sha[r->s], reply->str, 41);
		else if (reply && reply->type == REDIS_REPLY_ERROR)
			gw_log(GW_LOG_ERROR, "fleet", "script %s: %s",
			       scripts[r->s].name, reply->str);
		req_free(r);
		return;
	}
	if (reply && reply->type == REDIS_REPLY_ERROR && !r->resent &&
	    strncmp(reply->str, "NOSCRIPT", 8) == 0) {
		/* Redis forgot it: in full this time, and load it again. */
		f->sha[r->s][0] = '\0';
		r->resent = true;
		load_script(f, r->s);
		if (send_req(r))
			return;
		reply = NULL;
	}
	if (reply && reply->type == REDIS_REPLY_ERROR)
		gw_log(GW_LOG_WARN, "fleet", "script %s: %s", scripts[r->s].name,
		       reply->str);
	rcmd_cb cb = r->cb;
	void *cbarg = r->arg;
	req_free(r);
	if (cb)
		cb(cbarg, reply);
}

struct flua_req *flua_call(struct fleet *f, enum flua_script s, int nkeys,
			   const char *const *keys, int nargs,
			   const char *const *args, rcmd_cb cb, void *arg)
{
	if (!rconn_up(f->p.conn) || nkeys + nargs > ARGS_MAX)
		return NULL;
	if (!f->sha[s][0])
		load_script(f, s);
	struct flua_req *r = gw_xcalloc(1, sizeof(*r));
	r->f = f;
	r->s = s;
	r->cb = cb;
	r->arg = arg;
	r->nkeys = nkeys;
	for (int i = 0; i < nkeys; i++)
		r->v[r->n++] = gw_xstrdup(keys[i]);
	for (int i = 0; i < nargs; i++)
		r->v[r->n++] = gw_xstrdup(args[i]);
	LIST_INSERT_HEAD(&f->reqs, r, link);
	if (!send_req(r)) {
		req_free(r);
		return NULL;
	}
	return r;
}

void flua_cancel(struct flua_req *r)
{
	if (!r)
		return;
	rcmd_cancel(r->cmd); /* its reply goes nowhere now */
	if (r->load)
		r->f->loading[r->s] = false;
	req_free(r);
}

void flua_cancel_all(struct fleet *f)
{
	struct flua_req *r;
	while ((r = LIST_FIRST(&f->reqs)))
		flua_cancel(r);
}
