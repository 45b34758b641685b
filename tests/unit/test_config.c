/* test_config.c - defaults, units, ranges and precise error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static struct gw_config *load(const char *text, char *err, size_t n)
{
	return config_load_string(text, "t.conf", err, n);
}

static void test_defaults(void **state)
{
	char err[256] = "";
	struct gw_config *c = load("", err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->header_max_bytes, 16384);
	assert_int_equal(c->header_timeout_ms, 10000);
	assert_int_equal(c->keepalive_timeout_ms, 75000);
	assert_int_equal(c->buffer_size, 65536);
	assert_int_equal(c->connect_timeout_ms, 5000);
	assert_null(c->redis_addr);
	assert_string_equal(c->auth_cookie, "gw_session");
	assert_int_equal(c->auth_cache_ttl_ms, 2000);
	config_destroy(c);
}

static void test_units(void **state)
{
	char err[256] = "";
	struct gw_config *c = load("[client]\nheader_timeout = 250ms\n"
				   "keepalive_timeout = 2m\nbody_timeout = 7\n"
				   "header_max_bytes = 32k\nbuffer_size = 1m\n"
				   "[upstream]\ntunnel_idle_timeout = 2h\n",
				   err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->header_timeout_ms, 250);
	assert_int_equal(c->keepalive_timeout_ms, 120000);
	assert_int_equal(c->body_timeout_ms, 7000);
	assert_int_equal(c->header_max_bytes, 32768);
	assert_int_equal(c->buffer_size, 1048576);
	assert_int_equal(c->tunnel_idle_timeout_ms, 7200000);
	config_destroy(c);
}

static void test_listen_routes_and_redis(void **state)
{
	char err[256] = "";
	struct gw_config *c = load("[gateway]\nlisten = 127.0.0.1:81\n"
				   "listen = [::1]:82\nworkers = auto\n"
				   "[redis]\naddress = 127.0.0.1:6379\n"
				   "[routes]\nApp.Test. = 127.0.0.1:9001, "
				   "127.0.0.1:9002\n",
				   err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->nlisten, 2);
	assert_string_equal(c->listen[1].text, "[::1]:82");
	assert_int_equal(c->workers, 0); /* auto */
	assert_non_null(c->redis_addr);
	assert_int_equal(c->nroutes, 1);
	assert_string_equal(c->routes[0].host, "app.test");
	assert_int_equal(c->routes[0].naddrs, 2);
	config_destroy(c);
}

static const struct {
	const char *text;
	const char *want; /* substring of the error */
} bad[] = {
	{"[client]\nheader_timeout = soon\n", "t.conf:2: [client] header_timeout"},
	{"[client]\n\nheader_timeout = 0ms\n", "t.conf:3:"},
	{"[client]\nbuffer_size = 1k\n", "buffer_size"},
	{"[client]\nbuffer_size = 99g\n", "buffer_size"},
	{"[client]\nheader_timeot = 1s\n", "unknown key"},
	{"[clients]\nx = 1\n", "[clients]"},
	{"[gateway]\nworkers = 0\n", "workers"},
	{"[gateway]\nworkers = lots\n", "workers"},
	{"[gateway]\nlisten = example.com:80\n", "listen"},
	{"[gateway]\ntrusted_proxies = 10.0.0.0/33\n", "trusted_proxies"},
	{"[redis]\naddress = redis_x:6379\n", "address"},
	{"[redis]\naddress = redis.svc\n", "address"},
	{"[redis]\naddress = -redis:6379\n", "address"},
	{"[redis]\naddress = redis:0\n", "address"},
	{"[log]\nlevel = loud\n", "level"},
	{"[routes]\na b = 127.0.0.1:1\n", "a b"},
	{"[routes]\na.test = 127.0.0.1:1\na.test = 127.0.0.1:2\n", "twice"},
	{"[routes]\na.test = nowhere\n", "a.test"},
	{"[client]\nheader_max_count = -5\n", "header_max_count"},
};

static void test_errors_are_precise(void **state)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		struct gw_config *c = load(bad[i].text, err, sizeof(err));
		if (c) {
			config_destroy(c);
			fail_msg("case %zu accepted: %s", i, bad[i].text);
		}
		if (!strstr(err, bad[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, err,
				 bad[i].want);
	}
}

/* A section header line is checked whole: inih keeps "[name]" and drops
 * the rest, so a route named by an IPv6 literal vanished, and a misspelt
 * section without keys went unnoticed. */
