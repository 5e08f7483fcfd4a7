//! Private registry credentials: `containerctl registry login` stores them, the runner sends the
//! one that applies to an image with every pull.
//!
//! They live in one file, /var/lib/containerctl/registries.json: mode 0600 in the 0700 state
//! directory, written only by containerctld (through `atomic_file`) and read by containerctld and
//! the runner, both root. A plain root-only file rather than an encrypted credential because the
//! runner, which must read it before every pull, runs sandboxed with a read-only file system and
//! no capability but CAP_DAC_READ_SEARCH; anyone who can read it is root already.
//!
//! Nothing in this module formats a password: [`Entry`]'s Debug leaves it out and the API's
//! answers are built from the other fields. Validation messages never quote a password either.
//!
//! Which credential applies to an image: the image is normalised as Docker does
//! (`busybox` → `docker.io/library/busybox`) and the longest stored `REGISTRY[/NAMESPACE]` that is
//! a prefix of it on a `/` boundary wins (`ghcr.io/org` applies to `ghcr.io/org/app`, not to
//! `ghcr.io/organisation/app`). The cluster registry's own credentials
//! (`runner::registry`) take precedence for the cluster registry's address.

use std::fmt;
use std::path::{Path, PathBuf};

use bollard::auth::DockerCredentials;
use serde::{Deserialize, Serialize};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "registries.json";
/// Docker Hub as REGISTRY is written and stored.
pub const DOCKER_HUB: &str = "docker.io";
/// What dockerd calls Docker Hub in a login and in X-Registry-Auth (`docker login` sends it).
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";
/// Other names of Docker Hub, stored as [`DOCKER_HUB`].
const DOCKER_HUB_ALIASES: &[&str] = &["index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"];
const MAX_REGISTRY: usize = 255;
const MAX_USERNAME: usize = 255;
const MAX_PASSWORD: usize = 8192;
/// The file format's version, written as `version`.
const FORMAT: u32 = 1;

/// The rule names of refusals, as messages show them (`(rule: registry name)`).
pub const RULE_REGISTRY: &str = "registry name";
pub const RULE_USERNAME: &str = "registry user";
pub const RULE_PASSWORD: &str = "registry password";

/// The file in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// A refused input: what is wrong and the rule's name. Never holds a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (rule: {rule})")]
pub struct Refusal {
    pub rule: &'static str,
    pub message: String,
}

fn refuse(rule: &'static str, message: String) -> Refusal {
    Refusal { rule, message }
}

/// `REGISTRY[/NAMESPACE]` as it is stored and matched: `host[:port]` (lowercase; Docker Hub as
/// `docker.io`) followed by zero or more lowercase path components.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegistryKey(String);

