#include "store.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000

/*
 * Schema steps; step i takes user_version i to i + 1. Version 2 added the
 * notices table and the owner index. Add new steps at the end and leave
 * released ones unchanged, because existing files have already run them.
 */
static const char *const migrations[TW_STORE_SCHEMA_VERSION] = {
    "CREATE TABLE players ("
    "  player_id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE items ("
    "  item_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  owner INTEGER NOT NULL REFERENCES players(player_id),"
    "  kind TEXT NOT NULL,"
    "  quantity INTEGER NOT NULL CHECK (quantity > 0));"
    "CREATE TABLE minted ("
    "  mint_id INTEGER PRIMARY KEY,"
    "  player_id INTEGER NOT NULL REFERENCES players(player_id),"
    "  kind TEXT NOT NULL,"
    "  quantity INTEGER NOT NULL CHECK (quantity > 0),"
    "  minted_at INTEGER NOT NULL);"
    "CREATE TABLE trades ("
    "  trade_id INTEGER PRIMARY KEY,"
    "  a INTEGER NOT NULL REFERENCES players(player_id),"
    "  b INTEGER NOT NULL REFERENCES players(player_id),"
    "  committed_at INTEGER NOT NULL);"
    /* item_id is the item given; new_item_id the one the receiver holds,
     * equal to item_id when the whole item moved. */
    "CREATE TABLE trade_items ("
    "  trade_id INTEGER NOT NULL REFERENCES trades(trade_id),"
    "  item_id INTEGER NOT NULL,"
    "  new_item_id INTEGER NOT NULL,"
    "  giver INTEGER NOT NULL,"
    "  receiver INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  quantity INTEGER NOT NULL,"
    "  PRIMARY KEY (trade_id, item_id));",

    "CREATE TABLE notices ("
    "  player_id INTEGER NOT NULL,"
    "  trade_id INTEGER NOT NULL,"
    "  partner INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  reason INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  PRIMARY KEY (player_id, trade_id));"
    "CREATE INDEX items_owner ON items(owner);",
};

enum stmt_id {
    ST_PLAYER_NAME,
    ST_PLAYER_INSERT,
    ST_PLAYER_RENAME,
    ST_ITEM_INSERT,
    ST_MINT_INSERT,
    ST_ITEMS_OF,
    ST_NOTICES_OF,
    ST_ITEM_GET,
    ST_ITEM_MOVE,
    ST_ITEM_REDUCE,
    ST_TRADE_EXISTS,
    ST_TRADE_INSERT,
    ST_TRADE_ITEM_INSERT,
    ST_ITEM_COUNT,
    ST_NOTICE_PUT,
    ST_NOTICE_DELETE,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_PLAYER_NAME] = "SELECT name FROM players WHERE player_id = ?1",
    [ST_PLAYER_INSERT] =
        "INSERT INTO players (player_id, name, created) VALUES (?1, ?2, ?3)",
    [ST_PLAYER_RENAME] = "UPDATE players SET name = ?2 WHERE player_id = ?1",
    [ST_ITEM_INSERT] =
        "INSERT INTO items (owner, kind, quantity) VALUES (?1, ?2, ?3)",
    [ST_MINT_INSERT] = "INSERT INTO minted (player_id, kind, quantity, "
                       "minted_at) VALUES (?1, ?2, ?3, ?4)",
    [ST_ITEMS_OF] = "SELECT item_id, kind, quantity FROM items "
                    "WHERE owner = ?1 ORDER BY item_id LIMIT ?2",
    [ST_NOTICES_OF] = "SELECT trade_id, partner, status, reason FROM notices "
                      "WHERE player_id = ?1 ORDER BY created, trade_id "
                      "LIMIT ?2",
    [ST_ITEM_GET] =
        "SELECT owner, kind, quantity FROM items WHERE item_id = ?1",
    [ST_ITEM_MOVE] = "UPDATE items SET owner = ?2 WHERE item_id = ?1",
    [ST_ITEM_REDUCE] =
        "UPDATE items SET quantity = quantity - ?2 WHERE item_id = ?1",
    [ST_TRADE_EXISTS] = "SELECT a, b FROM trades WHERE trade_id = ?1",
    [ST_TRADE_INSERT] = "INSERT INTO trades (trade_id, a, b, committed_at) "
                        "VALUES (?1, ?2, ?3, ?4)",
    [ST_TRADE_ITEM_INSERT] =
        "INSERT INTO trade_items (trade_id, item_id, new_item_id, giver, "
        "receiver, kind, quantity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_ITEM_COUNT] = "SELECT COUNT(*) FROM items WHERE owner = ?1",
    [ST_NOTICE_PUT] =
        "INSERT OR REPLACE INTO notices (player_id, trade_id, partner, "
        "status, reason, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_NOTICE_DELETE] =
        "DELETE FROM notices WHERE player_id = ?1 AND trade_id = ?2",
};

struct request {
    struct request *next;
    uint64_t submit_ns;
    union {
        struct {
            uint64_t player_id;
            char name[TW_NAME_MAX + 1];
        } load;
        struct tw_store_commit commit;
        struct {
            uint64_t player_id;
            uint32_t trade_id;
        } ack;
    } u;
    struct tw_store_result result;
};

