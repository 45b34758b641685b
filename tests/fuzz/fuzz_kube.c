/* fuzz_kube.c - the Kubernetes API server's JSON bodies, as the activator
 * reads them (activator/kube_parse.h): Scale objects (the reply to GET and
 * PATCH on the scale subresource), Status bodies of failed calls, and the
 * EndpointSlice LIST reply followed by the lines of a watch stream.
 *
 * Input: one control byte, then the body. The control byte's low two bits
 * pick the reader (0 Scale, 1 Status, 2-3 LIST + watch), the rest the size
 * of the caller's buffers (so cutting a message or a resourceVersion short
 * is exercised). For LIST + watch the body is split at '\n' as the watch
 * stream is (kube_watch.c): the first line is the LIST reply, every further
 * non-empty line one watch event applied to the same table.
 *
 * Invariants: nothing is written past a buffer (canaries), every output
 * string is NUL-terminated inside its buffer, replicas are never negative,
 * every endpoint in the table has an IPv4/IPv6 address with a port in
 * 1-65535 and a text form, an unreadable LIST leaves the table as it was,
 * a BOOKMARK or an ERROR changes no endpoint, the table holds exactly
 * the slice names a model of the API's semantics says (one entry per
 * name; DELETED removes), and nothing leaks (LSan).
 */
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "kube_parse.h"

#define CANARY 'Z'

/* The harness's own model of the table: the slice names it must hold,
 * derived from the same JSON with jansson directly (not through
 * kube_parse.c): a LIST holds each named item once, ADDED and MODIFIED
 * add a name, DELETED removes it. */
struct names {
	char **v;
	size_t n;
};

static void names_clear(struct names *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i]);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

static void names_set(struct names *m, json_t *obj, bool present)
{
	const char *name = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "name"));
	if (!name)
		return;
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->v[i], name) == 0) {
			if (!present) {
				free(m->v[i]);
				m->v[i] = m->v[--m->n];
			}
			return;
		}
	if (!present)
		return;
	char **v = realloc(m->v, (m->n + 1) * sizeof(*v));
	FUZZ_CHECK(v != NULL);
	m->v = v;
	m->v[m->n] = strdup(name);
	FUZZ_CHECK(m->v[m->n] != NULL);
	m->n++;
}

/* Apply one LIST body (list) or watch line to the model, as the API
 * defines them. */
static void model(struct names *m, const char *p, size_t len, bool list)
{
	json_t *j = json_loadb(p, len, 0, NULL);
	if (!j)
		return;
	if (list) {
		names_clear(m);
		size_t i;
		json_t *item;
		json_array_foreach(json_object_get(j, "items"), i, item)
			names_set(m, item, true);
	} else {
		const char *type = json_string_value(json_object_get(j, "type"));
		json_t *obj = json_object_get(j, "object");
		if (type && obj && strcmp(type, "ERROR") != 0 &&
		    strcmp(type, "BOOKMARK") != 0)
			names_set(m, obj, strcmp(type, "DELETED") != 0);
	}
	json_decref(j);
}

static void check_endpoints(const struct kube_slices *s, size_t *total)
{
	size_t n;
	struct kube_endpoint *all = kube_slices_endpoints(s, &n);
	FUZZ_CHECK(all != NULL);
	for (size_t i = 0; i < n; i++) {
		const struct gw_addr *a = &all[i].addr;
		unsigned port = 0;
		if (a->ss.ss_family == AF_INET) {
			FUZZ_CHECK(a->len == sizeof(struct sockaddr_in));
			port = ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
		} else {
			FUZZ_CHECK(a->ss.ss_family == AF_INET6);
			FUZZ_CHECK(a->len == sizeof(struct sockaddr_in6));
			port = ntohs(
				((const struct sockaddr_in6 *)&a->ss)->sin6_port);
		}
		FUZZ_CHECK(port >= 1 && port <= 65535);
		size_t tl = strnlen(a->text, sizeof(a->text));
		FUZZ_CHECK(tl > 0 && tl < sizeof(a->text));
	}
	free(all);
	*total = n;
}

static void check_str(const char *buf, size_t bufsz)
{
	FUZZ_CHECK(memchr(buf, '\0', bufsz) != NULL);
}

