/* activator.c - per-project wake/hold/idle state machine. */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "activator.h"
#include "exec.h"
#include "kube.h"
#include "core/log.h"
#include "core/compat.h"

#define NAME_MAX_ 64
#define REAP_MS 1000

enum pstate { P_COLD, P_WAKING, P_WARM, P_DRAINING };
static const char *const pstate_name[] = {"cold", "waking", "warm",
					  "draining"};

struct act_hold {
	TAILQ_ENTRY(act_hold) link;
	struct act_project *p;
	act_cb cb;
	void *arg;
	uint64_t since_ms;
	struct event *timer; /* hold_timeout */
};
TAILQ_HEAD(hold_list, act_hold);

struct act_project {
	LIST_ENTRY(act_project) link;
	struct activator *a;
	char name[NAME_MAX_];
	char *command;
	char *ns, *deployment, *service; /* Kubernetes target */
	bool fixed_addr;          /* kube: addr is the Service's, not a pod */
	struct kube_watch *watch; /* while waking and warm */
	struct gw_addr *eps;      /* kube: ready pod endpoints */
	size_t neps, rr;
	struct gw_addr addr;
	unsigned idle_ms;
	enum pstate state;
	struct hold_list holds;
	unsigned nholds;
	unsigned active;          /* acquired and not done */
	uint64_t last_active_ms;
	uint64_t wake_start_ms;
	pid_t pid;                /* exec: running process group, or 0 */
	evutil_socket_t probe_fd; /* readiness probe in flight, or -1 */
	struct event *probe_ev;   /* write-ready / retry timer for the probe */
	struct event *kill_timer; /* SIGKILL after stop_grace */
	unsigned probes;
	bool releasing;           /* release_some() is on the stack */
	uint64_t last_touch_ms;   /* fleet: activity last shared */
	bool stop_asked;          /* fleet: may_stop in flight */
};

struct activator {
	struct act_params p;
	LIST_HEAD(, act_project) projects;
	unsigned nholds;
	struct event *reaper;
	struct event *sigchld;
};

static void touch(struct act_project *p);
static bool fleet_managed(const struct act_project *p);

static void set_state(struct act_project *p, enum pstate s)
{
	gw_log(GW_LOG_DEBUG, "activator", "%s: %s -> %s", p->name,
	       pstate_name[p->state], pstate_name[s]);
	p->state = s;
}

/* ---- holds --------------------------------------------------------------- */

static void hold_free(struct act_hold *h)
{
	struct act_project *p = h->p;
	TAILQ_REMOVE(&p->holds, h, link);
	p->nholds--;
	p->a->nholds--;
	event_free(h->timer);
	free(h);
}

/* End one hold: ok hands out the address and counts the request. */
static void hold_end(struct act_hold *h, bool ok, const char *why)
{
	struct act_project *p = h->p;
	act_cb cb = h->cb;
	void *arg = h->arg;
	unsigned waited = (unsigned)(gw_now_ms() - h->since_ms);
	hold_free(h);
	const struct gw_addr *to = &p->addr;
	if (ok) {
		p->active++;
		p->last_active_ms = gw_now_ms();
		touch(p);
		/* Spread the release over every ready pod. */
		if (p->neps && !p->fixed_addr)
			to = &p->eps[p->rr++ % p->neps];
	}
	cb(arg, ok, ok ? to : NULL, waited, why);
}

static void fail_holds(struct act_project *p, const char *why)
{
	struct act_hold *h;
	while ((h = TAILQ_FIRST(&p->holds)))
		hold_end(h, false, why);
}

static void hold_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct act_hold *h = arg;
	gw_log(GW_LOG_WARN, "activator", "%s: request held %ums, app not ready",
	       h->p->name, (unsigned)(gw_now_ms() - h->since_ms));
	hold_end(h, false, "hold timeout");
}

/* ---- readiness probe ------------------------------------------------------ */

static void probe_schedule(struct act_project *p, unsigned ms);

static void probe_close(struct act_project *p)
{
	if (p->probe_fd >= 0) {
		close(p->probe_fd);
		p->probe_fd = -1;
	}
	if (p->probe_ev) {
		event_free(p->probe_ev);
		p->probe_ev = NULL;
	}
}

