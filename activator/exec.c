/* exec.c - the exec provider: an app as a local process (provider.h).
 *
 * The command runs under /bin/sh -c in a process group of its own (so a
 * stop reaches its children too), with stdin from /dev/null, stdout and
 * stderr shared with the gateway (the journal), no inherited descriptors,
 * and PORT set to the port of the address it must listen on. Stop:
 * SIGTERM to the group, SIGKILL after stop_grace.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "activator.h"
#include "provider.h"
#include "core/log.h"
#include "core/compat.h"

struct exec_provider {
	struct provider base;      /* first: the activator's handle */
	LIST_ENTRY(exec_provider) link;
	struct exec_group *g;
	char *command;             /* applies from the next start */
	pid_t pid;                 /* running process group, or 0 */
	bool stopping;             /* SIGTERM sent: the exit ends the stop */
	struct event *kill_timer;  /* SIGKILL after stop_grace */
};

struct exec_group {
	struct event_base *base;
	unsigned stop_grace_ms;
	struct event *sigchld;
	LIST_HEAD(, exec_provider) members;
};

static unsigned addr_port(const struct gw_addr *a)
{
	return a->ss.ss_family == AF_INET6
		       ? ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port)
		       : ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

/* Start command; returns the child's pid (= its process group), or -1. */
static pid_t spawn(const char *command, const struct gw_addr *addr,
		   const char **err)
{
	/* Everything the child needs is built before the fork: between fork
	 * and exec only async-signal-safe calls are allowed. */
	char port[16];
	snprintf(port, sizeof(port), "PORT=%u", addr_port(addr));
	size_t n = 0;
	while (environ[n])
		n++;
	char **envp = gw_xcalloc(n + 2, sizeof(*envp));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "PORT=", 5) != 0)
			envp[k++] = environ[i];
	envp[k++] = port;
	char *const argv[] = {"sh", "-c", (char *)command, NULL};
	/* Signals stay blocked from the fork until the child has reset the
	 * gateway's handlers: a SIGTERM sent to a just-forked app (a stop
	 * right after a wake) would otherwise run the loop's handler in the
	 * child, be lost, and cost the whole stop_grace. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid != 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		free(envp);
	}
	if (pid < 0) {
		*err = strerror(errno);
		return -1;
	}
	if (pid > 0) {
		/* Also here, so a stop right after the fork finds the group. */
		setpgid(pid, pid);
		return pid;
	}
	/* Child: only async-signal-safe calls until exec. The signals the
	 * gateway handles or ignores get their defaults (exec would reset
	 * handlers only), then pending ones are delivered. */
	setpgid(0, 0);
	static const int dfl[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE};
	for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
		signal(dfl[i], SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0) {
		dup2(devnull, 0);
		if (devnull > 2)
			close(devnull);
	}
	/* Listening sockets, client connections, Redis: none of the app's
	 * business. */
	syscall(SYS_close_range, 3U, ~0U, 0U);
	execve("/bin/sh", argv, envp);
	_exit(127);
}

static void group_signal(pid_t pid, int sig)
{
	if (pid > 0)
		kill(-pid, sig);
}

/* ---- the provider ------------------------------------------------------ */

static struct exec_provider *ep_of(struct provider *pv)
{
	return gw_container_of(pv, struct exec_provider, base);
}

static enum provider_start exec_wake(struct provider *pv, const char **why)
{
	struct exec_provider *e = ep_of(pv);
	if (e->pid)
		return PROVIDER_DONE; /* running (a re-wake after a refusal) */
	pid_t pid = spawn(e->command, &pv->fixed, why);
	if (pid < 0)
		return PROVIDER_FAILED;
	e->pid = pid;
	gw_log(GW_LOG_INFO, "activator", "exec: started pid %d on port %u",
	       (int)pid, addr_port(&pv->fixed));
	return PROVIDER_DONE;
}

static enum provider_start exec_stop(struct provider *pv, const char **why)
{
	struct exec_provider *e = ep_of(pv);
	if (!e->pid)
		return PROVIDER_DONE;
	if (!e->stopping) {
		e->stopping = true;
		group_signal(e->pid, SIGTERM);
		unsigned ms = e->g->stop_grace_ms;
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		event_add(e->kill_timer, &tv);
	}
	return PROVIDER_PENDING; /* the exit (SIGCHLD) ends it */
}

static bool exec_cancel(struct provider *pv)
{
	/* A SIGTERM cannot be taken back: wait for the exit. */
	return !ep_of(pv)->stopping;
}

