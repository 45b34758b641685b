/* kube_watch.c - follow a Service's EndpointSlices: list, watch from the
 * list's resourceVersion, relist on 410, poll when watching fails
 * (kube.h). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"
#include "kube_int.h"
#include "kube_parse.h"
#include "kubeapi.h"
#include "core/log.h"
#include "core/compat.h"

#define LINE_MAX_ (1 << 20)   /* one watch event */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define WATCH_FAILURES_MAX 3  /* failed watches in a row before polling */
#define POLLS_PER_WATCH_TRY 10

struct kube_watch {
	struct kubeapi *api;
	struct kube_watch_params p; /* ns, service: the copies below */
	char *ns, *service;
	char path[600];            /* the LIST path; a watch appends to it */
	char rv[64];               /* last resourceVersion seen */
	struct kube_slices *slices; /* what the last LIST and events said */
	struct kubeapi_call *req;  /* LIST or WATCH in flight, or NULL */
	unsigned stream_gen;       /* bumped when a stream is abandoned */
	bool stream_events;        /* the current stream delivered an event */
	struct event *timer;       /* backoff, or the next poll */
	unsigned backoff_ms;
	unsigned watch_failures;   /* in a row */
	bool polling;              /* fallback mode: LIST every poll interval */
	unsigned polls;
	bool warned_list;          /* "cannot list" logged */
	char *line;                /* partial watch event line */
	size_t line_len, line_cap;
	struct kube_endpoint *last; /* set last reported */
	size_t nlast;
	bool reported;
	unsigned busy;             /* inside a stream data callback */
	bool dead;                 /* stopped while busy: free when done */
};

static void list_start(struct kube_watch *w);
static void watch_open(struct kube_watch *w);

/* ---- reporting ------------------------------------------------------------ */

static void watch_free(struct kube_watch *w);

static bool eps_equal(const struct kube_endpoint *a,
		      const struct kube_endpoint *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!gw_addr_eq(&a[i].addr, &b[i].addr) ||
		    a[i].ready != b[i].ready || a[i].serving != b[i].serving ||
		    a[i].terminating != b[i].terminating)
			return false;
	return true;
}

/* Tell the owner, if the set changed. Returns false when the owner
 * stopped the watch (freed here unless a caller up the stack is busy). */
static bool report(struct kube_watch *w)
{
	size_t total;
	struct kube_endpoint *all = kube_slices_endpoints(w->slices, &total);
	if (w->reported && total == w->nlast &&
	    eps_equal(all, w->last, total)) {
		free(all);
		return true;
	}
	free(w->last);
	w->last = all;
	w->nlast = total;
	w->reported = true;
	struct kube_endpoint *copy = gw_xcalloc(total ? total : 1, sizeof(*copy));
	memcpy(copy, all, total * sizeof(*copy));
	w->busy++;
	w->p.cb(w->p.arg, copy, total);
	w->busy--;
	free(copy);
	if (!w->dead)
		return true;
	if (!w->busy)
		watch_free(w);
	return false;
}

/* ---- scheduling ------------------------------------------------------------- */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kube_watch *w = arg;
	if (w->polling && ++w->polls % POLLS_PER_WATCH_TRY == 0 && w->rv[0]) {
		watch_open(w); /* maybe watching works again */
		return;
	}
	list_start(w);
}

static void arm(struct kube_watch *w, unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(w->timer, &tv);
}

static void backoff(struct kube_watch *w)
{
	if (w->polling) {
		arm(w, w->p.poll_interval_ms);
		return;
	}
	unsigned d = kubeapi_jitter(w->api, w->backoff_ms);
	w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							 : w->backoff_ms * 2;
	arm(w, d);
}

static void start_polling(struct kube_watch *w, const char *why)
{
	if (!w->polling)
		gw_log(GW_LOG_WARN, "kube",
		       "endpointslices %s/%s: cannot watch (%s); polling every "
		       "%ums",
		       w->ns, w->service, why, w->p.poll_interval_ms);
	w->polling = true;
}

/* ---- LIST ----------------------------------------------------------------------- */

static void list_done(void *arg, const struct kubeapi_resp *r)
{
	struct kube_watch *w = arg;
	w->req = NULL;
	if (r->status != 200 ||
	    !kube_parse_list(w->slices, r->body, r->len, w->rv, sizeof(w->rv))) {
		bool forbidden = r->status == 403;
		if (!w->warned_list || !forbidden)
			gw_log(forbidden ? GW_LOG_ERROR : GW_LOG_WARN, "kube",
			       "list endpointslices %s/%s: %d %s%s", w->ns,
			       w->service, r->status, r->why,
			       forbidden ? " (RBAC: the gateway needs list and "
					   "watch on endpointslices)"
					 : "");
		w->warned_list |= forbidden;
		if (forbidden)
			start_polling(w, "list forbidden");
		backoff(w);
		return;
	}
	w->backoff_ms = BACKOFF_MIN_MS;
	if (!report(w))
		return;
	if (w->polling)
		arm(w, w->p.poll_interval_ms);
	else
		watch_open(w);
}

static void list_start(struct kube_watch *w)
{
	struct kubeapi_opts o = {.method = "GET", .path = w->path,
				 .done = list_done, .arg = w};
	w->req = kubeapi_call(w->api, &o);
}

/* ---- WATCH ------------------------------------------------------------------------ */

/* One event of the stream, parsed (kube_parse_event). Returns false when
 * the stream is abandoned. */
