//! Access tokens, one manager per account.
//!
//! Stable mode (`/cgi-bin/stable_token`) is preferred: it returns the same token
//! while it is valid and never invalidates a token another service of the same
//! appid uses. Classic mode (`/cgi-bin/token`) invalidates the previous token and
//! has a small daily quota, so it is refreshed as rarely as possible.
//!
//! An account whose appsecret wxcube does not hold gets its token from a
//! `token_command` instead (SPEC section 10, [`super::token_command`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::errors::{FetchError, FetchErrorKind, errcode_hint};
use super::redact;
use crate::config::TokenMode;
use crate::json::as_int;

/// Tokens are renewed this long before WeChat says they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// How long before its expiry a token is renewed: [`EXPIRY_MARGIN`], or half
/// the lifetime of a short-lived one (a token command may hand out tokens that
/// have only minutes left).
fn margin(lifetime: Duration) -> Duration {
    EXPIRY_MARGIN.min(lifetime / 2)
}

/// An access token. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    /// Wraps a token received from WeChat or a token command.
    pub(crate) fn new(token: &str) -> AccessToken {
        AccessToken(token.into())
    }

    /// The token itself, for the request URL only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

struct Cached {
    token: AccessToken,
    renew_at: Instant,
}

#[derive(Default)]
struct State {
    current: Option<Cached>,
    /// The last token a datacube call rejected: if stable mode hands it back,
    /// only `force_refresh` can replace it.
    rejected: Option<AccessToken>,
    /// The token endpoint refused our credentials: asking again in this run
    /// would only burn the token quota, so every caller gets this error.
    refused: Option<FetchError>,
}

/// Fetches, caches and renews one account's access token. Concurrent callers
/// share one refresh: the state is behind an async mutex held while fetching.
pub struct TokenManager {
    http: reqwest::Client,
    api_base: String,
    appid: String,
    secret: SecretString,
    mode: TokenMode,
    /// When set, tokens come from this program rather than from WeChat.
    command: Option<super::token_command::TokenCommand>,
    state: Mutex<State>,
}

impl TokenManager {
    /// A manager for one account; no request is made until `get`.
    pub fn new(
        http: reqwest::Client,
        api_base: &str,
        appid: &str,
        secret: SecretString,
        mode: TokenMode,
    ) -> TokenManager {
        TokenManager {
            http,
            api_base: api_base.trim_end_matches('/').to_string(),
            appid: appid.to_string(),
            secret,
            mode,
            command: None,
            state: Mutex::new(State::default()),
        }
    }

    /// A manager whose tokens come from `command` (no secret is involved).
    pub fn from_command(
        http: reqwest::Client,
        api_base: &str,
        appid: &str,
        command: super::token_command::TokenCommand,
    ) -> TokenManager {
        let mut manager = TokenManager::new(
            http,
            api_base,
            appid,
            SecretString::from(String::new()),
            TokenMode::Stable,
        );
        manager.command = Some(command);
        manager
    }

