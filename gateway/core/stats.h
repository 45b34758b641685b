/* stats.h - counters, gauges and histograms, registered by the modules that
 * own them (style practice 14: counters live with their module; metrics.c
 * only renders).
 *
 * A module describes its metrics once, in a static table beside its code,
 * and keeps the values as plain uint64_t fields of one of its own structs.
 * It increments them with `x->st.accepted++`: no locks, no atomics, no
 * calls, because one worker process runs one loop and the registry is read
 * on that same loop.
 *
 *     struct listener_stats { uint64_t accepted; uint64_t backoffs; };
 *     static const struct stats_metric listener_metrics[] = {
 *         {"gateway_listener_accepted_connections", "Connections accepted.",
 *          STATS_COUNTER, offsetof(struct listener_stats, accepted)},
 *         ...
 *     };
 *     static const char *const listener_labels[] = {"listener", NULL};
 *     static const struct stats_table listener_table = {
 *         .labels = listener_labels, .metrics = listener_metrics,
 *         .nmetrics = GW_ARRAY_LEN(listener_metrics),
 *     };
 *     l->reg = stats_register(stats, &listener_table, &l->st,
 *                             (const char *[]){l->addr.text});
 *
 * Several registrations of one table (one per listener) become one metric
 * family told apart by their label values. Per-project series go through a
 * keyed table (stats_keyed_*), which caps how many distinct projects get a
 * series of their own (config: [admin] metrics_max_projects); the others
 * are added up in project="_other", so a scrape stays bounded however many
 * apps the gateway fronts.
 *
 * Reading: stats_collect() adds every registration's current values into a
 * snapshot (struct stats_snap). Snapshots from several worker processes are
 * merged by adding values of the same series (stats_snap_merge_encoded), so
 * series that are per process (RSS, start time) carry a "worker" label to
 * keep them apart. gateway/metrics.c turns a snapshot into Prometheus text.
 *
 * Naming (checked at registration): a family name follows Prometheus
 * conventions - "gateway_" prefix, base units (seconds, bytes) in the name,
 * counters WITHOUT the "_total" suffix (the renderer adds it).
 */
#ifndef GW_CORE_STATS_H
#define GW_CORE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct stats;
struct stats_reg;
struct stats_keyed;
struct stats_snap;

enum stats_type {
	STATS_COUNTER = 0, /* only goes up; rendered NAME_total */
	STATS_GAUGE,       /* goes up and down */
	STATS_HISTOGRAM,   /* struct stats_hist with fixed buckets */
	STATS_TYPE_COUNT
};

/* Most finite buckets a histogram may have (+Inf comes on top). */
#define STATS_HIST_MAX_BUCKETS 20
/* Longest key (project name) that gets a series of its own; longer ones, and
 * keys with bytes outside printable ASCII, are counted in "_other". */
#define STATS_KEY_MAX 128
/* The key every project beyond the cap is added to. */
#define STATS_KEY_OTHER "_other"

/* Fixed bucket bounds. Values are observed in integer units; divisor says
 * how many make one base unit (1000000: microseconds -> seconds). */
struct stats_buckets {
	uint64_t divisor;                  /* >= 1 */
	size_t n;                          /* finite bounds, 1..MAX */
	uint64_t le[STATS_HIST_MAX_BUCKETS]; /* ascending upper bounds */
};

/* Upstream latency (request sent -> response head), in microseconds:
 * 1ms ... 60s. */
extern const struct stats_buckets stats_buckets_latency_us;
/* Activation (wake -> ready), in microseconds: 50ms ... 10min. */
extern const struct stats_buckets stats_buckets_activation_us;

/* A histogram's storage, embedded in the module's struct. Zero is empty.
 * Always: count == sum of bucket[0..n]. bucket[i] counts observations in
 * (le[i-1], le[i]]; bucket[n] those above the last bound. */
struct stats_hist {
	uint64_t count;
	uint64_t sum;                               /* observed units */
	uint64_t bucket[STATS_HIST_MAX_BUCKETS + 1]; /* not cumulative */
};

/* Record one observation. b must be the buckets of the histogram's table
 * row. */
void stats_hist_observe(struct stats_hist *h, const struct stats_buckets *b,
			uint64_t v);

/* One row of a module's table. */
struct stats_metric {
	const char *name;     /* family name, e.g. "gateway_listener_accepted_
				 connections" (no _total) */
	const char *help;     /* one line, plain text */
	enum stats_type type;
	size_t offset;        /* of the uint64_t / struct stats_hist in the
				 registered object (or keyed row) */
	const struct stats_buckets *buckets; /* histograms only */
	uint64_t divisor;     /* counters/gauges: units per base unit, 0 = 1
				 (CPU time kept in microseconds -> seconds) */
	const char *label;    /* optional constant label of this row ("code") */
	const char *label_value; /* its value ("2xx"); rows of one family
				    differing only here are one family */
};

/* A module's static description. */
struct stats_table {
	const char *const *labels; /* NULL-terminated names every registration
				      gives values for; NULL = none */
	const struct stats_metric *metrics;
	size_t nmetrics;
	/* Called on the loop just before a registration is read (once per
	 * snapshot): bring gauges in obj up to date. NULL = fields are always
	 * current. Must not block (no I/O other than procfs). */
	void (*refresh)(void *obj);
	size_t row_size; /* keyed tables: bytes of one row struct */
};

