/* config.c - one key table drives parsing, defaults, -t and --help-config.
 *
 * Each key is a row {section, key, type, default, min, max, offset, doc}.
 * Defaults are applied through the same parsers as file values, so a
 * default that does not parse fails the unit tests, not production.
 * Errors read "FILE:LINE: [section] key: reason". The [routes] section is
 * free-form: every key is a host name.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "hostname.h"
#include "core/compat.h"

enum key_type {
	T_DURATION = 0, /* unsigned ms: 500ms, 10s, 2m, 1h; bare = seconds */
	T_SIZE,         /* size_t bytes: 512, 16k, 1m */
	T_UINT,         /* unsigned */
	T_WORKERS,      /* auto | 1..max */
	T_LEVEL,        /* error|warn|info|debug */
	T_STRING,       /* char * */
	T_LISTEN,       /* repeatable ADDRESS:PORT */
	T_CIDRS,        /* list of CIDRs */
	T_OPTSTR,       /* char *, empty = NULL (unset) */
	T_OPTADDR,      /* struct gw_addr *, empty = NULL (unset) */
	T_SECRETFILE,   /* char *: the contents of the named file (trailing
			   newline dropped), empty = leave as is */
	T_TLS_LISTEN,   /* repeatable ADDRESS:PORT into tls_listen */
	T_ENUM,         /* unsigned, one of the key's choices */
};

/* One accepted word of a T_ENUM key and the value stored for it. */
struct choice {
	const char *word;
	unsigned value;
};

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	const char *def;
	unsigned long long min, max;
	size_t offset;
	const char *doc;
	const struct choice *choices; /* T_ENUM: NULL-terminated list */
	/* Optional check of a non-empty string value; returns a reason or
	 * NULL when the value is fine. */
	const char *(*check)(const char *v);
};

static const struct choice tls_versions[] = {
	{"1.2", CONFIG_TLS_1_2}, {"1.3", CONFIG_TLS_1_3}, {NULL, 0}};
static const struct choice readyz_redis[] = {
	{"never", CONFIG_READYZ_REDIS_NEVER},
	{"startup", CONFIG_READYZ_REDIS_STARTUP},
	{"always", CONFIG_READYZ_REDIS_ALWAYS},
	{NULL, 0}};
static const struct choice off_on[] = {{"off", 0}, {"on", 1}, {NULL, 0}};
static const struct choice redirects[] = {
	{"off", 0}, {"301", 301}, {"302", 302}, {"307", 307}, {"308", 308},
	{NULL, 0}};

/* The value goes out as a header field: a directive list that starts with
 * max-age (RFC 6797 §6.1). */
static const char *check_hsts(const char *v)
{
	if (strncasecmp(v, "max-age=", 8) != 0 || v[8] < '0' || v[8] > '9')
		return "expected a value like 'max-age=31536000; includeSubDomains'";
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "control characters are not allowed";
	return NULL;
}

#define OFF(f) offsetof(struct gw_config, f)
#define MS(x) ((unsigned long long)(x))
#define SEC(x) (MS(x) * 1000)

