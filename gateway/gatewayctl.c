/* gatewayctl.c - operators' and scripts' tool for the Redis routing table,
 * memberships and sessions (schema: docs/redis.md).
 *
 * A short-lived command-line program, so it uses hiredis synchronously with
 * a connect and command timeout. Exit codes: 0 done, 1 the request failed
 * (not found, collision, bad value), 2 usage error, 3 Redis unreachable.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "config.h"
#include "hostname.h"
#include "core/addr.h"
#include "core/compat.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_REDIS = 3 };

#define NAME_ALPHABET "abcdefghjkmnpqrstuvwxyz23456789"
#define NAME_LEN 8
#define NAME_TRIES 16

struct ctl {
	redisContext *rc;
	const char *domain; /* hosts are <project>.<domain> */
};

/* ---- helpers ----------------------------------------------------------- */

static redisReply *cmd(struct ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c->rc, fmt, ap);
	va_end(ap);
	if (!r) {
		fprintf(stderr, "gatewayctl: redis: %s\n",
			c->rc->errstr[0] ? c->rc->errstr : "no reply");
		exit(EXIT_REDIS);
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "gatewayctl: redis error: %s\n", r->str);
		freeReplyObject(r);
		exit(EXIT_FAIL);
	}
	return r;
}

static void cmd_ok(struct ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c->rc, fmt, ap);
	va_end(ap);
	if (!r) {
		fprintf(stderr, "gatewayctl: redis: %s\n", c->rc->errstr);
		exit(EXIT_REDIS);
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "gatewayctl: redis error: %s\n", r->str);
		freeReplyObject(r);
		exit(EXIT_FAIL);
	}
	freeReplyObject(r);
}

/* Tell every gateway replica to drop its cached copy (docs/redis.md). */
static void publish(struct ctl *c, const char *kind, const char *name)
{
	char msg[600];
	snprintf(msg, sizeof(msg), "%s %s", kind, name);
	cmd_ok(c, "PUBLISH gw:events %s", msg);
}

static int random_bytes(unsigned char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/* "app-" + NAME_LEN characters, uniform over the alphabet (rejection
 * sampling: 256 is not a multiple of 31). */
static int new_project_name(char out[4 + NAME_LEN + 1])
{
	const size_t k = sizeof(NAME_ALPHABET) - 1;
	const unsigned limit = 256 - (256 % k);
	memcpy(out, "app-", 4);
	size_t i = 0;
	while (i < NAME_LEN) {
		unsigned char b[16];
		if (random_bytes(b, sizeof(b)) != 0)
			return -1;
		for (size_t j = 0; j < sizeof(b) && i < NAME_LEN; j++)
			if (b[j] < limit)
				out[4 + i++] = NAME_ALPHABET[b[j] % k];
	}
	out[4 + NAME_LEN] = '\0';
	return 0;
}

static bool valid_project_name(const char *s)
{
	if (strncmp(s, "app-", 4) != 0 || strlen(s) != 4 + NAME_LEN)
		return false;
	for (const char *p = s + 4; *p; p++)
		if (!strchr(NAME_ALPHABET, *p))
			return false;
	return true;
}

/* A host given on the command line, normalised like the gateway does. */
static int norm_host(const char *in, char out[HOSTNAME_MAX])
{
	const char *err = NULL;
	if (hostname_normalize(gw_str_make(in, strlen(in)), out, &err) != 0) {
		fprintf(stderr, "gatewayctl: invalid host '%s': %s\n", in, err);
		return -1;
	}
	return 0;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v > max || *s == '-')
		return false;
	*out = v;
	return true;
}

/* ---- route ----------------------------------------------------------------- */

static const char route_add_help[] =
	"usage: gatewayctl route add --namespace NS --deployment NAME\n"
	"         [--service SVC] [--port PORT] [--public|--private]\n"
	"         [--idle-timeout SECONDS] [--max-replicas N]\n"
	"         [--upstream ADDR[,ADDR]] [--name app-xxxxxxxx]\n"
	"Creates a route under a new random host and prints the host.\n";