struct queue {
    struct request *head, *tail;
};

struct tw_store {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    uint32_t commit_delay_ms;
    size_t starter_count;
    struct tw_item_grant starter[TW_MAX_STARTER_ITEMS];
    uint32_t next_trade_id;
    int efd;
    int lock_fd; /* flock on "<path>.lock": one server per database */

    pthread_t thread;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    struct queue todo, done;
    const struct request *current; /* the request the thread is running */
    uint32_t outstanding;          /* submitted, not yet polled */
    bool closing;
    struct tw_store_stats stats;
};

static void queue_push(struct queue *q, struct request *r)
{
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
}

static struct request *queue_pop(struct queue *q)
{
    struct request *r = q->head;
    if (r) {
        q->head = r->next;
        if (!q->head)
            q->tail = NULL;
    }
    return r;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        TW_LOG(TW_ERROR, "store", TW_NO_PEER, "%s failed: %s", sql,
               msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

/* Runs a query returning one integer; returns an SQLite result code. */
static int query_int(sqlite3 *db, const char *sql, sqlite3_int64 *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/*
 * Opens and configures a connection. Defensive mode and untrusted schema
 * keep a tampered file from running SQL functions through views or
 * triggers; WAL with synchronous=FULL makes each commit durable on return.
 */
static sqlite3 *open_db(const char *path, int flags, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "%s: cannot open database: %s", path,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    return db;
}

static int set_durable_mode(sqlite3 *db, const char *path, char *err,
                            size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st,
                                NULL);
    bool wal = false;
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        wal = mode && strcmp(mode, "wal") == 0;
    }
    sqlite3_finalize(st);
    if (!wal) {
        set_err(err, errlen, "%s: cannot switch to WAL mode: %s", path,
                sqlite3_errmsg(db));
        return -1;
    }
    if (exec_sql(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")
        != SQLITE_OK) {
        set_err(err, errlen, "%s: cannot set pragmas: %s", path,
                sqlite3_errmsg(db));
        return -1;
    }
    return TW_OK;
}

/* Reads the schema version after checking the file is ours (or empty). */
static int read_version(sqlite3 *db, const char *path, sqlite3_int64 *version,
                        char *err, size_t errlen)
{
    sqlite3_int64 app = 0, objects = 0;
    if (query_int(db, "PRAGMA application_id", &app) != SQLITE_OK ||
        query_int(db, "PRAGMA user_version", version) != SQLITE_OK ||
        query_int(db, "SELECT COUNT(*) FROM sqlite_schema", &objects) !=
            SQLITE_OK) {
        set_err(err, errlen, "%s: cannot read schema: %s", path,
                sqlite3_errmsg(db));
        return -1;
    }
    if (app != TW_STORE_APP_ID && (app != 0 || *version != 0 || objects != 0)) {
        set_err(err, errlen,
                "%s: not a tickwire store (foreign application id or tables)",
                path);
        return -1;
    }
    if (*version > TW_STORE_SCHEMA_VERSION) {
        set_err(err, errlen,
                "%s: schema version %lld is newer than this server's %d",
                path, (long long)*version, TW_STORE_SCHEMA_VERSION);
        return -1;
    }
    return TW_OK;
}

/* Applies each missing step in its own transaction with its version. */
static int migrate(sqlite3 *db, const char *path, int target, char *err,
                   size_t errlen)
{
    sqlite3_int64 version;
    if (read_version(db, path, &version, err, errlen) != TW_OK)
        return -1;
    for (int v = (int)version; v < target; v++) {
        char bump[96];
        snprintf(bump, sizeof bump,
                 "PRAGMA user_version = %d; PRAGMA application_id = %d",
                 v + 1, TW_STORE_APP_ID);
        if (exec_sql(db, "BEGIN IMMEDIATE") != SQLITE_OK)
            goto fail;
        if (exec_sql(db, migrations[v]) != SQLITE_OK ||
            exec_sql(db, bump) != SQLITE_OK ||
            exec_sql(db, "COMMIT") != SQLITE_OK) {
            exec_sql(db, "ROLLBACK");
            goto fail;
        }
        TW_LOG(TW_INFO, "store", TW_NO_PEER,
               "%s: migrated schema to version %d", path, v + 1);
    }
    return TW_OK;
fail:
    set_err(err, errlen, "%s: schema migration failed: %s", path,
            sqlite3_errmsg(db));
    return -1;
}

int tw_store_migrate_file(const char *path, int target_version, char *err,
                          size_t errlen)
{
    if (target_version < 1 || target_version > TW_STORE_SCHEMA_VERSION) {
        set_err(err, errlen, "%s: target version %d out of range 1..%d",
                path, target_version, TW_STORE_SCHEMA_VERSION);
        return -1;
    }
    sqlite3 *db = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                          err, errlen);
    if (!db)
        return -1;
    int rc = set_durable_mode(db, path, err, errlen);
    if (rc == TW_OK)
        rc = migrate(db, path, target_version, err, errlen);
    sqlite3_close(db);
    return rc;
}

/* Returns the cached statement for id, reset and unbound, or NULL. */
static sqlite3_stmt *stmt(struct tw_store *s, enum stmt_id id)
{
    sqlite3_stmt *st = s->stmts[id];
    if (!st) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[id], -1,
                               SQLITE_PREPARE_PERSISTENT, &st,
                               NULL) != SQLITE_OK) {
            TW_LOG(TW_ERROR, "store", TW_NO_PEER, "prepare failed: %s: %s",
                   stmt_sql[id], sqlite3_errmsg(s->db));
            return NULL;
        }
        s->stmts[id] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Steps a statement that returns no rows; returns SQLITE_DONE on success. */
