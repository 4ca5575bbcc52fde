//! `wxcube report` through the real binary: the embedded figures equal SQL
//! on the same database, days without data stay gaps, nothing is loaded from
//! the network, real headless Chromium renders it (desktop and phone, no
//! console message, A4 when printed), bad input exits 2, the defaults, the
//! daemon's and the demo's reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use serde_json::Value;
use sqlx::Row as _;
use wxcube::store::Store;

use crate::driver::{Run, TestCommand, secs};
use crate::helpers::*;

/// The period the filled environments hold: the 30 days to yesterday (China).
fn period() -> (NaiveDate, NaiveDate) {
    let to = china_yesterday();
    (to - Days::new(29), to)
}

/// A simulator on the real clock and a database holding the 30 days to
/// yesterday of every dated endpoint (and `faults` while fetching).
async fn filled_env(faults: &str) -> TestEnv {
    let env = TestEnv::live().await;
    env.set_faults(faults);
    let engine = env.engine(&[]).await;
    let (from, to) = period();
    let report = backfill(&engine, &from.to_string(), &to.to_string(), &datacube()).await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    engine.store.close().await;
    env.set_faults("");
    env
}

/// `wxcube report ARGS` in `env`'s directory with its configuration.
async fn report(env: &TestEnv, extra: &[(&str, &str)], args: &[&str]) -> Run {
    let mut vars = env.env();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    TestCommand::new()
        .dir(env.dir.path())
        .vars(&vars)
        .args(["report"])
        .args(args)
        .run()
        .await
}

/// Runs `report --from --to --out` over `period()` and returns the page.
async fn report_page(env: &TestEnv, name: &str) -> (PathBuf, String) {
    let (from, to) = period();
    let out = env.dir.path().join(name);
    let run = report(
        env,
        &[],
        &[
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert_eq!(
        run.stdout.trim(),
        out.display().to_string(),
        "stdout names the file"
    );
    let html = std::fs::read_to_string(&out).unwrap();
    (out, html)
}

/// The JSON of `<script type="application/json" id="wxcube-report-data">`.
pub fn embedded(html: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"wxcube-report-data\">";
    let start = html.find(open).expect("the embedded data") + open.len();
    let len = html[start..].find("</script>").expect("its end");
    let text = &html[start..start + len];
    assert!(!text.contains("</"), "`</` is escaped inside the JSON");
    serde_json::from_str(text).expect("the embedded data is JSON")
}

fn account(json: &Value) -> &Value {
    let accounts = json["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "one configured account");
    assert_eq!(accounts[0]["appid"], APPID);
    &accounts[0]
}

async fn open(env: &TestEnv) -> Store {
    Store::open(&env.db_path().display().to_string())
        .await
        .unwrap()
}

async fn exec(store: &Store, sql: &'static str, day: NaiveDate) {
    sqlx::query(sql)
        .bind(APPID)
        .bind(day.to_string())
        .execute(store.pool())
        .await
        .unwrap();
}

fn int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

/// The followers of `v_followers`, by date.
async fn sql_followers(store: &Store, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    sqlx::query(
        "SELECT ref_date, new_user, cancel_user, net_user, cumulate_user FROM v_followers
         WHERE appid = ? AND ref_date BETWEEN ? AND ? ORDER BY ref_date",
    )
    .bind(APPID)
    .bind(from.to_string())
    .bind(to.to_string())
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        serde_json::json!({
            "date": r.get::<String, _>(0),
            "new_user": int(r.get(1)),
            "cancel_user": int(r.get(2)),
            "net_user": int(r.get(3)),
            "cumulate_user": int(r.get(4)),
        })
    })
    .collect()
}

/// SPEC section 11's readers per day, asked day by day: biz_daily where the
/// day has a figure, else user_read_daily's all-channels row, else nothing.
async fn sql_reads(store: &Store, from: NaiveDate, to: NaiveDate) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for day in wxcube::clock::days(from, to) {
        let day = day.to_string();
        let biz: Option<Option<i64>> =
            sqlx::query_scalar("SELECT read_user FROM biz_daily WHERE appid = ? AND ref_date = ?")
                .bind(APPID)
                .bind(&day)
                .fetch_optional(store.pool())
                .await
                .unwrap();
        let legacy: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT int_page_read_user FROM user_read_daily
             WHERE appid = ? AND ref_date = ? AND user_source = 99999999",
        )
        .bind(APPID)
        .bind(&day)
        .fetch_optional(store.pool())
        .await
        .unwrap();
        if let Some(v) = biz.flatten().or(legacy.flatten()) {
            out.insert(day, v);
        }
    }
    out
}

