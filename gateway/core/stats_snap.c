/* stats_snap.c - snapshots: an owned, mergeable copy of metric values.
 *
 * A snapshot is families (name, type, buckets) and their series (key,
 * labels, values). Adding a series that exists adds the values, which is
 * how a supervisor sums the snapshots of its workers.
 *
 * Wire encoding (worker -> supervisor, gateway/admin_chan.c), one record a
 * line, fields separated by TAB, and \t \n \\ escaped inside fields:
 *   F <type> <divisor> <nbounds> [<le>...] TAB name TAB key_label TAB help
 *   S <family> <nvalues> <v>... TAB <K key | N> TAB labels
 * <family> counts the F lines before it, from 0. Nothing here is trusted:
 * every number is range-checked and a bad line stops the merge.
 */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/stats.h"
#include "core/stats_int.h"
#include "core/compat.h"

/* Guards against a runaway encoder: far above what any config produces. */
#define SNAP_MAX_SERIES 1000000
#define SNAP_MAX_FAMILIES 10000
#define SNAP_MAX_LINE (64 * 1024)

struct snap_family_rec {
	char *name;
	char *help;
	char *key_label;       /* NULL unless keyed */
	enum stats_type type;
	uint64_t divisor;
	size_t nbounds;
	uint64_t le[STATS_HIST_MAX_BUCKETS];
	size_t *series;        /* indexes into snap->series, first-seen order */
	size_t nseries, capseries;
	bool conflict_logged;
};

struct snap_series_rec {
	size_t fam;
	char *key;        /* NULL unless keyed */
	char *labels;     /* rendered pairs, "" when none */
	uint64_t hash;
	uint64_t *v;      /* snap_family_arity() values */
};

struct stats_snap {
	struct stats_admit *admit;   /* caps keys; NULL = no cap (not owned) */
	struct snap_family_rec *fams;
	size_t nfams, capfams;
	struct snap_series_rec *series;
	size_t nseries, capseries;
	size_t *slots;               /* open addressing: series index + 1 */
	size_t nslots;               /* power of two, > 2 * nseries */
};

/* ---- hashing ----------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t series_hash(size_t fam, const char *key, size_t keylen,
			    const char *labels)
{
	uint64_t h = 14695981039346656037ULL;
	h = fnv(h, &fam, sizeof(fam));
	h = fnv(h, key ? "K" : "N", 1);
	if (key)
		h = fnv(h, key, keylen);
	h = fnv(h, "\0", 1);
	return fnv(h, labels, strlen(labels));
}

/* ---- admission sets ------------------------------------------------------------ */

struct stats_admit {
	unsigned max;
	char **keys;      /* admission order */
	size_t nkeys;
	size_t *slots;    /* key index + 1 */
	size_t nslots;    /* power of two > 2 * max */
};

struct stats_admit *stats_admit_create(unsigned max_keys)
{
	struct stats_admit *a = gw_xcalloc(1, sizeof(*a));
	a->max = max_keys;
	a->keys = gw_xcalloc(max_keys ? max_keys : 1, sizeof(*a->keys));
	a->nslots = 4;
	while (a->nslots <= 2 * (size_t)max_keys)
		a->nslots *= 2;
	a->slots = gw_xcalloc(a->nslots, sizeof(*a->slots));
	return a;
}

void stats_admit_destroy(struct stats_admit *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nkeys; i++)
		free(a->keys[i]);
	free(a->keys);
	free(a->slots);
	free(a);
}

static bool key_ok(const char *key, size_t len)
{
	if (len == 0 || len > STATS_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
			return false;
	return !(len == sizeof(STATS_KEY_OTHER) - 1 &&
		 memcmp(key, STATS_KEY_OTHER, len) == 0);
}

bool stats_admit_index(struct stats_admit *a, const char *key, size_t len,
		       size_t *idx)
{
	if (!key_ok(key, len))
		return false;
	uint64_t h = fnv(14695981039346656037ULL, key, len);
	size_t mask = a->nslots - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		size_t s = a->slots[i];
		if (s == 0) {
			if (a->nkeys >= a->max)
				return false;
			a->keys[a->nkeys] = gw_xstrndup(key, len);
			a->slots[i] = ++a->nkeys;
			*idx = a->nkeys - 1;
			return true;
		}
		const char *k = a->keys[s - 1];
		if (strlen(k) == len && memcmp(k, key, len) == 0) {
			*idx = s - 1;
			return true;
		}
	}
}

