/* tls_int.h - private to gateway/tls*.c: the certificate set (tls_certs.c),
 * session ticket keys (tls_ticket.c) and the OpenSSL callbacks tls.c
 * implements. Never included from outside gateway/tls*.c.
 */
#ifndef GW_TLS_INT_H
#define GW_TLS_INT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

struct gw_config;
struct tls;
struct tls_certs;

/* ---- tls_certs.c: one immutable set of SSL_CTXs ------------------------ */

/* Load every pair in cfg->tls_cert_dir. owner is stored as every
 * SSL_CTX's app data (the callbacks below find the tls through it); NULL
 * for a check without callbacks (tls_check). A pair that fails is logged
 * with its file and reason and counted in *errors; when old has a pair of
 * the same name, its SSL_CTX is kept instead. Returns NULL with a reason in
 * err when the set cannot be built at all (no usable pair, default_cert
 * missing, settings refused by OpenSSL, directory unreadable). */
struct tls_certs *tls_certs_load(const struct gw_config *cfg, struct tls *owner,
				 const struct tls_certs *old, unsigned *errors,
				 char *err, size_t errlen);

/* The context new connections are created from: the shared settings and
 * callbacks, no certificate (SNI picks one). Owned by the set. */
SSL_CTX *tls_certs_base(const struct tls_certs *s);

/* The certificate for an SNI name (NULL: no SNI): exact match, else the
 * wildcard one label up, else the default; NULL when none. *is_default
 * tells whether the default answered. Owned by the set. */
SSL_CTX *tls_certs_lookup(const struct tls_certs *s, const char *sni,
			  bool *is_default);

/* Pairs in the set. */
unsigned tls_certs_count(const struct tls_certs *s);

/* Drop the set's references; SSL objects still using its contexts keep
 * them alive. NULL is fine. */
void tls_certs_destroy(struct tls_certs *s);

/* ---- tls_ticket.c: session ticket keys --------------------------------- */

/* Keys for one period are derived from secret and the period's number
 * (wall clock / period), so every process with the same secret encrypts
 * with the same key at the same time and accepts the neighbouring
 * periods' tickets. */
struct tls_tickets {
	unsigned char secret[32]; /* never logged */
	uint64_t period_s;        /* 0: tickets off */
	struct tls_ticket_key {
		uint64_t epoch;       /* period number this key is for */
		bool set;
		unsigned char name[16], aes[32], mac[32];
	} cache[3];               /* the epochs in use: now-1, now, now+1 */
};

/* Set up keys from cfg: the secret is SHA-256 of session_ticket_key_file
 * when set, else seed. Returns 0, or -1 with err (file unreadable or
 * shorter than 32 bytes); *tk is unchanged then. */
int tls_tickets_setup(struct tls_tickets *tk, const struct gw_config *cfg,
		      const unsigned char seed[32], char *err, size_t errlen);

/* OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb),
 * for contexts whose app data is a struct tls. */
int tls_ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
		  EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);

/* ---- tls.c: callbacks installed on every context ------------------------ */

/* SNI: switch the connection to the certificate for its name. */
int tls_sni_cb(SSL *ssl, int *alert, void *arg);

/* ALPN: http/1.1 when offered, else no ALPN at all. */
int tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		const unsigned char *in, unsigned int inlen, void *arg);

/* The tickets of the tls whose contexts these are. */
struct tls_tickets *tls_tickets_of(struct tls *t);

/* Text of the first queued OpenSSL error ("no start line"), or fallback;
 * clears the queue. */
const char *tls_openssl_reason(const char *fallback);

#endif