/* Hand held requests to the app, at most release_concurrency in flight:
 * a burst of thousands would only queue inside the app (and cost memory
 * here); the rest follow as earlier ones finish (activator_done). */
static void release_some(struct act_project *p)
{
	if (p->releasing)
		return; /* the outer loop goes on */
	p->releasing = true;
	struct act_hold *h;
	while (p->state == P_WARM && p->active < p->a->p.release_concurrency &&
	       (h = TAILQ_FIRST(&p->holds)))
		hold_end(h, true, NULL);
	p->releasing = false;
}

static void became_ready(struct act_project *p)
{
	probe_close(p);
	set_state(p, P_WARM);
	uint64_t took = gw_now_ms() - p->wake_start_ms;
	gw_log(GW_LOG_INFO, "activator",
	       "%s: ready after %llums (%u probe(s)); releasing %u held "
	       "request(s)",
	       p->name, (unsigned long long)took, p->probes, p->nholds);
	p->last_active_ms = gw_now_ms();
	release_some(p);
}

static void probe_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct act_project *p = arg;
	if (p->state != P_WAKING) {
		probe_close(p);
		return;
	}
	if (p->probe_fd < 0) { /* the retry timer fired */
		probe_close(p);
		probe_schedule(p, 0);
		return;
	}
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	if ((what & EV_WRITE) &&
	    getsockopt(p->probe_fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
	    soerr == 0) {
		became_ready(p);
		return;
	}
	probe_close(p);
	probe_schedule(p, p->a->p.probe_interval_ms);
}

/* Try to connect to the app now (ms == 0) or after ms. */
static void probe_schedule(struct act_project *p, unsigned ms)
{
	struct activator *a = p->a;
	if (ms) {
		p->probe_ev = evtimer_new(a->p.base, probe_event_cb, p);
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		event_add(p->probe_ev, &tv);
		return;
	}
	if (p->deployment && a->p.kube && !p->fixed_addr) {
		if (p->neps == 0)
			return; /* endpoints_cb starts probing when one comes */
		p->addr = p->eps[0];
	}
	p->probes++;
	p->probe_fd = socket(p->addr.ss.ss_family,
			     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->probe_fd < 0) {
		probe_schedule(p, a->p.probe_interval_ms);
		return;
	}
	if (connect(p->probe_fd, (const struct sockaddr *)&p->addr.ss,
		    p->addr.len) == 0) {
		became_ready(p);
		return;
	}
	if (errno != EINPROGRESS) {
		close(p->probe_fd);
		p->probe_fd = -1;
		probe_schedule(p, a->p.probe_interval_ms);
		return;
	}
	p->probe_ev = event_new(a->p.base, p->probe_fd, EV_WRITE,
				probe_event_cb, p);
	struct timeval tv = {0, 500 * 1000}; /* a stuck SYN is a failure */
	event_add(p->probe_ev, &tv);
}

/* ---- wake and stop ---------------------------------------------------------- */

static void kube_wake(struct act_project *p);

static void wake(struct act_project *p)
{
	set_state(p, P_WAKING);
	p->wake_start_ms = gw_now_ms();
	p->probes = 0;
	if (p->command && p->pid == 0) {
		const char *err = NULL;
		p->pid = exec_start(p->command, &p->addr, &err);
		if (p->pid < 0) {
			p->pid = 0;
			gw_log(GW_LOG_ERROR, "activator", "%s: cannot start: %s",
			       p->name, err);
			set_state(p, P_COLD);
			fail_holds(p, "start failed");
			return;
		}
		gw_log(GW_LOG_INFO, "activator", "%s: waking (pid %d)", p->name,
		       (int)p->pid);
	}
	if (p->deployment && p->a->p.kube) {
		kube_wake(p);
		return;
	}
	probe_schedule(p, 0);
}

static void kill_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct act_project *p = arg;
	if (p->pid) {
		gw_log(GW_LOG_WARN, "activator",
		       "%s: still running %ums after SIGTERM; SIGKILL",
		       p->name, p->a->p.stop_grace_ms);
		exec_signal(p->pid, SIGKILL);
	}
}

static void scaled_down(void *arg, bool ok, int status, const char *msg)
{
	struct act_project *p = arg;
	if (ok)
		gw_log(GW_LOG_INFO, "activator", "%s: scaled to zero", p->name);
}

