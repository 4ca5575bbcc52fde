//! Checks of a database left by the real binary, shared by the suites that
//! run it as a child process: integrity, no duplicate keys, the secret scan,
//! the ledger against the data and the generator's truth, and readers of the
//! `runs` and `fetches` tables.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde_json::Value;
use sqlx::Row as _;
use wxcube::clock::days;
use wxcube::endpoint::Endpoint;
use wxcube::store::Store;

use crate::helpers::*;

// ---------------------------------------------------------------------------
// The whole database, and the ledger against the data

pub async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

pub async fn assert_integrity(store: &Store) {
    let result: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(result, "ok", "PRAGMA integrity_check");
}

/// Searches every column (as text) of every table for each secret, inside
/// SQLite: the same scan as `all_database_text`, without turning some
/// hundred thousand rows into JSON first.
pub async fn assert_database_free_of(store: &Store, secrets: &[String], what: &str) {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(columns.len() > 100, "only {} columns found", columns.len());
    for (table, column) in &columns {
        let sql = format!(
            "SELECT COUNT(*) FROM \"{table}\" WHERE instr(CAST(\"{column}\" AS TEXT), ?) > 0"
        );
        for secret in secrets {
            assert!(!secret.is_empty());
            let hits: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                .bind(secret)
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(
                hits,
                0,
                "{what}: {table}.{column} contains a secret ({}...)",
                &secret[..4.min(secret.len())]
            );
        }
    }
}

/// COUNT(*) against COUNT(DISTINCT key) on every keyed table.
pub async fn assert_no_duplicate_keys(store: &Store) {
    let mut keyed: Vec<(&str, Vec<&str>)> = wxcube::store::tables::ALL_TABLES
        .iter()
        .map(|t| (t.name, t.keys.to_vec()))
        .collect();
    for ledger in ["fetches", "raw_responses"] {
        keyed.push((ledger, vec!["appid", "endpoint", "begin_date", "end_date"]));
    }
    for (table, keys) in keyed {
        let all = scalar(store, &format!("SELECT COUNT(*) FROM {table}")).await;
        let distinct = scalar(
            store,
            &format!(
                "SELECT COUNT(*) FROM (SELECT DISTINCT {} FROM {table})",
                keys.join(", ")
            ),
        )
        .await;
        assert_eq!(all, distinct, "{table} holds duplicate keys");
    }
}

/// The ledger agrees with the data, also in the middle of a story (after a
/// kill): every ok, non-delayed row of `fetches` holds exactly the rows the
/// truth gives for its chunk, and every stored row of an endpoint's tables
/// lies in an ok chunk of that endpoint.
pub async fn assert_ledger_consistent(store: &Store, endpoints: &[Endpoint], today: NaiveDate) {
    for &endpoint in endpoints {
        let ok = sqlx::query(
            "SELECT begin_date, end_date, rows, is_delay FROM fetches
             WHERE appid = ? AND endpoint = ? AND status = 'ok'",
        )
        .bind(APPID)
        .bind(endpoint.name())
        .fetch_all(store.pool())
        .await
        .unwrap();
        for row in &ok {
            let (begin, end): (String, String) = (row.get(0), row.get(1));
            let rows: i64 = row.get(2);
            let delayed = row.get::<Option<i64>, _>(3) == Some(1);
            let truth: usize =
                wxcube::sim::truth::expected_rows(APPID, endpoint, d(&begin), d(&end), today)
                    .iter()
                    .filter(|(table, _)| **table != "articles")
                    .map(|(_, rows)| rows.len())
                    .sum();
            if delayed {
                assert!(
                    rows as usize <= truth,
                    "{endpoint} {begin}..{end}: delayed chunk with {rows} rows, truth {truth}"
                );
            } else {
                assert_eq!(
                    rows as usize, truth,
                    "fetches says {endpoint} {begin}..{end} stored {rows} rows, the truth has {truth}"
                );
            }
        }
        for table in wxcube::sim::truth::tables_of(endpoint) {
            if *table == "articles" {
                continue;
            }
            let has_ref_date = scalar(
                store,
                &format!(
                    "SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = 'ref_date'"
                ),
            )
            .await
                == 1;
            // The per-scene and per-position tables of getarticletotaldetail
            // take their ref_date from article_detail.
            let day = if has_ref_date {
                "x.ref_date".to_string()
            } else {
                "(SELECT a.ref_date FROM article_detail a WHERE a.appid = x.appid
                  AND a.msgid = x.msgid AND a.stat_date = x.stat_date)"
                    .to_string()
            };
            let orphans: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table} x WHERE NOT EXISTS (
                   SELECT 1 FROM fetches f WHERE f.appid = x.appid AND f.endpoint = ?
                   AND f.status = 'ok' AND {day} BETWEEN f.begin_date AND f.end_date)"
            )))
            .bind(endpoint.name())
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(
                orphans, 0,
                "{table}: {orphans} rows lie outside every ok chunk of {endpoint}"
            );
        }
    }
}

