#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define NAME "t.json"

static char err[512];

/* Parses text into a fresh default config; returns the parse result. */
static int parse(const char *text, struct tw_config *cfg)
{
    tw_config_defaults(cfg);
    memset(err, 0, sizeof err);
    return tw_config_parse(NAME, text, strlen(text), cfg, err, sizeof err);
}

/* Asserts that text is rejected with exactly the message expected. */
static void expect_error(const char *text, const char *expected)
{
    struct tw_config cfg;
    int rc = parse(text, &cfg);
    assert_int_equal(rc, -1);
    assert_string_equal(err, expected);
}

static void assert_same_config(const struct tw_config *a,
                               const struct tw_config *b)
{
    assert_string_equal(a->server.host, b->server.host);
    assert_int_equal(a->server.port, b->server.port);
    assert_int_equal(a->server.max_connections, b->server.max_connections);
    assert_int_equal(a->server.peer_timeout_ms, b->server.peer_timeout_ms);
    assert_int_equal(a->server.peer_timeout_min_ms,
                     b->server.peer_timeout_min_ms);
    assert_int_equal(a->match.match_id, b->match.match_id);
    assert_int_equal(a->match.max_players, b->match.max_players);
    assert_int_equal(a->match.tick_hz, b->match.tick_hz);
    assert_true(a->match.world_width == b->match.world_width);
    assert_true(a->match.world_height == b->match.world_height);
    assert_true(a->match.max_speed == b->match.max_speed);
    assert_true(a->match.spawn_x == b->match.spawn_x);
    assert_true(a->match.spawn_y == b->match.spawn_y);
    assert_true(a->match.spawn_width == b->match.spawn_width);
    assert_true(a->match.spawn_height == b->match.spawn_height);
    assert_true(a->match.view_radius == b->match.view_radius);
    assert_int_equal(a->match.max_visible, b->match.max_visible);
    assert_int_equal(a->match.duration_s, b->match.duration_s);
    assert_int_equal(a->match.empty_timeout_s, b->match.empty_timeout_s);
    assert_int_equal(a->match.event_interval_ms, b->match.event_interval_ms);
    assert_string_equal(a->security.key_file, b->security.key_file);
    assert_int_equal(a->security.rate_limit, b->security.rate_limit);
    assert_int_equal(a->security.rate_burst, b->security.rate_burst);
    assert_int_equal(a->security.max_connections,
                     b->security.max_connections);
    assert_int_equal(a->security.max_per_ip, b->security.max_per_ip);
    assert_int_equal(a->security.login_timeout_ms,
                     b->security.login_timeout_ms);
    assert_int_equal(a->security.token_skew_s, b->security.token_skew_s);
    assert_int_equal(a->security.max_packet_size,
                     b->security.max_packet_size);
    assert_int_equal(a->security.max_waiting_data,
                     b->security.max_waiting_data);
    assert_int_equal(a->log.level, b->log.level);
    assert_int_equal(a->log.format, b->log.format);
    assert_string_equal(a->log.path, b->log.path);
    assert_string_equal(a->store.path, b->store.path);
    assert_int_equal(a->store.test_commit_delay_ms,
                     b->store.test_commit_delay_ms);
    assert_int_equal(a->store.starter_count, b->store.starter_count);
    for (size_t i = 0; i < a->store.starter_count; i++) {
        assert_string_equal(a->store.starter[i].kind, b->store.starter[i].kind);
        assert_int_equal(a->store.starter[i].quantity,
                         b->store.starter[i].quantity);
    }
    assert_int_equal(a->trade.timeout_ms, b->trade.timeout_ms);
    assert_string_equal(a->http.host, b->http.host);
    assert_int_equal(a->http.port, b->http.port);
    assert_int_equal(a->http.overrun_degraded, b->http.overrun_degraded);
    assert_int_equal(a->http.store_lag_degraded_ms,
                     b->http.store_lag_degraded_ms);
}

