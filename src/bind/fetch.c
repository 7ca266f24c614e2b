/* Outbound fetch: `await workers.fetch(url, ...)` / `js.fetch`. The
 * request is made here, in the supervisor, with libcurl's multi interface
 * on the event loop (curlmulti.h), so thousands can be in flight; the
 * response head goes to the instance as soon as it arrives and the body
 * streams after it. Every connection, redirect hops included, goes through
 * the egress policy (egress.h) once DNS has answered.
 *
 * The kind registers one binding, FETCH_BINDING, that env does not show
 * (python/workers/_fetch.py calls it). Its one op, "fetch", takes
 *   {"url", "method", "headers": [[name, value], ...], "redirect", "body": bool}
 * with the request body as the call's body, and answers with the head
 *   {"status", "statusText", "headers": [[name, value], ...], "url", "redirected"}
 * then the body. Redirects are followed here, hop by hop, as the Fetch
 * standard says (303, and 301/302 after a POST, become GET). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "bind/bind.h"
#include "bind/curlmulti.h"
#include "bind/egress.h"
#include "bind/httphead.h"
#include "bind/kinds.h"
#include "util/log.h"

#define FETCH_BINDING "__fetch"
#define MAX_REDIRECTS 20
#define MAX_HEAD_BYTES (256 * 1024) /* response header bytes kept */

enum redirect_mode { R_FOLLOW, R_MANUAL, R_ERROR };

/* One per version: its config and its own connection cache. */
struct fetcher {
    uv_loop_t *loop;
    struct thaw_egress_config cfg;
    struct thaw_curlm *multi; /* made at the first fetch */
    char *config_file;
};

struct fetch {
    struct thaw_curlm_xfer x;
    struct fetcher *fr;
    struct thaw_bind_call *call;
    char *url;            /* this hop's URL */
    char *method;
    json_t *headers;      /* the request's [name, value] pairs */
    struct curl_slist *slist;
    int send_body;
    enum redirect_mode redirect;
    int hops;
    uint64_t deadline;    /* uv_now() */
    int cancel_pending;

    /* the response of this hop */
    struct thaw_http_head head;
    int following;        /* a redirect we follow: its body is dropped */
    int begun;            /* head sent to the instance */
    unsigned long long received;
    int paused;
    const char *fail_class; /* an error decided in a callback */
    char fail[700];
    char refused[1400];     /* the egress policy said no */
    char errbuf[CURL_ERROR_SIZE];
};

static int start_hop(struct fetch *f);

/* ---- text ------------------------------------------------------------ */

/* UTF-8 (from JSON) -> Latin-1 bytes in place; -1 above U+00FF. */
static int utf8_latin1(char *s)
{
    unsigned char *i = (unsigned char *)s, *o = (unsigned char *)s;

    while (*i) {
        if (*i < 0x80) {
            *o++ = *i++;
        } else if ((*i == 0xc2 || *i == 0xc3) && (i[1] & 0xc0) == 0x80) {
            *o++ = (unsigned char)(((i[0] & 0x03) << 6) | (i[1] & 0x3f));
            i += 2;
        } else {
            return -1;
        }
    }
    *o = 0;
    return 0;
}

static int is_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
            return 0;
    return 1;
}

/* ---- the end of a fetch ------------------------------------------------- */

static void fetch_free(struct fetch *f)
{
    if (f->x.easy)
        curl_easy_cleanup(f->x.easy);
    curl_slist_free_all(f->slist);
    json_decref(f->headers);
    thaw_http_head_free(&f->head);
    free(f->url);
    free(f->method);
    free(f);
}

/* Ends the call with an error: raised by `await fetch()` when the head has
 * not gone out, else by the body's read ("Class: message", which
 * _fetch.py turns back into the class). */
static void fetch_fail(struct fetch *f, const char *cls, const char *msg)
{
    if (f->call->on_cancel) /* no cancel can come for an ended call */
        f->call->on_cancel = NULL;
    if (f->begun) {
        char text[1200];
        snprintf(text, sizeof(text), "%s: %s", cls, msg);
        thaw_bind_end(f->call, text);
    } else {
        thaw_bind_fail(f->call, cls, "%s", msg);
    }
    fetch_free(f);
}

