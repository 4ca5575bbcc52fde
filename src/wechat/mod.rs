//! Talking to WeChat: access tokens, the datacube client and how its errcodes
//! are classified.

pub mod client;
pub mod errors;
pub mod quota;
pub mod token;
pub mod token_command;

pub use client::{DatacubeClient, FetchOk, RetryPolicy};
pub use errors::{FetchError, FetchErrorKind};
pub use token::{AccessToken, TokenManager};

/// Removes every occurrence of the given secrets from `text`, and any
/// `access_token=`/`secret=` query value, so that a message can be logged.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[redacted]");
    }
    for key in ["access_token=", "secret="] {
        let mut from = 0;
        while let Some(pos) = out[from..].find(key) {
            let start = from + pos + key.len();
            let end = out[start..]
                .find(|c: char| c == '&' || c == ' ' || c == '"' || c == ')' || c.is_whitespace())
                .map_or(out.len(), |e| start + e);
            out.replace_range(start..end, "[redacted]");
            from = start + "[redacted]".len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_removes_secrets_and_query_values() {
        let text =
            "error sending request for url (http://x/datacube/a?access_token=ABCDEF&x=1): s3cret!";
        let out = redact(text, &["s3cret!"]);
        assert!(!out.contains("ABCDEF"));
        assert!(!out.contains("s3cret!"));
        assert!(out.contains("access_token=[redacted]&x=1"));
    }
}
