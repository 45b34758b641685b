/* upstream.c - connect and keep-alive pool.
 *
 * The pool is a hash of addresses, each with a list of idle connections
 * (most recently used first, so the least used ones age out). An idle
 * connection keeps reading: any event on it (EOF, reset, stray bytes) means
 * it can no longer be used, and it is closed at once.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "upstream.h"
#include "core/log.h"
#include "core/compat.h"

#define POOL_BUCKETS 256

struct idle_conn {
	TAILQ_ENTRY(idle_conn) link; /* in its address's idle list */
	struct bufferevent *bev;     /* owned */
	struct pool_addr *pa;        /* the address it connects to */
	struct upstream_pool *pool;  /* owner */
};

TAILQ_HEAD(idle_list, idle_conn);

struct pool_addr {
	struct pool_addr *next;  /* hash chain */
	struct gw_addr addr;
	struct idle_list idle;   /* most recently used first */
	unsigned nidle;
};

struct upstream_pool {
	struct event_base *base;
	unsigned max_idle;
	struct timeval idle_tv;
	struct timeval trim_tv;
	bool trim_delay;         /* excess is trimmed by trim_ev, not at once */
	struct event *trim_ev;   /* pending while some address has excess */
	struct pool_addr *buckets[POOL_BUCKETS];
	struct upstream_stats stats;
};

static unsigned hash_addr(const struct gw_addr *a)
{
	/* FNV-1a over the text form: stable and cheap for a few thousand
	 * endpoints. */
	uint32_t h = 2166136261u;
	for (const char *p = a->text; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h % POOL_BUCKETS;
}

static struct pool_addr *find_addr(struct upstream_pool *pool,
				   const struct gw_addr *a, bool create)
{
	unsigned h = hash_addr(a);
	for (struct pool_addr *pa = pool->buckets[h]; pa; pa = pa->next)
		if (gw_addr_eq(&pa->addr, a))
			return pa;
	if (!create)
		return NULL;
	struct pool_addr *pa = gw_xcalloc(1, sizeof(*pa));
	pa->addr = *a;
	TAILQ_INIT(&pa->idle);
	pa->next = pool->buckets[h];
	pool->buckets[h] = pa;
	return pa;
}

static void trim_cb(evutil_socket_t fd, short what, void *arg);

struct upstream_pool *upstream_pool_create(struct event_base *base,
					   unsigned max_idle,
					   unsigned idle_timeout_ms,
					   unsigned trim_delay_ms)
{
	struct upstream_pool *pool = gw_xcalloc(1, sizeof(*pool));
	pool->base = base;
	pool->max_idle = max_idle;
	pool->idle_tv.tv_sec = idle_timeout_ms / 1000;
	pool->idle_tv.tv_usec = (idle_timeout_ms % 1000) * 1000;
	pool->trim_tv.tv_sec = trim_delay_ms / 1000;
	pool->trim_tv.tv_usec = (trim_delay_ms % 1000) * 1000;
	if (trim_delay_ms) {
		pool->trim_ev = evtimer_new(base, trim_cb, pool);
		if (!pool->trim_ev)
			gw_oom(sizeof(struct event *));
		pool->trim_delay = true;
	}
	return pool;
}

static void idle_free(struct idle_conn *ic)
{
	TAILQ_REMOVE(&ic->pa->idle, ic, link);
	ic->pa->nidle--;
	ic->pool->stats.idle--;
	bufferevent_free(ic->bev);
	free(ic);
}

/* Anything happening on an idle connection ends it: the app closed it,
 * reset it, sent bytes nobody asked for, or it sat idle too long. */
static void idle_read_cb(struct bufferevent *bev, void *arg)
{
	struct idle_conn *ic = arg;
	gw_log(GW_LOG_DEBUG, "upstream",
	       "%s: unsolicited bytes on an idle connection, closing it",
	       ic->pa->addr.text);
	idle_free(ic);
}

static void idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct idle_conn *ic = arg;
	gw_log(GW_LOG_DEBUG, "upstream", "%s: idle connection %s",
	       ic->pa->addr.text,
	       (what & BEV_EVENT_TIMEOUT) ? "timed out" : "closed by the app");
	idle_free(ic);
}

/* Close the least recently used idle connections beyond max_idle, for
 * every address (once per trim_delay at most, and only while some address
 * has an excess). */