impl RegistryKey {
    /// Checks and canonicalises what a user typed. The input is hostile (it comes from the API):
    /// whitespace, control characters, schemes, `..`, empty parts, bad ports and names Docker
    /// would not read as a registry host are refused, naming the rule.
    pub fn parse(raw: &str) -> Result<RegistryKey, Refusal> {
        let bad = |why: &str| refuse(RULE_REGISTRY, format!("registry {raw:?} {why}"));
        if raw.is_empty() {
            return Err(refuse(RULE_REGISTRY, "the registry is empty: write HOST[:PORT][/NAMESPACE]".into()));
        }
        if raw.len() > MAX_REGISTRY {
            return Err(refuse(
                RULE_REGISTRY,
                format!("the registry is longer than {MAX_REGISTRY} characters"),
            ));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains whitespace or a control character"));
        }
        if raw.contains("://") {
            return Err(bad(
                "has a scheme: write HOST[:PORT][/NAMESPACE] without https:// (Docker chooses HTTPS)",
            ));
        }
        if raw.contains("..") {
            return Err(bad("contains .."));
        }
        if raw.contains('@') {
            return Err(bad("contains @: give the user with --username, not in the registry"));
        }
        let mut parts = raw.split('/');
        let host_port = parts.next().unwrap_or_default();
        let path: Vec<&str> = parts.collect();
        if host_port.is_empty() || path.iter().any(|p| p.is_empty()) {
            return Err(bad(
                "has an empty part: write HOST[:PORT][/NAMESPACE] with no leading, trailing or double /",
            ));
        }
        let (host, port) = split_port(host_port).map_err(|why| bad(&why))?;
        let host = host.to_ascii_lowercase();
        check_host(&host).map_err(|why| bad(&why))?;
        if port.is_none() && !host.contains('.') && host != "localhost" && !host.starts_with('[') {
            return Err(bad(&format!(
                "is not a registry host: Docker reads {host}/NAME as Docker Hub's docker.io/{host}/NAME; \
                 write a host with a dot or a port, or docker.io/{host} for that Docker Hub namespace"
            )));
        }
        for p in &path {
            check_component(p).map_err(|why| bad(&why))?;
        }
        let host = if port.is_none() && DOCKER_HUB_ALIASES.contains(&host.as_str()) {
            DOCKER_HUB.to_owned()
        } else {
            host
        };
        let mut key = match port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        for p in path {
            key.push('/');
            key.push_str(p);
        }
        Ok(RegistryKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `host[:port]`, without the namespace.
    pub fn host(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    /// What dockerd wants as `serveraddress` for a login and a pull.
    pub fn server_address(&self) -> &str {
        server_address(self.host())
    }
}

impl fmt::Display for RegistryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn server_address(host: &str) -> &str {
    if host == DOCKER_HUB {
        DOCKER_HUB_SERVER
    } else {
        host
    }
}

/// `host[:port]` → (host, port). An IPv6 address is written in brackets.
fn split_port(s: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => match &s[end + 1..] {
                "" => (s, None),
                rest => match rest.strip_prefix(':') {
                    Some(p) => (&s[..=end], Some(p)),
                    None => return Err("has text after the IPv6 address".into()),
                },
            },
            None => return Err("has an IPv6 address without its closing ]".into()),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("has port {p:?}: a port is a number from 1 to 65535")),
        },
    };
    Ok((host, port))
}

fn check_host(host: &str) -> Result<(), String> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ok = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return if ok { Ok(()) } else { Err("has a malformed IPv6 address".into()) };
    }
    if host.is_empty() {
        return Err("has no host".into());
    }
    for label in host.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "has host {host:?}: a host is DNS labels of letters, digits and - (not at either end), \
                 separated by dots"
            ));
        }
    }
    Ok(())
}

/// A repository path component as Docker accepts it: lowercase letters and digits, separated by
/// `.`, `_`, `__` or runs of `-`.
fn check_component(p: &str) -> Result<(), String> {
    let b = p.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = b.first().is_some_and(|&c| alnum(c))
        && b.last().is_some_and(|&c| alnum(c))
        && b.iter().all(|&c| alnum(c) || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "has namespace part {p:?}: a namespace is lowercase letters and digits separated by ., _ or -"
        ))
    }
}

/// Checks a user name for a registry login. Docker sends it in HTTP Basic authentication, where a
/// `:` would end it.
pub fn check_username(user: &str) -> Result<(), Refusal> {
    if user.is_empty() {
        return Err(refuse(RULE_USERNAME, "the user name is empty: give it with --username".into()));
    }
    if user.len() > MAX_USERNAME {
        return Err(refuse(RULE_USERNAME, format!("the user name is longer than {MAX_USERNAME} bytes")));
    }
    if user.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(refuse(RULE_USERNAME, "the user name contains whitespace or a control character".into()));
    }
    if user.contains(':') {
        return Err(refuse(
            RULE_USERNAME,
            "the user name contains ':', which HTTP Basic authentication cannot carry".into(),
        ));
    }
    Ok(())
}