static void set_fail(struct fetch *f, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_fail(struct fetch *f, const char *cls, const char *fmt, ...)
{
    va_list ap;

    if (f->fail_class)
        return;
    f->fail_class = cls;
    va_start(ap, fmt);
    vsnprintf(f->fail, sizeof(f->fail), fmt, ap);
    va_end(ap);
}

/* ---- curl callbacks ----------------------------------------------------- */

static curl_socket_t open_socket(void *data, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct fetch *f = data;
    struct thaw_egress_verdict why;
    char host[256] = "?", target[400], fix[400];
    CURLU *u;
    char *h = NULL;

    if (thaw_egress_check_sockaddr(f->fr->cfg.policy, &a->addr, &why))
        return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (f->refused[0])
        return CURL_SOCKET_BAD; /* the first refusal says it */
    u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, f->url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK)
        snprintf(host, sizeof(host), "%s", h);
    curl_free(h);
    curl_url_cleanup(u);
    snprintf(target, sizeof(target), "%s (address %s, port %d)", host, why.addr, why.port);
    if (strcmp(host, why.addr) == 0 ||
        (host[0] == '[' && strncmp(host + 1, why.addr, strlen(why.addr)) == 0))
        snprintf(target, sizeof(target), "%s port %d", why.addr, why.port);
    thaw_egress_fix(&why, f->fr->config_file, fix, sizeof(fix));
    snprintf(f->refused, sizeof(f->refused),
             "thaw egress policy refused the connection to %s for %s%s: %s is in %s, %s. "
             "Workers may not reach it unless the config allows it: %s",
             target, f->url, f->hops ? " (a redirect)" : "", why.addr, why.rule, why.what,
             fix);
    return CURL_SOCKET_BAD;
}

static int is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 ||
           status == 308;
}

static const char *rheader(struct fetch *f, const char *name)
{
    return thaw_http_head_get(&f->head, name);
}

/* The final head of this hop is in: follow, refuse, or send it on. 0, or
 * -1 to abort the transfer (f->fail says why). */
static int on_head(struct fetch *f)
{
    const char *len;
    json_t *head;

    if (is_redirect(f->head.status) && rheader(f, "location")) {
        if (f->redirect == R_FOLLOW) {
            f->following = 1;
            return 0;
        }
        if (f->redirect == R_ERROR) {
            set_fail(f, "TypeError", "fetch to %s was redirected (status %d to %s) and "
                     "redirect is \"error\"", f->url, f->head.status, rheader(f, "location"));
            return -1;
        }
    }
    len = rheader(f, "content-length");
    if (len && strcmp(f->method, "HEAD") != 0 &&
        strtoull(len, NULL, 10) > (unsigned long long)f->fr->cfg.max_response_bytes) {
        set_fail(f, "RangeError", "the response of %s is %s bytes, over the %lld bytes "
                 "thaw.egress.max_response_bytes allows", f->url, len,
                 f->fr->cfg.max_response_bytes);
        return -1;
    }
    head = json_pack("{s:i, s:s, s:O, s:s, s:b}", "status", f->head.status, "statusText",
                     f->head.reason ? f->head.reason : "", "headers", f->head.headers, "url", f->url,
                     "redirected", f->hops > 0);
    thaw_bind_begin(f->call, head);
    f->begun = 1;
    return 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *data)
{
    struct fetch *f = data;
    size_t n = size * nitems;

    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0)
        f->following = 0; /* a new response (after a 1xx) */
    switch (thaw_http_head_line(&f->head, buf, n)) {
    case THAW_HEAD_DONE:
        return on_head(f) == 0 ? n : 0;
    case THAW_HEAD_TOOBIG:
        set_fail(f, "RangeError", "the response of %s has over %d bytes of headers",
                 f->url, MAX_HEAD_BYTES);
        return 0;
    default:
        return n;
    }
}

