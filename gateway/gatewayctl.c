/* gatewayctl.c - operators' and scripts' tool for the Redis routing table,
 * memberships and sessions (schema: docs/redis.md).
 *
 * A short-lived command-line program, so it uses hiredis synchronously with
 * a connect and command timeout. Every command's arguments are parsed and
 * checked before anything is read from the config file or sent to Redis:
 * `--help` and usage errors never touch Redis. Each change is one atomic
 * step in Redis (a Lua script: the write and its event together), so a
 * crash or a lost connection cannot leave half a route behind.
 *
 * Exit codes: 0 done, 1 the request failed (not found, name taken, Redis
 * refused it), 2 usage error (also: an unreadable config file), 3 Redis
 * unreachable.
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
#include "routespec.h"
#include "core/dnsname.h"
#include "core/addr.h"
#include "core/compat.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_REDIS = 3 };

#define NAME_ALPHABET "abcdefghjkmnpqrstuvwxyz23456789"
#define NAME_LEN 8
#define NAME_TRIES 16
#define USER_MAX 256 /* as the gateway accepts (auth.c) */
#define SID_MAX 256
#define MAX_REPLICAS 1000

struct ctl {
	redisContext *rc;
	const char *domain; /* hosts are <project>.<domain> */
};

/* Everything any command takes, filled in by parsing (before Redis). */
struct opts {
	const char *ns, *dep, *svc, *up, *name, *vis;
	unsigned long port, idle, maxr, ttl;
	char host[HOSTNAME_MAX];  /* route rm/show, normalised */
	const char *arg[2];       /* positional arguments */
};

struct command {
	const char *noun, *verb;
	const char *usage;        /* synopsis and what it does */
	int nargs;                /* positional arguments, exactly */
	/* Check positional arguments and fill o; message on stderr. */
	int (*check)(struct opts *o);
	int (*run)(struct ctl *c, const struct opts *o);
};

/* ---- Redis helpers -------------------------------------------------------- */

/* One command from an argv; exits 3 when Redis does not answer and 1 when
 * it answers with an error. The caller frees the reply. */
static redisReply *call(struct ctl *c, int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(c->rc, argc, argv, NULL);
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

/* EVAL script with nkeys keys then arguments; returns the integer reply. */
static long long eval(struct ctl *c, const char *script, int nkeys, int argc,
		      const char **args)
{
	const char *argv[64];
	char nk[8];
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[0] = "EVAL";
	argv[1] = script;
	argv[2] = nk;
	for (int i = 0; i < argc && i < 60; i++)
		argv[3 + i] = args[i];
	redisReply *r = call(c, 3 + argc, argv);
	long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	return v;
}

/* Create the route only if no key of that name exists at all (a hash made
 * by someone else, even without a project field, is taken), list it and
 * announce it: one atomic step. KEYS: route hash, routes set. ARGV: host,
 * then field/value pairs. */
static const char add_script[] =
	"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
	"redis.call('HSET', KEYS[1], unpack(ARGV, 2))\n"
	"redis.call('SADD', KEYS[2], ARGV[1])\n"
	"redis.call('PUBLISH', 'gw:events', 'route ' .. ARGV[1])\n"
	"return 1\n";

/* KEYS: route hash, routes set. ARGV: host. Returns 1 if it existed. */
static const char rm_script[] =
	"local n = redis.call('DEL', KEYS[1])\n"
	"redis.call('SREM', KEYS[2], ARGV[1])\n"
	"redis.call('PUBLISH', 'gw:events', 'route ' .. ARGV[1])\n"
	"return n\n";

/* KEYS: members set. ARGV: SADD|SREM, user, project. */
static const char member_script[] =
	"local n = redis.call(ARGV[1], KEYS[1], ARGV[2])\n"
	"redis.call('PUBLISH', 'gw:events', 'members ' .. ARGV[3])\n"
	"return n\n";

/* KEYS: session hash. ARGV: user, expires, ttl. */
static const char session_script[] =
	"redis.call('HSET', KEYS[1], 'user', ARGV[1], 'expires', ARGV[2])\n"
	"redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
	"redis.call('PUBLISH', 'gw:events', 'login ' .. ARGV[1])\n"
	"return 1\n";

/* KEYS: session hash. ARGV: sid. */
static const char revoke_script[] =
	"local n = redis.call('DEL', KEYS[1])\n"
	"redis.call('PUBLISH', 'gw:events', 'session ' .. ARGV[1])\n"
	"return n\n";

/* ---- names and values ------------------------------------------------------ */

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

static bool parse_uint(const char *s, unsigned long min, unsigned long max,
		       unsigned long *out)
{
	return routespec_uint(s, strlen(s), min, max, out);
}

/* Printable, no spaces or control bytes, 1..max bytes. */
static bool token_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch == 0x7f)
			return false;
	}
	return true;
}

