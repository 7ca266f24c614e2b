/* Secrets for `thaw dev`: a .dev.vars file in the worker directory, in the
 * dotenv format wrangler reads (KEY=value lines, # comments, optional
 * quotes, `export ` prefixes). Its values reach env as strings and are kept
 * out of logs and `thaw types` output. */
#ifndef THAW_DEVVARS_H
#define THAW_DEVVARS_H

#include <jansson.h>
#include <stddef.h>

/* Parses text into out (an object: name -> string). file names the source
 * in messages. Returns 0, or -1 with "FILE:LINE: what is wrong" in err. */
int thaw_devvars_parse(const char *text, size_t len, const char *file,
                       json_t *out, char *err, size_t errlen);

/* Reads DIR/.dev.vars when it exists. Returns a new object (empty when
 * there is no file), or NULL with err set. */
json_t *thaw_devvars_load(const char *dir, char *err, size_t errlen);

#endif
