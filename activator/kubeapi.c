/* kubeapi.c - API server address, credentials and the shared retry policy. */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "curlev.h"
#include "kube_parse.h"
#include "kubeapi.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/compat.h"

#define BODY_MAX (4 << 20) /* a LIST answer larger than this is refused */
#define ATTEMPTS_MAX 8
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

struct kubeapi_stats {
	uint64_t attempts;     /* requests sent (retries included) */
	uint64_t transport;    /* attempts without a response */
	uint64_t status_4xx;   /* answered 4xx (404 and 409 included) */
	uint64_t status_5xx;   /* answered 5xx */
	uint64_t throttled;    /* answered 429 */
	uint64_t calls_open;   /* gauge (refresh): calls not over */
	uint64_t reachable;    /* gauge: the last attempt got a response */
};

struct kubeapi {
	struct kubeapi_params p;
	struct kubeapi_stats st;
	struct stats_reg *reg;
	struct curlev *curl;
	char *api;               /* base URL, no trailing slash */
	char *token_file, *ca_file;
	char *token;             /* current bearer token, or NULL */
	uint64_t token_read_ms;
	char ns[64];             /* default namespace */
	uint64_t rng;            /* jitter generator state (never 0) */
	LIST_HEAD(, kubeapi_call) calls;
};

struct kubeapi_call {
	LIST_ENTRY(kubeapi_call) link;
	struct kubeapi *k;
	struct kubeapi_opts o;   /* path and body point at the copies below */
	char *url, *body;
	struct curlev_req *req;  /* the attempt on the wire, or NULL */
	struct event *pause;     /* between attempts */
	unsigned attempts;
	bool token_retried;
	bool start_failed;       /* no request could be made: fail from the loop */
	uint64_t deadline_ms;
	char why[256];
};

/* ---- credentials ---------------------------------------------------------- */

static void token_load(struct kubeapi *k, bool force)
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

static bool label_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* The in-cluster namespace file, read once at start-up. */
static void namespace_load(struct kubeapi *k, const char *path)
{
	snprintf(k->ns, sizeof(k->ns), "default");
	FILE *f = path ? fopen(path, "re") : NULL;
	if (!f)
		return;
	char buf[128];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (!label_ok(buf)) {
		gw_log(GW_LOG_WARN, "kube",
		       "%s does not hold a namespace name; using \"default\"",
		       path);
		return;
	}
	memcpy(k->ns, buf, n + 1); /* label_ok: n <= 63 */
}

/* ---- jitter ------------------------------------------------------------------ */

static uint64_t rng_next(struct kubeapi *k)
{
	/* xorshift64*: small, and seeded per process (kubeapi_create). */
	k->rng ^= k->rng >> 12;
	k->rng ^= k->rng << 25;
	k->rng ^= k->rng >> 27;
	return k->rng * 2685821657736338717ULL;
}

unsigned kubeapi_jitter(struct kubeapi *k, unsigned ms)
{
	return ms / 2 + (unsigned)(rng_next(k) % (ms / 2 + 1));
}

/* ---- calls ------------------------------------------------------------------- */

static void attempt(struct kubeapi_call *c);

/* Stream bytes go to the caller, who may cancel the call meanwhile. */
static void call_data(void *arg, const char *p, size_t n)
{
	struct kubeapi_call *c = arg;
	c->o.data_cb(c->o.arg, p, n); /* last: c may be gone after */
}

static void call_free(struct kubeapi_call *c)
{
	LIST_REMOVE(c, link);
	curlev_cancel(c->req);
	if (c->pause)
		event_free(c->pause);
	free(c->url);
	free(c->body);
	free(c);
}

/* The "message" of a Status body, else the transport's reason. */
static void set_why(struct kubeapi_call *c, const struct curlev_result *r)
{
	if (r->error != CURLEV_OK) {
		snprintf(c->why, sizeof(c->why), "%s", r->reason);
		return;
	}
	if (!kube_parse_status(r->body, r->len, c->why, sizeof(c->why)))
		snprintf(c->why, sizeof(c->why), "HTTP %ld", r->status);
}

static void call_end(struct kubeapi_call *c, const struct curlev_result *r)
{
	struct kubeapi_resp resp = {
		.status = r->error == CURLEV_OK ? (int)r->status : 0,
		.body = r->body,
		.len = r->len,
		.why = c->why,
	};
	char why[sizeof(c->why)];
	memcpy(why, c->why, sizeof(why));
	resp.why = why;
	kubeapi_done_cb done = c->o.done;
	void *arg = c->o.arg;
	call_free(c);
	done(arg, &resp);
}

static void pause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kubeapi_call *c = arg;
	if (c->start_failed) {
		struct curlev_result r = {.error = CURLEV_FAILED,
					  .reason = c->why,
					  .retry_after_s = -1};
		call_end(c, &r);
		return;
	}
	attempt(c);
}

