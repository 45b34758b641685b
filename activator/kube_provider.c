/* kube_provider.c - the Kubernetes provider (provider.h): a Deployment,
 * scaled through its scale subresource, whose pods are found through the
 * Service's EndpointSlices (or, for a route with an address, reached at
 * that fixed address: the Service's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activator.h"
#include "kube.h"
#include "core/dnsname.h"
#include "kubeapi.h"
#include "provider.h"
#include "core/log.h"
#include "core/compat.h"

struct kube_provider {
	struct provider base;      /* first: the activator's handle */
	struct kube_provider_params kp;
	char *ns, *deployment, *service;
	const char *invalid;       /* why the target cannot be used, or NULL */
	unsigned max_replicas;     /* the route's, else kp.max_replicas */
	struct kube_scale *call;   /* the pending wake or stop */
	enum provider_call call_kind;
	struct kube_watch *watch;  /* while the readiness source runs */
	bool watching;
};

static struct kube_provider *kp_of(struct provider *pv)
{
	return gw_container_of(pv, struct kube_provider, base);
}

static unsigned wake_target(const struct kube_provider *k)
{
	unsigned n = k->kp.wake_replicas ? k->kp.wake_replicas : 1;
	return n < k->max_replicas ? n : k->max_replicas;
}

static void scaled(void *arg, bool ok, unsigned replicas, int status,
		   const char *why)
{
	struct kube_provider *k = arg;
	enum provider_call kind = k->call_kind;
	k->call = NULL;
	char msg[300];
	if (kind == PROVIDER_WAKE) {
		if (ok && replicas != wake_target(k))
			gw_log(GW_LOG_INFO, "activator",
			       "%s/%s already at %u replica(s): left as is",
			       k->ns, k->deployment, replicas);
		else if (!ok)
			gw_log(GW_LOG_ERROR, "activator",
			       "cannot scale %s/%s up: %d %s%s", k->ns,
			       k->deployment, status, why,
			       status == 403 ? " (RBAC: get and patch on "
					       "deployments/scale)"
					     : "");
	} else if (ok) {
		gw_log(GW_LOG_INFO, "activator", "%s/%s scaled to zero", k->ns,
		       k->deployment);
	} else {
		gw_log(status == 409 ? GW_LOG_INFO : GW_LOG_ERROR, "activator",
		       "scale-down of %s/%s %s: %d %s", k->ns, k->deployment,
		       status == 409 ? "skipped" : "failed", status, why);
	}
	snprintf(msg, sizeof(msg), "%s%d %s", ok ? "" : "Kubernetes API: ",
		 status, why);
	k->base.sink.call_done(k->base.sink.arg, kind, ok, msg);
}

static enum provider_start kube_wake(struct provider *pv, const char **why)
{
	struct kube_provider *k = kp_of(pv);
	if (k->invalid) {
		*why = k->invalid;
		return PROVIDER_FAILED;
	}
	k->call_kind = PROVIDER_WAKE;
	k->call = kube_scale_up(k->kp.api, k->ns, k->deployment,
				wake_target(k), scaled, k);
	return PROVIDER_PENDING;
}

static enum provider_start kube_stop(struct provider *pv, const char **why)
{
	struct kube_provider *k = kp_of(pv);
	if (k->invalid)
		return PROVIDER_DONE; /* it was never scaled up */
	k->call_kind = PROVIDER_STOP;
	k->call = kube_scale_down(k->kp.api, k->ns, k->deployment, scaled, k);
	return PROVIDER_PENDING;
}

static void endpoints_cb(void *arg, const struct kube_endpoint *eps, size_t n)
{
	struct kube_provider *k = arg;
	struct provider_endpoint *out = gw_xcalloc(n ? n : 1, sizeof(*out));
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (eps[i].terminating)
			continue; /* going away: neither probed nor used */
		out[m].addr = eps[i].addr;
		out[m].ready = eps[i].ready;
		m++;
	}
	k->base.sink.endpoints(k->base.sink.arg, out, m);
	free(out);
}

static void kube_watch_begin(struct provider *pv)
{
	struct kube_provider *k = kp_of(pv);
	k->watching = true;
	if (k->watch || k->invalid || pv->has_fixed)
		return;
	struct kube_watch_params wp = {
		.ns = k->ns,
		.service = k->service,
		.poll_interval_ms = k->kp.poll_interval_ms,
		.watch_timeout_s = k->kp.watch_timeout_s,
		.cb = endpoints_cb,
		.arg = k,
	};
	k->watch = kube_watch_start(k->kp.api, &wp);
}

