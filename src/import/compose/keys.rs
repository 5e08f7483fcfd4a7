//! How each key of a Compose service becomes part of a unit's draft: one function per key (or
//! group of keys), each reporting what it cannot convert with the key's line and column.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::import::draft::{Deploy, Draft, Health};
use crate::import::interpolate::{self, interpolate};
use crate::import::yaml::{Node, Value};

use super::{Conv, Top};

pub(super) fn list<'n>(conv: &mut Conv<'_>, n: &'n Node, what: &str) -> Vec<&'n Node> {
    match &n.value {
        Value::Seq(items) => items.iter().collect(),
        _ => {
            conv.error(&n.span, format!("{what} must be a list, not {}", n.kind()), None);
            Vec::new()
        }
    }
}

pub(super) fn image(conv: &mut Conv<'_>, span: &std::ops::Range<usize>, s: &str, d: &mut Draft) {
    let (repo, tag, digest) = crate::import::split_image(s);
    match tag {
        None | Some("latest") => conv.error(
            span,
            format!("image {s} is not pinned to a version{}", if tag.is_some() { " (latest pins nothing)" } else { "" }),
            Some("write the version you run, e.g. image: REPOSITORY:1.4.2 (docker image ls shows the tags you have)"),
        ),
        Some(t) => {
            d.image = repo.to_owned();
            d.version = t.to_owned();
        }
    }
    d.digest = digest.map(str::to_owned);
}

pub(super) fn environment(conv: &mut Conv<'_>, v: &Node, env: &mut BTreeMap<String, String>) {
    match &v.value {
        Value::Map(entries) => {
            for (k, val) in entries {
                match val.value {
                    // `VAR:` with no value takes the variable from the environment, if set.
                    Value::Null => {
                        if let Some(x) = conv.input.vars.get(&k.name) {
                            env.insert(k.name.clone(), x.clone());
                        }
                    }
                    _ => {
                        if let Some(s) = conv.string(val, &format!("environment {}", k.name)) {
                            env.insert(k.name.clone(), s);
                        }
                    }
                }
            }
        }
        Value::Seq(items) => {
            for item in items {
                let Some(s) = conv.string(item, "environment") else { continue };
                match s.split_once('=') {
                    Some((k, val)) => {
                        env.insert(k.to_owned(), val.to_owned());
                    }
                    None => {
                        if let Some(x) = conv.input.vars.get(&s) {
                            env.insert(s, x.clone());
                        }
                    }
                }
            }
        }
        _ => conv.error(&v.span, format!("environment must be a mapping or a list, not {}", v.kind()), None),
    }
}

pub(super) fn env_files(conv: &mut Conv<'_>, v: &Node, d: &mut Draft) {
    d.origin("container.env", v.span.clone());
    let items: Vec<&Node> = match &v.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![v],
    };
    for item in items {
        let (path_node, required) = match item.get("path") {
            Some(p) => (p, item.get("required").and_then(|r| conv.bool(r, "required")).unwrap_or(true)),
            None => (item, true),
        };
        let Some(path) = conv.string(path_node, "env_file") else { continue };
        match (conv.input.read_env_file)(&path) {
            Ok(text) => match parse_env_file(&text, conv.input.vars, &mut conv.unset) {
                Ok(vars) => {
                    // environment: wins over env_file, as in Compose.
                    for (k, val) in vars {
                        d.env.entry(k).or_insert(val);
                    }
                }
                Err(m) => conv.error(&path_node.span, format!("env_file {path}: {m}"), None),
            },
            Err(_) if !required => {}
            Err(m) => conv.error(&path_node.span, format!("env_file {path}: {m}"), None),
        }
    }
}

/// A Compose env file: `KEY=VALUE` lines, `#` comments, an optional `export `, values in single
/// quotes (literal), double quotes (escapes and interpolation) or bare (interpolated, a ` #`
/// starts a comment).
pub fn parse_env_file(
    text: &str,
    vars: &BTreeMap<String, String>,
    unset: &mut interpolate::Unset,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=VALUE", i + 1));
        };
        let k = k.trim();
        let v = v.trim();
        let value = if let Some(inner) = v.strip_prefix('\'') {
            inner.strip_suffix('\'').ok_or_else(|| format!("line {}: unclosed '", i + 1))?.to_owned()
        } else if let Some(inner) = v.strip_prefix('"') {
            let inner = inner.strip_suffix('"').ok_or_else(|| format!("line {}: unclosed \"", i + 1))?;
            let unescaped = inner.replace("\\n", "\n").replace("\\\"", "\"").replace("\\\\", "\\");
            interpolate(&unescaped, vars, unset).map_err(|e| format!("line {}: {e:?}", i + 1))?
        } else {
            let bare = v.split(" #").next().unwrap_or(v).trim_end();
            interpolate(bare, vars, unset).map_err(|e| format!("line {}: {e:?}", i + 1))?
        };
        out.push((k.to_owned(), value));
    }
    Ok(out)
}