static size_t on_body(char *p, size_t size, size_t nitems, void *data)
{
    struct fetch *f = data;
    size_t n = size * nitems;
    unsigned long long max = (unsigned long long)f->fr->cfg.max_response_bytes;

    if (f->following) {
        /* the body of a redirect we follow: nobody reads it */
        f->received += n;
        if (f->received > max) {
            set_fail(f, "RangeError", "the body of the redirect from %s is over %llu bytes",
                     f->url, max);
            return 0;
        }
        return n;
    }
    if (!f->begun) {
        set_fail(f, "ConnectionError", "fetch to %s: the server sent a body without "
                 "a head", f->url);
        return 0;
    }
    if (thaw_bind_congested(f->call)) {
        /* the instance is behind: keep the data in curl until it catches up */
        f->paused = 1;
        thaw_curlm_tick_soon(&f->x);
        return CURL_WRITEFUNC_PAUSE;
    }
    if ((f->received += n) > max) {
        set_fail(f, "RangeError", "the response of %s is over the %llu bytes "
                 "thaw.egress.max_response_bytes allows", f->url, max);
        return 0;
    }
    if (thaw_bind_data(f->call, p, n) < 0)
        return 0; /* nobody listens */
    return n;
}

/* ---- hops ---------------------------------------------------------------- */

static int same_origin(const char *a, const char *b)
{
    static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    CURLU *ua = curl_url(), *ub = curl_url();
    int same = ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
               curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK;
    size_t i;

    for (i = 0; same && i < sizeof(parts) / sizeof(parts[0]); i++) {
        char *x = NULL, *y = NULL;
        curl_url_get(ua, parts[i], &x, CURLU_DEFAULT_PORT);
        curl_url_get(ub, parts[i], &y, CURLU_DEFAULT_PORT);
        same = x && y && strcasecmp(x, y) == 0;
        curl_free(x);
        curl_free(y);
    }
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

static void drop_headers(struct fetch *f, const char *const *names)
{
    size_t i = 0, k;

    while (i < json_array_size(f->headers)) {
        const char *name = json_string_value(json_array_get(json_array_get(f->headers, i), 0));
        int drop = 0;
        for (k = 0; names[k]; k++)
            if (strcasecmp(name, names[k]) == 0)
                drop = 1;
        if (drop)
            json_array_remove(f->headers, i);
        else
            i++;
    }
}

/* This hop answered with a redirect to follow: on to the next. */
static void next_hop(struct fetch *f)
{
    static const char *const body_headers[] = {"content-encoding", "content-language",
        "content-location", "content-type", NULL};
    static const char *const credentials[] = {"authorization", NULL};
    char *loc = NULL, *next;
    CURLU *u;
    char *scheme = NULL;

    curl_easy_getinfo(f->x.easy, CURLINFO_REDIRECT_URL, &loc);
    if (!loc) {
        char msg[800];
        snprintf(msg, sizeof(msg), "fetch to %s was redirected to \"%s\", which is not "
                 "a URL", f->url, rheader(f, "location"));
        fetch_fail(f, "TypeError", msg);
        return;
    }
    next = strdup(loc);
    if (++f->hops > MAX_REDIRECTS) {
        char msg[800];
        snprintf(msg, sizeof(msg), "fetch to %s: more than %d redirects", f->url,
                 MAX_REDIRECTS);
        free(next);
        fetch_fail(f, "ConnectionError", msg);
        return;
    }
    u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, next, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        char msg[800];
        snprintf(msg, sizeof(msg), "fetch to %s was redirected to %s: only http and "
                 "https URLs can be fetched", f->url, next);
        curl_free(scheme);
        curl_url_cleanup(u);
        free(next);
        fetch_fail(f, "TypeError", msg);
        return;
    }
    curl_free(scheme);
    curl_url_cleanup(u);

    /* the Fetch standard's method rewrite */
    if ((f->head.status == 303 && strcmp(f->method, "GET") != 0 && strcmp(f->method, "HEAD") != 0) ||
        ((f->head.status == 301 || f->head.status == 302) && strcmp(f->method, "POST") == 0)) {
        free(f->method);
        f->method = strdup("GET");
        f->send_body = 0;
        drop_headers(f, body_headers);
    }
    if (!same_origin(f->url, next))
        drop_headers(f, credentials);
    curl_easy_cleanup(f->x.easy);
    f->x.easy = NULL;
    free(f->url);
    f->url = next;
    f->received = 0;
    f->refused[0] = 0;
    thaw_http_head_reset(&f->head);
    if (start_hop(f) < 0)
        fetch_fail(f, "Error", "out of memory");
}

