/* supervisor.c - workers, their control channels, signals, and the admin
 * listener for the whole process group.
 *
 * Scrape with workers > 1: the admin connection asks for a gather; every
 * running worker gets SNAP_REQ(id) and answers SNAP(id, its counters);
 * each answer is added into the scrape's snapshot; when the last one is in,
 * or after [admin] worker_timeout, the scrape is answered. A worker that
 * is stopped or wedged therefore delays a scrape by at most
 * worker_timeout, and never blocks the loop. Replies to a finished gather
 * are recognised by their id and dropped.
 *
 * Reload (SIGHUP): the configuration is built here first; with an error
 * nothing is signalled. Otherwise every running worker gets SIGHUP,
 * reloads on its own and answers RELOADED; READY=1 follows the last
 * answer (or RELOAD_WAIT_MS). A worker that dies meanwhile is not waited
 * for; one forked later starts from the new configuration.
 *
 * Fork: the child first undoes the parent's loop (event_reinit, then frees
 * every supervisor object, which closes the admin socket and the other
 * workers' channels in the child only), resets the signals and drops
 * NOTIFY_SOCKET, then becomes a worker.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin.h"
#include "admin_chan.h"
#include "config.h"
#include "notify.h"
#include "supervisor.h"
#include "core/log.h"
#include "core/procstats.h"
#include "core/stats.h"
#include "core/stopsig.h"
#include "core/compat.h"

#define SUP_MAX_WORKERS 64
#define START_FAIL_MS 2000  /* exit this soon after start: give up */
#define RESPAWN_MIN_MS 1000 /* at most one restart per worker per second */
/* How long READY=1 waits for the workers' RELOADED answers. Not a config
 * key: it cuts no reload short, it only bounds how long systemd sees the
 * service "reloading" when a worker is wedged. */
#define RELOAD_WAIT_MS 30000

struct supervisor;

struct sup_worker {
	struct supervisor *sup;
	unsigned index;
	pid_t pid;                /* 0: not running */
	uint64_t started_ms;
	struct chan *chan;        /* while running */
	struct admin_facts facts; /* last FACTS */
	bool have_facts;
	struct event *respawn;    /* delayed restart */
	bool reload_wait;         /* signalled, its RELOADED not in yet */
};

struct sup_gather {
	LIST_ENTRY(sup_gather) link;
	struct supervisor *sup;
	uint32_t id;
	struct stats_snap *into;  /* the admin's, not owned */
	bool waiting[SUP_MAX_WORKERS];
	unsigned pending;
	struct event *timer;
	admin_gathered_cb done;
	void *cookie;
};

struct sup_stats {
	uint64_t workers;      /* configured */
	uint64_t ready;        /* ready per /readyz's rules */
	uint64_t restarts;     /* crashed and restarted */
	uint64_t timeouts;     /* snapshots not in within worker_timeout */
	uint64_t bad_snaps;    /* snapshots that did not decode */
};

static void sup_refresh(void *obj);

static const struct stats_metric sup_metrics[] = {
	{"gateway_workers", "Worker processes configured.", STATS_GAUGE,
	 offsetof(struct sup_stats, workers)},
	{"gateway_workers_ready", "Worker processes ready (as /readyz).",
	 STATS_GAUGE, offsetof(struct sup_stats, ready)},
	{"gateway_worker_restarts", "Workers that died and were restarted.",
	 STATS_COUNTER, offsetof(struct sup_stats, restarts)},
	{"gateway_admin_worker_timeouts",
	 "Scrapes a worker did not answer within [admin] worker_timeout.",
	 STATS_COUNTER, offsetof(struct sup_stats, timeouts)},
	{"gateway_admin_worker_snapshot_errors",
	 "Worker snapshots that could not be decoded.", STATS_COUNTER,
	 offsetof(struct sup_stats, bad_snaps)},
};
static const struct stats_table sup_table = {
	.metrics = sup_metrics,
	.nmetrics = GW_ARRAY_LEN(sup_metrics),
	.refresh = sup_refresh,
};

struct supervisor {
	struct event_base *base;
	const struct gw_config *cfg;  /* the start's: the admin listener's */
	const struct gw_config *cur;  /* what a worker forked now gets (a
					 reference; reloads replace it) */
	const struct config_source *src;
	unsigned n;
	supervisor_child_fn child;
	void *child_arg;          /* handed to every child (not owned) */
	struct sup_worker w[SUP_MAX_WORKERS];
	struct event *sig_term, *sig_int, *sig_hup, *sig_chld;
	bool stopping;
	bool notified_ready;
	int rc;
	struct sup_stats st;       /* first: sup_refresh finds us from it */
	struct stats *stats;
	struct stats_reg *reg;
	struct procstats *proc;
	struct stats_admit *admit; /* projects with their own series */
	struct admin *admin;
	unsigned reload_pending;  /* workers with reload_wait set */
	unsigned reload_refused;  /* of this reload: answered "refused" */
	struct event *reload_timer; /* RELOAD_WAIT_MS */
	LIST_HEAD(, sup_gather) gathers;
	uint32_t next_id;
	struct gw_ratelimit rl;
};

