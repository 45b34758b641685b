/* kube.c - Kubernetes API client on libcurl multi + libevent. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "kube.h"
#include "core/log.h"
#include "core/compat.h"

#define BODY_MAX (4 << 20)  /* a LIST answer larger than this is refused */
#define LINE_MAX_ (1 << 20) /* one watch event */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum kind { K_SCALE, K_LIST, K_WATCH };

struct kreq;

struct kube {
	struct kube_params p;
	char *api;             /* base URL, no trailing slash */
	char *token_file, *ca_file;
	char *token;           /* current bearer token, or NULL */
	uint64_t token_read_ms;
	CURLM *multi;
	struct event *timer;
	LIST_HEAD(, kreq) reqs;
	LIST_HEAD(, kube_watch) watches;
};

struct slice {
	char *name;
	struct gw_addr *eps;
	size_t n;
};

struct kube_watch {
	LIST_ENTRY(kube_watch) link;
	struct kube *k;
	char *ns, *service;
	kube_endpoints_cb cb;
	void *arg;
	char rv[64];             /* last resourceVersion seen */
	struct slice *slices;
	size_t nslices;
	struct kreq *req;        /* LIST or WATCH in flight, or NULL */
	struct event *retry;     /* backoff before the next LIST */
	unsigned backoff_ms;
	size_t last_reported;    /* ready count last reported (+1; 0 = none) */
};

struct kreq {
	LIST_ENTRY(kreq) link;
	struct kube *k;
	enum kind kind;
	CURL *easy;
	struct curl_slist *hdrs;
	char *url, *body;        /* request body (PATCH) */
	char *resp;              /* response body (SCALE, LIST) */
	size_t resp_len;
	char *line;              /* WATCH: partial event line */
	size_t line_len;
	bool relist;             /* WATCH: 410 seen, start over */
	unsigned attempts;
	uint64_t deadline_ms;
	struct event *retry;     /* SCALE: backoff timer */
	kube_scale_cb scale_cb;
	void *arg;
	struct kube_watch *w;
};

struct ksock {
	struct event *ev;
	struct kube *k;
};

static void kreq_free(struct kreq *r);
static void watch_list(struct kube_watch *w);

/* ---- credentials ------------------------------------------------------- */

static void token_load(struct kube *k, bool force)
{
	uint64_t now = gw_now_ms();
	if (!force && k->token && now - k->token_read_ms < k->p.token_reload_ms)
		return;
	k->token_read_ms = now;
	FILE *f = fopen(k->token_file, "re");
	if (!f) {
		gw_log_errno(GW_LOG_WARN, "kube", "cannot read token file %s",
			     k->token_file);
		return;
	}
	char buf[16384];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
		     buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (k->token) {
		explicit_bzero(k->token, strlen(k->token));
		free(k->token);
	}
	k->token = n ? gw_xstrdup(buf) : NULL;
	explicit_bzero(buf, sizeof(buf));
}

/* ---- libcurl <-> libevent ------------------------------------------------- */

static void check_done(struct kube *k);

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ksock *s = arg;
	struct kube *k = s->k;
	int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
		    ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running = 0;
	curl_multi_socket_action(k->multi, fd, flags, &running);
	check_done(k);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
		     void *socketp)
{
	struct kube *k = userp;
	struct ksock *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			event_free(s->ev);
			free(s);
			curl_multi_assign(k->multi, fd, NULL);
		}
		return 0;
	}
	short ev = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
		   ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (!s) {
		s = gw_xcalloc(1, sizeof(*s));
		s->k = k;
		curl_multi_assign(k->multi, fd, s);
	} else {
		event_free(s->ev);
	}
	s->ev = event_new(k->p.base, fd, ev, sock_event_cb, s);
	event_add(s->ev, NULL);
	return 0;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kube *k = arg;
	int running = 0;
	curl_multi_socket_action(k->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(k);
}

static int timerfunc(CURLM *multi, long ms, void *userp)
{
	struct kube *k = userp;
	if (ms < 0) {
		event_del(k->timer);
		return 0;
	}
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	event_add(k->timer, &tv);
	return 0;
}

/* ---- requests ----------------------------------------------------------------- */

static size_t body_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct kreq *r = arg;
	size_t n = size * nmemb;
	if (r->resp_len + n > BODY_MAX)
		return 0; /* aborts the transfer */
	r->resp = gw_xrealloc(r->resp, r->resp_len + n + 1);
	memcpy(r->resp + r->resp_len, p, n);
	r->resp_len += n;
	r->resp[r->resp_len] = '\0';
	return n;
}

