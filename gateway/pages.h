/* pages.h - the few responses the gateway writes itself (404, 502, ...).
 *
 * Small, fixed texts: HTML for browsers (Accept lists text/html), plain
 * text otherwise. Nothing internal (addresses, errno, versions) is ever put
 * in a page; the details go to the error log.
 */
#ifndef GW_PAGES_H
#define GW_PAGES_H

#include <stdbool.h>

struct evbuffer;

struct pages_opts {
	bool html;      /* client prefers HTML */
	bool close;     /* add "Connection: close" */
	bool head_only; /* HEAD request: head without body */
	unsigned retry_after; /* seconds for Retry-After; 0 = none */
	const char *location; /* Location field (redirects), or NULL; the
				 caller has made it safe (no CR/LF) */
	bool www_auth;        /* 401: add a WWW-Authenticate challenge */
	bool waking;          /* the "waking up" page (HTML, polls and reloads) */
	const char *text;     /* the page's sentence instead of the status's
				 own, or NULL */
	const char *hsts;     /* Strict-Transport-Security value (HTTPS
				 only), or NULL; no CR/LF (config checks) */
};

/* Append a complete HTTP/1.1 response for status to out. Unknown status
 * codes get a generic page. Returns the number of body bytes (0 for HEAD),
 * or -1 when out cannot grow. */
int pages_write(struct evbuffer *out, int status, const struct pages_opts *o);

/* The path of the waking page's status poll, on every app's host: 204 once
 * the app is ready (waits while it wakes). */
#define PAGES_WAKE_PATH "/_gateway/wake"

/* Standard reason phrase ("Not Found"), or "Unknown". */
const char *pages_reason(int status);

#endif
