//! The `[container]` table: what to run (image, version, digest) and how (arguments, environment,
//! user, limits, capabilities, network). Its devices, volumes and ports are checked in `host`.

use std::collections::BTreeMap;
use std::ops::Range;

use super::host::{clean_absolute, valid_volume_name};
use super::Validator;
use crate::unit::raw::{NumberValue, RawContainer, SizeValue, S};
use crate::unit::{parse_size, Container};

impl Validator<'_> {
    /// `entrypoint`: like `args`, strings without NUL bytes; an empty list clears the image's.
    pub(super) fn entrypoint(&mut self, raw: Vec<S<String>>) -> Option<Vec<String>> {
        let mut ok = true;
        let mut out = Vec::with_capacity(raw.len());
        for a in raw {
            if a.get_ref().contains('\0') {
                self.error(a.span(), "entrypoint element contains a NUL byte", None);
                ok = false;
            }
            out.push(a.into_inner());
        }
        ok.then_some(out)
    }

    pub(super) fn container(&mut self, span: Range<usize>, raw: RawContainer) -> Option<Container> {
        let image = self.required(&span, raw.image, "image", "add image = \"REPOSITORY\" (no tag)");
        let version = self.required(
            &span,
            raw.version,
            "version",
            "add version = \"TAG\": every image is pinned to a version",
        );
        let image = image.and_then(|i| self.image(i));
        let version = version.and_then(|v| self.version(v));
        let digest = match raw.digest {
            Some(d) => {
                let ok = d.get_ref().strip_prefix("sha256:").is_some_and(|h| {
                    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                });
                if ok {
                    Some(Some(d.into_inner()))
                } else {
                    self.error(
                        d.span(),
                        format!("digest `{}` is not sha256:<64 lowercase hex digits>", d.get_ref()),
                        Some("copy it from `docker image inspect --format '{{.Id}}' IMAGE:VERSION`"),
                    );
                    None
                }
            }
            None => Some(None),
        };
        let mut ok = true;
        let mut args = Vec::new();
        for a in raw.args {
            if a.get_ref().contains('\0') {
                self.error(a.span(), "argument contains a NUL byte", None);
                ok = false;
            }
            args.push(a.into_inner());
        }
        let mut env = BTreeMap::new();
        for (k, v) in raw.env {
            if !super::secrets::valid_env_name(&k) {
                self.error(
                    v.span(),
                    format!("environment variable name `{}` is not valid", k.escape_debug()),
                    Some("use letters, digits and _, not starting with a digit"),
                );
                ok = false;
            } else if v.get_ref().contains('\0') {
                self.error(v.span(), format!("value of `{k}` contains a NUL byte"), None);
                ok = false;
            }
            env.insert(k, v.into_inner());
        }
        let devices: Vec<_> = raw
            .devices
            .map(S::into_inner)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|d| self.device(d))
            .collect();
        let volumes: Vec<_> = raw.volumes.into_iter().filter_map(|d| self.volume(d)).collect();
        let ports: Vec<_> = raw.ports.into_iter().filter_map(|d| self.port(d)).collect();
        let user = raw.user.and_then(|u| {
            let valid = !u.get_ref().is_empty()
                && u.get_ref().split(':').count() <= 2
                && u.get_ref().split(':').all(|p| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                });
            if valid {
                Some(u.into_inner())
            } else {
                self.error(
                    u.span(),
                    format!("user `{}` is not USER or USER:GROUP (names or numeric ids)", u.get_ref()),
                    None,
                );
                ok = false;
                None
            }
        });
        let workdir = raw.workdir.and_then(|w| {
            if clean_absolute(w.get_ref()) {
                Some(w.into_inner())
            } else {
                self.error(
                    w.span(),
                    format!("workdir `{}` must be an absolute path without `..`", w.get_ref()),
                    None,
                );
                ok = false;
                None
            }
        });
        let memory = match raw.memory {
            Some(m) => {
                let span = m.span();
                let parsed = match m.into_inner() {
                    SizeValue::Text(t) => parse_size(&t),
                    SizeValue::Bytes(b) => {
                        u64::try_from(b).map_err(|_| "a size cannot be negative".to_owned())
                    }
                };
                match parsed {
                    Ok(b) if b >= 6 * 1024 * 1024 => Some(Some(b)),
                    Ok(_) => {
                        self.error(span, "memory must be at least 6M (Docker's minimum)", None);
                        None
                    }
                    Err(e) => {
                        self.error(span, e, None);
                        None
                    }
                }
            }
            None => Some(None),
        };
        let nano_cpus = match raw.cpus {
            Some(c) => {
                let span = c.span();
                let value = match c.into_inner() {
                    NumberValue::Number(n) => Ok(n),
                    NumberValue::Text(t) => {
                        t.trim().parse::<f64>().map_err(|_| format!("`{t}` is not a number"))
                    }
                };
                match value {
                    Ok(n) if n > 0.0 && n <= 1024.0 => Some(Some((n * 1e9).round() as u64)),
                    Ok(n) => {
                        self.error(
                            span,
                            format!("cpus = {n} is out of range (more than 0, at most 1024)"),
                            None,
                        );
                        None
                    }
                    Err(e) => {
                        self.error(span, e, Some("write cpus = 1.5"));
                        None
                    }
                }
            }
            None => Some(None),
        };
        let read_only = raw.read_only.map(S::into_inner).unwrap_or(false);
        let init = raw.init.map(S::into_inner).unwrap_or(false);
        let privileged = raw.privileged.map(S::into_inner).unwrap_or(false);
        let no_new_privileges = raw.no_new_privileges.map(S::into_inner).unwrap_or(true);
        let mut capabilities = Vec::new();
        for cap in raw.capabilities.map(S::into_inner).unwrap_or_default() {
            let name = cap.get_ref().trim_start_matches("CAP_").to_ascii_uppercase();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') || name == "ALL" {
                self.error(
                    cap.span(),
                    format!("capability `{}` is not a capability name", cap.get_ref()),
                    Some("name one capability like NET_ADMIN; use privileged = true for all of them"),
                );
                ok = false;
            } else if !capabilities.contains(&name) {
                capabilities.push(name);
            }
        }
        let network = raw.network.and_then(|n| {
            if valid_volume_name(n.get_ref()) {
                Some(n.into_inner())
            } else {
                self.error(
                    n.span(),
                    format!("network `{}` is not bridge, host, none or a network name", n.get_ref()),
                    None,
                );
                ok = false;
                None
            }
        });
        if !ok {
            return None;
        }
        Some(Container {
            image: image?,
            version: version?,
            digest: digest?,
            args,
            env,
            devices,
            volumes,
            ports,
            user,
            workdir,
            read_only,
            init,
            privileged,
            no_new_privileges,
            capabilities,
            network,
            memory: memory?,
            nano_cpus: nano_cpus?,
        })
    }

    fn image(&mut self, image: S<String>) -> Option<String> {
        let span = image.span();
        let s = image.into_inner();
        if let Some((repo, tag)) = split_tag(&s) {
            self.error(span, format!("image `{s}` includes the tag `{tag}`"), Some(&tag_hint(repo, tag)));
            return None;
        }
        if s.contains('@') {
            self.error(
                span,
                format!("image `{s}` includes a digest"),
                Some("move it to digest = \"sha256:...\""),
            );
            return None;
        }
        if !valid_repository(&s) {
            self.error(
                span,
                format!("image `{s}` is not a valid repository name"),
                Some("use [HOST[:PORT]/]path/name with lowercase letters, digits and . _ -"),
            );
            return None;
        }
        Some(s)
    }

    fn version(&mut self, version: S<String>) -> Option<String> {
        let span = version.span();
        let v = version.into_inner();
        if !valid_tag(&v) {
            self.error(
                span,
                format!("version `{v}` is not a valid image tag"),
                Some("use letters, digits, _ . and -, at most 128 characters"),
            );
            None
        } else if v.eq_ignore_ascii_case("latest") {
            self.error(
                span,
                "version `latest` is not a pinned version",
                Some("name the exact tag you tested, like version = \"1.4.2\""),
            );
            None
        } else {
            Some(v)
        }
    }
}

