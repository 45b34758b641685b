/* config.c - one key table drives parsing, defaults, -t and --help-config.
 *
 * Each key is a row {section, key, type, default, min, max, offset, doc}.
 * Defaults are applied through the same parsers as file values, so a
 * default that does not parse fails the unit tests, not production.
 * Errors read "FILE:LINE: [section] key: reason". The [routes] section is
 * free-form: every key is a host name.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_int.h"
#include "hostname.h"
#include "core/compat.h"

/* ---- value parsers ------------------------------------------------------- */

static int parse_number(const char *v, unsigned long long *out,
			const char **suffix)
{
	char *end = NULL;
	errno = 0;
	if (*v < '0' || *v > '9')
		return -1;
	*out = strtoull(v, &end, 10);
	if (errno)
		return -1;
	*suffix = end;
	return 0;
}

static int parse_duration(const char *v, unsigned long long *ms)
{
	const char *sfx;
	unsigned long long n;
	if (parse_number(v, &n, &sfx) != 0 || n > 1000000000ULL)
		return -1;
	if (strcmp(sfx, "ms") == 0)
		*ms = n;
	else if (strcmp(sfx, "s") == 0 || *sfx == '\0')
		*ms = n * 1000;
	else if (strcmp(sfx, "m") == 0)
		*ms = n * 60000;
	else if (strcmp(sfx, "h") == 0)
		*ms = n * 3600000;
	else
		return -1;
	return 0;
}

static int parse_size(const char *v, unsigned long long *bytes)
{
	const char *sfx;
	unsigned long long n;
	if (parse_number(v, &n, &sfx) != 0 || n > (1ULL << 40))
		return -1;
	if (*sfx == '\0')
		*bytes = n;
	else if (strcmp(sfx, "k") == 0 || strcmp(sfx, "K") == 0)
		*bytes = n << 10;
	else if (strcmp(sfx, "m") == 0 || strcmp(sfx, "M") == 0)
		*bytes = n << 20;
	else
		return -1;
	return 0;
}

static void add_listen(struct gw_config *cfg, const struct gw_addr *a)
{
	cfg->listen = gw_xrealloc(cfg->listen,
				  (cfg->nlisten + 1) * sizeof(*cfg->listen));
	cfg->listen[cfg->nlisten++] = *a;
}

/* A secret kept in a file of its own (a Kubernetes Secret volume, a file
 * only root and the gateway's group may read). Read at load time, never
 * from the loop. The value never appears in a message. */
static int read_secret(const char *path, char **out, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "re");
	if (!fp) {
		snprintf(err, errlen, "cannot read '%s': %s", path,
			 strerror(errno));
		return -1;
	}
	char buf[1025];
	size_t n = fread(buf, 1, sizeof(buf), fp);
	bool failed = ferror(fp);
	fclose(fp);
	if (failed || n == sizeof(buf)) {
		snprintf(err, errlen, "'%s': %s", path,
			 failed ? "read error" : "longer than 1024 bytes");
		return -1;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 0 || memchr(buf, '\n', n) || memchr(buf, '\0', n)) {
		explicit_bzero(buf, sizeof(buf));
		snprintf(err, errlen, "'%s': expected one line, not empty", path);
		return -1;
	}
	free(*out);
	*out = gw_xstrndup(buf, n);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* Apply one value; on error writes a reason (no location) into err. */
