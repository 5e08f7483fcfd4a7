//! Turning what people already run into units: a Compose file ([`compose`]) or a `docker run`
//! command line ([`docker_run`]).
//!
//! Conversion is pure: the caller reads the files (the CLI as the user who runs it, the daemon
//! only what was pasted into the web page) and writes the units through the same path as
//! `containerctl new`, which validates them again and checks the policy.

pub mod compose;
pub mod docker_run;
mod draft;
mod interpolate;
mod yaml;

use serde::Serialize;

use crate::diag::Diagnostic;
pub use draft::Draft;

/// Where a unit came from: its service (or `docker run`) and its position in the source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub service: String,
    pub location: String,
}

/// One converted unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Imported {
    pub name: String,
    /// The unit file to write.
    pub text: String,
    pub source: Source,
    #[serde(skip)]
    pub draft: Draft,
}

impl Imported {
    /// The unit as `POST /import` takes it, its source named for the history and audit.
    pub fn into_wire(self) -> crate::wire::ImportUnit {
        let source = Some(format!("{} service {}", self.source.location, self.source.service));
        crate::wire::ImportUnit { name: self.name, text: self.text, source }
    }
}

/// What a conversion produced: units only when there is no error.
#[derive(Debug, Default)]
pub struct Outcome {
    pub units: Vec<Imported>,
    pub errors: Vec<Diagnostic>,
    /// What was dropped or must be done by hand (a secret to set, a network to create).
    pub notes: Vec<Diagnostic>,
}

impl Outcome {
    /// Checks every unit with the unit format's own validation; a value it refuses is reported
    /// at the place in the source it came from. Any error empties `units`.
    fn new(
        source_file: &str,
        source_text: &str,
        units: Vec<Imported>,
        mut errors: Vec<Diagnostic>,
        notes: Vec<Diagnostic>,
    ) -> Outcome {
        for u in &units {
            let file = format!("{}.toml", u.name);
            if let Err(diags) = crate::unit::parse(&u.name, &file, &u.text) {
                for d in diags {
                    let key = Draft::key_at_line(&u.text, d.line).unwrap_or_default();
                    let message = format!("service {}: {} (unit key {key})", u.source.service, d.message);
                    errors.push(match origin_of(&u.draft, &key) {
                        Some(span) => Diagnostic::at(source_file, source_text, span, message, d.hint),
                        None => Diagnostic { message, ..d },
                    });
                }
            }
        }
        let units = if errors.is_empty() { units } else { Vec::new() };
        Outcome { units, errors, notes }
    }
}

/// `[registry/]repo[:tag][@digest]` → (repository, tag, digest). The tag is after the last `:`
/// that follows the last `/`, so a registry's port is not taken for one.
pub fn split_image(s: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

/// Where in the source `key` (`container.ports`) came from: its own origin, else that of its
/// table (`health.cmd` → `health`).
fn origin_of(draft: &Draft, key: &str) -> Option<std::ops::Range<usize>> {
    draft.origins.get(key).or_else(|| draft.origins.get(key.split('.').next()?)).cloned()
}

#[cfg(test)]
mod tests;