static void defaults_have_documented_values(void **state)
{
    (void)state;
    struct tw_config c;
    memset(&c, 0xa5, sizeof c);
    tw_config_defaults(&c);
    assert_string_equal(c.server.host, "127.0.0.1");
    assert_int_equal(c.server.port, 7777);
    assert_int_equal(c.server.max_connections, 256);
    assert_int_equal(c.server.peer_timeout_ms, 10000);
    assert_int_equal(c.server.peer_timeout_min_ms, 5000);
    assert_int_equal(c.match.match_id, 1);
    assert_int_equal(c.match.max_players, 256);
    assert_int_equal(c.match.tick_hz, 30);
    assert_true(c.match.world_width == 1024.0f);
    assert_true(c.match.world_height == 1024.0f);
    assert_true(c.match.max_speed == 8.0f);
    assert_true(c.match.spawn_x == 0.0f);
    assert_true(c.match.spawn_y == 0.0f);
    assert_true(c.match.spawn_width == 64.0f);
    assert_true(c.match.spawn_height == 64.0f);
    assert_true(c.match.view_radius == 64.0f);
    assert_int_equal(c.match.max_visible, 64);
    assert_int_equal(c.match.duration_s, 0);
    assert_int_equal(c.match.empty_timeout_s, 0);
    assert_int_equal(c.match.event_interval_ms, 1000);
    assert_string_equal(c.security.key_file, "");
    assert_int_equal(c.security.rate_limit, 120);
    assert_int_equal(c.security.rate_burst, 240);
    assert_int_equal(c.security.max_connections, 64);
    assert_int_equal(c.security.max_per_ip, 32);
    assert_int_equal(c.security.login_timeout_ms, 5000);
    assert_int_equal(c.security.token_skew_s, 30);
    assert_int_equal(c.security.max_packet_size, 4096);
    assert_int_equal(c.security.max_waiting_data, 65536);
    assert_int_equal(c.log.level, TW_INFO);
    assert_int_equal(c.log.format, TW_LOG_TEXT);
    assert_string_equal(c.log.path, "");
    assert_string_equal(c.store.path, "tickwire.db");
    assert_int_equal(c.store.test_commit_delay_ms, 0);
    assert_int_equal(c.store.starter_count, 3);
    assert_string_equal(c.store.starter[0].kind, "gold");
    assert_int_equal(c.store.starter[0].quantity, 100);
    assert_string_equal(c.store.starter[1].kind, "sword");
    assert_int_equal(c.store.starter[1].quantity, 1);
    assert_string_equal(c.store.starter[2].kind, "potion");
    assert_int_equal(c.store.starter[2].quantity, 5);
    assert_int_equal(c.trade.timeout_ms, 30000);
    assert_string_equal(c.http.host, "127.0.0.1");
    assert_int_equal(c.http.port, 0);
    assert_int_equal(c.http.overrun_degraded, 30);
    assert_int_equal(c.http.store_lag_degraded_ms, 1000);
}

static void empty_object_gives_defaults(void **state)
{
    (void)state;
    struct tw_config parsed, defaults;
    assert_int_equal(parse("{}", &parsed), 0);
    assert_string_equal(err, "");
    tw_config_defaults(&defaults);
    assert_same_config(&parsed, &defaults);
}

static void missing_keys_keep_defaults(void **state)
{
    (void)state;
    struct tw_config c, defaults;
    assert_int_equal(parse("{\"match\": {\"tick_hz\": 60}}", &c), 0);
    assert_int_equal(c.match.tick_hz, 60);
    tw_config_defaults(&defaults);
    defaults.match.tick_hz = 60;
    assert_same_config(&c, &defaults);
}

static const char full_config[] =
    "{\n"
    " \"server\": {\"host\": \"0.0.0.0\", \"port\": 9000,\n"
    "  \"max_connections\": 4095, \"peer_timeout_ms\": 20000,\n"
    "  \"peer_timeout_min_ms\": 100},\n"
    " \"match\": {\"match_id\": 4294967295, \"max_players\": 4095,\n"
    "  \"tick_hz\": 240,\n"
    "  \"world_width\": 2048.5, \"world_height\": 512, \"max_speed\": 0.25,\n"
    "  \"spawn_x\": 10, \"spawn_y\": 20.5, \"spawn_width\": 2038.5,\n"
    "  \"spawn_height\": 0, \"view_radius\": 100, \"max_visible\": 256,\n"
    "  \"duration_s\": 600, \"empty_timeout_s\": 30,\n"
    "  \"event_interval_ms\": 250},\n"
    " \"security\": {\"key_file\": \"/etc/tickwire/match.key\",\n"
    "  \"rate_limit\": 60, \"rate_burst\": 90, \"max_connections\": 8,\n"
    "  \"max_per_ip\": 2, \"login_timeout_ms\": 2500, \"token_skew_s\": 0,\n"
    "  \"max_packet_size\": 1500, \"max_waiting_data\": 1500},\n"
    " \"log\": {\"level\": \"debug\", \"format\": \"json\",\n"
    "  \"path\": \"/var/log/tw.log\"},\n"
    " \"store\": {\"path\": \"/srv/tw.db\", \"test_commit_delay_ms\": 50,\n"
    "  \"starter_items\": [{\"quantity\": 1000000, \"kind\": \"a_9\"}]},\n"
    " \"trade\": {\"timeout_ms\": 100},\n"
    " \"http\": {\"host\": \"::1\", \"port\": 8080,\n"
    "  \"overrun_degraded\": 1, \"store_lag_degraded_ms\": 600000}\n"
    "}\n";

