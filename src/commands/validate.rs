//! `containerctl validate FILE...`: the same parser and rules the generator applies.

use std::path::PathBuf;

use serde::Serialize;

use super::exit;
use crate::diag::Diagnostic;
use crate::{search, unit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Unit files (NAME.toml); the NAME comes from the file name.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print a JSON array with one object per file instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    errors: Vec<ErrorReport>,
    /// Accepted, but better changed (a credential in plain text): never make the file invalid.
    warnings: Vec<ErrorReport>,
}

#[derive(Serialize)]
struct ErrorReport {
    line: usize,
    column: usize,
    message: String,
    hint: Option<String>,
}

/// What `validate` finds in one file: errors, then warnings.
type Found = (Vec<Diagnostic>, Vec<Diagnostic>);

fn check(path: &std::path::Path) -> Found {
    let file = path.display().to_string();
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = match unit::name_from_file_name(file_name) {
        Ok(n) => n,
        Err(m) => {
            let d = Diagnostic::file_level(
                &file,
                format!("file name: {m}"),
                Some("name unit files NAME.toml".into()),
            );
            return (vec![d], Vec::new());
        }
    };
    match search::read_unit_file(path) {
        Ok(text) => (
            unit::parse(name.as_str(), &file, &text).err().unwrap_or_default(),
            unit::redact::warnings(&file, &text),
        ),
        Err(d) => (vec![d], Vec::new()),
    }
}

fn report(d: Diagnostic) -> ErrorReport {
    ErrorReport { line: d.line, column: d.column, message: d.message, hint: d.hint }
}

pub fn run(args: Args) -> u8 {
    let reports: Vec<(String, Found)> =
        args.files.iter().map(|p| (p.display().to_string(), check(p))).collect();
    let failed = reports.iter().any(|(_, (d, _))| !d.is_empty());
    if args.json {
        let out: Vec<FileReport> = reports
            .into_iter()
            .map(|(file, (diags, warnings))| FileReport {
                file,
                valid: diags.is_empty(),
                errors: diags.into_iter().map(report).collect(),
                warnings: warnings.into_iter().map(report).collect(),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out).expect("plain data serialises"));
    } else {
        for (file, (diags, warnings)) in &reports {
            if diags.is_empty() {
                println!("{file}: ok");
            }
            for d in diags {
                eprintln!("error: {d}");
            }
            for w in warnings {
                eprintln!("warning: {w}");
            }
        }
    }
    if failed {
        exit::INVALID
    } else {
        exit::OK
    }
}
