/* routeparse.c - route hash fields into a struct route (routeparse.h). */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routeparse.h"
#include "routes.h"
#include "routespec.h"
#include "core/dnsname.h"
#include "core/log.h"
#include "core/compat.h"

_Static_assert(ROUTESPEC_PROJECT_MAX < ROUTE_PROJECT_MAX,
	       "a valid project id fits struct route");

static bool field_is(struct gw_str k, const char *name)
{
	return strlen(name) == k.len && memcmp(k.p, name, k.len) == 0;
}

static char *dup_value(struct gw_str v)
{
	return gw_xstrndup(v.p, v.len);
}

/* "field 'value'" for a refusal line, the value escaped and cut short. */
static void why_value(char *err, size_t errlen, const char *field,
		      struct gw_str v, const char *rule)
{
	char val[80];
	gw_log_escape(val, sizeof(val), v.p, v.len > 64 ? 64 : v.len);
	snprintf(err, errlen, "%s '%s%s' %s", field, val,
		 v.len > 64 ? "..." : "", rule);
}

/* A Kubernetes name: a DNS-1123 label, or (Deployments) a subdomain. */
static bool name_field(char **dst, struct gw_str v, const char *field,
		       bool subdomain, char *err, size_t errlen)
{
	if (subdomain ? !gw_dns_subdomain(v.p, v.len)
		      : !gw_dns_label(v.p, v.len)) {
		why_value(err, errlen, field, v,
			  subdomain ? "is not a DNS-1123 subdomain"
				    : "is not a DNS-1123 label");
		return false;
	}
	free(*dst);
	*dst = dup_value(v);
	return true;
}

static bool upstream_field(struct route *rt, struct gw_str v, char *err,
			   size_t errlen)
{
	char *list = dup_value(v), *save = NULL;
	bool ok = true;
	for (char *t = strtok_r(list, ", ", &save); t && ok;
	     t = strtok_r(NULL, ", ", &save)) {
		struct gw_addr a;
		const char *aerr = NULL;
		if (rt->naddrs == ROUTESPEC_UPSTREAMS_MAX) {
			snprintf(err, errlen, "upstream has more than %d addresses",
				 ROUTESPEC_UPSTREAMS_MAX);
			ok = false;
		} else if (gw_addr_parse(t, &a, &aerr) != 0) {
			char val[80];
			gw_log_escape(val, sizeof(val), t, strlen(t));
			snprintf(err, errlen, "upstream '%s': %s", val, aerr);
			ok = false;
		} else {
			rt->addrs = gw_xrealloc(rt->addrs,
						(rt->naddrs + 1) * sizeof(a));
			rt->addrs[rt->naddrs++] = a;
		}
	}
	free(list);
	return ok;
}

struct route *routeparse(const char *host, const struct gw_str *kv, size_t nkv,
			 char *err, size_t errlen)
{
	struct route *rt = route_new(host);
	bool ok = true, has_project = false, has_vis = false;
	unsigned long n;
	for (size_t i = 0; ok && i + 1 < nkv; i += 2) {
		struct gw_str k = kv[i], v = kv[i + 1];
		if (field_is(k, "project")) {
			has_project = true;
			if (!routespec_project(v.p, v.len)) {
				why_value(err, errlen, "project", v,
					  "is not 1-63 of [a-z0-9_-]");
				ok = false;
				break;
			}
			memcpy(rt->project, v.p, v.len);
			rt->project[v.len] = '\0';
		} else if (field_is(k, "visibility")) {
			/* Anything but an explicit "public" is private: a
			 * typo must not open a project. */
			has_vis = true;
			rt->private_ = !(v.len == 6 &&
					 memcmp(v.p, "public", 6) == 0);
		} else if (field_is(k, "upstream")) {
			ok = upstream_field(rt, v, err, errlen);
		} else if (field_is(k, "namespace")) {
			ok = name_field(&rt->namespace_, v, "namespace", false, err,
					 errlen);
		} else if (field_is(k, "deployment")) {
			ok = name_field(&rt->deployment, v, "deployment", true, err,
					 errlen);
		} else if (field_is(k, "service")) {
			ok = name_field(&rt->service, v, "service", false, err,
					 errlen);
		} else if (field_is(k, "port")) {
			ok = routespec_uint(v.p, v.len, 1, 65535, &n);
			if (ok)
				rt->port = (unsigned)n;
			else
				why_value(err, errlen, "port", v, "is not 1-65535");
		} else if (field_is(k, "idle_timeout")) {
			ok = routespec_uint(v.p, v.len, 0, ROUTESPEC_IDLE_MAX,
					    &n);
			if (ok)
				rt->idle_timeout_s = (unsigned)n;
			else
				why_value(err, errlen, "idle_timeout", v,
					  "is not 0-2592000 (seconds)");
		} else if (field_is(k, "max_replicas")) {
			ok = routespec_uint(v.p, v.len, 1, 1000, &n);
			if (ok)
				rt->max_replicas = (unsigned)n;
			else
				why_value(err, errlen, "max_replicas", v,
					  "is not 1-1000");
		}
	}
	/* Without a project field the id is the host's first label, which
	 * must then be a valid id itself: never a silently cut one. */
	if (ok && !has_project &&
	    !routespec_project(host, strcspn(host, "."))) {
		snprintf(err, errlen, "no project field, and the first label "
				      "is not a valid project id");
		ok = false;
	}
	/* The Service defaults to the Deployment's name, which can then only
	 * be one with no dots (Service names are labels). */
	if (ok && rt->deployment && !rt->service &&
	    !gw_dns_label(rt->deployment, strlen(rt->deployment))) {
		snprintf(err, errlen, "deployment '%s' cannot name the Service: "
				      "set the service field", rt->deployment);
		ok = false;
	}
	if (!ok) {
		route_free(rt);
		return NULL;
	}
	/* A hash without a visibility field is private too (fail closed). */
	if (!has_vis)
		rt->private_ = true;
	return rt;
}

struct route *routeparse_hgetall(const char *host, const struct redisReply *r,
				 char *err, size_t errlen)
{
	struct gw_str *kv = gw_xcalloc(r->elements ? r->elements : 1, sizeof(*kv));
	size_t n = 0;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];
		if (v->type != REDIS_REPLY_STRING)
			continue;
		kv[n++] = k->type == REDIS_REPLY_STRING ? gw_str_make(k->str, k->len)
							: GW_STR_NULL;
		kv[n++] = gw_str_make(v->str, v->len);
	}
	struct route *rt = routeparse(host, kv, n, err, errlen);
	free(kv);
	return rt;
}

enum routeparse_event_kind routeparse_event(const char *msg, size_t len,
					    struct routeparse_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	const char *sp = memchr(msg, ' ', len);
	size_t klen = sp ? (size_t)(sp - msg) : len;
	size_t nlen = sp ? len - klen - 1 : 0;
	gw_log_escape(ev->shown, sizeof(ev->shown), msg, klen > 24 ? 24 : klen);
	if (sp && klen == 5 && memcmp(msg, "route", 5) == 0) {
		ev->host = gw_str_make(sp + 1, nlen);
		return ROUTEPARSE_EVENT_ROUTE;
	}
	if (!sp || klen == 0 || nlen == 0 || klen >= sizeof(ev->kind) ||
	    nlen >= sizeof(ev->name) || memchr(msg, '\0', len))
		return ROUTEPARSE_EVENT_MALFORMED;
	memcpy(ev->kind, msg, klen);
	memcpy(ev->name, sp + 1, nlen);
	return ROUTEPARSE_EVENT_OTHER;
}
