#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/idname.h"

static int keeps(unsigned char c, size_t at)
{
    if (c == '.')
        return at > 0;
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* FNV-1a, 64 bits, from a given basis: two bases give 128 bits. Not a
 * cryptographic hash; ids are the worker's own and name only its data. */
static uint64_t fnv1a(const unsigned char *p, size_t n, uint64_t h)
{
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int thaw_id_filename(const char *id, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)id;
    size_t i, k = 0, need = 0;

    if (len == 0)
        return -1;
    for (i = 0; i < len; i++)
        need += keeps(p[i], i) ? 1 : 3;
    for (i = 0; i < len; i++) {
        size_t w = keeps(p[i], i) ? 1 : 3;
        if (need > THAW_IDNAME_MAX_ESCAPED && k + w > THAW_IDNAME_KEEP)
            break;
        if (w == 1) {
            out[k++] = (char)p[i];
        } else {
            out[k++] = '%';
            out[k++] = hex[p[i] >> 4];
            out[k++] = hex[p[i] & 15];
        }
    }
    if (need > THAW_IDNAME_MAX_ESCAPED)
        k += (size_t)snprintf(out + k, THAW_IDNAME_SIZE - k, "~%016llx%016llx",
                              (unsigned long long)fnv1a(p, len, 0xcbf29ce484222325ULL),
                              (unsigned long long)fnv1a(p, len, 0x84222325cbf29ce4ULL));
    out[k] = '\0';
    return (int)k;
}

int thaw_plain_name(const char *s, size_t max)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (i = 0; i < n; i++)
        if (!keeps((unsigned char)s[i], 1)) /* '.' anywhere, as at 1 */
            return 0;
    return 1;
}
