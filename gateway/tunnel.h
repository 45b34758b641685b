/* tunnel.h - the two-way byte pump after "101 Switching Protocols".
 *
 * The tunnel takes over two connected bufferevents and moves bytes both
 * ways with backpressure (a side stops reading while the other side's
 * output is above buffer_size) until either side closes, errors, or both
 * sides stay silent for idle_ms. On end it flushes what the surviving side
 * still has to send (bounded by idle_ms), frees both bufferevents and calls
 * done_cb exactly once. done_cb may not touch the tunnel afterwards.
 */
#ifndef GW_TUNNEL_H
#define GW_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct tunnel;

typedef void (*tunnel_done_cb)(void *arg, uint64_t bytes_in,
			       uint64_t bytes_out);

/* Start pumping. Takes ownership of both bufferevents, whatever their
 * buffers already hold is relayed first. Never fails (aborts on OOM). */
struct tunnel *tunnel_start(struct bufferevent *client, struct bufferevent *up,
			    unsigned idle_ms, size_t buffer_size,
			    tunnel_done_cb done_cb, void *arg);

/* Close both sides now (shutdown), calling done_cb. NULL is fine. */
void tunnel_abort(struct tunnel *t);

#endif