/// The ten articles published in the period with the most readers by their
/// latest cumulative figures, computed here in Rust from the raw rows.
async fn sql_top_articles(store: &Store, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    // (stat_date, publish_date, readers, sharers) of one article.
    type Figures = (String, String, Option<i64>, Option<i64>);
    // msgid -> its figures with the latest stat_date.
    async fn latest(store: &Store, sql: &'static str) -> BTreeMap<String, Figures> {
        let mut out: BTreeMap<String, Figures> = BTreeMap::new();
        for r in sqlx::query(sql)
            .bind(APPID)
            .fetch_all(store.pool())
            .await
            .unwrap()
        {
            let row = (r.get(1), r.get(2), r.get(3), r.get(4));
            let msgid: String = r.get(0);
            if out.get(&msgid).is_none_or(|old| old.0 < row.0) {
                out.insert(msgid, row);
            }
        }
        out
    }
    let detail = latest(
        store,
        "SELECT msgid, stat_date, ref_date, read_user, share_user FROM article_detail WHERE appid = ?",
    )
    .await;
    let total = latest(
        store,
        "SELECT msgid, stat_date, ref_date, int_page_read_user, share_user FROM article_total WHERE appid = ?",
    )
    .await;
    let mut all = detail.clone();
    for (msgid, row) in total {
        all.entry(msgid).or_insert(row);
    }
    let (from, to) = (from.to_string(), to.to_string());
    let mut chosen: Vec<(String, Figures)> = all
        .into_iter()
        .filter(|(_, r)| r.1 >= from && r.1 <= to)
        .collect();
    chosen.sort_by(|a, b| {
        let key = |x: &(String, Figures)| (x.1.2.is_none(), std::cmp::Reverse(x.1.2), x.0.clone());
        key(a).cmp(&key(b))
    });
    let mut out = Vec::new();
    for (msgid, (_, publish_date, readers, sharers)) in chosen.into_iter().take(10) {
        let title: Option<String> =
            sqlx::query_scalar("SELECT title FROM articles WHERE appid = ? AND msgid = ?")
                .bind(APPID)
                .bind(&msgid)
                .fetch_one(store.pool())
                .await
                .unwrap();
        out.push(serde_json::json!({
            "msgid": msgid,
            "title": title,
            "publish_date": publish_date,
            "read_user": int(readers),
            "share_user": int(sharers),
        }));
    }
    out
}

/// The fields of `entry` that `like` has.
fn project(entry: &Value, like: &Value) -> Value {
    let fields = like.as_object().unwrap();
    Value::Object(
        fields
            .keys()
            .map(|k| (k.clone(), entry[k].clone()))
            .collect(),
    )
}

