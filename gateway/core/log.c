/* log.c - error log, access log, rate limiter, redaction. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/compat.h"

enum gw_log_level gw_log_threshold = GW_LOG_INFO;

static const char *const level_names[GW_LOG_LEVEL_COUNT] = {
	[GW_LOG_ERROR] = "error",
	[GW_LOG_WARN] = "warn",
	[GW_LOG_INFO] = "info",
	[GW_LOG_DEBUG] = "debug",
};

bool gw_log_level_parse(const char *s, enum gw_log_level *out)
{
	for (int i = 0; i < GW_LOG_LEVEL_COUNT; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum gw_log_level)i;
			return true;
		}
	}
	return false;
}

const char *gw_log_level_name(enum gw_log_level level)
{
	return (level >= 0 && level < GW_LOG_LEVEL_COUNT) ? level_names[level]
							  : "?";
}

uint64_t gw_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t gw_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t gw_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t format_time(char *buf, size_t sz)
{
	uint64_t ms = gw_wall_ms();
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, sz, "%Y-%m-%dT%H:%M:%S", &tm);
	int m = snprintf(buf + n, sz - n, ".%03uZ", (unsigned)(ms % 1000));
	return n + (m > 0 ? (size_t)m : 0);
}

/* Append formatted text at buf[*n], never past sz - 2 (room for "\n"). */
static void appendv(char *buf, size_t *n, size_t sz, const char *fmt, va_list ap)
{
	if (*n >= sz - 2)
		return;
	int m = vsnprintf(buf + *n, sz - 1 - *n, fmt, ap);
	if (m > 0)
		*n = *n + (size_t)m < sz - 2 ? *n + (size_t)m : sz - 2;
}

static void append(char *buf, size_t *n, size_t sz, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t *n, size_t sz, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	appendv(buf, n, sz, fmt, ap);
	va_end(ap);
}

void gw_log_write(enum gw_log_level level, const char *module, const char *file,
		  int line, int errnum, const char *fmt, ...)
{
	char buf[2048];
	size_t n = format_time(buf, sizeof(buf));
	append(buf, &n, sizeof(buf), " %s %s[%d] ", gw_log_level_name(level),
	       module, (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	appendv(buf, &n, sizeof(buf), fmt, ap);
	va_end(ap);
	if (errnum)
		append(buf, &n, sizeof(buf), ": %s",
		       errnum > 0 ? strerror(errnum) : "unknown error");
	const char *base = strrchr(file, '/');
	append(buf, &n, sizeof(buf), " [%s:%d]", base ? base + 1 : file, line);
	buf[n++] = '\n';
	/* One write() per line keeps lines from different workers whole. */
	ssize_t w = write(STDERR_FILENO, buf, n);
	(void)w;
}

bool gw_ratelimit_allow(struct gw_ratelimit *rl, uint64_t now_ms,
			unsigned *suppressed)
{
	if (now_ms - rl->window_start >= rl->interval_ms) {
		rl->window_start = now_ms;
		rl->used = 0;
	}
	if (rl->used >= rl->burst) {
		rl->suppressed++;
		return false;
	}
	rl->used++;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

/* Access log: a file descriptor written with one write() per line, so
 * several worker processes can share an O_APPEND file. */
static int access_fd = -1;
static bool access_owned;

int gw_access_log_open(const char *path)
{
	int fd;
	bool owned = false;
	if (strcmp(path, "off") == 0) {
		fd = -1;
	} else if (strcmp(path, "-") == 0) {
		fd = STDOUT_FILENO;
	} else {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return -1;
		owned = true;
	}
	gw_access_log_close();
	access_fd = fd;
	access_owned = owned;
	return 0;
}

bool gw_access_log_enabled(void)
{
	return access_fd >= 0;
}

void gw_access_log_write(const char *line, size_t len)
{
	if (access_fd < 0)
		return;
	ssize_t w = write(access_fd, line, len);
	(void)w; /* a full disk must not stop the proxy */
}

void gw_access_log_close(void)
{
	if (access_owned)
		close(access_fd);
	access_fd = -1;
	access_owned = false;
}

size_t gw_log_escape(char *out, size_t outsz, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (outsz == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		bool plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
		size_t need = plain ? 1 : 4;
		if (o + need >= outsz)
			break;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return o;
}

const char *gw_log_redact(size_t secret_len, char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "<redacted:%zu>", secret_len);
	return buf;
}
