/* config.h - the gateway's configuration: an immutable snapshot.
 *
 * One descriptor table in config.c ({section, key, type, default, min, max,
 * offset, doc}) drives the inih handler, defaults, `gateway -t`,
 * `gateway --help-config` and the test that keeps conf/gateway.conf and
 * docs/configuration.md in sync with the parser.
 *
 * A snapshot is built once (file or command line), validated, and never
 * written afterwards; reload builds a new one and swaps a pointer.
 * Snapshots are reference-counted: whoever keeps a pointer past the
 * current callback (a connection for its life, a module for its current
 * settings) holds a reference, so the snapshot an exchange started with
 * outlives a reload and is freed when its last user lets go. One loop per
 * process: the count needs no atomics. Durations are stored in
 * milliseconds, sizes in bytes.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/addr.h"
#include "core/log.h"

/* One [routes] entry: host = addr[, addr...] */
struct config_route {
	char *host;            /* normalised (lowercase, no port/dot) */
	struct gw_addr *addrs; /* upstream endpoints, at least one */
	size_t naddrs;
	char *exec_command;    /* [exec]: started on demand, or NULL */
};

/* [admin] readyz_redis: when /readyz needs Redis (with an address set). */
enum config_readyz_redis {
	CONFIG_READYZ_REDIS_NEVER = 0, /* Redis plays no part in readiness */
	CONFIG_READYZ_REDIS_STARTUP,   /* the first full route load must have
					  happened; later outages keep serving
					  known routes (stale-if-error) */
	CONFIG_READYZ_REDIS_ALWAYS,    /* in sync with Redis right now */
};

/* [tls] min_version values: the TLS protocol version numbers. */
#define CONFIG_TLS_1_2 0x0303
#define CONFIG_TLS_1_3 0x0304

struct gw_config {
	/* [gateway] */
	struct gw_addr *listen;   /* listen addresses (repeatable key) */
	size_t nlisten;
	unsigned workers;         /* processes; 0 means "auto" = CPUs */
	unsigned max_connections; /* client connections per worker */
	unsigned drain_timeout_ms;
	struct gw_cidr *trusted_proxies; /* peers whose X-Forwarded-* we keep */
	size_t ntrusted_proxies;
	char *domain;             /* apps' parent domain, or NULL */

	/* [client] */
	size_t header_max_bytes;       /* request head size limit -> 431 */
	unsigned header_max_count;     /* request header fields -> 431 */
	unsigned header_timeout_ms;    /* whole head must arrive -> 408 */
	unsigned keepalive_timeout_ms; /* idle between requests */
	unsigned keepalive_requests;   /* requests per connection */
	unsigned body_timeout_ms;      /* idle while reading a body -> 408 */
	unsigned send_timeout_ms;      /* idle while client reads a response */
	size_t buffer_size;            /* per-direction buffer high mark */
	size_t body_max_bytes;         /* request body limit -> 413; 0: none */

	/* [upstream] */
	unsigned connect_timeout_ms;    /* -> 504 */
	unsigned first_byte_timeout_ms; /* request sent, no response -> 504 */
	unsigned read_timeout_ms;       /* idle during response body */
	unsigned up_send_timeout_ms;    /* idle while app reads request */
	unsigned keepalive_max_idle;    /* idle pooled connections/address */
	unsigned keepalive_idle_timeout_ms;
	unsigned keepalive_trim_delay_ms; /* excess idle kept this long */
	unsigned tunnel_idle_timeout_ms; /* WebSocket / upgrade idle */
	size_t response_header_max_bytes;

	/* [redis] */
	struct gw_hostport *redis_addr; /* NULL: no Redis, config routes only;
					   a name is resolved on every connect */
	char *redis_password;       /* NULL: no AUTH (never logged) */
	unsigned redis_db;
	unsigned redis_connect_timeout_ms;
	unsigned redis_command_timeout_ms;
	unsigned redis_reconnect_max_ms;
	unsigned redis_ping_interval_ms; /* heartbeat of idle connections */

	/* [auth] */
	char *auth_cookie;          /* platform session cookie name */
	char *auth_login_url;       /* NULL: 401 instead of a redirect */
	unsigned auth_cache_ttl_ms;
	unsigned auth_cache_max;

	/* [activator] */
	unsigned hold_timeout_ms;
	unsigned hold_max_per_project;
	unsigned hold_max;
	unsigned idle_timeout_ms;
	unsigned probe_interval_ms;
	unsigned stop_grace_ms;
	unsigned waking_page_after_ms;
	unsigned release_concurrency;
	unsigned wake_timeout_ms;

	/* [kubernetes] */
	char *kube_api_url;  /* NULL: in-cluster, or none */
	char *kube_token_file;
	char *kube_ca_file;  /* NULL: system CAs */
	unsigned kube_token_reload_ms;
	unsigned kube_request_timeout_ms;
	unsigned kube_watch_timeout_ms;
	char *kube_namespace_file;
	unsigned kube_probe_interval_ms;
	unsigned kube_poll_interval_ms;
	unsigned kube_wake_replicas;
	unsigned kube_max_replicas;

	/* [fleet]: gateway processes sharing Redis and Kubernetes */
	unsigned fleet_replica_ttl_ms;   /* a silent process counts as gone */
	unsigned fleet_lease_ttl_ms;     /* scale-down (reaper) lease */
	unsigned fleet_wake_lock_ttl_ms; /* one scale call per wake */
	unsigned fleet_drain_timeout_ms; /* every process acks within */
	unsigned fleet_reap_interval_ms; /* leader: idle projects looked for */
	unsigned fleet_reap_batch;       /* leader: candidates per look */
	unsigned fleet_max_waking;       /* projects waking at once; 0 = any */
	unsigned fleet_prewake;          /* 0 off, 1 on */

