/* routes.c - static route table: a sorted array searched by bsearch. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "routes.h"
#include "core/compat.h"

struct routes {
	struct route *v; /* sorted by host */
	size_t n;
};

static int cmp_route(const void *a, const void *b)
{
	const struct route *x = a, *y = b;
	return strcmp(x->host, y->host);
}

struct routes *routes_create_static(const struct config_route *r, size_t n)
{
	struct routes *rt = gw_xcalloc(1, sizeof(*rt));
	rt->v = gw_xcalloc(n, sizeof(*rt->v));
	rt->n = n;
	for (size_t i = 0; i < n; i++) {
		rt->v[i].host = gw_xstrdup(r[i].host);
		rt->v[i].addrs = gw_xcalloc(r[i].naddrs, sizeof(struct gw_addr));
		memcpy(rt->v[i].addrs, r[i].addrs,
		       r[i].naddrs * sizeof(struct gw_addr));
		rt->v[i].naddrs = r[i].naddrs;
	}
	qsort(rt->v, n, sizeof(*rt->v), cmp_route);
	return rt;
}

struct route *routes_lookup(struct routes *rt, const char *host)
{
	struct route key = {.host = (char *)host};
	return rt->n ? bsearch(&key, rt->v, rt->n, sizeof(*rt->v), cmp_route)
		     : NULL;
}

const struct gw_addr *route_pick(struct route *r)
{
	const struct gw_addr *a = &r->addrs[r->rr_next % r->naddrs];
	r->rr_next++;
	return a;
}

void routes_destroy(struct routes *rt)
{
	if (!rt)
		return;
	for (size_t i = 0; i < rt->n; i++) {
		free(rt->v[i].host);
		free(rt->v[i].addrs);
	}
	free(rt->v);
	free(rt);
}
