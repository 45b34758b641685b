/* fuzz_redis.c - the Redis replies the gateway acts on, from the bytes on
 * the wire (RESP, read by hiredis's own reader as redis.c's connections
 * do) to the gateway's readers:
 *   route hash     HGETALL gw:route:<host>   routeparse_hgetall (routesync)
 *   route list     SMEMBERS gw:routes        hostname_normalize of each
 *   session        HMGET gw:session:<sid>    auth_session_reply (auth)
 *   membership     SISMEMBER gw:members:<p>  auth_member_reply (auth)
 *   wake_begin     EVALSHA (fleet_lua.c)     fleet_begin_parse (fleet)
 *   events         a pub/sub "message"       routeparse_event, and for
 *                                            "ready" fleet_ready_parse
 * A hostile or broken Redis can send any reply to any command, so every
 * reply of the input goes to every reader (each guarded exactly as its
 * caller guards it).
 *
 * Input: one control byte (bits 0-2 pick the host a route hash is read
 * for, bit 3 a wall clock near the session expiries), then RESP bytes: as
 * many replies as hiredis reads from them, up to a protocol error.
 *
 * Invariants: an accepted route has a valid project id, at most
 * ROUTESPEC_UPSTREAMS_MAX upstreams, a port and idle timeout in range and
 * Kubernetes names that are valid DNS names; a refused one says why. A
 * valid session is a user of 1-AUTH_USER_MAX bytes inside the reply and
 * an expiry after now. Verdicts are one of their enums, waits bounded.
 * Events: kind and name NUL-terminated and in bounds, a route event's host
 * inside the message. No leak (LSan), no read outside a reply (ASan).
 */
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "auth_int.h"
#include "core/dnsname.h"
#include "fleet_int.h"
#include "fuzz.h"
#include "hostname.h"
#include "routeparse.h"
#include "routes.h"
#include "routespec.h"

#define ELEMENTS_MAX 4096 /* hiredis 0.14 has no cap: see capped_array */
#define LOCK_TTL_MS 10000 /* [fleet] wake_lock_ttl default */

static const char *const hosts[8] = {
	"app.test", "demo.apps.example.com", "a", "x-y_z.test",
	"[::1]", "127.0.0.1", "bad!.test", "0123456789012345678901234567890"
	"12345678901234567890123456789012345.test", /* 65-byte first label */
};

/* hiredis 0.14 allocates an array of whatever length a reply claims
 * before reading one element ("*2000000000\r\n" is 16 GB): a limit of the
 * library that libFuzzer would report as an out-of-memory on every run.
 * The reader's array constructor is wrapped to refuse long arrays (the
 * reader then stops with an error), which keeps the fuzzer on our code. */
static redisReplyObjectFunctions capped;
static void *(*dflt_array)(const redisReadTask *task, int elements);

static void *capped_array(const redisReadTask *task, int elements)
{
	if (elements > ELEMENTS_MAX)
		return NULL;
	return dflt_array(task, elements);
}

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
	return n == 0 || (p >= buf && p + n <= buf + len);
}

static void check_route(const char *host, const redisReply *r)
{
	char why[256];
	memset(why, 'Z', sizeof(why));
	why[0] = '\0';
	struct route *rt = routeparse_hgetall(host, r, why, sizeof(why) - 1);
	FUZZ_CHECK(why[sizeof(why) - 1] == 'Z');
	if (!rt) {
		FUZZ_CHECK(why[0] != '\0');
		FUZZ_CHECK(memchr(why, '\0', sizeof(why) - 1) != NULL);
		return;
	}
	FUZZ_CHECK(strcmp(rt->host, host) == 0);
	FUZZ_CHECK(routespec_project(rt->project, strlen(rt->project)));
	FUZZ_CHECK(rt->naddrs <= ROUTESPEC_UPSTREAMS_MAX);
	FUZZ_CHECK((rt->naddrs == 0) == (rt->addrs == NULL));
	for (size_t i = 0; i < rt->naddrs; i++)
		FUZZ_CHECK(rt->addrs[i].ss.ss_family == AF_INET ||
			   rt->addrs[i].ss.ss_family == AF_INET6);
	FUZZ_CHECK(rt->port <= 65535);
	FUZZ_CHECK(rt->idle_timeout_s <= ROUTESPEC_IDLE_MAX);
	FUZZ_CHECK(rt->max_replicas <= 1000);
	if (rt->namespace_)
		FUZZ_CHECK(gw_dns_label(rt->namespace_, strlen(rt->namespace_)));
	if (rt->service)
		FUZZ_CHECK(gw_dns_label(rt->service, strlen(rt->service)));
	if (rt->deployment) {
		FUZZ_CHECK(gw_dns_subdomain(rt->deployment,
					    strlen(rt->deployment)));
		/* the Service defaults to it: then it must be a label */
		if (!rt->service)
			FUZZ_CHECK(gw_dns_label(rt->deployment,
						strlen(rt->deployment)));
	}
	route_free(rt);
}

/* What routesync's fetch() does with a host from Redis. */
static void check_host(const char *p, size_t n)
{
	char out[HOSTNAME_MAX + 1];
	const char *err = NULL;
	if (hostname_normalize(gw_str_make(p, n), out, &err) == 0)
		FUZZ_CHECK(strnlen(out, sizeof(out)) < HOSTNAME_MAX);
	else
		FUZZ_CHECK(err != NULL);
}