static void on_done(struct thaw_curlm_xfer *x, CURLcode rc)
{
    struct fetch *f = (struct fetch *)x;
    struct thaw_egress_config *cfg = &f->fr->cfg;
    char msg[1200];

    if (rc == CURLE_OK && f->following) {
        next_hop(f);
        return;
    }
    if (rc == CURLE_OK) {
        if (!f->begun) {
            fetch_fail(f, "ConnectionError", "the server closed the connection without "
                       "a response");
            return;
        }
        f->call->on_cancel = NULL;
        thaw_bind_end(f->call, NULL);
        fetch_free(f);
        return;
    }
    if (f->fail_class) {
        fetch_fail(f, f->fail_class, f->fail);
    } else if (f->refused[0] && rc == CURLE_COULDNT_CONNECT) {
        fetch_fail(f, "PermissionError", f->refused);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(msg, sizeof(msg), "fetch to %s timed out: %s (thaw.egress timeout_ms is "
                 "%lld for the whole request, connect_timeout_ms %lld)", f->url,
                 f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc), cfg->timeout_ms,
                 cfg->connect_timeout_ms);
        fetch_fail(f, "TimeoutError", msg);
    } else {
        snprintf(msg, sizeof(msg), "fetch to %s failed: %s", f->url,
                 f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc));
        fetch_fail(f, "ConnectionError", msg);
    }
}

static void on_tick(struct thaw_curlm_xfer *x)
{
    struct fetch *f = (struct fetch *)x;

    if (f->cancel_pending) {
        thaw_curlm_remove(&f->x);
        thaw_bind_end(f->call, "cancelled");
        fetch_free(f);
        return;
    }
    if (f->paused) {
        if (thaw_bind_congested(f->call)) {
            thaw_curlm_tick_soon(&f->x);
            return;
        }
        f->paused = 0;
        thaw_curlm_resume(&f->x);
    }
}

/* The worker dropped the response, or its instance is gone. */
static void on_cancel(struct thaw_bind_call *call)
{
    struct fetch *f = call->data;

    if (thaw_curlm_in_callback(f->fr->multi)) {
        f->cancel_pending = 1;
        thaw_curlm_tick_soon(&f->x);
        return;
    }
    thaw_curlm_remove(&f->x);
    thaw_bind_end(call, "cancelled");
    fetch_free(f);
}

static struct curl_slist *request_headers(struct fetch *f)
{
    /* set by curl from the URL and the body, or meaningless here */
    static const char *const skip[] = {"host", "content-length", "transfer-encoding",
        "connection", "keep-alive", "te", "trailer", "upgrade", "expect",
        "proxy-connection", NULL};
    struct curl_slist *l = NULL, *t;
    int has_ctype = 0;
    size_t i, k;

