/* The state directory of thaw serve. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/router.h"
#include "serve/store.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

int thaw_rmtree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

static void worker_dir(const char *dir, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/workers/%s", dir, name);
}

void thaw_store_version_dir(const char *dir, const char *name, int version, char *out,
                            size_t n)
{
    snprintf(out, n, "%s/workers/%s/versions/%d", dir, name, version);
}

void thaw_store_data_dir(const char *dir, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/workers/%s/data", dir, name);
}

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Writes path atomically: temp file, fsync, rename, fsync the directory. */
static int write_atomic(const char *path, const char *text, mode_t mode)
{
    char tmp[PATH_MAX], parent[PATH_MAX];
    size_t n = strlen(text), off = 0;
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -1;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w <= 0 && errno != EINTR) {
            close(fd);
            unlink(tmp);
            return -1;
        }
        if (w > 0)
            off += (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    snprintf(parent, sizeof(parent), "%s", path);
    if (strrchr(parent, '/'))
        *strrchr(parent, '/') = '\0';
    fsync_dir(parent);
    return 0;
}

static int is_number(const char *s, int *out)
{
    char *end;
    long v;

    if (!s[0] || s[0] == '0')
        return 0;
    v = strtol(s, &end, 10);
    if (*end || v <= 0 || v > 1000000000)
        return 0;
    *out = (int)v;
    return 1;
}

/* A version directory with no .json never finished its build. */
static void drop_unfinished(const char *dir, const char *name)
{
    char path[PATH_MAX], meta[PATH_MAX + 32];
    struct dirent *e;
    DIR *d;
    int v;

    snprintf(path, sizeof(path), "%s/workers/%s/versions", dir, name);
    if (!(d = opendir(path)))
        return;
    while ((e = readdir(d))) {
        if (!is_number(e->d_name, &v))
            continue;
        snprintf(meta, sizeof(meta), "%s/%d.json", path, v);
        if (access(meta, F_OK) < 0) {
            char vd[PATH_MAX];
            thaw_store_version_dir(dir, name, v, vd, sizeof(vd));
            thaw_rmtree(vd);
        }
    }
    closedir(d);
}

int thaw_store_open(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct dirent *e;
    DIR *d;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the state directory %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/workers", dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (!(d = opendir(path))) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while ((e = readdir(d))) {
        char sub[PATH_MAX + 300];
        if (strncmp(e->d_name, ".deleted-", 9) == 0) {
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            thaw_rmtree(sub);
        } else if (thaw_worker_name_ok(e->d_name)) {
            drop_unfinished(dir, e->d_name);
        }
    }
    closedir(d);
    return 0;
}

