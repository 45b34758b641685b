/* worker_admin.c - readiness facts, the worker's gauges, admin listener or
 * supervisor link, sd_notify. */
#include <stdio.h>
#include <stdlib.h>

#include "admin.h"
#include "admin_chan.h"
#include "config.h"
#include "notify.h"
#include "proxy.h"
#include "worker_admin.h"
#include "core/log.h"
#include "core/procstats.h"
#include "core/stats.h"
#include "core/compat.h"

struct worker_gauges {
	uint64_t open;     /* client connections open now */
	uint64_t draining; /* 1 after SIGTERM/SIGINT */
};

static void gauges_refresh(void *obj);

static const struct stats_metric worker_metrics[] = {
	{"gateway_connections_open", "Client connections open now.",
	 STATS_GAUGE, offsetof(struct worker_gauges, open)},
	{"gateway_draining", "1 while stopping: no longer accepting.",
	 STATS_GAUGE, offsetof(struct worker_gauges, draining)},
};
static const struct stats_table worker_table = {
	.metrics = worker_metrics,
	.nmetrics = GW_ARRAY_LEN(worker_metrics),
	.refresh = gauges_refresh,
};

struct worker_admin {
	struct worker_gauges g;   /* first: gauges_refresh's object */
	struct worker_admin_params p;
	bool whole;               /* no supervisor: admin + notify are ours */
	struct stats_reg *reg;
	struct procstats *proc;
	struct admin *admin;      /* whole gateway with [admin] listen */
	struct admin_link *link;  /* under a supervisor */
	struct admin_facts facts;
};

static void gauges_refresh(void *obj)
{
	struct worker_admin *wa =
		gw_container_of((struct worker_gauges *)obj, struct worker_admin, g);
	struct proxy_stats ps;
	proxy_get_stats(wa->p.proxy, &ps);
	wa->g.open = ps.open;
	wa->g.draining = wa->facts.draining;
}

/* Tell the supervisor (if any); admin_link sends only changes. */
static void facts_changed(struct worker_admin *wa)
{
	if (wa->link)
		admin_link_facts(wa->link, &wa->facts);
}

static const char *whole_not_ready(void *arg)
{
	struct worker_admin *wa = arg;
	return admin_facts_not_ready(&wa->facts, wa->p.cfg->readyz_redis);
}

struct worker_admin *worker_admin_create(const struct worker_admin_params *p)
{
	struct worker_admin *wa = gw_xcalloc(1, sizeof(*wa));
	wa->p = *p;
	wa->facts.redis = p->cfg->redis_addr != NULL;
	wa->reg = stats_register(p->stats, &worker_table, &wa->g, NULL);
	return wa;
}

int worker_admin_set_role(struct worker_admin *wa, unsigned index, int ctl_fd,
			  char *err, size_t errlen)
{
	char label[16];
	snprintf(label, sizeof(label), "%u", index);
	wa->whole = ctl_fd < 0;
	wa->proc = procstats_create(wa->p.stats, label, wa->whole);
	if (!wa->whole) {
		wa->link = admin_link_create(wa->p.base, ctl_fd, wa->p.stats,
					     wa->p.on_supervisor_lost, wa->p.arg);
		return 0;
	}
	if (!wa->p.cfg->admin_listen)
		return 0;
	struct admin_params ap = {
		.base = wa->p.base,
		.cfg = wa->p.cfg,
		.stats = wa->p.stats,
		.src = {.not_ready = whole_not_ready, .arg = wa},
	};
	wa->admin = admin_create(&ap, err, errlen);
	return wa->admin ? 0 : -1;
}

void worker_admin_listening(struct worker_admin *wa, size_t n)
{
	wa->facts.listening = n > 0;
	facts_changed(wa);
	if (wa->admin)
		gw_log(GW_LOG_INFO, "worker", "admin listener on %s",
		       admin_addr_text(wa->admin));
	if (wa->whole)
		notify_ready("listening on %zu address(es)%s%s", n,
			     wa->admin ? "; admin on " : "",
			     wa->admin ? admin_addr_text(wa->admin) : "");
}

void worker_admin_redis_sync(struct worker_admin *wa, bool in_sync)
{
	wa->facts.redis_in_sync = in_sync;
	wa->facts.redis_loaded |= in_sync;
	facts_changed(wa);
}

void worker_admin_draining(struct worker_admin *wa, const char *why)
{
	wa->facts.draining = true;
	wa->facts.listening = false;
	facts_changed(wa);
	if (wa->whole)
		notify_stopping("%s: draining", why);
}

/* Stopping: systemd was told STOPPING=1; a reload (refused) must not
 * say RELOADING or READY after that. */
void worker_admin_reload_begin(struct worker_admin *wa)
{
	if (wa->whole && !wa->facts.draining)
		notify_reloading();
}

void worker_admin_reload_end(struct worker_admin *wa, bool ok)
{
	if (wa->link)
		admin_link_reloaded(wa->link, ok);
	if (wa->whole && !wa->facts.draining)
		notify_ready("%s", ok ? "reloaded" : "reload failed; running "
						  "the previous settings");
}

void worker_admin_destroy(struct worker_admin *wa)
{
	if (!wa)
		return;
	admin_destroy(wa->admin);
	admin_link_destroy(wa->link);
	procstats_destroy(wa->proc);
	stats_unregister(wa->reg);
	free(wa);
}