const char *stats_admit_key(const struct stats_admit *a, size_t idx)
{
	return a->keys[idx];
}

/* ---- snapshots ------------------------------------------------------------------- */

struct stats_snap *stats_snap_create(struct stats_admit *admit)
{
	struct stats_snap *s = gw_xcalloc(1, sizeof(*s));
	s->admit = admit;
	s->nslots = 64;
	s->slots = gw_xcalloc(s->nslots, sizeof(*s->slots));
	return s;
}

void stats_snap_destroy(struct stats_snap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nfams; i++) {
		free(s->fams[i].name);
		free(s->fams[i].help);
		free(s->fams[i].key_label);
		free(s->fams[i].series);
	}
	for (size_t i = 0; i < s->nseries; i++) {
		free(s->series[i].key);
		free(s->series[i].labels);
		free(s->series[i].v);
	}
	free(s->fams);
	free(s->series);
	free(s->slots);
	free(s);
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

size_t snap_family(struct stats_snap *s, const struct snap_famdef *d)
{
	for (size_t i = 0; i < s->nfams; i++) {
		struct snap_family_rec *f = &s->fams[i];
		if (strcmp(f->name, d->name) != 0)
			continue;
		bool same = f->type == d->type && f->divisor == d->divisor &&
			    same_str(f->key_label, d->key_label) &&
			    (d->type != STATS_HISTOGRAM ||
			     (f->nbounds == d->nbounds &&
			      memcmp(f->le, d->le, d->nbounds * sizeof(*d->le)) ==
				      0));
		if (same)
			return i;
		if (!f->conflict_logged) {
			gw_log(GW_LOG_ERROR, "stats",
			       "metric %s registered twice with different "
			       "types, labels or buckets; keeping the first",
			       d->name);
			f->conflict_logged = true;
		}
		return SNAP_NO_FAMILY;
	}
	if (s->nfams >= SNAP_MAX_FAMILIES)
		return SNAP_NO_FAMILY;
	if (s->nfams == s->capfams) {
		s->capfams = s->capfams ? 2 * s->capfams : 16;
		s->fams = gw_xrealloc(s->fams, s->capfams * sizeof(*s->fams));
	}
	struct snap_family_rec *f = &s->fams[s->nfams];
	memset(f, 0, sizeof(*f));
	f->name = gw_xstrdup(d->name);
	f->help = gw_xstrdup(d->help ? d->help : "");
	f->key_label = d->key_label ? gw_xstrdup(d->key_label) : NULL;
	f->type = d->type;
	f->divisor = d->divisor ? d->divisor : 1;
	if (d->type == STATS_HISTOGRAM) {
		f->nbounds = d->nbounds;
		memcpy(f->le, d->le, d->nbounds * sizeof(*d->le));
	}
	return s->nfams++;
}

size_t snap_family_arity(const struct stats_snap *s, size_t fam)
{
	const struct snap_family_rec *f = &s->fams[fam];
	return f->type == STATS_HISTOGRAM ? f->nbounds + 3 : 1;
}

static void grow_slots(struct stats_snap *s)
{
	free(s->slots);
	s->nslots *= 2;
	s->slots = gw_xcalloc(s->nslots, sizeof(*s->slots));
	size_t mask = s->nslots - 1;
	for (size_t j = 0; j < s->nseries; j++) {
		size_t i = (size_t)s->series[j].hash & mask;
		while (s->slots[i])
			i = (i + 1) & mask;
		s->slots[i] = j + 1;
	}
}

