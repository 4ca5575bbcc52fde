//! `wxcube sim-token --api-base URL APPID`: a `token_command` for tests and
//! benchmarks (hidden from `--help`). It plays a third-party platform's token
//! service: it asks the simulator's `stable_token` for the account (with a
//! fixed test secret) and prints `{"access_token", "expires_in"}` on stdout;
//! with `WXCUBE_TOKEN_REFRESH=1` it asks with `force_refresh`, as a platform
//! would after its token was rejected. Any failure is exit 1 with the reason
//! on stderr (which wxcube discards).
//!
//! A subcommand of the binary under test rather than a script: no interpreter
//! to depend on, and the simulator counts its token requests, so tests see
//! exactly how often wxcube ran it.

use serde_json::{Value, json};

use crate::exit::{EXIT_FAILURES, EXIT_OK};
use crate::wechat::token_command::REFRESH_VAR;

/// The secret `sim-token` presents (the simulator accepts any unless pinned).
pub const SIM_TOKEN_SECRET: &str = "sim-token-platform-secret";

/// Runs the program; returns its exit code.
pub async fn run(api_base: &str, appid: &str) -> u8 {
    let refresh = std::env::var(REFRESH_VAR).is_ok_and(|v| v == "1");
    let body = json!({
        "grant_type": "client_credential",
        "appid": appid,
        "secret": SIM_TOKEN_SECRET,
        "force_refresh": refresh,
    });
    let url = format!("{}/cgi-bin/stable_token", api_base.trim_end_matches('/'));
    let answer = match reqwest::Client::new().post(url).json(&body).send().await {
        Ok(r) => r.json::<Value>().await,
        Err(e) => {
            eprintln!("sim-token: {}", e.without_url());
            return EXIT_FAILURES;
        }
    };
    match answer {
        Ok(v) if v.get("access_token").and_then(Value::as_str).is_some() => {
            let out = json!({"access_token": v["access_token"], "expires_in": v["expires_in"]});
            println!("{out}");
            EXIT_OK
        }
        Ok(v) => {
            eprintln!("sim-token: refused: errcode {}", v["errcode"]);
            EXIT_FAILURES
        }
        Err(_) => {
            eprintln!("sim-token: the answer is not JSON");
            EXIT_FAILURES
        }
    }
}
