//! `containerctl import docker-run -- [docker] [run] OPTIONS IMAGE[:TAG] [ARGS...]`: the unit a
//! `docker run` command line describes. Options are docker's, long (`--env=A=b`, `--env A=b`)
//! or short (`-e A=b`, `-p8080:80`, `-dit`); every one is converted, dropped with a note when
//! it means nothing under systemd (`-d`, `--rm`, `-it`), or reported as an error.

use std::collections::BTreeMap;
use std::ops::Range;

use super::compose::{parse_env_file, shell_words};
use super::draft::{Draft, Health};
use super::{Imported, Outcome, Source};
use crate::diag::Diagnostic;

pub struct Input<'a> {
    pub args: &'a [String],
    /// Unit name is PREFIX-NAME when given.
    pub prefix: Option<&'a str>,
    /// Reads an --env-file (the path as written, resolved by the caller).
    pub read_env_file: &'a dyn Fn(&str) -> Result<String, String>,
}

/// Options that take a value, by long name, with their short form.
const VALUED: &[(&str, Option<char>)] = &[
    ("name", None),
    ("env", Some('e')),
    ("env-file", None),
    ("publish", Some('p')),
    ("volume", Some('v')),
    ("device", None),
    ("restart", None),
    ("user", Some('u')),
    ("workdir", Some('w')),
    ("cap-add", None),
    ("network", None),
    ("net", None),
    ("entrypoint", None),
    ("memory", Some('m')),
    ("cpus", None),
    ("stop-timeout", None),
    ("health-cmd", None),
    ("health-interval", None),
    ("health-timeout", None),
    ("health-retries", None),
    ("health-start-period", None),
    ("mount", None),
    ("label", Some('l')),
    ("hostname", Some('h')),
    ("add-host", None),
    ("cap-drop", None),
    ("security-opt", None),
    ("tmpfs", None),
    ("ulimit", None),
    ("sysctl", None),
    ("log-driver", None),
    ("log-opt", None),
    ("pull", None),
    ("platform", None),
    ("stop-signal", None),
    ("dns", None),
    ("shm-size", None),
];

/// Flags (no value), by long name, with their short form.
const FLAGS: &[(&str, Option<char>)] = &[
    ("detach", Some('d')),
    ("rm", None),
    ("interactive", Some('i')),
    ("tty", Some('t')),
    ("read-only", None),
    ("init", None),
    ("privileged", None),
    ("no-healthcheck", None),
];

struct Conv<'a> {
    file: &'a str,
    text: String,
    spans: Vec<Range<usize>>,
    errors: Vec<Diagnostic>,
    notes: Vec<Diagnostic>,
}

impl Conv<'_> {
    fn error(&mut self, arg: usize, message: impl Into<String>, hint: Option<&str>) {
        let span = self.spans.get(arg).cloned().unwrap_or(self.text.len()..self.text.len());
        self.errors.push(Diagnostic::at(self.file, &self.text, span, message, hint.map(str::to_owned)));
    }

    fn note(&mut self, arg: usize, message: impl Into<String>) {
        let span = self.spans.get(arg).cloned().unwrap_or(0..0);
        self.notes.push(Diagnostic::at(self.file, &self.text, span, message, None));
    }
}

