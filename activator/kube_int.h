/* kube_int.h - private to activator/kube_*.c: helpers both halves use. */
#ifndef GW_KUBE_INT_H
#define GW_KUBE_INT_H

#include <stddef.h>

/* Percent-encode s for a URL path or query (all but RFC 3986 unreserved)
 * into out (always NUL-terminated; cut short if outsz is too small).
 * Returns the length written. */
size_t kube_escape(char *out, size_t outsz, const char *s);

#endif