static int run_stmt(sqlite3_stmt *st)
{
    if (!st)
        return SQLITE_ERROR;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc;
}

static sqlite3_int64 sql_id(uint64_t id)
{
    return (sqlite3_int64)id;
}

/* Checks and copies a row's kind text; false when it breaks the limits. */
static bool read_kind(sqlite3_stmt *st, int col, char *out)
{
    if (sqlite3_column_type(st, col) != SQLITE_TEXT)
        return false;
    const char *kind = (const char *)sqlite3_column_text(st, col);
    int len = sqlite3_column_bytes(st, col);
    if (!kind || len < 0 || !tw_item_kind_valid(kind, (size_t)len))
        return false;
    memcpy(out, kind, (size_t)len);
    out[len] = '\0';
    return true;
}

static bool valid_quantity(sqlite3_stmt *st, int col)
{
    sqlite3_int64 q = sqlite3_column_int64(st, col);
    return sqlite3_column_type(st, col) == SQLITE_INTEGER && q > 0 &&
           q <= UINT32_MAX;
}

/*
 * Reads a player's items. The file is untrusted: a row with an invalid
 * kind or quantity, or more than TW_INVENTORY_MAX rows, fails the read.
 */
static int read_inventory(struct tw_store *s, uint64_t player_id,
                          struct tw_inventory *inv)
{
    memset(inv, 0, sizeof *inv);
    inv->player_id = player_id;
    sqlite3_stmt *st = stmt(s, ST_ITEMS_OF);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, sql_id(player_id));
    sqlite3_bind_int(st, 2, TW_INVENTORY_MAX + 1);
    int rc;
    const char *problem = NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (inv->count == TW_INVENTORY_MAX) {
            problem = "more items than the inventory limit";
            break;
        }
        struct tw_item *it = &inv->items[inv->count];
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        if (id <= 0 || !read_kind(st, 1, it->kind) || !valid_quantity(st, 2)) {
            problem = "an item row with an invalid id, kind or quantity";
            break;
        }
        it->item_id = (uint64_t)id;
        it->quantity = (uint32_t)sqlite3_column_int64(st, 2);
        inv->count++;
    }
    sqlite3_reset(st);
    if (problem) {
        TW_LOG(TW_ERROR, "store", TW_NO_PEER, "player %llu has %s",
               (unsigned long long)player_id, problem);
        return -1;
    }
    if (rc != SQLITE_DONE) {
        TW_LOG(TW_ERROR, "store", TW_NO_PEER,
               "reading items of player %llu failed: %s",
               (unsigned long long)player_id, sqlite3_errmsg(s->db));
        return -1;
    }
    return TW_OK;
}

/* Reads the oldest notices; rows out of range are skipped and logged. */
static int read_notices(struct tw_store *s, uint64_t player_id,
                        struct tw_store_result *res)
{
    res->notice_count = 0;
    sqlite3_stmt *st = stmt(s, ST_NOTICES_OF);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, sql_id(player_id));
    sqlite3_bind_int(st, 2, TW_STORE_MAX_NOTICES);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 trade_id = sqlite3_column_int64(st, 0);
        sqlite3_int64 status = sqlite3_column_int64(st, 2);
        sqlite3_int64 reason = sqlite3_column_int64(st, 3);
        if (trade_id <= 0 || trade_id > UINT32_MAX ||
            (status != TW_TRADE_S_COMMITTED && status != TW_TRADE_S_FAILED) ||
            reason < 0 || reason >= TW_TRADE_R_COUNT) {
            TW_LOG(TW_WARN, "store", TW_NO_PEER,
                   "skipping invalid notice row of player %llu",
                   (unsigned long long)player_id);
            continue;
        }
        struct tw_trade_notice *n = &res->notices[res->notice_count++];
        n->trade_id = (uint32_t)trade_id;
        n->partner = (uint64_t)sqlite3_column_int64(st, 1);
        n->status = (uint8_t)status;
        n->reason = (uint8_t)reason;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? TW_OK : -1;
}

/* Logs a failed operation; a row check that failed has logged its cause. */
static void log_sql_error(struct tw_store *s, const char *what, uint64_t id)
{
    int code = sqlite3_errcode(s->db);
    if (code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE)
        TW_LOG(TW_ERROR, "store", TW_NO_PEER, "%s %llu failed", what,
               (unsigned long long)id);
    else
        TW_LOG(TW_ERROR, "store", TW_NO_PEER, "%s %llu failed: %s", what,
               (unsigned long long)id, sqlite3_errmsg(s->db));
}

