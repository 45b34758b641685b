/* curlev.c - libcurl multi <-> libevent glue (the only file using curl). */
#include <curl/curl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "curlev.h"
#include "core/compat.h"

#define STREAM_PENDING_MAX (1 << 20) /* undelivered stream bytes */

struct curlev_req {
	LIST_ENTRY(curlev_req) link;    /* in curlev.reqs */
	TAILQ_ENTRY(curlev_req) plink;  /* in curlev.pending while queued */
	struct curlev *c;
	CURL *easy;
	struct curl_slist *hdrs;
	char *buf;                      /* response bytes not yet handed over */
	size_t len, cap;
	size_t max_body;
	bool pending;                   /* in curlev.pending */
	bool in_cb;                     /* its data callback is running */
	bool cancelled;                 /* cancelled during that callback */
	bool too_large;
	long retry_after_s;
	curlev_data_cb data_cb;
	curlev_done_cb done_cb;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
};

struct curlev {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	LIST_HEAD(, curlev_req) reqs;
	TAILQ_HEAD(, curlev_req) pending; /* stream bytes to hand over */
};

struct csock {
	struct curlev *c;
	struct event *ev;
};

static void after_action(struct curlev *c);

static void req_free(struct curlev_req *r)
{
	LIST_REMOVE(r, link);
	if (r->pending)
		TAILQ_REMOVE(&r->c->pending, r, plink);
	if (r->easy) {
		curl_multi_remove_handle(r->c->multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	curl_slist_free_all(r->hdrs);
	free(r->buf);
	free(r);
}

/* ---- libcurl callbacks: collect only, never call out ------------------- */

static size_t write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct curlev_req *r = arg;
	size_t n = size * nmemb;
	size_t limit = r->data_cb ? STREAM_PENDING_MAX : r->max_body;
	if (r->len + n > limit) {
		r->too_large = true;
		return 0; /* aborts the transfer */
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + n + 1)
			cap *= 2;
		r->buf = gw_xrealloc(r->buf, cap);
		r->cap = cap;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = '\0';
	if (r->data_cb && !r->pending) {
		r->pending = true;
		TAILQ_INSERT_TAIL(&r->c->pending, r, plink);
	}
	return n;
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct curlev_req *r = arg;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";
	if (n > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		size_t i = sizeof(name) - 1;
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		long v = 0;
		bool digits = false;
		for (; i < n && p[i] >= '0' && p[i] <= '9' && v < 100000; i++) {
			v = v * 10 + (p[i] - '0');
			digits = true;
		}
		/* An HTTP-date is rare from the API server: take it as 1 s. */
		r->retry_after_s = digits ? v : 1;
	} else if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		r->retry_after_s = -1; /* a new response head (after 1xx) */
	}
	return n;
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct csock *s = arg;
	struct curlev *c = s->c;
	int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
		    ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running = 0;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	after_action(c); /* s may be gone now */
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
		     void *socketp)
{
	struct curlev *c = userp;
	struct csock *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			event_free(s->ev);
			free(s);
			curl_multi_assign(c->multi, fd, NULL);
		}
		return 0;
	}
	short ev = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
		   ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (!s) {
		s = gw_xcalloc(1, sizeof(*s));
		s->c = c;
		curl_multi_assign(c->multi, fd, s);
	} else {
		event_free(s->ev);
	}
	s->ev = event_new(c->base, fd, ev, sock_event_cb, s);
	if (!s->ev)
		gw_oom(0);
	event_add(s->ev, NULL);
	return 0;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *c = arg;
	int running = 0;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	after_action(c);
}

static int timerfunc(CURLM *multi, long ms, void *userp)
{
	struct curlev *c = userp;
	if (ms < 0) {
		event_del(c->timer);
		return 0;
	}
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(c->timer, &tv);
	return 0;
}

/* ---- hand-over, outside libcurl -------------------------------------- */

static void deliver_streams(struct curlev *c)
{
	struct curlev_req *r;
	/* Always the head: a callback may cancel any other request, which
	 * unlinks it from this list. */
	while ((r = TAILQ_FIRST(&c->pending))) {
		TAILQ_REMOVE(&c->pending, r, plink);
		r->pending = false;
		r->in_cb = true;
		r->data_cb(r->arg, r->buf, r->len);
		r->in_cb = false;
		r->len = 0;
		if (r->cancelled)
			req_free(r);
	}
}

