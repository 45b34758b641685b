/* procstats.h - process-level gauges, the Prometheus client libraries'
 * standard "process_*" set (so stock dashboards and alerts work), plus
 * gateway_build_info.
 *
 * Every process registers one (workers and the supervisor); its series
 * carry worker="<index>" (or "main" for the supervisor) so adding up the
 * processes' snapshots never mixes them.
 */
#ifndef GW_CORE_PROCSTATS_H
#define GW_CORE_PROCSTATS_H

#include <stdbool.h>

struct stats;
struct procstats;

/* worker: the label value. build_info: also register gateway_build_info
 * (only the process that answers scrapes should, or it would be counted
 * once per process). Opens /proc/self/statm and /proc/self/fd now, so a
 * scrape reads procfs without path lookups. Never NULL. */
struct procstats *procstats_create(struct stats *s, const char *worker,
				   bool build_info);

/* Unregister and close; NULL is fine. */
void procstats_destroy(struct procstats *p);

#endif
