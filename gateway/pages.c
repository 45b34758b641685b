/* pages.c - fixed error pages. */
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "pages.h"
#include "core/compat.h"

struct page {
	int status;
	const char *reason;
	const char *text; /* one sentence for a person, no internals */
};

static const struct page pages[] = {
	{100, "Continue", NULL},
	{101, "Switching Protocols", NULL},
	{103, "Early Hints", NULL},
	{200, "OK", NULL},
	{204, "No Content", NULL},
	{301, "Moved Permanently", "This page has moved."},
	{302, "Found", "Please sign in to open this app."},
	{304, "Not Modified", NULL},
	{307, "Temporary Redirect", "This page has moved."},
	{308, "Permanent Redirect", "This page has moved."},
	{400, "Bad Request", "The request could not be understood."},
	{401, "Unauthorized", "Please sign in to open this app."},
	{403, "Forbidden", "You do not have access to this app."},
	{404, "Not Found", "There is no app at this address."},
	{408, "Request Timeout", "The request took too long to arrive."},
	{413, "Content Too Large", "The request is too large."},
	{417, "Expectation Failed",
	 "The request's Expect header cannot be met."},
	{431, "Request Header Fields Too Large",
	 "The request headers are too large."},
	{500, "Internal Server Error", "Something went wrong on our side."},
	{501, "Not Implemented", "This kind of request is not supported."},
	{502, "Bad Gateway", "The app did not answer correctly."},
	{503, "Service Unavailable",
	 "The app is not available right now. Please try again shortly."},
	{504, "Gateway Timeout", "The app took too long to answer."},
	{505, "HTTP Version Not Supported",
	 "This HTTP version is not supported."},
};

static const struct page *find(int status)
{
	for (size_t i = 0; i < GW_ARRAY_LEN(pages); i++)
		if (pages[i].status == status)
			return &pages[i];
	return NULL;
}

const char *pages_reason(int status)
{
	const struct page *p = find(status);
	return p ? p->reason : "Unknown";
}

int pages_write(struct evbuffer *out, int status, const struct pages_opts *o)
{
	const struct page *p = find(status);
	const char *reason = p ? p->reason : "Error";
	const char *text = o->text		? o->text
			   : p && p->text ? p->text
					  : "The request failed.";
	char body[2048];
	int blen;

	if (status == 204) /* no body, no length: RFC 9110 15.3.5 */
		return evbuffer_add_printf(out,
					   "HTTP/1.1 204 No Content\r\n"
					   "Cache-Control: no-store\r\n%s\r\n",
					   o->close ? "Connection: close\r\n"
						    : "") < 0
			       ? -1
			       : 0;

	if (o->waking)
		/* Waits on the gateway (PAGES_WAKE_PATH answers when the app
		 * is ready) instead of refreshing blindly; reloads then. */
		blen = snprintf(body, sizeof(body),
				"<!doctype html>\n<html lang=\"en\"><head>"
				"<meta charset=\"utf-8\"><meta name=\"viewport\" "
				"content=\"width=device-width\"><title>Waking up"
				"</title><noscript><meta http-equiv=\"refresh\" "
				"content=\"3\"></noscript><style>body{font:16px/1.5 "
				"system-ui,sans-serif;max-width:36em;margin:4em "
				"auto;padding:0 1em;color:#222}</style></head><body>"
				"<h1>Waking up&hellip;</h1><p>This app was asleep. "
				"It is starting and this page will open it as soon "
				"as it is ready.</p><script>(function poll(){"
				"fetch('%s',{cache:'no-store'}).then(function(r){"
				"if(r.status===204){location.reload();}else{"
				"setTimeout(poll,500);}},function(){"
				"setTimeout(poll,1000);});})();</script>"
				"</body></html>\n",
				PAGES_WAKE_PATH);
	else if (o->html)
		blen = snprintf(body, sizeof(body),
				"<!doctype html>\n<html lang=\"en\"><head>"
				"<meta charset=\"utf-8\"><meta name=\"viewport\" "
				"content=\"width=device-width\"><title>%d %s"
				"</title><style>body{font:16px/1.5 system-ui,"
				"sans-serif;max-width:36em;margin:4em auto;"
				"padding:0 1em;color:#222}h1{font-size:1.4em}"
				"</style></head><body><h1>%d %s</h1><p>%s</p>"
				"</body></html>\n",
				status, reason, status, reason, text);
	else
		blen = snprintf(body, sizeof(body), "%d %s: %s\n", status,
				reason, text);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		return -1;

	char retry[48] = "";
	if (o->retry_after)
		snprintf(retry, sizeof(retry), "Retry-After: %u\r\n",
			 o->retry_after);
	if (o->location &&
	    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nLocation: %s\r\n",
				status, reason, o->location) < 0)
		return -1;
	if (!o->location &&
	    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, reason) < 0)
		return -1;
	if (evbuffer_add_printf(out,
				"Content-Type: %s\r\n"
				"Content-Length: %d\r\n"
				"Cache-Control: no-store\r\n"
				"X-Content-Type-Options: nosniff\r\n"
				"%s%s%s%s%s%s\r\n",
				o->html ? "text/html; charset=utf-8"
					: "text/plain; charset=utf-8",
				blen, retry,
				o->www_auth ? "WWW-Authenticate: Cookie\r\n" : "",
				o->close ? "Connection: close\r\n" : "",
				o->hsts ? "Strict-Transport-Security: " : "",
				o->hsts ? o->hsts : "", o->hsts ? "\r\n" : "") < 0)
		return -1;
	if (o->head_only)
		return 0;
	if (evbuffer_add(out, body, (size_t)blen) != 0)
		return -1;
	return blen;
}