/* Creates the player with the starter items and their ledger rows. */
static int create_player(struct tw_store *s, uint64_t player_id,
                         const char *name, sqlite3_int64 now)
{
    sqlite3_stmt *st = stmt(s, ST_PLAYER_INSERT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, sql_id(player_id));
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, now);
    if (run_stmt(st) != SQLITE_DONE)
        return -1;
    for (size_t i = 0; i < s->starter_count; i++) {
        const struct tw_item_grant *g = &s->starter[i];
        st = stmt(s, ST_ITEM_INSERT);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, sql_id(player_id));
        sqlite3_bind_text(st, 2, g->kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, g->quantity);
        if (run_stmt(st) != SQLITE_DONE)
            return -1;
        st = stmt(s, ST_MINT_INSERT);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, sql_id(player_id));
        sqlite3_bind_text(st, 2, g->kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, g->quantity);
        sqlite3_bind_int64(st, 4, now);
        if (run_stmt(st) != SQLITE_DONE)
            return -1;
    }
    return TW_OK;
}

static void run_load(struct tw_store *s, struct request *r)
{
    struct tw_store_result *res = &r->result;
    uint64_t pid = r->u.load.player_id;
    const char *name = r->u.load.name;
    res->player_id = pid;
    if (exec_sql(s->db, "BEGIN IMMEDIATE") != SQLITE_OK)
        goto error;

    sqlite3_stmt *st = stmt(s, ST_PLAYER_NAME);
    if (!st)
        goto rollback;
    sqlite3_bind_int64(st, 1, sql_id(pid));
    int rc = sqlite3_step(st);
    bool exists = rc == SQLITE_ROW;
    bool renamed = exists && sqlite3_column_type(st, 0) == SQLITE_TEXT &&
                   strcmp((const char *)sqlite3_column_text(st, 0), name) != 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        goto rollback;

    if (!exists) {
        if (create_player(s, pid, name, (sqlite3_int64)tw_clock_unix_s()) !=
            TW_OK)
            goto rollback;
        res->created = true;
    } else if (renamed) {
        st = stmt(s, ST_PLAYER_RENAME);
        if (!st)
            goto rollback;
        sqlite3_bind_int64(st, 1, sql_id(pid));
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        if (run_stmt(st) != SQLITE_DONE)
            goto rollback;
    }
    if (read_inventory(s, pid, &res->inv[0]) != TW_OK ||
        read_notices(s, pid, res) != TW_OK)
        goto rollback;
    if (exec_sql(s->db, "COMMIT") != SQLITE_OK)
        goto rollback;
    res->status = TW_STORE_OK;
    return;
rollback:
    log_sql_error(s, "loading player", pid);
    exec_sql(s->db, "ROLLBACK");
error:
    res->created = false;
    res->status = TW_STORE_ERROR;
}

/* An item as found before the commit moves anything. */
struct held_item {
    char kind[TW_ITEM_KIND_MAX + 1];
    uint32_t quantity;
};

static bool in_offer(const struct tw_trade_offer *o, uint64_t item_id)
{
    for (unsigned i = 0; i < o->count; i++)
        if (o->items[i].item_id == item_id)
            return true;
    return false;
}

static int player_exists(struct tw_store *s, uint64_t pid, bool *exists)
{
    sqlite3_stmt *st = stmt(s, ST_PLAYER_NAME);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, sql_id(pid));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    *exists = rc == SQLITE_ROW;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? TW_OK : -1;
}

/*
 * Checks one side's items against the file. Returns -1 on an SQL error,
 * else TW_OK with *why set to the first mismatch or TW_TRADE_R_NONE.
 */
static int check_side(struct tw_store *s, uint64_t giver,
                      const struct tw_trade_offer *o, struct held_item *held,
                      enum tw_trade_reason *why)
{
    *why = TW_TRADE_R_NONE;
    for (unsigned i = 0; i < o->count && *why == TW_TRADE_R_NONE; i++) {
        sqlite3_stmt *st = stmt(s, ST_ITEM_GET);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, sql_id(o->items[i].item_id));
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            *why = TW_TRADE_R_ITEM_NOT_OWNED;
        } else if (rc != SQLITE_ROW) {
            sqlite3_reset(st);
            return -1;
        } else if ((uint64_t)sqlite3_column_int64(st, 0) != giver) {
            *why = TW_TRADE_R_ITEM_NOT_OWNED;
        } else if (!read_kind(st, 1, held[i].kind) ||
                   !valid_quantity(st, 2)) {
            sqlite3_reset(st);
            TW_LOG(TW_ERROR, "store", TW_NO_PEER,
                   "item %llu has an invalid kind or quantity",
                   (unsigned long long)o->items[i].item_id);
            return -1;
        } else {
            held[i].quantity = (uint32_t)sqlite3_column_int64(st, 2);
            if (o->items[i].quantity > held[i].quantity)
                *why = TW_TRADE_R_QUANTITY_TOO_LARGE;
        }
        sqlite3_reset(st);
    }
    return TW_OK;
}

