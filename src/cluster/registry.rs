//! The cluster registry: Debian's `docker-registry` (distribution 2.8) configured by containerctl,
//! and the tokens of distribution's token authentication, which containerctld issues.
//!
//! Pure apart from key generation: the caller writes the config, the key and the certificate
//! (`generate`), serves the token endpoint and checks credentials; this module renders, signs and
//! decides what a caller gets.
//!
//! How distribution 2.8 checks a token (registry/auth/token): `iss` must equal the configured
//! issuer, `aud` the configured service, `exp`/`nbf` are checked with 60 s of leeway, and the
//! header's `kid` must be the libtrust key id of a public key in the `rootcertbundle`
//! certificates. [`TokenSigner::kid`] computes that id.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData, PKCS_ECDSA_P256_SHA256};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What the registry's config says; see [`render_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// `host:port` the registry listens on, e.g. `0.0.0.0:5002`.
    pub listen: String,
    /// Where blobs and manifests are stored.
    pub storage_dir: PathBuf,
    /// TLS certificate (PEM, chain allowed); `None` serves plain HTTP (tests on 127.0.0.1 only).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); used only with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Token endpoint clients are sent to, e.g. `https://10.0.0.1:5001/v2/token`.
    pub realm: String,
    /// The `service` clients ask tokens for and the `aud` of those tokens.
    pub service: String,
    /// The `iss` of the tokens.
    pub issuer: String,
    /// PEM certificate(s) whose public keys may sign tokens (written by [`TokenSigner::generate`]).
    pub rootcertbundle: PathBuf,
}

/// One `access` entry of a token, and one parsed `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Repository name (`team/app`) or `catalog`.
    pub name: String,
    /// `pull`, `push`, `*`, ...
    pub actions: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot generate the registry token key: {0}; check that the system's random source works")]
    Generate(String),
    #[error(
        "the registry token key is not a PKCS#8 ECDSA P-256 private key in PEM ({0}); remove it and let \
         containerctl generate a new one (the registry must then be restarted with the new certificate)"
    )]
    Key(String),
    #[error("cannot sign a registry token: {0}; regenerate the registry token key")]
    Sign(String),
}

/// Renders distribution 2.8's YAML config. Strings are written as double-quoted scalars, so paths
/// and URLs need no escaping by the caller.
pub fn render_config(c: &RegistryConfig) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let p = |p: &PathBuf| q(&p.to_string_lossy());
    let mut out = String::new();
    out.push_str("# Written by containerctl; changes are overwritten.\n");
    out.push_str("version: 0.1\n");
    out.push_str("log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: true\n");
    out.push_str("storage:\n");
    out.push_str(&format!("  filesystem:\n    rootdirectory: {}\n", p(&c.storage_dir)));
    out.push_str("  delete:\n    enabled: true\n");
    out.push_str("  cache:\n    blobdescriptor: inmemory\n");
    out.push_str("http:\n");
    out.push_str(&format!("  addr: {}\n", q(&c.listen)));
    if let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) {
        out.push_str(&format!("  tls:\n    certificate: {}\n    key: {}\n", p(cert), p(key)));
    }
    out.push_str("  headers:\n    X-Content-Type-Options: [nosniff]\n");
    out.push_str("auth:\n  token:\n");
    out.push_str(&format!("    realm: {}\n", q(&c.realm)));
    out.push_str(&format!("    service: {}\n", q(&c.service)));
    out.push_str(&format!("    issuer: {}\n", q(&c.issuer)));
    out.push_str(&format!("    rootcertbundle: {}\n", p(&c.rootcertbundle)));
    out
}

/// Signs registry tokens with an ECDSA P-256 key (ES256).
pub struct TokenSigner {
    key: EncodingKey,
    kid: String,
    issuer: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").field("kid", &self.kid).field("issuer", &self.issuer).finish()
    }
}

