#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "clock.h"
#include "store.h"

#include <cJSON.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define P1 1001u
#define P2 1002u
#define WAIT_MS 20000

struct fixture {
    char dir[64];
    char path[128];
    struct tw_config cfg;
    struct tw_store *s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/tw_store_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    snprintf(f->cfg.store.path, sizeof f->cfg.store.path, "%s", f->path);
    static const struct tw_item_grant starter[] = {
        {"gold", 100}, {"wood", 50}, {"gem", 1}};
    f->cfg.store.starter_count = 3;
    memcpy(f->cfg.store.starter, starter, sizeof starter);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tw_store_close(f->s, NULL, NULL);
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal",
                                           ".lock"};
    for (size_t i = 0; i < 5; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void open_store(struct fixture *f)
{
    char err[256] = "";
    int rc = tw_store_open(&f->cfg, &f->s, err, sizeof err);
    if (rc != TW_OK)
        fail_msg("tw_store_open: %s", err);
    assert_non_null(f->s);
}

static void copy_result(void *ctx, const struct tw_store_result *r)
{
    struct tw_store_result *out = ctx;
    *out = *r;
}

/* Waits on the eventfd for the next completion; fails the test on timeout. */
static struct tw_store_result wait_result(struct tw_store *s)
{
    struct tw_store_result r;
    memset(&r, 0, sizeof r);
    uint64_t deadline = tw_clock_mono_ns() + (uint64_t)WAIT_MS * 1000000u;
    for (;;) {
        int n = tw_store_poll(s, copy_result, &r);
        assert_true(n <= 1);
        if (n == 1)
            return r;
        assert_true(tw_clock_mono_ns() < deadline);
        struct pollfd pfd = {.fd = tw_store_fd(s), .events = POLLIN};
        poll(&pfd, 1, 1000);
    }
}

static struct tw_store_result load(struct tw_store *s, uint64_t pid)
{
    assert_int_equal(tw_store_load_player(s, pid, "tester", pid), TW_OK);
    struct tw_store_result r = wait_result(s);
    assert_int_equal(r.op, TW_STORE_OP_LOAD);
    assert_int_equal(r.cookie, pid);
    return r;
}

static struct tw_store_result commit(struct tw_store *s,
                                     const struct tw_store_commit *c)
{
    assert_int_equal(tw_store_commit(s, c, c->trade_id), TW_OK);
    struct tw_store_result r = wait_result(s);
    assert_int_equal(r.op, TW_STORE_OP_COMMIT);
    assert_int_equal(r.trade_id, c->trade_id);
    return r;
}

static const struct tw_item *find_kind(const struct tw_inventory *inv,
                                       const char *kind)
{
    for (unsigned i = 0; i < inv->count; i++)
        if (strcmp(inv->items[i].kind, kind) == 0)
            return &inv->items[i];
    return NULL;
}

static const struct tw_item *find_id(const struct tw_inventory *inv,
                                     uint64_t item_id)
{
    for (unsigned i = 0; i < inv->count; i++)
        if (inv->items[i].item_id == item_id)
            return &inv->items[i];
    return NULL;
}

static void add_give(struct tw_trade_offer *o, uint64_t item_id, uint32_t q)
{
    o->items[o->count].item_id = item_id;
    o->items[o->count].quantity = q;
    o->count++;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static sqlite3_int64 raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    sqlite3_int64 v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

/* Runs the audit into memory; returns its exit code and the parsed JSON. */
static int audit(const char *path, cJSON **json)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    int rc = tw_store_audit(path, out);
    fclose(out);
    *json = cJSON_Parse(text);
    if (!*json)
        fail_msg("audit printed invalid JSON: %s", text);
    free(text);
    return rc;
}

static double json_number(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void fresh_db_gets_current_schema(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    assert_int_equal(tw_store_next_trade_id(f->s), 1);
    tw_store_close(f->s, NULL, NULL);
    f->s = NULL;
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"),
                     TW_STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(db, "PRAGMA application_id"), TW_STORE_APP_ID);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM sqlite_schema WHERE "
                                 "name IN ('players', 'items', 'minted', "
                                 "'trades', 'trade_items', 'notices')"),
                     6);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st,
                                        NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void version1_db_migrates_keeping_rows(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(tw_store_migrate_file(f->path, 1, err, sizeof err),
                     TW_OK);
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM sqlite_schema "
                                 "WHERE name = 'notices'"),
                     0);
    raw_exec(db, "INSERT INTO players VALUES (1001, 'old', 0);"
                 "INSERT INTO items (owner, kind, quantity) "
                 "VALUES (1001, 'relic', 7);"
                 "INSERT INTO minted (player_id, kind, quantity, minted_at) "
                 "VALUES (1001, 'relic', 7, 0);");
    sqlite3_close(db);

    open_store(f);
    struct tw_store_result r = load(f->s, P1);
    assert_int_equal(r.status, TW_STORE_OK);
    assert_false(r.created);
    assert_int_equal(r.inv[0].count, 1);
    assert_string_equal(r.inv[0].items[0].kind, "relic");
    assert_int_equal(r.inv[0].items[0].quantity, 7);
    assert_int_equal(r.notice_count, 0);
    tw_store_close(f->s, NULL, NULL);
    f->s = NULL;

    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 2);
    sqlite3_close(db);
    cJSON *j;
    assert_int_equal(audit(f->path, &j), 0);
    cJSON_Delete(j);
}

