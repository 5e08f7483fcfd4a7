//! Registry credentials: a login is verified by dockerd (`POST /auth`, with Docker's own TLS
//! trust of /etc/docker/certs.d) before it is stored; a test verifies a stored one again; a
//! logout removes it. "Last used" comes from Docker's pull events ([`Daemon::registry_pulled`]).
//! Every change is audited with the registry and the user, never the password.

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{Daemon, OpError};
use crate::credentials::{self, Entry, LoginAnswer, RegistryKey, Store};
use crate::policy::Caller;
use crate::time::now_ms;
use crate::wire::{RegistryInfo, RegistryRemoved, RegistryTested};

/// Serialises changes of registries.json, so that two logins never lose one another's entry.
static WRITE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long dockerd may take to answer a login (it asks the registry, which may not answer).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

impl Daemon {
    fn registries_path(&self) -> PathBuf {
        credentials::path(&self.config.state_dir)
    }

    fn registry_store(&self) -> Result<Store, OpError> {
        credentials::load(&self.registries_path()).map_err(|e| OpError::Internal(e.to_string()))
    }

    fn registry_info(&self, e: &Entry) -> Result<RegistryInfo, OpError> {
        let u = self.db().registry_use(&e.registry)?;
        Ok(RegistryInfo {
            registry: e.registry.clone(),
            username: e.username.clone(),
            added_ms: e.added_ms,
            verified_ms: u.verified_ms,
            last_used_ms: u.last_used_ms,
        })
    }

    /// The stored credentials, without their passwords.
    pub fn registries(&self) -> Result<Vec<RegistryInfo>, OpError> {
        self.registry_store()?.entries().iter().map(|e| self.registry_info(e)).collect()
    }

    /// Logs in to `registry` through dockerd and stores the credential if the registry accepts
    /// it (replacing one stored for the same registry). A refusal stores nothing.
    pub async fn registry_login(
        &self,
        caller: &Caller,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<RegistryInfo, OpError> {
        let key = parse_key(registry)?;
        credentials::check_username(username).map_err(|r| OpError::InvalidInput(r.to_string()))?;
        credentials::check_password(password).map_err(|r| OpError::InvalidInput(r.to_string()))?;
        if crate::runner::registry::cluster_registry().as_deref() == Some(key.host()) {
            return Err(OpError::Conflict(format!(
                "{} is this cluster's registry: members pull from it with their node credentials, \
                 no login is needed (rule: cluster registry)",
                key.host()
            )));
        }
        let _write = WRITE_LOCK.lock().await;
        // A store that cannot be read refuses before the registry is asked.
        let mut store = self.registry_store()?;
        let what = format!("{key} (user {username})");
        let answer = match self.dockerd_login(&key, username, password).await {
            Ok(LoginAnswer::Accepted(status)) => status,
            Ok(LoginAnswer::Refused(m)) => {
                self.audit(caller, "registry login", None, None, None, &format!("refused: {what}: {m}"));
                return Err(OpError::RegistryRefused(format!(
                    "registry {} refused the credential of {username}: {m}; nothing was stored",
                    key.host()
                )));
            }
            Ok(LoginAnswer::Failed(m)) | Err(m) => {
                self.audit(caller, "registry login", None, None, None, &format!("failed: {what}: {m}"));
                return Err(OpError::RegistryFailed(format!(
                    "cannot verify the credential with registry {}: {m}; nothing was stored",
                    key.host()
                )));
            }
        };
        let at = now_ms();
        let entry =
            Entry::new(&key, username, password, at).map_err(|r| OpError::InvalidInput(r.to_string()))?;
        let replaced = store.insert(entry.clone());
        credentials::save(&self.registries_path(), &store).map_err(|e| OpError::Internal(e.to_string()))?;
        self.db().registry_logged_in(key.as_str(), at)?;
        let note = match replaced {
            Some(old) => format!(", replacing the credential of {}", old.username),
            None => String::new(),
        };
        self.audit(caller, "registry login", None, None, None, &format!("ok: {what}: {answer}{note}"));
        self.registry_info(&entry)
    }

    /// Asks the registry again whether it accepts the stored credential for `registry`.
    pub async fn registry_test(&self, caller: &Caller, registry: &str) -> Result<RegistryTested, OpError> {
        let key = parse_key(registry)?;
        let entry = self.registry_store()?.get(&key).cloned().ok_or_else(|| not_stored(&key))?;
        let what = format!("{key} (user {})", entry.username);
        match self.dockerd_login(&key, &entry.username, entry.password()).await {
            Ok(LoginAnswer::Accepted(status)) => {
                self.db().registry_verified(key.as_str(), now_ms())?;
                self.audit(caller, "registry test", None, None, None, &format!("ok: {what}: {status}"));
                Ok(RegistryTested {
                    registry: key.to_string(),
                    username: entry.username,
                    ok: true,
                    message: status,
                })
            }
            Ok(LoginAnswer::Refused(m)) => {
                self.audit(caller, "registry test", None, None, None, &format!("refused: {what}: {m}"));
                Err(OpError::RegistryRefused(format!(
                    "registry {} refuses the stored credential of {} for {key}: {m}; log in again with \
                     `containerctl registry login {key} --username USER --password-stdin`",
                    key.host(),
                    entry.username
                )))
            }
            Ok(LoginAnswer::Failed(m)) | Err(m) => {
                self.audit(caller, "registry test", None, None, None, &format!("failed: {what}: {m}"));
                Err(OpError::RegistryFailed(format!("cannot ask registry {} about {key}: {m}", key.host())))
            }
        }
    }

    /// Removes the stored credential for `registry`.
    pub async fn registry_logout(&self, caller: &Caller, registry: &str) -> Result<RegistryRemoved, OpError> {
        let key = parse_key(registry)?;
        let _write = WRITE_LOCK.lock().await;
        let mut store = self.registry_store()?;
        let removed = store.remove(&key).ok_or_else(|| not_stored(&key))?;
        credentials::save(&self.registries_path(), &store).map_err(|e| OpError::Internal(e.to_string()))?;
        self.db().registry_forget(key.as_str())?;
        self.audit(
            caller,
            "registry logout",
            None,
            None,
            None,
            &format!("ok: {key} (user {})", removed.username),
        );
        Ok(RegistryRemoved { registry: key.to_string(), removed: true })
    }

    /// Docker reported a pull of `image` at `at_ms`: the stored credential that applies to it (if
    /// any, and if it was stored before the pull) was used then. A pull of the cluster registry
    /// uses the node credential instead.
    pub(super) fn registry_pulled(&self, image: &str, at_ms: i64) {
        let host = credentials::registry_host(image);
        if crate::runner::registry::cluster_registry().as_deref() == Some(host.as_str()) {
            return;
        }
        let store = match credentials::load(&self.registries_path()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("{e}");
                return;
            }
        };
        let Some(entry) = store.lookup(image).filter(|e| e.added_ms <= at_ms) else { return };
        if let Err(e) = self.db().registry_used(&entry.registry, at_ms) {
            tracing::warn!("cannot record the use of the credential for {}: {e}", entry.registry);
        }
    }