static const struct key keys[] = {
	{"gateway", "listen", T_LISTEN, "127.0.0.1:8080", 0, 0, OFF(listen),
	 "address to accept clients on; repeat the key for more ([::]:8080 for IPv6)"},
	{"gateway", "workers", T_WORKERS, "1", 1, 64, OFF(workers),
	 "worker processes sharing the listeners (SO_REUSEPORT); auto = one per CPU"},
	{"gateway", "max_connections", T_UINT, "10000", 1, 1000000,
	 OFF(max_connections),
	 "client connections per worker; at the limit the worker stops accepting"},
	{"gateway", "drain_timeout", T_DURATION, "30s", 0, SEC(600),
	 OFF(drain_timeout_ms),
	 "on SIGTERM, how long open exchanges may take to finish"},
	{"gateway", "trusted_proxies", T_CIDRS, "", 0, 0, OFF(trusted_proxies),
	 "peers (CIDRs) whose X-Forwarded-For/-Proto/-Host and Forwarded are kept"},

	{"client", "header_max_bytes", T_SIZE, "16k", 1024, 1048576,
	 OFF(header_max_bytes), "largest request head; larger gets 431"},
	{"client", "header_max_count", T_UINT, "100", 1, 1000,
	 OFF(header_max_count), "most request header fields; more gets 431"},
	{"client", "header_timeout", T_DURATION, "10s", 100, SEC(600),
	 OFF(header_timeout_ms),
	 "time for a whole request head to arrive; slower gets 408 and close"},
	{"client", "keepalive_timeout", T_DURATION, "75s", 0, SEC(3600),
	 OFF(keepalive_timeout_ms),
	 "idle time between requests on a connection; 0 disables keep-alive"},
	{"client", "keepalive_requests", T_UINT, "1000", 1, 1000000,
	 OFF(keepalive_requests), "requests served on one client connection"},
	{"client", "body_timeout", T_DURATION, "60s", 100, SEC(3600),
	 OFF(body_timeout_ms),
	 "idle time while reading a request body; longer gets 408"},
	{"client", "send_timeout", T_DURATION, "60s", 100, SEC(3600),
	 OFF(send_timeout_ms),
	 "idle time while the client does not read its response"},
	{"client", "buffer_size", T_SIZE, "64k", 4096, 16777216,
	 OFF(buffer_size),
	 "per-direction buffer high-water mark (backpressure)"},
	{"client", "body_max_bytes", T_SIZE, "0", 0, 1ULL << 40,
	 OFF(body_max_bytes),
	 "largest request body; larger gets 413; 0 = no limit"},

	{"upstream", "connect_timeout", T_DURATION, "5s", 10, SEC(600),
	 OFF(connect_timeout_ms), "TCP connect to an app; slower gets 504"},
	{"upstream", "first_byte_timeout", T_DURATION, "60s", 100, SEC(3600),
	 OFF(first_byte_timeout_ms),
	 "deadline for the whole final response head, from the request being "
	 "sent (1xx and dribbled bytes do not extend it); later gets 504"},
	{"upstream", "read_timeout", T_DURATION, "60s", 100, SEC(3600),
	 OFF(read_timeout_ms), "idle time while reading a response body"},
	{"upstream", "send_timeout", T_DURATION, "60s", 100, SEC(3600),
	 OFF(up_send_timeout_ms), "idle time while the app does not read"},
	{"upstream", "keepalive", T_UINT, "64", 0, 10000,
	 OFF(keepalive_max_idle),
	 "idle pooled connections kept per app address; 0 disables pooling"},
	{"upstream", "keepalive_timeout", T_DURATION, "60s", SEC(1), SEC(3600),
	 OFF(keepalive_idle_timeout_ms),
	 "how long an idle pooled connection is kept"},
	{"upstream", "keepalive_trim_delay", T_DURATION, "1s", 0, SEC(60),
	 OFF(keepalive_trim_delay_ms),
	 "idle connections beyond keepalive are closed this long after a burst; "
	 "0 = at once"},
	{"upstream", "tunnel_idle_timeout", T_DURATION, "1h", SEC(1), SEC(86400),
	 OFF(tunnel_idle_timeout_ms),
	 "WebSocket/upgrade tunnel closed after both sides are silent this long"},
	{"upstream", "header_max_bytes", T_SIZE, "64k", 1024, 1048576,
	 OFF(response_header_max_bytes),
	 "largest response head from an app, and the most bytes of 1xx interim "
	 "heads per exchange; more gets 502"},

	{"gateway", "domain", T_OPTSTR, "", 0, 0, OFF(domain),
	 "apps live under <project>.<domain> (gatewayctl route add; optional)"},

	{"redis", "address", T_OPTADDR, "", 0, 0, OFF(redis_addr),
	 "Redis with the routes and sessions (ip:port); empty = config routes only"},
	{"redis", "password", T_OPTSTR, "", 0, 0, OFF(redis_password),
	 "AUTH password; keep this file unreadable by others when set"},
	{"redis", "db", T_UINT, "0", 0, 1000, OFF(redis_db),
	 "database number (SELECT)"},
	{"redis", "connect_timeout", T_DURATION, "1s", 10, SEC(60),
	 OFF(redis_connect_timeout_ms), "TCP connect to Redis"},
	{"redis", "command_timeout", T_DURATION, "1s", 10, SEC(60),
	 OFF(redis_command_timeout_ms),
	 "a reply slower than this counts as Redis down (reconnect)"},
	{"redis", "reconnect_max", T_DURATION, "5s", 100, SEC(300),
	 OFF(redis_reconnect_max_ms),
	 "longest pause between reconnect attempts (backoff from 100ms)"},
	{"redis", "ping_interval", T_DURATION, "1s", 100, SEC(60),
	 OFF(redis_ping_interval_ms),
	 "an idle connection is PINGed this often; no answer within command_timeout = down"},

	{"redis", "password_file", T_SECRETFILE, "", 0, 0, OFF(redis_password),
	 "read the AUTH password from this file (e.g. a mounted Kubernetes "
	 "Secret); replaces password"},

	{"auth", "cookie_name", T_STRING, "gw_session", 0, 0, OFF(auth_cookie),
	 "the platform's session cookie; never forwarded to apps"},
	{"auth", "login_url", T_OPTSTR, "", 0, 0, OFF(auth_login_url),
	 "browsers without a session are sent here (?return_to=...); empty = 401"},
	{"auth", "cache_ttl", T_DURATION, "2s", 0, SEC(60), OFF(auth_cache_ttl_ms),
	 "how long an authorization decision is reused; revocations drop it at once"},
	{"auth", "cache_max", T_UINT, "10000", 16, 1000000, OFF(auth_cache_max),
	 "most cached decisions per worker"},

	{"activator", "hold_timeout", T_DURATION, "30s", 100, SEC(600),
	 OFF(hold_timeout_ms),
	 "a request held for a waking app gets 503 + Retry-After after this"},
	{"activator", "hold_max_per_project", T_UINT, "1000", 1, 1000000,
	 OFF(hold_max_per_project),
	 "requests held per waking app; more get 503 at once"},
	{"activator", "hold_max", T_UINT, "10000", 1, 10000000, OFF(hold_max),
	 "requests held in all, per worker; more get 503 at once"},
	{"activator", "idle_timeout", T_DURATION, "5m", SEC(1), SEC(86400 * 7),
	 OFF(idle_timeout_ms),
	 "an app with no requests and no open streams this long is stopped"},
	{"activator", "probe_interval", T_DURATION, "2ms", 1, SEC(10),
	 OFF(probe_interval_ms),
	 "exec apps: while waking, how often the address is tried (TCP connect)"},
	{"activator", "wake_timeout", T_DURATION, "2m", SEC(1), SEC(3600),
	 OFF(wake_timeout_ms),
	 "a wake not ready after this failed: held requests get 503, an exec "
	 "app is stopped"},
	{"activator", "waking_page_after", T_DURATION, "2s", 0, SEC(600),
	 OFF(waking_page_after_ms),
	 "a browser still waiting after this gets a page that opens the app when "
	 "ready; 0 = never"},
	{"activator", "release_concurrency", T_UINT, "256", 1, 1000000,
	 OFF(release_concurrency),
	 "held requests sent to a just-woken app at once; the rest follow as "
	 "those finish"},
	{"activator", "stop_grace", T_DURATION, "10s", 0, SEC(600),
	 OFF(stop_grace_ms), "exec apps: SIGTERM, then SIGKILL after this"},

	{"kubernetes", "api_url", T_OPTSTR, "", 0, 0, OFF(kube_api_url),
	 "API server URL; empty = in-cluster (KUBERNETES_SERVICE_HOST/PORT) or "
	 "no Kubernetes"},
	{"kubernetes", "token_file", T_STRING,
	 "/var/run/secrets/kubernetes.io/serviceaccount/token", 0, 0,
	 OFF(kube_token_file),
	 "bearer token, re-read periodically and after a 401 (tokens rotate)"},
	{"kubernetes", "ca_file", T_OPTSTR,
	 "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", 0, 0,
	 OFF(kube_ca_file), "CA bundle for the API server's certificate"},
	{"kubernetes", "token_reload", T_DURATION, "60s", SEC(1), SEC(3600),
	 OFF(kube_token_reload_ms), "how often the token file is re-read"},
	{"kubernetes", "request_timeout", T_DURATION, "5s", 100, SEC(120),
	 OFF(kube_request_timeout_ms),
	 "one API request; a call is retried within 3x this"},
	{"kubernetes", "watch_timeout", T_DURATION, "5m", SEC(1), SEC(3600),
	 OFF(kube_watch_timeout_ms),
	 "server-side length of one EndpointSlice watch before it is resumed"},
	{"kubernetes", "namespace_file", T_OPTSTR,
	 "/var/run/secrets/kubernetes.io/serviceaccount/namespace", 0, 0,
	 OFF(kube_namespace_file),
	 "namespace of routes that name none (missing file: default)"},
	{"kubernetes", "probe_interval", T_DURATION, "50ms", 1, SEC(10),
	 OFF(kube_probe_interval_ms),
	 "while waking, how often each pod address is tried (TCP connect)"},
	{"kubernetes", "poll_interval", T_DURATION, "1s", 100, SEC(60),
	 OFF(kube_poll_interval_ms),
	 "EndpointSlices are listed this often when watching fails"},
	{"kubernetes", "wake_replicas", T_UINT, "1", 1, 1000,
	 OFF(kube_wake_replicas),
	 "replicas a Deployment at 0 is scaled to (capped by max_replicas)"},
	{"kubernetes", "max_replicas", T_UINT, "1", 1, 1000,
	 OFF(kube_max_replicas),
	 "most replicas the gateway asks for, when the route sets none"},

	{"fleet", "replica_ttl", T_DURATION, "10s", SEC(1), SEC(300),
	 OFF(fleet_replica_ttl_ms),
	 "a gateway process silent this long counts as gone (heartbeat every "
	 "third); scale-downs wait for every live one"},
	{"fleet", "lease_ttl", T_DURATION, "10s", SEC(1), SEC(300),
	 OFF(fleet_lease_ttl_ms),
	 "the scale-down lease; its holder dying delays scale-downs this long"},
	{"fleet", "wake_lock_ttl", T_DURATION, "5s", SEC(1), SEC(300),
	 OFF(fleet_wake_lock_ttl_ms),
	 "the wake lock (renewed while waking); a holder that dies is taken "
	 "over within this"},
	{"fleet", "drain_timeout", T_DURATION, "2s", 100, SEC(60),
	 OFF(fleet_drain_timeout_ms),
	 "a scale-down is called off unless every live process agrees within "
	 "this"},
	{"fleet", "reap_interval", T_DURATION, "1s", 100, SEC(60),
	 OFF(fleet_reap_interval_ms),
	 "how often the lease holder looks for projects idle across the fleet"},
	{"fleet", "reap_batch", T_UINT, "64", 1, 10000, OFF(fleet_reap_batch),
	 "idle projects the lease holder looks at per round"},
	{"fleet", "max_waking", T_UINT, "0", 0, 100000, OFF(fleet_max_waking),
	 "projects waking at once across the fleet; more wait in a FIFO "
	 "(0 = no cap)"},
	{"fleet", "prewake", T_ENUM, "off", 0, 0, OFF(fleet_prewake),
	 "on: a \"login <user>\" event wakes that user's last project",
	 off_on},

	{"admin", "listen", T_OPTADDR, "127.0.0.1:9180", 0, 0, OFF(admin_listen),
	 "admin listener (/metrics, /healthz, /readyz); empty = none. Keep it "
	 "off the public network"},
	{"admin", "max_connections", T_UINT, "16", 1, 1024,
	 OFF(admin_max_connections),
	 "open admin connections; at the limit the admin listener pauses"},
	{"admin", "timeout", T_DURATION, "5s", 100, SEC(60), OFF(admin_timeout_ms),
	 "an admin request must arrive and its answer be written within this"},
	{"admin", "header_max_bytes", T_SIZE, "8k", 1024, 65536,
	 OFF(admin_header_max_bytes),
	 "largest admin request head (and at most 64 fields); larger gets 431"},
	{"admin", "worker_timeout", T_DURATION, "1s", 10, SEC(30),
	 OFF(admin_worker_timeout_ms),
	 "workers > 1: how long a scrape waits for each worker's counters"},
	{"admin", "metrics_max_projects", T_UINT, "100", 0, 100000,
	 OFF(metrics_max_projects),
	 "projects with their own metric series; the others add up in "
	 "project=\"_other\""},
	{"admin", "readyz_redis", T_ENUM, "startup", 0, 0, OFF(readyz_redis),
	 "when /readyz needs Redis: never, startup (first route load done) or "
	 "always (in sync now)", readyz_redis},

	{"tls", "listen", T_TLS_LISTEN, "", 0, 0, OFF(tls_listen),
	 "address for TLS (HTTPS) clients; repeat for more; none = no TLS"},
	{"tls", "cert_dir", T_OPTSTR, "", 0, 0, OFF(tls_cert_dir),
	 "directory of NAME.crt + NAME.key pairs (or NAME/tls.crt + NAME/tls.key)"},
	{"tls", "default_cert", T_OPTSTR, "", 0, 0, OFF(tls_default_cert),
	 "pair NAME served when SNI matches no certificate; empty = refuse"},
	{"tls", "min_version", T_ENUM, "1.2", 0, 0, OFF(tls_min_version),
	 "oldest TLS version accepted: 1.2 or 1.3", tls_versions},
	{"tls", "ciphers", T_STRING, "ECDHE+AESGCM:ECDHE+CHACHA20", 0, 0,
	 OFF(tls_ciphers), "TLS 1.2 cipher list (OpenSSL syntax)"},
	{"tls", "ciphersuites", T_STRING,
	 "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
	 0, 0, OFF(tls_ciphersuites), "TLS 1.3 cipher suites"},
	{"tls", "session_ticket_rotate", T_DURATION, "1h", 0, SEC(86400 * 7),
	 OFF(tls_ticket_rotate_ms),
	 "session ticket key period (a ticket resumes for 1-2 periods); 0 = no tickets"},
	{"tls", "session_ticket_key_file", T_OPTSTR, "", 0, 0,
	 OFF(tls_ticket_key_file),
	 "file with a shared secret (>= 32 bytes) for ticket keys; empty = random at start"},
	{"tls", "handshake_timeout", T_DURATION, "10s", 100, SEC(600),
	 OFF(tls_handshake_timeout_ms),
	 "a TLS handshake must complete this long after accept"},
	{"tls", "max_handshakes", T_UINT, "1000", 1, 1000000,
	 OFF(tls_max_handshakes),
	 "handshakes in progress per worker; at the limit the oldest is dropped"},
	{"tls", "hsts", T_OPTSTR, "", 0, 0, OFF(tls_hsts),
	 "Strict-Transport-Security value on HTTPS responses; empty = none",
	 NULL, check_hsts},
	{"tls", "redirect", T_ENUM, "off", 0, 0, OFF(tls_redirect),
	 "plain HTTP to https://: off, 301, 302, 307 or 308 (non-GET: 308/307)",
	 redirects},
	{"tls", "redirect_port", T_UINT, "443", 1, 65535, OFF(tls_redirect_port),
	 "port in redirect Locations (omitted when 443)"},
	{"tls", "acme_backend", T_OPTADDR, "", 0, 0, OFF(tls_acme_backend),
	 "plain-HTTP /.well-known/acme-challenge/ goes here (ip:port); empty = routed"},

	{"log", "level", T_LEVEL, "info", 0, 0, OFF(log_level),
	 "error log level: error, warn, info or debug"},
	{"log", "access_log", T_STRING, "-", 0, 0, OFF(access_log),
	 "access log: - (stdout), off, or a file path"},
};

