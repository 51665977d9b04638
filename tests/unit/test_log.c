/*
 * Log line formats and rotation: renaming the file and calling
 * tw_log_reopen while another thread logs loses and duplicates nothing.
 */
#include "log.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

struct log_dir {
    char dir[64];
    char path[128];
    int saved_stderr; /* every line also goes to stderr; hide it */
};

static int setup(void **state)
{
    struct log_dir *d = calloc(1, sizeof *d);
    assert_non_null(d);
    snprintf(d->dir, sizeof d->dir, "/tmp/tickwire-log-XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->path, sizeof d->path, "%s/server.log", d->dir);
    fflush(stderr);
    d->saved_stderr = dup(STDERR_FILENO);
    int devnull = open("/dev/null", O_WRONLY);
    assert_true(d->saved_stderr >= 0 && devnull >= 0);
    dup2(devnull, STDERR_FILENO);
    close(devnull);
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct log_dir *d = *state;
    tw_log_close();
    fflush(stderr);
    dup2(d->saved_stderr, STDERR_FILENO);
    close(d->saved_stderr);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", d->dir);
    free(d);
    return 0;
}

/* Returns the whole file as a NUL-terminated string, or NULL if absent. */
static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

static bool valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t extra;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + extra >= len)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const unsigned min_cp[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[extra] || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

static void text_line_has_time_level_subsystem_peer(void **state)
{
    struct log_dir *d = *state;
    assert_int_equal(tw_log_open(TW_INFO, TW_LOG_TEXT, d->path), 0);
    TW_LOG(TW_WARN, "net", 12, "hello %d", 5);
    TW_LOG(TW_INFO, "store", TW_NO_PEER, "committed");
    char *text = read_file(d->path, NULL);
    assert_non_null(text);

    regex_t re;
    assert_int_equal(
        regcomp(&re,
                "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                "\\.[0-9]{3}Z warn  \\[net\\] peer=12 hello 5\n"
                "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z "
                "info  \\[store\\] committed\n$",
                REG_EXTENDED),
        0);
    int match = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (match != 0)
        fail_msg("unexpected log text:\n%s", text);
    free(text);
}

static void text_line_escapes_control_characters(void **state)
{
    struct log_dir *d = *state;
    assert_int_equal(tw_log_open(TW_INFO, TW_LOG_TEXT, d->path), 0);
    /* A peer-chosen name must not be able to start a forged line. */
    TW_LOG(TW_INFO, "login", 3, "name %s", "eve\n2030-01-01 error [x] fake\r\x1b");
    char *text = read_file(d->path, NULL);
    assert_non_null(text);
    char *newline = strchr(text, '\n');
    assert_non_null(newline);
    assert_string_equal(newline + 1, "");
    assert_non_null(strstr(text, "name eve\\n2030-01-01 error [x] fake\\r\\x1b"));
    free(text);
}

static void json_line_parses_with_every_field(void **state)
{
    struct log_dir *d = *state;
    assert_int_equal(tw_log_open(TW_DEBUG, TW_LOG_JSON, d->path), 0);
    const char *msg = "quote \" backslash \\ newline \n tab \t bell \a end";
    TW_LOG(TW_ERROR, "trade", 77, "%s", msg);
    char *text = read_file(d->path, NULL);
    assert_non_null(text);
    /* One record, one line: the newline in msg is escaped. */
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);

    cJSON *json = cJSON_Parse(text);
    assert_non_null(json);
    const cJSON *time = cJSON_GetObjectItemCaseSensitive(json, "time");
    const cJSON *level = cJSON_GetObjectItemCaseSensitive(json, "level");
    const cJSON *subsystem =
        cJSON_GetObjectItemCaseSensitive(json, "subsystem");
    const cJSON *peer = cJSON_GetObjectItemCaseSensitive(json, "peer");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(json, "msg");
    assert_true(cJSON_IsString(time));
    assert_int_equal(strlen(time->valuestring), 24);
    assert_int_equal(time->valuestring[23], 'Z');
    assert_true(cJSON_IsString(level));
    assert_string_equal(level->valuestring, "error");
    assert_true(cJSON_IsString(subsystem));
    assert_string_equal(subsystem->valuestring, "trade");
    assert_true(cJSON_IsNumber(peer));
    assert_int_equal(peer->valueint, 77);
    assert_true(cJSON_IsString(m));
    assert_string_equal(m->valuestring, msg);
    cJSON_Delete(json);
    free(text);
}

static void json_line_omits_peer_when_none(void **state)
{
    struct log_dir *d = *state;
    assert_int_equal(tw_log_open(TW_INFO, TW_LOG_JSON, d->path), 0);
    TW_LOG(TW_INFO, "tick", TW_NO_PEER, "started");
    char *text = read_file(d->path, NULL);
    assert_non_null(text);
    cJSON *json = cJSON_Parse(text);
    assert_non_null(json);
    assert_null(cJSON_GetObjectItemCaseSensitive(json, "peer"));
    cJSON_Delete(json);
    free(text);
}

