//! `POST /import`: several units created together, all or none, through the same checks as
//! `new` and `edit` (validation, policy, port conflicts) and recorded as revisions with action
//! `import`.

use super::error::OpError;
use super::Daemon;
use crate::diag::Diagnostic;
use crate::policy::{self, Action, Caller};
use crate::unit::UnitName;
use crate::wire::{ImportCompose, ImportUnit, Imported, ImportedUnit};

/// At most this many units in one import: a Compose file with more is an unusual one.
pub const MAX_UNITS: usize = 100;

impl Daemon {
    /// Converts a pasted Compose file. No file of the host is read: relative bind mounts and
    /// env_file are refused, and variables come only from the pasted `.env`.
    pub fn convert_compose(&self, c: &ImportCompose) -> Result<(Vec<ImportUnit>, Vec<String>), OpError> {
        let vars = crate::import::compose::dotenv_vars(&c.env)
            .map_err(|e| OpError::InvalidInput(format!(".env: {e}")))?;
        let read = |p: &str| -> Result<String, String> {
            Err(format!("cannot read {p} for a pasted file: paste its variables under environment:"))
        };
        let input = crate::import::compose::Input {
            file: "compose.yaml",
            text: &c.text,
            dir: None,
            vars: &vars,
            read_env_file: &read,
            prefix: c.prefix.as_deref().filter(|p| !p.is_empty()),
        };
        let outcome = crate::import::compose::convert(&input);
        let notes = outcome.notes.iter().map(|n| format!("{}: {}", n.location(), n.message)).collect();
        if !outcome.errors.is_empty() {
            return Err(OpError::Invalid {
                message: "the Compose file does not convert: nothing was written".into(),
                diagnostics: outcome.errors,
            });
        }
        let units = outcome.units.into_iter().map(crate::import::Imported::into_wire).collect();
        Ok((units, notes))
    }

    pub async fn import(
        &self,
        caller: &Caller,
        units: Vec<ImportUnit>,
        notes: Vec<String>,
        dry_run: bool,
        start: bool,
    ) -> Result<Imported, OpError> {
        if units.is_empty() {
            return Err(OpError::InvalidInput("nothing to import: give at least one unit".into()));
        }
        if units.len() > MAX_UNITS {
            return Err(OpError::InvalidInput(format!(
                "{} units in one import: at most {MAX_UNITS}",
                units.len()
            )));
        }
        let mut names = Vec::new();
        for u in &units {
            let name = super::ops::name(&u.name)?;
            if names.contains(&name) {
                return Err(OpError::InvalidInput(format!("unit {name} is given twice")));
            }
            names.push(name);
        }
        let existing: Vec<String> =
            names.iter().filter(|n| self.definition(n).is_some()).map(ToString::to_string).collect();
        if !existing.is_empty() {
            return Err(OpError::Conflict(format!(
                "{} already exist{}: nothing was written (import with --prefix, or remove them first)",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" }
            )));
        }
        // Every unit is checked before any is written.
        let mut diagnostics: Vec<Diagnostic> = Vec::new();
        let mut violations = Vec::new();
        let mut parsed = Vec::new();
        // The previews' warnings, one list per unit (all units pass `may` when they are used).
        let mut warnings: Vec<Vec<String>> = Vec::new();
        for (name, u) in names.iter().zip(&units) {
            if let Err(v) = policy::may(caller.role, Action::Edit, name.as_str(), false) {
                violations.push(v);
                continue;
            }
            let p = self.preview(caller, name, &u.text);
            diagnostics.extend(p.diagnostics);
            violations.extend(p.violations);
            warnings.push(p.warnings);
            let file = self.config.unit_dir.join(format!("{name}.toml")).display().to_string();
            if let Ok(unit) = crate::unit::parse(name.as_str(), &file, &u.text) {
                parsed.push((file, unit, u.text.as_str()));
            }
        }
        // Two imported units that publish the same host port: Docker could not start both.
        for (i, (file, a, _)) in parsed.iter().enumerate() {
            for (other_file, b, _) in &parsed[..i] {
                if let Some(p) =
                    a.container.ports.iter().find(|p| b.container.ports.iter().any(|q| p.conflicts(q)))
                {
                    diagnostics.push(Diagnostic::file_level(
                        file,
                        format!(
                            "host port {} is also published by {other_file} of this import",
                            p.host_socket()
                        ),
                        Some("give one of them another host port".into()),
                    ));
                }
            }
        }
        let what = names.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
        if !violations.is_empty() {
            let result = violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            self.audit(caller, "import", None, None, None, &format!("refused {what}: {result}"));
            return Err(OpError::Refused {
                message: "the policy refuses these units: nothing was written".into(),
                violations,
            });
        }
        if !diagnostics.is_empty() {
            return Err(OpError::Invalid {
                message: "the units are not valid: nothing was written".into(),
                diagnostics,
            });
        }
        let mut out = Imported { dry_run, units: Vec::new(), notes };
        if dry_run {
            for ((name, u), warnings) in names.iter().zip(units).zip(warnings) {
                let path = self.config.unit_dir.join(format!("{name}.toml")).display().to_string();
                out.units.push(ImportedUnit {
                    name: name.to_string(),
                    text: u.text,
                    source: u.source,
                    path,
                    warnings,
                    ..Default::default()
                });
            }
            return Ok(out);
        }
        let mut written: Vec<UnitName> = Vec::new();
        for (name, u) in names.iter().zip(units) {
            match self.apply_text(caller, name, u.text.clone(), "import", false).await {
                Ok(applied) => {
                    written.push(name.clone());
                    out.units.push(ImportedUnit {
                        name: name.to_string(),
                        text: u.text,
                        source: u.source,
                        revision: applied.revision,
                        path: applied.path,
                        warnings: applied.warnings,
                        started: None,
                    });
                }
                Err(e) => {
                    // All or none: what this import wrote goes again, recorded as removed.
                    for w in written.iter().rev() {
                        if let Err(undo) = self.remove(caller, w).await {
                            tracing::warn!("import: cannot remove {w} after {name} failed: {undo}");
                        }
                    }
                    return Err(e);
                }
            }
        }
        if start {
            for u in &mut out.units {
                let Ok(name) = UnitName::new(&u.name) else { continue };
                u.started = Some(match self.job(caller, &name, Action::Start).await {
                    Ok(done) => done.result,
                    Err(e) => e.to_string(),
                });
            }
        }
        Ok(out)
    }
}
