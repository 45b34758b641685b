/* activator_stats.c - the activator's counters (docs/operations.md,
 * "Metrics"): activations and how they ended, their duration, scale-downs,
 * holds (queued, timed out, refused at the limit, held now) and projects
 * by state. The transitions are counted from the one transition function
 * (act_stats_transition); the holds where hold.c decides. */
#include <stddef.h>

#include "activator_int.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/compat.h"

static void act_refresh(void *obj);

#define AS(f) offsetof(struct act_stats, f)
#define RESULT_HELP                                                           \
	"Activations (wakes) that ended here, by result: ready, failed (the "  \
	"wake call failed or the app died starting), timeout (wake_timeout)."
#define STATE_HELP "Projects this process knows, by state."
static const struct stats_metric act_metrics[] = {
	{"gateway_activations", RESULT_HELP, STATS_COUNTER, AS(wakes_ready),
	 .label = "result", .label_value = "ready"},
	{"gateway_activations", RESULT_HELP, STATS_COUNTER, AS(wakes_failed),
	 .label = "result", .label_value = "failed"},
	{"gateway_activations", RESULT_HELP, STATS_COUNTER, AS(wakes_timeout),
	 .label = "result", .label_value = "timeout"},
	{"gateway_activations_started",
	 "Activations (wakes) started here, pre-wakes included.", STATS_COUNTER,
	 AS(wakes)},
	{"gateway_activation_duration_seconds",
	 "From a wake's start to the app's first accepted connection (ready "
	 "activations only).",
	 STATS_HISTOGRAM, AS(wake_duration),
	 .buckets = &stats_buckets_activation_us},
	{"gateway_scale_downs",
	 "Apps this process stopped or scaled to zero (idle, or for the "
	 "fleet).",
	 STATS_COUNTER, AS(stops)},
	{"gateway_scale_down_failures",
	 "Stops or scale-downs that failed (the app keeps running).",
	 STATS_COUNTER, AS(stop_failures)},
	{"gateway_held_requests", "Requests held for a waking app now.",
	 STATS_GAUGE, AS(held)},
	{"gateway_holds", "Requests held for a waking app.", STATS_COUNTER,
	 AS(holds)},
	{"gateway_hold_timeouts",
	 "Held requests answered 503 after [activator] hold_timeout.",
	 STATS_COUNTER, AS(hold_timeouts)},
	{"gateway_hold_rejections",
	 "Requests answered 503 at once: the hold queue was full "
	 "(hold_max_per_project or hold_max).",
	 STATS_COUNTER, AS(hold_rejections)},
	{"gateway_projects", STATE_HELP, STATS_GAUGE, AS(state[ACT_COLD]),
	 .label = "state", .label_value = "cold"},
	{"gateway_projects", STATE_HELP, STATS_GAUGE, AS(state[ACT_WAKING]),
	 .label = "state", .label_value = "waking"},
	{"gateway_projects", STATE_HELP, STATS_GAUGE, AS(state[ACT_WARM]),
	 .label = "state", .label_value = "warm"},
	{"gateway_projects", STATE_HELP, STATS_GAUGE, AS(state[ACT_DRAINING]),
	 .label = "state", .label_value = "draining"},
};
#undef STATE_HELP
#undef RESULT_HELP
#undef AS
static const struct stats_table act_table = {
	.metrics = act_metrics,
	.nmetrics = GW_ARRAY_LEN(act_metrics),
	.refresh = act_refresh,
};

/* Gauges: a walk over the project table (as long as the reaper's). */
static void act_refresh(void *obj)
{
	struct activator *a =
		gw_container_of((struct act_stats *)obj, struct activator, st);
	for (size_t s = 0; s < ACT_STATE_COUNT; s++)
		a->st.state[s] = 0;
	for (size_t i = 0; i < a->nbuckets; i++)
		for (struct act_project *p = a->buckets[i]; p; p = p->next)
			a->st.state[p->state]++;
	a->st.held = a->nholds;
}

void activator_stats_register(struct activator *a, struct stats *s)
{
	a->reg = stats_register(s, &act_table, &a->st, NULL);
}

void act_stats_unregister(struct activator *a)
{
	stats_unregister(a->reg);
	a->reg = NULL;
}

void act_stats_transition(struct act_project *p, enum act_state from,
			  enum act_state to, enum act_event ev)
{
	struct act_stats *st = &p->a->st;
	if (from == ACT_WAKING && to != ACT_WAKING) {
		if (to == ACT_WARM) {
			st->wakes_ready++;
			uint64_t ms = gw_now_ms() - p->wake_start_ms;
			stats_hist_observe(&st->wake_duration,
					   &stats_buckets_activation_us,
					   ms * 1000);
		} else if (ev == AE_WAKE_TIMEOUT) {
			st->wakes_timeout++;
		} else if (ev == AE_WAKE_FAILED || ev == AE_EXITED) {
			st->wakes_failed++;
		}
		/* else: abandoned or retargeted, nobody waited for a result */
	}
	if (to == ACT_WAKING && from != ACT_WAKING)
		st->wakes++;
	if (from == ACT_DRAINING && ev == AE_STOPPED)
		st->stops++;
	if (from == ACT_DRAINING && ev == AE_STOP_FAILED)
		st->stop_failures++;
}
