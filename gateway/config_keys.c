/* config_keys.c - the key table: every configuration key with its type,
 * default, range, field and one-line doc, and which keys need a restart
 * to change. config.c parses with it; --help-config prints it; a test
 * keeps conf/gateway.conf and docs/configuration.md in step with it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_int.h"
#include "core/compat.h"

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

const struct key config_keys[] = {
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

	{"redis", "address", T_OPTHOSTPORT, "", 0, 0, OFF(redis_addr),
	 "Redis with the routes and sessions (name:port or ip:port; a name is "
	 "resolved on every connect); empty = config routes only"},
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

const size_t config_nkeys = GW_ARRAY_LEN(config_keys);

/* What SIGHUP cannot change. A reload keeps the running value of these
 * (and logs that the new one waits for a restart), so the snapshot always
 * says what runs. The reasons are what the log and --help-config say. */
static const struct {
	const char *section;
	const char *name; /* NULL: every key of the section */
	const char *why;
} restart_only[] = {
	{"gateway", "workers",
	 "the number of worker processes is fixed when they are forked"},
	{"redis", NULL,
	 "the Redis connections, their subscription and the route table "
	 "mirrored through them live for the process"},
	{"kubernetes", NULL,
	 "the API address, credentials and watches are bound when the "
	 "gateway starts"},
	{"fleet", NULL,
	 "the fleet's leases and TTLs must agree across every process; "
	 "restart the replicas one by one"},
	{"admin", "metrics_max_projects",
	 "projects keep their series for the life of the process"},
	{"admin", NULL,
	 "the admin listener and its limits are set up when the gateway "
	 "starts"},
	{"auth", "cache_max",
	 "the decision cache is sized when the gateway starts"},
	{"upstream", "keepalive",
	 "the upstream connection pool is sized when the gateway starts"},
	{"upstream", "keepalive_timeout",
	 "the upstream connection pool is sized when the gateway starts"},
	{"upstream", "keepalive_trim_delay",
	 "the upstream connection pool is sized when the gateway starts"},
	{"activator", "stop_grace",
	 "the apps' process group takes it when the gateway starts"},
	{"log", "access_log",
	 "the access log is opened once, before the workers start"},
};

const char *config_key_restart(const struct key *k)
{
	for (size_t i = 0; i < GW_ARRAY_LEN(restart_only); i++)
		if (strcmp(restart_only[i].section, k->section) == 0 &&
		    (!restart_only[i].name ||
		     strcmp(restart_only[i].name, k->name) == 0))
			return restart_only[i].why;
	return NULL;
}