/// `.env` in the project directory, read as Compose reads it (no variables of its own yet).
pub fn dotenv_vars(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut unset = Vec::new();
    Ok(parse_env_file(text, &BTreeMap::new(), &mut unset)?.into_iter().collect())
}

pub(super) fn ports(conv: &mut Conv<'_>, p: &Node, out: &mut Vec<String>) {
    if let Value::Map(_) = p.value {
        let target = p.get("target").and_then(|t| conv.string(t, "target"));
        let published = p.get("published").and_then(|t| conv.string(t, "published"));
        let ip = p.get("host_ip").and_then(|t| conv.string(t, "host_ip"));
        let proto = p.get("protocol").and_then(|t| conv.string(t, "protocol"));
        let (Some(target), Some(published)) = (target, published) else {
            conv.error(
                &p.span,
                "a port without published: is not supported: a unit publishes every port it lists",
                Some("add published: HOST_PORT, or remove the port"),
            );
            return;
        };
        let mut s = match ip {
            Some(ip) if ip.contains(':') => format!("[{ip}]:{published}:{target}"),
            Some(ip) => format!("{ip}:{published}:{target}"),
            None => format!("{published}:{target}"),
        };
        if let Some(proto) = proto {
            s = format!("{s}/{proto}");
        }
        expand_port_range(conv, &p.span, &s, out);
        return;
    }
    let Some(s) = conv.string(p, "ports") else { return };
    if !s.contains(':') {
        conv.error(&p.span, format!("port {s} has no host port: a unit publishes every port it lists"), Some("write HOST_PORT:CONTAINER_PORT, or remove it: containers on one network reach each other without publishing"));
        return;
    }
    expand_port_range(conv, &p.span, &s, out);
}

