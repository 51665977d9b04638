/*
 * tickwire-relay: a UDP relay that applies an impairment profile to the
 * traffic between game clients and one upstream server, for the network
 * lab on loopback or in namespaces the operator created.
 *
 * Each client address gets its own upstream socket connected to the
 * server, so every client is a separate peer for the server. Packets wait in a heap
 * until their send time; ppoll sleeps until the earliest one is due.
 */
#include "impair.h"
#include "profile.h"
#include "delay_queue.h"

#include "clock.h"
#include "log.h"

#include <cjson/cJSON.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef TW_RELAY_PROFILE_DIR
#define TW_RELAY_PROFILE_DIR "sims/profiles"
#endif

#define EXIT_USAGE 2
#define MAX_DATAGRAM 65536u
#define RECV_BURST 64           /* datagrams read per socket per wakeup */
#define HASH_BUCKETS 8192u      /* power of two, at least MAX_CLIENTS_LIMIT */
#define MAX_CLIENTS_LIMIT 8192u
#define DEFAULT_MAX_CLIENTS 4096u
#define DEFAULT_IDLE_S 60.0
#define DELAYQ_MAX_PACKETS 100000u
#define DELAYQ_MAX_BYTES (64u * 1024u * 1024u)
#define EXPIRY_PERIOD_US 1000000u

struct mapping {
    int in_use;
    int fd; /* connected to the upstream */
    struct sockaddr_storage client;
    socklen_t client_len;
    uint64_t last_active_us;
    uint32_t pending; /* packets in the heap that refer to this mapping */
    uint64_t flow_last_due[TW_DIR_COUNT];
    int32_t next; /* hash chain, -1 ends it */
};

/* Counters the relay keeps beside those of the impairment engine. */
struct dir_stats {
    uint64_t forwarded;
    uint64_t bytes_forwarded;
    uint64_t dropped_overflow; /* relay memory bound, not the profile */
    uint64_t dropped_at_exit;
    uint64_t dropped_no_mapping;
    uint64_t send_errors;
};

struct options {
    const char *listen;
    const char *upstream;
    const char *profile;
    const char *profile_dir;
    const char *stats_path;
    uint64_t seed;
    double duration_s; /* 0 = until a signal */
    double idle_s;
    unsigned max_clients;
    int log_level;
};

struct relay {
    struct options opt;
    struct tw_impair_profile profile;
    struct tw_impair_dir dirs[TW_DIR_COUNT];
    struct dir_stats stats[TW_DIR_COUNT];
    struct sockaddr_storage listen_addr, upstream_addr;
    socklen_t listen_len, upstream_len;
    char listen_text[64], upstream_text[64];
    int listen_fd;

    struct mapping *maps;
    unsigned max_maps;
    int32_t buckets[HASH_BUCKETS];
    unsigned active, max_active;
    uint64_t created, expired, rejected;

    struct pollfd *pfds;
    uint32_t *pfd_owner; /* mapping index of pfds[i], i >= 1 */
    unsigned npfds;
    int pfds_dirty;

    struct tw_delayq delayq;
    uint64_t start_us;
    uint8_t buf[MAX_DATAGRAM];
    struct tw_ratelimit warn_limit;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static uint64_t now_us(void)
{
    return tw_clock_mono_ns() / 1000u;
}

static void usage(FILE *out)
{
    fprintf(out,
"usage: tickwire-relay --listen HOST:PORT --upstream HOST:PORT\n"
"                      --profile NAME|FILE [options]\n"
"\n"
"Relays UDP between clients and one server and applies an impairment\n"
"profile per direction (up = client to server, down = server to client).\n"
"HOST is a numeric IPv4 address, [IPv6] or localhost. Meant for loopback\n"
"or network namespaces you created.\n"
"\n"
"  --listen HOST:PORT     address clients send to (port 0 picks one)\n"
"  --upstream HOST:PORT   server address\n"
"  --profile NAME|FILE    profile name in the profile directory, or a\n"
"                         path to a .json file\n"
"  --profile-dir DIR      directory of named profiles\n"
"                         (default $TW_PROFILE_DIR or %s)\n"
"  --seed S               PRNG seed, decimal or 0x hex (default 1)\n"
"  --stats FILE.json      write the counters there at exit\n"
"  --duration SECONDS     stop after this long (default: until SIGINT or\n"
"                         SIGTERM)\n"
"  --idle-timeout SECONDS forget a client after this much silence\n"
"                         (default 60)\n"
"  --max-clients N        client mappings at once, 1..%u (default %u)\n"
"  --log-level LEVEL      debug, info, warn or error (default info)\n"
"  --help                 print this help\n"
"\n"
"Exit status: 0 after a clean stop, 1 on a runtime failure, 2 on bad\n"
"options or profile.\n",
            TW_RELAY_PROFILE_DIR, MAX_CLIENTS_LIMIT, DEFAULT_MAX_CLIENTS);
}

__attribute__((format(printf, 1, 2), noreturn)) static void
usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "tickwire-relay: %s (see --help)\n", msg);
    exit(EXIT_USAGE);
}

