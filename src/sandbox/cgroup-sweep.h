/* Run groups left behind by thaw processes that no longer run
 * (cgroup-sweep.c), and the removal of a tree of groups they share with
 * cgroup.c. A thaw that exits removes its run groups (thaw-<pid>, in each
 * hierarchy it uses); one that was SIGKILLed, crashed or was taken by
 * the OOM killer leaves them, in every hierarchy, for ever: a host that
 * restarts thaw after crashes would gather one set per crash. */
#ifndef THAW_SANDBOX_CGROUP_SWEEP_H
#define THAW_SANDBOX_CGROUP_SWEEP_H

/* The first group of a tree that would not go, and why (an errno). */
struct thaw__cg_stuck {
    char dir[1024];
    int err;
};

/* cgroup.c: removes every group below dir, deepest first, killing what
 * is still in each, and dir itself unless keep_top. Returns how many
 * groups went; stuck (may be NULL) gets the first that stayed ("" when
 * none did). */
int thaw__cg_remove_tree(const char *dir, int keep_top, struct thaw__cg_stuck *stuck);

/* cgroup.c calls it with each run group it made: the directory it is in
 * is swept by thaw_cgroup_sweep (cgroup.h). */
void thaw__cg_sweep_add(const char *run);

#endif