/* How long to wait before the next attempt; -1: do not retry. */
static long retry_delay(struct kubeapi_call *c, const struct curlev_result *r)
{
	struct kubeapi *k = c->k;
	unsigned shift = c->attempts < 5 ? c->attempts : 5;
	long backoff = kubeapi_jitter(k, BACKOFF_MIN_MS << shift);
	if (backoff > BACKOFF_MAX_MS)
		backoff = kubeapi_jitter(k, BACKOFF_MAX_MS);
	switch (r->error) {
	case CURLEV_CONNECT_TIMEOUT:
		return 0;
	case CURLEV_REFUSED:
	case CURLEV_TIMEOUT:
	case CURLEV_FAILED:
		return backoff;
	case CURLEV_TOO_LARGE:
		return -1;
	case CURLEV_OK:
		break;
	}
	if (r->status == 401 && !c->token_retried) {
		c->token_retried = true;
		return 0;
	}
	if ((r->status == 429 || r->status == 503) && r->retry_after_s >= 0)
		return r->retry_after_s * 1000;
	if (r->status == 429 || r->status >= 500)
		return backoff;
	return -1;
}

static void count_result(struct kubeapi *k, const struct curlev_result *r)
{
	k->st.reachable = r->error == CURLEV_OK;
	if (r->error != CURLEV_OK)
		k->st.transport++;
	else if (r->status == 429)
		k->st.throttled++;
	else if (r->status >= 500)
		k->st.status_5xx++;
	else if (r->status >= 400)
		k->st.status_4xx++;
}

static void attempt_done(void *arg, const struct curlev_result *r)
{
	struct kubeapi_call *c = arg;
	struct kubeapi *k = c->k;
	c->req = NULL;
	count_result(k, r);
	set_why(c, r);
	if (r->error == CURLEV_OK && r->status == 401)
		token_load(k, true); /* rotated: read it again now */
	if (!c->o.retry || (r->error == CURLEV_OK && r->status < 300)) {
		call_end(c, r);
		return;
	}
	long delay = retry_delay(c, r);
	if (delay < 0 || c->attempts >= ATTEMPTS_MAX ||
	    gw_now_ms() + (uint64_t)delay >= c->deadline_ms) {
		call_end(c, r);
		return;
	}
	gw_log(GW_LOG_WARN, "kube", "%s %s: %s%s; retrying in %ldms (attempt %u)",
	       c->o.method, c->o.path,
	       r->error == CURLEV_OK ? "" : "transport: ", c->why, delay,
	       c->attempts + 1);
	if (!c->pause) {
		c->pause = evtimer_new(k->p.base, pause_cb, c);
		if (!c->pause)
			gw_oom(0);
	}
	struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
	event_add(c->pause, &tv);
}

static void attempt(struct kubeapi_call *c)
{
	struct kubeapi *k = c->k;
	token_load(k, false);
	c->attempts++;
	k->st.attempts++;
	char *auth = NULL;
	const char *hdrs[4];
	size_t nh = 0;
	hdrs[nh++] = "Accept: application/json";
	if (c->body)
		hdrs[nh++] = "Content-Type: application/merge-patch+json";
	if (k->token) {
		/* Built and wiped here: the token never reaches a log. */
		size_t n = strlen(k->token) + 32;
		auth = gw_xmalloc(n);
		snprintf(auth, n, "Authorization: Bearer %s", k->token);
		hdrs[nh++] = auth;
	}
	hdrs[nh] = NULL;
	struct curlev_opts o = {
		.method = c->o.method,
		.url = c->url,
		.headers = hdrs,
		.body = c->body,
		.ca_file = k->ca_file,
		.connect_timeout_ms = k->p.request_timeout_ms,
		.timeout_ms = c->o.data_cb ? 0 : k->p.request_timeout_ms,
		.low_speed_s = c->o.data_cb ? c->o.idle_s : 0,
		.max_body = BODY_MAX,
		.data_cb = c->o.data_cb ? call_data : NULL,
		.done_cb = attempt_done,
		.arg = c,
	};
	c->req = curlev_start(k->curl, &o);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (!c->req) {
		/* Not from inside kubeapi_call: from the loop, once. */
		snprintf(c->why, sizeof(c->why), "cannot start a request");
		c->start_failed = true;
		if (!c->pause)
			c->pause = evtimer_new(k->p.base, pause_cb, c);
		if (!c->pause)
			gw_oom(0);
		event_active(c->pause, EV_TIMEOUT, 0);
	}
}

