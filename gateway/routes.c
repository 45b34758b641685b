/* routes.c - the route table: a chained hash for each layer. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "routes.h"
#include "core/compat.h"

struct layer {
	struct route **bucket;
	size_t nbuckets; /* power of two */
	size_t count;
};

struct routes {
	struct layer fixed;   /* config routes */
	struct layer dynamic; /* mirrored from Redis */
	uint64_t gen;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void layer_init(struct layer *l)
{
	l->nbuckets = 64;
	l->bucket = gw_xcalloc(l->nbuckets, sizeof(*l->bucket));
	l->count = 0;
}

static struct route **layer_slot(struct layer *l, const char *host)
{
	struct route **pp = &l->bucket[hash(host) & (l->nbuckets - 1)];
	while (*pp && strcmp((*pp)->host, host) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void layer_grow(struct layer *l)
{
	size_t n = l->nbuckets * 2;
	struct route **b = gw_xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < l->nbuckets; i++) {
		struct route *r = l->bucket[i], *next;
		for (; r; r = next) {
			next = r->next;
			struct route **pp = &b[hash(r->host) & (n - 1)];
			r->next = *pp;
			*pp = r;
		}
	}
	free(l->bucket);
	l->bucket = b;
	l->nbuckets = n;
}

/* Insert or replace; takes ownership of r. */
static void layer_put(struct layer *l, struct route *r)
{
	struct route **pp = layer_slot(l, r->host);
	if (*pp) {
		struct route *old = *pp;
		r->next = old->next;
		r->rr_next = old->rr_next; /* keep the rotation going */
		*pp = r;
		route_free(old);
		return;
	}
	r->next = NULL;
	*pp = r;
	if (++l->count > l->nbuckets)
		layer_grow(l);
}

static void layer_free(struct layer *l)
{
	for (size_t i = 0; i < l->nbuckets; i++) {
		struct route *r = l->bucket[i], *next;
		for (; r; r = next) {
			next = r->next;
			route_free(r);
		}
	}
	free(l->bucket);
}

struct route *route_new(const char *host)
{
	struct route *r = gw_xcalloc(1, sizeof(*r));
	r->host = gw_xstrdup(host);
	/* The project id defaults to the first label: app-xxxx.domain. */
	size_t n = strcspn(host, ".");
	if (n >= sizeof(r->project))
		n = sizeof(r->project) - 1;
	memcpy(r->project, host, n);
	r->project[n] = '\0';
	return r;
}

void route_free(struct route *r)
{
	if (!r)
		return;
	free(r->host);
	free(r->addrs);
	free(r->namespace_);
	free(r->deployment);
	free(r->service);
	free(r->exec_command);
	free(r);
}

static void layer_fill(struct layer *l, const struct config_route *cr,
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct route *r = route_new(cr[i].host);
		r->addrs = gw_xcalloc(cr[i].naddrs, sizeof(struct gw_addr));
		memcpy(r->addrs, cr[i].addrs,
		       cr[i].naddrs * sizeof(struct gw_addr));
		r->naddrs = cr[i].naddrs;
		if (cr[i].exec_command)
			r->exec_command = gw_xstrdup(cr[i].exec_command);
		layer_put(l, r);
	}
}

struct routes *routes_create_static(const struct config_route *cr, size_t n)
{
	struct routes *rt = gw_xcalloc(1, sizeof(*rt));
	layer_init(&rt->fixed);
	layer_init(&rt->dynamic);
	layer_fill(&rt->fixed, cr, n);
	return rt;
}

void routes_replace_static(struct routes *rt, const struct config_route *cr,
			   size_t n)
{
	layer_free(&rt->fixed);
	layer_init(&rt->fixed);
	layer_fill(&rt->fixed, cr, n);
}

struct route *routes_lookup(struct routes *rt, const char *host)
{
	struct route *r = *layer_slot(&rt->dynamic, host);
	return r ? r : *layer_slot(&rt->fixed, host);
}

static struct route *layer_find_project(struct layer *l, const char *project)
{
	for (size_t i = 0; i < l->nbuckets; i++)
		for (struct route *r = l->bucket[i]; r; r = r->next)
			if (strcmp(r->project, project) == 0)
				return r;
	return NULL;
}

struct route *routes_find_project(struct routes *rt, const char *project)
{
	struct route *r = layer_find_project(&rt->dynamic, project);
	return r ? r : layer_find_project(&rt->fixed, project);
}

const struct gw_addr *route_pick(struct route *r)
{
	if (r->naddrs == 0)
		return NULL;
	const struct gw_addr *a = &r->addrs[r->rr_next % r->naddrs];
	r->rr_next++;
	return a;
}

void routes_put(struct routes *rt, struct route *r)
{
	r->gen = rt->gen;
	layer_put(&rt->dynamic, r);
}

void routes_remove(struct routes *rt, const char *host)
{
	struct route **pp = layer_slot(&rt->dynamic, host);
	if (*pp) {
		struct route *r = *pp;
		*pp = r->next;
		route_free(r);
		rt->dynamic.count--;
	}
}

void routes_sync_begin(struct routes *rt)
{
	rt->gen++;
}

size_t routes_sync_end(struct routes *rt)
{
	size_t dropped = 0;
	struct layer *l = &rt->dynamic;
	for (size_t i = 0; i < l->nbuckets; i++) {
		struct route **pp = &l->bucket[i];
		while (*pp) {
			if ((*pp)->gen != rt->gen) {
				struct route *r = *pp;
				*pp = r->next;
				route_free(r);
				l->count--;
				dropped++;
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	return dropped;
}

size_t routes_dynamic_count(const struct routes *rt)
{
	return rt->dynamic.count;
}

void routes_destroy(struct routes *rt)
{
	if (!rt)
		return;
	layer_free(&rt->fixed);
	layer_free(&rt->dynamic);
	free(rt);
}
