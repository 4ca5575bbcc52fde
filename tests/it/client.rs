//! The datacube client against the simulator: each errcode class behaves as
//! docs/wechat-api.md (errcodes) says, proven by the simulator's request counts.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use wxcube::clock::{CHINA, Clock};
use wxcube::config::TokenMode;
use wxcube::endpoint::Endpoint;
use wxcube::sim::SimOptions;
use wxcube::wechat::{DatacubeClient, FetchErrorKind, RetryPolicy, TokenManager};

use crate::helpers::*;

fn client(
    env: &TestEnv,
    mode: TokenMode,
    max_attempts: u32,
    timeout: Duration,
    clock: Clock,
) -> DatacubeClient {
    let http = reqwest::Client::builder().timeout(timeout).build().unwrap();
    let tokens = Arc::new(TokenManager::new(
        http.clone(),
        &env.sim.base_url(),
        APPID,
        SecretString::from(SECRET),
        mode,
    ));
    DatacubeClient::new(
        http,
        &env.sim.base_url(),
        APPID,
        tokens,
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(5),
            minute_quota_wait: Some(Duration::ZERO),
        },
        clock,
        CHINA,
    )
}

fn default_client(env: &TestEnv) -> DatacubeClient {
    client(
        env,
        TokenMode::Stable,
        3,
        Duration::from_secs(2),
        env.clock.clone(),
    )
}

async fn fetch_one(
    client: &DatacubeClient,
    endpoint: Endpoint,
    day: &str,
) -> Result<wxcube::wechat::FetchOk, wxcube::wechat::FetchError> {
    client
        .fetch(endpoint, d(day), d(day), &CancellationToken::new())
        .await
}

#[tokio::test]
async fn a_clean_call_succeeds_with_one_request() {
    let env = TestEnv::new().await;
    let ok = fetch_one(&default_client(&env), Endpoint::UserRead, "2026-03-10")
        .await
        .unwrap();
    assert_eq!(ok.attempts, 1);
    assert!(ok.json["list"].is_array());
    assert_eq!(env.sim.stats.datacube_requests(), 1);
    assert_eq!(env.sim.stats.token_requests(), 1);
}

#[tokio::test]
async fn transient_faults_are_retried_exactly_max_attempts_times() {
    for fault in [
        "busy=1",
        "http5xx=1",
        "malformed=1",
        "drop=1",
        "quota_minute=1",
    ] {
        let env = TestEnv::new().await;
        env.set_faults(fault);
        let err = fetch_one(
            &default_client(&env),
            Endpoint::ArticleSummary,
            "2026-03-10",
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err.kind,
                FetchErrorKind::Transient | FetchErrorKind::MinuteQuota
            ),
            "{fault}: {err}"
        );
        assert_eq!(err.attempts, 3, "{fault}");
        assert_eq!(
            env.sim.stats.datacube_requests(),
            3,
            "{fault}: retries must be bounded"
        );
    }
}

#[tokio::test]
async fn answers_slower_than_the_timeout_are_retried_then_fail() {
    let env = TestEnv::new().await;
    env.set_faults("slow=1,slow_ms=1500");
    let c = client(
        &env,
        TokenMode::Stable,
        2,
        Duration::from_millis(300),
        env.clock.clone(),
    );
    let err = fetch_one(&c, Endpoint::UserShare, "2026-03-10")
        .await
        .unwrap_err();
    assert_eq!(err.kind, FetchErrorKind::Transient);
    assert!(err.message.contains("timed out"), "{}", err.message);
    assert_eq!(env.sim.stats.datacube_requests(), 2);
}