/// `8000-8002:8000-8002` → three ports (a unit's ports are single numbers).
fn expand_port_range(conv: &mut Conv<'_>, span: &std::ops::Range<usize>, s: &str, out: &mut Vec<String>) {
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let Some((head, container)) = spec.rsplit_once(':') else {
        out.push(s.to_owned());
        return;
    };
    let (ip, host) = match head.rsplit_once(':') {
        Some((ip, h)) if !head.ends_with(']') => (Some(ip), h),
        _ => (None, head),
    };
    let range = |r: &str| -> Option<(u32, u32)> {
        let (a, b) = r.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    match (range(host), range(container)) {
        (None, None) => out.push(s.to_owned()),
        (Some((h0, h1)), Some((c0, c1))) if h1 >= h0 && h1 - h0 == c1.saturating_sub(c0) && h1 - h0 < 100 => {
            for i in 0..=(h1 - h0) {
                let mut p =
                    format!("{}{}:{}", ip.map(|ip| format!("{ip}:")).unwrap_or_default(), h0 + i, c0 + i);
                if let Some(proto) = proto {
                    p = format!("{p}/{proto}");
                }
                out.push(p);
            }
        }
        _ => conv.error(
            span,
            format!("port range {s} is not supported"),
            Some("ranges must have the same length on both sides and at most 100 ports"),
        ),
    }
}

pub(super) fn volume(conv: &mut Conv<'_>, m: &Node, top: &Top, out: &mut Vec<String>) {
    let (source, target, read_only, typ) = if let Value::Map(_) = m.value {
        let typ = m.get("type").and_then(|t| conv.string(t, "type")).unwrap_or_else(|| "volume".into());
        let source = m.get("source").and_then(|t| conv.string(t, "source"));
        let Some(target) = m.get("target").and_then(|t| conv.string(t, "target")) else {
            conv.error(&m.span, "a volume needs target:", None);
            return;
        };
        let ro = m.get("read_only").and_then(|r| conv.bool(r, "read_only")).unwrap_or(false);
        for (k, _) in m.entries() {
            if !["type", "source", "target", "read_only", "bind", "volume", "consistency"]
                .contains(&k.name.as_str())
            {
                conv.error(&k.span, format!("volume option {} is not supported", k.name), None);
            }
        }
        (source, target, ro, typ)
    } else {
        let Some(s) = conv.string(m, "volumes") else { return };
        let parts: Vec<&str> = s.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [t] => (None, t.to_string(), None),
            [src, t] => (Some(src.to_string()), t.to_string(), None),
            [src, t, mode] => (Some(src.to_string()), t.to_string(), Some(*mode)),
            _ => {
                conv.error(&m.span, format!("volume {s} is not SOURCE:TARGET[:MODE]"), None);
                return;
            }
        };
        let mut ro = false;
        for opt in mode.map(|m| m.split(',').collect::<Vec<_>>()).unwrap_or_default() {
            match opt {
                "ro" => ro = true,
                "rw" | "cached" | "delegated" | "consistent" | "nocopy" => {}
                other => {
                    conv.error(&m.span, format!("volume option {other} is not supported"), Some("only ro and rw are: remove the others (SELinux labels z and Z do not apply on Debian)"));
                    return;
                }
            }
        }
        let typ = match &source {
            Some(src) if src.starts_with(['/', '.', '~']) => "bind",
            _ => "volume",
        };
        (source, target, ro, typ.to_owned())
    };
    let source = match (typ.as_str(), source) {
        ("bind", Some(src)) => match bind_source(conv.input.dir, &src) {
            Ok(p) => p,
            Err(m_) => {
                conv.error(&m.span, m_, Some("write an absolute host path"));
                return;
            }
        },
        ("volume", Some(src)) => match top.volumes.get(&src) {
            Some(real) => real.clone(),
            None => {
                conv.error(
                    &m.span,
                    format!("volume {src} is not declared in the top-level volumes:"),
                    Some("declare it, or use an absolute host path"),
                );
                return;
            }
        },
        ("volume", None) => {
            conv.error(&m.span, format!("the anonymous volume at {target} is not supported: its data would be lost at every restart"), Some("name it: NAME:TARGET, and declare NAME under volumes:"));
            return;
        }
        (other, _) => {
            conv.error(
                &m.span,
                format!("volume type {other} is not supported"),
                Some("use a named volume or a host path"),
            );
            return;
        }
    };
    out.push(format!("{source}:{target}{}", if read_only { ":ro" } else { "" }));
}

/// A bind mount's host path: absolute, or relative to the project directory (normalised, since
/// unit paths may not contain `.` or `..`).
fn bind_source(dir: Option<&Path>, src: &str) -> Result<String, String> {
    if src.starts_with('~') {
        return Err(format!("host path {src}: ~ is not expanded"));
    }
    let path = Path::new(src);
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match dir {
            Some(d) => d.join(path),
            None => return Err(format!("host path {src} is relative, and a pasted file has no directory")),
        }
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out.display().to_string())
}

pub(super) fn long_device(conv: &mut Conv<'_>, dev: &Node) -> Option<String> {
    let source = conv.string(dev.get("source")?, "source")?;
    let target = dev.get("target").and_then(|t| conv.string(t, "target")).unwrap_or_else(|| source.clone());
    let perms = dev.get("permissions").and_then(|t| conv.string(t, "permissions"));
    Some(match perms {
        Some(p) => format!("{source}:{target}:{p}"),
        None => format!("{source}:{target}"),
    })
}

pub(super) fn depends_on(conv: &mut Conv<'_>, v: &Node, names: &BTreeMap<String, String>, d: &mut Draft) {
    d.origin("service.requires", v.span.clone());
    d.origin("service.after", v.span.clone());
    let mut add = |conv: &mut Conv<'_>, dep: &str, span: &std::ops::Range<usize>, required: bool| {
        let Some(unit) = names.get(dep) else {
            conv.error(span, format!("depends_on: there is no service {dep}"), None);
            return;
        };
        d.after.push(unit.clone());
        if required {
            d.requires.push(unit.clone());
        }
    };
    match &v.value {
        Value::Seq(items) => {
            for i in items {
                if let Some(dep) = conv.string(i, "depends_on") {
                    add(conv, &dep, &i.span, true);
                }
            }
        }
        Value::Map(entries) => {
            for (k, opts) in entries {
                let condition = opts
                    .get("condition")
                    .and_then(|c| conv.string(c, "condition"))
                    .unwrap_or_else(|| "service_started".into());
                let required = opts.get("required").and_then(|r| conv.bool(r, "required")).unwrap_or(true);
                match condition.as_str() {
                    // A unit is started when it is READY, and READY waits for healthy when the
                    // dependency has a health check: both conditions are After= + Requires=.
                    "service_started" | "service_healthy" => add(conv, &k.name, &k.span, required),
                    "service_completed_successfully" => conv.error(
                        &k.span,
                        format!("depends_on {}: service_completed_successfully is not supported: a unit is a long-running service", k.name),
                        Some("run the one-off job before starting the units"),
                    ),
                    other => conv.error(&k.span, format!("depends_on {}: unknown condition {other}", k.name), None),
                }
            }
        }
        _ => conv.error(&v.span, format!("depends_on must be a list or a mapping, not {}", v.kind()), None),
    }
}

