#include "profile.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct parse_ctx {
    char *err;
    size_t err_len;
};

__attribute__((format(printf, 2, 3))) static int
fail(struct parse_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, ctx->err_len, fmt, ap);
    va_end(ap);
    return -1;
}

enum key_kind {
    KEY_MS,      /* milliseconds in JSON, microseconds in memory (uint32) */
    KEY_PERCENT, /* double */
    KEY_UINT,    /* whole number (uint32) */
};

struct key_spec {
    const char *name;
    enum key_kind kind;
    double min;
    double max;
    size_t offset;
};

#define PARAM(field) offsetof(struct tw_impair_params, field)

static const struct key_spec link_keys[] = {
    {"delay_ms", KEY_MS, 0, 60000, PARAM(delay_us)},
    {"jitter_ms", KEY_MS, 0, 60000, PARAM(jitter_us)},
    {"loss_percent", KEY_PERCENT, 0, 100, PARAM(loss_percent)},
    {"duplicate_percent", KEY_PERCENT, 0, 100, PARAM(duplicate_percent)},
    {"reorder_percent", KEY_PERCENT, 0, 100, PARAM(reorder_percent)},
    {"reorder_extra_ms", KEY_MS, 0, 60000, PARAM(reorder_extra_us)},
    {"corrupt_percent", KEY_PERCENT, 0, 100, PARAM(corrupt_percent)},
    {"rate_kbit", KEY_UINT, 0, 10000000, PARAM(rate_kbit)},
    {"queue_packets", KEY_UINT, 1, TW_IMPAIR_QUEUE_MAX, PARAM(queue_packets)},
};

