/* thaw serve: a worker's network targets against the operator's policy (one
 * row of tenant.c's CHECKS): its [thaw.egress] may only narrow the
 * operator's [egress], and its KV backends must be ones the operator's [kv]
 * offers. */
#ifndef THAW_SERVE_TENANT_EGRESS_H
#define THAW_SERVE_TENANT_EGRESS_H

#include "serve/tenant.h"

int thaw_tenant_network(const struct thaw_tenant_ctx *c, char *err, size_t errlen);

#endif
