/* curlev.h - HTTP requests on libcurl multi, driven by a libevent loop.
 *
 * All libcurl glue lives here, in the shape of curl's
 * docs/examples/multi-event.c: one event per curl socket, one timer, and
 * completions drained after every action. No other file sees a curl type.
 *
 * Callbacks never run inside a libcurl callback: response bytes are
 * collected while curl works and handed over once curl_multi_socket_action
 * has returned, so a callback may start, cancel or finish any request
 * (including its own, through curlev_cancel).
 *
 * Invariants: a request is in exactly one of {running in the multi
 * handle, delivering a callback}; its done callback runs at most once, and
 * never after curlev_cancel.
 */
#ifndef GW_CURLEV_H
#define GW_CURLEV_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct curlev;
struct curlev_req;

/* How a request ended (the transport's view; the HTTP status is apart). */
enum curlev_error {
	CURLEV_OK = 0,          /* a complete HTTP response (any status) */
	CURLEV_REFUSED,         /* connect refused/unreachable: nobody listens */
	CURLEV_CONNECT_TIMEOUT, /* no connection within connect_timeout_ms */
	CURLEV_TIMEOUT,         /* connected, but too slow or silent (stall) */
	CURLEV_TOO_LARGE,       /* the response passed max_body */
	CURLEV_FAILED,          /* any other transport failure (TLS, reset...) */
};

struct curlev_result {
	enum curlev_error error;
	long status;           /* HTTP status; 0 when no response head came */
	const char *reason;    /* for the log: "ok" or curl's error text */
	long retry_after_s;    /* the response's Retry-After (seconds), or -1 */
	const char *body;      /* whole body, NUL-terminated (not streams); may
				  be NULL; valid during the callback only */
	size_t len;
};

/* Stream bytes, in order, as they arrive (valid during the call only). */
typedef void (*curlev_data_cb)(void *arg, const char *p, size_t n);
/* The request is over; the request handle is already freed. */
typedef void (*curlev_done_cb)(void *arg, const struct curlev_result *r);

struct curlev_opts {
	const char *method;          /* "GET", "PATCH" */
	const char *url;             /* (copied) */
	const char *const *headers;  /* NULL-terminated "Name: value" (copied) */
	const char *body;            /* request body (copied), or NULL */
	const char *ca_file;         /* NULL: the system's CAs */
	unsigned connect_timeout_ms;
	unsigned timeout_ms;         /* whole exchange; 0: none (streams) */
	unsigned low_speed_s;        /* abort after this long silent; 0: off */
	size_t max_body;             /* bigger responses fail (not streams) */
	curlev_data_cb data_cb;      /* non-NULL: a stream, bytes go here */
	curlev_done_cb done_cb;      /* required */
	void *arg;
};

/* NULL with *err when libcurl cannot be set up. */
struct curlev *curlev_create(struct event_base *base, const char **err);

/* Start a request. NULL (no callback) when libcurl refuses it. */
struct curlev_req *curlev_start(struct curlev *c, const struct curlev_opts *o);

/* Abort and free a request; its callbacks do not run. NULL is fine. */
void curlev_cancel(struct curlev_req *r);

/* Cancel every request (no callbacks) and free. NULL is fine. */
void curlev_destroy(struct curlev *c);

#endif
