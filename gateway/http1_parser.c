/* http1_parser.c - http-parser's reading of a head, checked against ours.
 *
 * A head is accepted only when two parsers agree on it: the strict pass in
 * http1.c (RFC 9112 grammar, which Debian's lenient http-parser 2.9.4 does
 * not enforce) and http-parser itself, run over the same bytes. Both work
 * on one buffer, so agreement is exact: the same method and version, the
 * same target, and every field name and value at the same address. A head
 * the two read differently is exactly what request smuggling is made of,
 * so any difference is a 400, never a guess at which one is right.
 *
 * The head is complete (the caller found its end), so one
 * http_parser_execute() call sees it all and each callback fires once per
 * element; on_headers_complete stops the parser before any body.
 */
#include <http_parser.h>
#include <string.h>

#include "http1_int.h"

/* Larger than the largest head any limit allows (1 MiB + the start
 * line): the head's size is bounded by our own limits, not http-parser's
 * default 80 KiB. A library-wide setting, always set to this constant. */
#define HP_MAX_HEAD (2u << 20)

struct hp_check {
	const struct http1_head *h;
	size_t next;          /* index of the field expected next */
	bool want_value;      /* its name was seen, its value not yet */
	bool target_seen;
	bool complete;        /* on_headers_complete ran */
	const char *why;      /* first disagreement, or NULL */
};

static int differ(struct hp_check *k, const char *why)
{
	if (!k->why)
		k->why = why;
	return 1; /* stop the parser */
}

static bool same(struct gw_str s, const char *at, size_t n)
{
	return s.p == at && s.len == n;
}

/* An empty value gets no on_header_value call from http-parser. */
static void close_empty_value(struct hp_check *k)
{
	if (k->want_value && k->h->hdrs[k->next - 1].value.len == 0)
		k->want_value = false;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct hp_check *k = p->data;
	if (k->target_seen || !same(k->h->target, at, n))
		return differ(k, "http-parser reads the request target differently");
	k->target_seen = true;
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
	struct hp_check *k = p->data;
	close_empty_value(k);
	if (k->want_value || k->next >= k->h->nhdrs ||
	    !same(k->h->hdrs[k->next].name, at, n))
		return differ(k, "http-parser reads a field name differently");
	k->next++;
	k->want_value = true;
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
	struct hp_check *k = p->data;
	/* http-parser keeps trailing whitespace in a value; ours is trimmed
	 * (RFC 9110 §5.5: OWS is not part of the value). */
	while (n && (at[n - 1] == ' ' || at[n - 1] == '\t'))
		n--;
	if (!k->want_value)
		return differ(k, "http-parser reads a field value differently");
	/* An empty value has no place of its own to agree on. */
	struct gw_str ours = k->h->hdrs[k->next - 1].value;
	if (n == 0 ? ours.len != 0 : !same(ours, at, n))
		return differ(k, "http-parser reads a field value differently");
	k->want_value = false;
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct hp_check *k = p->data;
	close_empty_value(k);
	const struct http1_head *h = k->h;
	if (k->want_value || k->next != h->nhdrs)
		return differ(k, "http-parser counts the fields differently");
	if (p->http_major != h->major || p->http_minor != h->minor)
		return differ(k, "http-parser reads the version differently");
	if (p->type == HTTP_REQUEST &&
	    ((int)p->method != h->method || !k->target_seen))
		return differ(k, "http-parser reads the request line differently");
	if (p->type == HTTP_RESPONSE && (int)p->status_code != h->status)
		return differ(k, "http-parser reads the status differently");
	k->complete = true;
	return 1; /* no body: only the head is ours to read here */
}

static const http_parser_settings hp_settings = {
	.on_url = on_url,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers_complete,
};

int http1_parser_check(const char *buf, size_t len, bool request,
		       const struct http1_head *h, const char **err)
{
	http_parser_set_max_header_size(HP_MAX_HEAD);
	http_parser p;
	http_parser_init(&p, request ? HTTP_REQUEST : HTTP_RESPONSE);
	struct hp_check k = {.h = h};
	p.data = &k;
	http_parser_execute(&p, &hp_settings, buf, len);
	if (k.complete)
		return 0;
	*err = k.why ? k.why : http_errno_description(HTTP_PARSER_ERRNO(&p));
	return 400;
}
