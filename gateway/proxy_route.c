/* proxy_route.c - from a parsed request head to "go upstream": route by
 * host, authorize private projects (login redirect, 401, 403), and wake a
 * sleeping app (hold, waking page, status poll). The client side of the
 * connection lives in proxy.c, the upstream leg in proxy_up.c.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activator.h"
#include "auth.h"
#include "config.h"
#include "pages.h"
#include "proxy_int.h"
#include "routes.h"
#include "routesync.h"
#include "core/log.h"
#include "core/compat.h"

/* True when the client asks for HTML (a browser): error pages as HTML. */
bool proxy_wants_html(const struct http1_head *req)
{
	const struct http1_header *h = http1_head_get(req, "Accept");
	if (!h)
		return false;
	for (size_t i = 0; i + 9 <= h->value.len; i++)
		if (gw_str_ieq_cstr(gw_str_make(h->value.p + i, 9), "text/html"))
			return true;
	return false;
}


/* A top-level browser navigation, which can follow a redirect to a login
 * page (API calls and subresources get 401 instead). */
static bool is_navigation(const struct http1_head *req)
{
	if (req->method != HTTP_GET && req->method != HTTP_HEAD)
		return false;
	const struct http1_header *m = http1_head_get(req, "Sec-Fetch-Mode");
	if (m)
		return gw_str_ieq_cstr(gw_str_trim(m->value), "navigate");
	return proxy_wants_html(req);
}

/* The client reached us over HTTPS: TLS to the gateway, or a trusted
 * proxy in front that terminated it and says so. */
static bool conn_is_https(const struct conn *c)
{
	if (c->tls)
		return true;
	const struct http1_header *p =
		c->peer_trusted ? http1_head_get(&c->x.req, "X-Forwarded-Proto")
				: NULL;
	return p && gw_str_ieq_cstr(gw_str_trim(p->value), "https");
}

/* ACME http-01 challenges (RFC 8555 §8.3) arrive over plain HTTP, before
 * the name has a certificate: never redirected. */
static bool is_acme_challenge(struct gw_str path)
{
	static const char prefix[] = "/.well-known/acme-challenge/";
	return path.len >= sizeof(prefix) - 1 &&
	       memcmp(path.p, prefix, sizeof(prefix) - 1) == 0;
}

/* Plain HTTP for a routed host: answer with its https:// URL. The
 * Location is rebuilt from the normalised routing key (a name we serve,
 * never the raw Host), [tls] redirect_port and the origin-form target, so
 * it cannot point anywhere else. GET and HEAD get the configured status;
 * other methods 308 (or 307 when the configured one is temporary), which
 * keep the method and body. */
static void https_redirect(struct conn *c)
{
	const struct gw_config *cfg = c->cfg;
	struct exchange *x = &c->x;
	unsigned code = cfg->tls_redirect;
	if (x->req.method != HTTP_GET && x->req.method != HTTP_HEAD)
		code = code == 301 || code == 308 ? 308 : 307;
	char port[8] = "";
	if (cfg->tls_redirect_port != 443)
		snprintf(port, sizeof(port), ":%u", cfg->tls_redirect_port);
	struct gw_str path = x->path;
	bool origin = path.len && (path.p[0] == '/' || x->path_needs_slash);
	if (!origin) /* asterisk-form: the server itself */
		path = GW_STR_LIT("/");
	size_t n = 8 + strlen(x->host) + strlen(port) + 1 + path.len + 1;
	x->redirect = gw_xmalloc(n);
	snprintf(x->redirect, n, "https://%s%s%s%.*s", x->host, port,
		 origin && x->path_needs_slash ? "/" : "", (int)path.len, path.p);
	conn_fail(c, code == 301   ? PROXY_ERR_HTTPS_MOVED
		     : code == 302 ? PROXY_ERR_HTTPS_FOUND
		     : code == 307 ? PROXY_ERR_HTTPS_TEMPORARY
				   : PROXY_ERR_HTTPS_PERMANENT,
		  NULL);
}

/* Append s percent-encoded (everything but RFC 3986 unreserved). */
static void add_encoded(struct evbuffer *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '~') {
			evbuffer_add(b, s + i, 1);
		} else {
			char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
			evbuffer_add(b, e, 3);
		}
	}
}

/* login_url?return_to=<this request's URL>. The URL is rebuilt from the
 * normalised routing host (a known app under our domain; its port only
 * when not the scheme's default) and an origin-form path that always
 * starts with '/', so it can only lead back here: no open redirect. */
