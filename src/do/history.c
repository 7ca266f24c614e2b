/* <state_dir>/do/migrations.json: {"tags": ["v1", "v2"]}. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bind/bind.h"
#include "do/history.h"

json_t *thaw__do_history_load(const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc, *tags;
    size_t i;
    json_t *t;

    if (access(path, F_OK) != 0 && errno == ENOENT)
        return json_array();
    doc = json_load_file(path, 0, &jerr);
    if (!doc) {
        snprintf(err, errlen, "%s: %s", path, jerr.text);
        return NULL;
    }
    tags = json_object_get(doc, "tags");
    if (!json_is_array(tags))
        goto bad;
    json_array_foreach(tags, i, t)
        if (!json_is_string(t))
            goto bad;
    json_incref(tags);
    json_decref(doc);
    return tags;
bad:
    snprintf(err, errlen, "%s: not a list of migration tags", path);
    json_decref(doc);
    return NULL;
}

int thaw__do_history_save(const char *path, json_t *tags)
{
    char tmp[4096], dir[4096];
    json_t *doc = json_pack("{s:O}", "tags", tags);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    char *slash;
    int fd, rc = 0;
    size_t n;

    json_decref(doc);
    if (!text)
        return -ENOMEM;
    snprintf(dir, sizeof(dir), "%s", path);
    if ((slash = strrchr(dir, '/')))
        *slash = 0;
    if ((rc = thaw_bind_mkdirs(dir)) < 0)
        goto out;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n || fsync(fd) < 0)
        rc = errno ? -errno : -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc == 0 && (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd); /* the rename itself */
        close(fd);
    }
    if (rc < 0)
        unlink(tmp);
out:
    free(text);
    return rc;
}