/// Checks a password for a registry login. The message never quotes it.
pub fn check_password(password: &str) -> Result<(), Refusal> {
    if password.is_empty() {
        return Err(refuse(RULE_PASSWORD, "the password is empty: pass it on standard input".into()));
    }
    if password.len() > MAX_PASSWORD {
        return Err(refuse(RULE_PASSWORD, format!("the password is longer than {MAX_PASSWORD} bytes")));
    }
    if password.contains(['\0', '\n', '\r']) {
        return Err(refuse(
            RULE_PASSWORD,
            "the password contains a NUL or a line break (only one trailing newline is removed)".into(),
        ));
    }
    Ok(())
}

/// The repository of an image reference as Docker resolves it, without tag or digest:
/// `busybox:1` → `docker.io/library/busybox`, `user/app` → `docker.io/user/app`,
/// `Reg.Example:5000/app@sha256:…` → `reg.example:5000/app`.
pub fn repository(image: &str) -> String {
    let name = image.split('@').next().unwrap_or_default();
    let name = match name.rfind(':') {
        Some(colon) if name[colon..].find('/').is_none() => &name[..colon],
        _ => name,
    };
    let (domain, rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_ascii_lowercase(), rest)
        }
        _ => (DOCKER_HUB.to_owned(), name),
    };
    let domain = if DOCKER_HUB_ALIASES.contains(&domain.as_str()) { DOCKER_HUB.to_owned() } else { domain };
    if domain == DOCKER_HUB && !rest.contains('/') {
        format!("{domain}/library/{rest}")
    } else {
        format!("{domain}/{rest}")
    }
}

/// The registry host of an image (`docker.io` for Docker Hub): what a login needs.
pub fn registry_host(image: &str) -> String {
    let repo = repository(image);
    repo.split('/').next().unwrap_or(DOCKER_HUB).to_owned()
}

/// Whether the stored `key` applies to the normalised `repository`: equal, or a prefix ending at
/// a `/`.
fn covers(key: &str, repository: &str) -> bool {
    repository.strip_prefix(key).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether a message of dockerd about a pull (or a login) means the registry refused access:
/// no credential, a wrong one, or one without the right to the repository.
pub fn is_auth_refusal(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "pull access denied",
        "denied:",
        "access to the resource is denied",
        "incorrect username or password",
    ]
    .iter()
    .any(|s| m.contains(s))
}

/// One stored credential. Its Debug leaves the password out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The canonical `REGISTRY[/NAMESPACE]` (a [`RegistryKey`]).
    pub registry: String,
    pub username: String,
    password: String,
    /// When it was stored (the login), ms since the epoch.
    pub added_ms: i64,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("added_ms", &self.added_ms)
            .finish()
    }
}

impl Entry {
    /// A checked credential; the caller has verified it with the registry.
    pub fn new(key: &RegistryKey, username: &str, password: &str, added_ms: i64) -> Result<Entry, Refusal> {
        check_username(username)?;
        check_password(password)?;
        Ok(Entry {
            registry: key.as_str().to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
            added_ms,
        })
    }

    /// The registry host, what dockerd logs in to.
    pub fn host(&self) -> &str {
        self.registry.split('/').next().unwrap_or_default()
    }

    /// What dockerd gets in X-Registry-Auth (a pull, a Swarm service) or in a login.
    pub fn docker_credentials(&self) -> DockerCredentials {
        DockerCredentials {
            username: Some(self.username.clone()),
            password: Some(self.password.clone()),
            serveraddress: Some(server_address(self.host()).to_owned()),
            ..Default::default()
        }
    }

