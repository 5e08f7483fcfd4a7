//! Tokens and web sessions for the HTTP API.
//!
//! Tokens are JWTs signed with HS256 (the one algorithm accepted) by a key created on first start
//! (mode 0600). `aud`, `iss`, `exp`, `nbf` and a token id (`jti`) are required and checked, and
//! the id must be one this daemon issued and has not revoked, so a token is worthless once revoked
//! and a forged one fails even with a leaked key's algorithm tricks. Keys carry an id (`kid`);
//! rotation adds a key and signs new tokens with it, older tokens stay valid until they expire
//! or their key is retired.
//!
//! Sessions turn a token into an HttpOnly, SameSite=Strict cookie plus a CSRF token that every
//! mutation must echo in `X-CSRF-Token`. They live in memory: a daemon restart logs the page out.

use std::collections::HashMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::db::TokenRecord;
use crate::digest::random_hex;
use crate::policy::Role;
use crate::time::now_ms;

pub const AUDIENCE: &str = "containerctl";
pub const ISSUER: &str = "containerctld";
pub const SESSION_COOKIE: &str = "containerctl_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A one-time login link's token lives this long.
pub const LOGIN_LINK_TTL_MS: i64 = 5 * 60 * 1000;

/// Web sessions open at once, at most.
pub const MAX_SESSIONS: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token was revoked")]
    Revoked,
    #[error("the token was issued by no one this daemon knows")]
    Unknown,
    #[error("the login link was used already")]
    Used,
    #[error("the session expired or does not exist: log in again")]
    NoSession,
    #[error("{MAX_SESSIONS} web sessions are open: log out of one, or wait until one expires")]
    TooManySessions,
    #[error("cannot read or create the signing key in {path}: {message}")]
    Key { path: String, message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub aud: String,
    pub iss: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(default)]
    pub once: bool,
}

/// A signed-in browser session.
#[derive(Debug, Clone)]
pub struct Session {
    pub role: Role,
    pub name: String,
    pub token_id: String,
    pub csrf: String,
    pub expires_at_ms: i64,
}

