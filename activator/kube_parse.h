/* kube_parse.h - what the kube modules read from the API server's JSON
 * bodies, as pure functions over text: no loop, no I/O, no logging. Private
 * to activator/kube*.c (and the fuzz targets in tests/fuzz/, which drive
 * exactly these functions with hostile bodies).
 *
 * The EndpointSlice table (struct kube_slices) holds the endpoints of each
 * slice of one Service, by slice name; a LIST reply replaces it and watch
 * events change it one slice at a time. The set reported to the provider
 * is kube_slices_endpoints(): every endpoint of every slice.
 *
 * Always true: every endpoint in the table has a numeric IPv4 or IPv6
 * address and a port in 1-65535; a slice appears at most once by name.
 */
#ifndef GW_KUBE_PARSE_H
#define GW_KUBE_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "kube.h"

struct kube_slices;

struct kube_slices *kube_slices_create(void);
void kube_slices_destroy(struct kube_slices *s); /* NULL is fine */

/* The whole endpoint set now, slice after slice: a malloc'd array the
 * caller frees (never NULL, even for 0 endpoints); *n its length. */
struct kube_endpoint *kube_slices_endpoints(const struct kube_slices *s,
					    size_t *n);

/* Slices in the table. */
size_t kube_slices_count(const struct kube_slices *s);

/* A LIST reply's body (an EndpointSliceList). True: the table now holds
 * its items, and rv (size rvsz) its metadata.resourceVersion when that
 * fits (otherwise rv is left as it was). False: the body is unreadable
 * and nothing changed. */
bool kube_parse_list(struct kube_slices *s, const char *body, size_t len,
		     char *rv, size_t rvsz);

enum kube_event {
	KUBE_EVENT_UNREADABLE = 0, /* not JSON: why says where */
	KUBE_EVENT_IGNORED,        /* JSON without a type and an object */
	KUBE_EVENT_ERROR,          /* type ERROR: code and why from its Status */
	KUBE_EVENT_BOOKMARK,       /* rv updated, the table unchanged */
	KUBE_EVENT_CHANGE,         /* ADDED/MODIFIED/DELETED applied, rv updated */
};

/* One line of a watch stream (one JSON event, without its newline). On
 * CHANGE and BOOKMARK rv is updated as for kube_parse_list. why (size
 * whylen, may be 0) receives the reason for UNREADABLE (the JSON error)
 * and ERROR (the Status message, or "error"); *code the Status code for ERROR (0 when it has none). */
enum kube_event kube_parse_event(struct kube_slices *s, const char *line,
				 size_t len, char *rv, size_t rvsz,
				 long long *code, char *why, size_t whylen);

/* A Scale object (GET on the scale subresource). True with *replicas
 * (spec.replicas; absent or negative is 0, clamped to INT32_MAX) and *rv (malloc'd
 * metadata.resourceVersion, the caller frees). False: unreadable. */
bool kube_parse_scale(const char *body, size_t len, long long *replicas,
		      char **rv);

/* The "message" of a Status body into why (size whylen >= 1, cut short if
 * need be). False (why untouched) when the body has none. */
bool kube_parse_status(const char *body, size_t len, char *why, size_t whylen);

#endif
