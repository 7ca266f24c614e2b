/* The host ids of workers when thaw runs as root (docs/security.md, "Which
 * uid runs what"). The zygote's user namespace maps, besides 0 -> 0, ids
 * 1..THAW_SB_UID_COUNT-1 to THAW_SB_UID_BASE+1.. on the host; each worker
 * version runs under one of them (its "slot"), which no other live
 * version holds: the supervisor takes a slot when it builds a version and
 * gives it back when the version is gone. Nothing on disk is owned by a
 * slot (a worker writes only its private tmpfs), so slots need not be
 * remembered across restarts.
 *
 * The base lies above systemd's container ranges (524288-1879048191) and
 * below its "foreign" range (2147352576-): no account of the host has
 * one of these ids unless someone made it on purpose. */
#ifndef THAW_SANDBOX_UIDS_H
#define THAW_SANDBOX_UIDS_H

#define THAW_SB_UID_BASE 1879048192u /* 0x70000000 */
#define THAW_SB_UID_COUNT 65536u

/* uidslot.c (the supervisor): a free slot (1..THAW_SB_UID_COUNT-1), or 0
 * when thaw is not root or every slot is taken (the version then runs
 * as uid 0 of its namespace, as an ordinary user's thaw does with its
 * own uid). */
unsigned thaw_sb_uid_take(void);
void thaw_sb_uid_put(unsigned slot);

#endif