pub(super) fn restart(conv: &mut Conv<'_>, span: &std::ops::Range<usize>, r: &str, d: &mut Draft) {
    let (policy, enabled) = match r {
        "no" => ("no", false),
        "always" | "unless-stopped" => ("always", true),
        "on-failure" => ("on-failure", false),
        r if r.starts_with("on-failure:") => {
            conv.note(span, format!("restart {r}: the retry count is dropped; systemd's start limit stops a unit that keeps failing"));
            ("on-failure", false)
        }
        other => {
            conv.error(
                span,
                format!("restart {other} is not one of no, always, on-failure, unless-stopped"),
                None,
            );
            return;
        }
    };
    d.restart = Some(policy);
    // Docker brings back `always` and `unless-stopped` containers when it starts: the unit is
    // enabled so that systemd starts it at boot.
    d.enabled = enabled;
}

pub(super) fn healthcheck(conv: &mut Conv<'_>, v: &Node) -> Option<Health> {
    if v.get("disable").and_then(|x| conv.bool(x, "disable")).unwrap_or(false) {
        return None;
    }
    let test = v.get("test")?;
    let cmd = match &test.value {
        Value::Str(_) => vec!["/bin/sh".into(), "-c".into(), conv.string(test, "test")?],
        Value::Seq(_) => {
            let items = conv.string_list(test, "test", false)?;
            match items.first().map(String::as_str) {
                Some("CMD") => items[1..].to_vec(),
                Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), items[1..].join(" ")],
                Some("NONE") => return None,
                _ => {
                    conv.error(&test.span, "healthcheck test must start with CMD, CMD-SHELL or NONE", None);
                    return None;
                }
            }
        }
        _ => {
            conv.error(
                &test.span,
                format!("healthcheck test must be a string or a list, not {}", test.kind()),
                None,
            );
            return None;
        }
    };
    let mut h = Health { cmd, ..Health::default() };
    for (k, x) in v.entries() {
        match k.name.as_str() {
            "test" | "disable" => {}
            "interval" => h.interval = conv.string(x, "interval"),
            "timeout" => h.timeout = conv.string(x, "timeout"),
            "start_period" => h.start_period = conv.string(x, "start_period"),
            "retries" => h.retries = conv.int(x, "retries"),
            "start_interval" => conv
                .note(&k.span, "start_interval: dropped: checks run at interval during the start period too"),
            other => conv.error(&k.span, format!("healthcheck {other} is not supported"), None),
        }
    }
    Some(h)
}

pub(super) fn networks(conv: &mut Conv<'_>, v: &Node, top: &Top, d: &mut Draft) {
    let named: Vec<(String, std::ops::Range<usize>)> = match &v.value {
        Value::Seq(items) => {
            items.iter().filter_map(|i| conv.string(i, "networks").map(|s| (s, i.span.clone()))).collect()
        }
        Value::Map(entries) => {
            for (k, opts) in entries {
                for (o, _) in opts.entries() {
                    conv.error(
                        &o.span,
                        format!("networks {}: {} is not supported (aliases, addresses)", k.name, o.name),
                        Some("containers reach each other by container name, containerctl-UNIT"),
                    );
                }
            }
            entries.iter().map(|(k, _)| (k.name.clone(), k.span.clone())).collect()
        }
        _ => {
            conv.error(&v.span, format!("networks must be a list or a mapping, not {}", v.kind()), None);
            return;
        }
    };
    let real: Vec<_> = named.iter().filter(|(n, _)| n != "default").collect();
    match real.as_slice() {
        [] => {}
        [(n, span)] => match top.networks.get(n) {
            Some(docker_name) => {
                d.origin("container.network", span.clone());
                d.network = Some(docker_name.clone());
                conv.note(span, format!("network {n}: the unit joins the Docker network {docker_name}, which must exist (docker network create {docker_name}); other units reach it as containerctl-UNIT, not by the service's name"));
            }
            None => conv.error(span, format!("network {n} is not declared in the top-level networks:"), None),
        },
        [_, (_, span), ..] => conv.error(
            span,
            "a unit joins one network; this service lists several",
            Some("keep one network per service"),
        ),
    }
}