static void stop(struct act_project *p)
{
	probe_close(p);
	if (p->deployment && p->a->p.kube) {
		/* The Deployment controller does the draining; a request
		 * arriving now simply scales it up again. */
		kube_watch_stop(p->watch);
		p->watch = NULL;
		p->neps = 0;
		kube_scale(p->a->p.kube, p->ns, p->deployment, 0, scaled_down,
			   p);
		set_state(p, P_COLD);
		return;
	}
	if (!p->pid) {
		set_state(p, P_COLD);
		return;
	}
	set_state(p, P_DRAINING);
	exec_signal(p->pid, SIGTERM);
	struct timeval tv = {p->a->p.stop_grace_ms / 1000,
			     (p->a->p.stop_grace_ms % 1000) * 1000};
	event_add(p->kill_timer, &tv);
}

/* A child exited: the app it ran is down. */
static void app_exited(struct act_project *p, int status)
{
	p->pid = 0;
	event_del(p->kill_timer);
	enum pstate was = p->state;
	probe_close(p);
	set_state(p, P_COLD);
	if (was == P_DRAINING) {
		gw_log(GW_LOG_INFO, "activator", "%s: stopped", p->name);
	} else {
		gw_log(GW_LOG_WARN, "activator", "%s: app exited (%s %d)%s",
		       p->name, WIFSIGNALED(status) ? "signal" : "status",
		       WIFSIGNALED(status) ? WTERMSIG(status)
					   : WEXITSTATUS(status),
		       was == P_WAKING ? " before it was ready" : "");
		if (was == P_WAKING) {
			fail_holds(p, "app exited while starting");
			return;
		}
	}
	/* Requests that came in while it was stopping wake it again. */
	if (p->nholds)
		wake(p);
}

static void sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
	struct activator *a = arg;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct act_project *p;
		LIST_FOREACH(p, &a->projects, link) {
			if (p->pid == pid) {
				app_exited(p, status);
				break;
			}
		}
	}
}

static bool fleet_managed(const struct act_project *p)
{
	return p->a->p.fleet && p->deployment && p->a->p.kube;
}

/* Share that the project is in use, about once a second at most. */
static void touch(struct act_project *p)
{
	uint64_t now = gw_now_ms();
	if (!fleet_managed(p) || now - p->last_touch_ms < 1000)
		return;
	p->last_touch_ms = now;
	p->a->p.fleet->touch(p->a->p.fleet->arg, p->name);
}

static bool idle_here(const struct act_project *p, uint64_t now)
{
	return p->state == P_WARM && p->active == 0 && p->nholds == 0 &&
	       now - p->last_active_ms >= p->idle_ms;
}

static void fleet_answer(struct act_project *p, bool stop_now)
{
	p->stop_asked = false;
	if (!stop_now) {
		/* In use elsewhere (or we cannot tell): look again in a
		 * while, not at every tick. */
		p->last_active_ms = gw_now_ms() - p->idle_ms / 2;
		return;
	}
	if (idle_here(p, gw_now_ms())) { /* still: nothing came meanwhile */
		gw_log(GW_LOG_INFO, "activator",
		       "%s: idle across the fleet; scaling down", p->name);
		stop(p);
	}
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	struct activator *a = arg;
	uint64_t now = gw_now_ms();
	struct act_project *p;
	LIST_FOREACH(p, &a->projects, link) {
		if (p->state == P_WARM && p->active > 0)
			touch(p); /* open requests and streams are activity */
		if (!idle_here(p, now))
			continue;
		if (fleet_managed(p)) {
			if (!p->stop_asked) {
				p->stop_asked = true;
				a->p.fleet->may_stop(a->p.fleet->arg, p->name,
						     p->idle_ms, fleet_answer, p);
			}
			continue;
		}
		gw_log(GW_LOG_INFO, "activator", "%s: idle for %llus; stopping",
		       p->name,
		       (unsigned long long)(now - p->last_active_ms) / 1000);
		stop(p);
	}
}

/* ---- Kubernetes provider --------------------------------------------------- */

/* The ready set changed. While waking, probe the first ready pod: the
 * request goes as soon as it accepts, not when kube-proxy or the kubelet's
 * next probe catches up. */