fn valid_tag(v: &str) -> bool {
    v.len() <= 128
        && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The fix for `image = "REPO:TAG"`, naming only an image and a version that would be accepted.
fn tag_hint(repo: &str, tag: &str) -> String {
    let repo = if valid_repository(repo) {
        Some(repo.to_owned())
    } else {
        Some(repo.to_ascii_lowercase()).filter(|r| valid_repository(r))
    };
    let image = match repo {
        Some(r) => format!("image = \"{r}\""),
        None => "the repository in image ([HOST[:PORT]/]path/name with lowercase letters, digits and . _ -)"
            .to_owned(),
    };
    if valid_tag(tag) && !tag.eq_ignore_ascii_case("latest") {
        format!("write {image} and version = \"{tag}\"")
    } else {
        format!("write {image} and the exact tag you tested in version, like version = \"1.4.2\"")
    }
}

/// `repo:tag` → (repo, tag), taking care that `host:port/repo` has no tag.
fn split_tag(image: &str) -> Option<(&str, &str)> {
    let last = image.rsplit('/').next().unwrap_or(image);
    let colon = last.rfind(':')?;
    let at = image.len() - last.len() + colon;
    Some((&image[..at], &image[at + 1..]))
}

pub(super) fn valid_repository(image: &str) -> bool {
    let mut parts: Vec<&str> = image.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            let (host, port) = first.split_once(':').unwrap_or((first, "1"));
            let host_ok =
                !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
            if !host_ok || !port_ok {
                return false;
            }
            parts.remove(0);
        }
    }
    !parts.is_empty()
        && image.len() <= 255
        && parts.iter().all(|p| {
            let b = p.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
                && b[b.len() - 1].is_ascii_lowercase() | b[b.len() - 1].is_ascii_digit()
                && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c))
        })
}
