/*
 * Loading of impairment profiles from JSON (docs/NETLAB.md is the
 * schema). Every key is checked: an unknown key, a wrong type or a value
 * out of range rejects the whole profile with a one-line message.
 */
#ifndef TW_RELAY_PROFILE_H
#define TW_RELAY_PROFILE_H

#include "impair.h"

#include <stddef.h>

/* Largest profile file accepted, in bytes. */
#define TW_PROFILE_MAX_BYTES 65536u

/*
 * Parses the JSON text of a profile into *out. Returns 0, or -1 with a
 * message naming the offending key written to err (err_len bytes).
 */
int tw_profile_parse(const char *text, size_t len,
                     struct tw_impair_profile *out, char *err, size_t err_len)
    __attribute__((warn_unused_result));

/*
 * Loads a profile given as a file path (anything containing '/' or ending
 * in ".json") or as a name looked up as DIR/NAME.json in dir. Returns 0,
 * or -1 with a message in err.
 */
int tw_profile_load(const char *name_or_path, const char *dir,
                    struct tw_impair_profile *out, char *err, size_t err_len)
    __attribute__((warn_unused_result));

#endif
