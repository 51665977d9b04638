/* tickwire-server: command line, configuration and signals. */
#include "config.h"
#include "crypto.h"
#include "log.h"
#include "server.h"
#include "store.h"

#include <arpa/inet.h>
#include <enet/enet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reopen_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reopen_requested = 1;
    else
        stop_requested = 1;
}

/*
 * Checks what the config names outside itself: addresses, the match key,
 * the log file and the store's location. Fills err with one line naming
 * the config file and the key; returns 0 or -1. Needs libsodium ready.
 */
static int check_resources(const char *path, const struct tw_config *cfg,
                           char *err, size_t errlen)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, cfg->server.host, &v4) != 1) {
        snprintf(err, errlen, "%s: server.host: \"%s\" is not an IPv4 "
                 "address", path, cfg->server.host);
        return -1;
    }
    if (cfg->http.port != 0 && inet_pton(AF_INET, cfg->http.host, &v4) != 1 &&
        inet_pton(AF_INET6, cfg->http.host, &v6) != 1) {
        snprintf(err, errlen, "%s: http.host: \"%s\" is not an IPv4 or "
                 "IPv6 address", path, cfg->http.host);
        return -1;
    }

    if (cfg->security.key_file[0] == '\0') {
        snprintf(err, errlen, "%s: security.key_file: missing; create a key "
                 "with 'tickwire-token keygen --out match.key' and name it "
                 "here", path);
        return -1;
    }
    uint8_t key[TW_KEY_BYTES];
    char why[256];
    int rc = tw_key_load(cfg->security.key_file, key, why, sizeof why);
    sodium_memzero(key, sizeof key);
    if (rc != TW_OK) {
        snprintf(err, errlen, "%s: security.key_file: %s", path, why);
        return -1;
    }

    struct stat st;
    const char *log = cfg->log.path;
    if (log[0] && stat(log, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: log.path: %s is not a regular file", path,
                 log);
        return -1;
    }
    int fd = log[0] ? open(log, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK |
                                    O_CLOEXEC, 0640)
                    : -2;
    if (fd == -1) {
        snprintf(err, errlen, "%s: log.path: cannot open %s: %s", path, log,
                 strerror(errno));
        return -1;
    }
    if (fd >= 0)
        close(fd);

    const char *store = cfg->store.path;
    if (stat(store, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: store.path: %s is not a regular file",
                 path, store);
        return -1;
    }
    return 0;
}

static void usage(FILE *out)
{
    fputs("usage: tickwire-server --config FILE [--check | --audit]\n"
          "\n"
          "Hosts one match: an ENet server on UDP with a fixed-tick loop.\n"
          "\n"
          "  -c, --config FILE  match configuration (JSON); see README.md\n"
          "      --check        validate the configuration and exit\n"
          "      --audit        check the store (store.path) and print a\n"
          "                     JSON report: totals per item kind against\n"
          "                     the starter grants, most owners of one\n"
          "                     item id, integrity check, trades committed.\n"
          "                     Read only; run it while no server uses\n"
          "                     the file, or any time after a crash\n"
          "  -h, --help         show this help\n"
          "  -V, --version      print the version\n"
          "\n"
          "Signals: SIGINT or SIGTERM disconnects every player with reason\n"
          "\"shutdown\" and exits 0; SIGHUP reopens the log file.\n"
          "Exit status: 0 clean stop, 1 runtime failure, 2 bad usage or\n"
          "configuration. --audit: 0 consistent, 3 inconsistent, 1 the\n"
          "audit could not run (missing file, old schema).\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"audit", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    int check_only = 0;
    int audit = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'k':
            check_only = 1;
            break;
        case 'a':
            audit = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("tickwire-server %s (protocol %u)\n", TW_VERSION,
                   TW_PROTOCOL_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config_path || optind != argc) {
        fprintf(stderr, "tickwire-server: %s\n",
                config_path ? "unexpected argument" : "missing --config FILE");
        usage(stderr);
        return 2;
    }

    struct tw_config cfg;
    char err[512];
    tw_config_defaults(&cfg);
    if (tw_config_load(config_path, &cfg, err, sizeof err) != TW_OK) {
        fprintf(stderr, "tickwire-server: %s\n", err);
        return 2;
    }
    if (check_only && audit) {
        fprintf(stderr, "tickwire-server: give --check or --audit, not both\n");
        return 2;
    }
    if (audit)
        return tw_store_audit(cfg.store.path, stdout);
    if (tw_crypto_init() != TW_OK) {
        fprintf(stderr, "tickwire-server: cannot initialize libsodium\n");
        return 1;
    }
    if (check_resources(config_path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "tickwire-server: %s\n", err);
        return 2;
    }
    if (check_only) {
        printf("%s: ok\n", config_path);
        return 0;
    }

    if (tw_log_open(cfg.log.level, cfg.log.format, cfg.log.path) != 0) {
        fprintf(stderr, "tickwire-server: %s: log.path: cannot open %s: %s\n",
                config_path, cfg.log.path, strerror(errno));
        return 2;
    }
    if (enet_initialize() != 0) {
        TW_LOG(TW_ERROR, "server", TW_NO_PEER, "cannot initialize ENet");
        return 1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct tw_server *server = tw_server_create(&cfg);
    if (!server) {
        enet_deinitialize();
        return 1;
    }
    int rc = tw_server_run(server, &stop_requested, &reopen_requested);
    tw_server_destroy(server);
    enet_deinitialize();
    TW_LOG(TW_INFO, "server", TW_NO_PEER, "stopped");
    tw_log_close();
    return rc == 0 ? 0 : 1;
}
