/* What every port of thaw answers the same way, whatever it serves. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/h1.h"

int thaw_h1_check_head(const http_parser *p, int hosts, const char **why)
{
    if (p->http_major != 1 || p->http_minor > 1) {
        *why = "505 HTTP Version Not Supported: thaw speaks HTTP/1.0 and HTTP/1.1\n";
        return 505;
    }
    if (p->method == HTTP_CONNECT) {
        *why = "501 Not Implemented: thaw is not a proxy (CONNECT)\n";
        return 501;
    }
    if (p->method == HTTP_TRACE) {
        /* it would echo headers a proxy in front added (cookies, auth) */
        *why = "501 Not Implemented: thaw does not answer TRACE\n";
        return 501;
    }
    if (hosts > 1) {
        /* a proxy in front may have authorised the first and we would
         * route by another */
        *why = "400 Bad Request: more than one Host header\n";
        return 400;
    }
    if (hosts == 0 && p->http_minor == 1) {
        *why = "400 Bad Request: an HTTP/1.1 request needs a Host header\n";
        return 400;
    }
    return 0;
}

long thaw_h1_absolute(const char *url, size_t n, char *host, size_t hostlen)
{
    size_t skip, end;

    if (n >= 7 && strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (n >= 8 && strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return -1;
    for (end = skip; end < n && url[end] != '/' && url[end] != '?'; end++)
        ;
    snprintf(host, hostlen, "%.*s", (int)(end - skip), url + skip);
    return (long)end;
}

int thaw_h1_declared_over(const http_parser *p, uint64_t so_far, long long max)
{
    /* in a chunked body content_length is the size of the chunk ahead */
    if (p->content_length == ULLONG_MAX)
        return 0;
    if (p->content_length > (uint64_t)max || so_far + p->content_length > (uint64_t)max)
        return 413;
    return 0;
}

void thaw_h1_body_start(struct thaw_h1_body_clock *k, uint64_t now)
{
    k->start_ms = k->last_ms = now;
    k->bytes = 0;
}

int thaw_h1_body_late(const struct thaw_h1_body_clock *k, long long body_timeout_ms,
                      long long body_min_rate, uint64_t now)
{
    uint64_t took = now - k->start_ms;

    if (now - k->last_ms >= (uint64_t)body_timeout_ms)
        return 1;
    return body_min_rate > 0 && took >= THAW_H1_BODY_GRACE_MS &&
           k->bytes * 1000 < (uint64_t)body_min_rate * took;
}

const char *thaw_h1_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : "Error";
    }
}