/* Parses HOST:PORT with a numeric host, [v6] or localhost, without DNS. */
static int parse_hostport(const char *text, int allow_port0,
                          struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *port_text;
    memset(ss, 0, sizeof(*ss));

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof(host))
            return -1;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port_text = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof(host))
            return -1;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        if (strchr(host, ':'))
            return -1; /* IPv6 needs brackets */
        port_text = colon + 1;
    }

    char *end;
    errno = 0;
    unsigned long port = strtoul(port_text, &end, 10);
    if (errno || end == port_text || *end || port > 65535 ||
        port_text[0] == '-' || (port == 0 && !allow_port0))
        return -1;

    if (text[0] == '[') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return -1;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a);
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return -1;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *len = sizeof(*a);
    return 0;
}

static void format_addr(const struct sockaddr_storage *ss, char *out,
                        size_t out_len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, out_len, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, out_len, "%s:%u", host, ntohs(a->sin_port));
    }
}

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

static double parse_seconds(const char *flag, const char *text, double min,
                            double max)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < min || v > max)
        usage_error("invalid %s '%s': expected seconds from %g to %g", flag,
                    text, min, max);
    return v;
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    enum { OPT_PROFILE_DIR = 256, OPT_IDLE, OPT_MAX_CLIENTS, OPT_LOG_LEVEL };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"profile", required_argument, NULL, 'p'},
        {"profile-dir", required_argument, NULL, OPT_PROFILE_DIR},
        {"seed", required_argument, NULL, 's'},
        {"stats", required_argument, NULL, 'S'},
        {"duration", required_argument, NULL, 'd'},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(opt, 0, sizeof(*opt));
    opt->seed = 1;
    opt->idle_s = DEFAULT_IDLE_S;
    opt->max_clients = DEFAULT_MAX_CLIENTS;
    opt->log_level = TW_INFO;
    const char *env_dir = getenv("TW_PROFILE_DIR");
    opt->profile_dir = env_dir && env_dir[0] ? env_dir : TW_RELAY_PROFILE_DIR;

    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'l':
            opt->listen = optarg;
            break;
        case 'u':
            opt->upstream = optarg;
            break;
        case 'p':
            opt->profile = optarg;
            break;
        case OPT_PROFILE_DIR:
            opt->profile_dir = optarg;
            break;
        case 's':
            errno = 0;
            opt->seed = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end || optarg[0] == '-')
                usage_error("invalid --seed '%s': expected an unsigned "
                            "64-bit number", optarg);
            break;
        case 'S':
            opt->stats_path = optarg;
            break;
        case 'd':
            opt->duration_s = parse_seconds("--duration", optarg, 0.001, 1e7);
            break;
        case OPT_IDLE:
            opt->idle_s = parse_seconds("--idle-timeout", optarg, 0.001, 1e7);
            break;
        case OPT_MAX_CLIENTS: {
            errno = 0;
            unsigned long n = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || n < 1 ||
                n > MAX_CLIENTS_LIMIT)
                usage_error("invalid --max-clients '%s': expected 1 to %u",
                            optarg, MAX_CLIENTS_LIMIT);
            opt->max_clients = (unsigned)n;
            break;
        }
        case OPT_LOG_LEVEL:
            opt->log_level = tw_log_level_parse(optarg);
            if (opt->log_level < 0)
                usage_error("invalid --log-level '%s': expected debug, info,"
                            " warn or error", optarg);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            usage_error("option %s needs a value", argv[optind - 1]);
        default:
            usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (!opt->listen)
        usage_error("missing --listen HOST:PORT");
    if (!opt->upstream)
        usage_error("missing --upstream HOST:PORT");
    if (!opt->profile)
        usage_error("missing --profile NAME|FILE");
}

