//! `containerctl import compose`: one unit per Compose service.
//!
//! Every key is either converted, reported as a note when dropping it changes nothing a unit
//! can express (`container_name`: containerctl names containers itself), or reported as an error
//! with its line and column and why. Units come out only when there is no error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::draft::Draft;
use super::interpolate::{self, interpolate};
use super::yaml::{self, Key, Node, Value};
use super::{Imported, Outcome, Source};
use crate::diag::Diagnostic;

mod keys;
use keys::{
    depends_on, deploy, env_files, environment, healthcheck, image, list, long_device, networks, ports,
    restart, secrets, volume,
};
pub use keys::{dotenv_vars, parse_env_file};

/// Where the Compose file comes from and what it may read.
pub struct Input<'a> {
    /// The file name shown in diagnostics (`compose.yaml`, or `pasted compose file`).
    pub file: &'a str,
    pub text: &'a str,
    /// The project directory (the file's directory) when the file is on disk: relative bind
    /// mounts and env_file paths are resolved against it. None for a pasted file.
    pub dir: Option<&'a Path>,
    /// Variables for interpolation: the environment, then `.env` (the environment wins).
    pub vars: &'a BTreeMap<String, String>,
    /// Reads an env_file (the path as written, resolved by the caller); Err says why not.
    pub read_env_file: &'a dyn Fn(&str) -> Result<String, String>,
    /// Unit names are PREFIX-SERVICE; None: the project name (`name:`, else the directory).
    pub prefix: Option<&'a str>,
}

struct Conv<'a> {
    input: &'a Input<'a>,
    errors: Vec<Diagnostic>,
    notes: Vec<Diagnostic>,
    unset: interpolate::Unset,
}

impl Conv<'_> {
    fn error(&mut self, span: &std::ops::Range<usize>, message: impl Into<String>, hint: Option<&str>) {
        self.errors.push(Diagnostic::at(
            self.input.file,
            self.input.text,
            span.clone(),
            message,
            hint.map(str::to_owned),
        ));
    }

    fn note(&mut self, span: &std::ops::Range<usize>, message: impl Into<String>) {
        self.notes.push(Diagnostic::at(self.input.file, self.input.text, span.clone(), message, None));
    }

    /// A scalar after interpolation; errors are reported and give None.
    fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        let Some(raw) = n.scalar() else {
            self.error(&n.span, format!("{what} must be a string, not {}", n.kind()), None);
            return None;
        };
        if !matches!(n.value, Value::Str(_)) {
            return Some(raw);
        }
        match interpolate(&raw, self.input.vars, &mut self.unset) {
            Ok(v) => Some(v),
            Err(interpolate::Error::Required { var, message }) => {
                self.error(
                    &n.span,
                    format!("variable {var} is required: {message}"),
                    Some("set it in the environment or in .env"),
                );
                None
            }
            Err(interpolate::Error::Syntax(m)) => {
                self.error(&n.span, format!("interpolation: {m}"), Some("write a literal $ as $$"));
                None
            }
        }
    }

    /// A list of strings, or (where Compose allows it) one string split like a shell would not:
    /// Compose splits `command: a b` on spaces with shell quoting rules.
    fn string_list(&mut self, n: &Node, what: &str, split_string: bool) -> Option<Vec<String>> {
        match &n.value {
            Value::Seq(items) => {
                let mut out = Vec::new();
                for i in items {
                    out.push(self.string(i, what)?);
                }
                Some(out)
            }
            Value::Str(_) if split_string => {
                let s = self.string(n, what)?;
                match shell_words(&s) {
                    Ok(w) => Some(w),
                    Err(m) => {
                        self.error(
                            &n.span,
                            format!("{what}: {m}"),
                            Some("write it as a list: [\"prog\", \"arg\"]"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.error(&n.span, format!("{what} must be a list, not {}", n.kind()), None);
                None
            }
        }
    }

    fn bool(&mut self, n: &Node, what: &str) -> Option<bool> {
        match &n.value {
            Value::Bool(b) => Some(*b),
            Value::Str(_) => match self.string(n, what)?.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                other => {
                    self.error(&n.span, format!("{what} must be true or false, not `{other}`"), None);
                    None
                }
            },
            _ => {
                self.error(&n.span, format!("{what} must be true or false, not {}", n.kind()), None);
                None
            }
        }
    }

    fn int(&mut self, n: &Node, what: &str) -> Option<i64> {
        let s = self.string(n, what)?;
        match s.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                self.error(&n.span, format!("{what} must be a whole number, not `{s}`"), None);
                None
            }
        }
    }
}

