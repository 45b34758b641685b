/* stats_int.h - private to core/stats.c and core/stats_snap.c: how the
 * registry feeds snapshots. Never included from outside gateway/core/stats*.
 */
#ifndef GW_CORE_STATS_INT_H
#define GW_CORE_STATS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/stats.h"

/* What identifies a family; two sources that disagree on anything but the
 * help text are kept apart by refusing the second (logged once). */
struct snap_famdef {
	const char *name;
	const char *help;
	enum stats_type type;
	const char *key_label; /* NULL unless keyed */
	uint64_t divisor;      /* >= 1 */
	size_t nbounds;        /* histograms */
	const uint64_t *le;    /* histograms */
};

#define SNAP_NO_FAMILY ((size_t)-1)

/* Index of the family (created when new), or SNAP_NO_FAMILY when an
 * existing family of that name has another type, key or buckets. */
size_t snap_family(struct stats_snap *s, const struct snap_famdef *d);

/* Number of values a series of this family carries. */
size_t snap_family_arity(const struct stats_snap *s, size_t fam);

/* Add nv values (the family's arity) to the series (fam, key, labels),
 * creating it. key is capped through the snapshot's admission set. */
void snap_add_values(struct stats_snap *s, size_t fam, const char *key,
		     size_t keylen, const char *labels, const uint64_t *v);

/* Admission: *idx = the key's position in admission order (stable), after
 * admitting it if there is room. False when the key is not (and cannot be)
 * admitted: full, too long, or not printable ASCII. "_other" is never
 * admitted: callers route it to their overflow row. */
bool stats_admit_index(struct stats_admit *a, const char *key, size_t len,
		       size_t *idx);
/* The key at position idx (NUL-terminated, owned by the set). */
const char *stats_admit_key(const struct stats_admit *a, size_t idx);

#endif
