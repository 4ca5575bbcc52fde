//! `token_command` (SPEC section 10): an account's access token printed by a
//! program, for accounts whose appsecret wxcube does not hold (a third-party
//! platform's token service, or another system that owns the token).
//!
//! The program runs without a shell, `{appid}` replaced in its arguments, with
//! stdin closed and its stderr discarded. It must print one JSON object
//! `{"access_token": "...", "expires_in": N}` (N optional) on stdout. Whatever
//! it prints may be a token, so no message ever quotes it: failures name the
//! account, the program and its exit status only.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::errors::{FetchError, FetchErrorKind};
use super::token::AccessToken;
use crate::json::as_int;

/// The environment variable set to `1` when wxcube asks again after a token error.
pub const REFRESH_VAR: &str = "WXCUBE_TOKEN_REFRESH";

/// Lifetime assumed when the program gives no `expires_in` (WeChat's usual
/// 2 hours; a token error before then asks the program again anyway).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(7200);

/// More than this on stdout is not a token answer (and is not read further).
const MAX_OUTPUT: u64 = 64 * 1024;

/// A configured token program.
#[derive(Debug, Clone)]
pub struct TokenCommand {
    /// The program and its arguments, `{appid}` not yet replaced.
    pub argv: Vec<String>,
    /// Killed after this long.
    pub timeout: Duration,
}

impl TokenCommand {
    /// Runs the program for `appid` (with `WXCUBE_TOKEN_REFRESH=1` when
    /// `refresh`) and returns the token it printed and how long it lives.
    pub async fn run(
        &self,
        appid: &str,
        refresh: bool,
    ) -> Result<(AccessToken, Duration), FetchError> {
        let program = self.argv.first().map_or("", String::as_str);
        let fail = |why: String| FetchError {
            kind: FetchErrorKind::Credentials,
            errcode: None,
            message: format!("account {appid}: access token: token_command {program:?} {why}"),
            attempts: 0,
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(
                self.argv
                    .iter()
                    .skip(1)
                    .map(|a| a.replace("{appid}", appid)),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its stderr may carry tokens too, and ours is the log.
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if refresh {
            command.env(REFRESH_VAR, "1");
        } else {
            command.env_remove(REFRESH_VAR);
        }
        let mut child = command
            .spawn()
            .map_err(|e| fail(format!("could not be started: {}", io_kind(&e))))?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let run = async {
            let mut out = Vec::new();
            // Read while it runs, so a chatty program cannot block on a full pipe.
            let read = (&mut stdout).take(MAX_OUTPUT).read_to_end(&mut out).await;
            let status = child.wait().await;
            (read.map(|_| out), status)
        };
        let (out, status) = match tokio::time::timeout(self.timeout, run).await {
            Ok(done) => done,
            Err(_) => {
                // `kill_on_drop` would do it too; waiting here reaps the child now.
                let _ = child.kill().await;
                return Err(fail(format!(
                    "timed out after {} s (token_command_timeout_secs) and was killed",
                    self.timeout.as_secs()
                )));
            }
        };
        let status =
            status.map_err(|e| fail(format!("could not be waited for: {}", io_kind(&e))))?;
        if !status.success() {
            return Err(fail(format!("failed ({})", describe_status(status))));
        }
        let out = out.map_err(|e| fail(format!("output could not be read: {}", io_kind(&e))))?;
        parse(&out).map_err(|why| fail(format!("exited 0 but {why}")))
    }
}

/// The token and lifetime in the program's output; the error never quotes it.
fn parse(out: &[u8]) -> Result<(AccessToken, Duration), &'static str> {
    const SHAPE: &str = r#"did not print one JSON object {"access_token": "...", "expires_in": N}"#;
    let value: Value = serde_json::from_slice(out).map_err(|_| SHAPE)?;
    let token = value
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(SHAPE)?;
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("printed an access_token with whitespace in it");
    }
    let lifetime = match value.get("expires_in") {
        None | Some(Value::Null) => DEFAULT_LIFETIME,
        Some(v) => match as_int(Some(v)) {
            Some(n) if n > 0 => Duration::from_secs(n as u64),
            _ => return Err("printed an expires_in that is not a positive number of seconds"),
        },
    };
    Ok((AccessToken::new(token), lifetime))
}

/// "exit status 3" or "killed by signal 9".
fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// An I/O error without its text beyond the kind (it cannot hold output, but
/// the kind is all a user needs: not found, permission denied).
fn io_kind(e: &std::io::Error) -> String {
    e.kind().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_token_answer_and_refuses_anything_else() {
        let (token, life) = parse(br#"{"access_token":"abc","expires_in":60}"#).unwrap();
        assert_eq!((token.expose(), life), ("abc", Duration::from_secs(60)));
        let (_, life) = parse(br#"{"access_token":"abc"}"#).unwrap();
        assert_eq!(life, DEFAULT_LIFETIME);
        for bad in [
            &b"abc"[..],
            br#"{"access_token":""}"#,
            br#"{"token":"abc"}"#,
            br#"{"access_token":"abc","expires_in":-5}"#,
            br#"{"access_token":"a b"}"#,
        ] {
            let why = parse(bad).unwrap_err();
            assert!(!why.contains("abc"), "{why}");
        }
    }

    #[tokio::test]
    async fn failures_name_the_status_never_the_output() {
        let command = TokenCommand {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo LEAKED-{appid}; echo LEAKED >&2; exit 3".into(),
            ],
            timeout: Duration::from_secs(10),
        };
        let e = command.run("wxabc", false).await.unwrap_err();
        assert!(e.message.contains("account wxabc"), "{e}");
        assert!(e.message.contains("exit status 3"), "{e}");
        assert!(!e.message.contains("LEAKED"), "{e}");
    }

    #[tokio::test]
    async fn a_slow_program_is_killed_at_the_timeout() {
        let command = TokenCommand {
            argv: vec!["sleep".into(), "30".into()],
            timeout: Duration::from_millis(200),
        };
        let started = std::time::Instant::now();
        let e = command.run("wxabc", false).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(e.message.contains("timed out"), "{e}");
    }

    #[tokio::test]
    async fn appid_and_refresh_reach_the_program() {
        let command = TokenCommand {
            argv: vec![
                "sh".into(),
                "-c".into(),
                r#"printf '{"access_token":"%s-%s"}' "$0" "${WXCUBE_TOKEN_REFRESH:-0}""#.into(),
                "{appid}".into(),
            ],
            timeout: Duration::from_secs(10),
        };
        let (token, _) = command.run("wxabc", true).await.unwrap();
        assert_eq!(token.expose(), "wxabc-1");
        let (token, _) = command.run("wxabc", false).await.unwrap();
        assert_eq!(token.expose(), "wxabc-0");
    }
}
