/* authcache.c - (session, project) -> decision, with per-session and
 * per-project indexes. */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "authcache.h"
#include "core/compat.h"

#define BUCKETS_MIN 64

struct entry;
LIST_HEAD(entry_list, entry);

/* Every decision of one session, or of one project; owns the key. */
struct group {
	struct group *next;       /* hash chain */
	struct entry_list entries;
	uint64_t hash;
	size_t len;
	char key[];               /* NUL-terminated */
};

struct entry {
	struct entry *next;       /* hash chain */
	TAILQ_ENTRY(entry) age;   /* oldest first, for eviction */
	LIST_ENTRY(entry) in_sid, in_project;
	struct group *sid, *project;
	uint64_t hash;            /* of (sid, project) */
	uint64_t expires_ms;
	int decision;
};
TAILQ_HEAD(age_list, entry);

/* A chained hash table that doubles up to a cap (both powers of two). */
struct table {
	void **bucket;
	size_t nbuckets, cap, count;
};

struct authcache {
	struct table entries, sids, projects;
	struct age_list by_age;
	size_t max;
	uint64_t seed;
};

/* FNV-1a over the seed and the bytes, then a 64-bit finaliser (murmur3
 * fmix64) so that every bit of the seed reaches the bucket index. */
static uint64_t mix(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static uint64_t fin(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t hash1(const struct authcache *c, const char *k, size_t n)
{
	return fin(mix(c->seed ^ 1469598103934665603ULL, k, n));
}

static uint64_t hash2(const struct authcache *c, const char *sid,
		      size_t sn, const char *project, size_t pn)
{
	uint64_t h = mix(c->seed ^ 1469598103934665603ULL, sid, sn);
	h = (h ^ 0x100) * 1099511628211ULL; /* separator no byte can fake */
	return fin(mix(h, project, pn));
}

static size_t pow2_at_least(size_t n)
{
	size_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

static void table_init(struct table *t, size_t max)
{
	t->cap = pow2_at_least(max);
	t->nbuckets = t->cap < BUCKETS_MIN ? t->cap : BUCKETS_MIN;
	t->bucket = gw_xcalloc(t->nbuckets, sizeof(*t->bucket));
	t->count = 0;
}

/* ---- groups ---------------------------------------------------------------- */

static struct group **group_slot(struct table *t, const char *key, size_t len,
				 uint64_t h)
{
	struct group **pp = (struct group **)&t->bucket[h & (t->nbuckets - 1)];
	while (*pp && ((*pp)->hash != h || (*pp)->len != len ||
		       memcmp((*pp)->key, key, len) != 0))
		pp = &(*pp)->next;
	return pp;
}

static void group_grow(struct table *t)
{
	size_t n = t->nbuckets * 2;
	void **b = gw_xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct group *g = t->bucket[i], *next;
		for (; g; g = next) {
			next = g->next;
			g->next = b[g->hash & (n - 1)];
			b[g->hash & (n - 1)] = g;
		}
	}
	free(t->bucket);
	t->bucket = b;
	t->nbuckets = n;
}

static struct group *group_get(struct authcache *c, struct table *t,
			       const char *key)
{
	size_t len = strlen(key);
	uint64_t h = hash1(c, key, len);
	struct group **pp = group_slot(t, key, len, h);
	if (*pp)
		return *pp;
	struct group *g = gw_xcalloc(1, sizeof(*g) + len + 1);
	memcpy(g->key, key, len + 1);
	g->len = len;
	g->hash = h;
	LIST_INIT(&g->entries);
	*pp = g;
	if (++t->count > t->nbuckets && t->nbuckets < t->cap)
		group_grow(t);
	return g;
}

static struct group *group_find(struct authcache *c, struct table *t,
				const char *key)
{
	size_t len = strlen(key);
	return *group_slot(t, key, len, hash1(c, key, len));
}

/* Free g once its last entry has gone. */
static void group_put(struct table *t, struct group *g)
{
	if (!LIST_EMPTY(&g->entries))
		return;
	struct group **pp = group_slot(t, g->key, g->len, g->hash);
	*pp = g->next;
	t->count--;
	explicit_bzero(g->key, g->len); /* may be a session id */
	free(g);
}

/* ---- entries --------------------------------------------------------------- */

static struct entry **entry_slot(struct authcache *c, struct group *sid,
				 struct group *project, uint64_t h)
{
	struct table *t = &c->entries;
	struct entry **pp = (struct entry **)&t->bucket[h & (t->nbuckets - 1)];
	while (*pp && ((*pp)->sid != sid || (*pp)->project != project))
		pp = &(*pp)->next;
	return pp;
}

static void entry_grow(struct table *t)
{
	size_t n = t->nbuckets * 2;
	void **b = gw_xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct entry *e = t->bucket[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(t->bucket);
	t->bucket = b;
	t->nbuckets = n;
}

static void entry_drop(struct authcache *c, struct entry *e)
{
	struct entry **pp = entry_slot(c, e->sid, e->project, e->hash);
	*pp = e->next;
	c->entries.count--;
	TAILQ_REMOVE(&c->by_age, e, age);
	LIST_REMOVE(e, in_sid);
	LIST_REMOVE(e, in_project);
	group_put(&c->sids, e->sid);
	group_put(&c->projects, e->project);
	free(e);
}

/* The entry for (sid, project) if both groups exist, else NULL. */
static struct entry *entry_find(struct authcache *c, const char *sid,
				const char *project)
{
	struct group *gs = group_find(c, &c->sids, sid);
	struct group *gp = gs ? group_find(c, &c->projects, project) : NULL;
	if (!gp)
		return NULL;
	return *entry_slot(c, gs, gp,
			   hash2(c, sid, gs->len, project, gp->len));
}

/* ---- API ------------------------------------------------------------------- */

struct authcache *authcache_create(size_t max, uint64_t seed)
{
	struct authcache *c = gw_xcalloc(1, sizeof(*c));
	c->max = max ? max : 1;
	c->seed = seed;
	table_init(&c->entries, c->max);
	table_init(&c->sids, c->max);
	table_init(&c->projects, c->max);
	TAILQ_INIT(&c->by_age);
	return c;
}

void authcache_put(struct authcache *c, const char *sid, const char *project,
		   int decision, uint64_t expires_ms)
{
	struct entry *old = entry_find(c, sid, project);
	if (old)
		entry_drop(c, old);
	if (c->entries.count >= c->max)
		entry_drop(c, TAILQ_FIRST(&c->by_age));
	struct entry *e = gw_xcalloc(1, sizeof(*e));
	e->sid = group_get(c, &c->sids, sid);
	e->project = group_get(c, &c->projects, project);
	e->hash = hash2(c, sid, e->sid->len, project, e->project->len);
	e->decision = decision;
	e->expires_ms = expires_ms;
	LIST_INSERT_HEAD(&e->sid->entries, e, in_sid);
	LIST_INSERT_HEAD(&e->project->entries, e, in_project);
	TAILQ_INSERT_TAIL(&c->by_age, e, age);
	struct entry **pp = entry_slot(c, e->sid, e->project, e->hash);
	e->next = *pp;
	*pp = e;
	struct table *t = &c->entries;
	if (++t->count > t->nbuckets && t->nbuckets < t->cap)
		entry_grow(t);
}

bool authcache_get(struct authcache *c, const char *sid, const char *project,
		   uint64_t now_ms, int *decision)
{
	struct entry *e = entry_find(c, sid, project);
	if (!e)
		return false;
	if (e->expires_ms <= now_ms) {
		entry_drop(c, e);
		return false;
	}
	*decision = e->decision;
	return true;
}

size_t authcache_drop_session(struct authcache *c, const char *sid)
{
	struct group *g = group_find(c, &c->sids, sid);
	size_t n = 0;
	/* The group is freed with its last entry: test before each drop. */
	while (g) {
		struct entry *e = LIST_FIRST(&g->entries);
		bool last = LIST_NEXT(e, in_sid) == NULL;
		entry_drop(c, e);
		n++;
		if (last)
			break;
	}
	return n;
}

size_t authcache_drop_project(struct authcache *c, const char *project)
{
	struct group *g = group_find(c, &c->projects, project);
	size_t n = 0;
	while (g) {
		struct entry *e = LIST_FIRST(&g->entries);
		bool last = LIST_NEXT(e, in_project) == NULL;
		entry_drop(c, e);
		n++;
		if (last)
			break;
	}
	return n;
}

void authcache_clear(struct authcache *c)
{
	while (!TAILQ_EMPTY(&c->by_age))
		entry_drop(c, TAILQ_FIRST(&c->by_age));
}

size_t authcache_count(const struct authcache *c)
{
	return c->entries.count;
}

size_t authcache_buckets(const struct authcache *c)
{
	return c->entries.nbuckets;
}

void authcache_destroy(struct authcache *c)
{
	if (!c)
		return;
	authcache_clear(c);
	free(c->entries.bucket);
	free(c->sids.bucket);
	free(c->projects.bucket);
	free(c);
}