static void full_config_sets_every_key(void **state)
{
    (void)state;
    struct tw_config c;
    assert_int_equal(parse(full_config, &c), 0);
    assert_string_equal(c.server.host, "0.0.0.0");
    assert_int_equal(c.server.port, 9000);
    assert_int_equal(c.server.max_connections, 4095);
    assert_int_equal(c.server.peer_timeout_ms, 20000);
    assert_int_equal(c.server.peer_timeout_min_ms, 100);
    assert_int_equal(c.match.match_id, UINT32_MAX);
    assert_int_equal(c.match.max_players, 4095);
    assert_int_equal(c.match.tick_hz, 240);
    assert_true(c.match.world_width == 2048.5f);
    assert_true(c.match.world_height == 512.0f);
    assert_true(c.match.max_speed == 0.25f);
    assert_true(c.match.spawn_x == 10.0f);
    assert_true(c.match.spawn_y == 20.5f);
    assert_true(c.match.spawn_width == 2038.5f);
    assert_true(c.match.spawn_height == 0.0f);
    assert_true(c.match.view_radius == 100.0f);
    assert_int_equal(c.match.max_visible, 256);
    assert_int_equal(c.match.duration_s, 600);
    assert_int_equal(c.match.empty_timeout_s, 30);
    assert_int_equal(c.match.event_interval_ms, 250);
    assert_string_equal(c.security.key_file, "/etc/tickwire/match.key");
    assert_int_equal(c.security.rate_limit, 60);
    assert_int_equal(c.security.rate_burst, 90);
    assert_int_equal(c.security.max_connections, 8);
    assert_int_equal(c.security.max_per_ip, 2);
    assert_int_equal(c.security.login_timeout_ms, 2500);
    assert_int_equal(c.security.token_skew_s, 0);
    assert_int_equal(c.security.max_packet_size, 1500);
    assert_int_equal(c.security.max_waiting_data, 1500);
    assert_int_equal(c.log.level, TW_DEBUG);
    assert_int_equal(c.log.format, TW_LOG_JSON);
    assert_string_equal(c.log.path, "/var/log/tw.log");
    assert_string_equal(c.store.path, "/srv/tw.db");
    assert_int_equal(c.store.test_commit_delay_ms, 50);
    assert_int_equal(c.store.starter_count, 1);
    assert_string_equal(c.store.starter[0].kind, "a_9");
    assert_int_equal(c.store.starter[0].quantity, 1000000);
    assert_int_equal(c.trade.timeout_ms, 100);
    assert_string_equal(c.http.host, "::1");
    assert_int_equal(c.http.port, 8080);
    assert_int_equal(c.http.overrun_degraded, 1);
    assert_int_equal(c.http.store_lag_degraded_ms, 600000);
}

static void example_file_loads(void **state)
{
    (void)state;
    struct tw_config c;
    tw_config_defaults(&c);
    int rc = tw_config_load(TW_SOURCE_DIR "/configs/match.json", &c, err,
                            sizeof err);
    assert_string_equal(err, "");
    assert_int_equal(rc, 0);
    assert_int_equal(c.server.port, 7777);
    assert_int_equal(c.match.tick_hz, 30);
    assert_true(c.match.spawn_x == 448.0f);
    assert_true(c.match.spawn_width == 128.0f);
    assert_int_equal(c.store.starter_count, 3);
    assert_string_equal(c.store.starter[2].kind, "potion");
}

