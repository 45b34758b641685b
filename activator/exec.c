/* exec.c - start and stop local app processes. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec.h"
#include "core/compat.h"

static unsigned addr_port(const struct gw_addr *a)
{
	return a->ss.ss_family == AF_INET6
		       ? ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port)
		       : ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

pid_t exec_start(const char *command, const struct gw_addr *addr,
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
	pid_t pid = fork();
	if (pid != 0)
		free(envp);
	if (pid < 0) {
		*err = strerror(errno);
		return -1;
	}
	if (pid > 0) {
		/* Also here, so a stop right after the fork finds the group. */
		setpgid(pid, pid);
		return pid;
	}
	/* Child: only async-signal-safe calls until exec. */
	setpgid(0, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
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

void exec_signal(pid_t pid, int sig)
{
	if (pid > 0)
		kill(-pid, sig);
}