void snap_add_values(struct stats_snap *s, size_t fam, const char *key,
		     size_t keylen, const char *labels, const uint64_t *v)
{
	struct snap_family_rec *f = &s->fams[fam];
	size_t idx;
	if (key && s->admit && !stats_admit_index(s->admit, key, keylen, &idx)) {
		key = STATS_KEY_OTHER;
		keylen = sizeof(STATS_KEY_OTHER) - 1;
	}
	uint64_t h = series_hash(fam, key, keylen, labels);
	size_t mask = s->nslots - 1, i;
	size_t arity = snap_family_arity(s, fam);
	for (i = (size_t)h & mask; s->slots[i]; i = (i + 1) & mask) {
		struct snap_series_rec *r = &s->series[s->slots[i] - 1];
		if (r->hash == h && r->fam == fam && !key == !r->key &&
		    (!key || (strlen(r->key) == keylen &&
			      memcmp(r->key, key, keylen) == 0)) &&
		    strcmp(r->labels, labels) == 0) {
			for (size_t k = 0; k < arity; k++)
				r->v[k] += v[k];
			return;
		}
	}
	if (s->nseries >= SNAP_MAX_SERIES)
		return;
	if (s->nseries == s->capseries) {
		s->capseries = s->capseries ? 2 * s->capseries : 64;
		s->series = gw_xrealloc(s->series,
					s->capseries * sizeof(*s->series));
	}
	struct snap_series_rec *r = &s->series[s->nseries];
	r->fam = fam;
	r->key = key ? gw_xstrndup(key, keylen) : NULL;
	r->labels = gw_xstrdup(labels);
	r->hash = h;
	r->v = gw_xmalloc(arity * sizeof(*r->v));
	memcpy(r->v, v, arity * sizeof(*r->v));
	s->slots[i] = ++s->nseries;
	if (f->nseries == f->capseries) {
		f->capseries = f->capseries ? 2 * f->capseries : 8;
		f->series = gw_xrealloc(f->series,
					f->capseries * sizeof(*f->series));
	}
	f->series[f->nseries++] = s->nseries - 1;
	if (2 * s->nseries >= s->nslots)
		grow_slots(s);
}

void stats_snap_add(struct stats_snap *s, const char *name, const char *help,
		    enum stats_type type, const char *labels, uint64_t v)
{
	struct snap_famdef d = {.name = name, .help = help, .type = type,
				.divisor = 1};
	size_t fam = snap_family(s, &d);
	if (fam != SNAP_NO_FAMILY && type != STATS_HISTOGRAM)
		snap_add_values(s, fam, NULL, 0, labels ? labels : "", &v);
}

size_t stats_snap_nfamilies(const struct stats_snap *s)
{
	return s->nfams;
}

void stats_snap_family(const struct stats_snap *s, size_t i,
		       struct stats_family_info *out)
{
	const struct snap_family_rec *f = &s->fams[i];
	*out = (struct stats_family_info){
		.name = f->name, .help = f->help, .type = f->type,
		.key_label = f->key_label, .divisor = f->divisor,
		.nbounds = f->nbounds, .le = f->le, .nseries = f->nseries,
	};
}

void stats_snap_series(const struct stats_snap *s, size_t fam, size_t j,
		       struct stats_series_info *out)
{
	const struct snap_series_rec *r = &s->series[s->fams[fam].series[j]];
	*out = (struct stats_series_info){r->key, r->labels, r->v};
}

/* ---- encoding ------------------------------------------------------------------- */

static void put_field(struct evbuffer *out, const char *p)
{
	for (; *p; p++) {
		if (*p == '\t')
			evbuffer_add(out, "\\t", 2);
		else if (*p == '\n')
			evbuffer_add(out, "\\n", 2);
		else if (*p == '\\')
			evbuffer_add(out, "\\\\", 2);
		else
			evbuffer_add(out, p, 1);
	}
}

void stats_snap_encode(const struct stats_snap *s, struct evbuffer *out)
{
	for (size_t i = 0; i < s->nfams; i++) {
		const struct snap_family_rec *f = &s->fams[i];
		evbuffer_add_printf(out, "F %d %llu %zu", (int)f->type,
				    (unsigned long long)f->divisor, f->nbounds);
		for (size_t k = 0; k < f->nbounds; k++)
			evbuffer_add_printf(out, " %llu",
					    (unsigned long long)f->le[k]);
		evbuffer_add(out, "\t", 1);
		put_field(out, f->name);
		evbuffer_add(out, "\t", 1);
		put_field(out, f->key_label ? f->key_label : "");
		evbuffer_add(out, "\t", 1);
		put_field(out, f->help);
		evbuffer_add(out, "\n", 1);
		size_t arity = snap_family_arity(s, i);
		for (size_t j = 0; j < f->nseries; j++) {
			const struct snap_series_rec *r =
				&s->series[f->series[j]];
			evbuffer_add_printf(out, "S %zu %zu", i, arity);
			for (size_t k = 0; k < arity; k++)
				evbuffer_add_printf(out, " %llu",
						    (unsigned long long)r->v[k]);
			evbuffer_add(out, r->key ? "\tK" : "\tN", 2);
			if (r->key)
				put_field(out, r->key);
			evbuffer_add(out, "\t", 1);
			put_field(out, r->labels);
			evbuffer_add(out, "\n", 1);
		}
	}
}