static void spawn(struct supervisor *s, struct sup_worker *w);
static void reload_settle(struct sup_worker *w, bool ok);

/* ---- readiness ------------------------------------------------------------------ */

static const char *worker_not_ready(const struct supervisor *s,
				    const struct sup_worker *w)
{
	if (!w->pid)
		return "a worker is restarting";
	if (!w->have_facts)
		return "a worker is starting";
	return admin_facts_not_ready(&w->facts, s->cfg->readyz_redis);
}

static const char *sup_not_ready(void *arg)
{
	struct supervisor *s = arg;
	if (s->stopping)
		return "draining";
	for (unsigned i = 0; i < s->n; i++) {
		const char *why = worker_not_ready(s, &s->w[i]);
		if (why)
			return why;
	}
	return NULL;
}

static void sup_refresh(void *obj)
{
	struct supervisor *s =
		gw_container_of((struct sup_stats *)obj, struct supervisor, st);
	s->st.workers = s->n;
	s->st.ready = 0;
	for (unsigned i = 0; i < s->n; i++)
		s->st.ready += !s->stopping && !worker_not_ready(s, &s->w[i]);
}

/* READY=1 once every worker has said it listens; STATUS= afterwards. */
static void check_started(struct supervisor *s)
{
	unsigned listening = 0;
	for (unsigned i = 0; i < s->n; i++)
		listening += s->w[i].pid && s->w[i].have_facts &&
			     s->w[i].facts.listening;
	if (s->stopping)
		return;
	if (!s->notified_ready && listening == s->n) {
		s->notified_ready = true;
		gw_log(GW_LOG_INFO, "main", "all %u workers listening", s->n);
		notify_ready("%u workers listening%s%s", s->n,
			     s->admin ? "; admin on " : "",
			     s->admin ? admin_addr_text(s->admin) : "");
	} else if (s->notified_ready) {
		notify_status("%u of %u workers listening", listening, s->n);
	}
}

/* ---- gathering counters ---------------------------------------------------------- */

static void gather_free(struct sup_gather *g)
{
	LIST_REMOVE(g, link);
	event_free(g->timer);
	free(g);
}

static void gather_finish(struct sup_gather *g)
{
	admin_gathered_cb done = g->done;
	void *cookie = g->cookie;
	gather_free(g);
	done(cookie);
}

static void gather_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sup_gather *g = arg;
	struct supervisor *s = g->sup;
	for (unsigned i = 0; i < s->n; i++) {
		if (!g->waiting[i])
			continue;
		s->st.timeouts++;
		unsigned dropped = 0;
		if (gw_ratelimit_allow(&s->rl, gw_now_ms(), &dropped))
			gw_log(GW_LOG_WARN, "admin",
			       "worker %u (pid %d) did not send its counters "
			       "within %u ms; scrape answered without them (%u "
			       "similar lines suppressed)",
			       i, (int)s->w[i].pid, s->cfg->admin_worker_timeout_ms,
			       dropped);
	}
	gather_finish(g);
}

/* Worker i will not answer (gone, or answered): one less to wait for. */
static void gather_settle(struct sup_gather *g, unsigned i)
{
	if (!g->waiting[i])
		return;
	g->waiting[i] = false;
	if (--g->pending == 0)
		gather_finish(g);
}

static void *sup_gather(void *arg, struct stats_snap *into,
			admin_gathered_cb done, void *cookie)
{
	struct supervisor *s = arg;
	struct sup_gather *g = gw_xcalloc(1, sizeof(*g));
	g->sup = s;
	g->id = ++s->next_id;
	g->into = into;
	g->done = done;
	g->cookie = cookie;
	g->timer = evtimer_new(s->base, gather_timeout_cb, g);
	if (!g->timer)
		gw_oom(sizeof(void *));
	LIST_INSERT_HEAD(&s->gathers, g, link);
	for (unsigned i = 0; i < s->n; i++) {
		if (!s->w[i].chan)
			continue;
		uint32_t id = g->id;
		chan_send(s->w[i].chan, CHAN_SNAP_REQ, &id, sizeof(id), NULL);
		g->waiting[i] = true;
		g->pending++;
	}
	if (g->pending == 0) {
		gather_finish(g);
		return NULL;
	}
	unsigned ms = s->cfg->admin_worker_timeout_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(g->timer, &tv);
	return g;
}

