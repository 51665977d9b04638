/*
 * tw-bench-floor: the cost floor tickwire is measured against. Three modes,
 * all on loopback and bounded by --duration:
 *
 *   server  a bare ENet host that sends every connected peer one payload
 *           of --payload bytes per tick on channel 1 (unreliable,
 *           sequenced, like snapshots) and throws away what peers send;
 *           it waits for ticks the way tickwire-server does (ppoll on the
 *           socket up to the deadline).
 *   client  --peers bare ENet peers that each send --input bytes per tick,
 *           unsequenced on channel 2 (like inputs), and drop what arrives.
 *   timer   a bare timerfd loop at --hz that only measures how late it
 *           wakes up.
 *
 * server and timer print one JSON line on exit: tick lateness percentiles
 * in microseconds and the process CPU time. No sessions, no AEAD, no game
 * logic: whatever tickwire costs above this is its own.
 */
#include <enet/enet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (240u * 3600u)
#define CHANNELS 3

struct options {
    const char *mode;
    const char *server;
    unsigned port;
    unsigned peers;
    unsigned hz;
    unsigned payload;
    unsigned input;
    unsigned burst;
    double duration;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t *samples;
static size_t sample_count;

static void add_sample(uint64_t us)
{
    if (sample_count < MAX_SAMPLES)
        samples[sample_count++] = us;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t percentile(double p)
{
    if (sample_count == 0)
        return 0;
    size_t i = (size_t)(p * (double)(sample_count - 1) + 0.5);
    return samples[i];
}

static void report(const char *mode, unsigned peers)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    qsort(samples, sample_count, sizeof *samples, cmp_u64);
    printf("{\"mode\": \"%s\", \"peers\": %u, \"ticks\": %zu, "
           "\"late_p50_us\": %llu, \"late_p99_us\": %llu, "
           "\"late_max_us\": %llu, \"cpu_s\": %.3f}\n",
           mode, peers, sample_count, (unsigned long long)percentile(0.5),
           (unsigned long long)percentile(0.99),
           (unsigned long long)(sample_count ? samples[sample_count - 1] : 0),
           cpu);
    fflush(stdout);
}

static void wait_until(ENetHost *host, uint64_t deadline)
{
    uint64_t now = mono_ns();
    if (now >= deadline)
        return;
    uint64_t left = deadline - now;
    struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                          .tv_nsec = (long)(left % 1000000000u)};
    struct pollfd pfd = {.fd = host->socket, .events = POLLIN};
    ppoll(&pfd, 1, &ts, NULL);
}

/* Handles every waiting event; returns how many peers connected. */
static int service(ENetHost *host)
{
    ENetEvent ev;
    int connected = 0;
    for (int i = 0; i < 8192; i++) {
        enet_time_set((enet_uint32)(mono_ns() / 1000000u));
        if (enet_host_service(host, &ev, 0) <= 0)
            break;
        if (ev.type == ENET_EVENT_TYPE_RECEIVE)
            enet_packet_destroy(ev.packet);
        else if (ev.type == ENET_EVENT_TYPE_CONNECT)
            connected++;
        else if (ev.type == ENET_EVENT_TYPE_DISCONNECT)
            connected--;
    }
    return connected;
}

/* Sends len bytes to every connected peer on channel. */
static void broadcast(ENetHost *host, const uint8_t *data, size_t len,
                      uint8_t channel, uint32_t flags)
{
    for (size_t i = 0; i < host->peerCount; i++) {
        ENetPeer *p = &host->peers[i];
        if (p->state != ENET_PEER_STATE_CONNECTED)
            continue;
        ENetPacket *packet = enet_packet_create(data, len, flags);
        if (packet && enet_peer_send(p, channel, packet) < 0)
            enet_packet_destroy(packet);
    }
}

static int run_server(const struct options *o)
{
    ENetAddress addr = {.port = (enet_uint16)o->port};
    enet_address_set_host_ip(&addr, "127.0.0.1");
    ENetHost *host = enet_host_create(&addr, o->peers + 16, CHANNELS, 0, 0);
    if (!host) {
        fprintf(stderr, "tw-bench-floor: cannot listen on port %u\n", o->port);
        return 1;
    }
    uint8_t payload[4096];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 131u + 7u);
    fprintf(stderr, "tw-bench-floor: listening on 127.0.0.1:%u\n", o->port);

    uint64_t start = mono_ns(), period = 1000000000ull / o->hz;
    uint64_t end = start + (uint64_t)(o->duration * 1e9);
    uint64_t tick = 1;
    int connected = 0;
    while (!stop && mono_ns() < end) {
        uint64_t deadline = start + tick * period;
        uint64_t now = mono_ns();
        if (now >= deadline) {
            connected += service(host);
            add_sample((now - deadline) / 1000u);
            broadcast(host, payload, o->payload, 1, 0);
            enet_host_flush(host);
            tick++;
            while (start + tick * period < now) /* skip what was missed */
                tick++;
            continue;
        }
        wait_until(host, deadline);
        connected += service(host);
    }
    fprintf(stderr, "tw-bench-floor: %d peers connected at the end\n",
            connected);
    report("server", (unsigned)connected);
    enet_host_destroy(host);
    return 0;
}

