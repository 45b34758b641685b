/* wire.h - how bytes leave a connection, plain or TLS.
 *
 * A bufferevent writes only when EPOLLOUT fires: two epoll_ctl calls per
 * response (arm, disarm) and one more loop turn before the bytes leave.
 * wire_send() writes at once when nothing is queued ahead of it, and hands
 * only what the socket did not take to the bufferevent, whose write event,
 * timeout and callbacks then work as usual.
 *
 * That write-through is only for bufferevents made by
 * bufferevent_socket_new() on a connected socket. A TLS bufferevent
 * (libevent's OpenSSL one, tls.h) is never bypassed: wire_send() checks for
 * it on every call and only queues, and the TLS bufferevent's own output
 * callback then encrypts and writes at once. This file is the one place
 * that tells the two apart; the rest of the gateway sees a bufferevent.
 */
#ifndef GW_WIRE_H
#define GW_WIRE_H

struct bufferevent;
struct evbuffer;

/* Send src on bev, in order after anything already queued. src is left
 * empty; its contents now belong to the socket or to bev's output. */
void wire_send(struct bufferevent *bev, struct evbuffer *src);

/* Half-close: after bev's output has drained, end the sending side and
 * keep reading. A TLS connection first sends its close_notify alert, so
 * the client can tell the end of the stream from a cut; then the socket
 * gets shutdown(SHUT_WR) either way. */
void wire_half_close(struct bufferevent *bev);

/* After BEV_EVENT_EOF on a connection that still has a response to send:
 * keep its write side armed. libevent's TLS bufferevent stops its write
 * event on any close it sees; a socket bufferevent keeps writing. */
void wire_keep_writing(struct bufferevent *bev);

/* Free bev (closing its socket). A TLS connection whose handshake
 * completed first gets close_notify (one non-blocking attempt; it is lost
 * if the socket's send buffer is full). NULL is fine. */
void wire_free(struct bufferevent *bev);

#endif