static void watch_event(struct kube_watch *w, json_t *ev, struct kreq *r);

static size_t watch_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct kreq *r = arg;
	size_t n = size * nmemb;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n') {
			if (r->line_len + 1 >= LINE_MAX_)
				return 0;
			if ((r->line_len & 4095) == 0)
				r->line = gw_xrealloc(r->line,
						      r->line_len + 4096 + 1);
			r->line[r->line_len++] = p[i];
			continue;
		}
		if (r->line_len) {
			json_error_t jerr;
			json_t *ev = json_loadb(r->line, r->line_len, 0, &jerr);
			r->line_len = 0;
			if (!ev) {
				gw_log(GW_LOG_WARN, "kube",
				       "unreadable watch event: %s", jerr.text);
				return 0;
			}
			watch_event(r->w, ev, r);
			json_decref(ev);
			if (r->relist)
				return 0; /* end this stream; start over */
		}
	}
	return n;
}

static struct kreq *kreq_new(struct kube *k, enum kind kind, const char *url)
{
	struct kreq *r = gw_xcalloc(1, sizeof(*r));
	r->k = k;
	r->kind = kind;
	r->url = gw_xstrdup(url);
	LIST_INSERT_HEAD(&k->reqs, r, link);
	return r;
}

/* (Re)issue r's HTTP request with the current token. */
static bool kreq_send(struct kreq *r)
{
	struct kube *k = r->k;
	token_load(k, false);
	if (r->easy) {
		curl_multi_remove_handle(k->multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	free(r->resp);
	r->resp = NULL;
	r->resp_len = 0;
	r->line_len = 0;
	r->attempts++;
	CURL *e = curl_easy_init();
	if (!e)
		return false;
	r->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)k->p.request_timeout_ms);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (k->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, k->ca_file);
	r->hdrs = curl_slist_append(r->hdrs, "Accept: application/json");
	if (k->token) {
		/* Built and freed here: the token never reaches a log. */
		size_t n = strlen(k->token) + 32;
		char *h = gw_xmalloc(n);
		snprintf(h, n, "Authorization: Bearer %s", k->token);
		r->hdrs = curl_slist_append(r->hdrs, h);
		explicit_bzero(h, n);
		free(h);
	}
	if (r->kind == K_SCALE) {
		r->hdrs = curl_slist_append(
			r->hdrs, "Content-Type: application/merge-patch+json");
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PATCH");
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
	}
	if (r->kind == K_WATCH) {
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, watch_write);
		/* A stream that stays silent past the server's own timeout
		 * (plus bookmarks) is dead. */
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
				 (long)k->p.watch_timeout_s + 30);
	} else {
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_write);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
				 (long)k->p.request_timeout_ms);
	}
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	return curl_multi_add_handle(k->multi, e) == CURLM_OK;
}

