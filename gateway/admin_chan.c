/* admin_chan.c - length-prefixed frames on a socketpair, and the worker's
 * end of the supervisor link. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "admin_chan.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/compat.h"

struct chan {
	struct bufferevent *bev;
	chan_msg_cb on_msg;
	chan_closed_cb on_closed;
	void *arg;
	bool closed;       /* on_closed has run (or is running) */
};

static void chan_broken(struct chan *c, const char *why)
{
	if (c->closed)
		return;
	c->closed = true;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (why)
		gw_log(GW_LOG_ERROR, "admin", "control channel: %s", why);
	c->on_closed(c->arg);
}

static void chan_read_cb(struct bufferevent *bev, void *arg)
{
	struct chan *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	/* on_msg may destroy nothing (owners destroy from their own
	 * callbacks only), but it may break the channel: re-check. */
	while (!c->closed) {
		unsigned char hdr[5];
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
			return;
		uint32_t len;
		memcpy(&len, hdr, 4);
		len = ntohl(len);
		if (len < 1 || len > CHAN_MAX_FRAME || hdr[4] < CHAN_FACTS ||
		    hdr[4] >= CHAN_TYPE_END) {
			chan_broken(c, "bad frame");
			return;
		}
		if (evbuffer_get_length(in) < 4 + (size_t)len)
			return;
		evbuffer_drain(in, 5);
		size_t plen = len - 1;
		const unsigned char *p =
			plen ? evbuffer_pullup(in, (ev_ssize_t)plen) : NULL;
		c->on_msg(c->arg, (enum chan_type)hdr[4], p, plen);
		evbuffer_drain(in, plen);
	}
}

static void chan_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct chan *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		chan_broken(c, NULL);
}

struct chan *chan_create(struct event_base *base, int fd, chan_msg_cb on_msg,
			 chan_closed_cb on_closed, void *arg)
{
	struct chan *c = gw_xcalloc(1, sizeof(*c));
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		gw_oom(sizeof(void *));
	c->on_msg = on_msg;
	c->on_closed = on_closed;
	c->arg = arg;
	bufferevent_setcb(c->bev, chan_read_cb, NULL, chan_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
}

void chan_send(struct chan *c, enum chan_type type, const void *head,
	       size_t head_len, struct evbuffer *extra)
{
	if (c->closed) {
		if (extra)
			evbuffer_drain(extra, evbuffer_get_length(extra));
		return;
	}
	size_t total = 1 + head_len + (extra ? evbuffer_get_length(extra) : 0);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (total > CHAN_MAX_FRAME) {
		gw_log(GW_LOG_ERROR, "admin",
		       "control frame of %zu bytes not sent (limit %u)", total,
		       CHAN_MAX_FRAME);
		if (extra)
			evbuffer_drain(extra, evbuffer_get_length(extra));
		return;
	}
	uint32_t len = htonl((uint32_t)total);
	unsigned char t = (unsigned char)type;
	evbuffer_add(out, &len, 4);
	evbuffer_add(out, &t, 1);
	if (head_len)
		evbuffer_add(out, head, head_len);
	if (extra)
		evbuffer_add_buffer(out, extra);
}

void chan_destroy(struct chan *c)
{
	if (!c)
		return;
	bufferevent_free(c->bev);
	free(c);
}

void chan_facts_encode(const struct admin_facts *f,
		       unsigned char out[CHAN_FACTS_LEN])
{
	out[0] = f->listening;
	out[1] = f->draining;
	out[2] = f->redis;
	out[3] = f->redis_in_sync;
	out[4] = f->redis_loaded;
}

int chan_facts_decode(const unsigned char *p, size_t len,
		      struct admin_facts *out)
{
	if (len != CHAN_FACTS_LEN)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (p[i] > 1)
			return -1;
	*out = (struct admin_facts){p[0], p[1], p[2], p[3], p[4]};
	return 0;
}

/* ---- worker side ---------------------------------------------------------------- */

struct admin_link {
	struct chan *chan;
	struct stats *stats;
	void (*on_lost)(void *arg);
	void *arg;
	bool lost;
	bool sent_any;
	unsigned char last[CHAN_FACTS_LEN];
};

static void link_msg(void *arg, enum chan_type type,
		     const unsigned char *p, size_t len)
{
	struct admin_link *l = arg;
	if (type != CHAN_SNAP_REQ || len != 4)
		return; /* not for a worker: ignore */
	struct stats_snap *snap = stats_snap_create(NULL);
	stats_collect(l->stats, snap);
	struct evbuffer *b = evbuffer_new();
	if (!b)
		gw_oom(sizeof(void *));
	stats_snap_encode(snap, b);
	stats_snap_destroy(snap);
	chan_send(l->chan, CHAN_SNAP, p, 4, b); /* the id, echoed */
	evbuffer_free(b);
}

static void link_closed(void *arg)
{
	struct admin_link *l = arg;
	if (l->lost)
		return;
	l->lost = true;
	gw_log(GW_LOG_WARN, "worker", "supervisor gone: draining");
	if (l->on_lost)
		l->on_lost(l->arg);
}

struct admin_link *admin_link_create(struct event_base *base, int fd,
				     struct stats *stats,
				     void (*on_lost)(void *arg), void *arg)
{
	struct admin_link *l = gw_xcalloc(1, sizeof(*l));
	l->stats = stats;
	l->on_lost = on_lost;
	l->arg = arg;
	l->chan = chan_create(base, fd, link_msg, link_closed, l);
	return l;
}

void admin_link_facts(struct admin_link *l, const struct admin_facts *f)
{
	unsigned char b[CHAN_FACTS_LEN];
	chan_facts_encode(f, b);
	if (l->sent_any && memcmp(b, l->last, sizeof(b)) == 0)
		return;
	memcpy(l->last, b, sizeof(b));
	l->sent_any = true;
	chan_send(l->chan, CHAN_FACTS, b, sizeof(b), NULL);
}

void admin_link_reloaded(struct admin_link *l, bool ok)
{
	unsigned char b = ok;
	chan_send(l->chan, CHAN_RELOADED, &b, 1, NULL);
}

void admin_link_destroy(struct admin_link *l)
{
	if (!l)
		return;
	chan_destroy(l->chan);
	free(l);
}
