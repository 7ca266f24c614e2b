/* The upgrade request (RFC 6455 §4.2.1): is it one, is it valid, and the
 * Sec-WebSocket-Accept value of the answer. */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "ws/ws.h"

/* RFC 6455 §1.3: appended to the client's key before hashing */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void thaw_ws_offer_reset(struct thaw_ws_offer *o)
{
    memset(o, 0, sizeof(*o));
}

/* Whether a comma-separated header value holds token (any case). */
static int has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;

    while (i < n) {
        size_t start, end;
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        start = i;
        while (i < n && v[i] != ',')
            i++;
        end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(v + start, token, tl) == 0)
            return 1;
    }
    return 0;
}

static int named(const char *name, size_t nlen, const char *want)
{
    return nlen == strlen(want) && memcmp(name, want, nlen) == 0;
}

void thaw_ws_offer_header(struct thaw_ws_offer *o, const char *name, size_t nlen,
                          const char *value, size_t vlen)
{
    if (named(name, nlen, "upgrade")) {
        o->upgrade |= has_token(value, vlen, "websocket");
    } else if (named(name, nlen, "connection")) {
        o->conn_upgrade |= has_token(value, vlen, "upgrade");
    } else if (named(name, nlen, "sec-websocket-key")) {
        o->keys++;
        o->key[0] = '\0';
        if (vlen < sizeof(o->key)) {
            memcpy(o->key, value, vlen);
            o->key[vlen] = '\0';
        }
    } else if (named(name, nlen, "sec-websocket-version")) {
        o->versions++;
        o->version13 |= vlen == 2 && memcmp(value, "13", 2) == 0;
    }
}

/* The key is 16 bytes, base64: 22 characters and "==" (§4.1 item 7). */
static int key_valid(const char *k)
{
    unsigned char raw[24];

    if (strlen(k) != 24 || k[22] != '=' || k[23] != '=')
        return 0;
    return EVP_DecodeBlock(raw, (const unsigned char *)k, 24) == 18;
}

int thaw_ws_offer_check(struct thaw_ws_offer *o, int is_get, int http11, const char **why)
{
    o->valid = 0;
    if (!o->upgrade)
        return 0;
    if (!is_get || !http11) {
        *why = "400 Bad Request: a WebSocket upgrade must be a GET request in HTTP/1.1 "
               "(RFC 6455 section 4.1)\n";
        return 400;
    }
    if (!o->conn_upgrade) {
        *why = "400 Bad Request: a WebSocket upgrade needs \"Connection: Upgrade\" "
               "(RFC 6455 section 4.1)\n";
        return 400;
    }
    if (o->keys != 1 || !key_valid(o->key)) {
        *why = o->keys ? "400 Bad Request: the Sec-WebSocket-Key header must be one base64 "
                         "value of 16 bytes (RFC 6455 section 4.1)\n"
                       : "400 Bad Request: a WebSocket upgrade needs a Sec-WebSocket-Key "
                         "header (RFC 6455 section 4.1)\n";
        return 400;
    }
    if (!o->version13) {
        *why = "426 Upgrade Required: thaw speaks WebSocket version 13 only "
               "(Sec-WebSocket-Version: 13, RFC 6455 section 4.4)\n";
        return 426;
    }
    o->valid = 1;
    return 1;
}

void thaw_ws_accept_value(const struct thaw_ws_offer *o, char out[29])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    char in[64];
    size_t kl = strlen(o->key);

    memcpy(in, o->key, kl);
    memcpy(in + kl, ws_guid, sizeof(ws_guid) - 1);
    SHA1((const unsigned char *)in, kl + sizeof(ws_guid) - 1, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH); /* 28 + NUL */
}
