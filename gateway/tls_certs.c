/* tls_certs.c - one certificate set: an SSL_CTX per cert/key pair in
 * cert_dir, a sorted index of the names they serve, the default, and the
 * base context connections start from. Built whole, never changed after,
 * replaced whole on reload (tls.c).
 *
 * Rule zero (PRINCIPLES 3): loading reads files on the loop. It happens at
 * start and on an operator's SIGHUP only, reads a bounded number of small
 * local files (TLS_MAX_PAIRS), and the alternative - a thread handing
 * SSL_CTXs across - buys nothing for a few milliseconds per reload.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "tls_int.h"
#include "core/log.h"
#include "core/compat.h"

#define TLS_MAX_PAIRS 10000
/* A certificate that expires sooner than this is logged as a warning. */
#define EXPIRY_WARN_S (14 * 86400)

struct tls_pair {
	char *name;       /* NAME of NAME.crt or of NAME/ (owned) */
	SSL_CTX *ctx;     /* certificate, chain and key (one reference) */
	time_t not_after; /* the leaf certificate's expiry */
};

struct tls_name {
	char *host;             /* lowercase name or "*.suffix" (owned) */
	struct tls_pair *pair;
};

struct tls_certs {
	SSL_CTX *base;          /* settings and callbacks, no certificate */
	struct tls_pair *pairs; /* sorted by name */
	size_t npairs;
	struct tls_name *names; /* sorted by host, unique */
	size_t nnames;
	SSL_CTX *default_ctx;   /* NULL: unknown names are refused */
};

/* Files of one pair as found in the directory. */
struct pair_files {
	char *name, *crt, *key;
};

const char *tls_openssl_reason(const char *fallback)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return r ? r : fallback;
}

/* Keys are read without a terminal: an encrypted one fails to load
 * instead of prompting (OpenSSL's default would read /dev/tty). */
static int no_password(char *buf, int size, int rwflag, void *arg)
{
	return 0;
}

static SSL_CTX *ctx_new(const struct gw_config *cfg, struct tls *owner,
			char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "gateway";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
			 tls_openssl_reason("out of memory"));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, cfg->tls_min_version == CONFIG_TLS_1_3
						   ? TLS1_3_VERSION
						   : TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	/* No client renegotiation (a CPU sink), no compression (CRIME); a
	 * peer that closes without close_notify is an EOF like on plain TCP,
	 * since every message we relay is framed by HTTP, not by the close. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Idle keep-alive connections give their 16k+ record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
		snprintf(err, errlen, "[tls] ciphers '%s': %s", cfg->tls_ciphers,
			 tls_openssl_reason("refused"));
		goto fail;
	}
	if (SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites) != 1) {
		snprintf(err, errlen, "[tls] ciphersuites '%s': %s",
			 cfg->tls_ciphersuites, tls_openssl_reason("refused"));
		goto fail;
	}
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/* Resumption is by ticket only: a per-worker session cache would miss
	 * whenever the kernel hands the next connection to another worker. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (cfg->tls_ticket_rotate_ms) {
		long life = (long)(cfg->tls_ticket_rotate_ms / 1000);
		SSL_CTX_set_timeout(ctx, life > 604800 ? 604800 : life ? life : 1);
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
	} else {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, owner);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, owner);
	SSL_CTX_set_app_data(ctx, owner);
	SSL_CTX_set_default_passwd_cb(ctx, no_password);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* ---- names ---------------------------------------------------------------- */

/* A certificate name as an index key: lowercase, no trailing dot, DNS
 * characters only, "*" only as a whole first label. */
static char *name_key(const unsigned char *p, size_t n)
{
	if (n && p[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return NULL;
	char *k = gw_xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)tolower(p[i]);
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			  ch == '-' || ch == '.' || ch == '_' ||
			  (ch == '*' && i == 0 && n > 2 && p[1] == '.');
		if (!ok) {
			free(k);
			return NULL;
		}
		k[i] = (char)ch;
	}
	k[n] = '\0';
	return k;
}