pub struct Auth {
    /// Key id → secret; `current` signs new tokens.
    keys: RwLock<(String, HashMap<String, Vec<u8>>)>,
    key_dir: Option<PathBuf>,
    tokens: RwLock<HashMap<String, TokenRecord>>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Auth {
    /// Loads the signing keys from `dir` (0700), creating the first one if there is none.
    pub fn load(dir: &Path, tokens: Vec<TokenRecord>) -> Result<Auth, AuthError> {
        let fail = |m: String| AuthError::Key { path: dir.display().to_string(), message: m };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fail(e.to_string()))?;
        let mut keys = HashMap::new();
        let mut newest: Option<(std::time::SystemTime, String)> = None;
        for entry in std::fs::read_dir(dir).map_err(|e| fail(e.to_string()))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(kid) = name.strip_suffix(".key") else { continue };
            let secret = std::fs::read(entry.path()).map_err(|e| fail(e.to_string()))?;
            if secret.len() < 32 {
                return Err(fail(format!("key {name} is shorter than 32 bytes")));
            }
            let modified = entry.metadata().and_then(|m| m.modified()).map_err(|e| fail(e.to_string()))?;
            if newest.as_ref().is_none_or(|(t, _)| modified > *t) {
                newest = Some((modified, kid.to_owned()));
            }
            keys.insert(kid.to_owned(), secret);
        }
        let auth = Auth {
            keys: RwLock::new((String::new(), keys)),
            key_dir: Some(dir.to_owned()),
            tokens: RwLock::new(tokens.into_iter().map(|t| (t.id.clone(), t)).collect()),
            sessions: Mutex::new(HashMap::new()),
        };
        match newest {
            Some((_, kid)) => {
                if let Ok(mut k) = auth.keys.write() {
                    k.0 = kid;
                }
            }
            None => {
                auth.rotate()?;
            }
        }
        Ok(auth)
    }

    /// An Auth with one in-memory key (tests).
    pub fn in_memory(secret: &[u8], tokens: Vec<TokenRecord>) -> Auth {
        Auth {
            keys: RwLock::new(("test".into(), HashMap::from([("test".to_owned(), secret.to_vec())]))),
            key_dir: None,
            tokens: RwLock::new(tokens.into_iter().map(|t| (t.id.clone(), t)).collect()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Creates a new signing key and signs new tokens with it; returns its id.
    pub fn rotate(&self) -> Result<String, AuthError> {
        let kid = random_hex(8);
        let secret = random_hex(32).into_bytes();
        if let Some(dir) = &self.key_dir {
            let path = dir.join(format!("{kid}.key"));
            let fail = |m: String| AuthError::Key { path: path.display().to_string(), message: m };
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| fail(e.to_string()))?;
            std::io::Write::write_all(&mut f, &secret).map_err(|e| fail(e.to_string()))?;
            f.sync_all().map_err(|e| fail(e.to_string()))?;
        }
        if let Ok(mut k) = self.keys.write() {
            k.1.insert(kid.clone(), secret);
            k.0 = kid.clone();
        }
        Ok(kid)
    }

    /// Issues a token; the caller stores the returned record (db) before handing the token out.
    pub fn issue(
        &self,
        name: &str,
        role: Role,
        ttl_ms: i64,
        once: bool,
    ) -> Result<(String, TokenRecord), AuthError> {
        let now = now_ms();
        let id = random_hex(16);
        let claims = Claims {
            sub: name.to_owned(),
            role,
            aud: AUDIENCE.into(),
            iss: ISSUER.into(),
            exp: u64::try_from((now + ttl_ms) / 1000).unwrap_or(0),
            nbf: u64::try_from(now / 1000).unwrap_or(0),
            iat: u64::try_from(now / 1000).unwrap_or(0),
            jti: id.clone(),
            once,
        };
        let keys = self.keys.read().map_err(|_| AuthError::Invalid("key store unavailable".into()))?;
        let secret = keys.1.get(&keys.0).ok_or_else(|| AuthError::Invalid("no signing key".into()))?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.0.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let record = TokenRecord {
            id: id.clone(),
            name: name.to_owned(),
            role: role.to_string(),
            created_at_ms: now,
            expires_at_ms: now + ttl_ms,
            once,
            used: false,
            revoked: false,
        };
        if let Ok(mut t) = self.tokens.write() {
            t.insert(id, record.clone());
        }
        Ok((token, record))
    }

    /// Checks a token completely: signature with its key, algorithm, audience, issuer, expiry,
    /// not-before, and that its id is one of ours and not revoked.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let keys = self.keys.read().map_err(|_| AuthError::Invalid("key store unavailable".into()))?;
        let kid = header.kid.ok_or_else(|| AuthError::Invalid("no key id".into()))?;
        let secret = keys.1.get(&kid).ok_or_else(|| AuthError::Invalid("unknown key id".into()))?;
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[AUDIENCE]);
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        v.validate_nbf = true;
        v.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &v)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let tokens = self.tokens.read().map_err(|_| AuthError::Unknown)?;
        let record = tokens.get(&claims.jti).ok_or(AuthError::Unknown)?;
        if record.revoked {
            return Err(AuthError::Revoked);
        }
        if record.role != claims.role.to_string() {
            return Err(AuthError::Invalid("the role does not match the issued one".into()));
        }
        Ok(claims)
    }

    pub fn revoke(&self, id: &str) -> bool {
        self.tokens.write().ok().and_then(|mut t| t.get_mut(id).map(|r| r.revoked = true)).is_some()
    }

    /// Marks a one-time token used in memory; false when it was used already.
    pub fn use_once(&self, id: &str) -> bool {
        let Ok(mut t) = self.tokens.write() else { return false };
        match t.get_mut(id) {
            Some(r) if !r.used => {
                r.used = true;
                true
            }
            _ => false,
        }
    }

    pub fn list(&self) -> Vec<TokenRecord> {
        let mut v: Vec<TokenRecord> =
            self.tokens.read().map(|t| t.values().cloned().collect()).unwrap_or_default();
        v.sort_by_key(|t| std::cmp::Reverse(t.created_at_ms));
        v
    }

    /// Starts a session for verified `claims`; returns (session id, session). At most
    /// [`MAX_SESSIONS`] live at once: memory is the daemon's, and a token holder must not be
    /// able to grow it without bound.
    pub fn start_session(&self, claims: &Claims) -> Result<(String, Session), AuthError> {
        let id = random_hex(32);
        let session = Session {
            role: claims.role,
            name: claims.sub.clone(),
            token_id: claims.jti.clone(),
            csrf: random_hex(32),
            expires_at_ms: i64::try_from(claims.exp).unwrap_or(0).saturating_mul(1000),
        };
        let mut s = self.sessions.lock().map_err(|_| AuthError::NoSession)?;
        let now = now_ms();
        s.retain(|_, v| v.expires_at_ms > now);
        if s.len() >= MAX_SESSIONS {
            return Err(AuthError::TooManySessions);
        }
        s.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The live session `id`, if it has not expired and its token was not revoked since.
    pub fn session(&self, id: &str) -> Result<Session, AuthError> {
        let s = self.sessions.lock().map_err(|_| AuthError::NoSession)?;
        let session =
            s.get(id).filter(|v| v.expires_at_ms > now_ms()).cloned().ok_or(AuthError::NoSession)?;
        drop(s);
        let revoked =
            self.tokens.read().map(|t| t.get(&session.token_id).is_none_or(|r| r.revoked)).unwrap_or(true);
        if revoked {
            return Err(AuthError::Revoked);
        }
        Ok(session)
    }

    pub fn end_session(&self, id: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(id);
        }
    }
}

