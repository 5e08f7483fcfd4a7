//! Join tokens: `ctl1.PAYLOAD.SECRET`, where PAYLOAD is base64url JSON naming the manager's
//! cluster API addresses, the cluster CA's digest and the token id, and SECRET is 32 random bytes
//! in hex. The manager stores only the SHA-256 of the secret; the payload lets `cluster join`
//! find and authenticate the manager before it sends the secret anywhere.

use base64::Engine;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "ctl1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// `HOST:PORT` of the manager's cluster API, in the order to try.
    #[serde(rename = "m")]
    pub managers: Vec<String>,
    /// `sha256:HEX` of the cluster CA certificate.
    #[serde(rename = "ca")]
    pub ca_digest: String,
    pub id: String,
    #[serde(skip)]
    pub secret: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "this is not a containerctl join token (it should start with `ctl1.`); create one on the \
         manager with `containerctl cluster token create`"
    )]
    NotAToken,
    #[error(
        "the join token is damaged ({0}); copy it again in full from `containerctl cluster token create`"
    )]
    Damaged(&'static str),
}

impl JoinToken {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        format!("{PREFIX}.{payload}.{}", self.secret)
    }

    pub fn decode(text: &str) -> Result<JoinToken, TokenError> {
        let text = text.trim();
        let mut parts = text.split('.');
        if parts.next() != Some(PREFIX) {
            return Err(TokenError::NotAToken);
        }
        let (Some(payload), Some(secret), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Damaged("it must have three parts separated by dots"));
        };
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Damaged("its middle part is not base64url"))?;
        let mut t: JoinToken =
            serde_json::from_slice(&json).map_err(|_| TokenError::Damaged("its middle part is not valid"))?;
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::Damaged("its secret is not 64 hex digits"));
        }
        if t.managers.is_empty() || !t.ca_digest.starts_with("sha256:") || !t.id.starts_with("jt-") {
            return Err(TokenError::Damaged("it names no manager, CA digest or id"));
        }
        t.secret = secret.to_owned();
        Ok(t)
    }

    /// What the manager stores to recognise the secret.
    pub fn secret_hash(secret: &str) -> String {
        crate::digest::sha256_hex(secret.as_bytes())
    }
}

/// Why the manager refused a join token; the joining host prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Refusal {
    Unknown,
    Expired,
    Used,
    Revoked,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Unknown => "the manager does not know this join token (wrong cluster, or a typo)",
            Refusal::Expired => "this join token has expired",
            Refusal::Used => "this join token has been used already",
            Refusal::Revoked => "this join token has been revoked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> JoinToken {
        JoinToken {
            managers: vec!["10.0.0.1:5001".into()],
            ca_digest: format!("sha256:{}", "ab".repeat(32)),
            id: "jt-0123456789ab".into(),
            secret: "cd".repeat(32),
        }
    }

    #[test]
    fn round_trip() {
        let t = sample();
        let text = t.encode();
        assert!(text.starts_with("ctl1."), "{text}");
        assert_eq!(JoinToken::decode(&format!("  {text}\n")), Ok(t));
    }

    #[test]
    fn damaged_tokens_are_refused_with_a_reason() {
        let text = sample().encode();
        assert_eq!(JoinToken::decode("SWMTKN-1-abc"), Err(TokenError::NotAToken));
        assert!(matches!(JoinToken::decode(&text[..text.len() - 1]), Err(TokenError::Damaged(_))));
        assert!(matches!(JoinToken::decode(&format!("{text}.x")), Err(TokenError::Damaged(_))));
        let mut parts: Vec<&str> = text.split('.').collect();
        parts[1] = "!!";
        assert!(matches!(JoinToken::decode(&parts.join(".")), Err(TokenError::Damaged(_))));
        let mut t = sample();
        t.managers.clear();
        assert!(matches!(JoinToken::decode(&t.encode()), Err(TokenError::Damaged(_))));
    }
}