static enum curlev_error classify(CURL *e, CURLcode rc, bool too_large)
{
	if (rc == CURLE_OK)
		return CURLEV_OK;
	if (too_large)
		return CURLEV_TOO_LARGE;
	if (rc == CURLE_COULDNT_CONNECT)
		return CURLEV_REFUSED;
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		curl_off_t connected = 0;
		curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connected);
		return connected ? CURLEV_TIMEOUT : CURLEV_CONNECT_TIMEOUT;
	}
	return CURLEV_FAILED;
}

static void finish(struct curlev *c, CURL *e, CURLcode rc)
{
	struct curlev_req *r = NULL;
	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
	if (!r)
		return;
	struct curlev_result res = {.retry_after_s = r->retry_after_s};
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &res.status);
	res.error = classify(e, rc, r->too_large);
	char reason[CURL_ERROR_SIZE];
	snprintf(reason, sizeof(reason), "%s",
		 rc == CURLE_OK ? "ok"
		 : r->too_large ? "response too large"
		 : r->errbuf[0] ? r->errbuf
				: curl_easy_strerror(rc));
	res.reason = reason;
	/* Take the body and the callback, free the request, then call: the
	 * callback may start new requests on a clean multi handle. */
	char *body = r->data_cb ? NULL : r->buf;
	if (!r->data_cb) {
		res.body = body;
		res.len = r->len;
		r->buf = NULL;
	}
	curlev_done_cb cb = r->done_cb;
	void *arg = r->arg;
	req_free(r);
	cb(arg, &res);
	free(body);
}

static void after_action(struct curlev *c)
{
	deliver_streams(c);
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(c->multi, &left))) {
		if (m->msg == CURLMSG_DONE)
			finish(c, m->easy_handle, m->data.result);
	}
}

/* ---- public ------------------------------------------------------------ */

struct curlev_req *curlev_start(struct curlev *c, const struct curlev_opts *o)
{
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	struct curlev_req *r = gw_xcalloc(1, sizeof(*r));
	r->c = c;
	r->easy = e;
	r->max_body = o->max_body;
	r->retry_after_s = -1;
	r->data_cb = o->data_cb;
	r->done_cb = o->done_cb;
	r->arg = o->arg;
	LIST_INSERT_HEAD(&c->reqs, r, link);
	for (const char *const *h = o->headers; h && *h; h++) {
		struct curl_slist *l = curl_slist_append(r->hdrs, *h);
		if (!l)
			gw_oom(0);
		r->hdrs = l;
	}
	curl_easy_setopt(e, CURLOPT_URL, o->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)o->connect_timeout_ms);
	if (o->timeout_ms)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	if (o->low_speed_s) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)o->low_speed_s);
	}
	if (o->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
	if (strcmp(o->method, "GET") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
	if (o->body)
		curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		req_free(r);
		return NULL;
	}
	return r;
}

void curlev_cancel(struct curlev_req *r)
{
	if (!r)
		return;
	if (r->in_cb) {
		/* Its own data callback is running: stop the transfer now,
		 * free when the callback returns. */
		r->cancelled = true;
		curl_multi_remove_handle(r->c->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
		return;
	}
	req_free(r);
}

struct curlev *curlev_create(struct event_base *base, const char **err)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		*err = "libcurl initialisation failed";
		return NULL;
	}
	struct curlev *c = gw_xcalloc(1, sizeof(*c));
	c->base = base;
	LIST_INIT(&c->reqs);
	TAILQ_INIT(&c->pending);
	c->multi = curl_multi_init();
	c->timer = evtimer_new(base, timer_cb, c);
	if (!c->multi || !c->timer)
		gw_oom(0);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timerfunc);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

void curlev_destroy(struct curlev *c)
{
	if (!c)
		return;
	while (!LIST_EMPTY(&c->reqs))
		req_free(LIST_FIRST(&c->reqs));
	curl_multi_cleanup(c->multi);
	event_free(c->timer);
	free(c);
	curl_global_cleanup();
}