/* Checks now that the stats file can be written, rather than at exit. */
static void check_stats_path(const char *path)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        usage_error("--stats path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        usage_error("cannot write --stats file %s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
}

static int open_udp(int family)
{
    return socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

__attribute__((format(printf, 2, 3))) static void
warn_limited(struct relay *r, const char *fmt, ...)
{
    uint64_t suppressed = 0;
    if (!tw_ratelimit_allow(&r->warn_limit, tw_clock_mono_ns(), &suppressed))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (suppressed)
        TW_LOG(TW_WARN, "relay", TW_NO_PEER,
               "%s (%" PRIu64 " similar warnings suppressed)", msg, suppressed);
    else
        TW_LOG(TW_WARN, "relay", TW_NO_PEER, "%s", msg);
}

static uint32_t hash_addr(const struct sockaddr_storage *ss)
{
    const uint8_t *p;
    size_t n;
    uint16_t port;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        p = a->sin6_addr.s6_addr;
        n = 16;
        port = a->sin6_port;
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        p = (const uint8_t *)&a->sin_addr.s_addr;
        n = 4;
        port = a->sin_port;
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    h = (h ^ (port & 0xffu)) * 16777619u;
    h = (h ^ (port >> 8)) * 16777619u;
    return h & (HASH_BUCKETS - 1);
}

static int same_addr(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
    }
    const struct sockaddr_in *x = (const struct sockaddr_in *)a;
    const struct sockaddr_in *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static struct mapping *find_mapping(struct relay *r,
                                    const struct sockaddr_storage *from)
{
    for (int32_t i = r->buckets[hash_addr(from)]; i >= 0; i = r->maps[i].next)
        if (same_addr(&r->maps[i].client, from))
            return &r->maps[i];
    return NULL;
}

static struct mapping *create_mapping(struct relay *r,
                                      const struct sockaddr_storage *from,
                                      socklen_t from_len, uint64_t now)
{
    if (r->active >= r->max_maps) {
        r->rejected++;
        warn_limited(r, "new client dropped: all %u mappings in use",
                     r->max_maps);
        return NULL;
    }
    unsigned idx = 0;
    while (r->maps[idx].in_use)
        idx++;

    int fd = open_udp(r->upstream_addr.ss_family);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&r->upstream_addr,
                          r->upstream_len) < 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        r->rejected++;
        warn_limited(r, "new client dropped: upstream socket failed: %s",
                     strerror(err));
        return NULL;
    }

    struct mapping *m = &r->maps[idx];
    memset(m, 0, sizeof(*m));
    m->in_use = 1;
    m->fd = fd;
    m->client = *from;
    m->client_len = from_len;
    m->last_active_us = now;
    uint32_t h = hash_addr(from);
    m->next = r->buckets[h];
    r->buckets[h] = (int32_t)idx;

    r->created++;
    r->active++;
    if (r->active > r->max_active)
        r->max_active = r->active;
    r->pfds_dirty = 1;

    char text[64];
    format_addr(from, text, sizeof(text));
    TW_LOG(TW_DEBUG, "relay", (long)idx, "new client %s", text);
    return m;
}

static void remove_mapping(struct relay *r, unsigned idx)
{
    struct mapping *m = &r->maps[idx];
    int32_t *link = &r->buckets[hash_addr(&m->client)];
    while (*link >= 0 && *link != (int32_t)idx)
        link = &r->maps[*link].next;
    if (*link == (int32_t)idx)
        *link = m->next;
    close(m->fd);
    m->in_use = 0;
    m->fd = -1;
    r->active--;
    r->pfds_dirty = 1;
}

