//! `RawUnit` → `Unit`: every rule a unit file must follow, with a position for each violation.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::raw::{
    DurationValue, NumberValue, RawContainer, RawDeploy, RawHealth, RawService, RawUnit, SizeValue, S,
};
use super::{
    parse_duration, parse_size, Container, Deploy, Device, Health, Port, Protocol, Restart, Service, Unit,
    UnitName, Volume, VolumeSource,
};
use crate::diag::Diagnostic;

/// Suffixes that make an `after`/`requires` entry a systemd unit name rather than a NAME.
const SYSTEMD_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".target",
    ".mount",
    ".automount",
    ".device",
    ".path",
    ".timer",
    ".slice",
    ".scope",
    ".swap",
];

pub(super) fn parse(name: &str, file: &str, text: &str) -> Result<Unit, Vec<Diagnostic>> {
    let name = UnitName::new(name).map_err(|m| {
        vec![Diagnostic::file_level(
            file,
            format!("file name: {m}"),
            Some("rename the file to NAME.toml".into()),
        )]
    })?;
    let raw: RawUnit = toml::from_str(text).map_err(|e| vec![toml_error(file, text, &e)])?;
    let mut v = Validator { file, text, errors: Vec::new() };
    let unit = v.unit(name, raw);
    match unit {
        Some(unit) if v.errors.is_empty() => Ok(unit),
        _ => Err(v.errors),
    }
}

/// Turns a TOML/serde error into a diagnostic with a friendlier message where we can.
fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> Diagnostic {
    let span = e.span().unwrap_or(0..0);
    let message = e.message().trim_end_matches('\n').to_owned();
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    if message.starts_with("unknown field") {
        if let Some((unknown, expected)) = quoted.split_first() {
            let table = table_of(expected);
            let hint = closest(unknown, expected)
                .map(|c| format!("did you mean `{c}`?"))
                .or_else(|| Some(format!("known keys{}: {}", table_label(table), expected.join(", "))));
            return Diagnostic::at(
                file,
                text,
                span,
                format!("unknown key `{unknown}`{}", table_label(table)),
                hint,
            );
        }
    }
    let (message, hint) = if message.contains("DurationValue") {
        ("expected a duration like \"2s\", \"1m30s\" or a number of seconds".to_owned(), None)
    } else if message.contains("SizeValue") {
        ("expected a size like \"512M\" or a number of bytes".to_owned(), None)
    } else if message.contains("NumberValue") {
        ("expected a number like 1.5".to_owned(), None)
    } else if message.contains("expected a sequence") {
        (message, Some("write a list, like [\"a\", \"b\"]".to_owned()))
    } else if message.starts_with("invalid type") && message.ends_with("expected a string") {
        (message, Some("quote the value, like version = \"1.4\"".to_owned()))
    } else {
        (message, None)
    };
    Diagnostic::at(file, text, span, message, hint)
}

fn table_of(expected: &[&str]) -> &'static str {
    let has = |k: &str| expected.contains(&k);
    if has("image") {
        "container"
    } else if has("replicas") {
        "deploy"
    } else if has("restart") {
        "service"
    } else if has("cmd") {
        "health"
    } else {
        ""
    }
}

fn table_label(table: &str) -> String {
    if table.is_empty() {
        String::new()
    } else {
        format!(" in [{table}]")
    }
}

