/* procstats.c - RSS, descriptors, CPU, start time, build.
 *
 * Read on each scrape from procfs (memory-backed, never waits for a disk;
 * PRINCIPLES rule 3 allows it for that reason) through descriptors opened
 * at start. Counting /proc/self/fd is O(open descriptors): a few
 * milliseconds at 100k connections, once per scrape.
 */
#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/log.h"
#include "core/procstats.h"
#include "core/stats.h"
#include "core/compat.h"

#ifndef GW_VERSION
#define GW_VERSION "unknown"
#endif

struct proc_values {
	uint64_t rss_bytes;
	uint64_t vsize_bytes;
	uint64_t open_fds;
	uint64_t max_fds;
	uint64_t start_ms;   /* wall clock when the process set up */
	uint64_t cpu_us;     /* user + system */
};

struct procstats {
	struct proc_values v;
	int statm_fd;        /* /proc/self/statm, or -1 */
	DIR *fd_dir;         /* /proc/self/fd, or NULL */
	long page_size;
	struct stats_reg *reg;
	struct stats_reg *build_reg;
	uint64_t one;        /* gateway_build_info's value */
};

static const struct stats_metric proc_metrics[] = {
	{"process_resident_memory_bytes", "Resident memory size in bytes.",
	 STATS_GAUGE, offsetof(struct proc_values, rss_bytes)},
	{"process_virtual_memory_bytes", "Virtual memory size in bytes.",
	 STATS_GAUGE, offsetof(struct proc_values, vsize_bytes)},
	{"process_open_fds", "Open file descriptors.", STATS_GAUGE,
	 offsetof(struct proc_values, open_fds)},
	{"process_max_fds", "Most open file descriptors (RLIMIT_NOFILE).",
	 STATS_GAUGE, offsetof(struct proc_values, max_fds)},
	{"process_start_time_seconds",
	 "Start time of the process since the Unix epoch in seconds.",
	 STATS_GAUGE, offsetof(struct proc_values, start_ms), .divisor = 1000},
	{"process_cpu_seconds", "User and system CPU time spent in seconds.",
	 STATS_COUNTER, offsetof(struct proc_values, cpu_us),
	 .divisor = 1000000},
};

static void proc_refresh(void *obj);

static const char *const proc_labels[] = {"worker", NULL};
static const struct stats_table proc_table = {
	.labels = proc_labels,
	.metrics = proc_metrics,
	.nmetrics = GW_ARRAY_LEN(proc_metrics),
	.refresh = proc_refresh,
};

static const struct stats_metric build_metrics[] = {
	{"gateway_build_info",
	 "Always 1; the labels say which build answers.", STATS_GAUGE, 0},
};
static const char *const build_labels[] = {"version", "libevent", NULL};
static const struct stats_table build_table = {
	.labels = build_labels,
	.metrics = build_metrics,
	.nmetrics = 1,
};

/* obj is &p->v, the first member. */
static void proc_refresh(void *obj)
{
	struct procstats *p = gw_container_of((struct proc_values *)obj,
					      struct procstats, v);
	char buf[128];
	if (p->statm_fd >= 0) {
		ssize_t n = pread(p->statm_fd, buf, sizeof(buf) - 1, 0);
		unsigned long long size, resident;
		if (n > 0) {
			buf[n] = '\0';
			if (sscanf(buf, "%llu %llu", &size, &resident) == 2) {
				p->v.vsize_bytes = size * (uint64_t)p->page_size;
				p->v.rss_bytes =
					resident * (uint64_t)p->page_size;
			}
		}
	}
	if (p->fd_dir) {
		uint64_t n = 0;
		rewinddir(p->fd_dir);
		for (struct dirent *d; (d = readdir(p->fd_dir));)
			if (d->d_name[0] != '.')
				n++;
		/* The directory's own descriptor is not the process's. */
		p->v.open_fds = n ? n - 1 : 0;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		p->v.max_fds = (uint64_t)rl.rlim_cur;
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		p->v.cpu_us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
				      1000000 +
			      (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

struct procstats *procstats_create(struct stats *s, const char *worker,
				   bool build_info)
{
	struct procstats *p = gw_xcalloc(1, sizeof(*p));
	p->v.start_ms = gw_wall_ms();
	p->page_size = sysconf(_SC_PAGESIZE);
	if (p->page_size <= 0)
		p->page_size = 4096;
	p->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	p->fd_dir = opendir("/proc/self/fd");
	if (p->statm_fd < 0 || !p->fd_dir)
		gw_log(GW_LOG_WARN, "stats",
		       "no /proc: process_resident_memory_bytes and "
		       "process_open_fds stay 0");
	p->reg = stats_register(s, &proc_table, &p->v,
				(const char *const[]){worker});
	if (build_info) {
		p->one = 1;
		p->build_reg = stats_register(
			s, &build_table, &p->one,
			(const char *const[]){GW_VERSION,
					      event_get_version()});
	}
	return p;
}

void procstats_destroy(struct procstats *p)
{
	if (!p)
		return;
	stats_unregister(p->reg);
	stats_unregister(p->build_reg);
	if (p->statm_fd >= 0)
		close(p->statm_fd);
	if (p->fd_dir)
		closedir(p->fd_dir);
	free(p);
}