/* Registry of one process (one loop). max_keys: distinct keys a keyed table
 * gives a series of their own before "_other" (0: every key is _other). */
struct stats *stats_create(unsigned max_keys);
/* Frees the registry and any registration still in it; NULL is fine.
 * Registered objects are not touched. */
void stats_destroy(struct stats *s);

/* Register obj, read through table t; label_values has one value per name
 * in t->labels (copied). t and obj must outlive the registration. A table
 * that breaks the naming rules is a programming error: the process aborts
 * with a message naming the row (caught by the first test run). Never
 * NULL. */
struct stats_reg *stats_register(struct stats *s, const struct stats_table *t,
				 void *obj, const char *const *label_values);
/* Remove a registration (before its object is freed); NULL is fine. */
void stats_unregister(struct stats_reg *r);

/* A keyed table: one row (a zeroed struct of t->row_size bytes) per key,
 * rendered with key_label="key" in front of the table's labels. Keys are
 * admitted first come, first served up to the registry's max_keys and stay
 * admitted for the table's life, so a series never changes name under a
 * running counter. */
struct stats_keyed *stats_keyed_create(struct stats *s,
				       const struct stats_table *t,
				       const char *key_label,
				       const char *const *label_values);
/* The row for key (len bytes), or the "_other" row. Never NULL; the
 * pointer stays valid until stats_keyed_destroy, so callers may keep it. */
void *stats_keyed_row(struct stats_keyed *k, const char *key, size_t len);
/* Unregister and free every row; NULL is fine. */
void stats_keyed_destroy(struct stats_keyed *k);

/* ---- snapshots ------------------------------------------------------------ */

/* An owned copy of values, mergeable and renderable. max_keys caps distinct
 * keys per keyed family as series are added (a supervisor merging workers
 * that each admitted their own projects); 0 = no cap here. The cap is
 * applied through an admission set the caller keeps across snapshots
 * (stats_admit), so that the same projects keep their own series. */
struct stats_admit;
struct stats_admit *stats_admit_create(unsigned max_keys);
void stats_admit_destroy(struct stats_admit *a);

/* admit: NULL, or a set the snapshot uses to cap keys (not owned). */
struct stats_snap *stats_snap_create(struct stats_admit *admit);
void stats_snap_destroy(struct stats_snap *snap);

/* Add every registration's current values to snap (calling refresh
 * callbacks first). */
void stats_collect(struct stats *s, struct stats_snap *snap);

/* Serialise for another process (line-oriented text, see stats_snap.c). */
void stats_snap_encode(const struct stats_snap *snap, struct evbuffer *out);
/* Parse an encoded snapshot and add it to snap. Returns 0, or -1 with a
 * static reason (snap then holds whatever came before the bad line). */
int stats_snap_merge_encoded(struct stats_snap *snap, const char *buf,
			     size_t len, const char **err);

/* Read access for the renderer. Families come in first-seen order; series
 * of a family in first-seen order. */
struct stats_family_info {
	const char *name;
	const char *help;
	enum stats_type type;
	const char *key_label; /* NULL unless keyed */
	uint64_t divisor;      /* units per base unit (>= 1) */
	size_t nbounds;        /* histograms: finite bounds */
	const uint64_t *le;    /* histograms: bounds */
	size_t nseries;
};
struct stats_series_info {
	const char *key;    /* keyed families: the key (raw); else NULL */
	const char *labels; /* other labels, rendered and escaped:
			       a="x",b="y" ("" when none) */
	const uint64_t *v;  /* counter/gauge: v[0]; histogram: v[0] = count,
			       v[1] = sum, v[2 + i] = bucket[i], i <= nbounds */
};
size_t stats_snap_nfamilies(const struct stats_snap *snap);
void stats_snap_family(const struct stats_snap *snap, size_t i,
		       struct stats_family_info *out);
void stats_snap_series(const struct stats_snap *snap, size_t fam, size_t j,
		       struct stats_series_info *out);

/* Add one value directly (the supervisor's own gauges, tests). type and
 * help must match earlier series of the family. labels: rendered pairs
 * as above. */
void stats_snap_add(struct stats_snap *snap, const char *name,
		    const char *help, enum stats_type type, const char *labels,
		    uint64_t v);

/* ---- text helpers shared with the renderer ---------------------------- */

/* Append value escaped for a Prometheus label value: \ " and newline. */
void stats_escape_label(struct evbuffer *out, const char *value);
/* Append text escaped for a HELP line: \ and newline. */
void stats_escape_help(struct evbuffer *out, const char *help);
/* True for 1, 10, 100, ... (the divisors allowed). */
bool stats_pow10(uint64_t v);
/* Write v / divisor (a power of ten) as an exact decimal ("0.005", "12",
 * "1.5") into buf (STATS_NUM_MAX bytes suffice); returns its length. */
#define STATS_NUM_MAX 48
size_t stats_format_scaled(char *buf, size_t bufsz, uint64_t v,
			   uint64_t divisor);
/* True for [a-zA-Z_:][a-zA-Z0-9_:]* (metric) / [a-zA-Z_][a-zA-Z0-9_]* not
 * starting with "__" (label). */
bool stats_valid_metric_name(const char *s);
bool stats_valid_label_name(const char *s);

#endif
