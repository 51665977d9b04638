/* The offline consistency check of a store file; see tw_store_audit. */
#include "store.h"

#include <cJSON.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_OK 0
#define AUDIT_FAILED 1
#define AUDIT_INCONSISTENT 3
#define MAX_INTEGRITY_LINES 10

struct audit {
    sqlite3 *db;
    cJSON *report;
    cJSON *problems;
    bool corrupt;  /* a query hit a damaged file */
    bool failed;   /* a query failed for another reason */
};

static void problem(struct audit *a, const char *text)
{
    cJSON_AddItemToArray(a->problems, cJSON_CreateString(text));
}

/* Sorts a failed query into damage (inconsistent) or a plain failure. */
static void query_failed(struct audit *a, const char *what, int rc)
{
    char text[256];
    snprintf(text, sizeof text, "%s: %s", what, sqlite3_errmsg(a->db));
    problem(a, text);
    int primary = rc & 0xff;
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
        a->corrupt = true;
    else
        a->failed = true;
}

/* Runs a one-integer query, stores it under key and returns it. */
static sqlite3_int64 count(struct audit *a, const char *key, const char *sql)
{
    sqlite3_stmt *st;
    sqlite3_int64 v = 0;
    int rc = sqlite3_prepare_v2(a->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        query_failed(a, key, rc);
    sqlite3_finalize(st);
    cJSON_AddNumberToObject(a->report, key, (double)v);
    return v;
}

static bool check_integrity(struct audit *a)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(a->db, "PRAGMA integrity_check", -1, &st,
                                NULL);
    cJSON *lines = cJSON_AddArrayToObject(a->report, "integrity");
    bool ok = false;
    int n = 0;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (n == 0 && line && strcmp(line, "ok") == 0)
            ok = true;
        if (n++ < MAX_INTEGRITY_LINES)
            cJSON_AddItemToArray(lines, cJSON_CreateString(line ? line : ""));
    }
    if (rc != SQLITE_DONE) {
        query_failed(a, "integrity_check", rc);
        ok = false;
    }
    sqlite3_finalize(st);
    if (!ok)
        problem(a, "integrity_check did not return ok");
    return ok && n == 1;
}

/* Adds {"kind": {"held": N, "minted": M}}; returns the mismatched kinds. */
static sqlite3_int64 check_kinds(struct audit *a)
{
    static const char sql[] =
        "SELECT kind, SUM(held), SUM(minted) FROM ("
        " SELECT kind, quantity AS held, 0 AS minted FROM items"
        " UNION ALL SELECT kind, 0, quantity FROM minted)"
        " GROUP BY kind ORDER BY kind";
    cJSON *kinds = cJSON_AddObjectToObject(a->report, "kinds");
    sqlite3_stmt *st;
    sqlite3_int64 mismatched = 0;
    int rc = sqlite3_prepare_v2(a->db, sql, -1, &st, NULL);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        const char *kind = (const char *)sqlite3_column_text(st, 0);
        sqlite3_int64 held = sqlite3_column_int64(st, 1);
        sqlite3_int64 minted = sqlite3_column_int64(st, 2);
        cJSON *k = cJSON_CreateObject();
        cJSON_AddNumberToObject(k, "held", (double)held);
        cJSON_AddNumberToObject(k, "minted", (double)minted);
        cJSON_AddItemToObject(kinds, kind ? kind : "", k);
        if (held != minted) {
            char text[96];
            snprintf(text, sizeof text,
                     "kind %.24s: %lld held but %lld minted", kind ? kind : "",
                     (long long)held, (long long)minted);
            problem(a, text);
            mismatched++;
        }
    }
    if (rc != SQLITE_DONE)
        query_failed(a, "kinds", rc);
    sqlite3_finalize(st);
    return mismatched;
}