static void test_section_headers(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"[routes]\n[::1] = 127.0.0.1:1\n",
		 "t.conf:2: [::1]: text after the section header"},
		{"[client]\n[rutes]\n", "t.conf:2: [rutes]: unknown section"},
		{"[routes] x\n", "t.conf:1: [routes]: text after"},
		{"\xEF\xBB\xBF[rutes]\n", "t.conf:1: [rutes]: unknown section"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		struct gw_config *c = load(cases[i].text, err, sizeof(err));
		assert_null(c);
		if (!strstr(err, cases[i].want))
			fail_msg("'%s' lacks '%s'", err, cases[i].want);
	}
	char err[256] = "";
	struct gw_config *c = load("[client] ; the client side\r\n"
				   "header_max_count = 7\n[routes]  \n",
				   err, sizeof(err));
	if (!c)
		fail_msg("refused: %s", err);
	assert_int_equal(c->header_max_count, 7);
	config_destroy(c);
}

static void test_quick_mode_helpers(void **state)
{
	char err[256] = "";
	struct gw_config *c = config_create_default();
	assert_int_equal(config_add_listen(c, "127.0.0.1:8081", err, sizeof(err)), 0);
	assert_int_equal(config_add_listen(c, "nowhere:1", err, sizeof(err)), -1);
	assert_int_equal(config_add_route(c, "app-demo.localhost=127.0.0.1:9001",
					  err, sizeof(err)),
			 0);
	assert_int_equal(config_add_route(c, "missing-equals", err, sizeof(err)),
			 -1);
	assert_int_equal(config_finalize(c, err, sizeof(err)), 0);
	assert_int_equal(c->nroutes, 1);
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "127.0.0.1:8081");
	config_destroy(c);
}

/* inih's line buffer is fixed at build time: a line that does not fit is
 * refused with its number, one that just fits is read whole. */
static void test_long_lines(void **state)
{
	char text[1024], err[256] = "";
	for (size_t fill = 150; fill <= 400; fill += 1) {
		/* "[exec]\n" + "h.test = 127.0.0.1:1 " + "x" * fill + "\n" */
		int n = snprintf(text, sizeof(text),
				 "[exec]\nh.test = 127.0.0.1:1 true%*s\n",
				 (int)fill, "#");
		assert_true(n > 0 && (size_t)n < sizeof(text));
		size_t line = strlen(text + 7) - 1; /* without its newline */
		struct gw_config *c = load(text, err, sizeof(err));
		if (c) {
			assert_true(line <= 199);
			assert_int_equal(c->nroutes, 1);
			config_destroy(c);
		} else {
			assert_true(line > 199);
			assert_non_null(strstr(err, "t.conf:2: line longer than"));
		}
	}
}

static void test_admin_keys(void **state)
{
	char err[512] = "";
	struct gw_config *c = load("", err, sizeof(err));
	assert_non_null(c->admin_listen);
	assert_string_equal(c->admin_listen->text, "127.0.0.1:9180");
	assert_int_equal(c->readyz_redis, CONFIG_READYZ_REDIS_STARTUP);
	assert_int_equal(c->metrics_max_projects, 100);
	config_destroy(c);
	c = load("[admin]\nlisten =\nreadyz_redis = always\n", err,
		 sizeof(err));
	assert_non_null(c);
	assert_null(c->admin_listen);
	assert_int_equal(c->readyz_redis, CONFIG_READYZ_REDIS_ALWAYS);
	config_destroy(c);
	assert_null(load("[admin]\nreadyz_redis = sometimes\n", err,
			 sizeof(err)));
	assert_non_null(strstr(err, "t.conf:2: [admin] readyz_redis: expected "
				    "one of never, startup, always"));
}

static void test_password_file(void **state)
{
	char path[] = "/tmp/gw-test-secret-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "s3cret\n", 7), 7);
	close(fd);
	char text[256], err[512] = "";
	snprintf(text, sizeof(text), "[redis]\npassword = inline\n"
				     "password_file = %s\n", path);
	struct gw_config *c = load(text, err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->redis_password, "s3cret");
	config_destroy(c);
	unlink(path);
	assert_null(load(text, err, sizeof(err)));
	assert_non_null(strstr(err, "t.conf:3: [redis] password_file: cannot "
				    "read"));
}

/* [tls]: defaults that leave TLS off, enum keys, the repeatable listen,
 * and the cross-key check done at finalize. */
