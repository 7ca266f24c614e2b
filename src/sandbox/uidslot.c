/* Which worker-version slots (host uids, uids.h) are in use: one bit each.
 * The supervisor's loop is its only user. */
#include <stdint.h>
#include <unistd.h>

#include "sandbox/uids.h"

static uint64_t used[THAW_SB_UID_COUNT / 64];
static unsigned next_slot = 1;

unsigned thaw_sb_uid_take(void)
{
    unsigned i, s;

    if (geteuid() != 0)
        return 0;
    /* round-robin: a slot given back is not reused at once, so a process
     * of a version that is still dying never meets its successor */
    for (i = 0; i < THAW_SB_UID_COUNT - 1; i++) {
        s = 1 + (next_slot - 1 + i) % (THAW_SB_UID_COUNT - 1);
        if (!(used[s / 64] & (1ULL << (s % 64)))) {
            used[s / 64] |= 1ULL << (s % 64);
            next_slot = s + 1;
            return s;
        }
    }
    return 0;
}

void thaw_sb_uid_put(unsigned slot)
{
    if (slot > 0 && slot < THAW_SB_UID_COUNT)
        used[slot / 64] &= ~(1ULL << (slot % 64));
}