impl TokenSigner {
    /// A new key: `(key_pem, cert_pem)`, the PKCS#8 private key (store it 0600) and a self-signed
    /// certificate of its public key, the registry's `rootcertbundle`.
    pub fn generate() -> Result<(String, String), RegistryError> {
        let gen = |e: rcgen::Error| RegistryError::Generate(e.to_string());
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "containerctl registry token signer");
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).map_err(gen)?;
        Ok((key.serialize_pem(), cert.pem()))
    }

    /// The signer of a key written by [`TokenSigner::generate`]; `issuer` becomes every token's
    /// `iss` and must equal the registry config's `issuer`.
    pub fn from_pem(key_pem: &str, issuer: &str) -> Result<TokenSigner, RegistryError> {
        let pair = KeyPair::from_pem(key_pem).map_err(|e| RegistryError::Key(e.to_string()))?;
        if pair.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(RegistryError::Key(format!("the key is {:?}", pair.algorithm())));
        }
        let kid = libtrust_key_id(&pair.subject_public_key_info());
        let key = EncodingKey::from_ec_der(&pair.serialize_der());
        Ok(TokenSigner { key, kid, issuer: issuer.to_owned() })
    }

    /// The libtrust key id distribution looks the signing key up by.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A token for `subject` granting `access` on the registry `service`, valid for `ttl_secs`.
    pub fn issue(
        &self,
        subject: &str,
        service: &str,
        access: &[Access],
        ttl_secs: u64,
    ) -> Result<String, RegistryError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let claims = Claims {
            iss: &self.issuer,
            sub: subject,
            aud: service,
            exp: now + ttl_secs,
            nbf: now.saturating_sub(1),
            iat: now,
            jti: crate::digest::random_hex(16),
            access,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| RegistryError::Sign(e.to_string()))
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: &'a [Access],
}

/// libtrust's key id: SHA-256 of the DER SubjectPublicKeyInfo, first 30 bytes, base32 without
/// padding, in 12 groups of 4 joined by ':'.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let b32 = base32(&digest[..30]);
    let groups: Vec<&str> =
        b32.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    groups.join(":")
}

/// RFC 4648 base32 (upper case), no padding.
fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Parses one `scope` parameter of a token request: space-separated `type:name:actions` entries
/// (`repository:team/app:pull,push`, `registry:catalog:*`). Entries of other types (including
/// classed ones like `repository(plugin)`) and malformed ones are ignored. A request may carry
/// several `scope` parameters: call this for each.
pub fn parse_scope(scope: &str) -> Vec<Access> {
    scope
        .split_whitespace()
        .filter_map(|entry| {
            let (kind, rest) = entry.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            if !matches!(kind, "repository" | "registry") || name.is_empty() {
                return None;
            }
            let mut list: Vec<String> = Vec::new();
            for a in actions.split(',').filter(|a| !a.is_empty()) {
                if !list.iter().any(|x| x == a) {
                    list.push(a.to_owned());
                }
            }
            Some(Access { kind: kind.to_owned(), name: name.to_owned(), actions: list })
        })
        .collect()
}

/// The repositories pushes from other hosts are staged in before the manager copies them to
/// their tag (`incoming/NAME`): the only ones an API token may push to.
pub const STAGING_PREFIX: &str = "incoming/";

/// What a credential may push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushRight {
    /// Pull only (node credentials, viewer tokens).
    None,
    /// Push only to staging repositories ([`STAGING_PREFIX`]): operator and admin API tokens. The
    /// manager checks the tag and copies the image there (`containerctl image push`).
    Staging,
    /// Push anywhere: the manager's daemon itself (the push secret, root-only on the manager).
    All,
}

impl PushRight {
    fn may_push(self, repository: &str) -> bool {
        match self {
            PushRight::None => false,
            PushRight::Staging => repository.starts_with(STAGING_PREFIX),
            PushRight::All => true,
        }
    }
}