static const struct key_spec ge_keys[] = {
    {"p_good_to_bad", KEY_PERCENT, 0, 100, PARAM(ge.p_good_to_bad)},
    {"p_bad_to_good", KEY_PERCENT, 0, 100, PARAM(ge.p_bad_to_good)},
    {"loss_in_good", KEY_PERCENT, 0, 100, PARAM(ge.loss_in_good)},
    {"loss_in_bad", KEY_PERCENT, 0, 100, PARAM(ge.loss_in_bad)},
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct key_spec *find_key(const struct key_spec *keys,
                                       size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static int in_list(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return 1;
    return 0;
}

/* Rejects repeated keys, because cJSON keeps every copy and reads the first. */
static int check_duplicates(struct parse_ctx *ctx, const cJSON *obj,
                            const char *path)
{
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return fail(ctx, "%s%s: key appears more than once", path,
                            a->string);
    return 0;
}

static int set_number(struct parse_ctx *ctx, const struct key_spec *key,
                      const cJSON *item, const char *path,
                      struct tw_impair_params *params)
{
    if (!cJSON_IsNumber(item))
        return fail(ctx, "%s%s: expected a number", path, key->name);
    double v = item->valuedouble;
    if (!isfinite(v) || v < key->min || v > key->max)
        return fail(ctx, "%s%s: must be between %g and %g, got %g", path,
                    key->name, key->min, key->max, v);

    char *field = (char *)params + key->offset;
    switch (key->kind) {
    case KEY_MS: {
        uint32_t us = (uint32_t)llround(v * 1000.0);
        memcpy(field, &us, sizeof(us));
        break;
    }
    case KEY_PERCENT:
        memcpy(field, &v, sizeof(v));
        break;
    case KEY_UINT: {
        if (v != floor(v))
            return fail(ctx, "%s%s: must be a whole number, got %g", path,
                        key->name, v);
        uint32_t n = (uint32_t)v;
        memcpy(field, &n, sizeof(n));
        break;
    }
    }
    return 0;
}

static int apply_ge(struct parse_ctx *ctx, const cJSON *obj, const char *path,
                    struct tw_impair_params *params)
{
    if (!cJSON_IsObject(obj))
        return fail(ctx, "%sgilbert_elliott: expected an object", path);
    if (check_duplicates(ctx, obj, path) < 0)
        return -1;
    char sub[160];
    snprintf(sub, sizeof(sub), "%sgilbert_elliott.", path);
    for (const cJSON *item = obj->child; item; item = item->next) {
        const struct key_spec *key =
            find_key(ge_keys, COUNT_OF(ge_keys), item->string);
        if (!key)
            return fail(ctx, "%s%s: unknown key", sub, item->string);
        if (set_number(ctx, key, item, sub, params) < 0)
            return -1;
    }
    params->ge_enabled = 1;
    return 0;
}

/*
 * Applies the impairment keys of obj to params. Keys in `skip` belong to
 * the caller; any other key is an error. path prefixes error messages.
 */
static int apply_link(struct parse_ctx *ctx, const cJSON *obj,
                      const char *path, const char *const *skip,
                      struct tw_impair_params *params)
{
    if (!cJSON_IsObject(obj))
        return fail(ctx, "%s: expected an object", path[0] ? path : "profile");
    if (check_duplicates(ctx, obj, path) < 0)
        return -1;
    for (const cJSON *item = obj->child; item; item = item->next) {
        if (in_list(skip, item->string))
            continue;
        if (strcmp(item->string, "gilbert_elliott") == 0) {
            if (apply_ge(ctx, item, path, params) < 0)
                return -1;
            continue;
        }
        const struct key_spec *key =
            find_key(link_keys, COUNT_OF(link_keys), item->string);
        if (!key)
            return fail(ctx, "%s%s: unknown key", path, item->string);
        if (set_number(ctx, key, item, path, params) < 0)
            return -1;
    }
    return 0;
}

/*
 * Applies obj's own keys to both directions, then its "up" and "down"
 * objects to their direction only.
 */
static int apply_level(struct parse_ctx *ctx, const cJSON *obj,
                       const char *path, const char *const *skip,
                       struct tw_impair_params params[TW_DIR_COUNT])
{
    for (int d = 0; d < TW_DIR_COUNT; d++)
        if (apply_link(ctx, obj, path, skip, &params[d]) < 0)
            return -1;
    for (int d = 0; d < TW_DIR_COUNT; d++) {
        const char *name = tw_dir_name((enum tw_dir)d);
        const cJSON *sub = cJSON_GetObjectItemCaseSensitive(obj, name);
        if (!sub)
            continue;
        char sub_path[128];
        snprintf(sub_path, sizeof(sub_path), "%s%s.", path, name);
        if (apply_link(ctx, sub, sub_path, NULL, &params[d]) < 0)
            return -1;
    }
    return 0;
}

static int copy_string(struct parse_ctx *ctx, const cJSON *root,
                       const char *key, char *dst, size_t dst_len,
                       int required)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) {
        if (required)
            return fail(ctx, "%s: missing; name where the numbers come from",
                        key);
        return 0;
    }
    if (!cJSON_IsString(item))
        return fail(ctx, "%s: expected a string", key);
    size_t n = strlen(item->valuestring);
    if (n >= dst_len)
        return fail(ctx, "%s: longer than %zu characters", key, dst_len - 1);
    memcpy(dst, item->valuestring, n + 1);
    return 0;
}

static int parse_phases(struct parse_ctx *ctx, const cJSON *phases,
                        struct tw_impair_profile *out)
{
    static const char *const phase_skip[] = {"duration_s", "up", "down",
                                             NULL};
    if (!cJSON_IsArray(phases))
        return fail(ctx, "phases: expected an array");
    int count = cJSON_GetArraySize(phases);
    if (count < 1 || count > (int)TW_IMPAIR_MAX_PHASES)
        return fail(ctx, "phases: must hold 1 to %u phases, got %d",
                    TW_IMPAIR_MAX_PHASES, count);

    int i = 0;
    for (const cJSON *ph = phases->child; ph; ph = ph->next, i++) {
        char path[32];
        snprintf(path, sizeof(path), "phases[%d].", i);
        if (!cJSON_IsObject(ph))
            return fail(ctx, "phases[%d]: expected an object", i);
        const cJSON *dur = cJSON_GetObjectItemCaseSensitive(ph, "duration_s");
        if (!cJSON_IsNumber(dur))
            return fail(ctx, "%sduration_s: missing or not a number", path);
        double s = dur->valuedouble;
        if (!isfinite(s) || s < 0.001 || s > 86400.0)
            return fail(ctx, "%sduration_s: must be between 0.001 and 86400,"
                        " got %g", path, s);

        struct tw_impair_phase *phase = &out->phases[i];
        phase->duration_us = (uint64_t)llround(s * 1e6);
        phase->dir[TW_DIR_UP] = out->base[TW_DIR_UP];
        phase->dir[TW_DIR_DOWN] = out->base[TW_DIR_DOWN];
        if (apply_level(ctx, ph, path, phase_skip, phase->dir) < 0)
            return -1;
    }
    out->phase_count = (unsigned)count;
    return 0;
}

