/* listener.h - one listening socket (SO_REUSEPORT, so every worker
 * process binds its own and the kernel spreads connections).
 *
 * Accepting pauses for two independent reasons: the worker is at
 * max_connections (listener_set_full), or accept() failed for lack of file
 * descriptors or memory (retried by itself after a short back-off). Accept
 * resumes when neither holds.
 */
#ifndef GW_LISTENER_H
#define GW_LISTENER_H

#include <event2/util.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/addr.h"

struct event_base;
struct sockaddr;
struct stats;
struct listener;

/* Called for each accepted connection; the callee owns fd. */
typedef void (*listener_accept_cb)(void *arg, evutil_socket_t fd,
				   const struct sockaddr *sa, int salen);

/* Bind and listen. Returns NULL with a reason in err (address in use,
 * permission, ...). */
struct listener *listener_create(struct event_base *base,
				 const struct gw_addr *addr,
				 listener_accept_cb cb, void *arg, char *err,
				 size_t errlen);

/* Pause (true) or resume (false) accepting because of the connection
 * limit. */
void listener_set_full(struct listener *l, bool full);

const struct gw_addr *listener_addr(const struct listener *l);

/* Register the listener's counters (accepted connections, accept
 * back-offs, paused) with label listener="ADDR:PORT". Unregistered by
 * listener_destroy. */
void listener_stats_register(struct listener *l, struct stats *s);

/* Close the socket and free; NULL is fine. */
void listener_destroy(struct listener *l);

#endif