static bool watch_event(struct kube_watch *w, enum kube_event e,
			long long code, const char *why)
{
	if (e == KUBE_EVENT_IGNORED)
		return true;
	if (e == KUBE_EVENT_ERROR) {
		gw_log(code == 410 ? GW_LOG_INFO : GW_LOG_WARN, "kube",
		       "watch %s/%s: %s (%lld); listing again", w->ns,
		       w->service, why, code);
		kubeapi_cancel(w->req);
		w->stream_gen++;
		list_start(w);
		return false;
	}
	w->stream_events = true;
	w->watch_failures = 0;
	if (w->polling) {
		gw_log(GW_LOG_INFO, "kube", "endpointslices %s/%s: watching again",
		       w->ns, w->service);
		w->polling = false;
	}
	if (e == KUBE_EVENT_BOOKMARK)
		return true;
	return report(w);
}

static void stream_data(void *arg, const char *p, size_t n)
{
	struct kube_watch *w = arg;
	unsigned gen = w->stream_gen;
	w->busy++;
	for (size_t i = 0; i < n && !w->dead && w->stream_gen == gen; i++) {
		if (p[i] != '\n') {
			if (w->line_len + 1 >= LINE_MAX_) {
				gw_log(GW_LOG_WARN, "kube",
				       "watch %s/%s: event too large; listing "
				       "again",
				       w->ns, w->service);
				kubeapi_cancel(w->req);
				w->stream_gen++;
				list_start(w);
				break;
			}
			if (w->line_len + 2 > w->line_cap) {
				w->line_cap = w->line_cap ? w->line_cap * 2 : 4096;
				w->line = gw_xrealloc(w->line, w->line_cap);
			}
			w->line[w->line_len++] = p[i];
			continue;
		}
		if (!w->line_len)
			continue;
		long long code;
		char why[512];
		enum kube_event e =
			kube_parse_event(w->slices, w->line, w->line_len, w->rv,
					 sizeof(w->rv), &code, why, sizeof(why));
		w->line_len = 0;
		if (e == KUBE_EVENT_UNREADABLE) {
			gw_log(GW_LOG_WARN, "kube",
			       "watch %s/%s: unreadable event (%s); listing again",
			       w->ns, w->service, why);
			kubeapi_cancel(w->req);
			w->stream_gen++;
			list_start(w);
			break;
		}
		if (!watch_event(w, e, code, why))
			break;
	}
	w->busy--;
	if (w->dead && !w->busy)
		watch_free(w);
}

static void watch_done(void *arg, const struct kubeapi_resp *r)
{
	struct kube_watch *w = arg;
	w->req = NULL;
	w->line_len = 0;
	if (r->status == 200) {
		/* The server's timeoutSeconds: resume where we were. */
		w->watch_failures = 0;
		watch_open(w);
		return;
	}
	if (r->status == 410) {
		gw_log(GW_LOG_INFO, "kube",
		       "watch %s/%s: resourceVersion too old (410); listing again",
		       w->ns, w->service);
		list_start(w);
		return;
	}
	gw_log(GW_LOG_WARN, "kube", "watch endpointslices %s/%s ended: %d %s",
	       w->ns, w->service, r->status, r->why);
	if (r->status == 403)
		start_polling(w, "watch forbidden");
	else if (++w->watch_failures >= WATCH_FAILURES_MAX)
		start_polling(w, "watch keeps failing");
	backoff(w);
}

static void watch_open(struct kube_watch *w)
{
	char path[sizeof(w->path) + 300], erv[200];
	kube_escape(erv, sizeof(erv), w->rv);
	snprintf(path, sizeof(path),
		 "%s&watch=1&allowWatchBookmarks=true&resourceVersion=%s"
		 "&timeoutSeconds=%u",
		 w->path, erv, w->p.watch_timeout_s);
	struct kubeapi_opts o = {
		.method = "GET",
		.path = path,
		.data_cb = stream_data,
		/* Silent past the server's own timeout (bookmarks come every
		 * minute or so) means dead. */
		.idle_s = w->p.watch_timeout_s + 30,
		.done = watch_done,
		.arg = w,
	};
	w->stream_events = false;
	w->line_len = 0;
	w->req = kubeapi_call(w->api, &o);
}

/* ---- lifetime ------------------------------------------------------------------------- */

struct kube_watch *kube_watch_start(struct kubeapi *api,
				    const struct kube_watch_params *p)
{
	struct kube_watch *w = gw_xcalloc(1, sizeof(*w));
	w->api = api;
	w->p = *p;
	w->ns = gw_xstrdup(p->ns);
	w->service = gw_xstrdup(p->service);
	w->p.ns = w->ns;
	w->p.service = w->service;
	if (!w->p.poll_interval_ms)
		w->p.poll_interval_ms = 1000;
	w->backoff_ms = BACKOFF_MIN_MS;
	w->slices = kube_slices_create();
	w->timer = evtimer_new(kubeapi_base(api), timer_cb, w);
	if (!w->timer)
		gw_oom(0);
	char ens[200], esvc[200], sel[300];
	kube_escape(ens, sizeof(ens), w->ns);
	kube_escape(esvc, sizeof(esvc), w->service);
	snprintf(sel, sizeof(sel), "kubernetes.io%%2Fservice-name%%3D%s", esvc);
	snprintf(w->path, sizeof(w->path),
		 "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?"
		 "labelSelector=%s",
		 ens, sel);
	list_start(w);
	return w;
}

void kube_watch_stop(struct kube_watch *w)
{
	if (!w)
		return;
	kubeapi_cancel(w->req);
	w->req = NULL;
	event_del(w->timer);
	if (w->busy) {
		w->dead = true; /* freed when the callback on the stack returns */
		return;
	}
	watch_free(w);
}

static void watch_free(struct kube_watch *w)
{
	event_free(w->timer);
	kube_slices_destroy(w->slices);
	free(w->last);
	free(w->line);
	free(w->ns);
	free(w->service);
	free(w);
}