/* What routesync's members_cb does with a SMEMBERS reply: every string
 * element is a host to normalise (a bad one is refused and counted). */
static void check_route_list(const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		if (e->type == REDIS_REPLY_STRING)
			check_host(e->str, e->len);
	}
}

static void check_session(const redisReply *r, uint64_t now_s)
{
	struct auth_session s = {0};
	enum auth_session_verdict v = auth_session_reply(r, now_s, &s);
	switch (v) {
	case AUTH_SESSION_VALID:
		FUZZ_CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 2);
		FUZZ_CHECK(s.user_len >= 1 && s.user_len <= AUTH_USER_MAX);
		FUZZ_CHECK(inside(s.user, s.user_len, r->element[0]->str,
				  r->element[0]->len));
		FUZZ_CHECK(s.expires_s > now_s && s.expires_s <= 9999999999ull);
		break;
	case AUTH_SESSION_NONE:
	case AUTH_SESSION_BAD_EXPIRES:
		FUZZ_CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 2);
		break;
	case AUTH_SESSION_UNAVAILABLE:
		break;
	default:
		FUZZ_CHECK(!"unknown session verdict");
	}
}

static void check_member(const redisReply *r)
{
	enum auth_result res = auth_member_reply(r);
	FUZZ_CHECK(res == AUTH_ALLOW || res == AUTH_FORBIDDEN ||
		   res == AUTH_UNAVAILABLE);
	if (res == AUTH_ALLOW)
		FUZZ_CHECK(r->type == REDIS_REPLY_INTEGER && r->integer == 1);
}

static void check_begin(const redisReply *r)
{
	struct fleet_begin b;
	memset(&b, 0xa5, sizeof(b));
	fleet_begin_parse(r, LOCK_TTL_MS, &b);
	FUZZ_CHECK(b.kind >= FLEET_BEGIN_NONE &&
		   b.kind <= FLEET_BEGIN_UNDRAINED);
	FUZZ_CHECK(b.again_ms >= 0 && b.again_ms <= 11 * 60 * 1000);
	FUZZ_CHECK(b.pos >= 0 && b.len >= 0);
	if (b.kind == FLEET_BEGIN_NONE)
		FUZZ_CHECK(b.again_ms > 0); /* never a busy loop */
}

static void check_ready(const char *rest)
{
	char project[256];
	struct gw_addr addrs[32];
	size_t n = fleet_ready_parse(rest, project, addrs, 32);
	FUZZ_CHECK(n <= 32);
	if (!n)
		return;
	size_t pl = strnlen(project, sizeof(project));
	FUZZ_CHECK(pl > 0 && pl < sizeof(project));
	FUZZ_CHECK(memcmp(project, rest, pl) == 0 && rest[pl] == ' ');
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(addrs[i].ss.ss_family == AF_INET ||
			   addrs[i].ss.ss_family == AF_INET6);
}

/* The subscriber's path: redis.c's sub_cb takes element 2 of a
 * "message" array, routesync splits it, the fleet reads "ready" news. */
static void check_message(const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return;
	const char *msg = r->element[2]->str;
	size_t len = r->element[2]->len;
	struct routeparse_event ev;
	switch (routeparse_event(msg, len, &ev)) {
	case ROUTEPARSE_EVENT_ROUTE:
		FUZZ_CHECK(inside(ev.host.p, ev.host.len, msg, len));
		check_host(ev.host.p, ev.host.len);
		break;
	case ROUTEPARSE_EVENT_OTHER: {
		size_t kl = strnlen(ev.kind, sizeof(ev.kind));
		size_t nl = strnlen(ev.name, sizeof(ev.name));
		FUZZ_CHECK(kl > 0 && kl < sizeof(ev.kind));
		FUZZ_CHECK(nl > 0 && nl < sizeof(ev.name));
		FUZZ_CHECK(kl + 1 + nl == len && msg[kl] == ' ');
		if (strcmp(ev.kind, "ready") == 0)
			check_ready(ev.name);
		break;
	}
	case ROUTEPARSE_EVENT_MALFORMED:
		break;
	default:
		FUZZ_CHECK(!"unknown event kind");
	}
	FUZZ_CHECK(memchr(ev.shown, '\0', sizeof(ev.shown)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *host = hosts[data[0] & 7];
	/* now: just before or well after the usual seed expiry 2000000000 */
	uint64_t now_s = data[0] & 8 ? 2000000001ull : 1700000000ull;
	redisReader *rd = redisReaderCreate();
	if (!rd)
		return 0;
	if (!dflt_array) {
		capped = *rd->fn;
		dflt_array = capped.createArray;
		capped.createArray = capped_array;
	}
	rd->fn = &capped;
	if (redisReaderFeed(rd, (const char *)data + 1, size - 1) != REDIS_OK) {
		redisReaderFree(rd);
		return 0;
	}
	for (;;) {
		void *reply = NULL;
		if (redisReaderGetReply(rd, &reply) != REDIS_OK || !reply)
			break;
		const redisReply *r = reply;
		/* fetch_cb: an array (an error or a non-array is handled
		 * before the route is read) */
		if (r->type == REDIS_REPLY_ARRAY)
			check_route(host, r);
		check_route_list(r);
		check_session(r, now_s);
		check_member(r);
		check_begin(r);
		check_message(r);
		freeReplyObject(reply);
	}
	redisReaderFree(rd);
	return 0;
}