    /// The password, for the login request to dockerd only.
    pub fn password(&self) -> &str {
        &self.password
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    version: u32,
    registries: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a registry credential file: {detail}: fix or remove it (it is rewritten by `containerctl registry login`)")]
    Parse { path: PathBuf, detail: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The stored credentials, in the order of the file (sorted by registry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Store {
    entries: Vec<Entry>,
}

impl Store {
    /// Parses the file's text. Every entry must hold a canonical registry, a valid user name
    /// and password, and no registry may be there twice.
    pub fn parse(text: &str) -> Result<Store, String> {
        let file: FileFormat = serde_json::from_str(text).map_err(|e| {
            // serde_json quotes values in some messages: keep only where it went wrong.
            format!("malformed JSON at line {} column {}", e.line(), e.column())
        })?;
        if file.version != FORMAT {
            return Err(format!("format version {} is not {FORMAT}", file.version));
        }
        let mut store = Store::default();
        for e in file.registries {
            let key = RegistryKey::parse(&e.registry).map_err(|r| r.to_string())?;
            if key.as_str() != e.registry {
                return Err(format!("registry {:?} is not written as {key}", e.registry));
            }
            check_username(&e.username).map_err(|r| format!("{}: {r}", e.registry))?;
            check_password(&e.password).map_err(|r| format!("{}: {r}", e.registry))?;
            if store.get(&key).is_some() {
                return Err(format!("registry {key} is there twice"));
            }
            store.entries.push(e);
        }
        store.entries.sort_by(|a, b| a.registry.cmp(&b.registry));
        Ok(store)
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let file = FileFormat { version: FORMAT, registries: self.entries.clone() };
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, key: &RegistryKey) -> Option<&Entry> {
        self.entries.iter().find(|e| e.registry == key.as_str())
    }

    /// Adds `entry`, replacing a credential for the same registry; returns the one replaced.
    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        let old =
            self.entries.iter().position(|e| e.registry == entry.registry).map(|i| self.entries.remove(i));
        self.entries.push(entry);
        self.entries.sort_by(|a, b| a.registry.cmp(&b.registry));
        old
    }

    pub fn remove(&mut self, key: &RegistryKey) -> Option<Entry> {
        let i = self.entries.iter().position(|e| e.registry == key.as_str())?;
        Some(self.entries.remove(i))
    }

    /// The credential for `image`: the longest stored registry that covers its repository.
    pub fn lookup(&self, image: &str) -> Option<&Entry> {
        let repo = repository(image);
        self.entries.iter().filter(|e| covers(&e.registry, &repo)).max_by_key(|e| e.registry.len())
    }
}

/// Reads the store at `path`; a missing file is an empty store.
pub fn load(path: &Path) -> Result<Store, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Store::default()),
        Err(source) => return Err(StoreError::Read { path: path.to_owned(), source }),
    };
    Store::parse(&text).map_err(|detail| StoreError::Parse { path: path.to_owned(), detail })
}

/// Replaces the file at `path` with `store`, mode 0600, atomically.
pub fn save(path: &Path, store: &Store) -> Result<(), StoreError> {
    crate::atomic_file::write_private(path, store.render().as_bytes(), 0o600)
        .map_err(|source| StoreError::Write { path: path.to_owned(), source })
}

/// What dockerd answered to a login (`POST /auth`): accepted (with its status text), refused
/// (the registry said the credential is wrong), or failed otherwise (registry unreachable, TLS
/// not trusted, dockerd's own error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginAnswer {
    Accepted(String),
    Refused(String),
    Failed(String),
}