static int set_key(struct gw_config *cfg, const struct key *k, const char *v,
		   char *err, size_t errlen)
{
	void *field = (char *)cfg + k->offset;
	unsigned long long n = 0;
	const char *e = NULL;
	switch (k->type) {
	case T_DURATION:
		if (parse_duration(v, &n) != 0 || n < k->min || n > k->max) {
			snprintf(err, errlen,
				 "expected a duration (500ms, 10s, 2m, 1h) from "
				 "%llums to %llums, got '%s'",
				 k->min, k->max, v);
			return -1;
		}
		*(unsigned *)field = (unsigned)n;
		return 0;
	case T_SIZE:
		if (parse_size(v, &n) != 0 || n < k->min || n > k->max) {
			snprintf(err, errlen,
				 "expected a size (bytes, or with k/m) from %llu "
				 "to %llu, got '%s'",
				 k->min, k->max, v);
			return -1;
		}
		*(size_t *)field = (size_t)n;
		return 0;
	case T_WORKERS:
		if (strcmp(v, "auto") == 0) {
			*(unsigned *)field = 0;
			return 0;
		}
		/* fall through */
	case T_UINT:
		if (parse_number(v, &n, &e) != 0 || *e || n < k->min ||
		    n > k->max) {
			snprintf(err, errlen, "expected %s%llu-%llu, got '%s'",
				 k->type == T_WORKERS ? "auto or " : "", k->min,
				 k->max, v);
			return -1;
		}
		*(unsigned *)field = (unsigned)n;
		return 0;
	case T_LEVEL:
		if (!gw_log_level_parse(v, (enum gw_log_level *)field)) {
			snprintf(err, errlen,
				 "expected error, warn, info or debug, got '%s'",
				 v);
			return -1;
		}
		return 0;
	case T_STRING:
		if (!*v) {
			snprintf(err, errlen, "must not be empty");
			return -1;
		}
		free(*(char **)field);
		*(char **)field = gw_xstrdup(v);
		return 0;
	case T_LISTEN: {
		struct gw_addr a;
		if (gw_addr_parse(v, &a, &e) != 0) {
			snprintf(err, errlen, "'%s': %s", v, e);
			return -1;
		}
		add_listen(cfg, &a);
		return 0;
	}
	case T_OPTSTR:
		if (*v && k->check && (e = k->check(v))) {
			snprintf(err, errlen, "%s, got '%s'", e, v);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = *v ? gw_xstrdup(v) : NULL;
		return 0;
	case T_TLS_LISTEN: {
		struct gw_addr a;
		if (gw_addr_parse(v, &a, &e) != 0) {
			snprintf(err, errlen, "'%s': %s", v, e);
			return -1;
		}
		cfg->tls_listen = gw_xrealloc(cfg->tls_listen,
					      (cfg->ntls_listen + 1) *
						      sizeof(*cfg->tls_listen));
		cfg->tls_listen[cfg->ntls_listen++] = a;
		return 0;
	}
	case T_ENUM: {
		char words[128] = "";
		for (const struct choice *c = k->choices; c->word; c++) {
			if (strcmp(v, c->word) == 0) {
				*(unsigned *)field = c->value;
				return 0;
			}
			size_t used = strlen(words);
			snprintf(words + used, sizeof(words) - used, "%s%s",
				 used ? ", " : "", c->word);
		}
		snprintf(err, errlen, "expected one of %s, got '%s'", words, v);
		return -1;
	}
	case T_OPTADDR: {
		struct gw_addr **ap = (struct gw_addr **)field;
		free(*ap);
		*ap = NULL;
		if (!*v)
			return 0;
		struct gw_addr a;
		if (gw_addr_parse(v, &a, &e) != 0) {
			snprintf(err, errlen, "'%s': %s", v, e);
			return -1;
		}
		*ap = gw_xmalloc(sizeof(a));
		**ap = a;
		return 0;
	}
	case T_OPTHOSTPORT: {
		struct gw_hostport **hp = (struct gw_hostport **)field;
		free(*hp);
		*hp = NULL;
		if (!*v)
			return 0;
		struct gw_hostport h;
		if (gw_hostport_parse(v, &h, &e) != 0) {
			snprintf(err, errlen, "'%s': %s", v, e);
			return -1;
		}
		*hp = gw_xmalloc(sizeof(h));
		**hp = h;
		return 0;
	}
	case T_SECRETFILE:
		if (!*v)
			return 0;
		return read_secret(v, (char **)field, err, errlen);
	case T_CIDRS: {
		free(cfg->trusted_proxies);
		cfg->trusted_proxies = NULL;
		cfg->ntrusted_proxies = 0;
		char *copy = gw_xstrdup(v), *save = NULL;
		int rc = 0;
		for (char *t = strtok_r(copy, ", \t", &save); t;
		     t = strtok_r(NULL, ", \t", &save)) {
			struct gw_cidr c;
			if (gw_cidr_parse(t, &c, &e) != 0) {
				snprintf(err, errlen, "'%s': %s", t, e);
				rc = -1;
				break;
			}
			cfg->trusted_proxies = gw_xrealloc(
				cfg->trusted_proxies,
				(cfg->ntrusted_proxies + 1) * sizeof(c));
			cfg->trusted_proxies[cfg->ntrusted_proxies++] = c;
		}
		free(copy);
		return rc;
	}
	}
	return -1;
}

/* ---- routes -------------------------------------------------------------------- */

static int add_route_exec(struct gw_config *cfg, const char *host,
			  const char *addrs, const char *exec_command, char *err,
			  size_t errlen);

static int add_route(struct gw_config *cfg, const char *host, const char *addrs,
		     char *err, size_t errlen)
{
	return add_route_exec(cfg, host, addrs, NULL, err, errlen);
}

/* [exec] host = ADDRESS:PORT COMMAND... */
int config_add_exec(struct gw_config *cfg, const char *host, const char *spec,
		    char *err, size_t errlen)
{
	size_t n = strcspn(spec, " \t");
	const char *cmd = spec + n;
	while (*cmd == ' ' || *cmd == '\t')
		cmd++;
	if (n == 0 || !*cmd) {
		snprintf(err, errlen, "exec %s: expected ADDRESS:PORT COMMAND",
			 host);
		return -1;
	}
	char addr[128];
	if (n >= sizeof(addr)) {
		snprintf(err, errlen, "exec %s: address too long", host);
		return -1;
	}
	memcpy(addr, spec, n);
	addr[n] = '\0';
	return add_route_exec(cfg, host, addr, cmd, err, errlen);
}

static int add_route_exec(struct gw_config *cfg, const char *host,
			  const char *addrs, const char *exec_command, char *err,
			  size_t errlen)
{
	char norm[HOSTNAME_MAX];
	const char *e = NULL;
	if (hostname_normalize(gw_str_make(host, strlen(host)), norm, &e) != 0) {
		snprintf(err, errlen, "route host '%s': %s", host, e);
		return -1;
	}
	if (strchr(host, ':') && host[0] != '[') {
		snprintf(err, errlen, "route host '%s': no port in route names",
			 host);
		return -1;
	}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		if (strcmp(cfg->routes[i].host, norm) == 0) {
			snprintf(err, errlen, "route host '%s' given twice", norm);
			return -1;
		}
	}
	struct config_route r = {0};
	char *copy = gw_xstrdup(addrs), *save = NULL;
	for (char *t = strtok_r(copy, ", \t", &save); t;
	     t = strtok_r(NULL, ", \t", &save)) {
		struct gw_addr a;
		if (gw_addr_parse(t, &a, &e) != 0) {
			snprintf(err, errlen, "route %s: upstream '%s': %s", norm,
				 t, e);
			free(copy);
			free(r.addrs);
			return -1;
		}
		r.addrs = gw_xrealloc(r.addrs, (r.naddrs + 1) * sizeof(a));
		r.addrs[r.naddrs++] = a;
	}
	free(copy);
	if (r.naddrs == 0) {
		snprintf(err, errlen, "route %s: no upstream address", norm);
		return -1;
	}
	r.host = gw_xstrdup(norm);
	r.exec_command = exec_command ? gw_xstrdup(exec_command) : NULL;
	cfg->routes = gw_xrealloc(cfg->routes,
				  (cfg->nroutes + 1) * sizeof(*cfg->routes));
	cfg->routes[cfg->nroutes++] = r;
	return 0;
}