#undef OFF
#undef MS
#undef SEC

/* ---- value parsers ------------------------------------------------------- */

static int parse_number(const char *v, unsigned long long *out,
			const char **suffix)
{
	char *end = NULL;
	errno = 0;
	if (*v < '0' || *v > '9')
		return -1;
	*out = strtoull(v, &end, 10);
	if (errno)
		return -1;
	*suffix = end;
	return 0;
}

static int parse_duration(const char *v, unsigned long long *ms)
{
	const char *sfx;
	unsigned long long n;
	if (parse_number(v, &n, &sfx) != 0 || n > 1000000000ULL)
		return -1;
	if (strcmp(sfx, "ms") == 0)
		*ms = n;
	else if (strcmp(sfx, "s") == 0 || *sfx == '\0')
		*ms = n * 1000;
	else if (strcmp(sfx, "m") == 0)
		*ms = n * 60000;
	else if (strcmp(sfx, "h") == 0)
		*ms = n * 3600000;
	else
		return -1;
	return 0;
}

static int parse_size(const char *v, unsigned long long *bytes)
{
	const char *sfx;
	unsigned long long n;
	if (parse_number(v, &n, &sfx) != 0 || n > (1ULL << 40))
		return -1;
	if (*sfx == '\0')
		*bytes = n;
	else if (strcmp(sfx, "k") == 0 || strcmp(sfx, "K") == 0)
		*bytes = n << 10;
	else if (strcmp(sfx, "m") == 0 || strcmp(sfx, "M") == 0)
		*bytes = n << 20;
	else
		return -1;
	return 0;
}

