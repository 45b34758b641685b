/* tls_ticket.c - session ticket keys: derived, rotated, never stored.
 *
 * A ticket is the session state encrypted under a key only the gateway
 * knows (RFC 5077; TLS 1.3 stateless tickets work the same in OpenSSL).
 * The key for period N (wall clock / session_ticket_rotate) is
 * HMAC-SHA256(secret, label || N): every worker forked from one start
 * shares the random secret, and gateways configured with the same
 * session_ticket_key_file share it too, so a client resumes wherever its
 * next connection lands, without any key exchange between processes.
 * New tickets use the current period's key; tickets from the previous (or,
 * for a neighbour whose clock runs ahead, the next) period are accepted
 * and replaced by a fresh one. A ticket therefore resumes for one to two
 * periods, and a leaked key exposes at most those sessions.
 */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "tls_int.h"
#include "core/log.h"
#include "core/compat.h"

/* Longest key file read: a secret, not a document. */
#define KEY_FILE_MAX 4096

int tls_tickets_setup(struct tls_tickets *tk, const struct gw_config *cfg,
		      const unsigned char seed[32], char *err, size_t errlen)
{
	unsigned char secret[32];
	if (cfg->tls_ticket_key_file) {
		FILE *f = fopen(cfg->tls_ticket_key_file, "re");
		if (!f) {
			snprintf(err, errlen, "session_ticket_key_file %s: %s",
				 cfg->tls_ticket_key_file, strerror(errno));
			return -1;
		}
		unsigned char buf[KEY_FILE_MAX];
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		if (n < 32) {
			OPENSSL_cleanse(buf, sizeof(buf));
			snprintf(err, errlen,
				 "session_ticket_key_file %s: needs at least 32 "
				 "bytes of secret (e.g. openssl rand 48 > FILE)",
				 cfg->tls_ticket_key_file);
			return -1;
		}
		SHA256(buf, n, secret);
		OPENSSL_cleanse(buf, sizeof(buf));
	} else {
		memcpy(secret, seed, sizeof(secret));
	}
	OPENSSL_cleanse(tk, sizeof(*tk));
	memcpy(tk->secret, secret, sizeof(tk->secret));
	OPENSSL_cleanse(secret, sizeof(secret));
	tk->period_s = cfg->tls_ticket_rotate_ms / 1000;
	if (cfg->tls_ticket_rotate_ms && tk->period_s == 0)
		tk->period_s = 1;
	return 0;
}

static void hmac_label(const unsigned char secret[32], const char label[4],
		       uint64_t epoch, unsigned char out[32])
{
	unsigned char msg[12];
	memcpy(msg, label, 4);
	for (int i = 0; i < 8; i++)
		msg[4 + i] = (unsigned char)(epoch >> (56 - 8 * i));
	unsigned int len = 32;
	HMAC(EVP_sha256(), secret, 32, msg, sizeof(msg), out, &len);
}

static struct tls_ticket_key *key_for(struct tls_tickets *tk, uint64_t epoch)
{
	struct tls_ticket_key *k = &tk->cache[epoch % 3];
	if (k->set && k->epoch == epoch)
		return k;
	unsigned char name[32];
	hmac_label(tk->secret, "name", epoch, name);
	memcpy(k->name, name, sizeof(k->name));
	hmac_label(tk->secret, "aesk", epoch, k->aes);
	hmac_label(tk->secret, "hmac", epoch, k->mac);
	k->epoch = epoch;
	k->set = true;
	return k;
}

static int set_mac_key(EVP_MAC_CTX *hctx, unsigned char mac[32])
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, mac, 32),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

int tls_ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
		  EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct tls_tickets *tk = t ? tls_tickets_of(t) : NULL;
	/* 0: no ticket issued / this ticket is unknown (full handshake).
	 * Tickets may have been turned off by a reload while contexts made
	 * before it still finish their handshakes. */
	if (!tk || tk->period_s == 0)
		return 0;
	uint64_t epoch = gw_wall_ms() / 1000 / tk->period_s;
	if (enc) {
		struct tls_ticket_key *k = key_for(tk, epoch);
		memcpy(key_name, k->name, 16);
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1 ||
		    EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
		    set_mac_key(hctx, k->mac) != 0)
			return -1;
		return 1;
	}
	static const int order[] = {0, -1, 1};
	for (size_t i = 0; i < GW_ARRAY_LEN(order); i++) {
		if (order[i] < 0 && epoch == 0)
			continue;
		struct tls_ticket_key *k = key_for(tk, epoch + (uint64_t)(int64_t)order[i]);
		if (memcmp(key_name, k->name, 16) != 0)
			continue;
		if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
		    set_mac_key(hctx, k->mac) != 0)
			return -1;
		return order[i] == 0 ? 1 : 2; /* 2: valid, issue a fresh one */
	}
	return 0;
}
