/*
 * Leveled logging: one line per record with the UTC time to the millisecond,
 * the level, the subsystem and, when one is involved, the peer id. Lines go
 * to stderr and, when a path is set, to a file that SIGHUP can reopen.
 * Thread-safe: records from several threads never interleave.
 */
#ifndef TW_LOG_H
#define TW_LOG_H

#include <stdint.h>

enum tw_log_level { TW_DEBUG, TW_INFO, TW_WARN, TW_ERROR };
enum tw_log_format { TW_LOG_TEXT, TW_LOG_JSON };

/* Peer id value meaning "no peer involved". */
#define TW_NO_PEER (-1)

extern enum tw_log_level tw_log_min_level;

/*
 * Sets the level, format and optional file. Returns 0, or -1 with errno
 * set when the file cannot be opened (stderr logging still works).
 */
int tw_log_open(enum tw_log_level level, enum tw_log_format format,
                const char *path);

/* Reopens the log file at the same path, for logrotate. Returns 0 or -1. */
int tw_log_reopen(void);

void tw_log_close(void);

/* Parses "debug", "info", "warn" or "error"; returns -1 when unknown. */
int tw_log_level_parse(const char *name);

void tw_log_write(enum tw_log_level level, const char *subsystem, long peer,
                  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The level check comes first, so a filtered record costs no formatting. */
#define TW_LOG(level, subsystem, peer, ...)                                    \
    do {                                                                       \
        if ((level) >= tw_log_min_level)                                       \
            tw_log_write((level), (subsystem), (peer), __VA_ARGS__);           \
    } while (0)

/*
 * A token bucket for warnings that a flood could repeat: at most `burst`
 * lines, refilled at `per_sec`; suppressed lines are counted and reported
 * in the next line that passes.
 */
struct tw_ratelimit {
    double tokens;
    double per_sec;
    double burst;
    uint64_t last_ns;
    uint64_t suppressed;
};

void tw_ratelimit_init(struct tw_ratelimit *rl, double per_sec, double burst);

/*
 * Returns 1 when a line may be written now; 0 counts it as suppressed.
 * *suppressed_out receives the number dropped since the last allowed line.
 */
int tw_ratelimit_allow(struct tw_ratelimit *rl, uint64_t now_ns,
                       uint64_t *suppressed_out);

#endif