/* Row checks: the report key and the query counting offending rows. */
static const struct {
    const char *key;
    const char *sql;
} row_checks[] = {
    {"nonpositive_quantities",
     "SELECT COUNT(*) FROM items WHERE typeof(quantity) != 'integer'"
     " OR quantity <= 0"},
    {"oversized_quantities",
     "SELECT COUNT(*) FROM items WHERE quantity > 4294967295"},
    {"invalid_kinds",
     "SELECT COUNT(*) FROM items WHERE typeof(kind) != 'text'"
     " OR length(kind) < 1 OR length(kind) > 23"},
    {"orphan_items",
     "SELECT COUNT(*) FROM items WHERE owner NOT IN"
     " (SELECT player_id FROM players)"},
    {"overfull_players",
     "SELECT COUNT(*) FROM (SELECT owner FROM items GROUP BY owner"
     " HAVING COUNT(*) > 32)"},
    {"trades_without_items",
     "SELECT COUNT(*) FROM trades WHERE trade_id NOT IN"
     " (SELECT trade_id FROM trade_items)"},
    {"orphan_trade_items",
     "SELECT COUNT(*) FROM trade_items WHERE trade_id NOT IN"
     " (SELECT trade_id FROM trades)"},
};

_Static_assert(TW_ITEM_KIND_MAX == 23 && TW_INVENTORY_MAX == 32,
               "update the limits in row_checks");

static bool run_checks(struct audit *a)
{
    bool consistent = check_integrity(a);
    if (a->corrupt)
        return false; /* not a readable database: the rest would mislead */
    sqlite3_int64 version = count(a, "schema_version", "PRAGMA user_version");
    if (version != TW_STORE_SCHEMA_VERSION) {
        char text[96];
        snprintf(text, sizeof text,
                 "schema version %lld, expected %d: start the server once "
                 "to migrate", (long long)version, TW_STORE_SCHEMA_VERSION);
        problem(a, text);
        a->failed = true;
        return false;
    }
    count(a, "players", "SELECT COUNT(*) FROM players");
    count(a, "items", "SELECT COUNT(*) FROM items");
    count(a, "trades_committed", "SELECT COUNT(*) FROM trades");
    count(a, "pending_notices", "SELECT COUNT(*) FROM notices");
    sqlite3_int64 owners = count(
        a, "max_owners_per_item",
        "SELECT IFNULL(MAX(n), 0) FROM (SELECT COUNT(DISTINCT owner) AS n"
        " FROM items GROUP BY item_id)");
    if (owners > 1) {
        problem(a, "an item id has more than one owner");
        consistent = false;
    }
    for (size_t i = 0; i < sizeof row_checks / sizeof row_checks[0]; i++) {
        if (count(a, row_checks[i].key, row_checks[i].sql) != 0) {
            problem(a, row_checks[i].key);
            consistent = false;
        }
    }
    if (check_kinds(a) != 0)
        consistent = false;
    return consistent;
}

int tw_store_audit(const char *path, FILE *out)
{
    struct audit a = {0};
    int rc = sqlite3_open_v2(path, &a.db, SQLITE_OPEN_READWRITE, NULL);
    a.report = cJSON_CreateObject();
    cJSON_AddStringToObject(a.report, "path", path);
    a.problems = cJSON_CreateArray();
    bool consistent = false;
    if (rc != SQLITE_OK) {
        char text[256];
        snprintf(text, sizeof text, "cannot open: %s",
                 a.db ? sqlite3_errmsg(a.db) : sqlite3_errstr(rc));
        problem(&a, text);
        a.failed = true;
    } else {
        sqlite3_busy_timeout(a.db, 5000);
        sqlite3_db_config(a.db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        sqlite3_db_config(a.db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        sqlite3_exec(a.db, "PRAGMA query_only = 1", NULL, NULL, NULL);
        consistent = run_checks(&a);
    }
    sqlite3_close(a.db);

    int result = AUDIT_OK;
    if (a.corrupt || (!consistent && !a.failed))
        result = AUDIT_INCONSISTENT;
    else if (a.failed)
        result = AUDIT_FAILED;
    cJSON_AddBoolToObject(a.report, "consistent", result == AUDIT_OK);
    cJSON_AddItemToObject(a.report, "problems", a.problems);
    char *text = cJSON_Print(a.report);
    if (text) {
        fprintf(out, "%s\n", text);
        free(text);
    } else {
        fprintf(out, "{\"consistent\": false}\n");
        result = AUDIT_FAILED;
    }
    fflush(out);
    cJSON_Delete(a.report);
    return result;
}
