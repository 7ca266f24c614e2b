/* How long a zygote that exited waits before it is started again
 * (client.c): the first restart at once, then 100 ms, doubling up to 10 s,
 * so a crash loop costs a start now and then instead of a core. One that
 * stayed ready for 30 s crashed once rather than in a loop: it starts
 * over at once. */
#ifndef THAW_ZYGOTE_BACKOFF_H
#define THAW_ZYGOTE_BACKOFF_H

#include <stdint.h>

#define THAW_BACKOFF_FIRST_MS 100u
#define THAW_BACKOFF_MAX_MS 10000u
#define THAW_BACKOFF_RESET_MS 30000u

/* The delay of this restart (ms), and *next becomes the one after it.
 * ready_for_ms: how long the process that exited was ready (0: never). */
static inline unsigned thaw_backoff_take(unsigned *next, uint64_t ready_for_ms)
{
    unsigned d;

    if (ready_for_ms >= THAW_BACKOFF_RESET_MS)
        *next = 0;
    d = *next;
    if (d == 0)
        *next = THAW_BACKOFF_FIRST_MS;
    else
        *next = d >= THAW_BACKOFF_MAX_MS / 2 ? THAW_BACKOFF_MAX_MS : d * 2;
    return d;
}

#endif
