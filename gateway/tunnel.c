/* tunnel.c - two-way relay with backpressure (libevent le-proxy shape).
 *
 * Each direction: read side -> other side's output. When the sink's output
 * passes buffer_size the source stops reading; the sink's write callback
 * (low watermark buffer_size/2) restarts it. On EOF or error from one side,
 * the other side's pending output is flushed, then both are closed (a TLS
 * side with close_notify: wss clients see a clean end, wire.h).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "tunnel.h"
#include "wire.h"
#include "core/log.h"
#include "core/compat.h"

struct tunnel {
	struct bufferevent *side[2]; /* 0 = client, 1 = upstream; owned */
	size_t buffer_size;
	struct timeval idle_tv;
	uint64_t bytes[2];   /* bytes read from each side */
	bool closing;        /* one side ended; flushing the other */
	unsigned idle_ms;    /* both sides silent this long -> close */
	uint64_t last_ms;    /* last time bytes moved either way */
	tunnel_done_cb done_cb;
	void *arg;
};

static void tunnel_finish(struct tunnel *t)
{
	for (int i = 0; i < 2; i++)
		wire_free(t->side[i]); /* TLS: close_notify first */
	tunnel_done_cb cb = t->done_cb;
	void *arg = t->arg;
	uint64_t in = t->bytes[0], out = t->bytes[1];
	free(t);
	cb(arg, in, out);
}

static int side_of(struct tunnel *t, struct bufferevent *bev)
{
	return bev == t->side[0] ? 0 : 1;
}

static void pump(struct tunnel *t, int from)
{
	struct bufferevent *src = t->side[from], *dst = t->side[!from];
	struct evbuffer *in = bufferevent_get_input(src);
	struct evbuffer *out = bufferevent_get_output(dst);
	size_t n = evbuffer_get_length(in);
	t->bytes[from] += n;
	if (n)
		t->last_ms = gw_now_ms();
	evbuffer_remove_buffer(in, out, n);
	if (evbuffer_get_length(out) >= t->buffer_size)
		bufferevent_disable(src, EV_READ);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;
	if (!t->closing)
		pump(t, side_of(t, bev));
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct tunnel *t = arg;
	int i = side_of(t, bev);
	if (t->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			tunnel_finish(t);
		return;
	}
	/* Output drained below the low mark: the other side may read again. */
	bufferevent_enable(t->side[!i], EV_READ);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct tunnel *t = arg;
	int i = side_of(t, bev);
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    !t->closing && gw_now_ms() - t->last_ms < t->idle_ms) {
		/* Only this side is quiet; the other is talking. Keep going
		 * (libevent disabled reading when the timeout fired). */
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if (t->closing || (what & BEV_EVENT_TIMEOUT)) {
		tunnel_finish(t);
		return;
	}
	/* Move what the ending side still had, then flush it to the other. */
	pump(t, i);
	struct bufferevent *other = t->side[!i];
	wire_free(t->side[i]);
	t->side[i] = NULL;
	t->closing = true;
	if (evbuffer_get_length(bufferevent_get_output(other)) == 0) {
		tunnel_finish(t);
		return;
	}
	bufferevent_disable(other, EV_READ);
	bufferevent_setwatermark(other, EV_WRITE, 0, 0);
	bufferevent_enable(other, EV_WRITE);
}

struct tunnel *tunnel_start(struct bufferevent *client, struct bufferevent *up,
			    unsigned idle_ms, size_t buffer_size,
			    tunnel_done_cb done_cb, void *arg)
{
	struct tunnel *t = gw_xcalloc(1, sizeof(*t));
	t->side[0] = client;
	t->side[1] = up;
	t->buffer_size = buffer_size;
	t->idle_ms = idle_ms;
	t->last_ms = gw_now_ms();
	t->idle_tv.tv_sec = idle_ms / 1000;
	t->idle_tv.tv_usec = (idle_ms % 1000) * 1000;
	t->done_cb = done_cb;
	t->arg = arg;
	for (int i = 0; i < 2; i++) {
		bufferevent_setcb(t->side[i], read_cb, write_cb, event_cb, t);
		bufferevent_setwatermark(t->side[i], EV_READ, 0, buffer_size);
		bufferevent_setwatermark(t->side[i], EV_WRITE, buffer_size / 2, 0);
		bufferevent_set_timeouts(t->side[i], &t->idle_tv, &t->idle_tv);
		bufferevent_enable(t->side[i], EV_READ | EV_WRITE);
	}
	/* Bytes that arrived with the handshake go first. */
	pump(t, 0);
	pump(t, 1);
	return t;
}

void tunnel_abort(struct tunnel *t)
{
	if (t)
		tunnel_finish(t);
}