static void add_listen(struct gw_config *cfg, const struct gw_addr *a)
{
	cfg->listen = gw_xrealloc(cfg->listen,
				  (cfg->nlisten + 1) * sizeof(*cfg->listen));
	cfg->listen[cfg->nlisten++] = *a;
}

/* A secret kept in a file of its own (a Kubernetes Secret volume, a file
 * only root and the gateway's group may read). Read at load time, never
 * from the loop. The value never appears in a message. */
static int read_secret(const char *path, char **out, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "re");
	if (!fp) {
		snprintf(err, errlen, "cannot read '%s': %s", path,
			 strerror(errno));
		return -1;
	}
	char buf[1025];
	size_t n = fread(buf, 1, sizeof(buf), fp);
	bool failed = ferror(fp);
	fclose(fp);
	if (failed || n == sizeof(buf)) {
		snprintf(err, errlen, "'%s': %s", path,
			 failed ? "read error" : "longer than 1024 bytes");
		return -1;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0 || memchr(buf, '\n', n) || memchr(buf, '\0', n)) {
		explicit_bzero(buf, sizeof(buf));
		snprintf(err, errlen, "'%s': expected one line, not empty", path);
		return -1;
	}
	free(*out);
	*out = gw_xstrndup(buf, n);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* Apply one value; on error writes a reason (no location) into err. */
