/*
 * tickwire-token: creates match keys and mints connect tokens. Exit status
 * 0 on success, 1 when a file or the crypto library fails, 2 on a usage
 * error. No key material reaches the terminal except inside a token.
 */
#include "clock.h"
#include "crypto.h"

#include <sodium.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

static const char usage_text[] =
    "Usage: tickwire-token keygen --out FILE\n"
    "       tickwire-token issue --key FILE --player ID --name NAME\n"
    "                            --match ID --ttl SECONDS [--out FILE]\n"
    "       tickwire-token --help\n"
    "\n"
    "keygen  Writes a new random 32-byte match key to FILE with mode 0600.\n"
    "        An existing FILE is never overwritten.\n"
    "issue   Mints a connect token for one player as JSON, sealed with the\n"
    "        match key. The token contains the player's session keys, so\n"
    "        treat it as a secret.\n"
    "\n"
    "Options of issue:\n"
    "  --key FILE       match key file written by keygen\n"
    "  --player ID      player id, 0 to 9007199254740991\n"
    "  --name NAME      player name, 1 to 31 printable ASCII characters\n"
    "  --match ID       match id the token is valid for, 0 to 4294967295\n"
    "  --ttl SECONDS    lifetime from now in seconds, 1 to 4294967295\n"
    "  --out FILE       write the token to FILE (mode 0600, never\n"
    "                   overwritten) instead of standard output\n"
    "  --now UNIX       test aid: issue as if the clock read UNIX seconds,\n"
    "                   to mint expired or future-dated tokens\n"
    "\n"
    "Exit status: 0 on success, 1 when a file cannot be read or written,\n"
    "2 on a usage error.\n";

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    fputs("tickwire-token: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nRun 'tickwire-token --help' for usage.\n", stderr);
    return EXIT_USAGE;
}

/* Parses a plain decimal number in 0..max: no sign, space or suffix. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        uint64_t digit = (uint64_t)(*s - '0');
        if (v > (max - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Creates path with mode 0600 and writes text. Never replaces a file. */
static int write_new_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            fprintf(stderr,
                    "tickwire-token: %s: already exists; refusing to "
                    "overwrite it\n",
                    path);
        else
            fprintf(stderr, "tickwire-token: %s: cannot create: %s\n", path,
                    strerror(errno));
        return -1;
    }
    int rc = fchmod(fd, 0600);
    if (rc == 0)
        rc = write_all(fd, text, strlen(text));
    if (rc == 0)
        rc = fsync(fd);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        unlink(path);
        fprintf(stderr, "tickwire-token: %s: cannot write: %s\n", path,
                strerror(saved));
        return -1;
    }
    return 0;
}

static int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case ':':
            return usage_error("%s: missing value", argv[optind - 1]);
        default:
            return usage_error("keygen: unknown option %s",
                               argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("keygen: unexpected argument %s", argv[optind]);
    if (!out)
        return usage_error("keygen: --out FILE is required");

    char err[512];
    if (tw_key_generate(out, err, sizeof err) != TW_OK) {
        fprintf(stderr, "tickwire-token: %s\n", err);
        return 1;
    }
    fprintf(stderr, "tickwire-token: wrote a new match key to %s\n", out);
    return 0;
}

struct issue_args {
    const char *key_path;
    const char *out;
    const char *name;
    uint64_t player, match, ttl, now;
    bool have_player, have_match, have_ttl, have_now;
};

