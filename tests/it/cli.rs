//! The real binary: exit codes, messages on stderr, stdout kept for output,
//! the lock, the demo, and no secret anywhere.

use std::io::Write;

use wxcube::lock::DbLock;

use crate::helpers::*;

fn write_config(dir: &std::path::Path, body: &str) -> String {
    let path = dir.join("wxcube.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    path.display().to_string()
}

#[test]
fn bad_configurations_exit_2_naming_the_key_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str); 5] = [
        ("refresh_dayz = 3\n", "refresh_dayz"),
        ("schedule = \"every morning\"\n", "schedule"),
        ("timezone = \"Mars/Olympus\"\n", "timezone"),
        ("concurrency = \"four\"\n", "concurrency"),
        (
            "[[accounts]]\nappid = \"wx1\"\nsecret_file = \"/nonexistent/secret\"\n",
            "secret_file",
        ),
    ];
    for (body, key) in cases {
        let config = write_config(dir.path(), body);
        let out = run_wxcube(&[], dir.path(), &["--config", &config, "sync"]);
        assert_eq!(out.status.code(), Some(2), "{body}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(key),
            "{body}: {}",
            text(&out)
        );
    }
    // No account at all.
    let config = write_config(dir.path(), "database = \"x.db\"\n");
    let out = run_wxcube(&[], dir.path(), &["--config", &config, "sync"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("accounts"),
        "{}",
        text(&out)
    );
    // A named file that does not exist.
    let out = run_wxcube(
        &[],
        dir.path(),
        &["--config", "/nonexistent/wxcube.toml", "sync"],
    );
    assert_eq!(out.status.code(), Some(2));
    // An unknown endpoint in the environment.
    let env = vec![(
        "WXCUBE_ENDPOINTS".to_string(),
        "getuserread,getnothing".to_string(),
    )];
    let out = run_wxcube(&env, dir.path(), &["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("WXCUBE_ENDPOINTS"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn bad_input_exits_2_and_fetches_nothing() {
    let env = TestEnv::live().await;
    let dir = env.dir.path().to_path_buf();
    let e = env.env();
    let cases: [&[&str]; 6] = [
        &["backfill", "--from", "2026-13-01", "--to", "2026-01-02"],
        &["backfill", "--from", "2026-01-05", "--to", "2026-01-02"],
        &["backfill", "--from", "2010-01-01", "--to", "2014-11-30"],
        &[
            "backfill",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-02",
            "--endpoint",
            "getfoo",
        ],
        &["sync", "--account", "wxnotconfigured"],
        &["frobnicate"],
    ];
    for args in cases {
        let out = tokio::task::spawn_blocking({
            let e = e.clone();
            let dir = dir.clone();
            move || run_wxcube(&e, &dir, args)
        })
        .await
        .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(!out.stderr.is_empty());
    }
    assert_eq!(env.sim.stats.datacube_requests(), 0);
}

#[tokio::test]
async fn a_held_lock_exits_3_naming_the_holder() {
    let env = TestEnv::live().await;
    let lock_path = wxcube::store::lock_path(&env.db_path().display().to_string())
        .unwrap()
        .expect("a SQLite database has a lock file");
    let _held = DbLock::try_acquire(&lock_path, "backfill").unwrap();
    let (e, dir) = (env.env(), env.dir.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || run_wxcube(&e, &dir, &["sync"]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())) && stderr.contains("backfill"),
        "{stderr}"
    );
    assert_eq!(env.sim.stats.datacube_requests(), 0);
}

#[tokio::test]
async fn backfill_sync_and_status_through_the_binary_leak_no_secret() {
    let env = TestEnv::live().await;
    env.set_faults("busy=0.1,http5xx=0.05,malformed=0.05,token_expire=0.05,drop=0.02,seed=3");
    let (e, dir) = (env.env(), env.dir.path().to_path_buf());
    let mut everything = String::new();
    for args in [
        vec![
            "-vv",
            "backfill",
            "--from",
            "2026-10-01",
            "--to",
            "2026-11-30",
        ],
        vec!["-v", "--log-format", "json", "sync"],
        vec!["status"],
        vec!["status", "--json"],
    ] {
        let (e, dir) = (e.clone(), dir.clone());
        let out = tokio::task::spawn_blocking(move || run_wxcube(&e, &dir, &args))
            .await
            .unwrap();
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "{}",
            text(&out)
        );
        everything.push_str(&text(&out));
    }
    assert!(everything.contains("stored"), "no chunk was logged");
    let settings = env.settings(&[]);
    let store = wxcube::store::Store::open(&settings.database)
        .await
        .unwrap();
    everything.push_str(&all_database_text(&store).await);
    let mut secrets = env.sim.stats.issued_tokens();
    assert!(
        secrets.len() >= 2,
        "token expiry was expected to issue several tokens"
    );
    secrets.push(SECRET.to_string());
    assert_no_secrets(&everything, &secrets, "output, logs or database");
}

#[tokio::test]
async fn status_json_goes_to_stdout_and_parses() {
    let env = TestEnv::live().await;
    let (e, dir) = (env.env(), env.dir.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        let first = run_wxcube(
            &e,
            &dir,
            &[
                "backfill",
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-03",
                "--endpoint",
                "getusershare",
            ],
        );
        assert_eq!(first.status.code(), Some(0), "{}", text(&first));
        run_wxcube(&e, &dir, &["-q", "status", "--json"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let statuses: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let share = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["endpoint"] == "getusershare")
        .unwrap();
    assert_eq!(share["first_day"], "2026-11-01");
    assert!(share["last_success"].is_string());
}

#[tokio::test]
async fn demo_fills_both_families_and_the_readme_queries_return_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let db_arg = db.display().to_string();
    let out = run_wxcube(
        &[],
        dir.path(),
        &["demo", "--days", "10", "--database", &db_arg],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Rows per table"), "{stdout}");
    assert!(stdout.contains("Example query"), "{stdout}");
    for table in [
        "article_daily",
        "user_read_hourly",
        "biz_daily",
        "article_detail",
        "user_daily",
        "user_cumulate",
        "published_articles",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(table))
            .unwrap();
        let n: i64 = line.split_whitespace().last().unwrap().parse().unwrap();
        assert!(n > 0, "{table} is empty in the demo");
    }
    // The README's example queries run on the demo database and return rows.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // Every ```sql block of the README.
    let blocks: Vec<&str> = readme
        .split("```sql")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 2, "the README's example queries");
    let queries: Vec<String> = blocks
        .iter()
        .flat_map(|block| block.split(';'))
        .map(|q| {
            q.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|q| !q.trim().is_empty())
        .collect();
    assert!(queries.len() >= 6);
    let store = wxcube::store::Store::open(&db_arg).await.unwrap();
    for query in &queries {
        let rows = sqlx::query(sqlx::AssertSqlSafe(query.clone()))
            .fetch_all(store.pool())
            .await
            .unwrap();
        // The query that lists failures finds none in a clean demo.
        if !query.contains("status = 'error'") {
            assert!(!rows.is_empty(), "README query returned no rows: {query}");
        }
    }
}
