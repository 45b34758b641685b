/* wire.h - write-through for plain socket bufferevents.
 *
 * A bufferevent writes only when EPOLLOUT fires: two epoll_ctl calls per
 * response (arm, disarm) and one more loop turn before the bytes leave.
 * wire_send() writes at once when nothing is queued ahead of it, and hands
 * only what the socket did not take to the bufferevent, whose write event,
 * timeout and callbacks then work as usual.
 *
 * Only for bufferevents made by bufferevent_socket_new() on a connected
 * socket: a filtering (TLS) bufferevent must never be bypassed.
 */
#ifndef GW_WIRE_H
#define GW_WIRE_H

struct bufferevent;
struct evbuffer;

/* Send src on bev, in order after anything already queued. src is left
 * empty; its contents now belong to the socket or to bev's output. */
void wire_send(struct bufferevent *bev, struct evbuffer *src);

#endif
