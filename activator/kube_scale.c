/* kube_scale.c - raise or zero a Deployment's replicas: read the scale
 * subresource, then write it with the resourceVersion read (kube.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"
#include "kube_int.h"
#include "kube_parse.h"
#include "kubeapi.h"
#include "core/log.h"
#include "core/compat.h"

#define ROUNDS_MAX 3 /* read-decide-write rounds lost to conflicts */

struct kube_scale {
	struct kubeapi *api;
	char path[1100];
	bool up;                 /* raise to `replicas` if at 0; else zero it */
	unsigned replicas;
	bool writing;            /* the call in flight is the PATCH */
	unsigned rounds;
	struct kubeapi_call *call;
	kube_scale_cb cb;
	void *arg;
};

size_t kube_escape(char *out, size_t outsz, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *s && o + 4 < outsz; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return o;
}

static void scale_end(struct kube_scale *s, bool ok, unsigned replicas,
		      int status, const char *why)
{
	kube_scale_cb cb = s->cb;
	void *arg = s->arg;
	free(s);
	cb(arg, ok, replicas, status, why);
}

static void read_scale(struct kube_scale *s);

static void written(void *arg, const struct kubeapi_resp *r)
{
	struct kube_scale *s = arg;
	s->call = NULL;
	if (r->status >= 200 && r->status < 300) {
		scale_end(s, true, s->up ? s->replicas : 0, r->status, "ok");
		return;
	}
	if (r->status == 409 && ++s->rounds < ROUNDS_MAX) {
		/* Changed since we read it: read again, decide again. */
		gw_log(GW_LOG_INFO, "kube", "%s: conflict (%s); reading again",
		       s->path, r->why);
		read_scale(s);
		return;
	}
	scale_end(s, false, 0, r->status, r->why);
}

static void got_scale(void *arg, const struct kubeapi_resp *r)
{
	struct kube_scale *s = arg;
	s->call = NULL;
	if (r->status != 200) {
		scale_end(s, false, 0, r->status, r->why);
		return;
	}
	long long now;
	char *rv;
	if (!kube_parse_scale(r->body, r->len, &now, &rv)) {
		scale_end(s, false, 0, r->status, "unreadable Scale object");
		return;
	}
	if (s->up ? now > 0 : now == 0) {
		/* Up: running already (never lowered). Down: at 0 already. A
		 * write after a conflict may have been ours: either way done. */
		free(rv);
		scale_end(s, true, (unsigned)now, r->status,
			  s->rounds ? "changed meanwhile" : "ok");
		return;
	}
	if (!s->up && s->rounds) {
		/* Our scale-down lost a race to a wake: keep it running. */
		free(rv);
		scale_end(s, false, (unsigned)now, 409,
			  "the Deployment changed meanwhile; left running");
		return;
	}
	json_t *patch = json_pack("{s:{s:s},s:{s:I}}", "metadata",
				  "resourceVersion", rv, "spec", "replicas",
				  (json_int_t)(s->up ? s->replicas : 0));
	char *body = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
	json_decref(patch);
	free(rv);
	if (!body)
		gw_oom(0);
	struct kubeapi_opts o = {.method = "PATCH", .path = s->path,
				 .body = body, .retry = true, .done = written,
				 .arg = s};
	s->writing = true;
	s->call = kubeapi_call(s->api, &o);
	free(body);
}

static void read_scale(struct kube_scale *s)
{
	struct kubeapi_opts o = {.method = "GET", .path = s->path,
				 .retry = true, .done = got_scale, .arg = s};
	s->writing = false;
	s->call = kubeapi_call(s->api, &o);
}

static struct kube_scale *scale_start(struct kubeapi *api, const char *ns,
				      const char *name, bool up,
				      unsigned replicas, kube_scale_cb cb,
				      void *arg)
{
	struct kube_scale *s = gw_xcalloc(1, sizeof(*s));
	s->api = api;
	s->up = up;
	s->replicas = replicas;
	s->cb = cb;
	s->arg = arg;
	char ens[200], ename[770];
	kube_escape(ens, sizeof(ens), ns);
	kube_escape(ename, sizeof(ename), name);
	snprintf(s->path, sizeof(s->path),
		 "/apis/apps/v1/namespaces/%s/deployments/%s/scale", ens, ename);
	read_scale(s);
	return s;
}

struct kube_scale *kube_scale_up(struct kubeapi *api, const char *ns,
				 const char *name, unsigned replicas,
				 kube_scale_cb cb, void *arg)
{
	return scale_start(api, ns, name, true, replicas ? replicas : 1, cb,
			   arg);
}

struct kube_scale *kube_scale_down(struct kubeapi *api, const char *ns,
				   const char *name, kube_scale_cb cb, void *arg)
{
	return scale_start(api, ns, name, false, 0, cb, arg);
}

bool kube_scale_moot(const struct kube_scale *s)
{
	return !s->writing || !kubeapi_on_wire(s->call);
}

void kube_scale_cancel(struct kube_scale *s)
{
	if (!s)
		return;
	kubeapi_cancel(s->call);
	free(s);
}