static void reopen_keeps_players(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    struct tw_store_result first = load(f->s, P1);
    assert_true(first.created);
    tw_store_close(f->s, NULL, NULL);
    open_store(f);
    struct tw_store_result again = load(f->s, P1);
    assert_int_equal(again.status, TW_STORE_OK);
    assert_false(again.created);
    assert_int_equal(again.inv[0].count, first.inv[0].count);
    for (unsigned i = 0; i < first.inv[0].count; i++)
        assert_int_equal(again.inv[0].items[i].item_id,
                         first.inv[0].items[i].item_id);
}

static void newer_or_foreign_db_rejected(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    assert_int_equal(tw_store_migrate_file(f->path, 2, err, sizeof err),
                     TW_OK);
    sqlite3 *db = raw_open(f->path);
    raw_exec(db, "PRAGMA user_version = 99");
    sqlite3_close(db);
    assert_int_equal(tw_store_open(&f->cfg, &f->s, err, sizeof err), -1);
    assert_null(f->s);
    assert_non_null(strstr(err, "newer"));

    unlink(f->path);
    db = raw_open(f->path);
    raw_exec(db, "CREATE TABLE other (x)");
    sqlite3_close(db);
    assert_int_equal(tw_store_open(&f->cfg, &f->s, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a tickwire store"));
}

static void open_rejects_store_in_use(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    struct tw_store *second = NULL;
    char err[256] = "";
    assert_int_equal(tw_store_open(&f->cfg, &second, err, sizeof err), -1);
    assert_null(second);
    assert_non_null(strstr(err, "in use by another tickwire-server"));
}

static void open_rejects_bad_config(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct tw_config cfg = f->cfg;
    strcpy(cfg.store.starter[1].kind, "has space");
    assert_int_equal(tw_store_open(&cfg, &f->s, err, sizeof err), -1);
    assert_non_null(strstr(err, "store.starter[1]"));
    cfg = f->cfg;
    cfg.store.starter[0].quantity = 0;
    assert_int_equal(tw_store_open(&cfg, &f->s, err, sizeof err), -1);
    cfg = f->cfg;
    cfg.store.path[0] = '\0';
    assert_int_equal(tw_store_open(&cfg, &f->s, err, sizeof err), -1);
    assert_non_null(strstr(err, "store.path"));
    assert_null(f->s);
}

static void new_player_gets_starter_items(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    struct tw_store_result r = load(f->s, P1);
    assert_int_equal(r.status, TW_STORE_OK);
    assert_true(r.created);
    assert_int_equal(r.player_id, P1);
    assert_int_equal(r.inv[0].player_id, P1);
    assert_int_equal(r.inv[0].count, 3);
    assert_int_equal(find_kind(&r.inv[0], "gold")->quantity, 100);
    assert_int_equal(find_kind(&r.inv[0], "wood")->quantity, 50);
    assert_int_equal(find_kind(&r.inv[0], "gem")->quantity, 1);
    struct tw_store_result r2 = load(f->s, P2);
    assert_true(r2.created);
    assert_int_not_equal(r2.inv[0].items[0].item_id,
                         r.inv[0].items[0].item_id);

    tw_store_close(f->s, NULL, NULL);
    f->s = NULL;
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM minted"), 6);
    assert_int_equal(raw_int(db, "SELECT SUM(quantity) FROM minted "
                                 "WHERE kind = 'gold'"),
                     200);
    sqlite3_close(db);
}

static void commit_moves_items_once(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    struct tw_inventory a = load(f->s, P1).inv[0];
    struct tw_inventory b = load(f->s, P2).inv[0];
    uint64_t a_gold = find_kind(&a, "gold")->item_id;
    uint64_t a_gem = find_kind(&a, "gem")->item_id;
    uint64_t b_wood = find_kind(&b, "wood")->item_id;

    struct tw_store_commit c = {.trade_id = 7, .a = P1, .b = P2};
    add_give(&c.give_a, a_gold, 30); /* part: splits */
    add_give(&c.give_a, a_gem, 1);   /* whole: moves */
    add_give(&c.give_b, b_wood, 50); /* whole: moves */
    struct tw_store_result r = commit(f->s, &c);
    assert_int_equal(r.status, TW_STORE_OK);
    assert_false(r.replayed);

    const struct tw_inventory *na = &r.inv[0], *nb = &r.inv[1];
    assert_int_equal(na->player_id, P1);
    assert_int_equal(find_id(na, a_gold)->quantity, 70);
    assert_null(find_id(na, a_gem));
    assert_non_null(find_id(na, b_wood));
    assert_int_equal(na->count, 3); /* gold 70, own wood, B's wood */
    assert_non_null(find_id(nb, a_gem));
    assert_null(find_id(nb, b_wood));
    assert_int_equal(nb->count, 4); /* gold, gem, new gold 30, A's gem */
    unsigned gold_items = 0;
    for (unsigned i = 0; i < nb->count; i++) {
        if (strcmp(nb->items[i].kind, "gold") == 0) {
            gold_items++;
            if (nb->items[i].item_id != find_kind(&b, "gold")->item_id)
                assert_int_equal(nb->items[i].quantity, 30);
        }
    }
    assert_int_equal(gold_items, 2);

    /* The same trade id again: nothing moves a second time. */
    struct tw_store_result again = commit(f->s, &c);
    assert_int_equal(again.status, TW_STORE_OK);
    assert_true(again.replayed);
    assert_memory_equal(&again.inv[0], na, sizeof *na);
    assert_memory_equal(&again.inv[1], nb, sizeof *nb);

    struct tw_store_stats st;
    tw_store_get_stats(f->s, &st);
    assert_int_equal(st.commits, 1);
    assert_int_equal(st.replayed, 1);
    assert_int_equal(st.pending, 0);

    tw_store_close(f->s, NULL, NULL);
    f->s = NULL;
    cJSON *j;
    assert_int_equal(audit(f->path, &j), 0);
    assert_int_equal(json_number(j, "trades_committed"), 1);
    assert_int_equal(json_number(j, "max_owners_per_item"), 1);
    const cJSON *gold = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "kinds"), "gold");
    assert_int_equal(json_number(gold, "held"), 200);
    assert_int_equal(json_number(gold, "minted"), 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j,
                                                              "consistent")));
    cJSON_Delete(j);

    sqlite3 *db = raw_open(f->path);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM trade_items "
                                 "WHERE trade_id = 7"),
                     3);
    sqlite3_close(db);
}