static int set_key(struct gw_config *cfg, const struct key *k, const char *v,
		   char *err, size_t errlen)
{
	void *field = (char *)cfg + k->offset;
	unsigned long long n = 0;
	const char *e = NULL;
	switch (k->type) {
	case T_DURATION:
		if (parse_duration(v, &n) != 0 || n < k->min || n > k->max) {
			snprintf(err, errlen,
				 "expected a duration (500ms, 10s, 2m, 1h) from "
				 "%llums to %llums, got '%s'",
				 k->min, k->max, v);
			return -1;
		}
		*(unsigned *)field = (unsigned)n;
		return 0;
	case T_SIZE:
		if (parse_size(v, &n) != 0 || n < k->min || n > k->max) {
			snprintf(err, errlen,
				 "expected a size (bytes, or with k/m) from %llu "
				 "to %llu, got '%s'",
				 k->min, k->max, v);
			return -1;
		}
		*(size_t *)field = (size_t)n;
		return 0;
	case T_WORKERS:
		if (strcmp(v, "auto") == 0) {
			*(unsigned *)field = 0;
			return 0;
		}
		/* fall through */
	case T_UINT:
		if (parse_number(v, &n, &e) != 0 || *e || n < k->min ||
		    n > k->max) {
			snprintf(err, errlen, "expected %s%llu-%llu, got '%s'",
				 k->type == T_WORKERS ? "auto or " : "", k->min,
				 k->max, v);
			return -1;
		}
		*(unsigned *)field = (unsigned)n;
		return 0;
	case T_LEVEL:
		if (!gw_log_level_parse(v, (enum gw_log_level *)field)) {
			snprintf(err, errlen,
				 "expected error, warn, info or debug, got '%s'",
				 v);
			return -1;
		}
		return 0;
	case T_STRING:
		if (!*v) {
			snprintf(err, errlen, "must not be empty");
			return -1;
		}
		free(*(char **)field);
		*(char **)field = gw_xstrdup(v);
		return 0;
	case T_LISTEN: {
		struct gw_addr a;
		if (gw_addr_parse(v, &a, &e) != 0) {
			snprintf(err, errlen, "'%s': %s", v, e);
			return -1;
		}
		add_listen(cfg, &a);
		return 0;
	}
	case T_OPTSTR:
		if (*v && k->check && (e = k->check(v))) {
			snprintf(err, errlen, "%s, got '%s'", e, v);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = *v ? gw_xstrdup(v) : NULL;
		return 0;
	case T_TLS_LISTEN: {
		struct gw_addr a;
		if (gw_addr_parse(v, &a, &e) != 0) {
			snprintf(err, errlen, "'%s': %s", v, e);
			return -1;
		}
		cfg->tls_listen = gw_xrealloc(cfg->tls_listen,
					      (cfg->ntls_listen + 1) *
						      sizeof(*cfg->tls_listen));
		cfg->tls_listen[cfg->ntls_listen++] = a;
		return 0;
	}
	case T_ENUM: {
		char words[128] = "";
		for (const struct choice *c = k->choices; c->word; c++) {
			if (strcmp(v, c->word) == 0) {
				*(unsigned *)field = c->value;
				return 0;
			}
			size_t used = strlen(words);
			snprintf(words + used, sizeof(words) - used, "%s%s",
				 used ? ", " : "", c->word);
		}
		snprintf(err, errlen, "expected one of %s, got '%s'", words, v);
		return -1;
	}
	case T_OPTADDR: {
		struct gw_addr **ap = (struct gw_addr **)field;
		free(*ap);
		*ap = NULL;
		if (!*v)
			return 0;
		struct gw_addr a;
		if (gw_addr_parse(v, &a, &e) != 0) {
			snprintf(err, errlen, "'%s': %s", v, e);
			return -1;
		}
		*ap = gw_xmalloc(sizeof(a));
		**ap = a;
		return 0;
	}
	case T_SECRETFILE:
		if (!*v)
			return 0;
		return read_secret(v, (char **)field, err, errlen);
	case T_CIDRS: {
		free(cfg->trusted_proxies);
		cfg->trusted_proxies = NULL;
		cfg->ntrusted_proxies = 0;
		char *copy = gw_xstrdup(v), *save = NULL;
		int rc = 0;
		for (char *t = strtok_r(copy, ", \t", &save); t;
		     t = strtok_r(NULL, ", \t", &save)) {
			struct gw_cidr c;
			if (gw_cidr_parse(t, &c, &e) != 0) {
				snprintf(err, errlen, "'%s': %s", t, e);
				rc = -1;
				break;
			}
			cfg->trusted_proxies = gw_xrealloc(
				cfg->trusted_proxies,
				(cfg->ntrusted_proxies + 1) * sizeof(c));
			cfg->trusted_proxies[cfg->ntrusted_proxies++] = c;
		}
		free(copy);
		return rc;
	}
	}
	return -1;
}

/* ---- routes -------------------------------------------------------------------- */

static int add_route_exec(struct gw_config *cfg, const char *host,
			  const char *addrs, const char *exec_command, char *err,
			  size_t errlen);

static int add_route(struct gw_config *cfg, const char *host, const char *addrs,
		     char *err, size_t errlen)
{
	return add_route_exec(cfg, host, addrs, NULL, err, errlen);
}

/* [exec] host = ADDRESS:PORT COMMAND... */
int config_add_exec(struct gw_config *cfg, const char *host, const char *spec,
		    char *err, size_t errlen)
{
	size_t n = strcspn(spec, " \t");
	const char *cmd = spec + n;
	while (*cmd == ' ' || *cmd == '\t')
		cmd++;
	if (n == 0 || !*cmd) {
		snprintf(err, errlen, "exec %s: expected ADDRESS:PORT COMMAND",
			 host);
		return -1;
	}
	char addr[128];
	if (n >= sizeof(addr)) {
		snprintf(err, errlen, "exec %s: address too long", host);
		return -1;
	}
	memcpy(addr, spec, n);
	addr[n] = '\0';
	return add_route_exec(cfg, host, addr, cmd, err, errlen);
}

static int add_route_exec(struct gw_config *cfg, const char *host,
			  const char *addrs, const char *exec_command, char *err,
			  size_t errlen)
{
	char norm[HOSTNAME_MAX];
	const char *e = NULL;
	if (hostname_normalize(gw_str_make(host, strlen(host)), norm, &e) != 0) {
		snprintf(err, errlen, "route host '%s': %s", host, e);
		return -1;
	}
	if (strchr(host, ':') && host[0] != '[') {
		snprintf(err, errlen, "route host '%s': no port in route names",
			 host);
		return -1;
	}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		if (strcmp(cfg->routes[i].host, norm) == 0) {
			snprintf(err, errlen, "route host '%s' given twice", norm);
			return -1;
		}
	}
	struct config_route r = {0};
	char *copy = gw_xstrdup(addrs), *save = NULL;
	for (char *t = strtok_r(copy, ", \t", &save); t;
	     t = strtok_r(NULL, ", \t", &save)) {
		struct gw_addr a;
		if (gw_addr_parse(t, &a, &e) != 0) {
			snprintf(err, errlen, "route %s: upstream '%s': %s", norm,
				 t, e);
			free(copy);
			free(r.addrs);
			return -1;
		}
		r.addrs = gw_xrealloc(r.addrs, (r.naddrs + 1) * sizeof(a));
		r.addrs[r.naddrs++] = a;
	}
	free(copy);
	if (r.naddrs == 0) {
		snprintf(err, errlen, "route %s: no upstream address", norm);
		return -1;
	}
	r.host = gw_xstrdup(norm);
	r.exec_command = exec_command ? gw_xstrdup(exec_command) : NULL;
	cfg->routes = gw_xrealloc(cfg->routes,
				  (cfg->nroutes + 1) * sizeof(*cfg->routes));
	cfg->routes[cfg->nroutes++] = r;
	return 0;
}