/* What the gateway would accept as a session cookie value (auth.c). */
static bool sid_ok(const char *s)
{
	if (!token_ok(s, SID_MAX))
		return false;
	for (; *s; s++)
		if (*s == '"' || *s == ',' || *s == ';' || *s == '\\' ||
		    (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* Print a value from Redis with control bytes escaped: it may have been
 * written by anyone with access to Redis, and goes to a terminal. */
static void print_safe(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

/* getopt said '?' (unknown) or ':' (missing value); opterr is 0. */
static void bad_option(const char *where, int ch, char **argv)
{
	const char *what = ch == ':' ? "missing value for" : "unknown option";
	if (ch == '?' && optopt)
		fprintf(stderr, "gatewayctl: %s: %s '-%c'\n", where, what,
			optopt);
	else
		fprintf(stderr, "gatewayctl: %s: %s '%s'\n", where, what,
			argv[optind - 1]);
}

/* ---- route ----------------------------------------------------------------- */

static const char route_add_usage[] =
	"usage: gatewayctl route add --namespace NS --deployment NAME\n"
	"         [--service SVC] [--port PORT] [--public|--private]\n"
	"         [--idle-timeout SECONDS] [--max-replicas N]\n"
	"         [--upstream ADDR[,ADDR...]] [--name app-xxxxxxxx]\n"
	"  Creates a route under a new random host and prints the host.\n"
	"  NS, NAME and SVC are DNS-1123 labels (1-63 of a-z 0-9 -); PORT\n"
	"  1-65535 (default 80); SECONDS 0-2592000 (0: the gateway's default);\n"
	"  N 1-1000; ADDR ip:port, at most 64. Public unless --private.\n"
	"  --name asks for that project name and fails (1) if it is taken.\n";

static int route_add_parse(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
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
	o->vis = "public";
	o->port = 80;
	o->maxr = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		const char *bad = NULL;
		switch (ch) {
		case 'n': o->ns = optarg; break;
		case 'd': o->dep = optarg; break;
		case 's': o->svc = optarg; break;
		case 'u': o->up = optarg; break;
		case 'N': o->name = optarg; break;
		case 'P': o->vis = "public"; break;
		case 'X': o->vis = "private"; break;
		case 'p':
			if (!parse_uint(optarg, 1, 65535, &o->port))
				bad = "--port: 1-65535";
			break;
		case 'i':
			if (!parse_uint(optarg, 0, ROUTESPEC_IDLE_MAX, &o->idle))
				bad = "--idle-timeout: seconds, 0-2592000";
			break;
		case 'm':
			if (!parse_uint(optarg, 1, MAX_REPLICAS, &o->maxr))
				bad = "--max-replicas: 1-1000";
			break;
		case 'h':
			return -1;
		default:
			bad_option("route add", ch, argv);
			return EXIT_USAGE;
		}
		if (bad) {
			fprintf(stderr, "gatewayctl: %s\n", bad);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gatewayctl: route add: unexpected argument "
				"'%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (!o->ns || !o->dep) {
		fprintf(stderr, "gatewayctl: route add needs --namespace and "
				"--deployment\n");
		return EXIT_USAGE;
	}
	/* Kubernetes names: Deployments are DNS-1123 subdomains, namespaces
	 * and Services labels (the gateway refuses anything else). */
	const struct {
		const char *opt, *val;
		bool subdomain;
	} names[] = {{"--namespace", o->ns, false},
		     {"--deployment", o->dep, true},
		     {"--service", o->svc, false}};
	for (size_t i = 0; i < GW_ARRAY_LEN(names); i++) {
		const char *v = names[i].val;
		if (!v || (names[i].subdomain ? gw_dns_subdomain(v, strlen(v))
					      : gw_dns_label(v, strlen(v))))
			continue;
		fprintf(stderr,
			"gatewayctl: %s '%s' is not a DNS-1123 %s (1-63 of "
			"a-z 0-9 -, not starting or ending with -%s)\n",
			names[i].opt, v, names[i].subdomain ? "subdomain" : "label",
			names[i].subdomain ? ", labels joined by dots" : "");
		return EXIT_USAGE;
	}
	if (o->up) {
		/* The gateway refuses a route with any bad address, so
		 * check every one now rather than at request time. */
		char *copy = gw_xstrdup(o->up), *save = NULL;
		int n = 0, rc = 0;
		for (char *t = strtok_r(copy, ", ", &save); t && !rc;
		     t = strtok_r(NULL, ", ", &save)) {
			struct gw_addr a;
			const char *err = NULL;
			if (++n > ROUTESPEC_UPSTREAMS_MAX) {
				fprintf(stderr, "gatewayctl: --upstream: at most "
						"%d addresses\n",
					ROUTESPEC_UPSTREAMS_MAX);
				rc = EXIT_USAGE;
			} else if (gw_addr_parse(t, &a, &err) != 0) {
				fprintf(stderr, "gatewayctl: --upstream '%s': "
						"%s\n", t, err);
				rc = EXIT_USAGE;
			}
		}
		free(copy);
		if (!rc && n == 0) {
			fprintf(stderr, "gatewayctl: --upstream: no address\n");
			rc = EXIT_USAGE;
		}
		if (rc)
			return rc;
	}
	if (o->name && !valid_project_name(o->name)) {
		fprintf(stderr, "gatewayctl: --name must be app- followed by %d "
				"of [%s]\n", NAME_LEN, NAME_ALPHABET);
		return EXIT_USAGE;
	}
	return 0;
}

static int route_add(struct ctl *c, const struct opts *o)
{
	char portbuf[8], idlebuf[16], maxbuf[8], created[24];
	snprintf(portbuf, sizeof(portbuf), "%lu", o->port);
	snprintf(idlebuf, sizeof(idlebuf), "%lu", o->idle);
	snprintf(maxbuf, sizeof(maxbuf), "%lu", o->maxr);
	snprintf(created, sizeof(created), "%lld", (long long)time(NULL));
	char project[4 + NAME_LEN + 1], host[HOSTNAME_MAX + 64];
	char key[sizeof(host) + 16];
	for (int tries = 0;; tries++) {
		if (o->name && tries == 1) {
			fprintf(stderr, "gatewayctl: %s is already taken\n",
				o->name);
			return EXIT_FAIL;
		}
		if (!o->name && tries == NAME_TRIES) {
			fprintf(stderr,
				"gatewayctl: no free name after %d tries\n",
				NAME_TRIES);
			return EXIT_FAIL;
		}
		if (o->name)
			snprintf(project, sizeof(project), "%s", o->name);
		else if (new_project_name(project) != 0) {
			fprintf(stderr, "gatewayctl: no randomness: %s\n",
				strerror(errno));
			return EXIT_FAIL;
		}
		snprintf(host, sizeof(host), "%s.%s", project, c->domain);
		snprintf(key, sizeof(key), "gw:route:%s", host);
		const char *args[32] = {
			key, "gw:routes", host,
			"project", project,
			"namespace", o->ns,
			"deployment", o->dep,
			"service", o->svc ? o->svc : o->dep,
			"port", portbuf,
			"visibility", o->vis,
			"idle_timeout", idlebuf,
			"max_replicas", maxbuf,
			"created", created,
		};
		int n = 21;
		if (o->up) {
			args[n++] = "upstream";
			args[n++] = o->up;
		}
		/* The check for a free name and every write are one step. */
		if (eval(c, add_script, 2, n, args) == 1)
			break;
	}
	printf("%s\n", host);
	return 0;
}

/* A HOST argument: normalised like the gateway does. */
static int check_host(struct opts *o)
{
	const char *err = NULL;
	if (hostname_normalize(gw_str_make(o->arg[0], strlen(o->arg[0])),
			       o->host, &err) != 0) {
		fprintf(stderr, "gatewayctl: invalid host '%s': %s\n",
			o->arg[0], err);
		return EXIT_USAGE;
	}
	return 0;
}

static int route_rm(struct ctl *c, const struct opts *o)
{
	char key[HOSTNAME_MAX + 16];
	snprintf(key, sizeof(key), "gw:route:%s", o->host);
	const char *args[] = {key, "gw:routes", o->host};
	if (eval(c, rm_script, 2, 3, args) != 1) {
		fprintf(stderr, "gatewayctl: no route for %s\n", o->host);
		return EXIT_FAIL;
	}
	return 0;
}

static int route_show(struct ctl *c, const struct opts *o)
{
	char key[HOSTNAME_MAX + 16];
	snprintf(key, sizeof(key), "gw:route:%s", o->host);
	const char *argv[] = {"HGETALL", key};
	redisReply *r = call(c, 2, argv);
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		freeReplyObject(r);
		fprintf(stderr, "gatewayctl: no route for %s\n", o->host);
		return EXIT_FAIL;
	}
	printf("host: %s\n", o->host);
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		print_safe(r->element[i]->str, r->element[i]->len);
		fputs(": ", stdout);
		print_safe(r->element[i + 1]->str, r->element[i + 1]->len);
		putchar('\n');
	}
	freeReplyObject(r);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int print_set_sorted(struct ctl *c, const char *key)
{
	const char *argv[] = {"SMEMBERS", key};
	redisReply *r = call(c, 2, argv);
	if (r->type == REDIS_REPLY_ARRAY && r->elements) {
		char **v = gw_xcalloc(r->elements, sizeof(*v));
		for (size_t i = 0; i < r->elements; i++)
			v[i] = r->element[i]->str;
		qsort(v, r->elements, sizeof(*v), cmp_str);
		for (size_t i = 0; i < r->elements; i++) {
			print_safe(v[i], strlen(v[i]));
			putchar('\n');
		}
		free(v);
	}
	freeReplyObject(r);
	return 0;
}

static int route_list(struct ctl *c, const struct opts *o)
{
	(void)o;
	return print_set_sorted(c, "gw:routes");
}

/* ---- member ---------------------------------------------------------------- */

static int check_project(struct opts *o)
{
	if (!routespec_project(o->arg[0], strlen(o->arg[0]))) {
		fprintf(stderr, "gatewayctl: invalid project '%s' (1-63 of "
				"a-z 0-9 _ -)\n", o->arg[0]);
		return EXIT_USAGE;
	}
	return 0;
}

static int check_member(struct opts *o)
{
	int rc = check_project(o);
	if (rc)
		return rc;
	if (!token_ok(o->arg[1], USER_MAX)) {
		fprintf(stderr, "gatewayctl: invalid user (1-%d bytes, no "
				"spaces or control characters)\n", USER_MAX);
		return EXIT_USAGE;
	}
	return 0;
}

static int member_change(struct ctl *c, const struct opts *o, bool add)
{
	char key[ROUTESPEC_PROJECT_MAX + 16];
	snprintf(key, sizeof(key), "gw:members:%s", o->arg[0]);
	const char *args[] = {key, add ? "SADD" : "SREM", o->arg[1], o->arg[0]};
	long long n = eval(c, member_script, 1, 4, args);
	if (!add && n != 1) {
		fprintf(stderr, "gatewayctl: %s is not a member of %s\n",
			o->arg[1], o->arg[0]);
		return EXIT_FAIL;
	}
	return 0;
}

static int member_add(struct ctl *c, const struct opts *o)
{
	return member_change(c, o, true);
}

static int member_rm(struct ctl *c, const struct opts *o)
{
	return member_change(c, o, false);
}

static int member_list(struct ctl *c, const struct opts *o)
{
	char key[ROUTESPEC_PROJECT_MAX + 16];
	snprintf(key, sizeof(key), "gw:members:%s", o->arg[0]);
	return print_set_sorted(c, key);
}

/* ---- session --------------------------------------------------------------- */

static int check_user(struct opts *o)
{
	if (!token_ok(o->arg[0], USER_MAX)) {
		fprintf(stderr, "gatewayctl: invalid user (1-%d bytes, no "
				"spaces or control characters)\n", USER_MAX);
		return EXIT_USAGE;
	}
	return 0;
}

static int check_sid(struct opts *o)
{
	if (!sid_ok(o->arg[0])) {
		fprintf(stderr, "gatewayctl: invalid session id\n");
		return EXIT_USAGE;
	}
	return 0;
}

static int session_create(struct ctl *c, const struct opts *o)
{
	unsigned char raw[32];
	char sid[65];
	if (random_bytes(raw, sizeof(raw)) != 0) {
		fprintf(stderr, "gatewayctl: no randomness\n");
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(sid + 2 * i, 3, "%02x", raw[i]);
	char key[80], exp[24], ttlbuf[16];
	snprintf(key, sizeof(key), "gw:session:%s", sid);
	snprintf(exp, sizeof(exp), "%lld",
		 (long long)time(NULL) + (long long)o->ttl);
	snprintf(ttlbuf, sizeof(ttlbuf), "%lu", o->ttl);
	/* The hash and its TTL together: never a session without one. */
	const char *args[] = {key, o->arg[0], exp, ttlbuf};
	eval(c, session_script, 1, 4, args);
	printf("%s\n", sid);
	return 0;
}

static int session_revoke(struct ctl *c, const struct opts *o)
{
	char key[SID_MAX + 16];
	snprintf(key, sizeof(key), "gw:session:%s", o->arg[0]);
	const char *args[] = {key, o->arg[0]};
	if (eval(c, revoke_script, 1, 2, args) != 1) {
		fprintf(stderr, "gatewayctl: no such session\n");
		return EXIT_FAIL;
	}
	return 0;
}

/* ---- the command table ----------------------------------------------------- */

static const struct command commands[] = {
	{"route", "add", route_add_usage, 0, NULL, route_add},
	{"route", "rm", "usage: gatewayctl route rm HOST\n"
			"  Removes the route for HOST; 1 if there is none.\n",
	 1, check_host, route_rm},
	{"route", "list", "usage: gatewayctl route list\n"
			  "  Prints every routed host, sorted.\n",
	 0, NULL, route_list},
	{"route", "show", "usage: gatewayctl route show HOST\n"
			  "  Prints the route's fields; 1 if there is none.\n",
	 1, check_host, route_show},
	{"member", "add", "usage: gatewayctl member add PROJECT USER\n"
			  "  Lets USER open the private PROJECT.\n",
	 2, check_member, member_add},
	{"member", "rm", "usage: gatewayctl member rm PROJECT USER\n"
			 "  Takes the right away at once; 1 if USER had none.\n",
	 2, check_member, member_rm},
	{"member", "list", "usage: gatewayctl member list PROJECT\n"
			   "  Prints PROJECT's members, sorted.\n",
	 1, check_project, member_list},
	{"session", "create", "usage: gatewayctl session create USER "
			      "[--ttl SECONDS]\n"
			      "  Creates a session for USER (default ttl 86400, "
			      "1-31536000) and prints its id.\n",
	 1, check_user, session_create},
	{"session", "revoke", "usage: gatewayctl session revoke SESSION_ID\n"
			      "  Ends the session at once; 1 if there is none.\n",
	 1, check_sid, session_revoke},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char exit_help[] =
	"Exit status: 0 done, 1 failed (not found, name taken, Redis refused\n"
	"the command), 2 usage error or unreadable config, 3 Redis unreachable.\n";

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
	"[gateway] sections unless given here. COMMAND --help for details;\n"
	"--help never contacts Redis.\n";

static void noun_usage(FILE *f, const char *noun)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].noun, noun) == 0)
			fputs(commands[i].usage, f);
	fputs(exit_help, f);
}

static bool is_help(const char *s)
{
	return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0;
}

/* Parse a command's own arguments (argv[0] is the verb). Returns 0, -1 for
 * --help, or an exit code. */
static int parse_command(const struct command *cmd, struct opts *o, int argc,
			 char **argv)
{
	optind = 0; /* 0, not 1: glibc re-reads the optstring (no '+' now) */
	opterr = 0;
	if (cmd->run == route_add)
		return route_add_parse(o, argc, argv);
	static const struct option lo[] = {
		{"ttl", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool has_ttl = cmd->run == session_create;
	o->ttl = 86400;
	int ch;
	while ((ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (ch == 'h')
			return -1;
		if (ch == 't' && has_ttl) {
			if (!parse_uint(optarg, 1, 86400UL * 365, &o->ttl)) {
				fprintf(stderr, "gatewayctl: --ttl: seconds, "
						"1-31536000\n");
				return EXIT_USAGE;
			}
			continue;
		}
		bad_option(cmd->verb, ch, argv);
		return EXIT_USAGE;
	}
	if (argc - optind != cmd->nargs) {
		fprintf(stderr, "gatewayctl: %s %s takes %d argument(s)\n",
			cmd->noun, cmd->verb, cmd->nargs);
		return EXIT_USAGE;
	}
	for (int i = 0; i < cmd->nargs; i++)
		o->arg[i] = argv[optind + i];
	return cmd->check ? cmd->check(o) : 0;
}

static redisContext *connect_redis(const struct gw_config *cfg,
				   const char *redis, int *rc)
{
	struct gw_hostport ra;
	const char *err = NULL;
	if (!redis && cfg && cfg->redis_addr) {
		ra = *cfg->redis_addr;
	} else if (gw_hostport_parse(redis ? redis : "127.0.0.1:6379", &ra,
				     &err) != 0) {
		fprintf(stderr, "gatewayctl: redis address '%s': %s\n", redis,
			err);
		*rc = EXIT_USAGE;
		return NULL;
	}
	/* A command-line tool may block: hiredis resolves a name itself. */
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout(ra.host, (int)ra.port, tv);
	if (!c || c->err) {
		fprintf(stderr, "gatewayctl: cannot reach Redis at %s: %s\n",
			ra.text, c ? c->errstr : "out of memory");
		redisFree(c);
		*rc = EXIT_REDIS;
		return NULL;
	}
	redisSetTimeout(c, tv);
	return c;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"redis", required_argument, NULL, 'r'},
		{"domain", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = NULL, *redis = NULL, *domain = NULL;
	int ch;
	opterr = 0;
	/* '+': stop at the command, whose options are its own. */
	while ((ch = getopt_long(argc, argv, "+:c:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'r': redis = optarg; break;
		case 'd': domain = optarg; break;
		case 'h':
			fputs(main_help, stdout);
			fputs(exit_help, stdout);
			return 0;
		default:
			bad_option("gatewayctl", ch, argv);
			fputs(main_help, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(main_help, stderr);
		return EXIT_USAGE;
	}
	const char *noun = argv[optind];
	bool noun_known = false;
	for (size_t i = 0; i < NCOMMANDS; i++)
		noun_known |= strcmp(commands[i].noun, noun) == 0;
	if (!noun_known) {
		fprintf(stderr, "gatewayctl: unknown command '%s'\n", noun);
		fputs(main_help, stderr);
		return EXIT_USAGE;
	}
	if (optind + 1 >= argc || is_help(argv[optind + 1])) {
		bool help = optind + 1 < argc;
		noun_usage(help ? stdout : stderr, noun);
		return help ? 0 : EXIT_USAGE;
	}
	const char *verb = argv[optind + 1];
	const struct command *cmd = NULL;
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].noun, noun) == 0 &&
		    strcmp(commands[i].verb, verb) == 0)
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "gatewayctl: unknown command '%s %s'\n", noun,
			verb);
		noun_usage(stderr, noun);
		return EXIT_USAGE;
	}
	struct opts o = {0};
	int rc = parse_command(cmd, &o, argc - optind - 1, argv + optind + 1);
	if (rc == -1) {
		fputs(cmd->usage, stdout);
		fputs(exit_help, stdout);
		return 0;
	}
	if (rc) {
		fputs(cmd->usage, stderr);
		return rc;
	}

	/* Only now: the config file and Redis. */
	struct gw_config *cfg = NULL;
	if (config_path) {
		char err[512];
		cfg = config_load_file(config_path, err, sizeof(err));
		if (!cfg) {
			fprintf(stderr, "gatewayctl: %s\n", err);
			return EXIT_USAGE;
		}
	}
	struct ctl c = {.domain = domain ? domain
				 : cfg && cfg->domain ? cfg->domain
						      : "localhost"};
	c.rc = connect_redis(cfg, redis, &rc);
	if (!c.rc) {
		config_destroy(cfg);
		return rc;
	}
	if (cfg && cfg->redis_password && cfg->redis_password[0]) {
		const char *a[] = {"AUTH", cfg->redis_password};
		freeReplyObject(call(&c, 2, a));
	}
	if (cfg && cfg->redis_db) {
		char db[16];
		snprintf(db, sizeof(db), "%u", cfg->redis_db);
		const char *a[] = {"SELECT", db};
		freeReplyObject(call(&c, 2, a));
	}
	rc = cmd->run(&c, &o);
	redisFree(c.rc);
	config_destroy(cfg);
	return rc;
}