static void endpoints_cb(void *arg, const struct gw_addr *eps, size_t n)
{
	struct act_project *p = arg;
	free(p->eps);
	p->eps = n ? gw_xmalloc(n * sizeof(*eps)) : NULL;
	if (n)
		memcpy(p->eps, eps, n * sizeof(*eps));
	p->neps = n;
	if (p->state == P_WARM && n == 0 && !p->fixed_addr) {
		gw_log(GW_LOG_INFO, "activator", "%s: no ready endpoint left",
		       p->name);
		set_state(p, P_COLD);
		return;
	}
	if (p->state == P_WAKING && n && p->probe_fd < 0 && !p->probe_ev) {
		if (!p->fixed_addr)
			p->addr = eps[0];
		probe_schedule(p, 0);
	}
}

static void scaled_up(void *arg, bool ok, int status, const char *msg)
{
	struct act_project *p = arg;
	if (p->state != P_WAKING)
		return;
	if (!ok) {
		gw_log(GW_LOG_ERROR, "activator", "%s: cannot scale %s/%s up: "
		       "%d %s", p->name, p->ns, p->deployment, status, msg);
		kube_watch_stop(p->watch);
		p->watch = NULL;
		set_state(p, P_COLD);
		fail_holds(p, "Kubernetes API error");
	}
}

static void kube_scale_up(struct act_project *p, bool ours)
{
	if (p->state != P_WAKING)
		return;
	if (!ours) {
		gw_log(GW_LOG_INFO, "activator",
		       "%s: another gateway is waking it; waiting for its pods",
		       p->name);
		return;
	}
	if (!kube_scale(p->a->p.kube, p->ns, p->deployment, 1, scaled_up, p)) {
		kube_watch_stop(p->watch);
		p->watch = NULL;
		set_state(p, P_COLD);
		fail_holds(p, "cannot ask the Kubernetes API");
	}
}

static void kube_wake(struct act_project *p)
{
	struct kube *k = p->a->p.kube;
	gw_log(GW_LOG_INFO, "activator", "%s: waking %s/%s", p->name, p->ns,
	       p->deployment);
	if (!p->watch)
		p->watch = kube_watch_start(k, p->ns,
					    p->service ? p->service
						       : p->deployment,
					    endpoints_cb, p);
	/* One scale call across the fleet: the others learn from the
	 * watch, like this process does. */
	if (fleet_managed(p))
		p->a->p.fleet->may_wake(p->a->p.fleet->arg, p->name,
					kube_scale_up, p);
	else
		kube_scale_up(p, true);
}

/* ---- public ------------------------------------------------------------------ */

struct activator *activator_create(const struct act_params *prm)
{
	struct activator *a = gw_xcalloc(1, sizeof(*a));
	a->p = *prm;
	LIST_INIT(&a->projects);
	a->reaper = event_new(prm->base, -1, EV_PERSIST, reaper_cb, a);
	a->sigchld = evsignal_new(prm->base, SIGCHLD, sigchld_cb, a);
	if (!a->reaper || !a->sigchld)
		gw_oom(0);
	unsigned tick = prm->idle_timeout_ms / 4;
	if (tick > REAP_MS || tick == 0)
		tick = REAP_MS;
	struct timeval tv = {tick / 1000, (tick % 1000) * 1000};
	event_add(a->reaper, &tv);
	event_add(a->sigchld, NULL);
	return a;
}

struct act_project *activator_project(struct activator *a, const char *name,
				      const struct act_target *t)
{
	struct act_project *p;
	LIST_FOREACH(p, &a->projects, link)
		if (strcmp(p->name, name) == 0)
			break;
	if (!p) {
		p = gw_xcalloc(1, sizeof(*p));
		p->a = a;
		snprintf(p->name, sizeof(p->name), "%s", name);
		TAILQ_INIT(&p->holds);
		p->probe_fd = -1;
		p->kill_timer = evtimer_new(a->p.base, kill_timer_cb, p);
		if (!p->kill_timer)
			gw_oom(0);
		LIST_INSERT_HEAD(&a->projects, p, link);
	}
	/* The route may have changed (new address, command, timeout). */
	if (!p->command || !t->exec_command ||
	    strcmp(p->command, t->exec_command) != 0) {
		free(p->command);
		p->command = t->exec_command ? gw_xstrdup(t->exec_command)
					     : NULL;
	}
	if (t->deployment) {
		bool same = p->deployment && strcmp(p->deployment, t->deployment) == 0 &&
			    p->ns && t->namespace_ && strcmp(p->ns, t->namespace_) == 0;
		if (!same) {
			free(p->ns);
			free(p->deployment);
			free(p->service);
			p->ns = gw_xstrdup(t->namespace_ ? t->namespace_ : "default");
			p->deployment = gw_xstrdup(t->deployment);
			p->service = t->service ? gw_xstrdup(t->service) : NULL;
		}
		p->fixed_addr = t->has_addr;
		if (t->has_addr)
			p->addr = t->addr;
	} else {
		p->addr = t->addr;
	}
	p->idle_ms = t->idle_timeout_s ? t->idle_timeout_s * 1000
				       : a->p.idle_timeout_ms;
	return p;
}