static void fuzz_scale(const char *body, size_t len)
{
	long long replicas = -12345;
	char *rv = NULL;
	if (kube_parse_scale(body, len, &replicas, &rv)) {
		FUZZ_CHECK(replicas >= 0 && replicas <= INT32_MAX);
		FUZZ_CHECK(rv != NULL);
		free(rv);
	} else {
		FUZZ_CHECK(rv == NULL);
	}
}

static void fuzz_status(const char *body, size_t len, size_t whylen)
{
	char why[600];
	memset(why, CANARY, sizeof(why));
	why[0] = '\0';
	bool got = kube_parse_status(body, len, why, whylen);
	FUZZ_CHECK(why[whylen] == CANARY);
	check_str(why, whylen);
	if (!got)
		FUZZ_CHECK(why[0] == '\0' && why[1] == CANARY);
}

static void fuzz_stream(const char *body, size_t len, size_t rvsz,
			size_t whylen)
{
	struct kube_slices *s = kube_slices_create();
	struct names m = {0};
	char rv[128], why[600];
	memset(rv, CANARY, sizeof(rv));
	rv[0] = '\0';
	const char *nl = memchr(body, '\n', len);
	size_t first = nl ? (size_t)(nl - body) : len;
	size_t before, after;
	check_endpoints(s, &before);
	bool listed = kube_parse_list(s, body, first, rv, rvsz);
	FUZZ_CHECK(rv[rvsz] == CANARY);
	check_str(rv, rvsz);
	check_endpoints(s, &after);
	if (!listed)
		FUZZ_CHECK(after == before && kube_slices_count(s) == 0);
	model(&m, body, first, true);
	FUZZ_CHECK(kube_slices_count(s) == m.n);
	const char *p = nl ? nl + 1 : body + len, *end = body + len;
	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		size_t l = e ? (size_t)(e - p) : (size_t)(end - p);
		if (l) {
			long long code = -1;
			memset(why, CANARY, sizeof(why));
			check_endpoints(s, &before);
			size_t nslices = kube_slices_count(s);
			enum kube_event ev = kube_parse_event(
				s, p, l, rv, rvsz, &code, why, whylen);
			FUZZ_CHECK(rv[rvsz] == CANARY);
			check_str(rv, rvsz);
			check_endpoints(s, &after);
			switch (ev) {
			case KUBE_EVENT_UNREADABLE:
			case KUBE_EVENT_ERROR:
				FUZZ_CHECK(why[whylen] == CANARY);
				check_str(why, whylen);
				/* fall through */
			case KUBE_EVENT_IGNORED:
			case KUBE_EVENT_BOOKMARK:
				FUZZ_CHECK(after == before &&
					   kube_slices_count(s) == nslices);
				if (ev != KUBE_EVENT_ERROR)
					FUZZ_CHECK(code == 0);
				break;
			case KUBE_EVENT_CHANGE:
				FUZZ_CHECK(code == 0);
				/* one slice added, replaced or removed */
				FUZZ_CHECK(kube_slices_count(s) + 1 >= nslices &&
					   kube_slices_count(s) <= nslices + 1);
				break;
			default:
				FUZZ_CHECK(!"unknown event kind");
			}
			model(&m, p, l, false);
			FUZZ_CHECK(kube_slices_count(s) == m.n);
		}
		p += l + 1;
	}
	kube_slices_destroy(s);
	names_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned ctl = data[0];
	/* A private copy, exactly as long as the body: a read past it is an
	 * ASan report, not a silent read of the next byte. */
	size_t len = size - 1;
	char *body = malloc(len ? len : 1);
	if (!body)
		return 0;
	memcpy(body, data + 1, len);
	/* whylen 1-64 or the caller's usual 512; rvsz 1-32 or 64 */
	size_t whylen = ctl & 0x80 ? 1 + ((ctl >> 2) & 0x1f) * 2 : 512;
	size_t rvsz = ctl & 0x40 ? 1 + ((ctl >> 2) & 0x0f) * 2 : 64;
	switch (ctl & 3) {
	case 0:
		fuzz_scale(body, len);
		break;
	case 1:
		fuzz_status(body, len, whylen);
		break;
	default:
		fuzz_stream(body, len, rvsz, whylen);
		break;
	}
	free(body);
	return 0;
}