/* Moves one side's items, splitting the ones given in part. */
static int move_side(struct tw_store *s, uint32_t trade_id, uint64_t giver,
                     uint64_t receiver, const struct tw_trade_offer *o,
                     const struct held_item *held)
{
    for (unsigned i = 0; i < o->count; i++) {
        const struct tw_offer_item *oi = &o->items[i];
        sqlite3_int64 new_id = sql_id(oi->item_id);
        sqlite3_stmt *st;
        if (oi->quantity == held[i].quantity) {
            st = stmt(s, ST_ITEM_MOVE);
            if (!st)
                return -1;
            sqlite3_bind_int64(st, 1, sql_id(oi->item_id));
            sqlite3_bind_int64(st, 2, sql_id(receiver));
            if (run_stmt(st) != SQLITE_DONE)
                return -1;
        } else {
            st = stmt(s, ST_ITEM_REDUCE);
            if (!st)
                return -1;
            sqlite3_bind_int64(st, 1, sql_id(oi->item_id));
            sqlite3_bind_int64(st, 2, oi->quantity);
            if (run_stmt(st) != SQLITE_DONE)
                return -1;
            st = stmt(s, ST_ITEM_INSERT);
            if (!st)
                return -1;
            sqlite3_bind_int64(st, 1, sql_id(receiver));
            sqlite3_bind_text(st, 2, held[i].kind, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, oi->quantity);
            if (run_stmt(st) != SQLITE_DONE)
                return -1;
            new_id = sqlite3_last_insert_rowid(s->db);
        }
        st = stmt(s, ST_TRADE_ITEM_INSERT);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, trade_id);
        sqlite3_bind_int64(st, 2, sql_id(oi->item_id));
        sqlite3_bind_int64(st, 3, new_id);
        sqlite3_bind_int64(st, 4, sql_id(giver));
        sqlite3_bind_int64(st, 5, sql_id(receiver));
        sqlite3_bind_text(st, 6, held[i].kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, oi->quantity);
        if (run_stmt(st) != SQLITE_DONE)
            return -1;
    }
    return TW_OK;
}

static int item_count(struct tw_store *s, uint64_t pid, sqlite3_int64 *n)
{
    sqlite3_stmt *st = stmt(s, ST_ITEM_COUNT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, sql_id(pid));
    int rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? TW_OK : -1;
}

static int put_notice(struct tw_store *s, uint64_t pid, uint32_t trade_id,
                      uint64_t partner, enum tw_trade_status status,
                      enum tw_trade_reason reason)
{
    sqlite3_stmt *st = stmt(s, ST_NOTICE_PUT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, sql_id(pid));
    sqlite3_bind_int64(st, 2, trade_id);
    sqlite3_bind_int64(st, 3, sql_id(partner));
    sqlite3_bind_int(st, 4, (int)status);
    sqlite3_bind_int(st, 5, (int)reason);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)tw_clock_unix_s());
    return run_stmt(st) == SQLITE_DONE ? TW_OK : -1;
}

/* Checks everything that needs no disk; returns the first problem. */
static enum tw_trade_reason check_commit_args(const struct tw_store_commit *c)
{
    if (c->trade_id == 0 || c->a == 0 || c->b == 0)
        return TW_TRADE_R_BAD_REQUEST;
    if (c->a == c->b)
        return TW_TRADE_R_SELF_TRADE;
    if (!tw_trade_offer_valid(&c->give_a) || !tw_trade_offer_valid(&c->give_b))
        return TW_TRADE_R_BAD_REQUEST;
    for (unsigned i = 0; i < c->give_a.count; i++)
        if (in_offer(&c->give_b, c->give_a.items[i].item_id))
            return TW_TRADE_R_BAD_REQUEST;
    return TW_TRADE_R_NONE;
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*
 * The commit transaction proper: rechecks, moves and records. Returns -1
 * on an SQL error, else TW_OK with *why set when a check failed. The
 * caller owns BEGIN and COMMIT or ROLLBACK.
 */
static int commit_body(struct tw_store *s, const struct tw_store_commit *c,
                       enum tw_trade_reason *why)
{
    struct held_item held_a[TW_TRADE_MAX_OFFER], held_b[TW_TRADE_MAX_OFFER];
    bool a_exists, b_exists;
    if (player_exists(s, c->a, &a_exists) != TW_OK ||
        player_exists(s, c->b, &b_exists) != TW_OK)
        return -1;
    if (!a_exists || !b_exists) {
        *why = TW_TRADE_R_PARTNER_UNKNOWN;
        return TW_OK;
    }
    if (check_side(s, c->a, &c->give_a, held_a, why) != TW_OK)
        return -1;
    if (*why == TW_TRADE_R_NONE &&
        check_side(s, c->b, &c->give_b, held_b, why) != TW_OK)
        return -1;
    if (*why != TW_TRADE_R_NONE)
        return TW_OK;

    sqlite3_stmt *st = stmt(s, ST_TRADE_INSERT);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, c->trade_id);
    sqlite3_bind_int64(st, 2, sql_id(c->a));
    sqlite3_bind_int64(st, 3, sql_id(c->b));
    sqlite3_bind_int64(st, 4, (sqlite3_int64)tw_clock_unix_s());
    if (run_stmt(st) != SQLITE_DONE ||
        move_side(s, c->trade_id, c->a, c->b, &c->give_a, held_a) != TW_OK ||
        move_side(s, c->trade_id, c->b, c->a, &c->give_b, held_b) != TW_OK)
        return -1;