int config_add_route(struct gw_config *cfg, const char *spec, char *err,
		     size_t errlen)
{
	const char *eq = strchr(spec, '=');
	if (!eq || eq == spec || !eq[1]) {
		snprintf(err, errlen, "--route: expected HOST=ADDR[,ADDR], got "
				      "'%s'", spec);
		return -1;
	}
	char *host = gw_xstrndup(spec, (size_t)(eq - spec));
	int rc = add_route(cfg, host, eq + 1, err, errlen);
	free(host);
	return rc;
}

int config_add_listen(struct gw_config *cfg, const char *addr, char *err,
		      size_t errlen)
{
	struct gw_addr a;
	const char *e = NULL;
	if (gw_addr_parse(addr, &a, &e) != 0) {
		snprintf(err, errlen, "listen '%s': %s", addr, e);
		return -1;
	}
	add_listen(cfg, &a);
	return 0;
}

/* ---- loading ----------------------------------------------------------------------- */

static const struct key *find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < GW_ARRAY_LEN(keys); i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool known_section(const char *section)
{
	for (size_t i = 0; i < GW_ARRAY_LEN(keys); i++)
		if (strcmp(keys[i].section, section) == 0)
			return true;
	return strcmp(section, "routes") == 0 || strcmp(section, "exec") == 0;
}