int config_add_route(struct gw_config *cfg, const char *spec, char *err,
		     size_t errlen)
{
	const char *eq = strchr(spec, '=');
	if (!eq || eq == spec || !eq[1]) {
		snprintf(err, errlen, "--route: expected HOST=ADDR[,ADDR], got "
				      "'%s'", spec);
		return -1;
	}
	char *host = gw_xstrndup(spec, (size_t)(eq - spec));
	int rc = add_route(cfg, host, eq + 1, err, errlen);
	free(host);
	return rc;
}

int config_add_listen(struct gw_config *cfg, const char *addr, char *err,
		      size_t errlen)
{
	struct gw_addr a;
	const char *e = NULL;
	if (gw_addr_parse(addr, &a, &e) != 0) {
		snprintf(err, errlen, "listen '%s': %s", addr, e);
		return -1;
	}
	add_listen(cfg, &a);
	return 0;
}

/* ---- loading ----------------------------------------------------------------------- */

const struct key *config_find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static bool known_section(const char *section)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].section, section) == 0)
			return true;
	return strcmp(section, "routes") == 0 || strcmp(section, "exec") == 0;
}

struct load {
	struct gw_config *cfg;
	const char *name;   /* file name for messages */
	const char *text;   /* string source: next unread byte */
	FILE *fp;           /* file source */
	unsigned line;      /* lines handed to inih so far */
	bool listen_seen;   /* first listen key replaces the default */
	char *err;
	size_t errlen;
	bool failed;
};