    sqlite3_int64 count_a, count_b;
    if (item_count(s, c->a, &count_a) != TW_OK ||
        item_count(s, c->b, &count_b) != TW_OK)
        return -1;
    if (count_a > TW_INVENTORY_MAX || count_b > TW_INVENTORY_MAX) {
        *why = TW_TRADE_R_INVENTORY_FULL;
        return TW_OK;
    }
    if (put_notice(s, c->a, c->trade_id, c->b, TW_TRADE_S_COMMITTED,
                   TW_TRADE_R_NONE) != TW_OK ||
        put_notice(s, c->b, c->trade_id, c->a, TW_TRADE_S_COMMITTED,
                   TW_TRADE_R_NONE) != TW_OK)
        return -1;
    return TW_OK;
}

/* Records a failed commit for both players; losing it only costs a notice. */
static void record_failure(struct tw_store *s, const struct tw_store_commit *c,
                           enum tw_trade_reason why)
{
    if (why == TW_TRADE_R_BAD_REQUEST || why == TW_TRADE_R_SELF_TRADE ||
        why == TW_TRADE_R_PARTNER_UNKNOWN)
        return;
    if (exec_sql(s->db, "BEGIN IMMEDIATE") != SQLITE_OK)
        return;
    if (put_notice(s, c->a, c->trade_id, c->b, TW_TRADE_S_FAILED, why) !=
            TW_OK ||
        put_notice(s, c->b, c->trade_id, c->a, TW_TRADE_S_FAILED, why) !=
            TW_OK ||
        exec_sql(s->db, "COMMIT") != SQLITE_OK) {
        log_sql_error(s, "recording the failure of trade", c->trade_id);
        exec_sql(s->db, "ROLLBACK");
    }
}

static void run_commit(struct tw_store *s, struct request *r)
{
    const struct tw_store_commit *c = &r->u.commit;
    struct tw_store_result *res = &r->result;
    res->trade_id = c->trade_id;
    res->inv[0].player_id = c->a;
    res->inv[1].player_id = c->b;

    enum tw_trade_reason why = check_commit_args(c);
    if (why != TW_TRADE_R_NONE) {
        res->status = TW_STORE_ABORTED;
        res->reason = why;
        return;
    }
    if (exec_sql(s->db, "BEGIN IMMEDIATE") != SQLITE_OK)
        goto error;
    sqlite3_stmt *st = stmt(s, ST_TRADE_EXISTS);
    if (!st)
        goto rollback;
    sqlite3_bind_int64(st, 1, c->trade_id);
    int rc = sqlite3_step(st);
    bool same_players = rc == SQLITE_ROW &&
                        (uint64_t)sqlite3_column_int64(st, 0) == c->a &&
                        (uint64_t)sqlite3_column_int64(st, 1) == c->b;
    sqlite3_reset(st);
    if (rc == SQLITE_ROW && !same_players) {
        /* Trade ids come from this process alone (see the lock file), so
         * a stored trade between other players means the file changed
         * under us: refuse rather than report someone else's trade. */
        TW_LOG(TW_ERROR, "store", TW_NO_PEER,
               "trade %u is already stored between other players",
               c->trade_id);
        goto rollback;
    }
    if (rc == SQLITE_ROW) {
        res->replayed = true;
    } else if (rc != SQLITE_DONE || commit_body(s, c, &why) != TW_OK) {
        goto rollback;
    }
    if (why != TW_TRADE_R_NONE) {
        exec_sql(s->db, "ROLLBACK");
        record_failure(s, c, why);
        res->status = TW_STORE_ABORTED;
        res->reason = why;
        if (read_inventory(s, c->a, &res->inv[0]) != TW_OK ||
            read_inventory(s, c->b, &res->inv[1]) != TW_OK)
            res->status = TW_STORE_ERROR;
        return;
    }
    /* Inside the open transaction, so a kill during the delay rolls back. */
    if (s->commit_delay_ms && !res->replayed)
        sleep_ms(s->commit_delay_ms);
    if (read_inventory(s, c->a, &res->inv[0]) != TW_OK ||
        read_inventory(s, c->b, &res->inv[1]) != TW_OK ||
        exec_sql(s->db, "COMMIT") != SQLITE_OK)
        goto rollback;
    res->status = TW_STORE_OK;
    return;
rollback:
    log_sql_error(s, "committing trade", c->trade_id);
    exec_sql(s->db, "ROLLBACK");
error:
    res->status = TW_STORE_ERROR;
    res->reason = TW_TRADE_R_STORE_FAILED;
    res->replayed = false;
}

