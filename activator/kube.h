/* kube.h - the Kubernetes API client the activator needs: scale a
 * Deployment, and watch a Service's EndpointSlices for ready addresses.
 *
 * libcurl multi, driven by the worker's libevent loop (no thread, no
 * blocking call). Credentials: a bearer token re-read from token_file at
 * most every token_reload_ms and at once after a 401 (projected
 * service-account tokens rotate); TLS verified against ca_file.
 *
 * Scale: PATCH /apis/apps/v1/namespaces/NS/deployments/NAME/scale with a
 * merge patch. 429, 5xx and transport errors are retried with jittered
 * backoff within the request's deadline; 401 once after re-reading the
 * token; 403/404/409 are final. The callback runs exactly once.
 *
 * Watch: LIST the slices labelled kubernetes.io/service-name=SVC, then
 * WATCH from the list's resourceVersion with bookmarks; resume from the
 * last seen version when a stream ends, relist on 410 Gone, back off on
 * errors. Every change of the ready set is reported (possibly empty).
 */
#ifndef GW_KUBE_H
#define GW_KUBE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/addr.h"

struct event_base;
struct kube;
struct kube_watch;

struct kube_params {
	struct event_base *base;
	const char *api_url;     /* "https://10.0.0.1:443"; NULL = in-cluster */
	const char *token_file;
	const char *ca_file;     /* NULL: system CAs */
	unsigned token_reload_ms;
	unsigned request_timeout_ms;
	unsigned watch_timeout_s; /* server-side timeoutSeconds of a watch */
};

/* NULL with *err when the API address cannot be determined. */
struct kube *kube_create(const struct kube_params *p, const char **err);

/* ok: the API accepted the new replica count. status is the HTTP status
 * (0: transport failure), msg a reason for the log. */
typedef void (*kube_scale_cb)(void *arg, bool ok, int status,
			      const char *msg);

/* Ask; cb later. Returns false (cb not called) only on allocation failure. */
bool kube_scale(struct kube *k, const char *ns, const char *deployment,
		unsigned replicas, kube_scale_cb cb, void *arg);

/* The ready endpoints now (addresses with their port). */
typedef void (*kube_endpoints_cb)(void *arg, const struct gw_addr *eps,
				  size_t n);

struct kube_watch *kube_watch_start(struct kube *k, const char *ns,
				    const char *service, kube_endpoints_cb cb,
				    void *arg);
void kube_watch_stop(struct kube_watch *w);

/* Cancels everything in flight (no callbacks). */
void kube_destroy(struct kube *k);

#endif