/* Unescape field [p, end) into a new string. */
static char *get_field(const char *p, const char *end)
{
	char *o = gw_xmalloc((size_t)(end - p) + 1), *q = o;
	while (p < end) {
		if (*p == '\\' && p + 1 < end) {
			p++;
			*q++ = *p == 't' ? '\t' : *p == 'n' ? '\n' : *p;
			p++;
		} else {
			*q++ = *p++;
		}
	}
	*q = '\0';
	return o;
}

/* Parse space-separated unsigned numbers from *p up to end (a TAB or the
 * line end). */
static bool get_u64(const char **p, const char *end, uint64_t *v)
{
	const char *q = *p;
	while (q < end && *q == ' ')
		q++;
	if (q == end || *q < '0' || *q > '9')
		return false;
	uint64_t n = 0;
	for (; q < end && *q >= '0' && *q <= '9'; q++) {
		if (n > (UINT64_MAX - (uint64_t)(*q - '0')) / 10)
			return false;
		n = n * 10 + (uint64_t)(*q - '0');
	}
	*p = q;
	*v = n;
	return true;
}

/* Split line [p, end) at TABs into at most n fields; returns the count. */
static size_t split_tabs(const char *p, const char *end, const char **f,
			 const char **fe, size_t n)
{
	size_t k = 0;
	while (k < n) {
		f[k] = p;
		const char *t = memchr(p, '\t', (size_t)(end - p));
		fe[k] = t ? t : end;
		k++;
		if (!t)
			break;
		p = t + 1;
	}
	return k;
}

static int merge_family(struct stats_snap *s, const char *p, const char *end,
			size_t **map, size_t *nmap, const char **err)
{
	const char *f[4], *fe[4];
	if (split_tabs(p, end, f, fe, 4) != 4) {
		*err = "family line: expected 4 fields";
		return -1;
	}
	const char *q = f[0] + 1;
	uint64_t type, divisor, nb;
	struct snap_famdef d = {0};
	uint64_t le[STATS_HIST_MAX_BUCKETS];
	if (!get_u64(&q, fe[0], &type) || type >= STATS_TYPE_COUNT ||
	    !get_u64(&q, fe[0], &divisor) || !stats_pow10(divisor) ||
	    !get_u64(&q, fe[0], &nb) || nb > STATS_HIST_MAX_BUCKETS) {
		*err = "family line: bad type, divisor or bucket count";
		return -1;
	}
	for (size_t k = 0; k < nb; k++)
		if (!get_u64(&q, fe[0], &le[k]) || (k && le[k] <= le[k - 1])) {
			*err = "family line: bad bucket bound";
			return -1;
		}
	if ((type == STATS_HISTOGRAM) != (nb > 0)) {
		*err = "family line: buckets on a non-histogram";
		return -1;
	}
	char *name = get_field(f[1], fe[1]);
	char *key_label = get_field(f[2], fe[2]);
	char *help = get_field(f[3], fe[3]);
	int rc = 0;
	if (!stats_valid_metric_name(name) ||
	    (*key_label && !stats_valid_label_name(key_label))) {
		*err = "family line: bad metric or label name";
		rc = -1;
		goto out;
	}
	d = (struct snap_famdef){name, help, (enum stats_type)type,
				 *key_label ? key_label : NULL, divisor,
				 (size_t)nb, le};
	if (*nmap >= SNAP_MAX_FAMILIES) {
		*err = "too many families";
		rc = -1;
		goto out;
	}
	*map = gw_xrealloc(*map, (*nmap + 1) * sizeof(**map));
	(*map)[(*nmap)++] = snap_family(s, &d);
out:
	free(name);
	free(key_label);
	free(help);
	return rc;
}

