#include "config.h"

#include "crypto.h"
#include "protocol.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A config file is a few kilobytes; the cap bounds memory and parse time. */
#define CONFIG_MAX_BYTES (1024 * 1024)

/* The deepest valid config is 4 levels (root, store, starter_items, item). */
#define CONFIG_MAX_DEPTH 8

#define PATH_BUF 128
#define QUANTITY_MAX 1000000

enum key_type {
    KEY_STRING,
    KEY_U16,
    KEY_U32,
    KEY_FLOAT,
    KEY_ENUM,
    KEY_GRANTS, /* store.starter_items, parsed by parse_grants() */
};

/*
 * One configurable value. Numbers must lie in min..max (min excluded when
 * min_exclusive is set); strings must have min..max bytes.
 */
struct key_def {
    const char *path;
    enum key_type type;
    size_t offset;
    size_t size;
    double min, max;
    bool min_exclusive;
    double def;
    const char *def_text;     /* string and enum default */
    const char *const *names; /* enum values in enum order, NULL-terminated */
};

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          NULL};
static const char *const format_names[] = {"text", "json", NULL};

_Static_assert(TW_DEBUG == 0 && TW_INFO == 1 && TW_WARN == 2 && TW_ERROR == 3,
               "level_names follows enum tw_log_level");
_Static_assert(TW_LOG_TEXT == 0 && TW_LOG_JSON == 1,
               "format_names follows enum tw_log_format");
_Static_assert(sizeof(enum tw_log_level) == sizeof(unsigned) &&
                   sizeof(enum tw_log_format) == sizeof(unsigned),
               "enum keys are stored as unsigned");

static const struct tw_item_grant default_grants[] = {
    {"gold", 100},
    {"sword", 1},
    {"potion", 5},
};

#define FIELD(f) (((struct tw_config *)0)->f)

/*
 * Each macro fails to compile when the field has the wrong type or the
 * range does not fit it, so a new key cannot silently write past a field.
 */
#define TYPE_CHECK(f, T) (0 * sizeof(char[_Generic(FIELD(f), T: 1, default: -1)]))
#define FITS(cond) (0 * sizeof(char[(cond) ? 1 : -1]))

#define KEY_STR(p, f, minlen, dflt)                                             \
    {.path = p, .type = KEY_STRING,                                            \
     .offset = offsetof(struct tw_config, f) + TYPE_CHECK(f, char *),         \
     .size = sizeof FIELD(f), .min = minlen, .max = sizeof FIELD(f) - 1,      \
     .def_text = dflt}
#define KEY_U16(p, f, lo, hi, dflt)                                             \
    {.path = p, .type = KEY_U16,                                               \
     .offset = offsetof(struct tw_config, f) + TYPE_CHECK(f, uint16_t) +       \
               FITS((hi) <= UINT16_MAX && (dflt) >= (lo) && (dflt) <= (hi)),     \
     .min = lo, .max = hi, .def = dflt}
#define KEY_U32(p, f, lo, hi, dflt)                                             \
    {.path = p, .type = KEY_U32,                                               \
     .offset = offsetof(struct tw_config, f) + TYPE_CHECK(f, uint32_t) +       \
               FITS((hi) <= UINT32_MAX && (dflt) >= (lo) && (dflt) <= (hi)),     \
     .min = lo, .max = hi, .def = dflt}
#define KEY_FLOAT(p, f, lo, excl, hi, dflt)                                     \
    {.path = p, .type = KEY_FLOAT,                                             \
     .offset = offsetof(struct tw_config, f) + TYPE_CHECK(f, float),           \
     .min = lo, .max = hi, .min_exclusive = excl, .def = dflt}
#define KEY_ENUM(p, f, list, dflt)                                              \
    {.path = p, .type = KEY_ENUM,                                              \
     .offset = offsetof(struct tw_config, f), .size = sizeof FIELD(f),        \
     .names = list, .def_text = dflt}

