/* tls.c - the handshake phase (limit, timeout, counters, rate-limited
 * failure log), the SNI and ALPN callbacks, and certificate reload. The
 * certificate set itself is tls_certs.c; ticket keys are tls_ticket.c.
 *
 * The transport is libevent's OpenSSL bufferevent on the socket
 * (bufferevent_openssl_socket_new): SSL_read/SSL_write straight on the fd,
 * no extra buffer layer, and the rest of the gateway keeps talking to a
 * bufferevent. wire.c holds the three places where TLS must be treated
 * differently (no write-through, close_notify before half-close and close).
 */
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "config.h"
#include "tls.h"
#include "tls_int.h"
#include "core/addr.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/compat.h"

/* One handshake in progress. */
struct tls_hs {
	TAILQ_ENTRY(tls_hs) link;   /* in tls.pending, oldest first */
	struct tls *t;
	struct bufferevent *bev;    /* owned until handed to ready_cb */
	uint64_t deadline_ms;       /* monotonic: accept + handshake_timeout */
	struct sockaddr_storage sa; /* the peer */
	int salen;
	char why[128];              /* failure reason set by a callback */
};

TAILQ_HEAD(tls_hs_list, tls_hs);

struct tls {
	struct event_base *base;
	const struct gw_config *cfg;  /* current snapshot */
	struct tls_certs *certs;      /* current set (owned) */
	struct tls_tickets tickets;   /* ticket keys (secret inside) */
	struct tls_seed seed;         /* the start's random secret */
	struct tls_hs_list pending;   /* handshakes, by accept time */
	struct event *timer;          /* fires at the oldest one's deadline */
	struct gw_ratelimit rl;       /* handshake failure lines */
	struct tls_stats stats;
	struct stats_reg *reg;        /* NULL until tls_stats_register */
	tls_ready_cb ready_cb;
	tls_count_cb count_cb;
	void *arg;
};

int tls_seed_init(struct tls_seed *seed)
{
	return RAND_bytes(seed->bytes, sizeof(seed->bytes)) == 1 ? 0 : -1;
}

struct tls_tickets *tls_tickets_of(struct tls *t)
{
	return &t->tickets;
}

/* ---- callbacks on every SSL_CTX ------------------------------------------ */

int tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls *t = arg;
	if (!t)
		return SSL_TLSEXT_ERR_NOACK;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	bool is_default = false;
	/* The current set, even for a connection accepted before a reload:
	 * the newest certificate is the right one to show. */
	SSL_CTX *ctx = tls_certs_lookup(t->certs, name, &is_default);
	if (!ctx) {
		t->stats.unknown_name++;
		struct tls_hs *h = SSL_get_app_data(ssl);
		if (h) {
			char esc[80];
			gw_log_escape(esc, sizeof(esc), name ? name : "",
				      name ? strlen(name) : 0);
			snprintf(h->why, sizeof(h->why),
				 name ? "no certificate for '%s'"
				      : "no SNI and no default_cert%s",
				 name ? esc : "");
		}
		*alert = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	if (SSL_set_SSL_CTX(ssl, ctx) != ctx) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

int tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		const unsigned char *in, unsigned int inlen, void *arg)
{
	for (unsigned i = 0; i < inlen;) {
		unsigned len = in[i];
		if (i + 1 + len > inlen)
			break;
		if (len == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + len;
	}
	/* Only h2 (or something else) offered: no ALPN answer at all, which
	 * a client takes as HTTP/1.1 (RFC 7301 §3.2 would allow a fatal
	 * no_application_protocol alert; refusing politely serves more). */
	struct tls *t = arg;
	if (t)
		t->stats.alpn_no_h1++;
	return SSL_TLSEXT_ERR_NOACK;
}

/* ---- handshakes ------------------------------------------------------------- */

static void hs_arm(struct tls *t)
{
	struct tls_hs *h = TAILQ_FIRST(&t->pending);
	if (!h) {
		event_del(t->timer);
		return;
	}
	uint64_t now = gw_now_ms();
	uint64_t ms = h->deadline_ms > now ? h->deadline_ms - now : 0;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	event_add(t->timer, &tv);
}

static void hs_count(struct tls *t)
{
	if (t->count_cb)
		t->count_cb(t->arg, t->stats.pending);
}

/* Off the pending list; the caller decides what happens to bev. */
static void hs_unlink(struct tls_hs *h)
{
	struct tls *t = h->t;
	bool was_first = TAILQ_FIRST(&t->pending) == h;
	TAILQ_REMOVE(&t->pending, h, link);
	t->stats.pending--;
	SSL *ssl = bufferevent_openssl_get_ssl(h->bev);
	if (ssl)
		SSL_set_app_data(ssl, NULL);
	if (was_first)
		hs_arm(t);
}

/* Close a handshake's connection (no close_notify: there is no session). */
static void hs_close(struct tls_hs *h)
{
	hs_unlink(h);
	bufferevent_free(h->bev); /* frees the SSL, closes the socket */
	ERR_clear_error();
	free(h);
}

static void hs_fail(struct tls_hs *h, const char *why)
{
	struct tls *t = h->t;
	unsigned dropped = 0;
	if (GW_LOG_INFO <= gw_log_threshold &&
	    gw_ratelimit_allow(&t->rl, gw_now_ms(), &dropped)) {
		struct gw_addr a;
		char ip[48];
		gw_addr_from_sockaddr(&a, (const struct sockaddr *)&h->sa,
				      (socklen_t)h->salen);
		gw_addr_ip(&a, ip, sizeof(ip));
		if (dropped)
			gw_log(GW_LOG_INFO, "tls", "%s: handshake failed: %s (%u "
			       "similar lines suppressed)", ip, why, dropped);
		else
			gw_log(GW_LOG_INFO, "tls", "%s: handshake failed: %s", ip,
			       why);
	}
	hs_close(h);
	hs_count(t);
}

static void hs_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tls_hs *h = arg;
	struct tls *t = h->t;
	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		t->stats.handshakes++;
		if (SSL_session_reused(ssl))
			t->stats.resumed++;
		struct sockaddr_storage sa = h->sa;
		int salen = h->salen;
		hs_unlink(h);
		free(h);
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		hs_count(t);
		t->ready_cb(t->arg, bev, (const struct sockaddr *)&sa, salen);
		return;
	}
	t->stats.failed++;
	char why[192];
	if (h->why[0]) {
		snprintf(why, sizeof(why), "%s", h->why);
	} else if (what & BEV_EVENT_EOF) {
		snprintf(why, sizeof(why), "the client closed the connection");
	} else {
		/* libevent hands the queued errors back newest first (with
		 * SSL_get_error()'s code among them, which has no text); the
		 * oldest one with a text says what went wrong ("unsupported
		 * protocol"). */
		unsigned long e;
		const char *r = NULL, *s;
		while ((e = bufferevent_get_openssl_error(bev)))
			if ((s = ERR_reason_error_string(e)))
				r = s;
		snprintf(why, sizeof(why), "%s",
			 r ? r : "connection reset or socket error");
	}
	hs_fail(h, why);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tls *t = arg;
	/* +1: libevent's clock and ours may round a millisecond apart. */
	uint64_t now = gw_now_ms() + 1;
	struct tls_hs *h;
	while ((h = TAILQ_FIRST(&t->pending)) && h->deadline_ms <= now) {
		t->stats.timeouts++;
		t->stats.failed++;
		hs_fail(h, "timed out (handshake_timeout)");
	}
	hs_arm(t);
}