enum act_result activator_acquire(struct act_project *p, act_cb cb, void *arg,
				  struct act_hold **hold, struct gw_addr *addr)
{
	struct activator *a = p->a;
	*hold = NULL;
	if (p->state == P_COLD) {
		wake(p); /* may find it listening at once, or fail to start */
		if (p->state == P_COLD)
			return ACT_FAILED;
	}
	/* Warm with nobody queued: go. With a queue (a release in
	 * progress), newcomers line up behind it. */
	if (p->state == P_WARM && p->nholds == 0) {
		p->active++;
		p->last_active_ms = gw_now_ms();
		touch(p);
		*addr = p->neps && !p->fixed_addr ? p->eps[p->rr++ % p->neps]
						  : p->addr;
		return ACT_READY;
	}
	if (p->nholds >= a->p.hold_max_per_project || a->nholds >= a->p.hold_max) {
		gw_log(GW_LOG_WARN, "activator",
		       "%s: hold queue full (%u here, %u in all)", p->name,
		       p->nholds, a->nholds);
		return ACT_FULL;
	}
	struct act_hold *h = gw_xcalloc(1, sizeof(*h));
	h->p = p;
	h->cb = cb;
	h->arg = arg;
	h->since_ms = gw_now_ms();
	h->timer = evtimer_new(a->p.base, hold_timeout_cb, h);
	if (!h->timer)
		gw_oom(0);
	struct timeval tv = {a->p.hold_timeout_ms / 1000,
			     (a->p.hold_timeout_ms % 1000) * 1000};
	event_add(h->timer, &tv);
	TAILQ_INSERT_TAIL(&p->holds, h, link);
	p->nholds++;
	a->nholds++;
	*hold = h;
	return ACT_HELD;
}

bool activator_has_kube(const struct activator *a)
{
	return a && a->p.kube;
}

void activator_cancel(struct act_hold *h)
{
	if (h)
		hold_free(h);
}

void activator_done(struct act_project *p)
{
	if (p->active)
		p->active--;
	p->last_active_ms = gw_now_ms();
	if (p->nholds && p->state == P_WARM)
		release_some(p);
}

void activator_refused(struct act_project *p)
{
	if (p->state != P_WARM)
		return;
	gw_log(GW_LOG_WARN, "activator",
	       "%s: refused while believed warm; waking again", p->name);
	set_state(p, P_COLD);
}

void activator_destroy(struct activator *a)
{
	if (!a)
		return;
	struct act_project *p;
	while ((p = LIST_FIRST(&a->projects))) {
		LIST_REMOVE(p, link);
		fail_holds(p, "shutting down");
		probe_close(p);
		if (p->pid) {
			/* The gateway is exiting: its apps go with it, within
			 * stop_grace. */
			exec_signal(p->pid, SIGTERM);
			for (unsigned ms = 0; ms < a->p.stop_grace_ms; ms += 10) {
				if (waitpid(p->pid, NULL, WNOHANG) != 0)
					break;
				usleep(10000);
			}
			exec_signal(p->pid, SIGKILL);
			waitpid(p->pid, NULL, WNOHANG);
		}
		kube_watch_stop(p->watch);
		event_free(p->kill_timer);
		free(p->command);
		free(p->ns);
		free(p->deployment);
		free(p->service);
		free(p->eps);
		free(p);
	}
	event_free(a->reaper);
	event_free(a->sigchld);
	free(a);
}