    for (i = 0; i < json_array_size(f->headers); i++) {
        json_t *p = json_array_get(f->headers, i);
        const char *name = json_string_value(json_array_get(p, 0));
        const char *value = json_string_value(json_array_get(p, 1));
        char *line;
        int drop = 0;

        for (k = 0; skip[k]; k++)
            if (strcasecmp(name, skip[k]) == 0)
                drop = 1;
        if (drop)
            continue;
        if (strcasecmp(name, "content-type") == 0)
            has_ctype = 1;
        /* curl sends "name;" as an empty header, "name:" would remove it */
        if (asprintf(&line, *value ? "%s: %s" : "%s;", name, value) < 0)
            goto oom;
        t = curl_slist_append(l, line);
        free(line);
        if (!t)
            goto oom;
        l = t;
    }
    /* no 100-continue round trip; no form content type curl would add */
    if (!(t = curl_slist_append(l, "Expect:")))
        goto oom;
    l = t;
    if (!has_ctype) {
        if (!(t = curl_slist_append(l, "Content-Type:")))
            goto oom;
        l = t;
    }
    return l;
oom:
    curl_slist_free_all(l);
    return NULL;
}

static int start_hop(struct fetch *f)
{
    struct thaw_egress_config *cfg = &f->fr->cfg;
    uint64_t now = uv_now(f->fr->loop);
    long left = f->deadline > now ? (long)(f->deadline - now) : 1;
    CURL *e = curl_easy_init();

    if (!e)
        return -1;
    f->x.easy = e;
    f->x.done = on_done;
    f->x.tick = on_tick;
    curl_slist_free_all(f->slist);
    if (!(f->slist = request_headers(f)))
        return -1;
    f->errbuf[0] = 0;
    f->fail_class = NULL;
    f->following = 0;
    thaw_http_head_reset(&f->head);
    curl_easy_setopt(e, CURLOPT_URL, f->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* hops are ours (next_hop) */
    curl_easy_setopt(e, CURLOPT_PROXY, "");          /* never a proxy from the env */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, f);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 65536L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->slist);
    if (cfg->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->ca_file);
    if (strcmp(f->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(f->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, f->method);
        if (f->send_body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->call->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, f->call->body ? f->call->body : "");
        } else if (strcmp(f->method, "POST") == 0 || strcmp(f->method, "PUT") == 0) {
            /* Fetch sends content-length: 0 for a POST or PUT without a body */
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        }
    }
    if (thaw_curlm_add(f->fr->multi, &f->x) < 0)
        return -1;
    return 0;
}

/* ---- the kind ------------------------------------------------------------ */

/* Checks the call's arguments into f; NULL, or a message (in err). */
static const char *parse_args(struct fetch *f, json_t *args, char *err, size_t errlen)
{
    const char *url = json_string_value(json_object_get(args, "url"));
    const char *method = json_string_value(json_object_get(args, "method"));
    const char *redirect = json_string_value(json_object_get(args, "redirect"));
    json_t *headers = json_object_get(args, "headers");
    CURLU *u;
    CURLUcode uc;
    char *scheme = NULL, *norm = NULL;
    size_t i;

    if (!url || !method || !json_is_array(headers))
        return "fetch: malformed call (url, method and headers are required)";
    if (!is_token(method))
        return snprintf(err, errlen, "fetch: \"%s\" is not a valid HTTP method", method), err;
    if (!strcasecmp(method, "CONNECT") || !strcasecmp(method, "TRACE") ||
        !strcasecmp(method, "TRACK"))
        return snprintf(err, errlen, "fetch: the %s method is forbidden", method), err;
    if (!redirect || !strcmp(redirect, "follow"))
        f->redirect = R_FOLLOW;
    else if (!strcmp(redirect, "manual"))
        f->redirect = R_MANUAL;
    else if (!strcmp(redirect, "error"))
        f->redirect = R_ERROR;
    else
        return snprintf(err, errlen, "fetch: redirect must be \"follow\", \"manual\" or "
                        "\"error\", not \"%s\"", redirect), err;
    u = curl_url();
    if (!u)
        return "out of memory";
    uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc == CURLUE_OK)
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc != CURLUE_OK)
        snprintf(err, errlen, "fetch: \"%s\" is not a valid URL (%s); give an absolute "
                 "http:// or https:// URL", url, curl_url_strerror(uc));
    else if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        snprintf(err, errlen, "fetch: \"%s\": only http and https URLs can be fetched, "
                 "not %s:", url, scheme ? scheme : "?");
    else if (curl_url_get(u, CURLUPART_URL, &norm, 0) != CURLUE_OK)
        snprintf(err, errlen, "fetch: \"%s\" is not a valid URL", url);
    curl_free(scheme);
    curl_url_cleanup(u);
    if (!norm)
        return err;
    f->url = strdup(norm);
    curl_free(norm);
    f->method = strdup(method);
    f->headers = json_array();
    for (i = 0; i < json_array_size(headers); i++) {
        json_t *p = json_array_get(headers, i);
        const char *n = json_string_value(json_array_get(p, 0));
        const char *v = json_string_value(json_array_get(p, 1));
        char *name, *value;
        if (!json_is_array(p) || !n || !v || !is_token(n))
            return "fetch: malformed headers";
        name = strdup(n);
        value = strdup(v);
        if (utf8_latin1(value) < 0 || strpbrk(value, "\r\n")) {
            free(name);
            free(value);
            return snprintf(err, errlen, "fetch: the value of header %s has a line break "
                            "or a character above U+00FF", n), err;
        }
        json_array_append_new(f->headers, json_pack("[ss]", name, value));
        free(name);
        free(value);
    }
    f->send_body = json_is_true(json_object_get(args, "body"));
    if (f->send_body && (!strcmp(method, "GET") || !strcmp(method, "HEAD")))
        return "fetch: a GET or HEAD request cannot have a body";
    return NULL;
}