static void kreq_free(struct kreq *r)
{
	LIST_REMOVE(r, link);
	if (r->easy) {
		curl_multi_remove_handle(r->k->multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	if (r->retry)
		event_free(r->retry);
	curl_slist_free_all(r->hdrs);
	free(r->url);
	free(r->body);
	free(r->resp);
	free(r->line);
	free(r);
}

/* The "message" of a Status body, for the log. */
static void status_message(const struct kreq *r, char *out, size_t n)
{
	snprintf(out, n, "no details");
	if (!r->resp)
		return;
	json_t *j = json_loads(r->resp, 0, NULL);
	const char *m = j ? json_string_value(json_object_get(j, "message"))
			  : NULL;
	if (m)
		snprintf(out, n, "%s", m);
	json_decref(j);
}

static unsigned jitter(unsigned ms)
{
	return ms / 2 + (unsigned)(random() % (ms / 2 + 1));
}

/* ---- scale ------------------------------------------------------------------ */

static void scale_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kreq *r = arg;
	if (!kreq_send(r)) {
		kube_scale_cb cb = r->scale_cb;
		void *a = r->arg;
		kreq_free(r);
		cb(a, false, 0, "cannot start a request");
	}
}

static void scale_done(struct kreq *r, CURLcode rc, long status)
{
	char msg[256];
	bool transport = rc != CURLE_OK;
	if (!transport && status >= 200 && status < 300) {
		kube_scale_cb cb = r->scale_cb;
		void *a = r->arg;
		kreq_free(r);
		cb(a, true, (int)status, "ok");
		return;
	}
	if (transport)
		snprintf(msg, sizeof(msg), "%s", curl_easy_strerror(rc));
	else
		status_message(r, msg, sizeof(msg));
	bool retry = false;
	unsigned delay = 0;
	if (!transport && status == 401 && r->attempts == 1) {
		token_load(r->k, true); /* rotated: read it again, once */
		retry = true;
	} else if (transport || status == 429 || status >= 500 ||
		   status == 409) {
		/* A refused or timed-out connect is retried at once: the
		 * next try may reach another API server. */
		retry = true;
		delay = rc == CURLE_COULDNT_CONNECT ||
				rc == CURLE_OPERATION_TIMEDOUT
			? 0
			: jitter(BACKOFF_MIN_MS << (r->attempts < 6 ? r->attempts
								    : 6));
	}
	if (retry && gw_now_ms() + delay < r->deadline_ms && r->attempts < 8) {
		gw_log(GW_LOG_WARN, "kube", "scale %s: %ld %s; retrying%s",
		       r->url, status, msg, delay ? " after a pause" : "");
		if (!r->retry)
			r->retry = evtimer_new(r->k->p.base, scale_retry_cb, r);
		struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
		curl_multi_remove_handle(r->k->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
		event_add(r->retry, &tv);
		return;
	}
	gw_log(GW_LOG_ERROR, "kube", "scale %s failed: %ld %s", r->url, status,
	       msg);
	kube_scale_cb cb = r->scale_cb;
	void *a = r->arg;
	kreq_free(r);
	cb(a, false, (int)status, status == 403 ? "forbidden (RBAC?)" : msg);
}

bool kube_scale(struct kube *k, const char *ns, const char *deployment,
		unsigned replicas, kube_scale_cb cb, void *arg)
{
	char url[1024];
	snprintf(url, sizeof(url),
		 "%s/apis/apps/v1/namespaces/%s/deployments/%s/scale", k->api,
		 ns, deployment);
	struct kreq *r = kreq_new(k, K_SCALE, url);
	char body[64];
	snprintf(body, sizeof(body), "{\"spec\":{\"replicas\":%u}}", replicas);
	r->body = gw_xstrdup(body);
	r->scale_cb = cb;
	r->arg = arg;
	r->deadline_ms = gw_now_ms() + 3 * (uint64_t)k->p.request_timeout_ms;
	if (!kreq_send(r)) {
		kreq_free(r);
		return false;
	}
	return true;
}

/* ---- EndpointSlice watch -------------------------------------------------------- */

static void slices_clear(struct kube_watch *w)
{
	for (size_t i = 0; i < w->nslices; i++) {
		free(w->slices[i].name);
		free(w->slices[i].eps);
	}
	free(w->slices);
	w->slices = NULL;
	w->nslices = 0;
}

/* Ready addresses of one EndpointSlice object. */
static void slice_parse(json_t *obj, struct gw_addr **eps, size_t *n)
{
	*eps = NULL;
	*n = 0;
	json_t *ports = json_object_get(obj, "ports");
	json_int_t port = json_integer_value(
		json_object_get(json_array_get(ports, 0), "port"));
	if (port <= 0 || port > 65535)
		return;
	size_t i;
	json_t *ep;
	json_array_foreach(json_object_get(obj, "endpoints"), i, ep) {
		json_t *ready = json_object_get(
			json_object_get(ep, "conditions"), "ready");
		/* "ready" unset means ready (API docs: nil = unknown, be
		 * optimistic); our probe checks anyway. */
		if (ready && !json_is_true(ready))
			continue;
		size_t j;
		json_t *a;
		json_array_foreach(json_object_get(ep, "addresses"), j, a) {
			const char *ip = json_string_value(a);
			if (!ip)
				continue;
			char buf[80];
			snprintf(buf, sizeof(buf),
				 strchr(ip, ':') ? "[%s]:%lld" : "%s:%lld", ip,
				 (long long)port);
			struct gw_addr ga;
			const char *err = NULL;
			if (gw_addr_parse(buf, &ga, &err) != 0)
				continue;
			*eps = gw_xrealloc(*eps, (*n + 1) * sizeof(ga));
			(*eps)[(*n)++] = ga;
		}
	}
}

static void slice_set(struct kube_watch *w, json_t *obj, bool deleted)
{
	const char *name = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "name"));
	if (!name)
		return;
	size_t i;
	for (i = 0; i < w->nslices; i++)
		if (strcmp(w->slices[i].name, name) == 0)
			break;
	if (i == w->nslices) {
		if (deleted)
			return;
		w->slices = gw_xrealloc(w->slices,
					(w->nslices + 1) * sizeof(*w->slices));
		w->slices[i] = (struct slice){.name = gw_xstrdup(name)};
		w->nslices++;
	}
	free(w->slices[i].eps);
	w->slices[i].eps = NULL;
	w->slices[i].n = 0;
	if (deleted) {
		free(w->slices[i].name);
		w->slices[i] = w->slices[--w->nslices];
		return;
	}
	slice_parse(obj, &w->slices[i].eps, &w->slices[i].n);
}