static void stale_commit_aborts_whole(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    struct tw_inventory a = load(f->s, P1).inv[0];
    struct tw_inventory b = load(f->s, P2).inv[0];
    uint64_t a_gold = find_kind(&a, "gold")->item_id;
    uint64_t a_gem = find_kind(&a, "gem")->item_id;
    uint64_t b_wood = find_kind(&b, "wood")->item_id;

    /* A valid first entry, then an item A does not own. */
    struct tw_store_commit c = {.trade_id = 1, .a = P1, .b = P2};
    add_give(&c.give_a, a_gold, 10);
    add_give(&c.give_a, b_wood, 1);
    struct tw_store_result r = commit(f->s, &c);
    assert_int_equal(r.status, TW_STORE_ABORTED);
    assert_int_equal(r.reason, TW_TRADE_R_ITEM_NOT_OWNED);
    assert_memory_equal(&r.inv[0], &a, sizeof a);
    assert_memory_equal(&r.inv[1], &b, sizeof b);

    /* More than A holds, after a valid partial entry on B's side. */
    struct tw_store_commit c2 = {.trade_id = 2, .a = P1, .b = P2};
    add_give(&c2.give_b, b_wood, 5);
    add_give(&c2.give_a, a_gem, 2);
    r = commit(f->s, &c2);
    assert_int_equal(r.status, TW_STORE_ABORTED);
    assert_int_equal(r.reason, TW_TRADE_R_QUANTITY_TOO_LARGE);
    assert_memory_equal(&r.inv[0], &a, sizeof a);
    assert_memory_equal(&r.inv[1], &b, sizeof b);

    /* The gem moves in trade 3; trade 4 offering it again is stale. */
    struct tw_store_commit c3 = {.trade_id = 3, .a = P1, .b = P2};
    add_give(&c3.give_a, a_gem, 1);
    assert_int_equal(commit(f->s, &c3).status, TW_STORE_OK);
    struct tw_store_commit c4 = {.trade_id = 4, .a = P1, .b = P2};
    add_give(&c4.give_b, b_wood, 50);
    add_give(&c4.give_a, a_gem, 1);
    r = commit(f->s, &c4);
    assert_int_equal(r.status, TW_STORE_ABORTED);
    assert_int_equal(r.reason, TW_TRADE_R_ITEM_NOT_OWNED);
    assert_int_equal(find_id(&r.inv[1], b_wood)->quantity, 50);

    /* Unknown player, self trade, and one item on both sides. */
    struct tw_store_commit c5 = {.trade_id = 5, .a = P1, .b = 9999};
    add_give(&c5.give_a, a_gold, 1);
    assert_int_equal(commit(f->s, &c5).reason, TW_TRADE_R_PARTNER_UNKNOWN);
    c5.b = P1;
    assert_int_equal(commit(f->s, &c5).reason, TW_TRADE_R_SELF_TRADE);
    c5.b = P2;
    add_give(&c5.give_b, a_gold, 1);
    assert_int_equal(commit(f->s, &c5).reason, TW_TRADE_R_BAD_REQUEST);

    /* The failures left notices; trade 3 left a committed one. */
    struct tw_store_result la = load(f->s, P1);
    assert_int_equal(la.notice_count, 4);
    assert_int_equal(la.notices[0].trade_id, 1);
    assert_int_equal(la.notices[0].status, TW_TRADE_S_FAILED);
    assert_int_equal(la.notices[0].reason, TW_TRADE_R_ITEM_NOT_OWNED);
    assert_int_equal(la.notices[0].partner, P2);
    assert_int_equal(la.notices[2].trade_id, 3);
    assert_int_equal(la.notices[2].status, TW_TRADE_S_COMMITTED);

    tw_store_close(f->s, NULL, NULL);
    f->s = NULL;
    cJSON *j;
    assert_int_equal(audit(f->path, &j), 0);
    assert_int_equal(json_number(j, "trades_committed"), 1);
    cJSON_Delete(j);
}

