/* metrics.c - Prometheus text format 0.0.4 from a stats snapshot.
 *
 * https://prometheus.io/docs/instrumenting/exposition_formats/: one
 * "# HELP" and one "# TYPE" line per family, all its samples together,
 * label values escaped (\\, \", \n), HELP text escaped (\\, \n).
 */
#include <event2/buffer.h>
#include <stdint.h>

#include "metrics.h"
#include "core/stats.h"
#include "core/compat.h"

static const char *const type_names[STATS_TYPE_COUNT] = {
	[STATS_COUNTER] = "counter",
	[STATS_GAUGE] = "gauge",
	[STATS_HISTOGRAM] = "histogram",
};

/* name{key="k",labels,extra} -- any part may be absent. */
static void sample_name(struct evbuffer *out, const char *name,
			const char *suffix, const struct stats_family_info *f,
			const struct stats_series_info *s, const char *le)
{
	evbuffer_add_printf(out, "%s%s", name, suffix);
	bool any = s->key || *s->labels || le;
	if (!any)
		return;
	evbuffer_add(out, "{", 1);
	const char *sep = "";
	if (s->key) {
		evbuffer_add_printf(out, "%s=\"", f->key_label);
		stats_escape_label(out, s->key);
		evbuffer_add(out, "\"", 1);
		sep = ",";
	}
	if (*s->labels) {
		evbuffer_add_printf(out, "%s%s", sep, s->labels);
		sep = ",";
	}
	if (le)
		evbuffer_add_printf(out, "%sle=\"%s\"", sep, le);
	evbuffer_add(out, "}", 1);
}

/* " VALUE\n" */
static void add_scaled(struct evbuffer *out, uint64_t v, uint64_t divisor)
{
	char num[STATS_NUM_MAX];
	stats_format_scaled(num, sizeof(num), v, divisor);
	evbuffer_add_printf(out, " %s\n", num);
}

static void render_histogram(struct evbuffer *out,
			     const struct stats_family_info *f,
			     const struct stats_series_info *s)
{
	uint64_t cum = 0;
	for (size_t k = 0; k <= f->nbounds; k++) {
		cum += s->v[2 + k];
		if (k == f->nbounds) {
			sample_name(out, f->name, "_bucket", f, s, "+Inf");
		} else {
			char le[STATS_NUM_MAX];
			stats_format_scaled(le, sizeof(le), f->le[k],
					    f->divisor);
			sample_name(out, f->name, "_bucket", f, s, le);
		}
		evbuffer_add_printf(out, " %llu\n", (unsigned long long)cum);
	}
	sample_name(out, f->name, "_sum", f, s, NULL);
	add_scaled(out, s->v[1], f->divisor);
	sample_name(out, f->name, "_count", f, s, NULL);
	evbuffer_add_printf(out, " %llu\n", (unsigned long long)s->v[0]);
}

void metrics_render(const struct stats_snap *snap, struct evbuffer *out)
{
	for (size_t i = 0; i < stats_snap_nfamilies(snap); i++) {
		struct stats_family_info f;
		stats_snap_family(snap, i, &f);
		if (f.nseries == 0)
			continue;
		const char *suffix = f.type == STATS_COUNTER ? "_total" : "";
		evbuffer_add_printf(out, "# HELP %s%s ", f.name, suffix);
		stats_escape_help(out, f.help);
		evbuffer_add_printf(out, "\n# TYPE %s%s %s\n", f.name, suffix,
				    type_names[f.type]);
		for (size_t j = 0; j < f.nseries; j++) {
			struct stats_series_info s;
			stats_snap_series(snap, i, j, &s);
			if (f.type == STATS_HISTOGRAM) {
				render_histogram(out, &f, &s);
				continue;
			}
			sample_name(out, f.name, suffix, &f, &s, NULL);
			add_scaled(out, s.v[0], f.divisor);
		}
	}
}