struct kubeapi_call *kubeapi_call(struct kubeapi *k, const struct kubeapi_opts *o)
{
	struct kubeapi_call *c = gw_xcalloc(1, sizeof(*c));
	c->k = k;
	c->o = *o;
	size_t n = strlen(k->api) + strlen(o->path) + 1;
	c->url = gw_xmalloc(n);
	snprintf(c->url, n, "%s%s", k->api, o->path);
	c->o.path = c->url + strlen(k->api);
	c->body = o->body ? gw_xstrdup(o->body) : NULL;
	c->o.body = c->body;
	c->deadline_ms = gw_now_ms() + 3 * (uint64_t)k->p.request_timeout_ms;
	LIST_INSERT_HEAD(&k->calls, c, link);
	attempt(c);
	return c;
}

bool kubeapi_on_wire(const struct kubeapi_call *c)
{
	return c && c->req;
}

void kubeapi_cancel(struct kubeapi_call *c)
{
	if (c)
		call_free(c);
}

/* ---- counters ---------------------------------------------------------------- */

static void kubeapi_refresh(void *obj)
{
	struct kubeapi *k =
		gw_container_of((struct kubeapi_stats *)obj, struct kubeapi, st);
	uint64_t n = 0;
	struct kubeapi_call *c;
	LIST_FOREACH(c, &k->calls, link)
		n++;
	k->st.calls_open = n;
}

#define KS(f) offsetof(struct kubeapi_stats, f)
#define ERR_HELP                                                              \
	"Kubernetes API attempts that failed, by kind: transport (no "          \
	"response), 4xx (404 and 409 included), 429, 5xx."
static const struct stats_metric kubeapi_metrics[] = {
	{"gateway_kube_api_requests",
	 "Requests sent to the Kubernetes API (each retry counts).",
	 STATS_COUNTER, KS(attempts)},
	{"gateway_kube_api_errors", ERR_HELP, STATS_COUNTER, KS(transport),
	 .label = "kind", .label_value = "transport"},
	{"gateway_kube_api_errors", ERR_HELP, STATS_COUNTER, KS(status_4xx),
	 .label = "kind", .label_value = "4xx"},
	{"gateway_kube_api_errors", ERR_HELP, STATS_COUNTER, KS(throttled),
	 .label = "kind", .label_value = "429"},
	{"gateway_kube_api_errors", ERR_HELP, STATS_COUNTER, KS(status_5xx),
	 .label = "kind", .label_value = "5xx"},
	{"gateway_kube_api_calls_open",
	 "Kubernetes API calls not over (watches, calls between retries).",
	 STATS_GAUGE, KS(calls_open)},
	{"gateway_kube_api_reachable",
	 "1 when the last request got an HTTP response (0 before the first).",
	 STATS_GAUGE, KS(reachable)},
};
#undef ERR_HELP
#undef KS
static const struct stats_table kubeapi_table = {
	.metrics = kubeapi_metrics,
	.nmetrics = GW_ARRAY_LEN(kubeapi_metrics),
	.refresh = kubeapi_refresh,
};

void kubeapi_stats_register(struct kubeapi *k, struct stats *s)
{
	k->reg = stats_register(s, &kubeapi_table, &k->st, NULL);
}

/* ---- lifetime ---------------------------------------------------------------- */

struct kubeapi *kubeapi_create(const struct kubeapi_params *p, const char **err)
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
	struct curlev *curl = curlev_create(p->base, err);
	if (!curl)
		return NULL;
	struct kubeapi *k = gw_xcalloc(1, sizeof(*k));
	k->p = *p;
	k->curl = curl;
	k->api = gw_xstrdup(url);
	k->token_file = gw_xstrdup(p->token_file);
	k->ca_file = p->ca_file ? gw_xstrdup(p->ca_file) : NULL;
	LIST_INIT(&k->calls);
	/* Per process (workers fork before this): replicas must not back
	 * off in step. */
	if (getrandom(&k->rng, sizeof(k->rng), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(k->rng))
		k->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
			 gw_now_ms();
	if (k->rng == 0)
		k->rng = 0x9e3779b97f4a7c15ULL;
	namespace_load(k, p->namespace_file);
	token_load(k, true);
	gw_log(GW_LOG_INFO, "kube", "Kubernetes API at %s (default namespace %s)",
	       k->api, k->ns);
	return k;
}

void kubeapi_destroy(struct kubeapi *k)
{
	if (!k)
		return;
	stats_unregister(k->reg);
	while (!LIST_EMPTY(&k->calls))
		call_free(LIST_FIRST(&k->calls));
	curlev_destroy(k->curl);
	if (k->token) {
		explicit_bzero(k->token, strlen(k->token));
		free(k->token);
	}
	free(k->api);
	free(k->token_file);
	free(k->ca_file);
	free(k);
}

const char *kubeapi_namespace(const struct kubeapi *k)
{
	return k->ns;
}

struct event_base *kubeapi_base(const struct kubeapi *k)
{
	return k->p.base;
}
