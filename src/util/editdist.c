#include <string.h>

#include "util/editdist.h"

size_t thaw_edit_distance(const char *a, const char *b)
{
    enum { MAXN = 96 };
    size_t row[MAXN + 1], i, j, na = strlen(a), nb = strlen(b);

    if (na > MAXN || nb > MAXN)
        return (size_t)-1;
    for (j = 0; j <= nb; j++)
        row[j] = j;
    for (i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (j = 1; j <= nb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}
