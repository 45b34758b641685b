/* exec.h - the exec provider: an app as a local process.
 *
 * The command runs under /bin/sh -c in a process group of its own (so a
 * stop reaches its children too), with stdin from /dev/null, stdout and
 * stderr shared with the gateway (the journal), no inherited descriptors,
 * and PORT set to the port of the address it must listen on.
 */
#ifndef GW_EXEC_H
#define GW_EXEC_H

#include <sys/types.h>

#include "core/addr.h"

/* Start command; returns the child's pid (= its process group), or -1
 * with *err. */
pid_t exec_start(const char *command, const struct gw_addr *addr,
		 const char **err);

/* Signal the whole process group. */
void exec_signal(pid_t pid, int sig);

#endif