static void kube_watch_end(struct provider *pv)
{
	struct kube_provider *k = kp_of(pv);
	k->watching = false;
	kube_watch_stop(k->watch);
	k->watch = NULL;
}

static bool kube_cancel(struct provider *pv)
{
	struct kube_provider *k = kp_of(pv);
	if (!k->call)
		return true;
	if (!kube_scale_moot(k->call))
		return false;
	kube_scale_cancel(k->call);
	k->call = NULL;
	return true;
}

/* Take t's names; returns true when they differ from the current ones. */
static bool set_target(struct kube_provider *k, const struct act_target *t)
{
	const char *ns = t->namespace_ && *t->namespace_
				 ? t->namespace_
				 : kubeapi_namespace(k->kp.api);
	const char *svc = t->service && *t->service ? t->service : t->deployment;
	bool same = k->ns && strcmp(k->ns, ns) == 0 &&
		    strcmp(k->deployment, t->deployment) == 0 &&
		    strcmp(k->service, svc) == 0 &&
		    k->base.has_fixed == t->has_addr &&
		    (!t->has_addr || gw_addr_eq(&k->base.fixed, &t->addr));
	k->max_replicas = t->max_replicas ? t->max_replicas : k->kp.max_replicas;
	if (!k->max_replicas)
		k->max_replicas = 1;
	if (same)
		return false;
	free(k->ns);
	free(k->deployment);
	free(k->service);
	k->ns = gw_xstrdup(ns);
	k->deployment = gw_xstrdup(t->deployment);
	k->service = gw_xstrdup(svc);
	k->base.has_fixed = t->has_addr;
	if (t->has_addr)
		k->base.fixed = t->addr;
	/* Names go into URLs: only what the API itself would accept. */
	k->invalid = !gw_dns_label(k->ns, strlen(k->ns)) ? "invalid namespace name"
		     : !gw_dns_subdomain(k->deployment, strlen(k->deployment))
			     ? "invalid Deployment name"
		     : !gw_dns_label(k->service, strlen(k->service)) ? "invalid Service name"
						     : NULL;
	if (k->invalid)
		gw_log(GW_LOG_ERROR, "activator",
		       "route target %s/%s (service %s): %s", k->ns,
		       k->deployment, k->service, k->invalid);
	return true;
}

static bool kube_update(struct provider *pv, const struct act_target *t)
{
	struct kube_provider *k = kp_of(pv);
	if (!set_target(k, t))
		return false;
	gw_log(GW_LOG_INFO, "activator", "now %s/%s (service %s)", k->ns,
	       k->deployment, k->service);
	kube_scale_cancel(k->call);
	k->call = NULL;
	if (k->watching) { /* the old Service's endpoints mean nothing now */
		kube_watch_stop(k->watch);
		k->watch = NULL;
		kube_watch_begin(pv);
	}
	return true;
}

static void kube_destroy(struct provider *pv)
{
	struct kube_provider *k = kp_of(pv);
	kube_scale_cancel(k->call);
	kube_watch_stop(k->watch);
	free(k->ns);
	free(k->deployment);
	free(k->service);
	free(k);
}

static const struct provider_ops kube_ops = {
	.name = "kubernetes",
	.wake = kube_wake,
	.stop = kube_stop,
	.watch_start = kube_watch_begin,
	.watch_stop = kube_watch_end,
	.cancel = kube_cancel,
	.update = kube_update,
	.destroy = kube_destroy,
};

struct provider *kube_provider_create(const struct kube_provider_params *kp,
				      const struct act_target *t,
				      const struct provider_sink *sink,
				      const char **err)
{
	struct kube_provider *k = gw_xcalloc(1, sizeof(*k));
	k->base.ops = &kube_ops;
	k->base.sink = *sink;
	k->base.probe_interval_ms = kp->probe_interval_ms;
	k->base.shared = kp->shared;
	k->kp = *kp;
	set_target(k, t);
	if (k->invalid) {
		*err = k->invalid;
		kube_destroy(&k->base);
		return NULL;
	}
	return &k->base;
}
