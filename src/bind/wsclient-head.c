/* The words of an outbound WebSocket's handshake (wsclient-head.h): the
 * URL taken apart, the worker's headers checked, the ones thaw writes
 * itself, and the server's 101 checked against the key thaw sent. No
 * handles, no state: wsclient.c's connection uses them. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "bind/wsclient-head.h"
#include "ws/ws.h"

static int has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    const char *p = value;

    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncasecmp(p, token, n) == 0 && (!p[n] || p[n] == ',' || p[n] == ' ' ||
                                              p[n] == '\t'))
            return 1;
        p = strchr(p, ',');
    }
    return 0;
}

const char *thaw_wsc_bad_101(const struct thaw_http_head *head, const char *key)
{
    struct thaw_ws_offer o;
    const char *up = thaw_http_head_get(head, "upgrade");
    const char *conn = thaw_http_head_get(head, "connection");
    const char *acc = thaw_http_head_get(head, "sec-websocket-accept");
    char want[29];

    memset(&o, 0, sizeof(o));
    snprintf(o.key, sizeof(o.key), "%s", key);
    thaw_ws_accept_value(&o, want);
    if (!up || strcasecmp(up, "websocket") != 0)
        return "its 101 has no \"Upgrade: websocket\"";
    if (!conn || !has_token(conn, "upgrade"))
        return "its 101 has no \"Connection: Upgrade\"";
    if (!acc || strcmp(acc, want) != 0)
        return "its Sec-WebSocket-Accept does not answer thaw's Sec-WebSocket-Key";
    if (thaw_http_head_get(head, "sec-websocket-extensions"))
        return "it chose a WebSocket extension, and thaw offered none";
    return NULL;
}

int thaw_wsc_own_header(const char *name)
{
    static const char *const names[] = {
        "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
        "sec-websocket-extensions", "content-length", "transfer-encoding", "keep-alive",
        "te", "trailer", "expect", "proxy-connection", NULL,
    };
    int i;

    for (i = 0; names[i]; i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return 0;
}

static int default_port(const char *scheme)
{
    return !strcmp(scheme, "wss") || !strcmp(scheme, "https") ? 443 : 80;
}

const char *thaw_wsc_parse_url(struct thaw_wsc_url *c, const char *url, char *err, size_t n)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    const char *bad = NULL;
    CURLUcode uc;

    if (!u)
        return "out of memory";
    uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        snprintf(err, n, "\"%s\" is not a valid URL (%s); give an absolute ws://, wss://, "
                 "http:// or https:// URL", url, curl_url_strerror(uc));
        bad = err;
        goto out;
    }
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (!scheme || (strcmp(scheme, "ws") && strcmp(scheme, "wss") && strcmp(scheme, "http") &&
                    strcmp(scheme, "https"))) {
        snprintf(err, n, "\"%s\": a WebSocket URL must be ws://, wss://, http:// or "
                 "https://, not %s:", url, scheme ? scheme : "?");
        bad = err;
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        snprintf(err, n, "\"%s\" has no host", url);
        bad = err;
        goto out;
    }
    c->secure = !strcmp(scheme, "wss") || !strcmp(scheme, "https");
    c->port = default_port(scheme);
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port)
        c->port = atoi(port);
    if (host[0] == '[') { /* an IPv6 literal: brackets in Host, not for DNS */
        snprintf(c->host, sizeof(c->host), "%.*s", (int)strlen(host) - 2, host + 1);
    } else {
        snprintf(c->host, sizeof(c->host), "%s", host);
    }
    if (c->port == default_port(scheme))
        snprintf(c->hosthdr, sizeof(c->hosthdr), "%s", host);
    else
        snprintf(c->hosthdr, sizeof(c->hosthdr), "%s:%d", host, c->port);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    if (asprintf(&c->target, "%s%s%s", path && *path ? path : "/", query ? "?" : "",
                 query ? query : "") < 0)
        c->target = NULL;
    c->url = strdup(url);
    if (!c->target || !c->url)
        bad = "out of memory";
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return bad;
}

const char *thaw_wsc_check_headers(json_t *headers, char *err, size_t n)
{
    size_t i;

    if (!json_is_array(headers))
        return "malformed call (headers must be a list)";
    for (i = 0; i < json_array_size(headers); i++) {
        json_t *p = json_array_get(headers, i);
        const char *name = json_string_value(json_array_get(p, 0));
        const char *value = json_string_value(json_array_get(p, 1));
        const char *s;
        if (!name || !value || !*name)
            return "malformed headers";
        for (s = name; *s; s++)
            if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
                return snprintf(err, n, "\"%s\" is not a valid header name", name), err;
        for (s = value; *s; s++)
            if (*s == '\r' || *s == '\n' || (unsigned char)*s >= 0x80)
                return snprintf(err, n, "the value of header %s has a line break or a "
                                "character outside ASCII", name), err;
    }
    return NULL;
}