/// Classifies dockerd's answer to `POST /auth` (status and body).
pub fn login_answer(status: u16, body: &[u8]) -> LoginAnswer {
    #[derive(Deserialize)]
    struct Ok {
        #[serde(rename = "Status", default)]
        status: String,
    }
    #[derive(Deserialize)]
    struct Err {
        #[serde(default)]
        message: String,
    }
    if (200..300).contains(&status) {
        let text = serde_json::from_slice::<Ok>(body).map(|o| o.status).unwrap_or_default();
        return LoginAnswer::Accepted(if text.is_empty() { "Login Succeeded".into() } else { text });
    }
    let message = serde_json::from_slice::<Err>(body)
        .map(|e| e.message)
        .ok()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().chars().take(500).collect());
    let message = message.trim().to_owned();
    if status == 401 || is_auth_refusal(&message) {
        LoginAnswer::Refused(message)
    } else {
        LoginAnswer::Failed(format!("dockerd answered {status}: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        RegistryKey::parse(s).map(|k| k.to_string()).unwrap_or_else(|r| format!("refused: {r}"))
    }

    #[test]
    fn registry_keys_are_canonical() {
        assert_eq!(key("ghcr.io"), "ghcr.io");
        assert_eq!(key("GHCR.io/org"), "ghcr.io/org");
        assert_eq!(key("reg.example:5443/team/sub"), "reg.example:5443/team/sub");
        assert_eq!(key("localhost:5000"), "localhost:5000");
        assert_eq!(key("localhost"), "localhost");
        assert_eq!(key("10.0.0.1:5002"), "10.0.0.1:5002");
        assert_eq!(key("[::1]:5000"), "[::1]:5000");
        assert_eq!(key("docker.io"), "docker.io");
        assert_eq!(key("index.docker.io/me"), "docker.io/me");
        assert_eq!(key("registry-1.docker.io"), "docker.io");
        assert_eq!(key("my-registry:80"), "my-registry:80");
        let k = RegistryKey::parse("reg.example:5443/team").expect("valid");
        assert_eq!((k.host(), k.server_address()), ("reg.example:5443", "reg.example:5443"));
        let hub = RegistryKey::parse("docker.io/me").expect("valid");
        assert_eq!(hub.server_address(), DOCKER_HUB_SERVER);
    }

    #[test]
    fn hostile_registry_names_are_refused_naming_the_rule() {
        for (raw, why) in [
            ("", "is empty"),
            ("https://ghcr.io", "has a scheme"),
            ("ghcr.io ", "whitespace"),
            ("ghcr.io\n/x", "control character"),
            ("ghcr.io\t", "whitespace"),
            ("ghcr.io/../x", "contains .."),
            ("ghcr..io", "contains .."),
            ("ghcr.io/", "empty part"),
            ("/ghcr.io", "empty part"),
            ("ghcr.io//org", "empty part"),
            ("ghcr.io:0", "port"),
            ("ghcr.io:65536", "port"),
            ("ghcr.io:+5", "port"),
            ("ghcr.io:", "port"),
            ("-ghcr.io", "DNS labels"),
            ("gh_cr.io", "DNS labels"),
            ("ghcr.io/Org", "namespace"),
            ("ghcr.io/org-", "namespace"),
            ("ghcr.io/o%2e", "namespace"),
            ("user:pw@ghcr.io", "contains @"),
            ("myregistry", "is not a registry host"),
            ("[::1", "closing ]"),
            ("[zz]:5000", "IPv6"),
        ] {
            let r = RegistryKey::parse(raw).expect_err(raw);
            assert_eq!(r.rule, RULE_REGISTRY, "{raw}");
            assert!(r.message.contains(why), "{raw:?}: {r}");
            assert!(r.to_string().ends_with("(rule: registry name)"), "{r}");
        }
        assert!(RegistryKey::parse(&"a".repeat(300)).is_err());
    }

    #[test]
    fn images_normalise_as_docker_does() {
        assert_eq!(repository("busybox"), "docker.io/library/busybox");
        assert_eq!(repository("busybox:1.36"), "docker.io/library/busybox");
        assert_eq!(repository("user/app"), "docker.io/user/app");
        assert_eq!(repository("docker.io/user/app:2"), "docker.io/user/app");
        assert_eq!(repository("index.docker.io/library/nginx"), "docker.io/library/nginx");
        assert_eq!(repository("docker.io/nginx"), "docker.io/library/nginx");
        assert_eq!(repository("ghcr.io/org/app"), "ghcr.io/org/app");
        assert_eq!(repository("reg.example:5443/team/app:1@sha256:ab"), "reg.example:5443/team/app");
        assert_eq!(repository("reg.example:5443/app@sha256:ab"), "reg.example:5443/app");
        assert_eq!(repository("localhost/app"), "localhost/app");
        assert_eq!(repository("Reg/app"), "reg/app");
        assert_eq!(registry_host("busybox"), "docker.io");
        assert_eq!(registry_host("reg.example:5443/team/app:1"), "reg.example:5443");
    }

    fn store(keys: &[&str]) -> Store {
        let mut s = Store::default();
        for (i, k) in keys.iter().enumerate() {
            let key = RegistryKey::parse(k).expect("valid");
            s.insert(Entry::new(&key, &format!("user{i}"), "pw", 1).expect("valid"));
        }
        s
    }

    #[test]
    fn the_longest_prefix_on_a_component_boundary_wins() {
        let s = store(&[
            "ghcr.io",
            "ghcr.io/org",
            "ghcr.io/org/team",
            "docker.io",
            "docker.io/me",
            "reg.example:5443",
        ]);
        let user = |image: &str| s.lookup(image).map(|e| e.registry.clone());
        assert_eq!(user("ghcr.io/org/app").as_deref(), Some("ghcr.io/org"));
        assert_eq!(user("ghcr.io/organisation/app").as_deref(), Some("ghcr.io"));
        assert_eq!(user("ghcr.io/org/team/app").as_deref(), Some("ghcr.io/org/team"));
        assert_eq!(user("ghcr.io/org/teams/app").as_deref(), Some("ghcr.io/org"));
        assert_eq!(user("busybox").as_deref(), Some("docker.io"));
        assert_eq!(user("me/app").as_deref(), Some("docker.io/me"));
        assert_eq!(user("docker.io/me/app:1").as_deref(), Some("docker.io/me"));
        assert_eq!(user("meme/app").as_deref(), Some("docker.io"));
        assert_eq!(user("reg.example:5443/app:1").as_deref(), Some("reg.example:5443"));
        // Another port is another registry.
        assert_eq!(user("reg.example:5444/app"), None);
        assert_eq!(user("reg.example/app"), None);
        let only_ns = store(&["ghcr.io/org"]);
        assert!(only_ns.lookup("ghcr.io/organisation/app").is_none());
        assert!(only_ns.lookup("ghcr.io/other/app").is_none());
        assert!(only_ns.lookup("ghcr.io/org").is_some());
    }

    #[test]
    fn the_file_round_trips_and_replaces_by_registry() {
        let mut s = store(&["ghcr.io", "docker.io"]);
        let text = s.render();
        assert_eq!(Store::parse(&text).expect("parses"), s);
        assert!(text.contains("\"version\": 1"));
        let key = RegistryKey::parse("ghcr.io").expect("valid");
        let old = s.insert(Entry::new(&key, "other", "pw2", 2).expect("valid")).expect("replaced");
        assert_eq!(old.username, "user0");
        assert_eq!(s.entries().len(), 2);
        assert_eq!(s.get(&key).map(|e| e.username.as_str()), Some("other"));
        assert_eq!(s.entries()[0].registry, "docker.io", "sorted");
        assert!(s.remove(&key).is_some());
        assert!(s.remove(&key).is_none());
        assert_eq!(s.entries().len(), 1);
    }

    #[test]
    fn a_bad_file_is_refused_without_quoting_secrets() {
        let e = Store::parse("{\"version\": 1, \"registries\": [{\"registry\": \"ghcr.io\", \"username\": \"u\", \"password\": 42, \"added_ms\": 1}]}")
            .expect_err("password must be a string");
        assert!(!e.contains("42"), "{e}");
        let e = Store::parse("{\"version\": 1, \"registries\": [{\"registry\": \"GHCR.io\", \"username\": \"u\", \"password\": \"p\", \"added_ms\": 1}]}")
            .expect_err("not canonical");
        assert!(e.contains("ghcr.io"), "{e}");
        let twice = "{\"version\": 1, \"registries\": [{\"registry\": \"ghcr.io\", \"username\": \"u\", \"password\": \"p\", \"added_ms\": 1}, {\"registry\": \"ghcr.io\", \"username\": \"v\", \"password\": \"q\", \"added_ms\": 1}]}";
        assert!(Store::parse(twice).expect_err("twice").contains("twice"));
        assert!(Store::parse("{\"version\": 2, \"registries\": []}").is_err());
        assert!(Store::parse("{\"version\": 1, \"registries\": [], \"x\": 1}").is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let key = RegistryKey::parse("ghcr.io").expect("valid");
        let e = Entry::new(&key, "me", "hunter2-secret", 1).expect("valid");
        assert!(!format!("{e:?}").contains("hunter2"));
        assert!(!format!("{:?}", store(&["ghcr.io"])).contains("\"pw\""));
        let c = e.docker_credentials();
        assert_eq!(c.password.as_deref(), Some("hunter2-secret"));
        assert_eq!(c.serveraddress.as_deref(), Some("ghcr.io"));
        let hub =
            Entry::new(&RegistryKey::parse("docker.io/me").expect("valid"), "me", "p", 1).expect("valid");
        assert_eq!(hub.docker_credentials().serveraddress.as_deref(), Some(DOCKER_HUB_SERVER));
    }

    #[test]
    fn user_names_and_passwords_are_checked_without_quoting_them() {
        assert!(check_username("robot$ci").is_ok());
        for bad in ["", "a b", "a:b", "a\u{7}"] {
            assert_eq!(check_username(bad).map_err(|r| r.rule), Err(RULE_USERNAME), "{bad:?}");
        }
        assert!(check_password("p a ss:wörd?~>").is_ok());
        for bad in ["", "two\nlines", "nul\0", "cr\r"] {
            let r = check_password(bad).expect_err("refused");
            assert_eq!(r.rule, RULE_PASSWORD);
            assert!(bad.is_empty() || !r.message.contains(bad), "{r}");
        }
        assert!(check_password(&"x".repeat(MAX_PASSWORD + 1)).is_err());
    }

    #[test]
    fn dockerd_pull_refusals_are_recognised() {
        for m in [
            "Head \"https://reg:5443/v2/app/manifests/1\": no basic auth credentials",
            "Head \"https://reg:5443/v2/app/manifests/1\": unauthorized: authentication required",
            "pull access denied for me/app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
            "denied: permission_denied: read_package",
            "Get \"https://registry-1.docker.io/v2/\": unauthorized: incorrect username or password",
        ] {
            assert!(is_auth_refusal(m), "{m}");
        }
        for m in [
            "manifest for busybox:9 not found: manifest unknown",
            "Get \"https://reg:5443/v2/\": x509: certificate signed by unknown authority",
            "Get \"https://reg:5443/v2/\": dial tcp 10.0.0.1:5443: connect: connection refused",
        ] {
            assert!(!is_auth_refusal(m), "{m}");
        }
    }

    #[test]
    fn login_answers_are_classified() {
        assert_eq!(
            login_answer(200, br#"{"Status":"Login Succeeded","IdentityToken":""}"#),
            LoginAnswer::Accepted("Login Succeeded".into())
        );
        assert_eq!(
            login_answer(401, br#"{"message":"login attempt to https://reg:5443/v2/ failed with status: 401 Unauthorized"}"#),
            LoginAnswer::Refused("login attempt to https://reg:5443/v2/ failed with status: 401 Unauthorized".into())
        );
        assert_eq!(
            login_answer(500, br#"{"message":"Get \"https://registry-1.docker.io/v2/\": unauthorized: incorrect username or password"}"#),
            LoginAnswer::Refused("Get \"https://registry-1.docker.io/v2/\": unauthorized: incorrect username or password".into())
        );
        match login_answer(
            500,
            br#"{"message":"Get \"https://reg:5443/v2/\": x509: certificate signed by unknown authority"}"#,
        ) {
            LoginAnswer::Failed(m) => assert!(m.contains("x509") && m.contains("500"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(login_answer(502, b"bad gateway"), LoginAnswer::Failed(m) if m.contains("bad gateway"))
        );
    }
}
