/* stopsig.h - freeing a process's signal events while it stops.
 *
 * event_free() on a signal event puts back the action that was in place
 * before the event was added, usually the default one: terminate. A stop
 * signal that arrives while a process tears itself down (an impatient
 * supervisor, a second Ctrl-C) must not kill it with a signal status after
 * its work is done.
 */
#ifndef GW_CORE_STOPSIG_H
#define GW_CORE_STOPSIG_H

#include <stddef.h>

struct event;

/* Free the n events in evs (NULL entries skipped; signal events or not)
 * with SIGTERM, SIGINT and SIGHUP blocked, then leave those three ignored:
 * one that came in meanwhile is discarded. The signal mask is as before on
 * return, so a child forked later starts with the usual mask (and sets its
 * own actions). */
void stopsig_free_events(struct event **evs, size_t n);

#endif