#[tokio::test]
async fn every_figure_of_the_embedded_json_equals_sql_on_the_same_database() {
    let env = filled_env("").await;
    let (from, to) = period();
    let store = open(&env).await;
    // Exercise each rule: a day whose current-family figure is gone (reads
    // fall back to getuserread), a day with neither (absent), a day without a
    // total of followers (null), a day without any follower row (absent).
    let (legacy_day, no_reads, no_total, no_followers) = (
        from + Days::new(3),
        from + Days::new(10),
        from + Days::new(15),
        from + Days::new(20),
    );
    exec(
        &store,
        "DELETE FROM biz_daily WHERE appid = ? AND ref_date = ?",
        legacy_day,
    )
    .await;
    exec(
        &store,
        "DELETE FROM biz_daily WHERE appid = ? AND ref_date = ?",
        no_reads,
    )
    .await;
    exec(
        &store,
        "DELETE FROM user_read_daily WHERE appid = ? AND ref_date = ?",
        no_reads,
    )
    .await;
    exec(
        &store,
        "DELETE FROM user_cumulate WHERE appid = ? AND ref_date = ?",
        no_total,
    )
    .await;
    for sql in [
        "DELETE FROM user_cumulate WHERE appid = ? AND ref_date = ?",
        "DELETE FROM user_daily WHERE appid = ? AND ref_date = ?",
    ] {
        exec(&store, sql, no_followers).await;
    }
    let (_, html) = report_page(&env, "figures.html").await;
    let json = embedded(&html);
    let a = account(&json);
    assert_eq!(a["from"], from.to_string());
    assert_eq!(a["to"], to.to_string());

    // Followers: exactly v_followers, day by day.
    let want = sql_followers(&store, from, to).await;
    assert_eq!(want.len(), 29, "one day has no follower row at all");
    let got: Vec<Value> = a["followers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&want)
        .map(|(g, w)| project(g, w))
        .collect();
    assert_eq!(a["followers"].as_array().unwrap().len(), want.len());
    assert_eq!(got, want);
    let total_gap = a["followers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["date"] == no_total.to_string())
        .unwrap();
    assert!(total_gap["cumulate_user"].is_null(), "{total_gap}");

    // Reads: biz_daily, else user_read_daily's all channels, else absent.
    let want = sql_reads(&store, from, to).await;
    let got: BTreeMap<String, i64> = a["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["date"].as_str().unwrap().to_string(),
                r["read_user"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 29);
    assert!(!got.contains_key(&no_reads.to_string()));
    let legacy = a["reads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["date"] == legacy_day.to_string())
        .unwrap();
    assert_eq!(legacy["source"], "getuserread", "{legacy}");

    // Top articles: the same ten, in the same order, with the same figures.
    let want = sql_top_articles(&store, from, to).await;
    assert_eq!(
        want.len(),
        10,
        "the simulator publishes more than ten articles a month"
    );
    let got: Vec<Value> = a["top_articles"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&want)
        .map(|(g, w)| project(g, w))
        .collect();
    assert_eq!(a["top_articles"].as_array().unwrap().len(), 10);
    assert_eq!(got, want);
    // Each is linked to its URL in the page.
    for article in a["top_articles"].as_array().unwrap() {
        let url = article["url"].as_str().expect("the simulator gives URLs");
        let href = format!("<a href=\"{}\">", url.replace('&', "&amp;"));
        assert!(html.contains(&href), "no link {href}");
    }
    // No secret reaches the page.
    let mut secrets = env.sim.stats.issued_tokens();
    secrets.push(SECRET.to_string());
    assert_no_secrets(&html, &secrets, "the report");
}

/// The `<figure>` of the chart `id` of the test account.
fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let open = format!("<figure class=\"chart\" id=\"{id}-{APPID}\">");
    let start = html.find(&open).unwrap_or_else(|| panic!("no chart {id}"));
    let end = html[start..].find("</figure>").unwrap();
    &html[start..start + end]
}

/// The wide (desktop) drawing of a figure.
fn wide(figure: &str) -> &str {
    let start = figure.find("<div class=\"wide\">").unwrap();
    let end = figure[start..].find("</div>").unwrap();
    &figure[start..start + end]
}

#[tokio::test]
async fn days_without_data_stay_gaps_in_the_json_and_in_the_charts() {
    // The simulator leaves yesterday out of the follower endpoints the
    // first time it is asked, as WeChat does while still computing.
    let env = filled_env("missing_yesterday=1").await;
    let (from, to) = period();
    let (_, before) = report_page(&env, "before.html").await;
    let gap = from + Days::new(12);
    let store = open(&env).await;
    for sql in [
        "DELETE FROM biz_daily WHERE appid = ? AND ref_date = ?",
        "DELETE FROM biz_read_sources WHERE appid = ? AND ref_date = ?",
        "DELETE FROM user_read_daily WHERE appid = ? AND ref_date = ?",
    ] {
        exec(&store, sql, gap).await;
    }
    let (_, after) = report_page(&env, "after.html").await;
    let json = embedded(&after);
    let a = account(&json);

    let dates = |key: &str| -> Vec<String> {
        a[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["date"].as_str().unwrap().to_string())
            .collect()
    };
    // Yesterday's followers never came: absent, not 0.
    assert!(!dates("followers").contains(&to.to_string()));
    assert_eq!(dates("followers").len(), 29);
    // The deleted day is absent from the readers; no day reads 0.
    assert!(!dates("reads").contains(&gap.to_string()));
    assert_eq!(dates("reads").len(), 29);
    for r in a["reads"].as_array().unwrap() {
        assert!(r["read_user"].as_i64().unwrap() > 0, "{r}");
    }
    assert!(
        a["reads_by_channel"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["date"] != gap.to_string()),
        "no channel figure is made up for the gap"
    );
    let missing_days: Vec<Value> = a["health"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["days_missing"].as_u64().unwrap() > 0)
        .cloned()
        .collect();
    assert!(
        missing_days.is_empty(),
        "the ledger has every day: {missing_days:?}"
    );

    // The readers' line breaks at the gap (one more piece of line), the day
    // is shaded, and nothing of the sort was drawn before.
    let lines = |html: &str| wide(figure(html, "reads")).matches("<polyline").count();
    assert_eq!(lines(&after), lines(&before) + 1);
    let band = "fill=\"#E4E4E4\"";
    assert!(!wide(figure(&before, "reads")).contains(band));
    assert_eq!(wide(figure(&after, "reads")).matches(band).count(), 1);
    // Yesterday's follower gap is shaded in the followers' chart.
    assert_eq!(
        wide(figure(&after, "followers-daily"))
            .matches(band)
            .count(),
        1
    );
}

#[tokio::test]
async fn the_report_references_nothing_on_the_network() {
    let env = filled_env("").await;
    let (_, html) = report_page(&env, "offline.html").await;
    let lower = html.to_ascii_lowercase();
    for forbidden in [
        "@import", "url(", "<link", "<img", "<iframe", "<object", "<embed", " src=",
    ] {
        assert!(
            !lower.contains(forbidden),
            "the report contains {forbidden:?}"
        );
    }
    // The one script element is the data, which browsers do not run.
    assert_eq!(lower.matches("<script").count(), 1);
    assert!(lower.contains("<script type=\"application/json\" id=\"wxcube-report-data\">"));
    // Every URL is the target of an article link, nothing else.
    let mut links = 0;
    for (at, _) in lower.match_indices("http") {
        let rest = &lower[at..];
        if !(rest.starts_with("http://") || rest.starts_with("https://")) {
            continue;
        }
        let tag_start = lower[..at].rfind('<').unwrap();
        let before = &lower[tag_start..at];
        let in_json = lower[..at].rfind("<script") > lower[..at].rfind("</script");
        assert!(
            in_json || (before.starts_with("<a ") && before.ends_with("href=\"")),
            "a URL outside an article link: {}",
            &html[tag_start..(at + 60).min(html.len())]
        );
        links += usize::from(!in_json);
    }
    assert!(links >= 10, "the top articles are linked ({links} links)");
    // The page forbids every load should one ever slip in.
    assert!(html.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
    ));
    // Readable on a phone, printable on A4.
    assert!(html.contains("name=\"viewport\""));
    assert!(html.contains("@media (max-width: 600px)"));
    assert!(html.contains("@page { size: A4;"));
    assert!(html.contains("@media print"));
}

// ---------------------------------------------------------------------------
// The browser.

/// Debian's chromium, or a failure that says how to install it: the browser
/// test must not pass without a browser.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "chromium is not installed, so the report cannot be checked in a browser: \
         apt-get install -y chromium fonts-noto-cjk (.ci/run does this)"
    );
}