static void full_inventory_aborts_commit(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    struct tw_inventory a = load(f->s, P1).inv[0];
    struct tw_inventory b = load(f->s, P2).inv[0];
    uint64_t a_gold = find_kind(&a, "gold")->item_id;
    /* Split A's gold into B's inventory until B holds the maximum. */
    uint32_t trade = 1;
    for (unsigned n = b.count; n < TW_INVENTORY_MAX; n++) {
        struct tw_store_commit c = {.trade_id = trade++, .a = P1, .b = P2};
        add_give(&c.give_a, a_gold, 1);
        assert_int_equal(commit(f->s, &c).status, TW_STORE_OK);
    }
    struct tw_store_commit c = {.trade_id = trade, .a = P1, .b = P2};
    add_give(&c.give_a, a_gold, 1);
    struct tw_store_result r = commit(f->s, &c);
    assert_int_equal(r.status, TW_STORE_ABORTED);
    assert_int_equal(r.reason, TW_TRADE_R_INVENTORY_FULL);
    assert_int_equal(r.inv[1].count, TW_INVENTORY_MAX);
    assert_int_equal(find_id(&r.inv[0], a_gold)->quantity,
                     100 - (TW_INVENTORY_MAX - 3));
}

static void notice_acknowledged_is_gone(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    struct tw_inventory a = load(f->s, P1).inv[0];
    load(f->s, P2);
    struct tw_store_commit c = {.trade_id = 12, .a = P1, .b = P2};
    add_give(&c.give_a, find_kind(&a, "wood")->item_id, 50);
    assert_int_equal(commit(f->s, &c).status, TW_STORE_OK);

    struct tw_store_result lb = load(f->s, P2);
    assert_int_equal(lb.notice_count, 1);
    assert_int_equal(lb.notices[0].trade_id, 12);
    assert_int_equal(lb.notices[0].partner, P1);
    assert_int_equal(lb.notices[0].status, TW_TRADE_S_COMMITTED);
    assert_int_equal(tw_store_ack_notice(f->s, P2, 12, 77), TW_OK);
    struct tw_store_result ack = wait_result(f->s);
    assert_int_equal(ack.op, TW_STORE_OP_ACK);
    assert_int_equal(ack.status, TW_STORE_OK);
    assert_int_equal(ack.cookie, 77);
    assert_int_equal(load(f->s, P2).notice_count, 0);
    assert_int_equal(load(f->s, P1).notice_count, 1);

    tw_store_close(f->s, NULL, NULL);
    open_store(f);
    assert_int_equal(tw_store_next_trade_id(f->s), 13);
}

