/* compat.h - project-wide rails, included last by every .c file.
 *
 * Unbounded string functions are poisoned so that using one fails the build
 * (docs/PRINCIPLES.md, rule 4). Include this after all system headers: the
 * poison pragma also rejects the names inside headers included after it.
 */
#ifndef GW_CORE_COMPAT_H
#define GW_CORE_COMPAT_H

#include <stddef.h>

#define GW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* container_of with a type check: `ptr` must point to `member` of `type`. */
#define gw_container_of(ptr, type, member)                                     \
	((type *)(void *)((char *)(ptr)-offsetof(type, member) +               \
			  0 * sizeof(&((type *)0)->member == (ptr))))

/* Small control-plane allocations abort on failure (docs/PRINCIPLES.md,
 * rule 5); every client-driven allocation is bounded by a config limit. */
void *gw_xmalloc(size_t n);
void *gw_xcalloc(size_t n, size_t size);
void *gw_xrealloc(void *p, size_t n);
char *gw_xstrdup(const char *s);
char *gw_xstrndup(const char *s, size_t n);
/* Report an allocation of n bytes that failed, and abort. */
_Noreturn void gw_oom(size_t n);

#pragma GCC poison strcpy strcat sprintf vsprintf gets

#endif
