/* Static assets on the HTTP path: a GET or HEAD whose path the worker's
 * `assets.directory` has is answered from the file before any worker
 * runs (unless `assets.run_worker_first` says the worker goes first). */
#ifndef THAW_SERVER_STATIC_H
#define THAW_SERVER_STATIC_H

struct conn;
struct thaw_static_send;

/* Called when a request head is complete and its exchange initialised.
 * Returns 1 when the assets answer it (the response is written or
 * streaming), 0 when the worker should. */
int thaw_static_try(struct conn *c);
/* The client took what was written: send more of the file. */
void thaw_static_drained(struct conn *c);
/* The connection is closing mid-file: let go of it. */
void thaw_static_stop(struct conn *c);

#endif