struct load {
	struct gw_config *cfg;
	const char *name;   /* file name for messages */
	const char *text;   /* string source: next unread byte */
	FILE *fp;           /* file source */
	unsigned line;      /* lines handed to inih so far */
	bool listen_seen;   /* first listen key replaces the default */
	char *err;
	size_t errlen;
	bool failed;
};

/* inih reads "[name] anything" as a section header and drops the rest of
 * the line, and an unknown section only shows when a key follows it: in
 * [routes], "[::1] = 127.0.0.1:80" as the last line vanished without a word.
 * Check header lines here, where their number is known. (An indented line
 * is a continuation for inih, not a header.) */
static bool section_line_ok(struct load *l, const char *s)
{
	if (l->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3; /* inih skips a UTF-8 BOM */
	if (s[0] != '[')
		return true;
	const char *close = strchr(s, ']');
	if (!close)
		return true; /* inih reports it */
	int n = (int)(close - s - 1);
	const char *rest = close + 1 + strspn(close + 1, " \t\r\n");
	char name[32];
	bool known = n < (int)sizeof(name);
	if (known) {
		memcpy(name, s + 1, (size_t)n);
		name[n] = '\0';
		known = known_section(name);
	}
	if (*rest && *rest != ';' && *rest != '#')
		snprintf(l->err, l->errlen, "%s:%u: [%.*s]: text after the "
			 "section header", l->name, l->line, n, s + 1);
	else if (!known)
		snprintf(l->err, l->errlen, "%s:%u: [%.*s]: unknown section",
			 l->name, l->line, n, s + 1);
	else
		return true;
	l->failed = true;
	return false;
}

/* inih reader: hand out one line at a time and count them. inih's line
 * buffer is fixed when the library is built (INI_MAX_LINE, 200 in Debian):
 * a longer line would be cut and its tail parsed as a line of its own, so it
 * is refused here with its number instead. */
static char *reader(char *str, int num, void *stream)
{
	struct load *l = stream;
	if (num <= 1 || l->failed)
		return NULL;
	size_t n = 0;
	if (l->fp) {
		if (!fgets(str, num, l->fp))
			return NULL;
		n = strlen(str);
	} else {
		if (!*l->text)
			return NULL;
		while (l->text[n] && l->text[n] != '\n' && n + 1 < (size_t)num)
			n++;
		if (l->text[n] == '\n' && n + 1 < (size_t)num)
			n++;
		memcpy(str, l->text, n);
		str[n] = '\0';
		l->text += n;
	}
	l->line++;
	if (n + 1 == (size_t)num && str[n - 1] != '\n') {
		/* Buffer full: the line fits only if its newline or the end
		 * of the input comes next. */
		int next = l->fp ? getc(l->fp) : (unsigned char)*l->text;
		if (next == '\n' && !l->fp)
			l->text++;
		if (next != '\n' && next != EOF && next != '\0') {
			snprintf(l->err, l->errlen,
				 "%s:%u: line longer than %d characters",
				 l->name, l->line, num - 1);
			l->failed = true;
			return NULL;
		}
	}
	if (!section_line_ok(l, str))
		return NULL;
	return str;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct load *l = user;
	char why[400];
	if (l->failed)
		return 0;
	if (!known_section(section)) {
		snprintf(why, sizeof(why), "unknown section");
		goto fail;
	}
	if (strcmp(section, "routes") == 0 || strcmp(section, "exec") == 0) {
		int rc = section[0] == 'r'
				 ? add_route(l->cfg, name, value, why, sizeof(why))
				 : config_add_exec(l->cfg, name, value, why,
						   sizeof(why));
		if (rc != 0)
			goto fail;
		return 1;
	}
	const struct key *k = find_key(section, name);
	if (!k) {
		snprintf(why, sizeof(why), "unknown key");
		goto fail;
	}
	if (k->type == T_LISTEN && !l->listen_seen) {
		free(l->cfg->listen);
		l->cfg->listen = NULL;
		l->cfg->nlisten = 0;
		l->listen_seen = true;
	}
	if (set_key(l->cfg, k, value, why, sizeof(why)) != 0)
		goto fail;
	return 1;
fail:
	snprintf(l->err, l->errlen, "%s:%u: [%s] %s: %s", l->name, l->line,
		 section, name, why);
	l->failed = true;
	return 0;
}

struct gw_config *config_create_default(void)
{
	struct gw_config *cfg = gw_xcalloc(1, sizeof(*cfg));
	char err[256];
	for (size_t i = 0; i < GW_ARRAY_LEN(keys); i++) {
		if (keys[i].type == T_LISTEN || keys[i].type == T_CIDRS ||
		    keys[i].type == T_TLS_LISTEN)
			continue; /* listen default applied in finalize */
		if (set_key(cfg, &keys[i], keys[i].def, err, sizeof(err)) != 0) {
			fprintf(stderr, "gateway: bad built-in default for %s: %s\n",
				keys[i].name, err);
			abort();
		}
	}
	return cfg;
}

static struct gw_config *load(struct load *l)
{
	l->cfg = config_create_default();
	int rc = ini_parse_stream(reader, l, handler, l);
	if (l->failed || rc != 0) {
		if (!l->failed)
			snprintf(l->err, l->errlen, "%s:%d: syntax error",
				 l->name, rc > 0 ? rc : 0);
		config_destroy(l->cfg);
		return NULL;
	}
	return l->cfg;
}

struct gw_config *config_load_file(const char *path, char *err, size_t errlen)
{
	struct load l = {.name = path, .err = err, .errlen = errlen};
	l.fp = fopen(path, "re");
	if (!l.fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	struct gw_config *cfg = load(&l);
	fclose(l.fp);
	return cfg;
}

struct gw_config *config_load_string(const char *text, const char *name,
				     char *err, size_t errlen)
{
	struct load l = {.name = name, .text = text, .err = err,
			 .errlen = errlen};
	return load(&l);
}

int config_set(struct gw_config *cfg, const char *section, const char *key,
	       const char *value, char *err, size_t errlen)
{
	const struct key *k = find_key(section, key);
	if (!k) {
		snprintf(err, errlen, "[%s] %s: unknown key", section, key);
		return -1;
	}
	char why[400];
	if (set_key(cfg, k, value, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "[%s] %s: %s", section, key, why);
		return -1;
	}
	return 0;
}

int config_finalize(struct gw_config *cfg, char *err, size_t errlen)
{
	if (cfg->nlisten == 0) {
		const struct key *k = find_key("gateway", "listen");
		if (set_key(cfg, k, k->def, err, errlen) != 0)
			return -1;
	}
	if (cfg->ntls_listen && !cfg->tls_cert_dir) {
		snprintf(err, errlen, "[tls] listen needs [tls] cert_dir");
		return -1;
	}
	/* SO_REUSEPORT would let a plain and a TLS socket share an address,
	 * and the kernel would deal connections to both. */
	for (size_t i = 0; i < cfg->ntls_listen; i++)
		for (size_t j = 0; j < cfg->nlisten; j++)
			if (strcmp(cfg->tls_listen[i].text, cfg->listen[j].text) == 0) {
				snprintf(err, errlen, "[tls] listen %s is also a "
					 "plain listen address", cfg->listen[j].text);
				return -1;
			}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		if (cfg->routes[i].exec_command && cfg->workers != 1) {
			/* Each worker would start its own copy of the app. */
			snprintf(err, errlen,
				 "[exec] %s: exec apps need workers = 1",
				 cfg->routes[i].host);
			return -1;
		}
	}
	return 0;
}

bool config_peer_trusted(const struct gw_config *cfg, const struct gw_addr *a)
{
	for (size_t i = 0; i < cfg->ntrusted_proxies; i++)
		if (gw_cidr_match(&cfg->trusted_proxies[i], a))
			return true;
	return false;
}

void config_print_help(FILE *out)
{
	const char *section = "";
	for (size_t i = 0; i < GW_ARRAY_LEN(keys); i++) {
		const struct key *k = &keys[i];
		if (strcmp(k->section, section) != 0) {
			fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
			section = k->section;
		}
		fprintf(out, "%s = %s\n    # %s\n", k->name, k->def, k->doc);
	}
	fprintf(out, "\n[routes]\n<host> = <address:port>[, <address:port>...]\n"
		     "    # static routes: requests for <host> go to these "
		     "addresses (round robin)\n");
	fprintf(out, "\n[exec]\n<host> = <address:port> <command>\n"
		     "    # a local app started on the first request (sh -c), "
		     "ready when it accepts on address:port, stopped when "
		     "idle\n");
}

void config_destroy(struct gw_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->listen);
	free(cfg->trusted_proxies);
	free(cfg->access_log);
	free(cfg->domain);
	free(cfg->redis_addr);
	free(cfg->redis_password);
	free(cfg->auth_cookie);
	free(cfg->auth_login_url);
	free(cfg->kube_api_url);
	free(cfg->kube_token_file);
	free(cfg->kube_ca_file);
	free(cfg->admin_listen);
	free(cfg->kube_namespace_file);
	free(cfg->tls_listen);
	free(cfg->tls_cert_dir);
	free(cfg->tls_default_cert);
	free(cfg->tls_ciphers);
	free(cfg->tls_ciphersuites);
	free(cfg->tls_ticket_key_file);
	free(cfg->tls_hsts);
	free(cfg->tls_acme_backend);
	for (size_t i = 0; i < cfg->nroutes; i++) {
		free(cfg->routes[i].host);
		free(cfg->routes[i].exec_command);
		free(cfg->routes[i].addrs);
	}
	free(cfg->routes);
	free(cfg);
}