static int run_client(const struct options *o)
{
    ENetAddress to;
    const char *colon = strrchr(o->server, ':');
    char hostname[64];
    if (!colon || (size_t)(colon - o->server) >= sizeof hostname)
        return 2;
    memcpy(hostname, o->server, (size_t)(colon - o->server));
    hostname[colon - o->server] = '\0';
    to.port = (enet_uint16)atoi(colon + 1);
    if (enet_address_set_host_ip(&to, hostname) != 0)
        return 2;
    ENetHost *host = enet_host_create(NULL, o->peers, CHANNELS, 0, 0);
    if (!host)
        return 1;
    uint8_t input[256] = {0x60};

    uint64_t start = mono_ns(), period = 1000000000ull / o->hz;
    uint64_t end = start + (uint64_t)(o->duration * 1e9);
    uint64_t tick = 1;
    unsigned started = 0;
    int connected = 0, reported = 0;
    while (!stop && mono_ns() < end) {
        uint64_t deadline = start + tick * period;
        uint64_t now = mono_ns();
        if (now >= deadline) {
            connected += service(host);
            unsigned pending = started - (unsigned)connected;
            while (started < o->peers && pending < o->burst) {
                enet_host_connect(host, &to, CHANNELS, 0);
                started++;
                pending++;
            }
            broadcast(host, input, o->input, 2,
                      ENET_PACKET_FLAG_UNSEQUENCED);
            enet_host_flush(host);
            if (connected == (int)o->peers && !reported) {
                printf("connected %d\n", connected);
                fflush(stdout);
                reported = 1;
            }
            tick++;
            while (start + tick * period < now)
                tick++;
            continue;
        }
        wait_until(host, deadline);
        connected += service(host);
    }
    for (size_t i = 0; i < host->peerCount; i++)
        if (host->peers[i].state == ENET_PEER_STATE_CONNECTED)
            enet_peer_disconnect_now(&host->peers[i], 0);
    enet_host_destroy(host);
    return 0;
}

static int run_timer(const struct options *o)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    if (fd < 0)
        return 1;
    uint64_t period = 1000000000ull / o->hz;
    uint64_t start = mono_ns();
    uint64_t ticks = (uint64_t)(o->duration * o->hz);
    for (uint64_t k = 1; k <= ticks && !stop; k++) {
        uint64_t deadline = start + k * period;
        struct itimerspec its = {
            .it_value = {.tv_sec = (time_t)(deadline / 1000000000u),
                         .tv_nsec = (long)(deadline % 1000000000u)}};
        if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
            return 1;
        uint64_t expirations;
        if (read(fd, &expirations, sizeof expirations) < 0 && errno != EINTR)
            return 1;
        uint64_t now = mono_ns();
        add_sample(now > deadline ? (now - deadline) / 1000u : 0);
    }
    close(fd);
    report("timer", 0);
    return 0;
}

static void usage(void)
{
    fputs("usage: tw-bench-floor server --port P --peers N --payload BYTES\n"
          "       tw-bench-floor client --server HOST:PORT --peers N "
          "--input BYTES\n"
          "       tw-bench-floor timer\n"
          "common: --hz HZ (30) --duration SECONDS (10); client: --burst N "
          "(32)\n",
          stderr);
}

int main(int argc, char **argv)
{
    struct options o = {.port = 7800, .peers = 64, .hz = 30, .payload = 100,
                        .input = 40, .burst = 32, .duration = 10,
                        .server = "127.0.0.1:7800"};
    if (argc < 2) {
        usage();
        return 2;
    }
    o.mode = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        long n = strtol(v, NULL, 10);
        if (!strcmp(k, "--port"))
            o.port = (unsigned)n;
        else if (!strcmp(k, "--peers"))
            o.peers = (unsigned)n;
        else if (!strcmp(k, "--hz"))
            o.hz = (unsigned)n;
        else if (!strcmp(k, "--payload"))
            o.payload = (unsigned)n;
        else if (!strcmp(k, "--input"))
            o.input = (unsigned)n;
        else if (!strcmp(k, "--burst"))
            o.burst = (unsigned)n;
        else if (!strcmp(k, "--duration"))
            o.duration = strtod(v, NULL);
        else if (!strcmp(k, "--server"))
            o.server = v;
        else {
            usage();
            return 2;
        }
    }
    if (o.hz == 0 || o.hz > 240 || o.peers == 0 || o.peers > 4095 ||
        o.payload > 4096 || o.input == 0 || o.input > 256 || o.burst == 0 ||
        !(o.duration > 0 && o.duration <= 3600)) {
        usage();
        return 2;
    }
    samples = calloc(MAX_SAMPLES, sizeof *samples);
    if (!samples || enet_initialize() != 0)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc;
    if (!strcmp(o.mode, "server"))
        rc = run_server(&o);
    else if (!strcmp(o.mode, "client"))
        rc = run_client(&o);
    else if (!strcmp(o.mode, "timer"))
        rc = run_timer(&o);
    else {
        usage();
        rc = 2;
    }
    enet_deinitialize();
    free(samples);
    return rc;
}