/* Forgets clients silent for idle_s, unless packets for them still wait. */
static void expire_mappings(struct relay *r, uint64_t now)
{
    uint64_t idle_us = (uint64_t)(r->opt.idle_s * 1e6);
    for (unsigned i = 0; i < r->max_maps; i++) {
        struct mapping *m = &r->maps[i];
        if (!m->in_use || m->pending > 0 || now - m->last_active_us < idle_us)
            continue;
        TW_LOG(TW_DEBUG, "relay", (long)i, "client idle, mapping removed");
        remove_mapping(r, i);
        r->expired++;
    }
}

static void rebuild_pollfds(struct relay *r)
{
    r->npfds = 0;
    r->pfds[r->npfds].fd = r->listen_fd;
    r->pfds[r->npfds].events = POLLIN;
    r->npfds++;
    for (unsigned i = 0; i < r->max_maps; i++) {
        if (!r->maps[i].in_use)
            continue;
        r->pfds[r->npfds].fd = r->maps[i].fd;
        r->pfds[r->npfds].events = POLLIN;
        r->pfd_owner[r->npfds] = i;
        r->npfds++;
    }
    r->pfds_dirty = 0;
}

/* Runs one received datagram through the impairments and schedules it. */
static void schedule_packet(struct relay *r, enum tw_dir dir, unsigned idx,
                            size_t len, uint64_t now)
{
    struct mapping *m = &r->maps[idx];
    struct tw_impair_verdict v;
    tw_impair_decide(&r->dirs[dir], now, len, &m->flow_last_due[dir], &v);

    for (unsigned i = 0; i < v.copies; i++) {
        uint8_t *data = malloc(len ? len : 1);
        if (!data) {
            r->stats[dir].dropped_overflow++;
            continue;
        }
        memcpy(data, r->buf, len);
        if (v.copy[i].corrupt_bit >= 0)
            tw_impair_flip_bit(data, len, (uint64_t)v.copy[i].corrupt_bit);

        struct tw_delayq_item item = {
            .due_us = v.copy[i].due_us,
            .mapping = idx,
            .dir = (uint8_t)dir,
            .len = (uint32_t)len,
            .data = data,
        };
        if (tw_delayq_push(&r->delayq, &item) < 0) {
            free(data);
            r->stats[dir].dropped_overflow++;
            warn_limited(r, "%s packet dropped: relay holds %zu packets,"
                         " %zu bytes already", tw_dir_name(dir),
                         r->delayq.count, r->delayq.bytes);
            continue;
        }
        m->pending++;
    }
}

static void send_due(struct relay *r, uint64_t now)
{
    const struct tw_delayq_item *top;
    while ((top = tw_delayq_peek(&r->delayq)) && top->due_us <= now) {
        struct tw_delayq_item item;
        tw_delayq_pop(&r->delayq, &item);
        struct mapping *m = &r->maps[item.mapping];
        struct dir_stats *st = &r->stats[item.dir];
        ssize_t n;
        if (item.dir == TW_DIR_UP)
            n = send(m->fd, item.data, item.len, 0);
        else
            n = sendto(r->listen_fd, item.data, item.len, 0,
                       (const struct sockaddr *)&m->client, m->client_len);
        if (n < 0) {
            st->send_errors++;
            warn_limited(r, "send %s failed: %s",
                         tw_dir_name((enum tw_dir)item.dir), strerror(errno));
        } else {
            st->forwarded++;
            st->bytes_forwarded += item.len;
        }
        m->pending--;
        m->last_active_us = now;
        free(item.data);
    }
}

static void read_clients(struct relay *r)
{
    for (int i = 0; i < RECV_BURST; i++) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof(from);
        ssize_t n = recvfrom(r->listen_fd, r->buf, sizeof(r->buf), 0,
                             (struct sockaddr *)&from, &from_len);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                warn_limited(r, "receive from clients failed: %s",
                             strerror(errno));
            return;
        }
        uint64_t now = now_us();
        struct mapping *m = find_mapping(r, &from);
        if (!m)
            m = create_mapping(r, &from, from_len, now);
        if (!m) {
            r->dirs[TW_DIR_UP].counters.received++;
            r->dirs[TW_DIR_UP].counters.bytes_received += (uint64_t)n;
            r->stats[TW_DIR_UP].dropped_no_mapping++;
            continue;
        }
        m->last_active_us = now;
        schedule_packet(r, TW_DIR_UP, (unsigned)(m - r->maps), (size_t)n, now);
    }
}