/// What a caller gets of what it asked for: `pull` on any repository always; `push` (and `*` as
/// pull+push) where `right` allows it; the catalog (`registry:catalog:*`) to any caller with a
/// push right. Nothing else (`delete` included) is ever granted. Entries left without actions
/// are dropped.
pub fn grant(requested: &[Access], right: PushRight) -> Vec<Access> {
    let mut out: Vec<Access> = Vec::new();
    for r in requested {
        let actions: Vec<String> = match r.kind.as_str() {
            "repository" => {
                let allow_push = right.may_push(&r.name);
                let mut acts: Vec<String> = Vec::new();
                for a in &r.actions {
                    let add: &[&str] = match (a.as_str(), allow_push) {
                        ("pull", _) | ("*", false) => &["pull"],
                        ("push", true) => &["push"],
                        ("*", true) => &["pull", "push"],
                        _ => &[],
                    };
                    for x in add {
                        if !acts.iter().any(|y| y == x) {
                            acts.push((*x).to_owned());
                        }
                    }
                }
                acts
            }
            "registry"
                if right != PushRight::None && r.name == "catalog" && r.actions.iter().any(|a| a == "*") =>
            {
                vec!["*".to_owned()]
            }
            _ => Vec::new(),
        };
        if actions.is_empty() {
            continue;
        }
        match out.iter_mut().find(|o| o.kind == r.kind && o.name == r.name) {
            Some(o) => {
                for a in actions {
                    if !o.actions.contains(&a) {
                        o.actions.push(a);
                    }
                }
            }
            None => out.push(Access { kind: r.kind.clone(), name: r.name.clone(), actions }),
        }
    }
    out
}

/// The manifest types the registry is asked for (so that it returns a manifest as it was pushed,
/// never converted).
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.index.v1+json";

/// A manifest as the registry holds it under a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `sha256:…` of the manifest's bytes (what `NAME@sha256:…` and a unit's `digest` name).
    pub digest: String,
    /// The image's config digest, which is the image ID Docker shows (`None` for a list).
    pub config: Option<String>,
    /// Blobs it refers to: config first, then the layers.
    pub blobs: Vec<String>,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
        let media_type =
            v["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json").to_owned();
        let config = v["config"]["digest"].as_str().map(str::to_owned);
        let mut blobs: Vec<String> = config.iter().cloned().collect();
        if let Some(layers) = v["layers"].as_array() {
            blobs.extend(layers.iter().filter_map(|l| l["digest"].as_str().map(str::to_owned)));
        }
        if blobs.iter().any(|b| !is_digest(b)) {
            return Err("the manifest names a blob that is no sha256 digest".into());
        }
        Ok(Manifest {
            digest: format!("sha256:{}", crate::digest::sha256_hex(bytes)),
            config,
            blobs,
            media_type,
            bytes: bytes.to_vec(),
        })
    }
}

fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What pushing an image to a tag does, given what the tag holds: tags of the cluster registry
/// are immutable, so only an absent tag or one holding the same image (its config digest, the
/// image ID) may be pushed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagCheck {
    /// The tag does not exist: push.
    Absent,
    /// The tag holds this very image (manifest digest given): nothing to change.
    Same(String),
    /// The tag holds something else: refused with this message.
    Taken(String),
}

/// [`TagCheck`] of pushing image `image_id` (`sha256:…`) as `repo:tag` when the tag holds
/// `existing`.
pub fn check_tag(repo: &str, tag: &str, existing: Option<&Manifest>, image_id: &str) -> TagCheck {
    let Some(m) = existing else { return TagCheck::Absent };
    if m.config.as_deref() == Some(image_id) {
        return TagCheck::Same(m.digest.clone());
    }
    let theirs = match &m.config {
        Some(c) => format!("image {c}, manifest {}", m.digest),
        None => format!("manifest list {}", m.digest),
    };
    TagCheck::Taken(format!(
        "{repo}:{tag} is already in the cluster registry with other content ({theirs}; this push: image \
         {image_id}): tags are immutable, so nothing under a unit pinned to it changes"
    ))
}

/// The hint of a [`TagCheck::Taken`] refusal.
pub fn taken_hint(repo: &str, tag: &str) -> String {
    format!("push it under a new tag (e.g. {repo}:{tag}-2) and update the units to that version")
}

/// The token endpoint's JSON body. `token` and `access_token` carry the same token (older and
/// newer clients read one or the other); `issued_at` is RFC 3339 in UTC.
pub fn token_response(token: &str, ttl_secs: u64) -> serde_json::Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": ttl_secs,
        "issued_at": rfc3339_utc(now),
    })
}