/* Every key of the file; README.md documents the same table. */
static const struct key_def keys[] = {
    KEY_STR("server.host", server.host, 1, "127.0.0.1"),
    KEY_U16("server.port", server.port, 1, 65535, 7777),
    KEY_U32("server.max_connections", server.max_connections, 1,
            TW_MAX_SLOTS - 1, 256),
    KEY_U32("server.peer_timeout_ms", server.peer_timeout_ms, 100, 600000,
            10000),
    KEY_U32("server.peer_timeout_min_ms", server.peer_timeout_min_ms, 100,
            600000, 5000),

    KEY_U32("match.match_id", match.match_id, 1, UINT32_MAX, 1),
    KEY_U32("match.tick_hz", match.tick_hz, 1, 240, 30),
    KEY_U32("match.max_players", match.max_players, 1, 4095, 256),
    KEY_FLOAT("match.world_width", match.world_width, 1, false, 65535, 1024),
    KEY_FLOAT("match.world_height", match.world_height, 1, false, 65535,
              1024),
    KEY_FLOAT("match.max_speed", match.max_speed, 0, true, 1000, 8),
    KEY_FLOAT("match.spawn_x", match.spawn_x, 0, false, 65535, 0),
    KEY_FLOAT("match.spawn_y", match.spawn_y, 0, false, 65535, 0),
    KEY_FLOAT("match.spawn_width", match.spawn_width, 0, false, 65535, 64),
    KEY_FLOAT("match.spawn_height", match.spawn_height, 0, false, 65535, 64),
    KEY_FLOAT("match.view_radius", match.view_radius, 0, true, 65535, 64),
    KEY_U32("match.max_visible", match.max_visible, 1, 256, 64),
    KEY_U32("match.duration_s", match.duration_s, 0, 604800, 0),
    KEY_U32("match.empty_timeout_s", match.empty_timeout_s, 0, 86400, 0),
    KEY_U32("match.event_interval_ms", match.event_interval_ms, 10, 600000,
            1000),

    KEY_STR("security.key_file", security.key_file, 0, ""),
    KEY_U32("security.rate_limit", security.rate_limit, 1, 100000, 120),
    KEY_U32("security.rate_burst", security.rate_burst, 1, 1000000, 240),
    KEY_U32("security.max_connections", security.max_connections, 1,
            TW_MAX_SLOTS - 1, 64),
    KEY_U32("security.max_per_ip", security.max_per_ip, 1, TW_MAX_SLOTS - 1,
            32),
    KEY_U32("security.login_timeout_ms", security.login_timeout_ms, 100,
            600000, 5000),
    KEY_U32("security.token_skew_s", security.token_skew_s, 0, 3600, 30),
    KEY_U32("security.max_packet_size", security.max_packet_size,
            TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD, 16777216, 4096),
    KEY_U32("security.max_waiting_data", security.max_waiting_data,
            TW_MAX_PAYLOAD + TW_SEAL_OVERHEAD, 268435456, 65536),

    KEY_ENUM("log.level", log.level, level_names, "info"),
    KEY_ENUM("log.format", log.format, format_names, "text"),
    KEY_STR("log.path", log.path, 0, ""),

    KEY_STR("store.path", store.path, 1, "tickwire.db"),
    KEY_U32("store.test_commit_delay_ms", store.test_commit_delay_ms, 0,
            10000, 0),
    {.path = "store.starter_items", .type = KEY_GRANTS,
     .max = TW_MAX_STARTER_ITEMS},

    KEY_U32("trade.timeout_ms", trade.timeout_ms, 100, 600000, 30000),

    KEY_STR("http.host", http.host, 1, "127.0.0.1"),
    KEY_U16("http.port", http.port, 0, 65535, 0),
    KEY_U32("http.overrun_degraded", http.overrun_degraded, 1, 1000000, 30),
    KEY_U32("http.store_lag_degraded_ms", http.store_lag_degraded_ms, 1,
            600000, 1000),

    KEY_U32("agones.health_interval_ms", agones.health_interval_ms, 100,
            600000, 5000),
    KEY_U32("agones.stall_ms", agones.stall_ms, 0, 600000, 10000),

    /* A signed bound: 0 <= UINT32_MAX would trip -Wtype-limits. */
    KEY_U32("debug.enet_time_start_ms", debug.enet_time_start_ms, 0,
            0xffffffffll, 0),
    KEY_U32("debug.tick_stall_ms", debug.tick_stall_ms, 0, 10000, 0),
    KEY_U32("debug.tick_work_us", debug.tick_work_us, 0, 1000000, 0),
    KEY_U32("debug.tick_work_ms", debug.tick_work_ms, 0, 60000, 0),
};

