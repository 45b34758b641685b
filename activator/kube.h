/* kube.h - the Kubernetes operations the activator's kube provider uses,
 * on top of kubeapi: raise or zero a Deployment's replicas through its
 * scale subresource, and follow a Service's EndpointSlices.
 *
 * Scale (kube_scale.c). Both operations read the scale subresource first
 * and write it with a JSON merge patch carrying the resourceVersion they
 * read, so the API server refuses (409) a write based on a stale view:
 *   - up: spec.replicas > 0 is left alone (never lowered: a replica of the
 *     gateway that just started must not undo an autoscaler); 0 becomes
 *     `replicas`. A 409 reads again and decides again (at most 3 rounds).
 *   - down: 0 is done already; otherwise 0 is written. A 409 reads again:
 *     0 means done, anything else means someone changed it meanwhile (a
 *     wake elsewhere): the call fails with status 409, nothing is undone.
 * The callback runs exactly once, unless the call is cancelled.
 *
 * Watch (kube_watch.c): LIST the slices labelled
 * kubernetes.io/service-name=SVC, then WATCH from the list's
 * resourceVersion with bookmarks; a stream that ends is resumed from the
 * last version seen, 410 Gone relists, errors back off (jittered). When
 * watching does not work (403 on the watch, or three failed watches in a
 * row) it falls back to polling: a LIST every poll_interval_ms, with a
 * watch tried again every tenth poll. A LIST that fails keeps the last
 * known endpoints. Every change of the endpoint set is reported.
 */
#ifndef GW_KUBE_H
#define GW_KUBE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/addr.h"

struct kubeapi;
struct kube_scale;
struct kube_watch;

/* ok: *replicas is spec.replicas now. !ok: status is the HTTP status (0:
 * transport), why a reason for the log. */
typedef void (*kube_scale_cb)(void *arg, bool ok, unsigned replicas,
			      int status, const char *why);

/* Never NULL (a failure reaches cb). ns and name must be valid. */
struct kube_scale *kube_scale_up(struct kubeapi *api, const char *ns,
				 const char *name, unsigned replicas,
				 kube_scale_cb cb, void *arg);
struct kube_scale *kube_scale_down(struct kubeapi *api, const char *ns,
				   const char *name, kube_scale_cb cb, void *arg);

/* True when the call cannot change the Deployment any more if abandoned
 * now: it is reading, or pausing between attempts (nothing written is on
 * the wire). */
bool kube_scale_moot(const struct kube_scale *s);

/* Abandon: the callback does not run. NULL is fine. */
void kube_scale_cancel(struct kube_scale *s);

/* One endpoint of a slice, with its conditions (nil ready counts as ready,
 * nil terminating as not terminating, as the API documents). */
struct kube_endpoint {
	struct gw_addr addr;
	bool ready;
	bool serving;
	bool terminating;
};

/* The whole endpoint set now (possibly empty). */
typedef void (*kube_endpoints_cb)(void *arg, const struct kube_endpoint *eps,
				  size_t n);

struct kube_watch_params {
	const char *ns, *service;  /* valid names (copied) */
	unsigned poll_interval_ms; /* fallback polling period */
	unsigned watch_timeout_s;  /* server-side timeoutSeconds of a watch */
	kube_endpoints_cb cb;      /* from the loop, never inside start/stop */
	void *arg;
};

struct kube_watch *kube_watch_start(struct kubeapi *api,
				    const struct kube_watch_params *p);
/* No callback after this. NULL is fine. */
void kube_watch_stop(struct kube_watch *w);

#endif