int tw_profile_parse(const char *text, size_t len,
                     struct tw_impair_profile *out, char *err, size_t err_len)
{
    static const char *const top_skip[] = {
        "name", "source", "description", "up", "down", "phases",
        "phases_repeat", NULL};
    struct parse_ctx ctx = {err, err_len};
    memset(out, 0, sizeof(*out));
    tw_impair_params_default(&out->base[TW_DIR_UP]);
    tw_impair_params_default(&out->base[TW_DIR_DOWN]);

    if (len > TW_PROFILE_MAX_BYTES)
        return fail(&ctx, "larger than %u bytes", TW_PROFILE_MAX_BYTES);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root)
        return fail(&ctx, "invalid JSON near byte %td",
                    cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - text : 0);

    int rc = -1;
    if (!cJSON_IsObject(root)) {
        fail(&ctx, "top level: expected an object");
        goto done;
    }
    if (copy_string(&ctx, root, "name", out->name, sizeof(out->name), 0) < 0)
        goto done;
    if (copy_string(&ctx, root, "source", out->source, sizeof(out->source),
                    1) < 0)
        goto done;
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
    if (desc && !cJSON_IsString(desc)) {
        fail(&ctx, "description: expected a string");
        goto done;
    }
    if (apply_level(&ctx, root, "", top_skip, out->base) < 0)
        goto done;

    const cJSON *repeat =
        cJSON_GetObjectItemCaseSensitive(root, "phases_repeat");
    if (repeat && !cJSON_IsBool(repeat)) {
        fail(&ctx, "phases_repeat: expected true or false");
        goto done;
    }
    out->phases_repeat = cJSON_IsTrue(repeat);

    const cJSON *phases = cJSON_GetObjectItemCaseSensitive(root, "phases");
    if (phases && parse_phases(&ctx, phases, out) < 0)
        goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

static int is_profile_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Reads a regular file of at most TW_PROFILE_MAX_BYTES into a new buffer. */
static char *read_small_file(const char *path, size_t *len_out,
                             struct parse_ctx *ctx)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail(ctx, "cannot open profile %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fail(ctx, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size > (off_t)TW_PROFILE_MAX_BYTES) {
        fail(ctx, "%s: larger than %u bytes", path, TW_PROFILE_MAX_BYTES);
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st.st_size;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fail(ctx, "%s: out of memory", path);
        close(fd);
        return NULL;
    }
    size_t len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len != cap) {
        fail(ctx, "%s: short read", path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

int tw_profile_load(const char *name_or_path, const char *dir,
                    struct tw_impair_profile *out, char *err, size_t err_len)
{
    struct parse_ctx ctx = {err, err_len};
    char path[4096];
    const char *stem_start;

    if (strchr(name_or_path, '/') || ends_with(name_or_path, ".json")) {
        if (snprintf(path, sizeof(path), "%s", name_or_path) >=
            (int)sizeof(path))
            return fail(&ctx, "profile path too long");
        const char *slash = strrchr(name_or_path, '/');
        stem_start = slash ? slash + 1 : name_or_path;
    } else {
        if (!is_profile_name(name_or_path))
            return fail(&ctx, "invalid profile name '%s': use letters, digits,"
                        " '-' or '_', or give a path to a .json file",
                        name_or_path);
        if (snprintf(path, sizeof(path), "%s/%s.json", dir, name_or_path) >=
            (int)sizeof(path))
            return fail(&ctx, "profile path too long");
        stem_start = name_or_path;
    }

    size_t len = 0;
    char *text = read_small_file(path, &len, &ctx);
    if (!text)
        return -1;

    char inner[384];
    int rc = tw_profile_parse(text, len, out, inner, sizeof(inner));
    free(text);
    if (rc < 0)
        return fail(&ctx, "profile %s: %s", path, inner);

    if (out->name[0] == '\0') {
        size_t n = strcspn(stem_start, ".");
        if (n >= sizeof(out->name))
            n = sizeof(out->name) - 1;
        memcpy(out->name, stem_start, n);
        out->name[n] = '\0';
    }
    return 0;
}