fn rfc3339_utc(secs: u64) -> String {
    crate::time::format_stamp(i64::try_from(secs).unwrap_or(i64::MAX / 1000) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn access(kind: &str, name: &str, actions: &[&str]) -> Access {
        Access {
            kind: kind.into(),
            name: name.into(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn config_has_token_auth_and_optional_tls() {
        let mut c = RegistryConfig {
            listen: "0.0.0.0:5002".into(),
            storage_dir: "/var/lib/containerctl/registry".into(),
            tls_cert: Some("/etc/containerctl/cluster/registry.crt".into()),
            tls_key: Some("/etc/containerctl/cluster/registry.key".into()),
            realm: "https://10.0.0.1:5001/v2/token".into(),
            service: "containerctl-registry".into(),
            issuer: "containerctl".into(),
            rootcertbundle: "/var/lib/containerctl/cluster/registry-token.crt".into(),
        };
        let text = render_config(&c);
        assert_eq!(
            text,
            r#"# Written by containerctl; changes are overwritten.
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "/var/lib/containerctl/registry"
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: "0.0.0.0:5002"
  tls:
    certificate: "/etc/containerctl/cluster/registry.crt"
    key: "/etc/containerctl/cluster/registry.key"
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  token:
    realm: "https://10.0.0.1:5001/v2/token"
    service: "containerctl-registry"
    issuer: "containerctl"
    rootcertbundle: "/var/lib/containerctl/cluster/registry-token.crt"
"#
        );
        c.tls_cert = None;
        c.storage_dir = "/tmp/a \"b\"".into();
        let text = render_config(&c);
        assert!(!text.contains("tls:"), "{text}");
        assert!(text.contains(r#"rootdirectory: "/tmp/a \"b\"""#), "{text}");
    }

    #[test]
    fn key_id_matches_libtrust() {
        // The algorithm of libtrust's keyIDFromCryptoKey on a fixed input, computed independently
        // (sha256 of "abc", first 30 bytes, base32, groups of 4).
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        let kid = libtrust_key_id(b"abc");
        assert_eq!(kid, "XJ4B:NP4P:AHH6:UQKB:IDPF:3LRC:EOYA:GYND:SYLX:VHFU:CD7W:D4QA");
    }

    #[test]
    fn generated_key_signs_verifiable_es256_tokens() {
        let (key_pem, cert_pem) = TokenSigner::generate().expect("generate");
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{key_pem}");
        assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----"), "{cert_pem}");
        let signer = TokenSigner::from_pem(&key_pem, "containerctl").expect("load");
        assert_eq!(signer.kid().len(), 59);
        assert_eq!(signer.kid().split(':').count(), 12);

        let want = vec![access("repository", "team/app", &["pull", "push"])];
        let token = signer.issue("alice", "reg", &want, 300).expect("issue");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(signer.kid()));

        let pair = KeyPair::from_pem(&key_pem).expect("pair");
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&["reg"]);
        v.set_issuer(&["containerctl"]);
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_ec_der(pair.public_key_raw()),
            &v,
        )
        .expect("valid token");
        let c = data.claims;
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["aud"], "reg");
        assert_eq!(
            c["access"],
            serde_json::json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
        );
        assert_eq!(c["exp"].as_u64().unwrap_or(0) - c["iat"].as_u64().unwrap_or(0), 300);
        assert_eq!(c["jti"].as_str().map(str::len), Some(32));
    }

    #[test]
    fn from_pem_refuses_other_keys() {
        assert!(matches!(TokenSigner::from_pem("not a key", "i"), Err(RegistryError::Key(_))));
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519");
        assert!(matches!(TokenSigner::from_pem(&ed.serialize_pem(), "i"), Err(RegistryError::Key(_))));
    }

    #[test]
    fn scopes_parse_and_ignore_unknown_types() {
        assert_eq!(
            parse_scope("repository:team/app:pull,push"),
            vec![access("repository", "team/app", &["pull", "push"])]
        );
        assert_eq!(
            parse_scope("repository:a:pull registry:catalog:* repository(plugin):p:pull foo:x:y bad"),
            vec![access("repository", "a", &["pull"]), access("registry", "catalog", &["*"])]
        );
        // A name with a port-like colon keeps everything up to the last colon.
        assert_eq!(
            parse_scope("repository:h:5000/a:pull,pull"),
            vec![access("repository", "h:5000/a", &["pull"])]
        );
        assert!(parse_scope("").is_empty());
        assert!(parse_scope("repository::pull").is_empty());
    }

    #[test]
    fn grants_pull_always_and_push_and_catalog_only_when_allowed() {
        let req = vec![
            access("repository", "a", &["pull", "push", "delete"]),
            access("repository", "b", &["*"]),
            access("registry", "catalog", &["*"]),
            access("repository", "c", &["push"]),
        ];
        assert_eq!(
            grant(&req, PushRight::All),
            vec![
                access("repository", "a", &["pull", "push"]),
                access("repository", "b", &["pull", "push"]),
                access("registry", "catalog", &["*"]),
                access("repository", "c", &["push"]),
            ]
        );
        assert_eq!(
            grant(&req, PushRight::None),
            vec![access("repository", "a", &["pull"]), access("repository", "b", &["pull"])]
        );
        // Repeated scopes for one repository merge.
        let twice = vec![access("repository", "a", &["pull"]), access("repository", "a", &["push"])];
        assert_eq!(grant(&twice, PushRight::All), vec![access("repository", "a", &["pull", "push"])]);
        // API tokens push only to staging repositories.
        let staged = vec![
            access("repository", "team/app", &["pull", "push"]),
            access("repository", "incoming/team/app", &["pull", "push"]),
            access("repository", "x/incoming/app", &["*"]),
            access("registry", "catalog", &["*"]),
        ];
        assert_eq!(
            grant(&staged, PushRight::Staging),
            vec![
                access("repository", "team/app", &["pull"]),
                access("repository", "incoming/team/app", &["pull", "push"]),
                access("repository", "x/incoming/app", &["pull"]),
                access("registry", "catalog", &["*"]),
            ]
        );
    }

    const CONFIG_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const LAYER: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn manifest(config: &str) -> Manifest {
        let text = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"digest":"{config}"}},"layers":[{{"digest":"{LAYER}"}}]}}"#
        );
        Manifest::parse(text.as_bytes()).expect("manifest")
    }

    #[test]
    fn manifests_name_their_digest_config_and_blobs() {
        let m = manifest(CONFIG_A);
        assert_eq!(m.config.as_deref(), Some(CONFIG_A));
        assert_eq!(m.blobs, vec![CONFIG_A.to_owned(), LAYER.to_owned()]);
        assert_eq!(m.media_type, "application/vnd.docker.distribution.manifest.v2+json");
        assert_eq!(m.digest, format!("sha256:{}", crate::digest::sha256_hex(&m.bytes)));
        assert!(Manifest::parse(b"{\"config\":{\"digest\":\"../x\"}}").is_err());
        assert!(Manifest::parse(b"nope").is_err());
    }

    #[test]
    fn tags_are_immutable() {
        let a = manifest(CONFIG_A);
        assert_eq!(check_tag("app", "1", None, CONFIG_A), TagCheck::Absent);
        assert_eq!(check_tag("app", "1", Some(&a), CONFIG_A), TagCheck::Same(a.digest.clone()));
        let b = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let TagCheck::Taken(m) = check_tag("app", "1", Some(&a), b) else { panic!("not refused") };
        assert!(m.contains("app:1") && m.contains(CONFIG_A) && m.contains(&a.digest) && m.contains(b), "{m}");
        assert!(taken_hint("app", "1").contains("new tag"));
    }

    #[test]
    fn token_response_carries_both_names() {
        let r = token_response("t", 300);
        assert_eq!((r["token"].as_str(), r["access_token"].as_str()), (Some("t"), Some("t")));
        assert_eq!(r["expires_in"], 300);
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