static void test_tls_section(void **state)
{
	char err[256] = "";
	struct gw_config *c = load("", err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->ntls_listen, 0);
	assert_null(c->tls_cert_dir);
	assert_int_equal(c->tls_min_version, CONFIG_TLS_1_2);
	assert_int_equal(c->tls_redirect, 0);
	assert_int_equal(c->tls_redirect_port, 443);
	assert_int_equal(c->tls_ticket_rotate_ms, 3600000);
	assert_int_equal(c->tls_handshake_timeout_ms, 10000);
	assert_null(c->tls_hsts);
	config_destroy(c);

	c = load("[tls]\nlisten = 127.0.0.1:8443\nlisten = [::1]:8443\n"
		 "cert_dir = /etc/gw/certs\nmin_version = 1.3\nredirect = 308\n"
		 "hsts = max-age=600; includeSubDomains\n"
		 "acme_backend = 127.0.0.1:8089\nsession_ticket_rotate = 0\n",
		 err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->ntls_listen, 2);
	assert_string_equal(c->tls_listen[1].text, "[::1]:8443");
	assert_int_equal(c->nlisten, 0); /* [gateway] listen keeps its default */
	assert_int_equal(c->tls_min_version, CONFIG_TLS_1_3);
	assert_int_equal(c->tls_redirect, 308);
	assert_string_equal(c->tls_hsts, "max-age=600; includeSubDomains");
	assert_string_equal(c->tls_acme_backend->text, "127.0.0.1:8089");
	assert_int_equal(c->tls_ticket_rotate_ms, 0);
	assert_int_equal(config_finalize(c, err, sizeof(err)), 0);
	assert_int_equal(c->nlisten, 1);
	config_destroy(c);

	c = load("[tls]\nlisten = 127.0.0.1:8443\n", err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(config_finalize(c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs [tls] cert_dir"));
	config_destroy(c);

	c = load("[tls]\n\nredirect = 303\n", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "t.conf:3: [tls] redirect: expected one of"));
	c = load("[tls]\nhsts = max-age=1\x01\n", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "control characters"));
}

/* [redis] address may name a host (resolved on every connect). */
static void test_redis_name(void **state)
{
	char err[256] = "";
	struct gw_config *c = load("[redis]\naddress = Redis.Gateway.svc.:6380\n",
				   err, sizeof(err));
	assert_non_null(c);
	assert_false(c->redis_addr->numeric);
	assert_string_equal(c->redis_addr->host, "redis.gateway.svc.");
	assert_int_equal(c->redis_addr->port, 6380);
	config_destroy(c);
	c = load("[redis]\naddress = [::1]:6379\n", err, sizeof(err));
	assert_non_null(c);
	assert_true(c->redis_addr->numeric);
	assert_string_equal(c->redis_addr->addr.text, "[::1]:6379");
	config_destroy(c);
	/* localhost is a name here, answered by /etc/hosts */
	c = load("[redis]\naddress = localhost:6379\n", err, sizeof(err));
	assert_non_null(c);
	assert_false(c->redis_addr->numeric);
	config_destroy(c);
}

/* A reload keeps what needs a restart and says which keys those were. */
static void test_keep_restart_only(void **state)
{
	char err[256] = "", changed[256];
	struct gw_config *old = load("[gateway]\nworkers = 2\n[redis]\n"
				     "address = 127.0.0.1:6379\npassword = a\n"
				     "[client]\nheader_timeout = 5s\n",
				     err, sizeof(err));
	struct gw_config *next = load("[gateway]\nworkers = 3\n[redis]\n"
				      "address = redis:6379\npassword = b\n"
				      "[client]\nheader_timeout = 7s\n"
				      "[fleet]\nlease_ttl = 20s\n",
				      err, sizeof(err));
	assert_non_null(old);
	assert_non_null(next);
	unsigned n = config_keep_restart_only(next, old, changed,
					      sizeof(changed));
	assert_int_equal(n, 4);
	assert_string_equal(changed, "[gateway] workers, [redis] address, "
			    "[redis] password, [fleet] lease_ttl");
	assert_int_equal(next->workers, 2);
	assert_string_equal(next->redis_addr->text, "127.0.0.1:6379");
	assert_string_equal(next->redis_password, "a");
	assert_int_equal(next->fleet_lease_ttl_ms, 10000);
	assert_int_equal(next->header_timeout_ms, 7000); /* reloadable */
	assert_int_equal(config_keep_restart_only(next, old, changed,
						  sizeof(changed)), 0);
	assert_string_equal(changed, "");
	assert_non_null(config_restart_reason("redis", "db"));
	assert_null(config_restart_reason("client", "header_timeout"));
	/* references: the last one frees (ASan would see a leak or a
	 * double free) */
	assert_ptr_equal(config_ref(old), old);
	config_unref(old);
	config_destroy(old);
	config_destroy(next);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_listen_routes_and_redis),
		cmocka_unit_test(test_errors_are_precise),
		cmocka_unit_test(test_section_headers),
		cmocka_unit_test(test_quick_mode_helpers),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_admin_keys),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_tls_section),
		cmocka_unit_test(test_redis_name),
		cmocka_unit_test(test_keep_restart_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