static int parse_issue(int argc, char **argv, struct issue_args *a)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"player", required_argument, NULL, 'p'},
        {"name", required_argument, NULL, 'n'},
        {"match", required_argument, NULL, 'm'},
        {"ttl", required_argument, NULL, 't'},
        {"out", required_argument, NULL, 'o'},
        {"now", required_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            a->key_path = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'n':
            a->name = optarg;
            break;
        case 'p':
            if (parse_uint(optarg, TW_JSON_INT_MAX, &a->player) != 0)
                return usage_error("--player %s: expected an integer from 0 "
                                   "to 9007199254740991",
                                   optarg);
            a->have_player = true;
            break;
        case 'm':
            if (parse_uint(optarg, UINT32_MAX, &a->match) != 0)
                return usage_error("--match %s: expected an integer from 0 "
                                   "to 4294967295",
                                   optarg);
            a->have_match = true;
            break;
        case 't':
            if (parse_uint(optarg, UINT32_MAX, &a->ttl) != 0 || a->ttl == 0)
                return usage_error("--ttl %s: expected seconds from 1 to "
                                   "4294967295",
                                   optarg);
            a->have_ttl = true;
            break;
        case 'N':
            if (parse_uint(optarg, TW_JSON_INT_MAX, &a->now) != 0)
                return usage_error("--now %s: expected Unix seconds from 0 "
                                   "to 9007199254740991",
                                   optarg);
            a->have_now = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        case ':':
            return usage_error("%s: missing value", argv[optind - 1]);
        default:
            return usage_error("issue: unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("issue: unexpected argument %s", argv[optind]);
    if (!a->key_path)
        return usage_error("issue: --key FILE is required");
    if (!a->have_player)
        return usage_error("issue: --player ID is required");
    if (!a->name)
        return usage_error("issue: --name NAME is required");
    if (!a->have_match)
        return usage_error("issue: --match ID is required");
    if (!a->have_ttl)
        return usage_error("issue: --ttl SECONDS is required");

    size_t len = strlen(a->name);
    bool printable = len >= 1 && len <= TW_NAME_MAX;
    for (size_t i = 0; printable && i < len; i++)
        printable = a->name[i] >= 0x20 && a->name[i] <= 0x7e;
    if (!printable)
        return usage_error("--name: expected 1 to 31 printable ASCII "
                           "characters");
    return 0;
}

static int cmd_issue(int argc, char **argv)
{
    struct issue_args a = {0};
    int rc = parse_issue(argc, argv, &a);
    if (rc != 0)
        return rc < 0 ? 0 : rc; /* -1: --help was printed */

    uint8_t key[TW_KEY_BYTES];
    char err[512];
    if (tw_key_load(a.key_path, key, err, sizeof err) != TW_OK) {
        fprintf(stderr, "tickwire-token: %s\n", err);
        return 1;
    }
    struct tw_token token;
    uint64_t now = a.have_now ? a.now : tw_clock_unix_s();
    rc = tw_token_issue(key, a.player, a.name, (uint32_t)a.match, now,
                        (uint32_t)a.ttl, &token);
    sodium_memzero(key, sizeof key);
    if (rc != TW_OK) {
        fprintf(stderr, "tickwire-token: cannot issue the token (the clock "
                        "or --ttl is out of range)\n");
        return 1;
    }
    char *json = tw_token_to_json(&token);
    sodium_memzero(&token, sizeof token);
    if (!json) {
        fprintf(stderr, "tickwire-token: cannot encode the token as JSON\n");
        return 1;
    }

    int status = 0;
    if (a.out) {
        /* The file ends in a newline like the standard output form. */
        size_t n = strlen(json);
        char *line = malloc(n + 2);
        if (!line) {
            fprintf(stderr, "tickwire-token: out of memory\n");
            status = 1;
        } else {
            memcpy(line, json, n);
            line[n] = '\n';
            line[n + 1] = '\0';
            if (write_new_file(a.out, line) != 0)
                status = 1;
            sodium_memzero(line, n + 2);
            free(line);
        }
    } else {
        if (puts(json) == EOF || fflush(stdout) != 0) {
            fprintf(stderr, "tickwire-token: cannot write the token to "
                            "standard output\n");
            status = 1;
        }
    }
    tw_token_json_free(json);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing command (keygen or issue)");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (tw_crypto_init() != TW_OK) {
        fprintf(stderr, "tickwire-token: libsodium failed to initialize\n");
        return 1;
    }
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "issue") == 0)
        return cmd_issue(argc - 1, argv + 1);
    return usage_error("unknown command %s (expected keygen or issue)", cmd);
}