static int route_add(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"namespace", required_argument, NULL, 'n'},
		{"deployment", required_argument, NULL, 'd'},
		{"service", required_argument, NULL, 's'},
		{"port", required_argument, NULL, 'p'},
		{"public", no_argument, NULL, 'P'},
		{"private", no_argument, NULL, 'X'},
		{"idle-timeout", required_argument, NULL, 'i'},
		{"max-replicas", required_argument, NULL, 'm'},
		{"upstream", required_argument, NULL, 'u'},
		{"name", required_argument, NULL, 'N'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *ns = NULL, *dep = NULL, *svc = NULL, *up = NULL,
		   *name = NULL, *vis = "public";
	unsigned long port = 80, idle = 0, maxr = 1;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': ns = optarg; break;
		case 'd': dep = optarg; break;
		case 's': svc = optarg; break;
		case 'u': up = optarg; break;
		case 'N': name = optarg; break;
		case 'P': vis = "public"; break;
		case 'X': vis = "private"; break;
		case 'p':
			if (!parse_uint(optarg, 65535, &port) || port == 0) {
				fprintf(stderr, "gatewayctl: --port: 1-65535\n");
				return EXIT_USAGE;
			}
			break;
		case 'i':
			if (!parse_uint(optarg, 86400 * 30, &idle)) {
				fprintf(stderr, "gatewayctl: --idle-timeout: "
						"seconds, 0-2592000\n");
				return EXIT_USAGE;
			}
			break;
		case 'm':
			if (!parse_uint(optarg, 1000, &maxr) || maxr == 0) {
				fprintf(stderr,
					"gatewayctl: --max-replicas: 1-1000\n");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			fputs(route_add_help, stdout);
			return 0;
		default:
			fputs(route_add_help, stderr);
			return EXIT_USAGE;
		}
	}
	if (!ns || !dep || optind != argc) {
		fputs(route_add_help, stderr);
		return EXIT_USAGE;
	}
	if (up) {
		/* Validate every address now rather than at request time. */
		char *copy = gw_xstrdup(up), *save = NULL;
		for (char *tok = strtok_r(copy, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			struct gw_addr a;
			const char *err = NULL;
			while (*tok == ' ')
				tok++;
			if (gw_addr_parse(tok, &a, &err) != 0) {
				fprintf(stderr, "gatewayctl: --upstream '%s': %s\n",
					tok, err);
				free(copy);
				return EXIT_USAGE;
			}
		}
		free(copy);
	}
	if (name && !valid_project_name(name)) {
		fprintf(stderr, "gatewayctl: --name must be app- followed by %d "
				"of [%s]\n", NAME_LEN, NAME_ALPHABET);
		return EXIT_USAGE;
	}

	char project[4 + NAME_LEN + 1], host[HOSTNAME_MAX + 64];
	for (int tries = 0;; tries++) {
		if (name && tries == 1) {
			fprintf(stderr, "gatewayctl: %s is already taken\n",
				name);
			return EXIT_FAIL;
		}
		if (!name && tries == NAME_TRIES) {
			fprintf(stderr,
				"gatewayctl: no free name after %d tries\n",
				NAME_TRIES);
			return EXIT_FAIL;
		}
		if (name)
			snprintf(project, sizeof(project), "%s", name);
		else if (new_project_name(project) != 0) {
			fprintf(stderr, "gatewayctl: no randomness: %s\n",
				strerror(errno));
			return EXIT_FAIL;
		}
		snprintf(host, sizeof(host), "%s.%s", project, c->domain);
		/* HSETNX on the project field is the atomic reservation. */
		redisReply *r = cmd(c, "HSETNX gw:route:%s project %s", host,
				    project);
		bool won = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
		freeReplyObject(r);
		if (won)
			break;
	}
	char portbuf[8], idlebuf[16], maxbuf[8], created[24];
	snprintf(portbuf, sizeof(portbuf), "%lu", port);
	snprintf(idlebuf, sizeof(idlebuf), "%lu", idle);
	snprintf(maxbuf, sizeof(maxbuf), "%lu", maxr);
	snprintf(created, sizeof(created), "%lld", (long long)time(NULL));
	cmd_ok(c,
	       "HSET gw:route:%s namespace %s deployment %s service %s port %s "
	       "visibility %s idle_timeout %s max_replicas %s created %s",
	       host, ns, dep, svc ? svc : dep, portbuf, vis, idlebuf, maxbuf,
	       created);
	if (up)
		cmd_ok(c, "HSET gw:route:%s upstream %s", host, up);
	cmd_ok(c, "SADD gw:routes %s", host);
	publish(c, "route", host);
	printf("%s\n", host);
	return 0;
}

static int route_rm(struct ctl *c, const char *arg)
{
	char host[HOSTNAME_MAX];
	if (norm_host(arg, host) != 0)
		return EXIT_USAGE;
	redisReply *r = cmd(c, "DEL gw:route:%s", host);
	bool found = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	cmd_ok(c, "SREM gw:routes %s", host);
	publish(c, "route", host);
	if (!found) {
		fprintf(stderr, "gatewayctl: no route for %s\n", host);
		return EXIT_FAIL;
	}
	return 0;
}