static void read_upstream(struct relay *r, unsigned idx)
{
    for (int i = 0; i < RECV_BURST && r->maps[idx].in_use; i++) {
        ssize_t n = recv(r->maps[idx].fd, r->buf, sizeof(r->buf), 0);
        if (n < 0) {
            /* ECONNREFUSED reports an earlier send to a closed port. */
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNREFUSED)
                warn_limited(r, "receive from upstream failed: %s",
                             strerror(errno));
            return;
        }
        uint64_t now = now_us();
        r->maps[idx].last_active_us = now;
        schedule_packet(r, TW_DIR_DOWN, idx, (size_t)n, now);
    }
}

static int setup_sockets(struct relay *r)
{
    r->listen_fd = open_udp(r->listen_addr.ss_family);
    if (r->listen_fd < 0 ||
        bind(r->listen_fd, (const struct sockaddr *)&r->listen_addr,
             r->listen_len) < 0) {
        fprintf(stderr, "tickwire-relay: cannot listen on %s: %s\n",
                r->opt.listen, strerror(errno));
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    if (getsockname(r->listen_fd, (struct sockaddr *)&bound, &bound_len) == 0)
        format_addr(&bound, r->listen_text, sizeof(r->listen_text));
    return 0;
}

/*
 * Raises the open-file limit so that every mapping can have its socket.
 * When the hard limit is too low, the mapping cap shrinks to fit.
 */
static void fit_fd_limit(struct relay *r)
{
    const unsigned reserve = 32;
    struct rlimit rl;
    r->max_maps = r->opt.max_clients;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = (rlim_t)r->max_maps + reserve;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        unsigned fit = rl.rlim_cur > reserve + 1
                           ? (unsigned)(rl.rlim_cur - reserve) : 1;
        TW_LOG(TW_WARN, "relay", TW_NO_PEER,
               "open-file limit %llu allows %u clients, not %u",
               (unsigned long long)rl.rlim_cur, fit, r->max_maps);
        r->max_maps = fit;
    }
}

static int run_loop(struct relay *r)
{
    sigset_t block, wait_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &wait_mask);
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    uint64_t end_us = r->opt.duration_s > 0
                          ? r->start_us + (uint64_t)(r->opt.duration_s * 1e6)
                          : UINT64_MAX;
    uint64_t next_expiry = r->start_us + EXPIRY_PERIOD_US;
    r->pfds_dirty = 1;

    while (!stop_signal) {
        uint64_t now = now_us();
        send_due(r, now);
        if (now >= end_us)
            break;
        if (now >= next_expiry) {
            expire_mappings(r, now);
            next_expiry = now + EXPIRY_PERIOD_US;
        }
        if (r->pfds_dirty)
            rebuild_pollfds(r);

        uint64_t wake = end_us < next_expiry ? end_us : next_expiry;
        const struct tw_delayq_item *top = tw_delayq_peek(&r->delayq);
        if (top && top->due_us < wake)
            wake = top->due_us;
        now = now_us();
        uint64_t wait = wake > now ? wake - now : 0;
        struct timespec ts = {(time_t)(wait / 1000000u),
                              (long)(wait % 1000000u) * 1000};

        int ready = ppoll(r->pfds, r->npfds, &ts, &wait_mask);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "tickwire-relay: ppoll failed: %s\n",
                    strerror(errno));
            return -1;
        }
        if (ready == 0)
            continue;
        if (r->pfds[0].revents & POLLIN)
            read_clients(r);
        for (unsigned i = 1; i < r->npfds; i++)
            if (r->pfds[i].revents & (POLLIN | POLLERR))
                read_upstream(r, r->pfd_owner[i]);
    }
    return 0;
}