static void json_line_is_valid_utf8(void **state)
{
    struct log_dir *d = *state;
    assert_int_equal(tw_log_open(TW_INFO, TW_LOG_JSON, d->path), 0);
    /* Truncated, overlong and stray bytes, then valid two and four byte. */
    TW_LOG(TW_INFO, "login", 1, "name %s",
           "a\xc3" "b\xc0\xaf" "c\xff" "d\xed\xa0\x80" "e\xc3\xa9\xf0\x9f\x99\x82");
    size_t len = 0;
    char *text = read_file(d->path, &len);
    assert_non_null(text);
    assert_true(valid_utf8((const unsigned char *)text, len));
    cJSON *json = cJSON_Parse(text);
    assert_non_null(json);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(json, "msg");
    assert_true(cJSON_IsString(m));
    /* Valid sequences survive unchanged. */
    assert_non_null(strstr(m->valuestring, "e\xc3\xa9\xf0\x9f\x99\x82"));
    assert_null(strstr(m->valuestring, "\xff"));
    cJSON_Delete(json);
    free(text);
}

static void level_filter_drops_lower_levels(void **state)
{
    struct log_dir *d = *state;
    assert_int_equal(tw_log_open(TW_WARN, TW_LOG_TEXT, d->path), 0);
    TW_LOG(TW_INFO, "net", TW_NO_PEER, "hidden");
    TW_LOG(TW_DEBUG, "net", TW_NO_PEER, "hidden too");
    TW_LOG(TW_ERROR, "net", TW_NO_PEER, "shown");
    char *text = read_file(d->path, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "hidden"));
    assert_non_null(strstr(text, "shown"));
    free(text);
}

static void level_parse_accepts_known_names(void **state)
{
    (void)state;
    assert_int_equal(tw_log_level_parse("debug"), TW_DEBUG);
    assert_int_equal(tw_log_level_parse("info"), TW_INFO);
    assert_int_equal(tw_log_level_parse("warn"), TW_WARN);
    assert_int_equal(tw_log_level_parse("error"), TW_ERROR);
    assert_int_equal(tw_log_level_parse("warning"), -1);
    assert_int_equal(tw_log_level_parse(""), -1);
}

#define ROTATION_LINES 20000
#define MAX_ROTATIONS 200

static int writer_done; /* atomic */

static void *write_lines(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROTATION_LINES; i++)
        TW_LOG(TW_INFO, "test", TW_NO_PEER, "line %d", i);
    __atomic_store_n(&writer_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Counts "line N" records of one file into seen[]. */
static void count_lines(const char *path, unsigned *seen, unsigned *total)
{
    char *text = read_file(path, NULL);
    if (!text)
        return;
    for (char *line = text, *next; *line; line = next) {
        next = strchr(line, '\n');
        assert_non_null(next); /* every record ends with a newline */
        *next++ = '\0';
        const char *at = strstr(line, "] line ");
        assert_non_null(at);
        int n = atoi(at + 7);
        assert_in_range(n, 0, ROTATION_LINES - 1);
        seen[n]++;
        (*total)++;
    }
    free(text);
}

static void reopen_during_writes_keeps_every_line_once(void **state)
{
    struct log_dir *d = *state;
    assert_int_equal(tw_log_open(TW_INFO, TW_LOG_TEXT, d->path), 0);
    __atomic_store_n(&writer_done, 0, __ATOMIC_RELAXED);
    pthread_t writer;
    assert_int_equal(pthread_create(&writer, NULL, write_lines, NULL), 0);

    /* Rotate as logrotate does: rename, then tell the process to reopen. */
    int rotations = 0;
    while (rotations < MAX_ROTATIONS &&
           !__atomic_load_n(&writer_done, __ATOMIC_ACQUIRE)) {
        char rotated[160];
        snprintf(rotated, sizeof rotated, "%s.%d", d->path, rotations);
        assert_int_equal(rename(d->path, rotated), 0);
        assert_int_equal(tw_log_reopen(), 0);
        rotations++;
        sched_yield();
    }
    pthread_join(writer, NULL);
    assert_true(rotations > 0);
    print_message("%d rotations during %d lines\n", rotations,
                  ROTATION_LINES);

    unsigned *seen = calloc(ROTATION_LINES, sizeof *seen);
    assert_non_null(seen);
    unsigned total = 0;
    count_lines(d->path, seen, &total);
    for (int r = 0; r < rotations; r++) {
        char rotated[160];
        snprintf(rotated, sizeof rotated, "%s.%d", d->path, r);
        count_lines(rotated, seen, &total);
    }
    assert_int_equal(total, ROTATION_LINES);
    for (int i = 0; i < ROTATION_LINES; i++)
        if (seen[i] != 1)
            fail_msg("line %d appears %u times after %d rotations", i,
                     seen[i], rotations);
    free(seen);
}

static void reopen_without_file_is_harmless(void **state)
{
    (void)state;
    assert_int_equal(tw_log_open(TW_INFO, TW_LOG_TEXT, NULL), 0);
    assert_int_equal(tw_log_reopen(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            text_line_has_time_level_subsystem_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(text_line_escapes_control_characters,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(json_line_parses_with_every_field,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(json_line_omits_peer_when_none, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(json_line_is_valid_utf8, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(level_filter_drops_lower_levels,
                                        setup, teardown),
        cmocka_unit_test(level_parse_accepts_known_names),
        cmocka_unit_test_setup_teardown(
            reopen_during_writes_keeps_every_line_once, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_without_file_is_harmless,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
