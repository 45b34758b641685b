/* authcache.h - cached authorization decisions, keyed by (session, project).
 *
 * A bounded table with two indexes, so that each of its operations costs
 * what it touches: lookup and insert O(1) expected, dropping every
 * decision of one session or of one project O(decisions dropped) - an
 * invalidation event never scans the whole cache. The hash is seeded by
 * the caller (from a CSPRNG) so chain lengths cannot be steered by chosen
 * session ids. Buckets grow with the number of entries, never past what
 * max needs: an idle worker does not pay for cache_max up front.
 *
 * Pure: no clock (callers pass "now"), no I/O. Session ids are secrets:
 * their copies are wiped when dropped.
 *
 * Always true: count <= max; every entry is in exactly one session group
 * and one project group; a group exists only while it has entries.
 */
#ifndef GW_AUTHCACHE_H
#define GW_AUTHCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct authcache;

/* max >= 1 decisions. Never NULL (aborts on OOM). */
struct authcache *authcache_create(size_t max, uint64_t seed);
void authcache_destroy(struct authcache *c);

/* Store decision for (sid, project) until expires_ms, replacing an older
 * one; when full, the oldest entry goes first. Strings are copied. */
void authcache_put(struct authcache *c, const char *sid, const char *project,
		   int decision, uint64_t expires_ms);

/* The cached decision, if there is one that has not expired at now_ms
 * (an expired one is dropped). */
bool authcache_get(struct authcache *c, const char *sid, const char *project,
		   uint64_t now_ms, int *decision);

/* Drop every decision of a session, or of a project. Return how many. */
size_t authcache_drop_session(struct authcache *c, const char *sid);
size_t authcache_drop_project(struct authcache *c, const char *project);
void authcache_clear(struct authcache *c);

size_t authcache_count(const struct authcache *c);
/* Buckets of the decision table (for tests of its lazy growth). */
size_t authcache_buckets(const struct authcache *c);

#endif