static void report(struct kube_watch *w)
{
	size_t total = 0;
	for (size_t i = 0; i < w->nslices; i++)
		total += w->slices[i].n;
	struct gw_addr *all = gw_xcalloc(total ? total : 1, sizeof(*all));
	size_t k = 0;
	for (size_t i = 0; i < w->nslices; i++)
		for (size_t j = 0; j < w->slices[i].n; j++)
			all[k++] = w->slices[i].eps[j];
	w->last_reported = total + 1;
	w->cb(w->arg, all, total);
	free(all);
}

static void set_rv(struct kube_watch *w, json_t *obj)
{
	const char *rv = json_string_value(json_object_get(
		json_object_get(obj, "metadata"), "resourceVersion"));
	if (rv)
		snprintf(w->rv, sizeof(w->rv), "%s", rv);
}

static void watch_event(struct kube_watch *w, json_t *ev, struct kreq *r)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *obj = json_object_get(ev, "object");
	if (!type || !obj)
		return;
	if (strcmp(type, "ERROR") == 0) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		gw_log(code == 410 ? GW_LOG_INFO : GW_LOG_WARN, "kube",
		       "watch %s/%s: %s (%lld); listing again", w->ns,
		       w->service,
		       json_string_value(json_object_get(obj, "message"))
			       ?: "error",
		       (long long)code);
		r->relist = true;
		return;
	}
	set_rv(w, obj);
	if (strcmp(type, "BOOKMARK") == 0)
		return;
	slice_set(w, obj, strcmp(type, "DELETED") == 0);
	report(w);
}

static void watch_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	watch_list(arg);
}

static void watch_backoff(struct kube_watch *w)
{
	unsigned d = jitter(w->backoff_ms);
	w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							 : w->backoff_ms * 2;
	struct timeval tv = {d / 1000, (d % 1000) * 1000};
	event_add(w->retry, &tv);
}

/* Start the LIST (watch = false) or the WATCH from w->rv of w's slices. */
static bool slices_request(struct kube_watch *w, bool watch)
{
	char url[1200], tail[160] = "";
	char *svc = curl_easy_escape(NULL, w->service, 0);
	if (watch)
		snprintf(tail, sizeof(tail),
			 "&watch=1&allowWatchBookmarks=true&resourceVersion=%s"
			 "&timeoutSeconds=%u",
			 w->rv, w->k->p.watch_timeout_s);
	snprintf(url, sizeof(url),
		 "%s/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?"
		 "labelSelector=kubernetes.io%%2Fservice-name%%3D%s%s",
		 w->k->api, w->ns, svc ? svc : "", tail);
	curl_free(svc);
	w->req = kreq_new(w->k, watch ? K_WATCH : K_LIST, url);
	w->req->w = w;
	if (!kreq_send(w->req)) {
		kreq_free(w->req);
		w->req = NULL;
		return false;
	}
	return true;
}

static bool watch_open(struct kube_watch *w)
{
	return slices_request(w, true);
}

static void list_done(struct kube_watch *w, struct kreq *r, CURLcode rc,
		      long status)
{
	json_t *j = rc == CURLE_OK && status == 200 && r->resp
			    ? json_loads(r->resp, 0, NULL)
			    : NULL;
	if (!j) {
		char msg[256];
		if (rc != CURLE_OK)
			snprintf(msg, sizeof(msg), "%s", curl_easy_strerror(rc));
		else
			status_message(r, msg, sizeof(msg));
		gw_log(GW_LOG_WARN, "kube", "list endpointslices %s/%s: %ld %s",
		       w->ns, w->service, status, msg);
		if (status == 401)
			token_load(w->k, true);
		kreq_free(r);
		w->req = NULL;
		watch_backoff(w);
		return;
	}
	kreq_free(r);
	w->req = NULL;
	slices_clear(w);
	size_t i;
	json_t *item;
	json_array_foreach(json_object_get(j, "items"), i, item)
		slice_set(w, item, false);
	set_rv(w, j);
	json_decref(j);
	w->backoff_ms = BACKOFF_MIN_MS;
	report(w);
	if (!watch_open(w))
		watch_backoff(w);
}