static char *login_redirect(struct conn *c)
{
	const struct exchange *x = &c->x;
	const char *login = c->cfg->auth_login_url;
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return NULL;
	bool https = conn_is_https(c);
	evbuffer_add(b, login, strlen(login));
	evbuffer_add(b, strchr(login, '?') ? "&return_to=" : "?return_to=", 11);
	const char *scheme = https ? "https://" : "http://";
	add_encoded(b, scheme, strlen(scheme));
	add_encoded(b, x->host, strlen(x->host));
	struct gw_str port = hostname_port(x->host_out);
	uint64_t pn = 0;
	if (port.len && gw_str_to_u64(port, &pn) && pn != (https ? 443 : 80)) {
		char digits[8];
		int n = snprintf(digits, sizeof(digits), ":%u", (unsigned)pn);
		add_encoded(b, digits, (size_t)n);
	}
	if (x->path_needs_slash)
		add_encoded(b, "/", 1);
	if (x->path_needs_slash || (x->path.len && x->path.p[0] == '/'))
		add_encoded(b, x->path.p, x->path.len);
	else
		add_encoded(b, "/", 1); /* "*" or anything not origin-form */
	size_t n = evbuffer_get_length(b);
	char *s = gw_xmalloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

/* Turn an authorization decision into "go on" (0) or an answer (-1). */
static int auth_decide(struct conn *c, enum auth_result res)
{
	struct exchange *x = &c->x;
	switch (res) {
	case AUTH_ALLOW:
		return 0;
	case AUTH_NO_SESSION:
		if (c->cfg->auth_login_url && is_navigation(&x->req) &&
		    (x->redirect = login_redirect(c))) {
			conn_fail(c, PROXY_ERR_AUTH_LOGIN, NULL);
			return -1;
		}
		conn_fail(c, PROXY_ERR_AUTH_REQUIRED, NULL);
		return -1;
	case AUTH_FORBIDDEN:
		conn_fail(c, PROXY_ERR_AUTH_FORBIDDEN, NULL);
		return -1;
	case AUTH_UNAVAILABLE:
	case AUTH_PENDING:
	default:
		conn_fail(c, PROXY_ERR_AUTH_UNAVAILABLE, NULL);
		return -1;
	}
}

void conn_unhold(struct conn *c)
{
	struct exchange *x = &c->x;
	activator_cancel(x->act_hold);
	x->act_hold = NULL;
	if (x->hold_close) {
		event_free(x->hold_close);
		x->hold_close = NULL;
	}
}

/* A held client went away. Reading is off while held (the body stays in
 * the socket), so its EOF would never be read: EV_CLOSED reports the FIN
 * without reading. Its queue slot is free at once, and its request never
 * reaches the app. */
static void hold_closed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	conn_enter(c);
	if (c->x.act_hold) {
		gw_log(GW_LOG_DEBUG, "proxy", "%s %s: client left while held",
		       c->peer_ip, c->x.host);
		c->x.status = 499; /* nginx's "client closed request" */
		conn_access_log(c);
		conn_close(c); /* exchange_reset gives the hold back */
	}
	conn_leave(c);
}

/* Watch for the client leaving while held, where the loop can tell
 * without reading (epoll: EPOLLRDHUP). Without it, an abandoned hold
 * ends at its timeout like any other. */
static void hold_watch_close(struct conn *c)
{
	struct event_base *base = c->px->base;
	if (!(event_base_get_features(base) & EV_FEATURE_EARLY_CLOSE))
		return;
	c->x.hold_close = event_new(base, bufferevent_getfd(c->bev), EV_CLOSED,
				    hold_closed_cb, c);
	if (c->x.hold_close)
		event_add(c->x.hold_close, NULL);
}

static void act_ready(void *arg, bool ok, const struct gw_addr *addr,
		      unsigned waited_ms, const char *why)
{
	struct conn *c = arg;
	struct exchange *x = &c->x;
	conn_enter(c);
	x->act_hold = NULL; /* the activator freed it */
	conn_unhold(c);     /* the close watch */
	event_del(c->timer); /* the waking-page grace */
	bufferevent_enable(c->bev, EV_READ);
	if (!ok) {
		conn_fail(c, PROXY_ERR_WAKE_FAILED, why);
	} else if (x->wake_status) {
		activator_done(x->act, addr); /* nothing goes to the app */
		conn_fail(c, PROXY_ERR_WAKE_READY, NULL);
	} else {
		x->act_counted = true;
		x->cold_ms = waited_ms ? waited_ms : 1;
		x->up_addr_copy = *addr;
		up_start(c);
	}
	conn_leave(c);
}

/* Routed and authorized: wake the app if it sleeps, then go upstream. */
void conn_go(struct conn *c)
{
	struct exchange *x = &c->x;
	if (!x->act) {
		up_start(c);
		return;
	}
	/* The waking page's poll: answered here, never sent to the app. */
	x->wake_status = x->path.len >= sizeof(PAGES_WAKE_PATH) - 1 &&
			 memcmp(x->path.p, PAGES_WAKE_PATH,
				sizeof(PAGES_WAKE_PATH) - 1) == 0 &&
			 (x->path.len == sizeof(PAGES_WAKE_PATH) - 1 ||
			  x->path.p[sizeof(PAGES_WAKE_PATH) - 1] == '?');
	switch (activator_acquire(x->act, act_ready, c, &x->act_hold,
				  &x->up_addr_copy)) {
	case ACT_READY:
		if (x->wake_status) {
			activator_done(x->act, &x->up_addr_copy);
			conn_fail(c, PROXY_ERR_WAKE_READY, NULL);
			return;
		}
		x->act_counted = true;
		up_start(c);
		return;
	case ACT_HELD:
		/* The body stays in the socket while we wait. */
		bufferevent_disable(c->bev, EV_READ);
		hold_watch_close(c);
		/* A person waiting on a blank tab gets a page that says
		 * what is happening, and opens the app when it is ready. */
		if (!x->wake_status && c->cfg->waking_page_after_ms &&
		    is_navigation(&x->req))
			conn_arm_timer(c, c->cfg->waking_page_after_ms);
		return;
	case ACT_FULL:
		conn_fail(c, PROXY_ERR_HOLD_FULL, NULL);
		return;
	case ACT_FAILED:
	default:
		conn_fail(c, PROXY_ERR_WAKE_FAILED, "could not start the app");
		return;
	}
}

