/* config_int.h - private to gateway/config*.c: the key table's row type.
 * Never included from outside gateway/config*.c.
 */
#ifndef GW_CONFIG_INT_H
#define GW_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

enum key_type {
	T_DURATION = 0, /* unsigned ms: 500ms, 10s, 2m, 1h; bare = seconds */
	T_SIZE,         /* size_t bytes: 512, 16k, 1m */
	T_UINT,         /* unsigned */
	T_WORKERS,      /* auto | 1..max */
	T_LEVEL,        /* error|warn|info|debug */
	T_STRING,       /* char * */
	T_LISTEN,       /* repeatable ADDRESS:PORT */
	T_CIDRS,        /* list of CIDRs */
	T_OPTSTR,       /* char *, empty = NULL (unset) */
	T_OPTADDR,      /* struct gw_addr *, empty = NULL (unset) */
	T_SECRETFILE,   /* char *: the contents of the named file (trailing
			   newline dropped), empty = leave as is */
	T_TLS_LISTEN,   /* repeatable ADDRESS:PORT into tls_listen */
	T_ENUM,         /* unsigned, one of the key's choices */
	T_OPTHOSTPORT,  /* struct gw_hostport *: NAME:PORT or ADDRESS:PORT,
			   empty = NULL (unset) */
};

/* One accepted word of a T_ENUM key and the value stored for it. */
struct choice {
	const char *word;
	unsigned value;
};

struct key {
	const char *section;
	const char *name;
	enum key_type type;
	const char *def;
	unsigned long long min, max;
	size_t offset;
	const char *doc;
	const struct choice *choices; /* T_ENUM: NULL-terminated list */
	/* Optional check of a non-empty string value; returns a reason or
	 * NULL when the value is fine. */
	const char *(*check)(const char *v);
};


/* The key table (config_keys.c), in documentation order. */
extern const struct key config_keys[];
extern const size_t config_nkeys;

/* Why a key cannot change on reload (SIGHUP), or NULL when it can
 * (config_keys.c; docs/configuration.md, "Reload"). */
const char *config_key_restart(const struct key *k);

/* The row for [section] name, or NULL. */
const struct key *config_find_key(const char *section, const char *name);

#endif