static void run_ack(struct tw_store *s, struct request *r)
{
    struct tw_store_result *res = &r->result;
    res->player_id = r->u.ack.player_id;
    res->trade_id = r->u.ack.trade_id;
    sqlite3_stmt *st = stmt(s, ST_NOTICE_DELETE);
    res->status = TW_STORE_ERROR;
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, sql_id(res->player_id));
    sqlite3_bind_int64(st, 2, res->trade_id);
    if (run_stmt(st) == SQLITE_DONE)
        res->status = TW_STORE_OK;
    else
        log_sql_error(s, "deleting a notice of player", res->player_id);
}

static void count_result(struct tw_store_stats *st,
                         const struct tw_store_result *res)
{
    st->completed++;
    if (res->latency_us > st->max_latency_us)
        st->max_latency_us = res->latency_us;
    if (res->status == TW_STORE_ERROR)
        st->errors++;
    if (res->op != TW_STORE_OP_COMMIT)
        return;
    if (res->status == TW_STORE_ABORTED)
        st->aborted++;
    else if (res->status == TW_STORE_OK && res->replayed)
        st->replayed++;
    else if (res->status == TW_STORE_OK)
        st->commits++;
}

static void *store_main(void *arg)
{
    struct tw_store *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->todo.head && !s->closing)
            pthread_cond_wait(&s->wake, &s->lock);
        struct request *r = queue_pop(&s->todo);
        if (!r)
            break; /* closing, and the queue is drained */
        s->current = r;
        pthread_mutex_unlock(&s->lock);

        switch (r->result.op) {
        case TW_STORE_OP_LOAD:
            run_load(s, r);
            break;
        case TW_STORE_OP_COMMIT:
            run_commit(s, r);
            break;
        case TW_STORE_OP_ACK:
            run_ack(s, r);
            break;
        }
        r->result.latency_us = (tw_clock_mono_ns() - r->submit_ns) / 1000;

        pthread_mutex_lock(&s->lock);
        s->current = NULL;
        s->stats.pending--;
        count_result(&s->stats, &r->result);
        queue_push(&s->done, r);
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof one) != (ssize_t)sizeof one)
            TW_LOG(TW_ERROR, "store", TW_NO_PEER,
                   "eventfd write failed: %s", strerror(errno));
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

_Static_assert(TW_MAX_STARTER_ITEMS <= TW_INVENTORY_MAX,
               "a new player's starter items must fit one inventory");

static int check_config(const struct tw_config *cfg, char *err, size_t errlen)
{
    const char *path = cfg->store.path;
    if (strnlen(path, sizeof cfg->store.path) == 0 ||
        strnlen(path, sizeof cfg->store.path) == sizeof cfg->store.path) {
        set_err(err, errlen, "store.path: missing or longer than %d bytes",
                TW_PATH_MAX - 1);
        return -1;
    }
    if (cfg->store.starter_count > TW_MAX_STARTER_ITEMS) {
        set_err(err, errlen, "store.starter: more than %d grants",
                TW_MAX_STARTER_ITEMS);
        return -1;
    }
    for (size_t i = 0; i < cfg->store.starter_count; i++) {
        const struct tw_item_grant *g = &cfg->store.starter[i];
        if (!tw_item_kind_valid(g->kind, strnlen(g->kind, sizeof g->kind)) ||
            g->quantity == 0) {
            set_err(err, errlen,
                    "store.starter[%zu]: invalid kind or zero quantity", i);
            return -1;
        }
    }
    return TW_OK;
}

static int read_next_trade_id(struct tw_store *s, const char *path,
                              char *err, size_t errlen)
{
    sqlite3_int64 max_id;
    if (query_int(s->db,
                  "SELECT MAX(IFNULL((SELECT MAX(trade_id) FROM trades), 0),"
                  " IFNULL((SELECT MAX(trade_id) FROM notices), 0))",
                  &max_id) != SQLITE_OK) {
        set_err(err, errlen, "%s: cannot read trade ids: %s", path,
                sqlite3_errmsg(s->db));
        return -1;
    }
    if (max_id < 0 || max_id >= UINT32_MAX) {
        set_err(err, errlen, "%s: trade ids are exhausted", path);
        return -1;
    }
    s->next_trade_id = (uint32_t)max_id + 1;
    return TW_OK;
}

static void free_store(struct tw_store *s)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        TW_LOG(TW_ERROR, "store", TW_NO_PEER, "closing the database failed");
    if (s->efd >= 0)
        close(s->efd);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s);
}

/*
 * Takes an exclusive lock on "<path>.lock" for the store's lifetime, so a
 * second server pointed at the same database refuses to start instead of
 * handing out the same trade ids. A separate file is used because closing
 * any descriptor of the database itself would drop SQLite's own locks.
 */
static int lock_store(struct tw_store *s, const char *path, char *err,
                      size_t errlen)
{
    char lock_path[TW_PATH_MAX + 8];
    snprintf(lock_path, sizeof lock_path, "%s.lock", path);
    s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                      0600);
    if (s->lock_fd < 0) {
        set_err(err, errlen, "%s: cannot open lock file %s: %s", path,
                lock_path, strerror(errno));
        return -1;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        set_err(err, errlen,
                "%s: in use by another tickwire-server (lock %s held); "
                "give each match its own store.path",
                path, lock_path);
        return -1;
    }
    return TW_OK;
}