static void add_name(struct tls_certs *s, size_t *cap, char *host,
		     struct tls_pair *pair)
{
	if (s->nnames == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		s->names = gw_xrealloc(s->names, *cap * sizeof(*s->names));
	}
	s->names[s->nnames++] = (struct tls_name){host, pair};
}

/* The DNS subjectAltNames of the pair's certificate, or its CN when it
 * has none (RFC 6125 §6.4.4). Returns how many were indexed. */
static size_t index_pair(struct tls_certs *s, size_t *cap, struct tls_pair *pair)
{
	X509 *x = SSL_CTX_get0_certificate(pair->ctx);
	size_t found = 0;
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_DNS)
			continue;
		char *k = name_key(ASN1_STRING_get0_data(g->d.dNSName),
				   (size_t)ASN1_STRING_length(g->d.dNSName));
		if (k) {
			add_name(s, cap, k, pair);
			found++;
		}
	}
	GENERAL_NAMES_free(gens);
	if (found)
		return found;
	X509_NAME *subj = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (i >= 0) {
		ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
		char *k = name_key(ASN1_STRING_get0_data(cn),
				   (size_t)ASN1_STRING_length(cn));
		if (k) {
			add_name(s, cap, k, pair);
			found++;
		}
	}
	return found;
}

/* Sort by host; for a host two certificates claim, the one expiring last
 * comes first (during a renewal, the new one), then by pair name. */
static int name_cmp(const void *a, const void *b)
{
	const struct tls_name *x = a, *y = b;
	int c = strcmp(x->host, y->host);
	if (c)
		return c;
	if (x->pair->not_after != y->pair->not_after)
		return x->pair->not_after > y->pair->not_after ? -1 : 1;
	return strcmp(x->pair->name, y->pair->name);
}

static void build_index(struct tls_certs *s)
{
	size_t cap = 0;
	for (size_t i = 0; i < s->npairs; i++)
		if (index_pair(s, &cap, &s->pairs[i]) == 0)
			gw_log(GW_LOG_WARN, "tls", "'%s': the certificate names no "
			       "DNS host; it can only serve as default_cert",
			       s->pairs[i].name);
	if (s->nnames)
		qsort(s->names, s->nnames, sizeof(*s->names), name_cmp);
	size_t out = 0;
	for (size_t i = 0; i < s->nnames; i++) {
		if (out && strcmp(s->names[out - 1].host, s->names[i].host) == 0) {
			gw_log(GW_LOG_INFO, "tls", "%s: in '%s' and '%s'; serving '%s'",
			       s->names[i].host, s->names[out - 1].pair->name,
			       s->names[i].pair->name, s->names[out - 1].pair->name);
			free(s->names[i].host);
			continue;
		}
		s->names[out++] = s->names[i];
	}
	s->nnames = out;
}

static SSL_CTX *find(const struct tls_certs *s, const char *host)
{
	size_t lo = 0, hi = s->nnames;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(host, s->names[mid].host);
		if (c == 0)
			return s->names[mid].pair->ctx;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

SSL_CTX *tls_certs_lookup(const struct tls_certs *s, const char *sni,
			  bool *is_default)
{
	*is_default = false;
	size_t n = sni ? strlen(sni) : 0;
	if (n && sni[n - 1] == '.')
		n--;
	if (n && n <= 253) {
		char host[256];
		for (size_t i = 0; i < n; i++)
			host[i] = (char)tolower((unsigned char)sni[i]);
		host[n] = '\0';
		SSL_CTX *ctx = find(s, host);
		if (ctx)
			return ctx;
		/* A wildcard covers exactly one label: x.apps.example.org, not
		 * apps.example.org, not y.x.apps.example.org. */
		const char *dot = strchr(host, '.');
		if (dot && dot != host && dot[1]) {
			char wild[258];
			snprintf(wild, sizeof(wild), "*%s", dot);
			if ((ctx = find(s, wild)))
				return ctx;
		}
	}
	*is_default = s->default_ctx != NULL;
	return s->default_ctx;
}

/* ---- the directory ---------------------------------------------------------- */

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = gw_xmalloc(n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int pair_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pair_files *)a)->name,
		      ((const struct pair_files *)b)->name);
}