static cJSON *dir_json(const struct relay *r, enum tw_dir dir)
{
    const struct tw_impair_counters *c = &r->dirs[dir].counters;
    const struct dir_stats *s = &r->stats[dir];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "received", (double)c->received);
    cJSON_AddNumberToObject(o, "bytes_received", (double)c->bytes_received);
    cJSON_AddNumberToObject(o, "forwarded", (double)s->forwarded);
    cJSON_AddNumberToObject(o, "bytes_forwarded", (double)s->bytes_forwarded);
    cJSON_AddNumberToObject(o, "dropped_loss", (double)c->dropped_loss);
    cJSON_AddNumberToObject(o, "dropped_queue", (double)c->dropped_queue);
    cJSON_AddNumberToObject(o, "dropped_overflow", (double)s->dropped_overflow);
    cJSON_AddNumberToObject(o, "dropped_no_mapping",
                            (double)s->dropped_no_mapping);
    cJSON_AddNumberToObject(o, "dropped_at_exit", (double)s->dropped_at_exit);
    cJSON_AddNumberToObject(o, "send_errors", (double)s->send_errors);
    cJSON_AddNumberToObject(o, "duplicated", (double)c->duplicated);
    cJSON_AddNumberToObject(o, "reordered", (double)c->reordered);
    cJSON_AddNumberToObject(o, "corrupted", (double)c->corrupted);
    return o;
}