    /// The cached token, or a new one if there is none or it is about to expire.
    pub async fn get(&self) -> Result<AccessToken, FetchError> {
        let mut state = self.state.lock().await;
        if let Some(refused) = &state.refused {
            return Err(refused.clone());
        }
        if let Some(cached) = &state.current
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.token.clone());
        }
        let fetched = match &self.command {
            // After a token error the program is asked for a fresh one
            // (WXCUBE_TOKEN_REFRESH=1); it may be the very service that owns it.
            Some(command) => {
                let refresh = state.rejected.is_some();
                if refresh {
                    tracing::info!(appid = %self.appid, "running token_command again with WXCUBE_TOKEN_REFRESH=1");
                } else {
                    tracing::debug!(appid = %self.appid, "running token_command");
                }
                let got = command.run(&self.appid, refresh).await;
                if let Ok((_, lifetime)) = &got {
                    tracing::debug!(appid = %self.appid, expires_in = lifetime.as_secs(), "token_command gave a token");
                }
                got
            }
            None => self.request_checked(&state).await,
        };
        let (token, lifetime) = match fetched {
            Ok(t) => t,
            Err(e) => {
                if e.kind == FetchErrorKind::Credentials {
                    state.refused = Some(e.clone());
                }
                return Err(e);
            }
        };
        state.rejected = None;
        state.current = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now()
                + match self.command {
                    Some(_) => lifetime.saturating_sub(margin(lifetime)),
                    None => lifetime.saturating_sub(EXPIRY_MARGIN),
                },
        });
        Ok(token)
    }

    /// A token from WeChat; forced once if stable mode hands back the rejected one.
    async fn request_checked(&self, state: &State) -> Result<(AccessToken, Duration), FetchError> {
        match self.request(false).await {
            Ok((token, _))
                if self.mode == TokenMode::Stable && state.rejected.as_ref() == Some(&token) =>
            {
                // Stable mode returned the very token that just failed: force a new one
                // (limited to 20 a day, hence only here).
                tracing::info!(appid = %self.appid, "stable token was rejected; forcing a refresh");
                self.request(true).await
            }
            other => other,
        }
    }

    /// Reports that `failed` was rejected (40001, 40014, 42001). The cache is
    /// dropped only if it still holds that token: another request may already
    /// have replaced it.
    pub async fn invalidate(&self, failed: &AccessToken) {
        let mut state = self.state.lock().await;
        if state.current.as_ref().is_some_and(|c| &c.token == failed) {
            state.current = None;
            state.rejected = Some(failed.clone());
        }
    }

    /// The secrets this manager knows, for redacting messages.
    pub fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    async fn request(&self, force_refresh: bool) -> Result<(AccessToken, Duration), FetchError> {
        let response = match self.mode {
            TokenMode::Stable => {
                let body = json!({
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret.expose_secret(),
                    "force_refresh": force_refresh,
                });
                self.http
                    .post(format!("{}/cgi-bin/stable_token", self.api_base))
                    .json(&body)
                    .send()
                    .await
            }
            TokenMode::Classic => {
                self.http
                    .get(format!("{}/cgi-bin/token", self.api_base))
                    .query(&[
                        ("grant_type", "client_credential"),
                        ("appid", self.appid.as_str()),
                        ("secret", self.secret.expose_secret()),
                    ])
                    .send()
                    .await
            }
        };
        let response = response.map_err(|e| {
            self.error(
                FetchErrorKind::Transient,
                None,
                &e.without_url().to_string(),
            )
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            self.error(
                FetchErrorKind::Transient,
                None,
                &e.without_url().to_string(),
            )
        })?;
        if !status.is_success() {
            return Err(self.error(FetchErrorKind::Transient, None, &format!("HTTP {status}")));
        }
        let body: Value = serde_json::from_str(&text).map_err(|_| {
            self.error(
                FetchErrorKind::Transient,
                None,
                "the token answer is not JSON",
            )
        })?;
        let errcode = as_int(body.get("errcode")).unwrap_or(0);
        if errcode == -1 {
            return Err(self.error(FetchErrorKind::Transient, Some(-1), "system busy"));
        }
        if errcode != 0 {
            return Err(self.error(
                FetchErrorKind::Credentials,
                Some(errcode),
                &format!("token request refused: {}", errcode_hint(errcode)),
            ));
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                self.error(
                    FetchErrorKind::Transient,
                    None,
                    "the token answer has no access_token",
                )
            })?;
        let expires_in = as_int(body.get("expires_in")).unwrap_or(7200).max(1) as u64;
        tracing::debug!(appid = %self.appid, expires_in, force_refresh, "got an access token");
        Ok((AccessToken(token.into()), Duration::from_secs(expires_in)))
    }

    fn error(&self, kind: FetchErrorKind, errcode: Option<i64>, message: &str) -> FetchError {
        FetchError {
            kind,
            errcode,
            message: redact(
                &format!("account {}: access token: {message}", self.appid),
                &[self.secret.expose_secret()],
            ),
            attempts: 0,
        }
    }
}
