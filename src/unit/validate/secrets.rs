//! `[container]` `secrets` and `env_secrets`: which secrets the container gets, by NAME. The
//! values are not in the file; the runner reads them at each start (see `crate::secrets`).

use std::collections::BTreeMap;
use std::path::Path;

use super::Validator;
use crate::secrets::SecretName;
use crate::unit::raw::S;
use crate::unit::{Container, SecretRefs};

const NAME_HINT: &str =
    "name a secret as `containerctl secret list` shows it: 1-64 characters of [A-Za-z0-9][A-Za-z0-9_.-]*";

impl Validator<'_> {
    /// The secret references, checked against the rest of the container (`None` when it was not
    /// valid itself: the names are still checked).
    pub(super) fn secrets(
        &mut self,
        files: Vec<S<String>>,
        env: BTreeMap<String, S<String>>,
        container: Option<&Container>,
    ) -> Option<SecretRefs> {
        let mut ok = true;
        let mut refs = SecretRefs::default();
        for f in files {
            let span = f.span();
            match SecretName::new(f.get_ref()) {
                Ok(name) if refs.files.contains(&name) => {
                    self.error(span, format!("secret `{name}` is listed twice in secrets"), None);
                    ok = false;
                }
                Ok(name) => {
                    let target = name.mount_path();
                    if container.is_some_and(|c| c.volumes.iter().any(|v| v.target == Path::new(&target))) {
                        self.error(
                            span,
                            format!("secret `{name}` is mounted at {target}, where a volume is mounted too"),
                            Some("mount the volume elsewhere: /run/secrets/NAME is the secret's file"),
                        );
                        ok = false;
                    }
                    refs.files.push(name);
                }
                Err(e) => {
                    self.error(span, format!("secrets: {e}"), Some(NAME_HINT));
                    ok = false;
                }
            }
        }
        for (var, name) in env {
            let span = name.span();
            if !valid_env_name(&var) {
                self.error(
                    span.clone(),
                    format!("environment variable name `{}` is not valid", var.escape_debug()),
                    Some("use letters, digits and _, not starting with a digit"),
                );
                ok = false;
            } else if container.is_some_and(|c| c.env.contains_key(&var)) {
                self.error(
                    span.clone(),
                    format!("`{var}` is set in both env and env_secrets"),
                    Some(&format!("remove {var} from env: its value comes from the secret")),
                );
                ok = false;
            }
            match SecretName::new(name.get_ref()) {
                Ok(secret) => {
                    refs.env.insert(var, secret);
                }
                Err(e) => {
                    self.error(span, format!("env_secrets.{var}: {e}"), Some(NAME_HINT));
                    ok = false;
                }
            }
        }
        ok.then_some(refs)
    }
}

/// An environment variable's name: letters, digits and `_`, not starting with a digit.
pub(super) fn valid_env_name(k: &str) -> bool {
    k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
