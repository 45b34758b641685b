/* tls.h - TLS termination: certificates chosen by SNI, the handshake
 * phase, and certificate reload (docs/architecture.md, "TLS").
 *
 * Certificates: every cert/key pair in [tls] cert_dir gets its own SSL_CTX
 * (NAME.crt + NAME.key, or NAME/tls.crt + NAME/tls.key as a Kubernetes TLS
 * Secret is mounted, or NAME/fullchain.pem + NAME/privkey.pem as certbot
 * writes them; PEM, chains included). The names a certificate serves are
 * its DNS subjectAltNames (its CN when it has none). SNI picks the exact
 * name, else the wildcard one label up ("x.apps.example.org" ->
 * "*.apps.example.org"), else [tls] default_cert, else the handshake is
 * refused with an unrecognized_name alert. TLS 1.2 and 1.3 only, ALPN
 * http/1.1 (a client offering only h2 gets no ALPN and speaks HTTP/1.1),
 * resumption through session tickets whose keys rotate every
 * session_ticket_rotate and are derived from one secret, so every worker
 * (and, with session_ticket_key_file, every gateway process) accepts the
 * others' tickets.
 *
 * Handshakes run here, before the proxy sees the connection: tls_accept()
 * takes an accepted socket; when the handshake completes, ready_cb gets an
 * open TLS bufferevent, which the proxy then owns. A handshake must finish
 * within handshake_timeout of its accept; at most max_handshakes run at
 * once per worker, and a newcomer at the limit displaces the oldest one
 * still in progress (a slow client, most likely, since a real handshake
 * takes a few round trips). Failures are counted, logged rate-limited,
 * and close only that connection.
 *
 * Reload (tls_reload): a new certificate set is built from the directory;
 * a pair that fails to load (unreadable, unparseable, key mismatch,
 * expired) keeps the certificate it had before, with the file and the
 * reason logged. Open connections keep the SSL_CTX they were made with
 * (OpenSSL reference-counts it), so nothing is dropped.
 *
 * Always true: stats.pending == number of handshakes in progress <=
 * max_handshakes; a bufferevent is owned either by a pending handshake or,
 * after ready_cb, by whoever ready_cb gave it to.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <event2/util.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct event_base;
struct gw_config;
struct sockaddr;
struct tls;
struct stats;

/* A handshake completed: bev is an open TLS bufferevent (callbacks unset,
 * reading and writing enabled) that the callee now owns. sa is the peer. */
typedef void (*tls_ready_cb)(void *arg, struct bufferevent *bev,
			     const struct sockaddr *sa, int salen);

/* The number of handshakes in progress changed. */
typedef void (*tls_count_cb)(void *arg, unsigned pending);

/* The secret session-ticket keys are derived from when no
 * session_ticket_key_file is configured. Made once per gateway start,
 * before workers fork, so that all workers derive the same keys. */
struct tls_seed {
	unsigned char bytes[32];
};

/* Fill seed from the system's CSPRNG. Returns 0, or -1 when none. */
int tls_seed_init(struct tls_seed *seed);

struct tls_params {
	struct event_base *base;
	const struct gw_config *cfg;  /* outlives the tls, or until reload */
	const struct tls_seed *seed;  /* copied */
	tls_ready_cb ready_cb;
	tls_count_cb count_cb;        /* may be NULL */
	void *arg;
};

/* Counters, since tls_create (metrics render them later). */
struct tls_stats {
	uint64_t handshakes;    /* completed */
	uint64_t resumed;       /* completed by resuming a session */
	uint64_t failed;        /* did not complete, for any reason: protocol
				   errors, refused versions or names, closes,
				   and the two below */
	uint64_t timeouts;      /* of which: handshake_timeout passed */
	uint64_t evicted;       /* of which: displaced at max_handshakes */
	uint64_t unknown_name;  /* SNI matched nothing and no default_cert */
	uint64_t alpn_no_h1;    /* ALPN without http/1.1: answered without */
	uint64_t reloads;       /* tls_reload that installed a new set */
	uint64_t reload_failed; /* tls_reload that kept the old set whole */
	uint64_t cert_errors;   /* pairs that failed to load, all loads */
	uint64_t pending;       /* handshakes in progress now */
	uint64_t certs;         /* pairs in the current set */
};

/* Load the certificates and get ready to accept. Fails (NULL, reason in
 * err) when no pair loads, when default_cert does not, or when the cipher
 * settings are refused. Pairs that fail to load are logged and skipped. */
struct tls *tls_create(const struct tls_params *p, char *err, size_t errlen);

/* Take ownership of an accepted TLS client socket and start the
 * handshake. Never fails visibly: on any error the socket is closed and
 * counted. ready_cb runs later, from the loop, never from inside this. */
void tls_accept(struct tls *t, evutil_socket_t fd, const struct sockaddr *sa,
		int salen);

/* Rebuild the certificate set from cfg (the current snapshot, or a newly
 * loaded one: the tls uses it from now on). Returns 0 when a new set is in
 * place (pairs that failed kept their previous certificate, each logged
 * with file and reason), -1 when the old set stays whole (no usable pair,
 * default_cert missing, cipher settings refused; logged). Reads files:
 * call it only on an operator's request (SIGHUP). */
int tls_reload(struct tls *t, const struct gw_config *cfg);

/* Drop every handshake in progress (graceful stop: the listeners are
 * already closed). Completed connections are not affected. */
void tls_shutdown(struct tls *t);

void tls_get_stats(const struct tls *t, struct tls_stats *out);

/* Register the counters above with s (docs/operations.md, "Metrics").
 * Once; unregistered by tls_destroy. */
void tls_stats_register(struct tls *t, struct stats *s);

/* For `gateway -t`: load every pair of cfg's cert_dir and log each
 * problem. Returns 0 when all load, -1 otherwise. Needs no event loop. */
int tls_check(const struct gw_config *cfg);

/* Drop pending handshakes, free the certificate set; NULL is fine. Open
 * connections handed out by ready_cb must be gone already. */
void tls_destroy(struct tls *t);

#endif
