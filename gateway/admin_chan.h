/* admin_chan.h - the control channel between the supervisor and each
 * worker process (a SOCK_STREAM socketpair made before fork).
 *
 * Frames: a 4-byte big-endian length (of what follows), a 1-byte type, the
 * payload. Both ends read with a bufferevent; a frame longer than
 * CHAN_MAX_FRAME or of an unknown type closes the channel.
 *
 *   FACTS     worker -> supervisor  struct admin_facts, sent at start and
 *                                   whenever a fact changes
 *   SNAP_REQ  supervisor -> worker  u32 id: "send your counters"
 *   SNAP      worker -> supervisor  u32 id + encoded snapshot (stats.h)
 *   RELOADED  worker -> supervisor  u8 ok: a SIGHUP's reload is over
 *                                   (1: applied, 0: refused, the old
 *                                   configuration runs; the reason is
 *                                   in the worker's log)
 */
#ifndef GW_ADMIN_CHAN_H
#define GW_ADMIN_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct stats;
struct admin_facts;
struct chan;
struct admin_link;

enum chan_type {
	CHAN_FACTS = 1,
	CHAN_SNAP_REQ,
	CHAN_SNAP,
	CHAN_RELOADED,
	CHAN_TYPE_END /* first unknown type */
};

#define CHAN_MAX_FRAME (64u << 20)

/* One complete frame; payload valid during the call only. */
typedef void (*chan_msg_cb)(void *arg, enum chan_type type,
			    const unsigned char *payload, size_t len);
/* The peer closed, or the channel broke (bad frame, I/O error). Called at
 * most once; the owner still calls chan_destroy. */
typedef void (*chan_closed_cb)(void *arg);

/* Takes ownership of fd (closed by chan_destroy). Never NULL. */
struct chan *chan_create(struct event_base *base, int fd, chan_msg_cb on_msg,
			 chan_closed_cb on_closed, void *arg);
/* Queue a frame; payload may be NULL when len is 0. The head bytes go
 * before `extra` (moved out, may be NULL): id + snapshot without a copy. */
void chan_send(struct chan *c, enum chan_type type, const void *head,
	       size_t head_len, struct evbuffer *extra);
/* NULL is fine. Callbacks never fire after this. */
void chan_destroy(struct chan *c);

/* Payload codecs. */
#define CHAN_FACTS_LEN 5
void chan_facts_encode(const struct admin_facts *f,
		       unsigned char out[CHAN_FACTS_LEN]);
int chan_facts_decode(const unsigned char *p, size_t len,
		      struct admin_facts *out);

/* ---- the worker's end ------------------------------------------------------ */

/* Answers SNAP_REQ from the worker's registry and sends FACTS. on_lost runs
 * once if the supervisor goes away (the worker should then drain and
 * exit: nobody would restart it or collect its counters). Never NULL;
 * takes ownership of fd. */
struct admin_link *admin_link_create(struct event_base *base, int fd,
				     struct stats *stats,
				     void (*on_lost)(void *arg), void *arg);
/* Send facts if they differ from the last ones sent (first call always). */
void admin_link_facts(struct admin_link *l, const struct admin_facts *f);
/* A reload is over: RELOADED(ok). */
void admin_link_reloaded(struct admin_link *l, bool ok);
void admin_link_destroy(struct admin_link *l);

#endif