static void corrupt(struct fixture *f, const char *sql)
{
    sqlite3 *db = raw_open(f->path);
    raw_exec(db, sql);
    sqlite3_close(db);
}

static void audit_detects_hand_edits(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    load(f->s, P1);
    load(f->s, P2);
    tw_store_close(f->s, NULL, NULL);
    f->s = NULL;
    cJSON *j;
    assert_int_equal(audit(f->path, &j), 0);
    cJSON_Delete(j);

    corrupt(f, "UPDATE items SET quantity = quantity + 1 WHERE kind = 'gold'"
               " AND owner = 1001");
    assert_int_equal(audit(f->path, &j), 3);
    const cJSON *gold = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "kinds"), "gold");
    assert_int_equal(json_number(gold, "held"), 201);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j,
                                                               "consistent")));
    cJSON_Delete(j);
    corrupt(f, "UPDATE items SET quantity = quantity - 1 WHERE kind = 'gold'"
               " AND owner = 1001");
    assert_int_equal(audit(f->path, &j), 0);
    cJSON_Delete(j);

    /* Zero quantity, balanced elsewhere so only that check fires. */
    corrupt(f, "PRAGMA ignore_check_constraints = 1;"
               "UPDATE items SET quantity = 0 WHERE kind = 'gem'"
               " AND owner = 1001;"
               "UPDATE items SET quantity = 2 WHERE kind = 'gem'"
               " AND owner = 1002");
    assert_int_equal(audit(f->path, &j), 3);
    assert_int_equal(json_number(j, "nonpositive_quantities"), 1);
    cJSON_Delete(j);
    corrupt(f, "UPDATE items SET quantity = 1 WHERE kind = 'gem'");

    corrupt(f, "UPDATE items SET owner = 5555 WHERE kind = 'wood'"
               " AND owner = 1001");
    assert_int_equal(audit(f->path, &j), 3);
    assert_int_equal(json_number(j, "orphan_items"), 1);
    cJSON_Delete(j);
}

static void audit_of_missing_or_garbage_file(void **state)
{
    struct fixture *f = *state;
    cJSON *j;
    assert_int_equal(audit(f->path, &j), 1);
    cJSON_Delete(j);
    assert_int_equal(access(f->path, F_OK), -1); /* not created */

    FILE *g = fopen(f->path, "w");
    assert_non_null(g);
    for (int i = 0; i < 512; i++)
        fputs("this is not a database ", g);
    fclose(g);
    assert_int_equal(audit(f->path, &j), 3);
    cJSON_Delete(j);
}

static void invalid_row_fails_load_cleanly(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    load(f->s, P1);
    tw_store_close(f->s, NULL, NULL);
    corrupt(f, "UPDATE items SET kind = 'far too long for an item kind'"
               " WHERE kind = 'gold'");
    open_store(f);
    struct tw_store_result r = load(f->s, P1);
    assert_int_equal(r.status, TW_STORE_ERROR);
    assert_false(r.created);
    struct tw_store_stats st;
    tw_store_get_stats(f->s, &st);
    assert_int_equal(st.errors, 1);
}

static uint64_t elapsed_ms(uint64_t since_ns)
{
    return (tw_clock_mono_ns() - since_ns) / 1000000u;
}

