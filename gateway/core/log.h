/* log.h - levelled error log, access log, rate limiting, redaction.
 *
 * Error log lines go to stderr (journald under systemd) as
 *   "2026-11-22T23:01:02.123Z warn proxy[1234] message [proxy.c:88]".
 * The level check happens before the arguments are evaluated, so a debug
 * line costs one comparison when debug is off.
 *
 * Secrets never reach a log: callers pass cookies, Authorization values and
 * tokens only through gw_log_redact().
 */
#ifndef GW_CORE_LOG_H
#define GW_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gw_log_level {
	GW_LOG_ERROR = 0, /* the process or a subsystem cannot do its job */
	GW_LOG_WARN,      /* a request or dependency failed; service goes on */
	GW_LOG_INFO,      /* state changes an operator wants to see */
	GW_LOG_DEBUG,     /* per-exchange detail */
	GW_LOG_LEVEL_COUNT
};

/* Process-wide threshold: set at start-up and on reload, read everywhere.
 * This is the one piece of global state the house rules allow (PRINCIPLES). */
extern enum gw_log_level gw_log_threshold;

/* Parse "error|warn|info|debug". Returns false for anything else. */
bool gw_log_level_parse(const char *s, enum gw_log_level *out);
const char *gw_log_level_name(enum gw_log_level level);

void gw_log_write(enum gw_log_level level, const char *module, const char *file,
		  int line, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

#define gw_log(level, module, ...)                                             \
	do {                                                                   \
		if ((level) <= gw_log_threshold)                               \
			gw_log_write((level), (module), __FILE__, __LINE__, 0, \
				     __VA_ARGS__);                             \
	} while (0)

/* Like gw_log, appending ": strerror(errno)". */
#define gw_log_errno(level, module, ...)                                       \
	do {                                                                   \
		int gw_log_errno_saved_ = errno;                               \
		if ((level) <= gw_log_threshold)                               \
			gw_log_write((level), (module), __FILE__, __LINE__,    \
				     gw_log_errno_saved_ ? gw_log_errno_saved_ \
							 : -1,                 \
				     __VA_ARGS__);                             \
	} while (0)

/* Rate limiter for per-connection noise: at most `burst` lines per
 * `interval_ms`; the first line after a suppressed run says how many were
 * dropped. Zero-initialise, then set interval_ms and burst. */
struct gw_ratelimit {
	uint64_t interval_ms; /* window length */
	unsigned burst;       /* lines allowed per window */
	uint64_t window_start; /* ms, monotonic */
	unsigned used;         /* lines logged in this window */
	unsigned suppressed;   /* lines dropped since the last logged one */
};

/* Returns true when the caller may log now; *suppressed receives the number
 * of lines dropped before this one (to mention once). */
bool gw_ratelimit_allow(struct gw_ratelimit *rl, uint64_t now_ms,
			unsigned *suppressed);

/* Access log: one line per exchange. path "-" = stdout, "off" = disabled.
 * Returns 0 or -1 (errno set). May be called again to reopen (SIGHUP). */
int gw_access_log_open(const char *path);
bool gw_access_log_enabled(void);
void gw_access_log_write(const char *line, size_t len);
void gw_access_log_close(void);

/* Copy `len` bytes of untrusted text into out (size outsz, always
 * NUL-terminated), escaping control bytes, '"' and '\\' and bytes >= 0x7f as
 * \xHH so a client cannot forge log lines. Returns the length written. */
size_t gw_log_escape(char *out, size_t outsz, const char *in, size_t len);

/* The single redaction helper: replaces a secret with a fixed marker that
 * keeps only its length, e.g. "<redacted:32>". */
const char *gw_log_redact(size_t secret_len, char *buf, size_t bufsz);

/* Monotonic and wall clocks in milliseconds. */
uint64_t gw_now_ms(void);
uint64_t gw_wall_ms(void);
/* The monotonic clock in microseconds (latency histograms). */
uint64_t gw_now_us(void);

#endif
