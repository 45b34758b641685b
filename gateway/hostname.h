/* hostname.h - the authority a request is for, normalised for routing.
 *
 * Routing keys are lowercase host names without port and without a trailing
 * dot; IPv6 literals keep their brackets ("[::1]"). Pure functions, no
 * allocation.
 */
#ifndef GW_HOSTNAME_H
#define GW_HOSTNAME_H

#include <stddef.h>

#include "core/str.h"

/* Longest normalised host (DNS limit 253 + brackets/slack). */
#define HOSTNAME_MAX 256

/* Normalise an authority ("Host" value or the authority of an absolute-form
 * target): lowercase, strip ":port" (port must be 1-5 digits, <= 65535),
 * strip one trailing dot. Rejects empty hosts, userinfo ("a@b"), bytes
 * outside [A-Za-z0-9.-_] for reg-names, empty labels ("a..b"), over-long
 * names, and malformed IPv6 literals. Writes a NUL-terminated result into
 * out (size HOSTNAME_MAX). Returns 0, or -1 with *err set. */
int hostname_normalize(struct gw_str authority, char out[HOSTNAME_MAX],
		       const char **err);

/* The port of an authority that hostname_normalize() accepted: the digits
 * after the host ("8080" for "a.b:8080" or "[::1]:8080"), or an empty
 * slice when there is none. */
struct gw_str hostname_port(struct gw_str authority);

/* Classify a request-target. For absolute-form ("http://host[:port]/p?q",
 * scheme http or https, case-insensitive) returns 1 and stores the
 * authority and the origin-form remainder ("/p?q", or "/" when the path is
 * empty; a query-only "?q" becomes "/?q" by writing into nothing: *path
 * then points at the '?' and *path_needs_slash is set). Origin-form ("/...")
 * and asterisk-form ("*") return 0 and leave outputs untouched. Anything
 * else (other schemes, authority-form) returns -1 with *err. */
int hostname_split_target(struct gw_str target, struct gw_str *authority,
			  struct gw_str *path, int *path_needs_slash,
			  const char **err);

#endif