#[tokio::test]
async fn transient_faults_at_a_realistic_rate_are_absorbed() {
    let env = TestEnv::new().await;
    env.set_faults("busy=0.2,http5xx=0.1,malformed=0.1,seed=7");
    let c = client(
        &env,
        TokenMode::Stable,
        8,
        Duration::from_secs(2),
        env.clock.clone(),
    );
    for day in [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
    ] {
        fetch_one(&c, Endpoint::UserReadHour, day).await.unwrap();
    }
    assert!(env.sim.stats.datacube_requests() >= 5);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_the_request_retried_once() {
    let env = TestEnv::new().await;
    let c = default_client(&env);
    fetch_one(&c, Endpoint::UserRead, "2026-03-10")
        .await
        .unwrap();
    env.sim.expire_all_tokens();
    env.sim.stats.reset();
    fetch_one(&c, Endpoint::UserRead, "2026-03-11")
        .await
        .unwrap();
    assert_eq!(
        env.sim.stats.datacube_requests(),
        2,
        "one rejected, one retried"
    );
    assert_eq!(env.sim.stats.token_requests(), 1);
}

#[tokio::test]
async fn a_token_that_keeps_failing_is_retried_only_once() {
    let env = TestEnv::new().await;
    env.set_faults("token_expire=1");
    let err = fetch_one(&default_client(&env), Endpoint::UserRead, "2026-03-10")
        .await
        .unwrap_err();
    assert_eq!(err.kind, FetchErrorKind::Token, "{err}");
    assert_eq!(
        env.sim.stats.datacube_requests(),
        2,
        "retry once means once"
    );
    assert!(env.sim.stats.token_requests() <= 3, "no token refresh loop");
}

#[tokio::test]
async fn classic_mode_recovers_from_a_token_rotated_by_another_client() {
    let env = TestEnv::with(SimOptions {
        clock: Clock::fixed(fixed_now()),
        classic_grace_secs: 0,
        ..SimOptions::default()
    })
    .await;
    let c = client(
        &env,
        TokenMode::Classic,
        3,
        Duration::from_secs(2),
        env.clock.clone(),
    );
    fetch_one(&c, Endpoint::UserRead, "2026-03-10")
        .await
        .unwrap();
    // Another service of the same appid asks for a classic token: ours is now invalid.
    let url = format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}",
        env.sim.base_url()
    );
    let other: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert!(other["access_token"].is_string());
    env.sim.stats.reset();
    fetch_one(&c, Endpoint::UserRead, "2026-03-11")
        .await
        .unwrap();
    assert_eq!(env.sim.stats.datacube_requests(), 2);
}

#[tokio::test]
async fn concurrent_requests_share_one_token_refresh() {
    let env = TestEnv::new().await;
    let c = Arc::new(default_client(&env));
    let mut tasks = Vec::new();
    for day in 1..=8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            fetch_one(&c, Endpoint::ArticleSummary, &format!("2026-03-{day:02}"))
                .await
                .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(env.sim.stats.token_requests(), 1, "no stampede");
}

#[tokio::test]
async fn permanent_errors_are_not_retried_and_name_account_endpoint_and_dates() {
    let env = TestEnv::new().await;
    // Our clock runs a day ahead of WeChat's, so WeChat answers 61501.
    let ahead = Clock::fixed(fixed_now() + chrono::Duration::days(1));
    let c = client(&env, TokenMode::Stable, 5, Duration::from_secs(2), ahead);
    let err = fetch_one(&c, Endpoint::UserRead, "2026-03-15")
        .await
        .unwrap_err();
    assert_eq!(err.kind, FetchErrorKind::Permanent);
    assert_eq!(err.errcode, Some(61501));
    assert_eq!(env.sim.stats.datacube_requests(), 1);
    for part in [APPID, "getuserread", "2026-03-15"] {
        assert!(err.message.contains(part), "{} lacks {part}", err.message);
    }
}

#[tokio::test]
async fn daily_quota_stops_the_endpoint_without_another_request() {
    let env = TestEnv::new().await;
    env.set_faults("daily_quota_after=1");
    let c = default_client(&env);
    fetch_one(&c, Endpoint::UserRead, "2026-03-10")
        .await
        .unwrap();
    let err = fetch_one(&c, Endpoint::UserRead, "2026-03-11")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.errcode),
        (FetchErrorKind::DailyQuota, Some(45009))
    );
    let err = fetch_one(&c, Endpoint::UserRead, "2026-03-12")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.errcode),
        (FetchErrorKind::NotSent, Some(45009))
    );
    assert_eq!(
        env.sim.stats.requests_for(Endpoint::UserRead),
        2,
        "no request after 45009"
    );
    // Other endpoints go on.
    fetch_one(&c, Endpoint::UserShare, "2026-03-10")
        .await
        .unwrap();
}