static void pair_files_free(struct pair_files *pf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(pf[i].name);
		free(pf[i].crt);
		free(pf[i].key);
	}
	free(pf);
}

/* Find the pairs: NAME.crt (key NAME.key), or a directory NAME holding
 * tls.crt + tls.key (a mounted Kubernetes TLS Secret) or fullchain.pem +
 * privkey.pem (certbot's live/NAME). Names starting with '.' are skipped,
 * which also skips the ..data links of a Secret volume. */
static int scan(const char *dir, struct pair_files **out, size_t *nout,
		char *err, size_t errlen)
{
	static const char *const layouts[][2] = {
		{"tls.crt", "tls.key"}, {"fullchain.pem", "privkey.pem"}};
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "cannot open cert_dir %s: %s", dir,
			 strerror(errno));
		return -1;
	}
	struct pair_files *pf = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		const char *e = de->d_name;
		size_t len = strlen(e);
		if (e[0] == '.')
			continue;
		char *path = join(dir, e);
		struct stat st;
		struct pair_files p = {0};
		if (stat(path, &st) != 0) {
			free(path);
			continue;
		}
		if (S_ISREG(st.st_mode) && len > 4 && strcmp(e + len - 4, ".crt") == 0) {
			p.name = gw_xstrndup(e, len - 4);
			p.crt = path;
			size_t kn = strlen(path) + 1;
			p.key = gw_xmalloc(kn);
			snprintf(p.key, kn, "%.*s.key", (int)(strlen(path) - 4), path);
		} else if (S_ISDIR(st.st_mode)) {
			for (size_t i = 0; i < GW_ARRAY_LEN(layouts) && !p.crt; i++) {
				char *crt = join(path, layouts[i][0]);
				if (!is_file(crt)) {
					free(crt);
					continue;
				}
				p.name = gw_xstrdup(e);
				p.crt = crt;
				p.key = join(path, layouts[i][1]);
			}
			free(path);
		} else {
			free(path);
		}
		if (!p.crt)
			continue;
		if (n == TLS_MAX_PAIRS) {
			snprintf(err, errlen, "more than %d certificates in %s",
				 TLS_MAX_PAIRS, dir);
			free(p.name);
			free(p.crt);
			free(p.key);
			rc = -1;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			pf = gw_xrealloc(pf, cap * sizeof(*pf));
		}
		pf[n++] = p;
	}
	closedir(d);
	if (rc) {
		pair_files_free(pf, n);
		return -1;
	}
	if (n)
		qsort(pf, n, sizeof(*pf), pair_cmp);
	*out = pf;
	*nout = n;
	return 0;
}

static void format_time(time_t t, char *buf, size_t n)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%d %H:%M:%SZ", &tm);
}

