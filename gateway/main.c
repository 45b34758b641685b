/* main.c - command line, configuration, worker processes.
 *
 * The only file that knows every module. With workers = 1 the process is
 * the worker; with more, this process becomes the supervisor
 * (gateway/supervisor.c): it forks the workers (each binds its own
 * SO_REUSEPORT sockets), forwards SIGTERM/SIGINT/SIGHUP to them,
 * restarts one that crashes (at most once a second), serves the admin
 * listener for all of them, and exits when all have exited.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "config.h"
#include "notify.h"
#include "supervisor.h"
#include "tls.h"
#include "worker.h"
#include "core/log.h"
#include "core/compat.h"

#define GATEWAY_VERSION "0.1.0"
#define MAX_WORKERS 64

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gateway [-c FILE] [options]\n"
		"  -c, --config FILE     read the configuration file\n"
		"  -t, --test            check the configuration and exit\n"
		"  --listen ADDR:PORT    listen here (repeatable; overrides the "
		"file's listen)\n"
		"  --route HOST=ADDR[,ADDR]  route a host (repeatable)\n"
		"  --workers N|auto      worker processes\n"
		"  --log-level LEVEL     error|warn|info|debug\n"
		"  --access-log PATH     file, - (stdout) or off\n"
		"  --admin ADDR:PORT|off admin listener (/metrics, /healthz, "
		"/readyz);\n"
		"                        default: the file's [admin] listen, off "
		"without -c\n"
		"  --help-config         list every configuration key\n"
		"  -V, --version         print the version\n"
		"  -h, --help            this help\n"
		"Quick start: gateway --listen 127.0.0.1:8080 "
		"--route app-demo.localhost=127.0.0.1:9001\n");
}

/* Command-line values applied on top of the file (or the defaults). */
struct cli {
	const char *config_path;
	bool test_only;
	const char *listen[16];
	size_t nlisten;
	const char *routes[256];
	size_t nroutes;
	const char *workers;
	const char *log_level;
	const char *access_log;
	const char *admin;
};

static int parse_args(int argc, char **argv, struct cli *cli)
{
	enum { OPT_LISTEN = 256, OPT_ROUTE, OPT_WORKERS, OPT_LOG_LEVEL,
	       OPT_ACCESS_LOG, OPT_ADMIN, OPT_HELP_CONFIG };
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"test", no_argument, NULL, 't'},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"route", required_argument, NULL, OPT_ROUTE},
		{"workers", required_argument, NULL, OPT_WORKERS},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"access-log", required_argument, NULL, OPT_ACCESS_LOG},
		{"admin", required_argument, NULL, OPT_ADMIN},
		{"help-config", no_argument, NULL, OPT_HELP_CONFIG},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cli->config_path = optarg;
			break;
		case 't':
			cli->test_only = true;
			break;
		case OPT_LISTEN:
			if (cli->nlisten == GW_ARRAY_LEN(cli->listen)) {
				fprintf(stderr, "gateway: too many --listen\n");
				return 2;
			}
			cli->listen[cli->nlisten++] = optarg;
			break;
		case OPT_ROUTE:
			if (cli->nroutes == GW_ARRAY_LEN(cli->routes)) {
				fprintf(stderr, "gateway: too many --route; "
						"use a config file\n");
				return 2;
			}
			cli->routes[cli->nroutes++] = optarg;
			break;
		case OPT_WORKERS:
			cli->workers = optarg;
			break;
		case OPT_LOG_LEVEL:
			cli->log_level = optarg;
			break;
		case OPT_ACCESS_LOG:
			cli->access_log = optarg;
			break;
		case OPT_ADMIN:
			cli->admin = optarg;
			break;
		case OPT_HELP_CONFIG:
			config_print_help(stdout);
			exit(0);
		case 'V':
			printf("gateway %s (%s)\n", GATEWAY_VERSION,
			       notify_supported() ? "+systemd" : "-systemd");
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "gateway: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

/* Build the snapshot: the file (its text when given, as read by whoever
 * checked it; else read here) or the defaults, then the command-line
 * overrides. NULL with the reason in err. */