pub(super) fn secrets(conv: &mut Conv<'_>, v: &Node, top: &Top, d: &mut Draft) {
    d.origin("container.secrets", v.span.clone());
    for s in list(conv, v, "secrets") {
        let (source, span) = if let Value::Map(_) = s.value {
            let Some(source) = s.get("source").and_then(|x| conv.string(x, "source")) else {
                conv.error(&s.span, "a secret needs source:", None);
                continue;
            };
            if let Some(t) = s.get("target").and_then(|x| conv.string(x, "target")) {
                if t != source && t != format!("/run/secrets/{source}") {
                    conv.error(&s.span, format!("secret {source}: target {t} is not supported: a unit's secret is the file /run/secrets/{source}"), Some("read it from /run/secrets/NAME in the container"));
                    continue;
                }
            }
            for (k, _) in s.entries() {
                if !["source", "target"].contains(&k.name.as_str()) {
                    conv.error(
                        &k.span,
                        format!(
                            "secret option {} is not supported: secret files are root-owned, mode 0444",
                            k.name
                        ),
                        None,
                    );
                }
            }
            (source, s.span.clone())
        } else {
            let Some(source) = conv.string(s, "secrets") else { continue };
            (source, s.span.clone())
        };
        match top.secrets.get(&source) {
            Some((_, how)) => {
                conv.note(&span, format!("secret {source}: the unit reads it from the secret {source}; an administrator sets it: {how}"));
                if !d.secrets.contains(&source) {
                    d.secrets.push(source);
                }
            }
            None => {
                conv.error(&span, format!("secret {source} is not declared in the top-level secrets:"), None)
            }
        }
    }
}

pub(super) fn deploy(conv: &mut Conv<'_>, v: &Node, d: &mut Draft) {
    let mut swarm = false;
    let mut dep = Deploy::default();
    for (k, x) in v.entries() {
        match k.name.as_str() {
            "replicas" => {
                swarm = true;
                d.origin("deploy.replicas", x.span.clone());
                dep.replicas = conv.int(x, "replicas");
            }
            "mode" => match conv.string(x, "mode").as_deref() {
                Some("replicated") | None => {}
                Some(other) => conv.error(
                    &x.span,
                    format!("deploy mode {other} is not supported"),
                    Some("use replicas, with max_replicas_per_node = 1 to spread them"),
                ),
            },
            "placement" => {
                swarm = true;
                for (p, y) in x.entries() {
                    match p.name.as_str() {
                        "constraints" => {
                            d.origin("deploy.constraints", y.span.clone());
                            dep.constraints = conv.string_list(y, "constraints", false).unwrap_or_default();
                        }
                        "max_replicas_per_node" => {
                            dep.max_replicas_per_node = conv.int(y, "max_replicas_per_node")
                        }
                        other => conv.error(&p.span, format!("placement {other} is not supported"), None),
                    }
                }
            }
            "resources" => {
                for (r, y) in x.entries() {
                    match r.name.as_str() {
                        "limits" => {
                            for (l, z) in y.entries() {
                                match l.name.as_str() {
                                    "memory" => {
                                        d.origin("container.memory", z.span.clone());
                                        d.memory = conv.string(z, "memory");
                                    }
                                    "cpus" => {
                                        d.origin("container.cpus", z.span.clone());
                                        d.cpus = conv.string(z, "cpus");
                                    }
                                    other => conv.error(
                                        &l.span,
                                        format!("resource limit {other} is not supported"),
                                        None,
                                    ),
                                }
                            }
                        }
                        "reservations" => conv.note(&r.span, "reservations: dropped: a unit has limits only"),
                        other => conv.error(&r.span, format!("resources {other} is not supported"), None),
                    }
                }
            }
            other => conv.error(
                &k.span,
                format!("deploy {other} is not supported"),
                Some("a unit's [deploy] has replicas, constraints and max_replicas_per_node"),
            ),
        }
    }
    if swarm {
        d.origin("deploy", v.span.clone());
        d.deploy = Some(dep);
    }
}