#define KEY_COUNT (sizeof keys / sizeof keys[0])

struct parse_ctx {
    const char *name;
    char *err;
    size_t errlen;
};

/* Copies s into out for an error message: one line, bounded length. */
static void printable(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    const size_t keep = cap - 4; /* room for "..." and the NUL */
    for (; *s && n < keep; s++) {
        unsigned char c = (unsigned char)*s;
        out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (*s) {
        /* Do not leave half of a UTF-8 sequence before the ellipsis. */
        while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
            n--;
        if (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0xc0)
            n--;
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Writes "NAME: WHERE: message" into the caller's buffer. */
__attribute__((format(printf, 3, 4))) static void
fail(const struct parse_ctx *c, const char *where, const char *fmt, ...)
{
    if (!c->err || c->errlen == 0)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (where) {
        char shown[96];
        printable(shown, sizeof shown, where);
        snprintf(c->err, c->errlen, "%s: %s: %s", c->name, shown, msg);
    } else {
        snprintf(c->err, c->errlen, "%s: %s", c->name, msg);
    }
}

static const char *json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "array";
    if (cJSON_IsObject(v))
        return "object";
    return "invalid value";
}

/* Scanner state for check_text(), which runs before cJSON parses the text. */
struct scan {
    const unsigned char *s;
    size_t len;
    size_t pos;
};

static void report_at(const struct parse_ctx *c, const char *text, size_t pos,
                      const char *problem)
{
    unsigned line = 1, col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    fail(c, NULL, "line %u, column %u: %s", line, col, problem);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Returns the length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0fu;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    /* Reject overlong forms, UTF-16 surrogates and values past U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

/*
 * Checks a string body starting after its opening quote. cJSON 1.7.15
 * turns "\u0000" into an early end of string and reads "\uX000" as
 * "\u0000", so both would pass it silently; this rejects them first.
 */
static int scan_string(const struct parse_ctx *c, struct scan *sc)
{
    while (sc->pos < sc->len) {
        size_t at = sc->pos;
        unsigned char ch = sc->s[sc->pos];
        if (ch == '"') {
            sc->pos++;
            return 0;
        }
        if (ch < 0x20) {
            report_at(c, (const char *)sc->s, at,
                      "control character in a string (use an escape)");
            return -1;
        }
        if (ch >= 0x80) {
            size_t n = utf8_sequence(sc->s + at, sc->len - at);
            if (n == 0) {
                report_at(c, (const char *)sc->s, at,
                          "invalid UTF-8 in a string");
                return -1;
            }
            sc->pos += n;
            continue;
        }
        sc->pos++;
        if (ch != '\\')
            continue;
        if (sc->pos >= sc->len)
            break;
        ch = sc->s[sc->pos++];
        if (ch != 'u') {
            if (!strchr("\"\\/bfnrt", ch) || ch == '\0') {
                report_at(c, (const char *)sc->s, at,
                          "invalid escape in a string");
                return -1;
            }
            continue;
        }
        unsigned code = 0;
        for (int i = 0; i < 4; i++) {
            int h = sc->pos < sc->len ? hex_value(sc->s[sc->pos]) : -1;
            if (h < 0) {
                report_at(c, (const char *)sc->s, at,
                          "invalid \\u escape (expected 4 hex digits)");
                return -1;
            }
            code = code * 16 + (unsigned)h;
            sc->pos++;
        }
        if (code == 0) {
            report_at(c, (const char *)sc->s, at,
                      "\\u0000 is not allowed in a string");
            return -1;
        }
    }
    return 0; /* an unterminated string is left for cJSON to report */
}

/*
 * Rejects what cJSON 1.7.15 would accept or report vaguely: NUL bytes, bad
 * string escapes, invalid UTF-8 and nesting deeper than CONFIG_MAX_DEPTH
 * (cJSON stops at 1000 levels with a bare syntax error).
 */
static int check_text(const struct parse_ctx *c, const char *text,
                      size_t len)
{
    struct scan sc = {(const unsigned char *)text, len, 0};
    int depth = 0;
    while (sc.pos < sc.len) {
        unsigned char ch = sc.s[sc.pos];
        if (ch == '\0') {
            report_at(c, text, sc.pos, "NUL byte in the file");
            return -1;
        }
        if (ch == '"') {
            sc.pos++;
            if (scan_string(c, &sc) != 0)
                return -1;
            continue;
        }
        if (ch == '{' || ch == '[') {
            if (++depth > CONFIG_MAX_DEPTH) {
                char msg[64];
                snprintf(msg, sizeof msg, "nesting deeper than %d levels",
                         CONFIG_MAX_DEPTH);
                report_at(c, text, sc.pos, msg);
                return -1;
            }
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
        sc.pos++;
    }
    return 0;
}

/*
 * Returns true when an earlier sibling of child has the same name. Callers
 * reject unknown keys first, so the earlier siblings are distinct known keys
 * and the search stays short even on a hostile file.
 */
static bool is_duplicate(const cJSON *obj, const cJSON *child)
{
    for (const cJSON *prev = obj->child; prev && prev != child;
         prev = prev->next)
        if (strcmp(prev->string, child->string) == 0)
            return true;
    return false;
}

/* Reads a number for key; on success *out contains a finite double. */
static int get_number(const struct parse_ctx *c, const char *key,
                      const cJSON *v, double *out)
{
    if (!cJSON_IsNumber(v)) {
        fail(c, key, "expected a number, got %s", json_type_name(v));
        return -1;
    }
    if (!isfinite(v->valuedouble)) {
        fail(c, key, "number is too large");
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

static int get_integer(const struct parse_ctx *c, const char *key,
                       const cJSON *v, double lo, double hi, double *out)
{
    if (get_number(c, key, v, out) != 0)
        return -1;
    if (*out != floor(*out)) {
        fail(c, key, "expected an integer, got %.15g", *out);
        return -1;
    }
    if (*out < lo || *out > hi) {
        fail(c, key, "%.15g is out of range (allowed %.15g..%.15g)", *out, lo,
             hi);
        return -1;
    }
    return 0;
}

static int parse_string_key(const struct parse_ctx *c, const struct key_def *k,
                            const cJSON *v, char *field)
{
    if (!cJSON_IsString(v)) {
        fail(c, k->path, "expected a string, got %s", json_type_name(v));
        return -1;
    }
    size_t n = strlen(v->valuestring);
    if (n < (size_t)k->min) {
        fail(c, k->path, "must not be empty");
        return -1;
    }
    if (n > (size_t)k->max) {
        fail(c, k->path, "string is too long (%zu bytes, max %zu)", n,
             (size_t)k->max);
        return -1;
    }
    memcpy(field, v->valuestring, n + 1);
    return 0;
}

static int parse_enum_key(const struct parse_ctx *c, const struct key_def *k,
                          const cJSON *v, void *field)
{
    if (!cJSON_IsString(v)) {
        fail(c, k->path, "expected a string, got %s", json_type_name(v));
        return -1;
    }
    for (unsigned i = 0; k->names[i]; i++) {
        if (strcmp(v->valuestring, k->names[i]) == 0) {
            memcpy(field, &i, sizeof i);
            return 0;
        }
    }
    char allowed[128] = "";
    for (unsigned i = 0; k->names[i]; i++) {
        size_t used = strlen(allowed);
        snprintf(allowed + used, sizeof allowed - used, "%s%s",
                 i ? ", " : "", k->names[i]);
    }
    char shown[48];
    printable(shown, sizeof shown, v->valuestring);
    fail(c, k->path, "\"%s\" is not one of %s", shown, allowed);
    return -1;
}

static int parse_float_key(const struct parse_ctx *c, const struct key_def *k,
                           const cJSON *v, float *field)
{
    double d;
    if (get_number(c, k->path, v, &d) != 0)
        return -1;
    bool low = k->min_exclusive ? d <= k->min : d < k->min;
    if (low || d > k->max) {
        fail(c, k->path, "%.15g is out of range (allowed %s%.15g..%.15g)", d,
             k->min_exclusive ? ">" : "", k->min, k->max);
        return -1;
    }
    *field = (float)d;
    return 0;
}

static int parse_grant(const struct parse_ctx *c, const char *where,
                       const cJSON *item, struct tw_item_grant *g)
{
    char key[PATH_BUF];
    if (!cJSON_IsObject(item)) {
        fail(c, where, "expected an object, got %s", json_type_name(item));
        return -1;
    }
    bool have_kind = false, have_quantity = false;
    for (const cJSON *f = item->child; f; f = f->next) {
        if (snprintf(key, sizeof key, "%s.%s", where, f->string) >=
            (int)sizeof key) {
            fail(c, where, "key name too long");
            return -1;
        }
        bool is_kind = strcmp(f->string, "kind") == 0;
        if (!is_kind && strcmp(f->string, "quantity") != 0) {
            fail(c, key, "unknown key");
            return -1;
        }
        if (is_duplicate(item, f)) {
            fail(c, key, "duplicate key");
            return -1;
        }
        if (is_kind) {
            if (!cJSON_IsString(f)) {
                fail(c, key, "expected a string, got %s", json_type_name(f));
                return -1;
            }
            size_t n = strlen(f->valuestring);
            if (n < 1 || n > TW_ITEM_KIND_MAX ||
                strspn(f->valuestring, "abcdefghijklmnopqrstuvwxyz"
                                       "0123456789_") != n) {
                char shown[48];
                printable(shown, sizeof shown, f->valuestring);
                fail(c, key,
                     "\"%s\" is not a valid kind (1..%d characters of "
                     "a-z, 0-9 and _)",
                     shown, TW_ITEM_KIND_MAX);
                return -1;
            }
            memcpy(g->kind, f->valuestring, n + 1);
            have_kind = true;
        } else {
            double q;
            if (get_integer(c, key, f, 1, QUANTITY_MAX, &q) != 0)
                return -1;
            g->quantity = (uint32_t)q;
            have_quantity = true;
        }
    }
    if (!have_kind || !have_quantity) {
        fail(c, where, "missing key \"%s\"", have_kind ? "quantity" : "kind");
        return -1;
    }
    return 0;
}

static int parse_grants(const struct parse_ctx *c, const struct key_def *k,
                        const cJSON *v, struct tw_config *cfg)
{
    if (!cJSON_IsArray(v)) {
        fail(c, k->path, "expected an array, got %s", json_type_name(v));
        return -1;
    }
    int count = cJSON_GetArraySize(v);
    if (count > (int)k->max) {
        fail(c, k->path, "%d items, max %d", count, (int)k->max);
        return -1;
    }
    size_t n = 0;
    for (const cJSON *item = v->child; item; item = item->next, n++) {
        char where[PATH_BUF];
        snprintf(where, sizeof where, "%s[%zu]", k->path, n);
        struct tw_item_grant *g = &cfg->store.starter[n];
        if (parse_grant(c, where, item, g) != 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(cfg->store.starter[i].kind, g->kind) == 0) {
                char key[PATH_BUF + 8];
                snprintf(key, sizeof key, "%s.kind", where);
                fail(c, key, "\"%s\" is already granted by %s[%zu]", g->kind,
                     k->path, i);
                return -1;
            }
        }
    }
    cfg->store.starter_count = n;
    return 0;
}

static int parse_value(const struct parse_ctx *c, const struct key_def *k,
                       const cJSON *v, struct tw_config *cfg)
{
    char *field = (char *)cfg + k->offset;
    double d;
    switch (k->type) {
    case KEY_STRING:
        return parse_string_key(c, k, v, field);
    case KEY_U16:
        if (get_integer(c, k->path, v, k->min, k->max, &d) != 0)
            return -1;
        uint16_t u16 = (uint16_t)d;
        memcpy(field, &u16, sizeof u16);
        return 0;
    case KEY_U32:
        if (get_integer(c, k->path, v, k->min, k->max, &d) != 0)
            return -1;
        uint32_t u32 = (uint32_t)d;
        memcpy(field, &u32, sizeof u32);
        return 0;
    case KEY_FLOAT:
        return parse_float_key(c, k, v, (float *)(void *)field);
    case KEY_ENUM:
        return parse_enum_key(c, k, v, field);
    case KEY_GRANTS:
        return parse_grants(c, k, v, cfg);
    }
    return -1;
}

static const struct key_def *find_key(const char *path)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(keys[i].path, path) == 0)
            return &keys[i];
    return NULL;
}

/* Returns true when some key lives below path, making it a section. */
static bool is_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strncmp(keys[i].path, path, n) == 0 && keys[i].path[n] == '.')
            return true;
    return false;
}

static int parse_object(const struct parse_ctx *c, const char *prefix,
                        const cJSON *obj, struct tw_config *cfg)
{
    for (const cJSON *child = obj->child; child; child = child->next) {
        char path[PATH_BUF];
        int n = snprintf(path, sizeof path, "%s%s%s", prefix,
                         prefix[0] ? "." : "", child->string);
        const struct key_def *k = NULL;
        bool section = false;
        if (n >= 0 && (size_t)n < sizeof path) {
            k = find_key(path);
            section = !k && is_section(path);
        }
        if (!k && !section) {
            fail(c, path, "unknown key");
            return -1;
        }
        if (is_duplicate(obj, child)) {
            fail(c, path, "duplicate key");
            return -1;
        }
        if (k) {
            if (parse_value(c, k, child, cfg) != 0)
                return -1;
            continue;
        }
        if (!cJSON_IsObject(child)) {
            fail(c, path, "expected an object, got %s",
                 json_type_name(child));
            return -1;
        }
        if (parse_object(c, path, child, cfg) != 0)
            return -1;
    }
    return 0;
}

/* Checks rules that span keys, once every key has its final value. */
static int check_relations(const struct parse_ctx *c,
                           const struct tw_config *cfg)
{
    if (cfg->match.spawn_x + cfg->match.spawn_width > cfg->match.world_width) {
        fail(c, "match.spawn_x",
             "spawn area %g..%g on x lies outside the world (0..%g); "
             "lower match.spawn_x or match.spawn_width",
             cfg->match.spawn_x, cfg->match.spawn_x + cfg->match.spawn_width,
             cfg->match.world_width);
        return -1;
    }
    if (cfg->match.spawn_y + cfg->match.spawn_height >
        cfg->match.world_height) {
        fail(c, "match.spawn_y",
             "spawn area %g..%g on y lies outside the world (0..%g); "
             "lower match.spawn_y or match.spawn_height",
             cfg->match.spawn_y, cfg->match.spawn_y + cfg->match.spawn_height,
             cfg->match.world_height);
        return -1;
    }
    if (cfg->server.peer_timeout_min_ms > cfg->server.peer_timeout_ms) {
        fail(c, "server.peer_timeout_min_ms",
             "%u exceeds server.peer_timeout_ms %u",
             cfg->server.peer_timeout_min_ms, cfg->server.peer_timeout_ms);
        return -1;
    }
    if (cfg->security.max_waiting_data < cfg->security.max_packet_size) {
        fail(c, "security.max_waiting_data",
             "%u is below security.max_packet_size %u, so no packet of "
             "the maximum size could be reassembled",
             cfg->security.max_waiting_data, cfg->security.max_packet_size);
        return -1;
    }
    if (cfg->match.max_players > cfg->server.max_connections) {
        fail(c, "match.max_players",
             "%u exceeds server.max_connections %u, so the match could "
             "never fill; raise server.max_connections",
             cfg->match.max_players, cfg->server.max_connections);
        return -1;
    }
    return 0;
}

void tw_config_defaults(struct tw_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct key_def *k = &keys[i];
        char *field = (char *)cfg + k->offset;
        switch (k->type) {
        case KEY_STRING:
            snprintf(field, k->size, "%s", k->def_text);
            break;
        case KEY_U16: {
            uint16_t v = (uint16_t)k->def;
            memcpy(field, &v, sizeof v);
            break;
        }
        case KEY_U32: {
            uint32_t v = (uint32_t)k->def;
            memcpy(field, &v, sizeof v);
            break;
        }
        case KEY_FLOAT: {
            float v = (float)k->def;
            memcpy(field, &v, sizeof v);
            break;
        }
        case KEY_ENUM:
            for (unsigned j = 0; k->names[j]; j++)
                if (strcmp(k->names[j], k->def_text) == 0)
                    memcpy(field, &j, sizeof j);
            break;
        case KEY_GRANTS:
            memcpy(cfg->store.starter, default_grants, sizeof default_grants);
            cfg->store.starter_count =
                sizeof default_grants / sizeof default_grants[0];
            break;
        }
    }
}

