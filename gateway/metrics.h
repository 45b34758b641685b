/* metrics.h - Prometheus text exposition (format 0.0.4) of a snapshot.
 *
 * Renders only: the values come from core/stats registrations, collected
 * into a struct stats_snap by whoever serves the scrape (gateway/admin.c).
 * Counters are written NAME_total; histograms as NAME_bucket{le=...}
 * (cumulative, ending with le="+Inf"), NAME_sum and NAME_count; values with
 * a divisor as exact decimals in the base unit (seconds, bytes).
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

struct evbuffer;
struct stats_snap;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Append the whole exposition of snap to out. */
void metrics_render(const struct stats_snap *snap, struct evbuffer *out);

#endif
