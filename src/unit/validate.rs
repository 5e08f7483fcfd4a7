//! `RawUnit` → `Unit`: every rule a unit file must follow, with a position for each violation.
//!
//! This file holds the entry point, the translation of TOML errors and the `Validator` that
//! collects the diagnostics; the rules of each table live in a submodule of their own:
//! `container` (the `[container]` table, its image and version), `host` (its devices, volumes and
//! ports, which reach into the host), `secrets` (its secrets and env_secrets), `service`,
//! `health` and `deploy`.

mod container;
mod deploy;
mod health;
mod host;
mod secrets;
mod service;
#[cfg(test)]
mod tests;
mod update;

use std::ops::Range;
use std::time::Duration;

use super::raw::{DurationValue, RawUnit, S};
use super::{keys, parse_duration, Service, Unit, UnitName};
use crate::diag::Diagnostic;
use deploy::SwarmRefusals;
pub(super) use host::valid_volume_name;

pub(super) fn parse(name: &str, file: &str, text: &str) -> Result<Unit, Vec<Diagnostic>> {
    let name = UnitName::new(name).map_err(|m| {
        vec![Diagnostic::file_level(
            file,
            format!("file name: {m}"),
            Some("rename the file to NAME.toml".into()),
        )]
    })?;
    // One parse on the way that matters (every unit at every boot and reload): serde stops at
    // the first unknown key, so the second parse that lists all of them runs only on failure.
    let raw: RawUnit = toml::from_str(text).map_err(|e| {
        let unknown = unknown_keys(file, text);
        if unknown.is_empty() {
            vec![toml_error(file, text, &e)]
        } else {
            unknown
        }
    })?;
    let mut v = Validator { file, text, errors: Vec::new() };
    let unit = v.unit(name, raw);
    match unit {
        Some(unit) if v.errors.is_empty() => Ok(unit),
        _ => Err(v.errors),
    }
}

/// Every key of the file that no unit file may have, at once (serde stops at the first). A text
/// that does not parse gives none here: serde reports the syntax error.
fn unknown_keys(file: &str, text: &str) -> Vec<Diagnostic> {
    let Ok(doc) = toml_edit::Document::parse(text) else { return Vec::new() };
    let mut out = Vec::new();
    let mut check = |table: &dyn toml_edit::TableLike, known: &[&str], label: &str| {
        for (key, _) in table.iter() {
            if known.contains(&key) {
                continue;
            }
            let span = table.key(key).and_then(toml_edit::Key::span).unwrap_or(0..0);
            let hint = closest(key, known)
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| format!("known keys{}: {}", table_label(label), known.join(", ")));
            out.push(Diagnostic::at(
                file,
                text,
                span,
                format!("unknown key `{key}`{}", table_label(label)),
                Some(hint),
            ));
        }
    };
    let root = doc.as_table();
    check(root, keys::TOP, "");
    for (name, item) in root.iter() {
        if let (Some(known), Some(table)) = (keys::of_table(name), item.as_table_like()) {
            check(table, known, name);
        }
    }
    out
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
    } else if has("soak") {
        "update"
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
    /// A string key whose value is one of `names` (`parse` reads it): `default` when absent; else
    /// an error naming the key, the value and the choices, with the closest name as the hint, or
    /// `explain` when none is close.
    pub(super) fn one_of<T>(
        &mut self,
        value: Option<&S<String>>,
        key: &str,
        names: &[&str],
        parse: impl Fn(&str) -> Option<T>,
        default: T,
        explain: &str,
    ) -> Option<T> {
        let Some(v) = value else { return Some(default) };
        if let Some(parsed) = parse(v.get_ref()) {
            return Some(parsed);
        }
        let hint = closest(v.get_ref(), names)
            .map_or_else(|| explain.to_owned(), |c| format!("did you mean \"{c}\"?"));
        let choices = names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
        self.error(
            v.span(),
            format!("{key} = \"{}\" is not one of {choices}", v.get_ref().escape_debug()),
            Some(&hint),
        );
        None
    }

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
        let mut raw_container = container.into_inner();
        let secret_files = std::mem::take(&mut raw_container.secrets);
        let secret_env = std::mem::take(&mut raw_container.env_secrets);
        let entrypoint = raw_container.entrypoint.take().map(|e| self.entrypoint(e.into_inner()));
        let container = self.container(container_span, raw_container);
        let secrets = self.secrets(secret_files, secret_env, container.as_ref());
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
        let update = match raw.update {
            Some(u) => self.update(u.into_inner()).map(Some),
            None => Some(None),
        };
        Some(Unit {
            name,
            description,
            container: container?,
            secrets: secrets?,
            service: service?,
            health: health?,
            deploy: deploy?,
            update: update?,
            entrypoint: match entrypoint {
                Some(e) => Some(e?),
                None => None,
            },
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

    fn duration(
        &mut self,
        value: Option<S<DurationValue>>,
        default: Duration,
        key: &str,
    ) -> Option<Duration> {
        self.duration_min(value, default, key, Duration::ZERO)
    }

    /// A duration of at most `max`: a bound keeps systemd's and Docker's timeouts finite.
    pub(super) fn duration_max(
        &mut self,
        value: Option<S<DurationValue>>,
        default: Duration,
        key: &str,
        max: Duration,
    ) -> Option<Duration> {
        let span = value.as_ref().map(S::span);
        let d = self.duration_min(value, default, key, Duration::ZERO)?;
        match span {
            Some(span) if d > max => {
                let secs = max.as_secs();
                let shown = if secs % 60 == 0 { format!("{}min", secs / 60) } else { format!("{secs}s") };
                self.error(
                    span,
                    format!("{key} must be at most {shown}"),
                    Some("a longer stop delays every restart and shutdown of the host"),
                );
                None
            }
            _ => Some(d),
        }
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
}