/* One pair into a new context, with the reason when it cannot be used. */
static SSL_CTX *load_pair(const struct gw_config *cfg, struct tls *owner,
			  const struct pair_files *pf, time_t *not_after,
			  char *why, size_t whylen)
{
	SSL_CTX *ctx = ctx_new(cfg, owner, why, whylen);
	if (!ctx)
		return NULL;
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, pf->crt) != 1) {
		snprintf(why, whylen, "%s: cannot load the certificate: %s",
			 pf->crt, tls_openssl_reason("unreadable"));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, pf->key, SSL_FILETYPE_PEM) != 1) {
		snprintf(why, whylen, "%s: cannot use the private key: %s",
			 pf->key, tls_openssl_reason("unreadable"));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(why, whylen, "%s: the private key does not match the "
			 "certificate %s", pf->key, pf->crt);
		goto fail;
	}
	const ASN1_TIME *na = X509_get0_notAfter(SSL_CTX_get0_certificate(ctx));
	struct tm tm;
	if (!ASN1_TIME_to_tm(na, &tm)) {
		snprintf(why, whylen, "%s: unreadable expiry date", pf->crt);
		goto fail;
	}
	*not_after = timegm(&tm);
	if (*not_after <= time(NULL)) {
		char when[32];
		format_time(*not_after, when, sizeof(when));
		snprintf(why, whylen, "%s: the certificate expired on %s", pf->crt,
			 when);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

static const struct tls_pair *find_pair(const struct tls_certs *s,
					const char *name)
{
	for (size_t i = 0; s && i < s->npairs; i++)
		if (strcmp(s->pairs[i].name, name) == 0)
			return &s->pairs[i];
	return NULL;
}

struct tls_certs *tls_certs_load(const struct gw_config *cfg, struct tls *owner,
				 const struct tls_certs *old, unsigned *errors,
				 char *err, size_t errlen)
{
	struct tls_certs *s = gw_xcalloc(1, sizeof(*s));
	struct pair_files *pf = NULL;
	size_t npf = 0;
	time_t now = time(NULL);
	if (!cfg->tls_cert_dir) {
		snprintf(err, errlen, "no [tls] cert_dir");
		goto fail;
	}
	if (!(s->base = ctx_new(cfg, owner, err, errlen)) ||
	    scan(cfg->tls_cert_dir, &pf, &npf, err, errlen) != 0)
		goto fail;
	s->pairs = gw_xcalloc(npf ? npf : 1, sizeof(*s->pairs));
	for (size_t i = 0; i < npf; i++) {
		char why[1024];
		time_t na = 0;
		if (i && strcmp(pf[i].name, pf[i - 1].name) == 0) {
			gw_log(GW_LOG_WARN, "tls", "%s: a second pair named '%s'; "
			       "ignored", pf[i].crt, pf[i].name);
			continue;
		}
		SSL_CTX *ctx = load_pair(cfg, owner, &pf[i], &na, why, sizeof(why));
		if (!ctx) {
			(*errors)++;
			const struct tls_pair *prev = find_pair(old, pf[i].name);
			if (!prev) {
				gw_log(GW_LOG_WARN, "tls", "%s; '%s' is not served",
				       why, pf[i].name);
				continue;
			}
			gw_log(GW_LOG_WARN, "tls", "%s; '%s' keeps the certificate "
			       "loaded before", why, pf[i].name);
			SSL_CTX_up_ref(prev->ctx);
			ctx = prev->ctx;
			na = prev->not_after;
		}
		if (na - now < EXPIRY_WARN_S) {
			char when[32];
			format_time(na, when, sizeof(when));
			gw_log(GW_LOG_WARN, "tls", "%s: expires on %s", pf[i].crt,
			       when);
		}
		s->pairs[s->npairs++] =
			(struct tls_pair){gw_xstrdup(pf[i].name), ctx, na};
	}
	for (size_t i = 0; old && i < old->npairs; i++)
		if (!find_pair(s, old->pairs[i].name))
			gw_log(GW_LOG_INFO, "tls", "'%s' is no longer in %s: not "
			       "served any more", old->pairs[i].name,
			       cfg->tls_cert_dir);
	if (s->npairs == 0) {
		snprintf(err, errlen, "no usable certificate in %s",
			 cfg->tls_cert_dir);
		goto fail;
	}
	if (cfg->tls_default_cert) {
		const struct tls_pair *d = find_pair(s, cfg->tls_default_cert);
		if (!d) {
			snprintf(err, errlen, "[tls] default_cert '%s': no usable "
				 "pair of that name in %s", cfg->tls_default_cert,
				 cfg->tls_cert_dir);
			goto fail;
		}
		s->default_ctx = d->ctx;
	}
	build_index(s);
	pair_files_free(pf, npf);
	return s;
fail:
	pair_files_free(pf, npf);
	tls_certs_destroy(s);
	return NULL;
}

SSL_CTX *tls_certs_base(const struct tls_certs *s)
{
	return s->base;
}

unsigned tls_certs_count(const struct tls_certs *s)
{
	return s ? (unsigned)s->npairs : 0;
}

void tls_certs_destroy(struct tls_certs *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i].host);
	free(s->names);
	for (size_t i = 0; i < s->npairs; i++) {
		free(s->pairs[i].name);
		SSL_CTX_free(s->pairs[i].ctx);
	}
	free(s->pairs);
	SSL_CTX_free(s->base);
	free(s);
}
