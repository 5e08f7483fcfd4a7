//! Redaction of values a viewer must not read: a plain `[container] env` entry whose NAME says it
//! holds a credential (`DB_PASSWORD`, `API_KEY`, `GITHUB_TOKEN`, ...) is shown as `"<redacted>"`.
//! What it is for: such a value belongs in a secret (`env_secrets`), and until it is moved there
//! it stays out of what viewers read (files, revisions, diffs, errors). Pure text in, text out.
//!
//! The text keeps its layout: only the bytes of each such value change, so comments, order and
//! the other values stay as written. A text that is not TOML cannot be read reliably, so every
//! value in it is redacted.

use std::ops::Range;

use crate::diag::Diagnostic;

/// What a redacted value reads as.
pub const REDACTED: &str = "<redacted>";

/// Words that make an environment variable's value sensitive, anywhere in its NAME, in any case.
pub const SENSITIVE_WORDS: &[&str] =
    &["PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "KEY", "CREDENTIAL"];

/// Whether the value of environment variable `name` is shown to viewers as [`REDACTED`].
pub fn is_sensitive(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SENSITIVE_WORDS.iter().any(|w| upper.contains(w))
}

/// `text` with the value of every sensitive `container.env` entry replaced by `"<redacted>"`.
pub fn redact(text: &str) -> String {
    let Ok(doc) = toml_edit::Document::parse(text) else { return redact_every_value(text) };
    let mut spans: Vec<Range<usize>> = sensitive(&doc).into_iter().flat_map(|e| e.values).collect();
    if spans.is_empty() {
        return text.to_owned();
    }
    spans.sort_by_key(|s| s.start);
    let quoted = format!("\"{REDACTED}\"");
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for s in spans {
        if s.start < at {
            continue;
        }
        out.push_str(&text[at..s.start]);
        out.push_str(&quoted);
        at = s.end;
    }
    out.push_str(&text[at..]);
    out
}

/// One warning per sensitive `container.env` entry written in plain text, at its key, with the
/// value itself never quoted.
pub fn warnings(file: &str, text: &str) -> Vec<Diagnostic> {
    let Ok(doc) = toml_edit::Document::parse(text) else { return Vec::new() };
    let entries = sensitive(&doc);
    let hidden: Vec<Range<usize>> = entries.iter().flat_map(|e| e.values.iter().cloned()).collect();
    entries
        .iter()
        .map(|e| {
            let mut d = Diagnostic::at(
                file,
                text,
                e.key.clone(),
                format!("the value of environment variable {} is written in plain text", e.name),
                Some(format!(
                    "store it as a secret (containerctl secret set NAME) and write env_secrets = {{ {} = \"NAME\" }} \
                     instead of the env entry; viewers see it as {REDACTED}",
                    e.name
                )),
            );
            let (line, column) = line_without(text, e.key.start, &hidden);
            d.source_line = line;
            d.column = column;
            d
        })
        .collect()
}

struct Entry {
    name: String,
    key: Range<usize>,
    /// The spans of the values to hide (one, or every scalar of a table written under the name).
    values: Vec<Range<usize>>,
}

/// The sensitive entries of `container.env`, however the file writes them (`[container.env]`,
/// an inline table, dotted keys).
fn sensitive(doc: &toml_edit::Document<&str>) -> Vec<Entry> {
    let Some(env) = doc.get("container").and_then(|c| c.get("env")).and_then(|e| e.as_table_like()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, item) in env.iter() {
        if !is_sensitive(name) {
            continue;
        }
        let mut values = Vec::new();
        value_spans(item, &mut values);
        let key = env.key(name).and_then(toml_edit::Key::span).or_else(|| values.first().cloned());
        if let Some(key) = key {
            out.push(Entry { name: name.to_owned(), key, values });
        }
    }
    out
}

fn value_spans(item: &toml_edit::Item, out: &mut Vec<Range<usize>>) {
    match item {
        toml_edit::Item::Value(v) => out.extend(v.span()),
        toml_edit::Item::Table(t) => t.iter().for_each(|(_, i)| value_spans(i, out)),
        toml_edit::Item::ArrayOfTables(a) => {
            a.iter().flat_map(|t| t.iter()).for_each(|(_, i)| value_spans(i, out))
        }
        toml_edit::Item::None => {}
    }
}

/// The line of `text` that holds byte `at`, with the bytes of `hidden` on it shown as
/// `"<redacted>"`, and the 1-based column of `at` in that line.
fn line_without(text: &str, at: usize, hidden: &[Range<usize>]) -> (String, usize) {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let mut line = String::new();
    let mut column = None;
    let mut i = start;
    while i < end {
        if i == at {
            column = Some(line.chars().count() + 1);
        }
        if let Some(h) = hidden.iter().find(|h| h.start <= i && i < h.end) {
            line.push_str(&format!("\"{REDACTED}\""));
            i = h.end.min(end).max(i + 1);
            continue;
        }
        let c = text[i..].chars().next().unwrap_or(' ');
        line.push(c);
        i += c.len_utf8();
    }
    (line.trim_end_matches('\r').to_owned(), column.unwrap_or(1))
}

/// For a text that does not parse: keys, headers and comments stay, every value goes.
fn redact_every_value(text: &str) -> String {
    let quoted = format!("\"{REDACTED}\"");
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let end = &line[body.len()..];
        let trimmed = body.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('[') {
            out.push_str(line);
        } else if let Some((key, _)) = body.split_once('=') {
            out.push_str(&format!("{key}= {quoted}{end}"));
        } else {
            let indent = &body[..body.len() - trimmed.len()];
            out.push_str(&format!("{indent}{quoted}{end}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_hold_credentials() {
        for yes in [
            "DB_PASSWORD",
            "password",
            "MYSQL_ROOT_PASSWD",
            "api_key",
            "PRIVATE_KEY",
            "GITHUB_TOKEN",
            "Client_Secret",
            "SSH_PASSPHRASE",
            "AWS_CREDENTIALS",
            "KEY",
        ] {
            assert!(is_sensitive(yes), "{yes}");
        }
        for no in ["TZ", "RUST_LOG", "PATH", "HOME", "PASS", "USER"] {
            assert!(!is_sensitive(no), "{no}");
        }
    }

    #[test]
    fn inline_tables_keep_their_layout() {
        let text =
            "# db\n[container]\nimage = \"a\"\nenv = { TZ = \"UTC\", DB_PASSWORD = \"hunter2\" } # env\n";
        assert_eq!(
            redact(text),
            "# db\n[container]\nimage = \"a\"\nenv = { TZ = \"UTC\", DB_PASSWORD = \"<redacted>\" } # env\n"
        );
    }

    #[test]
    fn table_form_dotted_keys_and_key_case() {
        let table = "[container]\nimage = \"a\"\n\n[container.env]\nTZ = \"UTC\"\napi_key = 'abc' # old\n\"My-Token\" = \"t\"\n";
        assert_eq!(
            redact(table),
            "[container]\nimage = \"a\"\n\n[container.env]\nTZ = \"UTC\"\napi_key = \"<redacted>\" # old\n\"My-Token\" = \"<redacted>\"\n"
        );
        let dotted = "[container]\nenv.SECRET_X = \"s\"\nenv.A = \"1\"\n";
        assert_eq!(redact(dotted), "[container]\nenv.SECRET_X = \"<redacted>\"\nenv.A = \"1\"\n");
        let top = "container.env.Password = \"p\"\ncontainer.image = \"a\"\n";
        assert_eq!(redact(top), "container.env.Password = \"<redacted>\"\ncontainer.image = \"a\"\n");
        let inline = "container = { image = \"a\", env = { TOKEN = \"t\" } }\n";
        assert_eq!(redact(inline), "container = { image = \"a\", env = { TOKEN = \"<redacted>\" } }\n");
    }

    #[test]
    fn multi_line_strings_and_other_values_go_whole() {
        let text = "[container]\nenv = { PRIVATE_KEY = \"\"\"\n-----BEGIN KEY-----\nabc\n-----END KEY-----\n\"\"\", B = \"2\" }\nversion = \"1\"\n";
        assert_eq!(
            redact(text),
            "[container]\nenv = { PRIVATE_KEY = \"<redacted>\", B = \"2\" }\nversion = \"1\"\n"
        );
        // Not a string (the unit is invalid, the value is hidden all the same), a table under the name.
        assert_eq!(
            redact("[container]\nenv.TOKEN = [\"a\", 1]\n"),
            "[container]\nenv.TOKEN = \"<redacted>\"\n"
        );
        let sub = "[container.env.DB_PASSWORD]\nx = \"p\"\ny = 2\n";
        assert_eq!(redact(sub), "[container.env.DB_PASSWORD]\nx = \"<redacted>\"\ny = \"<redacted>\"\n");
    }

    #[test]
    fn only_container_env_is_touched() {
        let text = "description = \"token\"\n[container]\nimage = \"a\"\nargs = [\"--password\", \"x\"]\nenv = { TZ = \"UTC\" }\n[service]\nafter = [\"key\"]\n";
        assert_eq!(redact(text), text);
        assert_eq!(redact(""), "");
        let secrets = "[container]\nenv_secrets = { DB_PASSWORD = \"db-pass\" }\n";
        assert_eq!(redact(secrets), secrets, "a secret's NAME is not its value");
    }

    #[test]
    fn a_text_that_is_not_toml_shows_no_value() {
        let text = "# note\n[container]\nenv = { PASSWORD = \"p\"\n  \"continued\"\nimage = \"a\"\n";
        assert_eq!(
            redact(text),
            "# note\n[container]\nenv = \"<redacted>\"\n  \"<redacted>\"\nimage = \"<redacted>\"\n"
        );
    }

    #[test]
    fn warnings_point_at_the_key_and_never_quote_the_value() {
        let text = "[container]\nimage = \"a\"\nenv = { API_TOKEN = \"t0ps3cret\", TZ = \"UTC\", DB_PASSWORD = \"hunter2\" }\n";
        let w = warnings("web.toml", text);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].line, w[0].column), (3, 9));
        assert_eq!(w[0].message, "the value of environment variable API_TOKEN is written in plain text");
        assert!(w[0].hint.as_deref().is_some_and(|h| h.contains("env_secrets = { API_TOKEN = \"NAME\" }")));
        assert_eq!(
            w[1].source_line,
            "env = { API_TOKEN = \"<redacted>\", TZ = \"UTC\", DB_PASSWORD = \"<redacted>\" }"
        );
        assert_eq!(w[1].column, 47, "the column in the line as shown");
        for d in &w {
            let shown = d.to_string();
            assert!(!shown.contains("hunter2") && !shown.contains("t0ps3cret"), "{shown}");
        }
        assert!(warnings("f", "[container]\nenv = { TZ = \"UTC\" }\n").is_empty());
        assert!(warnings("f", "not toml = = \n").is_empty());
    }
}