/// Chinese fonts, or a failure: without them Chinese renders as boxes.
fn assert_cjk_fonts() {
    let out = Command::new("fc-list")
        .args([":lang=zh", "family"])
        .output()
        .expect("fc-list (fontconfig) is missing: apt-get install -y fonts-noto-cjk");
    assert!(
        !String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "no Chinese font is installed: apt-get install -y fonts-noto-cjk (.ci/run does this)"
    );
}

/// Runs headless chromium on `page` with `args`, in a fresh profile, with
/// no network beyond the file (every host resolves to nothing), and returns
/// its stderr. Killed after 90 s.
fn run_chromium(page: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let stderr_path = profile.path().join("stderr.log");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            // Console messages go to stderr as `INFO:CONSOLE` lines.
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("cannot start chromium");
    let due = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > due {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    stderr
}

/// The console messages chromium logged: the report runs no script, so any
/// message is the browser's own complaint (a blocked load, a CSP violation,
/// an error).
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// A screenshot of `page` at `width` CSS pixels: (width, height, share of
/// pixels that are not white).
fn screenshot(page: &Path, width: u32, out: &Path) -> (u32, u32, f64) {
    let stderr = run_chromium(
        page,
        &[
            format!("--window-size={width},2400"),
            format!("--screenshot={}", out.display()),
        ],
    );
    assert!(console_lines(&stderr).is_empty(), "{stderr}");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(out).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels = buf[..info.buffer_size()].chunks(channels);
    let total = (info.width * info.height) as f64;
    let coloured = pixels.filter(|p| p[..3].iter().any(|&c| c < 235)).count() as f64;
    (info.width, info.height, coloured / total)
}

#[tokio::test]
async fn chromium_renders_the_report_at_desktop_and_phone_widths_with_no_console_message() {
    // First, so that a machine without them fails at once, saying what to install.
    chromium();
    assert_cjk_fonts();
    let env = filled_env("").await;
    let (page, _) = report_page(&env, "browser.html").await;
    let dir = env.dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        for (width, name) in [(1280, "desktop.png"), (390, "phone.png")] {
            let (w, h, share) = screenshot(&page, width, &dir.join(name));
            assert_eq!((w, h), (width, 2400), "{name}");
            // Headings, charts and tables: far from a blank page.
            assert!(
                share > 0.03,
                "{name}: only {:.2} % of the pixels are not white",
                share * 100.0
            );
        }
        // Printed, it is A4 pages (595 x 842 pt), from `@page { size: A4 }`.
        let pdf = dir.join("print.pdf");
        let stderr = run_chromium(
            &page,
            &[
                "--no-pdf-header-footer".to_string(),
                format!("--print-to-pdf={}", pdf.display()),
            ],
        );
        assert!(console_lines(&stderr).is_empty(), "{stderr}");
        let bytes = std::fs::read(&pdf).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let boxes: Vec<&str> = text
            .match_indices("/MediaBox [")
            .map(|(at, _)| {
                let rest = &text[at + 11..];
                &rest[..rest.find(']').unwrap()]
            })
            .collect();
        assert!(boxes.len() >= 2, "several pages: {boxes:?}");
        for b in &boxes {
            let n: Vec<f64> = b.split_whitespace().map(|v| v.parse().unwrap()).collect();
            assert!(
                (n[2] - 595.0).abs() < 1.0 && (n[3] - 842.0).abs() < 1.0,
                "not A4: {b}"
            );
        }
        // Loading the whole page (not only what a screenshot shows) logs nothing.
        let stderr = run_chromium(&page, &["--dump-dom".to_string()]);
        assert!(console_lines(&stderr).is_empty(), "{stderr}");

        // The detector works: a page that loads from the network (blocked by
        // the same policy) and logs an error is caught.
        let bad = dir.join("bad.html");
        std::fs::write(
            &bad,
            "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" \
             content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"></head>\
             <body><img src=\"https://example.com/x.png\"><p>x</p></body></html>",
        )
        .unwrap();
        let stderr = run_chromium(&bad, &["--dump-dom".to_string()]);
        assert!(
            console_lines(&stderr)
                .iter()
                .any(|l| l.contains("example.com")),
            "a blocked load must show on the console:\n{stderr}"
        );
        let blank = dir.join("blank.html");
        std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
        let (_, _, share) = screenshot(&blank, 390, &dir.join("blank.png"));
        assert!(share < 0.001, "a blank page counts as blank ({share})");
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------
// The command line.

#[tokio::test]
async fn bad_input_exits_2_with_a_clear_message_and_writes_nothing() {
    let env = TestEnv::live().await;
    let dir = env.dir.path();
    std::fs::create_dir(dir.join("a-directory")).unwrap();
    let missing_dir = dir.join("no/such/dir/report.html");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--account".into(), "wxnotconfigured".into()],
            "unknown account \"wxnotconfigured\"",
        ),
        (
            vec![
                "--from".into(),
                "2026-03-10".into(),
                "--to".into(),
                "2026-03-01".into(),
            ],
            "--from 2026-03-10 is after --to 2026-03-01",
        ),
        (
            vec!["--from".into(), "2026-02-30".into()],
            "not a date of the form YYYY-MM-DD",
        ),
        (
            vec!["--to".into(), "yesterday".into()],
            "not a date of the form YYYY-MM-DD",
        ),
        (
            vec!["--out".into(), missing_dir.display().to_string()],
            "does not exist",
        ),
        (
            vec![
                "--out".into(),
                dir.join("a-directory").display().to_string(),
            ],
            "is a directory",
        ),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = report(&env, &[], &args).await;
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.text());
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}");
    }
    // Nothing was written, and no temporary file was left.
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("report"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A read-only directory (root ignores permissions, so only when not root).
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = ro.join("r.html").display().to_string();
        let run = report(&env, &[], &["--out", &out]).await;
        assert_eq!(run.code, Some(2), "{}", run.text());
    }
}

