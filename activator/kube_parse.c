/* kube_parse.c - the API server's JSON bodies: EndpointSlices into
 * endpoints, Scale objects, Status messages (kube_parse.h). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_parse.h"
#include "core/compat.h"

struct slice {
	char *name;
	struct kube_endpoint *eps;
	size_t n;
};

struct kube_slices {
	struct slice *v;
	size_t n;
};

struct kube_slices *kube_slices_create(void)
{
	return gw_xcalloc(1, sizeof(struct kube_slices));
}

static void slices_clear(struct kube_slices *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].eps);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

void kube_slices_destroy(struct kube_slices *s)
{
	if (!s)
		return;
	slices_clear(s);
	free(s);
}

size_t kube_slices_count(const struct kube_slices *s)
{
	return s->n;
}

struct kube_endpoint *kube_slices_endpoints(const struct kube_slices *s,
					    size_t *n)
{
	size_t total = 0;
	for (size_t i = 0; i < s->n; i++)
		total += s->v[i].n;
	struct kube_endpoint *all = gw_xcalloc(total ? total : 1, sizeof(*all));
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = 0; j < s->v[i].n; j++)
			all[k++] = s->v[i].eps[j];
	*n = total;
	return all;
}

static bool cond(json_t *conds, const char *name, bool dflt)
{
	json_t *v = json_object_get(conds, name);
	return v && !json_is_null(v) ? json_is_true(v) : dflt;
}

/* Every address of one EndpointSlice, with its conditions. Endpoints that
 * are not ready yet are kept: they are what the activator probes. */
static void slice_parse(json_t *obj, struct kube_endpoint **eps, size_t *n)
{
	*eps = NULL;
	*n = 0;
	const char *type = json_string_value(json_object_get(obj, "addressType"));
	if (type && strcmp(type, "IPv4") != 0 && strcmp(type, "IPv6") != 0)
		return; /* FQDN slices: nothing to connect to */
	json_int_t port = json_integer_value(json_object_get(
		json_array_get(json_object_get(obj, "ports"), 0), "port"));
	if (port <= 0 || port > 65535)
		return;
	size_t i;
	json_t *ep;
	json_array_foreach(json_object_get(obj, "endpoints"), i, ep) {
		json_t *conds = json_object_get(ep, "conditions");
		bool ready = cond(conds, "ready", true);
		struct kube_endpoint ke = {
			.ready = ready,
			.serving = cond(conds, "serving", ready),
			.terminating = cond(conds, "terminating", false),
		};
		size_t j;
		json_t *a;
		json_array_foreach(json_object_get(ep, "addresses"), j, a) {
			const char *ip = json_string_value(a);
			if (!ip || strlen(ip) > 45)
				continue;
			char buf[80];
			snprintf(buf, sizeof(buf),
				 strchr(ip, ':') ? "[%s]:%lld" : "%s:%lld", ip,
				 (long long)port);
			const char *err = NULL;
			if (gw_addr_parse(buf, &ke.addr, &err) != 0)
				continue;
			*eps = gw_xrealloc(*eps, (*n + 1) * sizeof(ke));
			(*eps)[(*n)++] = ke;
		}
	}
}

static void slice_set(struct kube_slices *s, json_t *obj, bool deleted)
{
	const char *name = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "name"));
	if (!name)
		return;
	size_t i;
	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0)
			break;
	if (i == s->n) {
		if (deleted)
			return;
		s->v = gw_xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
		s->v[i] = (struct slice){.name = gw_xstrdup(name)};
		s->n++;
	}
	free(s->v[i].eps);
	s->v[i].eps = NULL;
	s->v[i].n = 0;
	if (deleted) {
		free(s->v[i].name);
		s->v[i] = s->v[--s->n];
		return;
	}
	slice_parse(obj, &s->v[i].eps, &s->v[i].n);
}

static void set_rv(json_t *obj, char *rv, size_t rvsz)
{
	const char *v = json_string_value(json_object_get(
		json_object_get(obj, "metadata"), "resourceVersion"));
	if (v && strlen(v) < rvsz)
		snprintf(rv, rvsz, "%s", v);
}

bool kube_parse_list(struct kube_slices *s, const char *body, size_t len,
		     char *rv, size_t rvsz)
{
	json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
	if (!j)
		return false;
	slices_clear(s);
	size_t i;
	json_t *item;
	json_array_foreach(json_object_get(j, "items"), i, item)
		slice_set(s, item, false);
	set_rv(j, rv, rvsz);
	json_decref(j);
	return true;
}

enum kube_event kube_parse_event(struct kube_slices *s, const char *line,
				 size_t len, char *rv, size_t rvsz,
				 long long *code, char *why, size_t whylen)
{
	*code = 0;
	json_error_t jerr;
	json_t *ev = json_loadb(line, len, 0, &jerr);
	if (!ev) {
		if (whylen)
			snprintf(why, whylen, "%s", jerr.text);
		return KUBE_EVENT_UNREADABLE;
	}
	enum kube_event res;
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *obj = json_object_get(ev, "object");
	if (!type || !obj) {
		res = KUBE_EVENT_IGNORED;
	} else if (strcmp(type, "ERROR") == 0) {
		*code = json_integer_value(json_object_get(obj, "code"));
		const char *m =
			json_string_value(json_object_get(obj, "message"));
		if (whylen)
			snprintf(why, whylen, "%s", m ? m : "error");
		res = KUBE_EVENT_ERROR;
	} else {
		set_rv(obj, rv, rvsz);
		if (strcmp(type, "BOOKMARK") == 0) {
			res = KUBE_EVENT_BOOKMARK;
		} else {
			slice_set(s, obj, strcmp(type, "DELETED") == 0);
			res = KUBE_EVENT_CHANGE;
		}
	}
	json_decref(ev);
	return res;
}

bool kube_parse_scale(const char *body, size_t len, long long *replicas,
		      char **rv)
{
	json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *rep = json_object_get(json_object_get(j, "spec"), "replicas");
	const char *v = json_string_value(json_object_get(
		json_object_get(j, "metadata"), "resourceVersion"));
	if (!j || (rep && !json_is_integer(rep)) || !v) {
		json_decref(j);
		return false;
	}
	/* An absent spec.replicas is 0 (omitempty). The API's type is int32:
	 * anything past it is clamped, so callers may keep it in unsigned. */
	json_int_t now = rep ? json_integer_value(rep) : 0;
	*replicas = now < 0 ? 0 : now > INT32_MAX ? INT32_MAX : now;
	*rv = gw_xstrdup(v);
	json_decref(j);
	return true;
}

bool kube_parse_status(const char *body, size_t len, char *why, size_t whylen)
{
	json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
	const char *m = j ? json_string_value(json_object_get(j, "message"))
			  : NULL;
	if (m)
		snprintf(why, whylen, "%s", m);
	json_decref(j);
	return m != NULL;
}
