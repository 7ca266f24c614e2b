/* The sandbox decision of `thaw dev` and `thaw serve`, and `thaw doctor`.
 *
 * Defaults: `thaw serve` hosts code its operator did not write, so it
 * refuses to start when a layer is missing; `thaw dev` runs the
 * developer's own code, so it says loudly what is missing and goes on
 * with what there is (a laptop or CI box without user namespaces is not
 * blocked). `--no-sandbox` turns it off in both, with a warning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "cli/cli.h"
#include "sandbox/cgroup.h"
#include "sandbox/probe.h"
#include "zygote/client.h"

static char cgroup_path[512];

static void remove_cgroup(void) { thaw_sb_cgroup_remove(cgroup_path); }
static void remove_memcg(void) { thaw_memcg_run_remove(); }

/* The run's memory cgroup, and one line saying what counts memory: never
 * a silent fallback to the weaker per-instance count. */
static void memory_accounting(const char *cmd, struct thaw_sb_probe *p)
{
    char path[600];

    if (p->memcg && thaw_memcg_run_create(p->memcg, p->memcg_base, path, sizeof(path),
                                          p->memcg_why, sizeof(p->memcg_why)) == 0) {
        const char *cpu[2];
        int n_cpu = thaw_cpucg_dirs(cpu, 2);

        atexit(remove_memcg);
        thaw_zygote_set_memcg(path);
        thaw_zygote_set_cpucg(cpu, n_cpu);
        fprintf(stderr, "thaw %s: memory: %s (%s): a version's instances, their children, "
                "memfds and /tmp all count\n", cmd, thaw_sb_probe_memory(p), path);
        fprintf(stderr, "thaw %s: cpu: %s per worker version: the CPU of all its processes "
                "counts, children and work after a response included (cpu_percent)\n", cmd,
                thaw_cpucg_name());
        return;
    }
    p->memcg = THAW_MEMCG_NONE;
    fprintf(stderr, "thaw %s: memory: %s (from /proc; memfds, /tmp and child processes are "
            "not counted): no memory cgroup: %s\n", cmd, thaw_sb_probe_memory(p),
            p->memcg_why);
}

/* The layers the zygote itself needs; without them it cannot start
 * sandboxed at all. */
static int core_ok(const struct thaw_sb_probe *p)
{
    return p->ok[THAW_SB_USERNS] && p->ok[THAW_SB_MOUNTNS] && p->ok[THAW_SB_NETNS] &&
           p->ok[THAW_SB_PIDNS] && p->ok[THAW_SB_SECCOMP];
}

int thaw_cli_sandbox(const char *cmd, int no_sandbox, int strict)
{
    struct thaw_sb_probe p;

    if (no_sandbox) {
        fprintf(stderr,
                "thaw %s: WARNING: --no-sandbox: workers run with thaw's own rights "
                "(files, network, processes). Never use it for code you did not write.\n",
                cmd);
        thaw_zygote_set_sandbox(0, NULL);
        fprintf(stderr, "thaw %s: memory: counted per instance only (no sandbox, no memory "
                "cgroup)\n", cmd);
        return 0;
    }
    thaw_sb_probe(&p);
    if (thaw_sb_probe_complete(&p)) {
        int partial = p.ok[THAW_SB_LANDLOCK] && p.why[THAW_SB_LANDLOCK][0];
        fprintf(stderr, "thaw %s: sandbox on: namespaces (user, mount, network, pid), "
                        "seccomp, %s, %s%s\n", cmd,
                p.ok[THAW_SB_LANDLOCK] ? "landlock" : "no landlock (not root)",
                p.root ? "pids cgroup" : "RLIMIT_NPROC",
                partial ? " (landlock without signal scoping: see thaw doctor)" : "");
    } else if (strict || !core_ok(&p)) {
        fprintf(stderr, "thaw %s: the sandbox is incomplete on this machine:\n", cmd);
        thaw_sb_probe_print(&p, stderr, "  ");
        if (strict) {
            fprintf(stderr, "thaw %s: refusing to run other people's code unsandboxed. "
                            "Fix the missing layers (docs/security.md), or pass "
                            "--no-sandbox to run without a sandbox.\n", cmd);
            return -1;
        }
        fprintf(stderr, "thaw %s: WARNING: running WITHOUT a sandbox: your worker has your "
                        "rights. (thaw serve refuses this; see thaw doctor)\n", cmd);
        thaw_zygote_set_sandbox(0, NULL);
        fprintf(stderr, "thaw %s: memory: counted per instance only (no sandbox, no memory "
                "cgroup)\n", cmd);
        return 0;
    } else {
        fprintf(stderr, "thaw %s: WARNING: sandbox on, but partial:\n", cmd);
        thaw_sb_probe_print(&p, stderr, "  ");
    }
    /* the workers share thaw's uid: they must not read its memory */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (thaw_sb_cgroup_create(&p, cgroup_path, sizeof(cgroup_path)) == 0)
        atexit(remove_cgroup);
    thaw_zygote_set_sandbox(1, cgroup_path);
    memory_accounting(cmd, &p);
    /* beside the run groups just made: those of thaws that were killed */
    thaw_cgroup_sweep(cmd, stderr);
    return 1;
}

int thaw_cmd_doctor(int argc, char **argv)
{
    struct thaw_sb_probe p;
    int complete;

    thaw_sb_probe(&p);
    complete = thaw_sb_probe_complete(&p);
    printf("thaw doctor: the sandbox on this machine (running as %s)\n\n",
           p.root ? "root" : "an ordinary user");
    thaw_sb_probe_print(&p, stdout, "  ");
    thaw_sb_probe_print_memory(&p, stdout, "  ");
    printf("\n%s\n", complete
                         ? "thaw serve and thaw dev run every worker sandboxed."
                         : "thaw serve refuses to start until the missing layers are fixed "
                           "(or is given --no-sandbox);\nthaw dev warns and runs with what "
                           "there is. See docs/security.md.");
    return complete ? 0 : 1;
}
