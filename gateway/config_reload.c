/* config_reload.c - what a reload needs from the configuration module:
 * the file read once as text, and the keys a reload cannot change kept
 * at their running values. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "core/compat.h"

#define TEXT_MAX (16u << 20)

char *config_read_text(const char *path, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "re");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *text = gw_xmalloc(cap);
	for (;;) {
		if (n + 1 == cap) {
			if (cap > TEXT_MAX) {
				snprintf(err, errlen, "%s: larger than %u bytes",
					 path, TEXT_MAX);
				goto fail;
			}
			cap *= 2;
			text = gw_xrealloc(text, cap);
		}
		size_t got = fread(text + n, 1, cap - 1 - n, fp);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	if (memchr(text, '\0', n)) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		goto fail;
	}
	fclose(fp);
	text[n] = '\0';
	return text;
fail:
	fclose(fp);
	free(text);
	return NULL;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Compare the field of k in a and b; when they differ, give `to` a copy
 * of `from`'s value. Returns whether they differed. Only the types a
 * restart-only key has are handled (repeatable lists never are). */
static bool keep_field(const struct key *k, struct gw_config *to,
		       const struct gw_config *from)
{
	void *t = (char *)to + k->offset;
	const void *f = (const char *)from + k->offset;
	switch (k->type) {
	case T_DURATION:
	case T_UINT:
	case T_WORKERS:
	case T_ENUM: {
		unsigned *tv = t;
		const unsigned *fv = f;
		if (*tv == *fv)
			return false;
		*tv = *fv;
		return true;
	}
	case T_SIZE: {
		size_t *tv = t;
		const size_t *fv = f;
		if (*tv == *fv)
			return false;
		*tv = *fv;
		return true;
	}
	case T_STRING:
	case T_OPTSTR:
	case T_SECRETFILE: {
		char **tv = t;
		char *const *fv = f;
		if (str_eq(*tv, *fv))
			return false;
		free(*tv);
		*tv = *fv ? gw_xstrdup(*fv) : NULL;
		return true;
	}
	case T_OPTHOSTPORT: {
		struct gw_hostport **tv = t;
		struct gw_hostport *const *fv = f;
		if ((!*tv && !*fv) ||
		    (*tv && *fv && strcmp((*tv)->text, (*fv)->text) == 0))
			return false;
		free(*tv);
		*tv = NULL;
		if (*fv) {
			*tv = gw_xmalloc(sizeof(**tv));
			**tv = **fv;
		}
		return true;
	}
	case T_OPTADDR: {
		struct gw_addr **tv = t;
		struct gw_addr *const *fv = f;
		if ((!*tv && !*fv) || (*tv && *fv && gw_addr_eq(*tv, *fv)))
			return false;
		free(*tv);
		*tv = NULL;
		if (*fv) {
			*tv = gw_xmalloc(sizeof(**tv));
			**tv = **fv;
		}
		return true;
	}
	case T_LEVEL:
	case T_LISTEN:
	case T_CIDRS:
	case T_TLS_LISTEN:
		break;
	}
	return false;
}

unsigned config_keep_restart_only(struct gw_config *next,
				  const struct gw_config *old, char *changed,
				  size_t changedlen)
{
	unsigned n = 0;
	size_t used = 0;
	if (changedlen)
		changed[0] = '\0';
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct key *k = &config_keys[i];
		if (!config_key_restart(k) || !keep_field(k, next, old))
			continue;
		n++;
		if (used < changedlen) {
			int w = snprintf(changed + used, changedlen - used,
					 "%s[%s] %s", used ? ", " : "",
					 k->section, k->name);
			used += w > 0 ? (size_t)w : 0;
		}
	}
	return n;
}

const char *config_restart_reason(const char *section, const char *key)
{
	const struct key *k = config_find_key(section, key);
	return k ? config_key_restart(k) : NULL;
}