pub fn convert(input: &Input<'_>) -> Outcome {
    // Diagnostics point into the command line as one line of text.
    let mut text = String::new();
    let mut spans = Vec::new();
    for a in input.args {
        if !text.is_empty() {
            text.push(' ');
        }
        spans.push(text.len()..text.len() + a.len());
        text.push_str(a);
    }
    let mut conv = Conv { file: "docker run", text, spans, errors: Vec::new(), notes: Vec::new() };
    let mut args: Vec<(usize, &str)> = input.args.iter().map(String::as_str).enumerate().collect();
    // `docker run …` or `run …` may be pasted whole.
    if args.first().is_some_and(|(_, a)| *a == "docker") {
        args.remove(0);
    }
    if args.first().is_some_and(|(_, a)| *a == "run") {
        args.remove(0);
    } else if args.first().is_some_and(|(_, a)| *a == "container")
        && args.get(1).is_some_and(|(_, a)| *a == "run")
    {
        args.drain(..2);
    }
    let (options, image, rest) = split(&mut conv, &args);
    let mut d = Draft::default();
    let mut name = None;
    let mut health = Health::default();
    for (i, opt, val) in options {
        apply(&mut conv, input, &mut d, &mut health, &mut name, i, opt, val);
    }
    let Some((image_at, image)) = image else {
        conv.error(
            args.len(),
            "no image: the command line ends before IMAGE",
            Some("docker run [OPTIONS] IMAGE:VERSION [ARGS...]"),
        );
        return Outcome::new(conv.file, &conv.text.clone(), Vec::new(), conv.errors, conv.notes);
    };
    match super::split_image(image) {
        (_, None | Some("latest"), _) => conv.error(
            image_at,
            format!("image {image} is not pinned to a version"),
            Some("write the version you run: IMAGE:1.4.2"),
        ),
        (repo, Some(tag), digest) => {
            d.image = repo.to_owned();
            d.version = tag.to_owned();
            d.digest = digest.map(str::to_owned);
            d.origin("container.image", conv.spans[image_at].clone());
            d.origin("container.version", conv.spans[image_at].clone());
        }
    }
    if let Some(first) = rest.first() {
        d.origin("container.args", conv.spans[first.0].clone());
    }
    d.args = rest.iter().map(|(_, a)| (*a).to_owned()).collect();
    if !health.cmd.is_empty() {
        d.health = Some(health);
    } else if health != Health::default() {
        conv.error(0, "--health-interval and the like need --health-cmd", None);
    }
    let Some(name) = name else {
        conv.error(0, "no --name: the unit is named after the container", Some("add --name NAME"));
        return Outcome::new(conv.file, &conv.text.clone(), Vec::new(), conv.errors, conv.notes);
    };
    let name = match input.prefix {
        Some(p) => format!("{p}-{name}"),
        None => name,
    };
    if let Err(e) = crate::unit::UnitName::new(&name) {
        conv.error(
            0,
            format!("unit name {name:?} is not valid: {e}"),
            Some("choose another --name or --prefix"),
        );
    }
    d.description = Some(format!("{name} (imported from docker run)"));
    let units = vec![Imported {
        name: name.clone(),
        text: d.to_toml(),
        source: Source { service: name, location: "docker run".into() },
        draft: d,
    }];
    let text = conv.text.clone();
    if conv.errors.is_empty() {
        Outcome::new(conv.file, &text, units, conv.errors, conv.notes)
    } else {
        Outcome::new(conv.file, &text, Vec::new(), conv.errors, conv.notes)
    }
}

type Opt<'a> = (usize, &'static str, Option<String>);

/// Options (each with the index of its argument, its long name and value), the image, and what
/// follows it.
#[allow(clippy::type_complexity)]
fn split<'a>(
    conv: &mut Conv<'_>,
    args: &[(usize, &'a str)],
) -> (Vec<Opt<'a>>, Option<(usize, &'a str)>, Vec<(usize, &'a str)>) {
    let mut options = Vec::new();
    let mut k = 0;
    while k < args.len() {
        let (i, a) = args[k];
        k += 1;
        if a == "--" {
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (long, inline) = match long.split_once('=') {
                Some((l, v)) => (l, Some(v.to_owned())),
                None => (long, None),
            };
            if let Some((name, _)) = VALUED.iter().find(|(n, _)| *n == long) {
                let v = match inline {
                    Some(v) => Some(v),
                    None => {
                        k += 1;
                        args.get(k - 1).map(|(_, v)| (*v).to_owned())
                    }
                };
                if v.is_none() {
                    conv.error(i, format!("--{long} needs a value"), None);
                }
                options.push((i, *name, v));
            } else if let Some((name, _)) = FLAGS.iter().find(|(n, _)| *n == long) {
                options.push((i, *name, inline));
            } else {
                conv.error(
                    i,
                    format!("option --{long} cannot be expressed in a containerctl unit"),
                    Some("remove it"),
                );
            }
            continue;
        }
        if let Some(shorts) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, c) in shorts.char_indices() {
                if let Some((name, _)) = FLAGS.iter().find(|(_, s)| *s == Some(c)) {
                    options.push((i, *name, None));
                } else if let Some((name, _)) = VALUED.iter().find(|(_, s)| *s == Some(c)) {
                    let inline = &shorts[at + c.len_utf8()..];
                    let v = if inline.is_empty() {
                        k += 1;
                        args.get(k - 1).map(|(_, v)| (*v).to_owned())
                    } else {
                        Some(inline.trim_start_matches('=').to_owned())
                    };
                    if v.is_none() {
                        conv.error(i, format!("-{c} needs a value"), None);
                    }
                    options.push((i, *name, v));
                    break;
                } else {
                    conv.error(
                        i,
                        format!("option -{c} cannot be expressed in a containerctl unit"),
                        Some("remove it"),
                    );
                    break;
                }
            }
            continue;
        }
        return (options, Some((i, a)), args[k..].to_vec());
    }
    let image = args.get(k).copied();
    (options, image, args.get(k + 1..).map(<[_]>::to_vec).unwrap_or_default())
}