/* inih reads "[name] anything" as a section header and drops the rest of
 * the line, and an unknown section only shows when a key follows it: in
 * [routes], "[::1] = 127.0.0.1:80" as the last line vanished without a word.
 * Check header lines here, where their number is known. (An indented line
 * is a continuation for inih, not a header.) */
static bool section_line_ok(struct load *l, const char *s)
{
	if (l->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3; /* inih skips a UTF-8 BOM */
	if (s[0] != '[')
		return true;
	const char *close = strchr(s, ']');
	if (!close)
		return true; /* inih reports it */
	int n = (int)(close - s - 1);
	const char *rest = close + 1 + strspn(close + 1, " \t\r\n");
	char name[32];
	bool known = n < (int)sizeof(name);
	if (known) {
		memcpy(name, s + 1, (size_t)n);
		name[n] = '\0';
		known = known_section(name);
	}
	if (*rest && *rest != ';' && *rest != '#')
		snprintf(l->err, l->errlen, "%s:%u: [%.*s]: text after the "
			 "section header", l->name, l->line, n, s + 1);
	else if (!known)
		snprintf(l->err, l->errlen, "%s:%u: [%.*s]: unknown section",
			 l->name, l->line, n, s + 1);
	else
		return true;
	l->failed = true;
	return false;
}

/* inih reader: hand out one line at a time and count them. inih's line
 * buffer is fixed when the library is built (INI_MAX_LINE, 200 in Debian):
 * a longer line would be cut and its tail parsed as a line of its own, so it
 * is refused here with its number instead. */
static char *reader(char *str, int num, void *stream)
{
	struct load *l = stream;
	if (num <= 1 || l->failed)
		return NULL;
	size_t n = 0;
	if (l->fp) {
		if (!fgets(str, num, l->fp))
			return NULL;
		n = strlen(str);
	} else {
		if (!*l->text)
			return NULL;
		while (l->text[n] && l->text[n] != '\n' && n + 1 < (size_t)num)
			n++;
		if (l->text[n] == '\n' && n + 1 < (size_t)num)
			n++;
		memcpy(str, l->text, n);
		str[n] = '\0';
		l->text += n;
	}
	l->line++;
	if (n + 1 == (size_t)num && str[n - 1] != '\n') {
		/* Buffer full: the line fits only if its newline or the end
		 * of the input comes next. */
		int next = l->fp ? getc(l->fp) : (unsigned char)*l->text;
		if (next == '\n' && !l->fp)
			l->text++;
		if (next != '\n' && next != EOF && next != '\0') {
			snprintf(l->err, l->errlen,
				 "%s:%u: line longer than %d characters",
				 l->name, l->line, num - 1);
			l->failed = true;
			return NULL;
		}
	}
	if (!section_line_ok(l, str))
		return NULL;
	return str;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct load *l = user;
	char why[400];
	if (l->failed)
		return 0;
	if (!known_section(section)) {
		snprintf(why, sizeof(why), "unknown section");
		goto fail;
	}
	if (strcmp(section, "routes") == 0 || strcmp(section, "exec") == 0) {
		int rc = section[0] == 'r'
				 ? add_route(l->cfg, name, value, why, sizeof(why))
				 : config_add_exec(l->cfg, name, value, why,
						   sizeof(why));
		if (rc != 0)
			goto fail;
		return 1;
	}
	const struct key *k = config_find_key(section, name);
	if (!k) {
		snprintf(why, sizeof(why), "unknown key");
		goto fail;
	}
	if (k->type == T_LISTEN && !l->listen_seen) {
		free(l->cfg->listen);
		l->cfg->listen = NULL;
		l->cfg->nlisten = 0;
		l->listen_seen = true;
	}
	if (set_key(l->cfg, k, value, why, sizeof(why)) != 0)
		goto fail;
	return 1;
fail:
	snprintf(l->err, l->errlen, "%s:%u: [%s] %s: %s", l->name, l->line,
		 section, name, why);
	l->failed = true;
	return 0;
}

struct gw_config *config_create_default(void)
{
	struct gw_config *cfg = gw_xcalloc(1, sizeof(*cfg));
	cfg->refs = 1;
	char err[256];
	for (size_t i = 0; i < config_nkeys; i++) {
		if (config_keys[i].type == T_LISTEN || config_keys[i].type == T_CIDRS ||
		    config_keys[i].type == T_TLS_LISTEN)
			continue; /* listen default applied in finalize */
		if (set_key(cfg, &config_keys[i], config_keys[i].def, err, sizeof(err)) != 0) {
			fprintf(stderr, "gateway: bad built-in default for %s: %s\n",
				config_keys[i].name, err);
			abort();
		}
	}
	return cfg;
}

static struct gw_config *load(struct load *l)
{
	l->cfg = config_create_default();
	int rc = ini_parse_stream(reader, l, handler, l);
	if (l->failed || rc != 0) {
		if (!l->failed)
			snprintf(l->err, l->errlen, "%s:%d: syntax error",
				 l->name, rc > 0 ? rc : 0);
		config_destroy(l->cfg);
		return NULL;
	}
	return l->cfg;
}

struct gw_config *config_load_file(const char *path, char *err, size_t errlen)
{
	struct load l = {.name = path, .err = err, .errlen = errlen};
	l.fp = fopen(path, "re");
	if (!l.fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	struct gw_config *cfg = load(&l);
	fclose(l.fp);
	return cfg;
}

struct gw_config *config_load_string(const char *text, const char *name,
				     char *err, size_t errlen)
{
	struct load l = {.name = name, .text = text, .err = err,
			 .errlen = errlen};
	return load(&l);
}

int config_set(struct gw_config *cfg, const char *section, const char *key,
	       const char *value, char *err, size_t errlen)
{
	const struct key *k = config_find_key(section, key);
	if (!k) {
		snprintf(err, errlen, "[%s] %s: unknown key", section, key);
		return -1;
	}
	char why[400];
	if (set_key(cfg, k, value, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "[%s] %s: %s", section, key, why);
		return -1;
	}
	return 0;
}

int config_finalize(struct gw_config *cfg, char *err, size_t errlen)
{
	if (cfg->nlisten == 0) {
		const struct key *k = config_find_key("gateway", "listen");
		if (set_key(cfg, k, k->def, err, errlen) != 0)
			return -1;
	}
	if (cfg->ntls_listen && !cfg->tls_cert_dir) {
		snprintf(err, errlen, "[tls] listen needs [tls] cert_dir");
		return -1;
	}
	/* SO_REUSEPORT would let a plain and a TLS socket share an address,
	 * and the kernel would deal connections to both. */
	for (size_t i = 0; i < cfg->ntls_listen; i++)
		for (size_t j = 0; j < cfg->nlisten; j++)
			if (strcmp(cfg->tls_listen[i].text, cfg->listen[j].text) == 0) {
				snprintf(err, errlen, "[tls] listen %s is also a "
					 "plain listen address", cfg->listen[j].text);
				return -1;
			}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		if (cfg->routes[i].exec_command && cfg->workers != 1) {
			/* Each worker would start its own copy of the app. */
			snprintf(err, errlen,
				 "[exec] %s: exec apps need workers = 1",
				 cfg->routes[i].host);
			return -1;
		}
	}
	return 0;
}

bool config_peer_trusted(const struct gw_config *cfg, const struct gw_addr *a)
{
	for (size_t i = 0; i < cfg->ntrusted_proxies; i++)
		if (gw_cidr_match(&cfg->trusted_proxies[i], a))
			return true;
	return false;
}

void config_print_help(FILE *out)
{
	const char *section = "";
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct key *k = &config_keys[i];
		if (strcmp(k->section, section) != 0) {
			fprintf(out, "%s[%s]\n", i ? "\n" : "", k->section);
			section = k->section;
		}
		fprintf(out, "%s = %s\n    # %s\n", k->name, k->def, k->doc);
		const char *why = config_key_restart(k);
		if (why)
			fprintf(out, "    # reload: needs a restart (%s)\n", why);
	}
	fprintf(out, "\n[routes]\n<host> = <address:port>[, <address:port>...]\n"
		     "    # static routes: requests for <host> go to these "
		     "addresses (round robin)\n");
	fprintf(out, "\n[exec]\n<host> = <address:port> <command>\n"
		     "    # a local app started on the first request (sh -c), "
		     "ready when it accepts on address:port, stopped when "
		     "idle\n");
}