static void commit_delay_does_not_block_submit(void **state)
{
    struct fixture *f = *state;
    f->cfg.store.test_commit_delay_ms = 300;
    open_store(f);
    struct tw_inventory a = load(f->s, P1).inv[0];
    load(f->s, P2);
    struct tw_store_commit c = {.trade_id = 1, .a = P1, .b = P2};
    add_give(&c.give_a, find_kind(&a, "gem")->item_id, 1);

    uint64_t t0 = tw_clock_mono_ns();
    assert_int_equal(tw_store_commit(f->s, &c, 1), TW_OK);
    uint64_t submit_ms = elapsed_ms(t0);
    t0 = tw_clock_mono_ns();
    struct tw_store_result none;
    assert_int_equal(tw_store_poll(f->s, copy_result, &none), 0);
    uint64_t poll_ms = elapsed_ms(t0);
    struct tw_store_stats st;
    tw_store_get_stats(f->s, &st);
    assert_int_equal(st.pending, 1);

    struct tw_store_result r = wait_result(f->s);
    assert_int_equal(r.status, TW_STORE_OK);
    assert_true(r.latency_us >= 300000);
    /* Generous bounds: both calls only take a mutex. */
    assert_true(submit_ms < 50);
    assert_true(poll_ms < 50);
}

static void count_results(void *ctx, const struct tw_store_result *r)
{
    int *n = ctx;
    if (r->status == TW_STORE_OK)
        (*n)++;
}

static void close_drains_queue(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    for (uint64_t pid = 1; pid <= 20; pid++)
        assert_int_equal(tw_store_load_player(f->s, pid, "p", pid), TW_OK);
    int delivered = 0;
    tw_store_close(f->s, count_results, &delivered);
    f->s = NULL;
    assert_int_equal(delivered, 20);
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(raw_int(db, "SELECT COUNT(*) FROM players"), 20);
    sqlite3_close(db);
}

static void full_queue_rejects_submit(void **state)
{
    struct fixture *f = *state;
    open_store(f);
    load(f->s, P1);
    /* Loads of a known player write nothing, so this runs fast. */
    for (unsigned i = 0; i < TW_STORE_QUEUE_MAX; i++)
        assert_int_equal(tw_store_load_player(f->s, P1, "tester", i), TW_OK);
    assert_int_equal(tw_store_load_player(f->s, P1, "tester", 0), -EAGAIN);
    int delivered = 0;
    uint64_t deadline = tw_clock_mono_ns() + (uint64_t)WAIT_MS * 1000000u;
    while (delivered < (int)TW_STORE_QUEUE_MAX) {
        assert_true(tw_clock_mono_ns() < deadline);
        struct pollfd pfd = {.fd = tw_store_fd(f->s), .events = POLLIN};
        poll(&pfd, 1, 1000);
        tw_store_poll(f->s, count_results, &delivered);
    }
    assert_int_equal(delivered, TW_STORE_QUEUE_MAX);
    assert_int_equal(tw_store_load_player(f->s, P1, "tester", 0), TW_OK);
}

/* Waits for one completion without cmocka, for use in a forked child. */
static bool child_wait(struct tw_store *s, struct tw_store_result *r)
{
    for (int tries = 0; tries < WAIT_MS / 100; tries++) {
        if (tw_store_poll(s, copy_result, r) == 1)
            return true;
        struct pollfd pfd = {.fd = tw_store_fd(s), .events = POLLIN};
        poll(&pfd, 1, 100);
    }
    return false;
}

static struct tw_inventory child_load(struct tw_store *s, uint64_t pid)
{
    struct tw_store_result r;
    if (tw_store_load_player(s, pid, "child", 0) != TW_OK ||
        !child_wait(s, &r) || r.status != TW_STORE_OK || r.inv[0].count == 0)
        _exit(3);
    return r.inv[0];
}

/*
 * The child trades between fresh pairs of players as fast as the store
 * allows, the commit delay holding each transaction open, until the
 * parent kills it. It writes one byte once the store is open, then the
 * id of every trade the store reported committed. It must never return
 * into cmocka: every path exits.
 */