static void auth_done(void *arg, enum auth_result res)
{
	struct conn *c = arg;
	conn_enter(c);
	c->x.auth_req = NULL; /* auth.c freed it */
	if (auth_decide(c, res) == 0)
		conn_go(c);
	conn_leave(c);
}

int conn_route(struct conn *c)
{
	struct exchange *x = &c->x;
	const struct gw_config *cfg = c->cfg;
	struct http1_head *req = &x->req;
	const char *err = NULL;

	if (req->host_count > 1) {
		conn_fail(c, PROXY_ERR_BAD_REQUEST, "more than one Host field");
		return -1;
	}
	if (req->host_count == 0 && req->minor >= 1) {
		conn_fail(c, PROXY_ERR_BAD_REQUEST, "no Host field");
		return -1;
	}
	struct gw_str authority = req->host;
	x->path = req->target;
	int form = hostname_split_target(req->target, &authority, &x->path,
					 &x->path_needs_slash, &err);
	if (form < 0) {
		conn_fail(c, PROXY_ERR_BAD_REQUEST, err);
		return -1;
	}
	if (form == 0 && req->host_count == 0) {
		conn_fail(c, PROXY_ERR_BAD_REQUEST, "no Host field");
		return -1;
	}
	if (hostname_normalize(authority, x->host, &err) != 0) {
		x->host[0] = '\0';
		conn_fail(c, PROXY_ERR_BAD_REQUEST, err);
		return -1;
	}
	x->host_out = authority;

	x->upgrade = req->upgrade;
	if (x->upgrade && gw_str_list_has(req->upgrade_proto, "h2c")) {
		/* HTTP/2 cleartext upgrade is not offered: ignoring the
		 * Upgrade field is the RFC 9110 §7.8 way to refuse it. */
		x->upgrade = false;
	}

	bool acme = !c->tls && is_acme_challenge(x->path);
	if (acme && cfg->tls_acme_backend) {
		/* To the solver for any host: the challenge for a name comes
		 * before the name has a route (or a certificate). */
		x->up_addr_copy = *cfg->tls_acme_backend;
		x->up_addr = &x->up_addr_copy;
		return 0;
	}

	struct route *r = routes_lookup(c->px->routes, x->host);
	if (!r) {
		/* Without a complete table a missing host may well exist. */
		bool unsure = c->px->rsync &&
			      !routesync_authoritative(c->px->rsync);
		conn_fail(c, unsure ? PROXY_ERR_ROUTES_UNAVAILABLE
				    : PROXY_ERR_NO_ROUTE,
			  NULL);
		return -1;
	}
	x->prow = proxy_project_row(c->px, r);
	if (cfg->tls_redirect && !acme && !conn_is_https(c)) {
		/* Before authorization and waking: over plain HTTP neither a
		 * session cookie nor an app's time is spent. */
		https_redirect(c);
		return -1;
	}
	const struct gw_addr *a = route_pick(r);
	bool kube = r->deployment && activator_has_kube(c->px->act);
	if (!a && !kube) {
		conn_fail(c, PROXY_ERR_NO_UPSTREAM, NULL);
		return -1;
	}
	if (a)
		x->up_addr_copy = *a;
	x->up_addr = &x->up_addr_copy;
	if ((r->exec_command || kube) && c->px->act) {
		/* Scale to zero: the activator says where to go (and when). */
		struct act_target t = {
			.exec_command = r->exec_command,
			.namespace_ = kube ? r->namespace_ : NULL,
			.deployment = kube ? r->deployment : NULL,
			.service = kube ? r->service : NULL,
			.has_addr = a != NULL,
			.idle_timeout_s = r->idle_timeout_s,
			.max_replicas = r->max_replicas,
		};
		if (a)
			t.addr = *a;
		x->act = activator_project(c->px->act, r->project, &t);
	}
	if (!r->private_)
		return 0;
	if (!c->px->auth) {
		conn_fail(c, PROXY_ERR_AUTH_UNAVAILABLE, "no Redis configured");
		return -1;
	}
	struct gw_str sid = auth_cookie_value(req, cfg->auth_cookie);
	enum auth_result res = auth_check(c->px->auth, sid, r->project,
					  auth_done, c, &x->auth_req);
	if (res == AUTH_PENDING)
		return 1;
	return auth_decide(c, res);
}