static int route_show(struct ctl *c, const char *arg)
{
	char host[HOSTNAME_MAX];
	if (norm_host(arg, host) != 0)
		return EXIT_USAGE;
	redisReply *r = cmd(c, "HGETALL gw:route:%s", host);
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		freeReplyObject(r);
		fprintf(stderr, "gatewayctl: no route for %s\n", host);
		return EXIT_FAIL;
	}
	printf("host: %s\n", host);
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		printf("%s: %s\n", r->element[i]->str, r->element[i + 1]->str);
	freeReplyObject(r);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int print_set_sorted(struct ctl *c, const char *key)
{
	redisReply *r = cmd(c, "SMEMBERS %s", key);
	if (r->type == REDIS_REPLY_ARRAY && r->elements) {
		char **v = gw_xcalloc(r->elements, sizeof(*v));
		for (size_t i = 0; i < r->elements; i++)
			v[i] = r->element[i]->str;
		qsort(v, r->elements, sizeof(*v), cmp_str);
		for (size_t i = 0; i < r->elements; i++)
			printf("%s\n", v[i]);
		free(v);
	}
	freeReplyObject(r);
	return 0;
}

/* ---- member ---------------------------------------------------------------- */

static int member(struct ctl *c, const char *verb, int argc, char **argv)
{
	if (strcmp(verb, "list") == 0 && argc == 1) {
		char key[512];
		snprintf(key, sizeof(key), "gw:members:%s", argv[0]);
		return print_set_sorted(c, key);
	}
	if ((strcmp(verb, "add") == 0 || strcmp(verb, "rm") == 0) && argc == 2) {
		bool add = verb[0] == 'a';
		redisReply *r = cmd(c, add ? "SADD gw:members:%s %s"
					   : "SREM gw:members:%s %s",
				    argv[0], argv[1]);
		bool changed = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
		freeReplyObject(r);
		publish(c, "members", argv[0]);
		if (!add && !changed) {
			fprintf(stderr, "gatewayctl: %s is not a member of %s\n",
				argv[1], argv[0]);
			return EXIT_FAIL;
		}
		return 0;
	}
	fprintf(stderr, "usage: gatewayctl member add|rm PROJECT USER\n"
			"       gatewayctl member list PROJECT\n");
	return EXIT_USAGE;
}

/* ---- session ----------------------------------------------------------------- */

static int session(struct ctl *c, const char *verb, int argc, char **argv)
{
	if (strcmp(verb, "create") == 0 && (argc == 1 || argc == 3)) {
		unsigned long ttl = 86400;
		if (argc == 3 && (strcmp(argv[1], "--ttl") != 0 ||
				  !parse_uint(argv[2], 86400 * 365, &ttl) ||
				  ttl == 0)) {
			fprintf(stderr, "gatewayctl: --ttl: seconds, "
					"1-31536000\n");
			return EXIT_USAGE;
		}
		unsigned char raw[32];
		char sid[65];
		if (random_bytes(raw, sizeof(raw)) != 0) {
			fprintf(stderr, "gatewayctl: no randomness\n");
			return EXIT_FAIL;
		}
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(sid + 2 * i, 3, "%02x", raw[i]);
		char exp[24], ttlbuf[16];
		snprintf(exp, sizeof(exp), "%lld",
			 (long long)time(NULL) + (long long)ttl);
		snprintf(ttlbuf, sizeof(ttlbuf), "%lu", ttl);
		cmd_ok(c, "HSET gw:session:%s user %s expires %s", sid, argv[0],
		       exp);
		cmd_ok(c, "EXPIRE gw:session:%s %s", sid, ttlbuf);
		/* The platform's login news (pre-wake, docs/fleet.md): the
		 * user, never the session id. */
		publish(c, "login", argv[0]);
		printf("%s\n", sid);
		return 0;
	}
	if (strcmp(verb, "revoke") == 0 && argc == 1) {
		redisReply *r = cmd(c, "DEL gw:session:%s", argv[0]);
		bool found = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
		freeReplyObject(r);
		publish(c, "session", argv[0]);
		if (!found) {
			fprintf(stderr, "gatewayctl: no such session\n");
			return EXIT_FAIL;
		}
		return 0;
	}
	fprintf(stderr, "usage: gatewayctl session create USER [--ttl SECONDS]\n"
			"       gatewayctl session revoke SESSION_ID\n");
	return EXIT_USAGE;
}

/* ---- main -------------------------------------------------------------------- */

