/*
 * The config loader on an explicit-length buffer (no NUL terminator). A
 * config that loads must satisfy the cross-key rules and hold terminated
 * strings.
 */
#include "fuzz.h"

#include "config.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_config cfg;
    char err[512];
    tw_config_defaults(&cfg);
    err[0] = '\0';
    if (tw_config_parse("fuzz.json", (const char *)data, size, &cfg, err,
                        sizeof err) != 0) {
        FUZZ_REQUIRE(memchr(err, '\0', sizeof err) != NULL);
        FUZZ_REQUIRE(err[0] != '\0');
        return 0;
    }
    FUZZ_REQUIRE(memchr(cfg.server.host, '\0', sizeof cfg.server.host));
    FUZZ_REQUIRE(memchr(cfg.security.key_file, '\0',
                        sizeof cfg.security.key_file));
    FUZZ_REQUIRE(memchr(cfg.log.path, '\0', sizeof cfg.log.path));
    FUZZ_REQUIRE(cfg.server.peer_timeout_min_ms <= cfg.server.peer_timeout_ms);
    FUZZ_REQUIRE(cfg.match.tick_hz >= 1);
    FUZZ_REQUIRE(cfg.store.starter_count <= TW_MAX_STARTER_ITEMS);
    return 0;
}