static void fetch_call(void *impl, struct thaw_bind_call *call)
{
    struct fetcher *fr = impl;
    struct fetch *f;
    const char *bad;
    char err[1200];

    if (strcmp(call->op, "fetch") != 0) {
        thaw_bind_fail(call, "TypeError", "fetch has no operation \"%s\"", call->op);
        return;
    }
    if (!fr->multi && !(fr->multi = thaw_curlm_new(fr->loop))) {
        thaw_bind_fail(call, "Error", "fetch: cannot start libcurl");
        return;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        thaw_bind_fail(call, "Error", "out of memory");
        return;
    }
    f->fr = fr;
    f->call = call;
    if (thaw_http_head_init(&f->head, MAX_HEAD_BYTES) < 0) {
        thaw_bind_fail(call, "Error", "out of memory");
        free(f);
        return;
    }
    if ((bad = parse_args(f, call->args, err, sizeof(err)))) {
        thaw_bind_fail(call, "TypeError", "%s", bad);
        fetch_free(f);
        return;
    }
    f->deadline = uv_now(fr->loop) + (uint64_t)fr->cfg.timeout_ms;
    call->data = f;
    call->on_cancel = on_cancel;
    if (start_hop(f) < 0) {
        call->on_cancel = NULL;
        thaw_bind_fail(call, "Error", "fetch: cannot start the request");
        fetch_free(f);
    }
}

static int fetch_open(const struct thaw_bind_env *env, struct thaw_bindings *set,
                      char *err, size_t errlen)
{
    struct fetcher *fr = calloc(1, sizeof(*fr));

    if (!fr) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (thaw_egress_config_load(&fr->cfg, env->config, env->config_file, env->worker_dir,
                                env->policy, err, errlen) < 0) {
        free(fr);
        return -1;
    }
    fr->loop = env->loop;
    fr->config_file = strdup(env->config_file ? env->config_file : "the config");
    if (thaw_bindings_add(set, FETCH_BINDING, &thaw_bind_fetch, fr, err, errlen) < 0) {
        thaw_egress_config_free(&fr->cfg);
        free(fr->config_file);
        free(fr);
        return -1;
    }
    return 0;
}

static void fetch_close(void *impl)
{
    struct fetcher *fr = impl;

    thaw_curlm_free(fr->multi);
    thaw_egress_config_free(&fr->cfg);
    free(fr->config_file);
    free(fr);
}

const struct thaw_bind_kind thaw_bind_fetch = {
    .name = "fetch",
    .open = fetch_open,
    .call = fetch_call,
    .close = fetch_close,
};
