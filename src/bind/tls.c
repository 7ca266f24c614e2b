/* A client TLS session over memory BIOs (tls.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bind/tls.h"

struct thaw_tls_ctx {
    SSL_CTX *ctx;
};

struct thaw_tls {
    SSL *ssl;
    BIO *in;  /* the network's bytes, for OpenSSL to read */
    BIO *out; /* OpenSSL's bytes, for the network */
};

static void last_error(char *err, size_t n, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";

    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, n, "%s%s%s", what, buf[0] ? ": " : "", buf);
    ERR_clear_error();
}

struct thaw_tls_ctx *thaw_tls_ctx_new(const char *ca_file, char *err, size_t n)
{
    struct thaw_tls_ctx *x = calloc(1, sizeof(*x));

    if (!x || !(x->ctx = SSL_CTX_new(TLS_client_method()))) {
        free(x);
        snprintf(err, n, "cannot start OpenSSL");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(x->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(x->ctx, SSL_VERIFY_PEER, NULL);
    /* the worker's ca_file replaces the system's store, as CURLOPT_CAINFO
     * does for fetch */
    if (ca_file ? SSL_CTX_load_verify_locations(x->ctx, ca_file, NULL) != 1
                : SSL_CTX_set_default_verify_paths(x->ctx) != 1) {
        last_error(err, n, ca_file ? "cannot load thaw.egress.ca_file"
                                   : "cannot load the system's CA certificates");
        SSL_CTX_free(x->ctx);
        free(x);
        return NULL;
    }
    return x;
}

void thaw_tls_ctx_free(struct thaw_tls_ctx *x)
{
    if (!x)
        return;
    SSL_CTX_free(x->ctx);
    free(x);
}

struct thaw_tls *thaw_tls_new(struct thaw_tls_ctx *x, const char *host)
{
    struct thaw_tls *t = calloc(1, sizeof(*t));
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;

    if (!t)
        return NULL;
    t->ssl = SSL_new(x->ctx);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out) {
        BIO_free(t->in);
        BIO_free(t->out);
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    BIO_set_mem_eof_return(t->in, -1); /* empty means "more later", not EOF */
    SSL_set_bio(t->ssl, t->in, t->out);  /* the session owns them now */
    SSL_set_connect_state(t->ssl);
    if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
    } else {
        SSL_set_tlsext_host_name(t->ssl, host);
        SSL_set1_host(t->ssl, host);
    }
    return t;
}

void thaw_tls_free(struct thaw_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

int thaw_tls_feed(struct thaw_tls *t, const void *p, size_t n)
{
    return BIO_write(t->in, p, (int)n) == (int)n ? 0 : -1;
}

int thaw_tls_handshake(struct thaw_tls *t, char *err, size_t n)
{
    int rc = SSL_do_handshake(t->ssl);
    long v;

    if (rc == 1)
        return 1;
    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    default:
        v = SSL_get_verify_result(t->ssl);
        if (v != X509_V_OK) {
            snprintf(err, n, "the server's TLS certificate was refused: %s",
                     X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            last_error(err, n, "the TLS handshake failed");
        }
        return -1;
    }
}

ssize_t thaw_tls_read(struct thaw_tls *t, void *buf, size_t n)
{
    int rc = SSL_read(t->ssl, buf, (int)n);

    if (rc > 0)
        return rc;
    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    default:
        ERR_clear_error();
        return -1;
    }
}

int thaw_tls_write(struct thaw_tls *t, const void *p, size_t n)
{
    /* memory BIOs grow: a write is taken whole */
    if (n == 0)
        return 0;
    if (SSL_write(t->ssl, p, (int)n) != (int)n) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

size_t thaw_tls_take(struct thaw_tls *t, void *buf, size_t n)
{
    int k = BIO_read(t->out, buf, (int)n);

    return k > 0 ? (size_t)k : 0;
}