int tw_store_open(const struct tw_config *cfg, struct tw_store **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    if (check_config(cfg, err, errlen) != TW_OK)
        return -1;
    const char *path = cfg->store.path;
    struct tw_store *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    s->efd = -1;
    s->lock_fd = -1;
    s->commit_delay_ms = cfg->store.test_commit_delay_ms;
    s->starter_count = cfg->store.starter_count;
    memcpy(s->starter, cfg->store.starter, sizeof s->starter);

    if (lock_store(s, path, err, errlen) != TW_OK)
        goto fail;
    s->db = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err,
                    errlen);
    if (!s->db || set_durable_mode(s->db, path, err, errlen) != TW_OK ||
        migrate(s->db, path, TW_STORE_SCHEMA_VERSION, err, errlen) != TW_OK ||
        read_next_trade_id(s, path, err, errlen) != TW_OK)
        goto fail;

    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        set_err(err, errlen, "%s: eventfd failed: %s", path, strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    int rc = pthread_create(&s->thread, NULL, store_main, s);
    if (rc != 0) {
        set_err(err, errlen, "%s: cannot start the store thread: %s", path,
                strerror(rc));
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        goto fail;
    }
    if (s->commit_delay_ms)
        TW_LOG(TW_WARN, "store", TW_NO_PEER,
               "test hook on: every commit waits %u ms", s->commit_delay_ms);
    *out = s;
    return TW_OK;
fail:
    free_store(s);
    return -1;
}

int tw_store_fd(const struct tw_store *s)
{
    return s->efd;
}

uint32_t tw_store_next_trade_id(const struct tw_store *s)
{
    return s->next_trade_id;
}

static struct request *new_request(enum tw_store_op op, uint64_t cookie)
{
    struct request *r = calloc(1, sizeof *r);
    if (r) {
        r->result.op = op;
        r->result.cookie = cookie;
    }
    return r;
}

static int submit(struct tw_store *s, struct request *r)
{
    r->submit_ns = tw_clock_mono_ns();
    pthread_mutex_lock(&s->lock);
    int rc = TW_OK;
    if (s->closing)
        rc = -ESHUTDOWN;
    else if (s->outstanding >= TW_STORE_QUEUE_MAX)
        rc = -EAGAIN;
    if (rc == TW_OK) {
        s->outstanding++;
        s->stats.pending++;
        queue_push(&s->todo, r);
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc != TW_OK)
        free(r);
    return rc;
}

int tw_store_load_player(struct tw_store *s, uint64_t player_id,
                         const char *name, uint64_t cookie)
{
    if (player_id == 0)
        return -EINVAL;
    struct request *r = new_request(TW_STORE_OP_LOAD, cookie);
    if (!r)
        return -ENOMEM;
    r->u.load.player_id = player_id;
    snprintf(r->u.load.name, sizeof r->u.load.name, "%s", name ? name : "");
    return submit(s, r);
}

int tw_store_commit(struct tw_store *s, const struct tw_store_commit *c,
                    uint64_t cookie)
{
    if (c->give_a.count > TW_TRADE_MAX_OFFER ||
        c->give_b.count > TW_TRADE_MAX_OFFER)
        return -EINVAL;
    struct request *r = new_request(TW_STORE_OP_COMMIT, cookie);
    if (!r)
        return -ENOMEM;
    r->u.commit = *c;
    return submit(s, r);
}

int tw_store_ack_notice(struct tw_store *s, uint64_t player_id,
                        uint32_t trade_id, uint64_t cookie)
{
    struct request *r = new_request(TW_STORE_OP_ACK, cookie);
    if (!r)
        return -ENOMEM;
    r->u.ack.player_id = player_id;
    r->u.ack.trade_id = trade_id;
    return submit(s, r);
}

int tw_store_poll(struct tw_store *s, tw_store_done_fn fn, void *ctx)
{
    uint64_t ignored;
    /* EAGAIN just means nothing was signalled since the last poll. */
    if (read(s->efd, &ignored, sizeof ignored) < 0 && errno != EAGAIN)
        TW_LOG(TW_ERROR, "store", TW_NO_PEER, "eventfd read failed: %s",
               strerror(errno));
    pthread_mutex_lock(&s->lock);
    struct request *r = s->done.head;
    s->done.head = s->done.tail = NULL;
    int n = 0;
    for (struct request *it = r; it; it = it->next)
        n++;
    s->outstanding -= (uint32_t)n;
    pthread_mutex_unlock(&s->lock);
    while (r) {
        struct request *next = r->next;
        if (fn)
            fn(ctx, &r->result);
        free(r);
        r = next;
    }
    return n;
}

void tw_store_get_stats(struct tw_store *s, struct tw_store_stats *out)
{
    uint64_t now = tw_clock_mono_ns();
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    const struct request *oldest = s->current ? s->current : s->todo.head;
    out->oldest_pending_ms =
        oldest ? (now - oldest->submit_ns) / 1000000u : 0;
    pthread_mutex_unlock(&s->lock);
}

void tw_store_close(struct tw_store *s, tw_store_done_fn fn, void *ctx)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->closing = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    tw_store_poll(s, fn, ctx);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free_store(s);
}
