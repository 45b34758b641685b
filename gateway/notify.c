/* notify.c - sd_notify(3) when libsystemd is there, nothing otherwise.
 *
 * sd_notify sends one datagram on a unix socket (NOTIFY_SOCKET) with
 * MSG_DONTWAIT semantics: it never waits for systemd, so calling it from
 * the loop is fine.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "notify.h"
#include "core/compat.h"

bool notify_supported(void)
{
#ifdef HAVE_LIBSYSTEMD
	return true;
#else
	return false;
#endif
}

static void send_state(const char *state, const char *fmt, va_list ap)
{
#ifdef HAVE_LIBSYSTEMD
	char status[256] = "";
	if (fmt)
		vsnprintf(status, sizeof(status), fmt, ap);
	char msg[320];
	snprintf(msg, sizeof(msg), "%s%sSTATUS=%s", state, *state ? "\n" : "",
		 status);
	sd_notify(0, msg);
#else
	(void)state;
	(void)fmt;
	(void)ap;
#endif
}

void notify_ready(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	send_state("READY=1", fmt, ap);
	va_end(ap);
}

void notify_stopping(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	send_state("STOPPING=1", fmt, ap);
	va_end(ap);
}

void notify_status(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	send_state("", fmt, ap);
	va_end(ap);
}

void notify_reloading(void)
{
#ifdef HAVE_LIBSYSTEMD
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
		   (unsigned long long)ts.tv_sec * 1000000ULL +
			   (unsigned long long)ts.tv_nsec / 1000ULL);
#endif
}