static int write_stats(const struct relay *r, double elapsed_s,
                       const char *stop_reason)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "profile", r->profile.name);
    cJSON_AddStringToObject(root, "profile_source", r->profile.source);
    char seed[24];
    snprintf(seed, sizeof(seed), "%" PRIu64, r->opt.seed);
    cJSON_AddStringToObject(root, "seed", seed);
    cJSON_AddStringToObject(root, "listen", r->listen_text);
    cJSON_AddStringToObject(root, "upstream", r->upstream_text);
    cJSON_AddNumberToObject(root, "elapsed_s", elapsed_s);
    cJSON_AddStringToObject(root, "stop_reason", stop_reason);

    cJSON *maps = cJSON_AddObjectToObject(root, "mappings");
    cJSON_AddNumberToObject(maps, "created", (double)r->created);
    cJSON_AddNumberToObject(maps, "expired", (double)r->expired);
    cJSON_AddNumberToObject(maps, "rejected", (double)r->rejected);
    cJSON_AddNumberToObject(maps, "active", r->active);
    cJSON_AddNumberToObject(maps, "max_active", r->max_active);
    cJSON_AddNumberToObject(maps, "limit", r->max_maps);

    cJSON *dirs = cJSON_AddObjectToObject(root, "directions");
    for (int d = 0; d < TW_DIR_COUNT; d++)
        cJSON_AddItemToObject(dirs, tw_dir_name((enum tw_dir)d),
                              dir_json(r, (enum tw_dir)d));

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -1;

    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", r->opt.stats_path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = 0;
    free(text);
    if (!ok || rename(tmp, r->opt.stats_path) < 0) {
        fprintf(stderr, "tickwire-relay: cannot write %s: %s\n",
                r->opt.stats_path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void print_summary(const struct relay *r, double elapsed_s,
                          const char *stop_reason)
{
    fprintf(stderr, "relay: stopped by %s after %.3f s, profile %s, seed %"
            PRIu64 "\n", stop_reason, elapsed_s, r->profile.name, r->opt.seed);
    for (int d = 0; d < TW_DIR_COUNT; d++) {
        const struct tw_impair_counters *c = &r->dirs[d].counters;
        const struct dir_stats *s = &r->stats[d];
        fprintf(stderr,
                "relay: %-4s received %" PRIu64 " (%" PRIu64 " B), forwarded %"
                PRIu64 " (%" PRIu64 " B), dropped: loss %" PRIu64
                ", queue %" PRIu64 ", overflow %" PRIu64 ", no-mapping %"
                PRIu64 ", at-exit %" PRIu64 "; send errors %" PRIu64
                ", duplicated %" PRIu64 ", reordered %" PRIu64
                ", corrupted %" PRIu64 "\n",
                tw_dir_name((enum tw_dir)d), c->received, c->bytes_received,
                s->forwarded, s->bytes_forwarded, c->dropped_loss,
                c->dropped_queue, s->dropped_overflow, s->dropped_no_mapping,
                s->dropped_at_exit, s->send_errors, c->duplicated,
                c->reordered, c->corrupted);
    }
    fprintf(stderr, "relay: mappings created %" PRIu64 ", expired %" PRIu64
            ", rejected %" PRIu64 ", max active %u of %u\n", r->created,
            r->expired, r->rejected, r->max_active, r->max_maps);
}

/* Counts and frees what is still waiting, then closes every socket. */
static void shutdown_relay(struct relay *r)
{
    struct tw_delayq_item item;
    while (tw_delayq_peek(&r->delayq)) {
        tw_delayq_pop(&r->delayq, &item);
        r->stats[item.dir].dropped_at_exit++;
        free(item.data);
    }
    tw_delayq_free(&r->delayq);
    for (unsigned i = 0; i < r->max_maps; i++)
        if (r->maps[i].in_use)
            close(r->maps[i].fd);
    if (r->listen_fd >= 0)
        close(r->listen_fd);
    free(r->maps);
    free(r->pfds);
    free(r->pfd_owner);
}

int main(int argc, char **argv)
{
    static struct relay relay;
    struct relay *r = &relay;
    parse_options(argc, argv, &r->opt);
    tw_log_open((enum tw_log_level)r->opt.log_level, TW_LOG_TEXT, NULL);

    if (parse_hostport(r->opt.listen, 1, &r->listen_addr, &r->listen_len) < 0)
        usage_error("invalid --listen '%s': expected IPV4:PORT, [IPV6]:PORT"
                    " or localhost:PORT", r->opt.listen);
    if (parse_hostport(r->opt.upstream, 0, &r->upstream_addr,
                       &r->upstream_len) < 0)
        usage_error("invalid --upstream '%s': expected IPV4:PORT, "
                    "[IPV6]:PORT or localhost:PORT with a port above 0",
                    r->opt.upstream);
    format_addr(&r->listen_addr, r->listen_text, sizeof(r->listen_text));
    format_addr(&r->upstream_addr, r->upstream_text, sizeof(r->upstream_text));

    char err[512];
    if (tw_profile_load(r->opt.profile, r->opt.profile_dir, &r->profile, err,
                        sizeof(err)) < 0)
        usage_error("%s", err);
    if (r->opt.stats_path)
        check_stats_path(r->opt.stats_path);
    if (!is_loopback(&r->upstream_addr) || !is_loopback(&r->listen_addr))
        TW_LOG(TW_WARN, "relay", TW_NO_PEER,
               "non-loopback address in use; the relay is meant for "
               "loopback or your own network namespaces");

    prctl(PR_SET_TIMERSLACK, 1UL); /* inherited slack is usually 50 us */
    tw_ratelimit_init(&r->warn_limit, 1.0, 5.0);
    fit_fd_limit(r);
    r->maps = calloc(r->max_maps, sizeof(*r->maps));
    r->pfds = calloc(r->max_maps + 1u, sizeof(*r->pfds));
    r->pfd_owner = calloc(r->max_maps + 1u, sizeof(*r->pfd_owner));
    if (!r->maps || !r->pfds || !r->pfd_owner) {
        fprintf(stderr, "tickwire-relay: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < HASH_BUCKETS; i++)
        r->buckets[i] = -1;
    tw_delayq_init(&r->delayq, DELAYQ_MAX_PACKETS, DELAYQ_MAX_BYTES);
    r->listen_fd = -1;
    if (setup_sockets(r) < 0) {
        shutdown_relay(r);
        return 1;
    }

    r->start_us = now_us();
    for (int d = 0; d < TW_DIR_COUNT; d++)
        tw_impair_dir_init(&r->dirs[d], &r->profile, (enum tw_dir)d,
                           r->opt.seed, r->start_us);
    TW_LOG(TW_INFO, "relay", TW_NO_PEER,
           "listening on %s, upstream %s, profile %s, seed %" PRIu64
           ", %u phases", r->listen_text, r->upstream_text, r->profile.name,
           r->opt.seed, r->profile.phase_count);

    int rc = run_loop(r) < 0 ? 1 : 0;
    double elapsed_s = (double)(now_us() - r->start_us) / 1e6;
    const char *reason = stop_signal == SIGINT    ? "SIGINT"
                         : stop_signal == SIGTERM ? "SIGTERM"
                         : rc == 0                ? "duration"
                                                  : "error";
    shutdown_relay(r);
    print_summary(r, elapsed_s, reason);
    if (r->opt.stats_path && write_stats(r, elapsed_s, reason) < 0)
        rc = 1;
    tw_log_close();
    return rc;
}
