/* wire.c - write-through for plain sockets, close_notify for TLS. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "wire.h"
#include "core/compat.h"

/* The most one TLS record carries (RFC 8446 §5.1). */
#define TLS_RECORD_MAX 16384

void wire_send(struct bufferevent *bev, struct evbuffer *src)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	size_t n = evbuffer_get_length(src);
	/* The TLS check is a pointer comparison inside libevent (is this
	 * bufferevent of the OpenSSL kind?): writing src to the fd of a TLS
	 * connection would put plaintext on the wire. */
	if (bufferevent_openssl_get_ssl(bev)) {
		/* libevent calls SSL_write once per buffer chain: a head and a
		 * small body in two chains would cost two records and two
		 * write()s. One chain is one record (a copy of <= 16k). */
		if (n > 1 && n <= TLS_RECORD_MAX && evbuffer_get_length(out) == 0)
			evbuffer_pullup(src, -1);
	} else if (n && evbuffer_get_length(out) == 0 &&
		   (bufferevent_get_enabled(bev) & EV_WRITE)) {
		/* EAGAIN leaves src as it was. Any other error is met again
		 * by the bufferevent's own write of the rest, which reports
		 * it through the event callback like every other error. */
		(void)evbuffer_write(src, bufferevent_getfd(bev));
	}
	evbuffer_add_buffer(out, src);
}

static void close_notify(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (!ssl || !SSL_is_init_finished(ssl) ||
	    (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		return;
	/* Writes the alert straight to the socket; with a record still half
	 * written OpenSSL only marks it pending. Errors (peer gone) are of no
	 * use here, and must not linger in the thread's queue, where the next
	 * SSL_get_error() of another connection would find them. */
	(void)SSL_shutdown(ssl);
	ERR_clear_error();
}

void wire_half_close(struct bufferevent *bev)
{
	close_notify(bev);
	shutdown(bufferevent_getfd(bev), SHUT_WR);
}

void wire_keep_writing(struct bufferevent *bev)
{
	if (bufferevent_openssl_get_ssl(bev))
		bufferevent_enable(bev, EV_WRITE);
}

void wire_free(struct bufferevent *bev)
{
	if (!bev)
		return;
	close_notify(bev);
	bufferevent_free(bev);
}
