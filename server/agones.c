#include "agones.h"

#include "clock.h"
#include "log.h"
#include "protocol.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define NS_PER_MS UINT64_C(1000000)

struct tw_agones {
    struct tw_agones_options opt;
    pthread_t thread;
    int wake_fd; /* eventfd: the tick thread's flags changed */

    atomic_bool ready_requested;
    atomic_bool shutdown_requested;
    atomic_bool stop_requested;
    _Atomic uint64_t heartbeat_ns;

    /* Request thread only. */
    CURL *curl;
    struct curl_slist *headers;
    struct tw_ratelimit log_limit;
    bool ready_sent;
    unsigned shutdown_attempts;
    uint64_t ready_due_ns;
    uint64_t shutdown_due_ns;
    uint64_t health_due_ns;
};

int tw_agones_options_from_env(struct tw_agones_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->health_interval_ms = TW_AGONES_HEALTH_INTERVAL_MS;
    opt->timeout_ms = TW_AGONES_TIMEOUT_MS;
    opt->retry_ms = TW_AGONES_RETRY_MS;

    const char *text = getenv("AGONES_SDK_HTTP_PORT");
    if (!text || !text[0])
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long port = strtoul(text, &end, 10);
    if (errno || *end || text[0] < '0' || text[0] > '9' || port == 0 ||
        port > 65535) {
        TW_LOG(TW_ERROR, "agones", TW_NO_PEER,
               "AGONES_SDK_HTTP_PORT \"%.16s\" is not a port (1..65535)",
               text);
        return -1;
    }
    opt->port = (uint16_t)port;
    return 1;
}

static size_t discard_body(char *data, size_t size, size_t count, void *cls)
{
    (void)data;
    (void)cls;
    return size * count;
}

/* Wakes the request thread; a full eventfd counter already means awake. */
static void wake(struct tw_agones *a)
{
    uint64_t one = 1;
    ssize_t n = write(a->wake_fd, &one, sizeof one);
    (void)n;
}

/* Sends POST path with body "{}"; returns true on a 2xx response. */
static bool post(struct tw_agones *a, const char *path)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)a->opt.port,
             path);
    curl_easy_setopt(a->curl, CURLOPT_URL, url);

    CURLcode rc = curl_easy_perform(a->curl);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status >= 200 && status < 300)
        return true;

    uint64_t suppressed = 0;
    if (!tw_ratelimit_allow(&a->log_limit, tw_clock_mono_ns(), &suppressed))
        return false;
    char why[96];
    if (rc != CURLE_OK)
        snprintf(why, sizeof why, "%s", curl_easy_strerror(rc));
    else
        snprintf(why, sizeof why, "HTTP status %ld", status);
    if (suppressed)
        TW_LOG(TW_WARN, "agones", TW_NO_PEER,
               "POST %s failed: %s (%" PRIu64 " similar lines suppressed)",
               url, why, suppressed);
    else
        TW_LOG(TW_WARN, "agones", TW_NO_PEER, "POST %s failed: %s", url, why);
    return false;
}

static bool setup_curl(struct tw_agones *a)
{
    a->curl = curl_easy_init();
    a->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!a->curl || !a->headers)
        return false;
    CURL *c = a->curl;
    bool ok = true;
    ok &= curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}") == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 2L) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_HTTPHEADER, a->headers) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                           (long)a->opt.timeout_ms) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                           (long)a->opt.timeout_ms) == CURLE_OK;
    /* Signals would hit whichever thread the timer fires in. */
    ok &= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    /* An http_proxy variable must not route sidecar calls elsewhere. */
    ok &= curl_easy_setopt(c, CURLOPT_NOPROXY, "*") == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http") == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body) == CURLE_OK;
    return ok;
}

static uint64_t ms_to_ns(uint32_t ms)
{
    return (uint64_t)ms * NS_PER_MS;
}

/* Returns true when the thread has nothing more to do. */
static bool run_shutdown(struct tw_agones *a, uint64_t now_ns)
{
    if (now_ns < a->shutdown_due_ns)
        return false;
    if (post(a, "/shutdown")) {
        TW_LOG(TW_INFO, "agones", TW_NO_PEER, "sent Shutdown");
        return true;
    }
    if (++a->shutdown_attempts >= TW_AGONES_SHUTDOWN_ATTEMPTS) {
        TW_LOG(TW_ERROR, "agones", TW_NO_PEER,
               "giving up on Shutdown after %u attempts",
               a->shutdown_attempts);
        return true;
    }
    a->shutdown_due_ns = tw_clock_mono_ns() + ms_to_ns(a->opt.retry_ms);
    return false;
}

static void run_ready_and_health(struct tw_agones *a, uint64_t now_ns)
{
    if (!a->ready_sent && atomic_load(&a->ready_requested) &&
        now_ns >= a->ready_due_ns) {
        if (post(a, "/ready")) {
            a->ready_sent = true;
            a->health_due_ns =
                tw_clock_mono_ns() + ms_to_ns(a->opt.health_interval_ms);
            TW_LOG(TW_INFO, "agones", TW_NO_PEER, "sent Ready");
        } else {
            a->ready_due_ns = tw_clock_mono_ns() + ms_to_ns(a->opt.retry_ms);
        }
        return;
    }
    if (!a->ready_sent || now_ns < a->health_due_ns)
        return;

    uint64_t beat = atomic_load(&a->heartbeat_ns);
    bool stalled = a->opt.stall_ms && now_ns > beat &&
                   now_ns - beat > ms_to_ns(a->opt.stall_ms);
    if (stalled) {
        uint64_t suppressed = 0;
        if (tw_ratelimit_allow(&a->log_limit, now_ns, &suppressed))
            TW_LOG(TW_WARN, "agones", TW_NO_PEER,
                   "tick loop silent for %" PRIu64 " ms; withholding Health",
                   (now_ns - beat) / NS_PER_MS);
    } else {
        post(a, "/health");
    }
    /* Keep the schedule, but never fire a burst to make up for a stall. */
    a->health_due_ns += ms_to_ns(a->opt.health_interval_ms);
    uint64_t after = tw_clock_mono_ns();
    if (a->health_due_ns <= after)
        a->health_due_ns = after + ms_to_ns(a->opt.health_interval_ms);
}