static void trade_until_killed(struct fixture *f, int ready_fd,
                               uint64_t first_player, uint32_t delay_ms)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    f->cfg.store.test_commit_delay_ms = delay_ms;
    char err[256];
    if (tw_store_open(&f->cfg, &f->s, err, sizeof err) != TW_OK)
        _exit(2);
    uint32_t trade_id = tw_store_next_trade_id(f->s);
    if (write(ready_fd, "r", 1) != 1)
        _exit(2);
    uint64_t stop = tw_clock_mono_ns() + 10ull * 1000000000u;
    for (uint64_t pa = first_player; tw_clock_mono_ns() < stop; pa += 2) {
        struct tw_inventory a = child_load(f->s, pa);
        struct tw_inventory b = child_load(f->s, pa + 1);
        for (int round = 0; round < 8; round++) {
            struct tw_store_commit c = {.trade_id = trade_id++, .a = pa,
                                        .b = pa + 1};
            const struct tw_item *ga = &a.items[0];
            const struct tw_item *gb = &b.items[b.count - 1];
            add_give(&c.give_a, ga->item_id,
                     ga->quantity > 1 ? ga->quantity / 2 : 1);
            add_give(&c.give_b, gb->item_id, gb->quantity);
            struct tw_store_result r;
            if (tw_store_commit(f->s, &c, 0) != TW_OK ||
                !child_wait(f->s, &r) || r.status != TW_STORE_OK)
                _exit(3);
            /* Sent only after the store reported the commit durable. */
            if (write(ready_fd, &c.trade_id, sizeof c.trade_id) !=
                (ssize_t)sizeof c.trade_id)
                _exit(3);
            a = r.inv[0];
            b = r.inv[1];
        }
    }
    _exit(0);
}

static void sigkill_mid_commit_keeps_store_consistent(void **state)
{
    struct fixture *f = *state;
    open_store(f); /* the parent creates the schema first */
    tw_store_close(f->s, NULL, NULL);
    f->s = NULL;
    srand((unsigned)time(NULL));
    long durable_checked = 0;
    for (int kill_no = 0; kill_no < 20; kill_no++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            trade_until_killed(f, fds[1], 100000u * (kill_no + 1),
                               (uint32_t)(kill_no % 3));
        }
        close(fds[1]);
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
        char ready;
        assert_int_equal(read(fds[0], &ready, 1), 1);
        /* The kill point is the randomness under test, not a wait. */
        struct timespec ts = {0, (long)(1 + rand() % 40) * 1000000L};
        nanosleep(&ts, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("child %d exited with %d before the kill", kill_no,
                     WEXITSTATUS(status));

        /* Every commit reported before the kill must be in the file. */
        sqlite3 *db = raw_open(f->path);
        uint32_t reported;
        ssize_t got;
        while ((got = read(fds[0], &reported, sizeof reported)) ==
               (ssize_t)sizeof reported) {
            char sql[96];
            snprintf(sql, sizeof sql,
                     "SELECT COUNT(*) FROM trades WHERE trade_id = %u",
                     reported);
            assert_int_equal(raw_int(db, sql), 1);
            durable_checked++;
        }
        assert_int_equal(got, 0); /* 4-byte pipe writes are atomic */
        sqlite3_close(db);
        close(fds[0]);
        cJSON *j;
        int rc = audit(f->path, &j);
        if (rc != 0) {
            char *text = cJSON_Print(j);
            fail_msg("audit after kill %d returned %d: %s", kill_no, rc,
                     text);
        }
        cJSON_Delete(j);
    }
    sqlite3 *db = raw_open(f->path);
    sqlite3_int64 trades = raw_int(db, "SELECT COUNT(*) FROM trades");
    sqlite3_int64 bad = raw_int(db,
                                "SELECT COUNT(*) FROM trades t WHERE "
                                "(SELECT COUNT(*) FROM trade_items i "
                                "WHERE i.trade_id = t.trade_id) != 2");
    sqlite3_close(db);
    print_message("%lld trades committed across 20 kills, %ld of them "
                  "checked as reported durable\n",
                  (long long)trades, durable_checked);
    assert_true(trades > 0);
    assert_true(durable_checked > 0);
    assert_true(durable_checked <= trades);
    assert_int_equal(bad, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(fresh_db_gets_current_schema),
        T(version1_db_migrates_keeping_rows),
        T(reopen_keeps_players),
        T(newer_or_foreign_db_rejected),
        T(open_rejects_bad_config),
        T(open_rejects_store_in_use),
        T(new_player_gets_starter_items),
        T(commit_moves_items_once),
        T(stale_commit_aborts_whole),
        T(full_inventory_aborts_commit),
        T(notice_acknowledged_is_gone),
        T(audit_detects_hand_edits),
        T(audit_of_missing_or_garbage_file),
        T(invalid_row_fails_load_cleanly),
        T(commit_delay_does_not_block_submit),
        T(close_drains_queue),
        T(full_queue_rejects_submit),
        T(sigkill_mid_commit_keeps_store_consistent),
    };
    tw_log_min_level = TW_WARN;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