const struct gw_config *config_ref(const struct gw_config *cfg)
{
	/* Rule zero: the count is the one field written after the snapshot
	 * is built, and it is bookkeeping, not configuration. */
	((struct gw_config *)cfg)->refs++;
	return cfg;
}

void config_destroy(struct gw_config *cfg)
{
	config_unref(cfg);
}

static void config_free(struct gw_config *cfg);

void config_unref(const struct gw_config *cfg)
{
	if (!cfg)
		return;
	struct gw_config *c = (struct gw_config *)cfg; /* rule zero: above */
	if (--c->refs == 0)
		config_free(c);
}

static void config_free(struct gw_config *cfg)
{
	free(cfg->listen);
	free(cfg->trusted_proxies);
	free(cfg->access_log);
	free(cfg->domain);
	free(cfg->redis_addr);
	free(cfg->redis_password);
	free(cfg->auth_cookie);
	free(cfg->auth_login_url);
	free(cfg->kube_api_url);
	free(cfg->kube_token_file);
	free(cfg->kube_ca_file);
	free(cfg->admin_listen);
	free(cfg->kube_namespace_file);
	free(cfg->tls_listen);
	free(cfg->tls_cert_dir);
	free(cfg->tls_default_cert);
	free(cfg->tls_ciphers);
	free(cfg->tls_ciphersuites);
	free(cfg->tls_ticket_key_file);
	free(cfg->tls_hsts);
	free(cfg->tls_acme_backend);
	for (size_t i = 0; i < cfg->nroutes; i++) {
		free(cfg->routes[i].host);
		free(cfg->routes[i].exec_command);
		free(cfg->routes[i].addrs);
	}
	free(cfg->routes);
	free(cfg);
}