/// Parses a TTL like "30d", "12h", "15m" into milliseconds (at most 10 years).
pub fn parse_ttl(text: &str) -> Result<i64, String> {
    let d = crate::unit::parse_duration(text)?;
    if d.as_secs() < 60 {
        return Err(format!("ttl `{text}` is shorter than a minute"));
    }
    i64::try_from(d.as_millis()).map_err(|_| format!("ttl `{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn auth() -> Auth {
        Auth::in_memory(SECRET, Vec::new())
    }

    fn b64(v: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// A token signed with `secret`, with the given header and claims.
    fn forge(header: serde_json::Value, claims: serde_json::Value, secret: &[u8]) -> String {
        let msg = format!("{}.{}", b64(&header), b64(&claims));
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("test".into());
        // Sign `msg` with HS256 through jsonwebtoken's own primitive.
        let sig =
            jsonwebtoken::crypto::sign(msg.as_bytes(), &EncodingKey::from_secret(secret), Algorithm::HS256)
                .expect("sign");
        format!("{msg}.{sig}")
    }

    fn claims_for(a: &Auth, role: Role) -> (String, serde_json::Value) {
        let (token, record) = a.issue("t", role, 3_600_000, false).expect("issue");
        let now = now_ms() / 1000;
        let c = serde_json::json!({"sub": "t", "role": "admin", "aud": AUDIENCE, "iss": ISSUER,
            "exp": now + 3600, "nbf": now - 10, "iat": now - 10, "jti": record.id});
        (token, c)
    }

    #[test]
    fn issued_tokens_verify() {
        let a = auth();
        let (token, record) = a.issue("ci", Role::Operator, 3_600_000, false).expect("issue");
        let c = a.verify(&token).expect("valid");
        assert_eq!((c.role, c.sub.as_str(), c.jti.as_str()), (Role::Operator, "ci", record.id.as_str()));
    }

    #[test]
    fn hostile_tokens_are_refused() {
        let a = auth();
        let (_, good) = claims_for(&a, Role::Admin);
        let hs = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "test"});
        // Sanity: our forger makes a valid token from valid claims (role must match the record).
        let mut same_role = good.clone();
        same_role["role"] = "admin".into();
        let (_, rec) = a.issue("t", Role::Admin, 3_600_000, false).expect("issue");
        same_role["jti"] = rec.id.clone().into();
        assert!(a.verify(&forge(hs.clone(), same_role.clone(), SECRET)).is_ok());

        let now = now_ms() / 1000;
        let mut expired = same_role.clone();
        expired["exp"] = (now - 3600).into();
        let mut wrong_aud = same_role.clone();
        wrong_aud["aud"] = "someone-else".into();
        let mut wrong_iss = same_role.clone();
        wrong_iss["iss"] = "evil".into();
        let mut string_exp = same_role.clone();
        string_exp["exp"] = (now + 3600).to_string().into();
        let mut string_nbf = same_role.clone();
        string_nbf["nbf"] = (now - 10).to_string().into();
        let mut future_nbf = same_role.clone();
        future_nbf["nbf"] = (now + 3600).into();
        let mut unknown_id = same_role.clone();
        unknown_id["jti"] = "not-issued".into();
        let mut escalated = same_role.clone();
        escalated["jti"] = claims_for(&a, Role::Viewer).1["jti"].clone();
        let mut no_jti = same_role.clone();
        no_jti.as_object_mut().expect("object").remove("jti");
        let cases = [
            ("expired", forge(hs.clone(), expired, SECRET)),
            ("wrong audience", forge(hs.clone(), wrong_aud, SECRET)),
            ("wrong issuer", forge(hs.clone(), wrong_iss, SECRET)),
            ("string exp", forge(hs.clone(), string_exp, SECRET)),
            ("string nbf", forge(hs.clone(), string_nbf, SECRET)),
            ("not yet valid", forge(hs.clone(), future_nbf, SECRET)),
            ("unknown id", forge(hs.clone(), unknown_id, SECRET)),
            ("role escalated", forge(hs.clone(), escalated, SECRET)),
            ("no id", forge(hs.clone(), no_jti, SECRET)),
            ("wrong key", forge(hs.clone(), same_role.clone(), b"another-secret-another-secret-xx")),
            (
                "unknown kid",
                forge(serde_json::json!({"alg": "HS256", "kid": "other"}), same_role.clone(), SECRET),
            ),
            (
                "alg none",
                format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "kid": "test"})), b64(&same_role)),
            ),
            (
                "alg HS512",
                forge(serde_json::json!({"alg": "HS512", "kid": "test"}), same_role.clone(), SECRET),
            ),
            ("garbage", "not.a.token".to_owned()),
        ];
        for (what, token) in cases {
            assert!(a.verify(&token).is_err(), "{what} was accepted");
        }
        assert!(a.revoke(&rec.id));
        assert_eq!(a.verify(&forge(hs, same_role, SECRET)).map(|_| ()), Err(AuthError::Revoked));
    }

    #[test]
    fn sessions_are_capped() {
        let a = auth();
        let (token, _) = a.issue("web", Role::Viewer, 3_600_000, false).expect("issue");
        let claims = a.verify(&token).expect("valid");
        let ids: Vec<String> =
            (0..MAX_SESSIONS).map(|_| a.start_session(&claims).expect("session").0).collect();
        assert_eq!(a.start_session(&claims).map(|_| ()), Err(AuthError::TooManySessions));
        a.end_session(&ids[0]);
        assert!(a.start_session(&claims).is_ok(), "a place is free again after a logout");
    }

    #[test]
    fn sessions_follow_their_token() {
        let a = auth();
        let (token, record) = a.issue("web", Role::Viewer, 3_600_000, false).expect("issue");
        let claims = a.verify(&token).expect("valid");
        let (sid, s) = a.start_session(&claims).expect("session");
        assert_eq!(a.session(&sid).map(|x| x.csrf), Ok(s.csrf));
        assert!(a.session("nope").is_err());
        a.revoke(&record.id);
        assert_eq!(a.session(&sid).map(|_| ()), Err(AuthError::Revoked));
    }

    #[test]
    fn one_time_tokens_work_once_and_keys_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Auth::load(&dir.path().join("keys"), Vec::new()).expect("load");
        let (token, record) = a.issue("link", Role::Admin, LOGIN_LINK_TTL_MS, true).expect("issue");
        assert!(a.verify(&token).expect("valid").once);
        assert!(a.use_once(&record.id));
        assert!(!a.use_once(&record.id));
        let keys: Vec<_> = std::fs::read_dir(dir.path().join("keys")).expect("ls").flatten().collect();
        assert_eq!(keys.len(), 1);
        let mode = keys[0].metadata().expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A reloaded Auth verifies tokens signed before, given the records.
        let b = Auth::load(&dir.path().join("keys"), vec![record]).expect("reload");
        assert!(b.verify(&token).is_ok());
        b.rotate().expect("rotate");
        assert!(b.verify(&token).is_ok(), "rotation keeps older keys for verification");
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("30d"), Ok(30 * 86_400_000));
        assert!(parse_ttl("5s").is_err());
        assert!(parse_ttl("x").is_err());
    }
}