static struct gw_config *load_config(const struct cli *cli, const char *text,
				     char *err, size_t errlen)
{
	struct gw_config *cfg =
		!cli->config_path ? config_create_default()
		: text ? config_load_string(text, cli->config_path, err, errlen)
		       : config_load_file(cli->config_path, err, errlen);
	if (!cfg)
		return NULL;
	if (cli->nlisten) {
		/* Command-line listeners replace the file's. */
		free(cfg->listen);
		cfg->listen = NULL;
		cfg->nlisten = 0;
	}
	for (size_t i = 0; i < cli->nlisten; i++)
		if (config_add_listen(cfg, cli->listen[i], err, errlen))
			goto fail;
	for (size_t i = 0; i < cli->nroutes; i++)
		if (config_add_route(cfg, cli->routes[i], err, errlen))
			goto fail;
	if (cli->workers) {
		char *end = NULL;
		long n = strtol(cli->workers, &end, 10);
		if (strcmp(cli->workers, "auto") == 0) {
			cfg->workers = 0;
		} else if (!*cli->workers || *end || n < 1 || n > MAX_WORKERS) {
			snprintf(err, errlen,
				 "--workers: expected auto or 1-%d, got '%s'",
				 MAX_WORKERS, cli->workers);
			goto fail;
		} else {
			cfg->workers = (unsigned)n;
		}
	}
	if (cli->log_level &&
	    !gw_log_level_parse(cli->log_level, &cfg->log_level)) {
		snprintf(err, errlen,
			 "--log-level: expected error|warn|info|debug, got '%s'",
			 cli->log_level);
		goto fail;
	}
	if (cli->access_log) {
		free(cfg->access_log);
		cfg->access_log = gw_xstrdup(cli->access_log);
	}
	/* Quick mode is for trying things out: no admin port unless asked
	 * for, so two quick gateways on one machine do not collide. */
	const char *admin = cli->admin ? cli->admin
			    : cli->config_path ? NULL
					       : "off";
	if (admin && config_set(cfg, "admin", "listen",
				strcmp(admin, "off") == 0 ? "" : admin, err,
				errlen))
		goto fail;
	if (config_finalize(cfg, err, errlen))
		goto fail;
	return cfg;
fail:
	config_destroy(cfg);
	return NULL;
}

/* config_source.load: SIGHUP builds the snapshot as start did. */
static struct gw_config *reload_config(const struct config_source *src,
				       const char *text, char *err,
				       size_t errlen)
{
	return load_config(src->arg, text, err, errlen);
}

/* What every worker gets from main: made before the fork, shared. */
struct run_ctx {
	struct tls_seed seed;          /* session ticket secret */
	struct config_source src;      /* how to build the config again */
};

/* One worker's life. ctl_fd: its supervisor channel, or -1 when this
 * process is the whole gateway; arg: the run_ctx every worker shares. */
static int run_worker(const struct gw_config *cfg, unsigned index, int ctl_fd,
		      void *arg)
{
	char err[512] = "";
	const struct run_ctx *rc0 = arg;
	struct worker *w =
		worker_create(cfg, &rc0->seed, &rc0->src, err, sizeof(err));
	struct worker_role role = {.index = index, .ctl_fd = ctl_fd};
	if (!w || worker_set_role(w, &role, err, sizeof(err)) != 0) {
		gw_log(GW_LOG_ERROR, "main", "%s", err);
		worker_destroy(w);
		return 1;
	}
	int rc = worker_run(w);
	worker_destroy(w);
	return rc;
}

int main(int argc, char **argv)
{
	struct cli cli = {0};
	int rc = parse_args(argc, argv, &cli);
	if (rc)
		return rc;
	char err[512] = "";
	struct gw_config *cfg = load_config(&cli, NULL, err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "gateway: %s\n", err);
		return 1;
	}
	if (cli.test_only) {
		/* The certificates are part of what must work at start. */
		if (cfg->ntls_listen && tls_check(cfg) != 0) {
			fprintf(stderr, "gateway: [tls] certificates in %s have "
				"problems (above)\n", cfg->tls_cert_dir);
			config_destroy(cfg);
			return 1;
		}
		printf("gateway: configuration %s is valid\n",
		       cli.config_path ? cli.config_path : "(command line)");
		config_destroy(cfg);
		return 0;
	}
	gw_log_threshold = cfg->log_level;
	signal(SIGPIPE, SIG_IGN);
	/* Until a loop handles it, a reload request must not end the process
	 * (SIGHUP's default action). */
	signal(SIGHUP, SIG_IGN);
	/* One secret for this start's session ticket keys, made before the
	 * fork so that every worker accepts every other's tickets. */
	struct run_ctx ctx = {
		.src = {.path = cli.config_path, .load = reload_config,
			.arg = &cli},
	};
	if (tls_seed_init(&ctx.seed) != 0) {
		gw_log(GW_LOG_ERROR, "main", "no random numbers for TLS");
		config_destroy(cfg);
		return 1;
	}
	/* A proxied client costs two descriptors (client + app), a held one
	 * one: raise the soft limit to what we are allowed, as nginx's
	 * worker_rlimit_nofile would. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (gw_access_log_open(cfg->access_log) != 0) {
		gw_log_errno(GW_LOG_ERROR, "main", "cannot open access log %s",
			     cfg->access_log);
		config_destroy(cfg);
		return 1;
	}
	unsigned n = cfg->workers;
	if (n == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus > 0 ? (unsigned)cpus : 1;
		if (n > MAX_WORKERS)
			n = MAX_WORKERS;
	}
	rc = n == 1 ? run_worker(cfg, 0, -1, &ctx)
		    : supervisor_run(cfg, n, &ctx.src, run_worker, &ctx);
	OPENSSL_cleanse(&ctx.seed, sizeof(ctx.seed));
	gw_access_log_close();
	config_destroy(cfg);
	return rc;
}