/* Returns the poll timeout in ms until the next scheduled request. */
static int next_timeout_ms(const struct tw_agones *a, uint64_t now_ns)
{
    uint64_t due = UINT64_MAX;
    if (atomic_load(&a->shutdown_requested))
        due = a->shutdown_due_ns;
    else if (!a->ready_sent && atomic_load(&a->ready_requested))
        due = a->ready_due_ns;
    else if (a->ready_sent)
        due = a->health_due_ns;
    if (due == UINT64_MAX)
        return -1;
    if (due <= now_ns)
        return 0;
    uint64_t ms = (due - now_ns + NS_PER_MS - 1) / NS_PER_MS;
    return ms > 60000 ? 60000 : (int)ms;
}

static void *request_thread(void *arg)
{
    struct tw_agones *a = arg;
    for (;;) {
        struct pollfd pfd = {.fd = a->wake_fd, .events = POLLIN};
        int timeout = next_timeout_ms(a, tw_clock_mono_ns());
        if (poll(&pfd, 1, timeout) > 0) {
            uint64_t count;
            ssize_t n = read(a->wake_fd, &count, sizeof count);
            (void)n;
        }

        uint64_t now_ns = tw_clock_mono_ns();
        if (atomic_load(&a->shutdown_requested)) {
            if (run_shutdown(a, now_ns))
                break;
            continue;
        }
        if (atomic_load(&a->stop_requested))
            break;
        run_ready_and_health(a, now_ns);
    }
    return NULL;
}

static void free_agones(struct tw_agones *a)
{
    if (a->curl)
        curl_easy_cleanup(a->curl);
    curl_slist_free_all(a->headers);
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    free(a);
}

int tw_agones_start(const struct tw_agones_options *opt,
                    struct tw_agones **out)
{
    *out = NULL;
    if (opt->port == 0 || opt->health_interval_ms == 0 ||
        opt->timeout_ms == 0) {
        TW_LOG(TW_ERROR, "agones", TW_NO_PEER,
               "invalid options: port %u, health interval %" PRIu32
               " ms, timeout %" PRIu32 " ms (each must be > 0)",
               (unsigned)opt->port, opt->health_interval_ms, opt->timeout_ms);
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        TW_LOG(TW_ERROR, "agones", TW_NO_PEER, "curl_global_init failed");
        return -1;
    }
    struct tw_agones *a = calloc(1, sizeof *a);
    if (!a) {
        TW_LOG(TW_ERROR, "agones", TW_NO_PEER, "out of memory");
        curl_global_cleanup();
        return -1;
    }
    a->opt = *opt;
    a->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    atomic_init(&a->ready_requested, false);
    atomic_init(&a->shutdown_requested, false);
    atomic_init(&a->stop_requested, false);
    atomic_init(&a->heartbeat_ns, tw_clock_mono_ns());
    tw_ratelimit_init(&a->log_limit, 0.2, 3.0);

    if (a->wake_fd < 0 || !setup_curl(a)) {
        TW_LOG(TW_ERROR, "agones", TW_NO_PEER,
               "cannot set up the SDK client: %s", strerror(errno));
        free_agones(a);
        curl_global_cleanup();
        return -1;
    }
    int rc = pthread_create(&a->thread, NULL, request_thread, a);
    if (rc != 0) {
        TW_LOG(TW_ERROR, "agones", TW_NO_PEER,
               "cannot start the SDK thread: %s", strerror(rc));
        free_agones(a);
        curl_global_cleanup();
        return -1;
    }
    /* A name makes the thread easy to find in top -H and perf. */
    pthread_setname_np(a->thread, "tw-agones");
    TW_LOG(TW_INFO, "agones", TW_NO_PEER,
           "SDK client for 127.0.0.1:%u, Health every %" PRIu32 " ms",
           (unsigned)opt->port, opt->health_interval_ms);
    *out = a;
    return TW_OK;
}

void tw_agones_ready(struct tw_agones *a)
{
    if (!a || atomic_exchange(&a->ready_requested, true))
        return;
    wake(a);
}

void tw_agones_heartbeat(struct tw_agones *a)
{
    if (a)
        atomic_store_explicit(&a->heartbeat_ns, tw_clock_mono_ns(),
                              memory_order_relaxed);
}

void tw_agones_shutdown(struct tw_agones *a)
{
    if (!a || atomic_exchange(&a->shutdown_requested, true))
        return;
    wake(a);
}

void tw_agones_stop(struct tw_agones *a)
{
    if (!a)
        return;
    atomic_store(&a->stop_requested, true);
    wake(a);
    pthread_join(a->thread, NULL);
    free_agones(a);
    curl_global_cleanup();
}