static int merge_series(struct stats_snap *s, const char *p, const char *end,
			const size_t *map, size_t nmap, const char **err)
{
	const char *f[3], *fe[3];
	if (split_tabs(p, end, f, fe, 3) != 3 || fe[1] == f[1] ||
	    (*f[1] != 'K' && *f[1] != 'N')) {
		*err = "series line: expected 3 fields";
		return -1;
	}
	const char *q = f[0] + 1;
	uint64_t fam, nv;
	if (!get_u64(&q, fe[0], &fam) || fam >= nmap ||
	    !get_u64(&q, fe[0], &nv)) {
		*err = "series line: unknown family";
		return -1;
	}
	size_t local = map[fam];
	if (local != SNAP_NO_FAMILY && nv != snap_family_arity(s, local)) {
		*err = "series line: wrong number of values";
		return -1;
	}
	uint64_t v[STATS_HIST_MAX_BUCKETS + 3];
	if (nv > GW_ARRAY_LEN(v)) {
		*err = "series line: too many values";
		return -1;
	}
	for (size_t k = 0; k < nv; k++)
		if (!get_u64(&q, fe[0], &v[k])) {
			*err = "series line: bad value";
			return -1;
		}
	if (local == SNAP_NO_FAMILY)
		return 0; /* conflicting family: skipped, logged once */
	char *key = *f[1] == 'K' ? get_field(f[1] + 1, fe[1]) : NULL;
	char *labels = get_field(f[2], fe[2]);
	snap_add_values(s, local, key, key ? strlen(key) : 0, labels, v);
	free(key);
	free(labels);
	return 0;
}

int stats_snap_merge_encoded(struct stats_snap *s, const char *buf, size_t len,
			     const char **err)
{
	size_t *map = NULL, nmap = 0;
	const char *p = buf, *end = buf + len;
	int rc = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl || nl - p > SNAP_MAX_LINE) {
			*err = "unterminated or overlong line";
			rc = -1;
			break;
		}
		if (*p == 'F')
			rc = merge_family(s, p, nl, &map, &nmap, err);
		else if (*p == 'S')
			rc = merge_series(s, p, nl, map, nmap, err);
		else {
			*err = "unknown record";
			rc = -1;
		}
		if (rc)
			break;
		p = nl + 1;
	}
	free(map);
	return rc;
}

/* ---- text helpers ------------------------------------------------------------------ */

void stats_escape_label(struct evbuffer *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			evbuffer_add(out, "\\\\", 2);
		else if (*v == '"')
			evbuffer_add(out, "\\\"", 2);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

void stats_escape_help(struct evbuffer *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			evbuffer_add(out, "\\\\", 2);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

size_t stats_format_scaled(char *buf, size_t bufsz, uint64_t v,
			   uint64_t divisor)
{
	int n;
	if (divisor <= 1 || v % divisor == 0) {
		n = snprintf(buf, bufsz, "%llu",
			     (unsigned long long)(divisor > 1 ? v / divisor : v));
		return n > 0 ? (size_t)n : 0;
	}
	/* divisor is a power of ten (stats_register and the decoder check):
	 * the fraction is v % divisor zero-padded to as many digits, without
	 * trailing zeros. */
	int digits = 0;
	for (uint64_t d = divisor; d > 1; d /= 10)
		digits++;
	char f[24]; /* a uint64_t has at most 20 digits */
	uint64_t frac = v % divisor;
	for (int i = digits - 1; i >= 0; i--) {
		f[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	int flen = digits;
	while (flen > 1 && f[flen - 1] == '0')
		flen--;
	n = snprintf(buf, bufsz, "%llu.%.*s", (unsigned long long)(v / divisor),
		     flen, f);
	return n > 0 ? (size_t)n : 0;
}

bool stats_pow10(uint64_t v)
{
	while (v >= 10 && v % 10 == 0)
		v /= 10;
	return v == 1;
}

bool stats_valid_metric_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
			return false;
	return true;
}

bool stats_valid_label_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9') ||
	    (s[0] == '_' && s[1] == '_'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}
