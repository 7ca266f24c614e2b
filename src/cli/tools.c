/* `thaw sync`, `thaw init`, `thaw types`, `thaw d1` and the admin API clients
 * (`thaw deploy`, `list`, `delete`, `rollback`, `tail`, `routes`): developer tools written in
 * Python (python/thaw_tools), run with Debian's interpreter. They are
 * commands of the CLI, not part of the supervisor: no Python runs in a
 * serving thaw. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define TOOLS_PYTHON "/usr/bin/python3"

static void python_dir(char *out, size_t n)
{
    const char *env = getenv("THAW_PYTHON_DIR");
    char tmp[PATH_MAX];

    if (env && *env)
        snprintf(out, n, "%s", env);
    else {
        snprintf(tmp, sizeof(tmp), "%s/../python", thaw_exe_dir());
        if (!realpath(tmp, out))
            snprintf(out, n, "%s", tmp);
    }
}

int thaw_cmd_tool(int argc, char **argv)
{
    char pydir[PATH_MAX];
    char **args = calloc((size_t)argc + 4, sizeof(char *));
    int i;

    if (!args)
        return 1;
    python_dir(pydir, sizeof(pydir));
    setenv("PYTHONPATH", pydir, 1);
    setenv("THAW_EXE", thaw_exe_dir(), 1);
    args[0] = TOOLS_PYTHON;
    args[1] = "-m";
    args[2] = "thaw_tools";
    for (i = 0; i < argc; i++)
        args[3 + i] = argv[i]; /* argv[0] is the command name */
    execv(TOOLS_PYTHON, args);
    fprintf(stderr, "thaw: cannot run %s for `thaw %s`: %s\n", TOOLS_PYTHON, argv[0],
            strerror(errno));
    return 127;
}
