/* stats.c - the registry: modules' tables, keyed (per-project) tables,
 * histograms, and reading everything into a snapshot. */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "core/stats.h"
#include "core/stats_int.h"
#include "core/compat.h"

#define US(ms) ((uint64_t)((ms) * 1000))

const struct stats_buckets stats_buckets_latency_us = {
	.divisor = 1000000,
	.n = 14,
	.le = {US(1), US(2.5), US(5), US(10), US(25), US(50), US(100),
	       US(250), US(500), US(1000), US(2500), US(5000), US(10000),
	       US(60000)},
};

const struct stats_buckets stats_buckets_activation_us = {
	.divisor = 1000000,
	.n = 12,
	.le = {US(50), US(100), US(250), US(500), US(1000), US(2000),
	       US(5000), US(10000), US(30000), US(60000), US(180000),
	       US(600000)},
};

#undef US

void stats_hist_observe(struct stats_hist *h, const struct stats_buckets *b,
			uint64_t v)
{
	size_t i = 0;
	while (i < b->n && v > b->le[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum += v;
}

struct stats_reg {
	TAILQ_ENTRY(stats_reg) link;  /* in stats.regs, registration order */
	struct stats *s;
	const struct stats_table *t;
	void *obj;                     /* plain registration, or NULL */
	struct stats_keyed *keyed;     /* keyed registration, or NULL */
	char *labels;                  /* rendered pairs, "" when none */
	char **row_labels;             /* per table row: labels plus the row's
					  constant label, or NULL = labels */
};

struct stats_keyed {
	struct stats_reg *reg;
	char *key_label;
	struct stats_admit *admit;     /* row i belongs to admitted key i */
	void **rows;                   /* max_keys slots */
	void *other;                   /* the "_other" row */
	bool other_used;               /* render _other only once it counts */
};

struct stats {
	unsigned max_keys;
	TAILQ_HEAD(, stats_reg) regs;
};

struct stats *stats_create(unsigned max_keys)
{
	struct stats *s = gw_xcalloc(1, sizeof(*s));
	s->max_keys = max_keys;
	TAILQ_INIT(&s->regs);
	return s;
}

void stats_destroy(struct stats *s)
{
	if (!s)
		return;
	struct stats_reg *r;
	while ((r = TAILQ_FIRST(&s->regs))) {
		if (r->keyed)
			stats_keyed_destroy(r->keyed);
		else
			stats_unregister(r);
	}
	free(s);
}

/* Programming errors in a static table: caught on the first run of any
 * test, so aborting with the row's name is the clearest report. */
static _Noreturn void table_bug(const char *what, const char *name)
{
	fprintf(stderr, "gateway: stats table bug: %s: %s\n", what,
		name ? name : "(null)");
	abort();
}

static void check_table(const struct stats_table *t)
{
	for (size_t i = 0; t->labels && t->labels[i]; i++)
		if (!stats_valid_label_name(t->labels[i]) ||
		    strcmp(t->labels[i], "le") == 0)
			table_bug("bad label name", t->labels[i]);
	for (size_t i = 0; i < t->nmetrics; i++) {
		const struct stats_metric *m = &t->metrics[i];
		size_t n = m->name ? strlen(m->name) : 0;
		if (!stats_valid_metric_name(m->name) || !m->help)
			table_bug("bad metric name or no help", m->name);
		if (m->type == STATS_COUNTER && n > 6 &&
		    strcmp(m->name + n - 6, "_total") == 0)
			table_bug("counter named *_total (the renderer adds it)",
				  m->name);
		if (m->divisor && !stats_pow10(m->divisor))
			table_bug("divisor not a power of ten", m->name);
		if (m->label && (!stats_valid_label_name(m->label) ||
				 !m->label_value))
			table_bug("bad row label", m->name);
		if (m->type != STATS_HISTOGRAM)
			continue;
		const struct stats_buckets *b = m->buckets;
		if (!b || b->n == 0 || b->n > STATS_HIST_MAX_BUCKETS ||
		    !stats_pow10(b->divisor))
			table_bug("histogram without valid buckets", m->name);
		for (size_t k = 1; k < b->n; k++)
			if (b->le[k] <= b->le[k - 1])
				table_bug("bucket bounds not ascending", m->name);
	}
}

static struct evbuffer *buf_new(void)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		gw_oom(sizeof(void *));
	return b;
}

/* The buffer's bytes as a new C string; frees the buffer. */
static char *buf_take(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *out = gw_xmalloc(n + 1);
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	evbuffer_free(b);
	return out;
}

static char *render_labels(const struct stats_table *t,
			   const char *const *values)
{
	struct evbuffer *b = buf_new();
	for (size_t i = 0; t->labels && t->labels[i]; i++) {
		evbuffer_add_printf(b, "%s%s=\"", i ? "," : "", t->labels[i]);
		stats_escape_label(b, values[i] ? values[i] : "");
		evbuffer_add(b, "\"", 1);
	}
	return buf_take(b);
}

static struct stats_reg *reg_new(struct stats *s, const struct stats_table *t,
				 const char *const *label_values)
{
	check_table(t);
	struct stats_reg *r = gw_xcalloc(1, sizeof(*r));
	r->s = s;
	r->t = t;
	r->labels = render_labels(t, label_values);
	r->row_labels = gw_xcalloc(t->nmetrics ? t->nmetrics : 1,
				   sizeof(*r->row_labels));
	for (size_t i = 0; i < t->nmetrics; i++) {
		const struct stats_metric *m = &t->metrics[i];
		if (!m->label)
			continue;
		/* Values come from static tables, but one escaping rule for
		 * every label value. */
		struct evbuffer *e = buf_new();
		evbuffer_add_printf(e, "%s%s%s=\"", r->labels,
				    *r->labels ? "," : "", m->label);
		stats_escape_label(e, m->label_value);
		evbuffer_add(e, "\"", 1);
		r->row_labels[i] = buf_take(e);
	}
	TAILQ_INSERT_TAIL(&s->regs, r, link);
	return r;
}

struct stats_reg *stats_register(struct stats *s, const struct stats_table *t,
				 void *obj, const char *const *label_values)
{
	struct stats_reg *r = reg_new(s, t, label_values);
	r->obj = obj;
	return r;
}

void stats_unregister(struct stats_reg *r)
{
	if (!r)
		return;
	TAILQ_REMOVE(&r->s->regs, r, link);
	for (size_t i = 0; i < r->t->nmetrics; i++)
		free(r->row_labels[i]);
	free(r->row_labels);
	free(r->labels);
	free(r);
}

struct stats_keyed *stats_keyed_create(struct stats *s,
				       const struct stats_table *t,
				       const char *key_label,
				       const char *const *label_values)
{
	if (!stats_valid_label_name(key_label) || t->row_size == 0)
		table_bug("keyed table without key label or row size",
			  key_label);
	struct stats_keyed *k = gw_xcalloc(1, sizeof(*k));
	k->reg = reg_new(s, t, label_values);
	k->reg->keyed = k;
	k->key_label = gw_xstrdup(key_label);
	k->admit = stats_admit_create(s->max_keys);
	k->rows = gw_xcalloc(s->max_keys ? s->max_keys : 1, sizeof(*k->rows));
	k->other = gw_xcalloc(1, t->row_size);
	return k;
}

void *stats_keyed_row(struct stats_keyed *k, const char *key, size_t len)
{
	size_t i;
	if (!stats_admit_index(k->admit, key, len, &i)) {
		k->other_used = true;
		return k->other;
	}
	if (!k->rows[i])
		k->rows[i] = gw_xcalloc(1, k->reg->t->row_size);
	return k->rows[i];
}

void stats_keyed_destroy(struct stats_keyed *k)
{
	if (!k)
		return;
	for (unsigned i = 0; i < k->reg->s->max_keys; i++)
		free(k->rows[i]);
	free(k->rows);
	free(k->other);
	stats_admit_destroy(k->admit);
	free(k->key_label);
	stats_unregister(k->reg);
	free(k);
}

/* ---- reading -------------------------------------------------------------------- */

/* Add one object's (or keyed row's) values for every row of the table. */
static void collect_obj(struct stats_snap *snap, const struct stats_reg *r,
			const char *key_label, const char *key,
			const void *obj)
{
	const struct stats_table *t = r->t;
	for (size_t i = 0; i < t->nmetrics; i++) {
		const struct stats_metric *m = &t->metrics[i];
		const struct stats_buckets *b = m->buckets;
		struct snap_famdef d = {
			.name = m->name, .help = m->help, .type = m->type,
			.key_label = key_label,
			.divisor = m->type == STATS_HISTOGRAM
					   ? b->divisor
					   : (m->divisor ? m->divisor : 1),
			.nbounds = m->type == STATS_HISTOGRAM ? b->n : 0,
			.le = m->type == STATS_HISTOGRAM ? b->le : NULL,
		};
		size_t fam = snap_family(snap, &d);
		if (fam == SNAP_NO_FAMILY)
			continue;
		const char *labels =
			r->row_labels[i] ? r->row_labels[i] : r->labels;
		const char *field = (const char *)obj + m->offset;
		uint64_t v[STATS_HIST_MAX_BUCKETS + 3];
		if (m->type == STATS_HISTOGRAM) {
			struct stats_hist h;
			memcpy(&h, field, sizeof(h));
			v[0] = h.count;
			v[1] = h.sum;
			for (size_t k = 0; k <= b->n; k++)
				v[2 + k] = h.bucket[k];
		} else {
			memcpy(&v[0], field, sizeof(v[0]));
		}
		snap_add_values(snap, fam, key, key ? strlen(key) : 0, labels, v);
	}
}

void stats_collect(struct stats *s, struct stats_snap *snap)
{
	struct stats_reg *r;
	TAILQ_FOREACH(r, &s->regs, link) {
		struct stats_keyed *k = r->keyed;
		if (!k) {
			if (r->t->refresh)
				r->t->refresh(r->obj);
			collect_obj(snap, r, NULL, NULL, r->obj);
			continue;
		}
		for (unsigned i = 0; i < s->max_keys; i++)
			if (k->rows[i])
				collect_obj(snap, r, k->key_label,
					    stats_admit_key(k->admit, i),
					    k->rows[i]);
		if (k->other_used)
			collect_obj(snap, r, k->key_label, STATS_KEY_OTHER,
				    k->other);
	}
}