static void sup_cancel(void *arg, void *handle)
{
	gather_free(handle);
}

/* ---- workers ------------------------------------------------------------------- */

static void worker_msg(void *arg, enum chan_type type,
		       const unsigned char *p, size_t len)
{
	struct sup_worker *w = arg;
	struct supervisor *s = w->sup;
	if (type == CHAN_FACTS) {
		struct admin_facts f;
		if (chan_facts_decode(p, len, &f) != 0)
			return;
		w->facts = f;
		w->have_facts = true;
		check_started(s);
		return;
	}
	if (type == CHAN_RELOADED) {
		if (len == 1)
			reload_settle(w, p[0] == 1);
		return;
	}
	if (type != CHAN_SNAP || len < 4)
		return;
	uint32_t id;
	memcpy(&id, p, 4);
	struct sup_gather *g;
	LIST_FOREACH(g, &s->gathers, link)
		if (g->id == id)
			break;
	if (!g || !g->waiting[w->index])
		return; /* late: that scrape was answered already */
	const char *err = NULL;
	if (stats_snap_merge_encoded(g->into, (const char *)p + 4, len - 4,
				     &err) != 0) {
		s->st.bad_snaps++;
		gw_log(GW_LOG_ERROR, "admin", "worker %u: bad snapshot: %s",
		       w->index, err);
	}
	gather_settle(g, w->index);
}

/* ---- reload --------------------------------------------------------------------- */

/* Every signalled worker answered (or the wait ended): READY=1. */
static void reload_done(struct supervisor *s, unsigned silent)
{
	event_del(s->reload_timer);
	for (unsigned i = 0; i < s->n; i++)
		s->w[i].reload_wait = false;
	s->reload_pending = 0;
	if (silent)
		gw_log(GW_LOG_WARN, "main", "reload: %u worker(s) did not answer "
		       "within %ums", silent, RELOAD_WAIT_MS);
	notify_ready("%u workers; %s", s->n,
		     s->reload_refused ? "reload refused by a worker (see log)"
		     : silent	       ? "reload not confirmed by every worker"
				       : "reloaded");
}

static void reload_settle(struct sup_worker *w, bool ok)
{
	struct supervisor *s = w->sup;
	if (!w->reload_wait)
		return;
	w->reload_wait = false;
	s->reload_refused += !ok;
	if (--s->reload_pending == 0)
		reload_done(s, 0);
}

static void reload_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor *s = arg;
	reload_done(s, s->reload_pending);
}

/* SIGHUP: checked here first, so that a configuration with errors reaches
 * no worker; each worker then builds and applies it itself
 * (worker_reload) and answers RELOADED; READY=1 follows the last answer.
 * A worker forked later starts from it. */
static void sup_reload(struct supervisor *s)
{
	if (s->stopping) {
		gw_log(GW_LOG_WARN, "main", "SIGHUP while stopping: ignored");
		return;
	}
	notify_reloading();
	char err[1024] = "";
	struct gw_config *next = s->src->load(s->src, NULL, err, sizeof(err));
	if (!next) {
		gw_log(GW_LOG_ERROR, "main", "reload: %s; keeping the running "
		       "configuration", err);
		notify_ready("reload failed; running the previous "
			     "configuration");
		return;
	}
	char changed[512];
	if (config_keep_restart_only(next, s->cur, changed, sizeof(changed)))
		gw_log(GW_LOG_WARN, "main", "reload: %s changed: restart to "
		       "apply (running values kept)", changed);
	config_unref(s->cur);
	s->cur = next;
	gw_log_threshold = next->log_level;
	/* A reload during a reload: the wait starts again for everyone. */
	s->reload_pending = 0;
	s->reload_refused = 0;
	for (unsigned i = 0; i < s->n; i++) {
		struct sup_worker *w = &s->w[i];
		w->reload_wait = w->pid && w->chan && kill(w->pid, SIGHUP) == 0;
		s->reload_pending += w->reload_wait;
	}
	gw_log(GW_LOG_INFO, "main", "SIGHUP: forwarded to %u workers",
	       s->reload_pending);
	if (s->reload_pending == 0) {
		reload_done(s, 0);
		return;
	}
	struct timeval tv = {RELOAD_WAIT_MS / 1000, 0};
	event_add(s->reload_timer, &tv);
}

