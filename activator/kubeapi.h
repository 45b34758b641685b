/* kubeapi.h - the connection to the Kubernetes API server: where it is,
 * the credentials, and the retry policy every call shares. Requests run
 * on curlev (libcurl multi on the worker's libevent loop): no thread, no
 * blocking call.
 *
 * Configuration: an explicit api_url, or in-cluster
 * (https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT). The bearer
 * token is re-read from token_file at most every token_reload_ms and at
 * once after a 401 (projected service-account tokens rotate); it never
 * reaches a log. The default namespace comes from namespace_file (in a
 * pod: the service account's namespace file), else "default".
 *
 * Retry policy of calls made with retry = true, within 3 x
 * request_timeout and at most 8 attempts:
 *   - 401: the token is read again and the call retried once, at once;
 *   - 429 and 503: after the response's Retry-After when it has one (a
 *     Retry-After past the deadline fails the call now), otherwise as 5xx;
 *   - 5xx, connection refused, resets, a stalled response: jittered
 *     exponential backoff from 100 ms (the API is down or overloaded:
 *     hammering it does not help);
 *   - a connect timeout: at once (the next attempt may reach another API
 *     server behind the same name);
 *   - every other status, 409 included, is final: the caller decides
 *     (a conflict means "read again", never "send the same again").
 * The jitter generator is seeded per process, so replicas do not retry in
 * step.
 */
#ifndef GW_KUBEAPI_H
#define GW_KUBEAPI_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct kubeapi;
struct kubeapi_call;
struct stats;

struct kubeapi_params {
	struct event_base *base;
	const char *api_url;        /* "https://10.0.0.1:443"; NULL: in-cluster */
	const char *token_file;
	const char *ca_file;        /* NULL: the system's CAs */
	const char *namespace_file; /* default namespace; NULL/missing: "default" */
	unsigned token_reload_ms;
	unsigned request_timeout_ms;
};

/* NULL with *err when the API address cannot be determined. */
struct kubeapi *kubeapi_create(const struct kubeapi_params *p, const char **err);

/* Register the API client's series with s (docs/operations.md,
 * "Metrics"): attempts, errors by kind, calls open, reachability. Once;
 * unregistered by kubeapi_destroy. */
void kubeapi_stats_register(struct kubeapi *k, struct stats *s);

/* Cancels every call (no callbacks) and frees. NULL is fine. */
void kubeapi_destroy(struct kubeapi *k);

/* The namespace of routes that name none (a DNS-1123 label). */
const char *kubeapi_namespace(const struct kubeapi *k);

struct event_base *kubeapi_base(const struct kubeapi *k);

/* A random duration in [ms/2, ms] from the per-process generator. */
unsigned kubeapi_jitter(struct kubeapi *k, unsigned ms);

struct kubeapi_resp {
	int status;       /* HTTP status; 0: no response (transport failure) */
	const char *body; /* NUL-terminated, or NULL (not for streams) */
	size_t len;
	const char *why;  /* for the log: the Status message or transport error */
};

/* The call is over (after its retries); the handle is already freed. */
typedef void (*kubeapi_done_cb)(void *arg, const struct kubeapi_resp *r);
/* Stream bytes (a watch), in order. */
typedef void (*kubeapi_data_cb)(void *arg, const char *p, size_t n);

struct kubeapi_opts {
	const char *method;       /* "GET" or "PATCH" (a JSON merge patch) */
	const char *path;         /* "/apis/...", already escaped (copied) */
	const char *body;         /* PATCH body (copied), or NULL */
	bool retry;               /* apply the retry policy above */
	kubeapi_data_cb data_cb;  /* non-NULL: a stream (never retried here) */
	unsigned idle_s;          /* stream: dead after this long silent */
	kubeapi_done_cb done;     /* exactly once, unless cancelled */
	void *arg;
};

/* Start a call. Never NULL: one that cannot even be sent fails through
 * its callback, from the loop. */
struct kubeapi_call *kubeapi_call(struct kubeapi *k, const struct kubeapi_opts *o);

/* True while an attempt is on the wire (the server may act on it); false
 * while the call pauses between attempts. */
bool kubeapi_on_wire(const struct kubeapi_call *c);

/* Abandon a call: its callback does not run. NULL is fine. */
void kubeapi_cancel(struct kubeapi_call *c);

#endif