int tw_config_parse(const char *name, const char *text, size_t len,
                    struct tw_config *cfg, char *err, size_t errlen)
{
    struct parse_ctx c = {name ? name : "<config>", err, errlen};
    if (err && errlen)
        err[0] = '\0';
    if (len > CONFIG_MAX_BYTES) {
        fail(&c, NULL, "file is larger than %d bytes", CONFIG_MAX_BYTES);
        return -1;
    }
    if (check_text(&c, text, len) != 0)
        return -1;

    /* cJSON wants the terminating NUL inside the length it is given. */
    char *copy = malloc(len + 1);
    if (!copy) {
        fail(&c, NULL, "out of memory");
        return -1;
    }
    if (len)
        memcpy(copy, text, len);
    copy[len] = '\0';

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, true);
    if (!root) {
        size_t pos = end && end >= copy && end <= copy + len
                         ? (size_t)(end - copy)
                         : len;
        report_at(&c, copy, pos,
                  len == 0 ? "empty file, expected a JSON object"
                           : "invalid JSON");
        free(copy);
        return -1;
    }

    int rc = -1;
    struct tw_config tmp;
    tw_config_defaults(&tmp);
    if (!cJSON_IsObject(root))
        fail(&c, NULL, "expected a JSON object at the top level, got %s",
             json_type_name(root));
    else if (parse_object(&c, "", root, &tmp) == 0 &&
             check_relations(&c, &tmp) == 0)
        rc = TW_OK;
    cJSON_Delete(root);
    free(copy);
    if (rc == TW_OK)
        *cfg = tmp;
    return rc;
}

int tw_config_load(const char *path, struct tw_config *cfg, char *err,
                   size_t errlen)
{
    struct parse_ctx c = {path, err, errlen};

    /* O_NONBLOCK keeps a FIFO at the path from hanging the open. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        fail(&c, NULL, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        fail(&c, NULL, "not a regular file");
        return -1;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        fail(&c, NULL, "cannot open: %s", strerror(errno));
        return -1;
    }
    /* One byte past the cap tells an oversized file from one at the cap. */
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        fail(&c, NULL, "out of memory");
        return -1;
    }
    size_t len = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    if (read_errno != 0) {
        free(buf);
        fail(&c, NULL, "cannot read: %s", strerror(read_errno));
        return -1;
    }
    int rc = tw_config_parse(path, buf, len, cfg, err, errlen);
    free(buf);
    return rc;
}
