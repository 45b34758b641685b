/* fleet_int.h - private to gateway/fleet*.c: the fleet structure, the
 * script table and the parts' entry points. Never included elsewhere.
 *
 *   fleet.c        identity, heartbeat, the reaper lease, activity, the
 *                  events channel, counters, hooks for the activator
 *   fleet_wake.c   wake tickets: lock, renewal, takeover, admission,
 *                  ready news, pre-wake
 *   fleet_drain.c  the leader's scale-downs and every replica's side of
 *                  the drain handshake
 *   fleet_lua.c    the Lua scripts and EVALSHA/EVAL on the command
 *                  connection
 *
 * Always true: every flua request outstanding is on f->reqs (destroy
 * cancels them); a wake ticket exists from the activator's wake_begin()
 * to its wake_end(), plus at most the time one script reply takes; a
 * drain exists from its drain_begin to its end (done, cancelled, aborted,
 * or a cool-down after an abort).
 */
#ifndef GW_FLEET_INT_H
#define GW_FLEET_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "fleet.h"
#include "redis.h"

struct event;
struct stats_reg;
struct fwake;
struct fdrain;

/* Every script; texts and key/argument layouts in fleet_lua.c. */
enum flua_script {
	FLUA_HEARTBEAT = 0,
	FLUA_LEAVE,
	FLUA_LEASE,
	FLUA_LEASE_DROP,
	FLUA_ACTIVITY,
	FLUA_WAKE_BEGIN,
	FLUA_WAKE_RENEW,
	FLUA_WAKE_DONE,
	FLUA_CANDIDATES,
	FLUA_DRAIN_BEGIN,
	FLUA_DRAIN_ACK,
	FLUA_DRAIN_ABORT,
	FLUA_DRAIN_COMMIT,
	FLUA_DRAIN_RENEW,
	FLUA_DRAIN_DONE,
	FLUA_DRAIN_CANCEL,
	FLUA_PREWAKE,
	FLUA_COUNT
};

struct flua_req;
LIST_HEAD(flua_list, flua_req);

struct fleet_stats {
	uint64_t wakes_started;   /* wake locks taken: this process called */
	uint64_t wakes_joined;    /* another process was waking it */
	uint64_t wakes_queued;    /* had to wait for a wake slot */
	uint64_t wake_takeovers;  /* took a lock over from a silent holder */
	uint64_t ready_news;      /* ready news that released holds here */
	uint64_t drains_started;  /* as leader */
	uint64_t drains_aborted;  /* as leader: ended without a scale-down */
	uint64_t scale_downs;     /* as leader: scaled to zero */
	uint64_t lease_held;      /* gauge: 1 while this process leads */
	uint64_t queue_length;    /* gauge: gw:wakeq as last seen */
	uint64_t queued_here;     /* gauge: projects waiting for a slot here */
};

struct fleet {
	struct fleet_params p;
	struct act_fleet hooks;
	struct activator *act;
	struct fleet_stats st;
	struct stats_reg *reg;
	char id[160];              /* <hostname>:<pid>:<random 32 bits> */
	bool in_sync;              /* routes authoritative, events arriving */
	bool shutting_down;
	struct flua_list reqs;     /* scripts in flight */
	char sha[FLUA_COUNT][41];  /* "" until SCRIPT LOAD answered */
	bool loading[FLUA_COUNT];
	/* heartbeat and lease (fleet.c) */
	struct event *beat_timer;
	struct event *lease_timer;
	struct flua_req *lease_req;
	bool lease_held;
	uint64_t lease_until_ms;   /* monotonic: held for sure until then */
	/* leader (fleet_drain.c) */
	struct event *reap_timer;
	struct flua_req *cand_req;
	unsigned cand_off;         /* page of candidates looked at next */
	TAILQ_HEAD(, fdrain) drains;
	unsigned ndrains;
	uint64_t token_seq;
	/* wake tickets by project (fleet_wake.c) */
	struct fwake **wbuckets;
	size_t nwbuckets, nwakes;
	unsigned prewake_ttl_ms;
};