/// Converts a Compose file. Diagnostics name the file, line and column.
pub fn convert(input: &Input<'_>) -> Outcome {
    let mut conv = Conv { input, errors: Vec::new(), notes: Vec::new(), unset: Vec::new() };
    let units = match yaml::parse(input.text) {
        Ok(root) => convert_root(&mut conv, &root),
        Err(e) => {
            conv.error(&(e.at..e.at), format!("not valid YAML: {}", e.message), None);
            Vec::new()
        }
    };
    for var in std::mem::take(&mut conv.unset) {
        conv.notes.push(Diagnostic::file_level(
            input.file,
            format!("variable {var} is not set: an empty string was used, as Compose does"),
            Some("set it in the environment or in .env, or give a default: ${VAR:-value}".into()),
        ));
    }
    Outcome::new(input.file, input.text, units, conv.errors, conv.notes)
}

const TOP_KEYS: &[&str] =
    &["version", "name", "services", "volumes", "networks", "secrets", "configs", "include"];

fn convert_root(conv: &mut Conv<'_>, root: &Node) -> Vec<Imported> {
    if !matches!(root.value, Value::Map(_)) {
        conv.error(
            &root.span,
            format!("a Compose file is a mapping with services:, not {}", root.kind()),
            None,
        );
        return Vec::new();
    }
    for (k, v) in root.entries() {
        match k.name.as_str() {
            "version" => conv.note(&k.span, "version: is obsolete in Compose and ignored"),
            "include" => conv.error(&k.span, "include: is not supported", Some("import each included file by itself")),
            "configs" if !v.entries().is_empty() => {
                conv.error(&k.span, "configs: is not supported", Some("store the file as a secret (containerctl secret set) and list it in the service's secrets"))
            }
            name if name.starts_with("x-") || TOP_KEYS.contains(&name) => {}
            name => conv.error(&k.span, format!("unknown top-level key {name}"), Some("Compose files have services, volumes, networks, secrets, name")),
        }
    }
    let project = project_name(conv, root, conv.input.prefix);
    let prefix = conv.input.prefix.map(str::to_owned).unwrap_or_else(|| project.clone());
    let Some(services) = root.get("services").filter(|s| !s.entries().is_empty()) else {
        conv.error(&root.span, "the file has no services", None);
        return Vec::new();
    };
    let top = Top::read(conv, root, &project);
    let names: BTreeMap<String, String> = services
        .entries()
        .iter()
        .map(|(k, _)| (k.name.clone(), format!("{prefix}-{}", k.name.to_ascii_lowercase())))
        .collect();
    let mut units = Vec::new();
    for (key, svc) in services.entries() {
        let name = &names[&key.name];
        if let Err(e) = crate::unit::UnitName::new(name) {
            conv.error(
                &key.span,
                format!("service {} would be unit {name:?}, which is not a valid unit name: {e}", key.name),
                Some("choose another --prefix"),
            );
            continue;
        }
        if let Some(draft) = service(conv, key, svc, &names, &top) {
            units.push(Imported {
                name: name.clone(),
                text: draft.to_toml(),
                source: Source {
                    service: key.name.clone(),
                    location: Diagnostic::at(conv.input.file, conv.input.text, key.span.clone(), "", None)
                        .location(),
                },
                draft,
            });
        }
    }
    order_by_dependencies(conv, services, &names, units)
}