static void worker_lost(struct sup_worker *w)
{
	struct supervisor *s = w->sup;
	w->have_facts = false;
	reload_settle(w, true); /* gone: nothing to wait for */
	struct sup_gather *g, *next;
	for (g = LIST_FIRST(&s->gathers); g; g = next) {
		next = LIST_NEXT(g, link);
		gather_settle(g, w->index); /* may free g */
	}
}

static void worker_closed(void *arg)
{
	struct sup_worker *w = arg;
	worker_lost(w);
	if (w->pid && !w->sup->stopping) {
		/* Alive but deaf: nobody could collect its counters or see
		 * it ready. Stop it; the SIGCHLD path restarts it. */
		gw_log(GW_LOG_ERROR, "main",
		       "worker %u (pid %d) closed its control channel; "
		       "stopping it", w->index, (int)w->pid);
		kill(w->pid, SIGTERM);
	}
}

static void respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sup_worker *w = arg;
	if (!w->sup->stopping)
		spawn(w->sup, w);
}

static void all_exited_check(struct supervisor *s)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->w[i].pid)
			return;
	event_base_loopexit(s->base, NULL);
}

static void begin_stop(struct supervisor *s, int sig)
{
	if (s->stopping)
		return;
	s->stopping = true;
	notify_stopping("stopping: draining %u workers", s->n);
	for (unsigned i = 0; i < s->n; i++) {
		event_del(s->w[i].respawn);
		if (s->w[i].pid)
			kill(s->w[i].pid, sig);
	}
	all_exited_check(s);
}

static void reap(struct supervisor *s, pid_t pid, int status)
{
	struct sup_worker *w = NULL;
	for (unsigned i = 0; i < s->n; i++)
		if (s->w[i].pid == pid)
			w = &s->w[i];
	if (!w)
		return;
	w->pid = 0;
	worker_lost(w);
	chan_destroy(w->chan);
	w->chan = NULL;
	if (s->stopping) {
		all_exited_check(s);
		return;
	}
	uint64_t lived = gw_now_ms() - w->started_ms;
	if (WIFEXITED(status) && lived < START_FAIL_MS) {
		/* A worker that fails at start (bind error) will fail
		 * again: give up as a whole. */
		gw_log(GW_LOG_ERROR, "main",
		       "worker %d failed at start (status %d); stopping",
		       (int)pid, WEXITSTATUS(status));
		s->rc = 1;
		begin_stop(s, SIGTERM);
		return;
	}
	gw_log(GW_LOG_ERROR, "main", "worker %d %s %d; starting a new one",
	       (int)pid, WIFSIGNALED(status) ? "killed by signal" : "exited with",
	       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	s->st.restarts++;
	check_started(s);
	if (lived < RESPAWN_MIN_MS) {
		struct timeval tv = {RESPAWN_MIN_MS / 1000, 0};
		event_add(w->respawn, &tv);
	} else {
		spawn(s, w);
	}
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct supervisor *s = arg;
	if (sig == SIGCHLD) {
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			reap(s, pid, status);
		return;
	}
	if (sig == SIGHUP) {
		sup_reload(s);
		return;
	}
	gw_log(GW_LOG_INFO, "main", "%s: stopping %u workers",
	       sig == SIGTERM ? "SIGTERM" : "SIGINT", s->n);
	begin_stop(s, (int)sig);
}

/* ---- life cycle ------------------------------------------------------------------ */

static void sup_free(struct supervisor *s)
{
	admin_destroy(s->admin); /* cancels gathers of open scrapes */
	while (!LIST_EMPTY(&s->gathers))
		gather_free(LIST_FIRST(&s->gathers));
	for (unsigned i = 0; i < s->n; i++) {
		chan_destroy(s->w[i].chan);
		if (s->w[i].respawn)
			event_free(s->w[i].respawn);
	}
	struct event *sigs[] = {s->sig_term, s->sig_int, s->sig_hup,
				s->sig_chld, s->reload_timer};
	/* A forked child sets its own actions after this. */
	stopsig_free_events(sigs, GW_ARRAY_LEN(sigs));
	stats_unregister(s->reg);
	procstats_destroy(s->proc);
	stats_destroy(s->stats);
	stats_admit_destroy(s->admit);
	if (s->base)
		event_base_free(s->base);
	config_unref(s->cur);
	free(s);
}

static void spawn(struct supervisor *s, struct sup_worker *w)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		gw_log_errno(GW_LOG_ERROR, "main", "socketpair");
		struct timeval tv = {RESPAWN_MIN_MS / 1000, 0};
		event_add(w->respawn, &tv);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		/* Ours from here: sup_free drops the supervisor's. */
		const struct gw_config *cfg = config_ref(s->cur);
		supervisor_child_fn child = s->child;
		void *child_arg = s->child_arg;
		unsigned index = w->index;
		/* The parent's loop is shared with us until reinit: after
		 * it, freeing touches only our copies. */
		if (event_reinit(s->base) != 0)
			_exit(1);
		sup_free(s);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		/* Reload is the supervisor's to forward; a worker that does
		 * not handle SIGHUP must not die of it. */
		signal(SIGHUP, SIG_IGN);
		/* Our own process group: a terminal's Ctrl-C (SIGINT to the
		 * foreground group) reaches only the supervisor, which forwards
		 * it once. Otherwise each worker would get it twice, and a
		 * second signal means "stop now", not "drain". */
		setpgid(0, 0);
		unsetenv("NOTIFY_SOCKET");
		_exit(child(cfg, index, sv[1], child_arg));
	}
	close(sv[1]);
	if (pid < 0) {
		gw_log_errno(GW_LOG_ERROR, "main", "fork");
		close(sv[0]);
		struct timeval tv = {RESPAWN_MIN_MS / 1000, 0};
		event_add(w->respawn, &tv);
		return;
	}
	w->pid = pid;
	w->started_ms = gw_now_ms();
	w->have_facts = false;
	w->chan = chan_create(s->base, sv[0], worker_msg, worker_closed, w);
}