    /// dockerd's `POST /auth`: the login `docker login` makes, with dockerd's TLS trust for the
    /// registry. bollard has no call for it, so it is one request over dockerd's socket.
    async fn dockerd_login(
        &self,
        key: &RegistryKey,
        username: &str,
        password: &str,
    ) -> Result<LoginAnswer, String> {
        let docker = self.docker().ok_or_else(|| {
            "dockerd is not reachable (a login is verified by dockerd): see systemctl status docker"
                .to_owned()
        })?;
        let v = docker.client_version();
        let host = crate::runner::docker_host();
        let Some(socket) = host.strip_prefix("unix://") else {
            return Err(format!("DOCKER_HOST={host} is not a unix:// socket"));
        };
        let uri: hyper::Uri =
            hyperlocal::Uri::new(socket, &format!("/v{}.{}/auth", v.major_version, v.minor_version)).into();
        let body = serde_json::json!({
            "username": username,
            "password": password,
            "serveraddress": key.server_address(),
        });
        let request = hyper::Request::post(uri)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| format!("cannot build the login request: {e}"))?;
        let client: Client<_, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(hyperlocal::UnixConnector);
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| format!("cannot reach dockerd at {socket}: {e}"))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("lost dockerd's answer: {e}"))?
                .to_bytes();
            Ok::<_, String>(credentials::login_answer(status, &bytes))
        };
        tokio::time::timeout(LOGIN_TIMEOUT, exchange).await.map_err(|_| {
            format!(
                "no answer within {} s (is the registry reachable from this host?)",
                LOGIN_TIMEOUT.as_secs()
            )
        })?
    }
}

fn parse_key(registry: &str) -> Result<RegistryKey, OpError> {
    RegistryKey::parse(registry).map_err(|r| OpError::InvalidInput(r.to_string()))
}

fn not_stored(key: &RegistryKey) -> OpError {
    OpError::NotFound(format!("no stored credential for {key}: see containerctl registry list"))
}
