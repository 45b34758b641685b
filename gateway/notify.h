/* notify.h - tell the service manager what the gateway is doing
 * (sd_notify(3): systemd's Type=notify).
 *
 * Only the main process notifies (the unit says NotifyAccess=main): the
 * single worker with workers = 1, the supervisor otherwise; workers forked
 * by the supervisor drop NOTIFY_SOCKET from their environment. Without
 * libsystemd at build time, or outside systemd (no NOTIFY_SOCKET), every
 * call does nothing.
 *
 *   READY=1      every worker listens (and the admin listener, if any)
 *   RELOADING=1  a reload started (with MONOTONIC_USEC, as systemd 253's
 *                Type=notify-reload wants); READY=1 again when it is done
 *   STOPPING=1   SIGTERM/SIGINT: draining
 *   STATUS=...   one line for `systemctl status`
 */
#ifndef GW_NOTIFY_H
#define GW_NOTIFY_H

#include <stdbool.h>

/* True when built with libsystemd. */
bool notify_supported(void);

/* READY=1 plus a STATUS= line (printf format). */
void notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 with MONOTONIC_USEC; call notify_ready() when done. */
void notify_reloading(void);
/* STOPPING=1 plus a STATUS= line. */
void notify_stopping(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* A STATUS= line alone. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