	/* [admin] */
	struct gw_addr *admin_listen;   /* NULL: no admin listener */
	unsigned admin_max_connections; /* open admin connections */
	unsigned admin_timeout_ms;      /* whole admin exchange */
	size_t admin_header_max_bytes;  /* admin request head -> 431 */
	unsigned admin_worker_timeout_ms; /* supervisor waits per scrape */
	unsigned metrics_max_projects;  /* per-project series, then _other */
	unsigned readyz_redis;          /* enum config_readyz_redis */

	/* [tls] (gateway/tls.h) */
	struct gw_addr *tls_listen; /* TLS listen addresses (repeatable key) */
	size_t ntls_listen;
	char *tls_cert_dir;         /* directory of cert/key pairs, or NULL */
	char *tls_default_cert;     /* pair for unknown names; NULL: refuse */
	unsigned tls_min_version;   /* CONFIG_TLS_1_2 or CONFIG_TLS_1_3 */
	char *tls_ciphers;          /* TLS 1.2 cipher list (OpenSSL syntax) */
	char *tls_ciphersuites;     /* TLS 1.3 cipher suites */
	unsigned tls_ticket_rotate_ms; /* ticket key period; 0: no tickets */
	char *tls_ticket_key_file;  /* shared ticket secret, or NULL (random) */
	unsigned tls_handshake_timeout_ms;
	unsigned tls_max_handshakes; /* in progress at once, per worker */
	char *tls_hsts;             /* Strict-Transport-Security value, or NULL */
	unsigned tls_redirect;      /* plain HTTP: 0 (off), 301, 302, 307, 308 */
	unsigned tls_redirect_port; /* port in the https:// Location */
	struct gw_addr *tls_acme_backend; /* ACME http-01 solver, or NULL */

	/* [log] */
	enum gw_log_level log_level;
	char *access_log; /* "-" stdout, "off", or a path */

	/* [routes] */
	struct config_route *routes;
	size_t nroutes;

	unsigned refs; /* config_ref/config_unref only: bookkeeping, not
			  configuration */
};

/* How a process builds its configuration again on SIGHUP: the file
 * (re-read, or the text a supervisor read and checked) with the command
 * line's overrides applied on top, exactly as at start (main.c). */
struct config_source {
	const char *path; /* NULL: command line only (reload re-applies it) */
	/* A new snapshot (one reference) from text (the file's contents,
	 * named path in messages), or from the file itself when text is
	 * NULL; NULL with "FILE:LINE: ..." in err. */
	struct gw_config *(*load)(const struct config_source *src,
				  const char *text, char *err, size_t errlen);
	const void *arg;  /* main's command line */
};

/* A snapshot with every default and no routes or listeners. */
struct gw_config *config_create_default(void);

/* Parse an INI file into a new snapshot. On error returns NULL and writes
 * "FILE:LINE: [section] key: reason" into err. */
struct gw_config *config_load_file(const char *path, char *err, size_t errlen);

/* Same, from memory (unit tests, fuzzing); name is used in messages. */
struct gw_config *config_load_string(const char *text, const char *name,
				     char *err, size_t errlen);

/* Command-line quick mode helpers, on a snapshot being built:
 * "ADDR:PORT" listener and "HOST=ADDR[,ADDR]" route. Return 0, or -1 with
 * a reason in err. */
int config_add_listen(struct gw_config *cfg, const char *addr, char *err,
		      size_t errlen);
int config_add_route(struct gw_config *cfg, const char *spec, char *err,
		     size_t errlen);

/* "[exec] host = ADDRESS:PORT COMMAND" (also --exec HOST=ADDR:PORT CMD). */
int config_add_exec(struct gw_config *cfg, const char *host, const char *spec,
		    char *err, size_t errlen);

/* Set one table key from its text form, as if read from a file (command
 * line overrides). Returns 0, or -1 with "[section] key: reason". */
int config_set(struct gw_config *cfg, const char *section, const char *key,
	       const char *value, char *err, size_t errlen);

/* Final checks after all sources are applied (at least one listener, ...).
 * Returns 0, or -1 with err. */
int config_finalize(struct gw_config *cfg, char *err, size_t errlen);

/* True when the peer address is inside trusted_proxies. */
bool config_peer_trusted(const struct gw_config *cfg, const struct gw_addr *a);

/* Print every key with its default and one-line doc (--help-config). */
void config_print_help(FILE *out);

/* Take a reference; returns cfg. */
const struct gw_config *config_ref(const struct gw_config *cfg);
/* Drop a reference; the last one frees the snapshot. NULL is fine. */
void config_unref(const struct gw_config *cfg);
/* The builder's reference: the same as config_unref. NULL is fine. */
void config_destroy(struct gw_config *cfg);

/* The whole file as a NUL-terminated string (owned by the caller), read
 * once so that a supervisor and its workers parse the same bytes. NULL
 * with "FILE: reason" in err (missing, unreadable, over 16 MiB, NUL
 * bytes). Blocking: start-up and SIGHUP only. */
char *config_read_text(const char *path, char *err, size_t errlen);

/* Reload: every key that needs a restart (docs/configuration.md,
 * "Reload") takes the running value from old, so that next describes what
 * will run. Writes "[section] key, ..." of those whose new value differed
 * into changed ("" when none; values are not shown: some are secrets).
 * Returns how many differed. */
unsigned config_keep_restart_only(struct gw_config *next,
				  const struct gw_config *old, char *changed,
				  size_t changedlen);

/* Why [section] key needs a restart to change, or NULL when a reload
 * applies it (also NULL for unknown keys). */
const char *config_restart_reason(const char *section, const char *key);

#endif