int supervisor_run(const struct gw_config *cfg, unsigned n,
		   const struct config_source *src, supervisor_child_fn child,
		   void *child_arg)
{
	if (n > SUP_MAX_WORKERS)
		n = SUP_MAX_WORKERS;
	struct supervisor *s = gw_xcalloc(1, sizeof(*s));
	s->cfg = cfg;
	s->cur = config_ref(cfg);
	s->src = src;
	s->n = n;
	s->child = child;
	s->child_arg = child_arg;
	s->rl.interval_ms = 10000;
	s->rl.burst = 5;
	LIST_INIT(&s->gathers);
	s->base = event_base_new();
	if (!s->base) {
		gw_log(GW_LOG_ERROR, "main", "cannot create the event loop");
		free(s);
		return 1;
	}
	s->sig_term = evsignal_new(s->base, SIGTERM, signal_cb, s);
	s->sig_int = evsignal_new(s->base, SIGINT, signal_cb, s);
	s->sig_hup = evsignal_new(s->base, SIGHUP, signal_cb, s);
	s->sig_chld = evsignal_new(s->base, SIGCHLD, signal_cb, s);
	for (unsigned i = 0; i < n; i++) {
		s->w[i].sup = s;
		s->w[i].index = i;
		s->w[i].respawn = evtimer_new(s->base, respawn_cb, &s->w[i]);
		if (!s->w[i].respawn)
			gw_oom(sizeof(void *));
	}
	s->reload_timer = evtimer_new(s->base, reload_timeout_cb, s);
	if (!s->sig_term || !s->sig_int || !s->sig_hup || !s->sig_chld ||
	    !s->reload_timer) {
		gw_log(GW_LOG_ERROR, "main", "cannot set up signal handling");
		sup_free(s);
		return 1;
	}
	event_add(s->sig_term, NULL);
	event_add(s->sig_int, NULL);
	event_add(s->sig_hup, NULL);
	event_add(s->sig_chld, NULL);
	s->stats = stats_create(cfg->metrics_max_projects);
	s->admit = stats_admit_create(cfg->metrics_max_projects);
	s->proc = procstats_create(s->stats, "main", true);
	s->reg = stats_register(s->stats, &sup_table, &s->st, NULL);
	if (cfg->admin_listen) {
		char err[512] = "";
		struct admin_params ap = {
			.base = s->base,
			.cfg = cfg,
			.stats = s->stats,
			.src = {.gather = sup_gather, .cancel = sup_cancel,
				.not_ready = sup_not_ready, .admit = s->admit,
				.arg = s},
		};
		s->admin = admin_create(&ap, err, sizeof(err));
		if (!s->admin) {
			gw_log(GW_LOG_ERROR, "main", "%s", err);
			sup_free(s);
			return 1;
		}
		gw_log(GW_LOG_INFO, "main", "admin listener on %s",
		       admin_addr_text(s->admin));
	}
	for (unsigned i = 0; i < n; i++)
		spawn(s, &s->w[i]);
	event_base_dispatch(s->base);
	int rc = s->rc;
	sup_free(s);
	return rc;
}
