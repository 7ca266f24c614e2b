/* Forwards to an owner node (owner-forward.h). */
#include <stdio.h>

#include <jansson.h>

#include "bind/bind.h"
#include "bind/curlmulti.h"
#include "cluster/internal.h"
#include "cluster/owner-forward.h"

#define CONNECT_TIMEOUT_MS 3000L

static struct thaw_curlm *multi;

struct thaw_curlm *thaw_owner_multi(uv_loop_t *loop)
{
    if (!multi)
        multi = thaw_curlm_new(loop);
    return multi;
}

struct curl_slist *thaw_owner_headers(const char *node, char *err, size_t n)
{
    const char *secret = thaw_cluster_secret();
    struct curl_slist *h = NULL, *t;
    char auth[600];

    if (!*secret) {
        snprintf(err, n, "THAW_CLUSTER_SECRET is not set on this node: it cannot forward "
                 "to the owner node %s", node);
        return NULL;
    }
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", secret);
    if (!(t = curl_slist_append(h, auth)) || !(h = t) ||
        !(t = curl_slist_append(h, "Content-Type: application/octet-stream")) || !(h = t) ||
        !(t = curl_slist_append(h, "Expect:")) || !(h = t)) {
        curl_slist_free_all(h);
        snprintf(err, n, "out of memory");
        return NULL;
    }
    return h;
}

CURL *thaw_owner_easy(const char *internal, const char *path, struct curl_slist *headers,
                      const char *payload, size_t len, char *errbuf, long timeout_ms)
{
    CURL *e = curl_easy_init();
    char url[200];

    if (!e)
        return NULL;
    snprintf(url, sizeof(url), "http://%s%s", internal, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    errbuf[0] = '\0';
    return e;
}

void thaw_owner_fail_answer(struct thaw_bind_call *call, const char *body, size_t n,
                            const char *what, const char *node, const char *internal,
                            long status)
{
    json_t *j = json_loadb(body ? body : "", n, 0, NULL);
    const char *cls = json_string_value(json_object_get(j, "class"));
    const char *msg = json_string_value(json_object_get(j, "error"));

    if (msg)
        thaw_bind_fail(call, cls ? cls : "Error", "%s", msg);
    else
        thaw_bind_fail(call, "Error", "%s: 503 Service Unavailable: its owner node %s (%s) "
                       "answered %ld without an error thaw knows", what, node, internal,
                       status);
    json_decref(j);
}