static void watch_done(struct kube_watch *w, struct kreq *r, CURLcode rc,
		       long status)
{
	bool relist = r->relist;
	bool clean = rc == CURLE_OK && status == 200;
	kreq_free(r);
	w->req = NULL;
	if (relist) {
		watch_list(w);
		return;
	}
	if (clean) { /* the server's timeoutSeconds: resume where we were */
		if (!watch_open(w))
			watch_backoff(w);
		return;
	}
	gw_log(GW_LOG_WARN, "kube", "watch endpointslices %s/%s ended: %ld %s",
	       w->ns, w->service, status,
	       rc != CURLE_OK ? curl_easy_strerror(rc) : "");
	if (status == 401)
		token_load(w->k, true);
	watch_backoff(w);
}

static void watch_list(struct kube_watch *w)
{
	if (!slices_request(w, false))
		watch_backoff(w);
}

struct kube_watch *kube_watch_start(struct kube *k, const char *ns,
				    const char *service, kube_endpoints_cb cb,
				    void *arg)
{
	struct kube_watch *w = gw_xcalloc(1, sizeof(*w));
	w->k = k;
	w->ns = gw_xstrdup(ns);
	w->service = gw_xstrdup(service);
	w->cb = cb;
	w->arg = arg;
	w->backoff_ms = BACKOFF_MIN_MS;
	w->retry = evtimer_new(k->p.base, watch_retry_cb, w);
	LIST_INSERT_HEAD(&k->watches, w, link);
	watch_list(w);
	return w;
}

void kube_watch_stop(struct kube_watch *w)
{
	if (!w)
		return;
	LIST_REMOVE(w, link);
	if (w->req)
		kreq_free(w->req);
	event_free(w->retry);
	slices_clear(w);
	free(w->ns);
	free(w->service);
	free(w);
}

/* ---- completion dispatch ------------------------------------------------------ */

static void check_done(struct kube *k)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(k->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct kreq *r = NULL;
		long status = 0;
		CURLcode rc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		if (!r)
			continue;
		switch (r->kind) {
		case K_SCALE:
			scale_done(r, rc, status);
			break;
		case K_LIST:
			list_done(r->w, r, rc, status);
			break;
		case K_WATCH:
			watch_done(r->w, r, rc, status);
			break;
		}
	}
}

/* ---- lifetime ------------------------------------------------------------------ */

struct kube *kube_create(const struct kube_params *p, const char **err)
{
	char url[300];
	if (p->api_url) {
		snprintf(url, sizeof(url), "%s", p->api_url);
	} else {
		const char *h = getenv("KUBERNETES_SERVICE_HOST");
		const char *port = getenv("KUBERNETES_SERVICE_PORT");
		if (!h || !port) {
			*err = "no [kubernetes] api_url and not inside a cluster "
			       "(KUBERNETES_SERVICE_HOST unset)";
			return NULL;
		}
		snprintf(url, sizeof(url),
			 strchr(h, ':') ? "https://[%s]:%s" : "https://%s:%s", h,
			 port);
	}
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		url[--n] = '\0';
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		*err = "libcurl initialisation failed";
		return NULL;
	}
	struct kube *k = gw_xcalloc(1, sizeof(*k));
	k->p = *p;
	k->api = gw_xstrdup(url);
	k->token_file = gw_xstrdup(p->token_file);
	k->ca_file = p->ca_file ? gw_xstrdup(p->ca_file) : NULL;
	LIST_INIT(&k->reqs);
	LIST_INIT(&k->watches);
	k->multi = curl_multi_init();
	k->timer = evtimer_new(p->base, timer_cb, k);
	if (!k->multi || !k->timer)
		gw_oom(0);
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(k->multi, CURLMOPT_SOCKETDATA, k);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERFUNCTION, timerfunc);
	curl_multi_setopt(k->multi, CURLMOPT_TIMERDATA, k);
	token_load(k, true);
	gw_log(GW_LOG_INFO, "kube", "Kubernetes API at %s", k->api);
	return k;
}

void kube_destroy(struct kube *k)
{
	if (!k)
		return;
	while (!LIST_EMPTY(&k->watches))
		kube_watch_stop(LIST_FIRST(&k->watches));
	while (!LIST_EMPTY(&k->reqs))
		kreq_free(LIST_FIRST(&k->reqs));
	curl_multi_cleanup(k->multi);
	event_free(k->timer);
	if (k->token) {
		explicit_bzero(k->token, strlen(k->token));
		free(k->token);
	}
	free(k->api);
	free(k->token_file);
	free(k->ca_file);
	free(k);
	curl_global_cleanup();
}
