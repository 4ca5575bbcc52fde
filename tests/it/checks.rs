//! Checks of a database left by the real binary, shared by the suites that
//! run it as a child process.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sqlx::Row as _;
use wxcube::endpoint::Endpoint;
use wxcube::store::Store;

use crate::helpers::*;

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