#[tokio::test]
async fn by_default_the_last_30_days_to_yesterday_go_to_wxcube_report_html() {
    let env = filled_env("").await;
    let run = report(&env, &[], &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let path = env.dir.path().join("wxcube-report.html");
    assert_eq!(run.stdout.trim(), "wxcube-report.html");
    let json = embedded(&std::fs::read_to_string(&path).unwrap());
    let (from, to) = period();
    assert_eq!(json["from"], from.to_string());
    assert_eq!(json["to"], to.to_string());
    assert_eq!(account(&json)["reads"].as_array().unwrap().len(), 30);

    // `report_path` is the default of --out; --out still wins.
    let configured = env.dir.path().join("configured.html");
    let var = [("WXCUBE_REPORT_PATH", configured.to_str().unwrap())];
    let run = report(&env, &var, &["--to", &to.to_string()]).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(configured.is_file());
    let explicit = env.dir.path().join("explicit.html");
    let run = report(&env, &var, &["--out", explicit.to_str().unwrap()]).await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    assert!(explicit.is_file());
}

#[tokio::test]
async fn an_empty_period_gives_a_report_that_says_so() {
    let env = filled_env("").await;
    let run = report(
        &env,
        &[],
        &[
            "--from",
            "2020-01-01",
            "--to",
            "2020-01-31",
            "--out",
            "empty.html",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let html = std::fs::read_to_string(env.dir.path().join("empty.html")).unwrap();
    assert!(
        html.contains("id=\"empty-period\""),
        "the page says the period is empty"
    );
    let json = embedded(&html);
    let a = account(&json);
    for key in ["followers", "reads", "top_articles", "reads_by_channel"] {
        assert_eq!(a[key].as_array().unwrap().len(), 0, "{key}");
    }
    // Every day of the period is missing for the follower endpoints.
    let summary = a["health"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == "getusersummary")
        .unwrap()
        .clone();
    assert_eq!(summary["days_missing"], 31, "{summary}");
}

#[tokio::test]
async fn the_report_shows_failures_with_errcodes_and_offline_endpoints() {
    let env = filled_env("").await;
    env.set_faults("offline_legacy=1");
    let engine = env.engine(&[]).await;
    let to = china_yesterday().to_string();
    backfill(&engine, &to, &to, &[wxcube::endpoint::Endpoint::UserRead]).await;
    engine.store.close().await;
    let (_, html) = report_page(&env, "health.html").await;
    let json = embedded(&html);
    let health = &account(&json)["health"];
    let read = health["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == "getuserread")
        .unwrap();
    assert_eq!(read["offline"], true, "{read}");
    let failure = &health["recent_failures"][0];
    assert_eq!(failure["endpoint"], "getuserread");
    assert_eq!(failure["errcode"], 47009);
    assert!(html.contains("OFFLINE (47009)"));
    // The run looked the endpoint's quota up first (SPEC section 10).
    let quota = health["quota_last_seen"].as_array().unwrap();
    let seen = quota
        .iter()
        .find(|q| q["endpoint"] == "getuserread")
        .unwrap_or_else(|| panic!("no quota seen for getuserread: {quota:?}"));
    assert!(seen["daily_limit"].as_i64().unwrap() > 0, "{seen}");
    assert!(html.contains("id=\"quota\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_rewrites_the_report_after_a_sync() {
    let env = TestEnv::live().await;
    let out = env.dir.path().join("daemon-report.html");
    let mut vars = env.env();
    for (k, v) in [
        ("WXCUBE_SCHEDULE", "0 0 0 1 1 *"),
        ("WXCUBE_CATCH_UP_DAYS", "5"),
        ("WXCUBE_REFRESH_DAYS", "1"),
        ("WXCUBE_ENDPOINTS", "getbizsummary,getusercumulate"),
        ("WXCUBE_REPORT_PATH", out.to_str().unwrap()),
    ] {
        vars.push((k.to_string(), v.to_string()));
    }
    let mut daemon = TestCommand::new()
        .dir(env.dir.path())
        .vars(&vars)
        .args(["daemon"])
        .spawn();
    let done = daemon.wait_for(0, "run finished", secs(30)).await;
    daemon.wait_for(done, "report written", secs(30)).await;
    daemon.stop_with(libc::SIGTERM).await;
    let json = embedded(&std::fs::read_to_string(&out).unwrap());
    let a = account(&json);
    assert_eq!(a["reads"].as_array().unwrap().len(), 5, "the synced days");
    assert_eq!(a["reads"][0]["source"], "getbizsummary");
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "the temporary file was renamed: {left:?}");
}

#[tokio::test]
async fn the_demo_writes_its_report_beside_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let run = TestCommand::new()
        .dir(dir.path())
        .args(["demo", "--days", "3", "--database", db.to_str().unwrap()])
        .run()
        .await;
    assert_eq!(run.code, Some(0), "{}", run.text());
    let path = dir.path().join("wxcube-report.html");
    assert!(
        run.stdout.contains(&path.display().to_string()),
        "{}",
        run.stdout
    );
    let json = embedded(&std::fs::read_to_string(&path).unwrap());
    let a = &json["accounts"][0];
    assert_eq!(a["appid"], "wxdemo0000000001");
    assert_eq!(a["reads"].as_array().unwrap().len(), 3);
}
