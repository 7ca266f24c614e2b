/* A worker's D1 call in a cluster (owner.h): run on this node when it
 * owns the database, else forwarded to the owner's internal port
 * (internal.h), whose answer becomes the call's; when the owner is down
 * the call fails with a 503 that names it. */
#ifndef THAW_CLUSTER_OWNER_D1_H
#define THAW_CLUSTER_OWNER_D1_H

struct thaw_owners;
struct thaw_bind_call;

/* Runs the (checked) call on this node's file, not starting it after
 * lease_until_ms (thaw_d1_ctl's). */
typedef void (*thaw_owner_here_fn)(void *impl, struct thaw_bind_call *call,
                                   double lease_until_ms);

/* id: the database's key (database_id, else database_name). Ends the
 * call, or hands it to here(impl, call). */
void thaw_owner_d1_call(struct thaw_owners *o, const char *id, struct thaw_bind_call *call,
                        thaw_owner_here_fn here, void *impl);

#endif