/// Every day of `from..=to` (clamped per family) is covered by an ok,
/// non-delayed ledger row of each endpoint.
pub async fn assert_ledger_complete(store: &Store, endpoints: &[Endpoint], from: &str, to: &str) {
    for &endpoint in endpoints {
        let chunks: Vec<(String, String)> = sqlx::query_as(
            "SELECT begin_date, end_date FROM fetches WHERE appid = ? AND endpoint = ?
             AND status = 'ok' AND COALESCE(is_delay, 0) = 0",
        )
        .bind(APPID)
        .bind(endpoint.name())
        .fetch_all(store.pool())
        .await
        .unwrap();
        for day in days(d(from).max(endpoint.first_date()), d(to)) {
            let day = day.to_string();
            assert!(
                chunks.iter().any(|(b, e)| *b <= day && day <= *e),
                "{endpoint} {day}: no ok, final ledger row covers it"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The `runs` and `fetches` tables, and runs cut short

/// The `runs` table: (id, command, started_at, finished_at, chunks_ok, outcome).
pub async fn runs(store: &Store) -> Vec<(i64, String, String, Option<String>, i64, String)> {
    sqlx::query(
        "SELECT id, command, started_at, finished_at, COALESCE(chunks_ok, -1), COALESCE(outcome, '') FROM runs ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
    .collect()
}

/// Every day of a single-day endpoint's `ok` ledger rows.
pub async fn ok_days(store: &Store, endpoint: Endpoint) -> BTreeSet<String> {
    sqlx::query_scalar(
        "SELECT begin_date FROM fetches WHERE endpoint = ? AND status = 'ok' AND begin_date = end_date",
    )
    .bind(endpoint.name())
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Asserts that a run cut short stored whole chunks only (getuserreadhour,
/// one day per chunk): every ok ledger day holds exactly the generator's rows,
/// with its raw response and a matching `rows` count, and no stored row or
/// raw response lacks an ok ledger row. Returns the ok days.
pub async fn assert_no_partial_chunk(store: &Store) -> BTreeSet<String> {
    let endpoint = Endpoint::UserReadHour;
    let ok = ok_days(store, endpoint).await;
    let ledger: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM fetches WHERE endpoint = ?")
        .bind(endpoint.name())
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        ledger as usize,
        ok.len(),
        "a cancelled chunk left a ledger row that is not ok (or a multi-day chunk)"
    );
    let mut stored: BTreeMap<String, Vec<serde_json::Map<String, Value>>> = BTreeMap::new();
    for row in table_rows(store, "user_read_hourly").await {
        stored
            .entry(row["ref_date"].as_str().unwrap().to_string())
            .or_default()
            .push(row);
    }
    let data_days: BTreeSet<String> = stored.keys().cloned().collect();
    assert!(
        data_days.is_subset(&ok),
        "days with data but no ok ledger row: {:?}",
        data_days.difference(&ok).collect::<Vec<_>>()
    );
    let raw: BTreeSet<String> = sqlx::query_scalar(
        "SELECT begin_date FROM raw_responses WHERE endpoint = ? AND begin_date = end_date",
    )
    .bind(endpoint.name())
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(raw, ok, "raw responses and ok ledger rows differ");
    let today = china_today();
    for day in &ok {
        let date = d(day);
        let want = truth(endpoint, date, date, today)
            .remove("user_read_hourly")
            .unwrap_or_default();
        let got = stored.get(day).cloned().unwrap_or_default();
        assert_eq!(
            got.len(),
            want.len(),
            "{day}: {} rows stored, the generator has {}",
            got.len(),
            want.len()
        );
        let key =
            |r: &serde_json::Map<String, Value>| format!("{}|{}", r["hour"], r["user_source"]);
        let by_key: BTreeMap<String, &serde_json::Map<String, Value>> =
            got.iter().map(|r| (key(r), r)).collect();
        for row in &want {
            let have = by_key
                .get(&key(row))
                .unwrap_or_else(|| panic!("{day}: row {} missing", key(row)));
            for (column, value) in row {
                assert!(
                    same_value(&have[column], value),
                    "{day} {}: {column} stored {} expected {value}",
                    key(row),
                    have[column]
                );
            }
        }
        let rows: i64 = sqlx::query_scalar(
            "SELECT rows FROM fetches WHERE endpoint = ? AND begin_date = ? AND end_date = ?",
        )
        .bind(endpoint.name())
        .bind(day)
        .bind(day)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(rows as usize, got.len(), "{day}: ledger rows count");
    }
    ok
}