int thaw_store_token(const char *dir, char *tok, size_t n, char *err, size_t errlen)
{
    const char *env = getenv("THAW_API_TOKEN");
    char path[PATH_MAX];
    unsigned char raw[32];
    size_t i;
    FILE *f;
    int fd;

    if (env && *env) {
        if (strlen(env) < 16 || strlen(env) >= n) {
            snprintf(err, errlen, "THAW_API_TOKEN must be 16 to %zu characters long", n - 1);
            return -1;
        }
        snprintf(tok, n, "%s", env);
        return 0;
    }
    snprintf(path, sizeof(path), "%s/token", dir);
    if ((f = fopen(path, "re"))) {
        if (!fgets(tok, (int)n, f)) {
            fclose(f);
            snprintf(err, errlen, "%s is empty: delete it to have a new token made", path);
            return -1;
        }
        fclose(f);
        tok[strcspn(tok, "\r\n")] = '\0';
        if (strlen(tok) < 16) {
            snprintf(err, errlen, "the token in %s is shorter than 16 characters", path);
            return -1;
        }
        return 0;
    }
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw) || n < 2 * sizeof(raw) + 1) {
        snprintf(err, errlen, "cannot draw a random token: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < sizeof(raw); i++)
        snprintf(tok + 2 * i, 3, "%02x", raw[i]);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || write(fd, tok, strlen(tok)) != (ssize_t)strlen(tok) ||
        write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

char **thaw_store_workers(const char *dir)
{
    char path[PATH_MAX];
    struct dirent *e;
    char **list = NULL;
    size_t n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/workers", dir);
    list = calloc(1, sizeof(char *));
    if (!list || !(d = opendir(path)))
        return list;
    while ((e = readdir(d))) {
        char **nl;
        if (!thaw_worker_name_ok(e->d_name) || thaw_store_current(dir, e->d_name) <= 0)
            continue;
        if (!(nl = realloc(list, (n + 2) * sizeof(char *))))
            break;
        list = nl;
        list[n++] = strdup(e->d_name);
        list[n] = NULL;
    }
    closedir(d);
    return list;
}

void thaw_store_free_list(char **list)
{
    char **p;

    for (p = list; p && *p; p++)
        free(*p);
    free(list);
}

int thaw_store_current(const char *dir, const char *name)
{
    char path[PATH_MAX], buf[32];
    FILE *f;
    int v = 0;

    snprintf(path, sizeof(path), "%s/workers/%s/current", dir, name);
    if (!(f = fopen(path, "re")))
        return 0;
    if (fgets(buf, sizeof(buf), f)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (!is_number(buf, &v))
            v = 0;
    }
    fclose(f);
    return v;
}

int thaw_store_set_current(const char *dir, const char *name, int version)
{
    char path[PATH_MAX], text[32];

    snprintf(path, sizeof(path), "%s/workers/%s/current", dir, name);
    snprintf(text, sizeof(text), "%d\n", version);
    return write_atomic(path, text, 0644);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

int *thaw_store_versions(const char *dir, const char *name, int *n)
{
    char path[PATH_MAX];
    struct dirent *e;
    int *out = NULL, k = 0, v;
    DIR *d;

    *n = 0;
    snprintf(path, sizeof(path), "%s/workers/%s/versions", dir, name);
    if (!(d = opendir(path)))
        return NULL;
    while ((e = readdir(d))) {
        char num[32];
        size_t len = strlen(e->d_name);
        int *no;
        if (len < 6 || len > 20 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        snprintf(num, sizeof(num), "%.*s", (int)(len - 5), e->d_name);
        if (!is_number(num, &v) || !(no = realloc(out, (size_t)(k + 1) * sizeof(int))))
            continue;
        out = no;
        out[k++] = v;
    }
    closedir(d);
    if (out)
        qsort(out, (size_t)k, sizeof(int), cmp_int);
    *n = k;
    return out;
}

int thaw_store_new_version(const char *dir, const char *name, char *path, size_t n,
                           char *err, size_t errlen)
{
    char wd[PATH_MAX], vd[PATH_MAX + 16];
    struct dirent *e;
    int max = 0, v;
    DIR *d;

    worker_dir(dir, name, wd, sizeof(wd));
    snprintf(vd, sizeof(vd), "%s/versions", wd);
    if ((mkdir(wd, 0755) < 0 && errno != EEXIST) || (mkdir(vd, 0755) < 0 && errno != EEXIST)) {
        snprintf(err, errlen, "cannot create %s: %s", vd, strerror(errno));
        return -1;
    }
    if ((d = opendir(vd))) {
        while ((e = readdir(d))) {
            char num[32];
            snprintf(num, sizeof(num), "%.*s", (int)strcspn(e->d_name, "."), e->d_name);
            if (is_number(num, &v) && v > max)
                max = v;
        }
        closedir(d);
    }
    thaw_store_version_dir(dir, name, max + 1, path, n);
    if (mkdir(path, 0755) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    /* read by the worker's own uid as root (bundle.c): not the umask's call */
    chmod(wd, 0755);
    chmod(vd, 0755);
    chmod(path, 0755);
    return max + 1;
}

int thaw_store_make_version(const char *dir, const char *name, int version, char *path,
                            size_t n, char *err, size_t errlen)
{
    char wd[PATH_MAX], vd[PATH_MAX + 16];

    worker_dir(dir, name, wd, sizeof(wd));
    snprintf(vd, sizeof(vd), "%s/versions", wd);
    if ((mkdir(wd, 0755) < 0 && errno != EEXIST) || (mkdir(vd, 0755) < 0 && errno != EEXIST)) {
        snprintf(err, errlen, "cannot create %s: %s", vd, strerror(errno));
        return -1;
    }
    thaw_store_version_dir(dir, name, version, path, n);
    thaw_rmtree(path);
    if (mkdir(path, 0755) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    chmod(wd, 0755); /* as thaw_store_new_version */
    chmod(vd, 0755);
    chmod(path, 0755);
    return 0;
}

void thaw_store_forget_version(const char *dir, const char *name, int version)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/workers/%s/versions/%d.json", dir, name, version);
    unlink(path);
    thaw_store_drop_version(dir, name, version);
}

void thaw_store_drop_version(const char *dir, const char *name, int version)
{
    char path[PATH_MAX];

    thaw_store_version_dir(dir, name, version, path, sizeof(path));
    thaw_rmtree(path);
}

int thaw_store_write_meta(const char *dir, const char *name, int version,
                          const char *json)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/workers/%s/versions/%d.json", dir, name, version);
    return write_atomic(path, json, 0644);
}

char *thaw_store_read_meta(const char *dir, const char *name, int version)
{
    char path[PATH_MAX], *buf;
    FILE *f;
    long len;

    snprintf(path, sizeof(path), "%s/workers/%s/versions/%d.json", dir, name, version);
    if (!(f = fopen(path, "re")))
        return NULL;
    if (fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 || len > 65536 ||
        fseek(f, 0, SEEK_SET) < 0 || !(buf = calloc(1, (size_t)len + 1))) {
        fclose(f);
        return NULL;
    }
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int thaw_store_delete(const char *dir, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX + 64];
    unsigned rnd = 0;

    /* one rename makes it gone even if the removal is cut short */
    worker_dir(dir, name, from, sizeof(from));
    if (getrandom(&rnd, sizeof(rnd), 0) < 0)
        rnd = (unsigned)getpid();
    snprintf(to, sizeof(to), "%s/workers/.deleted-%s-%08x", dir, name, rnd);
    if (rename(from, to) < 0)
        return -1;
    return thaw_rmtree(to);
}

char *thaw_store_read_grants(const char *dir, int *missing)
{
    char path[PATH_MAX], *buf = NULL;
    long len;
    FILE *f;

    snprintf(path, sizeof(path), "%s/grants.json", dir);
    *missing = 0;
    if (!(f = fopen(path, "re"))) {
        *missing = errno == ENOENT;
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && len <= (16 << 20) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = calloc(1, (size_t)len + 1)) &&
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int thaw_store_write_grants(const char *dir, const char *json)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/grants.json", dir);
    return write_atomic(path, json, 0600);
}