static const char main_help[] =
	"usage: gatewayctl [-c FILE] [--redis HOST:PORT] [--domain DOMAIN] "
	"COMMAND ...\n"
	"  route add ...            create a route; prints its new host\n"
	"  route rm HOST            remove a route\n"
	"  route list               list routed hosts\n"
	"  route show HOST          show a route's fields\n"
	"  member add|rm PROJECT USER, member list PROJECT\n"
	"  session create USER [--ttl SECONDS]   prints a session id\n"
	"  session revoke SESSION_ID\n"
	"The Redis address and domain come from the config file's [redis] and\n"
	"[gateway] sections unless given here. COMMAND --help for details.\n"
	"Exit status: 0 done, 1 failed, 2 usage, 3 Redis unreachable.\n";

int main(int argc, char **argv)
{
	const char *config_path = NULL, *redis = NULL, *domain = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if ((strcmp(argv[i], "-c") == 0 ||
		     strcmp(argv[i], "--redis") == 0 ||
		     strcmp(argv[i], "--domain") == 0) &&
		    i + 1 < argc) {
			const char **dst = argv[i][1] == 'c' ? &config_path
					   : argv[i][2] == 'r' ? &redis
							       : &domain;
			*dst = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 ||
			   strcmp(argv[i], "--help") == 0) {
			fputs(main_help, stdout);
			return 0;
		} else {
			fputs(main_help, stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - i < 2) {
		fputs(main_help, stderr);
		return EXIT_USAGE;
	}
	const char *noun = argv[i], *verb = argv[i + 1];
	int rest = argc - i - 2;
	char **rargv = argv + i + 2;

	struct gw_config *cfg = NULL;
	if (config_path) {
		char err[512];
		cfg = config_load_file(config_path, err, sizeof(err));
		if (!cfg) {
			fprintf(stderr, "gatewayctl: %s\n", err);
			return EXIT_USAGE;
		}
	}
	if (!domain)
		domain = cfg && cfg->domain ? cfg->domain : "localhost";

	struct gw_addr ra;
	const char *err = NULL;
	if (!redis && cfg && cfg->redis_addr) {
		ra = *cfg->redis_addr;
		redis = ra.text;
	} else {
		if (!redis)
			redis = "127.0.0.1:6379";
		if (gw_addr_parse(redis, &ra, &err) != 0) {
			fprintf(stderr, "gatewayctl: redis address '%s': %s\n",
				redis, err);
			config_destroy(cfg);
			return EXIT_USAGE;
		}
	}
	char ip[64];
	gw_addr_ip(&ra, ip, sizeof(ip));
	unsigned port = ra.ss.ss_family == AF_INET6
				? ntohs(((struct sockaddr_in6 *)&ra.ss)->sin6_port)
				: ntohs(((struct sockaddr_in *)&ra.ss)->sin_port);
	struct timeval tv = {2, 0};
	struct ctl c = {.domain = domain};
	c.rc = redisConnectWithTimeout(ip, (int)port, tv);
	if (!c.rc || c.rc->err) {
		fprintf(stderr, "gatewayctl: cannot reach Redis at %s: %s\n",
			redis, c.rc ? c.rc->errstr : "out of memory");
		redisFree(c.rc);
		config_destroy(cfg);
		return EXIT_REDIS;
	}
	redisSetTimeout(c.rc, tv);
	if (cfg && cfg->redis_password && cfg->redis_password[0])
		cmd_ok(&c, "AUTH %s", cfg->redis_password);
	if (cfg && cfg->redis_db)
		cmd_ok(&c, "SELECT %u", cfg->redis_db);

	int rc = EXIT_USAGE;
	if (strcmp(noun, "route") == 0) {
		if (strcmp(verb, "add") == 0)
			rc = route_add(&c, rest + 1, rargv - 1);
		else if (strcmp(verb, "rm") == 0 && rest == 1)
			rc = route_rm(&c, rargv[0]);
		else if (strcmp(verb, "show") == 0 && rest == 1)
			rc = route_show(&c, rargv[0]);
		else if (strcmp(verb, "list") == 0 && rest == 0)
			rc = print_set_sorted(&c, "gw:routes");
		else
			fprintf(stderr, "usage: gatewayctl route "
					"add|rm HOST|list|show HOST "
					"(route add --help)\n");
	} else if (strcmp(noun, "member") == 0) {
		rc = member(&c, verb, rest, rargv);
	} else if (strcmp(noun, "session") == 0) {
		rc = session(&c, verb, rest, rargv);
	} else {
		fputs(main_help, stderr);
	}
	redisFree(c.rc);
	config_destroy(cfg);
	return rc;
}