/// The candidate most like `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<&str>) {
        let d = Diagnostic::at(self.file, self.text, span, message, hint.map(str::to_owned));
        self.errors.push(d);
    }

    fn unit(&mut self, name: UnitName, raw: RawUnit) -> Option<Unit> {
        let description = raw.description.and_then(|d| {
            let span = d.span();
            let d = d.into_inner();
            if d.chars().any(char::is_control) || d.chars().count() > 256 {
                self.error(span, "description must be one line of at most 256 characters", None);
                None
            } else {
                Some(d)
            }
        });
        let Some(container) = raw.container else {
            self.error(
                0..0,
                "missing table [container]",
                Some("add a [container] table with at least image and version"),
            );
            return None;
        };
        let container_span = container.span();
        let swarm_refusals = SwarmRefusals::of(container.get_ref());
        let container = self.container(container_span, container.into_inner());
        let service = match raw.service {
            Some(s) => self.service(&name, s.into_inner()),
            None => Some(Service::default()),
        };
        let health = match raw.health {
            Some(h) => {
                let span = h.span();
                self.health(span, h.into_inner()).map(Some)
            }
            None => Some(None),
        };
        let deploy = match raw.deploy {
            Some(d) => {
                let deploy = self.deploy(d.into_inner());
                self.refuse_for_swarm(swarm_refusals);
                deploy.map(Some)
            }
            None => Some(None),
        };
        Some(Unit {
            name,
            description,
            container: container?,
            service: service?,
            health: health?,
            deploy: deploy?,
        })
    }

    fn required(
        &mut self,
        table_span: &Range<usize>,
        value: Option<S<String>>,
        key: &str,
        hint: &str,
    ) -> Option<S<String>> {
        if value.is_none() {
            let header = self.text[table_span.clone()].lines().next().unwrap_or("").len();
            self.error(
                table_span.start..table_span.start + header,
                format!("missing required key `{key}` in [container]"),
                Some(hint),
            );
        }
        value
    }

    fn container(&mut self, span: Range<usize>, raw: RawContainer) -> Option<Container> {
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
            let key_ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !key_ok {
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
            self.error(
                span,
                format!("image `{s}` includes the tag `{tag}`"),
                Some(&format!("write image = \"{repo}\" and version = \"{tag}\"")),
            );
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
        let valid = v.len() <= 128
            && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && v.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
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

    fn device(&mut self, d: S<String>) -> Option<Device> {
        let span = d.span();
        let parts: Vec<&str> = d.get_ref().split(':').collect();
        let (host, container, perms) = match parts.as_slice() {
            [h] => (*h, *h, "rwm"),
            [h, c] => (*h, *c, "rwm"),
            [h, c, p] => (*h, *c, *p),
            _ => ("", "", ""),
        };
        let perms_ok = !perms.is_empty()
            && perms.chars().all(|c| "rwm".contains(c))
            && perms.chars().collect::<std::collections::BTreeSet<_>>().len() == perms.len();
        if !clean_absolute(host) || !clean_absolute(container) || !perms_ok {
            self.error(
                span,
                format!("device `{}` is not HOST[:CONTAINER[:PERMISSIONS]]", d.get_ref()),
                Some("paths are absolute without `..`, permissions are some of r, w, m: \"/dev/ttyUSB0:/dev/ttyS0:rw\""),
            );
            return None;
        }
        Some(Device {
            host: PathBuf::from(host),
            container: PathBuf::from(container),
            permissions: perms.to_owned(),
        })
    }

    fn volume(&mut self, v: S<String>) -> Option<Volume> {
        let span = v.span();
        let parts: Vec<&str> = v.get_ref().split(':').collect();
        let (source, rest): (Option<VolumeSource>, &[&str]) = match parts.as_slice() {
            ["shared", name, rest @ ..] if !name.starts_with('/') => {
                (valid_volume_name(name).then(|| VolumeSource::Shared((*name).to_owned())), rest)
            }
            [src, rest @ ..] if src.starts_with('/') => {
                (clean_absolute(src).then(|| VolumeSource::Host(PathBuf::from(src))), rest)
            }
            [src, rest @ ..] => {
                (valid_volume_name(src).then(|| VolumeSource::Named((*src).to_owned())), rest)
            }
            [] => (None, &[]),
        };
        let (target, read_only) = match rest {
            [t] => (Some(*t), Some(false)),
            [t, "ro"] => (Some(*t), Some(true)),
            [t, "rw"] => (Some(*t), Some(false)),
            _ => (None, None),
        };
        match (source, target.filter(|t| clean_absolute(t)), read_only) {
            (Some(source), Some(target), Some(read_only)) => {
                Some(Volume { source, target: PathBuf::from(target), read_only })
            }
            _ => {
                self.error(
                    span,
                    format!("volume `{}` is not SOURCE:TARGET[:ro|rw]", v.get_ref()),
                    Some("SOURCE is an absolute host path, a volume name, or shared:NAME; TARGET is an absolute path without `..`"),
                );
                None
            }
        }
    }

    fn port(&mut self, p: S<String>) -> Option<Port> {
        let span = p.span();
        let parsed = parse_port(p.get_ref());
        if parsed.is_none() {
            self.error(
                span,
                format!("port `{}` is not [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp|sctp]", p.get_ref()),
                Some("for example \"8080:80\" or \"127.0.0.1:9000:9000/udp\"; ports are 1 to 65535"),
            );
        }
        parsed
    }

    fn duration(
        &mut self,
        value: Option<S<DurationValue>>,
        default: Duration,
        key: &str,
    ) -> Option<Duration> {
        self.duration_min(value, default, key, Duration::ZERO)
    }

    fn duration_min(
        &mut self,
        value: Option<S<DurationValue>>,
        default: Duration,
        key: &str,
        min: Duration,
    ) -> Option<Duration> {
        let Some(value) = value else { return Some(default) };
        let span = value.span();
        let parsed = match value.into_inner() {
            DurationValue::Text(t) => parse_duration(&t),
            DurationValue::Seconds(s) => parse_duration(&s.to_string()),
        };
        match parsed {
            Ok(d) if d < min => {
                let min = super::systemd_duration(min);
                self.error(span, format!("{key} must be at least {min}"), None);
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(span, format!("{key}: {e}"), None);
                None
            }
        }
    }

    fn service(&mut self, name: &UnitName, raw: RawService) -> Option<Service> {
        let default = Service::default();
        let restart = match raw.restart {
            None => Some(default.restart),
            Some(r) => match r.get_ref().as_str() {
                "no" => Some(Restart::No),
                "on-failure" => Some(Restart::OnFailure),
                "always" => Some(Restart::Always),
                other => {
                    let hint = match other {
                        "unless-stopped" => Some(
                            "systemd owns restarts: use \"always\" and stop the unit to keep it down"
                                .to_owned(),
                        ),
                        _ => closest(other, &["no", "on-failure", "always"])
                            .map(|c| format!("did you mean \"{c}\"?")),
                    };
                    self.error(
                        r.span(),
                        format!("restart = \"{other}\" is not one of \"no\", \"on-failure\", \"always\""),
                        hint.as_deref(),
                    );
                    None
                }
            },
        };
        let restart_sec = self.duration(raw.restart_sec, default.restart_sec, "restart_sec");
        let stop_timeout = self.duration(raw.stop_timeout, default.stop_timeout, "stop_timeout");
        let after = self.dependencies(name, raw.after, "after");
        let requires = self.dependencies(name, raw.requires, "requires");
        Some(Service {
            restart: restart?,
            restart_sec: restart_sec?,
            stop_timeout: stop_timeout?,
            after: after?,
            requires: requires?,
            enabled: raw.enabled.map_or(default.enabled, S::into_inner),
            protected: raw.protected.map_or(default.protected, S::into_inner),
        })
    }

    fn dependencies(&mut self, own: &UnitName, list: Vec<S<String>>, key: &str) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut ok = true;
        for item in list {
            let s = item.get_ref();
            if SYSTEMD_SUFFIXES.iter().any(|suffix| s.ends_with(suffix)) {
                let valid =
                    s.len() <= 255 && s.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c));
                if *s == own.service() {
                    self.error(item.span(), format!("{key}: a unit cannot depend on itself"), None);
                    ok = false;
                } else if valid {
                    out.push(s.clone());
                } else {
                    self.error(item.span(), format!("{key}: `{s}` is not a valid systemd unit name"), None);
                    ok = false;
                }
            } else {
                match UnitName::new(s) {
                    Ok(n) if &n == own => {
                        self.error(item.span(), format!("{key}: a unit cannot depend on itself"), None);
                        ok = false;
                    }
                    Ok(n) => out.push(n.service()),
                    Err(e) => {
                        self.error(
                            item.span(),
                            format!("{key}: {e}"),
                            Some("name another unit (NAME) or a systemd unit (like network-online.target)"),
                        );
                        ok = false;
                    }
                }
            }
        }
        ok.then_some(out)
    }

    fn health(&mut self, span: Range<usize>, raw: RawHealth) -> Option<Health> {
        let cmd = match raw.cmd {
            Some(c) if !c.get_ref().is_empty() && !c.get_ref()[0].is_empty() => Some(c.into_inner()),
            Some(c) => {
                self.error(c.span(), "health cmd is empty", Some("give the command and its arguments, like [\"wget\", \"-q\", \"-O-\", \"http://localhost/\"]"));
                None
            }
            None => {
                let header = self.text[span.clone()].lines().next().unwrap_or("").len();
                self.error(
                    span.start..span.start + header,
                    "missing required key `cmd` in [health]",
                    Some("add cmd = [\"PROGRAM\", \"ARG\"...]"),
                );
                None
            }
        };
        let interval =
            self.duration_min(raw.interval, Duration::from_secs(30), "interval", Duration::from_secs(1));
        let timeout =
            self.duration_min(raw.timeout, Duration::from_secs(10), "timeout", Duration::from_millis(100));
        let start_period = self.duration(raw.start_period, Duration::ZERO, "start_period");
        let retries = match raw.retries {
            None => Some(3),
            Some(r) if (1..=100).contains(r.get_ref()) => Some(*r.get_ref() as u32),
            Some(r) => {
                self.error(r.span(), format!("retries = {} is out of range (1 to 100)", r.get_ref()), None);
                None
            }
        };
        Some(Health {
            cmd: cmd?,
            interval: interval?,
            timeout: timeout?,
            retries: retries?,
            start_period: start_period?,
        })
    }

    fn deploy(&mut self, raw: RawDeploy) -> Option<Deploy> {
        let mut count = |value: Option<S<i64>>, key: &str| match value {
            None => Some(None),
            Some(r) if (1..=i64::from(Deploy::MAX_REPLICAS)).contains(r.get_ref()) => {
                Some(u32::try_from(*r.get_ref()).ok())
            }
            Some(r) => {
                self.error(
                    r.span(),
                    format!("{key} = {} is out of range (1 to {})", r.get_ref(), Deploy::MAX_REPLICAS),
                    None,
                );
                None
            }
        };
        let replicas = count(raw.replicas, "replicas");
        let max_replicas_per_node = count(raw.max_replicas_per_node, "max_replicas_per_node");
        let mut constraints = Vec::new();
        let mut ok = true;
        for c in raw.constraints {
            match check_constraint(c.get_ref()) {
                Ok(()) => constraints.push(c.get_ref().trim().to_owned()),
                Err(why) => {
                    self.error(
                        c.span(),
                        format!("constraint `{}` {why}", c.get_ref().escape_debug()),
                        Some(
                            "write KEY==VALUE or KEY!=VALUE with KEY node.id, node.hostname, node.role, \
                             node.platform.os, node.platform.arch, node.labels.NAME or engine.labels.NAME, \
                             like \"node.role==worker\" or \"node.labels.zone==b\"",
                        ),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        Some(Deploy {
            replicas: replicas?.unwrap_or(1),
            constraints,
            max_replicas_per_node: max_replicas_per_node?,
        })
    }

    /// What a Swarm service cannot do, each reported at the key that asks for it.
    fn refuse_for_swarm(&mut self, r: SwarmRefusals) {
        const ONE_HOST: &str = "remove [deploy] to run this unit on one host";
        if let Some(span) = r.devices {
            self.error(
                span,
                "Swarm services cannot map host devices",
                Some(&format!("{ONE_HOST}, or remove the devices")),
            );
        }
        if let Some(span) = r.privileged {
            self.error(
                span,
                "Swarm services cannot run in privileged mode",
                Some(&format!("{ONE_HOST}, or remove privileged")),
            );
        }
        if let Some(span) = r.host_network {
            self.error(
                span,
                "Swarm services cannot use the host network",
                Some(&format!(
                    "{ONE_HOST}, or remove network = \"host\" (Swarm publishes ports through its ingress network)"
                )),
            );
        }
        for (span, ip) in r.port_addresses {
            self.error(
                span,
                format!("Swarm publishes ports on every node's addresses and cannot bind one to {ip}"),
                Some(&format!(
                    "write HOST_PORT:CONTAINER_PORT[/PROTOCOL] without the address, or {ONE_HOST}"
                )),
            );
        }
    }
}

/// Positions of `[container]` settings that a unit with `[deploy]` may not use.
#[derive(Default)]
struct SwarmRefusals {
    devices: Option<Range<usize>>,
    privileged: Option<Range<usize>>,
    host_network: Option<Range<usize>>,
    port_addresses: Vec<(Range<usize>, String)>,
}

impl SwarmRefusals {
    fn of(c: &RawContainer) -> Self {
        SwarmRefusals {
            devices: c.devices.as_ref().filter(|d| !d.get_ref().is_empty()).map(S::span),
            privileged: c.privileged.as_ref().filter(|p| *p.get_ref()).map(S::span),
            host_network: c.network.as_ref().filter(|n| n.get_ref() == "host").map(S::span),
            port_addresses: c
                .ports
                .iter()
                .filter_map(|p| Some((p.span(), parse_port(p.get_ref())?.host_ip?)))
                .collect(),
        }
    }
}

/// Keys Swarm accepts in placement constraints, besides `node.labels.*` and `engine.labels.*`.
const CONSTRAINT_KEYS: &[&str] =
    &["node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch"];

/// Checks the shape `KEY==VALUE` / `KEY!=VALUE` that Swarm's scheduler parses.
fn check_constraint(c: &str) -> Result<(), String> {
    let (key, value) = match (c.split_once("=="), c.split_once("!=")) {
        (Some(eq), None) => eq,
        (None, Some(ne)) => ne,
        _ => return Err("is not KEY==VALUE or KEY!=VALUE".into()),
    };
    let (key, value) = (key.trim(), value.trim());
    let label = ["node.labels.", "engine.labels."]
        .iter()
        .find_map(|p| key.strip_prefix(p))
        .is_some_and(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
    if !label && !CONSTRAINT_KEYS.contains(&key) {
        return Err(format!("has an unknown key `{key}`"));
    }
    let value_ok = !value.is_empty()
        && value.chars().all(|c| c.is_ascii_alphanumeric() || ":-_. *()?+[]\\^$|/".contains(c));
    if !value_ok {
        return Err("has an empty value or one with characters Swarm does not accept".into());
    }
    if key == "node.role" && value != "manager" && value != "worker" {
        return Err(format!("compares node.role with `{value}`, which is neither manager nor worker"));
    }
    Ok(())
}

impl Default for Service {
    fn default() -> Self {
        Service {
            restart: Restart::OnFailure,
            restart_sec: Duration::from_secs(2),
            stop_timeout: Duration::from_secs(10),
            after: Vec::new(),
            requires: Vec::new(),
            enabled: true,
            protected: false,
        }
    }
}

/// Absolute, and no `.`/`..` components or empty segments that could escape or confuse.
fn clean_absolute(p: &str) -> bool {
    p.starts_with('/')
        && !p.contains('\0')
        && !p.contains("//")
        && Path::new(p).components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !p.split('/').any(|s| s == "." || s == "..")
}

fn valid_volume_name(n: &str) -> bool {
    n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.len() <= 128
        && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// `repo:tag` → (repo, tag), taking care that `host:port/repo` has no tag.
fn split_tag(image: &str) -> Option<(&str, &str)> {
    let last = image.rsplit('/').next().unwrap_or(image);
    let colon = last.rfind(':')?;
    let at = image.len() - last.len() + colon;
    Some((&image[..at], &image[at + 1..]))
}

fn valid_repository(image: &str) -> bool {
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

fn parse_port(s: &str) -> Option<Port> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, "tcp")) => (spec, Protocol::Tcp),
        Some((spec, "udp")) => (spec, Protocol::Udp),
        Some((spec, "sctp")) => (spec, Protocol::Sctp),
        Some(_) => return None,
        None => (s, Protocol::Tcp),
    };
    let (host_ip, ports) = if let Some(rest) = spec.strip_prefix('[') {
        let (ip, rest) = rest.split_once("]:")?;
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        (Some(ip.to_owned()), rest)
    } else {
        match spec.split(':').collect::<Vec<_>>().as_slice() {
            [ip, _, _] => {
                ip.parse::<std::net::Ipv4Addr>().ok()?;
                (Some((*ip).to_owned()), &spec[ip.len() + 1..])
            }
            _ => (None, spec),
        }
    };
    let (host, container) = ports.split_once(':')?;
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    Some(Port { host_ip, host_port: port(host)?, container_port: port(container)?, protocol })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn errors(text: &str) -> Vec<Diagnostic> {
        parse("web", "/etc/containerctl/units/web.toml", text).expect_err("should be rejected")
    }

    const MIN: &str = "[container]\nimage = \"ctl-test/busybox\"\nversion = \"1\"\n";

    #[test]
    fn minimal_unit_gets_defaults() {
        let u = parse("web", "web.toml", MIN).expect("valid");
        assert_eq!(u.container.reference(), "ctl-test/busybox:1");
        assert_eq!(u.service, Service::default());
        assert!(u.service.enabled);
        assert_eq!(u.health, None);
    }

    #[test]
    fn full_example_from_the_contract() {
        let text = r#"
description = "USB camera streamer"

[container]
image   = "registry.example:5002/camera"
version = "1.4.2"
digest  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
args    = ["--fps", "30"]
env     = { RUST_LOG = "info" }
devices = ["/dev/video0", "/dev/ttyUSB0:/dev/ttyS0:rw"]
volumes = ["/srv/camera:/data", "shared:camera:/archive:ro", "cache:/cache"]
ports   = ["8080:80", "127.0.0.1:9000:9000/udp", "[::1]:7000:7000"]
user = "1000:1000"
workdir = "/data"
read_only = true
init = true
capabilities = ["net_admin", "CAP_SYS_TIME"]
network = "host"
memory = "256M"
cpus = 0.5

[service]
restart      = "on-failure"
restart_sec  = "2s"
stop_timeout = "10s"
after        = ["db", "network-online.target"]
requires     = ["db"]
enabled      = true
protected    = false

[health]
cmd      = ["wget", "-q", "-O-", "http://localhost/health"]
interval = "10s"
retries  = 3
"#;
        let u = parse("camera", "camera.toml", text).expect("valid");
        assert_eq!(u.description.as_deref(), Some("USB camera streamer"));
        assert_eq!(u.container.devices[1].container, PathBuf::from("/dev/ttyS0"));
        assert_eq!(u.container.devices[1].permissions, "rw");
        assert_eq!(u.container.devices[0].permissions, "rwm");
        assert_eq!(u.container.volumes[1].source, VolumeSource::Shared("camera".into()));
        assert!(u.container.volumes[1].read_only);
        assert_eq!(u.container.volumes[2].source, VolumeSource::Named("cache".into()));
        assert_eq!(u.container.ports[1].protocol, Protocol::Udp);
        assert_eq!(u.container.ports[1].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(u.container.ports[2].host_ip.as_deref(), Some("::1"));
        assert_eq!(u.container.memory, Some(256 << 20));
        assert!(u.container.init && u.container.read_only && !u.container.privileged);
        assert_eq!(u.container.capabilities, ["NET_ADMIN", "SYS_TIME"]);
        assert_eq!(u.container.network.as_deref(), Some("host"));
        assert_eq!(u.container.nano_cpus, Some(500_000_000));
        assert_eq!(u.service.after, ["containerctl@db.service", "network-online.target"]);
        assert_eq!(u.service.requires, ["containerctl@db.service"]);
        let h = u.health.expect("health set");
        assert_eq!((h.interval, h.timeout, h.retries), (Duration::from_secs(10), Duration::from_secs(10), 3));
    }

    #[test]
    fn unknown_key_names_line_column_and_suggests() {
        let e = errors("[container]\nimgae = \"x\"\nversion = \"1\"\n");
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].line, e[0].column), (2, 1));
        assert_eq!(e[0].message, "unknown key `imgae` in [container]");
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `image`?"));
        assert!(e[0].to_string().starts_with("/etc/containerctl/units/web.toml:2:1: "));
    }

    #[test]
    fn unknown_top_level_table() {
        let e = errors("[contianer]\nimage = \"x\"\n");
        assert_eq!(e[0].message, "unknown key `contianer`");
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `container`?"));
    }

    #[test]
    fn missing_version_points_at_the_table() {
        let e = errors("description = \"x\"\n[container]\nimage = \"a/b\"\n");
        assert_eq!(e[0].message, "missing required key `version` in [container]");
        assert_eq!(e[0].line, 2);
        assert!(e[0].hint.as_deref().unwrap_or("").contains("pinned"));
    }

    #[test]
    fn missing_container_table() {
        let e = errors("description = \"x\"\n");
        assert_eq!(e[0].message, "missing table [container]");
    }

    #[test]
    fn tag_in_image_is_refused_with_the_fix() {
        let e = errors("[container]\nimage = \"registry:5002/cam:1.2\"\nversion = \"1\"\n");
        assert_eq!(e[0].message, "image `registry:5002/cam:1.2` includes the tag `1.2`");
        assert_eq!(e[0].hint.as_deref(), Some("write image = \"registry:5002/cam\" and version = \"1.2\""));
        assert_eq!((e[0].line, e[0].column), (2, 9));
    }

    #[test]
    fn several_errors_are_all_reported() {
        let text = format!("{MIN}devices = [\"dev/video0\"]\nports = [\"80\"]\n[service]\nrestart = \"on_failure\"\nstop_timeout = \"10x\"\n");
        let e = errors(&text);
        let messages: Vec<_> = e.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(e.len(), 4, "{messages:?}");
        assert!(messages[0].starts_with("device `dev/video0`"));
        assert!(messages[1].starts_with("port `80`"));
        assert!(messages[2].starts_with("restart = \"on_failure\""));
        assert_eq!(e[2].hint.as_deref(), Some("did you mean \"on-failure\"?"));
        assert!(messages[3].contains("unknown time unit `x`"));
        assert_eq!(e[3].line, 8);
    }

    #[test]
    fn path_tricks_are_refused() {
        for v in [
            "/srv/../etc:/data",
            "/srv:/data/../..",
            "/srv:data",
            "shared:../x:/d",
            "/srv//x:/d",
            "/srv:/d:rx",
        ] {
            let e = errors(&format!("{MIN}volumes = [\"{v}\"]\n"));
            assert!(e[0].message.starts_with("volume"), "{v}: {e:?}");
        }
        let e = errors(&format!("{MIN}devices = [\"/dev/../etc/shadow\"]\n"));
        assert!(e[0].message.starts_with("device"));
    }

    #[test]
    fn type_errors_are_explained() {
        let e = errors("[container]\nimage = \"a\"\nversion = 1.4\n");
        assert_eq!(e[0].line, 3);
        assert!(e[0].hint.as_deref().unwrap_or("").contains("quote"), "{e:?}");
        let e = errors(&format!("{MIN}[service]\nrestart_sec = true\n"));
        assert!(e[0].message.contains("duration"), "{e:?}");
    }

    #[test]
    fn latest_is_not_a_pin() {
        for v in ["latest", "Latest"] {
            let e = errors(&format!("[container]\nimage = \"a\"\nversion = \"{v}\"\n"));
            assert!(e[0].message.contains("not a pinned version"), "{v}");
        }
    }

    #[test]
    fn dependencies_map_names_and_pass_systemd_units() {
        let e = errors(&format!("{MIN}[service]\nrequires = [\"web\"]\n"));
        assert!(e[0].message.contains("itself"));
        let e = errors(&format!("{MIN}[service]\nafter = [\"containerctl@web.service\"]\n"));
        assert!(e[0].message.contains("itself"));
        let e = errors(&format!("{MIN}[service]\nafter = [\"Bad Name\"]\n"));
        assert!(e[0].message.starts_with("after: `Bad Name` is not a valid unit name"));
    }

    #[test]
    fn health_needs_a_command() {
        let e = errors(&format!("{MIN}[health]\ninterval = \"5s\"\n"));
        assert_eq!(e[0].message, "missing required key `cmd` in [health]");
        let e = errors(&format!("{MIN}[health]\ncmd = []\n"));
        assert_eq!(e[0].message, "health cmd is empty");
        let e = errors(&format!("{MIN}[health]\ncmd = [\"true\"]\ninterval = \"500ms\"\n"));
        assert_eq!((e[0].line, e[0].message.as_str()), (6, "interval must be at least 1s"));
        let e = errors(&format!("{MIN}[health]\ncmd = [\"true\"]\nretries = 0\n"));
        assert!(e[0].message.starts_with("retries = 0"));
    }

    #[test]
    fn deploy_defaults_and_values() {
        let u = parse("web", "web.toml", &format!("{MIN}[deploy]\n")).expect("valid");
        assert_eq!(u.deploy, Some(Deploy { replicas: 1, constraints: vec![], max_replicas_per_node: None }));
        let text = format!(
            "{MIN}[deploy]\nreplicas = 3\nconstraints = [\"node.role==worker\", \"node.hostname != a\", \
             \"node.labels.zone==b\", \"engine.labels.disk==ssd\"]\nmax_replicas_per_node = 2\n"
        );
        let d = parse("web", "web.toml", &text).expect("valid").deploy.expect("deploy");
        assert_eq!(d.replicas, 3);
        assert_eq!(d.max_replicas_per_node, Some(2));
        assert_eq!(d.constraints[1], "node.hostname != a");
        assert_eq!(parse("web", "web.toml", MIN).expect("valid").deploy, None);
    }

    #[test]
    fn deploy_values_are_checked() {
        let e = errors(&format!("{MIN}[deploy]\nreplicas = 0\n"));
        assert_eq!((e[0].line, e[0].column), (5, 12));
        assert_eq!(e[0].message, "replicas = 0 is out of range (1 to 1000)");
        let e = errors(&format!("{MIN}[deploy]\nmax_replicas_per_node = 1001\n"));
        assert!(e[0].message.starts_with("max_replicas_per_node = 1001"));
        let e = errors(&format!("{MIN}[deploy]\nreplica = 2\n"));
        assert_eq!(e[0].message, "unknown key `replica` in [deploy]");
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `replicas`?"));
        for bad in
            ["node.role=worker", "role==worker", "node.role==boss", "node.labels.==x", "node.id==", "a==b!=c"]
        {
            let e = errors(&format!("{MIN}[deploy]\nconstraints = [\"{bad}\"]\n"));
            assert!(e[0].message.starts_with(&format!("constraint `{bad}`")), "{bad}: {e:?}");
            assert_eq!(e[0].line, 5);
            assert!(e[0].hint.as_deref().unwrap_or("").contains("node.role==worker"));
        }
    }

    #[test]
    fn deploy_refuses_what_swarm_cannot_do() {
        let text = format!("{MIN}devices = [\"/dev/video0\"]\n[deploy]\nreplicas = 2\n");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].line, e[0].column), (4, 11));
        assert_eq!(e[0].message, "Swarm services cannot map host devices");
        assert_eq!(
            e[0].hint.as_deref(),
            Some("remove [deploy] to run this unit on one host, or remove the devices")
        );
        // Without [deploy] the same container is fine.
        assert!(parse("web", "web.toml", &format!("{MIN}devices = [\"/dev/video0\"]\n")).is_ok());

        let e = errors(&format!("{MIN}privileged = true\nnetwork = \"host\"\n[deploy]\n"));
        let messages: Vec<_> = e.iter().map(|d| (d.line, d.message.as_str())).collect();
        assert_eq!(
            messages,
            [
                (4, "Swarm services cannot run in privileged mode"),
                (5, "Swarm services cannot use the host network")
            ]
        );
        let e = errors(&format!("{MIN}ports = [\"8080:80\", \"127.0.0.1:81:81\"]\n[deploy]\n"));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].line, e[0].column), (4, 21));
        assert!(e[0].message.contains("cannot bind one to 127.0.0.1"));
        // What Swarm can do passes: capabilities, named networks, privileged = false.
        let ok = format!(
            "{MIN}capabilities = [\"NET_ADMIN\"]\nnetwork = \"backend\"\nprivileged = false\nports = [\"8080:80/udp\"]\n[deploy]\n"
        );
        assert!(parse("web", "web.toml", &ok).is_ok());
    }

    #[test]
    fn repositories() {
        for ok in ["busybox", "ctl-test/busybox", "localhost:5002/a/b", "registry.example/x_y.z", "a__b"] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in ["", "Busybox", "a//b", "-a", "a-", "host:99999/x", "a/B"] {
            assert!(!valid_repository(bad), "{bad}");
        }
    }

    #[test]
    fn invalid_file_name_is_reported() {
        let e = parse("Web", "/x/Web.toml", MIN).expect_err("bad name");
        assert_eq!(e[0].line, 0);
        assert!(e[0].message.starts_with("file name: `Web` is not a valid unit name"));
    }
}
