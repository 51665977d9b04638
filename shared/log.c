#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum tw_log_level tw_log_min_level = TW_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum tw_log_format log_format = TW_LOG_TEXT;
static FILE *log_file;
static char *log_path;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int tw_log_open(enum tw_log_level level, enum tw_log_format format,
                const char *path)
{
    pthread_mutex_lock(&log_lock);
    tw_log_min_level = level;
    log_format = format;
    if (log_file)
        fclose(log_file);
    log_file = NULL;
    free(log_path);
    log_path = NULL;

    int rc = 0;
    if (path && path[0]) {
        log_path = strdup(path);
        log_file = fopen(path, "a");
        if (!log_file)
            rc = -1;
    }
    pthread_mutex_unlock(&log_lock);
    return rc;
}

int tw_log_reopen(void)
{
    int rc = 0;
    pthread_mutex_lock(&log_lock);
    if (log_path) {
        /* Open first, so a failed open keeps writing to the old file. */
        FILE *fresh = fopen(log_path, "a");
        if (fresh) {
            if (log_file)
                fclose(log_file);
            log_file = fresh;
        } else {
            rc = -1;
        }
    }
    pthread_mutex_unlock(&log_lock);
    return rc;
}

void tw_log_close(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_file)
        fclose(log_file);
    log_file = NULL;
    free(log_path);
    log_path = NULL;
    pthread_mutex_unlock(&log_lock);
}

int tw_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/*
 * Returns the length of the well-formed UTF-8 sequence at p, or 0 when it
 * is truncated, overlong, a surrogate or above U+10FFFF. A NUL stops the
 * scan because it is never a continuation byte.
 */
static size_t utf8_sequence_length(const unsigned char *p)
{
    size_t len;
    uint32_t cp, min;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1fu;
        min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0fu;
        min = 0x800;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/*
 * Copies msg to out so that one record stays one line of valid UTF-8:
 * control characters and bytes of malformed UTF-8 become escapes. In JSON
 * the result is the body of a string and malformed bytes become U+FFFD;
 * in text they become \xNN. Messages carry peer-supplied strings such as
 * player names, which must not be able to forge extra records.
 */
static void escape_message(char *out, size_t cap, const char *msg, bool json)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)msg;
    while (*p) {
        if (n + 8 >= cap)
            break;
        size_t seq = utf8_sequence_length(p);
        if (*p == '"' && json) {
            out[n++] = '\\';
            out[n++] = '"';
        } else if (*p == '\\') {
            out[n++] = '\\';
            out[n++] = '\\';
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (*p == '\r') {
            out[n++] = '\\';
            out[n++] = 'r';
        } else if (*p == '\t') {
            out[n++] = '\\';
            out[n++] = 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            n += (size_t)snprintf(out + n, cap - n,
                                  json ? "\\u%04x" : "\\x%02x", *p);
        } else if (seq == 0) {
            n += (size_t)snprintf(out + n, cap - n,
                                  json ? "\\ufffd" : "\\x%02x", *p);
            seq = 1;
        } else {
            memcpy(out + n, p, seq);
            n += seq;
            p += seq;
            continue;
        }
        p++;
    }
    out[n] = '\0';
}

void tw_log_write(enum tw_log_level level, const char *subsystem, long peer,
                  const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    size_t len = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + len, sizeof stamp - len, ".%03ldZ",
             ts.tv_nsec / 1000000);

    bool json = log_format == TW_LOG_JSON;
    char escaped[2200];
    escape_message(escaped, sizeof escaped, msg, json);

    char line[2600];
    char peer_text[32] = "";
    if (json) {
        if (peer != TW_NO_PEER)
            snprintf(peer_text, sizeof peer_text, ",\"peer\":%ld", peer);
        snprintf(line, sizeof line,
                 "{\"time\":\"%s\",\"level\":\"%s\",\"subsystem\":\"%s\"%s,"
                 "\"msg\":\"%s\"}\n",
                 stamp, level_names[level], subsystem, peer_text, escaped);
    } else {
        if (peer != TW_NO_PEER)
            snprintf(peer_text, sizeof peer_text, " peer=%ld", peer);
        snprintf(line, sizeof line, "%s %-5s [%s]%s %s\n", stamp,
                 level_names[level], subsystem, peer_text, escaped);
    }

    int saved_errno = errno;
    pthread_mutex_lock(&log_lock);
    fputs(line, stderr);
    if (log_file) {
        fputs(line, log_file);
        fflush(log_file);
    }
    pthread_mutex_unlock(&log_lock);
    errno = saved_errno;
}

void tw_ratelimit_init(struct tw_ratelimit *rl, double per_sec, double burst)
{
    rl->tokens = burst;
    rl->per_sec = per_sec;
    rl->burst = burst;
    rl->last_ns = 0;
    rl->suppressed = 0;
}

int tw_ratelimit_allow(struct tw_ratelimit *rl, uint64_t now_ns,
                       uint64_t *suppressed_out)
{
    if (rl->last_ns != 0 && now_ns > rl->last_ns) {
        rl->tokens += (double)(now_ns - rl->last_ns) * 1e-9 * rl->per_sec;
        if (rl->tokens > rl->burst)
            rl->tokens = rl->burst;
    }
    rl->last_ns = now_ns;
    if (rl->tokens < 1.0) {
        rl->suppressed++;
        return 0;
    }
    rl->tokens -= 1.0;
    if (suppressed_out)
        *suppressed_out = rl->suppressed;
    rl->suppressed = 0;
    return 1;
}