/// The project name: `name:`, else the directory's name, lowercased to what Compose allows.
fn project_name(conv: &mut Conv<'_>, root: &Node, prefix: Option<&str>) -> String {
    let raw = match root.get("name") {
        Some(n) => conv.string(n, "name").unwrap_or_default(),
        None => conv
            .input
            .dir
            .and_then(|d| d.file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let name: String = raw
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let name = name.trim_start_matches(['-', '_']).to_owned();
    if name.is_empty() {
        // Named volumes still need a project: the prefix stands in.
        if let Some(p) = prefix {
            return p.to_owned();
        }
        let span = root.get("name").map_or(0..0, |n| n.span.clone());
        conv.error(
            &span,
            "no project name: the file has no name: and no directory to take one from",
            Some("give --prefix P, or add name: to the file"),
        );
    }
    name
}

/// The top-level volumes, networks and secrets services refer to.
struct Top {
    /// Compose volume key → the Docker volume's real name (`PROJECT_KEY` unless `name:` or
    /// `external:`), so the unit mounts the data Compose made.
    volumes: BTreeMap<String, String>,
    networks: BTreeMap<String, String>,
    secrets: BTreeMap<String, (Node, String)>,
}

impl Top {
    fn read(conv: &mut Conv<'_>, root: &Node, project: &str) -> Top {
        let names = |key: &str, conv: &mut Conv<'_>| {
            let mut out = BTreeMap::new();
            for (k, v) in root.get(key).map(Node::entries).unwrap_or_default() {
                let external = v.get("external").and_then(|e| conv.bool(e, "external")).unwrap_or(false);
                let real = match v.get("name") {
                    Some(n) => conv.string(n, "name").unwrap_or_default(),
                    None if external => k.name.clone(),
                    None => format!("{project}_{}", k.name),
                };
                for (opt, _) in v.entries() {
                    if !["external", "name", "labels"].contains(&opt.name.as_str()) {
                        conv.error(
                            &opt.span,
                            format!("{key}.{}.{}: not supported", k.name, opt.name),
                            Some(if key == "volumes" {
                                "create the volume with docker volume create, then import"
                            } else {
                                "create the network with docker network create, then import"
                            }),
                        );
                    }
                }
                out.insert(k.name.clone(), real);
            }
            out
        };
        let volumes = names("volumes", conv);
        let networks = names("networks", conv);
        let mut secrets = BTreeMap::new();
        for (k, v) in root.get("secrets").map(Node::entries).unwrap_or_default() {
            let how = if let Some(f) = v.get("file") {
                format!(
                    "containerctl secret set {} --file {}",
                    k.name,
                    conv.string(f, "file").unwrap_or_default()
                )
            } else if let Some(e) = v.get("environment") {
                format!(
                    "printenv {} | containerctl secret set {}",
                    conv.string(e, "environment").unwrap_or_default(),
                    k.name
                )
            } else {
                format!("containerctl secret set {}", k.name)
            };
            secrets.insert(k.name.clone(), (v.clone(), how));
        }
        Top { volumes, networks, secrets }
    }
}

/// Keys dropped with a note: what they did is done another way, or not at all, under systemd.
const NOTED: &[(&str, &str)] = &[
    ("container_name", "containerctl names the container containerctl-UNIT"),
    ("logging", "the container's output goes to the journal (journalctl -u containerctl@UNIT)"),
    ("tty", "a unit runs without a terminal"),
    ("stdin_open", "a unit runs without a terminal"),
    ("pull_policy", "containerctl pulls the pinned image when it is missing"),
    ("expose", "expose only documents ports; publish them with ports to reach them"),
];

fn service(
    conv: &mut Conv<'_>,
    key: &Key,
    svc: &Node,
    names: &BTreeMap<String, String>,
    top: &Top,
) -> Option<Draft> {
    let errors_before = conv.errors.len();
    if !matches!(svc.value, Value::Map(_)) {
        conv.error(&svc.span, format!("service {} must be a mapping, not {}", key.name, svc.kind()), None);
        return None;
    }
    let mut d = Draft {
        description: Some(format!("{} (imported from {} service {})", key.name, conv.input.file, key.name)),
        ..Draft::default()
    };
    if svc.get("image").is_none() {
        let hint = if svc.get("build").is_some() {
            "build and push the image, then set image: REPOSITORY:VERSION"
        } else {
            "add image: REPOSITORY:VERSION"
        };
        conv.error(&key.span, format!("service {} has no image", key.name), Some(hint));
    }
    let mut command: Option<Vec<String>> = None;
    for (k, v) in svc.entries() {
        let span = &k.span;
        match k.name.as_str() {
            "image" => {
                d.origin("container.image", v.span.clone());
                d.origin("container.version", v.span.clone());
                if let Some(s) = conv.string(v, "image") {
                    image(conv, &v.span, &s, &mut d);
                }
            }
            "build" => {}
            "command" => {
                d.origin("container.args", v.span.clone());
                command = conv.string_list(v, "command", true);
            }
            "entrypoint" => {
                d.origin("container.entrypoint", v.span.clone());
                d.entrypoint = match &v.value {
                    Value::Str(s) if s.is_empty() => Some(Vec::new()),
                    _ => conv.string_list(v, "entrypoint", true),
                };
            }
            "environment" => {
                d.origin("container.env", v.span.clone());
                environment(conv, v, &mut d.env);
            }
            "env_file" => env_files(conv, v, &mut d),
            "ports" => {
                d.origin("container.ports", v.span.clone());
                for p in list(conv, v, "ports") {
                    ports(conv, p, &mut d.ports);
                }
            }
            "volumes" => {
                d.origin("container.volumes", v.span.clone());
                for m in list(conv, v, "volumes") {
                    volume(conv, m, top, &mut d.volumes);
                }
            }
            "devices" => {
                d.origin("container.devices", v.span.clone());
                for dev in list(conv, v, "devices") {
                    let s = match dev.get("source") {
                        Some(_) => long_device(conv, dev),
                        None => conv.string(dev, "devices"),
                    };
                    d.devices.extend(s);
                }
            }
            "depends_on" => depends_on(conv, v, names, &mut d),
            "restart" => {
                d.origin("service.restart", v.span.clone());
                if let Some(r) = conv.string(v, "restart") {
                    restart(conv, &v.span, &r, &mut d);
                }
            }
            "healthcheck" => {
                d.origin("health", v.span.clone());
                d.health = healthcheck(conv, v);
            }
            "user" => d.user = conv.string(v, "user").filter(|u| !u.is_empty()),
            "working_dir" => {
                d.origin("container.workdir", v.span.clone());
                d.workdir = conv.string(v, "working_dir").filter(|w| !w.is_empty());
            }
            "read_only" => d.read_only = conv.bool(v, "read_only").unwrap_or(false),
            "init" => d.init = conv.bool(v, "init").unwrap_or(false),
            "privileged" => d.privileged = conv.bool(v, "privileged").unwrap_or(false),
            "cap_add" => {
                d.origin("container.capabilities", v.span.clone());
                d.capabilities = conv.string_list(v, "cap_add", false).unwrap_or_default();
            }
            "network_mode" => {
                d.origin("container.network", v.span.clone());
                if let Some(m) = conv.string(v, "network_mode") {
                    if m.starts_with("service:") || m.starts_with("container:") {
                        conv.error(
                            &v.span,
                            format!(
                                "network_mode {m} is not supported: a unit has its own network namespace"
                            ),
                            Some("use a shared Docker network, or network_mode: host"),
                        );
                    } else {
                        d.network = Some(m);
                    }
                }
            }
            "networks" => networks(conv, v, top, &mut d),
            "secrets" => secrets(conv, v, top, &mut d),
            "stop_grace_period" => {
                d.origin("service.stop_timeout", v.span.clone());
                d.stop_timeout = conv.string(v, "stop_grace_period");
            }
            "mem_limit" => {
                d.origin("container.memory", v.span.clone());
                d.memory = conv.string(v, "mem_limit");
            }
            "cpus" => {
                d.origin("container.cpus", v.span.clone());
                d.cpus = conv.string(v, "cpus");
            }
            "deploy" => deploy(conv, v, &mut d),
            name if name.starts_with("x-") => {}
            name => match NOTED.iter().find(|(n, _)| *n == name) {
                Some((_, why)) => conv.note(span, format!("{name}: dropped: {why}")),
                None => conv.error(
                    span,
                    format!("service {}: {name} cannot be expressed in a containerctl unit", key.name),
                    Some(unsupported_hint(name)),
                ),
            },
        }
    }
    d.args = command.unwrap_or_default();
    (conv.errors.len() == errors_before).then_some(d)
}

fn unsupported_hint(key: &str) -> &'static str {
    match key {
        "labels" => "containerctl labels its containers itself; remove labels and configure what read them another way",
        "cap_drop" | "security_opt" => "containerctl runs every container with no-new-privileges and Docker's default capabilities; remove it",
        "extra_hosts" | "dns" | "dns_search" | "hostname" | "domainname" | "mac_address" => "remove it: a unit uses Docker's network settings",
        "tmpfs" | "shm_size" | "ulimits" | "sysctls" | "pid" | "ipc" | "cgroup_parent" => "remove it, or run the container with docker directly",
        "profiles" => "remove profiles: every imported service becomes a unit",
        "links" | "external_links" => "put the services on one Docker network instead",
        "configs" => "store the file as a secret (containerctl secret set) and list it in secrets",
        "stop_signal" => "remove it: the unit stops the container with docker stop (SIGTERM, then SIGKILL after stop_timeout)",
        _ => "remove it from the service, or import with a copy of the file without it",
    }
}

/// Units in an order where every unit comes after those it requires; a cycle is an error.
fn order_by_dependencies(
    conv: &mut Conv<'_>,
    services: &Node,
    names: &BTreeMap<String, String>,
    units: Vec<Imported>,
) -> Vec<Imported> {
    let mut pending: Vec<Imported> = units;
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    let ours: BTreeSet<&String> = names.values().collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for u in pending {
            if u.draft.after.iter().all(|a| done.contains(a) || !ours.contains(a)) {
                done.insert(u.name.clone());
                out.push(u);
            } else {
                rest.push(u);
            }
        }
        pending = rest;
        if pending.len() == before {
            let span = services.span.clone();
            let cycle: Vec<_> = pending.iter().map(|u| u.source.service.clone()).collect();
            conv.error(&span, format!("depends_on forms a cycle between {}", cycle.join(", ")), None);
            return out;
        }
    }
    out
}

/// Splits a string into words as Compose does for `command: a "b c"` (POSIX shell quoting,
/// no expansion).
pub fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unclosed ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("unclosed \" quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unclosed \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}