static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_pool *pool = arg;
	for (size_t i = 0; i < POOL_BUCKETS; i++)
		for (struct pool_addr *pa = pool->buckets[i]; pa; pa = pa->next)
			while (pa->nidle > pool->max_idle) {
				pool->stats.trimmed++;
				idle_free(TAILQ_LAST(&pa->idle, idle_list));
			}
}

struct bufferevent *upstream_pool_take(struct upstream_pool *pool,
				       const struct gw_addr *addr)
{
	struct pool_addr *pa = find_addr(pool, addr, false);
	if (!pa || TAILQ_EMPTY(&pa->idle))
		return NULL;
	struct idle_conn *ic = TAILQ_FIRST(&pa->idle);
	struct bufferevent *bev = ic->bev;
	TAILQ_REMOVE(&pa->idle, ic, link);
	pa->nidle--;
	pool->stats.idle--;
	pool->stats.reuses++;
	free(ic);
	/* Reading stays on (as in the pool) and EV_WRITE was never disabled.
	 * The idle timeout is still set: the taker replaces callbacks and
	 * timeouts before returning to the loop (each re-add costs). */
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	return bev;
}

void upstream_pool_put(struct upstream_pool *pool, const struct gw_addr *addr,
		       struct bufferevent *bev)
{
	if (pool->max_idle == 0 ||
	    evbuffer_get_length(bufferevent_get_input(bev)) ||
	    evbuffer_get_length(bufferevent_get_output(bev))) {
		bufferevent_free(bev);
		return;
	}
	struct pool_addr *pa = find_addr(pool, addr, true);
	if (pa->nidle >= pool->max_idle) {
		if (!pool->trim_delay) {
			/* Close the least recently used one to make room. */
			pool->stats.trimmed++;
			idle_free(TAILQ_LAST(&pa->idle, idle_list));
		} else if (!evtimer_pending(pool->trim_ev, NULL)) {
			evtimer_add(pool->trim_ev, &pool->trim_tv);
		}
	}
	struct idle_conn *ic = gw_xcalloc(1, sizeof(*ic));
	ic->bev = bev;
	ic->pa = pa;
	ic->pool = pool;
	TAILQ_INSERT_HEAD(&pa->idle, ic, link);
	pa->nidle++;
	pool->stats.idle++;
	bufferevent_setcb(bev, idle_read_cb, NULL, idle_event_cb, ic);
	bufferevent_set_timeouts(bev, &pool->idle_tv, NULL);
	/* Any byte at all ends an idle connection, whatever the watermarks
	 * its last user set (they stay for the next one). */
	if (!(bufferevent_get_enabled(bev) & EV_READ))
		bufferevent_enable(bev, EV_READ);
}

struct bufferevent *upstream_connect(struct upstream_pool *pool,
				     const struct gw_addr *addr,
				     const char **err, bool *local)
{
	*local = true;
	evutil_socket_t fd = socket(addr->ss.ss_family,
				    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = strerror(errno);
		return NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Not deferred (see proxy_accept): a connect that fails at once is
	 * still reported from the loop, libevent defers that one itself. */
	struct bufferevent *bev = bufferevent_socket_new(
		pool->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		evutil_closesocket(fd);
		*err = "cannot allocate a connection";
		return NULL;
	}
	if (bufferevent_socket_connect(bev, (const struct sockaddr *)&addr->ss,
				       (int)addr->len) != 0) {
		/* Immediate failures (ENETUNREACH...) are reported here. */
		*local = false;
		*err = strerror(errno ? errno : ECONNREFUSED);
		bufferevent_free(bev);
		return NULL;
	}
	pool->stats.connects++;
	return bev;
}

void upstream_pool_stats(const struct upstream_pool *pool,
			 struct upstream_stats *out)
{
	*out = pool->stats;
}

void upstream_pool_destroy(struct upstream_pool *pool)
{
	if (!pool)
		return;
	if (pool->trim_ev)
		event_free(pool->trim_ev);
	for (size_t i = 0; i < POOL_BUCKETS; i++) {
		struct pool_addr *pa = pool->buckets[i];
		while (pa) {
			struct pool_addr *next = pa->next;
			while (!TAILQ_EMPTY(&pa->idle))
				idle_free(TAILQ_FIRST(&pa->idle));
			free(pa);
			pa = next;
		}
	}
	free(pool);
}