void tls_accept(struct tls *t, evutil_socket_t fd, const struct sockaddr *sa,
		int salen)
{
	if (t->stats.pending >= t->cfg->tls_max_handshakes) {
		t->stats.evicted++;
		t->stats.failed++;
		hs_fail(TAILQ_FIRST(&t->pending),
			"dropped for a newer one (max_handshakes)");
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct tls_hs *h = calloc(1, sizeof(*h));
	SSL *ssl = h ? SSL_new(tls_certs_base(t->certs)) : NULL;
	if (!ssl) {
		/* Memory pressure: drop this client, keep the worker. */
		t->stats.failed++;
		free(h);
		evutil_closesocket(fd);
		ERR_clear_error();
		return;
	}
	struct bufferevent *bev = bufferevent_openssl_socket_new(
		t->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
		BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		/* libevent frees ssl and closes fd itself when it fails after
		 * allocating, and not when the allocation failed: leaking on
		 * this out-of-memory path is the safe side of that. */
		t->stats.failed++;
		free(h);
		ERR_clear_error();
		return;
	}
	/* No bufferevent_openssl_set_allow_dirty_shutdown(): a peer that
	 * closes without close_notify already reads as a clean EOF through
	 * SSL_OP_IGNORE_UNEXPECTED_EOF, and libevent's "dirty shutdown" would
	 * also turn a failed write (EPIPE) into an EOF - which looks like a
	 * half-close whose response should go on being written. */
	h->t = t;
	h->bev = bev;
	h->deadline_ms = gw_now_ms() + t->cfg->tls_handshake_timeout_ms;
	if (salen > 0 && (size_t)salen <= sizeof(h->sa)) {
		memcpy(&h->sa, sa, (size_t)salen);
		h->salen = salen;
	}
	SSL_set_app_data(ssl, h);
	bufferevent_setcb(bev, NULL, NULL, hs_event_cb, h);
	TAILQ_INSERT_TAIL(&t->pending, h, link);
	if (t->stats.pending++ == 0)
		hs_arm(t);
	hs_count(t);
}

/* ---- lifecycle ------------------------------------------------------------------ */

struct tls *tls_create(const struct tls_params *p, char *err, size_t errlen)
{
	struct tls *t = gw_xcalloc(1, sizeof(*t));
	t->base = p->base;
	t->cfg = p->cfg;
	t->seed = *p->seed;
	t->ready_cb = p->ready_cb;
	t->count_cb = p->count_cb;
	t->arg = p->arg;
	TAILQ_INIT(&t->pending);
	t->rl.interval_ms = 10000;
	t->rl.burst = 5;
	if (tls_tickets_setup(&t->tickets, p->cfg, t->seed.bytes, err, errlen))
		goto fail;
	unsigned errors = 0;
	t->certs = tls_certs_load(p->cfg, t, NULL, &errors, err, errlen);
	t->stats.cert_errors += errors;
	if (!t->certs)
		goto fail;
	t->timer = evtimer_new(p->base, timer_cb, t);
	if (!t->timer) {
		snprintf(err, errlen, "tls: cannot create a timer");
		goto fail;
	}
	t->stats.certs = tls_certs_count(t->certs);
	gw_log(GW_LOG_INFO, "tls", "%u certificate(s) from %s%s", (unsigned)t->stats.certs,
	       p->cfg->tls_cert_dir,
	       errors ? " (some failed to load: see above)" : "");
	return t;
fail:
	tls_destroy(t);
	return NULL;
}

int tls_reload(struct tls *t, const struct gw_config *cfg)
{
	char err[1024];
	unsigned errors = 0;
	struct tls_tickets tk;
	if (tls_tickets_setup(&tk, cfg, t->seed.bytes, err, sizeof(err)) != 0) {
		t->stats.reload_failed++;
		gw_log(GW_LOG_WARN, "tls", "reload: %s; keeping the %u "
		       "certificate(s) loaded before", err, (unsigned)t->stats.certs);
		return -1;
	}
	struct tls_certs *n = tls_certs_load(cfg, t, t->certs, &errors, err,
					     sizeof(err));
	t->stats.cert_errors += errors;
	if (!n) {
		OPENSSL_cleanse(&tk, sizeof(tk));
		t->stats.reload_failed++;
		gw_log(GW_LOG_WARN, "tls", "reload: %s; keeping the %u "
		       "certificate(s) loaded before", err, (unsigned)t->stats.certs);
		return -1;
	}
	/* Handshakes in progress and open connections hold references to
	 * the contexts they use; dropping the set's own is safe. */
	tls_certs_destroy(t->certs);
	t->certs = n;
	t->tickets = tk;
	OPENSSL_cleanse(&tk, sizeof(tk));
	t->cfg = cfg;
	t->stats.reloads++;
	t->stats.certs = tls_certs_count(n);
	gw_log(GW_LOG_INFO, "tls", "reloaded %u certificate(s) from %s%s",
	       (unsigned)t->stats.certs, cfg->tls_cert_dir,
	       errors ? " (some failed to load: see above)" : "");
	return 0;
}

void tls_shutdown(struct tls *t)
{
	if (!t || TAILQ_EMPTY(&t->pending))
		return;
	while (!TAILQ_EMPTY(&t->pending))
		hs_close(TAILQ_FIRST(&t->pending));
	hs_count(t);
}

void tls_get_stats(const struct tls *t, struct tls_stats *out)
{
	*out = t->stats;
}

#define TS(f) offsetof(struct tls_stats, f)
#define FAIL_HELP                                                             \
	"TLS handshakes that did not complete, by reason: timeout "            \
	"(handshake_timeout), evicted (max_handshakes), other (protocol "      \
	"errors, refused versions or names, closes)."
static const struct stats_metric tls_metrics[] = {
	{"gateway_tls_handshakes", "TLS handshakes completed.", STATS_COUNTER,
	 TS(handshakes)},
	{"gateway_tls_resumed_handshakes",
	 "TLS handshakes completed by resuming a session.", STATS_COUNTER,
	 TS(resumed)},
	{"gateway_tls_handshake_failures", FAIL_HELP, STATS_COUNTER, TS(failed),
	 .label = "reason", .label_value = "any"},
	{"gateway_tls_handshake_failures", FAIL_HELP, STATS_COUNTER,
	 TS(timeouts), .label = "reason", .label_value = "timeout"},
	{"gateway_tls_handshake_failures", FAIL_HELP, STATS_COUNTER,
	 TS(evicted), .label = "reason", .label_value = "evicted"},
	{"gateway_tls_unknown_names",
	 "TLS clients whose SNI name matched no certificate (no default_cert).",
	 STATS_COUNTER, TS(unknown_name)},
	{"gateway_tls_handshakes_in_progress", "TLS handshakes in progress now.",
	 STATS_GAUGE, TS(pending)},
	{"gateway_tls_certificates", "Certificate/key pairs loaded now.",
	 STATS_GAUGE, TS(certs)},
	{"gateway_tls_certificate_errors",
	 "Certificate/key pairs that failed to load (start and reloads).",
	 STATS_COUNTER, TS(cert_errors)},
	{"gateway_tls_reloads", "Certificate reloads that installed a new set.",
	 STATS_COUNTER, TS(reloads)},
	{"gateway_tls_reload_failures",
	 "Certificate reloads refused (the old set kept whole).",
	 STATS_COUNTER, TS(reload_failed)},
};
#undef FAIL_HELP
#undef TS
static const struct stats_table tls_table = {
	.metrics = tls_metrics,
	.nmetrics = GW_ARRAY_LEN(tls_metrics),
};

void tls_stats_register(struct tls *t, struct stats *s)
{
	t->reg = stats_register(s, &tls_table, &t->stats, NULL);
}

int tls_check(const struct gw_config *cfg)
{
	char err[1024];
	unsigned errors = 0;
	struct tls_tickets tk;
	struct tls_seed seed = {{0}};
	if (tls_tickets_setup(&tk, cfg, seed.bytes, err, sizeof(err)) != 0) {
		gw_log(GW_LOG_ERROR, "tls", "%s", err);
		return -1;
	}
	OPENSSL_cleanse(&tk, sizeof(tk));
	struct tls_certs *s = tls_certs_load(cfg, NULL, NULL, &errors, err,
					     sizeof(err));
	if (!s) {
		gw_log(GW_LOG_ERROR, "tls", "%s", err);
		return -1;
	}
	tls_certs_destroy(s);
	return errors ? -1 : 0;
}

void tls_destroy(struct tls *t)
{
	if (!t)
		return;
	stats_unregister(t->reg);
	while (!TAILQ_EMPTY(&t->pending))
		hs_close(TAILQ_FIRST(&t->pending));
	if (t->timer)
		event_free(t->timer);
	tls_certs_destroy(t->certs);
	OPENSSL_cleanse(&t->tickets, sizeof(t->tickets));
	OPENSSL_cleanse(&t->seed, sizeof(t->seed));
	free(t);
}