static bool exec_update(struct provider *pv, const struct act_target *t)
{
	struct exec_provider *e = ep_of(pv);
	if (t->exec_command && strcmp(t->exec_command, e->command) != 0) {
		free(e->command);
		e->command = gw_xstrdup(t->exec_command);
	}
	/* A new address applies from the next start, like the command. */
	if (!e->pid)
		pv->fixed = t->addr;
	return false;
}

static void exec_destroy(struct provider *pv)
{
	struct exec_provider *e = ep_of(pv);
	if (e->pid) /* shutdown stops them all at once; here only forget */
		gw_log(GW_LOG_WARN, "activator", "exec: pid %d left running",
		       (int)e->pid);
	LIST_REMOVE(e, link);
	event_free(e->kill_timer);
	free(e->command);
	free(e);
}

static void kill_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct exec_provider *e = arg;
	if (!e->pid)
		return;
	gw_log(GW_LOG_WARN, "activator",
	       "exec: pid %d still running %ums after SIGTERM; SIGKILL",
	       (int)e->pid, e->g->stop_grace_ms);
	group_signal(e->pid, SIGKILL);
}

static void exited(struct exec_provider *e, int status)
{
	char why[64];
	snprintf(why, sizeof(why), "%s %d",
		 WIFSIGNALED(status) ? "signal" : "status",
		 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	e->pid = 0;
	event_del(e->kill_timer);
	if (e->stopping) {
		e->stopping = false;
		e->base.sink.call_done(e->base.sink.arg, PROVIDER_STOP, true, why);
		return;
	}
	e->base.sink.exited(e->base.sink.arg, why);
}

static void sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
	struct exec_group *g = arg;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct exec_provider *e;
		LIST_FOREACH(e, &g->members, link)
			if (e->pid == pid)
				break;
		if (e)
			exited(e, status); /* may free nothing: sinks only */
	}
}

static const struct provider_ops exec_ops = {
	.name = "exec",
	.wake = exec_wake,
	.stop = exec_stop,
	.cancel = exec_cancel,
	.update = exec_update,
	.destroy = exec_destroy,
};

struct provider *exec_provider_create(struct exec_group *g,
				      const struct act_target *t,
				      unsigned probe_interval_ms,
				      const struct provider_sink *sink)
{
	struct exec_provider *e = gw_xcalloc(1, sizeof(*e));
	e->base.ops = &exec_ops;
	e->base.sink = *sink;
	e->base.probe_interval_ms = probe_interval_ms;
	e->base.has_fixed = true;
	e->base.local = true;
	e->base.fixed = t->addr;
	e->g = g;
	e->command = gw_xstrdup(t->exec_command);
	e->kill_timer = evtimer_new(g->base, kill_timer_cb, e);
	if (!e->kill_timer)
		gw_oom(0);
	LIST_INSERT_HEAD(&g->members, e, link);
	return &e->base;
}

/* ---- the group ---------------------------------------------------------- */

struct exec_group *exec_group_create(struct event_base *base,
				     unsigned stop_grace_ms)
{
	struct exec_group *g = gw_xcalloc(1, sizeof(*g));
	g->base = base;
	g->stop_grace_ms = stop_grace_ms;
	LIST_INIT(&g->members);
	g->sigchld = evsignal_new(base, SIGCHLD, sigchld_cb, g);
	if (!g->sigchld)
		gw_oom(0);
	event_add(g->sigchld, NULL);
	return g;
}

void exec_group_shutdown(struct exec_group *g)
{
	if (!g)
		return;
	struct exec_provider *e;
	unsigned running = 0;
	LIST_FOREACH(e, &g->members, link) {
		if (e->pid) {
			group_signal(e->pid, SIGTERM);
			running++;
		}
	}
	/* The gateway is exiting (the loop is not running): one wait for
	 * all of them together, bounded by stop_grace. */
	struct timespec step = {0, 10 * 1000 * 1000};
	for (unsigned ms = 0; running && ms < g->stop_grace_ms; ms += 10) {
		nanosleep(&step, NULL);
		LIST_FOREACH(e, &g->members, link) {
			if (e->pid && waitpid(e->pid, NULL, WNOHANG) == e->pid) {
				e->pid = 0;
				running--;
			}
		}
	}
	LIST_FOREACH(e, &g->members, link) {
		if (!e->pid)
			continue;
		gw_log(GW_LOG_WARN, "activator",
		       "exec: pid %d still running %ums after SIGTERM; SIGKILL",
		       (int)e->pid, g->stop_grace_ms);
		group_signal(e->pid, SIGKILL);
		/* SIGKILL cannot be ignored: this returns promptly. */
		waitpid(e->pid, NULL, 0);
		e->pid = 0;
	}
}

void exec_group_destroy(struct exec_group *g)
{
	if (!g)
		return;
	event_free(g->sigchld);
	free(g);
}