static void load_reads_a_file(void **state)
{
    (void)state;
    char path[] = "/tmp/tw_config_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "{\"trade\": {\"timeout_ms\": 1234}}";
    assert_int_equal(write(fd, text, sizeof text - 1), sizeof text - 1);
    close(fd);

    struct tw_config c;
    tw_config_defaults(&c);
    int rc = tw_config_load(path, &c, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, 0);
    assert_int_equal(c.trade.timeout_ms, 1234);
}

static void missing_file_is_named(void **state)
{
    (void)state;
    struct tw_config c;
    tw_config_defaults(&c);
    int rc = tw_config_load("/nonexistent/tw.json", &c, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_string_equal(err, "/nonexistent/tw.json: cannot open: "
                             "No such file or directory");
}

static void directory_is_not_a_file(void **state)
{
    (void)state;
    struct tw_config c;
    tw_config_defaults(&c);
    assert_int_equal(tw_config_load("/", &c, err, sizeof err), -1);
    assert_string_equal(err, "/: not a regular file");
}

static void fifo_is_rejected_without_blocking(void **state)
{
    (void)state;
    char dir[] = "/tmp/tw-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    struct tw_config c;
    tw_config_defaults(&c);
    assert_int_equal(tw_config_load(path, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(path);
    rmdir(dir);
}

static void players_beyond_peer_slots_rejected(void **state)
{
    (void)state;
    static const char text[] =
        "{\"server\": {\"max_connections\": 10},"
        " \"match\": {\"max_players\": 11}}";
    struct tw_config c;
    tw_config_defaults(&c);
    assert_int_equal(tw_config_parse("t.json", text, sizeof text - 1, &c, err,
                                     sizeof err),
                     -1);
    assert_non_null(strstr(err, "t.json: match.max_players: 11 exceeds"));
}

static void unknown_keys_are_named(void **state)
{
    (void)state;
    expect_error("{\"match\": {\"tick_hzz\": 30}}",
                 NAME ": match.tick_hzz: unknown key");
    expect_error("{\"matchh\": {}}", NAME ": matchh: unknown key");
    expect_error("{\"match\": {\"tick_hz\": {\"x\": 1}}}",
                 NAME ": match.tick_hz: expected a number, got object");
    expect_error("{\"store\": {\"starter_items\": "
                 "[{\"kind\": \"gold\", \"quantity\": 1, \"colour\": 2}]}}",
                 NAME ": store.starter_items[0].colour: unknown key");
    /* A control character in a key must not break the one-line message. */
    expect_error("{\"a\\nb\": 1}", NAME ": a?b: unknown key");
}

static void long_unknown_key_is_shortened(void **state)
{
    (void)state;
    char text[600];
    char name[400];
    memset(name, 'k', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(text, sizeof text, "{\"match\": {\"%s\": 1}}", name);
    struct tw_config c;
    assert_int_equal(parse(text, &c), -1);
    assert_non_null(strstr(err, "...: unknown key"));
    assert_true(strlen(err) < 200);
}

static void wrong_types_are_named(void **state)
{
    (void)state;
    expect_error("{\"match\": {\"tick_hz\": \"30\"}}",
                 NAME ": match.tick_hz: expected a number, got string");
    expect_error("{\"match\": {\"max_speed\": true}}",
                 NAME ": match.max_speed: expected a number, got boolean");
    expect_error("{\"server\": {\"port\": null}}",
                 NAME ": server.port: expected a number, got null");
    expect_error("{\"server\": {\"host\": 1}}",
                 NAME ": server.host: expected a string, got number");
    expect_error("{\"log\": {\"level\": [\"info\"]}}",
                 NAME ": log.level: expected a string, got array");
    expect_error("{\"match\": 5}",
                 NAME ": match: expected an object, got number");
    expect_error("{\"store\": {\"starter_items\": {}}}",
                 NAME ": store.starter_items: expected an array, got object");
}

static void ranges_are_enforced(void **state)
{
    (void)state;
    expect_error("{\"match\": {\"tick_hz\": 500}}",
                 NAME ": match.tick_hz: 500 is out of range (allowed 1..240)");
    expect_error("{\"match\": {\"tick_hz\": 0}}",
                 NAME ": match.tick_hz: 0 is out of range (allowed 1..240)");
    expect_error("{\"server\": {\"port\": 65536}}",
                 NAME ": server.port: 65536 is out of range "
                      "(allowed 1..65535)");
    expect_error("{\"match\": {\"match_id\": 4294967296}}",
                 NAME ": match.match_id: 4294967296 is out of range "
                      "(allowed 1..4294967295)");
    expect_error("{\"match\": {\"max_speed\": 0}}",
                 NAME ": match.max_speed: 0 is out of range "
                      "(allowed >0..1000)");
    expect_error("{\"match\": {\"world_width\": 65536}}",
                 NAME ": match.world_width: 65536 is out of range "
                      "(allowed 1..65535)");
    expect_error("{\"security\": {\"max_packet_size\": 1000}}",
                 NAME ": security.max_packet_size: 1000 is out of range "
                      "(allowed 1224..16777216)");
}

static void negative_unsigned_is_rejected(void **state)
{
    (void)state;
    expect_error("{\"match\": {\"duration_s\": -1}}",
                 NAME ": match.duration_s: -1 is out of range "
                      "(allowed 0..604800)");
    expect_error("{\"http\": {\"port\": -0.5}}",
                 NAME ": http.port: expected an integer, got -0.5");
}

static void non_integers_are_rejected(void **state)
{
    (void)state;
    expect_error("{\"match\": {\"tick_hz\": 30.5}}",
                 NAME ": match.tick_hz: expected an integer, got 30.5");
    expect_error("{\"match\": {\"tick_hz\": 1e-3}}",
                 NAME ": match.tick_hz: expected an integer, got 0.001");

    /* An exponent that yields an integer is an integer. */
    struct tw_config c;
    assert_int_equal(parse("{\"match\": {\"tick_hz\": 6e1}}", &c), 0);
    assert_int_equal(c.match.tick_hz, 60);
}

static void infinite_numbers_are_rejected(void **state)
{
    (void)state;
    expect_error("{\"match\": {\"max_speed\": 1e999}}",
                 NAME ": match.max_speed: number is too large");
    expect_error("{\"match\": {\"tick_hz\": -1e999}}",
                 NAME ": match.tick_hz: number is too large");
    /* JSON has no NaN or Infinity literal. */
    expect_error("{\"match\": {\"max_speed\": NaN}}",
                 NAME ": line 1, column 25: invalid JSON");
    expect_error("{\"match\": {\"max_speed\": Infinity}}",
                 NAME ": line 1, column 25: invalid JSON");
}

static void strings_are_checked(void **state)
{
    (void)state;
    char text[200];
    char host[TW_HOST_MAX + 1];
    memset(host, 'h', TW_HOST_MAX);
    host[TW_HOST_MAX] = '\0';
    snprintf(text, sizeof text, "{\"server\": {\"host\": \"%s\"}}", host);
    expect_error(text, NAME ": server.host: string is too long "
                       "(64 bytes, max 63)");

    host[TW_HOST_MAX - 1] = '\0';
    snprintf(text, sizeof text, "{\"server\": {\"host\": \"%s\"}}", host);
    struct tw_config c;
    assert_int_equal(parse(text, &c), 0);
    assert_string_equal(c.server.host, host);

    expect_error("{\"store\": {\"path\": \"\"}}",
                 NAME ": store.path: must not be empty");
    assert_int_equal(parse("{\"log\": {\"path\": \"\"}}", &c), 0);
    assert_int_equal(parse("{\"log\": {\"path\": \"a\\u00e9\\/b\"}}", &c), 0);
    assert_string_equal(c.log.path, "a\xc3\xa9/b");
}

static void enums_are_checked(void **state)
{
    (void)state;
    expect_error("{\"log\": {\"level\": \"verbose\"}}",
                 NAME ": log.level: \"verbose\" is not one of debug, info, "
                      "warn, error");
    expect_error("{\"log\": {\"format\": \"JSON\"}}",
                 NAME ": log.format: \"JSON\" is not one of text, json");

    struct tw_config c;
    const char *levels[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"log\": {\"level\": \"%s\"}}",
                 levels[i]);
        assert_int_equal(parse(text, &c), 0);
        assert_int_equal(c.log.level, i);
    }
}

static void duplicate_keys_are_rejected(void **state)
{
    (void)state;
    expect_error("{\"match\": {}, \"match\": {}}",
                 NAME ": match: duplicate key");
    expect_error("{\"match\": {\"tick_hz\": 30, \"tick_hz\": 60}}",
                 NAME ": match.tick_hz: duplicate key");
    expect_error("{\"store\": {\"starter_items\": "
                 "[{\"kind\": \"gold\", \"kind\": \"gem\", \"quantity\": 1}]}}",
                 NAME ": store.starter_items[0].kind: duplicate key");
}

static void invalid_json_reports_line_and_column(void **state)
{
    (void)state;
    /* cJSON stops one byte past the '}' that follows the trailing comma. */
    expect_error("{\n  \"match\": {\n    \"tick_hz\": 30,\n  }\n}",
                 NAME ": line 4, column 4: invalid JSON");
    expect_error("{\"match\": {\"tick_hz\": 30}} x",
                 NAME ": line 1, column 28: invalid JSON");
    expect_error("{\"match\": ", NAME ": line 1, column 11: invalid JSON");
    expect_error("", NAME ": line 1, column 1: empty file, expected a JSON "
                     "object");
    expect_error("   \n", NAME ": line 2, column 1: invalid JSON");
    expect_error("{\"a\": \"unterminated",
                 NAME ": line 1, column 8: invalid JSON");
}

static void non_object_root_is_rejected(void **state)
{
    (void)state;
    expect_error("[]", NAME ": expected a JSON object at the top level, "
                       "got array");
    expect_error("42", NAME ": expected a JSON object at the top level, "
                       "got number");
    expect_error("null", NAME ": expected a JSON object at the top level, "
                         "got null");
}

static void deep_nesting_is_rejected(void **state)
{
    (void)state;
    size_t depth = 10000;
    char *text = malloc(depth * 2 + 1);
    assert_non_null(text);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    text[depth * 2] = '\0';
    expect_error(text, NAME ": line 1, column 9: nesting deeper than 8 "
                       "levels");

    /* Brackets inside strings do not count as nesting. */
    struct tw_config c;
    assert_int_equal(parse("{\"log\": {\"path\": \"[[[[[[[[[[{{{{{{\"}}",
                           &c),
                     0);
    assert_string_equal(c.log.path, "[[[[[[[[[[{{{{{{");
    free(text);
}

static void bad_string_escapes_are_rejected(void **state)
{
    (void)state;
    expect_error("{\"log\": {\"path\": \"a\\u0000b\"}}",
                 NAME ": line 1, column 20: \\u0000 is not allowed in a "
                      "string");
    expect_error("{\"log\": {\"path\": \"\\uX000\"}}",
                 NAME ": line 1, column 19: invalid \\u escape (expected 4 "
                      "hex digits)");
    expect_error("{\"log\": {\"path\": \"\\u12\"}}",
                 NAME ": line 1, column 19: invalid \\u escape (expected 4 "
                      "hex digits)");
    expect_error("{\"log\": {\"path\": \"\\q\"}}",
                 NAME ": line 1, column 19: invalid escape in a string");
    expect_error("{\"log\": {\"path\": \"a\tb\"}}",
                 NAME ": line 1, column 20: control character in a string "
                      "(use an escape)");
    expect_error("{\"log\": {\"path\": \"\xff\"}}",
                 NAME ": line 1, column 19: invalid UTF-8 in a string");
    expect_error("{\"log\": {\"path\": \"\xc0\xaf\"}}",
                 NAME ": line 1, column 19: invalid UTF-8 in a string");
    expect_error("{\"log\": {\"path\": \"\xed\xa0\x80\"}}",
                 NAME ": line 1, column 19: invalid UTF-8 in a string");
    /* A lone surrogate escape is left to cJSON, which rejects it. */
    struct tw_config c;
    assert_int_equal(parse("{\"log\": {\"path\": \"\\ud800\"}}", &c), -1);
    assert_int_equal(parse("{\"log\": {\"path\": \"\\ud83d\\ude00\"}}", &c),
                     0);
    assert_string_equal(c.log.path, "\xf0\x9f\x98\x80");
}

static void nul_byte_in_input_is_rejected(void **state)
{
    (void)state;
    const char text[] = "{\"log\": {}}\0 ";
    struct tw_config c;
    tw_config_defaults(&c);
    int rc = tw_config_parse(NAME, text, sizeof text - 1, &c, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_string_equal(err, NAME ": line 1, column 12: NUL byte in the file");
}

static void unterminated_buffer_is_read_by_length(void **state)
{
    (void)state;
    /* Exactly sized heap copies, so a read past len trips AddressSanitizer. */
    const char *texts[] = {"{\"match\": {\"tick_hz\": 45}}", "{\"match\": 4",
                           "{\"log\": {\"path\": \"\\u00", "{\"a\": \"\\"};
    const int expected[] = {0, -1, -1, -1};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t len = strlen(texts[i]);
        char *copy = malloc(len);
        assert_non_null(copy);
        memcpy(copy, texts[i], len);
        struct tw_config c;
        tw_config_defaults(&c);
        int rc = tw_config_parse(NAME, copy, len, &c, err, sizeof err);
        assert_int_equal(rc, expected[i]);
        if (rc == 0)
            assert_int_equal(c.match.tick_hz, 45);
        free(copy);
    }
}

static void oversized_input_is_rejected(void **state)
{
    (void)state;
    size_t len = 1024 * 1024 + 1;
    char *text = malloc(len);
    assert_non_null(text);
    memset(text, ' ', len);
    text[0] = '{';
    text[len - 1] = '}';
    struct tw_config c;
    tw_config_defaults(&c);
    assert_int_equal(tw_config_parse(NAME, text, len, &c, err, sizeof err),
                     -1);
    assert_string_equal(err, NAME ": file is larger than 1048576 bytes");
    free(text);
}

static void failed_parse_leaves_config_untouched(void **state)
{
    (void)state;
    struct tw_config c, before;
    tw_config_defaults(&c);
    c.server.port = 1234;
    c.store.starter_count = 1;
    before = c;
    /* The first keys are valid, so a partial write would show. */
    const char text[] = "{\"server\": {\"port\": 9999},"
                        " \"store\": {\"starter_items\": []},"
                        " \"match\": {\"tick_hz\": 0}}";
    int rc = tw_config_parse(NAME, text, sizeof text - 1, &c, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_same_config(&c, &before);
    assert_int_equal(c.server.port, 1234);
}

static void spawn_area_must_lie_inside_world(void **state)
{
    (void)state;
    expect_error("{\"match\": {\"spawn_x\": 1000, \"spawn_width\": 64}}",
                 NAME ": match.spawn_x: spawn area 1000..1064 on x lies "
                      "outside the world (0..1024); lower match.spawn_x or "
                      "match.spawn_width");
    expect_error("{\"match\": {\"world_height\": 32}}",
                 NAME ": match.spawn_y: spawn area 0..64 on y lies outside "
                      "the world (0..32); lower match.spawn_y or "
                      "match.spawn_height");
    struct tw_config c;
    assert_int_equal(parse("{\"match\": {\"spawn_x\": 960, \"spawn_y\": 960}}",
                           &c),
                     0);
}

static void related_limits_are_checked(void **state)
{
    (void)state;
    expect_error("{\"server\": {\"peer_timeout_ms\": 4000}}",
                 NAME ": server.peer_timeout_min_ms: 5000 exceeds "
                      "server.peer_timeout_ms 4000");
    expect_error("{\"security\": {\"max_packet_size\": 100000}}",
                 NAME ": security.max_waiting_data: 65536 is below "
                      "security.max_packet_size 100000, so no packet of the "
                      "maximum size could be reassembled");
}

static void starter_items_are_validated(void **state)
{
    (void)state;
    const char *prefix = NAME ": store.starter_items";
    char expected[256];

    snprintf(expected, sizeof expected, "%s[0].kind: \"Gold\" is not a valid "
             "kind (1..23 characters of a-z, 0-9 and _)", prefix);
    expect_error("{\"store\": {\"starter_items\": "
                 "[{\"kind\": \"Gold\", \"quantity\": 1}]}}", expected);

    snprintf(expected, sizeof expected, "%s[0].kind: \"\" is not a valid "
             "kind (1..23 characters of a-z, 0-9 and _)", prefix);
    expect_error("{\"store\": {\"starter_items\": "
                 "[{\"kind\": \"\", \"quantity\": 1}]}}", expected);

    snprintf(expected, sizeof expected, "%s[0].kind: "
             "\"abcdefghijklmnopqrstuvwx\" is not a valid "
             "kind (1..23 characters of a-z, 0-9 and _)", prefix);
    expect_error("{\"store\": {\"starter_items\": [{\"kind\": "
                 "\"abcdefghijklmnopqrstuvwx\", \"quantity\": 1}]}}",
                 expected);

    snprintf(expected, sizeof expected,
             "%s[1].quantity: 0 is out of range (allowed 1..1000000)",
             prefix);
    expect_error("{\"store\": {\"starter_items\": "
                 "[{\"kind\": \"a\", \"quantity\": 1},"
                 " {\"kind\": \"b\", \"quantity\": 0}]}}", expected);

    snprintf(expected, sizeof expected,
             "%s[0].quantity: 1000001 is out of range (allowed 1..1000000)",
             prefix);
    expect_error("{\"store\": {\"starter_items\": "
                 "[{\"kind\": \"a\", \"quantity\": 1000001}]}}", expected);

    snprintf(expected, sizeof expected,
             "%s[0].quantity: expected an integer, got 1.5", prefix);
    expect_error("{\"store\": {\"starter_items\": "
                 "[{\"kind\": \"a\", \"quantity\": 1.5}]}}", expected);

    snprintf(expected, sizeof expected,
             "%s[0]: missing key \"quantity\"", prefix);
    expect_error("{\"store\": {\"starter_items\": [{\"kind\": \"a\"}]}}",
                 expected);

    snprintf(expected, sizeof expected, "%s[0]: missing key \"kind\"", prefix);
    expect_error("{\"store\": {\"starter_items\": [{\"quantity\": 2}]}}",
                 expected);

    snprintf(expected, sizeof expected,
             "%s[0]: expected an object, got string", prefix);
    expect_error("{\"store\": {\"starter_items\": [\"gold\"]}}", expected);

    snprintf(expected, sizeof expected, "%s[1].kind: \"gold\" is already "
             "granted by store.starter_items[0]", prefix);
    expect_error("{\"store\": {\"starter_items\": "
                 "[{\"kind\": \"gold\", \"quantity\": 1},"
                 " {\"kind\": \"gold\", \"quantity\": 2}]}}", expected);
}

static void starter_items_count_is_capped(void **state)
{
    (void)state;
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "{\"store\": {\"starter_items\": [");
    for (int i = 0; i < TW_MAX_STARTER_ITEMS; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "%s{\"kind\": \"k%d\", \"quantity\": %d}",
                              i ? "," : "", i, i + 1);
    snprintf(text + n, sizeof text - n, "]}}");

    struct tw_config c;
    assert_int_equal(parse(text, &c), 0);
    assert_int_equal(c.store.starter_count, TW_MAX_STARTER_ITEMS);
    assert_string_equal(c.store.starter[15].kind, "k15");
    assert_int_equal(c.store.starter[15].quantity, 16);

    snprintf(text + n, sizeof text - n,
             ",{\"kind\": \"extra\", \"quantity\": 1}]}}");
    expect_error(text, NAME ": store.starter_items: 17 items, max 16");

    assert_int_equal(parse("{\"store\": {\"starter_items\": []}}", &c), 0);
    assert_int_equal(c.store.starter_count, 0);
}

static void small_error_buffer_is_terminated(void **state)
{
    (void)state;
    struct tw_config c;
    tw_config_defaults(&c);
    char small[8];
    memset(small, 'x', sizeof small);
    const char text[] = "{\"nope\": 1}";
    assert_int_equal(tw_config_parse(NAME, text, sizeof text - 1, &c, small,
                                     sizeof small),
                     -1);
    assert_string_equal(small, "t.json:");
    assert_int_equal(tw_config_parse(NAME, text, sizeof text - 1, &c, NULL, 0),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_have_documented_values),
        cmocka_unit_test(empty_object_gives_defaults),
        cmocka_unit_test(missing_keys_keep_defaults),
        cmocka_unit_test(full_config_sets_every_key),
        cmocka_unit_test(example_file_loads),
        cmocka_unit_test(load_reads_a_file),
        cmocka_unit_test(missing_file_is_named),
        cmocka_unit_test(directory_is_not_a_file),
        cmocka_unit_test(fifo_is_rejected_without_blocking),
        cmocka_unit_test(players_beyond_peer_slots_rejected),
        cmocka_unit_test(unknown_keys_are_named),
        cmocka_unit_test(long_unknown_key_is_shortened),
        cmocka_unit_test(wrong_types_are_named),
        cmocka_unit_test(ranges_are_enforced),
        cmocka_unit_test(negative_unsigned_is_rejected),
        cmocka_unit_test(non_integers_are_rejected),
        cmocka_unit_test(infinite_numbers_are_rejected),
        cmocka_unit_test(strings_are_checked),
        cmocka_unit_test(enums_are_checked),
        cmocka_unit_test(duplicate_keys_are_rejected),
        cmocka_unit_test(invalid_json_reports_line_and_column),
        cmocka_unit_test(non_object_root_is_rejected),
        cmocka_unit_test(deep_nesting_is_rejected),
        cmocka_unit_test(bad_string_escapes_are_rejected),
        cmocka_unit_test(nul_byte_in_input_is_rejected),
        cmocka_unit_test(unterminated_buffer_is_read_by_length),
        cmocka_unit_test(oversized_input_is_rejected),
        cmocka_unit_test(failed_parse_leaves_config_untouched),
        cmocka_unit_test(spawn_area_must_lie_inside_world),
        cmocka_unit_test(related_limits_are_checked),
        cmocka_unit_test(starter_items_are_validated),
        cmocka_unit_test(starter_items_count_is_capped),
        cmocka_unit_test(small_error_buffer_is_terminated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
