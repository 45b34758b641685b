/* wire.c - write-through for plain socket bufferevents. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "wire.h"
#include "core/compat.h"

void wire_send(struct bufferevent *bev, struct evbuffer *src)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	if (evbuffer_get_length(src) && evbuffer_get_length(out) == 0 &&
	    (bufferevent_get_enabled(bev) & EV_WRITE)) {
		/* EAGAIN leaves src as it was. Any other error is met again
		 * by the bufferevent's own write of the rest, which reports
		 * it through the event callback like every other error. */
		(void)evbuffer_write(src, bufferevent_getfd(bev));
	}
	evbuffer_add_buffer(out, src);
}