#[tokio::test]
async fn offline_and_not_ready_are_classified_without_retry() {
    let env = TestEnv::new().await;
    env.set_faults("offline_legacy=1,not_ready=1");
    let c = default_client(&env);
    let err = fetch_one(&c, Endpoint::ArticleTotal, "2026-03-10")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.errcode),
        (FetchErrorKind::Offline, Some(47009))
    );
    let err = fetch_one(&c, Endpoint::ArticleRead, "2026-03-10")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.errcode),
        (FetchErrorKind::NotReady, Some(61503))
    );
    assert_eq!(env.sim.stats.datacube_requests(), 2);
}

#[tokio::test]
async fn span_and_date_violations_are_refused_before_any_request() {
    let env = TestEnv::new().await;
    let c = default_client(&env);
    let cancel = CancellationToken::new();
    let cases = [
        (Endpoint::ArticleSummary, "2026-03-01", "2026-03-02"),
        (Endpoint::UserRead, "2026-03-01", "2026-03-04"),
        (Endpoint::UserShare, "2026-03-01", "2026-03-08"),
        (Endpoint::BizSummary, "2026-01-01", "2026-01-31"),
        (Endpoint::UserRead, "2026-03-15", "2026-03-15"),
        (Endpoint::UserRead, "2026-03-05", "2026-03-04"),
        (Endpoint::UserShare, "2014-11-30", "2014-12-01"),
        (Endpoint::ArticleRead, "2025-10-31", "2025-10-31"),
    ];
    for (endpoint, begin, end) in cases {
        let err = c
            .fetch(endpoint, d(begin), d(end), &cancel)
            .await
            .unwrap_err();
        assert_eq!(
            err.kind,
            FetchErrorKind::Refused,
            "{endpoint} {begin}..{end}"
        );
        assert_eq!(err.attempts, 0);
    }
    assert_eq!(env.sim.stats.datacube_requests(), 0);
    assert_eq!(env.sim.stats.token_requests(), 0);
    // The widest legal spans pass.
    c.fetch(
        Endpoint::UserShare,
        d("2026-03-01"),
        d("2026-03-07"),
        &cancel,
    )
    .await
    .unwrap();
    c.fetch(
        Endpoint::BizSummary,
        d("2026-02-01"),
        d("2026-03-02"),
        &cancel,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_wrong_appsecret_is_a_credentials_error_that_never_shows_the_secret() {
    let env = TestEnv::with(SimOptions {
        clock: Clock::fixed(fixed_now()),
        secret: Some("the-right-one".into()),
        ..SimOptions::default()
    })
    .await;
    let err = fetch_one(&default_client(&env), Endpoint::UserRead, "2026-03-10")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.errcode),
        (FetchErrorKind::Credentials, Some(40125))
    );
    assert!(!err.to_string().contains(SECRET));
    assert_eq!(env.sim.stats.datacube_requests(), 0);
}

#[tokio::test]
async fn error_messages_never_contain_a_token() {
    let env = TestEnv::new().await;
    env.set_faults("drop=1");
    let c = client(
        &env,
        TokenMode::Stable,
        2,
        Duration::from_secs(2),
        env.clock.clone(),
    );
    let err = fetch_one(&c, Endpoint::UserRead, "2026-03-10")
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert_no_secrets(&text, &env.sim.stats.issued_tokens(), "the error");
    assert!(!text.contains(SECRET));
    assert!(!text.contains("access_token="), "{text}");
}

#[tokio::test]
async fn stable_mode_forces_a_refresh_only_when_it_hands_back_the_rejected_token() {
    let env = TestEnv::new().await;
    env.set_faults("stale_stable=1");
    let c = default_client(&env);
    fetch_one(&c, Endpoint::UserRead, "2026-03-10")
        .await
        .unwrap();
    assert_eq!(env.sim.stats.force_refreshes(), 0);
    env.sim.expire_all_tokens();
    env.sim.stats.reset();
    fetch_one(&c, Endpoint::UserRead, "2026-03-11")
        .await
        .unwrap();
    assert_eq!(env.sim.stats.force_refreshes(), 1);
    assert_eq!(env.sim.stats.datacube_requests(), 2);
}
