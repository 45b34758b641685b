/* stopsig.c - see stopsig.h. */
#include <event2/event.h>
#include <signal.h>

#include "core/stopsig.h"
#include "core/compat.h"

void stopsig_free_events(struct event **evs, size_t n)
{
	static const int stops[] = {SIGTERM, SIGINT, SIGHUP};
	sigset_t block, old;
	sigemptyset(&block);
	for (size_t i = 0; i < GW_ARRAY_LEN(stops); i++)
		sigaddset(&block, stops[i]);
	sigprocmask(SIG_BLOCK, &block, &old);
	for (size_t i = 0; i < n; i++)
		if (evs[i])
			event_free(evs[i]);
	/* Pending and blocked: ignoring discards it (POSIX sigaction). */
	for (size_t i = 0; i < GW_ARRAY_LEN(stops); i++)
		signal(stops[i], SIG_IGN);
	sigprocmask(SIG_SETMASK, &old, NULL);
}