#[allow(clippy::too_many_arguments)]
fn apply(
    conv: &mut Conv<'_>,
    input: &Input<'_>,
    d: &mut Draft,
    health: &mut Health,
    name: &mut Option<String>,
    i: usize,
    opt: &'static str,
    val: Option<String>,
) {
    let span = conv.spans[i].clone();
    let v = val.unwrap_or_default();
    match opt {
        "name" => *name = Some(v),
        "env" => {
            d.origin("container.env", span);
            match v.split_once('=') {
                Some((k, x)) => {
                    d.env.insert(k.to_owned(), x.to_owned());
                }
                None => conv.error(
                    i,
                    format!("--env {v}: takes NAME=VALUE (a value from the environment is not imported)"),
                    Some("write the value"),
                ),
            }
        }
        "env-file" => match (input.read_env_file)(&v) {
            Ok(text) => match parse_env_file(&text, &BTreeMap::new(), &mut Vec::new()) {
                Ok(vars) => {
                    d.origin("container.env", span);
                    for (k, x) in vars {
                        d.env.entry(k).or_insert(x);
                    }
                }
                Err(m) => conv.error(i, format!("--env-file {v}: {m}"), None),
            },
            Err(m) => conv.error(i, format!("--env-file {v}: {m}"), None),
        },
        "publish" => {
            d.origin("container.ports", span);
            if v.contains(':') {
                d.ports.push(v);
            } else {
                conv.error(
                    i,
                    format!("--publish {v} has no host port"),
                    Some("write HOST_PORT:CONTAINER_PORT"),
                );
            }
        }
        "volume" => {
            d.origin("container.volumes", span);
            if v.split(':').count() < 2 {
                conv.error(
                    i,
                    format!(
                        "the anonymous volume {v} is not supported: its data would be lost at every restart"
                    ),
                    Some("name it: NAME:TARGET"),
                );
            } else {
                d.volumes.push(v);
            }
        }
        "device" => {
            d.origin("container.devices", span);
            d.devices.push(v);
        }
        "restart" => {
            d.origin("service.restart", span);
            let (policy, enabled) = match v.as_str() {
                "no" => ("no", false),
                "always" | "unless-stopped" => ("always", true),
                r if r == "on-failure" || r.starts_with("on-failure:") => ("on-failure", false),
                other => {
                    conv.error(
                        i,
                        format!("--restart {other} is not one of no, always, on-failure, unless-stopped"),
                        None,
                    );
                    return;
                }
            };
            d.restart = Some(policy);
            d.enabled = enabled;
        }
        "user" => d.user = Some(v),
        "workdir" => {
            d.origin("container.workdir", span);
            d.workdir = Some(v);
        }
        "cap-add" => {
            d.origin("container.capabilities", span);
            d.capabilities.push(v);
        }
        "network" | "net" => {
            d.origin("container.network", span);
            d.network = Some(v);
        }
        "entrypoint" => {
            d.origin("container.entrypoint", span);
            d.entrypoint = Some(if v.is_empty() { Vec::new() } else { vec![v] });
        }
        "memory" => {
            d.origin("container.memory", span);
            d.memory = Some(v);
        }
        "cpus" => {
            d.origin("container.cpus", span);
            d.cpus = Some(v);
        }
        "stop-timeout" => {
            d.origin("service.stop_timeout", span);
            d.stop_timeout = Some(v);
        }
        "health-cmd" => {
            d.origin("health", span);
            match shell_words(&v) {
                // docker run --health-cmd is run by a shell (CMD-SHELL).
                Ok(_) => health.cmd = vec!["/bin/sh".into(), "-c".into(), v],
                Err(m) => conv.error(i, format!("--health-cmd: {m}"), None),
            }
        }
        "health-interval" => health.interval = Some(v),
        "health-timeout" => health.timeout = Some(v),
        "health-start-period" => health.start_period = Some(v),
        "health-retries" => match v.parse() {
            Ok(r) => health.retries = Some(r),
            Err(_) => conv.error(i, format!("--health-retries {v} is not a whole number"), None),
        },
        "read-only" => d.read_only = true,
        "init" => d.init = true,
        "privileged" => d.privileged = true,
        "detach" => {}
        "rm" => conv.note(i, "--rm: dropped: the unit removes its container when it stops"),
        "interactive" | "tty" => conv.note(i, format!("--{opt}: dropped: a unit runs without a terminal")),
        "no-healthcheck" => {
            conv.note(i, "--no-healthcheck: dropped: a unit has a health check only when [health] says so")
        }
        other => conv.error(
            i,
            format!("option --{other} cannot be expressed in a containerctl unit"),
            Some("remove it"),
        ),
    }
}