/* fleet_lua.c */
/* Run script s with keys then args (binary-safe strings, NUL-terminated).
 * cb runs exactly once with the reply (NULL: no connection, timeout)
 * unless flua_cancel() comes first; NULL cb: fire and forget. A script
 * Redis does not know (restart, SCRIPT FLUSH) is sent again in full, so
 * a NOSCRIPT error never reaches cb. Returns NULL when the connection is
 * down (cb is then not called). */
struct flua_req *flua_call(struct fleet *f, enum flua_script s, int nkeys,
			   const char *const *keys, int nargs,
			   const char *const *args, rcmd_cb cb, void *arg);
void flua_cancel(struct flua_req *r);
void flua_cancel_all(struct fleet *f);
const char *flua_name(enum flua_script s);

/* fleet.c */
void fleet_key(char *buf, size_t len, const char *prefix, const char *name);
void fleet_arm(struct event *ev, unsigned ms);
/* The project's target from the route table, into an activator
 * reference (NULL: no Kubernetes route names it; with known_ok, the
 * project this activator knows from before, if any). Release it after. */
struct act_project *fleet_project(struct fleet *f, const char *project,
				  bool known_ok);
/* Reply helpers: integer value of element i of an array reply. */
long long fleet_reply_int(const struct redisReply *r, size_t i, long long def);
const char *fleet_reply_str(const struct redisReply *r, size_t i);
bool fleet_leading(const struct fleet *f);

/* fleet_wake.c */
/* What a wake_begin script reply says (fleet_lua.c has the layout): the
 * kind, and when to ask again. Pure, so that the fuzz target in
 * tests/fuzz/ can drive it with hostile replies. */
enum fleet_begin_kind {
	FLEET_BEGIN_NONE = 0,   /* no usable answer: wake from here, unsure */
	FLEET_BEGIN_OURS,       /* we hold the wake lock */
	FLEET_BEGIN_WAIT,       /* another process holds it */
	FLEET_BEGIN_QUEUED,     /* no wake slot free */
	FLEET_BEGIN_COLD,       /* a committed scale-down comes first */
	FLEET_BEGIN_UNDRAINED,  /* anything else: it runs, nobody calls */
};
struct fleet_begin {
	enum fleet_begin_kind kind;
	long long pos, len;  /* QUEUED: place in the queue (0-based), length */
	long long again_ms;  /* when to ask again (OURS: renew the lock) */
};
void fleet_begin_parse(const struct redisReply *r, unsigned lock_ttl_ms,
		       struct fleet_begin *out);
/* "ready <p> <addr>,<addr>,..." news (the text after "ready "): the
 * project into project (NUL-terminated) and up to max addresses that
 * parse into addrs. Returns how many; 0 (project unspecified) for news
 * without a project or without one usable address. */
size_t fleet_ready_parse(const char *rest, char project[256],
			 struct gw_addr *addrs, size_t max);
void fleet_wake_init(struct fleet *f);
void fleet_wake_finish(struct fleet *f);
void fleet_wake_begin(void *arg, const char *project);
void fleet_wake_end(void *arg, const char *project, bool ready,
		    const struct gw_addr *addrs, size_t n, unsigned idle_ms);
void fleet_wake_event(struct fleet *f, const char *kind, const char *rest);
void fleet_prewake_login(struct fleet *f, const char *user);
unsigned fleet_wake_queued_here(const struct fleet *f);

/* fleet_drain.c */
void fleet_drain_init(struct fleet *f);
void fleet_drain_finish(struct fleet *f);
void fleet_drain_stopped(void *arg, const char *project, bool ok);
void fleet_drain_event(struct fleet *f, const char *kind, const char *rest);
void fleet_drain_tick(struct fleet *f);

#endif
